// regbench.c — RegBench (tasks.md "RegBench"): random PFAs, minimisation, instances with per-position
// truth supports, and the in-context n-gram baseline. Depends on task.h, rng.h, regbench_internal.h.
#include <stdlib.h>
#include <string.h>
#include "regbench_internal.h"

enum { RB_MAX_STRINGS = 19, RB_MAX_STRLEN = 49 };

static void shuffle_prefix(int *a, int m, int k, Rng *r) {  // first k of a: uniform ordered k-subset
    for (int i = 0; i < k; i++) {
        int j = i + (int)rng_below(r, (uint64_t)(m - i)), t = a[i];
        a[i] = a[j]; a[j] = t;
    }
}

void rb_pfa_sample(Pfa *p, Rng *r) {
    memset(p, -1, sizeof *p);
    p->n = rng_range(r, 4, RB_MAX_STATES);
    int letters[RB_LETTERS], A = rng_range(r, 4, RB_LETTERS);
    for (int i = 0; i < RB_LETTERS; i++) letters[i] = 1 + i;
    shuffle_prefix(letters, RB_LETTERS, A, r);  // alphabet = letters[0..A)
    for (int s = 0; s < p->n; s++) {
        int k = rng_range(r, 1, 3), others[RB_MAX_STATES], m = 0;
        for (int q = 0; q < p->n; q++)
            if (q != s) others[m++] = q;  // no self-loops
        shuffle_prefix(letters, A, k, r);
        shuffle_prefix(others, m, k, r);
        for (int i = 0; i < k; i++) p->next[s][letters[i]] = (int8_t)others[i];
    }
}

uint32_t rb_pfa_out(const Pfa *p, int s) {
    uint32_t m = 0;
    for (int v = 1; v <= RB_LETTERS; v++)
        if (p->next[s][v] >= 0) m |= 1u << v;
    return m;
}

int rb_pfa_accepts(const Pfa *p, const int32_t *tok, int n) {
    int s = 0;
    for (int i = 0; i < n; i++) {
        if (tok[i] < 1 || tok[i] > RB_LETTERS || p->next[s][tok[i]] < 0) return 0;
        s = p->next[s][tok[i]];
    }
    return 1;
}

// Keeps the states reachable from 0, renumbered in BFS order (letters in id order).
static void trim(const Pfa *p, Pfa *out) {
    int id[RB_MAX_STATES], order[RB_MAX_STATES], m = 0;
    for (int s = 0; s < p->n; s++) id[s] = -1;
    id[0] = 0; order[m++] = 0;
    for (int h = 0; h < m; h++)
        for (int v = 1; v <= RB_LETTERS; v++) {
            int q = p->next[order[h]][v];
            if (q >= 0 && id[q] < 0) { id[q] = m; order[m++] = q; }
        }
    Pfa o;
    memset(&o, -1, sizeof o);
    o.n = m;
    for (int h = 0; h < m; h++)
        for (int v = 1; v <= RB_LETTERS; v++) {
            int q = p->next[order[h]][v];
            if (q >= 0) o.next[h][v] = (int8_t)id[q];
        }
    *out = o;
}

