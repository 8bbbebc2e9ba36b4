// layers.cu — device forms of models/layers.c (the shell's layers), one function per CPU function,
// same arguments. Depends on layers.cuh (common.cuh, cuBLAS).
// Every reduction runs in a fixed order (warp butterflies, per-chunk partials added in chunk order),
// so the same inputs give the same bits; scatter-adds go through a stable device radix sort + run sums.
#include <cub/device/device_radix_sort.cuh>
#include "layers.cuh"

#include "../shell_consts.h"
#define LN_EPS ((float)RB_LN_EPS)  // one definition with layers.c
#define ROWS_CHUNK 256  // rows per partial sum of the weight-gradient column sums

// y[n, oc] += b[oc] (b may be NULL when RND), then, when RND, y rounded to tf32 (cvt.rna: 10 mantissa
// bits, the value a tf32 tensor-core product takes from it). 2D grid (rows x column tiles), no 64-bit
// modulo; 4 columns per thread when OC % 4 == 0 and y is 16-byte aligned (b is read as scalars: slab
// offsets need not be aligned).
__device__ __forceinline__ float round_tf32(float x) { return __uint_as_float(rb_tf32_bits(x)); }
template <int VEC, int RND>
__global__ void add_bias_kernel(float *y, const float *b, int N, int OC) {
    int c = (blockIdx.x * blockDim.x + threadIdx.x) * (VEC ? 4 : 1);
    if (c >= OC) return;
    for (int r = blockIdx.y; r < N; r += gridDim.y) {
        if (VEC) {
            float4 *p = (float4 *)(y + (size_t)r * OC + c), v = *p;
            if (b) { v.x += b[c]; v.y += b[c + 1]; v.z += b[c + 2]; v.w += b[c + 3]; }
            if (RND) { v.x = round_tf32(v.x); v.y = round_tf32(v.y); v.z = round_tf32(v.z); v.w = round_tf32(v.w); }
            *p = v;
        } else {
            float v = y[(size_t)r * OC + c];
            if (b) v += b[c];
            y[(size_t)r * OC + c] = RND ? round_tf32(v) : v;
        }
    }
}
static void add_bias(float *y, const float *b, int N, int OC, int rnd) {
    if (N <= 0 || OC <= 0) return;
    int vec = OC % 4 == 0 && ((uintptr_t)y & 15) == 0, cols = vec ? OC / 4 : OC;
    int tx = cols >= 128 ? 128 : 32 * cdiv(cols, 32), ty = N < 8192 ? N : 8192;
    dim3 grid(cdiv(cols, tx), ty);
    if (rnd) {
        if (vec) add_bias_kernel<1, 1><<<grid, tx, 0, rb_cuda_stream()>>>(y, b, N, OC);
        else add_bias_kernel<0, 1><<<grid, tx, 0, rb_cuda_stream()>>>(y, b, N, OC);
    } else {
        if (vec) add_bias_kernel<1, 0><<<grid, tx, 0, rb_cuda_stream()>>>(y, b, N, OC);
        else add_bias_kernel<0, 0><<<grid, tx, 0, rb_cuda_stream()>>>(y, b, N, OC);
    }
    CHECK_LAUNCH();
}

void cuda_linear_forward(float *out, const float *inp, const float *w, const float *b, int N, int C, int OC) {
    rb_cuda_matmul(out, inp, w, N, OC, C, 0, 1, 0.f);  // [N,C] @ [OC,C]^T
    if (b) add_bias(out, b, N, OC, 0);
}

void cuda_linear_forward_tf32(float *out, const float *inp, const float *w, const float *b, int N, int C, int OC) {
    rb_cuda_matmul(out, inp, w, N, OC, C, 0, 1, 0.f);
    add_bias(out, b, N, OC, 1);
}

size_t cuda_colsum_scratch(int R, int C) { return rb_colsum_scratch(R, C); }

void cuda_linear_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                          int N, int C, int OC, int acc_dinp, float *scratch) {
    if (dinp) rb_cuda_matmul(dinp, dout, w, N, C, OC, 0, 0, acc_dinp ? 1.f : 0.f);  // [N,OC] @ [OC,C]
    rb_cuda_matmul(dw, dout, inp, OC, C, N, 1, 0, 1.f);                              // [OC,N] @ [N,C], +=
    if (db) rb_colsum(db, dout, N, OC, OC, 1, scratch);
}

// ---- elementwise helpers -------------------------------------------------------------------------

__global__ void add_kernel(float *y, const float *a, const float *b, size_t n) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = a[i] + b[i];
}
__global__ void add4_kernel(float4 *y, const float4 *a, const float4 *b, size_t n4) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n4) return;
    float4 u = a[i], v = b[i];
    y[i] = make_float4(u.x + v.x, u.y + v.y, u.z + v.z, u.w + v.w);
}
void cuda_add(float *y, const float *a, const float *b, size_t n) {
    if (!n) return;
    if (n % 4 == 0 && ((uintptr_t)y & 15) == 0 && ((uintptr_t)a & 15) == 0 && ((uintptr_t)b & 15) == 0)
        add4_kernel<<<cdiv(n / 4, 256), 256, 0, rb_cuda_stream()>>>((float4 *)y, (const float4 *)a,
                                                                     (const float4 *)b, n / 4);
    else add_kernel<<<cdiv(n, 256), 256, 0, rb_cuda_stream()>>>(y, a, b, n);
    CHECK_LAUNCH();
}

// model.c's head gather: xg[i] = x[pos[i]] (+ f[pos[i]] when f: the last residual add, done only
// at the gathered rows)
__global__ void gather_rows_kernel(float *out, const float *x, const float *f, const int32_t *pos, int npos, int D) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)npos * D) return;
    int r, c;
    rb_divmod(i, D, r, c);
    size_t src = (size_t)pos[r] * D + c;
    out[i] = f ? x[src] + f[src] : x[src];
}
void cuda_gather_rows(float *out, const float *x, const int32_t *pos, int npos, int D) {
    if (npos <= 0) return;
    gather_rows_kernel<<<cdiv((long long)npos * D, 256), 256, 0, rb_cuda_stream()>>>(out, x, NULL, pos, npos, D);
    CHECK_LAUNCH();
}
void cuda_gather_add_rows(float *out, const float *x, const float *f, const int32_t *pos, int npos, int D) {
    if (npos <= 0) return;
    gather_rows_kernel<<<cdiv((long long)npos * D, 256), 256, 0, rb_cuda_stream()>>>(out, x, f, pos, npos, D);
    CHECK_LAUNCH();
}

