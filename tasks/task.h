// task.h — the shared dataset types and the generators' entry points (MQAR, RegBench).
// Depends on rng.h only. Models never see which task made a Split.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include "rng.h"

enum { TASK_MQAR = 0, TASK_REGBENCH = 1 };

// RegBench vocabulary (tasks.md): pad '.' = 0, letters a..r = 1..18, separator '|' = 19.
enum { RB_PAD = 0, RB_SEP = 19, RB_VOCAB = 20, RB_LETTERS = 18 };

// One block of n examples of equal (padded) length L: the unit the trainer batches from.
typedef struct {
    int n, L;
    int K;              // MQAR: kv pairs of this block (0 for RegBench)
    int32_t *inputs;    // [n, L]
    int32_t *targets;   // [n, L], -1 = not in the loss
    int32_t *lengths;   // [n] unpadded input length (all L for MQAR)
    uint32_t *allowed;  // RegBench only, else NULL: [n, L] bitmask over the 20 token ids of the
                        // truth distribution's support at each input position; 0 = not scored
    char label[32];     // "L=256,K=16" or "train"/"test"
} Split;

// A task's data: train blocks (batched within a block, block order shuffled per epoch) and test
// blocks (one per test configuration, each scored and reported separately).
typedef struct {
    int task, vocab;
    int n_train, n_test;
    Split *train, *test;
} Dataset;

// One (L, K, count) entry of an MQAR mix (--train-mix / --test-mix "L:K:count,...").
typedef struct { int L, K, count; } MqarMix;

typedef struct {
    int task;            // TASK_MQAR | TASK_REGBENCH
    int vocab;           // MQAR V (RegBench: always 20)
    double power_a;      // MQAR gap distribution exponent a (default 0.01)
    int random_non_queries;  // MQAR: replace input 0s by uniform tokens (default 1)
    int n_train_mix, n_test_mix;
    MqarMix train_mix[16], test_mix[16];
    int train_automata, test_automata;  // RegBench: PFAs (instances) per split
} TaskParams;

// Checks the parameters against tasks.md's preconditions. Returns 0, or -1 with one line in err
// naming the parameter and its allowed range.
int task_validate(const TaskParams *tp, char *err, size_t errn);
// Builds the dataset deterministically from (tp, seed). Returns NULL only on out-of-memory.
Dataset *task_generate(const TaskParams *tp, uint64_t seed);
void dataset_free(Dataset *d);
void split_free(Split *s);

// MQAR (tasks.md): n examples of length L with K pairs into s (allocated here).
// Returns 0, or -1 with a message in err when (V, L, K) violate the preconditions.
int mqar_check(int V, int L, int K, char *err, size_t errn);
int mqar_generate(Split *s, int n, int V, int L, int K, double power_a, int random_non_queries, Rng *rng);
// Zoology's accuracy: per example the fraction of scored positions whose prediction equals the
// target, then the mean over examples. pred [n, L] (ignored where target is -1).
double mqar_accuracy(const Split *s, const int32_t *pred);

// RegBench (tasks.md): n instances (one PFA each), padded to the longest instance.
int regbench_generate(Split *s, int n, Rng *rng);
// In-context n-gram baseline with back-off (order 2 or 3): greedy accuracy and TVD, micro-averaged
// over scored positions, exactly as models are scored.
void regbench_ngram(const Split *s, int order, double *accuracy, double *tvd);
