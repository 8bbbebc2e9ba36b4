// test_la.c — la mixer (double build), both feature maps: finite-difference gradients, step ==
// parallel, the Taylor kernel identity, elu + 1 > 0, a two-token known answer, validation, and the
// known-answer state size. Depends on mixcheck.h.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "mixcheck.h"

// models/mixers/la.c (not in mixer.h): feature size and feature map of one head.
int la_feature_size(int kind, int n);
void la_feature_map(real *phi, const real *x, int n, int kind);

static MixerCfg la_cfg(int d, int heads, int fmap, int f) {
    MixerCfg c;
    mixer_cfg_default(&c, MIX_LA, d, heads, 2);
    c.feature_map = fmap;
    c.feature_dim = f;
    return c;
}

// max over random pairs of |phi(q).phi(k) - (1 + q.k/sqrt(f) + (q.k)^2/(2f))| / |kernel|
static double taylor_kernel_err(int f, uint64_t seed) {
    int F = la_feature_size(LA_TAYLOR, f);
    real *q = malloc(f * sizeof(real)), *k = malloc(f * sizeof(real));
    real *pq = malloc(F * sizeof(real)), *pk = malloc(F * sizeof(real));
    Rng rng;
    rng_seed(&rng, seed);
    double worst = 0;
    for (int it = 0; it < 200; it++) {
        double sc = 0.5 + 2 * rng_uniform(&rng), qk = 0, dot = 0;
        for (int i = 0; i < f; i++) { q[i] = (real)(sc * rng_normal(&rng)); k[i] = (real)(sc * rng_normal(&rng)); }
        for (int i = 0; i < f; i++) qk += (double)q[i] * k[i];
        la_feature_map(pq, q, f, LA_TAYLOR);
        la_feature_map(pk, k, f, LA_TAYLOR);
        for (int a = 0; a < F; a++) dot += (double)pq[a] * pk[a];
        double want = 1 + qk / sqrt(f) + qk * qk / (2.0 * f);
        double e = fabs(dot - want) / fabs(want);
        if (!(e <= worst)) worst = e;
    }
    free(q); free(k); free(pq); free(pk);
    return worst;
}

// elu: returns min phi over random and extreme inputs (must be > 0), and max |phi - (elu(x) + 1)|.
static void elu_check(double *minphi, double *maxerr) {
    enum { n = 64 };
    real x[n], phi[n];
    Rng rng;
    rng_seed(&rng, 77);
    for (int i = 0; i < n; i++) x[i] = (real)(8 * rng_normal(&rng));
    x[0] = -600; x[1] = -30; x[2] = 0; x[3] = 30; x[4] = -1e-9;
    la_feature_map(phi, x, n, LA_ELU);
    *minphi = INFINITY; *maxerr = 0;
    for (int i = 0; i < n; i++) {
        double want = x[i] > 0 ? x[i] + 1.0 : exp(x[i]);   // elu(x) + 1 = exp(x) for x <= 0
        *minphi = fmin(*minphi, phi[i]);
        *maxerr = fmax(*maxerr, fabs(phi[i] - want) / want);
    }
}

// Two tokens, one head, computed by hand: a_s = kernel(q_2, k_s);
// o_1 = v_1 a_11/(a_11 + eps), o_2 = (a_21 v_1 + a_22 v_2)/(a_21 + a_22 + eps); out = W_o o.
static double kernel_ref(const double *q, const double *k, int n, int fmap) {
    double r = 0;
    if (fmap == LA_ELU) {
        for (int i = 0; i < n; i++) r += (q[i] > 0 ? q[i] + 1 : exp(q[i])) * (k[i] > 0 ? k[i] + 1 : exp(k[i]));
        return r;
    }
    double qk = 0;
    for (int i = 0; i < n; i++) qk += q[i] * k[i];
    return 1 + qk / sqrt(n) + qk * qk / (2.0 * n);
}

static double two_token_err(const MixerCfg *c, uint64_t seed) {
    const int D = c->d, B = 1, T = 2, n = c->feature_map == LA_TAYLOR ? c->feature_dim : D;
    Mixer m;
    if (c->heads != 1 || mixer_create(&m, c, B, T)) return INFINITY;
    real *p[RB_MAX_TENSORS];
    int nt;
    real *slab = mixcheck_params(c, p, &nt, seed);
    real x[2 * 64], out[2 * 64];
    Rng rng;
    rng_seed(&rng, seed + 3);
    for (int i = 0; i < T * D; i++) x[i] = (real)rng_normal(&rng);
    m.ops->forward(&m, p, out, x, B, T);
    double q[2][64], k[2][64], v[2][64], o[2][64];
    for (int t = 0; t < T; t++) {
        for (int i = 0; i < n; i++) {
            q[t][i] = k[t][i] = 0;
            for (int j = 0; j < D; j++) { q[t][i] += p[0][i * D + j] * x[t * D + j]; k[t][i] += p[1][i * D + j] * x[t * D + j]; }
        }
        for (int i = 0; i < D; i++) {
            v[t][i] = 0;
            for (int j = 0; j < D; j++) v[t][i] += p[2][i * D + j] * x[t * D + j];
        }
    }
    double a11 = kernel_ref(q[0], k[0], n, c->feature_map);
    double a21 = kernel_ref(q[1], k[0], n, c->feature_map), a22 = kernel_ref(q[1], k[1], n, c->feature_map);
    for (int i = 0; i < D; i++) {
        o[0][i] = a11 * v[0][i] / (a11 + 1e-12);
        o[1][i] = (a21 * v[0][i] + a22 * v[1][i]) / (a21 + a22 + 1e-12);
    }
    double md = 0, mr = 0;
    for (int t = 0; t < T; t++)
        for (int i = 0; i < D; i++) {
            double r = 0;
            for (int j = 0; j < D; j++) r += p[3][i * D + j] * o[t][j];
            md = fmax(md, fabs(out[t * D + i] - r));
            mr = fmax(mr, fabs(r));
        }
    free(slab);
    mixer_destroy(&m);
    return md / fmax(mr, 1e-12);
}

