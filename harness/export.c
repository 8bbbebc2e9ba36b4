// export.c — `recallbench export`: one CSV row per run (config, state, accuracy per test configuration, TVD,
// the in-context n-gram baselines, backend, device, revision, duration), and the reverse: CSV files imported
// into a temporary database that frontier, plot and report read. Depends on frontier.h, store.h, task.h, sqlite3.
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "frontier.h"
#include "store.h"
#include "task.h"
#include "util.h"

// ---------------------------------------------------------------------------------------------------------
// Small readers of the flat JSON objects recallbench writes (config_json: {"key":value,...} with values a
// number or a string without escapes; result_json: the train --json object).

// Value of "key" in json into out (unquoted); 0 if found, -1 if not.
static int json_get(const char *json, const char *key, char *out, size_t n) {
    if (!json) return -1;
    char pat[96];
    snprintf(pat, sizeof pat, "\"%s\"", key);
    for (const char *p = json; (p = strstr(p, pat)); p += strlen(pat)) {
        const char *q = p + strlen(pat);
        while (isspace((unsigned char)*q)) q++;
        if (*q != ':') continue;
        q++;
        while (isspace((unsigned char)*q)) q++;
        size_t o = 0;
        if (*q == '"') {
            for (q++; *q && *q != '"' && o + 1 < n; q++) {
                if (*q == '\\' && q[1]) q++;
                out[o++] = *q;
            }
        } else {
            while (*q && *q != ',' && *q != '}' && !isspace((unsigned char)*q) && o + 1 < n) out[o++] = *q++;
        }
        out[o] = 0;
        return 0;
    }
    return -1;
}

static int json_int(const char *json, const char *key, int dflt) {
    char b[64];
    return json_get(json, key, b, sizeof b) ? dflt : atoi(b);
}

// Seconds between two ISO-8601 UTC stamps ("2026-01-02T03:04:05Z", utc_timestamp's format); NAN if either
// is missing or malformed. One-second resolution.
static double stamp_seconds(const char *s) {
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    if (!s || !*s) return NAN;
    const char *e = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!e) return NAN;
    return (double)timegm(&tm);
}

// ---------------------------------------------------------------------------------------------------------
// Loading rows from a database

static const char *ctext(sqlite3_stmt *st, int i) {
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? (const char *)t : "";
}
static double col_real(sqlite3_stmt *st, int i) {
    return sqlite3_column_type(st, i) == SQLITE_NULL ? NAN : sqlite3_column_double(st, i);
}

// MQAR labels are "L=64,K=4": L and K back from a label (0 where absent).
static void label_LK(const char *label, int *L, int *K) {
    *L = *K = 0;
    sscanf(label, "L=%d,K=%d", L, K);
}

// The in-context 2-gram and 3-gram baselines of a RegBench run's test split (tasks.md: "baselines worth
// printing beside the models"). The test split depends only on (seed, test automata): dataset.c draws it
// from its own stream, so the training split is not generated (train_automata = 1). Cached per
// (seed, test automata): all runs of one seed share one test set.
typedef struct { uint64_t seed; int test_automata; double a2, t2, a3, t3; } NgramCache;
static NgramCache ng_cache[64];
static int ng_n;

static void ngram_baselines(uint64_t seed, int test_automata, double out[4]) {
    for (int i = 0; i < ng_n; i++)
        if (ng_cache[i].seed == seed && ng_cache[i].test_automata == test_automata) {
            out[0] = ng_cache[i].a2, out[1] = ng_cache[i].t2, out[2] = ng_cache[i].a3, out[3] = ng_cache[i].t3;
            return;
        }
    TaskParams tp;
    memset(&tp, 0, sizeof tp);
    tp.task = TASK_REGBENCH;
    tp.train_automata = 1;
    tp.test_automata = test_automata;
    Dataset *ds = task_generate(&tp, seed);
    if (!ds) die_runtime("out of memory generating the RegBench test split (seed %llu)", (unsigned long long)seed);
    regbench_ngram(&ds->test[0], 2, &out[0], &out[1]);
    regbench_ngram(&ds->test[0], 3, &out[2], &out[3]);
    dataset_free(ds);
    if (ng_n < 64) ng_cache[ng_n++] = (NgramCache){seed, test_automata, out[0], out[1], out[2], out[3]};
}

static int has_baseline_table(sqlite3 *db) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_master WHERE type='table' AND name='rb_baselines'", -1, &st,
                           NULL) != SQLITE_OK)
        return 0;
    int r = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    return r;
}

