#!/usr/bin/env bash
# ckpt_stash.sh — keep the checkpoints of long unfinished sweep runs across sessions. .ckpt/ is ignored and a
# new session may start on a new machine without it (2026-12-02: 3 RegBench checkpoints lost that way, 8 runs
# started again); RegBench's 10,000-automata runs (~2,500 s each on a shared H200) outlast one session's device
# time, so they can only finish by resuming across sessions.
#   save DBNAME [HASH ...]: packs .ckpt/DBNAME/HASH.ckpt (default: every checkpoint of a run the committed
#     database does not have as finished) into results/ckpt/DBNAME.tar.xz, to be committed (and removed
#     with `git rm` once its runs finish: history keeps it, so stash only runs worth their size).
#   restore DBNAME: unpacks it into .ckpt/DBNAME, never over a checkpoint already there (a newer one).
# Checkpoints are stored as byte planes (tools/byteplanes.py); save prints what a device call would carry
# (tools/travel_size.sh).
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
  # stored as byte planes (tools/byteplanes.py: xz then keeps 0.82 of the size, not 0.91): the stash travels
  # with the working tree on every device call, within its 64 MiB
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  for f in "${files[@]}"; do python3 tools/byteplanes.py split ".ckpt/$name/$f" "$tmp/$f.bp"; done
  tar cf - -C "$tmp" "${files[@]/%/.bp}" | xz -9 -T2 > "$stash.tmp" && mv "$stash.tmp" "$stash"
  echo "ckpt_stash: ${#files[@]} checkpoint(s) into $stash ($(du -h "$stash" | cut -f1)); commit it"
  b=$(ls -t .devbin/*.tar.xz 2>/dev/null | head -1)   # the newest bundle (a sweep bundle travels without .pkgs)
  bash tools/travel_size.sh ${b:+"$b"} || true
  ;;
restore)
  [ -f "$stash" ] || { echo "ckpt_stash: no $stash"; exit 0; }
  mkdir -p ".ckpt/$name"
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  xz -dc "$stash" | tar xf - -C "$tmp"
  for f in "$tmp"/*; do
    [ -f "$f" ] || continue
    b=$(basename "$f" .bp); [ -e ".ckpt/$name/$b" ] && continue   # never over one already there (a newer one)
    case $f in
    *.bp) python3 tools/byteplanes.py join "$f" ".ckpt/$name/$b" ;;
    *) mv "$f" ".ckpt/$name/$b" ;;   # a stash from before byte planes (2026-12-03)
    esac
  done
  echo "ckpt_stash: .ckpt/$name has $(ls ".ckpt/$name" | grep -c '\.ckpt$') checkpoint(s)"
  ;;
*) echo "usage: ckpt_stash.sh save|restore DBNAME [HASH ...]" >&2; exit 2 ;;
esac
