// mamba.c — the mamba mixer: Mamba block with the selective SSM (S6) of Gu & Dao 2023 (models.md "mamba").
// Depends on mixer.h, real.h (GEMM), mamba_internal.h (layout), OpenMP when available.
//
// Follows state-spaces/mamba `Mamba` (mamba_simple.py) and `selective_scan_ref`:
//   [x, z] = W_in u;  x = silu(conv4(x) + b_conv);  [dt_low, B, C] = W_x x;
//   delta = softplus(W_dt dt_low + b_dt);  h_t = exp(delta A) h_{t-1} + delta B x;
//   y = C.h_t + D x;  out = W_out(y * silu(z)).
// Training form: exact sequential scan over t, one task per (sequence, block of 16 channels),
// vectorised over the channels; OpenMP over sequences and blocks. Deterministic: no sum depends on
// the thread count. Backward recomputes h per (sequence, block) into a per-thread [T+1, N, 16]
// buffer instead of saving the [B, T, E, N] states (E N floats per token), and keeps the decays
// exp(delta A) of the recompute beside it for the reverse sweep (one exp per state element there, not
// two: the mamba regress rows 1.3x faster, the same bits).
// Memory (floats, E = d_inner, P = dt_rank + 2N): activations 7E + P per token of Bmax x Tmax,
// backward 3E + P per token, per-sequence partials Bmax (N E + E), per-thread (2 Tmax + 2) 16 N.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../layers.h"
#include "../mixer.h"
#include "mamba_internal.h"
#ifdef _OPENMP
#include <omp.h>
#endif

#define K MAMBA_CONV_K
#define CB 16  // channels per scan block (one AVX-512 vector of floats; rvec16 below needs 16)

// rvec16 locals (layers.h) in the cloned scans: no vector crosses a call, the ABI note is moot.
#pragma GCC diagnostic ignored "-Wpsabi"
#define MAMBA_N_MAX 1024
#define MAMBA_EXPAND_MAX 16

typedef struct {
    int D, E, N, R, P;          // model width, d_inner, d_state, dt_rank, R + 2N
    int Bmax, Tmax, nthr;
    int B, T;                   // shape of the last forward
    // forward activations, [M = B T rows, ...]
    real *xz;                   // [M, 2E] in_proj output: x before the conv | z
    real *xc;                   // [M, E]  conv output before silu
    real *xs;                   // [M, E]  silu(xc): the SSM input
    real *xdbl;                 // [M, P]  dt_low | B | C
    real *delta;                // [M, E]  softplus(W_dt dt_low + b_dt)
    real *y;                    // [M, E]  SSM output C.h + D x (backward: d delta, then d dt_pre)
    real *g;                    // [M, E]  y * silu(z) (backward: d g, then d y)
    real *AT;                   // [N, E]  A = -exp(A_log) of the last forward, transposed
    // backward
    real *dxz;                  // [M, 2E]
    real *dxs;                  // [M, E]
    real *dxdbl;                // [M, P]
    real *dA_part, *dD_part;    // [Bmax, N, E], [Bmax, E]: per-sequence partials, summed in order
    real *scratch;              // [nthr, scratch_stride]: h, or dh [N, CB] + H [Tmax+1, N, CB] + DA [Tmax, N, CB]
    size_t scratch_stride;
    real *sv;                   // step vectors: xz [2E], xs [E], xdbl [P], delta [E], g [E]
} MambaCtx;

// ---- scalar helpers -------------------------------------------------------------------------
#ifdef RB_DOUBLE
static inline real r_exp(real x) { return exp(x); }
static inline real r_log1p(real x) { return log1p(x); }
static inline real r_expm1(real x) { return expm1(x); }
// exp for the SSM decays and the sigmoids: exact in the double build (gradient checks).
static inline real exp_fast(real x) { return exp(x); }
#else
static inline real r_exp(real x) { return expf(x); }
static inline real r_log1p(real x) { return log1pf(x); }
static inline real r_expm1(real x) { return expm1f(x); }
// exp(x), inlinable so the scan and gate loops vectorise (libm expf is a call per element):
// x = k ln2 + r, |r| <= ln2/2, degree-7 Taylor, times 2^k; max rel. error 1e-7 on [-87, 88]; x is
// clamped to that range (exp(-87) ~ 2e-38 stands in for 0). k is rounded by the 1.5 * 2^23 trick (floorf does not
// vectorise without -fno-trapping-math) and read back from the bits of t.
// The operation sequence, written once for exp_fast and the 16-lane exp_fast16 (T: float or rvec16).
#define MAMBA_EXP_POLY(T, x, t, p)                                                   \
    T t = x * 1.44269504f + 12582912.0f, k_ = t - 12582912.0f;                       \
    T r_ = x - k_ * 0.693145752f - k_ * 1.42860677e-6f;                              \
    T p = (T){0} + 1.0f / 5040;                                                      \
    p = p * r_ + 1.0f / 720;                                                         \
    p = p * r_ + 1.0f / 120;                                                         \
    p = p * r_ + 1.0f / 24;                                                          \
    p = p * r_ + 1.0f / 6;                                                           \
    p = p * r_ + 0.5f;                                                               \
    p = p * r_ + 1.0f;                                                               \
    p = p * r_ + 1.0f
