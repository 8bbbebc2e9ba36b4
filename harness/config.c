// config.c — the flag table: CLI parsing, INI keys, validation, help, canonical JSON, config hash.
// Depends on config.h, tasks (task_validate), models (mixer registry, validate).
#include "config.h"
#include "rb_build.h"
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "util.h"

typedef enum { F_INT, F_U64, F_DOUBLE, F_STR, F_CHOICE, F_BOOL } FlagType;

typedef struct {
    const char *name;          // spelling without dashes
    FlagType type;
    size_t off, size;          // field in RunConfig (size for strings)
    const char *def;           // default as text
    double min, max;           // numeric range (inclusive)
    const char *choices;       // F_CHOICE: "a|b|c" (value = index)
    unsigned group;
    const char *reads;         // when the knob enters the hash: NULL = always; "mqar", "regbench",
                               // or a list of mixers ("swa,bla")
    const char *help;
} Flag;

#define O(f) offsetof(RunConfig, f), sizeof(((RunConfig *)0)->f)
static const Flag flags[] = {
    // task
    {"task", F_CHOICE, O(task), "mqar", 0, 0, "mqar|regbench", G_TASK, NULL, "task generator (tasks.md)"},
    {"vocab", F_INT, O(vocab), "8192", 4, 1 << 20, NULL, G_TASK, "mqar", "MQAR vocabulary size V (> seq-len)"},
    {"seq-len", F_INT, O(seq_len), "64", 4, 1 << 16, NULL, G_TASK, "-", "MQAR sequence length L (even), when no --train-mix/--test-mix"},
    {"kv-pairs", F_INT, O(kv_pairs), "4", 1, 1 << 15, NULL, G_TASK, "-", "MQAR key-value pairs K (4K <= L, K <= V/2-1)"},
    {"train-examples", F_INT, O(train_examples), "100000", 1, 1e8, NULL, G_TASK, "-", "MQAR training examples, when no --train-mix"},
    {"test-examples", F_INT, O(test_examples), "3000", 1, 1e8, NULL, G_TASK, "-", "MQAR test examples, when no --test-mix"},
    {"power-a", F_DOUBLE, O(power_a), "0.01", 1e-9, 1, NULL, G_TASK, "mqar", "MQAR gap distribution exponent a: P(g) ~ a (g+1)^(a-1)"},
    {"random-non-queries", F_BOOL, O(random_non_queries), "1", 0, 1, NULL, G_TASK, "mqar", "MQAR: fill unscored positions with random tokens"},
    {"train-mix", F_STR, O(train_mix), "", 0, 0, NULL, G_TASK, "mqar", "MQAR training mix L:K:count,... (default: seq-len:kv-pairs:train-examples)"},
    {"test-mix", F_STR, O(test_mix), "", 0, 0, NULL, G_TASK, "mqar", "MQAR test configurations L:K:count,... (default: seq-len:kv-pairs:test-examples)"},
    {"train-automata", F_INT, O(train_automata), "2500", 1, 1e6, NULL, G_TASK, "regbench", "RegBench training instances (one PFA each)"},
    {"test-automata", F_INT, O(test_automata), "500", 1, 1e6, NULL, G_TASK, "regbench", "RegBench test instances"},
    // model
    {"layers", F_STR, O(layers), "conv,attention", 0, 0, NULL, G_MODEL, NULL, "comma list of mixers: conv attention swa bla gsa la mamba"},
    {"d-model", F_INT, O(d_model), "64", 1, 8192, NULL, G_MODEL, NULL, "model width D"},
    {"heads", F_INT, O(heads), "1", 1, RB_MAX_HEADS, NULL, G_MODEL, NULL, "heads per mixer (D % heads == 0)"},
    {"mlp", F_BOOL, O(mlp), "0", 0, 1, NULL, G_MODEL, NULL, "add a GELU MLP block (4D hidden) after each mixer"},
    {"pos-emb", F_BOOL, O(pos_emb), "0", 0, 1, NULL, G_MODEL, NULL, "learned absolute position embeddings"},
    {"norm", F_CHOICE, O(norm), "layer", 0, 0, "layer|rms", G_MODEL, NULL, "normalisation"},
    // mixers
    {"window", F_STR, O(window), "64", 0, 0, NULL, G_MIXER, "swa,bla", "swa/bla window W (one value, or one per head: 32,256)"},
    {"freqs", F_STR, O(freqs), "8", 0, 0, NULL, G_MIXER, "bla", "bla kept Fourier coefficients N, 1 <= N <= W (one, or one per head)"},
    {"bla-readout", F_CHOICE, O(bla_readout), "dense", 0, 0, "dense|slots", G_MIXER, "bla", "bla reconstruction points: dense (W) or slots (N)"},
    {"bla-transition", F_CHOICE, O(bla_transition), "project", 0, 0, "project|decay", G_MIXER, "bla", "bla transition: project (spec) or decay (circular, damped)"},
    {"slots", F_INT, O(slots), "64", 1, 4096, NULL, G_MIXER, "gsa", "gsa memory slots m"},
    {"feature-map", F_CHOICE, O(feature_map), "taylor", 0, 0, "taylor|elu", G_MIXER, "la", "la feature map"},
    {"feature-dim", F_INT, O(feature_dim), "16", 1, 64, NULL, G_MIXER, "la", "la taylor feature dimension f"},
    {"state-dim", F_INT, O(state_dim), "16", 1, 1024, NULL, G_MIXER, "mamba", "mamba SSM state size N"},
    {"expand", F_INT, O(expand), "2", 1, 8, NULL, G_MIXER, "mamba", "mamba inner expansion (d_inner = expand * D)"},
    // training
    {"lr", F_DOUBLE, O(lr), "1e-3", 1e-8, 10, NULL, G_TRAIN, NULL, "peak learning rate"},
    {"epochs", F_INT, O(epochs), "32", 1, 100000, NULL, G_TRAIN, NULL, "training epochs"},
    {"batch", F_INT, O(batch), "64", 1, 65536, NULL, G_TRAIN, NULL, "batch size (sequences)"},
    {"weight-decay", F_DOUBLE, O(weight_decay), "0.1", 0, 10, NULL, G_TRAIN, NULL, "AdamW decoupled weight decay"},
    {"decay-all", F_BOOL, O(decay_all), "0", 0, 1, NULL, G_TRAIN, NULL, "apply weight decay to every tensor (biases, norms too)"},
    {"warmup", F_DOUBLE, O(warmup), "0", 0, 0.99, NULL, G_TRAIN, NULL, "linear warmup, as a fraction of all steps"},
    {"min-lr", F_DOUBLE, O(min_lr), "0", 0, 1, NULL, G_TRAIN, NULL, "cosine floor, as a fraction of --lr"},
    {"clip", F_DOUBLE, O(clip), "0", 0, 1e6, NULL, G_TRAIN, NULL, "global gradient-norm clip (0 = off)"},
    {"early-stop", F_DOUBLE, O(early_stop), "0.99", 0, 1.01, NULL, G_TRAIN, NULL, "stop once mean test accuracy exceeds this (>1 = never)"},
    {"seed", F_U64, O(seed), "1", 0, 0, NULL, G_TRAIN, NULL, "seed of data, init and shuffling"},
    {"backend", F_CHOICE, O(backend), "cpu", 0, 0, "cpu|cuda", G_TRAIN, NULL, "compute backend"},
    {"precision", F_CHOICE, O(precision), "tf32", 0, 0, "fp32|tf32|bf16", G_TRAIN, "cuda|bf16",
     "GEMM inputs (parameters, gradients, moments stay fp32); cpu: fp32 (tf32 = fp32), or bf16 on Intel AMX or AVX512-BF16"},
    // run-only
    {"threads", F_INT, O(threads), "0", 0, 1024, NULL, G_RUN, "-", "CPU threads (0 = all cores)"},
    {"db", F_STR, O(db), "results/results.db", 0, 0, NULL, G_RUN, "-", "results database (SQLite)"},
    {"json", F_BOOL, O(json), "0", 0, 1, NULL, G_RUN, "-", "print a JSON object as the last stdout line"},
    {"force", F_BOOL, O(force), "0", 0, 1, NULL, G_RUN, "-", "train even if this config already finished in the database"},
    {"max-steps", F_INT, O(max_steps), "0", 0, 1e12, NULL, G_RUN, "-", "stop after this many optimiser steps (0 = all; smoke tests)"},
    {"eval-every", F_INT, O(eval_every), "1", 1, 1e6, NULL, G_RUN, "-",
     "evaluate the test sets every N epochs and at the last one, when --early-stop >= 1 (else every epoch); the result is the same"},
    {"checkpoint", F_STR, O(checkpoint), "", 0, 0, NULL, G_RUN, "-",
     "directory for this run's checkpoint (DIR/<config hash>.ckpt): saved at epoch ends every --checkpoint-every s "
     "and when SIGINT/SIGTERM stops the run; a rerun resumes from it, with the same result as an unbroken run"},
    {"checkpoint-every", F_INT, O(checkpoint_every), "60", 1, 1e6, NULL, G_RUN, "-", "seconds between epoch-end checkpoints"},
    {"stop-at-step", F_INT, O(stop_at_step), "0", 0, 1e12, NULL, G_RUN, "-", NULL /* test only: stop as SIGINT would */},
    {"progress", F_CHOICE, O(progress), "auto", 0, 0, "auto|bar|lines|none", G_RUN, "-", "progress on stderr"},
    {"nan-at-step", F_INT, O(nan_at_step), "0", 0, 1e12, NULL, G_RUN, "-", NULL /* test only */},
    {"zero-mixer", F_BOOL, O(zero_mixer), "0", 0, 1, NULL, G_RUN, "-", NULL /* test only: zero every mixer output */},
};
#define NFLAGS ((int)(sizeof flags / sizeof flags[0]))

