// store.c — the SQLite results store (architecture.md, "Results store"): schema migrations, runs, evals, benches, merge.
// Depends on sqlite3, util.h (host_name, git_revision, utc_timestamp, now_seconds) and POSIX kill/getpid.
#include "store.h"
#include "util.h"
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

// Marks a file as ours (PRAGMA application_id, bytes 68..71 of the header): "RBch".
#define STORE_APP_ID 0x52426368
#define STORE_DEFAULT_BUSY_MS 30000

// Programming errors (bad SQL, bad bind index, misuse) are not user errors: fail fast with file:line.
#define CHECK_SQLITE(db, call) do { int rc_ = (call); if (rc_ != SQLITE_OK) \
    die_runtime("sqlite error %d at %s:%d: %s", rc_, __FILE__, __LINE__, sqlite3_errmsg(db)); } while (0)

// Migrations: MIGRATIONS[v] takes a database from user_version v to v+1. Append, never edit.
//
// runs.id is AUTOINCREMENT: ids of replaced (deleted) runs are never handed out again, so a process
// that still holds the id of a run replaced under it fails ("run N does not exist") instead of
// writing into somebody else's run.
//
// runs.seed holds the uint64 seed's 64 bits reinterpreted as a signed 64-bit integer (two's
// complement): seeds below 2^63 read as themselves; larger ones read negative (add 2^64 in SQL:
// `CASE WHEN seed < 0 THEN seed + 18446744073709551616.0 ELSE seed END`, approximate as a REAL).
// store_list_runs() converts back losslessly. NaN reals are stored as NULL (sqlite's rule).
static const char *const MIGRATIONS[] = {
    // 1: initial schema
    "CREATE TABLE runs(id INTEGER PRIMARY KEY AUTOINCREMENT, config_hash TEXT NOT NULL, config_json TEXT NOT NULL,"
    " task TEXT, model TEXT, mixer TEXT, variant TEXT,"
    " d_model INT, n_layers INT, heads INT, window INT, freqs INT, slots INT, feature_dim INT, state_dim INT,"
    " lr REAL, seed INT, epochs INT, backend TEXT, state_floats REAL, state_formula TEXT,"
    " git_rev TEXT, host TEXT, pid INT, started TEXT, finished TEXT, status TEXT NOT NULL,"
    " accuracy REAL, epochs_done INT, tokens_per_s REAL, result_json TEXT);"
    "CREATE INDEX runs_config_hash ON runs(config_hash);"
    "CREATE INDEX runs_task_mixer ON runs(task, mixer);"
    "CREATE INDEX runs_status ON runs(status);"
    "CREATE TABLE evals(run_id INT NOT NULL REFERENCES runs(id) ON DELETE CASCADE, epoch INT, split TEXT,"
    " L INT, K INT, accuracy REAL, loss REAL, tvd REAL);"
    "CREATE INDEX evals_run_id ON evals(run_id);"
    "CREATE TABLE benches(id INTEGER PRIMARY KEY, config_json TEXT, backend TEXT, threads INT,"
    " tokens_per_s REAL, gemm_frac REAL, git_rev TEXT, host TEXT, created TEXT);",
};
enum { SCHEMA_VERSION = (int)(sizeof MIGRATIONS / sizeof MIGRATIONS[0]) };
static const char *const REQUIRED_TABLES[] = {"runs", "evals", "benches"};

// Every runs column but id, in schema order (merge copies rows column for column).
#define RUN_COLS "config_hash, config_json, task, model, mixer, variant, d_model, n_layers, heads, window," \
    " freqs, slots, feature_dim, state_dim, lr, seed, epochs, backend, state_floats, state_formula, git_rev," \
    " host, pid, started, finished, status, accuracy, epochs_done, tokens_per_s, result_json"

struct Store {
    sqlite3 *db;
    char *path;
    int busy_ms;
    char err[1024];
    sqlite3_stmt *del_unfinished, *ins_run, *ins_eval, *upd_finish, *find_ok, *upd_stale, *ins_bench, *find_owner;
    int readonly;
};

static void fmt_err(char *buf, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fmt_err(char *buf, size_t n, const char *fmt, ...) {
    if (!buf || !n) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, n, fmt, ap);
    va_end(ap);
}
#define SET_ERR(s, ...) fmt_err((s)->err, sizeof (s)->err, __VA_ARGS__)

static int primary(int rc) { return rc & 0xff; }
static int is_busy(int rc) { return primary(rc) == SQLITE_BUSY || primary(rc) == SQLITE_LOCKED; }

