// mqar.c — multi-query associative recall (tasks.md "MQAR", after zoology's multiquery_ar) and its
// accuracy. Depends on task.h, rng.h.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "task.h"

// Partial Fisher-Yates: the first k entries of pool become a uniform ordered k-subset. The pool is
// not reset between examples; any arrangement of it gives the same distribution.
static void draw_distinct(int *pool, int m, int k, Rng *r) {
    for (int i = 0; i < k; i++) {
        int j = i + (int)rng_below(r, (uint64_t)(m - i)), t = pool[i];
        pool[i] = pool[j]; pool[j] = t;
    }
}

// K distinct gaps from [0, S) drawn one after another without replacement, each draw with
// probability proportional to the remaining weights w (tasks.md MQAR step 3). This is the process
// numpy's choice(replace=False, p=w/sum) realises: first draw ~ w, the next ~ w renormalised over
// the rest, and so on. rem is scratch [S].
static void draw_gaps(int *gaps, int K, const double *w, double *rem, int S, Rng *r) {
    memcpy(rem, w, (size_t)S * sizeof *rem);
    for (int i = 0; i < K; i++) {
        double tot = 0;
        for (int g = 0; g < S; g++) tot += rem[g];
        double u = rng_uniform(r) * tot, cum = 0;
        int pick = -1, last = -1;
        for (int g = 0; g < S; g++) {
            if (rem[g] <= 0) continue;
            last = g;
            cum += rem[g];
            if (cum > u) { pick = g; break; }
        }
        if (pick < 0) pick = last;  // u landed past the summed total by rounding
        gaps[i] = pick;
        rem[pick] = 0;
    }
}

int mqar_generate(Split *s, int n, int V, int L, int K, double power_a, int random_non_queries, Rng *r) {
    char err[256];
    memset(s, 0, sizeof *s);
    if (n < 1 || mqar_check(V, L, K, err, sizeof err) || !(power_a > 0 && power_a <= 1)) return -1;
    int C = 2 * K, S = (L - C) / 2, half = V / 2;  // keys [1, half), values [half, V)
    size_t nl = (size_t)n * (size_t)L;
    s->n = n; s->L = L; s->K = K;
    s->inputs = malloc(nl * sizeof(int32_t));
    s->targets = malloc(nl * sizeof(int32_t));
    s->lengths = malloc((size_t)n * sizeof(int32_t));
    int *kpool = malloc((size_t)(half - 1) * sizeof(int)), *vpool = malloc((size_t)(V - half) * sizeof(int));
    int *gaps = malloc((size_t)K * sizeof(int));
    double *w = malloc((size_t)S * sizeof(double)), *rem = malloc((size_t)S * sizeof(double));
    if (!s->inputs || !s->targets || !s->lengths || !kpool || !vpool || !gaps || !w || !rem) {
        free(kpool); free(vpool); free(gaps); free(w); free(rem);
        split_free(s);
        return -1;
    }
    snprintf(s->label, sizeof s->label, "L=%d,K=%d", L, K);
    for (int i = 0; i < half - 1; i++) kpool[i] = 1 + i;
    for (int i = 0; i < V - half; i++) vpool[i] = half + i;
    // zoology: p = a * arange(1, S+1)^(a-1), i.e. gap g has weight a*(g+1)^(a-1).
    for (int g = 0; g < S; g++) w[g] = power_a * pow((double)(g + 1), power_a - 1);

    // Pass 1: the structure of every example (keys, values, gaps), all fill positions 0.
    for (int e = 0; e < n; e++) {
        int32_t *in = s->inputs + (size_t)e * L, *tg = s->targets + (size_t)e * L;
        draw_distinct(kpool, half - 1, K, r);
        draw_distinct(vpool, V - half, K, r);
        draw_gaps(gaps, K, w, rem, S, r);
        memset(in, 0, (size_t)L * sizeof *in);
        for (int t = 0; t < L; t++) tg[t] = -1;
        for (int i = 0; i < K; i++) {
            in[2 * i] = kpool[i];
            in[2 * i + 1] = vpool[i];
            in[C + 2 * gaps[i]] = kpool[i];   // the query; its target is the value
            tg[C + 2 * gaps[i]] = vpool[i];
        }
        s->lengths[e] = L;
    }
    // Pass 2 (zoology: inputs[inputs == 0] = randint(V) after all examples are built): every input
    // 0 becomes a uniform token from [0, V). The fill may draw any token, a key or a value included
    // (even the value of a later query); those positions are never scored. Kept as a separate pass
    // so that a run with the fill on equals the run with it off except at the filled positions.
    if (random_non_queries)
        for (size_t i = 0; i < nl; i++)
            if (s->inputs[i] == 0) s->inputs[i] = (int32_t)rng_below(r, (uint64_t)V);
    free(kpool); free(vpool); free(gaps); free(w); free(rem);
    return 0;
}

double mqar_accuracy(const Split *s, const int32_t *pred) {
    double sum = 0;
    int m = 0;
    for (int e = 0; e < s->n; e++) {
        const int32_t *tg = s->targets + (size_t)e * s->L, *p = pred + (size_t)e * s->L;
        int hit = 0, tot = 0;
        for (int t = 0; t < s->lengths[e]; t++)
            if (tg[t] >= 0) { tot++; hit += p[t] == tg[t]; }
        if (tot) { sum += (double)hit / tot; m++; }  // examples with nothing scored do not count
    }
    return m ? sum / m : 0.0;
}
