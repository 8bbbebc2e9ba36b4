// mamba_conv_emu.cpp — host emulation of the depthwise causal conv kernels of models/cuda/mamba.cu
// (conv_forward_kernel<V>, conv_backward_kernel<V>, layers.cu's shortconv_wgrad_final_kernel): one fiber per CUDA
// thread (cuda_emu.h). Depends on C++20 and the kernel text that tools/mamba_conv_emu.sh cuts out of
// mamba.cu and layers.cuh (kern.inc). Run it through that script.
//
// Checks, per shape (T not a multiple of the backward's 16-token run nor of its 128-token partial row;
// E % 4 == 0, the float4 instance, and E % 4 != 0 (18, 42, 22), the scalar one; E over 32 V: more than
// one block across the channels):
//   - xs, dxz (x half), dw, db against a double reference that mirrors mamba.c (conv_forward_seq, the
//     silu derivative of mamba_backward, conv_backward_blk; dw, db accumulate onto random values): max
//     error relative to the largest reference magnitude, tolerance 1e-5;
//   - xs bit for bit against the previous one-thread-per-element conv_forward_kernel (its text below);
//     dxz bit for bit against the previous one-thread-per-(b, c) conv_backward_kernel (below);
//   - at E % 4 == 0 the V = 1 instance bit for bit against the V = 4 one (xs, dxz, dw, db);
//   - the backward (kernel + reduce) twice from the same start: identical bytes (dxz, partials, dw, db);
//   - the z half of dxz and everything past the arrays untouched (sentinels; the script also builds
//     with AddressSanitizer where it can, which catches reads past the inputs).
// Exit 0 when everything passes. Built without FMA contraction (host); on the device the old and new
// forms contract alike (per element the same expressions). Says nothing about speed on the real hardware.
#include "cuda_emu.h"
#include <cstdint>
#define MAMBA_CONV_K 4
#define __expf expf
#include "kern.inc"  // layers.cuh ChanVec helpers; mamba.cu #define K, sigm, the conv kernels

// ---- the previous kernels (mamba.cu before the vectorised / chunked forms), the bit-for-bit references
__global__ void old_conv_forward_kernel(float *xs, const float *xz, const float *w, const float *bias, int T,
                                        int E, long long n) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    int c = (int)(i % E);
    long long m = i / E;
    int t = (int)(m % T);
    float o = bias[c];
#pragma unroll
    for (int k = 0; k < K; k++) {
        int ts = t - (K - 1) + k;  // tap K-1 is the current token
        if (ts >= 0) o += w[c * K + k] * xz[(m - (K - 1) + k) * 2 * E + c];
    }
    xs[i] = o * sigm(o);
}
__global__ void old_conv_backward_kernel(float *dxz, float *dcw_part, float *dcb_part, const float *dxs,
                                         const float *xz, const float *w, const float *bias, int T, int E) {
    const int c = blockIdx.x * blockDim.x + threadIdx.x, b = blockIdx.y;
    if (c >= E) return;
    float wk[K], gw[K], fut[K - 1];  // fut[j] = dxc at t + 1 + j
#pragma unroll
    for (int k = 0; k < K; k++) { wk[k] = w[c * K + k]; gw[k] = 0.f; }
#pragma unroll
    for (int j = 0; j < K - 1; j++) fut[j] = 0.f;
    float gb = 0.f;
    const float bc = bias[c];
    const float *xb = xz + (size_t)b * T * 2 * E + c;
    for (int t = T - 1; t >= 0; t--) {
        float xin[K];
        float o = bc;
#pragma unroll
        for (int k = 0; k < K; k++) {
            int ts = t - (K - 1) + k;
            xin[k] = ts >= 0 ? xb[(size_t)ts * 2 * E] : 0.f;
            o += wk[k] * xin[k];
        }
        const float s = sigm(o), gx = dxs[((size_t)b * T + t) * E + c] * s * (1.f + o * (1.f - s));
        gb += gx;
#pragma unroll
        for (int k = 0; k < K; k++) gw[k] += gx * xin[k];
        float d = wk[K - 1] * gx;
#pragma unroll
        for (int k = K - 2; k >= 0; k--) d += wk[k] * fut[K - 2 - k];
        dxz[((size_t)b * T + t) * 2 * E + c] = d;
#pragma unroll
        for (int j = K - 2; j > 0; j--) fut[j] = fut[j - 1];
        fut[0] = gx;
    }
#pragma unroll
    for (int k = 0; k < K; k++) dcw_part[((size_t)b * E + c) * K + k] = gw[k];
    dcb_part[(size_t)b * E + c] = gb;
}
// The old kernels use no barrier: run their threads one after another.
static void serial(dim3 g, int nthr, const std::function<void()> &body) {
    gridDim = g; blockDim.x = nthr;
    for (unsigned bz = 0; bz < g.z; bz++)
        for (unsigned by = 0; by < g.y; by++)
            for (unsigned bx = 0; bx < g.x; bx++)
                for (int t = 0; t < nthr; t++) {
                    blockIdx.x = bx; blockIdx.y = by; blockIdx.z = bz; threadIdx.x = t;
                    body();
                }
}

