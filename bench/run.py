#!/usr/bin/env python3
"""Run the benchmarks (bench/README.md) and write bench/results/.

    bench/run.py [--quick] [--runs N] [--build DIR] [--data DIR] [--only WORKLOAD,...]
    bench/run.py --render CSV [--out DIR]

Every (workload, size, system, variant) runs --runs times (default 5; 1 with
--quick, which only checks the harness), each in a fresh process; the median
and the spread (min-max) are reported. Answers are compared across systems.
Writes latest.csv (the measurements), latest.md (for a person: one section per
question, one unit per section, mmstore compared with each peer's matching
variant) and one PNG per question (gnuplot). --render writes latest.md and the
PNGs again from a latest.csv, without measuring. Standard library only
(Debian's python3).
"""
import argparse
import csv
import datetime
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

# (system, variant, flags documented in the harness). Peers are skipped when
# their harness was not built (their library is missing).
FULL = {
    "open": {"sizes": [100000, 1000000, 10000000], "unit": "us", "per": "run",
             "systems": [("mmstore", "durable"), ("mmstore", "nordahead"), ("lmdb", "default"),
                         ("lmdb", "nordahead"), ("sqlite", "wal"),
                         ("array", "flat"), ("array", "csv")]},
    # The other cold case: open, then read every record (sum of one field).
    "openscan": {"sizes": [1000000], "unit": "ms", "per": "run",
                 "systems": [("mmstore", "durable"), ("mmstore", "nordahead"),
                             ("lmdb", "default"), ("lmdb", "nordahead"), ("sqlite", "wal")]},
    # mms import and sqlite3's .import of one generated CSV file (size: MB of
    # CSV); run here, not by a harness: peak RSS (wait4) and time per run.
    "import": {"sizes": [144], "unit": "MB", "per": "run",
               "systems": [("mmstore", "mms import"), ("sqlite", "sqlite3 .import")]},
    # Bytes on disk (allocated blocks of every file) of a store holding n
    # records of 64 bytes, made by each harness's "open" prepare step.
    "disk": {"sizes": [2, 100000, 1000000, 10000000], "unit": "MB", "per": "run",
             "systems": [("mmstore", "durable"), ("lmdb", "default"), ("sqlite", "wal")]},
    "get": {"sizes": [10000000], "unit": "ns", "per": "op",
            "systems": [("mmstore", "durable"), ("lmdb", "default"), ("sqlite", "wal"),
                        ("array", "malloc")]},
    "scan": {"sizes": [10000000], "unit": "ns", "per": "op",
             "systems": [("mmstore", "durable"), ("lmdb", "default"), ("sqlite", "wal"),
                         ("array", "malloc")]},
    "load": {"sizes": [10000000], "unit": "Mrec/s", "per": "rate",
             "systems": [("mmstore", "durable"), ("mmstore", "nosync"), ("lmdb", "append"),
                         ("sqlite", "wal"), ("pmemobj", "tx"), ("boost", "vector"),
                         ("array", "malloc")]},
    "commit": {"sizes": [100000], "unit": "us", "per": "op",
               "systems": [("mmstore", "durable"), ("mmstore", "nosync"), ("lmdb", "default"),
                           ("lmdb", "nosync"), ("sqlite", "full"), ("sqlite", "off"),
                           ("pmemobj", "tx")]},
    "alloc": {"sizes": [0], "unit": "ns", "per": "op",
              "systems": [("mmstore", "durable"), ("array", "glibc"), ("pmemobj", "tx"),
                          ("boost", "managed")]},
    "commit_size": {"sizes": [1, 100, 1024, 4096], "unit": "us", "per": "op",
                    "systems": [("mmstore", "-")]},
    "ipc": {"sizes": [100000], "unit": "us", "per": "op", "systems": [("mmstore", "durable")],
            "units": {"ipc_reader": "ns"}},
}
SCALE = {"ns": 1e9, "us": 1e6, "ms": 1e3, "s": 1.0}
QUICK_SIZES = {"open": [10000, 100000], "openscan": [100000], "import": [8], "disk": [2, 10000],
               "get": [100000], "scan": [100000], "load": [100000],
               "commit": [10000], "alloc": [20], "commit_size": [1, 16], "ipc": [10000]}


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""


def machine():
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": "%s, %d cores" % (cpu, os.cpu_count() or 0),
        "kernel": platform.release(),
        "memory": sh("free -g | awk '/Mem:/ {print $2 \" GiB\"}'"),
        "filesystem": "",
        "compiler": sh("cc --version | head -1"),
    }


