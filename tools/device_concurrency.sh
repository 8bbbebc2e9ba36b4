#!/usr/bin/env bash
# device_concurrency.sh — how many RegBench / MQAR runs one H200 can carry at once, and whether CUDA MPS
# (one shared context, kernels of several processes overlapping) beats time-slicing. Through devenv.sh:
#   bash tools/devenv.sh bash tools/device_concurrency.sh BIN
set -u
bin=${1:?}; out=${OUT:-/tmp/rbout}; mkdir -p "$out"
reg="--task regbench --train-automata 2500 --test-automata 500 --batch 32 --d-model 128 --layers conv,swa,conv,swa --window 128 --mlp --db /tmp/c.db"
mq="--vocab 8192 --seq-len 256 --kv-pairs 16 --d-model 128 --batch 256 --db /tmp/c.db"
b() { timeout 120 "$bin/recallbench" bench --backend cuda "$@" --steps 30 2>&1 | grep -E "tokens/s|step" | tail -3; }
echo "== regbench bench -j1"; b $reg
echo "== regbench bench -j8 (threads, streams)"; b $reg -j 8
echo "== mqar bench -j8 (threads, streams)"; b $mq -j 8
nsys=$(command -v nsys || ls /usr/local/cuda/bin/nsys /opt/nvidia/nsight-systems/*/bin/nsys 2>/dev/null | head -1)
echo "nsys: ${nsys:-none}"
procs() {  # N processes of the regbench training config, 45 s each; per-process tokens/s at the end
  n=$1; for i in $(seq $n); do
    timeout 45 "$bin/recallbench" train $reg --db /tmp/p$i.db --force --backend cuda --epochs 200 --early-stop 1.01 --progress lines 2> /tmp/p$i.err > /dev/null &
  done; wait
  for i in $(seq $n); do grep -o "tok/s [0-9]*" /tmp/p$i.err | tail -1; done | awk '{s+=$2} END {print "aggregate tok/s", s, "over", NR, "processes"}'
}
echo "== 1 process"; procs 1
echo "== 8 processes, time-sliced"; procs 8
if command -v nvidia-cuda-mps-control >/dev/null; then
  export CUDA_MPS_PIPE_DIRECTORY=/tmp/mps CUDA_MPS_LOG_DIRECTORY=/tmp/mpslog; mkdir -p /tmp/mps /tmp/mpslog
  nvidia-cuda-mps-control -d && sleep 2 && echo "== 8 processes, MPS" && procs 8 && echo "== 16 processes, MPS" && procs 16
  echo quit | nvidia-cuda-mps-control; tail -3 /tmp/mpslog/control.log 2>/dev/null
else echo "no nvidia-cuda-mps-control"; fi
