// cuda_check.c — the device-vs-CPU mixer check of cuda_check.h (llm.c dev/cuda pattern: random
// inputs, never zeros; outputs poisoned with NaN first so an unwritten element fails; error and
// tolerance printed). Depends on mixcheck.h, models/cuda/cuda.h, rng.h.
#include "cuda_check.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../models/cuda/cuda.h"
#include "mixcheck.h"

static int g_checks, g_failed;

void cuda_check_init_or_skip(void) {
    char err[256];
    if (rb_cuda_init(err, sizeof err)) {
        printf("SKIP: %s\n", err);
        exit(77);
    }
    printf("device: %s\n", rb_cuda_device_name());
}

static double rel_err(const float *a, const float *ref, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - ref[i]);
        if (!isfinite(a[i])) return INFINITY;
        if (d > num) num = d;
        if (fabs(ref[i]) > den) den = fabs(ref[i]);
    }
    return den > 0 ? num / den : num;
}

static int report(const char *label, const char *what, double err, double tol) {
    char name[160];
    snprintf(name, sizeof name, "%s %s", label, what);
    g_checks++;
    int bad = check_report(name, err, tol);
    g_failed += bad;
    return bad;
}

static float *dev_copy(const float *h, size_t n) {
    float *d = rb_cuda_alloc(n);
    if (!d) { fprintf(stderr, "out of device memory\n"); exit(1); }
    rb_cuda_upload(d, h, n * sizeof(float));
    return d;
}

static void fill_normal(float *x, size_t n, Rng *r, double sd) {
    for (size_t i = 0; i < n; i++) x[i] = (float)(sd * rng_normal(r));
}

