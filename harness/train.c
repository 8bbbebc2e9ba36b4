// train.c — the training loop: data, model, AdamW with cosine schedule, per-epoch evaluation on
// every test configuration, early stop, divergence detection, progress, results store.
// Depends on config, store, util, tasks, models.
#include "train.h"
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include "../models/layers.h"
#include "../models/optim.h"
#include "../models/step.h"
#include <sqlite3.h>
#include "checkpoint.h"
#include "store.h"
#include "util.h"

int set_threads(int n) {
    if (n <= 0) n = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) n = 1;
    // The models parallelise with OpenMP and keep OpenBLAS on one thread (models/layers.h).
    openblas_set_num_threads(1);
#ifdef _OPENMP
    omp_set_num_threads(n);
#endif
    return n;
}

static volatile sig_atomic_t g_stop;
static void on_signal(int sig) { g_stop = sig; }

// Work buffers for one batch (no allocation inside the step loop).
typedef struct {
    int32_t *inputs, *pos, *tgt;
    int32_t *pred;      // [n, L] predictions of a split (eval)
    int32_t *ppos;      // [B*L] predictions at the scored positions of one batch
    uint32_t *mask;     // [B*L] RegBench allowed-letter masks of the scored positions
    int cap_tokens;
} Work;

// Fills inputs [B, L] and the scored positions of examples idx[0..B) of split s. For training only
// positions with a target are scored; for RegBench evaluation every position with a nonzero
// allowed mask is scored (its target may be -1: '|').
static int gather(const Split *s, const int *idx, int B, int eval_all, Work *w) {
    int L = s->L, np = 0;
    for (int b = 0; b < B; b++) {
        const int32_t *in = s->inputs + (size_t)idx[b] * L, *tg = s->targets + (size_t)idx[b] * L;
        memcpy(w->inputs + (size_t)b * L, in, L * sizeof(int32_t));
        for (int t = 0; t < L; t++) {
            int scored = eval_all && s->allowed ? s->allowed[(size_t)idx[b] * L + t] != 0 : tg[t] >= 0;
            if (scored) { w->pos[np] = b * L + t; w->tgt[np] = tg[t]; np++; }
        }
    }
    return np;
}

typedef struct { double acc, loss, tvd; } EvalOut;

// Evaluates one test split: MQAR accuracy as zoology (mean over examples of the fraction of correct
// queries); RegBench greedy accuracy and TVD micro-averaged over scored positions (tasks.md).
// The arithmetic (argmax, TVD) runs where the model lives (models/step.h).
static EvalOut evaluate(Model *m, const Split *s, int Bmax, Work *w) {
    EvalOut e = {0, 0, -1};
    EvalSums sum = {0};
    int idx[Bmax];
    for (int i = 0; i < s->n * s->L; i++) w->pred[i] = -1;
    for (int start = 0; start < s->n; start += Bmax) {
        int B = s->n - start < Bmax ? s->n - start : Bmax;
        for (int b = 0; b < B; b++) idx[b] = start + b;
        int np = gather(s, idx, B, 1, w);
        if (s->allowed)
            for (int i = 0; i < np; i++) w->mask[i] = s->allowed[(size_t)start * s->L + w->pos[i]];
        model_eval_batch(m, w->inputs, B, s->L, w->pos, w->tgt, np, s->allowed ? w->mask : NULL, w->ppos, &sum);
        for (int i = 0; i < np; i++) w->pred[(size_t)start * s->L + w->pos[i]] = w->ppos[i];
    }
    e.loss = sum.n_loss ? sum.loss_sum / sum.n_loss : 0;
    if (!s->allowed) e.acc = mqar_accuracy(s, w->pred);
    else { e.acc = sum.n_pos ? sum.hit / sum.n_pos : 0; e.tvd = sum.n_pos ? sum.tvd_sum / sum.n_pos : 0; }
    return e;
}

