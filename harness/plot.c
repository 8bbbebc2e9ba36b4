// plot.c — `recallbench plot`: writes the data of the frontier and training-curve figures and runs the
// gnuplot scripts of plots/ (PNG + SVG). Depends on frontier.h, store.h, sqlite3, gnuplot at run time.
#include <errno.h>
#include <math.h>
#include <spawn.h>
#include <stdarg.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "frontier.h"
#include "rb_build.h"
#include "store.h"
#include "util.h"

extern char **environ;

// One colour per variant, stable across figures (the six mixers of the study first).
static const char *variant_color(const char *v, int i) {
    static const struct { const char *name, *rgb; } known[] = {
        {"attention", "#000000"}, {"swa", "#1f77b4"}, {"bla", "#d62728"}, {"gsa", "#2ca02c"},
        {"la", "#ff7f0e"}, {"mamba", "#9467bd"}, {"bla-slots", "#e377c2"}, {"bla-decay", "#8c564b"},
        {"la-elu", "#bcbd22"}, {"swa-perhead", "#17becf"}, {"bla-perhead", "#ff9896"}, {"bla-perhead4", "#aec7e8"}, {"conv", "#7f7f7f"},
    };
    static const char *palette[] = {"#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd"};
    for (size_t k = 0; k < sizeof known / sizeof known[0]; k++)
        if (!strcmp(known[k].name, v)) return known[k].rgb;
    return palette[i % 6];
}

static void mkdirs(const char *dir) {
    char d[4096];
    snprintf(d, sizeof d, "%s", dir);
    for (char *p = d + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        mkdir(d, 0777);
        *p = '/';
    }
    if (mkdir(d, 0777) != 0 && errno != EEXIST) die_runtime("cannot create directory %s: %s", d, strerror(errno));
}

static FILE *xfopen(const char *path) {
    FILE *f = fopen(path, "w");
    if (!f) die_runtime("cannot write %s: %s", path, strerror(errno));
    return f;
}

static void xfclose(FILE *f, const char *path) {
    if (ferror(f) | fclose(f)) die_runtime("cannot write %s: %s", path, strerror(errno));
}

// Runs gnuplot -e "ASSIGNMENTS" SCRIPT; exit 1 with a reason if gnuplot is missing or fails.
static void run_gnuplot(const char *assign, const char *script) {
    char *av[] = {"gnuplot", "-e", (char *)assign, (char *)script, NULL};
    pid_t pid;
    int rc = posix_spawnp(&pid, "gnuplot", NULL, NULL, av, environ);
    if (rc == ENOENT) die_runtime("gnuplot not found on PATH: install it (e.g. apt install gnuplot-nox) to draw figures");
    if (rc != 0) die_runtime("cannot run gnuplot: %s", strerror(rc));
    int ws;
    while (waitpid(pid, &ws, 0) < 0)
        if (errno != EINTR) die_runtime("waitpid: %s", strerror(errno));
    if (WIFEXITED(ws) && WEXITSTATUS(ws) == 127) die_runtime("gnuplot not found on PATH: install it (e.g. apt install gnuplot-nox)");
    if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0) die_runtime("gnuplot failed on %s (its messages are above)", script);
}

static void check_output(const char *base) {
    char p[1100];
    const char *ext[] = {".png", ".svg"};
    for (int i = 0; i < 2; i++) {
        struct stat sb;
        snprintf(p, sizeof p, "%s%s", base, ext[i]);
        if (stat(p, &sb) != 0 || sb.st_size == 0) die_runtime("gnuplot wrote no %s", p);
        printf("%s\n", p);
    }
}

static void append(char *buf, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void append(char *buf, size_t n, const char *fmt, ...) {
    size_t l = strlen(buf);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + l, n - l, fmt, ap);
    va_end(ap);
}

static void no_quote(const char *s, const char *what) {
    if (strchr(s, '\'') || strchr(s, '"')) die_usage("%s %s: quotes in paths are not supported by the plot scripts", what, s);
}

