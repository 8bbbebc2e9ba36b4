// shortconv_emu.cpp — the 4-channel shortconv kernels of models/cuda/layers.cu (shortconv_forward4_kernel,
// shortconv_backward_dinp4_kernel) against the one-channel kernels they stand in for, run on the host one
// CUDA thread at a time: bit for bit, with and without the skip, over odd T and several K. The kernels come
// from layers.cu through tools/shortconv_emu.sh (kern.inc). Built without FMA contraction on both sides (as
// on the device the two forms contract alike: per element the same expression).
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
static void rb_divmod(size_t i, int D, int &q, int &r) { q = (int)(i / D); r = (int)(i % D); }
#include "kern.inc"
#define LAUNCH(n, call) do { blockDim.x = 256; for (size_t g = 0; g < (size_t)(n); g++) { blockIdx.x = g / 256; threadIdx.x = g % 256; call; } } while (0)
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
        LAUNCH(g1, shortconv_forward_kernel(o1, x, w, b, BT, T, D, K));
        LAUNCH(g4, shortconv_forward4_kernel((float4 *)o2, (const float4 *)x, w, b, BT, T, D / 4, K));
        int f1 = memcmp(o1, o2, n * 4) != 0;
        for (int sk_on = 0; sk_on < 2; sk_on++) {
            for (size_t i = 0; i < n; i++) d2[i] = d1[i];
            LAUNCH(g1, shortconv_backward_dinp_kernel(d1, x, sk_on ? sk : nullptr, w, BT, T, D, K));
            LAUNCH(g4, shortconv_backward_dinp4_kernel((float4 *)d2, (const float4 *)x, sk_on ? (const float4 *)sk : nullptr, w, BT, T, D / 4, K));
            int f2 = memcmp(d1, d2, n * 4) != 0;
            printf("B%d T%d D%d K%d skip %d: forward %s, dinp %s\n", B, T, D, K, sk_on, f1 ? "DIFFER" : "bit-identical", f2 ? "DIFFER" : "bit-identical");
            fails += f1 + f2;
        }
    }
    printf("%d failed\n", fails);
    return fails != 0;
}
