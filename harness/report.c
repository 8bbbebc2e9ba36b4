// report.c — `recallbench report`: a markdown summary of a results database: runs per variant and status,
// the frontier tables, state-efficiency ratios, links to the figures. Depends on frontier.h, store.h, sqlite3.
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "frontier.h"
#include "rb_build.h"
#include "store.h"
#include "util.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: recallbench report [--db PATH | --csv-in SPEC | --from-csv SPEC] [--out FILE] [--task mqar|regbench]\n"
            "                          [--levels 0.5,0.7,0.9] [--vs VARIANT] [--figures DIR] [--paper] [--draw]\n"
            "                          [--pair A,B] [--improve-min X]\n"
            "Writes a markdown summary: runs per (task, variant) and status, the best configuration per state size\n"
            "with the Pareto frontier, the state each variant needs per accuracy level, state-efficiency ratios\n"
            "(as recallbench frontier computes them), and links to the figures of recallbench plot.\n"
            "  --db PATH        results database (default %s)\n"
            "  --out FILE       write to FILE instead of stdout (figure links are made relative to FILE's directory)\n"
            "  --task T         only this task: mqar | regbench\n"
            "  --levels L,...   accuracy levels in (0, 1] (default 0.5,0.7,0.9)\n"
            "  --vs VARIANT     ratios of VARIANT against every other variant only (default: every pair)\n"
            "  --figures DIR    where recallbench plot wrote the figures (default plots/out; with --paper: plots)\n"
            "  --csv-in SPEC    read exported CSVs (recallbench export) instead of a database: files and/or\n"
            "                   directories of them, comma-separated\n"
            "  --paper          add the BLA paper's sections (issue 12): BLA's ratio against every other MQAR mixer\n"
            "                   with its spread over seeds, the RegBench growth with state per training-automata count\n"
            "                   and the in-context n-gram baselines, the paper's claims beside the numbers, the compute\n"
            "                   time per backend and device; levels default to 0.5,0.7,0.9,0.99\n"
            "  --draw           --paper, and first draw the paper figures into --figures (as plot --paper does)\n"
            "  --from-csv SPEC  --csv-in SPEC --draw: the one command that rebuilds REPORT.md and the figures from the\n"
            "                   committed CSVs: report --from-csv results/ --out results/REPORT.md --figures plots\n"
            "  --pair A,B       the pair of the bla_vs_swa figure (default bla,swa)\n"
            "  --improve-min X  RegBench: a model improves with state if its accuracy at the largest state exceeds the\n"
            "                   smallest by more than X (default 0.02)\n"
            "  --help           this text\n"
            "Exit status: 0 ok, 2 bad flag or value, 1 database or file error.\n",
            frontier_default_db());
}

// Path of target relative to directory base (both as the user gave them, relative to the cwd or absolute).
static void relpath(const char *base, const char *target, char *out, size_t n) {
    char rb[PATH_MAX], rt[PATH_MAX];
    if (!realpath(base, rb) || !realpath(target, rt)) { snprintf(out, n, "%s", target); return; }
    size_t i = 0, common = 0;
    while (rb[i] && rb[i] == rt[i]) {
        if (rb[i] == '/') common = i;
        i++;
    }
    if (!rb[i] && (rt[i] == '/' || !rt[i])) common = i;
    out[0] = 0;
    size_t o = 0;
    for (const char *p = rb + common; *p; p++)
        if (*p == '/' && o + 4 < n) o += (size_t)snprintf(out + o, n - o, "../");
    const char *rest = rt + common;
    if (*rest == '/') rest++;
    snprintf(out + o, n - o, "%s", *rest ? rest : ".");
    size_t l = strlen(out);
    if (l > 1 && out[l - 1] == '.' && out[l - 2] == '/') out[l - 2] = 0;
}

static void runs_table(FILE *f, sqlite3 *db, const char *task) {
    sqlite3_stmt *st;
    const char *sql =
        "SELECT task, COALESCE(NULLIF(variant,''), NULLIF(mixer,''), model, '?') v, count(*),"
        " sum(status = 'ok'), sum(status = 'diverged'), sum(status = 'failed'), sum(status = 'interrupted'),"
        " sum(status = 'running'), max(CASE WHEN status = 'ok' THEN accuracy END),"
        " count(DISTINCT CASE WHEN status = 'ok' THEN state_floats END), avg(CASE WHEN status = 'ok' THEN tokens_per_s END),"
        " (SELECT group_concat(x, ' ') FROM (SELECT DISTINCT printf('%g', r2.lr) x FROM runs r2 WHERE r2.status = 'ok'"
        "   AND r2.task IS runs.task AND COALESCE(NULLIF(r2.variant,''), NULLIF(r2.mixer,''), r2.model, '?') ="
        "   COALESCE(NULLIF(runs.variant,''), NULLIF(runs.mixer,''), runs.model, '?') ORDER BY r2.lr)),"
        " count(DISTINCT CASE WHEN status = 'ok' THEN seed END)"
        " FROM runs WHERE (?1 IS NULL OR task = ?1) GROUP BY task, v ORDER BY task, v";
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) die_runtime("cannot read runs: %s", sqlite3_errmsg(db));
    if (task) sqlite3_bind_text(st, 1, task, -1, SQLITE_TRANSIENT);
    // The lrs and seeds that finished, per variant: a frontier that picks the best lr per state compares
    // fairly only between variants that tried the same lrs (a sweep in progress may not have yet).
    fprintf(f, "## Runs\n\nOne row of the database per sitting: a run stopped (interrupted) and resumed from its checkpoint, or "
               "started again, counts once per sitting in *runs* and *interrupted*, and once in *ok* when it finishes.\n\n"
               "| task | variant | runs | ok | diverged | failed | interrupted | running | state sizes | "
               "best accuracy | mean tokens/s | lrs (ok runs) | seeds |\n"
               "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|\n");
    int rows = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        fprintf(f, "| %s | %s |", sqlite3_column_text(st, 0) ? (const char *)sqlite3_column_text(st, 0) : "?",
                (const char *)sqlite3_column_text(st, 1));
        for (int c = 2; c <= 7; c++) fprintf(f, " %d |", sqlite3_column_int(st, c));
        fprintf(f, " %d |", sqlite3_column_int(st, 9));
        if (sqlite3_column_type(st, 8) == SQLITE_NULL) fprintf(f, " – |");
        else fprintf(f, " %.3f |", sqlite3_column_double(st, 8));
        if (sqlite3_column_type(st, 10) == SQLITE_NULL) fprintf(f, " – |");
        else fprintf(f, " %.0f |", sqlite3_column_double(st, 10));
        const unsigned char *lrs = sqlite3_column_text(st, 11);
        fprintf(f, " %s | %d |\n", lrs && *lrs ? (const char *)lrs : "–", sqlite3_column_int(st, 12));
        rows++;
    }
    if (rc != SQLITE_DONE) die_runtime("cannot read runs: %s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    if (!rows) fprintf(f, "| – | (no runs) | 0 | 0 | 0 | 0 | 0 | 0 | 0 | – | – | – | 0 |\n");
}

