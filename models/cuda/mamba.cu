// mamba.cu — device form of models/mixers/mamba.c: the Mamba block with the selective SSM (S6).
// Depends on layers.cuh (cuBLAS GEMMs through rb_cuda_*), mamba_internal.h (layout, sizes), mixer.h.
//
// Same math, tensor order and step-state layout as mamba.c; the projections are cuBLAS GEMMs, the rest
// is five kernels per pass. The scan has two forms: the default lane-parallel kernels (d_state <= 32:
// scan_*_lanes, NM lanes per channel, one state each, chunks staged in shared memory, sums over n by
// warp transpose-sums; 32 < d_state <= 256: scan_*_wide, a lane per channel and the states split over
// the block's warps; see their comments), and the serial ones (RB_MAMBA_SCAN=serial, d_state <= 32; mamba's
// selective_scan in the "one thread per channel" form: a thread owns (sequence b, channel c), keeps the
// N states in registers while it walks over t, the forward saves h at every SCAN_TC-token chunk
// boundary, the backward recomputes h inside a chunk into a per-thread [SCAN_TC+1, N] array and runs the
// reverse recurrence). Every sum over (b, t) or over channels is a fixed-order reduction: per-thread
// partials over t, then sums over b (or over warps / blocks) in index order, so a run gives the same bits.
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "layers.cuh"
extern "C" {
#include "../mixers/mamba_internal.h"
}

#define K MAMBA_CONV_K
#define SCAN_TC 8    // tokens per chunk: chunk-start states saved by the forward, recomputed in the backward
#define SCAN_BX 64   // channels per block of the scan kernels (one block row = one sequence)
#define NMAX_SERIAL 32  // largest d_state of the serial scan (register arrays of NM states per thread)
#define NMAX_DEV 256    // largest d_state of the default scan (lanes kernels up to 32, wide ones above)

typedef struct {
    int D, E, N, R, P, NM;      // model width, d_inner, d_state, dt_rank, R + 2N, compiled N (>= N)
    int Bmax, Tmax, nw;         // nw = dB/dC partials per token: warps (serial) or blocks (lanes) across E
    int lanes;                  // 1: the lane-parallel scan kernels (default), 0: the serial ones
    // forward activations [M = B T rows, ...], as MambaCtx of mamba.c
    float *xz;                  // [M, 2E] in_proj output: x before the conv | z
    float *xs;                  // [M, E]  silu(conv(x)) (xc is recomputed by the backward)
    float *xdbl;                // [M, P]  dt_low | B | C
    float *dtp;                 // [M, E]  W_dt dt_low (delta = softplus(dtp + b_dt), recomputed)
    float *y;                   // [M, E]  C.h + D x
    float *g;                   // [M, E]  y silu(z)
    float *hs;                  // state at the end of each chunk: serial [B, T/SCAN_TC, N, E],
                                // lanes [B, T/SC_TC, E, N], wide (NM > 32) [B, T/SC_TC, N, E]
    // backward
    float *dg;                  // [M, E]  d g
    float *dxz;                 // [M, 2E]
    float *dxs;                 // [M, E]
    float *ddt;                 // [M, E]  d dt_pre
    float *dxdbl;               // [M, P]
    float *dbc_part;            // [M, nw, 2N] per-warp (per-block) sums over channels of dB | dC
    float *dA_part;             // [Bmax, N, E] per-sequence sums over t
    float *dD_part, *dbdt_part;  // [Bmax, E]
    float *dconv_part;          // [Bmax, conv_part_rows(Tmax), K+1, E] conv weight | bias partials
    // step vectors for Bmax sequences: xz [2E], xs [E], xdbl [P], dtp [E], g [E]
    float *sxz, *sxs, *sxdbl, *sdtp, *sg;
} MambaCudaCtx;

// ---- scalar helpers (mamba.c's sigmoid / softplus; __expf stands in for exp_fast, both ~1e-7 rel.) --
__device__ __forceinline__ float sigm(float v) { return 1.f / (1.f + __expf(-v)); }
__device__ __forceinline__ float softplus_d(float v) { return fmaxf(v, 0.f) + log1pf(__expf(-fabsf(v))); }

// ---- the depthwise causal conv4 (mamba.c conv_forward_seq, conv_backward_blk) ------------------------
// Both kernels: a block is 32 lanes x CONV_WARPS warps; lane l takes V consecutive channels (V = 4: float4
// loads and stores, where E % 4 == 0 and the rows are 16-byte aligned, see conv_v4; else V = 1), warp w one
// run of tokens of sequence blockIdx.z; grid (E/V over 32 lanes, token runs over CONV_WARPS, B). So there
// is no index division, a warp reads 32 V contiguous floats of a row, and w, bias are read once per run.
#define CONV_WARPS 8
#define CONV_FT 4    // forward: tokens per warp (each x row read (CONV_FT + K-1) / CONV_FT times, not K)
#define CONV_TC 16   // backward: tokens per warp (one work item; it recomputes dxc for the K-1 after it)

// 1 where the V = 4 form applies: E % 4 == 0 and every row pointer 16-byte aligned (rb_cuda_alloc's are)
static int conv_v4(int E, const void *a, const void *b, const void *c) {
    return E % 4 == 0 && (((uintptr_t)a | (uintptr_t)b | (uintptr_t)c) & 15) == 0;
}
// Row s of a sequence's [T, stride] array (p: its row 0 at this thread's channels), V channels; zero
// outside 0 <= s < T (the causal padding). The load is of the clamped row, always in bounds, so it
// needs no branch and the compiler may issue it as early as it likes; a select then zeroes it.
template <int V>
__device__ __forceinline__ ChanVec<V> conv_row(const float *p, int s, int T, int stride) {
    const bool in = s >= 0 && s < T;
    ChanVec<V> r = chan_load<V>(p + (size_t)(s < 0 ? 0 : in ? s : T - 1) * stride);
#pragma unroll
    for (int v = 0; v < V; v++) r.v[v] = in ? r.v[v] : 0.f;
    return r;
}

// The K taps and the bias of channels c .. c+V-1 (scalar loads: their offsets in the parameter slab need
// not be 16-byte aligned).
template <int V>
__device__ __forceinline__ void conv_taps(float (*wk)[V], float *bc, const float *w, const float *bias, int c) {
#pragma unroll
    for (int v = 0; v < V; v++) {
        bc[v] = bias[c + v];
#pragma unroll
        for (int k = 0; k < K; k++) wk[k][v] = w[(c + v) * K + k];
    }
}

// conv_forward (mamba.c conv_forward_seq): xs = silu(conv_b + causal depthwise conv4 of x (rows of xz,
// stride 2E)). Warp w: tokens t0 .. t0+CONV_FT-1; the CONV_FT + K-1 input rows it needs are loaded
// first (independent loads, all in flight together), then each output. Per element the operations of
// the one-thread-per-element form in its order (o = bias; o += w_k x over the taps inside the sequence,
// k = 0 .. K-1; o sigm(o)), for any V: the same bits.
template <int V>
__global__ void __launch_bounds__(32 * CONV_WARPS) conv_forward_kernel(float *__restrict__ xs,
        const float *__restrict__ xz, const float *__restrict__ w, const float *__restrict__ bias, int T, int E) {
    const int c = (blockIdx.x * 32 + (threadIdx.x & 31)) * V, b = blockIdx.z;
    const int t0 = (blockIdx.y * CONV_WARPS + (threadIdx.x >> 5)) * CONV_FT;
    if (c >= E || t0 >= T) return;
    const float *xb = xz + (size_t)b * T * 2 * E + c;
    float *ob = xs + (size_t)b * T * E + c;
    ChanVec<V> xr[CONV_FT + K - 1];  // xr[i] = x at token t0 - (K-1) + i
#pragma unroll
    for (int i = 0; i < CONV_FT + K - 1; i++) xr[i] = conv_row<V>(xb, t0 - (K - 1) + i, T, 2 * E);
    float wk[K][V], bc[V];
    conv_taps<V>(wk, bc, w, bias, c);
#pragma unroll
    for (int j = 0; j < CONV_FT; j++) {
        const int t = t0 + j;
        if (t >= T) break;
        ChanVec<V> o;
#pragma unroll
        for (int v = 0; v < V; v++) o.v[v] = bc[v];
#pragma unroll
        for (int k = 0; k < K; k++) {
            if (t - (K - 1) + k >= 0)  // tap K-1 is the current token
#pragma unroll
                for (int v = 0; v < V; v++) o.v[v] += wk[k][v] * xr[j + k].v[v];
        }
#pragma unroll
        for (int v = 0; v < V; v++) o.v[v] = o.v[v] * sigm(o.v[v]);
        chan_store<V>(ob + (size_t)t * E, o);
    }
}

// ---- scan_forward (mamba.c scan_forward_block, plus the softplus of mamba_forward) ------------------
// Thread (b, c): delta = softplus(dtp + b_dt); h_t = exp(delta A) h_{t-1} + delta B_t x; y = C_t.h + D x;
// g = y silu(z). Saves h at the end of every chunk but the last into hs.
template <int NM>
__global__ void __launch_bounds__(SCAN_BX) scan_forward_kernel(float *__restrict__ y, float *__restrict__ g,
        float *__restrict__ hs, const float *__restrict__ xs, const float *__restrict__ xz,
        const float *__restrict__ xdbl, const float *__restrict__ dtp, const float *__restrict__ bdt,
        const float *__restrict__ A_log, const float *__restrict__ Dp, int T, int E, int N, int R, int P) {
    const int c = blockIdx.x * SCAN_BX + threadIdx.x, b = blockIdx.y;
    if (c >= E) return;
    const int nch = (T + SCAN_TC - 1) / SCAN_TC;
    float A[NM], h[NM];
#pragma unroll
    for (int n = 0; n < NM; n++) { A[n] = n < N ? -expf(A_log[(size_t)c * N + n]) : 0.f; h[n] = 0.f; }
    const float bc = bdt[c], dc = Dp[c];
    // The next token's per-channel inputs are loaded before this token's update: one memory latency
    // per token would otherwise serialise the walk.
    size_t m0 = (size_t)b * T;
    float pdt = dtp[m0 * E + c], px = xs[m0 * E + c], pz = xz[m0 * 2 * E + E + c];
    for (int t = 0; t < T; t++) {
        const size_t m = (size_t)b * T + t;
        const float dl = softplus_d(pdt + bc), xv = px, zv = pz, dx = dl * xv;
        if (t + 1 < T) { pdt = dtp[(m + 1) * E + c]; px = xs[(m + 1) * E + c]; pz = xz[(m + 1) * 2 * E + E + c]; }
        const float *Bt = xdbl + m * P + R, *Ct = Bt + N;
        float acc = 0.f;
#pragma unroll
        for (int n = 0; n < NM; n++)
            if (n < N) {
                h[n] = __expf(dl * A[n]) * h[n] + dx * Bt[n];
                acc += Ct[n] * h[n];
            }
        const float yv = acc + dc * xv;
        y[m * E + c] = yv;
        g[m * E + c] = yv * zv * sigm(zv);
        if ((t + 1) % SCAN_TC == 0 && t + 1 < T) {
            float *hp = hs + (((size_t)b * nch + t / SCAN_TC) * N) * E + c;
#pragma unroll
            for (int n = 0; n < NM; n++)
                if (n < N) hp[(size_t)n * E] = h[n];
        }
    }
}

