// test_mixers_grad.c — finite-difference gradient checks (double) of conv, attention and swa through
// mixcheck_grad: every input and parameter element. Depends on mixcheck.h, the f64 models library.
#include <stdio.h>
#include "mixcheck.h"

// The registry must hand out these very tables.
extern const MixerOps conv_ops, attention_ops, swa_ops;

int main(void) {
    const double tol = 1e-6;
    int fails = 0;
    fails += check_report("registry has conv, attention, swa",
                          mixer_ops(MIX_CONV) == &conv_ops && mixer_ops(MIX_ATTENTION) == &attention_ops &&
                          mixer_ops(MIX_SWA) == &swa_ops ? 0 : 1, 0);
    MixerCfg c;
    // T = 40 spans two 32-row attention blocks, so block boundaries and windows crossing them are covered.
    mixer_cfg_default(&c, MIX_CONV, 8, 1, 2);
    fails += mixcheck_grad("conv d8", &c, 2, 40, 11, tol, 0);
    mixer_cfg_default(&c, MIX_ATTENTION, 8, 1, 2);
    fails += mixcheck_grad("attention d8 h1", &c, 2, 40, 12, tol, 0);
    mixer_cfg_default(&c, MIX_ATTENTION, 8, 2, 2);
    fails += mixcheck_grad("attention d8 h2", &c, 2, 40, 13, tol, 0);
    mixer_cfg_default(&c, MIX_SWA, 8, 1, 2);
    c.window[0] = 5;
    fails += mixcheck_grad("swa d8 h1 W5", &c, 2, 40, 14, tol, 0);
    mixer_cfg_default(&c, MIX_SWA, 8, 2, 2);
    c.window[0] = 1;
    c.window[1] = 35;
    fails += mixcheck_grad("swa d8 h2 W1,35", &c, 2, 40, 15, tol, 0);
    printf("%s: %d mixer check(s) failed\n", fails ? "FAIL" : "PASS", fails);
    return fails ? 1 : 0;
}
