// swa.c — sliding window attention: attention.c's mixer with keys restricted to (t - W_h, t]
// (the current token included; W per head from --window). Depends on attention.h, layers.h.
// State: a ring buffer of the last W_h keys and values per head, 2 W d floats (models.md table).
#include <stdio.h>
#include "../layers.h"
#include "attention.h"

static int swa_validate(const MixerCfg *c, char *err, size_t errn) {
    if (attn_validate_heads(c, err, errn)) return -1;
    for (int h = 0; h < c->heads; h++)
        if (c->window[h] < 1) {
            snprintf(err, errn, "--window %d out of range: must be >= 1", c->window[h]);
            return -1;
        }
    return 0;
}

static void *swa_create(const MixerCfg *c, int Bmax, int Tmax) { return attn_create(c, Bmax, Tmax, 1); }

// sum over heads of 2 W_h d_h (= 2 W d with one window); independent of T, as the literature counts.
static double swa_state_floats(const MixerCfg *c, int T) {
    double s = 0;
    for (int h = 0; h < c->heads; h++) s += 2.0 * c->window[h] * (c->d / c->heads);
    return s;
}

const MixerOps swa_ops = {
    .name = "swa",
    .validate = swa_validate,
    .param_specs = attn_param_specs,
    .init_custom = NULL,
    .create = swa_create,
    .destroy = attn_destroy,
    .forward = attn_forward,
    .backward = attn_backward,
    .step_state_size = attn_step_state_size,
    .step = attn_step,
    .state_floats = swa_state_floats,
    .state_formula = "2*W*d",
};
