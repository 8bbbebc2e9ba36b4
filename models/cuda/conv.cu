// conv.cu — the device form of the BaseConv mixer (models/mixers/conv.c): y = shortconv_3(u) * (W u + b) + u.
// Depends on layers.cuh (shortconv, linear, common.cuh), cuda.h (MixerCudaOps).
// Same ctx fields as ConvCtx, same tensor order (proj_w, proj_b, conv_w, conv_b); every kernel
// names the conv.c loop it mirrors.
#include "layers.cuh"

#define CONV_K 3

typedef struct {
    int D;
    float *uc;       // [Bmax*Tmax, D] shortconv(u), saved
    float *up;       // [Bmax*Tmax, D] W u + b, saved
    float *g;        // [Bmax*Tmax, D] scratch for backward
    float *scratch;  // bias column sums / shortconv weight-gradient partials
} ConvCudaCtx;

static void conv_cuda_destroy(void *ctx) {
    ConvCudaCtx *a = (ConvCudaCtx *)ctx;
    if (!a) return;
    rb_cuda_free(a->uc); rb_cuda_free(a->up); rb_cuda_free(a->g); rb_cuda_free(a->scratch);
    free(a);
}

static void *conv_cuda_create(const MixerCfg *c, int Bmax, int Tmax) {
    ConvCudaCtx *a = (ConvCudaCtx *)calloc(1, sizeof *a);
    if (!a) return NULL;
    a->D = c->d;
    int BT = Bmax * Tmax;
    size_t n = (size_t)BT * c->d;
    size_t s1 = rb_colsum_scratch(BT, c->d), s2 = cuda_shortconv_scratch(BT, c->d, CONV_K);
    a->uc = rb_cuda_alloc(n); a->up = rb_cuda_alloc(n); a->g = rb_cuda_alloc(n);
    a->scratch = rb_cuda_alloc(s1 > s2 ? s1 : s2);
    if (!a->uc || !a->up || !a->g || !a->scratch) { conv_cuda_destroy(a); return NULL; }
    return a;
}

// conv_forward's loop: out = uc * up + inp
__global__ void conv_mul_skip_kernel(float *out, const float *uc, const float *up, const float *inp, size_t n) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = uc[i] * up[i] + inp[i];
}
// conv_backward's first loop: g = dout * uc (d up)
__global__ void conv_dup_kernel(float *g, const float *dout, const float *uc, size_t n) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) g[i] = dout[i] * uc[i];
}
// conv_backward's second loop: dinp += dout (the skip); g = dout * up (d uc)
__global__ void conv_skip_duc_kernel(float *dinp, float *g, const float *dout, const float *up, size_t n) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    dinp[i] += dout[i];
    g[i] = dout[i] * up[i];
}

static void conv_cuda_forward(Mixer *m, float *const *p, float *out, const float *inp, int B, int T) {
    ConvCudaCtx *a = (ConvCudaCtx *)m->ctx;
    int D = a->D;
    size_t n = (size_t)B * T * D;
    cuda_shortconv_forward(a->uc, inp, p[2], p[3], B, T, D, CONV_K);
    cuda_linear_forward(a->up, inp, p[0], p[1], B * T, D, D);
    conv_mul_skip_kernel<<<cdiv(n, 256), 256, 0, rb_cuda_stream()>>>(out, a->uc, a->up, inp, n);
    CHECK_LAUNCH();
}

static void conv_cuda_backward(Mixer *m, float *const *p, float *const *dp, float *dinp, const float *dout,
                               const float *inp, int B, int T) {
    ConvCudaCtx *a = (ConvCudaCtx *)m->ctx;
    int D = a->D;
    size_t n = (size_t)B * T * D;
    cudaStream_t st = rb_cuda_stream();
    conv_dup_kernel<<<cdiv(n, 256), 256, 0, st>>>(a->g, dout, a->uc, n);
    CHECK_LAUNCH();
    cuda_linear_backward(dinp, dp[0], dp[1], a->g, inp, p[0], B * T, D, D, 0, a->scratch);  // dinp = d(up) W
    conv_skip_duc_kernel<<<cdiv(n, 256), 256, 0, st>>>(dinp, a->g, dout, a->up, n);
    CHECK_LAUNCH();
    cuda_shortconv_backward(dinp, dp[2], dp[3], a->g, inp, p[2], B, T, D, CONV_K, a->scratch);
}

static size_t conv_cuda_step_state_size(const Mixer *m) { return (size_t)(CONV_K - 1) * m->cfg.d; }

// conv_step's channel loop for B sequences: out = uc * (W x + b) + x (out holds W x on entry), then
// the window shifts (state row 0 = u_{t-2}, row 1 = u_{t-1}).
__global__ void conv_step_kernel(float *out, float *state, const float *x, const float *pb, const float *w,
                                 const float *cb, int B, int D) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= B * D) return;
    int b = i / D, c = i % D;
    float *u2 = state + (size_t)b * 2 * D, *u1 = u2 + D;
    float xc = x[i];
    float uc = cb[c] + w[c * CONV_K + 0] * u2[c] + w[c * CONV_K + 1] * u1[c] + w[c * CONV_K + 2] * xc;
    out[i] = uc * (out[i] + pb[c]) + xc;
    u2[c] = u1[c];
    u1[c] = xc;
}

static void conv_cuda_step(Mixer *m, float *const *p, float *state, float *out, const float *x, int B, int t) {
    int D = m->cfg.d;
    rb_cuda_matmul(out, x, p[0], B, D, D, 0, 1, 0.f);  // W x for the B sequences
    conv_step_kernel<<<cdiv(B * D, 256), 256, 0, rb_cuda_stream()>>>(out, state, x, p[1], p[2], p[3], B, D);
    CHECK_LAUNCH();
}

extern "C" const MixerCudaOps conv_cuda_ops = {
    conv_cuda_create, conv_cuda_destroy, conv_cuda_forward, conv_cuda_backward, conv_cuda_step_state_size,
    conv_cuda_step,
};
