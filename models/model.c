// model.c — the model shell (models.md "The shell"): embedding (+ positions), pre-norm residual
// blocks x += mixer(norm(x)) [x += mlp(norm(x))], final norm and tied head at the scored positions
// only, mean cross-entropy. Depends on layers.h, mixer.h, model.h.
//
// Slab: one allocation for parameters, one for gradients, fixed tensor order: wte, [wpe], then per
// layer l: layer{l}.norm1.{w,b}, layer{l}.{mixer}.{spec names...}, [layer{l}.norm2.{w,b},
// layer{l}.mlp.{fc1,fc2}.{w,b}], then norm_f.{w,b} (".b" only with LayerNorm). Layers are 0-based.
// Each layer's MixerCfg gets d = d_model and n_layers from the shell (they are the shell's to set).
// Weight decay flags: 1 for matrices and embeddings, 0 for biases and norm parameters; mixers
// decide for their own tensors (ParamSpec.decay, e.g. mamba's A_log and D: 0). zoology hands every
// parameter to PyTorch AdamW (weight_decay 0.1), i.e. decays everything: AdamWCfg.decay_all = 1
// reproduces that exactly; the flags are the usual GPT practice and the default.
#include "model.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "layers.h"
#if defined(RB_HAVE_CUDA) && !defined(RB_DOUBLE)
#include "cuda/cuda.h"
#include "cuda/cuda_model.h"
#define DEV(m) ((CudaModel *)(m)->dev)
#else
#define DEV(m) ((void)(m), (void *)0)
#endif

enum { SUB_MIXER = 0, SUB_MLP = 1 };

typedef struct {
    int kind, layer;     // SUB_MIXER | SUB_MLP, owning layer
    int tn_w, tn_b;      // norm tensors (tn_b = -1 for RMSNorm)
    int t0, nt;          // first tensor and count: mixer specs, or fc1.w fc1.b fc2.w fc2.b
    real *mean, *rstd;   // [Bmax*Tmax] norm statistics
    real *h, *a;         // MLP: [Bmax*Tmax, 4D] pre-activation, GELU output
} Sub;

struct Model {
    ModelCfg cfg;
    int Bmax, Tmax, NPmax, V, D, nsub;
    size_t P;
    real *params, *grads;
    int ntensors;
    TensorInfo *tensors;
    int *tinit;          // init kind per tensor (INIT_*)
    int *tsub;           // owning sub-layer of a mixer tensor (-1 otherwise), for init_custom
    int t_wte, t_wpe, t_nfw, t_nfb;
    Mixer mix[RB_MAX_LAYERS];
    Sub sub[2 * RB_MAX_LAYERS];
    // activations
    real **resid;        // nsub+1 x [Bmax*Tmax, D]: resid[j] is sub-layer j's input (resid[nsub], the
                         // stream after the last one, is written only if that one is a zeroed mixer:
                         // the head adds the last output at the scored rows itself)
    real **nrm;          // nsub x [Bmax*Tmax, D]: norm outputs (the sub-layer function's input)
    real *fout;          // [Bmax*Tmax, D] sub-layer output (forward) / d(norm output) (backward)
    real *dres;          // [Bmax*Tmax, D] gradient of the residual stream
    real *mlp_scratch;   // [Bmax*Tmax, 4D] when mlp
    real *xg, *hf, *dhf, *dxg, *fmean, *frstd;  // head: [NPmax, D] x4, [NPmax] x2
    real *logits, *probs, *losses;               // [NPmax, V] x2, [NPmax]
    int32_t *tok, *pos, *tgt;                    // last forward's inputs [B*T], [npos] x2
    int B, T, npos;
    size_t head_cap;     // rows logits/probs hold
    void *dev;           // MODEL_CUDA: the device model (cuda/cuda_model.h); NULL on the CPU
};

