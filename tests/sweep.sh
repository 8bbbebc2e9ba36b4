#!/usr/bin/env bash
# sweep.sh — the sweep runner end to end: grid counts (--dry-run), config-hash stability, spec errors (exit 2
# with FILE:LINE), --list commands that run, a real -j 2 sweep whose rerun skips everything, kill -9 of a sweep
# mid-run and resume (nothing finished lost or redone, the killed run redone), merge of overlapping databases.
# Usage: tests/sweep.sh RECALLBENCH SOURCE_ROOT. Prints one line per check; exits 1 if any failed.
set -u
export LC_ALL=C
rb=${1:?usage: sweep.sh RECALLBENCH SOURCE_ROOT}
src=${2:?usage: sweep.sh RECALLBENCH SOURCE_ROOT}
. "$src/tests/lib.sh"  # check, q, test_start
test_start
fails=0
have_sqlite=1; command -v sqlite3 >/dev/null || have_sqlite=0
count_ok() { if [ $have_sqlite = 1 ]; then q "$1" "select count(*) from runs where status='ok'"; else echo 0; fi; }


# --- grid expansion counts --------------------------------------------------------------------------------
cat > grid.ini <<EOF
; comment
[sweep]
name = grid
$tiny
lr = 1e-3 1e-2
seed = 1 2

[model attention]
layers = conv,attention

[model swa]
layers = conv,swa
window = 4
  8 16   ; a continuation line extends the list

[model bla]
layers = conv,bla
window = 16
freqs = 2 4
lr = 3e-3
EOF
out=$("$rb" sweep grid.ini --dry-run --db grid.db); rc=$?
check "dry-run exit 0" $rc
# attention 2x2 = 4, swa 2x2x3 = 12, bla 1x2x2 = 4 (its lr overrides [sweep]'s list)
echo "$out" | grep -q '^20 runs: 0 finished, 0 diverged (kept), 20 pending'; check "grid size 4 + 12 + 4 = 20" $? "$(echo "$out" | tail -1)"
[ "$(echo "$out" | grep -c ' swa ')" = 12 ]; check "swa block: 2 lr x 2 seeds x 3 windows (continuation line)" $?
[ ! -e grid.db ]; check "dry-run creates no database" $?
hashes1=$(echo "$out" | awk '$1 ~ /^[0-9]+$/ && length($4) == 16 {print $4}')
[ "$(echo "$hashes1" | sort -u | wc -l)" = 20 ]; check "20 distinct config hashes" $?

# A [sweep] list of a knob attention does not read: duplicates dropped, not run twice.
cat > dup.ini <<EOF
[sweep]
$tiny
window = 4 8
[model attention]
layers = conv,attention
[model swa]
layers = conv,swa
EOF
out=$("$rb" sweep dup.ini --dry-run --db dup.db)
echo "$out" | tail -1 | grep -q '^3 runs: .*; 1 duplicate grid points dropped'; check "duplicates (knob not read) dropped" $? "$(echo "$out" | tail -1)"

# --- config hash stability ----------------------------------------------------------------------------------
hashes2=$("$rb" sweep grid.ini --dry-run --db grid.db | awk '$1 ~ /^[0-9]+$/ && length($4) == 16 {print $4}')
[ "$hashes1" = "$hashes2" ]; check "hashes identical across invocations (same order)" $?
# Same grid, keys reordered, other spellings (underscores, comments): same set of hashes.
cat > grid2.ini <<EOF
[model bla]
lr = 3e-3
freqs = 2 4
window = 16
layers = conv,bla
[model swa]
window = 4 8 16
layers = conv,swa
[sweep]
seed = 1 2
lr = 1e-3 1e-2
batch = 32
epochs = 1
d_model = 16
test_examples = 50
train-examples = 200
kv-pairs = 2
seq-len = 16
vocab = 64
[model attention]
layers = conv,attention
EOF
hashes3=$("$rb" sweep grid2.ini --dry-run --db grid.db | awk '$1 ~ /^[0-9]+$/ && length($4) == 16 {print $4}' | sort)
[ "$(echo "$hashes1" | sort)" = "$hashes3" ]; check "hashes independent of key order and spelling" $?

