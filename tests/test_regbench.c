// test_regbench.c — checks the RegBench generator (tasks.md "RegBench"): PFA shape, acceptance,
// minimisation, truth supports, instance statistics, the in-context n-gram baselines, determinism.
// Depends on tasks/task.h, tasks/regbench_internal.h (rb_tasks).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "regbench_internal.h"

static int fails;
static void check(const char *name, int ok, double val, double tol) {
    printf("%s %s %.6g %.6g\n", ok ? "PASS" : "FAIL", name, val, tol);
    fails += !ok;
}

// Shape of a sampled (unminimised) PFA: tasks.md steps 1-2.
static int pfa_shape_errors(const Pfa *p) {
    int bad = p->n < 4 || p->n > 12;
    uint32_t alpha = 0;
    for (int s = 0; s < p->n; s++) {
        int deg = 0;
        char hit[RB_MAX_STATES] = {0};
        for (int v = 0; v < RB_VOCAB; v++) {
            int q = p->next[s][v];
            if (q < 0) continue;
            bad += v < 1 || v > RB_LETTERS || q == s || q >= p->n || hit[q]++;  // letters, no loops, distinct targets
            deg++; alpha |= 1u << v;
        }
        bad += deg < 1 || deg > 3;
    }
    int A = __builtin_popcount(alpha);
    bad += A > 18;  // the alphabet (4..18 letters) is a superset of the used letters
    return bad;
}

