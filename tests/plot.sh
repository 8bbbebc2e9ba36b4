#!/usr/bin/env bash
# plot.sh — frontier / plot / report on a small real results database: frontier table, --json and --csv;
# figures written as valid PNG (signature, size) and SVG; per-run curves; RegBench TVD panel; report links;
# exit statuses (gnuplot missing, no database, bad flags).
# Usage: tests/plot.sh RECALLBENCH SOURCE_ROOT. Prints one line per check; exits 1 if any failed.
set -u
export LC_ALL=C
rb=${1:?usage: plot.sh RECALLBENCH SOURCE_ROOT}
src=${2:?usage: plot.sh RECALLBENCH SOURCE_ROOT}
. "$src/tests/lib.sh"  # check, q
case $rb in /*) ;; *) rb=$PWD/$rb ;; esac
[ -x "$rb" ] || { echo "FAIL  no recallbench binary at $rb"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
[ -n "${RB_KEEP_PLOTS:-}" ] && trap 'rm -rf "$RB_KEEP_PLOTS"; cp -r "$tmp" "$RB_KEEP_PLOTS"; rm -rf "$tmp"' EXIT
cd "$tmp"
export RB_PLOTS_DIR="$src/plots"
fails=0
valid_png() {  # PNG signature 89 50 4E 47 0D 0A 1A 0A and a plausible size
    [ -f "$1" ] && [ "$(head -c 8 "$1" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] && [ "$(stat -c %s "$1")" -gt 5000 ]
}
valid_svg() {
    [ -f "$1" ] && head -c 200 "$1" | grep -q '<?xml' && grep -q '<svg' "$1" && tail -c 100 "$1" | grep -q '</svg>' &&
        [ "$(stat -c %s "$1")" -gt 2000 ]
}

# A small real database: 2 variants x 2 state sizes x 2 lrs on MQAR, 2 RegBench runs.
cat > s.ini <<'EOF'
[sweep]
vocab = 64
seq-len = 16
kv-pairs = 2
train-examples = 300
test-examples = 50
d-model = 16
epochs = 2
batch = 32
lr = 1e-3 1e-2
[model attention]
layers = conv,attention
[model swa]
layers = conv,swa
window = 2 4
EOF
cat > r.ini <<'EOF'
[sweep]
task = regbench
train-automata = 30
test-automata = 10
d-model = 16
epochs = 2
batch = 8
[model swa]
layers = conv,swa
window = 4 8
EOF
"$rb" sweep s.ini -j 2 --db db/r.db 2>/dev/null && "$rb" sweep r.ini -j 2 --db db/r.db 2>/dev/null
check "sweeps for the database" $?

# --- frontier ------------------------------------------------------------------------------------------------
out=$("$rb" frontier --db db/r.db); rc=$?
check "frontier exit 0" $rc
echo "$out" | grep -q '== mqar: best configuration per state size' && echo "$out" | grep -q '== regbench: best'
check "frontier table per task" $?
echo "$out" | grep -q 'state efficiency R = state_B / state_A'; check "ratio table" $?
"$rb" frontier --db db/r.db --task mqar --json | tail -1 | python3 -c '
import json, sys
d = json.loads(sys.stdin.read())
assert set(d) >= {"rows", "ratios"}, d.keys()
assert all(r["task"] == "mqar" for r in d["rows"])
assert {r["variant"] for r in d["rows"]} == {"attention", "swa"}
assert len(d["ratios"]) == 3 and all(r["a"] == "attention" and r["b"] == "swa" for r in d["ratios"])
assert sum(1 for r in d["rows"] if r["variant"] == "swa") == 2
'
check "frontier --json: rows and ratios of mqar (2 swa sizes, 1 pair x 3 levels)" $?
"$rb" frontier --db db/r.db --levels 0.3,0.6 --csv csv/f.csv >/dev/null 2>&1 &&
    [ "$(head -1 csv/f.csv)" = "task,variant,state_floats,state_bytes,accuracy,lr,seeds,configs,on_frontier,best_run,config" ] &&
    [ "$(wc -l < csv/f_levels.csv)" = $((1 + 3 * 2)) ] && [ -s csv/f_ratios.csv ]
check "frontier --csv: points, levels (3 variants x 2 levels), ratios" $?
"$rb" frontier --db db/r.db --levels 0.5,1.5 >/dev/null 2>&1; rc=$?
[ $rc = 2 ]; check "frontier --levels 1.5: exit 2" $? "rc=$rc"
"$rb" frontier --db db/r.db --task lm >/dev/null 2>&1; rc=$?
[ $rc = 2 ]; check "frontier --task lm: exit 2" $? "rc=$rc"
"$rb" frontier --db nothere.db >/dev/null 2>&1; rc=$?
[ $rc = 1 ] && [ ! -e nothere.db ]; check "frontier on a missing database: exit 1, nothing created" $? "rc=$rc"
"$rb" frontier --help | grep -q -- '--levels'; check "frontier --help" $?

# --- plot ----------------------------------------------------------------------------------------------------
out=$("$rb" plot --db db/r.db --out figs); rc=$?
check "plot exit 0" $rc "$out"
for f in frontier_mqar curves_mqar frontier_regbench curves_regbench; do
    valid_png "figs/$f.png"; check "figs/$f.png is a PNG ($(stat -c %s figs/$f.png 2>/dev/null) bytes)" $?
    valid_svg "figs/$f.svg"; check "figs/$f.svg is an SVG ($(stat -c %s figs/$f.svg 2>/dev/null) bytes)" $?
    echo "$out" | grep -qx "figs/$f.png"; check "plot prints figs/$f.png" $?
done
grep -q 'TVD' figs/frontier_regbench.svg; check "RegBench frontier has the TVD panel" $?
grep -q 'swa' figs/frontier_mqar.svg && grep -q 'attention' figs/frontier_mqar.svg; check "legend names the variants" $?
grep -q 'Recurrent state size' figs/frontier_mqar.svg; check "x axis labelled" $?
"$rb" plot --db db/r.db --out figs --run 1 >/dev/null; rc=$?
[ $rc = 0 ] && valid_png figs/run1.png && valid_svg figs/run1.svg; check "plot --run 1: per-run curves" $?
PATH=/nonexistent "$rb" plot --db db/r.db --out figs2 >/dev/null 2> err.txt; rc=$?
[ $rc = 1 ] && grep -q 'gnuplot not found' err.txt; check "gnuplot missing: exit 1 with a reason" $? "rc=$rc $(cat err.txt)"
"$rb" plot --db db/r.db --run 999 --out figs >/dev/null 2>&1; rc=$?
[ $rc = 2 ]; check "plot --run of an unknown run: exit 2" $? "rc=$rc"
"$rb" plot --db db/r.db --bogus >/dev/null 2>&1; rc=$?
[ $rc = 2 ]; check "plot --bogus: exit 2" $? "rc=$rc"

# --- report --------------------------------------------------------------------------------------------------
"$rb" report --db db/r.db --figures figs --out rep/report.md 2>/dev/null; rc=$?
check "report exit 0" $rc
grep -q '^## Runs' rep/report.md && grep -q '^## Frontier' rep/report.md && grep -q 'state efficiency' rep/report.md
check "report has runs, frontier and ratio tables" $?
grep -q '(../figs/frontier_mqar.png)' rep/report.md && ! grep -q 'not drawn yet' rep/report.md
check "report links the figures relative to itself" $?
"$rb" report --db db/r.db | grep -q '^| mqar | swa | 4 | 4 |'; check "report to stdout: runs per variant" $?
# RegBench growth table (--paper): with two state sizes the last step is the whole range (delta acc)
"$rb" report --db db/r.db --paper --out rep/paper.md >/dev/null 2>&1
row=$(grep '^| 30 | swa | 2 |' rep/paper.md)
echo "$row" | awk -F'|' 'NF == 16 && $9 == $14 && ($13 ~ /yes|no/) && ($15 ~ /yes|no/) {ok = 1} END {exit !ok}'
check "report --paper: RegBench growth row has delta acc, last step and keeps improving" $? "$row"
grep -q '^- (b) 30 training automata, over the last step' rep/paper.md
check "report --paper: claim (b) over the last step" $?

# --- merge and frontier agree --------------------------------------------------------------------------------
strip_ids() { tail -1 | sed 's/"run_id": [0-9]*//g'; }
"$rb" merge db/r.db -o db/copy.db >/dev/null &&
    [ "$("$rb" frontier --db db/copy.db --json | strip_ids)" = "$("$rb" frontier --db db/r.db --json | strip_ids)" ]
check "frontier of a merged copy is identical (up to run ids)" $?

echo "plot.sh: $fails failed"
[ $fails = 0 ]