// TVD of a RegBench run: its 'test' evaluation closest to the run's reported accuracy (latest on ties).
static double run_tvd(sqlite3 *db, int64_t run) {
    sqlite3_stmt *st;
    double t = NAN;
    if (sqlite3_prepare_v2(db,
                           "SELECT e.tvd FROM evals e JOIN runs r ON r.id = e.run_id WHERE e.run_id = ?1"
                           " AND e.split != 'train' AND e.tvd IS NOT NULL AND e.tvd >= 0"
                           " ORDER BY abs(e.accuracy - r.accuracy), e.epoch DESC LIMIT 1", -1, &st, NULL) != SQLITE_OK)
        die_runtime("cannot read evals: %s", sqlite3_errmsg(db));
    sqlite3_bind_int64(st, 1, run);
    if (sqlite3_step(st) == SQLITE_ROW) t = sqlite3_column_double(st, 0);
    sqlite3_finalize(st);
    return t;
}

static int task_label(const char *task, char *buf, size_t n) {
    return snprintf(buf, n, "%s", !strcmp(task, "mqar") ? "MQAR" : !strcmp(task, "regbench") ? "RegBench" : task);
}

// Power-of-two ticks labelled in B / KiB / MiB over [2^lo, 2^hi] bytes (log2 values), with a margin so no
// point sits on the frame: at most about maxt of them (every second or fourth power when the range is
// wide; 5 for the half-width panels, where "128 KiB256 KiB" ran together), the xtics list into xt, the
// range into *xmin, *xmax.
static void byte_ticks(double lo, double hi, char *xt, size_t n, double *xmin, double *xmax, int maxt) {
    // Clamp to [1 B, 2^62 B]: a corrupt or overflowing state size (inf, 1e308) must not make the tick loop
    // run forever or overflow int.
    lo = isfinite(lo) ? fmin(fmax(lo, 0), 62) : 0;
    hi = isfinite(hi) ? fmin(fmax(hi, lo), 62) : 62;
    int e0 = (int)floor(lo - 0.3), e1 = (int)ceil(hi + 0.3), step = (e1 - e0 + maxt - 1) / maxt;
    if (step < 1) step = 1;
    xt[0] = 0;
    for (int e = e0; e <= e1; e += step) {
        char b[32];
        append(xt, n, "%s\"%s\" %.0f", xt[0] ? ", " : "", frontier_fmt_bytes(exp2(e), b, sizeof b), exp2(e));
    }
    *xmin = exp2(e0);
    *xmax = exp2(e1);
}

// Frontier figure of one task into DIR/<name>.{png,svg} (name NULL: frontier_<task>). Returns 1 if written.
static int plot_frontier_as(sqlite3 *db, const char *task, const FrPoint *p, int np, const char *out,
                            const char *scripts, const char *name) {
    char data[1100], base[1100], assign[4096], colors[1024] = "", label[32];
    snprintf(data, sizeof data, "%s/data/%s%s.dat", out, name ? name : "frontier_", name ? "" : task);
    snprintf(base, sizeof base, "%s/%s%s", out, name ? name : "frontier_", name ? "" : task);
    int regbench = !strcmp(task, "regbench");
    FILE *f = xfopen(data);
    fprintf(f, "# recallbench plot: %s, best configuration per (variant, state size); columns: state_bytes accuracy "
               "tvd (RegBench, best seed; else NaN)\n", task);
    int nvar = 0;
    for (int i = 0; i < np; i++) {
        if (strcmp(p[i].task, task)) continue;
        if (nvar == 0 || strcmp(p[i].variant, p[i - 1].variant) || strcmp(p[i - 1].task, task)) {
            if (nvar) fprintf(f, "\n\n");
            fprintf(f, "\"%s\"\n", p[i].variant);
            append(colors, sizeof colors, "%s%s", nvar ? " " : "", variant_color(p[i].variant, nvar));
            nvar++;
        }
        double tvd = regbench ? run_tvd(db, p[i].best_run) : NAN;
        fprintf(f, "%.17g %.6f %.6f\n", 4 * p[i].state_floats, p[i].accuracy, tvd);
    }
    xfclose(f, data);
    if (!nvar) return 0;
    // Power-of-two ticks labelled in B / KiB / MiB, with a margin so no point sits on the frame.
    double lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < np; i++)
        if (!strcmp(p[i].task, task)) {
            lo = fmin(lo, log2(4 * p[i].state_floats));
            hi = fmax(hi, log2(4 * p[i].state_floats));
        }
    char xt[1024] = "";
    double xmin, xmax;
    byte_ticks(lo, hi, xt, sizeof xt, &xmin, &xmax, regbench ? 5 : 8);  // regbench: two panels (tvd)
    task_label(task, label, sizeof label);
    char script[1100];
    snprintf(script, sizeof script, "%s/frontier.gp", scripts);
    snprintf(assign, sizeof assign,
             "datafile='%s'; outbase='%s'; nvar=%d; colors='%s'; tvd=%d; xt='%s'; xmin=%.0f; xmax=%.0f; "
             "ptitle='%s: accuracy vs recurrent state size (best learning rate per size)'; ylab='%s'",
             data, base, nvar, colors, regbench, xt, xmin, xmax, label,
             regbench ? "Greedy next-token accuracy" : "Accuracy (mean over test configurations)");
    run_gnuplot(assign, script);
    check_output(base);
    return 1;
}

