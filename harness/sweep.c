// sweep.c — `recallbench sweep SPEC.ini`: expands an INI grid, skips configs finished in the store (by config
// hash), runs the rest in -j worker processes (`recallbench train ... --json`), resumable after a kill.
// Depends on config.h, store.h, util.h, inih (ini.h), POSIX (fork/exec, poll, waitpid).
#include "sweep.h"
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <ini.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include <sqlite3.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif
#include "frontier.h"
#include "store.h"
#include "util.h"

#define SPEC_GROUPS (G_TASK | G_MODEL | G_MIXER | G_TRAIN)
#define MAX_WORKERS 256

// ---------------------------------------------------------------------------------------------------------
// Spec parsing (inih; a line-counting reader gives every key its line number)

typedef struct {
    FILE *f;
    int line, too_long;
} Reader;

typedef struct {
    SweepSpec *s;
    Reader *rd;
    char err[512];
    int failed;
} ParseState;

static char *count_lines(char *str, int num, void *stream) {
    Reader *r = stream;
    char *s = fgets(str, num, r->f);
    if (!s) return NULL;
    r->line++;
    size_t n = strlen(s);
    if (n > 0 && s[n - 1] != '\n' && !feof(r->f)) {
        int ch;
        while ((ch = fgetc(r->f)) != EOF && ch != '\n') {}
        if (!r->too_long) r->too_long = r->line;
    }
    return s;
}

static void block_free(SpecBlock *b) {
    for (int i = 0; i < b->nkeys; i++) {
        for (int j = 0; j < b->keys[i].nvals; j++) free(b->keys[i].vals[j]);
        free(b->keys[i].vals);
    }
    free(b->keys);
    b->keys = NULL;
    b->nkeys = 0;
}

void sweep_spec_free(SweepSpec *s) {
    block_free(&s->sweep);
    for (int i = 0; i < s->nmodels; i++) block_free(&s->models[i]);
    free(s->models);
    s->models = NULL;
    s->nmodels = 0;
}

static SpecKey *block_key(SpecBlock *b, const char *key, int line) {
    for (int i = 0; i < b->nkeys; i++)
        if (!strcmp(b->keys[i].key, key)) return &b->keys[i];
    b->keys = xrealloc(b->keys, sizeof(SpecKey) * (size_t)(b->nkeys + 1));
    SpecKey *k = &b->keys[b->nkeys++];
    memset(k, 0, sizeof *k);
    snprintf(k->key, sizeof k->key, "%s", key);
    k->line = line;
    return k;
}

static const SpecKey *find_key(const SpecBlock *b, const char *key) {
    for (int i = 0; i < b->nkeys; i++)
        if (!strcmp(b->keys[i].key, key)) return &b->keys[i];
    return NULL;
}

static const char *block_title(const SpecBlock *b, char *buf, size_t n) {
    if (b->name[0]) snprintf(buf, n, "[model %s]", b->name);
    else snprintf(buf, n, "[sweep]");
    return buf;
}

static int parse_fail(ParseState *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int parse_fail(ParseState *ps, const char *fmt, ...) {
    if (ps->failed) return 0;
    ps->failed = 1;
    int o = snprintf(ps->err, sizeof ps->err, "%s:%d: ", ps->s->file, ps->rd->line);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ps->err + o, sizeof ps->err - (size_t)o, fmt, ap);
    va_end(ap);
    return 0;
}

static int on_key(void *user, const char *section, const char *name, const char *value) {
    ParseState *ps = user;
    SweepSpec *s = ps->s;
    if (ps->failed) return 0;
    SpecBlock *b;
    if (!strcmp(section, "sweep")) {
        b = &s->sweep;
    } else if (!strncmp(section, "model ", 6) && section[6]) {
        const char *nm = section + 6;
        while (*nm == ' ') nm++;
        b = NULL;
        for (int i = 0; i < s->nmodels; i++)
            if (!strcmp(s->models[i].name, nm)) b = &s->models[i];
        if (!b) {
            if (strlen(nm) >= sizeof b->name || strpbrk(nm, " \t,"))
                return parse_fail(ps, "[%s]: model names are one word of at most 63 characters", section);
            s->models = xrealloc(s->models, sizeof(SpecBlock) * (size_t)(s->nmodels + 1));
            b = &s->models[s->nmodels++];
            memset(b, 0, sizeof *b);
            snprintf(b->name, sizeof b->name, "%s", nm);
            b->line = ps->rd->line;
        }
    } else if (!section[0]) {
        return parse_fail(ps, "%s = %s: keys must be inside a [sweep] or [model NAME] section", name, value);
    } else {
        return parse_fail(ps, "unknown section [%s]: use [sweep] and [model NAME]", section);
    }
    char title[96];
    block_title(b, title, sizeof title);
    if (!*value) return parse_fail(ps, "%s %s has no value", title, name);
    if (b == &s->sweep && !strcmp(name, "eval-every")) {  // a run option every worker gets (not hashed)
        char *end;
        long v = strtol(value, &end, 10);
        if (end == value || *end || v < 1 || v > 1000000)
            return parse_fail(ps, "[sweep] eval-every = %s: must be an integer in [1, 1000000]", value);
        s->eval_every = (int)v;
        return 1;
    }
    if (b == &s->sweep && (!strcmp(name, "name") || !strcmp(name, "db"))) {
        if (strpbrk(value, " \t")) return parse_fail(ps, "[sweep] %s = %s: one word (no spaces)", name, value);
        if (!strcmp(name, "name")) snprintf(s->name, sizeof s->name, "%s", value);
        else snprintf(s->db, sizeof s->db, "%s", value);
        return 1;
    }
    char key[48];
    snprintf(key, sizeof key, "%s", name);
    for (char *p = key; *p; p++)
        if (*p == '_') *p = '-';
    // Every item is checked now, so a typo fails before anything runs (config_set names the allowed range).
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", value);
    SpecKey *k = NULL;
    for (char *sv, *item = strtok_r(buf, " \t", &sv); item; item = strtok_r(NULL, " \t", &sv)) {
        if (item[0] == ';' || item[0] == '#') break;  // a comment (inih leaves it on continuation lines)
        RunConfig scratch;
        config_defaults(&scratch);
        char e[256];
        int rc = config_set(&scratch, key, item, SPEC_GROUPS, e, sizeof e);
        if (rc == -2) {
            RunConfig c2;
            config_defaults(&c2);
            if (config_set(&c2, key, item, G_RUN, e, sizeof e) != -2)
                return parse_fail(ps, "%s %s: a run option, not part of a config; give it on the command line "
                                      "(recallbench sweep --help)", title, name);
            return parse_fail(ps, "%s unknown key '%s' (keys are train flags without dashes: recallbench train "
                                  "--help; [sweep] also takes name and db)", title, name);
        }
        if (rc < 0) return parse_fail(ps, "%s %s = %s: %s", title, name, item, e);
        if (!k) k = block_key(b, key, ps->rd->line);
        k->vals = xrealloc(k->vals, sizeof(char *) * (size_t)(k->nvals + 1));
        k->vals[k->nvals++] = xstrdup(item);
    }
    return 1;
}

int sweep_spec_load(const char *path, SweepSpec *s, char *err, size_t errn) {
    memset(s, 0, sizeof *s);
    snprintf(s->file, sizeof s->file, "%s", path);
    Reader rd = {fopen(path, "r"), 0, 0};
    if (!rd.f) {
        snprintf(err, errn, "cannot read sweep spec %s: %s", path, strerror(errno));
        return -1;
    }
    ParseState ps = {s, &rd, "", 0};
    int rc = ini_parse_stream(count_lines, &rd, on_key, &ps);
    fclose(rd.f);
    if (ps.failed) {
        snprintf(err, errn, "%s", ps.err);
        return -1;
    }
    if (rd.too_long) {
        snprintf(err, errn, "%s:%d: line too long for the INI reader: continue a list on indented lines", path,
                 rd.too_long);
        return -1;
    }
    if (rc != 0) {
        snprintf(err, errn, "%s:%d: not a section header, key = value line, or comment", path, rc);
        return -1;
    }
    if (!s->name[0]) {
        const char *b = strrchr(path, '/');
        b = b ? b + 1 : path;
        snprintf(s->name, sizeof s->name, "%.*s", (int)(strcspn(b, ".")), b);
    }
    if (s->sweep.nkeys == 0 && s->nmodels == 0) {
        snprintf(err, errn, "%s: no [sweep] or [model NAME] settings: nothing to run", path);
        return -1;
    }
    return 0;
}

