// step.h — the harness's entry to a model's arithmetic, the same on every backend: one training step
// and one evaluation batch. Depends on model.h, optim.h. (CPU: step.c; CUDA: cuda/model.cu.)
#pragma once
#include <stdint.h>
#include "model.h"
#include "optim.h"

// Zero grads, forward, backward, clip + AdamW at lr. Returns the mean loss of the batch (NaN if
// the forward diverged); *gnorm (if not NULL) gets the gradient norm before clipping.
double model_train_step(Model *m, Optim *o, const int32_t *inputs, int B, int T, const int32_t *pos,
                        const int32_t *tgt, int npos, double lr, double *gnorm);

// A training run's whole state for a checkpoint, on either backend: parameters, AdamW moments (host
// arrays of model_num_params each) and steps taken. _set replaces it (grads zeroed on the device);
// training then continues bit for bit as if it had never stopped.
void model_train_state_get(Model *m, Optim *o, real *params, real *mom1, real *mom2, long *t);
void model_train_state_set(Model *m, Optim *o, const real *params, const real *mom1, const real *mom2, long t);

// Sums over the scored positions of evaluation batches (tasks.md "Metrics").
typedef struct {
    double loss_sum;   // cross-entropy summed over positions with tgt >= 0
    long n_loss;
    double hit;        // RegBench: argmax inside the allowed set
    double tvd_sum;    // RegBench: TVD(softmax, uniform over the allowed set)
    long n_pos;        // positions scored
} EvalSums;
// Forward only over inputs [B,T]; pred[i] = argmax of the logits at pos[i]. allowed: per scored
// position the mask of letters the truth allows (RegBench), or NULL (MQAR). Adds into *s.
void model_eval_batch(Model *m, const int32_t *inputs, int B, int T, const int32_t *pos, const int32_t *tgt,
                      int npos, const uint32_t *allowed, int32_t *pred, EvalSums *s);