static int plot_frontier(sqlite3 *db, const char *task, const FrPoint *p, int np, const char *out,
                         const char *scripts) {
    return plot_frontier_as(db, task, p, np, out, scripts, NULL);
}

// Per-epoch test accuracy (mean over test configurations, or one split) and training loss of a run.
static int write_run_curve(sqlite3 *db, int64_t run, const char *split, FILE *acc, FILE *loss, const char *title) {
    sqlite3_stmt *st;
    int n = 0;
    if (acc) {
        const char *sql = split ? "SELECT epoch, accuracy FROM evals WHERE run_id = ?1 AND split = ?2 AND accuracy IS "
                                  "NOT NULL ORDER BY epoch"
                                : "SELECT epoch, avg(accuracy) FROM evals WHERE run_id = ?1 AND split != 'train' AND "
                                  "accuracy IS NOT NULL GROUP BY epoch ORDER BY epoch";
        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) die_runtime("cannot read evals: %s", sqlite3_errmsg(db));
        sqlite3_bind_int64(st, 1, run);
        if (split) sqlite3_bind_text(st, 2, split, -1, SQLITE_TRANSIENT);
        fprintf(acc, "\"%s\"\n", title);
        while (sqlite3_step(st) == SQLITE_ROW) {
            fprintf(acc, "%d %.6f\n", sqlite3_column_int(st, 0), sqlite3_column_double(st, 1));
            n++;
        }
        if (!n) fprintf(acc, "0 NaN\n");
        fprintf(acc, "\n\n");
        sqlite3_finalize(st);
    }
    if (loss) {
        if (sqlite3_prepare_v2(db, "SELECT epoch, loss FROM evals WHERE run_id = ?1 AND split = 'train' AND loss > 0 "
                                   "ORDER BY epoch", -1, &st, NULL) != SQLITE_OK)
            die_runtime("cannot read evals: %s", sqlite3_errmsg(db));
        sqlite3_bind_int64(st, 1, run);
        fprintf(loss, "\"%s\"\n", title);
        int m = 0;
        while (sqlite3_step(st) == SQLITE_ROW) {
            fprintf(loss, "%d %.6g\n", sqlite3_column_int(st, 0), sqlite3_column_double(st, 1));
            m++;
        }
        if (!m) fprintf(loss, "0 NaN\n");
        fprintf(loss, "\n\n");
        sqlite3_finalize(st);
        n += m;
    }
    return n;
}

// Training curves of one task: per variant, the run of its most accurate point (smallest state on ties).
static int plot_curves(sqlite3 *db, const char *task, const FrPoint *p, int np, const char *out, const char *scripts) {
    char accf[1100], lossf[1100], base[1100], colors[1024] = "", assign[4096], label[32];
    snprintf(accf, sizeof accf, "%s/data/curves_%s_acc.dat", out, task);
    snprintf(lossf, sizeof lossf, "%s/data/curves_%s_loss.dat", out, task);
    snprintf(base, sizeof base, "%s/curves_%s", out, task);
    FILE *fa = xfopen(accf), *fl = xfopen(lossf);
    int nvar = 0, rows = 0;
    for (int i = 0; i < np;) {
        if (strcmp(p[i].task, task)) { i++; continue; }
        int best = i, j = i;
        for (; j < np && !strcmp(p[j].task, task) && !strcmp(p[j].variant, p[i].variant); j++)
            if (p[j].accuracy > p[best].accuracy) best = j;
        char title[160], b[32];
        snprintf(title, sizeof title, "%s, %s state, lr %.3g (run %lld)", p[best].variant,
                 frontier_fmt_bytes(4 * p[best].state_floats, b, sizeof b), p[best].lr, (long long)p[best].best_run);
        rows += write_run_curve(db, p[best].best_run, NULL, fa, fl, title);
        append(colors, sizeof colors, "%s%s", nvar ? " " : "", variant_color(p[best].variant, nvar));
        nvar++;
        i = j;
    }
    xfclose(fa, accf);
    xfclose(fl, lossf);
    if (!nvar || !rows) return 0;
    task_label(task, label, sizeof label);
    char script[1100];
    snprintf(script, sizeof script, "%s/curves.gp", scripts);
    snprintf(assign, sizeof assign,
             "accfile='%s'; lossfile='%s'; outbase='%s'; nacc=%d; nloss=%d; acccolors='%s'; losscolors='%s'; "
             "ptitle='%s: training curves of the most accurate run per variant'; acclab='%s'",
             accf, lossf, base, nvar, nvar, colors, colors, label,
             !strcmp(task, "regbench") ? "Test greedy accuracy" : "Test accuracy (mean over test configurations)");
    run_gnuplot(assign, script);
    check_output(base);
    return 1;
}

