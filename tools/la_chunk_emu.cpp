// la_chunk_emu.cpp — host emulation of the chunked training form of models/cuda/la.cu: the chunk states
// la_chunk_state_kernel<0> (S, z) and <1> (U, u), la_chunk_out_kernel (o, den), la_chunk_dqk_kernel (dphq,
// dphk) and la_chunk_dv_kernel (dv), each in both forms of la_tile_mm: fp32 FMAs (--precision fp32) and
// tf32 mma.sync (the default). One fiber per CUDA thread (cuda_emu.h, with its m16n8k8 tf32 mma
// emulation standing in for la.cu's two inline-PTX primitives), against a double reference of the
// sequential LA recurrence (la.c's scans, not the chunked regrouping). Depends on C++20 and the kernel text
// that tools/la_chunk_emu.sh cuts out of la.cu (kern.inc). Run it through that script.
//
// Why: the tensor-core form of la_tile_mm was written without a device. This checks its fragment indexing,
// the k permutation, the fragment -> acc exchange through sa / sb and the kernels' masks on random inputs:
// T 70 and 130 (partial last chunk), F 21 and 153 and d_h 48 and 128 (partial tiles), 2 heads, B 2 and 1. Error:
// max |kernel - reference| relative to the largest reference value per output. Tolerances: FMA 1e-5
// (float sums against double: measured <= 7.3e-7); TC 2e-3: tf32 keeps 11 significant bits, so each
// input is off by up to 2^-11 = 4.9e-4 relative and a product by up to ~1e-3, random in sign; over sums
// of tens to hundreds of terms that gives a few 1e-4 of the largest value (measured 1.8e-5 .. 5.4e-4,
// 4x under the tolerance), while a fragment or index error shows as 1e-2 .. O(1) (one k term in 153 of
// same-signed features already moves a sum by ~6e-3; the deliberate breaks tried gave 1.7e-2 .. 1.6 in
// every TC output). The states fed to out / dqk / dv are the reference's (in float), so each kernel is
// checked alone. Inputs end in NaN and outputs start as NaN, so a read past an input or an unwritten
// output shows. Each kernel run twice must give identical bytes.
// Also: the mma emulation against a plain loop on one 16 x 8 x 8 tile. It says nothing about speed.
#include "cuda_emu.h"
static unsigned la_tf32(float x) { return emu_to_tf32(x); }
static void la_mma_tf32(float (&d)[4], unsigned a0, unsigned a1, unsigned a2, unsigned a3, unsigned b0,
                        unsigned b1) {
    emu_mma_m16n8k8_tf32(d, a0, a1, a2, a3, b0, b1);
}
static float __uint_as_float(unsigned u) { float x; memcpy(&x, &u, 4); return x; }
static unsigned __float_as_uint(float x) { unsigned u; memcpy(&u, &x, 4); return u; }
#include <type_traits>
#include "kern.inc"
#include "emu_check.h"
static V nan_tail(V v) { v.resize(v.size() + 64, NAN); return v; }
static V f32(const W &w) { V v(w.begin(), w.end()); return v; }

