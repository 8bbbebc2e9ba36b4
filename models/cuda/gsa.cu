// gsa.cu — device form of models/mixers/gsa.c (Gated Slot Attention): same tensors, same ctx buffers,
// one kernel per CPU helper or loop nest (named in each comment). Depends on layers.cuh (cuBLAS), mixer.h.
//
// The recurrence runs as an exact sequential-in-time scan, one block per (batch, head): the block
// holds the head's state K, V [m, d_h] (and in backward the adjoints) in shared memory when it fits
// (else in the ctx's global workspace), and its threads split the state: one warp per slot row for
// the row updates and the dot products over d_h (warp_sum: fixed butterfly order), one thread per
// column for the sums over slots (fixed slot order). No atomics; every reduction has a fixed order.
#include <math.h>
#include "layers.cuh"

#include "../mixers/gsa.h"  // GSA_NORM_EPS, GSA_GATE_NORMALIZER, the tensor order: one definition with gsa.c
#define GSA_EPS_F ((float)GSA_NORM_EPS)
#define GSA_GNORM_F ((float)GSA_GATE_NORMALIZER)
#define GSA_THREADS 256  // scan block: 8 warps
#define GSA_ROW_THREADS 128

extern "C" double gsa_test_force_alpha;  // gsa.c's test-only hook (read on the host at forward time)


typedef struct {
    int D, H, dh, m, Hm, Bmax, Tmax;
    float *qa, *ka, *va, *q, *k, *v, *o, *dr, *dq, *dk, *dv;  // [BT, D], as GsaCtx
    float *fa, *alpha, *s, *p, *dok, *dS, *dG;                 // [BT, Hm]
    float *rstd;                                               // [BT]
    float *st;        // [Bmax*H, 4 m d_h] scan states when they do not fit in shared memory
    float *cs;        // rb_colsum scratch for the norm-weight gradient
    float *sx;        // step scratch [Bmax, 9 D + 1 + 4 Hm]
    float *bpart;     // split backward: [2, G, BT, Hm] group parts of dp and ok (the first half then of dS)
    int split;        // 1: the split backward (default); 0: gsa_bwd_scan_kernel (RB_CUDA_GSA_SEQ=1, or too many slots)
    size_t shb_cols;  // dynamic shared bytes of gsa_bwd_cols_kernel
    int cols_nt;      // threads of the column-group kernels: gsa_cols_threads(m), or RB_CUDA_GSA_COLS_THREADS
                      // (a multiple of 32 from that up to 1024: more row ranges per column sum, for bench)
    int smem_fwd, smem_bwd;  // 1: the scan keeps its state in shared memory
    size_t shb_fwd, shb_bwd;  // dynamic shared bytes per scan block
    int fwd_split;    // 1: the split forward (rows, tok, cols kernels); 0: a scan. Default: split where
                      // neither scan keeps its state on chip (m 256 at d_h 128: there the scan ran from
                      // global memory at 0.19M tokens/s on RegBench's shape on the H200)
    int reg_s;        // > 0: the scan is gsa_scan_reg_kernel<reg_s> (state in registers; the default where
                      // gsa_scan_reg_s allows it), 0: gsa_scan_kernel. RB_CUDA_GSA_FWD=split|scan|reg
                      // chooses (bench: scan is the shared-memory scan)
    int bwd_nt;       // > 0: the split backward's column groups run gsa_bwd_cols_reg_kernel with bwd_nt
                      // threads (states in registers; the default up to GSA_BWDR_MAXM slots), 0:
                      // gsa_bwd_cols_kernel (more slots, or RB_CUDA_GSA_BWD=smem: bench, reference)
} GsaCudaCtx;

__device__ __forceinline__ float gsa_sigm(float x) {
    if (x >= 0) return 1.f / (1.f + expf(-x));
    float e = expf(x);
    return e / (1.f + e);
}
__device__ __forceinline__ float gsa_logsigm(float x) { return x >= 0 ? -log1pf(expf(-x)) : x - log1pf(expf(x)); }
__device__ __forceinline__ float gsa_silu(float x) { return x * gsa_sigm(x); }
__device__ __forceinline__ float gsa_silu_grad(float x) {
    float g = gsa_sigm(x);
    return g * (1.f + x * (1.f - g));
}

// Mirrors gsa_activate: q, k, v [N, D] = silu(qa, ka, va); alpha, s [N, Hm] from the gate logits.
__global__ void gsa_activate_kernel(float *q, float *k, float *v, float *alpha, float *s, const float *qa,
                                    const float *ka, const float *va, const float *fa, long long nd, long long nh,
                                    float force) {
    long long n = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (n < nd) { q[n] = gsa_silu(qa[n]); k[n] = gsa_silu(ka[n]); v[n] = gsa_silu(va[n]); }
    if (n < nh) {
        if (force >= 0) {
            alpha[n] = force; s[n] = 1.f - force;
        } else {
            float g = gsa_logsigm(fa[n]) / GSA_GNORM_F;
            alpha[n] = expf(g); s[n] = -expm1f(g);
        }
    }
}

// The scans' softmax over the slots, by one warp: scores sp[r] = sum of the P column-range partials
// ps[c m + r] in range order, then exp(sc - max) / sum (warp reductions: fixed butterfly order), into sp and p.
__device__ __forceinline__ void gsa_scan_softmax(float *sp, float *p, const float *ps, int m, int P, int lane) {
    float mx = -INFINITY;
    for (int r = lane; r < m; r += 32) {
        float sc = 0.f;
        for (int c = 0; c < P; c++) sc += ps[c * m + r];
        sp[r] = sc;
        mx = fmaxf(mx, sc);
    }
    mx = warp_max(mx);
    float sum = 0.f;
    for (int r = lane; r < m; r += 32) { float e = expf(sp[r] - mx); sp[r] = e; sum += e; }
    const float inv = 1.f / warp_sum(sum);
    for (int r = lane; r < m; r += 32) { sp[r] *= inv; p[r] = sp[r]; }
}
// o[j] = the Q row-range partials ps[c dh + j] added in range order.
__device__ __forceinline__ void gsa_scan_out(float *o, const float *ps, int dh, int Q) {
    for (int j = threadIdx.x; j < dh; j += blockDim.x) {
        float acc = 0.f;
        for (int c = 0; c < Q; c++) acc += ps[c * dh + j];
        o[j] = acc;
    }
}

// Mirrors the forward scan over gsa_token: block per (b, h), T tokens. State: in shared memory
// (use_smem, zeroed; rows dh + 1 floats apart so a warp's rows hit distinct banks) or at
// state + bh * stride (the CPU's [m, dh] layout; zeroed if zero; the step form keeps it there).
// Per token: each row's K update and score dot product split over P = nt / m column ranges (serial
// sums), their partials added in range order by warp 0, which also takes the softmax over the slots
// (warp reductions: fixed butterfly order); then each column's V update and o = V^T p split over
// Q = nt / dh row ranges, added in range order. Five barriers a token. (Until 2026-12-01: a warp per row
// with a warp sum each, block-wide max and sum, and d_h of the 256 threads for V: seven barriers and
// 24% of the gsa step on the H200.)
__global__ void __launch_bounds__(GSA_THREADS) gsa_scan_kernel(float *p, float *o, const float *q, const float *k,
        const float *v, const float *alpha, const float *s, float *state, long long stride, int use_smem, int zero,
        int T, int H, int m, int dh) {
    extern __shared__ float sh[];
    const int bh = blockIdx.x, b = bh / H, h = bh % H, tid = threadIdx.x, nt = blockDim.x, lane = tid & 31;
    const int D = H * dh, Hm = H * m, ld = use_smem ? dh + 1 : dh;
    const int P = m < nt ? nt / m : 1, Q = dh < nt ? nt / dh : 1;  // column ranges per row, row ranges per column
    float *K, *buf = sh;
    if (use_smem) { K = sh; buf = sh + 2 * (size_t)m * ld; } else K = state + (size_t)bh * stride;
    float *V = K + (size_t)m * ld;
    float *sq = buf, *sk = sq + dh, *sv = sk + dh, *sa = sv + dh, *ss = sa + m, *sp = ss + m, *ps = sp + m;
    if (use_smem || zero)
        for (int e = tid; e < 2 * m * ld; e += nt) K[e] = 0.f;
    // The next token's column tid of q, k, v and slot tid of alpha, s are loaded into registers while
    // this token computes (the loads after a barrier were the scan's latency, a block per (b, h));
    // columns and slots past the block's threads are loaded in turn.
    float nq = 0.f, nk = 0.f, nv = 0.f, na = 0.f, ns = 0.f;
    auto fetch = [&](int t) {
        const size_t i = (size_t)b * T + t, od = i * D + (size_t)h * dh, om = i * Hm + (size_t)h * m;
        if (tid < dh) { nq = q[od + tid]; nk = k[od + tid]; nv = v[od + tid]; }
        if (tid < m) { na = alpha[om + tid]; ns = s[om + tid]; }
    };
    if (T > 0) fetch(0);
    for (int t = 0; t < T; t++) {
        size_t i = (size_t)b * T + t, od = i * D + (size_t)h * dh, om = i * Hm + (size_t)h * m;
        __syncthreads();  // the previous token's readers are done with the buffers
        if (tid < dh) { sq[tid] = nq; sk[tid] = nk; sv[tid] = nv; }
        if (tid < m) { sa[tid] = na; ss[tid] = ns; }
        for (int j = tid + nt; j < dh; j += nt) { sq[j] = q[od + j]; sk[j] = k[od + j]; sv[j] = v[od + j]; }
        for (int r = tid + nt; r < m; r += nt) { sa[r] = alpha[om + r]; ss[r] = s[om + r]; }
        if (t + 1 < T) fetch(t + 1);
        __syncthreads();
        for (int u = tid; u < m * P; u += nt) {  // K = diag(alpha) K + s k^T; partial scores K q
            const int r = u % m, c = u / m, j0 = dh * c / P, j1 = dh * (c + 1) / P;
            float *row = K + (size_t)r * ld, a = sa[r], si = ss[r], acc = 0.f;
            for (int j = j0; j < j1; j++) {
                row[j] = a * row[j] + si * sk[j];
                acc += row[j] * sq[j];
            }
            ps[c * m + r] = acc;
        }
        __syncthreads();
        if (tid < 32) gsa_scan_softmax(sp, p + om, ps, m, P, lane);
        __syncthreads();
        for (int u = tid; u < dh * Q; u += nt) {  // V = diag(alpha) V + s v^T; partial o = V^T p (slot order)
            const int j = u % dh, c = u / dh, r0 = m * c / Q, r1 = m * (c + 1) / Q;
            float acc = 0.f, vj = sv[j];
            for (int r = r0; r < r1; r++) {
                float *e = V + (size_t)r * ld + j;
                *e = sa[r] * *e + ss[r] * vj;
                acc += sp[r] * *e;
            }
            ps[c * dh + j] = acc;
        }
        __syncthreads();
        gsa_scan_out(o + od, ps, dh, Q);
    }
}