// Training curves of one run: accuracy per test configuration, and the training loss.
static void plot_run(sqlite3 *db, int64_t run, const char *out, const char *scripts) {
    sqlite3_stmt *st;
    char variant[64] = "", task[32] = "";
    double state = 0, lr = 0;
    if (sqlite3_prepare_v2(db, "SELECT COALESCE(variant, mixer, model, '?'), task, state_floats, lr FROM runs WHERE id = ?1",
                           -1, &st, NULL) != SQLITE_OK)
        die_runtime("cannot read runs: %s", sqlite3_errmsg(db));
    sqlite3_bind_int64(st, 1, run);
    if (sqlite3_step(st) != SQLITE_ROW) die_usage("--run %lld: no such run in the database", (long long)run);
    snprintf(variant, sizeof variant, "%s", (const char *)sqlite3_column_text(st, 0));
    snprintf(task, sizeof task, "%s", sqlite3_column_text(st, 1) ? (const char *)sqlite3_column_text(st, 1) : "?");
    state = sqlite3_column_double(st, 2);
    lr = sqlite3_column_double(st, 3);
    sqlite3_finalize(st);
    char accf[1100], lossf[1100], base[1100], colors[1024] = "", assign[4096], label[32], b[32];
    snprintf(accf, sizeof accf, "%s/data/run%lld_acc.dat", out, (long long)run);
    snprintf(lossf, sizeof lossf, "%s/data/run%lld_loss.dat", out, (long long)run);
    snprintf(base, sizeof base, "%s/run%lld", out, (long long)run);
    FILE *fa = xfopen(accf), *fl = xfopen(lossf);
    if (sqlite3_prepare_v2(db, "SELECT DISTINCT split FROM evals WHERE run_id = ?1 AND split != 'train' AND accuracy IS "
                               "NOT NULL ORDER BY L, K, split", -1, &st, NULL) != SQLITE_OK)
        die_runtime("cannot read evals: %s", sqlite3_errmsg(db));
    sqlite3_bind_int64(st, 1, run);
    int nacc = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        char split[64];
        snprintf(split, sizeof split, "%s", (const char *)sqlite3_column_text(st, 0));
        write_run_curve(db, run, split, fa, NULL, split);
        append(colors, sizeof colors, "%s%s", nacc ? " " : "", variant_color("", nacc));
        nacc++;
    }
    sqlite3_finalize(st);
    write_run_curve(db, run, NULL, NULL, fl, "training loss");
    xfclose(fa, accf);
    xfclose(fl, lossf);
    if (!nacc) die_runtime("run %lld has no evaluations to plot", (long long)run);
    task_label(task, label, sizeof label);
    char script[1100];
    snprintf(script, sizeof script, "%s/curves.gp", scripts);
    snprintf(assign, sizeof assign,
             "accfile='%s'; lossfile='%s'; outbase='%s'; nacc=%d; nloss=1; acccolors='%s'; losscolors='#000000'; "
             "ptitle='%s run %lld: %s, %s state, lr %.3g'; acclab='Test accuracy per test configuration'",
             accf, lossf, base, nacc, colors, label, (long long)run, variant,
             frontier_fmt_bytes(4 * state, b, sizeof b), lr);
    run_gnuplot(assign, script);
    check_output(base);
}

// ---------------------------------------------------------------------------------------------------------
// The BLA paper's figures (issue 12): mqar_frontier, regbench_state, bla_vs_swa.

