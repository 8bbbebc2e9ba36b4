// la.cu — device form of models/mixers/la.c (normalised linear attention, Based Taylor map or elu + 1):
// same tensors, same ctx buffers, one kernel per CPU helper or loop nest. Depends on layers.cuh, mixer.h.
//
// The recurrence runs as an exact sequential-in-time scan, one block per (batch, head): the block holds
// S [F, d_h] and z [F] (and in backward the adjoints U, u) in shared memory when they fit (else in the
// ctx's global workspace); its threads split the state: one warp per feature row for the dot products
// over d_h (warp_sum, fixed order), one thread per column for the sums over features (fixed feature
// order). No atomics; every reduction has a fixed order.
#include <math.h>
#include "layers.cuh"

#define LA_EPS 1e-12f  // la.c's LA_EPS (zoology's Based eps)
#define LA_THREADS 256

extern "C" int la_feature_size(int kind, int n);  // la.c: f' = 1 + f + f(f+1)/2 (taylor), d_h (elu)

enum { LA_WQ, LA_WK, LA_WV, LA_WO, LA_NT };  // la.c's tensor order

typedef struct {
    int D, H, dh, kind, fq, F, Bmax, Tmax;
    float *qa, *ka, *dqa, *dka;  // [BT, H*fq]
    float *v, *o, *dO, *dv;      // [BT, D]
    float *phq, *phk, *dphq, *dphk;  // [BT, H*F]
    float *den;                  // [BT, H]
    float *st;                   // [Bmax*H, 2 (F d_h + F)] scan states when not in shared memory
    float *sx;                   // step scratch [Bmax, 2 Q + 2 D + 2 H F + H]
    int smem_fwd, smem_bwd;
    size_t shb_fwd, shb_bwd;
} LaCudaCtx;

// Mirrors la_feature_map (same layout and the same arithmetic, term by term).
__device__ void la_feature_map_dev(float *phi, const float *x, int n, int kind) {
    if (kind == LA_ELU) {
        for (int i = 0; i < n; i++) phi[i] = x[i] > 0 ? x[i] + 1 : expf(x[i]);
        return;
    }
    const float rd = sqrtf((float)n), rrd = sqrtf(rd), r2 = sqrtf(2.f);
    phi[0] = 1;
    for (int i = 0; i < n; i++) {
        phi[1 + i] = x[i] / rrd;
        phi[1 + n + i] = x[i] * x[i] / (r2 * rd);
    }
    int a = 1 + 2 * n;
    for (int i = 1; i < n; i++)
        for (int j = 0; j < i; j++) phi[a++] = x[i] * x[j] / rd;
}

// Mirrors la_feature_backward: dx [n] = dphi [f'] through phi at x [n] (overwrites dx).
__device__ void la_feature_backward_dev(float *dx, const float *dphi, const float *x, int n, int kind) {
    if (kind == LA_ELU) {
        for (int i = 0; i < n; i++) dx[i] = dphi[i] * (x[i] > 0 ? 1.f : expf(x[i]));
        return;
    }
    const float rd = sqrtf((float)n), rrd = sqrtf(rd), r2 = sqrtf(2.f);
    for (int i = 0; i < n; i++) dx[i] = dphi[1 + i] / rrd + dphi[1 + n + i] * 2 * x[i] / (r2 * rd);
    int a = 1 + 2 * n;
    for (int i = 1; i < n; i++)
        for (int j = 0; j < i; j++) {
            float g = dphi[a++] / rd;
            dx[i] += g * x[j];
            dx[j] += g * x[i];
        }
}

// Mirrors la_features: thread per (row, head, q|k).
__global__ void la_features_kernel(float *phq, float *phk, const float *qa, const float *ka, int N, int H, int fq,
                                   int F, int kind) {
    long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= 2LL * N * H) return;
    long long ih = idx >> 1;
    size_t a = (size_t)ih * fq, b = (size_t)ih * F;
    if (idx & 1) la_feature_map_dev(phk + b, ka + a, fq, kind);
    else la_feature_map_dev(phq + b, qa + a, fq, kind);
}

// Mirrors la_backward's feature backward loop: thread per (row, head, q|k).
__global__ void la_features_backward_kernel(float *dqa, float *dka, const float *dphq, const float *dphk,
                                            const float *qa, const float *ka, int N, int H, int fq, int F, int kind) {
    long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= 2LL * N * H) return;
    long long ih = idx >> 1;
    size_t a = (size_t)ih * fq, b = (size_t)ih * F;
    if (idx & 1) la_feature_backward_dev(dka + a, dphk + b, ka + a, fq, kind);
    else la_feature_backward_dev(dqa + a, dphq + b, qa + a, fq, kind);
}