// S consecutive floats of shared memory: float4 loads where S % 4 == 0 (the callers' offsets are then
// multiples of 4 floats from 16-byte aligned arrays), else scalars.
template <int S>
__device__ __forceinline__ void gsa_lds(float *r, const float *p) {
    if (S % 4 == 0) {
#pragma unroll
        for (int e = 0; e < S; e += 4) {
            const float4 x = *(const float4 *)(p + e);
            r[e] = x.x; r[e + 1] = x.y; r[e + 2] = x.z; r[e + 3] = x.w;
        }
    } else {
#pragma unroll
        for (int e = 0; e < S; e++) r[e] = p[e];
    }
}

// gsa_scan_kernel's training form (state from zero, T tokens) with the state in registers: where m and
// d_h divide the block's 256 threads and S = m d_h / 256 <= 64, every thread owns S consecutive columns
// of one K row (the same row / column range split, P = 256 / m) and S consecutive rows of one V column
// (Q = 256 / d_h), so the updates read and write no shared memory: per token a thread reads only q, k
// (its columns) and alpha, s, p (its rows), S / 4 float4 loads each. The same operations in the same
// order as gsa_scan_kernel, element by element and in every sum, so the same bits.
// (gsa_scan_kernel held the state in shared memory: 4-5 shared accesses per state element and token.)
template <int S>
__global__ void __launch_bounds__(GSA_THREADS) gsa_scan_reg_kernel(float *p, float *o, const float *q, const float *k,
        const float *v, const float *alpha, const float *s, int T, int H, int m, int dh) {
    extern __shared__ float sh[];
    const int bh = blockIdx.x, b = bh / H, h = bh % H, tid = threadIdx.x, lane = tid & 31;
    const int D = H * dh, Hm = H * m, P = GSA_THREADS / m, Q = GSA_THREADS / dh;
    float *sq = sh, *sk = sq + dh, *sv = sk + dh, *sa = sv + dh, *ss = sa + m, *sp = ss + m, *ps = sp + m;
    const int kr = tid % m, kc = tid / m, kj = kc * S;  // K: row kr, columns kj .. kj + S - 1
    const int vj = tid % dh, vc = tid / dh, vr = vc * S;  // V: column vj, rows vr .. vr + S - 1
    float Kr[S], Vr[S];
#pragma unroll
    for (int e = 0; e < S; e++) Kr[e] = Vr[e] = 0.f;
    float nq = 0.f, nk = 0.f, nv = 0.f, na = 0.f, ns = 0.f;
    auto fetch = [&](int t) {  // as in gsa_scan_kernel; here d_h, m <= the block's threads
        const size_t i = (size_t)b * T + t, od = i * D + (size_t)h * dh, om = i * Hm + (size_t)h * m;
        if (tid < dh) { nq = q[od + tid]; nk = k[od + tid]; nv = v[od + tid]; }
        if (tid < m) { na = alpha[om + tid]; ns = s[om + tid]; }
    };
    if (T > 0) fetch(0);
    for (int t = 0; t < T; t++) {
        const size_t i = (size_t)b * T + t, od = i * D + (size_t)h * dh, om = i * Hm + (size_t)h * m;
        __syncthreads();
        if (tid < dh) { sq[tid] = nq; sk[tid] = nk; sv[tid] = nv; }
        if (tid < m) { sa[tid] = na; ss[tid] = ns; }
        if (t + 1 < T) fetch(t + 1);
        __syncthreads();
        {  // K = diag(alpha) K + s k^T; partial scores K q
            float kk[S], qq[S], acc = 0.f;
            gsa_lds<S>(kk, sk + kj);
            gsa_lds<S>(qq, sq + kj);
            const float a = sa[kr], si = ss[kr];
#pragma unroll
            for (int e = 0; e < S; e++) {
                Kr[e] = a * Kr[e] + si * kk[e];
                acc += Kr[e] * qq[e];
            }
            ps[kc * m + kr] = acc;
        }
        __syncthreads();
        if (tid < 32) gsa_scan_softmax(sp, p + om, ps, m, P, lane);
        __syncthreads();
        {  // V = diag(alpha) V + s v^T; partial o = V^T p (slot order)
            float aa[S], sg[S], pr[S], acc = 0.f;
            gsa_lds<S>(aa, sa + vr);
            gsa_lds<S>(sg, ss + vr);
            gsa_lds<S>(pr, sp + vr);
            const float vv = sv[vj];
#pragma unroll
            for (int e = 0; e < S; e++) {
                Vr[e] = aa[e] * Vr[e] + sg[e] * vv;
                acc += pr[e] * Vr[e];
            }
            ps[vc * dh + vj] = acc;
        }
        __syncthreads();
        gsa_scan_out(o + od, ps, dh, Q);
    }
}

// Mirrors gsa_norm_forward: block per row; y = silu(o), r = y * rstd * w.
__global__ void gsa_norm_forward_kernel(float *y, float *r, float *rstd, const float *o, const float *w, int D) {
    __shared__ float red[32];
    const size_t i = blockIdx.x;
    const float *oi = o + i * D;
    float *yi = y + i * D, *ri = r + i * D, ss = 0.f;
    for (int j = threadIdx.x; j < D; j += blockDim.x) { float yv = gsa_silu(oi[j]); yi[j] = yv; ss += yv * yv; }
    ss = block_sum(ss, red);
    float rs = 1.f / sqrtf(ss / D + GSA_EPS_F);
    if (threadIdx.x == 0) rstd[i] = rs;
    for (int j = threadIdx.x; j < D; j += blockDim.x) ri[j] = yi[j] * rs * w[j];
}

// Mirrors gsa_backward's norm part, per row: tmp = dr * y * rstd (summed over rows for dw by
// rb_colsum), then dr -> do in place through the RMSNorm and the silu.
__global__ void gsa_norm_backward_kernel(float *g, float *tmp, const float *y, const float *o, const float *rstd,
                                         const float *w, int D) {
    __shared__ float red[32];
    const size_t i = blockIdx.x;
    float *gi = g + i * D, *ti = tmp + i * D, rs = rstd[i], dot = 0.f;
    const float *yi = y + i * D, *oi = o + i * D;
    for (int j = threadIdx.x; j < D; j += blockDim.x) {
        ti[j] = gi[j] * yi[j] * rs;
        dot += w[j] * gi[j] * yi[j];
    }
    dot = block_sum(dot, red);
    float cst = rs * rs * rs * dot / D;
    for (int j = threadIdx.x; j < D; j += blockDim.x) gi[j] = (rs * w[j] * gi[j] - yi[j] * cst) * gsa_silu_grad(oi[j]);
}

