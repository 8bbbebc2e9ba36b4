// frontier.h — the state-size frontier (architecture.md "harness/frontier"): best lr per (task, variant,
// state size), the Pareto frontier of accuracy vs state, the state each variant needs to reach an accuracy
// level, and state-efficiency ratios between variants. Pure functions + the loader; depends on sqlite3.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct sqlite3;

// One finished (status ok) run as the frontier sees it.
typedef struct {
    int64_t run_id;
    char task[16], variant[48];
    char key[1024];        // identity of the config without its seed (runs differing only by seed share it)
    char desc[96];         // short config summary for tables: "d=64 W=32 N=8"
    double lr, state_floats, accuracy;
    uint64_t seed;
    int train_automata;    // RegBench training automata (0 for MQAR)
} FrRun;

// The best configuration of one (task, variant, state size): the config (lr included) with the highest
// mean accuracy over the seeds that every config of that state has (all its seeds where none is shared);
// its accuracy is its mean over all its seeds. Points come sorted by task, variant, state.
typedef struct {
    char task[16], variant[48], desc[96];
    double state_floats, lr, accuracy;   // accuracy = mean over seeds of the chosen config
    int n_seeds;                         // seeds averaged in the chosen config
    int n_configs;                       // configs (lr, window, ...) compared at this state size
    int on_frontier;                     // 1 if no point of the same (task, variant) dominates it
    int64_t best_run;                    // the chosen config's best seed (for training curves)
    int train_automata;                  // RegBench training automata (0 for MQAR)
    char key[1024];                      // the chosen config's seed-free identity (FrRun.key)
} FrPoint;

// How a level was reached: exactly/interpolated, already at the smallest measured state (the true need is
// at most that: "<= X"), or not at all (the variant's best accuracy is below the level).
enum { FR_REACHED = 0, FR_AT_MOST = 1, FR_NOT_REACHED = -1 };

typedef struct {
    char task[16], variant[48];
    double level, state_floats;          // state_floats undefined (0) when FR_NOT_REACHED
    int kind;                            // FR_*
} FrNeed;

// Ratio state_b / state_a at one level: "a reaches the level with ratio x less state than b".
// qual: "" exact, ">=" (a's need is an upper bound), "<=" (b's need is an upper bound), "~" (both are),
// "n/a" (either not reached; ratio = 0).
typedef struct {
    char task[16], a[48], b[48];
    double level, state_a, state_b, ratio;
    int kind_a, kind_b;
    char qual[4];
} FrRatio;

// Best configuration per (task, variant, state_floats). *out is malloc'd; returns the count (>= 0).
int frontier_points(const FrRun *runs, int n, FrPoint **out);
// Sets on_frontier within each (task, variant): a point is dominated if another point of the same
// variant has state <= and accuracy >= with at least one strict. Points must be sorted (as returned).
void frontier_pareto(FrPoint *p, int n);
// State needed by (task, variant) to reach level along its frontier points, linear in log2(state)
// between the two bracketing frontier points. Returns the state in floats (0 if not reached); *kind = FR_*.
double frontier_state_for(const FrPoint *p, int n, const char *task, const char *variant, double level,
                          int *kind);
// Needs of every (task, variant) at every level (*out malloc'd, ordered task, variant, level). Returns count.
int frontier_needs(const FrPoint *p, int n, const double *levels, int nlev, FrNeed **out);
// Ratios for every pair of variants of a task at every level, a before b in name order; with vs != NULL
// only pairs with a == vs (b = every other variant). *out malloc'd; returns the count.
int frontier_ratios(const FrNeed *needs, int nneeds, const char *vs, FrRatio **out);

// The spread of a ratio over seeds. For each seed s, each variant's seed-s frontier keeps the configuration
// chosen per state size (as frontier_points chooses it) and takes its seed-s accuracy. The needs and the
// ratio are then computed along those per-seed frontiers exactly as for the mean (log2 interpolation),
// giving one ratio per seed that both variants have. A seed whose runs miss some state size of either
// variant (seeds added at a few points only) gets qualifier "partial" and no ratio: its frontier would
// interpolate between other points than the mean's. mean/sd (sample, n - 1) /min/max are over the seeds
// where both reach the level (n of them; spread_counts); bounds ("<=", ">=", "~" qualifiers) count with
// their value and set any_bound.
#define FR_MAX_SEEDS 16
typedef struct {
    char task[16], a[48], b[48];
    double level;
    int n_seeds;                          // seeds that both variants have
    uint64_t seed[FR_MAX_SEEDS];
    double ratio[FR_MAX_SEEDS];           // 0 where either side does not reach the level
    char qual[FR_MAX_SEEDS][8];           // "", "<=", ">=", "~", "n/a" or "partial"
    int n;                                // seeds with a ratio
    double mean, sd, min, max;            // over those n (sd NAN when n < 2; all NAN when n = 0)
    int any_bound;
} FrSpread;
// One FrSpread per entry of ratios (same order). runs are the loaded runs the points were computed from.
int frontier_seed_spread(const FrRun *runs, int nruns, const FrPoint *p, int np, const FrRatio *ratios, int nr,
                         const double *levels, int nlev, FrSpread **out);
void frontier_print_spread(FILE *f, const FrSpread *s, int ns, int nlev, int markdown);
// 1 where a per-seed qualifier carries a ratio that counts in the spread (not "n/a", not "partial").
int spread_counts(const char *qual);
// A ratio as printed everywhere: "n/a", "not at every size" (partial) or the qualifier and "%.2fx".
void frontier_fmt_ratio(char *b, size_t n, const char *qual, double r);

