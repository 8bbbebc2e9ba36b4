// test_cuda_mamba.c — the device mamba mixer (models/cuda/mamba.cu) against its CPU form
// (models/mixers/mamba.c): forward, every gradient, step == forward (N 5 .. 256); bitwise determinism
// checks; the d_state limits of create(); and (printed, not asserted) the scan kernels' time at the GPU
// reference shape (N 16) and at RegBench's (N 64, 256). Depends on cuda_check.h,
// mixcheck.h, models/cuda/cuda.h, mixers/mamba_internal.h. Exits 77 (skip) without a device.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "../models/cuda/cuda.h"
#include "../models/mixers/mamba_internal.h"
#include "cuda_check.h"
#include "mixcheck.h"

// mamba.cu test support: the two scan kernels alone, ms per call (CUDA events).
void mamba_cuda_scan_ms(Mixer *m, float *const *p, int B, int T, int iters, float *fwd_ms, float *bwd_ms);

static MixerCfg cfg(int d, int N, int expand) {
    MixerCfg c;
    mixer_cfg_default(&c, MIX_MAMBA, d, 1, 2);
    c.state_dim = N;
    c.expand = expand;
    return c;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static float *dev_random(size_t n, Rng *r, double sd) {
    float *h = malloc(n * 4), *d = rb_cuda_alloc(n);
    if (!h || !d) { fprintf(stderr, "out of memory\n"); exit(1); }
    for (size_t i = 0; i < n; i++) h[i] = (float)(sd * rng_normal(r));
    rb_cuda_upload(d, h, n * 4);
    free(h);
    return d;
}

// Device mixer at (c, B, T) with mixcheck's parameters: p/dp tensor pointers into dslab/dgrad.
typedef struct {
    Mixer m;
    float *slab, *grad, *x, *dout, *out, *dinp;
    float *p[RB_MAX_TENSORS], *dp[RB_MAX_TENSORS];
    size_t P, n;
} Dev;

static void dev_open(Dev *v, const MixerCfg *c, int B, int T, uint64_t seed) {
    real *hp[RB_MAX_TENSORS];
    int nt;
    real *hslab = mixcheck_params(c, hp, &nt, seed);
    ParamSpec sp[RB_MAX_TENSORS];
    mixer_ops(c->kind)->param_specs(c, sp);
    v->P = 0;
    for (int i = 0; i < nt; i++) v->P += sp[i].numel;
    v->slab = rb_cuda_alloc(v->P);
    v->grad = rb_cuda_alloc(v->P);
    rb_cuda_upload(v->slab, hslab, v->P * 4);
    for (int i = 0, off = 0; i < nt; off += (int)sp[i].numel, i++) { v->p[i] = v->slab + off; v->dp[i] = v->grad + off; }
    free(hslab);
    Rng r;
    rng_seed(&r, seed + 1);
    v->n = (size_t)B * T * c->d;
    v->x = dev_random(v->n, &r, 1.0);
    v->dout = dev_random(v->n, &r, 1.0);
    v->out = rb_cuda_alloc(v->n);
    v->dinp = rb_cuda_alloc(v->n);
    if (!v->slab || !v->grad || !v->out || !v->dinp || mixer_cuda_create(&v->m, c, B, T)) {
        fprintf(stderr, "device mixer create failed (out of memory?)\n");
        exit(1);
    }
}

static void dev_close(Dev *v) {
    mixer_cuda_destroy(&v->m);
    float *b[] = {v->slab, v->grad, v->x, v->dout, v->out, v->dinp};
    for (int i = 0; i < 6; i++) rb_cuda_free(b[i]);
}

static void dev_step(Dev *v, int B, int T) {
    const MixerCudaOps *o = mixer_cuda_ops(MIX_MAMBA);
    o->forward(&v->m, v->p, v->out, v->x, B, T);
    o->backward(&v->m, v->p, v->dp, v->dinp, v->dout, v->x, B, T);
}

// Same inputs twice from zeroed gradients: out, dinp and every gradient must match bit for bit.
static int determinism(const MixerCfg *c, int B, int T) {
    Dev v;
    dev_open(&v, c, B, T, 5);
    size_t nb = (2 * v.n + v.P) * 4;
    unsigned char *a = malloc(nb), *b = malloc(nb);
    float *zero = calloc(v.P, 4);
    for (int k = 0; k < 2; k++) {
        unsigned char *h = k ? b : a;
        rb_cuda_upload(v.grad, zero, v.P * 4);
        dev_step(&v, B, T);
        rb_cuda_sync();
        rb_cuda_download(h, v.out, v.n * 4);
        rb_cuda_download(h + v.n * 4, v.dinp, v.n * 4);
        rb_cuda_download(h + 2 * v.n * 4, v.grad, v.P * 4);
    }
    size_t diff = 0;
    for (size_t i = 0; i < nb; i++) diff += a[i] != b[i];
    char name[128];
    snprintf(name, sizeof name, "mamba determinism (B%d T%d d%d N%d: differing bytes of out|dinp|grads)", B, T,
             c->d, c->state_dim);
    int bad = check_report(name, (double)diff, 0);
    free(a); free(b); free(zero);
    dev_close(&v);
    return bad;
}

// The device scan's d_state limits: create() accepts N 256 and refuses 257 (default scan), accepts 32
// and refuses 33 under RB_MAMBA_SCAN=serial (each refusal prints its one line). 1 on a wrong answer.
static int limits(void) {
    struct { const char *scan; int N, ok; } cs[] = {{"lanes", 256, 1}, {"lanes", 257, 0}, {"serial", 32, 1},
                                                   {"serial", 33, 0}};
    int wrong = 0;
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        MixerCfg c = cfg(32, cs[i].N, 1);
        Mixer m;
        setenv("RB_MAMBA_SCAN", cs[i].scan, 1);
        const int ok = mixer_cuda_create(&m, &c, 2, 20) == 0;
        if (ok) mixer_cuda_destroy(&m);
        wrong += ok != cs[i].ok;
    }
    unsetenv("RB_MAMBA_SCAN");
    return check_report("mamba create limits (wrong accept/refuse of N 256, 257 lanes; 32, 33 serial)", wrong, 0);
}