// ---------------------------------------------------------------------------------------------------------
// The BLA paper's sections (issue 12): ratios with their spread over seeds, the RegBench answer, the paper's
// claims against the numbers, the GPU time. Every number comes from the data; nothing here is a result.

static int is_bla(const char *v) { return !strncmp(v, "bla", 3); }

// Ratios of every BLA variant (A) against every non-BLA variant (B) of MQAR, with the spread over seeds.
static void paper_ratios(FILE *f, const FrRun *runs, int nruns, const FrPoint *p, int np, const double *levels,
                         int nlev, FrRatio **ro, FrSpread **so, int *nro) {
    FrNeed *nd;
    int nn = frontier_needs(p, np, levels, nlev, &nd);
    FrRatio *all = NULL;
    int na = 0;
    for (int i = 0; i < np; i++) {
        if (strcmp(p[i].task, "mqar") || !is_bla(p[i].variant) || (i > 0 && !strcmp(p[i].variant, p[i - 1].variant) &&
                                                                     !strcmp(p[i].task, p[i - 1].task)))
            continue;
        FrRatio *r;
        int nr = frontier_ratios(nd, nn, p[i].variant, &r);
        for (int k = 0; k < nr; k++) {
            if (strcmp(r[k].task, "mqar") || is_bla(r[k].b)) continue;
            all = xrealloc(all, sizeof(FrRatio) * (size_t)(na + 1));
            all[na++] = r[k];
        }
        free(r);
    }
    free(nd);
    FrSpread *sp;
    frontier_seed_spread(runs, nruns, p, np, all, na, levels, nlev, &sp);
    fprintf(f, "\n## State efficiency of BLA on MQAR\n\n"
               "R = state_B / state_A at the accuracy level: A reaches the level with R x less state than B. The "
               "needed state is interpolated linearly in log2(state) between the two Pareto-frontier points around the "
               "level (`recallbench frontier`'s definition); `<=`/`>=`: a bound (a side already reaches the level at "
               "its smallest measured state); n/a: a side does not reach it. *R (mean frontier)* uses the accuracy "
               "averaged over seeds; the spread uses one frontier per seed: the configuration chosen per state size is "
               "kept and that seed's accuracy taken (a seed not run at every state size of both variants is listed as "
               "\"not at every size\" and left out), and mean +- sd (n - 1) and min..max are over the seeds where both "
               "reach the level.\n\n");
    if (!na) { fprintf(f, "No MQAR runs of a BLA variant and another mixer: no ratios yet.\n"); }
    else {
        fprintf(f, "| A | B | level | R (mean frontier) | per seed | mean +- sd | min..max | seeds |\n"
                   "|---|---|---:|---:|---|---:|---:|---:|\n");
        for (int k = 0; k < na; k++) {
            const FrSpread *x = &sp[k];
            char r[32], per[512] = "", ms[64] = "–", mm[64] = "–";
            frontier_fmt_ratio(r, sizeof r, all[k].qual, all[k].ratio);
            size_t o = 0;
            for (int i = 0; i < x->n_seeds && o + 40 < sizeof per; i++) {
                char b[32];
                frontier_fmt_ratio(b, sizeof b, x->qual[i], x->ratio[i]);
                o += (size_t)snprintf(per + o, sizeof per - o, "%s%llu: %s", i ? ", " : "", (unsigned long long)x->seed[i], b);
            }
            if (x->n >= 2) snprintf(ms, sizeof ms, "%.2f +- %.2f", x->mean, x->sd);
            else if (x->n == 1) snprintf(ms, sizeof ms, "%.2f (1 seed)", x->mean);
            if (x->n) snprintf(mm, sizeof mm, "%.2f..%.2f%s", x->min, x->max, x->any_bound ? " (bounds)" : "");
            fprintf(f, "| %s | %s | %.2f | %s | %s | %s | %s | %d/%d |\n", all[k].a, all[k].b, all[k].level, r,
                    *per ? per : "–", ms, mm, x->n, x->n_seeds);
        }
    }
    *ro = all;
    *so = sp;
    *nro = na;
}

// MQAR, A against B per test configuration (sequence length L, K pairs): each split's accuracy alone makes a
// frontier (the configuration per state size chosen by that split's accuracy), and the ratio of the two needs
// at each level is computed as for the mean. Shows at which lengths the state efficiency is won or lost.
typedef struct {
    char a[48], b[48];
    int n, n8;                      // exact ratios (both sides reach the level on the split), of them >= 8
    double lo, hi, hi_level;        // their range; the level and split of the largest
    char hi_split[32];
} SplitRatios;

