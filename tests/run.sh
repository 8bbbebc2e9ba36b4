#!/usr/bin/env bash
# run.sh — builds recallbench and runs the whole test suite; ends with "N passed, N failed".
# Usage: tests/run.sh [BUILD_DIR]   (default: build-tests). Exit 0 only if nothing failed.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build-tests}
cd "$root"
# The CUDA backend is compiled wherever the toolkit is (CI too: it has nvcc but no GPU; the cuda
# tests then skip). meson finds nvcc on PATH.
if [ -x /usr/local/cuda/bin/nvcc ] && ! command -v nvcc >/dev/null; then export PATH=$PATH:/usr/local/cuda/bin; fi
# Tests run two at a time, each with OpenMP threads: idle threads must sleep, not spin, or two training
# tests on two cores slow each other down several times over.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" --buildtype=release >/dev/null || { echo "meson setup failed"; echo "0 passed, 1 failed"; exit 1; }
fi
ninja -C "$build" || { echo "build failed"; echo "0 passed, 1 failed"; exit 1; }
meson test -C "$build" --print-errorlogs --num-processes "${RB_TEST_JOBS:-2}" 
log="$build/meson-logs/testlog.json"
python3 - "$log" <<'PY'
import json, sys
p = f = 0
names = []
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("result") in ("OK", "EXPECTEDFAIL"):
        p += 1
    elif r.get("result") != "SKIP":
        f += 1
        names.append(r.get("name"))
if names:
    print("failed:", " ".join(names))
print(f"{p} passed, {f} failed")
sys.exit(1 if f else 0)
PY