// Warp transpose-sum of V values per lane (V a power of two): afterwards lane l holds the sum over the
// 32 lanes of value (l mod V) in its v[0] (for V <= 32), or value 32 r + l in v[r] (V > 32). Each
// level halves the values a lane carries: a fixed butterfly order, the same bits every run.
template <int V>
__device__ __forceinline__ void warp_transpose_sum(float *v, int lane) {
    if constexpr (V > 32) {
#pragma unroll
        for (int r = 0; r < V / 32; r++) {
            float u[32];
#pragma unroll
            for (int i = 0; i < 32; i++) u[i] = v[32 * r + i];
            warp_transpose_sum<32>(u, lane);
            v[r] = u[0];
        }
    } else {
#pragma unroll
        for (int off = 16; off >= V; off >>= 1)  // levels above V: plain butterfly sums
#pragma unroll
            for (int i = 0; i < V; i++) v[i] += __shfl_xor_sync(0xffffffffu, v[i], off);
#pragma unroll
        for (int half = V / 2; half >= 1; half >>= 1) {
            const bool up = (lane & half) != 0;  // this lane keeps the upper half of its values
#pragma unroll
            for (int i = 0; i < half; i++) {
                float send = up ? v[i] : v[i + half], keep = up ? v[i + half] : v[i];
                v[i] = keep + __shfl_xor_sync(0xffffffffu, send, half);
            }
        }
    }
}

// ---- scan_backward (mamba.c scan_backward_block, fused with the gate backward of mamba_backward and
// the softplus derivative) --------------------------------------------------------------------------
// In: dg (d of g). Out: dz into dxz[:, E:]; ddt = d dt_pre; dxs = d xs through the scan (the x_proj
// GEMM adds the rest); per-warp partials of dB, dC per token; per-sequence partials of dA, dD, d b_dt.
// Threads with c >= E take part in the warp sums with zeros.
template <int NM>
__global__ void __launch_bounds__(SCAN_BX) scan_backward_kernel(float *__restrict__ dxz, float *__restrict__ ddt,
        float *__restrict__ dxs, float *__restrict__ dbc_part, float *__restrict__ dA_part,
        float *__restrict__ dD_part, float *__restrict__ dbdt_part, const float *__restrict__ dg,
        const float *__restrict__ y, const float *__restrict__ hs, const float *__restrict__ xs,
        const float *__restrict__ xz, const float *__restrict__ xdbl, const float *__restrict__ dtp,
        const float *__restrict__ bdt, const float *__restrict__ A_log, const float *__restrict__ Dp, int T,
        int E, int N, int R, int P, int nw) {
    const int c = blockIdx.x * SCAN_BX + threadIdx.x, b = blockIdx.y, lane = threadIdx.x & 31;
    const int w = c >> 5;  // warp index across E
    if ((c & ~31) >= E) return;  // a wholly idle warp (its dB/dC partial slot does not exist)
    const bool ok = c < E;
    const int cc = ok ? c : E - 1;  // idle lanes read valid memory, contribute zeros
    const int nch = (T + SCAN_TC - 1) / SCAN_TC;
    float A[NM], gh[NM], dA[NM];
#pragma unroll
    for (int n = 0; n < NM; n++) {
        A[n] = n < N ? -expf(A_log[(size_t)cc * N + n]) : 0.f;
        gh[n] = 0.f;
        dA[n] = 0.f;
    }
    const float bc = bdt[cc], dc = Dp[cc];
    float dDs = 0.f, dbs = 0.f;
    float H[(SCAN_TC + 1) * NM];  // h at the chunk's start (row 0) and after each of its tokens
    for (int k = nch - 1; k >= 0; k--) {
        const int t0 = k * SCAN_TC, t1 = min(T, t0 + SCAN_TC);
        if (k == 0) {
#pragma unroll
            for (int n = 0; n < NM; n++) H[n] = 0.f;
        } else {
            const float *hp = hs + (((size_t)b * nch + k - 1) * N) * E + cc;
#pragma unroll
            for (int n = 0; n < NM; n++) H[n] = n < N ? hp[(size_t)n * E] : 0.f;
        }
        const size_t mb = (size_t)b * T;
        float pdt = dtp[(mb + t0) * E + cc], px = xs[(mb + t0) * E + cc];  // prefetched, as in the forward
        for (int t = t0; t < t1; t++) {
            const size_t m = mb + t;
            const float dl = softplus_d(pdt + bc), dx = dl * px;
            if (t + 1 < t1) { pdt = dtp[(m + 1) * E + cc]; px = xs[(m + 1) * E + cc]; }
            const float *Bt = xdbl + m * P + R;
            const float *hp = H + (t - t0) * NM;
            float *ht = H + (t - t0 + 1) * NM;
#pragma unroll
            for (int n = 0; n < NM; n++) ht[n] = n < N ? __expf(dl * A[n]) * hp[n] + dx * Bt[n] : 0.f;
        }
        size_t mq = mb + t1 - 1;
        pdt = dtp[mq * E + cc]; px = xs[mq * E + cc];
        float pz = xz[mq * 2 * E + E + cc], pg = dg[mq * E + cc], py = y[mq * E + cc];
        for (int t = t1 - 1; t >= t0; t--) {
            const size_t m = mb + t;
            const float dl = softplus_d(pdt + bc), xv = px, zv = pz, yv = py, dgv = ok ? pg : 0.f;
            if (t > t0) {
                const size_t q = m - 1;
                pdt = dtp[q * E + cc]; px = xs[q * E + cc]; pz = xz[q * 2 * E + E + cc]; pg = dg[q * E + cc];
                py = y[q * E + cc];
            }
            const float s = sigm(zv), dy = dgv * zv * s;  // g = y silu(z)
            if (ok) dxz[m * 2 * E + E + c] = dgv * yv * s * (1.f + zv * (1.f - s));
            const float *Bt = xdbl + m * P + R, *Ct = Bt + N;
            const float *hp = H + (t - t0) * NM, *ht = hp + NM;
            float ddl = 0.f, dxv = dy * dc;
            dDs += dy * xv;
            float v[2 * NM];  // this channel's terms of dB_t[n] (v[n]) and dC_t[n] (v[NM + n])
#pragma unroll
            for (int n = 0; n < NM; n++) {
                if (n < N) {
                    const float bn = Bt[n], da = __expf(dl * A[n]);
                    gh[n] += dy * Ct[n];                 // dL/dh_t
                    v[NM + n] = dy * ht[n];
                    const float q = gh[n] * hp[n] * da;  // dL/d(delta a) through the decay
                    ddl += q * A[n] + gh[n] * bn * xv;
                    dA[n] += q * dl;
                    dxv += gh[n] * dl * bn;
                    v[n] = gh[n] * dl * xv;
                    gh[n] *= da;
                } else {
                    v[n] = v[NM + n] = 0.f;
                }
            }
            const float dd = ddl * -expm1f(-dl);  // softplus' = sigmoid(dt_pre) = -expm1(-delta)
            if (ok) {
                ddt[m * E + c] = dd;
                dxs[m * E + c] = dxv;
            } else {
#pragma unroll
                for (int j = 0; j < 2 * NM; j++) v[j] = 0.f;
            }
            dbs += ok ? dd : 0.f;
            warp_transpose_sum<2 * NM>(v, lane);
            float *part = dbc_part + (m * nw + w) * 2 * N;
            if (2 * NM <= 32) {
                const int j = lane;  // value index j = lane (lanes >= 2 NM hold copies)
                if (j < 2 * NM) {
                    if (j < NM) { if (j < N) part[j] = v[0]; }
                    else if (j - NM < N) part[N + j - NM] = v[0];
                }
            } else {
#pragma unroll
                for (int r = 0; r < (2 * NM + 31) / 32; r++) {
                    const int j = 32 * r + lane;
                    if (j < NM) { if (j < N) part[j] = v[r]; }
                    else if (j - NM < N) part[N + j - NM] = v[r];
                }
            }
        }
    }
    if (!ok) return;
#pragma unroll
    for (int n = 0; n < NM; n++)
        if (n < N) dA_part[((size_t)b * N + n) * E + c] = dA[n];
    dD_part[(size_t)b * E + c] = dDs;
    dbdt_part[(size_t)b * E + c] = dbs;
}

// ==== the lane-parallel scan (default; RB_MAMBA_SCAN=serial selects the one-thread-per-channel kernels
// above) =================================================================================================
// NM lanes per channel, one state n per lane, so h, dL/dh and the per-state constants live in registers.
// A block owns one sequence and CG = SC_BLK / NM channels (the backward: SC_CPT such groups, one after
// the other, so that dB/dC are summed over SC_CPT CG channels before they leave the block). It walks the
// sequence in SC_TC-token chunks: the chunk's per-(t, c) inputs (delta, x, dy) and per-t B, C are staged
// in shared memory with coalesced loads; the sums over n (y, and d delta / d x in the backward) are
// group transpose-sums over the NM lanes, G tokens at a time; the sums over channels (dB, dC) are
// shuffles over the channels of a warp, then over warps in index order. Padding tokens (t >= T),
// channels (c >= E) and states (n >= N) carry delta = x = B = C = dy = 0: an identity step that adds
// nothing, so the loops have no bounds tests. The recurrences are those of the serial kernels, the sums
// are in a different (fixed) order: the same bits every run.
#define SC_TC 16   // tokens per chunk; the forward saves h at chunk ends, the backward recomputes inside
#define SC_BLK 256 // threads per block
#define SC_CPT 2   // channel groups per backward block (1 at NM 2, where 2 would pass the 48 KB of static smem)
__host__ __device__ constexpr int sc_cpt(int nm) { return nm == 2 ? 1 : SC_CPT; }
#define LOG2E_F 1.4426950408889634f
// Blocks per SM that the forward lanes kernel's __launch_bounds__ asks for, so the register limit per
// thread (5: 48, 4: 64). Chosen from ptxas -v (sm_90, CUDA 13.0) with the prefetch of the next chunk's
// staging (see the kernel): the blocks per SM of the kernel before the prefetch (62, 48 with 16 B spilled,
// 60, 61, 48 registers at NM 2 .. 32), spill-free with everything prefetched but B, C at NM 32 (which
// spill at 48 registers); without a minimum ptxas picked counts that spilled (fwd<8>: 48 registers).
// The backward lanes kernel has no prefetch: with it no NM fitted its 64 registers (4 blocks per SM; 80
// at NM 16, 128 at NM 2, 4, 8), one or two blocks per SM fewer for a few percent of hidden latency.
// (Register counts with the float2 packing below, ptxas -v, CUDA 13: forward unchanged; backward 64 at
// NM 2-16 under sc_bwd_blocks, 12 B spilled at NM 8, 128 at NM 32.)
__host__ __device__ constexpr int sc_fwd_blocks(int nm) { return nm == 4 || nm == 32 ? 5 : 4; }
// sc_pack: the lanes kernels keep (delta, x) and (B, C) of a chunk in float2 pairs, so that the token loops,
// which are bound by shared-memory and shuffle instructions (not by arithmetic), read each pair with one
// 64-bit load; the values and the arithmetic are those of separate arrays, so the bits are too.
// The backward's dB|dC partials get one slice per channel group (PR = CPT) where the static shared memory
// allows (48 KB), which saves the read-modify-write of one shared slice by the groups after the first;
// the final sum adds the slices in group order, as the one slice did: the same bits.
__host__ __device__ constexpr size_t sc_bwd_smem(int nm, int pr) {
    return sizeof(float) * ((size_t)SC_TC * (SC_BLK / nm) * sc_cpt(nm) * 5 + (size_t)SC_TC * nm * 2 +
                            (size_t)(SC_BLK / 32) * pr * SC_TC * 2 * nm + 2 * SC_BLK);
}
__host__ __device__ constexpr int sc_bwd_part_slices(int nm) {
    return sc_bwd_smem(nm, sc_cpt(nm)) <= 48 * 1024 ? sc_cpt(nm) : 1;
}
// Blocks per SM that the backward lanes kernel's __launch_bounds__ asks for (4: 64 registers, as ptxas chose
// before the packing; with the packing and no minimum it took 72-75 at NM 4 and 8, one block per SM fewer,
// or spilled 4 B at NM 16). NM 32 keeps its 128 registers (2 blocks).
__host__ __device__ constexpr int sc_bwd_blocks(int nm) { return nm == 32 ? 2 : 4; }

