// layers.c — the shell's layer forward/backward pairs and the shared causal attention core.
// Depends on layers.h (real.h, cblas, OpenMP). See layers.h for shapes and conventions.
#include "layers.h"
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shell_consts.h"
#include "gemm_amx.h"

// rvec16 locals (layers.h) in the cloned row loops: no vector crosses a call, the ABI note is moot.
#pragma GCC diagnostic ignored "-Wpsabi"
#define LN_EPS RB_LN_EPS

// Per-thread scratch (the GEMM's packed panels, attention's k/v transposes) is freed when its thread
// exits: OpenMP's pool shrinks when the thread count drops and bench -j's threads end, and their
// buffers leaked (LeakSanitizer, test_threads and bench -j). A pthread key's destructor runs at a
// thread's exit; scratch_arm sets it on the thread's first allocation (off the hot path).
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static int scratch_key_ok;
static void scratch_free(void *unused);
static void scratch_key_make(void) { scratch_key_ok = pthread_key_create(&scratch_key, scratch_free) == 0; }
static void scratch_arm(void) {
    pthread_once(&scratch_once, scratch_key_make);
    if (scratch_key_ok) pthread_setspecific(scratch_key, &scratch_key);  // any non-NULL value arms it
}

void *rb_calloc(size_t n, size_t sz) {
    if (n == 0 || sz == 0) n = sz = 1;
    if (n > SIZE_MAX / sz) return NULL;
    size_t bytes = (n * sz + 63) & ~(size_t)63;
    if (bytes < n * sz) return NULL;
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes)) return NULL;
    return memset(p, 0, bytes);
}

// A per-thread scratch grown to n elements: its contents are never kept across a call, so a new
// aligned block replaces the old one (realloc would lose the alignment).
static void *grow_aligned(void *old, size_t n, size_t sz) {
    free(old);
    return rb_calloc(n, sz);
}

static inline int imin(int a, int b) { return a < b ? a : b; }
static inline int imax(int a, int b) { return a > b ? a : b; }

// exp for the softmaxes: rb_exp (layers.h), a branch-free expf the compiler vectorises.
#define rexp rb_exp

// The softmax row loops are built for AVX-512, AVX2 and baseline x86-64 and picked at load time
// (the build has no -march=native). ISO C mode does not contract a*b+c, and the lanes below are
// fixed, so every clone computes the same bits; only the speed differs (the baseline clone of
// these loops made the reference step 25% slower).
// (RB_CLONES: layers.h.)
// x[i] = exp(x[i] - mx) for i < n; returns the sum. Exp loop vectorises; the sum uses 16 fixed
// lanes (deterministic, and not a serial dependency chain).
RB_CLONES static real exp_sum_inplace(real *x, int n, real mx) {
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

// Reductions over a row in 16 fixed lanes: vectorisable without -ffast-math, same order every run.
#define LANES 16
// Pairwise tree (fixed order): 4 dependent adds per row instead of a serial chain of 16.
static inline real lanes_total(const real *lane) {
    real t[LANES];
    for (int j = 0; j < LANES; j++) t[j] = lane[j];
    for (int w = LANES / 2; w > 0; w /= 2)
        for (int j = 0; j < w; j++) t[j] += t[j + w];
    return t[0];
}
// (rvec16 accumulators, layers.h: kept in registers, where an array of lanes went through the
// stack; the same lanes and the same tree as lanes_total.)
static inline real row_sum(const real *x, int n) {
    rvec16 l = {0};
    int i = 0;
    for (; i + LANES <= n; i += LANES) l += rv_load(x + i);
    for (; i < n; i++) l[0] += x[i];
    return rv_sum(l);
}
static inline real row_sumsq_centered(const real *x, real m, int n) {
    rvec16 l = {0};
    int i = 0;
    for (; i + LANES <= n; i += LANES) {
        rvec16 d = rv_load(x + i) - m;
        l += d * d;
    }
    for (; i < n; i++) l[0] += (x[i] - m) * (x[i] - m);
    return rv_sum(l);
}
// sum a[i] b[i] and sum a[i] b[i] (c[i] - m) in one pass
static inline void row_dot2(const real *a, const real *b, const real *c, real m, int n, real *s1, real *s2) {
    rvec16 l1 = {0}, l2 = {0};
    int i = 0;
    for (; i + LANES <= n; i += LANES) {
        rvec16 ab = rv_load(a + i) * rv_load(b + i);
        l1 += ab;
        l2 += ab * (rv_load(c + i) - m);
    }
    for (; i < n; i++) { real ab = a[i] * b[i]; l1[0] += ab; l2[0] += ab * (c[i] - m); }
    *s1 = rv_sum(l1);
    *s2 = rv_sum(l2);
}

#if !defined(RB_DOUBLE) && defined(__x86_64__) && defined(__GNUC__)
#define RB_TRANSPOSE8 1
#include <immintrin.h>
// dst[c * ldd + s] = src[s * lds + c] for an 8 x 8 block (data movement only: no rounding).
__attribute__((target("avx2"))) static void transpose8x8(float *dst, size_t ldd, const float *src, size_t lds) {
    __m256 r0 = _mm256_loadu_ps(src), r1 = _mm256_loadu_ps(src + lds), r2 = _mm256_loadu_ps(src + 2 * lds),
           r3 = _mm256_loadu_ps(src + 3 * lds), r4 = _mm256_loadu_ps(src + 4 * lds),
           r5 = _mm256_loadu_ps(src + 5 * lds), r6 = _mm256_loadu_ps(src + 6 * lds),
           r7 = _mm256_loadu_ps(src + 7 * lds);
    __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1), t2 = _mm256_unpacklo_ps(r2, r3),
           t3 = _mm256_unpackhi_ps(r2, r3), t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5),
           t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
    __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE),
           s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE),
           s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE),
           s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    _mm256_storeu_ps(dst, _mm256_permute2f128_ps(s0, s4, 0x20));
    _mm256_storeu_ps(dst + ldd, _mm256_permute2f128_ps(s1, s5, 0x20));
    _mm256_storeu_ps(dst + 2 * ldd, _mm256_permute2f128_ps(s2, s6, 0x20));
    _mm256_storeu_ps(dst + 3 * ldd, _mm256_permute2f128_ps(s3, s7, 0x20));
    _mm256_storeu_ps(dst + 4 * ldd, _mm256_permute2f128_ps(s0, s4, 0x31));
    _mm256_storeu_ps(dst + 5 * ldd, _mm256_permute2f128_ps(s1, s5, 0x31));
    _mm256_storeu_ps(dst + 6 * ldd, _mm256_permute2f128_ps(s2, s6, 0x31));
    _mm256_storeu_ps(dst + 7 * ldd, _mm256_permute2f128_ps(s3, s7, 0x31));
}
// The same for a 16 x 16 block in AVX-512 registers (two 8 x 8 passes per block were 2% of the
// reference step).
__attribute__((target("avx512f"))) static void transpose16x16(float *dst, size_t ldd, const float *src, size_t lds) {
    __m512 r[16], t[16];
    for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_ps(src + i * lds);
    for (int i = 0; i < 16; i += 2) {  // interleave row pairs: 32-bit elements
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {  // 64-bit pairs of pairs
        r[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
        r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
        r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    // each r[i] now holds, per 128-bit lane L, column (lane-local) data of rows i/4*4 .. +3;
    // gather the 128-bit lanes: first rows 0-3 with 4-7 and 8-11 with 12-15, then across
    for (int i = 0; i < 4; i++) {
        t[i] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0x88);
        t[i + 4] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0xDD);
        t[i + 8] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0x88);
        t[i + 12] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0xDD);
    }
    for (int i = 0; i < 4; i++) {
        r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
        r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xDD);
        r[i + 4] = _mm512_shuffle_f32x4(t[i + 4], t[i + 12], 0x88);
        r[i + 12] = _mm512_shuffle_f32x4(t[i + 4], t[i + 12], 0xDD);
    }
    for (int i = 0; i < 16; i++) _mm512_storeu_ps(dst + i * ldd, r[i]);
}
#endif

// ---- float GEMM: own register-tiled kernels (AVX-512 / AVX2+FMA, picked at run time) ---------
// Why not OpenBLAS for the float build: (1) its result for one element depends on the call's
// shape and on which kernel it picked for this CPU (Haswell's differs with the row-block size, so
// --threads changed the numbers; an unknown CPU model falls back to the SSE3 "Prescott" kernel,
// 4-8x slower); (2) at these shapes (K = 64) its packing costs as much as the multiply.
// Every element here is one chain: acc = 0; acc = fma(a_ik, b_kj, acc) for k = 0..K-1 in order
// (K split into KC blocks whose partial sums go through memory exactly), then
// C = fma(beta, C, alpha * acc) (beta = 0: C = alpha * acc). Tile sizes and vector widths only
// choose which elements are computed together, so AVX-512, AVX2 and the scalar check path give
// bit-identical results, for any row split, thread count or CPU. Without FMA (pre-2013 x86) the
// float build falls back to OpenBLAS (numbers then differ in the last bits).
#if !defined(RB_DOUBLE) && defined(__x86_64__) && defined(__GNUC__)
#define RB_OWN_SGEMM 1
#include <immintrin.h>
#include <stdlib.h>

