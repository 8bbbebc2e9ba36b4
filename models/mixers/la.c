// la.c — normalised linear attention (models.md "la"): Based's Taylor feature map or elu + 1.
// Depends on mixer.h, real.h (cblas GEMM for projections), OpenMP (scans over (b,h)).
//
// Follows zoology's Based layer (zoology/mixers/based.py, feature_maps/taylor.py) with
// num_heads = num_key_value_heads = H (zoology's MQAR configs use 1):
//   q = W_q x, k = W_k x   [H*f] (taylor, f = --feature-dim per head) or [D] (elu, d_h per head)
//   v = W_v x              [D], d_h per head; no biases
//   per head: S_t = S_{t-1} + phi(k) v^T, z_t = z_{t-1} + phi(k); o = S_t^T phi(q) / (phi(q).z_t + 1e-12)
//   out = W_o o
// taylor: phi(x) = [1, x/f^(1/4), x_i^2/(sqrt(2) sqrt(f)), x_i x_j/sqrt(f) (i > j)] — zoology's
// TaylorExp.forward_mem_save layout, f' = 1 + f + f(f+1)/2 features (153 for f = 16), and
// phi(q).phi(k) = 1 + q.k/sqrt(f) + (q.k)^2/(2f) exactly as the full x (x) x form. elu: phi = elu(x)+1.
// The 1e-12 in the denominator is zoology's Based eps; the taylor kernel is >= 1/2 per token and
// elu + 1 > 0, so it only guards an all-underflow elu row.
#include "../layers.h"
#include "../mixer.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tgmath.h>

#include "la.h"  // LA_EPS, the tensor order (shared with cuda/la.cu)

// rvec16 locals (layers.h) in the cloned scans: no vector crosses a call, the ABI note is moot.
#pragma GCC diagnostic ignored "-Wpsabi"

typedef struct {
    int D, H, dh, kind, fq, F;   // fq: projected q/k dims per head; F: feature size per head
    real *qa, *ka;               // [BT, H*fq]
    real *v, *o;                 // [BT, D]
    real *phq, *phk;             // [BT, H*F]
    real *den;                   // [BT, H]
    real *dO, *dv;               // [BT, D] backward
    real *dphq, *dphk;           // [BT, H*F] backward
    real *dqa, *dka;             // [BT, H*fq] backward
    real *st;                    // [Bmax*H, 2 (F d_h + F) + d_h] scan states (S, z, adjoints U, u, dnum)
    real *sx;                    // step scratch
} LaCtx;

// Feature size per head: f' = 1 + f + f(f+1)/2 (taylor), d_h (elu).
int la_feature_size(int kind, int n) { return kind == LA_TAYLOR ? 1 + n + n * (n + 1) / 2 : n; }

// phi [la_feature_size(kind, n)] = feature map of x [n] (see the file comment).
void la_feature_map(real *phi, const real *x, int n, int kind) {
    if (kind == LA_ELU) {
        for (int i = 0; i < n; i++) phi[i] = x[i] > 0 ? x[i] + 1 : exp(x[i]);
        return;
    }
    const real rd = sqrt((real)n), rrd = sqrt(rd), r2 = sqrt((real)2);
    phi[0] = 1;
    for (int i = 0; i < n; i++) {
        phi[1 + i] = x[i] / rrd;
        phi[1 + n + i] = x[i] * x[i] / (r2 * rd);
    }
    int a = 1 + 2 * n;
    for (int i = 1; i < n; i++)
        for (int j = 0; j < i; j++) phi[a++] = x[i] * x[j] / rd;
}

// dx [n] = (dphi [f'] through phi at x [n]); overwrites dx.
static void la_feature_backward(real *dx, const real *dphi, const real *x, int n, int kind) {
    if (kind == LA_ELU) {
        for (int i = 0; i < n; i++) dx[i] = dphi[i] * (x[i] > 0 ? 1 : exp(x[i]));
        return;
    }
    const real rd = sqrt((real)n), rrd = sqrt(rd), r2 = sqrt((real)2);
    for (int i = 0; i < n; i++) dx[i] = dphi[1 + i] / rrd + dphi[1 + n + i] * 2 * x[i] / (r2 * rd);
    int a = 1 + 2 * n;
    for (int i = 1; i < n; i++)
        for (int j = 0; j < i; j++) {
            real g = dphi[a++] / rd;
            dx[i] += g * x[j];
            dx[j] += g * x[i];
        }
}