// ---- embedding (encoder_forward / encoder_backward) ----------------------------------------------

// mirrors encoder_forward
__global__ void encoder_forward_kernel(float *out, const int32_t *tok, const float *wte, const float *wpe, int BT,
                                       int T, int D) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)BT * D) return;
    int bt, c;
    rb_divmod(i, D, bt, c);
    float e = wte[(size_t)tok[bt] * D + c];
    if (wpe) e += wpe[(size_t)(bt % T) * D + c];
    out[i] = e;
}
void cuda_encoder_forward(float *out, const int32_t *tok, const float *wte, const float *wpe, int B, int T, int D) {
    encoder_forward_kernel<<<cdiv((long long)B * T * D, 256), 256, 0, rb_cuda_stream()>>>(out, tok, wte, wpe, B * T,
                                                                                         T, D);
    CHECK_LAUNCH();
}

// Stable device radix sort (CUB) of (key, index) pairs: the indices of equal keys stay in index
// order, so every row below sums its members in position order. Only the bits that can be set in
// a key < R are sorted. scratch: [iota n ints][CUB temp storage], 256-byte aligned pieces.
static int key_bits(int R) {
    int b = 1;
    while (b < 31 && (1LL << b) < R) b++;
    return b;
}
static size_t align256(size_t x) { return (x + 255) & ~(size_t)255; }
static size_t cub_sort_bytes(int n, int R) {
    size_t tb = 0;
    CHECK_CUDA(cub::DeviceRadixSort::SortPairs(nullptr, tb, (const unsigned *)nullptr, (unsigned *)nullptr,
                                               (const int *)nullptr, (int *)nullptr, n, 0, key_bits(R),
                                               rb_cuda_stream()));
    return tb;
}
size_t cuda_rowsort_scratch_bytes(int n, int R) {
    if (n < 1) n = 1;
    return align256((size_t)n * sizeof(int)) + align256(cub_sort_bytes(n, R));
}
__global__ void iota_kernel(int *x, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] = i;
}
void cuda_rowsort(int *skey, int *list, const int32_t *key, int n, int R, void *scratch) {
    cuda_rowsort_on(skey, list, key, n, R, scratch, rb_cuda_stream());
}
void cuda_rowsort_on(int *skey, int *list, const int32_t *key, int n, int R, void *scratch, cudaStream_t st) {
    if (n <= 0) return;
    int *iota = (int *)scratch;
    void *temp = (char *)scratch + align256((size_t)n * sizeof(int));
    size_t tb = cub_sort_bytes(n, R);  // host-side query only (no launch): fine inside a capture
    iota_kernel<<<cdiv(n, 256), 256, 0, st>>>(iota, n);
    CHECK_LAUNCH();
    // keys are in [0, R): unsigned and signed order agree
    CHECK_CUDA(cub::DeviceRadixSort::SortPairs(temp, tb, (const unsigned *)key, (unsigned *)skey, iota, list, n, 0,
                                               key_bits(R), st));
}

// One warp per run of equal sorted keys (the run's first entry does the work): dst[key] += the run's
// src rows in list (= index) order. VEC: float4 columns (D % 4 == 0, 16-byte aligned rows).
template <int VEC>
__global__ void sorted_rows_add_kernel(float *dst, const float *src, const int *skey, const int *list, int n,
                                       int D) {
    int k = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    if (k >= n) return;
    int r = skey[k];
    if (k > 0 && skey[k - 1] == r) return;
    int e = k + 1;  // end of the run: 32 keys compared per round
    for (;;) {
        int j = e + lane;
        unsigned diff = __ballot_sync(0xffffffffu, j >= n || skey[j] != r);
        if (diff) { e += __ffs(diff) - 1; break; }
        e += 32;
    }
    if (VEC) {
        const int D4 = D >> 2;
        const float4 *s4 = (const float4 *)src;
        float4 *d4 = (float4 *)dst + (size_t)r * D4;
        for (int c = lane; c < D4; c += 32) {
            float4 a = make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll 4
            for (int q = k; q < e; q++) {
                float4 v = s4[(size_t)list[q] * D4 + c];
                a.x += v.x; a.y += v.y; a.z += v.z; a.w += v.w;
            }
            float4 o = d4[c];
            o.x += a.x; o.y += a.y; o.z += a.z; o.w += a.w;
            d4[c] = o;
        }
    } else {
        for (int c = lane; c < D; c += 32) {
            float a = 0.f;
#pragma unroll 4
            for (int q = k; q < e; q++) a += src[(size_t)list[q] * D + c];
            dst[(size_t)r * D + c] += a;
        }
    }
}
static int aligned16(const void *p) { return ((uintptr_t)p & 15) == 0; }
void cuda_sorted_rows_add(float *dst, const float *src, const int *skey, const int *list, int n, int D) {
    if (n <= 0 || D <= 0) return;
    cudaStream_t st = rb_cuda_stream();
    if (D % 4 == 0 && aligned16(dst) && aligned16(src)) sorted_rows_add_kernel<1><<<cdiv(n, 8), 256, 0, st>>>(dst, src, skey, list, n, D);
    else sorted_rows_add_kernel<0><<<cdiv(n, 8), 256, 0, st>>>(dst, src, skey, list, n, D);
    CHECK_LAUNCH();
}

// dwpe[t] += sum over b of dout[b, t] in b order (encoder_backward's position half)
__global__ void wpe_grad_kernel(float *dwpe, const float *dout, int B, int T, int D) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)T * D) return;
    float s = 0.f;
    for (int b = 0; b < B; b++) s += dout[(size_t)b * T * D + i];
    dwpe[i] += s;
}

