#!/usr/bin/env bash
# device_sweep.sh — one sitting of a resumable GPU sweep on the device (through tools/devenv.sh): seeds
# the database from the committed database of earlier sittings, starts runs until SECONDS - DRAIN
# (sweep --time-limit: the runs going then finish and are kept; DRAIN defaults to 165 s, a little more
# than one Based MQAR run with 4 workers on an H200), stops at SECONDS in any case (SIGINT: configs
# still running are interrupted and resume next sitting from their checkpoints), and leaves the
# database, the logs and the GPU utilisation in $OUT to be committed.
# Checkpoints (sweep --checkpoints): runs stopped at SECONDS keep their progress. The sitting starts from
# the .ckpt files in CKPT_IN (default .ckpt/DBNAME, carried from here) and leaves every checkpoint in
# $OUT as DBNAME.HASH.ckpt (at most 16 MiB each and 8 files in all come back: keep -j small for big
# models); put them back into .ckpt/DBNAME (names without the DBNAME. prefix) for the next sitting.
# Without them a stopped run starts again from its first step.
# Usage: bash tools/devenv.sh bash tools/device_sweep.sh BIN SPEC.ini DBNAME SECONDS [sweep flags...]
set -u
bin=${1:?}; spec=${2:?}; name=${3:?}; secs=${4:?}; shift 4
out=${OUT:-/tmp/rbout}; mkdir -p "$out" /tmp/sweeplogs
db="$out/$name.db"
if [ -f "results/$name.db.gz" ]; then gunzip -c "results/$name.db.gz" > "$db"; fi   # earlier sittings
ck=/tmp/ckpt_$name; mkdir -p "$ck"
ckin=${CKPT_IN:-.ckpt/$name}
if [ -d "$ckin" ]; then cp "$ckin"/*.ckpt "$ck"/ 2>/dev/null; fi
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
gzip -9 "$db"   # the .gz only: few files come back (8)
n=0; for f in "$ck"/*.ckpt; do [ -f "$f" ] && cp "$f" "$out/$name.$(basename "$f")" && n=$((n + 1)); done
echo "checkpoints out: $n ($(du -sh "$ck" | cut -f1))"