static void sleep_ms(double ms) {
    struct timespec ts = {(time_t)(ms / 1000), (long)(fmod(ms, 1000.0) * 1e6)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}
// Retry back-off with per-process jitter so that colliding writers spread out: 1..~25 ms.
static double backoff_ms(int attempt) {
    static unsigned x;
    if (!x) x = (unsigned)getpid() * 2654435761u + 1;
    x = x * 1103515245u + 12345u;
    double base = attempt < 5 ? (double)(1 << attempt) : 20.0;
    return base + (x >> 16) % 5;
}

// RB_BUSY_TIMEOUT_MS overrides the 30 s busy timeout (tests use a short one). -1 = invalid.
static int busy_timeout_ms(void) {
    const char *e = getenv("RB_BUSY_TIMEOUT_MS");
    if (!e || !*e) return STORE_DEFAULT_BUSY_MS;
    char *end;
    errno = 0;
    long v = strtol(e, &end, 10);
    if (errno || *end || v < 0 || v > 24L * 3600 * 1000) return -1;
    return (int)v;
}

// True when pid names no process (kill(pid, 0) fails with ESRCH). A pid <= 0 names no run process.
// A process is dead if it is gone or a zombie: a killed worker whose parent never reaps it (PID 1 of
// a container without an init) still answers kill(pid, 0).
static int pid_dead(int64_t pid) {
    if (pid <= 0 || pid > INT32_MAX) return 1;
    if (kill((pid_t)pid, 0) != 0 && errno == ESRCH) return 1;
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%lld/stat", (long long)pid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;  // no /proc: trust kill()
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *rp = strrchr(buf, ')');  // "pid (comm) S ...": comm may contain spaces or ')'
    return rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X');
}
// SQL function rb_pid_dead(pid): lets one UPDATE/DELETE decide staleness inside its transaction.
static void sql_pid_dead(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    if (sqlite3_value_type(argv[0]) == SQLITE_NULL) { sqlite3_result_int(ctx, 1); return; }
    sqlite3_result_int(ctx, pid_dead(sqlite3_value_int64(argv[0])));
}

static int64_t seed_to_sql(uint64_t seed) { int64_t v; memcpy(&v, &seed, sizeof v); return v; }
static uint64_t seed_from_sql(int64_t v) { uint64_t u; memcpy(&u, &v, sizeof u); return u; }

// --- transactions: BEGIN IMMEDIATE retried on SQLITE_BUSY until the busy timeout has passed ---------

static int lock_err(Store *s, const char *what, double waited_ms) {
    SET_ERR(s, "database %s is locked (%s still busy after %.0f ms: another process holds a write transaction;"
            " RB_BUSY_TIMEOUT_MS sets the wait)", s->path, what, waited_ms);
    return -1;
}

static void note_disk_full(char *err, size_t errn, const char *path);

static int exec_retry(Store *s, const char *sql, const char *what) {
    double t0 = now_seconds();
    for (int attempt = 0;; attempt++) {
        int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
        if (rc == SQLITE_OK) return 0;
        if (!is_busy(rc)) {
            SET_ERR(s, "cannot write results database %s: %s", s->path, sqlite3_errmsg(s->db));
            note_disk_full(s->err, sizeof s->err, s->path);
            return -1;
        }
        double waited = (now_seconds() - t0) * 1e3;
        if (waited >= s->busy_ms) return lock_err(s, what, waited);
        sleep_ms(backoff_ms(attempt));
    }
}
// Every write starts here; store_errmsg() then describes the latest call's failure only.
static int tx_begin(Store *s) { s->err[0] = 0; return exec_retry(s, "BEGIN IMMEDIATE", "BEGIN IMMEDIATE"); }
static void tx_rollback(Store *s) {
    if (!sqlite3_get_autocommit(s->db)) sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}
static int tx_commit(Store *s) {
    if (exec_retry(s, "COMMIT", "COMMIT") == 0) return 0;
    tx_rollback(s);
    return -1;
}

// Steps a statement that returns no rows (or ignores them), resets it; -1 with the message on error.
static int step_done(Store *s, sqlite3_stmt *st) {
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {}
    if (rc != SQLITE_DONE) {
        if (is_busy(rc)) SET_ERR(s, "database %s is locked (%s)", s->path, sqlite3_errmsg(s->db));
        else SET_ERR(s, "results database %s: %s", s->path, sqlite3_errmsg(s->db));
        note_disk_full(s->err, sizeof s->err, s->path);
        sqlite3_reset(st);
        return -1;
    }
    sqlite3_reset(st);
    return 0;
}

static sqlite3_stmt *prepare(sqlite3 *db, const char *sql, unsigned flags) {
    sqlite3_stmt *st = NULL;
    CHECK_SQLITE(db, sqlite3_prepare_v3(db, sql, -1, flags, &st, NULL));
    return st;
}

// --- open: classify the file, switch to WAL, migrate ------------------------------------------------

typedef struct { int app_id, version, ntables, status; char msg[256]; } FileInfo;

// Reads application_id, user_version and the table count of schema `schema` ("main" or "src").
// status: SQLITE_OK, or the failing call's result code with msg set.
static FileInfo file_info(sqlite3 *db, const char *schema) {
    FileInfo fi = {0};
    char sql[3][160];
    snprintf(sql[0], sizeof sql[0], "PRAGMA %s.application_id", schema);
    snprintf(sql[1], sizeof sql[1], "PRAGMA %s.user_version", schema);
    // Every schema object counts (tables, views, indexes, triggers): a file with only a view is not empty.
    snprintf(sql[2], sizeof sql[2], "SELECT count(*) FROM %s.sqlite_master", schema);
    int *out[3] = {&fi.app_id, &fi.version, &fi.ntables};
    // One read transaction for the three reads: another process may initialise the file in between.
    int own_tx = sqlite3_get_autocommit(db) && sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK;
    for (int i = 0; i < 3; i++) {
        sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(db, sql[i], -1, &st, NULL);
        if (rc == SQLITE_OK) {
            rc = sqlite3_step(st);
            if (rc == SQLITE_ROW) { *out[i] = sqlite3_column_int(st, 0); rc = SQLITE_OK; }
        }
        if (rc != SQLITE_OK) {
            fi.status = rc;
            snprintf(fi.msg, sizeof fi.msg, "%s", sqlite3_errmsg(db));
        }
        sqlite3_finalize(st);
        if (rc != SQLITE_OK) break;
    }
    if (own_tx) sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    return fi;
}

static int has_table(sqlite3 *db, const char *schema, const char *table) {
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT 1 FROM %s.sqlite_master WHERE type='table' AND name=?1", schema);
    sqlite3_stmt *st = prepare(db, sql, 0);
    CHECK_SQLITE(db, sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC));
    int found = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    return found;
}

