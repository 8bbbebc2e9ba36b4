// test_mamba.c — the mamba mixer (models.md "mamba"): gradients by finite differences, step ==
// parallel scan, delta -> 0 keeps the state, state size, init and decay flags. Double build.
// Depends on mixcheck.h, mixers/mamba_internal.h.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "mixcheck.h"
#include "../models/mixers/mamba_internal.h"

static MixerCfg cfg(int d, int N, int expand) {
    MixerCfg c;
    mixer_cfg_default(&c, MIX_MAMBA, d, 1, 2);
    c.state_dim = N;
    c.expand = expand;
    return c;
}

static double loss_of(Mixer *m, real *const *p, real *out, const real *inp, const real *R, int B, int T) {
    m->ops->forward(m, p, out, inp, B, T);
    double s = 0;
    for (size_t i = 0; i < (size_t)B * T * m->cfg.d; i++) s += (double)out[i] * R[i];
    return s;
}

// Finite-difference check (as mixcheck_grad) with dt_bias ~ N(bias, 1) instead of mamba's init, so
// that delta = O(1) and the decays exp(delta A) are far from 1: the regime where errors in the
// reverse-time recurrence show. Every element of every tensor and of the input. large = 0 keeps
// mamba's init (small delta) and only sets the step h.
static int grad_check(const char *name, const MixerCfg *c, int B, int T, int large, double bias, double h,
                      double tol) {
    const MixerOps *ops = mixer_ops(c->kind);
    Mixer m;
    if (mixer_create(&m, c, B, T)) return check_report(name, INFINITY, tol);
    real *p[RB_MAX_TENSORS], *dp[RB_MAX_TENSORS];
    int nt;
    real *slab = mixcheck_params(c, p, &nt, 7);
    ParamSpec sp[RB_MAX_TENSORS];
    ops->param_specs(c, sp);
    Rng rng;
    rng_seed(&rng, 99);
    for (size_t j = 0; large && j < sp[MAMBA_B_DT].numel; j++) p[MAMBA_B_DT][j] = bias + rng_normal(&rng);
    for (size_t j = 0; large && j < sp[MAMBA_A_LOG].numel; j++) p[MAMBA_A_LOG][j] += 0.3 * rng_normal(&rng);
    size_t total = 0;
    for (int i = 0; i < nt; i++) total += sp[i].numel;
    real *dslab = calloc(total, sizeof(real));
    for (size_t i = 0, off = 0; i < (size_t)nt; off += sp[i].numel, i++) dp[i] = dslab + off;
    size_t n = (size_t)B * T * c->d;
    real *inp = malloc(n * sizeof(real)), *out = malloc(n * sizeof(real)), *R = malloc(n * sizeof(real));
    real *dinp = malloc(n * sizeof(real));
    for (size_t i = 0; i < n; i++) { inp[i] = rng_normal(&rng); R[i] = rng_normal(&rng); }
    loss_of(&m, p, out, inp, R, B, T);
    ops->backward(&m, p, dp, dinp, R, inp, B, T);
    double worst = 0;
    for (int t = -1; t < nt; t++) {
        real *v = t < 0 ? inp : p[t], *g = t < 0 ? dinp : dp[t];
        size_t ne = t < 0 ? n : sp[t].numel;
        double md = 0, mn = 0;
        for (size_t j = 0; j < ne; j++) {
            real save = v[j];
            v[j] = save + h; double lp = loss_of(&m, p, out, inp, R, B, T);
            v[j] = save - h; double lm = loss_of(&m, p, out, inp, R, B, T);
            v[j] = save;
            double num = (lp - lm) / (2 * h);
            md = fmax(md, fabs(num - g[j]));
            mn = fmax(mn, fabs(num));
        }
        double e = md / fmax(mn, 1e-8);
        if (!(e <= worst)) worst = e;
    }
    free(inp); free(out); free(R); free(dinp); free(slab); free(dslab);
    mixer_destroy(&m);
    return check_report(name, worst, tol);
}

// Runs `steps` tokens of the step form from a random nonzero state; returns max |h_after - h_before|
// over the SSM state. dt_bias is set to `bdt` (very negative: softplus -> 0, so delta -> 0).
static double state_drift(const MixerCfg *c, double bdt, int steps) {
    const MixerOps *ops = mixer_ops(c->kind);
    Mixer m;
    if (mixer_create(&m, c, 1, steps)) return INFINITY;
    real *p[RB_MAX_TENSORS];
    int nt;
    real *slab = mixcheck_params(c, p, &nt, 11);
    for (int i = 0; i < mamba_d_inner(c); i++) p[MAMBA_B_DT][i] = (real)bdt;
    size_t ss = ops->step_state_size(&m), ho = mamba_state_h_offset(c), hn = mamba_state_h_size(c);
    real *state = malloc(ss * sizeof(real)), *h0 = malloc(hn * sizeof(real));
    real *x = malloc(c->d * sizeof(real)), *o = malloc(c->d * sizeof(real));
    Rng rng;
    rng_seed(&rng, 5);
    for (size_t i = 0; i < ss; i++) state[i] = rng_normal(&rng);
    memcpy(h0, state + ho, hn * sizeof(real));
    for (int t = 0; t < steps; t++) {
        for (int i = 0; i < c->d; i++) x[i] = rng_normal(&rng);
        ops->step(&m, p, state, o, x, t + 1);
    }
    double md = 0;
    for (size_t i = 0; i < hn; i++) md = fmax(md, fabs((double)state[ho + i] - h0[i]));
    free(state); free(h0); free(x); free(o); free(slab);
    mixer_destroy(&m);
    return md;
}