// Mirrors gsa_backward's two scans per (b, h): the forward re-scan (dok, dG's p.dp + ok.dok part, dq)
// and the reverse scan of the adjoints (dk, dv, dS). dO = do [N, D].
__global__ void __launch_bounds__(GSA_THREADS) gsa_bwd_scan_kernel(float *dok, float *dG, float *dq, float *dk,
        float *dv, float *dS, const float *q, const float *k, const float *v, const float *dO, const float *alpha,
        const float *s, const float *pp, float *state, int use_smem, int T, int H, int m, int dh) {
    extern __shared__ float sh[];
    __shared__ float red[32];
    const int bh = blockIdx.x, b = bh / H, h = bh % H, tid = threadIdx.x, nt = blockDim.x;
    const int lane = tid & 31, warp = tid >> 5, nw = nt >> 5, D = H * dh, Hm = H * m;
    const size_t md = (size_t)m * dh;
    float *K, *buf = sh;
    if (use_smem) { K = sh; buf = sh + 4 * md; } else K = state + (size_t)bh * 4 * md;
    float *V = K + md, *AK = V + md, *AV = AK + md;
    float *sq = buf, *sk = sq + dh, *sv = sk + dh, *sd = sv + dh;
    float *sa = sd + dh, *ss = sa + m, *sp = ss + m, *sg = sp + m, *sx = sg + m;  // sx: dp, then dok
    for (size_t e = tid; e < 4 * md; e += nt) K[e] = 0.f;
    for (int t = 0; t < T; t++) {
        size_t i = (size_t)b * T + t, od = i * D + (size_t)h * dh, om = i * Hm + (size_t)h * m;
        __syncthreads();
        for (int j = tid; j < dh; j += nt) { sq[j] = q[od + j]; sk[j] = k[od + j]; sv[j] = v[od + j]; sd[j] = dO[od + j]; }
        for (int r = tid; r < m; r += nt) { sa[r] = alpha[om + r]; ss[r] = s[om + r]; sp[r] = pp[om + r]; }
        __syncthreads();
        for (int r = warp; r < m; r += nw) {  // V_t, dp = V_t do
            float *row = V + (size_t)r * dh, a = sa[r], si = ss[r], acc = 0.f;
            for (int j = lane; j < dh; j += 32) {
                row[j] = a * row[j] + si * sv[j];
                acc += row[j] * sd[j];
            }
            acc = warp_sum(acc);
            if (lane == 0) sx[r] = acc;
        }
        __syncthreads();
        float pdp = 0.f;
        for (int r = tid; r < m; r += nt) pdp += sp[r] * sx[r];
        pdp = block_sum(pdp, red);
        for (int r = tid; r < m; r += nt) { sg[r] = sp[r] * sx[r]; sx[r] = sp[r] * (sx[r] - pdp); }
        __syncthreads();
        for (int r = warp; r < m; r += nw) {  // K_t, ok = K_t q; dG = p dp + ok dok
            float *row = K + (size_t)r * dh, a = sa[r], si = ss[r], acc = 0.f;
            for (int j = lane; j < dh; j += 32) {
                row[j] = a * row[j] + si * sk[j];
                acc += row[j] * sq[j];
            }
            acc = warp_sum(acc);
            if (lane == 0) { dG[om + r] = sg[r] + acc * sx[r]; dok[om + r] = sx[r]; }
        }
        __syncthreads();
        for (int j = tid; j < dh; j += nt) {  // dq = K_t^T dok (slot order)
            float acc = 0.f;
            for (int r = 0; r < m; r++) acc += sx[r] * K[(size_t)r * dh + j];
            dq[od + j] = acc;
        }
    }
    // reverse scan: AV_t = p_t do_t^T + alpha_{t+1} AV_{t+1}, AK_t = dok_t q_t^T + alpha_{t+1} AK_{t+1}
    float *san = sg;  // alpha_{t+1} (0 at the end)
    for (int t = T - 1; t >= 0; t--) {
        size_t i = (size_t)b * T + t, od = i * D + (size_t)h * dh, om = i * Hm + (size_t)h * m;
        __syncthreads();
        for (int j = tid; j < dh; j += nt) { sq[j] = q[od + j]; sk[j] = k[od + j]; sv[j] = v[od + j]; sd[j] = dO[od + j]; }
        for (int r = tid; r < m; r += nt) {
            ss[r] = s[om + r]; sp[r] = pp[om + r]; sx[r] = dok[om + r];
            san[r] = t + 1 < T ? alpha[om + Hm + r] : 0.f;
        }
        __syncthreads();
        for (int r = warp; r < m; r += nw) {
            float *rv = AV + (size_t)r * dh, *rk = AK + (size_t)r * dh;
            float ar = san[r], pr = sp[r], gr = sx[r], ds = 0.f;
            for (int j = lane; j < dh; j += 32) {
                rv[j] = ar * rv[j] + pr * sd[j];
                ds += rv[j] * sv[j];
                rk[j] = ar * rk[j] + gr * sq[j];
                ds += rk[j] * sk[j];
            }
            ds = warp_sum(ds);
            if (lane == 0) dS[om + r] = ds;
        }
        __syncthreads();
        for (int j = tid; j < dh; j += nt) {  // dv = AV^T s, dk = AK^T s (slot order)
            float av = 0.f, ak = 0.f;
            for (int r = 0; r < m; r++) {
                av += ss[r] * AV[(size_t)r * dh + j];
                ak += ss[r] * AK[(size_t)r * dh + j];
            }
            dv[od + j] = av; dk[od + j] = ak;
        }
    }
}

// ---- the backward split over 32-column groups (the default training backward) ------------------
// gsa_bwd_scan_kernel runs one block per (b, h) over T steps with several barriers per step. Every
// product in it is either a row sum over d_h (dp = V_t do, ok = K_t q, dS) or a column sum over the
// slots (dq, dk, dv), and the recurrences are per element, so the work splits into G = d_h / 32
// column groups: gsa_bwd_rows_kernel (thread per (slot, group), state in registers, no barriers)
// gives each group's part of dp and ok; gsa_bwd_tok_kernel adds the parts in group order and forms
// dok and dG's p.dp + ok.dok per token; gsa_bwd_cols_kernel (block per (group, b, h); or its register
// form gsa_bwd_cols_reg_kernel, the default up to 512 slots) redoes the K recurrence for dq and the
// reverse scan for dk, dv and the group's part of dS; gsa_sum_parts_kernel
// adds the dS parts in group order. Same sums as gsa.c, regrouped (associativity only).
#define GSA_CW 32       // columns per group
#define GSA_RB 64       // threads (slots) per block in gsa_bwd_rows_kernel

// Columns j..j+3 of a row (p: the row's column j0), for gsa_bwd_rows_kernel: V4, one float4 load (the
// caller's rows are 16-byte aligned and nj % 4 == 0); else four scalar loads, columns past nj read as 0.
template <bool V4>
__device__ __forceinline__ void gsa_ld4(float *r, const float *p, int j, int nj) {
    if (V4) {
        const float4 x = *(const float4 *)(p + j);
        r[0] = x.x; r[1] = x.y; r[2] = x.z; r[3] = x.w;
    } else {
#pragma unroll
        for (int e = 0; e < 4; e++) r[e] = j + e < nj ? p[j + e] : 0.f;
    }
}

// One row of a state over a column group: S = a S + si x (its nj <= GSA_CW columns, in registers once
// inlined), returning sum_j S[j] y[j] in column order.
template <bool V4>
__device__ __forceinline__ float gsa_row_recur(float *S, const float *x, const float *y, float a, float si, int nj) {
    float acc = 0.f;
#pragma unroll
    for (int j = 0; j < GSA_CW; j += 4) {
        if (j >= nj) break;
        float xx[4], yy[4];
        gsa_ld4<V4>(xx, x, j, nj);
        gsa_ld4<V4>(yy, y, j, nj);
#pragma unroll
        for (int e = 0; e < 4; e++)
            if (j + e < nj) {
                S[j + e] = a * S[j + e] + si * xx[e];
                acc += S[j + e] * yy[e];
            }
    }
    return acc;
}

