// bla.c — the Blurry Window Attention mixer (design/bla.md): q, k, v, o projections around a softmax
// over blurry reconstruction points of a band-limited window. Depends on mixer.h, bla_ops.h, cblas, OpenMP.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../bla_ops.h"
#include "../layers.h"
#include "../mixer.h"

#ifdef RB_DOUBLE
#define rexp exp
#else
#define rexp expf
#endif

// Practical bounds (the step's readout R is M x N, the transition build costs W N^2).
#define BLA_MAX_W 16384
#define BLA_MAX_N 2048

// Per-head operators, cast to real once in create().
typedef struct {
    int W, N, M;   // window, kept coefficients, reconstruction points
    int Mv;        // points with age <= Tmax-1: the only columns the parallel form can ever unmask
    real *h;       // [Tmax, Mv] impulse responses h[a, m] (bla.md "Parallel (training) form")
    real *A;       // [N, N] transition
    real *Bv;      // [N]    input vector
    real *R;       // [M, N] readout
} BlaHead;

typedef struct {
    int D, H, dh, Bmax, Tmax, readout, Nmax, Mmax, Mvmax;
    BlaHead hd[RB_MAX_HEADS];
    real *qkv;                  // [Bmax*Tmax, 3D] saved projections q | k | v
    real *o;                    // [Bmax*Tmax, D] head outputs before wo, saved
    real *att;                  // [Bmax*H, att_blk] softmax probabilities a_t[m], row stride Mv(T)
    size_t att_blk;             // Tmax * Mvmax
    real *dO;                   // [Bmax*Tmax, D] backward workspace
    real *dqkv;                 // [Bmax*Tmax, 3D] backward workspace, layout of qkv
    real *scr;                  // [nthr, scr_blk] per-thread scratch: two T x T and one T x Mv
    size_t scr_blk;
    int nthr;
    real *sb;                   // step scratch
} BlaCtx;

// Row-major C [m, n] = alpha op(A) op(B) + beta C with explicit leading dimensions (strided head slices).
static inline void gemm(int ta, int tb, int m, int n, int k, real alpha, const real *A, int lda, const real *B,
                        int ldb, real beta, real *C, int ldc) {
    gemm_ld(C, ldc, A, lda, B, ldb, m, n, k, ta, tb, alpha, beta);
}

// ---- config ---------------------------------------------------------------------------------------
static int bla_validate(const MixerCfg *c, char *err, size_t errn) {
    if (c->heads < 1 || c->heads > RB_MAX_HEADS) {
        snprintf(err, errn, "--heads %d out of range: must be 1 <= H <= %d", c->heads, RB_MAX_HEADS);
        return -1;
    }
    if (c->d < 1 || c->d % c->heads) {
        snprintf(err, errn, "--d-model %d invalid: must be positive and divisible by --heads (%d)", c->d, c->heads);
        return -1;
    }
    if (c->bla_readout != BLA_READOUT_DENSE && c->bla_readout != BLA_READOUT_SLOTS) {
        snprintf(err, errn, "--bla-readout %d invalid: must be dense or slots", c->bla_readout);
        return -1;
    }
    if (c->bla_transition != BLA_TRANSITION_PROJECT && c->bla_transition != BLA_TRANSITION_DECAY) {
        snprintf(err, errn, "--bla-transition %d invalid: must be project or decay", c->bla_transition);
        return -1;
    }
    for (int h = 0; h < c->heads; h++) {
        char who[32] = "";
        if (c->heads > 1) snprintf(who, sizeof who, " (head %d)", h);
        int W = c->window[h], N = c->freqs[h];
        if (W < 1 || W > BLA_MAX_W) {
            snprintf(err, errn, "--window %d%s out of range: must be 1 <= W <= %d", W, who, BLA_MAX_W);
            return -1;
        }
        int nmax = W < BLA_MAX_N ? W : BLA_MAX_N;
        if (N < 1 || N > nmax) {
            if (W <= BLA_MAX_N)
                snprintf(err, errn, "--freqs %d%s out of range: must be 1 <= N <= --window (%d)", N, who, W);
            else
                snprintf(err, errn, "--freqs %d%s out of range: must be 1 <= N <= %d (and <= --window %d)", N, who,
                         BLA_MAX_N, W);
            return -1;
        }
    }
    return 0;
}