static int la_validate(const MixerCfg *c, char *err, size_t errn) {
    if (c->heads < 1 || c->heads > RB_MAX_HEADS || c->d % c->heads != 0) {
        snprintf(err, errn, "--heads %d: must be in [1, %d] and divide --d-model %d", c->heads, RB_MAX_HEADS, c->d);
        return -1;
    }
    if (c->feature_map != LA_TAYLOR && c->feature_map != LA_ELU) {
        snprintf(err, errn, "--feature-map %d: must be taylor or elu", c->feature_map);
        return -1;
    }
    if (c->feature_map == LA_TAYLOR && (c->feature_dim < 1 || c->feature_dim > 64)) {
        snprintf(err, errn, "--feature-dim %d: must be in [1, 64]", c->feature_dim);
        return -1;
    }
    return 0;
}

static int la_fq(const MixerCfg *c) { return c->feature_map == LA_TAYLOR ? c->feature_dim : c->d / c->heads; }

// Weights are stored [out, in] (y = x W^T), as nn.Linear; W_o is an output projection (INIT_OUT).
static int la_param_specs(const MixerCfg *c, ParamSpec *sp) {
    size_t D = (size_t)c->d, Q = (size_t)c->heads * la_fq(c);
    sp[LA_WQ] = (ParamSpec){"wq", Q * D, INIT_NORMAL, 1};
    sp[LA_WK] = (ParamSpec){"wk", Q * D, INIT_NORMAL, 1};
    sp[LA_WV] = (ParamSpec){"wv", D * D, INIT_NORMAL, 1};
    sp[LA_WO] = (ParamSpec){"wo", D * D, INIT_OUT, 1};
    return LA_NT;
}

static size_t la_st_per_head(const LaCtx *x) { return 2 * ((size_t)x->F * x->dh + x->F) + x->dh; }

static void *la_create(const MixerCfg *c, int Bmax, int Tmax) {
    LaCtx *x = calloc(1, sizeof *x);
    if (!x) return NULL;
    x->D = c->d; x->H = c->heads; x->dh = c->d / c->heads; x->kind = c->feature_map;
    x->fq = la_fq(c); x->F = la_feature_size(x->kind, x->fq);
    size_t N = (size_t)Bmax * Tmax, D = x->D, Q = (size_t)x->H * x->fq, HF = (size_t)x->H * x->F;
    size_t st = (size_t)Bmax * x->H * la_st_per_head(x);
    size_t total = N * (4 * Q + 4 * D + 4 * HF + x->H) + st + 2 * Q + 2 * D + 2 * HF;
    real *w = rb_calloc(total, sizeof(real));  // aligned (layers.h)
    if (!w) { free(x); return NULL; }
    x->qa = w; w += N * Q;
    x->ka = w; w += N * Q;
    x->dqa = w; w += N * Q;
    x->dka = w; w += N * Q;
    x->v = w; w += N * D;
    x->o = w; w += N * D;
    x->dO = w; w += N * D;
    x->dv = w; w += N * D;
    x->phq = w; w += N * HF;
    x->phk = w; w += N * HF;
    x->dphq = w; w += N * HF;
    x->dphk = w; w += N * HF;
    x->den = w; w += N * x->H;
    x->st = w; w += st;
    x->sx = w;
    return x;
}

static void la_destroy(void *ctx) {
    LaCtx *x = ctx;
    if (!x) return;
    free(x->qa);  // the first carve of the one allocation
    free(x);
}

// phq, phk [N, H*F] = phi of each head's slice of qa, ka [N, H*fq].
static void la_features(LaCtx *c, real *phq, real *phk, const real *qa, const real *ka, int N) {
    const int H = c->H, fq = c->fq, F = c->F;
#pragma omp parallel for schedule(static) if (N >= 64)
    for (int i = 0; i < N; i++)
        for (int h = 0; h < H; h++) {
            size_t a = ((size_t)i * H + h) * fq, b = ((size_t)i * H + h) * F;
            la_feature_map(phq + b, qa + a, fq, c->kind);
            la_feature_map(phk + b, ka + a, fq, c->kind);
        }
}

// One token of one head: S [F, d_h] += phk v^T, z [F] += phk; o [d_h] = S^T phq / (phq.z + eps).
// Returns the denominator. Shared by the training scan and the step form.
// Cloned (RB_CLONES, layers.h) like every hot loop outside GEMM: the baseline x86-64 build of the
// scans ran them in SSE2, 70% of a conv,la step.
RB_CLONES static real la_token(real *restrict S, real *restrict z, real *restrict o, const real *restrict phq,
                               const real *restrict phk, const real *restrict v, int F, int dh) {
    for (int j = 0; j < dh; j++) o[j] = 0;
    for (int a = 0; a < F; a++) {
        real *row = S + (size_t)a * dh, ka = phk[a], qa = phq[a];
        for (int j = 0; j < dh; j++) {
            row[j] += ka * v[j];
            o[j] += qa * row[j];
        }
    }
    // den = phq . z in 16 fixed lanes and a pairwise tree (a serial sum was a 153-add chain)
    rvec16 lane = {0};
    int a = 0;
    for (; a + 16 <= F; a += 16) {
        rvec16 zz = rv_load(z + a) + rv_load(phk + a);
        rv_store(z + a, zz);
        lane += rv_load(phq + a) * zz;
    }
    for (; a < F; a++) {
        z[a] += phk[a];
        lane[0] += phq[a] * z[a];
    }
    real den = rv_sum(lane) + (real)LA_EPS;
    real inv = 1 / den;
    for (int j = 0; j < dh; j++) o[j] *= inv;
    return den;
}