// The registry refers to mixers weakly, and a weak reference does not pull an object out of a static
// library: naming mamba_ops here links it.
extern const MixerOps mamba_ops;

int main(void) {
    int fails = 0;
    const MixerOps *ops = mixer_ops(MIX_MAMBA);
    if (ops != &mamba_ops || !ops->forward) { printf("FAIL mamba mixer not in the registry\n"); return 1; }

    // Gradients: every element of every tensor (in_proj, conv_w, conv_b, x_proj, dt_proj, dt_bias,
    // A_log, D, out_proj) and of the input.
    MixerCfg c1 = cfg(8, 4, 2), c2 = cfg(20, 3, 1);  // c2: expand 1, dt_rank 2
    fails += mixcheck_grad("mamba d8 N4 e2 B2 T6", &c1, 2, 6, 1, 1e-6, 0);
    // d20 at mamba's init: A_log's gradient is ~1e-5 of the loss here (delta <= 0.1 and the reference
    // init's smaller projections), so central differences at h = 1e-5 are rounding-limited (A_log's
    // error grows as 1/h: 2.2e-7 at h 1e-4, 2.2e-6 at 1e-5, 2.2e-5 at 1e-6); h = 1e-4 resolves it.
    fails += grad_check("mamba grad d20 N3 e1 B2 T5 at init, h 1e-4 (all tensors)", &c2, 2, 5, 0, 0, 1e-4, 1e-6);
    fails += grad_check("mamba grad delta=O(1) d8 N4 B2 T6 (all tensors)", &c1, 2, 6, 1, 0.5, 1e-5, 1e-6);
    fails += grad_check("mamba grad delta=O(1) d20 N3 e1 B3 T5 (all)", &c2, 3, 5, 1, -0.5, 1e-5, 1e-6);

    // Recurrent step == parallel scan (T > conv kernel, so the conv buffer rolls).
    fails += mixcheck_step("mamba step == scan d8 N4 e2 T9", &c1, 9, 3, 1e-9);
    fails += mixcheck_step("mamba step == scan d20 N3 e1 T7", &c2, 7, 4, 1e-9);
    MixerCfg c3 = cfg(32, 16, 2);
    fails += mixcheck_step("mamba step == scan d32 N16 e2 T40", &c3, 40, 5, 1e-9);

    // delta -> 0 (dt_bias = -60: softplus ~ 1e-26): exp(delta A) -> 1 and delta B x -> 0, so h is
    // unchanged over 10 tokens from a random state. Control: at mamba's init delta >= 1e-3 and h moves.
    double frozen = state_drift(&c1, -60.0, 10), moving = state_drift(&c1, log(expm1(0.05)), 10);
    fails += check_report("mamba delta->0 keeps h (max |dh|, 10 steps)", frozen, 1e-15);
    printf("     control: delta=0.05 moves h by %.3e (must exceed 1e-3)\n", moving);
    fails += check_report("mamba delta=0.05 moves h (1e-3 / max |dh|)", 1e-3 / moving, 1.0);

    // Known-answer state size: d 64, N 16, expand 2 -> d_inner N = 2 * 64 * 16.
    MixerCfg c4 = cfg(64, 16, 2);
    double sf = ops->state_floats(&c4, 1000);
    fails += check_report("mamba state_floats(d64 N16 e2) == 2048", fabs(sf - 2.0 * 64 * 16), 0);
    printf("     state_formula=%s\n", ops->state_formula);
    Mixer m4;
    if (mixer_create(&m4, &c4, 1, 8)) fails += check_report("mamba create d64", INFINITY, 0);
    else {
        size_t ss = ops->step_state_size(&m4);
        fails += check_report("mamba step_state_size == 3*128 + 128*16", fabs((double)ss - (3 * 128 + 128 * 16)), 0);
        mixer_destroy(&m4);
    }

    // Tensors: names, sizes, decay flags (A_log, D and the biases: no decay; matrices: decay).
    {
        ParamSpec sp[RB_MAX_TENSORS];
        int nt = ops->param_specs(&c4, sp), bad = 0;
        const char *names[] = {"in_proj", "conv_w", "conv_b", "x_proj", "dt_proj", "dt_bias", "A_log", "D", "out_proj"};
        const int decay[] = {1, 1, 0, 1, 1, 0, 0, 0, 1};
        const size_t numel[] = {256 * 64, 128 * 4, 128, (4 + 32) * 128, 128 * 4, 128, 128 * 16, 128, 64 * 128};
        bad += nt != MAMBA_NTENSORS;
        for (int i = 0; i < nt && i < MAMBA_NTENSORS; i++) {
            int b = strcmp(sp[i].name, names[i]) != 0 || sp[i].decay != decay[i] || sp[i].numel != numel[i];
            if (b) printf("     tensor %d: %s numel %zu decay %d\n", i, sp[i].name, sp[i].numel, sp[i].decay);
            bad += b;
        }
        // in_proj, x_proj, out_proj: mamba's own init (below), not the shell's N(0, 0.02).
        bad += sp[MAMBA_W_OUT].init != INIT_CUSTOM || sp[MAMBA_W_IN].init != INIT_CUSTOM || sp[MAMBA_W_X].init != INIT_CUSTOM;
        fails += check_report("mamba tensors: names, sizes, decay (A_log, D: 0)", bad, 0);
    }

    // Init (mamba_simple.py): softplus(dt_bias) in [1e-3, 0.1], |W_dt| <= dt_rank^-0.5, A_log = log(n+1),
    // D = 1, conv ~ U(+-1/2). Reports the largest violation.
    {
        real *p[RB_MAX_TENSORS];
        int nt;
        real *slab = mixcheck_params(&c4, p, &nt, 42);
        const char *names_init[3] = {"in_proj", "x_proj", "out_proj"};
        int E = mamba_d_inner(&c4), N = c4.state_dim, R = mamba_dt_rank(&c4);
        double v = 0, dtmin = 1, dtmax = 0;
        for (int i = 0; i < E; i++) {
            double dt = log1p(exp(p[MAMBA_B_DT][i]));
            dtmin = fmin(dtmin, dt); dtmax = fmax(dtmax, dt);
            v = fmax(v, fmax(1e-3 - dt, dt - 0.1));
            v = fmax(v, fabs(p[MAMBA_D][i] - 1));
            v = fmax(v, fabs(p[MAMBA_CONV_B][i]) - 0.5);
            for (int n = 0; n < N; n++) v = fmax(v, fabs(p[MAMBA_A_LOG][i * N + n] - log(n + 1.0)));
            for (int k = 0; k < 4; k++) v = fmax(v, fabs(p[MAMBA_CONV_W][i * 4 + k]) - 0.5);
            for (int r = 0; r < R; r++) v = fmax(v, fabs(p[MAMBA_W_DT][i * R + r]) - 1 / sqrt((double)R));
        }
        // in_proj, x_proj: nn.Linear's default U(+-1/sqrt(fan_in)); out_proj that / sqrt(n_layers = 2)
        // (mamba_simple, zoology). Each must reach its bound (max |w| > 0.99 bound), stay within it, and
        // have the uniform's std bound/sqrt(3) to 5%.
        {
            const int t[3] = {MAMBA_W_IN, MAMBA_W_X, MAMBA_W_OUT};
            const size_t n[3] = {(size_t)2 * E * 64, (size_t)(R + 2 * N) * E, (size_t)64 * E};
            const double bound[3] = {1 / sqrt(64.0), 1 / sqrt((double)E), 1 / sqrt((double)E) / sqrt(2.0)};
            for (int k = 0; k < 3; k++) {
                double mx = 0, ss = 0;
                for (size_t j = 0; j < n[k]; j++) { mx = fmax(mx, fabs(p[t[k]][j])); ss += p[t[k]][j] * p[t[k]][j]; }
                double sd = sqrt(ss / n[k]), want = bound[k] / sqrt(3.0);
                printf("     init %s: max |w| %.4f (bound %.4f), std %.4f (uniform %.4f)\n", names_init[k], mx, bound[k], sd, want);
                v = fmax(v, fmax(mx - bound[k], 0.99 * bound[k] - mx));
                v = fmax(v, fabs(sd / want - 1) - 0.05);
            }
        }
        printf("     init: softplus(dt_bias) in [%.2e, %.2e]\n", dtmin, dtmax);
        fails += check_report("mamba init (in/x/out_proj, dt range, W_dt, A_log, D, conv)", v, 1e-12);
        // log-uniform: about half the dts below sqrt(1e-3 * 0.1) = 0.01
        int below = 0;
        for (int i = 0; i < E; i++) below += log1p(exp(p[MAMBA_B_DT][i])) < 0.01;
        fails += check_report("mamba init dt log-uniform (|frac below 0.01 - 1/2|)", fabs(below / (double)E - 0.5), 0.15);
        free(slab);
    }

    // validate rejects what it must.
    {
        char err[160];
        MixerCfg bad1 = cfg(8, 0, 2), bad2 = cfg(8, 4, 0);
        int r = (ops->validate(&c1, err, sizeof err) == 0) + (ops->validate(&bad1, err, sizeof err) != 0) +
                (ops->validate(&bad2, err, sizeof err) != 0);
        printf("     validate: %s\n", err);
        fails += check_report("mamba validate (ok cfg, --state-dim 0, --expand 0)", 3 - r, 0);
    }
    printf("%s\n", fails ? "FAILED" : "all passed");
    return fails ? 1 : 0;
}