static void *field(RunConfig *c, const Flag *f) { return (char *)c + f->off; }
static const void *cfield(const RunConfig *c, const Flag *f) { return (const char *)c + f->off; }

static int choice_index(const char *choices, const char *v) {
    int i = 0;
    for (const char *p = choices; *p; i++) {
        const char *e = strchr(p, '|');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (strlen(v) == n && strncmp(p, v, n) == 0) return i;
        if (!e) break;
        p = e + 1;
    }
    return -1;
}
static void choice_name(const char *choices, int idx, char *out, size_t n) {
    const char *p = choices;
    for (int i = 0; i < idx && p; i++) { p = strchr(p, '|'); if (p) p++; }
    if (!p) { snprintf(out, n, "?"); return; }
    const char *e = strchr(p, '|');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    snprintf(out, n, "%.*s", (int)len, p);
}

static const Flag *find_flag(const char *name, unsigned groups) {
    char norm[64];
    snprintf(norm, sizeof norm, "%s", name);
    for (char *p = norm; *p; p++) if (*p == '_') *p = '-';
    for (int i = 0; i < NFLAGS; i++)
        if ((flags[i].group & groups) && strcmp(flags[i].name, norm) == 0) return &flags[i];
    return NULL;
}

static int set_flag(RunConfig *c, const Flag *f, const char *v, char *err, size_t errn) {
    char *end;
    errno = 0;
    switch (f->type) {
    case F_INT: {
        double x = strtod(v, &end);
        if (end == v || *end || isspace((unsigned char)*v) || isnan(x)) {
            snprintf(err, errn, "--%s %s is not a number: must be an integer in [%.0f, %.0f]", f->name, v, f->min, f->max);
            return -1;
        }
        if (errno || x != floor(x) || x < f->min || x > f->max) {
            snprintf(err, errn, "--%s %s out of range: must be an integer in [%.0f, %.0f]", f->name, v, f->min, f->max);
            return -1;
        }
        if (f->size == sizeof(long)) *(long *)field(c, f) = (long)x;
        else *(int *)field(c, f) = (int)x;
        return 0;
    }
    case F_U64: {
        // Decimal digits only: strtoull would read "010" as octal, " -5" as 2^64-5 and "0x10" as hex.
        if (!*v || strspn(v, "0123456789") != strlen(v)) {
            snprintf(err, errn, "--%s %s is not a decimal integer: must be in [0, 2^64-1]", f->name, v);
            return -1;
        }
        unsigned long long x = strtoull(v, &end, 10);
        if (end == v || *end || errno) { snprintf(err, errn, "--%s %s out of range: must be an integer in [0, 2^64-1]", f->name, v); return -1; }
        *(uint64_t *)field(c, f) = (uint64_t)x;
        return 0;
    }
    case F_DOUBLE: {
        double x = strtod(v, &end);
        if (end == v || *end || isspace((unsigned char)*v) || isnan(x)) {
            snprintf(err, errn, "--%s %s is not a number: must be a number in [%g, %g]", f->name, v, f->min, f->max);
            return -1;
        }
        if (errno || !isfinite(x) || x < f->min || x > f->max) {
            snprintf(err, errn, "--%s %s out of range: must be a number in [%g, %g]", f->name, v, f->min, f->max);
            return -1;
        }
        *(double *)field(c, f) = x;
        return 0;
    }
    case F_STR:
        if (!*v && !strcmp(f->name, "db")) { snprintf(err, errn, "--db '': give the results database's file name"); return -1; }
        if (strlen(v) >= f->size) { snprintf(err, errn, "--%s value too long (max %zu characters)", f->name, f->size - 1); return -1; }
        snprintf((char *)field(c, f), f->size, "%s", v);
        return 0;
    case F_CHOICE: {
        int i = choice_index(f->choices, v);
        if (i < 0) { snprintf(err, errn, "--%s %s invalid: must be one of %s", f->name, v, f->choices); return -1; }
        *(int *)field(c, f) = i;
        return 0;
    }
    case F_BOOL:
        if (!strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "on")) *(int *)field(c, f) = 1;
        else if (!strcmp(v, "0") || !strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "off")) *(int *)field(c, f) = 0;
        else { snprintf(err, errn, "--%s %s invalid: must be 0 or 1", f->name, v); return -1; }
        return 0;
    }
    return -1;
}

