#!/usr/bin/env python3
"""bench/ab.py -- one workload, several builds and peers, interleaved.

    bench/ab.py [--rounds R] [--keep] WORKLOAD N DIR ENTRY...

An ENTRY is LABEL=BINARY[:VARIANT][:warm][:drop][:store=NAME]: BINARY is a
bench harness (bench_mmstore, bench_lmdb, ... of some build, perhaps an older
one), run as `BINARY prepare WORKLOAD N DIR/STORE VARIANT` once (untimed) and
then `BINARY run WORKLOAD N DIR/STORE VARIANT` in each round, in a fresh
process; `warm` sets BENCH_WARM=1 for the run. Without `warm` a run is cold
in the harness's sense: the store's pages are in the page cache (the last
run left them there), none is yet mapped by the new process. `drop` (root
only) makes it cold after a page-cache drop: before each timed run, `sync`,
drop the caches (/proc/sys/vm/drop_caches) and run the entry once untimed,
so that the timed run finds the store as that build reads it back from the
disk (in which folios: the folio sizes the untimed run's faults made).
Entries with the same store=NAME share
one prepared store (the first of them prepares it): old and new builds of
mmstore measured on the very same files. Each round runs every entry once,
the order rotating by one each round, so that a machine that slows down or
speeds up weighs on all of them alike.

Prints each run as it ends, then a table of medians per operation (the
harness's seconds / ops) and the ratio of each to the first entry. This is
how the session notes compare a change with what was there before and with
the peer (README: performance claims are ratios from one run); nothing here
is a threshold.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys


def parse_entry(text):
    label, _, spec = text.partition("=")
    if not spec:
        sys.exit("ab.py: an entry is LABEL=BINARY[:VARIANT][:warm][:drop][:store=NAME], not %r"
                 % text)
    parts = spec.split(":")
    e = {"label": label, "binary": parts[0], "variant": "default", "warm": False, "drop": False,
         "store": label}
    for p in parts[1:]:
        if p == "warm":
            e["warm"] = True
        elif p == "drop":
            e["drop"] = True
        elif p.startswith("store="):
            e["store"] = p[len("store="):]
        elif p:
            e["variant"] = p
    if not os.access(e["binary"], os.X_OK):
        sys.exit("ab.py: %s: not an executable bench harness" % e["binary"])
    return e


def harness(e, phase, workload, n, path):
    env = dict(os.environ)
    env.pop("BENCH_WARM", None)
    if e["warm"] and phase == "run":
        env["BENCH_WARM"] = "1"
    cmd = [e["binary"], phase, workload, str(n), path, e["variant"]]
    p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        sys.exit("ab.py: %s failed (exit %d): %s" % (" ".join(cmd), p.returncode,
                                                      p.stderr.strip()[-500:]))
    return p.stdout


def drop_caches():
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
    except OSError as err:
        sys.exit("ab.py: drop: cannot drop the page cache (%s): needs root" % err)


def result(out, cmd_label):
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("{"):
            r = json.loads(line)
            if "seconds" in r and r.get("ops"):
                return r
    sys.exit("ab.py: %s printed no result line" % cmd_label)


def show(ns):
    return "%.1f us" % (ns / 1e3) if ns >= 1e4 else "%.1f ns" % ns


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--keep", action="store_true", help="keep the prepared stores")
    ap.add_argument("workload")
    ap.add_argument("n", type=int)
    ap.add_argument("dir")
    ap.add_argument("entries", nargs="+")
    a = ap.parse_args()
    if a.rounds < 1:
        sys.exit("ab.py: --rounds must be at least 1")
    entries = [parse_entry(t) for t in a.entries]
    os.makedirs(a.dir, exist_ok=True)
    prepared = set()
    for e in entries:
        path = os.path.join(a.dir, e["store"])
        if e["store"] in prepared:
            continue
        shutil.rmtree(path, ignore_errors=True)
        os.makedirs(path)
        harness(e, "prepare", a.workload, a.n, path)
        prepared.add(e["store"])
    per_op = {e["label"]: [] for e in entries}
    answers = {}
    for rnd in range(a.rounds):
        k = rnd % len(entries)
        for e in entries[k:] + entries[:k]:
            path = os.path.join(a.dir, e["store"])
            if e["drop"]:
                drop_caches()
                harness(e, "run", a.workload, a.n, path)
            r = result(harness(e, "run", a.workload, a.n, path), e["label"])
            ns = r["seconds"] / r["ops"] * 1e9
            per_op[e["label"]].append(ns)
            answers.setdefault(e["label"], r.get("answer", ""))
            print("round %d  %-24s %12s  (%s)" % (rnd + 1, e["label"], show(ns), r.get("answer", "")),
                  flush=True)
    first = statistics.median(per_op[entries[0]["label"]])
    print()
    print("%s, N=%d, %d rounds: median a operation (runs); ratio to %s"
          % (a.workload, a.n, a.rounds, entries[0]["label"]))
    print()
    print("| entry | median | runs | / %s |" % entries[0]["label"])
    print("|---|--:|---|--:|")
    for e in entries:
        v = per_op[e["label"]]
        m = statistics.median(v)
        print("| %s | %s | %s | %.2f |" % (e["label"], show(m), ", ".join(show(x) for x in v),
                                          m / first if first else float("nan")))
    if not a.keep:
        for name in prepared:
            shutil.rmtree(os.path.join(a.dir, name), ignore_errors=True)


if __name__ == "__main__":
    main()
