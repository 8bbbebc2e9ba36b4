// gsa.c — Gated Slot Attention (Zhang et al. 2024; models.md "gsa"), following fla's GatedSlotAttention.
// Depends on mixer.h, real.h (cblas GEMM for projections), OpenMP (scans over (b,h)).
//
// Per token x (fla fla/layers/gsa.py, fla/ops/gsa/naive.py, defaults expand_k = expand_v = 1, no short
// conv, no output gate, scale 1, feature_map 'swish', gate_logit_normalizer 8):
//   q = silu(W_q x), k = silu(W_k x), v = silu(W_v x)              [D], head h uses d_h = D/H dims
//   log alpha = logsigmoid(W_f x) / 8, s = 1 - alpha                 [H*m], m = slots per head
//   per head: K_t = diag(alpha) K_{t-1} + s k^T,  V_t = diag(alpha) V_{t-1} + s v^T   ([m, d_h] each)
//             o = V_t^T softmax(K_t q)                               (softmax over the m slots)
//   out = W_o RMSNorm(silu(o))   RMSNorm over all D (fla g_norm over hidden_size), weight, eps 1e-6
// Training form: both GLA passes of fla's two-pass algorithm fused into one exact sequential scan per
// (b,h) (the step form shares gsa_token). Backward: one forward re-scan (states) and one reverse scan
// (adjoints); the gate gradient uses the GLA identity d(cum log alpha)_t = p.dp + ok.dok - s.ds, so no
// per-token state is stored and nothing is divided by alpha.
#include "../layers.h"
#include "../mixer.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tgmath.h>

#include "gsa.h"  // GSA_NORM_EPS, GSA_GATE_NORMALIZER, the tensor order (shared with cuda/gsa.cu)

// rvec16 locals (layers.h) in the cloned scans: no vector crosses a call, the ABI note is moot.
#pragma GCC diagnostic ignored "-Wpsabi"

// Test-only hook (tests/test_gsa.c): alpha in [0, 1] replaces the learned gate everywhere (forward,
// step; its gradient is then 0). Negative = off (the default).
double gsa_test_force_alpha = -1;


typedef struct {
    int D, H, dh, m, Hm, Bmax, Tmax;
    real *qa, *ka, *va;     // [BT, D] pre-activations
    real *q, *k, *v;        // [BT, D] silu(.)
    real *fa, *alpha, *s;   // [BT, Hm] gate logits, alpha, 1 - alpha
    real *p;                // [BT, Hm] softmax over slots
    real *o;                // [BT, D] scan output
    real *rstd;             // [BT]
    real *dr, *dq, *dk, *dv;        // [BT, D] backward; from forward to the backward scans dk holds
                                    // y = silu(o) and dq holds r = RMSNorm(y) * w
    real *dok, *dS, *dG;            // [BT, Hm] backward; dG ends as the gate-logit gradient
    real *st;               // [Bmax*H, 4*m*d_h] scan states (K, V, and their adjoints)
    real *sx;               // step scratch: 10 D + 4 Hm
} GsaCtx;

// sigmoid through rb_exp (layers.h: vectorisable; libm's expf calls were 12% of a conv,gsa step),
// branch-free: e = exp(-|x|), 1/(1+e) or e/(1+e).
static inline real sigm(real x) {
    real e = rb_exp(-fabs(x)), r = 1 / (1 + e);
    return x >= 0 ? r : e * r;
}
static inline real logsigm(real x) { return x >= 0 ? -log1p(exp(-x)) : x - log1p(exp(x)); }
static inline real silu(real x) { return x * sigm(x); }
static inline real silu_grad(real x) {
    real g = sigm(x);
    return g * (1 + x * (1 - g));
}

// row = a row + s x in place; returns row . y (16 fixed lanes, pairwise tree: the same bits in
// every clone, where an omp simd reduction's order followed the vector width).
static inline real decay_dot(real *restrict row, real a, real s, const real *restrict x, const real *restrict y,
                             int n) {
    rvec16 acc = {0};
    int j = 0;
    for (; j + 16 <= n; j += 16) {
        rvec16 r = a * rv_load(row + j) + s * rv_load(x + j);
        rv_store(row + j, r);
        acc += r * rv_load(y + j);
    }
    for (; j < n; j++) {
        real r = a * row[j] + s * x[j];
        row[j] = r;
        acc[0] += r * y[j];
    }
    return rv_sum(acc);
}

