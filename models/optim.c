// optim.c — AdamW over the parameter slab (decoupled, lr-scaled weight decay as PyTorch's AdamW),
// global grad-norm clipping, and the warmup + cosine schedule. Depends on optim.h, layers.h (OpenMP).
#include "optim.h"
#include <math.h>
#include <stdlib.h>
#include "layers.h"

#ifdef RB_DOUBLE
#define RSQRT sqrt
#else
#define RSQRT sqrtf
#endif

enum { SQ_CHUNK = 4096 };

struct Optim {
    AdamWCfg cfg;
    size_t P;
    real *m, *v;      // first and second moments, slab layout
    double *part;     // per-chunk sums of squares
    long t;           // steps taken
};

Optim *optim_create(Model *mdl, const AdamWCfg *cfg) {
    Optim *o = calloc(1, sizeof *o);
    if (!o) return NULL;
    o->cfg = *cfg;
    o->P = model_num_params(mdl);
    o->m = rb_calloc(o->P, sizeof(real));  // aligned (layers.h)
    o->v = rb_calloc(o->P, sizeof(real));
    o->part = calloc(o->P / SQ_CHUNK + 1, sizeof(double));
    if (!o->m || !o->v || !o->part) { optim_free(o); return NULL; }
    return o;
}

void optim_free(Optim *o) {
    if (!o) return;
    free(o->m); free(o->v); free(o->part); free(o);
}

// Sum of squares in fixed 4096-element chunks; chunk sums stored and added in chunk order, so the
// norm is the same for any thread count.
static double grad_sumsq(const real *g, size_t P, double *part) {
    long nch = (long)((P + SQ_CHUNK - 1) / SQ_CHUNK);
#pragma omp parallel for schedule(static)
    for (long c = 0; c < nch; c++) {
        size_t e = (size_t)(c + 1) * SQ_CHUNK < P ? (size_t)(c + 1) * SQ_CHUNK : P;
        double s = 0;
        for (size_t i = (size_t)c * SQ_CHUNK; i < e; i++) s += (double)g[i] * g[i];
        part[c] = s;
    }
    double total = 0;
    for (long c = 0; c < nch; c++) total += part[c];
    return total;
}

// p -= lr * (mhat / (sqrt(vhat) + eps) + wd * p), mhat, vhat bias-corrected (PyTorch AdamW).
double optim_step(Optim *o, Model *mdl, double lr) {
    real *p = model_params(mdl), *g = model_grads(mdl);
    const AdamWCfg *c = &o->cfg;
    double norm = sqrt(grad_sumsq(g, o->P, o->part));
    double gscale = 1;
    if (c->clip > 0 && norm > c->clip) gscale = c->clip / (norm + 1e-6);  // torch clip_grad_norm_
    o->t++;
    const double bc1 = 1 - pow(c->beta1, (double)o->t), bc2 = 1 - pow(c->beta2, (double)o->t);
    // 1 - beta in double: (1 - 0.999f) in float is off by 1.3e-5 relative
    const real b1 = (real)c->beta1, b2 = (real)c->beta2, ob1 = (real)(1 - c->beta1), ob2 = (real)(1 - c->beta2);
    const real gs = (real)gscale;
    const real a = (real)(lr / bc1), rb2 = (real)(1 / sqrt(bc2)), eps = (real)c->eps;
    // One parallel region for all tensors, no barrier between them (every element's update is its
    // own). A region per tensor over 16384 elements left the others on one thread: 21k of the
    // reference config's 54k parameters (the update is ~0.8% of the step's CPU time).
    const int nten = model_num_tensors(mdl);
#pragma omp parallel if (o->P > 16384)
    for (int ti = 0; ti < nten; ti++) {
        const TensorInfo *t = model_tensor(mdl, ti);
        const real decay = (real)(1 - lr * ((c->decay_all || t->decay) ? c->weight_decay : 0));
        real *pt = p + t->offset, *gt = g + t->offset, *mt = o->m + t->offset, *vt = o->v + t->offset;
        const long n = (long)t->numel;
#pragma omp for schedule(static) nowait
        for (long i = 0; i < n; i++) {
            real gi = gt[i] * gs;
            mt[i] = b1 * mt[i] + ob1 * gi;
            vt[i] = b2 * vt[i] + ob2 * gi * gi;
            // decay first with the old p, as torch: p *= 1 - lr wd; p -= lr mhat / (sqrt(vhat) + eps)
            pt[i] = pt[i] * decay - a * mt[i] / (RSQRT(vt[i]) * rb2 + eps);
        }
    }
    return norm;
}

// Linear warmup over `warmup` steps (lr (step+1)/warmup), then cosine from lr down to floor_frac*lr
// at step `total` (floor afterwards). warmup = 0, floor 0 is torch CosineAnnealingLR(T_max = total).
double lr_schedule(long step, long total, long warmup, double lr, double floor_frac) {
    if (step < 0) step = 0;
    if (warmup > 0 && step < warmup) return lr * (double)(step + 1) / (double)warmup;
    long span = total - warmup;
    if (span <= 0 || step >= total) return lr * floor_frac;
    double prog = (double)(step - warmup) / (double)span;
    double lo = lr * floor_frac;
    return lo + (lr - lo) * 0.5 * (1 + cos(M_PI * prog));
}

// For the device step (cuda/model.cu keeps its own moments on the device): the config, and the
// 1-based number of the step about to be taken (bias correction).
const AdamWCfg *optim_cfg(const Optim *o) { return &o->cfg; }
long optim_next_t(Optim *o) { return ++o->t; }
real *optim_moment(Optim *o, int which) { return which ? o->v : o->m; }
long optim_steps(const Optim *o) { return o->t; }
void optim_set_steps(Optim *o, long t) { o->t = t; }
