// kernel.c — `recallbench kernel`: prints ||A||_2 and the BLA impulse responses h[a, m] (the Dirichlet
// blur of each reconstruction point across ages), writes them as .dat and plots a PNG with gnuplot.
// Depends on models/bla_ops.h (operators in double), the bla mixer's validate(), util.
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "../models/bla_ops.h"
#include "../models/mixer.h"
#include "util.h"

extern const MixerOps bla_ops;  // strong: the kernel command validates exactly as the mixer does

#define KERNEL_MAX_LEN 65536
#define KERNEL_MAX_COLS 9  // points shown in the printed table and the curve panel
#define KERNEL_GRID 512    // heatmap samples per axis in the data file

static void kernel_usage(FILE *f) {
    fprintf(f,
            "usage: recallbench kernel --window W --freqs N [--bla-readout dense|slots]\n"
            "                          [--bla-transition project|decay] [--len L] [--out DIR] [--no-plot]\n"
            "Prints ||A||_2 and the impulse responses h[a,m] = R[m,:] A^a B of BLA's reconstruction points\n"
            "(design/bla.md): how a token a steps back is blurred onto each point m. Writes\n"
            "DIR/bla_kernel_W{W}_N{N}.dat and .png (suffix _slots / _decay for those variants).\n"
            "  --window W          window length in tokens, 1 <= W <= 16384 (required)\n"
            "  --freqs N           kept Fourier coefficients, 1 <= N <= W (required)\n"
            "  --bla-readout R     dense (W points at ages 0..W-1, default) or slots (N points at m*W/N);\n"
            "                      --readout is accepted as a synonym\n"
            "  --bla-transition T  project (default) or decay (circular shift damped by exp(-3/W));\n"
            "                      --transition is accepted as a synonym\n"
            "  --len L             ages 0..L-1 to compute, 1 <= L <= %d (default 2W)\n"
            "  --out DIR           output directory, created if missing (default .)\n"
            "  --no-plot           write the .dat file only (no gnuplot needed)\n",
            KERNEL_MAX_LEN);
}

// An integer flag value; the range check is the caller's (for W and N: the mixer's validate()).
static int parse_int(const char *flag, const char *v) {
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (end == v || *end || errno || x < -(1L << 30) || x > (1L << 30)) die_usage("%s '%s' invalid: must be an integer", flag, v);
    return (int)x;
}

// 1 if an executable named prog is on PATH.
static int on_path(const char *prog) {
    const char *path = getenv("PATH");
    if (!path) return 0;
    char buf[4096];
    for (const char *p = path; *p;) {
        const char *e = strchr(p, ':');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        snprintf(buf, sizeof buf, "%.*s/%s", (int)n, n ? p : ".", prog);
        if (access(buf, X_OK) == 0) return 1;
        if (!e) break;
        p = e + 1;
    }
    return 0;
}

// A gnuplot single-quoted string literal ('' stands for ').
static void gp_quote(FILE *f, const char *s) {
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'') fputc('\'', f);
        fputc(*s, f);
    }
    fputc('\'', f);
}

// Up to KERNEL_MAX_COLS points spread over 0..M-1, always including both ends.
static int select_points(int M, int *sel) {
    if (M <= KERNEL_MAX_COLS) {
        for (int m = 0; m < M; m++) sel[m] = m;
        return M;
    }
    int step = (M - 1 + KERNEL_MAX_COLS - 2) / (KERNEL_MAX_COLS - 1), n = 0;
    for (int m = 0; m < M - 1 && n < KERNEL_MAX_COLS - 1; m += step) sel[n++] = m;
    sel[n++] = M - 1;
    return n;
}

