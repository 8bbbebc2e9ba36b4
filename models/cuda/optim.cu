// optim.cu — the device form of models/optim.c: global grad norm (fixed-order two-pass reduction),
// torch clip_grad_norm_ scaling and AdamW, all scalars read from device memory so the whole update
// can sit in a captured CUDA graph. Depends on layers.cuh (declarations), common.cuh.
#include "layers.cuh"

#define SQ_CHUNK 4096  // as optim.c: the chunk sums are the same partition

// grad_sumsq's chunk loop: one block per 4096-element chunk, double partials, fixed tree
__global__ void sumsq_chunk_kernel(double *part, const float *g, size_t P) {
    __shared__ double sh[256];
    size_t c0 = (size_t)blockIdx.x * SQ_CHUNK, c1 = c0 + SQ_CHUNK < P ? c0 + SQ_CHUNK : P;
    double s = 0;
    for (size_t i = c0 + threadIdx.x; i < c1; i += blockDim.x) s += (double)g[i] * g[i];
    sh[threadIdx.x] = s;
    __syncthreads();
    for (int o = blockDim.x / 2; o > 0; o >>= 1) {
        if ((int)threadIdx.x < o) sh[threadIdx.x] += sh[threadIdx.x + o];
        __syncthreads();
    }
    if (threadIdx.x == 0) part[blockIdx.x] = sh[0];
}
// grad_sumsq's final loop: chunk sums added in chunk order by one thread, from shared memory tiles
// that the whole block loads (the serial adds then wait on no memory round trips)
__global__ void sumsq_final_kernel(double *norm, const double *part, long nch) {
    __shared__ double sh[1024];
    double t = 0;
    for (long c0 = 0; c0 < nch; c0 += 1024) {
        long m = nch - c0 < 1024 ? nch - c0 : 1024;
        if (threadIdx.x < m) sh[threadIdx.x] = part[c0 + threadIdx.x];
        __syncthreads();
        if (threadIdx.x == 0)
#pragma unroll 8
            for (long c = 0; c < m; c++) t += sh[c];
        __syncthreads();
    }
    if (threadIdx.x == 0) *norm = sqrt(t);
}

size_t cuda_gradnorm_scratch(size_t P) { return P / SQ_CHUNK + 1; }
void cuda_grad_norm(double *norm_dev, const float *g, size_t P, double *part) {
    long nch = (long)((P + SQ_CHUNK - 1) / SQ_CHUNK);
    cudaStream_t st = rb_cuda_stream();
    if (nch > 0) { sumsq_chunk_kernel<<<nch, 256, 0, st>>>(part, g, P); CHECK_LAUNCH(); }
    sumsq_final_kernel<<<1, 1024, 0, st>>>(norm_dev, part, nch);
    CHECK_LAUNCH();
}

// optim_step's scalars, in double as on the host, rounded to float where optim.c rounds them:
// scal = {skip, gs, b1, b2, ob1, ob2, a, rb2, eps, decay_on, decay_off}
__global__ void adamw_scalars_kernel(float *scal, const CudaAdamHyper *hp, const double *norm, const double *guard) {
    double lr = hp->lr, t = hp->t, n = *norm, gscale = 1;
    if (hp->clip > 0 && n > hp->clip) gscale = hp->clip / (n + 1e-6);  // torch clip_grad_norm_
    double bc1 = 1 - pow(hp->beta1, t), bc2 = 1 - pow(hp->beta2, t);
    scal[0] = guard && !isfinite(*guard) ? 1.f : 0.f;
    scal[1] = (float)gscale;
    scal[2] = (float)hp->beta1;
    scal[3] = (float)hp->beta2;
    scal[4] = (float)(1 - hp->beta1);  // 1 - beta in double, as optim.c
    scal[5] = (float)(1 - hp->beta2);
    scal[6] = (float)(lr / bc1);
    scal[7] = (float)(1 / sqrt(bc2));
    scal[8] = (float)hp->eps;
    scal[9] = (float)(1 - lr * hp->weight_decay);
    scal[10] = (float)(1 - lr * (hp->decay_all != 0 ? hp->weight_decay : 0));
}

// optim_step's element loop (same formula, same float roundings)
__global__ void adamw_kernel(float *p, const float *g, float *m, float *v, const uint8_t *decay, size_t P,
                             const float *scal) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= P || scal[0] != 0.f) return;
    const float gs = scal[1], b1 = scal[2], b2 = scal[3], ob1 = scal[4], ob2 = scal[5], a = scal[6], rb2 = scal[7],
                eps = scal[8], dec = decay[i] ? scal[9] : scal[10];
    float gi = g[i] * gs;
    float mi = b1 * m[i] + ob1 * gi;
    float vi = b2 * v[i] + ob2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] * dec - a * mi / (sqrtf(vi) * rb2 + eps);
}

void cuda_adamw(float *p, const float *g, float *m, float *v, const uint8_t *decay, size_t P,
                const CudaAdamHyper *hp_dev, const double *norm_dev, const double *skip_if_nan_dev, float *scal) {
    cudaStream_t st = rb_cuda_stream();
    adamw_scalars_kernel<<<1, 1, 0, st>>>(scal, hp_dev, norm_dev, skip_if_nan_dev);
    CHECK_LAUNCH();
    if (P) { adamw_kernel<<<cdiv(P, 256), 256, 0, st>>>(p, g, m, v, decay, P, scal); CHECK_LAUNCH(); }
}
