// train.h — one training run end to end (data, model, AdamW, epochs, evals, store), bench, gen.
// Depends on config.h, store.h, tasks, models.
#pragma once
#include <stdint.h>
#include "config.h"

#define RB_MAX_SPLITS 16

typedef struct {
    const char *status;          // "ok" | "diverged" | "failed" | "interrupted" | "skipped" (already finished)
    double accuracy;             // mean over test configurations (last epoch)
    int n_test;
    char labels[RB_MAX_SPLITS][32];
    double accuracies[RB_MAX_SPLITS];
    double tvd;                  // RegBench mean TVD (-1 for MQAR)
    double state_floats;
    double tokens_per_s;
    double final_loss;
    int epochs;                  // epochs completed
    long steps;
    int64_t run_id;
    char config_hash[17];
    char stored_json[4096];      // status skipped: the stored result_json of the finished run
    char device[128];            // "cpu" or the GPU name
    int threads;                 // CPU threads of the run
    long resumed_step;           // > 0: resumed from a checkpoint at this step
} TrainResult;

// Runs one configuration. db_path NULL = no store. quiet: no progress output. Returns 0 on success,
// 1 on runtime failure/divergence (message already printed), 2 on invalid config (message printed).
int train_run(const RunConfig *c, const char *db_path, int quiet, TrainResult *res);
// Prints the result as one JSON object line (architecture.md, "Machine-readable output").
void train_result_json(FILE *f, const TrainResult *r);
// Threads for OpenBLAS and OpenMP (0 = all online cores). Returns the count used.
int set_threads(int n);

int cmd_train(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_gen(int argc, char **argv);