// With dpp NULL (v, dO unread) only the K recurrence and ok: the split forward's score parts.
// Every thread of a block reads the same columns of q, k, v, dO per token (L1 broadcasts): with V4 a
// quarter of the load instructions (one float4 per 4 columns). Per element the same operations in the
// same order for both instances, so the same bits.
template <bool V4>
__global__ void __launch_bounds__(GSA_RB) gsa_bwd_rows_kernel(float *dpp, float *okp, const float *q,
        const float *k, const float *v, const float *dO, const float *alpha, const float *s, int N, int T, int H,
        int m, int dh) {
    const int r = blockIdx.x * GSA_RB + threadIdx.x, g = blockIdx.y, bh = blockIdx.z, b = bh / H, h = bh % H;
    if (r >= m) return;
    const int D = H * dh, Hm = H * m, j0 = g * GSA_CW, nj = min(GSA_CW, dh - j0);
    const size_t part = (size_t)g * N * Hm;
    float Vs[GSA_CW], Ks[GSA_CW];
#pragma unroll
    for (int j = 0; j < GSA_CW; j++) Vs[j] = Ks[j] = 0.f;
    for (int t = 0; t < T; t++) {
        const size_t i = (size_t)b * T + t, od = i * D + (size_t)h * dh + j0, om = i * Hm + (size_t)h * m + r;
        const float a = alpha[om], si = s[om];
        if (dpp) dpp[part + om] = gsa_row_recur<V4>(Vs, v + od, dO + od, a, si, nj);
        const float ok = gsa_row_recur<V4>(Ks, k + od, q + od, a, si, nj);
        okp[part + om] = ok;
    }
}
// The launch: V4 where every row of q, k (v, dO) starts 16-byte aligned at each group's column j0.
static void gsa_rows_launch(float *dpp, float *okp, const float *q, const float *k, const float *v, const float *dO,
                            const float *alpha, const float *s, int B, int T, int H, int m, int dh) {
    const int N = B * T, D = H * dh;
    const dim3 grid(cdiv(m, GSA_RB), cdiv(dh, GSA_CW), B * H);
    const bool v4 = D % 4 == 0 && dh % 4 == 0 &&
                    (((uintptr_t)q | (uintptr_t)k | (uintptr_t)v | (uintptr_t)dO) & 15) == 0;
    if (v4) gsa_bwd_rows_kernel<true><<<grid, GSA_RB, 0, rb_cuda_stream()>>>(dpp, okp, q, k, v, dO, alpha, s, N, T, H, m, dh);
    else gsa_bwd_rows_kernel<false><<<grid, GSA_RB, 0, rb_cuda_stream()>>>(dpp, okp, q, k, v, dO, alpha, s, N, T, H, m, dh);
    CHECK_LAUNCH();
}

