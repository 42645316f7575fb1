"""mmstore_dask: shards (one store each) as one dask array or data frame
(DESIGN.md section 8)."""
import numpy as np
import pytest

import mmstore

dask = pytest.importorskip("dask")
pd = pytest.importorskip("pandas")
import mmstore_dask as md  # noqa: E402 (needs dask)

SPEC = [("x", "f64"), ("n", "i32"), ("tag", "str"), ("c", "chars", 4), ("b", "bool")]


def shard(path, k, n, spec=SPEC):
    """A store whose table p has n records; x = 10 k + i."""
    with mmstore.open(path, create=True) as s:
        with s.write():
            t = s.create_table("p", spec)
            cols = {"x": np.arange(n) + 10.0 * k, "n": np.arange(n, dtype=np.int32),
                    "tag": ["s%d-%d" % (k, i) for i in range(n)], "c": [b"ab"] * n,
                    "b": [i % 2 == 0 for i in range(n)]}
            t.extend({f[0]: cols[f[0]] for f in spec})
    return path


@pytest.fixture
def shards(tmp_path):
    return [shard(str(tmp_path / ("s%d.mms" % k)), k, 4 + k) for k in range(3)]


def test_array_is_the_shards_in_order(shards):
    x = md.array(shards, "p", "x")
    assert x.shape == (15,) and x.dtype == np.float64
    assert x.chunks == ((4, 5, 6),)
    want = np.concatenate([np.arange(4 + k) + 10.0 * k for k in range(3)])
    assert (x.compute(scheduler="sync") == want).all()
    assert float(x.sum().compute(scheduler="threads")) == want.sum()
    n = md.array(shards, "p", "n")
    assert n.dtype == np.int32 and n.compute().tolist() == [0, 1, 2, 3] + list(range(5)) + list(range(6))


def test_array_chunks_are_views_unless_copied(shards):
    # A chunk is the mapped file itself: not a copy (owndata False, a base
    # that is mmstore's view), unless copy=True.
    v = md._chunk(shards[1], "p", "x", md._survey(shards, "p")[0], np.dtype(np.float64), 5,
                  False)
    assert not v.flags.owndata and not v.flags.writeable
    assert v.tolist() == [10.0, 11.0, 12.0, 13.0, 14.0]
    c = md._chunk(shards[1], "p", "x", md._survey(shards, "p")[0], np.dtype(np.float64), 5,
                  True)
    assert c.flags.owndata and c.tolist() == v.tolist()
    assert (md.array(shards, "p", "x", copy=True).compute() ==
            md.array(shards, "p", "x").compute()).all()


def test_whole_records(shards):
    r = md.array(shards, "p").compute()
    assert r.dtype.names == ("x", "n", "tag", "c", "b")
    assert r["x"].tolist()[4:6] == [10.0, 11.0]
    assert r["c"].tolist() == [b"ab"] * 15


def test_live_and_deleted_slots(shards):
    with mmstore.open(shards[2]) as s:
        with s.write():
            s.table("p").delete(0)
            s.table("p").delete(3)
    live = md.live(shards, "p")
    assert live.chunks == ((4, 5, 6),)
    m = live.compute()
    assert m.tolist() == [True] * 9 + [False, True, True, False, True, True]
    x = md.array(shards, "p", "x")
    assert x[live].compute().tolist()[-4:] == [21.0, 22.0, 24.0, 25.0]


def test_dataframe(shards):
    with mmstore.open(shards[0]) as s:
        with s.write():
            s.table("p").delete(1)
    df = md.dataframe(shards, "p", store_column="shard")
    assert df.npartitions == 3
    assert dict(df.dtypes.astype(str)) == {"x": "float64", "n": "int32", "tag": "object",
                                           "c": "object", "b": "bool", "shard": "int64"}
    got = df.compute()
    assert len(got) == 3 + 5 + 6
    assert got["tag"].tolist()[:3] == ["s0-0", "s0-2", "s0-3"]
    assert got.index.tolist()[:4] == [0, 2, 3, 0]  # record index in its own store
    assert df.groupby("shard").x.mean().compute().tolist() == [
        np.mean([0.0, 2.0, 3.0]), 12.0, 22.5]
    sub = md.dataframe(shards, "p", columns=["tag", "x"]).compute()
    assert list(sub.columns) == ["tag", "x"] and len(sub) == 14


