// attn_emu.cpp — host emulation of the attention kernels of models/cuda/attention.cu, both forms: tf32 tensor
// cores (attn_fwd_fa_kernel: out, lse; attn_bwd_dq_fa_kernel: dq; attn_bwd_dkdv_fa_kernel: dk, dv) and fp32 FMA
// tiles (attn_fwd_kernel, attn_bwd_dq_kernel, attn_bwd_dkdv_kernel), with attn_dsum_kernel between forward and
// backward; one fiber per CUDA thread (cuda_emu.h, its m16n8k8 tf32 mma emulation standing in for the kernels'
// inline PTX), against a double reference of causal softmax attention with per-head windows (the sums of
// layers.c's mha_forward / mha_backward, written out directly). Depends on C++20 and the kernel text that
// tools/attn_emu.sh cuts out of attention.cu (kern.inc). Run it through that script.
//
// Why: the tensor-core kernels keep every score in registers in the mma accumulator layout and reuse it as
// the next product's A fragment through a k-slot permutation, and both forms pipeline their tiles with
// cp.async; an index, mask, pipeline or barrier error there shows here on random inputs without a device.
// Shapes: T 70, 130 and 200 (partial last tiles of 64 and 32), d_h 48, 64, 96 and 128 (padded or whole), d_h 14
// and 21 with D % 4 != 0 (the plain loads), 1-3 heads, windows 1, 5, 40, 65 and 129 (tiles crossing a window
// edge), B 1 and 2. Inputs are uniform in (-2, 2) (scores of spread ~1.3: softmax far from uniform); the
// backward takes the kernel's own forward (out, lse) and Dsum from attn_dsum_kernel, as the device does. Error:
// max |kernel - reference| over the largest reference value, per output. Tolerances: tf32 4e-3 (tf32 keeps 11
// significant bits, so inputs are off by up to 4.9e-4 relative; the dot products and the exponent amplify that
// to ~1e-3, measured below, while an index or fragment error moves outputs by 1e-2 .. O(1)); fp32 2e-5
// (float sums against double: measured <= 5e-7). Outputs start as NaN (an unwritten element fails), and each
// kernel run twice, every block in another of cuda_emu.h's three modes the second time, must give identical bytes.
#include "cuda_emu.h"
using std::max;
static float emu_smem[1 << 16];
static unsigned att_tf32(float x) { return emu_to_tf32(x); }
static unsigned __float_as_uint(float x) { unsigned u; memcpy(&u, &x, 4); return u; }
static float __uint_as_float(unsigned u) { float x; memcpy(&x, &u, 4); return x; }
static unsigned rb_tf32_bits(float x) { return emu_to_tf32(x); }
// The kernels feed the mma only tf32 values (their inputs arrive rounded, P and dS are rounded at the
// fragment): a value with any of its low 13 bits set would be truncated by the tensor cores, where this
// emulation would use it whole, so it aborts instead.
static void att_mma_tf32(float (&d)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
    for (unsigned u : {a[0], a[1], a[2], a[3], b0, b1})
        if (u & 0x1fffu) {
            fprintf(stderr, "attn_emu: an mma input is not a tf32 value (0x%08x)\n", u);
            exit(1);
        }
    emu_mma_m16n8k8_tf32(d, a[0], a[1], a[2], a[3], b0, b1);
}
// ldmatrix.x4 (b16 pairs = 32-bit elements): lane l posts its row address; r[i] = element l % 4 of the row
// that lane 8 i + l / 4 posted.
static const float *ldsm_row[32][32];
static void att_ldsm4(unsigned (&r)[4], const float *p) {
    const int w = threadIdx.x / 32, l = threadIdx.x % 32;
    ldsm_row[w][l] = p;
    emu_arrive(warp_bar[w]);
    for (int i = 0; i < 4; i++) memcpy(&r[i], ldsm_row[w][8 * i + l / 4] + l % 4, 4);
    emu_arrive(warp_bar[w]);
}
// cp.async, at either end of its window, by the block's mode (cuda_emu.h): in modes 0 and 1 a copy lands only
// when its thread waits for its group (cp.async.wait_group N: all but the newest N groups complete), so a
// kernel that reads a tile before waiting for it (or whose wait count is off, or that reads another thread's
// copies without a barrier after the wait) reads the previous tile's data; in mode 2 (warp by warp) it lands
// at once, so a warp that refills a buffer before the others are done reading it (a missing barrier before
// the refill) overwrites what they read. Either way the output is wrong.
struct EmuCopy { float *dst; const float *src; int n, zero; };
static std::vector<EmuCopy> emu_open[1024];
static std::vector<std::vector<EmuCopy>> emu_groups[1024];
static void emu_copy(const EmuCopy &c) {
    for (int i = 0; i < c.n; i++) c.dst[i] = c.zero ? 0.f : c.src[i];
}
static void emu_issue(const EmuCopy &c) {
    if (emu_eager) emu_copy(c);
    else emu_open[threadIdx.x].push_back(c);
}
static void cp_async16(float *dst, const float *src, int src_bytes) { emu_issue({dst, src, 4, !src_bytes}); }
static void cp_async4(float *dst, const float *src, int src_bytes) { emu_issue({dst, src, 1, !src_bytes}); }
static void cp_async_commit() { emu_groups[threadIdx.x].push_back(std::move(emu_open[threadIdx.x])); emu_open[threadIdx.x].clear(); }
template <int N> static void cp_async_wait() {
    auto &g = emu_groups[threadIdx.x];
    while (g.size() > (size_t)N) {
        for (const EmuCopy &c : g.front()) emu_copy(c);
        g.erase(g.begin());
    }
}
// at a block's start (each thread): copies a previous block issued and never waited for are a kernel error
static void emu_async_begin() {
    bool left = !emu_open[threadIdx.x].empty();
    for (auto &g : emu_groups[threadIdx.x]) left |= !g.empty();
    if (left) { fprintf(stderr, "attn_emu: a block ended with cp.async copies it never waited for\n"); exit(1); }
    emu_groups[threadIdx.x].clear();
}
#include "kern.inc"
#include "emu_check.h"