// Judges a FileInfo. Returns 1 = current recallbench schema, 0 = needs initialisation or migration,
// -1 = refuse (message in err). A file with foreign tables and no recallbench mark is refused, never
// altered; an empty database (no tables, no application_id) is initialised.
static int judge(sqlite3 *db, const char *schema, const char *path, FileInfo fi, char *err, size_t errn) {
    if (fi.status != SQLITE_OK) {
        int p = primary(fi.status);
        if (p == SQLITE_NOTADB)
            fmt_err(err, errn, "%s is not a recallbench database (%s)", path, fi.msg);
        else if (p == SQLITE_BUSY || p == SQLITE_LOCKED)
            fmt_err(err, errn, "database %s is locked (%s)", path, fi.msg);
        else
            fmt_err(err, errn, "cannot open results database %s: %s", path, fi.msg);
        return -1;
    }
    if (fi.app_id != STORE_APP_ID && fi.app_id != 0) {
        fmt_err(err, errn, "%s is not a recallbench database (application_id 0x%08x belongs to another program)",
                path, (unsigned)fi.app_id);
        return -1;
    }
    if (fi.app_id == 0) {
        // Only a truly empty database is ours to initialise: no schema objects and no user_version
        // (another program may mark a file by user_version alone).
        if (fi.ntables > 0) {
            fmt_err(err, errn, "%s is not a recallbench database (it has %d schema object%s but no recallbench schema)",
                    path, fi.ntables, fi.ntables == 1 ? "" : "s");
            return -1;
        }
        if (fi.version != 0) {
            fmt_err(err, errn, "%s is not a recallbench database (user_version %d set by another program)", path,
                    fi.version);
            return -1;
        }
        return 0;
    }
    if (fi.version < 1) {  // our mark with no schema version: damaged; never index MIGRATIONS with it
        fmt_err(err, errn, "%s is a damaged recallbench database (schema version %d; expected 1..%d)", path,
                fi.version, SCHEMA_VERSION);
        return -1;
    }
    if (fi.version > SCHEMA_VERSION) {
        fmt_err(err, errn, "%s was written by a newer recallbench (schema version %d; this build knows up to %d):"
                " use a newer recallbench", path, fi.version, SCHEMA_VERSION);
        return -1;
    }
    if (fi.version < SCHEMA_VERSION) return 0;
    for (size_t i = 0; i < sizeof REQUIRED_TABLES / sizeof *REQUIRED_TABLES; i++)
        if (!has_table(db, schema, REQUIRED_TABLES[i])) {
            fmt_err(err, errn, "%s is not a recallbench database (table %s is missing)", path, REQUIRED_TABLES[i]);
            return -1;
        }
    return 1;
}

// PRAGMA journal_mode=WAL needs a moment of exclusive access: retry until it reports "wal".
static int set_wal(Store *s) {
    double t0 = now_seconds();
    for (int attempt = 0;; attempt++) {
        sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode=WAL", -1, &st, NULL);
        int wal = 0;
        if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
            wal = strcmp((const char *)sqlite3_column_text(st, 0), "wal") == 0;
            rc = SQLITE_OK;
        }
        if (rc != SQLITE_OK && !is_busy(rc))
            SET_ERR(s, "cannot open results database %s: %s", s->path, sqlite3_errmsg(s->db));
        sqlite3_finalize(st);
        if (wal) return 0;
        if (rc != SQLITE_OK && !is_busy(rc)) return -1;
        double waited = (now_seconds() - t0) * 1e3;
        if (waited >= s->busy_ms) return lock_err(s, "switching to WAL", waited);
        sleep_ms(backoff_ms(attempt));
    }
}

static int journal_is_wal(sqlite3 *db) {
    sqlite3_stmt *st = NULL;
    int wal = 0;
    if (sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        wal = strcmp((const char *)sqlite3_column_text(st, 0), "wal") == 0;
    sqlite3_finalize(st);
    return wal;
}

// Applies the pending migrations in one write transaction. The file is judged again under the write
// lock: another process may have initialised it (or a foreign program created tables) meanwhile.
static int migrate(Store *s) {
    if (tx_begin(s)) return -1;
    FileInfo fi = file_info(s->db, "main");
    int j = judge(s->db, "main", s->path, fi, s->err, sizeof s->err);
    if (j < 0) { tx_rollback(s); return -1; }
    if (j == 1) { tx_rollback(s); return 0; }
    int from = fi.app_id == 0 ? 0 : fi.version;
    for (int v = from; v < SCHEMA_VERSION; v++) {
        char *msg = NULL;
        if (sqlite3_exec(s->db, MIGRATIONS[v], NULL, NULL, &msg) != SQLITE_OK) {
            SET_ERR(s, "cannot initialise results database %s (migration to version %d): %s", s->path, v + 1,
                    msg ? msg : sqlite3_errmsg(s->db));
            sqlite3_free(msg);
            tx_rollback(s);
            return -1;
        }
    }
    char sql[128];
    snprintf(sql, sizeof sql, "PRAGMA user_version=%d; PRAGMA application_id=%d", SCHEMA_VERSION, STORE_APP_ID);
    if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
        SET_ERR(s, "cannot initialise results database %s: %s", s->path, sqlite3_errmsg(s->db));
        tx_rollback(s);
        return -1;
    }
    return tx_commit(s);
}

static void prepare_statements(Store *s) {
    const unsigned P = SQLITE_PREPARE_PERSISTENT;
    // Replaceable when a run starts again from step 1: the failed and diverged rows of the hash. Interrupted
    // sittings stay, and so does a 'running' row (store_begin_run has made ours and dead ones interrupted;
    // the others may be alive: this host and pid alive but not us, or another host).
    s->del_unfinished = prepare(s->db,
        "DELETE FROM runs WHERE config_hash=?1 AND status NOT IN ('ok', 'interrupted', 'running')", P);
    s->ins_run = prepare(s->db,
        "INSERT INTO runs(config_hash, config_json, task, model, mixer, variant, d_model, n_layers, heads,"
        " window, freqs, slots, feature_dim, state_dim, lr, seed, epochs, backend, state_floats, state_formula,"
        " git_rev, host, pid, started, status, result_json)"
        " VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,?20,?21,?22,?23,?24,'running',"
        " CASE WHEN ?25 IS NULL THEN NULL ELSE json_object('device', ?25) END)", P);
    s->ins_eval = prepare(s->db,
        "INSERT INTO evals(run_id, epoch, split, L, K, accuracy, loss, tvd) VALUES(?1,?2,?3,?4,?5,?6,?7,?8)", P);
    s->upd_finish = prepare(s->db,
        "UPDATE runs SET status=?2, accuracy=?3, epochs_done=?4, tokens_per_s=?5, result_json=?6, finished=?7"
        " WHERE id=?1", P);
    // Newest ok row: latest finish, ties (same second) to the later row.
    s->find_ok = prepare(s->db,
        "SELECT id FROM runs WHERE config_hash=?1 AND status='ok' ORDER BY finished DESC, id DESC LIMIT 1", P);
    s->upd_stale = prepare(s->db,
        "UPDATE runs SET status='interrupted' WHERE status='running' AND host=?1 AND pid IS NOT ?2"
        " AND rb_pid_dead(pid)", P);
    // A live owner of a config: a 'running' row that is not ours and whose process is not dead.
    s->find_owner = prepare(s->db,
        "SELECT id, pid, host FROM runs WHERE config_hash=?1 AND status='running'"
        " AND NOT (host IS ?2 AND (pid=?3 OR rb_pid_dead(pid))) ORDER BY id LIMIT 1", P);
    s->ins_bench = prepare(s->db,
        "INSERT INTO benches(config_json, backend, threads, tokens_per_s, gemm_frac, git_rev, host, created)"
        " VALUES(?1,?2,?3,?4,?5,?6,?7,?8)", P);
}