// The same tensors, order and init as attention/swa (attention.h, zoology MHA), so bla(N = W) and
// swa(W) start from identical weights: wqkv [3D, D] (rows q | k | v, heads contiguous), bqkv [3D],
// wo [D, D] (INIT_OUT), bo [D]. Linear layout [OC, C], out = inp w^T + b (layers.h).
static int bla_param_specs(const MixerCfg *c, ParamSpec *s) {
    size_t D = (size_t)c->d;
    s[0] = (ParamSpec){"wqkv", 3 * D * D, INIT_NORMAL, 1};
    s[1] = (ParamSpec){"bqkv", 3 * D, INIT_ZERO, 0};
    s[2] = (ParamSpec){"wo", D * D, INIT_OUT, 1};
    s[3] = (ParamSpec){"bo", D, INIT_ZERO, 0};
    return 4;
}

static void bla_destroy(void *vctx) {
    BlaCtx *c = vctx;
    if (!c) return;
    for (int h = 0; h < RB_MAX_HEADS; h++) {
        free(c->hd[h].h);
        free(c->hd[h].A);
        free(c->hd[h].Bv);
        free(c->hd[h].R);
    }
    free(c->qkv); free(c->o); free(c->att); free(c->dO); free(c->dqkv);
    free(c->scr); free(c->sb);
    free(c);
}

static void *bla_create(const MixerCfg *cfg, int Bmax, int Tmax) {
    char err[256];
    if (bla_validate(cfg, err, sizeof err) || Bmax < 1 || Tmax < 1) return NULL;
    rb_blas_single_thread();
    BlaCtx *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->D = cfg->d;
    c->H = cfg->heads;
    c->dh = cfg->d / cfg->heads;
    c->Bmax = Bmax;
    c->Tmax = Tmax;
    c->readout = cfg->bla_readout;
    for (int h = 0; h < c->H; h++) {
        BlaHead *hd = &c->hd[h];
        BlaOperators op;
        if (bla_operators_build(&op, cfg->window[h], cfg->freqs[h], cfg->bla_readout, cfg->bla_transition)) goto fail;
        hd->W = op.W;
        hd->N = op.N;
        hd->M = op.M;
        hd->Mv = bla_points_visible(op.M, Tmax, op.W, op.N, c->readout);
        // Impulse responses of the visible points only (R's first Mv rows), in double, then cast.
        BlaOperators vis = op;
        vis.M = hd->Mv;
        double *hdbl = malloc(sizeof(double) * Tmax * hd->Mv);
        hd->h = rb_calloc(1, sizeof(real) * Tmax * hd->Mv);
        hd->A = rb_calloc(1, sizeof(real) * op.N * op.N);
        hd->Bv = rb_calloc(1, sizeof(real) * op.N);
        hd->R = rb_calloc(1, sizeof(real) * op.M * op.N);
        if (!hdbl || !hd->h || !hd->A || !hd->Bv || !hd->R) { free(hdbl); bla_operators_free(&op); goto fail; }
        bla_impulse_response(hdbl, &vis, Tmax);
        for (size_t i = 0; i < (size_t)Tmax * hd->Mv; i++) hd->h[i] = (real)hdbl[i];
        for (size_t i = 0; i < (size_t)op.N * op.N; i++) hd->A[i] = (real)op.A[i];
        for (int i = 0; i < op.N; i++) hd->Bv[i] = (real)op.B[i];
        for (size_t i = 0; i < (size_t)op.M * op.N; i++) hd->R[i] = (real)op.R[i];
        free(hdbl);
        bla_operators_free(&op);
        if (hd->N > c->Nmax) c->Nmax = hd->N;
        if (hd->M > c->Mmax) c->Mmax = hd->M;
        if (hd->Mv > c->Mvmax) c->Mvmax = hd->Mv;
    }
    size_t n = (size_t)Bmax * Tmax * c->D;
    c->qkv = rb_calloc(1, 3 * n * sizeof(real));
    c->o = rb_calloc(1, n * sizeof(real));
    c->dO = rb_calloc(1, n * sizeof(real));
    c->dqkv = rb_calloc(1, 3 * n * sizeof(real));
    c->att_blk = (size_t)Tmax * c->Mvmax;
    c->att = rb_calloc(1, (size_t)Bmax * c->H * c->att_blk * sizeof(real));
    c->nthr = omp_get_max_threads();  // at most this many threads use the scratch (as attention.c)
    c->scr_blk = 2 * (size_t)Tmax * Tmax + (size_t)Tmax * c->Mvmax;
    c->scr = rb_calloc(1, (size_t)c->nthr * c->scr_blk * sizeof(real));
    c->sb = rb_calloc(1, (5 * (size_t)c->D + (size_t)c->Nmax * c->dh + c->Mmax + 2 * (size_t)c->Nmax) * sizeof(real));
    if (!c->qkv || !c->o || !c->dO || !c->dqkv || !c->att || !c->scr || !c->sb)
        goto fail;
    return c;
fail:
    bla_destroy(c);
    return NULL;
}