// ---- double reference: mamba.c's loops -----------------------------------------------------------
static double sigd(double v) { return 1 / (1 + exp(-v)); }
// conv_forward_seq for every b: xc = bias + sum of the taps inside the sequence; xs = silu(xc)
static void ref_forward(std::vector<double> &xc, std::vector<double> &xs, const float *xz, const float *w,
                        const float *bias, int B, int T, int E) {
    xc.assign((size_t)B * T * E, 0); xs.assign((size_t)B * T * E, 0);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            size_t m = (size_t)b * T + t;
            for (int c = 0; c < E; c++) {
                double o = bias[c];
                for (int k = 0; k < K; k++) {
                    int ts = t - (K - 1) + k;
                    if (ts >= 0) o += (double)w[c * K + k] * xz[((size_t)b * T + ts) * 2 * E + c];
                }
                xc[m * E + c] = o;
                xs[m * E + c] = o * sigd(o);
            }
        }
}
// mamba_backward's dxc = dxs silu'(xc), then conv_backward_blk over all channels (dw, db +=)
static void ref_backward(std::vector<double> &dxz, std::vector<double> &dw, std::vector<double> &db,
                         const float *dxs, const float *xz, const float *w, const float *bias, int B, int T, int E) {
    std::vector<double> xc, xs, dxc((size_t)B * T * E);
    ref_forward(xc, xs, xz, w, bias, B, T, E);
    for (size_t j = 0; j < dxc.size(); j++) {
        double v = xc[j], s = sigd(v);
        dxc[j] = dxs[j] * (s * (1 + v * (1 - s)));
    }
    dxz.assign((size_t)B * T * E, 0);  // the x half only: [M, E]
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            size_t m = (size_t)b * T + t;
            for (int c = 0; c < E; c++) {
                double gx = dxc[m * E + c], o = 0;
                db[c] += gx;
                for (int k = 0; k < K; k++) {
                    int ts = t - (K - 1) + k;  // x[ts] fed output t through tap k
                    if (ts >= 0) dw[(size_t)c * K + k] += gx * xz[((size_t)b * T + ts) * 2 * E + c];
                    int tf = t + (K - 1) - k;  // output tf read x[t] through tap k
                    if (tf < T) o += dxc[((size_t)b * T + tf) * E + c] * w[(size_t)c * K + k];
                }
                dxz[m * E + c] = o;
            }
        }
}

// ---- helpers --------------------------------------------------------------------------------------
static std::mt19937 rng(11);
static const float SENT = -12345.f;  // sentinel past every output array
// n random floats (never all zero), plus `pad` sentinel floats after them
static std::vector<float> rnd(size_t n, float sd, size_t pad = 0) {
    std::normal_distribution<float> d(0.f, sd);
    std::vector<float> v(n + pad, SENT);
    for (size_t i = 0; i < n; i++) v[i] = d(rng);
    return v;
}
static bool tail_ok(const std::vector<float> &v, size_t n) {
    for (size_t i = n; i < v.size(); i++)
        if (memcmp(&v[i], &SENT, 4)) return false;
    return true;
}
// max |got - ref| over max |ref|; INFINITY on a non-finite value
static double relerr(const float *got, const double *ref, size_t n, size_t gstride = 1, size_t gw = 0) {
    double mx = 0, sc = 0;
    for (size_t i = 0; i < n; i++) {
        size_t gi = gw ? (i / gw) * gstride + i % gw : i;
        if (!std::isfinite(got[gi])) return INFINITY;
        mx = std::max(mx, fabs(got[gi] - ref[i]));
        sc = std::max(sc, fabs(ref[i]));
    }
    return mx / (sc > 0 ? sc : 1);
}
static const double TOL = 1e-5;
static int fails = 0;
static void report(const char *what, double err, double tol) {
    bool ok = err <= tol;
    printf("    %-46s err %.2e  tol %.1e  %s\n", what, err, tol, ok ? "PASS" : "FAIL");
    fails += !ok;
}
static void report_same(const char *what, bool same) {
    printf("    %-46s %s\n", what, same ? "identical  PASS" : "DIFFER  FAIL");
    fails += !same;
}
static bool same_bytes(const std::vector<float> &a, const std::vector<float> &b) {
    return a.size() == b.size() && !memcmp(a.data(), b.data(), a.size() * 4);
}

