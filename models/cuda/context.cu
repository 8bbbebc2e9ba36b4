// context.cu — the process's device context (device, stream, cuBLAS handle, GEMM precision), GEMM
// wrappers that mirror models/real.h and layers.h, allocation, deterministic column sums, and the
// device mixer registry. Depends on common.cuh, CUDA runtime, cuBLAS.
#include <stdint.h>
#include <string.h>
#include "common.cuh"

// Per host thread: several runs in threads of one process each get their own stream and cuBLAS
// handle, so their kernels overlap on one GPU (bench -j). prec 0 until rb_cuda_set_precision: model
// creation always sets it.
typedef struct {
    int ready, prec;
    cudaStream_t stream;
    cublasHandle_t blas;
    void *blas_ws;
    char name[256];
} Ctx;
static thread_local Ctx g;

extern "C" void rb_cuda_fatal(const char *file, int line, const char *what, const char *msg) {
    fprintf(stderr, "recallbench: CUDA error at %s:%d: %s (%s)\n", file, line, msg, what);
    exit(1);
}

cudaStream_t rb_cuda_stream(void) { return g.stream; }
cublasHandle_t rb_cuda_cublas(void) { return g.blas; }

extern "C" int rb_cuda_init(char *err, size_t errn) {
    if (g.ready) return 0;
    int n = 0, drv = 0, rt = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    cudaDriverGetVersion(&drv);
    cudaRuntimeGetVersion(&rt);
    if (drv == 0 || e == cudaErrorNoDevice) {
        snprintf(err, errn, "no CUDA device visible (no NVIDIA driver or GPU on this machine); use --backend cpu");
        return -1;
    }
    if (e == cudaErrorInsufficientDriver || drv < rt) {
        snprintf(err, errn, "CUDA driver %d.%d is older than this build's runtime %d.%d: update the driver or rebuild "
                 "with a matching toolkit", drv / 1000, drv % 1000 / 10, rt / 1000, rt % 1000 / 10);
        return -1;
    }
    if (e != cudaSuccess || n == 0) {
        snprintf(err, errn, "no CUDA device visible (%s); use --backend cpu",
                 e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
        return -1;
    }
    cudaDeviceProp prop;
    if ((e = cudaSetDevice(0)) != cudaSuccess || (e = cudaGetDeviceProperties(&prop, 0)) != cudaSuccess) {
        snprintf(err, errn, "cannot open CUDA device 0: %s", cudaGetErrorString(e));
        return -1;
    }
    snprintf(g.name, sizeof g.name, "%s", prop.name);
    if ((e = cudaStreamCreateWithFlags(&g.stream, cudaStreamNonBlocking)) != cudaSuccess) {
        snprintf(err, errn, "cannot create a CUDA stream: %s", cudaGetErrorString(e));
        return -1;
    }
    if (cublasCreate(&g.blas) != CUBLAS_STATUS_SUCCESS) {
        snprintf(err, errn, "cannot create a cuBLAS handle (out of device memory?)");
        return -1;
    }
    // A workspace of our own: cuBLAS then allocates nothing during graph capture, and the same
    // workspace on the same stream keeps its results bitwise reproducible.
    const size_t ws = 32u << 20;
    if (cudaMalloc(&g.blas_ws, ws) != cudaSuccess) {
        snprintf(err, errn, "out of device memory (cuBLAS workspace)");
        return -1;
    }
    CHECK_CUBLAS(cublasSetStream(g.blas, g.stream));
    CHECK_CUBLAS(cublasSetWorkspace(g.blas, g.blas_ws, ws));
    g.ready = 1;
    return 0;
}

extern "C" void rb_cuda_set_precision(int prec) { g.prec = prec; }
extern "C" int rb_cuda_precision(void) { return g.prec; }
extern "C" const char *rb_cuda_device_name(void) { return g.ready ? g.name : "none"; }
extern "C" void rb_cuda_sync(void) {
    CHECK_CUDA(cudaStreamSynchronize(g.stream));
    CHECK_CUDA(cudaGetLastError());
}

extern "C" void *rb_cuda_alloc_bytes(size_t nbytes) {
    void *p = NULL;
    if (cudaMalloc(&p, nbytes ? nbytes : 4) != cudaSuccess) {
        cudaGetLastError();  // clear the sticky-free OOM error
        return NULL;
    }
    return p;
}
extern "C" float *rb_cuda_alloc(size_t n) { return (float *)rb_cuda_alloc_bytes(n * sizeof(float)); }
extern "C" void rb_cuda_free(void *p) { if (p) cudaFree(p); }
extern "C" void rb_cuda_upload(void *dst, const void *src, size_t n) {
    CHECK_CUDA(cudaMemcpyAsync(dst, src, n, cudaMemcpyHostToDevice, g.stream));
    rb_cuda_sync();
}
extern "C" void rb_cuda_download(void *dst, const void *src, size_t n) {
    CHECK_CUDA(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToHost, g.stream));
    rb_cuda_sync();
}

