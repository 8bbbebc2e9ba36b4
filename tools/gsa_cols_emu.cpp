// gsa_cols_emu.cpp — host emulation of gsa_bwd_cols_kernel (models/cuda/gsa.cu, the split backward's
// column-group scan): one std::thread per CUDA thread (cuda_emu.h), against a double-precision host
// reference of the same recurrences. Depends on C++20 and the kernel text that tools/gsa_cols_emu.sh cuts
// out of gsa.cu (kern.inc). Run it through that script.
//
// Why: the kernel was rewritten (thread per slot row, partial column sums) without a device. This checks
// its index and reduction logic: dq, dk, dv and the group parts of dS on random inputs, max error
// relative to the largest value, tolerance 1e-5 (float sums against double), at slot counts that give
// 64 to 256 threads and 1 to 8 row ranges per column sum, a last column group narrower than 32, and
// two heads; and the kernel twice must give identical bytes. It says nothing about speed.
#include "cuda_emu.h"
static float emu_sh[1 << 18];
#include "kern.inc"
typedef std::vector<float> V;
static std::mt19937 rng(11);
static V uni(size_t n, float lo, float hi) {
    std::uniform_real_distribution<float> d(lo, hi);
    V v(n);
    for (auto &x : v) x = d(rng);
    return v;
}
static double rel(const V &a, const std::vector<double> &b) {
    double mx = 0, sc = 0;
    for (size_t i = 0; i < a.size(); i++) {
        if (!std::isfinite(a[i])) return INFINITY;
        mx = std::max(mx, fabs(a[i] - b[i]));
        sc = std::max(sc, fabs(b[i]));
    }
    return mx / (sc > 0 ? sc : 1);
}
static int config(int B, int T, int H, int m, int dh) {
    const int D = H * dh, Hm = H * m, N = B * T, G = (dh + GSA_CW - 1) / GSA_CW, nt = gsa_cols_threads(m);
    V q = uni((size_t)N * D, -1, 1), k = uni((size_t)N * D, -1, 1), v = uni((size_t)N * D, -1, 1), dO = uni((size_t)N * D, -1, 1);
    V alpha = uni((size_t)N * Hm, 0.5f, 0.99f), s((size_t)N * Hm), pp = uni((size_t)N * Hm, 0, 1), dok = uni((size_t)N * Hm, -1, 1);
    for (size_t i = 0; i < s.size(); i++) s[i] = 1.f - alpha[i];
    V out[2][4];
    for (int run = 0; run < 2; run++) {
        V &dq = out[run][0], &dk = out[run][1], &dv = out[run][2], &dSp = out[run][3];
        dq.assign((size_t)N * D, NAN); dk.assign((size_t)N * D, NAN); dv.assign((size_t)N * D, NAN);
        dSp.assign((size_t)G * N * Hm, NAN);
        memset(emu_sh, 0x7f, sizeof emu_sh);  // garbage: catches reads of shared memory the kernel did not write
        dim3 gr; gr.x = G; gr.y = B * H;
        launch(gr, nt, [&] { gsa_bwd_cols_kernel(dq.data(), dk.data(), dv.data(), dSp.data(), q.data(), k.data(),
                                                 v.data(), dO.data(), alpha.data(), s.data(), pp.data(), dok.data(),
                                                 N, T, H, m, dh); });
    }
    std::vector<double> rq((size_t)N * D), rk((size_t)N * D), rv((size_t)N * D), rS((size_t)G * N * Hm, 0.0);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int j = 0; j < dh; j++) {
                const int g = j / GSA_CW;
                std::vector<double> K(m, 0.0), AV(m, 0.0), AK(m, 0.0);
                for (int t = 0; t < T; t++) {
                    const size_t i = (size_t)b * T + t, od = i * D + (size_t)h * dh + j, om = i * Hm + (size_t)h * m;
                    double acc = 0;
                    for (int r = 0; r < m; r++) {
                        K[r] = alpha[om + r] * K[r] + s[om + r] * (double)k[od];
                        acc += dok[om + r] * K[r];
                    }
                    rq[od] = acc;
                }
                for (int t = T - 1; t >= 0; t--) {
                    const size_t i = (size_t)b * T + t, od = i * D + (size_t)h * dh + j, om = i * Hm + (size_t)h * m;
                    double av = 0, ak = 0;
                    for (int r = 0; r < m; r++) {
                        const double a1 = t + 1 < T ? alpha[om + Hm + r] : 0.0;
                        AV[r] = a1 * AV[r] + pp[om + r] * (double)dO[od];
                        AK[r] = a1 * AK[r] + dok[om + r] * (double)q[od];
                        av += s[om + r] * AV[r];
                        ak += s[om + r] * AK[r];
                        rS[(size_t)g * N * Hm + om + r] += AV[r] * v[od] + AK[r] * k[od];
                    }
                    rv[od] = av;
                    rk[od] = ak;
                }
            }
    const char *nm[] = {"dq", "dk", "dv", "dS parts"};
    const std::vector<double> *ref[] = {&rq, &rk, &rv, &rS};
    int bad = 0;
    printf("B%d T%d H%d m%d dh%d (%d threads, %d groups):", B, T, H, m, dh, nt, G);
    for (int f = 0; f < 4; f++) {
        double e = rel(out[0][f], *ref[f]);
        printf(" %s %.1e", nm[f], e);
        bad += !(e < 1e-5);
    }
    int same = 1;
    for (int f = 0; f < 4; f++) same &= !memcmp(out[0][f].data(), out[1][f].data(), out[0][f].size() * 4);
    printf("  twice %s  %s\n", same ? "identical" : "DIFFER", bad || !same ? "FAIL" : "PASS");
    return bad + !same;
}
int main() {
    int bad = 0;
    bad += config(2, 13, 1, 5, 48);    // 64 threads, groups of 32 and 16 columns, few slots
    bad += config(1, 9, 2, 64, 32);    // two heads, one thread per slot
    bad += config(1, 7, 1, 100, 40);   // 128 threads: 2 and 8 row ranges per column sum
    bad += config(2, 5, 1, 256, 64);   // 256 threads, two full groups
    bad += config(1, 6, 1, 33, 33);    // 64 threads, a 1-column last group
    printf("%s\n", bad ? "FAILURES" : "all PASS");
    return bad != 0;
}
