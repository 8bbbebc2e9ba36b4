// test_cuda_layers.c — every device layer of models/cuda/layers.cu (and the optimizer of optim.cu)
// against its CPU form in models/layers.c / optim.c, on random inputs (never zeros), odd sizes
// (d = 48, row counts not multiples of the blocks), in fp32 and tf32 GEMM mode. Accumulating outputs
// start from the same random values on both sides and are compared by their increments.
// Depends on models/cuda/layers.cuh, cuda.h, layers.h, optim.h, mixcheck.h (check_report).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../models/cuda/cuda.h"
#include "../models/cuda/layers.cuh"
#include "../models/layers.h"
#include "../models/optim.h"
#include "mixcheck.h"

static int g_checks, g_failed;
static Rng g_rng;

static void check(const char *pn, const char *what, double err, double tol) {
    char name[160];
    snprintf(name, sizeof name, "[%s] %s", pn, what);
    g_checks++;
    g_failed += check_report(name, err, tol);
}

static float *rnd(size_t n, double sd) {
    float *x = malloc((n ? n : 1) * 4);
    for (size_t i = 0; i < n; i++) x[i] = (float)(sd * rng_normal(&g_rng));
    return x;
}
static float *copyf(const float *x, size_t n) {
    float *y = malloc((n ? n : 1) * 4);
    memcpy(y, x, n * 4);
    return y;
}
static void *dup_dev(const void *h, size_t bytes) {
    void *d = rb_cuda_alloc_bytes(bytes ? bytes : 4);
    if (!d) { fprintf(stderr, "out of device memory\n"); exit(1); }
    if (bytes) rb_cuda_upload(d, h, bytes);
    return d;
}
static float *devf(const float *h, size_t n) { return dup_dev(h, n * 4); }
// device -> new host array
static float *back(const float *d, size_t n) {
    float *h = malloc((n ? n : 1) * 4);
    rb_cuda_sync();
    rb_cuda_download(h, d, n * 4);
    return h;
}
static double rel(const float *a, const float *ref, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(a[i])) return INFINITY;
        double e = fabs((double)a[i] - ref[i]);
        if (e > num) num = e;
        if (fabs(ref[i]) > den) den = fabs(ref[i]);
    }
    return den > 0 ? num / den : num;
}
// increments over a common start pre: max|(a - pre) - (ref - pre)| / max|ref - pre|
static double inc(const float *a, const float *ref, const float *pre, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(a[i])) return INFINITY;
        double e = fabs((double)a[i] - ref[i]), r = fabs((double)ref[i] - pre[i]);
        if (e > num) num = e;
        if (r > den) den = r;
    }
    return den > 0 ? num / den : num;
}

