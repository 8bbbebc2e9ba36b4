// merge.c — `recallbench merge A.db B.db ... -o OUT.db`: folds per-worker results databases into one
// (architecture.md "Results store", beyond one machine). Depends on store.h (store_merge_from), sqlite3.
#include <errno.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "frontier.h"
#include "store.h"
#include "util.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: recallbench merge A.db [B.db ...] -o OUT.db\n"
            "Copies every finished (status ok) run of each input, with its per-epoch evaluations, into OUT.db\n"
            "(created if missing; its existing runs are kept). A config already finished in OUT.db (same config\n"
            "hash) is not copied again, so merging overlapping databases, or the same one twice, is safe.\n"
            "Failed and diverged rows of OUT.db are replaced by a finished copy. Interrupted rows (sittings of\n"
            "runs stopped and resumed from a checkpoint) are kept, and those of the inputs copied once each:\n"
            "their time counts in the report's compute time.\n"
            "  -o, --output OUT.db   the database to merge into (must not be one of the inputs)\n"
            "  --help                this text\n"
            "Exit status: 0 ok, 2 bad usage, 1 an input is missing or not a recallbench database, or a write\n"
            "failed (inputs merged before the failure stay merged; each input is one transaction).\n");
}

static long count_ok(sqlite3 *db, const char *schema) {
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s.runs WHERE status = 'ok'", schema);
    sqlite3_stmt *st;
    long n = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

static long count_ok_file(const char *path) {
    sqlite3 *db;
    long n = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        sqlite3_busy_timeout(db, 5000);
        n = count_ok(db, "main");
    }
    sqlite3_close(db);
    return n;
}

static int same_file(const char *a, const char *b) {
    struct stat sa, sb;
    if (stat(a, &sa) != 0 || stat(b, &sb) != 0) return 0;
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

int cmd_merge(int argc, char **argv) {
    const char *out = NULL, *v;
    const char **src = xcalloc((size_t)(argc > 0 ? argc : 1), sizeof(char *));
    int nsrc = 0;
    for (int i = frontier_arg_start(argc, argv, "merge"); i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); free(src); return 0; }
        else if ((v = frontier_flag_value(argc, argv, &i, "-o")) || (v = frontier_flag_value(argc, argv, &i, "--output")))
            out = v;
        else if (a[0] == '-') die_usage("merge: unknown flag '%s' (see recallbench merge --help)", a);
        else src[nsrc++] = a;
    }
    if (!out) die_usage("merge: give the output database with -o OUT.db (see recallbench merge --help)");
    if (nsrc == 0) die_usage("merge: give at least one input database");
    for (int i = 0; i < nsrc; i++) {
        if (!strcmp(src[i], out) || same_file(src[i], out))
            die_usage("merge: the output %s is also an input; merge into a new file", out);
        if (access(src[i], R_OK) != 0) die_runtime("cannot read results database %s: %s", src[i], strerror(errno));
    }
    char err[512];
    Store *s = store_open(out, err, sizeof err);
    if (!s) die_runtime("%s", err);
    long before = count_ok(store_db(s), "main");
    long total_copied = 0;
    for (int i = 0; i < nsrc; i++) {
        long have = count_ok_file(src[i]);
        int sit = 0;
        int n = store_merge_from(s, src[i], &sit, err, sizeof err);
        if (n < 0) {
            store_close(s);
            die_runtime("merge of %s into %s failed: %s (inputs before it are merged)", src[i], out, err);
        }
        total_copied += n;
        if (have >= 0)
            printf("%s: %d finished runs copied, %ld already in %s\n", src[i], n, have - n > 0 ? have - n : 0, out);
        else printf("%s: %d finished runs copied\n", src[i], n);
        if (sit) printf("%s: %d interrupted sitting%s copied\n", src[i], sit, sit == 1 ? "" : "s");
    }
    long after = count_ok(store_db(s), "main");
    printf("%s: %ld finished runs (%ld before, %ld copied from %d database%s)\n", out, after, before, total_copied,
           nsrc, nsrc == 1 ? "" : "s");
    store_close(s);
    free(src);
    return fflush(stdout) ? EXIT_RUNTIME : 0;
}