static int gsa_validate(const MixerCfg *c, char *err, size_t errn) {
    if (c->heads < 1 || c->heads > RB_MAX_HEADS || c->d % c->heads != 0) {
        snprintf(err, errn, "--heads %d: must be in [1, %d] and divide --d-model %d", c->heads, RB_MAX_HEADS, c->d);
        return -1;
    }
    if (c->slots < 1 || c->slots > 4096) {
        snprintf(err, errn, "--slots %d: must be in [1, 4096]", c->slots);
        return -1;
    }
    return 0;
}

// Weights are stored [out, in] (y = x W^T), as nn.Linear. g_norm: the RMSNorm weight (init 1, no decay).
static int gsa_param_specs(const MixerCfg *c, ParamSpec *sp) {
    size_t D = (size_t)c->d, Hm = (size_t)c->heads * c->slots;
    sp[GSA_WQ] = (ParamSpec){"wq", D * D, INIT_NORMAL, 1};
    sp[GSA_WK] = (ParamSpec){"wk", D * D, INIT_NORMAL, 1};
    sp[GSA_WV] = (ParamSpec){"wv", D * D, INIT_NORMAL, 1};
    sp[GSA_WF] = (ParamSpec){"wf", Hm * D, INIT_NORMAL, 1};
    sp[GSA_NORM] = (ParamSpec){"g_norm", D, INIT_ONE, 0};
    sp[GSA_WO] = (ParamSpec){"wo", D * D, INIT_OUT, 1};
    return GSA_NT;
}

static void *gsa_create(const MixerCfg *c, int Bmax, int Tmax) {
    GsaCtx *x = calloc(1, sizeof *x);
    if (!x) return NULL;
    x->D = c->d; x->H = c->heads; x->dh = c->d / c->heads; x->m = c->slots; x->Hm = c->heads * c->slots;
    x->Bmax = Bmax; x->Tmax = Tmax;
    size_t N = (size_t)Bmax * Tmax, D = x->D, Hm = x->Hm;
    size_t st = (size_t)Bmax * x->H * 4 * x->m * x->dh;
    size_t total = N * D * 11 + N * Hm * 7 + N + st + 10 * D + 4 * Hm;
    real *w = rb_calloc(total, sizeof(real));  // aligned (layers.h)
    if (!w) { free(x); return NULL; }
    real **nd[] = {&x->qa, &x->ka, &x->va, &x->q, &x->k, &x->v, &x->o, &x->dr, &x->dq, &x->dk, &x->dv};
    for (size_t i = 0; i < sizeof nd / sizeof *nd; i++, w += N * D) *nd[i] = w;
    real **nh[] = {&x->fa, &x->alpha, &x->s, &x->p, &x->dok, &x->dS, &x->dG};
    for (size_t i = 0; i < sizeof nh / sizeof *nh; i++, w += N * Hm) *nh[i] = w;
    x->rstd = w; w += N;
    x->st = w; w += st;
    x->sx = w;
    return x;
}

static void gsa_destroy(void *ctx) {
    GsaCtx *x = ctx;
    if (!x) return;
    free(x->qa);  // the first carve of the one allocation
    free(x);
}

// q, k, v [N, D] = silu(qa, ka, va); alpha, s [N, Hm] from gate logits fa (fla: g = logsigmoid(f)/8,
// s = 1 - exp(g); expm1 keeps s accurate when alpha is near 1).
RB_CLONES static void gsa_activate_row(real *restrict q, real *restrict k, real *restrict v, const real *restrict qa,
                                       const real *restrict ka, const real *restrict va, int D) {
    for (int j = 0; j < D; j++) { q[j] = silu(qa[j]); k[j] = silu(ka[j]); v[j] = silu(va[j]); }
}

