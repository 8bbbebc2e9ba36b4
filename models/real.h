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

// GEMM accounting for `recallbench bench` (off unless rb_gemm_profile is set): per OpenMP thread,
// thread-seconds spent in GEMM and flops issued. Defined in mixer.c.
typedef struct { double seconds, flops; char pad[48]; } GemmStat;
#define RB_GEMM_STAT_THREADS 256
extern GemmStat rb_gemm_stat[RB_GEMM_STAT_THREADS];
extern int rb_gemm_profile;
void rb_gemm_account(double t0, double flops);
double rb_gemm_clock(void);

// Row-major C[M,N] = A[M,K] @ B[K,N] + beta*C with optional transposes (ta: A stored [K,M], tb: B
// stored [N,K]).
static inline void matmul(real *C, const real *A, const real *B, int M, int N, int K, int ta, int tb,
                          real beta) {
    double t0 = rb_gemm_profile ? rb_gemm_clock() : 0;
    GEMM(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, 1,
         A, ta ? M : K, B, tb ? K : N, beta, C, N);
    if (rb_gemm_profile) rb_gemm_account(t0, 2.0 * M * N * K);
}
