#!/usr/bin/env bash
# asan.sh — builds recallbench with AddressSanitizer + UndefinedBehaviorSanitizer and runs tests under the
# 'sanitize' test setup (tests/meson.build: leak checks on, UBSan halts on a report; tests/ubsan.supp lists
# the tolerated reports and their owners). Usage: tests/asan.sh [BUILD_DIR] [TEST...] (default build-asan,
# every test; e.g. tests/asan.sh build-asan cli store sweep). Exit status: meson test's (0 = all passed).
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build-asan}
shift $(( $# > 0 ? 1 : 0 ))
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
if [ ! -f "$build/build.ninja" ]; then
    meson setup "$build" "$root" --buildtype=debugoptimized -Db_sanitize=address,undefined -Db_lundef=false \
        >/dev/null || { echo "asan.sh: meson setup failed"; exit 1; }
fi
ninja -C "$build" || { echo "asan.sh: build failed"; exit 1; }
meson test -C "$build" --setup sanitize --print-errorlogs --num-processes "${RB_TEST_JOBS:-2}" "$@"
