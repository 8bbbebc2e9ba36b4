// test_cuda_bla.c — the device BLA mixer (models/cuda/bla.cu) against the CPU form (models/mixers/bla.c):
// forward, backward, every parameter gradient, step == forward. Depends on cuda_check.h.
//
// Grid: W in {16, 64, 256} x N in {4, 8, 32} (N <= W) x dense/slots x project/decay, with T cycling
// through 37, 130, 257 (no multiple of any tile) and d through 48, 128; then two heads with
// different (W, N), and N = W dense (the SWA limit). B >= 2 everywhere. All of it three times: the
// quadratic parallel form, the chunked one with all full chunks batched together (form 0), and the
// chunked one chunk by chunk (form 2, the default until 2026-12-01). Chunk 64: T = 37
// is one short chunk, 130 and 257 end short; the chunked forms also run T = 64, 128, 192, 256, whole
// chunks only (MQAR's training lengths).
#include <stdio.h>
#include "cuda_check.h"

void bla_cuda_set_form(int form);  // models/cuda/bla.cu: 0 chunked where it fits, 1 quadratic, 2 chunk by chunk

// fp32: both sides are float GEMMs over the same sums in different orders (T <= 257 terms, softmax
// in between): 1e-4 of the largest entry. tf32 (10-bit mantissa GEMM inputs, two GEMMs deep before
// the softmax): 2e-2.
#define TOL_FP32 1e-4
#define TOL_TF32 2e-2

static MixerCfg cfg(int d, int heads, const int *W, const int *N, int readout, int transition) {
    MixerCfg c;
    mixer_cfg_default(&c, MIX_BLA, d, heads, 2);
    for (int h = 0; h < heads; h++) {
        c.window[h] = W[h];
        c.freqs[h] = N[h];
    }
    c.bla_readout = readout;
    c.bla_transition = transition;
    return c;
}

static void grid(const char *form, int f) {
    const int Ws[] = {16, 64, 256}, Ns[] = {4, 8, 32}, Ts[] = {37, 130, 257}, Ds[] = {48, 128};
    const char *rn[] = {"dense", "slots"}, *tn[] = {"project", "decay"};
    int k = 0;
    for (int wi = 0; wi < 3; wi++)
        for (int ni = 0; ni < 3; ni++) {
            if (Ns[ni] > Ws[wi]) continue;
            for (int r = 0; r < 2; r++)
                for (int tr = 0; tr < 2; tr++, k++) {
                    int W = Ws[wi], N = Ns[ni], T = Ts[k % 3], d = Ds[(k / 3) % 2], B = 2 + k % 2;
                    MixerCfg c = cfg(d, 1, &W, &N, r, tr);
                    char label[128];
                    snprintf(label, sizeof label, "bla %s W%d N%d %s %s d%d", form, W, N, rn[r], tn[tr], d);
                    cuda_check_mixer(label, &c, B, T, 1000 + k, TOL_FP32, TOL_TF32);
                }
        }
    // Two heads, a sharp recent window and a blurry distant one (bla.md "Per-head resolution").
    {
        const int W[2] = {16, 256}, N[2] = {8, 32};
        for (int r = 0; r < 2; r++)
            for (int tr = 0; tr < 2; tr++) {
                int d = r ? 128 : 48, T = tr ? 257 : 130;
                MixerCfg c = cfg(d, 2, W, N, r, tr);
                char label[128];
                snprintf(label, sizeof label, "bla %s 2 heads W16,256 N8,32 %s %s d%d", form, rn[r], tn[tr], d);
                cuda_check_mixer(label, &c, 2, T, 2000 + r * 2 + tr, TOL_FP32, TOL_TF32);
            }
        const int W2[2] = {64, 32}, N2[2] = {4, 32};
        MixerCfg c = cfg(48, 2, W2, N2, 0, 0);
        char label[128];
        snprintf(label, sizeof label, "bla %s 2 heads W64,32 N4,32 dense project d48", form);
        cuda_check_mixer(label, &c, 3, f ? 37 : 200, 2100, TOL_FP32, TOL_TF32);
    }
    // N = W dense: h is the identity on ages < W (the SWA limit, bla.md claim 2), T past the window.
    {
        const int W = 16, N = 16;
        MixerCfg c = cfg(48, 1, &W, &N, 0, 0);
        char label[128];
        snprintf(label, sizeof label, "bla %s W16 N16 dense project d48 (swa limit)", form);
        cuda_check_mixer(label, &c, 2, f ? 37 : 150, 3000, TOL_FP32, TOL_TF32);
    }
    if (f) return;
    // Whole chunks only: T a multiple of the chunk (1 to 4 chunks), one and two heads.
    const int Tw[] = {64, 128, 192, 256};
    for (int i = 0; i < 4; i++) {
        const int W[2] = {i % 2 ? 256 : 64, 16}, N[2] = {i % 2 ? 32 : 8, 8};
        const int heads = i == 3 ? 2 : 1, d = i % 2 ? 128 : 48, r = i == 2;
        MixerCfg c = cfg(d, heads, W, N, r, i == 1);
        char label[128];
        snprintf(label, sizeof label, "bla %s T%d (whole chunks) %d head%s W%d N%d %s d%d", form, Tw[i], heads,
                 heads > 1 ? "s" : "", W[0], N[0], rn[r], d);
        cuda_check_mixer(label, &c, 2 + i % 2, Tw[i], 4000 + i, TOL_FP32, TOL_TF32);
    }
    // Sizes that are not multiples of 4 floats (d_h 6, N 5 and 6, odd visible points), where the batched
    // form's GEMMs take rb_cuda_gemm_batched2's strided fallback; T 100: one whole chunk and a short one.
    {
        const int W[8] = {64, 32, 64, 32, 64, 32, 64, 32}, N[8] = {6, 5, 6, 5, 6, 5, 6, 5};
        MixerCfg c = cfg(48, 8, W, N, 0, 0);
        char label[128];
        snprintf(label, sizeof label, "bla %s T128 8 heads d_h 6 W64,32 N6,5 dense d48", form);
        cuda_check_mixer(label, &c, 2, 128, 4100, TOL_FP32, TOL_TF32);
        c = cfg(48, 1, W, N + 1, 1, 0);
        snprintf(label, sizeof label, "bla %s T100 W64 N5 slots d48", form);
        cuda_check_mixer(label, &c, 3, 100, 4101, TOL_FP32, TOL_TF32);
    }
}

int main(void) {
    cuda_check_init_or_skip();
    bla_cuda_set_form(1);
    grid("quadratic", 1);
    bla_cuda_set_form(2);  // the loop before the batched default: a fatal error in the batched form must not hide it
    grid("chunk-loop", 0);
    bla_cuda_set_form(0);
    grid("chunked", 0);
    return cuda_check_done("bla");
}
