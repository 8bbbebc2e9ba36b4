// la.cu — device form of models/mixers/la.c (normalised linear attention, Based Taylor map or elu + 1):
// same tensors, same ctx buffers, one kernel per CPU helper or loop nest. Depends on layers.cuh, mixer.h.
//
// Training form: the chunked form (in the manner of flash-linear-attention, chunk LA_C = 64). With
// v' = [v, 1] the state S' = [S | z] = sum phi(k) v'^T carries numerator and denominator together:
//   per chunk c: S'_c = sum over earlier chunks of K^T V' (la_chunk_state_kernel, saved per chunk),
//   [num | den - eps] = mask(Q K^T) V' + Q S'_c           (la_chunk_out_kernel), o = num / den.
// Backward, with dN' = [dnum | dden] (dnum = do/den, dden = -(do.o)/den) and P = mask(dN' V'^T):
//   dphq = P K + dN' S'^T, dphk = P^T Q + V' R'^T, dv = mask(Q K^T)^T dnum + K U, where
//   R' = [U | u] = sum over later chunks of Q^T dN' (the reverse state). Same sums as la.c's scans,
//   regrouped (associativity only). Every product is a 64 x 64 tile staged in shared memory
//   (la_tile_mm): tf32 mma.sync unless the precision is fp32, where fp32 FMAs (the --precision
//   contract, as attention.cu); reductions in a fixed order, no atomics.
// The exact sequential scans (one block per (batch, head), state in shared memory) stay as the step
// form and as the reference training form (RB_CUDA_LA_SEQ=1 in the environment at create time).
#include <math.h>
#include <type_traits>
#include "layers.cuh"

#include "../mixers/la.h"  // LA_EPS, the tensor order: one definition with la.c
#define LA_EPS_F ((float)LA_EPS)
#define LA_THREADS 256
#define LA_C 64   // chunk length of the chunked form (= the tile edge LA_T)
#define LA_T 64   // tile edge: a block of 256 threads computes a 64 x 64 tile, 4 x 4 per thread
#define LA_K 16   // inner-dimension slab staged in shared memory
#define LA_P 68   // padded shared row (float4-aligned, fewer bank conflicts)

extern "C" int la_feature_size(int kind, int n);  // la.c: f' = 1 + f + f(f+1)/2 (taylor), d_h (elu)


typedef struct {
    int D, H, dh, kind, fq, F, Bmax, Tmax;
    float *qa, *ka, *dqa, *dka;  // [BT, H*fq]
    float *v, *o, *dO, *dv;      // [BT, D]
    float *phq, *phk, *dphq, *dphk;  // [BT, H*F]
    float *den, *dden;           // [BT, H]
    float *sst, *rst;            // [Bmax*H*nc, F d_h + F] chunk states [S | z] and reverse states [U | u]
    int chunked, ncmax;          // chunked training form (default) or the sequential scans
    float *st;                   // [Bmax*H, 2 (F d_h + F)] scan states when not in shared memory
    float *sx;                   // step scratch [Bmax, 2 Q + 2 D + 2 H F + H]
    int smem_fwd, smem_bwd;
    size_t shb_fwd, shb_bwd;
} LaCudaCtx;

// Mirrors la_feature_map element by element: phi[a] of x [n] at feature a, same layout and the same
// arithmetic per element (1; x_i / f^(1/4); x_i^2 / (sqrt 2 sqrt f); x_i x_j / sqrt f for the pair
// (i > j) at 1 + 2n + i(i-1)/2 + j, the CPU loop's order).
__device__ __forceinline__ float la_taylor_elem(const float *x, int n, int a, float rd, float rrd, float r2) {
    if (a == 0) return 1.f;
    if (a <= n) return x[a - 1] / rrd;
    if (a <= 2 * n) return x[a - 1 - n] * x[a - 1 - n] / (r2 * rd);
    const int p = a - 1 - 2 * n;
    int i = (int)((1.f + sqrtf(1.f + 8.f * p)) * 0.5f);
    while (i * (i - 1) / 2 > p) i--;
    while ((i + 1) * i / 2 <= p) i++;
    return x[i] * x[p - i * (i - 1) / 2] / rd;
}

#define LA_FW 8   // warps per block in la_features_kernel
#define LA_FBW 4  // warps per block in la_features_backward_kernel

// Mirrors la_features: warp per (row, head, q|k), lanes over the output features (coalesced rows).
__global__ void la_features_kernel(float *phq, float *phk, const float *qa, const float *ka, int N, int H, int fq,
                                   int F, int kind) {
    __shared__ float sx[LA_FW][64];
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    const long long idx = (long long)blockIdx.x * LA_FW + w;
    if (idx >= 2LL * N * H) return;  // the whole warp
    const long long ih = idx >> 1;
    const float *x = (idx & 1 ? ka : qa) + (size_t)ih * fq;
    float *phi = (idx & 1 ? phk : phq) + (size_t)ih * F;
    if (kind == LA_ELU) {
        for (int i = lane; i < fq; i += 32) phi[i] = x[i] > 0 ? x[i] + 1 : expf(x[i]);
        return;
    }
    for (int i = lane; i < fq; i += 32) sx[w][i] = x[i];
    __syncwarp();
    const float rd = sqrtf((float)fq), rrd = sqrtf(rd), r2 = sqrtf(2.f);
    for (int a = lane; a < F; a += 32) phi[a] = la_taylor_elem(sx[w], fq, a, rd, rrd, r2);
}