static void test_encoder(const char *pn, double tol, int B, int T, int D, int V, int with_pe) {
    int BT = B * T;
    int32_t *tok = malloc(BT * 4);
    for (int i = 0; i < BT; i++) tok[i] = (int32_t)rng_below(&g_rng, V < 7 ? V : 7 + V / 3);  // repeats
    float *wte = rnd((size_t)V * D, 1), *wpe = with_pe ? rnd((size_t)T * D, 1) : NULL, *out = malloc((size_t)BT * D * 4);
    encoder_forward(out, tok, wte, wpe, B, T, D);
    int32_t *dtok = dup_dev(tok, BT * 4);
    float *dwte = devf(wte, (size_t)V * D), *dwpe = wpe ? devf(wpe, (size_t)T * D) : NULL, *dout = rb_cuda_alloc((size_t)BT * D);
    cuda_encoder_forward(dout, dtok, dwte, dwpe, B, T, D);
    float *h = back(dout, (size_t)BT * D);
    char w[96];
    snprintf(w, sizeof w, "encoder_forward B%d T%d D%d V%d pe%d", B, T, D, V, with_pe);
    check(pn, w, rel(h, out, (size_t)BT * D), tol);
    // backward: gradients accumulate onto a random start
    float *g = rnd((size_t)BT * D, 1), *gte = rnd((size_t)V * D, 0.1), *gpe = rnd((size_t)T * D, 0.1);
    float *cte = copyf(gte, (size_t)V * D), *cpe = copyf(gpe, (size_t)T * D);
    encoder_backward(cte, with_pe ? cpe : NULL, g, tok, B, T, D);
    float *dg = devf(g, (size_t)BT * D), *dgte = devf(gte, (size_t)V * D), *dgpe = devf(gpe, (size_t)T * D);
    void *isc = rb_cuda_alloc_bytes(cuda_encoder_scratch_bytes(BT, V));
    cuda_encoder_backward(dgte, with_pe ? dgpe : NULL, dg, dtok, B, T, D, V, isc);
    float *hte = back(dgte, (size_t)V * D), *hpe = back(dgpe, (size_t)T * D);
    snprintf(w, sizeof w, "encoder_backward dwte (V%d, repeated tokens)", V);
    check(pn, w, inc(hte, cte, gte, (size_t)V * D), tol);
    if (with_pe) check(pn, "encoder_backward dwpe", inc(hpe, cpe, gpe, (size_t)T * D), tol);
    free(tok); free(wte); free(wpe); free(out); free(h); free(g); free(gte); free(gpe); free(cte); free(cpe);
    free(hte); free(hpe);
    rb_cuda_free(dtok); rb_cuda_free(dwte); rb_cuda_free(dwpe); rb_cuda_free(dout); rb_cuda_free(dg);
    rb_cuda_free(dgte); rb_cuda_free(dgpe); rb_cuda_free(isc);
}