static void paper_ratio_by_split(FILE *f, const FrRun *runs, int nruns, const ExRow *rows, int nrows, const char *a,
                                 const char *b, const double *levels, int nlev, SplitRatios *sr) {
    memset(sr, 0, sizeof *sr);
    snprintf(sr->a, sizeof sr->a, "%s", a);
    snprintf(sr->b, sizeof sr->b, "%s", b);
    char labels[EX_MAX_SPLITS][32];
    int nl = export_split_labels(rows, nrows, "mqar", labels, EX_MAX_SPLITS);  // test splits (export_load has no train)
    if (!nl) return;
    fprintf(f, "\n### %s against %s per test length\n\n"
               "The same ratio on each test split's accuracy alone (the best configuration per state size chosen by "
               "that split): where the mean's efficiency comes from. *best*: each side's highest accuracy on the "
               "split over its measured states.\n\n| test split | best %s | best %s |", a, b, a, b);
    for (int l = 0; l < nlev; l++) fprintf(f, " R at %.2f |", levels[l]);
    fprintf(f, "\n|---|---:|---:|");
    for (int l = 0; l < nlev; l++) fprintf(f, "---:|");
    fputc('\n', f);
    FrRun *sub = xmalloc(sizeof(FrRun) * (size_t)(nruns ? nruns : 1));
    const ExRow **row_of = xmalloc(sizeof *row_of * (size_t)(nruns ? nruns : 1));  // runs[i]'s row, or NULL
    for (int i = 0; i < nruns; i++) {
        row_of[i] = NULL;
        if (strcmp(runs[i].task, "mqar") || (strcmp(runs[i].variant, a) && strcmp(runs[i].variant, b))) continue;
        for (int k = 0; k < nrows && !row_of[i]; k++) row_of[i] = rows[k].run_id == runs[i].run_id ? &rows[k] : NULL;
    }
    for (int j = 0; j < nl; j++) {
        int ns = 0;
        double best[2] = {-1, -1};
        for (int i = 0; i < nruns; i++) {
            const FrRun *r = &runs[i];
            const ExRow *x = row_of[i];
            int side = !strcmp(r->variant, a) ? 0 : 1;
            for (int k = 0; x && k < x->nacc; k++)
                if (!strcmp(x->labels[k], labels[j]) && isfinite(x->acc[k])) {
                    sub[ns] = *r;
                    sub[ns++].accuracy = x->acc[k];
                    if (x->acc[k] > best[side]) best[side] = x->acc[k];
                }
        }
        FrPoint *pp;
        int npp = frontier_points(sub, ns, &pp);
        frontier_pareto(pp, npp);
        FrNeed *nd;
        int nn = frontier_needs(pp, npp, levels, nlev, &nd);
        FrRatio *rr;
        int nr = frontier_ratios(nd, nn, a, &rr);
        fprintf(f, "| %s |", labels[j]);
        for (int s = 0; s < 2; s++)
            if (best[s] >= 0) fprintf(f, " %.3f |", best[s]);
            else fprintf(f, " – |");
        for (int l = 0; l < nlev; l++) {
            char t[32] = "n/a";
            for (int k = 0; k < nr; k++) {
                if (strcmp(rr[k].b, b) || rr[k].level != levels[l]) continue;
                frontier_fmt_ratio(t, sizeof t, rr[k].qual, rr[k].ratio);
                if (rr[k].qual[0]) continue;  // bounds and n/a stay out of the summary
                if (!sr->n || rr[k].ratio < sr->lo) sr->lo = rr[k].ratio;
                if (!sr->n || rr[k].ratio > sr->hi) {
                    sr->hi = rr[k].ratio, sr->hi_level = levels[l];
                    snprintf(sr->hi_split, sizeof sr->hi_split, "%.31s", labels[j]);
                }
                sr->n++, sr->n8 += rr[k].ratio >= 8;
            }
            fprintf(f, " %s |", t);
        }
        fputc('\n', f);
        free(pp);
        free(nd);
        free(rr);
    }
    free(row_of);
    free(sub);
}

// RegBench: per (training automata, variant) the accuracy and TVD at the smallest and the largest state.
// ap: accuracy at the state just below the largest (does it still grow at the top of the range?).
typedef struct { char task[24], variant[48]; int ta; double s0, s1, a0, a1, ap, t0, t1; int npts; } RbGrowth;

static double tvd_of(const ExRow *rows, int nrows, const char *key) {
    double sum = 0;
    int n = 0;
    char buf[4096];
    for (int i = 0; i < nrows; i++) {
        if (strcmp(rows[i].status, "ok") || !rows[i].config_json || strlen(rows[i].config_json) >= sizeof buf) continue;
        snprintf(buf, sizeof buf, "%s", rows[i].config_json);
        frontier_strip_seed(buf);
        if (!strcmp(buf, key) && rows[i].tvd == rows[i].tvd) sum += rows[i].tvd, n++;
    }
    return n ? sum / n : NAN;
}

static int regbench_growth(const FrPoint *p, int np, const ExRow *rows, int nrows, RbGrowth **out) {
    RbGrowth *g = xcalloc((size_t)(np > 0 ? np : 1), sizeof(RbGrowth));
    int ng = 0;
    for (int i = 0; i < np; i++) {
        if (strncmp(p[i].task, "regbench", 8)) continue;
        if (!ng || strcmp(g[ng - 1].variant, p[i].variant) || strcmp(g[ng - 1].task, p[i].task)) {
            RbGrowth *x = &g[ng++];
            snprintf(x->task, sizeof x->task, "%s", p[i].task);
            snprintf(x->variant, sizeof x->variant, "%s", p[i].variant);
            x->ta = p[i].train_automata;
            x->s0 = p[i].state_floats, x->a0 = p[i].accuracy, x->t0 = tvd_of(rows, nrows, p[i].key);
        }
        RbGrowth *x = &g[ng - 1];
        x->ap = x->npts ? x->a1 : NAN;
        x->s1 = p[i].state_floats, x->a1 = p[i].accuracy, x->t1 = tvd_of(rows, nrows, p[i].key);   // sorted by state
        x->npts++;
    }
    *out = g;
    return ng;
}

