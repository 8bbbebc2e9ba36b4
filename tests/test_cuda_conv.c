// test_cuda_conv.c — the BaseConv device form (models/cuda/conv.cu) against models/mixers/conv.c:
// forward, dinp, every parameter gradient, step == forward (tests/cuda_check.h). Depends on cuda_check.h.
#include "cuda_check.h"

int main(void) {
    cuda_check_init_or_skip();
    MixerCfg c;
    // d = 48 (not a multiple of the 128-thread tiles), T odd, B >= 2; and a wider layer, more rows
    // than one 256-row chunk of the weight-gradient sums (B*T = 4 * 300 = 1200)
    mixer_cfg_default(&c, MIX_CONV, 48, 1, 2);
    cuda_check_mixer("conv d48", &c, 3, 37, 1, 1e-4, 2e-2);
    mixer_cfg_default(&c, MIX_CONV, 160, 1, 2);
    cuda_check_mixer("conv d160", &c, 4, 300, 2, 1e-4, 2e-2);
    mixer_cfg_default(&c, MIX_CONV, 33, 1, 1);
    cuda_check_mixer("conv d33 T1", &c, 2, 1, 3, 1e-4, 2e-2);
    return cuda_check_done("conv");
}