// Mean TVD over the status-ok rows of one configuration (config_json without its seed == key).
static double mean_tvd(const ExRow *rows, int nrows, const char *key) {
    double sum = 0;
    int n = 0;
    char buf[4096];
    for (int i = 0; i < nrows; i++) {
        if (strcmp(rows[i].status, "ok") || !isfinite(rows[i].tvd) || strlen(rows[i].config_json) >= sizeof buf) continue;
        snprintf(buf, sizeof buf, "%s", rows[i].config_json);
        frontier_strip_seed(buf);
        if (!strcmp(buf, key)) sum += rows[i].tvd, n++;
    }
    return n ? sum / n : NAN;
}

void plot_regbench_baselines(const ExRow *rows, int nrows, double out[4]) {
    // Mean over the distinct test sets (seed, test automata) of the runs: each test set counts once.
    uint64_t seen_seed[256];
    int seen_ta[256], ns = 0, n = 0;
    for (int k = 0; k < 4; k++) out[k] = 0;
    for (int i = 0; i < nrows; i++) {
        const ExRow *x = &rows[i];
        if (strncmp(x->task, "regbench", 8) || !isfinite(x->ngram[0])) continue;
        int dup = 0;
        for (int j = 0; j < ns && !dup; j++) dup = seen_seed[j] == x->seed && seen_ta[j] == x->test_automata;
        if (dup || ns == 256) continue;
        seen_seed[ns] = x->seed, seen_ta[ns++] = x->test_automata;
        for (int k = 0; k < 4; k++) out[k] += x->ngram[k];
        n++;
    }
    for (int k = 0; k < 4; k++) out[k] = n ? out[k] / n : NAN;
}

static int plot_regbench_state(sqlite3 *db, const FrPoint *p, int np, const char *out, const char *scripts) {
    ExRow *rows;
    int nrows = export_load(db, "regbench", 1, &rows);
    char data[1100], base[1100], assign[4096], colors[1024] = "", dashes[256] = "", xt[1024];
    snprintf(data, sizeof data, "%s/data/regbench_state.dat", out);
    snprintf(base, sizeof base, "%s/regbench_state", out);
    FILE *f = xfopen(data);
    fprintf(f, "# recallbench plot: RegBench, best configuration per (variant, training automata, state size); "
               "columns: state_bytes accuracy (mean over seeds) tvd (mean over seeds)\n");
    int nvar = 0, nta = 0, tas[8];
    double lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < np; i++) {
        if (strncmp(p[i].task, "regbench", 8)) continue;
        int ti = 0;
        while (ti < nta && tas[ti] != p[i].train_automata) ti++;
        if (ti == nta && nta < 8) tas[nta++] = p[i].train_automata;
        if (nvar == 0 || strcmp(p[i].variant, p[i - 1].variant) || strcmp(p[i].task, p[i - 1].task)) {
            if (nvar) fprintf(f, "\n\n");
            fprintf(f, "\"%s (%d automata)\"\n", p[i].variant, p[i].train_automata);
            append(colors, sizeof colors, "%s%s", nvar ? " " : "", variant_color(p[i].variant, nvar));
            append(dashes, sizeof dashes, "%s%d", nvar ? " " : "", ti % 5 + 1);
            nvar++;
        }
        fprintf(f, "%.17g %.6f %.6f\n", 4 * p[i].state_floats, p[i].accuracy, mean_tvd(rows, nrows, p[i].key));
        lo = fmin(lo, log2(4 * p[i].state_floats));
        hi = fmax(hi, log2(4 * p[i].state_floats));
    }
    xfclose(f, data);
    double bl[4];
    plot_regbench_baselines(rows, nrows, bl);
    export_free(rows, nrows);
    if (!nvar) return 0;
    double xmin, xmax;
    byte_ticks(lo, hi, xt, sizeof xt, &xmin, &xmax, 5);  // two panels side by side
    char script[1100], bs[4][32];
    snprintf(script, sizeof script, "%s/regbench_state.gp", scripts);
    for (int k = 0; k < 4; k++) {
        if (isfinite(bl[k])) snprintf(bs[k], sizeof bs[k], "%.6f", bl[k]);
        else snprintf(bs[k], sizeof bs[k], "NaN");
    }
    snprintf(assign, sizeof assign,
             "datafile='%s'; outbase='%s'; nvar=%d; colors='%s'; dashes='%s'; b2acc=%s; b2tvd=%s; b3acc=%s; b3tvd=%s; "
             "xt='%s'; xmin=%.0f; xmax=%.0f; ptitle='RegBench: greedy accuracy and TVD vs recurrent state size "
             "(solid/dashed: training automata; best lr per size)'",
             data, base, nvar, colors, dashes, bs[0], bs[1], bs[2], bs[3], xt, xmin, xmax);
    run_gnuplot(assign, script);
    check_output(base);
    return 1;
}