static inline float exp_fast(float x) {
    x = x < -87.0f ? -87.0f : x > 88.0f ? 88.0f : x;
    MAMBA_EXP_POLY(float, x, t, p);
    int32_t ti, si;
    float s;
    memcpy(&ti, &t, sizeof ti);
    si = (ti - 0x4B400000 + 127) * (1 << 23);
    memcpy(&s, &si, sizeof s);
    return p * s;
}
#endif
static inline real sigmoid(real v) { return 1 / (1 + exp_fast(-v)); }
// softplus without overflow; its derivative sigmoid(x) equals -expm1(-softplus(x)).
static inline real softplus(real v) { return (v > 0 ? v : 0) + r_log1p(r_exp(-(v > 0 ? v : -v))); }

#ifdef RB_EXP16
// exp_fast and sigmoid on 16 lanes (layers.h rvec16): the same operations in the same order, so the
// same bits as the scalar forms. The scan's loops call these on full blocks of CB channels: GCC
// if-converted exp_fast's clamp only in the AVX-512 clone, and the AVX2 clone of the scan ran scalar
// (AMD EPYC: the forward scan was 40% of a mamba regress row).
#define MAMBA_VEC 1
static inline __attribute__((always_inline)) rvec16 exp_fast16(rvec16 x) {
    const rvec16 z = {0};
    x = rv_sel(x < -87.0f, z - 87.0f, rv_sel(x > 88.0f, z + 88.0f, x));
    MAMBA_EXP_POLY(rvec16, x, t, p);
    ruvec16 si = ((ruvec16)t - 0x4B400000u + 127u) << 23;  // unsigned: exp_fast's int, without the overflow question
    return p * (rvec16)si;
}
static inline __attribute__((always_inline)) rvec16 sigmoid16(rvec16 v) { return 1 / (1 + exp_fast16(-v)); }
#endif

