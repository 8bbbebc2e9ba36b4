// dataset.c — parameter validation and Dataset assembly for both tasks (tasks.md), one RNG stream
// per split. Depends on task.h, rng.h, mqar.c, regbench.c.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "task.h"

// Stream ids: train entry i uses 100+i, test entry i 200+i, so adding or changing one configuration
// never changes another's data.
enum { STREAM_TRAIN = 100, STREAM_TEST = 200, MAX_AUTOMATA = 1000000 };

// Checks one MQAR (V, L, K). Flag names are parameters so the same checks serve the CLI shorthand
// (--seq-len/--kv-pairs) and mix entries (prefix "--train-mix entry 2 (256:80:1000): ", names L, K).
static int mqar_check_named(int V, int L, int K, const char *pre, const char *ln, const char *kn,
                            char *err, size_t errn) {
    if (L < 4 || L % 2)
        return snprintf(err, errn, "%s%s %d out of range: need an even length >= 4", pre, ln, L), -1;
    if (K < 1)
        return snprintf(err, errn, "%s%s %d out of range: need %s >= 1", pre, kn, K, kn), -1;
    if (K > L / 4)
        return snprintf(err, errn, "%s%s %d out of range: need 4*K <= %s (%d), i.e. K <= %d",
                        pre, kn, K, ln, L, L / 4), -1;
    if (V <= L)
        return snprintf(err, errn, "%s--vocab %d out of range: need --vocab > %s (%d)", pre, V, ln, L), -1;
    if (V > (1 << 24))  // keeps the key/value pools (V/2 ints each) small; not a tasks.md limit
        return snprintf(err, errn, "%s--vocab %d out of range: need --vocab <= %d", pre, V, 1 << 24), -1;
    if (K > V / 2 - 1)
        return snprintf(err, errn, "%s%s %d out of range: need K <= --vocab/2 - 1 (%d)",
                        pre, kn, K, V / 2 - 1), -1;
    return 0;
}

int mqar_check(int V, int L, int K, char *err, size_t errn) {
    return mqar_check_named(V, L, K, "", "--seq-len", "--kv-pairs", err, errn);
}

static int check_mix(const TaskParams *tp, const MqarMix *mix, int nmix, const char *flag,
                     const char *countflag, int shorthand, char *err, size_t errn) {
    if (nmix < 1 || nmix > 16)
        return snprintf(err, errn, "%s: need 1 to 16 entries (got %d)", flag, nmix), -1;
    for (int i = 0; i < nmix; i++) {
        const MqarMix *m = &mix[i];
        char pre[96] = "";
        if (!shorthand) snprintf(pre, sizeof pre, "%s entry %d (%d:%d:%d): ", flag, i + 1, m->L, m->K, m->count);
        if (shorthand ? mqar_check(tp->vocab, m->L, m->K, err, errn)
                      : mqar_check_named(tp->vocab, m->L, m->K, pre, "L", "K", err, errn))
            return -1;
        if (m->count < 1) {
            if (shorthand) snprintf(err, errn, "%s %d out of range: need >= 1", countflag, m->count);
            else snprintf(err, errn, "%scount %d out of range: need count >= 1", pre, m->count);
            return -1;
        }
    }
    return 0;
}

int task_validate(const TaskParams *tp, char *err, size_t errn) {
    if (tp->task == TASK_MQAR) {
        // 0 < a <= 1: a > 1 would make large gaps likelier, a <= 0 gives no distribution.
        if (!(tp->power_a > 0 && tp->power_a <= 1))
            return snprintf(err, errn, "--power-a %g out of range: need 0 < a <= 1", tp->power_a), -1;
        // The CLI shorthand (--seq-len --kv-pairs --train-examples --test-examples) arrives as one
        // train and one test entry with the same (L, K): report those in the shorthand's spelling.
        int sh = tp->n_train_mix == 1 && tp->n_test_mix == 1 && tp->train_mix[0].L == tp->test_mix[0].L &&
                 tp->train_mix[0].K == tp->test_mix[0].K;
        if (check_mix(tp, tp->train_mix, tp->n_train_mix, "--train-mix", "--train-examples", sh, err, errn) ||
            check_mix(tp, tp->test_mix, tp->n_test_mix, "--test-mix", "--test-examples", sh, err, errn))
            return -1;
        return 0;
    }
    if (tp->task == TASK_REGBENCH) {
        if (tp->train_automata < 1 || tp->train_automata > MAX_AUTOMATA)
            return snprintf(err, errn, "--train-automata %d out of range: need 1 to %d",
                            tp->train_automata, MAX_AUTOMATA), -1;
        if (tp->test_automata < 1 || tp->test_automata > MAX_AUTOMATA)
            return snprintf(err, errn, "--test-automata %d out of range: need 1 to %d",
                            tp->test_automata, MAX_AUTOMATA), -1;
        return 0;
    }
    return snprintf(err, errn, "--task %d out of range: need mqar or regbench", tp->task), -1;
}

void split_free(Split *s) {
    if (!s) return;
    free(s->inputs); free(s->targets); free(s->lengths); free(s->allowed);
    s->inputs = s->targets = s->lengths = NULL;
    s->allowed = NULL;
    s->n = s->L = 0;
}

void dataset_free(Dataset *d) {
    if (!d) return;
    for (int i = 0; i < d->n_train; i++) split_free(&d->train[i]);
    for (int i = 0; i < d->n_test; i++) split_free(&d->test[i]);
    free(d->train); free(d->test); free(d);
}

Dataset *task_generate(const TaskParams *tp, uint64_t seed) {
    char err[256];
    if (task_validate(tp, err, sizeof err)) return NULL;  // callers validate first (exit 2)
    Dataset *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    d->task = tp->task;
    Rng r;
    if (tp->task == TASK_MQAR) {
        d->vocab = tp->vocab;
        d->train = calloc((size_t)tp->n_train_mix, sizeof(Split));
        d->test = calloc((size_t)tp->n_test_mix, sizeof(Split));
        if (!d->train || !d->test) goto oom;
        for (int i = 0; i < tp->n_train_mix; i++, d->n_train++) {
            const MqarMix *m = &tp->train_mix[i];
            rng_seed_stream(&r, seed, STREAM_TRAIN + (uint64_t)i);
            if (mqar_generate(&d->train[i], m->count, tp->vocab, m->L, m->K, tp->power_a,
                              tp->random_non_queries, &r)) goto oom;
        }
        for (int i = 0; i < tp->n_test_mix; i++, d->n_test++) {
            const MqarMix *m = &tp->test_mix[i];
            rng_seed_stream(&r, seed, STREAM_TEST + (uint64_t)i);
            if (mqar_generate(&d->test[i], m->count, tp->vocab, m->L, m->K, tp->power_a,
                              tp->random_non_queries, &r)) goto oom;
        }
    } else {
        d->vocab = RB_VOCAB;
        d->train = calloc(1, sizeof(Split));
        d->test = calloc(1, sizeof(Split));
        if (!d->train || !d->test) goto oom;
        rng_seed_stream(&r, seed, STREAM_TRAIN);
        d->n_train = 1;
        if (regbench_generate(d->train, tp->train_automata, &r)) goto oom;
        snprintf(d->train->label, sizeof d->train->label, "train");
        rng_seed_stream(&r, seed, STREAM_TEST);
        d->n_test = 1;
        if (regbench_generate(d->test, tp->test_automata, &r)) goto oom;
        snprintf(d->test->label, sizeof d->test->label, "test");
    }
    return d;
oom:
    dataset_free(d);
    return NULL;
}
