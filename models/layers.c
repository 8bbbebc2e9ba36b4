// layers.c — the shell's layer forward/backward pairs and the shared causal attention core.
// Depends on layers.h (real.h, cblas, OpenMP). See layers.h for shapes and conventions.
#include "layers.h"
#include <limits.h>
#include <math.h>
#include <string.h>

#define LN_EPS 1e-5

static inline int imin(int a, int b) { return a < b ? a : b; }
static inline int imax(int a, int b) { return a > b ? a : b; }

// exp for the softmaxes. Float build: a branch-free expf (Cody-Waite reduction, degree-6
// polynomial, < 1e-7 relative error, input clamped to [-87, 88]) that the compiler vectorises;
// libm's exp is a scalar call and was 16% of a training step. Double build: libm exp.
#ifdef RB_DOUBLE
static inline real rexp(real x) { return exp(x); }
#else
static inline real rexp(real x) {
    x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
    float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  // round to nearest (1.5*2^23)
    float r = x - n * 0.693145751953125f - n * 1.428606765330187045e-06f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    union { float f; int32_t i; } u = {.f = p};
    u.i += (int32_t)n << 23;
    return u.f;
}
#endif

// x[i] = exp(x[i] - mx) for i < n; returns the sum. Exp loop vectorises; the sum uses 16 fixed
// lanes (deterministic, and not a serial dependency chain).
static real exp_sum_inplace(real *x, int n, real mx) {
    for (int i = 0; i < n; i++) x[i] = rexp(x[i] - mx);
    real lane[16] = {0};
    int i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; j++) lane[j] += x[i + j];
    for (; i < n; i++) lane[0] += x[i];
    real s = 0;
    for (int j = 0; j < 16; j++) s += lane[j];
    return s;
}

static real max_of(const real *x, int n) {
    real lane[16];
    for (int j = 0; j < 16; j++) lane[j] = x[0];
    int i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; j++) lane[j] = x[i + j] > lane[j] ? x[i + j] : lane[j];
    for (; i < n; i++) lane[0] = x[i] > lane[0] ? x[i] : lane[0];
    real m = lane[0];
    for (int j = 1; j < 16; j++) m = lane[j] > m ? lane[j] : m;
    return m;
}

// Reductions over a row in 16 fixed lanes: vectorisable without -ffast-math, same order every run.
#define LANES 16
static inline real lanes_total(const real *lane) {
    real s = 0;
    for (int j = 0; j < LANES; j++) s += lane[j];
    return s;
}
static inline real row_sum(const real *x, int n) {
    real lane[LANES] = {0};
    int i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int j = 0; j < LANES; j++) lane[j] += x[i + j];
    for (; i < n; i++) lane[0] += x[i];
    return lanes_total(lane);
}
static inline real row_sumsq_centered(const real *x, real m, int n) {
    real lane[LANES] = {0};
    int i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int j = 0; j < LANES; j++) lane[j] += (x[i + j] - m) * (x[i + j] - m);
    for (; i < n; i++) lane[0] += (x[i] - m) * (x[i] - m);
    return lanes_total(lane);
}
// sum a[i] b[i] and sum a[i] b[i] (c[i] - m) in one pass
static inline void row_dot2(const real *a, const real *b, const real *c, real m, int n, real *s1, real *s2) {
    real l1[LANES] = {0}, l2[LANES] = {0};
    int i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int j = 0; j < LANES; j++) {
            real ab = a[i + j] * b[i + j];
            l1[j] += ab;
            l2[j] += ab * (c[i + j] - m);
        }
    for (; i < n; i++) { real ab = a[i] * b[i]; l1[0] += ab; l2[0] += ab * (c[i] - m); }
    *s1 = lanes_total(l1);
    *s2 = lanes_total(l2);
}

// ---- GEMM helpers ----------------------------------------------------------------------------

void rb_blas_single_thread(void) {
#ifdef OPENBLAS_CONFIG_H
    // All parallelism is OpenMP's; a second (spinning) OpenBLAS pool would fight it for cores.
    if (openblas_get_num_threads() != 1) openblas_set_num_threads(1);
#endif
}

