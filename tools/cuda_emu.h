// cuda_emu.h — a host stand-in for the CUDA features the kernel emulators use (tools/*_emu.cpp): dim3,
// threadIdx/blockIdx, float2 / float4 / make_float2 / make_float4, __syncthreads, warp shuffles, and launch(), which
// runs a grid one block at a time, each CUDA thread a fiber (ucontext) of the one host thread. Depends on C++20. Header-only, for
// the emulators.
#pragma once
#include <ucontext.h>
#include <vector>
#include <functional>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cstdint>
#include <algorithm>
#include <random>
using std::min;
struct dim3 { unsigned x = 1, y = 1, z = 1; };
struct float2 { float x, y; };
static inline float2 make_float2(float x, float y) { return {x, y}; }
struct float4 { float x, y, z, w; };
static inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
thread_local dim3 threadIdx, blockIdx;
dim3 gridDim, blockDim;
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __restrict__
#define __shared__ static
// Threads are fibers (ucontext) of the one host thread, switched at barriers: one OS thread per CUDA thread
// spent more time in futex calls than in arithmetic on a 2-core VM (mamba_scan_emu: user 71 s, sys 175 s).
// Two schedules, alternating from block to block: mode (block index + emu_sched_base) % 3 is 0 lockstep, 1 and 2
// warp by warp (an emulator may step emu_sched_base between two runs of a kernel so that each block meets
// another mode; mode 2 also sets emu_eager, for emulators that model asynchronous copies: they land at once
// in mode 2 and at their wait otherwise):
// - lockstep: the scheduler resumes every fiber in turn, alternating ascending and descending thread order
//   from one pass to the next, so the warps stay within a warp barrier of each other;
// - warp by warp: each warp runs on until all its threads wait at the block barrier (__syncthreads) or are
//   done, before the next warp starts; the warps go in ascending order in even barrier phases and
//   descending in odd ones. So a warp writes shared memory another has not yet read (a missing barrier
//   before a buffer is refilled), or reads what another has not yet written, whichever way the data flows.
// A pass in which no fiber arrives at a barrier or finishes is a deadlock: it aborts with a message.
struct emu_bar { int n = 0, count = 0; unsigned gen = 0; };
struct emu_fiber { ucontext_t ctx; std::vector<char> stack; bool done = false; };
static emu_bar blk_bar, warp_bar[32];
static ucontext_t emu_sched;
static int emu_sched_base;                       // flips the schedule of every block (see above)
static bool emu_warp_serial, emu_eager;          // the current block's mode (above)
static std::vector<char> emu_at_blk;             // fiber waits at the block barrier, for generation emu_at_gen
static std::vector<unsigned> emu_at_gen;
static std::vector<emu_fiber> *emu_fibers;
static int emu_cur;
static long emu_progress;
static const std::function<void()> *emu_body;
static void emu_yield() { swapcontext(&(*emu_fibers)[emu_cur].ctx, &emu_sched); }
static void emu_arrive(emu_bar &b) {
    unsigned g = b.gen;
    emu_progress++;
    if (++b.count == b.n) { b.count = 0; b.gen++; emu_yield(); return; }
    while (b.gen == g) emu_yield();
}
static void emu_entry() { (*emu_body)(); (*emu_fibers)[emu_cur].done = true; emu_progress++; }
static void __syncthreads() {
    emu_at_blk[threadIdx.x] = 1;
    emu_at_gen[threadIdx.x] = blk_bar.gen;
    emu_arrive(blk_bar);
    emu_at_blk[threadIdx.x] = 0;
}
static float shfl_buf[32][32];
static float __shfl_xor_sync(unsigned, float v, int off) {
    int t = threadIdx.x, w = t / 32, l = t % 32;
    shfl_buf[w][l] = v;
    emu_arrive(warp_bar[w]);
    float r = shfl_buf[w][l ^ off];
    emu_arrive(warp_bar[w]);
    return r;
}
static void launch(dim3 g, int nthr, std::function<void()> body) {
    gridDim = g; blockDim.x = nthr;
    std::vector<emu_fiber> fib(nthr);
    emu_fibers = &fib; emu_body = &body;
    for (unsigned bz = 0; bz < g.z; bz++)
    for (unsigned by = 0; by < g.y; by++)
        for (unsigned bx = 0; bx < g.x; bx++) {
            blk_bar = emu_bar{nthr};
            for (int w = 0; w < 32; w++) warp_bar[w] = emu_bar{32};
            blockIdx.x = bx; blockIdx.y = by; blockIdx.z = bz;
            for (int t = 0; t < nthr; t++) {
                emu_fiber &f = fib[t];
                f.done = false;
                f.stack.resize(1 << 18);
                getcontext(&f.ctx);
                f.ctx.uc_stack.ss_sp = f.stack.data(); f.ctx.uc_stack.ss_size = f.stack.size();
                f.ctx.uc_link = &emu_sched;
                makecontext(&f.ctx, emu_entry, 0);
            }
            emu_at_blk.assign(nthr, 0);
            emu_at_gen.assign(nthr, 0);
            auto resume = [&](int t) {
                emu_cur = t; threadIdx.x = t;
                swapcontext(&emu_sched, &fib[t].ctx);
            };
            int left = nthr;
            const unsigned blk = (bz * g.y + by) * g.x + bx;
            emu_warp_serial = (blk + emu_sched_base) % 3 != 0;
            emu_eager = (blk + emu_sched_base) % 3 == 2;
            if (!emu_warp_serial) {  // lockstep
                for (int pass = 0; left; pass++) {
                    long before = emu_progress;
                    for (int k = 0; k < nthr; k++) {
                        int t = pass & 1 ? nthr - 1 - k : k;
                        if (fib[t].done) continue;
                        resume(t);
                        left -= fib[t].done;
                    }
                    if (left && emu_progress == before) {
                        fprintf(stderr, "cuda_emu: block (%u,%u,%u): %d threads wait at barriers that never fill (deadlock)\n",
                                bx, by, bz, left);
                        exit(1);
                    }
                }
            } else {  // warp by warp
                const int nw = (nthr + 31) / 32;
                auto runnable = [&](int t) {
                    return !fib[t].done && !(emu_at_blk[t] && emu_at_gen[t] == blk_bar.gen);
                };
                while (left) {
                    long before = emu_progress;
                    const bool down = blk_bar.gen & 1;
                    for (int k = 0; k < nw; k++) {
                        const int w = down ? nw - 1 - k : k;
                        for (;;) {  // this warp until it makes no progress: all at the block barrier or done
                            long p0 = emu_progress;
                            for (int t = 32 * w; t < std::min(nthr, 32 * w + 32); t++)
                                if (runnable(t)) {
                                    resume(t);
                                    left -= fib[t].done;
                                }
                            if (emu_progress == p0) break;
                        }
                    }
                    if (left && emu_progress == before) {
                        fprintf(stderr, "cuda_emu: block (%u,%u,%u): %d threads wait at barriers that never fill (deadlock)\n",
                                bx, by, bz, left);
                        exit(1);
                    }
                }
            }
        }
}

