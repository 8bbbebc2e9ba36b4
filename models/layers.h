// layers.h — forward/backward pairs of the shell's layers (models.md "The shell") and the shared
// multi-head causal softmax core of attention/swa. Depends on real.h (cblas), OpenMP if present.
//
// Conventions (llm.c style): outputs first, shape integers last. Linear weights are [OC, C]
// (PyTorch layout), out = inp @ w^T + b. Parameter gradients ACCUMULATE (+=). Whether an input
// gradient is overwritten or accumulated is stated per function. Every parallel loop writes
// disjoint outputs and reduces in a fixed order, so results do not depend on scheduling.
// Threads: OpenMP only. OpenBLAS is set to one thread (rb_blas_single_thread) and big GEMMs are
// split into row blocks across OpenMP threads (matmul_par), so the two pools never fight.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include "real.h"

#ifdef _OPENMP
#include <omp.h>
#else
static inline int omp_get_thread_num(void) { return 0; }
static inline int omp_get_max_threads(void) { return 1; }
static inline int omp_get_num_threads(void) { return 1; }
#endif

// Function multiversioning for hot loops outside GEMM (the build has no -march=native): the
// function is built for AVX-512, AVX2 and baseline x86-64 and picked at load time. Bits do not
// depend on the clone: ISO C mode does not contract a*b+c and reductions use fixed lanes.
// (Code in an OpenMP region is outlined and not cloned: put the loop in a helper.)
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define RB_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define RB_CLONES
#endif

// exp for the softmaxes and gates. Float build: a branch-free expf (Cody-Waite reduction, degree-6
// polynomial, < 1e-7 relative error, input clamped to [-87, 88]) that the compiler vectorises;
// libm's exp is a scalar call and was 16% of a training step. Double build: libm exp.
#ifdef RB_DOUBLE
static inline real rb_exp(real x) { return exp(x); }
#else
// The constants and the operation sequence, written once for the scalar rb_exp and the 16-lane
// rb_exp16 (T: float or rvec16; n: round to nearest by adding and subtracting 1.5*2^23).
#define RB_EXP_LO (-87.0f)
#define RB_EXP_HI 88.0f
#define RB_EXP_POLY(T, x, n, r, p)                                                  \
    T n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;                   \
    T r = x - n * 0.693145751953125f - n * 1.428606765330187045e-06f;              \
    T p = (T){0} + 1.9875691500e-4f;                                                \
    p = p * r + 1.3981999507e-3f;                                                   \
    p = p * r + 8.3334519073e-3f;                                                   \
    p = p * r + 4.1665795894e-2f;                                                   \
    p = p * r + 1.6666665459e-1f;                                                   \
    p = p * r + 5.0000001201e-1f;                                                   \
    p = p * r * r + r + 1.0f
static inline real rb_exp(real x) {
    x = x < RB_EXP_LO ? RB_EXP_LO : (x > RB_EXP_HI ? RB_EXP_HI : x);
    RB_EXP_POLY(float, x, n, r, p);
    // p * 2^n by adding n to the exponent field. In unsigned arithmetic: shifting a negative int
    // left is undefined behaviour (UBSan flagged it); the uint32_t wrap-around gives the same bits.
    union { float f; uint32_t i; } u = {.f = p};
    u.i += (uint32_t)(int32_t)n << 23;
    return u.f;
}
#endif

