// test_gsa.c — gsa mixer (double build): finite-difference gradients, step == parallel, slot
// identities computed by hand, validation, known-answer state size. Depends on mixcheck.h.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "mixcheck.h"

// Test-only hook in models/mixers/gsa.c: alpha in [0, 1] replaces the gate; negative = off.
extern double gsa_test_force_alpha;

static MixerCfg gsa_cfg(int d, int heads, int slots) {
    MixerCfg c;
    mixer_cfg_default(&c, MIX_GSA, d, heads, 2);
    c.slots = slots;
    return c;
}

static double sigmoid(double x) { return 1 / (1 + exp(-x)); }
static double silu(double x) { return x * sigmoid(x); }

// Reference for one slot per head (m = 1): softmax over one slot is 1, so o = V_t (the slot row), an
// exponential moving average: o_t = alpha_t o_{t-1} + (1 - alpha_t) silu(W_v x_t), with
// alpha_t = sigmoid(w_f,h . x_t)^(1/8) (or the forced constant). out = W_o (g * rmsnorm(silu(o))).
static void ref_one_slot(double *out, real *const *p, const real *x, int B, int T, int D, int H, double force) {
    int dh = D / H;
    double *o = calloc((size_t)D, sizeof(double)), *y = malloc((size_t)D * sizeof(double));
    for (int b = 0; b < B; b++) {
        memset(o, 0, (size_t)D * sizeof(double));
        for (int t = 0; t < T; t++) {
            const real *xt = x + ((size_t)b * T + t) * D;
            for (int h = 0; h < H; h++) {
                double f = 0;
                for (int j = 0; j < D; j++) f += p[3][h * D + j] * xt[j];
                double a = force >= 0 ? force : pow(sigmoid(f), 1.0 / 8);
                for (int e = h * dh; e < (h + 1) * dh; e++) {
                    double va = 0;
                    for (int j = 0; j < D; j++) va += p[2][e * D + j] * xt[j];
                    o[e] = a * o[e] + (1 - a) * silu(va);
                }
            }
            double ss = 0;
            for (int e = 0; e < D; e++) { y[e] = silu(o[e]); ss += y[e] * y[e]; }
            double rs = 1 / sqrt(ss / D + 1e-6);
            for (int e = 0; e < D; e++) y[e] *= rs * p[4][e];
            for (int i = 0; i < D; i++) {
                double acc = 0;
                for (int e = 0; e < D; e++) acc += p[5][i * D + e] * y[e];
                out[((size_t)b * T + t) * D + i] = acc;
            }
        }
    }
    free(o); free(y);
}

// Runs forward on random input; compares with ref (NULL: with o = silu(v_t), alpha forced to 0).
static double identity_err(const MixerCfg *c, int B, int T, double force, uint64_t seed, int zero_expected) {
    const int D = c->d;
    Mixer m;
    if (mixer_create(&m, c, B, T)) return INFINITY;
    real *p[RB_MAX_TENSORS];
    int nt;
    real *slab = mixcheck_params(c, p, &nt, seed);
    size_t n = (size_t)B * T * D;
    real *x = malloc(n * sizeof(real)), *out = malloc(n * sizeof(real));
    double *ref = calloc(n, sizeof(double));
    Rng rng;
    rng_seed(&rng, seed + 5);
    for (size_t i = 0; i < n; i++) x[i] = (real)rng_normal(&rng);
    gsa_test_force_alpha = force;
    m.ops->forward(&m, p, out, x, B, T);
    gsa_test_force_alpha = -1;
    if (!zero_expected) {
        if (c->slots == 1) {
            ref_one_slot(ref, p, x, B, T, D, c->heads, force);
        } else {
            // alpha = 0: every slot row of K_t is k_t, so softmax is uniform; every row of V_t is v_t, so
            // o_t = silu(W_v x_t) whatever m: the one-slot reference with alpha = 0 gives the same.
            ref_one_slot(ref, p, x, B, T, D, c->heads, 0.0);
        }
    }
    double md = 0, mr = 0;
    for (size_t i = 0; i < n; i++) {
        md = fmax(md, fabs(out[i] - ref[i]));
        mr = fmax(mr, fabs(ref[i]));
    }
    free(x); free(out); free(ref); free(slab);
    mixer_destroy(&m);
    return zero_expected ? md : md / fmax(mr, 1e-12);
}

