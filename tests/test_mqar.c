// test_mqar.c — checks the MQAR generator against tasks.md / zoology's multiquery_ar: layout, value
// placement, the random fill's exact semantics, preconditions, the gap law, determinism, accuracy.
// Depends on tasks/task.h (rb_tasks).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "task.h"

static int fails;
static void check(const char *name, int ok, double val, double tol) {
    printf("%s %s %.6g %.6g\n", ok ? "PASS" : "FAIL", name, val, tol);
    fails += !ok;
}
static double chi2_crit(int df, double z) {  // Wilson-Hilferty; z = 3.719 is p = 1e-4
    double h = 2.0 / (9.0 * df);
    return df * pow(1 - h + z * sqrt(h), 3);
}

// Chi-square of counts against probabilities p[0..S); tail bins merged until expected >= 5.
static void chi2(const long *cnt, const double *p, int S, long N, double *x, int *df) {
    double e = 0, o = 0;
    int bins = 0;
    *x = 0;
    for (int g = 0; g < S; g++) {
        e += p[g] * N; o += cnt[g];
        if (e >= 5 || g == S - 1) {
            if (e > 0) { *x += (o - e) * (o - e) / e; bins++; }
            e = o = 0;
        }
    }
    *df = bins - 1;
}

// Structure of one split generated with the fill off (tasks.md MQAR steps 1-5). Returns violations.
static int structure_errors(const Split *s, int V, int *after) {
    int bad = 0, L = s->L, K = s->K, C = 2 * K, half = V / 2;
    char *seen = calloc((size_t)V, 1);
    for (int e = 0; e < s->n; e++) {
        const int32_t *in = s->inputs + (size_t)e * L, *tg = s->targets + (size_t)e * L;
        memset(seen, 0, (size_t)V);
        for (int i = 0; i < K; i++) {
            int k = in[2 * i], v = in[2 * i + 1];
            bad += k < 1 || k > half - 1 || v < half || v > V - 1;  // disjoint halves
            bad += seen[k]++ != 0;                                   // keys distinct
            bad += seen[v]++ != 0;                                   // values distinct
            bad += tg[2 * i] != -1 || tg[2 * i + 1] != -1;
        }
        int nq = 0;
        for (int t = C; t < L; t++) {
            if (tg[t] < 0) { bad += in[t] != 0; continue; }         // fill off: non-queries are 0
            nq++;
            bad += (t - C) % 2 != 0;                                 // at C + 2g
            int i = 0;
            while (i < K && in[2 * i] != in[t]) i++;
            bad += i == K || tg[t] != in[2 * i + 1];                 // target = the key's value
            for (int u = t + 1; u < L; u++) *after += in[u] == tg[t];  // value after its query
        }
        bad += nq != K;  // each key queried once (keys distinct + K targets)
        bad += s->lengths[e] != L;
    }
    free(seen);
    return bad;
}

static int err_ok(int rc, const char *err, const char *want) {
    return rc == -1 && strstr(err, want) && !strchr(err, '\n') && strstr(err, "out of range");
}

static TaskParams mqar_params(int V, int L, int K, int ntr, int nte) {
    TaskParams tp;
    memset(&tp, 0, sizeof tp);
    tp.task = TASK_MQAR; tp.vocab = V; tp.power_a = 0.01; tp.random_non_queries = 1;
    tp.n_train_mix = tp.n_test_mix = 1;
    tp.train_mix[0] = (MqarMix){L, K, ntr};
    tp.test_mix[0] = (MqarMix){L, K, nte};
    return tp;
}

