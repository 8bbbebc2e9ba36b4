#!/usr/bin/env bash
# travel_size.sh — here, before a device call: what the call would copy to the device (tracked files,
# untracked files git does not ignore, ./shared if any, and the carried paths given), against the device's
# 64 MiB limit (../.library/device/README.md: a call over it is refused). The checkpoint stash
# (results/ckpt/*.tar.xz) is tracked and travels on every call: RegBench 10k checkpoints are 7.6 MB (LA,
# d 128 + MLP) to 14 MB (Mamba N 256) and 33 MB (attention d 256), so lower -j while the big ones run.
# Exit 1 when over. Usage: tools/travel_size.sh [CARRY ...]   (e.g. .pkgs .devbin/s19.tar.xz)
set -u
cd "$(dirname "$0")/.."
limit=$((64 * 1048576))
sum() { xargs -0 -r stat -c %s 2>/dev/null | awk '{s += $1} END {print s + 0}'; }
tracked=$(git ls-files -z | sum)
untracked=$(git ls-files -z --others --exclude-standard | sum)
stash=$(git ls-files -z results/ckpt | sum)
carry=0
for c in "$@" shared; do
  [ -e "$c" ] || { [ "$c" = shared ] || echo "travel_size: no $c (not counted)" >&2; continue; }
  carry=$((carry + $(find "$c" -type f -print0 | sum)))
done
total=$((tracked + untracked + carry))
mib() { awk -v b="$1" 'BEGIN {printf "%.1f MiB", b / 1048576}'; }
echo "travel_size: $(mib $total) of 64 MiB would travel (tracked $(mib $tracked), of it the checkpoint stash $(mib $stash);" \
     "untracked $(mib $untracked); carried $(mib $carry)); $(mib $((limit - total))) to spare"
[ "$total" -le "$limit" ] || { echo "travel_size: over the device's 64 MiB: the call would be refused (stash fewer checkpoints, carry less)" >&2; exit 1; }
