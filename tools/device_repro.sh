#!/usr/bin/env bash
# device_repro.sh — on the device, one reproduction call (issue 12): the RegBench sitting (checkpointed, -j RB_J,
# MPS on) beside the MQAR sitting (-j 2, MPS off, DRAIN 220 s), as run by hand since s13; the same
# commands, in a file. Unpacks the sweep bundle .devbin/NAME.tar.xz (tools/devbundle.sh NAME --sweep) and
# restores the committed checkpoint stash first; leaves in $OUT what tools/device_after.sh ingests here:
# sw/ (RegBench: sitting tar and checkpoints) and x.tar (its sweep log, the MQAR sitting). MQ_SECONDS 0:
# RegBench alone (its log then in sw/sweep.txt; then RB_J checkpoints + the sitting tar + the log). REQUIRE_WARM=1 passes to both sittings (tools/device_sweep.sh).
# RB_SPEC: the RegBench spec (default results/device/s13/regbench-next.ini; results/device/s20/ holds the
# remaining runs in two parts, regbench-rest.ini and regbench-attention.ini, README). Size RB_SECONDS ~40 s under the call's real limit (README). 8 files come back: with MQ_SECONDS > 0, RB_J <= 7 (checkpoints + x.tar); alone, RB_J <= 6; the script warns when more than 8 are left.
# Usage (run, carry [".devbin/NAME.tar.xz"]): bash tools/device_repro.sh NAME RB_SECONDS MQ_SECONDS [RB_J]
set -u
name=${1:?usage: device_repro.sh NAME RB_SECONDS MQ_SECONDS [RB_J]}; rs=${2:?}; ms=${3:?}; j=${4:-6}
out=${OUT:?device_repro: no OUT (run it through the device tool)}
tools/ckpt_stash.sh restore bla-paper-regbench
(cd .devbin && tar xJf "$name.tar.xz") || { echo "device_repro: cannot unpack .devbin/$name.tar.xz"; exit 1; }
B=.devbin/$name
spec=${RB_SPEC:-results/device/s13/regbench-next.ini}   # the RegBench spec (a tools/spec_subset.sh cut of it)
mkdir -p "$out/sw"
# a checkpoint over 16 MB comes back in parts (device_sweep.sh), each one of the 8 files
count_out() { local n; n=$(find "$out" -type f | wc -l)
  [ "$n" -le 8 ] || echo "device_repro: $n files under \$OUT and only 8 come back: $(cd "$out" && find . -type f | sort | tr '\n' ' ')"; }
if [ "$ms" = 0 ]; then
  OUT=$out/sw DRAIN=0 CKPT_MAX=$j bash tools/devenv.sh bash tools/device_sweep.sh $B \
    "$spec" bla-paper-regbench "$rs" -j "$j" > "$out/sw/sweep.txt" 2>&1
  tail -n 4 "$out/sw/sweep.txt"
  count_out
  exit 0
fi
mkdir -p "$out/x/sw"
(OUT=$out/sw DRAIN=0 CKPT_MAX=$j bash tools/devenv.sh bash tools/device_sweep.sh $B \
  "$spec" bla-paper-regbench "$rs" -j "$j" > "$out/x/rb-sweep.txt" 2>&1) &
sleep 10
(export CUDA_MPS_PIPE_DIRECTORY=/tmp/mps CUDA_MPS_LOG_DIRECTORY=/tmp/mpslog
 OUT=$out/x/sw MPS=0 DRAIN=220 CKPT_MAX=0 bash tools/devenv.sh bash tools/device_sweep.sh $B \
  harness/sweeps/bla-paper-mqar.ini bla-paper-mqar "$ms" -j 2 > "$out/x/sw/sweep.txt" 2>&1) &
wait
tail -n 4 "$out/x/rb-sweep.txt" "$out/x/sw/sweep.txt"
# the RegBench sitting's tar rides in x.tar too: RB_J checkpoints + x.tar leave a spare of the 8 files that come
# back (s20: one extra file under $OUT pushed the sitting tar out; tools/device_after.sh puts it back in sw/)
mv "$out/sw/bla-paper-regbench.sitting.tar" "$out/x/" 2>/dev/null
tar cf "$out/x.tar" -C "$out" x && rm -rf "$out/x"
count_out