static void paper_regbench(FILE *f, const RbGrowth *g, int ng, const double bl[4], double improve_min) {
    fprintf(f, "\n## RegBench: which models improve as state grows\n\n");
    if (!ng) { fprintf(f, "No finished RegBench runs yet.\n"); return; }
    fprintf(f, "Per (training automata, variant): the best configuration (lr) at the smallest and the largest measured "
               "state, accuracy averaged over seeds (TVD likewise). *Improves*: accuracy at the largest state exceeds "
               "the smallest by more than %.3f (`--improve-min`). *Keeps improving*: it still grows by more than that over "
               "the last step, from the next-largest state to the largest (the paper's wording: models that keep "
               "improving as state grows).\n\n", improve_min);
    if (bl[0] == bl[0])
        fprintf(f, "In-context baselines on the same test sets (mean over the runs' distinct test sets): 2-gram accuracy "
                   "%.4f, TVD %.4f; 3-gram accuracy %.4f, TVD %.4f.\n\n", bl[0], bl[1], bl[2], bl[3]);
    fprintf(f, "| train automata | variant | states | smallest | largest | acc smallest | acc largest | delta acc | "
               "TVD smallest | TVD largest | delta TVD | improves | last step | keeps improving |\n"
               "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---:|---:|:---:|\n");
    for (int i = 0; i < ng; i++) {
        const RbGrowth *x = &g[i];
        char b0[32], b1[32];
        frontier_fmt_bytes(4 * x->s0, b0, sizeof b0);
        frontier_fmt_bytes(4 * x->s1, b1, sizeof b1);
        int imp = x->npts > 1 && x->a1 - x->a0 > improve_min, keep = x->npts > 1 && x->a1 - x->ap > improve_min;
        char last[32] = "–";
        if (x->npts > 1) snprintf(last, sizeof last, "%+.4f", x->a1 - x->ap);
        fprintf(f, "| %d | %s | %d | %s | %s | %.4f | %.4f | %+.4f | %.4f | %.4f | %+.4f | %s | %s | %s |\n", x->ta,
                x->variant, x->npts, b0, b1, x->a0, x->a1, x->a1 - x->a0, x->t0, x->t1, x->t1 - x->t0,
                x->npts < 2 ? "(1 size)" : imp ? "yes" : "no", last, x->npts < 2 ? "–" : keep ? "yes" : "no");
    }
}

// The variants of g[i]'s training-automata count (from i on) whose accuracy grows by more than improve_min,
// into imp, and the others into non ("name (+delta)", comma-separated; "none" if empty): from the smallest
// to the largest state, or (last) over the last step only. Variants measured at one size are left out.
static void growth_lists(const RbGrowth *g, int ng, int i, int last, double improve_min, char imp[512], char non[512]) {
    *imp = *non = 0;
    for (int j = i; j < ng && g[j].ta == g[i].ta; j++) {
        if (g[j].npts < 2) continue;
        double d = g[j].a1 - (last ? g[j].ap : g[j].a0);
        char *dst = d > improve_min ? imp : non;
        size_t l = strlen(dst);
        snprintf(dst + l, 512 - l, "%s%s (%+.3f)", l ? ", " : "", g[j].variant, d);
    }
    if (!*imp) strcpy(imp, "none");
    if (!*non) strcpy(non, "none");
}

// The paper's claims (bla.md, claim 4) beside what the data says. The sentences are filled from the numbers.
// The distinct learning rates of a variant's MQAR runs (ok runs), ascending, into lr[] (at most 64); returns the count.
static int variant_lr_set(const FrRun *runs, int nruns, const char *variant, double *lr) {
    int ns = 0;
    for (int i = 0; i < nruns; i++) {
        if (strcmp(runs[i].task, "mqar") || strcmp(runs[i].variant, variant)) continue;
        int dup = 0;
        for (int j = 0; j < ns; j++) dup |= lr[j] == runs[i].lr;
        if (!dup && ns < 64) lr[ns++] = runs[i].lr;
    }
    for (int i = 1; i < ns; i++)  // insertion sort: a handful of values
        for (int j = i; j > 0 && lr[j] < lr[j - 1]; j--) { double t = lr[j]; lr[j] = lr[j - 1]; lr[j - 1] = t; }
    return ns;
}

// "0.001 0.00316" from n learning rates.
static void fmt_lrs(const double *lr, int n, char *out, size_t cap) {
    out[0] = 0;
    for (int i = 0; i < n; i++) {
        size_t l = strlen(out);
        snprintf(out + l, cap - l, "%s%g", i ? " " : "", lr[i]);
    }
}

// The identity of a run's configuration without its seed and its lr: runs of one configuration at
// several learning rates share it.
static void lr_free_key(const FrRun *r, char *out, size_t n) {
    snprintf(out, n, "%s", r->key);
    if (out[0] == '{') frontier_strip_member(out, "lr");
    else {
        char *bar = strrchr(out, '|');  // the fallback key ends in "|lr"
        if (bar) *bar = 0;
    }
}

// How many of a variant's MQAR configurations (lr-free identities) have an ok run at every lr of want[];
// *total: its configurations.
static int lr_complete_configs(const FrRun *runs, int nruns, const char *variant, const double *want, int nw,
                               int *total) {
    char(*keys)[sizeof runs->key] = xmalloc(sizeof *keys * (size_t)(nruns ? nruns : 1));
    int nk = 0, complete = 0;
    for (int i = 0; i < nruns; i++) {
        if (strcmp(runs[i].task, "mqar") || strcmp(runs[i].variant, variant)) continue;
        lr_free_key(&runs[i], keys[nk], sizeof keys[nk]);
        int dup = 0;
        for (int j = 0; j < nk && !dup; j++) dup = !strcmp(keys[j], keys[nk]);
        if (dup) continue;
        int have = 0;  // lrs of want[] that this configuration has
        for (int w = 0; w < nw; w++) {
            int found = 0;
            char k2[sizeof runs->key];
            for (int m = 0; m < nruns && !found; m++) {
                if (runs[m].lr != want[w] || strcmp(runs[m].task, "mqar") || strcmp(runs[m].variant, variant)) continue;
                lr_free_key(&runs[m], k2, sizeof k2);
                found = !strcmp(k2, keys[nk]);
            }
            have += found;
        }
        complete += have == nw;
        nk++;
    }
    free(keys);
    *total = nk;
    return complete;
}

