// step.c — model_train_step and model_eval_batch (step.h): the CPU path in full, and the hand-over
// to the device model (cuda/model.cu) when the model lives there. Depends on model.h, optim.h.
#include "step.h"
#include <math.h>
#include <string.h>
#include "real.h"
#if defined(RB_HAVE_CUDA) && !defined(RB_DOUBLE)
#include "cuda/cuda_model.h"
#endif

double model_train_step(Model *m, Optim *o, const int32_t *inputs, int B, int T, const int32_t *pos,
                        const int32_t *tgt, int npos, double lr, double *gnorm) {
#if defined(RB_HAVE_CUDA) && !defined(RB_DOUBLE)
    if (model_device(m))
        return cuda_model_train_step(model_device(m), optim_cfg(o), optim_next_t(o), inputs, B, T, pos, tgt, npos,
                                     lr, gnorm);
#endif
    model_zero_grad(m);
    double loss = model_forward(m, inputs, B, T, pos, tgt, npos);
    if (!isfinite(loss)) return loss;
    model_backward(m);
    double gn = optim_step(o, m, lr);
    if (gnorm) *gnorm = gn;
    return loss;
}

void model_train_state_get(Model *m, Optim *o, real *params, real *mom1, real *mom2, long *t) {
    const size_t P = model_num_params(m);
    *t = optim_steps(o);
#if defined(RB_HAVE_CUDA) && !defined(RB_DOUBLE)
    if (model_device(m)) {
        cuda_model_download(model_device(m), params, NULL);
        cuda_model_download_moments(model_device(m), mom1, mom2);
        return;
    }
#endif
    memcpy(params, model_params(m), P * sizeof(real));
    memcpy(mom1, optim_moment(o, 0), P * sizeof(real));
    memcpy(mom2, optim_moment(o, 1), P * sizeof(real));
}

void model_train_state_set(Model *m, Optim *o, const real *params, const real *mom1, const real *mom2, long t) {
    const size_t P = model_num_params(m);
    optim_set_steps(o, t);
    memcpy(model_params(m), params, P * sizeof(real));  // the host slab too (the device reads it nowhere else)
#if defined(RB_HAVE_CUDA) && !defined(RB_DOUBLE)
    if (model_device(m)) {
        cuda_model_upload_state(model_device(m), params, mom1, mom2);
        return;
    }
#endif
    memcpy(optim_moment(o, 0), mom1, P * sizeof(real));
    memcpy(optim_moment(o, 1), mom2, P * sizeof(real));
}

static int argmax(const real *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++) if (x[i] > x[best]) best = i;
    return best;
}

// RegBench metrics (tasks.md): greedy hit = argmax in the allowed set; TVD between the model's
// softmax and the uniform distribution over the allowed set.
void model_eval_batch(Model *m, const int32_t *inputs, int B, int T, const int32_t *pos, const int32_t *tgt,
                      int npos, const uint32_t *allowed, int32_t *pred, EvalSums *s) {
    int nl = 0;
    for (int i = 0; i < npos; i++) nl += tgt[i] >= 0;
#if defined(RB_HAVE_CUDA) && !defined(RB_DOUBLE)
    if (model_device(m)) {
        double loss_sum = 0, hit = 0, tvd = 0;
        cuda_model_eval(model_device(m), inputs, B, T, pos, tgt, npos, allowed, pred, &loss_sum, &hit, &tvd);
        s->loss_sum += loss_sum; s->n_loss += nl; s->hit += hit; s->tvd_sum += tvd;
        if (allowed) s->n_pos += npos;
        return;
    }
#endif
    double loss = model_forward(m, inputs, B, T, pos, tgt, npos);
    s->loss_sum += loss * nl;
    s->n_loss += nl;
    const int V = model_cfg(m)->vocab;
    const real *lg = model_logits(m);
    for (int i = 0; i < npos; i++) {
        const real *row = lg + (size_t)i * V;
        int a = argmax(row, V);
        pred[i] = a;
        if (!allowed) continue;
        uint32_t mask = allowed[i];
        int k = __builtin_popcount(mask);
        s->hit += (mask >> a) & 1;
        double mx = row[a], z = 0, d = 0;
        for (int v = 0; v < V; v++) z += exp(row[v] - mx);
        for (int v = 0; v < V; v++) {
            double p = exp(row[v] - mx) / z, q = ((mask >> v) & 1) ? 1.0 / k : 0.0;
            d += fabs(p - q);
        }
        s->tvd_sum += 0.5 * d;
        s->n_pos++;
    }
}
