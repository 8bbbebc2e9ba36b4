#!/usr/bin/env bash
# reliability.sh — issue 14's attacks on the CLI and the store, kept as checks: concurrent sweeps on one
# database, grid overflow, unsafe output paths, foreign SQLite files, exit statuses, flag parsing, interrupts,
# read-only databases, hangs. Usage: tests/reliability.sh RECALLBENCH SOURCE_ROOT [ITEM...] (items 1..10;
# default all). Prints PASS/FAIL per check; exits 1 if any failed. Checks that need root (tmpfs, bind mounts)
# are skipped without it.
set -u
export LC_ALL=C OMP_WAIT_POLICY=PASSIVE RB_BUSY_TIMEOUT_MS=${RB_BUSY_TIMEOUT_MS:-60000}
rb=${1:?usage: reliability.sh RECALLBENCH SOURCE_ROOT [ITEM...]}
src=${2:?usage: reliability.sh RECALLBENCH SOURCE_ROOT [ITEM...]}
shift 2
items=" ${*:-1 2 3 4 5 6 7 8 9 10} "
case $rb in /*) ;; *) rb=$PWD/$rb ;; esac
tmp=$(mktemp -d)
mounts=()
cleanup() { for m in "${mounts[@]}"; do umount "$m" 2>/dev/null; done; rm -rf "$tmp"; }
trap cleanup EXIT
cd "$tmp"
fails=0
# Sanitized build (tests/asan.sh): every recallbench process writes its ASan/LeakSanitizer reports to files
# here, so a report from a command whose exit status or output a check does not read still fails. (GCC's UBSan
# ignores log_path; its reports abort the process, exit 134, which the exit-status checks catch.)
if [ -n "${RB_SANITIZED:-}" ]; then
    mkdir -p "$tmp/san"
    export ASAN_OPTIONS="${ASAN_OPTIONS:-}:log_path=$tmp/san/asan"
fi
check() {  # check NAME CONDITION-EXIT-STATUS [detail]
    if [ "$2" = 0 ]; then echo "PASS  $1 ${3:-}"; else echo "FAIL  $1 ${3:-}"; fails=$((fails + 1)); fi
}
want() { case $items in *" $1 "*) return 0 ;; esac; return 1; }
q() { sqlite3 "$@" 2>/dev/null; }
is_root=0; [ "$(id -u)" = 0 ] && is_root=1
tiny="--vocab 64 --seq-len 16 --kv-pairs 2 --train-examples 64 --test-examples 16 --d-model 16 --batch 16 --epochs 1 --progress none"
spec_tiny='vocab = 64
seq-len = 16
kv-pairs = 2
train-examples = 200
test-examples = 50
d-model = 16
batch = 32'
oneline() { [ "$(wc -l <"$1")" = 1 ]; }

# --- 1: concurrent sweeps over one database train each config once; --force copies are one seed ----------
if want 1; then
    cat > conc.ini <<EOF
[sweep]
$spec_tiny
epochs = 2
layers = conv,bla
window = 16
freqs = 4
lr = 1e-3 3e-3 1e-2
seed = 1 2 3 4
EOF
    n=12
    for k in 1 2 3; do
        "$rb" sweep conc.ini --db conc.db -j 2 --threads 1 >conc$k.out 2>conc$k.err &
    done
    wait
    ok=$(q conc.db "select count(*) from runs where status='ok'")
    hashes=$(q conc.db "select count(distinct config_hash) from runs where status='ok'")
    check "item1: 3 concurrent sweeps x 12 configs give 12 ok rows, one per config" \
        $([ "$ok" = $n ] && [ "$hashes" = $n ] && echo 0 || echo 1) "(ok rows $ok, distinct configs $hashes)"
    seeds=$("$rb" frontier --db conc.db --json | tail -1 | grep -o '"seeds": [0-9]*' | sort | uniq -c | tr '\n' ' ')
    check "item1: frontier counts 4 seeds per point after concurrent sweeps" \
        $(echo "$seeds" | grep -qv '"seeds": [^4]' && ! echo "$seeds" | grep -q '"seeds": [0-35-9]' && echo 0 || echo 1) "($seeds)"
    "$rb" sweep conc.ini --db conc.db -j 2 --threads 1 >conc4.out 2>conc4.err
    grep -q "0 to run" conc4.err; check "item1: a rerun finds nothing to run" $? "$(head -1 conc4.err)"

    "$rb" train $tiny --layers conv,bla --window 16 --freqs 4 --db force.db --json >f1.out 2>f1.err
    "$rb" train $tiny --layers conv,bla --window 16 --freqs 4 --db force.db --json --force >f2.out 2>f2.err
    s=$("$rb" frontier --db force.db --json | tail -1 | grep -o '"seeds": [0-9]*')
    check "item1: train --force duplicate counts as one seed in frontier" $([ "$s" = '"seeds": 1' ] && echo 0 || echo 1) "($s)"
    # A live owner blocks a second train of the same config (without --force).
    "$rb" train $tiny --layers conv,bla --window 16 --freqs 4 --seed 9 --epochs 4000 --early-stop 1.01 --db live.db >l1.out 2>l1.err &
    p=$!
    for i in $(seq 600); do [ "$(q live.db "select count(*) from runs where status='running'")" = 1 ] && break; sleep 0.1; done
    "$rb" train $tiny --layers conv,bla --window 16 --freqs 4 --seed 9 --epochs 4000 --early-stop 1.01 --db live.db >l2.out 2>l2.err
    rc=$?
    kill -INT $p; wait $p
    rows=$(q live.db "select count(*) from runs")
    check "item1: a second train of a config a live process runs is refused (exit 1, one line)" \
        $([ $rc = 1 ] && [ "$rows" = 1 ] && grep -q "being trained by" l2.err && echo 0 || echo 1) "(exit $rc, rows $rows: $(tail -1 l2.err))"
fi

# --- 2: grid overflow refused with exit 2; --dry-run linear -----------------------------------------------
if want 2; then
    vals() { seq "$1" "$2" | paste -sd' ' - | fold -s -w 120 | sed '2,$s/^/    /'; }  # continuation lines
    {
        echo "[sweep]"; echo "layers = conv,bla"
        echo "seed = $(vals 1 256)"; echo "d-model = $(vals 1 256)"; echo "epochs = $(vals 1 256)"
        echo "batch = $(vals 1 256)"; echo "train-examples = $(vals 1 256)"; echo "test-examples = $(vals 1 256)"
        echo "slots = $(vals 1 256)"; echo "state-dim = $(vals 1 256)"
    } > huge.ini
    "$rb" sweep huge.ini --dry-run --db huge.db >huge.out 2>huge.err
    rc=$?
    check "item2: 256^8-point grid refused with exit 2 naming the size" \
        $([ $rc = 2 ] && grep -q "grid" huge.err && oneline huge.err && echo 0 || echo 1) "(exit $rc: $(head -c 200 huge.err))"
    {
        echo "[sweep]"; echo "$spec_tiny"; echo "layers = conv,bla"; echo "window = 16"; echo "freqs = 4"
        echo "seed = $(vals 1 1000)"; echo "lr = $(seq 0.001 0.001 0.1 | paste -sd' ' - | fold -s -w 120 | sed '2,$s/^/    /')"
    } > big.ini
    t0=$(date +%s.%N)
    timeout 120 "$rb" sweep big.ini --dry-run --db big.db >big.out 2>big.err
    rc=$?
    t=$(echo "$(date +%s.%N) - $t0" | bc)
    check "item2: --dry-run of a 1e5-point grid finishes in < 60 s (quadratic: 118 s)" \
        $([ $rc = 0 ] && tail -1 big.out | grep -q "^100000 runs" && [ "$(echo "$t < 60" | bc)" = 1 ] && echo 0 || echo 1) "(exit $rc, ${t}s: $(tail -1 big.out | head -c 80))"
fi

# --- 3: output paths ---------------------------------------------------------------------------------------
if want 3; then
    "$rb" train $tiny --layers conv,bla --window 16 --freqs 4 --db out.db >/dev/null 2>&1
    echo old > target.md; ln -sf target.md link.md
    "$rb" report --db out.db --out link.md >r.out 2>r.err
    check "item3: report --out SYMLINK keeps the link and writes its target" \
        $([ -L link.md ] && grep -q "^#" target.md && echo 0 || echo 1) "($(ls -l link.md | cut -c1-10), target: $(head -c 30 target.md))"
    "$rb" report --db out.db --out /dev/full >r2.out 2>r2.err
    rc=$?
    check "item3: report --out /dev/full fails (exit 1) and /dev/full stays a device" \
        $([ $rc = 1 ] && [ -c /dev/full ] && oneline r2.err && echo 0 || echo 1) "(exit $rc: $(head -c 150 r2.err))"
    [ -c /dev/full ] || { rm -f /dev/full; mknod -m 666 /dev/full c 1 7; }
    "$rb" plot --db out.db --out "" >p.out 2>p.err
    rc=$?
    check "item3: plot --out '' refused with exit 2" $([ $rc = 2 ] && oneline p.err && echo 0 || echo 1) "(exit $rc: $(head -c 150 p.err))"
    mkdir -p adir
    "$rb" report --db out.db --out adir >r4.out 2>r4.err
    rc=$?
    check "item3: report --out DIRECTORY fails (exit 1) and leaves no stray temporary file" \
        $([ $rc = 1 ] && [ -z "$(ls -d adir.tmp* 2>/dev/null)" ] && echo 0 || echo 1) "(exit $rc; left: $(ls -d adir.tmp* 2>/dev/null))"
    "$rb" report --db missing.db --out rep/x.md >r3.out 2>r3.err
    rc=$?
    check "item3: a failed report leaves no file or directory behind" \
        $([ $rc = 1 ] && [ ! -e rep ] && echo 0 || echo 1) "(exit $rc; left: $(ls rep 2>/dev/null | tr '\n' ' '))"
    "$rb" frontier --db missing.db --csv fr/x.csv >f3.out 2>f3.err
    rc=$?
    check "item3: a failed frontier --csv leaves nothing behind" $([ $rc = 1 ] && [ ! -e fr ] && echo 0 || echo 1) "(exit $rc)"
    "$rb" frontier --db out.db --csv /dev/full/x.csv >f4.out 2>f4.err
    rc=$?
    check "item3: frontier --csv into an impossible path: exit 1, one line" $([ $rc = 1 ] && oneline f4.err && echo 0 || echo 1) "(exit $rc: $(head -c 150 f4.err))"
fi

# --- 4: foreign SQLite files are never taken over ------------------------------------------------------------
if want 4; then
    q uv.db "PRAGMA user_version=7"
    q view.db "CREATE VIEW v AS SELECT 1 AS x"
    q idx.db "CREATE TABLE t(x); DROP TABLE t; PRAGMA user_version=3"
    for f in uv view; do
        before=$(md5sum $f.db | cut -d' ' -f1)
        "$rb" train $tiny --layers conv,bla --window 16 --freqs 4 --db $f.db >$f.out 2>$f.err
        rc=$?
        after=$(md5sum $f.db | cut -d' ' -f1)
        check "item4: SQLite file with only a $f is refused unchanged" \
            $([ $rc = 1 ] && [ "$before" = "$after" ] && grep -q "not a recallbench database" $f.err && echo 0 || echo 1) "(exit $rc: $(tail -1 $f.err | head -c 150))"
    done
    : > empty.db
    "$rb" train $tiny --layers conv,bla --window 16 --freqs 4 --db empty.db >e.out 2>e.err
    check "item4: an empty file is still initialised" $? "$(tail -1 e.err | head -c 100)"
fi

# --- 5: exit statuses ---------------------------------------------------------------------------------------
if want 5; then
    for c in "gen --task mqar --vocab 64 --seq-len 16 --kv-pairs 2 -n 50" "help train" "train $tiny --layers conv,bla --window 16 --freqs 4 --db full.db --json" \
             "frontier --db full.db --json" "sweep conc.ini --dry-run --db none.db"; do
        [ -f conc.ini ] || printf '[sweep]\n%s\nlayers = conv,bla\n' "$spec_tiny" > conc.ini
        "$rb" $c >/dev/full 2>w.err
        rc=$?
        check "item5: '$c > /dev/full' exits 1" $([ $rc = 1 ] && grep -qi "space\|write" w.err && echo 0 || echo 1) "(exit $rc: $(tail -1 w.err | head -c 100))"
    done
    bench="bench $tiny --layers conv,bla --window 16 --freqs 4 --steps 2 --warmup-steps 1"
    "$rb" $bench --db /nonexistent/dir/b.db >b.out 2>b.err
    rc=$?
    check "item5: bench with an unusable database exits 1" $([ $rc = 1 ] && echo 0 || echo 1) "(exit $rc: $(tail -1 b.err | head -c 120))"
    head -c 4096 /dev/urandom > junk.db
    "$rb" $bench --db junk.db >b.out 2>b.err
    rc=$?
    check "item5: bench with a corrupt database exits 1" $([ $rc = 1 ] && echo 0 || echo 1) "(exit $rc: $(tail -1 b.err | head -c 120))"
    "$rb" $bench --db b.db >/dev/full 2>b.err
    rc=$?
    check "item5: bench > /dev/full exits 1" $([ $rc = 1 ] && echo 0 || echo 1) "(exit $rc)"
    "$rb" train $tiny --layers conv,bla --window 16 --freqs 4 --db vs.db >/dev/null 2>&1
    "$rb" report --db vs.db --vs NOSUCH >v.out 2>v.err
    rc=$?
    check "item5: report --vs NOSUCH exits 2 (as frontier does)" $([ $rc = 2 ] && oneline v.err && echo 0 || echo 1) "(exit $rc)"
    # (regress --only NOSUCH exiting 0 is harness/regress.c's, owned by the regression suite: not checked here.)
    if [ -n "${RB_SANITIZED:-}" ]; then
        echo "SKIP  item5: out-of-memory checks (ulimit -v and ASan's shadow memory do not mix)"
    else
        # Out of memory is a runtime failure (1) everywhere: a model far beyond the address-space limit.
        ( ulimit -v 1000000; "$rb" train --task mqar --vocab 64 --seq-len 16 --kv-pairs 2 --train-examples 64 --test-examples 16 \
            --d-model 8192 --layers conv,attention,attention,attention --batch 4096 --epochs 1 --db oom.db --progress none ) >o.out 2>o.err
        rc=$?
        check "item5: out of memory building a model exits 1" $([ $rc = 1 ] && grep -q "out of memory" o.err && echo 0 || echo 1) "(exit $rc: $(tail -1 o.err | head -c 120))"
        ( ulimit -v 1000000; "$rb" bench --task mqar --vocab 64 --seq-len 16 --kv-pairs 2 --d-model 8192 --layers conv,attention,attention,attention \
            --batch 4096 --steps 1 --db oom.db ) >o.out 2>o.err
        rc=$?
        check "item5: out of memory in bench exits 1" $([ $rc = 1 ] && grep -q "out of memory" o.err && echo 0 || echo 1) "(exit $rc: $(tail -1 o.err | head -c 120))"
    fi
fi

# --- 6: flag parsing ------------------------------------------------------------------------------------------
if want 6; then
    e2() {  # e2 NAME PATTERN ARGS...: exit 2, one stderr line matching PATTERN
        local name=$1 pat=$2; shift 2
        "$rb" "$@" >x.out 2>x.err; local rc=$?
        check "item6: $name" $([ $rc = 2 ] && oneline x.err && grep -qE -- "$pat" x.err && echo 0 || echo 1) "(exit $rc: $(head -c 150 x.err))"
    }
    e2 "--no-lr 0.5 refused" "no-lr" train $tiny --no-lr 0.5 --db p.db
    e2 "--seed ' -5' refused" "seed" train $tiny --seed " -5" --db p.db
    e2 "--seed 0x10 refused (decimal only)" "seed" train $tiny --seed 0x10 --db p.db
    e2 "--test-mix 4294967360:4:10 refused" "test-mix" train $tiny --vocab 1000 --test-mix 4294967360:4:10 --db p.db
    timeout 20 "$rb" train $tiny --vocab 1000 --train-mix 64:4:200000000 --db p.db >x.out 2>x.err; rc=$?
    check "item6: --train-mix count 2e8 refused (as --train-examples is)" $([ $rc = 2 ] && grep -q "train-mix" x.err && oneline x.err && echo 0 || echo 1) "(exit $rc: $(head -c 150 x.err))"
    e2 "--d-model abc: not a number" "not a number|must be an integer" train $tiny --d-model abc --db p.db
    "$rb" train $tiny --d-model abc --db p.db 2>x.err; ! grep -q "out of range" x.err
    check "item6: a non-number is not called 'out of range'" $? "($(head -c 120 x.err))"
    a=$("$rb" gen --task mqar --vocab 64 --seq-len 16 --kv-pairs 2 --seed 010 -n 2 2>&1)
    b=$("$rb" gen --task mqar --vocab 64 --seq-len 16 --kv-pairs 2 --seed 10 -n 2 2>&1)
    check "item6: --seed 010 is ten" $([ "$a" = "$b" ] && echo 0 || echo 1)
    a=$("$rb" gen --task=mqar --vocab=64 --seq-len=16 --kv-pairs=2 --seed=3 -n 2 --format=jsonl 2>&1); rc=$?
    b=$("$rb" gen --task mqar --vocab 64 --seq-len 16 --kv-pairs 2 --seed 3 -n 2 --format jsonl 2>&1)
    check "item6: gen accepts --flag=value" $([ $rc = 0 ] && [ "$a" = "$b" ] && echo 0 || echo 1) "($(echo "$a" | head -c 100))"
    # bench's own options (harness/bench.c's loop, before the config parser) take '=' too.
    "$rb" bench $tiny --layers conv,bla --window 16 --freqs 4 --steps=2 --warmup-steps=1 -j=2 --db be.db >x.out 2>x.err; rc=$?
    check "item6: bench accepts --steps=N --warmup-steps=N -j=N" \
        $([ $rc = 0 ] && grep -q "over 2 steps after 1 warm-up" x.out && grep -q "2 concurrent runs" x.out && echo 0 || echo 1) "(exit $rc: $(grep -m1 'step time' x.out | head -c 100)$(head -c 100 x.err))"
    e2 "bench --steps=abc: not a number" "--steps abc is not a number" bench $tiny --steps=abc --db be.db
    e2 "bench --warmup-steps ' 5' refused (decimal digits only)" "warmup-steps" bench $tiny --warmup-steps " 5" --db be.db
    # Help ranges are the real limits: the help's bound passes validation (sweep --dry-run finalizes every
    # point without training), one beyond it is refused.
    rng() { "$rb" help train | grep -E "^ *--$1 " | grep -oE '\[[0-9e+.]+\.\.[0-9e+.]+\]$' | tr -d '[]' | sed 's/\.\./ /' |
            python3 -c 'import sys; print(" ".join(str(int(float(x))) for x in sys.stdin.read().split()))'; }
    for spec in "feature-dim hi layers=conv,la" "train-automata hi task=regbench layers=conv,bla" \
                "test-automata hi task=regbench layers=conv,bla" "seq-len lo vocab=64 kv-pairs=1 layers=conv,bla"; do
        set -- $spec; f=$1; side=$2; shift 2
        read -r lo hi <<<"$(rng $f)"
        if [ $side = hi ]; then edge=$hi; out=$((hi + 1)); else edge=$lo; out=$((lo - 1)); fi
        for v in $edge $out; do { echo "[sweep]"; for kv in "$@"; do echo "${kv/=/ = }"; done; echo "$f = $v"; } > hr$v.ini; done
        "$rb" sweep hr$out.ini --dry-run --db h.db >x.out 2>x.err; rc1=$?
        "$rb" sweep hr$edge.ini --dry-run --db h.db >y.out 2>y.err; rc0=$?
        check "item6: help range of --$f is the real one ($edge accepted, $out refused)" \
            $([ $rc1 = 2 ] && [ $rc0 = 0 ] && echo 0 || echo 1) "(help [$lo..$hi]; $edge: exit $rc0 $(tail -1 y.err | head -c 100); $out: exit $rc1)"
    done
fi

# --- 7: interrupted runs are marked 'interrupted' with one line --------------------------------------------
if want 7; then
    for sig in INT TERM; do
        "$rb" train $tiny --layers conv,bla --window 16 --freqs 4 --epochs 5000 --early-stop 1.01 --seed 5 --db int$sig.db >i.out 2>i.err &
        p=$!
        for i in $(seq 600); do [ "$(q int$sig.db "select count(*) from evals")" -ge 1 ] 2>/dev/null && break; sleep 0.1; done
        kill -$sig $p; wait $p; rc=$?
        st=$(q int$sig.db "select status from runs")
        check "item7: SIG$sig during train marks the run interrupted, exit 1, one line saying so" \
            $([ $rc = 1 ] && [ "$st" = interrupted ] && [ "$(grep -c interrupted i.err)" = 1 ] && ! grep -q store_finish_run i.err && echo 0 || echo 1) "(exit $rc, status $st: $(tr '\n' '|' < i.err | head -c 200))"
    done
    printf '[sweep]\n%s\nepochs = 5000\nearly-stop = 1.01\nlayers = conv,bla\nwindow = 16\nfreqs = 4\nseed = 1 2\n' "$spec_tiny" > par.ini
    "$rb" sweep par.ini --db par.db -j 2 --threads 1 >s.out 2>s.err &
    p=$!
    for i in $(seq 600); do [ "$(q par.db "select count(distinct run_id) from evals")" -ge 2 ] 2>/dev/null && break; sleep 0.1; done
    kill -9 $p; wait $p 2>/dev/null
    for i in $(seq 600); do [ "$(q par.db "select count(*) from runs where status='running'")" = 0 ] && break; sleep 0.1; done
    st=$(q par.db "select group_concat(status) from runs")
    check "item7: killing the sweep (parent death) marks its workers' runs interrupted" \
        $([ "$st" = "interrupted,interrupted" ] && ! grep -q "store_finish_run" logs/*.log && echo 0 || echo 1) "(statuses $st)"
fi

# --- 8: read-only databases can be read ---------------------------------------------------------------------
if want 8; then
    mkdir -p rodir
    "$rb" train $tiny --layers conv,bla --window 16 --freqs 4 --db rodir/r.db >/dev/null 2>&1
    "$rb" train $tiny --layers conv,bla --window 16 --freqs 4 --seed 2 --db rodir/m.db >/dev/null 2>&1
    printf '[sweep]\n%s\nlayers = conv,bla\nwindow = 16\nfreqs = 4\nseed = 1 2\n' "$spec_tiny" > ro.ini
    if [ $is_root = 1 ]; then
        mkdir -p romnt && mount --bind rodir romnt && mount -o remount,ro,bind romnt && mounts+=("$tmp/romnt")
        d=romnt
    else
        chmod a-w rodir rodir/*; d=rodir
    fi
    for c in "frontier --db $d/r.db" "report --db $d/r.db" "sweep ro.ini --dry-run --db $d/r.db" "plot --db $d/r.db --out plots8"; do
        "$rb" $c >x.out 2>x.err
        rc=$?
        check "item8: '$c' reads a read-only database" $([ $rc = 0 ] && echo 0 || echo 1) "(exit $rc: $(tail -1 x.err | head -c 120))"
    done
    "$rb" merge $d/r.db $d/m.db -o merged.db >x.out 2>x.err
    rc=$?
    n=$(q merged.db "select count(*) from runs")
    check "item8: merge reads read-only inputs" $([ $rc = 0 ] && [ "$n" = 2 ] && echo 0 || echo 1) "(exit $rc, rows $n: $(tail -1 x.err | head -c 120))"
    "$rb" train $tiny --layers conv,bla --window 16 --freqs 4 --seed 3 --db $d/r.db >x.out 2>x.err
    rc=$?
    check "item8: writing a read-only database fails with exit 1 and says read-only" $([ $rc = 1 ] && grep -qi "read-only" x.err && echo 0 || echo 1) "(exit $rc: $(tail -1 x.err | head -c 120))"
fi

# --- 9: hangs -------------------------------------------------------------------------------------------------
if want 9; then
    t0=$(date +%s)
    timeout 60 "$rb" kernel --window 16384 --freqs 1 --out k --no-plot >k.out 2>k.err
    rc=$?
    t=$(( $(date +%s) - t0 ))
    sz=$(du -sm k k.out 2>/dev/null | awk '{s+=$1} END {print s}')
    check "item9: kernel --window 16384 --freqs 1 takes < 30 s and writes < 200 MB" \
        $([ $rc = 0 ] && [ $t -lt 30 ] && [ "${sz:-0}" -lt 200 ] && echo 0 || echo 1) "(exit $rc, ${t}s, ${sz} MB)"
    "$rb" train $tiny --layers conv,bla --window 16 --freqs 4 --db hang.db >/dev/null 2>&1
    q hang.db "update runs set state_floats=1e308"
    timeout 20 "$rb" plot --db hang.db --out plots9 >x.out 2>x.err
    rc=$?
    check "item9: plot of an overflowing state size terminates" $([ $rc != 124 ] && echo 0 || echo 1) "(exit $rc)"
    t0=$(date +%s)
    timeout 20 "$rb" train $tiny --layers conv,bla --window 16 --freqs 4 --db "" >x.out 2>x.err
    rc=$?
    t=$(( $(date +%s) - t0 ))
    check "item9: --db '' refused at once with exit 2" $([ $rc = 2 ] && [ $t -lt 5 ] && oneline x.err && echo 0 || echo 1) "(exit $rc, ${t}s: $(head -c 120 x.err))"
    timeout 20 "$rb" frontier --db "" >x.out 2>x.err
    rc=$?
    check "item9: frontier --db '' refused with exit 2" $([ $rc = 2 ] && echo 0 || echo 1) "(exit $rc)"
    if [ $is_root = 1 ]; then
        mkdir -p full && mount -t tmpfs -o size=400k tmpfs full && mounts+=("$tmp/full")
        printf '[sweep]\n%s\nepochs = 1\nlayers = conv,bla\nwindow = 16\nfreqs = 4\nseed = 1 2 3\n' "$spec_tiny" > full.ini
        "$rb" train $tiny --layers conv,bla --window 16 --freqs 4 --seed 7 --db full/f.db >/dev/null 2>&1
        dd if=/dev/zero of=full/filler bs=4k 2>/dev/null
        timeout 120 "$rb" sweep full.ini --db full/f.db --threads 1 >x.out 2>x.err
        rc=$?
        check "item9: a sweep on a full disk exits 1 and says disk full" \
            $([ $rc = 1 ] && grep -qi "disk full\|no space left" x.err && echo 0 || echo 1) "(exit $rc: $(grep -i 'full\|space' x.err | head -2 | tr '\n' '|' | head -c 200))"
        # The database has room but the logs' file system is full: workers would leave empty logs.
        timeout 120 "$rb" sweep full.ini --db lf.db --logs full/logs --threads 1 >x.out 2>x.err
        rc=$?
        check "item9: a sweep whose logs' disk is full exits 1 and says disk full" \
            $([ $rc = 1 ] && grep -qi "disk full" x.err && echo 0 || echo 1) "(exit $rc: $(grep -i 'full\|space' x.err | head -2 | tr '\n' '|' | head -c 200))"
    else
        echo "SKIP  item9: disk-full sweep (needs root for a tmpfs)"
    fi
fi

# --- 10: negative user_version of a recallbench-marked file -------------------------------------------------
if want 10; then
    q neg.db "PRAGMA application_id=1380082536; PRAGMA user_version=-1"
    before=$(md5sum neg.db | cut -d' ' -f1)
    "$rb" train $tiny --layers conv,bla --window 16 --freqs 4 --db neg.db >x.out 2>x.err
    rc=$?
    check "item10: a negative schema version is refused (exit 1, file unchanged)" \
        $([ $rc = 1 ] && [ "$(md5sum neg.db | cut -d' ' -f1)" = "$before" ] && oneline x.err && echo 0 || echo 1) "(exit $rc: $(head -c 150 x.err))"
fi

if [ -n "${RB_SANITIZED:-}" ]; then
    reports=$(ls "$tmp/san")
    [ -z "$reports" ] || head -n 30 "$tmp"/san/*
    check "no ASan/LeakSanitizer report from any recallbench process" $([ -z "$reports" ] && echo 0 || echo 1) "($(echo $reports | wc -w) report files)"
fi

echo "reliability: $fails failed"
[ $fails = 0 ]