def can_drop_caches():
    return os.access("/proc/sys/vm/drop_caches", os.W_OK)


def drop_caches():
    subprocess.run("sync", shell=True)
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def run_harness(exe, phase, workload, n, data, variant, timeout):
    cmd = [exe, phase, workload, str(n), data, variant]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    lines = [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")]
    if p.returncode == 3:
        return "unsupported", (lines[0].get("unsupported", "") if lines else "")
    if p.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(cmd), p.returncode,
                                                   p.stderr.strip()[-500:]))
    return "ok", lines


def value(r, per, unit):
    """The number reported for one result line, in unit."""
    if per == "rate":
        return r["ops"] / r["seconds"] / 1e6
    if per == "run":
        return r["seconds"] * SCALE[unit]
    return r["seconds"] / max(r["ops"], 1) * SCALE[unit]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--runs", type=int, default=0,
                    help="runs per measurement (default 5; 1 with --quick, which only "
                         "checks the harness)")
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    ap.add_argument("--data", default=os.path.join(HERE, "..", "build", "bench-data"))
    ap.add_argument("--only", default="")
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--render", metavar="CSV",
                    help="write latest.md and the plots from this latest.csv, measuring nothing")
    args = ap.parse_args()
    if args.render:
        render(args.render, args.out)
        return
    if args.runs <= 0:
        args.runs = 1 if args.quick else 5
    # The import runs the tool and sqlite3 from its data dir: paths absolute.
    args.build = os.path.abspath(args.build)
    args.data = os.path.abspath(args.data)
    os.makedirs(args.data, exist_ok=True)
    os.makedirs(args.out, exist_ok=True)
    mach = machine()
    mach["filesystem"] = sh("df -T '%s' | awk 'NR==2 {print $2}'" % args.data)
    cold = can_drop_caches()
    only = set(w for w in args.only.split(",") if w)
    rows = []  # dicts: workload, size, system, variant, unit, median, runs, answer, note
    for workload, spec in FULL.items():
        if only and workload not in only:
            continue
        sizes = QUICK_SIZES[workload] if args.quick else spec["sizes"]
        if workload in ("import", "disk"):
            for n in sizes:
                rows.extend((import_rows if workload == "import" else disk_rows)(args, spec, n))
            continue
        for n in sizes:
            answers = {}
            for system, variant in spec["systems"]:
                exe = os.path.join(args.build, "bench_" + system)
                if not os.path.exists(exe):
                    rows.append(dict(group=workload, workload=workload, size=n, system=system,
                                     variant=variant, unit=spec["unit"], median=None, runs=0,
                                     answer="", note="not built (library missing)"))
                    continue
                data = os.path.join(args.data, "%s-%s-%s-%d" % (workload, system, variant, n))
                modes = (["warm", "cold"] if workload in ("open", "openscan") and cold
                         else ["warm"])
                timeout = 3600
                print("%s n=%d %s/%s ..." % (workload, n, system, variant), file=sys.stderr,
                      flush=True)
                try:
                    st, res = run_harness(exe, "prepare", workload, n, data, variant, timeout)
                    if st == "unsupported":
                        rows.append(dict(group=workload, workload=workload, size=n,
                                         system=system, variant=variant, unit=spec["unit"],
                                         median=None, runs=0, answer="",
                                         note="unsupported: " + res))
                        continue
                    for mode in modes:
                        if workload in ("open", "openscan"):  # one untimed run warms the cache
                            run_harness(exe, "run", workload, n, data, variant, timeout)
                        per_variant = {}
                        for _ in range(args.runs):
                            if mode == "cold":
                                drop_caches()
                            st, res = run_harness(exe, "run", workload, n, data, variant,
                                                  timeout)
                            for r in res:
                                key = r["variant"] if system == "mmstore" and workload in (
                                    "commit_size",) else variant
                                per_variant.setdefault((r["workload"], key), []).append(r)
                        for (w, v), rs in sorted(per_variant.items()):
                            unit = spec.get("units", {}).get(w, spec["unit"])
                            vals = [value(r, spec["per"], unit) for r in rs]
                            ans = rs[0]["answer"]
                            if any(r["answer"] != ans for r in rs):
                                ans = "differs between runs!"
                            name = v if mode == "warm" else v + " (cold)"
                            rows.append(dict(group=workload, workload=w, size=n,
                                             system=system, variant=name, unit=unit,
                                             median=statistics.median(vals), min=min(vals),
                                             max=max(vals), runs=len(vals), answer=ans,
                                             note=""))
                            if ans not in ("-", ""):
                                answers.setdefault(ans, []).append(system + "/" + name)
                except (RuntimeError, subprocess.TimeoutExpired) as e:
                    rows.append(dict(group=workload, workload=workload, size=n, system=system,
                                     variant=variant, unit=spec["unit"], median=None, runs=0,
                                     answer="", note="failed: %s" % str(e)[:200]))
                finally:
                    shutil.rmtree(data, ignore_errors=True)
            if len(answers) > 1:
                for r in rows:
                    if r["group"] == workload and r["size"] == n and r["median"] is not None:
                        r["note"] = "ANSWERS DIFFER: " + "; ".join(
                            "%s: %s" % (a, ",".join(s)) for a, s in answers.items())
    write(args.out, mach, rows, args.quick, cold)


