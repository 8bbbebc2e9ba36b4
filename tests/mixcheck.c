// mixcheck.c — generic mixer checks (gradient by finite differences, step vs parallel).
// Depends on mixer.h, rng.h. Compiled into both the f32 and the f64 test programs.
#include "mixcheck.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int check_report(const char *name, double err, double tol) {
    int ok = isfinite(err) && err <= tol;
    printf("%s %-48s err=%.3e tol=%.1e\n", ok ? "PASS" : "FAIL", name, err, tol);
    fflush(stdout);
    return ok ? 0 : 1;
}

real *mixcheck_params(const MixerCfg *c, real **p, int *ntensors, uint64_t seed) {
    const MixerOps *ops = mixer_ops(c->kind);
    ParamSpec sp[RB_MAX_TENSORS];
    int n = ops->param_specs(c, sp);
    size_t total = 0;
    for (int i = 0; i < n; i++) total += sp[i].numel;
    real *slab = malloc((total ? total : 1) * sizeof(real));
    Rng rng;
    rng_seed(&rng, seed);
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        p[i] = slab + off;
        for (size_t j = 0; j < sp[i].numel; j++) {
            double g = rng_normal(&rng);
            switch (sp[i].init) {
            case INIT_ZERO: p[i][j] = (real)(0.1 * g); break;
            case INIT_ONE: p[i][j] = (real)(1 + 0.1 * g); break;
            default: p[i][j] = (real)(0.3 * g); break;
            }
        }
        off += sp[i].numel;
    }
    if (ops->init_custom) ops->init_custom(c, p, &rng);
    *ntensors = n;
    return slab;
}

static double loss_of(Mixer *m, real *const *p, real *out, const real *inp, const real *R, int B, int T) {
    m->ops->forward(m, p, out, inp, B, T);
    double s = 0;
    size_t n = (size_t)B * T * m->cfg.d;
    for (size_t i = 0; i < n; i++) s += (double)out[i] * R[i];
    return s;
}

int mixcheck_grad(const char *name, const MixerCfg *c, int B, int T, uint64_t seed, double tol,
                  int max_per_tensor) {
#ifndef RB_DOUBLE
    fprintf(stderr, "mixcheck_grad needs the double build\n");
    return 1;
#endif
    const MixerOps *ops = mixer_ops(c->kind);
    if (!ops || !ops->forward) return check_report(name, INFINITY, tol);
    Mixer m;
    if (mixer_create(&m, c, B, T)) return check_report(name, INFINITY, tol);
    real *p[RB_MAX_TENSORS], *dp[RB_MAX_TENSORS];
    int nt;
    real *slab = mixcheck_params(c, p, &nt, seed);
    ParamSpec sp[RB_MAX_TENSORS];
    ops->param_specs(c, sp);
    size_t total = 0;
    for (int i = 0; i < nt; i++) total += sp[i].numel;
    real *dslab = calloc(total ? total : 1, sizeof(real));
    for (int i = 0, off = 0; i < nt; off += (int)sp[i].numel, i++) dp[i] = dslab + off;
    size_t n = (size_t)B * T * c->d;
    real *inp = malloc(n * sizeof(real)), *out = malloc(n * sizeof(real)), *R = malloc(n * sizeof(real));
    real *dinp = malloc(n * sizeof(real));
    Rng rng;
    rng_seed(&rng, seed + 17);
    for (size_t i = 0; i < n; i++) { inp[i] = (real)rng_normal(&rng); R[i] = (real)rng_normal(&rng); }
    loss_of(&m, p, out, inp, R, B, T);
    ops->backward(&m, p, dp, dinp, R, inp, B, T);
    const double h = 1e-5;
    int fails = 0;
    char lab[160];
    // inputs
    {
        double maxd = 0, maxn = 0;
        for (size_t i = 0; i < n; i++) {
            if (max_per_tensor && n > (size_t)max_per_tensor && rng_below(&rng, n) >= (uint64_t)max_per_tensor) continue;
            real save = inp[i];
            inp[i] = save + h; double lp = loss_of(&m, p, out, inp, R, B, T);
            inp[i] = save - h; double lm = loss_of(&m, p, out, inp, R, B, T);
            inp[i] = save;
            double num = (lp - lm) / (2 * h);
            maxd = fmax(maxd, fabs(num - dinp[i]));
            maxn = fmax(maxn, fabs(num));
        }
        snprintf(lab, sizeof lab, "%s grad input", name);
        fails += check_report(lab, maxd / fmax(maxn, 1e-8), tol);
    }
    for (int t = 0; t < nt; t++) {
        double maxd = 0, maxn = 0;
        size_t ne = sp[t].numel;
        for (size_t j = 0; j < ne; j++) {
            if (max_per_tensor && ne > (size_t)max_per_tensor && rng_below(&rng, ne) >= (uint64_t)max_per_tensor) continue;
            real save = p[t][j];
            p[t][j] = save + h; double lp = loss_of(&m, p, out, inp, R, B, T);
            p[t][j] = save - h; double lm = loss_of(&m, p, out, inp, R, B, T);
            p[t][j] = save;
            double num = (lp - lm) / (2 * h);
            maxd = fmax(maxd, fabs(num - dp[t][j]));
            maxn = fmax(maxn, fabs(num));
        }
        snprintf(lab, sizeof lab, "%s grad %s", name, sp[t].name);
        fails += check_report(lab, maxd / fmax(maxn, 1e-8), tol);
    }
    free(inp); free(out); free(R); free(dinp); free(slab); free(dslab);
    mixer_destroy(&m);
    return fails ? 1 : 0;
}

int mixcheck_step(const char *name, const MixerCfg *c, int T, uint64_t seed, double tol) {
    const MixerOps *ops = mixer_ops(c->kind);
    if (!ops || !ops->forward || !ops->step) return check_report(name, INFINITY, tol);
    const int B = 2, D = c->d;
    Mixer m;
    if (mixer_create(&m, c, B, T)) return check_report(name, INFINITY, tol);
    real *p[RB_MAX_TENSORS];
    int nt;
    real *slab = mixcheck_params(c, p, &nt, seed);
    size_t n = (size_t)B * T * D;
    real *inp = malloc(n * sizeof(real)), *out = malloc(n * sizeof(real)), *o = malloc(D * sizeof(real));
    Rng rng;
    rng_seed(&rng, seed + 29);
    for (size_t i = 0; i < n; i++) inp[i] = (real)rng_normal(&rng);
    ops->forward(&m, p, out, inp, B, T);
    size_t ss = ops->step_state_size(&m);
    real *state = malloc((ss ? ss : 1) * sizeof(real));
    double worst = 0;
    for (int b = 0; b < B; b++) {
        memset(state, 0, (ss ? ss : 1) * sizeof(real));
        for (int t = 0; t < T; t++) {
            const real *x = inp + ((size_t)b * T + t) * D, *ref = out + ((size_t)b * T + t) * D;
            ops->step(&m, p, state, o, x, t);
            double md = 0, mr = 0;
            for (int i = 0; i < D; i++) { md = fmax(md, fabs((double)o[i] - ref[i])); mr = fmax(mr, fabs((double)ref[i])); }
            double e = md / fmax(mr, 1e-6);
            if (!(e <= worst)) worst = e;  // keeps NaN
        }
    }
    free(inp); free(out); free(o); free(state); free(slab);
    mixer_destroy(&m);
    return check_report(name, worst, tol);
}