int main(void) {
    Rng r;
    const int N = 2000;
    Split sp;
    Pfa *orig = malloc(N * sizeof *orig), *min = malloc(N * sizeof *min);
    rng_seed_stream(&r, 1, 200);
    int rc = regbench_generate_ex(&sp, N, &r, orig, min);
    check("generate", rc == 0 && sp.n == N, rc, 0);

    // 1. Shapes, inputs/targets consistency, strings accepted by both automata, supports.
    long shape = 0, cons = 0, rejected = 0, strings = 0, badlen = 0, badcount = 0, supp = 0, nextin = 0,
         padbad = 0, scored = 0, maxlen = 0;
    double qsum_err = 0, states_o = 0, states_m = 0;
    int32_t tok[1024];
    for (int e = 0; e < N; e++) {
        shape += pfa_shape_errors(&orig[e]);
        states_o += orig[e].n; states_m += min[e].n;
        shape += min[e].n > orig[e].n;
        const int32_t *in = sp.inputs + (size_t)e * sp.L, *tg = sp.targets + (size_t)e * sp.L;
        const uint32_t *al = sp.allowed + (size_t)e * sp.L;
        int len = sp.lengths[e];
        if (len > maxlen) maxlen = len;
        // Rebuild the instance: tokens[0..len] = inputs, then the last target (a letter).
        for (int t = 0; t < len; t++) tok[t] = in[t];
        tok[len] = tg[len - 1];
        cons += tok[len] < 1 || tok[0] == RB_SEP;  // no '|' at either end
        for (int t = 0; t + 1 < len; t++)
            cons += tg[t] != (in[t + 1] == RB_SEP ? -1 : in[t + 1]);
        for (int t = len; t < sp.L; t++) padbad += in[t] != RB_PAD || tg[t] != -1 || al[t] != 0;
        int start = 0, nstr = 0, so = 0;
        for (int t = 0; t <= len + 1; t++) {  // len + 1 tokens
            if (t == len + 1 || tok[t] == RB_SEP) {
                int n = t - start;
                badlen += n < 1 || n > 49;
                rejected += !rb_pfa_accepts(&orig[e], tok + start, n) + !rb_pfa_accepts(&min[e], tok + start, n);
                nstr++; start = t + 1;
            }
        }
        strings += nstr;
        badcount += nstr < 10 || nstr > 19;
        // Truth support at input t: the ORIGINAL automaton's out-letters after the current string's
        // prefix through input t (independent of the minimised one the generator uses).
        for (int t = 0; t < len; t++) {
            if (in[t] == RB_SEP) so = 0;
            else if (so >= 0) so = orig[e].next[so][in[t]];
            uint32_t want = so >= 0 ? rb_pfa_out(&orig[e], so) : 0;
            supp += al[t] != want || (al[t] & ~0x7fffeu) || al[t] == 0;  // letters only, never empty
            double q = 0;
            int na = __builtin_popcount(al[t]);
            for (int v = 0; v < RB_VOCAB; v++) q += (al[t] >> v & 1u) ? 1.0 / na : 0.0;
            qsum_err = fmax(qsum_err, fabs(q - 1));
            if (tg[t] >= 0) nextin += !(al[t] >> tg[t] & 1u);  // the next letter has mass
            scored++;
        }
    }
    check("pfa_shapes(states 4..12, degree 1..3, no loops, distinct targets)", shape == 0, shape, 0);
    printf("  mean states: sampled %.3f, minimised+trimmed %.3f\n", states_o / N, states_m / N);
    check("inputs_targets_consistent", cons == 0, cons, 0);
    check("padding(pad 0, target -1, allowed 0)", padbad == 0 && sp.L == maxlen, padbad, 0);
    check("string_lengths_1_49", badlen == 0, badlen, 0);
    check("strings_per_instance_10_19", badcount == 0, badcount, 0);
    printf("  strings checked: %ld\n", strings);
    check("strings_accepted_by_pfa_and_minimised", rejected == 0, rejected, 0);
    check("allowed_equals_original_pfa_support", supp == 0, supp, 0);
    check("truth_sums_to_1_over_letters", qsum_err < 1e-12, qsum_err, 1e-12);
    check("next_letter_in_support", nextin == 0, nextin, 0);

    // 2. Minimisation preserves the language: random short strings over the letters, and walks of
    // the original with one letter changed; accepted by the original iff by the minimised.
    {
        long agree_bad = 0, acc = 0, rej = 0, remin = 0;
        Rng q;
        rng_seed(&q, 77);
        for (int e = 0; e < N; e++) {
            uint32_t alpha = 0;
            for (int s = 0; s < orig[e].n; s++) alpha |= rb_pfa_out(&orig[e], s);
            int letters[18], A = 0;
            for (int v = 1; v <= 18; v++) if (alpha >> v & 1u) letters[A++] = v;
            for (int k = 0; k < 100; k++) {
                int32_t w[12];
                int n = rng_range(&q, 1, 12);
                if (k % 2 == 0) {
                    for (int i = 0; i < n; i++) w[i] = letters[rng_below(&q, (uint64_t)A)];
                } else {  // a walk of the original, then one position changed
                    int s = 0;
                    for (int i = 0; i < n; i++) {
                        uint32_t o = rb_pfa_out(&orig[e], s);
                        int c = (int)rng_below(&q, (uint64_t)__builtin_popcount(o)), v = 0;
                        for (v = 1; ; v++) if ((o >> v & 1u) && c-- == 0) break;
                        w[i] = v; s = orig[e].next[s][v];
                    }
                    w[rng_below(&q, (uint64_t)n)] = letters[rng_below(&q, (uint64_t)A)];
                }
                int a = rb_pfa_accepts(&orig[e], w, n), b = rb_pfa_accepts(&min[e], w, n);
                agree_bad += a != b; acc += a; rej += !a;
            }
            Pfa again;  // minimal already: minimising again changes nothing
            rb_pfa_minimise(&min[e], &again);
            remin += again.n != min[e].n || memcmp(&again, &min[e], sizeof again);
        }
        printf("  language check: %ld accepted, %ld rejected strings\n", acc, rej);
        check("minimised_same_language", agree_bad == 0 && acc > 1000 && rej > 1000, agree_bad, 0);
        check("minimise_idempotent", remin == 0, remin, 0);
        // A hand case: 1 and 2 are equivalent (same letter to the same state), 4 is unreachable.
        Pfa h, m;
        memset(&h, -1, sizeof h);
        h.n = 5;
        h.next[0][1] = 1; h.next[0][2] = 2; h.next[1][3] = 3; h.next[2][3] = 3; h.next[3][4] = 0;
        h.next[4][1] = 0;
        rb_pfa_minimise(&h, &m);
        check("hand_case_merges_and_trims(4 states)", m.n == 3 && m.next[0][1] == m.next[0][2], m.n, 3);
    }

    // 3. Mean input length. Tokens = sum over m ~ U{10..19} strings of (len ~ U{1..49}) plus m-1
    // separators; inputs = tokens - 1. E = 14.5 * 26 - 2 = 375; Var(tokens) = E[m] Var(len+1) +
    // Var(m) E[len+1]^2 = 14.5 * 200 + 8.25 * 676 = 8477 (sd 92.07). Tolerance: 4 standard errors.
    {
        double sum = 0, ss = 0;
        for (int e = 0; e < N; e++) { sum += sp.lengths[e]; ss += (double)sp.lengths[e] * sp.lengths[e]; }
        double mean = sum / N, sd = sqrt(ss / N - mean * mean), tol = 4 * sqrt(8477.0 / N);
        printf("  input length: mean %.2f sd %.2f (theory 375, sd 92.07) over %d instances\n", mean, sd, N);
        check("mean_input_length_375", fabs(mean - 375) < tol, mean, tol);
    }

    // 4. In-context n-gram baselines. A hand case first (tokens a b | a b | a b, allowed chosen so
    // that both orders predict a,a,a,b,a,a,b: 6 of 7 right, TVD (1 + .5 + .5) / 7).
    {
        int32_t in[7] = {1, 2, 19, 1, 2, 19, 1}, tg[7] = {2, -1, 1, 2, -1, 1, 2}, len = 7;
        uint32_t al[7] = {1u << 2, 1u << 1, 1u << 1, 1u << 2, 1u << 1, 1u << 1, 1u << 2};
        Split h = {.n = 1, .L = 7, .inputs = in, .targets = tg, .lengths = &len, .allowed = al};
        for (int o = 2; o <= 3; o++) {
            double acc, tvd;
            regbench_ngram(&h, o, &acc, &tvd);
            char name[64];
            snprintf(name, sizeof name, "ngram%d_hand_case", o);
            check(name, fabs(acc - 6.0 / 7) < 1e-12 && fabs(tvd - 2.0 / 7) < 1e-12,
                  fabs(acc - 6.0 / 7) + fabs(tvd - 2.0 / 7), 1e-12);
        }
        double a2, t2, a3, t3;
        regbench_ngram(&sp, 2, &a2, &t2);
        regbench_ngram(&sp, 3, &a3, &t3);
        printf("  2-gram: accuracy %.4f TVD %.4f; 3-gram: accuracy %.4f TVD %.4f (%ld positions)\n",
               a2, t2, a3, t3, scored);
        check("ngram3_accuracy_in_0.90_0.96", a3 >= 0.90 && a3 <= 0.96, a3, 0.03);
        check("ngram2_below_ngram3", a2 < a3, a2, a3);
        check("ngram_tvd_in_0_1", t2 > 0 && t2 < 1 && t3 > 0 && t3 < 1, t3, 1);
    }

    // 5. Determinism and the Dataset wrapper: same seed same bytes, other seed other bytes.
    {
        TaskParams tp;
        memset(&tp, 0, sizeof tp);
        tp.task = TASK_REGBENCH; tp.train_automata = 300; tp.test_automata = 100;
        char err[256];
        check("validate_ok", task_validate(&tp, err, sizeof err) == 0, 0, 0);
        Dataset *a = task_generate(&tp, 5), *b = task_generate(&tp, 5), *c = task_generate(&tp, 6);
        int same = a->train->L == b->train->L &&
                   !memcmp(a->train->inputs, b->train->inputs, (size_t)300 * a->train->L * 4) &&
                   !memcmp(a->train->allowed, b->train->allowed, (size_t)300 * a->train->L * 4) &&
                   !memcmp(a->test->targets, b->test->targets, (size_t)100 * a->test->L * 4);
        check("same_seed_same_bytes", same, !same, 0);
        int differ = a->train->L != c->train->L ||
                     memcmp(a->train->inputs, c->train->inputs, (size_t)300 * a->train->L * 4);
        check("other_seed_other_bytes", differ, !differ, 0);
        check("splits_labels_vocab", a->n_train == 1 && a->n_test == 1 && !strcmp(a->train->label, "train") &&
              !strcmp(a->test->label, "test") && a->vocab == 20 && a->train->n == 300 && a->test->n == 100, 0, 0);
        dataset_free(a); dataset_free(b); dataset_free(c);
        tp.train_automata = 0;
        int rc2 = task_validate(&tp, err, sizeof err);
        check("rejects_train_automata_0", rc2 == -1 && strstr(err, "--train-automata 0") && !strchr(err, '\n'), rc2, -1);
        printf("  message: %s\n", err);
        tp.train_automata = 10; tp.test_automata = -1;
        rc2 = task_validate(&tp, err, sizeof err);
        check("rejects_test_automata_-1", rc2 == -1 && strstr(err, "--test-automata -1"), rc2, -1);
    }
    split_free(&sp);
    free(orig); free(min);
    return fails ? 1 : 0;
}
