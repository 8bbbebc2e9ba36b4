#!/usr/bin/env bash
# gen.sh — drives `recallbench gen`: human and JSON-lines output of MQAR and RegBench, determinism,
# and bad parameters (exit 2, one line naming the flag). Depends on the recallbench binary, python3.
# Usage: gen.sh RECALLBENCH SOURCE_ROOT
set -u
rb=$1
fails=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ok()  { echo "PASS $1"; }
bad() { echo "FAIL $1"; fails=$((fails + 1)); }
# check NAME CMD...: PASS if CMD succeeds.
check() { local n=$1; shift; if "$@"; then ok "$n"; else bad "$n"; fi; }

mq=(gen --task mqar --vocab 8192 --seq-len 256 --kv-pairs 16 -n 2 --seed 1)
rg=(gen --task regbench --train-automata 20 --test-automata 5 -n 2 --seed 1)

# --- MQAR, human: 2 examples of 16 queries each, shown as [q:key->value] ---------------------------
"$rb" "${mq[@]}" >"$tmp/mh" 2>"$tmp/err"; rc=$?
check "mqar_human_rc0 rc=$rc" test "$rc" -eq 0
nq=$(grep -o '\[q:[0-9]*->[0-9]*\]' "$tmp/mh" | wc -l)
check "mqar_human_queries $nq 32" test "$nq" -eq 32

# --- MQAR, JSON lines: one object per example, fields and the task's invariants ----------------
"$rb" "${mq[@]}" --format jsonl >"$tmp/mj" 2>"$tmp/err"; rc=$?
check "mqar_jsonl_rc0 rc=$rc" test "$rc" -eq 0
check "mqar_jsonl_fields" python3 - "$tmp/mj" <<'PY'
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) == 2, f"{len(lines)} lines"
for ln in lines:
    o = json.loads(ln)
    x, y = o["inputs"], o["targets"]
    assert o["task"] == "mqar" and len(x) == 256 and len(y) == 256
    assert all(0 <= v < 8192 for v in x)
    keys, vals = x[0:32:2], x[1:32:2]
    assert all(1 <= k <= 4095 for k in keys) and all(4096 <= v <= 8191 for v in vals)
    assert len(set(keys)) == 16
    q = [t for t in range(256) if y[t] != -1]
    assert len(q) == 16 and all(t >= 32 and (t - 32) % 2 == 0 for t in q)
    assert sorted(x[t] for t in q) == sorted(keys)
    assert all(y[t] == vals[keys.index(x[t])] for t in q)
PY

# Same seed, same bytes; another seed, other bytes; the train split prints too.
"$rb" "${mq[@]}" --format jsonl >"$tmp/mj2" 2>/dev/null
check "mqar_same_seed_same_output" cmp -s "$tmp/mj" "$tmp/mj2"
"$rb" gen --task mqar --vocab 8192 --seq-len 256 --kv-pairs 16 -n 2 --seed 2 --format jsonl >"$tmp/mj3" 2>/dev/null
check "mqar_other_seed_other_output" test -s "$tmp/mj3" -a "$(cat "$tmp/mj")" != "$(cat "$tmp/mj3")"
"$rb" "${mq[@]}" --format jsonl --split train >"$tmp/mjt" 2>/dev/null; rc=$?
n=$(wc -l <"$tmp/mjt")
check "mqar_split_train rc=$rc lines=$n" test "$rc" -eq 0 -a "$n" -eq 2

# --- RegBench, human and JSON lines -------------------------------------------------------------
"$rb" "${rg[@]}" >"$tmp/rh" 2>"$tmp/err"; rc=$?
check "regbench_human_rc0 rc=$rc" test "$rc" -eq 0
check "regbench_human_text" grep -q '|' "$tmp/rh"
"$rb" "${rg[@]}" --format jsonl >"$tmp/rj" 2>"$tmp/err"; rc=$?
check "regbench_jsonl_rc0 rc=$rc" test "$rc" -eq 0
check "regbench_jsonl_fields" python3 - "$tmp/rj" <<'PY'
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) == 2, f"{len(lines)} lines"
for ln in lines:
    o = json.loads(ln)
    x, y, a = o["inputs"], o["targets"], o["allowed"]
    n = len(x)
    assert o["task"] == "regbench" and len(y) == n and len(a) == n and n > 0
    assert all(1 <= v <= 19 for v in x) and x[0] != 19        # unpadded, no '|' first
    for t in range(n - 1):                                     # targets = next token, '|' ignored
        assert y[t] == (-1 if x[t + 1] == 19 else x[t + 1])
    assert 1 <= y[-1] <= 18
    for t in range(n):
        assert a[t] and all(1 <= v <= 18 for v in a[t]) and a[t] == sorted(set(a[t]))
        assert y[t] == -1 or y[t] in a[t]                       # the next letter has mass
    starts = {tuple(a[t]) for t in range(n) if x[t] == 19}      # after '|': the start state's
    assert len(starts) <= 1
PY
"$rb" "${rg[@]}" --format jsonl >"$tmp/rj2" 2>/dev/null
check "regbench_same_seed_same_output" cmp -s "$tmp/rj" "$tmp/rj2"

# --- Bad parameters: exit 2 and one line naming the flag -----------------------------------------
badcase() {  # badcase FLAG ARGS...
    local flag=$1; shift
    "$rb" gen "$@" -n 1 >"$tmp/out" 2>"$tmp/err"; local rc=$?
    local lines; lines=$(grep -c . "$tmp/err")
    if [ "$rc" -eq 2 ] && [ "$lines" -eq 1 ] && grep -q -- "$flag" "$tmp/err"; then
        ok "rejects $* -> $(cat "$tmp/err")"
    else
        bad "rejects $* (rc=$rc, $lines stderr lines, want 2 and 1 naming $flag): $(head -3 "$tmp/err")"
    fi
}
badcase --kv-pairs --task mqar --kv-pairs 100 --seq-len 64
badcase --seq-len --task mqar --seq-len 63 --kv-pairs 4
badcase --vocab --task mqar --vocab 100 --seq-len 256 --kv-pairs 16
badcase --power-a --task mqar --seq-len 64 --kv-pairs 4 --power-a 0
badcase --train-mix --task mqar --train-mix 64:4:100,256:80:1000 --test-mix 64:4:10
badcase --train-automata --task regbench --train-automata 0

echo "$fails failed"
[ "$fails" -eq 0 ]