static int thread_id(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

// ---- interface ------------------------------------------------------------------------------
static int mamba_validate(const MixerCfg *c, char *err, size_t errn) {
    if (c->d < 1) { snprintf(err, errn, "--d-model %d: must be >= 1", c->d); return -1; }
    if (c->state_dim < 1 || c->state_dim > MAMBA_N_MAX) {
        snprintf(err, errn, "--state-dim %d: must be in [1, %d]", c->state_dim, MAMBA_N_MAX);
        return -1;
    }
    if (c->expand < 1 || c->expand > MAMBA_EXPAND_MAX) {
        snprintf(err, errn, "--expand %d: must be in [1, %d]", c->expand, MAMBA_EXPAND_MAX);
        return -1;
    }
    return 0;
}

// No weight decay on A_log and D (mamba's _no_weight_decay) nor on the two biases.
static int mamba_param_specs(const MixerCfg *c, ParamSpec *s) {
    size_t D = (size_t)c->d, E = (size_t)mamba_d_inner(c), N = (size_t)c->state_dim;
    size_t R = (size_t)mamba_dt_rank(c);
    s[MAMBA_W_IN] = (ParamSpec){"in_proj", 2 * E * D, INIT_CUSTOM, 1};
    s[MAMBA_CONV_W] = (ParamSpec){"conv_w", E * K, INIT_CUSTOM, 1};
    s[MAMBA_CONV_B] = (ParamSpec){"conv_b", E, INIT_CUSTOM, 0};
    s[MAMBA_W_X] = (ParamSpec){"x_proj", (R + 2 * N) * E, INIT_CUSTOM, 1};
    s[MAMBA_W_DT] = (ParamSpec){"dt_proj", E * R, INIT_CUSTOM, 1};
    s[MAMBA_B_DT] = (ParamSpec){"dt_bias", E, INIT_CUSTOM, 0};
    s[MAMBA_A_LOG] = (ParamSpec){"A_log", E * N, INIT_CUSTOM, 0};
    s[MAMBA_D] = (ParamSpec){"D", E, INIT_CUSTOM, 0};
    s[MAMBA_W_OUT] = (ParamSpec){"out_proj", D * E, INIT_CUSTOM, 1};
    return MAMBA_NTENSORS;
}

// mamba_simple.py's Mamba.__init__ (and zoology's MambaBlock), not the shell's N(0, 0.02): in_proj and
// x_proj keep PyTorch's nn.Linear default, U(+-1/sqrt(fan_in)) (fan_in D and d_inner); out_proj the
// same divided by sqrt(n_layers) (MixerModel's rescale_prenorm_residual); with N(0, 0.02) these are
// 2.5-3.6x smaller at d 64 and mamba sits near chance on tiny MQAR. conv1d keeps PyTorch's default,
// U(+-1/sqrt(fan_in = K)); W_dt ~ U(+-dt_rank^-0.5); b_dt = softplus^-1(dt), dt log-uniform in
// [1e-3, 0.1] (floor 1e-4); A_log[c, n] = log(n + 1) (S4D-real); D = 1. Draw order: in_proj, conv,
// x_proj, W_dt, b_dt, out_proj.
static void uniform_fill(real *p, size_t n, double bound, Rng *rng) {
    for (size_t i = 0; i < n; i++) p[i] = (real)(bound * (2 * rng_uniform(rng) - 1));
}

static void mamba_init_custom(const MixerCfg *c, real *const *p, Rng *rng) {
    int D = c->d, E = mamba_d_inner(c), N = c->state_dim, R = mamba_dt_rank(c);
    uniform_fill(p[MAMBA_W_IN], (size_t)2 * E * D, 1 / sqrt((double)D), rng);
    double cb = 1 / sqrt((double)K);
    for (int i = 0; i < E * K; i++) p[MAMBA_CONV_W][i] = (real)(cb * (2 * rng_uniform(rng) - 1));
    for (int i = 0; i < E; i++) p[MAMBA_CONV_B][i] = (real)(cb * (2 * rng_uniform(rng) - 1));
    uniform_fill(p[MAMBA_W_X], (size_t)(R + 2 * N) * E, 1 / sqrt((double)E), rng);
    double ws = 1 / sqrt((double)R);
    for (int i = 0; i < E * R; i++) p[MAMBA_W_DT][i] = (real)(ws * (2 * rng_uniform(rng) - 1));
    const double lo = log(1e-3), hi = log(0.1);
    for (int i = 0; i < E; i++) {
        double dt = exp(lo + rng_uniform(rng) * (hi - lo));
        if (dt < 1e-4) dt = 1e-4;
        p[MAMBA_B_DT][i] = (real)(dt + log(-expm1(-dt)));  // softplus^-1(dt)
    }
    for (int i = 0; i < E; i++)
        for (int n = 0; n < N; n++) p[MAMBA_A_LOG][(size_t)i * N + n] = (real)log(n + 1.0);
    for (int i = 0; i < E; i++) p[MAMBA_D][i] = 1;
    uniform_fill(p[MAMBA_W_OUT], (size_t)D * E, 1 / sqrt((double)E) / sqrt((double)(c->n_layers > 0 ? c->n_layers : 1)), rng);
}

static void mamba_destroy(void *vctx) {
    MambaCtx *x = vctx;
    if (!x) return;
    real *bufs[] = {x->xz, x->xc, x->xs, x->xdbl, x->delta, x->y, x->g, x->AT, x->dxz, x->dxs,
                    x->dxdbl, x->dA_part, x->dD_part, x->scratch, x->sv};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
    free(x);
}

static real *alloc_reals(size_t n) { return rb_calloc(n, sizeof(real)); }  // aligned (layers.h)

static void *mamba_create(const MixerCfg *c, int Bmax, int Tmax) {
    MambaCtx *x = calloc(1, sizeof *x);
    if (!x) return NULL;
    x->D = c->d; x->E = mamba_d_inner(c); x->N = c->state_dim; x->R = mamba_dt_rank(c);
    x->P = x->R + 2 * x->N;
    x->Bmax = Bmax; x->Tmax = Tmax;
#ifdef _OPENMP
    x->nthr = omp_get_max_threads();
#else
    x->nthr = 1;
#endif
    size_t M = (size_t)Bmax * Tmax, E = (size_t)x->E, N = (size_t)x->N, P = (size_t)x->P;
    int ok = 1;
#define ALLOC(ptr, n) ok &= ((ptr) = alloc_reals(n)) != NULL
    ALLOC(x->xz, M * 2 * E); ALLOC(x->xc, M * E); ALLOC(x->xs, M * E); ALLOC(x->xdbl, M * P);
    ALLOC(x->delta, M * E); ALLOC(x->y, M * E); ALLOC(x->g, M * E); ALLOC(x->AT, E * N);
    ALLOC(x->dxz, M * 2 * E); ALLOC(x->dxs, M * E); ALLOC(x->dxdbl, M * P);
    ALLOC(x->dA_part, (size_t)Bmax * E * N); ALLOC(x->dD_part, (size_t)Bmax * E);
    x->scratch_stride = (2 * (size_t)Tmax + 2) * N * CB;
    ALLOC(x->scratch, (size_t)x->nthr * x->scratch_stride);
    ALLOC(x->sv, 5 * E + P);
#undef ALLOC
    if (!ok) { mamba_destroy(x); return NULL; }
    return x;
}

// xc [M,E] = conv_b + causal depthwise conv over time of x (rows of xz, stride 2E); xs = silu(xc).
// One sequence (cloned: inside the OpenMP region this ran as baseline SSE2).
RB_CLONES static void conv_forward_seq(real *restrict xc, real *restrict xs, const real *restrict xz,
                                       const real *restrict w, const real *restrict bias, int b, int T, int E) {
        for (int t = 0; t < T; t++) {
            size_t m = (size_t)b * T + t;
            real *o = xc + m * E, *s = xs + m * E;
            for (int c = 0; c < E; c++) o[c] = bias[c];
            for (int k = 0; k < K; k++) {
                int ts = t - (K - 1) + k;  // tap K-1 is the current token
                if (ts < 0) continue;
                const real *in = xz + ((size_t)b * T + ts) * 2 * E;
                for (int c = 0; c < E; c++) o[c] += w[(size_t)c * K + k] * in[c];
            }
            int c = 0;
#ifdef MAMBA_VEC
            for (; c + 16 <= E; c += 16) {
                rvec16 v = rv_load(o + c);
                rv_store(s + c, v * sigmoid16(v));
            }
#endif
            for (; c < E; c++) s[c] = o[c] * sigmoid(o[c]);
        }
}

static void conv_forward(real *xc, real *xs, const real *xz, const real *w, const real *bias, int B,
                         int T, int E, int nthr) {
    #pragma omp parallel for schedule(static) num_threads(nthr)
    for (int b = 0; b < B; b++) conv_forward_seq(xc, xs, xz, w, bias, b, T, E);
}

// dxz[:, :E] = conv^T dxc; dw [E,K] += sum dxc x; db [E] += sum dxc. One task per block of CB
// channels (vectorised over them), so sums over tokens keep a fixed order.
RB_CLONES static void conv_backward_blk(real *dxz, real *dw, real *db, const real *dxc, const real *xz,
                                        const real *w, int B, int T, int E, int blk) {
    {
        const int c0 = blk * CB, cb = E - c0 < CB ? E - c0 : CB;
        real gw[K][CB], gb[CB], wk[K][CB];
        for (int cc = 0; cc < cb; cc++) {
            gb[cc] = 0;
            for (int k = 0; k < K; k++) { gw[k][cc] = 0; wk[k][cc] = w[(size_t)(c0 + cc) * K + k]; }
        }
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++) {
                size_t m = (size_t)b * T + t;
                const real *restrict gx = dxc + m * E + c0;
                real *restrict o = dxz + m * 2 * E + c0;
                for (int cc = 0; cc < cb; cc++) { gb[cc] += gx[cc]; o[cc] = 0; }
                for (int k = 0; k < K; k++) {
                    int ts = t - (K - 1) + k;  // x[ts] fed output t through tap k
                    if (ts >= 0) {
                        const real *restrict in = xz + ((size_t)b * T + ts) * 2 * E + c0;
                        for (int cc = 0; cc < cb; cc++) gw[k][cc] += gx[cc] * in[cc];
                    }
                    int tf = t + (K - 1) - k;  // output tf read x[t] through tap k
                    if (tf < T) {
                        const real *restrict gf = dxc + ((size_t)b * T + tf) * E + c0;
                        for (int cc = 0; cc < cb; cc++) o[cc] += gf[cc] * wk[k][cc];
                    }
                }
            }
        for (int cc = 0; cc < cb; cc++) {
            for (int k = 0; k < K; k++) dw[(size_t)(c0 + cc) * K + k] += gw[k][cc];
            db[c0 + cc] += gb[cc];
        }
    }
}

