// rng.h — the one RNG of recallbench: xoshiro256** seeded through splitmix64 (Blackman & Vigna).
// Header-only, no dependencies. Same seed -> same stream on every machine and backend.
#pragma once
#include <math.h>
#include <stdint.h>

typedef struct { uint64_t s[4]; } Rng;

static inline uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
static inline void rng_seed(Rng *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}
// Independent stream for a named purpose (e.g. stream 1 = train data, 2 = test data, 3 = init).
static inline void rng_seed_stream(Rng *r, uint64_t seed, uint64_t stream) {
    uint64_t x = seed ^ (stream * 0xd1342543de82ef95ULL);
    rng_seed(r, splitmix64(&x));
}
static inline uint64_t rng_rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
static inline uint64_t rng_u64(Rng *r) {
    uint64_t *s = r->s, res = rng_rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3]; s[2] ^= t; s[3] = rng_rotl(s[3], 45);
    return res;
}
// Uniform double in [0, 1) with 53 random bits.
static inline double rng_uniform(Rng *r) { return (double)(rng_u64(r) >> 11) * 0x1.0p-53; }
// Uniform integer in [0, n), unbiased (rejection on the 64-bit range).
static inline uint64_t rng_below(Rng *r, uint64_t n) {
    uint64_t lim = UINT64_MAX - UINT64_MAX % n, x;
    do x = rng_u64(r); while (x >= lim);
    return x % n;
}
// Uniform integer in [lo, hi] inclusive.
static inline int rng_range(Rng *r, int lo, int hi) { return lo + (int)rng_below(r, (uint64_t)(hi - lo + 1)); }
// Standard normal (Box-Muller, one value per call; deterministic).
static inline double rng_normal(Rng *r) {
    double u1 = rng_uniform(r), u2 = rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}
// Fisher-Yates shuffle of an int array.
static inline void rng_shuffle(Rng *r, int *a, int n) {
    for (int i = n - 1; i > 0; i--) { int j = (int)rng_below(r, (uint64_t)i + 1), t = a[i]; a[i] = a[j]; a[j] = t; }
}
