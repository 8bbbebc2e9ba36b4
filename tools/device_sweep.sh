#!/usr/bin/env bash
# device_sweep.sh — one sitting of a resumable GPU sweep on the device (through tools/devenv.sh): seeds
# the database from the committed database of earlier sittings, starts runs until SECONDS - DRAIN
# (sweep --time-limit: the runs going then finish and are kept; DRAIN defaults to 165 s, a little more
# than one Based MQAR run with 4 workers on an H200), stops at SECONDS in any case (SIGINT: configs
# still running are interrupted and resume next sitting from their checkpoints), and leaves the
# database, the logs and the GPU utilisation in $OUT to be committed.
# Checkpoints (sweep --checkpoints): runs stopped at SECONDS keep their progress. The sitting starts from
# the .ckpt files in CKPT_IN (default .ckpt/DBNAME, carried from here) and leaves every checkpoint in
# $OUT as DBNAME.HASH.ckpt (at most CKPT_MAX = 4 of them, as 8 files of 16 MiB come back: keep -j small
# for long runs); tools/device_ingest.sh puts them back into .ckpt/DBNAME for the next sitting.
# Without them a stopped run starts again from its first step.
# Usage: bash tools/devenv.sh bash tools/device_sweep.sh BIN SPEC.ini DBNAME SECONDS [sweep flags...]
set -u
bin=${1:?}; spec=${2:?}; name=${3:?}; secs=${4:?}; shift 4
out=${OUT:-/tmp/rbout}; mkdir -p "$out" /tmp/sweeplogs
db="$out/$name.db"
if [ -f "results/$name.db.gz" ]; then gunzip -c "results/$name.db.gz" > "$db"; fi   # earlier sittings
# On a machine still warm from the last call, /tmp keeps that sitting's database: its finished runs are merged
# in, so a chained call skips them even where the caller did not copy the returned database into results/
# first (2026-12-02: a chained call seeded from results/ alone ran 4 finished Mamba runs again).
last=/tmp/sweepdb_$name.db
# REQUIRE_WARM=1: a call chained straight after the last one, before its results were ingested here, so that
# it finds the machine still warm (about 30 s; each cold start costs ~100 s of device time): it works only from
# that sitting's database and checkpoints in /tmp, so on a cold machine it stops at once (exit 3) instead of
# repeating the last sitting from the older copies that travelled.
if [ "${REQUIRE_WARM:-0}" = 1 ] && [ ! -f "$last" ]; then
  echo "device_sweep: cold machine (no $last): nothing started (REQUIRE_WARM=1); ingest the last call and call again"
  exit 3
