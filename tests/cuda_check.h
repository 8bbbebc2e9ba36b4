// cuda_check.h — checks a device mixer (models/cuda/X.cu) against its CPU form (models/mixers/X.c)
// on random inputs: forward, backward (input and every parameter gradient, accumulation included),
// and the device recurrent step against the device forward. Depends on mixcheck.h, models/cuda/cuda.h.
#pragma once
#include <stdint.h>
#include "../models/mixer.h"

// Opens the device; if there is none prints "SKIP ..." and exits 77 (meson's skip status).
void cuda_check_init_or_skip(void);
// One configuration at B x T: CPU reference, then the device in fp32 (tolerance tol_fp32) and in
// the default precision tf32 (tol_tf32); then step == forward on the device (fp32, tol_fp32).
// Errors are max|dev - cpu| / max|cpu| per tensor, printed with PASS/FAIL. Returns failures.
int cuda_check_mixer(const char *label, const MixerCfg *c, int B, int T, uint64_t seed, double tol_fp32,
                     double tol_tf32);
// Summary line "cuda NAME: N checks, F failed" and the exit status (0 if none failed).
int cuda_check_done(const char *name);