// Grows logits/probs to npos rows (only when a batch scores more positions than any before).
static int head_reserve(Model *m, int npos) {
    if ((size_t)npos <= m->head_cap) return 0;
    size_t cap = (size_t)npos, V = (size_t)m->V;
    free(m->logits);  // rewritten by every forward: nothing to keep; aligned (rb_calloc, layers.h)
    free(m->probs);
    m->logits = rb_calloc(cap * V, sizeof(real));
    m->probs = rb_calloc(cap * V, sizeof(real));
    m->head_cap = 0;
    if (!m->logits || !m->probs) return -1;
    m->head_cap = cap;
    return 0;
}

static void *xcalloc(size_t n, size_t sz, int *fail) {
    void *p = rb_calloc(n, sz);  // 64-byte aligned (layers.h)
    if (!p) *fail = 1;
    return p;
}

static int add_tensor(Model *m, int cap, const char *name, size_t numel, int init, int decay, int sub) {
    if (m->ntensors >= cap) return -1;
    int i = m->ntensors++;
    TensorInfo *t = &m->tensors[i];
    size_t len = strlen(name);
    if (len >= sizeof t->name) len = sizeof t->name - 1;  // names are short; truncate if not
    memcpy(t->name, name, len);
    t->name[len] = 0;
    t->offset = m->P;
    t->numel = numel;
    t->decay = decay;
    m->tinit[i] = init;
    m->tsub[i] = sub;
    m->P += numel;
    return i;
}

static real *tp(const Model *m, int i) { return i < 0 ? NULL : m->params + m->tensors[i].offset; }
static real *tg(const Model *m, int i) { return i < 0 ? NULL : m->grads + m->tensors[i].offset; }

#define FAIL(...) do { snprintf(err, errn, __VA_ARGS__); model_free(m); return NULL; } while (0)

