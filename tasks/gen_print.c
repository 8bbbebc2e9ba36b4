// gen_print.c — human and JSON-lines printing of generated examples (architecture.md
// "Machine-readable output"). Depends on task.h, gen_print.h.
#include "gen_print.h"

static char letter(int v) { return v == RB_SEP ? '|' : v == RB_PAD ? '.' : (char)('a' + v - 1); }

static void print_set(FILE *f, uint32_t m) {
    for (int v = 1; v <= RB_LETTERS; v++)
        if (m >> v & 1u) fputc(letter(v), f);
}

static void human_mqar(FILE *f, const Split *s, int e) {
    const int32_t *in = s->inputs + (size_t)e * s->L, *tg = s->targets + (size_t)e * s->L;
    int C = 2 * s->K, q = 0;
    for (int t = 0; t < s->L; t++) q += tg[t] >= 0;
    fprintf(f, "# mqar %s example %d: %d queries\n  kv:", s->label, e, q);
    for (int i = 0; i < s->K; i++)
        fprintf(f, "%s %d:%d", i && i % 8 == 0 ? "\n     " : "", in[2 * i], in[2 * i + 1]);
    fprintf(f, "\n  rest (positions %d..%d):\n   ", C, s->L - 1);
    for (int t = C, k = 0; t < s->L; t++, k++) {
        if (k && k % 12 == 0) fprintf(f, "\n   ");
        if (tg[t] >= 0) fprintf(f, " [q:%d->%d]", in[t], tg[t]);
        else fprintf(f, " %d", in[t]);
    }
    fputc('\n', f);
}

static void human_regbench(FILE *f, const Split *s, int e) {
    const int32_t *in = s->inputs + (size_t)e * s->L;
    const uint32_t *al = s->allowed + (size_t)e * s->L;
    int len = s->lengths[e], strings = 1;
    for (int t = 0; t < len; t++) strings += in[t] == RB_SEP;
    fprintf(f, "# regbench %s example %d: %d inputs, %d strings\n  text: ", s->label, e, len, strings);
    for (int t = 0; t < len; t++) fputc(letter(in[t]), f);
    fprintf(f, "\n  input(next letters with nonzero probability), one string per line:\n   ");
    for (int t = 0; t < len; t++) {
        if (in[t] == RB_SEP) fprintf(f, "\n   ");
        fprintf(f, " %c(", letter(in[t]));
        print_set(f, al[t]);
        fputc(')', f);
    }
    fputc('\n', f);
}

void gen_print_human(FILE *f, const Split *s, int task, int n) {
    if (n > s->n) n = s->n;
    for (int e = 0; e < n; e++) {
        if (task == TASK_REGBENCH) human_regbench(f, s, e);
        else human_mqar(f, s, e);
    }
}

static void json_ints(FILE *f, const int32_t *a, int n) {
    fputc('[', f);
    for (int i = 0; i < n; i++) fprintf(f, i ? ", %d" : "%d", a[i]);
    fputc(']', f);
}

void gen_print_jsonl(FILE *f, const Split *s, int task, int n) {
    if (n > s->n) n = s->n;
    for (int e = 0; e < n; e++) {
        const int32_t *in = s->inputs + (size_t)e * s->L, *tg = s->targets + (size_t)e * s->L;
        int len = s->lengths[e];
        fprintf(f, "{\"task\": \"%s\", \"inputs\": ", task == TASK_REGBENCH ? "regbench" : "mqar");
        json_ints(f, in, len);
        fprintf(f, ", \"targets\": ");
        json_ints(f, tg, len);
        if (task == TASK_REGBENCH && s->allowed) {
            const uint32_t *al = s->allowed + (size_t)e * s->L;
            fprintf(f, ", \"allowed\": [");
            for (int t = 0; t < len; t++) {
                fputs(t ? ", [" : "[", f);
                for (int v = 1, k = 0; v < RB_VOCAB; v++)
                    if (al[t] >> v & 1u) fprintf(f, k++ ? ", %d" : "%d", v);
                fputc(']', f);
            }
            fputc(']', f);
        }
        fputs("}\n", f);
    }
}
