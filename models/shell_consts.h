// shell_consts.h — constants of the model shell that the CPU form (layers.c) and the device form
// (cuda/layers.cu) must share, defined once. Depends on nothing.
#pragma once
#define RB_LN_EPS 1e-5  // LayerNorm / RMSNorm eps (PyTorch's default), models.md "The shell"
