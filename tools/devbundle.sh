#!/usr/bin/env bash
# devbundle.sh — here, before device calls: the binaries a device call runs, packed into
# .devbin/NAME.tar.xz (ignored; name it in carry with .pkgs): build/recallbench and, unless --sweep,
# every build/tests/test_cuda_* (stripped of debug info), the PyTorch anchor, and REV (git revision).
# --sweep packs recallbench alone (~5 MB), leaving room in the 64 MiB that travels for .ckpt.
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
(cd .devbin && tar cf - "$name" | xz -4 -T2 > "$name.tar.xz")
echo "$d.tar.xz: $(du -h "$d.tar.xz" | cut -f1), $(ls "$d" | wc -l) files, rev $(head -1 "$d/REV"); carry [\".pkgs\", \"$d.tar.xz\"$( [ -d .ckpt ] && echo ', ".ckpt"')] ($(du -sh .pkgs | cut -f1) .pkgs$( [ -d .ckpt ] && echo ", $(du -sh .ckpt | cut -f1) .ckpt"))"
