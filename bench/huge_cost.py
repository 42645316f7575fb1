#!/usr/bin/python3
"""huge_cost.py -- what writing bulk appends in 2 MiB folios (the default;
MMS_NOHUGE in include/mmstore.h) costs small durable commits: the bytes a
block device is sent, with MMS_HUGE=1 and MMS_HUGE=0 side by side.

    PYTHONPATH=build/python /usr/bin/python3 bench/huge_cost.py --data DIR --dev loop0

DIR must be on a file system of its own on block device --dev, with nothing
else writing to it (here: an ext4 image on a loop device), so that the
device's count of sectors written (/sys/block/DEV/stat) is this script's.
Each case runs in a child process with MMS_HUGE set:

- update: a table of --n float64 records loaded by one extend, then --k
  durable commits that each add 1 to one random record, then a checkpoint:
  device bytes per commit (the checkpoint writes back every folio the
  commits dirtied).
- append RS: a table of RS-byte records loaded by one extend of --bulk-mb
  MiB, then --k durable commits that each append one record, then a
  checkpoint: device bytes per commit.

Times are printed too (median per commit) but mean little on a loop
device; the bytes are exact. Nothing here is part of `make test`.
"""
import argparse
import os
import subprocess
import sys

CHILD = r"""
import os, random, shutil, sys, time
import numpy as np, mmstore
path, dev, case, n, k, bulk = sys.argv[1], sys.argv[2], sys.argv[3], *map(int, sys.argv[4:7])
sectors = lambda: int(open(f"/sys/block/{dev}/stat").read().split()[6]) * 512
shutil.rmtree(path, ignore_errors=True)
s = mmstore.open(path, create=True)
rs = 8 if case == "update" else int(case.split()[1])
with s.write():
    t = s.create_table("t", [("x", "f64")] if rs == 8 else [("x", "chars", rs)])
with s.write():
    if rs == 8:
        t.extend({"x": np.random.default_rng(12).random(n)})
    else:
        t.extend({"x": np.zeros((bulk << 20) // rs, dtype=f"S{rs}")})
s.checkpoint()
os.sync()
rng = random.Random(1)
d0, ts = sectors(), []
for _ in range(k):
    a = time.perf_counter()
    with s.write():
        if rs == 8:
            w = t.array(writable=True)
            w["x"][rng.randrange(n)] += 1.0
            del w
        else:
            t.append({"x": b"y"})
    ts.append(time.perf_counter() - a)
s.checkpoint()
os.sync()
d1 = sectors()
s.close()
shutil.rmtree(path)
ts.sort()
print(f"{(d1 - d0) / k / 1024:.1f} {ts[k // 2] * 1e6:.0f}")
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="a directory on --dev's file system")
    ap.add_argument("--dev", required=True, help="the block device's name in /sys/block")
    ap.add_argument("--n", type=int, default=10_000_000)
    ap.add_argument("--k", type=int, default=200)
    ap.add_argument("--bulk-mb", type=int, default=25)
    a = ap.parse_args()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    print("| case | MMS_HUGE=1 (default): KiB written per commit | median commit | "
          "MMS_HUGE=0 | median commit |")
    print("|---|---:|---:|---:|---:|")
    for case in ("update", "append 64", "append 4096"):
        row = []
        for huge in ("1", "0"):
            env["MMS_HUGE"] = huge
            p = subprocess.run([sys.executable, "-c", CHILD, os.path.join(a.data, "hc.mms"),
                                a.dev, case, str(a.n), str(a.k), str(a.bulk_mb)],
                               capture_output=True, text=True, env=env, timeout=1800)
            if p.returncode:
                sys.exit(f"huge_cost: {case} failed:\n{p.stderr}")
            kib, us = p.stdout.split()
            row += [f"{kib} KiB", f"{us} µs"]
        what = (f"{a.k} one-record updates of {a.n:,} records" if case == "update" else
                f"{a.k} one-record appends of {case.split()[1]} B after a {a.bulk_mb} MiB extend")
        print(f"| {what} | " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    main()