// (b) beside the growth: each RegBench variant against SWA at the state sizes both measured, per training-
// automata count (points of one task share it): at how many it is below, and the accuracies.
static void regbench_vs_swa(FILE *f, const FrPoint *p, int np) {
    for (int i = 0; i < np; i++) {
        if (strncmp(p[i].task, "regbench", 8) || !strcmp(p[i].variant, "swa") ||
            (i > 0 && !strcmp(p[i - 1].task, p[i].task) && !strcmp(p[i - 1].variant, p[i].variant)))
            continue;  // the first point of each non-SWA variant
        int matched = 0, below = 0;
        char list[1024] = "";
        for (int a = i; a < np && !strcmp(p[a].task, p[i].task) && !strcmp(p[a].variant, p[i].variant); a++)
            for (int b = 0; b < np; b++) {
                if (strcmp(p[b].task, p[a].task) || strcmp(p[b].variant, "swa") || p[b].state_floats != p[a].state_floats)
                    continue;
                char sz[32];
                frontier_fmt_bytes(4 * p[a].state_floats, sz, sizeof sz);
                size_t l = strlen(list);
                snprintf(list + l, sizeof list - l, "%s%s %.3f vs %.3f", matched ? "; " : "", sz, p[a].accuracy,
                         p[b].accuracy);
                matched++;
                below += p[a].accuracy < p[b].accuracy;
            }
        if (matched)
            fprintf(f, "- (b) %d training automata, %s against swa at the state sizes both measured: below at %d of %d "
                       "(%s).\n", p[i].train_automata, p[i].variant, below, matched, list);
    }
}

// MQAR, every variant: the state each needs at each level, least first, so the BLA claim is read beside the
// other mixers (a claim against SWA says nothing of whether BLA is the most state-efficient mixer).
static void paper_least_state(FILE *f, const FrPoint *p, int np, const double *levels, int nlev) {
    FrNeed *nd;
    int nn = frontier_needs(p, np, levels, nlev, &nd);
    for (int l = 0; l < nlev; l++) {
        const FrNeed *v[64];
        int nv = 0;
        for (int i = 0; i < nn && nv < 64; i++)
            if (!strcmp(nd[i].task, "mqar") && nd[i].level == levels[l] && nd[i].kind != FR_NOT_REACHED) v[nv++] = &nd[i];
        if (!nv) continue;
        for (int i = 1; i < nv; i++)  // insertion sort by state, least first
            for (int j = i; j > 0 && v[j]->state_floats < v[j - 1]->state_floats; j--) {
                const FrNeed *t = v[j]; v[j] = v[j - 1]; v[j - 1] = t;
            }
        char list[1024] = "";
        size_t o = 0;
        int first_bla = -1;
        for (int i = 0; i < nv && o + 64 < sizeof list; i++) {
            char b[32];
            frontier_fmt_bytes(4 * v[i]->state_floats, b, sizeof b);
            o += (size_t)snprintf(list + o, sizeof list - o, "%s%s %s%s", i ? ", " : "", v[i]->variant,
                                  v[i]->kind == FR_AT_MOST ? "<= " : "", b);
            if (first_bla < 0 && is_bla(v[i]->variant)) first_bla = i;
        }
        fprintf(f, "- (a) beside the other mixers, level %.2f, the state each variant needs, least first: %s", levels[l], list);
        if (first_bla > 0) {
            fprintf(f, "; needing less state than every BLA variant:");
            for (int i = 0; i < first_bla; i++) fprintf(f, "%s %s", i ? "," : "", v[i]->variant);
        } else if (first_bla == 0) {
            // a "<= X" need after it is only an upper bound: its true need may be less still
            char bnd[256] = "";
            size_t bo = 0;
            for (int i = 1; i < nv && bo + 50 < sizeof bnd; i++)
                if (v[i]->kind == FR_AT_MOST) bo += (size_t)snprintf(bnd + bo, sizeof bnd - bo, "%s%s", bo ? ", " : "", v[i]->variant);
            fprintf(f, "; %s needs the least%s%s%s", v[0]->variant, *bnd ? " of the needs measured (bounded only, possibly less: " : "", bnd, *bnd ? ")" : "");
        }
        fprintf(f, ".\n");
    }
    free(nd);
}

