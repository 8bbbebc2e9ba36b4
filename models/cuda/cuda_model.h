// cuda_model.h — the device model behind models/model.h (models/cuda/model.cu mirrors model.c):
// what model.c calls when ModelCfg.backend is MODEL_CUDA. C interface. Depends on model.h, optim.h.
// Host arrays in, host results out; everything in between stays on the device.
#pragma once
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif
#include "../model.h"
#include "../optim.h"
typedef struct CudaModel CudaModel;

// Device slabs (params, grads, AdamW m and v) in the tensor order of m, activations for Bmax x Tmax,
// device mixers. NULL with one line in err (no device, out of device memory, a mixer without a
// device form).
CudaModel *cuda_model_create(const Model *m, int Bmax, int Tmax, char *err, size_t errn);
void cuda_model_free(CudaModel *d);
// params [P] (host, from model_init) -> device; zeroes grads and moments.
void cuda_model_upload(CudaModel *d, const float *params);
// device params and grads -> host slabs (either may be NULL).
void cuda_model_download(CudaModel *d, float *params, float *grads);
// Checkpoints: AdamW moments device -> host (either may be NULL); params and moments host -> device,
// grads zeroed (a training run resumed where it stopped).
void cuda_model_download_moments(CudaModel *d, float *m, float *v);
void cuda_model_upload_state(CudaModel *d, const float *params, const float *m, const float *v);

// As model_forward / model_backward / model_zero_grad (host inputs are uploaded). logits_host, if not
// NULL, receives the [npos, V] logits (tests only: a large copy).
double cuda_model_forward(CudaModel *d, const int32_t *inputs, int B, int T, const int32_t *pos,
                          const int32_t *tgt, int npos, float *logits_host);
void cuda_model_backward(CudaModel *d);
void cuda_model_zero_grad(CudaModel *d);

// One whole training step (zero grads, forward, backward, grad-norm clip, AdamW with cfg at lr;
// step counter t is 1-based for the bias correction), replayed as one CUDA graph per batch shape.
// Returns the loss; *gnorm gets the norm before clipping.
double cuda_model_train_step(CudaModel *d, const AdamWCfg *cfg, long t, const int32_t *inputs, int B, int T,
                             const int32_t *pos, const int32_t *tgt, int npos, double lr, double *gnorm);
// Forward only; on the device: pred[i] = argmax logits at pos[i]; the summed cross-entropy over
// rows with tgt >= 0 (*loss_sum); where allowed (per-position letter masks [npos]) is not NULL, the
// count of argmax in mask (*hit) and the summed TVD to uniform-over-mask (*tvd_sum).
void cuda_model_eval(CudaModel *d, const int32_t *inputs, int B, int T, const int32_t *pos, const int32_t *tgt,
                     int npos, const uint32_t *allowed, int32_t *pred, double *loss_sum, double *hit,
                     double *tvd_sum);
#ifdef __cplusplus
}
#endif
