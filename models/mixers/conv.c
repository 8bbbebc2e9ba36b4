// conv.c — BaseConv (zoology mixers/base_conv.py): y = shortconv_3(u) * (W u + b) + u, with a
// depthwise causal kernel k = 3 with bias. Depends on layers.h (shortconv, linear), mixer.h.
// The "+ u" is zoology's own skip inside BaseConv.forward (`return y + u`), on top of the block's
// residual, which the shell adds: the layer computes x + (conv(n) * proj(n) + n), n = norm(x).
// Init: projection N(0, 0.02) / bias 0 (zoology _init_weights for nn.Linear); the Conv1d keeps
// PyTorch's default, U(-1/sqrt(k), 1/sqrt(k)) for kernel and bias (zoology never re-inits it).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../layers.h"
#include "../mixer.h"

#define CONV_K 3

typedef struct {
    int D;
    real *uc;   // [Bmax*Tmax, D] shortconv(u), saved
    real *up;   // [Bmax*Tmax, D] W u + b, saved
    real *g, *g2;  // [Bmax*Tmax, D] x2 scratch for backward: d(up), d(uc)
    real *wT;      // [D, D] proj_w^T (forward)
    real *wpart;   // [Bmax, K+1, D] per-sequence conv kernel/bias gradient partials
} ConvCtx;

static int conv_validate(const MixerCfg *c, char *err, size_t errn) {
    if (c->d < 1) { snprintf(err, errn, "--d-model %d out of range: must be >= 1", c->d); return -1; }
    return 0;
}

static int conv_param_specs(const MixerCfg *c, ParamSpec *s) {
    size_t D = (size_t)c->d;
    s[0] = (ParamSpec){"proj_w", D * D, INIT_NORMAL, 1};
    s[1] = (ParamSpec){"proj_b", D, INIT_ZERO, 0};
    s[2] = (ParamSpec){"conv_w", D * CONV_K, INIT_CUSTOM, 1};  // [D, k]; tap k-1 = current token
    s[3] = (ParamSpec){"conv_b", D, INIT_CUSTOM, 0};
    return 4;
}

static void conv_init_custom(const MixerCfg *c, real *const *p, Rng *rng) {
    double bound = 1 / sqrt((double)CONV_K);  // PyTorch Conv1d default, fan_in = k (groups = d)
    for (size_t i = 0; i < (size_t)c->d * CONV_K; i++) p[2][i] = (real)(bound * (2 * rng_uniform(rng) - 1));
    for (int i = 0; i < c->d; i++) p[3][i] = (real)(bound * (2 * rng_uniform(rng) - 1));
}

static void conv_destroy(void *ctx) {
    ConvCtx *a = ctx;
    if (!a) return;
    free(a->uc); free(a->up); free(a->g); free(a->g2); free(a->wT); free(a->wpart); free(a);
}

static void *conv_create(const MixerCfg *c, int Bmax, int Tmax) {
    rb_blas_single_thread();
    ConvCtx *a = rb_calloc(1, sizeof *a);
    if (!a) return NULL;
    a->D = c->d;
    size_t n = (size_t)Bmax * Tmax * c->d * sizeof(real);
    a->uc = rb_calloc(1, n); a->up = rb_calloc(1, n); a->g = rb_calloc(1, n); a->g2 = rb_calloc(1, n);
    a->wT = rb_calloc(1, (size_t)c->d * c->d * sizeof(real));
    a->wpart = rb_calloc(1, (size_t)Bmax * (CONV_K + 1) * c->d * sizeof(real));
    if (!a->uc || !a->up || !a->g || !a->g2 || !a->wT || !a->wpart) { conv_destroy(a); return NULL; }
    return a;
}

// Forward and backward one sequence at a time per thread (the conv never crosses a sequence), the
// projection's GEMM included: its rows are still in cache for the conv pass, and one parallel
// region replaces two (three in backward). Same bits as whole-batch passes (GEMM elements do not
// depend on the row split). The weight gradients stay whole-batch sums.
static void conv_forward(Mixer *m, real *const *p, real *out, const real *inp, int B, int T) {
    ConvCtx *a = m->ctx;
    const int D = a->D;
    const real *wt = shortconv_wt(p[2], D, CONV_K);
    for (int i = 0; i < D; i++)  // W^T once per call (tb = 0 GEMMs: no packing per sequence)
        for (int c = 0; c < D; c++) a->wT[(size_t)c * D + i] = p[0][(size_t)i * D + c];
#pragma omp parallel for schedule(dynamic, 1)
    for (int b = 0; b < B; b++) {
        int r = b * T;
        gemm_ld_ci(a->up + (size_t)r * D, D, p[1], 0, inp + (size_t)r * D, D, a->wT, D, T, D, D, 0, 0, 1, 1);
        shortconv_gated_forward_rows(a->uc, out, inp, p[2], wt, p[3], a->up, r, r + T, T, D, CONV_K);  // out = uc up + inp
    }
}

// d(up) = dout * uc, d(uc) = dout * up, in one pass.
RB_CLONES static void conv_bwd_gates(real *restrict gup, real *restrict guc, const real *restrict dout,
                                     const real *restrict uc, const real *restrict up, size_t i0, size_t i1) {
    for (size_t i = i0; i < i1; i++) {
        gup[i] = dout[i] * uc[i];
        guc[i] = dout[i] * up[i];
    }
}

