#!/usr/bin/env bash
# device_suite.sh — one device call's worth of GPU work (run through tools/devenv.sh on the device):
# the cuda test suite (every test_cuda_* binary in BIN), then `recallbench bench --backend cuda` for
# every mixer on the GPU reference config beside the PyTorch anchor, in the same call. Logs go to
# $OUT (or /tmp/rbout). Usage: bash tools/devenv.sh bash tools/device_suite.sh BIN [tests|train|bench|all]
set -u
bin=${1:?binary folder}; what=${2:-all}
out=${OUT:-/tmp/rbout}; mkdir -p "$out"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm --format=csv | tee "$out/gpu.txt"
pass=0; fail=0; skip=0
if [ "$what" = all ] || [ "$what" = tests ]; then
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
if [ "$what" = all ] || [ "$what" = train ]; then
  # Both backends from the same seed, ~300 steps of tiny MQAR per mixer: final loss and accuracy.
  tiny="--task mqar --vocab 128 --seq-len 64 --kv-pairs 8 --train-examples 4800 --test-examples 500 --d-model 64 --batch 64 --epochs 4 --lr 3e-3 --seed 1 --early-stop 1.01 --db /tmp/train.db --json --progress none"
  for l in "conv,attention" "conv,swa --window 16" "conv,bla --window 64 --freqs 16" "conv,gsa --slots 16" \
           "conv,la --feature-dim 16" "conv,mamba --state-dim 16"; do
    for b in "--backend cpu" "--backend cuda --precision fp32" "--backend cuda"; do
      r=$(timeout 200 "$bin/recallbench" train $tiny --layers $l $b 2>/dev/null | tail -1)
      echo "train [$l] [$b] $(echo "$r" | python3 -c 'import json,sys; d=json.load(sys.stdin); print("loss %.6f acc %.4f tok/s %.0f" % (d["loss"], d["accuracy"], d["tokens_per_s"]))' 2>&1)" | tee -a "$out/train.txt"
    done
  done
fi
if [ "$what" = all ] || [ "$what" = bench ]; then
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
