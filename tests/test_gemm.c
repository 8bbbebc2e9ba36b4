// test_gemm.c — the float build's own GEMM (layers.c gemm_ld): against a double reference, and
// bit-identical across its paths (avx512, avx2, scalar) for every transpose, alpha/beta, leading
// dimension and edge shape (tails of tiles, K over one K block). Depends on layers.h.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../models/layers.h"
#include "../tasks/rng.h"

#ifdef RB_DOUBLE
#error "test_gemm checks the float build"
#endif

static void run(const char *path, float *C, const float *C0, const float *A, int lda, const float *B, int ldb, int ldc,
                int M, int N, int K, int ta, int tb, float alpha, float beta) {
    if (rb_gemm_force(path)) { fprintf(stderr, "cannot force %s\n", path); exit(1); }
    memcpy(C, C0, (size_t)M * ldc * sizeof(float));
    gemm_ld(C, ldc, A, lda, B, ldb, M, N, K, ta, tb, alpha, beta);
}

int main(void) {
    const char *native = rb_gemm_path();
    printf("gemm path on this CPU: %s\n", native);
    const char *paths[3];
    int np = 0;
    paths[np++] = "scalar";
    if (!strcmp(native, "avx2") || !strcmp(native, "avx512")) paths[np++] = "avx2";
    if (!strcmp(native, "avx512")) paths[np++] = "avx512";
    if (np == 1) printf("SKIP bit-identity across vector paths: this CPU has no AVX2+FMA (float GEMM is OpenBLAS)\n");
    const int shapes[][3] = {{1, 1, 1}, {7, 5, 3}, {8, 32, 64}, {13, 17, 19}, {32, 128, 64}, {70, 33, 257},
                             {64, 64, 600}, {9, 48, 1}, {65, 16, 256}, {100, 200, 50}, {3, 70, 513}};
    const float ab[][2] = {{1, 0}, {1, 1}, {0.125f, 1}, {-0.5f, 0.75f}};
    Rng rng;
    rng_seed(&rng, 5);
    int fails = 0, checks = 0;
    double worst = 0;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (size_t q = 0; q < sizeof ab / sizeof ab[0]; q++) {
                    int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
                    int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 1, ldc = N + 2;  // padded rows
                    size_t na = (size_t)(ta ? K : M) * lda, nb = (size_t)(tb ? N : K) * ldb, nc = (size_t)M * ldc;
                    float *A = malloc(na * 4), *B = malloc(nb * 4), *C0 = malloc(nc * 4), *C = malloc(nc * 4),
                          *R = malloc(nc * 4);
                    for (size_t i = 0; i < na; i++) A[i] = (float)rng_normal(&rng);
                    for (size_t i = 0; i < nb; i++) B[i] = (float)rng_normal(&rng);
                    for (size_t i = 0; i < nc; i++) C0[i] = (float)rng_normal(&rng);
                    float alpha = ab[q][0], beta = ab[q][1];
                    // double reference, relative to the size of the terms
                    double err = 0;
                    run(paths[np - 1], R, C0, A, lda, B, ldb, ldc, M, N, K, ta, tb, alpha, beta);
                    for (int i = 0; i < M; i++)
                        for (int j = 0; j < N; j++) {
                            double acc = 0, mag = 0;
                            for (int k = 0; k < K; k++) {
                                double a = ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                                double b = tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                                acc += a * b;
                                mag += fabs(a * b);
                            }
                            double ref = alpha * acc + beta * C0[(size_t)i * ldc + j];
                            double scale = fabs(alpha) * mag + fabs(beta * C0[(size_t)i * ldc + j]) + 1e-30;
                            double e = fabs(R[(size_t)i * ldc + j] - ref) / scale;
                            if (e > err) err = e;
                        }
                    // padding columns of C must be untouched
                    for (int i = 0; i < M; i++)
                        for (int j = N; j < ldc; j++)
                            if (R[(size_t)i * ldc + j] != C0[(size_t)i * ldc + j]) err = INFINITY;
                    if (err > worst) worst = err;
                    checks++;
                    if (!(err <= 1e-6)) {
                        printf("FAIL gemm %s M%d N%d K%d ta%d tb%d a%g b%g vs double: err=%.3g tol=1e-06\n",
                               paths[np - 1], M, N, K, ta, tb, alpha, beta, err);
                        fails++;
                    }
                    for (int p = 0; p < np - 1; p++) {
                        run(paths[p], C, C0, A, lda, B, ldb, ldc, M, N, K, ta, tb, alpha, beta);
                        size_t nd = 0;
                        for (size_t i = 0; i < nc; i++) nd += memcmp(&C[i], &R[i], 4) != 0;
                        checks++;
                        if (nd) {
                            printf("FAIL gemm %s vs %s M%d N%d K%d ta%d tb%d a%g b%g: %zu elements differ tol=0\n",
                                   paths[p], paths[np - 1], M, N, K, ta, tb, alpha, beta, nd);
                            fails++;
                        }
                    }
                    free(A); free(B); free(C0); free(C); free(R);
                }
    printf("%s gemm vs double reference: worst relative err=%.3g tol=1e-06 (%d shapes x 16)\n", fails ? "FAIL" : "PASS",
           worst, (int)(sizeof shapes / sizeof shapes[0]));
    printf("%s gemm paths %s%s%s bit-identical: %d checks, %d failure(s) tol=0\n", fails ? "FAIL" : "PASS", paths[0],
           np > 1 ? "/avx2" : "", np > 2 ? "/avx512" : "", checks, fails);
    return fails ? 1 : 0;
}