// Mirrors the forward scan over la_token: block per (b, h), T tokens; den [N, H] (eps included).
// State: shared memory (use_smem, zeroed) or state + bh * stride (zeroed if zero; the step keeps it).
__global__ void __launch_bounds__(LA_THREADS) la_scan_kernel(float *o, float *den, const float *phq,
        const float *phk, const float *v, float *state, long long stride, int use_smem, int zero, int T, int H,
        int F, int dh) {
    extern __shared__ float sh[];
    __shared__ float red[32];
    const int bh = blockIdx.x, b = bh / H, h = bh % H, tid = threadIdx.x, nt = blockDim.x, D = H * dh;
    const size_t fd = (size_t)F * dh;
    float *S, *buf = sh;
    if (use_smem) { S = sh; buf = sh + fd + F; } else S = state + (size_t)bh * stride;
    float *z = S + fd, *sq = buf, *sk = sq + F, *sv = sk + F;
    if (use_smem || zero)
        for (size_t e = tid; e < fd + F; e += nt) S[e] = 0.f;
    for (int t = 0; t < T; t++) {
        size_t i = (size_t)b * T + t, od = i * D + (size_t)h * dh, of = (i * H + h) * F;
        __syncthreads();
        for (int a = tid; a < F; a += nt) { sq[a] = phq[of + a]; sk[a] = phk[of + a]; }
        for (int j = tid; j < dh; j += nt) sv[j] = v[od + j];
        __syncthreads();
        float part = 0.f;
        for (int a = tid; a < F; a += nt) { z[a] += sk[a]; part += sq[a] * z[a]; }
        float dn = block_sum(part, red) + LA_EPS, inv = 1.f / dn;
        for (int j = tid; j < dh; j += nt) {  // S += phk v^T; o = S^T phq / den (feature order)
            float acc = 0.f, vj = sv[j];
            for (int a = 0; a < F; a++) {
                float *e = S + (size_t)a * dh + j;
                *e += sk[a] * vj;
                acc += sq[a] * *e;
            }
            o[od + j] = acc * inv;
        }
        if (tid == 0) den[i * H + h] = dn;
    }
}

// Mirrors la_backward's two scans per (b, h): the forward re-scan (dphq = S dnum + z dden) and the
// reverse scan of the adjoints U = sum phq dnum^T, u = sum phq dden (dphk = U v + u, dv = U^T phk).
__global__ void __launch_bounds__(LA_THREADS) la_bwd_scan_kernel(float *dphq, float *dphk, float *dv,
        const float *phq, const float *phk, const float *v, const float *o, const float *dO, const float *den,
        float *state, int use_smem, int T, int H, int F, int dh) {
    extern __shared__ float sh[];
    __shared__ float red[32];
    const int bh = blockIdx.x, b = bh / H, h = bh % H, tid = threadIdx.x, nt = blockDim.x, D = H * dh;
    const int lane = tid & 31, warp = tid >> 5, nw = nt >> 5;
    const size_t fd = (size_t)F * dh;
    float *S, *buf = sh;
    if (use_smem) { S = sh; buf = sh + 2 * (fd + F); } else S = state + (size_t)bh * 2 * (fd + F);
    float *z = S + fd, *U = z + F, *u = U + fd;
    float *sq = buf, *sk = sq + F, *sv = sk + F, *so = sv + dh, *sd = so + dh, *dnum = sd + dh;
    for (size_t e = tid; e < 2 * (fd + F); e += nt) S[e] = 0.f;
    for (int pass = 0; pass < 2; pass++)
        for (int s = 0; s < T; s++) {
            const int t = pass == 0 ? s : T - 1 - s;
            size_t i = (size_t)b * T + t, od = i * D + (size_t)h * dh, of = (i * H + h) * F;
            __syncthreads();
            for (int a = tid; a < F; a += nt) { sq[a] = phq[of + a]; sk[a] = phk[of + a]; }
            for (int j = tid; j < dh; j += nt) { sv[j] = v[od + j]; so[j] = o[od + j]; sd[j] = dO[od + j]; }
            __syncthreads();
            // o = num/den: dnum = do/den, dden = -(do.o)/den
            const float dn = den[i * H + h];
            float dd = 0.f;
            for (int j = tid; j < dh; j += nt) { dnum[j] = sd[j] / dn; dd -= sd[j] * so[j]; }
            dd = block_sum(dd, red) / dn;
            if (pass == 0) {
                for (int a = warp; a < F; a += nw) {
                    float *row = S + (size_t)a * dh, ka = sk[a], acc = 0.f;
                    for (int j = lane; j < dh; j += 32) {
                        row[j] += ka * sv[j];
                        acc += row[j] * dnum[j];
                    }
                    acc = warp_sum(acc);
                    if (lane == 0) { z[a] += ka; dphq[of + a] = acc + z[a] * dd; }
                }
            } else {
                for (int a = warp; a < F; a += nw) {
                    float *row = U + (size_t)a * dh, qa = sq[a], acc = 0.f;
                    for (int j = lane; j < dh; j += 32) {
                        row[j] += qa * dnum[j];
                        acc += row[j] * sv[j];
                    }
                    acc = warp_sum(acc);
                    if (lane == 0) { u[a] += qa * dd; dphk[of + a] = acc + u[a]; }
                }
                __syncthreads();
                for (int j = tid; j < dh; j += nt) {  // dv = U^T phk (feature order)
                    float acc = 0.f;
                    for (int a = 0; a < F; a++) acc += sk[a] * U[(size_t)a * dh + j];
                    dv[od + j] = acc;
                }
            }
        }
}

