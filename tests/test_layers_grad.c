// test_layers_grad.c — finite-difference checks (double) of every layer forward/backward pair in
// layers.c: embedding, layernorm, rmsnorm, linear, GELU, MLP, cross-entropy, short conv, and the
// multi-head attention core (full and windowed). Loss = sum(out * R) (cross-entropy: its own mean).
// Depends on layers.h, mixcheck.h (check_report), the f64 models library.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../models/layers.h"
#include "mixcheck.h"

#ifndef RB_DOUBLE
#error "test_layers_grad needs the double build"
#endif

typedef struct { const char *name; real *x, *g; size_t n; } Tens;
typedef double (*LossFn)(void *ctx);
typedef void (*GradFn)(void *ctx);  // zeroes and fills every Tens.g

static Rng rng;
static real *randn(size_t n, double sd, double mu) {
    real *p = malloc((n ? n : 1) * sizeof(real));
    for (size_t i = 0; i < n; i++) p[i] = (real)(mu + sd * rng_normal(&rng));
    return p;
}
static real *zeros(size_t n) { return calloc(n ? n : 1, sizeof(real)); }
static double dot(const real *a, const real *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

// Central differences (h = 1e-6) on every element (or max_n sampled ones) of every tensor.
static int fd_check(const char *layer, Tens *t, int nt, LossFn f, GradFn g, void *ctx, double tol, size_t max_n) {
    g(ctx);
    int fails = 0;
    const double h = 1e-6;
    for (int k = 0; k < nt; k++) {
        double maxd = 0, maxn = 0;
        for (size_t j = 0; j < t[k].n; j++) {
            if (max_n && t[k].n > max_n && rng_below(&rng, t[k].n) >= max_n) continue;
            real s = t[k].x[j];
            t[k].x[j] = s + h; double lp = f(ctx);
            t[k].x[j] = s - h; double lm = f(ctx);
            t[k].x[j] = s;
            double num = (lp - lm) / (2 * h);
            maxd = fmax(maxd, fabs(num - t[k].g[j]));
            maxn = fmax(maxn, fabs(num));
        }
        char lab[128];
        snprintf(lab, sizeof lab, "%s grad %s", layer, t[k].name);
        fails += check_report(lab, maxd / fmax(maxn, 1e-8), tol);
    }
    return fails;
}

// ---- generic context: up to 6 tensors, an output buffer and its weights R -------------------
typedef struct {
    int B, T, D, C, OC, V, K, H, dh, N;
    int32_t *tok, *tgt;
    const int *window;
    Tens t[6];
    int nt;
    real *out, *R, *aux1, *aux2, *aux3, *aux4, *dout;
    size_t nout;
} Ctx;

static void zero_grads(Ctx *c) { for (int k = 0; k < c->nt; k++) memset(c->t[k].g, 0, c->t[k].n * sizeof(real)); }

// embedding: tensors wte, wpe
static double enc_f(void *v) {
    Ctx *c = v;
    encoder_forward(c->out, c->tok, c->t[0].x, c->t[1].x, c->B, c->T, c->D);
    return dot(c->out, c->R, c->nout);
}
static void enc_g(void *v) {
    Ctx *c = v;
    zero_grads(c);
    encoder_backward(c->t[0].g, c->t[1].g, c->R, c->tok, c->B, c->T, c->D);
}
// layernorm: inp, w, b
static double ln_f(void *v) {
    Ctx *c = v;
    layernorm_forward(c->out, c->aux1, c->aux2, c->t[0].x, c->t[1].x, c->t[2].x, c->N, c->D);
    return dot(c->out, c->R, c->nout);
}
static void ln_g(void *v) {
    Ctx *c = v;
    ln_f(c);
    zero_grads(c);
    layernorm_backward(c->t[0].g, c->t[1].g, c->t[2].g, c->R, c->t[0].x, c->t[1].x, c->aux1, c->aux2, c->N, c->D);
}
// rmsnorm: inp, w
static double rms_f(void *v) {
    Ctx *c = v;
    rmsnorm_forward(c->out, c->aux2, c->t[0].x, c->t[1].x, c->N, c->D);
    return dot(c->out, c->R, c->nout);
}
static void rms_g(void *v) {
    Ctx *c = v;
    rms_f(c);
    zero_grads(c);
    rmsnorm_backward(c->t[0].g, c->t[1].g, c->R, c->t[0].x, c->t[1].x, c->aux2, c->N, c->D);
}
// linear: inp [N,C], w [OC,C], b [OC]
static double lin_f(void *v) {
    Ctx *c = v;
    linear_forward(c->out, c->t[0].x, c->t[1].x, c->t[2].x, c->N, c->C, c->OC);
    return dot(c->out, c->R, c->nout);
}
static void lin_g(void *v) {
    Ctx *c = v;
    zero_grads(c);
    for (size_t i = 0; i < c->t[0].n; i++) c->t[0].g[i] = 7;  // acc_dinp = 0 must overwrite
    linear_backward(c->t[0].g, c->t[1].g, c->t[2].g, c->R, c->t[0].x, c->t[1].x, c->N, c->C, c->OC, 0);
}
// gelu: inp
static double gelu_f(void *v) {
    Ctx *c = v;
    gelu_forward(c->out, c->t[0].x, c->nout);
    return dot(c->out, c->R, c->nout);
}
static void gelu_g(void *v) {
    Ctx *c = v;
    gelu_backward(c->t[0].g, c->R, c->t[0].x, c->nout);
}
// mlp: inp [N,D], w1 [4D,D], b1, w2 [D,4D], b2
static double mlp_f(void *v) {
    Ctx *c = v;
    mlp_forward(c->out, c->aux1, c->aux2, c->t[0].x, c->t[1].x, c->t[2].x, c->t[3].x, c->t[4].x, c->N, c->D, 4 * c->D);
    return dot(c->out, c->R, c->nout);
}
static void mlp_g(void *v) {
    Ctx *c = v;
    mlp_f(c);
    zero_grads(c);
    mlp_backward(c->t[0].g, c->t[1].g, c->t[2].g, c->t[3].g, c->t[4].g, c->aux3, c->R, c->t[0].x, c->aux1, c->aux2,
                 c->t[1].x, c->t[3].x, c->N, c->D, 4 * c->D);
}
// cross-entropy: logits [N,V]; loss is the mean CE itself
static double ce_f(void *v) {
    Ctx *c = v;
    return crossentropy_forward(c->out, c->aux1, c->t[0].x, c->tgt, c->N, c->V);
}
static void ce_g(void *v) {
    Ctx *c = v;
    ce_f(c);
    crossentropy_backward(c->t[0].g, c->out, c->tgt, c->N, c->V);
}
// short conv: inp [B,T,D], w [D,K], b [D]
static double sc_f(void *v) {
    Ctx *c = v;
    shortconv_forward(c->out, c->t[0].x, c->t[1].x, c->t[2].x, c->B, c->T, c->D, c->K);
    return dot(c->out, c->R, c->nout);
}
static void sc_g(void *v) {
    Ctx *c = v;
    zero_grads(c);
    shortconv_backward(c->t[0].g, c->t[1].g, c->t[2].g, c->R, c->t[0].x, c->t[1].x, c->B, c->T, c->D, c->K);
}
// attention core: qkv [B,T,3D] fused (ld = 3D), out [B,T,D]
static double mha_f(void *v) {
    Ctx *c = v;
    real *q = c->t[0].x;
    mha_forward(c->out, c->D, c->aux1, NULL, q, q + c->D, q + 2 * c->D, 3 * c->D, c->window, c->B, c->T, c->H, c->dh,
                c->aux2, omp_get_max_threads());
    return dot(c->out, c->R, c->nout);
}
static void mha_g(void *v) {
    Ctx *c = v;
    mha_f(c);
    real *q = c->t[0].x, *g = c->t[0].g;
    for (size_t i = 0; i < c->t[0].n; i++) g[i] = 7;  // must be overwritten
    mha_backward(g, g + c->D, g + 2 * c->D, 3 * c->D, c->R, c->D, c->aux1, NULL, q, q + c->D, q + 2 * c->D, 3 * c->D,
                 c->window, c->B, c->T, c->H, c->dh, c->aux2, omp_get_max_threads());
}

static void add(Ctx *c, const char *name, size_t n, double sd, double mu) {
    c->t[c->nt++] = (Tens){name, randn(n, sd, mu), zeros(n), n};
}
static void ctx_free(Ctx *c) {
    for (int k = 0; k < c->nt; k++) { free(c->t[k].x); free(c->t[k].g); }
    free(c->out); free(c->R); free(c->aux1); free(c->aux2); free(c->aux3); free(c->aux4); free(c->tok); free(c->tgt);
    memset(c, 0, sizeof *c);
}
static void set_out(Ctx *c, size_t n) { c->nout = n; c->out = zeros(n); c->R = randn(n, 1, 0); }

int main(void) {
    rng_seed(&rng, 1234);
    const double tol = 1e-6;
    int fails = 0;
    Ctx c;

    memset(&c, 0, sizeof c);  // embedding with repeated tokens
    c.B = 2; c.T = 5; c.D = 4; c.V = 6;
    c.tok = malloc(10 * sizeof(int32_t));
    for (int i = 0; i < 10; i++) c.tok[i] = (int32_t)(i * 7 % 4);
    add(&c, "wte", 24, 1, 0); add(&c, "wpe", 20, 1, 0); set_out(&c, 40);
    fails += fd_check("encoder", c.t, c.nt, enc_f, enc_g, &c, tol, 0); ctx_free(&c);

    memset(&c, 0, sizeof c);
    c.N = 7; c.D = 9;
    add(&c, "inp", 63, 1, 0.5); add(&c, "w", 9, 0.3, 1); add(&c, "b", 9, 0.3, 0); set_out(&c, 63);
    c.aux1 = zeros(7); c.aux2 = zeros(7);
    fails += fd_check("layernorm", c.t, c.nt, ln_f, ln_g, &c, tol, 0); ctx_free(&c);

    memset(&c, 0, sizeof c);
    c.N = 7; c.D = 9;
    add(&c, "inp", 63, 1, 0.5); add(&c, "w", 9, 0.3, 1); set_out(&c, 63); c.aux2 = zeros(7);
    fails += fd_check("rmsnorm", c.t, c.nt, rms_f, rms_g, &c, tol, 0); ctx_free(&c);

    memset(&c, 0, sizeof c);  // N large enough for matmul_par to split rows across threads
    c.N = 300; c.C = 24; c.OC = 40;
    add(&c, "inp", 300 * 24, 1, 0); add(&c, "w", 40 * 24, 0.3, 0); add(&c, "b", 40, 0.3, 0); set_out(&c, 300 * 40);
    fails += fd_check("linear", c.t, c.nt, lin_f, lin_g, &c, tol, 200); ctx_free(&c);

    memset(&c, 0, sizeof c);
    add(&c, "inp", 50, 1.5, 0); set_out(&c, 50);
    fails += fd_check("gelu", c.t, c.nt, gelu_f, gelu_g, &c, tol, 0); ctx_free(&c);

    memset(&c, 0, sizeof c);
    c.N = 6; c.D = 5;
    add(&c, "inp", 30, 1, 0); add(&c, "w1", 100, 0.4, 0); add(&c, "b1", 20, 0.3, 0); add(&c, "w2", 100, 0.4, 0);
    add(&c, "b2", 5, 0.3, 0); set_out(&c, 30);
    c.aux1 = zeros(120); c.aux2 = zeros(120); c.aux3 = zeros(120);
    fails += fd_check("mlp", c.t, c.nt, mlp_f, mlp_g, &c, tol, 0); ctx_free(&c);

    memset(&c, 0, sizeof c);  // two rows ignored (tgt -1)
    c.N = 6; c.V = 7;
    c.tgt = malloc(6 * sizeof(int32_t));
    int32_t tg[6] = {3, -1, 0, 6, -1, 2};
    memcpy(c.tgt, tg, sizeof tg);
    add(&c, "logits", 42, 2, 0); c.out = zeros(42); c.aux1 = zeros(6);
    fails += fd_check("crossentropy", c.t, c.nt, ce_f, ce_g, &c, tol, 0); ctx_free(&c);

    memset(&c, 0, sizeof c);
    c.B = 2; c.T = 6; c.D = 5; c.K = 3;
    add(&c, "inp", 60, 1, 0); add(&c, "w", 15, 0.5, 0); add(&c, "b", 5, 0.5, 0); set_out(&c, 60);
    fails += fd_check("shortconv", c.t, c.nt, sc_f, sc_g, &c, tol, 0); ctx_free(&c);

    int wins[3][2] = {{0, 0}, {4, 1}, {33, 70}};  // full causal; windows inside/across 32-row blocks
    const char *wname[3] = {"mha full", "mha window 4,1", "mha window 33,70"};
    for (int w = 0; w < 3; w++) {
        memset(&c, 0, sizeof c);
        c.B = 2; c.T = 45; c.D = 6; c.H = 2; c.dh = 3; c.window = wins[w];
        add(&c, "qkv", (size_t)2 * 45 * 18, 1, 0); set_out(&c, (size_t)2 * 45 * 6);
        c.aux1 = zeros((size_t)2 * 2 * 45);
        c.aux2 = zeros(omp_get_max_threads() * mha_scratch_floats(45));
        fails += fd_check(wname[w], c.t, c.nt, mha_f, mha_g, &c, tol, 0); ctx_free(&c);
    }

    printf("%s: %d layer check(s) failed\n", fails ? "FAIL" : "PASS", fails);
    return fails ? 1 : 0;
}