int export_load(sqlite3 *db, const char *task, int baselines, ExRow **out) {
    const char *sql =
        "SELECT id, task, COALESCE(NULLIF(variant,''), NULLIF(mixer,''), model, '?'), mixer, model, n_layers, d_model,"
        " heads, slots, feature_dim, state_dim, lr, seed, epochs, epochs_done, status, state_floats, accuracy,"
        " backend, host, git_rev, started, finished, tokens_per_s, config_hash, state_formula, config_json,"
        " result_json FROM runs WHERE (?1 IS NULL OR task = ?1) ORDER BY id";
    sqlite3_stmt *st, *ev, *bl = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) die_runtime("cannot read runs: %s", sqlite3_errmsg(db));
    if (task) sqlite3_bind_text(st, 1, task, -1, SQLITE_TRANSIENT);
    // The final evaluation: every test configuration at the run's last evaluated epoch.
    if (sqlite3_prepare_v2(db,
                           "SELECT split, accuracy, tvd FROM evals WHERE run_id = ?1 AND split != 'train' AND epoch ="
                           " (SELECT max(epoch) FROM evals WHERE run_id = ?1 AND split != 'train') ORDER BY L, K, rowid",
                           -1, &ev, NULL) != SQLITE_OK)
        die_runtime("cannot read evals: %s", sqlite3_errmsg(db));
    int stored = has_baseline_table(db);
    if (stored && sqlite3_prepare_v2(db, "SELECT ngram2_accuracy, ngram2_tvd, ngram3_accuracy, ngram3_tvd FROM "
                                         "rb_baselines WHERE run_id = ?1", -1, &bl, NULL) != SQLITE_OK)
        die_runtime("cannot read baselines: %s", sqlite3_errmsg(db));
    int cap = 64, n = 0, rc;
    ExRow *r = xmalloc(sizeof(ExRow) * (size_t)cap);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) r = xrealloc(r, sizeof(ExRow) * (size_t)(cap *= 2));
        ExRow *x = &r[n++];
        memset(x, 0, sizeof *x);
        x->run_id = sqlite3_column_int64(st, 0);
        snprintf(x->task, sizeof x->task, "%s", ctext(st, 1));
        snprintf(x->variant, sizeof x->variant, "%s", ctext(st, 2));
        snprintf(x->mixer, sizeof x->mixer, "%s", ctext(st, 3));
        snprintf(x->layers, sizeof x->layers, "%s", ctext(st, 4));
        x->n_layers = sqlite3_column_int(st, 5);
        x->d_model = sqlite3_column_int(st, 6);
        x->heads = sqlite3_column_int(st, 7);
        x->slots = sqlite3_column_int(st, 8);
        x->feature_dim = sqlite3_column_int(st, 9);
        x->state_dim = sqlite3_column_int(st, 10);
        x->lr = col_real(st, 11);
        int64_t sv = sqlite3_column_int64(st, 12);
        memcpy(&x->seed, &sv, sizeof sv);   // store.c keeps the uint64's bits in a signed column
        x->epochs = sqlite3_column_int(st, 13);
        x->epochs_done = sqlite3_column_int(st, 14);
        snprintf(x->status, sizeof x->status, "%s", ctext(st, 15));
        x->state_floats = col_real(st, 16);
        x->accuracy = col_real(st, 17);
        snprintf(x->backend, sizeof x->backend, "%s", ctext(st, 18));
        snprintf(x->host, sizeof x->host, "%s", ctext(st, 19));
        snprintf(x->git_rev, sizeof x->git_rev, "%s", ctext(st, 20));
        snprintf(x->started, sizeof x->started, "%s", ctext(st, 21));
        snprintf(x->finished, sizeof x->finished, "%s", ctext(st, 22));
        x->tokens_per_s = col_real(st, 23);
        snprintf(x->config_hash, sizeof x->config_hash, "%s", ctext(st, 24));
        snprintf(x->state_formula, sizeof x->state_formula, "%s", ctext(st, 25));
        x->config_json = xstrdup(ctext(st, 26));
        const char *rj = ctext(st, 27);
        if (json_get(rj, "device", x->device, sizeof x->device)) snprintf(x->device, sizeof x->device, "%s", x->backend);
        // Knobs the indexed columns keep only in part (per-head lists, the readout) come from the config.
        const char *cj = x->config_json;
        if (json_get(cj, "window", x->window, sizeof x->window)) x->window[0] = 0;
        if (json_get(cj, "freqs", x->freqs, sizeof x->freqs)) x->freqs[0] = 0;
        if (json_get(cj, "bla-readout", x->readout, sizeof x->readout)) x->readout[0] = 0;
        if (json_get(cj, "feature-map", x->feature_map, sizeof x->feature_map)) x->feature_map[0] = 0;
        if (json_get(cj, "precision", x->precision, sizeof x->precision)) x->precision[0] = 0;  // cuda runs; cpu bf16
        x->train_automata = json_int(cj, "train-automata", 0);
        x->test_automata = json_int(cj, "test-automata", 0);
        double t0 = stamp_seconds(x->started), t1 = stamp_seconds(x->finished);
        x->duration_s = isfinite(t0) && isfinite(t1) && t1 >= t0 ? t1 - t0 : NAN;
        sqlite3_bind_int64(ev, 1, x->run_id);
        double tsum = 0;
        int tn = 0;
        while (sqlite3_step(ev) == SQLITE_ROW && x->nacc < EX_MAX_SPLITS) {
            snprintf(x->labels[x->nacc], sizeof x->labels[0], "%s", ctext(ev, 0));
            x->acc[x->nacc++] = col_real(ev, 1);
            double t = col_real(ev, 2);
            if (isfinite(t)) tsum += t, tn++;
        }
        sqlite3_reset(ev);
        x->tvd = tn ? tsum / tn : NAN;   // as train.c reports it: the mean over test splits
        for (int k = 0; k < 4; k++) x->ngram[k] = NAN;
        if (!strcmp(x->task, "regbench")) {
            if (stored) {
                sqlite3_bind_int64(bl, 1, x->run_id);
                if (sqlite3_step(bl) == SQLITE_ROW)
                    for (int k = 0; k < 4; k++) x->ngram[k] = col_real(bl, k);
                sqlite3_reset(bl);
            } else if (baselines && x->test_automata > 0) {
                ngram_baselines(x->seed, x->test_automata, x->ngram);
            }
        }
    }
    if (rc != SQLITE_DONE) die_runtime("cannot read runs: %s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    sqlite3_finalize(ev);
    sqlite3_finalize(bl);
    *out = r;
    return n;
}

