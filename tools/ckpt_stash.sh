#!/usr/bin/env bash
# ckpt_stash.sh — keep the checkpoints of long unfinished sweep runs across sessions. .ckpt/ is ignored and a
# new session may start on a new machine without it (2026-12-02: 3 RegBench checkpoints lost that way, 8 runs
# started again); RegBench's 10,000-automata runs (~2,500 s each on a shared H200) outlast one session's device
# time, so they can only finish by resuming across sessions.
#   save DBNAME [HASH ...]: packs .ckpt/DBNAME/HASH.ckpt (default: every checkpoint of a run the committed
#     database does not have as finished) into results/ckpt/DBNAME.tar.xz, to be committed (and removed
#     with `git rm` once its runs finish: history keeps it, so stash only runs worth their size).
#   restore DBNAME: unpacks it into .ckpt/DBNAME, never over a checkpoint already there (a newer one).
set -eu
cmd=${1:?usage: ckpt_stash.sh save|restore DBNAME [HASH ...]}; name=${2:?}; shift 2
root=$(cd "$(dirname "$0")/.." && pwd); cd "$root"
stash=results/ckpt/$name.tar.xz
case $cmd in
save)
  db=results/$name.db; [ -f "$db" ] || gunzip -kf "results/$name.db.gz"
  hashes=("$@")
  if [ ${#hashes[@]} = 0 ]; then
    for f in .ckpt/"$name"/*.ckpt; do [ -f "$f" ] && hashes+=("$(basename "$f" .ckpt)"); done
  fi
  files=()
  for h in "${hashes[@]}"; do
    [ -f ".ckpt/$name/$h.ckpt" ] || { echo "ckpt_stash: no .ckpt/$name/$h.ckpt" >&2; exit 1; }
    [ "$(sqlite3 "$db" "select count(*) from runs where config_hash = '$h' and status in ('ok', 'diverged')")" = 0 ] \
      || { echo "ckpt_stash: $h already finished: not stashed"; continue; }
    files+=("$h.ckpt")
  done
  [ ${#files[@]} -gt 0 ] || { echo "ckpt_stash: nothing to stash"; exit 0; }
  mkdir -p results/ckpt
  tar cf - -C ".ckpt/$name" "${files[@]}" | xz -9 -T2 > "$stash"
  echo "ckpt_stash: ${#files[@]} checkpoint(s) into $stash ($(du -h "$stash" | cut -f1)); commit it"
  ;;
restore)
  [ -f "$stash" ] || { echo "ckpt_stash: no $stash"; exit 0; }
  mkdir -p ".ckpt/$name"
  xz -dc "$stash" | tar xf - -C ".ckpt/$name" --skip-old-files
  echo "ckpt_stash: .ckpt/$name has $(ls ".ckpt/$name" | grep -c '\.ckpt$') checkpoint(s)"
  ;;
*) echo "usage: ckpt_stash.sh save|restore DBNAME [HASH ...]" >&2; exit 2 ;;
esac
