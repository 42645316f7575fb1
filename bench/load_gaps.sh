#!/bin/sh
# bench/load_gaps.sh BUILD DATA [NRECORDS] -- what `mms load` pays for a
# dump with holes (deleted records: appended as zeros, then deleted one
# mms_table_delete each, tools/mms_dumpall.c). Two stores of NRECORDS
# (default 1000000) 16-byte records: every other one deleted ("odd": as
# many runs as slots), and runs of 1000 deleted every 2000 ("runs"). Each
# is dumped with `mms dump --all` and loaded three times (wall seconds);
# the loaded store must verify and reuse the slots the original reuses.
# Needs the Python binding (BUILD/python) and numpy.
set -e
B=${1:?build dir}; D=${2:?data dir}; N=${3:-1000000}
MMS=$B/mms
export PYTHONPATH=$B/python
rm -rf "$D"; mkdir -p "$D"
for p in odd runs; do
    /usr/bin/python3 - "$D/$p.mms" $p $N <<'PY'
import sys, numpy as np, mmstore
path, pattern, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = mmstore.open(path, create=True)
with s.write():
    t = s.create_table("t", [("id", "i64"), ("x", "f64")])
    t.extend({"id": np.arange(n), "x": np.arange(n) * 0.5})
with s.write():
    for i in range(n):
        if (i % 2 if pattern == "odd" else (i // 1000) % 2) == 1:
            t.delete(i)
s.close()
PY
    "$MMS" dump "$D/$p.mms" --all "$D/$p.jsonl" >/dev/null
    for k in 1 2 3; do
        rm -rf "$D/${p}_l.mms"
        a=$(date +%s.%N)
        "$MMS" load "$D/$p.jsonl" "$D/${p}_l.mms" >/dev/null
        awk -v a="$a" -v b="$(date +%s.%N)" -v p=$p 'BEGIN { printf "%s: load %.2f s\n", p, b - a }'
    done
    "$MMS" verify "$D/${p}_l.mms" >/dev/null
    /usr/bin/python3 - "$D/$p.mms" "$D/${p}_l.mms" <<'PY'
import sys, mmstore
got = []
for path in sys.argv[1:]:
    s = mmstore.open(path)
    t = s.table("t")
    with s.write():
        got.append([t.append({"id": -1}) for _ in range(3)])
    s.close()
assert got[0] == got[1], got
print("   verified; appends reuse slots %s in both" % got[0])
PY
done