static cublasComputeType_t compute_type(void) {
    return g.prec == RB_PREC_BF16 ? CUBLAS_COMPUTE_32F_FAST_16BF
         : g.prec == RB_PREC_TF32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
}

// Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: swap the operands, keep the ops.
extern "C" void rb_cuda_gemm_ld(float *C, int ldc, const float *A, int lda, const float *B, int ldb, int M, int N,
                                int K, int ta, int tb, float alpha, float beta) {
    if (M <= 0 || N <= 0) return;
    CHECK_CUBLAS(cublasGemmEx(g.blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K,
                              &alpha, B, CUDA_R_32F, ldb, A, CUDA_R_32F, lda, &beta, C, CUDA_R_32F, ldc,
                              compute_type(), CUBLAS_GEMM_DEFAULT));
}

extern "C" void rb_cuda_matmul(float *C, const float *A, const float *B, int M, int N, int K, int ta, int tb,
                               float beta) {
    rb_cuda_gemm_ld(C, N, A, ta ? M : K, B, tb ? K : N, M, N, K, ta, tb, 1.f, beta);
}

extern "C" void rb_cuda_gemm_batched(float *C, int ldc, long long sC, const float *A, int lda, long long sA,
                                     const float *B, int ldb, long long sB, int M, int N, int K, int ta, int tb,
                                     float alpha, float beta, int batch) {
    if (M <= 0 || N <= 0 || batch <= 0) return;
    CHECK_CUBLAS(cublasGemmStridedBatchedEx(g.blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N,
                                            N, M, K, &alpha, B, CUDA_R_32F, ldb, sB, A, CUDA_R_32F, lda, sA, &beta,
                                            C, CUDA_R_32F, ldc, sC, batch, compute_type(), CUBLAS_GEMM_DEFAULT));
}

__global__ void gemm_ptrs_kernel(const float **pa, const float **pb, float **pc, const float *A, long long sA1,
                                 long long sA2, const float *B, long long sB1, long long sB2, float *C, long long sC1,
                                 long long sC2, int n1, int n2) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n1 * n2) return;
    const long long i1 = i / n2, i2 = i % n2;
    pa[i] = A + i1 * sA1 + i2 * sA2;
    pb[i] = B + i1 * sB1 + i2 * sB2;
    pc[i] = C + i1 * sC1 + i2 * sC2;
}

