# lib.sh — helpers shared by the shell tests (sourced): check NAME STATUS [detail] prints PASS/FAIL and
# counts failures in $fails; q runs sqlite3 quietly; $tiny holds a microscopic MQAR's sweep INI lines. Depends on bash (and sqlite3 for q).
fails=${fails:-0}
check() {  # check NAME CONDITION-EXIT-STATUS [detail]
    if [ "$2" = 0 ]; then echo "PASS  $1"; else echo "FAIL  $1 ${3:-}"; fails=$((fails + 1)); fi
}
q() { sqlite3 "$@" 2>/dev/null; }
# Sweep INI lines of a microscopic MQAR (a run takes well under a second), shared by the sweep tests.
tiny='vocab = 64
seq-len = 16
kv-pairs = 2
train-examples = 200
test-examples = 50
d-model = 16
epochs = 1
batch = 32'
# test_start (after rb= and src=, with lib.sh sourced): $rb made absolute and checked, a fresh $tmp that
# is removed on exit, and the shell in it.
test_start() {
    case $rb in /*) ;; *) rb=$PWD/$rb ;; esac
    [ -x "$rb" ] || { echo "FAIL  no recallbench binary at $rb"; exit 1; }
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    cd "$tmp" || exit 1
}
