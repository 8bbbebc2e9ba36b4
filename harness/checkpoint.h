// checkpoint.h — a training run's state on disk (train --checkpoint DIR), so that a run stopped by a
// signal, a time limit or a crash resumes where it was and ends bit for bit as an unbroken run would.
// Depends on models (step.h: parameters, AdamW moments) and tasks/rng.h.
//
// One file per configuration, DIR/<config hash>.ckpt, replaced atomically (written to .tmp, fsync,
// rename), ending in an FNV-1a checksum of everything before it. It holds the position in the run
// (epoch, batch within the epoch, steps), the shuffle generator as of the epoch's start (the epoch's
// permutation is redrawn from it), the epoch's running loss, the last evaluation, and the model's
// parameters and moments.
#pragma once
#include <stdint.h>
#include "../models/optim.h"
#include "../tasks/rng.h"
#include "train.h"

typedef struct {
    int epoch;            // 1-based epoch to continue
    long batch;           // batches of that epoch already taken
    long step;            // optimiser steps taken
    long total;           // the run's step count (epochs x batches, or --max-steps): the lr schedule's length
    Rng shuf;             // the shuffle generator as the epoch began
    double ep_loss;       // the epoch's summed loss so far, and its batch count
    long ep_n;
    double ema, last_acc, train_time, tokens;  // progress line, throughput
    int n_test;           // the last evaluation (TrainResult fields)
    double accuracy, tvd, accuracies[RB_MAX_SPLITS];
    char labels[RB_MAX_SPLITS][32];
} CkptPos;

// DIR/<hash>.ckpt into out (n bytes).
void ckpt_path(char *out, size_t n, const char *dir, const char *hash);
// Writes the checkpoint (creating DIR if missing). 0, or -1 with one line in err.
int ckpt_save(const char *path, const char *hash, const CkptPos *pos, Model *m, Optim *o, char *err, size_t errn);
// Reads it into pos and the model and optimiser: 0 loaded, 1 no file, -1 unreadable, corrupt or of
// another configuration or model size (one line in err; the model is untouched).
int ckpt_load(const char *path, const char *hash, CkptPos *pos, Model *m, Optim *o, char *err, size_t errn);