Model *model_create(const ModelCfg *cfg, int Bmax, int Tmax, char *err, size_t errn) {
    Model *m = calloc(1, sizeof *m);
    if (!m) { snprintf(err, errn, "out of memory"); return NULL; }
    m->cfg = *cfg;
    ModelCfg *c = &m->cfg;
    if (c->vocab < 2) FAIL("--vocab %d out of range: must be >= 2", c->vocab);
    if (c->d_model < 1) FAIL("--d-model %d out of range: must be >= 1", c->d_model);
    if (c->n_layers < 1 || c->n_layers > RB_MAX_LAYERS)
        FAIL("--layers: %d layers out of range: must be 1..%d", c->n_layers, RB_MAX_LAYERS);
    if (c->norm != NORM_LAYER && c->norm != NORM_RMS) FAIL("--norm %d out of range: must be layer or rms", c->norm);
    if (Bmax < 1) FAIL("--batch %d out of range: must be >= 1", Bmax);
    if (Tmax < 1) FAIL("--seq-len %d out of range: must be >= 1", Tmax);
    if (c->pos_emb && c->max_len < 1) c->max_len = Tmax;
    if (c->pos_emb && Tmax > c->max_len)
        FAIL("--seq-len %d out of range: must be <= %d (the positional table)", Tmax, c->max_len);
    for (int l = 0; l < c->n_layers; l++) {
        MixerCfg *mc = &c->layer[l];
        mc->d = c->d_model;
        mc->n_layers = c->n_layers;
        const MixerOps *ops = mixer_ops(mc->kind);
        if ((unsigned)mc->kind >= MIX_COUNT || !ops)
            FAIL("--layers: mixer %d of layer %d is not available in this build", (int)mc->kind, l);
        if (mc->heads < 1 || mc->heads > RB_MAX_HEADS)
            FAIL("--heads %d out of range: must be in [1, %d]", mc->heads, RB_MAX_HEADS);
        if (c->d_model % mc->heads)
            FAIL("--heads %d out of range: must divide --d-model %d", mc->heads, c->d_model);
        if (ops->validate && ops->validate(mc, err, errn)) { model_free(m); return NULL; }
    }
    rb_blas_single_thread();
    m->Bmax = Bmax; m->Tmax = Tmax; m->NPmax = Bmax * Tmax; m->V = c->vocab; m->D = c->d_model;
    const size_t D = (size_t)m->D, V = (size_t)m->V, BT = (size_t)Bmax * Tmax, Hd = 4 * D;

    // tensor table
    int cap = 4 + c->n_layers * (RB_MAX_TENSORS + 8);
    int fail = 0;
    m->tensors = xcalloc(cap, sizeof(TensorInfo), &fail);
    m->tinit = xcalloc(cap, sizeof(int), &fail);
    m->tsub = xcalloc(cap, sizeof(int), &fail);
    if (fail) FAIL("out of memory");
    int ln = c->norm == NORM_LAYER;
    char nm[96];
    m->t_wte = add_tensor(m, cap, "wte", V * D, INIT_NORMAL, 1, -1);
    m->t_wpe = c->pos_emb ? add_tensor(m, cap, "wpe", (size_t)c->max_len * D, INIT_NORMAL, 1, -1) : -1;
    for (int l = 0; l < c->n_layers; l++) {
        const MixerOps *ops = mixer_ops(c->layer[l].kind);
        for (int s = 0; s < 1 + (c->mlp != 0); s++) {
            Sub *sb = &m->sub[m->nsub];
            sb->kind = s;
            sb->layer = l;
            snprintf(nm, sizeof nm, "layer%d.norm%d.w", l, s + 1);
            sb->tn_w = add_tensor(m, cap, nm, D, INIT_ONE, 0, -1);
            snprintf(nm, sizeof nm, "layer%d.norm%d.b", l, s + 1);
            sb->tn_b = ln ? add_tensor(m, cap, nm, D, INIT_ZERO, 0, -1) : -1;
            sb->t0 = m->ntensors;
            if (s == SUB_MIXER) {
                ParamSpec sp[RB_MAX_TENSORS];
                int n = ops->param_specs(&c->layer[l], sp);
                for (int i = 0; i < n; i++) {
                    snprintf(nm, sizeof nm, "layer%d.%s.%s", l, ops->name, sp[i].name);
                    add_tensor(m, cap, nm, sp[i].numel, sp[i].init, sp[i].decay, m->nsub);
                }
                sb->nt = n;
            } else {
                snprintf(nm, sizeof nm, "layer%d.mlp.fc1.w", l);
                add_tensor(m, cap, nm, Hd * D, INIT_NORMAL, 1, -1);
                snprintf(nm, sizeof nm, "layer%d.mlp.fc1.b", l);
                add_tensor(m, cap, nm, Hd, INIT_ZERO, 0, -1);
                snprintf(nm, sizeof nm, "layer%d.mlp.fc2.w", l);
                add_tensor(m, cap, nm, D * Hd, INIT_OUT, 1, -1);
                snprintf(nm, sizeof nm, "layer%d.mlp.fc2.b", l);
                add_tensor(m, cap, nm, D, INIT_ZERO, 0, -1);
                sb->nt = 4;
            }
            m->nsub++;
        }
    }
    m->t_nfw = add_tensor(m, cap, "norm_f.w", D, INIT_ONE, 0, -1);
    m->t_nfb = ln ? add_tensor(m, cap, "norm_f.b", D, INIT_ZERO, 0, -1) : -1;

    m->params = xcalloc(m->P, sizeof(real), &fail);
    m->grads = xcalloc(m->P, sizeof(real), &fail);
    if (fail) FAIL("out of memory (%zu parameters)", m->P);

    if (c->backend == MODEL_CUDA) {  // the device holds mixers and activations
#if defined(RB_HAVE_CUDA) && !defined(RB_DOUBLE)
        if (!(m->dev = cuda_model_create(m, Bmax, Tmax, err, errn))) { model_free(m); return NULL; }
        return m;
#else
        FAIL("--backend cuda: this build has no CUDA backend (rebuild where nvcc and cuBLAS exist)");
#endif
    }
    // GEMM inputs: fp32, or bf16 on AMX or AVX512-BF16 (tf32 has no CPU form: fp32)
    if (rb_gemm_set_precision(c->precision))
        FAIL("--precision bf16 on the cpu needs Intel AMX-BF16 (Sapphire Rapids or later, Linux 5.16+) or "
             "AVX512-BF16 (AMD Zen 4 or later, Intel Cooper Lake); this CPU or kernel has neither (use fp32)");
    // mixers and activations
    for (int l = 0; l < c->n_layers; l++)
        if (mixer_create(&m->mix[l], &c->layer[l], Bmax, Tmax))
            FAIL("out of memory creating the %s mixer of layer %d", mixer_ops(c->layer[l].kind)->name, l);
    m->resid = xcalloc(m->nsub + 1, sizeof(real *), &fail);
    m->nrm = xcalloc(m->nsub, sizeof(real *), &fail);
    if (fail) FAIL("out of memory");
    for (int j = 0; j <= m->nsub; j++) m->resid[j] = xcalloc(BT * D, sizeof(real), &fail);
    for (int j = 0; j < m->nsub; j++) {
        Sub *sb = &m->sub[j];
        m->nrm[j] = xcalloc(BT * D, sizeof(real), &fail);
        sb->mean = xcalloc(BT, sizeof(real), &fail);
        sb->rstd = xcalloc(BT, sizeof(real), &fail);
        if (sb->kind == SUB_MLP) {
            sb->h = xcalloc(BT * Hd, sizeof(real), &fail);
            sb->a = xcalloc(BT * Hd, sizeof(real), &fail);
        }
    }
    m->fout = xcalloc(BT * D, sizeof(real), &fail);
    m->dres = xcalloc(BT * D, sizeof(real), &fail);
    if (c->mlp) m->mlp_scratch = xcalloc(BT * Hd, sizeof(real), &fail);
    size_t NP = (size_t)m->NPmax;
    m->xg = xcalloc(NP * D, sizeof(real), &fail);
    m->hf = xcalloc(NP * D, sizeof(real), &fail);
    m->dhf = xcalloc(NP * D, sizeof(real), &fail);
    m->dxg = xcalloc(NP * D, sizeof(real), &fail);
    m->fmean = xcalloc(NP, sizeof(real), &fail);
    m->frstd = xcalloc(NP, sizeof(real), &fail);
    // logits/probs [npos, V] are sized on first use (head_reserve): Bmax*Tmax*V floats up front
    // would be gigabytes for V = 8192 while MQAR scores only K positions per sequence.
    m->losses = xcalloc(NP, sizeof(real), &fail);
    m->tok = xcalloc(BT, sizeof(int32_t), &fail);
    m->pos = xcalloc(NP, sizeof(int32_t), &fail);
    m->tgt = xcalloc(NP, sizeof(int32_t), &fail);
    if (fail) FAIL("out of memory (activations for batch %d x %d)", Bmax, Tmax);
    return m;
}