// Timing, printed, not asserted: at the GPU reference shape (d 128, N 16, expand 2, B 256, L 256), or
// at N > 32 at RegBench's shape (d 128, expand 2, batch 32, T 1024: the bla-paper-regbench sweep).
// scan: "lanes" (the default kernels; the wide ones at N > 32) or "serial" (RB_MAMBA_SCAN=serial, the
// one-thread-per-channel ones, N <= 32).
static void timing(const char *scan, int N) {
    const int B = N > 32 ? 32 : 256, T = N > 32 ? 1024 : 256, it = 20;
    MixerCfg c = cfg(128, N, 2);
    Dev v;
    setenv("RB_MAMBA_SCAN", scan, 1);
    dev_open(&v, &c, B, T, 9);
    rb_cuda_set_precision(RB_PREC_TF32);
    dev_step(&v, B, T);
    rb_cuda_sync();
    double t0 = now_s();
    for (int i = 0; i < it; i++) dev_step(&v, B, T);
    rb_cuda_sync();
    double ms = (now_s() - t0) * 1e3 / it;
    float fms, bms;
    mamba_cuda_scan_ms(&v.m, v.p, B, T, it, &fms, &bms);
    printf("timing mamba d128 N%d expand2 B%d T%d (tf32, %s scan): mixer forward+backward %.3f ms (%.1fM "
           "tokens/s of this layer alone); scan kernels: forward %.3f ms, backward %.3f ms\n",
           N, B, T, scan, ms, B * T / ms / 1e3, fms, bms);
    dev_close(&v);
}

int main(void) {
    cuda_check_init_or_skip();
    // fp32: the device uses __expf/expf where the CPU uses its exp_fast (both ~1e-7 relative); the
    // sums differ in order. tf32: GEMM inputs rounded to 10 bits.
    const double tf = 1e-4, tt = 2e-2;
    struct { int d, N, E, B, T; } cs[] = {
        {48, 8, 2, 3, 37},   {48, 16, 1, 2, 1},    {64, 16, 2, 2, 130}, {64, 8, 1, 3, 256},
        {128, 16, 2, 2, 256}, {128, 8, 1, 4, 37},  {48, 5, 2, 2, 33},   {32, 32, 1, 2, 40},
        // N > 32, the wide scan kernels (compiled N 64, 128, 256): N 100 pads states to 128 and E 48
        // channels to 64 (a block is 32 channels); T not a multiple of the 16-token chunk.
        {64, 64, 2, 2, 37},   {48, 100, 1, 2, 45}, {32, 256, 2, 2, 20},  {48, 33, 2, 3, 17},
        // E % 4 != 0: the one-channel conv kernels (the others above are the float4 ones); E 42 spans
        // two 32-lane channel blocks, T 150 two 128-token conv partial rows, the last 16-token run 6 long.
        {42, 16, 1, 2, 150},  {18, 8, 1, 3, 37},
    };
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        MixerCfg c = cfg(cs[i].d, cs[i].N, cs[i].E);
        char label[96];
        snprintf(label, sizeof label, "mamba d%d N%d expand%d", cs[i].d, cs[i].N, cs[i].E);
        cuda_check_mixer(label, &c, cs[i].B, cs[i].T, 100 + i, tf, tt);
    }
    MixerCfg c = cfg(64, 16, 2);
    int bad = determinism(&c, 3, 130);
    c = cfg(48, 100, 1);
    bad |= determinism(&c, 2, 70);
    bad |= limits();
    timing("serial", 16);
    timing("lanes", 16);
    timing("lanes", 64);
    timing("lanes", 256);
    unsetenv("RB_MAMBA_SCAN");
    int rc = cuda_check_done("mamba");
    return rc || bad;
}
