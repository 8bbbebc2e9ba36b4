// attention.cu — device form of models/mixers/attention.c and swa.c (causal multi-head softmax
// attention, optional per-head window): fused qkv projection, a flash-style core, wo projection.
// Depends on layers.cuh (cuda_linear_*), common.cuh, ../mixers/attention.h (param specs, CPU ops).
//
// The core mirrors layers.c mha_forward / mha_backward / mha_step: nothing T x T in memory; the
// forward keeps the per-row log-sum-exp lse [B,H,T]; the backward recomputes probabilities from it
// (FlashAttention-2: Dsum = rowsum(dO * O) first, then one kernel per key tile accumulating dk, dv
// over query tiles, and one per query tile accumulating dq over key tiles: no atomics, fixed order).
// A query tile visits only the key tiles its rows can see ((t - W_h, t]), so swa costs O(T W). The
// head dim is padded to DHP in {16,32,48,64,96,128} (zeros in shared memory, exact). Two forms of the
// three kernels: tf32 tensor cores (mma.sync) with every score in registers, the default; and fp32 FMA
// tiles staged in shared memory for --precision fp32 (the --precision contract: fp32 exact).
// tools/attn_emu.sh runs the tf32 kernels on the host against a double reference.
#include <math.h>
#include <string.h>
#include "layers.cuh"
extern "C" {
#include "../mixers/attention.h"
}

#define ATT_B 64  // queries per tile = keys per tile
#define ATT_LDP (ATT_B + 4)

typedef struct {
    int win[RB_MAX_HEADS];   // window per head, 0 = all past tokens (as AttnCtx.window)
} AttWin;

typedef struct {
    int cap[RB_MAX_HEADS];         // cache rows per head (Tmax, or W_h for swa)
    long long off[RB_MAX_HEADS];   // head h's K rows at state + off[h], V rows after
} AttCache;

typedef struct {
    int D, H, dh, dhp, windowed, Bmax, Tmax, maxcap;
    AttWin w;
    AttCache c;
    size_t state_size;
    float *qkv, *att, *lse, *dqkv, *datt, *dsum, *scratch;  // as AttnCtx (+ dsum [B,H,T], colsum scratch)
    float *sq, *so, *ssc;                                   // step: qkv [Bmax,3D], core out [Bmax,D], scores
} AttCudaCtx;

__device__ __forceinline__ int head_win(const AttWin &w, int h) { return w.win[h] > 0 ? w.win[h] : (1 << 29); }