static void paper_claims(FILE *f, const FrRatio *r, const FrSpread *sp, int nr, const SplitRatios *sr,
                         const RbGrowth *g, int ng, double improve_min, const FrRun *runs, int nruns, const FrPoint *p,
                         int np, const double *levels, int nlev) {
    fprintf(f, "\n## Compared with the paper's claims\n\n"
               "The paper (arXiv 2606.09862, abstract; ../shared/design/bla.md claim 4) states: (a) on MQAR BLA's state "
               "efficiency is 8x that of SWA (the same accuracy at 1/8 of the state); (b) on RegBench only BLA and SWA "
               "improve as state grows. What these data say:\n\n");
    int any = 0;
    for (int k = 0; k < nr; k++) {
        if (strcmp(r[k].b, "swa")) continue;
        any = 1;
        char rb[32];
        frontier_fmt_ratio(rb, sizeof rb, r[k].qual, r[k].ratio);
        if (!strcmp(r[k].qual, "n/a")) {
            fprintf(f, "- (a) level %.2f, %s vs swa: no ratio (%s does not reach %.2f).\n", r[k].level, r[k].a,
                    r[k].kind_a == FR_NOT_REACHED && r[k].kind_b == FR_NOT_REACHED ? "neither"
                    : r[k].kind_a == FR_NOT_REACHED ? r[k].a : "swa", r[k].level);
            continue;
        }
        if (r[k].ratio >= 1)
            fprintf(f, "- (a) %s reaches SWA's accuracy with %s less state at level %.2f", r[k].a, rb, r[k].level);
        else
            fprintf(f, "- (a) %s needs %.2fx more state than SWA at level %.2f (R = %s)", r[k].a, 1 / r[k].ratio,
                    r[k].level, rb);
        if (sp[k].n >= 2) fprintf(f, " (per seed %.2f +- %.2f, %.2f..%.2f, %d seeds)", sp[k].mean, sp[k].sd, sp[k].min, sp[k].max, sp[k].n);
        else fprintf(f, " (%d seed%s with a ratio: no spread)", sp[k].n, sp[k].n == 1 ? "" : "s");
        const char *verdict = r[k].qual[0] == '<' && r[k].ratio < 8 ? "below the claimed 8x (an upper bound)"
                              : r[k].qual[0] == '>' && r[k].ratio >= 8 ? "at least the claimed 8x (a lower bound)"
                              : r[k].qual[0] ? "a bound only: no verdict against 8x"
                              : r[k].ratio >= 8 ? "meets the claimed 8x" : "falls short of the claimed 8x";
        fprintf(f, ": %s.\n", verdict);
    }
    if (!any) fprintf(f, "- (a) no MQAR ratio of a BLA variant against swa in these data.\n");
    paper_least_state(f, p, np, levels, nlev);
    if (sr->n)
        fprintf(f, "- (a) per test length, %s vs %s: %.2fx..%.2fx over the %d (split, level) pairs both reach (largest "
                   "%.2fx on %s at level %.2f); %s.\n", sr->a, sr->b, sr->lo, sr->hi, sr->n, sr->hi, sr->hi_split,
                sr->hi_level, sr->n8 ? "the claimed 8x is met on some" : "below the claimed 8x on every one");
    // The best lr is chosen per (variant, state) among the lrs that finished: while a sweep is in progress
    // the variants may not have tried the same ones, and the ratio then leans toward the one that tried more.
    // Even with the same lrs, a configuration (a state size's window, N, ...) that has not yet run at all of them
    // may have its best lr still to come: the caveat stays until every configuration of both has every lr.
    double vswa[64];
    int nswa = variant_lr_set(runs, nruns, "swa", vswa);
    char lswa[1024];
    fmt_lrs(vswa, nswa, lswa, sizeof lswa);
    for (int k = 0; k < nr; k++) {
        if (strcmp(r[k].b, "swa") || (k > 0 && !strcmp(r[k].a, r[k - 1].a))) continue;
        double va[64];
        int na = variant_lr_set(runs, nruns, r[k].a, va);
        char la[1024];
        fmt_lrs(va, na, la, sizeof la);
        if (strcmp(la, lswa)) {
            fprintf(f, "- (a) caveat: %s and swa did not try the same learning rates (%s: %s; swa: %s), so the best-lr "
                       "frontiers are not yet comparable on equal terms.\n", r[k].a, r[k].a, la, lswa);
            continue;
        }
        int ta, ts, ca = lr_complete_configs(runs, nruns, r[k].a, va, na, &ta);
        int cs = lr_complete_configs(runs, nruns, "swa", vswa, nswa, &ts);
        if (ca < ta || cs < ts)
            fprintf(f, "- (a) caveat: not every configuration has run at every learning rate yet (%s: %d of %d "
                       "configurations have all of %s; swa: %d of %d), so the best-lr frontiers are not final.\n",
                    r[k].a, ca, ta, la, cs, ts);
    }
    if (!ng) fprintf(f, "- (b) no RegBench runs in these data.\n");
    else {
        // Per training-automata count: the variants whose accuracy grows with state.
        for (int i = 0; i < ng; i++) {
            if (i > 0 && g[i].ta == g[i - 1].ta) continue;
            char imp[512], non[512];
            growth_lists(g, ng, i, 0, improve_min, imp, non);
            fprintf(f, "- (b) %d training automata: improve with state: %s; do not: %s.\n", g[i].ta, imp, non);
            growth_lists(g, ng, i, 1, improve_min, imp, non);
            fprintf(f, "- (b) %d training automata, over the last step (next-largest to largest state): still "
                       "improving: %s; flat or falling: %s.\n", g[i].ta, imp, non);
            // The claim is about the six mixers at 4 state sizes each (the grid): say what is missing.
            static const char *six[] = {"attention", "swa", "bla", "gsa", "la", "mamba"};
            char miss[256] = "", few[256] = "";
            for (int x = 0; x < 6; x++) {
                int pts = -1;
                for (int j = i; j < ng && g[j].ta == g[i].ta; j++)
                    if (!strcmp(g[j].variant, six[x])) pts = g[j].npts;
                char *dst = pts < 0 ? miss : pts < 4 ? few : NULL;
                if (!dst) continue;
                size_t l = strlen(dst);
                if (pts < 0) snprintf(dst + l, sizeof miss - l, "%s%s", l ? ", " : "", six[x]);
                else snprintf(dst + l, sizeof few - l, "%s%s (%d)", l ? ", " : "", six[x], pts);
            }
            if (*miss || *few)
                fprintf(f, "- (b) caveat, %d training automata: provisional until all six mixers have 4 state sizes; "
                           "not yet run: %s; fewer than 4 state sizes: %s.\n", g[i].ta, *miss ? miss : "none",
                        *few ? few : "none");
        }
        regbench_vs_swa(f, p, np);
    }
}

