#!/usr/bin/env bash
# sweep_gpus.sh — sweeps over several GPUs, checked without a GPU (issue 13): worker-to-GPU assignment with
# several workers per GPU, a worker killed mid-run (retried on another GPU, nothing lost), a GPU whose workers
# always die (taken out of the rotation), and sweep --list through GNU parallel + merge = one sweep's frontier.
# Usage: tests/sweep_gpus.sh RECALLBENCH SOURCE_ROOT. Needs sqlite3 and python3; GNU parallel for its part.
#
# How, without a GPU: RB_SWEEP_FAKE_GPUS=1 lets `--gpus` go with --backend cpu; the sweep assigns GPU ids and
# sets CUDA_VISIBLE_DEVICES exactly as for --backend cuda, and the workers (a wrapper script given as --exe,
# which records its CUDA_VISIBLE_DEVICES, pid and times, then runs recallbench) really train on the CPU and
# write the real store. A real --backend cuda sweep is run too: on a machine without a device every worker
# fails (exit 1, or exit 2 where CUDA is not built), which checks the env the cuda workers get and that a
# systematic failure is not retried without end.
set -u
export LC_ALL=C OMP_WAIT_POLICY=PASSIVE
rb=${1:?usage: sweep_gpus.sh RECALLBENCH SOURCE_ROOT}
case $rb in /*) ;; *) rb=$PWD/$rb ;; esac
src=${2:?usage: sweep_gpus.sh RECALLBENCH SOURCE_ROOT}
. "$src/tests/lib.sh"  # check, q
[ -x "$rb" ] || { echo "FAIL  no recallbench binary at $rb"; exit 1; }
command -v sqlite3 >/dev/null && command -v python3 >/dev/null || { echo "SKIP  sweep_gpus.sh needs sqlite3 and python3"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
fails=0

# Worker wrappers. rec.sh: "start GPU PID T ARGS" / "end GPU PID T RC" around the real worker (it stays the
# worker's parent). rec_exec.sh: "start GPU PID T ARGS", then execs recallbench (the worker is that pid).
cat > rec.sh <<EOF
#!/usr/bin/env bash
echo "start \${CUDA_VISIBLE_DEVICES-none} \$\$ \$(date +%s.%N) \$*" >> $tmp/\${REC_LOG:-rec.log}
"$rb" "\$@"; rc=\$?
echo "end \${CUDA_VISIBLE_DEVICES-none} \$\$ \$(date +%s.%N) \$rc" >> $tmp/\${REC_LOG:-rec.log}
exit \$rc
EOF
cat > rec_exec.sh <<EOF
#!/usr/bin/env bash
echo "start \${CUDA_VISIBLE_DEVICES-none} \$\$ \$(date +%s.%N) \$*" >> $tmp/\${REC_LOG:-rec.log}
[ -n "\${DIE_ON_GPU:-}" ] && [ "\${CUDA_VISIBLE_DEVICES-}" = "\$DIE_ON_GPU" ] && kill -9 \$\$
exec "$rb" "\$@"
EOF
chmod +x rec.sh rec_exec.sh

# --- flags ------------------------------------------------------------------------------------------------
printf '[sweep]\n%s\nlayers = conv,attention\nseed = 1 2\n' "$tiny" > two.ini
"$rb" sweep two.ini --backend cpu --gpus 0,1 --dry-run --db f.db >/dev/null 2>f.err; rc=$?
[ $rc = 2 ] && grep -q -- '--gpus 0,1: only with --backend cuda' f.err; check "--gpus with --backend cpu: exit 2" $? "rc=$rc $(cat f.err)"
# The --gpus list is checked the same way whatever the backend (the fake-GPU hook lets a CPU run take it).
RB_SWEEP_FAKE_GPUS=1 "$rb" sweep two.ini --backend cpu --gpus 0,0 --dry-run --db f.db >/dev/null 2>f.err; rc=$?
[ $rc = 2 ] && grep -q 'GPU 0 listed twice' f.err; check "--gpus 0,0: exit 2 (use -j)" $? "rc=$rc $(cat f.err)"
RB_SWEEP_FAKE_GPUS=1 "$rb" sweep two.ini --backend cpu --gpus 0,2000 --dry-run --db f.db >/dev/null 2>f.err; rc=$?
[ $rc = 2 ]; check "--gpus 0,2000: exit 2" $? "rc=$rc $(cat f.err)"
printf '[sweep]\n%s\nlayers = conv,attention\nbackend = cuda\n' "$tiny" > cu.ini
# A build without the CUDA backend (no nvcc, or -Dcuda=disabled as tests/asan.sh builds) refuses every
# cuda run at expansion: the checks that need real cuda workers are skipped there.
has_cuda=1
"$rb" sweep cu.ini --dry-run --db f.db >/dev/null 2>f.err || { grep -q 'no CUDA backend' f.err && has_cuda=0; }
if [ $has_cuda = 1 ]; then
    "$rb" sweep cu.ini --gpus 0,1 --dry-run --db f.db >/dev/null 2>f.err; rc=$?
    check "--gpus with a spec whose runs set backend = cuda: accepted" $rc "$(cat f.err)"
else
    echo "SKIP  --gpus with a spec whose runs set backend = cuda (this build has no CUDA backend)"
fi

# --- 1: 8 GPUs, -j 16: two workers on every GPU at once, never more --------------------------------------
{ printf '[sweep]\n%s\nlayers = conv,attention\nseed =' "$tiny"; seq -s ' ' 1 20; } > a.ini
REC_LOG=a.log RB_SWEEP_FAKE_GPUS=1 "$rb" sweep a.ini --backend cpu --gpus 0,1,2,3,4,5,6,7 -j 16 --threads 1 \
    --db a/a.db --exe "$tmp/rec.sh" 2> a.err; rc=$?
check "1: sweep --gpus 0..7 -j 16 (20 runs) exit 0" $rc "$(tail -2 a.err)"
grep -q '^sweep: 8 GPUs (0,1,2,3,4,5,6,7): 2 workers each$' a.err; check "1: layout line: 8 GPUs, 2 workers each" $? "$(grep '^sweep: 8' a.err)"
out=$(python3 - a.log <<'PY'
import sys, collections
ev = [l.split() for l in open(sys.argv[1])]
start = {(e[1], e[2]): float(e[3]) for e in ev if e[0] == "start"}
end = {(e[1], e[2]): float(e[3]) for e in ev if e[0] == "end"}
runs = collections.Counter(g for g, p in start)
# Largest number of workers alive at once, per GPU and in all (intervals from inside the workers).
pts = sorted([(t, 1, g) for (g, p), t in start.items()] + [(end[k], -1, k[0]) for k in end])
cur, peak, tot, peak_tot = collections.Counter(), collections.Counter(), 0, 0
for t, d, g in pts:
    cur[g] += d; tot += d
    peak[g] = max(peak[g], cur[g]); peak_tot = max(peak_tot, tot)
print("starts", len(start), "ends", len(end), "gpus", ",".join(sorted(runs)),
      "peak_per_gpu", ",".join(str(peak[g]) for g in sorted(peak)), "peak_total", peak_tot,
      "runs_per_gpu", ",".join(str(runs[g]) for g in sorted(runs)))
PY
)
echo "      $out"
echo "$out" | grep -q '^starts 20 ends 20 gpus 0,1,2,3,4,5,6,7 '; check "1: 20 workers, CUDA_VISIBLE_DEVICES in 0..7, every GPU used" $? "$out"
echo "$out" | grep -q ' peak_per_gpu 2,2,2,2,2,2,2,2 peak_total 16 '; check "1: at most 2 workers per GPU at any time, 2 on every GPU at once, 16 in all" $? "$out"
# The sweep's own record ("on GPU g" per finished run) agrees with what the workers saw.
sweep_per_gpu=$(grep -o ' on GPU [0-9]*)$' a.err | tr -d ')' | awk '{print $3}' | sort | uniq -c | awk '{print $2":"$1}' | tr '\n' ' ')
rec_per_gpu=$(awk '$1 == "start" {print $2}' a.log | sort | uniq -c | awk '{print $2":"$1}' | tr '\n' ' ')
[ "$sweep_per_gpu" = "$rec_per_gpu" ]; check "1: runs per GPU in the sweep's progress = in the workers' env" $? "[$sweep_per_gpu] vs [$rec_per_gpu]"
[ "$(q a/a.db "select count(*) || ' ' || count(distinct config_hash) from runs where status='ok'")" = "20 20" ]
check "1: 20 ok rows, one per config" $? "$(q a/a.db "select status, count(*) from runs group by status")"
# -j 12 over 8 GPUs: uneven, said so.
{ printf '[sweep]\n%s\nlayers = conv,attention\nseed =' "$tiny"; seq -s ' ' 1 12; } > b.ini
REC_LOG=b.log RB_SWEEP_FAKE_GPUS=1 "$rb" sweep b.ini --backend cpu --gpus 0,1,2,3,4,5,6,7 -j 12 --threads 1 \
    --db b/b.db --exe "$tmp/rec.sh" 2> b.err; rc=$?
grep -q '^sweep: 8 GPUs (0,1,2,3,4,5,6,7): 2 workers on the first 4, 1 on the others (-j 12 is not a multiple of 8)$' b.err; ok=$?
bpeak=$(awk '$1 == "start" {print $2}' b.log | sort -u | tr '\n' ' ')
[ $rc = 0 ] && [ $ok = 0 ] && [ "$bpeak" = "0 1 2 3 4 5 6 7 " ]
check "1: -j 12 over 8 GPUs: exit 0, 2 workers on the first 4, 1 on the others, said so" $? "rc=$rc gpus=[$bpeak] $(grep '^sweep: 8' b.err)"

echo "      (${SECONDS}s)"
# --- 2: a worker killed (kill -9) mid-run: retried on the other GPU, nothing lost -----------------------------
cat > k.ini <<EOF
[sweep]
vocab = 64
seq-len = 32
kv-pairs = 4
train-examples = 3000
test-examples = 100
d-model = 16
epochs = 15
batch = 32
layers = conv,attention
lr = 1e-3 2e-3 3e-3
EOF
# 15 epochs (~0.2 s each here): the victim is picked at its first stored epoch and must still be running when
# the kill lands; with 3 epochs a loaded 2-core machine let it finish first (CI, 2026-12-02: 'run finished by
# another process', no retry).
REC_LOG=k.log RB_SWEEP_FAKE_GPUS=1 "$rb" sweep k.ini --backend cpu --gpus 2,5 -j 2 --threads 1 --db k/k.db \
    --exe "$tmp/rec_exec.sh" 2> k.err &
sp=$!
victim=""
for i in $(seq 600); do  # until a worker has stored its first epoch (mid-run), then kill -9 that worker
    victim=$(q k/k.db "select r.pid || ' ' || r.config_hash from runs r where r.status='running' and exists (select 1 from evals e where e.run_id = r.id) limit 1")
    [ -n "$victim" ] && break
    sleep 0.05
done
vpid=${victim%% *}; vhash=${victim#* }
vppid=$(ps -o ppid= -p "$vpid" 2>/dev/null | tr -d ' ')
[ -n "$vpid" ] && [ "$vppid" = "$sp" ]; check "2: found a worker mid-run (pid $vpid, a child of the sweep)" $? "victim=[$victim] ppid=[$vppid] sweep=$sp"
vgpu=$(awk -v p="$vpid" '$1 == "start" && $3 == p {print $2}' k.log)
[ -n "$vpid" ] && kill -9 "$vpid"
wait $sp; rc=$?
check "2: sweep exit 0 after the kill" $rc "$(tail -3 k.err)"
grep -q "retry .*killed by signal 9 .* on GPU $vgpu; attempt 2 of 3 next, on another GPU" k.err; check "2: the dead worker (GPU $vgpu) is reported and its run retried" $? "$(grep retry k.err)"
grep -q '^sweep k: 3 ok, 0 diverged, 0 failed' k.err; check "2: summary 3 ok, 0 failed" $? "$(grep '^sweep k:' k.err)"
grep -q '^sweep: 1 attempt died or failed at run time and was retried' k.err; check "2: summary says 1 attempt retried" $?
vargs=$(awk -v p="$vpid" '$1 == "start" && $3 == p {$1 = $2 = $3 = $4 = ""; print}' k.log)
again=$(awk -v p="$vpid" '$1 == "start" && $3 != p {g = $2; $1 = $2 = $3 = $4 = ""; print g "|" $0}' k.log | grep -F "|$vargs" | cut -d'|' -f1)
[ -n "$vargs" ] && [ -n "$again" ] && [ "$again" != "$vgpu" ]
check "2: the killed config ran again on the other GPU ($vgpu -> $again)" $? "again=[$again]"
[ "$(q k/k.db "select count(distinct config_hash) || ' ' || sum(status='ok') || ' ' || sum(status='interrupted') || ' ' || count(*) from runs")" = "3 3 1 4" ]
check "2: final store: one ok row per config, the killed sitting kept as interrupted" $? "$(q k/k.db "select config_hash, status from runs")"
[ "$(q k/k.db "select count(*) from evals e join runs r on r.id = e.run_id where r.config_hash = '$vhash' group by e.epoch, e.split having count(*) > 1" | wc -l)" = 0 ]
check "2: the retried run's evals are not duplicated (the dead attempt's removed)" $?
grep -q -- "--- sweep: attempt 2 of 3 on GPU $again ---" "k/logs/$vhash.log"; check "2: the run's log keeps both attempts" $?
"$rb" sweep k.ini --backend cpu --dry-run --db k/k.db | tail -1 | grep -q '^3 runs: 3 finished, 0 diverged (kept), 0 pending'
check "2: dry-run: every config finished" $?

echo "      (${SECONDS}s)"
# --- 3: a GPU whose workers always die: its runs go elsewhere, it leaves the rotation after 3 -----------------
{ printf '[sweep]\n%s\nlayers = conv,attention\nseed =' "$tiny"; seq -s ' ' 1 8; } > d.ini
DIE_ON_GPU=3 REC_LOG=d.log RB_SWEEP_FAKE_GPUS=1 "$rb" sweep d.ini --backend cpu --gpus 0,1,2,3 -j 4 --threads 1 \
    --db d/d.db --exe "$tmp/rec_exec.sh" 2> d.err; rc=$?
check "3: sweep exit 0 with GPU 3 killing every worker" $rc "$(tail -3 d.err)"
on3=$(awk '$1 == "start" && $2 == 3' d.log | wc -l)
[ "$on3" = 3 ]; check "3: exactly 3 attempts went to GPU 3" $? "on3=$on3"
[ "$(grep -c '^sweep: GPU 3: its last 3 runs failed; no more runs go to it' d.err)" = 1 ]
check "3: GPU 3 taken out of the rotation, said once" $? "$(grep 'GPU 3' d.err | head -3)"
[ "$(q d/d.db "select count(*) || ' ' || count(distinct config_hash) || ' ' || sum(status='ok') from runs")" = "8 8 8" ]
check "3: final store: 8 ok rows, one per config" $? "$(q d/d.db "select status, count(*) from runs group by status")"
grep -q '^sweep d: 8 ok, 0 diverged, 0 failed' d.err; check "3: summary 8 ok, 0 failed" $? "$(grep '^sweep d:' d.err)"

echo "      (${SECONDS}s)"
# --- 4: a real --backend cuda sweep on a machine without a device ----------------------------------------------
if [ $has_cuda = 0 ]; then
    echo "SKIP  4: --backend cuda without a device (this build has no CUDA backend)"
elif [ -e /dev/nvidia0 ] || [ -e /dev/nvidiactl ]; then
    echo "SKIP  4: --backend cuda without a device (this machine has one)"
else
    REC_LOG=c.log "$rb" sweep d.ini --backend cuda --gpus 4,6 -j 4 --threads 1 --db c/c.db --exe "$tmp/rec_exec.sh" 2> c.err; rc=$?
    att=$(grep -c '^start' c.log)
    envs=$(awk '$1 == "start" {print $2}' c.log | sort -u | tr '\n' ' ')
    [ $rc != 0 ] && [ "$envs" = "4 6 " ]; check "4: --backend cuda, no device: sweep fails (exit $rc), workers saw CUDA_VISIBLE_DEVICES 4 and 6" $? "envs=[$envs] $(tail -2 c.err)"
    # exit 2 (CUDA not built) stops at once; exit 1 (no device) on every GPU stops retrying after 3 per GPU.
    [ "$att" -le $((8 + 2 * 3)) ]; check "4: a systematic failure is not retried without end ($att attempts for 8 runs)" $?
    [ "$(q c/c.db "select count(*) from runs where status='ok'")" = 0 ]; check "4: no ok rows (nothing faked)" $?
fi

echo "      (${SECONDS}s)"
# --- 5: sweep --list through GNU parallel, per-worker databases, merge = one sweep's frontier ---------------
if command -v parallel >/dev/null; then
    cat > p.ini <<EOF
[sweep]
vocab = 32
seq-len = 16
kv-pairs = 2
train-examples = 1000
test-examples = 100
d-model = 16
epochs = 2
batch = 32
lr = 3e-3 1e-2
[model attention]
layers = conv,attention
[model swa]
layers = conv,swa
window = 2 4
EOF
    "$rb" sweep p.ini --db one/one.db -j 1 --threads 1 2> one.err; rc=$?
    check "5: single-process sweep exit 0" $rc "$(tail -2 one.err)"
    "$rb" sweep p.ini --list --db unused.db > cmds.txt
    [ "$(wc -l < cmds.txt)" = 6 ]; check "5: --list: 6 commands" $?
    # Each command line, then this job slot's database (the last --db wins).
    mkdir -p shards
    parallel -j 3 'eval {} --threads 1 --db shards/w{%}.db >/dev/null 2>>shards/w{%}.err' < cmds.txt; rc=$?
    check "5: parallel -j 3 exit 0" $rc "$(cat shards/*.err | tail -3)"
    nsh=$(ls shards/*.db | wc -l)
    [ "$nsh" -ge 2 ] && [ ! -e unused.db ]; check "5: $nsh per-worker databases (none written to the listed --db)" $?
    out=$("$rb" merge shards/*.db -o merged.db); rc=$?
    check "5: merge exit 0" $rc "$out"
    [ "$(q merged.db "select count(*) || ' ' || count(distinct config_hash) from runs where status='ok'")" = "6 6" ]
    check "5: merged: 6 ok rows, one per config" $?
    # run_id is a row number of each database; everything else must match.
    "$rb" frontier --db one/one.db --json --levels 0.04,0.05 | sed 's/"run_id": [0-9]*, //g' > f_one.json
    "$rb" frontier --db merged.db --json --levels 0.04,0.05 | sed 's/"run_id": [0-9]*, //g' > f_merged.json
    [ -s f_one.json ] && grep -q '"frontier": true' f_one.json && cmp -s f_one.json f_merged.json
    check "5: frontier --json of the merged databases = of the single sweep" $? "$(diff f_one.json f_merged.json | head -5)"
    a1=$(q one/one.db "select config_hash || ':' || accuracy from runs order by config_hash")
    a2=$(q merged.db "select config_hash || ':' || accuracy from runs order by config_hash")
    [ "$a1" = "$a2" ]; check "5: per-config accuracies identical (same bytes, same threads)" $?
else
    echo "SKIP  5: GNU parallel not installed (apt-get install parallel; .ci/deps installs it)"
fi

echo "sweep_gpus.sh: $fails failed (${SECONDS}s)"
[ $fails = 0 ]
