// bla_common.h — checks shared by test_bla.c (double) and test_bla_f32.c (float): BLA(N = W, dense)
// against a naive SWA reference and against the swa mixer, step == parallel configs. Depends on mixcheck.h.
#pragma once
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "mixcheck.h"

// Strong references: the registry (mixer.c) links mixers weakly, so a test must pull the objects
// it exercises out of the static library itself.
extern const MixerOps bla_ops, swa_ops;

static MixerCfg bla_cfg(int d, int heads, const int *W, const int *N, int readout, int transition) {
    MixerCfg c;
    mixer_cfg_default(&c, MIX_BLA, d, heads, 2);
    for (int h = 0; h < heads; h++) { c.window[h] = W[h]; c.freqs[h] = N[h]; }
    c.bla_readout = readout;
    c.bla_transition = transition;
    return c;
}

// Naive sliding-window attention written from the definition (models.md "swa"): per head, softmax
// over keys s in [t-W+1, t] of q_t.k_s / sqrt(d_h), then the output projection. Parameters as the
// swa and bla mixers lay them out (attention.h): wqkv [3D, D] (rows q | k | v), bqkv [3D], wo [D, D],
// bo [D]; out = inp w^T + b.
static void swa_reference(double *out, const real *const *p, const real *inp, int B, int T, int D, int H,
                          const int *W) {
    const int dh = D / H;
    double *q = malloc(sizeof(double) * T * D), *k = malloc(sizeof(double) * T * D),
           *v = malloc(sizeof(double) * T * D), *o = malloc(sizeof(double) * T * D), *w = malloc(sizeof(double) * T);
    for (int b = 0; b < B; b++) {
        const real *x = inp + (size_t)b * T * D;
        for (int t = 0; t < T; t++)
            for (int j = 0; j < D; j++) {
                double sq = p[1][j], sk = p[1][D + j], sv = p[1][2 * D + j];
                for (int i = 0; i < D; i++) {
                    double xi = x[(size_t)t * D + i];
                    sq += xi * p[0][(size_t)j * D + i];
                    sk += xi * p[0][(size_t)(D + j) * D + i];
                    sv += xi * p[0][(size_t)(2 * D + j) * D + i];
                }
                q[t * D + j] = sq; k[t * D + j] = sk; v[t * D + j] = sv;
            }
        for (int h = 0; h < H; h++)
            for (int t = 0; t < T; t++) {
                int s0 = t - W[h] + 1 > 0 ? t - W[h] + 1 : 0;
                double mx = -INFINITY, sum = 0;
                for (int s = s0; s <= t; s++) {
                    double d = 0;
                    for (int j = 0; j < dh; j++) d += q[t * D + h * dh + j] * k[s * D + h * dh + j];
                    w[s] = d / sqrt((double)dh);
                    mx = fmax(mx, w[s]);
                }
                for (int s = s0; s <= t; s++) { w[s] = exp(w[s] - mx); sum += w[s]; }
                for (int j = 0; j < dh; j++) {
                    double acc = 0;
                    for (int s = s0; s <= t; s++) acc += w[s] / sum * v[s * D + h * dh + j];
                    o[t * D + h * dh + j] = acc;
                }
            }
        for (int t = 0; t < T; t++)
            for (int j = 0; j < D; j++) {
                double s = p[3][j];
                for (int i = 0; i < D; i++) s += o[t * D + i] * p[2][(size_t)j * D + i];
                out[((size_t)b * T + t) * D + j] = s;
            }
    }
    free(q); free(k); free(v); free(o); free(w);
}

