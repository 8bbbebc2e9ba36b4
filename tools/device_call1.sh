#!/usr/bin/env bash
# device_call1.sh — a session's first device call as one script (run through tools/devenv.sh on the device):
# tools/device_suite.sh's parts in turn (default: the cuda tests, the 300-step train check, regress in fp32,
# the bench beside the PyTorch anchor), each part's files tarred into $OUT the moment it ends, so a call
# cut by its time limit keeps every part that finished. $OUT gets at most 7 files (8 come back): PART.tgz per part,
# summary.txt (each part's verdict lines, also printed) and times.txt (seconds per part).
# Usage: bash tools/devenv.sh bash tools/device_call1.sh BIN [PART ...]   (PART: tests train regress bench rbbench metrics)
set -u
bin=${1:?usage: device_call1.sh BIN [PART ...]}; shift
parts=${*:-tests train regress bench rbbench}
out=${OUT:?device_call1.sh: no OUT folder}
work=/tmp/call1
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$work" "$out"
for p in $parts; do
    t0=$(date +%s)
    OUT=$work/$p bash "$root/tools/device_suite.sh" "$bin" "$p" > "$work/$p.log" 2>&1
    echo "$p: $(( $(date +%s) - t0 )) s" >> "$out/times.txt"
    tar czf "$out/$p.tgz" -C "$work" "$p" "$p.log"
    {
        echo "== $p"
        case $p in
            tests) grep -E '^(PASS|FAIL|SKIP)|cuda suite:' "$work/$p.log" ;;
            train) grep -E '^train:' "$work/$p.log"; grep -c '^FAIL' "$work/$p/train.txt" 2>/dev/null | sed 's/^/failing mixers: /' ;;
            regress) grep -E 'FAIL|rows, .* failed|rc=' "$work/$p.log" ;;
            bench) grep -E '^==|throughput|aggregate|tokens_per_s' "$work/$p.log" | sed 's/, "vocab".*//' ;;
            rbbench) grep 'tokens/s' "$work/$p.log" ;;
            *) tail -5 "$work/$p.log" ;;
        esac
    } | tee -a "$out/summary.txt"
done
cat "$out/times.txt"