void config_defaults(RunConfig *c) {
    memset(c, 0, sizeof *c);
    char err[256];
    for (int i = 0; i < NFLAGS; i++)
        if (set_flag(c, &flags[i], flags[i].def, err, sizeof err)) die_runtime("bad default: %s", err);
}

int config_set(RunConfig *c, const char *name, const char *value, unsigned groups, char *err, size_t errn) {
    const Flag *f = find_flag(name, groups);
    if (!f) { snprintf(err, errn, "unknown option --%s (see recallbench help)", name); return -2; }
    return set_flag(c, f, value, err, errn);
}

int config_parse_args(RunConfig *c, int argc, char **argv, unsigned groups, int *npos, char *err, size_t errn) {
    int np = 0;
    for (int i = 0; i < argc; i++) {
        char *a = argv[i];
        if (strncmp(a, "--", 2) != 0 || a[2] == 0) { argv[np++] = a; continue; }
        char name[64];
        const char *val = NULL, *eq = strchr(a + 2, '=');
        if (eq) {
            snprintf(name, sizeof name, "%.*s", (int)(eq - a - 2), a + 2);
            val = eq + 1;
        } else snprintf(name, sizeof name, "%s", a + 2);
        const Flag *f = find_flag(name, groups);
        if (!f && !eq && strncmp(name, "no-", 3) == 0) {
            // --no-X negates boolean flags only: --no-lr 0.5 is not --lr 0.5.
            const Flag *b = find_flag(name + 3, groups);
            if (b && b->type == F_BOOL) { *(int *)field(c, b) = 0; continue; }
            if (b) { snprintf(err, errn, "--%s: --no- applies to on/off flags only; --%s takes a value", name, b->name); return -1; }
        }
        if (!f) { snprintf(err, errn, "unknown option --%s (see recallbench help)", name); return -1; }
        if (!val) {
            if (f->type == F_BOOL) { *(int *)field(c, f) = 1; continue; }
            if (i + 1 >= argc) { snprintf(err, errn, "--%s needs a value (%s)", f->name, f->help ? f->help : ""); return -1; }
            val = argv[++i];
        }
        if (set_flag(c, f, val, err, errn)) return -1;
    }
    if (npos) *npos = np;
    return 0;
}