static void gsa_activate(real *q, real *k, real *v, real *alpha, real *s, const real *qa, const real *ka,
                         const real *va, const real *fa, int N, int D, int Hm) {
    double force = gsa_test_force_alpha;
#pragma omp parallel for schedule(static) if (N >= 64)
    for (int i = 0; i < N; i++) {
        size_t o = (size_t)i * D;
        gsa_activate_row(q + o, k + o, v + o, qa + o, ka + o, va + o, D);
        for (int j = 0; j < Hm; j++) {
            size_t n = (size_t)i * Hm + j;
            if (force >= 0) {
                alpha[n] = (real)force; s[n] = (real)(1 - force);
            } else {
                real g = logsigm(fa[n]) / (real)GSA_GATE_NORMALIZER;
                alpha[n] = exp(g); s[n] = -expm1(g);
            }
        }
    }
}

// One token of one head (both GLA passes): K, V [m, d_h] updated in place; p [m] = softmax(K q);
// o [d_h] = V^T p. Shared by the training scan and the step form.
RB_CLONES static void gsa_token(real *restrict K, real *restrict V, real *restrict p, real *restrict o,
                                const real *restrict q, const real *restrict k, const real *restrict v,
                                const real *restrict alpha, const real *restrict s, int m, int dh) {
    real mx = -INFINITY;
    for (int i = 0; i < m; i++) {
        real acc = decay_dot(K + (size_t)i * dh, alpha[i], s[i], k, q, dh);
        p[i] = acc;
        if (acc > mx) mx = acc;
    }
    real sum = 0;
    for (int i = 0; i < m; i++) { p[i] = rb_exp(p[i] - mx); sum += p[i]; }
    real inv = 1 / sum;
    for (int i = 0; i < m; i++) p[i] *= inv;
    for (int j = 0; j < dh; j++) o[j] = 0;
    for (int i = 0; i < m; i++) {
        real *row = V + (size_t)i * dh, a = alpha[i], si = s[i], pi = p[i];
        for (int j = 0; j < dh; j++) {
            row[j] = a * row[j] + si * v[j];
            o[j] += pi * row[j];
        }
    }
}

// y [N, D] = silu(o); r [N, D] = y * rstd * w with rstd [N] = 1/sqrt(mean(y^2) + eps).
RB_CLONES static void gsa_norm_row(real *restrict yi, real *restrict ri, real *restrict rstd, const real *restrict oi,
                                   const real *restrict w, int D) {
    real ss = 0;
    for (int j = 0; j < D; j++) yi[j] = silu(oi[j]);
    for (int j = 0; j < D; j++) ss += yi[j] * yi[j];
    real rs = 1 / sqrt(ss / D + (real)GSA_NORM_EPS);
    *rstd = rs;
    for (int j = 0; j < D; j++) ri[j] = yi[j] * rs * w[j];
}

static void gsa_norm_forward(real *y, real *r, real *rstd, const real *o, const real *w, int N, int D) {
#pragma omp parallel for schedule(static) if (N >= 64)
    for (int i = 0; i < N; i++)
        gsa_norm_row(y + (size_t)i * D, r + (size_t)i * D, rstd + i, o + (size_t)i * D, w, D);
}

static void gsa_forward(Mixer *mx, real *const *p, real *out, const real *inp, int B, int T) {
    GsaCtx *c = mx->ctx;
    const int N = B * T, D = c->D, H = c->H, dh = c->dh, m = c->m, Hm = c->Hm;
    matmul_par(c->qa, inp, p[GSA_WQ], N, D, D, 0, 1, 0);
    matmul_par(c->ka, inp, p[GSA_WK], N, D, D, 0, 1, 0);
    matmul_par(c->va, inp, p[GSA_WV], N, D, D, 0, 1, 0);
    matmul_par(c->fa, inp, p[GSA_WF], N, Hm, D, 0, 1, 0);
    gsa_activate(c->q, c->k, c->v, c->alpha, c->s, c->qa, c->ka, c->va, c->fa, N, D, Hm);
#pragma omp parallel for schedule(static)
    for (int bh = 0; bh < B * H; bh++) {
        const int b = bh / H, h = bh % H;
        real *K = c->st + (size_t)bh * 4 * m * dh, *V = K + (size_t)m * dh;
        memset(K, 0, 2 * (size_t)m * dh * sizeof(real));
        for (int t = 0; t < T; t++) {
            size_t i = (size_t)b * T + t, od = i * D + (size_t)h * dh, om = i * Hm + (size_t)h * m;
            gsa_token(K, V, c->p + om, c->o + od, c->q + od, c->k + od, c->v + od, c->alpha + om, c->s + om, m, dh);
        }
    }
    real *y = c->dk, *r = c->dq;  // kept for backward
    gsa_norm_forward(y, r, c->rstd, c->o, p[GSA_NORM], N, D);
    matmul_par(out, r, p[GSA_WO], N, D, D, 0, 1, 0);
}

