// mamba_internal.h — the layout of the mamba mixer's step state and its derived sizes, for tests.
// Depends on mixer.h. Header-only: nothing here is linked.
#pragma once
#include <stddef.h>
#include "../mixer.h"

#define MAMBA_CONV_K 4  // depthwise causal conv kernel (mamba's d_conv)

// d_inner = expand * d (E); dt_rank = ceil(d / 16) (R), mamba's "auto".
static inline int mamba_d_inner(const MixerCfg *c) { return c->expand * c->d; }
static inline int mamba_dt_rank(const MixerCfg *c) { return (c->d + 15) / 16; }

// Step state of one sequence: conv buffer [E, K-1] (x before the conv at t-3, t-2, t-1), then the
// SSM state h [E, N]. step_state_size = (K-1) E + E N.
static inline size_t mamba_state_conv_offset(const MixerCfg *c) { (void)c; return 0; }
static inline size_t mamba_state_h_offset(const MixerCfg *c) {
    return (size_t)(MAMBA_CONV_K - 1) * mamba_d_inner(c);
}
static inline size_t mamba_state_h_size(const MixerCfg *c) {
    return (size_t)mamba_d_inner(c) * c->state_dim;
}

// Tensor order of the parameter slab (param_specs).
enum {
    MAMBA_W_IN,     // [2E, D]   in_proj (x | z), no bias
    MAMBA_CONV_W,   // [E, K]    depthwise conv weight, tap K-1 multiplies the current token
    MAMBA_CONV_B,   // [E]       conv bias
    MAMBA_W_X,      // [R+2N, E] x_proj -> (dt_low | B | C), no bias
    MAMBA_W_DT,     // [E, R]    dt_proj weight
    MAMBA_B_DT,     // [E]       dt_proj bias (delta = softplus(W_dt dt_low + b_dt))
    MAMBA_A_LOG,    // [E, N]    A = -exp(A_log)
    MAMBA_D,        // [E]       skip
    MAMBA_W_OUT,    // [D, E]    out_proj, no bias
    MAMBA_NTENSORS
};