// 16-lane vectors (GCC vector extensions): element-wise IEEE arithmetic that each clone lowers to
// its own registers (one zmm, two ymm, four xmm), so the bits do not depend on the clone; for
// fixed-lane reductions where an array of lanes was kept on the stack (store-forwarding stalls).
// rv_sum is a fixed pairwise tree: lanes l and l + 8, then + 4, + 2, + 1.
#if defined(__GNUC__)
#define RB_VEC16 1
// (-Wpsabi: these are always inlined, so no 64-byte vector crosses a call boundary.)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"
typedef real rvec16 __attribute__((vector_size(16 * sizeof(real))));
#ifdef RB_DOUBLE
typedef long long rvmask16 __attribute__((vector_size(16 * sizeof(real))));
#else
typedef int rvmask16 __attribute__((vector_size(16 * sizeof(real))));
#endif
#define RV_INLINE static inline __attribute__((always_inline))
RV_INLINE rvec16 rv_load(const real *p) { rvec16 v; __builtin_memcpy(&v, p, sizeof v); return v; }
RV_INLINE void rv_store(real *p, rvec16 v) { __builtin_memcpy(p, &v, sizeof v); }
// lanes of v picked by constant indices (GCC's and clang's spellings of the same permute)
#if defined(__clang__)
#define RV_SHUF(v, ...) __builtin_shufflevector(v, v, __VA_ARGS__)
#else
#define RV_SHUF(v, ...) __builtin_shuffle(v, (rvmask16){__VA_ARGS__})
#endif
RV_INLINE real rv_sum(rvec16 v) {
    v += RV_SHUF(v, 8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15);
    v += RV_SHUF(v, 4, 5, 6, 7, 4, 5, 6, 7, 4, 5, 6, 7, 4, 5, 6, 7);
    v += RV_SHUF(v, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3);
    v += RV_SHUF(v, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1);
    return v[0];
}
// a where m is set, else b (C has no vector ?:)
RV_INLINE rvec16 rv_sel(rvmask16 m, rvec16 a, rvec16 b) { return (rvec16)(((rvmask16)a & m) | ((rvmask16)b & ~m)); }
#ifndef RB_DOUBLE
#define RB_EXP16 1
typedef unsigned int ruvec16 __attribute__((vector_size(16 * sizeof(float))));
// rb_exp on 16 lanes: the same operations in the same order, so the same bits as rb_exp.
RV_INLINE rvec16 rb_exp16(rvec16 x) {
    const rvec16 z = {0};
    x = rv_sel(x < RB_EXP_LO, z + RB_EXP_LO, rv_sel(x > RB_EXP_HI, z + RB_EXP_HI, x));
    RB_EXP_POLY(rvec16, x, n, r, p);
    ruvec16 ni = (ruvec16)__builtin_convertvector(n, rvmask16);
    return (rvec16)((ruvec16)p + (ni << 23));
}
#endif
#pragma GCC diagnostic pop
#endif

// ---- GEMM helpers ----------------------------------------------------------------------------
// OpenBLAS to one thread (idempotent). Called by model_create and every mixer's create().
// Zeroed n * sz bytes on a 64-byte (cache-line) boundary, released with free(); NULL if out of
// memory or n * sz overflows. glibc's malloc puts large blocks 16 bytes past a page start, so every
// 64-byte vector load of a D = 64 row straddled two cache lines, and two threads writing adjacent
// 16-column blocks (encoder_backward) shared one.
void *rb_calloc(size_t n, size_t sz);
void rb_blas_single_thread(void);
// C[M,N] (ldc) = beta*C + alpha * op(A) op(B), row-major with explicit leading dimensions.
void gemm_ld(real *C, int ldc, const real *A, int lda, const real *B, int ldb, int M, int N, int K,
             int ta, int tb, real alpha, real beta);
// The same with C = beta*Ci + alpha op(A) op(B): Ci (row stride ldci) is another matrix, or a
// bias row with ldci = 0 (the bias in the GEMM's epilogue).
void gemm_ld_ci(real *C, int ldc, const real *Ci, int ldci, const real *A, int lda, const real *B, int ldb, int M,
                int N, int K, int ta, int tb, real alpha, real beta);
// Which GEMM the float build uses: "avx512", "avx2" (own kernels, bit-identical to each other
// and to "scalar", for any shape split or thread count), "scalar" (the same arithmetic, slow; for
// tests) or "blas" (OpenBLAS: the double build, and CPUs without AVX2+FMA). rb_gemm_force picks
// one (0; -1 if unknown or this CPU cannot run it). Not thread-safe: call before any GEMM runs.
const char *rb_gemm_path(void);
// The float GEMMs' input precision in this process (RB_PREC_* of real.h): RB_PREC_BF16 sends them to
// the AMX kernels of gemm_amx.c (-1 when this CPU cannot: the caller reports it), anything else to
// the fp32 kernels above. Set by model_create from the model's precision.
int rb_gemm_set_precision(int prec);
int rb_gemm_force(const char *name);
// matmul() of real.h with the M rows split over OpenMP threads (deterministic: K never split).
void matmul_par(real *C, const real *A, const real *B, int M, int N, int K, int ta, int tb, real beta);