fi
if [ -f "$last" ]; then "$bin/recallbench" merge "$last" -o "$db" | tail -n 1; fi
ck=/tmp/ckpt_$name; mkdir -p "$ck"
ckin=${CKPT_IN:-.ckpt/$name}
# -n: on a machine still warm from the last call, /tmp holds that call's checkpoints, at least as new as the
# carried copies (which came back from it); a carried one never overwrites them.
if [ -d "$ckin" ]; then cp -n "$ckin"/*.ckpt "$ck"/ 2>/dev/null; fi
# checkpoints of runs the database already has as finished (left by an earlier sitting) are dropped
if [ -f "$db" ]; then
  python3 - "$db" "$ck" <<'PY'
import os, sqlite3, sys
db, ck = sys.argv[1], sys.argv[2]
done = {r[0] for r in sqlite3.connect(db).execute("select config_hash from runs where status in ('ok', 'diverged')")}
for f in os.listdir(ck):
    if f.endswith('.ckpt') and f[:-5] in done:
        os.remove(os.path.join(ck, f)); print("checkpoint of a finished run dropped:", f)
PY
fi
echo "checkpoints in: $(ls "$ck" | grep -c '\.ckpt$')"
nvidia-smi --query-gpu=name,memory.used,utilization.gpu --format=csv
# CUDA MPS: the workers' kernels share the GPU at once instead of taking turns (measured on the H200 by
# tools/device_concurrency.sh: 8 RegBench workers 4.7M tokens/s time-sliced, 8.7M under MPS). MPS=0: off.
mps=0
if [ "${MPS:-1}" = 1 ] && command -v nvidia-cuda-mps-control >/dev/null; then
  export CUDA_MPS_PIPE_DIRECTORY=/tmp/mps CUDA_MPS_LOG_DIRECTORY=/tmp/mpslog; mkdir -p /tmp/mps /tmp/mpslog
  nvidia-cuda-mps-control -d && mps=1 && echo "MPS daemon started"
fi
( while sleep 30; do nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader; done ) > "$out/gpu_util.txt" 2>&1 &
mon=$!
t0=$(date +%s)
drain=${DRAIN:-165}; tl=$(( secs > drain + 30 ? secs - drain : 30 ))
timeout -s INT "$secs" "$bin/recallbench" sweep "$spec" --backend cuda --db "$db" --logs /tmp/sweeplogs --time-limit "$tl" --checkpoints "$ck" "$@" 2>&1 | tail -n 60
echo "sweep sitting: $(( $(date +%s) - t0 )) s wall"
kill $mon 2>/dev/null
[ $mps = 1 ] && echo quit | nvidia-cuda-mps-control
"$bin/recallbench" sweep "$spec" --backend cuda --db "$db" --dry-run 2>&1 | tail -n 1
tar czf "$out/logs.tar.gz" -C /tmp sweeplogs
# fold the WAL into the file before compressing it (the -wal file does not travel)
python3 -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('PRAGMA wal_checkpoint(TRUNCATE)'); c.execute('PRAGMA journal_mode=DELETE'); c.close()" "$db"
cp "$db" "$last"   # for the next sitting on this machine (above)
gzip -9 "$db"   # the .gz only: few files come back (8)
# The database, gpu_util.txt and logs.tar.gz travel back as one file, DBNAME.sitting.tar (2026-12-02: a call of
# two sittings returned 9 files and lost one sitting's database to the limit of 8); tools/device_ingest.sh unpacks it.
tar cf "$out/$name.sitting.tar" -C "$out" "$name.db.gz" gpu_util.txt logs.tar.gz && rm -f "$out/$name.db.gz" "$out/gpu_util.txt" "$out/logs.tar.gz"
# At most CKPT_MAX (default 4) checkpoint files come back (a call returns 8 files of under 16 MiB each, 64 MiB
# in all; the sitting's tar and the caller's sweep.txt take 2, so one sitting per call could take 6; two
# sittings in one call, CKPT_MAX=2 each): a checkpoint over 16 MB
# (Mamba d 256: 31 MB) comes back as parts NAME.HASH.ckpt.part0, .part1, ... that count one file each and that
# tools/device_ingest.sh joins. Smallest first; the total stays 4 MiB under the 64 MiB, less the database. Those
# left behind are named; their runs restart.
n=0; tot=0; max=${CKPT_MAX:-4}; part=16000000
budget=$(( 64 * 1048576 - 4 * 1048576 - $(stat -c %s "$out/$name.sitting.tar") ))
for f in $(ls -S -r "$ck"/*.ckpt 2>/dev/null); do
  sz=$(stat -c %s "$f"); np=$(( (sz + part - 1) / part ))
  if [ $((n + np)) -le "$max" ] && [ $((tot + sz)) -lt "$budget" ]; then
    if [ "$np" = 1 ]; then cp "$f" "$out/$name.$(basename "$f")"
    else split -b "$part" -d -a 1 "$f" "$out/$name.$(basename "$f").part"; fi
    n=$((n + np)); tot=$((tot + sz))
  else echo "checkpoint left behind (its run restarts next time): $(basename "$f") $sz bytes"; fi
done
echo "checkpoints out: $n files ($tot bytes)"
