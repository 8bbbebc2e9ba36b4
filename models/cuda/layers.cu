// layers.cu — device forms of models/layers.c (the shell's layers), one function per CPU function,
// same arguments. Depends on layers.cuh (common.cuh, cuBLAS).
// Every reduction runs in a fixed order (warp butterflies, per-chunk partials added in chunk order),
// so the same inputs give the same bits; scatter-adds go through a device counting sort + gather.
#include "layers.cuh"

#define LN_EPS 1e-5f
#define ROWS_CHUNK 256  // rows per partial sum of the weight-gradient column sums

// y[n, oc] += b[oc]: one pass, 4 outputs per thread when the row length allows it.
__global__ void add_bias_kernel(float *y, const float *b, long long n, int OC) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] += b[i % OC];
}

void cuda_linear_forward(float *out, const float *inp, const float *w, const float *b, int N, int C, int OC) {
    rb_cuda_matmul(out, inp, w, N, OC, C, 0, 1, 0.f);  // [N,C] @ [OC,C]^T
    if (b) {
        long long n = (long long)N * OC;
        add_bias_kernel<<<cdiv(n, 256), 256, 0, rb_cuda_stream()>>>(out, b, n, OC);
        CHECK_LAUNCH();
    }
}

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
void cuda_add(float *y, const float *a, const float *b, size_t n) {
    if (!n) return;
    add_kernel<<<cdiv(n, 256), 256, 0, rb_cuda_stream()>>>(y, a, b, n);
    CHECK_LAUNCH();
}

// model.c's head gather: xg[i] = x[pos[i]]
__global__ void gather_rows_kernel(float *out, const float *x, const int32_t *pos, int npos, int D) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)npos * D) return;
    size_t r = i / D, c = i % D;
    out[i] = x[(size_t)pos[r] * D + c];
}
void cuda_gather_rows(float *out, const float *x, const int32_t *pos, int npos, int D) {
    if (npos <= 0) return;
    gather_rows_kernel<<<cdiv((long long)npos * D, 256), 256, 0, rb_cuda_stream()>>>(out, x, pos, npos, D);
    CHECK_LAUNCH();
}

// ---- embedding (encoder_forward / encoder_backward) ----------------------------------------------

// mirrors encoder_forward
__global__ void encoder_forward_kernel(float *out, const int32_t *tok, const float *wte, const float *wpe, int BT,
                                       int T, int D) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)BT * D) return;
    int bt = (int)(i / D), c = (int)(i % D);
    float e = wte[(size_t)tok[bt] * D + c];
    if (wpe) e += wpe[(size_t)(bt % T) * D + c];
    out[i] = e;
}
void cuda_encoder_forward(float *out, const int32_t *tok, const float *wte, const float *wpe, int B, int T, int D) {
    encoder_forward_kernel<<<cdiv((long long)B * T * D, 256), 256, 0, rb_cuda_stream()>>>(out, tok, wte, wpe, B * T,
                                                                                         T, D);
    CHECK_LAUNCH();
}

// Stable counting sort in one block: counts (integer atomics: exact, order-free), an exclusive
// scan, then warp 0 places the keys in index order (match_any gives each key's rank in the warp).
// iscratch: count [R] then cursor [R].
__global__ void rowsort_kernel(int *start, int *list, const int32_t *key, int n, int R, int *count, int *cursor) {
    __shared__ int part[1024];
    int tid = threadIdx.x, nt = blockDim.x;
    for (int r = tid; r < R; r += nt) count[r] = 0;
    __syncthreads();
    for (int i = tid; i < n; i += nt) atomicAdd(&count[key[i]], 1);
    __syncthreads();
    // exclusive scan: each thread a contiguous range, then a serial scan of the thread totals
    int per = (R + nt - 1) / nt, r0 = min(R, tid * per), r1 = min(R, r0 + per), s = 0;
    for (int r = r0; r < r1; r++) s += count[r];
    part[tid] = s;
    __syncthreads();
    if (tid == 0) {
        int acc = 0;
        for (int k = 0; k < nt; k++) { int x = part[k]; part[k] = acc; acc += x; }
        start[R] = acc;
    }
    __syncthreads();
    s = part[tid];
    for (int r = r0; r < r1; r++) { start[r] = s; cursor[r] = s; s += count[r]; }
    __syncthreads();
    if (tid < 32) {
        volatile int *cur = cursor;  // re-read every round: the group leaders advance it
        unsigned lt = (1u << tid) - 1;
        for (int i0 = 0; i0 < n; i0 += 32) {
            int i = i0 + tid, k = i < n ? key[i] : -1 - tid;  // out-of-range lanes match nobody
            unsigned same = __match_any_sync(0xffffffffu, k);
            int base = i < n ? cur[k] : 0;
            __syncwarp();
            if (i < n) {
                list[base + __popc(same & lt)] = i;
                if ((same & lt) == 0) cur[k] = base + __popc(same);  // the group's first lane
            }
            __syncwarp();
        }
    }
}
size_t cuda_rowsort_scratch_ints(int R) { return 2 * (size_t)R; }
void cuda_rowsort(int *start, int *list, const int32_t *key, int n, int R, int *iscratch) {
    rowsort_kernel<<<1, 1024, 0, rb_cuda_stream()>>>(start, list, key, n, R, iscratch, iscratch + R);
    CHECK_LAUNCH();
}