void model_free(Model *m) {
    if (!m) return;
#if defined(RB_HAVE_CUDA) && !defined(RB_DOUBLE)
    if (m->dev) cuda_model_free(DEV(m));
#endif
    for (int l = 0; l < m->cfg.n_layers && l < RB_MAX_LAYERS; l++) mixer_destroy(&m->mix[l]);
    if (m->resid)
        for (int j = 0; j <= m->nsub; j++) free(m->resid[j]);
    if (m->nrm)
        for (int j = 0; j < m->nsub; j++) free(m->nrm[j]);
    for (int j = 0; j < m->nsub; j++) {
        free(m->sub[j].mean); free(m->sub[j].rstd); free(m->sub[j].h); free(m->sub[j].a);
    }
    free(m->resid); free(m->nrm); free(m->fout); free(m->dres); free(m->mlp_scratch);
    free(m->xg); free(m->hf); free(m->dhf); free(m->dxg); free(m->fmean); free(m->frstd);
    free(m->logits); free(m->probs); free(m->losses); free(m->tok); free(m->pos); free(m->tgt);
    free(m->params); free(m->grads); free(m->tensors); free(m->tinit); free(m->tsub);
    free(m);
}

// models.md "Init": N(0, 0.02) weights and embeddings, N(0, 0.02/sqrt(2 n_layers)) output
// projections, 0 biases, 1 norm weights; mixers' INIT_CUSTOM tensors through init_custom, called
// right after that mixer's tensors. One stream (seed, 3), tensors in slab order.
void model_init(Model *m, uint64_t seed) {
    Rng rng;
    rng_seed_stream(&rng, seed, 3);
    const double sd = 0.02, sd_out = 0.02 / sqrt(2.0 * m->cfg.n_layers);
    for (int i = 0; i < m->ntensors; i++) {
        real *p = tp(m, i);
        size_t n = m->tensors[i].numel;
        switch (m->tinit[i]) {
        case INIT_NORMAL: for (size_t j = 0; j < n; j++) p[j] = (real)(sd * rng_normal(&rng)); break;
        case INIT_OUT: for (size_t j = 0; j < n; j++) p[j] = (real)(sd_out * rng_normal(&rng)); break;
        case INIT_ONE: for (size_t j = 0; j < n; j++) p[j] = 1; break;
        default: memset(p, 0, n * sizeof(real)); break;  // INIT_ZERO; INIT_CUSTOM filled below
        }
        int s = m->tsub[i];
        if (s >= 0 && i == m->sub[s].t0 + m->sub[s].nt - 1) {  // last tensor of a mixer
            const Sub *sb = &m->sub[s];
            const MixerOps *ops = mixer_ops(m->cfg.layer[sb->layer].kind);  // CPU mixers absent on MODEL_CUDA
            if (ops->init_custom) {
                real *pp[RB_MAX_TENSORS];
                for (int k = 0; k < sb->nt; k++) pp[k] = tp(m, sb->t0 + k);
                ops->init_custom(&m->cfg.layer[sb->layer], pp, &rng);
            }
        }
    }
    model_zero_grad(m);
#if defined(RB_HAVE_CUDA) && !defined(RB_DOUBLE)
    if (m->dev) cuda_model_upload(DEV(m), m->params);
#endif
}

