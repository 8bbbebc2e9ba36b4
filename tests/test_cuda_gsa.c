// test_cuda_gsa.c — the device GSA (models/cuda/gsa.cu) against the CPU form (models/mixers/gsa.c):
// forward, dinp, every parameter gradient, step == forward, over slots/heads/d/T. Depends on cuda_check.h.
#include <stdio.h>
#include "cuda_check.h"

static MixerCfg cfg(int d, int heads, int slots) {
    MixerCfg c;
    mixer_cfg_default(&c, MIX_GSA, d, heads, 2);
    c.slots = slots;
    return c;
}

int main(void) {
    cuda_check_init_or_skip();
    // Odd sizes: T = 37 and 130 are not multiples of any tile, d = 48 (d_h 48, 24, 16, 12).
    static const struct { int d, heads, slots, B, T; } cs[] = {
        {48, 1, 4, 2, 37},   {48, 3, 16, 3, 130}, {48, 4, 64, 2, 1},   {48, 2, 4, 2, 130},
        {64, 4, 16, 2, 1},   {64, 2, 64, 2, 130}, {64, 1, 16, 3, 37},
        {128, 1, 64, 2, 37}, {128, 4, 64, 2, 130}, {128, 2, 4, 2, 37},
    };
    for (unsigned i = 0; i < sizeof cs / sizeof *cs; i++) {
        MixerCfg c = cfg(cs[i].d, cs[i].heads, cs[i].slots);
        char label[96];
        snprintf(label, sizeof label, "gsa d%d h%d m%d", cs[i].d, cs[i].heads, cs[i].slots);
        cuda_check_mixer(label, &c, cs[i].B, cs[i].T, 1100 + i, 1e-4, 2e-2);
    }
    return cuda_check_done("gsa");
}
