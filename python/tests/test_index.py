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


def test_keys_are_checked_like_appended_values(path, mms_tool):
    # Keys went through numpy.asarray(key, field dtype), which wraps
    # out-of-range ints (find("b", 300) found the records holding 44),
    # truncates floats and chars (find("b", 1.5) found 1) and parses str
    # ('1' found 1, 'yes' found True). A key is now converted as append
    # converts a value: a wrong type or a value the field cannot hold raises,
    # naming the field.
    s = mmstore.open(path, create=True)
    with s.write():
        t = s.create_table("t", [("b", "i8"), ("u", "u16"), ("x", "f32"), ("ok", "bool"),
                                 ("c", "chars", 4), ("s", "str")])
        t.extend({"b": [1, 44, -1], "u": [1, 2, 65535], "x": [1.0, float("inf"), 0.0],
                  "ok": [True, False, True], "c": [b"abcd", b"a", "é".encode()],
                  "s": ["x", "y", "z"]})
    s.close()
    for f in ("b", "u", "x", "ok", "c"):
        subprocess.run([mms_tool, "index", path, "t", f, "--ordered"], check=True,
                       capture_output=True)
    s = mmstore.open(path)
    t = s.table("t")
    with s.read():
        for f, key in (("b", 300), ("b", -129), ("u", -1), ("u", 65536), ("x", 1e300),
                       ("ok", 2), ("c", b"abcde")):
            with pytest.raises(ValueError, match=f"field {f}"):
                t.find(f, key)
        for f, key in (("b", 1.5), ("b", "1"), ("b", None), ("ok", "yes"), ("x", "1"),
                       ("c", 4)):
            with pytest.raises(TypeError, match=f"field {f}"):
                t.find(f, key)
        with pytest.raises(ValueError, match="field b"):
            t.range("b", 0, 1000)
        with pytest.raises(TypeError, match="field b"):
            t.range("b", 0.5, None)
        # what fits is found as before; chars take str as UTF-8
        assert t.find("b", np.int64(44)).tolist() == [1]
        assert t.find("ok", True).tolist() == [0, 2] and t.find("ok", 0).tolist() == [1]
        assert t.find("x", 1).tolist() == [0] and t.find("x", float("inf")).tolist() == [1]
        assert t.find("c", "é").tolist() == [2] and t.find("c", b"abcd").tolist() == [0]
        assert t.range("u", 2, None).tolist() == [1, 2]
        # a field without an index says so before looking at the key
        with pytest.raises(mmstore.Error, match="s"):
            t.find("s", "x")
    s.close()


@pytest.mark.parametrize("ordered", [False, True])
def test_missing_keys_are_not_found(path, mms_tool, ordered):
    # A missing value (None) was indexed as its zero bytes: find("k", 0)
    # gave the records whose k is missing, range() gave them among the
    # zeros, and a unique index refused the second append of None. A record
    # whose key is missing is in no index now, as in the C API.
    s = mmstore.open(path, create=True)
    with s.write():
        t = s.create_table("t", [("k", "i64"), ("x", "f64")])
        t.append({"k": 0, "x": 1.0})
        t.append({"k": 5, "x": 2.0})
    s.close()
    cmd = [mms_tool, "index", path, "t", "k", "--unique"] + (["--ordered"] if ordered else [])
    subprocess.run(cmd, check=True, capture_output=True)
    s = mmstore.open(path)
    t = s.table("t")
    with s.write():
        t.append({"k": None, "x": 3.0})
        t.append({"k": None, "x": 4.0})  # any number of missing keys
    with s.read():
        assert t.find("k", 0).tolist() == [0]
        assert sorted(t.find("k", 5).tolist()) == [1]
        if ordered:
            assert t.range("k", None, None).tolist() == [0, 1]
            assert t.range("k", 0, 1).tolist() == [0]
    s.close()
    # the tool answers alike through the index
    out = subprocess.run([mms_tool, "get", path, "t", "k", "0"], check=True,
                         capture_output=True, text=True).stdout
    assert out.splitlines() == ["k,x", "0,1"]
