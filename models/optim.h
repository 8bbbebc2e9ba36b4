// optim.h — AdamW over the parameter slab, cosine schedule with warmup, gradient clipping.
// Depends on real.h, model.h (tensor table for per-tensor weight decay).
#pragma once
#include <stddef.h>
#include "model.h"

typedef struct {
    double lr, beta1, beta2, eps, weight_decay;  // zoology defaults: 0.9, 0.999, 1e-8, 0.1
    double clip;                                 // global grad-norm clip, 0 = off
    int decay_all;                               // 1: decay every tensor (ignore per-tensor flags)
} AdamWCfg;

typedef struct Optim Optim;
Optim *optim_create(Model *m, const AdamWCfg *cfg);
void optim_free(Optim *o);
// One AdamW update with learning rate lr (from the schedule). Returns the grad norm before clipping.
double optim_step(Optim *o, Model *m, double lr);
// Cosine schedule: linear warmup lr*(step+1)/warmup for step < warmup, then cosine from lr to
// floor_frac*lr over steps [warmup, total], floor_frac*lr after. warmup 0, floor 0 = torch's
// CosineAnnealingLR(T_max = total) as zoology uses.
// The config, and the 1-based count of the step about to be taken (counts it): for the device step.
const AdamWCfg *optim_cfg(const Optim *o);
long optim_next_t(Optim *o);
// For checkpoints (harness/checkpoint.c): the host moments [P] (the CPU's; the device keeps its own,
// see model_train_state_get in step.h), and the count of steps taken.
real *optim_moment(Optim *o, int which);  // which 0: first moment m, 1: second moment v
long optim_steps(const Optim *o);
void optim_set_steps(Optim *o, long t);
double lr_schedule(long step, long total, long warmup, double lr, double floor_frac);
