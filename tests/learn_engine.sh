#!/usr/bin/env bash
# learn_engine.sh — the engine learns: on the tiny MQAR config (tests/learning.conf) attention reaches
# ATTN_MIN test accuracy, while SWA with a window far shorter than the key-query distances stays below
# SWA_SHORT_MAX. Args: $1 recallbench binary, $2 source root.
set -u
rb=$1; . "$2/tests/learning.conf"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail=0
acc() { python3 -c 'import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])["accuracy"])'; }
t0=$(date +%s)
a=$("$rb" train $TINY_MQAR --layers conv,attention --db "$tmp/r.db" --json --progress lines | acc)
t1=$(date +%s)
s=$("$rb" train $TINY_MQAR --layers conv,swa --window $SWA_SHORT_WINDOW --db "$tmp/r.db" --json --progress none | acc)
t2=$(date +%s)
python3 - "$a" "$ATTN_MIN" "$s" "$SWA_SHORT_MAX" $((t1-t0)) $((t2-t1)) <<'PY' || fail=1
import sys
a, amin, s, smax, ta, ts = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5], sys.argv[6]
ok1, ok2 = a >= amin, s <= smax
print(f"{'PASS' if ok1 else 'FAIL'} attention tiny-MQAR accuracy {a:.4f} >= {amin} ({ta} s)")
print(f"{'PASS' if ok2 else 'FAIL'} swa(W=short) tiny-MQAR accuracy {s:.4f} <= {smax} ({ts} s)")
sys.exit(0 if ok1 and ok2 else 1)
PY
n=$(sqlite3 "$tmp/r.db" "select count(*) from runs where status='ok'")
[ "$n" = 2 ] && echo "PASS both runs stored ok" || { echo "FAIL runs stored ok: $n"; fail=1; }
exit $fail
