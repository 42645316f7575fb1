#!/usr/bin/env python3
"""test_bench_report.py SRC -- bench/run.py's report (latest.md and the plots),
rendered from a small CSV without running any benchmark (issue 15, item 9):

 - a peer that does not sync is compared with mmstore's NOSYNC figure, a
   durable one with the durable figure, cold with cold;
 - the spread (min-max) is shown; no number has an exponent;
 - one unit per section, said in its text, with what its size means;
 - sizes read as records or MB/GB, never n=4096;
 - one plot per question (when gnuplot is there), none with 30 bars;
 - the committed bench/results/latest.csv renders.
"""
import os
import re
import shutil
import sys
import tempfile

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
src = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                      os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(src, "bench"))
import run  # noqa: E402

CSV = """workload,size,system,variant,unit,median,min,max,runs,answer,note
open,10000000,mmstore,durable,us,85.459,80.1,90.2,5,42,
open,10000000,mmstore,durable (cold),us,5908.96,5000,6100,5,42,
open,10000000,lmdb,default,us,47.996,45,50,5,42,
open,10000000,lmdb,default (cold),us,10950.2,10000,12000,5,42,
open,10000000,array,csv,us,2151710,2100000,2200000,5,42,
get,10000000,mmstore,durable,ns,33.0415,32,35,5,7,
get,10000000,lmdb,default,ns,1241.83,1200,1300,5,7,
commit,100000,mmstore,durable,us,142.589,130,150,5,9,
commit,100000,mmstore,nosync,us,9.53164,9,10,5,9,
commit,100000,lmdb,default,us,283.589,280,290,5,9,
commit,100000,lmdb,nosync,us,2.81625,2.7,2.9,5,9,
commit,100000,sqlite,off,us,6.27724,6,7,5,9,
load,10000000,mmstore,durable,Mrec/s,11.7091,11,12,5,3,
load,10000000,mmstore,nosync,Mrec/s,17.5197,17,18,5,3,
load,10000000,array,malloc,Mrec/s,17.4184,17,18,5,3,
load,10000000,lmdb,append,Mrec/s,3.55987,3.5,3.6,5,3,
commit_page,1,mmstore,total,us,123.875,120,130,5,-,
commit_page,4096,mmstore,total,us,481.051,470,490,5,-,
commit_page,4096,mmstore,detect,us,242.483,240,250,5,-,
ipc_reader,100000,mmstore,durable,ns,58.8504,55,60,5,-,
ipc_visible,100000,mmstore,durable,us,157.478,150,160,5,-,
"""


def row(md, system, variant, size=None):
    for line in md.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 9 and cells[1].strip("*") == system and cells[2] == variant and (
                size is None or cells[0] == size):
            return cells
    raise AssertionError("no row %s %s in\n%s" % (system, variant, md))


def main():
    out = tempfile.mkdtemp()
    try:
        with open(os.path.join(out, "in.csv"), "w") as f:
            f.write(CSV)
        run.render(os.path.join(out, "in.csv"), out)
        md = open(os.path.join(out, "latest.md")).read()
        # Matched variants: LMDB nosync 2.82 us against mmstore nosync 9.53 us.
        r = row(md, "LMDB", "nosync")
        assert r[6] == "3.38× slower (vs nosync)", r
        assert row(md, "LMDB", "default", "100 K records")[6] == "1.99× faster", md
        assert row(md, "SQLite", "off")[6] == "1.52× slower (vs nosync)"
        assert row(md, "malloc'd array", "malloc")[6] == "same (vs nosync)"
        assert row(md, "LMDB", "append")[6] == "3.29× faster"  # a rate: higher is better
        assert row(md, "LMDB", "default (cold)")[6] == "1.85× faster"  # cold with cold
        # Spread, numbers without exponents, answers.
        r = row(md, "mmstore", "durable", "10 M records")
        assert r[4] == "0.0801–0.0902", r  # open in ms
        assert row(md, "CSV file (parsed)", "csv")[3] == "2,152"
        assert not re.search(r"\d[eE][+-]?\d", md), re.search(r".*\d[eE][+-]?\d.*", md).group(0)
        assert row(md, "LMDB", "default", "10 M records")[7] == "same"
        # One unit per section, and what size means.
        sections = md.split("\n## ")[1:]
        assert len(sections) == 7, [s.splitlines()[0] for s in sections]
        for s in sections:
            units = re.findall(r"Unit: ([^ ]+)", s)
            assert len(units) == 1, s
            assert "Size: " in s, s
        assert "Unit: ms" in md.split("\n## Random get")[0]
        assert "not a lookup by an arbitrary key" in md
        assert "n=" not in md
        assert "| 4 GB |" in md and "| 1 MB |" in md
        # One plot per question.
        if shutil.which("gnuplot"):
            pngs = sorted(f for f in os.listdir(out) if f.endswith(".png"))
            assert pngs == ["commit-durable.png", "commit-nosync.png", "commit-size.png",
                            "get.png", "load.png", "open-cold.png", "open-warm.png"], pngs
        else:
            print("   gnuplot is not installed: plots not checked")
        # The committed results render.
        committed = os.path.join(out, "committed")
        os.mkdir(committed)
        shutil.copy(os.path.join(src, "bench", "results", "latest.csv"), committed)
        shutil.copy(os.path.join(src, "bench", "results", "latest.md"), committed)
        run.render(os.path.join(committed, "latest.csv"), committed)
        md = open(os.path.join(committed, "latest.md")).read()
        assert "## Small commit" in md and "2026-" in md
    finally:
        shutil.rmtree(out)


if __name__ == "__main__":
    import contextlib
    import io
    with contextlib.redirect_stdout(io.StringIO()):  # render() prints the report
        main()
    print("bench report ok")
