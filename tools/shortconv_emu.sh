#!/bin/bash
# shortconv_emu.sh — runs tools/shortconv_emu.cpp: the 4-channel shortconv kernels of models/cuda/layers.cu
# emulated on the host against the one-channel kernels, bit for bit (no GPU needed). Depends on g++, sed.
# Usage: tools/shortconv_emu.sh  (about a second)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
src=$root/models/cuda/layers.cu
for k in shortconv_forward_kernel shortconv_forward4_kernel shortconv_backward_dinp_kernel shortconv_backward_dinp4_kernel; do
    sed -n "/^__global__ void $k(/,/^}/p" "$src"
done > "$tmp/kern.inc"
[ "$(grep -c '^__global__ void shortconv' "$tmp/kern.inc")" = 4 ] ||
    { echo "shortconv_emu.sh: layers.cu no longer has the four kernels this cuts out" >&2; exit 1; }
g++ -std=c++17 -O2 -ffp-contract=off -w -I"$tmp" -o "$tmp/emu" "$root/tools/shortconv_emu.cpp"
"$tmp/emu"
