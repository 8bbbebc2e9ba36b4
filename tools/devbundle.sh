#!/usr/bin/env bash
# devbundle.sh — here, before device calls: the binaries a device call runs, packed into
# .devbin/NAME.tar.xz (ignored; name it in carry with .pkgs): build/recallbench and, unless --sweep,
# every build/tests/test_cuda_* (stripped of debug info), the PyTorch anchor, and REV (git revision).
# --sweep packs recallbench alone (~3 MB; the whole bundle is ~4 MB, as xz -9 stores the kernels the binaries share
# once), for calls that run no tests.
# On the device: cd .devbin && tar xJf NAME.tar.xz && cd .. ; then BIN is .devbin/NAME.
# Usage: tools/devbundle.sh NAME [--sweep]
set -eu
name=${1:?usage: devbundle.sh NAME [--sweep]}; sweep=${2:-}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
ninja -C build > /dev/null
d=.devbin/$name
rm -rf "$d" && mkdir -p "$d"
cp build/recallbench "$d/"
if [ "$sweep" != --sweep ]; then
  for f in build/tests/test_cuda_*; do [ -f "$f" ] && [ -x "$f" ] && cp "$f" "$d/"; done
  cp ../shared/anchors/torch_shell_bench.py "$d/" 2>/dev/null || echo "devbundle: no ../shared/anchors/torch_shell_bench.py (bench part needs it)" >&2
fi
strip --strip-debug "$d"/recallbench "$d"/test_cuda_* 2>/dev/null || true
{ git rev-parse --short HEAD; git diff --quiet HEAD || echo "(with uncommitted changes)"; } > "$d/REV"
# xz -9 (64 MiB dictionary, one block): the binaries carry the same CUDA kernels, and a dictionary that spans
# them stores those once: 4.2 MB for recallbench and the 9 tests, where -4 (4 MiB dictionary) gave 38 MB and left
# no room in the 64 MiB that travels for the checkpoints of a resumed sweep (2026-12-02). ~80 s here.
(cd .devbin && tar cf - "$name" | xz -9 -T1 > "$name.tar.xz")
echo "$d.tar.xz: $(du -h "$d.tar.xz" | cut -f1), $(ls "$d" | wc -l) files, rev $(head -1 "$d/REV"); carry [\".pkgs\", \"$d.tar.xz\"$( [ -d .ckpt ] && echo ', ".ckpt"')] ($(du -sh .pkgs | cut -f1) .pkgs$( [ -d .ckpt ] && echo ", $(du -sh .ckpt | cut -f1) .ckpt"))"