// Mirrors la_feature_backward (dx = dphi through phi at x) for la_backward's loop: warp per
// (row, head, q|k), the dphi row staged in shared memory, lane per input dim i summing its terms
// (linear, square, then the pairs (i, j < i) and (j > i, i) in j order).
__global__ void la_features_backward_kernel(float *dqa, float *dka, const float *dphq, const float *dphk,
                                            const float *qa, const float *ka, int N, int H, int fq, int F, int kind) {
    extern __shared__ float sh[];  // [LA_FBW][F + 64]
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    const long long idx = (long long)blockIdx.x * LA_FBW + w;
    if (idx >= 2LL * N * H) return;  // the whole warp
    const long long ih = idx >> 1;
    const float *x = (idx & 1 ? ka : qa) + (size_t)ih * fq, *dphi = (idx & 1 ? dphk : dphq) + (size_t)ih * F;
    float *dx = (idx & 1 ? dka : dqa) + (size_t)ih * fq;
    if (kind == LA_ELU) {
        for (int i = lane; i < fq; i += 32) dx[i] = dphi[i] * (x[i] > 0 ? 1.f : expf(x[i]));
        return;
    }
    float *sd = sh + (size_t)w * (F + 64), *sx = sd + F;
    for (int a = lane; a < F; a += 32) sd[a] = dphi[a];
    for (int i = lane; i < fq; i += 32) sx[i] = x[i];
    __syncwarp();
    const int n = fq, base = 1 + 2 * n;
    const float rd = sqrtf((float)n), rrd = sqrtf(rd), r2 = sqrtf(2.f);
    for (int i = lane; i < n; i += 32) {
        float acc = sd[1 + i] / rrd + sd[1 + n + i] * 2 * sx[i] / (r2 * rd);
        for (int j = 0; j < i; j++) acc += sd[base + i * (i - 1) / 2 + j] / rd * sx[j];
        for (int j = i + 1; j < n; j++) acc += sd[base + j * (j - 1) / 2 + i] / rd * sx[j];
        dx[i] = acc;
    }
}

// Mirrors the forward scan over la_token: block per (b, h), T tokens; den [N, H] (eps included).
// State: shared memory (use_smem, zeroed) or state + bh * stride (zeroed if zero; the step keeps it).
__global__ void __launch_bounds__(LA_THREADS) la_scan_kernel(float *o, float *den, const float *phq,
        const float *phk, const float *v, float *state, long long stride, int use_smem, int zero, int T, int H,
        int F, int dh) {
    extern __shared__ float sh[];
    __shared__ float red[32];
    const int bh = blockIdx.x, b = bh / H, h = bh % H, tid = threadIdx.x, nt = blockDim.x, D = H * dh;
    const size_t fd = (size_t)F * dh;
    float *S, *buf = sh;
    if (use_smem) { S = sh; buf = sh + fd + F; } else S = state + (size_t)bh * stride;
    float *z = S + fd, *sq = buf, *sk = sq + F, *sv = sk + F;
    if (use_smem || zero)
        for (size_t e = tid; e < fd + F; e += nt) S[e] = 0.f;
    for (int t = 0; t < T; t++) {
        size_t i = (size_t)b * T + t, od = i * D + (size_t)h * dh, of = (i * H + h) * F;
        __syncthreads();
        for (int a = tid; a < F; a += nt) { sq[a] = phq[of + a]; sk[a] = phk[of + a]; }
        for (int j = tid; j < dh; j += nt) sv[j] = v[od + j];
        __syncthreads();
        float part = 0.f;
        for (int a = tid; a < F; a += nt) { z[a] += sk[a]; part += sq[a] * z[a]; }
        float dn = block_sum(part, red) + LA_EPS_F, inv = 1.f / dn;
        for (int j = tid; j < dh; j += nt) {  // S += phk v^T; o = S^T phq / den (feature order)
            float acc = 0.f, vj = sv[j];
            for (int a = 0; a < F; a++) {
                float *e = S + (size_t)a * dh + j;
                *e += sk[a] * vj;
                acc += sq[a] * *e;
            }
            o[od + j] = acc * inv;
        }
        if (tid == 0) den[i * H + h] = dn;
    }
}

// Mirrors la_backward's two scans per (b, h): the forward re-scan (dphq = S dnum + z dden) and the
// reverse scan of the adjoints U = sum phq dnum^T, u = sum phq dden (dphk = U v + u, dv = U^T phk).
__global__ void __launch_bounds__(LA_THREADS) la_bwd_scan_kernel(float *dphq, float *dphk, float *dv,
        const float *phq, const float *phk, const float *v, const float *o, const float *dO, const float *den,
        float *state, int use_smem, int T, int H, int F, int dh) {
    extern __shared__ float sh[];
    __shared__ float red[32];
    const int bh = blockIdx.x, b = bh / H, h = bh % H, tid = threadIdx.x, nt = blockDim.x, D = H * dh;
    const int lane = tid & 31, warp = tid >> 5, nw = nt >> 5;
    const size_t fd = (size_t)F * dh;
    float *S, *buf = sh;
    if (use_smem) { S = sh; buf = sh + 2 * (fd + F); } else S = state + (size_t)bh * 2 * (fd + F);
    float *z = S + fd, *U = z + F, *u = U + fd;
    float *sq = buf, *sk = sq + F, *sv = sk + F, *so = sv + dh, *sd = so + dh, *dnum = sd + dh;
    for (size_t e = tid; e < 2 * (fd + F); e += nt) S[e] = 0.f;
    for (int pass = 0; pass < 2; pass++)
        for (int s = 0; s < T; s++) {
            const int t = pass == 0 ? s : T - 1 - s;
            size_t i = (size_t)b * T + t, od = i * D + (size_t)h * dh, of = (i * H + h) * F;
            __syncthreads();
            for (int a = tid; a < F; a += nt) { sq[a] = phq[of + a]; sk[a] = phk[of + a]; }
            for (int j = tid; j < dh; j += nt) { sv[j] = v[od + j]; so[j] = o[od + j]; sd[j] = dO[od + j]; }
            __syncthreads();
            // o = num/den: dnum = do/den, dden = -(do.o)/den
            const float dn = den[i * H + h];
            float dd = 0.f;
            for (int j = tid; j < dh; j += nt) { dnum[j] = sd[j] / dn; dd -= sd[j] * so[j]; }
            dd = block_sum(dd, red) / dn;
            if (pass == 0) {
                for (int a = warp; a < F; a += nw) {
                    float *row = S + (size_t)a * dh, ka = sk[a], acc = 0.f;
                    for (int j = lane; j < dh; j += 32) {
                        row[j] += ka * sv[j];
                        acc += row[j] * dnum[j];
                    }
                    acc = warp_sum(acc);
                    if (lane == 0) { z[a] += ka; dphq[of + a] = acc + z[a] * dd; }
                }
            } else {
                for (int a = warp; a < F; a += nw) {
                    float *row = U + (size_t)a * dh, qa = sq[a], acc = 0.f;
                    for (int j = lane; j < dh; j += 32) {
                        row[j] += qa * dnum[j];
                        acc += row[j] * sv[j];
                    }
                    acc = warp_sum(acc);
                    if (lane == 0) { u[a] += qa * dd; dphk[of + a] = acc + u[a]; }
                }
                __syncthreads();
                for (int j = tid; j < dh; j += nt) {  // dv = U^T phk (feature order)
                    float acc = 0.f;
                    for (int a = 0; a < F; a++) acc += sk[a] * U[(size_t)a * dh + j];
                    dv[od + j] = acc;
                }
            }
        }
}

