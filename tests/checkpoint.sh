#!/usr/bin/env bash
# checkpoint.sh — train --checkpoint and the sweep's checkpoints (harness/checkpoint.c): a run stopped
# inside an epoch (--stop-at-step, as SIGINT), at an epoch's end, or killed with SIGKILL after a timed
# epoch-end checkpoint, resumes and ends bit for bit as the unbroken run (every evaluation of the resumed
# epochs, the final loss, the result line); RegBench too; a corrupt, truncated or foreign checkpoint
# stops the run with one line and exit 1 and leaves the database as it was; a finished run removes its
# checkpoint; a sweep interrupted by SIGINT resumes its runs at the next sweep.
# Usage: tests/checkpoint.sh RECALLBENCH SOURCE_ROOT. Prints one line per check; exits 1 if any failed.
set -u
export LC_ALL=C OMP_WAIT_POLICY=PASSIVE
rb=${1:?usage: checkpoint.sh RECALLBENCH SOURCE_ROOT}
src=${2:?usage: checkpoint.sh RECALLBENCH SOURCE_ROOT}
. "$src/tests/lib.sh"  # check, q, test_start
test_start
fails=0

# 3 epochs of 32 steps (2,000 examples, batch 64); BLA, so the mixer's state is in the checkpoint too.
mq="--task mqar --vocab 64 --seq-len 32 --kv-pairs 4 --train-examples 2000 --test-examples 200 --d-model 32 --batch 64
    --epochs 3 --seed 3 --layers conv,bla --window 16 --freqs 4 --progress none --json --threads 2"
# every evaluation of a run at full precision (run id $2), and the result line without its run-specific fields
evals() { q "$1" "select epoch, split, printf('%.17g %.17g', accuracy, loss) from evals where run_id = $2 order by epoch, split"; }
result() { tail -1 "$1" | sed -E 's/, "(tokens_per_s|run_id|resumed_at_step|git_rev)": [^,}]*//g'; }
errlines() { grep -c '^recallbench:' "$1"; }  # the error lines (the rest is progress: "generating data")

$rb train $mq --db a.db > a.json 2> a.err
check "unbroken run: exit 0" $?
evals a.db 1 > a.evals