static size_t la_fwd_shared(int F, int dh, int smem) { return ((smem ? (size_t)F * dh + F : 0) + 2 * F + dh) * 4; }
static size_t la_bwd_shared(int F, int dh, int smem) {
    return ((smem ? 2 * ((size_t)F * dh + F) : 0) + 2 * F + 4 * dh) * 4;
}

static void *la_cuda_create(const MixerCfg *c, int Bmax, int Tmax) {
    LaCudaCtx *x = (LaCudaCtx *)calloc(1, sizeof *x);
    if (!x) return NULL;
    x->D = c->d; x->H = c->heads; x->dh = c->d / c->heads; x->kind = c->feature_map;
    x->fq = c->feature_map == LA_TAYLOR ? c->feature_dim : x->dh;  // la.c's la_fq
    x->F = la_feature_size(x->kind, x->fq);
    x->Bmax = Bmax; x->Tmax = Tmax;
    size_t N = (size_t)Bmax * Tmax, D = x->D, Q = (size_t)x->H * x->fq, HF = (size_t)x->H * x->F;
    size_t st = (size_t)Bmax * x->H * 2 * ((size_t)x->F * x->dh + x->F);
    size_t sx = (size_t)Bmax * (2 * Q + 2 * D + 2 * HF + x->H);
    size_t total = N * (4 * Q + 4 * D + 4 * HF + x->H) + st + sx;
    float *w = rb_cuda_alloc(total);
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
    int dev = 0, optin = 0;
    CHECK_CUDA(cudaGetDevice(&dev));
    CHECK_CUDA(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
    size_t lim = (size_t)optin - 32 * 4;  // the static reduction buffer
    x->smem_fwd = la_fwd_shared(x->F, x->dh, 1) <= lim;
    x->smem_bwd = la_bwd_shared(x->F, x->dh, 1) <= lim;
    x->shb_fwd = la_fwd_shared(x->F, x->dh, x->smem_fwd);
    x->shb_bwd = la_bwd_shared(x->F, x->dh, x->smem_bwd);
    if (x->shb_fwd > lim || x->shb_bwd > lim) { rb_cuda_free(x->qa); free(x); return NULL; }
    CHECK_CUDA(cudaFuncSetAttribute(la_scan_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)x->shb_fwd));
    CHECK_CUDA(cudaFuncSetAttribute(la_bwd_scan_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)x->shb_bwd));
    return x;
}

static void la_cuda_destroy(void *ctx) {
    LaCudaCtx *x = (LaCudaCtx *)ctx;
    if (!x) return;
    rb_cuda_free(x->qa);  // the first carve of the one allocation
    free(x);
}

static void la_features_launch(const LaCudaCtx *c, float *phq, float *phk, const float *qa, const float *ka, int N) {
    long long n = 2LL * N * c->H;
    la_features_kernel<<<cdiv(n, 128), 128, 0, rb_cuda_stream()>>>(phq, phk, qa, ka, N, c->H, c->fq, c->F, c->kind);
    CHECK_LAUNCH();
}