void gemm_ld(real *C, int ldc, const real *A, int lda, const real *B, int ldb, int M, int N, int K,
             int ta, int tb, real alpha, real beta) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {  // BLAS would leave C untouched only for beta = 1; make beta explicit
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) C[(size_t)i * ldc + j] = beta == 0 ? 0 : beta * C[(size_t)i * ldc + j];
        return;
    }
    double t0 = rb_gemm_profile ? rb_gemm_clock() : 0;  // `recallbench bench` accounting (real.h)
    GEMM(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, alpha, A,
         lda, B, ldb, beta, C, ldc);
    if (rb_gemm_profile) rb_gemm_account(t0, 2.0 * M * N * K);
}

void matmul_par(real *C, const real *A, const real *B, int M, int N, int K, int ta, int tb, real beta) {
    int nt = omp_get_max_threads();
    if (nt <= 1 || (double)M * N * K < 131072.0 || M < 32 * nt) {
        gemm_ld(C, N, A, ta ? M : K, B, tb ? K : N, M, N, K, ta, tb, 1, beta);
        return;
    }
#pragma omp parallel num_threads(nt)
    {
        int t = omp_get_thread_num(), n = omp_get_num_threads();
        // row blocks rounded to 16 so every thread keeps full micro-tiles
        int m0 = (int)(((long)M * t / n) & ~15L), m1 = t == n - 1 ? M : (int)(((long)M * (t + 1) / n) & ~15L);
        if (m1 > m0)
            gemm_ld(C + (size_t)m0 * N, N, ta ? A + m0 : A + (size_t)m0 * K, ta ? M : K, B, tb ? K : N, m1 - m0,
                    N, K, ta, tb, 1, beta);
    }
}

// ---- embedding -------------------------------------------------------------------------------

void encoder_forward(real *out, const int32_t *tok, const real *wte, const real *wpe, int B, int T, int D) {
#pragma omp parallel for schedule(static)
    for (int bt = 0; bt < B * T; bt++) {
        const real *e = wte + (size_t)tok[bt] * D, *p = wpe ? wpe + (size_t)(bt % T) * D : NULL;
        real *o = out + (size_t)bt * D;
        if (p)
            for (int c = 0; c < D; c++) o[c] = e[c] + p[c];
        else
            memcpy(o, e, D * sizeof(real));
    }
}

void encoder_backward(real *dwte, real *dwpe, const real *dout, const int32_t *tok, int B, int T, int D) {
    // Scatter-add in row order; threads own column ranges, so the sum order is fixed.
#pragma omp parallel
    {
        int t = omp_get_thread_num(), n = omp_get_num_threads();
        int c0 = D * t / n, c1 = D * (t + 1) / n;
        for (int bt = 0; bt < B * T; bt++) {
            const real *g = dout + (size_t)bt * D;
            real *e = dwte + (size_t)tok[bt] * D;
            for (int c = c0; c < c1; c++) e[c] += g[c];
            if (dwpe) {
                real *p = dwpe + (size_t)(bt % T) * D;
                for (int c = c0; c < c1; c++) p[c] += g[c];
            }
        }
    }
}

// ---- norms -----------------------------------------------------------------------------------

void layernorm_forward(real *out, real *mean, real *rstd, const real *inp, const real *w, const real *b,
                       int N, int D) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const real *x = inp + (size_t)n * D;
        real *o = out + (size_t)n * D;
        real m = row_sum(x, D) / D, v = row_sumsq_centered(x, m, D) / D;
        real s = (real)(1 / sqrt((double)v + LN_EPS));
        for (int c = 0; c < D; c++) o[c] = (x[c] - m) * s * w[c] + b[c];
        mean[n] = m;
        rstd[n] = s;
    }
}

