// emu_check.h — what the host emulators of the tensor-core kernels share (tools/la_chunk_emu.cpp,
// tools/attn_emu.cpp): uniform random inputs, the error of a kernel's output against a double reference
// (max |kernel - reference| over the largest reference value; a non-finite output is an infinite error),
// the run-twice byte comparison (with a hash of the bytes), and the pass / fail counters. Header-only, after cuda_emu.h; each emulator
// seeds emu_rng at the start of main.
#pragma once
typedef std::vector<float> V;
typedef std::vector<double> W;
static std::mt19937 emu_rng;
static int fails, checks;
static V uni(size_t n, float lo, float hi) {
    std::uniform_real_distribution<float> d(lo, hi);
    V v(n);
    for (auto &x : v) x = d(emu_rng);
    return v;
}
static void report(const char *what, const V &a, const W &b, double tol) {
    double mx = 0, sc = 0;
    for (size_t i = 0; i < b.size(); i++) {
        mx = std::isfinite(a[i]) ? std::max(mx, fabs(a[i] - b[i])) : INFINITY;
        sc = std::max(sc, fabs(b[i]));
    }
    const double e = mx / (sc > 0 ? sc : 1);
    checks++;
    if (!(e <= tol)) fails++;
    printf("  %-40s err %.2e  tol %.0e  %s\n", what, e, tol, e <= tol ? "PASS" : "FAIL");
}
// the two runs' bytes compared, and the first run's FNV-1a hash printed (two builds of a kernel that should
// give the same bits can be compared by their output)
static void same(const char *what, const V &a, const V &b) {
    checks++;
    const bool ok = a.size() == b.size() && !memcmp(a.data(), b.data(), a.size() * 4);
    if (!ok) fails++;
    uint64_t hsh = 1469598103934665603ull;
    const unsigned char *p = (const unsigned char *)a.data();
    for (size_t i = 0; i < a.size() * 4; i++) hsh = (hsh ^ p[i]) * 1099511628211ull;
    printf("  %-40s run twice: %s  fnv %016llx\n", what, ok ? "identical bytes" : "DIFFER (FAIL)", (unsigned long long)hsh);
}
