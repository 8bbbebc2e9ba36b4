// model.cu — the device model (cuda_model.h), mirroring models/model.c. PLACEHOLDER while the
// device shell is written: creation fails with a clear message, so --backend cuda exits 1 cleanly.
#include "cuda_model.h"
#include "common.cuh"

extern "C" CudaModel *cuda_model_create(const Model *m, int Bmax, int Tmax, char *err, size_t errn) {
    snprintf(err, errn, "--backend cuda: the device model is not built yet in this revision");
    return NULL;
}
extern "C" void cuda_model_free(CudaModel *d) {}
static void not_built(void) { fprintf(stderr, "recallbench: the CUDA model is not built yet\n"); exit(1); }
extern "C" void cuda_model_upload(CudaModel *d, const float *params) { not_built(); }
extern "C" void cuda_model_download(CudaModel *d, float *params, float *grads) { not_built(); }
extern "C" double cuda_model_forward(CudaModel *d, const int32_t *inputs, int B, int T, const int32_t *pos,
                                     const int32_t *tgt, int npos, float *logits_host) { not_built(); return 0; }
extern "C" void cuda_model_backward(CudaModel *d) { not_built(); }
extern "C" void cuda_model_zero_grad(CudaModel *d) { not_built(); }
extern "C" double cuda_model_train_step(CudaModel *d, const AdamWCfg *cfg, long t, const int32_t *inputs, int B, int T,
                                        const int32_t *pos, const int32_t *tgt, int npos, double lr, double *gnorm) {
    not_built(); return 0;
}
extern "C" void cuda_model_eval(CudaModel *d, const int32_t *inputs, int B, int T, const int32_t *pos,
                                const int32_t *tgt, int npos, const uint32_t *allowed, int32_t *pred,
                                double *loss_sum, double *hit, double *tvd_sum) { not_built(); }