void layernorm_backward(real *dinp, real *dw, real *db, const real *dout, const real *inp, const real *w,
                        const real *mean, const real *rstd, int N, int D) {
#pragma omp parallel
    {
#pragma omp for schedule(static)
        for (int n = 0; n < N; n++) {
            const real *x = inp + (size_t)n * D, *g = dout + (size_t)n * D;
            real *dx = dinp + (size_t)n * D, m = mean[n], s = rstd[n];
            real dnm, dnxm;  // mean of dnorm = w g, mean of dnorm * xhat
            row_dot2(w, g, x, m, D, &dnm, &dnxm);
            dnm /= D;
            dnxm *= s / D;
            for (int c = 0; c < D; c++) dx[c] += (w[c] * g[c] - dnm - (x[c] - m) * s * dnxm) * s;
        }
        // parameter gradients: each thread owns a channel range, rows summed in order
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        int c0 = D * t / nt, c1 = D * (t + 1) / nt;
        for (int n = 0; n < N; n++) {
            const real *x = inp + (size_t)n * D, *g = dout + (size_t)n * D;
            real m = mean[n], s = rstd[n];
            for (int c = c0; c < c1; c++) {
                dw[c] += g[c] * (x[c] - m) * s;
                db[c] += g[c];
            }
        }
    }
}

void rmsnorm_forward(real *out, real *rstd, const real *inp, const real *w, int N, int D) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const real *x = inp + (size_t)n * D;
        real *o = out + (size_t)n * D, ms = row_sumsq_centered(x, 0, D);
        real s = (real)(1 / sqrt((double)ms / D + LN_EPS));
        for (int c = 0; c < D; c++) o[c] = x[c] * s * w[c];
        rstd[n] = s;
    }
}

void rmsnorm_backward(real *dinp, real *dw, const real *dout, const real *inp, const real *w,
                      const real *rstd, int N, int D) {
#pragma omp parallel
    {
#pragma omp for schedule(static)
        for (int n = 0; n < N; n++) {
            const real *x = inp + (size_t)n * D, *g = dout + (size_t)n * D;
            real *dx = dinp + (size_t)n * D, s = rstd[n], dot, unused;
            row_dot2(w, g, x, 0, D, &unused, &dot);
            dot *= s * s * s / D;
            for (int c = 0; c < D; c++) dx[c] += w[c] * g[c] * s - x[c] * dot;
        }
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        int c0 = D * t / nt, c1 = D * (t + 1) / nt;
        for (int n = 0; n < N; n++) {
            const real *x = inp + (size_t)n * D, *g = dout + (size_t)n * D;
            real s = rstd[n];
            for (int c = c0; c < c1; c++) dw[c] += g[c] * x[c] * s;
        }
    }
}

// ---- linear, GELU, MLP -----------------------------------------------------------------------

void linear_forward(real *out, const real *inp, const real *w, const real *b, int N, int C, int OC) {
    if (b) {
#pragma omp parallel for schedule(static)
        for (int n = 0; n < N; n++) memcpy(out + (size_t)n * OC, b, OC * sizeof(real));
    }
    matmul_par(out, inp, w, N, OC, C, 0, 1, b ? 1 : 0);
}

void linear_backward(real *dinp, real *dw, real *db, const real *dout, const real *inp, const real *w,
                     int N, int C, int OC, int acc_dinp) {
    if (dinp) matmul_par(dinp, dout, w, N, C, OC, 0, 0, acc_dinp ? 1 : 0);  // [N,OC] @ [OC,C]
    matmul_par(dw, dout, inp, OC, C, N, 1, 0, 1);                             // [OC,N] @ [N,C]
    if (db) {
#pragma omp parallel
        {
            int t = omp_get_thread_num(), nt = omp_get_num_threads();
            int c0 = OC * t / nt, c1 = OC * (t + 1) / nt;
            for (int n = 0; n < N; n++) {
                const real *g = dout + (size_t)n * OC;
                for (int c = c0; c < c1; c++) db[c] += g[c];
            }
        }
    }
}

void gelu_forward(real *out, const real *inp, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        real x = inp[i];
        out[i] = (real)0.5 * x * (1 + (real)erf((double)x * 0.70710678118654752));
    }
}

void gelu_backward(real *dinp, const real *dout, const real *inp, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        double x = inp[i];
        double d = 0.5 * (1 + erf(x * 0.70710678118654752)) + x * exp(-0.5 * x * x) * 0.39894228040143268;
        dinp[i] = (real)(dout[i] * d);
    }
}

