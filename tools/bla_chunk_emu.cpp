// bla_chunk_emu.cpp — host emulation of the chunked BLA pass of models/cuda/bla.cu: the code from
// "chunked parallel form" to the interface, with its cuBLAS calls (gemmb, rb_cuda_gemm_batched2) and
// its kernels (reindex, the softmax and its backward) done on the CPU. Depends on the text that
// tools/bla_chunk_emu.sh cuts out of bla.cu (structs.inc, chunk.inc). Run it through that script.
//
// Why: the batched form (all full chunks in one two-level batch) was written without a device. On the
// host every GEMM is a plain loop, so the batched form and the chunk-by-chunk loop (bla_cuda_set_form(2),
// which the device suite checks against the CPU) do the same sums in the same order: every output must
// be bit-identical between them. Checked on random inputs (never zeros) at T with and without a short
// last chunk, one chunk only, two heads, and passes smaller than the context (B < Bmax, T < Tmax).
// Says nothing about speed or cuBLAS itself.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>
#include <random>
#define RB_MAX_HEADS 16
#define BLA_CHUNK 64
#define CHECK_LAUNCH()
static int cdiv(int a, int b) { return (a + b - 1) / b; }
static int rb_cuda_stream() { return 0; }
static int g_mv_visible;  // what bla_points_visible returns here (< the head's Mv: ldb != n is exercised)
static int bla_points_visible(int, int, int, int, int) { return g_mv_visible; }
#include "structs.inc"

// Row-major C = alpha op(A) op(B) + beta C (cuBLAS's semantics as gemmb uses them), double sums.
static void gemm1(int ta, int tb, int m, int n, int k, float alpha, const float *A, int lda, const float *B, int ldb,
                  float beta, float *C, int ldc) {
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int q = 0; q < k; q++)
                s += (double)(ta ? A[(size_t)q * lda + i] : A[(size_t)i * lda + q]) *
                     (tb ? B[(size_t)j * ldb + q] : B[(size_t)q * ldb + j]);
            float *c = C + (size_t)i * ldc + j;
            *c = (float)(alpha * s + (beta != 0 ? (double)beta * *c : 0.0));
        }
}
static long long gemm_calls;
static void rb_cuda_gemm_batched(float *C, int ldc, long long sC, const float *A, int lda, long long sA, const float *B,
                                 int ldb, long long sB, int M, int N, int K, int ta, int tb, float alpha, float beta,
                                 int batch) {
    gemm_calls++;
    for (int i = 0; i < batch; i++) gemm1(ta, tb, M, N, K, alpha, A + i * sA, lda, B + i * sB, ldb, beta, C + i * sC, ldc);
}
static void rb_cuda_gemm_batched2(float *C, int ldc, long long sC1, long long sC2, const float *A, int lda, long long sA1,
                                  long long sA2, const float *B, int ldb, long long sB1, long long sB2, int M, int N, int K,
                                  int ta, int tb, float alpha, float beta, int n1, int n2, void **) {
    gemm_calls++;
    for (int i1 = 0; i1 < n1; i1++)
        for (int i2 = 0; i2 < n2; i2++)
            gemm1(ta, tb, M, N, K, alpha, A + i1 * sA1 + i2 * sA2, lda, B + i1 * sB1 + i2 * sB2, ldb, beta,
                  C + i1 * sC1 + i2 * sC2, ldc);
}
// bla_reindex_kernel: X[b,t,j] = scale * S[b,t,t-j] for j <= t, 0 above.
static void reindex(float *X, const float *S, int B, int T, float scale) {
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int j = 0; j < T; j++)
                X[((size_t)b * T + t) * T + j] = j <= t ? scale * S[((size_t)b * T + t) * T + (t - j)] : 0.f;
}
static inline void gemmb(int ta, int tb, int m, int n, int k, float alpha, const float *A, int lda, long long sA,
                         const float *Bm, int ldb, long long sB, float beta, float *C, int ldc, long long sC, int batch) {
    rb_cuda_gemm_batched(C, ldc, sC, A, lda, sA, Bm, ldb, sB, m, n, k, ta, tb, alpha, beta, batch);
}
// Stand-ins for the softmax kernels (row-wise, the same function for both forms; the kernels
// themselves are unchanged and checked on the device).
static void bla_softmax_kernel(float *a, long long as, int T, int Mv, const int *, int rows) {
    for (int r = 0; r < rows; r++) {
        float *x = a + (r / T) * as + (long long)(r % T) * Mv;
        for (int m = 0; m < Mv; m++) x[m] = tanhf(x[m]);
    }
}
static void bla_softmax_backward_kernel(float *y, long long ys, const float *a, long long as, int T, int Mv, int rows) {
    for (int r = 0; r < rows; r++) {
        float *yr = y + (r / T) * ys + (long long)(r % T) * Mv;
        const float *ar = a + (r / T) * as + (long long)(r % T) * Mv;
        for (int m = 0; m < Mv; m++) yr[m] *= 1.f - ar[m] * ar[m];
    }
}
#include "chunk.inc"