// "file:" URI of a path with a query ("mode=ro"): SQLite's URI syntax, so that any character in a path
// (?, #, %) survives; used for every open and ATTACH so that read-only access never needs write access.
static void path_uri(char *out, size_t n, const char *path, const char *query) {
    size_t o = (size_t)snprintf(out, n, "file:");
    for (const unsigned char *p = (const unsigned char *)path; *p && o + 4 < n; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || strchr("/._-~", *p))
            out[o++] = (char)*p;
        else o += (size_t)snprintf(out + o, n - o, "%%%02X", *p);
    }
    out[o] = 0;
    if (query && *query) snprintf(out + o, n - o, "?%s", query);
}

static sqlite3 *open_db(const char *path, int flags, const char *query, int *rc) {
    char uri[3 * 4096 + 64];
    path_uri(uri, sizeof uri, path, query);
    sqlite3 *db = NULL;
    *rc = sqlite3_open_v2(uri, &db, flags | SQLITE_OPEN_URI, NULL);
    return db;
}

// Appends "disk full" to an error when the file system holding path has (next to) no space left: SQLite
// reports a full disk as SQLITE_FULL on writes but as a "disk I/O error" when the WAL index cannot grow.
static void note_disk_full(char *err, size_t errn, const char *path) {
    if (!err || !errn || !err[0] || strstr(err, "disk full")) return;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *sl = strrchr(dir, '/');
    if (sl) { if (sl == dir) sl[1] = 0; else *sl = 0; }
    else snprintf(dir, sizeof dir, ".");
    struct statvfs v;
    if (statvfs(dir, &v) == 0 && (double)v.f_bavail * v.f_frsize < 65536) {
        size_t n = strlen(err);
        snprintf(err + n, errn - n, " (disk full: no space left on the file system of %s)", dir);
    }
}

static Store *store_open_mode(const char *path, int readonly, char *err, size_t errn) {
    if (err && errn) err[0] = 0;
    if (!path || !*path) {
        fmt_err(err, errn, "results database path is empty: give a file name");
        return NULL;
    }
    if (strlen(path) >= 4096) {
        fmt_err(err, errn, "results database path is too long (%zu characters; at most 4095)", strlen(path));
        return NULL;
    }
    int busy_ms = busy_timeout_ms();
    if (busy_ms < 0) {
        fmt_err(err, errn, "RB_BUSY_TIMEOUT_MS must be a whole number of milliseconds (got '%s')",
                getenv("RB_BUSY_TIMEOUT_MS"));
        return NULL;
    }
    int rc;
    sqlite3 *db = open_db(path, readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                          readonly ? "mode=ro" : NULL, &rc);
    if (rc != SQLITE_OK) {
        int e = db ? sqlite3_system_errno(db) : 0;
        fmt_err(err, errn, "cannot open results database %s: %s", path,
                e ? strerror(e) : db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        sqlite3_close(db);
        return NULL;
    }
    if (!readonly && sqlite3_db_readonly(db, "main") == 1) {
        fmt_err(err, errn, "cannot open results database %s: file is read-only (reading commands such as frontier,"
                " report and plot can still use it)", path);
        sqlite3_close(db);
        return NULL;
    }
    CHECK_SQLITE(db, sqlite3_busy_timeout(db, busy_ms));
    Store *s = xcalloc(1, sizeof *s);
    s->db = db;
    s->path = xstrdup(path);
    s->busy_ms = busy_ms;
    s->readonly = readonly;

    // Judge before changing anything: a foreign file must be left exactly as it was.
    FileInfo fi = file_info(db, "main");
    if (readonly && primary(fi.status) == SQLITE_CANTOPEN) {
        // A WAL database on read-only media: its -shm file cannot be created. Nobody can write such a
        // file, so reading it as immutable is exact.
        sqlite3_close(db);
        s->db = db = open_db(path, SQLITE_OPEN_READONLY, "mode=ro&immutable=1", &rc);
        if (rc != SQLITE_OK) {
            fmt_err(err, errn, "cannot open results database %s: %s", path, sqlite3_errmsg(db));
            goto fail;
        }
        fi = file_info(db, "main");
    }
    int j = judge(db, "main", path, fi, err, errn);
    if (j < 0) goto fail;
    if (readonly) {
        if (j == 0) {
            if (fi.app_id == 0) fmt_err(err, errn, "%s is not a recallbench database (it is empty)", path);
            else fmt_err(err, errn, "%s has schema version %d (this build: %d): open it once with write access to"
                         " migrate it", path, fi.version, SCHEMA_VERSION);
            goto fail;
        }
        CHECK_SQLITE(db, sqlite3_create_function(db, "rb_pid_dead", 1, SQLITE_UTF8, NULL, sql_pid_dead, NULL, NULL));
        prepare_statements(s);
        return s;
    }
    if (!journal_is_wal(db) && set_wal(s)) goto fail_s;
    if (j == 0 && migrate(s)) goto fail_s;
    // synchronous=NORMAL in WAL: a committed transaction survives a killed process; only an OS
    // crash or power loss may lose the last few commits.
    char *msg = NULL;
    if (sqlite3_exec(db, "PRAGMA foreign_keys=ON; PRAGMA synchronous=NORMAL", NULL, NULL, &msg) != SQLITE_OK) {
        SET_ERR(s, "cannot open results database %s: %s", path, msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        goto fail_s;
    }
    CHECK_SQLITE(db, sqlite3_create_function(db, "rb_pid_dead", 1, SQLITE_UTF8, NULL, sql_pid_dead, NULL, NULL));
    prepare_statements(s);
    return s;
fail_s:
    fmt_err(err, errn, "%s", s->err);
fail:
    store_close(s);
    note_disk_full(err, errn, path);
    return NULL;
}

Store *store_open(const char *path, char *err, size_t errn) { return store_open_mode(path, 0, err, errn); }
Store *store_open_readonly(const char *path, char *err, size_t errn) { return store_open_mode(path, 1, err, errn); }

void store_close(Store *s) {
    if (!s) return;
    sqlite3_stmt *sts[] = {s->del_unfinished, s->ins_run, s->ins_eval, s->upd_finish, s->find_ok, s->upd_stale,
                           s->ins_bench, s->find_owner};
    for (size_t i = 0; i < sizeof sts / sizeof *sts; i++) sqlite3_finalize(sts[i]);
    CHECK_SQLITE(s->db, sqlite3_close(s->db));
    free(s->path);
    free(s);
}

const char *store_errmsg(Store *s) { return s->err; }
struct sqlite3 *store_db(Store *s) { return s->db; }

// --- runs and evals --------------------------------------------------------------------------------

static void bind_text(sqlite3 *db, sqlite3_stmt *st, int i, const char *v) {
    CHECK_SQLITE(db, sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT)); // NULL binds SQL NULL
}

// Looks for who holds config_hash: a live 'running' row (not ours, not of a dead process), or, with
// check_ok, an ok row. *owner = that run's id (0: nobody), message in s->err. Returns 0, -1 on error.
static int owner_of(Store *s, const char *hash, const char *host, int check_ok, int64_t *owner) {
    *owner = 0;
    if (check_ok) {
        sqlite3_stmt *st = s->find_ok;
        bind_text(s->db, st, 1, hash);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) *owner = sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
            SET_ERR(s, "results database %s: %s", s->path, sqlite3_errmsg(s->db));
            return -1;
        }
        if (*owner) {
            SET_ERR(s, "config %s already finished as run %lld in %s", hash, (long long)*owner, s->path);
            return 0;
        }
    }
    sqlite3_stmt *st = s->find_owner;
    bind_text(s->db, st, 1, hash);
    bind_text(s->db, st, 2, host);
    CHECK_SQLITE(s->db, sqlite3_bind_int64(st, 3, getpid()));
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *owner = sqlite3_column_int64(st, 0);
        const unsigned char *h = sqlite3_column_text(st, 2);
        SET_ERR(s, "config %s is being trained by process %lld on %s (run %lld in %s); not started twice"
                " (--force to train it anyway)", hash, (long long)sqlite3_column_int64(st, 1),
                h ? (const char *)h : "?", (long long)*owner, s->path);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        SET_ERR(s, "results database %s: %s", s->path, sqlite3_errmsg(s->db));
        return -1;
    }
    return 0;
}

