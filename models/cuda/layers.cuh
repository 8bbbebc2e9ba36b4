// layers.cuh — device forms of models/layers.h: the shell's layers, same argument meaning, device
// pointers, queued on rb_cuda_stream(). Depends on common.cuh. Parameter gradients ACCUMULATE (+=);
// input gradients as stated per function (as on the CPU). No float atomics: fixed-order reductions.
// scratch arguments: device floats of the size stated (from create(), never allocated here).
// C linkage, and includable from C (the device-vs-CPU tests): nothing CUDA-only is declared here.
#pragma once
#ifdef __CUDACC__
#include "common.cuh"
// i = q D + r for an element index: 32-bit division when i fits (64-bit division is a long
// instruction sequence that makes the elementwise kernels compute-bound)
__device__ __forceinline__ void rb_divmod(size_t i, int D, int &q, int &r) {
    if (i <= 0xffffffffu) {
        unsigned u = (unsigned)i, d = (unsigned)D, qq = u / d;
        q = (int)qq;
        r = (int)(u - qq * d);
    } else {
        q = (int)(i / D);
        r = (int)(i % D);
    }
}
// V consecutive channels of one row (V = 4: a float4, 16-byte aligned; V = 1: a scalar): the vectorised
// channel loops of the depthwise convolutions (layers.cu shortconv_*, mamba.cu conv_*)
template <int V> struct ChanVec { float v[V]; };
template <int V> __device__ __forceinline__ ChanVec<V> chan_load(const float *p) {
    ChanVec<V> r;
    if (V == 4) {
        float4 x = *(const float4 *)p;
        r.v[0] = x.x; r.v[1] = x.y; r.v[2] = x.z; r.v[3] = x.w;
    } else {
        for (int k = 0; k < V; k++) r.v[k] = p[k];
    }
    return r;
}
template <int V> __device__ __forceinline__ void chan_store(float *p, const ChanVec<V> &r) {
    if (V == 4) *(float4 *)p = make_float4(r.v[0], r.v[1], r.v[2], r.v[3]);
    else for (int k = 0; k < V; k++) p[k] = r.v[k];
}
#else
#include <stddef.h>
#include <stdint.h>
#endif
#ifdef __cplusplus
extern "C" {
#endif

// ---- linear (layers.h linear_*) ---------------------------------------------------------------
// out [N,OC] = inp [N,C] @ w[OC,C]^T + b[OC] (b may be NULL).
void cuda_linear_forward(float *out, const float *inp, const float *w, const float *b, int N, int C, int OC);
// The same with out rounded to tf32 (exact tf32 values), for an out that only tf32 tensor-core products
// read (attention.cu's q | k | v in tf32 mode: rounding once there gives the products' own inputs).
void cuda_linear_forward_tf32(float *out, const float *inp, const float *w, const float *b, int N, int C, int OC);
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
// The residual add fused into the next norm: res [N,D] = x + f, then the norm of res as above.
void cuda_layernorm_forward_add(float *res, float *out, float *mean, float *rstd, const float *x, const float *f,
                                const float *w, const float *b, int N, int D);
void cuda_rmsnorm_forward_add(float *res, float *out, float *rstd, const float *x, const float *f, const float *w,
                              int N, int D);
// depthwise causal short convolution, as shortconv_forward: w [D,K], b [D].
void cuda_shortconv_forward(float *out, const float *inp, const float *w, const float *b, int B, int T, int D, int K);

// ---- row sort + gather: the deterministic scatter-add (no float atomics) ----------------------
// Stable device radix sort (CUB) of n keys in [0, R): skey [n] the sorted keys, list [n] the
// indices 0..n-1 in that order (increasing index within a key). scratch: at least
// cuda_rowsort_scratch_bytes(n, R) bytes of device memory, allocated once (create()).
size_t cuda_rowsort_scratch_bytes(int n, int R);
void cuda_rowsort(int *skey, int *list, const int32_t *key, int n, int R, void *scratch);
#ifdef __CUDACC__
// The same on another stream (model.cu sorts on a side branch of the captured step).
void cuda_rowsort_on(int *skey, int *list, const int32_t *key, int n, int R, void *scratch, cudaStream_t st);
#endif
// dst[r, :] += sum over the run of key r (in list order) of src[list[k], :]; rows without members
// are left untouched. dst [R,D], src [n,D]; work proportional to n, not R.
void cuda_sorted_rows_add(float *dst, const float *src, const int *skey, const int *list, int n, int D);

// ---- embedding backward (encoder_backward) ---------------------------------------------------
// dwte [V,D] += , dwpe [T,D] += (if not NULL); dout [B,T,D], tok [B,T] on the device. Each vocab row
// sums the positions holding its token in position order (a device radix sort, then a gather).
// scratch: cuda_encoder_scratch_bytes(B*T, V) bytes.
size_t cuda_encoder_scratch_bytes(int BT, int V);
void cuda_encoder_backward(float *dwte, float *dwpe, const float *dout, const int32_t *tok, int B, int T, int D,
                           int V, void *scratch);
// The sort half and the gather half of cuda_encoder_backward: cuda_encoder_sort fills the sort
// (skey, list inside scratch) from tok, once per batch; cuda_encoder_backward_sorted uses it.
void cuda_encoder_sort(const int32_t *tok, int BT, int V, void *scratch);
void cuda_encoder_backward_sorted(float *dwte, float *dwpe, const float *dout, int B, int T, int D,
                                  const void *scratch);
#ifdef __CUDACC__
void cuda_encoder_sort_on(const int32_t *tok, int BT, int V, void *scratch, cudaStream_t st);
#endif

// ---- norm backward (layernorm_backward / rmsnorm_backward) -----------------------------------
// dinp [N,D] += ; dw, db [D] += (db absent for rms). The weight grads are column sums over rows in
// fixed 64-row chunks; scratch: cuda_norm_scratch(N, D) floats.
size_t cuda_norm_scratch(int N, int D);
void cuda_layernorm_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                             const float *mean, const float *rstd, int N, int D, float *scratch);
void cuda_rmsnorm_backward(float *dinp, float *dw, const float *dout, const float *inp, const float *w,
                           const float *rstd, int N, int D, float *scratch);

