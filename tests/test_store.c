// test_store.c — checks the results store: round trip, replacement, concurrent writer processes, a
// SIGKILLed writer, refused/locked files, merge. Depends on harness/store.c, util.c, sqlite3, fork.
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "store.h"
#include "util.h"

static int failures;
static char tmpdir[256];

// Prints "PASS|FAIL name value" and counts failures.
static void check(const char *name, int ok, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void check(const char *name, int ok, const char *fmt, ...) {
    char v[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v, sizeof v, fmt, ap);
    va_end(ap);
    printf("%s %s %s\n", ok ? "PASS" : "FAIL", name, v);
    fflush(stdout);
    if (!ok) failures++;
}

static char *tpath(const char *name) {
    static char buf[8][512];
    static int k;
    char *p = buf[k++ % 8];
    snprintf(p, 512, "%s/%s", tmpdir, name);
    return p;
}

// First column of the first row of sql as int64 (-999999 on error / no row).
static int64_t q_int(sqlite3 *db, const char *sql) {
    sqlite3_stmt *st = NULL;
    int64_t v = -999999;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    else
        fprintf(stderr, "q_int(%s): %s\n", sql, sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return v;
}
static double q_real(sqlite3 *db, const char *sql) {
    sqlite3_stmt *st = NULL;
    double v = NAN;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_double(st, 0);
    sqlite3_finalize(st);
    return v;
}
static void q_text(sqlite3 *db, const char *sql, char *out, size_t n) {
    sqlite3_stmt *st = NULL;
    snprintf(out, n, "(none)");
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(st, 0);
        snprintf(out, n, "%s", t ? (const char *)t : "(null)");
    } else {
        snprintf(out, n, "(error: %s)", sqlite3_errmsg(db));
    }
    sqlite3_finalize(st);
}
static int64_t q_intf(sqlite3 *db, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int64_t q_intf(sqlite3 *db, const char *fmt, ...) {
    char sql[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    return q_int(db, sql);
}
static int integrity_ok(sqlite3 *db, char *out, size_t n) {
    q_text(db, "PRAGMA integrity_check", out, n);
    return strcmp(out, "ok") == 0;
}

static RunInfo run_info(const char *hash) {
    RunInfo r = {0};
    r.config_json = "{\"task\":\"mqar\",\"model\":\"conv,bla\"}";
    r.config_hash = hash;
    r.task = "mqar";
    r.model = "conv,bla";
    r.mixer = "bla";
    r.variant = "bla-dense-project";
    r.d_model = 64; r.n_layers = 2; r.heads = 2; r.window = 0; r.freqs = 8; r.slots = 0; r.feature_dim = 0;
    r.state_dim = 16;
    r.lr = 3e-4;
    r.seed = 0xFEDCBA9876543210ull;  // high bit set: must survive the signed column
    r.epochs = 5;
    r.backend = "cpu";
    r.state_floats = 1234.5;
    r.state_formula = "2*D*H";
    r.git_rev = "deadbeef";
    return r;
}

static Store *open_or_die(const char *path) {
    char err[512];
    Store *s = store_open(path, err, sizeof err);
    if (!s) { printf("FAIL open %s\n", err); exit(1); }
    return s;
}

// --- round trip ----------------------------------------------------------------------------------

typedef struct { int n; RunRow last; } Collect;
static void collect(const RunRow *r, void *ud) { Collect *c = ud; c->n++; c->last = *r; }

static void test_round_trip(void) {
    const char *path = tpath("roundtrip.db");
    Store *s = open_or_die(path);
    sqlite3 *db = store_db(s);
    char txt[256];
    RunInfo ri = run_info("hash-rt");
    int64_t id = store_begin_run(s, &ri);
    check("roundtrip_begin", id > 0, "id=%lld %s", (long long)id, store_errmsg(s));
    q_text(db, "SELECT status FROM runs", txt, sizeof txt);
    check("roundtrip_status_running", strcmp(txt, "running") == 0, "%s", txt);
    int64_t pid = q_int(db, "SELECT pid FROM runs");
    check("roundtrip_pid", pid == getpid(), "%lld vs %d", (long long)pid, (int)getpid());
    q_text(db, "SELECT host FROM runs", txt, sizeof txt);
    check("roundtrip_host", strcmp(txt, host_name()) == 0, "%s", txt);
    q_text(db, "SELECT started FROM runs", txt, sizeof txt);
    check("roundtrip_started", strlen(txt) == 20 && txt[10] == 'T', "%s", txt);
    int64_t f0 = store_find_finished(s, "hash-rt");
    check("roundtrip_not_finished_while_running", f0 == 0, "%lld", (long long)f0);

    int e1 = store_log_eval(s, id, 1, "L=64,K=4", 64, 4, 0.5, 1.25, -1);
    int e2 = store_log_eval(s, id, 2, "L=64,K=4", 64, 4, 0.75, 0.5, 0.25);
    int e3 = store_log_eval(s, id, 2, "test", 0, 0, 0.875, 0.375, -1);
    check("roundtrip_log_eval", e1 == 0 && e2 == 0 && e3 == 0, "%d %d %d %s", e1, e2, e3, store_errmsg(s));
    int fin = store_finish_run(s, id, "ok", 0.875, 5, 12345.5, "{\"accuracy\":0.875}");
    check("roundtrip_finish", fin == 0, "%d %s", fin, store_errmsg(s));
    int64_t f = store_find_finished(s, "hash-rt");
    check("roundtrip_find_finished", f == id, "%lld vs %lld", (long long)f, (long long)id);
    int64_t fx = store_find_finished(s, "no-such-hash");
    check("roundtrip_find_unknown", fx == 0, "%lld", (long long)fx);

    Collect c = {0};
    int n = store_list_runs(s, NULL, collect, &c);
    RunRow *r = &c.last;
    check("roundtrip_list_count", n == 1 && c.n == 1, "n=%d calls=%d", n, c.n);
    check("roundtrip_list_text", r->id == id && !strcmp(r->status, "ok") && !strcmp(r->task, "mqar") &&
          !strcmp(r->model, "conv,bla") && !strcmp(r->mixer, "bla") && !strcmp(r->variant, "bla-dense-project") &&
          !strcmp(r->config_hash, "hash-rt"), "id=%lld status=%s task=%s model=%s mixer=%s variant=%s hash=%s",
          (long long)r->id, r->status, r->task, r->model, r->mixer, r->variant, r->config_hash);
    check("roundtrip_list_numbers", r->d_model == 64 && r->epochs_done == 5 && r->lr == 3e-4 &&
          r->state_floats == 1234.5 && r->accuracy == 0.875 && r->tokens_per_s == 12345.5,
          "d_model=%d epochs_done=%d lr=%g state_floats=%g acc=%g tok/s=%g", r->d_model, r->epochs_done, r->lr,
          r->state_floats, r->accuracy, r->tokens_per_s);
    check("roundtrip_seed_uint64", r->seed == 0xFEDCBA9876543210ull, "0x%016llx", (unsigned long long)r->seed);
    Collect c2 = {0};
    int n2 = store_list_runs(s, "regbench", collect, &c2);
    check("roundtrip_list_filter", n2 == 0 && c2.n == 0, "n=%d", n2);
    int n3 = store_list_runs(s, "mqar", NULL, NULL);
    check("roundtrip_list_filter_match", n3 == 1, "n=%d", n3);

    int64_t cols = q_int(db, "SELECT count(*) FROM runs WHERE n_layers=2 AND heads=2 AND window=0 AND freqs=8"
                             " AND slots=0 AND feature_dim=0 AND state_dim=16 AND epochs=5 AND backend='cpu'"
                             " AND state_formula='2*D*H' AND git_rev='deadbeef' AND finished IS NOT NULL"
                             " AND result_json='{\"accuracy\":0.875}'"
                             " AND config_json='{\"task\":\"mqar\",\"model\":\"conv,bla\"}'");
    check("roundtrip_columns", cols == 1, "matching rows=%lld", (long long)cols);
    int64_t ne = q_int(db, "SELECT count(*) FROM evals");
    int64_t nnull = q_int(db, "SELECT count(*) FROM evals WHERE tvd IS NULL");
    double tvd = q_real(db, "SELECT tvd FROM evals WHERE tvd IS NOT NULL");
    double acc = q_real(db, "SELECT accuracy FROM evals WHERE split='test'");
    check("roundtrip_evals", ne == 3 && nnull == 2 && tvd == 0.25 && acc == 0.875,
          "n=%lld tvd_null=%lld tvd=%g test_acc=%g", (long long)ne, (long long)nnull, tvd, acc);
    int64_t uv = q_int(db, "PRAGMA user_version");
    q_text(db, "PRAGMA journal_mode", txt, sizeof txt);
    int64_t fk = q_int(db, "PRAGMA foreign_keys");
    check("roundtrip_pragmas", uv == 1 && !strcmp(txt, "wal") && fk == 1, "user_version=%lld journal=%s fk=%lld",
          (long long)uv, txt, (long long)fk);

    int bad = store_finish_run(s, id, "bogus", 0, 0, 0, NULL);
    check("roundtrip_bad_status_refused", bad == -1, "rc=%d msg=%s", bad, store_errmsg(s));
    int orphan = store_log_eval(s, id + 1000, 1, "test", 0, 0, 0, 0, -1);
    check("roundtrip_eval_unknown_run_refused", orphan == -1, "rc=%d msg=%s", orphan, store_errmsg(s));
    int nofin = store_finish_run(s, id + 1000, "ok", 0, 0, 0, NULL);
    check("roundtrip_finish_unknown_run_refused", nofin == -1, "rc=%d msg=%s", nofin, store_errmsg(s));
    int b = store_log_bench(s, "{\"d\":64}", "cpu", 2, 5000.0, 0.4, NULL, NULL);
    int64_t nb = q_int(db, "SELECT count(*) FROM benches WHERE threads=2 AND tokens_per_s=5000 AND gemm_frac=0.4"
                           " AND created IS NOT NULL AND host IS NOT NULL AND git_rev IS NOT NULL");
    check("roundtrip_bench", b == 0 && nb == 1, "rc=%d rows=%lld", b, (long long)nb);
    store_close(s);

    // Reopen: same values come back from the file.
    s = open_or_die(path);
    int64_t f2 = store_find_finished(s, "hash-rt");
    check("roundtrip_reopen", f2 == id, "%lld", (long long)f2);
    store_close(s);
}

// --- replacement and forced duplicates --------------------------------------------------------------

static void test_replace(void) {
    Store *s = open_or_die(tpath("replace.db"));
    sqlite3 *db = store_db(s);
    RunInfo ri = run_info("hash-rep");
    int64_t a = store_begin_run(s, &ri);
    store_log_eval(s, a, 1, "test", 0, 0, 0.1, 2.0, -1);
    store_log_eval(s, a, 2, "test", 0, 0, 0.2, 1.9, -1);
    store_finish_run(s, a, "failed", 0.2, 2, 100, NULL);
    int64_t b = store_begin_run(s, &ri);
    int64_t rows_a = q_intf(db, "SELECT count(*) FROM runs WHERE id=%lld", (long long)a);
    int64_t evals_a = q_intf(db, "SELECT count(*) FROM evals WHERE run_id=%lld", (long long)a);
    int64_t rows_h = q_int(db, "SELECT count(*) FROM runs WHERE config_hash='hash-rep'");
    check("replace_failed_row", b > 0 && b != a && rows_a == 0 && evals_a == 0 && rows_h == 1,
          "a=%lld b=%lld rows(a)=%lld evals(a)=%lld rows(hash)=%lld", (long long)a, (long long)b,
          (long long)rows_a, (long long)evals_a, (long long)rows_h);
    // Our own abandoned 'running' row stays, as an interrupted sitting (its time counts in `report`), without evals.
    store_log_eval(s, b, 1, "test", 0, 0, 0.1, 2.0, -1);
    int64_t b2 = store_begin_run(s, &ri);
    rows_h = q_int(db, "SELECT count(*) FROM runs WHERE config_hash='hash-rep'");
    char bst[32] = "";
    q_text(db, "SELECT status FROM runs WHERE config_hash='hash-rep' ORDER BY id LIMIT 1", bst, sizeof bst);
    int64_t evals_b = q_intf(db, "SELECT count(*) FROM evals WHERE run_id=%lld", (long long)b);
    check("own_running_row_kept_interrupted", b2 > b && rows_h == 2 && !strcmp(bst, "interrupted") && evals_b == 0,
          "b2=%lld rows(hash)=%lld status(b)=%s evals(b)=%lld", (long long)b2, (long long)rows_h, bst, (long long)evals_b);
    store_finish_run(s, b2, "ok", 0.5, 5, 100, NULL);
    // Without force a finished config is not started again (the claim sees the ok row).
    int64_t c0 = store_begin_run(s, &ri);
    check("finished_config_not_restarted", c0 == 0 && strstr(store_errmsg(s), "already finished"), "rc=%lld %s",
          (long long)c0, store_errmsg(s));
    // Forced rerun of a finished config: the ok row stays, the newest ok row is found.
    ri.force = 1;
    int64_t c = store_begin_run(s, &ri);
    rows_h = q_int(db, "SELECT count(*) FROM runs WHERE config_hash='hash-rep'");
    check("forced_rerun_keeps_ok_row", rows_h == 3, "rows(hash)=%lld (interrupted, ok, running)", (long long)rows_h);
    int64_t f = store_find_finished(s, "hash-rep");
    check("forced_rerun_running_not_found", f == b2, "%lld vs %lld", (long long)f, (long long)b2);
    store_finish_run(s, c, "ok", 0.6, 5, 100, NULL);
    f = store_find_finished(s, "hash-rep");
    int64_t nok = q_int(db, "SELECT count(*) FROM runs WHERE config_hash='hash-rep' AND status='ok'");
    check("forced_duplicate_newest", f == c && nok == 2, "found=%lld newest=%lld ok_rows=%lld", (long long)f,
          (long long)c, (long long)nok);
    // A 'running' row of a live process other than us (our parent) is not taken over, nor marked stale.
    RunInfo rl = run_info("hash-live");
    int64_t l = store_begin_run(s, &rl);
    char sql[256];
    snprintf(sql, sizeof sql, "UPDATE runs SET pid=%d WHERE id=%lld", (int)getppid(), (long long)l);
    sqlite3_exec(db, sql, NULL, NULL, NULL);
    int stale = store_mark_stale(s);
    int64_t l2 = store_begin_run(s, &rl);
    int64_t live = q_intf(db, "SELECT count(*) FROM runs WHERE id=%lld AND status='running'", (long long)l);
    int64_t nrows = q_int(db, "SELECT count(*) FROM runs WHERE config_hash='hash-live'");
    // The live row is the config's owner: a second start is refused (0), nothing is inserted.
    check("live_running_row_kept", stale == 0 && l2 == 0 && live == 1 && nrows == 1 &&
          strstr(store_errmsg(s), "being trained by process"), "stale=%d begin=%lld old_still_running=%lld rows=%lld %s",
          stale, (long long)l2, (long long)live, (long long)nrows, store_errmsg(s));
    int64_t holder = 0;
    int state = store_config_state(s, "hash-live", &holder);
    check("config_state_running", state == STORE_RUNNING && holder == l, "state=%d holder=%lld", state, (long long)holder);
    state = store_config_state(s, "hash-rep", &holder);
    check("config_state_finished", state == STORE_FINISHED && holder == c, "state=%d holder=%lld", state, (long long)holder);
    state = store_config_state(s, "hash-nobody", &holder);
    check("config_state_free", state == STORE_FREE && holder == 0, "state=%d", state);
    rl.force = 1;
    int64_t l3 = store_begin_run(s, &rl);
    check("live_running_row_forced", l3 > l, "begin=%lld", (long long)l3);
    // An interrupted run is finished as 'interrupted' (train's signal path).
    int fin = store_finish_run(s, l3, "interrupted", 0.1, 1, 10, NULL);
    char txt[64];
    q_text(db, "SELECT status FROM runs ORDER BY id DESC LIMIT 1", txt, sizeof txt);
    check("finish_interrupted", fin == 0 && !strcmp(txt, "interrupted"), "rc=%d status=%s %s", fin, txt, store_errmsg(s));
    store_close(s);
}

// --- concurrent writer processes ----------------------------------------------------------------

enum { NPROC = 4, RUNS_PER = 50, EVALS_PER = 10 };

static int child_writer(const char *path, int c, int go_fd) {
    char b;
    if (read(go_fd, &b, 1) < 0) return 3;   // blocks until the parent closes the pipe: all start together
    char err[512];
    Store *s = store_open(path, err, sizeof err);
    if (!s) { fprintf(stderr, "child %d: %s\n", c, err); return 1; }
    for (int i = 0; i < RUNS_PER; i++) {
        char hash[32];
        snprintf(hash, sizeof hash, "c%d-r%d", c, i);
        RunInfo ri = run_info(hash);
        ri.seed = (uint64_t)(c * 1000 + i);
        int64_t id = store_begin_run(s, &ri);
        if (id <= 0) { fprintf(stderr, "child %d: begin: %s\n", c, store_errmsg(s)); return 1; }
        for (int e = 0; e < EVALS_PER; e++)
            if (store_log_eval(s, id, e, "test", 64, 4, e / 10.0, 1.0 / (e + 1), -1)) {
                fprintf(stderr, "child %d: eval: %s\n", c, store_errmsg(s));
                return 1;
            }
        if (store_finish_run(s, id, "ok", 0.9, EVALS_PER, 1000, "{}")) {
            fprintf(stderr, "child %d: finish: %s\n", c, store_errmsg(s));
            return 1;
        }
    }
    store_close(s);
    return 0;
}

static void test_concurrency(void) {
    const char *path = tpath("concurrent.db");   // does not exist yet: the children race to create it
    int go[2];
    if (pipe(go)) { perror("pipe"); exit(1); }
    pid_t pids[NPROC];
    fflush(stdout);
    for (int c = 0; c < NPROC; c++) {
        pids[c] = fork();
        if (pids[c] == 0) { close(go[1]); _exit(child_writer(path, c, go[0])); }
    }
    close(go[0]);
    double t0 = now_seconds();
    close(go[1]);
    int ok_children = 0;
    for (int c = 0; c < NPROC; c++) {
        int st;
        waitpid(pids[c], &st, 0);
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0) ok_children++;
    }
    double dt = now_seconds() - t0;
    check("concurrency_children_ok", ok_children == NPROC, "%d/%d exited 0 in %.2f s", ok_children, NPROC, dt);
    Store *s = open_or_die(path);
    sqlite3 *db = store_db(s);
    int64_t runs = q_int(db, "SELECT count(*) FROM runs");
    int64_t ok = q_int(db, "SELECT count(*) FROM runs WHERE status='ok'");
    int64_t hashes = q_int(db, "SELECT count(DISTINCT config_hash) FROM runs");
    int64_t evals = q_int(db, "SELECT count(*) FROM evals");
    int64_t bad = q_int(db, "SELECT count(*) FROM (SELECT r.id FROM runs r LEFT JOIN evals e ON e.run_id=r.id"
                            " GROUP BY r.id HAVING count(e.run_id) <> 10)");
    int64_t pidn = q_int(db, "SELECT count(DISTINCT pid) FROM runs");
    check("concurrency_runs", runs == NPROC * RUNS_PER && ok == runs && hashes == runs,
          "runs=%lld ok=%lld distinct_hashes=%lld expected=%d", (long long)runs, (long long)ok, (long long)hashes,
          NPROC * RUNS_PER);
    check("concurrency_evals", evals == NPROC * RUNS_PER * EVALS_PER && bad == 0,
          "evals=%lld expected=%d runs_without_10=%lld", (long long)evals, NPROC * RUNS_PER * EVALS_PER, (long long)bad);
    check("concurrency_pids", pidn == NPROC, "distinct pids=%lld", (long long)pidn);
    char ic[256];
    check("concurrency_integrity", integrity_ok(db, ic, sizeof ic), "%s", ic);
    store_close(s);
}

// --- a writer killed with SIGKILL mid-run ----------------------------------------------------------

static void test_kill9(void) {
    const char *path = tpath("kill9.db");
    int prog[2];
    if (pipe(prog)) { perror("pipe"); exit(1); }
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        close(prog[0]);
        char err[512];
        Store *s = store_open(path, err, sizeof err);
        if (!s) _exit(1);
        RunInfo ri = run_info("hash-kill");
        ri.device = "Test \"GPU\" 1";   // quotes: must come back through the JSON intact
        int64_t id = store_begin_run(s, &ri);
        if (id <= 0) _exit(1);
        for (int i = 0; i < 1000000; i++) {
            if (store_log_eval(s, id, i, "test", 0, 0, 0.5, 1.0, -1)) _exit(1);
            if (write(prog[1], "x", 1) != 1) _exit(1);   // one byte per committed eval
        }
        _exit(0);
    }
    close(prog[1]);
    char buf[64];
    int acked = 0;
    while (acked < 40) {
        ssize_t k = read(prog[0], buf, 1);
        if (k <= 0) break;
        acked++;
    }
    kill(pid, SIGKILL);
    int st;
    waitpid(pid, &st, 0);   // reap: a zombie still answers kill(pid, 0)
    ssize_t k;
    while ((k = read(prog[0], buf, sizeof buf)) > 0) acked += (int)k;
    close(prog[0]);
    check("kill9_child_killed", WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "status=0x%x acked=%d", st, acked);

    Store *s = open_or_die(path);
    sqlite3 *db = store_db(s);
    char ic[256], txt[64];
    check("kill9_integrity", integrity_ok(db, ic, sizeof ic), "%s", ic);
    int64_t old = q_int(db, "SELECT id FROM runs WHERE config_hash='hash-kill'");
    q_text(db, "SELECT status FROM runs WHERE config_hash='hash-kill'", txt, sizeof txt);
    check("kill9_still_running", strcmp(txt, "running") == 0, "%s", txt);
    // The device is written when the run starts: a killed sitting (no finish) still names it.
    q_text(db, "SELECT json_extract(result_json, '$.device') FROM runs WHERE config_hash='hash-kill'", txt, sizeof txt);
    check("kill9_device_recorded", strcmp(txt, "Test \"GPU\" 1") == 0, "%s", txt);
    int64_t ev = q_intf(db, "SELECT count(*) FROM evals WHERE run_id=%lld", (long long)old);
    // Every eval acknowledged was committed; at most one more committed before its byte was written.
    check("kill9_evals_present", ev >= 40 && (ev == acked || ev == acked + 1), "evals=%lld acked=%d",
          (long long)ev, acked);
    // Our own live run must not be marked.
    RunInfo mine = run_info("hash-mine");
    int64_t my = store_begin_run(s, &mine);
    int marked = store_mark_stale(s);
    q_text(db, "SELECT status FROM runs WHERE config_hash='hash-kill'", txt, sizeof txt);
    check("kill9_mark_stale", marked == 1 && strcmp(txt, "interrupted") == 0, "marked=%d status=%s", marked, txt);
    q_text(db, "SELECT status FROM runs WHERE config_hash='hash-mine'", txt, sizeof txt);
    check("kill9_live_not_marked", my > 0 && strcmp(txt, "running") == 0, "status=%s", txt);
    int again = store_mark_stale(s);
    check("kill9_mark_stale_idempotent", again == 0, "marked=%d", again);
    RunInfo ri = run_info("hash-kill");
    int64_t nid = store_begin_run(s, &ri);
    // Started again from step 1: the killed sitting stays as interrupted (its time counts), its evals go.
    int64_t rows = q_int(db, "SELECT count(*) FROM runs WHERE config_hash='hash-kill'");
    int64_t oldev = q_intf(db, "SELECT count(*) FROM evals WHERE run_id=%lld", (long long)old);
    char ost[64];
    q_text(db, "SELECT status FROM runs WHERE config_hash='hash-kill' ORDER BY id DESC LIMIT 1", txt, sizeof txt);
    q_text(db, "SELECT status FROM runs WHERE config_hash='hash-kill' ORDER BY id LIMIT 1", ost, sizeof ost);
    check("kill9_restarted_sitting_kept", nid > old && rows == 2 && oldev == 0 && !strcmp(txt, "running") &&
          !strcmp(ost, "interrupted"), "new=%lld old=%lld rows=%lld old_evals=%lld status new=%s old=%s",
          (long long)nid, (long long)old, (long long)rows, (long long)oldev, txt, ost);
    store_close(s);
}

// --- refused files, locks ---------------------------------------------------------------------------

static int starts_with(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

static int write_file(const char *path, const unsigned char *b, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(b, 1, n, f);
    return fclose(f) == 0 && w == n ? 0 : -1;
}

static void raw_exec(const char *path, const char *sql) {
    sqlite3 *db;
    if (sqlite3_open(path, &db) != SQLITE_OK || sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK) {
        printf("FAIL raw_exec %s: %s\n", sql, sqlite3_errmsg(db));
        exit(1);
    }
    sqlite3_close(db);
}

static void test_errors(void) {
    char err[512];
    Store *s;

    s = store_open("/nonexistent-rb-dir/sub/results.db", err, sizeof err);
    check("error_missing_dir", !s && starts_with(err, "cannot open results database /nonexistent-rb-dir/sub/results.db: "),
          "%s", err);
    if (s) store_close(s);

    const char *plain = tpath("plainfile");
    write_file(plain, (const unsigned char *)"x", 1);
    char p2[600];
    snprintf(p2, sizeof p2, "%s/results.db", plain);
    s = store_open(p2, err, sizeof err);
    check("error_not_a_directory", !s && starts_with(err, "cannot open results database "), "%s", err);
    if (s) store_close(s);

    if (geteuid() != 0) {
        const char *ro = tpath("readonly_dir");
        mkdir(ro, 0555);
        snprintf(p2, sizeof p2, "%s/results.db", ro);
        s = store_open(p2, err, sizeof err);
        check("error_unwritable_dir", !s && starts_with(err, "cannot open results database "), "%s", err);
        if (s) store_close(s);
        chmod(ro, 0755);
    } else {
        printf("SKIP error_unwritable_dir running as root (permissions do not apply); ENOTDIR case above covers it\n");
    }

    // Garbage bytes: refused, and the file is left exactly as it was.
    unsigned char junk[8192], back[8192];
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < sizeof junk; i++) { x ^= x << 13; x ^= x >> 7; x ^= x << 17; junk[i] = (unsigned char)x; }
    const char *gp = tpath("garbage.db");
    write_file(gp, junk, sizeof junk);
    s = store_open(gp, err, sizeof err);
    check("error_garbage_file", !s && strstr(err, "is not a recallbench database"), "%s", err);
    if (s) store_close(s);
    FILE *f = fopen(gp, "rb");
    size_t nr = f ? fread(back, 1, sizeof back, f) : 0;
    if (f) fclose(f);
    char wal[600];
    snprintf(wal, sizeof wal, "%s-wal", gp);
    check("error_garbage_untouched", nr == sizeof junk && !memcmp(junk, back, nr) && access(wal, F_OK) != 0,
          "read %zu bytes, equal=%d, wal_exists=%d", nr, nr == sizeof junk && !memcmp(junk, back, nr),
          access(wal, F_OK) == 0);

    // A plain SQLite database of some other program: refused, not converted.
    const char *fp = tpath("foreign.db");
    raw_exec(fp, "CREATE TABLE notes(x TEXT); INSERT INTO notes VALUES('keep me');");
    s = store_open(fp, err, sizeof err);
    check("error_foreign_sqlite", !s && strstr(err, "is not a recallbench database"), "%s", err);
    if (s) store_close(s);
    sqlite3 *db;
    sqlite3_open(fp, &db);
    char jm[64];
    q_text(db, "PRAGMA journal_mode", jm, sizeof jm);
    int64_t uv = q_int(db, "PRAGMA user_version"), nt = q_int(db, "SELECT count(*) FROM sqlite_master");
    check("error_foreign_untouched", !strcmp(jm, "delete") && uv == 0 && nt == 1, "journal=%s user_version=%lld objects=%lld",
          jm, (long long)uv, (long long)nt);
    sqlite3_close(db);

    // Another program's application_id, even without tables: refused.
    const char *ap = tpath("appid.db");
    raw_exec(ap, "PRAGMA application_id=12345");
    s = store_open(ap, err, sizeof err);
    check("error_foreign_application_id", !s && strstr(err, "is not a recallbench database"), "%s", err);
    // Other programs' SQLite files without tables are not ours either: only a user_version, only a view,
    // and our mark with a negative (corrupt) schema version (MIGRATIONS must never be indexed with it).
    const char *odd[3][2] = {{"uv_only.db", "PRAGMA user_version=7"}, {"view_only.db", "CREATE VIEW v AS SELECT 1 AS x"},
                             {"neg_version.db", "PRAGMA application_id=1380082536; PRAGMA user_version=-1"}};
    for (int k = 0; k < 3; k++) {
        sqlite3 *o;
        sqlite3_open(tpath(odd[k][0]), &o);
        sqlite3_exec(o, odd[k][1], NULL, NULL, NULL);
        sqlite3_close(o);
        struct stat b0, b1;
        stat(tpath(odd[k][0]), &b0);
        Store *os = store_open(tpath(odd[k][0]), err, sizeof err);
        stat(tpath(odd[k][0]), &b1);
        char nm[64];
        snprintf(nm, sizeof nm, "error_foreign_%s", odd[k][0]);
        check(nm, !os && (strstr(err, "not a recallbench database") || strstr(err, "damaged")) && b0.st_size == b1.st_size &&
              b0.st_mtime == b1.st_mtime && access(tpath("neg_version.db-wal"), F_OK) != 0, "%s", os ? "opened" : err);
        store_close(os);
    }
    // Read-only opening: reads work, writes fail, and the file needs no write access.
    {
        Store *w = open_or_die(tpath("ro.db"));
        RunInfo rr = run_info("hash-ro");
        int64_t id = store_begin_run(w, &rr);
        store_finish_run(w, id, "ok", 0.5, 1, 1, NULL);
        store_close(w);
        Store *ro = store_open_readonly(tpath("ro.db"), err, sizeof err);
        int64_t f = ro ? store_find_finished(ro, "hash-ro") : -2;
        rr.force = 1;
        int64_t b = ro ? store_begin_run(ro, &rr) : -2;
        check("readonly_open_reads", ro && f == id, "%s found=%lld", ro ? "" : err, (long long)f);
        check("readonly_open_refuses_writes", ro && b == -1, "begin=%lld", (long long)b);
        store_close(ro);
        Store *e = store_open_readonly(tpath("missing-ro.db"), err, sizeof err);
        check("readonly_open_missing", !e && access(tpath("missing-ro.db"), F_OK) != 0, "%s", e ? "opened" : err);
        store_close(e);
        Store *z = store_open("", err, sizeof err);
        check("error_empty_path", !z && strstr(err, "empty"), "%s", z ? "opened" : err);
        store_close(z);
    }
    if (s) store_close(s);

    // An empty existing file is initialised.
    const char *ep = tpath("empty.db");
    write_file(ep, (const unsigned char *)"", 0);
    s = store_open(ep, err, sizeof err);
    int64_t ev = s ? q_int(store_db(s), "PRAGMA user_version") : -1;
    check("empty_file_initialised", s && ev == 1, "user_version=%lld %s", (long long)ev, s ? "" : err);
    if (s) store_close(s);

    // A newer schema version: refused with a clear message.
    const char *np = tpath("newer.db");
    s = open_or_die(np);
    store_close(s);
    raw_exec(np, "PRAGMA user_version=99");
    s = store_open(np, err, sizeof err);
    check("error_newer_version", !s && strstr(err, "newer recallbench") && strstr(err, "99"), "%s", err);
    if (s) store_close(s);

    // A recallbench-marked file whose tables were dropped: refused.
    const char *mp = tpath("mangled.db");
    s = open_or_die(mp);
    store_close(s);
    raw_exec(mp, "DROP TABLE benches");
    s = store_open(mp, err, sizeof err);
    check("error_missing_table", !s && strstr(err, "is not a recallbench database") && strstr(err, "benches"), "%s", err);
    if (s) store_close(s);

    setenv("RB_BUSY_TIMEOUT_MS", "soon", 1);
    s = store_open(tpath("roundtrip.db"), err, sizeof err);
    check("error_bad_busy_env", !s && strstr(err, "RB_BUSY_TIMEOUT_MS"), "%s", err);
    if (s) store_close(s);
    unsetenv("RB_BUSY_TIMEOUT_MS");
}

static void test_locked(void) {
    const char *path = tpath("locked.db");
    Store *s = open_or_die(path);
    store_close(s);
    int ready[2], release[2];
    if (pipe(ready) || pipe(release)) { perror("pipe"); exit(1); }
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        close(ready[0]);
        close(release[1]);
        sqlite3 *db;
        if (sqlite3_open(path, &db) != SQLITE_OK) _exit(1);
        if (sqlite3_exec(db, "BEGIN EXCLUSIVE; INSERT INTO benches(backend) VALUES('holder')", NULL, NULL, NULL)
            != SQLITE_OK) _exit(2);
        if (write(ready[1], "r", 1) != 1) _exit(3);
        char b;
        if (read(release[0], &b, 1) < 0) _exit(4);   // holds the write lock until the parent closes the pipe
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        sqlite3_close(db);
        _exit(0);
    }
    close(ready[1]);
    close(release[0]);
    char b;
    ssize_t got = read(ready[0], &b, 1);
    check("locked_holder_ready", got == 1, "got=%zd", got);
    setenv("RB_BUSY_TIMEOUT_MS", "300", 1);
    char err[512];
    s = store_open(path, err, sizeof err);   // reading is not blocked in WAL mode
    check("locked_open_for_reading", s != NULL, "%s", s ? "opened" : err);
    if (s) {
        int64_t f = store_find_finished(s, "hash-x");
        check("locked_read_works", f == 0, "%lld", (long long)f);
        RunInfo ri = run_info("hash-x");
        double t0 = now_seconds();
        int64_t id = store_begin_run(s, &ri);
        double dt = now_seconds() - t0;
        check("locked_begin_fails_after_timeout", id == -1 && dt >= 0.29 && dt < 5.0 && strstr(store_errmsg(s), "is locked"),
              "id=%lld after %.3f s: %s", (long long)id, dt, store_errmsg(s));
        int rc = store_log_bench(s, "{}", "cpu", 1, 1, 0, NULL, NULL);
        check("locked_bench_fails", rc == -1 && strstr(store_errmsg(s), "is locked"), "rc=%d %s", rc, store_errmsg(s));
        close(release[1]);
        int st;
        waitpid(pid, &st, 0);
        check("locked_holder_exit", WIFEXITED(st) && WEXITSTATUS(st) == 0, "status=0x%x", st);
        id = store_begin_run(s, &ri);
        check("locked_begin_after_release", id > 0, "id=%lld %s", (long long)id, store_errmsg(s));
        store_close(s);
    } else {
        close(release[1]);
        waitpid(pid, NULL, 0);
    }
    close(ready[0]);
    unsetenv("RB_BUSY_TIMEOUT_MS");
}

