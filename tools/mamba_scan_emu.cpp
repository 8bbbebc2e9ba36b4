// mamba_scan_emu.cpp — host emulation of the scan kernels of models/cuda/mamba.cu (serial, lanes, wide):
// one fiber per CUDA thread, cuda_emu.h's barriers for __syncthreads and warp shuffles. Depends on C++20 and
// the kernel text that tools/mamba_scan_emu.sh cuts out of mamba.cu (kern.inc). Run it through that script.
//
// Why: the wide kernels (d_state > 32) were written without a device. This checks their index and
// reduction logic on the CPU: wide<NM> against the serial kernels (which, on the host, compile at any NM)
// on random inputs, max error relative to the largest value, tolerance 2e-5 (float sums in other
// orders); lanes<32> against serial<32> checks the emulation itself; the wide kernels twice must give
// identical bytes. The forward lanes kernel (the next chunk's staging prefetched into registers) must
// give the same bytes as scan_fwd_lanes_ref, a frozen copy of it before the prefetch (below), at NM
// 2 .. 32, and the lanes kernels must agree with the serial ones at the tolerance. Exit 0 when everything
// passes. It says nothing about speed or the real hardware.
#include "cuda_emu.h"
#define MAMBA_CONV_K 4
#define __expf expf
#include "kern.inc"  // mamba.cu lines "#define K" .. "// ---- interface", patched

// ---- frozen reference: the forward lanes kernel of models/cuda/mamba.cu before the staging prefetch
// (loads after the barrier at every chunk; commit ee8bf40), kept verbatim but for the names (_ref) as the
// bit-exact reference of the prefetching kernel (the backward lanes kernel was left as it was). Do not edit; it uses kern.inc's helpers and constants.
// One (token row m, channel ch) of a chunk's staging in the lane-parallel kernels: delta = softplus(dtp +
// b_dt) and x.
__device__ __forceinline__ void stage_elem_ref(float &dl, float &xv, size_t m, int ch, int E, const float *__restrict__ dtp,
                                           const float *__restrict__ bdt, const float *__restrict__ xs) {
    dl = softplus_d(dtp[m * E + ch] + bdt[ch]);
    xv = xs[m * E + ch];
}

// scan_forward (mamba.c scan_forward_block + the softplus of mamba_forward), lane-parallel form.
// hs: [B, nch, E, N], h at the end of every chunk but the last.
template <int NM>
__global__ void __launch_bounds__(SC_BLK) scan_fwd_lanes_ref(float *__restrict__ y, float *__restrict__ g,
        float *__restrict__ hs, const float *__restrict__ xs, const float *__restrict__ xz,
        const float *__restrict__ xdbl, const float *__restrict__ dtp, const float *__restrict__ bdt,
        const float *__restrict__ A_log, const float *__restrict__ Dp, int T, int E, int N, int R, int P) {
    constexpr int CG = SC_BLK / NM, G = NM < 16 ? NM : 16;
    __shared__ float s_dl[SC_TC][CG], s_x[SC_TC][CG], s_y[SC_TC][CG], s_B[SC_TC][NM], s_C[SC_TC][NM];
    const int tid = threadIdx.x, lane = tid & 31, n = tid % NM, cl = tid / NM;
    const int c0 = blockIdx.x * CG, b = blockIdx.y, c = c0 + cl;
    const bool own = c < E && n < N;
    const float A2 = own ? -expf(A_log[(size_t)c * N + n]) * LOG2E_F : 0.f;  // exp(delta A) = 2^(delta A2)
    const int nch = (T + SC_TC - 1) / SC_TC;
    const size_t mb = (size_t)b * T;
    float h = 0.f;
    for (int k = 0; k < nch; k++) {
        const int t0 = k * SC_TC;
        __syncthreads();  // the previous chunk's write-out has read s_x, s_y
        for (int i = tid; i < SC_TC * CG; i += SC_BLK) {
            const int j = i / CG, cc = i % CG, t = t0 + j, ch = c0 + cc;
            float dl = 0.f, xv = 0.f;
            if (t < T && ch < E) stage_elem_ref(dl, xv, mb + t, ch, E, dtp, bdt, xs);
            s_dl[j][cc] = dl;
            s_x[j][cc] = xv;
        }
        for (int i = tid; i < SC_TC * NM; i += SC_BLK) {
            const int j = i / NM, nn = i % NM, t = t0 + j;
            float bv = 0.f, cv = 0.f;
            if (t < T && nn < N) {
                const float *row = xdbl + (mb + t) * P + R;
                bv = row[nn];
                cv = row[N + nn];
            }
            s_B[j][nn] = bv;
            s_C[j][nn] = cv;
        }
        __syncthreads();
#pragma unroll
        for (int g0 = 0; g0 < SC_TC; g0 += G) {
            float v[G];
#pragma unroll
            for (int jj = 0; jj < G; jj++) {
                const int j = g0 + jj;
                const float dl = s_dl[j][cl];
                h = ex2f(dl * A2) * h + dl * s_x[j][cl] * s_B[j][n];
                v[jj] = s_C[j][n] * h;
            }
            group_transpose_sum<G, NM>(v, lane);
            if (n < G) s_y[g0 + n][cl] = v[0];  // C_t . h_t of token g0 + n
        }
        if (k + 1 < nch && own) hs[(((size_t)b * nch + k) * E + c) * N + n] = h;
        __syncthreads();
        for (int i = tid; i < SC_TC * CG; i += SC_BLK) {
            const int j = i / CG, cc = i % CG, t = t0 + j, ch = c0 + cc;
            if (t < T && ch < E) {
                const size_t m = mb + t;
                const float yv = s_y[j][cc] + Dp[ch] * s_x[j][cc], zv = xz[m * 2 * E + E + ch];
                y[m * E + ch] = yv;
                g[m * E + ch] = yv * zv * sigm(zv);
            }
        }
    }
}