// ---- tensor-core primitives (tools/la_chunk_emu.cpp stands in for these two on the host) --------
__device__ __forceinline__ unsigned la_tf32(float x) { return rb_tf32_bits(x); }

// d += A B for one warp: m16n8k8 tf32, the PTX ISA fragments (g = lane / 4, q = lane % 4): a0..a3 =
// A(g, q), A(g+8, q), A(g, q+4), A(g+8, q+4); b0, b1 = B(q, g), B(q+4, g); d0..d3 = D(g, 2q), D(g, 2q+1),
// D(g+8, 2q), D(g+8, 2q+1).
__device__ __forceinline__ void la_mma_tf32(float (&d)[4], unsigned a0, unsigned a1, unsigned a2, unsigned a3,
                                            unsigned b0, unsigned b1) {
    asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// ---- chunked training form ---------------------------------------------------------------------
struct LaNoHook {
    __device__ void operator()(int, float (*)[LA_P]) const {}
};

// acc[i][j] += sum_{k < K} fa(r, k) fb(k, col) over the block's 64 x 64 tile, thread (ty, tx) =
// (tid / 16, tid % 16) owning rows ty*4.. and cols tx*4..; k in slabs of LA_K, in increasing order
// (fixed). fa / fb return 0 outside their matrix (rows, cols); k >= K is zeroed here. AK / BK: the
// operand is contiguous along k in memory (then consecutive threads load consecutive k). hook(k0, sa)
// runs once per slab after it is staged (sa[kk][r] = fa(r, k0 + kk)).
// TC (precision tf32 or bf16, as attention.cu): the products run on tensor cores, inputs rounded to
// tf32, sums in fp32 in the mma's own fixed order. Warp w computes rows 8w..8w+7 (the rows its own
// threads own in acc) as the transposed product C^T = fb^T fa^T: four m16n8k8 tiles (columns 16i..)
// per 8-k step, the fragments in registers across all slabs. The mma's k slots qi and qi + 4 (qi =
// lane % 4) read slab rows 2 qi and 2 qi + 1, the same permutation for both operands (the same dot
// product): with the row pitch LA_P = 68 a warp's loads then hit 32 distinct banks (8 qi + g; rows
// qi, qi + 4 would collide 2-way). After the last slab each warp passes its 8 x 64 block to its
// threads' acc through 4 rows of sa or sb (free by then), 4 rows a round. Without TC: fp32 FMAs.
template <bool TC, bool AK, bool BK, class FA, class FB, class HK>
__device__ __forceinline__ void la_tile_mm(float acc[4][4], int K, FA fa, FB fb, HK hook, float (*sa)[LA_P],
                                           float (*sb)[LA_P]) {
    const int tid = threadIdx.x, ty = tid >> 4, tx = tid & 15;
    const int lane = tid & 31, w = tid >> 5, g = lane >> 2, qi = lane & 3;
    float d[4][4] = {};  // TC: tile i's accumulator fragments, D(m, n) = C(8w + n, 16i + m)
    // The thread's four elements of each operand's slab (slab row kk, column r), fetched into registers one
    // slab ahead: the next slab's global loads are in flight while this one is multiplied. With TC and no
    // hook (which reads sa as staged) they are stored already rounded to tf32, and the products read the
    // bits as they are: the same tf32 inputs as rounding at each use, once per element instead of once
    // per warp that reads it.
    constexpr bool RND = TC && std::is_same<HK, LaNoHook>::value;
    auto at = [&](int q, bool kmaj, int &kk, int &r) {
        const int e = tid + 256 * q;
        if (kmaj) { kk = e & 15; r = e >> 4; } else { r = e & 63; kk = e >> 6; }
    };
    float ra[4], rb[4];
    auto fetch = [&](int k0) {
#pragma unroll
        for (int q = 0; q < 4; q++) {
            int kk, r;
            at(q, AK, kk, r);
            ra[q] = k0 + kk < K ? fa(r, k0 + kk) : 0.f;
            at(q, BK, kk, r);
            rb[q] = k0 + kk < K ? fb(k0 + kk, r) : 0.f;
        }
    };
    fetch(0);
    for (int k0 = 0; k0 < K; k0 += LA_K) {
#pragma unroll
        for (int q = 0; q < 4; q++) {
            int kk, r;
            at(q, AK, kk, r);
            sa[kk][r] = RND ? __uint_as_float(la_tf32(ra[q])) : ra[q];
            at(q, BK, kk, r);
            sb[kk][r] = RND ? __uint_as_float(la_tf32(rb[q])) : rb[q];
        }
        __syncthreads();
        hook(k0, sa);
        if (k0 + LA_K < K) fetch(k0 + LA_K);
        if (TC) {
            auto in = [](float x) { return RND ? __float_as_uint(x) : la_tf32(x); };
#pragma unroll
            for (int k8 = 0; k8 < LA_K; k8 += 8) {
                const float *a0 = sa[k8 + 2 * qi] + 8 * w + g, *a1 = sa[k8 + 2 * qi + 1] + 8 * w + g;
                const unsigned b0 = in(*a0), b1 = in(*a1);
#pragma unroll
                for (int i = 0; i < 4; i++) {
                    const float *s0 = sb[k8 + 2 * qi] + 16 * i + g, *s1 = sb[k8 + 2 * qi + 1] + 16 * i + g;
                    la_mma_tf32(d[i], in(s0[0]), in(s0[8]), in(s1[0]), in(s1[8]), b0, b1);
                }
            }
        } else {
#pragma unroll
            for (int kk = 0; kk < LA_K; kk++) {
                const float4 a4 = *(const float4 *)&sa[kk][ty * 4], b4 = *(const float4 *)&sb[kk][tx * 4];
                const float a[4] = {a4.x, a4.y, a4.z, a4.w}, b[4] = {b4.x, b4.y, b4.z, b4.w};
#pragma unroll
                for (int i = 0; i < 4; i++)
#pragma unroll
                    for (int j = 0; j < 4; j++) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
            }
        }
        __syncthreads();
    }
    // K > 0 in every call; the test is for ptxas 13, which without it gives la_chunk_out_kernel<true>
    // 124 registers (76 with) and la_chunk_state_kernel<1, true> a 4-byte spill.
    if (!TC || K <= 0) return;
    // Round h: rows 8w + 4h.. (fragment lanes qi / 2 == h write, lanes with ty = 2w + h read). With the
    // pitch 68 the writes of a warp hit distinct banks (rows 2 qi.. of x: 8 qi + g), the float4 reads too.
    float (*x)[LA_P] = (w < 4 ? sa : sb) + 4 * (w & 3);
#pragma unroll
    for (int h = 0; h < 2; h++) {
        if (qi >> 1 == h)
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int r = 0; r < 4; r++) x[2 * (qi & 1) + (r & 1)][16 * i + g + 8 * (r >> 1)] = d[i][r];
        __syncwarp();
        if (lane >> 4 == h)
#pragma unroll
            for (int i = 0; i < 4; i++) {
                const float4 v = *(const float4 *)&x[i][tx * 4];
                acc[i][0] += v.x; acc[i][1] += v.y; acc[i][2] += v.z; acc[i][3] += v.w;
            }
        __syncwarp();
    }
    __syncthreads();  // the next product stages into sa, sb
}

