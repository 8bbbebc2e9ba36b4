// attention.c — causal multi-head softmax attention (models.md table: state 2 d L), and the code
// it shares with swa.c (attention.h). Depends on layers.h (mha_* core, linear), mixer.h.
// Follows zoology's MHA: one fused Wqkv projection with bias, out_proj with bias (INIT_OUT).
#include "attention.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../layers.h"

typedef struct {
    int D, H, dh, windowed, Bmax, Tmax, nscratch;
    int window[RB_MAX_HEADS];  // attention core window per head (0 = all past tokens)
    int cap[RB_MAX_HEADS];     // step cache rows per head: Tmax (attention) or W_h (swa ring)
    size_t off[RB_MAX_HEADS];  // head h's K rows at state + off[h], V rows right after
    size_t state_size;
    real *qkv;      // [Bmax*Tmax, 3D] saved projections
    real *att;      // [Bmax*Tmax, D] core output (before wo), saved
    real *lse;      // [Bmax, H, Tmax] row log-sum-exp, saved
    real *dqkv;     // [Bmax*Tmax, 3D]
    real *datt;     // [Bmax*Tmax, D]
    real *scratch;  // nscratch x mha_scratch_floats(Tmax)
    real *keep;     // [Bmax, kstride] probabilities kept for backward, or NULL (over ATTN_KEEP_BYTES)
    size_t kstride;
    real *sq, *so, *ssc;  // step: qkv [3D], core out [D], scores [max cap]
    real *wT;       // [4 D^2] Wqkv^T, Wo^T (forward)
    real *bpart;    // [Bmax, 4D] per-sequence bias-gradient partials (bo, bqkv)
} AttnCtx;

int attn_validate_heads(const MixerCfg *c, char *err, size_t errn) {
    if (c->d < 1) { snprintf(err, errn, "--d-model %d out of range: must be >= 1", c->d); return -1; }
    if (c->heads < 1 || c->heads > RB_MAX_HEADS) {
        snprintf(err, errn, "--heads %d out of range: must be in [1, %d]", c->heads, RB_MAX_HEADS);
        return -1;
    }
    if (c->d % c->heads) {
        snprintf(err, errn, "--heads %d out of range: must divide --d-model %d", c->heads, c->d);
        return -1;
    }
    return 0;
}

int attn_param_specs(const MixerCfg *c, ParamSpec *s) {
    size_t D = (size_t)c->d;
    s[0] = (ParamSpec){"wqkv", 3 * D * D, INIT_NORMAL, 1};
    s[1] = (ParamSpec){"bqkv", 3 * D, INIT_ZERO, 0};
    s[2] = (ParamSpec){"wo", D * D, INIT_OUT, 1};
    s[3] = (ParamSpec){"bo", D, INIT_ZERO, 0};
    return 4;
}

void attn_destroy(void *ctx) {
    AttnCtx *a = ctx;
    if (!a) return;
    free(a->qkv); free(a->att); free(a->lse); free(a->dqkv); free(a->datt); free(a->scratch); free(a->keep);
    free(a->sq); free(a->so); free(a->ssc); free(a->wT); free(a->bpart);
    free(a);
}

// Backward reuses the forward's probabilities while they fit in this (3 MB at the reference config,
// L 128 B 64; 38 MB at L 512): no scores GEMM, no exp and no k^T per block in backward. At the
// reference config, one thread, 64 sequences: core backward 5.3 -> 3.9 ms, forward 3.3 -> 3.7 ms
// (the exp moves there). Longer sequences recompute them (layers.h): the same bits.
#define ATTN_KEEP_BYTES ((size_t)64 << 20)