__device__ __forceinline__ float ex2f(float v) {
    float r;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(v));
    return r;
}

// Transpose-sum of V values per lane over aligned groups of NM lanes (V <= NM, powers of two):
// afterwards the lane with (lane mod V) == j holds, in v[0], the sum over its group of value j.
// Offsets >= V are plain butterflies; below, each level halves the values a lane carries.
// (Levels are template recursions so that every index is a compile-time constant: with loops over
// `half`, nvcc kept v in local memory.)
template <int HALF>
__device__ __forceinline__ void transpose_levels(float *v, int lane) {
    if constexpr (HALF >= 1) {
        const bool up = (lane & HALF) != 0;  // this lane keeps the upper half of its values
#pragma unroll
        for (int i = 0; i < HALF; i++) {
            const float lo = v[i], hi = v[i + HALF];
            v[i] = (up ? hi : lo) + __shfl_xor_sync(0xffffffffu, up ? lo : hi, HALF);
        }
        transpose_levels<HALF / 2>(v, lane);
    }
}
template <int OFF, int V>
__device__ __forceinline__ void butterfly_levels(float *v) {
    if constexpr (OFF >= V) {
#pragma unroll
        for (int i = 0; i < V; i++) v[i] += __shfl_xor_sync(0xffffffffu, v[i], OFF);
        butterfly_levels<OFF / 2, V>(v);
    }
}
template <int V, int NM>
__device__ __forceinline__ void group_transpose_sum(float *v, int lane) {
    butterfly_levels<NM / 2, V>(v);
    transpose_levels<V / 2>(v, lane);
}

// One (token row m, channel ch) of a chunk's staging in the lane-parallel kernels: delta = softplus(dtp +
// b_dt) and x. stage_math is its arithmetic on the loaded values dtv = dtp[m, ch], bv = b_dt[ch], x =
// xs[m, ch] (the lanes kernels load them a chunk ahead, see scan_fwd_lanes_kernel).
__device__ __forceinline__ void stage_math(float &dl, float &xv, float dtv, float bv, float x) {
    dl = softplus_d(dtv + bv);
    xv = x;
}
__device__ __forceinline__ void stage_elem(float &dl, float &xv, size_t m, int ch, int E, const float *__restrict__ dtp,
                                           const float *__restrict__ bdt, const float *__restrict__ xs) {
    stage_math(dl, xv, dtp[m * E + ch], bdt[ch], xs[m * E + ch]);
}

// The same in the backward kernels, with dy = dL/dy through g = y silu(z) (zv = z, dgv = dg, yv = y at
// (m, ch)); writes dL/dz to *dz (dxz's z half) and adds dy x to the thread's dD sum.
__device__ __forceinline__ void bwd_stage_math(float &dl, float &xv, float &dy, float &dDs, float *__restrict__ dz,
                                               float dtv, float bv, float x, float zv, float dgv, float yv) {
    stage_math(dl, xv, dtv, bv, x);
    const float s = sigm(zv);  // g = y silu(z)
    dy = dgv * zv * s;
    *dz = dgv * yv * s * (1.f + zv * (1.f - s));
    dDs += dy * xv;
}
__device__ __forceinline__ void bwd_stage_elem(float &dl, float &xv, float &dy, float &dDs, size_t m, int ch, int E,
                                               const float *__restrict__ dtp, const float *__restrict__ bdt,
                                               const float *__restrict__ xs, const float *__restrict__ xz,
                                               const float *__restrict__ dg, const float *__restrict__ y,
                                               float *__restrict__ dxz) {
    bwd_stage_math(dl, xv, dy, dDs, dxz + m * 2 * E + E + ch, dtp[m * E + ch], bdt[ch], xs[m * E + ch],
                   xz[m * 2 * E + E + ch], dg[m * E + ch], y[m * E + ch]);
}

// scan_forward (mamba.c scan_forward_block + the softplus of mamba_forward), lane-parallel form.
// hs: [B, nch, E, N], h at the end of every chunk but the last. The staging is prefetched (as in
// gsa_scan_kernel's fetch): a thread's staging elements of the next chunk (i = tid + r SC_BLK: NX of
// (token, channel), all in its channel sch, and NB of (token, state) of B, C) are loaded into registers
// while this chunk computes, and stored into the shared arrays after the next barrier (the loads after
// that barrier were the scan's exposed latency, once per chunk). Same values, same arithmetic.
template <int NM>
__global__ void __launch_bounds__(SC_BLK, sc_fwd_blocks(NM)) scan_fwd_lanes_kernel(float *__restrict__ y,
        float *__restrict__ g, float *__restrict__ hs, const float *__restrict__ xs, const float *__restrict__ xz,
        const float *__restrict__ xdbl, const float *__restrict__ dtp, const float *__restrict__ bdt,
        const float *__restrict__ A_log, const float *__restrict__ Dp, int T, int E, int N, int R, int P) {
    constexpr int CG = SC_BLK / NM, G = NM < 16 ? NM : 16;
    constexpr int NX = (SC_TC * CG + SC_BLK - 1) / SC_BLK, NB = (SC_TC * NM + SC_BLK - 1) / SC_BLK;
    constexpr bool PF_BC = NM != 32;  // B, C prefetched too (see sc_fwd_blocks)
    static_assert(SC_BLK % CG == 0 && SC_BLK % NM == 0, "a thread's staging elements stay in one channel");
    // (delta, x) and (B, C) in pairs: the token loop reads each pair with one 64-bit load (sc_pack)
    __shared__ float2 s_dx[SC_TC][CG], s_BC[SC_TC][NM];
    __shared__ float s_y[SC_TC][CG];
    const int tid = threadIdx.x, lane = tid & 31, n = tid % NM, cl = tid / NM;
    const int c0 = blockIdx.x * CG, b = blockIdx.y, c = c0 + cl, sch = c0 + tid % CG;
    const bool own = c < E && n < N;
    const float A2 = own ? -expf(A_log[(size_t)c * N + n]) * LOG2E_F : 0.f;  // exp(delta A) = 2^(delta A2)
    const float sbdt = sch < E ? bdt[sch] : 0.f;  // b_dt of the staging channel
    const int nch = (T + SC_TC - 1) / SC_TC;
    const size_t mb = (size_t)b * T;
    // The prefetch registers: dtp, xs of the (delta, x) elements; B, C (zero where t >= T or nn >= N).
    float pdt[NX], px[NX], pB[NB], pC[NB];
    auto fetch_x = [&](int k) {
        const int t0 = k * SC_TC;
#pragma unroll
        for (int r = 0; r < NX; r++) {
            const int i = tid + r * SC_BLK, t = t0 + i / CG;
            pdt[r] = px[r] = 0.f;
            if (i < SC_TC * CG && t < T && sch < E) {
                pdt[r] = dtp[(mb + t) * E + sch];
                px[r] = xs[(mb + t) * E + sch];
            }
        }
    };
    auto fetch_bc = [&](int k) {
        const int t0 = k * SC_TC;
#pragma unroll
        for (int r = 0; r < NB; r++) {
            const int i = tid + r * SC_BLK, nn = i % NM, t = t0 + i / NM;
            pB[r] = pC[r] = 0.f;
            if (i < SC_TC * NM && t < T && nn < N) {
                const float *row = xdbl + (mb + t) * P + R;
                pB[r] = row[nn];
                pC[r] = row[N + nn];
            }
        }
    };
    if (nch > 0) fetch_x(0);
    if (nch > 0 && PF_BC) fetch_bc(0);
    float h = 0.f;
    for (int k = 0; k < nch; k++) {
        const int t0 = k * SC_TC;
        __syncthreads();  // the previous chunk's write-out has read s_x, s_y
        if (!PF_BC) fetch_bc(k);  // (NM 32) loaded after the barrier, as before
#pragma unroll
        for (int r = 0; r < NX; r++) {
            const int i = tid + r * SC_BLK;
            if (i < SC_TC * CG) {
                const int j = i / CG, cc = i % CG, t = t0 + j, ch = c0 + cc;
                float dl = 0.f, xv = 0.f;
                if (t < T && ch < E) stage_math(dl, xv, pdt[r], sbdt, px[r]);
                s_dx[j][cc] = make_float2(dl, xv);
            }
        }
#pragma unroll
        for (int r = 0; r < NB; r++) {
            const int i = tid + r * SC_BLK;
            if (i < SC_TC * NM) s_BC[i / NM][i % NM] = make_float2(pB[r], pC[r]);
        }
        if (k + 1 < nch) fetch_x(k + 1);  // in flight while this chunk computes
        if (k + 1 < nch && PF_BC) fetch_bc(k + 1);
        __syncthreads();
#pragma unroll
        for (int g0 = 0; g0 < SC_TC; g0 += G) {
            float v[G];
#pragma unroll
            for (int jj = 0; jj < G; jj++) {
                const int j = g0 + jj;
                const float2 q = s_dx[j][cl], bc = s_BC[j][n];  // (delta, x), (B, C)
                h = ex2f(q.x * A2) * h + q.x * q.y * bc.x;
                v[jj] = bc.y * h;
            }
            group_transpose_sum<G, NM>(v, lane);
            if (n < G) s_y[g0 + n][cl] = v[0];  // C_t . h_t of token g0 + n
        }
        if (k + 1 < nch && own) hs[(((size_t)b * nch + k) * E + c) * N + n] = h;
        __syncthreads();
        for (int i = tid; i < SC_TC * CG; i += SC_BLK) {
            const int j = i / CG, cc = i % CG, t = t0 + j, ch = c0 + cc;
            if (t < T && ch < E) {
                const size_t m = mb + t;
                const float yv = s_y[j][cc] + Dp[ch] * s_dx[j][cc].y, zv = xz[m * 2 * E + E + ch];
                y[m * E + ch] = yv;
                g[m * E + ch] = yv * zv * sigm(zv);
            }
        }
    }
}