__device__ __forceinline__ void la_zero(float acc[4][4]) {
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) acc[i][j] = 0.f;
}

// Mirrors the state updates of la_token (S += phk v^T, z += phk; fwd) and of la_backward's reverse
// scan (U += phq dnum^T, u += phq dden; REV): st[bh, c] = the state before chunk c (fwd: sum over
// chunks < c of X^T [Y | 1]) or after it (REV: sum over chunks > c of X^T [Y / den | dden]).
// Grid (F tiles, d_h tiles, B*H); each block walks its (b, h)'s chunks in order, the tile in registers.
template <int REV, bool TC>
__global__ void __launch_bounds__(256) la_chunk_state_kernel(float *st, const float *X, const float *Y,
        const float *den, const float *dden, int T, int H, int F, int dh, int nc) {
    __shared__ __align__(16) float sa[LA_K][LA_P], sb[LA_K][LA_P];
    const int a0 = blockIdx.x * LA_T, j0 = blockIdx.y * LA_T, bh = blockIdx.z, b = bh / H, h = bh % H;
    const int tid = threadIdx.x, ty = tid >> 4, tx = tid & 15, D = H * dh, HF = H * F;
    const int zcol = blockIdx.y == 0 && tid < LA_T && a0 + tid < F;  // this thread also carries z (or u)
    const size_t fd = (size_t)F * dh;
    float acc[4][4], zacc = 0.f;
    la_zero(acc);
    for (int n = 0; n < nc; n++) {
        const int c = REV ? nc - 1 - n : n, t0 = c * LA_C, Lc = min(LA_C, T - t0);
        float *out = st + ((size_t)bh * nc + c) * (fd + F);
#pragma unroll
        for (int i = 0; i < 4; i++)
#pragma unroll
            for (int j = 0; j < 4; j++) {
                const int a = a0 + ty * 4 + i, jj = j0 + tx * 4 + j;
                if (a < F && jj < dh) out[(size_t)a * dh + jj] = acc[i][j];
            }
        if (zcol) out[fd + a0 + tid] = zacc;
        if (n == nc - 1) break;  // the last chunk's own contribution is never used
        const size_t row0 = (size_t)b * T + t0;
        const float *Xc = X + row0 * HF + (size_t)h * F + a0, *Yc = Y + row0 * D + (size_t)h * dh + j0;
        const float *dn = den + row0 * H + h, *dd = dden + row0 * H + h;
        const int na = F - a0, nj = dh - j0;
        auto fx = [=](int a, int s) { return a < na ? Xc[(size_t)s * HF + a] : 0.f; };  // X^T: (a, s)
        auto fy = [=](int s, int j) {
            if (j >= nj) return 0.f;
            float y = Yc[(size_t)s * D + j];
            return REV ? y / dn[(size_t)s * H] : y;  // dnum = do / den, as la.c
        };
        auto hz = [&](int k0, float (*a)[LA_P]) {
            if (!zcol) return;
            for (int kk = 0; kk < LA_K && k0 + kk < Lc; kk++)
                zacc += REV ? a[kk][tid] * dd[(size_t)(k0 + kk) * H] : a[kk][tid];
        };
        la_tile_mm<TC, false, false>(acc, Lc, fx, fy, hz, sa, sb);
    }
}