// Per (token, head), warp per pair: dp, ok = group parts summed in group order; pdp = p.dp (fixed
// lane order); dok = p (dp - pdp); dG = p dp + ok dok (gsa_bwd_scan_kernel's middle steps).
__global__ void gsa_bwd_tok_kernel(float *dok, float *dG, const float *dpp, const float *okp, const float *pp, int N,
                                   int H, int m, int G) {
    const long long w = ((long long)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    const int lane = threadIdx.x & 31;
    if (w >= (long long)N * H) return;  // the whole warp
    const size_t NH = (size_t)N * H * m, base = (size_t)w * m;  // (i * H + h) * m
    float pdp = 0.f;
    for (int r = lane; r < m; r += 32) {
        float dp = 0.f;
        for (int g = 0; g < G; g++) dp += dpp[g * NH + base + r];
        pdp += pp[base + r] * dp;
    }
    pdp = warp_sum(pdp);
    for (int r = lane; r < m; r += 32) {
        float dp = 0.f, ok = 0.f;
        for (int g = 0; g < G; g++) { dp += dpp[g * NH + base + r]; ok += okp[g * NH + base + r]; }
        const float p = pp[base + r], x = p * (dp - pdp);
        dG[base + r] = p * dp + ok * x;
        dok[base + r] = x;
    }
}

// out0[j] = sum_r w[r] A0[r * ld + j] for j < nj, and out1 the same of A1 (when A1): S = nj or 2 nj
// column sums over the m slots. The block's threads split each sum into P = nt / S contiguous row
// ranges (serial sums), whose partials (ps, nt floats) are added in range order: a fixed order for a
// given m (nt depends only on m). Ends with the block synchronised.
__device__ void gsa_col_sums(float *out0, float *out1, const float *A0, const float *A1, const float *w, float *ps,
                             int m, int nj, int ld) {
    const int S = A1 ? 2 * nj : nj, tid = threadIdx.x, P = blockDim.x / S;
    if (tid < S * P) {
        const int si = tid % S, pi = tid / S, j = si < nj ? si : si - nj;
        const float *A = si < nj ? A0 : A1;
        const int r0 = (int)((long long)m * pi / P), r1 = (int)((long long)m * (pi + 1) / P);
        float acc = 0.f;
        for (int r = r0; r < r1; r++) acc += w[r] * A[(size_t)r * ld + j];
        ps[pi * S + si] = acc;
    }
    __syncthreads();
    if (tid < S) {
        float acc = 0.f;
        for (int pi = 0; pi < P; pi++) acc += ps[pi * S + tid];
        if (tid < nj) out0[tid] = acc;
        else out1[tid - nj] = acc;
    }
    __syncthreads();
}

// One column group's forward recurrence, in a block per (group, b, h) with a thread per slot row:
// A_t = diag(alpha_t) A_{t-1} + s_t x_t^T over the group's columns of x (k, or v), and out_t = A_t^T w_t
// (w = dok, or p) by gsa_col_sums. A (m rows, GSA_CW + 1 apart) starts as the caller left it (zero);
// sx (GSA_CW), sa, ss, sw (m) and ps are the caller's shared scratch. As in gsa_scan_kernel, the next
// token's values for column / slot tid are loaded into registers during this token (nt >= 64 > nj:
// every column has its thread; slots past nt are loaded in turn).
__device__ void gsa_cols_fwd(float *out, float *A, const float *x, const float *w, const float *alpha, const float *s,
                             float *sx, float *sa, float *ss, float *sw, float *ps, int T, int H, int m, int dh) {
    const int g = blockIdx.x, bh = blockIdx.y, b = bh / H, h = bh % H, tid = threadIdx.x, nt = blockDim.x;
    const int D = H * dh, Hm = H * m, j0 = g * GSA_CW, nj = min(GSA_CW, dh - j0), LD = GSA_CW + 1;
    float f0 = 0.f, g0 = 0.f, g1 = 0.f, g2 = 0.f;
    auto fetch = [&](int t) {
        const size_t i = (size_t)b * T + t, od = i * D + (size_t)h * dh + j0, om = i * Hm + (size_t)h * m;
        if (tid < nj) f0 = x[od + tid];
        if (tid < m) { g0 = alpha[om + tid]; g1 = s[om + tid]; g2 = w[om + tid]; }
    };
    if (T > 0) fetch(0);
    for (int t = 0; t < T; t++) {  // A holds A_t here
        const size_t i = (size_t)b * T + t, od = i * D + (size_t)h * dh + j0, om = i * Hm + (size_t)h * m;
        __syncthreads();
        if (tid < nj) sx[tid] = f0;
        if (tid < m) { sa[tid] = g0; ss[tid] = g1; sw[tid] = g2; }
        for (int r = tid + nt; r < m; r += nt) { sa[r] = alpha[om + r]; ss[r] = s[om + r]; sw[r] = w[om + r]; }
        // (slots past nt: not reached today, as the split forms need m <= ~816 < their 1024 threads)
        if (t + 1 < T) fetch(t + 1);
        __syncthreads();
        for (int r = tid; r < m; r += nt) {
            float *row = A + (size_t)r * LD;
            const float a = sa[r], si = ss[r];
            for (int j = 0; j < nj; j++) row[j] = a * row[j] + si * sx[j];
        }
        __syncthreads();
        gsa_col_sums(out + od, NULL, A, NULL, sw, ps, m, nj, LD);
    }
}

// The split forward (GsaCudaCtx.fwd_split: the default where the scan's state does not fit in shared
// memory): gsa_bwd_rows_kernel with dpp NULL gives each column group's part of the scores K_t q_t,
// gsa_fwd_tok_kernel adds the parts in group order and takes the softmax over the slots (p), and
// gsa_fwd_cols_kernel runs the V recurrence per column group for o_t = V_t^T p_t. The rows of K and the
// columns of V recur independently; only the softmax joins them. Same sums as gsa.c, regrouped.
__global__ void gsa_fwd_tok_kernel(float *p, const float *okp, int N, int H, int m, int G) {
    const long long w = ((long long)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    const int lane = threadIdx.x & 31;
    if (w >= (long long)N * H) return;  // the whole warp
    const size_t NH = (size_t)N * H * m, base = (size_t)w * m;  // (i * H + h) * m
    float mx = -INFINITY;
    for (int r = lane; r < m; r += 32) {
        float sc = 0.f;
        for (int g = 0; g < G; g++) sc += okp[g * NH + base + r];
        p[base + r] = sc;
        mx = fmaxf(mx, sc);
    }
    mx = warp_max(mx);
    float sum = 0.f;
    for (int r = lane; r < m; r += 32) { const float e = expf(p[base + r] - mx); p[base + r] = e; sum += e; }
    const float inv = 1.f / warp_sum(sum);
    for (int r = lane; r < m; r += 32) p[base + r] *= inv;
}

__global__ void __launch_bounds__(1024) gsa_fwd_cols_kernel(float *o, const float *v, const float *alpha,
                                                           const float *s, const float *pp, int T, int H, int m, int dh) {
    extern __shared__ float sh[];
    const size_t mc = (size_t)m * (GSA_CW + 1);
    float *A = sh, *sx = A + mc, *sa = sx + GSA_CW, *ss = sa + m, *sw = ss + m, *ps = sw + m;
    for (size_t e = threadIdx.x; e < mc; e += blockDim.x) A[e] = 0.f;
    gsa_cols_fwd(o, A, v, pp, alpha, s, sx, sa, ss, sw, ps, T, H, m, dh);
}

// Block per (column group, b, h), thread per slot row (gsa_cols_threads(m) threads): the K recurrence
// forward for dq = K_t^T dok, then the reverse scan AV_t = p_t do_t^T + alpha_{t+1} AV_{t+1},
// AK_t = dok_t q_t^T + alpha_{t+1} AK_{t+1} for dv = AV^T s, dk = AK^T s and the group's part of
// dS = AV.v + AK.k (a row's sum in column order, by its own thread: no shuffles). Rows are GSA_CW + 1
// floats apart in shared memory, so a warp's threads (rows) hit distinct banks at every column.
// (Until 2026-12-01 a warp walked the rows one after another with a warp sum per row: 42% of the
// gsa step on the H200.)
__global__ void __launch_bounds__(1024) gsa_bwd_cols_kernel(float *dq, float *dk, float *dv, float *dSp,
        const float *q, const float *k, const float *v, const float *dO, const float *alpha, const float *s,
        const float *pp, const float *dok, int N, int T, int H, int m, int dh) {
    extern __shared__ float sh[];
    const int g = blockIdx.x, bh = blockIdx.y, b = bh / H, h = bh % H, tid = threadIdx.x, nt = blockDim.x;
    const int D = H * dh, Hm = H * m, j0 = g * GSA_CW, nj = min(GSA_CW, dh - j0), LD = GSA_CW + 1;
    const size_t mc = (size_t)m * LD, part = (size_t)g * N * Hm;
    float *AK = sh, *AV = sh + mc;
    float *sq = AV + mc, *sk = sq + GSA_CW, *sv = sk + GSA_CW, *sd = sv + GSA_CW;
    float *sa = sd + GSA_CW, *ss = sa + m, *sp = ss + m, *sx = sp + m, *ps = sx + m;
    for (size_t e = tid; e < 2 * mc; e += nt) AK[e] = 0.f;
    gsa_cols_fwd(dq, AK, k, dok, alpha, s, sk, sa, ss, sx, ps, T, H, m, dh);  // dq = K_t^T dok
    float f0 = 0.f, f1 = 0.f, f2 = 0.f, f3 = 0.f, g0 = 0.f, g1 = 0.f, g2 = 0.f, g3 = 0.f;
    for (size_t e = tid; e < mc; e += nt) AK[e] = 0.f;
    float *san = sa;  // alpha_{t+1} (0 at the end)
    auto fetch_rev = [&](int t) {
        const size_t i = (size_t)b * T + t, od = i * D + (size_t)h * dh + j0, om = i * Hm + (size_t)h * m;
        if (tid < nj) { f0 = q[od + tid]; f1 = k[od + tid]; f2 = v[od + tid]; f3 = dO[od + tid]; }
        if (tid < m) {
            g0 = s[om + tid]; g1 = pp[om + tid]; g2 = dok[om + tid];
            g3 = t + 1 < T ? alpha[om + Hm + tid] : 0.f;
        }
    };
    if (T > 0) fetch_rev(T - 1);
    for (int t = T - 1; t >= 0; t--) {
        const size_t i = (size_t)b * T + t, od = i * D + (size_t)h * dh + j0, om = i * Hm + (size_t)h * m;
        __syncthreads();
        if (tid < nj) { sq[tid] = f0; sk[tid] = f1; sv[tid] = f2; sd[tid] = f3; }
        if (tid < m) { ss[tid] = g0; sp[tid] = g1; sx[tid] = g2; san[tid] = g3; }
        for (int r = tid + nt; r < m; r += nt) {
            ss[r] = s[om + r]; sp[r] = pp[om + r]; sx[r] = dok[om + r];
            san[r] = t + 1 < T ? alpha[om + Hm + r] : 0.f;
        }
        if (t > 0) fetch_rev(t - 1);
        __syncthreads();
        for (int r = tid; r < m; r += nt) {
            float *rv = AV + (size_t)r * LD, *rk = AK + (size_t)r * LD, ds = 0.f;
            const float ar = san[r], pr = sp[r], xr = sx[r];
            for (int j = 0; j < nj; j++) {
                const float nv = ar * rv[j] + pr * sd[j], nk = ar * rk[j] + xr * sq[j];
                rv[j] = nv;
                rk[j] = nk;
                ds += nv * sv[j];
                ds += nk * sk[j];
            }
            dSp[part + om + r] = ds;
        }
        __syncthreads();
        gsa_col_sums(dv + od, dk + od, AV, AK, ss, ps, m, nj, LD);  // dv = AV^T s, dk = AK^T s
    }
}

// ---- gsa_bwd_cols_kernel with the states in registers (the default up to GSA_BWDR_MAXM slots) ----
#define GSA_BWDR_MAXM 512  // slots up to which it runs: a thread per slot row, at most 128 registers each

// Lane j ends with the sum of x[j] over the warp's 32 lanes (x: GSA_CW values per lane, overwritten):
// recursive halving, a fixed butterfly. At offset o a lane keeps the half of its columns whose bit o
// matches its lane's, sends the other half to lane ^ o and adds the partner's copy of its own half:
// 16 + 8 + 4 + 2 + 1 = 31 shuffles for the 32 sums, where a warp_sum per column would take 32 x 5.
__device__ __forceinline__ float gsa_warp_colsum(float *x, int lane) {
#pragma unroll
    for (int l = 0; l < 5; l++) {  // GSA_CW = 2^5
        const int o = GSA_CW >> (l + 1);
        const bool up = lane & o;
#pragma unroll
        for (int e = 0; e < GSA_CW / 2; e++)  // a constant trip count: unrolled, x stays in registers
            if (e < o) {
                const float send = up ? x[e] : x[e + o], keep = up ? x[e + o] : x[e];
                x[e] = keep + __shfl_xor_sync(0xffffffffu, send, o);
            }
    }
    return x[0];
}

// gsa_bwd_cols_kernel's recurrences and outputs, block per (column group, b, h), a thread per slot row
// (gsa_bwdr_threads(m): m rounded up to a warp; rows past m stay zero, read nothing, add exact zeros),
// each holding its row of K (the forward part), then of AV and AK, over the group's 32 columns in
// registers (fully unrolled; columns past nj are zero). Per token a thread updates its row, forms its
// dS part in column order (as gsa_bwd_cols_kernel) and its terms of the column sums (dok K for dq;
// s AV, s AK for dv, dk), which gsa_warp_colsum adds over each warp and the last step over the warps in
// warp order (ws): a fixed order, so the same bits every run, but grouped unlike gsa_bwd_cols_kernel's
// serial row ranges (the two differ in the last bits). The token's columns of q, k, v, dO (zero past
// nj) reach the threads through shared memory (sc: one broadcast float4 load per 4 columns), loaded by
// warp 0 into registers a token ahead; each thread likewise loads its row's s, p, dok, alpha. sc and
// ws are double-buffered by token parity, so one barrier a token: a buffer is rewritten two tokens on,
// after a barrier that its readers have passed.
// (gsa_bwd_cols_kernel, the default until 2026-12-02, keeps the states in shared memory: 2 loads and
// 2 stores per element and state a token, then every row read again for the column sums, serial over
// the slots, and 3 barriers a token: 33% of a conv,gsa step at 64 slots on the H200.)
__global__ void __launch_bounds__(GSA_BWDR_MAXM) gsa_bwd_cols_reg_kernel(float *dq, float *dk, float *dv,
        float *dSp, const float *q, const float *k, const float *v, const float *dO, const float *alpha,
        const float *s, const float *pp, const float *dok, int N, int T, int H, int m, int dh) {
    extern __shared__ float sh[];
    const int g = blockIdx.x, bh = blockIdx.y, b = bh / H, h = bh % H, r = threadIdx.x, nt = blockDim.x;
    const int lane = r & 31, warp = r >> 5, nw = nt >> 5, D = H * dh, Hm = H * m, j0 = g * GSA_CW;
    const int nj = min(GSA_CW, dh - j0);
    const bool row = r < m;
    const size_t part = (size_t)g * N * Hm;
    float *sc = sh, *ws = sh + 8 * GSA_CW;  // sc [2][4][GSA_CW]: q, k, v, dO; ws [2][nw][2 GSA_CW]
    const float4 *sc4 = (const float4 *)sc;
    float A[GSA_CW], B[GSA_CW], x[GSA_CW];  // K, then AK; AV; the column sums' terms
#pragma unroll
    for (int j = 0; j < GSA_CW; j++) A[j] = B[j] = 0.f;
    // forward: K_t = diag(alpha_t) K_{t-1} + s_t k_t^T, dq_t = K_t^T dok_t
    float fk = 0.f, fa = 0.f, fs = 0.f, fw = 0.f, ca = 0.f, cs = 0.f, cw = 0.f;  // next token's, this token's
    auto fetch = [&](int t) {
        const size_t i = (size_t)b * T + t, od = i * D + (size_t)h * dh + j0, om = i * Hm + (size_t)h * m + r;
        if (warp == 0) fk = lane < nj ? k[od + lane] : 0.f;
        if (row) { fa = alpha[om]; fs = s[om]; fw = dok[om]; }
    };
    auto stage = [&](int t) {  // the fetched token t becomes this token
        if (warp == 0) sc[((t & 1) * 4 + 1) * GSA_CW + lane] = fk;
        ca = fa; cs = fs; cw = fw;
    };
    if (T > 0) { fetch(0); stage(0); }
    if (T > 1) fetch(1);
    __syncthreads();
    for (int t = 0; t < T; t++) {
        const size_t i = (size_t)b * T + t, od = i * D + (size_t)h * dh + j0;
        const int cb = t & 1;
#pragma unroll
        for (int c = 0; c < GSA_CW / 4; c++) {
            const float4 k4 = sc4[(cb * 4 + 1) * (GSA_CW / 4) + c];
            const float kk[4] = {k4.x, k4.y, k4.z, k4.w};
#pragma unroll
            for (int e = 0; e < 4; e++) {
                A[4 * c + e] = ca * A[4 * c + e] + cs * kk[e];
                x[4 * c + e] = cw * A[4 * c + e];
            }
        }
        float *wb = ws + (size_t)cb * nw * 2 * GSA_CW;
        wb[warp * 2 * GSA_CW + lane] = gsa_warp_colsum(x, lane);
        if (t + 1 < T) { stage(t + 1); if (t + 2 < T) fetch(t + 2); }
        __syncthreads();
        if (r < nj) {
            float acc = 0.f;
            for (int w = 0; w < nw; w++) acc += wb[w * 2 * GSA_CW + r];
            dq[od + r] = acc;
        }
    }
    // reverse: AV_t = p_t do_t^T + alpha_{t+1} AV_{t+1}, AK_t = dok_t q_t^T + alpha_{t+1} AK_{t+1};
    // dv = AV^T s, dk = AK^T s, the group's part of dS = AV.v + AK.k
#pragma unroll
    for (int j = 0; j < GSA_CW; j++) A[j] = 0.f;
    float fq = 0.f, fv = 0.f, fd = 0.f, fp = 0.f, cp = 0.f;  // (fa, ca: alpha_{t+1}, 0 at the end)
    auto fetch_rev = [&](int t) {
        const size_t i = (size_t)b * T + t, od = i * D + (size_t)h * dh + j0, om = i * Hm + (size_t)h * m + r;
        if (warp == 0) {
            const bool in = lane < nj;
            fq = in ? q[od + lane] : 0.f; fk = in ? k[od + lane] : 0.f;
            fv = in ? v[od + lane] : 0.f; fd = in ? dO[od + lane] : 0.f;
        }
        if (row) { fs = s[om]; fp = pp[om]; fw = dok[om]; fa = t + 1 < T ? alpha[om + Hm] : 0.f; }
    };
    auto stage_rev = [&](int t) {
        if (warp == 0) {
            float *d = sc + (t & 1) * 4 * GSA_CW + lane;
            d[0] = fq; d[GSA_CW] = fk; d[2 * GSA_CW] = fv; d[3 * GSA_CW] = fd;
        }
        ca = fa; cs = fs; cp = fp; cw = fw;
    };
    if (T > 0) { fetch_rev(T - 1); stage_rev(T - 1); }
    if (T > 1) fetch_rev(T - 2);
    __syncthreads();  // also: the forward's last readers of sc and ws are done
    for (int t = T - 1; t >= 0; t--) {
        const size_t i = (size_t)b * T + t, od = i * D + (size_t)h * dh + j0, om = i * Hm + (size_t)h * m + r;
        const int cb = t & 1;
        float ds = 0.f;
#pragma unroll
        for (int c = 0; c < GSA_CW / 4; c++) {
            const float4 q4 = sc4[(cb * 4) * (GSA_CW / 4) + c], k4 = sc4[(cb * 4 + 1) * (GSA_CW / 4) + c];
            const float4 v4 = sc4[(cb * 4 + 2) * (GSA_CW / 4) + c], d4 = sc4[(cb * 4 + 3) * (GSA_CW / 4) + c];
            const float qq[4] = {q4.x, q4.y, q4.z, q4.w}, kk[4] = {k4.x, k4.y, k4.z, k4.w};
            const float vv[4] = {v4.x, v4.y, v4.z, v4.w}, dd[4] = {d4.x, d4.y, d4.z, d4.w};
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int j = 4 * c + e;
                B[j] = ca * B[j] + cp * dd[e];
                A[j] = ca * A[j] + cw * qq[e];
                ds += B[j] * vv[e];
                ds += A[j] * kk[e];
            }
        }
        if (row) dSp[part + om] = ds;
        float *wb = ws + (size_t)cb * nw * 2 * GSA_CW + warp * 2 * GSA_CW;
#pragma unroll
        for (int j = 0; j < GSA_CW; j++) x[j] = cs * B[j];
        wb[lane] = gsa_warp_colsum(x, lane);
#pragma unroll
        for (int j = 0; j < GSA_CW; j++) x[j] = cs * A[j];
        wb[GSA_CW + lane] = gsa_warp_colsum(x, lane);
        if (t > 0) { stage_rev(t - 1); if (t > 1) fetch_rev(t - 2); }
        __syncthreads();
        wb = ws + (size_t)cb * nw * 2 * GSA_CW;
        for (int u = r; u < 2 * GSA_CW; u += nt) {  // dv (u < 32), dk: the warps' sums in warp order
            const int j = u & (GSA_CW - 1);
            if (j >= nj) continue;
            float acc = 0.f;
            for (int w = 0; w < nw; w++) acc += wb[w * 2 * GSA_CW + u];
            (u < GSA_CW ? dv : dk)[od + j] = acc;
        }
    }
}

// dS [n] = sum of the G group parts, in group order.
__global__ void gsa_sum_parts_kernel(float *dS, const float *parts, int G, long long n) {
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float acc = 0.f;
    for (int g = 0; g < G; g++) acc += parts[g * n + i];
    dS[i] = acc;
}

// Mirrors gsa_backward's gate loop: per (b, slot of all heads), reverse cumulative sum over t;
// dG ends as the gate-logit gradient.
__global__ void gsa_gate_kernel(float *dG, const float *dS, const float *s, const float *alpha, const float *fa,
                                int B, int T, int Hm, int forced) {
    int idx = blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= B * Hm) return;
    int b = idx / Hm, hr = idx % Hm;
    float cum = 0.f;
    for (int t = T - 1; t >= 0; t--) {
        size_t n = ((size_t)b * T + t) * Hm + hr;
        cum += dG[n] - s[n] * dS[n];
        float dlog = cum - dS[n] * alpha[n];
        dG[n] = forced ? 0.f : dlog * gsa_sigm(-fa[n]) / GSA_GNORM_F;
    }
}

