#!/usr/bin/env bash
# devenv.sh — on the GPU device machine: unpack the runtime libraries carried in .pkgs (OpenBLAS,
# SQLite, inih, gfortran, libgomp) or in an unpacked sweep bundle (.devbin/NAME/*.deb: libgomp, the rest
# being linked in) into /tmp/rbpfx, point the loader at them and at CUDA, run "$@".
# Usage (device tool): run with carry [".pkgs", ".devbin/..."] or [".devbin/NAME.tar.xz"] (tools/devbundle.sh
# NAME --sweep), the bundle unpacked first: bash tools/devenv.sh CMD ARGS...
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
pfx=/tmp/rbpfx
if [ ! -d $pfx ]; then
  mkdir -p $pfx
  # .pkgs (carried) and the packages a sweep bundle holds (.devbin/NAME/*.deb: libgomp alone)
  for f in "$root"/.pkgs/*.deb "$root"/.devbin/*/*.deb; do [ -f "$f" ] && dpkg -x "$f" $pfx; done
fi
cudalib=$(dirname "$(ls /usr/local/cuda/lib64/libcublas.so.13 /usr/local/cuda*/lib64/libcublas.so.13 2>/dev/null | head -1)" 2>/dev/null)
export LD_LIBRARY_PATH=$pfx/usr/lib/x86_64-linux-gnu/openblas-pthread:$pfx/usr/lib/x86_64-linux-gnu:$pfx/lib/x86_64-linux-gnu:${cudalib:-/usr/local/cuda/lib64}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export OMP_WAIT_POLICY=PASSIVE
"$@"