void export_free(ExRow *r, int n) {
    for (int i = 0; i < n; i++) free(r[i].config_json);
    free(r);
}

// ---------------------------------------------------------------------------------------------------------
// CSV (RFC 4180: fields with a comma, quote or newline are quoted, quotes doubled)

static void csv_field(FILE *f, const char *s) {
    if (!strpbrk(s, ",\"\n\r")) { fputs(s, f); return; }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}
static void csv_real(FILE *f, double v) {   // %.17g: the import reads back the same double
    if (isfinite(v)) fprintf(f, "%.17g", v);
}

// acc_<label> column name: "L=64,K=4" -> acc_L64_K4, "test" -> acc_test.
static void acc_column(const char *label, char *out, size_t n) {
    int L, K;
    label_LK(label, &L, &K);
    if (L > 0) snprintf(out, n, "acc_L%d_K%d", L, K);
    else if (snprintf(out, n, "acc_%s", label) >= (int)n) out[n - 1] = 0;  // labels are at most 31 characters
}
static void column_label(const char *col, char *out, size_t n) {
    int L, K;
    if (sscanf(col, "acc_L%d_K%d", &L, &K) == 2) snprintf(out, n, "L=%d,K=%d", L, K);
    else snprintf(out, n, "%s", col + 4);
}

static const char *const FIXED_COLS[] = {
    "run_id", "task", "variant", "mixer", "layers", "n_layers", "d_model", "heads", "window", "freqs", "readout",
    "feature_map", "slots", "feature_dim", "state_dim", "train_automata", "test_automata", "lr", "seed", "epochs",
    "epochs_done", "status", "state_floats", "state_bytes", "accuracy", "tvd"};
static const char *const TAIL_COLS[] = {
    "ngram2_accuracy", "ngram2_tvd", "ngram3_accuracy", "ngram3_tvd", "backend", "device", "host", "git_rev",
    "started", "finished", "duration_s", "tokens_per_s", "config_hash", "state_formula", "config_json"};
#define NFIXED ((int)(sizeof FIXED_COLS / sizeof *FIXED_COLS))
#define NTAIL ((int)(sizeof TAIL_COLS / sizeof *TAIL_COLS))

int export_split_labels(const ExRow *r, int n, const char *task, char (*labels)[32], int max) {
    int nl = 0;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < r[i].nacc && (!task || !strcmp(r[i].task, task)); k++) {
            int have = 0;
            for (int j = 0; j < nl && !have; j++) have = !strcmp(labels[j], r[i].labels[k]);
            if (!have && nl < max) snprintf(labels[nl++], 32, "%.31s", r[i].labels[k]);
        }
    return nl;
}