// Mirrors gsa_backward's silu backward to the pre-activations.
__global__ void gsa_silu_backward_kernel(float *dq, float *dk, float *dv, const float *qa, const float *ka,
                                         const float *va, long long n) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    dq[i] *= gsa_silu_grad(qa[i]);
    dk[i] *= gsa_silu_grad(ka[i]);
    dv[i] *= gsa_silu_grad(va[i]);
}

// gsa_scan_kernel: the state (rows dh + 1 apart) when in shared memory, q k v, alpha s p, and the
// partial sums (P m <= max(nt, m), Q dh <= max(nt, dh) floats).
static size_t gsa_fwd_shared(int m, int dh, int smem) {
    size_t ps = GSA_THREADS > m ? GSA_THREADS : m;
    if ((size_t)dh > ps) ps = dh;
    return ((smem ? 2 * (size_t)m * (dh + 1) : 0) + 3 * dh + 3 * m + ps) * 4;
}
static size_t gsa_bwd_shared(int m, int dh, int smem) { return ((smem ? 4 * (size_t)m * dh : 0) + 4 * dh + 5 * m) * 4; }

// S of gsa_scan_reg_kernel for (m, d_h), or 0 where it does not apply (then gsa_scan_kernel).
static int gsa_scan_reg_s(int m, int dh) {
    if (m < 1 || dh < 1 || GSA_THREADS % m || GSA_THREADS % dh || (long long)m * dh < GSA_THREADS) return 0;
    const int S = m * dh / GSA_THREADS;
    return S <= 64 ? S : 0;
}
static void gsa_scan_reg_launch(int S, float *p, float *o, const float *q, const float *k, const float *v,
                                const float *alpha, const float *s, int B, int T, int H, int m, int dh, size_t shb) {
    cudaStream_t st = rb_cuda_stream();
#define GSA_REG(SS) gsa_scan_reg_kernel<SS><<<B * H, GSA_THREADS, shb, st>>>(p, o, q, k, v, alpha, s, T, H, m, dh)
    switch (S) {
    case 1: GSA_REG(1); break;
    case 2: GSA_REG(2); break;
    case 4: GSA_REG(4); break;
    case 8: GSA_REG(8); break;
    case 16: GSA_REG(16); break;
    case 32: GSA_REG(32); break;
    default: GSA_REG(64); break;
    }
#undef GSA_REG
    CHECK_LAUNCH();
}
// gsa_bwd_cols_kernel: a thread per slot row, at least 64 (2 x GSA_CW column sums), at most 1024.
static int gsa_cols_threads(int m) { return m <= 64 ? 64 : m >= 1024 ? 1024 : (m + 31) / 32 * 32; }
static size_t gsa_cols_shared(int m, int nt) {
    return (2 * (size_t)m * (GSA_CW + 1) + 4 * GSA_CW + 4 * (size_t)m + nt) * 4;
}
// gsa_bwd_cols_reg_kernel: a thread per slot row, m rounded up to a warp; 0 past GSA_BWDR_MAXM (a row's
// 64 state registers and the rest fill 128 registers: 1024 threads would allow 64). Its shared memory:
// sc and ws, at most 9 KB.
static int gsa_bwdr_threads(int m) { return m >= 1 && m <= GSA_BWDR_MAXM ? (m + 31) / 32 * 32 : 0; }
static size_t gsa_bwdr_shared(int nt) { return (8 * GSA_CW + 4 * (size_t)(nt / 32) * GSA_CW) * 4; }