static void conv_backward(real *dxz, real *dw, real *db, const real *dxc, const real *xz,
                          const real *w, int B, int T, int E, int nthr) {
    const int nblk = (E + CB - 1) / CB;
    #pragma omp parallel for schedule(static) num_threads(nthr)
    for (int blk = 0; blk < nblk; blk++) conv_backward_blk(dxz, dw, db, dxc, xz, w, B, T, E, blk);
}

// Selective scan (selective_scan_ref) and the gate, for channels c0 .. c0+cb-1 of sequence b:
// y = C.h_t + D x, g = y silu(z) (z in rows of xz). Vectorised over the channels; the block's
// state h [N, CB] stays in L1. Inlined with cb = CB for full blocks (a constant trip count).
static inline __attribute__((always_inline)) void scan_forward_block(MambaCtx *x, real *restrict h,
        const real *Dp, int b, int T, int c0, const int cb) {
    const int E = x->E, N = x->N, R = x->R, P = x->P;
    for (int j = 0; j < N * CB; j++) h[j] = 0;
    for (int t = 0; t < T; t++) {
        size_t i = (size_t)b * T + t;
        const real *restrict dl = x->delta + i * E + c0, *restrict xv = x->xs + i * E + c0;
        const real *restrict Bt = x->xdbl + i * P + R, *restrict Ct = Bt + N;
        real dx[CB], acc[CB];
        for (int cc = 0; cc < cb; cc++) { dx[cc] = dl[cc] * xv[cc]; acc[cc] = 0; }
        for (int n = 0; n < N; n++) {
            const real *restrict an = x->AT + (size_t)n * E + c0;
            real *restrict hn = h + n * CB, bn = Bt[n], cn = Ct[n];
            for (int cc = 0; cc < cb; cc++) {
                hn[cc] = exp_fast(dl[cc] * an[cc]) * hn[cc] + dx[cc] * bn;
                acc[cc] += cn * hn[cc];
            }
        }
        real *restrict y = x->y + i * E + c0, *restrict g = x->g + i * E + c0;
        const real *restrict z = x->xz + i * 2 * E + E + c0;
        for (int cc = 0; cc < cb; cc++) {
            y[cc] = acc[cc] + Dp[c0 + cc] * xv[cc];
            g[cc] = y[cc] * z[cc] * sigmoid(z[cc]);
        }
    }
}

#ifdef MAMBA_VEC
// scan_forward_block on a full block, in rvec16 (the same operations per lane, the same bits).
static inline __attribute__((always_inline)) void scan_forward_vec(MambaCtx *x, real *restrict h, const real *Dp,
                                                                   int b, int T, int c0) {
    const int E = x->E, N = x->N, R = x->R, P = x->P;
    const rvec16 z = {0}, dp = rv_load(Dp + c0);
    for (int n = 0; n < N; n++) rv_store(h + n * CB, z);
    for (int t = 0; t < T; t++) {
        size_t i = (size_t)b * T + t;
        const rvec16 dl = rv_load(x->delta + i * E + c0), xv = rv_load(x->xs + i * E + c0), dx = dl * xv;
        const real *restrict Bt = x->xdbl + i * P + R, *restrict Ct = Bt + N;
        rvec16 acc = z;
        for (int n = 0; n < N; n++) {
            rvec16 hn = exp_fast16(dl * rv_load(x->AT + (size_t)n * E + c0)) * rv_load(h + n * CB) + dx * Bt[n];
            rv_store(h + n * CB, hn);
            acc += Ct[n] * hn;
        }
        const rvec16 y = acc + dp * xv, zv = rv_load(x->xz + i * 2 * E + E + c0);
        rv_store(x->y + i * E + c0, y);
        rv_store(x->g + i * E + c0, y * zv * sigmoid16(zv));
    }
}
#endif

