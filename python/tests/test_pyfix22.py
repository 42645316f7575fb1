"""Known problems of the binding fixed in session 22: each test failed
before its fix, except the one that guards the PATH search that import_csv's
fix brought in (which execvpe did before)."""
import os
import shutil

import numpy as np
import pytest

import mmstore
from conftest import run_py


def test_close_inside_a_write_block_raises_at_its_end(path):
    # close() inside `with s.write():` aborted the transaction and the
    # block then ended quietly: its writes were lost without a word. Its
    # end now raises TxnError (.committed False, as a failed commit says).
    s = mmstore.open(path, create=True)
    with s.write():
        s.create_table("t", [("x", "i32")]).append({"x": 1})
    t = s.table("t")
    with pytest.raises(mmstore.TxnError, match="closed inside the write block") as e:
        with s.write():
            t.append({"x": 2})
            s.close()
    assert e.value.committed is False and "aborted" in e.value.__notes__[0]
    assert s.closed
    # The same through the Store's own with: its close() after that does nothing.
    with pytest.raises(mmstore.TxnError, match="closed inside the write block"):
        with mmstore.open(path) as s:
            with s.write():
                s.table("t").append({"x": 3})
                s.close()
    # An exception leaving the block goes on as it is: an abort is what
    # it asked for.
    s = mmstore.open(path)
    with pytest.raises(ZeroDivisionError):
        with s.write():
            s.table("t").append({"x": 4})
            s.close()
            1 / 0
    # A read block has nothing to lose: its end stays quiet.
    s = mmstore.open(path)
    with s.read():
        assert len(s.table("t")) == 1
        s.close()
    with mmstore.open(path) as s:
        assert len(s.table("t")) == 1       # none of the closed blocks committed
        s.verify()


def test_create_table_takes_the_fields_of_a_table(path):
    # t.fields is a tuple of Field (name, kind, offset, size, target), and
    # create_table took only (name, kind[, size or target]): copying a
    # schema the natural way raised "a field is (name, kind[, size or
    # target])". A Field keeps its offset, as a dtype's field does.
    s = mmstore.open(path, create=True)
    with s.write():
        t = s.create_table("t", [("a", "i32"), ("c", "chars", 5), ("r", "ref", "t"),
                                 ("s", "str"), ("b", "bool"), ("f", "f64")])
        u = s.create_table("u", t.fields)
        assert u.fields == t.fields and u.dtype == t.dtype
        assert s.create_table("t", t.fields) is t       # the same layout: opened as it is
        # Fields and then tuples: the tuples go on after the last field.
        v = s.create_table("v", list(t.fields) + [("n", "i16")])
        assert v.fields[:-1] == t.fields
        assert v.fields[-1] == ("n", "i16", t.dtype.itemsize, 2, None)
        # Offsets of a dtype's own are kept through its fields.
        dt = np.dtype({"names": ["a", "b"], "formats": ["<i4", "<f8"], "offsets": [12, 16],
                       "itemsize": 24})
        d = s.create_table("d", dt)
        d.append({"a": 7, "b": 2.5})
        e = s.create_table("e", d.fields)
        assert e.fields == d.fields and e.dtype == d.dtype
        assert s.create_table("d", d.fields) is d and d.get(0) == {"a": 7, "b": 2.5}
    with s.write():
        # A Field that does not hold together is refused, naming the field.
        with pytest.raises(ValueError, match="field a"):
            s.create_table("w", [mmstore.Field(("a", "i32", 0, 8, None))])
        with pytest.raises(ValueError, match="field a"):
            s.create_table("w", [mmstore.Field(("a", "i32", -4, 4, None))])
        with pytest.raises(ValueError, match="field a"):
            s.create_table("w", [mmstore.Field(("a", "i32", 0, 4, "t"))])
    assert sorted(s.tables()) == ["d", "e", "t", "u", "v"]
    s.verify()
    s.close()


def test_oserrors_name_their_file(path, tmp_path, mms_tool, monkeypatch):
    # open() of a missing store raised FileNotFoundError with no filename
    # (its message said the path twice), and open("") an InvalError saying
    # "path and out are required": os.open("") is FileNotFoundError, ''.
    with pytest.raises(FileNotFoundError) as e:
        mmstore.open(path)
    assert e.value.filename == path and e.value.errno == 2
    assert str(e.value).count(path) == 1
    for create in (False, True):
        with pytest.raises(FileNotFoundError) as e:
            mmstore.open("", create=create)
        assert e.value.filename == "" and "empty" in str(e.value)
    # import_csv with no tool where MMS_TOOL says: the tool's path.
    s = mmstore.open(path, create=True)
    csv = tmp_path / "rows.csv"
    csv.write_text("x\n1\n")
    monkeypatch.setenv("MMS_TOOL", str(tmp_path / "no-such-tool"))
    with pytest.raises(FileNotFoundError) as e:
        s.import_csv(csv, "t")
    assert e.value.filename == str(tmp_path / "no-such-tool")
    s.close()


def test_import_csv_while_another_thread_changes_os_environ(path, tmp_path):
    # import_csv read environ (copying the tool's environment, getenv) with
    # the GIL released, while another thread's os.environ could setenv,
    # which reallocates environ, or unsetenv: the child segfaulted in
    # getenv in 5 runs of 5, within 100 imports. Now the environment is
    # copied with the GIL held. The tool is `false`: every import fails at
    # once, and only its start is exercised. A child keeps a crash out of
    # pytest.
    false = shutil.which("false")
    if not false:
        pytest.skip("no false(1)")
    csv = tmp_path / "rows.csv"
    csv.write_text("x\n1\n")
    run_py("""
        import os, sys, threading, mmstore
        s = mmstore.open(sys.argv[1], create=True)
        stop = False
        def churn():
            i = 0
            while not stop:
                keys = [f"PYFIX22_{i}_{k}" for k in range(50)]
                for k in keys:
                    os.environ[k] = "v"
                for k in keys:
                    del os.environ[k]
                i += 1
        t = threading.Thread(target=churn)
        t.start()
        try:
            for _ in range(200):
                try:
                    s.import_csv(sys.argv[2], "t")
                except mmstore.Error as e:
                    assert "exited with 1" in str(e), e
        finally:
            stop = True
            t.join()
    """, path, csv, env={"MMS_TOOL": false})


def test_import_csv_finds_a_tool_name_on_path(path, tmp_path, mms_tool, monkeypatch):
    # With the environment copied before the GIL is released, the tool is
    # searched on PATH then too (execvpe in the child read PATH from
    # environ): a name is still found where PATH says, in the first
    # directory that has an executable of that name.
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    (first / "mms").write_text("not executable\n")
    (second / "mms").symlink_to(mms_tool)
    monkeypatch.setenv("MMS_TOOL", "mms")
    monkeypatch.setenv("PATH", f"{tmp_path / 'none'}:{first}:{second}:{os.environ['PATH']}")
    csv = tmp_path / "rows.csv"
    csv.write_text("x\n1\n2\n")
    s = mmstore.open(path, create=True)
    assert len(s.import_csv(csv, "t")) == 2
    monkeypatch.setenv("MMS_TOOL", "no-such-mms-tool")
    with pytest.raises(FileNotFoundError):
        s.import_csv(csv, "t")
    s.close()