# (1) stopped inside epoch 2 (step 50 = batch 18 of 32), then resumed
$rb train $mq --db b.db --checkpoint ck --stop-at-step 50 > b1.json 2> b1.err
rc=$?
check "stopped run: exit 1, status interrupted, checkpoint written" \
    $([ $rc = 1 ] && grep -q '"status": "interrupted"' b1.json && [ -f ck/*.ckpt ]; echo $?) "rc=$rc"
grep -q 'checkpoint at epoch 2 batch 18 (step 50)' b1.err
check "it says where the checkpoint is (epoch 2 batch 18, step 50)" $?
$rb train $mq --db b.db --checkpoint ck > b2.json 2> b2.err
check "resumed run: exit 0, says so, resumed_at_step 50" \
    $(grep -q 'resuming from ck/.*epoch 2, batch 18 of it, step 50 of 96' b2.err && grep -q '"resumed_at_step": 50' b2.json; echo $?)
# the resumed row holds epoch 1 (moved from the stopped row) and 2, 3 (its own)
evals b.db 2 > b.evals
check "mid-epoch resume: every evaluation (epochs 1-3) bit-identical to the unbroken run's" \
    $(diff a.evals b.evals > /dev/null; echo $?)
check "the stopped row stays, as interrupted, without evaluations; the resumed row ok" \
    $([ "$(q b.db "select group_concat(status || ':' || (select count(*) from evals e where e.run_id = r.id)) from runs r order by id")" = "interrupted:0,ok:6" ]; echo $?) \
    "$(q b.db "select group_concat(status || ':' || (select count(*) from evals e where e.run_id = r.id)) from runs r order by id")"
check "mid-epoch resume: same result line (accuracy, loss, steps, epochs)" $([ "$(result a.json)" = "$(result b2.json)" ]; echo $?)
check "finished run removed its checkpoint" $([ -z "$(ls ck 2>/dev/null)" ]; echo $?)

# (2) stopped exactly at an epoch's end (step 64: batch 32 of 32)
$rb train $mq --db c.db --checkpoint ck --stop-at-step 64 > /dev/null 2>&1
$rb train $mq --db c.db --checkpoint ck > c2.json 2> c2.err
check "epoch-end stop: resumed, epoch 3 evaluation and result bit-identical" \
    $(grep -q 'epoch 2, batch 32 of it' c2.err && diff a.evals <(evals c.db 2) > /dev/null &&
      [ "$(result a.json)" = "$(result c2.json)" ]; echo $?)

# (3) SIGKILL after a timed epoch-end checkpoint (--checkpoint-every 1 over 60 epochs): the run resumes
# from whichever epoch the last checkpoint holds. The run must outlast its first checkpoint (at >= 1 s) by
# a wide margin, as the poll below has to see the file before the finished run removes it: ~5 s on a
# quiet core (it was 1.3 s with 1,000 examples x 40 epochs, and a loaded CI machine missed the 0.3 s).
long="--task mqar --vocab 64 --seq-len 32 --kv-pairs 4 --train-examples 4000 --test-examples 100 --d-model 32 --batch 64
      --epochs 60 --seed 5 --layers conv,attention --progress none --json --threads 1"
$rb train $long --db k0.db > k0.json 2>/dev/null
$rb train $long --db k.db --checkpoint kk --checkpoint-every 1 > /dev/null 2>&1 &
pid=$!
for i in $(seq 1 600); do [ -f kk/*.ckpt ] && break; kill -0 $pid 2>/dev/null || break; sleep 0.1; done
kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
had=$([ -f kk/*.ckpt ]; echo $?)
check "SIGKILL: a timed checkpoint existed when the run was killed" $had
$rb train $long --db k.db --checkpoint kk > k2.json 2> k2.err
check "SIGKILL: resumed from it and ended with the unbroken run's result" \
    $(grep -q resumed_at_step k2.json && [ "$(result k0.json)" = "$(result k2.json)" ]; echo $?) "$(head -c 300 k2.err)"
check "SIGKILL: the killed run's row becomes interrupted, the resumed one ok" \
    $([ "$(q k.db "select group_concat(status) from runs order by id")" = "interrupted,ok" ]; echo $?) \
    "$(q k.db "select group_concat(status) from runs")"

# (4) RegBench (its evaluations carry TVD): stop inside epoch 1, resume
rg="--task regbench --train-automata 40 --test-automata 10 --d-model 32 --batch 16 --epochs 2 --seed 2
    --layers conv,swa --window 8 --progress none --json --threads 2"
$rb train $rg --db r0.db > r0.json 2>/dev/null
$rb train $rg --db r.db --checkpoint rk --stop-at-step 3 > /dev/null 2>&1
$rb train $rg --db r.db --checkpoint rk > r2.json 2>/dev/null
check "RegBench: resumed run's result (accuracy, TVD, loss) bit-identical" \
    $(grep -q resumed_at_step r2.json && [ "$(result r0.json)" = "$(result r2.json)" ] &&
      diff <(q r0.db "select epoch, split, printf('%.17g', tvd) from evals where run_id = 1 order by epoch, split") \
           <(q r.db "select epoch, split, printf('%.17g', tvd) from evals where run_id = 2 order by epoch, split") > /dev/null; echo $?)

# (5) bad checkpoints: one line, exit 1, no run row added, the file left for the user
$rb train $mq --db d.db --checkpoint dk --stop-at-step 10 > /dev/null 2>&1
f=$(ls dk/*.ckpt)
rows() { q d.db "select count(*) from runs"; }
n0=$(rows)
cp "$f" good.ckpt
printf '\x55' | dd of="$f" bs=1 seek=5000 conv=notrunc 2>/dev/null
$rb train $mq --db d.db --checkpoint dk > /dev/null 2> d.err
rc=$?
check "corrupt checkpoint: exit 1, one line naming the checksum, no new run row" \
    $([ $rc = 1 ] && [ "$(errlines d.err)" = 1 ] && grep -q 'checksum mismatch (corrupt); delete it' d.err && [ "$(rows)" = "$n0" ]; echo $?) \
    "rc=$rc $(cat d.err)"
head -c 3000 good.ckpt > "$f"
$rb train $mq --db d.db --checkpoint dk > /dev/null 2> d.err
check "truncated checkpoint: exit 1, one line" $([ $? = 1 ] && grep -q 'truncated' d.err && [ "$(errlines d.err)" = 1 ]; echo $?) "$(cat d.err)"
cp good.ckpt "$f"
cp good.ckpt dk/0000000000000000.ckpt
$rb train $mq --seed 4 --db d.db --checkpoint dk > /dev/null 2>&1
hash4=$(q d.db "select config_hash from runs where seed = 4")
cp good.ckpt "dk/$hash4.ckpt"
$rb train $mq --seed 4 --db d.db --checkpoint dk --force > /dev/null 2>&1
check "--force trains from the start and ignores a checkpoint" $?
cp good.ckpt "dk/$hash4.ckpt"
q d.db "delete from runs where seed = 4"
$rb train $mq --seed 4 --db d.db --checkpoint dk > /dev/null 2> d.err
check "another configuration's checkpoint under this one's name: exit 1, one line" \
    $([ $? = 1 ] && grep -q 'written by another configuration' d.err && [ "$(errlines d.err)" = 1 ]; echo $?) "$(cat d.err)"
$rb train $mq --db d.db --checkpoint dk --max-steps 90 > /dev/null 2> d.err
check "a checkpoint of another --max-steps (the lr schedule's length): exit 1, one line" \
    $([ $? = 1 ] && grep -q 'was written by a run of 96 steps, this one has 90' d.err && [ "$(errlines d.err)" = 1 ]; echo $?) "$(cat d.err)"
$rb train $mq --db d.db --checkpoint dk > d2.json 2>/dev/null
check "the good checkpoint still resumes" $(grep -q '"resumed_at_step": 10' d2.json; echo $?)
$rb train $mq --db d.db --checkpoint-every 0 > /dev/null 2> d.err
check "--checkpoint-every 0: usage error (exit 2)" $([ $? = 2 ]; echo $?) "$(cat d.err)"

# (6) a sweep stopped by SIGINT resumes its runs from their checkpoints at the next sweep
cat > s.ini <<'INI'
[sweep]
task = mqar
vocab = 64
seq-len = 32
kv-pairs = 4
train-examples = 1000
test-examples = 100
d-model = 32
batch = 64
epochs = 400
seed = 5
[model attention]
layers = conv,attention
lr = 1e-3 2e-3
INI
$rb sweep s.ini --db sw/s.db -j 2 --threads 1 > s1.out 2> s1.err &
pid=$!
# both runs training (their rows 'running' and an epoch evaluated), then SIGINT: the workers checkpoint
for i in $(seq 1 1200); do
    [ "$(q sw/s.db "select count(distinct run_id) from evals")" = 2 ] && break
    kill -0 $pid 2>/dev/null || break; sleep 0.1
done
kill -INT $pid; wait $pid
n=$(ls sw/checkpoints | grep -c '\.ckpt$')
check "sweep SIGINT: both workers left a checkpoint in <db dir>/checkpoints" $([ "$n" = 2 ]; echo $?) "n=$n $(tail -3 s1.err)"
grep -q ' 0 failed, 2 stopped by the signal (interrupted: they resume next time)' s1.err
check "sweep SIGINT: the summary counts the 2 runs as stopped, not failed" $? "$(grep '^sweep s' s1.err | tail -1)"
$rb sweep s.ini --db sw/s.db -j 2 --threads 1 > s2.out 2> s2.err
check "next sweep: exit 0, both runs resumed (resumed_at_step in their results) and ok" \
    $([ $? = 0 ] && [ "$(q sw/s.db "select count(*) from runs where status = 'ok' and result_json like '%resumed_at_step%'")" = 2 ]; echo $?) \
    "$(tail -3 s2.err)"
$rb sweep s.ini --db u/s.db -j 2 --threads 1 --checkpoints off > /dev/null 2>&1
same=$(diff <(q sw/s.db "select lr, printf('%.17g', accuracy) from runs where status = 'ok' order by lr") \
            <(q u/s.db "select lr, printf('%.17g', accuracy) from runs order by lr") > /dev/null; echo $?)
check "resumed sweep's accuracies = an unbroken sweep's (--checkpoints off), bit for bit" $same
check "--checkpoints off: no checkpoint directory" $([ ! -e u/checkpoints ]; echo $?)
$rb sweep s.ini --db l/s.db --list | grep -q -- "--db l/s.db --checkpoint l/checkpoints$"
check "sweep --list commands carry --checkpoint" $?

echo "checkpoint: $fails failed"
[ $fails = 0 ]