// ---- device primitives (inline PTX; tools/attn_emu.cpp defines these seven on cuda_emu.h) ----------
__device__ __forceinline__ unsigned att_tf32(float x) { return rb_tf32_bits(x); }
// d += A B for one warp, mma.sync m16n8k8 tf32 (lane g = lane/4, q = lane%4): a0..a3 = A(g, q), A(g+8, q),
// A(g, q+4), A(g+8, q+4); b0, b1 = B(q, g), B(q+4, g); d0..d3 = D(g, 2q), D(g, 2q+1), D(g+8, 2q), D(g+8, 2q+1).
__device__ __forceinline__ void att_mma_tf32(float (&d)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
    asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
// ldmatrix .x4 of 32-bit elements: lane l passes the address of row l % 8 of matrix l / 8 (4 floats, 16-byte
// aligned) and gets r[i] = element l % 4 of row l / 4 of matrix i: one instruction for a whole A fragment, or
// for the B fragments of two n tiles.
__device__ __forceinline__ void att_ldsm4(unsigned (&r)[4], const float *p) {
    unsigned a = (unsigned)__cvta_generic_to_shared(p);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(a));
}
// Asynchronous 16-byte copies global -> shared (cp.async, sm_80+): a whole tile is in flight at
// once, and the next tile loads while this one is used. src_bytes 0 writes zeros (padding).
__device__ __forceinline__ void cp_async16(float *dst, const float *src, int src_bytes) {
    unsigned d = (unsigned)__cvta_generic_to_shared(dst);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(d), "l"(src), "r"(src_bytes));
}
__device__ __forceinline__ void cp_async4(float *dst, const float *src, int src_bytes) {
    unsigned d = (unsigned)__cvta_generic_to_shared(dst);
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(d), "l"(src), "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N> __device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

template <int NT> __device__ __forceinline__ void zero_acc(float (&acc)[NT][4]) {
#pragma unroll
    for (int j = 0; j < NT; j++) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.f;
}

// ---- tf32 tensor-core kernels (the default precision): FlashAttention-2's register layout ------------
// A block owns FA_R = 64 rows (queries; keys in dk/dv), four warps of 16, and walks the other side in
// tiles of FA_C = 32 rows (keys; queries in dk/dv) staged in shared memory. Scores, probabilities and
// their gradients stay in registers: the m16n8k8 accumulator of S (lane (g, q): rows g, g+8, columns
// 2q, 2q+1 of each 8-column group) is read as the A fragment of the next product by taking its k slots
// q and q+4 as columns 2q and 2q+1 (a sum over the keys, in a fixed order). Shared rows are DHP + 4
// floats apart, so every fragment load (ldmatrix, or lane loads) is conflict-free. Masks are evaluated
// only in tiles that cross the diagonal, a window edge or T. Exponentials in base 2 with the scale folded in.
// Inputs are tf32 values already: q | k | v leave their projection rounded (cuda_linear_forward_tf32) and
// attn_dsum_kernel rounds dO in place, so only the probabilities and dS are rounded here (the same
// products as rounding every operand at its use, with no conversions in the inner loops).
// Each warp's rows are its own, so no barrier separates the softmax from the products; cp.async
// loads the next key (value) tile while this tile's values (next keys) are used.
#define FA_R 64
#define FA_C 32
#define FA_THR 128
#define FA_LOG2E 1.4426950408889634f
#define FA_LN2 0.6931471805599453f

template <int DHP> struct Fa {
    static constexpr int LD = DHP + 4, NK = DHP / 8, NJ = FA_C / 8;  // row stride; 8-wide tiles over dh, FA_C
    static constexpr size_t fwd_smem = sizeof(float) * LD * (FA_R + 2 * FA_C);  // Q; K, V tiles
    static constexpr size_t bwd_smem = sizeof(float) * (LD * (2 * FA_R + 2 * FA_C) + 2 * FA_C);
};

// dst[ROWS][ld] = n rows of one head's dh columns of a matrix of row stride ldsrc, by NTHR threads;
// zeros past n rows and dh columns (up to DHP). vec (dh, ldsrc multiples of 4): cp.async, complete after
// cp_async_wait + barrier; else plain loads (complete after the barrier). Both forms' kernels load with it.
template <int ROWS, int DHP, int NTHR>
__device__ __forceinline__ void load_tile(float *dst, int ld, const float *src, long long ldsrc, int n, int dh,
                                          bool vec) {
    if (vec) {
        constexpr int V4 = DHP / 4, TOT = ROWS * V4;
#pragma unroll 4
        for (int i = threadIdx.x; i < TOT; i += NTHR) {
            int r = i / V4, c = (i % V4) * 4;
            bool ok = r < n && c < dh;
            cp_async16(dst + r * ld + c, ok ? src + r * ldsrc + c : src, ok ? 16 : 0);
        }
    } else {
        for (int i = threadIdx.x; i < ROWS * DHP; i += NTHR) {
            int r = i / DHP, c = i % DHP;
            dst[r * ld + c] = r < n && c < dh ? src[r * ldsrc + c] : 0.f;
        }
    }
}
// the tf32 kernels' tiles: FA_THR threads, row stride Fa<DHP>::LD
template <int ROWS, int DHP>
__device__ __forceinline__ void fa_load(float *dst, const float *src, long long ldsrc, int n, int dh, bool vec) {
    load_tile<ROWS, DHP, FA_THR>(dst, Fa<DHP>::LD, src, ldsrc, n, dh, vec);
}

// acc[j] = A C^T over dh: the warp's 16 rows of A (shared, FA_R rows) against rows 8j..8j+7 of C
// (shared, FA_C rows); acc in the accumulator layout, rows = the warp's, columns = C's rows. ldmatrix
// row addresses: A's matrix m is rows 8 (m & 1) .. of the warp's, columns 4 (m >> 1) of the k step; C's
// is rows 8 (m >> 1) .. of an n-tile pair, columns 4 (m & 1).
template <int DHP>
__device__ __forceinline__ void fa_dot(float (&acc)[Fa<DHP>::NJ][4], const float *A, const float *C) {
    constexpr int LD = Fa<DHP>::LD, NJ = Fa<DHP>::NJ;
    static_assert(NJ % 2 == 0, "n tiles go in pairs");
    const int lane = threadIdx.x & 31, i = lane & 7, mx = lane >> 3;
    const float *pa = A + ((threadIdx.x >> 5) * 16 + (mx & 1) * 8 + i) * LD + 4 * (mx >> 1);
    const float *pc = C + (8 * (mx >> 1) + i) * LD + 4 * (mx & 1);
    zero_acc(acc);
#pragma unroll
    for (int k = 0; k < DHP; k += 8) {
        unsigned a[4];
        att_ldsm4(a, pa + k);
#pragma unroll
        for (int j = 0; j < NJ; j += 2) {
            unsigned b[4];
            att_ldsm4(b, pc + j * 8 * LD + k);
            att_mma_tf32(acc[j], a, b[0], b[1]);
            att_mma_tf32(acc[j + 1], a, b[2], b[3]);
        }
    }
}

// acc[n] += P M[:, 8n..8n+7]: P the warp's 16 x FA_C register tile (accumulator layout, as fa_dot's),
// M FA_C shared rows (keys, or queries in dk/dv) of dh columns.
template <int DHP>
__device__ __forceinline__ void fa_pm(float (&acc)[Fa<DHP>::NK][4], const float (&p)[Fa<DHP>::NJ][4], const float *M) {
    constexpr int LD = Fa<DHP>::LD, NJ = Fa<DHP>::NJ, NK = Fa<DHP>::NK;
    const int lane = threadIdx.x & 31, g = lane >> 2, q = lane & 3;
#pragma unroll
    for (int j = 0; j < NJ; j++) {
        const unsigned af[4] = {att_tf32(p[j][0]), att_tf32(p[j][2]), att_tf32(p[j][1]), att_tf32(p[j][3])};
        const float *m = M + (8 * j + 2 * q) * LD + g;  // k slot q: row 8j + 2q; slot q + 4: row 8j + 2q + 1
#pragma unroll
        for (int n = 0; n < NK; n++) att_mma_tf32(acc[n], af, __float_as_uint(m[8 * n]), __float_as_uint(m[LD + 8 * n]));
    }
}

// dst[t][c] = acc * f (f0 for row t0, f1 for row t0 + 8) for the rows t < T and columns c < dh of the warp's
// 16 x DHP accumulator tile (t0 = the lane's first row); column pairs as one 8-byte store where both exist
// and the address is aligned.
template <int DHP>
__device__ __forceinline__ void fa_store(float *dst, int ldd, const float (&acc)[Fa<DHP>::NK][4], float f0, float f1,
                                         int t0, int T, int dh) {
    const int q = threadIdx.x & 3;
#pragma unroll
    for (int i = 0; i < 2; i++) {
        const int t = t0 + 8 * i;
        if (t >= T) continue;
        float *row = dst + (long long)t * ldd;
        const float f = i ? f1 : f0;
#pragma unroll
        for (int n = 0; n < Fa<DHP>::NK; n++) {
            const int c = 8 * n + 2 * q;
            float x = acc[n][2 * i] * f, y = acc[n][2 * i + 1] * f;
            if (c + 1 < dh && ((uintptr_t)(row + c) & 7) == 0) *(float2 *)(row + c) = make_float2(x, y);
            else {
                if (c < dh) row[c] = x;
                if (c + 1 < dh) row[c + 1] = y;
            }
        }
    }
}

// Forward: mirrors mha_forward (online softmax over the visible key tiles); lse in natural log.
template <int DHP>
__global__ void __launch_bounds__(FA_THR, 3) attn_fwd_fa_kernel(float *out, int ldo, float *lse, const float *qkv,
                                                                int ld, AttWin win, int T, int H, int dh, float scale,
                                                                bool vec) {
    constexpr int LD = Fa<DHP>::LD, NJ = Fa<DHP>::NJ, NK = Fa<DHP>::NK;
    extern __shared__ float sm[];
    float *Qs = sm, *Ks = Qs + FA_R * LD, *Vs = Ks + FA_C * LD;
    const int bh = blockIdx.y, b = bh / H, h = bh % H, q0 = blockIdx.x * FA_R, W = head_win(win, h), D = ldo;
    const int lane = threadIdx.x & 31, g = lane >> 2, q = lane & 3, t0 = q0 + (threadIdx.x >> 5) * 16 + g;
    const float *base = qkv + (long long)b * T * ld + h * dh;
    const int lo = max(0, q0 - W + 1), hi = min(T, q0 + FA_R) - 1, kfirst = lo / FA_C * FA_C;
    const float c2 = scale * FA_LOG2E;
    fa_load<FA_R, DHP>(Qs, base + (long long)q0 * ld, ld, T - q0, dh, vec);
    fa_load<FA_C, DHP>(Ks, base + (long long)kfirst * ld + D, ld, T - kfirst, dh, vec);
    cp_async_commit();
    fa_load<FA_C, DHP>(Vs, base + (long long)kfirst * ld + 2 * D, ld, T - kfirst, dh, vec);
    cp_async_commit();
    float o[NK][4], m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};
    zero_acc(o);
    for (int k0 = kfirst; k0 <= hi; k0 += FA_C) {
        const int k1 = k0 + FA_C;
        cp_async_wait<1>();  // Q and this key tile (its values may still be in flight)
        __syncthreads();
        float s[NJ][4];
        fa_dot<DHP>(s, Qs, Ks);
        __syncthreads();  // every warp is done with Ks
        if (k1 <= hi) fa_load<FA_C, DHP>(Ks, base + (long long)k1 * ld + D, ld, T - k1, dh, vec);
        cp_async_commit();
        const bool full = k1 - 1 <= q0 && q0 + FA_R - 1 - k0 < W;
        float mx[2] = {m[0], m[1]};
#pragma unroll
        for (int j = 0; j < NJ; j++)
#pragma unroll
            for (int r = 0; r < 4; r++) {
                float v = s[j][r] * c2;
                if (!full) {
                    int t = t0 + 8 * (r >> 1), sk = k0 + 8 * j + 2 * q + (r & 1);
                    if (sk > t || t - sk >= W) v = -INFINITY;  // keys past T: sk > t for every row t < T
                }
                s[j][r] = v;
                mx[r >> 1] = fmaxf(mx[r >> 1], v);
            }
        float al[2];
#pragma unroll
        for (int i = 0; i < 2; i++) {
            mx[i] = fmaxf(mx[i], __shfl_xor_sync(0xffffffffu, mx[i], 1));
            mx[i] = fmaxf(mx[i], __shfl_xor_sync(0xffffffffu, mx[i], 2));
            al[i] = mx[i] == -INFINITY ? 1.f : exp2f(m[i] - mx[i]);
            m[i] = mx[i];
            l[i] *= al[i];
        }
#pragma unroll
        for (int j = 0; j < NJ; j++)
#pragma unroll
            for (int r = 0; r < 4; r++) {
                float p = m[r >> 1] == -INFINITY ? 0.f : exp2f(s[j][r] - m[r >> 1]);
                s[j][r] = p;
                l[r >> 1] += p;
            }
#pragma unroll
        for (int n = 0; n < NK; n++)
#pragma unroll
            for (int r = 0; r < 4; r++) o[n][r] *= al[r >> 1];
        cp_async_wait<1>();  // this value tile (the next key tile may still be in flight)
        __syncthreads();
        fa_pm<DHP>(o, s, Vs);
        __syncthreads();  // every warp is done with Vs
        if (k1 <= hi) fa_load<FA_C, DHP>(Vs, base + (long long)k1 * ld + 2 * D, ld, T - k1, dh, vec);
        cp_async_commit();
    }
#pragma unroll
    for (int i = 0; i < 2; i++) {
        l[i] += __shfl_xor_sync(0xffffffffu, l[i], 1);
        l[i] += __shfl_xor_sync(0xffffffffu, l[i], 2);
    }
    fa_store<DHP>(out + (long long)b * T * ldo + h * dh, ldo, o, 1.f / l[0], 1.f / l[1], t0, T, dh);
#pragma unroll
    for (int i = 0; i < 2; i++)
        if (q == 0 && t0 + 8 * i < T) lse[(long long)bh * T + t0 + 8 * i] = (m[i] + log2f(l[i])) * FA_LN2;
}