// One field of an L:K:count entry: decimal digits only, in [lo, hi] (sscanf's %d wraps 4294967360 to 64).
static int mix_field(const char **p, long lo, long hi, long *out) {
    const char *q = *p;
    if (*q < '0' || *q > '9') return -1;
    long v = 0;
    for (; *q >= '0' && *q <= '9'; q++) {
        v = v * 10 + (*q - '0');
        if (v > hi) return -2;
    }
    if (v < lo) return -2;
    *out = v;
    *p = q;
    return 0;
}

int config_parse_mix(const char *s, MqarMix *out, int max, const char *flag, char *err, size_t errn) {
    int n = 0;
    const char *p = s;
    // The same limits as --seq-len, --kv-pairs and --train-examples (the flag table).
    static const long lo[3] = {1, 1, 1}, hi[3] = {1 << 16, 1 << 15, 100000000};
    static const char *what[3] = {"L", "K", "count"};
    while (*p) {
        if (n >= max) { snprintf(err, errn, "--%s has more than %d entries", flag, max); return -1; }
        long v[3];
        const char *e0 = p;
        for (int k = 0; k < 3; k++) {
            int rc = mix_field(&p, lo[k], hi[k], &v[k]);
            if (rc == -2) {
                snprintf(err, errn, "--%s entry %d (%.*s): %s out of range: must be an integer in [%ld, %ld]", flag, n + 1,
                         (int)strcspn(e0, ","), e0, what[k], lo[k], hi[k]);
                return -1;
            }
            if (rc < 0 || (k < 2 && *p != ':') || (k == 2 && *p && *p != ',')) {
                snprintf(err, errn, "--%s entry %d (%.*s) invalid: expected L:K:count (decimal integers)", flag, n + 1,
                         (int)strcspn(e0, ","), e0);
                return -1;
            }
            if (k < 2) p++;
        }
        out[n++] = (MqarMix){(int)v[0], (int)v[1], (int)v[2]};
        if (*p == ',') p++;
    }
    if (n == 0) { snprintf(err, errn, "--%s is empty: expected L:K:count,...", flag); return -1; }
    return n;
}

