// shortconv_emu.cpp — the shortconv kernels of models/cuda/layers.cu (shortconv_forward_kernel,
// shortconv_backward_dinp_kernel), the 4-channel and the one-channel instance against each other and against
// the loops of the CPU code, run on the host one CUDA thread at a time: bit for bit, with and without the skip, over odd T and several K. The kernels come
// from layers.cu through tools/shortconv_emu.sh (kern.inc). Built without FMA contraction on both sides (on
// the device both instances contract alike: per element the same expression).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cstdint>
#include <cstddef>
struct dim3i { unsigned x = 0, y = 0, z = 0; };
struct float4 { float x, y, z, w; };
static float4 make_float4(float a, float b, float c, float d) { return {a, b, c, d}; }
static dim3i threadIdx, blockIdx, blockDim;
#define __global__
#define __device__
#define __forceinline__ inline
static void rb_divmod(size_t i, int D, int &q, int &r) { q = (int)(i / D); r = (int)(i % D); }
#include "kern.inc"
#define LAUNCH(n, call) do { blockDim.x = 256; for (size_t g = 0; g < (size_t)(n); g++) { blockIdx.x = g / 256; threadIdx.x = g % 256; call; } } while (0)
// The per-element loops of models/layers.c's shortconv_forward and of the input-gradient half of
// shortconv_backward (with conv.cu's skip added first), as the one-channel kernels had them.
static void ref_forward(float *o, const float *x, const float *w, const float *b, int BT, int T, int D, int K) {
    for (int bt = 0; bt < BT; bt++)
        for (int c = 0; c < D; c++) {
            int t = bt % T;
            float a = b[c];
            for (int j = 0; j < K; j++) {
                int s = t - (K - 1) + j;
                if (s >= 0) a += w[c * K + j] * x[(size_t)(bt - t + s) * D + c];
            }
            o[(size_t)bt * D + c] = a;
        }
}
static void ref_dinp(float *dinp, const float *dout, const float *skip, const float *w, int BT, int T, int D, int K) {
    for (int bs = 0; bs < BT; bs++)
        for (int c = 0; c < D; c++) {
            int s = bs % T;
            float acc = 0.f;
            for (int j = 0; j < K; j++) {
                int t = s + (K - 1) - j;
                if (t < T) acc += w[c * K + j] * dout[(size_t)(bs - s + t) * D + c];
            }
            size_t i = (size_t)bs * D + c;
            float d0 = dinp[i];
            if (skip) d0 += skip[i];
            dinp[i] = d0 + acc;
        }
}
static float rf() { return (float)rand() / RAND_MAX * 2 - 1; }
int main() {
    int fails = 0;
    int shapes[][4] = {{3, 37, 48, 3}, {2, 300, 40, 4}, {2, 19, 20, 10}, {4, 100, 128, 3}};
    for (auto &sh : shapes) {
        int B = sh[0], T = sh[1], D = sh[2], K = sh[3], BT = B * T; size_t n = (size_t)BT * D;
        float *x = (float *)aligned_alloc(64, n * 4 + 64), *w = new float[D * K], *b = new float[D];
        float *o1 = (float *)aligned_alloc(64, n * 4 + 64), *o2 = (float *)aligned_alloc(64, n * 4 + 64);
        float *sk = (float *)aligned_alloc(64, n * 4 + 64), *d1 = (float *)aligned_alloc(64, n * 4 + 64), *d2 = (float *)aligned_alloc(64, n * 4 + 64);
        for (size_t i = 0; i < n; i++) { x[i] = rf(); sk[i] = rf(); d1[i] = d2[i] = rf(); }
        for (int i = 0; i < D * K; i++) w[i] = rf();
        for (int i = 0; i < D; i++) b[i] = rf();
        size_t n1 = (size_t)BT * D, n4 = n1 / 4;
        size_t g1 = (n1 + 255) / 256 * 256, g4 = (n4 + 255) / 256 * 256;
        LAUNCH(g1, shortconv_forward_kernel<1>(o1, x, w, b, BT, T, D, K));
        LAUNCH(g4, shortconv_forward_kernel<4>(o2, x, w, b, BT, T, D, K));
        float *o3 = (float *)aligned_alloc(64, n * 4 + 64), *d3 = (float *)aligned_alloc(64, n * 4 + 64);
        ref_forward(o3, x, w, b, BT, T, D, K);
        int f1 = memcmp(o1, o2, n * 4) != 0 || memcmp(o1, o3, n * 4) != 0;
        for (int sk_on = 0; sk_on < 2; sk_on++) {
            for (size_t i = 0; i < n; i++) d2[i] = d3[i] = d1[i];
            ref_dinp(d3, x, sk_on ? sk : nullptr, w, BT, T, D, K);
            LAUNCH(g1, shortconv_backward_dinp_kernel<1>(d1, x, sk_on ? sk : nullptr, w, BT, T, D, K));
            LAUNCH(g4, shortconv_backward_dinp_kernel<4>(d2, x, sk_on ? sk : nullptr, w, BT, T, D, K));
            int f2 = memcmp(d1, d2, n * 4) != 0 || memcmp(d1, d3, n * 4) != 0;
            printf("B%d T%d D%d K%d skip %d: V=1, V=4 and the reference loops: forward %s, dinp %s\n", B, T, D, K, sk_on,
                   f1 ? "DIFFER" : "bit-identical", f2 ? "DIFFER" : "bit-identical");
            fails += f1 + f2;
        }
    }
    printf("%d failed\n", fails);
    return fails != 0;
}