// scan_backward (mamba.c scan_backward_block, fused with the gate backward of mamba_backward and the
// softplus derivative), lane-parallel form. Outputs as scan_backward_kernel; dbc_part is
// [M, gridDim.x, 2N]: per block (SC_CPT * CG channels) sums of dB | dC.
template <int NM>
__global__ void __launch_bounds__(SC_BLK, sc_bwd_blocks(NM)) scan_bwd_lanes_kernel(float *__restrict__ dxz, float *__restrict__ ddt,
        float *__restrict__ dxs, float *__restrict__ dbc_part, float *__restrict__ dA_part,
        float *__restrict__ dD_part, float *__restrict__ dbdt_part, const float *__restrict__ dg,
        const float *__restrict__ y, const float *__restrict__ hs, const float *__restrict__ xs,
        const float *__restrict__ xz, const float *__restrict__ xdbl, const float *__restrict__ dtp,
        const float *__restrict__ bdt, const float *__restrict__ A_log, const float *__restrict__ Dp, int T,
        int E, int N, int R, int P) {
    constexpr int CPT = sc_cpt(NM), CG = SC_BLK / NM, CB = CG * CPT, G = NM < 16 ? NM : 16, NWARP = SC_BLK / 32;
    constexpr int PR = sc_bwd_part_slices(NM);
    static_assert(SC_BLK % CB == 0, "a thread's stage/finish elements must stay in one channel");
    // (delta, x) and (B, C) in pairs: the token loops read each pair with one 64-bit load (sc_pack)
    __shared__ float2 s_dx[SC_TC][CB], s_BC[SC_TC][NM];
    __shared__ float s_dy[SC_TC][CB], s_S1[SC_TC][CB], s_S2[SC_TC][CB];
    // per warp and channel group r (one slice for all r where PR is 1): sums over its channels of dB | dC terms
    __shared__ float s_part[NWARP][PR][SC_TC][2 * NM];
    __shared__ float s_red[2][SC_BLK];
    static_assert(sizeof s_dx + sizeof s_BC + sizeof s_dy + sizeof s_S1 + sizeof s_S2 + sizeof s_part + sizeof s_red ==
                      sc_bwd_smem(NM, PR), "sc_bwd_smem counts this kernel's shared arrays");
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, n = tid % NM, cl = tid / NM;
    const int c0 = blockIdx.x * CB, b = blockIdx.y, nbx = gridDim.x;
    float A[CPT], A2[CPT], gh[CPT], dA[CPT];
#pragma unroll
    for (int r = 0; r < CPT; r++) {
        const int c = c0 + r * CG + cl;
        A[r] = c < E && n < N ? -expf(A_log[(size_t)c * N + n]) : 0.f;
        A2[r] = A[r] * LOG2E_F;
        gh[r] = dA[r] = 0.f;
    }
    float dDs = 0.f, dbs = 0.f;  // over this thread's stage/finish elements: all in channel c0 + tid % CB
    const int nch = (T + SC_TC - 1) / SC_TC;
    const size_t mb = (size_t)b * T;
    for (int k = nch - 1; k >= 0; k--) {
        const int t0 = k * SC_TC;
        __syncthreads();  // the previous chunk's finish has read the shared arrays
        for (int i = tid; i < SC_TC * CB; i += SC_BLK) {
            const int j = i / CB, cc = i % CB, t = t0 + j, ch = c0 + cc;
            float dl = 0.f, xv = 0.f, dy = 0.f;
            if (t < T && ch < E) bwd_stage_elem(dl, xv, dy, dDs, mb + t, ch, E, dtp, bdt, xs, xz, dg, y, dxz);
            s_dx[j][cc] = make_float2(dl, xv);
            s_dy[j][cc] = dy;
        }
        for (int i = tid; i < SC_TC * NM; i += SC_BLK) {
            const int j = i / NM, nn = i % NM, t = t0 + j;
            float bv = 0.f, cv = 0.f;
            if (t < T && nn < N) {
                const float *row = xdbl + (mb + t) * P + R;
                bv = row[nn];
                cv = row[N + nn];
            }
            s_BC[j][nn] = make_float2(bv, cv);
        }
        __syncthreads();
#pragma unroll
        for (int r = 0; r < CPT; r++) {
            const int cr = r * CG + cl, c = c0 + cr;
            float H[SC_TC + 1], a[SC_TC];  // h at the chunk start and after each token; the decays
            H[0] = k > 0 && c < E && n < N ? hs[(((size_t)b * nch + k - 1) * E + c) * N + n] : 0.f;
#pragma unroll
            for (int j = 0; j < SC_TC; j++) {
                const float2 q = s_dx[j][cr];  // (delta, x)
                a[j] = ex2f(q.x * A2[r]);
                H[j + 1] = a[j] * H[j] + q.x * q.y * s_BC[j][n].x;
            }
#pragma unroll
            for (int g0 = SC_TC - G; g0 >= 0; g0 -= G) {
                float s1[G], s2[G];  // this state's terms of sum_n gh B (-> d x, d delta) and sum_n q A
#pragma unroll
                for (int jj = G - 1; jj >= 0; jj--) {
                    const int j = g0 + jj;
                    const float2 dx = s_dx[j][cr], bc = s_BC[j][n];  // (delta, x), (B, C)
                    const float dy = s_dy[j][cr], dl = dx.x, xv = dx.y, bn = bc.x;
                    const float ghv = gh[r] + dy * bc.y;  // dL/dh_t
                    float vC = dy * H[j + 1];
                    const float q = ghv * H[j] * a[j];         // dL/d(delta a) through the decay
                    s2[jj] = q * A[r];
                    s1[jj] = ghv * bn;
                    dA[r] += q * dl;
                    float vB = ghv * dl * xv;
                    gh[r] = ghv * a[j];
#pragma unroll
                    for (int off = NM; off < 32; off <<= 1) {  // over the warp's channels
                        vB += __shfl_xor_sync(0xffffffffu, vB, off);
                        vC += __shfl_xor_sync(0xffffffffu, vC, off);
                    }
                    if (lane < NM) {
                        float *sp = s_part[warp][PR > 1 ? r : 0][j];
                        if (PR > 1 || r == 0) { sp[n] = vB; sp[NM + n] = vC; }
                        else { sp[n] += vB; sp[NM + n] += vC; }
                    }
                }
                group_transpose_sum<G, NM>(s1, lane);
                group_transpose_sum<G, NM>(s2, lane);
                if (n < G) { s_S1[g0 + n][cr] = s1[0]; s_S2[g0 + n][cr] = s2[0]; }
            }
        }
        __syncthreads();
        for (int i = tid; i < SC_TC * CB; i += SC_BLK) {
            const int j = i / CB, cc = i % CB, t = t0 + j, ch = c0 + cc;
            if (t < T && ch < E) {
                const size_t m = mb + t;
                const float dl = s_dx[j][cc].x, xv = s_dx[j][cc].y, S1 = s_S1[j][cc];
                const float dd = (s_S2[j][cc] + S1 * xv) * -expm1f(-dl);  // softplus' = -expm1(-delta)
                ddt[m * E + ch] = dd;
                dxs[m * E + ch] = s_dy[j][cc] * Dp[ch] + dl * S1;
                dbs += dd;
            }
        }
        for (int i = tid; i < SC_TC * 2 * N; i += SC_BLK) {
            const int j = i / (2 * N), r2 = i % (2 * N), t = t0 + j;
            if (t < T) {
                const int col = r2 < N ? r2 : NM + r2 - N;
                float s = 0.f;
#pragma unroll
                for (int w = 0; w < NWARP; w++) {
                    float sw = s_part[w][0][j][col];  // the groups in order: the sum the one slice held
#pragma unroll
                    for (int r = 1; r < PR; r++) sw += s_part[w][r][j][col];
                    s += sw;
                }
                dbc_part[((mb + t) * nbx + blockIdx.x) * 2 * N + r2] = s;
            }
        }
    }
#pragma unroll
    for (int r = 0; r < CPT; r++) {
        const int c = c0 + r * CG + cl;
        if (c < E && n < N) dA_part[((size_t)b * N + n) * E + c] = dA[r];
    }
    s_red[0][tid] = dDs;
    s_red[1][tid] = dbs;
    __syncthreads();
    if (tid < CB && c0 + tid < E) {
        float sd = 0.f, sb = 0.f;
        for (int q = tid; q < SC_BLK; q += CB) { sd += s_red[0][q]; sb += s_red[1][q]; }
        dD_part[(size_t)b * E + c0 + tid] = sd;
        dbdt_part[(size_t)b * E + c0 + tid] = sb;
    }
}

// ==== the wide scan (lane-parallel form for d_state > 32: compiled NM = 64, 128, 256) =====================
// The lanes kernels above give a channel NM lanes, so for NM > 32 a channel would span warps, and their
// per-warp dB/dC partials (NWARP x SC_TC x 2 NM floats) would pass the shared memory. Here the roles are
// swapped: a block owns WD_CH = 32 channels of one sequence, one per lane, and its WD_WARPS = 8 warps
// split the states: warp w holds states w NS .. w NS + NS-1 (NS = NM / 8) of its lane's channel in
// registers. Then
// - the sums over channels (dB, dC of each token and state) stay inside a warp: per state, a warp
//   transpose-sum of the chunk's 2 SC_TC = 32 values (dB | dC terms of its 16 tokens) over the 32 lanes;
// - the sums over states (y = C.h; in the backward sum_n gh B and sum_n q A) are per-lane partials over
//   the lane's NS states in order, then over the 8 warps in index order through shared memory.
// Chunks of SC_TC tokens as in the lanes kernels (same hs chunking, but hs is [B, nch, N, E] here so
// that a warp's 32 channels are one coalesced row); padding tokens, channels and states carry zeros as
// there. Dynamic shared memory (wide_fwd_smem / wide_bwd_smem bytes, set in create()): at NM 256 the
// forward needs 53 KB, the backward 200 KB (of the 227 KB a block may have). Every sum has a fixed
// order: the same bits every run. Measured nowhere yet (written without a device): speed unknown.
#define WD_CH 32    // channels per block: one per lane
#define WD_WARPS 8  // warps per block (SC_BLK / 32): each owns NM / 8 states of all WD_CH channels
#define LN2_F 0.6931471805599453f
static_assert(WD_WARPS * 32 == SC_BLK, "a wide block is WD_WARPS full warps");
static_assert(2 * SC_TC == 32, "the backward's dB|dC transpose-sum packs 2 SC_TC values into one warp");