size_t cuda_encoder_scratch_bytes(int BT, int V) {
    return align256(2 * (size_t)(BT > 0 ? BT : 1) * sizeof(int)) + cuda_rowsort_scratch_bytes(BT, V);
}
void cuda_encoder_sort_on(const int32_t *tok, int BT, int V, void *scratch, cudaStream_t st) {
    int *skey = (int *)scratch, *list = skey + BT;
    void *rs = (char *)scratch + align256(2 * (size_t)BT * sizeof(int));
    cuda_rowsort_on(skey, list, tok, BT, V, rs, st);
}
void cuda_encoder_sort(const int32_t *tok, int BT, int V, void *scratch) {
    cuda_encoder_sort_on(tok, BT, V, scratch, rb_cuda_stream());
}
void cuda_encoder_backward(float *dwte, float *dwpe, const float *dout, const int32_t *tok, int B, int T, int D,
                           int V, void *scratch) {
    cuda_encoder_sort(tok, B * T, V, scratch);
    cuda_encoder_backward_sorted(dwte, dwpe, dout, B, T, D, scratch);
}
void cuda_encoder_backward_sorted(float *dwte, float *dwpe, const float *dout, int B, int T, int D,
                                  const void *scratch) {
    const int BT = B * T, *skey = (const int *)scratch, *list = skey + BT;
    cuda_sorted_rows_add(dwte, dout, skey, list, BT, D);
    if (dwpe) {
        wpe_grad_kernel<<<cdiv((long long)T * D, 256), 256, 0, rb_cuda_stream()>>>(dwpe, dout, B, T, D);
        CHECK_LAUNCH();
    }
}

// ---- norms ------------------------------------------------------------------------------------
// One warp per row. D <= 32 * NJ: the row sits in registers (lane holds columns lane + 32 j), so it
// is read once; larger D takes the generic kernels (rows re-read through L1).
#define NORM_NJ_MAX 8      // register path up to D = 256
#define NORM_BWD_ROWS 64   // rows per block of the fused backward (8 warps x 8 rows): one partial

// mirrors layernorm_forward (mean != NULL) / rmsnorm_forward; if f != NULL the input row is
// inp + f (the residual add of model.c, done here) and is also written to res.
template <int NJ>
__global__ void norm_forward_reg_kernel(float *out, float *mean, float *rstd, float *res, const float *inp,
                                        const float *f, const float *w, const float *b, int N, int D) {
    int row = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    if (row >= N) return;
    const size_t o = (size_t)row * D;
    float x[NJ];
#pragma unroll
    for (int j = 0; j < NJ; j++) {
        int c = lane + 32 * j;
        x[j] = 0.f;
        if (c < D) {
            float v = inp[o + c];
            if (f) { v = v + f[o + c]; res[o + c] = v; }
            x[j] = v;
        }
    }
    if (mean) {
        float s = 0.f;
#pragma unroll
        for (int j = 0; j < NJ; j++) s += x[j];
        float m = warp_sum(s) / D, v = 0.f;
#pragma unroll
        for (int j = 0; j < NJ; j++)
            if (lane + 32 * j < D) { float d = x[j] - m; v += d * d; }
        v = warp_sum(v) / D;
        float r = (float)(1.0 / sqrt((double)v + 1e-5));
#pragma unroll
        for (int j = 0; j < NJ; j++) {
            int c = lane + 32 * j;
            if (c < D) out[o + c] = (x[j] - m) * r * w[c] + b[c];
        }
        if (lane == 0) { mean[row] = m; rstd[row] = r; }
    } else {
        float s = 0.f;
#pragma unroll
        for (int j = 0; j < NJ; j++) s += x[j] * x[j];
        s = warp_sum(s);
        float r = (float)(1.0 / sqrt((double)s / D + 1e-5));
#pragma unroll
        for (int j = 0; j < NJ; j++) {
            int c = lane + 32 * j;
            if (c < D) out[o + c] = x[j] * r * w[c];
        }
        if (lane == 0) rstd[row] = r;
    }
}

// mirrors layernorm_forward (generic D)
__global__ void layernorm_forward_kernel(float *out, float *mean, float *rstd, const float *inp, const float *w,
                                         const float *b, int N, int D) {
    int row = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    if (row >= N) return;
    const float *x = inp + (size_t)row * D;
    float s = 0.f;
    for (int c = lane; c < D; c += 32) s += x[c];
    float m = warp_sum(s) / D;
    float v = 0.f;
    for (int c = lane; c < D; c += 32) { float d = x[c] - m; v += d * d; }
    v = warp_sum(v) / D;
    float r = (float)(1.0 / sqrt((double)v + 1e-5));
    float *o = out + (size_t)row * D;
    for (int c = lane; c < D; c += 32) o[c] = (x[c] - m) * r * w[c] + b[c];
    if (lane == 0) { mean[row] = m; rstd[row] = r; }
}
// mirrors rmsnorm_forward (generic D)
__global__ void rmsnorm_forward_kernel(float *out, float *rstd, const float *inp, const float *w, int N, int D) {
    int row = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    if (row >= N) return;
    const float *x = inp + (size_t)row * D;
    float s = 0.f;
    for (int c = lane; c < D; c += 32) s += x[c] * x[c];
    s = warp_sum(s);
    float r = (float)(1.0 / sqrt((double)s / D + 1e-5));
    float *o = out + (size_t)row * D;
    for (int c = lane; c < D; c += 32) o[c] = x[c] * r * w[c];
    if (lane == 0) rstd[row] = r;
}

