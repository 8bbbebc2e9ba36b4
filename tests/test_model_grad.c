// test_model_grad.c — finite-difference check (double) of the whole model: mean cross-entropy
// w.r.t. every parameter tensor (up to 24 sampled elements each), for shells with LayerNorm/RMSNorm,
// MLP, positions, and the conv, attention and swa mixers. Depends on model.h, mixcheck.h.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../models/layers.h"
#include "../models/model.h"
#include "mixcheck.h"

#ifndef RB_DOUBLE
#error "test_model_grad needs the double build"
#endif

static int check_model(const char *label, ModelCfg *cfg, int B, int T, uint64_t seed, double tol) {
    char err[256];
    Model *m = model_create(cfg, B, T, err, sizeof err);
    if (!m) { printf("FAIL %s: model_create: %s\n", label, err); return 1; }
    model_init(m, seed);
    Rng rng;
    rng_seed(&rng, seed + 1);
    // Move away from the 0.02 init so every path carries a sizeable gradient.
    real *p = model_params(m);
    for (size_t i = 0; i < model_num_params(m); i++) p[i] += (real)(0.3 * rng_normal(&rng));
    int32_t *tok = malloc((size_t)B * T * sizeof(int32_t)), pos[64], tgt[64];
    for (int i = 0; i < B * T; i++) tok[i] = (int32_t)rng_below(&rng, cfg->vocab);
    int np = 0;
    for (int b = 0; b < B; b++)
        for (int t = 1; t < T; t += 3) {
            pos[np] = b * T + t;
            tgt[np] = np % 5 == 2 ? -1 : (int32_t)rng_below(&rng, cfg->vocab);  // some ignored
            np++;
        }
    model_zero_grad(m);
    double loss = model_forward(m, tok, B, T, pos, tgt, np);
    model_backward(m);
    int fails = 0;
    const double h = 1e-5;
    for (int k = 0; k < model_num_tensors(m); k++) {
        const TensorInfo *ti = model_tensor(m, k);
        real *x = p + ti->offset, *g = model_grads(m) + ti->offset;
        double maxd = 0, maxn = 0;
        for (int s = 0; s < 24 && (size_t)s < ti->numel; s++) {
            size_t j = ti->numel <= 24 ? (size_t)s : rng_below(&rng, ti->numel);
            real save = x[j];
            x[j] = save + h; double lp = model_forward(m, tok, B, T, pos, tgt, np);
            x[j] = save - h; double lm = model_forward(m, tok, B, T, pos, tgt, np);
            x[j] = save;
            double num = (lp - lm) / (2 * h);
            maxd = fmax(maxd, fabs(num - g[j]));
            maxn = fmax(maxn, fabs(num));
        }
        char lab[160];
        snprintf(lab, sizeof lab, "%s %s", label, ti->name);
        fails += check_report(lab, maxd / fmax(maxn, 1e-8), tol);
    }
    // Second backward accumulates: grads must double.
    real *g1 = malloc(model_num_params(m) * sizeof(real));
    memcpy(g1, model_grads(m), model_num_params(m) * sizeof(real));
    model_forward(m, tok, B, T, pos, tgt, np);
    model_backward(m);
    double md = 0;
    for (size_t i = 0; i < model_num_params(m); i++) md = fmax(md, fabs(model_grads(m)[i] - 2 * g1[i]));
    char lab[160];
    snprintf(lab, sizeof lab, "%s grads accumulate (+=)", label);
    fails += check_report(lab, md, 1e-12);
    printf("     %s: loss %.6f over %d positions, %zu parameters\n", label, loss, np, model_num_params(m));
    free(g1); free(tok);
    model_free(m);
    return fails;
}