// ---------------------------------------------------------------------------------------------------------
// Grid expansion

// The effective keys of one block: [sweep]'s keys in order (the block's values where it overrides them),
// then the block's own keys in order.
static int block_keys(const SweepSpec *s, const SpecBlock *b, const SpecKey **keys, int max) {
    int n = 0;
    for (int i = 0; i < s->sweep.nkeys && n < max; i++) {
        const SpecKey *o = b ? find_key(b, s->sweep.keys[i].key) : NULL;
        keys[n++] = o ? o : &s->sweep.keys[i];
    }
    for (int i = 0; b && i < b->nkeys && n < max; i++)
        if (!find_key(&s->sweep, b->keys[i].key)) keys[n++] = &b->keys[i];
    return n;
}

// Exact grid size as a double (a product of list lengths can exceed any integer type).
static double grid_size_exact(const SweepSpec *s) {
    double total = 0;
    for (int bi = s->nmodels ? 0 : -1; bi < s->nmodels; bi++) {
        const SpecKey *keys[256];
        int nk = block_keys(s, bi >= 0 ? &s->models[bi] : NULL, keys, 256);
        double p = 1;
        for (int i = 0; i < nk; i++) p *= keys[i]->nvals;
        total += p;
    }
    return total;
}

long sweep_grid_size(const SweepSpec *s) {
    double t = grid_size_exact(s);
    return t > (double)SWEEP_MAX_GRID ? SWEEP_MAX_GRID + 1 : (long)t;
}

// Open-addressing set of config hashes (16 hex digits) -> index: keeps de-duplication and status lookups
// linear in the grid size.
typedef struct { uint64_t *key; int *val; size_t mask; } HashIndex;

static uint64_t hash_key(const char *hex) { return strtoull(hex, NULL, 16); }
static void hindex_init(HashIndex *h, size_t n) {
    size_t cap = 16;
    while (cap < 2 * n + 1) cap *= 2;
    h->key = xcalloc(cap, sizeof *h->key);
    h->val = xcalloc(cap, sizeof *h->val);
    h->mask = cap - 1;
}
static void hindex_free(HashIndex *h) { free(h->key); free(h->val); }
// Slot of key k: its own if present, else the empty one where it goes (val 0 = empty; vals are index + 1).
static size_t hindex_slot(const HashIndex *h, uint64_t k) {
    size_t i = (size_t)((k * 0x9E3779B97F4A7C15ull) >> 17) & h->mask;
    while (h->val[i] && h->key[i] != k) i = (i + 1) & h->mask;
    return i;
}

int sweep_expand(const SweepSpec *s, const char *const *ov, int nov, SweepRun **out, int *ndup, char *err,
                 size_t errn) {
    double size = grid_size_exact(s);
    if (size > SWEEP_MAX_GRID) {
        snprintf(err, errn, "%s: the grid has %.4g points (the product of each block's list lengths, summed): at most"
                 " %d; split the spec", s->file, size, SWEEP_MAX_GRID);
        return -1;
    }
    long cap = (long)size;
    SweepRun *r = xcalloc((size_t)(cap > 0 ? cap : 1), sizeof(SweepRun));
    HashIndex seen_h;
    hindex_init(&seen_h, (size_t)cap);
    int n = 0, dup = 0;
    for (int bi = s->nmodels ? 0 : -1; bi < s->nmodels; bi++) {
        const SpecBlock *b = bi >= 0 ? &s->models[bi] : NULL;
        const SpecKey *keys[256];
        int nk = block_keys(s, b, keys, 256);
        char title[96];
        block_title(b ? b : &s->sweep, title, sizeof title);
        int has_layers = 0;
        for (int i = 0; i < nk; i++) has_layers |= !strcmp(keys[i]->key, "layers");
        if (!has_layers) {
            snprintf(err, errn, "%s:%d: %s sets no layers (e.g. layers = conv,%s)", s->file, b ? b->line : 1, title,
                     b ? b->name : "bla");
            free(r);
            hindex_free(&seen_h);
            return -1;
        }
        int idx[256] = {0};
        for (;;) {
            SweepRun *x = &r[n];
            memset(x, 0, sizeof *x);
            config_defaults(&x->cfg);
            int o = 0;
            char point[256] = "";
            int po = 0;
            for (int i = 0; i < nk; i++) {
                const SpecKey *k = keys[i];
                const char *v = k->vals[idx[i]];
                char e[256];
                if (config_set(&x->cfg, k->key, v, SPEC_GROUPS, e, sizeof e) != 0) {
                    snprintf(err, errn, "%s:%d: %s %s = %s: %s", s->file, k->line, title, k->key, v, e);
                    free(r);
                    hindex_free(&seen_h);
                    return -1;
                }
                // Knobs worth showing: lists, and what the block itself sets.
                int own = b && find_key(b, k->key) == k;
                if ((k->nvals > 1 || own) && o < (int)sizeof x->knobs - 1)
                    o += snprintf(x->knobs + o, sizeof x->knobs - (size_t)o, "%s%s=%s", o ? " " : "", k->key, v);
                if (k->nvals > 1 && po < (int)sizeof point - 1)
                    po += snprintf(point + po, sizeof point - (size_t)po, "%s%s=%s", po ? " " : "", k->key, v);
            }
            for (int i = 0; i + 1 < 2 * nov; i += 2) {
                char e[256];
                if (config_set(&x->cfg, ov[i], ov[i + 1], SPEC_GROUPS, e, sizeof e) != 0) {
                    snprintf(err, errn, "%s", e);
                    free(r);
                    hindex_free(&seen_h);
                    return -1;
                }
            }
            TaskParams tp;
            ModelCfg mc;
            char e[512];
            if (config_finalize(&x->cfg, &tp, &mc, e, sizeof e) != 0) {
                snprintf(err, errn, "%s:%d: %s%s%s: %s", s->file, b ? b->line : 1, title, point[0] ? " at " : "",
                         point, e);
                free(r);
                hindex_free(&seen_h);
                return -1;
            }
            char json[4096];
            config_json(&x->cfg, json, sizeof json);
            config_hash(json, x->hash);
            config_variant(&x->cfg, x->variant, sizeof x->variant);
            snprintf(x->model, sizeof x->model, "%s", b ? b->name : x->variant);
            x->block = bi;
            size_t slot = hindex_slot(&seen_h, hash_key(x->hash));
            if (seen_h.val[slot]) dup++;
            else { seen_h.key[slot] = hash_key(x->hash); seen_h.val[slot] = ++n; }
            // Odometer: the last key varies fastest.
            int i = nk - 1;
            while (i >= 0 && ++idx[i] == keys[i]->nvals) idx[i--] = 0;
            if (i < 0) break;
        }
    }
    hindex_free(&seen_h);
    if (ndup) *ndup = dup;
    *out = r;
    return n;
}

// ---------------------------------------------------------------------------------------------------------
// Store status of every grid point

enum { ST_PENDING, ST_FINISHED, ST_DIVERGED };

typedef struct {
    char (*hash)[24];
    char (*status)[16];
    int n, cap;
} StatusList;