static int norm_nj(int D) {
    int nj = 1;
    while (32 * nj < D) nj *= 2;
    return nj <= NORM_NJ_MAX ? nj : 0;
}
// mean == NULL: rmsnorm. f != NULL: input = inp + f, written to res.
static void norm_forward(float *out, float *mean, float *rstd, float *res, const float *inp, const float *f,
                         const float *w, const float *b, int N, int D) {
    if (N <= 0) return;
    cudaStream_t st = rb_cuda_stream();
    dim3 g(cdiv(N, 8)), t(256);
    switch (norm_nj(D)) {
    case 1: norm_forward_reg_kernel<1><<<g, t, 0, st>>>(out, mean, rstd, res, inp, f, w, b, N, D); break;
    case 2: norm_forward_reg_kernel<2><<<g, t, 0, st>>>(out, mean, rstd, res, inp, f, w, b, N, D); break;
    case 4: norm_forward_reg_kernel<4><<<g, t, 0, st>>>(out, mean, rstd, res, inp, f, w, b, N, D); break;
    case 8: norm_forward_reg_kernel<8><<<g, t, 0, st>>>(out, mean, rstd, res, inp, f, w, b, N, D); break;
    default:
        if (f) { cuda_add(res, inp, f, (size_t)N * D); inp = res; }
        if (mean) layernorm_forward_kernel<<<g, t, 0, st>>>(out, mean, rstd, inp, w, b, N, D);
        else rmsnorm_forward_kernel<<<g, t, 0, st>>>(out, rstd, inp, w, N, D);
    }
    CHECK_LAUNCH();
}
void cuda_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b,
                            int N, int D) {
    norm_forward(out, mean, rstd, NULL, inp, NULL, w, b, N, D);
}
void cuda_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *w, int N, int D) {
    norm_forward(out, NULL, rstd, NULL, inp, NULL, w, NULL, N, D);
}
void cuda_layernorm_forward_add(float *res, float *out, float *mean, float *rstd, const float *x, const float *f,
                                const float *w, const float *b, int N, int D) {
    norm_forward(out, mean, rstd, res, x, f, w, b, N, D);
}
void cuda_rmsnorm_forward_add(float *res, float *out, float *rstd, const float *x, const float *f, const float *w,
                              int N, int D) {
    norm_forward(out, NULL, rstd, res, x, f, w, NULL, N, D);
}

// Fused layernorm_backward / rmsnorm_backward (mean NULL) for D <= 32 NJ: one block per 64-row
// chunk, warp wp takes rows r0 + wp + 8 i in i order: dinp rows += as the CPU formula, and per
// column the chunk's sums of g (x - m) s (-> dw) and g (-> db), warps added in warp order.
template <int NJ>
__global__ void norm_backward_fused_kernel(float *dinp, float *pw, float *pb, const float *dout, const float *inp,
                                           const float *w, const float *mean, const float *rstd, int N, int D) {
    __shared__ float shw[8][32 * NJ], shb[8][32 * NJ];
    int wp = threadIdx.x >> 5, lane = threadIdx.x & 31, chunk = blockIdx.x;
    float wv[NJ], aw[NJ], ab[NJ];
#pragma unroll
    for (int j = 0; j < NJ; j++) {
        int c = lane + 32 * j;
        wv[j] = c < D ? w[c] : 0.f;
        aw[j] = 0.f;
        ab[j] = 0.f;
    }
    for (int i = 0; i < NORM_BWD_ROWS / 8; i++) {
        int row = chunk * NORM_BWD_ROWS + wp + 8 * i;
        if (row >= N) break;
        const size_t o = (size_t)row * D;
        float x[NJ], g[NJ];
#pragma unroll
        for (int j = 0; j < NJ; j++) {
            int c = lane + 32 * j;
            x[j] = c < D ? inp[o + c] : 0.f;
            g[j] = c < D ? dout[o + c] : 0.f;
        }
        float s = rstd[row];
        if (mean) {
            float m = mean[row], a = 0.f, bs = 0.f;
#pragma unroll
            for (int j = 0; j < NJ; j++) { float wg = wv[j] * g[j]; a += wg; bs += wg * (x[j] - m); }
            float dnm = warp_sum(a) / D, dnxm = warp_sum(bs) * s / D;
#pragma unroll
            for (int j = 0; j < NJ; j++) {
                int c = lane + 32 * j;
                if (c < D) dinp[o + c] += (wv[j] * g[j] - dnm - (x[j] - m) * s * dnxm) * s;
                aw[j] += g[j] * (x[j] - m) * s;
                ab[j] += g[j];
            }
        } else {
            float a = 0.f;
#pragma unroll
            for (int j = 0; j < NJ; j++) a += wv[j] * g[j] * x[j];
            float dot = warp_sum(a) * s * s * s / D;
#pragma unroll
            for (int j = 0; j < NJ; j++) {
                int c = lane + 32 * j;
                if (c < D) dinp[o + c] += wv[j] * g[j] * s - x[j] * dot;
                aw[j] += g[j] * x[j] * s;
            }
        }
    }
#pragma unroll
    for (int j = 0; j < NJ; j++) { shw[wp][lane + 32 * j] = aw[j]; shb[wp][lane + 32 * j] = ab[j]; }
    __syncthreads();
    for (int c = threadIdx.x; c < D; c += blockDim.x) {
        float sw = 0.f, sb = 0.f;
        for (int k = 0; k < 8; k++) { sw += shw[k][c]; sb += shb[k][c]; }
        pw[(size_t)chunk * D + c] = sw;
        if (pb) pb[(size_t)chunk * D + c] = sb;
    }
}

// dinp rows of layernorm_backward (rms: mean NULL, the rmsnorm_backward formula), generic D
__global__ void norm_backward_dinp_kernel(float *dinp, const float *dout, const float *inp, const float *w,
                                          const float *mean, const float *rstd, int N, int D) {
    int row = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    if (row >= N) return;
    const float *x = inp + (size_t)row * D, *g = dout + (size_t)row * D;
    float *dx = dinp + (size_t)row * D, s = rstd[row];
    if (mean) {
        float m = mean[row], a = 0.f, bsum = 0.f;
        for (int c = lane; c < D; c += 32) { float wg = w[c] * g[c]; a += wg; bsum += wg * (x[c] - m); }
        float dnm = warp_sum(a) / D, dnxm = warp_sum(bsum) * s / D;
        for (int c = lane; c < D; c += 32) dx[c] += (w[c] * g[c] - dnm - (x[c] - m) * s * dnxm) * s;
    } else {
        float a = 0.f;
        for (int c = lane; c < D; c += 32) a += w[c] * g[c] * x[c];
        float dot = warp_sum(a) * s * s * s / D;
        for (int c = lane; c < D; c += 32) dx[c] += w[c] * g[c] * s - x[c] * dot;
    }
}