// ---- parallel form, one (sequence, head) -----------------------------------------------------------
// X [T, T] = Toeplitz re-indexing of S [T, T]: X[t, j] = S[t, t-j] for j <= t (age j), 0 above. Its
// own inverse on lower-triangular matrices (j = t - s), so it also maps X back to S.
static void reindex_ages(real *X, const real *S, int T, real scale) {
    for (int t = 0; t < T; t++) {
        const real *srow = S + (size_t)t * T;
        real *xrow = X + (size_t)t * T;
        for (int j = 0; j <= t; j++) xrow[j] = scale * srow[t - j];
        for (int j = t + 1; j < T; j++) xrow[j] = 0;
    }
}

static inline real *att_of(const BlaCtx *c, int b, int h) { return c->att + ((size_t)b * c->H + h) * c->att_blk; }

// Head h of sequence b: scores[t,m] = sum_{s<=t} h[t-s,m] (q_t.k_s)/sqrt(d_k), masked for age(m) > t;
// a = softmax; o_t = sum_s G[t,s] v_s, G[t,s] = sum_m a_t[m] h[t-s,m]. Both convolutions are GEMMs
// with h after re-indexing by age: scores = Srev H, Grev = a H^T.
static void head_forward(BlaCtx *c, int b, int h, int T, real *scr) {
    const BlaHead *hd = &c->hd[h];
    const int D = c->D, dh = c->dh, Mv = bla_points_visible(hd->M, T, hd->W, hd->N, c->readout);
    const size_t off = (size_t)b * T * 3 * D + (size_t)h * dh, ooff = (size_t)b * T * D + (size_t)h * dh;
    const real *Q = c->qkv + off, *K = Q + D, *V = Q + 2 * D;
    real *O = c->o + ooff, *S = scr, *X = scr + (size_t)T * T, *a = att_of(c, b, h);
    gemm(0, 1, T, T, dh, (real)(1.0 / sqrt((double)dh)), Q, 3 * D, K, 3 * D, 0, S, T);  // S = Q K^T / sqrt(d_k)
    reindex_ages(X, S, T, 1);                                                     // X[t,j] = S[t,t-j]
    gemm(0, 0, T, Mv, T, 1, X, T, hd->h, hd->Mv, 0, a, Mv);                       // scores [T, Mv]
    int nv = 0;
    for (int t = 0; t < T; t++) {
        while (nv < Mv && !bla_point_masked(nv, t, hd->W, hd->N, c->readout)) nv++;
        real *row = a + (size_t)t * Mv, mx = row[0], sum = 0;
        for (int m = 1; m < nv; m++) mx = row[m] > mx ? row[m] : mx;
        for (int m = 0; m < nv; m++) { row[m] = rexp(row[m] - mx); sum += row[m]; }
        real inv = 1 / sum;
        for (int m = 0; m < nv; m++) row[m] *= inv;
        for (int m = nv; m < Mv; m++) row[m] = 0;
    }
    gemm(0, 1, T, T, Mv, 1, a, Mv, hd->h, hd->Mv, 0, X, T);                       // Grev[t,j] = sum_m a h[j,m]
    reindex_ages(S, X, T, 1);                                                     // G[t,s] = Grev[t,t-s]
    gemm(0, 0, T, dh, T, 1, S, T, V, 3 * D, 0, O, D);                             // O = G V
}

