// test_optim.c — AdamW against a double reference (one step worked by hand, then three steps of
// the textbook update), weight-decay flags and decay_all, clipping, and lr_schedule values at
// known steps. Depends on optim.h, model.h, mixcheck.h (check_report), the f32 models library.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../models/optim.h"
#include "mixcheck.h"

static Model *tiny(void) {
    ModelCfg c;
    memset(&c, 0, sizeof c);
    c.vocab = 3; c.d_model = 2; c.n_layers = 1; c.norm = NORM_LAYER;
    mixer_cfg_default(&c.layer[0], MIX_CONV, 2, 1, 1);
    char err[256];
    Model *m = model_create(&c, 1, 4, err, sizeof err);
    if (!m) { printf("FAIL model_create: %s\n", err); exit(1); }
    return m;
}

static int find(const Model *m, const char *name) {
    for (int i = 0; i < model_num_tensors(m); i++)
        if (strcmp(model_tensor(m, i)->name, name) == 0) return i;
    printf("FAIL no tensor %s\n", name);
    exit(1);
}

// Textbook AdamW in double over the whole slab (decay per tensor), `steps` steps of grads g(s, i).
static void reference(double *p, size_t P, const Model *m, const AdamWCfg *c, const double *lrs, int steps,
                      double (*g)(int, size_t)) {
    double *mm = calloc(P, sizeof(double)), *vv = calloc(P, sizeof(double));
    for (int s = 0; s < steps; s++) {
        double gn = 0;
        for (size_t i = 0; i < P; i++) gn += g(s, i) * g(s, i);
        gn = sqrt(gn);
        double sc = c->clip > 0 && gn > c->clip ? c->clip / (gn + 1e-6) : 1;
        for (int t = 0; t < model_num_tensors(m); t++) {
            const TensorInfo *ti = model_tensor(m, t);
            double wd = (c->decay_all || ti->decay) ? c->weight_decay : 0;
            for (size_t i = ti->offset; i < ti->offset + ti->numel; i++) {
                double gi = g(s, i) * sc;
                mm[i] = c->beta1 * mm[i] + (1 - c->beta1) * gi;
                vv[i] = c->beta2 * vv[i] + (1 - c->beta2) * gi * gi;
                double mh = mm[i] / (1 - pow(c->beta1, s + 1)), vh = vv[i] / (1 - pow(c->beta2, s + 1));
                p[i] -= lrs[s] * (mh / (sqrt(vh) + c->eps) + wd * p[i]);
            }
        }
    }
    free(mm); free(vv);
}

static double gfun(int s, size_t i) { return 0.3 * sin(1.7 * (double)i + 0.9 * s) + (i % 3 == 0 ? 0.05 : -0.02); }
static double gbig(int s, size_t i) { return 3.0 * cos(0.7 * (double)i + s); }

static int run_case(const char *lab, AdamWCfg c, double (*g)(int, size_t), int steps, double tol) {
    Model *m = tiny();
    size_t P = model_num_params(m);
    real *p = model_params(m);
    double *ref = malloc(P * sizeof(double)), lrs[8];
    for (size_t i = 0; i < P; i++) ref[i] = p[i] = (real)(0.5 - 0.1 * (double)(i % 7));
    for (int s = 0; s < steps; s++) lrs[s] = c.lr * (1.0 - 0.2 * s);
    reference(ref, P, m, &c, lrs, steps, g);
    Optim *o = optim_create(m, &c);
    int fails = 0;
    double gn_ref = 0;
    for (size_t i = 0; i < P; i++) gn_ref += g(0, i) * g(0, i);
    for (int s = 0; s < steps; s++) {
        for (size_t i = 0; i < P; i++) model_grads(m)[i] = (real)g(s, i);
        double gn = optim_step(o, m, lrs[s]);
        if (s == 0) {
            char l2[128];
            snprintf(l2, sizeof l2, "%s: returned grad norm", lab);
            fails += check_report(l2, fabs(gn - sqrt(gn_ref)) / sqrt(gn_ref), 1e-6);
        }
    }
    double md = 0;
    for (size_t i = 0; i < P; i++) md = fmax(md, fabs(p[i] - ref[i]) / fmax(fabs(ref[i]), 1e-3));
    fails += check_report(lab, md, tol);
    optim_free(o);
    model_free(m);
    free(ref);
    return fails;
}