int cmd_kernel(int argc, char **argv) {
    int W = 0, N = 0, L = 0, have_w = 0, have_n = 0, plot = 1, readout = BLA_READOUT_DENSE, transition = BLA_TRANSITION_PROJECT;
    const char *out = ".";
    for (int i = 1; i < argc; i++) {
        char name[64];
        const char *a = argv[i], *val = NULL, *eq = strchr(a, '=');
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            kernel_usage(stdout);
            return EXIT_OK;
        }
        if (strncmp(a, "--", 2) != 0) die_usage("kernel: unexpected argument '%s' (see recallbench kernel --help)", a);
        snprintf(name, sizeof name, "%.*s", eq ? (int)(eq - a) : (int)strlen(a), a);
        if (!strcmp(name, "--no-plot")) {
            if (eq) die_usage("--no-plot takes no value");
            plot = 0;
            continue;
        }
        if (eq) val = eq + 1;
        else if (i + 1 < argc) val = argv[++i];
        else die_usage("%s needs a value", name);
        if (!strcmp(name, "--window")) W = parse_int(name, val), have_w = 1;
        else if (!strcmp(name, "--freqs")) N = parse_int(name, val), have_n = 1;
        else if (!strcmp(name, "--len")) {
            L = parse_int(name, val);
            if (L < 1 || L > KERNEL_MAX_LEN) die_usage("--len %d out of range: must be 1 <= L <= %d", L, KERNEL_MAX_LEN);
        }
        else if (!strcmp(name, "--out")) out = val;
        else if (!strcmp(name, "--bla-readout") || !strcmp(name, "--readout")) {
            if (!strcmp(val, "dense")) readout = BLA_READOUT_DENSE;
            else if (!strcmp(val, "slots")) readout = BLA_READOUT_SLOTS;
            else die_usage("%s '%s' invalid: must be dense or slots", name, val);
        } else if (!strcmp(name, "--bla-transition") || !strcmp(name, "--transition")) {
            if (!strcmp(val, "project")) transition = BLA_TRANSITION_PROJECT;
            else if (!strcmp(val, "decay")) transition = BLA_TRANSITION_DECAY;
            else die_usage("%s '%s' invalid: must be project or decay", name, val);
        } else die_usage("kernel: unknown option '%s' (see recallbench kernel --help)", name);
    }
    if (!have_w) die_usage("kernel: --window W is required (1 <= W <= 16384)");
    if (!have_n) die_usage("kernel: --freqs N is required (1 <= N <= --window)");
    MixerCfg mc;
    mixer_cfg_default(&mc, MIX_BLA, 1, 1, 1);
    mc.window[0] = W;
    mc.freqs[0] = N;
    mc.bla_readout = readout;
    mc.bla_transition = transition;
    char err[256];
    if (bla_ops.validate(&mc, err, sizeof err)) die_usage("%s", err);
    if (!L) L = 2 * W < KERNEL_MAX_LEN ? 2 * W : KERNEL_MAX_LEN;

    BlaOperators op;
    if (bla_operators_build(&op, W, N, readout, transition)) die_runtime("out of memory building BLA operators (W %d, N %d)", W, N);
    const int M = op.M;
    double nrm = bla_norm2(op.A, N);
    // Only the points shown are kept (all of them when M <= 64; else the selection and the heatmap grid's
    // columns): the full L x M table is 4 GB at W = 16384. hmax streams over every point in chunks.
    int sel[KERNEL_MAX_COLS], nsel = select_points(M, sel), every = M <= 64;
    int sa = (L + KERNEL_GRID - 1) / KERNEL_GRID, sm = (M + KERNEL_GRID - 1) / KERNEL_GRID;
    int *col_of = xmalloc(sizeof(int) * (size_t)M), nc = 0;
    for (int m = 0; m < M; m++) col_of[m] = -1;
    for (int i = 0; i < nsel; i++) col_of[sel[i]] = 0;
    for (int m = 0; m < M; m++)
        if (every || m % sm == 0 || col_of[m] == 0) col_of[m] = nc++;
    BlaOperators sub = op;   // same A, B; R restricted to the kept rows
    double *Rk = xmalloc(sizeof(double) * (size_t)nc * N);
    for (int m = 0; m < M; m++)
        if (col_of[m] >= 0) memcpy(Rk + (size_t)col_of[m] * N, op.R + (size_t)m * N, sizeof(double) * N);
    sub.R = Rk;
    sub.M = nc;
    double *h = xmalloc(sizeof(double) * (size_t)L * nc);
    bla_impulse_response(h, &sub, L);