// ---- GELU and the MLP (gelu_*, mlp_*) --------------------------------------------------------
// Exact (erf) GELU. out [n] = gelu(inp); dinp [n] overwritten = dout * gelu'(inp) (may alias dout).
void cuda_gelu_forward(float *out, const float *inp, size_t n);
void cuda_gelu_backward(float *dinp, const float *dout, const float *inp, size_t n);
// As mlp_forward / mlp_backward; backward also needs scratch2 of rb_colsum_scratch(N, Hd) floats
// (the bias sums; Hd >= D so it covers both linears).
void cuda_mlp_forward(float *out, float *h, float *a, const float *inp, const float *w1, const float *b1,
                      const float *w2, const float *b2, int N, int D, int Hd);
void cuda_mlp_backward(float *dinp, float *dw1, float *db1, float *dw2, float *db2, float *scratch,
                       const float *dout, const float *inp, const float *h, const float *a, const float *w1,
                       const float *w2, int N, int D, int Hd, float *scratch2);

// ---- softmax cross-entropy at the scored positions (crossentropy_forward + _backward) --------
// Fused, one block per row: losses [N] = -log softmax(logits)[tgt] (0 where tgt < 0); if
// want_grad, the logits are overwritten IN PLACE by dlogits = (softmax - onehot) / n_valid (rows
// with tgt < 0: 0). *loss_dev (device double) = mean loss over valid rows in row order (0 if none).
// dscratch: 2 floats + 1 int of device scratch (cuda_ce_scratch_bytes()).
size_t cuda_ce_scratch_bytes(void);
void cuda_crossentropy_fused(float *logits, float *losses, double *loss_dev, const int32_t *tgt, int N, int V,
                             int want_grad, void *dscratch);

// ---- shortconv backward (shortconv_backward) -------------------------------------------------
// dinp [B,T,D] += ; dw [D,K] += ; db [D] += (fixed 128-row chunks); scratch:
// cuda_shortconv_scratch(B*T, D, K) floats.
size_t cuda_shortconv_scratch(int BT, int D, int K);
void cuda_shortconv_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                             int B, int T, int D, int K, float *scratch);
// The same with dinp = (dinp + skip) + the shortconv's input gradient (skip [B,T,D]; NULL: none).
// dw [D, K] += , db [D] += the sums over nrow rows of part [nrow, K+1, D] (tap j at j, bias at K), in a fixed
// order: the depthwise convs' weight-gradient partials (shortconv here, mamba.cu's conv) summed deterministically.
void cuda_conv_wgrad_final(float *dw, float *db, const float *part, int nrow, int D, int K);
void cuda_shortconv_backward_skip(float *dinp, float *dw, float *db, const float *dout, const float *skip,
                                  const float *inp, const float *w, int B, int T, int D, int K, float *scratch);

// ---- elementwise helpers of the shell and mixers ----------------------------------------------
// y [n] = a + b
void cuda_add(float *y, const float *a, const float *b, size_t n);
// out [npos,D] = x[pos[i], :]
void cuda_gather_rows(float *out, const float *x, const int32_t *pos, int npos, int D);
// out [npos,D] = x[pos[i], :] + f[pos[i], :] (the last residual add, only where the head reads it)
void cuda_gather_add_rows(float *out, const float *x, const float *f, const int32_t *pos, int npos, int D);
// rb_colsum_scratch (common.cuh) for C callers (tests)
size_t cuda_colsum_scratch(int R, int C);

// ---- optimizer (models/cuda/optim.cu, mirroring models/optim.c) -------------------------------
// Hyper-parameters as the device reads them (staged by the caller, e.g. from pinned host memory
// inside a captured graph): lr, t (1-based step), beta1, beta2, eps, weight_decay, clip, decay_all.
typedef struct { double lr, t, beta1, beta2, eps, weight_decay, clip, decay_all; } CudaAdamHyper;
// Sum of squares of g [P] in fixed 4096-element chunks (double), chunk sums added in chunk order:
// *norm_dev = sqrt(total). part: cuda_gradnorm_scratch(P) doubles.
size_t cuda_gradnorm_scratch(size_t P);
void cuda_grad_norm(double *norm_dev, const float *g, size_t P, double *part);
// Clip (torch clip_grad_norm_ from *norm_dev) + AdamW as optim_step, per-element decay flags
// decay [P] (1: weight decay applies). Skipped entirely when *skip_if_nan_dev (a device double,
// e.g. the loss; may be NULL) is not finite, as the CPU step returns before updating.
// scal: 16 floats of device scratch.
void cuda_adamw(float *p, const float *g, float *m, float *v, const uint8_t *decay, size_t P,
                const CudaAdamHyper *hp_dev, const double *norm_dev, const double *skip_if_nan_dev, float *scal);

#ifdef __cplusplus
}
#endif