static void collect_status(const RunRow *row, void *ud) {
    StatusList *l = ud;
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 256;
        l->hash = xrealloc(l->hash, sizeof *l->hash * (size_t)l->cap);
        l->status = xrealloc(l->status, sizeof *l->status * (size_t)l->cap);
    }
    snprintf(l->hash[l->n], sizeof l->hash[0], "%s", row->config_hash);
    snprintf(l->status[l->n], sizeof l->status[0], "%s", row->status);
    l->n++;
}

// --dry-run's estimate of the pending runs' time: each pending run is matched to the finished (ok) runs of
// the database with the same task, layers and variant, and counted at their mean duration (finished -
// started): those with the same RegBench training automata, else those at other counts scaled by the
// ratio of counts (the steps per epoch scale with it). Durations are those of the sittings that ran them,
// with their concurrency: the sum is run time, not wall time. Prints one line; nothing without a database.
static void print_estimate(Store *st, const SweepRun *r, int n, const int *status, int jobs) {
    if (!st) return;
    sqlite3_stmt *q;
    const char *sql = "SELECT task, model, variant, config_json, strftime('%s', finished) - strftime('%s', started)"
                      " FROM runs WHERE status = 'ok' AND started IS NOT NULL AND finished IS NOT NULL";
    if (sqlite3_prepare_v2(store_db(st), sql, -1, &q, NULL) != SQLITE_OK) return;
    typedef struct { char key[240]; int ta; double sum; int cnt; } Dur;  // per (task|layers|variant, automata)
    Dur *d = NULL;
    int nd = 0, cap = 0;
    while (sqlite3_step(q) == SQLITE_ROW) {
        const char *task = (const char *)sqlite3_column_text(q, 0), *layers = (const char *)sqlite3_column_text(q, 1);
        const char *var = (const char *)sqlite3_column_text(q, 2), *cj = (const char *)sqlite3_column_text(q, 3);
        const char *tap = cj ? strstr(cj, "\"train-automata\":") : NULL;
        const int ta = tap && task && !strcmp(task, "regbench") ? atoi(tap + 17) : 0;
        char key[240];
        snprintf(key, sizeof key, "%s|%s|%s", task ? task : "", layers ? layers : "", var ? var : "");
        int k = 0;
        while (k < nd && (strcmp(d[k].key, key) || d[k].ta != ta)) k++;
        if (k == nd) {
            if (nd == cap) d = xrealloc(d, sizeof *d * (size_t)(cap = cap ? 2 * cap : 16));
            snprintf(d[nd].key, sizeof d[nd].key, "%s", key);
            d[nd].ta = ta, d[nd].sum = 0, d[nd++].cnt = 0;
        }
        d[k].sum += sqlite3_column_double(q, 4);
        d[k].cnt++;
    }
    sqlite3_finalize(q);
    double sec = 0;
    int exact = 0, scaled = 0, pending = 0;
    for (int i = 0; i < n; i++) {
        if (status[i] != ST_PENDING) continue;
        pending++;
        const RunConfig *c = &r[i].cfg;
        const int ta = c->task == TASK_REGBENCH ? c->train_automata : 0;
        char key[240];
        snprintf(key, sizeof key, "%s|%s|%s", c->task == TASK_REGBENCH ? "regbench" : "mqar", c->layers, r[i].variant);
        int k = 0, o = -1;
        for (; k < nd && (strcmp(d[k].key, key) || d[k].ta != ta); k++)
            if (o < 0 && ta > 0 && d[k].ta > 0 && !strcmp(d[k].key, key)) o = k;
        if (k < nd) sec += d[k].sum / d[k].cnt, exact++;
        else if (o >= 0) sec += d[o].sum / d[o].cnt * ta / d[o].ta, scaled++;
    }
    free(d);
    if (!pending) return;
    printf("estimate: %d of %d pending runs match finished runs of the same task, layers and variant (%d scaled from "
           "another training-automata count): %.2f h of run time at their mean durations", exact + scaled, pending,
           scaled, sec / 3600);
    if (jobs > 1) printf(", about %.2f h of wall time with -j %d if they run as those did", sec / 3600 / jobs, jobs);
    printf("%s\n", exact + scaled < pending ? "; the others have no finished run to go by" : "");
}

// Finished runs of the database on the other backend (a config's backend is part of its hash): counted
// for backend_hint, which names them where none of the grid has finished.
typedef struct {
    const char *backend;   // the grid's ("cpu" | "cuda")
    int other;             // ok runs on another backend
    char other_name[16];
} BackendCount;

static void count_other_backend(const RunRow *row, void *ud) {
    BackendCount *c = ud;
    if (strcmp(row->status, "ok") || !row->backend[0] || !strcmp(row->backend, c->backend)) return;
    c->other++;
    snprintf(c->other_name, sizeof c->other_name, "%s", row->backend);
}

// With nothing of the grid finished, a database whose finished runs ran on the other backend usually means
// a forgotten --backend (e.g. `--dry-run` of a GPU sweep's database on a laptop): one line on stderr.
static void backend_hint(Store *st, const SweepRun *r, int n, int nfin) {
    if (!st || nfin || n <= 0) return;
    BackendCount c = {.backend = r[0].cfg.backend == BACKEND_CUDA ? "cuda" : "cpu"};
    if (store_list_runs(st, NULL, count_other_backend, &c) < 0 || !c.other) return;
    fprintf(stderr, "sweep: note: none of this grid (backend %s) has finished in the database, which holds %d finished "
            "run%s on backend %s: the backend is part of a config's identity; pass --backend %s to mean those\n",
            c.backend, c.other, c.other == 1 ? "" : "s", c.other_name, c.other_name);
}

static void grid_status(Store *st, const SweepRun *r, int n, int *status) {
    StatusList l = {0};
    if (st && store_list_runs(st, NULL, collect_status, &l) < 0)
        die_runtime("cannot read the results database: %s", store_errmsg(st));
    HashIndex h;
    hindex_init(&h, (size_t)n);
    for (int i = 0; i < n; i++) {
        status[i] = ST_PENDING;
        size_t slot = hindex_slot(&h, hash_key(r[i].hash));
        h.key[slot] = hash_key(r[i].hash);
        h.val[slot] = i + 1;   // grid hashes are unique (sweep_expand)
    }
    for (int j = 0; j < l.n; j++) {
        if (strlen(l.hash[j]) != 16) continue;
        size_t slot = hindex_slot(&h, hash_key(l.hash[j]));
        if (!h.val[slot]) continue;
        int i = h.val[slot] - 1;
        if (strcmp(l.hash[j], r[i].hash)) continue;
        if (!strcmp(l.status[j], "ok")) status[i] = ST_FINISHED;
        else if (!strcmp(l.status[j], "diverged") && status[i] == ST_PENDING) status[i] = ST_DIVERGED;
    }
    hindex_free(&h);
    free(l.hash);
    free(l.status);
}

// ---------------------------------------------------------------------------------------------------------
// Workers

typedef struct {
    pid_t pid;
    int fd, run, gpu, gi, attempt, eof, reaped, wstatus;  // gi: index into the --gpus list (0 without GPUs)
    double t0;
    char out[8192];
    size_t outn;
} Worker;

// Keeps the tail of a worker's stdout: its JSON result is the last line.
static void out_append(Worker *x, const char *buf, size_t got) {
    size_t cap = sizeof x->out - 1;
    if (got > cap) { buf += got - cap; got = cap; }
    if (x->outn + got > cap) {
        size_t drop = x->outn + got - cap;
        memmove(x->out, x->out + drop, x->outn - drop);
        x->outn -= drop;
    }
    memcpy(x->out + x->outn, buf, got);
    x->outn += got;
}