// One task per (sequence, block of CB channels).
// The scan blocks built for AVX-512, AVX2 and baseline x86-64, picked at load time (RB_CLONES,
// layers.h): the build has no -march=native, and the baseline clone of the scan alone made the
// mamba step 3x slower. Same bits from every clone (no contraction in ISO C).
RB_CLONES static void scan_forward_blk(MambaCtx *x, real *h, const real *Dp, int b, int T, int c0, int cb) {
#ifdef MAMBA_VEC
    if (cb == CB) scan_forward_vec(x, h, Dp, b, T, c0);
#else
    if (cb == CB) scan_forward_block(x, h, Dp, b, T, c0, CB);
#endif
    else scan_forward_block(x, h, Dp, b, T, c0, cb);
}

static void scan_forward(MambaCtx *x, const real *Dp, int B, int T, int nthr) {
    const int E = x->E, nblk = (E + CB - 1) / CB;
    #pragma omp parallel for collapse(2) schedule(static) num_threads(nthr)
    for (int b = 0; b < B; b++)
        for (int blk = 0; blk < nblk; blk++) {
            real *h = x->scratch + (size_t)thread_id() * x->scratch_stride;
            scan_forward_blk(x, h, Dp, b, T, blk * CB, E - blk * CB >= CB ? CB : E - blk * CB);
        }
}

// Backward of the scan for channels c0 .. c0+cb-1 of sequence b: h recomputed into H [T+1, N, CB]
// (row 0 = the zero initial state), then the reverse-time recurrence dh_{t-1} = exp(delta_t A) dh_t
// with dh_t += dy_t C_t. In: dy in x->g. Out: d delta, dxs; += dB, dC (rows of dxdbl), dAp [N, E],
// dDp [E].
static inline __attribute__((always_inline)) void scan_backward_block(MambaCtx *x, real *ddelta,
        const real *Dp, real *restrict gh, real *restrict H, real *restrict DA, real *restrict dAp,
        real *restrict dDp, int b, int T, int c0, const int cb) {
    const int E = x->E, N = x->N, R = x->R, P = x->P;
    for (int j = 0; j < N * CB; j++) H[j] = gh[j] = 0;
    for (int t = 0; t < T; t++) {
        size_t i = (size_t)b * T + t;
        const real *restrict dl = x->delta + i * E + c0, *restrict xv = x->xs + i * E + c0;
        const real *restrict Bt = x->xdbl + i * P + R;
        for (int n = 0; n < N; n++) {
            const real *restrict an = x->AT + (size_t)n * E + c0;
            const real *restrict hp = H + ((size_t)t * N + n) * CB;
            real *restrict ht = H + ((size_t)(t + 1) * N + n) * CB, bn = Bt[n];
            real *restrict dat = DA + ((size_t)t * N + n) * CB;
            for (int cc = 0; cc < cb; cc++) {
                real da = exp_fast(dl[cc] * an[cc]);
                dat[cc] = da;
                ht[cc] = da * hp[cc] + dl[cc] * xv[cc] * bn;
            }
        }
    }
    for (int t = T - 1; t >= 0; t--) {
        size_t i = (size_t)b * T + t;
        const real *restrict dl = x->delta + i * E + c0, *restrict xv = x->xs + i * E + c0;
        const real *restrict dy = x->g + i * E + c0;
        const real *restrict Bt = x->xdbl + i * P + R, *restrict Ct = Bt + N;
        real *restrict dBt = x->dxdbl + i * P + R, *restrict dCt = dBt + N;
        real ddl[CB], dxv[CB];
        for (int cc = 0; cc < cb; cc++) {
            ddl[cc] = 0;
            dxv[cc] = dy[cc] * Dp[c0 + cc];
            dDp[c0 + cc] += dy[cc] * xv[cc];
        }
        for (int n = 0; n < N; n++) {
            const real *restrict an = x->AT + (size_t)n * E + c0;
            const real *restrict ht = H + ((size_t)(t + 1) * N + n) * CB, *restrict hp = ht - (size_t)N * CB;
            real *restrict g = gh + (size_t)n * CB, *restrict dA = dAp + (size_t)n * E + c0;
            const real *restrict dat = DA + ((size_t)t * N + n) * CB;
            real bn = Bt[n], cn = Ct[n], tB[CB], tC[CB];
            for (int cc = 0; cc < cb; cc++) {
                real da = dat[cc];                   // exp(delta a), kept from the recompute
                g[cc] += dy[cc] * cn;                // g = dL/dh_t
                tC[cc] = dy[cc] * ht[cc];
                real q = g[cc] * hp[cc] * da;        // dL/d(delta a) through the decay
                ddl[cc] += q * an[cc] + g[cc] * bn * xv[cc];
                dA[cc] += q * dl[cc];
                dxv[cc] += g[cc] * dl[cc] * bn;
                tB[cc] = g[cc] * dl[cc] * xv[cc];
                g[cc] *= da;
            }
            // the sums over the block's channels in a fixed order (an omp simd reduction's order
            // followed the clone's vector width: AVX-512 and AVX2 machines gave other bits)
            real sB = 0, sC = 0;
            if (cb == CB) {
                sB = rv_sum(rv_load(tB));
                sC = rv_sum(rv_load(tC));
            } else
                for (int cc = 0; cc < cb; cc++) { sB += tB[cc]; sC += tC[cc]; }
            dBt[n] += sB;
            dCt[n] += sC;
        }
        for (int cc = 0; cc < cb; cc++) {
            ddelta[i * E + c0 + cc] = ddl[cc];
            x->dxs[i * E + c0 + cc] = dxv[cc];
        }
    }
}