const ModelCfg *model_cfg(const Model *m) { return &m->cfg; }
size_t model_num_params(const Model *m) { return m->P; }
real *model_params(Model *m) { return m->params; }
real *model_grads(Model *m) { return m->grads; }
int model_num_tensors(const Model *m) { return m->ntensors; }
const TensorInfo *model_tensor(const Model *m, int i) { return i >= 0 && i < m->ntensors ? &m->tensors[i] : NULL; }
const real *model_logits(const Model *m) { return m->logits; }
void model_zero_grad(Model *m) {
    memset(m->grads, 0, m->P * sizeof(real));
#if defined(RB_HAVE_CUDA) && !defined(RB_DOUBLE)
    if (m->dev) cuda_model_zero_grad(DEV(m));
#endif
}

double model_state_floats(const Model *m, int T) {
    double s = 0;
    for (int l = 0; l < m->cfg.n_layers; l++) s += mixer_ops(m->cfg.layer[l].kind)->state_floats(&m->cfg.layer[l], T);
    return s;
}

static void norm_fwd(const Model *m, real *out, real *mean, real *rstd, const real *inp, int tw, int tb, int N) {
    if (m->cfg.norm == NORM_LAYER) layernorm_forward(out, mean, rstd, inp, tp(m, tw), tp(m, tb), N, m->D);
    else rmsnorm_forward(out, rstd, inp, tp(m, tw), N, m->D);
}

// Sub-layer input y = x + f (f: the sub-layer before's output, or NULL: y is already there), then
// out = norm(y). y, x: [N, D].
static void norm_fwd_res(const Model *m, real *out, real *mean, real *rstd, const real *x, const real *f, real *y,
                         int tw, int tb, int N) {
    if (f && m->cfg.norm == NORM_LAYER) {
        residual_layernorm_forward(out, y, mean, rstd, x, f, tp(m, tw), tp(m, tb), N, m->D);
        return;
    }
    if (f) {
        const size_t n = (size_t)N * m->D;
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++) y[i] = x[i] + f[i];
    }
    norm_fwd(m, out, mean, rstd, y, tw, tb, N);
}

static void norm_bwd(const Model *m, real *dinp, const real *dout, const real *inp, const real *mean,
                     const real *rstd, int tw, int tb, int N) {
    if (m->cfg.norm == NORM_LAYER)
        layernorm_backward(dinp, tg(m, tw), tg(m, tb), dout, inp, tp(m, tw), mean, rstd, N, m->D);
    else rmsnorm_backward(dinp, tg(m, tw), dout, inp, tp(m, tw), rstd, N, m->D);
}

