// frontier.c — `recallbench frontier`: best lr per state size, Pareto frontier, state needed per accuracy
// level and state-efficiency ratios (table, CSV, JSON). Depends on store.h (sqlite3), config.h (default db).
#include "frontier.h"
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "config.h"
#include "store.h"
#include "util.h"

#define MAX_LEVELS 16

// ---------------------------------------------------------------------------------------------------------
// Pure math

static int cmp_run(const void *x, const void *y) {
    const FrRun *a = x, *b = y;
    int c;
    if ((c = strcmp(a->task, b->task))) return c;
    if ((c = strcmp(a->variant, b->variant))) return c;
    if (a->state_floats != b->state_floats) return a->state_floats < b->state_floats ? -1 : 1;
    if ((c = strcmp(a->key, b->key))) return c;
    if (a->seed != b->seed) return a->seed < b->seed ? -1 : 1;
    return a->run_id < b->run_id ? -1 : a->run_id > b->run_id;
}

static int same_group(const FrRun *a, const FrRun *b) {
    return !strcmp(a->task, b->task) && !strcmp(a->variant, b->variant) && a->state_floats == b->state_floats;
}

// 1 if every config (seed-free key) among the sorted runs [g, ge) has a run of this seed.
static int seed_in_all(const FrRun *r, int g, int ge, uint64_t seed) {
    for (int k = g; k < ge;) {
        int ke = k, has = 0;
        while (ke < ge && !strcmp(r[k].key, r[ke].key)) has |= r[ke++].seed == seed;
        if (!has) return 0;
        k = ke;
    }
    return 1;
}

// The seeds every config of the group [g, ge) has, once per group: those of its first config (runs g ..
// while the key holds) that all the others have too. Returns the count; common has room for ge - g.
static int common_seeds(const FrRun *r, int g, int ge, uint64_t *common) {
    int nc = 0;
    for (int k = g; k < ge && !strcmp(r[g].key, r[k].key); k++)
        if (seed_in_all(r, g, ge, r[k].seed)) common[nc++] = r[k].seed;
    return nc;
}

static int has_seed(const uint64_t *s, int n, uint64_t seed) {
    for (int i = 0; i < n; i++)
        if (s[i] == seed) return 1;
    return 0;
}

int frontier_points(const FrRun *runs_in, int n, FrPoint **out) {
    FrRun *r = xmalloc(sizeof(FrRun) * (size_t)(n > 0 ? n : 1));
    if (n > 0) memcpy(r, runs_in, sizeof(FrRun) * (size_t)n);
    qsort(r, (size_t)n, sizeof(FrRun), cmp_run);
    FrPoint *p = xcalloc((size_t)(n > 0 ? n : 1), sizeof(FrPoint));
    int np = 0;
    for (int g = 0; g < n;) {
        int ge = g;
        while (ge < n && same_group(&r[g], &r[ge])) ge++;
        FrPoint *pt = &p[np++];
        snprintf(pt->task, sizeof pt->task, "%s", r[g].task);
        snprintf(pt->variant, sizeof pt->variant, "%s", r[g].variant);
        pt->state_floats = r[g].state_floats;
        pt->accuracy = -1;
        // The configs are compared on the seeds they all have (typically seed 1, on which the lr grid was
        // run before more seeds were added at the chosen lr): a config with one lucky seed must not beat
        // one whose three seeds were averaged. With no seed in common, on all of each config's seeds.
        // The chosen config's accuracy is then its mean over all its seeds.
        double score_best = -1;
        uint64_t *common = xmalloc(sizeof(uint64_t) * (size_t)(ge - g));
        int ncommon = common_seeds(r, g, ge, common);
        for (int k = g; k < ge;) {
            int ke = k, best = k;
            double sum = 0, csum = 0;
            int nc = 0;
            while (ke < ge && !strcmp(r[k].key, r[ke].key)) {
                sum += r[ke].accuracy;
                if (r[ke].accuracy > r[best].accuracy) best = ke;
                if (has_seed(common, ncommon, r[ke].seed)) { csum += r[ke].accuracy; nc++; }
                ke++;
            }
            int ns = ke - k;
            double mean = sum / ns, score = nc ? csum / nc : mean;
            pt->n_configs++;
            // Highest score; ties: higher mean, more seeds, then the smaller lr (then key order).
            int better = score > score_best ||
                         (score == score_best &&
                          (mean > pt->accuracy ||
                           (mean == pt->accuracy && (ns > pt->n_seeds || (ns == pt->n_seeds && r[k].lr < pt->lr)))));
            if (better) {
                score_best = score;
                pt->accuracy = mean;
                pt->n_seeds = ns;
                pt->lr = r[k].lr;
                pt->best_run = r[best].run_id;
                pt->train_automata = r[k].train_automata;
                snprintf(pt->desc, sizeof pt->desc, "%s", r[k].desc);
                snprintf(pt->key, sizeof pt->key, "%s", r[k].key);
            }
            k = ke;
        }
        free(common);
        g = ge;
    }
    free(r);
    *out = p;
    return np;
}

static int same_variant(const FrPoint *a, const FrPoint *b) {
    return !strcmp(a->task, b->task) && !strcmp(a->variant, b->variant);
}

void frontier_pareto(FrPoint *p, int n) {
    for (int i = 0; i < n; i++) {
        p[i].on_frontier = 1;
        for (int j = 0; j < n && p[i].on_frontier; j++) {
            if (j == i || !same_variant(&p[i], &p[j])) continue;
            if (p[j].state_floats <= p[i].state_floats && p[j].accuracy >= p[i].accuracy &&
                (p[j].state_floats < p[i].state_floats || p[j].accuracy > p[i].accuracy))
                p[i].on_frontier = 0;
        }
    }
}

