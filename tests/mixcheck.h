// mixcheck.h — shared checks for every mixer: finite-difference gradients (built with -DRB_DOUBLE)
// and recurrent step == parallel forward. Depends on mixer.h. Each check prints
// "PASS|FAIL name  err=... tol=..." and returns 0 on pass, 1 on failure.
#pragma once
#include <stdint.h>
#include "../models/mixer.h"

// Prints one result line; returns 0 if err <= tol (and finite), else 1.
int check_report(const char *name, double err, double tol);
// Fills random parameters for a gradient/equivalence check: normal tensors N(0, 0.3), zero-init
// tensors N(0, 0.1) (never zeros), one-init 1 + N(0, 0.1), custom through ops->init_custom.
// Returns the slab (caller frees) and fills p[] (tensor pointers) and the tensor count.
real *mixcheck_params(const MixerCfg *c, real **p, int *ntensors, uint64_t seed);
// Central finite differences (h = 1e-5) of loss = sum(out * R) against backward, for every input
// element and every parameter element (up to max_per_tensor sampled elements per tensor; 0 = all).
// err per tensor = max|analytic - numeric| / max(max|numeric|, 1e-8). Needs RB_DOUBLE.
int mixcheck_grad(const char *name, const MixerCfg *c, int B, int T, uint64_t seed, double tol,
                  int max_per_tensor);
// Step form over T tokens (B = 2 sequences, each from a zeroed state) against forward(); err =
// max over tokens of max|step - parallel| / max(max|parallel| of that token, 1e-6).
int mixcheck_step(const char *name, const MixerCfg *c, int T, uint64_t seed, double tol);