#ifdef MAMBA_VEC
// scan_backward_block on a full block, in rvec16 (the same operations per lane, the same bits).
static inline __attribute__((always_inline)) void scan_backward_vec(MambaCtx *x, real *ddelta, const real *Dp,
        real *restrict gh, real *restrict H, real *restrict DA, real *restrict dAp, real *restrict dDp,
        int b, int T, int c0) {
    const int E = x->E, N = x->N, R = x->R, P = x->P;
    const rvec16 z = {0}, dp = rv_load(Dp + c0);
    for (int n = 0; n < N; n++) rv_store(H + n * CB, z), rv_store(gh + n * CB, z);
    for (int t = 0; t < T; t++) {
        size_t i = (size_t)b * T + t;
        const rvec16 dl = rv_load(x->delta + i * E + c0), dx = dl * rv_load(x->xs + i * E + c0);
        const real *restrict Bt = x->xdbl + i * P + R;
        for (int n = 0; n < N; n++) {
            const size_t o = ((size_t)t * N + n) * CB;
            rvec16 da = exp_fast16(dl * rv_load(x->AT + (size_t)n * E + c0));
            rv_store(DA + o, da);
            rv_store(H + o + (size_t)N * CB, da * rv_load(H + o) + dx * Bt[n]);
        }
    }
    for (int t = T - 1; t >= 0; t--) {
        size_t i = (size_t)b * T + t;
        const rvec16 dl = rv_load(x->delta + i * E + c0), xv = rv_load(x->xs + i * E + c0);
        const rvec16 dy = rv_load(x->g + i * E + c0);
        const real *restrict Bt = x->xdbl + i * P + R, *restrict Ct = Bt + N;
        real *restrict dBt = x->dxdbl + i * P + R, *restrict dCt = dBt + N;
        rvec16 ddl = z, dxv = dy * dp;
        rv_store(dDp + c0, rv_load(dDp + c0) + dy * xv);
        for (int n = 0; n < N; n++) {
            const size_t o = ((size_t)t * N + n) * CB;
            const rvec16 an = rv_load(x->AT + (size_t)n * E + c0), ht = rv_load(H + o + (size_t)N * CB);
            const rvec16 hp = rv_load(H + o), da = rv_load(DA + o);
            const real bn = Bt[n], cn = Ct[n];
            rvec16 g = rv_load(gh + (size_t)n * CB) + dy * cn;  // g = dL/dh_t
            rvec16 q = g * hp * da;                              // dL/d(delta a) through the decay
            ddl += q * an + g * bn * xv;
            rv_store(dAp + (size_t)n * E + c0, rv_load(dAp + (size_t)n * E + c0) + q * dl);
            dxv += g * dl * bn;
            dBt[n] += rv_sum(g * dl * xv);
            dCt[n] += rv_sum(dy * ht);
            rv_store(gh + (size_t)n * CB, g * da);
        }
        rv_store(ddelta + i * E + c0, ddl);
        rv_store(x->dxs + i * E + c0, dxv);
    }
}
#endif

// One task per sequence: dB, dC of a token sum over the channel blocks in a fixed order; dA, dD go
// to per-sequence partials (summed over sequences in order by the caller).
RB_CLONES static void scan_backward_blk(MambaCtx *x, real *ddelta, const real *Dp, real *gh, real *H, real *DA,
                                        real *dAp, real *dDp, int b, int T, int c0, int cb) {
#ifdef MAMBA_VEC
    if (cb == CB) scan_backward_vec(x, ddelta, Dp, gh, H, DA, dAp, dDp, b, T, c0);
#else
    if (cb == CB) scan_backward_block(x, ddelta, Dp, gh, H, DA, dAp, dDp, b, T, c0, CB);
#endif
    else scan_backward_block(x, ddelta, Dp, gh, H, DA, dAp, dDp, b, T, c0, cb);
}

static void scan_backward(MambaCtx *x, real *ddelta, const real *Dp, int B, int T, int nthr) {
    const int E = x->E, N = x->N, R = x->R, P = x->P, nblk = (E + CB - 1) / CB;
    #pragma omp parallel for schedule(static) num_threads(nthr)
    for (int b = 0; b < B; b++) {
        real *gh = x->scratch + (size_t)thread_id() * x->scratch_stride, *H = gh + (size_t)N * CB;
        real *DA = H + ((size_t)x->Tmax + 1) * N * CB;
        real *dAp = x->dA_part + (size_t)b * N * E, *dDp = x->dD_part + (size_t)b * E;
        memset(dAp, 0, (size_t)E * N * sizeof(real));
        memset(dDp, 0, (size_t)E * sizeof(real));
        for (int t = 0; t < T; t++) memset(x->dxdbl + ((size_t)b * T + t) * P + R, 0, 2 * (size_t)N * sizeof(real));
        for (int blk = 0; blk < nblk; blk++) {
            scan_backward_blk(x, ddelta, Dp, gh, H, DA, dAp, dDp, b, T, blk * CB, E - blk * CB >= CB ? CB : E - blk * CB);
        }
    }
}

// Threads only when the scan has enough work: a parallel region costs more than a tiny batch
// (gradient checks, short evals), and much more when the cores are oversubscribed.
static int use_threads(const MambaCtx *x, int M) {
    return (double)M * x->E * (x->N + 1) >= 1 << 16 ? x->nthr : 1;
}