#define H(a, m) h[(size_t)(a) * nc + col_of[m]]
    double hmax = 0;
    if (every) {
        for (size_t i = 0; i < (size_t)L * nc; i++) hmax = fmax(hmax, fabs(h[i]));
    } else {
        enum { CHUNK = 256 };
        double *hc = xmalloc(sizeof(double) * (size_t)L * CHUNK);
        for (int m0 = 0; m0 < M; m0 += CHUNK) {
            BlaOperators ch = op;
            ch.R = op.R + (size_t)m0 * N;
            ch.M = M - m0 < CHUNK ? M - m0 : CHUNK;
            bla_impulse_response(hc, &ch, L);
            for (size_t i = 0; i < (size_t)L * ch.M; i++) hmax = fmax(hmax, fabs(hc[i]));
        }
        free(hc);
    }

    const char *rname = readout == BLA_READOUT_SLOTS ? "slots" : "dense";
    const char *tname = transition == BLA_TRANSITION_DECAY ? "decay" : "project";
    printf("BLA kernel: W=%d N=%d readout=%s transition=%s: %d reconstruction points, ages 0..%d\n", W, N, rname,
           tname, M, L - 1);
    printf("||A||_2 = %.12f", nrm);
    if (transition == BLA_TRANSITION_DECAY) printf("   (gamma = exp(-3/W) = %.12f)", op.gamma);
    printf("   [%s]\n", N > BLA_NORM_JACOBI_MAX ? "power iteration" : "Jacobi eigenvalues of A^T A");

    // Per point: where its response peaks (over all computed ages and inside the window), its value on
    // target (a = round(age)), half-maximum width around the peak, and total mass sum_a h.
    printf("\nper point (%s):\n", every ? "all points" : "a selection");
    printf("%5s %8s %9s %9s %10s %10s %6s %9s\n", "m", "age", "peak a", "peak a<W", "h[peak]", "h[age]", "fwhm",
           "sum_a h");
    for (int i = 0; i < (every ? M : nsel); i++) {
        int m = every ? i : sel[i], pk = 0, pw = 0;
        double mass = 0;
        for (int a = 0; a < L; a++) {
            double v = H(a, m);
            mass += v;
            if (v > H(pk, m)) pk = a;
            if (a < W && v > H(pw, m)) pw = a;
        }
        double hp = H(pk, m);
        int lo = pk, hi = pk;
        while (lo > 0 && H(lo - 1, m) >= hp / 2) lo--;
        while (hi < L - 1 && H(hi + 1, m) >= hp / 2) hi++;
        int at = (int)lround(op.age[m]);
        double ht = at < L ? H(at, m) : NAN;
        printf("%5d %8.2f %9d %9d %10.5f %10.5f %6d %9.4f\n", m, op.age[m], pk, pw, hp, ht, hi - lo + 1, mass);
    }

    printf("\nimpulse responses h[a,m]: rows = age a (tokens back), columns = point m%s\n%6s",
           every && M > nsel ? " (a selection)" : "", "m:");
    for (int i = 0; i < nsel; i++) printf(" %9d", sel[i]);
    printf("\n%6s", "age:");
    for (int i = 0; i < nsel; i++) printf(" %9.2f", op.age[sel[i]]);
    printf("\n%6s\n", "a");
    for (int a = 0; a < L; a++) {
        printf("%6d", a);
        for (int i = 0; i < nsel; i++) printf(" %9.5f", H(a, sel[i]));
        printf("%s\n", a == W - 1 ? "   <- window end (age W-1)" : "");
    }

    // Data: index 0 = one row per age (a, h[a, 0..M-1]); index 1 = grid (a, age(m), h) for the heatmap.
    if (mkdir(out, 0777) != 0 && errno != EEXIST) die_runtime("cannot create output directory %s: %s", out, strerror(errno));
    char suffix[32] = "", base[4096], dat[4200], png[4200];
    if (readout == BLA_READOUT_SLOTS) strcat(suffix, "_slots");
    if (transition == BLA_TRANSITION_DECAY) strcat(suffix, "_decay");
    snprintf(base, sizeof base, "%s/bla_kernel_W%d_N%d%s", out, W, N, suffix);
    snprintf(dat, sizeof dat, "%s.dat", base);
    snprintf(png, sizeof png, "%s.png", base);
    FILE *f = fopen(dat, "w");
    if (!f) die_runtime("cannot write %s: %s", dat, strerror(errno));
    fprintf(f, "# recallbench kernel: BLA impulse responses h[a,m] = R[m,:] A^a B (design/bla.md)\n");
    fprintf(f, "# W=%d N=%d readout=%s transition=%s M=%d L=%d ||A||_2=%.12f\n", W, N, rname, tname, M, L, nrm);
    // Bounded output: index 0 holds the selected points only, index 1 a grid of at most KERNEL_GRID x
    // KERNEL_GRID samples (every stride-th age and point), so W = 16384 writes megabytes, not gigabytes.
    fprintf(f, "# index 0: a h[a,m] for the selected points m =");
    for (int i = 0; i < nsel; i++) fprintf(f, " %d", sel[i]);
    fprintf(f, "   (their ages:");
    for (int i = 0; i < nsel; i++) fprintf(f, " %.4g", op.age[sel[i]]);
    fprintf(f, ")\n");
    for (int a = 0; a < L; a++) {
        fprintf(f, "%d", a);
        for (int i = 0; i < nsel; i++) fprintf(f, " %.9g", H(a, sel[i]));
        fprintf(f, "\n");
    }
    fprintf(f, "\n\n# index 1: a age(m) h[a,m]   (grid for the heatmap; every %d-th age, every %d-th point)\n", sa, sm);
    for (int a = 0; a < L; a += sa) {
        for (int m = 0; m < M; m += sm) fprintf(f, "%d %.6g %.9g\n", a, op.age[m], H(a, m));
        fprintf(f, "\n");
    }
    if (fclose(f) != 0) die_runtime("cannot write %s: %s", dat, strerror(errno));
    printf("\nwrote %s\n", dat);

    if (plot) {
        if (!on_path("gnuplot"))
            die_runtime("gnuplot not found on PATH: install gnuplot to get %s, or pass --no-plot (data is in %s)", png, dat);
        FILE *g = popen("gnuplot", "w");
        if (!g) die_runtime("cannot start gnuplot: %s", strerror(errno));
        fprintf(g, "set terminal pngcairo size 1100,1000 enhanced font 'sans,10'\nset output ");
        gp_quote(g, png);
        fprintf(g, "\nset multiplot layout 2,1 title 'BLA impulse responses h[a,m] = R_m A^a B:  W=%d, N=%d, %s readout, "
                   "%s transition,  ||A||_2 = %.6f'\n", W, N, rname, tname, nrm);
        fprintf(g, "set title 'Dirichlet blur of each reconstruction point across ages'\n"
                   "set xlabel 'age a (tokens back)'\nset ylabel 'h[a,m]'\nset grid\nset key outside right top\n"
                   "set linetype 9 lc rgb '#8c564b'\nset linetype cycle 9\n"
                   "set xrange [0:%d]\nset arrow 1 from %g, graph 0 to %g, graph 1 nohead dt 2 lc rgb 'gray40'\n"
                   "set label 1 'window end' at %g, graph 0.95 right offset -0.5,0 tc rgb 'gray40'\n",
                L - 1, W - 0.5, W - 0.5, W - 0.5);
        fprintf(g, "plot ");
        for (int i = 0; i < nsel; i++) {
            fprintf(g, "%s", i ? ", \\\n     " : "");
            gp_quote(g, dat);
            fprintf(g, " index 0 using 1:%d with linespoints lw 2 pt 7 ps 0.4 title 'm=%d (age %.3g)'", i + 2, sel[i],
                    op.age[sel[i]]);
        }
        fprintf(g, "\nunset arrow 1\nunset label 1\n");
        fprintf(g, "set title 'heatmap of h[a,m]'\nset xlabel 'age a (tokens back)'\nset ylabel 'reconstruction point "
                   "m (at its age)'\nunset grid\nset view map\nset key noautotitle\nset palette defined (-1 '#2166ac', 0 "
                   "'white', 1 '#b2182b')\nset cbrange [-%g:%g]\nset cblabel 'h[a,m]'\n"
                   "set xrange [-0.5:%g]\nset yrange [%g:%g]\n",
                hmax, hmax, L - 0.5, -0.5 * op.W / (double)(readout == BLA_READOUT_SLOTS ? N : W),
                op.age[M - 1] + 0.5 * op.W / (double)(readout == BLA_READOUT_SLOTS ? N : W));
        fprintf(g, "splot ");
        gp_quote(g, dat);
        fprintf(g, M > 1 && L > 1 ? " index 1 using 1:2:3 with image\n" : " index 1 using 1:2:3 with points pt 5 ps 3 palette\n");
        fprintf(g, "unset multiplot\nset output\n");
        int st = pclose(g);
        if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            die_runtime("gnuplot failed (status %d) writing %s", st == -1 ? -1 : WEXITSTATUS(st), png);
        printf("wrote %s\n", png);
    }
#undef H
    free(h);
    free(Rk);
    free(col_of);
    bla_operators_free(&op);
    return EXIT_OK;
}