// BLA(N = W, dense) vs naive SWA(W) and, when it is linked, the swa mixer with the same parameter
// slab. err = max abs difference over all outputs.
static int check_bla_equals_swa(const char *tag, int d, int heads, const int *W, int B, int T, uint64_t seed,
                                double tol) {
    int fails = 0;
    MixerCfg c = bla_cfg(d, heads, W, W, BLA_READOUT_DENSE, BLA_TRANSITION_PROJECT);
    if (mixer_ops(MIX_BLA) != &bla_ops) return check_report("bla registered", INFINITY, 0);
    Mixer m;
    if (mixer_create(&m, &c, B, T)) return check_report("bla create", INFINITY, tol);
    real *p[RB_MAX_TENSORS];
    int nt;
    real *slab = mixcheck_params(&c, p, &nt, seed);
    size_t n = (size_t)B * T * d;
    real *inp = malloc(n * sizeof(real)), *out = malloc(n * sizeof(real)), *out2 = malloc(n * sizeof(real));
    double *ref = malloc(n * sizeof(double));
    Rng rng;
    rng_seed(&rng, seed + 5);
    for (size_t i = 0; i < n; i++) inp[i] = (real)rng_normal(&rng);
    m.ops->forward(&m, p, out, inp, B, T);
    swa_reference(ref, (const real *const *)p, inp, B, T, d, heads, W);
    double e = 0;
    for (size_t i = 0; i < n; i++) e = fmax(e, fabs((double)out[i] - ref[i]));
    char lab[160];
    snprintf(lab, sizeof lab, "bla(N=W,dense)==naive swa %s max|diff|", tag);
    fails += check_report(lab, e, tol);
    // The real swa mixer: same cfg (kind swa), same parameter slab.
    const MixerOps *sw = &swa_ops;
    snprintf(lab, sizeof lab, "bla(N=W,dense)==swa mixer %s max|diff|", tag);
    {
        MixerCfg cs = c;
        cs.kind = MIX_SWA;
        ParamSpec a[RB_MAX_TENSORS], bsp[RB_MAX_TENSORS];
        int na = m.ops->param_specs(&c, a), nb = sw->param_specs(&cs, bsp), same = na == nb;
        for (int i = 0; same && i < na; i++)
            same = a[i].numel == bsp[i].numel && a[i].init == bsp[i].init && a[i].decay == bsp[i].decay &&
                   strcmp(a[i].name, bsp[i].name) == 0;
        char l2[160];
        snprintf(l2, sizeof l2, "bla param specs == swa param specs %s", tag);
        fails += check_report(l2, same ? 0 : 1, 0);
        Mixer ms;
        if (same && mixer_create(&ms, &cs, B, T) == 0) {
            sw->forward(&ms, p, out2, inp, B, T);
            double e2 = 0;
            for (size_t i = 0; i < n; i++) e2 = fmax(e2, fabs((double)out[i] - out2[i]));
            fails += check_report(lab, e2, tol);
            mixer_destroy(&ms);
        } else {
            fails += check_report(lab, INFINITY, tol);
        }
    }
    free(inp); free(out); free(out2); free(ref); free(slab);
    mixer_destroy(&m);
    return fails;
}

// Step == parallel for the configs bla.md names: N < W, both readouts, both transitions, and
// multi-head with different (W, N) per head. T runs well past W so the blurry tail is exercised.
static int check_bla_steps(double tol) {
    int fails = 0;
    char lab[160];
    static const char *rn[] = {"dense", "slots"}, *tn[] = {"project", "decay"};
    for (int r = 0; r < 2; r++)
        for (int tr = 0; tr < 2; tr++) {
            int W[1] = {16}, N[1] = {5};
            MixerCfg c = bla_cfg(16, 1, W, N, r, tr);
            snprintf(lab, sizeof lab, "step==parallel W16 N5 %s %s", rn[r], tn[tr]);
            fails += mixcheck_step(lab, &c, 40, 11 + r * 2 + tr, tol);
            int W2[1] = {12}, N2[1] = {8};  // slots at fractional ages 1.5, 3, 4.5, ...
            c = bla_cfg(8, 1, W2, N2, r, tr);
            snprintf(lab, sizeof lab, "step==parallel W12 N8 %s %s", rn[r], tn[tr]);
            fails += mixcheck_step(lab, &c, 30, 21 + r * 2 + tr, tol);
            int W3[3] = {32, 6, 1}, N3[3] = {4, 6, 1};
            c = bla_cfg(12, 3, W3, N3, r, tr);
            snprintf(lab, sizeof lab, "step==parallel 3 heads W32,6,1 N4,6,1 %s %s", rn[r], tn[tr]);
            fails += mixcheck_step(lab, &c, 45, 31 + r * 2 + tr, tol);
        }
    return fails;
}