static void test_norm(const char *pn, double tol, int N, int D, int rms) {
    size_t n = (size_t)N * D;
    float *x = rnd(n, 1), *w = rnd(D, 0.3), *b = rnd(D, 0.3), *g = rnd(n, 1);
    for (int c = 0; c < D; c++) w[c] += 1;
    float *out = malloc(n * 4), *mean = malloc(N * 4), *rstd = malloc(N * 4);
    float *dx0 = rnd(n, 0.1), *dw0 = rnd(D, 0.1), *db0 = rnd(D, 0.1);
    float *dx = copyf(dx0, n), *dw = copyf(dw0, D), *db = copyf(db0, D);
    if (rms) {
        rmsnorm_forward(out, rstd, x, w, N, D);
        rmsnorm_backward(dx, dw, g, x, w, rstd, N, D);
    } else {
        layernorm_forward(out, mean, rstd, x, w, b, N, D);
        layernorm_backward(dx, dw, db, g, x, w, mean, rstd, N, D);
    }
    float *Dx = devf(x, n), *Dw = devf(w, D), *Db = devf(b, D), *Dg = devf(g, n), *Dout = rb_cuda_alloc(n);
    float *Dmean = rb_cuda_alloc(N), *Drstd = rb_cuda_alloc(N), *Ddx = devf(dx0, n), *Ddw = devf(dw0, D), *Ddb = devf(db0, D);
    float *sc = rb_cuda_alloc(cuda_norm_scratch(N, D));
    if (rms) {
        cuda_rmsnorm_forward(Dout, Drstd, Dx, Dw, N, D);
        cuda_rmsnorm_backward(Ddx, Ddw, Dg, Dx, Dw, Drstd, N, D, sc);
    } else {
        cuda_layernorm_forward(Dout, Dmean, Drstd, Dx, Dw, Db, N, D);
        cuda_layernorm_backward(Ddx, Ddw, Ddb, Dg, Dx, Dw, Dmean, Drstd, N, D, sc);
    }
    const char *nm = rms ? "rmsnorm" : "layernorm";
    char w_[96];
    float *h = back(Dout, n);
    snprintf(w_, sizeof w_, "%s_forward out N%d D%d", nm, N, D);
    check(pn, w_, rel(h, out, n), tol);
    free(h);
    h = back(Drstd, N);
    snprintf(w_, sizeof w_, "%s_forward rstd", nm);
    check(pn, w_, rel(h, rstd, N), tol);
    free(h);
    if (!rms) { h = back(Dmean, N); check(pn, "layernorm_forward mean", rel(h, mean, N), tol); free(h); }
    h = back(Ddx, n);
    snprintf(w_, sizeof w_, "%s_backward dinp (+=)", nm);
    check(pn, w_, inc(h, dx, dx0, n), tol);
    free(h);
    h = back(Ddw, D);
    snprintf(w_, sizeof w_, "%s_backward dw", nm);
    check(pn, w_, inc(h, dw, dw0, D), tol);
    free(h);
    if (!rms) { h = back(Ddb, D); check(pn, "layernorm_backward db", inc(h, db, db0, D), tol); free(h); }
    // the residual add fused into the norm (model.cu): res = x0 + f, out = norm(res); with x0 = x - f
    // (float), x0 + f need not equal x, so the reference norm is recomputed from the host's res
    {
        float *f = rnd(n, 1), *x0 = malloc(n * 4), *res = malloc(n * 4), *out2 = malloc(n * 4);
        for (size_t i = 0; i < n; i++) { x0[i] = x[i] - f[i]; res[i] = x0[i] + f[i]; }
        if (rms) rmsnorm_forward(out2, rstd, res, w, N, D);
        else layernorm_forward(out2, mean, rstd, res, w, b, N, D);
        float *Dx0 = devf(x0, n), *Df = devf(f, n), *Dres = rb_cuda_alloc(n);
        if (rms) cuda_rmsnorm_forward_add(Dres, Dout, Drstd, Dx0, Df, Dw, N, D);
        else cuda_layernorm_forward_add(Dres, Dout, Dmean, Drstd, Dx0, Df, Dw, Db, N, D);
        h = back(Dres, n);
        snprintf(w_, sizeof w_, "%s_forward_add res = x + f", nm);
        check(pn, w_, rel(h, res, n), 0);  // the same float add: exact
        free(h);
        h = back(Dout, n);
        snprintf(w_, sizeof w_, "%s_forward_add out", nm);
        check(pn, w_, rel(h, out2, n), tol);
        free(h); free(f); free(x0); free(res); free(out2);
        rb_cuda_free(Dx0); rb_cuda_free(Df); rb_cuda_free(Dres);
    }
    free(x); free(w); free(b); free(g); free(out); free(mean); free(rstd); free(dx0); free(dw0); free(db0);
    free(dx); free(dw); free(db);
    float *dev[] = {Dx, Dw, Db, Dg, Dout, Dmean, Drstd, Ddx, Ddw, Ddb, sc};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) rb_cuda_free(dev[i]);
}

static void test_gelu(const char *pn, double tol, size_t n) {
    float *x = rnd(n, 2), *g = rnd(n, 1), *o = malloc(n * 4), *dx = malloc(n * 4);
    gelu_forward(o, x, n);
    gelu_backward(dx, g, x, n);
    float *Dx = devf(x, n), *Dg = devf(g, n), *Do = rb_cuda_alloc(n), *Ddx = rb_cuda_alloc(n);
    cuda_gelu_forward(Do, Dx, n);
    cuda_gelu_backward(Ddx, Dg, Dx, n);
    float *h = back(Do, n);
    check(pn, "gelu_forward (n 1001)", rel(h, o, n), tol);
    free(h);
    h = back(Ddx, n);
    check(pn, "gelu_backward", rel(h, dx, n), tol);
    free(h); free(x); free(g); free(o); free(dx);
    rb_cuda_free(Dx); rb_cuda_free(Dg); rb_cuda_free(Do); rb_cuda_free(Ddx);
}