// dq of one query tile over its visible key tiles: dS = P (dP - Dsum), dQ = scale dS K.
template <int DHP>
__global__ void __launch_bounds__(FA_THR, 2) attn_bwd_dq_fa_kernel(float *dqkv, int ldd, const float *dout, int ldo,
                                                                   const float *lse, const float *dsum, const float *qkv,
                                                                   int ld, AttWin win, int T, int H, int dh,
                                                                   float scale, bool vec) {
    constexpr int LD = Fa<DHP>::LD, NJ = Fa<DHP>::NJ, NK = Fa<DHP>::NK;
    extern __shared__ float sm[];
    float *Qs = sm, *Gs = Qs + FA_R * LD, *Ks = Gs + FA_R * LD, *Vs = Ks + FA_C * LD;
    const int bh = blockIdx.y, b = bh / H, h = bh % H, q0 = blockIdx.x * FA_R, W = head_win(win, h), D = ldo;
    const int lane = threadIdx.x & 31, g = lane >> 2, q = lane & 3, t0 = q0 + (threadIdx.x >> 5) * 16 + g;
    const float *base = qkv + (long long)b * T * ld + h * dh;
    const int lo = max(0, q0 - W + 1), hi = min(T, q0 + FA_R) - 1, kfirst = lo / FA_C * FA_C;
    const float c2 = scale * FA_LOG2E;
    fa_load<FA_R, DHP>(Qs, base + (long long)q0 * ld, ld, T - q0, dh, vec);
    fa_load<FA_R, DHP>(Gs, dout + ((long long)b * T + q0) * ldo + h * dh, ldo, T - q0, dh, vec);
    fa_load<FA_C, DHP>(Vs, base + (long long)kfirst * ld + 2 * D, ld, T - kfirst, dh, vec);
    cp_async_commit();
    fa_load<FA_C, DHP>(Ks, base + (long long)kfirst * ld + D, ld, T - kfirst, dh, vec);
    cp_async_commit();
    float l2[2], dr[2];
#pragma unroll
    for (int i = 0; i < 2; i++) {
        int t = t0 + 8 * i;
        l2[i] = t < T ? lse[(long long)bh * T + t] * FA_LOG2E : 0.f;
        dr[i] = t < T ? dsum[(long long)bh * T + t] : 0.f;
    }
    float dq[NK][4];
    zero_acc(dq);
    // the value tile first: dP = dO V^T runs while the key tile is still in flight
    for (int k0 = kfirst; k0 <= hi; k0 += FA_C) {
        const int k1 = k0 + FA_C;
        cp_async_wait<1>();  // Q, dO and this value tile (the key tile may still be in flight)
        __syncthreads();
        float s[NJ][4], dp[NJ][4];
        fa_dot<DHP>(dp, Gs, Vs);
        __syncthreads();  // every warp is done with Vs
        if (k1 <= hi) fa_load<FA_C, DHP>(Vs, base + (long long)k1 * ld + 2 * D, ld, T - k1, dh, vec);
        cp_async_commit();
        cp_async_wait<1>();  // this key tile (the next value tile may still be in flight)
        __syncthreads();
        fa_dot<DHP>(s, Qs, Ks);
        const bool full = k1 - 1 <= q0 && q0 + FA_R - 1 - k0 < W && q0 + FA_R <= T;
#pragma unroll
        for (int j = 0; j < NJ; j++)
#pragma unroll
            for (int r = 0; r < 4; r++) {
                int t = t0 + 8 * (r >> 1), sk = k0 + 8 * j + 2 * q + (r & 1);
                bool ok = full || (sk <= t && t - sk < W && t < T);
                float p = ok ? exp2f(s[j][r] * c2 - l2[r >> 1]) : 0.f;
                s[j][r] = p * (dp[j][r] - dr[r >> 1]);
            }
        fa_pm<DHP>(dq, s, Ks);
        __syncthreads();  // every warp is done with Ks
        if (k1 <= hi) fa_load<FA_C, DHP>(Ks, base + (long long)k1 * ld + D, ld, T - k1, dh, vec);
        cp_async_commit();
    }
    fa_store<DHP>(dqkv + (long long)b * T * ldd + h * dh, ldd, dq, scale, scale, t0, T, dh);
}

