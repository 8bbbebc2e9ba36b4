// bench_bla.c — not a test: times one mixer's forward + backward at B=64, T=128, D=64 (bla vs swa vs
// attention), median of reps. Depends on the float models library, mixcheck.c (parameters).
// Build (from the repo root, after ninja -C build-bla):
//   cc -O2 -march=native -fopenmp -Imodels -Itests tests/bench_bla.c tests/mixcheck.c
//      build-bla/librb_models_f32.a -lopenblas -lm -o /tmp/bench_bla && OMP_NUM_THREADS=2 /tmp/bench_bla
// BENCH_CPU_TIME=1 reports process CPU time instead of wall time (robust on a shared machine).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "mixcheck.h"

extern const MixerOps bla_ops, swa_ops, attention_ops;

static double now(void) {
    struct timespec ts;
    clock_gettime(getenv("BENCH_CPU_TIME") ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}
static int cmpd(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void bench(const char *label, MixerCfg c, int B, int T, int reps) {
    Mixer m;
    if (mixer_create(&m, &c, B, T)) { printf("%s: create failed\n", label); return; }
    real *p[RB_MAX_TENSORS], *dp[RB_MAX_TENSORS];
    int nt;
    real *slab = mixcheck_params(&c, p, &nt, 1);
    ParamSpec sp[RB_MAX_TENSORS];
    m.ops->param_specs(&c, sp);
    size_t tot = 0;
    for (int i = 0; i < nt; i++) tot += sp[i].numel;
    real *dslab = calloc(tot, sizeof(real));
    for (size_t i = 0, off = 0; i < (size_t)nt; off += sp[i].numel, i++) dp[i] = dslab + off;
    size_t n = (size_t)B * T * c.d;
    real *x = malloc(n * sizeof(real)), *y = malloc(n * sizeof(real)), *dx = malloc(n * sizeof(real)),
         *dy = malloc(n * sizeof(real));
    for (size_t i = 0; i < n; i++) { x[i] = (real)((i * 7919 % 1000) / 500.0 - 1); dy[i] = (real)((i * 104729 % 1000) / 500.0 - 1); }
    double tf[64], tb[64];
    for (int r = -2; r < reps; r++) {
        double t0 = now();
        m.ops->forward(&m, p, y, x, B, T);
        double t1 = now();
        m.ops->backward(&m, p, dp, dx, dy, x, B, T);
        double t2 = now();
        if (r >= 0) { tf[r] = t1 - t0; tb[r] = t2 - t1; }
    }
    qsort(tf, reps, sizeof(double), cmpd);
    qsort(tb, reps, sizeof(double), cmpd);
    printf("%-34s fwd %7.2f ms  bwd %7.2f ms  fwd+bwd %7.2f ms\n", label, 1e3 * tf[reps / 2], 1e3 * tb[reps / 2],
           1e3 * (tf[reps / 2] + tb[reps / 2]));
    free(x); free(y); free(dx); free(dy); free(slab); free(dslab);
    mixer_destroy(&m);
}

int main(int argc, char **argv) {
    int B = 64, T = 128, D = 64, reps = argc > 1 ? atoi(argv[1]) : 9;
    MixerCfg c;
    mixer_cfg_default(&c, MIX_BLA, D, 1, 2);
    c.window[0] = 128; c.freqs[0] = 16;
    bench("bla W128 N16 dense project", c, B, T, reps);
    c.bla_readout = BLA_READOUT_SLOTS;
    bench("bla W128 N16 slots project", c, B, T, reps);
    c.bla_readout = BLA_READOUT_DENSE;
    c.window[0] = 16;
    bench("bla W16 N16 dense (= swa 16)", c, B, T, reps);
    mixer_cfg_default(&c, MIX_SWA, D, 1, 2);
    c.window[0] = 16;
    bench("swa W16", c, B, T, reps);
    c.window[0] = 128;
    bench("swa W128", c, B, T, reps);
    mixer_cfg_default(&c, MIX_ATTENTION, D, 1, 2);
    bench("attention (causal, masked)", c, B, T, reps);
    (void)bla_ops; (void)swa_ops; (void)attention_ops;
    return 0;
}
