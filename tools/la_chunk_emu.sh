#!/bin/bash
# la_chunk_emu.sh — runs tools/la_chunk_emu.cpp: the chunked training form of models/cuda/la.cu (the
# la_tile_mm kernels, fp32 FMA and tf32 tensor-core forms) emulated on the host (no GPU needed) against a
# double reference. Depends on g++ (C++20), sed. Usage: tools/la_chunk_emu.sh  (about 30 s on 2 cores)
. "$(dirname "$0")/emu_lib.sh"   # strict mode, root, tmp, emu_build_run
src=$root/models/cuda/la.cu
# warp_sum (la_dden_kernel), LA_EPS (la.h), la.cu's constants, and the chunked form from its ---- line to
# the shared-size helpers; the two tensor-core primitives before it (inline PTX) stay out: the emulator
# defines them on cuda_emu.h's mma emulation
{ sed -n '/^__device__ __forceinline__ float warp_sum/,/^}/p' "$root/models/cuda/common.cuh"
  grep '^#define LA_EPS ' "$root/models/mixers/la.h"
  grep '^#define LA_EPS_F \|^#define LA_C \|^#define LA_T \|^#define LA_K \|^#define LA_P ' "$src"
  sed -n '/^\/\/ ---- chunked training form/,/^static size_t la_fbw_shared/p' "$src" | sed '$d'; } > "$tmp/kern.inc"
ok=1
for k in la_chunk_state_kernel la_chunk_out_kernel la_chunk_dqk_kernel la_chunk_dv_kernel; do
    grep -q "__launch_bounds__(256) $k(" "$tmp/kern.inc" || ok=0
done
[ $ok = 1 ] && [ "$(grep -c '^#define LA_' "$tmp/kern.inc")" = 6 ] && grep -q 'float warp_sum' "$tmp/kern.inc" &&
    grep -q 'void la_tile_mm' "$tmp/kern.inc" && ! grep -q 'asm' "$tmp/kern.inc" ||
    { echo "la_chunk_emu.sh: la.cu no longer has the sections this cuts out" >&2; exit 1; }
emu_build_run la_chunk_emu.cpp -std=c++20 -O1 -pthread