static void test_mlp(const char *pn, double tol, int N, int D, int Hd) {
    size_t nd = (size_t)N * D, nh = (size_t)N * Hd;
    float *x = rnd(nd, 1), *w1 = rnd((size_t)Hd * D, 0.2), *b1 = rnd(Hd, 0.2), *w2 = rnd((size_t)D * Hd, 0.2);
    float *b2 = rnd(D, 0.2), *g = rnd(nd, 1);
    float *out = malloc(nd * 4), *h = malloc(nh * 4), *a = malloc(nh * 4), *scr = malloc(nh * 4), *dx = malloc(nd * 4);
    float *g1 = rnd((size_t)Hd * D, 0.1), *gb1 = rnd(Hd, 0.1), *g2 = rnd((size_t)D * Hd, 0.1), *gb2 = rnd(D, 0.1);
    float *c1 = copyf(g1, (size_t)Hd * D), *cb1 = copyf(gb1, Hd), *c2 = copyf(g2, (size_t)D * Hd), *cb2 = copyf(gb2, D);
    mlp_forward(out, h, a, x, w1, b1, w2, b2, N, D, Hd);
    mlp_backward(dx, c1, cb1, c2, cb2, scr, g, x, h, a, w1, w2, N, D, Hd);
    float *Dx = devf(x, nd), *Dw1 = devf(w1, (size_t)Hd * D), *Db1 = devf(b1, Hd), *Dw2 = devf(w2, (size_t)D * Hd);
    float *Db2 = devf(b2, D), *Dg = devf(g, nd), *Dout = rb_cuda_alloc(nd), *Dh = rb_cuda_alloc(nh), *Da = rb_cuda_alloc(nh);
    float *Dscr = rb_cuda_alloc(nh), *Ddx = rb_cuda_alloc(nd), *Dg1 = devf(g1, (size_t)Hd * D), *Dgb1 = devf(gb1, Hd);
    float *Dg2 = devf(g2, (size_t)D * Hd), *Dgb2 = devf(gb2, D), *s2 = rb_cuda_alloc(cuda_colsum_scratch(N, Hd));
    cuda_mlp_forward(Dout, Dh, Da, Dx, Dw1, Db1, Dw2, Db2, N, D, Hd);
    cuda_mlp_backward(Ddx, Dg1, Dgb1, Dg2, Dgb2, Dscr, Dg, Dx, Dh, Da, Dw1, Dw2, N, D, Hd, s2);
    char w[96];
    float *r = back(Dout, nd);
    snprintf(w, sizeof w, "mlp_forward out N%d D%d Hd%d", N, D, Hd);
    check(pn, w, rel(r, out, nd), tol); free(r);
    r = back(Dh, nh); check(pn, "mlp_forward h (fc1 = linear_forward)", rel(r, h, nh), tol); free(r);
    r = back(Ddx, nd); check(pn, "mlp_backward dinp", rel(r, dx, nd), tol); free(r);
    r = back(Dg1, (size_t)Hd * D); check(pn, "mlp_backward dfc1.w", inc(r, c1, g1, (size_t)Hd * D), tol); free(r);
    r = back(Dgb1, Hd); check(pn, "mlp_backward dfc1.b", inc(r, cb1, gb1, Hd), tol); free(r);
    r = back(Dg2, (size_t)D * Hd); check(pn, "mlp_backward dfc2.w", inc(r, c2, g2, (size_t)D * Hd), tol); free(r);
    r = back(Dgb2, D); check(pn, "mlp_backward dfc2.b", inc(r, cb2, gb2, D), tol); free(r);
    float *hs[] = {x, w1, b1, w2, b2, g, out, h, a, scr, dx, g1, gb1, g2, gb2, c1, cb1, c2, cb2};
    for (size_t i = 0; i < sizeof hs / sizeof hs[0]; i++) free(hs[i]);
    float *ds[] = {Dx, Dw1, Db1, Dw2, Db2, Dg, Dout, Dh, Da, Dscr, Ddx, Dg1, Dgb1, Dg2, Dgb2, s2};
    for (size_t i = 0; i < sizeof ds / sizeof ds[0]; i++) rb_cuda_free(ds[i]);
}

