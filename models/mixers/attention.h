// attention.h — the multi-head softmax attention mixer shared by attention.c (full causal) and
// swa.c (sliding window, W per head). Depends on mixer.h; the core lives in layers.c (mha_*).
#pragma once
#include "../mixer.h"

// Params (zoology MHA): wqkv [3D,D] (rows: q | k | v, heads contiguous inside each), bqkv [3D],
// wo [D,D] (output projection, INIT_OUT), bo [D].
int attn_param_specs(const MixerCfg *c, ParamSpec *s);
// windowed = 0: attention (cache of Tmax tokens); 1: swa (ring buffer of window[h] tokens per head).
void *attn_create(const MixerCfg *c, int Bmax, int Tmax, int windowed);
void attn_destroy(void *ctx);
void attn_forward(Mixer *m, real *const *p, real *out, const real *inp, int B, int T);
void attn_backward(Mixer *m, real *const *p, real *const *dp, real *dinp, const real *dout,
                   const real *inp, int B, int T);
size_t attn_step_state_size(const Mixer *m);
void attn_step(Mixer *m, real *const *p, real *state, real *out, const real *x, int t);
// "--heads H out of range: ..." checks shared by both mixers.
int attn_validate_heads(const MixerCfg *c, char *err, size_t errn);
