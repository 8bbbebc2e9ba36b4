// test_cuda_gemm.c — the device GEMM wrappers (models/cuda/cuda.h) against OpenBLAS on random
// inputs: every transpose pair, odd sizes, leading dimensions, batched; fp32, tf32 and bf16 inputs.
// Depends on models/cuda/cuda.h, real.h (cblas), rng.h. Exits 77 (skip) without a device.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "../models/cuda/cuda.h"
#include "../models/real.h"
#include "cuda_check.h"
#include "mixcheck.h"

static double rel(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(a[i])) return INFINITY;
        if (fabs((double)a[i] - b[i]) > num) num = fabs((double)a[i] - b[i]);
        if (fabs(b[i]) > den) den = fabs(b[i]);
    }
    return num / (den > 0 ? den : 1);
}

int main(void) {
    cuda_check_init_or_skip();
    Rng r;
    rng_seed(&r, 7);
    int fails = 0, checks = 0;
    const int shapes[][3] = {{1, 1, 1}, {37, 48, 130}, {256, 384, 128}, {129, 65, 1000}};
    const double tol[3] = {1e-5, 3e-3, 2e-2};  // fp32, tf32, bf16 (relative to max |C|)
    const char *pn[3] = {"fp32", "tf32", "bf16"};
    for (int si = 0; si < 4; si++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                int M = shapes[si][0], N = shapes[si][1], K = shapes[si][2];
                size_t na = (size_t)M * K, nb = (size_t)K * N, nc = (size_t)M * N;
                float *A = malloc(na * 4), *B = malloc(nb * 4), *C0 = malloc(nc * 4), *C = malloc(nc * 4), *H = malloc(nc * 4);
                for (size_t i = 0; i < na; i++) A[i] = (float)rng_normal(&r);
                for (size_t i = 0; i < nb; i++) B[i] = (float)rng_normal(&r);
                for (size_t i = 0; i < nc; i++) C0[i] = (float)rng_normal(&r);
                float *dA = rb_cuda_alloc(na), *dB = rb_cuda_alloc(nb), *dC = rb_cuda_alloc(nc);
                rb_cuda_upload(dA, A, na * 4);
                rb_cuda_upload(dB, B, nb * 4);
                for (int p = 0; p < 3; p++) {
                    for (size_t i = 0; i < nc; i++) C[i] = C0[i];
                    matmul(C, A, B, M, N, K, ta, tb, 0.5f);  // reference: OpenBLAS, beta 0.5
                    rb_cuda_set_precision(p);
                    rb_cuda_upload(dC, C0, nc * 4);
                    rb_cuda_matmul(dC, dA, dB, M, N, K, ta, tb, 0.5f);
                    rb_cuda_download(H, dC, nc * 4);
                    char name[96];
                    snprintf(name, sizeof name, "matmul %dx%dx%d ta%d tb%d %s", M, N, K, ta, tb, pn[p]);
                    fails += check_report(name, rel(H, C, nc), tol[p]);
                    checks++;
                }
                rb_cuda_free(dA); rb_cuda_free(dB); rb_cuda_free(dC);
                free(A); free(B); free(C0); free(C); free(H);
            }
    // batched: 5 independent [33 x 40] = [33 x 70] @ [70 x 40]^T with strides
    {
        int bt = 5, M = 33, N = 40, K = 70;
        size_t na = (size_t)bt * M * K, nb = (size_t)bt * N * K, nc = (size_t)bt * M * N;
        float *A = malloc(na * 4), *B = malloc(nb * 4), *C = calloc(nc, 4), *H = malloc(nc * 4);
        for (size_t i = 0; i < na; i++) A[i] = (float)rng_normal(&r);
        for (size_t i = 0; i < nb; i++) B[i] = (float)rng_normal(&r);
        for (int i = 0; i < bt; i++)
            matmul(C + (size_t)i * M * N, A + (size_t)i * M * K, B + (size_t)i * N * K, M, N, K, 0, 1, 0);
        float *dA = rb_cuda_alloc(na), *dB = rb_cuda_alloc(nb), *dC = rb_cuda_alloc(nc);
        rb_cuda_upload(dA, A, na * 4);
        rb_cuda_upload(dB, B, nb * 4);
        rb_cuda_set_precision(RB_PREC_FP32);
        rb_cuda_gemm_batched(dC, N, (long long)M * N, dA, K, (long long)M * K, dB, K, (long long)N * K, M, N, K, 0, 1,
                             1.f, 0.f, bt);
        rb_cuda_download(H, dC, nc * 4);
        fails += check_report("gemm_batched 5 x 33x40x70 tb fp32", rel(H, C, nc), 1e-5);
        checks++;
        rb_cuda_free(dA); rb_cuda_free(dB); rb_cuda_free(dC);
        free(A); free(B); free(C); free(H);
    }
    printf("cuda gemm: %d checks, %d failed\n", checks, fails);
    return fails ? 1 : 0;
}