// dw[j] += sum over rows i (in order) of dr y rstd, columns [j0, j1): row-contiguous loads (the
// column-at-a-time loop strode through memory).
RB_CLONES static void gsa_norm_dw(real *restrict dw, const real *restrict dr, const real *restrict y,
                                  const real *restrict rstd, int N, int D, int j0, int j1) {
    for (int c0 = j0; c0 < j1; c0 += 64) {
        int w = j1 - c0 < 64 ? j1 - c0 : 64;
        real acc[64] = {0};
        for (int i = 0; i < N; i++) {
            const real *g = dr + (size_t)i * D + c0, *yi = y + (size_t)i * D + c0;
            real rs = rstd[i];
            for (int j = 0; j < w; j++) acc[j] += g[j] * yi[j] * rs;
        }
        for (int j = 0; j < w; j++) dw[c0 + j] += acc[j];
    }
}

// dr -> do through r = w * y * rstd and y = silu(o), one row (in place).
RB_CLONES static void gsa_norm_bwd_row(real *restrict g, const real *restrict yi, const real *restrict oi,
                                       const real *restrict w, real rs, int D) {
    real dot = 0;
    for (int j = 0; j < D; j++) dot += w[j] * g[j] * yi[j];
    real cst = rs * rs * rs * dot / D;
    for (int j = 0; j < D; j++) g[j] = (rs * w[j] * g[j] - yi[j] * cst) * silu_grad(oi[j]);
}

RB_CLONES static void gsa_silu_bwd_row(real *restrict dq, real *restrict dk, real *restrict dv, const real *restrict qa,
                                       const real *restrict ka, const real *restrict va, int D) {
    for (int j = 0; j < D; j++) {
        dq[j] *= silu_grad(qa[j]);
        dk[j] *= silu_grad(ka[j]);
        dv[j] *= silu_grad(va[j]);
    }
}