// Moore refinement: start with one block (all states accept; the missing-edge sink is the only
// rejecting state, block -1) and split by (block, block of each successor) until stable. There are
// no dead states to trim: every state accepts.
void rb_pfa_minimise(const Pfa *p, Pfa *out) {
    Pfa a;
    trim(p, &a);
    int cls[RB_MAX_STATES] = {0}, nc = 1;
    for (;;) {
        int sig[RB_MAX_STATES][RB_VOCAB], ncls[RB_MAX_STATES], m = 0;
        for (int s = 0; s < a.n; s++) {
            sig[s][0] = cls[s];
            for (int v = 1; v <= RB_LETTERS; v++) sig[s][v] = a.next[s][v] < 0 ? -1 : cls[a.next[s][v]];
            ncls[s] = -1;
            for (int q = 0; q < s && ncls[s] < 0; q++)
                if (!memcmp(sig[q], sig[s], sizeof(int) * (RB_LETTERS + 1))) ncls[s] = ncls[q];
            if (ncls[s] < 0) ncls[s] = m++;
        }
        memcpy(cls, ncls, (size_t)a.n * sizeof *cls);
        if (m == nc) break;  // refinement only splits blocks, so an unchanged count means stable
        nc = m;
    }
    Pfa q;
    memset(&q, -1, sizeof q);
    q.n = nc;
    for (int s = 0; s < a.n; s++)  // any member represents its block
        for (int v = 1; v <= RB_LETTERS; v++)
            q.next[cls[s]][v] = a.next[s][v] < 0 ? -1 : (int8_t)cls[a.next[s][v]];
    trim(&q, out);
}

// Appends one instance (tasks.md: U{10..19} strings of length U{1..49}, walked uniformly over the
// outgoing edges, joined by '|') to buf; returns its token count.
static int sample_instance(const Pfa *p, int8_t *buf, Rng *r) {
    int m = rng_range(r, 10, RB_MAX_STRINGS), n = 0;
    for (int j = 0; j < m; j++) {
        if (j) buf[n++] = RB_SEP;
        int len = rng_range(r, 1, RB_MAX_STRLEN), s = 0;
        for (int i = 0; i < len; i++) {
            int opts[3], k = 0;  // out-degree <= 3 survives minimisation (blocks share out-sets)
            for (int v = 1; v <= RB_LETTERS; v++)
                if (p->next[s][v] >= 0) opts[k++] = v;
            int v = opts[rng_below(r, (uint64_t)k)];
            buf[n++] = (int8_t)v;
            s = p->next[s][v];
        }
    }
    return n;
}

int regbench_generate_ex(Split *sp, int n, Rng *r, Pfa *orig, Pfa *min) {
    enum { MAXTOK = RB_MAX_STRINGS * RB_MAX_STRLEN + RB_MAX_STRINGS - 1 };
    memset(sp, 0, sizeof *sp);
    if (n < 1) return -1;
    size_t cap = (size_t)n * 400 + MAXTOK, used = 0;  // ~376 tokens per instance on average
    int8_t *tok = malloc(cap);
    size_t *off = malloc((size_t)(n + 1) * sizeof *off);
    Pfa *mins = malloc((size_t)n * sizeof *mins);
    if (!tok || !off || !mins) goto oom;
    int Lmax = 0;
    for (int e = 0; e < n; e++) {
        Pfa p;
        rb_pfa_sample(&p, r);
        rb_pfa_minimise(&p, &mins[e]);
        if (orig) orig[e] = p;
        if (min) min[e] = mins[e];
        if (used + MAXTOK > cap) {
            int8_t *t2 = realloc(tok, cap * 2);
            if (!t2) goto oom;
            tok = t2; cap *= 2;
        }
        off[e] = used;
        int len = sample_instance(&mins[e], tok + used, r);
        used += (size_t)len;
        if (len - 1 > Lmax) Lmax = len - 1;
    }
    off[n] = used;
    size_t nl = (size_t)n * (size_t)Lmax;
    sp->n = n; sp->L = Lmax; sp->K = 0;
    sp->inputs = calloc(nl, sizeof(int32_t));   // pad = 0
    sp->targets = malloc(nl * sizeof(int32_t));
    sp->allowed = calloc(nl, sizeof(uint32_t)); // 0 = not scored
    sp->lengths = malloc((size_t)n * sizeof(int32_t));
    if (!sp->inputs || !sp->targets || !sp->allowed || !sp->lengths) goto oom;
    for (size_t i = 0; i < nl; i++) sp->targets[i] = -1;
    for (int e = 0; e < n; e++) {
        const int8_t *t = tok + off[e];
        int len = (int)(off[e + 1] - off[e]) - 1, s = 0;
        int32_t *in = sp->inputs + (size_t)e * Lmax, *tg = sp->targets + (size_t)e * Lmax;
        uint32_t *al = sp->allowed + (size_t)e * Lmax;
        sp->lengths[e] = len;
        for (int i = 0; i < len; i++) {
            in[i] = t[i];
            tg[i] = t[i + 1] == RB_SEP ? -1 : t[i + 1];  // '|' is not in the loss
            // Truth support after reading the current string through input i ('|' restarts it).
            s = t[i] == RB_SEP ? 0 : mins[e].next[s][t[i]];
            al[i] = rb_pfa_out(&mins[e], s);
        }
    }
    free(tok); free(off); free(mins);
    return 0;
oom:
    free(tok); free(off); free(mins);
    split_free(sp);
    return -1;
}