// dk, dv of one key tile over the query tiles that see it: rows = keys, columns = queries (S^T, dP^T);
// dV = P^T dO, dK = scale dS^T Q.
template <int DHP>
__global__ void __launch_bounds__(FA_THR, 2) attn_bwd_dkdv_fa_kernel(float *dqkv, int ldd, const float *dout,
                                                                     int ldo, const float *lse, const float *dsum,
                                                                     const float *qkv, int ld, AttWin win, int T,
                                                                     int H, int dh, float scale, bool vec) {
    constexpr int LD = Fa<DHP>::LD, NJ = Fa<DHP>::NJ, NK = Fa<DHP>::NK;
    extern __shared__ float sm[];
    float *Ks = sm, *Vs = Ks + FA_R * LD, *Qs = Vs + FA_R * LD, *Gs = Qs + FA_C * LD, *ls = Gs + FA_C * LD;
    float *ds = ls + FA_C;
    const int bh = blockIdx.y, b = bh / H, h = bh % H, k0 = blockIdx.x * FA_R, W = head_win(win, h), D = ldo;
    const int lane = threadIdx.x & 31, g = lane >> 2, q = lane & 3, s0 = k0 + (threadIdx.x >> 5) * 16 + g;
    const float *base = qkv + (long long)b * T * ld + h * dh, *gbase = dout + (long long)b * T * ldo + h * dh;
    const int hi = min(T - 1, k0 + FA_R - 1 + W - 1);
    const float c2 = scale * FA_LOG2E;
    // the query tile at q1 in two groups: Q with lse, then dO with Dsum (4-byte copies, zeros past T)
    auto load_q = [&](int q1) {
        fa_load<FA_C, DHP>(Qs, base + (long long)q1 * ld, ld, T - q1, dh, vec);
        for (int i = threadIdx.x; i < FA_C; i += FA_THR) cp_async4(ls + i, lse + (long long)bh * T + q1 + i, q1 + i < T ? 4 : 0);
    };
    auto load_g = [&](int q1) {
        fa_load<FA_C, DHP>(Gs, gbase + (long long)q1 * ldo, ldo, T - q1, dh, vec);
        for (int i = threadIdx.x; i < FA_C; i += FA_THR) cp_async4(ds + i, dsum + (long long)bh * T + q1 + i, q1 + i < T ? 4 : 0);
    };
    fa_load<FA_R, DHP>(Ks, base + (long long)k0 * ld + D, ld, T - k0, dh, vec);
    fa_load<FA_R, DHP>(Vs, base + (long long)k0 * ld + 2 * D, ld, T - k0, dh, vec);
    load_q(k0);
    cp_async_commit();
    load_g(k0);
    cp_async_commit();
    float dk[NK][4], dv[NK][4];
    zero_acc(dk);
    zero_acc(dv);
    // dK (the last use of Q) before dV (of dO): the next Q loads during dV, the next dO during S^T
    for (int q0 = k0; q0 <= hi; q0 += FA_C) {
        const int q1 = q0 + FA_C;
        cp_async_wait<1>();  // K, V, this Q and lse (dO may still be in flight)
        __syncthreads();
        float st[NJ][4], dpt[NJ][4];
        fa_dot<DHP>(st, Ks, Qs);
        cp_async_wait<0>();  // dO and Dsum
        __syncthreads();
        fa_dot<DHP>(dpt, Vs, Gs);
        const bool full = k0 + FA_R - 1 <= q0 && q0 + FA_C - 1 - k0 < W && q1 <= T;
#pragma unroll
        for (int j = 0; j < NJ; j++)
#pragma unroll
            for (int r = 0; r < 4; r++) {
                int sk = s0 + 8 * (r >> 1), c = 8 * j + 2 * q + (r & 1), t = q0 + c;
                bool ok = full || (sk <= t && t - sk < W && t < T);
                float p = ok ? exp2f(st[j][r] * c2 - ls[c] * FA_LOG2E) : 0.f;
                st[j][r] = p;
                dpt[j][r] = p * (dpt[j][r] - ds[c]);
            }
        fa_pm<DHP>(dk, dpt, Qs);
        __syncthreads();  // every warp is done with Q and lse
        if (q1 <= hi) load_q(q1);
        cp_async_commit();
        fa_pm<DHP>(dv, st, Gs);
        __syncthreads();  // every warp is done with dO and Dsum
        if (q1 <= hi) load_g(q1);
        cp_async_commit();
    }
    fa_store<DHP>(dqkv + (long long)b * T * ldd + D + h * dh, ldd, dk, scale, scale, s0, T, dh);
    fa_store<DHP>(dqkv + (long long)b * T * ldd + 2 * D + h * dh, ldd, dv, 1.f, 1.f, s0, T, dh);
}
// ---- end of the tf32 kernels ----------------------------------------------------------------------

// ---- fp32 kernels (--precision fp32): 64 x 64 tiles of fp32 FMAs staged in shared memory ----------
// A warp owns 16-row x 8-column output tiles in the mma.sync m16n8k8 accumulator layout (lane g =
// lane/4, q = lane%4: rows g and g+8, columns 2q and 2q+1). With NW warps over M = 64 rows: warp w
// owns tile row w%4 and column slice w/4 of NW/4 slices, NT = N/8/(NW/4) tiles. Element acc[j][r]:
// row (w%4)*16 + g + 8*(r>>1), column slice*NT*8 + j*8 + 2q + (r&1).
template <int N, int NW> struct Tile {
    static constexpr int NT = N / 8 / (NW / 4);
    static_assert(N % (8 * (NW / 4)) == 0, "tile columns must split over the warps");
};

__device__ __forceinline__ int tile_row(int r) {
    int w = threadIdx.x >> 5, g = (threadIdx.x & 31) >> 2;
    return (w & 3) * 16 + g + 8 * (r >> 1);
}
template <int N, int NW> __device__ __forceinline__ int tile_col(int j, int r) {
    int w = threadIdx.x >> 5, q = threadIdx.x & 3;
    return (w >> 2) * Tile<N, NW>::NT * 8 + j * 8 + 2 * q + (r & 1);
}

// acc (+)= A[64,K] B[K,N]; A(m,k), B(k,n) read shared memory. K multiple of 8.
template <int N, int NW, class FA, class FB>
__device__ __forceinline__ void tile_mma(float (&acc)[Tile<N, NW>::NT][4], FA A, FB B, int K) {
    constexpr int NT = Tile<N, NW>::NT;
    const int w = threadIdx.x >> 5, q = threadIdx.x & 3;
    const int r0 = (w & 3) * 16 + ((threadIdx.x & 31) >> 2), c0 = (w >> 2) * NT * 8;
    for (int k = 0; k < K; k += 8) {
#pragma unroll
        for (int kk = 0; kk < 8; kk++) {
            float lo = A(r0, k + kk), hi = A(r0 + 8, k + kk);
#pragma unroll
            for (int j = 0; j < NT; j++) {
                int n = c0 + j * 8 + 2 * q;
                float b0 = B(k + kk, n), b1 = B(k + kk, n + 1);
                acc[j][0] = fmaf(lo, b0, acc[j][0]);
                acc[j][1] = fmaf(lo, b1, acc[j][1]);
                acc[j][2] = fmaf(hi, b0, acc[j][2]);
                acc[j][3] = fmaf(hi, b1, acc[j][3]);
            }
        }
    }
}