// Mirrors la_token's output: o = num / den with [num | den - eps] = mask(Q K^T) [V | 1] + Q [S | z]
// for one chunk; grid (d_h tiles, chunks, B*H). den [N, H] written by the first column tile.
template <bool TC>
__global__ void __launch_bounds__(256) la_chunk_out_kernel(float *o, float *den, const float *phq,
        const float *phk, const float *v, const float *st, int T, int H, int F, int dh, int nc) {
    __shared__ __align__(16) float sa[LA_K][LA_P], sb[LA_K][LA_P], sP[LA_T][LA_P];
    __shared__ float sqz[LA_T];
    const int j0 = blockIdx.x * LA_T, c = blockIdx.y, bh = blockIdx.z, b = bh / H, h = bh % H;
    const int tid = threadIdx.x, ty = tid >> 4, tx = tid & 15, D = H * dh, HF = H * F;
    const int t0 = c * LA_C, Lc = min(LA_C, T - t0), nj = dh - j0;
    const size_t row0 = (size_t)b * T + t0, fd = (size_t)F * dh;
    const float *Q = phq + row0 * HF + (size_t)h * F, *K = phk + row0 * HF + (size_t)h * F;
    const float *V = v + row0 * D + (size_t)h * dh + j0;
    const float *S = st + ((size_t)bh * nc + c) * (fd + F), *z = S + fd;
    float (*P)[LA_P] = sP;
    float acc[4][4], rs[4];
    la_zero(acc);
    auto fq = [=](int t, int a) { return t < Lc ? Q[(size_t)t * HF + a] : 0.f; };
    auto fkT = [=](int a, int s) { return s < Lc ? K[(size_t)s * HF + a] : 0.f; };
    la_tile_mm<TC, true, true>(acc, F, fq, fkT, LaNoHook(), sa, sb);
#pragma unroll
    for (int i = 0; i < 4; i++) {
        rs[i] = 0.f;
#pragma unroll
        for (int j = 0; j < 4; j++) {
            const int t = ty * 4 + i, s = tx * 4 + j;
            const float a = s <= t ? acc[i][j] : 0.f;
            P[t][s] = a;
            rs[i] += a;
            acc[i][j] = 0.f;
        }
#pragma unroll
        for (int m = 1; m < 16; m <<= 1) rs[i] += __shfl_xor_sync(0xffffffffu, rs[i], m);  // the row's 16 lanes
    }
    __syncthreads();
    auto fp = [=](int t, int s) { return P[t][s]; };
    auto fv = [=](int s, int j) { return j < nj ? V[(size_t)s * D + j] : 0.f; };
    la_tile_mm<TC, true, false>(acc, Lc, fp, fv, LaNoHook(), sa, sb);
    float qz = 0.f;  // thread tid < 64: phq_t . z for row t = tid
    auto hz = [&](int k0, float (*a)[LA_P]) {
        if (tid >= LA_T) return;
        for (int kk = 0; kk < LA_K && k0 + kk < F; kk++) qz += a[kk][tid] * z[k0 + kk];
    };
    auto fs = [=](int a, int j) { return j < nj ? S[(size_t)a * dh + j0 + j] : 0.f; };
    la_tile_mm<TC, true, false>(acc, F, fq, fs, hz, sa, sb);
    if (tid < LA_T) sqz[tid] = qz;
    __syncthreads();
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const int t = ty * 4 + i;
        if (t >= Lc) continue;
        const float dn = rs[i] + sqz[t] + LA_EPS_F, inv = 1.f / dn;
        float *orow = o + (row0 + t) * D + (size_t)h * dh + j0;
#pragma unroll
        for (int j = 0; j < 4; j++)
            if (tx * 4 + j < nj) orow[tx * 4 + j] = acc[i][j] * inv;
        if (blockIdx.x == 0 && tx == 0) den[(row0 + t) * H + h] = dn;
    }
}

