#!/usr/bin/env bash
# regress.sh — the accuracy regression suite runs in CI: every row of tests/regression/baseline.csv must
# pass; a deliberately broken model (--zero-mixer, test only) must fail and name its rows; the same seed
# twice gives identical measured values. The same run is the competing mixers' learning test: each of
# LEARN_MIXERS reaches MIXER_MIN on the tiny MQAR rows (tests/learning.conf). Args: $1 binary, $2 root.
set -u
rb=$1; root=$2; . "$root/tests/learning.conf"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail=0
"$rb" regress --baseline "$root/tests/regression/baseline.csv" --json >"$tmp/full" 2>"$tmp/full.err"; st=$?
grep -E "^(model|attention|swa|bla|gsa|la|mamba) " "$tmp/full" | sed 's/^/     /'
if [ $st = 0 ] && ! grep -q FAIL "$tmp/full"; then echo "PASS regression suite against baseline"; else echo "FAIL regression suite (exit $st)"; cat "$tmp/full.err"; fail=1; fi

# Learning: every competing mixer clearly beats chance on tiny MQAR (1/64 for a value guess, 1/8 for a
# guess among the values in context).
python3 - "$tmp/full" "$MIXER_MIN" $LEARN_MIXERS <<'PY' || fail=1
import json, sys
rows = {(r["model"], r["task"]): r["measured"] for r in json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])["rows"]}
lo, bad = float(sys.argv[2]), 0
for m in sys.argv[3:]:
    a = rows.get((m, "mqar"))
    ok = a is not None and a >= lo
    bad += not ok
    print(f"{'PASS' if ok else 'FAIL'} learning: {m} tiny-MQAR accuracy {a} >= {lo}")
sys.exit(1 if bad else 0)
PY

# Sabotage: every mixer's output zeroed must break the attention rows, and the table must say which.
"$rb" regress --baseline "$root/tests/regression/baseline.csv" --only attention --zero-mixer >"$tmp/bad" 2>/dev/null; st=$?
grep -E "^attention " "$tmp/bad" | sed 's/^/     /'
if [ $st = 1 ] && grep -qE "^attention +mqar .*FAIL" "$tmp/bad"; then echo "PASS broken model fails regress and names the row (exit $st)"
else echo "FAIL broken model not caught (exit $st)"; cat "$tmp/bad"; fail=1; fi

# Determinism: rerun two rows; measured values identical to the full run's.
"$rb" regress --baseline "$root/tests/regression/baseline.csv" --only swa --json >"$tmp/again" 2>/dev/null
python3 - "$tmp/full" "$tmp/again" <<'PY' || fail=1
import json, sys
last = lambda p: json.loads(open(p).read().strip().splitlines()[-1])
a = {(r["model"], r["task"]): r["measured"] for r in last(sys.argv[1])["rows"]}
b = {(r["model"], r["task"]): r["measured"] for r in last(sys.argv[2])["rows"]}
same = [k for k in b if k in a and a[k] == b[k]]
ok = len(b) >= 2 and len(same) == len(b)
print(f"{'PASS' if ok else 'FAIL'} same seed twice, identical measured values: " + ", ".join(f"{k[0]}/{k[1]} {a.get(k)} vs {b[k]}" for k in b))
sys.exit(0 if ok else 1)
PY
exit $fail
