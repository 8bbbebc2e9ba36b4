// cuda_emu.h — a host stand-in for the CUDA features the kernel emulators use (tools/*_emu.cpp): dim3,
// threadIdx/blockIdx, float4 / make_float4, __syncthreads (std::barrier), warp shuffles, and launch(), which
// runs a grid one block at a time with one std::thread per CUDA thread. Depends on C++20. Header-only, for
// the emulators.
#pragma once
#include <barrier>
#include <thread>
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
static std::barrier<> *blk_bar;
static std::barrier<> *warp_bar[32];
static float shfl_buf[32][32];
static void __syncthreads() { blk_bar->arrive_and_wait(); }
static float __shfl_xor_sync(unsigned, float v, int off) {
    int t = threadIdx.x, w = t / 32, l = t % 32;
    shfl_buf[w][l] = v;
    warp_bar[w]->arrive_and_wait();
    float r = shfl_buf[w][l ^ off];
    warp_bar[w]->arrive_and_wait();
    return r;
}
static void launch(dim3 g, int nthr, std::function<void()> body) {
    gridDim = g; blockDim.x = nthr;
    for (unsigned bz = 0; bz < g.z; bz++)
    for (unsigned by = 0; by < g.y; by++)
        for (unsigned bx = 0; bx < g.x; bx++) {
            std::barrier<> bb(nthr);
            blk_bar = &bb;
            for (int w = 0; w < nthr / 32; w++) warp_bar[w] = new std::barrier<>(32);
            std::vector<std::thread> th;
            for (int t = 0; t < nthr; t++)
                th.emplace_back([=] { threadIdx.x = t; blockIdx.x = bx; blockIdx.y = by; blockIdx.z = bz; body(); });
            for (auto &x : th) x.join();
            for (int w = 0; w < nthr / 32; w++) delete warp_bar[w];
        }
}