// The new kernels as mamba_cuda_forward / mamba_cuda_backward launch them (V forced).
struct Bwd { std::vector<float> dxz, part, dw, db; };
template <int V>
static std::vector<float> run_forward(const std::vector<float> &xz, const std::vector<float> &w,
                                      const std::vector<float> &bias, int B, int T, int E, size_t pad) {
    std::vector<float> xs((size_t)B * T * E + pad, SENT);
    dim3 g; g.x = (E / V + 31) / 32; g.y = ((T + CONV_FT - 1) / CONV_FT + CONV_WARPS - 1) / CONV_WARPS; g.z = B;
    launch(g, 32 * CONV_WARPS, [&] { conv_forward_kernel<V>(xs.data(), xz.data(), w.data(), bias.data(), T, E); });
    return xs;
}
template <int V>
static Bwd run_backward(const std::vector<float> &dxz0, const std::vector<float> &dxs, const std::vector<float> &xz,
                        const std::vector<float> &w, const std::vector<float> &bias, const std::vector<float> &dw0,
                        const std::vector<float> &db0, int B, int T, int E, size_t pad) {
    Bwd o;
    o.dxz = dxz0; o.dw = dw0; o.db = db0;
    const int crow = conv_part_rows(T);
    // the ctx's dconv_part size at (Bmax, Tmax) = (B, T), then sentinels
    o.part.assign((size_t)B * crow * (K + 1) * E + pad, SENT);
    dim3 g; g.x = (E / V + 31) / 32; g.y = crow; g.z = B;
    launch(g, 32 * CONV_WARPS, [&] { conv_backward_kernel<V>(o.dxz.data(), o.part.data(), dxs.data(), xz.data(),
                                                              w.data(), bias.data(), T, E); });
    dim3 gr; gr.x = ((K + 1) * E + 31) / 32;
    launch(gr, 1024, [&] { shortconv_wgrad_final_kernel(o.dw.data(), o.db.data(), o.part.data(), B * crow, E, K); });
    return o;
}