static void test_ce(const char *pn, double tol, int N, int V) {
    size_t n = (size_t)N * V;
    float *z = rnd(n, 3), *probs = malloc(n * 4), *losses = malloc(N * 4), *dl = malloc(n * 4);
    int32_t *tgt = malloc(N * 4);
    for (int i = 0; i < N; i++) tgt[i] = i % 5 == 3 ? -1 : (int32_t)rng_below(&g_rng, V);  // some rows unscored
    double loss = crossentropy_forward(probs, losses, z, tgt, N, V);
    crossentropy_backward(dl, probs, tgt, N, V);
    float *Dz = devf(z, n), *Dl = rb_cuda_alloc(N);
    int32_t *Dt = dup_dev(tgt, N * 4);
    double *Dloss = rb_cuda_alloc_bytes(8), dloss;
    void *sc = rb_cuda_alloc_bytes(cuda_ce_scratch_bytes());
    cuda_crossentropy_fused(Dz, Dl, Dloss, Dt, N, V, 1, sc);
    rb_cuda_sync();
    rb_cuda_download(&dloss, Dloss, 8);
    char w[96];
    float *h = back(Dl, N);
    snprintf(w, sizeof w, "crossentropy losses N%d V%d", N, V);
    check(pn, w, rel(h, losses, N), tol); free(h);
    check(pn, "crossentropy mean loss", fabs(dloss - loss) / fabs(loss), tol);
    h = back(Dz, n);
    check(pn, "crossentropy dlogits (in place)", rel(h, dl, n), tol); free(h);
    free(z); free(probs); free(losses); free(dl); free(tgt);
    rb_cuda_free(Dz); rb_cuda_free(Dl); rb_cuda_free(Dt); rb_cuda_free(Dloss); rb_cuda_free(sc);
}

static void test_shortconv(const char *pn, double tol, int B, int T, int D, int K) {
    size_t n = (size_t)B * T * D;
    float *x = rnd(n, 1), *w = rnd((size_t)D * K, 0.5), *b = rnd(D, 0.5), *g = rnd(n, 1), *o = malloc(n * 4);
    float *dx0 = rnd(n, 0.1), *dw0 = rnd((size_t)D * K, 0.1), *db0 = rnd(D, 0.1);
    float *dx = copyf(dx0, n), *dw = copyf(dw0, (size_t)D * K), *db = copyf(db0, D);
    shortconv_forward(o, x, w, b, B, T, D, K);
    shortconv_backward(dx, dw, db, g, x, w, B, T, D, K);
    float *Dx = devf(x, n), *Dw = devf(w, (size_t)D * K), *Db = devf(b, D), *Dg = devf(g, n), *Do = rb_cuda_alloc(n);
    float *Ddx = devf(dx0, n), *Ddw = devf(dw0, (size_t)D * K), *Ddb = devf(db0, D);
    float *sc = rb_cuda_alloc(cuda_shortconv_scratch(B * T, D, K));
    cuda_shortconv_forward(Do, Dx, Dw, Db, B, T, D, K);
    cuda_shortconv_backward(Ddx, Ddw, Ddb, Dg, Dx, Dw, B, T, D, K, sc);
    char wn[96];
    float *h = back(Do, n);
    snprintf(wn, sizeof wn, "shortconv_forward B%d T%d D%d K%d", B, T, D, K);
    check(pn, wn, rel(h, o, n), tol); free(h);
    h = back(Ddx, n); check(pn, "shortconv_backward dinp (+=)", inc(h, dx, dx0, n), tol); free(h);
    h = back(Ddw, (size_t)D * K); check(pn, "shortconv_backward dw", inc(h, dw, dw0, (size_t)D * K), tol); free(h);
    h = back(Ddb, D); check(pn, "shortconv_backward db", inc(h, db, db0, D), tol); free(h);
    float *hs[] = {x, w, b, g, o, dx0, dw0, db0, dx, dw, db};
    for (size_t i = 0; i < sizeof hs / sizeof hs[0]; i++) free(hs[i]);
    float *ds[] = {Dx, Dw, Db, Dg, Do, Ddx, Ddw, Ddb, sc};
    for (size_t i = 0; i < sizeof ds / sizeof ds[0]; i++) rb_cuda_free(ds[i]);
}

