#!/usr/bin/env bash
# regbench_smoke.sh — a short RegBench training run (tests/learning.conf) beats the uniform-over-letters
# guess on greedy accuracy (the expected accuracy of a uniformly random letter, computed on the same test
# instances from `gen --format jsonl`). Args: $1 recallbench binary, $2 source root.
set -u
rb=$1; . "$2/tests/learning.conf"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
"$rb" train $TINY_REGBENCH --layers conv,attention --db "$tmp/r.db" --json --progress lines >"$tmp/out" || { echo "FAIL train"; cat "$tmp/out"; exit 1; }
seed=$(sed -E 's/.*--seed ([0-9]+).*/\1/' <<<"$TINY_REGBENCH")
ntest=$(sed -E 's/.*--test-automata ([0-9]+).*/\1/' <<<"$TINY_REGBENCH")
"$rb" gen --task regbench --test-automata "$ntest" --seed "$seed" -n "$ntest" --format jsonl >"$tmp/test.jsonl"
python3 - "$tmp/out" "$tmp/test.jsonl" <<'PY'
import json, sys
res = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
num = den = 0
for line in open(sys.argv[2]):
    ex = json.loads(line)
    for allowed in ex["allowed"]:
        if allowed:
            num += len(allowed) / 18.0
            den += 1
uniform = num / den
acc, tvd = res["accuracy"], res["tvd"]
ok = acc > uniform + 0.1
print(f"{'PASS' if ok else 'FAIL'} regbench greedy accuracy {acc:.4f} > uniform-letter guess {uniform:.4f} + 0.1 (tvd {tvd:.4f}, {den} positions)")
sys.exit(0 if ok else 1)
PY