// Parses "a" or "a,b,..." into per-head values; one value fills every head.
static int parse_heads(const char *s, int *out, int heads, const char *flag, char *err, size_t errn) {
    int n = 0;
    const char *p = s;
    while (*p) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || (*end && *end != ',') || v < 1 || v > 1 << 20) {
            snprintf(err, errn, "--%s %s invalid: must be positive integers, one or one per head", flag, s);
            return -1;
        }
        if (n >= RB_MAX_HEADS) { snprintf(err, errn, "--%s %s has more than %d values", flag, s, RB_MAX_HEADS); return -1; }
        out[n++] = (int)v;
        p = *end ? end + 1 : end;
    }
    if (n == 1) for (int h = 1; h < RB_MAX_HEADS; h++) out[h] = out[0];
    else if (n != heads) {
        snprintf(err, errn, "--%s %s gives %d values: must give 1 or --heads (%d)", flag, s, n, heads);
        return -1;
    }
    return 0;
}

int config_finalize(const RunConfig *c, TaskParams *tp, ModelCfg *mc, char *err, size_t errn) {
    memset(tp, 0, sizeof *tp);
    tp->task = c->task;
    tp->power_a = c->power_a;
    tp->random_non_queries = c->random_non_queries;
    tp->train_automata = c->train_automata;
    tp->test_automata = c->test_automata;
    int maxL = 0;
    if (c->task == TASK_MQAR) {
        tp->vocab = c->vocab;
        if (c->train_mix[0]) {
            if ((tp->n_train_mix = config_parse_mix(c->train_mix, tp->train_mix, 16, "train-mix", err, errn)) < 0) return -1;
        } else {
            tp->n_train_mix = 1;
            tp->train_mix[0] = (MqarMix){c->seq_len, c->kv_pairs, c->train_examples};
        }
        if (c->test_mix[0]) {
            if ((tp->n_test_mix = config_parse_mix(c->test_mix, tp->test_mix, 16, "test-mix", err, errn)) < 0) return -1;
        } else {
            tp->n_test_mix = 1;
            tp->test_mix[0] = (MqarMix){c->seq_len, c->kv_pairs, c->test_examples};
        }
        for (int i = 0; i < tp->n_train_mix; i++) if (tp->train_mix[i].L > maxL) maxL = tp->train_mix[i].L;
        for (int i = 0; i < tp->n_test_mix; i++) if (tp->test_mix[i].L > maxL) maxL = tp->test_mix[i].L;
    } else {
        tp->vocab = RB_VOCAB;
        maxL = 19 * 49 + 18;  // longest possible RegBench instance (tasks.md)
    }
    if (task_validate(tp, err, errn)) return -1;
#if !RB_HAVE_CUDA
    if (c->backend == BACKEND_CUDA) {
        snprintf(err, errn, "--backend cuda: this build has no CUDA backend (rebuild where nvcc and cuBLAS exist)");
        return -1;
    }
#endif
    memset(mc, 0, sizeof *mc);
    mc->vocab = tp->vocab;
    mc->d_model = c->d_model;
    mc->mlp = c->mlp;
    mc->pos_emb = c->pos_emb;
    mc->norm = c->norm == 1 ? NORM_RMS : NORM_LAYER;
    mc->max_len = maxL;
    mc->zero_mixer = c->zero_mixer;
    mc->backend = c->backend == BACKEND_CUDA ? MODEL_CUDA : MODEL_CPU;
    mc->precision = c->precision;
    if (c->d_model % c->heads) {
        snprintf(err, errn, "--d-model %d invalid: must be divisible by --heads (%d)", c->d_model, c->heads);
        return -1;
    }
    char buf[sizeof c->layers];
    snprintf(buf, sizeof buf, "%s", c->layers);
    int n = 0;
    for (char *save, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) n++;
    if (n == 0 || n > RB_MAX_LAYERS) {
        snprintf(err, errn, "--layers '%s' invalid: must list 1 to %d mixers", c->layers, RB_MAX_LAYERS);
        return -1;
    }
    snprintf(buf, sizeof buf, "%s", c->layers);
    int l = 0;
    for (char *save, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save), l++) {
        MixerKind k;
        const MixerOps *ops = mixer_find(tok, &k);
        if (!ops || !ops->forward) {
            snprintf(err, errn, "--layers: unknown or unavailable mixer '%s' (known: conv attention swa bla gsa la mamba)", tok);
            return -1;
        }
        MixerCfg *m = &mc->layer[l];
        mixer_cfg_default(m, k, c->d_model, c->heads, n);
        if (parse_heads(c->window, m->window, c->heads, "window", err, errn)) return -1;
        if (parse_heads(c->freqs, m->freqs, c->heads, "freqs", err, errn)) return -1;
        m->bla_readout = c->bla_readout;
        m->bla_transition = c->bla_transition;
        m->slots = c->slots;
        m->feature_map = c->feature_map;
        m->feature_dim = c->feature_dim;
        m->state_dim = c->state_dim;
        m->expand = c->expand;
        if (ops->validate && ops->validate(m, err, errn)) return -1;
    }
    mc->n_layers = n;
    return 0;
}

