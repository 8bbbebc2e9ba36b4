// test_mixers_step.c — recurrent step form == parallel forward (float) for conv, attention, swa,
// mamba, through mixcheck_step (per-token max relative error). Mamba in float: its training scan runs
// full blocks of 16 channels in rvec16 and the rest scalar; its step form is scalar. Depends on mixcheck.h, the f32 models library.
#include <stdio.h>
#include "mixcheck.h"

// The registry must hand out these very tables.
extern const MixerOps conv_ops, attention_ops, swa_ops;

int main(void) {
    const double tol = 1e-5;
    int fails = 0;
    fails += check_report("registry has conv, attention, swa",
                          mixer_ops(MIX_CONV) == &conv_ops && mixer_ops(MIX_ATTENTION) == &attention_ops &&
                          mixer_ops(MIX_SWA) == &swa_ops ? 0 : 1, 0);
    MixerCfg c;
    mixer_cfg_default(&c, MIX_CONV, 32, 1, 2);
    fails += mixcheck_step("step conv d32", &c, 70, 21, tol);
    mixer_cfg_default(&c, MIX_ATTENTION, 32, 1, 2);
    fails += mixcheck_step("step attention d32 h1", &c, 70, 22, tol);
    mixer_cfg_default(&c, MIX_ATTENTION, 32, 4, 2);
    fails += mixcheck_step("step attention d32 h4", &c, 70, 23, tol);
    mixer_cfg_default(&c, MIX_SWA, 32, 1, 2);
    c.window[0] = 16;
    fails += mixcheck_step("step swa d32 h1 W16", &c, 70, 24, tol);
    mixer_cfg_default(&c, MIX_SWA, 32, 2, 2);
    c.window[0] = 3;
    c.window[1] = 40;
    fails += mixcheck_step("step swa d32 h2 W3,40", &c, 70, 25, tol);
    // d 40 (d_inner 80: five full blocks of 16 channels), d 36 (72: four and a partial block of 8)
    mixer_cfg_default(&c, MIX_MAMBA, 40, 1, 2);
    c.state_dim = 16;
    fails += mixcheck_step("step mamba d40 N16 (full channel blocks)", &c, 40, 26, tol);
    mixer_cfg_default(&c, MIX_MAMBA, 36, 1, 2);
    c.state_dim = 24;
    fails += mixcheck_step("step mamba d36 N24 (4 full blocks + 8 channels)", &c, 40, 27, tol);
    printf("%s: %d step check(s) failed\n", fails ? "FAIL" : "PASS", fails);
    return fails ? 1 : 0;
}