// ---- frozen reference: the backward lanes kernel of models/cuda/mamba.cu before its shared arrays were
// packed ((delta, x) and (B, C) as float2, the dB|dC partials one slice per channel group where they fit;
// commit abdd029), kept verbatim but for the name (_ref) as the bit-exact reference of the packed kernel.
// Do not edit; it uses kern.inc's helpers and constants.
template <int NM>
__global__ void __launch_bounds__(SC_BLK) scan_bwd_lanes_ref(float *__restrict__ dxz, float *__restrict__ ddt,
        float *__restrict__ dxs, float *__restrict__ dbc_part, float *__restrict__ dA_part,
        float *__restrict__ dD_part, float *__restrict__ dbdt_part, const float *__restrict__ dg,
        const float *__restrict__ y, const float *__restrict__ hs, const float *__restrict__ xs,
        const float *__restrict__ xz, const float *__restrict__ xdbl, const float *__restrict__ dtp,
        const float *__restrict__ bdt, const float *__restrict__ A_log, const float *__restrict__ Dp, int T,
        int E, int N, int R, int P) {
    constexpr int CPT = sc_cpt(NM), CG = SC_BLK / NM, CB = CG * CPT, G = NM < 16 ? NM : 16, NWARP = SC_BLK / 32;
    static_assert(SC_BLK % CB == 0, "a thread's stage/finish elements must stay in one channel");
    __shared__ float s_dl[SC_TC][CB], s_x[SC_TC][CB], s_dy[SC_TC][CB], s_S1[SC_TC][CB], s_S2[SC_TC][CB];
    __shared__ float s_B[SC_TC][NM], s_C[SC_TC][NM];
    __shared__ float s_part[NWARP][SC_TC][2 * NM];  // per warp: sums over its channels of dB | dC terms
    __shared__ float s_red[2][SC_BLK];
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, n = tid % NM, cl = tid / NM;
    const int c0 = blockIdx.x * CB, b = blockIdx.y, nbx = gridDim.x;
    float A[CPT], A2[CPT], gh[CPT], dA[CPT];
#pragma unroll
    for (int r = 0; r < CPT; r++) {
        const int c = c0 + r * CG + cl;
        A[r] = c < E && n < N ? -expf(A_log[(size_t)c * N + n]) : 0.f;
        A2[r] = A[r] * LOG2E_F;
        gh[r] = dA[r] = 0.f;
    }
    float dDs = 0.f, dbs = 0.f;  // over this thread's stage/finish elements: all in channel c0 + tid % CB
    const int nch = (T + SC_TC - 1) / SC_TC;
    const size_t mb = (size_t)b * T;
    for (int k = nch - 1; k >= 0; k--) {
        const int t0 = k * SC_TC;
        __syncthreads();  // the previous chunk's finish has read the shared arrays
        for (int i = tid; i < SC_TC * CB; i += SC_BLK) {
            const int j = i / CB, cc = i % CB, t = t0 + j, ch = c0 + cc;
            float dl = 0.f, xv = 0.f, dy = 0.f;
            if (t < T && ch < E) bwd_stage_elem(dl, xv, dy, dDs, mb + t, ch, E, dtp, bdt, xs, xz, dg, y, dxz);
            s_dl[j][cc] = dl;
            s_x[j][cc] = xv;
            s_dy[j][cc] = dy;
        }
        for (int i = tid; i < SC_TC * NM; i += SC_BLK) {
            const int j = i / NM, nn = i % NM, t = t0 + j;
            float bv = 0.f, cv = 0.f;
            if (t < T && nn < N) {
                const float *row = xdbl + (mb + t) * P + R;
                bv = row[nn];
                cv = row[N + nn];
            }
            s_B[j][nn] = bv;
            s_C[j][nn] = cv;
        }
        __syncthreads();
#pragma unroll
        for (int r = 0; r < CPT; r++) {
            const int cr = r * CG + cl, c = c0 + cr;
            float H[SC_TC + 1], a[SC_TC];  // h at the chunk start and after each token; the decays
            H[0] = k > 0 && c < E && n < N ? hs[(((size_t)b * nch + k - 1) * E + c) * N + n] : 0.f;
#pragma unroll
            for (int j = 0; j < SC_TC; j++) {
                const float dl = s_dl[j][cr];
                a[j] = ex2f(dl * A2[r]);
                H[j + 1] = a[j] * H[j] + dl * s_x[j][cr] * s_B[j][n];
            }
#pragma unroll
            for (int g0 = SC_TC - G; g0 >= 0; g0 -= G) {
                float s1[G], s2[G];  // this state's terms of sum_n gh B (-> d x, d delta) and sum_n q A
#pragma unroll
                for (int jj = G - 1; jj >= 0; jj--) {
                    const int j = g0 + jj;
                    const float dy = s_dy[j][cr], dl = s_dl[j][cr], xv = s_x[j][cr], bn = s_B[j][n];
                    const float ghv = gh[r] + dy * s_C[j][n];  // dL/dh_t
                    float vC = dy * H[j + 1];
                    const float q = ghv * H[j] * a[j];         // dL/d(delta a) through the decay
                    s2[jj] = q * A[r];
                    s1[jj] = ghv * bn;
                    dA[r] += q * dl;
                    float vB = ghv * dl * xv;
                    gh[r] = ghv * a[j];
#pragma unroll
                    for (int off = NM; off < 32; off <<= 1) {  // over the warp's channels
                        vB += __shfl_xor_sync(0xffffffffu, vB, off);
                        vC += __shfl_xor_sync(0xffffffffu, vC, off);
                    }
                    if (lane < NM) {
                        float *sp = s_part[warp][j];
                        if (r == 0) { sp[n] = vB; sp[NM + n] = vC; }
                        else { sp[n] += vB; sp[NM + n] += vC; }
                    }
                }
                group_transpose_sum<G, NM>(s1, lane);
                group_transpose_sum<G, NM>(s2, lane);
                if (n < G) { s_S1[g0 + n][cr] = s1[0]; s_S2[g0 + n][cr] = s2[0]; }
            }
        }
        __syncthreads();
        for (int i = tid; i < SC_TC * CB; i += SC_BLK) {
            const int j = i / CB, cc = i % CB, t = t0 + j, ch = c0 + cc;
            if (t < T && ch < E) {
                const size_t m = mb + t;
                const float dl = s_dl[j][cc], xv = s_x[j][cc], S1 = s_S1[j][cc];
                const float dd = (s_S2[j][cc] + S1 * xv) * -expm1f(-dl);  // softplus' = -expm1(-delta)
                ddt[m * E + ch] = dd;
                dxs[m * E + ch] = s_dy[j][cc] * Dp[ch] + dl * S1;
                dbs += dd;
            }
        }
        for (int i = tid; i < SC_TC * 2 * N; i += SC_BLK) {
            const int j = i / (2 * N), r2 = i % (2 * N), t = t0 + j;
            if (t < T) {
                const int col = r2 < N ? r2 : NM + r2 - N;
                float s = 0.f;
#pragma unroll
                for (int w = 0; w < NWARP; w++) s += s_part[w][j][col];
                dbc_part[((mb + t) * nbx + blockIdx.x) * 2 * N + r2] = s;
            }
        }
    }
#pragma unroll
    for (int r = 0; r < CPT; r++) {
        const int c = c0 + r * CG + cl;
        if (c < E && n < N) dA_part[((size_t)b * N + n) * E + c] = dA[r];
    }
    s_red[0][tid] = dDs;
    s_red[1][tid] = dbs;
    __syncthreads();
    if (tid < CB && c0 + tid < E) {
        float sd = 0.f, sb = 0.f;
        for (int q = tid; q < SC_BLK; q += CB) { sd += s_red[0][q]; sb += s_red[1][q]; }
        dD_part[(size_t)b * E + c0 + tid] = sd;
        dbdt_part[(size_t)b * E + c0 + tid] = sb;
    }
}
// ---- end of the frozen reference
typedef std::vector<float> V;
static std::mt19937 rng(7);
static V rnd(size_t n, float sd, float mu = 0.f) {
    std::normal_distribution<float> d(mu, sd);
    V v(n);
    for (auto &x : v) x = d(rng);
    return v;
}
struct Out { V y, g, dxz, ddt, dxs, dbc, dA, dD, dbdt, hs, part; };
// which: 0 serial<NMS>, 1 lanes<NMS>, 2 wide<NMW>, 3 the frozen lanes refs<NMS> (forward and backward)
template <int NMS, int NMW>
static Out run(int which, int B, int T, int E, int N, const V &xs, const V &xz, const V &xdbl, const V &dtp,
               const V &bdt, const V &Alog, const V &Dp, const V &dg) {
    const int R = 3, P = R + 2 * N;
    const size_t M = (size_t)B * T;
    Out o;
    o.y.assign(M * E, 0); o.g.assign(M * E, 0); o.dxz.assign(M * 2 * E, 0); o.ddt.assign(M * E, 0);
    o.dxs.assign(M * E, 0); o.dA.assign((size_t)B * N * E, 0); o.dD.assign((size_t)B * E, 0);
    o.dbdt.assign((size_t)B * E, 0);
    int nw;
    if (which == 0) nw = (E + 31) / 32;
    else if (which == 1 || which == 3) nw = (E + SC_BLK / NMS * sc_cpt(NMS) - 1) / (SC_BLK / NMS * sc_cpt(NMS));
    else nw = (E + WD_CH - 1) / WD_CH;
    V part(M * nw * 2 * N, 0);
    int nch = which == 0 ? (T + SCAN_TC - 1) / SCAN_TC : (T + SC_TC - 1) / SC_TC;
    V hs((size_t)B * nch * N * E, 0);
    float *y = o.y.data(), *g = o.g.data(), *h = hs.data();
    if (which == 0) {
        dim3 gr; gr.x = (E + SCAN_BX - 1) / SCAN_BX; gr.y = B;
        launch(gr, SCAN_BX, [&] { scan_forward_kernel<NMS>(y, g, h, xs.data(), xz.data(), xdbl.data(), dtp.data(),
                                                            bdt.data(), Alog.data(), Dp.data(), T, E, N, R, P); });
        launch(gr, SCAN_BX, [&] { scan_backward_kernel<NMS>(o.dxz.data(), o.ddt.data(), o.dxs.data(), part.data(),
                o.dA.data(), o.dD.data(), o.dbdt.data(), dg.data(), y, h, xs.data(), xz.data(), xdbl.data(),
                dtp.data(), bdt.data(), Alog.data(), Dp.data(), T, E, N, R, P, nw); });
    } else if (which == 1) {
        dim3 gr; gr.x = (E + SC_BLK / NMS - 1) / (SC_BLK / NMS); gr.y = B;
        launch(gr, SC_BLK, [&] { scan_fwd_lanes_kernel<NMS>(y, g, h, xs.data(), xz.data(), xdbl.data(), dtp.data(),
                                                             bdt.data(), Alog.data(), Dp.data(), T, E, N, R, P); });
        dim3 gb; gb.x = nw; gb.y = B;
        launch(gb, SC_BLK, [&] { scan_bwd_lanes_kernel<NMS>(o.dxz.data(), o.ddt.data(), o.dxs.data(), part.data(),
                o.dA.data(), o.dD.data(), o.dbdt.data(), dg.data(), y, h, xs.data(), xz.data(), xdbl.data(),
                dtp.data(), bdt.data(), Alog.data(), Dp.data(), T, E, N, R, P); });
    } else if (which == 3) {
        dim3 gr; gr.x = (E + SC_BLK / NMS - 1) / (SC_BLK / NMS); gr.y = B;
        launch(gr, SC_BLK, [&] { scan_fwd_lanes_ref<NMS>(y, g, h, xs.data(), xz.data(), xdbl.data(), dtp.data(),
                                                          bdt.data(), Alog.data(), Dp.data(), T, E, N, R, P); });
        dim3 gb; gb.x = nw; gb.y = B;
        launch(gb, SC_BLK, [&] { scan_bwd_lanes_ref<NMS>(o.dxz.data(), o.ddt.data(), o.dxs.data(), part.data(),
                o.dA.data(), o.dD.data(), o.dbdt.data(), dg.data(), y, h, xs.data(), xz.data(), xdbl.data(),
                dtp.data(), bdt.data(), Alog.data(), Dp.data(), T, E, N, R, P); });
    } else {
        dim3 gr; gr.x = nw; gr.y = B;
        memset(wd_smem, 0x7f, sizeof wd_smem);  // garbage: catches reads of unwritten shared memory
        launch(gr, SC_BLK, [&] { scan_fwd_wide_kernel<NMW>(y, g, h, xs.data(), xz.data(), xdbl.data(), dtp.data(),
                                                            bdt.data(), Alog.data(), Dp.data(), T, E, N, R, P); });
        memset(wd_smem, 0x7f, sizeof wd_smem);
        launch(gr, SC_BLK, [&] { scan_bwd_wide_kernel<NMW>(o.dxz.data(), o.ddt.data(), o.dxs.data(), part.data(),
                o.dA.data(), o.dD.data(), o.dbdt.data(), dg.data(), y, h, xs.data(), xz.data(), xdbl.data(),
                dtp.data(), bdt.data(), Alog.data(), Dp.data(), T, E, N, R, P); });
    }
    o.dbc.assign(M * 2 * N, 0);
    for (size_t m = 0; m < M; m++)
        for (int j = 0; j < 2 * N; j++) {
            float s = 0;
            for (int w = 0; w < nw; w++) s += part[(m * nw + w) * 2 * N + j];
            o.dbc[m * 2 * N + j] = s;
        }
    o.hs = hs;
    o.part = part;
    return o;
}
static double rel(const V &a, const V &b) {
    double mx = 0, sc = 0;
    for (size_t i = 0; i < a.size(); i++) {
        mx = std::max(mx, (double)fabsf(a[i] - b[i]));
        sc = std::max(sc, (double)fabsf(b[i]));
    }
    for (size_t i = 0; i < a.size(); i++) if (!std::isfinite(a[i])) return INFINITY;
    return mx / (sc > 0 ? sc : 1);
}
static int cmp(const char *lab, const Out &a, const Out &b) {
    const V Out::*f[] = {&Out::y, &Out::g, &Out::dxz, &Out::ddt, &Out::dxs, &Out::dbc, &Out::dA, &Out::dD, &Out::dbdt};
    const char *nm[] = {"y", "g", "dxz", "ddt", "dxs", "dbc", "dA", "dD", "dbdt"};
    int bad = 0;
    printf("%s:", lab);
    for (int i = 0; i < 9; i++) {
        double e = rel(a.*f[i], b.*f[i]);
        printf(" %s %.1e", nm[i], e);
        bad += !(e < 2e-5);
    }
    printf("  %s\n", bad ? "FAIL" : "PASS");
    return bad;
}
template <int NMS, int NMW>
static int config(int B, int T, int E, int N) {
    const int R = 3, P = R + 2 * N;
    const size_t M = (size_t)B * T;
    V xs = rnd(M * E, 1), xz = rnd(M * 2 * E, 1), xdbl = rnd(M * P, 0.5), dtp = rnd(M * E, 1, -1);
    V bdt = rnd(E, 0.3), Alog = rnd((size_t)E * N, 0.5), Dp = rnd(E, 1), dg = rnd(M * E, 1);
    Out s = run<NMS, NMW>(0, B, T, E, N, xs, xz, xdbl, dtp, bdt, Alog, Dp, dg);
    Out l = NMS <= 32 ? run<NMS, NMW>(1, B, T, E, N, xs, xz, xdbl, dtp, bdt, Alog, Dp, dg) : s;
    Out w = run<NMS, NMW>(2, B, T, E, N, xs, xz, xdbl, dtp, bdt, Alog, Dp, dg);
    Out w2 = run<NMS, NMW>(2, B, T, E, N, xs, xz, xdbl, dtp, bdt, Alog, Dp, dg);
    char lab[128];
    int bad = 0;
    snprintf(lab, sizeof lab, "B%d T%d E%d N%d lanes<%d> vs serial<%d>", B, T, E, N, NMS, NMS);
    if (NMS <= 32) bad += cmp(lab, l, s);
    snprintf(lab, sizeof lab, "B%d T%d E%d N%d wide<%d> vs serial<%d>", B, T, E, N, NMW, NMS);
    bad += cmp(lab, w, s);
    int same = 1;
    const V Out::*f[] = {&Out::y, &Out::g, &Out::dxz, &Out::ddt, &Out::dxs, &Out::dbc, &Out::dA, &Out::dD, &Out::dbdt};
    for (auto p : f) same &= !memcmp((w.*p).data(), (w2.*p).data(), (w.*p).size() * 4);
    printf("  wide twice: %s\n", same ? "identical" : "DIFFER");
    return bad + !same;
}
// The prefetching forward lanes<NM> against the frozen lanes_ref<NM>, each followed by the backward lanes
// kernel: every output byte-identical (hs, the dB|dC partials, the dA / dD / dbdt partials included); the
// lanes pair against serial<NM> at the tolerance.
template <int NM>
static int exact(int B, int T, int E, int N) {
    const int R = 3, P = R + 2 * N;
    const size_t M = (size_t)B * T;
    V xs = rnd(M * E, 1), xz = rnd(M * 2 * E, 1), xdbl = rnd(M * P, 0.5), dtp = rnd(M * E, 1, -1);
    V bdt = rnd(E, 0.3), Alog = rnd((size_t)E * N, 0.5), Dp = rnd(E, 1), dg = rnd(M * E, 1);
    Out s = run<NM, 64>(0, B, T, E, N, xs, xz, xdbl, dtp, bdt, Alog, Dp, dg);
    Out l = run<NM, 64>(1, B, T, E, N, xs, xz, xdbl, dtp, bdt, Alog, Dp, dg);
    Out r = run<NM, 64>(3, B, T, E, N, xs, xz, xdbl, dtp, bdt, Alog, Dp, dg);
    const V Out::*f[] = {&Out::y, &Out::g, &Out::hs, &Out::dxz, &Out::ddt, &Out::dxs, &Out::part, &Out::dA,
                         &Out::dD, &Out::dbdt};
    const char *nm[] = {"y", "g", "hs", "dxz", "ddt", "dxs", "dbc_part", "dA_part", "dD_part", "dbdt_part"};
    int bad = 0;
    printf("B%d T%d E%d N%d lanes<%d> vs lanes_ref<%d>:", B, T, E, N, NM, NM);
    for (int i = 0; i < 10; i++) {
        const V &a = l.*f[i], &b = r.*f[i];
        const bool same = a.size() == b.size() && !memcmp(a.data(), b.data(), a.size() * 4);
        printf(" %s %s", nm[i], same ? "same" : "DIFFER");
        bad += !same;
    }
    printf("  %s\n", bad ? "FAIL" : "identical");
    char lab[128];
    snprintf(lab, sizeof lab, "  lanes<%d> vs serial<%d>", NM, NM);
    bad += cmp(lab, l, s);
    return bad;
}
int main() {
    int bad = 0;
    // the prefetching lanes kernels, bit for bit (T not a multiple of SC_TC, E not of a block's channels,
    // N < NM)
    bad += exact<2>(2, 37, 48, 2);
    bad += exact<2>(2, 45, 20, 1);
    bad += exact<4>(2, 37, 20, 3);
    bad += exact<8>(2, 45, 48, 8);
    bad += exact<8>(2, 37, 20, 5);
    bad += exact<16>(2, 37, 48, 16);
    bad += exact<16>(2, 45, 20, 11);
    bad += exact<32>(2, 37, 48, 20);
    bad += exact<32>(2, 45, 20, 32);
    bad += config<32, 64>(2, 37, 48, 20);
    bad += config<32, 64>(2, 21, 64, 32);
    bad += config<32, 128>(1, 19, 40, 31);
    bad += config<32, 256>(2, 20, 33, 32);
    // every state live: the serial kernels compiled on the host at NM > 32 (too many registers on a GPU)
    bad += config<64, 64>(2, 37, 64, 64);
    bad += config<64, 64>(3, 17, 96, 33);
    bad += config<128, 128>(2, 45, 48, 100);
    bad += config<256, 256>(2, 20, 64, 256);
    printf("%s\n", bad ? "FAILURES" : "all PASS");
    return bad != 0;
}