// One block per destination row (x column tiles): members summed in list (= index) order.
__global__ void row_gather_add_kernel(float *dst, const float *src, const int *start, const int *list, int D) {
    int r = blockIdx.x, c = blockIdx.y * blockDim.x + threadIdx.x;
    int k0 = start[r], k1 = start[r + 1];
    if (c >= D || k0 == k1) return;
    float s = 0.f;
    for (int k = k0; k < k1; k++) s += src[(size_t)list[k] * D + c];
    dst[(size_t)r * D + c] += s;
}
void cuda_row_gather_add(float *dst, const float *src, const int *start, const int *list, int R, int D) {
    int tx = D >= 128 ? 128 : 32 * cdiv(D, 32);
    dim3 grid(R, cdiv(D, tx));
    row_gather_add_kernel<<<grid, tx, 0, rb_cuda_stream()>>>(dst, src, start, list, D);
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

size_t cuda_encoder_scratch_ints(int BT, int V) { return (size_t)V + 1 + BT + cuda_rowsort_scratch_ints(V); }
void cuda_encoder_backward(float *dwte, float *dwpe, const float *dout, const int32_t *tok, int B, int T, int D,
                           int V, int *iscratch) {
    int BT = B * T, *start = iscratch, *list = start + V + 1, *rs = list + BT;
    cuda_rowsort(start, list, tok, BT, V, rs);
    cuda_row_gather_add(dwte, dout, start, list, V, D);
    if (dwpe) {
        wpe_grad_kernel<<<cdiv((long long)T * D, 256), 256, 0, rb_cuda_stream()>>>(dwpe, dout, B, T, D);
        CHECK_LAUNCH();
    }
}

// ---- norms ------------------------------------------------------------------------------------
// One warp per row; two passes (mean, then centred variance) as layernorm_forward.

// mirrors layernorm_forward
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
void cuda_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b,
                            int N, int D) {
    if (N <= 0) return;
    layernorm_forward_kernel<<<cdiv(N, 8), 256, 0, rb_cuda_stream()>>>(out, mean, rstd, inp, w, b, N, D);
    CHECK_LAUNCH();
}

// mirrors rmsnorm_forward
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
void cuda_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *w, int N, int D) {
    if (N <= 0) return;
    rmsnorm_forward_kernel<<<cdiv(N, 8), 256, 0, rb_cuda_stream()>>>(out, rstd, inp, w, N, D);
    CHECK_LAUNCH();
}

// dinp rows of layernorm_backward (rms: mean NULL, the rmsnorm_backward formula)
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

// Per 256-row chunk and column: sum g (x - m) s and sum g (rms: m = 0, no bias part).
__global__ void norm_wgrad_partial_kernel(float *pw, float *pb, const float *dout, const float *inp,
                                          const float *mean, const float *rstd, int N, int D) {
    int c = blockIdx.x * blockDim.x + threadIdx.x, chunk = blockIdx.y;
    if (c >= D) return;
    int r0 = chunk * ROWS_CHUNK, r1 = min(N, r0 + ROWS_CHUNK);
    float sw = 0.f, sb = 0.f;
    for (int r = r0; r < r1; r++) {
        float g = dout[(size_t)r * D + c], m = mean ? mean[r] : 0.f;
        sw += g * (inp[(size_t)r * D + c] - m) * rstd[r];
        sb += g;
    }
    pw[(size_t)chunk * D + c] = sw;
    if (pb) pb[(size_t)chunk * D + c] = sb;
}
// out[c] += sum over chunks in chunk order
__global__ void chunk_final_kernel(float *out, const float *part, int nchunk, int C) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    float s = 0.f;
    for (int k = 0; k < nchunk; k++) s += part[(size_t)k * C + c];
    out[c] += s;
}

size_t cuda_norm_scratch(int N, int D) { return 2 * (size_t)cdiv(N > 0 ? N : 1, ROWS_CHUNK) * D; }

