// gsa_scan_emu.cpp — host emulation of the scan kernels of models/cuda/gsa.cu: gsa_scan_kernel (the
// forward recurrence, also the step form) and gsa_bwd_cols_kernel with its register form
// gsa_bwd_cols_reg_kernel (the split backward's column groups).
// One fiber per CUDA thread (cuda_emu.h), against a double-precision host reference of the same
// recurrences. Depends on C++20 and the kernel text that tools/gsa_scan_emu.sh cuts out of gsa.cu
// (kern.inc). Run it through that script.
//
// Why: both kernels were rewritten (split row and column sums, a warp for the softmax, a thread per slot
// row) without a device. This checks their index and reduction logic on random inputs, max error
// relative to the largest value, tolerance 1e-5 (float sums against double): the forward's p, o (and
// the state it leaves, in the step form, which starts from a given state in the CPU's [m, d_h] layout),
// with the state in shared memory and in global memory, at m below, at and above the block and d_h
// below and above it; the backward's dq, dk, dv and dS parts at 64 to 256 threads, 1 to 8 row ranges
// per column sum, a last column group narrower than 32, and two heads; the register form on the same
// shapes and at 1 to 512 slots (1 to 16 warps, rows past m in the last), T 1 and 2 (its prefetch
// pipeline's ends). Inputs end in NaN, so a read past them shows. Each kernel twice must give
// identical bytes. It says nothing about speed.
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
// The split backward's column groups: gsa_bwd_cols_kernel at nt threads (0: gsa_cols_threads(m)) and,
// with nt 0 where it applies, gsa_bwd_cols_reg_kernel on the same inputs, each against the reference.
static int config(int B, int T, int H, int m, int dh, int nt = 0) {
    const int regs = nt ? 0 : gsa_bwdr_threads(m);
    if (!nt) nt = gsa_cols_threads(m);
    const int D = H * dh, Hm = H * m, N = B * T, G = (dh + GSA_CW - 1) / GSA_CW;
    V q = uni((size_t)N * D, -1, 1), k = uni((size_t)N * D, -1, 1), v = uni((size_t)N * D, -1, 1), dO = uni((size_t)N * D, -1, 1);
    V alpha = uni((size_t)N * Hm, 0.5f, 0.99f), s((size_t)N * Hm), pp = uni((size_t)N * Hm, 0, 1), dok = uni((size_t)N * Hm, -1, 1);
    for (size_t i = 0; i < s.size(); i++) s[i] = 1.f - alpha[i];
    for (V *x : {&q, &k, &v, &dO, &alpha, &s, &pp, &dok}) x->resize(x->size() + 64, NAN);
    V out[2][2][4];  // [kernel: smem, registers][run]
    for (int kr = 0; kr < (regs ? 2 : 1); kr++)
        for (int run = 0; run < 2; run++) {
            V &dq = out[kr][run][0], &dk = out[kr][run][1], &dv = out[kr][run][2], &dSp = out[kr][run][3];
            dq.assign((size_t)N * D, NAN); dk.assign((size_t)N * D, NAN); dv.assign((size_t)N * D, NAN);
            dSp.assign((size_t)G * N * Hm, NAN);
            memset(emu_sh, 0x7f, sizeof emu_sh);  // garbage: catches reads of shared memory the kernel did not write
            dim3 gr; gr.x = G; gr.y = B * H;
            auto body = [&] {
                auto *kern = kr ? gsa_bwd_cols_reg_kernel : gsa_bwd_cols_kernel;
                kern(dq.data(), dk.data(), dv.data(), dSp.data(), q.data(), k.data(), v.data(), dO.data(),
                     alpha.data(), s.data(), pp.data(), dok.data(), N, T, H, m, dh);
            };
            launch(gr, kr ? regs : nt, body);
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
    int fails = 0;
    for (int kr = 0; kr < (regs ? 2 : 1); kr++) {
        int bad = 0;
        printf("%s B%d T%d H%d m%d dh%d (%d threads, %d groups):", kr ? "registers" : "shared", B, T, H, m, dh,
               kr ? regs : nt, G);
        for (int f = 0; f < 4; f++) {
            double e = rel(out[kr][0][f], *ref[f]);
            printf(" %s %.1e", nm[f], e);
            bad += !(e < 1e-5);
        }
        int same = 1;
        for (int f = 0; f < 4; f++) same &= !memcmp(out[kr][0][f].data(), out[kr][1][f].data(), out[kr][0][f].size() * 4);
        printf(" (tol 1e-5)  twice %s  %s\n", same ? "identical" : "DIFFER", bad || !same ? "FAIL" : "PASS");
        fails += bad + !same;
    }
    return fails;
}
// The forward scan: mode 0 state in shared memory (training), 1 in global memory from zero, 2 the step
// form (global, continuing from a random state); mode 3 the split forward instead of the scan
// (gsa_bwd_rows_kernel with dpp NULL, gsa_fwd_tok_kernel, gsa_fwd_cols_kernel).
static int config_fwd(int B, int T, int H, int m, int dh, int mode) {
    const int D = H * dh, Hm = H * m, N = B * T;
    const long long stride = 2LL * m * dh;
    V q = uni((size_t)N * D, -1, 1), k = uni((size_t)N * D, -1, 1), v = uni((size_t)N * D, -1, 1);
    V alpha = uni((size_t)N * Hm, 0.5f, 0.99f), s((size_t)N * Hm);
    for (size_t i = 0; i < s.size(); i++) s[i] = 1.f - alpha[i];
    V st0 = uni((size_t)B * H * stride, -1, 1);
    if (mode != 2) st0.assign(st0.size(), 0.f);
    V out[2][3];
    for (int run = 0; run < 2; run++) {
        V &pp = out[run][0], &o = out[run][1], &st = out[run][2];
        pp.assign((size_t)N * Hm, NAN); o.assign((size_t)N * D, NAN);
        st = mode == 2 ? st0 : V(st0.size(), NAN);  // mode 1 must zero it
        memset(emu_sh, 0x7f, sizeof emu_sh);
        if (gsa_fwd_shared(m, dh, mode == 0) > sizeof emu_sh) { printf("emu_sh too small\n"); return 1; }
        if (mode == 3) {
            const int G = (dh + GSA_CW - 1) / GSA_CW;
            V okp((size_t)G * N * Hm, NAN), okp1((size_t)G * N * Hm, NAN);
            dim3 gr; gr.x = (m + GSA_RB - 1) / GSA_RB; gr.y = G; gr.z = B * H;
            launch(gr, GSA_RB, [&] { gsa_bwd_rows_kernel<false>(NULL, okp.data(), q.data(), k.data(), NULL, NULL,
                                                                alpha.data(), s.data(), N, T, H, m, dh); });
            if (dh % 4 == 0) {  // the float4 instance: the same bits as the scalar one
                launch(gr, GSA_RB, [&] { gsa_bwd_rows_kernel<true>(NULL, okp1.data(), q.data(), k.data(), NULL, NULL,
                                                                   alpha.data(), s.data(), N, T, H, m, dh); });
                if (memcmp(okp.data(), okp1.data(), okp.size() * 4)) { printf("rows kernel: float4 != scalar\n"); return 1; }
            }
            dim3 gt; gt.x = (unsigned)(((long long)N * H * 32 + 255) / 256);
            launch(gt, 256, [&] { gsa_fwd_tok_kernel(pp.data(), okp.data(), N, H, m, G); });
            if (gsa_cols_shared(m, gsa_cols_threads(m)) > sizeof emu_sh) { printf("emu_sh too small\n"); return 1; }
            dim3 gc; gc.x = G; gc.y = B * H;
            launch(gc, gsa_cols_threads(m), [&] { gsa_fwd_cols_kernel(o.data(), v.data(), alpha.data(), s.data(),
                                                                      pp.data(), T, H, m, dh); });
            continue;
        }
        dim3 gr; gr.x = B * H;
        launch(gr, GSA_THREADS, [&] { gsa_scan_kernel(pp.data(), o.data(), q.data(), k.data(), v.data(), alpha.data(),
                                                      s.data(), st.data(), stride, mode == 0, mode == 1, T, H, m, dh); });
    }
    // the training form with the state in registers, where it applies: the same bits as the scan's
    const int S = gsa_scan_reg_s(m, dh);
    if (mode == 0 && S) {
        V pr((size_t)N * Hm, NAN), orr((size_t)N * D, NAN);
        memset(emu_sh, 0x7f, sizeof emu_sh);
        dim3 gr; gr.x = B * H;
        launch(gr, GSA_THREADS, [&] {
            float *a0 = pr.data(), *a1 = orr.data();
            const float *q0 = q.data(), *k0 = k.data(), *v0 = v.data(), *al = alpha.data(), *s0 = s.data();
            switch (S) {
            case 1: gsa_scan_reg_kernel<1>(a0, a1, q0, k0, v0, al, s0, T, H, m, dh); break;
            case 2: gsa_scan_reg_kernel<2>(a0, a1, q0, k0, v0, al, s0, T, H, m, dh); break;
            case 4: gsa_scan_reg_kernel<4>(a0, a1, q0, k0, v0, al, s0, T, H, m, dh); break;
            case 8: gsa_scan_reg_kernel<8>(a0, a1, q0, k0, v0, al, s0, T, H, m, dh); break;
            case 16: gsa_scan_reg_kernel<16>(a0, a1, q0, k0, v0, al, s0, T, H, m, dh); break;
            case 32: gsa_scan_reg_kernel<32>(a0, a1, q0, k0, v0, al, s0, T, H, m, dh); break;
            default: gsa_scan_reg_kernel<64>(a0, a1, q0, k0, v0, al, s0, T, H, m, dh); break;
            }
        });
        const int same = !memcmp(pr.data(), out[0][0].data(), pr.size() * 4) && !memcmp(orr.data(), out[0][1].data(), orr.size() * 4);
        printf("forward B%d T%d H%d m%d dh%d state in registers (S %d): p, o %s the shared-memory scan's  %s\n", B, T, H,
               m, dh, S, same ? "==" : "!=", same ? "PASS" : "FAIL");
        if (!same) return 1;
    }
    std::vector<double> rp((size_t)N * Hm), ro((size_t)N * D), rst(st0.size());
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            const size_t bh = (size_t)b * H + h;
            std::vector<double> K(st0.begin() + bh * stride, st0.begin() + bh * stride + (size_t)m * dh);
            std::vector<double> Vs(st0.begin() + bh * stride + (size_t)m * dh, st0.begin() + (bh + 1) * stride);
            for (int t = 0; t < T; t++) {
                const size_t i = (size_t)b * T + t, od = i * D + (size_t)h * dh, om = i * Hm + (size_t)h * m;
                std::vector<double> sc(m);
                double mx = -INFINITY, sum = 0;
                for (int r = 0; r < m; r++) {
                    double acc = 0;
                    for (int j = 0; j < dh; j++) {
                        double &e = K[(size_t)r * dh + j];
                        e = alpha[om + r] * e + s[om + r] * (double)k[od + j];
                        acc += e * q[od + j];
                    }
                    sc[r] = acc;
                    mx = std::max(mx, acc);
                }
                for (int r = 0; r < m; r++) sum += (sc[r] = exp(sc[r] - mx));
                for (int r = 0; r < m; r++) rp[om + r] = sc[r] / sum;
                for (int j = 0; j < dh; j++) {
                    double acc = 0;
                    for (int r = 0; r < m; r++) {
                        double &e = Vs[(size_t)r * dh + j];
                        e = alpha[om + r] * e + s[om + r] * (double)v[od + j];
                        acc += rp[om + r] * e;
                    }
                    ro[od + j] = acc;
                }
            }
            for (size_t e = 0; e < (size_t)m * dh; e++) {
                rst[bh * stride + e] = K[e];
                rst[bh * stride + (size_t)m * dh + e] = Vs[e];
            }
        }
    const char *mn[] = {"shared", "global", "step", "split (no scan)"};
    printf("forward B%d T%d H%d m%d dh%d state %s:", B, T, H, m, dh, mn[mode]);
    int bad = 0;
    double e = rel(out[0][0], rp);
    printf(" p %.1e", e);
    bad += !(e < 1e-5);
    e = rel(out[0][1], ro);
    printf(" o %.1e", e);
    bad += !(e < 1e-5);
    if (mode == 1 || mode == 2) {
        e = rel(out[0][2], rst);
        printf(" state %.1e", e);
        bad += !(e < 1e-5);
    }
    int same = 1;
    for (int f = 0; f < (mode == 1 || mode == 2 ? 3 : 2); f++) same &= !memcmp(out[0][f].data(), out[1][f].data(), out[0][f].size() * 4);
    printf("  twice %s  %s\n", same ? "identical" : "DIFFER", bad || !same ? "FAIL" : "PASS");
    return bad + !same;
}

