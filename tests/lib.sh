# lib.sh — helpers shared by the shell tests (sourced): check NAME STATUS [detail] prints PASS/FAIL and
# counts failures in $fails; q runs sqlite3 quietly. Depends on bash (and sqlite3 for q).
fails=${fails:-0}
check() {  # check NAME CONDITION-EXIT-STATUS [detail]
    if [ "$2" = 0 ]; then echo "PASS  $1"; else echo "FAIL  $1 ${3:-}"; fails=$((fails + 1)); fi
}
q() { sqlite3 "$@" 2>/dev/null; }
