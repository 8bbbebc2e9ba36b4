// test_rng.c — checks tasks/rng.h: known answers from an independent Python implementation,
// determinism, stream independence and rng_below uniformity (chi-square). Depends on rng.h.
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "rng.h"

static int fails;
static void check(const char *name, int ok, double val, double tol) {
    printf("%s %s %.6g %.6g\n", ok ? "PASS" : "FAIL", name, val, tol);
    fails += !ok;
}

// Upper critical value of chi-square with df degrees of freedom at z standard deviations
// (Wilson-Hilferty); z = 3.719 is p = 1e-4.
static double chi2_crit(int df, double z) {
    double h = 2.0 / (9.0 * df);
    return df * pow(1 - h + z * sqrt(h), 3);
}

static double chi2_below(uint64_t seed, int n, long draws) {
    static long cnt[1024];
    Rng r;
    rng_seed(&r, seed);
    memset(cnt, 0, sizeof cnt);
    for (long i = 0; i < draws; i++) cnt[rng_below(&r, (uint64_t)n)]++;
    double e = (double)draws / n, x = 0;
    for (int i = 0; i < n; i++) x += (cnt[i] - e) * (cnt[i] - e) / e;
    return x;
}

int main(void) {
    Rng a, b;
    // Known answers: splitmix64 seeding + xoshiro256**, computed by a separate Python script.
    rng_seed(&a, 42);
    uint64_t k0 = rng_u64(&a), k1 = rng_u64(&a), k2 = rng_u64(&a);
    check("known_answer_seed42", k0 == 0x15780b2e0c2ec716ULL && k1 == 0x6104d9866d113a7eULL &&
          k2 == 0xae17533239e499a1ULL, 0, 0);
    rng_seed_stream(&a, 12345, 7);
    k0 = rng_u64(&a); k1 = rng_u64(&a);
    check("known_answer_stream", k0 == 0x43dac29894824b8cULL && k1 == 0x3c931d6aa4c30859ULL, 0, 0);

    // Determinism: same seed, same stream.
    rng_seed(&a, 7); rng_seed(&b, 7);
    int diff = 0;
    for (int i = 0; i < 100000; i++) diff += rng_u64(&a) != rng_u64(&b);
    check("same_seed_same_stream", diff == 0, diff, 0);

    // Different seeds (and streams) differ: count equal outputs at the same index.
    rng_seed(&a, 1); rng_seed(&b, 2);
    int same = 0;
    for (int i = 0; i < 100000; i++) same += rng_u64(&a) == rng_u64(&b);
    check("different_seeds_differ", same == 0, same, 0);
    rng_seed_stream(&a, 1, 100); rng_seed_stream(&b, 1, 101);
    same = 0;
    for (int i = 0; i < 100000; i++) same += rng_u64(&a) == rng_u64(&b);
    check("different_streams_differ", same == 0, same, 0);

    // rng_below uniformity: chi-square against uniform, p = 1e-4 critical values.
    int ns[] = {2, 7, 10, 1000};
    for (int i = 0; i < 4; i++) {
        double x = chi2_below(99 + i, ns[i], 2000000), c = chi2_crit(ns[i] - 1, 3.719);
        char name[64];
        snprintf(name, sizeof name, "rng_below_chi2_n%d(df=%d)", ns[i], ns[i] - 1);
        check(name, x < c, x, c);
    }
    // A test that must be able to fail: a biased generator (x % 3 of x % 10) is rejected.
    {
        long cnt[10] = {0};
        rng_seed(&a, 5);
        for (long i = 0; i < 300000; i++) { uint64_t v = rng_below(&a, 10); cnt[v == 9 ? 0 : v]++; }
        double e = 30000, x = 0;
        for (int i = 0; i < 10; i++) x += (cnt[i] - e) * (cnt[i] - e) / e;
        check("chi2_detects_bias", x > chi2_crit(9, 3.719), x, chi2_crit(9, 3.719));
    }

    // rng_range hits both ends; rng_uniform in [0, 1) with mean 1/2.
    rng_seed(&a, 3);
    int lo = 0, hi = 0, out = 0;
    for (int i = 0; i < 100000; i++) {
        int v = rng_range(&a, 4, 12);
        lo += v == 4; hi += v == 12; out += v < 4 || v > 12;
    }
    check("rng_range_inclusive", lo > 0 && hi > 0 && out == 0, out, 0);
    double s = 0, mn = 1, mx = 0;
    for (int i = 0; i < 1000000; i++) {
        double u = rng_uniform(&a);
        s += u; if (u < mn) mn = u; if (u > mx) mx = u;
    }
    double tol = 5 * sqrt(1.0 / 12 / 1e6);
    check("rng_uniform_mean", fabs(s / 1e6 - 0.5) < tol && mn >= 0 && mx < 1, fabs(s / 1e6 - 0.5), tol);
    return fails ? 1 : 0;
}
