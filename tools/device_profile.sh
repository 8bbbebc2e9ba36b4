#!/usr/bin/env bash
# device_profile.sh — per-kernel GPU time of one training step (ncu, clocks left alone) for a few
# mixers on the GPU reference config, plus whole-step benches of the shell alone. Run through
# tools/devenv.sh on the device: bash tools/devenv.sh bash tools/device_profile.sh BIN
# PROFILE=regbench: the RegBench sweep's models instead (batch 32, d 128, 2 x conv + mixer, MLPs; the largest
# state of each), with the aggregate of 1, 4 and 8 concurrent runs of SWA W 512 under MPS (bench -j), to see
# whether a RegBench sitting is bound by the kernels or by the GPU's sharing between processes.
set -u
bin=${1:?}; out=${OUT:-/tmp/rbout}; mkdir -p "$out"
ncu=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda/bin/ncu 2>/dev/null | head -1)
if [ "${PROFILE:-ref}" = regbench ]; then
  ref="--task regbench --mlp --d-model 128 --batch 32 --db /tmp/prof.db"
  set -- "conv,swa,conv,swa --window 512" "conv,bla,conv,bla --window 1024 --freqs 128" \
         "conv,gsa,conv,gsa --slots 256 --precision fp32" "conv,la,conv,la --feature-map taylor --feature-dim 32" \
         "conv,mamba,conv,mamba --state-dim 256" "conv,attention,conv,attention --d-model 256 --heads 2"
  if command -v nvidia-cuda-mps-control >/dev/null; then
    export CUDA_MPS_PIPE_DIRECTORY=/tmp/mps CUDA_MPS_LOG_DIRECTORY=/tmp/mpslog; mkdir -p /tmp/mps /tmp/mpslog
    nvidia-cuda-mps-control -d && echo "MPS daemon started"
  fi
  for j in 1 4 8; do
    echo "== bench regbench swa W512 -j $j"
    timeout 150 "$bin/recallbench" bench --backend cuda -j $j --layers conv,swa,conv,swa --window 512 $ref --steps 40 2>&1 |
      grep -E "throughput|aggregate|step time"
  done
  command -v nvidia-cuda-mps-control >/dev/null && echo quit | nvidia-cuda-mps-control
else
  ref="--vocab 8192 --seq-len 256 --kv-pairs 16 --d-model 128 --batch 256 --db /tmp/prof.db"
  set -- "conv,attention" "conv,bla --window 256 --freqs 32" "conv,mamba --state-dim 16" "conv,gsa --slots 64" "conv,la --feature-dim 16"
  for l in "conv" "conv,conv" "conv,attention"; do
    echo "== bench $l"; timeout 60 "$bin/recallbench" bench --backend cuda --layers $l $ref --steps 20 2>&1 | grep -E "throughput|step time"
  done
  # the three slower mixers whole-step, then GSA under the kernel choices of models/cuda/gsa.cu
  for l in "conv,gsa --slots 64" "conv,mamba --state-dim 16" "conv,la --feature-dim 16"; do
    echo "== bench $l"; timeout 60 "$bin/recallbench" bench --backend cuda --layers $l $ref --steps 20 2>&1 | grep -E "throughput|step time"
  done
  # (2026-12-02: reg 13.64M tokens/s, scan 11.78M, split 12.22M; the shared-memory column groups at 128 and
  # 256 threads 13.09M and 11.02M against 64: the defaults kept. Now the backward's register column groups
  # against the shared-memory ones.)
  for e in RB_CUDA_GSA_BWD=smem RB_CUDA_GSA_FWD=scan; do
    echo "== bench conv,gsa --slots 64 with $e"
    env $e timeout 60 "$bin/recallbench" bench --backend cuda --layers conv,gsa --slots 64 $ref --steps 20 2>&1 |
      grep -E "throughput|step time"
  done
fi
for l in "$@"; do
  n=$(echo "$l" | cut -d' ' -f1 | tr ',' '_')
  timeout 150 $ncu --clock-control none --metrics gpu__time_duration.sum --print-summary per-kernel --csv \
    "$bin/recallbench" bench --backend cuda $ref --layers $l --steps 1 --warmup-steps 0 > "$out/ncu_$n.csv" 2> "$out/ncu_$n.err"
  python3 - "$out/ncu_$n.csv" "$l" <<'PY'
import csv, sys, collections
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 5]
if not rows: print("no ncu rows for", sys.argv[2]); sys.exit()
h = rows[0]
try:
    ik, inv, ia, imet = h.index("Kernel Name"), h.index("Invocations"), h.index("Average"), h.index("Metric Name")
except ValueError:
    print("header:", h[:12]); sys.exit()
tot = collections.Counter(); cnt = {}
for r in rows[1:]:
    if r[imet] != "gpu__time_duration.sum": continue
    try: t = float(r[ia].replace(",", "")) * int(r[inv])
    except: continue
    u = r[h.index("Metric Unit")] if "Metric Unit" in h else "nsecond"
    t *= {"nsecond": 1, "usecond": 1e3, "msecond": 1e6, "second": 1e9}.get(u, 1)
    k = r[ik][:70]; tot[k] += t; cnt[k] = cnt.get(k, 0) + int(r[inv])
s = sum(tot.values())
print("== ncu %s: %d kernel launches, %.3f ms GPU time in kernels " % (sys.argv[2], sum(cnt.values()), s / 1e6))
for k, t in tot.most_common(14): print("  %6.1f%% %9.1f us  x%-4d %s" % (100 * t / s, t / 1e3, cnt[k], k))
PY
done
