#!/usr/bin/python3
"""py_bench.py -- the Python binding against the usual ways a Python program
gets at a column of numbers (issue 12).

    PYTHONPATH=build/python /usr/bin/python3 bench/py_bench.py \\
        [--n 10000000] [--runs 5] [--data /work/bench-tmp/py] [--out bench/results/python.md]

The data: N float64 values (numpy's default_rng(12)), as a table of N
records with one f64 field in an mmstore store, a CSV file, a pickled
ndarray, a pickled DataFrame, an .npy file and an SQLite table t(x
REAL). Building them is not timed (and is skipped when --data already
holds them for this N) -- except the three stores, written anew by every
run so that the page cache holds them in a known state: x.mms as
Table.extend and its commit left it by default (the extend's pages
advised 2 MiB: 2 MiB folios; MMS_NOHUGE in include/mmstore.h), x4k.mms
the same written with open(huge=False) (the kernel's folios, 4 KiB to 2
MiB: about half of it in 2 MiB ones, the rest smaller), xh.mms written
as x4k.mms, dropped from the cache and read back once, untimed, through
column("x", huge=True) (2 MiB folios; see mms_advise).

What is timed, each measurement in a fresh interpreter (a subprocess), the
page cache warm, medians of --runs runs taken in turn:

1. Open + mean: from the first call of the library to having the mean of
   the column. Not counted: the interpreter's start and `import numpy`
   (and `import pandas`, `import pickle`, `import sqlite3` where used, so
   that every row counts only its own work); `import mmstore` is shown on
   its own line. For mmstore the open + view part is shown too: open the
   store, find the table, begin a read transaction, take the column view
   (with huge=True, its madvise included). Three mmstore rows: x.mms with
   column("x") (the default), x4k.mms with column("x"), and xh.mms with
   column("x", huge=True).
1b. The first pass over the column after a paging hint (none,
   MADV_POPULATE_READ, MADV_WILLNEED) with x4k.mms's folios as the writer
   left them, and with no hint over x.mms's and xh.mms's 2 MiB ones: page
   faults and times.
2. The mean itself, over the mapped column against an in-memory copy of
   the same values in the same process (both warm, best of 5): the limit.
3. Appending N rows: Table.extend from a numpy array (one write
   transaction; the durable commit shown apart) against numpy copying the
   same array into new memory (np.copy) and into memory already touched; and
   the same Table.extend in a handle opened with huge=False.

Results go to --out (Markdown, with the command line and the machine).
Nothing here is part of `make test`.
"""
import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))

# ---------------------------------------------------------------------------
# The measurements, each the source of a fresh interpreter. argv[1] is the
# data directory. Each prints one JSON object: "s" the timed seconds,
# "mean" the answer, and extra timings where a row has them.
# ---------------------------------------------------------------------------
MMSTORE = """
import sys, time, json
import numpy as np
t0 = time.perf_counter()
import mmstore
t1 = time.perf_counter()
c1 = time.process_time()
s = mmstore.open(sys.argv[1] + "/STORE", readonly=True)
t = s.table("t")
with s.read():
    x = t.column("x"HUGE)
    t2 = time.perf_counter()
    c2 = time.process_time()
    m = float(x.mean())
    t3 = time.perf_counter()
    c3 = time.process_time()
    def best(f):
        r = []
        for _ in range(5):
            a = time.perf_counter(); f(); r.append(time.perf_counter() - a)
        return min(r)
    warm = best(x.mean)
    mem = np.array(x)                      # an in-memory copy: the limit
    limit = best(mem.mean)
    pmd = sum(int(l.split()[1]) for l in open("/proc/self/smaps") if l.startswith("FilePmdMapped"))
print(json.dumps({"s": t3 - t1, "cpu": c3 - c1, "open_view": t2 - t1, "open_view_cpu": c2 - c1, "import": t1 - t0, "mean": m,
                  "warm_mean": warm, "limit_mean": limit, "pmd_kb": pmd}))
"""