// One shape: the kernels at both precisions against the reference.
static void config(int B, int T, int H, int F, int dh) {
    const int D = H * dh, HF = H * F, N = B * T, nc = (T + LA_C - 1) / LA_C, BH = B * H;
    const size_t fd = (size_t)F * dh, ss = fd + F;
    printf("B %d T %d H %d F %d d_h %d\n", B, T, H, F, dh);
    // features positive (den well away from 0, as in training), v, dO, dden of both signs, den in [1, 3]
    V phq = uni((size_t)N * HF, 0, 1), phk = uni((size_t)N * HF, 0, 1), v = uni((size_t)N * D, -1, 1);
    V dO = uni((size_t)N * D, -1, 1), den = uni((size_t)N * H, 1, 3), dden = uni((size_t)N * H, -1, 1);
    auto Q = [&](int b, int t, int h, int a) { return (double)phq[((size_t)b * T + t) * HF + (size_t)h * F + a]; };
    auto K = [&](int b, int t, int h, int a) { return (double)phk[((size_t)b * T + t) * HF + (size_t)h * F + a]; };
    auto Vv = [&](int b, int t, int h, int j) { return (double)v[((size_t)b * T + t) * D + (size_t)h * dh + j]; };
    auto dn = [&](int b, int t, int h, int j) {  // dnum = do / den (la.c)
        const size_t i = (size_t)b * T + t;
        return (double)dO[i * D + (size_t)h * dh + j] / den[i * H + h];
    };
    // reference: chunk states, o, den, dphq, dphk, dv
    W rS((size_t)BH * nc * ss, 0.0), rU((size_t)BH * nc * ss, 0.0), ro((size_t)N * D), rden((size_t)N * H);
    W rdq((size_t)N * HF), rdk((size_t)N * HF), rdv((size_t)N * D);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            const int bh = b * H + h;
            for (int c = 0; c < nc; c++) {
                double *S = &rS[((size_t)bh * nc + c) * ss], *U = &rU[((size_t)bh * nc + c) * ss];
                for (int s = 0; s < c * LA_C; s++)
                    for (int a = 0; a < F; a++) {
                        for (int j = 0; j < dh; j++) S[(size_t)a * dh + j] += K(b, s, h, a) * Vv(b, s, h, j);
                        S[fd + a] += K(b, s, h, a);
                    }
                for (int s = (c + 1) * LA_C; s < T; s++)
                    for (int a = 0; a < F; a++) {
                        for (int j = 0; j < dh; j++) U[(size_t)a * dh + j] += Q(b, s, h, a) * dn(b, s, h, j);
                        U[fd + a] += Q(b, s, h, a) * dden[((size_t)b * T + s) * H + h];
                    }
            }
            std::vector<W> qk(T, W(T, 0.0));  // qk[t][s] = phq_t . phk_s
            for (int t = 0; t < T; t++)
                for (int s = 0; s < T; s++)
                    for (int a = 0; a < F; a++) qk[t][s] += Q(b, t, h, a) * K(b, s, h, a);
            for (int t = 0; t < T; t++) {
                const size_t i = (size_t)b * T + t;
                double d = LA_EPS;
                for (int s = 0; s <= t; s++) d += qk[t][s];
                rden[i * H + h] = d;
                for (int j = 0; j < dh; j++) {
                    double num = 0, g = 0;
                    for (int s = 0; s <= t; s++) num += qk[t][s] * Vv(b, s, h, j);
                    for (int s = t; s < T; s++) g += qk[s][t] * dn(b, s, h, j);
                    ro[i * D + (size_t)h * dh + j] = num / d;
                    rdv[i * D + (size_t)h * dh + j] = g;
                }
            }
            std::vector<W> p(T, W(T, 0.0));  // p[t][s] = dnum_t . v_s + dden_t
            for (int t = 0; t < T; t++)
                for (int s = 0; s < T; s++) {
                    for (int j = 0; j < dh; j++) p[t][s] += dn(b, t, h, j) * Vv(b, s, h, j);
                    p[t][s] += dden[((size_t)b * T + t) * H + h];
                }
            for (int t = 0; t < T; t++)
                for (int a = 0; a < F; a++) {
                    double x = 0, y = 0;
                    for (int s = 0; s <= t; s++) x += p[t][s] * K(b, s, h, a);
                    for (int s = t; s < T; s++) y += p[s][t] * Q(b, s, h, a);
                    rdq[((size_t)b * T + t) * HF + (size_t)h * F + a] = x;
                    rdk[((size_t)b * T + t) * HF + (size_t)h * F + a] = y;
                }
        }
    const V S32 = nan_tail(f32(rS)), U32 = nan_tail(f32(rU));
    phq = nan_tail(phq); phk = nan_tail(phk); v = nan_tail(v); dO = nan_tail(dO); den = nan_tail(den);
    dden = nan_tail(dden);
    const dim3 gF{(unsigned)((F + LA_T - 1) / LA_T), (unsigned)((dh + LA_T - 1) / LA_T), (unsigned)BH};
    const dim3 gFc{(unsigned)((F + LA_T - 1) / LA_T), (unsigned)nc, (unsigned)BH};
    const dim3 gDc{(unsigned)((dh + LA_T - 1) / LA_T), (unsigned)nc, (unsigned)BH};
    for (int tc = 0; tc < 2; tc++) {
        const double tol = tc ? 2e-3 : 1e-5;
        const char *form = tc ? "tf32 mma" : "fp32 FMA";
        V out[2][7];  // [run]: S, U, o, den, dphq, dphk, dv
        for (int run = 0; run < 2; run++) {
            V &S = out[run][0], &U = out[run][1], &o = out[run][2], &de = out[run][3], &dq = out[run][4];
            V &dk = out[run][5], &dvv = out[run][6];
            S.assign((size_t)BH * nc * ss, NAN); U.assign(S.size(), NAN); o.assign((size_t)N * D, NAN);
            de.assign((size_t)N * H, NAN); dq.assign((size_t)N * HF, NAN); dk.assign(dq.size(), NAN);
            dvv.assign((size_t)N * D, NAN);
            launch(gF, 256, [&] {
                (tc ? la_chunk_state_kernel<0, true> : la_chunk_state_kernel<0, false>)(
                    S.data(), phk.data(), v.data(), den.data(), dden.data(), T, H, F, dh, nc);
            });
            launch(gF, 256, [&] {
                (tc ? la_chunk_state_kernel<1, true> : la_chunk_state_kernel<1, false>)(
                    U.data(), phq.data(), dO.data(), den.data(), dden.data(), T, H, F, dh, nc);
            });
            launch(gDc, 256, [&] {
                (tc ? la_chunk_out_kernel<true> : la_chunk_out_kernel<false>)(
                    o.data(), de.data(), phq.data(), phk.data(), v.data(), S32.data(), T, H, F, dh, nc);
            });
            launch(gFc, 256, [&] {
                (tc ? la_chunk_dqk_kernel<true> : la_chunk_dqk_kernel<false>)(
                    dq.data(), dk.data(), phq.data(), phk.data(), v.data(), dO.data(), den.data(), dden.data(),
                    S32.data(), U32.data(), T, H, F, dh, nc);
            });
            launch(gDc, 256, [&] {
                (tc ? la_chunk_dv_kernel<true> : la_chunk_dv_kernel<false>)(
                    dvv.data(), phq.data(), phk.data(), dO.data(), den.data(), U32.data(), T, H, F, dh, nc);
            });
        }
        char l[64];
        static const char *names[] = {"state<0> S|z", "state<1> U|u", "out o", "out den", "dqk dphq", "dqk dphk",
                                      "dv dv"};
        const W *refs[] = {&rS, &rU, &ro, &rden, &rdq, &rdk, &rdv};
        for (int k = 0; k < 7; k++) {
            snprintf(l, sizeof l, "%s %s", form, names[k]);
            report(l, out[0][k], *refs[k], tol);
            same(l, out[0][k], out[1][k]);
        }
    }
}

