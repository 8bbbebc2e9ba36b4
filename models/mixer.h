// mixer.h — the one interface every sequence mixer implements (conv, attention, swa, bla, gsa, la, mamba).
// Depends on real.h and tasks/rng.h. Adding a mixer = its file in mixers/, one line in mixer.c, its tests.
#pragma once
#include <stddef.h>
#include "../tasks/rng.h"
#include "real.h"

#define RB_MAX_HEADS 16
#define RB_MAX_TENSORS 16
#define RB_MAX_LAYERS 16

typedef enum {
    MIX_CONV, MIX_ATTENTION, MIX_SWA, MIX_BLA, MIX_GSA, MIX_LA, MIX_MAMBA, MIX_COUNT
} MixerKind;

enum { BLA_READOUT_DENSE = 0, BLA_READOUT_SLOTS = 1 };
enum { BLA_TRANSITION_PROJECT = 0, BLA_TRANSITION_DECAY = 1 };
enum { LA_TAYLOR = 0, LA_ELU = 1 };

// Everything that defines one layer's mixer. Unused fields are ignored by the mixer.
typedef struct {
    MixerKind kind;
    int d;                       // model width D
    int heads;                   // H (d % heads == 0), d_h = d / heads
    int n_layers;                // layers in the model (output projections scale 1/sqrt(2 n_layers))
    int window[RB_MAX_HEADS];    // swa, bla: W per head (--window, one value or one per head)
    int freqs[RB_MAX_HEADS];     // bla: N per head (--freqs)
    int bla_readout;             // BLA_READOUT_*
    int bla_transition;          // BLA_TRANSITION_*
    int slots;                   // gsa: m
    int feature_map;             // la: LA_TAYLOR | LA_ELU
    int feature_dim;             // la taylor: f
    int state_dim;               // mamba: N (d_state)
    int expand;                  // mamba: d_inner = expand * d
} MixerCfg;

enum { INIT_NORMAL, INIT_OUT, INIT_ZERO, INIT_ONE, INIT_CUSTOM };

// One parameter tensor of a mixer. INIT_NORMAL: N(0, 0.02); INIT_OUT: N(0, 0.02/sqrt(2 n_layers));
// INIT_CUSTOM: filled by ops->init_custom. decay: 1 if AdamW weight decay applies.
typedef struct {
    const char *name;
    size_t numel;
    int init;
    int decay;
} ParamSpec;

typedef struct MixerOps MixerOps;

// A mixer instance (one per layer): its config, and ctx = workspace for Bmax x Tmax plus any
// precomputed operators (e.g. BLA impulse responses). Forward saves in ctx what backward needs.
typedef struct {
    const MixerOps *ops;
    MixerCfg cfg;
    int Bmax, Tmax;
    void *ctx;
} Mixer;

struct MixerOps {
    const char *name;            // "bla" — the --layers spelling
    // 0 if valid; else -1 and one line in err naming the flag, its value and the allowed range.
    int (*validate)(const MixerCfg *c, char *err, size_t errn);
    // Fills specs (at most RB_MAX_TENSORS) in the fixed slab order; returns the count.
    int (*param_specs)(const MixerCfg *c, ParamSpec *specs);
    // Optional: fills the INIT_CUSTOM tensors (p[i] points at tensor i). NULL if none.
    void (*init_custom)(const MixerCfg *c, real *const *p, Rng *rng);
    // Allocates ctx (workspace for B <= Bmax, T <= Tmax; precomputed operators). NULL on OOM.
    void *(*create)(const MixerCfg *c, int Bmax, int Tmax);
    void (*destroy)(void *ctx);
    // out [B,T,D] = mixer(inp [B,T,D]); p[i] = tensor i. Saves activations in ctx.
    void (*forward)(Mixer *m, real *const *p, real *out, const real *inp, int B, int T);
    // dinp [B,T,D] is overwritten; dp[i] += gradient of tensor i. Uses the activations of the last
    // forward (same inp, B, T).
    void (*backward)(Mixer *m, real *const *p, real *const *dp, real *dinp, const real *dout,
                     const real *inp, int B, int T);
    // Floats the recurrent step carries for one sequence (Tmax bounds growing caches).
    size_t (*step_state_size)(const Mixer *m);
    // Recurrent form, one sequence, one token: out [D] from x [D] at position t (0-based), state
    // zeroed by the caller before t = 0. Must equal forward() at position t.
    void (*step)(Mixer *m, real *const *p, real *state, real *out, const real *x, int t);
    // The recurrent state size the literature counts (models.md table), in floats, for length T.
    double (*state_floats)(const MixerCfg *c, int T);
    const char *state_formula;   // how state_floats counts, e.g. "2*W*d"
};

// The registry (mixer.c). NULL if the name is unknown.
const MixerOps *mixer_ops(MixerKind k);
const MixerOps *mixer_find(const char *name, MixerKind *k);
// Defaults for every field (window 64, freqs 8, slots 64, feature_dim 16, state_dim 16, expand 2).
void mixer_cfg_default(MixerCfg *c, MixerKind k, int d, int heads, int n_layers);

int mixer_create(Mixer *m, const MixerCfg *c, int Bmax, int Tmax);
void mixer_destroy(Mixer *m);
