"""Table.find and Table.range: record indices through an index of a field
(made with the mms tool: the binding does not create indexes yet)."""
import subprocess

import numpy as np
import pytest

import mmstore


def make(path, mms_tool, ordered):
    s = mmstore.open(path, create=True)
    with s.write():
        t = s.create_table("t", [("k", "i64"), ("x", "f64"), ("name", "chars", 4)])
        t.extend({"k": [5, -3, 5, 100, 7, -3, 0],
                  "x": [1.0, float("nan"), -0.0, 2.5, float("inf"), 0.0, -1.0],
                  "name": [b"b", b"ab", b"abc", b"a", b"b", b"zz", b""]})
    s.close()
    for f in ("k", "x", "name"):
        cmd = [mms_tool, "index", path, "t", f] + (["--ordered"] if ordered else [])
        subprocess.run(cmd, check=True, capture_output=True)
    s = mmstore.open(path)
    return s, s.table("t")


@pytest.mark.parametrize("ordered", [False, True])
def test_find(path, mms_tool, ordered):
    s, t = make(path, mms_tool, ordered)
    with s.read():
        got = t.find("k", 5)
        assert got.dtype == np.int64
        assert sorted(got.tolist()) == [0, 2]
        assert sorted(t.find("k", -3).tolist()) == [1, 5]
        assert t.find("k", 42).tolist() == []
        assert sorted(t.find("x", 0.0).tolist()) == [2, 5]  # -0.0 == +0.0
        assert t.find("x", float("nan")).tolist() == [1]
        assert sorted(t.find("name", b"b").tolist()) == [0, 4]
    s.close()


def test_range(path, mms_tool):
    s, t = make(path, mms_tool, True)
    with s.read():
        r = t.range("k", -3, 6)
        assert r.dtype == np.int64
        assert r.tolist() == [1, 5, 6, 0, 2]  # key order, then record order
        assert t.range("k", None, 0).tolist() == [1, 5]
        assert t.range("k", 7, None).tolist() == [4, 3]
        assert t.range("k", 8, 9).tolist() == []
        # NaN after +inf
        assert t.range("x", 2.0, None).tolist() == [3, 4, 1]
        assert t.range("name", b"a", b"b").tolist() == [3, 1, 2]
    s.close()


def test_no_index(path, mms_tool):
    s, t = make(path, mms_tool, False)
    with s.read():
        with pytest.raises(mmstore.Error):
            t.range("k", 0, 1)  # a hash index has no order
    s.close()