void mlp_forward(real *out, real *h, real *a, const real *inp, const real *w1, const real *b1,
                 const real *w2, const real *b2, int N, int D, int Hd) {
    linear_forward(h, inp, w1, b1, N, D, Hd);
    gelu_forward(a, h, (size_t)N * Hd);
    linear_forward(out, a, w2, b2, N, Hd, D);
}

void mlp_backward(real *dinp, real *dw1, real *db1, real *dw2, real *db2, real *scratch, const real *dout,
                  const real *inp, const real *h, const real *a, const real *w1, const real *w2, int N,
                  int D, int Hd) {
    linear_backward(scratch, dw2, db2, dout, a, w2, N, Hd, D, 0);  // scratch = d a
    gelu_backward(scratch, scratch, h, (size_t)N * Hd);           // scratch = d h
    linear_backward(dinp, dw1, db1, scratch, inp, w1, N, D, Hd, 0);
}

// ---- softmax cross-entropy -------------------------------------------------------------------

double crossentropy_forward(real *probs, real *losses, const real *logits, const int32_t *tgt, int N, int V) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const real *z = logits + (size_t)n * V;
        real *p = probs + (size_t)n * V, mx = max_of(z, V);
        memcpy(p, z, V * sizeof(real));
        real s = exp_sum_inplace(p, V, mx);
        real inv = 1 / s;
        for (int v = 0; v < V; v++) p[v] *= inv;
        losses[n] = tgt[n] >= 0 ? (real)(log((double)s) - (double)(z[tgt[n]] - mx)) : 0;
    }
    double sum = 0;
    int cnt = 0;
    for (int n = 0; n < N; n++)
        if (tgt[n] >= 0) { sum += losses[n]; cnt++; }
    return cnt ? sum / cnt : 0;
}

void crossentropy_backward(real *dlogits, const real *probs, const int32_t *tgt, int N, int V) {
    int cnt = 0;
    for (int n = 0; n < N; n++) cnt += tgt[n] >= 0;
    real inv = cnt ? (real)1 / cnt : 0;
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        real *d = dlogits + (size_t)n * V;
        const real *p = probs + (size_t)n * V;
        if (tgt[n] < 0) { memset(d, 0, V * sizeof(real)); continue; }
        for (int v = 0; v < V; v++) d[v] = p[v] * inv;
        d[tgt[n]] -= inv;
    }
}

// ---- depthwise causal short convolution ------------------------------------------------------

void shortconv_forward(real *out, const real *inp, const real *w, const real *b, int B, int T, int D, int K) {
#pragma omp parallel for schedule(static)
    for (int bt = 0; bt < B * T; bt++) {
        int t = bt % T;
        real *o = out + (size_t)bt * D;
        for (int c = 0; c < D; c++) o[c] = b[c];
        for (int j = 0; j < K; j++) {
            int s = t - (K - 1) + j;
            if (s < 0) continue;
            const real *x = inp + (size_t)(bt - t + s) * D;
            for (int c = 0; c < D; c++) o[c] += w[c * K + j] * x[c];
        }
    }
}