// Dynamic shared memory of the wide kernels, bytes (layouts in the kernels).
__host__ __device__ constexpr size_t wide_fwd_smem(int nm) {
    return sizeof(float) * (2 * SC_TC * WD_CH + 2 * SC_TC * (size_t)nm + WD_WARPS * SC_TC * WD_CH);
}
__host__ __device__ constexpr size_t wide_bwd_smem(int nm) {
    return sizeof(float) * (3 * SC_TC * WD_CH + 2 * SC_TC * (size_t)nm + 2 * WD_WARPS * SC_TC * WD_CH +
                            2 * SC_TC * ((size_t)nm + 1) + 2 * SC_BLK + 3 * (size_t)nm * WD_CH);
}
// Blocks per SM that the backward's shared memory allows (an H200 SM has 228 KB, 1 KB reserved per
// block): its register limit follows (2 blocks: 128 registers; spill-free at NM 64, not above).
__host__ __device__ constexpr int wide_bwd_blocks(int nm) {
    return 2 * (wide_bwd_smem(nm) + 1024) <= 228 * 1024 ? 2 : 1;
}
extern __shared__ float4 wd_smem[];  // float4: 16-byte alignment for the vector loads of B, C

// The chunk's B and C rows (tokens t0 .. t0 + SC_TC - 1, states padded to NM with zeros) into shared
// memory, [SC_TC][NM] each: the staging both wide kernels share.
template <int NM>
__device__ __forceinline__ void wide_stage_bc(float *s_B, float *s_C, const float *__restrict__ xdbl, size_t mb, int t0,
                                              int T, int N, int R, int P, int tid) {
    for (int i = tid; i < SC_TC * NM; i += SC_BLK) {
        const int j = i / NM, nn = i % NM, t = t0 + j;
        float bv = 0.f, cv = 0.f;
        if (t < T && nn < N) {
            const float *row = xdbl + (mb + t) * P + R;
            bv = row[nn];
            cv = row[N + nn];
        }
        s_B[i] = bv;
        s_C[i] = cv;
    }
}

// scan_forward (mamba.c scan_forward_block + the softplus of mamba_forward), wide form. Shared memory:
// s_dl, s_x [SC_TC][WD_CH]; s_B, s_C [SC_TC][NM]; s_y [WD_WARPS][SC_TC][WD_CH] (per-warp C.h partials).
// Two blocks per SM (<= 128 registers): spill-free at NM 256 (124 registers), <= 53 KB of shared memory.
template <int NM>
__global__ void __launch_bounds__(SC_BLK, 2) scan_fwd_wide_kernel(float *__restrict__ y, float *__restrict__ g,
        float *__restrict__ hs, const float *__restrict__ xs, const float *__restrict__ xz,
        const float *__restrict__ xdbl, const float *__restrict__ dtp, const float *__restrict__ bdt,
        const float *__restrict__ A_log, const float *__restrict__ Dp, int T, int E, int N, int R, int P) {
    constexpr int NS = NM / WD_WARPS;  // states per lane
    static_assert(NS % 4 == 0 && NS * WD_WARPS == NM, "a lane's states are whole float4s");
    float *s_dl = (float *)wd_smem, *s_x = s_dl + SC_TC * WD_CH, *s_B = s_x + SC_TC * WD_CH,
          *s_C = s_B + SC_TC * NM, *s_y = s_C + SC_TC * NM;
    const int tid = threadIdx.x, lane = tid & 31, w = tid >> 5, n0 = w * NS;
    const int c0 = blockIdx.x * WD_CH, b = blockIdx.y, c = c0 + lane;
    const bool okc = c < E;
    float A2[NS], h[NS];  // exp(delta A) = 2^(delta A2)
#pragma unroll
    for (int i = 0; i < NS; i++) {
        A2[i] = okc && n0 + i < N ? -expf(A_log[(size_t)c * N + n0 + i]) * LOG2E_F : 0.f;
        h[i] = 0.f;
    }
    const int nch = (T + SC_TC - 1) / SC_TC;
    const size_t mb = (size_t)b * T;
    for (int k = 0; k < nch; k++) {
        const int t0 = k * SC_TC;
        __syncthreads();  // the previous chunk's write-out has read s_x, s_y
        for (int i = tid; i < SC_TC * WD_CH; i += SC_BLK) {
            const int j = i / WD_CH, cc = i % WD_CH, t = t0 + j, ch = c0 + cc;
            float dl = 0.f, xv = 0.f;
            if (t < T && ch < E) stage_elem(dl, xv, mb + t, ch, E, dtp, bdt, xs);
            s_dl[i] = dl;
            s_x[i] = xv;
        }
        wide_stage_bc<NM>(s_B, s_C, xdbl, mb, t0, T, N, R, P, tid);
        __syncthreads();
#pragma unroll
        for (int j = 0; j < SC_TC; j++) {
            const float dl = s_dl[j * WD_CH + lane], dx = dl * s_x[j * WD_CH + lane];
            const float4 *B4 = (const float4 *)(s_B + j * NM + n0), *C4 = (const float4 *)(s_C + j * NM + n0);
            float acc = 0.f;
#pragma unroll
            for (int q = 0; q < NS / 4; q++) {
                const float4 bq = B4[q], cq = C4[q];
                const float bv[4] = {bq.x, bq.y, bq.z, bq.w}, cv[4] = {cq.x, cq.y, cq.z, cq.w};
#pragma unroll
                for (int u = 0; u < 4; u++) {
                    const int i = 4 * q + u;
                    h[i] = ex2f(dl * A2[i]) * h[i] + dx * bv[u];
                    acc += cv[u] * h[i];
                }
            }
            s_y[(w * SC_TC + j) * WD_CH + lane] = acc;
        }
        if (k + 1 < nch && okc) {
#pragma unroll
            for (int i = 0; i < NS; i++)
                if (n0 + i < N) hs[(((size_t)b * nch + k) * N + n0 + i) * E + c] = h[i];
        }
        __syncthreads();
        for (int i = tid; i < SC_TC * WD_CH; i += SC_BLK) {
            const int j = i / WD_CH, cc = i % WD_CH, t = t0 + j, ch = c0 + cc;
            if (t < T && ch < E) {
                const size_t m = mb + t;
                float s = 0.f;
#pragma unroll
                for (int ww = 0; ww < WD_WARPS; ww++) s += s_y[(ww * SC_TC + j) * WD_CH + cc];
                const float yv = s + Dp[ch] * s_x[i], zv = xz[m * 2 * E + E + ch];
                y[m * E + ch] = yv;
                g[m * E + ch] = yv * zv * sigm(zv);
            }
        }
    }
}