// Whether the knob enters the canonical config of c (the task and layers in use read it).
static int knob_read(const RunConfig *c, const Flag *f) {
    if (!f->reads) return 1;
    if (!strcmp(f->reads, "-")) return 0;
    if (!strcmp(f->reads, "mqar")) return c->task == TASK_MQAR;
    if (!strcmp(f->reads, "regbench")) return c->task == TASK_REGBENCH;
    if (!strcmp(f->reads, "cuda")) return c->backend == BACKEND_CUDA;
    // --precision: every cuda run; on the cpu only bf16 (fp32 and tf32 are the same fp32 arithmetic
    // there, and the cpu configs hashed before bf16 existed keep their hash)
    if (!strcmp(f->reads, "cuda|bf16")) return c->backend == BACKEND_CUDA || c->precision == RB_PREC_BF16;
    char want[64], lay[sizeof c->layers];
    snprintf(want, sizeof want, "%s", f->reads);
    for (char *s1, *w = strtok_r(want, ",", &s1); w; w = strtok_r(NULL, ",", &s1)) {
        snprintf(lay, sizeof lay, "%s", c->layers);
        for (char *s2, *t = strtok_r(lay, ",", &s2); t; t = strtok_r(NULL, ",", &s2))
            if (!strcmp(w, t)) return 1;
    }
    return 0;
}