void shortconv_backward(real *dinp, real *dw, real *db, const real *dout, const real *inp, const real *w,
                        int B, int T, int D, int K) {
#pragma omp parallel
    {
#pragma omp for schedule(static)
        for (int bs = 0; bs < B * T; bs++) {  // input position s feeds outputs t = s + (K-1) - j
            int s = bs % T;
            real *dx = dinp + (size_t)bs * D;
            for (int j = 0; j < K; j++) {
                int t = s + (K - 1) - j;
                if (t >= T) continue;
                const real *g = dout + (size_t)(bs - s + t) * D;
                for (int c = 0; c < D; c++) dx[c] += w[c * K + j] * g[c];
            }
        }
        // kernel/bias gradients: each thread owns a channel range, rows summed in order; taps are
        // accumulated channel-contiguous (acc[j][c]) so the inner loop vectorises, then stored.
        enum { CB = 256, KMAX = 8 };
        real acc[KMAX + 1][CB];
        int th = omp_get_thread_num(), nt = omp_get_num_threads();
        int c0 = D * th / nt, c1 = D * (th + 1) / nt;
        for (int cb = c0; cb < c1 && K <= KMAX; cb += CB) {
            int ce = cb + CB < c1 ? cb + CB : c1, w = ce - cb;
            for (int j = 0; j <= K; j++) memset(acc[j], 0, w * sizeof(real));
            for (int bt = 0; bt < B * T; bt++) {
                int t = bt % T;
                const real *g = dout + (size_t)bt * D + cb;
                for (int c = 0; c < w; c++) acc[K][c] += g[c];
                for (int j = 0; j < K; j++) {
                    int s = t - (K - 1) + j;
                    if (s < 0) continue;
                    const real *x = inp + (size_t)(bt - t + s) * D + cb;
                    for (int c = 0; c < w; c++) acc[j][c] += g[c] * x[c];
                }
            }
            for (int c = 0; c < w; c++) {
                db[cb + c] += acc[K][c];
                for (int j = 0; j < K; j++) dw[(size_t)(cb + c) * K + j] += acc[j][c];
            }
        }
        if (K > KMAX)  // long kernels: plain strided accumulation
            for (int bt = 0; bt < B * T; bt++) {
                int t = bt % T;
                const real *g = dout + (size_t)bt * D;
                for (int c = c0; c < c1; c++) db[c] += g[c];
                for (int j = 0; j < K; j++) {
                    int s = t - (K - 1) + j;
                    if (s < 0) continue;
                    const real *x = inp + (size_t)(bt - t + s) * D;
                    for (int c = c0; c < c1; c++) dw[(size_t)c * K + j] += g[c] * x[c];
                }
            }
    }
}

// ---- multi-head causal softmax attention core ------------------------------------------------
// Rows are processed in blocks of MHA_TB queries; a block only touches the keys its rows can see
// ([t0 - W + 1, t1)), which skips the masked upper triangle (and everything outside a window).

#define MHA_TB 32

size_t mha_scratch_floats(int Tmax) { return 2 * (size_t)MHA_TB * (size_t)Tmax; }

static inline int head_window(const int *window, int h) {
    return window && window[h] > 0 ? window[h] : INT_MAX / 2;
}

// P [tb, n] (keys lo..lo+n-1) = softmax over each row's visible keys of scale * q k^T; sets lse
// (forward, lse_out) or uses the saved one (backward, lse_in).
static void mha_block_probs(real *P, real *lse_out, const real *lse_in, const real *qb, const real *kb,
                            int ld, int t0, int tb, int lo, int n, int W, int dh, real scale) {
    gemm_ld(P, n, qb, ld, kb, ld, tb, n, dh, 0, 1, scale, 0);
    for (int i = 0; i < tb; i++) {
        int t = t0 + i, a0 = imax(lo, t - W + 1) - lo, a1 = t - lo;  // visible: a0..a1
        real *row = P + (size_t)i * n;
        for (int a = 0; a < a0; a++) row[a] = 0;
        for (int a = a1 + 1; a < n; a++) row[a] = 0;
        if (lse_out) {
            real mx = max_of(row + a0, a1 - a0 + 1);
            real s = exp_sum_inplace(row + a0, a1 - a0 + 1, mx);
            real inv = 1 / s;
            for (int a = a0; a <= a1; a++) row[a] *= inv;
            lse_out[t] = mx + (real)log((double)s);
        } else {
            real l = lse_in[t];
            for (int a = a0; a <= a1; a++) row[a] = rexp(row[a] - l);
        }
    }
}