// scan_backward (mamba.c scan_backward_block, fused with the gate backward of mamba_backward and the
// softplus derivative), wide form. Outputs as scan_bwd_lanes_kernel; dbc_part is [M, gridDim.x, 2N]
// (per block of WD_CH channels). A lane walks its NS states one after the other through the chunk
// (h recomputed from the chunk start, then the reverse recurrence), so that only one state's chunk
// (H, a) is live at a time; its terms of sum_n gh B and sum_n q A accumulate over its states in S1, S2.
// The per-state constants and carries (A2, dL/dh, dA) live in shared memory, not registers: with them
// in registers and the state loop unrolled, NM 256 used 255 registers and spilled; this way they cost
// one load (and two stores) per state and chunk, against the 16 tokens of work in between.
// Shared memory: s_dl, s_x, s_dy [SC_TC][WD_CH]; s_B, s_C [SC_TC][NM]; s_S [2][WD_WARPS][SC_TC][WD_CH]
// (per-warp S1 | S2 partials); s_dbc [2 SC_TC][NM + 1] (rows: dB of tokens 0..15, then dC; the +1
// keeps the transposed writes on distinct banks); s_red [2][SC_BLK]; s_A2, s_gh, s_dA [NM][WD_CH].
template <int NM>
__global__ void __launch_bounds__(SC_BLK, wide_bwd_blocks(NM)) scan_bwd_wide_kernel(float *__restrict__ dxz,
        float *__restrict__ ddt, float *__restrict__ dxs, float *__restrict__ dbc_part, float *__restrict__ dA_part,
        float *__restrict__ dD_part, float *__restrict__ dbdt_part, const float *__restrict__ dg,
        const float *__restrict__ y, const float *__restrict__ hs, const float *__restrict__ xs,
        const float *__restrict__ xz, const float *__restrict__ xdbl, const float *__restrict__ dtp,
        const float *__restrict__ bdt, const float *__restrict__ A_log, const float *__restrict__ Dp, int T,
        int E, int N, int R, int P) {
    constexpr int NS = NM / WD_WARPS, TW = SC_TC * WD_CH;
    static_assert(NS * WD_WARPS == NM, "the warps split the states evenly");
    float *s_dl = (float *)wd_smem, *s_x = s_dl + TW, *s_dy = s_x + TW, *s_B = s_dy + TW, *s_C = s_B + SC_TC * NM,
          *s_S = s_C + SC_TC * NM, *s_dbc = s_S + 2 * WD_WARPS * TW, *s_red = s_dbc + 2 * SC_TC * (NM + 1),
          *s_A2 = s_red + 2 * SC_BLK, *s_gh = s_A2 + NM * WD_CH, *s_dA = s_gh + NM * WD_CH;
    const int tid = threadIdx.x, lane = tid & 31, w = tid >> 5, n0 = w * NS;
    const int c0 = blockIdx.x * WD_CH, b = blockIdx.y, c = c0 + lane, nbx = gridDim.x;
    const bool okc = c < E;
    // [n][lane] entries of state n of this lane's channel, touched only by this thread (no syncs needed).
    // s_gh: dL/dh carried backwards across chunks; exp(delta A) = 2^(delta A2).
    for (int i = 0; i < NS; i++) {
        const int n = n0 + i;
        s_A2[n * WD_CH + lane] = okc && n < N ? -expf(A_log[(size_t)c * N + n]) * LOG2E_F : 0.f;
        s_gh[n * WD_CH + lane] = s_dA[n * WD_CH + lane] = 0.f;
    }
    float dDs = 0.f, dbs = 0.f;  // over this thread's stage/finish elements: all in channel c0 + lane
    const int nch = (T + SC_TC - 1) / SC_TC;
    const size_t mb = (size_t)b * T;
    for (int k = nch - 1; k >= 0; k--) {
        const int t0 = k * SC_TC;
        __syncthreads();  // the previous chunk's finish has read the shared arrays
        for (int i = tid; i < TW; i += SC_BLK) {
            const int j = i / WD_CH, cc = i % WD_CH, t = t0 + j, ch = c0 + cc;
            float dl = 0.f, xv = 0.f, dy = 0.f;
            if (t < T && ch < E) bwd_stage_elem(dl, xv, dy, dDs, mb + t, ch, E, dtp, bdt, xs, xz, dg, y, dxz);
            s_dl[i] = dl;
            s_x[i] = xv;
            s_dy[i] = dy;
        }
        wide_stage_bc<NM>(s_B, s_C, xdbl, mb, t0, T, N, R, P, tid);
        __syncthreads();
        float S1[SC_TC], S2[SC_TC];  // this lane's sums over its states of gh B (-> d x, d delta) and q A2
#pragma unroll
        for (int j = 0; j < SC_TC; j++) S1[j] = S2[j] = 0.f;
        const float *hk = hs + (((size_t)b * nch + (k > 0 ? k - 1 : 0)) * N + n0) * E + c;  // read if k > 0
        float hnext = k > 0 && okc && n0 < N ? hk[0] : 0.f;  // the next state's chunk start, loaded ahead
#pragma unroll 1
        for (int i = 0; i < NS; i++) {
            const int n = n0 + i;
            const float A2 = s_A2[n * WD_CH + lane];
            float gh = s_gh[n * WD_CH + lane], dA = 0.f;
            float H[SC_TC + 1], a[SC_TC];  // h at the chunk start and after each token; the decays
            H[0] = hnext;
            if (i + 1 < NS) hnext = k > 0 && okc && n + 1 < N ? hk[(size_t)(i + 1) * E] : 0.f;
#pragma unroll
            for (int j = 0; j < SC_TC; j++) {
                const float dl = s_dl[j * WD_CH + lane];
                a[j] = ex2f(dl * A2);
                H[j + 1] = a[j] * H[j] + dl * s_x[j * WD_CH + lane] * s_B[j * NM + n];
            }
            float v[2 * SC_TC];  // this channel's terms of dB_t[n] (v[j]) and dC_t[n] (v[SC_TC + j])
#pragma unroll
            for (int j = SC_TC - 1; j >= 0; j--) {
                const float dy = s_dy[j * WD_CH + lane], dl = s_dl[j * WD_CH + lane], xv = s_x[j * WD_CH + lane];
                const float bn = s_B[j * NM + n], cn = s_C[j * NM + n];
                const float ghv = gh + dy * cn;  // dL/dh_t
                v[SC_TC + j] = dy * H[j + 1];
                const float q = ghv * H[j] * a[j];  // dL/d(delta a) through the decay
                S2[j] += q * A2;
                S1[j] += ghv * bn;
                dA += q * dl;
                v[j] = ghv * dl * xv;
                gh = ghv * a[j];
            }
            s_gh[n * WD_CH + lane] = gh;
            s_dA[n * WD_CH + lane] += dA;  // the chunk's sum over its tokens, added in chunk order
            group_transpose_sum<2 * SC_TC, 32>(v, lane);  // lane l: the sum over the 32 channels of v[l]
            s_dbc[lane * (NM + 1) + n] = v[0];
        }
#pragma unroll
        for (int j = 0; j < SC_TC; j++) {
            s_S[(w * SC_TC + j) * WD_CH + lane] = S1[j];
            s_S[((WD_WARPS + w) * SC_TC + j) * WD_CH + lane] = S2[j];
        }
        __syncthreads();
        for (int i = tid; i < TW; i += SC_BLK) {
            const int j = i / WD_CH, cc = i % WD_CH, t = t0 + j, ch = c0 + cc;
            if (t < T && ch < E) {
                const size_t m = mb + t;
                float S1s = 0.f, S2s = 0.f;
#pragma unroll
                for (int ww = 0; ww < WD_WARPS; ww++) {
                    S1s += s_S[(ww * SC_TC + j) * WD_CH + cc];
                    S2s += s_S[((WD_WARPS + ww) * SC_TC + j) * WD_CH + cc];
                }
                const float dl = s_dl[i], xv = s_x[i];
                // S2s is sum_n q A2 = sum_n q A / ln 2; softplus' = -expm1(-delta)
                const float dd = (S2s * LN2_F + S1s * xv) * -expm1f(-dl);
                ddt[m * E + ch] = dd;
                dxs[m * E + ch] = s_dy[i] * Dp[ch] + dl * S1s;
                dbs += dd;
            }
        }
        for (int i = tid; i < SC_TC * 2 * N; i += SC_BLK) {
            const int j = i / (2 * N), r2 = i % (2 * N), t = t0 + j;
            if (t < T) {
                const float v = r2 < N ? s_dbc[j * (NM + 1) + r2] : s_dbc[(SC_TC + j) * (NM + 1) + r2 - N];
                dbc_part[((mb + t) * nbx + blockIdx.x) * 2 * N + r2] = v;
            }
        }
    }
    if (okc) {
        for (int i = 0; i < NS; i++)
            if (n0 + i < N) dA_part[((size_t)b * N + n0 + i) * E + c] = s_dA[(n0 + i) * WD_CH + lane];
    }
    s_red[tid] = dDs;
    s_red[SC_BLK + tid] = dbs;
    __syncthreads();
    if (tid < WD_CH && c0 + tid < E) {
        float sd = 0.f, sb = 0.f;
        for (int q = tid; q < SC_BLK; q += WD_CH) { sd += s_red[q]; sb += s_red[SC_BLK + q]; }
        dD_part[(size_t)b * E + c0 + tid] = sd;
        dbdt_part[(size_t)b * E + c0 + tid] = sb;
    }
}

// dxdbl[m, R + j] = sum over the nw partials (in order) of dbc_part[m, w, j]: dB | dC of each token.
__global__ void dbc_reduce_kernel(float *dxdbl, const float *part, long long M, int nw, int N2, int R, int P) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= M * N2) return;
    long long m = i / N2;
    int j = (int)(i % N2);
    const float *p = part + m * nw * N2 + j;
    float s = 0.f;
    for (int w = 0; w < nw; w++) s += p[(size_t)w * N2];
    dxdbl[m * P + R + j] = s;
}

// ---- conv_backward (mamba.c conv_backward_blk with the silu derivative of mamba_backward) -------------
// Warp w of the block: the CONV_TC tokens t0 .. t0+CONV_TC-1 of sequence b (one of B T/CONV_TC E/V
// independent work items; one thread per (b, c) walking all T tokens had too few threads, each a long
// chain of dependent steps). Reverse walk from t0+CONV_TC+K-2 down to t0, one new x row and one dxs row
// per step: dxc_t = dxs_t silu'(o_t), o_t = conv_b + sum_k w_k x_{t-(K-1)+k} recomputed from xz;
// dxz[t, c] = sum_k w_k dxc_{t+K-1-k} (the x half of dxz; the z half is the scan's). The K-1 steps past
// the run's end only recompute dxc there (its successor run's tokens). dxz: the same operations in the
// same order as the one-thread-per-(b, c) form, so the same bits. Weight / bias gradient: each thread
// sums dxc x_{t-(K-1)+k} and dxc over its run (reverse token order), then the block adds its warps'
// sums in warp order into part [B, gridDim.y, K+1, E] (tap k at k, bias at K; a row per CONV_WARPS
// runs), which cuda_conv_wgrad_final (layers.cu, shared with BaseConv) sums over rows in a fixed
// order. No atomics: the same bits every run. Partials per block rather than per thread: 1/CONV_WARPS of the traffic and of the rows.
template <int V>
__global__ void __launch_bounds__(32 * CONV_WARPS) conv_backward_kernel(float *__restrict__ dxz,
        float *__restrict__ part, const float *__restrict__ dxs, const float *__restrict__ xz,
        const float *__restrict__ w, const float *__restrict__ bias, int T, int E) {
    const int lane = threadIdx.x & 31, wp = threadIdx.x >> 5, b = blockIdx.z;
    const int c = (blockIdx.x * 32 + lane) * V, t0 = (blockIdx.y * CONV_WARPS + wp) * CONV_TC;
    ChanVec<V> gw[K], gb;  // this thread's sums over its run
#pragma unroll
    for (int v = 0; v < V; v++) {
        gb.v[v] = 0.f;
#pragma unroll
        for (int k = 0; k < K; k++) gw[k].v[v] = 0.f;
    }
    if (c < E && t0 < T) {
        const float *xb = xz + (size_t)b * T * 2 * E + c, *gbase = dxs + (size_t)b * T * E + c;
        float *ob = dxz + (size_t)b * T * 2 * E + c;
        float wk[K][V], bc[V];
        conv_taps<V>(wk, bc, w, bias, c);
        // xin[k] = x at t - (K-1) + k during step t (zero outside the sequence); fut[j] = dxc at t + 1 + j
        // (zero past T). Before the first step (t = tfirst) xin[0 .. K-2] holds x at tfirst - (K-2) .. tfirst;
        // each step shifts the window up by one and loads x at t - (K-1) into xin[0].
        const int tfirst = t0 + CONV_TC + K - 2;
        ChanVec<V> xin[K], fut[K - 1];
#pragma unroll
        for (int k = 0; k < K - 1; k++) xin[k] = conv_row<V>(xb, tfirst - (K - 2) + k, T, 2 * E);
#pragma unroll
        for (int j = 0; j < K - 1; j++)
#pragma unroll
            for (int v = 0; v < V; v++) fut[j].v[v] = 0.f;
#pragma unroll
        for (int j = 0; j < CONV_TC + K - 1; j++) {
            const int t = tfirst - j;
#pragma unroll
            for (int k = K - 1; k > 0; k--) xin[k] = xin[k - 1];
            xin[0] = conv_row<V>(xb, t - (K - 1), T, 2 * E);
            // Past the sequence (the last run only) dxc is zero. The loads stay outside any branch, so
            // the compiler may issue later steps' loads early.
            const bool live = t < T;
            const ChanVec<V> dy = conv_row<V>(gbase, t, T, E);
            ChanVec<V> gx, d;
#pragma unroll
            for (int v = 0; v < V; v++) {
                float o = bc[v];
#pragma unroll
                for (int k = 0; k < K; k++) o += wk[k][v] * xin[k].v[v];
                const float s = sigm(o);
                gx.v[v] = live ? dy.v[v] * s * (1.f + o * (1.f - s)) : 0.f;
            }
            if (j >= K - 1 && live) {  // j >= K-1: t < t0 + CONV_TC, a token of this run
#pragma unroll
                for (int v = 0; v < V; v++) {
                    gb.v[v] += gx.v[v];
#pragma unroll
                    for (int k = 0; k < K; k++) gw[k].v[v] += gx.v[v] * xin[k].v[v];
                    // output t + K-1-k read x[t] through tap k: tap K-1 is dxc_t itself
                    float dd = wk[K - 1][v] * gx.v[v];
#pragma unroll
                    for (int k = K - 2; k >= 0; k--) dd += wk[k][v] * fut[K - 2 - k].v[v];
                    d.v[v] = dd;
                }
                chan_store<V>(ob + (size_t)t * 2 * E, d);
            }
#pragma unroll
            for (int i = K - 2; i > 0; i--) fut[i] = fut[i - 1];
            fut[0] = gx;
        }
    }
    // the block's warp sums, in warp order (inactive threads contribute zeros)
    __shared__ ChanVec<V> sh[CONV_WARPS][K + 1][32];
#pragma unroll
    for (int k = 0; k < K; k++) sh[wp][k][lane] = gw[k];
    sh[wp][K][lane] = gb;
    __syncthreads();
    const int nc = 32 * V;  // channels of the block
    float *prow = part + ((size_t)b * gridDim.y + blockIdx.y) * (K + 1) * E;
    for (int q = threadIdx.x; q < (K + 1) * nc; q += 32 * CONV_WARPS) {
        const int k = q / nc, r = q % nc, ch = blockIdx.x * nc + r;
        if (ch < E) {
            float s = 0.f;
            for (int i = 0; i < CONV_WARPS; i++) s += sh[i][k][r / V].v[r % V];
            prow[(size_t)k * E + ch] = s;
        }
    }
}

