#!/usr/bin/env bash
# device_ab.sh — on the device: two builds of recallbench timed in turn by `bench --backend cuda`, ROUNDS
# rounds of A then B per config, each bench's tokens/s printed and the median per build and config with the
# ratio B/A (the rounds alternate, so a drift of the GPU's clocks hits both). The configs are the GPU
# reference config (MQAR V 8192, L 256, K 16, d_model 128, batch 256; AB_REF in the environment replaces
# those flags: tools/device_ab_regbench.sh) with the layer flags given, one per argument. Run it through
# tools/devenv.sh. Usage: bash tools/devenv.sh bash tools/device_ab.sh BIN_A BIN_B
# ROUNDS "LAYER FLAGS" ...   (e.g. .devbin/old/recallbench .devbin/new/recallbench 3 "conv,mamba --state-dim 16")
set -u
a=${1:?usage: device_ab.sh BIN_A BIN_B ROUNDS "LAYER FLAGS" ...}; b=${2:?}; rounds=${3:?}; shift 3
ref=${AB_REF:-"--vocab 8192 --seq-len 256 --kv-pairs 16 --d-model 128 --batch 256 --db /tmp/ab.db --steps 30"}
tps() { timeout 120 "$1" bench --backend cuda $ref --layers $2 2>&1 | awk '/throughput/ {print $2}'; }
med() { sort -n | awk '{v[NR] = $1} END {print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
for l in "$@"; do
  ra=""; rb=""
  for r in $(seq "$rounds"); do
    x=$(tps "$a" "$l"); y=$(tps "$b" "$l")
    echo "ab: $l round $r: A ${x:-none} B ${y:-none}"
    ra="$ra${x:-0}"$'\n'; rb="$rb${y:-0}"$'\n'
  done
  ma=$(printf '%s' "$ra" | med); mb=$(printf '%s' "$rb" | med)
  awk -v l="$l" -v a="$ma" -v b="$mb" 'BEGIN {printf "ab: %s: median A %.0f B %.0f tokens/s, B/A %.4f\n", l, a, b, (a > 0 ? b / a : 0)}'
done