double frontier_state_for(const FrPoint *p, int n, const char *task, const char *variant, double level,
                          int *kind) {
    // Frontier points in state order have strictly increasing accuracy, so the first one at or above the
    // level and its predecessor bracket it.
    const FrPoint *prev = NULL;
    for (int i = 0; i < n; i++) {
        if (strcmp(p[i].task, task) || strcmp(p[i].variant, variant) || !p[i].on_frontier) continue;
        if (p[i].accuracy >= level) {
            if (!prev) { *kind = FR_AT_MOST; return p[i].state_floats; }
            double t = (level - prev->accuracy) / (p[i].accuracy - prev->accuracy);
            double l0 = log2(prev->state_floats), l1 = log2(p[i].state_floats);
            *kind = FR_REACHED;
            return exp2(l0 + t * (l1 - l0));
        }
        prev = &p[i];
    }
    *kind = FR_NOT_REACHED;
    return 0;
}

int frontier_needs(const FrPoint *p, int n, const double *levels, int nlev, FrNeed **out) {
    FrNeed *nd = xcalloc((size_t)(n * nlev > 0 ? n * nlev : 1), sizeof(FrNeed));
    int nn = 0;
    for (int i = 0; i < n; i++) {
        if (i > 0 && same_variant(&p[i], &p[i - 1])) continue;
        for (int l = 0; l < nlev; l++) {
            FrNeed *d = &nd[nn++];
            snprintf(d->task, sizeof d->task, "%s", p[i].task);
            snprintf(d->variant, sizeof d->variant, "%s", p[i].variant);
            d->level = levels[l];
            d->state_floats = frontier_state_for(p, n, p[i].task, p[i].variant, levels[l], &d->kind);
        }
    }
    *out = nd;
    return nn;
}

int frontier_ratios(const FrNeed *nd, int nn, const char *vs, FrRatio **out) {
    // nd holds blocks of consecutive entries per (task, variant), one per level, in the same level order.
    int cap = 16, nr = 0;
    FrRatio *r = xmalloc(sizeof(FrRatio) * (size_t)cap);
    for (int i = 0; i < nn;) {
        int ie = i;
        while (ie < nn && !strcmp(nd[ie].task, nd[i].task) && !strcmp(nd[ie].variant, nd[i].variant)) ie++;
        for (int j = 0; j < nn;) {
            int je = j;
            while (je < nn && !strcmp(nd[je].task, nd[j].task) && !strcmp(nd[je].variant, nd[j].variant)) je++;
            const FrNeed *A = &nd[i], *B = &nd[j];
            int use = !strcmp(A->task, B->task) && strcmp(A->variant, B->variant) != 0 && ie - i == je - j &&
                      (vs ? !strcmp(A->variant, vs) : strcmp(A->variant, B->variant) < 0);
            for (int l = 0; use && l < ie - i; l++) {
                const FrNeed *a = &nd[i + l], *b = &nd[j + l];
                if (nr == cap) {
                    cap *= 2;
                    r = xrealloc(r, sizeof(FrRatio) * (size_t)cap);
                }
                FrRatio *x = &r[nr++];
                memset(x, 0, sizeof *x);
                snprintf(x->task, sizeof x->task, "%s", a->task);
                snprintf(x->a, sizeof x->a, "%s", a->variant);
                snprintf(x->b, sizeof x->b, "%s", b->variant);
                x->level = a->level;
                x->state_a = a->state_floats;
                x->state_b = b->state_floats;
                x->kind_a = a->kind;
                x->kind_b = b->kind;
                if (a->kind == FR_NOT_REACHED || b->kind == FR_NOT_REACHED) {
                    strcpy(x->qual, "n/a");
                    continue;
                }
                x->ratio = b->state_floats / a->state_floats;
                // An "<= X" need is an upper bound: it bounds the ratio from one side only.
                if (a->kind == FR_AT_MOST && b->kind == FR_AT_MOST) strcpy(x->qual, "~");
                else if (a->kind == FR_AT_MOST) strcpy(x->qual, ">=");
                else if (b->kind == FR_AT_MOST) strcpy(x->qual, "<=");
            }
            j = je;
        }
        i = ie;
    }
    *out = r;
    return nr;
}

// ---------------------------------------------------------------------------------------------------------
// Loading

void frontier_strip_member(char *j, const char *name) {
    char pat[64];
    int pl = snprintf(pat, sizeof pat, "\"%s\"", name);
    for (char *p = j; (p = strstr(p, pat)); p += pl) {
        char *q = p + pl;
        while (isspace((unsigned char)*q)) q++;
        if (*q != ':') continue;
        q++;
        while (isspace((unsigned char)*q)) q++;
        if (*q == '"') {
            for (q++; *q && *q != '"'; q++)
                if (*q == '\\' && q[1]) q++;
            if (*q) q++;
        } else {
            while (*q && *q != ',' && *q != '}' && !isspace((unsigned char)*q)) q++;
        }
        while (isspace((unsigned char)*q)) q++;
        char *start = p;
        if (*q == ',') {
            q++;
        } else {
            char *b = p;
            while (b > j && isspace((unsigned char)b[-1])) b--;
            if (b > j && b[-1] == ',') start = b - 1;
        }
        memmove(start, q, strlen(q) + 1);
        return;
    }
}

void frontier_strip_seed(char *j) { frontier_strip_member(j, "seed"); }

static const char *col_text(sqlite3_stmt *st, int i, const char *dflt) {
    const unsigned char *t = sqlite3_column_text(st, i);
    return t && *t ? (const char *)t : dflt;
}

