#!/usr/bin/env bash
# learn_bla.sh — claim 2 of bla.md in training: with N = W and the dense readout, BLA is SWA, so trained
# with the same seed on the tiny MQAR config it follows swa(W)'s loss curve to float noise (per-epoch
# train loss and test accuracy compared). Args: $1 recallbench binary, $2 source root.
set -u
rb=$1; . "$2/tests/learning.conf"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
W=$BLA_EQ_WINDOW
"$rb" train $TINY_MQAR --epochs $BLA_EQ_EPOCHS --early-stop 1.01 --layers conv,swa --window $W --db "$tmp/r.db" --progress none >/dev/null || { echo "FAIL swa run"; exit 1; }
"$rb" train $TINY_MQAR --epochs $BLA_EQ_EPOCHS --early-stop 1.01 --layers conv,bla --window $W --freqs $W --db "$tmp/r.db" --progress none >/dev/null || { echo "FAIL bla run"; exit 1; }
sqlite3 -separator ' ' "$tmp/r.db" "select r.mixer, e.epoch, e.split, e.loss, coalesce(e.accuracy, -1) from evals e join runs r on r.id = e.run_id order by e.epoch, e.split, r.mixer" >"$tmp/curves"
python3 - "$tmp/curves" "$BLA_EQ_LOSS_TOL" "$BLA_EQ_ACC_TOL" <<'PY'
import sys, collections
rows = collections.defaultdict(dict)
for line in open(sys.argv[1]):
    mixer, epoch, split, loss, acc = line.split()
    rows[(int(epoch), split)][mixer] = (float(loss), float(acc))
ltol, atol = float(sys.argv[2]), float(sys.argv[3])
worst_l = worst_a = 0.0
for key in sorted(rows):
    r = rows[key]
    if "swa" not in r or "bla" not in r:
        print(f"FAIL missing curve point {key}"); sys.exit(1)
    (ls, as_), (lb, ab) = r["swa"], r["bla"]
    dl = abs(ls - lb) / max(abs(ls), 1e-12)
    worst_l = max(worst_l, dl)
    worst_a = max(worst_a, abs(as_ - ab))
    print(f"     epoch {key[0]} {key[1]:<10} swa loss {ls:.6f} acc {as_:.4f} | bla loss {lb:.6f} acc {ab:.4f} | rel dloss {dl:.2e}")
ok = worst_l <= ltol and worst_a <= atol and len(rows) >= 2
print(f"{'PASS' if ok else 'FAIL'} bla(N=W) follows swa(W) loss curve: max rel loss diff {worst_l:.2e} (tol {ltol:.0e}), "
      f"max acc diff {worst_a:.4f} (tol {atol})")
sys.exit(0 if ok else 1)
PY
