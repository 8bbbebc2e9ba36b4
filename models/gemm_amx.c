// gemm_amx.c — the CPU's bf16 GEMM (--precision bf16 on the cpu backend): C = beta Ci + alpha op(A) op(B)
// with op(A) and op(B) rounded to bfloat16 (round to nearest even) and fp32 accumulation in Intel AMX
// tiles (TDPBF16PS). Depends on gemm_amx.h; called by layers.c's gemm_ci when the bf16 precision is on.
//
// Why: the fp32 step is bound by its GEMMs, and those run at this kind of core's fp32 FMA peak
// (~75 GFLOP/s a core, measured by `recallbench bench`); AMX multiplies bf16 tiles at ~1 TFLOP/s a core
// (measured here: 994 GFLOP/s in a loop of TDPBF16PS on the dev machine's Xeon). The same mixed precision
// as --precision bf16 on cuda: parameters, gradients, AdamW moments and every non-GEMM op stay fp32.
//
// Layout. op(A) [M, K] is packed into 16 x 32 bf16 tiles (1 KB: row i, 32 consecutive k), op(B) [K, N]
// into VNNI tiles of 16 k-pairs x 16 columns (row p holds (b[2p][j], b[2p+1][j]) for 16 columns j),
// zero-padded to whole tiles, in per-thread scratch grown on first use (no allocation once warm).
// C is computed in 32 x 32 blocks (4 accumulator tiles) over K in 32-deep steps, in order. Every element's
// sum therefore depends only on its row of op(A), its column of op(B) and K: the same bits for any row
// split, thread count or call shape on one CPU model (TDPBF16PS's internal order is the hardware's).
// Without AMX (AMD Zen 4, Intel Cooper Lake: AVX512-BF16 only) block_vec multiplies the same packed tiles
// with VDPBF16PS, 2x the fp32 FMA rate there; its rounding differs from the tiles' (runs record the engine).
// Packing is vectorised: rows of 16 floats converted by VCVTNE2PS2BF16, transposed cases through a 16 x 16
// transpose of 32-bit pairs (two bf16), so that packing stays small beside the multiply.
#include "gemm_amx.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if !defined(RB_DOUBLE) && defined(__x86_64__) && defined(__GNUC__) && defined(__linux__)
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#define AMX_TARGET __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512bf16")))
#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

#define VEC_TARGET __attribute__((target("avx512f,avx512bw,avx512bf16")))

static int bf16_state = -1;  // -1 not probed, 0 no bf16 GEMM, 1 AVX512-BF16 only, 2 AMX

static void probe(void) {
    unsigned a, b, c, d;
    int vec = __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b >> 16 & 1) && (b >> 30 & 1);  // AVX512F, AVX512BW
    int amx = vec && (d >> 22 & 1) && (d >> 24 & 1);                                         // AMX-BF16, AMX-TILE
    vec = vec && __get_cpuid_count(7, 1, &a, &b, &c, &d) && (a >> 5 & 1);                  // AVX512_BF16
    // Linux hands out the 8 KB tile state only on request (once per process, for all its threads).
    amx = amx && vec && syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
    // RB_BF16_ENGINE=avx512: the vector path on an AMX machine too (to test it there)
    const char *e = getenv("RB_BF16_ENGINE");
    if (amx && e && !strcmp(e, "avx512")) amx = 0;
    bf16_state = amx ? 2 : vec ? 1 : 0;
}

int rb_bf16_available(void) {
    if (bf16_state < 0) probe();
    return bf16_state > 0;
}

const char *rb_bf16_engine(void) {
    if (bf16_state < 0) probe();
    return bf16_state == 2 ? "amx-bf16" : bf16_state == 1 ? "avx512-bf16" : "none";
}

typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} TileCfg;

static _Thread_local uint16_t *pack_a, *pack_b;
static _Thread_local size_t cap_a, cap_b;

static uint16_t *grow16(uint16_t **p, size_t *cap, size_t n) {
    if (n > *cap) {
        uint16_t *q = aligned_alloc(64, (n * 2 + 63) / 64 * 64);
        if (!q) return NULL;
        free(*p);
        *p = q;
        *cap = n;
    }
    return *p;
}

