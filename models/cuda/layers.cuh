// layers.cuh — device forms of models/layers.h: the shell's layers, same argument meaning, device
// pointers, queued on rb_cuda_stream(). Depends on common.cuh. Parameter gradients ACCUMULATE (+=);
// input gradients as stated per function (as on the CPU). No float atomics: fixed-order reductions.
// scratch arguments: device floats of the size stated (from create(), never allocated here).
#pragma once
#include "common.cuh"

// ---- linear (layers.h linear_*) ---------------------------------------------------------------
// out [N,OC] = inp [N,C] @ w[OC,C]^T + b[OC] (b may be NULL).
void cuda_linear_forward(float *out, const float *inp, const float *w, const float *b, int N, int C, int OC);
// dinp [N,C] overwritten (acc_dinp 0) or += (1), skipped if NULL; dw [OC,C] +=; db [OC] += (if not
// NULL; needs scratch of rb_colsum_scratch(N, OC) floats).
void cuda_linear_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                          int N, int C, int OC, int acc_dinp, float *scratch);

// ---- the rest of the shell (models/cuda/layers.cu) ----------------------------------------------
// embedding: out [B,T,D] = wte[tok] (+ wpe[t]); tok on the device.
void cuda_encoder_forward(float *out, const int32_t *tok, const float *wte, const float *wpe, int B, int T, int D);
// norms (eps 1e-5): out, mean, rstd as layernorm_forward / rmsnorm_forward (mean unused for rms).
void cuda_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b,
                            int N, int D);
void cuda_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *w, int N, int D);
// depthwise causal short convolution, as shortconv_forward: w [D,K], b [D].
void cuda_shortconv_forward(float *out, const float *inp, const float *w, const float *b, int B, int T, int D, int K);
// Backward forms and the rest (encoder_backward, norm backward, gelu/mlp, cross-entropy, shortconv
// backward) are declared by whoever implements them in layers.cu, in this same style, below.