enum { GEMM_PATH_UNSET = -1, GEMM_PATH_BLAS = 0, GEMM_PATH_SCALAR = 1, GEMM_PATH_AVX2 = 2, GEMM_PATH_AVX512 = 3 };
static int gemm_path = GEMM_PATH_UNSET;
static const char *const gemm_path_names[] = {"blas", "scalar", "avx2", "avx512"};

static int gemm_path_detect(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return GEMM_PATH_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return GEMM_PATH_AVX2;
    return GEMM_PATH_BLAS;
}

static int gemm_bf16;  // --precision bf16 on the cpu: the GEMMs run on AMX or AVX512-BF16 (gemm_amx.c)

const char *rb_gemm_path(void) {
    if (gemm_bf16) return rb_bf16_engine();
    if (gemm_path == GEMM_PATH_UNSET) gemm_path = gemm_path_detect();
    return gemm_path_names[gemm_path];
}

int rb_gemm_set_precision(int prec) {
    if (prec == RB_PREC_BF16 && !rb_bf16_available()) return -1;
    gemm_bf16 = prec == RB_PREC_BF16;
    return 0;
}

int rb_gemm_force(const char *name) {
    int best = gemm_path_detect();
    for (int i = 0; i < 4; i++)
        if (!strcmp(name, gemm_path_names[i])) {
            if (i > best && i >= GEMM_PATH_AVX2) return -1;  // this CPU cannot run it
            gemm_path = i;
            return 0;
        }
    return -1;
}

// Per-thread scratch, grown on first use only (the step allocates nothing once warm): op(B)
// packed [K, N] when B is transposed, and the K-block partial sums [MC, N].
static _Thread_local float *gemm_pack, *gemm_part, *par_pack;  // par_pack: matmul_par's shared B^T
static _Thread_local size_t gemm_pack_cap, gemm_part_cap, par_pack_cap;
static float *grow(float **p, size_t *cap, size_t n) {
    if (n > *cap) {
        if (!*p) scratch_arm();
        float *q = *p = grow_aligned(*p, n, sizeof(float));
        *cap = q ? n : 0;
        if (!q) return NULL;
    }
    return *p;
}

#define KC 256  // K block: a KC x N panel of B and KC columns of A stay in L1/L2
#define MC 64   // rows whose K-block partials are kept in gemm_part
#define NC 256  // columns per pass: a KC x NC block of B (256 KB) stays in L2 while MC rows go by

// Scalar reference of the same chain (the path of the bit-identity test; also tails of nothing).
static void sgemm_scalar(float *C, int ldc, const float *Ci, int ldci, const float *A, int lda, const float *B,
                         int ldb, int M, int N, int K, int ta, int tb, float alpha, float beta) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float acc = 0;
            for (int k = 0; k < K; k++)
                acc = fmaf(ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k],
                           tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j], acc);
            float t = alpha * acc;
            C[(size_t)i * ldc + j] = beta == 0 ? t : fmaf(beta, Ci[(size_t)i * ldci + j], t);
        }
}

// One MR x (NV vectors) tile over k in [0, kc): acc from part (first = 0) or zero, result to part
// (last = 0) or to C with alpha/beta (last = 1). a(r, k) = A[r*ars + k*acs]; B row k at Bp + k*ldb
// (columns j0.. already applied). nr valid columns, mr valid rows (rows past mr repeat row mr-1
// and are not stored). Accumulators are named variables (one per row and vector): GCC keeps
// those in registers, where an array of vectors was spilled on every k.
#define TILE_ARGS float *C, int ldc, const float *Ci, int ldci, float *part, int ldp, const float *A, size_t ars, size_t acs, const float *Bp, \
                  int ldb, int mr, int nr, int kc, int first, int last, float alpha, float beta
#define T_DECL(r) VT c##r##0 = ZERO(), c##r##1 = ZERO(); const float *a##r = A + (size_t)((r) < mr ? (r) : mr - 1) * ars;
#define T_LOADP(r) if ((r) < mr) { c##r##0 = NV > 1 ? LOADU(part + (size_t)(r) * ldp) : MLOAD(part + (size_t)(r) * ldp, mk); \
                   if (NV > 1) c##r##1 = MLOAD(part + (size_t)(r) * ldp + VW, mk); }
#define T_FMA(r) { VT a = SET1(a##r[(size_t)k * acs]); c##r##0 = FMA(a, b0, c##r##0); if (NV > 1) c##r##1 = FMA(a, b1, c##r##1); }
#define T_OUT1(dst, src, x, masked) { VT y = x; if (last) { y = MUL(SET1(alpha), y); \
        if (beta != 0) y = FMA(SET1(beta), masked ? MLOAD(src, mk) : LOADU(src), y); } \
        if (masked) MSTORE(dst, mk, y); else STOREU(dst, y); }
