// test_cuda_la.c — the device linear attention (models/cuda/la.cu) against the CPU form
// (models/mixers/la.c): forward, dinp, every parameter gradient, step == forward, Taylor f 8/16 and
// elu, heads 1 and 2, d 48/64/128, T 2/37/130/256 (chunk 64: one partial chunk, three with a partial
// last one, four full) for the chunked training form (the default), then a few configs again with the
// sequential scans (RB_CUDA_LA_SEQ=1, the reference form). Depends on cuda_check.h.
#define _POSIX_C_SOURCE 200809L  // setenv
#include <stdio.h>
#include <stdlib.h>
#include "cuda_check.h"

static MixerCfg cfg(int d, int heads, int kind, int f) {
    MixerCfg c;
    mixer_cfg_default(&c, MIX_LA, d, heads, 2);
    c.feature_map = kind;
    c.feature_dim = f;
    return c;
}

int main(void) {
    cuda_check_init_or_skip();
    // T = 2, not 1: at T = 1 the output is exactly v (o = S^T phq / phq.z with S = phk v^T, z = phk),
    // so the q and k gradients are identically zero and their relative errors compare rounding noise
    // with rounding noise (measured on the device: dwq 0.82, dwk 0.77 "relative" at T = 1 while
    // dinp agreed to 2e-6). T = 2 is the shortest sequence where they are real.
    static const struct { int d, heads, kind, f, B, T; } cs[] = {
        {48, 1, LA_TAYLOR, 8, 2, 37},  {48, 2, LA_TAYLOR, 8, 2, 2},   {64, 1, LA_TAYLOR, 16, 2, 130},
        {64, 2, LA_TAYLOR, 16, 3, 37}, {48, 2, LA_TAYLOR, 16, 2, 130},
        {48, 1, LA_ELU, 0, 2, 130},    {48, 2, LA_ELU, 0, 3, 37},     {64, 2, LA_ELU, 0, 2, 130},
        {64, 1, LA_ELU, 0, 2, 2},      {128, 1, LA_TAYLOR, 16, 2, 256},
    };
    const unsigned nchunk = sizeof cs / sizeof *cs;
    for (unsigned i = 0; i < nchunk + 3; i++) {
        const int seq = i >= nchunk;  // the last three: configs 2, 4, 6 in the sequential form
        if (seq) setenv("RB_CUDA_LA_SEQ", "1", 1);
        const unsigned k = seq ? 2 * (i - nchunk) + 2 : i;
        MixerCfg c = cfg(cs[k].d, cs[k].heads, cs[k].kind, cs[k].kind == LA_TAYLOR ? cs[k].f : 16);
        char label[96];
        const char *form = seq ? "seq" : "chunked";
        if (cs[k].kind == LA_TAYLOR)
            snprintf(label, sizeof label, "la %s taylor d%d h%d f%d", form, cs[k].d, cs[k].heads, cs[k].f);
        else
            snprintf(label, sizeof label, "la %s elu d%d h%d", form, cs[k].d, cs[k].heads);
        // d 128, f 16 (273 features, T 256): the CPU's own fp32 result moves by up to 1.4e-4 (dinp) when
        // only the GEMM's summation order changes (our GEMM vs OpenBLAS, seeds 1209-1212: 3.6e-5, 2.1e-5,
        // 1.2e-6, 1.4e-4; tools/la_rounding_floor.c), more than the 1e-4 used elsewhere; the device
        // measured 9.9e-5 at seed 1209. Tolerance there: 4e-4, ~3x that floor.
        const double tol32 = cs[k].d == 128 ? 4e-4 : 1e-4;
        cuda_check_mixer(label, &c, cs[k].B, cs[k].T, 1200 + k, tol32, 2e-2);
    }
    return cuda_check_done("la");
}
