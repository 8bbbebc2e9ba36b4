// mixer.c — the mixer registry and defaults. Depends on mixer.h.
// Every mixer is referenced here, so linking the registry links them all.
#include "mixer.h"
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

GemmStat rb_gemm_stat[RB_GEMM_STAT_THREADS];
int rb_gemm_profile;

double rb_gemm_clock(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

// Per-thread shape tables (bench --gemm-shapes): each thread writes its own row, merged after the steps.
#define SHAPE_THREADS 64
static GemmShape shape_tab[SHAPE_THREADS][RB_GEMM_SHAPES];
static int shape_n[SHAPE_THREADS];

// Index of (M, N, K, ta, tb) among the n shapes of t, or n if absent.
static int shape_find(const GemmShape *t, int n, int M, int N, int K, int ta, int tb) {
    int i = 0;
    while (i < n && !(t[i].M == M && t[i].N == N && t[i].K == K && t[i].ta == ta && t[i].tb == tb)) i++;
    return i;
}

// Inside a parallel region a GEMM occupies its own thread; outside, OpenBLAS may spread it over its
// own threads, so its wall time counts once per OpenBLAS thread.
void rb_gemm_account(double t0, int M, int N, int K, int ta, int tb) {
    double dt = rb_gemm_clock() - t0;
    int tid = 0, weight = 1;
#ifdef _OPENMP
    if (omp_in_parallel()) tid = omp_get_thread_num();
    else weight = openblas_get_num_threads();
#endif
    if (tid >= RB_GEMM_STAT_THREADS) tid = RB_GEMM_STAT_THREADS - 1;
    rb_gemm_stat[tid].seconds += dt * weight;
    rb_gemm_stat[tid].flops += 2.0 * M * N * K;
    if (rb_gemm_profile < 2 || tid >= SHAPE_THREADS) return;
    GemmShape *t = shape_tab[tid];
    int i = shape_find(t, shape_n[tid], M, N, K, ta, tb);
    if (i == shape_n[tid]) {
        if (i == RB_GEMM_SHAPES) return;
        t[i] = (GemmShape){M, N, K, ta, tb, 0, 0};
        shape_n[tid]++;
    }
    t[i].calls++;
    t[i].seconds += dt * weight;
}

void rb_gemm_shapes_reset(void) { memset(shape_n, 0, sizeof shape_n); }

int rb_gemm_shapes_merge(GemmShape *out, int n) {
    int m = 0;
    for (int th = 0; th < SHAPE_THREADS; th++)
        for (int i = 0; i < shape_n[th]; i++) {
            const GemmShape *s = &shape_tab[th][i];
            int j = shape_find(out, m, s->M, s->N, s->K, s->ta, s->tb);
            if (j == m) {
                if (m == n) continue;
                out[m++] = (GemmShape){s->M, s->N, s->K, s->ta, s->tb, 0, 0};
            }
            out[j].calls += s->calls;
            out[j].seconds += s->seconds;
        }
    return m;
}

extern const MixerOps conv_ops;
extern const MixerOps attention_ops;
extern const MixerOps swa_ops;
extern const MixerOps bla_ops;
extern const MixerOps gsa_ops;
extern const MixerOps la_ops;
extern const MixerOps mamba_ops;

const MixerOps *mixer_ops(MixerKind k) {
    switch (k) {
    case MIX_CONV: return &conv_ops;
    case MIX_ATTENTION: return &attention_ops;
    case MIX_SWA: return &swa_ops;
    case MIX_BLA: return &bla_ops;
    case MIX_GSA: return &gsa_ops;
    case MIX_LA: return &la_ops;
    case MIX_MAMBA: return &mamba_ops;
    default: return NULL;
    }
}

static const char *const mixer_names[MIX_COUNT] = {"conv", "attention", "swa", "bla", "gsa", "la", "mamba"};

const MixerOps *mixer_find(const char *name, MixerKind *k) {
    for (int i = 0; i < MIX_COUNT; i++)
        if (strcmp(name, mixer_names[i]) == 0) {
            if (k) *k = (MixerKind)i;
            return mixer_ops((MixerKind)i);
        }
    return NULL;
}

void mixer_cfg_default(MixerCfg *c, MixerKind k, int d, int heads, int n_layers) {
    memset(c, 0, sizeof *c);
    c->kind = k;
    c->d = d;
    c->heads = heads;
    c->n_layers = n_layers;
    for (int h = 0; h < RB_MAX_HEADS; h++) {
        c->window[h] = 64;
        c->freqs[h] = 8;
    }
    c->bla_readout = BLA_READOUT_DENSE;
    c->bla_transition = BLA_TRANSITION_PROJECT;
    c->slots = 64;
    c->feature_map = LA_TAYLOR;
    c->feature_dim = 16;
    c->state_dim = 16;
    c->expand = 2;
}

int mixer_create(Mixer *m, const MixerCfg *c, int Bmax, int Tmax) {
    m->ops = mixer_ops(c->kind);
    m->cfg = *c;
    m->Bmax = Bmax;
    m->Tmax = Tmax;
    m->ctx = NULL;
    if (!m->ops) return -1;
    if (m->ops->create) {
        m->ctx = m->ops->create(c, Bmax, Tmax);
        if (!m->ctx) return -1;
    }
    return 0;
}

void mixer_destroy(Mixer *m) {
    if (m->ops && m->ops->destroy && m->ctx) m->ops->destroy(m->ctx);
    m->ctx = NULL;
}