// The backward scans of one (sequence b, head h); c->dr holds do. Reductions over d_h in 16 fixed
// lanes (rvec16) with a pairwise tree.
RB_CLONES static void gsa_scan_bwd(GsaCtx *c, int b, int h, int T, int forced) {
    const int D = c->D, dh = c->dh, m = c->m, Hm = c->Hm, bh = b * c->H + h;
    real *K = c->st + (size_t)bh * 4 * m * dh, *V = K + (size_t)m * dh;
    real *AK = V + (size_t)m * dh, *AV = AK + (size_t)m * dh;
    memset(K, 0, 4 * (size_t)m * dh * sizeof(real));
    // forward re-scan: dp_t = V_t do_t, dok_t = softmax backward, dq_t = K_t^T dok_t
    for (int t = 0; t < T; t++) {
        size_t i = (size_t)b * T + t, od = i * D + (size_t)h * dh, om = i * Hm + (size_t)h * m;
        const real *restrict q = c->q + od, *restrict k = c->k + od, *restrict v = c->v + od, *restrict dO = c->dr + od;
        const real *a = c->alpha + om, *s = c->s + om, *pp = c->p + om;
        real *restrict dok = c->dok + om, *restrict dG = c->dG + om, *restrict dq = c->dq + od, pdp = 0;
        for (int r = 0; r < m; r++) {
            real acc = decay_dot(V + (size_t)r * dh, a[r], s[r], v, dO, dh);
            dok[r] = acc;  // dp for now
            pdp += pp[r] * acc;
        }
        for (int r = 0; r < m; r++) {
            dG[r] = pp[r] * dok[r];
            dok[r] = pp[r] * (dok[r] - pdp);
        }
        for (int j = 0; j < dh; j++) dq[j] = 0;
        for (int r = 0; r < m; r++) {
            real *restrict row = K + (size_t)r * dh, ar = a[r], sr = s[r], g = dok[r];
            rvec16 ok = {0};
            int j = 0;
            for (; j + 16 <= dh; j += 16) {
                rvec16 x = ar * rv_load(row + j) + sr * rv_load(k + j);
                rv_store(row + j, x);
                ok += x * rv_load(q + j);
                rv_store(dq + j, rv_load(dq + j) + g * x);
            }
            for (; j < dh; j++) {
                real x = ar * row[j] + sr * k[j];
                row[j] = x;
                ok[0] += x * q[j];
                dq[j] += g * x;
            }
            dG[r] += rv_sum(ok) * g;
        }
    }
    // reverse scan: adjoints AV_t = p_t do_t^T + alpha_{t+1} AV_{t+1}, AK_t = dok_t q_t^T + alpha_{t+1} AK_{t+1}
    for (int t = T - 1; t >= 0; t--) {
        size_t i = (size_t)b * T + t, od = i * D + (size_t)h * dh, om = i * Hm + (size_t)h * m;
        const real *restrict q = c->q + od, *restrict k = c->k + od, *restrict v = c->v + od, *restrict dO = c->dr + od;
        const real *s = c->s + om, *pp = c->p + om, *dok = c->dok + om;
        const real *an = t + 1 < T ? c->alpha + om + Hm : NULL;
        real *restrict dk = c->dk + od, *restrict dv = c->dv + od, *dS = c->dS + om;
        for (int j = 0; j < dh; j++) { dk[j] = 0; dv[j] = 0; }
        for (int r = 0; r < m; r++) {
            real *restrict rv = AV + (size_t)r * dh, *restrict rk = AK + (size_t)r * dh;
            real ar = an ? an[r] : 0, sr = s[r], pr = pp[r], gr = dok[r];
            rvec16 ds = {0};
            int j = 0;
            for (; j + 16 <= dh; j += 16) {
                rvec16 xv = ar * rv_load(rv + j) + pr * rv_load(dO + j);
                rv_store(rv + j, xv);
                ds += xv * rv_load(v + j);
                rv_store(dv + j, rv_load(dv + j) + sr * xv);
                rvec16 xk = ar * rv_load(rk + j) + gr * rv_load(q + j);
                rv_store(rk + j, xk);
                ds += xk * rv_load(k + j);
                rv_store(dk + j, rv_load(dk + j) + sr * xk);
            }
            for (; j < dh; j++) {
                real xv = ar * rv[j] + pr * dO[j];
                rv[j] = xv;
                ds[0] += xv * v[j];
                dv[j] += sr * xv;
                real xk = ar * rk[j] + gr * q[j];
                rk[j] = xk;
                ds[0] += xk * k[j];
                dk[j] += sr * xk;
            }
            dS[r] = rv_sum(ds);
        }
    }
    // gates: dlog alpha_t = sum_{t' >= t} (dG - s dS)_{t'}; plus s = 1 - alpha; log alpha = logsigmoid(f)/8
    for (int r = 0; r < m; r++) {
        real cum = 0;
        for (int t = T - 1; t >= 0; t--) {
            size_t n = ((size_t)b * T + t) * Hm + (size_t)h * m + r;
            cum += c->dG[n] - c->s[n] * c->dS[n];
            real dlog = cum - c->dS[n] * c->alpha[n];
            c->dG[n] = forced ? 0 : dlog * sigm(-c->fa[n]) / (real)GSA_GATE_NORMALIZER;
        }
    }
}

static void gsa_backward(Mixer *mx, real *const *p, real *const *dp, real *dinp, const real *dout,
                         const real *inp, int B, int T) {
    GsaCtx *c = mx->ctx;
    const int N = B * T, D = c->D, H = c->H, Hm = c->Hm;
    const real *w = p[GSA_NORM], *y = c->dk, *r = c->dq;  // from forward
    // out = r W_o^T
    matmul_par(c->dr, dout, p[GSA_WO], N, D, D, 0, 0, 0);
    matmul_par(dp[GSA_WO], dout, r, D, D, N, 1, 0, 1);
    // r = w * y * rstd: dw (fixed order over tokens), then dr -> dy -> do in place
    real *dw = dp[GSA_NORM];
#pragma omp parallel
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        gsa_norm_dw(dw, c->dr, y, c->rstd, N, D, D * t / nt, D * (t + 1) / nt);
    }