// Per 64-row chunk and column: sum g (x - m) s and sum g (rms: m = 0, no bias part), generic D
__global__ void norm_wgrad_partial_kernel(float *pw, float *pb, const float *dout, const float *inp,
                                          const float *mean, const float *rstd, int N, int D) {
    int c = blockIdx.x * blockDim.x + threadIdx.x, chunk = blockIdx.y;
    if (c >= D) return;
    int r0 = chunk * NORM_BWD_ROWS, r1 = min(N, r0 + NORM_BWD_ROWS);
    float sw = 0.f, sb = 0.f;
    for (int r = r0; r < r1; r++) {
        float g = dout[(size_t)r * D + c], m = mean ? mean[r] : 0.f;
        sw += g * (inp[(size_t)r * D + c] - m) * rstd[r];
        sb += g;
    }
    pw[(size_t)chunk * D + c] = sw;
    if (pb) pb[(size_t)chunk * D + c] = sb;
}

// out[c] += sum over the nchunk partials part[k * C + c] (k < nchunk): 32 columns x 32 chunk lanes
// per block; lane ty sums chunks ty, ty + 32, ... in order, then the 32 lane sums in lane order.
// Two outputs per launch (blockIdx.y: 0 -> out0/part0, 1 -> out1/part1).
__global__ void chunk_final_kernel(float *out0, const float *part0, float *out1, const float *part1, int nchunk,
                                   int C) {
    __shared__ float sh[32][33];
    float *out = blockIdx.y ? out1 : out0;
    const float *part = blockIdx.y ? part1 : part0;
    int tx = threadIdx.x & 31, ty = threadIdx.x >> 5, c = blockIdx.x * 32 + tx;
    float s = 0.f;
    if (c < C)
        for (int k = ty; k < nchunk; k += 32) s += part[(size_t)k * C + c];
    sh[ty][tx] = s;
    __syncthreads();
    if (ty == 0 && c < C) {
        float t = 0.f;
        for (int k = 0; k < 32; k++) t += sh[k][tx];
        out[c] += t;
    }
}
static void chunk_final(float *out0, const float *part0, float *out1, const float *part1, int nchunk, int C) {
    dim3 grid(cdiv(C, 32), out1 ? 2 : 1);
    chunk_final_kernel<<<grid, 1024, 0, rb_cuda_stream()>>>(out0, part0, out1, part1, nchunk, C);
    CHECK_LAUNCH();
}

size_t cuda_norm_scratch(int N, int D) { return 2 * (size_t)cdiv(N > 0 ? N : 1, NORM_BWD_ROWS) * D; }

static void norm_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                          const float *mean, const float *rstd, int N, int D, float *scratch) {
    if (N <= 0) return;
    cudaStream_t st = rb_cuda_stream();
    int nch = cdiv(N, NORM_BWD_ROWS);
    float *pw = scratch, *pb = db ? scratch + (size_t)nch * D : NULL;
    switch (norm_nj(D)) {
    case 1: norm_backward_fused_kernel<1><<<nch, 256, 0, st>>>(dinp, pw, pb, dout, inp, w, mean, rstd, N, D); break;
    case 2: norm_backward_fused_kernel<2><<<nch, 256, 0, st>>>(dinp, pw, pb, dout, inp, w, mean, rstd, N, D); break;
    case 4: norm_backward_fused_kernel<4><<<nch, 256, 0, st>>>(dinp, pw, pb, dout, inp, w, mean, rstd, N, D); break;
    case 8: norm_backward_fused_kernel<8><<<nch, 256, 0, st>>>(dinp, pw, pb, dout, inp, w, mean, rstd, N, D); break;
    default: {
        norm_backward_dinp_kernel<<<cdiv(N, 8), 256, 0, st>>>(dinp, dout, inp, w, mean, rstd, N, D);
        CHECK_LAUNCH();
        dim3 grid(cdiv(D, 128), nch);
        norm_wgrad_partial_kernel<<<grid, 128, 0, st>>>(pw, pb, dout, inp, mean, rstd, N, D);
    }
    }
    CHECK_LAUNCH();
    chunk_final(dw, pw, db, pb, nch, D);
}
void cuda_layernorm_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                             const float *mean, const float *rstd, int N, int D, float *scratch) {
    norm_backward(dinp, dw, db, dout, inp, w, mean, rstd, N, D, scratch);
}
void cuda_rmsnorm_backward(float *dinp, float *dw, const float *dout, const float *inp, const float *w,
                           const float *rstd, int N, int D, float *scratch) {
    norm_backward(dinp, dw, NULL, dout, inp, w, NULL, rstd, N, D, scratch);
}

// ---- GELU, MLP --------------------------------------------------------------------------------

// mirrors gelu_forward (exact erf)
__global__ void gelu_forward_kernel(float *out, const float *inp, size_t n) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float x = inp[i];
    out[i] = 0.5f * x * (1.f + erff(x * 0.70710678118654752f));
}
// mirrors gelu_backward
__global__ void gelu_backward_kernel(float *dinp, const float *dout, const float *inp, size_t n) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float x = inp[i];
    float d = 0.5f * (1.f + erff(x * 0.70710678118654752f)) + x * expf(-0.5f * x * x) * 0.39894228040143268f;
    dinp[i] = dout[i] * d;
}
void cuda_gelu_forward(float *out, const float *inp, size_t n) {
    if (!n) return;
    gelu_forward_kernel<<<cdiv(n, 256), 256, 0, rb_cuda_stream()>>>(out, inp, n);
    CHECK_LAUNCH();
}
void cuda_gelu_backward(float *dinp, const float *dout, const float *inp, size_t n) {
    if (!n) return;
    gelu_backward_kernel<<<cdiv(n, 256), 256, 0, rb_cuda_stream()>>>(dinp, dout, inp, n);
    CHECK_LAUNCH();
}

void cuda_mlp_forward(float *out, float *h, float *a, const float *inp, const float *w1, const float *b1,
                      const float *w2, const float *b2, int N, int D, int Hd) {
    cuda_linear_forward(h, inp, w1, b1, N, D, Hd);
    cuda_gelu_forward(a, h, (size_t)N * Hd);
    cuda_linear_forward(out, a, w2, b2, N, Hd, D);
}

