#!/usr/bin/env bash
# device_suite.sh — one device call's worth of GPU work (run through tools/devenv.sh on the device):
# the cuda test suite (every test_cuda_* binary in BIN), then `recallbench bench --backend cuda` for
# every mixer on the GPU reference config beside the PyTorch anchor, in the same call. Logs go to
# $OUT (or /tmp/rbout). Usage: bash tools/devenv.sh bash tools/device_suite.sh BIN [tests|train|regress|bench|rbbench|metrics|all]
set -u
bin=${1:?binary folder}; what=${2:-all}
out=${OUT:-/tmp/rbout}; mkdir -p "$out"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm --format=csv | tee "$out/gpu.txt"
pass=0; fail=0; skip=0
if [ "$what" = all ] || [ "$what" = tests ]; then
  # The test binaries run at once (each leaves most of the GPU idle; one after another they took minutes).
  for t in "$bin"/test_cuda_*; do
    [ -x "$t" ] || continue
    n=$(basename "$t")
    ( timeout 300 "$t" > "$out/$n.txt" 2>&1; echo $? > "$out/$n.rc" ) &
  done
  wait
  for t in "$bin"/test_cuda_*; do
    [ -x "$t" ] || continue
    n=$(basename "$t"); rc=$(cat "$out/$n.rc"); rm -f "$out/$n.rc"
    case $rc in 0) pass=$((pass+1)); r=PASS;; 77) skip=$((skip+1)); r=SKIP;; *) fail=$((fail+1)); r="FAIL($rc)";; esac
    echo "$r $n: $(grep -c '^PASS' "$out/$n.txt") checks passed, $(grep -c '^FAIL' "$out/$n.txt") failed"
    grep '^FAIL' "$out/$n.txt" | head -5
  done
  echo "cuda suite: $pass passed, $fail failed, $skip skipped"
fi
if [ "$what" = all ] || [ "$what" = train ]; then
  # Both backends from the same seed: 300 steps (4 epochs x 75) of a tiny MQAR that the models learn
  # in that time (attention reaches ~0.99 on the CPU, the recurrent mixers stay mid-way, where a wrong
  # gradient shows most). Per-epoch training loss and final accuracy, device against CPU.
  # Such short runs are chaotic: the CPU's own curve moves when the lr moves by 1 part in 10^4
  # (measured: max |d loss| 0.014 attention ... 0.46 la; |d acc| up to 0.047 bla-slots). So the
  # tolerance is that envelope, measured here in the same call (CPU at lr x (1 +- 1e-4)), times 2,
  # at least 0.02 for the loss and for the accuracy: a device run within it is as close to the CPU as
  # the CPU is to itself; a wrong gradient lands far outside.
  tiny="--task mqar --vocab 64 --seq-len 32 --kv-pairs 4 --train-examples 4800 --test-examples 2000 --d-model 64 --batch 64 --epochs 4 --seed 1 --early-stop 1.01 --force --progress lines --json"
  # The 7 mixers run at once (each its 5 trainings in turn, 2 CPU threads for the CPU ones): one after
  # another they took more than 240 s. Results are printed in mixer order.
  train_one() {  # index, layers
    local i=$1 l=$2 b f
    for b in cpu cpu+ cpu- fp32 tf32; do
      case $b in cpu) f="--backend cpu --lr 1e-2";; cpu+) f="--backend cpu --lr 1.0001e-2";; cpu-) f="--backend cpu --lr 0.9999e-2";;
                 fp32) f="--backend cuda --precision fp32 --lr 1e-2";; tf32) f="--backend cuda --lr 1e-2";; esac
      OMP_NUM_THREADS=2 timeout 300 "$bin/recallbench" train $tiny --threads 2 --db /tmp/tr${i}_$b.db --layers $l $f \
        > /tmp/tr${i}_$b.json 2> /tmp/tr${i}_$b.err
    done
    python3 - "$l" /tmp/tr${i}_ > "$out/train_$i.txt" <<'PY'