static void la_forward(Mixer *mx, real *const *p, real *out, const real *inp, int B, int T) {
    LaCtx *c = mx->ctx;
    const int N = B * T, D = c->D, H = c->H, dh = c->dh, F = c->F, Q = c->H * c->fq;
    matmul_par(c->qa, inp, p[LA_WQ], N, Q, D, 0, 1, 0);
    matmul_par(c->ka, inp, p[LA_WK], N, Q, D, 0, 1, 0);
    matmul_par(c->v, inp, p[LA_WV], N, D, D, 0, 1, 0);
    la_features(c, c->phq, c->phk, c->qa, c->ka, N);
    const size_t sh = la_st_per_head(c);
#pragma omp parallel for schedule(static)
    for (int bh = 0; bh < B * H; bh++) {
        const int b = bh / H, h = bh % H;
        real *S = c->st + (size_t)bh * sh, *z = S + (size_t)F * dh;
        memset(S, 0, ((size_t)F * dh + F) * sizeof(real));
        for (int t = 0; t < T; t++) {
            size_t i = (size_t)b * T + t, od = i * D + (size_t)h * dh, of = (i * H + h) * F;
            c->den[i * H + h] = la_token(S, z, c->o + od, c->phq + of, c->phk + of, c->v + od, F, dh);
        }
    }
    matmul_par(out, c->o, p[LA_WO], N, D, D, 0, 1, 0);
}

// Backward scans of one (sequence b, head h): dphq, dphk, dv of its tokens. The states are kept
// transposed here, [d_h, F] (S^T, U^T): the per-feature sums then run down the d_h rows as vector
// axpys (each element one chain over j, the same bits in every clone) instead of 153 horizontal
// dot products per token.
RB_CLONES static void la_scan_bwd(LaCtx *c, int b, int h, int T) {
    const int D = c->D, H = c->H, dh = c->dh, F = c->F;
    const int bh = b * H + h;
    real *St = c->st + (size_t)bh * la_st_per_head(c), *z = St + (size_t)F * dh, *Ut = z + F,
         *u = Ut + (size_t)F * dh;
    real *dnum = u + F;
    memset(St, 0, 2 * ((size_t)F * dh + F) * sizeof(real));
    // o = num/den: dnum = do/den, dden = -(do.o)/den.
    // forward re-scan: dphq_t = z_t dden_t + S_t dnum_t
    for (int t = 0; t < T; t++) {
        size_t i = (size_t)b * T + t, od = i * D + (size_t)h * dh, of = (i * H + h) * F;
        const real *restrict v = c->v + od, *o = c->o + od, *dO = c->dO + od, *restrict phk = c->phk + of;
        real den = c->den[i * H + h], dden = 0, *restrict dq = c->dphq + of;
        for (int j = 0; j < dh; j++) { dnum[j] = dO[j] / den; dden -= dO[j] * o[j]; }
        dden /= den;
        for (int a = 0; a < F; a++) {
            z[a] += phk[a];
            dq[a] = z[a] * dden;
        }
        for (int j = 0; j < dh; j++) {
            real *restrict sj = St + (size_t)j * F, vj = v[j], nj = dnum[j];
            for (int a = 0; a < F; a++) {
                sj[a] += phk[a] * vj;
                dq[a] += sj[a] * nj;
            }
        }
    }
    // reverse scan: U_t = sum_{t' >= t} phq dnum^T, u_t = sum phq dden; dphk = u + U v, dv = U^T phk
    for (int t = T - 1; t >= 0; t--) {
        size_t i = (size_t)b * T + t, od = i * D + (size_t)h * dh, of = (i * H + h) * F;
        const real *restrict v = c->v + od, *o = c->o + od, *dO = c->dO + od, *restrict phq = c->phq + of,
                   *restrict phk = c->phk + of;
        real den = c->den[i * H + h], dden = 0, *restrict dk = c->dphk + of, *restrict dv = c->dv + od;
        for (int j = 0; j < dh; j++) { dnum[j] = dO[j] / den; dden -= dO[j] * o[j]; }
        dden /= den;
        for (int a = 0; a < F; a++) {
            u[a] += phq[a] * dden;
            dk[a] = u[a];
        }
        for (int j = 0; j < dh; j++) {
            real *restrict uj = Ut + (size_t)j * F, vj = v[j], nj = dnum[j];
            rvec16 lane = {0};  // dv[j] = phk . U^T[j] in 16 fixed lanes, then a pairwise tree
            int a = 0;
            for (; a + 16 <= F; a += 16) {
                rvec16 x = rv_load(uj + a) + rv_load(phq + a) * nj;
                rv_store(uj + a, x);
                rv_store(dk + a, rv_load(dk + a) + x * vj);
                lane += rv_load(phk + a) * x;
            }
            for (; a < F; a++) {
                real x = uj[a] + phq[a] * nj;
                uj[a] = x;
                dk[a] += x * vj;
                lane[0] += phk[a] * x;
            }
            dv[j] = rv_sum(lane);
        }
    }
}