// la_backward's dden = -(do.o)/den per (token, head): warp per (i, h), fixed lane order.
__global__ void la_dden_kernel(float *dden, const float *o, const float *dO, const float *den, int NH, int H, int dh) {
    const long long w = ((long long)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    const int lane = threadIdx.x & 31;
    if (w >= NH) return;
    const size_t base = (size_t)(w / H) * H * dh + (size_t)(w % H) * dh;
    float acc = 0.f;
    for (int j = lane; j < dh; j += 32) acc -= dO[base + j] * o[base + j];
    acc = warp_sum(acc);
    if (lane == 0) dden[w] = acc / den[w];
}

// Mirrors la_backward's dphq (forward re-scan: S dnum + z dden) and dphk (reverse scan: U v + u) for
// one chunk and one 64-feature tile: P = mask(dnum V^T + dden 1^T) (s <= t) in shared memory, then
// dphq = P K + dnum S^T + dden z^T and dphk = P^T Q + V U^T + 1 u^T. Grid (F tiles, chunks, B*H).
template <bool TC>
__global__ void __launch_bounds__(256) la_chunk_dqk_kernel(float *dphq, float *dphk, const float *phq,
        const float *phk, const float *v, const float *dO, const float *den, const float *dden, const float *sst,
        const float *rst, int T, int H, int F, int dh, int nc) {
    __shared__ __align__(16) float sa[LA_K][LA_P], sb[LA_K][LA_P], sP[LA_T][LA_P];
    const int a0 = blockIdx.x * LA_T, c = blockIdx.y, bh = blockIdx.z, b = bh / H, h = bh % H;
    const int tid = threadIdx.x, ty = tid >> 4, tx = tid & 15, D = H * dh, HF = H * F;
    const int t0 = c * LA_C, Lc = min(LA_C, T - t0), na = F - a0;
    const size_t row0 = (size_t)b * T + t0, fd = (size_t)F * dh, so = ((size_t)bh * nc + c) * (fd + F);
    const float *Q = phq + row0 * HF + (size_t)h * F, *K = phk + row0 * HF + (size_t)h * F;
    const float *V = v + row0 * D + (size_t)h * dh, *G = dO + row0 * D + (size_t)h * dh;
    const float *dn = den + row0 * H + h, *dd = dden + row0 * H + h;
    const float *S = sst + so, *z = S + fd, *U = rst + so, *u = U + fd;
    float (*P)[LA_P] = sP;
    float acc[4][4];
    la_zero(acc);
    auto fdn = [=](int t, int j) { return t < Lc ? G[(size_t)t * D + j] / dn[(size_t)t * H] : 0.f; };  // dnum
    auto fvT = [=](int j, int s) { return s < Lc ? V[(size_t)s * D + j] : 0.f; };
    la_tile_mm<TC, true, true>(acc, dh, fdn, fvT, LaNoHook(), sa, sb);
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const int t = ty * 4 + i;
        const float ddt = t < Lc ? dd[(size_t)t * H] : 0.f;
#pragma unroll
        for (int j = 0; j < 4; j++) {
            const int s = tx * 4 + j;
            P[t][s] = s <= t && s < Lc ? acc[i][j] + ddt : 0.f;
            acc[i][j] = 0.f;
        }
    }
    __syncthreads();
    // dphq tile
    auto fp = [=](int t, int s) { return P[t][s]; };
    auto fk = [=](int s, int a) { return a < na ? K[(size_t)s * HF + a0 + a] : 0.f; };
    la_tile_mm<TC, true, false>(acc, Lc, fp, fk, LaNoHook(), sa, sb);
    auto fsT = [=](int j, int a) { return a < na ? S[(size_t)(a0 + a) * dh + j] : 0.f; };
    la_tile_mm<TC, true, true>(acc, dh, fdn, fsT, LaNoHook(), sa, sb);
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const int t = ty * 4 + i;
        if (t >= Lc) continue;
        const float ddt = dd[(size_t)t * H];
        float *row = dphq + (row0 + t) * HF + (size_t)h * F + a0;
#pragma unroll
        for (int j = 0; j < 4; j++) {
            const int a = tx * 4 + j;
            if (a < na) row[a] = acc[i][j] + z[a0 + a] * ddt;
        }
    }
    la_zero(acc);
    // dphk tile
    auto fpT = [=](int s, int t) { return P[t][s]; };
    auto fq = [=](int t, int a) { return a < na ? Q[(size_t)t * HF + a0 + a] : 0.f; };
    la_tile_mm<TC, false, false>(acc, Lc, fpT, fq, LaNoHook(), sa, sb);
    auto fv = [=](int s, int j) { return s < Lc ? V[(size_t)s * D + j] : 0.f; };
    auto fuT = [=](int j, int a) { return a < na ? U[(size_t)(a0 + a) * dh + j] : 0.f; };
    la_tile_mm<TC, true, true>(acc, dh, fv, fuT, LaNoHook(), sa, sb);
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const int s = ty * 4 + i;
        if (s >= Lc) continue;
        float *row = dphk + (row0 + s) * HF + (size_t)h * F + a0;
#pragma unroll
        for (int j = 0; j < 4; j++) {
            const int a = tx * 4 + j;
            if (a < na) row[a] = acc[i][j] + u[a0 + a];
        }
    }
}

// Mirrors la_backward's dv = U^T phk (reverse scan): dv = mask(K Q^T) dnum (t >= s) + K U for one
// chunk and one 64-column tile; grid (d_h tiles, chunks, B*H).
template <bool TC>
__global__ void __launch_bounds__(256) la_chunk_dv_kernel(float *dv, const float *phq, const float *phk,
        const float *dO, const float *den, const float *rst, int T, int H, int F, int dh, int nc) {
    __shared__ __align__(16) float sa[LA_K][LA_P], sb[LA_K][LA_P], sP[LA_T][LA_P];
    const int j0 = blockIdx.x * LA_T, c = blockIdx.y, bh = blockIdx.z, b = bh / H, h = bh % H;
    const int tid = threadIdx.x, ty = tid >> 4, tx = tid & 15, D = H * dh, HF = H * F;
    const int t0 = c * LA_C, Lc = min(LA_C, T - t0), nj = dh - j0;
    const size_t row0 = (size_t)b * T + t0, fd = (size_t)F * dh;
    const float *Q = phq + row0 * HF + (size_t)h * F, *K = phk + row0 * HF + (size_t)h * F;
    const float *G = dO + row0 * D + (size_t)h * dh + j0, *dn = den + row0 * H + h;
    const float *U = rst + ((size_t)bh * nc + c) * (fd + F);
    float (*P)[LA_P] = sP;
    float acc[4][4];
    la_zero(acc);
    auto fk = [=](int s, int a) { return s < Lc ? K[(size_t)s * HF + a] : 0.f; };
    auto fqT = [=](int a, int t) { return t < Lc ? Q[(size_t)t * HF + a] : 0.f; };
    la_tile_mm<TC, true, true>(acc, F, fk, fqT, LaNoHook(), sa, sb);
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) {
            const int s = ty * 4 + i, t = tx * 4 + j;
            P[s][t] = t >= s ? acc[i][j] : 0.f;
            acc[i][j] = 0.f;
        }
    __syncthreads();
    auto fp = [=](int s, int t) { return P[s][t]; };
    auto fdn = [=](int t, int j) { return j < nj ? G[(size_t)t * D + j] / dn[(size_t)t * H] : 0.f; };
    la_tile_mm<TC, true, false>(acc, Lc, fp, fdn, LaNoHook(), sa, sb);
    auto fu = [=](int a, int j) { return j < nj ? U[(size_t)a * dh + j0 + j] : 0.f; };
    la_tile_mm<TC, true, false>(acc, F, fk, fu, LaNoHook(), sa, sb);
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const int s = ty * 4 + i;
        if (s >= Lc) continue;
        float *row = dv + (row0 + s) * D + (size_t)h * dh + j0;
#pragma unroll
        for (int j = 0; j < 4; j++)
            if (tx * 4 + j < nj) row[tx * 4 + j] = acc[i][j];
    }
}