static std::mt19937 rng(12345);
static float *fill(std::vector<float> &v, size_t n, float s) {
    std::uniform_real_distribution<float> u(-s, s);
    v.assign(n, 0.f);
    for (auto &x : v) x = u(rng);
    return v.data();
}

int main() {
    int fails = 0, checks = 0;
    // B, T: the pass; Bx, Tx: the sizes the context was made for (training meets B < Bmax and T < Tmax)
    struct { int B, T, H, dh, N, Mvh, Mv, Bx, Tx; } cases[] = {
        {3, 200, 1, 16, 4, 24, 20, 3, 200}, {2, 256, 2, 8, 8, 30, 30, 2, 256}, {3, 37, 1, 16, 4, 24, 20, 3, 37},
        {2, 64, 2, 8, 4, 20, 17, 2, 64},    {2, 130, 1, 8, 6, 12, 12, 2, 130}, {2, 100, 1, 16, 4, 24, 20, 2, 100},
        {2, 100, 1, 16, 4, 24, 20, 5, 300}, {3, 256, 2, 8, 8, 30, 17, 4, 320}, {2, 127, 2, 8, 4, 20, 17, 3, 129}};
    for (auto &cs : cases) {
        const int B = cs.B, T = cs.T, Bx = cs.Bx, Tx = cs.Tx, H = cs.H, dh = cs.dh, D = H * dh, N = cs.N, C = BLA_CHUNK;
        g_mv_visible = cs.Mv;
        std::vector<float> qkv, o[2], att[2], dO, dqkv[2], S, X, Y[2], Zk[2], Zv[2], Wv[2], U, dZk, dZv;
        std::vector<float> hh[RB_MAX_HEADS], E[RB_MAX_HEADS], Fr[RB_MAX_HEADS], AC[RB_MAX_HEADS];
        BlaCudaCtx c;
        memset(&c, 0, sizeof c);
        c.D = D; c.H = H; c.dh = dh; c.Bmax = Bx; c.Tmax = Tx; c.Nmax = N; c.Mvmax = cs.Mvh; c.chunked = 1;
        c.nchmax = cdiv(Tx, C);
        c.att_blk = (size_t)Tx * cs.Mvh;
        for (int h = 0; h < H; h++) {
            BlaHeadDev *hd = &c.hd[h];
            hd->N = N; hd->M = cs.Mvh; hd->Mv = cs.Mvh; hd->W = 64;
            hd->h = fill(hh[h], (size_t)Tx * cs.Mvh, 0.5f);
            hd->E = fill(E[h], (size_t)C * cs.Mvh * N, 0.3f);
            hd->Fr = fill(Fr[h], (size_t)C * N, 0.3f);
            hd->AC = fill(AC[h], (size_t)N * N, 0.3f);
        }
        const float *qkv0 = fill(qkv, (size_t)Bx * Tx * 3 * D, 1.f);
        const float *dO0 = fill(dO, (size_t)Bx * Tx * D, 1.f);
        (void)qkv0; (void)dO0;
        fill(S, (size_t)Bx * c.nchmax * C * C, 1.f);
        fill(X, (size_t)Bx * c.nchmax * C * C, 1.f);
        fill(U, (size_t)Bx * Tx * N, 1.f);
        const size_t zb = (size_t)Bx * c.nchmax * N * dh;
        fill(dZk, zb, 1.f);
        fill(dZv, zb, 1.f);
        c.qkv = qkv.data(); c.dO = dO.data(); c.S = S.data(); c.X = X.data(); c.U = U.data();
        c.dZk = dZk.data(); c.dZv = dZv.data();
        long long calls[2];
        for (int f = 0; f < 2; f++) {  // f = 0: chunk by chunk (loop); 1: full chunks batched
            // same (random, nonzero) starting contents for both: what a pass must not depend on
            std::mt19937 keep = rng;
            fill(o[f], (size_t)Bx * Tx * D, 1.f); fill(att[f], (size_t)Bx * H * c.att_blk, 1.f);
            fill(dqkv[f], (size_t)Bx * Tx * 3 * D, 1.f); fill(Y[f], (size_t)Bx * c.att_blk, 1.f);
            fill(Zk[f], H * zb, 1.f); fill(Zv[f], H * zb, 1.f); fill(Wv[f], (size_t)H * Bx * Tx * N, 1.f);
            rng = keep;
            // att's rows are the scores' output: give them the forward's input (scores start from beta = 0)
            c.o = o[f].data(); c.att = att[f].data(); c.dqkv = dqkv[f].data(); c.Y = Y[f].data();
            c.Zk = Zk[f].data(); c.Zv = Zv[f].data(); c.Wv = Wv[f].data();
            c.loop = f == 0;
            gemm_calls = 0;
            for (int h = 0; h < H; h++) head_forward_chunked(&c, h, B, T);
            for (int h = 0; h < H; h++) head_backward_chunked(&c, h, B, T);
            calls[f] = gemm_calls;
        }
        // Compare what the passes define: o, att (visible columns), dqkv, Zk/Zv of chunks 1..nch-1, Wv of chunk >= 1.
        auto cmp = [&](const char *what, const std::vector<float> &a, const std::vector<float> &b) {
            size_t bad = 0, first = 0;
            for (size_t i = 0; i < a.size(); i++)
                if (memcmp(&a[i], &b[i], 4)) { if (!bad) first = i; bad++; }
            checks++;
            if (bad) fails++;
            printf("%s B%d T%d H%d dh%d N%d Mv%d/%d %-5s: %s", bad ? "FAIL" : "PASS", B, T, H, dh, N, cs.Mv, cs.Mvh, what,
                   bad ? "" : "bit-identical\n");
            if (bad) printf("%zu of %zu floats differ (first at %zu: %g vs %g)\n", bad, a.size(), first, a[first], b[first]);
        };
        cmp("o", o[0], o[1]);
        cmp("att", att[0], att[1]);
        cmp("dqkv", dqkv[0], dqkv[1]);
        cmp("Y", Y[0], Y[1]);
        cmp("Zk", Zk[0], Zk[1]);
        cmp("Zv", Zv[0], Zv[1]);
        cmp("Wv", Wv[0], Wv[1]);
        printf("     GEMM launches per forward + backward: chunk by chunk %lld, batched %lld\n", calls[0], calls[1]);
        // A pass that ignored its input would also agree with itself: the outputs must move with q, k, v.
        float s = 0;
        for (float x : dqkv[1]) s += fabsf(x);
        checks++;
        if (!(s > 0) || !std::isfinite(s)) { fails++; printf("FAIL dqkv all zero or not finite\n"); }
    }
    printf("bla_chunk_emu: %d checks, %d failed\n", checks, fails);
    return fails ? 1 : 0;
}
