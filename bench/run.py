#!/usr/bin/env python3
"""Run the benchmarks (bench/README.md) and write bench/results/.

    bench/run.py [--quick] [--runs N] [--build DIR] [--data DIR] [--only WORKLOAD,...]

Every (workload, size, system, variant) runs --runs times (default 5; 1 with
--quick, which only checks the harness), each in a fresh process; the median is
reported. Answers are compared
across systems. Writes latest.md, latest.csv and one PNG per workload
(gnuplot). Standard library only (Debian's python3).
"""
import argparse
import csv
import datetime
import json
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
             "systems": [("mmstore", "durable"), ("lmdb", "default"), ("sqlite", "wal"),
                         ("array", "flat"), ("array", "csv")]},
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
QUICK_SIZES = {"open": [10000, 100000], "get": [100000], "scan": [100000], "load": [100000],
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
    args = ap.parse_args()
    if args.runs <= 0:
        args.runs = 1 if args.quick else 5
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
                modes = ["warm", "cold"] if workload == "open" and cold else ["warm"]
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
                        if workload == "open":  # one untimed run warms the cache
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
                                             median=statistics.median(vals), runs=len(vals),
                                             answer=ans, note=""))
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


def ratio_rows(rows):
    """mmstore's ratio to each other row of the same workload and size."""
    for r in rows:
        r["ratio"] = ""
        if r["median"] is None or r["system"] == "mmstore":
            continue
        base = [m for m in rows if m["workload"] == r["workload"] and m["size"] == r["size"]
                and m["system"] == "mmstore" and m["median"] is not None
                and m["variant"].startswith("durable")
                and m["variant"].endswith("(cold)") == r["variant"].endswith("(cold)")]
        if base:
            r["ratio"] = "%.2f" % (base[0]["median"] / r["median"]) if r["median"] else ""


def write(out, mach, rows, quick, cold):
    ratio_rows(rows)
    with open(os.path.join(out, "latest.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["workload", "size", "system", "variant", "unit", "median", "runs",
                    "mmstore_ratio", "answer", "note"])
        for r in rows:
            w.writerow([r["workload"], r["size"], r["system"], r["variant"], r["unit"],
                        "" if r["median"] is None else "%.6g" % r["median"], r["runs"],
                        r["ratio"], r["answer"], r["note"]])
    lines = ["# mmstore benchmarks%s" % (" (quick sizes)" if quick else ""), "",
             "Produced by `bench/run.py%s` (`make bench%s`); every number is the median of "
             "the runs shown, each run a fresh process. The ratio is mmstore's value "
             "(durable variant) divided by the row's value: for times below 1 means mmstore "
             "is faster, for rates (Mrec/s) above 1 means mmstore is faster."
             % (" --quick" if quick else "", "-quick" if quick else ""), "",
             "| machine | |", "|---|---|"]
    for k in ("date", "cpu", "memory", "kernel", "filesystem", "compiler"):
        lines.append("| %s | %s |" % (k, mach[k]))
    lines.append("| cold-cache runs | %s |" % ("yes (drop_caches)" if cold else
                                              "no (needs root)"))
    lines.append("")
    for workload in FULL:
        wrows = [r for r in rows if r["group"] == workload]
        if not wrows:
            continue
        lines += ["## %s" % workload, "", "| workload | size | system | variant | median | "
                  "runs | mmstore ratio | answer | note |", "|---|---|---|---|---|---|---|---|---|"]
        for r in wrows:
            med = "-" if r["median"] is None else "%.4g %s" % (r["median"], r["unit"])
            lines.append("| %s | %s | %s | %s | %s | %d | %s | %s | %s |" % (
                r["workload"], r["size"], r["system"], r["variant"], med, r["runs"], r["ratio"],
                r["answer"][:22], r["note"]))
        png = plot(out, workload, wrows)
        if png:
            lines += ["", "![%s](%s)" % (workload, os.path.basename(png))]
        lines.append("")
    with open(os.path.join(out, "latest.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


def plot(out, workload, rows):
    if not shutil.which("gnuplot"):
        return None
    pts = [r for r in rows if r["median"] is not None]
    if not pts:
        return None
    dat = os.path.join(out, workload + ".dat")
    with open(dat, "w") as f:
        for i, r in enumerate(pts):
            what = "" if r["workload"] == workload else r["workload"] + " "
            label = "%s%s/%s n=%s" % (what, r["system"], r["variant"], r["size"])
            f.write('%d "%s" %g\n' % (i, label.replace('"', ""), r["median"]))
    png = os.path.join(out, workload + ".png")
    unit = pts[0]["unit"]
    # Values that span more than 100x (open: microseconds to seconds; alloc:
    # nanoseconds to a libpmemobj's milliseconds) on a log axis, bars from
    # half the smallest value, so that every system stays visible.
    vals = [r["median"] for r in pts]
    logx = min(vals) > 0 and max(vals) / min(vals) > 100
    base = min(vals) / 2 if logx else 0
    script = """set terminal png size 1000,%d noenhanced
set output '%s'
set title '%s (median, %s%s)'
set style fill solid 0.6
set boxwidth 0.7
set grid xtics
set ytics nomirror
unset key
set xlabel '%s'
%s
plot '%s' using (column(3)):1:(%g):(column(3)):($1-0.35):($1+0.35):yticlabels(2) with boxxyerror
""" % (120 + 28 * len(pts), png, workload, unit, ", log scale" if logx else "", unit,
       "set logscale x" if logx else "", dat, base)
    subprocess.run(["gnuplot"], input=script, text=True, capture_output=True)
    os.remove(dat)
    return png if os.path.exists(png) else None


if __name__ == "__main__":
    main()