static size_t la_fbw_shared(int F) { return (size_t)LA_FBW * (F + 64) * 4; }
static size_t la_fwd_shared(int F, int dh, int smem) { return ((smem ? (size_t)F * dh + F : 0) + 2 * F + dh) * 4; }
static size_t la_bwd_shared(int F, int dh, int smem) {
    return ((smem ? 2 * ((size_t)F * dh + F) : 0) + 2 * F + 4 * dh) * 4;
}

static void *la_cuda_create(const MixerCfg *c, int Bmax, int Tmax) {
    LaCudaCtx *x = (LaCudaCtx *)calloc(1, sizeof *x);
    if (!x) return NULL;
    x->D = c->d; x->H = c->heads; x->dh = c->d / c->heads; x->kind = c->feature_map;
    x->fq = c->feature_map == LA_TAYLOR ? c->feature_dim : x->dh;  // la.c's la_fq
    x->F = la_feature_size(x->kind, x->fq);
    x->Bmax = Bmax; x->Tmax = Tmax;
    size_t N = (size_t)Bmax * Tmax, D = x->D, Q = (size_t)x->H * x->fq, HF = (size_t)x->H * x->F;
    size_t st = (size_t)Bmax * x->H * 2 * ((size_t)x->F * x->dh + x->F);
    size_t sx = (size_t)Bmax * (2 * Q + 2 * D + 2 * HF + x->H);
    const char *seq = getenv("RB_CUDA_LA_SEQ");  // the sequential scans as the training form (reference)
    x->chunked = !(seq && seq[0] == '1');
    x->ncmax = cdiv(Tmax, LA_C);
    size_t cst = x->chunked ? (size_t)Bmax * x->H * x->ncmax * ((size_t)x->F * x->dh + x->F) : 0;
    size_t total = N * (4 * Q + 4 * D + 4 * HF + 2 * x->H) + st + sx + 2 * cst;
    float *w = rb_cuda_alloc(total);
    if (!w) { free(x); return NULL; }
    x->qa = w; w += N * Q;
    x->ka = w; w += N * Q;
    x->dqa = w; w += N * Q;
    x->dka = w; w += N * Q;
    x->v = w; w += N * D;
    x->o = w; w += N * D;
    x->dO = w; w += N * D;
    x->dv = w; w += N * D;
    x->phq = w; w += N * HF;
    x->phk = w; w += N * HF;
    x->dphq = w; w += N * HF;
    x->dphk = w; w += N * HF;
    x->den = w; w += N * x->H;
    x->dden = w; w += N * x->H;
    x->sst = w; w += cst;
    x->rst = w; w += cst;
    x->st = w; w += st;
    x->sx = w;
    int dev = 0, optin = 0;
    CHECK_CUDA(cudaGetDevice(&dev));
    CHECK_CUDA(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
    size_t lim = (size_t)optin - 32 * 4;  // the static reduction buffer
    x->smem_fwd = la_fwd_shared(x->F, x->dh, 1) <= lim;
    x->smem_bwd = la_bwd_shared(x->F, x->dh, 1) <= lim;
    x->shb_fwd = la_fwd_shared(x->F, x->dh, x->smem_fwd);
    x->shb_bwd = la_bwd_shared(x->F, x->dh, x->smem_bwd);
    if (x->shb_fwd > lim || x->shb_bwd > lim) { rb_cuda_free(x->qa); free(x); return NULL; }
    CHECK_CUDA(cudaFuncSetAttribute(la_scan_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)x->shb_fwd));
    CHECK_CUDA(cudaFuncSetAttribute(la_bwd_scan_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)x->shb_bwd));
    return x;
}

static void la_cuda_destroy(void *ctx) {
    LaCudaCtx *x = (LaCudaCtx *)ctx;
    if (!x) return;
    rb_cuda_free(x->qa);  // the first carve of the one allocation
    free(x);
}

static void la_features_launch(const LaCudaCtx *c, float *phq, float *phk, const float *qa, const float *ka, int N) {
    long long n = 2LL * N * c->H;
    la_features_kernel<<<cdiv(n, LA_FW), 32 * LA_FW, 0, rb_cuda_stream()>>>(phq, phk, qa, ka, N, c->H, c->fq, c->F,
                                                                            c->kind);
    CHECK_LAUNCH();
}

static void la_cuda_forward(Mixer *mx, float *const *p, float *out, const float *inp, int B, int T) {
    LaCudaCtx *c = (LaCudaCtx *)mx->ctx;
    const int N = B * T, D = c->D, H = c->H, dh = c->dh, F = c->F, Q = c->H * c->fq;
    rb_cuda_matmul(c->qa, inp, p[LA_WQ], N, Q, D, 0, 1, 0.f);
    rb_cuda_matmul(c->ka, inp, p[LA_WK], N, Q, D, 0, 1, 0.f);
    rb_cuda_matmul(c->v, inp, p[LA_WV], N, D, D, 0, 1, 0.f);
    la_features_launch(c, c->phq, c->phk, c->qa, c->ka, N);
    if (c->chunked) {
        const int nc = cdiv(T, LA_C);
        const bool tc = rb_cuda_precision() != RB_PREC_FP32;  // as attention.cu: fp32 exact, else tf32 mma
        auto *state = tc ? la_chunk_state_kernel<0, true> : la_chunk_state_kernel<0, false>;
        auto *out = tc ? la_chunk_out_kernel<true> : la_chunk_out_kernel<false>;
        state<<<dim3(cdiv(F, LA_T), cdiv(dh, LA_T), B * H), 256, 0, rb_cuda_stream()>>>(
            c->sst, c->phk, c->v, c->den, c->dden, T, H, F, dh, nc);
        CHECK_LAUNCH();
        out<<<dim3(cdiv(dh, LA_T), nc, B * H), 256, 0, rb_cuda_stream()>>>(
            c->o, c->den, c->phq, c->phk, c->v, c->sst, T, H, F, dh, nc);
        CHECK_LAUNCH();
    } else {
        la_scan_kernel<<<B * H, LA_THREADS, c->shb_fwd, rb_cuda_stream()>>>(
            c->o, c->den, c->phq, c->phk, c->v, c->st, 2LL * ((long long)F * dh + F), c->smem_fwd, 1, T, H, F, dh);
        CHECK_LAUNCH();
    }
    rb_cuda_matmul(out, c->o, p[LA_WO], N, D, D, 0, 1, 0.f);
}