int main(void) {
    int fails = 0;
    AdamWCfg c = {.lr = 0.1, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.1};

    // By hand, step 1: mhat = g, vhat = g^2, so p1 = p0 - lr (g/(|g| + eps) + wd p0).
    // p0 = 0.5, g = 0.2, lr = 0.1, wd = 0.1 (decayed tensor): 0.5 - 0.1*(0.99999995 + 0.05) = 0.395000005
    // same for a bias (no decay): 0.5 - 0.1*0.99999995 = 0.400000005
    {
        Model *m = tiny();
        int tw = find(m, "layer0.conv.proj_w"), tb = find(m, "layer0.conv.proj_b");
        real *p = model_params(m), *g = model_grads(m);
        for (size_t i = 0; i < model_num_params(m); i++) { p[i] = 0.5f; g[i] = 0.2f; }
        Optim *o = optim_create(m, &c);
        optim_step(o, m, 0.1);
        fails += check_report("adamw step 1 by hand: decayed weight 0.395000005",
                              fabs(p[model_tensor(m, tw)->offset] - 0.395000005) / 0.395, 1e-6);
        fails += check_report("adamw step 1 by hand: bias (no decay) 0.400000005",
                              fabs(p[model_tensor(m, tb)->offset] - 0.400000005) / 0.4, 1e-6);
        optim_free(o);
        model_free(m);
    }
    fails += run_case("adamw 3 steps vs double reference (flags)", c, gfun, 3, 2e-6);
    AdamWCfg ca = c;
    ca.decay_all = 1;
    fails += run_case("adamw 3 steps vs double reference (decay_all)", ca, gfun, 3, 2e-6);
    AdamWCfg cc = c;
    cc.clip = 1.0;
    cc.eps = 0.5;  // a large eps makes the clipped gradient scale visible in the update
    fails += run_case("adamw 3 steps clip 1.0 vs double reference", cc, gbig, 3, 2e-6);

    // Decay flags: zero gradient, so only decay moves parameters.
    {
        for (int all = 0; all < 2; all++) {
            Model *m = tiny();
            AdamWCfg cd = c;
            cd.decay_all = all;
            real *p = model_params(m);
            for (size_t i = 0; i < model_num_params(m); i++) p[i] = 1;
            model_zero_grad(m);
            Optim *o = optim_create(m, &cd);
            optim_step(o, m, 0.1);
            double bad = 0;
            for (int t = 0; t < model_num_tensors(m); t++) {
                const TensorInfo *ti = model_tensor(m, t);
                int want_decay = all || ti->decay;
                int is_bias_or_norm = strstr(ti->name, "norm") || strstr(ti->name, "_b") || strstr(ti->name, ".b");
                if (!all && is_bias_or_norm && ti->decay) bad = 1;   // flag policy: no decay there
                if (!is_bias_or_norm && !ti->decay) bad = 1;         // matrices, embeddings decay
                double want = want_decay ? 1 - 0.1 * 0.1 : 1;
                for (size_t i = 0; i < ti->numel; i++) bad = fmax(bad, fabs(p[ti->offset + i] - want));
            }
            fails += check_report(all ? "decay_all decays every tensor" : "decay flags: weights decay, biases/norms not",
                                  bad, 1e-7);
            optim_free(o);
            model_free(m);
        }
    }

    // lr_schedule(step, total, warmup, lr, floor_frac)
    struct { long s, tot, wu; double lr, fl, want; const char *what; } sch[] = {
        {0, 100, 10, 1.0, 0.1, 0.1, "warmup step 0 = lr/warmup"},
        {4, 100, 10, 1.0, 0.1, 0.5, "warmup step 4"},
        {9, 100, 10, 1.0, 0.1, 1.0, "warmup end"},
        {10, 100, 10, 1.0, 0.1, 1.0, "cosine start"},
        {55, 100, 10, 1.0, 0.1, 0.55, "cosine midpoint = (1+floor)/2"},
        {100, 100, 10, 1.0, 0.1, 0.1, "end = floor"},
        {500, 100, 10, 1.0, 0.1, 0.1, "after end = floor"},
        {0, 100, 0, 3e-3, 0.0, 3e-3, "no warmup step 0 = lr"},
        {25, 100, 0, 1.0, 0.0, 0.5 * (1 + cos(M_PI * 0.25)), "CosineAnnealingLR step 25"},
        {50, 100, 0, 2.0, 0.0, 1.0, "CosineAnnealingLR midpoint"},
    };
    for (size_t i = 0; i < sizeof sch / sizeof sch[0]; i++) {
        char lab[128];
        double got = lr_schedule(sch[i].s, sch[i].tot, sch[i].wu, sch[i].lr, sch[i].fl);
        snprintf(lab, sizeof lab, "lr_schedule %s (%.6g)", sch[i].what, got);
        fails += check_report(lab, fabs(got - sch[i].want), 1e-12);
    }
    printf("%s: %d optimiser check(s) failed\n", fails ? "FAIL" : "PASS", fails);
    return fails ? 1 : 0;
}
