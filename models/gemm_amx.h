// gemm_amx.h — the CPU's bf16 GEMM (--precision bf16 on the cpu backend; gemm_amx.c): Intel AMX tiles, or
// AVX512-BF16 vector dot products where there is no AMX (AMD Zen 4 and later, Cooper Lake).
// Depends on nothing. Without either (or outside x86-64 Linux, or in the double build) every call returns -1.
#pragma once

// 1 when this CPU and kernel can run the bf16 GEMM: AMX bf16 tiles (asking Linux for the tile state) or
// AVX512-BF16 (probed once per process; RB_BF16_ENGINE=avx512 picks the vector path on an AMX machine).
int rb_bf16_available(void);
// "amx-bf16", "avx512-bf16" or "none": which one (bench and the run records name it).
const char *rb_bf16_engine(void);
// C [M, N] (row stride ldc) = beta Ci + alpha op(A) op(B), op(X) = X or X^T (ta, tb), inputs rounded to
// bf16, fp32 accumulation; Ci as layers.c's gemm_ci (C itself, another matrix, or a bias row, ldci = 0).
// 0 on success, -1 when neither engine is usable or the packing scratch cannot grow (the caller falls back to fp32).
int rb_sgemm_bf16(float *C, int ldc, const float *Ci, int ldci, const float *A, int lda, const float *B, int ldb,
                 int M, int N, int K, int ta, int tb, float alpha, float beta);
// Frees this thread's packing scratch.
void rb_amx_free_scratch(void);
