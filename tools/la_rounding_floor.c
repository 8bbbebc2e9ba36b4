// la_rounding_floor.c — the CPU's own fp32 rounding floor of the la mixer at test_cuda_la's d128 h1 f16
// B2 T256 config (its tolerance rests on it): out and dinp with the default GEMM path against the other
// paths (scalar and avx2 are bit-identical by design; blas sums in another order), same inputs as
// cuda_check (seeds 1209-1212). Depends on mixcheck.h, layers.h, the float models library. Build, after
// `ninja -C build`: gcc -O2 -std=c11 -D_GNU_SOURCE -fopenmp -Imodels -Itests -Itasks -Ibuild tools/la_rounding_floor.c
//   tests/mixcheck.c build/librb_models_f32.a -o /tmp/la_round -lopenblas -lm && OMP_NUM_THREADS=1 /tmp/la_round
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "mixcheck.h"
#include "layers.h"
#include "rng.h"
static void fill_normal(float *x, size_t n, Rng *r, double sd) { for (size_t i = 0; i < n; i++) x[i] = (float)(sd * rng_normal(r)); }
static double rel_err(const float *a, const float *ref, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) { double d = fabs((double)a[i] - ref[i]); if (d > num) num = d; if (fabs(ref[i]) > den) den = fabs(ref[i]); }
    return den > 0 ? num / den : num;
}
static void run(const MixerCfg *c, int B, int T, uint64_t seed, float *out, float *dinp) {
    const MixerOps *ops = mixer_ops(c->kind);
    size_t n = (size_t)B * T * c->d;
    real *p[RB_MAX_TENSORS], *dp[RB_MAX_TENSORS]; int nt;
    real *slab = mixcheck_params(c, p, &nt, seed);
    ParamSpec sp[RB_MAX_TENSORS]; ops->param_specs(c, sp);
    size_t P = 0; for (int i = 0; i < nt; i++) P += sp[i].numel;
    Rng r; rng_seed(&r, seed ^ 0x9e3779b97f4a7c15ull);
    float *x = malloc(n * 4), *dout = malloc(n * 4), *g = malloc(P * 4);
    fill_normal(x, n, &r, 1.0); fill_normal(dout, n, &r, 1.0); fill_normal(g, P, &r, 0.1);
    for (int i = 0, off = 0; i < nt; off += (int)sp[i].numel, i++) dp[i] = g + off;
    Mixer m; mixer_create(&m, c, B, T);
    ops->forward(&m, p, out, x, B, T); ops->backward(&m, p, dp, dinp, dout, x, B, T);
    mixer_destroy(&m); free(x); free(dout); free(g); free(slab);
}
int main(void) {
    MixerCfg c; mixer_cfg_default(&c, MIX_LA, 128, 1, 2); c.feature_map = LA_TAYLOR; c.feature_dim = 16;
    int B = 2, T = 256; size_t n = (size_t)B * T * 128;
    float *o0 = malloc(n * 4), *d0 = malloc(n * 4), *o1 = malloc(n * 4), *d1 = malloc(n * 4);
    const char *def = rb_gemm_path(); printf("default path %s\n", def);
    for (uint64_t seed = 1209; seed < 1213; seed++) {
        run(&c, B, T, seed, o0, d0);
        const char *paths[] = {"scalar", "blas", "avx2"};
        for (int k = 0; k < 3; k++) {
            if (rb_gemm_force(paths[k])) continue;
            run(&c, B, T, seed, o1, d1);
            printf("seed %llu default vs %-6s: out %.3e dinp %.3e\n", (unsigned long long)seed, paths[k], rel_err(o1, o0, n), rel_err(d1, d0, n));
        }
        rb_gemm_force(def);
    }
    return 0;
}