// gsa_bwd_rows_kernel with dpp (the split backward's row sums): each group's part of dp = V_t dO and
// ok = K_t q against a double reference, and the float4 instance against the scalar one, bit for bit.
static int config_rows(int B, int T, int H, int m, int dh) {
    const int D = H * dh, Hm = H * m, N = B * T, G = (dh + GSA_CW - 1) / GSA_CW;
    V q = uni((size_t)N * D, -1, 1), k = uni((size_t)N * D, -1, 1), v = uni((size_t)N * D, -1, 1), dO = uni((size_t)N * D, -1, 1);
    V alpha = uni((size_t)N * Hm, 0.5f, 0.99f), s((size_t)N * Hm);
    for (size_t i = 0; i < s.size(); i++) s[i] = 1.f - alpha[i];
    V dpp[2], okp[2];
    dim3 gr; gr.x = (m + GSA_RB - 1) / GSA_RB; gr.y = G; gr.z = B * H;
    for (int w = 0; w < 2; w++) {
        dpp[w].assign((size_t)G * N * Hm, NAN); okp[w].assign((size_t)G * N * Hm, NAN);
        float *dp = dpp[w].data(), *op = okp[w].data();
        if (w == 0) launch(gr, GSA_RB, [&] { gsa_bwd_rows_kernel<false>(dp, op, q.data(), k.data(), v.data(), dO.data(),
                                                                       alpha.data(), s.data(), N, T, H, m, dh); });
        else launch(gr, GSA_RB, [&] { gsa_bwd_rows_kernel<true>(dp, op, q.data(), k.data(), v.data(), dO.data(),
                                                               alpha.data(), s.data(), N, T, H, m, dh); });
    }
    std::vector<double> rd((size_t)G * N * Hm, 0.0), ro((size_t)G * N * Hm, 0.0);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int r = 0; r < m; r++) {
                std::vector<double> Ks(dh, 0.0), Vs(dh, 0.0);
                for (int t = 0; t < T; t++) {
                    const size_t i = (size_t)b * T + t, od = i * D + (size_t)h * dh, om = i * Hm + (size_t)h * m + r;
                    for (int j = 0; j < dh; j++) {
                        const size_t at = (size_t)(j / GSA_CW) * N * Hm + om;
                        Vs[j] = alpha[om] * Vs[j] + s[om] * (double)v[od + j];
                        Ks[j] = alpha[om] * Ks[j] + s[om] * (double)k[od + j];
                        rd[at] += Vs[j] * dO[od + j];
                        ro[at] += Ks[j] * q[od + j];
                    }
                }
            }
    const double ed = rel(dpp[0], rd), eo = rel(okp[0], ro);
    const int same = !memcmp(dpp[0].data(), dpp[1].data(), dpp[0].size() * 4) &&
                     !memcmp(okp[0].data(), okp[1].data(), okp[0].size() * 4);
    const int bad = !(ed < 1e-5) + !(eo < 1e-5) + !same;
    printf("rows B%d T%d H%d m%d dh%d (%d groups): dp parts %.1e ok parts %.1e (tol 1e-5)  float4 %s scalar  %s\n", B, T,
           H, m, dh, G, ed, eo, same ? "==" : "!=", bad ? "FAIL" : "PASS");
    return bad;
}