import json, re, sys
def load(b):
    # epoch-end lines only (progress also prints a line now and then inside an epoch on a slow machine)
    loss = [float(l) for e, E, st, S, l in re.findall(r"epoch (\d+)/(\d+) step (\d+)/(\d+) loss ([0-9.]+)",
            open(sys.argv[2] + "%s.err" % b).read()) if int(st) * int(E) == int(e) * int(S)]
    try: acc = json.loads(open(sys.argv[2] + "%s.json" % b).read().strip().splitlines()[-1])["accuracy"]
    except Exception: acc = float("nan")
    return loss, acc
def dist(a, b):
    (l1, a1), (l2, a2) = a, b
    dl = max((abs(p - q) for p, q in zip(l1, l2)), default=float("nan")) if len(l1) == len(l2) and l1 else float("nan")
    return dl, abs(a1 - a2)
c = load("cpu")
env = [dist(c, load(b)) for b in ("cpu+", "cpu-")]
tl = max(0.02, 2 * max(e[0] for e in env)); ta = max(0.02, 2 * max(e[1] for e in env))
line = "train [%s] cpu: loss %s acc %.4f; cpu envelope (lr x (1 +- 1e-4)) |dloss| %.4f |dacc| %.4f -> tol %.4f / %.4f" % (
    sys.argv[1], " ".join("%.4f" % x for x in c[0]), c[1], max(e[0] for e in env), max(e[1] for e in env), tl, ta)
ok = len(c[0]) >= 4
for b in ("fp32", "tf32"):
    r = load(b); dl, da = dist(c, r)
    good = dl <= tl and da <= ta
    ok = ok and good
    line += " | %s: loss %s acc %.4f max|dloss| %.4f |dacc| %.4f %s" % (
        b, " ".join("%.4f" % y for y in r[0]), r[1], dl, da, "PASS" if good else "FAIL")
print(("PASS " if ok else "FAIL ") + line)
PY
  }
  i=0
  for l in "conv,attention" "conv,swa --window 16" "conv,bla --window 32 --freqs 8" "conv,bla --window 32 --freqs 8 --bla-readout slots" \
           "conv,gsa --slots 16" "conv,la --feature-dim 16" "conv,mamba --state-dim 16"; do
    i=$((i + 1)); train_one $i "$l" &
  done
  wait
  for j in $(seq 1 $i); do cat "$out/train_$j.txt" >> "$out/train.txt" && rm -f "$out/train_$j.txt"; done
  cat "$out/train.txt"
  echo "train: $(grep -c '^PASS' "$out/train.txt") passed, $(grep -c '^FAIL' "$out/train.txt") failed"