static volatile sig_atomic_t got_signal = 0, got_drain = 0;
static void on_signal(int sig) {
    if (!got_signal) got_signal = sig;
    else got_signal = -1;  // a second signal: kill the workers outright
}
// SIGUSR1 (or --time-limit): start no new run, let the running ones finish. SIGINT/SIGTERM stop the running
// ones too: they checkpoint (--checkpoints) and continue from there at the next sweep.
static void on_drain(int sig) { (void)sig; got_drain = 1; }

static int online_cores(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

static void fmt_dur(double s, char *buf, size_t n) {
    if (s < 0 || s != s) { snprintf(buf, n, "?"); return; }
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else snprintf(buf, n, "%ld:%02ld", t / 60, t % 60);
}

// Pulls "key": value out of a flat JSON line (number or string); 0 if absent.
static int json_field(const char *j, const char *key, char *out, size_t n) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\"", key);
    const char *p = strstr(j, pat);
    if (!p) return 0;
    p += strlen(pat);
    while (*p == ' ' || *p == ':') p++;
    size_t k = 0;
    if (*p == '"') {
        for (p++; *p && *p != '"' && k + 1 < n; p++) out[k++] = *p;
    } else {
        for (; *p && !strchr(",}] ", *p) && k + 1 < n; p++) out[k++] = *p;
    }
    out[k] = 0;
    return k > 0;
}

static void shell_word(FILE *f, const char *s) {
    int safe = *s != 0;
    for (const char *p = s; *p; p++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.,:/=+", *p)) safe = 0;
    if (safe) { fputs(s, f); return; }
    fputc('\'', f);
    for (const char *p = s; *p; p++)
        if (*p == '\'') fputs("'\\''", f);
        else fputc(*p, f);
    fputc('\'', f);
}

// The worker's argv: config_argv's "--name value" pairs joined as "--name=value" (which every flag type,
// booleans included, parses the same way), then the run flags. NULL-terminated; free with free_argv.
static char **worker_argv(const RunConfig *c, const char *exe, const char *db, const char *threads, int eval_every,
                          const char *ckdir) {
    char **ca = config_argv(c, exe);
    int n = 0;
    while (ca[n]) n++;
    char **av = xcalloc((size_t)n + 8, sizeof(char *));
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (i >= 2 && !strncmp(ca[i], "--", 2) && !strchr(ca[i], '=') && i + 1 < n && strncmp(ca[i + 1], "--", 2)) {
            size_t l = strlen(ca[i]) + strlen(ca[i + 1]) + 2;
            av[k] = xmalloc(l);
            snprintf(av[k++], l, "%s=%s", ca[i], ca[i + 1]);
            i++;
        } else av[k++] = xstrdup(ca[i]);
    }
    config_argv_free(ca);
    const char *extra[] = {"--db", db, "--json", "--threads", threads};
    for (int i = 0; i < 5; i++) av[k++] = xstrdup(extra[i]);
    if (eval_every > 1) {
        char ev[32];
        snprintf(ev, sizeof ev, "--eval-every=%d", eval_every);
        av[k++] = xstrdup(ev);
    }
    if (ckdir[0]) {
        size_t l = strlen(ckdir) + 16;
        av[k] = xmalloc(l);
        snprintf(av[k++], l, "--checkpoint=%s", ckdir);
    }
    av[k] = NULL;
    return av;
}

static void free_argv(char **av) {
    for (char **p = av; *p; p++) free(*p);
    free(av);
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: recallbench sweep SPEC.ini [-j N] [--db PATH] [--backend cpu|cuda] [--gpus 0,1] [--threads T]\n"
            "                         [--dry-run] [--list] [--retry-diverged] [--logs DIR] [--checkpoints DIR|off]\n"
            "                         [--exe PATH]\n"
            "Expands the grid of SPEC.ini, skips configs already finished in the database (same config hash),\n"
            "and trains the rest in worker processes (`recallbench train ... --db PATH --json`). Safe to kill and\n"
            "rerun: finished runs are kept and skipped, interrupted ones continue from their checkpoints.\n"
            "  -j, --jobs N       worker processes (default 1; with --backend cuda: one per --gpus entry;\n"
            "                     -j 16 --gpus 0,...,7 runs two workers on each of the 8 GPUs)\n"
            "  --db PATH          results database (default: the spec's [sweep] db, else %s);\n"
            "                     its directory is created if missing\n"
            "  --backend B        cpu | cuda: overrides the spec's backend for every run (part of the hash)\n"
            "  --gpus LIST        GPUs for --backend cuda (default 0), each listed once; worker slot i always\n"
            "                     runs with CUDA_VISIBLE_DEVICES = LIST[i mod count]\n"
            "  --time-limit S     start no run after S seconds of wall time; runs already going finish and\n"
            "                     are kept (SIGUSR1 does the same at any time); rerun to resume [1..1e7]\n"
            "  --threads T        CPU threads per worker (default max(1, cores / workers))\n"
            "  --dry-run          print the grid (index, model, variant, knobs, hash, status) and its size, and\n"
            "                     estimate the pending runs' time from the database's finished runs of the same\n"
            "                     task, layers and variant (mean duration; RegBench scaled by training automata;\n"
            "                     with -j N also wall time, at the concurrency those runs had)\n"
            "  --list             print one self-contained `recallbench train ... --db PATH` command per\n"
            "                     pending run (for GNU parallel or a Slurm array); runs nothing\n"
            "  --retry-diverged   rerun configs that diverged before (default: keep them; they are deterministic)\n"
            "  --logs DIR         per-run stderr logs DIR/<hash>.log (default: <db dir>/logs)\n"
            "  --checkpoints DIR  workers checkpoint into DIR (train --checkpoint; default: <db dir>/checkpoints;\n"
            "                     'off': none): a run stopped by SIGINT/SIGTERM, a crash or a kill resumes at the\n"
            "                     next sweep from its last checkpoint, with the result an unbroken run gets\n"
            "  --exe PATH         program the workers run and --list commands name (default: this binary's\n"
            "                     absolute path; e.g. a wrapper script that ends with exec recallbench \"$@\")\n"
            "  --help             this text\n"
            "Spec format (INI): [sweep] holds settings shared by every model, [model NAME] blocks each set layers\n"
            "and their own grid; keys are train flags without dashes (recallbench train --help), a block's key\n"
            "overrides [sweep]'s. A value with several whitespace-separated items is a list; the grid is the\n"
            "cartesian product of every list of a block (first key slowest). Commas stay inside one value\n"
            "(window = 32,256; train-mix = 64:4:1000,128:8:500). A repeated key or an indented continuation line\n"
            "extends a list. [sweep] also takes name (default: the file name), db (relative to the current\n"
            "directory) and eval-every N (every worker: train --eval-every N; not part of a config's hash).\n"
            "Grid points identical after hashing (knobs a mixer does not read) run once.\n"
            "A run whose worker dies (kill -9, OOM, crash) or fails at run time (exit 1 without a result) is\n"
            "retried, up to 3 attempts, on another GPU when there is one; a GPU whose last 3 runs failed gets no\n"
            "more while another GPU works; when every GPU keeps failing, failures are not retried.\n"
            "Exit status: 0 all runs ok or diverged (a diverged run is a result), 1 a run failed or was\n"
            "interrupted, or a database/I/O error, 2 bad flag or spec (FILE:LINE, key, value, allowed range).\n",
            frontier_default_db());
}

// stopping (a signal, the time limit or SIGUSR1): no new runs start, so no ETA for the grid (2026-12-02: runs stopped by
// the signal counted as done made "1/34 done, ETA 1:22:38" out of a sitting's end).
static void print_progress(int tty, int done, int total, int failed, double t0, int stopping) {
    double el = now_seconds() - t0;
    char e[32], eta[32];
    fmt_dur(el, e, sizeof e);
    fmt_dur(done > 0 ? el * (total - done) / done : -1, eta, sizeof eta);
    if (stopping) snprintf(eta, sizeof eta, "- (stopping: no new runs)");
    if (tty) {
        int w = 30, fill = total ? w * done / total : w;
        char bar[64];
        for (int i = 0; i < w; i++) bar[i] = i < fill ? '#' : '.';
        bar[w] = 0;
        fprintf(stderr, "\r\033[K[%s] %d/%d runs, %d failed, %s elapsed, ETA %s", bar, done, total, failed, e, eta);
    } else {
        fprintf(stderr, "sweep: %d/%d runs done, %d failed, %s elapsed, ETA %s\n", done, total, failed, e, eta);
    }
    fflush(stderr);
}