# The first pass over the column as a writer opened with huge=False left
# the page cache (x4k.mms), after a paging hint over its bytes (argv[3]):
# none, MADV_POPULATE_READ (maps every page without a fault each) or
# MADV_WILLNEED; and, with no hint, over the store as the default writer
# left it (x.mms) and read in through huge=True (xh.mms). Minor faults
# counted.
TOUCH = """
import sys, time, json, ctypes, resource
import numpy as np, mmstore
how = sys.argv[3]
libc = ctypes.CDLL(None, use_errno=True)
libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
s = mmstore.open(sys.argv[1] + {"huge": "/xh.mms", "default": "/x.mms"}.get(how, "/x4k.mms"),
                 readonly=True)
t = s.table("t")
with s.read():
    x = t.column("x", huge=how == "huge")
    lo = x.__array_interface__["data"][0] & ~4095
    n = (x.__array_interface__["data"][0] + x.nbytes - lo + 4095) & ~4095
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    t0 = time.perf_counter()
    if how in ("populate", "willneed"):
        assert libc.madvise(lo, n, 22 if how == "populate" else 3) == 0, ctypes.get_errno()
    t1 = time.perf_counter()
    f1 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    m = float(x.mean())
    t2 = time.perf_counter()
    f2 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    x.mean()
    t3 = time.perf_counter()
print(json.dumps({"s": t2 - t0, "advise": t1 - t0, "first": t2 - t1, "warm": t3 - t2,
                  "advise_faults": f1 - f0, "first_faults": f2 - f1, "mean": m}))
"""

CHILD = {
    "mmstore": MMSTORE.replace("STORE", "x.mms").replace("HUGE", ""),
    "mmstore_4k": MMSTORE.replace("STORE", "x4k.mms").replace("HUGE", ""),
    "mmstore_huge": MMSTORE.replace("STORE", "xh.mms").replace("HUGE", ", huge=True"),
    "npy_mmap": """
import sys, time, json
import numpy as np
t1 = time.perf_counter()
c1 = time.process_time()
m = float(np.load(sys.argv[1] + "/x.npy", mmap_mode="r").mean())
print(json.dumps({"s": time.perf_counter() - t1, "cpu": time.process_time() - c1, "mean": m}))
""",
    "npy_load": """
import sys, time, json
import numpy as np
t1 = time.perf_counter()
c1 = time.process_time()
m = float(np.load(sys.argv[1] + "/x.npy").mean())
print(json.dumps({"s": time.perf_counter() - t1, "cpu": time.process_time() - c1, "mean": m}))
""",
    "pickle_array": """
import sys, time, json, pickle
import numpy as np
t1 = time.perf_counter()
c1 = time.process_time()
with open(sys.argv[1] + "/x.pickle", "rb") as f:
    m = float(pickle.load(f).mean())
print(json.dumps({"s": time.perf_counter() - t1, "cpu": time.process_time() - c1, "mean": m}))
""",
    "pickle_df": """
import sys, time, json, pickle
import numpy as np, pandas
t1 = time.perf_counter()
c1 = time.process_time()
with open(sys.argv[1] + "/df.pickle", "rb") as f:
    m = float(pickle.load(f)["x"].mean())
print(json.dumps({"s": time.perf_counter() - t1, "cpu": time.process_time() - c1, "mean": m}))
""",
    "sqlite": """
import sys, time, json, sqlite3
import numpy as np
t1 = time.perf_counter()
c1 = time.process_time()
con = sqlite3.connect(sys.argv[1] + "/x.sqlite")
m = con.execute("SELECT avg(x) FROM t").fetchone()[0]
print(json.dumps({"s": time.perf_counter() - t1, "cpu": time.process_time() - c1, "mean": m}))
""",
    "read_csv": """
import sys, time, json
import numpy as np, pandas
t1 = time.perf_counter()
c1 = time.process_time()
m = float(pandas.read_csv(sys.argv[1] + "/x.csv")["x"].mean())
print(json.dumps({"s": time.perf_counter() - t1, "cpu": time.process_time() - c1, "mean": m}))
""",
    "extend": """
import sys, time, json, shutil
import numpy as np, mmstore
n = int(sys.argv[2])
x = np.random.default_rng(12).random(n)
path = sys.argv[1] + "/extend.mms"
shutil.rmtree(path, ignore_errors=True)
s = mmstore.open(path, create=True, huge=HUGE)
with s.write():
    t = s.create_table("t", [("x", "f64")])
tx = s.write()
tx.__enter__()
t0 = time.perf_counter()
t.extend({"x": x})
t1 = time.perf_counter()
tx.__exit__(None, None, None)              # the durable commit
t2 = time.perf_counter()
with s.read():
    assert t.column("x")[n - 1] == x[n - 1]
s.close()
shutil.rmtree(path)
t3 = time.perf_counter()
y = np.copy(x)                             # into new memory (page faults)
t4 = time.perf_counter()
z = np.empty_like(x); z[:] = 1.0           # touch it first
t5 = time.perf_counter()
z[:] = x                                   # into touched memory: memcpy
t6 = time.perf_counter()
print(json.dumps({"s": t1 - t0, "commit": t2 - t1, "copy_new": t4 - t3, "copy_warm": t6 - t5,
                  "mean": float(x.mean())}))
""",
}
CHILD["extend_4k"] = CHILD["extend"].replace("HUGE", "False")
CHILD["extend"] = CHILD["extend"].replace("HUGE", "True")

