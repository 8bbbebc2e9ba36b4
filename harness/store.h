// store.h — the SQLite results store (architecture.md, "Results store"): runs, per-epoch evals, benches.
// Depends on sqlite3. WAL, one transaction per write, user_version migrations, safe for concurrent
// writer processes (busy timeout + retry); a killed writer leaves its run 'running' until
// store_mark_stale() marks it 'interrupted'.
#pragma once
#include <stddef.h>
#include <stdint.h>

typedef struct Store Store;

// The indexed columns of a run; config_json is the canonical config (config.c), config_hash its hash.
typedef struct {
    const char *config_json, *config_hash;
    const char *task;            // "mqar" | "regbench"
    const char *model;           // layers as given, e.g. "conv,bla"
    const char *mixer;           // the non-conv mixer that names the model, e.g. "bla"
    const char *variant;         // mixer variant name for frontiers, e.g. "bla-dense-project"
    int d_model, n_layers, heads;
    int window, freqs, slots, feature_dim, state_dim; // 0 where not applicable
    double lr;
    uint64_t seed;
    int epochs;
    const char *backend;         // "cpu" | "cuda"
    double state_floats;
    const char *state_formula;
    const char *git_rev, *host;
    int force;                   // start even if the config finished or a live process is training it
    int resume_epoch;            // > 0: resumed from a checkpoint at this epoch: the config's earlier
                                 // unfinished rows are kept (as interrupted; their time counts) and the
                                 // latest one's evaluations of epochs before it move to the new row
    const char *device;          // "NVIDIA H200", "cpu": kept in result_json from the start, so a sitting
                                 // whose worker was killed (no finish written) still names its device
} RunInfo;

typedef struct {
    int64_t id;
    char status[16];             // running | ok | failed | diverged | interrupted
    char task[16], model[64], mixer[16], variant[48], config_hash[24], backend[8];
    int d_model, epochs_done;
    double lr, state_floats, accuracy, tokens_per_s;
    uint64_t seed;               // NULL columns read as "" / 0 / NAN (reals, e.g. accuracy of a running row)
} RunRow;

// Opens (creating if needed) and migrates. NULL with one line in err ("cannot open results
// database X: ...", "X is not a recallbench database", "database X is locked") on failure.
// Writers wait up to 30 s for a busy database (then fail with "database X is locked");
// the environment variable RB_BUSY_TIMEOUT_MS overrides the wait (tests use a short one).
Store *store_open(const char *path, char *err, size_t errn);
// Opens an existing, current-schema database for reading only (needs no write access to the file or its
// directory; a WAL file on read-only media is read as immutable). Writes through it fail. NULL + err.
Store *store_open_readonly(const char *path, char *err, size_t errn);
void store_close(Store *s);
const char *store_errmsg(Store *s);

// Starts a run by claiming its config in one write transaction: inserts a 'running' row (pid and host
// recorded; the row's live process is the config's owner). Earlier rows of the config hash: failed and
// diverged ones are replaced; interrupted ones (and ours or dead 'running' ones, marked interrupted) stay as
// sittings, their evaluations moved to the new row up to r->resume_epoch, or removed when it starts at step 1.
// Returns the run id; 0 when the config is taken (unless r->force): another live process is training it
// (a 'running' row on another host counts as live) or it already finished; store_errmsg() says which.
// -1 on error.
int64_t store_begin_run(Store *s, const RunInfo *r);
// Who holds a config now: STORE_FREE, STORE_FINISHED (an ok row), STORE_RUNNING (a live owner); *run
// the holding run's id (may be NULL). -1 on error. A hint only: store_begin_run() makes the claim.
enum { STORE_FREE = 0, STORE_FINISHED = 1, STORE_RUNNING = 2 };
int store_config_state(Store *s, const char *config_hash, int64_t *run);
// One evaluation row. split: the test configuration label ("L=256,K=16", "test", "train"); L and K
// 0 where not applicable; tvd < 0 = not applicable. Returns 0 or -1.
int store_log_eval(Store *s, int64_t run, int epoch, const char *split, int L, int K,
                   double accuracy, double loss, double tvd);
// Ends a run with status ok|failed|diverged|interrupted, its final mean accuracy, epochs done, tokens/s, and
// result_json (the train --json object). Returns 0 or -1.
int store_finish_run(Store *s, int64_t run, const char *status, double accuracy, int epochs_done,
                     double tokens_per_s, const char *result_json);
// Run id of a finished (status ok) run with this config hash, 0 if none, -1 on error.
int64_t store_find_finished(Store *s, const char *config_hash);
// Marks 'running' rows whose process is gone (same host, pid not alive) as 'interrupted'.
// Returns how many were marked, -1 on error.
int store_mark_stale(Store *s);
// Calls fn for every run (ordered by id), optionally filtered by task (NULL = all). Returns count or -1.
int store_list_runs(Store *s, const char *task, void (*fn)(const RunRow *r, void *ud), void *ud);
// Records a bench measurement. Returns 0 or -1.
int store_log_bench(Store *s, const char *config_json, const char *backend, int threads,
                    double tokens_per_s, double gemm_frac, const char *git_rev, const char *host);
// Copies the ok runs (with their evals) of src into s, skipping runs whose config hash is already
// finished in s (of several ok rows of one hash in src, the newest); returns runs copied or -1. A copied
// run replaces its failed and diverged rows in s. src's interrupted rows (earlier sittings of resumed runs)
// are copied once each (by config hash and start time; *sittings counts them, if not NULL); its failed,
// diverged and running rows are not; its bench rows are (store.c states the rules).
int store_merge_from(Store *s, const char *src_path, int *sittings, char *err, size_t errn);
// The raw handle for read-only analyses (frontier, plot, report).
struct sqlite3 *store_db(Store *s);
