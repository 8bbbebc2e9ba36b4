// real.h — the model code's scalar type: float for training, double for gradient checks.
// Depends on cblas. Model sources are compiled twice (rb_models_f32 and rb_models_f64, -DRB_DOUBLE).
#pragma once
#include <cblas.h>
#include <math.h>

#ifdef RB_DOUBLE
typedef double real;
#define GEMM cblas_dgemm
#define GEMV cblas_dgemv
#define REAL_EPS 1e-12
#else
typedef float real;
#define GEMM cblas_sgemm
#define GEMV cblas_sgemv
#define REAL_EPS 1e-6f
#endif

// GEMM input precision (--precision), both backends. Parameters, gradients, AdamW moments and every
// non-GEMM op stay fp32; only the GEMMs' inputs are rounded (tf32: 10-bit mantissa, bf16: 7-bit).
// cuda: cuBLAS (default tf32). cpu: fp32 (tf32 has no CPU form and means fp32 there), or bf16 on
// Intel AMX (models/gemm_amx.c).
enum { RB_PREC_FP32 = 0, RB_PREC_TF32 = 1, RB_PREC_BF16 = 2 };

// GEMM accounting for `recallbench bench` (off unless rb_gemm_profile is set): per OpenMP thread,
// thread-seconds spent in GEMM and flops issued. Defined in mixer.c.
typedef struct { double seconds, flops; char pad[48]; } GemmStat;
#define RB_GEMM_STAT_THREADS 256
extern GemmStat rb_gemm_stat[RB_GEMM_STAT_THREADS];
extern int rb_gemm_profile;  // 1: totals; 2: also per call shape (bench --gemm-shapes)
void rb_gemm_account(double t0, int M, int N, int K, int ta, int tb);
double rb_gemm_clock(void);
// Per call shape, summed over threads (rb_gemm_profile 2): up to RB_GEMM_SHAPES distinct shapes a thread,
// later ones counted in the totals alone. rb_gemm_shapes_merge fills out[] (at most n) and returns the count.
typedef struct { int M, N, K, ta, tb; long calls; double seconds; } GemmShape;
#define RB_GEMM_SHAPES 64
int rb_gemm_shapes_merge(GemmShape *out, int n);
void rb_gemm_shapes_reset(void);

// Row-major C[M,N] = A[M,K] @ B[K,N] + beta*C with optional transposes (ta: A stored [K,M], tb: B
// stored [N,K]).
// Goes through gemm_ld (layers.c): the float build's own deterministic kernels.
void gemm_ld(real *C, int ldc, const real *A, int lda, const real *B, int ldb, int M, int N, int K,
             int ta, int tb, real alpha, real beta);
static inline void matmul(real *C, const real *A, const real *B, int M, int N, int K, int ta, int tb,
                          real beta) {
    gemm_ld(C, N, A, ta ? M : K, B, tb ? K : N, M, N, K, ta, tb, 1, beta);
}