int cuda_check_mixer(const char *label, const MixerCfg *c, int B, int T, uint64_t seed, double tol_fp32,
                     double tol_tf32) {
    const MixerOps *ops = mixer_ops(c->kind);
    const MixerCudaOps *dops = mixer_cuda_ops(c->kind);
    int fails = 0;
    char err[256];
    if (ops->validate && ops->validate(c, err, sizeof err)) {
        printf("FAIL %s: invalid config: %s\n", label, err);
        g_checks++; g_failed++;
        return 1;
    }
    if (!dops) return report(label, "has a device form", INFINITY, 0);
    const size_t D = (size_t)c->d, n = (size_t)B * T * D;
    real *p[RB_MAX_TENSORS], *dp[RB_MAX_TENSORS];
    int nt;
    real *slab = mixcheck_params(c, p, &nt, seed);
    ParamSpec sp[RB_MAX_TENSORS];
    ops->param_specs(c, sp);
    size_t P = 0;
    for (int i = 0; i < nt; i++) P += sp[i].numel;
    Rng r;
    rng_seed(&r, seed ^ 0x9e3779b97f4a7c15ull);
    float *x = malloc(n * 4), *dout = malloc(n * 4), *out = malloc(n * 4), *dinp = malloc(n * 4);
    float *gpre = malloc((P ? P : 1) * 4), *g = malloc((P ? P : 1) * 4), *h = malloc(n * 4);
    fill_normal(x, n, &r, 1.0);
    fill_normal(dout, n, &r, 1.0);
    fill_normal(gpre, P, &r, 0.1);  // gradients accumulate: start both sides from the same values
    memcpy(g, gpre, P * 4);
    for (int i = 0, off = 0; i < nt; off += (int)sp[i].numel, i++) dp[i] = g + off;

    // CPU reference
    Mixer cm;
    if (mixer_create(&cm, c, B, T)) { printf("FAIL %s: CPU mixer create\n", label); exit(1); }
    ops->forward(&cm, p, out, x, B, T);
    ops->backward(&cm, p, dp, dinp, dout, x, B, T);
    mixer_destroy(&cm);

    // device, in fp32 then in tf32
    float *dx = dev_copy(x, n), *ddout = dev_copy(dout, n), *dslab = dev_copy(slab, P ? P : 1);
    float *dg = rb_cuda_alloc(P ? P : 1), *dy = rb_cuda_alloc(n), *ddinp = rb_cuda_alloc(n);
    float *dpp[RB_MAX_TENSORS], *dgp[RB_MAX_TENSORS];
    for (int i = 0, off = 0; i < nt; off += (int)sp[i].numel, i++) { dpp[i] = dslab + off; dgp[i] = dg + off; }
    float *nan_buf = malloc(n * 4);
    for (size_t i = 0; i < n; i++) nan_buf[i] = NAN;
    Mixer dm;
    if (mixer_cuda_create(&dm, c, B, T)) { printf("FAIL %s: device mixer create (out of memory?)\n", label); exit(1); }
    for (int prec = RB_PREC_FP32; prec <= RB_PREC_TF32; prec++) {
        double tol = prec == RB_PREC_FP32 ? tol_fp32 : tol_tf32;
        const char *pn = prec == RB_PREC_FP32 ? "fp32" : "tf32";
        rb_cuda_set_precision(prec);
        rb_cuda_upload(dy, nan_buf, n * 4);
        rb_cuda_upload(ddinp, nan_buf, n * 4);
        rb_cuda_upload(dg, gpre, P * 4);
        dops->forward(&dm, dpp, dy, dx, B, T);
        dops->backward(&dm, dpp, dgp, ddinp, ddout, dx, B, T);
        rb_cuda_sync();
        char what[96];
        rb_cuda_download(h, dy, n * 4);
        snprintf(what, sizeof what, "[%s B%d T%d] forward out", pn, B, T);
        fails += report(label, what, rel_err(h, out, n), tol);
        rb_cuda_download(h, ddinp, n * 4);
        snprintf(what, sizeof what, "[%s] backward dinp", pn);
        fails += report(label, what, rel_err(h, dinp, n), tol);
        float *gd = malloc((P ? P : 1) * 4);
        rb_cuda_download(gd, dg, P * 4);
        for (int i = 0, off = 0; i < nt; off += (int)sp[i].numel, i++) {
            // compare the accumulated gradient minus the common start, relative to the CPU's increment
            double num = 0, den = 0;
            int nonfinite = 0;
            for (size_t j = 0; j < sp[i].numel; j++) {
                double inc_c = (double)g[off + j] - gpre[off + j], inc_d = (double)gd[off + j] - gpre[off + j];
                if (!isfinite(gd[off + j])) nonfinite = 1;
                if (fabs(inc_d - inc_c) > num) num = fabs(inc_d - inc_c);
                if (fabs(inc_c) > den) den = fabs(inc_c);
            }
            snprintf(what, sizeof what, "[%s] backward d%s", pn, sp[i].name);
            fails += report(label, what, nonfinite ? INFINITY : den > 0 ? num / den : num, tol);
        }
        free(gd);
    }

    // step == forward on the device (fp32)
    if (dops->step && dops->step_state_size) {
        rb_cuda_set_precision(RB_PREC_FP32);
        dops->forward(&dm, dpp, dy, dx, B, T);
        float *ref = malloc(n * 4);
        rb_cuda_download(ref, dy, n * 4);
        size_t S = dops->step_state_size(&dm);
        float *zero = calloc((size_t)B * S + 1, 4), *xt = malloc((size_t)B * D * 4), *ot = malloc((size_t)B * D * 4);
        float *dstate = dev_copy(zero, (size_t)B * S + 1), *dxt = rb_cuda_alloc((size_t)B * D), *dot = rb_cuda_alloc((size_t)B * D);
        double num = 0, den = 0;
        int nonfinite = 0;
        for (int t = 0; t < T; t++) {
            for (int b = 0; b < B; b++) memcpy(xt + b * D, x + ((size_t)b * T + t) * D, D * 4);
            rb_cuda_upload(dxt, xt, (size_t)B * D * 4);
            dops->step(&dm, dpp, dstate, dot, dxt, B, t);
            rb_cuda_download(ot, dot, (size_t)B * D * 4);
            for (int b = 0; b < B; b++)
                for (size_t k = 0; k < D; k++) {
                    double a = ot[b * D + k], e = ref[((size_t)b * T + t) * D + k];
                    if (!isfinite(a)) nonfinite = 1;
                    if (fabs(a - e) > num) num = fabs(a - e);
                    if (fabs(e) > den) den = fabs(e);
                }
        }
        char what[96];
        snprintf(what, sizeof what, "[fp32] step == forward (%zu floats/seq)", S);
        fails += report(label, what, nonfinite ? INFINITY : num / (den > 0 ? den : 1), tol_fp32);
        rb_cuda_free(dstate); rb_cuda_free(dxt); rb_cuda_free(dot);
        free(ref); free(zero); free(xt); free(ot);
    } else {
        fails += report(label, "has a device step", INFINITY, 0);
    }
    mixer_cuda_destroy(&dm);
    rb_cuda_free(dx); rb_cuda_free(ddout); rb_cuda_free(dslab); rb_cuda_free(dg); rb_cuda_free(dy); rb_cuda_free(ddinp);
    free(x); free(dout); free(out); free(dinp); free(gpre); free(g); free(h); free(nan_buf); free(slab);
    rb_cuda_set_precision(RB_PREC_TF32);
    return fails;
}

int cuda_check_done(const char *name) {
    printf("cuda %s: %d checks, %d failed\n", name, g_checks, g_failed);
    return g_failed ? 1 : 0;
}