int main(void) {
    int fails = 0;
    const MixerOps *ops = mixer_ops(MIX_GSA);
    if (!ops) { printf("FAIL gsa_ops missing\n"); return 1; }

    // gradients: every tensor and the input, all elements
    MixerCfg c1 = gsa_cfg(16, 1, 4), c2 = gsa_cfg(16, 2, 3), c3 = gsa_cfg(12, 3, 5);
    fails += mixcheck_grad("gsa d16 h1 m4", &c1, 2, 6, 11, 1e-6, 0);
    fails += mixcheck_grad("gsa d16 h2 m3", &c2, 2, 9, 12, 1e-6, 0);
    fails += mixcheck_grad("gsa d12 h3 m5", &c3, 3, 5, 13, 1e-6, 0);
    MixerCfg c6 = gsa_cfg(8, 1, 4);  // long horizon for the gate gradient (sampled elements)
    fails += mixcheck_grad("gsa d8 h1 m4 T48", &c6, 1, 48, 14, 1e-6, 40);

    // recurrent step == parallel
    MixerCfg c4 = gsa_cfg(64, 1, 64), c5 = gsa_cfg(32, 4, 8);
    fails += mixcheck_step("gsa step d16 h1 m4", &c1, 24, 21, 1e-9);
    fails += mixcheck_step("gsa step d16 h2 m3", &c2, 24, 22, 1e-9);
    fails += mixcheck_step("gsa step d64 h1 m64", &c4, 40, 23, 1e-9);
    fails += mixcheck_step("gsa step d32 h4 m8", &c5, 40, 24, 1e-9);

    // hand-computable identities
    MixerCfg s1 = gsa_cfg(8, 1, 1), s2 = gsa_cfg(8, 2, 1), s5 = gsa_cfg(8, 1, 5);
    fails += check_report("gsa m1 alpha=0.3: o = EMA(silu(v))", identity_err(&s1, 2, 9, 0.3, 31, 0), 1e-12);
    fails += check_report("gsa m1 h2 learned alpha: o = EMA(silu(v))", identity_err(&s2, 2, 9, -1, 32, 0), 1e-12);
    fails += check_report("gsa m5 alpha=0: o = silu(v)", identity_err(&s5, 2, 9, 0.0, 33, 0), 1e-12);
    fails += check_report("gsa m5 alpha=1: state stays 0, out = 0", identity_err(&s5, 2, 9, 1.0, 34, 1), 0);

    // validation
    char err[160];
    MixerCfg bad = gsa_cfg(16, 1, 0);
    int r1 = ops->validate(&bad, err, sizeof err);
    bad = gsa_cfg(16, 3, 4);
    int r2 = ops->validate(&bad, err, sizeof err);
    int r3 = ops->validate(&c4, err, sizeof err);
    fails += check_report("gsa validate (slots 0, heads 3 of 16 rejected; default ok)",
                          (r1 == -1 && r2 == -1 && r3 == 0) ? 0 : 1, 0);

    // known-answer state size: d = 64, m = 64 -> 2 m d = 8192 floats, any head count
    MixerCfg k1 = gsa_cfg(64, 1, 64), k4 = gsa_cfg(64, 4, 64);
    Mixer mk;
    double e = fabs(ops->state_floats(&k1, 256) - 2.0 * 64 * 64) + fabs(ops->state_floats(&k4, 256) - 2.0 * 64 * 64);
    if (mixer_create(&mk, &k4, 1, 1) == 0) {
        e += fabs((double)ops->step_state_size(&mk) - 8192);
        mixer_destroy(&mk);
    } else e = INFINITY;
    fails += check_report("gsa state floats d64 m64 = 2*64*64 (h1, h4, step)", e, 0);
    printf("gsa state_formula: %s\n", ops->state_formula);
    return fails ? 1 : 0;
}
