#!/bin/bash
# train_bits.sh — full-precision eval losses/accuracies of tiny trainings (11 configs: attention at L 32,
# 128 (1 and 2 threads), 100 with 2 heads at 3 threads, swa W 16 / 40,24 / 70, bla, gsa, la, mamba), for a
# bit-identity check between two builds. Depends on a recallbench binary and sqlite3.
# Usage: tools/train_bits.sh BINARY OUT; then diff the OUT of two builds (any difference: bits changed).
B=$1; O=$2; : > "$O"
export OMP_WAIT_POLICY=PASSIVE LC_ALL=C
db=$(mktemp /tmp/train_bits.XXXXXX.db)
run() {  # name, args...
  local n=$1; shift
  rm -f "$db"
  nice -n 5 "$B" train --task mqar --vocab 256 --kv-pairs 4 --train-examples 2400 --test-examples 300 --d-model 64 \
    --batch 64 --epochs 2 --seed 1 --db "$db" --force --progress none "$@" >/dev/null 2>&1 || echo "$n FAILED rc=$?" >> "$O"
  sqlite3 "$db" "select '$n', epoch, printf('%.17g', loss), printf('%.17g', accuracy) from evals" >> "$O"
}
run attn32 --seq-len 32 --layers conv,attention
run attn128 --seq-len 128 --layers conv,attention --threads 2
run attn128t1 --seq-len 128 --layers conv,attention --threads 1
run attn100h2 --seq-len 100 --layers conv,attention --heads 2 --threads 3
run swa16 --seq-len 128 --layers conv,swa --window 16
run swa40 --seq-len 128 --layers conv,swa --window 40,24 --heads 2
run swa70 --seq-len 128 --layers conv,swa --window 70
run bla --seq-len 64 --layers conv,bla --window 32 --freqs 8
run gsa --seq-len 64 --layers conv,gsa
run la --seq-len 64 --layers conv,la
run mamba --seq-len 64 --layers conv,mamba
rm -f "$db"