// Reads the status-ok runs (optionally of one task) from a recallbench database. *out malloc'd; returns the
// count, or -1 with one line in err.
int frontier_load(struct sqlite3 *db, const char *task, FrRun **out, char *err, size_t errn);
// Removes the member `name` (its first occurrence) from a canonical config JSON, in place.
void frontier_strip_member(char *json, const char *name);
// frontier_strip_member(json, "seed"): the seed-free identity of a config.
void frontier_strip_seed(char *json);
// "512 B", "1.5 KiB", "24 MiB" into buf.
const char *frontier_fmt_bytes(double bytes, char *buf, size_t n);
// Parses "0.5,0.7,0.9" into levels (each in (0, 1]); returns the count or -1 with err.
int frontier_parse_levels(const char *s, double *levels, int max, char *err, size_t errn);

int cmd_frontier(int argc, char **argv);

// Shared by frontier, plot and report: the database path the analyses read by default (config_defaults'
// --db, else results/results.db), opening an existing database (exit 1 with a reason if it is missing or
// unreadable; never creates one), and load + best-config + Pareto in one call (exit 1 on db errors).
const char *frontier_default_db(void);
struct Store *frontier_open_existing(const char *path);
int frontier_compute(struct sqlite3 *db, const char *task, FrPoint **out);
// The same, also handing back the runs (*runs malloc'd, count in *nruns). RegBench runs of a database that
// holds more than one training-automata count are split into tasks "regbench-ta<N>" (one frontier per
// count: mixing them would pick the best config across data sets).
int frontier_compute_runs(struct sqlite3 *db, const char *task, FrPoint **out, FrRun **runs, int *nruns);
// The frontier tables (points, needs, ratios) as plain text (markdown = 0) or markdown pipe tables.
void frontier_print_tables(FILE *f, const FrPoint *p, int np, const FrNeed *nd, int nn, const FrRatio *r,
                           int nr, const double *levels, int nlev, int markdown);
// Flag helper of the analysis commands: argv[*i] is "--name value" (advances *i) or "--name=value";
// returns the value, NULL if argv[*i] is another flag; exit 2 if the value is missing.
const char *frontier_flag_value(int argc, char **argv, int *i, const char *name);
// Exit 2 unless t is mqar or regbench.
int frontier_check_task(const char *t);
// Index of the first argument of a subcommand in argv, whatever main passes: skips a leading program
// name (".../recallbench") and then the subcommand name itself.
int frontier_arg_start(int argc, char **argv, const char *cmd);
// Creates the directories leading to path (mkdir -p of its dirname); exit 1 if that fails.
void frontier_mkdir_parent(const char *path);

// ---------------------------------------------------------------------------------------------------------
// export.c: one row per run, to CSV and back (the committed results are CSV; no database needed to report).
#define EX_MAX_SPLITS 16
typedef struct {
    int64_t run_id;
    char task[16], variant[48], mixer[16], layers[96], status[16], backend[16], device[96], host[96];
    char git_rev[48], started[32], finished[32], config_hash[24], state_formula[256];
    char window[64], freqs[64], readout[16], feature_map[16];
    char precision[8];                    // cuda GEMM inputs (fp32|tf32|bf16); "" on the cpu backend
    char *config_json;                    // malloc'd
    int n_layers, d_model, heads, slots, feature_dim, state_dim, epochs, epochs_done, train_automata, test_automata;
    double lr, state_floats, accuracy, tvd, tokens_per_s, duration_s;   // NAN where absent
    uint64_t seed;
    int nacc;                             // final evaluation per test configuration
    char labels[EX_MAX_SPLITS][32];
    double acc[EX_MAX_SPLITS];
    double ngram[4];                      // RegBench 2-gram accuracy, TVD, 3-gram accuracy, TVD (else NAN)
} ExRow;
// Every run (optionally of one task) of a database, ordered by id. baselines: compute the RegBench n-gram
// baselines (regenerating each seed's test split) unless the database carries them (an imported one).
int export_load(struct sqlite3 *db, const char *task, int baselines, ExRow **out);
void export_free(ExRow *r, int n);
void export_write_csv(FILE *f, const ExRow *r, int n);
// The union of the rows' test splits (of one task, or all when task is NULL) in order of first appearance,
// at most max of them into labels; returns the count.
int export_split_labels(const ExRow *r, int n, const char *task, char (*labels)[32], int max);
// Imports export CSVs (comma-separated files and/or directories of *.csv; other CSVs in a directory are
// skipped) into a temporary database (removed at exit); *nfiles = files read. Exit 2/1 on bad input.
struct Store *export_import(const char *spec, int *nfiles);
// The analyses' source: the database db, or (csv_in != NULL) the imported CSVs. *label names it for output.
struct Store *export_open_source(const char *db, const char *csv_in, const char **label);
int cmd_export(int argc, char **argv);

// plot.c: the BLA paper's figures (mqar_frontier, regbench_state, bla_vs_swa) into out (created), reading db;
// a, b: the pair of bla_vs_swa; scripts NULL: $RB_PLOTS_DIR, else the source tree's plots/. Returns figures.
int plot_paper_figures(struct sqlite3 *db, const char *out, const char *scripts, const char *a, const char *b,
                       const double *levels, int nlev);
// Mean RegBench n-gram baselines over the distinct test sets (seed, test automata) of rows: 2-gram accuracy,
// TVD, 3-gram accuracy, TVD (NAN if none).
void plot_regbench_baselines(const ExRow *rows, int nrows, double out[4]);