int main(void) {
    Rng r;
    char name[128], err[256];
    // 1. Layout and value placement with the fill off, over the figure-2 and frontier shapes.
    int cfg[][3] = {{8192, 64, 4}, {8192, 256, 16}, {8192, 128, 32}, {8192, 1024, 256}, {100, 64, 16}};
    for (int c = 0; c < 5; c++) {
        Split s;
        rng_seed(&r, 11 + c);
        int rc = mqar_generate(&s, 300, cfg[c][0], cfg[c][1], cfg[c][2], 0.01, 0, &r), after = 0;
        int bad = rc ? -1 : structure_errors(&s, cfg[c][0], &after);
        snprintf(name, sizeof name, "structure_V%d_L%d_K%d", cfg[c][0], cfg[c][1], cfg[c][2]);
        check(name, rc == 0 && bad == 0, bad, 0);
        snprintf(name, sizeof name, "value_not_after_query_V%d_L%d_K%d", cfg[c][0], cfg[c][1], cfg[c][2]);
        check(name, after == 0, after, 0);
        split_free(&s);
    }

    // 2. The random fill (zoology: inputs[inputs == 0] = randint(V) after the structure). Same seed,
    // fill on vs off: identical except where off has 0; targets identical; fill uniform on [0, V),
    // so it may draw a value after its query, at the rate that uniform fill predicts.
    {
        int V = 80, L = 64, K = 4, n = 20000;
        Split off, on;
        rng_seed(&r, 5); mqar_generate(&off, n, V, L, K, 0.01, 0, &r);
        rng_seed(&r, 5); mqar_generate(&on, n, V, L, K, 0.01, 1, &r);
        long bad = 0, filled = 0, zeros = 0, hits = 0;
        double expect = 0;
        for (size_t i = 0; i < (size_t)n * L; i++) {
            bad += on.targets[i] != off.targets[i];
            if (off.inputs[i] != 0) bad += on.inputs[i] != off.inputs[i];
            else { filled++; bad += on.inputs[i] < 0 || on.inputs[i] >= V; zeros += on.inputs[i] == 0; }
        }
        check("fill_only_changes_zero_positions", bad == 0, (double)bad, 0);
        double ez = (double)filled / V;
        check("fill_draws_token_0_too(count vs filled/V)", fabs(zeros - ez) < 5 * sqrt(ez), zeros, ez);
        for (int e = 0; e < n; e++) {
            const int32_t *in = on.inputs + (size_t)e * L, *tg = on.targets + (size_t)e * L;
            for (int t = 0; t < L; t++) {
                if (tg[t] < 0) continue;
                for (int u = t + 1; u < L; u++) {
                    if (off.inputs[(size_t)e * L + u] != 0) continue;  // only filled positions
                    hits += in[u] == tg[t];
                    expect += 1.0 / V;
                }
            }
        }
        snprintf(name, sizeof name, "fill_value_after_query_rate(expected %.1f)", expect);
        check(name, fabs(hits - expect) < 5 * sqrt(expect) + 1, hits, 5 * sqrt(expect) + 1);
        split_free(&off); split_free(&on);
    }

    // 3. Preconditions: each rejected with one line naming the flag.
    {
        struct { int V, L, K; const char *want; } bad[] = {
            {8192, 63, 4, "--seq-len 63"}, {8192, 0, 1, "--seq-len 0"}, {8192, 64, 0, "--kv-pairs 0"},
            {8192, 64, 17, "--kv-pairs 17"}, {64, 64, 4, "--vocab 64"}, {8192, 8192, 4, "--vocab 8192"},
        };
        for (int i = 0; i < 6; i++) {
            int rc = mqar_check(bad[i].V, bad[i].L, bad[i].K, err, sizeof err);
            snprintf(name, sizeof name, "rejects_V%d_L%d_K%d", bad[i].V, bad[i].L, bad[i].K);
            check(name, err_ok(rc, err, bad[i].want), rc, -1);
            printf("  message: %s\n", err);
            Split s;
            rng_seed(&r, 1);
            snprintf(name, sizeof name, "generate_refuses_V%d_L%d_K%d", bad[i].V, bad[i].L, bad[i].K);
            check(name, mqar_generate(&s, 2, bad[i].V, bad[i].L, bad[i].K, 0.01, 1, &r) == -1, 0, 0);
        }
        // K <= V/2 - 1 cannot fail once V > L and 4K <= L (then K <= L/4 <= L/2 - 1 <= V/2 - 1); it is
        // still checked, after those.
        check("accepts_edge_V5_L4_K1", mqar_check(5, 4, 1, err, sizeof err) == 0, 0, 0);
        TaskParams tp = mqar_params(8192, 128, 40, 100, 10);
        int rc = task_validate(&tp, err, sizeof err);
        check("validate_kv_pairs_message", rc == -1 && !strcmp(err,
              "--kv-pairs 40 out of range: need 4*K <= --seq-len (128), i.e. K <= 32"), rc, -1);
        printf("  message: %s\n", err);
        tp = mqar_params(8192, 64, 4, 0, 10);
        check("validate_train_examples", err_ok(task_validate(&tp, err, sizeof err), err, "--train-examples 0"), 0, 0);
        printf("  message: %s\n", err);
        tp = mqar_params(8192, 64, 4, 10, 0);
        check("validate_test_examples", err_ok(task_validate(&tp, err, sizeof err), err, "--test-examples 0"), 0, 0);
        double as[] = {0, -0.5, 1.5, NAN};
        for (int i = 0; i < 4; i++) {
            tp = mqar_params(8192, 64, 4, 10, 10);
            tp.power_a = as[i];
            snprintf(name, sizeof name, "validate_power_a_%g", as[i]);
            check(name, err_ok(task_validate(&tp, err, sizeof err), err, "--power-a"), 0, 0);
        }
        printf("  message: %s\n", err);
        tp = mqar_params(8192, 64, 4, 10, 10);
        tp.power_a = 1.0;
        check("validate_accepts_power_a_1", task_validate(&tp, err, sizeof err) == 0, 0, 0);
        tp.n_train_mix = 3;
        tp.train_mix[1] = (MqarMix){128, 8, 20};
        tp.train_mix[2] = (MqarMix){256, 80, 1000};
        check("validate_mix_entry", err_ok(task_validate(&tp, err, sizeof err), err,
              "--train-mix entry 3 (256:80:1000): K 80"), 0, 0);
        printf("  message: %s\n", err);
        tp.train_mix[2] = (MqarMix){256, 64, 1000};
        tp.n_test_mix = 2;
        tp.test_mix[1] = (MqarMix){512, 128, 0};
        check("validate_mix_count", err_ok(task_validate(&tp, err, sizeof err), err,
              "--test-mix entry 2 (512:128:0): count 0"), 0, 0);
        printf("  message: %s\n", err);
        tp.n_test_mix = 0;
        check("validate_empty_mix", task_validate(&tp, err, sizeof err) == -1 && strstr(err, "--test-mix"), 0, 0);
        tp = mqar_params(8192, 64, 4, 10, 10);
        tp.task = 7;
        check("validate_task", err_ok(task_validate(&tp, err, sizeof err), err, "--task"), 0, 0);
    }

    // 4. Gap law (tasks.md step 3): weights w_g = a (g+1)^(a-1), g in [0, S), drawn without
    // replacement. The first draw (key 0's gap; K = 1 is the whole process) has pmf p = w / sum w;
    // the second has P(j) = sum_{i != j} p_i p_j / (1 - p_i). 100k examples each.
    {
        int L = 64, N = 100000;
        double as[] = {0.01, 0.5};
        for (int ai = 0; ai < 2; ai++)
            for (int K = 1; K <= 4; K += 3) {
                int S = (L - 2 * K) / 2;
                double a = as[ai], p[64], p2[64], tot = 0;
                for (int g = 0; g < S; g++) tot += p[g] = a * pow(g + 1.0, a - 1);
                for (int g = 0; g < S; g++) p[g] /= tot;
                for (int j = 0; j < S; j++) {
                    p2[j] = 0;
                    for (int i = 0; i < S; i++) if (i != j) p2[j] += p[i] * p[j] / (1 - p[i]);
                }
                long c1[64] = {0}, c2[64] = {0};
                rng_seed(&r, 1000 + K + ai);
                for (int done = 0; done < N; done += 10000) {
                    Split s;
                    mqar_generate(&s, 10000, 8192, L, K, a, 0, &r);
                    for (int e = 0; e < s.n; e++) {
                        const int32_t *in = s.inputs + (size_t)e * L, *tg = s.targets + (size_t)e * L;
                        for (int t = 2 * K; t < L; t++) {
                            if (tg[t] < 0) continue;
                            int g = (t - 2 * K) / 2;
                            if (in[t] == in[0]) c1[g]++;
                            if (K > 1 && in[t] == in[2]) c2[g]++;
                        }
                    }
                    split_free(&s);
                }
                double x; int df;
                chi2(c1, p, S, N, &x, &df);
                snprintf(name, sizeof name, "gap_chi2_first_draw_a%g_K%d(df=%d)", a, K, df);
                check(name, x < chi2_crit(df, 3.719), x, chi2_crit(df, 3.719));
                if (K > 1) {
                    chi2(c2, p2, S, N, &x, &df);
                    snprintf(name, sizeof name, "gap_chi2_second_draw_a%g_K%d(df=%d)", a, K, df);
                    check(name, x < chi2_crit(df, 3.719), x, chi2_crit(df, 3.719));
                    // Must be able to fail: the second draw does not follow the first-draw pmf.
                    chi2(c2, p, S, N, &x, &df);
                    snprintf(name, sizeof name, "gap_chi2_second_vs_wrong_pmf_a%g_rejected(df=%d)", a, df);
                    check(name, a > 0.1 || x > chi2_crit(df, 3.719), x, chi2_crit(df, 3.719));  // a = 0.5: too close to tell
                }
            }
    }

    // 5. Determinism: same seed same bytes, other seed other bytes; adding a test configuration
    // leaves the others' data unchanged (one stream per entry).
    {
        TaskParams tp = mqar_params(8192, 256, 16, 500, 100);
        Dataset *a = task_generate(&tp, 3), *b = task_generate(&tp, 3), *c = task_generate(&tp, 4);
        size_t nb = (size_t)500 * 256 * sizeof(int32_t);
        int same = !memcmp(a->train[0].inputs, b->train[0].inputs, nb) &&
                   !memcmp(a->train[0].targets, b->train[0].targets, nb);
        check("same_seed_same_bytes", same, !same, 0);
        int differ = memcmp(a->train[0].inputs, c->train[0].inputs, nb) != 0;
        check("other_seed_other_bytes", differ, !differ, 0);
        check("train_test_differ", memcmp(a->train[0].inputs, a->test[0].inputs, (size_t)100 * 256 * 4) != 0, 0, 0);
        check("label", !strcmp(a->test[0].label, "L=256,K=16") && a->vocab == 8192, 0, 0);
        tp.n_test_mix = 2;
        tp.test_mix[1] = (MqarMix){64, 4, 50};
        Dataset *d = task_generate(&tp, 3);
        int kept = d && d->n_test == 2 && !memcmp(a->test[0].inputs, d->test[0].inputs, (size_t)100 * 256 * 4)
                   && !memcmp(a->train[0].inputs, d->train[0].inputs, nb);
        check("added_test_config_keeps_others", kept, !kept, 0);
        dataset_free(a); dataset_free(b); dataset_free(c); dataset_free(d);
    }

    // 6. Accuracy: per example fraction of queries right, then mean over examples.
    {
        Split s;
        rng_seed(&r, 9);
        mqar_generate(&s, 50, 8192, 64, 4, 0.01, 1, &r);
        size_t nl = (size_t)s.n * s.L;
        int32_t *pred = malloc(nl * sizeof *pred);
        memcpy(pred, s.targets, nl * sizeof *pred);
        double a1 = mqar_accuracy(&s, pred);
        for (size_t i = 0; i < nl; i++) pred[i] = 0;
        double a0 = mqar_accuracy(&s, pred);
        // Right on the first query of every example and on all queries of example 0:
        // (1 + 49 * 1/4) / 50.
        for (int e = 0; e < s.n; e++) {
            int first = 1;
            for (int t = 0; t < s.L; t++) {
                size_t i = (size_t)e * s.L + t;
                if (s.targets[i] >= 0 && (first || e == 0)) { pred[i] = s.targets[i]; first = 0; }
            }
        }
        double ah = mqar_accuracy(&s, pred), want = (1 + 49 * 0.25) / 50;
        check("accuracy_all_right", fabs(a1 - 1) < 1e-12, a1, 1e-12);
        check("accuracy_all_wrong", fabs(a0) < 1e-12, a0, 1e-12);
        check("accuracy_mixed", fabs(ah - want) < 1e-12, ah, want);
        free(pred); split_free(&s);
    }
    return fails ? 1 : 0;
}
