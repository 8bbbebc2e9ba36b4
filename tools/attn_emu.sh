#!/bin/bash
# attn_emu.sh — runs tools/attn_emu.cpp: the attention kernels of models/cuda/attention.cu, both forms (tf32
# tensor cores: attn_{fwd,bwd_dq,bwd_dkdv}_fa_kernel; fp32 FMA tiles: attn_{fwd,bwd_dq,bwd_dkdv}_kernel) and
# attn_dsum_kernel, emulated on the host against a double reference of causal / windowed softmax attention and
# its gradients (no GPU needed). Depends on g++
# (C++20), sed. Usage: tools/attn_emu.sh  (about a minute on 2 cores)
. "$(dirname "$0")/emu_lib.sh"   # strict mode, root, tmp, emu_build_run
src=${ATTN_SRC:-$root/models/cuda/attention.cu}  # ATTN_SRC: another copy (tools/attn_emu_barriers.sh)
# RB_MAX_HEADS (mixer.h), warp_sum / warp_max (common.cuh), ATT_B / ATT_LDP, AttWin and head_win, then the tf32
# section from zero_acc to its end marker and the fp32 section (the FMA-tile kernels and attn_dsum_kernel) up to
# Cfg; the inline-PTX primitives before them stay out (attn_emu.cpp defines them on cuda_emu.h), and the kernels'
# dynamic shared array becomes the emulator's buffer (blocks run one at a time)
{ grep '^#define RB_MAX_HEADS ' "$root/models/mixer.h"
  sed -n '/^__device__ __forceinline__ float warp_sum/,/^}/p' "$root/models/cuda/common.cuh"
  sed -n '/^__device__ __forceinline__ float warp_max/,/^}/p' "$root/models/cuda/common.cuh"
  grep '^#define ATT_B \|^#define ATT_LDP ' "$src"
  sed -n '/^typedef struct {$/,/^} AttWin;/{p;/^} AttWin;/q}' "$src"
  grep '^__device__ __forceinline__ int head_win' "$src"
  sed -n '/^template <int NT> __device__ __forceinline__ void zero_acc/,/^\/\/ ---- end of the tf32 kernels/p' "$src"
  sed -n '/^\/\/ ---- fp32 kernels/,/^static int pad_dh/p' "$src" | sed '$d'; } |
    sed 's/extern __shared__ float sm\[\];/float *sm = emu_smem;/' > "$tmp/kern.inc"
ok=1
for k in attn_fwd_fa_kernel attn_bwd_dq_fa_kernel attn_bwd_dkdv_fa_kernel attn_fwd_kernel attn_bwd_dq_kernel \
         attn_bwd_dkdv_kernel attn_dsum_kernel 'struct Cfg'; do
    grep -q "$k" "$tmp/kern.inc" || ok=0
done
[ $ok = 1 ] && grep -q '} AttWin;' "$tmp/kern.inc" && grep -q 'int head_win' "$tmp/kern.inc" &&
    [ "$(grep -c '^#define ATT_' "$tmp/kern.inc")" = 2 ] && [ "$(grep -c 'float warp_' "$tmp/kern.inc")" = 2 ] &&
    [ "$(grep -c 'float \*sm = emu_smem;' "$tmp/kern.inc")" = 6 ] && ! grep -q 'asm' "$tmp/kern.inc" ||
    { echo "attn_emu.sh: attention.cu no longer has the sections this cuts out" >&2; exit 1; }
emu_build_run attn_emu.cpp -std=c++20 -O1
