// model.h — the model shell of models.md: embedding, pre-norm residual blocks (mixer, optional MLP),
// final norm, tied head at chosen positions, cross-entropy. Depends on mixer.h, real.h.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include "mixer.h"

enum { NORM_LAYER = 0, NORM_RMS = 1 };

typedef struct {
    int vocab;                         // V
    int d_model;                       // D
    int n_layers;
    MixerCfg layer[RB_MAX_LAYERS];     // one per layer (--layers conv,bla)
    int mlp;                           // 1: MLP block (GELU, 4D hidden) after each mixer
    int pos_emb;                       // 1: learned positions (max_len of them)
    int norm;                          // NORM_LAYER | NORM_RMS
    int max_len;                       // longest sequence the model will see (Tmax)
    int zero_mixer;                    // test-only sabotage: mixer outputs multiplied by 0
    int backend;                       // MODEL_CPU | MODEL_CUDA (where the arithmetic runs)
    int precision;                     // GEMM inputs, RB_PREC_* of real.h (cpu: fp32, or bf16 on AMX)
} ModelCfg;

enum { MODEL_CPU = 0, MODEL_CUDA = 1 };

// One parameter tensor in the slab: name ("layer1.bla.wq"), offset, size, weight decay flag.
typedef struct {
    char name[48];
    size_t offset, numel;
    int decay;
} TensorInfo;

typedef struct Model Model;

// Validates cfg (mixers included) and allocates everything for batches of up to Bmax x Tmax and
// up to Bmax*Tmax scored positions. NULL with one line in err on invalid config or OOM.
// (The [npos, V] logit buffers are sized by the largest npos a forward has seen, not up front.)
Model *model_create(const ModelCfg *cfg, int Bmax, int Tmax, char *err, size_t errn);
void model_free(Model *m);
// Initialises parameters from seed (models.md "Init"); same seed, same weights, every backend.
void model_init(Model *m, uint64_t seed);

const ModelCfg *model_cfg(const Model *m);
size_t model_num_params(const Model *m);
real *model_params(Model *m);          // [P] slab
real *model_grads(Model *m);           // [P] same layout
int model_num_tensors(const Model *m);
const TensorInfo *model_tensor(const Model *m, int i);

// Forward over inputs [B,T]; logits are computed only at the npos positions pos[i] = b*T + t, into
// model_logits() [npos, V]. Returns the mean cross-entropy over positions with tgt[i] >= 0
// (0 if none). Saves what backward needs.
double model_forward(Model *m, const int32_t *inputs, int B, int T, const int32_t *pos,
                     const int32_t *tgt, int npos);
const real *model_logits(const Model *m);
// Backward of the last forward's loss; gradients accumulate (+=) into model_grads().
void model_backward(Model *m);
void model_zero_grad(Model *m);
// MODEL_CUDA: device params and grads -> the host slabs (model_params/model_grads are stale until
// then; model_init uploads). No-op on the CPU.
void model_sync_host(Model *m);
// Where the model computes: "cpu" or the GPU's name ("NVIDIA H200").
const char *model_device_name(const Model *m);
// The device model (cuda/cuda_model.h CudaModel) or NULL on the CPU.
void *model_device(const Model *m);
// The slab's structure, for the device model (models/cuda/model.cu): sub-layer j is a mixer
// (kind 0) or MLP (1) of layer `layer`, its norm tensors tn_w, tn_b (-1: none) and its tensors
// t0 .. t0+nt-1; the head's tensors through model_head_tensors (-1: absent).
typedef struct { int kind, layer, tn_w, tn_b, t0, nt; } ModelSubInfo;
int model_num_subs(const Model *m);
ModelSubInfo model_sub_info(const Model *m, int j);
void model_head_tensors(const Model *m, int *wte, int *wpe, int *nfw, int *nfb);
// Recurrent state of the whole model in floats as the literature counts it (sum over layers).
double model_state_floats(const Model *m, int T);
