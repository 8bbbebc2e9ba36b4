#!/usr/bin/env bash
# spec_subset.sh — a sweep spec cut down for one device sitting: [sweep] plus the named [model] blocks,
# in the order named (a sweep runs blocks in file order: the first named runs first), with KEY = VALUE
# lines of [sweep] replaced (e.g. one lr of two). The runs it names hash the same as the full spec's
# (a config's hash is its train flags, not the file), so their results count there.
# Usage: tools/spec_subset.sh SPEC.ini OUT.ini "model1 model2" ["key=value" ...]
set -eu
spec=$1 out=$2 models=$3; shift 3
awk -v models="$models" -v sets="$*" '
BEGIN { n = split(sets, kv, " "); for (i = 1; i <= n; i++) { split(kv[i], p, "="); over[p[1]] = p[2] } }
/^\[/ { cur = ($0 == "[sweep]") ? "" : "-"; insweep = (cur == "")
        if ($1 == "[model") { cur = $2; sub(/\]$/, "", cur) } }
insweep && match($0, /^[a-z-]+ *=/) { k = $0; sub(/ *=.*/, "", k); if (k in over) { print k " = " over[k]; next } }
cur == "" { print; next }
cur != "-" { block[cur] = block[cur] $0 "\n" }
END { m = split(models, names, " "); for (i = 1; i <= m; i++) printf "%s", block[names[i]] }' "$spec" > "$out"
for m in $models; do grep -q "^\[model $m\]" "$out" || { echo "spec_subset: no [model $m] in $spec" >&2; exit 2; }; done
