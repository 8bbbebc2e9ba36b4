#!/usr/bin/env bash
# run.sh — builds the libFuzzer target (fuzz_config.c: flag parser + sweep INI reader) with clang and
# ASan/UBSan, and fuzzes it for a bounded time (default 60 s) from the seeds in tests/fuzz/seeds.
# Usage: tests/fuzz/run.sh [SECONDS] [BUILD_DIR]. Exit 0: no crash, leak or sanitizer report in that time;
# 1: a finding (the reproducer is saved as BUILD_DIR/fuzz-findings/crash-* and printed); 2: cannot build.
# Needs clang (clang-14 or clang) with libFuzzer and OpenMP (Debian: clang-14, libclang-rt-14-dev, libomp-14-dev),
# meson, ninja. Builds only the three libraries the target links, without the CUDA backend (nvcc is slow
# and the parsers do not use it).
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
secs=${1:-60}
build=${2:-$root/build-fuzz}
cc=$(command -v clang-14 || command -v clang) || { echo "run.sh: clang not found"; exit 2; }
export OMP_WAIT_POLICY=PASSIVE
if [ ! -f "$build/build.ninja" ]; then
    # The harness library with ASan/UBSan and fuzzer coverage (models with clang's OpenMP, libomp).
    echo "run.sh: configuring $build ($cc, ASan/UBSan, no CUDA)"
    CC=$cc meson setup "$build" "$root" --buildtype=debugoptimized -Db_sanitize=address,undefined -Db_lundef=false -Dcuda=disabled \
        -Dc_args="-fsanitize=fuzzer-no-link -fno-sanitize-recover=undefined" >/tmp/rb-fuzz-setup.$$.log 2>&1 ||
        { cat /tmp/rb-fuzz-setup.$$.log; rm -f /tmp/rb-fuzz-setup.$$.log; echo "run.sh: meson setup failed"; exit 2; }
    rm -f /tmp/rb-fuzz-setup.$$.log
fi
echo "run.sh: building the fuzz target in $build"
t0=$(date +%s)
ninja -C "$build" librb_harness.a librb_models_f32.a librb_tasks.a >"$build/fuzz-build.log" 2>&1 ||
    { tail -n 40 "$build/fuzz-build.log"; echo "run.sh: build failed (log: $build/fuzz-build.log)"; exit 2; }
# shellcheck disable=SC2046
"$cc" -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -D_GNU_SOURCE -std=c11 \
    -I"$root/harness" -I"$root" -I"$build" "$root/tests/fuzz/fuzz_config.c" \
    "$build/librb_harness.a" "$build/librb_models_f32.a" "$build/librb_tasks.a" \
    $(pkg-config --libs sqlite3 inih openblas 2>/dev/null || echo "-lsqlite3 -linih -lopenblas") -fopenmp -lm -lpthread \
    -o "$build/fuzz_config" || { echo "run.sh: linking the fuzz target failed"; exit 2; }
echo "run.sh: built in $(( $(date +%s) - t0 )) s; fuzzing for ${secs} s (log: $build/fuzz.log)"
corpus=$build/fuzz-corpus findings=$build/fuzz-findings
mkdir -p "$corpus" "$findings"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# -rss_limit_mb: a parser must not need more than this for one input; -timeout: nor this long (s).
"$build/fuzz_config" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=4096 -print_final_stats=1 \
    -artifact_prefix="$findings/" "$corpus" "$root/tests/fuzz/seeds" >"$build/fuzz.log" 2>&1
rc=$?
tail -n 15 "$build/fuzz.log"
if [ $rc != 0 ]; then
    echo "run.sh: FAIL fuzzer finding (exit $rc); reproducer(s), base64 (first byte: even = flags, odd = INI):"
    for f in "$findings"/*; do [ -f "$f" ] && { echo "$f"; base64 -w 100 "$f" | head -n 60; }; done
    echo "reproduce: $build/fuzz_config FILE (or: base64 -d > FILE)"
    exit 1
fi
echo "run.sh: PASS no finding in ${secs}s ($(grep -o 'stat::number_of_executed_units: *[0-9]*' "$build/fuzz.log" | grep -o '[0-9]*$') inputs)"
