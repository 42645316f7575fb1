"""Found by an outside-in QA round of the binding (session 14): each test
failed before its fix."""
import tracemalloc

import numpy as np
import pytest

import mmstore


def test_to_pandas_copies_each_column_once(path):
    # The columns to_pandas builds are copies of its own; pandas.DataFrame
    # copied them all again (its default for a dict), so a frame of a large
    # table needed twice its size for a moment (10^7 records of 3 fields:
    # 549 MB peak for a 210 MB frame) and a second more.
    pd = pytest.importorskip("pandas")
    n = 10**6
    s = mmstore.open(path, create=True)
    with s.write():
        t = s.create_table("t", [("x", "f64"), ("y", "f64")])
        t.extend({"x": np.arange(n, dtype=float), "y": np.ones(n)})
    pd.DataFrame({"a": np.zeros(3)})            # pandas' own first-use allocations
    tracemalloc.start()
    try:
        df = t.to_pandas()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    frame = df.memory_usage(index=True).sum()   # x, y and the index: 24 MB
    assert peak < frame * 1.25, (peak, frame)   # + the live mask (1 MB): not twice
    assert (df["x"].to_numpy() == np.arange(n)).all() and df["y"].sum() == n
    # Still a copy: the frame does not change with the table.
    with s.write():
        t.array(writable=True)["x"][0] = 7.0
    assert df["x"][0] == 0.0 and t.get(0)["x"] == 7.0
    s.close()
