// bench.c — `recallbench bench`: training tokens/s (forward + backward + AdamW) of one configuration,
// the GEMM share of the step and the achieved fraction of this machine's sgemm peak; logged to the
// store. Depends on config, train (set_threads), models, tasks, store.
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "../models/layers.h"
#include "../models/optim.h"
#include "../models/step.h"
#include "frontier.h"
#include "store.h"
#include "train.h"
#include "util.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

// Peak: the best of a few 1024^3 GEMMs through the engine's own GEMM (gemm_ld: the float build's
// kernels, or OpenBLAS where rb_gemm_path() says "blas"), rows split over the bench's threads.
static double sgemm_peak_gflops(int threads) {
    const int n = 1024;
    real *a = xmalloc((size_t)n * n * sizeof(real)), *b = xmalloc((size_t)n * n * sizeof(real)),
         *c = xmalloc((size_t)n * n * sizeof(real));
    for (size_t i = 0; i < (size_t)n * n; i++) { a[i] = (real)(i % 7) * 0.1f; b[i] = (real)(i % 5) * 0.1f; }
    double best = 1e30;
    for (int r = 0; r < 4; r++) {
        double t = now_seconds();
#pragma omp parallel num_threads(threads)
        {
            int th = omp_get_thread_num(), nt = omp_get_num_threads();
            int m0 = n * th / nt, m1 = n * (th + 1) / nt;
            gemm_ld(c + (size_t)m0 * n, n, a + (size_t)m0 * n, n, b, n, m1 - m0, n, n, 0, 0, 1, 0);
        }
        t = now_seconds() - t;
        if (t < best) best = t;
    }
    free(a); free(b); free(c);
    return 2.0 * n * n * n / best / 1e9;
}

// One timed run: its own model (and, on CUDA, its own stream: models/cuda/cuda.h), warm-up steps,
// then `steps` timed steps. With a barrier, concurrent runs start their timed steps together.
typedef struct {
    const ModelCfg *mc;
    const int32_t *inputs;
    int B, T;
    const int32_t *pos, *tgt;
    int npos;
    AdamWCfg oc;
    double lr;
    uint64_t seed;
    int warm, steps;
    double *times;
    pthread_barrier_t *barrier;
    int profile;          // CPU, one run: GEMM accounting, over `steps` more steps after the timed ones
    double prof_s;        // the profiled steps' total seconds
    char err[512];
    int rc;               // 0, or the exit status of a failure (message in err)
    double t_start, t_end;
    char device[128];
    size_t nparams;
} BenchJob;

static int cmp_shape_time(const void *a, const void *b) {  // most GEMM time first
    double x = ((const GemmShape *)a)->seconds, y = ((const GemmShape *)b)->seconds;
    return x < y ? 1 : x > y ? -1 : 0;
}

static void *bench_job(void *arg) {
    BenchJob *j = arg;
    Model *m = model_create(j->mc, j->B, j->T, j->err, sizeof j->err);
    if (!m) {
        j->rc = j->mc->backend == MODEL_CUDA || !strncmp(j->err, "out of memory", 13) ? 1 : 2;
        if (j->barrier) { pthread_barrier_wait(j->barrier); }  // keep the others from waiting forever
        return NULL;
    }
    model_init(m, j->seed);
    snprintf(j->device, sizeof j->device, "%s", model_device_name(m));
    j->nparams = model_num_params(m);
    Optim *opt = optim_create(m, &j->oc);
    for (int it = 0; it < j->warm; it++) model_train_step(m, opt, j->inputs, j->B, j->T, j->pos, j->tgt, j->npos, j->lr, NULL);
    if (j->barrier) pthread_barrier_wait(j->barrier);
    j->t_start = now_seconds();
    for (int it = 0; it < j->steps; it++) {
        double t = now_seconds();
        double loss = model_train_step(m, opt, j->inputs, j->B, j->T, j->pos, j->tgt, j->npos, j->lr, NULL);
        j->times[it] = now_seconds() - t;
        if (!isfinite(loss)) { snprintf(j->err, sizeof j->err, "bench: the loss diverged at step %d", it + 1); j->rc = 1; break; }
    }
    j->t_end = now_seconds();
    // The GEMM accounting (two clock reads per GEMM call, ~1% of the reference step) on steps of
    // its own: the timed steps are those of a training run.
    if (j->profile && !j->rc) {
        memset(rb_gemm_stat, 0, sizeof rb_gemm_stat);
        rb_gemm_shapes_reset();
        rb_gemm_profile = j->profile;  // 2: per call shape too (--gemm-shapes)
        double t = now_seconds();
        for (int it = 0; it < j->steps; it++)
            model_train_step(m, opt, j->inputs, j->B, j->T, j->pos, j->tgt, j->npos, j->lr, NULL);
        j->prof_s = now_seconds() - t;
        rb_gemm_profile = 0;
    }
    optim_free(opt);
    model_free(m);
    return NULL;
}

