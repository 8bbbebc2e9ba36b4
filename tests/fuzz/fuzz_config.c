// fuzz_config.c — libFuzzer target for the two parsers that read user text: the flag parser
// (config_parse_args + config_finalize + canonical JSON/command) and the sweep INI reader (sweep_spec_load +
// sweep_expand). Depends on harness/config.c, sweep.c (the harness library), libFuzzer. Build/run: run.sh.
// Input: first byte selects the parser (even: flags, odd: INI); the rest is the argv (split at NUL or
// newline) or the INI text. Any crash, sanitizer report, leak or exit() inside the parsers is a bug.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "config.h"
#include "sweep.h"

#define MAX_ARGS 64

static void fuzz_flags(const uint8_t *data, size_t size) {
    char *buf = malloc(size + 1);
    memcpy(buf, data, size);
    buf[size] = 0;
    char *argv[MAX_ARGS + 1];
    int argc = 0;
    char *p = buf, *end = buf + size;
    while (p <= end && argc < MAX_ARGS) {
        char *q = p;
        while (q < end && *q && *q != '\n') q++;
        *q = 0;
        argv[argc++] = p;
        p = q + 1;
    }
    argv[argc] = NULL;
    RunConfig c;
    config_defaults(&c);
    char err[512];
    int np = 0;
    if (config_parse_args(&c, argc, argv, G_TASK | G_MODEL | G_MIXER | G_TRAIN | G_RUN, &np, err, sizeof err) == 0) {
        TaskParams tp;
        ModelCfg mc;
        if (config_finalize(&c, &tp, &mc, err, sizeof err) == 0) {
            char json[4096], hash[17], name[64];
            config_json(&c, json, sizeof json);
            config_hash(json, hash);
            config_mixer(&c, name, sizeof name);
            config_variant(&c, name, sizeof name);
            free(config_command(&c, "recallbench"));
            config_argv_free(config_argv(&c, "recallbench"));
        }
    }
    MqarMix mix[16];
    config_parse_mix(buf, mix, 16, "train-mix", err, sizeof err);
    free(buf);
}

static void fuzz_ini(const uint8_t *data, size_t size) {
    int fd = memfd_create("spec.ini", 0);
    if (fd < 0) return;
    if (size && write(fd, data, size) != (ssize_t)size) { close(fd); return; }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    SweepSpec s;
    char err[1024];
    if (sweep_spec_load(path, &s, err, sizeof err) == 0) {
        // Expansion is linear but each point is finalized: keep executions fast, except for the size check
        // itself, which must refuse huge grids without allocating them.
        long n = sweep_grid_size(&s);
        if (n <= 2000 || n > SWEEP_MAX_GRID) {
            SweepRun *runs = NULL;
            int ndup = 0;
            const char *ov[2] = {"backend", "cpu"};
            int got = sweep_expand(&s, ov, 1, &runs, &ndup, err, sizeof err);
            if (got >= 0) free(runs);
        }
    }
    sweep_spec_free(&s);
    close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || size > 1 << 16) return 0;
    if (data[0] & 1) fuzz_ini(data + 1, size - 1);
    else fuzz_flags(data + 1, size - 1);
    return 0;
}