void export_write_csv(FILE *f, const ExRow *r, int n) {
    // Accuracy columns: the union of the test configurations, in order of first appearance (runs list
    // theirs in (L, K) order).
    char labels[64][32];
    int nl = export_split_labels(r, n, NULL, labels, 64);
    for (int c = 0; c < NFIXED; c++) fprintf(f, "%s%s", c ? "," : "", FIXED_COLS[c]);
    for (int j = 0; j < nl; j++) {
        char col[48];
        acc_column(labels[j], col, sizeof col);
        fprintf(f, ",%s", col);
    }
    for (int c = 0; c < NTAIL; c++) fprintf(f, ",%s", TAIL_COLS[c]);
    fputc('\n', f);
    for (int i = 0; i < n; i++) {
        const ExRow *x = &r[i];
        fprintf(f, "%lld,", (long long)x->run_id);
        csv_field(f, x->task), fputc(',', f);
        csv_field(f, x->variant), fputc(',', f);
        csv_field(f, x->mixer), fputc(',', f);
        csv_field(f, x->layers);
        fprintf(f, ",%d,%d,%d,", x->n_layers, x->d_model, x->heads);
        csv_field(f, x->window), fputc(',', f);
        csv_field(f, x->freqs), fputc(',', f);
        csv_field(f, x->readout), fputc(',', f);
        csv_field(f, x->feature_map);
        fprintf(f, ",%d,%d,%d,%d,%d,", x->slots, x->feature_dim, x->state_dim, x->train_automata, x->test_automata);
        csv_real(f, x->lr);
        fprintf(f, ",%llu,%d,%d,", (unsigned long long)x->seed, x->epochs, x->epochs_done);
        csv_field(f, x->status), fputc(',', f);
        csv_real(f, x->state_floats), fputc(',', f);
        csv_real(f, 4 * x->state_floats), fputc(',', f);
        csv_real(f, x->accuracy), fputc(',', f);
        csv_real(f, x->tvd);
        for (int j = 0; j < nl; j++) {
            fputc(',', f);
            for (int k = 0; k < x->nacc; k++)
                if (!strcmp(x->labels[k], labels[j])) csv_real(f, x->acc[k]);
        }
        for (int k = 0; k < 4; k++) fputc(',', f), csv_real(f, x->ngram[k]);
        const char *texts[] = {x->backend, x->device, x->host, x->git_rev, x->started, x->finished};
        for (int k = 0; k < 6; k++) fputc(',', f), csv_field(f, texts[k]);
        fputc(',', f), csv_real(f, x->duration_s);
        fputc(',', f), csv_real(f, x->tokens_per_s);
        fputc(',', f), csv_field(f, x->config_hash);
        fputc(',', f), csv_field(f, x->state_formula);
        fputc(',', f), csv_field(f, x->config_json ? x->config_json : "");
        fputc('\n', f);
    }
}

// One CSV record into fields (malloc'd strings in *fields, count returned); 0 at end of file, -1 on a
// quote left open at the end of the file.
static int csv_record(FILE *f, char ***fields, int *cap) {
    int nf = 0, c = fgetc(f);
    if (c == EOF) return 0;
    size_t bcap = 256, bl = 0;
    char *buf = xmalloc(bcap);
    int quoted = 0, any = 0;
    for (;; c = fgetc(f)) {
        if (c == EOF && quoted) { free(buf); return -1; }
        int end_field = !quoted && (c == ',' || c == '\n' || c == EOF);
        if (end_field) {
            if (bl && buf[bl - 1] == '\r' && c != ',') bl--;
            buf[bl] = 0;
            if (nf == *cap) *fields = xrealloc(*fields, sizeof(char *) * (size_t)(*cap = *cap ? 2 * *cap : 64));
            (*fields)[nf++] = xstrdup(buf);
            bl = 0;
            any = 0;
            if (c != ',') break;
            continue;
        }
        if (c == '"') {
            if (!quoted && !any) { quoted = 1; any = 1; continue; }
            if (quoted) {
                int d = fgetc(f);
                if (d == '"') { c = '"'; }
                else { quoted = 0; ungetc(d, f); continue; }
            }
        }
        if (bl + 2 > bcap) buf = xrealloc(buf, bcap *= 2);
        buf[bl++] = (char)c;
        any = 1;
    }
    free(buf);
    return nf;
}

static double parse_real(const char *s) {
    if (!*s) return NAN;
    char *e;
    double v = strtod(s, &e);
    return *e ? NAN : v;
}