# --- spec errors: exit 2, one line naming FILE:LINE, key and value ------------------------------------------
bad() {  # bad NAME EXPECTED-REGEX SPEC-TEXT
    printf '%s\n' "$3" > bad.ini
    msg=$("$rb" sweep bad.ini --dry-run --db bad.db 2>&1 >/dev/null); rc=$?
    [ $rc = 2 ] && echo "$msg" | grep -Eq "$2"; check "$1 (exit 2: $msg)" $? "rc=$rc"
}
bad "unknown key" '^recallbench: bad\.ini:3: \[model a\] unknown key .wndow.' "[model a]
layers = conv,swa
wndow = 4"
bad "bad value" "bad\.ini:3: \[sweep\] d-model = 0: .*d-model 0.*\[1, 8192\]" "[sweep]
layers = conv,swa
d-model = 64 0"
bad "unknown section" "bad\.ini:2: unknown section \[models\]" "[models]
layers = conv,swa"
bad "block without layers" "bad\.ini:[0-9]+: \[model a\] sets no layers" "[model a]
window = 4"
bad "invalid grid point (finalize)" "bad\.ini:[0-9]+: \[model a\] at freqs=8: .*freqs" "[model a]
layers = conv,bla
window = 4
freqs = 2 8"
bad "run option in a spec" "bad\.ini:2: \[sweep\] threads: a run option" "[sweep]
threads = 2"
"$rb" sweep missing.ini --dry-run >/dev/null 2>&1; rc=$?
[ $rc = 1 ]; check "missing spec file: exit 1" $? "rc=$rc"
"$rb" sweep grid.ini -j 0 >/dev/null 2>&1; rc=$?
[ $rc = 2 ]; check "-j 0: exit 2" $? "rc=$rc"
"$rb" sweep --help | grep -q -- '--dry-run'; check "sweep --help lists the flags" $?

# --- a real sweep with 2 concurrent workers; rerun skips everything ------------------------------------------
cat > real.ini <<EOF
[sweep]
$tiny
lr = 1e-3 1e-2
[model attention]
layers = conv,attention
[model swa]
layers = conv,swa
window = 4 8
EOF
pending=$("$rb" sweep real.ini --dry-run --db real/a.db | awk '$1 ~ /^[0-9]+$/ && length($4) == 16 {print $4}' | sort)
"$rb" sweep real.ini -j 2 --db real/a.db 2> sweep1.err; rc=$?
check "sweep -j 2 exit 0" $rc "$(tail -3 sweep1.err)"
grep -q 'sweep real: 6 ok, 0 diverged, 0 failed, 0 skipped' sweep1.err; check "summary: 6 ok" $? "$(tail -1 sweep1.err)"
if [ $have_sqlite = 1 ]; then
    [ "$(count_ok real/a.db)" = 6 ]; check "6 ok rows in the store" $?
    [ "$(q real/a.db "select count(*) from runs where status != 'ok'")" = 0 ]; check "no running/failed rows left" $?
    [ "$(q real/a.db "select config_hash from runs order by config_hash")" = "$pending" ]
    check "stored config hashes = dry-run hashes (train and sweep hash alike)" $?
    [ "$(q real/a.db "select count(distinct run_id) from evals")" = 6 ]; check "evals of every run written" $?
    ids1=$(q real/a.db "select id || ':' || config_hash || ':' || finished from runs order by id")