static void flag_value(const RunConfig *c, const Flag *f, char *out, size_t n) {
    const void *p = cfield(c, f);
    switch (f->type) {
    case F_INT: snprintf(out, n, "%ld", f->size == sizeof(long) ? *(const long *)p : (long)*(const int *)p); break;
    case F_U64: snprintf(out, n, "%llu", (unsigned long long)*(const uint64_t *)p); break;
    case F_DOUBLE: {  // shortest text that reads back to the same double
        double x = *(const double *)p;
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(out, n, "%.*g", prec, x);
            if (strtod(out, NULL) == x) break;
        }
        break;
    }
    case F_STR: snprintf(out, n, "%s", (const char *)p); break;
    case F_CHOICE: choice_name(f->choices, *(const int *)p, out, n); break;
    case F_BOOL: snprintf(out, n, "%d", *(const int *)p); break;
    }
}

static int cmp_flag_name(const void *a, const void *b) {
    return strcmp((*(const Flag *const *)a)->name, (*(const Flag *const *)b)->name);
}

void config_json(const RunConfig *c0, char *buf, size_t n) {
    // The MQAR shorthand enters through the mixes it expands to, so two spellings of one data set
    // hash the same.
    RunConfig c = *c0;
    if (c.task == TASK_MQAR) {
        if (!c.train_mix[0]) snprintf(c.train_mix, sizeof c.train_mix, "%d:%d:%d", c.seq_len, c.kv_pairs, c.train_examples);
        if (!c.test_mix[0]) snprintf(c.test_mix, sizeof c.test_mix, "%d:%d:%d", c.seq_len, c.kv_pairs, c.test_examples);
    }
    const Flag *sorted[NFLAGS];
    for (int i = 0; i < NFLAGS; i++) sorted[i] = &flags[i];
    qsort(sorted, NFLAGS, sizeof sorted[0], cmp_flag_name);
    size_t used = 0;
    used += snprintf(buf + used, n - used, "{");
    int first = 1;
    for (int i = 0; i < NFLAGS && used < n; i++) {
        const Flag *f = sorted[i];
        if (f->group & G_RUN || !knob_read(&c, f)) continue;
        char v[300];
        flag_value(&c, f, v, sizeof v);
        int quote = f->type == F_STR || f->type == F_CHOICE || f->type == F_U64;
        used += snprintf(buf + used, n - used, "%s\"%s\":%s%s%s", first ? "" : ",", f->name, quote ? "\"" : "", v,
                         quote ? "\"" : "");
        first = 0;
    }
    // A sabotaged model (test-only) must never pass for the real config in a store.
    if (c.zero_mixer && used < n) used += snprintf(buf + used, n - used, ",\"zero-mixer\":1");
    if (used < n) snprintf(buf + used, n - used, "}");
}

void config_hash(const char *json, char out[17]) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (const unsigned char *p = (const unsigned char *)json; *p; p++) h = (h ^ *p) * 0x100000001b3ULL;
    snprintf(out, 17, "%016llx", (unsigned long long)h);
}

void config_mixer(const RunConfig *c, char *out, size_t n) {
    char buf[sizeof c->layers], *last = NULL;
    snprintf(buf, sizeof buf, "%s", c->layers);
    for (char *s, *t = strtok_r(buf, ",", &s); t; t = strtok_r(NULL, ",", &s))
        if (strcmp(t, "conv") || !last) last = t;
    snprintf(out, n, "%s", last ? last : "none");
}

void config_variant(const RunConfig *c, char *out, size_t n) {
    char m[32];
    config_mixer(c, m, sizeof m);
    if (!strcmp(m, "bla")) {
        snprintf(out, n, "bla%s%s", c->bla_readout == BLA_READOUT_SLOTS ? "-slots" : "",
                 c->bla_transition == BLA_TRANSITION_DECAY ? "-decay" : "");
    } else if (!strcmp(m, "la")) {
        snprintf(out, n, "%s", c->feature_map == LA_ELU ? "la-elu" : "la");
    } else snprintf(out, n, "%s", m);
    if (strchr(c->window, ',') || strchr(c->freqs, ',')) {
        size_t l = strlen(out);
        // per-head windows or N: "-perhead" for 2 heads, "-perhead<H>" for more (e.g. bla-octaves' 4)
        if ((!strcmp(m, "bla") || !strcmp(m, "swa")) && c->heads > 2) snprintf(out + l, n - l, "-perhead%d", c->heads);
        else if (!strcmp(m, "bla") || !strcmp(m, "swa")) snprintf(out + l, n - l, "-perhead");
    }
}

