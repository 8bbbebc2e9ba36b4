// bla_ops.c — BLA operator construction in double (design/bla.md "The band-limited window",
// "Recurrence", "Readout"): Phi, A, B, R, impulse responses, ||A||_2. Depends on bla_ops.h, libm.
#include "../bla_ops.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const double TWO_PI = 6.283185307179586476925286766559;

double bla_basis(int k, double tau, int W) {
    if (k == 0) return 1.0 / sqrt((double)W);
    int j = (k + 1) / 2;
    // Reduce j*tau modulo W before scaling so integer ages hit the grid exactly.
    double ph = fmod((double)j * tau, (double)W);
    double x = TWO_PI * ph / W;
    if (k & 1) return cos(x) / sqrt(2 * j == W ? (double)W : W / 2.0);
    return sin(x) / sqrt(W / 2.0);
}

int bla_operators_build(BlaOperators *o, int W, int N, int readout, int transition) {
    memset(o, 0, sizeof *o);
    if (W < 1 || N < 1 || N > W) return -1;
    o->W = W;
    o->N = N;
    o->readout = readout;
    o->transition = transition;
    o->M = readout == BLA_READOUT_SLOTS ? N : W;
    o->gamma = transition == BLA_TRANSITION_DECAY ? exp(-3.0 / W) : 1.0;
    o->Phi = malloc(sizeof(double) * W * N);
    o->A = calloc((size_t)N * N, sizeof(double));
    o->B = malloc(sizeof(double) * N);
    o->R = malloc(sizeof(double) * o->M * N);
    o->age = malloc(sizeof(double) * o->M);
    if (!o->Phi || !o->A || !o->B || !o->R || !o->age) {
        bla_operators_free(o);
        return -1;
    }
    for (int tau = 0; tau < W; tau++)
        for (int k = 0; k < N; k++) o->Phi[(size_t)tau * N + k] = bla_basis(k, tau, W);
    // A[i,j] = sum_tau Phi[tau,i] (S Phi)[tau,j]; (S Phi)[tau,:] = Phi[tau-1,:] (0 at tau = 0) for the
    // dropping shift, Phi[(tau-1) mod W,:] for the circular shift C.
    int t0 = transition == BLA_TRANSITION_DECAY ? 0 : 1;
    for (int tau = t0; tau < W; tau++) {
        const double *cur = o->Phi + (size_t)tau * N, *prev = o->Phi + (size_t)((tau + W - 1) % W) * N;
        for (int i = 0; i < N; i++)
            for (int j = 0; j < N; j++) o->A[(size_t)i * N + j] += cur[i] * prev[j];
    }
    if (transition == BLA_TRANSITION_DECAY)
        for (size_t i = 0; i < (size_t)N * N; i++) o->A[i] *= o->gamma;
    for (int k = 0; k < N; k++) o->B[k] = o->Phi[k];  // Phi^T e_0 = row 0 of Phi
    for (int m = 0; m < o->M; m++) {
        o->age[m] = readout == BLA_READOUT_SLOTS ? (double)m * W / N : m;
        for (int k = 0; k < N; k++) o->R[(size_t)m * N + k] = bla_basis(k, o->age[m], W);
    }
    return 0;
}

void bla_operators_free(BlaOperators *o) {
    free(o->Phi);
    free(o->A);
    free(o->B);
    free(o->R);
    free(o->age);
    memset(o, 0, sizeof *o);
}

void bla_impulse_response(double *h, const BlaOperators *o, int L) {
    const int N = o->N, M = o->M;
    double *x = malloc(sizeof(double) * N), *y = malloc(sizeof(double) * N);
    memcpy(x, o->B, sizeof(double) * N);
    for (int a = 0; a < L; a++) {
        for (int m = 0; m < M; m++) {
            double s = 0;
            for (int k = 0; k < N; k++) s += o->R[(size_t)m * N + k] * x[k];
            h[(size_t)a * M + m] = s;
        }
        for (int i = 0; i < N; i++) {  // x <- A x
            double s = 0;
            for (int k = 0; k < N; k++) s += o->A[(size_t)i * N + k] * x[k];
            y[i] = s;
        }
        double *t = x; x = y; y = t;
    }
    free(x);
    free(y);
}