static void la_backward(Mixer *mx, real *const *p, real *const *dp, real *dinp, const real *dout,
                        const real *inp, int B, int T) {
    LaCtx *c = mx->ctx;
    const int N = B * T, D = c->D, H = c->H, dh = c->dh, F = c->F, fq = c->fq, Q = c->H * c->fq;
    matmul_par(c->dO, dout, p[LA_WO], N, D, D, 0, 0, 0);
    matmul_par(dp[LA_WO], dout, c->o, D, D, N, 1, 0, 1);
    (void)dh;
#pragma omp parallel for schedule(static)
    for (int bh = 0; bh < B * H; bh++) la_scan_bwd(c, bh / H, bh % H, T);
#pragma omp parallel for schedule(static) if (N >= 64)
    for (int i = 0; i < N; i++)
        for (int h = 0; h < H; h++) {
            size_t a = ((size_t)i * H + h) * fq, b = ((size_t)i * H + h) * F;
            la_feature_backward(c->dqa + a, c->dphq + b, c->qa + a, fq, c->kind);
            la_feature_backward(c->dka + a, c->dphk + b, c->ka + a, fq, c->kind);
        }
    matmul_par(dinp, c->dqa, p[LA_WQ], N, D, Q, 0, 0, 0);
    matmul_par(dinp, c->dka, p[LA_WK], N, D, Q, 0, 0, 1);
    matmul_par(dinp, c->dv, p[LA_WV], N, D, D, 0, 0, 1);
    matmul_par(dp[LA_WQ], c->dqa, inp, Q, D, N, 1, 0, 1);
    matmul_par(dp[LA_WK], c->dka, inp, Q, D, N, 1, 0, 1);
    matmul_par(dp[LA_WV], c->dv, inp, D, D, N, 1, 0, 1);
}

// State per sequence: per head [S (F x d_h), z (F)].
static size_t la_step_state_size(const Mixer *mx) {
    const LaCtx *c = mx->ctx;
    return (size_t)c->H * ((size_t)c->F * c->dh + c->F);
}

static void la_step(Mixer *mx, real *const *p, real *state, real *out, const real *x, int t) {
    LaCtx *c = mx->ctx;
    const int D = c->D, H = c->H, dh = c->dh, F = c->F, Q = c->H * c->fq;
    real *qa = c->sx, *ka = qa + Q, *v = ka + Q, *o = v + D, *phq = o + D, *phk = phq + (size_t)H * F;
    matmul(qa, x, p[LA_WQ], 1, Q, D, 0, 1, 0);
    matmul(ka, x, p[LA_WK], 1, Q, D, 0, 1, 0);
    matmul(v, x, p[LA_WV], 1, D, D, 0, 1, 0);
    la_features(c, phq, phk, qa, ka, 1);
    for (int h = 0; h < H; h++) {
        real *S = state + (size_t)h * ((size_t)F * dh + F), *z = S + (size_t)F * dh;
        la_token(S, z, o + (size_t)h * dh, phq + (size_t)h * F, phk + (size_t)h * F, v + (size_t)h * dh, F, dh);
    }
    matmul(out, o, p[LA_WO], 1, D, D, 0, 1, 0);
}

// The KV state f' x d_h plus the normaliser z (f') per head: sum over heads (d_h + 1) f' — for one
// head (d + 1) f' (65 x 153 at d = 64, f = 16), i.e. (d + H) f' in general.
static double la_state_floats(const MixerCfg *c, int T) {
    int dh = c->d / c->heads;
    return (double)c->heads * (dh + 1) * la_feature_size(c->feature_map, la_fq(c));
}

const MixerOps la_ops = {
    .name = "la",
    .validate = la_validate,
    .param_specs = la_param_specs,
    .init_custom = NULL,
    .create = la_create,
    .destroy = la_destroy,
    .forward = la_forward,
    .backward = la_backward,
    .step_state_size = la_step_state_size,
    .step = la_step,
    .state_floats = la_state_floats,
    .state_formula = "(d+H)*f'",  // = (d+1)*f' for one head
};
