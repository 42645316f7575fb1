#!/usr/bin/python3
"""dask_bench.py -- shards as one dask collection (python/mmstore_dask.py,
DESIGN.md section 8) against the same dask work over in-memory data.

    PYTHONPATH=build/python /usr/bin/python3 bench/dask_bench.py \\
        [--n 10000000] [--shards 4] [--runs 7] [--data /tmp/dask-bench] [--out FILE]

The data: N float64 values (numpy's default_rng(12)) and an i64 key (i % 16),
split into --shards stores, each with a table v(x f64) and a table t(x f64,
k i64), written once (not timed). Then, in one process, the page cache warm, each measurement taken in
turn --runs times (medians and each round's ratio to the in-memory entry):

  array mean      mmstore_dask.array(paths, "v", "x").mean().compute()
                  (making the collection, which opens each store once, is
                  counted) against da.concatenate of the same chunks as
                  in-memory numpy arrays (made before, not counted), and
                  numpy's mean over one in-memory array (no dask).
  frame groupby   mmstore_dask.dataframe(paths, "t").groupby("k").x.mean()
                  against dd.from_pandas of in-memory DataFrames of the same
                  partitions (made before, not counted).

dask runs its threaded scheduler. Nothing here is part of `make test`.
"""
import argparse
import os
import platform
import statistics
import sys
import time

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10_000_000)
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--data", default="/tmp/dask-bench")
    ap.add_argument("--out")
    a = ap.parse_args()

    import dask.array as da
    import dask.dataframe as dd
    import pandas as pd

    import mmstore
    import mmstore_dask

    os.makedirs(a.data, exist_ok=True)
    x = np.random.default_rng(12).random(a.n)
    k = np.arange(a.n, dtype=np.int64) % 16
    bounds = np.linspace(0, a.n, a.shards + 1).astype(np.int64)
    paths = []
    for i in range(a.shards):
        p = os.path.join(a.data, "v%d-of-%d-%d.mms" % (i, a.shards, a.n))
        if not os.path.exists(p):
            with mmstore.open(p + ".tmp", create=True) as s:
                with s.write():
                    s.create_table("v", [("x", "f64")]).extend({"x": x[bounds[i]:bounds[i + 1]]})
                    s.create_table("t", [("x", "f64"), ("k", "i64")]).extend(
                        {"x": x[bounds[i]:bounds[i + 1]], "k": k[bounds[i]:bounds[i + 1]]})
            os.rename(p + ".tmp", p)
        paths.append(p)

    mem_chunks = [x[bounds[i]:bounds[i + 1]].copy() for i in range(a.shards)]
    mem_array = da.concatenate([da.from_array(c, chunks=len(c)) for c in mem_chunks])
    mem_frame = dd.concat([dd.from_pandas(pd.DataFrame({"x": c, "k": k[bounds[i]:bounds[i + 1]]}),
                                          npartitions=1) for i, c in enumerate(mem_chunks)])
    want = x.mean()

    def mms_array():
        return mmstore_dask.array(paths, "v", "x").mean().compute(scheduler="threads")

    def mem_dask():
        return mem_array.mean().compute(scheduler="threads")

    def numpy_mean():
        return x.mean()

    def mms_frame():
        return mmstore_dask.dataframe(paths, "t").groupby("k").x.mean().compute(
            scheduler="threads")

    def mem_frame_gb():
        return mem_frame.groupby("k").x.mean().compute(scheduler="threads")

    entries = [("mmstore_dask.array(...).mean()", mms_array),
               ("dask array of in-memory chunks, .mean()", mem_dask),
               ("numpy mean of one in-memory array", numpy_mean),
               ("mmstore_dask.dataframe(...).groupby(k).x.mean()", mms_frame),
               ("dask frame of in-memory partitions, same groupby", mem_frame_gb)]
    for _, f in entries:  # warm, and check the answers
        r = f()
        if np.ndim(r) == 0:
            assert abs(float(r) - want) < 1e-9, (r, want)
    times = {n: [] for n, _ in entries}
    for _ in range(a.runs):
        for n, f in entries:
            t0 = time.perf_counter()
            f()
            times[n].append(time.perf_counter() - t0)

    def ratio(n, base):
        return statistics.median(t / b for t, b in zip(times[n], times[base]))

    lines = ["# dask over shards: %d float64 in %d stores (%s)" % (a.n, a.shards,
             time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())), "",
             "`%s`" % " ".join(["PYTHONPATH=build/python", "/usr/bin/python3"] + sys.argv), "",
             "Machine: %s, %d CPUs, load average %.1f at the end; Python %s, numpy %s, dask %s."
             % (platform.machine(), os.cpu_count(), os.getloadavg()[0],
                platform.python_version(), np.__version__, __import__("dask").__version__), "",
             "| | median | runs | median of per-round ratios |", "|---|--:|---|---|"]
    base = {0: 1, 1: 1, 2: 1, 3: 4, 4: 4}
    for i, (n, _) in enumerate(entries):
        b = entries[base[i]][0]
        lines.append("| %s | %.2f ms | %s | %.2fx %s |" % (
            n, statistics.median(times[n]) * 1e3, " ".join("%.1f" % (t * 1e3) for t in times[n]),
            ratio(n, b), "the in-memory dask entry" if b != n else "(itself)"))
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
