// cuda.h — the CUDA backend's C interface: the process's device context, the device form of the
// mixer table (models/mixer.h), and the device model behind models/model.h. Depends on mixer.h.
//
// One model, two backends: models/mixers/X.c and models/cuda/X.cu are the CPU and device forms of
// one mixer. The device form reuses the CPU MixerOps for everything that is not arithmetic
// (validate, param_specs, init_custom, state_floats); a MixerCudaOps adds the device arithmetic:
// the same functions with the same argument meaning, on device pointers (float only).
//
// Rules every device function follows (so the training step can be captured in one CUDA graph):
// - all work is queued on rb_cuda_stream() (kernels and cuBLAS through rb_cuda_gemm*);
// - no allocation, no host synchronisation and no host<->device copies in forward/backward/step:
//   create() allocates everything for B <= Bmax, T <= Tmax;
// - no order-dependent float atomics: every reduction is in a fixed order (same bits every run);
// - parameter gradients ACCUMULATE (+=), dinp is OVERWRITTEN, exactly as the CPU form.
#pragma once
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif
#include "../mixer.h"

// GEMM input precision (--precision): RB_PREC_* of real.h.

// Opens the device (CUDA_VISIBLE_DEVICES picks it; the first visible one is used), creates the
// stream and the cuBLAS handle of the calling host thread (the context is per thread: runs in
// several threads overlap on one GPU). Idempotent per thread. 0 on success; else -1 with one line in err
// ("no CUDA device visible", "CUDA driver 12.4 is older than the runtime 13.0: ...").
int rb_cuda_init(char *err, size_t errn);
void rb_cuda_set_precision(int prec);   // RB_PREC_*; default RB_PREC_TF32
int rb_cuda_precision(void);
const char *rb_cuda_device_name(void);  // "NVIDIA H200" (after init)
// Waits for the stream; on a device error prints one line (file:line, what) and exits 1.
void rb_cuda_sync(void);
// Device memory in floats/bytes; NULL on out-of-memory (never exits: callers report and return).
float *rb_cuda_alloc(size_t nfloats);
void *rb_cuda_alloc_bytes(size_t nbytes);
void rb_cuda_free(void *p);
// Host <-> device copies on the stream (synchronous: for setup and tests, not inside a step).
void rb_cuda_upload(void *dst_dev, const void *src_host, size_t nbytes);
void rb_cuda_download(void *dst_host, const void *src_dev, size_t nbytes);

// Row-major GEMM on the stream with the active precision, mirroring models/real.h matmul():
// C[M,N] = A[M,K] @ B[K,N] + beta*C; ta: A stored [K,M]; tb: B stored [N,K].
void rb_cuda_matmul(float *C, const float *A, const float *B, int M, int N, int K, int ta, int tb, float beta);
// With leading dimensions and alpha, mirroring gemm_ld() of models/layers.h.
void rb_cuda_gemm_ld(float *C, int ldc, const float *A, int lda, const float *B, int ldb, int M, int N, int K,
                     int ta, int tb, float alpha, float beta);
// Strided batch of row-major GEMMs: for i < batch, C_i = alpha op(A_i) op(B_i) + beta C_i with
// X_i = X + i * strideX.
void rb_cuda_gemm_batched(float *C, int ldc, long long strideC, const float *A, int lda, long long strideA,
                          const float *B, int ldb, long long strideB, int M, int N, int K, int ta, int tb,
                          float alpha, float beta, int batch);
// Two-level batch: for i1 < n1, i2 < n2, C_(i1,i2) = alpha op(A_(i1,i2)) op(B_(i1,i2)) + beta C_(i1,i2) with
// X_(i1,i2) = X + i1 * sX1 + i2 * sX2 (e.g. sequences x chunks, where a sequence is not a whole number of
// chunks apart). One cuBLAS call over pointer arrays that a kernel writes into ptrs: caller's device
// scratch of 3 * (n1 * n2 rounded up to even) pointers, reused by the next call in stream order. When a
// base, stride or leading dimension is not a multiple of 16 bytes, a loop of strided batches instead.
void rb_cuda_gemm_batched2(float *C, int ldc, long long sC1, long long sC2, const float *A, int lda, long long sA1,
                           long long sA2, const float *B, int ldb, long long sB1, long long sB2, int M, int N, int K,
                           int ta, int tb, float alpha, float beta, int n1, int n2, void **ptrs);

// ---- the device form of a mixer ----------------------------------------------------------------
// A device Mixer is a models/mixer.h Mixer whose ops is the CPU MixerOps (for cfg, specs, state
// sizes) and whose ctx is what MixerCudaOps.create returned (device workspace).
typedef struct {
    void *(*create)(const MixerCfg *c, int Bmax, int Tmax);    // NULL on out-of-memory
    void (*destroy)(void *ctx);
    // out [B,T,D] = mixer(inp [B,T,D]) (device pointers; p[i] = tensor i, in the CPU spec order).
    void (*forward)(Mixer *m, float *const *p, float *out, const float *inp, int B, int T);
    // dinp [B,T,D] overwritten; dp[i] += gradient of tensor i; uses the last forward's activations.
    void (*backward)(Mixer *m, float *const *p, float *const *dp, float *dinp, const float *dout,
                     const float *inp, int B, int T);
    // Recurrent form for B sequences at once: state [B, step_state_size] (zeroed by the caller
    // before t = 0), x, out [B, D], all sequences at position t. Must equal forward() at t.
    size_t (*step_state_size)(const Mixer *m);
    void (*step)(Mixer *m, float *const *p, float *state, float *out, const float *x, int B, int t);
} MixerCudaOps;

// NULL if mixer k has no device form in this build.
const MixerCudaOps *mixer_cuda_ops(MixerKind k);
// Creates a device mixer (m->ops = CPU ops, m->ctx = device workspace). -1 on OOM or no device form.
int mixer_cuda_create(Mixer *m, const MixerCfg *c, int Bmax, int Tmax);
void mixer_cuda_destroy(Mixer *m);

#ifdef __cplusplus
}
#endif
