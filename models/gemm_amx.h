// gemm_amx.h — the CPU's bf16 GEMM on Intel AMX (--precision bf16 on the cpu backend; gemm_amx.c).
// Depends on nothing. Without AMX-BF16 (or outside x86-64 Linux, or in the double build) every call returns -1.
#pragma once

// 1 when this CPU and kernel can run AMX bf16 tiles (probed once per process; asks Linux for the tile state).
int rb_amx_available(void);
// C [M, N] (row stride ldc) = beta Ci + alpha op(A) op(B), op(X) = X or X^T (ta, tb), inputs rounded to
// bf16, fp32 accumulation; Ci as layers.c's gemm_ci (C itself, another matrix, or a bias row, ldci = 0).
// 0 on success, -1 when AMX is unusable or the packing scratch cannot grow (the caller falls back to fp32).
int rb_sgemm_amx(float *C, int ldc, const float *Ci, int ldci, const float *A, int lda, const float *B, int ldb,
                 int M, int N, int K, int ta, int tb, float alpha, float beta);
// Frees this thread's packing scratch.
void rb_amx_free_scratch(void);
