// test_bla_f32.c — BLA in float (the training precision): recurrent step == parallel form (max relative
// error per token <= 1e-5), and BLA(N = W, dense) == SWA(W) to float rounding. Depends on mixcheck.h.
#include "bla_common.h"

int main(void) {
    int fails = 0;
    fails += check_bla_steps(1e-5);
    fails += check_bla_equals_swa("W1 H1 T10 f32", 8, 1, (int[]){1}, 2, 10, 1, 1e-5);
    fails += check_bla_equals_swa("W8 H1 T40 f32", 16, 1, (int[]){8}, 2, 40, 2, 1e-5);
    fails += check_bla_equals_swa("W32 H1 T64 f32", 32, 1, (int[]){32}, 2, 64, 3, 1e-5);
    fails += check_bla_equals_swa("W4,16 H2 T48 f32", 16, 2, (int[]){4, 16}, 3, 48, 4, 1e-5);
    printf("%s: %d failure(s)\n", fails ? "FAIL" : "OK", fails);
    return fails ? 1 : 0;
}