fi
ls real/logs/*.log >/dev/null 2>&1; check "per-run logs in <db dir>/logs" $?
"$rb" sweep real.ini -j 2 --db real/a.db 2> sweep2.err; rc=$?
check "rerun exit 0" $rc
grep -q '6 already finished.*0 to run' sweep2.err; check "rerun skips all 6 finished runs" $? "$(head -1 sweep2.err)"
if [ $have_sqlite = 1 ]; then
    [ "$(q real/a.db "select id || ':' || config_hash || ':' || finished from runs order by id")" = "$ids1" ]
    check "rerun left every row untouched" $?
fi
out=$("$rb" sweep real.ini --dry-run --db real/a.db | tail -1)
echo "$out" | grep -q '^6 runs: 6 finished, 0 diverged (kept), 0 pending'; check "dry-run shows all finished" $? "$out"
"$rb" sweep real.ini --dry-run --db real/a.db 2>&1 >/dev/null | grep -q 'backend'; [ $? = 1 ]
check "no backend note where the grid's runs are found" $?
if [ $have_sqlite = 1 ]; then
    # the same runs as if they had run on the GPU (other backend, so other hashes): a CPU grid finds none
    cp real/a.db real/c.db && q real/c.db "update runs set backend = 'cuda', config_hash = substr('ffffffffffffffff' || id, -16)" >/dev/null
    out=$("$rb" sweep real.ini --dry-run --db real/c.db 2>&1 >/dev/null)
    echo "$out" | grep -q 'none of this grid (backend cpu) has finished in the database, which holds 6 finished runs on backend cuda.*pass --backend cuda'
    check "dry-run names a forgotten --backend (6 finished runs on cuda)" $? "$out"
fi
# The estimate of the pending runs' time: a new lr (attention, swa: they have finished runs to go by) and a
# new mixer (none); the hours are the matched runs' mean durations, from the database's timestamps.
sed -e 's/^lr = 1e-3 1e-2$/lr = 1e-3 1e-2 3e-3/' real.ini > real2.ini && printf '[model mamba]\nlayers = conv,mamba\n' >> real2.ini
out=$("$rb" sweep real2.ini --dry-run -j 2 --db real/a.db | tail -1)
echo "$out" | grep -q '^estimate: 3 of 6 pending runs match finished runs of the same task, layers and variant (0 scaled from another training-automata count): [0-9.]* h of run time at their mean durations, about [0-9.]* h of wall time with -j 2 if they run as those did; the others have no finished run to go by$'
check "dry-run estimates the pending runs from the finished ones" $? "$out"
if [ $have_sqlite = 1 ]; then
    # attention's two runs made to take 1 and 2 hours, swa's four 30 minutes: 1 x 1.5 h + 2 x 0.5 h = 2.50 h
    cp real/a.db real/b.db
    q real/b.db "update runs set started = datetime(finished, '-' || (3600 * (1 + (lr > 0.005))) || ' seconds') where model = 'conv,attention'; update runs set started = datetime(finished, '-1800 seconds') where model = 'conv,swa'" >/dev/null
    out=$("$rb" sweep real2.ini --dry-run -j 2 --db real/b.db | tail -1)
    echo "$out" | grep -q ': 2.50 h of run time at their mean durations, about 1.25 h of wall time with -j 2'
    check "the estimate's hours are the matched runs' mean durations (2.50 h)" $? "$out"
fi

# --- --list: one self-contained command per pending run, which runs as is ----------------------------------
cat > list.ini <<EOF
[sweep]
$tiny
[model swa]
layers = conv,swa
window = 4 8 16
EOF
"$rb" sweep list.ini --list --db list.db > cmds.txt; rc=$?
check "--list exit 0" $rc
[ "$(wc -l < cmds.txt)" = 3 ] && [ "$(grep -c "^$rb train .* --db list.db --checkpoint checkpoints\$" cmds.txt)" = 3 ]
check "--list: 3 lines 'BINARY train ... --db list.db --checkpoint checkpoints'" $? "$(head -1 cmds.txt)"
head -1 cmds.txt | bash > /dev/null 2>&1; rc=$?
check "first listed command runs (exit 0)" $rc
"$rb" sweep list.ini --list --db list.db > cmds2.txt
[ "$(wc -l < cmds2.txt)" = 2 ] && ! grep -qxF "$(head -1 cmds.txt)" cmds2.txt
check "--list after it ran: 2 pending, the finished one gone" $?

# --- kill -9 mid-run, then resume ----------------------------------------------------------------------------
if [ $have_sqlite = 1 ] && command -v python3 >/dev/null; then
    cat > slow.ini <<EOF
[sweep]
vocab = 64
seq-len = 32
kv-pairs = 4
train-examples = 20000
test-examples = 100
d-model = 16
epochs = 4
batch = 32
lr = 1e-3 2e-3 3e-3
[model attention]
layers = conv,attention
EOF
    # Started by a child-subreaper so the killed workers are reaped (as init would; some containers' pid 1
    # does not reap, and a zombie pid still looks alive to the store).
    python3 - "$rb" <<'PY'
import ctypes, os, sqlite3, subprocess, sys, time
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
p = subprocess.Popen([sys.argv[1], "sweep", "slow.ini", "-j", "1", "--threads", "1", "--db", "slow/s.db"],
                     start_new_session=True, stderr=open("slow1.err", "w"))
def count(status):
    try:
        with sqlite3.connect("slow/s.db", timeout=5) as db:
            return db.execute("select count(*) from runs where status=?", (status,)).fetchone()[0]
    except sqlite3.Error:
        return 0
for _ in range(1200):  # until one run finished and the next one is running
    if count("ok") >= 1 and count("running") >= 1:
        break
    time.sleep(0.05)
os.killpg(p.pid, 9)  # the sweep and its worker: kill -9 of the process group
while True:
    try:
        os.waitpid(-1, 0)
    except ChildProcessError:
        break
PY
    done_before=$(q slow/s.db "select id || ':' || config_hash || ':' || finished from runs where status='ok' order by id")
    killed=$(q slow/s.db "select config_hash from runs where status='running'")
    nb=$(echo "$done_before" | grep -c .)
    [ "$nb" -ge 1 ] && [ "$nb" -le 2 ] && [ -n "$killed" ]
    check "killed mid-run: $nb finished, one left 'running'" $? "ok=[$done_before] running=[$killed]"
    "$rb" sweep slow.ini -j 1 --threads 1 --db slow/s.db 2> slow2.err; rc=$?
    check "resumed sweep exit 0" $rc "$(tail -2 slow2.err)"
    grep -q '1 interrupted run from an earlier sweep will be redone' slow2.err; check "resume reports the interrupted run" $? "$(head -2 slow2.err)"
    grep -q "$nb already finished" slow2.err; check "resume skips the $nb finished run(s)" $? "$(grep 'runs in the grid' slow2.err)"
    [ "$(q slow/s.db "select count(*) from runs where status='ok'")" = 3 ]; check "all 3 runs ok after resume" $?
    [ "$(q slow/s.db "select count(*) from (select config_hash from runs where status='ok' group by config_hash having count(*) > 1)")" = 0 ] &&
    [ "$(q slow/s.db "select count(*) || ' ' || sum(status='interrupted') || ' ' || (select count(*) from evals where run_id in (select id from runs where status='interrupted')) from runs where config_hash='$killed'")" = "2 1 0" ]
    check "one ok row per config; the killed sitting kept as interrupted, without evals" $? "$(q slow/s.db "select config_hash, status from runs")"
    after=$(q slow/s.db "select id || ':' || config_hash || ':' || finished from runs where status='ok' order by id" | head -"$nb")
    [ "$after" = "$done_before" ]; check "finished runs not redone (same ids, same finish times)" $?
    [ "$(q slow/s.db "select count(*) from runs where config_hash='$killed' and status='ok'")" = 1 ]; check "the killed run was redone" $?
else
    echo "SKIP  kill -9 resume (needs sqlite3 and python3)"
fi

# --- merge of two stores with overlapping runs -----------------------------------------------------------------
cat > ma.ini <<EOF
[sweep]
$tiny
[model swa]
layers = conv,swa
window = 4 8
EOF
cat > mb.ini <<EOF
[sweep]
$tiny
[model swa]
layers = conv,swa
window = 8 16
EOF
"$rb" sweep ma.ini -j 2 --db m/a.db 2>/dev/null && "$rb" sweep mb.ini -j 2 --db m/b.db 2>/dev/null
check "two overlapping sweeps" $?
out=$("$rb" merge m/a.db m/b.db -o m/all.db); rc=$?
check "merge exit 0" $rc "$out"
echo "$out" | grep -q 'm/all.db: 3 finished runs (0 before, 3 copied from 2 databases)'; check "merge: 2 + 2 runs, 1 overlapping -> 3" $? "$out"
out=$("$rb" merge m/a.db m/b.db -o m/all.db)
echo "$out" | grep -q 'm/all.db: 3 finished runs (3 before, 0 copied'; check "merging again copies nothing" $? "$out"
if [ $have_sqlite = 1 ]; then
    [ "$(q m/all.db "select count(distinct config_hash) from runs where status='ok'")" = 3 ]; check "3 distinct configs in the merged store" $?
    a=$(q m/a.db "select count(*) from evals")
    n=$(q m/all.db "select count(*) from evals"); per=$(( a / 2 ))
    [ "$n" = $(( 3 * per )) ]; check "evals copied with their runs ($n rows)" $? "a=$a per=$per n=$n"
    [ "$("$rb" sweep mb.ini --dry-run --db m/all.db | tail -1 | cut -d';' -f1)" = "2 runs: 2 finished, 0 diverged (kept), 0 pending" ]
    check "a sweep sees merged runs as finished" $?
fi
"$rb" merge m/a.db -o m/a.db >/dev/null 2>&1; rc=$?
[ $rc = 2 ]; check "merge into one of its inputs: exit 2" $? "rc=$rc"
"$rb" merge m/none.db -o m/x.db >/dev/null 2>&1; rc=$?
[ $rc = 1 ]; check "merge of a missing input: exit 1" $? "rc=$rc"

# --- draining: --time-limit and SIGUSR1 start no new run and let running ones finish (kept, rc 0) ---------------
# Runs of ~1 s each on 2 cores (MQAR L 32, d 32, 4000 examples, 8 epochs, no early stop), so that a 1 s
# limit falls inside the 6-run grid on a machine several times faster too.
printf '[sweep]\nname = drain\ntask = mqar\nvocab = 64\nseq-len = 32\nkv-pairs = 2\ntrain-examples = 4000\ntest-examples = 50\nd-model = 32\nbatch = 32\nepochs = 8\nearly-stop = 1.01\n\n[model attention]\nlayers = conv,attention\nlr = 1e-3 2e-3 3e-3 4e-3 5e-3 6e-3\n' > dl.ini
"$rb" sweep dl.ini --db dl/a.db -j 1 --time-limit 1 > dl1.out 2> dl1.err; rc=$?
check "--time-limit 1: exit 0" $rc "$(tail -2 dl1.err)"
grep -q 'starting no new runs' dl1.err && grep -q 'rerun the same command to resume' dl1.err
check "--time-limit: says it stopped starting runs and how to resume" $? "$(tail -2 dl1.err)"
# progress lines after the limit give no ETA for runs that will not start (they said "ETA 0:05" before)
awk '/starting no new runs/ {d = 1; next} d && /runs done/ && !/ETA - \(stopping/ {bad = 1} END {exit bad}' dl1.err
check "--time-limit: no ETA in the progress lines once draining" $? "$(grep 'runs done' dl1.err | tail -2)"
"$rb" sweep dl.ini --db dl/b.db -j 1 > dl2.out 2> dl2.err & sp=$!
for i in $(seq 1 600); do grep -q 'mqar\|\[ *1/' dl2.err 2>/dev/null && break; [ -e dl/b.db ] && break; sleep 0.1; done
sleep 0.3; kill -USR1 $sp; wait $sp; rc=$?
check "SIGUSR1: exit 0 (running run finished, nothing interrupted)" $rc "$(tail -2 dl2.err)"
grep -q 'SIGUSR1: starting no new runs' dl2.err; check "SIGUSR1: drain announced" $? "$(tail -3 dl2.err)"
if [ $have_sqlite = 1 ]; then
    [ "$(q dl/a.db "select count(*) from runs where status != 'ok'")" = 0 ] && [ "$(q dl/b.db "select count(*) from runs where status != 'ok'")" = 0 ]
    check "drained sweeps leave no running/interrupted rows" $?
    n1=$(count_ok dl/a.db); n2=$(count_ok dl/b.db)
    [ "$n1" -ge 1 ] && [ "$n1" -lt 6 ] && [ "$n2" -lt 6 ]; check "drained sweeps ran part of the grid (time limit: $n1 of 6, SIGUSR1: $n2 of 6)" $?
fi
"$rb" sweep dl.ini --db dl/a.db -j 2 > dl3.out 2> dl3.err; rc=$?
[ $rc = 0 ] && grep -Eq 'sweep drain: [0-9]+ ok, 0 diverged, 0 failed, [1-5] skipped' dl3.err
check "rerun after --time-limit resumes the rest" $? "$(tail -1 dl3.err)"
[ $have_sqlite = 0 ] || { [ "$(count_ok dl/a.db)" = 6 ]; check "all 6 runs ok after the resume" $?; }
"$rb" sweep dl.ini --db dl/c.db --time-limit 0 >/dev/null 2>&1; rc=$?
[ $rc = 2 ]; check "--time-limit 0: exit 2" $? "rc=$rc"

# [sweep] eval-every = N: every worker evaluates every N epochs and at the last when early stop cannot
# trigger; the runs' results and config hashes are those of the plain sweep.
for e in 1 3; do
    { echo "[sweep]"; echo "name = ev"; echo "$tiny" | sed 's/^epochs = .*/epochs = 5/'; echo "early-stop = 1.01"
      [ $e = 3 ] && echo "eval-every = 3"; echo "[model swa]"; echo "layers = conv,swa"; echo "window = 4 8"; } > ev$e.ini
    "$rb" sweep ev$e.ini --db ev$e.db -j 2 > /dev/null 2> ev$e.err
    check "sweep with eval-every = $e ok" $? "$(tail -1 ev$e.err)"