// Appends the explicit flags of every knob the hash covers (plus the run knobs that differ).
static int config_flags(const RunConfig *c, char **argv, int max) {
    int k = 0;
    for (int i = 0; i < NFLAGS && k + 2 < max; i++) {
        const Flag *f = &flags[i];
        if (f->group & G_RUN) continue;
        if (!knob_read(c, f) && !(c->task == TASK_MQAR && f->reads && !strcmp(f->reads, "-"))) continue;
        char v[300], a[80];
        flag_value(c, f, v, sizeof v);
        if (f->type == F_STR && !v[0]) continue;  // empty mix = shorthand
        if (f->type == F_BOOL) {  // a bare boolean flag takes no value
            snprintf(a, sizeof a, "--%s%s", v[0] == '1' ? "" : "no-", f->name);
            argv[k++] = xstrdup(a);
            continue;
        }
        snprintf(a, sizeof a, "--%s", f->name);
        argv[k++] = xstrdup(a);
        argv[k++] = xstrdup(v);
    }
    return k;
}

char **config_argv(const RunConfig *c, const char *exe) {
    char **argv = xcalloc(2 * NFLAGS + 8, sizeof(char *));
    argv[0] = xstrdup(exe);
    argv[1] = xstrdup("train");
    config_flags(c, argv + 2, 2 * NFLAGS + 4);
    return argv;
}

void config_argv_free(char **argv) {
    for (char **p = argv; *p; p++) free(*p);
    free(argv);
}

static void shell_quote(char **buf, size_t *len, size_t *cap, const char *s) {
    int safe = *s != 0;
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("-_.,:/=+", *p)) safe = 0;
    size_t need = strlen(s) * 4 + 4;
    if (*len + need + 1 > *cap) { *cap = (*len + need + 1) * 2; *buf = xrealloc(*buf, *cap); }
    if (safe) *len += sprintf(*buf + *len, "%s", s);
    else {
        (*buf)[(*len)++] = '\'';
        for (const char *p = s; *p; p++) {
            if (*p == '\'') { memcpy(*buf + *len, "'\\''", 4); *len += 4; }
            else (*buf)[(*len)++] = *p;
        }
        (*buf)[(*len)++] = '\'';
        (*buf)[*len] = 0;
    }
}

char *config_command(const RunConfig *c, const char *exe) {
    char **argv = config_argv(c, exe);
    size_t cap = 1024, len = 0;
    char *buf = xmalloc(cap);
    buf[0] = 0;
    for (char **p = argv; *p; p++) {
        if (p != argv) buf[len++] = ' ', buf[len] = 0;
        shell_quote(&buf, &len, &cap, *p);
    }
    config_argv_free(argv);
    return buf;
}

void config_print_help(FILE *f, unsigned groups) {
    static const char *const gname[] = {"task", "model", "mixer", "training", "run"};
    for (int g = 0; g < 5; g++) {
        if (!(groups & (1u << g))) continue;
        fprintf(f, "\n%s options:\n", gname[g]);
        for (int i = 0; i < NFLAGS; i++) {
            const Flag *fl = &flags[i];
            if (fl->group != (1u << g) || !fl->help) continue;
            char sp[64], range[64] = "";
            if (fl->type == F_BOOL) snprintf(sp, sizeof sp, "--%s | --no-%s", fl->name, fl->name);
            else if (fl->type == F_CHOICE) snprintf(sp, sizeof sp, "--%s %s", fl->name, fl->choices);
            else snprintf(sp, sizeof sp, "--%s X", fl->name);
            if (fl->type == F_INT) snprintf(range, sizeof range, " [%g..%g]", fl->min, fl->max);
            if (fl->type == F_DOUBLE) snprintf(range, sizeof range, " [%g..%g]", fl->min, fl->max);
            fprintf(f, "  %-34s %s (default %s)%s\n", sp, fl->help, fl->def[0] ? fl->def : "none", range);
        }
    }
}
