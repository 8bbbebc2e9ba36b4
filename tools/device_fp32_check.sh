#!/usr/bin/env bash
# device_fp32_check.sh — the precision check of issue 12: paper-scale MQAR runs (Based setting of
# harness/sweeps/bla-paper-mqar.ini) trained with --precision fp32, to compare with the same configs
# trained in the sweep's default tf32. Usage (on the device, through tools/devenv.sh):
#   bash tools/device_fp32_check.sh BIN "LAYERS FLAGS" ...   (one background run each; JSON to $OUT/fp32.txt)
set -u
bin=${1:?}; shift; out=${OUT:-/tmp/rbout}; mkdir -p "$out"
based="--task mqar --vocab 8192 --train-mix 64:4:100000,128:8:20000,256:16:20000,256:32:20000,256:64:20000
 --test-mix 64:4:1000,64:8:1000,64:16:1000,128:32:1000,256:64:1000,512:128:1000,1024:256:1000
 --batch 256 --epochs 32 --early-stop 0.99 --d-model 128 --seed 1 --lr 3.16e-3 --backend cuda --precision fp32
 --db /tmp/fp32.db --json --progress none"
for cfg in "$@"; do
  ( r=$(timeout 590 "$bin/recallbench" train $based $cfg 2>>"$out/fp32.err" | tail -1); echo "[$cfg] $r" >> "$out/fp32.txt" ) &
  sleep 2
done
wait