static void shape(int B, int T, int E) {
    const size_t M = (size_t)B * T, pad = 40;
    printf("B%d T%d E%d (V = %d, %d channel block(s), %d partial row(s) per sequence)\n", B, T, E,
           E % 4 == 0 ? 4 : 1, (E / (E % 4 == 0 ? 4 : 1) + 31) / 32, conv_part_rows(T));
    auto xz = rnd(M * 2 * E, 1.f), w = rnd((size_t)E * K, 0.5f), bias = rnd(E, 0.5f), dxs = rnd(M * E, 1.f);
    auto dxz0 = rnd(M * 2 * E, 1.f, pad), dw0 = rnd((size_t)E * K, 0.1f, pad), db0 = rnd(E, 0.1f, pad);
    // forward
    std::vector<float> xs = E % 4 == 0 ? run_forward<4>(xz, w, bias, B, T, E, pad) : run_forward<1>(xz, w, bias, B, T, E, pad);
    std::vector<double> xcr, xsr;
    ref_forward(xcr, xsr, xz.data(), w.data(), bias.data(), B, T, E);
    report("xs vs double reference", relerr(xs.data(), xsr.data(), M * E), TOL);
    std::vector<float> xso(M * E + pad, SENT);
    long long n = (long long)M * E;
    dim3 g1; g1.x = (unsigned)((n + 255) / 256);
    serial(g1, 256, [&] { old_conv_forward_kernel(xso.data(), xz.data(), w.data(), bias.data(), T, E, n); });
    report_same("xs vs previous conv_forward_kernel, bits", same_bytes(xs, xso));
    // backward, twice
    Bwd a = E % 4 == 0 ? run_backward<4>(dxz0, dxs, xz, w, bias, dw0, db0, B, T, E, pad)
                       : run_backward<1>(dxz0, dxs, xz, w, bias, dw0, db0, B, T, E, pad);
    Bwd a2 = E % 4 == 0 ? run_backward<4>(dxz0, dxs, xz, w, bias, dw0, db0, B, T, E, pad)
                        : run_backward<1>(dxz0, dxs, xz, w, bias, dw0, db0, B, T, E, pad);
    std::vector<double> dxr, dwr(dw0.begin(), dw0.begin() + E * K), dbr(db0.begin(), db0.begin() + E);
    ref_backward(dxr, dwr, dbr, dxs.data(), xz.data(), w.data(), bias.data(), B, T, E);
    report("dxz (x half) vs double reference", relerr(a.dxz.data(), dxr.data(), M * E, 2 * E, E), TOL);
    report("dw (+= onto random) vs double reference", relerr(a.dw.data(), dwr.data(), (size_t)E * K), TOL);
    report("db (+= onto random) vs double reference", relerr(a.db.data(), dbr.data(), E), TOL);
    std::vector<float> dxo = dxz0, pwo((size_t)B * E * K), pbo((size_t)B * E);
    dim3 g2; g2.x = (E + 63) / 64; g2.y = B;
    serial(g2, 64, [&] { old_conv_backward_kernel(dxo.data(), pwo.data(), pbo.data(), dxs.data(), xz.data(),
                                                  w.data(), bias.data(), T, E); });
    report_same("dxz vs previous conv_backward_kernel, bits", same_bytes(a.dxz, dxo));
    bool zok = true;
    for (size_t m = 0; m < M; m++) zok &= !memcmp(&a.dxz[m * 2 * E + E], &dxz0[m * 2 * E + E], (size_t)E * 4);
    bool tails = tail_ok(xs, M * E) && tail_ok(a.dxz, M * 2 * E) && tail_ok(a.dw, (size_t)E * K) &&
                 tail_ok(a.db, E) && tail_ok(a.part, (size_t)B * conv_part_rows(T) * (K + 1) * E);
    report_same("z half of dxz, array tails untouched", zok && tails);
    report_same("backward twice: dxz, partials, dw, db bytes",
                same_bytes(a.dxz, a2.dxz) && same_bytes(a.part, a2.part) && same_bytes(a.dw, a2.dw) &&
                    same_bytes(a.db, a2.db));
    if (E % 4 == 0) {
        std::vector<float> xs1 = run_forward<1>(xz, w, bias, B, T, E, pad);
        Bwd b1 = run_backward<1>(dxz0, dxs, xz, w, bias, dw0, db0, B, T, E, pad);
        report_same("V = 1 vs V = 4 instance: xs, dxz, dw, db bits",
                    same_bytes(xs, xs1) && same_bytes(a.dxz, b1.dxz) && same_bytes(a.dw, b1.dw) &&
                        same_bytes(a.db, b1.db));
    }
}

int main() {
    // the launch's choice of instance: V = 4 only where E % 4 == 0 and all three rows 16-byte aligned
    alignas(16) static float buf[64];
    bool pick = conv_v4(48, buf, buf + 4, buf + 8) && !conv_v4(18, buf, buf + 4, buf + 8) &&
                !conv_v4(48, buf, buf + 1, buf + 8) && !conv_v4(48, buf, buf + 4, buf + 10) &&
                conv_v4(48, buf, buf + 4, nullptr);
    printf("conv_v4 picks V = 4 only at E %% 4 == 0 with 16-byte aligned rows: %s\n", pick ? "PASS" : "FAIL");
    fails += !pick;
    const int shapes[][3] = {
        {3, 37, 48},   // V = 4 (and V = 1 bit for bit), one partial row, last run 5 tokens
        {2, 300, 20},  // V = 4, 3 partial rows (300 = 2 x 128 + 44), last run 12 tokens
        {3, 37, 18},   // V = 1 (E % 4 != 0)
        {2, 300, 42},  // V = 1 over 42 lanes: two channel blocks
        {2, 129, 136}, // V = 4 over 34 lanes: two channel blocks; 129 = one token past a partial row
        {3, 2, 22},    // V = 1, T < K - 1: every output has taps before the start
        {2, 17, 44},   // V = 4, one token past a run
    };
    for (auto &s : shapes) shape(s[0], s[1], s[2]);
    printf("%s\n", fails ? "FAILURES" : "all PASS");
    return fails != 0;
}
