// test_gemm_amx.c — the CPU's bf16 GEMM (models/gemm_amx.c: AMX, or AVX512-BF16 where there is none) against a double-precision reference of
// the same bf16-rounded inputs, over odd shapes and all four transpose cases, alpha/beta and bias rows;
// the same bits for any row split; and the rounding is bf16's (the fp32-input error is printed beside).
// Depends on models/gemm_amx.h. Exits 77 (skip) on a CPU or kernel with neither.
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../models/gemm_amx.h"

static int fails, checks;

static uint64_t rs = 88172645463325252ULL;
static double urand(void) {
    rs ^= rs << 13; rs ^= rs >> 7; rs ^= rs << 17;
    return (rs >> 11) * (1.0 / 9007199254740992.0);
}
static float nrand(void) { return (float)(sqrt(-2 * log(urand() + 1e-300)) * cos(6.283185307179586 * urand())); }

// bf16 round to nearest even, written out (the reference's own rounding, not the kernel's instruction)
static double bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    u = (u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000u;
    float r;
    memcpy(&r, &u, 4);
    return r;
}

static void check(const char *name, double err, double tol) {
    int ok = err <= tol;
    printf("%s %-58s err=%.3e tol=%.1e\n", ok ? "PASS" : "FAIL", name, err, tol);
    checks++;
    fails += !ok;
}

// one case: errors relative to sum_k |a_ik b_kj| (the size of the terms), max over elements
static void one(int M, int N, int K, int ta, int tb, float alpha, float beta, int bias_row) {
    int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 5, ldc = N + 2;
    size_t na = (size_t)(ta ? K : M) * lda, nb = (size_t)(tb ? N : K) * ldb;
    float *A = malloc(na * 4), *B = malloc(nb * 4), *C = malloc((size_t)M * ldc * 4), *Ci = malloc((size_t)M * ldc * 4),
          *C2 = malloc((size_t)M * ldc * 4);
    for (size_t i = 0; i < na; i++) A[i] = nrand();
    for (size_t i = 0; i < nb; i++) B[i] = nrand();
    for (size_t i = 0; i < (size_t)M * ldc; i++) { Ci[i] = nrand(); C[i] = C2[i] = NAN; }
    int ldci = bias_row ? 0 : ldc;
    if (rb_sgemm_bf16(C, ldc, Ci, ldci, A, lda, B, ldb, M, N, K, ta, tb, alpha, beta)) {
        check("rb_sgemm_bf16 returned an error", 1, 0);
        return;
    }
    double err = 0, err32 = 0;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0, s32 = 0, mag = 0;
            for (int k = 0; k < K; k++) {
                float a = ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k], b = tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                s += bf16(a) * bf16(b);
                s32 += (double)a * b;
                mag += fabs((double)a * b);
            }
            double ci = beta != 0 ? beta * (double)Ci[(size_t)i * ldci + j] : 0;
            double want = ci + alpha * s, want32 = ci + alpha * s32, got = C[(size_t)i * ldc + j];
            double scale = fabs(alpha) * mag + fabs(ci) + 1e-30;
            double e = fabs(got - want) / scale, e32 = fabs(got - want32) / scale;
            if (!(e <= err)) err = isnan(e) ? INFINITY : e;  // NaN (an element left unwritten) fails
            if (e32 > err32) err32 = e32;
        }
    // Row split: the first r rows alone, then the rest, give the same bits as one call.
    int r = M / 3 + 1 < M ? M / 3 + 1 : M;
    rb_sgemm_bf16(C2, ldc, Ci, ldci, A, lda, B, ldb, r, N, K, ta, tb, alpha, beta);
    if (r < M)
        rb_sgemm_bf16(C2 + (size_t)r * ldc, ldc, Ci + (size_t)r * ldci, ldci, ta ? A + r : A + (size_t)r * lda, lda, B, ldb,
                     M - r, N, K, ta, tb, alpha, beta);
    double diff = 0;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++)
            if (memcmp(&C[(size_t)i * ldc + j], &C2[(size_t)i * ldc + j], 4)) diff++;
    char name[160];
    // fp32 accumulation of K products (and TDPBF16PS's flushed denormals): within ~K 2^-24 of the
    // terms' size; 2e-6 covers K = 300 with a wide margin over the ~1e-7 seen, and is ~100x below the
    // error of skipping the bf16 rounding (err vs the fp32 inputs, printed as "fp32-ref").
    snprintf(name, sizeof name, "M%d N%d K%d ta%d tb%d a%.2g b%.2g%s (fp32-ref %.1e)", M, N, K, ta, tb, alpha, beta,
             bias_row ? " bias" : "", err32);
    check(name, err, 2e-6);
    snprintf(name, sizeof name, "M%d N%d K%d ta%d tb%d row split at %d: elements differing", M, N, K, ta, tb, r);
    check(name, diff, 0);
    free(A); free(B); free(C); free(Ci); free(C2);
}

int main(void) {
    if (!rb_bf16_available()) {
        printf("SKIP: this CPU or kernel has neither AMX-BF16 nor AVX512-BF16\n");
        return 77;
    }
    printf("bf16 GEMM engine: %s\n", rb_bf16_engine());
    const int shapes[][3] = {{1, 1, 1}, {16, 16, 32}, {17, 33, 31}, {5, 70, 64}, {64, 48, 65}, {128, 192, 64},
                             {33, 16, 300}, {70, 5, 129}, {32, 128, 64}, {48, 48, 48}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) one(shapes[s][0], shapes[s][1], shapes[s][2], ta, tb, 1, 0, 0);
    one(37, 29, 77, 0, 1, 0.125f, 1, 0);
    one(37, 29, 77, 1, 0, 1, 1, 1);      // bias row (ldci = 0)
    one(20, 40, 50, 1, 1, -2, 0.5f, 0);
    one(300, 64, 1000, 1, 0, 1, 1, 0);   // a weight gradient's shape: K = rows of the batch
    printf("gemm_amx: %d checks, %d failed\n", checks, fails);
    return fails ? 1 : 0;
}
