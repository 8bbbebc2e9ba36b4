// bla_ops.h — Blurry Window Attention operators in double precision (design/bla.md): the band-limited
// basis Phi, transition A, input B, readout R, impulse responses h[a,m] and ||A||_2. Depends on libm.
// Used by the bla mixer (models/mixers/bla.c) and `recallbench kernel` (harness/kernel.c).
#pragma once
#include <stddef.h>
#include "mixer.h"

// The operators of one (W, N, readout, transition). All matrices row-major, double.
typedef struct {
    int W, N;          // window length, kept real Fourier coefficients (1 <= N <= W)
    int M;             // reconstruction points: W (dense) or N (slots)
    int readout;       // BLA_READOUT_DENSE | BLA_READOUT_SLOTS (mixer.h)
    int transition;    // BLA_TRANSITION_PROJECT | BLA_TRANSITION_DECAY (mixer.h)
    double gamma;      // decay factor exp(-3/W) (decay transition), 1 for project
    double *Phi;       // [W, N]  orthonormal real Fourier columns (DC, cos1, sin1, cos2, ...)
    double *A;         // [N, N]  Phi^T S Phi (project) or gamma Phi^T C Phi (decay)
    double *B;         // [N]     Phi^T e_0
    double *R;         // [M, N]  Phi evaluated at the age of each point
    double *age;       // [M]     age of each point: m (dense) or m W / N (slots)
} BlaOperators;

// Builds everything for one config. Returns 0, or -1 on invalid arguments or out of memory.
int bla_operators_build(BlaOperators *o, int W, int N, int readout, int transition);
void bla_operators_free(BlaOperators *o);

// Basis function k (column k of Phi) at a real age tau on the W-point grid (bla.md "The band-limited
// window"): k = 0 DC, odd k = cos(j), even k = sin(j) with j = (k+1)/2; the Nyquist cosine (2j = W)
// is normalised by sqrt(W).
double bla_basis(int k, double tau, int W);

// h [L, M]: h[a, m] = R[m,:] A^a B, the response of point m to a token a steps back (bla.md
// "Parallel (training) form").
void bla_impulse_response(double *h, const BlaOperators *o, int L);

// ||A||_2 of an N x N row-major matrix: sqrt of the largest eigenvalue of A^T A — cyclic Jacobi
// (converged to double rounding) for N <= BLA_NORM_JACOBI_MAX, power iteration above.
#define BLA_NORM_JACOBI_MAX 256
double bla_norm2(const double *A, int N);

// 1 if point m is not yet written at position t, i.e. age(m) > t (bla.md "Readout"). Decided in
// integers so the parallel and step forms agree exactly: dense m > t; slots m W > t N (a slot whose
// fractional age exceeds t lies before the start of the sequence).
static inline int bla_point_masked(int m, int t, int W, int N, int readout) {
    return readout == BLA_READOUT_SLOTS ? (long long)m * W > (long long)t * N : m > t;
}
// Points not masked at some t <= T-1, i.e. with age <= T-1 (ages increase with m).
static inline int bla_points_visible(int M, int T, int W, int N, int readout) {
    int c = 0;
    while (c < M && !bla_point_masked(c, T - 1, W, N, readout)) c++;
    return c;
}
