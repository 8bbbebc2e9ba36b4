// sweep.h — sweep specs (INI) and the grid they expand to; `recallbench sweep` runs the grid with worker
// processes (architecture.md "Command line", "Results store"). Depends on config.h, inih.
#pragma once
#include <stddef.h>
#include "config.h"

// One key of a spec block: its values (a whitespace-separated list; commas stay inside one value) and the
// line it was set on (continuation lines and repeated keys extend the list).
typedef struct {
    char key[48];
    char **vals;
    int nvals, line;
} SpecKey;

typedef struct {
    char name[64];             // "" for [sweep]; NAME of [model NAME]
    int line;
    SpecKey *keys;
    int nkeys;
} SpecBlock;

typedef struct {
    char file[512];
    char name[64];             // [sweep] name = ... (default: the file name without .ini)
    char db[512];              // [sweep] db = ... ("" = not set)
    int eval_every;            // [sweep] eval-every = N (0 = not set): passed to every worker's train
    SpecBlock sweep;
    SpecBlock *models;
    int nmodels;
} SweepSpec;

// One grid point.
typedef struct {
    RunConfig cfg;
    int block;                 // index into models (-1: [sweep] alone)
    char model[64];            // block name (or the variant when there are no [model] blocks)
    char variant[48];
    char knobs[256];           // the knobs this block sets or varies, "window=32 lr=0.01"
    char hash[17];
} SweepRun;

// Parses an INI spec. Every value is checked with config_set (unknown key, bad value: exit-2 material).
// Returns 0, or -1 with one line "FILE:LINE: ..." in err.
int sweep_spec_load(const char *path, SweepSpec *s, char *err, size_t errn);
void sweep_spec_free(SweepSpec *s);
// Largest grid sweep_expand accepts (points before de-duplication; ~2 KB of memory each).
#define SWEEP_MAX_GRID 100000
// Grid size before de-duplication: sum over blocks of the product of their list lengths; larger than
// SWEEP_MAX_GRID reads as SWEEP_MAX_GRID + 1 (the exact product may overflow any integer).
long sweep_grid_size(const SweepSpec *s);
// Expands the grid in a deterministic order (blocks in file order; within a block the first key varies
// slowest), applies override (a key=value list such as the CLI's --backend, may be NULL), finalizes and
// hashes every point, and drops points whose hash repeats an earlier one (knobs a mixer does not read).
// *out malloc'd; returns the count, or -1 with one line in err naming the block and the grid point, or
// the grid size when it exceeds SWEEP_MAX_GRID. Linear in the grid size.
int sweep_expand(const SweepSpec *s, const char *const *override_kv, int noverride, SweepRun **out,
                 int *ndup, char *err, size_t errn);

int cmd_sweep(int argc, char **argv);