static int pad_dh(int dh) {
    for (int s : {16, 32, 48, 64, 96, 128})
        if (dh <= s) return s;
    return 0;
}

// one case: B sequences of T tokens, H heads of dh, windows w[h] (0 = causal attention)
template <int DHP> static void run_case(int B, int T, int H, int dh, std::vector<int> w) {
    const int D = H * dh, ld = 3 * D;
    char name[128];
    snprintf(name, sizeof name, "B%d T%d H%d dh%d W", B, T, H, dh);
    for (int h = 0; h < H; h++) snprintf(name + strlen(name), sizeof name - strlen(name), "%s%d", h ? "," : "", w[h]);
    printf("%s (DHP %d)\n", name, DHP);
    V qkv = uni((size_t)B * T * ld, -2, 2), G = uni((size_t)B * T * D, -1, 1);
    // what the tf32 kernels get: q | k | v rounded by their projection (cuda_linear_forward_tf32), dO by
    // attn_dsum_kernel (checked below) after it formed Dsum from the unrounded dO; the reference takes the
    // unrounded values, as does the fp32 form
    auto tf32v = [](const V &x) { V y(x); for (auto &v : y) { unsigned u = emu_to_tf32(v); memcpy(&v, &u, 4); } return y; };
    const V qkv_r = tf32v(qkv), G_r = tf32v(G);
    AttWin win;
    for (int h = 0; h < RB_MAX_HEADS; h++) win.win[h] = h < H ? w[h] : 0;
    const float scale = (float)(1 / sqrt((double)dh));
    const bool vec = dh % 4 == 0 && D % 4 == 0;
    // reference, double
    W out((size_t)B * T * D), lse((size_t)B * H * T), dqkv((size_t)B * T * ld, 0.0);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            const int Wh = w[h] > 0 ? w[h] : 1 << 29;
            for (int t = 0; t < T; t++) {
                const float *qt = &qkv[((size_t)b * T + t) * ld + h * dh];
                std::vector<double> s(T, -INFINITY), p(T, 0.0), dp(T, 0.0);
                double mx = -INFINITY;
                for (int k = 0; k <= t; k++) {
                    if (t - k >= Wh) continue;
                    const float *kk = &qkv[((size_t)b * T + k) * ld + D + h * dh];
                    double d = 0;
                    for (int c = 0; c < dh; c++) d += (double)qt[c] * kk[c];
                    s[k] = d * scale;
                    mx = std::max(mx, s[k]);
                }
                double z = 0;
                for (int k = 0; k <= t; k++) z += s[k] == -INFINITY ? 0 : exp(s[k] - mx);
                for (int k = 0; k <= t; k++) p[k] = s[k] == -INFINITY ? 0 : exp(s[k] - mx) / z;
                lse[((size_t)b * H + h) * T + t] = mx + log(z);
                const float *g = &G[((size_t)b * T + t) * D + h * dh];
                double Ds = 0;
                for (int c = 0; c < dh; c++) {
                    double o = 0;
                    for (int k = 0; k <= t; k++) o += p[k] * qkv[((size_t)b * T + k) * ld + 2 * D + h * dh + c];
                    out[((size_t)b * T + t) * D + h * dh + c] = o;
                    Ds += o * g[c];
                }
                for (int k = 0; k <= t; k++) {
                    if (p[k] == 0) continue;
                    const float *kk = &qkv[((size_t)b * T + k) * ld + D + h * dh], *vv = kk + D;
                    double d = 0;
                    for (int c = 0; c < dh; c++) d += (double)g[c] * vv[c];
                    const double ds = p[k] * (d - Ds);
                    double *dq = &dqkv[((size_t)b * T + t) * ld + h * dh], *dk = &dqkv[((size_t)b * T + k) * ld + D + h * dh];
                    for (int c = 0; c < dh; c++) {
                        dq[c] += scale * ds * kk[c];
                        dk[c] += scale * ds * qt[c];
                        dk[D + c] += p[k] * g[c];
                    }
                }
            }
        }
    // kernels: the tf32 form (tc) on the rounded q | k | v, the fp32 form on them as they are; each forward and
    // backward run twice, the second time with every block under the other schedule
    for (int tc = 1; tc >= 0; tc--) {
        const char *form = tc ? "tf32" : "fp32";
        const double tol = tc ? 4e-3 : 2e-5;
        const V &in = tc ? qkv_r : qkv;
        typedef Cfg<DHP> C;
        auto fwd = [&](V &o, V &l) {
            o.assign((size_t)B * T * D, NAN);
            l.assign((size_t)B * H * T, NAN);
            if (tc)
                launch(dim3{(unsigned)((T + FA_R - 1) / FA_R), (unsigned)(B * H), 1}, FA_THR, [&] {
                    emu_async_begin();
                    attn_fwd_fa_kernel<DHP>(o.data(), D, l.data(), in.data(), ld, win, T, H, dh, scale, vec);
                });
            else
                launch(dim3{(unsigned)((T + ATT_B - 1) / ATT_B), (unsigned)(B * H), 1}, C::NW * 32, [&] {
                    emu_async_begin();
                    attn_fwd_kernel<DHP, C::NW>(o.data(), D, l.data(), in.data(), ld, win, T, H, dh, scale, vec);
                });
        };
        V o1, l1, o2, l2;
        fwd(o1, l1);
        emu_sched_base++;
        fwd(o2, l2);
        char what[64];
        snprintf(what, sizeof what, "%s forward out", form);
        report(what, o1, out, tol);
        snprintf(what, sizeof what, "%s forward lse", form);
        report(what, l1, lse, tol);
        snprintf(what, sizeof what, "%s forward out", form);
        same(what, o1, o2);
        // Dsum = dO . out by attn_dsum_kernel (tf32: then dO rounded in place, as the device does)
        V dsum((size_t)B * H * T, NAN), Gk(G);
        const long long nw = (long long)B * T * H;
        launch(dim3{(unsigned)((nw * 32 + 255) / 256), 1, 1}, 256,
               [&] { attn_dsum_kernel(dsum.data(), Gk.data(), o1.data(), D, (int)nw, T, H, dh, tc); });
        if (tc) {
            checks++;
            const bool r = !memcmp(Gk.data(), G_r.data(), Gk.size() * 4);
            fails += !r;
            printf("  %-40s %s\n", "tf32 dO rounded by attn_dsum_kernel", r ? "= tf32(dO), every element" : "DIFFERS (FAIL)");
        }
        auto bwd = [&](V &d) {
            d.assign((size_t)B * T * ld, NAN);
            if (tc) {
                dim3 grid{(unsigned)((T + FA_R - 1) / FA_R), (unsigned)(B * H), 1};
                launch(grid, FA_THR, [&] {
                    emu_async_begin();
                    attn_bwd_dkdv_fa_kernel<DHP>(d.data(), ld, Gk.data(), D, l1.data(), dsum.data(), in.data(), ld, win, T,
                                                 H, dh, scale, vec);
                });
                launch(grid, FA_THR, [&] {
                    emu_async_begin();
                    attn_bwd_dq_fa_kernel<DHP>(d.data(), ld, Gk.data(), D, l1.data(), dsum.data(), in.data(), ld, win, T, H,
                                               dh, scale, vec);
                });
            } else {
                dim3 grid{(unsigned)((T + ATT_B - 1) / ATT_B), (unsigned)(B * H), 1};
                launch(grid, C::NW * 32, [&] {
                    emu_async_begin();
                    attn_bwd_dkdv_kernel<DHP, C::NW>(d.data(), ld, Gk.data(), D, l1.data(), dsum.data(), in.data(), ld,
                                                     win, T, H, dh, scale, vec);
                });
                launch(grid, C::NW * 32, [&] {
                    emu_async_begin();
                    attn_bwd_dq_kernel<DHP, C::NW>(d.data(), ld, Gk.data(), D, l1.data(), dsum.data(), in.data(), ld, win,
                                                   T, H, dh, scale, vec);
                });
            }
        };
        V d1, d2;
        bwd(d1);
        emu_sched_base++;
        bwd(d2);
        for (int part = 0; part < 3; part++) {  // dq | dk | dv
            V a;
            W r;
            for (size_t row = 0; row < (size_t)B * T; row++)
                for (int c = 0; c < D; c++) {
                    a.push_back(d1[row * ld + part * D + c]);
                    r.push_back(dqkv[row * ld + part * D + c]);
                }
            snprintf(what, sizeof what, "%s backward %s", form, part == 0 ? "dq" : part == 1 ? "dk" : "dv");
            report(what, a, r, tol);
        }
        snprintf(what, sizeof what, "%s backward dq | dk | dv", form);
        same(what, d1, d2);
    }
}

static void one(int B, int T, int H, int dh, std::vector<int> w) {
    switch (pad_dh(dh)) {
    case 16: run_case<16>(B, T, H, dh, w); break;
    case 32: run_case<32>(B, T, H, dh, w); break;
    case 48: run_case<48>(B, T, H, dh, w); break;
    case 64: run_case<64>(B, T, H, dh, w); break;
    case 96: run_case<96>(B, T, H, dh, w); break;
    default: run_case<128>(B, T, H, dh, w); break;
    }
}

int main() {
    emu_rng.seed(7);
    one(2, 70, 2, 48, {0, 0});
    one(1, 130, 1, 128, {0});
    one(1, 200, 2, 64, {40, 129});
    one(2, 77, 3, 14, {3, 65, 129});   // D 42: plain loads
    one(1, 70, 2, 21, {1, 5});         // D 42, d_h 21 padded to 32
    one(1, 64, 1, 96, {0});
    printf("%d passed, %d failed\n", checks - fails, fails);
    return fails != 0;
}