// |state_floats - want| + |step_state_size - want|
static double state_err(const MixerCfg *c, double want) {
    const MixerOps *ops = mixer_ops(MIX_LA);
    double e = fabs(ops->state_floats(c, 256) - want);
    Mixer m;
    if (mixer_create(&m, c, 1, 1)) return INFINITY;
    e += fabs((double)ops->step_state_size(&m) - want);
    mixer_destroy(&m);
    return e;
}

int main(void) {
    int fails = 0;
    const MixerOps *ops = mixer_ops(MIX_LA);
    if (!ops) { printf("FAIL la_ops missing\n"); return 1; }

    MixerCfg t1 = la_cfg(16, 1, LA_TAYLOR, 4), t2 = la_cfg(16, 2, LA_TAYLOR, 3);
    MixerCfg e1 = la_cfg(16, 1, LA_ELU, 16), e4 = la_cfg(16, 4, LA_ELU, 16);
    fails += mixcheck_grad("la taylor d16 h1 f4", &t1, 2, 6, 41, 1e-6, 0);
    fails += mixcheck_grad("la taylor d16 h2 f3", &t2, 2, 7, 42, 1e-6, 0);
    fails += mixcheck_grad("la elu d16 h1", &e1, 2, 6, 43, 1e-6, 0);
    fails += mixcheck_grad("la elu d16 h4", &e4, 2, 7, 44, 1e-6, 0);

    MixerCfg t64 = la_cfg(64, 1, LA_TAYLOR, 16), e64 = la_cfg(64, 2, LA_ELU, 16);
    fails += mixcheck_step("la step taylor d16 h1 f4", &t1, 24, 51, 1e-9);
    fails += mixcheck_step("la step taylor d16 h2 f3", &t2, 24, 52, 1e-9);
    fails += mixcheck_step("la step elu d16 h1", &e1, 24, 53, 1e-9);
    fails += mixcheck_step("la step elu d16 h4", &e4, 24, 54, 1e-9);
    fails += mixcheck_step("la step taylor d64 h1 f16", &t64, 40, 55, 1e-9);
    fails += mixcheck_step("la step elu d64 h2", &e64, 40, 56, 1e-9);

    // feature maps
    fails += check_report("la taylor f'(16) = 153, f'(5) = 21",
                          fabs(la_feature_size(LA_TAYLOR, 16) - 153.0) + fabs(la_feature_size(LA_TAYLOR, 5) - 21.0), 0);
    fails += check_report("la taylor phi(q).phi(k) = 1+qk/sqrt(f)+(qk)^2/2f f16", taylor_kernel_err(16, 61), 1e-13);
    fails += check_report("la taylor phi(q).phi(k) = 1+qk/sqrt(f)+(qk)^2/2f f5", taylor_kernel_err(5, 62), 1e-13);
    double minphi, eluerr;
    elu_check(&minphi, &eluerr);
    fails += check_report("la elu phi = elu(x)+1", eluerr, 1e-15);
    printf("     (elu: min phi over inputs down to -600 = %.3e)\n", minphi);
    fails += check_report("la elu phi > 0 (1 if some phi <= 0)", minphi > 0 ? 0 : 1, 0);

    // two tokens by hand
    MixerCfg t8 = la_cfg(8, 1, LA_TAYLOR, 5), e8 = la_cfg(8, 1, LA_ELU, 16);
    fails += check_report("la taylor two tokens by hand", two_token_err(&t8, 71), 1e-12);
    fails += check_report("la elu two tokens by hand", two_token_err(&e8, 72), 1e-12);

    // validation
    char err[160];
    MixerCfg bad = la_cfg(64, 1, LA_TAYLOR, 0);
    int r1 = ops->validate(&bad, err, sizeof err);
    bad = la_cfg(64, 1, 7, 16);
    int r2 = ops->validate(&bad, err, sizeof err);
    bad = la_cfg(64, 5, LA_ELU, 16);
    int r3 = ops->validate(&bad, err, sizeof err);
    int r4 = ops->validate(&t64, err, sizeof err);
    fails += check_report("la validate (f 0, map 7, heads 5 of 64 rejected; default ok)",
                          (r1 == -1 && r2 == -1 && r3 == -1 && r4 == 0) ? 0 : 1, 0);

    // known-answer state sizes: (d_h + 1) f' per head
    fails += check_report("la state taylor d64 f16 = 65*153", state_err(&t64, 65.0 * 153), 0);
    fails += check_report("la state conv+la bytes = 40548", fabs(4 * (3 * 64 + ops->state_floats(&t64, 256)) - 40548), 0);
    MixerCfg t64h2 = la_cfg(64, 2, LA_TAYLOR, 16), e64h1 = la_cfg(64, 1, LA_ELU, 16);
    fails += check_report("la state taylor d64 h2 f16 = 2*33*153", state_err(&t64h2, 2.0 * 33 * 153), 0);
    fails += check_report("la state elu d64 h1 = 65*64", state_err(&e64h1, 65.0 * 64), 0);
    fails += check_report("la state elu d64 h2 = 2*33*32", state_err(&e64, 2.0 * 33 * 32), 0);
    printf("la state_formula: %s\n", ops->state_formula);
    return fails ? 1 : 0;
}