int regbench_generate(Split *s, int n, Rng *r) { return regbench_generate_ex(s, n, r, NULL, NULL); }

// In-context n-gram with back-off, per instance from its own prefix only. Design choices:
// - Contexts live inside the current string: a string starts with (order-1) BOS markers, as
//   seq_icl's ngram.py pads each string with '_'; so right after a '|' the 2-gram predicts from the
//   counts of string-initial letters seen so far.
// - Only letters are counted and predicted: the truth never gives '|' mass (no stop symbol), so the
//   baseline puts none there; the letter -> '|' events are not counted.
// - Back-off: the longest context seen before with a following letter gives the maximum-likelihood
//   distribution over its observed next letters; else the next shorter; finally the unigram of the
//   prefix's letters (never empty: input 0 is a letter).
// - Ties of the argmax go to the lowest token id (torch.argmax's first maximum).
void regbench_ngram(const Split *sp, int order, double *accuracy, double *tvd) {
    enum { B = RB_LETTERS + 1 };  // context symbols: 0 = BOS, 1..18 letters
    if (order < 1) order = 1;
    if (order > 3) order = 3;
    int c3[B][B][B], c2[B][B], u[B];  // ~27 KB on the stack; reset per instance
    long scored = 0;
    double hits = 0, tv = 0;
    for (int e = 0; e < sp->n; e++) {
        const int32_t *in = sp->inputs + (size_t)e * sp->L;
        const uint32_t *al = sp->allowed + (size_t)e * sp->L;
        memset(c3, 0, sizeof c3); memset(c2, 0, sizeof c2); memset(u, 0, sizeof u);
        int p2 = 0, p1 = 0;  // the two previous symbols of the current string (BOS-padded)
        for (int t = 0; t < sp->lengths[e]; t++) {
            int x = in[t];
            if (x == RB_SEP) { p1 = p2 = 0; }
            else {
                c3[p2][p1][x]++; c2[p1][x]++; u[x]++;
                p2 = p1; p1 = x;
            }
            if (!al[t]) continue;
            const int *cnt = u;
            int tot = 0;
            for (int lvl = order; lvl >= 1; lvl--) {
                cnt = lvl == 3 ? c3[p2][p1] : lvl == 2 ? c2[p1] : u;
                tot = 0;
                for (int v = 1; v < B; v++) tot += cnt[v];
                if (tot > 0) break;
            }
            int arg = 1, na = __builtin_popcount(al[t]);
            for (int v = 2; v < B; v++)
                if (cnt[v] > cnt[arg]) arg = v;
            hits += (al[t] >> arg) & 1u;
            double d = 0;
            for (int v = 1; v < B; v++) {
                double pv = (double)cnt[v] / tot, qv = (al[t] >> v & 1u) ? 1.0 / na : 0.0;
                d += pv > qv ? pv - qv : qv - pv;
            }
            tv += 0.5 * d;  // token ids 0 and 19 carry no mass in either distribution
            scored++;
        }
    }
    *accuracy = scored ? hits / scored : 0;
    *tvd = scored ? tv / scored : 0;
}