int store_config_state(Store *s, const char *config_hash, int64_t *run) {
    int64_t id = 0, dummy;
    s->err[0] = 0;
    if (!run) run = &dummy;
    // A read transaction: the two looks see one snapshot.
    int own_tx = sqlite3_get_autocommit(s->db) && sqlite3_exec(s->db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK;
    int rc = owner_of(s, config_hash, host_name(), 1, &id);
    if (own_tx) sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
    *run = id;
    if (rc) return -1;
    if (!id) return STORE_FREE;
    return strstr(s->err, "already finished") ? STORE_FINISHED : STORE_RUNNING;
}

int64_t store_begin_run(Store *s, const RunInfo *r) {
    sqlite3 *db = s->db;
    if (!r->config_hash || !r->config_json) { SET_ERR(s, "store_begin_run: config_hash and config_json are required"); return -1; }
    // The host column must name this machine: store_mark_stale() checks pids on host_name() only.
    const char *host = r->host && *r->host ? r->host : host_name();
    const char *rev = r->git_rev && *r->git_rev ? r->git_rev : git_revision();
    char now[32];
    utc_timestamp(now, sizeof now);
    if (tx_begin(s)) return -1;
    // The claim: under the write lock, a config that has a live owner (or, without force, an ok row)
    // is not started again, so concurrent sweeps over one database train each config once.
    int64_t owner = 0;
    if (!r->force && owner_of(s, r->config_hash, host, 1, &owner)) goto fail;
    if (owner) { tx_rollback(s); return 0; }
    sqlite3_stmt *st;
    // The stopped sittings stay (their device time counts in `report`): a dead 'running' row (killed) or our own
    // abandoned one becomes interrupted. A run resuming from its checkpoint takes their evaluations before its
    // epoch (below); a run started again from step 1 drops them (it evaluates every epoch again) and replaces
    // failed or diverged rows. (Up to 2026-12-02 a restart from step 1 deleted the interrupted rows too: the
    // compute time of databases written by then misses those sittings.)
    st = prepare(db, "UPDATE runs SET status='interrupted', finished=coalesce(finished, ?4) WHERE config_hash=?1"
                     " AND status='running' AND host IS ?2 AND (pid=?3 OR rb_pid_dead(pid))", 0);
    bind_text(db, st, 1, r->config_hash);
    bind_text(db, st, 2, host);
    CHECK_SQLITE(db, sqlite3_bind_int64(st, 3, getpid()));
    bind_text(db, st, 4, now);
    int bad = step_done(s, st);
    sqlite3_finalize(st);
    if (bad) goto fail;
    if (r->resume_epoch <= 0) {
        st = prepare(db, "DELETE FROM evals WHERE run_id IN (SELECT id FROM runs WHERE config_hash=?1"
                         " AND status='interrupted')", 0);
        bind_text(db, st, 1, r->config_hash);
        bad = step_done(s, st);
        sqlite3_finalize(st);
        if (bad) goto fail;
        st = s->del_unfinished;
        bind_text(db, st, 1, r->config_hash);
        if (step_done(s, st)) goto fail;   // evals of deleted rows go with them (ON DELETE CASCADE)
    }
    st = s->ins_run;
    const char *texts[6] = {r->config_hash, r->config_json, r->task, r->model, r->mixer, r->variant};
    for (int i = 0; i < 6; i++) bind_text(db, st, 1 + i, texts[i]);
    const int ints[8] = {r->d_model, r->n_layers, r->heads, r->window, r->freqs, r->slots, r->feature_dim,
                         r->state_dim};
    for (int i = 0; i < 8; i++) CHECK_SQLITE(db, sqlite3_bind_int(st, 7 + i, ints[i]));
    CHECK_SQLITE(db, sqlite3_bind_double(st, 15, r->lr));
    CHECK_SQLITE(db, sqlite3_bind_int64(st, 16, seed_to_sql(r->seed)));
    CHECK_SQLITE(db, sqlite3_bind_int(st, 17, r->epochs));
    bind_text(db, st, 18, r->backend);
    CHECK_SQLITE(db, sqlite3_bind_double(st, 19, r->state_floats));
    bind_text(db, st, 20, r->state_formula);
    bind_text(db, st, 21, rev);
    bind_text(db, st, 22, host);
    CHECK_SQLITE(db, sqlite3_bind_int64(st, 23, getpid()));
    bind_text(db, st, 24, now);
    bind_text(db, st, 25, r->device && *r->device ? r->device : NULL);
    if (step_done(s, st)) goto fail;
    int64_t id = sqlite3_last_insert_rowid(db);
    if (r->resume_epoch > 0) {  // the evaluations before the resumed epoch, from the run it continues
        st = prepare(db, "UPDATE evals SET run_id=?1 WHERE epoch<?2 AND run_id=(SELECT max(id) FROM runs"
                         " WHERE config_hash=?3 AND id<>?1 AND status<>'ok')", 0);
        CHECK_SQLITE(db, sqlite3_bind_int64(st, 1, id));
        CHECK_SQLITE(db, sqlite3_bind_int(st, 2, r->resume_epoch));
        bind_text(db, st, 3, r->config_hash);
        int bad = step_done(s, st);
        sqlite3_finalize(st);
        if (bad) goto fail;
    }
    if (tx_commit(s)) return -1;
    return id;
fail:
    tx_rollback(s);
    return -1;
}

int store_log_eval(Store *s, int64_t run, int epoch, const char *split, int L, int K,
                   double accuracy, double loss, double tvd) {
    sqlite3 *db = s->db;
    sqlite3_stmt *st = s->ins_eval;
    CHECK_SQLITE(db, sqlite3_bind_int64(st, 1, run));
    CHECK_SQLITE(db, sqlite3_bind_int(st, 2, epoch));
    bind_text(db, st, 3, split);
    CHECK_SQLITE(db, sqlite3_bind_int(st, 4, L));
    CHECK_SQLITE(db, sqlite3_bind_int(st, 5, K));
    CHECK_SQLITE(db, sqlite3_bind_double(st, 6, accuracy));
    CHECK_SQLITE(db, sqlite3_bind_double(st, 7, loss));
    if (tvd < 0) CHECK_SQLITE(db, sqlite3_bind_null(st, 8));
    else CHECK_SQLITE(db, sqlite3_bind_double(st, 8, tvd));
    if (tx_begin(s)) return -1;
    if (step_done(s, st)) {
        if (strstr(s->err, "FOREIGN KEY")) SET_ERR(s, "results database %s: run %lld does not exist (replaced?)",
                                                   s->path, (long long)run);
        tx_rollback(s);
        return -1;
    }
    return tx_commit(s);
}

int store_finish_run(Store *s, int64_t run, const char *status, double accuracy, int epochs_done,
                     double tokens_per_s, const char *result_json) {
    sqlite3 *db = s->db;
    if (!status || (strcmp(status, "ok") && strcmp(status, "failed") && strcmp(status, "diverged") &&
                    strcmp(status, "interrupted"))) {
        SET_ERR(s, "store_finish_run: status must be ok, failed, diverged or interrupted (got '%s')",
                status ? status : "(null)");
        return -1;
    }
    char now[32];
    utc_timestamp(now, sizeof now);
    sqlite3_stmt *st = s->upd_finish;
    CHECK_SQLITE(db, sqlite3_bind_int64(st, 1, run));
    bind_text(db, st, 2, status);
    CHECK_SQLITE(db, sqlite3_bind_double(st, 3, accuracy));
    CHECK_SQLITE(db, sqlite3_bind_int(st, 4, epochs_done));
    CHECK_SQLITE(db, sqlite3_bind_double(st, 5, tokens_per_s));
    bind_text(db, st, 6, result_json);
    bind_text(db, st, 7, now);
    if (tx_begin(s)) return -1;
    if (step_done(s, st)) { tx_rollback(s); return -1; }
    if (sqlite3_changes(db) != 1) {
        SET_ERR(s, "results database %s: run %lld does not exist (replaced by another process?)", s->path,
                (long long)run);
        tx_rollback(s);
        return -1;
    }
    return tx_commit(s);
}

int64_t store_find_finished(Store *s, const char *config_hash) {
    s->err[0] = 0;
    sqlite3_stmt *st = s->find_ok;
    bind_text(s->db, st, 1, config_hash);
    int rc = sqlite3_step(st);
    int64_t id = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        if (is_busy(rc)) SET_ERR(s, "database %s is locked (%s)", s->path, sqlite3_errmsg(s->db));
        else SET_ERR(s, "results database %s: %s", s->path, sqlite3_errmsg(s->db));
        id = -1;
    }
    sqlite3_reset(st);
    return id;
}

