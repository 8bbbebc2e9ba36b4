// test_threads.c — the numbers must not depend on the OpenMP thread count (issue 14 item 11): one
// training step (forward, backward, AdamW) of the float model, for every mixer, with 1, 2 and 3
// threads; loss, gradients and updated parameters must be bit-identical. Depends on model.h, optim.h.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../models/layers.h"
#include "../models/model.h"
#include "../models/optim.h"

#ifdef RB_DOUBLE
#error "test_threads checks the float (training) build"
#endif

typedef struct {
    double loss;
    real *grads, *params;
    size_t P;
} StepOut;

// One step at nt threads; the model is created after the thread count is set (mixers size their
// per-thread scratch at create).
static int run_step(StepOut *o, const ModelCfg *cfg, int nt, int B, int T, const int32_t *tok, const int32_t *pos,
                    const int32_t *tgt, int np) {
#ifdef _OPENMP
    omp_set_num_threads(nt);
#else
    (void)nt;
#endif
    char err[256];
    Model *m = model_create(cfg, B, T, err, sizeof err);
    if (!m) { printf("FAIL model_create: %s\n", err); return 1; }
    model_init(m, 7);
    AdamWCfg oc = {3e-3, 0.9, 0.999, 1e-8, 0.1, 1.0, 0};
    Optim *opt = optim_create(m, &oc);
    model_zero_grad(m);
    o->loss = model_forward(m, tok, B, T, pos, tgt, np);
    model_backward(m);
    o->P = model_num_params(m);
    o->grads = malloc(o->P * sizeof(real));
    o->params = malloc(o->P * sizeof(real));
    memcpy(o->grads, model_grads(m), o->P * sizeof(real));
    optim_step(opt, m, 3e-3);
    memcpy(o->params, model_params(m), o->P * sizeof(real));
    optim_free(opt);
    model_free(m);
    return 0;
}

static size_t ndiff(const real *a, const real *b, size_t n, double *maxd) {
    size_t k = 0;
    *maxd = 0;
    for (size_t i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], sizeof(real))) {
            k++;
            double d = (double)a[i] - (double)b[i];
            d = d < 0 ? -d : d;
            if (d > *maxd) *maxd = d;
        }
    return k;
}

int main(void) {
    struct { const char *name; MixerKind kind; int readout, heads; } mixers[] = {
        {"attention", MIX_ATTENTION, 0, 1}, {"swa", MIX_SWA, 0, 2},  {"bla-dense", MIX_BLA, BLA_READOUT_DENSE, 2},
        {"bla-slots", MIX_BLA, BLA_READOUT_SLOTS, 2}, {"gsa", MIX_GSA, 0, 2}, {"la", MIX_LA, 0, 2},
        {"mamba", MIX_MAMBA, 0, 1},
    };
    // Big enough that every parallel loop and the row-split GEMMs really split (B*T = 1024 rows).
    const int B = 8, T = 128, D = 64, V = 256;
    Rng rng;
    rng_seed(&rng, 11);
    int32_t *tok = malloc((size_t)B * T * sizeof(int32_t)), *pos = malloc((size_t)B * T * sizeof(int32_t)),
            *tgt = malloc((size_t)B * T * sizeof(int32_t));
    for (int i = 0; i < B * T; i++) tok[i] = (int32_t)rng_below(&rng, V);
    int np = 0;
    for (int i = 0; i < B * T; i += 3) { pos[np] = i; tgt[np] = (int32_t)rng_below(&rng, V); np++; }
    int fails = 0;
    for (size_t k = 0; k < sizeof mixers / sizeof mixers[0]; k++)
        for (int mlp = 0; mlp <= 1; mlp++) {
            ModelCfg cfg = {0};
            cfg.vocab = V; cfg.d_model = D; cfg.n_layers = 2; cfg.mlp = mlp; cfg.norm = mlp ? NORM_RMS : NORM_LAYER;
            cfg.pos_emb = mlp; cfg.max_len = T;
            mixer_cfg_default(&cfg.layer[0], MIX_CONV, D, 1, 2);
            mixer_cfg_default(&cfg.layer[1], mixers[k].kind, D, mixers[k].heads, 2);
            cfg.layer[1].bla_readout = mixers[k].readout;
            StepOut ref, o;
            if (run_step(&ref, &cfg, 1, B, T, tok, pos, tgt, np)) return 1;
            for (int nt = 2; nt <= 3; nt++) {
                if (run_step(&o, &cfg, nt, B, T, tok, pos, tgt, np)) return 1;
                double dg, dp;
                size_t ng = ndiff(ref.grads, o.grads, ref.P, &dg), npar = ndiff(ref.params, o.params, ref.P, &dp);
                int ok = o.loss == ref.loss && ng == 0 && npar == 0;
                printf("%s threads_%s%s 1_vs_%d  loss_diff=%.3g grads_differing=%zu (max %.3g) params_differing=%zu "
                       "(max %.3g) tol=0 (bitwise)\n",
                       ok ? "PASS" : "FAIL", mixers[k].name, mlp ? "+mlp+rms+pos" : "", nt, o.loss - ref.loss, ng, dg,
                       npar, dp);
                fails += !ok;
                free(o.grads); free(o.params);
            }
            free(ref.grads); free(ref.params);
        }
    free(tok); free(pos); free(tgt);
    printf("%s: %d failure(s)\n", fails ? "FAIL" : "PASS", fails);
    return fails ? 1 : 0;
}