// ---- embedding -------------------------------------------------------------------------------
// out [B,T,D] = wte[tok] (+ wpe[t] if wpe). tok [B,T], wte [V,D], wpe [T,D] or NULL.
void encoder_forward(real *out, const int32_t *tok, const real *wte, const real *wpe, int B, int T, int D);
// dwte [V,D] +=, dwpe [T,D] += (if not NULL); dout [B,T,D].
void encoder_backward(real *dwte, real *dwpe, const real *dout, const int32_t *tok, int B, int T, int D);

// ---- norms (eps 1e-5, PyTorch default) -------------------------------------------------------
// out [N,D] = (inp - mean) * rstd * w + b; mean, rstd [N] saved.
void layernorm_forward(real *out, real *mean, real *rstd, const real *inp, const real *w, const real *b,
                       int N, int D);
// The residual add fused in: y [N,D] = x + f, then out = layernorm(y) as above (the next
// sub-layer's input; one pass instead of two).
void residual_layernorm_forward(real *out, real *y, real *mean, real *rstd, const real *x, const real *f,
                                const real *w, const real *b, int N, int D);
// dinp [N,D] += ; dw, db [D] += ; dout, inp [N,D].
void layernorm_backward(real *dinp, real *dw, real *db, const real *dout, const real *inp, const real *w,
                        const real *mean, const real *rstd, int N, int D);
// out [N,D] = inp * rstd * w, rstd = 1/sqrt(mean(inp^2) + eps); rstd [N] saved.
void rmsnorm_forward(real *out, real *rstd, const real *inp, const real *w, int N, int D);
// dinp [N,D] += ; dw [D] +=.
void rmsnorm_backward(real *dinp, real *dw, const real *dout, const real *inp, const real *w,
                      const real *rstd, int N, int D);

// ---- linear, GELU, MLP -----------------------------------------------------------------------
// out [N,OC] = inp [N,C] @ w[OC,C]^T + b[OC] (b may be NULL).
void linear_forward(real *out, const real *inp, const real *w, const real *b, int N, int C, int OC);
// dinp [N,C] overwritten (acc_dinp = 0) or += (acc_dinp = 1), skipped if NULL; dw [OC,C] +=;
// db [OC] += (if not NULL).
void linear_backward(real *dinp, real *dw, real *db, const real *dout, const real *inp, const real *w,
                     int N, int C, int OC, int acc_dinp);
// The same with dinp = dinit + dout w (dinit [N,C], e.g. a skip connection's gradient: no copy
// pass), or overwritten if dinit is NULL.
void linear_backward_add(real *dinp, const real *dinit, real *dw, real *db, const real *dout, const real *inp,
                         const real *w, int N, int C, int OC);
// Exact (erf) GELU, PyTorch's F.gelu default. out [n] = gelu(inp [n]).
void gelu_forward(real *out, const real *inp, size_t n);
// dinp [n] overwritten = dout * gelu'(inp).
void gelu_backward(real *dinp, const real *dout, const real *inp, size_t n);
// out [N,D] = fc2(gelu(fc1(inp))): h [N,Hd] = fc1 pre-activation, a [N,Hd] = gelu(h) (both saved).
void mlp_forward(real *out, real *h, real *a, const real *inp, const real *w1, const real *b1,
                 const real *w2, const real *b2, int N, int D, int Hd);
// dinp [N,D] overwritten; dw1 [Hd,D], db1 [Hd], dw2 [D,Hd], db2 [D] +=; scratch [N,Hd].
void mlp_backward(real *dinp, real *dw1, real *db1, real *dw2, real *db2, real *scratch, const real *dout,
                  const real *inp, const real *h, const real *a, const real *w1, const real *w2, int N,
                  int D, int Hd);

// ---- softmax cross-entropy -------------------------------------------------------------------
// probs [N,V] = softmax(logits [N,V]); losses [N] = -log p[tgt] (0 where tgt < 0). Returns their
// mean over rows with tgt >= 0 (0 if none), summed in row order.
double crossentropy_forward(real *probs, real *losses, const real *logits, const int32_t *tgt, int N, int V);
// dlogits [N,V] overwritten = (probs - onehot(tgt)) / n_valid on rows with tgt >= 0, 0 elsewhere.
void crossentropy_backward(real *dlogits, const real *probs, const int32_t *tgt, int N, int V);

