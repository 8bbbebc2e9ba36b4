#!/bin/bash
# gsa_scan_emu.sh — runs tools/gsa_scan_emu.cpp: the forward scan and the split backward's column-group
# kernels of models/cuda/gsa.cu emulated on the host (no GPU needed) against a double reference. Depends on
# g++ (C++20), sed. Usage: tools/gsa_scan_emu.sh  (about 20 s on 2 cores)
. "$(dirname "$0")/emu_lib.sh"   # strict mode, root, tmp, emu_build_run
src=$root/models/cuda/gsa.cu
# warp_sum/warp_max, the constants, the rows kernel (the split forward's score parts), the forward scan, the sizes, the column sums and the column-group
# kernel, its register form (between its ---- line and gsa_sum_parts_kernel's comment) and its thread count; dynamic shared memory becomes a static array (one block runs at a time)
{ sed -n '/^__device__ __forceinline__ float warp_sum/,/^\/\/ Sum over the block/p' "$root/models/cuda/common.cuh"
  grep '^#define GSA_CW \|^#define GSA_RB \|^#define GSA_THREADS ' "$src"
  sed -n '/^\/\/ Columns j..j+3 of a row/,/^\/\/ The launch: V4/p' "$src"
  sed -n '/^\/\/ The scans. softmax over the slots/,/^\/\/ Mirrors gsa_norm_forward/p' "$src" |
      sed 's/^    extern __shared__ float sh\[\];/    float *sh = emu_sh;/'
  sed -n '/^static int gsa_cols_threads(int m)/p' "$src"
  sed -n '/^static int gsa_scan_reg_s(int m, int dh) {/,/^}/p' "$src"
  sed -n '/^static size_t gsa_fwd_shared(int m, int dh, int smem) {/,/^}/p' "$src"
  sed -n '/^static size_t gsa_cols_shared(int m, int nt) {/,/^}/p' "$src"
  sed -n '/^\/\/ out0\[j\] = sum_r w\[r\] A0/,/^\/\/ ---- gsa_bwd_cols_kernel with the states in registers/p' "$src" |
      sed 's/^    extern __shared__ float sh\[\];/    float *sh = emu_sh;/'
  sed -n '/^\/\/ ---- gsa_bwd_cols_kernel with the states in registers/,/^\/\/ dS \[n\] = sum of the G group parts/p' "$src" |
      sed 's/^    extern __shared__ float sh\[\];/    float *sh = emu_sh;/'
  sed -n '/^static int gsa_bwdr_threads(int m)/p' "$src"; } > "$tmp/kern.inc"
[ "$(grep -c 'float \*sh = emu_sh;' "$tmp/kern.inc")" = 5 ] && grep -q 'gsa_scan_reg_kernel' "$tmp/kern.inc" &&
    grep -q '^#define GSA_BWDR_MAXM' "$tmp/kern.inc" && grep -q 'float gsa_warp_colsum' "$tmp/kern.inc" &&
    grep -q 'void __launch_bounds__(GSA_BWDR_MAXM) gsa_bwd_cols_reg_kernel' "$tmp/kern.inc" &&
    grep -q '^static int gsa_bwdr_threads' "$tmp/kern.inc" &&
    grep -q '^static int gsa_scan_reg_s' "$tmp/kern.inc" && grep -q 'gsa_bwd_rows_kernel' "$tmp/kern.inc" && grep -q 'void gsa_ld4' "$tmp/kern.inc" && grep -q 'gsa_cols_threads' "$tmp/kern.inc" &&
    grep -q 'float warp_max' "$tmp/kern.inc" && grep -q '^static size_t gsa_fwd_shared' "$tmp/kern.inc" ||
    { echo "gsa_scan_emu.sh: gsa.cu no longer has the sections this cuts out" >&2; exit 1; }
emu_build_run gsa_scan_emu.cpp -std=c++20 -O1 -pthread