// One sequence's kernel/bias gradient partials, part [(K+1), D] (tap j at row j, bias at row K),
// its rows in order, while they are in cache.
RB_CLONES static void conv_w_partial(real *restrict part, const real *restrict g, const real *restrict inp, int r, int T,
                                     int D) {
    for (int i = 0; i < (CONV_K + 1) * D; i++) part[i] = 0;
    for (int t = 0; t < T; t++) {
        const real *gr = g + (size_t)(r + t) * D;
        real *pb = part + (size_t)CONV_K * D;
        for (int c = 0; c < D; c++) pb[c] += gr[c];
        for (int j = 0; j < CONV_K; j++) {
            int s = t - (CONV_K - 1) + j;
            if (s < 0) continue;
            const real *x = inp + (size_t)(r + s) * D;
            real *pj = part + (size_t)j * D;
            for (int c = 0; c < D; c++) pj[c] += gr[c] * x[c];
        }
    }
}

// dw [D, K] +=, db [D] += the sums of the B partials in sequence order, columns [c0, c1).
RB_CLONES static void conv_w_reduce(real *restrict dw, real *restrict db, const real *restrict part, int B, int D,
                                    int c0, int c1) {
    const size_t ps = (size_t)(CONV_K + 1) * D;
    for (int j = 0; j <= CONV_K; j++)
        for (int cb = c0; cb < c1; cb += 64) {
            int w = c1 - cb < 64 ? c1 - cb : 64;
            real acc[64] = {0};
            for (int b = 0; b < B; b++) {
                const real *q = part + b * ps + (size_t)j * D + cb;
                for (int c = 0; c < w; c++) acc[c] += q[c];
            }
            for (int c = 0; c < w; c++) {
                if (j < CONV_K) dw[(size_t)(cb + c) * CONV_K + j] += acc[c];
                else db[cb + c] += acc[c];
            }
        }
}

static void conv_backward(Mixer *m, real *const *p, real *const *dp, real *dinp, const real *dout,
                          const real *inp, int B, int T) {
    ConvCtx *a = m->ctx;
    const int D = a->D;
    const real *wt = shortconv_wt(p[2], D, CONV_K);
#pragma omp parallel for schedule(dynamic, 1)
    for (int b = 0; b < B; b++) {
        int r = b * T;
        size_t o = (size_t)r * D;
        conv_bwd_gates(a->g, a->g2, dout, a->uc, a->up, o, o + (size_t)T * D);
        // dinp = dout (the "+ u" skip) + d(up) W, then += the conv's input gradient
        gemm_ld_ci(dinp + o, D, dout + o, D, a->g + o, D, p[0], D, T, D, D, 0, 0, 1, 1);
        shortconv_backward_rows(dinp, a->g2, p[2], wt, r, r + T, T, D, CONV_K);
        conv_w_partial(a->wpart + (size_t)b * (CONV_K + 1) * D, a->g2, inp, r, T, D);
    }
    linear_backward(NULL, dp[0], dp[1], a->g, inp, p[0], B * T, D, D, 0);  // dW, db
#pragma omp parallel for schedule(dynamic, 1)
    for (int c0 = 0; c0 < D; c0 += 16) conv_w_reduce(dp[2], dp[3], a->wpart, B, D, c0, c0 + 16 < D ? c0 + 16 : D);
}

// Step state: the previous k-1 = 2 inputs, [2, D] (row 0 = u_{t-2}, row 1 = u_{t-1}).
static size_t conv_step_state_size(const Mixer *m) { return (size_t)(CONV_K - 1) * m->cfg.d; }

static void conv_step(Mixer *m, real *const *p, real *state, real *out, const real *x, int t) {
    int D = m->cfg.d;
    const real *w = p[2], *cb = p[3];
    real *u2 = state, *u1 = state + D;  // zeroed before t = 0: the causal padding
    memcpy(out, p[1], D * sizeof(real));
    GEMV(CblasRowMajor, CblasNoTrans, D, D, 1, p[0], D, x, 1, 1, out, 1);
    for (int c = 0; c < D; c++) {
        real uc = cb[c] + w[c * CONV_K + 0] * u2[c] + w[c * CONV_K + 1] * u1[c] + w[c * CONV_K + 2] * x[c];
        out[c] = uc * out[c] + x[c];
    }
    memcpy(u2, u1, D * sizeof(real));
    memcpy(u1, x, D * sizeof(real));
}

// Counted as the issue / models.md state it: 3 d floats per conv layer (the k = 3 tap window).
static double conv_state_floats(const MixerCfg *c, int T) { return 3.0 * c->d; }

const MixerOps conv_ops = {
    .name = "conv",
    .validate = conv_validate,
    .param_specs = conv_param_specs,
    .init_custom = conv_init_custom,
    .create = conv_create,
    .destroy = conv_destroy,
    .forward = conv_forward,
    .backward = conv_backward,
    .step_state_size = conv_step_state_size,
    .step = conv_step,
    .state_floats = conv_state_floats,
    .state_formula = "3*d",
};
