// test_cuda_attention.c — device attention and swa (models/cuda/attention.cu) against the CPU forms
// (models/mixers/attention.c, swa.c) through cuda_check_mixer; then a timing loop at the GPU reference
// size (printed, not asserted). Depends on cuda_check.h, models/cuda/cuda.h. Exits 77 without a device.
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "../models/cuda/cuda.h"
#include "cuda_check.h"
#include "mixcheck.h"

static MixerCfg cfg(MixerKind k, int d, int heads) {
    MixerCfg c;
    mixer_cfg_default(&c, k, d, heads, 2);
    return c;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

// Mean device time of forward and of forward+backward over iters (stream synchronised around the
// loop only, so host launch time hides behind the queued kernels).
static void bench(const char *label, const MixerCfg *c, int B, int T, int prec) {
    const MixerCudaOps *d = mixer_cuda_ops(c->kind);
    Mixer m;
    if (mixer_cuda_create(&m, c, B, T)) { printf("bench %s: create failed\n", label); return; }
    real *p[RB_MAX_TENSORS];
    int nt;
    real *slab = mixcheck_params(c, p, &nt, 5);
    ParamSpec sp[RB_MAX_TENSORS];
    m.ops->param_specs(c, sp);
    size_t P = 0, n = (size_t)B * T * c->d;
    for (int i = 0; i < nt; i++) P += sp[i].numel;
    float *dslab = rb_cuda_alloc(P), *dg = rb_cuda_alloc(P), *x = rb_cuda_alloc(n), *y = rb_cuda_alloc(n);
    float *dx = rb_cuda_alloc(n);
    float *h = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) h[i] = (float)((i * 2654435761u % 1000) / 500.0 - 1.0);
    rb_cuda_upload(x, h, n * 4);
    rb_cuda_upload(y, h, n * 4);
    rb_cuda_upload(dslab, slab, P * 4);
    rb_cuda_upload(dg, slab, P * 4);
    float *pp[RB_MAX_TENSORS], *gp[RB_MAX_TENSORS];
    for (int i = 0, off = 0; i < nt; off += (int)sp[i].numel, i++) { pp[i] = dslab + off; gp[i] = dg + off; }
    rb_cuda_set_precision(prec);
    const int iters = 20;
    for (int i = 0; i < 3; i++) { d->forward(&m, pp, y, x, B, T); d->backward(&m, pp, gp, dx, y, x, B, T); }
    rb_cuda_sync();
    double t0 = now_s();
    for (int i = 0; i < iters; i++) d->forward(&m, pp, y, x, B, T);
    rb_cuda_sync();
    double t1 = now_s();
    for (int i = 0; i < iters; i++) { d->forward(&m, pp, y, x, B, T); d->backward(&m, pp, gp, dx, y, x, B, T); }
    rb_cuda_sync();
    double t2 = now_s();
    printf("TIME %s [%s B%d T%d d%d H%d]: forward %.3f ms, forward+backward %.3f ms (%.1f M tok/s), incl. projections\n",
           label, prec == RB_PREC_FP32 ? "fp32" : "tf32", B, T, c->d, c->heads, 1e3 * (t1 - t0) / iters,
           1e3 * (t2 - t1) / iters, B * T * iters / (t2 - t1) / 1e6);
    rb_cuda_set_precision(RB_PREC_TF32);
    rb_cuda_free(dslab); rb_cuda_free(dg); rb_cuda_free(x); rb_cuda_free(y); rb_cuda_free(dx);
    free(h); free(slab);
    mixer_cuda_destroy(&m);
}