int frontier_load(sqlite3 *db, const char *task, FrRun **out, char *err, size_t errn) {
    static const char *sql =
        "SELECT id, task, COALESCE(NULLIF(variant,''), NULLIF(mixer,''), model, '?'), state_floats, lr, seed,"
        " accuracy, config_json, model, d_model, window, freqs, slots, feature_dim, state_dim"
        " FROM runs WHERE status = 'ok' AND accuracy IS NOT NULL AND state_floats > 0"
        " AND (?1 IS NULL OR task = ?1)"
        // One row per config hash, the newest (store_find_finished's choice): a --force rerun or a
        // duplicate of one config is the same seed, not another one.
        " AND id = (SELECT r2.id FROM runs r2 WHERE r2.config_hash = runs.config_hash AND r2.status = 'ok'"
        " AND r2.accuracy IS NOT NULL AND r2.state_floats > 0 ORDER BY r2.finished DESC, r2.id DESC LIMIT 1)"
        " ORDER BY id";
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        snprintf(err, errn, "cannot read runs: %s", sqlite3_errmsg(db));
        return -1;
    }
    if (task) sqlite3_bind_text(st, 1, task, -1, SQLITE_TRANSIENT);
    int cap = 64, n = 0, rc;
    FrRun *r = xmalloc(sizeof(FrRun) * (size_t)cap);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            cap *= 2;
            r = xrealloc(r, sizeof(FrRun) * (size_t)cap);
        }
        FrRun *x = &r[n++];
        memset(x, 0, sizeof *x);
        x->run_id = sqlite3_column_int64(st, 0);
        snprintf(x->task, sizeof x->task, "%s", col_text(st, 1, "?"));
        snprintf(x->variant, sizeof x->variant, "%s", col_text(st, 2, "?"));
        x->state_floats = sqlite3_column_double(st, 3);
        x->lr = sqlite3_column_double(st, 4);
        x->seed = (uint64_t)sqlite3_column_int64(st, 5);
        x->accuracy = sqlite3_column_double(st, 6);
        int d = sqlite3_column_int(st, 9), w = sqlite3_column_int(st, 10), f = sqlite3_column_int(st, 11);
        int m = sqlite3_column_int(st, 12), fd = sqlite3_column_int(st, 13), sd = sqlite3_column_int(st, 14);
        const char *cj = col_text(st, 7, NULL);
        const char *ta = cj ? strstr(cj, "\"train-automata\":") : NULL;
        x->train_automata = ta ? atoi(ta + 17) : 0;
        if (cj && strlen(cj) < sizeof x->key) {
            snprintf(x->key, sizeof x->key, "%s", cj);
            frontier_strip_seed(x->key);
        } else {
            snprintf(x->key, sizeof x->key, "%s|%d|%d|%d|%d|%d|%d|%.17g", col_text(st, 8, "?"), d, w, f, m, fd,
                     sd, x->lr);
        }
        int o = snprintf(x->desc, sizeof x->desc, "d=%d", d);
        if (w > 0) o += snprintf(x->desc + o, sizeof x->desc - (size_t)o, " W=%d", w);
        if (f > 0) o += snprintf(x->desc + o, sizeof x->desc - (size_t)o, " N=%d", f);
        if (m > 0) o += snprintf(x->desc + o, sizeof x->desc - (size_t)o, " m=%d", m);
        if (fd > 0) o += snprintf(x->desc + o, sizeof x->desc - (size_t)o, " f=%d", fd);
        if (sd > 0) snprintf(x->desc + o, sizeof x->desc - (size_t)o, " dstate=%d", sd);
    }
    if (rc != SQLITE_DONE) {
        snprintf(err, errn, "cannot read runs: %s", sqlite3_errmsg(db));
        sqlite3_finalize(st);
        free(r);
        return -1;
    }
    sqlite3_finalize(st);
    *out = r;
    return n;
}

const char *frontier_fmt_bytes(double b, char *buf, size_t n) {
    static const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (b >= 1024 && u < 4) b /= 1024, u++;
    if (u == 0 || fabs(b - round(b)) < 0.05 * (b < 10 ? 0.1 : 1)) snprintf(buf, n, "%.0f %s", b, unit[u]);
    else snprintf(buf, n, "%.*f %s", b < 10 ? 2 : 1, b, unit[u]);
    return buf;
}

int frontier_parse_levels(const char *s, double *levels, int max, char *err, size_t errn) {
    int n = 0;
    const char *p = s;
    while (*p) {
        char *e;
        errno = 0;
        double v = strtod(p, &e);
        if (e == p || errno || !(v > 0 && v <= 1) || (*e && *e != ',')) {
            snprintf(err, errn, "--levels %s: each level must be an accuracy in (0, 1], comma-separated", s);
            return -1;
        }
        if (n == max) {
            snprintf(err, errn, "--levels %s: at most %d levels", s, max);
            return -1;
        }
        levels[n++] = v;
        p = *e ? e + 1 : e;
    }
    if (n == 0) {
        snprintf(err, errn, "--levels '%s': give at least one level in (0, 1]", s);
        return -1;
    }
    return n;
}

const char *frontier_default_db(void) {
    static RunConfig c;
    config_defaults(&c);
    return c.db[0] ? c.db : "results/results.db";
}

Store *frontier_open_existing(const char *path) {
    if (!*path) die_usage("--db '': give the results database's file name");
    if (access(path, R_OK) != 0)
        die_runtime("cannot read results database %s: %s (run a sweep first, or pass --db PATH)", path,
                    strerror(errno));
    char err[512];
    Store *s = store_open_readonly(path, err, sizeof err);   // analyses never need write access
    if (!s) die_runtime("%s", err);
    return s;
}

int frontier_compute_runs(sqlite3 *db, const char *task, FrPoint **out, FrRun **runs_out, int *nruns) {
    char err[512];
    FrRun *runs;
    int n = frontier_load(db, task, &runs, err, sizeof err);
    if (n < 0) die_runtime("%s", err);
    // RegBench trained on different automata counts are different experiments: with more than one count
    // present, each count is its own task (its own best configs, frontier and ratios).
    int ta = -1, several = 0;
    for (int i = 0; i < n; i++)
        if (!strcmp(runs[i].task, "regbench")) {
            if (ta >= 0 && runs[i].train_automata != ta) several = 1;
            ta = runs[i].train_automata;
        }
    if (several)
        for (int i = 0; i < n; i++)
            if (!strcmp(runs[i].task, "regbench"))
                snprintf(runs[i].task, sizeof runs[i].task, "regbench-ta%d", runs[i].train_automata);
    int np = frontier_points(runs, n, out);
    frontier_pareto(*out, np);
    if (runs_out) {
        *runs_out = runs;
        *nruns = n;
    } else free(runs);
    return np;
}