// A bench option's integer value: decimal digits only (strtol took " -5" and "" as numbers), in [lo, hi].
static long bench_int(const char *flag, const char *v, long lo, long hi) {
    const char *p = v;
    long x = 0;
    for (; *p >= '0' && *p <= '9'; p++)
        if (x <= hi) x = x * 10 + (*p - '0');  // stops growing past hi: no overflow
    if (p == v || *p) die_usage("%s %s is not a number: must be an integer in [%ld, %ld]", flag, v, lo, hi);
    if (x < lo || x > hi) die_usage("%s %s out of range: must be an integer in [%ld, %ld]", flag, v, lo, hi);
    return x;
}

int cmd_bench(int argc, char **argv) {
    RunConfig c;
    config_defaults(&c);
    // The reference CPU config of the engine issue is the default.
    snprintf(c.layers, sizeof c.layers, "conv,attention");
    c.vocab = 512; c.seq_len = 128; c.kv_pairs = 8; c.d_model = 64; c.batch = 64;
    int steps = 20, warm = 10, k = 0, np, jobs_n = 1, shapes = 0;
    char err[512];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: recallbench bench [config options] [--steps N (20)] [--warmup-steps N (10)] [-j N (1)] [--gemm-shapes] [--db PATH] [--json]\n"
                   "Times training steps (forward + backward + AdamW) on one batch of the first training\n"
                   "configuration: median over N steps after warm-up. Default config: MQAR V 512, L 128, K 8,\n"
                   "--layers conv,attention, d_model 64, batch 64. Reports tokens/s, the GEMM share of the\n"
                   "step and the GEMM throughput against this machine's sgemm peak (1024^3). -j N: N runs at once\n"
                   "in threads (each its own model and, with --backend cuda, its own stream on the one GPU); prints\n"
                   "their aggregate tokens/s. --gemm-shapes (cpu, -j 1): also a table of the step's GEMM calls by\n"
                   "shape (M x N x K, transposes): calls per step, time per call, GFLOP/s, share of the GEMM time.\n");
            config_print_help(stdout, G_TASK | G_MODEL | G_MIXER | G_TRAIN | G_RUN);
            return 0;
        }
        // "--name value" or "--name=value" (frontier_flag_value), as for every other command.
        const char *v;
        if ((v = frontier_flag_value(argc, argv, &i, "-j")) || (v = frontier_flag_value(argc, argv, &i, "--jobs"))) {
            jobs_n = (int)bench_int(a[1] == 'j' ? "-j" : "--jobs", v, 1, 64);
        } else if ((v = frontier_flag_value(argc, argv, &i, "--steps"))) {
            steps = (int)bench_int("--steps", v, 1, 100000);
        } else if ((v = frontier_flag_value(argc, argv, &i, "--warmup-steps"))) {
            warm = (int)bench_int("--warmup-steps", v, 0, 100000);
        } else if (!strcmp(a, "--gemm-shapes")) {
            shapes = 1;
        } else argv[1 + k++] = argv[i];
    }
    if (config_parse_args(&c, k, argv + 1, G_TASK | G_MODEL | G_MIXER | G_TRAIN | G_RUN, &np, err, sizeof err))
        die_usage("%s", err);
    if (np) die_usage("bench: unexpected argument '%s'", argv[1]);
    TaskParams tp;
    ModelCfg mc;
    if (config_finalize(&c, &tp, &mc, err, sizeof err)) die_usage("%s", err);
    int threads = set_threads(c.threads);
    // One batch of data is enough to time a step.
    if (tp.task == TASK_MQAR) {
        tp.n_train_mix = tp.n_test_mix = 1;
        tp.train_mix[0].count = tp.test_mix[0].count = c.batch;
        tp.test_mix[0] = tp.train_mix[0];
    } else tp.train_automata = tp.test_automata = c.batch;
    Dataset *ds = task_generate(&tp, c.seed);
    if (!ds) die_runtime("out of memory generating data");
    const Split *s = &ds->train[0];
    int B = s->n < c.batch ? s->n : c.batch, T = s->L;
    mc.max_len = T;
    int32_t *pos = xmalloc((size_t)B * T * sizeof(int32_t)), *tgt = xmalloc((size_t)B * T * sizeof(int32_t));
    int npos = 0;
    for (int i = 0; i < B * T; i++) if (s->targets[i] >= 0) { pos[npos] = i; tgt[npos] = s->targets[i]; npos++; }
    BenchJob job0 = {.mc = &mc, .inputs = s->inputs, .B = B, .T = T, .pos = pos, .tgt = tgt, .npos = npos,
                     .oc = {c.lr, 0.9, 0.999, 1e-8, c.weight_decay, c.clip, c.decay_all}, .lr = c.lr, .seed = c.seed,
                     .warm = warm, .steps = steps};
    BenchJob *jobs = xmalloc(jobs_n * sizeof(BenchJob));
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, (unsigned)jobs_n);
    for (int j = 0; j < jobs_n; j++) {
        jobs[j] = job0;
        jobs[j].times = xmalloc(steps * sizeof(double));
        jobs[j].barrier = jobs_n > 1 ? &bar : NULL;
        jobs[j].profile = jobs_n == 1 && c.backend == BACKEND_CPU ? 1 + shapes : 0;
    }
    if (jobs_n == 1) bench_job(&jobs[0]);
    else {
        pthread_t *th = xmalloc(jobs_n * sizeof(pthread_t));
        for (int j = 0; j < jobs_n; j++) pthread_create(&th[j], NULL, bench_job, &jobs[j]);
        for (int j = 0; j < jobs_n; j++) pthread_join(th[j], NULL);
        free(th);
    }
    for (int j = 0; j < jobs_n; j++)
        if (jobs[j].rc) {
            fprintf(stderr, "recallbench: %s\n", jobs[j].err);
            exit(jobs[j].rc);
        }
    double *times = jobs[0].times, gemm_s = 0, gemm_f = 0;
    const char *device = jobs[0].device;
    size_t nparams = jobs[0].nparams;
    rb_gemm_profile = 0;
    for (int i = 0; i < RB_GEMM_STAT_THREADS; i++) { gemm_s += rb_gemm_stat[i].seconds; gemm_f += rb_gemm_stat[i].flops; }
    double total = 0;
    for (int i = 0; i < steps; i++) total += times[i];
    qsort(times, steps, sizeof(double), cmp_double);
    double med = times[steps / 2], tps = B * T / med;
    // Concurrent runs (started together by the barrier): the sum of each run's own tokens/s over its
    // timed steps.
    double agg = 0;
    for (int j = 0; j < jobs_n && jobs_n > 1; j++) agg += (double)B * T * steps / (jobs[j].t_end - jobs[j].t_start);
    double prof_s = jobs[0].prof_s > 0 ? jobs[0].prof_s : total;
    double share = gemm_s / (threads * prof_s), gflops = gemm_f / prof_s / 1e9 / 1;
    double peak = c.backend == BACKEND_CPU ? sgemm_peak_gflops(threads) : 0;
    double gemm_rate = gemm_s > 0 ? gemm_f / (gemm_s / threads) / 1e9 : 0;
    printf("bench: %s %s d_model %d heads %d batch %d L %d, %s, %d threads, %zu params\n",
           c.task == TASK_MQAR ? "mqar" : "regbench", c.layers, c.d_model, c.heads, B, T, device, threads, nparams);
    printf("  step time  median %.3f ms (min %.3f, max %.3f) over %d steps after %d warm-up\n", med * 1e3,
           times[0] * 1e3, times[steps - 1] * 1e3, steps, warm);
    printf("  throughput %.0f tokens/s (training: forward + backward + AdamW)\n", tps);
    if (jobs_n > 1) printf("  aggregate  %.0f tokens/s over %d concurrent runs on one device\n", agg, jobs_n);
    if (c.backend == BACKEND_CPU && jobs_n == 1)
        printf("  GEMM       %.0f%% of step time, %.1f GFLOP/s inside GEMM calls (%.0f%% of the %s GEMM's 1024^3 peak "
               "%.1f GFLOP/s);\n"
               "             whole step %.1f GFLOP/s of GEMM work\n",
               100 * share, gemm_rate, 100 * gemm_rate / peak, rb_gemm_path(), peak, gflops);
    if (shapes && jobs[0].profile != 2)
        fprintf(stderr, "recallbench: bench --gemm-shapes: the cpu backend with -j 1 only; no table\n");
    if (jobs[0].profile == 2) {
        GemmShape sh[4 * RB_GEMM_SHAPES];
        int ns = rb_gemm_shapes_merge(sh, 4 * RB_GEMM_SHAPES);
        qsort(sh, ns, sizeof *sh, cmp_shape_time);
        double cum = 0;
        printf("  GEMM calls by shape (thread-seconds over %d profiled steps; %d shapes):\n"
               "      M      N      K  ta tb  calls/step    us/call  GFLOP/s   share   cum\n", steps, ns);
        for (int i = 0; i < ns; i++) {
            cum += sh[i].seconds;
            printf("  %5d  %5d  %5d   %d  %d  %10.1f %10.2f %8.1f  %5.1f%% %5.1f%%\n", sh[i].M, sh[i].N, sh[i].K, sh[i].ta,
                   sh[i].tb, (double)sh[i].calls / steps, 1e6 * sh[i].seconds / sh[i].calls,
                   2.0 * sh[i].M * sh[i].N * sh[i].K * sh[i].calls / sh[i].seconds / 1e9, 100 * sh[i].seconds / gemm_s,
                   100 * cum / gemm_s);
        }
    }
    char json[4096];
    config_json(&c, json, sizeof json);
    // A measurement that cannot be recorded is a failure (exit 1): CI must not take it for a logged bench.
    int rc = 0;
    Store *st = store_open(c.db, err, sizeof err);
    if (!st) { fprintf(stderr, "recallbench: bench not logged: %s\n", err); rc = EXIT_RUNTIME; }
    else {
        if (store_log_bench(st, json, c.backend == BACKEND_CUDA ? "cuda" : "cpu", threads, jobs_n > 1 ? agg : tps, share,
                            git_revision(), host_name())) {
            fprintf(stderr, "recallbench: bench not logged: %s\n", store_errmsg(st));
            rc = EXIT_RUNTIME;
        }
        store_close(st);
    }
    if (c.json)
        printf("{\"tokens_per_s\": %.1f, \"backend\": \"%s\", \"device\": \"%s\", \"threads\": %d, \"jobs\": %d, "
               "\"aggregate_tokens_per_s\": %.1f, \"step_ms\": %.3f, \"gemm_share\": %.4f, "
               "\"gemm_gflops\": %.2f, \"peak_gflops\": %.2f, \"gemm_path\": \"%s\", \"git_rev\": \"%s\"}\n",
               tps, c.backend == BACKEND_CUDA ? "cuda" : "cpu", device, threads, jobs_n, jobs_n > 1 ? agg : tps,
               med * 1e3, share, gemm_rate, peak, rb_gemm_path(), git_revision());
    for (int j = 0; j < jobs_n; j++) free(jobs[j].times);
    free(jobs); free(pos); free(tgt);
    pthread_barrier_destroy(&bar);
    dataset_free(ds);
    return rc;
}