// True when the file system of the database or of the logs has no room left (a full disk fails every run
// alike and leaves empty logs, so the sweep says so and stops instead of failing run after run).
static int disk_full(const char *db, const char *logdir) {
    char dir[1100];
    const char *sl = strrchr(db, '/');
    if (sl) snprintf(dir, sizeof dir, "%.*s", (int)(sl - db), db);
    else snprintf(dir, sizeof dir, ".");
    const char *paths[2] = {dir[0] ? dir : "/", logdir};
    for (int i = 0; i < 2; i++) {
        struct statvfs v;
        // Less than 64 KiB free: too little for a run's log and WAL growth.
        if (statvfs(paths[i], &v) == 0 && (double)v.f_bavail * v.f_frsize < 65536) return 1;
    }
    return 0;
}

#define SWEEP_ATTEMPTS 3   // attempts per run when workers die or fail at run time
#define GPU_BAD_STREAK 3   // failed attempts in a row that take a GPU out of the rotation

// True when GPU index gi failed its last GPU_BAD_STREAK attempts and another GPU index with a worker slot has
// not (so the sweep never benches every GPU and always makes progress).
static int gpu_bad(const int *streak, int gi, int nslot_gpu) {
    if (streak[gi] < GPU_BAD_STREAK) return 0;
    for (int g = 0; g < nslot_gpu; g++)
        if (streak[g] < GPU_BAD_STREAK) return 1;
    return 0;
}

// True when a retried run should not go to GPU index gi: it failed there, and another GPU index with a worker
// slot, not bad, where it has not failed, will take it (now or when that GPU's worker finishes).
static int retry_avoids(const short *failed, int nfailed, int gi, const int *streak, int nslot_gpu) {
    int here = 0;
    for (int a = 0; a < nfailed; a++) here |= failed[a] == gi;
    if (!here) return 0;
    for (int g = 0; g < nslot_gpu; g++) {
        if (g == gi || gpu_bad(streak, g, nslot_gpu)) continue;
        int tried = 0;
        for (int a = 0; a < nfailed; a++) tried |= failed[a] == g;
        if (!tried) return 1;
    }
    return 0;
}