#pragma omp parallel for schedule(static) if (N >= 64)
    for (int i = 0; i < N; i++)
        gsa_norm_bwd_row(c->dr + (size_t)i * D, y + (size_t)i * D, c->o + (size_t)i * D, w, c->rstd[i], D);
    // scans: c->dr now holds do [N, D]
    const int forced = gsa_test_force_alpha >= 0;
#pragma omp parallel for schedule(static)
    for (int bh = 0; bh < B * H; bh++) gsa_scan_bwd(c, bh / H, bh % H, T, forced);
    // silu backward to the pre-activations, then the projections
#pragma omp parallel for schedule(static) if (N >= 64)
    for (int i = 0; i < N; i++) {
        size_t o = (size_t)i * D;
        gsa_silu_bwd_row(c->dq + o, c->dk + o, c->dv + o, c->qa + o, c->ka + o, c->va + o, D);
    }
    matmul_par(dinp, c->dq, p[GSA_WQ], N, D, D, 0, 0, 0);
    matmul_par(dinp, c->dk, p[GSA_WK], N, D, D, 0, 0, 1);
    matmul_par(dinp, c->dv, p[GSA_WV], N, D, D, 0, 0, 1);
    matmul_par(dinp, c->dG, p[GSA_WF], N, D, Hm, 0, 0, 1);
    matmul_par(dp[GSA_WQ], c->dq, inp, D, D, N, 1, 0, 1);
    matmul_par(dp[GSA_WK], c->dk, inp, D, D, N, 1, 0, 1);
    matmul_par(dp[GSA_WV], c->dv, inp, D, D, N, 1, 0, 1);
    matmul_par(dp[GSA_WF], c->dG, inp, Hm, D, N, 1, 0, 1);
}

// State per sequence: per head [K (m x d_h), V (m x d_h)] = 2 m D floats in all.
static size_t gsa_step_state_size(const Mixer *mx) {
    const GsaCtx *c = mx->ctx;
    return (size_t)c->H * 2 * c->m * c->dh;
}

static void gsa_step(Mixer *mx, real *const *p, real *state, real *out, const real *x, int t) {
    GsaCtx *c = mx->ctx;
    const int D = c->D, H = c->H, dh = c->dh, m = c->m, Hm = c->Hm;
    real *qa = c->sx, *ka = qa + D, *va = ka + D, *q = va + D, *k = q + D, *v = k + D, *o = v + D;
    real *y = o + D, *r = y + D, *rs = r + D;
    real *fa = rs + D, *alpha = fa + Hm, *s = alpha + Hm, *pp = s + Hm;
    matmul(qa, x, p[GSA_WQ], 1, D, D, 0, 1, 0);
    matmul(ka, x, p[GSA_WK], 1, D, D, 0, 1, 0);
    matmul(va, x, p[GSA_WV], 1, D, D, 0, 1, 0);
    matmul(fa, x, p[GSA_WF], 1, Hm, D, 0, 1, 0);
    gsa_activate(q, k, v, alpha, s, qa, ka, va, fa, 1, D, Hm);
    for (int h = 0; h < H; h++) {
        real *K = state + (size_t)h * 2 * m * dh, *V = K + (size_t)m * dh;
        gsa_token(K, V, pp + (size_t)h * m, o + (size_t)h * dh, q + (size_t)h * dh, k + (size_t)h * dh,
                  v + (size_t)h * dh, alpha + (size_t)h * m, s + (size_t)h * m, m, dh);
    }
    gsa_norm_forward(y, r, rs, o, p[GSA_NORM], 1, D);
    matmul(out, r, p[GSA_WO], 1, D, D, 0, 1, 0);
}

// models.md: 2 m d per layer (per head m x (d_h + d_h), summed over heads).
static double gsa_state_floats(const MixerCfg *c, int T) { return 2.0 * c->slots * c->d; }

const MixerOps gsa_ops = {
    .name = "gsa",
    .validate = gsa_validate,
    .param_specs = gsa_param_specs,
    .init_custom = NULL,
    .create = gsa_create,
    .destroy = gsa_destroy,
    .forward = gsa_forward,
    .backward = gsa_backward,
    .step_state_size = gsa_step_state_size,
    .step = gsa_step,
    .state_floats = gsa_state_floats,
    .state_formula = "2*m*d",
};