// The spread of a's ratio against b over seeds at each level, as a label suffix: " (+-0.04, 3 seeds)", or ""
// where fewer than two seeds give a ratio. spread[l] is for levels[l].
static void ratio_spreads(const FrRun *runs, int nruns, const FrPoint *p, int np, const char *a, const char *b,
                          const double *levels, int nlev, char (*spread)[48]) {
    for (int l = 0; l < nlev; l++) spread[l][0] = 0;
    FrNeed *nd;
    FrRatio *r;
    FrSpread *sp;
    int nn = frontier_needs(p, np, levels, nlev, &nd), nr = frontier_ratios(nd, nn, a, &r);
    int ns = frontier_seed_spread(runs, nruns, p, np, r, nr, levels, nlev, &sp);
    for (int i = 0; i < ns; i++) {
        if (strcmp(sp[i].task, "mqar") || strcmp(sp[i].b, b) || sp[i].n < 2) continue;
        for (int l = 0; l < nlev; l++)
            if (levels[l] == sp[i].level)
                snprintf(spread[l], sizeof spread[l], " (+-%.2f, %d seeds)", sp[i].sd, sp[i].n);
    }
    free(nd);
    free(r);
    free(sp);
}

static int plot_bla_vs_swa(const FrPoint *p, int np, const char *a, const char *b, const double *levels, int nlev,
                           char (*spread)[48], const char *out, const char *scripts) {
    int have_a = 0, have_b = 0;
    for (int i = 0; i < np; i++) {
        if (strcmp(p[i].task, "mqar")) continue;
        have_a |= !strcmp(p[i].variant, a);
        have_b |= !strcmp(p[i].variant, b);
    }
    if (!have_a || !have_b) {
        fprintf(stderr, "recallbench: no bla_vs_swa figure: MQAR needs finished runs of both %s and %s\n", a, b);
        return 0;
    }
    char data[1100], rdata[1100], base[1100], assign[4096], colors[256], xt[1024];
    snprintf(data, sizeof data, "%s/data/bla_vs_swa.dat", out);
    snprintf(rdata, sizeof rdata, "%s/data/bla_vs_swa_ratios.dat", out);
    snprintf(base, sizeof base, "%s/bla_vs_swa", out);
    FILE *f = xfopen(data);
    double lo = INFINITY, hi = -INFINITY;
    const char *vs[2] = {a, b};
    for (int v = 0; v < 2; v++)
        for (int fr = 0; fr < 2; fr++) {
            if (v || fr) fprintf(f, "\n\n");
            if (fr) fprintf(f, "\"%s\"\n", vs[v]);
            else fprintf(f, "# %s: every state size (best configuration)\n", vs[v]);
            for (int i = 0; i < np; i++) {
                if (strcmp(p[i].task, "mqar") || strcmp(p[i].variant, vs[v]) || (fr && !p[i].on_frontier)) continue;
                fprintf(f, "%.17g %.6f\n", 4 * p[i].state_floats, p[i].accuracy);
                lo = fmin(lo, log2(4 * p[i].state_floats));
                hi = fmax(hi, log2(4 * p[i].state_floats));
            }
        }
    xfclose(f, data);
    FILE *r = xfopen(rdata);
    int nratio = 0;
    for (int l = 0; l < nlev; l++) {
        int ka, kb;
        double sa = frontier_state_for(p, np, "mqar", a, levels[l], &ka);
        double sb = frontier_state_for(p, np, "mqar", b, levels[l], &kb);
        if (ka == FR_NOT_REACHED || kb == FR_NOT_REACHED) continue;
        const char *q = ka == FR_AT_MOST && kb == FR_AT_MOST ? "~" : ka == FR_AT_MOST ? ">=" : kb == FR_AT_MOST ? "<=" : "-";
        fprintf(r, "%.4g %.17g %.17g %.6g %s \"%s\"\n", levels[l], 4 * sa, 4 * sb, sb / sa, q, spread[l]);
        nratio++;
    }
    xfclose(r, rdata);
    double xmin, xmax;
    byte_ticks(lo, hi, xt, sizeof xt, &xmin, &xmax, 8);
    snprintf(colors, sizeof colors, "%s %s", variant_color(a, 0), variant_color(b, 1));
    char script[1100];
    snprintf(script, sizeof script, "%s/bla_vs_swa.gp", scripts);
    if (snprintf(assign, sizeof assign,
                 "datafile='%s'; ratiofile='%s'; nratio=%d; outbase='%s'; colors='%s'; xt='%s'; xmin=%.0f; xmax=%.0f; "
                 "ptitle='MQAR: %s vs %s frontiers; arrows: state ratio R = state_{%s} / state_{%s} at each accuracy level'",
                 data, rdata, nratio, base, colors, xt, xmin, xmax, a, b, b, a) >= (int)sizeof assign)
        die_runtime("plot: the output path %s is too long for the gnuplot command", base);
    run_gnuplot(assign, script);
    check_output(base);
    return 1;
}