int cmd_sweep(int argc, char **argv) {
    const char *spec_path = NULL, *db = NULL, *backend = NULL, *gpus = NULL, *logs = NULL, *exe = NULL, *ckpts = NULL, *v;
    int jobs = 0, threads = 0, dry = 0, list = 0, retry_div = 0;
    double time_limit = 0;
    // Installed first: a SIGUSR1 that comes while the spec or the database is still loading must not end
    // the process (its default action), only mark the sweep as draining.
    struct sigaction su;
    memset(&su, 0, sizeof su);
    su.sa_handler = on_drain;
    sigemptyset(&su.sa_mask);
    sigaction(SIGUSR1, &su, NULL);
    for (int i = frontier_arg_start(argc, argv, "sweep"); i < argc; i++) {
        const char *a = argv[i];
        char *end;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return 0; }
        else if (!strcmp(a, "--dry-run")) dry = 1;
        else if (!strcmp(a, "--list")) list = 1;
        else if (!strcmp(a, "--retry-diverged")) retry_div = 1;
        else if ((v = frontier_flag_value(argc, argv, &i, "-j")) || (v = frontier_flag_value(argc, argv, &i, "--jobs")) ||
                 (!strncmp(a, "-j", 2) && a[2] && (v = a + 2))) {
            long x = strtol(v, &end, 10);
            if (end == v || *end || x < 1 || x > MAX_WORKERS) die_usage("-j %s: must be an integer in [1, %d]", v, MAX_WORKERS);
            jobs = (int)x;
        } else if ((v = frontier_flag_value(argc, argv, &i, "--threads"))) {
            long x = strtol(v, &end, 10);
            if (end == v || *end || x < 1 || x > 1024) die_usage("--threads %s: must be an integer in [1, 1024]", v);
            threads = (int)x;
        } else if ((v = frontier_flag_value(argc, argv, &i, "--time-limit"))) {
            double x = strtod(v, &end);
            if (end == v || *end || !(x >= 1 && x <= 1e7)) die_usage("--time-limit %s: must be seconds in [1, 1e7]", v);
            time_limit = x;
        } else if ((v = frontier_flag_value(argc, argv, &i, "--db"))) db = v;
        else if ((v = frontier_flag_value(argc, argv, &i, "--backend"))) {
            if (strcmp(v, "cpu") && strcmp(v, "cuda")) die_usage("--backend %s: must be cpu or cuda", v);
            backend = v;
        } else if ((v = frontier_flag_value(argc, argv, &i, "--gpus"))) {
            if (!*v || strspn(v, "0123456789,") != strlen(v)) die_usage("--gpus %s: a comma list of GPU indices, e.g. 0,1", v);
            gpus = v;
        } else if ((v = frontier_flag_value(argc, argv, &i, "--logs"))) logs = v;
        else if ((v = frontier_flag_value(argc, argv, &i, "--checkpoints"))) {
            if (!*v) die_usage("--checkpoints '': give a directory, or off");
            ckpts = v;
        } else if ((v = frontier_flag_value(argc, argv, &i, "--exe"))) exe = v;
        else if (a[0] == '-') die_usage("sweep: unknown flag '%s' (see recallbench sweep --help)", a);
        else if (spec_path) die_usage("sweep: one spec file only ('%s' and '%s')", spec_path, a);
        else spec_path = a;
    }
    if (!spec_path) die_usage("sweep: give a spec file, e.g. recallbench sweep harness/sweeps/quick.ini");

    SweepSpec spec;
    char err[1024];
    if (sweep_spec_load(spec_path, &spec, err, sizeof err) != 0) {
        if (access(spec_path, R_OK) != 0) die_runtime("%s", err);
        die_usage("%s", err);
    }
    const char *ov[2] = {"backend", backend};
    SweepRun *runs;
    int ndup = 0;
    int n = sweep_expand(&spec, ov, backend ? 1 : 0, &runs, &ndup, err, sizeof err);
    if (n < 0) die_usage("%s", err);
    if (!db) db = spec.db[0] ? spec.db : frontier_default_db();
    if (!*db) die_usage("--db '': give the results database's file name");
    // Checkpoints beside the database (or --checkpoints DIR, or none with off).
    char ckdir[1024] = "";
    if (ckpts && strcmp(ckpts, "off")) snprintf(ckdir, sizeof ckdir, "%s", ckpts);
    else if (!ckpts) {
        const char *s = strrchr(db, '/');
        if (s) snprintf(ckdir, sizeof ckdir, "%.*s/checkpoints", (int)(s - db), db);
        else snprintf(ckdir, sizeof ckdir, "checkpoints");
    }

    // Worker layout: with GPUs, worker slot k always runs on GPU gpu_ids[k % ngpu], so -j = m x ngpu puts m
    // workers on every GPU. RB_SWEEP_FAKE_GPUS=1 is a test hook: --gpus without the cuda backend (a build or
    // machine without a device), GPU ids assigned and CUDA_VISIBLE_DEVICES set exactly as for cuda while the
    // workers train on the CPU (tests/sweep_gpus.sh).
    int any_cuda = backend && !strcmp(backend, "cuda");
    for (int i = 0; i < n && !backend; i++) any_cuda |= runs[i].cfg.backend == BACKEND_CUDA;
    const char *fake = getenv("RB_SWEEP_FAKE_GPUS");
    if (gpus && !any_cuda && !(fake && !strcmp(fake, "1")))
        die_usage("--gpus %s: only with --backend cuda (or a spec whose runs use backend = cuda)", gpus);
    int gpu_ids[MAX_WORKERS], ngpu = 0;
    if (any_cuda || gpus) {
        char g[1024];
        snprintf(g, sizeof g, "%s", gpus ? gpus : "0");
        for (char *sv, *t = strtok_r(g, ",", &sv); t; t = strtok_r(NULL, ",", &sv)) {
            long id = strtol(t, NULL, 10);
            if (strlen(t) > 4 || id > 1023) die_usage("--gpus %s: GPU index %s: must be in [0, 1023]", gpus, t);
            if (ngpu == MAX_WORKERS) die_usage("--gpus %s: at most %d GPUs", gpus, MAX_WORKERS);
            for (int j = 0; j < ngpu; j++)
                if (gpu_ids[j] == id)
                    die_usage("--gpus %s: GPU %ld listed twice (for several workers per GPU give -j, e.g. -j %d)",
                              gpus, id, 2 * (ngpu > 0 ? ngpu : 1));
            gpu_ids[ngpu++] = (int)id;
        }
        if (!ngpu) die_usage("--gpus %s: a comma list of GPU indices, e.g. 0,1", gpus);
        if (!jobs) jobs = ngpu;
    }
    if (!jobs) jobs = 1;
    if (!threads) threads = online_cores() / jobs > 1 ? online_cores() / jobs : 1;

    char self[PATH_MAX];
    ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
    if (sl > 0) self[sl] = 0;
    else snprintf(self, sizeof self, "%s", "recallbench");

    const char *wexe = exe ? exe : self;   // what the workers run (--exe: e.g. a wrapper that execs recallbench)
    int *status = xcalloc((size_t)(n > 0 ? n : 1), sizeof(int));
    Store *st = NULL;
    if (dry || list) {
        if (access(db, F_OK) == 0) st = frontier_open_existing(db);
    } else {
        frontier_mkdir_parent(db);
        st = store_open(db, err, sizeof err);
        if (!st) die_runtime("%s", err);
        int stale = store_mark_stale(st);
        if (stale < 0) die_runtime("cannot update %s: %s", db, store_errmsg(st));
        if (stale > 0) fprintf(stderr, "sweep: %d interrupted run%s from an earlier sweep will be redone\n", stale, stale > 1 ? "s" : "");
    }
    grid_status(st, runs, n, status);
    int nfin = 0, ndiv = 0, npend = 0;
    for (int i = 0; i < n; i++) {
        if (status[i] == ST_DIVERGED && retry_div) status[i] = ST_PENDING;
        nfin += status[i] == ST_FINISHED;
        ndiv += status[i] == ST_DIVERGED;
        npend += status[i] == ST_PENDING;
    }
    backend_hint(st, runs, n, nfin);

    if (dry) {
        printf("sweep %s (%s): %d model block%s, database %s\n", spec.name, spec_path, spec.nmodels,
               spec.nmodels == 1 ? "" : "s", db);
        printf("%5s  %-14s %-14s %-16s %-9s %s\n", "#", "model", "variant", "hash", "status", "knobs");
        for (int i = 0; i < n; i++)
            printf("%5d  %-14s %-14s %-16s %-9s %s\n", i + 1, runs[i].model, runs[i].variant, runs[i].hash,
                   status[i] == ST_FINISHED ? "finished" : status[i] == ST_DIVERGED ? "diverged" : "pending",
                   runs[i].knobs);
        printf("%d runs: %d finished, %d diverged (kept), %d pending", n, nfin, ndiv, npend);
        if (ndup) printf("; %d duplicate grid points dropped (knobs their mixer does not read)", ndup);
        printf("\n");
        print_estimate(st, runs, n, status, jobs);
        if (st) store_close(st);
        sweep_spec_free(&spec);
        free(runs);
        free(status);
        return 0;
    }
    if (list) {
        for (int i = 0; i < n; i++) {
            if (status[i] != ST_PENDING) continue;
            char *cmd = config_command(&runs[i].cfg, exe ? exe : self);
            fputs(cmd, stdout);
            fputs(" --db ", stdout);
            shell_word(stdout, db);
            if (ckdir[0]) {
                fputs(" --checkpoint ", stdout);
                shell_word(stdout, ckdir);
            }
            fputc('\n', stdout);
            free(cmd);
        }
        if (st) store_close(st);
        sweep_spec_free(&spec);
        free(runs);
        free(status);
        return fflush(stdout) ? EXIT_RUNTIME : 0;
    }

    // Logs directory.
    char logdir[1024];
    if (logs) snprintf(logdir, sizeof logdir, "%s", logs);
    else {
        const char *s = strrchr(db, '/');
        if (s) snprintf(logdir, sizeof logdir, "%.*s/logs", (int)(s - db), db);
        else snprintf(logdir, sizeof logdir, "logs");
    }
    char probe[1100];
    snprintf(probe, sizeof probe, "%s/x", logdir);
    frontier_mkdir_parent(probe);

    int *pending = xmalloc(sizeof(int) * (size_t)(npend > 0 ? npend : 1));
    for (int i = 0, k = 0; i < n; i++)
        if (status[i] == ST_PENDING) pending[k++] = i;
    if (jobs > npend && npend > 0) jobs = npend;
    int tty = isatty(2);
    fprintf(stderr, "sweep %s: %d runs in the grid, %d already finished, %d diverged before (kept), %d to run with %d "
                    "worker%s x %d thread%s; database %s, logs %s/\n",
            spec.name, n, nfin, ndiv, npend, jobs, jobs > 1 ? "s" : "", threads, threads > 1 ? "s" : "", db, logdir);
    // GPU layout: slot k on GPU index k % ngpu; a GPU index with no slot (fewer workers than GPUs) stays idle.
    int nslot_gpu = ngpu ? (jobs < ngpu ? jobs : ngpu) : 1;   // GPU indices that have a worker slot
    if (ngpu && npend > 0) {
        int lo = jobs / ngpu, hi = lo + (jobs % ngpu != 0);
        fprintf(stderr, "sweep: %d GPU%s (", ngpu, ngpu > 1 ? "s" : "");
        for (int g = 0; g < ngpu; g++) fprintf(stderr, "%s%d", g ? "," : "", gpu_ids[g]);
        if (lo == hi) fprintf(stderr, "): %d worker%s each\n", lo, lo > 1 ? "s" : "");
        else fprintf(stderr, "): %d worker%s on the first %d, %d on the others (-j %d is not a multiple of %d)\n", hi,
                     hi > 1 ? "s" : "", jobs % ngpu, lo, jobs, ngpu);
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    static Worker w[MAX_WORKERS];
    memset(w, 0, sizeof w);
    for (int i = 0; i < jobs; i++) w[i].pid = 0;
    int next = 0, done = 0, nok = 0, nfail = 0, nstop = 0, ndiv_now = 0, nrejected = 0, active = 0, stopping = 0, nelse = 0;
    int nfull = 0, nretried = 0, draining = 0;
    // Retries: a run whose worker died (a signal: kill -9, the OOM killer, a crash) or failed at run time (exit 1
    // without a result, e.g. a device error) goes back to the queue, ahead of fresh runs, up to SWEEP_ATTEMPTS
    // attempts in all, and avoids the GPUs it failed on while another GPU can take it. A GPU whose last
    // GPU_BAD_STREAK attempts all failed gets no more runs while some other GPU is not failing.
    int *retry = xcalloc((size_t)(npend > 0 ? npend : 1), sizeof(int)), nretry = 0;
    int *attempts = xcalloc((size_t)(n > 0 ? n : 1), sizeof(int));              // failed attempts per run
    short *failed_gi = xcalloc((size_t)(n > 0 ? n : 1) * SWEEP_ATTEMPTS, sizeof(short)); // on which GPU index
    int streak[MAX_WORKERS] = {0}, benched_said[MAX_WORKERS] = {0};
    double t0 = now_seconds(), last_bar = 0;
    pid_t parent = getpid();
    char thr[16];
    snprintf(thr, sizeof thr, "%d", threads);

    for (;;) {
        if (!draining && (got_drain || (time_limit > 0 && now_seconds() - t0 >= time_limit))) {
            draining = 1;
            if (tty) fputc('\n', stderr);
            fprintf(stderr, "sweep: %s: starting no new runs; waiting for %d running\n",
                    got_drain ? "SIGUSR1" : "time limit reached", active);
        }
        // Launch.
        for (int k = 0; k < jobs && !stopping && !draining && !got_signal && (next < npend || nretry > 0); k++) {
            if (w[k].pid) continue;
            int gi = ngpu ? k % ngpu : 0;
            if (gpu_bad(streak, gi, nslot_gpu)) {
                if (!benched_said[gi]) {
                    benched_said[gi] = 1;
                    if (tty) fputs("\r\033[K", stderr);
                    fprintf(stderr, "sweep: GPU %d: its last %d runs failed; no more runs go to it while other GPUs work\n",
                            gpu_ids[gi], GPU_BAD_STREAK);
                }
                continue;
            }
            benched_said[gi] = 0;
            int ri = -1, from_retry = 0;
            for (int q = 0; q < nretry && ri < 0; q++) {
                if (retry_avoids(&failed_gi[(size_t)retry[q] * SWEEP_ATTEMPTS], attempts[retry[q]], gi, streak,
                                 nslot_gpu)) continue;
                ri = retry[q];
                from_retry = 1;
                memmove(&retry[q], &retry[q + 1], sizeof *retry * (size_t)(nretry - q - 1));
                nretry--;
            }
            if (ri < 0 && next < npend) ri = pending[next++];
            if (ri < 0) continue;   // only retries that wait for another GPU
            // Another sweep on this database may have finished or started this config since we listed the
            // grid: skip it (store_begin_run makes the claim atomic; this only saves starting a worker).
            int64_t holder = 0;
            int held = store_config_state(st, runs[ri].hash, &holder);
            if (held == STORE_FINISHED || held == STORE_RUNNING) {
                done++;
                nelse++;
                if (tty) fputs("\r\033[K", stderr);
                fprintf(stderr, "[%*d/%d] %-8s %-12s %s (run %lld %s by another process)\n", npend >= 100 ? 3 : 2, done,
                        npend, "elsewhere", runs[ri].model, runs[ri].knobs, (long long)holder,
                        held == STORE_FINISHED ? "finished" : "is being trained");
                k--;   // this worker slot is still free
                continue;
            }
            if (disk_full(db, logdir)) {
                stopping = 1;
                nfull = 1;
                if (from_retry) retry[nretry++] = ri;  // not run: counted below
                else next--;
                break;
            }
            char logpath[1200];
            snprintf(logpath, sizeof logpath, "%s/%s.log", logdir, runs[ri].hash);
            // A retry appends to the log of the failed attempt (both stay readable).
            int logfd = open(logpath, O_WRONLY | O_CREAT | O_CLOEXEC | (attempts[ri] ? O_APPEND : O_TRUNC), 0666);
            if (logfd < 0) die_runtime("cannot write %s: %s", logpath, strerror(errno));
            if (attempts[ri]) {
                char hdr[160];
                int hl = snprintf(hdr, sizeof hdr, "\n--- sweep: attempt %d of %d", attempts[ri] + 1, SWEEP_ATTEMPTS);
                if (ngpu) hl += snprintf(hdr + hl, sizeof hdr - (size_t)hl, " on GPU %d", gpu_ids[gi]);
                hl += snprintf(hdr + hl, sizeof hdr - (size_t)hl, " ---\n");
                if (write(logfd, hdr, (size_t)hl) < 0) {}  // a log line only; the run's own writes report errors
            }
            int pfd[2];
            if (pipe2(pfd, O_CLOEXEC) != 0) die_runtime("pipe: %s", strerror(errno));
            char **av = worker_argv(&runs[ri].cfg, wexe, db, thr, spec.eval_every, ckdir);
            fflush(stdout);
            fflush(stderr);
            pid_t pid = fork();
            if (pid < 0) die_runtime("fork: %s", strerror(errno));
            if (pid == 0) {
#ifdef __linux__
                prctl(PR_SET_PDEATHSIG, SIGTERM);  // a killed sweep takes its workers with it
#endif
                if (getppid() != parent) _exit(1);
                int nul = open("/dev/null", O_RDONLY);
                if (nul >= 0) dup2(nul, 0);
                dup2(pfd[1], 1);
                dup2(logfd, 2);
                if (ngpu > 0) {
                    char g[16];
                    snprintf(g, sizeof g, "%d", gpu_ids[gi]);
                    setenv("CUDA_VISIBLE_DEVICES", g, 1);
                }
                execv(wexe, av);
                fprintf(stderr, "recallbench: cannot run %s: %s\n", wexe, strerror(errno));
                _exit(127);
            }
            free_argv(av);
            close(pfd[1]);
            close(logfd);
            w[k] = (Worker){.pid = pid, .fd = pfd[0], .run = ri, .gpu = ngpu ? gpu_ids[gi] : -1, .gi = gi,
                            .attempt = attempts[ri] + 1, .t0 = now_seconds()};
            active++;
        }
        if (active == 0 && (stopping || draining || got_signal || (next >= npend && nretry == 0))) break;

        // Wait for output or exits.
        struct pollfd pf[MAX_WORKERS];
        int map[MAX_WORKERS], np = 0;
        for (int k = 0; k < jobs; k++)
            if (w[k].pid && !w[k].eof) { pf[np].fd = w[k].fd; pf[np].events = POLLIN; map[np++] = k; }
        int pr = poll(pf, (nfds_t)np, np ? 500 : 200);
        if (pr < 0 && errno != EINTR) die_runtime("poll: %s", strerror(errno));
        if (np == 0 && pr == 0) usleep(1000);
        for (int q = 0; pr > 0 && q < np; q++) {
            if (!(pf[q].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            Worker *x = &w[map[q]];
            char buf[4096];
            ssize_t got = read(x->fd, buf, sizeof buf);
            if (got <= 0) { if (got == 0 || errno != EINTR) x->eof = 1; continue; }
            out_append(x, buf, (size_t)got);
        }
        int ws;
        pid_t pid;
        while ((pid = waitpid(-1, &ws, WNOHANG)) > 0)
            for (int k = 0; k < jobs; k++)
                if (w[k].pid == pid) { w[k].reaped = 1; w[k].wstatus = ws; }

        // Signals: forward to the workers, then wait for them (their rows stay 'running' and become
        // 'interrupted' at the next sweep, which redoes them).
        if (got_signal && !stopping) {
            stopping = 1;
            if (tty) fputc('\n', stderr);
            fprintf(stderr, "sweep: signal received, stopping %d running worker%s\n", active, active == 1 ? "" : "s");
            for (int k = 0; k < jobs; k++)
                if (w[k].pid && !w[k].reaped) kill(w[k].pid, got_signal > 0 ? got_signal : SIGKILL);
        }
        if (got_signal == -1) {
            for (int k = 0; k < jobs; k++)
                if (w[k].pid && !w[k].reaped) kill(w[k].pid, SIGKILL);
        }

        // Finish workers that exited and closed their output.
        for (int k = 0; k < jobs; k++) {
            Worker *x = &w[k];
            if (!x->pid || !x->reaped) continue;
            if (!x->eof) {  // exited: drain what is left
                char buf[4096];
                ssize_t got;
                while ((got = read(x->fd, buf, sizeof buf)) > 0) out_append(x, buf, (size_t)got);
            }
            close(x->fd);
            x->out[x->outn] = 0;
            while (x->outn > 0 && (x->out[x->outn - 1] == '\n' || x->out[x->outn - 1] == ' ')) x->out[--x->outn] = 0;
            char *line = strrchr(x->out, '\n');
            line = line ? line + 1 : x->out;
            char jstatus[32] = "", acc[32] = "", sb[32] = "";
            if (line[0] == '{') {
                json_field(line, "status", jstatus, sizeof jstatus);
                json_field(line, "accuracy", acc, sizeof acc);
                json_field(line, "state_bytes", sb, sizeof sb);
            }
            const SweepRun *r = &runs[x->run];
            const char *what;
            int code = WIFEXITED(x->wstatus) ? WEXITSTATUS(x->wstatus) : -1;
            int died = WIFSIGNALED(x->wstatus);
            // Retry a worker that died or failed at run time, unless the sweep itself is stopping.
            int retryable = !stopping && !got_signal &&
                            (died || (code == 1 && strcmp(jstatus, "diverged") && strcmp(jstatus, "claimed") &&
                                      strcmp(jstatus, "skipped")));
            if (code == 0 || (code == 1 && !strcmp(jstatus, "diverged"))) streak[x->gi] = 0;
            else if (retryable) streak[x->gi]++;
            if (retryable) attempts[x->run]++;
            // Every GPU (or the CPU) failing its last attempts: a systematic failure (no device, a broken build),
            // which retries would only repeat.
            int all_bad = 1;
            for (int g = 0; g < nslot_gpu; g++) all_bad &= streak[g] >= GPU_BAD_STREAK;
            // A killed worker leaves its row 'running': marked 'interrupted' now (kept beside the retry's row as
            // a sitting; the config ends with one ok row).
            if (died && store_mark_stale(st) < 0)
                fprintf(stderr, "sweep: cannot mark the dead worker's run interrupted: %s\n", store_errmsg(st));
            if (retryable && !all_bad && attempts[x->run] < SWEEP_ATTEMPTS) {
                failed_gi[(size_t)x->run * SWEEP_ATTEMPTS + (size_t)attempts[x->run] - 1] = (short)x->gi;
                retry[nretry++] = x->run;
                nretried++;
                active--;
                char why[64], where[32] = "";
                if (died) snprintf(why, sizeof why, "killed by signal %d", WTERMSIG(x->wstatus));
                else snprintf(why, sizeof why, "exit status %d", code);
                if (ngpu) snprintf(where, sizeof where, " on GPU %d", x->gpu);
                if (tty) fputs("\r\033[K", stderr);
                fprintf(stderr, "[%*s] %-8s %-12s %s (%s after %.1fs%s; attempt %d of %d next%s)\n", npend >= 100 ? 7 : 5,
                        "", "retry", r->model, r->knobs, why, now_seconds() - x->t0, where, attempts[x->run] + 1,
                        SWEEP_ATTEMPTS, ngpu > 1 ? ", on another GPU when one is free" : "");
                memset(x, 0, sizeof *x);
                continue;
            }
            if (code == 0) { what = "ok"; nok++; }
            else if (code == 1 && !strcmp(jstatus, "diverged")) { what = "diverged"; ndiv_now++; }
            else if (code == 1 && !strcmp(jstatus, "claimed")) { what = "elsewhere"; nelse++; }
            else if (code == 2) { what = "rejected"; nrejected++; nfail++; stopping = 1; }
            else if (stopping && got_signal) { what = "stopped"; nstop++; }
            else { what = "failed"; nfail++; }
            done++;
            active--;
            double dt = now_seconds() - x->t0;
            char sbuf[32] = "";
            if (acc[0]) snprintf(acc, sizeof acc, "%.3f", atof(acc));
            if (code != 0 && code != 1) acc[0] = sb[0] = 0;
            if (sb[0]) frontier_fmt_bytes(atof(sb), sbuf, sizeof sbuf);
            if (tty) fputs("\r\033[K", stderr);
            char where[32] = "";
            if (ngpu) snprintf(where, sizeof where, " on GPU %d", x->gpu);
            fprintf(stderr, "[%*d/%d] %-8s %-12s %s%s%s%s%s (%.1fs%s)\n", npend >= 100 ? 3 : 2, done, npend, what,
                    r->model, r->knobs, acc[0] ? "  acc " : "", acc, sbuf[0] ? "  state " : "", sbuf, dt, where);
            if (!strcmp(what, "elsewhere")) {
                fprintf(stderr, "         another process claimed this config first; it trains it\n");
            } else if (strcmp(what, "ok") && strcmp(what, "diverged")) {
                char lp[1200];
                snprintf(lp, sizeof lp, "%s/%s.log", logdir, r->hash);
                struct stat lst;
                int empty = stat(lp, &lst) == 0 && lst.st_size == 0;
                if (code >= 0) fprintf(stderr, "         exit status %d; log %s%s\n", code, lp, empty ? " (empty)" : "");
                else fprintf(stderr, "         killed by signal %d; log %s/%s.log\n",
                             WIFSIGNALED(x->wstatus) ? WTERMSIG(x->wstatus) : 0, logdir, r->hash);
                if (code == 2) {
                    // Show why (e.g. the cuda backend not built), then stop: every run would fail alike.
                    char lp[1200], lb[512];
                    snprintf(lp, sizeof lp, "%s/%s.log", logdir, r->hash);
                    FILE *lf = fopen(lp, "r");
                    while (lf && fgets(lb, sizeof lb, lf)) fprintf(stderr, "         | %s", lb);
                    if (lf) fclose(lf);
                }
            }
            if (!tty) print_progress(0, done, npend, nfail, t0, stopping || draining);
            memset(x, 0, sizeof *x);
        }
        if (tty && now_seconds() - last_bar > 0.5) {
            print_progress(1, done, npend, nfail, t0, stopping || draining);
            last_bar = now_seconds();
        }
    }
    if (tty) fputs("\r\033[K", stderr);
    char el[32];
    fmt_dur(now_seconds() - t0, el, sizeof el);
    int notrun = npend - next + nretry;
    if (!nfull && nfail && disk_full(db, logdir)) nfull = 1;
    char stopped[96] = "";
    if (nstop) snprintf(stopped, sizeof stopped, ", %d stopped by the signal (interrupted: they resume next time)", nstop);
    fprintf(stderr, "sweep %s: %d ok, %d diverged, %d failed%s, %d skipped (finished before)%s, %d run by another process,"
                    " %d not run; %s elapsed; database %s\n",
            spec.name, nok, ndiv_now, nfail, stopped, nfin, ndiv ? " + diverged before" : "", nelse, notrun, el, db);
    if (nretried)
        fprintf(stderr, "sweep: %d attempt%s died or failed at run time and %s retried (logs %s/<hash>.log keep every "
                        "attempt)\n", nretried, nretried > 1 ? "s" : "", nretried > 1 ? "were" : "was", logdir);
    if (nfull) fprintf(stderr, "sweep: disk full: no space left for %s or %s/; free space and rerun to resume\n", db, logdir);
    if (st) store_close(st);
    sweep_spec_free(&spec);
    free(runs);
    free(status);
    free(pending);
    free(retry);
    free(attempts);
    free(failed_gi);
    if (got_signal) {
        fprintf(stderr, "sweep: interrupted; rerun the same command to resume (finished runs are kept)\n");
        return EXIT_RUNTIME;
    }
    if (draining && notrun)
        fprintf(stderr, "sweep: stopped starting runs (%s) with %d not run; rerun the same command to resume\n",
                got_drain ? "SIGUSR1" : "--time-limit", notrun);
    if (nrejected) return EXIT_USAGE;
    return nfail || nfull ? EXIT_RUNTIME : 0;
}