// ---- forward: mirrors mha_forward (online softmax over the visible key tiles) --------------------
template <int DHP, int NW>
__global__ void __launch_bounds__(NW * 32) attn_fwd_kernel(float *out, int ldo, float *lse, const float *qkv, int ld,
                                                           AttWin win, int T, int H, int dh, float scale, bool vec) {
    constexpr int LD = DHP + 4, LDV = DHP + 8, NTHR = NW * 32;
    extern __shared__ float sm[];
    float *Qs = sm, *Kb = Qs + ATT_B * LD, *Vb = Kb + 2 * ATT_B * LD, *Ps = Vb + 2 * ATT_B * LDV;
    float *mrow = Ps + ATT_B * ATT_LDP, *lrow = mrow + ATT_B, *alpha = lrow + ATT_B;
    const int bh = blockIdx.y, b = bh / H, h = bh % H, q0 = blockIdx.x * ATT_B, W = head_win(win, h);
    const int D = ldo;
    const float *base = qkv + (long long)b * T * ld;
    const int lo = max(0, q0 - W + 1), hi = min(T, q0 + ATT_B) - 1, kfirst = lo / ATT_B * ATT_B;
    load_tile<ATT_B, DHP, NTHR>(Qs, LD, base + (long long)q0 * ld + h * dh, ld, T - q0, dh, vec);
    load_tile<ATT_B, DHP, NTHR>(Kb, LD, base + (long long)kfirst * ld + D + h * dh, ld, T - kfirst, dh, vec);
    load_tile<ATT_B, DHP, NTHR>(Vb, LDV, base + (long long)kfirst * ld + 2 * D + h * dh, ld, T - kfirst, dh, vec);
    cp_async_commit();
    for (int i = threadIdx.x; i < ATT_B; i += blockDim.x) { mrow[i] = -INFINITY; lrow[i] = 0.f; }
    float o[Tile<DHP, NW>::NT][4];
    zero_acc(o);
    for (int k0 = kfirst, it = 0; k0 <= hi; k0 += ATT_B, it++) {
        const float *Ks = Kb + (it & 1) * ATT_B * LD, *Vs = Vb + (it & 1) * ATT_B * LDV;
        if (k0 + ATT_B <= hi) {  // prefetch the next key tile into the other buffer
            int k1 = k0 + ATT_B, nb = (it + 1) & 1;
            load_tile<ATT_B, DHP, NTHR>(Kb + nb * ATT_B * LD, LD, base + (long long)k1 * ld + D + h * dh, ld, T - k1, dh, vec);
            load_tile<ATT_B, DHP, NTHR>(Vb + nb * ATT_B * LDV, LDV, base + (long long)k1 * ld + 2 * D + h * dh, ld, T - k1,
                                 dh, vec);
            cp_async_commit();
            cp_async_wait<1>();
        } else {
            cp_async_wait<0>();
        }
        __syncthreads();
        float s[Tile<ATT_B, NW>::NT][4];
        zero_acc(s);
        tile_mma<ATT_B, NW>(s, [&](int m, int k) { return Qs[m * LD + k]; },
                                [&](int k, int n) { return Ks[n * LD + k]; }, DHP);
#pragma unroll
        for (int j = 0; j < Tile<ATT_B, NW>::NT; j++)
#pragma unroll
            for (int r = 0; r < 4; r++) {
                int m = tile_row(r), n = tile_col<ATT_B, NW>(j, r), t = q0 + m, sk = k0 + n;
                bool ok = t < T && sk <= t && t - sk < W;
                Ps[m * ATT_LDP + n] = ok ? s[j][r] * scale : -INFINITY;
            }
        __syncthreads();
        // row pass: warp per row, lanes over the 64 keys (fixed-order warp reductions)
        const int lane = threadIdx.x & 31;
        for (int m = threadIdx.x >> 5; m < ATT_B; m += NW) {
            float v0 = Ps[m * ATT_LDP + lane], v1 = Ps[m * ATT_LDP + lane + 32];
            float mo = mrow[m], mn = fmaxf(mo, warp_max(fmaxf(v0, v1)));
            float p0 = 0.f, p1 = 0.f, a = 1.f;
            if (mn != -INFINITY) { p0 = expf(v0 - mn); p1 = expf(v1 - mn); a = expf(mo - mn); }
            float rs = warp_sum(p0 + p1);
            Ps[m * ATT_LDP + lane] = p0;
            Ps[m * ATT_LDP + lane + 32] = p1;
            if (lane == 0) { mrow[m] = mn; lrow[m] = lrow[m] * a + rs; alpha[m] = a; }
        }
        __syncthreads();
#pragma unroll
        for (int j = 0; j < Tile<DHP, NW>::NT; j++)
#pragma unroll
            for (int r = 0; r < 4; r++) o[j][r] *= alpha[tile_row(r)];
        tile_mma<DHP, NW>(o, [&](int m, int k) { return Ps[m * ATT_LDP + k]; },
                              [&](int k, int n) { return Vs[k * LDV + n]; }, ATT_B);
        __syncthreads();  // this buffer and Ps are rewritten next
    }
#pragma unroll
    for (int j = 0; j < Tile<DHP, NW>::NT; j++)
#pragma unroll
        for (int r = 0; r < 4; r++) {
            int m = tile_row(r), c = tile_col<DHP, NW>(j, r), t = q0 + m;
            if (t < T && c < dh) out[((long long)b * T + t) * ldo + h * dh + c] = o[j][r] / lrow[m];
        }
    for (int m = threadIdx.x; m < ATT_B; m += blockDim.x)
        if (q0 + m < T) lse[(long long)bh * T + q0 + m] = mrow[m] + logf(lrow[m]);
}

// ---- backward -------------------------------------------------------------------------------------
// Dsum[b,h,t] = dO_t . O_t over the head's columns (= rowsum(P dP) of mha_backward). Warp per row.
// rnd (tf32 mode): then dO rounded to tf32 in place, the value the tensor-core kernels take from it.
__global__ void attn_dsum_kernel(float *dsum, float *dout, const float *out, int ldo, int BTH, int T, int H, int dh,
                                 int rnd) {
    int wid = (blockIdx.x * blockDim.x + threadIdx.x) >> 5, lane = threadIdx.x & 31;
    if (wid >= BTH) return;
    int bt = wid / H, h = wid % H, b = bt / T, t = bt % T;
    float *g = dout + (long long)bt * ldo + h * dh;
    const float *o = out + (long long)bt * ldo + h * dh;
    float s = 0.f;
    for (int c = lane; c < dh; c += 32) {
        float x = g[c];
        s += x * o[c];
        if (rnd) g[c] = __uint_as_float(rb_tf32_bits(x));
    }
    s = warp_sum(s);
    if (lane == 0) dsum[((long long)b * H + h) * T + t] = s;
}