// Progress on stderr: a redrawn bar on a terminal, plain lines every ~10 s otherwise.
typedef struct { int mode; double last; } Progress;
static void progress(Progress *p, int epoch, int epochs, long step, long steps, double loss, double acc,
                     double tps, double eta, int force) {
    if (p->mode == 0) return;
    double now = now_seconds();
    if (!force && now - p->last < (p->mode == 1 ? 0.2 : 10.0)) return;
    p->last = now;
    char etas[32];
    if (eta >= 3600) snprintf(etas, sizeof etas, "%dh%02dm", (int)(eta / 3600), (int)fmod(eta / 60, 60));
    else snprintf(etas, sizeof etas, "%dm%02ds", (int)(eta / 60), (int)fmod(eta, 60));
    if (p->mode == 1) {
        int width = 24, fill = steps ? (int)(width * step / steps) : 0;
        char bar[32];
        for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
        bar[width] = 0;
        char accs[16] = "-";
        if (acc >= 0) snprintf(accs, sizeof accs, "%.3f", acc);
        fprintf(stderr, "\r\033[Kepoch %d/%d [%s] step %ld/%ld loss %.4f acc %s %.0fk tok/s ETA %s", epoch, epochs,
                bar, step, steps, loss, accs, tps / 1e3, etas);
    } else {
        fprintf(stderr, "epoch %d/%d step %ld/%ld loss %.4f acc %.3f tok/s %.0f ETA %s\n", epoch, epochs, step, steps,
                loss, acc, tps, etas);
    }
    fflush(stderr);
}

static void mkdir_parent(const char *path) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir) return;
    *slash = 0;
    for (char *p = dir + 1; *p; p++)
        if (*p == '/') { *p = 0; mkdir(dir, 0777); *p = '/'; }
    mkdir(dir, 0777);
}

void train_result_json(FILE *f, const TrainResult *r) {
    fprintf(f, "{\"status\": \"%s\", \"accuracy\": %.6f, \"accuracies\": {", r->status, r->accuracy);
    for (int i = 0; i < r->n_test; i++) {
        fprintf(f, "%s", i ? ", " : "");
        json_string(f, r->labels[i]);
        fprintf(f, ": %.6f", r->accuracies[i]);
    }
    fprintf(f, "}, \"state_bytes\": %.0f, \"state_floats\": %.0f, \"tokens_per_s\": %.1f, \"run_id\": %lld, "
               "\"epochs\": %d, \"steps\": %ld, \"loss\": %.6f, \"config_hash\": \"%s\", \"git_rev\": \"%s\"",
            4 * r->state_floats, r->state_floats, r->tokens_per_s, (long long)r->run_id, r->epochs, r->steps,
            r->final_loss, r->config_hash, git_revision());
    if (r->tvd >= 0) fprintf(f, ", \"tvd\": %.6f", r->tvd);
    fprintf(f, ", \"device\": ");
    json_string(f, r->device[0] ? r->device : "cpu");
    fprintf(f, ", \"threads\": %d", r->threads);
    // the CPU's GEMM kernels (avx512, avx2, blas; amx-bf16 or avx512-bf16 with --precision bf16): bf16 runs on
    // AMX and on AVX512-BF16 round differently, so the same seed gives other bits on each
    if (!r->device[0] || !strcmp(r->device, "cpu")) fprintf(f, ", \"gemm\": \"%s\"", rb_gemm_path());
    if (r->resumed_step > 0) fprintf(f, ", \"resumed_at_step\": %ld", r->resumed_step);
    fprintf(f, "}\n");
}

// Writes a checkpoint at position cp (its evaluation fields from res, the last evaluation); a failure is
// one line on stderr and the run goes on (the previous checkpoint, if any, stays). 0 on success.
static int save_checkpoint(const char *path, CkptPos *cp, const TrainResult *res, Model *m, Optim *o) {
    char err[1400];
    cp->n_test = res->n_test;
    cp->accuracy = res->accuracy;
    cp->tvd = res->tvd;
    memcpy(cp->accuracies, res->accuracies, sizeof cp->accuracies);
    memcpy(cp->labels, res->labels, sizeof cp->labels);
    if (!ckpt_save(path, res->config_hash, cp, m, o, err, sizeof err)) return 0;
    fprintf(stderr, "\nrecallbench: %s\n", err);
    return -1;
}