int store_mark_stale(Store *s) {
    sqlite3_stmt *st = s->upd_stale;
    bind_text(s->db, st, 1, host_name());
    CHECK_SQLITE(s->db, sqlite3_bind_int64(st, 2, getpid()));
    if (tx_begin(s)) return -1;
    if (step_done(s, st)) { tx_rollback(s); return -1; }
    int n = sqlite3_changes(s->db);
    if (tx_commit(s)) return -1;
    return n;
}

static void copy_col(char *dst, size_t n, sqlite3_stmt *st, int col) {
    const unsigned char *t = sqlite3_column_text(st, col);
    snprintf(dst, n, "%s", t ? (const char *)t : "");
}
static double real_col(sqlite3_stmt *st, int col) {
    return sqlite3_column_type(st, col) == SQLITE_NULL ? NAN : sqlite3_column_double(st, col);
}

int store_list_runs(Store *s, const char *task, void (*fn)(const RunRow *r, void *ud), void *ud) {
    // Prepared per call (not cached) so that fn may call back into the store.
    sqlite3_stmt *st = prepare(s->db,
        "SELECT id, status, task, model, mixer, variant, config_hash, d_model, epochs_done, lr, state_floats,"
        " accuracy, tokens_per_s, seed, backend FROM runs WHERE ?1 IS NULL OR task=?1 ORDER BY id", 0);
    bind_text(s->db, st, 1, task);
    s->err[0] = 0;
    int n = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        RunRow r;
        memset(&r, 0, sizeof r);
        r.id = sqlite3_column_int64(st, 0);
        copy_col(r.status, sizeof r.status, st, 1);
        copy_col(r.task, sizeof r.task, st, 2);
        copy_col(r.model, sizeof r.model, st, 3);
        copy_col(r.mixer, sizeof r.mixer, st, 4);
        copy_col(r.variant, sizeof r.variant, st, 5);
        copy_col(r.config_hash, sizeof r.config_hash, st, 6);
        r.d_model = sqlite3_column_int(st, 7);
        r.epochs_done = sqlite3_column_int(st, 8);
        r.lr = real_col(st, 9);
        r.state_floats = real_col(st, 10);
        r.accuracy = real_col(st, 11);
        r.tokens_per_s = real_col(st, 12);
        r.seed = seed_from_sql(sqlite3_column_int64(st, 13));
        copy_col(r.backend, sizeof r.backend, st, 14);
        if (fn) fn(&r, ud);
        n++;
    }
    if (rc != SQLITE_DONE) {
        SET_ERR(s, "results database %s: %s", s->path, sqlite3_errmsg(s->db));
        n = -1;
    }
    sqlite3_finalize(st);
    return n;
}