// ---- additions for the tensor-core kernels (tools/la_chunk_emu.cpp) ----
#define __align__(n) __attribute__((aligned(n)))
static void __syncwarp(unsigned = 0xffffffffu) { emu_arrive(warp_bar[threadIdx.x / 32]); }
// cvt.rna.tf32.f32: round to nearest, ties away from zero, to 10 mantissa bits (the low 13 bits zero).
// Adding half an ulp to the magnitude bits then truncating is exactly that (overflow goes to inf, as rna);
// inf and NaN keep their class.
static unsigned emu_to_tf32(float x) {
    unsigned u;
    memcpy(&u, &x, 4);
    if ((u & 0x7f800000u) == 0x7f800000u) return (u & 0x7fffffu) ? (u | 0x400000u) & 0xffffe000u : u;
    return (u + 0x1000u) & 0xffffe000u;
}
// mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 d, a, b, d for the calling warp, with the PTX ISA's
// fragment layout (g = lane / 4, q = lane % 4): a0..a3 = A(g, q), A(g+8, q), A(g, q+4), A(g+8, q+4);
// b0, b1 = B(q, g), B(q+4, g); c0..c3 = C(g, 2q), C(g, 2q+1), C(g+8, 2q), C(g+8, 2q+1). Each lane posts
// its A and B fragments to a per-warp buffer, the warp barrier, each lane computes its own four D elements:
// products of tf32 values (exact in fp32), summed in fp32 in k order, then its C added; the barrier again.
static float mma_a[32][16][8], mma_b[32][8][8];
static void emu_mma_m16n8k8_tf32(float (&d)[4], unsigned a0, unsigned a1, unsigned a2, unsigned a3, unsigned b0,
                                 unsigned b1) {
    const int w = threadIdx.x / 32, l = threadIdx.x % 32, g = l / 4, q = l % 4;
    auto f = [](unsigned u) { float x; memcpy(&x, &u, 4); return x; };
    mma_a[w][g][q] = f(a0); mma_a[w][g + 8][q] = f(a1); mma_a[w][g][q + 4] = f(a2); mma_a[w][g + 8][q + 4] = f(a3);
    mma_b[w][q][g] = f(b0); mma_b[w][q + 4][g] = f(b1);
    emu_arrive(warp_bar[w]);
    for (int r = 0; r < 4; r++) {
        const int m = g + 8 * (r >> 1), n = 2 * q + (r & 1);
        float s = 0.f;
        for (int k = 0; k < 8; k++) s += mma_a[w][m][k] * mma_b[w][k][n];
        d[r] += s;
    }
    emu_arrive(warp_bar[w]);
}
