// conv.cu — the device form of the BaseConv mixer (models/mixers/conv.c): y = shortconv_3(u) * (W u + b) + u.
// Depends on layers.cuh (shortconv, linear, common.cuh), cuda.h (MixerCudaOps).
// Same ctx fields as ConvCtx, same tensor order (proj_w, proj_b, conv_w, conv_b); every kernel
// names the conv.c loop it mirrors.
#include "layers.cuh"

#define CONV_K 3

typedef struct {
    int D;
    float *uc;       // [Bmax*Tmax, D] shortconv(u), saved
    float *up;       // [Bmax*Tmax, D] W u (without b: the kernels add it), saved
    float *g, *g2;   // [Bmax*Tmax, D] x2 scratch for backward (d up, d uc)
    float *scratch;  // bias column sums / shortconv weight-gradient partials
} ConvCudaCtx;

static void conv_cuda_destroy(void *ctx) {
    ConvCudaCtx *a = (ConvCudaCtx *)ctx;
    if (!a) return;
    rb_cuda_free(a->uc); rb_cuda_free(a->up); rb_cuda_free(a->g); rb_cuda_free(a->g2); rb_cuda_free(a->scratch);
    free(a);
}

static void *conv_cuda_create(const MixerCfg *c, int Bmax, int Tmax) {
    ConvCudaCtx *a = (ConvCudaCtx *)calloc(1, sizeof *a);
    if (!a) return NULL;
    a->D = c->d;
    int BT = Bmax * Tmax;
    size_t n = (size_t)BT * c->d;
    size_t s1 = rb_colsum_scratch(BT, c->d), s2 = cuda_shortconv_scratch(BT, c->d, CONV_K);
    a->uc = rb_cuda_alloc(n); a->up = rb_cuda_alloc(n); a->g = rb_cuda_alloc(n); a->g2 = rb_cuda_alloc(n);
    a->scratch = rb_cuda_alloc(s1 > s2 ? s1 : s2);
    if (!a->uc || !a->up || !a->g || !a->g2 || !a->scratch) { conv_cuda_destroy(a); return NULL; }
    return a;
}

// The projection bias is added here, not by a separate pass over up: up holds W u, and the CPU's
// up = W u + b is formed in registers (same float operations, same order).
// conv_forward's loop: out = uc * (up + b) + inp. VEC: 4 elements per thread (D % 4 == 0).
template <int VEC>
__global__ void conv_mul_skip_kernel(float *out, const float *uc, const float *up, const float *b, const float *inp,
                                     size_t n, int D) {
    size_t i = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) * (VEC ? 4 : 1);
    if (i >= n) return;
    int row, c;
    rb_divmod(i, D, row, c);
    (void)row;
    if (VEC) {
        float4 u = *(const float4 *)(uc + i), p = *(const float4 *)(up + i), x = *(const float4 *)(inp + i);
        float4 o;
        o.x = u.x * (p.x + b[c]) + x.x;
        o.y = u.y * (p.y + b[c + 1]) + x.y;
        o.z = u.z * (p.z + b[c + 2]) + x.z;
        o.w = u.w * (p.w + b[c + 3]) + x.w;
        *(float4 *)(out + i) = o;
    } else {
        out[i] = uc[i] * (up[i] + b[c]) + inp[i];
    }
}
// conv_backward's two loops at once: g = dout * uc (d up), g2 = dout * (up + b) (d uc). The skip's
// dinp += dout is done by the shortconv backward (cuda_shortconv_backward_skip).
template <int VEC>
__global__ void conv_grads_kernel(float *g, float *g2, const float *dout, const float *uc, const float *up,
                                  const float *b, size_t n, int D) {
    size_t i = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) * (VEC ? 4 : 1);
    if (i >= n) return;
    int row, c;
    rb_divmod(i, D, row, c);
    (void)row;
    if (VEC) {
        float4 d = *(const float4 *)(dout + i), u = *(const float4 *)(uc + i), p = *(const float4 *)(up + i);
        *(float4 *)(g + i) = make_float4(d.x * u.x, d.y * u.y, d.z * u.z, d.w * u.w);
        *(float4 *)(g2 + i) = make_float4(d.x * (p.x + b[c]), d.y * (p.y + b[c + 1]), d.z * (p.z + b[c + 2]),
                                          d.w * (p.w + b[c + 3]));
    } else {
        g[i] = dout[i] * uc[i];
        g2[i] = dout[i] * (up[i] + b[c]);
    }
}
static int vec4_ok(size_t n, int D, const void *p0, const void *p1, const void *p2, const void *p3) {
    return D % 4 == 0 && n % 4 == 0 &&
           (((uintptr_t)p0 | (uintptr_t)p1 | (uintptr_t)p2 | (uintptr_t)p3) & 15) == 0;
}

static void conv_cuda_forward(Mixer *m, float *const *p, float *out, const float *inp, int B, int T) {
    ConvCudaCtx *a = (ConvCudaCtx *)m->ctx;
    int D = a->D;
    size_t n = (size_t)B * T * D;
    cudaStream_t st = rb_cuda_stream();
    cuda_shortconv_forward(a->uc, inp, p[2], p[3], B, T, D, CONV_K);
    cuda_linear_forward(a->up, inp, p[0], NULL, B * T, D, D);  // W u; + b in the kernel below
    if (vec4_ok(n, D, out, a->uc, a->up, inp))
        conv_mul_skip_kernel<1><<<cdiv(n / 4, 256), 256, 0, st>>>(out, a->uc, a->up, p[1], inp, n, D);
    else conv_mul_skip_kernel<0><<<cdiv(n, 256), 256, 0, st>>>(out, a->uc, a->up, p[1], inp, n, D);
    CHECK_LAUNCH();
}

static void conv_cuda_backward(Mixer *m, float *const *p, float *const *dp, float *dinp, const float *dout,
                               const float *inp, int B, int T) {
    ConvCudaCtx *a = (ConvCudaCtx *)m->ctx;
    int D = a->D;
    size_t n = (size_t)B * T * D;
    cudaStream_t st = rb_cuda_stream();
    if (vec4_ok(n, D, a->g, a->g2, dout, a->uc) && vec4_ok(n, D, a->up, a->up, a->up, a->up))
        conv_grads_kernel<1><<<cdiv(n / 4, 256), 256, 0, st>>>(a->g, a->g2, dout, a->uc, a->up, p[1], n, D);
    else conv_grads_kernel<0><<<cdiv(n, 256), 256, 0, st>>>(a->g, a->g2, dout, a->uc, a->up, p[1], n, D);
    CHECK_LAUNCH();
    cuda_linear_backward(dinp, dp[0], dp[1], a->g, inp, p[0], B * T, D, D, 0, a->scratch);  // dinp = d(up) W
    // dinp += dout (the skip), then += the shortconv's input gradient of g2
    cuda_shortconv_backward_skip(dinp, dp[2], dp[3], a->g2, dout, inp, p[2], B, T, D, CONV_K, a->scratch);
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