int store_log_bench(Store *s, const char *config_json, const char *backend, int threads,
                    double tokens_per_s, double gemm_frac, const char *git_rev, const char *host) {
    sqlite3 *db = s->db;
    char now[32];
    utc_timestamp(now, sizeof now);
    sqlite3_stmt *st = s->ins_bench;
    bind_text(db, st, 1, config_json);
    bind_text(db, st, 2, backend);
    CHECK_SQLITE(db, sqlite3_bind_int(st, 3, threads));
    CHECK_SQLITE(db, sqlite3_bind_double(st, 4, tokens_per_s));
    CHECK_SQLITE(db, sqlite3_bind_double(st, 5, gemm_frac));
    bind_text(db, st, 6, git_rev && *git_rev ? git_rev : git_revision());
    bind_text(db, st, 7, host && *host ? host : host_name());
    bind_text(db, st, 8, now);
    if (tx_begin(s)) return -1;
    if (step_done(s, st)) { tx_rollback(s); return -1; }
    return tx_commit(s);
}

// --- merge -----------------------------------------------------------------------------------------

// Folds a worker's database into this one (architecture.md: each worker writes its own file, `merge`
// folds them together). In one transaction:
//  - src runs with status ok are copied, newest first, with their evals (run ids remapped), unless
//    this store already has an ok row of that config hash; so of several ok rows of one hash in src
//    (a forced rerun) only the newest comes over, and a hash ends with at most one ok row from merges.
//  - src rows that are not ok (running, failed, diverged, interrupted) are not copied: they are not
//    results, and the sweep on the merged store will simply run those configs again.
//  - when an ok run comes over, this store's failed/diverged/interrupted rows of its hash are deleted
//    (as store_begin_run would); 'running' rows are kept, since a live worker may still finish them.
//  - bench rows of src that this store lacks (compared on every column but id) are copied too, so
//    merging the same file twice changes nothing.
// src is only read; it must carry the current schema version.
int store_merge_from(Store *s, const char *src_path, int *sittings, char *err, size_t errn) {
    sqlite3 *db = s->db;
    if (sittings) *sittings = 0;
    if (err && errn) err[0] = 0;
    s->err[0] = 0;
    struct stat sb;
    // ATTACH would create a missing file: check first.
    if (stat(src_path, &sb) != 0) {
        SET_ERR(s, "cannot open results database %s: %s", src_path, strerror(errno));
        fmt_err(err, errn, "%s", s->err);
        return -1;
    }
    if (!S_ISREG(sb.st_mode)) {
        SET_ERR(s, "cannot open results database %s: not a regular file", src_path);
        fmt_err(err, errn, "%s", s->err);
        return -1;
    }
    // Read-only: merging needs no write access to the inputs.
    char uri[3 * 4096 + 64];
    if (strlen(src_path) >= 4096) {
        SET_ERR(s, "cannot open results database %s: path too long", src_path);
        fmt_err(err, errn, "%s", s->err);
        return -1;
    }
    path_uri(uri, sizeof uri, src_path, "mode=ro");
    sqlite3_stmt *att = prepare(db, "ATTACH DATABASE ?1 AS src", 0);
    bind_text(db, att, 1, uri);
    int rc = sqlite3_step(att);
    if (primary(rc) == SQLITE_CANTOPEN) {
        // A WAL input on read-only media (its -shm cannot be created): nobody can write it; read it immutable.
        sqlite3_finalize(att);
        path_uri(uri, sizeof uri, src_path, "mode=ro&immutable=1");
        att = prepare(db, "ATTACH DATABASE ?1 AS src", 0);
        bind_text(db, att, 1, uri);
        rc = sqlite3_step(att);
    }
    if (rc != SQLITE_DONE) {
        if (primary(rc) == SQLITE_NOTADB)
            SET_ERR(s, "%s is not a recallbench database (%s)", src_path, sqlite3_errmsg(db));
        else
            SET_ERR(s, "cannot open results database %s: %s", src_path, sqlite3_errmsg(db));
        sqlite3_finalize(att);
        fmt_err(err, errn, "%s", s->err);
        return -1;
    }
    sqlite3_finalize(att);
    int copied = 0, nsit = 0;
    sqlite3_stmt *sel = NULL, *ins = NULL, *evs = NULL, *del = NULL, *bench = NULL, *iins = NULL;
    int64_t *ids = NULL;   // src ok run ids, newest first; then its interrupted ones
    size_t nids = 0, nok = 0, cap = 0;
    FileInfo fi = file_info(db, "src");
    if (primary(fi.status) == SQLITE_CANTOPEN) {
        // A WAL input on read-only media (its -shm cannot be created): nobody can write it; read it immutable.
        sqlite3_exec(db, "DETACH DATABASE src", NULL, NULL, NULL);
        path_uri(uri, sizeof uri, src_path, "mode=ro&immutable=1");
        att = prepare(db, "ATTACH DATABASE ?1 AS src", 0);
        bind_text(db, att, 1, uri);
        rc = sqlite3_step(att);
        sqlite3_finalize(att);
        if (rc != SQLITE_DONE) {
            SET_ERR(s, "cannot open results database %s: %s", src_path, sqlite3_errmsg(db));
            fmt_err(err, errn, "%s", s->err);
            return -1;
        }
        fi = file_info(db, "src");
    }
    int j = judge(db, "src", src_path, fi, s->err, sizeof s->err);
    if (j == 0) {   // empty, or an older schema
        if (fi.app_id == 0) SET_ERR(s, "%s is not a recallbench database (it is empty)", src_path);
        else SET_ERR(s, "%s has schema version %d (this build: %d): open it once with this recallbench to migrate it",
                     src_path, fi.version, SCHEMA_VERSION);
    }
    if (j != 1) goto detach;
    if (tx_begin(s)) goto detach;
    // The ok runs newest first, then the interrupted rows (sittings of runs stopped and resumed, maybe elsewhere).
    sel = prepare(db, "SELECT id, status='ok' FROM src.runs WHERE status IN ('ok', 'interrupted')"
                      " ORDER BY status='ok' DESC, finished DESC, id DESC", 0);
    ins = prepare(db, "INSERT INTO main.runs(" RUN_COLS ") SELECT " RUN_COLS " FROM src.runs r WHERE r.id=?1"
                      " AND NOT EXISTS (SELECT 1 FROM main.runs m WHERE m.config_hash=r.config_hash AND m.status='ok')", 0);
    evs = prepare(db, "INSERT INTO main.evals(run_id, epoch, split, L, K, accuracy, loss, tvd)"
                      " SELECT ?1, epoch, split, L, K, accuracy, loss, tvd FROM src.evals WHERE run_id=?2 ORDER BY rowid", 0);
    // A finished copy replaces failed and diverged rows; interrupted ones stay (as train keeps them when a run
    // resumes from its checkpoint): they are earlier sittings of the run, whose time the report counts.
    del = prepare(db, "DELETE FROM main.runs WHERE config_hash=(SELECT config_hash FROM src.runs WHERE id=?1)"
                      " AND status IN ('failed', 'diverged')", 0);
    // src's interrupted rows come over once each: a sitting is its (config hash, start time).
    iins = prepare(db, "INSERT INTO main.runs(" RUN_COLS ") SELECT " RUN_COLS " FROM src.runs r WHERE r.id=?1"
                       " AND NOT EXISTS (SELECT 1 FROM main.runs m WHERE m.config_hash=r.config_hash"
                       " AND m.started IS r.started)", 0);
    bench = prepare(db, "INSERT INTO main.benches(config_json, backend, threads, tokens_per_s, gemm_frac, git_rev, host, created)"
                        " SELECT config_json, backend, threads, tokens_per_s, gemm_frac, git_rev, host, created FROM src.benches b"
                        " WHERE NOT EXISTS (SELECT 1 FROM main.benches m WHERE m.config_json IS b.config_json"
                        " AND m.backend IS b.backend AND m.threads IS b.threads AND m.tokens_per_s IS b.tokens_per_s"
                        " AND m.gemm_frac IS b.gemm_frac AND m.git_rev IS b.git_rev AND m.host IS b.host"
                        " AND m.created IS b.created) ORDER BY id", 0);
    // Collect the src ids first, then copy: no statement reads src.runs while main.runs grows.
    while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
        if (nids == cap) {
            cap = cap ? 2 * cap : 64;
            int64_t *grown = realloc(ids, cap * sizeof *ids);
            if (!grown) die_runtime("out of memory (%s:%d)", __FILE__, __LINE__);
            ids = grown;
        }
        ids[nids++] = sqlite3_column_int64(sel, 0);
        nok += sqlite3_column_int(sel, 1);
    }
    if (rc != SQLITE_DONE) { SET_ERR(s, "cannot read %s: %s", src_path, sqlite3_errmsg(db)); goto rollback; }
    for (size_t i = 0; i < nids; i++) {
        const int ok = i < nok;
        sqlite3_stmt *in = ok ? ins : iins;
        CHECK_SQLITE(db, sqlite3_bind_int64(in, 1, ids[i]));
        if (step_done(s, in)) goto rollback;
        if (sqlite3_changes(db) != 1) continue;   // hash already has an ok row (that sitting) here
        int64_t new_id = sqlite3_last_insert_rowid(db);
        CHECK_SQLITE(db, sqlite3_bind_int64(evs, 1, new_id));
        CHECK_SQLITE(db, sqlite3_bind_int64(evs, 2, ids[i]));
        if (step_done(s, evs)) goto rollback;
        if (!ok) { nsit++; continue; }
        CHECK_SQLITE(db, sqlite3_bind_int64(del, 1, ids[i]));
        if (step_done(s, del)) goto rollback;
        copied++;
    }
    if (step_done(s, bench)) goto rollback;
    if (tx_commit(s)) copied = -1;
    else if (sittings) *sittings = nsit;
    goto detach;
rollback:
    tx_rollback(s);
    copied = -1;
detach:
    free(ids);
    if (s->err[0]) copied = -1;
    sqlite3_finalize(sel);
    sqlite3_finalize(ins);
    sqlite3_finalize(evs);
    sqlite3_finalize(del);
    sqlite3_finalize(bench);
    sqlite3_finalize(iins);
    if (sqlite3_exec(db, "DETACH DATABASE src", NULL, NULL, NULL) != SQLITE_OK && copied >= 0) {
        SET_ERR(s, "cannot detach %s: %s", src_path, sqlite3_errmsg(db));
        copied = -1;
    }
    if (copied < 0) fmt_err(err, errn, "%s", s->err);
    return copied;
}