static void mamba_forward(Mixer *m, real *const *p, real *out, const real *inp, int B, int T) {
    MambaCtx *x = m->ctx;
    const int D = x->D, E = x->E, N = x->N, R = x->R, P = x->P, M = B * T;
    const int nthr = use_threads(x, M);
    x->B = B; x->T = T;
    matmul_par(x->xz, inp, p[MAMBA_W_IN], M, 2 * E, D, 0, 1, 0);
    conv_forward(x->xc, x->xs, x->xz, p[MAMBA_CONV_W], p[MAMBA_CONV_B], B, T, E, nthr);
    matmul_par(x->xdbl, x->xs, p[MAMBA_W_X], M, P, E, 0, 1, 0);
    // delta [M,E] = softplus(dt_low [M,R] (row stride P) @ W_dt^T + b_dt)
    gemm_ld(x->delta, E, x->xdbl, P, p[MAMBA_W_DT], R, M, E, R, 0, 1, 1, 0);  // the engine's GEMM (layers.h)
    const real *bdt = p[MAMBA_B_DT], *Dp = p[MAMBA_D];
    #pragma omp parallel for schedule(static) num_threads(nthr)
    for (int i = 0; i < M; i++)
        for (int c = 0; c < E; c++) x->delta[(size_t)i * E + c] = softplus(x->delta[(size_t)i * E + c] + bdt[c]);
    for (int c = 0; c < E; c++)
        for (int n = 0; n < N; n++) x->AT[(size_t)n * E + c] = -r_exp(p[MAMBA_A_LOG][(size_t)c * N + n]);
    scan_forward(x, Dp, B, T, nthr);
    matmul_par(out, x->g, p[MAMBA_W_OUT], M, D, E, 0, 1, 0);
}

// dst[c] += sum over rows i (in order) of x[i*E + c], c in [c0, c1): the same sums as a column at a
// time, with row-contiguous loads (the strided column loop was 6% of a conv,mamba step).
RB_CLONES static void col_sums(real *restrict dst, const real *restrict x, int M, int E, int c0, int c1) {
    for (int cb = c0; cb < c1; cb += 64) {
        int w = c1 - cb < 64 ? c1 - cb : 64;
        real acc[64] = {0};
        for (int i = 0; i < M; i++)
            for (int c = 0; c < w; c++) acc[c] += x[(size_t)i * E + cb + c];
        for (int c = 0; c < w; c++) dst[cb + c] += acc[c];
    }
}

// g = y silu(z), one token: dz into dxz[:, E:], dy into g.
RB_CLONES static void gate_backward_row(MambaCtx *x, int i, int E) {
    real *restrict g = x->g + (size_t)i * E, *restrict dz = x->dxz + (size_t)i * 2 * E + E;
    const real *restrict z = x->xz + (size_t)i * 2 * E + E, *restrict y = x->y + (size_t)i * E;
    int c = 0;
#ifdef MAMBA_VEC
    for (; c + 16 <= E; c += 16) {
        rvec16 zv = rv_load(z + c), s = sigmoid16(zv), dg = rv_load(g + c);
        rv_store(dz + c, dg * rv_load(y + c) * s * (1 + zv * (1 - s)));
        rv_store(g + c, dg * zv * s);
    }
#endif
    for (; c < E; c++) {
        real zv = z[c], s = sigmoid(zv), dg = g[c];
        dz[c] = dg * y[c] * s * (1 + zv * (1 - s));
        g[c] = dg * zv * s;
    }
}

// xs = silu(xc), one token: dxs <- d xc.
RB_CLONES static void silu_backward_row(real *restrict dxs, const real *restrict xc, int E) {
    int c = 0;
#ifdef MAMBA_VEC
    for (; c + 16 <= E; c += 16) {
        rvec16 v = rv_load(xc + c), s = sigmoid16(v);
        rv_store(dxs + c, rv_load(dxs + c) * (s * (1 + v * (1 - s))));
    }
#endif
    for (; c < E; c++) {
        real v = xc[c], s = sigmoid(v);
        dxs[c] *= s * (1 + v * (1 - s));
    }
}

