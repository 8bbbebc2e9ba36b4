#!/usr/bin/env bash
# learn_mixers.sh — every competing mixer learns: on the tiny MQAR config (tests/learning.conf) bla, gsa,
# la (taylor) and mamba each reach MIXER_MIN test accuracy, well above guessing among the K values in
# context (1/8) and far above guessing among all V/2 values (1/64). Args: $1 recallbench binary, $2 root.
set -u
rb=$1; . "$2/tests/learning.conf"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail=0
for spec in "${MIXER_RUNS[@]}"; do
  t0=$(date +%s)
  line=$("$rb" train $TINY_MQAR $spec --db "$tmp/r.db" --json --progress none 2>"$tmp/err" | tail -1)
  acc=$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(d["accuracy"], d["state_bytes"])' "$line" 2>/dev/null)
  set -- $acc
  if [ -n "${1:-}" ] && python3 -c "import sys; sys.exit(0 if float('$1') >= float('$MIXER_MIN') else 1)"; then
    echo "PASS $spec: accuracy $1 >= $MIXER_MIN (state $2 bytes, $(( $(date +%s) - t0 )) s)"
  else
    echo "FAIL $spec: accuracy ${1:-none} < $MIXER_MIN ($(cat "$tmp/err" | tail -2))"; fail=1
  fi
done
exit $fail
