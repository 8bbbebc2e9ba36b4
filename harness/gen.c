// gen.c — `recallbench gen`: prints task examples for people (marked queries/targets) or as JSONL.
// Depends on config (task flags), tasks (generators, gen_print).
#include <stdlib.h>
#include <string.h>
#include "../tasks/gen_print.h"
#include "train.h"
#include "frontier.h"
#include "util.h"

int cmd_gen(int argc, char **argv) {
    RunConfig c;
    config_defaults(&c);
    int n = 4, jsonl = 0, train = 0, np;
    char err[512];
    // gen's own options first; the rest are task flags (and --seed).
    int k = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: recallbench gen --task mqar|regbench [task options] [-n N] [--seed S]\n"
                   "                       [--format text|jsonl] [--split test|train]\n"
                   "Prints the first N examples (default 4) of a split, deterministically from the seed.\n"
                   "text marks MQAR queries [q:key->value] and RegBench scored positions; jsonl prints one\n"
                   "{\"task\", \"inputs\", \"targets\"(-1 = not scored)[, \"allowed\"]} object per example.\n");
            config_print_help(stdout, G_TASK);
            return 0;
        }
        // "--name value" or "--name=value" (frontier_flag_value), as for every other command.
        const char *v;
        if ((v = frontier_flag_value(argc, argv, &i, "-n"))) {
            char *end;
            long x = strtol(v, &end, 10);
            if (end == v || *end || x < 1 || x > 1000000) die_usage("-n %s out of range: must be an integer in [1, 1000000]", v);
            n = (int)x;
        } else if ((v = frontier_flag_value(argc, argv, &i, "--format"))) {
            if (!strcmp(v, "jsonl")) jsonl = 1;
            else if (!strcmp(v, "text")) jsonl = 0;
            else die_usage("--format %s invalid: must be one of text|jsonl", v);
        } else if ((v = frontier_flag_value(argc, argv, &i, "--split"))) {
            if (!strcmp(v, "train")) train = 1;
            else if (!strcmp(v, "test")) train = 0;
            else die_usage("--split %s invalid: must be one of test|train", v);
        } else if ((v = frontier_flag_value(argc, argv, &i, "--seed"))) {
            if (config_set(&c, "seed", v, G_TRAIN, err, sizeof err)) die_usage("%s", err);
        } else argv[1 + k++] = argv[i];
    }
    if (config_parse_args(&c, k, argv + 1, G_TASK, &np, err, sizeof err)) die_usage("%s", err);
    if (np) die_usage("gen: unexpected argument '%s'", argv[1]);
    TaskParams tp;
    ModelCfg mc;
    snprintf(c.layers, sizeof c.layers, "conv");  // gen needs no model; a valid one keeps finalize simple
    if (config_finalize(&c, &tp, &mc, err, sizeof err)) die_usage("%s", err);
    // Only the examples shown are generated: the first split of the chosen side, n examples.
    if (tp.task == TASK_MQAR) {
        MqarMix e = train ? tp.train_mix[0] : tp.test_mix[0];
        if (e.count > n) e.count = n;
        tp.n_train_mix = tp.n_test_mix = 1;
        tp.train_mix[0] = tp.test_mix[0] = e;
    } else {
        tp.train_automata = tp.test_automata = n;
    }
    Dataset *ds = task_generate(&tp, c.seed);
    if (!ds) die_runtime("out of memory generating data");
    const Split *s = train ? &ds->train[0] : &ds->test[0];
    if (jsonl) gen_print_jsonl(stdout, s, tp.task, n < s->n ? n : s->n);
    else gen_print_human(stdout, s, tp.task, n < s->n ? n : s->n);
    dataset_free(ds);
    return 0;
}