// Backward of head_forward given dO (rows of c->dO); writes dQ, dK, dV of this head.
static void head_backward(BlaCtx *c, int b, int h, int T, real *scr) {
    const BlaHead *hd = &c->hd[h];
    const int D = c->D, dh = c->dh, Mv = bla_points_visible(hd->M, T, hd->W, hd->N, c->readout);
    const size_t off = (size_t)b * T * 3 * D + (size_t)h * dh, ooff = (size_t)b * T * D + (size_t)h * dh;
    const int ld = 3 * D;
    const real *Q = c->qkv + off, *K = Q + D, *V = Q + 2 * D, *dO = c->dO + ooff, *a = att_of(c, b, h);
    real *dQ = c->dqkv + off, *dK = dQ + D, *dV = dQ + 2 * D;
    real *S = scr, *X = scr + (size_t)T * T, *Y = X + (size_t)T * T;
    gemm(0, 1, T, T, Mv, 1, a, Mv, hd->h, hd->Mv, 0, X, T);                       // recompute Grev
    reindex_ages(S, X, T, 1);                                                     // G
    gemm(1, 0, T, dh, T, 1, S, T, dO, D, 0, dV, ld);                              // dV = G^T dO
    gemm(0, 1, T, T, dh, 1, dO, D, V, ld, 0, S, T);                               // dG = dO V^T
    reindex_ages(X, S, T, 1);                                                     // dGrev (s <= t only)
    gemm(0, 0, T, Mv, T, 1, X, T, hd->h, hd->Mv, 0, Y, Mv);                       // da = dGrev H
    for (int t = 0; t < T; t++) {                                                 // softmax backward
        const real *ar = a + (size_t)t * Mv;
        real *yr = Y + (size_t)t * Mv, dot = 0;
        for (int m = 0; m < Mv; m++) dot += ar[m] * yr[m];
        for (int m = 0; m < Mv; m++) yr[m] = ar[m] * (yr[m] - dot);
    }
    gemm(0, 1, T, T, Mv, 1, Y, Mv, hd->h, hd->Mv, 0, X, T);                       // dSrev = dscore H^T
    reindex_ages(S, X, T, (real)(1.0 / sqrt((double)dh)));                        // dS (scaled)
    gemm(0, 0, T, dh, T, 1, S, T, K, ld, 0, dQ, ld);                              // dQ = dS K
    gemm(1, 0, T, dh, T, 1, S, T, Q, ld, 0, dK, ld);                              // dK = dS^T Q
}

// out [B,T,D] = concat_h BLA_h(q, k, v) wo^T + bo, with [q | k | v] = inp wqkv^T + bqkv.
static void bla_forward(Mixer *m, real *const *p, real *out, const real *inp, int B, int T) {
    BlaCtx *c = m->ctx;
    const int D = c->D, BT = B * T, jobs = B * c->H;
    linear_forward(c->qkv, inp, p[0], p[1], BT, D, 3 * D);
#pragma omp parallel for schedule(dynamic, 1) num_threads(c->nthr)
    for (int i = 0; i < jobs; i++)
        head_forward(c, i / c->H, i % c->H, T, c->scr + (size_t)omp_get_thread_num() * c->scr_blk);
    linear_forward(out, c->o, p[2], p[3], BT, D, D);
}

// dinp [B,T,D] overwritten; dp[0..3] += parameter gradients.
static void bla_backward(Mixer *m, real *const *p, real *const *dp, real *dinp, const real *dout, const real *inp,
                         int B, int T) {
    BlaCtx *c = m->ctx;
    const int D = c->D, BT = B * T, jobs = B * c->H;
    linear_backward(c->dO, dp[2], dp[3], dout, c->o, p[2], BT, D, D, 0);
#pragma omp parallel for schedule(dynamic, 1) num_threads(c->nthr)
    for (int i = 0; i < jobs; i++)
        head_backward(c, i / c->H, i % c->H, T, c->scr + (size_t)omp_get_thread_num() * c->scr_blk);
    linear_backward(dinp, dp[0], dp[1], c->dqkv, inp, p[0], BT, D, 3 * D, 0);
}

// ---- recurrent form ---------------------------------------------------------------------------------
static size_t bla_step_state_size(const Mixer *m) {
    size_t s = 0;
    for (int h = 0; h < m->cfg.heads; h++) s += (size_t)m->cfg.freqs[h] * 2 * (m->cfg.d / m->cfg.heads);
    return s;
}

