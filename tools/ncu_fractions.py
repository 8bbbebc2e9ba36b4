#!/usr/bin/env python3
# ncu_fractions.py — reads `ncu --csv --page raw` of one training step and prints launches, time in
# kernels, the fraction of the H200's DRAM bandwidth and of its dense TF32 tensor peak reached.
# Used by tools/device_suite.sh (metrics); standard library only.
import csv, sys

BW = 4.8e12          # H200 HBM3e, bytes/s
TC_TF32 = 494.7e12   # H200 SXM dense TF32 tensor peak, FLOP/s
SCALE = {"": 1, "byte": 1, "Kbyte": 1e3, "Mbyte": 1e6, "Gbyte": 1e9, "KB": 1e3, "MB": 1e6, "GB": 1e9,
         "nsecond": 1e-9, "usecond": 1e-6, "msecond": 1e-3, "second": 1, "ns": 1e-9, "us": 1e-6,
         "ms": 1e-3, "%": 1, "inst": 1, "K": 1e3, "M": 1e6, "G": 1e9}


def num(v, unit):
    try:
        return float(v.replace(",", "")) * SCALE.get(unit, 1)
    except ValueError:
        return 0.0


def main(path, label):
    rows = [r for r in csv.reader(open(path, errors="replace")) if len(r) > 3]
    hi = next((i for i, r in enumerate(rows) if "Kernel Name" in r), None)
    if hi is None:
        print("metrics [%s]: no ncu rows (see the .err file)" % label)
        return
    h, units, data = rows[hi], rows[hi + 1], rows[hi + 2:]
    col = {n: i for i, n in enumerate(h)}
    t = sum(num(r[col["gpu__time_duration.sum"]], units[col["gpu__time_duration.sum"]]) for r in data)
    by = sum(num(r[col[m]], units[col[m]]) for r in data for m in ("dram__bytes_read.sum", "dram__bytes_write.sum") if m in col)
    # Only the columns asked for: raw pages also list .avg/.max/.min of each counter.
    ops = {n: sum(num(r[i], units[i]) for r in data) for n, i in col.items()
           if n.startswith("sm__ops_path_tensor") and n.endswith(".sum")}
    tcol = col["gpu__time_duration.sum"]
    pipes = {n: (sum(num(r[i], units[i]) * num(r[tcol], units[tcol]) for r in data) / t if t else 0)
             for n, i in col.items() if n.endswith("cycles_active.avg.pct_of_peak_sustained_elapsed")}
    top = max(ops.values(), default=0)
    print("metrics [%s]: %d launches, %.3f ms in kernels, DRAM %.1f MB = %.2f TB/s = %.1f%% of 4.8 TB/s; "
          "tensor ops %.2f G = %.1f TFLOP/s = %.1f%% of dense TF32 peak%s" % (
              label, len(data), t * 1e3, by / 1e6, by / t / 1e12 if t else 0, 100 * by / t / BW if t else 0,
              top / 1e9, top / t / 1e12 if t else 0, 100 * top / t / TC_TF32 if t else 0,
              "".join("; %s %.1f%% (time-weighted)" % (n.split(".")[0], v) for n, v in pipes.items())))
    for n, v in sorted(ops.items()):
        if v:
            print("    %s %.3g" % (n, v))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "")