ROWS = [  # (key, what the row is), the order of the table
    ("mmstore", "mmstore: open, table, read transaction, column(), mean"),
    ("mmstore_4k", "mmstore as above, the store written with open(huge=False)"),
    ("mmstore_huge", "mmstore as above, that store dropped from the cache and read back through column(huge=True)"),
    ("npy_mmap", 'numpy.load(".npy", mmap_mode="r") + mean'),
    ("npy_load", 'numpy.load(".npy") into memory + mean'),
    ("pickle_array", "pickle.load of the ndarray + mean"),
    ("pickle_df", "pickle.load of the DataFrame + mean"),
    ("sqlite", "sqlite3: connect, SELECT avg(x)"),
    ("read_csv", "pandas.read_csv + mean"),
]


def child_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    return env


TOUCHES = ("none", "populate", "willneed", "default", "huge")


def run_child(key, data, n):
    """Run CHILD[key] (or, for "touch:HOW", TOUCH with HOW) in a new interpreter."""
    src, extra = (TOUCH, [key.split(":")[1]]) if key.startswith("touch:") else (CHILD[key], [])
    p = subprocess.run([sys.executable, "-c", src, data, str(n), *extra], capture_output=True,
                       text=True, env=child_env(), timeout=600)
    if p.returncode != 0:
        sys.exit(f"py_bench: {key} failed:\n{p.stderr}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def write_store(path, x, huge=True):
    import mmstore
    shutil.rmtree(path, ignore_errors=True)
    with mmstore.open(path, create=True, huge=huge) as s:
        with s.write():
            s.create_table("t", [("x", "f64")]).extend({"x": x})


def evict(path):
    """Every file of the store leaves the page cache (none is mapped now)."""
    for name in os.listdir(path):
        fd = os.open(os.path.join(path, name), os.O_RDONLY)
        try:
            os.fdatasync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def prepare_stores(data, n):
    """The three stores, written anew on every run of the benchmark so that
    the state of their page cache is known: x.mms as Table.extend and its
    commit left it (2 MiB folios), x4k.mms the same written with
    open(huge=False) (about half in 2 MiB folios, the rest smaller), xh.mms
    written so, dropped from the cache and read back once, untimed, through
    column("x", huge=True) (2 MiB folios): a data set written earlier and
    read by a new process."""
    x = np.random.default_rng(12).random(n)
    write_store(os.path.join(data, "x.mms"), x)
    write_store(os.path.join(data, "x4k.mms"), x, huge=False)
    write_store(os.path.join(data, "xh.mms"), x, huge=False)
    evict(os.path.join(data, "xh.mms"))
    code = ("import sys, mmstore\n"
            "with mmstore.open(sys.argv[1], readonly=True) as s, s.read():\n"
            "    s.table('t').column('x', huge=True).mean()\n")
    subprocess.run([sys.executable, "-c", code, os.path.join(data, "xh.mms")], check=True,
                   env=child_env(), timeout=600)


def prepare(data, n):
    """Write the data in every form, unless --data has them for this n."""
    stamp = os.path.join(data, "n")
    if os.path.exists(stamp) and open(stamp).read().strip() == str(n):
        print(f"py_bench: reusing the data in {data}", flush=True)
        prepare_stores(data, n)
        return
    import pickle
    import sqlite3

    import pandas
    shutil.rmtree(data, ignore_errors=True)
    os.makedirs(data)
    x = np.random.default_rng(12).random(n)
    t = time.perf_counter()
    prepare_stores(data, n)
    np.save(os.path.join(data, "x.npy"), x)
    with open(os.path.join(data, "x.pickle"), "wb") as f:
        pickle.dump(x, f, protocol=pickle.HIGHEST_PROTOCOL)
    df = pandas.DataFrame({"x": x})
    with open(os.path.join(data, "df.pickle"), "wb") as f:
        pickle.dump(df, f, protocol=pickle.HIGHEST_PROTOCOL)
    print(f"py_bench: store, .npy, pickles written ({time.perf_counter() - t:.1f} s); "
          "CSV and SQLite next", flush=True)
    df.to_csv(os.path.join(data, "x.csv"), index=False)   # repr: round-trips exactly
    con = sqlite3.connect(os.path.join(data, "x.sqlite"))
    con.execute("CREATE TABLE t(x REAL)")
    con.executemany("INSERT INTO t VALUES (?)", ((float(v),) for v in x))
    con.commit()
    con.close()
    with open(stamp, "w") as f:
        f.write(str(n))
    print(f"py_bench: data ready in {time.perf_counter() - t:.1f} s", flush=True)


def fmt_s(s):
    if s < 1e-3:
        return f"{s * 1e6:.0f} µs"
    if s < 1:
        return f"{s * 1e3:.1f} ms"
    return f"{s:.2f} s"


def machine():
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import pandas
    return (f"{cpu}, {os.cpu_count()} CPUs, Linux {platform.release()}, Python "
            f"{platform.python_version()}, numpy {np.__version__}, pandas {pandas.__version__}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=10_000_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--data", default="/work/bench-tmp/py")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "python.md"))
    a = ap.parse_args()
    data = os.path.abspath(a.data)
    prepare(data, a.n)
    load_before = os.getloadavg()
    keys = list(CHILD) + [f"touch:{h}" for h in TOUCHES]
    res = {k: [] for k in keys}
    for r in range(a.runs):
        for key in keys:       # in turn, so that a noisy moment hits every row alike
            res[key].append(run_child(key, data, a.n))
        print(f"py_bench: run {r + 1} of {a.runs} done", flush=True)
    load_after = os.getloadavg()

    def med(key, field="s"):
        return statistics.median(v[field] for v in res[key])

    ref = res["mmstore"][0]["mean"]
    for key, runs in res.items():
        for v in runs:
            assert abs(v["mean"] - ref) < 1e-9, (key, v["mean"], ref)
    mm = med("mmstore")
    lines = []
    out = lines.append
    cmd = ("PYTHONPATH=build/python /usr/bin/python3 bench/py_bench.py "
           f"--n {a.n} --runs {a.runs} --data {a.data}")
    out("# The Python binding against numpy, pickle, SQLite and pandas\n")
    out(f"Produced by `{cmd}` (`bench/py_bench.py` says what is timed and how) on "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.\n")
    out(f"Machine: {machine()}. Load average {load_before[0]:.1f} before, "
        f"{load_after[0]:.1f} after (a shared 2-core VM: other work ran meanwhile, "
        "so single numbers wobble; the medians and ratios are what to read).\n")
    out(f"Every measurement is a fresh interpreter (`{sys.executable} -c ...`), page cache "
        f"warm, the median of {a.runs} runs taken in turn. Every row computed the same "
        f"mean ({ref:.12f}).\n")
    out(f"## Open {a.n:,} float64 records and take the mean of the column\n")
    out("Not counted: the interpreter's start and the imports (`numpy`, and `pandas`, "
        "`pickle` or `sqlite3` where the row uses them).\n")
    out("| how | open + mean | × mmstore | its CPU time | × mmstore |")
    out("|---|---:|---:|---:|---:|")
    mc = med("mmstore", "cpu")
    for key, what in ROWS:
        t, c = med(key), med(key, "cpu")
        out(f"| {what} | {fmt_s(t)} | {t / mm:.1f}× | {fmt_s(c)} | {c / mc:.1f}× |"
            if key != "mmstore" else
            f"| **{what}** | **{fmt_s(t)}** | 1× | **{fmt_s(c)}** | 1× |")
    out("")
    out("The time is wall-clock time, what the issue's goals are about; the CPU time "
        "(user + system, `time.process_time()`) of the same runs is what the row's own "
        "work cost, and moves less when other work shares the CPUs.\n")
    mb = a.n * 8 / 1e6
    pages = a.n * 8 / 4096

    def where(key):
        ov = med(key, "open_view")
        warm = med(key, "warm_mean")
        touch = statistics.median(v["s"] - v["open_view"] - v["warm_mean"] for v in res[key])
        pmd = statistics.median(v["pmd_kb"] for v in res[key]) / 1024
        return ov, warm, touch, pmd

    for key, what in (("mmstore", "default row (`column(\"x\")`, the cache as the writer left it)"),
                      ("mmstore_4k", "`huge=False` writer's row (the kernel's folios)"),
                      ("mmstore_huge", "`column(\"x\", huge=True)` row (the cache read in through it)")):
        ov, warm, touch, pmd = where(key)
        out(f"Where the {what}'s time goes: open + table + read transaction + column view "
            f"**{fmt_s(ov)}** (runs: {', '.join(fmt_s(v['open_view']) for v in res[key])}; "
            f"CPU time {fmt_s(med(key, 'open_view_cpu'))}); "
            f"the mean itself (warm) {fmt_s(warm)}; the rest, {fmt_s(touch)}, is what the first "
            f"pass over the {mb:.0f} MB of mapped page-cache pages costs beyond a warm one "
            f"({touch / pages * 1e6:.2f} µs per 4 KiB page); {pmd:.0f} MiB of them were mapped "
            "2 MiB at a time (FilePmdMapped).\n")
    out("`numpy.load(mmap_mode=\"r\")` pays the first touch of 4 KiB pages as well; "
        "`numpy.load` into memory copies into anonymous memory that numpy backs with "
        "transparent huge pages (one fault per 2 MiB). `import mmstore` itself: "
        f"{fmt_s(med('mmstore', 'import'))}.\n")
    out("## What the first touch costs, and what does not help\n")
    out("The first pass (`x.mean()`) over the column just viewed, in a fresh interpreter, "
        "after a paging hint over its bytes; the first three lines x4k.mms as a writer opened "
        "with `huge=False` left the cache, the last two x.mms as the default writer left it "
        "and xh.mms read in through `huge=True`. Minor page faults counted by getrusage.\n")
    out("| hint before the first pass | hint | faults | first pass | faults | warm pass |")
    out("|---|---:|---:|---:|---:|---:|")
    names = {"none": "none (the `huge=False` writer's folios; fault-around)",
             "populate": "MADV_POPULATE_READ over the column",
             "willneed": "MADV_WILLNEED over the column",
             "default": "none, the default writer's 2 MiB folios",
             "huge": "none, the cache read in 2 MiB folios (`huge=True`)"}
    for h in TOUCHES:
        k = f"touch:{h}"
        out(f"| {names[h]} | {fmt_s(med(k, 'advise'))} | {med(k, 'advise_faults'):.0f} | "
            f"{fmt_s(med(k, 'first'))} | {med(k, 'first_faults'):.0f} | {fmt_s(med(k, 'warm'))} |")
    out("")
    out("MADV_POPULATE_READ maps every page with no fault left to take, and the first pass "
        "costs as much as before: what a 4 KiB page costs on its first touch here is not the "
        "guest's page fault (fault-around already maps 16 pages per fault, and large folios "
        "more) but the translation of each new 4 KiB mapping, which this virtual machine "
        "makes on first access; anonymous 4 KiB memory behaves the same, anonymous huge pages "
        "do not. Only mappings of 2 MiB avoid it, and the kernel makes those of page-cache "
        "folios of 2 MiB (ext4 on Linux 6.18 has large folios), which it creates when the "
        "pages enter the cache through a mapping with MADV_HUGEPAGE: written by a bulk "
        "append (the default writer) or read in through `huge=True`. MAP_POPULATE "
        "is MADV_POPULATE_READ at mmap time; `MADV_COLLAPSE` of cached file pages fails "
        "(EINVAL: the kernel lacks CONFIG_READ_ONLY_THP_FOR_FS).\n")
    out("## The mean itself: mapped column against an in-memory array\n")
    out("Same process, same values, both warm, best of 5 each; median over the runs.\n")
    out("| column | mean over the mapped column | over an in-memory copy (the limit) | ratio |")
    out("|---|---:|---:|---:|")
    for key, what in (("mmstore", "the default writer's 2 MiB folios"),
                      ("mmstore_4k", "the `huge=False` writer's folios"),
                      ("mmstore_huge", "read in through `huge=True`, 2 MiB folios")):
        warm, limit = med(key, "warm_mean"), med(key, "limit_mean")
        out(f"| {what} | {fmt_s(warm)} | {fmt_s(limit)} | {warm / limit:.2f}× |")
    out("")
    ext, com = med("extend"), med("extend", "commit")
    cnew, cwarm = med("extend", "copy_new"), med("extend", "copy_warm")
    out(f"## Appending {a.n:,} rows from a numpy array\n")
    out("| what | time | rows/s |")
    out("|---|---:|---:|")
    out(f"| `Table.extend` (in the transaction) | {fmt_s(ext)} | {a.n / ext / 1e6:.1f} M |")
    out(f"| its durable commit | {fmt_s(com)} | |")
    e4, c4 = med("extend_4k"), med("extend_4k", "commit")
    out(f"| `Table.extend`, handle opened with `huge=False` | {fmt_s(e4)} | "
        f"{a.n / e4 / 1e6:.1f} M |")
    out(f"| its durable commit | {fmt_s(c4)} | |")
    out(f"| `np.copy` into new memory | {fmt_s(cnew)} | {a.n / cnew / 1e6:.1f} M |")
    out(f"| copy into memory already touched (memcpy) | {fmt_s(cwarm)} | "
        f"{a.n / cwarm / 1e6:.1f} M |\n")
    out("`extend` writes into fresh space of the table's region file: page-cache pages "
        "zeroed by `mms_table_append_many`, then filled by the copy; by default that space "
        "is advised 2 MiB pages first, so it is faulted in 2 MiB at a time (with "
        "`huge=False` 4 KiB to 2 MiB at a time, as the kernel's read-around makes them); "
        "`np.copy` writes into anonymous memory backed by huge pages.\n")
    def goals(key):
        t = med(key)
        ov = med(key, "open_view")
        ratio = med(key, "warm_mean") / med(key, "limit_mean")
        return [
            ("open + view < 1 ms in a fresh interpreter", ov < 1e-3,
             f"{fmt_s(ov)} (CPU {fmt_s(med(key, 'open_view_cpu'))})"),
            ("column mean within 1.3× of the in-memory array", ratio <= 1.3, f"{ratio:.2f}×"),
            ("≥ 100× faster than pandas.read_csv", med("read_csv") / t >= 100,
             f"{med('read_csv') / t:.0f}×"),
            ("faster than pickle.load (ndarray / DataFrame)",
             med("pickle_array") > t and med("pickle_df") > t,
             f"{med('pickle_array') / t:.1f}× / {med('pickle_df') / t:.1f}×"),
            ("faster than numpy.load into memory", med("npy_load") > t,
             f"{med('npy_load') / t:.1f}×"),
        ]

    out("## The goals of issue 12\n")
    out("| goal | `column(\"x\")`, the default writer's cache | met | "
        "`column(\"x\")`, a `huge=False` writer's cache | met | "
        "`column(\"x\", huge=True)`, cache read in through it | met |")
    out("|---|---:|---|---:|---|---:|---|")
    yes = lambda b: "yes" if b else "**no**"
    for (g, ok, v), (_, ok4, v4), (_, okh, vh) in zip(goals("mmstore"), goals("mmstore_4k"),
                                                       goals("mmstore_huge")):
        out(f"| {g} | {v} | {yes(ok)} | {v4} | {yes(ok4)} | {vh} | {yes(okh)} |")
    out("")
    out("Raw results (seconds), one object per run:\n")
    out("```")
    for key in keys:
        out(f"{key}: " + json.dumps(res[key]))
    out("```")
    text = "\n".join(lines) + "\n"
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