int plot_paper_figures(sqlite3 *db, const char *out, const char *scripts_dir, const char *a, const char *b,
                       const double *levels, int nlev) {
    char sdir[1024], dd[1100];
    const char *env = getenv("RB_PLOTS_DIR");
    snprintf(sdir, sizeof sdir, "%s", scripts_dir && *scripts_dir ? scripts_dir : env && *env ? env : RB_SOURCE_ROOT "/plots");
    no_quote(out, "--figures");
    no_quote(sdir, "--scripts");
    snprintf(dd, sizeof dd, "%s/data", out);
    mkdirs(dd);
    FrPoint *p;
    FrRun *runs;
    int nruns, np = frontier_compute_runs(db, NULL, &p, &runs, &nruns), figs = 0;
    int mqar = 0;
    for (int i = 0; i < np; i++) mqar |= !strcmp(p[i].task, "mqar");
    if (mqar) {
        char (*spread)[48] = xcalloc((size_t)(nlev > 0 ? nlev : 1), sizeof *spread);
        ratio_spreads(runs, nruns, p, np, a, b, levels, nlev, spread);
        figs += plot_frontier_as(db, "mqar", p, np, out, sdir, "mqar_frontier");
        figs += plot_bla_vs_swa(p, np, a, b, levels, nlev, spread, out, sdir);
        free(spread);
    }
    figs += plot_regbench_state(db, p, np, out, sdir);
    free(p);
    free(runs);
    return figs;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: recallbench plot [--db PATH | --csv-in SPEC] [--out DIR] [--task mqar|regbench] [--run ID]\n"
            "                        [--paper [--pair A,B] [--levels L,...]] [--scripts DIR]\n"
            "Draws, per task, with gnuplot (PNG and SVG; the data files go to DIR/data/):\n"
            "  DIR/frontier_<task>   accuracy vs recurrent state size (bytes, log2 axis), one line per variant\n"
            "                        through its best configuration per state size (RegBench: a second panel\n"
            "                        with the TVD to the true next-token distribution)\n"
            "  DIR/curves_<task>     test accuracy and training loss vs epoch of each variant's most accurate run\n"
            "  DIR/run<ID>           with --run ID: that run's accuracy per test configuration and training loss\n"
            "With --paper, instead, the BLA paper's figures (issue 12):\n"
            "  DIR/mqar_frontier     MQAR accuracy vs state, every variant (best configuration per state size)\n"
            "  DIR/regbench_state    RegBench accuracy and TVD vs state per (variant, training automata), with the\n"
            "                        in-context 2-gram and 3-gram baselines of the runs' test sets as lines\n"
            "  DIR/bla_vs_swa        the MQAR frontiers of A and B (--pair, default bla,swa) with the ratio\n"
            "                        R = state_B / state_A marked at each level (--levels, default 0.5,0.7,0.9,0.99)\n"
            "Prints the paths written.\n"
            "  --csv-in SPEC   read exported CSVs (recallbench export) instead of a database: files and/or\n"
            "                  directories, comma-separated (no training curves: the CSVs hold final evaluations)\n"
            "  --db PATH       results database (default %s)\n"
            "  --out DIR       output directory, created if missing (default plots/out)\n"
            "  --task T        only this task: mqar | regbench (default: every task with finished runs)\n"
            "  --run ID        plot only the training curves of run ID\n"
            "  --scripts DIR   where frontier.gp and curves.gp are (default $RB_PLOTS_DIR, else %s/plots)\n"
            "  --help          this text\n"
            "Exit status: 0 ok, 2 bad flag, 1 database error, gnuplot missing or failing.\n",
            frontier_default_db(), RB_SOURCE_ROOT);
}

