#!/usr/bin/env bash
# device_first_call.sh — a session's first device call in one command (run it through tools/devenv.sh, with
# OUT set by the device tool): the cuda suite, then (only if every test passed) the bench beside the PyTorch
# anchor and the ncu profile, then a sweep sitting for the rest of the call. Each part is tarred into $OUT as
# it ends (c1.tgz: suite, bench, profile, and summary.txt of the verdict lines, also printed), so a call cut
# short keeps what finished; $OUT/sw gets the sitting's database, logs, GPU utilisation and checkpoints
# (tools/device_sweep.sh; CKPT_MAX=4 here: of the 8 files that come back, c1.tgz, sw/sweep.txt, sw/DBNAME.sitting.tar
# and a log the caller may write to $OUT take 4).
# A failing cuda test stops the call before the sweep (exit 3): revert that kernel's commits for the sweep.
# Usage: bash tools/devenv.sh bash tools/device_first_call.sh BIN SPEC.ini DBNAME TOTAL_SECONDS [sweep flags...]
#   e.g. ... .devbin/s13 results/device/s11a/spec.ini bla-paper-mqar 580 -j 8
# SUITE_PARTS (default "tests"; e.g. "tests train" for the 300-step training check too): device_call1.sh's
# parts first. PARTS (default "bench profile"; "" for none): what runs between the suite and the sweep;
# BENCH_PRECISIONS as device_suite.sh.
set -u
bin=${1:?usage: device_first_call.sh BIN SPEC.ini DBNAME TOTAL_SECONDS [sweep flags...]}; spec=${2:?}; name=${3:?}
total=${4:?}; shift 4
out=${OUT:?device_first_call.sh: no OUT folder}
root=$(cd "$(dirname "$0")/.." && pwd)
t0=$(date +%s)
w=/tmp/firstcall; mkdir -p "$w" "$out/sw"
pack() { tar czf "$out/c1.tgz" -C /tmp firstcall call1 2>/dev/null; }
OUT=$w/suite bash "$root/tools/device_call1.sh" "$bin" ${SUITE_PARTS:-tests} > "$w/suite.txt" 2>&1
cat "$w/suite/summary.txt" | tee "$w/summary.txt"
pack
if grep -q '^FAIL' "$w/suite/summary.txt" || ! grep -q 'cuda suite: [1-9][0-9]* passed, 0 failed' "$w/suite/summary.txt"; then
    echo "device_first_call: a cuda test failed (or none ran): no sweep" | tee -a "$w/summary.txt"; exit 3
fi
for p in ${PARTS-bench profile}; do
    case $p in
        bench) OUT=$w/bench timeout 240 bash "$root/tools/device_call1.sh" "$bin" bench > "$w/bench.txt" 2>&1
               grep -E '^==|throughput|aggregate|tokens_per_s' "$w/bench.txt" | sed 's/, "vocab".*//' | tee -a "$w/summary.txt" ;;
        profile) mkdir -p "$w/prof"
                 OUT=$w/prof timeout 200 bash "$root/tools/device_profile.sh" "$bin" > "$w/prof/prof.txt" 2>&1
                 grep -E '^==|throughput' "$w/prof/prof.txt" | tee -a "$w/summary.txt" ;;
    esac
    pack
done
left=$(( total - ($(date +%s) - t0) ))
echo "device_first_call: sweep sitting of $left s" | tee -a "$w/summary.txt"
[ "$left" -gt 60 ] || exit 0
OUT=$out/sw CKPT_MAX=${CKPT_MAX:-4} bash "$root/tools/device_sweep.sh" "$bin" "$spec" "$name" "$left" "$@" > "$out/sw/sweep.txt" 2>&1
tail -5 "$out/sw/sweep.txt"
