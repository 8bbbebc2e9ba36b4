#!/usr/bin/env bash
# regress.sh — the accuracy regression suite runs in CI: every row of tests/regression/baseline.csv must
# pass; a deliberately broken model (--zero-mixer, test only) must fail and name its rows; the same seed
# with another --jobs gives identical measured values; a row whose definition changed fails until
# --update, which keeps tolerances and comments; --only with an unknown name exits 2; SIGTERM and SIGINT
# stop the whole suite (exit 1, "interrupted") and remove its temporary databases. The same full run is
# the competing mixers' learning test: each of LEARN_MIXERS reaches MIXER_MIN on the tiny MQAR rows
# (tests/learning.conf). Args: $1 binary, $2 root.
set -u
rb=$1; root=$2; . "$root/tests/learning.conf"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
base=$root/tests/regression/baseline.csv
fail=0
t0=$(date +%s)
"$rb" regress --baseline "$base" --json >"$tmp/full" 2>"$tmp/full.err"; st=$?
grep -E "^(model|attention|swa|bla|gsa|la|mamba) |rows," "$tmp/full" | sed 's/^/     /'
if [ $st = 0 ] && ! grep -q FAIL "$tmp/full"; then echo "PASS regression suite against baseline ($(( $(date +%s) - t0 )) s)"
else echo "FAIL regression suite (exit $st)"; cat "$tmp/full.err"; fail=1; fi

# Learning: every competing mixer clearly beats chance on tiny MQAR (the rows use K = 4 pairs: a value
# guessed among those in context is right 1/4 of the time; 1/32 for any value).
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
"$rb" regress --baseline "$base" --only attention --zero-mixer >"$tmp/bad" 2>/dev/null; st=$?
grep -E "^attention " "$tmp/bad" | sed 's/^/     /'
if [ $st = 1 ] && grep -qE "^attention +mqar .*FAIL" "$tmp/bad"; then echo "PASS broken model fails regress and names the row (exit $st)"
else echo "FAIL broken model not caught (exit $st)"; cat "$tmp/bad"; fail=1; fi

# Determinism and row identity: the swa rows again, one at a time (--jobs 1), against a copy of the
# baseline whose swa/mqar config hash is altered: measured values identical to the full run's, swa/mqar
# fails as "row changed", swa/regbench passes.
sed -E 's/^(swa,mqar,[^,]*,[^,]*),[0-9a-f]+$/\1,0123456789abcdef/' "$base" >"$tmp/base.csv"
"$rb" regress --baseline "$tmp/base.csv" --only swa --jobs 1 --json >"$tmp/again" 2>/dev/null; st=$?
python3 - "$tmp/full" "$tmp/again" $st <<'PY' || fail=1
import json, sys
last = lambda p: json.loads(open(p).read().strip().splitlines()[-1])
a = {(r["model"], r["task"]): r["measured"] for r in last(sys.argv[1])["rows"]}
b = {(r["model"], r["task"]): r["measured"] for r in last(sys.argv[2])["rows"]}
same = [k for k in b if k in a and a[k] == b[k]]
ok = len(b) >= 2 and len(same) == len(b)
print(f"{'PASS' if ok else 'FAIL'} same seed, --jobs 1 vs default, identical measured values: " + ", ".join(f"{k[0]}/{k[1]} {a.get(k)} vs {b[k]}" for k in b))
t = open(sys.argv[2]).read()
ok2 = int(sys.argv[3]) == 1 and any(l.startswith("swa ") and "mqar" in l and "FAIL (row changed)" in l for l in t.splitlines()) \
      and any(l.startswith("swa ") and "regbench" in l and l.rstrip().endswith("PASS") for l in t.splitlines())
print(f"{'PASS' if ok2 else 'FAIL'} a row whose config hash differs from the baseline fails as 'row changed' (exit {sys.argv[3]})")
sys.exit(0 if ok and ok2 else 1)
PY

# --update on that copy: rewrites swa's rows with their config hash, keeps tolerances, comments and
# every other row, records the commit measured at.
"$rb" regress --baseline "$tmp/base.csv" --only swa --update --allow-dirty >"$tmp/upd" 2>/dev/null; st=$?
python3 - "$base" "$tmp/base.csv" "$tmp/upd" $st <<'PY' || fail=1
import sys
rows = lambda p: {tuple(l.split(",")[:2]): l.strip().split(",") for l in open(p) if l[0] != "#" and not l.startswith("model,")}
com = lambda p: [l for l in open(p) if l[0] == "#" and not l.startswith("# measured:") and not l.startswith("# recallbench regression baseline")]
a, b = rows(sys.argv[1]), rows(sys.argv[2])
ok = int(sys.argv[4]) == 0 and a.keys() == b.keys() and all(a[k][3] == b[k][3] for k in a) \
     and all(a[k] == b[k] for k in a if k[0] != "swa") and b[("swa", "mqar")][4] == a[("swa", "mqar")][4] \
     and com(sys.argv[1]) == com(sys.argv[2]) and any(l.startswith("# measured: commit ") for l in open(sys.argv[2])) \
     and "config of swa/mqar: 0123456789abcdef -> " in open(sys.argv[3]).read()
print(f"{'PASS' if ok else 'FAIL'} --update rewrites the run rows (hash restored), keeps tolerances, comments, other rows (exit {sys.argv[4]})")
sys.exit(0 if ok else 1)
PY

# A typo in --only is a usage error, not "0 rows" and success.
"$rb" regress --baseline "$base" --only NOSUCH >"$tmp/typo" 2>&1; st=$?
if [ $st = 2 ] && grep -q "NOSUCH" "$tmp/typo"; then echo "PASS --only NOSUCH exits 2 and names it: $(head -1 "$tmp/typo")"
else echo "FAIL --only NOSUCH: exit $st: $(cat "$tmp/typo")"; fail=1; fi

# Signals: SIGTERM / SIGINT while rows train stop the whole suite within seconds, exit 1, say
# "interrupted", and leave no temporary directory behind.
for sig in TERM INT; do
  "$rb" regress --baseline "$base" --only mamba >"$tmp/sig.out" 2>"$tmp/sig.err" & pid=$!
  dir=""
  for _ in $(seq 100); do dir=$(sed -n 's/.*temporary databases in \(\/[^ ]*\).*/\1/p' "$tmp/sig.err"); [ -n "$dir" ] && [ -d "$dir" ] && break; sleep 0.1; done
  sleep 2
  ts=$(date +%s.%N)
  kill -$sig $pid
  for _ in $(seq 300); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
  if kill -0 $pid 2>/dev/null; then echo "FAIL SIG$sig: regress still running after 30 s"; kill -KILL $pid; fail=1; continue; fi
  wait $pid; st=$?
  el=$(python3 -c "import time; print(f'{time.time() - $ts:.1f}')")
  if [ $st = 1 ] && grep -q "interrupted by SIG$sig" "$tmp/sig.err" && [ -n "$dir" ] && [ ! -e "$dir" ]; then
    echo "PASS SIG$sig stops the suite in $el s (exit 1), temporary directory $dir removed: $(grep interrupted "$tmp/sig.err" | tail -1)"
  else echo "FAIL SIG$sig: exit $st, dir '$dir' $([ -e "$dir" ] && echo exists || echo gone)"; cat "$tmp/sig.err"; fail=1; fi
done
exit $fail