int train_run(const RunConfig *c, const char *db_path, int quiet, TrainResult *res) {
    char err[512];
    TaskParams tp;
    ModelCfg mc;
    memset(res, 0, sizeof *res);
    res->status = "failed";
    res->tvd = -1;
    if (config_finalize(c, &tp, &mc, err, sizeof err)) { fprintf(stderr, "recallbench: %s\n", err); return 2; }
    char json[4096], mixer[32], variant[48];
    config_json(c, json, sizeof json);
    config_hash(json, res->config_hash);
    config_mixer(c, mixer, sizeof mixer);
    config_variant(c, variant, sizeof variant);
    int threads = set_threads(c->threads);

    Store *st = NULL;
    if (db_path) {
        if (!strcmp(db_path, c->db) && !strcmp(db_path, "results/results.db")) mkdir_parent(db_path);
        st = store_open(db_path, err, sizeof err);
        if (!st) { fprintf(stderr, "recallbench: %s\n", err); return 1; }
        int64_t done = c->force ? 0 : store_find_finished(st, res->config_hash);
        if (done < 0) { fprintf(stderr, "recallbench: %s: %s\n", db_path, store_errmsg(st)); store_close(st); return 1; }
        if (done > 0) {
            // Already finished: report the stored result instead of training again.
            res->status = "skipped";
            res->run_id = done;
            sqlite3_stmt *q;
            if (sqlite3_prepare_v2(store_db(st), "SELECT result_json FROM runs WHERE id = ?", -1, &q, NULL) == SQLITE_OK) {
                sqlite3_bind_int64(q, 1, done);
                if (sqlite3_step(q) == SQLITE_ROW && sqlite3_column_text(q, 0))
                    snprintf(res->stored_json, sizeof res->stored_json, "%s", (const char *)sqlite3_column_text(q, 0));
                sqlite3_finalize(q);
            }
            if (!quiet) fprintf(stderr, "recallbench: config %s already finished as run %lld in %s (--force to rerun)\n",
                                res->config_hash, (long long)done, db_path);
            store_close(st);
            return 0;
        }
    }

    // Data: deterministic from (task params, seed).
    double t0 = now_seconds();
    if (!quiet) fprintf(stderr, "generating data (seed %llu)...\n", (unsigned long long)c->seed);
    Dataset *ds = task_generate(&tp, c->seed);
    if (!ds) { fprintf(stderr, "recallbench: out of memory generating data\n"); if (st) store_close(st); return 1; }
    if (ds->n_test > RB_MAX_SPLITS) ds->n_test = RB_MAX_SPLITS;
    int Tmax = 0, Bmax = c->batch;
    for (int i = 0; i < ds->n_train; i++) if (ds->train[i].L > Tmax) Tmax = ds->train[i].L;
    for (int i = 0; i < ds->n_test; i++) if (ds->test[i].L > Tmax) Tmax = ds->test[i].L;
    mc.max_len = Tmax;
    Model *m = model_create(&mc, Bmax, Tmax, err, sizeof err);
    if (!m) {
        fprintf(stderr, "recallbench: %s\n", err);
        dataset_free(ds);
        if (st) store_close(st);
        // a device failure or out of memory is a runtime error (1); an invalid model configuration is usage (2)
        return !strncmp(err, "no CUDA device", 14) || !strncmp(err, "CUDA driver", 11) ||
               !strncmp(err, "out of device memory", 20) || !strncmp(err, "out of memory", 13) ? 1 : 2;
    }
    model_init(m, c->seed);
    res->state_floats = model_state_floats(m, Tmax);
    snprintf(res->device, sizeof res->device, "%s", model_device_name(m));
    res->threads = threads;
    AdamWCfg oc = {c->lr, 0.9, 0.999, 1e-8, c->weight_decay, c->clip, c->decay_all};
    Optim *opt = optim_create(m, &oc);

    // A checkpoint of this configuration (an earlier run of it stopped): continue from it.
    char ckpath[1100] = "";
    CkptPos pos;
    memset(&pos, 0, sizeof pos);
    pos.epoch = 1;
    int resumed = 0;
    if (c->checkpoint[0]) {
        ckpt_path(ckpath, sizeof ckpath, c->checkpoint, res->config_hash);
        int lr_ = c->force ? 1 : ckpt_load(ckpath, res->config_hash, &pos, m, opt, err, sizeof err);
        if (lr_ < 0) {
            fprintf(stderr, "recallbench: %s\n", err);
            optim_free(opt); model_free(m); dataset_free(ds);
            if (st) store_close(st);
            return 1;
        }
        resumed = lr_ == 0;
        if (c->force) memset(&pos, 0, sizeof pos), pos.epoch = 1;
        long tot = 0;  // the step count the loop below will have (the lr schedule's length)
        for (int i = 0; i < ds->n_train; i++) tot += (ds->train[i].n + Bmax - 1) / Bmax;
        tot *= c->epochs;
        if (c->max_steps > 0 && c->max_steps < tot) tot = c->max_steps;
        if (resumed && pos.total != tot) {
            fprintf(stderr, "recallbench: checkpoint %s was written by a run of %ld steps, this one has %ld (another "
                            "--max-steps); delete it or give the same --max-steps\n", ckpath, pos.total, tot);
            optim_free(opt); model_free(m); dataset_free(ds);
            if (st) store_close(st);
            return 1;
        }
    }

    // The state formula of the model: per layer, joined by '+'.
    char formula[256] = "";
    for (int l = 0; l < mc.n_layers; l++) {
        const MixerOps *ops = mixer_ops(mc.layer[l].kind);
        size_t n = strlen(formula);
        snprintf(formula + n, sizeof formula - n, "%s%s:%s", l ? " + " : "", ops->name, ops->state_formula ? ops->state_formula : "?");
    }
    int64_t run = 0;
    if (st) {
        const MixerCfg *ml = &mc.layer[mc.n_layers - 1];
        for (int l = 0; l < mc.n_layers; l++) if (strcmp(mixer_ops(mc.layer[l].kind)->name, mixer) == 0) ml = &mc.layer[l];
        int uses_w = ml->kind == MIX_SWA || ml->kind == MIX_BLA;
        RunInfo ri = {json, res->config_hash, c->task == TASK_MQAR ? "mqar" : "regbench", c->layers, mixer, variant,
                      c->d_model, mc.n_layers, c->heads, uses_w ? ml->window[0] : 0, ml->kind == MIX_BLA ? ml->freqs[0] : 0,
                      ml->kind == MIX_GSA ? ml->slots : 0, ml->kind == MIX_LA ? ml->feature_dim : 0,
                      ml->kind == MIX_MAMBA ? ml->state_dim : 0, c->lr, c->seed, c->epochs,
                      c->backend == BACKEND_CUDA ? "cuda" : "cpu", res->state_floats,
                      formula, git_revision(), host_name(), c->force, resumed ? pos.epoch : 0, res->device};
        run = store_begin_run(st, &ri);
        if (run == 0) {
            // Claimed by a live process meanwhile (or finished): never train one config twice at once.
            fprintf(stderr, "recallbench: %s\n", store_errmsg(st));
            res->status = strstr(store_errmsg(st), "already finished") ? "skipped" : "claimed";
            optim_free(opt); model_free(m); dataset_free(ds); store_close(st);
            return strcmp(res->status, "skipped") ? 1 : 0;
        }
        if (run < 0) {
            fprintf(stderr, "recallbench: cannot record run in %s: %s\n", db_path, store_errmsg(st));
            optim_free(opt); model_free(m); dataset_free(ds); store_close(st);
            return 1;
        }
    }
    res->run_id = run;

    // Batches: (split, batch) pairs, shuffled per epoch; examples shuffled within each split.
    long per_epoch = 0;
    for (int i = 0; i < ds->n_train; i++) per_epoch += (ds->train[i].n + Bmax - 1) / Bmax;
    long total = per_epoch * c->epochs;
    if (c->max_steps > 0 && c->max_steps < total) total = c->max_steps;
    int *order = xmalloc(per_epoch * 2 * sizeof(int));
    int **perm = xmalloc(ds->n_train * sizeof(int *));
    for (int i = 0; i < ds->n_train; i++) perm[i] = xmalloc(ds->train[i].n * sizeof(int));
    Work w;
    size_t maxtok = (size_t)Bmax * Tmax, maxsplit = 0;
    for (int i = 0; i < ds->n_test; i++)
        if ((size_t)ds->test[i].n * ds->test[i].L > maxsplit) maxsplit = (size_t)ds->test[i].n * ds->test[i].L;
    w.inputs = xmalloc(maxtok * sizeof(int32_t));
    w.pos = xmalloc(maxtok * sizeof(int32_t));
    w.tgt = xmalloc(maxtok * sizeof(int32_t));
    w.pred = xmalloc((maxsplit ? maxsplit : 1) * sizeof(int32_t));
    w.ppos = xmalloc(maxtok * sizeof(int32_t));
    w.mask = xmalloc(maxtok * sizeof(uint32_t));
    int *idx = xmalloc(Bmax * sizeof(int));

    Progress pg = {quiet || c->progress == 3 ? 0 : c->progress == 1 ? 1 : c->progress == 2 ? 2 : isatty(2) ? 1 : 2, 0};
    g_stop = 0;
    struct sigaction sa = {0}, old_int, old_term;
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    if (!quiet)
        fprintf(stderr, "run %lld: %s %s d_model %d, %zu params, state %.0f floats (%.0f bytes), %ld steps, %d threads, %s\n",
                (long long)run, c->task == TASK_MQAR ? "mqar" : "regbench", c->layers, c->d_model, model_num_params(m),
                res->state_floats, 4 * res->state_floats, total, threads, res->device);

    Rng shuf;
    rng_seed_stream(&shuf, c->seed, 4);
    long step = 0;
    double train_time = 0, tokens = 0, ema = -1, last_acc = -1;
    int status = 0, epoch = 0, complete = 0;
    const char *why = NULL;
    if (resumed) {
        shuf = pos.shuf;
        step = pos.step;
        train_time = pos.train_time;
        tokens = pos.tokens;
        ema = pos.ema;
        last_acc = pos.last_acc;
        res->n_test = pos.n_test;
        res->accuracy = pos.accuracy;
        res->tvd = pos.tvd;
        memcpy(res->accuracies, pos.accuracies, sizeof res->accuracies);
        memcpy(res->labels, pos.labels, sizeof res->labels);
        res->resumed_step = step;
        if (!quiet)
            fprintf(stderr, "resuming from %s: epoch %d, batch %ld of it, step %ld of %ld\n", ckpath, pos.epoch, pos.batch,
                    step, total);
    }
    const long step0 = step;
    double tstart = now_seconds(), last_save = tstart;
    for (epoch = pos.epoch; epoch <= c->epochs && step < total && !g_stop; epoch++) {
        const Rng shuf_epoch = shuf;  // a checkpoint inside this epoch redraws its permutation from here
        int k = 0;
        for (int i = 0; i < ds->n_train; i++) {
            for (int j = 0; j < ds->train[i].n; j++) perm[i][j] = j;
            rng_shuffle(&shuf, perm[i], ds->train[i].n);
            for (int b = 0; b < (ds->train[i].n + Bmax - 1) / Bmax; b++) { order[2 * k] = i; order[2 * k + 1] = b; k++; }
        }
        // Shuffle the batch order (pairs) with one Fisher-Yates over batch indices.
        for (int i = k - 1; i > 0; i--) {
            int j = (int)rng_below(&shuf, (uint64_t)i + 1), a0 = order[2 * i], a1 = order[2 * i + 1];
            order[2 * i] = order[2 * j]; order[2 * i + 1] = order[2 * j + 1]; order[2 * j] = a0; order[2 * j + 1] = a1;
        }
        const int first = resumed && epoch == pos.epoch;  // the epoch the checkpoint stopped in
        double ep_loss = first ? pos.ep_loss : 0;
        long ep_n = first ? pos.ep_n : 0;
        int q;
        for (q = first ? (int)pos.batch : 0; q < k && step < total && !g_stop; q++) {
            const Split *s = &ds->train[order[2 * q]];
            int start = order[2 * q + 1] * Bmax, B = s->n - start < Bmax ? s->n - start : Bmax;
            for (int b = 0; b < B; b++) idx[b] = perm[order[2 * q]][start + b];
            double ts = now_seconds();
            int np = gather(s, idx, B, 0, &w);
            double lr = lr_schedule(step, total, (long)(c->warmup * total), c->lr, c->min_lr), gn = 0;
            double loss = model_train_step(m, opt, w.inputs, B, s->L, w.pos, w.tgt, np, lr, &gn);
            if (c->nan_at_step && step + 1 == c->nan_at_step) loss = NAN;  // test hook
            if (!isfinite(loss) || !isfinite(gn)) { status = 1; why = "diverged"; break; }
            train_time += now_seconds() - ts;
            tokens += (double)B * s->L;
            step++;
            if (c->stop_at_step && step == c->stop_at_step) g_stop = SIGINT;  // test hook
            ep_loss += loss;
            ep_n++;
            ema = ema < 0 ? loss : 0.98 * ema + 0.02 * loss;
            double tps = tokens / fmax(train_time, 1e-9);
            double el = now_seconds() - tstart, eta = el / (step - step0) * (total - step);
            progress(&pg, epoch, c->epochs, step, total, ema, last_acc, tps, eta, 0);
        }
        if (status) break;
        if (g_stop && ckpath[0]) {  // stopped inside the epoch: keep the position, evaluate nothing
            CkptPos cp = {.epoch = epoch, .batch = q, .step = step, .total = total, .shuf = shuf_epoch, .ep_loss = ep_loss,
                          .ep_n = ep_n, .ema = ema, .last_acc = last_acc, .train_time = train_time, .tokens = tokens};
            if (!save_checkpoint(ckpath, &cp, res, m, opt) && !quiet)
                fprintf(stderr, "\ncheckpoint at epoch %d batch %d (step %ld): %s\n", epoch, q, step, ckpath);
            epoch++;
            break;
        }
        // Evaluate every test configuration: every epoch, or with --eval-every N when early stop cannot
        // trigger, every N epochs and at the last (training never reads an evaluation, so the run and its
        // final result are the same; only the stored curve is sparser).
        int last = epoch == c->epochs || step >= total || g_stop;
        int eval_now = !(c->early_stop >= 1 && c->eval_every > 1 && epoch % c->eval_every && !last);
        double mean = eval_now ? 0 : last_acc, tvd = 0;  // skipped epochs show the last evaluation
        for (int i = 0; eval_now && i < ds->n_test; i++) {
            EvalOut e = evaluate(m, &ds->test[i], Bmax, &w);
            res->accuracies[i] = e.acc;
            snprintf(res->labels[i], sizeof res->labels[i], "%s", ds->test[i].label);
            mean += e.acc;
            tvd += e.tvd;
            if (st && store_log_eval(st, run, epoch, ds->test[i].label, c->task == TASK_MQAR ? ds->test[i].L : 0,
                                     ds->test[i].K, e.acc, e.loss, e.tvd) != 0) {
                fprintf(stderr, "\nrecallbench: cannot log eval to %s: %s\n", db_path, store_errmsg(st));
                status = 1; why = "failed";
            }
        }
        if (eval_now) {
            res->n_test = ds->n_test;
            mean /= ds->n_test;
            res->accuracy = last_acc = mean;
            res->tvd = c->task == TASK_REGBENCH ? tvd / ds->n_test : -1;
        }
        res->final_loss = ep_n ? ep_loss / ep_n : 0;
        res->epochs = epoch;
        if (st) store_log_eval(st, run, epoch, "train", 0, 0, NAN, res->final_loss, -1);
        double el = now_seconds() - tstart;
        progress(&pg, epoch, c->epochs, step, total, ema, mean, tokens / fmax(train_time, 1e-9),
                 el / fmax(step - step0, 1) * (total - step), 1);
        if (pg.mode == 1) fputc('\n', stderr);
        if (status) break;
        // The run is complete after this epoch (all epochs or steps, or early stop): a signal now changes nothing.
        complete = epoch == c->epochs || step >= total || (eval_now && mean > c->early_stop);
        // Checkpoint at the next epoch's start: on time, or when a signal came during this epoch's evaluation.
        if (ckpath[0] && !complete && (g_stop || now_seconds() - last_save >= c->checkpoint_every)) {
            CkptPos cp = {.epoch = epoch + 1, .batch = 0, .step = step, .total = total, .shuf = shuf, .ema = ema,
                          .last_acc = last_acc, .train_time = train_time, .tokens = tokens};
            save_checkpoint(ckpath, &cp, res, m, opt);
            last_save = now_seconds();
        }
        if (!eval_now) continue;
        if (mean > c->early_stop) { if (!quiet) fprintf(stderr, "early stop: test accuracy %.4f > %.4f\n", mean, c->early_stop); epoch++; break; }
    }
    res->epochs = epoch - 1;
    res->steps = step;
    res->tokens_per_s = tokens / fmax(train_time, 1e-9);
    if (g_stop && !status && !complete) { status = 1; why = "interrupted"; }
    res->status = status ? why : "ok";
    // A finished run (ok or diverged: both are results) needs its checkpoint no more.
    if (ckpath[0] && (!status || !strcmp(why, "diverged"))) remove(ckpath);
    if (st) {
        char rj[4096];
        FILE *mf = fmemopen(rj, sizeof rj, "w");
        train_result_json(mf, res);
        fclose(mf);
        rj[strcspn(rj, "\n")] = 0;
        if (store_finish_run(st, run, res->status, res->accuracy, res->epochs, res->tokens_per_s, rj) != 0) {
            fprintf(stderr, "recallbench: cannot finish run in %s: %s\n", db_path, store_errmsg(st));
            status = 1;
        }
        store_close(st);
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (status && why && strcmp(why, "failed"))
        fprintf(stderr, "recallbench: run %lld %s at epoch %d step %ld%s\n", (long long)run, why, epoch, step,
                strcmp(why, "diverged") ? "" : " (non-finite loss); marked diverged, earlier results kept");
    if (!quiet) fprintf(stderr, "done in %.1f s\n", now_seconds() - t0);
    free(idx); free(w.inputs); free(w.pos); free(w.tgt); free(w.pred); free(w.ppos); free(w.mask); free(order);
    for (int i = 0; i < ds->n_train; i++) free(perm[i]);
    free(perm);
    optim_free(opt);
    model_free(m);
    dataset_free(ds);
    return status;
}

static void train_usage(FILE *f) {
    fprintf(f, "usage: recallbench train [options]\n"
               "Trains one model on one task from scratch, evaluates every test configuration each epoch,\n"
               "and records the run in the results database (a finished identical config is not rerun).\n");
    config_print_help(f, G_TASK | G_MODEL | G_MIXER | G_TRAIN | G_RUN);
}

int cmd_train(int argc, char **argv) {
    RunConfig c;
    config_defaults(&c);
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { train_usage(stdout); return 0; }
    char err[512];
    int np;
    if (config_parse_args(&c, argc - 1, argv + 1, G_TASK | G_MODEL | G_MIXER | G_TRAIN | G_RUN, &np, err, sizeof err))
        die_usage("%s", err);
    if (np) die_usage("train: unexpected argument '%s' (options are --name value)", argv[1]);
    TrainResult r;
    int rc = train_run(&c, c.db, 0, &r);
    if (rc == 2) return 2;
    if (!strcmp(r.status, "claimed")) {
        if (c.json) printf("{\"status\": \"claimed\", \"config_hash\": \"%s\"}\n", r.config_hash);
        return rc;
    }
    if (!strcmp(r.status, "skipped")) {
        if (c.json) printf("%s\n", r.stored_json[0] ? r.stored_json : "{\"status\": \"skipped\"}");
        else printf("already finished: run %lld (config %s); use --force to train again\n", (long long)r.run_id,
                    r.config_hash);
        return 0;
    }
    printf("run %lld %s: %d epochs, %ld steps, loss %.4f, %.0f tokens/s, state %.0f bytes\n", (long long)r.run_id,
           r.status, r.epochs, r.steps, r.final_loss, r.tokens_per_s, 4 * r.state_floats);
    for (int i = 0; i < r.n_test; i++) printf("  %-16s accuracy %.4f\n", r.labels[i], r.accuracies[i]);
    if (r.n_test) printf("  %-16s accuracy %.4f%s\n", "mean", r.accuracy, r.tvd >= 0 ? "" : "");
    if (r.tvd >= 0) printf("  %-16s %.4f\n", "tvd", r.tvd);
    if (c.json) train_result_json(stdout, &r);
    return rc;
}
