#!/bin/bash
# gsa_cols_emu.sh — runs tools/gsa_cols_emu.cpp: gsa_bwd_cols_kernel of models/cuda/gsa.cu emulated on the
# host (no GPU needed) against a double reference. Depends on g++ (C++20), sed. Usage: tools/gsa_cols_emu.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
src=$root/models/cuda/gsa.cu
# GSA_CW, the thread count, the column sums and the kernel; its dynamic shared memory becomes a static
# array (one block runs at a time)
{ grep '^#define GSA_CW ' "$src"
  sed -n '/^static int gsa_cols_threads(int m)/p' "$src"
  sed -n '/^\/\/ out0\[j\] = sum_r w\[r\] A0/,/^\/\/ dS \[n\] = sum of the G group parts/p' "$src" |
      sed 's/^    extern __shared__ float sh\[\];/    float *sh = emu_sh;/'; } > "$tmp/kern.inc"
grep -q 'float \*sh = emu_sh;' "$tmp/kern.inc" && grep -q 'gsa_cols_threads' "$tmp/kern.inc" ||
    { echo "gsa_cols_emu.sh: gsa.cu no longer has the sections this cuts out" >&2; exit 1; }
g++ -std=c++20 -O1 -pthread -w -I"$tmp" -o "$tmp/emu" "$root/tools/gsa_cols_emu.cpp"
"$tmp/emu"