// dk, dv of one key tile over the query tiles that see it (mirrors mha_backward's dK += s dS^T Q,
// dV += P^T dO). Tiles are transposed: rows = keys, columns = queries.
template <int DHP, int NW>
__global__ void __launch_bounds__(NW * 32) attn_bwd_dkdv_kernel(float *dqkv, int ldd, const float *dout, int ldo,
                                                                const float *lse, const float *dsum, const float *qkv,
                                                                int ld, AttWin win, int T, int H, int dh, float scale,
                                                                bool vec) {
    constexpr int LD = DHP + 4, NTHR = NW * 32;
    extern __shared__ float sm[];
    float *Ks = sm, *Vs = Ks + ATT_B * LD, *Qs = Vs + ATT_B * LD, *Gs = Qs + ATT_B * LD;
    float *Ps = Gs + ATT_B * LD, *Ss = Ps + ATT_B * ATT_LDP, *ls = Ss + ATT_B * ATT_LDP, *ds = ls + ATT_B;
    const int bh = blockIdx.y, b = bh / H, h = bh % H, k0 = blockIdx.x * ATT_B, W = head_win(win, h);
    const int D = ldo;
    const float *base = qkv + (long long)b * T * ld, *gbase = dout + (long long)b * T * ldo;
    load_tile<ATT_B, DHP, NTHR>(Ks, LD, base + (long long)k0 * ld + D + h * dh, ld, T - k0, dh, vec);
    load_tile<ATT_B, DHP, NTHR>(Vs, LD, base + (long long)k0 * ld + 2 * D + h * dh, ld, T - k0, dh, vec);
    constexpr int NTD = Tile<DHP, NW>::NT, NTS = Tile<ATT_B, NW>::NT;
    float dk[NTD][4], dv[NTD][4];
    zero_acc(dk);
    zero_acc(dv);
    const int hi = min(T - 1, k0 + ATT_B - 1 + W - 1);
    for (int q0 = k0; q0 <= hi; q0 += ATT_B) {
        __syncthreads();
        load_tile<ATT_B, DHP, NTHR>(Qs, LD, base + (long long)q0 * ld + h * dh, ld, T - q0, dh, vec);
        load_tile<ATT_B, DHP, NTHR>(Gs, LD, gbase + (long long)q0 * ldo + h * dh, ldo, T - q0, dh, vec);
        cp_async_commit();
        for (int i = threadIdx.x; i < ATT_B; i += blockDim.x) {
            bool in = q0 + i < T;
            ls[i] = in ? lse[(long long)bh * T + q0 + i] : 0.f;
            ds[i] = in ? dsum[(long long)bh * T + q0 + i] : 0.f;
        }
        cp_async_wait<0>();
        __syncthreads();
        float s[NTS][4], dp[NTS][4];
        zero_acc(s);
        zero_acc(dp);
        tile_mma<ATT_B, NW>(s, [&](int m, int k) { return Ks[m * LD + k]; },
                                [&](int k, int n) { return Qs[n * LD + k]; }, DHP);
        tile_mma<ATT_B, NW>(dp, [&](int m, int k) { return Vs[m * LD + k]; },
                                [&](int k, int n) { return Gs[n * LD + k]; }, DHP);
#pragma unroll
        for (int j = 0; j < NTS; j++)
#pragma unroll
            for (int r = 0; r < 4; r++) {
                int m = tile_row(r), n = tile_col<ATT_B, NW>(j, r), sk = k0 + m, t = q0 + n;
                bool ok = t < T && sk <= t && t - sk < W;
                float p = ok ? expf(s[j][r] * scale - ls[n]) : 0.f;
                Ps[m * ATT_LDP + n] = p;
                Ss[m * ATT_LDP + n] = p * (dp[j][r] - ds[n]);
            }
        __syncthreads();
        tile_mma<DHP, NW>(dv, [&](int m, int k) { return Ps[m * ATT_LDP + k]; },
                              [&](int k, int n) { return Gs[k * LD + n]; }, ATT_B);
        tile_mma<DHP, NW>(dk, [&](int m, int k) { return Ss[m * ATT_LDP + k]; },
                              [&](int k, int n) { return Qs[k * LD + n]; }, ATT_B);
    }
#pragma unroll
    for (int j = 0; j < NTD; j++)
#pragma unroll
        for (int r = 0; r < 4; r++) {
            int m = tile_row(r), c = tile_col<DHP, NW>(j, r), sk = k0 + m;
            if (sk < T && c < dh) {
                float *row = dqkv + ((long long)b * T + sk) * ldd;
                row[D + h * dh + c] = dk[j][r] * scale;
                row[2 * D + h * dh + c] = dv[j][r];
            }
        }
}

// dq of one query tile over its visible key tiles (mirrors mha_backward's dQ = s dS K).
template <int DHP, int NW>
__global__ void __launch_bounds__(NW * 32) attn_bwd_dq_kernel(float *dqkv, int ldd, const float *dout, int ldo,
                                                              const float *lse, const float *dsum, const float *qkv,
                                                              int ld, AttWin win, int T, int H, int dh, float scale,
                                                              bool vec) {
    constexpr int LD = DHP + 4, NTHR = NW * 32;
    extern __shared__ float sm[];
    float *Qs = sm, *Gs = Qs + ATT_B * LD, *Kb = Gs + ATT_B * LD, *Vb = Kb + 2 * ATT_B * LD;
    float *Ss = Vb + 2 * ATT_B * LD, *ls = Ss + ATT_B * ATT_LDP, *ds = ls + ATT_B;
    const int bh = blockIdx.y, b = bh / H, h = bh % H, q0 = blockIdx.x * ATT_B, W = head_win(win, h);
    const int D = ldo;
    const float *base = qkv + (long long)b * T * ld, *gbase = dout + (long long)b * T * ldo;
    const int lo = max(0, q0 - W + 1), hi = min(T, q0 + ATT_B) - 1, kfirst = lo / ATT_B * ATT_B;
    load_tile<ATT_B, DHP, NTHR>(Qs, LD, base + (long long)q0 * ld + h * dh, ld, T - q0, dh, vec);
    load_tile<ATT_B, DHP, NTHR>(Gs, LD, gbase + (long long)q0 * ldo + h * dh, ldo, T - q0, dh, vec);
    load_tile<ATT_B, DHP, NTHR>(Kb, LD, base + (long long)kfirst * ld + D + h * dh, ld, T - kfirst, dh, vec);
    load_tile<ATT_B, DHP, NTHR>(Vb, LD, base + (long long)kfirst * ld + 2 * D + h * dh, ld, T - kfirst, dh, vec);
    cp_async_commit();
    for (int i = threadIdx.x; i < ATT_B; i += blockDim.x) {
        bool in = q0 + i < T;
        ls[i] = in ? lse[(long long)bh * T + q0 + i] : 0.f;
        ds[i] = in ? dsum[(long long)bh * T + q0 + i] : 0.f;
    }
    constexpr int NTD = Tile<DHP, NW>::NT, NTS = Tile<ATT_B, NW>::NT;
    float dq[NTD][4];
    zero_acc(dq);
    for (int k0 = kfirst, it = 0; k0 <= hi; k0 += ATT_B, it++) {
        const float *Ks = Kb + (it & 1) * ATT_B * LD, *Vs = Vb + (it & 1) * ATT_B * LD;
        if (k0 + ATT_B <= hi) {  // prefetch the next key tile into the other buffer
            int k1 = k0 + ATT_B, nb = (it + 1) & 1;
            load_tile<ATT_B, DHP, NTHR>(Kb + nb * ATT_B * LD, LD, base + (long long)k1 * ld + D + h * dh, ld, T - k1, dh, vec);
            load_tile<ATT_B, DHP, NTHR>(Vb + nb * ATT_B * LD, LD, base + (long long)k1 * ld + 2 * D + h * dh, ld, T - k1, dh,
                                 vec);
            cp_async_commit();
            cp_async_wait<1>();
        } else {
            cp_async_wait<0>();
        }
        __syncthreads();
        float s[NTS][4], dp[NTS][4];
        zero_acc(s);
        zero_acc(dp);
        tile_mma<ATT_B, NW>(s, [&](int m, int k) { return Qs[m * LD + k]; },
                                [&](int k, int n) { return Ks[n * LD + k]; }, DHP);
        tile_mma<ATT_B, NW>(dp, [&](int m, int k) { return Gs[m * LD + k]; },
                                [&](int k, int n) { return Vs[n * LD + k]; }, DHP);
#pragma unroll
        for (int j = 0; j < NTS; j++)
#pragma unroll
            for (int r = 0; r < 4; r++) {
                int m = tile_row(r), n = tile_col<ATT_B, NW>(j, r), t = q0 + m, sk = k0 + n;
                bool ok = t < T && sk <= t && t - sk < W;
                float p = ok ? expf(s[j][r] * scale - ls[m]) : 0.f;
                Ss[m * ATT_LDP + n] = p * (dp[j][r] - ds[m]);
            }
        __syncthreads();
        tile_mma<DHP, NW>(dq, [&](int m, int k) { return Ss[m * ATT_LDP + k]; },
                              [&](int k, int n) { return Ks[k * LD + n]; }, ATT_B);
        __syncthreads();  // this buffer and Ss are rewritten next
    }
#pragma unroll
    for (int j = 0; j < NTD; j++)
#pragma unroll
        for (int r = 0; r < 4; r++) {
            int m = tile_row(r), c = tile_col<DHP, NW>(j, r), t = q0 + m;
            if (t < T && c < dh) dqkv[((long long)b * T + t) * ldd + h * dh + c] = dq[j][r] * scale;
        }
}