void mha_forward(real *out, int ldo, real *lse, const real *q, const real *k, const real *v, int ld,
                 const int *window, int B, int T, int H, int dh, real *scratch, int nscratch) {
    const real scale = (real)(1 / sqrt((double)dh));
    const size_t sstride = mha_scratch_floats(T);
    int nt = imin(nscratch, omp_get_max_threads());
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int bh = 0; bh < B * H; bh++) {
        int b = bh / H, h = bh % H, W = head_window(window, h);
        real *P = scratch + sstride * omp_get_thread_num();
        for (int t0 = 0; t0 < T; t0 += MHA_TB) {
            int tb = imin(MHA_TB, T - t0), lo = imax(0, t0 - W + 1), n = t0 + tb - lo;
            size_t rq = (size_t)b * T + t0, rk = (size_t)b * T + lo;
            mha_block_probs(P, lse + (size_t)bh * T, NULL, q + rq * ld + h * dh, k + rk * ld + h * dh, ld, t0,
                            tb, lo, n, W, dh, scale);
            gemm_ld(out + rq * ldo + h * dh, ldo, P, n, v + rk * ld + h * dh, ld, tb, dh, n, 0, 0, 1, 0);
        }
    }
}

void mha_backward(real *dq, real *dk, real *dv, int ldd, const real *dout, int ldo, const real *lse,
                  const real *q, const real *k, const real *v, int ld, const int *window, int B, int T,
                  int H, int dh, real *scratch, int nscratch) {
    const real scale = (real)(1 / sqrt((double)dh));
    const size_t sstride = mha_scratch_floats(T);
    int nt = imin(nscratch, omp_get_max_threads());
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int bh = 0; bh < B * H; bh++) {
        int b = bh / H, h = bh % H, W = head_window(window, h);
        real *P = scratch + sstride * omp_get_thread_num(), *dP = P + (size_t)MHA_TB * T;
        for (int t = 0; t < T; t++) {
            memset(dk + ((size_t)b * T + t) * ldd + h * dh, 0, dh * sizeof(real));
            memset(dv + ((size_t)b * T + t) * ldd + h * dh, 0, dh * sizeof(real));
        }
        for (int t0 = 0; t0 < T; t0 += MHA_TB) {
            int tb = imin(MHA_TB, T - t0), lo = imax(0, t0 - W + 1), n = t0 + tb - lo;
            size_t rq = (size_t)b * T + t0, rk = (size_t)b * T + lo;
            const real *qb = q + rq * ld + h * dh, *kb = k + rk * ld + h * dh, *vb = v + rk * ld + h * dh;
            const real *gb = dout + rq * ldo + h * dh;
            mha_block_probs(P, NULL, lse + (size_t)bh * T, qb, kb, ld, t0, tb, lo, n, W, dh, scale);
            gemm_ld(dP, n, gb, ldo, vb, ld, tb, n, dh, 0, 1, 1, 0);                        // dP = dO V^T
            gemm_ld(dv + rk * ldd + h * dh, ldd, P, n, gb, ldo, n, dh, tb, 1, 0, 1, 1);    // dV += P^T dO
            for (int i = 0; i < tb; i++) {                                                // dS = P (dP - rowsum(P dP))
                real *p = P + (size_t)i * n, *g = dP + (size_t)i * n, dsum = 0;
                for (int a = 0; a < n; a++) dsum += p[a] * g[a];
                for (int a = 0; a < n; a++) g[a] = p[a] * (g[a] - dsum);
            }
            gemm_ld(dq + rq * ldd + h * dh, ldd, dP, n, kb, ld, tb, dh, n, 0, 0, scale, 0);  // dQ = s dS K
            gemm_ld(dk + rk * ldd + h * dh, ldd, dP, n, qb, ld, n, dh, tb, 1, 0, scale, 1);  // dK += s dS^T Q
        }
    }
}

void mha_step(real *out, const real *q, const real *kc, const real *vc, int n, int ldc, int dh, real *sc) {
    const double scale = 1 / sqrt((double)dh);
    real mx = -INFINITY;
    for (int i = 0; i < n; i++) {
        real s = 0;
        for (int j = 0; j < dh; j++) s += q[j] * kc[(size_t)i * ldc + j];
        sc[i] = (real)(s * scale);
        mx = sc[i] > mx ? sc[i] : mx;
    }
    real sum = exp_sum_inplace(sc, n, mx);
    for (int j = 0; j < dh; j++) out[j] = 0;
    for (int i = 0; i < n; i++) {
        real a = sc[i] / sum;
        for (int j = 0; j < dh; j++) out[j] += a * vc[(size_t)i * ldc + j];
    }
}