int frontier_compute(sqlite3 *db, const char *task, FrPoint **out) {
    return frontier_compute_runs(db, task, out, NULL, NULL);
}

// ---------------------------------------------------------------------------------------------------------
// The spread of the ratios over seeds (frontier.h states the definition)

static int cmp_u64(const void *x, const void *y) {
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? -1 : a > b;
}

// 1 if every point of (task, variant) has a run of the seed (has[i], per point).
static int seed_at_every_size(const FrPoint *p, int np, const char *has, const char *task, const char *variant) {
    for (int i = 0; i < np; i++)
        if (!has[i] && !strcmp(p[i].task, task) && !strcmp(p[i].variant, variant)) return 0;
    return 1;
}

// A per-seed ratio that enters mean, sd, min and max: not "n/a" (a side does not reach the level) and not
// "partial" (the seed was not run at every state size of a side).
int spread_counts(const char *qual) { return strcmp(qual, "n/a") && strcmp(qual, "partial"); }

void frontier_fmt_ratio(char *b, size_t n, const char *qual, double r) {
    if (!strcmp(qual, "n/a")) snprintf(b, n, "n/a");
    else if (!strcmp(qual, "partial")) snprintf(b, n, "not at every size");
    else snprintf(b, n, "%s%.2fx", qual, r);
}

int frontier_seed_spread(const FrRun *runs, int nruns, const FrPoint *p, int np, const FrRatio *ratios, int nr,
                         const double *levels, int nlev, FrSpread **out) {
    FrSpread *sp = xcalloc((size_t)(nr > 0 ? nr : 1), sizeof(FrSpread));
    for (int k = 0; k < nr; k++) {
        snprintf(sp[k].task, sizeof sp[k].task, "%s", ratios[k].task);
        snprintf(sp[k].a, sizeof sp[k].a, "%s", ratios[k].a);
        snprintf(sp[k].b, sizeof sp[k].b, "%s", ratios[k].b);
        sp[k].level = ratios[k].level;
    }
    // The distinct seeds of the runs behind the chosen configurations.
    uint64_t *seeds = xmalloc(sizeof(uint64_t) * (size_t)(nruns > 0 ? nruns : 1));
    int ns = 0;
    for (int i = 0; i < nruns; i++) seeds[ns++] = runs[i].seed;
    qsort(seeds, (size_t)ns, sizeof *seeds, cmp_u64);
    int u = 0;
    for (int i = 0; i < ns; i++)
        if (!u || seeds[i] != seeds[u - 1]) seeds[u++] = seeds[i];
    ns = u;
    FrPoint *ps = xmalloc(sizeof(FrPoint) * (size_t)(np > 0 ? np : 1));
    char *has = xmalloc((size_t)(np > 0 ? np : 1));  // p[i] has a run of this seed
    for (int si = 0; si < ns; si++) {
        int nps = 0;
        memset(has, 0, (size_t)(np > 0 ? np : 1));
        for (int i = 0; i < np; i++)
            for (int j = 0; j < nruns; j++) {
                const FrRun *r = &runs[j];
                if (r->seed != seeds[si] || r->state_floats != p[i].state_floats || strcmp(r->task, p[i].task) ||
                    strcmp(r->variant, p[i].variant) || strcmp(r->key, p[i].key))
                    continue;
                ps[nps] = p[i];
                ps[nps].accuracy = r->accuracy;
                ps[nps].n_seeds = 1;
                nps++;
                has[i] = 1;
                break;
            }
        frontier_pareto(ps, nps);
        FrNeed *nd;
        int nn = frontier_needs(ps, nps, levels, nlev, &nd);
        FrRatio *rs;
        int nrs = frontier_ratios(nd, nn, NULL, &rs);
        for (int k = 0; k < nr; k++) {
            FrSpread *x = &sp[k];
            for (int q = 0; q < nrs; q++) {
                const FrRatio *y = &rs[q];
                int same = !strcmp(y->task, x->task) && y->level == x->level &&
                           ((!strcmp(y->a, x->a) && !strcmp(y->b, x->b)) || (!strcmp(y->a, x->b) && !strcmp(y->b, x->a)));
                if (!same || x->n_seeds >= FR_MAX_SEEDS) continue;
                // frontier_ratios orders pairs by name: flip when the headline pair is the other way round.
                int flip = strcmp(y->a, x->a) != 0;
                int i = x->n_seeds++;
                x->seed[i] = seeds[si];
                // a seed run at only some of a side's state sizes has a frontier of other points: listed, not counted
                if (!seed_at_every_size(p, np, has, x->task, x->a) || !seed_at_every_size(p, np, has, x->task, x->b)) {
                    strcpy(x->qual[i], "partial");
                    x->ratio[i] = 0;
                    break;
                }
                if (!strcmp(y->qual, "n/a")) { strcpy(x->qual[i], "n/a"); x->ratio[i] = 0; break; }
                x->ratio[i] = flip ? 1 / y->ratio : y->ratio;
                const char *qq = y->qual;
                if (flip) qq = !strcmp(qq, ">=") ? "<=" : !strcmp(qq, "<=") ? ">=" : qq;
                snprintf(x->qual[i], sizeof x->qual[i], "%s", qq);
                break;
            }
        }
        free(nd);
        free(rs);
    }
    for (int k = 0; k < nr; k++) {
        FrSpread *x = &sp[k];
        double sum = 0, ss = 0;
        x->mean = x->sd = x->min = x->max = NAN;
        for (int i = 0; i < x->n_seeds; i++) {
            if (!spread_counts(x->qual[i])) continue;
            double v = x->ratio[i];
            if (!x->n || v < x->min) x->min = v;
            if (!x->n || v > x->max) x->max = v;
            x->any_bound |= x->qual[i][0] != 0;
            sum += v;
            x->n++;
        }
        if (x->n) x->mean = sum / x->n;
        for (int i = 0; i < x->n_seeds; i++)
            if (spread_counts(x->qual[i])) ss += (x->ratio[i] - x->mean) * (x->ratio[i] - x->mean);
        if (x->n >= 2) x->sd = sqrt(ss / (x->n - 1));
    }
    free(ps);
    free(has);
    free(seeds);
    *out = sp;
    return nr;
}