// Reads an export CSV, appending to *rows (count in *n). Returns 1 if read, 0 if the file is another CSV
// (its header does not start with run_id,task), -1 with err on a malformed file.
static int read_csv(const char *path, ExRow **rows, int *n, int *cap, char *err, size_t errn) {
    FILE *f = fopen(path, "r");
    if (!f) { snprintf(err, errn, "cannot read %s: %s", path, strerror(errno)); return -1; }
    char **hdr = NULL, **fld = NULL;
    int hcap = 0, fcap = 0;
    int nh = csv_record(f, &hdr, &hcap);
    if (nh < 2 || strcmp(hdr[0], "run_id") || strcmp(hdr[1], "task")) {
        for (int i = 0; i < nh; i++) free(hdr[i]);
        free(hdr);
        fclose(f);
        return 0;
    }
    int line = 1, rc = 1, nf;
    while ((nf = csv_record(f, &fld, &fcap)) != 0) {
        line++;
        if (nf < 0 || nf != nh) {
            if (nf == 1 && !fld[0][0]) { free(fld[0]); continue; }   // a blank line
            snprintf(err, errn, "%s line %d: %d fields, the header has %d", path, line, nf < 0 ? 0 : nf, nh);
            rc = -1;
            for (int i = 0; i < nf; i++) free(fld[i]);
            break;
        }
        if (*n == *cap) *rows = xrealloc(*rows, sizeof(ExRow) * (size_t)(*cap = *cap ? 2 * *cap : 64));
        ExRow *x = &(*rows)[(*n)++];
        memset(x, 0, sizeof *x);
        for (int k = 0; k < 4; k++) x->ngram[k] = NAN;
        x->accuracy = x->tvd = x->lr = x->state_floats = x->duration_s = x->tokens_per_s = NAN;
        for (int c = 0; c < nh; c++) {
            const char *h = hdr[c], *v = fld[c];
#define TXT(name, field) else if (!strcmp(h, name)) snprintf(x->field, sizeof x->field, "%s", v)
#define INT(name, field) else if (!strcmp(h, name)) x->field = atoi(v)
#define REAL(name, field) else if (!strcmp(h, name)) x->field = parse_real(v)
            if (!strcmp(h, "run_id")) x->run_id = atoll(v);
            TXT("task", task); TXT("variant", variant); TXT("mixer", mixer); TXT("layers", layers);
            INT("n_layers", n_layers); INT("d_model", d_model); INT("heads", heads);
            TXT("window", window); TXT("freqs", freqs); TXT("readout", readout); TXT("feature_map", feature_map);
            INT("slots", slots); INT("feature_dim", feature_dim); INT("state_dim", state_dim);
            INT("train_automata", train_automata); INT("test_automata", test_automata);
            REAL("lr", lr); INT("epochs", epochs); INT("epochs_done", epochs_done); TXT("status", status);
            REAL("state_floats", state_floats); REAL("accuracy", accuracy); REAL("tvd", tvd);
            REAL("ngram2_accuracy", ngram[0]); REAL("ngram2_tvd", ngram[1]);
            REAL("ngram3_accuracy", ngram[2]); REAL("ngram3_tvd", ngram[3]);
            TXT("backend", backend); TXT("device", device); TXT("host", host); TXT("git_rev", git_rev);
            TXT("started", started); TXT("finished", finished); REAL("duration_s", duration_s);
            REAL("tokens_per_s", tokens_per_s); TXT("config_hash", config_hash); TXT("state_formula", state_formula);
            else if (!strcmp(h, "seed")) x->seed = strtoull(v, NULL, 10);
            else if (!strcmp(h, "config_json")) x->config_json = xstrdup(v);
            else if (!strncmp(h, "acc_", 4) && *v && x->nacc < EX_MAX_SPLITS) {
                column_label(h, x->labels[x->nacc], sizeof x->labels[0]);
                x->acc[x->nacc++] = parse_real(v);
            }
#undef TXT
#undef INT
#undef REAL
        }
        if (!x->config_json) x->config_json = xstrdup("");
        for (int i = 0; i < nf; i++) free(fld[i]);
    }
    for (int i = 0; i < nh; i++) free(hdr[i]);
    free(hdr);
    free(fld);
    fclose(f);
    return rc;
}

// ---------------------------------------------------------------------------------------------------------
// Import: CSV files into a temporary database with the store's schema