static void norm_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                          const float *mean, const float *rstd, int N, int D, float *scratch) {
    if (N <= 0) return;
    cudaStream_t st = rb_cuda_stream();
    norm_backward_dinp_kernel<<<cdiv(N, 8), 256, 0, st>>>(dinp, dout, inp, w, mean, rstd, N, D);
    CHECK_LAUNCH();
    int nch = cdiv(N, ROWS_CHUNK);
    float *pw = scratch, *pb = db ? scratch + (size_t)nch * D : NULL;
    dim3 grid(cdiv(D, 128), nch);
    norm_wgrad_partial_kernel<<<grid, 128, 0, st>>>(pw, pb, dout, inp, mean, rstd, N, D);
    CHECK_LAUNCH();
    chunk_final_kernel<<<cdiv(D, 128), 128, 0, st>>>(dw, pw, nch, D);
    CHECK_LAUNCH();
    if (db) { chunk_final_kernel<<<cdiv(D, 128), 128, 0, st>>>(db, pb, nch, D); CHECK_LAUNCH(); }
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

// mean over valid rows in row order (thread-strided double partials, then a fixed tree)
__global__ void ce_mean_kernel(double *out, const float *losses, const int32_t *tgt, const int *cnt, int N) {
    __shared__ double sh[256];
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
    ce_count_kernel<<<1, 256, 0, st>>>(inv, cnt, tgt, N);
    CHECK_LAUNCH();
    if (N > 0) {
        int th = V >= 1024 ? 512 : V >= 256 ? 256 : 64;
        ce_fused_kernel<<<N, th, 0, st>>>(logits, losses, tgt, inv, V, want_grad);
        CHECK_LAUNCH();
    }
    ce_mean_kernel<<<1, 256, 0, st>>>(loss_dev, losses, tgt, cnt, N);
    CHECK_LAUNCH();
}

// ---- depthwise causal short convolution -------------------------------------------------------

// mirrors shortconv_forward
__global__ void shortconv_forward_kernel(float *out, const float *inp, const float *w, const float *b, int BT, int T,
                                         int D, int K) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)BT * D) return;
    int bt = (int)(i / D), c = (int)(i % D), t = bt % T;
    float o = b[c];
    for (int j = 0; j < K; j++) {
        int s = t - (K - 1) + j;
        if (s >= 0) o += w[c * K + j] * inp[(size_t)(bt - t + s) * D + c];
    }
    out[i] = o;
}
void cuda_shortconv_forward(float *out, const float *inp, const float *w, const float *b, int B, int T, int D, int K) {
    shortconv_forward_kernel<<<cdiv((long long)B * T * D, 256), 256, 0, rb_cuda_stream()>>>(out, inp, w, b, B * T, T,
                                                                                           D, K);
    CHECK_LAUNCH();
}

// dinp half of shortconv_backward: input s feeds outputs t = s + (K-1) - j
__global__ void shortconv_backward_dinp_kernel(float *dinp, const float *dout, const float *w, int BT, int T, int D,
                                               int K) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)BT * D) return;
    int bs = (int)(i / D), c = (int)(i % D), s = bs % T;
    float acc = 0.f;
    for (int j = 0; j < K; j++) {
        int t = s + (K - 1) - j;
        if (t < T) acc += w[c * K + j] * dout[(size_t)(bs - s + t) * D + c];
    }
    dinp[i] += acc;
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
__global__ void shortconv_wgrad_final_kernel(float *dw, float *db, const float *part, int nchunk, int D, int K) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;  // i = j * D + c
    if (i >= (K + 1) * D) return;
    int j = i / D, c = i % D;
    float s = 0.f;
    for (int k = 0; k < nchunk; k++) s += part[(size_t)k * (K + 1) * D + i];
    if (j == K) db[c] += s;
    else dw[(size_t)c * K + j] += s;
}
size_t cuda_shortconv_scratch(int BT, int D, int K) { return (size_t)cdiv(BT > 0 ? BT : 1, ROWS_CHUNK) * (K + 1) * D; }
void cuda_shortconv_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                             int B, int T, int D, int K, float *scratch) {
    cudaStream_t st = rb_cuda_stream();
    int BT = B * T, nch = cdiv(BT, ROWS_CHUNK);
    shortconv_backward_dinp_kernel<<<cdiv((long long)BT * D, 256), 256, 0, st>>>(dinp, dout, w, BT, T, D, K);
    CHECK_LAUNCH();
    dim3 grid(cdiv(D, 128), nch);
    shortconv_wgrad_partial_kernel<<<grid, 128, 0, st>>>(scratch, dout, inp, BT, T, D, K);
    CHECK_LAUNCH();
    shortconv_wgrad_final_kernel<<<cdiv((long long)(K + 1) * D, 128), 128, 0, st>>>(dw, db, scratch, nch, D, K);
    CHECK_LAUNCH();
}