static void *gsa_cuda_create(const MixerCfg *c, int Bmax, int Tmax) {
    GsaCudaCtx *x = (GsaCudaCtx *)calloc(1, sizeof *x);
    if (!x) return NULL;
    x->D = c->d; x->H = c->heads; x->dh = c->d / c->heads; x->m = c->slots; x->Hm = c->heads * c->slots;
    x->Bmax = Bmax; x->Tmax = Tmax;
    size_t N = (size_t)Bmax * Tmax, D = x->D, Hm = x->Hm;
    size_t st = (size_t)Bmax * x->H * 4 * x->m * x->dh, cs = rb_colsum_scratch((int)N, (int)D);
    size_t sx = (size_t)Bmax * (9 * D + 1 + 4 * Hm);
    int dev = 0, optin = 0;
    CHECK_CUDA(cudaGetDevice(&dev));
    CHECK_CUDA(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
    const char *seq = getenv("RB_CUDA_GSA_SEQ");  // the one-block-per-(b, h) backward scan (reference)
    x->cols_nt = gsa_cols_threads(x->m);
    const char *cnt = getenv("RB_CUDA_GSA_COLS_THREADS");
    if (cnt && *cnt) {
        const int n = atoi(cnt);
        if (n % 32 == 0 && n >= x->cols_nt && n <= 1024) x->cols_nt = n;
        else fprintf(stderr, "recallbench: RB_CUDA_GSA_COLS_THREADS=%s ignored: GSA with %d slots needs a multiple of "
                             "32 from %d to 1024\n", cnt, x->m, x->cols_nt);
    }
    x->shb_cols = gsa_cols_shared(x->m, x->cols_nt);
    x->split = !(seq && seq[0] == '1') && x->shb_cols <= (size_t)optin;
    size_t bp = x->split ? 2 * (size_t)cdiv(x->dh, GSA_CW) * N * Hm : 0;
    size_t total = N * D * 11 + N * Hm * 7 + N + st + cs + sx + bp;
    float *w = rb_cuda_alloc(total);
    if (!w) { free(x); return NULL; }
    float **nd[] = {&x->qa, &x->ka, &x->va, &x->q, &x->k, &x->v, &x->o, &x->dr, &x->dq, &x->dk, &x->dv};
    for (size_t i = 0; i < sizeof nd / sizeof *nd; i++, w += N * D) *nd[i] = w;
    float **nh[] = {&x->fa, &x->alpha, &x->s, &x->p, &x->dok, &x->dS, &x->dG};
    for (size_t i = 0; i < sizeof nh / sizeof *nh; i++, w += N * Hm) *nh[i] = w;
    x->rstd = w; w += N;
    x->st = w; w += st;
    x->cs = w; w += cs;
    x->sx = w; w += sx;
    x->bpart = w;
    // State in shared memory when the block's opt-in limit allows it (set here: not during capture).
    // gsa_bwd_scan_kernel has a static reduction buffer; the other two kernels none.
    const size_t lim = (size_t)optin - 32 * 4;
    x->smem_fwd = gsa_fwd_shared(x->m, x->dh, 1) <= (size_t)optin;
    x->smem_bwd = gsa_bwd_shared(x->m, x->dh, 1) <= lim;
    x->shb_fwd = gsa_fwd_shared(x->m, x->dh, x->smem_fwd);
    x->shb_bwd = gsa_bwd_shared(x->m, x->dh, x->smem_bwd);
    const char *ff = getenv("RB_CUDA_GSA_FWD");
    x->reg_s = ff && (!strcmp(ff, "scan") || !strcmp(ff, "split")) ? 0 : gsa_scan_reg_s(x->m, x->dh);
    x->fwd_split = x->split && (ff && !strcmp(ff, "split") ? 1 : ff && !strcmp(ff, "scan") ? 0
                                : !x->reg_s && !x->smem_fwd);
    const char *fb = getenv("RB_CUDA_GSA_BWD");
    x->bwd_nt = fb && !strcmp(fb, "smem") ? 0 : gsa_bwdr_threads(x->m);
    if (x->shb_fwd > (size_t)optin || x->shb_bwd > lim) { rb_cuda_free(x->qa); free(x); return NULL; }
    // The attribute is the kernel's, process-wide: set to the limit, not to this mixer's size, so that
    // mixers of other sizes (layers, bench -j threads) never launch past what the last one set.
    CHECK_CUDA(cudaFuncSetAttribute(gsa_scan_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, optin));
    CHECK_CUDA(cudaFuncSetAttribute(gsa_bwd_scan_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)lim));
    CHECK_CUDA(cudaFuncSetAttribute(gsa_bwd_cols_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, optin));
    CHECK_CUDA(cudaFuncSetAttribute(gsa_fwd_cols_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, optin));
    return x;
}

static void gsa_cuda_destroy(void *ctx) {
    GsaCudaCtx *x = (GsaCudaCtx *)ctx;
    if (!x) return;
    rb_cuda_free(x->qa);  // the first carve of the one allocation
    free(x);
}

static float gsa_force(void) { return gsa_test_force_alpha >= 0 ? (float)gsa_test_force_alpha : -1.f; }

static void gsa_activate_launch(float *q, float *k, float *v, float *alpha, float *s, const float *qa,
                                const float *ka, const float *va, const float *fa, int N, int D, int Hm) {
    long long nd = (long long)N * D, nh = (long long)N * Hm, n = nd > nh ? nd : nh;
    gsa_activate_kernel<<<cdiv(n, 256), 256, 0, rb_cuda_stream()>>>(q, k, v, alpha, s, qa, ka, va, fa, nd, nh,
                                                                    gsa_force());
    CHECK_LAUNCH();
}