// --- merge -----------------------------------------------------------------------------------------

static int64_t add_run(Store *s, const char *hash, const char *status, double acc, int nevals) {
    RunInfo ri = run_info(hash);
    ri.force = 1;   // merge tests build databases with forced duplicates of one hash
    int64_t id = store_begin_run(s, &ri);
    if (id <= 0) { printf("FAIL add_run %s: %s\n", hash, store_errmsg(s)); exit(1); }
    for (int e = 0; e < nevals; e++) store_log_eval(s, id, e, "test", 0, 0, acc, 1.0, -1);
    if (strcmp(status, "running")) store_finish_run(s, id, status, acc, nevals, 10, "{}");
    return id;
}

static void test_merge(void) {
    const char *pa = tpath("merge_a.db"), *pb = tpath("merge_b.db");
    Store *a = open_or_die(pa), *b = open_or_die(pb);
    add_run(a, "h1", "ok", 0.1, 2);
    add_run(a, "h2", "ok", 0.5, 2);
    add_run(a, "h3", "failed", 0.0, 1);
    add_run(a, "h4", "running", 0.0, 1);
    add_run(a, "h10", "interrupted", 0.0, 1);   // an earlier sitting of h10, finished in b: kept
    add_run(b, "h2", "ok", 0.9, 3);
    add_run(b, "h3", "ok", 0.7, 4);
    add_run(b, "h5", "ok", 0.1, 1);
    add_run(b, "h5", "ok", 0.2, 2);   // forced rerun: the newer one must come over
    add_run(b, "h6", "failed", 0.0, 5);
    add_run(b, "h7", "running", 0.0, 5);
    add_run(b, "h8", "interrupted", 0.0, 3);    // a sitting of an unfinished run: copied once, with its evals
    add_run(b, "h10", "ok", 0.6, 2);
    store_log_bench(b, "{\"d\":64}", "cpu", 2, 5000, 0.4, NULL, NULL);
    store_close(b);
    sqlite3 *db = store_db(a);
    int64_t evals_before = q_int(db, "SELECT count(*) FROM evals");

    char err[512];
    int sit = -1;
    int n = store_merge_from(a, pb, &sit, err, sizeof err);
    check("merge_count", n == 3 && sit == 1, "copied=%d (expected 3: h3, h5, h10) sittings=%d (expected 1: h8) %s", n,
          sit, n < 0 ? err : "");
    int64_t dup = q_int(db, "SELECT count(*) FROM (SELECT config_hash FROM runs WHERE status='ok'"
                            " GROUP BY config_hash HAVING count(*) > 1)");
    int64_t okh = q_int(db, "SELECT count(DISTINCT config_hash) FROM runs WHERE status='ok'");
    check("merge_no_duplicate_ok_hashes", dup == 0 && okh == 5, "duplicated=%lld ok_hashes=%lld", (long long)dup,
          (long long)okh);
    double h2 = q_real(db, "SELECT accuracy FROM runs WHERE config_hash='h2'");
    check("merge_keeps_existing_ok", h2 == 0.5, "h2 accuracy=%g", h2);
    int64_t h3ev = q_int(db, "SELECT count(*) FROM evals e JOIN runs r ON r.id=e.run_id WHERE r.config_hash='h3'");
    int64_t h3rows = q_int(db, "SELECT count(*) FROM runs WHERE config_hash='h3'");
    check("merge_h3_with_evals", h3ev == 4 && h3rows == 1, "h3 evals=%lld rows=%lld (failed row replaced)",
          (long long)h3ev, (long long)h3rows);
    int64_t h5 = store_find_finished(a, "h5");
    double h5acc = q_intf(db, "SELECT count(*) FROM runs WHERE id=%lld AND accuracy=0.2", (long long)h5);
    int64_t h5ev = q_intf(db, "SELECT count(*) FROM evals WHERE run_id=%lld", (long long)h5);
    check("merge_newest_duplicate", h5 > 0 && h5acc == 1 && h5ev == 2, "h5 id=%lld newest=%g evals=%lld",
          (long long)h5, h5acc, (long long)h5ev);
    int64_t h67 = q_int(db, "SELECT count(*) FROM runs WHERE config_hash IN ('h6','h7')");
    int64_t h4 = q_int(db, "SELECT count(*) FROM runs WHERE config_hash='h4' AND status='running'");
    check("merge_skips_unfinished", h67 == 0 && h4 == 1, "h6/h7 rows=%lld h4 running=%lld", (long long)h67, (long long)h4);
    int64_t h10 = q_int(db, "SELECT count(*) FROM runs WHERE config_hash='h10' AND status='interrupted'");
    int64_t h10ok = q_int(db, "SELECT count(*) FROM runs WHERE config_hash='h10' AND status='ok'");
    int64_t h8 = q_int(db, "SELECT count(*) FROM runs r JOIN evals e ON e.run_id=r.id WHERE r.config_hash='h8'"
                           " AND r.status='interrupted'");
    check("merge_keeps_and_copies_sittings", h10 == 1 && h10ok == 1 && h8 == 3,
          "h10 interrupted=%lld ok=%lld; h8 interrupted with evals=%lld (expected 1, 1, 3)", (long long)h10,
          (long long)h10ok, (long long)h8);
    int64_t evals_after = q_int(db, "SELECT count(*) FROM evals");
    check("merge_eval_count", evals_after == evals_before - 1 + 4 + 2 + 2 + 3, "before=%lld after=%lld expected=%lld",
          (long long)evals_before, (long long)evals_after, (long long)(evals_before - 1 + 4 + 2 + 2 + 3));
    int64_t benches = q_int(db, "SELECT count(*) FROM benches");
    check("merge_benches", benches == 1, "benches=%lld", (long long)benches);
    int64_t orphans = q_int(db, "SELECT count(*) FROM evals WHERE run_id NOT IN (SELECT id FROM runs)");
    char ic[256];
    check("merge_integrity", integrity_ok(db, ic, sizeof ic) && orphans == 0, "%s orphans=%lld", ic, (long long)orphans);

    int n2 = store_merge_from(a, pb, &sit, err, sizeof err);
    benches = q_int(db, "SELECT count(*) FROM benches");
    int64_t runs2 = q_int(db, "SELECT count(*) FROM runs");
    check("merge_again_idempotent", n2 == 0 && sit == 0 && benches == 1 && runs2 == 8,
          "copied=%d sittings=%d benches=%lld runs=%lld", n2, sit, (long long)benches, (long long)runs2);
    sqlite3 *dbb;
    sqlite3_open(pb, &dbb);
    int64_t brows = q_int(dbb, "SELECT count(*) FROM runs");
    sqlite3_close(dbb);
    check("merge_source_unchanged", brows == 8, "src runs=%lld", (long long)brows);

    const char *missing = tpath("missing.db");
    int n3 = store_merge_from(a, missing, NULL, err, sizeof err);
    check("merge_missing_file", n3 == -1 && starts_with(err, "cannot open results database") && access(missing, F_OK) != 0,
          "rc=%d %s", n3, err);
    int n4 = store_merge_from(a, tpath("garbage.db"), NULL, err, sizeof err);
    check("merge_garbage_file", n4 == -1 && strstr(err, "is not a recallbench database"), "rc=%d %s", n4, err);
    int n5 = store_merge_from(a, tpath("foreign.db"), NULL, err, sizeof err);
    check("merge_foreign_file", n5 == -1 && strstr(err, "is not a recallbench database"), "rc=%d %s", n5, err);
    // The store still works after refused merges (src detached).
    int64_t id = add_run(a, "h9", "ok", 0.3, 1);
    check("merge_store_usable_after", id > 0 && store_find_finished(a, "h9") == id, "id=%lld", (long long)id);
    store_close(a);
}

int main(void) {
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/rb_test_store_XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmpdir)) { perror("mkdtemp"); return 1; }
    test_round_trip();
    test_replace();
    test_concurrency();
    test_kill9();
    test_errors();
    test_locked();
    test_merge();
    if (failures == 0) {
        char cmd[512];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    } else {
        printf("files kept in %s\n", tmpdir);
    }
    printf("%s: %d failure%s\n", failures ? "FAIL" : "PASS", failures, failures == 1 ? "" : "s");
    return failures ? 1 : 0;
}