fi
if [ "$what" = all ] || [ "$what" = regress ]; then
  # The CPU baseline's rows trained on the GPU (default precision, then fp32), judged by its tolerances.
  for p in ${REGRESS_PRECISIONS:-fp32}; do  # tf32 drifts past the small rows' tolerances (README); REGRESS_PRECISIONS="tf32 fp32" shows it
    echo "== regress --backend cuda --precision $p" | tee -a "$out/regress.txt"
    ( time timeout 500 "$bin/recallbench" regress --backend cuda --precision $p --baseline tests/regression/baseline.csv --jobs 8 ) >> "$out/regress.txt" 2>&1
    echo "rc=$?" >> "$out/regress.txt"; tail -18 "$out/regress.txt"
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
    for p in ${BENCH_PRECISIONS:-tf32 fp32}; do  # the default (tf32) and fp32
      echo "== $l --precision $p" | tee -a "$out/bench.txt"
      timeout 120 "$bin/recallbench" bench --backend cuda --precision $p --layers $l $ref 2>&1 | tail -3 | tee -a "$out/bench.txt"
    done
  done
  # BLA's parallel forms (models/cuda/bla.cu: 0 all full chunks batched, 2 chunk by chunk, 1 quadratic), on
  # the reference config and on a RegBench-shaped one (batch 32, ~900-token sequences, the sweep's model)
  for f in 0 2 1; do
    echo "== bla form $f: conv,bla --window 256 --freqs 32" | tee -a "$out/bench.txt"
    RB_BLA_FORM=$f timeout 120 "$bin/recallbench" bench --backend cuda --layers conv,bla --window 256 --freqs 32 $ref 2>&1 | tail -2 | tee -a "$out/bench.txt"
    echo "== bla form $f: regbench conv,bla,conv,bla --window 1024 --freqs 32 --mlp --batch 32" | tee -a "$out/bench.txt"
    RB_BLA_FORM=$f timeout 120 "$bin/recallbench" bench --backend cuda --task regbench --layers conv,bla,conv,bla --window 1024 \
      --freqs 32 --mlp --d-model 128 --batch 32 --db /tmp/bench.db --steps 30 2>&1 | tail -2 | tee -a "$out/bench.txt"
  done
  for j in 4 8; do
    echo "== conv,attention -j $j" | tee -a "$out/bench.txt"
    timeout 120 "$bin/recallbench" bench --backend cuda -j $j --layers conv,attention $ref 2>&1 | tail -4 | tee -a "$out/bench.txt"
  done
fi
if [ "$what" = all ] || [ "$what" = rbbench ]; then
  # The RegBench sweep's models at their largest state, alone (sizes a sitting: tools/device_regbench_bench.sh),
  # GSA's split forward against its scan at 64 and 256 slots.
  bash "$(dirname "$0")/device_regbench_bench.sh" "$bin" 2>&1 | tee "$out/rbbench.txt"
fi
if [ "$what" = all ] || [ "$what" = metrics ]; then
  # Per mixer, over one training step on the GPU reference config (ncu, clocks left alone): kernel
  # launches, time in kernels, DRAM bytes moved and tensor-core math ops, so that the fraction of the
  # H200's 4.8 TB/s and of its dense TF32 tensor peak (494.7 TFLOP/s) can be read off. Metric names
  # are taken from this ncu's own list (they differ between versions).
  ncu=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda/bin/ncu 2>/dev/null | head -1)
  $ncu --query-metrics --chip gh100 > /tmp/ncu_metrics.txt 2>&1
  mets="gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum"
  for m in $(awk '{print $1}' /tmp/ncu_metrics.txt | grep -E '^(sm__ops_path_tensor_src_(tf32|fp32|bf16|fp16)[a-z0-9_]*|sm__pipe_tensor_op_(hmma|gmma)_cycles_active|sm__pipe_tensor_cycles_active)$' | grep -v sparsity_on); do
    case $m in *cycles_active) mets="$mets,$m.avg.pct_of_peak_sustained_elapsed";; *) mets="$mets,$m.sum";; esac
  done
  echo "metrics: $mets" | tee -a "$out/metrics.txt"
  ref="--vocab 8192 --seq-len 256 --kv-pairs 16 --d-model 128 --batch 256 --db /tmp/prof.db"
  for l in "conv,attention" "conv,swa --window 256" "conv,bla --window 256 --freqs 32" \
           "conv,bla --window 256 --freqs 32 --bla-readout slots" "conv,gsa --slots 64" \
           "conv,la --feature-map taylor --feature-dim 16" "conv,mamba --state-dim 16"; do
    timeout 200 $ncu --clock-control none --metrics "$mets" --csv --page raw \
      "$bin/recallbench" bench --backend cuda --layers $l $ref --steps 1 --warmup-steps 0 > /tmp/ncu_raw.csv 2> /tmp/ncu_raw.err
    python3 tools/ncu_fractions.py /tmp/ncu_raw.csv "$l" | tee -a "$out/metrics.txt"
  done
fi