void *attn_create(const MixerCfg *c, int Bmax, int Tmax, int windowed) {
    rb_blas_single_thread();
    AttnCtx *a = rb_calloc(1, sizeof *a);
    if (!a) return NULL;
    a->D = c->d; a->H = c->heads; a->dh = c->d / c->heads; a->windowed = windowed;
    a->Bmax = Bmax; a->Tmax = Tmax;
    a->nscratch = omp_get_max_threads();
    int maxcap = 1;
    size_t off = 0;
    for (int h = 0; h < a->H; h++) {
        a->window[h] = windowed ? c->window[h] : 0;
        a->cap[h] = windowed ? c->window[h] : Tmax;
        a->off[h] = off;
        off += 2 * (size_t)a->cap[h] * a->dh;
        if (a->cap[h] > maxcap) maxcap = a->cap[h];
    }
    a->state_size = off;
    size_t BT = (size_t)Bmax * Tmax, D = a->D;
    a->qkv = rb_calloc(1, BT * 3 * D * sizeof(real));
    a->att = rb_calloc(1, BT * D * sizeof(real));
    a->lse = rb_calloc(1, (size_t)Bmax * a->H * Tmax * sizeof(real));
    a->dqkv = rb_calloc(1, BT * 3 * D * sizeof(real));
    a->datt = rb_calloc(1, BT * D * sizeof(real));
    a->scratch = rb_calloc(a->nscratch * mha_scratch_floats(Tmax), sizeof(real));  // pad columns defined
    a->kstride = mha_keep_floats(a->window, Tmax, a->H);  // window 0: all past tokens
    if ((size_t)Bmax * a->kstride * sizeof(real) <= ATTN_KEEP_BYTES) {
        a->keep = rb_calloc((size_t)Bmax * a->kstride, sizeof(real));  // pad columns defined
        if (!a->keep) { attn_destroy(a); return NULL; }
    }
    a->sq = rb_calloc(1, 3 * D * sizeof(real));
    a->so = rb_calloc(1, D * sizeof(real));
    a->ssc = rb_calloc(1, (size_t)maxcap * sizeof(real));
    a->wT = rb_calloc(1, 4 * D * D * sizeof(real));
    a->bpart = rb_calloc(1, (size_t)Bmax * 4 * D * sizeof(real));
    if (!a->qkv || !a->att || !a->lse || !a->dqkv || !a->datt || !a->scratch || !a->sq || !a->so || !a->ssc || !a->wT ||
        !a->bpart) {
        attn_destroy(a);
        return NULL;
    }
    return a;
}

// Forward and backward run one sequence at a time per thread, projections included: its q, k, v
// (96 KB at d 64, L 128) are still in L2 when the core reads and transposes them, and one parallel
// region replaces three. The GEMMs give every element the same bits for any row split
// (layers.c), so this is the same arithmetic as whole-batch projections.
void attn_forward(Mixer *m, real *const *p, real *out, const real *inp, int B, int T) {
    AttnCtx *a = m->ctx;
    const int D = a->D;
    const size_t sstride = mha_scratch_floats(T);
    const int nt = a->nscratch < omp_get_max_threads() ? a->nscratch : omp_get_max_threads();
    // W^T once per call (tb = 0 GEMMs: no packing of W^T in every sequence's call)
    real *wqkvT = a->wT, *woT = a->wT + 3 * (size_t)D * D;
    for (int i = 0; i < 3 * D; i++)
        for (int c = 0; c < D; c++) wqkvT[(size_t)c * 3 * D + i] = p[0][(size_t)i * D + c];
    for (int i = 0; i < D; i++)
        for (int c = 0; c < D; c++) woT[(size_t)c * D + i] = p[2][(size_t)i * D + c];
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)  // a descheduled thread's sequences go to the others
    for (int b = 0; b < B; b++) {
        size_t r = (size_t)b * T;
        real *qkv = a->qkv + r * 3 * D, *att = a->att + r * D;
        gemm_ld_ci(qkv, 3 * D, p[1], 0, inp + r * D, D, wqkvT, 3 * D, T, 3 * D, D, 0, 0, 1, 1);  // bqkv + x Wqkv^T
        mha_forward_seq(att, D, a->lse + r * a->H, a->keep ? a->keep + b * a->kstride : NULL, qkv, qkv + D, qkv + 2 * D, 3 * D, a->windowed ? a->window : NULL,
                        T, a->H, a->dh, a->scratch + sstride * omp_get_thread_num());
        gemm_ld_ci(out + r * D, D, p[3], 0, att, D, woT, D, T, D, D, 0, 0, 1, 1);  // bo + att Wo^T
    }
}

// part [n] = sum over the T rows (in order) of x [T, n] (row stride ld): one sequence's share of a
// bias gradient, taken while its rows are in cache.
RB_CLONES static void col_partial(real *restrict part, const real *restrict x, int ld, int T, int n) {
    for (int c = 0; c < n; c++) part[c] = 0;
    for (int t = 0; t < T; t++)
        for (int c = 0; c < n; c++) part[c] += x[(size_t)t * ld + c];
}

// dst [n] += the sums over B partials (stride ps) in sequence order.
RB_CLONES static void partial_reduce(real *restrict dst, const real *restrict part, size_t ps, int B, int n) {
    for (int c = 0; c < n; c++) {
        real s = 0;
        for (int b = 0; b < B; b++) s += part[(size_t)b * ps + c];
        dst[c] += s;
    }
}

