#!/usr/bin/env bash
# device_ingest.sh — after a tools/device_sweep.sh sitting, here: the database into results/ (and
# unpacked), the sitting's sweep log, GPU utilisation and logs into results/device/SITTING, the returned
# checkpoints into .ckpt/DBNAME (carry .ckpt next call; a checkpoint that did not come back stays as it
# was: resuming from an older one redoes steps, with the same result), checkpoints of runs now finished
# removed; then both CSV exports and REPORT.md with the figures regenerated.
# Usage: tools/device_ingest.sh FILES_AT DBNAME SITTING   (FILES_AT: the run's files_at folder, OUT=$OUT/sw;
#   a call of two sittings: OUT=$OUT/x/sw for the second, FILES_AT .../x)
set -eu
at=${1:?usage: device_ingest.sh FILES_AT DBNAME SITTING}; name=${2:?}; sit=${3:?}
rb=${RB:-build/recallbench}
sw=$at/sw
# the sitting's database, gpu_util.txt and logs.tar.gz come as one tar (device_sweep.sh); older calls: loose
ck=$sw
if [ -f "$sw/$name.sitting.tar" ]; then
  sw=$(mktemp -d); trap 'rm -rf "$sw"' EXIT; tar xf "$ck/$name.sitting.tar" -C "$sw"
fi
[ -f "$sw/$name.db.gz" ] || { echo "device_ingest: no $name.db.gz in $at/sw" >&2; exit 1; }
mkdir -p "results/device/$sit" ".ckpt/$name"
cp "$sw/$name.db.gz" results/ && gunzip -kf "results/$name.db.gz"
# A row still 'running' is a worker killed with the call (the device ends every process of a call when it
# returns; 2026-12-02: a sitting left in the background was). On another host it would count as live, and
# later sittings would never start its config again: it is marked interrupted (its checkpoint resumes it).
nrun=$(sqlite3 "results/$name.db" "select count(*) from runs where status = 'running'")
if [ "$nrun" != 0 ]; then
  echo "device_ingest: $nrun run(s) still 'running' (killed with the call): marked interrupted"
  sqlite3 "results/$name.db" "update runs set status = 'interrupted' where status = 'running'"
  gzip -9c "results/$name.db" > "results/$name.db.gz"
fi
for f in "$at/sweep.txt" "$ck/sweep.txt" "$sw/gpu_util.txt" "$sw/logs.tar.gz"; do [ -f "$f" ] && cp "$f" "results/device/$sit/"; done
for f in "$ck/$name".*.ckpt; do [ -f "$f" ] && cp "$f" ".ckpt/$name/${f##*/$name.}"; done
# a checkpoint over 16 MB came back in parts (.ckpt.part0, .part1, ...): joined in order
for f in "$ck/$name".*.ckpt.part0; do
    [ -f "$f" ] || continue
    b=${f%.part0}; cat "$b".part[0-9] > ".ckpt/$name/${b##*/$name.}"
done
for f in ".ckpt/$name"/*.ckpt; do
    [ -f "$f" ] || continue
    h=$(basename "$f" .ckpt)
    [ "$(sqlite3 "results/$name.db" "select count(*) from runs where config_hash = '$h' and status in ('ok', 'diverged')")" = 0 ] || rm -f "$f"
done
echo "checkpoints kept in .ckpt/$name: $(ls ".ckpt/$name" | grep -c '\.ckpt$' || true)"
"$rb" export --db results/bla-paper-mqar.db --task mqar --out results/mqar_frontier.csv
"$rb" export --db results/bla-paper-regbench.db --task regbench --out results/regbench_state.csv
"$rb" report --from-csv results/ --out results/REPORT.md --figures plots