static void gsa_cuda_forward(Mixer *mx, float *const *p, float *out, const float *inp, int B, int T) {
    GsaCudaCtx *c = (GsaCudaCtx *)mx->ctx;
    const int N = B * T, D = c->D, H = c->H, dh = c->dh, m = c->m, Hm = c->Hm;
    cudaStream_t st = rb_cuda_stream();
    rb_cuda_matmul(c->qa, inp, p[GSA_WQ], N, D, D, 0, 1, 0.f);
    rb_cuda_matmul(c->ka, inp, p[GSA_WK], N, D, D, 0, 1, 0.f);
    rb_cuda_matmul(c->va, inp, p[GSA_WV], N, D, D, 0, 1, 0.f);
    rb_cuda_matmul(c->fa, inp, p[GSA_WF], N, Hm, D, 0, 1, 0.f);
    gsa_activate_launch(c->q, c->k, c->v, c->alpha, c->s, c->qa, c->ka, c->va, c->fa, N, D, Hm);
    if (c->fwd_split) {
        const int G = cdiv(dh, GSA_CW);
        float *okp = c->bpart;  // [G, BT, Hm] score parts (the backward refills bpart)
        gsa_rows_launch(NULL, okp, c->q, c->k, NULL, NULL, c->alpha, c->s, B, T, H, m, dh);
        gsa_fwd_tok_kernel<<<cdiv((long long)N * H * 32, 256), 256, 0, st>>>(c->p, okp, N, H, m, G);
        CHECK_LAUNCH();
        gsa_fwd_cols_kernel<<<dim3(G, B * H), c->cols_nt, c->shb_cols, st>>>(c->o, c->v, c->alpha, c->s,
                                                                                     c->p, T, H, m, dh);
    } else if (c->reg_s) {
        gsa_scan_reg_launch(c->reg_s, c->p, c->o, c->q, c->k, c->v, c->alpha, c->s, B, T, H, m, dh,
                            gsa_fwd_shared(m, dh, 0));
    } else {
        gsa_scan_kernel<<<B * H, GSA_THREADS, c->shb_fwd, st>>>(c->p, c->o, c->q, c->k, c->v, c->alpha, c->s, c->st,
                                                                4LL * m * dh, c->smem_fwd, 1, T, H, m, dh);
    }
    CHECK_LAUNCH();
    float *y = c->dk, *r = c->dq;  // kept for backward, as on the CPU
    gsa_norm_forward_kernel<<<N, GSA_ROW_THREADS, 0, st>>>(y, r, c->rstd, c->o, p[GSA_NORM], D);
    CHECK_LAUNCH();
    rb_cuda_matmul(out, r, p[GSA_WO], N, D, D, 0, 1, 0.f);
}

static void gsa_cuda_backward(Mixer *mx, float *const *p, float *const *dp, float *dinp, const float *dout,
                              const float *inp, int B, int T) {
    GsaCudaCtx *c = (GsaCudaCtx *)mx->ctx;
    const int N = B * T, D = c->D, H = c->H, dh = c->dh, m = c->m, Hm = c->Hm;
    cudaStream_t st = rb_cuda_stream();
    const float *y = c->dk, *r = c->dq;  // from forward
    rb_cuda_matmul(c->dr, dout, p[GSA_WO], N, D, D, 0, 0, 0.f);
    rb_cuda_matmul(dp[GSA_WO], dout, r, D, D, N, 1, 0, 1.f);
    // norm: dw = colsum(dr * y * rstd) (tmp in dv, free until the reverse scan), dr -> do in place
    gsa_norm_backward_kernel<<<N, GSA_ROW_THREADS, 0, st>>>(c->dr, c->dv, y, c->o, c->rstd, p[GSA_NORM], D);
    CHECK_LAUNCH();
    rb_colsum(dp[GSA_NORM], c->dv, N, D, D, 1, c->cs);
    if (c->split) {
        const int G = cdiv(dh, GSA_CW);
        float *dpp = c->bpart, *okp = dpp + (size_t)G * N * Hm;  // dpp then holds the dS parts
        gsa_rows_launch(dpp, okp, c->q, c->k, c->v, c->dr, c->alpha, c->s, B, T, H, m, dh);
        gsa_bwd_tok_kernel<<<cdiv((long long)N * H * 32, 256), 256, 0, st>>>(c->dok, c->dG, dpp, okp, c->p, N, H, m,
                                                                             G);
        CHECK_LAUNCH();
        if (c->bwd_nt)
            gsa_bwd_cols_reg_kernel<<<dim3(G, B * H), c->bwd_nt, gsa_bwdr_shared(c->bwd_nt), st>>>(
                c->dq, c->dk, c->dv, dpp, c->q, c->k, c->v, c->dr, c->alpha, c->s, c->p, c->dok, N, T, H, m, dh);
        else
            gsa_bwd_cols_kernel<<<dim3(G, B * H), c->cols_nt, c->shb_cols, st>>>(c->dq, c->dk, c->dv, dpp, c->q, c->k,
                                                                            c->v, c->dr, c->alpha, c->s, c->p, c->dok,
                                                                            N, T, H, m, dh);
        CHECK_LAUNCH();
        gsa_sum_parts_kernel<<<cdiv((long long)N * Hm, 256), 256, 0, st>>>(c->dS, dpp, G, (long long)N * Hm);
        CHECK_LAUNCH();
    } else {
        gsa_bwd_scan_kernel<<<B * H, GSA_THREADS, c->shb_bwd, st>>>(c->dok, c->dG, c->dq, c->dk, c->dv, c->dS, c->q,
                                                                    c->k, c->v, c->dr, c->alpha, c->s, c->p, c->st,
                                                                    c->smem_bwd, T, H, m, dh);
        CHECK_LAUNCH();
    }
    gsa_gate_kernel<<<cdiv((long long)B * Hm, 128), 128, 0, st>>>(c->dG, c->dS, c->s, c->alpha, c->fa, B, T, Hm,
                                                                  gsa_test_force_alpha >= 0);
    CHECK_LAUNCH();
    long long nd = (long long)N * D;
    gsa_silu_backward_kernel<<<cdiv(nd, 256), 256, 0, st>>>(c->dq, c->dk, c->dv, c->qa, c->ka, c->va, nd);
    CHECK_LAUNCH();
    rb_cuda_matmul(dinp, c->dq, p[GSA_WQ], N, D, D, 0, 0, 0.f);
    rb_cuda_matmul(dinp, c->dk, p[GSA_WK], N, D, D, 0, 0, 1.f);
    rb_cuda_matmul(dinp, c->dv, p[GSA_WV], N, D, D, 0, 0, 1.f);
    rb_cuda_matmul(dinp, c->dG, p[GSA_WF], N, D, Hm, 0, 0, 1.f);
    rb_cuda_matmul(dp[GSA_WQ], c->dq, inp, D, D, N, 1, 0, 1.f);
    rb_cuda_matmul(dp[GSA_WK], c->dk, inp, D, D, N, 1, 0, 1.f);
    rb_cuda_matmul(dp[GSA_WV], c->dv, inp, D, D, N, 1, 0, 1.f);
    rb_cuda_matmul(dp[GSA_WF], c->dG, inp, Hm, D, N, 1, 0, 1.f);
}

// As gsa_step_state_size: per head [K (m x d_h), V (m x d_h)].
static size_t gsa_cuda_step_state_size(const Mixer *mx) {
    const GsaCudaCtx *c = (const GsaCudaCtx *)mx->ctx;
    return (size_t)c->H * 2 * c->m * c->dh;
}

// Mirrors gsa_step for B sequences: the scan kernel with T = 1 on the caller's state in place.
static void gsa_cuda_step(Mixer *mx, float *const *p, float *state, float *out, const float *x, int B, int t) {
    GsaCudaCtx *c = (GsaCudaCtx *)mx->ctx;
    const int D = c->D, H = c->H, dh = c->dh, m = c->m, Hm = c->Hm;
    cudaStream_t st = rb_cuda_stream();
    float *qa = c->sx, *ka = qa + (size_t)B * D, *va = ka + (size_t)B * D, *q = va + (size_t)B * D;
    float *k = q + (size_t)B * D, *v = k + (size_t)B * D, *o = v + (size_t)B * D, *y = o + (size_t)B * D;
    float *r = y + (size_t)B * D, *rs = r + (size_t)B * D, *fa = rs + B, *alpha = fa + (size_t)B * Hm;
    float *s = alpha + (size_t)B * Hm, *pp = s + (size_t)B * Hm;
    rb_cuda_matmul(qa, x, p[GSA_WQ], B, D, D, 0, 1, 0.f);
    rb_cuda_matmul(ka, x, p[GSA_WK], B, D, D, 0, 1, 0.f);
    rb_cuda_matmul(va, x, p[GSA_WV], B, D, D, 0, 1, 0.f);
    rb_cuda_matmul(fa, x, p[GSA_WF], B, Hm, D, 0, 1, 0.f);
    gsa_activate_launch(q, k, v, alpha, s, qa, ka, va, fa, B, D, Hm);
    gsa_scan_kernel<<<B * H, GSA_THREADS, gsa_fwd_shared(m, dh, 0), st>>>(pp, o, q, k, v, alpha, s, state,
                                                                          2LL * m * dh, 0, 0, 1, H, m, dh);
    CHECK_LAUNCH();
    gsa_norm_forward_kernel<<<B, GSA_ROW_THREADS, 0, st>>>(y, r, rs, o, p[GSA_NORM], D);
    CHECK_LAUNCH();
    rb_cuda_matmul(out, r, p[GSA_WO], B, D, D, 0, 1, 0.f);
}

extern "C" const MixerCudaOps gsa_cuda_ops = {
    gsa_cuda_create, gsa_cuda_destroy, gsa_cuda_forward, gsa_cuda_backward, gsa_cuda_step_state_size, gsa_cuda_step,
};