void attn_backward(Mixer *m, real *const *p, real *const *dp, real *dinp, const real *dout,
                   const real *inp, int B, int T) {
    AttnCtx *a = m->ctx;
    const int D = a->D, BT = B * T;
    const size_t sstride = mha_scratch_floats(T);
    const int nt = a->nscratch < omp_get_max_threads() ? a->nscratch : omp_get_max_threads();
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)  // a descheduled thread's sequences go to the others
    for (int b = 0; b < B; b++) {
        size_t r = (size_t)b * T;
        real *dqkv = a->dqkv + r * 3 * D, *datt = a->datt + r * D;
        const real *qkv = a->qkv + r * 3 * D;
        gemm_ld(datt, D, dout + r * D, D, p[2], D, T, D, D, 0, 0, 1, 0);  // datt = dout Wo
        mha_backward_seq(dqkv, dqkv + D, dqkv + 2 * D, 3 * D, datt, D, a->lse + r * a->H,
                         a->keep ? a->keep + b * a->kstride : NULL, qkv, qkv + D, qkv + 2 * D,
                         3 * D, a->windowed ? a->window : NULL, T, a->H, a->dh,
                         a->scratch + sstride * omp_get_thread_num());
        gemm_ld(dinp + r * D, D, dqkv, 3 * D, p[0], D, T, D, 3 * D, 0, 0, 1, 0);  // dinp = dqkv Wqkv
        col_partial(a->bpart + (size_t)b * 4 * D, dout + r * D, D, T, D);               // bo
        col_partial(a->bpart + (size_t)b * 4 * D + D, dqkv, 3 * D, T, 3 * D);           // bqkv
    }
    // weight gradients: sums over all B*T rows (whole-batch GEMMs, K never split); biases: the
    // per-sequence partials in sequence order
    linear_backward(NULL, dp[2], NULL, dout, a->att, p[2], BT, D, D, 0);
    linear_backward(NULL, dp[0], NULL, a->dqkv, inp, p[0], BT, D, 3 * D, 0);
    partial_reduce(dp[3], a->bpart, 4 * (size_t)D, B, D);
    partial_reduce(dp[1], a->bpart + D, 4 * (size_t)D, B, 3 * D);
}

size_t attn_step_state_size(const Mixer *m) { return ((const AttnCtx *)m->ctx)->state_size; }

// KV cache: head h keeps cap[h] rows of k and of v; token t goes to row t % cap[h]. For attention
// cap = Tmax (t must stay < Tmax), for swa cap = W_h: the ring buffer is the recurrent state.
void attn_step(Mixer *m, real *const *p, real *state, real *out, const real *x, int t) {
    AttnCtx *a = m->ctx;
    int D = a->D, dh = a->dh;
    memcpy(a->sq, p[1], 3 * D * sizeof(real));
    GEMV(CblasRowMajor, CblasNoTrans, 3 * D, D, 1, p[0], D, x, 1, 1, a->sq, 1);
    for (int h = 0; h < a->H; h++) {
        int cap = a->cap[h], slot = t % cap, n = t + 1 < cap ? t + 1 : cap;
        real *K = state + a->off[h], *V = K + (size_t)cap * dh;
        memcpy(K + (size_t)slot * dh, a->sq + D + h * dh, dh * sizeof(real));
        memcpy(V + (size_t)slot * dh, a->sq + 2 * D + h * dh, dh * sizeof(real));
        mha_step(a->so + h * dh, a->sq + h * dh, K, V, n, dh, dh, a->ssc);
    }
    memcpy(out, p[3], D * sizeof(real));
    GEMV(CblasRowMajor, CblasNoTrans, D, D, 1, p[2], D, a->so, 1, 1, out, 1);
}

static int attention_validate(const MixerCfg *c, char *err, size_t errn) { return attn_validate_heads(c, err, errn); }
static void *attention_create(const MixerCfg *c, int Bmax, int Tmax) { return attn_create(c, Bmax, Tmax, 0); }
// K and V of every past token: 2 d L floats.
static double attention_state_floats(const MixerCfg *c, int T) { return 2.0 * c->d * T; }

const MixerOps attention_ops = {
    .name = "attention",
    .validate = attention_validate,
    .param_specs = attn_param_specs,
    .init_custom = NULL,
    .create = attention_create,
    .destroy = attn_destroy,
    .forward = attn_forward,
    .backward = attn_backward,
    .step_state_size = attn_step_state_size,
    .step = attn_step,
    .state_floats = attention_state_floats,
    .state_formula = "2*d*L",
};