// Z [N, dh] <- A Z + B x^T (bla.md "Recurrence"), accumulated in double; tmp [N, dh].
static void state_update(real *Z, const BlaHead *hd, const real *x, int dh, real *tmp) {
    const int N = hd->N;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < dh; j++) {
            double s = (double)hd->Bv[i] * x[j];
            for (int k = 0; k < N; k++) s += (double)hd->A[(size_t)i * N + k] * Z[(size_t)k * dh + j];
            tmp[(size_t)i * dh + j] = (real)s;
        }
    memcpy(Z, tmp, sizeof(real) * N * dh);
}

// State per head: Z^K [N, dh] then Z^V [N, dh]. u = Z^K q, score = R u, o = Z^V^T (R^T a) (bla.md "Readout").
static void bla_step(Mixer *m, real *const *p, real *state, real *out, const real *x, int t) {
    BlaCtx *c = m->ctx;
    const int D = c->D, dh = c->dh;
    real *q = c->sb, *k = q + D, *v = k + D, *o = v + D, *tmp = o + D, *sc = tmp + (size_t)c->Nmax * dh;
    real *u = sc + c->Mmax, *cv = u + c->Nmax;
    memcpy(q, p[1], 3 * D * sizeof(real));  // [q | k | v] = wqkv x + bqkv
    GEMV(CblasRowMajor, CblasNoTrans, 3 * D, D, 1, p[0], D, x, 1, 1, q, 1);
    const double scale = 1.0 / sqrt((double)dh);
    size_t off = 0;
    for (int h = 0; h < c->H; h++) {
        const BlaHead *hd = &c->hd[h];
        const int N = hd->N;
        real *ZK = state + off, *ZV = ZK + (size_t)N * dh;
        off += 2 * (size_t)N * dh;
        const real *qh = q + h * dh;
        state_update(ZK, hd, k + h * dh, dh, tmp);
        state_update(ZV, hd, v + h * dh, dh, tmp);
        for (int i = 0; i < N; i++) {
            double s = 0;
            for (int j = 0; j < dh; j++) s += (double)ZK[(size_t)i * dh + j] * qh[j];
            u[i] = (real)(s * scale);
        }
        int nv = 0;
        while (nv < hd->M && !bla_point_masked(nv, t, hd->W, hd->N, c->readout)) nv++;
        double mx = -INFINITY, sum = 0;
        for (int mm = 0; mm < nv; mm++) {
            double s = 0;
            for (int i = 0; i < N; i++) s += (double)hd->R[(size_t)mm * N + i] * u[i];
            sc[mm] = (real)s;
            mx = fmax(mx, s);
        }
        for (int mm = 0; mm < nv; mm++) { sc[mm] = (real)exp(sc[mm] - mx); sum += sc[mm]; }
        for (int i = 0; i < N; i++) cv[i] = 0;
        for (int mm = 0; mm < nv; mm++) {
            real am = (real)(sc[mm] / sum);
            for (int i = 0; i < N; i++) cv[i] += am * hd->R[(size_t)mm * N + i];
        }
        for (int j = 0; j < dh; j++) {
            double s = 0;
            for (int i = 0; i < N; i++) s += (double)cv[i] * ZV[(size_t)i * dh + j];
            o[h * dh + j] = (real)s;
        }
    }
    memcpy(out, p[3], D * sizeof(real));  // out = wo o + bo
    GEMV(CblasRowMajor, CblasNoTrans, D, D, 1, p[2], D, o, 1, 1, out, 1);
}

// bla.md "Parameters": N (d_k + d_v) floats per head; 2 N d for equal heads.
static double bla_state_floats(const MixerCfg *c, int T) {
    double s = 0;
    for (int h = 0; h < c->heads; h++) s += (double)c->freqs[h] * 2 * (c->d / c->heads);
    return s;
}

const MixerOps bla_ops = {
    .name = "bla",
    .validate = bla_validate,
    .param_specs = bla_param_specs,
    .init_custom = NULL,
    .create = bla_create,
    .destroy = bla_destroy,
    .forward = bla_forward,
    .backward = bla_backward,
    .step_state_size = bla_step_state_size,
    .step = bla_step,
    .state_floats = bla_state_floats,
    .state_formula = "2*N*d",  // per head N_h (d_k + d_v); sum over heads
};