void cuda_mlp_backward(float *dinp, float *dw1, float *db1, float *dw2, float *db2, float *scratch,
                       const float *dout, const float *inp, const float *h, const float *a, const float *w1,
                       const float *w2, int N, int D, int Hd, float *scratch2) {
    cuda_linear_backward(scratch, dw2, db2, dout, a, w2, N, Hd, D, 0, scratch2);  // scratch = d a
    cuda_gelu_backward(scratch, scratch, h, (size_t)N * Hd);                    // scratch = d h
    cuda_linear_backward(dinp, dw1, db1, scratch, inp, w1, N, D, Hd, 0, scratch2);
}

// ---- softmax cross-entropy --------------------------------------------------------------------

// n_valid = #(tgt >= 0) and 1/n_valid (crossentropy_backward's scale); integer count, exact.
__global__ void ce_count_kernel(float *inv, int *cnt, const int32_t *tgt, int N) {
    __shared__ int sh[32];
    int c = 0;
    for (int i = threadIdx.x; i < N; i += blockDim.x) c += tgt[i] >= 0;
    for (int o = 16; o > 0; o >>= 1) c += __shfl_xor_sync(0xffffffffu, c, o);
    if ((threadIdx.x & 31) == 0) sh[threadIdx.x >> 5] = c;
    __syncthreads();
    if (threadIdx.x == 0) {
        int t = 0;
        for (int w = 0; w < (int)(blockDim.x >> 5); w++) t += sh[w];
        *cnt = t;
        *inv = t ? 1.f / t : 0.f;
    }
}

// mirrors crossentropy_forward (+ crossentropy_backward when want_grad): one block per row
__global__ void ce_fused_kernel(float *logits, float *losses, const int32_t *tgt, const float *inv_p, int V,
                                int want_grad) {
    __shared__ float sh[32];
    int n = blockIdx.x;
    float *z = logits + (size_t)n * V;
    float mx = -INFINITY;
    for (int v = threadIdx.x; v < V; v += blockDim.x) mx = fmaxf(mx, z[v]);
    mx = block_max(mx, sh);
    float s = 0.f;
    for (int v = threadIdx.x; v < V; v += blockDim.x) s += expf(z[v] - mx);
    s = block_sum(s, sh);
    int t = tgt[n];
    if (threadIdx.x == 0) losses[n] = t >= 0 ? (float)(log((double)s) - (double)(z[t] - mx)) : 0.f;
    __syncthreads();  // z[t] read before it is overwritten
    if (!want_grad) return;
    float scale = t >= 0 ? *inv_p / s : 0.f, inv = *inv_p;
    for (int v = threadIdx.x; v < V; v += blockDim.x) {
        float d = t >= 0 ? expf(z[v] - mx) * scale : 0.f;
        z[v] = v == t ? d - inv : d;
    }
}

// The same with the row cached in shared memory (V * 4 bytes <= CE_SMEM_MAX): the logits are read
// from memory once, not three times. VEC: float4 loads (V % 4 == 0).
#define CE_SMEM_MAX (48 * 1024)
template <int VEC>
__global__ void ce_fused_smem_kernel(float *logits, float *losses, const int32_t *tgt, const float *inv_p, int V,
                                     int want_grad) {
    extern __shared__ float zs[];
    __shared__ float sh[32];
    int n = blockIdx.x;
    float *z = logits + (size_t)n * V;
    float mx = -INFINITY;
    if (VEC) {
        const float4 *z4 = (const float4 *)z;
        float4 *s4 = (float4 *)zs;
        for (int v = threadIdx.x; v < V / 4; v += blockDim.x) {
            float4 a = z4[v];
            s4[v] = a;
            mx = fmaxf(mx, fmaxf(fmaxf(a.x, a.y), fmaxf(a.z, a.w)));
        }
    } else {
        for (int v = threadIdx.x; v < V; v += blockDim.x) { float a = z[v]; zs[v] = a; mx = fmaxf(mx, a); }
    }
    mx = block_max(mx, sh);  // its __syncthreads also publishes zs
    float s = 0.f;
    for (int v = threadIdx.x; v < V; v += blockDim.x) s += expf(zs[v] - mx);
    s = block_sum(s, sh);
    int t = tgt[n];
    if (threadIdx.x == 0) losses[n] = t >= 0 ? (float)(log((double)s) - (double)(zs[t] - mx)) : 0.f;
    if (!want_grad) return;
    float scale = t >= 0 ? *inv_p / s : 0.f, inv = *inv_p;
    if (VEC) {
        float4 *z4 = (float4 *)z;
        for (int v = threadIdx.x; v < V / 4; v += blockDim.x) {
            float d[4];
            for (int q = 0; q < 4; q++) {
                int u = 4 * v + q;
                d[q] = t >= 0 ? expf(zs[u] - mx) * scale : 0.f;
                if (u == t) d[q] -= inv;
            }
            z4[v] = make_float4(d[0], d[1], d[2], d[3]);
        }
    } else {
        for (int v = threadIdx.x; v < V; v += blockDim.x) {
            float d = t >= 0 ? expf(zs[v] - mx) * scale : 0.f;
            z[v] = v == t ? d - inv : d;
        }
    }
}

// mean over valid rows in row order (thread-strided double partials, then a fixed tree)
__global__ void ce_mean_kernel(double *out, const float *losses, const int32_t *tgt, const int *cnt, int N) {
    __shared__ double sh[1024];
    double s = 0;
    for (int i = threadIdx.x; i < N; i += blockDim.x)
        if (tgt[i] >= 0) s += losses[i];
    sh[threadIdx.x] = s;
    __syncthreads();
    for (int o = blockDim.x / 2; o > 0; o >>= 1) {
        if ((int)threadIdx.x < o) sh[threadIdx.x] += sh[threadIdx.x + o];
        __syncthreads();
    }
    if (threadIdx.x == 0) *out = *cnt ? sh[0] / *cnt : 0.0;
}