// Same batch twice -> bitwise equal loss and gradients (parallel loops reduce in a fixed order);
// then the same with one thread, which must match the multi-threaded run too.
static int check_determinism(void) {
    ModelCfg c;
    memset(&c, 0, sizeof c);
    c.vocab = 64; c.d_model = 32; c.n_layers = 2; c.mlp = 1; c.norm = NORM_LAYER;
    mixer_cfg_default(&c.layer[0], MIX_CONV, 32, 1, 2);
    mixer_cfg_default(&c.layer[1], MIX_ATTENTION, 32, 2, 2);
    const int B = 16, T = 70;
    char err[256];
    Model *m = model_create(&c, B, T, err, sizeof err);
    if (!m) { printf("FAIL determinism: %s\n", err); return 1; }
    model_init(m, 9);
    Rng rng;
    rng_seed(&rng, 10);
    int32_t tok[16 * 70], pos[16 * 8], tgt[16 * 8];
    for (int i = 0; i < B * T; i++) tok[i] = (int32_t)rng_below(&rng, 64);
    for (int i = 0; i < B * 8; i++) { pos[i] = (i / 8) * T + 20 + 6 * (i % 8); tgt[i] = (int32_t)rng_below(&rng, 64); }
    size_t P = model_num_params(m);
    real *g[3];
    double loss[3];
    int nthr[3] = {omp_get_max_threads(), omp_get_max_threads(), 1};
    for (int r = 0; r < 3; r++) {
        omp_set_num_threads(nthr[r]);
        model_zero_grad(m);
        loss[r] = model_forward(m, tok, B, T, pos, tgt, B * 8);
        model_backward(m);
        g[r] = malloc(P * sizeof(real));
        memcpy(g[r], model_grads(m), P * sizeof(real));
    }
    omp_set_num_threads(nthr[0]);
    char lab[128];
    snprintf(lab, sizeof lab, "determinism: two runs, %d threads, bitwise (loss, grads)", nthr[0]);
    int fails = check_report(lab, loss[0] != loss[1] || memcmp(g[0], g[1], P * sizeof(real)) ? 1 : 0, 0);
    double md = fabs(loss[0] - loss[2]);
    for (size_t i = 0; i < P; i++) md = fmax(md, fabs(g[0][i] - g[2][i]));
    snprintf(lab, sizeof lab, "determinism: %d threads vs 1 thread (max abs diff)", nthr[0]);
    fails += check_report(lab, md, 1e-12);
    for (int r = 0; r < 3; r++) free(g[r]);
    model_free(m);
    return fails;
}

static void layer(ModelCfg *c, int l, MixerKind k, int heads) {
    mixer_cfg_default(&c->layer[l], k, c->d_model, heads, c->n_layers);
}

int main(void) {
    const double tol = 1e-6;
    int fails = 0;
    ModelCfg c;

    memset(&c, 0, sizeof c);  // zoology's "attention + conv" shape with MLP and positions, LayerNorm
    c.vocab = 13; c.d_model = 8; c.n_layers = 2; c.mlp = 1; c.pos_emb = 1; c.max_len = 16; c.norm = NORM_LAYER;
    layer(&c, 0, MIX_CONV, 1);
    layer(&c, 1, MIX_ATTENTION, 2);
    fails += check_model("conv,attention mlp pos ln", &c, 2, 11, 101, tol);

    memset(&c, 0, sizeof c);  // RMSNorm, no MLP, swa with two windows, 3 layers
    c.vocab = 9; c.d_model = 8; c.n_layers = 3; c.norm = NORM_RMS;
    layer(&c, 0, MIX_CONV, 1);
    layer(&c, 1, MIX_SWA, 2);
    c.layer[1].window[0] = 2; c.layer[1].window[1] = 5;
    layer(&c, 2, MIX_ATTENTION, 1);
    fails += check_model("conv,swa,attention rms", &c, 2, 10, 202, tol);

    fails += check_determinism();
    printf("%s: %d model check(s) failed\n", fails ? "FAIL" : "PASS", fails);
    return fails ? 1 : 0;
}
