// report.c — `recallbench report`: a markdown summary of a results database: runs per variant and status,
// the frontier tables, state-efficiency ratios, links to the figures. Depends on frontier.h, store.h, sqlite3.
#include <errno.h>
#include <limits.h>
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
            "usage: recallbench report [--db PATH] [--out FILE] [--task mqar|regbench] [--levels 0.5,0.7,0.9]\n"
            "                          [--vs VARIANT] [--figures DIR]\n"
            "Writes a markdown summary: runs per (task, variant) and status, the best configuration per state size\n"
            "with the Pareto frontier, the state each variant needs per accuracy level, state-efficiency ratios\n"
            "(as recallbench frontier computes them), and links to the figures of recallbench plot.\n"
            "  --db PATH        results database (default %s)\n"
            "  --out FILE       write to FILE instead of stdout (figure links are made relative to FILE's directory)\n"
            "  --task T         only this task: mqar | regbench\n"
            "  --levels L,...   accuracy levels in (0, 1] (default 0.5,0.7,0.9)\n"
            "  --vs VARIANT     ratios of VARIANT against every other variant only (default: every pair)\n"
            "  --figures DIR    where recallbench plot wrote the figures (default plots/out)\n"
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
        " count(DISTINCT CASE WHEN status = 'ok' THEN state_floats END), avg(CASE WHEN status = 'ok' THEN tokens_per_s END)"
        " FROM runs WHERE (?1 IS NULL OR task = ?1) GROUP BY task, v ORDER BY task, v";
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) die_runtime("cannot read runs: %s", sqlite3_errmsg(db));
    if (task) sqlite3_bind_text(st, 1, task, -1, SQLITE_TRANSIENT);
    fprintf(f, "## Runs\n\n| task | variant | runs | ok | diverged | failed | interrupted | running | state sizes | "
               "best accuracy | mean tokens/s |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    int rows = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        fprintf(f, "| %s | %s |", sqlite3_column_text(st, 0) ? (const char *)sqlite3_column_text(st, 0) : "?",
                (const char *)sqlite3_column_text(st, 1));
        for (int c = 2; c <= 7; c++) fprintf(f, " %d |", sqlite3_column_int(st, c));
        fprintf(f, " %d |", sqlite3_column_int(st, 9));
        if (sqlite3_column_type(st, 8) == SQLITE_NULL) fprintf(f, " – |");
        else fprintf(f, " %.3f |", sqlite3_column_double(st, 8));
        if (sqlite3_column_type(st, 10) == SQLITE_NULL) fprintf(f, " – |\n");
        else fprintf(f, " %.0f |\n", sqlite3_column_double(st, 10));
        rows++;
    }
    if (rc != SQLITE_DONE) die_runtime("cannot read runs: %s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    if (!rows) fprintf(f, "| – | (no runs) | 0 | 0 | 0 | 0 | 0 | 0 | 0 | – | – |\n");
}

int cmd_report(int argc, char **argv) {
    const char *db = NULL, *out = NULL, *task = NULL, *vs = NULL, *figs = "plots/out", *v;
    double levels[16] = {0.5, 0.7, 0.9};
    int nlev = 3;
    char err[256];
    for (int i = frontier_arg_start(argc, argv, "report"); i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return 0; }
        else if ((v = frontier_flag_value(argc, argv, &i, "--db"))) db = v;
        else if ((v = frontier_flag_value(argc, argv, &i, "--out"))) out = v;
        else if ((v = frontier_flag_value(argc, argv, &i, "--task"))) frontier_check_task(task = v);
        else if ((v = frontier_flag_value(argc, argv, &i, "--vs"))) vs = v;
        else if ((v = frontier_flag_value(argc, argv, &i, "--figures"))) figs = v;
        else if ((v = frontier_flag_value(argc, argv, &i, "--levels"))) {
            if ((nlev = frontier_parse_levels(v, levels, 16, err, sizeof err)) < 0) die_usage("%s", err);
        } else die_usage("report: unknown argument '%s' (see recallbench report --help)", a);
    }
    if (!db) db = frontier_default_db();
    Store *s = frontier_open_existing(db);
    sqlite3 *h = store_db(s);
    FrPoint *p;
    int np = frontier_compute(h, task, &p);
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
    fprintf(f, "# recallbench report\n\nDatabase `%s`%s%s, generated %s by recallbench %s (git %s).\n\n", db,
            task ? ", task " : "", task ? task : "", ts, RB_VERSION, RB_GIT_REV);
    fprintf(f, "State sizes are the recurrent state of the whole model in bytes (4 x floats, summed over layers). "
               "Per (variant, state size) the best configuration is kept (learning rate and mixer knobs; accuracy "
               "averaged over seeds); `*` marks the Pareto frontier (no smaller-or-equal state reaches a higher-or-equal "
               "accuracy). Needs are interpolated linearly in log2(state) between the frontier points around the level; "
               "`<= X`: already reached at the smallest measured state.\n\n");
    runs_table(f, h, task);
    if (np == 0) fprintf(f, "\nNo finished runs: no frontier yet.\n");
    else {
        fprintf(f, "\n## Frontier\n");
        frontier_print_tables(f, p, np, nd, nn, r, nr, levels, nlev, 1);
        fprintf(f, "\n## Figures\n\n");
        char base[PATH_MAX] = ".";
        if (out) {
            const char *sl = strrchr(out, '/');
            if (sl) snprintf(base, sizeof base, "%.*s", (int)(sl - out), out);
        }
        char link[PATH_MAX];
        relpath(base, figs, link, sizeof link);
        int missing = 0;
        for (int i = 0; i < np; i++) {
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
        if (missing)
            fprintf(f, "\nDraw the missing figures with `recallbench plot --db %s --out %s`.\n", db, figs);
    }
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