double model_forward(Model *m, const int32_t *inputs, int B, int T, const int32_t *pos,
                     const int32_t *tgt, int npos) {
    const int D = m->D, V = m->V, BT = B * T;
    if (B < 1 || B > m->Bmax || T < 1 || T > m->Tmax || npos < 0 || npos > m->NPmax) {
        fprintf(stderr, "model_forward: batch %d x %d (%d positions) exceeds the model's %d x %d\n", B, T,
                npos, m->Bmax, m->Tmax);
        return NAN;
    }
    for (int i = 0; i < BT; i++)
        if (inputs[i] < 0 || inputs[i] >= V) {
            fprintf(stderr, "model_forward: token %d out of range [0, %d)\n", inputs[i], V);
            return NAN;
        }
    for (int i = 0; i < npos; i++)
        if (pos[i] < 0 || pos[i] >= BT || tgt[i] >= V) {
            fprintf(stderr, "model_forward: position %d / target %d out of range\n", pos[i], tgt[i]);
            return NAN;
        }
    if (head_reserve(m, npos)) {
        fprintf(stderr, "model_forward: out of memory for %d x %d logits\n", npos, V);
        return NAN;
    }
    m->B = B; m->T = T; m->npos = npos;
#if defined(RB_HAVE_CUDA) && !defined(RB_DOUBLE)
    if (m->dev) return cuda_model_forward(DEV(m), inputs, B, T, pos, tgt, npos, m->logits);
#endif
    memcpy(m->tok, inputs, (size_t)BT * sizeof(int32_t));
    memcpy(m->pos, pos, (size_t)npos * sizeof(int32_t));
    memcpy(m->tgt, tgt, (size_t)npos * sizeof(int32_t));

    encoder_forward(m->resid[0], inputs, tp(m, m->t_wte), tp(m, m->t_wpe), B, T, D);
    const size_t n = (size_t)BT * D;
    // Sub-layer j's residual add y = x + f is fused into sub-layer j+1's norm (one pass over the
    // stream); after the last one only the scored rows are added, straight into the head's gather.
    const real *f = NULL;  // output of the sub-layer before (NULL: resid[j] is already complete)
    for (int j = 0; j < m->nsub; j++) {
        Sub *sb = &m->sub[j];
        real *x = m->resid[j];
        norm_fwd_res(m, m->nrm[j], sb->mean, sb->rstd, j ? m->resid[j - 1] : x, f, x, sb->tn_w, sb->tn_b, BT);
        f = m->fout;
        if (sb->kind == SUB_MIXER) {
            if (m->cfg.zero_mixer) { memcpy(m->resid[j + 1], x, n * sizeof(real)); f = NULL; continue; }
            real *pp[RB_MAX_TENSORS];
            for (int k = 0; k < sb->nt; k++) pp[k] = tp(m, sb->t0 + k);
            m->mix[sb->layer].ops->forward(&m->mix[sb->layer], pp, m->fout, m->nrm[j], B, T);
        } else {
            mlp_forward(m->fout, sb->h, sb->a, m->nrm[j], tp(m, sb->t0), tp(m, sb->t0 + 1), tp(m, sb->t0 + 2),
                        tp(m, sb->t0 + 3), BT, D, 4 * D);
        }
    }
    // head only at the scored positions: gather (x + f of the last sub-layer), final norm, logits = h E^T
    const real *xl = m->resid[m->nsub - (f != NULL)];
#pragma omp parallel for schedule(static)
    for (int i = 0; i < npos; i++) {
        real *g = m->xg + (size_t)i * D;
        const real *xr = xl + (size_t)pos[i] * D, *fr = f ? f + (size_t)pos[i] * D : NULL;
        if (fr)
            for (int c = 0; c < D; c++) g[c] = xr[c] + fr[c];
        else
            memcpy(g, xr, D * sizeof(real));
    }
    if (npos == 0) return 0;
    norm_fwd(m, m->hf, m->fmean, m->frstd, m->xg, m->t_nfw, m->t_nfb, npos);
    matmul_par(m->logits, m->hf, tp(m, m->t_wte), npos, V, D, 0, 1, 0);
    return crossentropy_forward(m->probs, m->losses, m->logits, tgt, npos, V);
}

