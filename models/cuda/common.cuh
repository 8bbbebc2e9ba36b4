// common.cuh — what every .cu file of the CUDA backend shares: error checks, the stream and cuBLAS
// handle, launch helpers, warp/block reductions in a fixed order. Depends on cuda.h, CUDA, cuBLAS.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include "cuda.h"

// Device errors are runtime failures: one line with file:line and the CUDA message, exit 1.
#define CHECK_CUDA(call)                                                                           \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess) rb_cuda_fatal(__FILE__, __LINE__, #call, cudaGetErrorString(e_));   \
    } while (0)
#define CHECK_CUBLAS(call)                                                                         \
    do {                                                                                           \
        cublasStatus_t s_ = (call);                                                                \
        if (s_ != CUBLAS_STATUS_SUCCESS)                                                           \
            rb_cuda_fatal(__FILE__, __LINE__, #call, cublasGetStatusString(s_));                   \
    } while (0)
// After a kernel launch: catches bad launch configurations at once (cheap: no synchronisation).
#define CHECK_LAUNCH() CHECK_CUDA(cudaGetLastError())

extern "C" void rb_cuda_fatal(const char *file, int line, const char *what, const char *msg);
cudaStream_t rb_cuda_stream(void);
cublasHandle_t rb_cuda_cublas(void);

static inline int cdiv(long long a, long long b) { return (int)((a + b - 1) / b); }

// cvt.rna.tf32.f32: x rounded to tf32 (10 mantissa bits, to nearest, ties away from zero), as fp32 bits:
// what a tf32 tensor-core product (mma.sync .tf32) takes as an input. One definition for every kernel.
__device__ __forceinline__ unsigned rb_tf32_bits(float x) {
    unsigned u;
    asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(u) : "f"(x));
    return u;
}

// Sum over a warp, lanes combined in a fixed butterfly order (same bits every run).
__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
// Sum over the block (blockDim.x a multiple of 32, <= 1024); every thread gets the total.
// sh: __shared__ float[32]. Fixed order: warps, then warp sums in warp order.
__device__ __forceinline__ float block_sum(float v, float *sh) {
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = warp_sum(v);
    __syncthreads();
    if (lane == 0) sh[w] = v;
    __syncthreads();
    v = lane < nw ? sh[lane] : 0.f;
    return warp_sum(v);
}
__device__ __forceinline__ float block_max(float v, float *sh) {
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) sh[w] = v;
    __syncthreads();
    v = lane < nw ? sh[lane] : -INFINITY;
    return warp_max(v);
}

// Deterministic column sums: out[c] (+)= sum_r in[r*ld + c] over r < R, in row order per column
// chunk (used for bias and norm-weight gradients). accumulate: 1 adds to out, 0 overwrites.
// scratch: at least rb_colsum_scratch(R, C) floats.
size_t rb_colsum_scratch(int R, int C);
void rb_colsum(float *out, const float *in, int R, int C, int ld, int accumulate, float *scratch);