// Head scatter of model.c: dres[pos[i]] += dxg[i] with repeated positions (radix sort + run sums).
static void test_scatter(const char *pn, double tol, int R, int np, int D) {
    int32_t *pos = malloc(np * 4);
    for (int i = 0; i < np; i++) pos[i] = (int32_t)rng_below(&g_rng, R / 3 + 1);
    float *src = rnd((size_t)np * D, 1), *dst0 = rnd((size_t)R * D, 0.1), *dst = copyf(dst0, (size_t)R * D);
    for (int i = 0; i < np; i++)
        for (int c = 0; c < D; c++) dst[(size_t)pos[i] * D + c] += src[(size_t)i * D + c];
    int32_t *Dp = dup_dev(pos, np * 4);
    float *Ds = devf(src, (size_t)np * D), *Dd = devf(dst0, (size_t)R * D);
    int *skey = rb_cuda_alloc_bytes(2 * (size_t)np * sizeof(int));
    void *start = rb_cuda_alloc_bytes(cuda_rowsort_scratch_bytes(np, R));
    cuda_rowsort(skey, skey + np, Dp, np, R, start);
    cuda_sorted_rows_add(Dd, Ds, skey, skey + np, np, D);
    float *h = back(Dd, (size_t)R * D);
    char w[96];
    snprintf(w, sizeof w, "rowsort + sorted_rows_add R%d n%d D%d", R, np, D);
    check(pn, w, inc(h, dst, dst0, (size_t)R * D), tol);
    free(h); free(pos); free(src); free(dst0); free(dst);
    rb_cuda_free(Dp); rb_cuda_free(Ds); rb_cuda_free(Dd); rb_cuda_free(start); rb_cuda_free(skey);
}

// optim.cu against optim_step on a real slab (conv model, d = 48): norm and parameters over 3
// steps with clipping active, weight decay on the flagged tensors only and with decay_all.
static void test_adamw(const char *pn, double tol, int decay_all) {
    ModelCfg mc = {0};
    mc.vocab = 37; mc.d_model = 48; mc.n_layers = 1; mc.norm = NORM_LAYER;
    mixer_cfg_default(&mc.layer[0], MIX_CONV, 48, 1, 1);
    char err[256];
    Model *m = model_create(&mc, 2, 8, err, sizeof err);
    if (!m) { printf("FAIL model_create: %s\n", err); g_failed++; return; }
    model_init(m, 5);
    AdamWCfg ac = {.lr = 3e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.1, .clip = 0.5,
                   .decay_all = decay_all};
    Optim *o = optim_create(m, &ac);
    size_t P = model_num_params(m);
    uint8_t *dec = malloc(P);
    for (int i = 0; i < model_num_tensors(m); i++) {
        const TensorInfo *t = model_tensor(m, i);
        memset(dec + t->offset, t->decay, t->numel);
    }
    float *Dp = devf(model_params(m), P), *Dg = rb_cuda_alloc(P), *Dm = rb_cuda_alloc(P), *Dv = rb_cuda_alloc(P);
    float *zero = calloc(P, 4);
    rb_cuda_upload(Dm, zero, P * 4); rb_cuda_upload(Dv, zero, P * 4);
    uint8_t *Ddec = dup_dev(dec, P);
    double *Dnorm = rb_cuda_alloc_bytes(8), *part = rb_cuda_alloc_bytes(cuda_gradnorm_scratch(P) * 8);
    CudaAdamHyper *Dhp = rb_cuda_alloc_bytes(sizeof(CudaAdamHyper));
    float *scal = rb_cuda_alloc(16);
    double worst_n = 0, worst_p = 0;
    for (int step = 1; step <= 3; step++) {
        float *g = model_grads(m);
        for (size_t i = 0; i < P; i++) g[i] = (float)(0.05 * rng_normal(&g_rng));
        rb_cuda_upload(Dg, g, P * 4);
        double lr = 3e-3 * step;
        double n = optim_step(o, m, lr);
        CudaAdamHyper hp = {lr, step, ac.beta1, ac.beta2, ac.eps, ac.weight_decay, ac.clip, decay_all};
        rb_cuda_upload(Dhp, &hp, sizeof hp);
        cuda_grad_norm(Dnorm, Dg, P, part);
        cuda_adamw(Dp, Dg, Dm, Dv, Ddec, P, Dhp, Dnorm, NULL, scal);
        double dn;
        rb_cuda_sync();
        rb_cuda_download(&dn, Dnorm, 8);
        if (fabs(dn - n) / n > worst_n) worst_n = fabs(dn - n) / n;
        float *h = back(Dp, P);
        double e = rel(h, model_params(m), P);
        if (e > worst_p) worst_p = e;
        free(h);
    }
    char w[96];
    snprintf(w, sizeof w, "grad_norm (P %zu, clip active)", P);
    check(pn, w, worst_n, 1e-9);
    snprintf(w, sizeof w, "adamw params after 3 steps (decay_all %d)", decay_all);
    check(pn, w, worst_p, tol);
    free(dec); free(zero);
    rb_cuda_free(Dp); rb_cuda_free(Dg); rb_cuda_free(Dm); rb_cuda_free(Dv); rb_cuda_free(Ddec);
    rb_cuda_free(Dnorm); rb_cuda_free(part); rb_cuda_free(Dhp); rb_cuda_free(scal);
    optim_free(o);
    model_free(m);
}

