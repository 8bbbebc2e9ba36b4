#!/bin/bash
# mamba_conv_emu.sh — runs tools/mamba_conv_emu.cpp: the depthwise conv kernels of models/cuda/mamba.cu
# (conv_forward_kernel, conv_backward_kernel, and layers.cu's shortconv_wgrad_final_kernel that sums the
# partials) emulated on the host against a double reference of mamba.c's loops and against the previous
# kernels (no GPU needed). Built with AddressSanitizer where g++ has it (reads or writes past the arrays).
# Depends on g++ (C++20), sed.
# Usage: tools/mamba_conv_emu.sh  (~30-45 s on 2 cores, mostly thread start-up)
. "$(dirname "$0")/emu_lib.sh"   # strict mode, root, tmp, emu_build_run
src=$root/models/cuda/mamba.cu hdr=$root/models/cuda/layers.cuh
# ChanVec and its load/store (layers.cuh); from mamba.cu the K define, sigm, the conv section up to the
# scan_forward header, and the backward section up to the scan's param_reduce_kernel.
{ sed -n '/^template <int V> struct ChanVec/,/^}/p' "$hdr"
  sed -n '/^template <int V> __device__ __forceinline__ void chan_store/,/^}/p' "$hdr"
  sed -n '/^#define K MAMBA_CONV_K/p; /^__device__ __forceinline__ float sigm(/p' "$src"
  sed -n '/^\/\/ ---- the depthwise causal conv4/,/^\/\/ ---- scan_forward/p' "$src"
  sed -n '/^\/\/ ---- conv_backward (mamba.c/,/^\/\/ Parameter gradients of the scan/p' "$src"
  echo '#undef K'  # the layers.cu kernel has a parameter K (mamba.cu's K is a macro)
  sed -n '/^__global__ void shortconv_wgrad_final_kernel(/,/^}/p' "$root/models/cuda/layers.cu"
  echo '#define K MAMBA_CONV_K'; } > "$tmp/kern.inc"
for s in 'void chan_store' '^#define K MAMBA_CONV_K' 'float sigm(' 'conv_forward_kernel(' 'conv_backward_kernel(' \
         'shortconv_wgrad_final_kernel(' 'static int conv_v4(' 'static int conv_part_rows('; do
    grep -q "$s" "$tmp/kern.inc" ||
        { echo "mamba_conv_emu.sh: mamba.cu / layers.cu / layers.cuh no longer have the pieces this cuts out ($s)" >&2; exit 1; }
done
san=
echo 'int main() { return 0; }' > "$tmp/probe.cpp"
g++ -fsanitize=address -o "$tmp/probe" "$tmp/probe.cpp" 2>/dev/null && "$tmp/probe" && san=-fsanitize=address
echo "(building ${san:-without a sanitizer})"
emu_build_run mamba_conv_emu.cpp -std=c++20 -O1 -pthread -ffp-contract=off $san