size_t cuda_ce_scratch_bytes(void) { return 16; }
void cuda_crossentropy_fused(float *logits, float *losses, double *loss_dev, const int32_t *tgt, int N, int V,
                             int want_grad, void *dscratch) {
    cudaStream_t st = rb_cuda_stream();
    float *inv = (float *)dscratch;
    int *cnt = (int *)((char *)dscratch + 8);
    ce_count_kernel<<<1, 1024, 0, st>>>(inv, cnt, tgt, N);
    CHECK_LAUNCH();
    if (N > 0) {
        int th = V >= 1024 ? 512 : V >= 256 ? 256 : 64;
        size_t smem = (size_t)V * sizeof(float);
        if (smem <= CE_SMEM_MAX) {
            if (V % 4 == 0 && ((uintptr_t)logits & 15) == 0)
                ce_fused_smem_kernel<1><<<N, th, smem, st>>>(logits, losses, tgt, inv, V, want_grad);
            else ce_fused_smem_kernel<0><<<N, th, smem, st>>>(logits, losses, tgt, inv, V, want_grad);
        } else {
            ce_fused_kernel<<<N, th, 0, st>>>(logits, losses, tgt, inv, V, want_grad);
        }
        CHECK_LAUNCH();
    }
    ce_mean_kernel<<<1, 1024, 0, st>>>(loss_dev, losses, tgt, cnt, N);
    CHECK_LAUNCH();
}

// ---- depthwise causal short convolution -------------------------------------------------------
// (ChanVec, chan_load, chan_store: layers.cuh, shared with mamba.cu's conv kernels)

// mirrors shortconv_forward; V channels per thread (4 where D % 4 == 0 and the rows are 16-byte aligned:
// a quarter of the index arithmetic, which held the one-channel form to ~1/4 of the memory bandwidth).
// Per element the same operations in the same order for any V, so the same bits.
template <int V>
__global__ void shortconv_forward_kernel(float *out, const float *inp, const float *w, const float *b, int BT, int T,
                                         int D, int K) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)BT * (D / V)) return;
    int bt, cv;
    rb_divmod(i, D / V, bt, cv);
    int t = bt % T, c = V * cv;
    ChanVec<V> o;
    for (int k = 0; k < V; k++) o.v[k] = b[c + k];
    for (int j = 0; j < K; j++) {
        int s = t - (K - 1) + j;
        if (s >= 0) {
            ChanVec<V> x = chan_load<V>(inp + (size_t)(bt - t + s) * D + c);
            for (int k = 0; k < V; k++) o.v[k] += w[(c + k) * K + j] * x.v[k];
        }
    }
    chan_store<V>(out + (size_t)bt * D + c, o);
}
static int vec4_rows(int D, const void *a, const void *b, const void *c) {
    return D % 4 == 0 && (((uintptr_t)a | (uintptr_t)b | (uintptr_t)c) & 15) == 0;
}
void cuda_shortconv_forward(float *out, const float *inp, const float *w, const float *b, int B, int T, int D, int K) {
    long long n = (long long)B * T * D;
    if (vec4_rows(D, out, inp, NULL))
        shortconv_forward_kernel<4><<<cdiv(n / 4, 256), 256, 0, rb_cuda_stream()>>>(out, inp, w, b, B * T, T, D, K);
    else shortconv_forward_kernel<1><<<cdiv(n, 256), 256, 0, rb_cuda_stream()>>>(out, inp, w, b, B * T, T, D, K);
    CHECK_LAUNCH();
}

// dinp half of shortconv_backward: input s feeds outputs t = s + (K-1) - j; skip (may be NULL) is
// added to dinp first (conv.cu's "+ u" skip: dinp = (dinp + skip) + taps, the CPU's order); V as above.
template <int V>
__global__ void shortconv_backward_dinp_kernel(float *dinp, const float *dout, const float *skip, const float *w,
                                               int BT, int T, int D, int K) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)BT * (D / V)) return;
    int bs, cv;
    rb_divmod(i, D / V, bs, cv);
    int s = bs % T, c = V * cv;
    size_t at = (size_t)bs * D + c;
    ChanVec<V> acc;
    for (int k = 0; k < V; k++) acc.v[k] = 0.f;
    for (int j = 0; j < K; j++) {
        int t = s + (K - 1) - j;
        if (t < T) {
            ChanVec<V> g = chan_load<V>(dout + (size_t)(bs - s + t) * D + c);
            for (int k = 0; k < V; k++) acc.v[k] += w[(c + k) * K + j] * g.v[k];
        }
    }
    ChanVec<V> d0 = chan_load<V>(dinp + at);
    if (skip) {
        ChanVec<V> sk = chan_load<V>(skip + at);
        for (int k = 0; k < V; k++) d0.v[k] += sk.v[k];
    }
    for (int k = 0; k < V; k++) d0.v[k] = d0.v[k] + acc.v[k];
    chan_store<V>(dinp + at, d0);
}
// kernel/bias half: per 256-row chunk and channel, the K tap sums and the bias sum;
// part layout [chunk][K+1][D] (tap j at j, bias at K)
__global__ void shortconv_wgrad_partial_kernel(float *part, const float *dout, const float *inp, int BT, int T, int D,
                                               int K) {
    int c = blockIdx.x * blockDim.x + threadIdx.x, chunk = blockIdx.y;
    if (c >= D) return;
    float acc[9];
    for (int j = 0; j <= K && j < 9; j++) acc[j] = 0.f;
    int r0 = chunk * ROWS_CHUNK, r1 = min(BT, r0 + ROWS_CHUNK);
    float *pc = part + (size_t)chunk * (K + 1) * D;
    if (K <= 8) {
        for (int bt = r0; bt < r1; bt++) {
            int t = bt % T;
            float g = dout[(size_t)bt * D + c];
            acc[K] += g;
            for (int j = 0; j < K; j++) {
                int s = t - (K - 1) + j;
                if (s >= 0) acc[j] += g * inp[(size_t)(bt - t + s) * D + c];
            }
        }
        for (int j = 0; j <= K; j++) pc[(size_t)j * D + c] = acc[j];
    } else {  // long kernels: one tap at a time
        for (int j = 0; j <= K; j++) {
            float a = 0.f;
            for (int bt = r0; bt < r1; bt++) {
                int t = bt % T, s = t - (K - 1) + j;
                float g = dout[(size_t)bt * D + c];
                if (j == K) a += g;
                else if (s >= 0) a += g * inp[(size_t)(bt - t + s) * D + c];
            }
            pc[(size_t)j * D + c] = a;
        }
    }
}
// The same for a compile-time K, the fast path: one block per (32-channel tile, SC_ROWS-row chunk),
// warp wp takes the contiguous rows r0 + 16 wp .. + 15 in row order (its inputs' previous rows are
// L1 hits), then the 8 warp sums are added in warp order. part layout [chunk][K+1][D].
#define SC_ROWS 128
template <int K>
__global__ void shortconv_wgrad_partial_k_kernel(float *part, const float *dout, const float *inp, int BT, int T,
                                                 int D) {
    __shared__ float sh[8][K + 1][32];
    int lane = threadIdx.x & 31, wp = threadIdx.x >> 5, c = blockIdx.x * 32 + lane, chunk = blockIdx.y;
    float acc[K + 1];
#pragma unroll
    for (int j = 0; j <= K; j++) acc[j] = 0.f;
    if (c < D) {
        int r0 = chunk * SC_ROWS + wp * (SC_ROWS / 8), r1 = min(BT, r0 + SC_ROWS / 8);
        for (int bt = r0; bt < r1; bt++) {
            int t = bt % T;
            float g = dout[(size_t)bt * D + c];
            acc[K] += g;
#pragma unroll
            for (int j = 0; j < K; j++) {
                int sft = t - (K - 1) + j;
                if (sft >= 0) acc[j] += g * inp[(size_t)(bt - (K - 1) + j) * D + c];
            }
        }
    }
#pragma unroll
    for (int j = 0; j <= K; j++) sh[wp][j][lane] = acc[j];
    __syncthreads();
    if (threadIdx.x < (K + 1) * 32) {
        int j = threadIdx.x >> 5, l = threadIdx.x & 31, cc = blockIdx.x * 32 + l;
        if (cc < D) {
            float s = 0.f;
            for (int k = 0; k < 8; k++) s += sh[k][j][l];
            part[((size_t)chunk * (K + 1) + j) * D + cc] = s;
        }
    }
}