int main() {
    int bad = 0;
    bad += config_fwd(2, 11, 1, 64, 128, 0);   // 4 column ranges per row, 2 row ranges per column
    bad += config_fwd(2, 9, 1, 4, 128, 0);     // the register scan at S 2: 64 column ranges per row
    bad += config_fwd(1, 7, 2, 128, 128, 0);   // S 64 (MQAR's 128 slots), two heads
    bad += config_fwd(1, 5, 1, 16, 64, 0);     // S 4
    bad += config_fwd(1, 5, 1, 8, 32, 0);      // S 1: scalar loads
    bad += config_fwd(1, 9, 2, 5, 48, 0);      // few slots (P = 51), two heads
    bad += config_fwd(1, 6, 1, 300, 40, 0);    // more slots than threads: a row per thread in turn
    bad += config_fwd(2, 7, 1, 16, 300, 1);    // d_h above the block: a column per thread in turn
    bad += config_fwd(3, 1, 1, 64, 64, 2);     // the step form: one token from a given state
    bad += config_fwd(1, 5, 2, 33, 48, 2);
    bad += config_fwd(2, 11, 1, 64, 128, 3);   // the split forward: 4 column groups, one row block
    bad += config_fwd(1, 9, 2, 5, 48, 3);      // few slots, two heads, a 16-column last group
    bad += config_fwd(1, 6, 1, 300, 40, 3);    // 5 row blocks (the last of 44), 320 threads per column group
    bad += config_fwd(1, 5, 1, 256, 128, 3);   // RegBench's largest: m 256, d_h 128 (the scan's state in global)
    bad += config_rows(2, 11, 1, 64, 128);  // 4 full column groups
    bad += config_rows(1, 9, 2, 5, 48);     // two heads, a 16-column last group
    bad += config_rows(1, 6, 1, 100, 40);   // 2 row blocks (the last of 36), an 8-column last group
    bad += config(2, 13, 1, 5, 48);    // 64 threads, groups of 32 and 16 columns, few slots
    bad += config(1, 9, 2, 64, 32);    // two heads, one thread per slot
    bad += config(1, 7, 1, 100, 40);   // 128 threads: 2 and 8 row ranges per column sum
    bad += config(2, 5, 1, 256, 64);   // 256 threads, two full groups
    bad += config(1, 6, 1, 33, 33);    // 64 threads, a 1-column last group
    bad += config(2, 9, 1, 64, 128, 256);  // RB_CUDA_GSA_COLS_THREADS=256 at m 64: 4 and 8 row ranges per sum
    bad += config(1, 7, 1, 100, 40, 1024); // 1024 threads over 100 slots: a row range of 1-2 rows (or none)
    // the register form (and the shared one) at more shapes: 1 warp with rows past m, 4 and 16 warps
    bad += config(1, 9, 2, 4, 48);     // 4 slots, two heads, a 16-column last group
    bad += config(2, 7, 1, 16, 64);    // 16 slots, two full groups
    bad += config(1, 5, 2, 100, 48);   // 4 warps, the last with 4 rows; two heads
    bad += config(1, 5, 1, 128, 96);   // 4 full warps, 3 groups
    bad += config(1, 3, 1, 256, 128);  // RegBench's largest: m 256, d_h 128
    bad += config(1, 3, 1, 512, 40);   // GSA_BWDR_MAXM: 16 warps, an 8-column last group
    bad += config(2, 1, 1, 64, 32);    // T 1: no prefetch
    bad += config(1, 2, 2, 5, 48);     // T 2: one prefetch
    printf("%s\n", bad ? "FAILURES" : "all PASS");
    return bad != 0;
}