// ---- dispatch over the padded head dim and the precision -------------------------------------------
template <int DHP> struct Cfg {
    static constexpr int NW = DHP >= 96 ? 8 : 4;
    // forward: Q, 2 x (K, V), P, m, l, alpha; dkdv: K, V, Q, dO, P, dS, lse, Dsum; dq: Q, dO, 2 x (K, V), dS, lse, Dsum
    static constexpr size_t fwd_smem = sizeof(float) * (ATT_B * (3 * (DHP + 4) + 2 * (DHP + 8)) + ATT_B * ATT_LDP + 3 * ATT_B);
    static constexpr size_t dkdv_smem = sizeof(float) * (4 * ATT_B * (DHP + 4) + 2 * ATT_B * ATT_LDP + 2 * ATT_B);
    static constexpr size_t dq_smem = sizeof(float) * (6 * ATT_B * (DHP + 4) + ATT_B * ATT_LDP + 2 * ATT_B);
};

static int pad_dh(int dh) {
    static const int sizes[] = {16, 32, 48, 64, 96, 128};
    for (int s : sizes)
        if (dh <= s) return s;
    return 0;
}

// Dynamic shared memory above 48 KB must be allowed per kernel: both forms' kernels at this DHP.
template <int DHP> static void set_smem(void) {
    typedef Cfg<DHP> C;
    CHECK_CUDA(cudaFuncSetAttribute(attn_fwd_kernel<DHP, C::NW>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    (int)C::fwd_smem));
    CHECK_CUDA(cudaFuncSetAttribute(attn_bwd_dkdv_kernel<DHP, C::NW>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    (int)C::dkdv_smem));
    CHECK_CUDA(cudaFuncSetAttribute(attn_bwd_dq_kernel<DHP, C::NW>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    (int)C::dq_smem));
    CHECK_CUDA(cudaFuncSetAttribute(attn_fwd_fa_kernel<DHP>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    (int)Fa<DHP>::fwd_smem));
    CHECK_CUDA(cudaFuncSetAttribute(attn_bwd_dq_fa_kernel<DHP>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    (int)Fa<DHP>::bwd_smem));
    CHECK_CUDA(cudaFuncSetAttribute(attn_bwd_dkdv_fa_kernel<DHP>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    (int)Fa<DHP>::bwd_smem));
}

// One decision for the whole mixer: the tf32 kernels (which need q | k | v and dO rounded to tf32 by their
// producers: att_forward, attn_dsum_kernel) unless the precision is fp32 (the FMA tiles, unrounded inputs).
static bool att_tf32_form(void) { return rb_cuda_precision() != RB_PREC_FP32; }

// The core's launches: the tf32 register-tile kernels unless the precision is fp32 (the FMA tiles).
template <int DHP> static void core_fwd(const AttCudaCtx *a, int B, int T) {
    float scale = (float)(1 / sqrt((double)a->dh));
    bool vec = a->dh % 4 == 0 && a->D % 4 == 0;  // 16-byte rows for cp.async
    if (att_tf32_form()) {
        attn_fwd_fa_kernel<DHP><<<dim3(cdiv(T, FA_R), B * a->H), FA_THR, Fa<DHP>::fwd_smem, rb_cuda_stream()>>>(
            a->att, a->D, a->lse, a->qkv, 3 * a->D, a->w, T, a->H, a->dh, scale, vec);
    } else {
        typedef Cfg<DHP> C;
        attn_fwd_kernel<DHP, C::NW><<<dim3(cdiv(T, ATT_B), B * a->H), C::NW * 32, C::fwd_smem, rb_cuda_stream()>>>(
            a->att, a->D, a->lse, a->qkv, 3 * a->D, a->w, T, a->H, a->dh, scale, vec);
    }
    CHECK_LAUNCH();
}

template <int DHP> static void core_bwd(const AttCudaCtx *a, int B, int T) {
    float scale = (float)(1 / sqrt((double)a->dh));
    bool vec = a->dh % 4 == 0 && a->D % 4 == 0;  // 16-byte rows for cp.async
    const int ld = 3 * a->D;
    if (att_tf32_form()) {
        dim3 grid(cdiv(T, FA_R), B * a->H);
        const size_t sm = Fa<DHP>::bwd_smem;
        attn_bwd_dkdv_fa_kernel<DHP><<<grid, FA_THR, sm, rb_cuda_stream()>>>(
            a->dqkv, ld, a->datt, a->D, a->lse, a->dsum, a->qkv, ld, a->w, T, a->H, a->dh, scale, vec);
        CHECK_LAUNCH();
        attn_bwd_dq_fa_kernel<DHP><<<grid, FA_THR, sm, rb_cuda_stream()>>>(
            a->dqkv, ld, a->datt, a->D, a->lse, a->dsum, a->qkv, ld, a->w, T, a->H, a->dh, scale, vec);
    } else {
        typedef Cfg<DHP> C;
        dim3 grid(cdiv(T, ATT_B), B * a->H);
        attn_bwd_dkdv_kernel<DHP, C::NW><<<grid, C::NW * 32, C::dkdv_smem, rb_cuda_stream()>>>(
            a->dqkv, ld, a->datt, a->D, a->lse, a->dsum, a->qkv, ld, a->w, T, a->H, a->dh, scale, vec);
        CHECK_LAUNCH();
        attn_bwd_dq_kernel<DHP, C::NW><<<grid, C::NW * 32, C::dq_smem, rb_cuda_stream()>>>(
            a->dqkv, ld, a->datt, a->D, a->lse, a->dsum, a->qkv, ld, a->w, T, a->H, a->dh, scale, vec);
    }
    CHECK_LAUNCH();
}

#define DISPATCH(fn, a, ...)                                                                               \
    do {                                                                                                   \
        switch ((a)->dhp) {                                                                                \
        case 16: fn<16>(a, __VA_ARGS__); break;                                                            \
        case 32: fn<32>(a, __VA_ARGS__); break;                                                            \
        case 48: fn<48>(a, __VA_ARGS__); break;                                                            \
        case 64: fn<64>(a, __VA_ARGS__); break;                                                            \
        case 96: fn<96>(a, __VA_ARGS__); break;                                                            \
        default: fn<128>(a, __VA_ARGS__); break;                                                           \
        }                                                                                                  \
    } while (0)

// ---- the mixer (mirrors attention.c) -----------------------------------------------------------------
static void att_destroy(void *ctx) {
    AttCudaCtx *a = (AttCudaCtx *)ctx;
    if (!a) return;
    rb_cuda_free(a->qkv); rb_cuda_free(a->att); rb_cuda_free(a->lse); rb_cuda_free(a->dqkv);
    rb_cuda_free(a->datt); rb_cuda_free(a->dsum); rb_cuda_free(a->scratch);
    rb_cuda_free(a->sq); rb_cuda_free(a->so); rb_cuda_free(a->ssc);
    free(a);
}