// Wall time of the runs (finished - started), per backend and device.
static void paper_gpu_time(FILE *f, const ExRow *rows, int n) {
    fprintf(f, "\n## Compute time of the sweeps\n\nSum over runs of (finished - started), from the runs' own timestamps "
               "(1 s resolution; concurrent workers on one device overlap, so this is device-occupancy time summed over "
               "workers, not wall time), per task, backend, device and GEMM precision (cuda). Every sitting of a run "
               "counts (its interrupted rows stay), whether the run resumed from its checkpoint or started again "
               "from its first step; but databases written up to 2026-12-02 dropped the sittings of a run started "
               "again, and a sitting whose end was not recorded (a killed worker) has no duration: a lower bound.\n\n"
               "| task | backend | device | precision | runs | ok | hours | mean s per run |\n"
               "|---|---|---|---|---:|---:|---:|---:|\n");
    int *done = xcalloc((size_t)(n > 0 ? n : 1), sizeof(int));
    int rows_out = 0;
    for (int i = 0; i < n; i++) {
        if (done[i]) continue;
        int cnt = 0, ok = 0, timed = 0;
        double sum = 0;
        for (int j = i; j < n; j++) {
            if (done[j] || strcmp(rows[j].task, rows[i].task) || strcmp(rows[j].backend, rows[i].backend) ||
                strcmp(rows[j].device, rows[i].device) || strcmp(rows[j].precision, rows[i].precision))
                continue;
            done[j] = 1;
            cnt++;
            ok += !strcmp(rows[j].status, "ok");
            if (rows[j].duration_s == rows[j].duration_s) sum += rows[j].duration_s, timed++;
        }
        char mean[32] = "–";
        if (timed) snprintf(mean, sizeof mean, "%.1f", sum / timed);
        fprintf(f, "| %s | %s | %s | %s | %d | %d | %.3f | %s |\n", rows[i].task, rows[i].backend, rows[i].device,
                rows[i].precision[0] ? rows[i].precision : "–", cnt, ok, sum / 3600, mean);
        rows_out++;
    }
    if (!rows_out) fprintf(f, "| – | – | – | – | 0 | 0 | 0 | – |\n");
    free(done);
}

