#!/bin/bash
# bla_chunk_emu.sh — runs tools/bla_chunk_emu.cpp: the chunked BLA pass of models/cuda/bla.cu on the host
# (no GPU needed), the batched form against the chunk-by-chunk loop, bit for bit. Depends on g++, sed.
# Usage: tools/bla_chunk_emu.sh  (a few seconds)
. "$(dirname "$0")/emu_lib.sh"   # strict mode, root, tmp, emu_build_run
src=$root/models/cuda/bla.cu
# the two context structs (BlaHeadDev, BlaCudaCtx), and the chunked pass (ChunkGeo .. the interface);
# kernel launches <<<...>>> become plain calls of the host stand-ins
sed -n '/^\/\/ Per-head operators on the device/,/^} BlaCudaCtx;/p' "$src" > "$tmp/structs.inc"
sed -n '/^\/\/ ---- chunked parallel form/,/^\/\/ Mirrors bla_forward: out/p' "$src" | sed 's/<<<[^>]*>>>//' > "$tmp/chunk.inc"
grep -q '^} BlaCudaCtx;' "$tmp/structs.inc" && grep -q 'head_backward_chunked' "$tmp/chunk.inc" ||
    { echo "bla_chunk_emu.sh: bla.cu no longer has the sections this cuts out" >&2; exit 1; }
emu_build_run bla_chunk_emu.cpp -std=c++17 -O2
