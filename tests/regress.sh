#!/usr/bin/env bash
# regress.sh — the accuracy regression suite runs in CI: every row of tests/regression/baseline.csv must
# pass; a deliberately broken model (--zero-mixer, test only) must fail and name its rows; the same seed
# twice gives identical measured values. Args: $1 recallbench binary, $2 source root.
set -u
rb=$1; root=$2
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail=0
"$rb" regress --baseline "$root/tests/regression/baseline.csv" --json >"$tmp/full" 2>"$tmp/full.err"; st=$?
grep -E "^(model|attention|swa|bla|gsa|la|mamba) " "$tmp/full" | sed 's/^/     /'
if [ $st = 0 ] && ! grep -q FAIL "$tmp/full"; then echo "PASS regression suite against baseline"; else echo "FAIL regression suite (exit $st)"; cat "$tmp/full.err"; fail=1; fi

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