def csv_generate(path, mb):
    """A CSV file of about mb MB: an integer id, two strings, two floats, an
    integer (the shape of the 144 MB file issue 14 measured). The same bytes
    for the same size."""
    import random
    rnd = random.Random(14)
    cities = ["Berlin", "Paris", "Lisbon", "Oslo", "Rome", "Madrid", "Vienna", "Prague",
              "Dublin", "Athens"]
    size, i, want = 0, 0, mb * 1000000
    with open(path, "w") as f:
        f.write("id,name,city,price,qty,score\n")
        while size < want:
            line = "%d,user_%08x_%s,%s,%.2f,%d,%.6f\n" % (
                i, rnd.getrandbits(32), "x" * rnd.randint(0, 12), rnd.choice(cities),
                rnd.random() * 1000, rnd.randint(0, 10 ** 6), rnd.random())
            f.write(line)
            size += len(line)
            i += 1
    return i


def run_rss(cmd, cwd):
    """Run cmd; (seconds, peak RSS in MB of that process alone, stdout).
    Through /usr/bin/time when it is there: a child forked by Python starts
    with Python's peak RSS as its own (the kernel keeps the larger at exec),
    one forked by time(1) with time's few hundred KB."""
    timer = shutil.which("time") or ("/usr/bin/time" if os.path.exists("/usr/bin/time") else None)
    full = ([timer, "-f", "MMS_MAXRSS_KB %M"] + cmd) if timer else cmd
    t = datetime.datetime.now()
    p = subprocess.Popen(full, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = p.stdout.read()
    err = p.stderr.read().decode()
    _, status, ru = os.wait4(p.pid, 0)
    secs = (datetime.datetime.now() - t).total_seconds()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError("%s failed: %s" % (" ".join(cmd), err[-300:]))
    kb = [l.split()[1] for l in err.splitlines() if l.startswith("MMS_MAXRSS_KB ")]
    return secs, (float(kb[-1]) if kb else ru.ru_maxrss) / 1024.0, out.decode()


def disk_bytes(path):
    """Bytes allocated on disk (st_blocks) by the file or every file under path."""
    if os.path.isfile(path):
        return os.stat(path).st_blocks * 512
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            total += os.lstat(os.path.join(root, f)).st_blocks * 512
    return total


def disk_rows(args, spec, n):
    """Size on disk of a store of n records of 64 bytes, each system's store
    made by its harness ("prepare open"), closed, nothing else running."""
    rows = []
    for system, variant in spec["systems"]:
        exe = os.path.join(args.build, "bench_" + system)
        row = dict(group="disk", workload="disk", size=n, system=system, variant=variant,
                   unit="MB", median=None, runs=0, answer="", note="")
        data = os.path.join(args.data, "disk-%s-%s-%d" % (system, variant, n))
        print("disk n=%d %s/%s ..." % (n, system, variant), file=sys.stderr, flush=True)
        if not os.path.exists(exe):
            row["note"] = "not built (library missing)"
            rows.append(row)
            continue
        try:
            run_harness(exe, "prepare", "open", n, data, variant, 3600)
            mb = disk_bytes(data) / 1e6
            row.update(median=mb, min=mb, max=mb, runs=1,
                       note="live data %s MB" % num(n * 64 / 1e6))
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            row["note"] = "failed: %s" % str(e)[:200]
        finally:
            shutil.rmtree(data, ignore_errors=True)
        rows.append(row)
    return rows


def import_rows(args, spec, n):
    """Peak RSS and time of importing an n MB CSV file into a new store
    (`mms import`) and a new SQLite file (`sqlite3 FILE ".import --csv"`);
    the answer is the number of rows each holds after."""
    rows = []
    data = os.path.join(args.data, "import-%d" % n)
    shutil.rmtree(data, ignore_errors=True)
    os.makedirs(data)
    csv_path = os.path.join(data, "in.csv")
    nrows = csv_generate(csv_path, n)
    tools = {"mmstore": os.path.join(args.build, "mms"), "sqlite": shutil.which("sqlite3")}
    for system, variant in spec["systems"]:
        exe = tools[system]
        print("import n=%d MB %s ..." % (n, system), file=sys.stderr, flush=True)
        if not exe or not os.path.exists(exe):
            rows.append(dict(group="import", workload="import_rss", size=n, system=system,
                             variant=variant, unit="MB", median=None, runs=0, answer="",
                             note="not built / not installed"))
            continue
        rss, secs, answer, size = [], [], "", None
        try:
            for _ in range(args.runs):
                target = os.path.join(data, "out")
                shutil.rmtree(target, ignore_errors=True)
                if os.path.exists(target + ".db"):
                    os.remove(target + ".db")
                if system == "mmstore":
                    cmd = [exe, "import", target, "t", csv_path]
                else:
                    cmd = [exe, target + ".db", ".import --csv %s t" % csv_path]
                t, m, _ = run_rss(cmd, data)
                secs.append(t)
                rss.append(m)
                size = disk_bytes(target if system == "mmstore" else target + ".db") / 1e6
                if system == "mmstore":
                    out = subprocess.run([exe, "info", target], capture_output=True,
                                         text=True).stdout
                    answer = str(nrows) if ("%d" % nrows) in out.replace(",", "") else "?"
                else:
                    out = subprocess.run([exe, target + ".db", "SELECT count(*) FROM t"],
                                         capture_output=True, text=True).stdout.strip()
                    answer = out
        except RuntimeError as e:
            rows.append(dict(group="import", workload="import_rss", size=n, system=system,
                             variant=variant, unit="MB", median=None, runs=0, answer="",
                             note="failed: %s" % str(e)[:200]))
            continue
        for w, unit, vals in (("import_rss", "MB", rss), ("import_time", "s", secs)):
            rows.append(dict(group="import", workload=w, size=n, system=system,
                             variant=variant, unit=unit, median=statistics.median(vals),
                             min=min(vals), max=max(vals), runs=len(vals), answer=answer,
                             note=""))
        rows.append(dict(group="import", workload="import_disk", size=n, system=system,
                         variant=variant, unit="MB", median=size, min=size, max=size, runs=1,
                         answer=answer,
                         note="CSV file %s MB" % num(os.path.getsize(csv_path) / 1e6)))
    shutil.rmtree(data, ignore_errors=True)
    return rows


# ---------------------------------------------------------------------------
# Results a person reads: latest.md and the plots
#
# One section per question, each in one unit, with what its "size" means.
# mmstore is compared with each peer's matching variant: a durable peer with
# mmstore's durable figure, a peer that does not sync (LMDB MDB_NOSYNC,
# SQLite synchronous=OFF, the malloc'd array) with mmstore's NOSYNC figure
# where the workload has one; a cold-cache row with a cold-cache row.
# ---------------------------------------------------------------------------
SCALE_RATE = {"Mrec/s": 1.0}
UNIT_MD = {"ns": "ns", "us": "µs", "ms": "ms", "s": "s", "Mrec/s": "M records/s", "MB": "MB"}
UNIT_PLOT = {"ns": "ns", "us": "us", "ms": "ms", "s": "s", "Mrec/s": "M records/s", "MB": "MB"}
SYSTEM_NAME = {"mmstore": "mmstore", "lmdb": "LMDB", "sqlite": "SQLite",
               "pmemobj": "libpmemobj", "boost": "Boost.Interprocess",
               "array": "reference"}
MMSTORE_COLOUR = 0xd95f02
PEER_COLOUR = 0x7a8ca3


ARRAY_NAME = {"malloc": "malloc'd array", "flat": "flat file (fread)",
              "csv": "CSV file (parsed)", "glibc": "glibc malloc"}


def system_name(r):
    """The system of a row as a person names it (the "array" harness is
    several references: a malloc'd array, a flat file, a CSV file, malloc)."""
    if r["system"] == "array":
        return ARRAY_NAME.get(r["variant"].replace(" (cold)", ""), "array")
    return SYSTEM_NAME.get(r["system"], r["system"])


def count_text(n):
    """10000000 -> '10 M'."""
    for div, suffix in ((10 ** 9, "G"), (10 ** 6, "M"), (10 ** 3, "K")):
        if n >= div:
            return "%g %s" % (n / div, suffix)
    return "%d" % n


def records(n):
    return count_text(n) + " records"


def store_mb(n):
    return "%g GB" % (n / 1024) if n >= 1024 else "%g MB" % n


def rounds(n):
    return "%d rounds" % (n or 1000)


SECTIONS = [
    dict(key="open", title="Open + first answer", unit="ms", size="records in the store "
         "(64 bytes each)", sizefmt=records, lower=True,
         match=lambda r: r["workload"] == "open",
         what="A fresh process opens the store and reads one record. Warm: the files are in "
              "the page cache; cold: the caches were dropped before each run."),
    dict(key="openscan", title="Open + full scan", unit="ms", size="records in the store "
         "(64 bytes each)", sizefmt=records, lower=True,
         match=lambda r: r["workload"] == "openscan",
         what="A fresh process opens the store and sums one field of every record (the "
              "other cold case: the open measures the first answer). nordahead: "
              "MMS_NORDAHEAD / MDB_NORDAHEAD, no read-ahead on the table (on the open "
              "too); the default lets the kernel read around each fault. The store's "
              "header and catalog are read without read-ahead in both."),
    dict(key="import", title="CSV import: peak memory", unit="MB",
         size="MB of CSV", sizefmt=lambda n: "%d MB CSV" % n, lower=True,
         match=lambda r: r["workload"] == "import_rss",
         what="Peak resident memory (the process's maximum RSS, from time(1)) of importing a "
              "generated CSV file (6 columns: integers, floats, strings) into a new store "
              "with `mms import` and into a new SQLite file with the sqlite3 shell's "
              "`.import --csv`. It must not grow with the file."),
    dict(key="import_time", title="CSV import: time", unit="s",
         size="MB of CSV", sizefmt=lambda n: "%d MB CSV" % n, lower=True,
         match=lambda r: r["workload"] == "import_time",
         what="Wall time of the same imports (the store's commit and SQLite's are durable)."),
    dict(key="import_disk", title="CSV import: size on disk", unit="MB",
         size="MB of CSV", sizefmt=lambda n: "%d MB CSV" % n, lower=True,
         match=lambda r: r["workload"] == "import_disk", words=("smaller", "larger"),
         what="Bytes allocated on disk (st_blocks) by the store the import made: every file "
              "of the mmstore directory (regions, journal, lock file) against SQLite's "
              "database file."),
    dict(key="disk", title="Size on disk", unit="MB", size="records in the store "
         "(64 bytes each)", sizefmt=records, lower=True,
         match=lambda r: r["workload"] == "disk", words=("smaller", "larger"),
         what="Bytes allocated on disk (st_blocks, every file) by a store of n records of 64 "
              "bytes made by each system's harness and closed; the note gives the live "
              "data (n x 64 bytes)."),
    dict(key="get", title="Random get by position", unit="ns", size="records in the store",
         sizefmt=records, lower=True, match=lambda r: r["workload"] == "get",
         what="Time per get, 10^7 gets of pseudo-random records. By position: record i of "
              "mmstore's array (`mms_table_get`), key i of LMDB's B-tree (integer keys), rowid "
              "i of SQLite, element i of the array. It is not a lookup by an arbitrary key, "
              "which needs an index (not in mmstore yet)."),
    dict(key="scan", title="Scan of one field", unit="ns", size="records in the store",
         sizefmt=records, lower=True, match=lambda r: r["workload"] == "scan",
         what="Time per record to sum one 4-byte field over every record."),
    dict(key="load", title="Bulk load", unit="Mrec/s", size="records loaded", sizefmt=records,
         lower=False, match=lambda r: r["workload"] == "load",
         what="Millions of records inserted per second, all in one transaction, commit "
              "included. durable: the commit waits for the disk; nosync: it does not (the "
              "malloc'd array is compared with mmstore's nosync figure)."),
    dict(key="commit", title="Small commit", unit="us", size="records in the store",
         sizefmt=records, lower=True, match=lambda r: r["workload"] == "commit",
         what="Time per transaction that changes one 8-byte field of a random record and "
              "commits. Durable commits (mmstore, LMDB default, SQLite synchronous=FULL, "
              "libpmemobj) are compared with mmstore's durable figure; commits that do not "
              "wait for the disk (LMDB MDB_NOSYNC, SQLite synchronous=OFF) with mmstore's "
              "NOSYNC figure."),
    dict(key="alloc", title="Allocation", unit="ns", size="rounds of 1000 allocations and "
         "1000 frees", sizefmt=rounds, lower=True, match=lambda r: r["workload"] == "alloc",
         what="Time per allocation (and its free) of 16-256 bytes inside a transaction "
              "(Hoard's threadtest shape); glibc's malloc is the reference."),
    dict(key="commit_size", title="Commit cost against store size (mmstore)", unit="us",
         size="size of the store (every page read before the commits)", sizefmt=store_mb,
         lower=True, match=lambda r: r["workload"] in ("commit_empty", "commit_page"),
         what="Time per commit that changed nothing (empty) or one page (page), split into "
              "its steps: detect (asking the kernel which pages changed), journal, apply; "
              "total is the whole call."),
    dict(key="ipc_reader", title="Read transactions beside a writer (mmstore)", unit="ns",
         size="records in the store", sizefmt=records, lower=True,
         match=lambda r: r["workload"] == "ipc_reader",
         what="Time per read transaction (begin + end) while another process commits as "
              "fast as it can."),
    dict(key="ipc_visible", title="Commit to visible in another process (mmstore)",
         unit="us", size="records in the store", sizefmt=records, lower=True,
         match=lambda r: r["workload"] == "ipc_visible",
         what="From the commit call in one process to the moment another process, blocked in "
              "`mms_wait`, sees the new state."),
]


def convert(v, frm, to):
    if v is None or frm == to:
        return v
    if frm in SCALE_RATE or to in SCALE_RATE:
        raise ValueError("cannot convert %s to %s" % (frm, to))
    return v / SCALE[frm] * SCALE[to]


def num(v):
    """Three significant digits, never an exponent: 0.0855, 85.5, 2,152,000."""
    if v is None:
        return "–"
    if v == 0 or not math.isfinite(v):
        return "%g" % v
    decimals = max(0, 2 - int(math.floor(math.log10(abs(v)))))
    return "{:,.{}f}".format(v, decimals)


def is_cold(r):
    return r["variant"].endswith("(cold)")


def durability(r):
    """'nosync' for a variant that does not wait for the disk, else 'durable'."""
    v = r["variant"].replace(" (cold)", "")
    if v in ("nosync", "off") or r["system"] == "array":
        return "nosync"
    return "durable"


def mmstore_match(rows, r):
    """The mmstore row r is compared with, or None."""
    same = [m for m in rows if m["system"] == "mmstore" and m["workload"] == r["workload"]
            and m["size"] == r["size"] and m["median"] is not None and is_cold(m) == is_cold(r)]
    base = lambda x: x["variant"].replace(" (cold)", "")
    exact = [m for m in same if base(m) == base(r)]  # nordahead with nordahead
    want = [m for m in same if durability(m) == durability(r)]
    fallback = [m for m in same if durability(m) == "durable"]
    return (exact or want or fallback or [None])[0]


def speedup(rows, r, lower_is_better):
    """How many times faster mmstore is than row r (below 1: slower), and the
    mmstore variant it was compared with."""
    m = mmstore_match(rows, r)
    if r["system"] == "mmstore" or m is None or not r["median"] or not m["median"]:
        return None, None
    f = r["median"] / m["median"] if lower_is_better else m["median"] / r["median"]
    return f, m["variant"].replace(" (cold)", "")


def speedup_text(f, variant, words=("faster", "slower")):
    if f is None:
        return ""
    what = "same" if 1 / 1.02 < f < 1.02 else (
        "%s× %s" % (num(f), words[0]) if f > 1 else "%s× %s" % (num(1 / f), words[1]))
    return what if variant == "durable" else "%s (vs %s)" % (what, variant)


def read_csv(path):
    rows = []
    with open(path, newline="") as f:
        for c in csv.DictReader(f):
            val = lambda k: float(c[k]) if c.get(k) not in (None, "") else None
            rows.append(dict(group=c["workload"], workload=c["workload"], size=int(c["size"]),
                             system=c["system"], variant=c["variant"], unit=c["unit"],
                             median=val("median"), min=val("min"), max=val("max"),
                             runs=int(c["runs"] or 0), answer=c["answer"], note=c["note"]))
    return rows


def read_machine(md_path):
    """The machine table of an earlier latest.md, for --render."""
    mach = {}
    try:
        with open(md_path) as f:
            for line in f:
                parts = [p.strip() for p in line.strip().strip("|").split("|")]
                if len(parts) == 2 and parts[0] in ("date", "cpu", "memory", "kernel",
                                                    "filesystem", "compiler",
                                                    "cold-cache runs"):
                    mach[parts[0]] = parts[1]
    except OSError:
        pass
    return mach


def render(csv_path, out):
    rows = read_csv(csv_path)
    mach = read_machine(os.path.join(out, "latest.md"))
    quick = "quick" in os.path.abspath(out)
    cold = mach.get("cold-cache runs", "").startswith("yes")
    write_csv(out, rows)
    write_report(out, mach, rows, quick, cold)


def write(out, mach, rows, quick, cold):
    write_csv(out, rows)
    mach = dict(mach)
    mach["cold-cache runs"] = "yes (drop_caches)" if cold else "no (needs root)"
    write_report(out, mach, rows, quick, cold)


def write_csv(out, rows):
    """The measurements (an earlier CSV without min and max leaves them empty)."""
    with open(os.path.join(out, "latest.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["workload", "size", "system", "variant", "unit", "median", "min", "max",
                    "runs", "answer", "note"])
        for r in rows:
            g = lambda k: "" if r.get(k) is None else "%.6g" % r[k]
            w.writerow([r["workload"], r["size"], r["system"], r["variant"], r["unit"],
                        g("median"), g("min"), g("max"), r["runs"], r["answer"], r["note"]])


def section_table(sec, rows, all_rows):
    unit = sec["unit"]
    multi = len(set(r["workload"] for r in rows)) > 1
    lines = ["| %s | system | variant | median | spread (min–max) | runs | mmstore vs this | "
             "answer | note |" % "size", "|---|---|---|--:|--:|--:|---|---|---|"]
    for r in rows:
        med = convert(r["median"], r["unit"], unit)
        lo, hi = convert(r.get("min"), r["unit"], unit), convert(r.get("max"), r["unit"], unit)
        spread = "–" if lo is None or hi is None else "%s–%s" % (num(lo), num(hi))
        variant = r["variant"]
        if multi:
            variant = "%s: %s" % (r["workload"].split("_", 1)[-1], variant)
        m = mmstore_match(all_rows, r)
        answer = r["answer"]
        if m is not None and r is not m and answer and answer == m["answer"]:
            answer = "same"
        elif answer and len(answer) > 22:
            answer = answer[:20] + "…"
        f, against = speedup(all_rows, r, sec["lower"])
        name = system_name(r)
        if r["system"] == "mmstore":
            name = "**mmstore**"
        lines.append("| %s | %s | %s | %s | %s | %d | %s | %s | %s |" % (
            sec["sizefmt"](r["size"]), name, variant, num(med), spread, r["runs"],
            speedup_text(f, against, sec.get("words", ("faster", "slower"))), answer,
            r["note"]))
    return lines


def write_report(out, mach, rows, quick, cold):
    lines = ["# mmstore benchmarks%s" % (" (quick sizes)" if quick else ""), "",
             "Produced by `bench/run.py%s` (`make bench%s`). Every figure is the median of "
             "the runs counted, each run a fresh process; the spread is the fastest and the "
             "slowest run. \"mmstore vs this\" says how many times faster (or slower; for "
             "sizes on disk, smaller or larger) mmstore is than that row, compared with "
             "mmstore's matching variant: durable with durable, not synced (nosync, SQLite's "
             "OFF, the malloc'd array) with nosync, cold cache with cold cache. \"same\" "
             "in the answer column: that system computed the same answer as mmstore."
             % (" --quick" if quick else "", "-quick" if quick else ""), "",
             "| machine | |", "|---|---|"]
    for k in ("date", "cpu", "memory", "kernel", "filesystem", "compiler", "cold-cache runs"):
        lines.append("| %s | %s |" % (k, mach.get(k, "")))
    lines.append("")
    for f in os.listdir(out):  # plots of an earlier layout
        if f.endswith(".png"):
            os.remove(os.path.join(out, f))
    for sec in SECTIONS:
        srows = [r for r in rows if sec["match"](r)]
        if not srows:
            continue
        lines += ["## %s" % sec["title"], "",
                  "%s Unit: %s%s. Size: %s." % (
                      sec["what"], UNIT_MD[sec["unit"]],
                      " (lower is better)" if sec["lower"] else " (higher is better)",
                      sec["size"]), ""]
        lines += section_table(sec, srows, rows)
        for png in plots(out, sec, srows, rows):
            lines += ["", "![%s](%s)" % (sec["title"], os.path.basename(png))]
        lines.append("")
    with open(os.path.join(out, "latest.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


# ---------------------------------------------------------------------------
# Plots: one per question, horizontal bars on a linear axis from zero (so a
# bar's length shows the ratio), mmstore in its own colour, every bar
# labelled with its system and value.
# ---------------------------------------------------------------------------
def plots(out, sec, srows, all_rows):
    pts = [r for r in srows if r["median"] is not None]
    if not pts:
        return []
    big = max(r["size"] for r in pts)
    size = sec["sizefmt"](big)
    charts = []  # (name, title, rows)
    if sec["key"] in ("open", "openscan"):
        for cold_cache in (False, True):
            rs = [r for r in pts if r["size"] == big and is_cold(r) == cold_cache]
            charts.append(("%s-%s" % (sec["key"], "cold" if cold_cache else "warm"),
                           "%s, %s, cache %s" % (sec["title"],
                               size, "cold" if cold_cache else "warm"), rs))
    elif sec["key"] == "commit":
        for d, what in (("durable", "durable"), ("nosync", "not synced")):
            rs = [r for r in pts if r["size"] == big and durability(r) == d]
            charts.append(("commit-%s" % d, "Small commit, %s, %s" % (what, size), rs))
    elif sec["key"] == "commit_size":
        rs = [r for r in pts if r["workload"] == "commit_page" and r["variant"] == "total"]
        charts.append(("commit-size", "One-page commit against store size (mmstore)", rs))
    elif sec["key"] in ("get", "scan", "load", "alloc"):
        rs = [r for r in pts if r["size"] == big]
        charts.append((sec["key"], "%s, %s" % (sec["title"], size), rs))
    made = []
    for name, title, rs in charts:
        if len(rs) < 2:
            continue
        bars = []
        for r in rs:
            v = convert(r["median"], r["unit"], sec["unit"])
            if sec["key"] == "commit_size":
                label = store_mb(r["size"])
            else:
                label = system_name(r)
                variant = r["variant"].replace(" (cold)", "")
                if r["system"] != "array" and variant not in ("durable", "default", "wal",
                                                                "tx", "append", "vector",
                                                                "managed"):
                    label += " " + variant
            f, _ = speedup(all_rows, r, sec["lower"])
            text = "%s %s" % (num(v), UNIT_PLOT[sec["unit"]])
            if f is not None:
                text += ("  (mmstore %sx faster)" % num(f) if f >= 1.02 else
                         "  (mmstore %sx slower)" % num(1 / f) if f <= 1 / 1.02 else
                         "  (same as mmstore)")
            bars.append((label, v, r["system"] == "mmstore", text))
        png = bar_chart(os.path.join(out, name + ".png"), title,
                        "%s (%s is better)" % (UNIT_PLOT[sec["unit"]],
                                               "lower" if sec["lower"] else "higher"), bars)
        if png:
            made.append(png)
    return made


def bar_chart(png, title, xlabel, bars):
    """Horizontal bars from zero. A bar more than 40 times the shortest is
    cut at the edge of the axis and its label says so, so that the others
    stay readable and every visible length still shows the ratio."""
    if not shutil.which("gnuplot"):
        return None
    vals = [b[1] for b in bars]
    lo = min(v for v in vals if v > 0) if any(v > 0 for v in vals) else 1
    shown = [v for v in vals if v <= 40 * lo]
    edge = max(shown) * 1.05
    dat = png[:-4] + ".dat"
    with open(dat, "w") as f:
        for i, (label, v, mine, text) in enumerate(reversed(bars)):
            cut = v > edge
            f.write('%d "%s" %g %d "%s"\n' % (
                i, label.replace('"', ""), min(v, edge),
                MMSTORE_COLOUR if mine else PEER_COLOUR,
                (text + "  (bar cut)" if cut else text).replace('"', "")))
    script = """set terminal png size 1000,%d noenhanced font ",11"
set output '%s'
set title '%s'
set style fill solid 0.85 noborder
set xrange [0:%g]
set yrange [-0.6:%g]
set grid xtics
set ytics nomirror scale 0
set xtics nomirror
unset key
set xlabel '%s'
plot '%s' using (column(3)/2):1:(0):(column(3)):($1-0.35):($1+0.35):(column(4)):ytic(2) \\
       with boxxyerror lc rgb variable, \\
     '' using (column(3)):1:(column(5)) with labels left offset 0.6,0
""" % (110 + 42 * len(bars), png, title.replace("'", ""), edge * 1.75, len(bars) - 0.4,
       xlabel, dat)
    p = subprocess.run(["gnuplot"], input=script, text=True, capture_output=True)
    os.remove(dat)
    if p.returncode != 0:
        print("gnuplot failed for %s: %s" % (png, p.stderr.strip()[-300:]), file=sys.stderr)
    return png if os.path.exists(png) else None


if __name__ == "__main__":
    main()
