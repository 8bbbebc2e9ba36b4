#!/usr/bin/env bash
# mutations.sh — the regression suite's sensitivity, measured (run by hand, not in CI): applies each
# deliberate, realistic break below, one at a time, to a copy of the working tree, rebuilds it, runs
# `recallbench regress` against tests/regression/baseline.csv and prints break -> failing rows.
# Every break must make at least one row FAIL; the script exits 1 if one does not (or does not apply).
# Depends on bash, sed, meson, ninja, the build dependencies of recallbench.
#
# Usage: tests/mutations.sh [-a] [-b BASELINE] [-j JOBS] [-k NAME[,NAME...]] [-w DIR]
#   -a   run the whole suite for every break (default: the rows whose code the break touches, below)
#   -b   baseline file (default tests/regression/baseline.csv)
#   -j   regress --jobs (default: online cores)
#   -k   only these breaks (names as listed by -l)
#   -l   list the breaks and exit
#   -w   work directory (default: a new /tmp/rb-mutations-XXXXXX, removed at the end)
# The patterns are matched against the current sources; a break whose pattern no longer matches (the
# code moved) is reported NOT APPLIED and counts as a failure of this script: update its pattern.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
base=$root/tests/regression/baseline.csv
all=0; jobs=$(nproc); keep=""; work=""; list=0
while getopts "ab:j:k:lw:" o; do
  case $o in a) all=1;; b) base=$OPTARG;; j) jobs=$OPTARG;; k) keep=$OPTARG;; l) list=1;; w) work=$OPTARG;; *) exit 2;; esac
done

# name | file | sed -E expression (applied to every line) | rows run by default (regress --only) | what it breaks
breaks=(
"softmax-scale|models/layers.c|s|const real scale = \(real\)\(1 / sqrt\(\(double\)dh\)\);|const real scale = (real)(1 / (double)dh);|g|attention,swa|attention/swa softmax scale 1/d_h instead of 1/sqrt(d_h) (forward and backward)"
"kv-grad-swap|models/mixers/attention.c|s|mha_backward_seq\(dqkv, dqkv \+ D, dqkv \+ 2 \* D,|mha_backward_seq(dqkv, dqkv + 2 * D, dqkv + D,||swa|attention backward writes the key gradient into the value projection and vice versa"
"gsa-gate-x2|models/mixers/gsa.h|s|#define GSA_GATE_NORMALIZER 8.0|#define GSA_GATE_NORMALIZER 16.0||gsa|GSA gate normaliser 16 instead of 8 (log alpha = logsigmoid(f)/16)"
"mamba-dt-bias|models/mixers/mamba.c|s|\(real\)\(dt \+ log\(-expm1\(-dt\)\)\);|(real)dt;||mamba|mamba dt bias initialised to dt instead of softplus^-1(dt) (delta starts ~0.7)"
"bla-transition-T|models/mixers/bla_ops.c|s|o->A\[\(size_t\)i \* N \+ j\] \+= cur\[i\] \* prev\[j\];|o->A[(size_t)j * N + i] += cur[i] * prev[j];||bla/mqar|BLA transition matrix A transposed"
"adamw-no-bias-corr|models/optim.c|s|const double bc1 = 1 - pow\(c->beta1, \(double\)o->t\), bc2 = 1 - pow\(c->beta2, \(double\)o->t\);|const double bc1 = 1, bc2 = 1;||swa/regbench,attention/mqar,gsa/mqar|AdamW without bias correction"
"causal-leak|models/layers.c|s|a1 = t - lo;|a1 = imin(t + 1, lo + n - 1) - lo;||swa/regbench|attention mask off by one: each query also sees the next token"
"gsa-gate-half|models/mixers/gsa.h|s|#define GSA_GATE_NORMALIZER 8.0|#define GSA_GATE_NORMALIZER 4.0||gsa|GSA gate normaliser 4 instead of 8"
"la-taylor-const|models/mixers/la.c|s|\(r2 \* rd\)|rd|g|la|LA Taylor feature map: x_i^2/sqrt(f) instead of x_i^2/(sqrt(2) sqrt(f)) (forward and backward)"
"layernorm-no-center|models/layers.c|s|o\[c\] = \(x\[c\] - m\) \* s \* w\[c\] \+ b\[c\];|o[c] = x[c] * s * w[c] + b[c];||swa/regbench,attention/mqar,gsa/mqar,la/regbench-f8|LayerNorm forward forgets to subtract the mean"
"lr-no-decay|models/optim.c|s|return lo \+ \(lr - lo\) \* 0\.5 \* \(1 \+ cos\(M_PI \* prog\)\);|return lr;||swa/regbench,attention/mqar|cosine schedule dropped: constant learning rate"
"mamba-A-init|models/mixers/mamba.c|s|\(real\)log\(n \+ 1\.0\)|(real)log(1.0)||mamba|mamba A_log = 0 for every state (A = -1) instead of S4D-real log(n+1)"
)

