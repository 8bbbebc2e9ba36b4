#!/usr/bin/env bash
# repro.sh — the issue-12 reproduction path on a tiny sweep: export -> CSV -> frontier, plot and report
# regenerated from the CSVs alone. Checks that the frontier (points, needs, ratios, per-seed spread) from the
# CSV equals the one from the database (JSON compared exactly), that REPORT.md carries the tables, the seed
# spread, the RegBench answer with the n-gram baselines and the compute time, that the three figures are
# valid PNG/SVG, that regenerating is deterministic, and the error exits.
# Usage: tests/repro.sh RECALLBENCH SOURCE_ROOT. Prints one line per check; exits 1 if any failed.
set -u
export LC_ALL=C OMP_WAIT_POLICY=PASSIVE
rb=${1:?usage: repro.sh RECALLBENCH SOURCE_ROOT}
src=${2:?usage: repro.sh RECALLBENCH SOURCE_ROOT}
. "$src/tests/lib.sh"  # check, q, test_start
test_start
export RB_PLOTS_DIR="$src/plots"
fails=0
valid_png() { [ -f "$1" ] && [ "$(head -c 8 "$1" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] && [ "$(stat -c %s "$1")" -gt 5000 ]; }
valid_svg() { [ -f "$1" ] && grep -q '<svg' "$1" && tail -c 100 "$1" | grep -q '</svg>'; }

# Two seeds of SWA and BLA on a small MQAR (two test configurations), and a tiny RegBench at two
# training-automata counts. Sizes chosen so SWA climbs from ~0.1 to ~0.9 and BLA to ~0.3 in a few seconds.
cat > m.ini <<'INI'
[sweep]
task = mqar
vocab = 48
seq-len = 16
kv-pairs = 2
train-examples = 1500
test-mix = 16:2:100,32:4:100
d-model = 32
epochs = 5
batch = 32
lr = 1e-2
seed = 1 2
[model swa]
layers = conv,swa
window = 2 4 8 16
[model bla]
layers = conv,bla
window = 32
freqs = 2 4 8
INI
cat > r.ini <<'INI'
[sweep]
task = regbench
train-automata = 20 40
test-automata = 10
d-model = 16
epochs = 1
batch = 8
[model swa]
layers = conv,swa
window = 4 16
[model gsa]
layers = conv,gsa
slots = 2 8
INI
nice -n 5 "$rb" sweep m.ini -j 2 --threads 1 --db m.db >/dev/null 2>&1 &&
    nice -n 5 "$rb" sweep r.ini -j 2 --threads 1 --db r.db >/dev/null 2>&1
check "tiny MQAR (14 runs) and RegBench (8 runs) sweeps" $?

# --- export ---------------------------------------------------------------------------------------------------
"$rb" export --db m.db --task mqar --out results/mqar_frontier.csv 2>/dev/null &&
    "$rb" export --db r.db --task regbench --out results/regbench_state.csv 2>/dev/null
check "export both tasks" $?
python3 - results/mqar_frontier.csv results/regbench_state.csv <<'PY'
import csv, sys
m = list(csv.DictReader(open(sys.argv[1])))
r = list(csv.DictReader(open(sys.argv[2])))
assert len(m) == 14 and len(r) == 8, (len(m), len(r))
need = {"variant", "d_model", "window", "freqs", "lr", "seed", "state_bytes", "accuracy", "acc_L16_K2", "acc_L32_K4",
        "backend", "device", "git_rev", "status", "duration_s", "config_json"}
assert need <= set(m[0]), need - set(m[0])
for x in m:   # the mean column is the mean of the per-test-configuration columns
    assert abs(float(x["accuracy"]) - (float(x["acc_L16_K2"]) + float(x["acc_L32_K4"])) / 2) < 1e-12, x
    assert float(x["state_bytes"]) == 4 * float(x["state_floats"])
assert {x["seed"] for x in m} == {"1", "2"}
for x in r:
    a2, t2, a3, t3 = (float(x[k]) for k in ("ngram2_accuracy", "ngram2_tvd", "ngram3_accuracy", "ngram3_tvd"))
    assert 0 < a2 < a3 < 1 and 0 < t3 < t2 < 1, x
    assert 0 < float(x["tvd"]) <= 1 and x["train_automata"] in ("20", "40")
PY
check "CSV columns: config, per-test accuracies (mean consistent), seeds, state bytes, n-gram baselines" $?

# --- the frontier from the CSV equals the frontier from the database ---------------------------------------------
for t in mqar regbench; do
    db=m.db; [ $t = regbench ] && db=r.db
    "$rb" frontier --db $db --task $t --levels 0.3,0.5,0.7 --json > db_$t.json 2>/dev/null
    f=results/mqar_frontier.csv; [ $t = regbench ] && f=results/regbench_state.csv
    "$rb" frontier --csv-in $f --task $t --levels 0.3,0.5,0.7 --json > csv_$t.json 2>/dev/null
    cmp -s db_$t.json csv_$t.json; check "frontier --json of $t: CSV == database ($(wc -c < db_$t.json) bytes)" $?
done
# Both exports in one directory: their run ids collide (both databases start at 1) and are remapped; the
# frontier must still equal the database's apart from the remapped ids.
"$rb" frontier --csv-in results/ --task mqar --levels 0.3,0.5,0.7 --json > dir_mqar.json 2>/dev/null
cmp -s db_mqar.json dir_mqar.json; check "frontier --csv-in DIR (two exports) == database for mqar" $?
python3 - db_mqar.json <<'PY'
import json, sys
d = json.loads(open(sys.argv[1]).read())
sp = [s for s in d["spread"] if s["a"] == "bla" and s["b"] == "swa"]
got = [s for s in sp if s["n"] == 2]
assert got, sp   # at least one level with a ratio for both seeds: the comparison is not vacuous
for s in got:
    r = [x["ratio"] for x in s["per_seed"]]
    assert abs(s["mean"] - sum(r) / 2) < 1e-5 and s["min"] == min(r) and s["max"] == max(r), s
    assert abs(s["sd"] - abs(r[0] - r[1]) / 2 ** 0.5) < 1e-5, s
PY
check "per-seed ratio spread: 2 seeds, mean/sd/min/max consistent" $?

# A third seed at every BLA size but one SWA size only: its per-seed frontier would interpolate between other
# points than the mean's, so it is listed as "partial" with no ratio and leaves mean, sd and n as they were.
cp m.db m3.db
sed 's/^seed = 1 2$/seed = 3/; s/^window = 2 4 8 16$/window = 4/' m.ini > m3.ini
nice -n 5 "$rb" sweep m3.ini -j 1 --threads 1 --db m3.db >/dev/null 2>&1 &&
    "$rb" frontier --db m3.db --task mqar --levels 0.3,0.5,0.7 --json > db_m3.json 2>/dev/null &&
    python3 - db_mqar.json db_m3.json <<'PY'
import json, sys
two = {s["level"]: s for s in json.loads(open(sys.argv[1]).read())["spread"] if s["a"] == "bla" and s["b"] == "swa"}
three = {s["level"]: s for s in json.loads(open(sys.argv[2]).read())["spread"] if s["a"] == "bla" and s["b"] == "swa"}
assert two and two.keys() == three.keys(), (two, three)
for lv, s in three.items():
    p3 = [x for x in s["per_seed"] if x["seed"] == 3]
    assert len(p3) == 1 and p3[0]["qualifier"] == "partial" and p3[0]["ratio"] is None, s
    t = two[lv]
    assert s["n"] == t["n"] and all(s[k] == t[k] for k in ("mean", "sd", "min", "max")), (s, t)
PY
check "per-seed spread: a seed run at only some sizes is listed as partial and not counted" $?

# --- one command: figures and REPORT.md from the CSVs ------------------------------------------------------------
rm -f m.db* r.db*
"$rb" report --from-csv results/ --out results/REPORT.md --figures plots --levels 0.3,0.5,0.7 > rep.out 2>&1
check "report --from-csv results/ (no database)" $? "$(tail -3 rep.out)"
for fig in mqar_frontier regbench_state bla_vs_swa; do
    valid_png plots/$fig.png && valid_svg plots/$fig.svg; check "plots/$fig.png and .svg" $?
done
grep -q 'in-context 3-gram' plots/regbench_state.svg; check "regbench_state draws the n-gram baselines" $?
# bla_vs_swa labels each ratio with its spread over seeds: the frontier's own sd and seed count
python3 - db_mqar.json plots/data/bla_vs_swa_ratios.dat <<'PY'
import json, shlex, sys
sp = {s["level"]: s for s in json.load(open(sys.argv[1]))["spread"] if s["a"] == "bla" and s["b"] == "swa"}
rows = [shlex.split(l) for l in open(sys.argv[2]) if l.strip()]
assert rows, "no ratio rows"
labelled = 0
for r in rows:
    s = sp[float(r[0])]
    want = " (+-%.2f, %d seeds)" % (s["sd"], s["n"]) if s["n"] >= 2 else ""
    assert r[5] == want, (r, want)
    labelled += want != ""
assert labelled, rows   # at least one level carries a spread: the check is not vacuous
PY
check "bla_vs_swa: each ratio labelled with its spread over seeds (the frontier's sd)" $?
R=results/REPORT.md
grep -q '^## State efficiency of BLA on MQAR' $R && grep -q '^| bla | swa | 0.30 |' $R && grep -q '^### mqar: best configuration' $R &&
    grep -q '^### mqar: ratio spread over seeds' $R
check "REPORT.md: frontier tables, ratios and their spread" $?
ratio=$(python3 -c 'import json; d=json.load(open("db_mqar.json")); print("%.2fx" % [r["ratio"] for r in d["ratios"] if r["level"] == 0.3][0])')
grep -q "^| bla | swa | 0.30 | $ratio |" $R; check "REPORT.md's ratio at 0.30 is the frontier's ($ratio)" $?
# Per test length: each row must be what `frontier` computes on a CSV whose accuracy is that split's (another path).
for sp in L16_K2 L32_K4; do
    mkdir -p split_$sp && python3 - results/mqar_frontier.csv split_$sp/mqar_frontier.csv acc_$sp <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
h = rows[0]; ia, isp = h.index("accuracy"), h.index(sys.argv[3])
for r in rows[1:]: r[ia] = r[isp]
csv.writer(open(sys.argv[2], "w", newline="")).writerows(rows)
PY
    "$rb" frontier --csv-in split_$sp/mqar_frontier.csv --task mqar --vs bla --levels 0.3,0.5,0.7 --json > split_$sp.json 2>/dev/null
    want=$(python3 - split_$sp.json <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
def fmt(r): return "n/a" if r["qualifier"] == "n/a" else "%s%.2fx" % (r["qualifier"], r["ratio"])
print(" | ".join(fmt([r for r in d["ratios"] if r["b"] == "swa" and r["level"] == l][0]) for l in (0.3, 0.5, 0.7)))
PY
)
    lab=$(echo $sp | sed 's/^L\([0-9]*\)_K\([0-9]*\)$/L=\1,K=\2/')
    got=$(grep "^| $lab | " $R | cut -d'|' -f5- | sed 's/ *| *$//; s/^ *//; s/  */ /g')
    [ -n "$want" ] && [ "$got" = "$want" ]
    check "REPORT.md: bla vs swa on split $lab alone is frontier's on that split's accuracy ($want)" $? "report: '$got'"
done
python3 - $R <<'PY'
import re, sys
t = open(sys.argv[1]).read()
sec = t[t.index("### bla against swa per test length"):]
rows = [l for l in sec.split("\n## ")[0].splitlines() if l.startswith("| L=")]
exact = [float(c[:-1]) for l in rows for c in (x.strip() for x in l.split("|")[4:-1]) if re.fullmatch(r"[0-9.]+x", c)]
m = re.search(r"^- \(a\) per test length, bla vs swa: ([0-9.]+)x\.\.([0-9.]+)x over the (\d+) ", t, re.M)
assert rows and exact and m, (len(rows), exact, m)
assert (float(m.group(1)), float(m.group(2)), int(m.group(3))) == (min(exact), max(exact), len(exact)), (m.groups(), exact)
PY
check "REPORT.md's claims: the per-length range is the table's exact ratios" $?
grep -q '^## RegBench: which models improve as state grows' $R && grep -q '^| 20 | swa |' $R && grep -q '^| 40 | gsa |' $R &&
    grep -q 'In-context baselines' $R
check "REPORT.md: RegBench growth per training-automata count, baselines" $?
grep -q "^## Compared with the paper's claims" $R && grep -q '^- (a) bla ' $R && grep -q '^- (b) 20 training automata' $R
check "REPORT.md: the paper's claims beside the numbers" $?
# beside the other mixers: the variants that reach each level, least state first, as frontier's needs say
python3 - db_mqar.json $R <<'PY'
import json, re, sys
d = json.load(open(sys.argv[1])); t = open(sys.argv[2]).read()
for lv in (0.3, 0.5):
    need = sorted((n["state_bytes"], n["variant"]) for n in d["levels"]
                  if n["task"] == "mqar" and n["level"] == lv and n["reached"] != "not_reached")
    m = re.search(r"^- \(a\) beside the other mixers, level %.2f, the state each variant needs, least first: ([^;\n]*?)\.?(;|$)" % lv, t, re.M)
    assert need and m and (lv != 0.3 or len(need) >= 2), (lv, need, m)  # at 0.30 an order to check
    got = [e.split(" ")[0] for e in m.group(1).split(", ")]
    assert got == [v for _, v in need], (lv, got, need, m.group(0))
PY
check "REPORT.md: each level's variants in order of the state frontier says they need" $?
grep -q '^| mqar | cpu | cpu | – | 14 | 14 |' $R && grep -q '^| regbench | cpu | cpu | – | 8 | 8 |' $R
check "REPORT.md: compute time per task, backend, device and precision" $?
grep -q '^| mqar | swa | 8 | 8 | .* | 0.01 | 2 |$' $R && grep -q '^| mqar | bla | 6 | 6 | .* | 0.01 | 2 |$' $R && ! grep -q '(a) caveat' $R
check "REPORT.md: the lrs and seeds that finished per variant; no lr caveat when they match" $?
grep -q '^- (b) caveat, 20 training automata: provisional until all six mixers have 4 state sizes; not yet run: attention, bla, la, mamba; fewer than 4 state sizes: swa (2), gsa (2)' $R
check "REPORT.md: RegBench answer says which of the six mixers are missing or short of 4 state sizes" $? "$(grep '(b) caveat' $R | head -2)"
# The same CSV with BLA's runs at another lr: the claims must say the best-lr frontiers are not comparable yet.
mkdir -p lrs && python3 - results/mqar_frontier.csv lrs/mqar_frontier.csv <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
h = rows[0]; iv, il = h.index("variant"), h.index("lr")
for r in rows[1:]:
    if r[iv] == "bla": r[il] = "0.005"
csv.writer(open(sys.argv[2], "w", newline="")).writerows(rows)
PY
"$rb" report --csv-in lrs/ --paper --out lrs/R.md > /dev/null 2>&1 &&
    grep -q '^- (a) caveat: bla and swa did not try the same learning rates (bla: 0.005; swa: 0.01)' lrs/R.md
check "REPORT.md: lr caveat when BLA and SWA tried different lrs" $? "$(grep caveat lrs/R.md)"
# Both variants at the same two lrs, but only one of BLA's configurations ran at the second: the best-lr
# frontier is not final, and the claims must say how many configurations have every lr.
mkdir -p cov && python3 - results/mqar_frontier.csv cov/mqar_frontier.csv <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
h = rows[0]; iv, il, ij, ir, iw, ih = (h.index(c) for c in ("variant", "lr", "config_json", "run_id", "window", "config_hash"))
bla = [r for r in rows[1:] if r[iv] == "bla"]
first = (bla[0][iw], bla[0][h.index("freqs")])
nid = max(int(r[ir]) for r in rows[1:])
extra = []
for r in rows[1:]:
    if r[iv] == "swa" or (r[iv] == "bla" and (r[iw], r[h.index("freqs")]) == first):
        x = list(r); nid += 1
        x[ir] = str(nid); x[il] = "0.005"; x[ij] = x[ij].replace('"lr":0.01', '"lr":0.005'); x[ih] = "%016x" % nid
        extra.append(x)
csv.writer(open(sys.argv[2], "w", newline="")).writerows(rows + extra)
PY
"$rb" report --csv-in cov/ --paper --out cov/R.md > /dev/null 2>&1 &&
    grep -q '^- (a) caveat: not every configuration has run at every learning rate yet (bla: 1 of 3 configurations have all of 0.005 0.01; swa: 4 of 4)' cov/R.md &&
    ! grep -q 'did not try the same' cov/R.md
check "REPORT.md: caveat while some configurations lack an lr the variants tried" $? "$(grep caveat cov/R.md)"
# RegBench: another variant at SWA's state sizes (the gsa runs relabelled bla, with SWA's states): the claims
# must compare them size by size, with the accuracies of the CSV.
mkdir -p vsr && cp results/mqar_frontier.csv vsr/ && python3 - results/regbench_state.csv vsr/regbench_state.csv vsr/want <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
swa = {}
for r in rows:
    if r["variant"] == "swa": swa.setdefault(r["train_automata"], {})[int(r["window"])] = r
want = []
for r in rows:
    if r["variant"] != "gsa": continue
    s = swa[r["train_automata"]][4 if int(r["slots"]) == 2 else 16]  # slots 2 -> W 4, slots 8 -> W 16
    r["variant"], r["state_floats"], r["state_bytes"] = "bla", s["state_floats"], s["state_bytes"]
    want.append((int(r["train_automata"]), float(r["accuracy"]), float(s["accuracy"])))
w = csv.DictWriter(open(sys.argv[2], "w", newline=""), fieldnames=list(rows[0].keys()))
w.writeheader(); w.writerows(rows)
with open(sys.argv[3], "w") as f:
    for ta in sorted({x[0] for x in want}):
        xs = [x for x in want if x[0] == ta]
        f.write("- (b) %d training automata, bla against swa at the state sizes both measured: below at %d of %d\n"
                % (ta, sum(a < b for _, a, b in xs), len(xs)))
PY
"$rb" report --csv-in vsr/ --paper --out vsr/R.md > /dev/null 2>&1 &&
    ( while read -r line; do grep -qF -e "$line (" vsr/R.md || exit 1; done < vsr/want ) && [ "$(wc -l < vsr/want)" = 2 ]
check "REPORT.md: a RegBench variant against SWA at the state sizes both measured" $? "$(grep 'against swa' vsr/R.md)"
cp $R first.md
"$rb" report --from-csv results/ --out results/REPORT.md --figures plots --levels 0.3,0.5,0.7 >/dev/null 2>&1 && cmp -s first.md $R
check "regenerating REPORT.md gives the same file" $?

# --- errors ---------------------------------------------------------------------------------------------------
"$rb" frontier --csv-in nothere.csv >/dev/null 2>&1; rc=$?
[ $rc = 1 ]; check "--csv-in a missing file: exit 1" $? "rc=$rc"
echo "task,variant" > other.csv
"$rb" frontier --csv-in other.csv >/dev/null 2>&1; rc=$?
[ $rc = 2 ]; check "--csv-in a CSV that is not an export: exit 2" $? "rc=$rc"
"$rb" export --db nothere.db --out x.csv >/dev/null 2>&1; rc=$?
[ $rc = 1 ] && [ ! -e x.csv ]; check "export of a missing database: exit 1, nothing written" $? "rc=$rc"
"$rb" export >/dev/null 2>&1; rc=$?
[ $rc = 2 ]; check "export without --out: exit 2" $? "rc=$rc"
"$rb" frontier --db a.db --csv-in results/ >/dev/null 2>&1; rc=$?
[ $rc = 2 ]; check "--db with --csv-in: exit 2" $? "rc=$rc"

[ $fails = 0 ] && echo "repro: all checks passed" || echo "repro: $fails check(s) failed"
[ $fails = 0 ]
