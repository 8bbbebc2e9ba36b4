#!/bin/bash
# shortconv_emu.sh — runs tools/shortconv_emu.cpp: the shortconv kernels of models/cuda/layers.cu emulated on
# the host, the 4-channel instance (V = 4) against the one-channel one (V = 1), bit for bit (no GPU needed).
# Depends on g++, sed. Usage: tools/shortconv_emu.sh  (about a second)
. "$(dirname "$0")/emu_lib.sh"   # strict mode, root, tmp, emu_build_run
src=$root/models/cuda/layers.cu hdr=$root/models/cuda/layers.cuh
# ChanVec and its load/store (layers.cuh), then the two kernel templates (each from its "template <int V>" line)
{ sed -n '/^template <int V> struct ChanVec/,/^}/p' "$hdr"
  sed -n '/^template <int V> __device__ __forceinline__ void chan_store/,/^}/p' "$hdr"
  for k in shortconv_forward_kernel shortconv_backward_dinp_kernel; do
      sed -n "/^__global__ void $k(/,/^}/{p}" "$src" | sed '1i template <int V>'
  done; } > "$tmp/kern.inc"
[ "$(grep -c '^__global__ void shortconv' "$tmp/kern.inc")" = 2 ] && grep -q 'chan_load' "$tmp/kern.inc" &&
    grep -q 'void chan_store' "$tmp/kern.inc" ||
    { echo "shortconv_emu.sh: layers.cu / layers.cuh no longer have the pieces this cuts out" >&2; exit 1; }
emu_build_run shortconv_emu.cpp -std=c++17 -O2 -ffp-contract=off