int main(void) {
    char err[256];
    if (rb_cuda_init(err, sizeof err)) { printf("SKIP: %s\n", err); return 77; }
    printf("device: %s\n", rb_cuda_device_name());
    rng_seed(&g_rng, 11);
    for (int prec = RB_PREC_FP32; prec <= RB_PREC_TF32; prec++) {
        rb_cuda_set_precision(prec);
        const char *pn = prec == RB_PREC_FP32 ? "fp32" : "tf32";
        // non-GEMM layers are fp32 in both modes: the fp32 tolerance applies to them in both
        double tol = 1e-4, tol_gemm = prec == RB_PREC_FP32 ? 1e-4 : 2e-2;
        test_encoder(pn, tol, 3, 37, 48, 67, 1);
        test_encoder(pn, tol, 2, 300, 33, 8192, 0);
        test_encoder(pn, tol, 4, 256, 128, 8192, 0);
        test_norm(pn, tol, 111, 48, 0);
        test_norm(pn, tol, 600, 48, 1);
        test_norm(pn, tol, 37, 1000, 0);
        test_norm(pn, tol, 4100, 128, 0);  // many 64-row chunks (> 32 per final lane), float4-free fit
        test_norm(pn, tol, 700, 256, 1);
        test_norm(pn, tol, 301, 100, 0);
        test_gelu(pn, tol, 1001);
        test_mlp(pn, tol_gemm, 111, 48, 192);
        test_mlp(pn, tol_gemm, 300, 40, 160);
        test_mlp(pn, tol_gemm, 77, 33, 132);  // odd bias widths: the scalar column-sum path
        test_ce(pn, tol, 37, 67);
        test_ce(pn, tol, 29, 8192);
        test_ce(pn, tol, 5, 8000);
        test_ce(pn, tol, 3, 20000);  // too wide for the shared-memory row: the generic kernel
        test_shortconv(pn, tol, 3, 37, 48, 3);
        test_shortconv(pn, tol, 2, 300, 40, 4);
        test_shortconv(pn, tol, 2, 19, 20, 10);
        test_shortconv(pn, tol, 4, 1000, 128, 3);
        test_shortconv(pn, tol, 2, 50, 30, 3);  // D % 4 != 0: the one-channel kernels
        test_scatter(pn, tol, 111, 90, 48);
        test_scatter(pn, tol, 2000, 1500, 33);
        test_scatter(pn, tol, 70000, 5000, 128);  // 17-bit keys
        test_adamw(pn, 1e-5, 0);
        test_adamw(pn, 1e-5, 1);
    }
    printf("cuda layers: %d checks, %d failed\n", g_checks, g_failed);
    return g_failed ? 1 : 0;
}