// Rows of conv_backward_kernel's part per sequence at length T.
static int conv_part_rows(int T) { return (T + CONV_TC * CONV_WARPS - 1) / (CONV_TC * CONV_WARPS); }

// Parameter gradients of the scan's per-sequence partials, summed over b in order (mamba.c's loops after
// scan_backward): thread (c, j), j < N: A_log (dA_log = dA * A, A = -exp(A_log)); N: D; N+1: b_dt.
// (The conv's: cuda_conv_wgrad_final.)
__global__ void param_reduce_kernel(float *dA_log, float *dDp, float *dbdt, const float *dA_part,
                                    const float *dD_part, const float *dbdt_part, const float *A_log, int B,
                                    int E, int N) {
    const int J = N + 2;
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= E * J) return;
    int c = i / J, j = i % J;
    float s = 0.f;
    if (j < N) {
        for (int b = 0; b < B; b++) s += dA_part[((size_t)b * N + j) * E + c];
        dA_log[(size_t)c * N + j] += s * -expf(A_log[(size_t)c * N + j]);
    } else {
        const float *p = j == N ? dD_part : dbdt_part;
        float *o = j == N ? dDp : dbdt;
        for (int b = 0; b < B; b++) s += p[(size_t)b * E + c];
        o[c] += s;
    }
}

// ---- step kernels (mamba.c mamba_step), thread (b, c); state [B, S]: conv buffer [E, K-1], h [E, N] ---
__global__ void conv_step_kernel(float *xs, float *state, const float *xz, const float *w, const float *bias,
                                 int B, int E, size_t S) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= B * E) return;
    int b = i / E, c = i % E;
    float *s = state + (size_t)b * S + (size_t)c * (K - 1);
    const float xv = xz[(size_t)b * 2 * E + c];
    float v = bias[c];
#pragma unroll
    for (int k = 0; k < K - 1; k++) v += w[c * K + k] * s[k];
    v += w[c * K + K - 1] * xv;
#pragma unroll
    for (int k = 0; k < K - 2; k++) s[k] = s[k + 1];
    s[K - 2] = xv;
    xs[i] = v * sigm(v);
}

__global__ void ssm_step_kernel(float *g, float *state, const float *xs, const float *xz, const float *xdbl,
                                const float *dtp, const float *bdt, const float *A_log, const float *Dp, int B,
                                int E, int N, int R, int P, size_t S, size_t hoff) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= B * E) return;
    int b = i / E, c = i % E;
    float *h = state + (size_t)b * S + hoff + (size_t)c * N;
    const float *Bt = xdbl + (size_t)b * P + R, *Ct = Bt + N;
    const float dl = softplus_d(dtp[i] + bdt[c]), xv = xs[i], dx = dl * xv;
    float acc = 0.f;
    for (int n = 0; n < N; n++) {
        float hn = __expf(dl * -expf(A_log[(size_t)c * N + n])) * h[n] + dx * Bt[n];
        h[n] = hn;
        acc += Ct[n] * hn;
    }
    const float yv = acc + Dp[c] * xv, zv = xz[(size_t)b * 2 * E + E + c];
    g[i] = yv * zv * sigm(zv);
}

// ---- interface ---------------------------------------------------------------------------------------
static int compiled_n(int N) {
    int nm = 1;
    while (nm < N) nm <<= 1;
    return nm < 2 ? 2 : nm;
}

// The wide kernels' dynamic shared memory passes the default 48 KB at large NM: raise each one's limit
// (once per create, outside any captured graph).
static void wide_set_smem(int nm) {
#define WSET(NM) do { \
        CHECK_CUDA(cudaFuncSetAttribute(scan_fwd_wide_kernel<NM>, cudaFuncAttributeMaxDynamicSharedMemorySize, \
                                        (int)wide_fwd_smem(NM))); \
        CHECK_CUDA(cudaFuncSetAttribute(scan_bwd_wide_kernel<NM>, cudaFuncAttributeMaxDynamicSharedMemorySize, \
                                        (int)wide_bwd_smem(NM))); \
    } while (0)
    switch (nm) {
    case 64: WSET(64); break;
    case 128: WSET(128); break;
    default: WSET(256); break;
    }
#undef WSET
}

static void mamba_cuda_destroy(void *vctx) {
    MambaCudaCtx *x = (MambaCudaCtx *)vctx;
    if (!x) return;
    float *bufs[] = {x->xz, x->xs, x->xdbl, x->dtp, x->y, x->g, x->hs, x->dg, x->dxz, x->dxs, x->ddt,
                     x->dxdbl, x->dbc_part, x->dA_part, x->dD_part, x->dbdt_part, x->dconv_part, x->sxz};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) rb_cuda_free(bufs[i]);
    free(x);
}

static void *mamba_cuda_create(const MixerCfg *c, int Bmax, int Tmax) {
    // RB_MAMBA_SCAN=serial: the one-thread-per-channel scan kernels (kept for comparison on the device)
    const char *sv = getenv("RB_MAMBA_SCAN");
    const int lanes = !(sv && !strcmp(sv, "serial")), nmax = lanes ? NMAX_DEV : NMAX_SERIAL;
    if (c->state_dim < 1 || c->state_dim > nmax) {
        fprintf(stderr, "recallbench: mamba on cuda: --state-dim %d: the device scan%s supports 1 .. %d\n",
                c->state_dim, lanes ? "" : " (RB_MAMBA_SCAN=serial)", nmax);
        return NULL;
    }
    MambaCudaCtx *x = (MambaCudaCtx *)calloc(1, sizeof *x);
    if (!x) return NULL;
    x->D = c->d; x->E = mamba_d_inner(c); x->N = c->state_dim; x->R = mamba_dt_rank(c);
    x->P = x->R + 2 * x->N; x->NM = compiled_n(x->N);
    x->Bmax = Bmax; x->Tmax = Tmax;
    x->lanes = lanes;
    x->nw = !lanes ? cdiv(x->E, 32) : x->NM > 32 ? cdiv(x->E, WD_CH) : cdiv(x->E, SC_BLK / x->NM * sc_cpt(x->NM));
    if (lanes && x->NM > 32) wide_set_smem(x->NM);
    size_t M = (size_t)Bmax * Tmax, E = x->E, N = x->N, P = x->P;
    size_t nch = (size_t)(x->lanes ? cdiv(Tmax, SC_TC) : cdiv(Tmax, SCAN_TC));
    int ok = 1;
#define ALLOC(ptr, n) ok &= ((ptr) = rb_cuda_alloc(n)) != NULL
    ALLOC(x->xz, M * 2 * E); ALLOC(x->xs, M * E); ALLOC(x->xdbl, M * P); ALLOC(x->dtp, M * E);
    ALLOC(x->y, M * E); ALLOC(x->g, M * E); ALLOC(x->hs, (size_t)Bmax * nch * N * E);
    ALLOC(x->dg, M * E); ALLOC(x->dxz, M * 2 * E); ALLOC(x->dxs, M * E); ALLOC(x->ddt, M * E);
    ALLOC(x->dxdbl, M * P); ALLOC(x->dbc_part, M * x->nw * 2 * N); ALLOC(x->dA_part, (size_t)Bmax * N * E);
    ALLOC(x->dD_part, (size_t)Bmax * E); ALLOC(x->dbdt_part, (size_t)Bmax * E);
    ALLOC(x->dconv_part, (size_t)Bmax * conv_part_rows(Tmax) * (K + 1) * E);
    ALLOC(x->sxz, (size_t)Bmax * (6 * E + P));
#undef ALLOC
    if (!ok) { mamba_cuda_destroy(x); return NULL; }
    x->sxs = x->sxz + (size_t)Bmax * 2 * E; x->sxdbl = x->sxs + (size_t)Bmax * E;
    x->sdtp = x->sxdbl + (size_t)Bmax * P; x->sg = x->sdtp + (size_t)Bmax * E;
    return x;
}

// The scan kernels for the compiled N (the next power of two >= d_state, at least 2).
static void launch_scan_forward(MambaCudaCtx *x, float *const *p, int B, int T) {
    if (x->lanes) {
        dim3 lg(cdiv(x->E, SC_BLK / x->NM), B);
#define LFWD(NM) scan_fwd_lanes_kernel<NM><<<lg, SC_BLK, 0, rb_cuda_stream()>>>(x->y, x->g, x->hs, x->xs, \
        x->xz, x->xdbl, x->dtp, p[MAMBA_B_DT], p[MAMBA_A_LOG], p[MAMBA_D], T, x->E, x->N, x->R, x->P)
#define WFWD(NM) scan_fwd_wide_kernel<NM><<<wg, SC_BLK, wide_fwd_smem(NM), rb_cuda_stream()>>>(x->y, x->g, \
        x->hs, x->xs, x->xz, x->xdbl, x->dtp, p[MAMBA_B_DT], p[MAMBA_A_LOG], p[MAMBA_D], T, x->E, x->N, x->R, x->P)
        dim3 wg(cdiv(x->E, WD_CH), B);
        switch (x->NM) {
        case 2: LFWD(2); break;
        case 4: LFWD(4); break;
        case 8: LFWD(8); break;
        case 16: LFWD(16); break;
        case 32: LFWD(32); break;
        case 64: WFWD(64); break;
        case 128: WFWD(128); break;
        default: WFWD(256); break;
        }
#undef LFWD
#undef WFWD
        CHECK_LAUNCH();
        return;
    }
    dim3 grid(cdiv(x->E, SCAN_BX), B);
#define FWD(NM) scan_forward_kernel<NM><<<grid, SCAN_BX, 0, rb_cuda_stream()>>>(x->y, x->g, x->hs, x->xs, x->xz, \
        x->xdbl, x->dtp, p[MAMBA_B_DT], p[MAMBA_A_LOG], p[MAMBA_D], T, x->E, x->N, x->R, x->P)
    switch (x->NM) {
    case 2: FWD(2); break;
    case 4: FWD(4); break;
    case 8: FWD(8); break;
    case 16: FWD(16); break;
    default: FWD(32); break;
    }
#undef FWD
    CHECK_LAUNCH();
}