#define T_STORE(r) if ((r) < mr) { float *d = last ? C + (size_t)(r) * ldc : part + (size_t)(r) * ldp; \
                   const float *ci = Ci + (size_t)(r) * ldci; \
                   if (NV > 1) { T_OUT1(d, ci, c##r##0, 0) T_OUT1(d + VW, ci + VW, c##r##1, 1) } \
                   else T_OUT1(d, ci, c##r##0, 1) }
#define TILE_BODY(ROWS)                                                                                          \
    MASKT mk = MKMASK(nr - (NV - 1) * VW);                                                                      \
    ROWS(T_DECL)                                                                                                \
    if (!first) { ROWS(T_LOADP) }                                                                               \
    for (int k = 0; k < kc; k++) {                                                                              \
        const float *bk = Bp + (size_t)k * ldb;                                                                 \
        if (PF) { _mm_prefetch((const char *)(bk + PF * (size_t)ldb), _MM_HINT_T0);                            \
                  _mm_prefetch((const char *)(a0 + (size_t)(k + PF) * acs), _MM_HINT_T0); }                    \
        VT b0 = NV > 1 ? LOADU(bk) : MLOAD(bk, mk), b1 = NV > 1 ? MLOAD(bk + VW, mk) : ZERO();                  \
        ROWS(T_FMA)                                                                                             \
    }                                                                                                           \
    ROWS(T_STORE)
#define ROWS8(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)
#define ROWS6(X) X(0) X(1) X(2) X(3) X(4) X(5)

// AVX-512: 8 rows x 32 columns (16 accumulators), and 8 x 16 for a narrow last column block.
#define VT __m512
#define VW 16
#define MASKT __mmask16
#define MKMASK(n) ((__mmask16)((n) >= 16 ? 0xFFFF : ((1u << (n)) - 1)))
#define LOADU _mm512_loadu_ps
#define MLOAD(p, m) _mm512_maskz_loadu_ps(m, p)
#define STOREU _mm512_storeu_ps
#define MSTORE(p, m, x) _mm512_mask_storeu_ps(p, m, x)
#define FMA _mm512_fmadd_ps
#define MUL _mm512_mul_ps
#define SET1 _mm512_set1_ps
#define ZERO _mm512_setzero_ps
// NV: vectors per row (2 or 1: a narrow last column block); PF: rows of A and B prefetched ahead (0: none).
#define TILE_FN(name, isa, ROWS, nv, pf) \
    __attribute__((target(isa))) static void name(TILE_ARGS) { enum { NV = nv, PF = pf }; TILE_BODY(ROWS) }
TILE_FN(tile512_2, "avx512f", ROWS8, 2, 0)
TILE_FN(tile512_1, "avx512f", ROWS8, 1, 0)
TILE_FN(tile512_2p, "avx512f", ROWS8, 2, 16)  // tall K with op(A) = A^T (weight gradients)
TILE_FN(tile512_1p, "avx512f", ROWS8, 1, 16)
#undef VT
#undef VW
#undef MASKT
#undef MKMASK
#undef LOADU
#undef MLOAD
#undef STOREU
#undef MSTORE
#undef FMA
#undef MUL
#undef SET1
#undef ZERO

// AVX2: 6 rows x 16 columns (12 accumulators), and 6 x 8.
__attribute__((target("avx2,fma"))) static inline __m256i m256_mask(int n) {
    n = n >= 8 ? 8 : n;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
#define VT __m256
#define VW 8
#define MASKT __m256i
#define MKMASK m256_mask
#define LOADU _mm256_loadu_ps
#define MLOAD(p, m) _mm256_maskload_ps(p, m)
#define STOREU _mm256_storeu_ps
#define MSTORE(p, m, x) _mm256_maskstore_ps(p, m, x)
#define FMA _mm256_fmadd_ps
#define MUL _mm256_mul_ps
#define SET1 _mm256_set1_ps
#define ZERO _mm256_setzero_ps
TILE_FN(tile256_2, "avx2,fma", ROWS6, 2, 0)
TILE_FN(tile256_1, "avx2,fma", ROWS6, 1, 0)
#undef VT
#undef VW
#undef MASKT
#undef MKMASK
#undef LOADU
#undef MLOAD
#undef STOREU
#undef MSTORE
#undef FMA
#undef MUL
#undef SET1
#undef ZERO

typedef void (*TileFn)(TILE_ARGS);

// pk [K, N] = B^T (B: N rows of K, stride ldb), 16 rows of B at a time: the reads stay in those
// rows' cache lines and the writes are 16 contiguous floats (a row at a time wrote with stride N).
static void pack_bt(float *restrict pk, const float *restrict B, int ldb, int N, int K, int avx512) {
    int j16 = 0, k16 = 0;
    if (avx512) {  // whole 16 x 16 blocks in registers (the loop below, scalar strided loads, was 9% of
                   // the bla W 128 N 16 step, one thread; 2% now)
        j16 = N & ~15;
        k16 = K & ~15;
        for (int j0 = 0; j0 < j16; j0 += 16)
            for (int k0 = 0; k0 < k16; k0 += 16)
                transpose16x16(pk + (size_t)k0 * N + j0, N, B + (size_t)j0 * ldb + k0, ldb);
        for (int j0 = 0; j0 < j16; j0 += 16)  // columns k16.. of those rows
            for (int k = k16; k < K; k++)
                for (int j = j0; j < j0 + 16; j++) pk[(size_t)k * N + j] = B[(size_t)j * ldb + k];
    }
    for (int j0 = j16; j0 < N; j0 += 16) {
        int j1 = j0 + 16 < N ? j0 + 16 : N;
        for (int k = 0; k < K; k++)
            for (int j = j0; j < j1; j++) pk[(size_t)k * N + j] = B[(size_t)j * ldb + k];
    }
}

// C[M,N] = beta Ci + alpha op(A) op(B), single thread, with the tiles of one ISA. Ci (row stride
// ldci) is C itself, or e.g. a bias row with ldci = 0 (linear_forward: no bias-copy pass).
static int sgemm_tiled(float *C, int ldc, const float *Ci, int ldci, const float *A, int lda, const float *B, int ldb,
                       int M, int N, int K, int ta, int tb, float alpha, float beta, int path) {
    const int avx512 = path == GEMM_PATH_AVX512, MR = avx512 ? 8 : 6, VW = avx512 ? 16 : 8;
    TileFn t2 = avx512 ? tile512_2 : tile256_2, t1 = avx512 ? tile512_1 : tile256_1;
    if (avx512 && ta && K > KC) t2 = tile512_2p, t1 = tile512_1p;  // tall K, A^T: prefetch the rows ahead
    const float *Bp = B;
    int ldbp = ldb;
    if (tb) {  // pack op(B) = B^T into [K, N]
        float *pk = grow(&gemm_pack, &gemm_pack_cap, (size_t)K * N);
        if (!pk) return -1;
        pack_bt(pk, B, ldb, N, K, avx512);
        Bp = pk;
        ldbp = N;
    }
    const size_t ars = ta ? 1 : (size_t)lda, acs = ta ? (size_t)lda : 1;
    float *part = NULL;
    if (K > KC && !(part = grow(&gemm_part, &gemm_part_cap, (size_t)MC * N))) return -1;
    for (int n0 = 0; n0 < N; n0 += NC)
    for (int i0 = 0; i0 < M; i0 += MC) {
        int mc = M - i0 < MC ? M - i0 : MC, n1 = N - n0 < NC ? N : n0 + NC;
        for (int k0 = 0; k0 < K; k0 += KC) {
            int kc = K - k0 < KC ? K - k0 : KC, first = k0 == 0, last = k0 + kc >= K;
            for (int j0 = n0; j0 < n1; j0 += 2 * VW) {
                int nr = n1 - j0 < 2 * VW ? n1 - j0 : 2 * VW;
                TileFn f = nr > VW ? t2 : t1;
                for (int r0 = 0; r0 < mc; r0 += MR) {
                    int i = i0 + r0, mr = mc - r0 < MR ? mc - r0 : MR;
                    f(C + (size_t)i * ldc + j0, ldc, Ci + (size_t)i * ldci + j0, ldci, part ? part + (size_t)r0 * N + j0 : NULL, N,
                      A + i * ars + k0 * acs, ars, acs, Bp + (size_t)k0 * ldbp + j0, ldbp, mr, nr, kc, first, last,
                      alpha, beta);
                }
            }
        }
    }
    return 0;
}
#endif

#ifndef RB_OWN_SGEMM
const char *rb_gemm_path(void) { return "blas"; }
int rb_gemm_force(const char *name) { return strcmp(name, "blas") ? -1 : 0; }
int rb_gemm_set_precision(int prec) { return prec == RB_PREC_BF16 ? -1 : 0; }
#endif

// ---- GEMM helpers ----------------------------------------------------------------------------

void rb_blas_single_thread(void) {
#ifdef OPENBLAS_CONFIG_H
    // All parallelism is OpenMP's; a second (spinning) OpenBLAS pool would fight it for cores.
    if (openblas_get_num_threads() != 1) openblas_set_num_threads(1);
#endif
}

// C = beta Ci + alpha op(A) op(B); Ci is C (ldci = ldc) or another matrix or a bias row (ldci = 0).
static void gemm_ci(real *C, int ldc, const real *Ci, int ldci, const real *A, int lda, const real *B, int ldb, int M,
                    int N, int K, int ta, int tb, real alpha, real beta) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {  // BLAS would leave C untouched only for beta = 1; make beta explicit
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) C[(size_t)i * ldc + j] = beta == 0 ? 0 : beta * Ci[(size_t)i * ldci + j];
        return;
    }
    double t0 = rb_gemm_profile ? rb_gemm_clock() : 0;  // `recallbench bench` accounting (real.h)
#ifdef RB_OWN_SGEMM
    if (gemm_bf16) {
        static _Thread_local int armed;  // gemm_amx.c's per-thread packing scratch is freed at thread exit
        if (!armed) { scratch_arm(); armed = 1; }
        if (!rb_sgemm_bf16(C, ldc, Ci, ldci, A, lda, B, ldb, M, N, K, ta, tb, alpha, beta)) goto done;
    }
    int path = gemm_path == GEMM_PATH_UNSET ? (gemm_path = gemm_path_detect()) : gemm_path;
    if (path == GEMM_PATH_SCALAR) {
        sgemm_scalar(C, ldc, Ci, ldci, A, lda, B, ldb, M, N, K, ta, tb, alpha, beta);
        goto done;
    }
    if (path >= GEMM_PATH_AVX2 &&
        !sgemm_tiled(C, ldc, Ci, ldci, A, lda, B, ldb, M, N, K, ta, tb, alpha, beta, path))
        goto done;  // else out of memory for the packing scratch: BLAS needs none of ours
#endif
    if (Ci != C && beta != 0)
        for (int i = 0; i < M; i++) memcpy(C + (size_t)i * ldc, Ci + (size_t)i * ldci, N * sizeof(real));
    GEMM(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, alpha, A,
         lda, B, ldb, beta, C, ldc);
#ifdef RB_OWN_SGEMM
done:
#endif
    if (rb_gemm_profile) rb_gemm_account(t0, M, N, K, ta, tb);
}

void gemm_ld_ci(real *C, int ldc, const real *Ci, int ldci, const real *A, int lda, const real *B, int ldb, int M,
                int N, int K, int ta, int tb, real alpha, real beta) {
    gemm_ci(C, ldc, Ci, ldci, A, lda, B, ldb, M, N, K, ta, tb, alpha, beta);
}

void gemm_ld(real *C, int ldc, const real *A, int lda, const real *B, int ldb, int M, int N, int K,
             int ta, int tb, real alpha, real beta) {
    gemm_ci(C, ldc, C, ldc, A, lda, B, ldb, M, N, K, ta, tb, alpha, beta);
}

// Row blocks of C over the threads. Every element's arithmetic is the same for any split (own
// kernels), so the split may follow the thread count. About 4 blocks per thread (multiples of 16
// rows: full micro-tiles), handed out dynamically: on a loaded machine a descheduled thread's
// blocks go to the others instead of every thread waiting for it at the region's end.
static void matmul_par_ci(real *C, const real *Ci, int ldci, const real *A, const real *B, int M, int N, int K,
                          int ta, int tb, real beta) {
    int nt = omp_get_max_threads();
    if (nt <= 1 || (double)M * N * K < 131072.0 || M < 32 || omp_in_parallel()) {
        gemm_ci(C, N, Ci, ldci, A, ta ? M : K, B, tb ? K : N, M, N, K, ta, tb, 1, beta);
        return;
    }
    // Tall K (a weight gradient: K = tokens): one block per thread. Every block streams all of op(B)
    // (K x N) from L3; four blocks per thread read it twice as often for no better balance.
    int bs = K >= 16 * M ? ((M + nt - 1) / nt + 15) & ~15 : (M / (4 * nt) + 15) & ~15, nb;
    if (bs < 16) bs = 16;
    nb = (M + bs - 1) / bs;
#ifdef RB_OWN_SGEMM
    // op(B) = B^T packed once here, not once per row block (a copy: the same bits)
    if (tb && nb > 1 && (gemm_path == GEMM_PATH_AVX2 || gemm_path == GEMM_PATH_AVX512)) {
        float *pk = grow(&par_pack, &par_pack_cap, (size_t)K * N);
        if (pk) {
            pack_bt(pk, B, K, N, K, gemm_path == GEMM_PATH_AVX512);
            B = pk;
            tb = 0;
        }
    }
#endif
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
    for (int i = 0; i < nb; i++) {
        int m0 = i * bs, m1 = imin(M, m0 + bs);
        gemm_ci(C + (size_t)m0 * N, N, Ci + (size_t)m0 * ldci, ldci, ta ? A + m0 : A + (size_t)m0 * K, ta ? M : K,
                B, tb ? K : N, m1 - m0, N, K, ta, tb, 1, beta);
    }
}

void matmul_par(real *C, const real *A, const real *B, int M, int N, int K, int ta, int tb, real beta) {
    matmul_par_ci(C, C, N, A, B, M, N, K, ta, tb, beta);
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

// Rows in order, columns [c0, c1) only (a thread's share).
RB_CLONES static void encoder_bwd_cols(real *restrict dwte, real *restrict dwpe, const real *restrict dout,
                                       const int32_t *tok, int BT, int T, int D, int c0, int c1) {
    for (int bt = 0; bt < BT; bt++) {
        const real *g = dout + (size_t)bt * D;
        real *e = dwte + (size_t)tok[bt] * D;
        for (int c = c0; c < c1; c++) e[c] += g[c];
        if (dwpe) {
            real *p = dwpe + (size_t)(bt % T) * D;
            for (int c = c0; c < c1; c++) p[c] += g[c];
        }
    }
}

void encoder_backward(real *dwte, real *dwpe, const real *dout, const int32_t *tok, int B, int T, int D) {
    // Scatter-add in row order; threads own column ranges, so the sum order is fixed.
    // (column blocks handed out dynamically: a column's sum does not depend on who owns it.) Blocks
    // of 32 columns, 128 bytes: the CPU fetches cache lines in aligned pairs, and with blocks of 16
    // two threads shared every pair of dout and dwte (2 threads: 1.8% of the reference step, 1.1%
    // on one thread).
#pragma omp parallel for schedule(dynamic, 1)
    for (int c0 = 0; c0 < D; c0 += 32) encoder_bwd_cols(dwte, dwpe, dout, tok, B * T, T, D, c0, imin(D, c0 + 32));
}

// ---- norms -----------------------------------------------------------------------------------

// Norm parameter gradients (dw, db: sums over rows) in fixed chunks of NORM_CHUNK rows: each
// chunk's partial sums go to a per-call scratch, then are added in chunk order. The same bits for
// any thread count, and one pass over x and dout instead of two (the second pass, a channel-range
// loop that reloaded dw/db every row, was 10% of the reference step).
enum { NORM_CHUNK = 32 };
static _Thread_local real *norm_part;
static _Thread_local size_t norm_part_cap;
static real *norm_scratch(size_t n) {
    if (n > norm_part_cap) {
        if (!norm_part) scratch_arm();
        norm_part = grow_aligned(norm_part, n, sizeof(real));
        norm_part_cap = norm_part ? n : 0;
    }
    return norm_part;
}

// dst[c] += sum over chunks k (in order) of part[k*stride + c], c < n.
RB_CLONES static void chunk_reduce(real *restrict dst, const real *restrict part, size_t stride, int nch, int n) {
    for (int c0 = 0; c0 < n; c0 += 64) {
        int w = n - c0 < 64 ? n - c0 : 64;
        real acc[64] = {0};
        for (int k = 0; k < nch; k++)
            for (int c = 0; c < w; c++) acc[c] += part[(size_t)k * stride + c0 + c];
        for (int c = 0; c < w; c++) dst[c0 + c] += acc[c];
    }
}

// Rows [r0, r1) of layernorm forward; with f != NULL the input is x + f (the residual add of the
// sub-layer before, fused), stored to y.
RB_CLONES static void ln_fwd_rows(real *restrict out, real *restrict y, real *restrict mean, real *restrict rstd,
                                  const real *restrict x0, const real *restrict f, const real *restrict w,
                                  const real *restrict b, int r0, int r1, int D) {
    for (int n = r0; n < r1; n++) {
        const real *x = x0 + (size_t)n * D;
        if (f) {
            real *yr = y + (size_t)n * D;
            const real *fr = f + (size_t)n * D;
            for (int c = 0; c < D; c++) yr[c] = x[c] + fr[c];
            x = yr;
        }
        real *o = out + (size_t)n * D;
        real m = row_sum(x, D) / D, v = row_sumsq_centered(x, m, D) / D;
        real s = (real)(1 / sqrt((double)v + LN_EPS));
        for (int c = 0; c < D; c++) o[c] = (x[c] - m) * s * w[c] + b[c];
        mean[n] = m;
        rstd[n] = s;
    }
}

void layernorm_forward(real *out, real *mean, real *rstd, const real *inp, const real *w, const real *b,
                       int N, int D) {
    residual_layernorm_forward(out, NULL, mean, rstd, inp, NULL, w, b, N, D);
}

void residual_layernorm_forward(real *out, real *y, real *mean, real *rstd, const real *x, const real *f,
                                const real *w, const real *b, int N, int D) {
    int nch = (N + NORM_CHUNK - 1) / NORM_CHUNK;
#pragma omp parallel for schedule(dynamic, 8)
    for (int k = 0; k < nch; k++)
        ln_fwd_rows(out, y, mean, rstd, x, f, w, b, k * NORM_CHUNK, imin(N, (k + 1) * NORM_CHUNK), D);
}

// Rows [r0, r1) of layernorm backward: dinp +=, and this chunk's dw, db partials (overwritten).
RB_CLONES static void ln_bwd_rows(real *restrict dinp, real *restrict pw, real *restrict pb, const real *restrict dout,
                                  const real *restrict inp, const real *restrict w, const real *restrict mean,
                                  const real *restrict rstd, int r0, int r1, int D) {
    for (int c = 0; c < D; c++) pw[c] = pb[c] = 0;
    for (int n = r0; n < r1; n++) {
        const real *x = inp + (size_t)n * D, *g = dout + (size_t)n * D;
        real *dx = dinp + (size_t)n * D, m = mean[n], s = rstd[n];
        real dnm, dnxm;  // mean of dnorm = w g, mean of dnorm * xhat
        row_dot2(w, g, x, m, D, &dnm, &dnxm);
        dnm /= D;
        dnxm *= s / D;
        for (int c = 0; c < D; c++) {
            real xh = (x[c] - m) * s;
            dx[c] += (w[c] * g[c] - dnm - xh * dnxm) * s;
            pw[c] += g[c] * xh;
            pb[c] += g[c];
        }
    }
}

void layernorm_backward(real *dinp, real *dw, real *db, const real *dout, const real *inp, const real *w,
                        const real *mean, const real *rstd, int N, int D) {
    int nch = (N + NORM_CHUNK - 1) / NORM_CHUNK;
    real *part = norm_scratch((size_t)nch * 2 * D);
    if (part) {
#pragma omp parallel
        {
#pragma omp for schedule(dynamic, 8)
            for (int k = 0; k < nch; k++)
                ln_bwd_rows(dinp, part + (size_t)k * 2 * D, part + (size_t)k * 2 * D + D, dout, inp, w, mean, rstd,
                            k * NORM_CHUNK, imin(N, (k + 1) * NORM_CHUNK), D);
            // [dw | db] columns of the partials, in blocks of 16 (each column summed in chunk order)
#pragma omp for schedule(dynamic, 1)
            for (int c0 = 0; c0 < 2 * D; c0 += 16) {
                int c1 = imin(2 * D, c0 + 16);
                if (c0 < D) chunk_reduce(dw + c0, part + c0, 2 * (size_t)D, nch, imin(c1, D) - c0);
                if (c1 > D) chunk_reduce(db + imax(c0, D) - D, part + imax(c0, D), 2 * (size_t)D, nch, c1 - imax(c0, D));
            }
        }
        return;
    }
    // out of memory for the partials: the same sums, one chunk at a time on this thread
    for (int k = 0; k < nch; k++) {
        int r0 = k * NORM_CHUNK, r1 = imin(N, (k + 1) * NORM_CHUNK);
        for (int n = r0; n < r1; n++) {
            const real *x = inp + (size_t)n * D, *g = dout + (size_t)n * D;
            real *dx = dinp + (size_t)n * D, m = mean[n], s = rstd[n], dnm, dnxm;
            row_dot2(w, g, x, m, D, &dnm, &dnxm);
            dnm /= D;
            dnxm *= s / D;
            for (int c = 0; c < D; c++) dx[c] += (w[c] * g[c] - dnm - (x[c] - m) * s * dnxm) * s;
        }
    }
    for (int c = 0; c < D; c++) {  // per channel: chunk partials in chunk order, as above
        real sw = 0, sb = 0;
        for (int k = 0; k < nch; k++) {
            real qw = 0, qb = 0;
            for (int n = k * NORM_CHUNK; n < imin(N, (k + 1) * NORM_CHUNK); n++) {
                real g = dout[(size_t)n * D + c];
                qw += g * ((inp[(size_t)n * D + c] - mean[n]) * rstd[n]);
                qb += g;
            }
            sw += qw;
            sb += qb;
        }
        dw[c] += sw;
        db[c] += sb;
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

// dst[c] += sum over rows n (in order) of x[n*ld + c], c < w (bias gradients: each thread owns a
// column range, so the sums do not depend on the thread count). Column blocks of 64 kept in a
// local accumulator: the loop that reloaded db[c] every row did not vectorise.
RB_CLONES static void col_sums_acc(real *restrict dst, const real *restrict x, int ld, int N, int w) {
    for (int c0 = 0; c0 < w; c0 += 64) {
        int cw = w - c0 < 64 ? w - c0 : 64;
        real acc[64] = {0};
        for (int n = 0; n < N; n++) {
            const real *r = x + (size_t)n * ld + c0;
            for (int c = 0; c < cw; c++) acc[c] += r[c];
        }
        for (int c = 0; c < cw; c++) dst[c0 + c] += acc[c];
    }
}

void linear_forward(real *out, const real *inp, const real *w, const real *b, int N, int C, int OC) {
    // out = 1 * b + inp w^T: the bias is the GEMM's beta term (row stride 0), read in its epilogue
    if (b) matmul_par_ci(out, b, 0, inp, w, N, OC, C, 0, 1, 1);
    else matmul_par(out, inp, w, N, OC, C, 0, 1, 0);
}

void linear_backward(real *dinp, real *dw, real *db, const real *dout, const real *inp, const real *w,
                     int N, int C, int OC, int acc_dinp) {
    linear_backward_add(dinp, acc_dinp ? dinp : NULL, dw, db, dout, inp, w, N, C, OC);
}

void linear_backward_add(real *dinp, const real *dinit, real *dw, real *db, const real *dout, const real *inp,
                         const real *w, int N, int C, int OC) {
    if (dinp) matmul_par_ci(dinp, dinit ? dinit : dinp, C, dout, w, N, C, OC, 0, 0, dinit ? 1 : 0);  // [N,OC] @ [OC,C]
    matmul_par(dw, dout, inp, OC, C, N, 1, 0, 1);                             // [OC,N] @ [N,C]
    if (db) {
#pragma omp parallel for schedule(dynamic, 1)
        for (int c0 = 0; c0 < OC; c0 += 16) col_sums_acc(db + c0, dout + c0, OC, N, imin(OC, c0 + 16) - c0);
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

// One row of the softmax cross-entropy: p = softmax(z) (exp written straight to p, 16 fixed lanes
// for the max and the sum); returns log(sum) and the max through *mx.
RB_CLONES static real ce_row(real *restrict p, const real *restrict z, int V, real *mxo) {
    real lane[LANES];
    for (int j = 0; j < LANES; j++) lane[j] = z[0];
    int v = 0;
    for (; v + LANES <= V; v += LANES)
        for (int j = 0; j < LANES; j++) lane[j] = z[v + j] > lane[j] ? z[v + j] : lane[j];
    for (; v < V; v++) lane[0] = z[v] > lane[0] ? z[v] : lane[0];
    real mx = lane[0];
    for (int j = 1; j < LANES; j++) mx = lane[j] > mx ? lane[j] : mx;
    for (int j = 0; j < LANES; j++) lane[j] = 0;
    for (v = 0; v + LANES <= V; v += LANES)
        for (int j = 0; j < LANES; j++) {
            real e = rexp(z[v + j] - mx);
            p[v + j] = e;
            lane[j] += e;
        }
    for (; v < V; v++) {
        real e = rexp(z[v] - mx);
        p[v] = e;
        lane[0] += e;
    }
    real s = lanes_total(lane), inv = 1 / s;
    for (v = 0; v < V; v++) p[v] *= inv;
    *mxo = mx;
    return s;
}

double crossentropy_forward(real *probs, real *losses, const real *logits, const int32_t *tgt, int N, int V) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const real *z = logits + (size_t)n * V;
        real mx, s = ce_row(probs + (size_t)n * V, z, V, &mx);
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

// The kernel transposed to [K, D] (tap-major: the channel loops below vectorise), in a per-thread
// scratch of the calling thread (grown on first use).
static _Thread_local real *conv_wt;
static _Thread_local size_t conv_wt_cap;
static const real *conv_wt_of(const real *w, int D, int K) {
    size_t n = (size_t)D * K;
    if (n > conv_wt_cap) {
        if (!conv_wt) scratch_arm();
        conv_wt = grow_aligned(conv_wt, n, sizeof(real));
        conv_wt_cap = conv_wt ? n : 0;
        if (!conv_wt) return NULL;
    }
    for (int c = 0; c < D; c++)
        for (int j = 0; j < K; j++) conv_wt[(size_t)j * D + c] = w[(size_t)c * K + j];
    return conv_wt;
}

// Rows [r0, r1): out = b + sum_j w_j x_{t-(K-1)+j} (taps in order), and with up != NULL also
// gout = out * up + inp (BaseConv's gate and skip, fused). w: [D, K], or wt: [K, D].
RB_CLONES static void sconv_fwd_rows(real *restrict out, real *restrict gout, const real *restrict inp,
                                     const real *restrict w, const real *restrict wt, const real *restrict b,
                                     const real *restrict up, int r0, int r1, int T, int D, int K) {
    for (int bt = r0; bt < r1; bt++) {
        int t = bt % T;
        real *o = out + (size_t)bt * D;
        for (int c = 0; c < D; c++) o[c] = b[c];
        for (int j = 0; j < K; j++) {
            int s = t - (K - 1) + j;
            if (s < 0) continue;
            const real *x = inp + (size_t)(bt - t + s) * D;
            if (wt)
                for (int c = 0; c < D; c++) o[c] += wt[(size_t)j * D + c] * x[c];
            else
                for (int c = 0; c < D; c++) o[c] += w[(size_t)c * K + j] * x[c];
        }
        if (up) {
            const real *u = up + (size_t)bt * D, *x = inp + (size_t)bt * D;
            real *go = gout + (size_t)bt * D;
            for (int c = 0; c < D; c++) go[c] = o[c] * u[c] + x[c];
        }
    }
}

const real *shortconv_wt(const real *w, int D, int K) { return conv_wt_of(w, D, K); }

void shortconv_gated_forward_rows(real *out, real *gout, const real *inp, const real *w, const real *wt,
                                  const real *b, const real *up, int r0, int r1, int T, int D, int K) {
    sconv_fwd_rows(out, gout, inp, w, wt, b, up, r0, r1, T, D, K);
}

void shortconv_gated_forward(real *out, real *gout, const real *inp, const real *w, const real *b, const real *up,
                             int B, int T, int D, int K) {
    const real *wt = conv_wt_of(w, D, K);  // NULL (out of memory): the strided loop
    int BT = B * T, nch = (BT + 31) / 32;
#pragma omp parallel for schedule(dynamic, 8)
    for (int k = 0; k < nch; k++) sconv_fwd_rows(out, gout, inp, w, wt, b, up, k * 32, imin(BT, k * 32 + 32), T, D, K);
}

void shortconv_forward(real *out, const real *inp, const real *w, const real *b, int B, int T, int D, int K) {
    shortconv_gated_forward(out, NULL, inp, w, b, NULL, B, T, D, K);
}

// Rows [r0, r1) of the input gradient: dx_s += sum_j w_j g_{s+(K-1)-j}.
RB_CLONES static void sconv_bwd_rows(real *restrict dinp, const real *restrict dout, const real *restrict w,
                                     const real *restrict wt, int r0, int r1, int T, int D, int K) {
    for (int bs = r0; bs < r1; bs++) {
        int s = bs % T;
        real *dx = dinp + (size_t)bs * D;
        for (int j = 0; j < K; j++) {
            int t = s + (K - 1) - j;
            if (t >= T) continue;
            const real *g = dout + (size_t)(bs - s + t) * D;
            if (wt)
                for (int c = 0; c < D; c++) dx[c] += wt[(size_t)j * D + c] * g[c];
            else
                for (int c = 0; c < D; c++) dx[c] += w[(size_t)c * K + j] * g[c];
        }
    }
}

// Kernel/bias gradients of channels [c0, c1): rows summed in order; taps accumulated
// channel-contiguous (acc[j][c]) so the inner loop vectorises, then stored.
RB_CLONES static void sconv_bwd_w(real *restrict dw, real *restrict db, const real *restrict dout,
                                  const real *restrict inp, int BT, int T, int D, int K, int c0, int c1) {
    enum { CB = 256, KMAX = 8 };
    real acc[KMAX + 1][CB];
    for (int cb = c0; cb < c1 && K <= KMAX; cb += CB) {
        int ce = cb + CB < c1 ? cb + CB : c1, w = ce - cb;
        for (int j = 0; j <= K; j++) memset(acc[j], 0, w * sizeof(real));
        for (int bt = 0; bt < BT; bt++) {
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
        for (int bt = 0; bt < BT; bt++) {
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

void shortconv_backward_rows(real *dinp, const real *dout, const real *w, const real *wt, int r0, int r1, int T, int D,
                             int K) {
    sconv_bwd_rows(dinp, dout, w, wt, r0, r1, T, D, K);
}

void shortconv_backward(real *dinp, real *dw, real *db, const real *dout, const real *inp, const real *w,
                        int B, int T, int D, int K) {
    const real *wt = conv_wt_of(w, D, K);
    int BT = B * T, nch = (BT + 31) / 32;
#pragma omp parallel
    {
#pragma omp for schedule(dynamic, 8) nowait
        for (int k = 0; k < nch; k++) sconv_bwd_rows(dinp, dout, w, wt, k * 32, imin(BT, k * 32 + 32), T, D, K);
#pragma omp for schedule(dynamic, 1)
        for (int c0 = 0; c0 < D; c0 += 16) sconv_bwd_w(dw, db, dout, inp, BT, T, D, K, c0, imin(D, c0 + 16));
    }
}

// ---- multi-head causal softmax attention core ------------------------------------------------
// Rows are processed in blocks of MHA_TB queries; a block only touches the keys its rows can see
// ([t0 - W + 1, t1)), which skips the masked upper triangle (and everything outside a window).

#define MHA_TB 32

// Rows of P and dP have a padded stride (mha_ldp(n) >= n + 16): the row loops below run whole
// 16-lane blocks past the last visible key, so they vectorise without a scalar tail.
static inline int mha_ldp(int n) { return (n + 31) & ~15; }
size_t mha_scratch_floats(int Tmax) { return 2 * (size_t)MHA_TB * (size_t)mha_ldp(Tmax); }

static inline int head_window(const int *window, int h) {
    return window && window[h] > 0 ? window[h] : INT_MAX / 2;
}

// Row i's view (both forms below): query t, visible keys a0..a1, its P row and scores (K's row when
// kept, else P's), len visible, R rounded up to whole lanes (a0 + R <= n + 15 < ldp).
#define MHA_ROW(i)                                                                          \
    int t = t0 + (i), a0 = imax(lo, t - W + 1) - lo, a1 = t - lo;                            \
    real *row = P + (size_t)(i) * ldp, *x = row + a0;                                        \
    real *krow = K ? K + (size_t)(i) * ldp : row, *xs = krow + a0;                           \
    int len = a1 - a0 + 1, R = (len + LANES - 1) & ~(LANES - 1);                             \
    (void)x; (void)xs; (void)R
// ... and its keys before a0 zeroed, the pad past the visible ones set to -inf for the max
#define MHA_ROW_PAD()                                                                       \
    for (int a = 0; a < a0; a++) row[a] = krow[a] = 0;                                       \
    for (int a = len; a < R; a++) xs[a] = -INFINITY

// The rows of one block of P (row stride ldp), in place, one cloned call per block. Row i is query
// t = t0 + i; visible keys are a0..a1 (a = key - lo); the rest of the row (to n) is set to 0.
// Forward (lse_out): softmax, lse_out[t] = log-sum-exp. Backward (lse_in): exp(row - lse_in[t]),
// the probabilities of the forward. Forward with K (the kept rows, same stride): the scores are
// read from K, the softmax goes to P and K gets exp(s - lse), the backward's probabilities (the
// same operations as a backward call on K: the same bits; one pass fewer than a copy and two calls).
// Max and sum in 16 fixed lanes over whole blocks: the pad past the visible keys is set to -inf
// first and left out of the sum (a select, not a branch).
RB_CLONES static void mha_rows_softmax(real *P, int ldp, real *lse_out, const real *lse_in, real *K, int t0, int tb,
                                       int lo, int n, int W) {
#ifdef RB_EXP16
    // Forward in two passes over the rows: max, exp and sum of every row, then 1/sum, log and the
    // rest, so that the rows' dependency chains (max -> exp -> sum -> divide, log -> exp) overlap
    // (forward core 2-4% faster, one thread). The same operations on every element: the same bits.
    // The pad lanes are stored as exact zeros: exp of the -inf pad is clamped to exp(-87), and that
    // times 1/sum is subnormal, which the FPU handles in microcode; the pad holds nothing that is
    // used (the zeros below overwrite it inside n). Forward core 3.3 -> 2.8 ms (64 sequences).
    real mxs[MHA_TB], sums[MHA_TB];
    const rvmask16 iota = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    const rvec16 zero = {0};
    for (int i = 0; i < tb; i++) {
        MHA_ROW(i);
        MHA_ROW_PAD();
        if (!lse_out) {
            real l = lse_in[t];
            for (int a = 0; a < R; a += LANES) rv_store(x + a, rv_sel(iota + a < len, rb_exp16(rv_load(x + a) - l), zero));
            for (int a = a1 + 1; a < n; a++) row[a] = 0;  // the pad inside the n keys back to 0
            continue;
        }
        rvec16 lm = rv_load(xs);
        for (int a = LANES; a < R; a += LANES) {
            rvec16 v = rv_load(xs + a);
            lm = rv_sel(v > lm, v, lm);
        }
        real mx = lm[0];
        for (int j = 1; j < LANES; j++) mx = lm[j] > mx ? lm[j] : mx;
        rvec16 lane = {0};
        for (int a = 0; a < R; a += LANES) {
            rvec16 e = rv_sel(iota + a < len, rb_exp16(rv_load(xs + a) - mx), zero);
            rv_store(x + a, e);
            lane += e;
        }
        mxs[i] = mx;
        sums[i] = rv_sum(lane);
    }
    if (!lse_out) return;
    for (int i = 0; i < tb; i++) {
        MHA_ROW(i);
        real sum = sums[i], inv = 1 / sum;
        for (int a = 0; a < R; a += LANES) rv_store(x + a, rv_load(x + a) * inv);
        real l = lse_out[t] = mxs[i] + (real)log((double)sum);
        if (K)
            for (int a = 0; a < R; a += LANES)
                rv_store(xs + a, rv_sel(iota + a < len, rb_exp16(rv_load(xs + a) - l), zero));
        for (int a = a1 + 1; a < n; a++) row[a] = krow[a] = 0;  // the pad inside the n keys back to 0
    }
#else
    for (int i = 0; i < tb; i++) {
        MHA_ROW(i);
        MHA_ROW_PAD();
        if (!lse_out) {
            real l = lse_in[t];
            for (int a = 0; a < R; a++) x[a] = rexp(x[a] - l);
        } else {
            rvec16 lm = rv_load(xs);
            for (int a = LANES; a < R; a += LANES) {
                rvec16 v = rv_load(xs + a);
                rvmask16 gt = v > lm;  // select by bits (C has no vector ?:)
                lm = (rvec16)(((rvmask16)v & gt) | ((rvmask16)lm & ~gt));
            }
            real mx = lm[0];
            for (int j = 1; j < LANES; j++) mx = lm[j] > mx ? lm[j] : mx;
            real lane[LANES] = {0};
            for (int a = 0; a < R; a += LANES)
                for (int j = 0; j < LANES; j++) {
                    real e = rexp(xs[a + j] - mx);
                    x[a + j] = e;
                    lane[j] += a + j < len ? e : 0;
                }
            real sum = lanes_total(lane), inv = 1 / sum;
            for (int a = 0; a < R; a++) x[a] *= inv;
            real l = lse_out[t] = mx + (real)log((double)sum);
            if (K)
                for (int a = 0; a < R; a++) xs[a] = rexp(xs[a] - l);
        }
        for (int a = a1 + 1; a < n; a++) row[a] = krow[a] = 0;  // the pad inside the n keys back to 0
    }
#endif
}

// g = p (g - sum(p g)) over the tb rows (keys c0..c1, stride ldp) of one sub-block (softmax
// backward); the sum in 16 fixed lanes by key index (a serial sum was a dependency chain of n adds
// per row). Lanes from c0 rounded down: the same lanes as over the whole row, the keys left out
// adding p g = 0. Columns outside c0..c1 may hold anything: they are loaded but left out by a
// select, and never used after.
RB_CLONES static void mha_rows_softmax_bwd(real *restrict G, const real *restrict P, int ldp, int tb, int c0, int c1) {
    int A0 = c0 & ~(LANES - 1), R = (c1 + LANES - 1) & ~(LANES - 1);
#ifdef RB_EXP16
    // lanes in a register (the array of lanes below goes through the stack and its select ran
    // scalar: 8% of the attention core's time, 3.6% now); the columns left out are zeroed before any arithmetic
    // (stale pad values: no subnormal or NaN operands). One unsigned compare per block: c0 <= a < c1.
    const ruvec16 uiota = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    const rvec16 zero = {0};
    const unsigned span = (unsigned)(c1 - c0);
    for (int i = 0; i < tb; i++) {
        real *g = G + (size_t)i * ldp;
        const real *p = P + (size_t)i * ldp;
        rvec16 lane = {0};
        for (int a = A0; a < R; a += LANES) {
            rvmask16 in = (rvmask16)(uiota + (unsigned)(a - c0) < span);
            lane += rv_sel(in, rv_load(p + a), zero) * rv_sel(in, rv_load(g + a), zero);
        }
        real dsum = rv_sum(lane);
        for (int a = A0; a < R; a += LANES) {
            rvmask16 in = (rvmask16)(uiota + (unsigned)(a - c0) < span);
            rv_store(g + a, rv_sel(in, rv_load(p + a), zero) * (rv_sel(in, rv_load(g + a), zero) - dsum));
        }
    }
    return;
#endif
    for (int i = 0; i < tb; i++) {
        real *g = G + (size_t)i * ldp;
        const real *p = P + (size_t)i * ldp;
        real lane[LANES] = {0};
        for (int a = A0; a < R; a += LANES)
            for (int j = 0; j < LANES; j++) {
                real pg = p[a + j] * g[a + j];
                lane[j] += a + j >= c0 && a + j < c1 ? pg : 0;
            }
        real dsum = lanes_total(lane);
        for (int a = A0; a < R; a++) g[a] = p[a] * (g[a] - dsum);
    }
}


// Per-thread [2, dh, T] buffer for one head's k^T and v^T (grown on first use; OOM: NULL, and the
// callers fall back to transposed GEMMs). Transposing once per (b, h) instead of packing k^T in
// every query block's GEMM was 8% of the reference step.
static _Thread_local real *mha_tbuf;
static _Thread_local size_t mha_tcap;
static real *mha_transposed(const real *x, int ld, int T, int dh, int which) {
    size_t need = 2 * (size_t)dh * T;
    if (need > mha_tcap) {
        if (!mha_tbuf) scratch_arm();
        mha_tbuf = grow_aligned(mha_tbuf, need, sizeof(real));
        mha_tcap = mha_tbuf ? need : 0;
        if (!mha_tbuf) return NULL;
    }
    real *xt = mha_tbuf + (size_t)which * dh * T;
    int s8 = 0, c8 = 0;
#ifdef RB_TRANSPOSE8
    if (__builtin_cpu_supports("avx512f") && !(T & 15) && !(dh & 15)) {
        s8 = T;
        c8 = dh;
        for (int s0 = 0; s0 < T; s0 += 16)
            for (int c0 = 0; c0 < dh; c0 += 16)
                transpose16x16(xt + (size_t)c0 * T + s0, T, x + (size_t)s0 * ld + c0, ld);
    } else if (__builtin_cpu_supports("avx2")) {  // full 8 x 8 blocks in registers (was 4% of the reference step element by element)
        s8 = T & ~7;
        c8 = dh & ~7;
        for (int s0 = 0; s0 < s8; s0 += 8)
            for (int c0 = 0; c0 < c8; c0 += 8)
                transpose8x8(xt + (size_t)c0 * T + s0, T, x + (size_t)s0 * ld + c0, ld);
    }
#endif
    // the rest (all of it without AVX2): columns c8.. of rows < s8, then rows s8.. (16 rows at a
    // time, reads stay in cache lines)
    for (int s0 = 0; s0 < s8; s0 += 16)
        for (int c = c8; c < dh; c++)
            for (int s = s0; s < s0 + 16 && s < s8; s++) xt[(size_t)c * T + s] = x[(size_t)s * ld + c];
    for (int s0 = s8; s0 < T; s0 += 16)
        for (int c = 0; c < dh; c++)
            for (int s = s0; s < s0 + 16 && s < T; s++) xt[(size_t)c * T + s] = x[(size_t)s * ld + c];
    return xt;
}

static void scratch_free(void *unused) {
    free(conv_wt);
    conv_wt = NULL;
    conv_wt_cap = 0;
    free(norm_part);
    norm_part = NULL;
    norm_part_cap = 0;
    free(mha_tbuf);
    mha_tbuf = NULL;
    mha_tcap = 0;
#ifdef RB_OWN_SGEMM
    rb_amx_free_scratch();
    free(gemm_pack);
    free(gemm_part);
    free(par_pack);
    gemm_pack = gemm_part = par_pack = NULL;
    gemm_pack_cap = gemm_part_cap = par_pack_cap = 0;
#endif
}

// The diagonal of a block: row t sees keys up to t only, so the block's MHA_TB rows are split into
// sub-blocks of MHA_SB rows, each multiplied against only the keys its rows can see (c0..c1 below).
// The keys left out have P = 0 (and dS = 0 * finite): a skipped term fma(0, x, acc) == acc, since
// acc is never -0 (it starts at +0, and x + y rounds an exact 0 to +0). Every GEMM element's chain
// (the comment above sgemm_scalar) keeps its nonzero terms in order, so the bits are those of whole
// blocks. The block size stays MHA_TB: dK and dV add one partial per block (beta 1).
#define MHA_SB 16
#define MHA_NSB (MHA_TB / MHA_SB)

// Sub-block s of the block at t0: rows r0[s]..r0[s+1] (block-relative), visible keys c0[s]..c1[s]
// (relative to lo). Both ends grow with s. Returns the number of sub-blocks.
static int mha_subs(int *r0, int *c0, int *c1, int t0, int tb, int lo, int W) {
    int S = (tb + MHA_SB - 1) / MHA_SB;
    for (int s = 0; s < S; s++) {
        r0[s] = s * MHA_SB;
        int r1 = imin(tb, r0[s] + MHA_SB);
        c0[s] = imax(lo, t0 + r0[s] - W + 1) - lo;
        c1[s] = t0 + r1 - lo;
    }
    r0[S] = tb;
    return S;
}

// alpha q k^T (P: the scores) or dO v^T (dP) [tb, n] (row stride ldp; keys lo..), for the
// sub-blocks' visible keys only. kb: keys lo.. as rows (stride ld), or kt != NULL: the same keys
// transposed, [dh] rows of stride ldt (a plain GEMM, no per-block packing of k^T).
static void mha_block_scores(real *P, int ldp, const real *qb, int ldq, const real *kb, int ld, const real *kt, int ldt,
                             const int *r0, const int *c0, const int *c1, int S, int dh, real alpha) {
    for (int s = 0; s < S; s++) {
        real *Ps = P + (size_t)r0[s] * ldp + c0[s];
        const real *qs = qb + (size_t)r0[s] * ldq;
        int m = r0[s + 1] - r0[s], n = c1[s] - c0[s];
        if (kt) gemm_ld(Ps, ldp, qs, ldq, kt + c0[s], ldt, m, n, dh, 0, 0, alpha, 0);
        else gemm_ld(Ps, ldp, qs, ldq, kb + (size_t)c0[s] * ld, ld, m, n, dh, 0, 1, alpha, 0);
    }
}

// Floats of one (sequence, head)'s kept probabilities: its blocks' [tb, ldp(n)] in order.
static size_t mha_keep_head(int T, int W) {
    size_t f = 0;
    for (int t0 = 0; t0 < T; t0 += MHA_TB) {
        int tb = imin(MHA_TB, T - t0), lo = imax(0, t0 - W + 1);
        f += (size_t)tb * mha_ldp(t0 + tb - lo);
    }
    return f;
}
size_t mha_keep_floats(const int *window, int T, int H) {
    size_t f = 0;
    for (int h = 0; h < H; h++) f += mha_keep_head(T, head_window(window, h));
    return f;
}

// One (sequence, head): q, k, v, out point at the sequence's row 0, head h's columns already
// applied; lse [T]; P: one scratch region of mha_scratch_floats(T). keep (NULL: none): this head's
// mha_keep_head floats; the probabilities as backward computes them, exp(s - lse), go there.
static void mha_fwd_one(real *out, int ldo, real *lse, real *keep, const real *q, const real *k, const real *v, int ld,
                        int W, int T, int dh, real *P) {
    const real scale = (real)(1 / sqrt((double)dh));
    real *kt = mha_transposed(k, ld, T, dh, 0);
    int r0[MHA_NSB + 1], c0[MHA_NSB], c1[MHA_NSB];
    for (int t0 = 0; t0 < T; t0 += MHA_TB) {
        int tb = imin(MHA_TB, T - t0), lo = imax(0, t0 - W + 1), n = t0 + tb - lo, ldp = mha_ldp(n);
        int S = mha_subs(r0, c0, c1, t0, tb, lo, W);
        const real *qb = q + (size_t)t0 * ld;
        real *Ps = keep ? keep : P;  // scores
        mha_block_scores(Ps, ldp, qb, ld, k + (size_t)lo * ld, ld, kt ? kt + lo : NULL, T, r0, c0, c1, S, dh, scale);
        for (int s = 0; s < S; s++) {
            int m = r0[s + 1] - r0[s];
            size_t ro = (size_t)r0[s] * ldp;
            mha_rows_softmax(P + ro, ldp, lse, NULL, keep ? keep + ro : NULL, t0 + r0[s], m, lo, c1[s], W);
            gemm_ld(out + (size_t)(t0 + r0[s]) * ldo, ldo, P + ro + c0[s], ldp, v + (size_t)(lo + c0[s]) * ld, ld, m, dh,
                    c1[s] - c0[s], 0, 0, 1, 0);
        }
        if (keep) keep += (size_t)tb * ldp;
    }
}

// Backward of one (sequence, head), pointers as above; keep: what the forward kept there (no
// scores GEMM, no exp, no k^T), or NULL: recompute them. Key rows lo..t0-1 of a block were written
// by an earlier block (beta 1); rows t0.. are first written here (beta 0): no zeroing pass. dK, dV:
// key columns in segments [a, e) seen by the same sub-blocks sa..sb-1 (contiguous, since both
// ends of the sub-blocks' key ranges grow), one GEMM over those sub-blocks' rows per segment.
static void mha_bwd_one(real *dq, real *dk, real *dv, int ldd, const real *dout, int ldo, const real *lse,
                        const real *keep, const real *q, const real *k, const real *v, int ld, int W, int T, int dh,
                        real *P) {
    const real scale = (real)(1 / sqrt((double)dh));
    real *dP = P + (size_t)MHA_TB * mha_ldp(T);
    real *kt = keep ? NULL : mha_transposed(k, ld, T, dh, 0);
    real *vt = kt || keep ? mha_transposed(v, ld, T, dh, 1) : NULL;
    int r0[MHA_NSB + 1], c0[MHA_NSB], c1[MHA_NSB];
    for (int t0 = 0; t0 < T; t0 += MHA_TB) {
        int tb = imin(MHA_TB, T - t0), lo = imax(0, t0 - W + 1), n = t0 + tb - lo, ldp = mha_ldp(n), old = t0 - lo;
        int S = mha_subs(r0, c0, c1, t0, tb, lo, W);
        const real *qb = q + (size_t)t0 * ld, *kb = k + (size_t)lo * ld, *vb = v + (size_t)lo * ld;
        const real *gb = dout + (size_t)t0 * ldo;
        real *dvb = dv + (size_t)lo * ldd, *dkb = dk + (size_t)lo * ldd;
        const real *Pb = keep ? keep : P;
        if (!keep) mha_block_scores(P, ldp, qb, ld, kb, ld, kt ? kt + lo : NULL, T, r0, c0, c1, S, dh, scale);
        mha_block_scores(dP, ldp, gb, ldo, vb, ld, vt ? vt + lo : NULL, T, r0, c0, c1, S, dh, 1);  // dP = dO V^T
        for (int s = 0; s < S; s++) {
            int m = r0[s + 1] - r0[s];
            size_t ro = (size_t)r0[s] * ldp;
            if (!keep) mha_rows_softmax(P + ro, ldp, NULL, lse, NULL, t0 + r0[s], m, lo, c1[s], W);
            mha_rows_softmax_bwd(dP + ro, Pb + ro, ldp, m, c0[s], c1[s]);  // dS = P (dP - rowsum(P dP))
            gemm_ld(dq + (size_t)(t0 + r0[s]) * ldd, ldd, dP + ro + c0[s], ldp, kb + (size_t)c0[s] * ld, ld, m, dh,
                    c1[s] - c0[s], 0, 0, scale, 0);  // dQ = s dS K
        }
        for (int a = 0, sa = 0; a < n;) {
            while (c1[sa] <= a) sa++;
            int sb = sa + 1;
            while (sb < S && c0[sb] <= a) sb++;
            int e = imin(n, c1[sa]);
            if (sb < S) e = imin(e, c0[sb]);
            if (a < old) e = imin(e, old);
            int i0 = r0[sa], m = r0[sb] - i0;
            real beta = a < old ? 1 : 0;
            // dV += P^T dO, dK += s dS^T Q
            gemm_ld(dvb + (size_t)a * ldd, ldd, Pb + (size_t)i0 * ldp + a, ldp, gb + (size_t)i0 * ldo, ldo, e - a, dh, m,
                    1, 0, 1, beta);
            gemm_ld(dkb + (size_t)a * ldd, ldd, dP + (size_t)i0 * ldp + a, ldp, qb + (size_t)i0 * ld, ld, e - a, dh, m,
                    1, 0, scale, beta);
            a = e;
        }
        if (keep) keep += (size_t)tb * ldp;
    }
}

// Head h's keep region inside a sequence's (heads in order), or NULL.
static real *keep_at(real *keep, const int *window, int T, int h) {
    if (!keep) return NULL;
    for (int j = 0; j < h; j++) keep += mha_keep_head(T, head_window(window, j));
    return keep;
}

void mha_forward(real *out, int ldo, real *lse, real *keep, const real *q, const real *k, const real *v, int ld,
                 const int *window, int B, int T, int H, int dh, real *scratch, int nscratch) {
    const size_t sstride = mha_scratch_floats(T), kstride = mha_keep_floats(window, T, H);
    int nt = imin(nscratch, omp_get_max_threads());
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
    for (int bh = 0; bh < B * H; bh++) {
        int b = bh / H, h = bh % H;
        size_t r = (size_t)b * T;
        mha_fwd_one(out + r * ldo + h * dh, ldo, lse + (size_t)bh * T, keep_at(keep ? keep + b * kstride : NULL, window, T, h),
                    q + r * ld + h * dh, k + r * ld + h * dh, v + r * ld + h * dh, ld, head_window(window, h), T, dh,
                    scratch + sstride * omp_get_thread_num());
    }
}

void mha_backward(real *dq, real *dk, real *dv, int ldd, const real *dout, int ldo, const real *lse, const real *keep,
                  const real *q, const real *k, const real *v, int ld, const int *window, int B, int T,
                  int H, int dh, real *scratch, int nscratch) {
    const size_t sstride = mha_scratch_floats(T), kstride = mha_keep_floats(window, T, H);
    int nt = imin(nscratch, omp_get_max_threads());
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
    for (int bh = 0; bh < B * H; bh++) {
        int b = bh / H, h = bh % H;
        size_t r = (size_t)b * T, c = (size_t)h * dh;
        mha_bwd_one(dq + r * ldd + c, dk + r * ldd + c, dv + r * ldd + c, ldd, dout + r * ldo + c, ldo,
                    lse + (size_t)bh * T, keep_at(keep ? (real *)keep + b * kstride : NULL, window, T, h),
                    q + r * ld + c, k + r * ld + c, v + r * ld + c, ld, head_window(window, h), T, dh,
                    scratch + sstride * omp_get_thread_num());
    }
}

void mha_forward_seq(real *out, int ldo, real *lse, real *keep, const real *q, const real *k, const real *v, int ld,
                     const int *window, int T, int H, int dh, real *P) {
    for (int h = 0; h < H; h++) {
        int W = head_window(window, h);
        mha_fwd_one(out + h * dh, ldo, lse + (size_t)h * T, keep, q + h * dh, k + h * dh, v + h * dh, ld, W, T, dh, P);
        if (keep) keep += mha_keep_head(T, W);
    }
}

void mha_backward_seq(real *dq, real *dk, real *dv, int ldd, const real *dout, int ldo, const real *lse,
                      const real *keep, const real *q, const real *k, const real *v, int ld, const int *window, int T,
                      int H, int dh, real *P) {
    for (int h = 0; h < H; h++) {
        int W = head_window(window, h);
        mha_bwd_one(dq + h * dh, dk + h * dh, dv + h * dh, ldd, dout + h * dh, ldo, lse + (size_t)h * T, keep, q + h * dh,
                    k + h * dh, v + h * dh, ld, W, T, dh, P);
        if (keep) keep += mha_keep_head(T, W);
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