def test_dataframe_dtypes_do_not_depend_on_the_partition(tmp_path, mms_tool):
    # A shard with a missing integer (an empty CSV cell) and one without:
    # to_pandas gives Int32 for one and int32 for the other; the dask frame
    # gives the nullable dtype for both.
    import subprocess
    paths = []
    for k, body in enumerate(["n,x\n3,3.5\n", "n,x\n1,1.5\n,2.5\n"]):
        csv = tmp_path / ("d%d.csv" % k)
        csv.write_text(body)
        p = str(tmp_path / ("m%d.mms" % k))
        subprocess.run([mms_tool, "import", p, "t", str(csv), "--schema", "n:i32,x:f64"],
                       check=True, capture_output=True)
        paths.append(p)
    df = md.dataframe(paths, "t")
    assert str(df.dtypes["n"]) == "Int32"
    got = df.compute()
    assert str(got["n"].dtype) == "Int32"
    assert got["n"].isna().tolist() == [False, False, True]
    assert got["x"].tolist() == [3.5, 1.5, 2.5]
    # Without the shard that misses a value: plain int32. A value that goes
    # missing before the computation is refused, naming the store.
    df = md.dataframe(paths[:1], "t")
    assert str(df.dtypes["n"]) == "int32"
    with mmstore.open(paths[0]) as s:
        with s.write():
            s.table("t").append({"n": None, "x": 4.5})
    with pytest.raises(ValueError, match="m0.mms.*missing values"):
        df.compute(scheduler="sync")


def test_other_processes_open_by_path(shards):
    # The processes scheduler pickles each task: it carries the path, and the
    # worker process opens the store itself. One pool of new interpreters
    # (spawned, as dask's own are) for both computations: starting one is
    # most of this test's time.
    import concurrent.futures
    import multiprocessing
    with concurrent.futures.ProcessPoolExecutor(
            2, mp_context=multiprocessing.get_context("spawn")) as pool:
        x = md.array(shards, "p", "x")
        assert float(x.sum().compute(scheduler="processes", pool=pool)) == float(
            x.sum().compute(scheduler="sync"))
        df = md.dataframe(shards, "p")
        assert len(df.compute(scheduler="processes", pool=pool)) == 15


def test_bad_arguments(shards, tmp_path):
    with pytest.raises(TypeError):
        md.array(shards[0], "p", "x")  # one path, not a list
    with pytest.raises(ValueError, match="no store"):
        md.array([], "p", "x")
    with pytest.raises(ValueError, match="no table 'q'"):
        md.array(shards, "q", "x")
    with pytest.raises(KeyError, match="no field 'y'"):
        md.array(shards, "p", "y")
    with pytest.raises(TypeError, match="str field"):
        md.array(shards, "p", "tag")
    with pytest.raises(KeyError, match="no field 'y'"):
        md.dataframe(shards, "p", columns=["y"])
    with pytest.raises(TypeError):
        md.dataframe(shards, "p", columns="x")
    with pytest.raises(ValueError, match="is a field"):
        md.dataframe(shards, "p", store_column="x")
    with pytest.raises(FileNotFoundError):
        md.array(shards + [str(tmp_path / "absent.mms")], "p", "x")


def test_shards_must_agree(shards, tmp_path):
    other = shard(str(tmp_path / "o.mms"), 9, 3, [("x", "f64"), ("n", "i64")])
    with pytest.raises(ValueError, match="other fields"):
        md.array(shards + [other], "p", "x")
    with pytest.raises(ValueError, match="other fields"):
        md.dataframe(shards + [other], "p")


def test_a_shard_changed_after_the_array_was_made(shards):
    x = md.array(shards, "p", "x")
    before = x.compute().tolist()
    with mmstore.open(shards[1]) as s:  # appended since: left out
        with s.write():
            s.table("p").append({"x": 99.0})
    assert x.compute().tolist() == before
    assert len(md.array(shards, "p", "x").compute()) == len(before) + 1
    with mmstore.open(shards[1]) as s:  # migrated since: refused, named
        with s.write():
            s.create_table("p", [("x", "f64"), ("n", "i64")])
    with pytest.raises(ValueError, match="s1.mms.*changed"):
        x.compute(scheduler="sync")
