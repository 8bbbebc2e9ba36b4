#!/usr/bin/env bash
# device_after.sh — here, after a reproduction call (README, "Running it in short sittings"): everything between
# one call and the next, in one step. FILES_AT is the call's files_at (read-only); its sw/ holds the RegBench
# sitting (DBNAME.sitting.tar, checkpoints, maybe sweep.txt) and x.tar, if there, the MQAR sitting (x/sw/)
# with the RegBench sweep log (x/rb-sweep.txt). Copies them to a writable folder, ingests both
# (tools/device_ingest.sh: databases, logs, checkpoints, exports, REPORT), stashes the RegBench checkpoints
# (tools/ckpt_stash.sh save) and prints the sweep summaries. Commit afterwards.
# Usage: tools/device_after.sh FILES_AT SITTING_RB [SITTING_MQAR]   (e.g. /work/.device/5 s20a s20b)
set -eu
at=${1:?usage: device_after.sh FILES_AT SITTING_RB [SITTING_MQAR]}; srb=${2:?}; smq=${3:-}
cd "$(dirname "$0")/.."
for n in bla-paper-regbench bla-paper-mqar; do [ -f "results/$n.db" ] || gunzip -kf "results/$n.db.gz"; done  # the exports read both
w=$(mktemp -d /tmp/devafter.XXXXXX)
cp -r "$at"/. "$w/rb" && chmod -R u+w "$w/rb"
if [ -f "$w/rb/x.tar" ]; then
  tar xf "$w/rb/x.tar" -C "$w/rb"
  [ -f "$w/rb/x/rb-sweep.txt" ] && cp "$w/rb/x/rb-sweep.txt" "$w/rb/sw/sweep.txt"
  mkdir -p "$w/rb/sw"
  [ -f "$w/rb/x/bla-paper-regbench.sitting.tar" ] && mv "$w/rb/x/bla-paper-regbench.sitting.tar" "$w/rb/sw/"
fi
tools/device_ingest.sh "$w/rb" bla-paper-regbench "$srb" | tail -n 3
grep -h '\] ok\|diverged ' "$w/rb/sw/sweep.txt" 2>/dev/null | grep -v '^sweep' || true
tail -n 6 "$w/rb/sw/sweep.txt" 2>/dev/null | grep '^sweep bla\|^estimate' || true
if [ -n "$smq" ] && [ -d "$w/rb/x/sw" ]; then
  tools/device_ingest.sh "$w/rb/x" bla-paper-mqar "$smq" | tail -n 3
  grep -h '\] ok\|diverged ' "$w/rb/x/sw/sweep.txt" 2>/dev/null || true
fi
tools/ckpt_stash.sh save bla-paper-regbench
echo "device_after: done ($w kept for inspection); commit results/ plots/"