static void la_cuda_backward(Mixer *mx, float *const *p, float *const *dp, float *dinp, const float *dout,
                             const float *inp, int B, int T) {
    LaCudaCtx *c = (LaCudaCtx *)mx->ctx;
    const int N = B * T, D = c->D, H = c->H, dh = c->dh, F = c->F, Q = c->H * c->fq;
    rb_cuda_matmul(c->dO, dout, p[LA_WO], N, D, D, 0, 0, 0.f);
    rb_cuda_matmul(dp[LA_WO], dout, c->o, D, D, N, 1, 0, 1.f);
    if (c->chunked) {
        const int nc = cdiv(T, LA_C);
        const bool tc = rb_cuda_precision() != RB_PREC_FP32;
        auto *state = tc ? la_chunk_state_kernel<1, true> : la_chunk_state_kernel<1, false>;
        auto *dqk = tc ? la_chunk_dqk_kernel<true> : la_chunk_dqk_kernel<false>;
        auto *dv = tc ? la_chunk_dv_kernel<true> : la_chunk_dv_kernel<false>;
        la_dden_kernel<<<cdiv((long long)N * H * 32, 256), 256, 0, rb_cuda_stream()>>>(c->dden, c->o, c->dO, c->den,
                                                                                      N * H, H, dh);
        CHECK_LAUNCH();
        state<<<dim3(cdiv(F, LA_T), cdiv(dh, LA_T), B * H), 256, 0, rb_cuda_stream()>>>(
            c->rst, c->phq, c->dO, c->den, c->dden, T, H, F, dh, nc);
        CHECK_LAUNCH();
        dqk<<<dim3(cdiv(F, LA_T), nc, B * H), 256, 0, rb_cuda_stream()>>>(
            c->dphq, c->dphk, c->phq, c->phk, c->v, c->dO, c->den, c->dden, c->sst, c->rst, T, H, F, dh, nc);
        CHECK_LAUNCH();
        dv<<<dim3(cdiv(dh, LA_T), nc, B * H), 256, 0, rb_cuda_stream()>>>(
            c->dv, c->phq, c->phk, c->dO, c->den, c->rst, T, H, F, dh, nc);
        CHECK_LAUNCH();
    } else {
        la_bwd_scan_kernel<<<B * H, LA_THREADS, c->shb_bwd, rb_cuda_stream()>>>(c->dphq, c->dphk, c->dv, c->phq,
                                                                               c->phk, c->v, c->o, c->dO, c->den,
                                                                               c->st, c->smem_bwd, T, H, F, dh);
        CHECK_LAUNCH();
    }
    long long n = 2LL * N * H;
    la_features_backward_kernel<<<cdiv(n, LA_FBW), 32 * LA_FBW, la_fbw_shared(F), rb_cuda_stream()>>>(
        c->dqa, c->dka, c->dphq, c->dphk, c->qa, c->ka, N, H, c->fq, F, c->kind);
    CHECK_LAUNCH();
    rb_cuda_matmul(dinp, c->dqa, p[LA_WQ], N, D, Q, 0, 0, 0.f);
    rb_cuda_matmul(dinp, c->dka, p[LA_WK], N, D, Q, 0, 0, 1.f);
    rb_cuda_matmul(dinp, c->dv, p[LA_WV], N, D, D, 0, 0, 1.f);
    rb_cuda_matmul(dp[LA_WQ], c->dqa, inp, Q, D, N, 1, 0, 1.f);
    rb_cuda_matmul(dp[LA_WK], c->dka, inp, Q, D, N, 1, 0, 1.f);
    rb_cuda_matmul(dp[LA_WV], c->dv, inp, D, D, N, 1, 0, 1.f);
}

// As la_step_state_size: per head [S (F x d_h), z (F)].
static size_t la_cuda_step_state_size(const Mixer *mx) {
    const LaCudaCtx *c = (const LaCudaCtx *)mx->ctx;
    return (size_t)c->H * ((size_t)c->F * c->dh + c->F);
}

// Mirrors la_step for B sequences: the scan kernel with T = 1 on the caller's state in place.
static void la_cuda_step(Mixer *mx, float *const *p, float *state, float *out, const float *x, int B, int t) {
    LaCudaCtx *c = (LaCudaCtx *)mx->ctx;
    const int D = c->D, H = c->H, dh = c->dh, F = c->F, Q = c->H * c->fq;
    float *qa = c->sx, *ka = qa + (size_t)B * Q, *v = ka + (size_t)B * Q, *o = v + (size_t)B * D;
    float *phq = o + (size_t)B * D, *phk = phq + (size_t)B * H * F, *den = phk + (size_t)B * H * F;
    rb_cuda_matmul(qa, x, p[LA_WQ], B, Q, D, 0, 1, 0.f);
    rb_cuda_matmul(ka, x, p[LA_WK], B, Q, D, 0, 1, 0.f);
    rb_cuda_matmul(v, x, p[LA_WV], B, D, D, 0, 1, 0.f);
    la_features_launch(c, phq, phk, qa, ka, B);
    la_scan_kernel<<<B * H, LA_THREADS, la_fwd_shared(F, dh, 0), rb_cuda_stream()>>>(
        o, den, phq, phk, v, state, (long long)F * dh + F, 0, 0, 1, H, F, dh);
    CHECK_LAUNCH();
    rb_cuda_matmul(out, o, p[LA_WO], B, D, D, 0, 1, 0.f);
}

extern "C" const MixerCudaOps la_cuda_ops = {
    la_cuda_create, la_cuda_destroy, la_cuda_forward, la_cuda_backward, la_cuda_step_state_size, la_cuda_step,
};