void model_backward(Model *m) {
#if defined(RB_HAVE_CUDA) && !defined(RB_DOUBLE)
    if (m->dev) { cuda_model_backward(DEV(m)); return; }
#endif
    const int D = m->D, V = m->V, B = m->B, T = m->T, BT = B * T, np = m->npos;
    const size_t n = (size_t)BT * D;
    memset(m->dres, 0, n * sizeof(real));
    if (np > 0) {
        real *dl = m->probs;  // dlogits overwrite the probabilities in place
        crossentropy_backward(dl, m->probs, m->tgt, np, V);
        matmul_par(m->dhf, dl, tp(m, m->t_wte), np, D, V, 0, 0, 0);     // [np,V] @ [V,D]
        matmul_par(tg(m, m->t_wte), dl, m->hf, V, D, np, 1, 0, 1);      // [V,np] @ [np,D]
        memset(m->dxg, 0, (size_t)np * D * sizeof(real));
        norm_bwd(m, m->dxg, m->dhf, m->xg, m->fmean, m->frstd, m->t_nfw, m->t_nfb, np);
        for (int i = 0; i < np; i++) {  // serial: positions may repeat
            real *d = m->dres + (size_t)m->pos[i] * D;
            const real *g = m->dxg + (size_t)i * D;
            for (int c = 0; c < D; c++) d[c] += g[c];
        }
    }
    for (int j = m->nsub - 1; j >= 0; j--) {
        Sub *sb = &m->sub[j];
        if (sb->kind == SUB_MIXER) {
            if (m->cfg.zero_mixer) continue;  // output multiplied by 0: no gradient flows through it
            real *pp[RB_MAX_TENSORS], *dp[RB_MAX_TENSORS];
            for (int k = 0; k < sb->nt; k++) { pp[k] = tp(m, sb->t0 + k); dp[k] = tg(m, sb->t0 + k); }
            m->mix[sb->layer].ops->backward(&m->mix[sb->layer], pp, dp, m->fout, m->dres, m->nrm[j], B, T);
        } else {
            mlp_backward(m->fout, tg(m, sb->t0), tg(m, sb->t0 + 1), tg(m, sb->t0 + 2), tg(m, sb->t0 + 3),
                         m->mlp_scratch, m->dres, m->nrm[j], sb->h, sb->a, tp(m, sb->t0), tp(m, sb->t0 + 2),
                         BT, D, 4 * D);
        }
        norm_bwd(m, m->dres, m->fout, m->resid[j], sb->mean, sb->rstd, sb->tn_w, sb->tn_b, BT);
    }
    encoder_backward(tg(m, m->t_wte), m->t_wpe >= 0 ? tg(m, m->t_wpe) : NULL, m->dres, m->tok, B, T, D);
}

// ---- backend plumbing (model.h "The slab's structure", model_sync_host) -------------------------
void *model_device(const Model *m) { return m->dev; }
const char *model_device_name(const Model *m) {
#if defined(RB_HAVE_CUDA) && !defined(RB_DOUBLE)
    if (m->dev) return rb_cuda_device_name();
#endif
    return "cpu";
}
void model_sync_host(Model *m) {
#if defined(RB_HAVE_CUDA) && !defined(RB_DOUBLE)
    if (m->dev) cuda_model_download(DEV(m), m->params, m->grads);
#else
    (void)m;
#endif
}
int model_num_subs(const Model *m) { return m->nsub; }
ModelSubInfo model_sub_info(const Model *m, int j) {
    const Sub *s = &m->sub[j];
    return (ModelSubInfo){s->kind, s->layer, s->tn_w, s->tn_b, s->t0, s->nt};
}
void model_head_tensors(const Model *m, int *wte, int *wpe, int *nfw, int *nfb) {
    *wte = m->t_wte; *wpe = m->t_wpe; *nfw = m->t_nfw; *nfb = m->t_nfb;
}
