#!/bin/bash
# mamba_scan_emu.sh — runs tools/mamba_scan_emu.cpp: the scan kernels of models/cuda/mamba.cu emulated
# on the host (no GPU needed). Depends on g++ (C++20), sed. Usage: tools/mamba_scan_emu.sh  (~1 min, 2 cores)
. "$(dirname "$0")/emu_lib.sh"   # strict mode, root, tmp, emu_build_run
# The kernels: from the file's constants to the host interface, after layers.cuh's ChanVec helpers (the
# conv kernels in that range use them). The inline PTX of ex2f becomes exp2f, the wide kernels' dynamic
# shared memory a static array (one block runs at a time).
hdr=$root/models/cuda/layers.cuh
{ sed -n '/^template <int V> struct ChanVec/,/^}/p' "$hdr"
  sed -n '/^template <int V> __device__ __forceinline__ void chan_store/,/^}/p' "$hdr"
  sed -n '/^#define K MAMBA_CONV_K/,/^\/\/ ---- interface/p' "$root/models/cuda/mamba.cu" |
    sed 's/asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(v));/r = exp2f(v);/;
         s/^extern __shared__ float4 wd_smem\[\];.*/float4 wd_smem[60000];/'; } > "$tmp/kern.inc"
grep -q 'r = exp2f(v);' "$tmp/kern.inc" && grep -q '^float4 wd_smem\[60000\];' "$tmp/kern.inc" &&
    grep -q 'void chan_store' "$tmp/kern.inc" ||
    { echo "mamba_scan_emu.sh: mamba.cu / layers.cuh no longer match the patches (ex2f asm, wd_smem, ChanVec)" >&2; exit 1; }
emu_build_run mamba_scan_emu.cpp -std=c++20 -O1 -pthread