static void *att_create(const MixerCfg *c, int Bmax, int Tmax, int windowed) {
    AttCudaCtx *a = (AttCudaCtx *)calloc(1, sizeof *a);
    if (!a) return NULL;
    a->D = c->d; a->H = c->heads; a->dh = c->d / c->heads; a->windowed = windowed;
    a->Bmax = Bmax; a->Tmax = Tmax;
    a->dhp = pad_dh(a->dh);
    if (!a->dhp) {
        fprintf(stderr, "recallbench: attention head dim %d (d_model / heads) above the CUDA kernels' 128\n", a->dh);
        free(a);
        return NULL;
    }
    a->maxcap = 1;
    size_t off = 0;
    for (int h = 0; h < a->H; h++) {  // same cache layout as attn_create
        a->w.win[h] = windowed ? c->window[h] : 0;
        a->c.cap[h] = windowed ? c->window[h] : Tmax;
        a->c.off[h] = (long long)off;
        off += 2 * (size_t)a->c.cap[h] * a->dh;
        if (a->c.cap[h] > a->maxcap) a->maxcap = a->c.cap[h];
    }
    a->state_size = off;
    size_t BT = (size_t)Bmax * Tmax, D = a->D;
    a->qkv = rb_cuda_alloc(BT * 3 * D);
    a->att = rb_cuda_alloc(BT * D);
    a->lse = rb_cuda_alloc((size_t)Bmax * a->H * Tmax);
    a->dqkv = rb_cuda_alloc(BT * 3 * D);
    a->datt = rb_cuda_alloc(BT * D);
    a->dsum = rb_cuda_alloc((size_t)Bmax * a->H * Tmax);
    a->scratch = rb_cuda_alloc(rb_colsum_scratch((int)BT, 3 * (int)D));
    a->sq = rb_cuda_alloc((size_t)Bmax * 3 * D);
    a->so = rb_cuda_alloc((size_t)Bmax * D);
    a->ssc = rb_cuda_alloc((size_t)Bmax * a->H * a->maxcap);
    if (!a->qkv || !a->att || !a->lse || !a->dqkv || !a->datt || !a->dsum || !a->scratch || !a->sq || !a->so ||
        !a->ssc) {
        att_destroy(a);
        return NULL;
    }
    switch (a->dhp) {
    case 16: set_smem<16>(); break;
    case 32: set_smem<32>(); break;
    case 48: set_smem<48>(); break;
    case 64: set_smem<64>(); break;
    case 96: set_smem<96>(); break;
    default: set_smem<128>(); break;
    }
    return a;
}

static void att_forward(Mixer *m, float *const *p, float *out, const float *inp, int B, int T) {
    AttCudaCtx *a = (AttCudaCtx *)m->ctx;
    int D = a->D, BT = B * T;
    if (att_tf32_form()) cuda_linear_forward_tf32(a->qkv, inp, p[0], p[1], BT, D, 3 * D);
    else cuda_linear_forward(a->qkv, inp, p[0], p[1], BT, D, 3 * D);
    DISPATCH(core_fwd, a, B, T);
    cuda_linear_forward(out, a->att, p[2], p[3], BT, D, D);
}

static void att_backward(Mixer *m, float *const *p, float *const *dp, float *dinp, const float *dout,
                         const float *inp, int B, int T) {
    AttCudaCtx *a = (AttCudaCtx *)m->ctx;
    int D = a->D, BT = B * T;
    cuda_linear_backward(a->datt, dp[2], dp[3], dout, a->att, p[2], BT, D, D, 0, a->scratch);
    long long nw = (long long)BT * a->H;
    attn_dsum_kernel<<<cdiv(nw * 32, 256), 256, 0, rb_cuda_stream()>>>(a->dsum, a->datt, a->att, D, (int)nw, T,
                                                                      a->H, a->dh, att_tf32_form());
    CHECK_LAUNCH();
    DISPATCH(core_bwd, a, B, T);
    cuda_linear_backward(dinp, dp[0], dp[1], a->dqkv, inp, p[0], BT, D, 3 * D, 0, a->scratch);
}

static size_t att_step_state_size(const Mixer *m) { return ((const AttCudaCtx *)m->ctx)->state_size; }

// mirrors attn_step's per-head part and mha_step for B sequences: block per (b, h); token t goes to
// cache row t % cap[h]; scores over the n = min(t+1, cap) filled rows (row order is irrelevant).
__global__ void attn_step_kernel(float *so, float *state, long long S, const float *sq, float *ssc, int maxcap,
                                 AttCache cache, int t, int H, int dh, float scale) {
    __shared__ float red[32];
    extern __shared__ float qs[];
    const int b = blockIdx.x / H, h = blockIdx.x % H, D = H * dh;
    const int cap = cache.cap[h], slot = t % cap, n = t + 1 < cap ? t + 1 : cap;
    float *K = state + (long long)b * S + cache.off[h], *V = K + (long long)cap * dh;
    const float *x = sq + (long long)b * 3 * D;
    for (int j = threadIdx.x; j < dh; j += blockDim.x) {
        qs[j] = x[h * dh + j];
        K[(long long)slot * dh + j] = x[D + h * dh + j];
        V[(long long)slot * dh + j] = x[2 * D + h * dh + j];
    }
    __syncthreads();
    float *sc = ssc + (long long)blockIdx.x * maxcap;
    const int lane = threadIdx.x & 31, nw = blockDim.x >> 5;
    for (int i = threadIdx.x >> 5; i < n; i += nw) {
        float s = 0.f;
        for (int j = lane; j < dh; j += 32) s += qs[j] * K[(long long)i * dh + j];
        s = warp_sum(s);
        if (lane == 0) sc[i] = s * scale;
    }
    __syncthreads();
    float mx = -INFINITY;
    for (int i = threadIdx.x; i < n; i += blockDim.x) mx = fmaxf(mx, sc[i]);
    mx = block_max(mx, red);
    float sum = 0.f;
    __syncthreads();  // block_max's reads of red done before block_sum reuses it
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        float e = expf(sc[i] - mx);
        sc[i] = e;
        sum += e;
    }
    sum = block_sum(sum, red);
    __syncthreads();
    float inv = 1.f / sum;
    for (int j = threadIdx.x; j < dh; j += blockDim.x) {
        float o = 0.f;
        for (int i = 0; i < n; i++) o += sc[i] * V[(long long)i * dh + j];
        so[(long long)b * D + h * dh + j] = o * inv;
    }
}

static void att_step(Mixer *m, float *const *p, float *state, float *out, const float *x, int B, int t) {
    AttCudaCtx *a = (AttCudaCtx *)m->ctx;
    int D = a->D;
    cuda_linear_forward(a->sq, x, p[0], p[1], B, D, 3 * D);
    float scale = (float)(1 / sqrt((double)a->dh));
    attn_step_kernel<<<B * a->H, 128, a->dh * sizeof(float), rb_cuda_stream()>>>(
        a->so, state, (long long)a->state_size, a->sq, a->ssc, a->maxcap, a->c, t, a->H, a->dh, scale);
    CHECK_LAUNCH();
    cuda_linear_forward(out, a->so, p[2], p[3], B, D, D);
}

static void *attention_cuda_create(const MixerCfg *c, int Bmax, int Tmax) { return att_create(c, Bmax, Tmax, 0); }
static void *swa_cuda_create(const MixerCfg *c, int Bmax, int Tmax) { return att_create(c, Bmax, Tmax, 1); }

extern "C" const MixerCudaOps attention_cuda_ops = {
    attention_cuda_create, att_destroy, att_forward, att_backward, att_step_state_size, att_step,
};
extern "C" const MixerCudaOps swa_cuda_ops = {
    swa_cuda_create, att_destroy, att_forward, att_backward, att_step_state_size, att_step,
};