int cmd_plot(int argc, char **argv) {
    const char *db = NULL, *out = "plots/out", *task = NULL, *scripts = getenv("RB_PLOTS_DIR"), *csv_in = NULL, *v;
    const char *pair = "bla,swa";
    int paper = 0;
    double levels[16] = {0.5, 0.7, 0.9, 0.99};
    int nlev = 4;
    char err[256];
    long long run = 0;
    for (int i = frontier_arg_start(argc, argv, "plot"); i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return 0; }
        else if (!strcmp(a, "--paper")) paper = 1;
        else if ((v = frontier_flag_value(argc, argv, &i, "--db"))) db = v;
        else if ((v = frontier_flag_value(argc, argv, &i, "--csv-in"))) csv_in = v;
        else if ((v = frontier_flag_value(argc, argv, &i, "--out"))) out = v;
        else if ((v = frontier_flag_value(argc, argv, &i, "--task"))) frontier_check_task(task = v);
        else if ((v = frontier_flag_value(argc, argv, &i, "--scripts"))) scripts = v;
        else if ((v = frontier_flag_value(argc, argv, &i, "--pair"))) pair = v;
        else if ((v = frontier_flag_value(argc, argv, &i, "--levels"))) {
            if ((nlev = frontier_parse_levels(v, levels, 16, err, sizeof err)) < 0) die_usage("%s", err);
        } else if ((v = frontier_flag_value(argc, argv, &i, "--run"))) {
            char *e;
            run = strtoll(v, &e, 10);
            if (e == v || *e || run < 1) die_usage("--run %s: must be a run id (an integer >= 1)", v);
        } else die_usage("plot: unknown argument '%s' (see recallbench plot --help)", a);
    }
    char pa[48], pb[48];
    const char *comma = strchr(pair, ',');
    if (!comma || comma == pair || !comma[1] || strchr(comma + 1, ',') || comma - pair >= 48 || strlen(comma + 1) >= 48)
        die_usage("--pair %s: give two variants A,B (e.g. bla,swa)", pair);
    snprintf(pa, sizeof pa, "%.*s", (int)(comma - pair), pair);
    snprintf(pb, sizeof pb, "%s", comma + 1);
    char sdir[1024];
    snprintf(sdir, sizeof sdir, "%s", scripts && *scripts ? scripts : RB_SOURCE_ROOT "/plots");
    if (!*out) die_usage("--out '': give a directory (default plots/out)");
    no_quote(out, "--out");
    no_quote(sdir, "--scripts");
    char probe[1100];
    snprintf(probe, sizeof probe, "%s/frontier.gp", sdir);
    if (access(probe, R_OK) != 0)
        die_runtime("plot scripts not found: %s (pass --scripts DIR or set RB_PLOTS_DIR to recallbench's plots/)", probe);
    const char *src;
    Store *s = export_open_source(db, csv_in, &src);
    sqlite3 *h = store_db(s);
    char dd[1100];
    snprintf(dd, sizeof dd, "%s/data", out);
    mkdirs(dd);
    if (run) {
        if (csv_in) die_usage("--run with --csv-in: exported CSVs keep the final evaluation only, not the training curves");
        plot_run(h, run, out, sdir);
        store_close(s);
        return 0;
    }
    FrPoint *p;
    int np = frontier_compute(h, task, &p);
    if (np == 0) {
        store_close(s);
        free(p);
        die_runtime("no finished runs%s%s in %s: nothing to plot", task ? " of task " : "", task ? task : "", src);
    }
    int figs = 0;
    if (paper) figs += plot_paper_figures(h, out, sdir, pa, pb, levels, nlev);
    else
        for (int i = 0; i < np; i++) {
            if (i > 0 && !strcmp(p[i].task, p[i - 1].task)) continue;
            figs += plot_frontier(h, p[i].task, p, np, out, sdir);
            // An imported CSV holds the final evaluation only: no training curves to draw.
            if (!csv_in) figs += plot_curves(h, p[i].task, p, np, out, sdir);
        }
    free(p);
    store_close(s);
    if (fflush(stdout)) die_runtime("cannot write output: %s", strerror(errno));
    return figs ? 0 : EXIT_RUNTIME;
}
