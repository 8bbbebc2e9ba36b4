// config.h — one RunConfig per run, and the one flag table that drives CLI parsing, sweep INI keys,
// validation (exit 2 with the allowed range), help text, canonical JSON and the config hash.
// Depends on tasks/task.h, models/model.h.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "../models/model.h"
#include "../tasks/task.h"

enum { BACKEND_CPU = 0, BACKEND_CUDA = 1 };

typedef struct {
    // task (tasks.md)
    int task;                  // TASK_MQAR | TASK_REGBENCH
    int vocab, seq_len, kv_pairs, train_examples, test_examples;  // MQAR single-config shorthand
    double power_a;
    int random_non_queries;
    char train_mix[256], test_mix[256];   // "L:K:count,..." (empty: from the shorthand)
    int train_automata, test_automata;    // RegBench
    // model (models.md)
    char layers[96];           // "conv,bla"
    int d_model, heads, mlp, pos_emb, norm;
    // mixers (one value, or one per head for window/freqs)
    char window[64], freqs[64];
    int bla_readout, bla_transition, slots, feature_map, feature_dim, state_dim, expand;
    // training
    double lr, weight_decay, warmup, clip, early_stop, min_lr;
    int epochs, batch, decay_all;
    uint64_t seed;
    int backend;
    int precision;             // cuda: RB_PREC_FP32 | TF32 | BF16 (models/cuda/cuda.h order)
    // run-only (not part of the config hash)
    int threads, json, force, zero_mixer, progress;
    long max_steps;            // stop after this many optimiser steps (0 = all); for smoke tests
    int eval_every;            // test evaluations every N epochs (and the last) when early stop cannot trigger
    long nan_at_step;          // test only: the loss of this step (1-based) is made NaN (divergence path)
    char db[512];
    char checkpoint[512];      // directory of per-config checkpoints ("" = none): an interrupted run resumes
    int checkpoint_every;      // seconds between checkpoints at epoch ends (and always on SIGINT/SIGTERM)
    long stop_at_step;         // test only: stop as SIGINT would after this many steps
} RunConfig;

// Flag groups (a subcommand accepts a union of them).
enum { G_TASK = 1, G_MODEL = 2, G_MIXER = 4, G_TRAIN = 8, G_RUN = 16 };

void config_defaults(RunConfig *c);
// Sets one knob from text. name: flag spelling without the leading dashes ("seq-len"; '_' accepted
// for '-'). Returns 0; -1 with one line in err for a bad value (naming the flag and allowed range);
// -2 if no such flag in groups.
int config_set(RunConfig *c, const char *name, const char *value, unsigned groups, char *err, size_t errn);
// Parses argv[0..argc) as --flag value / --flag=value / --bool-flag / --no-bool-flag. Arguments
// that are not flags are left in place and their count returned through *npos (argv compacted so
// they come first). Returns 0 or -1 with one line in err.
int config_parse_args(RunConfig *c, int argc, char **argv, unsigned groups, int *npos, char *err, size_t errn);
// Cross-field validation and derivation: fills the MQAR mixes from the shorthand, checks the task
// (task_validate) and the model (every mixer's validate), fills tp and mc. Returns 0 or -1 + err.
int config_finalize(const RunConfig *c, TaskParams *tp, ModelCfg *mc, char *err, size_t errn);
// Canonical JSON of everything that defines the result (sorted keys, only the knobs that the task
// and the layers in use read); the hash is FNV-1a 64 of it as 16 hex digits.
void config_json(const RunConfig *c, char *buf, size_t n);
void config_hash(const char *json, char out[17]);
// The mixer that names the model (last non-conv layer; "conv" if all conv) and its variant name for
// frontiers ("bla", "bla-slots", "bla-decay", "la", "la-elu", ...). Written into out.
void config_mixer(const RunConfig *c, char *out, size_t n);
void config_variant(const RunConfig *c, char *out, size_t n);
// A self-contained `recallbench train ...` argument list reproducing this run (every knob the hash
// covers, explicitly). Returns a malloc'd string with shell-quoted arguments.
char *config_command(const RunConfig *c, const char *exe);
// Argument vector for a worker process: "train", flags..., NULL. Caller frees with config_argv_free.
char **config_argv(const RunConfig *c, const char *exe);
void config_argv_free(char **argv);
// Help text of every flag in groups: spelling, default, range, meaning.
void config_print_help(FILE *f, unsigned groups);
// Parses an "L:K:count,..." list. Returns count of entries or -1 with err.
int config_parse_mix(const char *s, MqarMix *out, int max, const char *flag, char *err, size_t errn);
