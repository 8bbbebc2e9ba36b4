#!/usr/bin/env bash
# cpu_anchor_ratio.sh — recallbench's CPU training speed against the PyTorch anchor (shared/anchors/
# torch_shell_bench.py), side by side: ROUNDS alternating rounds of `recallbench bench` (fp32, and bf16 where
# this CPU has AMX) and the anchor on the CPU reference config, under OMP_WAIT_POLICY=PASSIVE and unset
# (the anchor's own speed depends on it far more than ours: measured 64-98k tokens/s PASSIVE, 36-70k unset).
# Depends on a recallbench binary and a python3 with torch. Usage: tools/cpu_anchor_ratio.sh [BIN] [ROUNDS] [PYTHON]
set -u
bin=${1:-build/recallbench}; rounds=${2:-3}; py=${3:-python3}
root=$(cd "$(dirname "$0")/.." && pwd)
anchor=$root/../shared/anchors/torch_shell_bench.py
[ -f "$anchor" ] || { echo "cpu_anchor_ratio: no anchor at $anchor" >&2; exit 2; }
"$py" -c "import torch" 2>/dev/null || { echo "cpu_anchor_ratio: $py has no torch (give a python that has: 3rd argument)" >&2; exit 2; }
ref="--vocab 512 --seq-len 128 --kv-pairs 8 --d-model 64 --batch 64"
rb() { "$bin" bench "$@" 2>&1 | awk '/throughput/ {print $2}'; }
th() { "$py" "$anchor" --device cpu --threads 2 $ref 2>/dev/null | tail -1 | "$py" -c "import json,sys; print(json.load(sys.stdin)['tokens_per_s'])"; }
bf16=0; "$bin" bench --precision bf16 --steps 1 --warmup-steps 0 >/dev/null 2>&1 && bf16=1
echo "| policy | round | recallbench fp32 | torch fp32 | ratio |$([ $bf16 = 1 ] && echo " recallbench bf16 | bf16 / torch fp32 |")"
for pol in PASSIVE unset; do
  if [ $pol = PASSIVE ]; then export OMP_WAIT_POLICY=PASSIVE; else unset OMP_WAIT_POLICY; fi
  for r in $(seq "$rounds"); do
    a=$(rb --threads 2); t=$(th); b=""; [ $bf16 = 1 ] && b=$(rb --threads 2 --precision bf16)
    "$py" -c "
a, t, b = float('$a'), float('$t'), '$b'
s = '| $pol | $r | %.1fk | %.1fk | %.2fx |' % (a / 1e3, t / 1e3, a / t)
if b: s += ' %.1fk | %.2fx |' % (float(b) / 1e3, float(b) / t)
print(s)"
  done
done
echo "(uptime: $(uptime | sed 's/.*load/load/'))"