static void launch_scan_backward(MambaCudaCtx *x, float *const *p, int B, int T) {
    if (x->lanes) {
        dim3 lg(x->nw, B);
#define LBWD(NM) scan_bwd_lanes_kernel<NM><<<lg, SC_BLK, 0, rb_cuda_stream()>>>(x->dxz, x->ddt, x->dxs, \
        x->dbc_part, x->dA_part, x->dD_part, x->dbdt_part, x->dg, x->y, x->hs, x->xs, x->xz, x->xdbl, x->dtp, \
        p[MAMBA_B_DT], p[MAMBA_A_LOG], p[MAMBA_D], T, x->E, x->N, x->R, x->P)
#define WBWD(NM) scan_bwd_wide_kernel<NM><<<lg, SC_BLK, wide_bwd_smem(NM), rb_cuda_stream()>>>(x->dxz, x->ddt, \
        x->dxs, x->dbc_part, x->dA_part, x->dD_part, x->dbdt_part, x->dg, x->y, x->hs, x->xs, x->xz, x->xdbl, \
        x->dtp, p[MAMBA_B_DT], p[MAMBA_A_LOG], p[MAMBA_D], T, x->E, x->N, x->R, x->P)
        switch (x->NM) {
        case 2: LBWD(2); break;
        case 4: LBWD(4); break;
        case 8: LBWD(8); break;
        case 16: LBWD(16); break;
        case 32: LBWD(32); break;
        case 64: WBWD(64); break;
        case 128: WBWD(128); break;
        default: WBWD(256); break;
        }
#undef LBWD
#undef WBWD
        CHECK_LAUNCH();
        return;
    }
    dim3 grid(cdiv(x->E, SCAN_BX), B);
#define BWD(NM) scan_backward_kernel<NM><<<grid, SCAN_BX, 0, rb_cuda_stream()>>>(x->dxz, x->ddt, x->dxs, \
        x->dbc_part, x->dA_part, x->dD_part, x->dbdt_part, x->dg, x->y, x->hs, x->xs, x->xz, x->xdbl, x->dtp, \
        p[MAMBA_B_DT], p[MAMBA_A_LOG], p[MAMBA_D], T, x->E, x->N, x->R, x->P, x->nw)
    switch (x->NM) {
    case 2: BWD(2); break;
    case 4: BWD(4); break;
    case 8: BWD(8); break;
    case 16: BWD(16); break;
    default: BWD(32); break;
    }
#undef BWD
    CHECK_LAUNCH();
}

static void mamba_cuda_forward(Mixer *m, float *const *p, float *out, const float *inp, int B, int T) {
    MambaCudaCtx *x = (MambaCudaCtx *)m->ctx;
    const int D = x->D, E = x->E, R = x->R, P = x->P, M = B * T;
    cudaStream_t st = rb_cuda_stream();
    rb_cuda_matmul(x->xz, inp, p[MAMBA_W_IN], M, 2 * E, D, 0, 1, 0.f);
    if (conv_v4(E, x->xs, x->xz, NULL)) {
        dim3 cg(cdiv(E / 4, 32), cdiv(cdiv(T, CONV_FT), CONV_WARPS), B);
        conv_forward_kernel<4><<<cg, 32 * CONV_WARPS, 0, st>>>(x->xs, x->xz, p[MAMBA_CONV_W], p[MAMBA_CONV_B], T, E);
    } else {
        dim3 cg(cdiv(E, 32), cdiv(cdiv(T, CONV_FT), CONV_WARPS), B);
        conv_forward_kernel<1><<<cg, 32 * CONV_WARPS, 0, st>>>(x->xs, x->xz, p[MAMBA_CONV_W], p[MAMBA_CONV_B], T, E);
    }
    CHECK_LAUNCH();
    rb_cuda_matmul(x->xdbl, x->xs, p[MAMBA_W_X], M, P, E, 0, 1, 0.f);
    // dtp [M,E] = dt_low [M,R] (row stride P) @ W_dt^T; the bias and softplus are applied in the scan
    rb_cuda_gemm_ld(x->dtp, E, x->xdbl, P, p[MAMBA_W_DT], R, M, E, R, 0, 1, 1.f, 0.f);
    launch_scan_forward(x, p, B, T);
    rb_cuda_matmul(out, x->g, p[MAMBA_W_OUT], M, D, E, 0, 1, 0.f);
}

static void mamba_cuda_backward(Mixer *m, float *const *p, float *const *dp, float *dinp, const float *dout,
                                const float *inp, int B, int T) {
    MambaCudaCtx *x = (MambaCudaCtx *)m->ctx;
    const int D = x->D, E = x->E, N = x->N, R = x->R, P = x->P, M = B * T;
    cudaStream_t st = rb_cuda_stream();
    // out = g W_out^T: dW_out += dout^T g; dg = dout W_out.
    rb_cuda_matmul(dp[MAMBA_W_OUT], dout, x->g, D, E, M, 1, 0, 1.f);
    rb_cuda_matmul(x->dg, dout, p[MAMBA_W_OUT], M, E, D, 0, 0, 0.f);
    launch_scan_backward(x, p, B, T);
    long long nbc = (long long)M * 2 * N;
    dbc_reduce_kernel<<<cdiv(nbc, 256), 256, 0, st>>>(x->dxdbl, x->dbc_part, M, x->nw, 2 * N, R, P);
    CHECK_LAUNCH();
    // dt_pre = dt_low W_dt^T: dW_dt [E,R] += ddt^T dt_low; d dt_low = ddt W_dt into dxdbl[:, :R].
    rb_cuda_gemm_ld(dp[MAMBA_W_DT], R, x->ddt, E, x->xdbl, P, E, R, M, 1, 0, 1.f, 1.f);
    rb_cuda_gemm_ld(x->dxdbl, P, x->ddt, E, p[MAMBA_W_DT], R, M, R, E, 0, 0, 1.f, 0.f);
    // xdbl = xs W_x^T.
    rb_cuda_matmul(dp[MAMBA_W_X], x->dxdbl, x->xs, P, E, M, 1, 0, 1.f);
    rb_cuda_matmul(x->dxs, x->dxdbl, p[MAMBA_W_X], M, E, P, 0, 0, 1.f);
    const int v4 = conv_v4(E, x->dxz, x->dxs, x->xz), crow = conv_part_rows(T);
    dim3 cg(cdiv(v4 ? E / 4 : E, 32), crow, B);
    if (v4)
        conv_backward_kernel<4><<<cg, 32 * CONV_WARPS, 0, st>>>(x->dxz, x->dconv_part, x->dxs, x->xz,
                                                                 p[MAMBA_CONV_W], p[MAMBA_CONV_B], T, E);
    else
        conv_backward_kernel<1><<<cg, 32 * CONV_WARPS, 0, st>>>(x->dxz, x->dconv_part, x->dxs, x->xz,
                                                                 p[MAMBA_CONV_W], p[MAMBA_CONV_B], T, E);
    CHECK_LAUNCH();
    cuda_conv_wgrad_final(dp[MAMBA_CONV_W], dp[MAMBA_CONV_B], x->dconv_part, B * crow, E, K);
    int nj = E * (N + 2);
    param_reduce_kernel<<<cdiv(nj, 128), 128, 0, st>>>(dp[MAMBA_A_LOG], dp[MAMBA_D], dp[MAMBA_B_DT], x->dA_part,
                                                       x->dD_part, x->dbdt_part, p[MAMBA_A_LOG], B, E, N);
    CHECK_LAUNCH();
    // xz = inp W_in^T.
    rb_cuda_matmul(dp[MAMBA_W_IN], x->dxz, inp, 2 * E, D, M, 1, 0, 1.f);
    rb_cuda_matmul(dinp, x->dxz, p[MAMBA_W_IN], M, D, 2 * E, 0, 0, 0.f);
}

static size_t mamba_cuda_step_state_size(const Mixer *m) {
    return mamba_state_h_offset(&m->cfg) + mamba_state_h_size(&m->cfg);
}

// One token of B sequences (mamba.c mamba_step).
static void mamba_cuda_step(Mixer *m, float *const *p, float *state, float *out, const float *inp, int B, int t) {
    MambaCudaCtx *x = (MambaCudaCtx *)m->ctx;
    const int D = x->D, E = x->E, N = x->N, R = x->R, P = x->P;
    cudaStream_t st = rb_cuda_stream();
    const size_t S = mamba_cuda_step_state_size(m);
    rb_cuda_matmul(x->sxz, inp, p[MAMBA_W_IN], B, 2 * E, D, 0, 1, 0.f);
    int n = B * E;
    conv_step_kernel<<<cdiv(n, 128), 128, 0, st>>>(x->sxs, state + mamba_state_conv_offset(&m->cfg), x->sxz,
                                                   p[MAMBA_CONV_W], p[MAMBA_CONV_B], B, E, S);
    CHECK_LAUNCH();
    rb_cuda_matmul(x->sxdbl, x->sxs, p[MAMBA_W_X], B, P, E, 0, 1, 0.f);
    rb_cuda_gemm_ld(x->sdtp, E, x->sxdbl, P, p[MAMBA_W_DT], R, B, E, R, 0, 1, 1.f, 0.f);
    ssm_step_kernel<<<cdiv(n, 128), 128, 0, st>>>(x->sg, state, x->sxs, x->sxz, x->sxdbl, x->sdtp, p[MAMBA_B_DT],
                                                  p[MAMBA_A_LOG], p[MAMBA_D], B, E, N, R, P, S,
                                                  mamba_state_h_offset(&m->cfg));
    CHECK_LAUNCH();
    rb_cuda_matmul(out, x->sg, p[MAMBA_W_OUT], B, D, E, 0, 1, 0.f);
    (void)t;
}

extern "C" const MixerCudaOps mamba_cuda_ops = {
    mamba_cuda_create, mamba_cuda_destroy, mamba_cuda_forward, mamba_cuda_backward,
    mamba_cuda_step_state_size, mamba_cuda_step,
};

// Test support (tests/test_cuda_mamba.c): times the two scan kernels alone with CUDA events, after a
// forward and backward at (B, T) filled the activations. ms per call, averaged over iters calls.
extern "C" void mamba_cuda_scan_ms(Mixer *m, float *const *p, int B, int T, int iters, float *fwd_ms,
                                   float *bwd_ms) {
    MambaCudaCtx *x = (MambaCudaCtx *)m->ctx;
    cudaStream_t st = rb_cuda_stream();
    cudaEvent_t e0, e1, e2;
    CHECK_CUDA(cudaEventCreate(&e0)); CHECK_CUDA(cudaEventCreate(&e1)); CHECK_CUDA(cudaEventCreate(&e2));
    CHECK_CUDA(cudaEventRecord(e0, st));
    for (int i = 0; i < iters; i++) launch_scan_forward(x, p, B, T);
    CHECK_CUDA(cudaEventRecord(e1, st));
    for (int i = 0; i < iters; i++) launch_scan_backward(x, p, B, T);
    CHECK_CUDA(cudaEventRecord(e2, st));
    CHECK_CUDA(cudaEventSynchronize(e2));
    CHECK_LAUNCH();
    float a = 0, b = 0;
    CHECK_CUDA(cudaEventElapsedTime(&a, e0, e1));
    CHECK_CUDA(cudaEventElapsedTime(&b, e1, e2));
    *fwd_ms = a / iters;
    *bwd_ms = b / iters;
    cudaEventDestroy(e0); cudaEventDestroy(e1); cudaEventDestroy(e2);
}