// dw, db += the chunk partials (i = j * D + c), chunks summed as chunk_final_kernel: 32 outputs x 32
// chunk lanes per block, each lane its chunks in order, then the lanes in order.
__global__ void shortconv_wgrad_final_kernel(float *dw, float *db, const float *part, int nchunk, int D, int K) {
    __shared__ float sh[32][33];
    int tx = threadIdx.x & 31, ty = threadIdx.x >> 5, i = blockIdx.x * 32 + tx, n = (K + 1) * D;
    float s = 0.f;
    if (i < n)
        for (int k = ty; k < nchunk; k += 32) s += part[(size_t)k * n + i];
    sh[ty][tx] = s;
    __syncthreads();
    if (ty == 0 && i < n) {
        float t = 0.f;
        for (int k = 0; k < 32; k++) t += sh[k][tx];
        int j = i / D, c = i % D;
        if (j == K) db[c] += t;
        else dw[(size_t)c * K + j] += t;
    }
}
void cuda_conv_wgrad_final(float *dw, float *db, const float *part, int nrow, int D, int K) {
    shortconv_wgrad_final_kernel<<<cdiv((long long)(K + 1) * D, 32), 1024, 0, rb_cuda_stream()>>>(dw, db, part, nrow, D, K);
    CHECK_LAUNCH();
}
size_t cuda_shortconv_scratch(int BT, int D, int K) {
    return (size_t)cdiv(BT > 0 ? BT : 1, SC_ROWS < ROWS_CHUNK ? SC_ROWS : ROWS_CHUNK) * (K + 1) * D;
}
void cuda_shortconv_backward_skip(float *dinp, float *dw, float *db, const float *dout, const float *skip,
                                  const float *inp, const float *w, int B, int T, int D, int K, float *scratch) {
    cudaStream_t st = rb_cuda_stream();
    int BT = B * T, nch;
    if (BT <= 0) return;
    if (vec4_rows(D, dinp, dout, skip))
        shortconv_backward_dinp_kernel<4><<<cdiv((long long)BT * D / 4, 256), 256, 0, st>>>(dinp, dout, skip, w, BT, T,
                                                                                           D, K);
    else shortconv_backward_dinp_kernel<1><<<cdiv((long long)BT * D, 256), 256, 0, st>>>(dinp, dout, skip, w, BT, T, D, K);
    CHECK_LAUNCH();
    if (K >= 1 && K <= 4) {
        nch = cdiv(BT, SC_ROWS);
        dim3 grid(cdiv(D, 32), nch);
        switch (K) {
        case 1: shortconv_wgrad_partial_k_kernel<1><<<grid, 256, 0, st>>>(scratch, dout, inp, BT, T, D); break;
        case 2: shortconv_wgrad_partial_k_kernel<2><<<grid, 256, 0, st>>>(scratch, dout, inp, BT, T, D); break;
        case 3: shortconv_wgrad_partial_k_kernel<3><<<grid, 256, 0, st>>>(scratch, dout, inp, BT, T, D); break;
        default: shortconv_wgrad_partial_k_kernel<4><<<grid, 256, 0, st>>>(scratch, dout, inp, BT, T, D); break;
        }
    } else {
        nch = cdiv(BT, ROWS_CHUNK);
        dim3 grid(cdiv(D, 128), nch);
        shortconv_wgrad_partial_kernel<<<grid, 128, 0, st>>>(scratch, dout, inp, BT, T, D, K);
    }
    CHECK_LAUNCH();
    cuda_conv_wgrad_final(dw, db, scratch, nch, D, K);
}
void cuda_shortconv_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                             int B, int T, int D, int K, float *scratch) {
    cuda_shortconv_backward_skip(dinp, dw, db, dout, NULL, inp, w, B, T, D, K, scratch);
}
