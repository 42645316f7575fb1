"""mmstore_dask while writers commit to the shards (QA, session 14): a
chunk taken with copy=True, and a dataframe partition, is one committed
state of its store; nothing faults or fails. Each writer rewrites its whole
table in every commit (all of x the same value), so a chunk that mixes two
commits shows two values."""
import subprocess
import sys

import numpy as np
import pytest

import mmstore
from conftest import child_env

dask = pytest.importorskip("dask")
pd = pytest.importorskip("pandas")
import mmstore_dask as md  # noqa: E402 (needs dask)

N = 200000
WRITER = """
import sys, numpy as np, mmstore
s = mmstore.open(sys.argv[1]); t = s.table("p")
print("go", flush=True)
k = 0
while True:                      # until killed
    k += 1
    with s.write():
        t.array(writable=True)["x"][:] = k
"""


def test_copies_and_frames_are_one_commit_each_while_writers_run(tmp_path):
    paths = []
    for k in range(2):
        p = str(tmp_path / ("w%d.mms" % k))
        with mmstore.open(p, create=True) as s, s.write():
            s.create_table("p", [("x", "f64"), ("n", "i32")]).extend(
                {"x": np.zeros(N), "n": np.arange(N, dtype=np.int32)})
        paths.append(p)
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, p], stdout=subprocess.PIPE,
                                text=True, env=child_env())
               for p in paths]
    try:
        for w in writers:
            assert w.stdout.readline() == "go\n"
        for _ in range(3):
            x = md.array(paths, "p", "x", copy=True)
            for chunk in dask.compute(*x.to_delayed().ravel(), scheduler="threads"):
                assert len(chunk) == N and np.unique(chunk).size == 1
            df = md.dataframe(paths, "p", store_column="shard").compute(scheduler="threads")
            assert (df.groupby("shard").x.nunique() == 1).all() and len(df) == 2 * N
    finally:
        for w in writers:
            w.kill()
            w.wait()
    for p in paths:
        with mmstore.open(p) as s:
            assert s.verify() is None
