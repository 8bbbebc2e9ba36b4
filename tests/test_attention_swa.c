// test_attention_swa.c — swa against attention (float): with W >= T swa is attention (outputs and
// gradients), with W = 1 its output is the value path wo (Wv x + bv) + bo. Per-head windows mix
// both. Depends on mixcheck.h (params, report), the f32 models library.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "mixcheck.h"

extern const MixerOps attention_ops, swa_ops;  // the registry must hand out these tables

static double rel(const real *a, const real *b, size_t n) {
    double md = 0, mr = 0;
    for (size_t i = 0; i < n; i++) { md = fmax(md, fabs((double)a[i] - b[i])); mr = fmax(mr, fabs((double)b[i])); }
    return md / fmax(mr, 1e-30);
}

// Runs forward (+ backward with random dout) of cfg on shared params; fills out, dinp, dparams.
static void run(const MixerCfg *c, real *const *p, real *const *dp, size_t np, const real *inp, const real *dout,
                real *out, real *dinp, int B, int T) {
    Mixer m;
    if (mixer_create(&m, c, B, T)) { printf("FAIL mixer_create\n"); exit(1); }
    memset(dp[0], 0, np * sizeof(real));
    m.ops->forward(&m, p, out, inp, B, T);
    m.ops->backward(&m, p, dp, dinp, dout, inp, B, T);
    mixer_destroy(&m);
}

int main(void) {
    const int B = 3, T = 77, D = 16, H = 2, dh = D / H;
    const size_t n = (size_t)B * T * D;
    int fails = 0;
    fails += check_report("registry has attention, swa",
                          mixer_ops(MIX_ATTENTION) == &attention_ops && mixer_ops(MIX_SWA) == &swa_ops ? 0 : 1, 0);
    MixerCfg ca, cs;
    mixer_cfg_default(&ca, MIX_ATTENTION, D, H, 2);
    mixer_cfg_default(&cs, MIX_SWA, D, H, 2);
    real *p[RB_MAX_TENSORS], *dpa[RB_MAX_TENSORS], *dps[RB_MAX_TENSORS];
    int nt;
    real *slab = mixcheck_params(&ca, p, &nt, 5);
    ParamSpec sp[RB_MAX_TENSORS];
    attention_ops.param_specs(&ca, sp);
    size_t np = 0;
    for (int i = 0; i < nt; i++) np += sp[i].numel;
    real *ga = malloc(np * sizeof(real)), *gs = malloc(np * sizeof(real));
    for (int i = 0, off = 0; i < nt; off += (int)sp[i].numel, i++) { dpa[i] = ga + off; dps[i] = gs + off; }
    real *inp = malloc(n * sizeof(real)), *dout = malloc(n * sizeof(real));
    real *oa = malloc(n * sizeof(real)), *os = malloc(n * sizeof(real));
    real *da = malloc(n * sizeof(real)), *ds = malloc(n * sizeof(real));
    Rng rng;
    rng_seed(&rng, 77);
    for (size_t i = 0; i < n; i++) { inp[i] = (real)rng_normal(&rng); dout[i] = (real)rng_normal(&rng); }

    run(&ca, p, dpa, np, inp, dout, oa, da, B, T);
    int Ws[3] = {T, T + 5, 1000};
    for (int k = 0; k < 3; k++) {
        char lab[96];
        cs.window[0] = cs.window[1] = Ws[k];
        run(&cs, p, dps, np, inp, dout, os, ds, B, T);
        snprintf(lab, sizeof lab, "swa W=%d (T=%d) == attention: output", Ws[k], T);
        fails += check_report(lab, rel(os, oa, n), 1e-6);
        snprintf(lab, sizeof lab, "swa W=%d (T=%d) == attention: dinput", Ws[k], T);
        fails += check_report(lab, rel(ds, da, n), 1e-6);
        snprintf(lab, sizeof lab, "swa W=%d (T=%d) == attention: dparams", Ws[k], T);
        fails += check_report(lab, rel(gs, ga, np), 1e-6);
    }

    // W = 1: each token attends only to itself, so out = wo v + bo with v = Wv x + bv.
    cs.window[0] = cs.window[1] = 1;
    run(&cs, p, dps, np, inp, dout, os, ds, B, T);
    real *ref = malloc(n * sizeof(real)), v[64];
    for (int r = 0; r < B * T; r++) {
        const real *x = inp + (size_t)r * D;
        for (int i = 0; i < D; i++) {
            double s = p[1][2 * D + i];
            for (int j = 0; j < D; j++) s += (double)p[0][(size_t)(2 * D + i) * D + j] * x[j];
            v[i] = (real)s;
        }
        for (int i = 0; i < D; i++) {
            double s = p[3][i];
            for (int j = 0; j < D; j++) s += (double)p[2][(size_t)i * D + j] * v[j];
            ref[(size_t)r * D + i] = (real)s;
        }
    }
    fails += check_report("swa W=1 == value path wo(Wv x + bv) + bo", rel(os, ref, n), 1e-5);

    // Per-head windows: head 0 with W >= T matches attention's head 0 before wo; check through
    // outputs with wo restricted to head 0's columns.
    cs.window[0] = T; cs.window[1] = 3;
    real *wo_save = malloc((size_t)D * D * sizeof(real));
    memcpy(wo_save, p[2], (size_t)D * D * sizeof(real));
    for (int i = 0; i < D; i++)
        for (int j = dh; j < D; j++) p[2][(size_t)i * D + j] = 0;  // only head 0 reaches the output
    run(&ca, p, dpa, np, inp, dout, oa, da, B, T);
    run(&cs, p, dps, np, inp, dout, os, ds, B, T);
    fails += check_report("swa W=T,3 head 0 == attention head 0", rel(os, oa, n), 1e-6);
    memcpy(p[2], wo_save, (size_t)D * D * sizeof(real));
    (void)H;

    printf("%s: %d attention/swa check(s) failed\n", fails ? "FAIL" : "PASS", fails);
    free(slab); free(ga); free(gs); free(inp); free(dout); free(oa); free(os); free(da); free(ds); free(ref);
    free(wo_save);
    return fails ? 1 : 0;
}
