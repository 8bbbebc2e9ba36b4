#!/bin/bash
# attn_emu_barriers.sh — by hand, not in CI: removes each __syncthreads() of attention.cu's training kernels
# (the tf32 and the fp32 sections: everything attn_emu.sh cuts out) in turn (in a copy; the tree is not touched) and runs tools/attn_emu.sh on the copy, which must fail every
# time: the check that cuda_emu.h's warp-by-warp schedule exposes a missing barrier. Prints one line per
# barrier and "N of N caught". Depends on bash, awk, g++. Usage: tools/attn_emu_barriers.sh  (~5 min)
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
src=$root/models/cuda/attention.cu
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
first=$(grep -n '^template <int NT> __device__ __forceinline__ void zero_acc' "$src" | cut -d: -f1)
last=$(grep -n '^// ---- dispatch over the padded head dim' "$src" | cut -d: -f1)
lines=$(awk -v a="$first" -v b="$last" 'NR > a && NR < b && /__syncthreads\(\);/ {print NR}' "$src")
n=0; caught=0
for l in $lines; do
    n=$((n + 1))
    awk -v l="$l" 'NR != l' "$src" > "$tmp/attention.cu"
    if ATTN_SRC=$tmp/attention.cu bash "$root/tools/attn_emu.sh" > "$tmp/out" 2>&1; then
        echo "line $l: NOT caught: $(sed -n "${l}p" "$src" | sed 's/^ *//')"
    else
        caught=$((caught + 1))
        echo "line $l: caught ($(grep -c 'FAIL' "$tmp/out") failing checks): $(sed -n "${l}p" "$src" | sed 's/^ *//')"
    fi
done
echo "$caught of $n caught"
[ "$caught" = "$n" ]