// 8 tiles of 16 rows x 64 bytes: 0..3 accumulators (C 16 x 16 fp32), 4..5 A, 6..7 B.
AMX_TARGET static void tile_setup(void) {
    TileCfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int i = 0; i < 8; i++) {
        cfg.colsb[i] = 64;
        cfg.rows[i] = 16;
    }
    _tile_loadconfig(&cfg);
}

static inline __mmask16 mask16(int n) { return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? 0 : (__mmask16)((1u << n) - 1); }

// 16 floats of each of two rows (masked to n valid), as 16 32-bit pairs (bf16(x[c]), bf16(y[c])).
AMX_TARGET static inline __m512i pairs_of_rows(const float *x, const float *y, __mmask16 m) {
    __m512 vx = _mm512_maskz_loadu_ps(m, x), vy = y ? _mm512_maskz_loadu_ps(m, y) : _mm512_setzero_ps();
    __m512i both = (__m512i)_mm512_cvtne2ps_pbh(vy, vx);  // bf16: x0..x15 | y0..y15
    const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22,
                                         6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    return _mm512_permutexvar_epi16(idx, both);  // x0 y0 x1 y1 ...
}

// 32 consecutive floats (masked to n valid) as 32 bf16 in order.
AMX_TARGET static inline __m512i bf16_run32(const float *x, int n) {
    __m512 lo = _mm512_maskz_loadu_ps(mask16(n), x), hi = _mm512_maskz_loadu_ps(mask16(n - 16), x + 16);
    return (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
}

// In place: r[i] element j <-> r[j] element i, for 16 vectors of 16 32-bit elements (checked whole by
// tests/test_gemm_amx.c through the transposed packings).
AMX_TARGET static void transpose16x16(__m512i r[16]) {
    __m512i t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
        r[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
        r[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
        r[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
    }
    // then 128-bit lanes (4 x 4 blocks) change places: across vectors 4 apart, then 8 apart
    for (int i = 0; i < 8; i++) {
        int a = (i & 3) + (i >> 2) * 8, b = a + 4;
        t[a] = _mm512_shuffle_i32x4(r[a], r[b], 0x88);
        t[b] = _mm512_shuffle_i32x4(r[a], r[b], 0xDD);
    }
    for (int i = 0; i < 8; i++) {
        int a = i, b = i + 8;
        r[a] = _mm512_shuffle_i32x4(t[a], t[b], 0x88);
        r[b] = _mm512_shuffle_i32x4(t[a], t[b], 0xDD);
    }
}

// Pack op(A) [M, K] into Mb x Kb tiles of 16 x 32 bf16 (tile (ib, kb) at (ib * Kb + kb) * 512).
AMX_TARGET static void pack_a_tiles(uint16_t *Ap, const float *A, int lda, int M, int K, int ta, int Mb, int Kb) {
    for (int kb = 0; kb < Kb; kb++)      // k blocks outer: the strided (ta) reads walk rows of A in order
        for (int ib = 0; ib < Mb; ib++) {
            uint16_t *t = Ap + ((size_t)ib * Kb + kb) * 512;
            int i0 = ib * 16, k0 = kb * 32, mr = M - i0, kr = K - k0;
            if (!ta) {  // rows of op(A) are rows of A: 32 consecutive k each
                for (int r = 0; r < 16; r++)
                    _mm512_storeu_si512(t + r * 32, r < mr ? bf16_run32(A + (size_t)(i0 + r) * lda + k0, kr)
                                                           : _mm512_setzero_si512());
            } else {    // op(A)[i][k] = A[k][i]: pairs of k-rows over 16 i, then transposed
                __m512i v[16];
                __mmask16 m = mask16(mr);
                for (int p = 0; p < 16; p++) {
                    int k = k0 + 2 * p;
                    v[p] = k < K ? pairs_of_rows(A + (size_t)k * lda + i0, k + 1 < K ? A + (size_t)(k + 1) * lda + i0 : NULL, m)
                                 : _mm512_setzero_si512();
                }
                transpose16x16(v);
                for (int r = 0; r < 16; r++) _mm512_storeu_si512(t + r * 32, v[r]);
            }
        }
}

// Pack op(B) [K, N] into Nb x Kb VNNI tiles (tile (jb, kb) at (jb * Kb + kb) * 512; row p = k-pair p).
AMX_TARGET static void pack_b_tiles(uint16_t *Bp, const float *B, int ldb, int K, int N, int tb, int Nb, int Kb) {
    for (int kb = 0; kb < Kb; kb++)      // k blocks outer: B's rows (tb = 0) are read in order
        for (int jb = 0; jb < Nb; jb++) {
            uint16_t *t = Bp + ((size_t)jb * Kb + kb) * 512;
            int j0 = jb * 16, k0 = kb * 32, nr = N - j0, kr = K - k0;
            if (!tb) {  // rows of op(B) are rows of B: two k-rows interleaved over 16 columns
                __mmask16 m = mask16(nr);
                for (int p = 0; p < 16; p++) {
                    int k = k0 + 2 * p;
                    _mm512_storeu_si512(t + p * 32, k < K ? pairs_of_rows(B + (size_t)k * ldb + j0,
                                                                          k + 1 < K ? B + (size_t)(k + 1) * ldb + j0 : NULL, m)
                                                          : _mm512_setzero_si512());
                }
            } else {    // op(B)[k][j] = B[j][k]: 32 k of each column j as 16 pairs, then transposed
                __m512i v[16];
                for (int c = 0; c < 16; c++) v[c] = c < nr ? bf16_run32(B + (size_t)(j0 + c) * ldb + k0, kr) : _mm512_setzero_si512();
                transpose16x16(v);
                for (int p = 0; p < 16; p++) _mm512_storeu_si512(t + p * 32, v[p]);
            }
        }
}

// C rows i0.. (mr of them), columns j0.. (nr): beta Ci + alpha acc, acc a 16 x 16 fp32 tile in buf.
AMX_TARGET static void store_block(float *C, int ldc, const float *Ci, int ldci, const float *buf, int mr, int nr,
                                   float alpha, float beta) {
    __mmask16 m = mask16(nr);
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    for (int r = 0; r < mr && r < 16; r++) {
        __m512 y = _mm512_mul_ps(va, _mm512_loadu_ps(buf + r * 16));
        if (beta != 0) y = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m, Ci + (size_t)r * ldci), y);
        _mm512_mask_storeu_ps(C + (size_t)r * ldc, m, y);
    }
}

#define TSTEP(NA, NB)                                                                          \
    for (int kb = 0; kb < Kb; kb++) {                                                          \
        _tile_loadd(4, a0 + (size_t)kb * 512, 64);                                             \
        if (NA > 1) _tile_loadd(5, a1 + (size_t)kb * 512, 64);                                 \
        _tile_loadd(6, b0 + (size_t)kb * 512, 64);                                             \
        if (NB > 1) _tile_loadd(7, b1 + (size_t)kb * 512, 64);                                 \
        _tile_dpbf16ps(0, 4, 6);                                                               \
        if (NB > 1) _tile_dpbf16ps(1, 4, 7);                                                   \
        if (NA > 1) _tile_dpbf16ps(2, 5, 6);                                                   \
        if (NA > 1 && NB > 1) _tile_dpbf16ps(3, 5, 7);                                         \
    }

// One accumulator tile's C (and initial value): straight to/from the matrix when the tile is whole,
// else through a 16 x 16 buffer (edge tiles). In[] NULL: start from zero.
typedef struct { float *out; size_t ldo; const float *in; size_t ldi; } TileIO;

AMX_TARGET static void block(TileIO io[4], const uint16_t *a0, const uint16_t *a1, const uint16_t *b0,
                             const uint16_t *b1, int Kb, int na, int nb) {
    if (io[0].in) _tile_loadd(0, io[0].in, io[0].ldi); else _tile_zero(0);
    if (io[1].in) _tile_loadd(1, io[1].in, io[1].ldi); else _tile_zero(1);
    if (io[2].in) _tile_loadd(2, io[2].in, io[2].ldi); else _tile_zero(2);
    if (io[3].in) _tile_loadd(3, io[3].in, io[3].ldi); else _tile_zero(3);
    if (na > 1 && nb > 1) { TSTEP(2, 2) }
    else if (na > 1) { TSTEP(2, 1) }
    else if (nb > 1) { TSTEP(1, 2) }
    else { TSTEP(1, 1) }
    _tile_stored(0, io[0].out, io[0].ldo);
    if (nb > 1) _tile_stored(1, io[1].out, io[1].ldo);
    if (na > 1) _tile_stored(2, io[2].out, io[2].ldo);
    if (na > 1 && nb > 1) _tile_stored(3, io[3].out, io[3].ldo);
}

// The same 2 x 2 tile block without AMX (AVX512-BF16, e.g. AMD Zen 4): VDPBF16PS on the same packed tiles.
// C row r, columns j0..j0+15 += sum over k-pairs p of (A[r][2p], A[r][2p+1]) . (B[2p][j], B[2p+1][j]): the
// A pair broadcast to the 16 lanes, B's VNNI row p as is. 8 rows x 2 B tiles at a time (16 accumulators).
// Each element's sum runs over kb then p in order, from its preloaded or zero start: shape-independent.
// 8 rows of one A tile (k-pairs ap, rows 16 pairs apart) times B tile b0 (and b1 when two) over Kb k-blocks.
VEC_TARGET static inline __attribute__((always_inline)) void vec_steps(__m512 acc[8][2], const uint32_t *ap,
                                                                        const uint16_t *b0, const uint16_t *b1,
                                                                        int Kb, const int two) {
    for (int kb = 0; kb < Kb; kb++, ap += 256) {
        const uint16_t *p0 = b0 + (size_t)kb * 512, *p1 = b1 + (size_t)kb * 512;
        for (int p = 0; p < 16; p++) {
            __m512bh v0 = (__m512bh)_mm512_loadu_si512(p0 + p * 32);
            __m512bh v1 = two ? (__m512bh)_mm512_loadu_si512(p1 + p * 32) : v0;
            for (int r = 0; r < 8; r++) {
                __m512bh x = (__m512bh)_mm512_set1_epi32((int)ap[r * 16 + p]);
                acc[r][0] = _mm512_dpbf16_ps(acc[r][0], x, v0);
                if (two) acc[r][1] = _mm512_dpbf16_ps(acc[r][1], x, v1);
            }
        }
    }
}

VEC_TARGET static void block_vec(TileIO io[4], const uint16_t *a0, const uint16_t *a1, const uint16_t *b0,
                                 const uint16_t *b1, int Kb, int na, int nb) {
    const uint16_t *at[2] = {a0, a1};
    for (int u = 0; u < na; u++)
        for (int h = 0; h < 2; h++) {
            __m512 acc[8][2];
            for (int w = 0; w < 2; w++)
                for (int r = 0; r < 8; r++) {
                    const TileIO *t = &io[u * 2 + w];
                    acc[r][w] = w < nb && t->in ? _mm512_loadu_ps((const char *)t->in + (size_t)(h * 8 + r) * t->ldi)
                                                : _mm512_setzero_ps();
                }
            const uint32_t *ap = (const uint32_t *)(at[u] + h * 8 * 32);
            if (nb > 1) vec_steps(acc, ap, b0, b1, Kb, 1);   // two: a constant, so each call compiles its own loop
            else vec_steps(acc, ap, b0, b1, Kb, 0);
            for (int w = 0; w < nb; w++)
                for (int r = 0; r < 8; r++) {
                    const TileIO *t = &io[u * 2 + w];
                    _mm512_storeu_ps((char *)t->out + (size_t)(h * 8 + r) * t->ldo, acc[r][w]);
                }
        }
}

AMX_TARGET int rb_sgemm_bf16(float *C, int ldc, const float *Ci, int ldci, const float *A, int lda, const float *B,
                            int ldb, int M, int N, int K, int ta, int tb, float alpha, float beta) {
    if (!rb_bf16_available()) return -1;
    if (M <= 0 || N <= 0 || K <= 0) return -1;
    const int amx = bf16_state == 2;
    if (amx) tile_setup();  // configured per call and released at the end: a thread that keeps tile state
                   // made the rest of the step ~10x slower here (measured: bench 228 ms a step vs 18 ms)
    int Mb = (M + 15) / 16, Nb = (N + 15) / 16, Kb = (K + 31) / 32;
    uint16_t *Ap = grow16(&pack_a, &cap_a, (size_t)Mb * Kb * 512), *Bp = grow16(&pack_b, &cap_b, (size_t)Nb * Kb * 512);
    if (!Ap || !Bp) { if (amx) _tile_release(); return -1; }
    pack_a_tiles(Ap, A, lda, M, K, ta, Mb, Kb);
    pack_b_tiles(Bp, B, ldb, K, N, tb, Nb, Kb);
    // C = Ci + acc when alpha = beta = 1 (bias rows, gradient accumulation): the accumulator starts at Ci,
    // so whole tiles go between AMX and the matrices directly; C = acc (beta = 0, alpha = 1) likewise.
    // Other alpha/beta: acc from zero, then C = beta Ci + alpha acc in the epilogue. The same for every
    // tile, whole or edge, so each element's arithmetic does not depend on the call's shape.
    const int direct = alpha == 1 && (beta == 0 || beta == 1), preload = direct && beta == 1;
    float buf[4][256] __attribute__((aligned(64)));
    for (int jb = 0; jb < Nb; jb += 2)
        for (int ib = 0; ib < Mb; ib += 2) {
            int na = Mb - ib > 1 ? 2 : 1, nb = Nb - jb > 1 ? 2 : 1;
            const uint16_t *a0 = Ap + (size_t)ib * Kb * 512, *b0 = Bp + (size_t)jb * Kb * 512;
            TileIO io[4];
            for (int u = 0; u < 2; u++)
                for (int w = 0; w < 2; w++) {
                    int i0 = (ib + u) * 16, j0 = (jb + w) * 16, t = u * 2 + w;
                    int whole = direct && i0 + 16 <= M && j0 + 16 <= N;
                    float *c = C + (size_t)i0 * ldc + j0;
                    const float *ci = Ci + (size_t)i0 * ldci + j0;
                    if (whole) {
                        io[t] = (TileIO){c, (size_t)ldc * 4, preload ? ci : NULL, (size_t)ldci * 4};
                    } else {
                        io[t] = (TileIO){buf[t], 64, NULL, 64};
                        if (preload && u < na && w < nb) {  // the edge tile's Ci, zero-padded
                            int mr = M - i0 < 16 ? M - i0 : 16;
                            __mmask16 m = mask16(N - j0);
                            for (int r = 0; r < 16; r++)
                                _mm512_store_ps(buf[t] + r * 16, r < mr ? _mm512_maskz_loadu_ps(m, ci + (size_t)r * ldci)
                                                                        : _mm512_setzero_ps());
                            io[t].in = buf[t];
                        }
                    }
                }
            if (amx) block(io, a0, a0 + (size_t)Kb * 512, b0, b0 + (size_t)Kb * 512, Kb, na, nb);
            else block_vec(io, a0, a0 + (size_t)Kb * 512, b0, b0 + (size_t)Kb * 512, Kb, na, nb);
            for (int u = 0; u < na; u++)
                for (int w = 0; w < nb; w++) {
                    int i0 = (ib + u) * 16, j0 = (jb + w) * 16, t = u * 2 + w;
                    if (io[t].out != buf[t]) continue;  // stored in place
                    if (direct) store_block(C + (size_t)i0 * ldc + j0, ldc, NULL, 0, buf[t], M - i0, N - j0, 1, 0);
                    else store_block(C + (size_t)i0 * ldc + j0, ldc, Ci + (size_t)i0 * ldci + j0, ldci, buf[t], M - i0,
                                     N - j0, alpha, beta);
                }
        }
    if (amx) _tile_release();
    return 0;
}

void rb_amx_free_scratch(void) {
    free(pack_a);
    free(pack_b);
    pack_a = pack_b = NULL;
    cap_a = cap_b = 0;
}

#else
int rb_bf16_available(void) { return 0; }
const char *rb_bf16_engine(void) { return "none"; }
int rb_sgemm_bf16(float *C, int ldc, const float *Ci, int ldci, const float *A, int lda, const float *B, int ldb,
                 int M, int N, int K, int ta, int tb, float alpha, float beta) {
    return -1;
}
void rb_amx_free_scratch(void) {}
#endif