// The mma emulation on one warp against a plain loop over the same tf32-rounded inputs: bit for bit
// against float sums in the same order (k ascending, then C), and within 1e-6 of double sums.
static void mma_selfcheck(void) {
    V A = uni(16 * 8, -2, 2), Bm = uni(8 * 8, -2, 2), C = uni(16 * 8, -2, 2), Dm(16 * 8, NAN);
    auto r = [](float x) { unsigned u = emu_to_tf32(x); float y; memcpy(&y, &u, 4); return y; };
    launch(dim3{1, 1, 1}, 32, [&] {
        const int l = threadIdx.x, g = l / 4, q = l % 4;
        float d[4] = {C[g * 8 + 2 * q], C[g * 8 + 2 * q + 1], C[(g + 8) * 8 + 2 * q], C[(g + 8) * 8 + 2 * q + 1]};
        emu_mma_m16n8k8_tf32(d, emu_to_tf32(A[g * 8 + q]), emu_to_tf32(A[(g + 8) * 8 + q]),
                             emu_to_tf32(A[g * 8 + q + 4]), emu_to_tf32(A[(g + 8) * 8 + q + 4]),
                             emu_to_tf32(Bm[q * 8 + g]), emu_to_tf32(Bm[(q + 4) * 8 + g]));
        for (int k = 0; k < 4; k++) Dm[(g + 8 * (k >> 1)) * 8 + 2 * q + (k & 1)] = d[k];
    });
    int bits = 0;
    double mx = 0;
    for (int m = 0; m < 16; m++)
        for (int n = 0; n < 8; n++) {
            float s = 0.f;
            double e = 0;
            for (int k = 0; k < 8; k++) {
                s += r(A[m * 8 + k]) * r(Bm[k * 8 + n]);
                e += (double)r(A[m * 8 + k]) * r(Bm[k * 8 + n]);
            }
            s += C[m * 8 + n];
            e += C[m * 8 + n];
            bits += memcmp(&s, &Dm[m * 8 + n], 4) != 0;
            mx = std::max(mx, fabs(Dm[m * 8 + n] - e) / std::max(1.0, fabs(e)));
        }
    // rounding itself: ties go away from zero, the low 13 bits clear
    const float t0 = r(1.f + 0x1p-11f), t1 = r(-(1.f + 0x1p-11f)), t2 = r(1.f + 0x1p-11f - 0x1p-23f);
    const bool rna = t0 == 1.f + 0x1p-10f && t1 == -(1.f + 0x1p-10f) && t2 == 1.f;
    checks++;
    const bool ok = bits == 0 && mx <= 1e-6 && rna;
    if (!ok) fails++;
    printf("mma m16n8k8 tf32 emulation vs loop: %d of 128 differ in bits, err vs double %.1e (tol 1e-6), "
           "cvt.rna ties %s  %s\n", bits, mx, rna ? "ok" : "WRONG", ok ? "PASS" : "FAIL");
}

int main() {
    emu_rng.seed(5);
    mma_selfcheck();
    config(2, 70, 2, 21, 48);
    config(1, 130, 1, 153, 128);
    config(1, 70, 2, 153, 48);
    printf("la_chunk_emu: %d checks, %d failed\n", checks, fails);
    return fails ? 1 : 0;
}