void frontier_print_spread(FILE *f, const FrSpread *s, int ns, int nlev, int markdown) {
    if (!ns) return;
    for (int k = 0; k < ns; k += nlev) {
        if (k == 0 || strcmp(s[k].task, s[k - 1].task)) {
            if (markdown)
                fprintf(f, "\n### %s: ratio spread over seeds (per-seed frontiers; mean +- sd, min..max over the seeds "
                           "where both reach the level)\n\n| A | B | level | seeds | per seed | mean +- sd | min..max |\n"
                           "|---|---|---:|---:|---|---:|---:|\n", s[k].task);
            else
                fprintf(f, "\n== %s: ratio spread over seeds (per-seed frontiers; mean +- sd, min..max) ==\n", s[k].task);
        }
        for (int l = 0; l < nlev && k + l < ns; l++) {
            const FrSpread *x = &s[k + l];
            char per[512] = "", ms[64], mm[64];
            size_t o = 0;
            for (int i = 0; i < x->n_seeds && o + 40 < sizeof per; i++) {
                char b[32];
                frontier_fmt_ratio(b, sizeof b, x->qual[i], x->ratio[i]);
                o += (size_t)snprintf(per + o, sizeof per - o, "%sseed %llu: %s", i ? ", " : "",
                                      (unsigned long long)x->seed[i], b);
            }
            if (!x->n) snprintf(ms, sizeof ms, "n/a"), snprintf(mm, sizeof mm, "n/a");
            else {
                if (x->n >= 2) snprintf(ms, sizeof ms, "%.2f +- %.2f", x->mean, x->sd);
                else snprintf(ms, sizeof ms, "%.2f (1 seed)", x->mean);
                snprintf(mm, sizeof mm, "%.2f..%.2f%s", x->min, x->max, x->any_bound ? " (bounds)" : "");
            }
            if (markdown)
                fprintf(f, "| %s | %s | %.2f | %d/%d | %s | %s | %s |\n", x->a, x->b, x->level, x->n, x->n_seeds,
                        *per ? per : "–", ms, mm);
            else
                fprintf(f, "%-18s  %-18s  acc %.2f  %d/%d seeds  %-14s  %-16s  %s\n", x->a, x->b, x->level, x->n,
                        x->n_seeds, ms, mm, per);
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// The command

static void usage(FILE *f) {
    fprintf(f,
            "usage: recallbench frontier [--db PATH | --csv-in SPEC] [--task mqar|regbench] [--levels 0.5,0.7,0.9] [--vs VARIANT]\n"
            "                            [--csv FILE] [--json]\n"
            "Per (task, variant, state size) the best configuration (lr and mixer knobs), chosen on the seeds\n"
            "every configuration of that state has (all its seeds where none is shared) and shown with its\n"
            "accuracy averaged over all its seeds; the Pareto frontier of accuracy vs state; the state each\n"
            "variant needs to reach each level\n"
            "(interpolated linearly in log2(state) between the two frontier points around it; \"<= X\" when the\n"
            "smallest measured state already reaches it; \"not reached\" when no point does), and the efficiency\n"
            "ratio R = state_B / state_A of every pair (A reaches the level with R x less state than B).\n"
            "Reads runs with status ok. State is shown in bytes (4 x state floats).\n"
            "Ratio spread over seeds: per seed, each variant's frontier keeps the configuration chosen per state size\n"
            "and takes that seed's accuracy; the ratio is computed along these per-seed frontiers the same way; mean +- sd\n"
            "(n - 1) and min..max over the seeds where both reach the level. A seed not run at every state size of\n"
            "both variants is listed as \"not at every size\" and left out (its frontier would compare other points).\n"
            "RegBench runs of more than one --train-automata count are split into tasks regbench-ta<N>.\n"
            "  --db PATH        results database (default %s)\n"
            "  --csv-in SPEC    read exported CSVs instead of a database (recallbench export): files and/or\n"
            "                   directories (their *.csv exports), comma-separated\n"
            "  --task T         only this task: mqar | regbench (default: every task in the database)\n"
            "  --levels L,...   accuracy levels in (0, 1] (default 0.5,0.7,0.9)\n"
            "  --threshold X    same as --levels X (one level)\n"
            "  --vs VARIANT     ratios of VARIANT against every other variant only (default: every pair)\n"
            "  --csv FILE       also write the points to FILE, the needs to FILE_levels.csv and the ratios to\n"
            "                   FILE_ratios.csv and the per-seed ratios to FILE_spread.csv (FILE without its .csv suffix)\n"
            "  --json           print one JSON object {\"rows\", \"levels\", \"ratios\", \"spread\"} instead of the tables\n"
            "  --help           this text\n"
            "Exit status: 0 ok, 2 bad flag or value, 1 database or file error.\n",
            frontier_default_db());
}

static const char *need_text(int kind, double floats, char *buf, size_t n) {
    char b[32];
    if (kind == FR_NOT_REACHED) snprintf(buf, n, "not reached");
    else snprintf(buf, n, "%s%s", kind == FR_AT_MOST ? "<= " : "", frontier_fmt_bytes(4 * floats, b, sizeof b));
    return buf;
}

static const char *kind_name(int k) {
    return k == FR_REACHED ? "reached" : k == FR_AT_MOST ? "at_most" : "not_reached";
}

// Tables as plain text (markdown = 0) or markdown pipe tables (report.c reuses this).
void frontier_print_tables(FILE *f, const FrPoint *p, int np, const FrNeed *nd, int nn, const FrRatio *r,
                           int nr, const double *levels, int nlev, int markdown) {
    const char *sep = markdown ? " | " : "  ";
    for (int i = 0; i < np; i++) {
        const char *task = p[i].task;
        if (i > 0 && !strcmp(task, p[i - 1].task)) continue;
        if (markdown) fprintf(f, "\n### %s: best configuration per state size\n\n", task);
        else fprintf(f, "\n== %s: best configuration per state size (* = on the Pareto frontier) ==\n", task);
        if (markdown)
            fprintf(f, "| variant | state | accuracy | lr | seeds | configs | best config | frontier |\n"
                       "|---|---:|---:|---:|---:|---:|---|:---:|\n");
        else
            fprintf(f, "%-18s%s%10s%s%8s%s%9s%s%5s%s%7s%s%-24s\n", "variant", sep, "state", sep, "accuracy", sep,
                    "lr", sep, "seeds", sep, "configs", sep, "best config");
        for (int j = i; j < np && !strcmp(p[j].task, task); j++) {
            char b[32];
            frontier_fmt_bytes(4 * p[j].state_floats, b, sizeof b);
            if (markdown)
                fprintf(f, "| %s | %s | %.3f | %.3g | %d | %d | %s | %s |\n", p[j].variant, b, p[j].accuracy,
                        p[j].lr, p[j].n_seeds, p[j].n_configs, p[j].desc, p[j].on_frontier ? "*" : "");
            else
                fprintf(f, "%-18s%s%10s%s%8.3f%s%9.3g%s%5d%s%7d%s%-24s%s\n", p[j].variant, sep, b, sep,
                        p[j].accuracy, sep, p[j].lr, sep, p[j].n_seeds, sep, p[j].n_configs, sep, p[j].desc,
                        p[j].on_frontier ? " *" : "");
        }
        // Needs: one row per variant, one column per level.
        if (markdown) {
            fprintf(f, "\n### %s: state needed to reach each accuracy\n\n| variant |", task);
            for (int l = 0; l < nlev; l++) fprintf(f, " acc %.2f |", levels[l]);
            fprintf(f, "\n|---|");
            for (int l = 0; l < nlev; l++) fprintf(f, "---:|");
            fputc('\n', f);
        } else {
            fprintf(f, "\n== %s: state needed to reach each accuracy (log2-interpolated along the frontier) ==\n",
                    task);
            fprintf(f, "%-18s", "variant");
            for (int l = 0; l < nlev; l++) fprintf(f, "%s%14s%.2f", sep, "acc ", levels[l]);
            fputc('\n', f);
        }
        for (int k = 0; k < nn; k += nlev) {
            if (strcmp(nd[k].task, task)) continue;
            fprintf(f, markdown ? "| %s |" : "%-18s", nd[k].variant);
            for (int l = 0; l < nlev; l++) {
                char b[48];
                need_text(nd[k + l].kind, nd[k + l].state_floats, b, sizeof b);
                if (markdown) fprintf(f, " %s |", b);
                else fprintf(f, "%s%18s", sep, b);
            }
            fputc('\n', f);
        }
        // Ratios: one row per pair, one column per level.
        int any = 0;
        for (int k = 0; k < nr; k++) any |= !strcmp(r[k].task, task);
        if (!any) continue;
        if (markdown) {
            fprintf(f, "\n### %s: state efficiency (R = state_B / state_A: A reaches the accuracy with R x less "
                       "state than B)\n\n| A | B |", task);
            for (int l = 0; l < nlev; l++) fprintf(f, " acc %.2f |", levels[l]);
            fprintf(f, "\n|---|---|");
            for (int l = 0; l < nlev; l++) fprintf(f, "---:|");
            fputc('\n', f);
        } else {
            fprintf(f, "\n== %s: state efficiency R = state_B / state_A (A reaches the accuracy with R x less "
                       "state than B) ==\n", task);
            fprintf(f, "%-18s%s%-18s", "A", sep, "B");
            for (int l = 0; l < nlev; l++) fprintf(f, "%s%10s%.2f", sep, "acc ", levels[l]);
            fputc('\n', f);
        }
        for (int k = 0; k < nr; k += nlev) {
            if (strcmp(r[k].task, task)) continue;
            if (markdown) fprintf(f, "| %s | %s |", r[k].a, r[k].b);
            else fprintf(f, "%-18s%s%-18s", r[k].a, sep, r[k].b);
            for (int l = 0; l < nlev; l++) {
                const FrRatio *x = &r[k + l];
                char b[32];
                frontier_fmt_ratio(b, sizeof b, x->qual, x->ratio);
                if (markdown) fprintf(f, " %s |", b);
                else fprintf(f, "%s%14s", sep, b);
            }
            fputc('\n', f);
        }
        if (!markdown)
            fprintf(f, "(\"<= X\": reached already at the smallest measured state; \">=R\"/\"<=R\": a bound, since "
                       "one side is such an upper bound; \"~\": both are; n/a: a side does not reach the level)\n");
    }
}

// CSV files go through out_open/out_commit (util.h): complete or absent, links and devices kept.
static OutFile csv_out;
static FILE *open_csv(const char *base, const char *suffix, char *path, size_t n) {
    size_t bl = strlen(base);
    if (!bl) die_usage("--csv '': give a file name");
    if (!suffix) snprintf(path, n, "%s", base);
    else if (bl > 4 && !strcmp(base + bl - 4, ".csv")) snprintf(path, n, "%.*s_%s.csv", (int)(bl - 4), base, suffix);
    else snprintf(path, n, "%s_%s.csv", base, suffix);
    frontier_mkdir_parent(path);
    char err[4400];
    if (out_open(&csv_out, path, NULL, err, sizeof err)) die_runtime("%s", err);
    return csv_out.f;
}

static void close_csv(FILE *f, const char *path) {
    char err[4400];
    (void)f; (void)path;
    if (out_commit(&csv_out, err, sizeof err)) die_runtime("%s", err);
}

static void write_csv(const char *base, const FrPoint *p, int np, const FrNeed *nd, int nn, const FrRatio *r,
                      int nr) {
    char path[1100];
    FILE *f = open_csv(base, NULL, path, sizeof path);
    fprintf(f, "task,variant,state_floats,state_bytes,accuracy,lr,seeds,configs,on_frontier,best_run,config\n");
    for (int i = 0; i < np; i++)
        fprintf(f, "%s,%s,%.17g,%.17g,%.6f,%.6g,%d,%d,%d,%lld,\"%s\"\n", p[i].task, p[i].variant, p[i].state_floats,
                4 * p[i].state_floats, p[i].accuracy, p[i].lr, p[i].n_seeds, p[i].n_configs, p[i].on_frontier,
                (long long)p[i].best_run, p[i].desc);
    close_csv(f, path);
    fprintf(stderr, "wrote %s\n", path);
    f = open_csv(base, "levels", path, sizeof path);
    fprintf(f, "task,variant,level,state_bytes,kind\n");
    for (int i = 0; i < nn; i++) {
        fprintf(f, "%s,%s,%.4g,", nd[i].task, nd[i].variant, nd[i].level);
        if (nd[i].kind != FR_NOT_REACHED) fprintf(f, "%.6g", 4 * nd[i].state_floats);
        fprintf(f, ",%s\n", kind_name(nd[i].kind));
    }
    close_csv(f, path);
    fprintf(stderr, "wrote %s\n", path);
    f = open_csv(base, "ratios", path, sizeof path);
    fprintf(f, "task,level,a,b,state_bytes_a,state_bytes_b,ratio,qualifier\n");
    for (int i = 0; i < nr; i++) {
        fprintf(f, "%s,%.4g,%s,%s,", r[i].task, r[i].level, r[i].a, r[i].b);
        if (r[i].kind_a != FR_NOT_REACHED) fprintf(f, "%.6g", 4 * r[i].state_a);
        fputc(',', f);
        if (r[i].kind_b != FR_NOT_REACHED) fprintf(f, "%.6g", 4 * r[i].state_b);
        fputc(',', f);
        if (strcmp(r[i].qual, "n/a")) fprintf(f, "%.6g", r[i].ratio);
        fprintf(f, ",%s\n", r[i].qual);
    }
    close_csv(f, path);
    fprintf(stderr, "wrote %s\n", path);
}

static void write_json(FILE *f, const FrPoint *p, int np, const FrNeed *nd, int nn, const FrRatio *r, int nr) {
    fputs("{\"rows\": [", f);
    for (int i = 0; i < np; i++) {
        fprintf(f, "%s{\"task\": ", i ? ", " : "");
        json_string(f, p[i].task);
        fputs(", \"variant\": ", f);
        json_string(f, p[i].variant);
        fprintf(f, ", \"state_floats\": %.17g, \"state_bytes\": %.17g, \"accuracy\": %.6f, \"lr\": %.6g, "
                   "\"seeds\": %d, \"configs\": %d, \"frontier\": %s, \"run_id\": %lld, \"config\": ",
                p[i].state_floats, 4 * p[i].state_floats, p[i].accuracy, p[i].lr, p[i].n_seeds, p[i].n_configs,
                p[i].on_frontier ? "true" : "false", (long long)p[i].best_run);
        json_string(f, p[i].desc);
        fputc('}', f);
    }
    fputs("], \"levels\": [", f);
    for (int i = 0; i < nn; i++) {
        fprintf(f, "%s{\"task\": ", i ? ", " : "");
        json_string(f, nd[i].task);
        fputs(", \"variant\": ", f);
        json_string(f, nd[i].variant);
        fprintf(f, ", \"level\": %.4g, \"state_bytes\": ", nd[i].level);
        if (nd[i].kind == FR_NOT_REACHED) fputs("null", f);
        else fprintf(f, "%.6g", 4 * nd[i].state_floats);
        fprintf(f, ", \"reached\": \"%s\"}", kind_name(nd[i].kind));
    }
    fputs("], \"ratios\": [", f);
    for (int i = 0; i < nr; i++) {
        fprintf(f, "%s{\"task\": ", i ? ", " : "");
        json_string(f, r[i].task);
        fputs(", \"a\": ", f);
        json_string(f, r[i].a);
        fputs(", \"b\": ", f);
        json_string(f, r[i].b);
        fprintf(f, ", \"level\": %.4g, \"ratio\": ", r[i].level);
        if (!strcmp(r[i].qual, "n/a")) fputs("null", f);
        else fprintf(f, "%.6g", r[i].ratio);
        fprintf(f, ", \"qualifier\": \"%s\", \"a_reached\": \"%s\", \"b_reached\": \"%s\"}", r[i].qual,
                kind_name(r[i].kind_a), kind_name(r[i].kind_b));
    }
    fputs("]}\n", f);
}

// Flag helper shared by the analysis commands: "--name value" or "--name=value"; returns the value or NULL.
const char *frontier_flag_value(int argc, char **argv, int *i, const char *name) {
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n)) return NULL;
    if (a[n] == '=') return a + n + 1;
    if (a[n]) return NULL;
    if (*i + 1 >= argc) die_usage("%s needs a value (see --help)", name);
    return argv[++*i];
}

int frontier_check_task(const char *t) {
    if (strcmp(t, "mqar") && strcmp(t, "regbench")) die_usage("--task %s: must be mqar or regbench", t);
    return 0;
}

static void write_spread_json(FILE *f, const FrSpread *sp, int ns) {
    fputs(", \"spread\": [", f);
    for (int i = 0; i < ns; i++) {
        const FrSpread *x = &sp[i];
        fprintf(f, "%s{\"task\": ", i ? ", " : "");
        json_string(f, x->task);
        fputs(", \"a\": ", f);
        json_string(f, x->a);
        fputs(", \"b\": ", f);
        json_string(f, x->b);
        fprintf(f, ", \"level\": %.4g, \"per_seed\": [", x->level);
        for (int k = 0; k < x->n_seeds; k++) {
            fprintf(f, "%s{\"seed\": %llu, \"ratio\": ", k ? ", " : "", (unsigned long long)x->seed[k]);
            if (!spread_counts(x->qual[k])) fputs("null", f);
            else fprintf(f, "%.6g", x->ratio[k]);
            fprintf(f, ", \"qualifier\": \"%s\"}", x->qual[k]);
        }
        fprintf(f, "], \"n\": %d", x->n);
        const char *nm[4] = {"mean", "sd", "min", "max"};
        double v[4] = {x->mean, x->sd, x->min, x->max};
        for (int k = 0; k < 4; k++) {
            if (isfinite(v[k])) fprintf(f, ", \"%s\": %.6g", nm[k], v[k]);
            else fprintf(f, ", \"%s\": null", nm[k]);
        }
        fprintf(f, ", \"bounds\": %s}", x->any_bound ? "true" : "false");
    }
    fputc(']', f);
}

static void write_spread_csv(const char *base, const FrSpread *sp, int ns) {
    char path[1100];
    FILE *f = open_csv(base, "spread", path, sizeof path);
    fprintf(f, "task,level,a,b,seed,ratio,qualifier\n");
    for (int i = 0; i < ns; i++)
        for (int k = 0; k < sp[i].n_seeds; k++) {
            fprintf(f, "%s,%.4g,%s,%s,%llu,", sp[i].task, sp[i].level, sp[i].a, sp[i].b,
                    (unsigned long long)sp[i].seed[k]);
            if (spread_counts(sp[i].qual[k])) fprintf(f, "%.6g", sp[i].ratio[k]);
            fprintf(f, ",%s\n", sp[i].qual[k]);
        }
    close_csv(f, path);
    fprintf(stderr, "wrote %s\n", path);
}

int cmd_frontier(int argc, char **argv) {
    const char *db = NULL, *task = NULL, *csv = NULL, *vs = NULL, *csv_in = NULL, *v;
    int json = 0;
    double levels[MAX_LEVELS] = {0.5, 0.7, 0.9};
    int nlev = 3;
    char err[256];
    for (int i = frontier_arg_start(argc, argv, "frontier"); i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return 0; }
        else if (!strcmp(a, "--json")) json = 1;
        else if ((v = frontier_flag_value(argc, argv, &i, "--db"))) db = v;
        else if ((v = frontier_flag_value(argc, argv, &i, "--csv-in"))) csv_in = v;
        else if ((v = frontier_flag_value(argc, argv, &i, "--task"))) frontier_check_task(task = v);
        else if ((v = frontier_flag_value(argc, argv, &i, "--csv"))) csv = v;
        else if ((v = frontier_flag_value(argc, argv, &i, "--vs"))) vs = v;
        else if ((v = frontier_flag_value(argc, argv, &i, "--levels")) ||
                 (v = frontier_flag_value(argc, argv, &i, "--threshold"))) {
            if ((nlev = frontier_parse_levels(v, levels, MAX_LEVELS, err, sizeof err)) < 0) die_usage("%s", err);
        } else die_usage("frontier: unknown argument '%s' (see recallbench frontier --help)", a);
    }
    const char *src;
    Store *s = export_open_source(db, csv_in, &src);
    FrPoint *p;
    FrRun *runs;
    int nruns;
    int np = frontier_compute_runs(store_db(s), task, &p, &runs, &nruns);
    if (vs) {
        int found = 0;
        for (int i = 0; i < np; i++) found |= !strcmp(p[i].variant, vs);
        if (!found) die_usage("--vs %s: no finished runs of that variant in %s", vs, src);
    }
    FrNeed *nd;
    int nn = frontier_needs(p, np, levels, nlev, &nd);
    FrRatio *r;
    int nr = frontier_ratios(nd, nn, vs, &r);
    FrSpread *sp;
    int nsp = frontier_seed_spread(runs, nruns, p, np, r, nr, levels, nlev, &sp);
    if (np == 0) fprintf(stderr, "recallbench: no finished runs%s%s in %s\n", task ? " of task " : "", task ? task : "", src);
    if (json) {
        // write_json ends the object with "]}\n": print it to a buffer and splice the spread in before the brace.
        char *buf = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&buf, &len);
        if (!m) die_runtime("out of memory");
        write_json(m, p, np, nd, nn, r, nr);
        fclose(m);
        if (len >= 2 && buf[len - 2] == '}') {
            fwrite(buf, 1, len - 2, stdout);
            write_spread_json(stdout, sp, nsp);
            fputs("}\n", stdout);
        } else fputs(buf, stdout);
        free(buf);
    } else {
        printf("frontier of %s: %d state sizes\n", src, np);
        frontier_print_tables(stdout, p, np, nd, nn, r, nr, levels, nlev, 0);
        frontier_print_spread(stdout, sp, nsp, nlev, 0);
    }
    if (csv) {
        write_csv(csv, p, np, nd, nn, r, nr);
        write_spread_csv(csv, sp, nsp);
    }
    if (fflush(stdout)) die_runtime("cannot write output: %s", strerror(errno));
    free(p);
    free(runs);
    free(nd);
    free(r);
    free(sp);
    store_close(s);
    return 0;
}

int frontier_arg_start(int argc, char **argv, const char *cmd) {
    int i = 0;
    if (i < argc) {
        const char *b = strrchr(argv[i], '/');
        b = b ? b + 1 : argv[i];
        if (!strcmp(b, "recallbench") || !strcmp(b, "exe")) i++;
    }
    if (i < argc && !strcmp(argv[i], cmd)) i++;
    return i;
}

void frontier_mkdir_parent(const char *path) {
    char d[4096];
    snprintf(d, sizeof d, "%s", path);
    char *sl = strrchr(d, '/');
    if (!sl || sl == d) return;
    *sl = 0;
    for (char *p = d + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        mkdir(d, 0777);
        *p = '/';
    }
    if (mkdir(d, 0777) != 0 && errno != EEXIST) die_runtime("cannot create directory %s: %s", d, strerror(errno));
}
