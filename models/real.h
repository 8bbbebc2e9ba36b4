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

// Row-major C[M,N] (beta) += A[M,K] @ B[K,N] with optional transposes (ta: A stored [K,M], tb: B stored [N,K]).
static inline void matmul(real *C, const real *A, const real *B, int M, int N, int K, int ta, int tb,
                          real beta) {
    GEMM(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, 1,
         A, ta ? M : K, B, tb ? K : N, beta, C, N);
}
