// test_config.c — the flag table: parsing, range errors, canonical JSON, hash stability, commands.
// Depends on harness/config.h.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "config.h"

static int fails;
static void check(const char *name, int ok, const char *detail) {
    printf("%s %-52s %s\n", ok ? "PASS" : "FAIL", name, detail ? detail : "");
    fails += !ok;
}

static int parse(RunConfig *c, const char *line, char *err, size_t n) {
    char buf[1024], *argv[64];
    int argc = 0;
    snprintf(buf, sizeof buf, "%s", line);
    for (char *s, *t = strtok_r(buf, " ", &s); t; t = strtok_r(NULL, " ", &s)) argv[argc++] = t;
    config_defaults(c);
    int np;
    return config_parse_args(c, argc, argv, G_TASK | G_MODEL | G_MIXER | G_TRAIN | G_RUN, &np, err, n);
}

static void hash_of(const char *line, char out[17]) {
    RunConfig c;
    char err[256], json[4096];
    if (parse(&c, line, err, sizeof err)) { snprintf(out, 17, "parse-error"); return; }
    config_json(&c, json, sizeof json);
    config_hash(json, out);
}

int main(void) {
    RunConfig c;
    char err[512], h1[17], h2[17], json[4096];
    check("parse ok", parse(&c, "--layers conv,bla --window 32 --freqs 4 --lr 3e-3 --seed 7", err, sizeof err) == 0, err);
    check("values set", c.lr == 3e-3 && c.seed == 7 && !strcmp(c.window, "32"), NULL);

    // Range errors name the flag and the range.
    int rc = parse(&c, "--d-model 0", err, sizeof err);
    check("d-model 0 rejected", rc != 0 && strstr(err, "--d-model 0") && strstr(err, "[1, 8192]"), err);
    rc = parse(&c, "--lr abc", err, sizeof err);
    check("lr abc rejected", rc != 0 && strstr(err, "--lr abc"), err);
    rc = parse(&c, "--task foo", err, sizeof err);
    check("task foo rejected", rc != 0 && strstr(err, "mqar|regbench"), err);
    rc = parse(&c, "--bogus 1", err, sizeof err);
    check("unknown flag rejected", rc != 0 && strstr(err, "--bogus"), err);
    rc = parse(&c, "--epochs", err, sizeof err);
    check("missing value rejected", rc != 0 && strstr(err, "needs a value"), err);

    // Finalize: cross-field checks.
    TaskParams tp;
    ModelCfg mc;
    parse(&c, "--d-model 10 --heads 3", err, sizeof err);
    rc = config_finalize(&c, &tp, &mc, err, sizeof err);
    check("d-model % heads rejected", rc != 0 && strstr(err, "--d-model 10"), err);
    parse(&c, "--train-mix 64:4:10,128:x:5", err, sizeof err);
    rc = config_finalize(&c, &tp, &mc, err, sizeof err);
    check("bad mix entry rejected", rc != 0 && strstr(err, "entry 2"), err);
    parse(&c, "--heads 2 --d-model 64 --window 32,64,128 --layers conv,swa", err, sizeof err);
    rc = config_finalize(&c, &tp, &mc, err, sizeof err);
    check("per-head count mismatch rejected", rc != 0 && strstr(err, "--window"), err);
    parse(&c, "--train-mix 64:4:100,128:8:50 --test-mix 256:16:10", err, sizeof err);
    rc = config_finalize(&c, &tp, &mc, err, sizeof err);
    check("mix parsed", rc == 0 && tp.n_train_mix == 2 && tp.train_mix[1].L == 128 && tp.test_mix[0].K == 16 &&
          mc.max_len == 256, err);

    // Hash: order and spelling independent, run knobs excluded, result knobs included.
    hash_of("--lr 1e-3 --seed 3 --layers conv,swa --window 16", h1);
    hash_of("--window 16 --layers conv,swa --seed 3 --lr 0.001 --threads 2 --db x.db", h2);
    check("hash independent of order/run knobs", !strcmp(h1, h2), h1);
    hash_of("--lr 1e-3 --seed 4 --layers conv,swa --window 16", h2);
    check("hash depends on seed", strcmp(h1, h2) != 0, h2);
    hash_of("--seq-len 64 --kv-pairs 4 --train-examples 1000 --test-examples 100", h1);
    hash_of("--train-mix 64:4:1000 --test-mix 64:4:100", h2);
    check("shorthand == explicit mix", !strcmp(h1, h2), h1);
    hash_of("--layers conv,attention --window 16", h1);
    hash_of("--layers conv,attention --window 32", h2);
    check("unused knob (window for attention) ignored", !strcmp(h1, h2), h1);
    // Pinned: the canonical form of the defaults. If this changes, every stored database's
    // skip-finished logic changes with it; bump deliberately.
    config_defaults(&c);
    config_json(&c, json, sizeof json);
    config_hash(json, h1);
    printf("     defaults json: %s\n", json);
    check("defaults hash pinned", !strcmp(h1, "73a9653ef7ce221d"), h1);

    // Self-contained command reproduces the hash.
    parse(&c, "--layers conv,bla --window 32,64 --heads 2 --freqs 8 --bla-readout slots --lr 0.01 --seed 5", err, sizeof err);
    config_json(&c, json, sizeof json);
    config_hash(json, h1);
    char **argv = config_argv(&c, "recallbench");
    RunConfig d;
    config_defaults(&d);
    int argc = 0;
    while (argv[argc]) argc++;
    int np;
    rc = config_parse_args(&d, argc - 2, argv + 2, G_TASK | G_MODEL | G_MIXER | G_TRAIN | G_RUN, &np, err, sizeof err);
    config_json(&d, json, sizeof json);
    config_hash(json, h2);
    check("config_argv round trip", rc == 0 && !strcmp(h1, h2), h2);
    config_argv_free(argv);
    char *cmd = config_command(&c, "recallbench");
    check("config_command mentions train and window", strstr(cmd, "recallbench train") && strstr(cmd, "--window 32,64"), cmd);
    free(cmd);

    char var[48];
    config_variant(&c, var, sizeof var);
    check("variant name", !strcmp(var, "bla-slots-perhead"), var);
    printf("%d checks failed\n", fails);
    return fails ? 1 : 0;
}
