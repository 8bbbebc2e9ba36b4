#!/usr/bin/env bash
# cpu_bf16.sh — `--precision bf16` on the cpu backend (Intel AMX or AVX512-BF16, models/gemm_amx.c) through the CLI: a tiny
# MQAR that attention learns in 300 steps reaches the fp32 run's accuracy (within 0.03) from the same seed,
# gives the same bytes twice and with 1 or 2 threads, is stored under its own config hash with its
# precision, and fp32/tf32 on the cpu stay one config (tf32 has no CPU form). Exits 77 with neither.
# Usage: tests/cpu_bf16.sh RECALLBENCH SOURCE_ROOT. Prints one line per check; exits 1 if any failed.
set -u
export LC_ALL=C OMP_WAIT_POLICY=PASSIVE
rb=${1:?usage: cpu_bf16.sh RECALLBENCH SOURCE_ROOT}
src=${2:?usage: cpu_bf16.sh RECALLBENCH SOURCE_ROOT}
. "$src/tests/lib.sh"  # check, q, test_start
test_start
tiny="--task mqar --vocab 64 --seq-len 32 --kv-pairs 4 --train-examples 4800 --test-examples 2000 --d-model 64 --batch 64
      --epochs 4 --seed 1 --early-stop 1.01 --lr 1e-2 --layers conv,attention --db $tmp/r.db --json"
"$rb" train $tiny --precision bf16 > bf1.json 2> bf1.err; rc=$?
if [ $rc != 0 ] && grep -q "needs Intel AMX-BF16" bf1.err; then
    echo "SKIP: $(tail -1 bf1.err)"; exit 77
fi
check "bf16 run ok (exit $rc)" $rc "$(tail -2 bf1.err)"
"$rb" train $tiny --precision fp32 > fp.json 2> fp.err
check "fp32 run ok" $?
"$rb" train $tiny --precision bf16 --force --threads 1 > bf2.json 2> bf2.err
check "bf16 again, 1 thread" $?
"$rb" train $tiny --precision tf32 > tf.json 2> tf.err
check "tf32 on the cpu runs" $?
get() { python3 -c "import json,sys; print(json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])[sys.argv[2]])" "$@"; }
a_bf=$(get bf1.json accuracy); a_fp=$(get fp.json accuracy)
echo "      accuracy fp32 $a_fp, bf16 $a_bf; loss fp32 $(get fp.json loss), bf16 $(get bf1.json loss)"
python3 -c "import sys; sys.exit(0 if float('$a_fp') > 0.9 and abs(float('$a_bf') - float('$a_fp')) <= 0.03 else 1)"
check "bf16 learns as fp32 does (fp32 > 0.9, |d acc| <= 0.03)" $?
g_bf=$(get bf1.json gemm); g_fp=$(get fp.json gemm)
case "$g_bf" in amx-bf16|avx512-bf16) ok=0 ;; *) ok=1 ;; esac
[ $ok = 0 ] && [ "$g_fp" != "$g_bf" ]; check "the run records its GEMM engine (bf16: $g_bf, fp32: $g_fp)" $?
[ "$(get bf1.json loss)" = "$(get bf2.json loss)" ] && [ "$(get bf1.json accuracy)" = "$(get bf2.json accuracy)" ]
check "bf16: same loss and accuracy twice, with 2 threads and 1" $?
[ "$(get bf1.json loss)" != "$(get fp.json loss)" ]
check "bf16 is not the fp32 arithmetic (losses differ)" $?
h_bf=$(get bf1.json config_hash); h_fp=$(get fp.json config_hash); h_tf=$(get tf.json config_hash)
[ "$h_bf" != "$h_fp" ] && [ "$h_fp" = "$h_tf" ]
check "config hash: bf16 its own ($h_bf), fp32 = tf32 on the cpu ($h_fp, $h_tf)" $?
grep -q "already finished" tf.err
check "tf32 on the cpu is the finished fp32 config (skipped)" $? "$(tail -1 tf.err)"
[ "$(q r.db "select json_extract(config_json, '\$.precision') from runs where config_hash = '$h_bf' limit 1")" = bf16 ]
check "the bf16 run's stored config says precision bf16" $?
"$rb" export --db r.db --task mqar --out r.csv > /dev/null 2>&1 && grep -q '""precision"":""bf16""' r.csv
check "the export's config_json carries the bf16 precision (report groups compute time by it)" $?
echo "cpu_bf16: $fails failed"
[ $fails = 0 ]
