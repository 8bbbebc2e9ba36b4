# emu_lib.sh — sourced by the tools/*_emu.sh scripts (CUDA kernels cut out of models/cuda and emulated on the
# host by tools/cuda_emu.h): strict mode, root (the repository), tmp (a folder removed at exit), and
# emu_build_run. Usage, in a script: . "$(dirname "$0")/emu_lib.sh"
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# emu_build_run CPP [g++ flags...]: builds tools/CPP against the pieces cut into $tmp, and runs it
emu_build_run() {
    local cpp=$1; shift
    g++ -w "$@" -I"$tmp" -o "$tmp/emu" "$root/tools/$cpp"
    "$tmp/emu"
}