extern "C" void rb_cuda_gemm_batched2(float *C, int ldc, long long sC1, long long sC2, const float *A, int lda,
                                      long long sA1, long long sA2, const float *B, int ldb, long long sB1,
                                      long long sB2, int M, int N, int K, int ta, int tb, float alpha, float beta,
                                      int n1, int n2, void **ptrs) {
    const int n = n1 * n2;
    if (M <= 0 || N <= 0 || n <= 0) return;
    // With pointer arrays cuBLAS cannot see the matrices' alignment (the strided call can, and picks a
    // kernel to suit): its tensor-core kernels then need every matrix 16-byte aligned. When a base, a
    // stride or a leading dimension breaks that, loop strided batches over the shorter level instead.
    const long long f4[] = {sA1, sA2, sB1, sB2, sC1, sC2, lda, ldb, ldc};
    int aligned = ((uintptr_t)A | (uintptr_t)B | (uintptr_t)C) % 16 == 0;
    for (int i = 0; i < 9; i++) aligned &= f4[i] % 4 == 0;
    if (!aligned) {
        if (n1 <= n2)
            for (int i = 0; i < n1; i++)
                rb_cuda_gemm_batched(C + i * sC1, ldc, sC2, A + i * sA1, lda, sA2, B + i * sB1, ldb, sB2, M, N, K, ta,
                                     tb, alpha, beta, n2);
        else
            for (int i = 0; i < n2; i++)
                rb_cuda_gemm_batched(C + i * sC2, ldc, sC1, A + i * sA2, lda, sA1, B + i * sB2, ldb, sB1, M, N, K, ta,
                                     tb, alpha, beta, n1);
        return;
    }
    const int nr = (n + 1) & ~1;  // each array 16-byte aligned (the scratch holds 3 * (n rounded up to even))
    const float **pa = (const float **)ptrs, **pb = pa + nr;
    float **pc = (float **)(pb + nr);
    gemm_ptrs_kernel<<<(n + 255) / 256, 256, 0, g.stream>>>(pa, pb, pc, A, sA1, sA2, B, sB1, sB2, C, sC1, sC2, n1, n2);
    CHECK_LAUNCH();
    CHECK_CUBLAS(cublasGemmBatchedEx(g.blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K,
                                     &alpha, (const void *const *)pb, CUDA_R_32F, ldb, (const void *const *)pa,
                                     CUDA_R_32F, lda, &beta, (void *const *)pc, CUDA_R_32F, ldc, n, compute_type(),
                                     CUBLAS_GEMM_DEFAULT));
}

// ---- deterministic column sums --------------------------------------------------------------
// A fixed partition (it depends on R and C only): one block per (128-column tile, 128-row chunk);
// warp w sums rows r0 + w + 8 i in i order, 4 columns per lane (one 16-byte load when aligned),
// then the 8 warp sums in warp order -> part [chunk][C]. colsum_final adds the chunk partials: 32
// chunk lanes per column, each its chunks in order, then the lanes in order.
#define COLSUM_ROWS 128  // rows per partial sum

template <int VEC>
__global__ void colsum_partial(float *part, const float *in, int R, int C, int ld) {
    __shared__ float sh[8][128];
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, chunk = blockIdx.y;
    int c0 = blockIdx.x * 128 + lane * 4;
    float a0 = 0.f, a1 = 0.f, a2 = 0.f, a3 = 0.f;
    if (c0 < C) {
#pragma unroll 4
        for (int i = 0; i < COLSUM_ROWS / 8; i++) {
            int r = chunk * COLSUM_ROWS + w + 8 * i;
            if (r >= R) break;
            const float *p = in + (size_t)r * ld + c0;
            if (VEC) {
                float4 v = *(const float4 *)p;
                a0 += v.x; a1 += v.y; a2 += v.z; a3 += v.w;
            } else {
                a0 += p[0];
                if (c0 + 1 < C) a1 += p[1];
                if (c0 + 2 < C) a2 += p[2];
                if (c0 + 3 < C) a3 += p[3];
            }
        }
    }
    sh[w][lane * 4] = a0; sh[w][lane * 4 + 1] = a1; sh[w][lane * 4 + 2] = a2; sh[w][lane * 4 + 3] = a3;
    __syncthreads();
    int t = threadIdx.x, c = blockIdx.x * 128 + t;
    if (t < 128 && c < C) {
        float s = 0.f;
        for (int k = 0; k < 8; k++) s += sh[k][t];
        part[(size_t)chunk * C + c] = s;
    }
}