int main(void) {
    cuda_check_init_or_skip();
    // fp32: the device sums in another order than OpenBLAS over T keys (exp amplifies score
    // differences), 1e-4 relative; tf32: 10-bit mantissa GEMM inputs (projections and the core), 2e-2.
    const double tf = 1e-4, tt = 2e-2;
    const int Ts[] = {1, 37, 130, 256};
    char label[96];
    for (int i = 0; i < 4; i++) {
        MixerCfg c = cfg(MIX_ATTENTION, 64, 1);
        snprintf(label, sizeof label, "attention d64 h1 T%d", Ts[i]);
        cuda_check_mixer(label, &c, 2, Ts[i], 11 + i, tf, tt);
        c = cfg(MIX_ATTENTION, 128, 2);
        snprintf(label, sizeof label, "attention d128 h2 T%d", Ts[i]);
        cuda_check_mixer(label, &c, 2, Ts[i], 21 + i, tf, tt);
        c = cfg(MIX_ATTENTION, 48, 3);
        snprintf(label, sizeof label, "attention d48 h3 T%d", Ts[i]);
        cuda_check_mixer(label, &c, 3, Ts[i], 31 + i, tf, tt);
    }
    MixerCfg c = cfg(MIX_ATTENTION, 48, 1);  // dh 48 on one head
    cuda_check_mixer("attention d48 h1 T100", &c, 2, 100, 41, tf, tt);
    c = cfg(MIX_ATTENTION, 128, 1);  // dh 128
    cuda_check_mixer("attention d128 h1 T200", &c, 2, 200, 42, tf, tt);
    c = cfg(MIX_ATTENTION, 40, 2);  // dh 20: padded to 32
    cuda_check_mixer("attention d40 h2 T70", &c, 2, 70, 43, tf, tt);
    c = cfg(MIX_ATTENTION, 42, 2);  // dh 21, D % 4 != 0: the scalar tile loads
    cuda_check_mixer("attention d42 h2 T70", &c, 2, 70, 44, tf, tt);

    const int Ws[] = {1, 5, 16, 64};
    for (int i = 0; i < 4; i++) {
        c = cfg(MIX_SWA, 64, 1);
        c.window[0] = Ws[i];
        snprintf(label, sizeof label, "swa d64 h1 W%d T150", Ws[i]);
        cuda_check_mixer(label, &c, 2, 150, 51 + i, tf, tt);
        c = cfg(MIX_SWA, 48, 1);
        c.window[0] = Ws[i];
        snprintf(label, sizeof label, "swa d48 h1 W%d T77", Ws[i]);
        cuda_check_mixer(label, &c, 2, 77, 61 + i, tf, tt);
    }
    c = cfg(MIX_SWA, 128, 2);
    c.window[0] = 5; c.window[1] = 100;
    cuda_check_mixer("swa d128 h2 W5,100 T211", &c, 2, 211, 71, tf, tt);
    c = cfg(MIX_SWA, 48, 3);
    c.window[0] = 1; c.window[1] = 16; c.window[2] = 70;
    cuda_check_mixer("swa d48 h3 W1,16,70 T130", &c, 3, 130, 72, tf, tt);
    c = cfg(MIX_SWA, 64, 2);
    c.window[0] = 300; c.window[1] = 64;  // window longer than T: attention
    cuda_check_mixer("swa d64 h2 W300,64 T256", &c, 2, 256, 73, tf, tt);
    c = cfg(MIX_SWA, 42, 3);  // dh 14, scalar loads, windows across a tile edge
    c.window[0] = 3; c.window[1] = 65; c.window[2] = 129;
    cuda_check_mixer("swa d42 h3 W3,65,129 T199", &c, 2, 199, 74, tf, tt);

    // GPU reference size: MQAR L 256, d 128, batch 256 (65536 tokens)
    c = cfg(MIX_ATTENTION, 128, 1);
    bench("attention", &c, 256, 256, RB_PREC_TF32);
    bench("attention", &c, 256, 256, RB_PREC_FP32);
    c = cfg(MIX_ATTENTION, 128, 2);
    bench("attention", &c, 256, 256, RB_PREC_TF32);
    c = cfg(MIX_SWA, 128, 1);
    c.window[0] = 64;
    bench("swa W64", &c, 256, 256, RB_PREC_TF32);
    return cuda_check_done("attention");
}