if [ $list = 1 ]; then for b in "${breaks[@]}"; do IFS='|' read -r n f _ _ _ _ r d <<<"$b"; printf '%-20s %-28s %-14s %s\n' "$n" "$f" "$r" "$d"; done; exit 0; fi

own=0
if [ -z "$work" ]; then work=$(mktemp -d /tmp/rb-mutations-XXXXXX); own=1; fi
cleanup() { [ $own = 1 ] && rm -rf "$work"; }
trap cleanup EXIT
trap 'echo "mutations: interrupted"; exit 1' INT TERM
tree=$work/tree
mkdir -p "$tree"
# The working tree as it is (tracked and untracked-but-not-ignored files), not only the last commit;
# timestamps kept so that a reused work directory (-w) rebuilds only what changed, and every file a
# break touches is marked changed (a previous, interrupted run may have left it broken).
(cd "$root" && git ls-files -z --cached --others --exclude-standard | xargs -0 cp -p --parents -t "$tree")
for b in "${breaks[@]}"; do IFS='|' read -r _ f _ <<<"$b"; touch "$tree/$f"; done
export OMP_WAIT_POLICY=PASSIVE
echo "mutations: building a copy in $tree"
[ -d "$tree/build" ] || meson setup "$tree/build" "$tree" -Dcuda=disabled >"$work/setup.log" 2>&1 || { cat "$work/setup.log"; exit 1; }
ninja -C "$tree/build" recallbench >"$work/build.log" 2>&1 || { tail -20 "$work/build.log"; exit 1; }
bad=0
# Control: the unmodified copy must pass (else the table below means nothing).
"$tree/build/recallbench" regress --baseline "$base" --jobs "$jobs" --only swa/mqar >"$work/out-control.txt" 2>&1 ||
  { echo "mutations: the unmodified copy fails regress --only swa/mqar:"; cat "$work/out-control.txt"; exit 1; }
echo "mutations: control (unmodified copy, swa/mqar) passes"
printf '\n%-20s %-26s %s\n' "break" "rows run" "failing rows"
for b in "${breaks[@]}"; do
  IFS='|' read -r name file cmd pat rep flags rows desc <<<"$b"
  if [ -n "$keep" ] && ! [[ ",$keep," == *",$name,"* ]]; then continue; fi
  cp "$root/$file" "$tree/$file"
  sed -E -i "$cmd@$pat@$rep@$flags" "$tree/$file" 2>/dev/null || true
  if cmp -s "$root/$file" "$tree/$file"; then printf '%-20s %-26s %s\n' "$name" "-" "NOT APPLIED (pattern not found in $file)"; bad=1; continue; fi
  if ! ninja -C "$tree/build" recallbench >"$work/build-$name.log" 2>&1; then
    printf '%-20s %-26s %s\n' "$name" "-" "BUILD FAILED (see $work/build-$name.log)"; bad=1; cp "$root/$file" "$tree/$file"; continue
  fi
  only=(); [ $all = 0 ] && only=(--only "$rows")
  t0=$(date +%s)
  "$tree/build/recallbench" regress --baseline "$base" --jobs "$jobs" "${only[@]}" >"$work/out-$name.txt" 2>"$work/err-$name.txt"
  st=$?
  fails=$(awk '/FAIL/ {printf "%s%s/%s (%s)", (n++ ? ", " : ""), $1, $2, $4}' "$work/out-$name.txt")
  if [ $st = 1 ] && [ -n "$fails" ]; then r="$fails"; else r="NONE FAILED (exit $st)"; bad=1; fi
  printf '%-20s %-26s %s  [%ss]\n' "$name" "${rows:-all}$([ $all = 1 ] && echo ' (all)')" "$r" $(( $(date +%s) - t0 ))
  cp "$root/$file" "$tree/$file"
done
[ $bad = 0 ] && echo "mutations: every break made at least one row fail" || echo "mutations: some break was not caught or not applied"
exit $bad