done
if [ $have_sqlite = 1 ]; then
    r1=$(q ev1.db "select config_hash, accuracy, json_extract(result_json, '\$.loss') from runs order by config_hash")
    r3=$(q ev3.db "select config_hash, accuracy, json_extract(result_json, '\$.loss') from runs order by config_hash")
    [ -n "$r1" ] && [ "$r1" = "$r3" ]; check "eval-every = 3: same hashes, accuracies and losses as every epoch" $? "$r1 / $r3"
    [ "$(q ev3.db "select group_concat(epoch) from (select distinct epoch from evals where split != 'train' order by epoch)")" = "3,5" ] &&
    [ "$(q ev1.db "select count(distinct epoch) from evals where split != 'train'")" = 5 ]
    check "eval-every = 3: test evaluations at epochs 3 and 5 only (every epoch: 5)" $?
fi
printf '[sweep]\neval-every = 0\n[model a]\nlayers = conv,swa\n' > ev0.ini
"$rb" sweep ev0.ini --dry-run > /dev/null 2> ev0.err; rc=$?
[ $rc = 2 ] && grep -q "eval-every = 0" ev0.err; check "eval-every = 0: exit 2 with one line" $? "rc=$rc $(head -1 ev0.err)"

# --- tools/edge_lrs.py: of each config's two edge lrs, only the one next to its better middle lr ------------------
cat > mid.ini <<EOF
[sweep]
$tiny
[model swa-mid]
lr = 3.16e-3 1e-2
layers = conv,swa
window = 4 8
[model swa-edge]
lr = 1e-3 3.16e-2
layers = conv,swa
window = 4 8
EOF
sed '/^\[model swa-edge\]/,$d' mid.ini > midonly.ini
"$rb" sweep midonly.ini -j 2 --db mid.db > /dev/null 2>&1
# both directions: window 4's 3.16e-3 made the winner (the edge kept must then be 1e-3)
[ $have_sqlite = 1 ] && q mid.db "update runs set accuracy = 1.0 where window = 4 and lr > 0.003 and lr < 0.004"
python3 "$src/tools/edge_lrs.py" "$rb" mid.ini mid.db edge.ini swa-edge > edge.out 2>&1; rc=$?
if [ $have_sqlite = 1 ]; then
    want=""
    for w in 4 8; do
        a=$(q mid.db "select accuracy from runs where window = $w and lr > 0.003 and lr < 0.004")
        b=$(q mid.db "select accuracy from runs where window = $w and lr > 0.009 and lr < 0.011")
        want="$want window=$w:$(python3 -c "print('1e-3' if $a > $b else '3.16e-2')")"
    done
    got=$("$rb" sweep edge.ini --dry-run --db mid.db | awk '$1 ~ /^[0-9]+$/ && length($4) == 16' |
          sed -E 's/.*lr=([^ ]+).*window=([0-9]+).*/ window=\2:\1/' | sort | tr -d '\n')
    [ $rc = 0 ] && [ "$got" = "$want" ]
    check "edge_lrs.py keeps one edge per config, next to the better middle lr:$want" $? "rc=$rc got '$got'; $(tail -1 edge.out)"
fi

# --- the committed specs expand (a typo in one fails here, not on the device): their grid sizes ---------
for sp in bla-paper-mqar:288 bla-paper-regbench:80 mqar-frontier:348 quick:21 regbench:46; do
    f=$src/harness/sweeps/${sp%%:*}.ini
    out=$("$rb" sweep "$f" --dry-run --db "$tmp/none_${sp%%:*}.db" 2>&1); rc=$?
    [ $rc = 0 ] && grep -q "^${sp#*:} runs: 0 finished" <<<"$out"
    check "harness/sweeps/${sp%%:*}.ini expands to ${sp#*:} runs" $? "rc=$rc $(tail -2 <<<"$out" | head -1)"
done

echo "sweep.sh: $fails failed"
[ $fails = 0 ]
