#!/usr/bin/env bash
# device_suite.sh — one device call's worth of GPU work (run through tools/devenv.sh on the device):
# the cuda test suite (every test_cuda_* binary in BIN), then `recallbench bench --backend cuda` for
# every mixer on the GPU reference config beside the PyTorch anchor, in the same call. Logs go to
# $OUT (or /tmp/rbout). Usage: bash tools/devenv.sh bash tools/device_suite.sh BIN [tests|bench|all]
set -u
bin=${1:?binary folder}; what=${2:-all}
out=${OUT:-/tmp/rbout}; mkdir -p "$out"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm --format=csv | tee "$out/gpu.txt"
pass=0; fail=0; skip=0
if [ "$what" != bench ]; then
  for t in "$bin"/test_cuda_*; do
    [ -x "$t" ] || continue
    n=$(basename "$t")
    timeout 300 "$t" > "$out/$n.txt" 2>&1; rc=$?
    case $rc in 0) pass=$((pass+1)); r=PASS;; 77) skip=$((skip+1)); r=SKIP;; *) fail=$((fail+1)); r="FAIL($rc)";; esac
    echo "$r $n: $(grep -c '^PASS' "$out/$n.txt") checks passed, $(grep -c '^FAIL' "$out/$n.txt") failed"
    grep '^FAIL' "$out/$n.txt" | head -5
  done
  echo "cuda suite: $pass passed, $fail failed, $skip skipped"
fi
if [ "$what" != tests ]; then
  ref="--vocab 8192 --seq-len 256 --kv-pairs 16 --d-model 128 --batch 256 --db /tmp/bench.db --steps 30"
  for a in "" "--bf16" "--bf16 --sdpa"; do
    PYTHONUNBUFFERED=1 timeout 120 python3 "$bin/torch_shell_bench.py" --device cuda --steps 30 $a 2>&1 | tail -1 | tee -a "$out/torch.txt"
  done
  for l in "conv,attention" "conv,swa --window 256" "conv,bla --window 256 --freqs 32" \
           "conv,bla --window 256 --freqs 32 --bla-readout slots" "conv,gsa --slots 64" \
           "conv,la --feature-map taylor --feature-dim 16" "conv,mamba --state-dim 16"; do
    echo "== $l" | tee -a "$out/bench.txt"
    timeout 120 "$bin/recallbench" bench --backend cuda --layers $l $ref 2>&1 | tail -4 | tee -a "$out/bench.txt"
  done
  for j in 4 8; do
    echo "== conv,attention -j $j" | tee -a "$out/bench.txt"
    timeout 120 "$bin/recallbench" bench --backend cuda -j $j --layers conv,attention $ref 2>&1 | tail -4 | tee -a "$out/bench.txt"
  done
fi
