// checkpoint.c — see checkpoint.h. Depends on models/step.h.
#define _POSIX_C_SOURCE 200809L  // fsync, fileno
#include "checkpoint.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "../models/step.h"

#define CKPT_MAGIC "RBCKPT01"

void ckpt_path(char *out, size_t n, const char *dir, const char *hash) { snprintf(out, n, "%s/%s.ckpt", dir, hash); }

typedef struct {
    char magic[8];
    char hash[17];
    char pad[7];
    uint32_t real_bytes;
    uint32_t pos_bytes;
    uint64_t P;
    int64_t t;  // optimiser steps taken
} CkptHead;

static uint64_t fnv1a(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

static int put(FILE *f, uint64_t *h, const void *p, size_t n) {
    *h = fnv1a(*h, p, n);
    return fwrite(p, 1, n, f) == n ? 0 : -1;
}

static int get(FILE *f, uint64_t *h, void *p, size_t n) {
    if (fread(p, 1, n, f) != n) return -1;
    *h = fnv1a(*h, p, n);
    return 0;
}

static void mkdirs(const char *path) {  // every parent directory of path
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') { *p = 0; mkdir(tmp, 0777); *p = '/'; }
}

int ckpt_save(const char *path, const char *hash, const CkptPos *pos, Model *m, Optim *o, char *err, size_t errn) {
    const size_t P = model_num_params(m);
    real *buf = malloc(3 * P * sizeof(real) + 1);
    if (!buf) { snprintf(err, errn, "checkpoint %s: out of memory", path); return -1; }
    long t;
    model_train_state_get(m, o, buf, buf + P, buf + 2 * P, &t);
    CkptHead hd;
    memset(&hd, 0, sizeof hd);
    memcpy(hd.magic, CKPT_MAGIC, 8);
    snprintf(hd.hash, sizeof hd.hash, "%s", hash);
    hd.real_bytes = sizeof(real);
    hd.pos_bytes = sizeof *pos;
    hd.P = P;
    hd.t = t;
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    mkdirs(path);
    FILE *f = fopen(tmp, "wb");
    int rc = -1;
    if (!f) { snprintf(err, errn, "checkpoint %s: %s", tmp, strerror(errno)); free(buf); return -1; }
    uint64_t h = 0xcbf29ce484222325ull;
    if (!put(f, &h, &hd, sizeof hd) && !put(f, &h, pos, sizeof *pos) && !put(f, &h, buf, 3 * P * sizeof(real)) &&
        fwrite(&h, sizeof h, 1, f) == 1 && fflush(f) == 0 && fsync(fileno(f)) == 0)
        rc = 0;
    if (rc) snprintf(err, errn, "checkpoint %s: write failed: %s", tmp, strerror(errno));
    if (fclose(f) && !rc) { snprintf(err, errn, "checkpoint %s: %s", tmp, strerror(errno)); rc = -1; }
    if (!rc && rename(tmp, path)) { snprintf(err, errn, "checkpoint %s: %s", path, strerror(errno)); rc = -1; }
    if (rc) remove(tmp);
    free(buf);
    return rc;
}

int ckpt_load(const char *path, const char *hash, CkptPos *pos, Model *m, Optim *o, char *err, size_t errn) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT) return 1;
        snprintf(err, errn, "checkpoint %s: %s", path, strerror(errno));
        return -1;
    }
    const size_t P = model_num_params(m);
    CkptHead hd;
    CkptPos p;
    uint64_t h = 0xcbf29ce484222325ull, sum;
    real *buf = NULL;
    const char *why = NULL;
    if (get(f, &h, &hd, sizeof hd)) why = "truncated header";
    else if (memcmp(hd.magic, CKPT_MAGIC, 8)) why = "not a recallbench checkpoint";
    else if (hd.hash[16] || strcmp(hd.hash, hash)) why = "written by another configuration";
    else if (hd.real_bytes != sizeof(real) || hd.pos_bytes != sizeof p || hd.P != P) why = "another model size or build";
    else if (!(buf = malloc(3 * P * sizeof(real) + 1))) why = "out of memory";
    else if (get(f, &h, &p, sizeof p) || get(f, &h, buf, 3 * P * sizeof(real)) || fread(&sum, sizeof sum, 1, f) != 1)
        why = "truncated";
    else if (sum != h || fgetc(f) != EOF) why = "checksum mismatch (corrupt)";
    else if (p.epoch < 1 || p.batch < 0 || p.step < 0 || hd.t != p.step) why = "inconsistent position";
    fclose(f);
    if (why) {
        snprintf(err, errn, "checkpoint %s: %s; delete it to train this configuration from the start", path, why);
        free(buf);
        return -1;
    }
    model_train_state_set(m, o, buf, buf + P, buf + 2 * P, (long)hd.t);
    *pos = p;
    free(buf);
    return 0;
}