static void la_cuda_forward(Mixer *mx, float *const *p, float *out, const float *inp, int B, int T) {
    LaCudaCtx *c = (LaCudaCtx *)mx->ctx;
    const int N = B * T, D = c->D, H = c->H, dh = c->dh, F = c->F, Q = c->H * c->fq;
    rb_cuda_matmul(c->qa, inp, p[LA_WQ], N, Q, D, 0, 1, 0.f);
    rb_cuda_matmul(c->ka, inp, p[LA_WK], N, Q, D, 0, 1, 0.f);
    rb_cuda_matmul(c->v, inp, p[LA_WV], N, D, D, 0, 1, 0.f);
    la_features_launch(c, c->phq, c->phk, c->qa, c->ka, N);
    la_scan_kernel<<<B * H, LA_THREADS, c->shb_fwd, rb_cuda_stream()>>>(c->o, c->den, c->phq, c->phk, c->v, c->st,
                                                                       2LL * ((long long)F * dh + F), c->smem_fwd, 1,
                                                                       T, H, F, dh);
    CHECK_LAUNCH();
    rb_cuda_matmul(out, c->o, p[LA_WO], N, D, D, 0, 1, 0.f);
}

static void la_cuda_backward(Mixer *mx, float *const *p, float *const *dp, float *dinp, const float *dout,
                             const float *inp, int B, int T) {
    LaCudaCtx *c = (LaCudaCtx *)mx->ctx;
    const int N = B * T, D = c->D, H = c->H, dh = c->dh, F = c->F, Q = c->H * c->fq;
    rb_cuda_matmul(c->dO, dout, p[LA_WO], N, D, D, 0, 0, 0.f);
    rb_cuda_matmul(dp[LA_WO], dout, c->o, D, D, N, 1, 0, 1.f);
    la_bwd_scan_kernel<<<B * H, LA_THREADS, c->shb_bwd, rb_cuda_stream()>>>(c->dphq, c->dphk, c->dv, c->phq,
                                                                           c->phk, c->v, c->o, c->dO, c->den, c->st,
                                                                           c->smem_bwd, T, H, F, dh);
    CHECK_LAUNCH();
    long long n = 2LL * N * H;
    la_features_backward_kernel<<<cdiv(n, 128), 128, 0, rb_cuda_stream()>>>(c->dqa, c->dka, c->dphq, c->dphk, c->qa,
                                                                           c->ka, N, H, c->fq, F, c->kind);
    CHECK_LAUNCH();
    rb_cuda_matmul(dinp, c->dqa, p[LA_WQ], N, D, Q, 0, 0, 0.f);
    rb_cuda_matmul(dinp, c->dka, p[LA_WK], N, D, Q, 0, 0, 1.f);
    rb_cuda_matmul(dinp, c->dv, p[LA_WV], N, D, D, 0, 0, 1.f);
    rb_cuda_matmul(dp[LA_WQ], c->dqa, inp, Q, D, N, 1, 0, 1.f);
    rb_cuda_matmul(dp[LA_WK], c->dka, inp, Q, D, N, 1, 0, 1.f);
    rb_cuda_matmul(dp[LA_WV], c->dv, inp, D, D, N, 1, 0, 1.f);
}

// As la_step_state_size: per head [S (F x d_h), z (F)].
static size_t la_cuda_step_state_size(const Mixer *mx) {
    const LaCudaCtx *c = (const LaCudaCtx *)mx->ctx;
    return (size_t)c->H * ((size_t)c->F * c->dh + c->F);
}

// Mirrors la_step for B sequences: the scan kernel with T = 1 on the caller's state in place.
static void la_cuda_step(Mixer *mx, float *const *p, float *state, float *out, const float *x, int B, int t) {
    LaCudaCtx *c = (LaCudaCtx *)mx->ctx;
    const int D = c->D, H = c->H, dh = c->dh, F = c->F, Q = c->H * c->fq;
    float *qa = c->sx, *ka = qa + (size_t)B * Q, *v = ka + (size_t)B * Q, *o = v + (size_t)B * D;
    float *phq = o + (size_t)B * D, *phk = phq + (size_t)B * H * F, *den = phk + (size_t)B * H * F;
    rb_cuda_matmul(qa, x, p[LA_WQ], B, Q, D, 0, 1, 0.f);
    rb_cuda_matmul(ka, x, p[LA_WK], B, Q, D, 0, 1, 0.f);
    rb_cuda_matmul(v, x, p[LA_WV], B, D, D, 0, 1, 0.f);
    la_features_launch(c, phq, phk, qa, ka, B);
    la_scan_kernel<<<B * H, LA_THREADS, la_fwd_shared(F, dh, 0), rb_cuda_stream()>>>(
        o, den, phq, phk, v, state, (long long)F * dh + F, 0, 0, 1, H, F, dh);
    CHECK_LAUNCH();
    rb_cuda_matmul(out, o, p[LA_WO], B, D, D, 0, 1, 0.f);
}

extern "C" const MixerCudaOps la_cuda_ops = {
    la_cuda_create, la_cuda_destroy, la_cuda_forward, la_cuda_backward, la_cuda_step_state_size, la_cuda_step,
};