// ---- depthwise causal short convolution (PyTorch Conv1d(groups=D, padding=K-1)[..., :T]) ------
// out[b,t,c] = b[c] + sum_j w[c,j] inp[b, t-(K-1)+j, c] (zero before t = 0). w [D,K], b [D].
void shortconv_forward(real *out, const real *inp, const real *w, const real *b, int B, int T, int D, int K);
// The same, and gout = out * up + inp (BaseConv's gate and skip) in the same pass; up [B,T,D].
void shortconv_gated_forward(real *out, real *gout, const real *inp, const real *w, const real *b, const real *up,
                             int B, int T, int D, int K);
// Pieces of the above for callers that parallelise over sequences themselves (same bits): rows
// [r0, r1) (whole sequences) on the calling thread, with wt = shortconv_wt(w, D, K) made once
// before (the kernel tap-major, in the calling thread's scratch; NULL: strided kernel loads).
const real *shortconv_wt(const real *w, int D, int K);
void shortconv_gated_forward_rows(real *out, real *gout, const real *inp, const real *w, const real *wt,
                                  const real *b, const real *up, int r0, int r1, int T, int D, int K);
// dinp rows [r0, r1) += the input gradient (the kernel/bias gradients are the caller's).
void shortconv_backward_rows(real *dinp, const real *dout, const real *w, const real *wt, int r0, int r1, int T, int D,
                             int K);
// dinp [B,T,D] += ; dw [D,K] += ; db [D] +=. (K <= 8 takes the vectorised kernel-gradient path.)
void shortconv_backward(real *dinp, real *dw, real *db, const real *dout, const real *inp, const real *w,
                        int B, int T, int D, int K);

// ---- multi-head causal softmax attention core (shared by attention, swa; usable by bla) ------
// q, k, v: row (b,t) at q + (b*T+t)*ld, head h in columns [h*dh, (h+1)*dh) (so one fused qkv
// buffer with ld = 3D works). Scores s(t, s') = q_t.k_s' / sqrt(dh) over keys s' in (t - W_h, t]
// (W_h = window[h]; window NULL or window[h] <= 0: all s' <= t). Forward saves the per-row
// log-sum-exp lse [B,H,T]; with keep != NULL ([B, mha_keep_floats(window, T, H)]) also the
// probabilities (the visible blocks only: about T^2/2 per head), and backward reuses them; with
// keep NULL nothing T x T is stored and backward recomputes them block by block (the same bits).
// scratch: nscratch regions of mha_scratch_floats(Tmax) floats (one per thread; at most nscratch
// threads are used).
size_t mha_scratch_floats(int Tmax);
size_t mha_keep_floats(const int *window, int T, int H);
// out (row stride ldo, head h at columns h*dh) = softmax(scores) v. Overwritten.
void mha_forward(real *out, int ldo, real *lse, real *keep, const real *q, const real *k, const real *v, int ld,
                 const int *window, int B, int T, int H, int dh, real *scratch, int nscratch);
// dq, dk, dv (row stride ldd, same column layout as q, k, v) overwritten on the head columns.
void mha_backward(real *dq, real *dk, real *dv, int ldd, const real *dout, int ldo, const real *lse, const real *keep,
                  const real *q, const real *k, const real *v, int ld, const int *window, int B, int T,
                  int H, int dh, real *scratch, int nscratch);
// One sequence (B = 1), all heads, on the calling thread (for callers that parallelise over the
// batch themselves); P: one scratch region of mha_scratch_floats(T); keep: this sequence's
// mha_keep_floats or NULL. Same numbers as above.
void mha_forward_seq(real *out, int ldo, real *lse, real *keep, const real *q, const real *k, const real *v, int ld,
                     const int *window, int T, int H, int dh, real *P);
void mha_backward_seq(real *dq, real *dk, real *dv, int ldd, const real *dout, int ldo, const real *lse,
                      const real *keep, const real *q, const real *k, const real *v, int ld, const int *window, int T,
                      int H, int dh, real *P);
// One query of one head against n cached rows (row stride ldc): out [dh] = softmax(kc q/sqrt(dh)) vc.
// sc [n] scratch. Row order does not matter (softmax is permutation invariant).
void mha_step(real *out, const real *q, const real *kc, const real *vc, int n, int ldc, int dh, real *sc);
