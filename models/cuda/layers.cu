// layers.cu — device forms of models/layers.c (the shell's layers), one function per CPU function,
// same arguments. Depends on layers.cuh (common.cuh, cuBLAS).
#include "layers.cuh"

// y[n, oc] += b[oc]: one pass, 4 outputs per thread when the row length allows it.
__global__ void add_bias_kernel(float *y, const float *b, long long n, int OC) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] += b[i % OC];
}

void cuda_linear_forward(float *out, const float *inp, const float *w, const float *b, int N, int C, int OC) {
    rb_cuda_matmul(out, inp, w, N, OC, C, 0, 1, 0.f);  // [N,C] @ [OC,C]^T
    if (b) {
        long long n = (long long)N * OC;
        add_bias_kernel<<<cdiv(n, 256), 256, 0, rb_cuda_stream()>>>(out, b, n, OC);
        CHECK_LAUNCH();
    }
}

void cuda_linear_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                          int N, int C, int OC, int acc_dinp, float *scratch) {
    if (dinp) rb_cuda_matmul(dinp, dout, w, N, C, OC, 0, 0, acc_dinp ? 1.f : 0.f);  // [N,OC] @ [OC,C]
    rb_cuda_matmul(dw, dout, inp, OC, C, N, 1, 0, 1.f);                              // [OC,N] @ [N,C], +=
    if (db) rb_colsum(db, dout, N, OC, OC, 1, scratch);
}