int cmd_report(int argc, char **argv) {
    const char *db = NULL, *out = NULL, *task = NULL, *vs = NULL, *figs = NULL, *csv_in = NULL, *v;
    const char *pair = "bla,swa";
    double levels[16] = {0.5, 0.7, 0.9};
    int nlev = 3, paper = 0, draw = 0, levels_given = 0;
    double improve_min = 0.02;
    char err[256];
    for (int i = frontier_arg_start(argc, argv, "report"); i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return 0; }
        else if ((v = frontier_flag_value(argc, argv, &i, "--db"))) db = v;
        else if ((v = frontier_flag_value(argc, argv, &i, "--out"))) out = v;
        else if ((v = frontier_flag_value(argc, argv, &i, "--task"))) frontier_check_task(task = v);
        else if ((v = frontier_flag_value(argc, argv, &i, "--vs"))) vs = v;
        else if ((v = frontier_flag_value(argc, argv, &i, "--figures"))) figs = v;
        else if ((v = frontier_flag_value(argc, argv, &i, "--csv-in"))) csv_in = v;
        else if ((v = frontier_flag_value(argc, argv, &i, "--from-csv"))) csv_in = v, paper = draw = 1;
        else if (!strcmp(a, "--paper")) paper = 1;
        else if (!strcmp(a, "--draw")) paper = draw = 1;
        else if ((v = frontier_flag_value(argc, argv, &i, "--pair"))) pair = v;
        else if ((v = frontier_flag_value(argc, argv, &i, "--improve-min"))) {
            char *e;
            improve_min = strtod(v, &e);
            if (e == v || *e || !(improve_min >= 0 && improve_min < 1)) die_usage("--improve-min %s: must be in [0, 1)", v);
        } else if ((v = frontier_flag_value(argc, argv, &i, "--levels"))) {
            if ((nlev = frontier_parse_levels(v, levels, 16, err, sizeof err)) < 0) die_usage("%s", err);
            levels_given = 1;
        } else die_usage("report: unknown argument '%s' (see recallbench report --help)", a);
    }
    // The paper report adds the 0.99 level (reported if reached) and draws its figures to plots/ by default.
    if (paper && !levels_given) levels[nlev++] = 0.99;
    if (!figs) figs = paper ? "plots" : "plots/out";
    char pa[48], pb[48];
    const char *comma = strchr(pair, ',');
    if (!comma || comma == pair || !comma[1] || strchr(comma + 1, ',') || comma - pair >= 48 || strlen(comma + 1) >= 48)
        die_usage("--pair %s: give two variants A,B (e.g. bla,swa)", pair);
    snprintf(pa, sizeof pa, "%.*s", (int)(comma - pair), pair);
    snprintf(pb, sizeof pb, "%s", comma + 1);
    Store *s = export_open_source(db, csv_in, &db);
    sqlite3 *h = store_db(s);
    // Figures first: the report then links what exists.
    if (draw && plot_paper_figures(h, figs, NULL, pa, pb, levels, nlev) == 0)
        fprintf(stderr, "recallbench: no figures drawn (no finished runs)\n");
    FrPoint *p;
    FrRun *runs;
    int nruns;
    int np = frontier_compute_runs(h, task, &p, &runs, &nruns);
    if (vs) {  // as frontier does: a variant with no finished runs is a bad argument
        int found = 0;
        for (int i = 0; i < np; i++) found |= !strcmp(p[i].variant, vs);
        if (!found) die_usage("--vs %s: no finished runs of that variant in %s", vs, db);
    }
    FrNeed *nd;
    int nn = frontier_needs(p, np, levels, nlev, &nd);
    FrRatio *r;
    int nr = frontier_ratios(nd, nn, vs, &r);

    // Written to a temporary file and renamed (out_open), so a failed report never leaves half a file, a
    // symlink stays a link and a device is never replaced.
    FILE *f = stdout;
    OutFile of;
    if (out) {
        int usage;
        if (*out) frontier_mkdir_parent(out);
        if (out_open(&of, out, &usage, err, sizeof err)) {
            if (usage) die_usage("%s", err);
            die_runtime("%s", err);
        }
        f = of.f;
    }
    char ts[32];
    utc_timestamp(ts, sizeof ts);
    // From CSVs the content is a function of the files: no timestamp, so regenerating changes nothing.
    if (csv_in) fprintf(f, "# recallbench report\n\nExported CSVs `%s`%s%s, by recallbench %s.\n\n", db,
                        task ? ", task " : "", task ? task : "", RB_VERSION);
    else fprintf(f, "# recallbench report\n\nDatabase `%s`%s%s, generated %s by recallbench %s (git %s).\n\n", db,
                 task ? ", task " : "", task ? task : "", ts, RB_VERSION, git_revision());
    if (csv_in)
        fprintf(f, "Regenerate with `recallbench report --from-csv %s%s%s --figures %s` (no database needed).\n\n", db,
                out ? " --out " : "", out ? out : "", figs);
    fprintf(f, "State sizes are the recurrent state of the whole model in bytes (4 x floats, summed over layers). "
               "Per (variant, state size) the best configuration is kept (learning rate and mixer knobs), chosen on the "
               "seeds every configuration of that size has (seed 1 where only the chosen lr got more seeds) and shown "
               "with its accuracy averaged over all its seeds; `*` marks the Pareto frontier (no smaller-or-equal state reaches a higher-or-equal "
               "accuracy). Needs are interpolated linearly in log2(state) between the frontier points around the level; "
               "`<= X`: already reached at the smallest measured state.\n\n");
    runs_table(f, h, task);
    FrRatio *pr = NULL;
    FrSpread *psp = NULL;
    int npr = 0;
    if (paper) {
        ExRow *rows;
        int nrows = export_load(h, task, 1, &rows);
        paper_ratios(f, runs, nruns, p, np, levels, nlev, &pr, &psp, &npr);
        SplitRatios sr;
        paper_ratio_by_split(f, runs, nruns, rows, nrows, pa, pb, levels, nlev, &sr);
        RbGrowth *g;
        int ng = regbench_growth(p, np, rows, nrows, &g);
        double bl[4];
        plot_regbench_baselines(rows, nrows, bl);
        paper_regbench(f, g, ng, bl, improve_min);
        paper_claims(f, pr, psp, npr, &sr, g, ng, improve_min, runs, nruns, p, np, levels, nlev);
        paper_gpu_time(f, rows, nrows);
        free(g);
        export_free(rows, nrows);
    }
    if (np == 0) fprintf(f, "\nNo finished runs: no frontier yet.\n");
    else {
        fprintf(f, "\n## Frontier\n");
        frontier_print_tables(f, p, np, nd, nn, r, nr, levels, nlev, 1);
        FrSpread *sp;
        int nsp = frontier_seed_spread(runs, nruns, p, np, r, nr, levels, nlev, &sp);
        frontier_print_spread(f, sp, nsp, nlev, 1);
        free(sp);
        fprintf(f, "\n## Figures\n\n");
        char base[PATH_MAX] = ".";
        if (out) {
            const char *sl = strrchr(out, '/');
            if (sl) snprintf(base, sizeof base, "%.*s", (int)(sl - out), out);
        }
        char link[PATH_MAX];
        relpath(base, figs, link, sizeof link);
        int missing = 0;
        if (paper) {
            const char *names[3] = {"mqar_frontier", "regbench_state", "bla_vs_swa"};
            const char *what[3] = {"MQAR accuracy vs state, every variant", "RegBench accuracy and TVD vs state, with the "
                                   "in-context n-gram baselines", "BLA vs SWA frontiers with the ratio at each level"};
            for (int k = 0; k < 3; k++) {
                char file[PATH_MAX];
                snprintf(file, sizeof file, "%s/%s.png", figs, names[k]);
                int have = access(file, R_OK) == 0;
                missing |= !have;
                fprintf(f, "- %s: ![%s](%s/%s.png) ([SVG](%s/%s.svg))%s\n", what[k], names[k], link, names[k], link,
                        names[k], have ? "" : " — not drawn yet");
            }
        }
        for (int i = 0; i < np && !paper; i++) {
            if (i > 0 && !strcmp(p[i].task, p[i - 1].task)) continue;
            const char *kinds[2] = {"frontier", "curves"};
            const char *what[2] = {"accuracy vs state size", "training curves"};
            for (int k = 0; k < 2; k++) {
                char file[PATH_MAX];
                snprintf(file, sizeof file, "%s/%s_%s.png", figs, kinds[k], p[i].task);
                int have = access(file, R_OK) == 0;
                missing |= !have;
                fprintf(f, "- %s, %s: ![%s %s](%s/%s_%s.png) ([SVG](%s/%s_%s.svg))%s\n", p[i].task, what[k], p[i].task,
                        what[k], link, kinds[k], p[i].task, link, kinds[k], p[i].task, have ? "" : " — not drawn yet");
            }
        }
        if (missing && !paper)
            fprintf(f, "\nDraw the missing figures with `recallbench plot --db %s --out %s`.\n", db, figs);
        else if (missing)
            fprintf(f, "\nDraw the missing figures with `recallbench plot %s %s --paper --out %s`.\n",
                    csv_in ? "--csv-in" : "--db", db, figs);
    }
    free(pr);
    free(psp);
    free(runs);
    free(p);
    free(nd);
    free(r);
    store_close(s);
    if (out) {
        if (out_commit(&of, err, sizeof err)) die_runtime("%s", err);
        fprintf(stderr, "wrote %s\n", out);
    } else if (fflush(stdout)) die_runtime("cannot write output: %s", strerror(errno));
    return 0;
}