static char tmp_dir[4096], tmp_db[4200];
static void remove_tmp(void) {
    if (!tmp_db[0]) return;
    const char *suffix[] = {"", "-wal", "-shm", "-journal"};
    for (int i = 0; i < 4; i++) {
        char p[4300];
        snprintf(p, sizeof p, "%s%s", tmp_db, suffix[i]);
        unlink(p);
    }
    rmdir(tmp_dir);
    tmp_db[0] = 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

// Expands a --csv-in value: comma-separated files or directories (a directory: its *.csv files, in name order).
static int csv_paths(const char *spec, char ***out, int **named) {
    int n = 0, cap = 8;
    char **p = xmalloc(sizeof(char *) * (size_t)cap);
    int *nm = xmalloc(sizeof(int) * (size_t)cap);
    char *s = xstrdup(spec), *save;
    for (char *t = strtok_r(s, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        struct stat sb;
        if (stat(t, &sb) != 0) die_runtime("cannot read %s: %s", t, strerror(errno));
        if (S_ISDIR(sb.st_mode)) {
            DIR *d = opendir(t);
            if (!d) die_runtime("cannot read directory %s: %s", t, strerror(errno));
            int first = n;
            for (struct dirent *e; (e = readdir(d));) {
                size_t l = strlen(e->d_name);
                if (l < 5 || strcmp(e->d_name + l - 4, ".csv")) continue;
                if (n == cap) {
                    p = xrealloc(p, sizeof(char *) * (size_t)(cap *= 2));
                    nm = xrealloc(nm, sizeof(int) * (size_t)cap);
                }
                char full[4400];
                snprintf(full, sizeof full, "%s/%s", t, e->d_name);
                nm[n] = 0;
                p[n++] = xstrdup(full);
            }
            closedir(d);
            qsort(p + first, (size_t)(n - first), sizeof(char *), cmp_str);
        } else {
            if (n == cap) {
                p = xrealloc(p, sizeof(char *) * (size_t)(cap *= 2));
                nm = xrealloc(nm, sizeof(int) * (size_t)cap);
            }
            nm[n] = 1;
            p[n++] = xstrdup(t);
        }
    }
    free(s);
    *out = p;
    *named = nm;
    return n;
}

static void bind_txt(sqlite3_stmt *st, int i, const char *v) {
    if (v && *v) sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
    else sqlite3_bind_null(st, i);
}
static void bind_real(sqlite3_stmt *st, int i, double v) {
    if (isfinite(v)) sqlite3_bind_double(st, i, v);
    else sqlite3_bind_null(st, i);
}

Store *export_import(const char *spec, int *nfiles) {
    char **paths, err[4600];
    int *named;
    int np = csv_paths(spec, &paths, &named), cap = 0, n = 0, files = 0;
    ExRow *rows = NULL;
    for (int i = 0; i < np; i++) {
        int rc = read_csv(paths[i], &rows, &n, &cap, err, sizeof err);
        if (rc < 0) die_runtime("%s", err);
        if (rc > 0) files++;
        // A file named explicitly must be an export; a directory may hold other CSVs (frontier tables).
        else if (named[i]) die_usage("--csv-in %s: not a recallbench export (its header must start with run_id,task)", paths[i]);
    }
    if (!files) die_usage("--csv-in %s: no recallbench export CSV there (recallbench export writes them)", spec);
    const char *td = getenv("TMPDIR");
    snprintf(tmp_dir, sizeof tmp_dir, "%s/rb-import-XXXXXX", td && *td ? td : "/tmp");
    if (!mkdtemp(tmp_dir)) die_runtime("cannot create a temporary directory in %s: %s", td && *td ? td : "/tmp", strerror(errno));
    snprintf(tmp_db, sizeof tmp_db, "%s/import.db", tmp_dir);
    atexit(remove_tmp);
    Store *s = store_open(tmp_db, err, sizeof err);
    if (!s) die_runtime("%s", err);
    sqlite3 *db = store_db(s);
    char *msg = NULL;
    if (sqlite3_exec(db, "CREATE TABLE rb_baselines(run_id INTEGER PRIMARY KEY, ngram2_accuracy REAL, ngram2_tvd REAL,"
                         " ngram3_accuracy REAL, ngram3_tvd REAL); BEGIN", NULL, NULL, &msg) != SQLITE_OK)
        die_runtime("cannot build the temporary database %s: %s", tmp_db, msg ? msg : sqlite3_errmsg(db));
    sqlite3_stmt *ins, *ev, *bl, *has;
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO runs(id, config_hash, config_json, task, model, mixer, variant, d_model, n_layers,"
                           " heads, window, freqs, slots, feature_dim, state_dim, lr, seed, epochs, backend, state_floats,"
                           " state_formula, git_rev, host, started, finished, status, accuracy, epochs_done, tokens_per_s,"
                           " result_json) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,?20,"
                           "?21,?22,?23,?24,?25,?26,?27,?28,?29,?30)", -1, &ins, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "INSERT INTO evals(run_id, epoch, split, L, K, accuracy, loss, tvd) VALUES(?1,?2,?3,?4,?5,"
                               "?6,NULL,?7)", -1, &ev, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "INSERT INTO rb_baselines VALUES(?1,?2,?3,?4,?5)", -1, &bl, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "SELECT 1 FROM runs WHERE id = ?1", -1, &has, NULL) != SQLITE_OK)
        die_runtime("cannot build the temporary database: %s", sqlite3_errmsg(db));
    int64_t max_id = 0;
    for (int i = 0; i < n; i++)
        if (rows[i].run_id > max_id) max_id = rows[i].run_id;
    for (int i = 0; i < n; i++) {
        ExRow *x = &rows[i];
        // Run ids are kept (the frontier names a point's best run by id); a file whose ids another file
        // already took (two sweeps' databases both start at 1) gets fresh ids after the largest.
        sqlite3_bind_int64(has, 1, x->run_id);
        int taken = x->run_id <= 0 || sqlite3_step(has) == SQLITE_ROW;
        sqlite3_reset(has);
        if (taken) x->run_id = ++max_id;
        int c = 1;
        sqlite3_bind_int64(ins, c++, x->run_id);
        bind_txt(ins, c++, x->config_hash);
        sqlite3_bind_text(ins, c++, x->config_json, -1, SQLITE_TRANSIENT);
        bind_txt(ins, c++, x->task);
        bind_txt(ins, c++, x->layers);
        bind_txt(ins, c++, x->mixer);
        bind_txt(ins, c++, x->variant);
        sqlite3_bind_int(ins, c++, x->d_model);
        sqlite3_bind_int(ins, c++, x->n_layers);
        sqlite3_bind_int(ins, c++, x->heads);
        sqlite3_bind_int(ins, c++, atoi(x->window));   // the indexed columns hold the first head's value
        sqlite3_bind_int(ins, c++, atoi(x->freqs));
        sqlite3_bind_int(ins, c++, x->slots);
        sqlite3_bind_int(ins, c++, x->feature_dim);
        sqlite3_bind_int(ins, c++, x->state_dim);
        bind_real(ins, c++, x->lr);
        int64_t sv;
        memcpy(&sv, &x->seed, sizeof sv);
        sqlite3_bind_int64(ins, c++, sv);
        sqlite3_bind_int(ins, c++, x->epochs);
        bind_txt(ins, c++, x->backend);
        bind_real(ins, c++, x->state_floats);
        bind_txt(ins, c++, x->state_formula);
        bind_txt(ins, c++, x->git_rev);
        bind_txt(ins, c++, x->host);
        bind_txt(ins, c++, x->started);
        bind_txt(ins, c++, x->finished);
        sqlite3_bind_text(ins, c++, x->status[0] ? x->status : "ok", -1, SQLITE_TRANSIENT);
        bind_real(ins, c++, x->accuracy);
        sqlite3_bind_int(ins, c++, x->epochs_done);
        bind_real(ins, c++, x->tokens_per_s);
        char rj[256];
        snprintf(rj, sizeof rj, "{\"imported\": true, \"device\": \"%s\"}", x->device);
        sqlite3_bind_text(ins, c++, rj, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(ins) != SQLITE_DONE) die_runtime("cannot import run %lld: %s", (long long)x->run_id, sqlite3_errmsg(db));
        sqlite3_reset(ins);
        for (int k = 0; k < x->nacc; k++) {
            int L, K;
            label_LK(x->labels[k], &L, &K);
            sqlite3_bind_int64(ev, 1, x->run_id);
            sqlite3_bind_int(ev, 2, x->epochs_done > 0 ? x->epochs_done : 1);
            sqlite3_bind_text(ev, 3, x->labels[k], -1, SQLITE_TRANSIENT);
            sqlite3_bind_int(ev, 4, L);
            sqlite3_bind_int(ev, 5, K);
            bind_real(ev, 6, x->acc[k]);
            bind_real(ev, 7, !strcmp(x->task, "regbench") ? x->tvd : NAN);
            if (sqlite3_step(ev) != SQLITE_DONE) die_runtime("cannot import evals: %s", sqlite3_errmsg(db));
            sqlite3_reset(ev);
        }
        if (!strcmp(x->task, "regbench")) {
            sqlite3_bind_int64(bl, 1, x->run_id);
            for (int k = 0; k < 4; k++) bind_real(bl, 2 + k, x->ngram[k]);
            if (sqlite3_step(bl) != SQLITE_DONE) die_runtime("cannot import baselines: %s", sqlite3_errmsg(db));
            sqlite3_reset(bl);
        }
    }
    sqlite3_finalize(ins);
    sqlite3_finalize(ev);
    sqlite3_finalize(bl);
    sqlite3_finalize(has);
    if (sqlite3_exec(db, "COMMIT", NULL, NULL, &msg) != SQLITE_OK)
        die_runtime("cannot build the temporary database: %s", msg ? msg : sqlite3_errmsg(db));
    for (int i = 0; i < np; i++) free(paths[i]);
    free(paths);
    free(named);
    export_free(rows, n);
    if (nfiles) *nfiles = files;
    return s;
}

Store *export_open_source(const char *db, const char *csv_in, const char **label) {
    if (db && csv_in) die_usage("--db and --csv-in: give one source, a database or exported CSV files");
    if (csv_in) {
        *label = csv_in;
        return export_import(csv_in, NULL);
    }
    *label = db ? db : frontier_default_db();
    return frontier_open_existing(*label);
}

// ---------------------------------------------------------------------------------------------------------
// The command

static void usage(FILE *f) {
    fprintf(f,
            "usage: recallbench export [--db PATH] [--task mqar|regbench] [--status ok|all] --out FILE.csv\n"
            "Writes one CSV row per run of a results database: run_id, task, variant, mixer, layers, n_layers, d_model,\n"
            "heads, window, freqs, readout, feature_map, slots, feature_dim, state_dim, train_automata, test_automata,\n"
            "lr, seed, epochs, epochs_done, status, state_floats, state_bytes, accuracy (mean over test configurations),\n"
            "tvd (RegBench), one acc_<test config> column per test configuration (MQAR acc_L64_K4 ..., RegBench\n"
            "acc_test; the final evaluation), the RegBench in-context 2-gram and 3-gram baselines of the run's test\n"
            "split (ngram2_accuracy, ngram2_tvd, ngram3_accuracy, ngram3_tvd; regenerated from the seed), backend,\n"
            "device, host, git_rev, started, finished, duration_s, tokens_per_s, config_hash, state_formula and the\n"
            "canonical config_json. frontier, plot and report read such files back with --csv-in (no database).\n"
            "  --db PATH       results database (default %s)\n"
            "  --task T        only this task: mqar | regbench (default: every run)\n"
            "  --status S      ok: only finished runs; all: every row, any status (default all)\n"
            "  --out FILE      the CSV to write (- for stdout); required\n"
            "  --help          this text\n"
            "Exit status: 0 ok, 2 bad flag or value, 1 database or file error.\n",
            frontier_default_db());
}

int cmd_export(int argc, char **argv) {
    const char *db = NULL, *task = NULL, *out = NULL, *status = "all", *v;
    for (int i = frontier_arg_start(argc, argv, "export"); i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return 0; }
        else if ((v = frontier_flag_value(argc, argv, &i, "--db"))) db = v;
        else if ((v = frontier_flag_value(argc, argv, &i, "--task"))) frontier_check_task(task = v);
        else if ((v = frontier_flag_value(argc, argv, &i, "--out"))) out = v;
        else if ((v = frontier_flag_value(argc, argv, &i, "--status"))) {
            if (strcmp(v, "ok") && strcmp(v, "all")) die_usage("--status %s: must be ok or all", v);
            status = v;
        } else die_usage("export: unknown argument '%s' (see recallbench export --help)", a);
    }
    if (!out) die_usage("export: --out FILE is required (- for stdout)");
    if (!*out) die_usage("--out '': give a file name (- for stdout)");
    if (!db) db = frontier_default_db();
    Store *s = frontier_open_existing(db);
    ExRow *r;
    int n = export_load(store_db(s), task, 1, &r);
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (!strcmp(status, "ok") && strcmp(r[i].status, "ok")) { free(r[i].config_json); continue; }
        r[k++] = r[i];
    }
    char err[4400];
    OutFile of;
    FILE *f = stdout;
    if (strcmp(out, "-")) {
        frontier_mkdir_parent(out);
        int usage_err;
        if (out_open(&of, out, &usage_err, err, sizeof err)) {
            if (usage_err) die_usage("%s", err);
            die_runtime("%s", err);
        }
        f = of.f;
    }
    export_write_csv(f, r, k);
    if (strcmp(out, "-")) {
        if (out_commit(&of, err, sizeof err)) die_runtime("%s", err);
        fprintf(stderr, "wrote %s: %d runs\n", out, k);
    }
    export_free(r, k);
    store_close(s);
    return 0;
}