static void mamba_backward(Mixer *m, real *const *p, real *const *dp, real *dinp, const real *dout,
                           const real *inp, int B, int T) {
    MambaCtx *x = m->ctx;
    const int D = x->D, E = x->E, N = x->N, R = x->R, P = x->P, M = B * T;
    const int nthr = use_threads(x, M);
    const real *Dp = p[MAMBA_D];
    // out = g W_out^T: dW_out += dout^T g, then g <- dg = dout W_out.
    matmul_par(dp[MAMBA_W_OUT], dout, x->g, D, E, M, 1, 0, 1);
    matmul_par(x->g, dout, p[MAMBA_W_OUT], M, E, D, 0, 0, 0);
    // g = y silu(z): dz into dxz[:, E:], dy into g.
    #pragma omp parallel for schedule(static) num_threads(nthr)
    for (int i = 0; i < M; i++) gate_backward_row(x, i, E);
    real *ddelta = x->y;  // y is dead after dz
    scan_backward(x, ddelta, Dp, B, T, nthr);
    // Sum the partials over sequences (fixed order); A = -exp(A_log) so dA_log = dA * A.
    #pragma omp parallel for schedule(static) num_threads(nthr)
    for (int c = 0; c < E; c++) {
        real sd = 0;
        for (int b = 0; b < B; b++) sd += x->dD_part[(size_t)b * E + c];
        dp[MAMBA_D][c] += sd;
        for (int n = 0; n < N; n++) {
            real s = 0;
            for (int b = 0; b < B; b++) s += x->dA_part[((size_t)b * N + n) * E + c];
            dp[MAMBA_A_LOG][(size_t)c * N + n] += s * x->AT[(size_t)n * E + c];
        }
    }
    // delta = softplus(dt_pre): d dt_pre = d delta * sigmoid(dt_pre) = d delta * -expm1(-delta).
    #pragma omp parallel for schedule(static) num_threads(nthr)
    for (int i = 0; i < M; i++)
        for (int c = 0; c < E; c++) ddelta[(size_t)i * E + c] *= -r_expm1(-x->delta[(size_t)i * E + c]);
    #pragma omp parallel num_threads(nthr)
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        col_sums(dp[MAMBA_B_DT], ddelta, M, E, E * t / nt, E * (t + 1) / nt);
    }
    // dt_pre = dt_low W_dt^T: dW_dt [E,R] += ddt^T dt_low; d dt_low = ddt W_dt into dxdbl[:, :R].
    gemm_ld(dp[MAMBA_W_DT], R, ddelta, E, x->xdbl, P, E, R, M, 1, 0, 1, 1);
    gemm_ld(x->dxdbl, P, ddelta, E, p[MAMBA_W_DT], R, M, R, E, 0, 0, 1, 0);
    // xdbl = xs W_x^T.
    matmul_par(dp[MAMBA_W_X], x->dxdbl, x->xs, P, E, M, 1, 0, 1);
    matmul_par(x->dxs, x->dxdbl, p[MAMBA_W_X], M, E, P, 0, 0, 1);
    // xs = silu(xc): dxc in place of dxs.
    #pragma omp parallel for schedule(static) num_threads(nthr)
    for (int i = 0; i < M; i++) silu_backward_row(x->dxs + (size_t)i * E, x->xc + (size_t)i * E, E);
    conv_backward(x->dxz, dp[MAMBA_CONV_W], dp[MAMBA_CONV_B], x->dxs, x->xz, p[MAMBA_CONV_W], B, T,
                  E, nthr);
    // xz = inp W_in^T.
    matmul_par(dp[MAMBA_W_IN], x->dxz, inp, 2 * E, D, M, 1, 0, 1);
    matmul_par(dinp, x->dxz, p[MAMBA_W_IN], M, D, 2 * E, 0, 0, 0);
}

static size_t mamba_step_state_size(const Mixer *m) {
    return mamba_state_h_offset(&m->cfg) + mamba_state_h_size(&m->cfg);
}

// One token of one sequence (mamba_simple.py's Mamba.step): roll the conv buffer, one SSM update.
// Uses the ctx's step vectors: one step at a time per Mixer.
static void mamba_step(Mixer *m, real *const *p, real *state, real *out, const real *inp, int t) {
    MambaCtx *x = m->ctx;
    const int D = x->D, E = x->E, N = x->N, R = x->R, P = x->P;
    real *xz = x->sv, *xs = xz + 2 * E, *xdbl = xs + E, *dl = xdbl + P, *g = dl + E;
    real *cs = state + mamba_state_conv_offset(&m->cfg), *h = state + mamba_state_h_offset(&m->cfg);
    const real *w = p[MAMBA_CONV_W], *cb = p[MAMBA_CONV_B], *Dp = p[MAMBA_D];
    GEMV(CblasRowMajor, CblasNoTrans, 2 * E, D, 1, p[MAMBA_W_IN], D, inp, 1, 0, xz, 1);
    for (int c = 0; c < E; c++) {
        real *s = cs + (size_t)c * (K - 1), v = cb[c];
        for (int k = 0; k < K - 1; k++) v += w[(size_t)c * K + k] * s[k];
        v += w[(size_t)c * K + K - 1] * xz[c];
        for (int k = 0; k < K - 2; k++) s[k] = s[k + 1];
        s[K - 2] = xz[c];
        xs[c] = v * sigmoid(v);
    }
    GEMV(CblasRowMajor, CblasNoTrans, P, E, 1, p[MAMBA_W_X], E, xs, 1, 0, xdbl, 1);
    GEMV(CblasRowMajor, CblasNoTrans, E, R, 1, p[MAMBA_W_DT], R, xdbl, 1, 0, dl, 1);
    const real *Bt = xdbl + R, *Ct = Bt + N;
    for (int c = 0; c < E; c++) {
        real d = softplus(dl[c] + p[MAMBA_B_DT][c]), dx = d * xs[c], acc = 0;
        real *hc = h + (size_t)c * N;
        const real *al = p[MAMBA_A_LOG] + (size_t)c * N;
        for (int n = 0; n < N; n++) {
            hc[n] = exp_fast(d * -r_exp(al[n])) * hc[n] + dx * Bt[n];
            acc += Ct[n] * hc[n];
        }
        real yv = acc + Dp[c] * xs[c], zv = xz[E + c];
        g[c] = yv * zv * sigmoid(zv);
    }
    GEMV(CblasRowMajor, CblasNoTrans, D, E, 1, p[MAMBA_W_OUT], E, g, 1, 0, out, 1);
}

// The SSM state d_inner x N = expand*d*N; models.md's "2 d N" is this at the default expand 2
// (zoology's Mamba.state_size hard-codes 2*d_model*d_state). The conv buffer is not counted.
static double mamba_state_floats(const MixerCfg *c, int T) {
    return (double)c->expand * c->d * c->state_dim;
}

const MixerOps mamba_ops = {
    .name = "mamba",
    .validate = mamba_validate,
    .param_specs = mamba_param_specs,
    .init_custom = mamba_init_custom,
    .create = mamba_create,
    .destroy = mamba_destroy,
    .forward = mamba_forward,
    .backward = mamba_backward,
    .step_state_size = mamba_step_state_size,
    .step = mamba_step,
    .state_floats = mamba_state_floats,
    .state_formula = "expand*d*N",
};
