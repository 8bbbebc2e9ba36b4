#!/usr/bin/env bash
# cli.sh — the exit-status contract and error lines of the command line: bad usage exits 2 with one
# line naming the bad value; runtime failures (unusable database, divergence) exit 1 and keep
# what was written. Args: $1 recallbench binary, $2 source root.
set -u
rb=$1
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
pass=0; fail=0
ok() { echo "PASS $1"; pass=$((pass+1)); }
bad() { echo "FAIL $1"; fail=$((fail+1)); }
# expect NAME STATUS PATTERN -- CMD...: exit status, exactly one stderr line matching PATTERN.
expect() {
  local name=$1 want=$2 pat=$3; shift 4
  "$@" >"$tmp/out" 2>"$tmp/err"; local got=$?
  local lines; lines=$(wc -l <"$tmp/err")
  if [ "$got" = "$want" ] && grep -qE -- "$pat" "$tmp/err" && [ "$lines" = 1 ]; then
    ok "$name (exit $got: $(head -c 150 "$tmp/err"))"
  else
    bad "$name (exit $got, want $want; $lines stderr lines: $(head -c 300 "$tmp/err"))"
  fi
}
tiny="--vocab 64 --seq-len 16 --kv-pairs 2 --train-examples 64 --test-examples 16 --d-model 16 --batch 16 --epochs 1 --progress none"

"$rb" --version | grep -qE "recallbench [0-9.]+ \(git [0-9a-f]+" && ok "--version shows git revision" || bad "--version"
for c in gen train sweep frontier plot report merge bench kernel regress; do
  "$rb" help $c >"$tmp/h" 2>&1 && grep -q "usage" "$tmp/h" && ok "help $c" || bad "help $c"
done
expect "no command" 2 "no command given" -- "$rb"
expect "unknown command" 2 "unknown command 'frobnicate'" -- "$rb" frobnicate
expect "unknown flag" 2 "unknown option --bogus" -- "$rb" train --bogus 3
expect "d-model 0" 2 "--d-model 0 out of range" -- "$rb" train --d-model 0
expect "lr not a number" 2 "--lr x" -- "$rb" train --lr x
expect "unknown mixer" 2 "unknown or unavailable mixer 'foo'" -- "$rb" train --layers conv,foo
expect "mqar 4K > L" 2 "--kv-pairs" -- "$rb" train --seq-len 64 --kv-pairs 40
expect "mqar V <= L" 2 "--vocab" -- "$rb" train --vocab 64 --seq-len 128 --kv-pairs 4
expect "mqar odd L" 2 "--seq-len" -- "$rb" train --seq-len 63
expect "heads do not divide" 2 "--heads" -- "$rb" train --d-model 10 --heads 3
expect "bla N > W" 2 "--freqs" -- "$rb" train --layers conv,bla --window 32 --freqs 40
expect "gen bad -n" 2 "-n 0" -- "$rb" gen -n 0
expect "bench bad steps" 2 "--steps" -- "$rb" bench --steps 0
# bench --gemm-shapes: a row per GEMM shape, whose shares add up to the whole GEMM time (last cum 100%)
"$rb" bench --gemm-shapes --steps 2 --warmup-steps 1 --threads 1 --db "$tmp/b.db" >"$tmp/gs" 2>&1
if grep -q "GEMM calls by shape" "$tmp/gs" && grep -qE '^ +128 +64 +64 +0 +0 ' "$tmp/gs" \
   && [ "$(grep -E '^ +[0-9]+ +[0-9]+ +[0-9]+ +[01] +[01] ' "$tmp/gs" | tail -1 | awk '{print $NF}')" = "100.0%" ]; then
  ok "bench --gemm-shapes table (shares add to 100%)"
else bad "bench --gemm-shapes: $(head -c 400 "$tmp/gs")"; fi

mkdir -p "$tmp/ro"; chmod 0555 "$tmp/ro"
if [ "$(id -u)" = 0 ]; then dbbad=/proc/self/nonexistent/x.db; else dbbad=$tmp/ro/x.db; fi
expect "unwritable database" 1 "cannot open results database" -- "$rb" train $tiny --db "$dbbad"
head -c 4096 /dev/urandom >"$tmp/corrupt.db"
expect "corrupt database" 1 "not a recallbench database" -- "$rb" train $tiny --db "$tmp/corrupt.db"
cmp -s <(head -c 4096 "$tmp/corrupt.db") "$tmp/corrupt.db" && ok "corrupt database left untouched" || bad "corrupt database modified"

# A run that diverges in its second epoch: exit 1, one line, row 'diverged', epoch-1 evals kept.
"$rb" train $tiny --epochs 2 --db "$tmp/div.db" --nan-at-step 6 >"$tmp/out" 2>"$tmp/err"; st=$?
nerr=$(grep -c "diverged" "$tmp/err")
row=$(sqlite3 "$tmp/div.db" "select status from runs" 2>/dev/null)
ev=$(sqlite3 "$tmp/div.db" "select count(*) from evals where epoch = 1" 2>/dev/null)
if [ $st = 1 ] && [ "$nerr" = 1 ] && [ "$row" = diverged ] && [ "${ev:-0}" -ge 1 ]; then
  ok "divergence: exit 1, row diverged, epoch-1 evals kept ($ev)"
else bad "divergence: exit $st, row '$row', epoch-1 evals '${ev}', stderr: $(cat "$tmp/err")"; fi

# Same seed, same result; the finished config is not retrained.
"$rb" train $tiny --db "$tmp/a.db" --json 2>/dev/null | tail -1 >"$tmp/j1"
"$rb" train $tiny --db "$tmp/b.db" --json 2>/dev/null | tail -1 >"$tmp/j2"
a1=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["accuracy"], d["loss"])' "$tmp/j1")
a2=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["accuracy"], d["loss"])' "$tmp/j2")
[ -n "$a1" ] && [ "$a1" = "$a2" ] && ok "same seed same result ($a1)" || bad "determinism: '$a1' vs '$a2'"
"$rb" train $tiny --db "$tmp/a.db" >"$tmp/out" 2>&1
grep -q "already finished" "$tmp/out" && ok "finished config skipped" || bad "finished config rerun: $(cat "$tmp/out")"
n=$(sqlite3 "$tmp/a.db" "select count(*) from runs")
rev=$(sqlite3 "$tmp/a.db" "select git_rev || ' ' || seed from runs")
[ "$n" = 1 ] && ok "one run row ($rev)" || bad "run rows: $n"
echo "$pass passed, $fail failed (cli)"
[ $fail = 0 ]