__global__ void colsum_final(float *out, const float *part, int nchunk, int C, int accumulate) {
    __shared__ float sh[32][33];
    int tx = threadIdx.x & 31, ty = threadIdx.x >> 5, c = blockIdx.x * 32 + tx;
    float s = 0.f;
    if (c < C)
        for (int k = ty; k < nchunk; k += 32) s += part[(size_t)k * C + c];
    sh[ty][tx] = s;
    __syncthreads();
    if (ty == 0 && c < C) {
        float t = 0.f;
        for (int k = 0; k < 32; k++) t += sh[k][tx];
        out[c] = accumulate ? out[c] + t : t;
    }
}

size_t rb_colsum_scratch(int R, int C) { return (size_t)cdiv(R > 0 ? R : 1, COLSUM_ROWS) * C; }

void rb_colsum(float *out, const float *in, int R, int C, int ld, int accumulate, float *scratch) {
    if (C <= 0) return;
    int nchunk = R > 0 ? cdiv(R, COLSUM_ROWS) : 0;
    if (nchunk > 0) {
        dim3 grid(cdiv(C, 128), nchunk);
        if (C % 4 == 0 && ld % 4 == 0 && ((uintptr_t)in & 15) == 0)
            colsum_partial<1><<<grid, 256, 0, g.stream>>>(scratch, in, R, C, ld);
        else colsum_partial<0><<<grid, 256, 0, g.stream>>>(scratch, in, R, C, ld);
        CHECK_LAUNCH();
    }
    colsum_final<<<cdiv(C, 32), 1024, 0, g.stream>>>(out, scratch, nchunk, C, accumulate);
    CHECK_LAUNCH();
}

// ---- device mixer registry: a mixer is listed once its .cu file is built (meson defines RB_CUDA_X) --
#define DECL(x) extern "C" const MixerCudaOps x;
#ifdef RB_CUDA_CONV
DECL(conv_cuda_ops)
#endif
#ifdef RB_CUDA_ATTENTION
DECL(attention_cuda_ops)
DECL(swa_cuda_ops)
#endif
#ifdef RB_CUDA_BLA
DECL(bla_cuda_ops)
#endif
#ifdef RB_CUDA_GSA
DECL(gsa_cuda_ops)
#endif
#ifdef RB_CUDA_LA
DECL(la_cuda_ops)
#endif
#ifdef RB_CUDA_MAMBA
DECL(mamba_cuda_ops)
#endif

extern "C" const MixerCudaOps *mixer_cuda_ops(MixerKind k) {
    switch (k) {
#ifdef RB_CUDA_CONV
    case MIX_CONV: return &conv_cuda_ops;
#endif
#ifdef RB_CUDA_ATTENTION
    case MIX_ATTENTION: return &attention_cuda_ops;
    case MIX_SWA: return &swa_cuda_ops;
#endif
#ifdef RB_CUDA_BLA
    case MIX_BLA: return &bla_cuda_ops;
#endif
#ifdef RB_CUDA_GSA
    case MIX_GSA: return &gsa_cuda_ops;
#endif
#ifdef RB_CUDA_LA
    case MIX_LA: return &la_cuda_ops;
#endif
#ifdef RB_CUDA_MAMBA
    case MIX_MAMBA: return &mamba_cuda_ops;
#endif
    default: return NULL;
    }
}

extern "C" int mixer_cuda_create(Mixer *m, const MixerCfg *c, int Bmax, int Tmax) {
    const MixerCudaOps *d = mixer_cuda_ops(c->kind);
    m->ops = mixer_ops(c->kind);
    m->cfg = *c;
    m->Bmax = Bmax;
    m->Tmax = Tmax;
    m->ctx = NULL;
    if (!d || !m->ops) return -1;
    m->ctx = d->create(c, Bmax, Tmax);
    return m->ctx ? 0 : -1;
}

extern "C" void mixer_cuda_destroy(Mixer *m) {
    const MixerCudaOps *d = m->ops ? mixer_cuda_ops(m->cfg.kind) : NULL;
    if (d && m->ctx) d->destroy(m->ctx);
    m->ctx = NULL;
}