// Power iteration on A^T A from a fixed dense start; the Rayleigh quotient converges quadratically
// in the vector error. Used above BLA_NORM_JACOBI_MAX where Jacobi's O(N^3) sweeps get slow.
static double norm2_power(const double *A, int N) {
    double *x = malloc(sizeof(double) * N), *y = malloc(sizeof(double) * N), lam = 0;
    for (int i = 0; i < N; i++) x[i] = 1.0 + 0.001 * i;
    for (int it = 0; it < 3000; it++) {
        double nx = 0;
        for (int i = 0; i < N; i++) nx += x[i] * x[i];
        nx = sqrt(nx);
        for (int i = 0; i < N; i++) x[i] /= nx;
        for (int i = 0; i < N; i++) {  // y = A x
            double s = 0;
            for (int k = 0; k < N; k++) s += A[(size_t)i * N + k] * x[k];
            y[i] = s;
        }
        double ny = 0;
        for (int i = 0; i < N; i++) ny += y[i] * y[i];
        double prev = lam;
        lam = ny;  // x^T A^T A x
        for (int i = 0; i < N; i++) {  // x = A^T y
            double s = 0;
            for (int k = 0; k < N; k++) s += A[(size_t)k * N + i] * y[k];
            x[i] = s;
        }
        if (it > 50 && fabs(lam - prev) <= 1e-16 * lam) break;
    }
    free(x);
    free(y);
    return sqrt(lam);
}

double bla_norm2(const double *A, int N) {
    if (N > BLA_NORM_JACOBI_MAX) return norm2_power(A, N);
    // G = A^T A (symmetric PSD); cyclic Jacobi rotations drive it diagonal; ||A||_2^2 = max diagonal.
    double *G = malloc(sizeof(double) * N * N);
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < N; k++) s += A[(size_t)k * N + i] * A[(size_t)k * N + j];
            G[(size_t)i * N + j] = s;
        }
    for (int sweep = 0; sweep < 100; sweep++) {
        double off = 0, diag = 0;
        for (int i = 0; i < N; i++)
            for (int j = 0; j < N; j++) {
                double g = G[(size_t)i * N + j];
                if (i == j) diag += g * g; else off += g * g;
            }
        if (off <= 1e-30 * diag || off == 0) break;
        for (int p = 0; p < N - 1; p++)
            for (int q = p + 1; q < N; q++) {
                double gpq = G[(size_t)p * N + q];
                if (fabs(gpq) < 1e-300) continue;
                double gpp = G[(size_t)p * N + p], gqq = G[(size_t)q * N + q];
                double theta = (gqq - gpp) / (2 * gpq);
                double t = (theta >= 0 ? 1.0 : -1.0) / (fabs(theta) + sqrt(theta * theta + 1));
                double c = 1 / sqrt(t * t + 1), s = t * c;
                for (int k = 0; k < N; k++) {  // columns p, q
                    double gkp = G[(size_t)k * N + p], gkq = G[(size_t)k * N + q];
                    G[(size_t)k * N + p] = c * gkp - s * gkq;
                    G[(size_t)k * N + q] = s * gkp + c * gkq;
                }
                for (int k = 0; k < N; k++) {  // rows p, q
                    double gpk = G[(size_t)p * N + k], gqk = G[(size_t)q * N + k];
                    G[(size_t)p * N + k] = c * gpk - s * gqk;
                    G[(size_t)q * N + k] = s * gpk + c * gqk;
                }
            }
    }
    double mx = 0;
    for (int i = 0; i < N; i++) mx = fmax(mx, G[(size_t)i * N + i]);
    free(G);
    return sqrt(mx);
}
