#!/usr/bin/env bash
# devbundle.sh — here, before device calls: the binaries a device call runs, packed into
# .devbin/NAME.tar.xz (ignored; name it in carry, with .pkgs unless --sweep): build/recallbench, every
# build/tests/test_cuda_* (stripped of debug info), the PyTorch anchor, and REV (git revision); the whole
# bundle is ~4 MB, as xz -9 stores the kernels the binaries share once.
# --sweep, for calls that run no tests: recallbench alone, from build-dev (-Dstatic_deps=true) with SQLite,
# inih and OpenBLAS linked in, and libgomp's package beside it: ~5.9 MB, carried without .pkgs.
# On the device: cd .devbin && tar xJf NAME.tar.xz && cd .. ; then BIN is .devbin/NAME.
# Usage: tools/devbundle.sh NAME [--sweep]
set -eu
name=${1:?usage: devbundle.sh NAME [--sweep]}; sweep=${2:-}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
d=.devbin/$name
rm -rf "$d" && mkdir -p "$d"
if [ "$sweep" = --sweep ]; then
  # A sweep bundle's recallbench comes from build-dev (-Dstatic_deps=true: SQLite, inih and OpenBLAS linked in)
  # and carries libgomp's package inside: the call carries the bundle alone, not .pkgs (8.6 MB: 6.4 MB more of
  # the 64 MiB left for checkpoints; 2026-12-03)
  [ -d build-dev ] || meson setup build-dev -Dstatic_deps=true > /dev/null
  ninja -C build-dev recallbench > /dev/null
  cp build-dev/recallbench "$d/"
  ls .pkgs/libgomp1_*.deb > /dev/null 2>&1 || (mkdir -p .pkgs && cd .pkgs && apt-get download libgomp1 > /dev/null 2>&1)
  cp .pkgs/libgomp1_*.deb "$d/"
else
  ninja -C build > /dev/null
  cp build/recallbench "$d/"
  for f in build/tests/test_cuda_*; do [ -f "$f" ] && [ -x "$f" ] && cp "$f" "$d/"; done
  cp ../shared/anchors/torch_shell_bench.py "$d/" 2>/dev/null || echo "devbundle: no ../shared/anchors/torch_shell_bench.py (bench part needs it)" >&2
fi
strip --strip-debug "$d"/recallbench "$d"/test_cuda_* 2>/dev/null || true
{ git rev-parse --short HEAD; git diff --quiet HEAD || echo "(with uncommitted changes)"; } > "$d/REV"
# xz -9 (64 MiB dictionary, one block): the binaries carry the same CUDA kernels, and a dictionary that spans
# them stores those once: 4.2 MB for recallbench and the 9 tests, where -4 (4 MiB dictionary) gave 38 MB and left
# no room in the 64 MiB that travels for the checkpoints of a resumed sweep (2026-12-02). ~80 s here.
(cd .devbin && tar cf - "$name" | xz -9 -T1 > "$name.tar.xz")
if [ "$sweep" = --sweep ]; then
  echo "$d.tar.xz: $(du -h "$d.tar.xz" | cut -f1), $(ls "$d" | wc -l) files, rev $(head -1 "$d/REV"); carry [\"$d.tar.xz\"] (no .pkgs: libgomp is inside)"
  bash tools/travel_size.sh "$d.tar.xz" || true
else
  echo "$d.tar.xz: $(du -h "$d.tar.xz" | cut -f1), $(ls "$d" | wc -l) files, rev $(head -1 "$d/REV"); carry [\".pkgs\", \"$d.tar.xz\"] ($(du -sh .pkgs | cut -f1) .pkgs)"
fi
