"""Round 23 of the binding: a copy through Table.fields keeps the record
size, import_csv keeps a schema's offsets, checkpoint() and close() name
the store in their OSErrors, and a tool script without '#!' runs through
/bin/sh as execvp would run it."""
import os
import pickle

import numpy as np
import pytest

import mmstore
from conftest import run_py


def padded_dtypes():
    # {u64 a; u8 b} with the record sizes a packed numpy dtype (9), one
    # with room to spare (24) and a C struct (16) give it.
    return [np.dtype({"names": ["a", "b"], "formats": ["<u8", "u1"], "offsets": [0, 8],
                      "itemsize": n}) for n in (9, 24, 16)]


def test_a_copy_through_fields_keeps_the_record_size(path):
    # create_table(name, t.fields) laid the Fields out with the smallest
    # C-struct record that holds them: a source of 9 or 24 bytes became a
    # copy of 16 (the README called it a limitation). A Field now carries
    # its table's record size (Field.record_size, not one of its five
    # items), and a layout of Fields that fit in it keeps it.
    s = mmstore.open(path, create=True)
    with s.write():
        for i, dt in enumerate(padded_dtypes()):
            t = s.create_table(f"src{i}", dt)
            assert t.record_size == dt.itemsize
            c = s.create_table(f"copy{i}", t.fields)
            assert c.record_size == dt.itemsize and c.dtype == t.dtype, (c.dtype, t.dtype)
            assert all(f.record_size == dt.itemsize for f in t.fields)
            # A list of them too, and a pickled one (another process's).
            c = s.create_table(f"list{i}", pickle.loads(pickle.dumps(list(t.fields))))
            assert c.record_size == dt.itemsize and c.dtype == t.dtype
            # A field added after them that does not fit: the C struct's
            # size, as before.
            c = s.create_table(f"grown{i}", list(t.fields) + [("n", "i64")])
            assert c.dtype.fields["n"][1] == 16
            assert c.record_size == max(24, dt.itemsize)
    # Field stays a 5-tuple; one made by hand has no record size.
    f = s.table("src1").fields[0]
    assert len(f) == 5 and tuple(f) == ("a", "u64", 0, 8, None)
    assert mmstore.Field(("a", "u64", 0, 8, None)).record_size is None
    with s.write():
        c = s.create_table("hand", [mmstore.Field(("a", "u64", 0, 8, None)),
                                    mmstore.Field(("b", "u8", 8, 1, None))])
        assert c.record_size == 16
    s.verify()
    s.close()


def test_import_csv_keeps_the_offsets_of_a_schema(path, tmp_path, mms_tool):
    # import_csv(schema=t.fields) passed the tool a --schema string, which
    # cannot say offsets: the table was laid out as a C struct, not as the
    # Fields (or a dtype) said. A schema the tool cannot spell is now
    # created first (create_table), then imported into.
    dt = np.dtype({"names": ["a", "b"], "formats": ["<i4", "<i4"], "offsets": [8, 0],
                   "itemsize": 24})
    csv = tmp_path / "rows.csv"
    csv.write_text("a,b\n1,2\n3,4\n")
    s = mmstore.open(path, create=True)
    with s.write():
        t = s.create_table("t", dt)
    for name, schema in (("from_fields", t.fields), ("from_dtype", dt),
                         ("from_list", list(t.fields))):
        c = s.import_csv(csv, name, schema=schema)
        assert c.dtype == t.dtype, (name, c.dtype, t.dtype)
        assert c.column("a").tolist() == [1, 3] and c.column("b").tolist() == [2, 4]
        # Again into the table it made: appended.
        assert len(s.import_csv(csv, name, schema=schema)) == 4
    # A table there with another layout is refused, nothing imported.
    with s.write():
        s.create_table("other", [("a", "i32"), ("b", "i32")])
    with pytest.raises(mmstore.SchemaError, match="another layout"):
        s.import_csv(csv, "other", schema=t.fields)
    assert len(s.table("other")) == 0
    # A schema the tool lays out the same way still goes as --schema: bad
    # rows create no table.
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,x\n")
    with pytest.raises(mmstore.Error):
        s.import_csv(bad, "plain", schema=[("a", "i32"), ("b", "i32")])
    assert "plain" not in s.tables()
    # One made first stays, empty, when the import then fails.
    with pytest.raises(mmstore.Error):
        s.import_csv(bad, "made_first", schema=t.fields)
    assert len(s.table("made_first")) == 0 and s.table("made_first").dtype == t.dtype
    s.verify()
    s.close()


@pytest.mark.parametrize("call", ["checkpoint", "close"])
def test_checkpoint_and_close_oserrors_name_the_store(tmp_path, call):
    # An OSError from checkpoint() or close() had no filename (open's and
    # import_csv's have theirs). The Nth fsync of a child fails (EIO), on
    # a new store each time (a failed commit would be replayed at the next
    # open), until one inside the call does.
    for n in range(1, 20):
        path = str(tmp_path / f"s{n}.mms")
        s = mmstore.open(path, create=True)
        with s.write():
            s.create_table("t", [("x", "i64")])
        s.close()
        out = run_py(f"""
            import os, sys
            import mmstore
            try:
                s = mmstore.open(sys.argv[1])
                with s.write():
                    s.table("t").append({{"x": 1}})
            except OSError:
                print("before")
                os._exit(0)
            try:
                s.{call}()
                print("passed")
            except OSError as e:
                print("raised", e.errno, e.filename, s.path)
            os._exit(0)
            """, path, env={"MMS_FAULT": f"fsync:{n}:5"}).stdout.split()
        if out[0] != "before":
            break
    assert out[0] == "raised", out
    assert out[1:] == ["5", os.path.abspath(path), os.path.abspath(path)], out


def test_a_tool_script_without_shebang_runs_through_sh(path, tmp_path, mms_tool, monkeypatch):
    # execvp runs a file the kernel cannot execute (ENOEXEC: a script with
    # no '#!') with /bin/sh; tool_on_path + execve, which replaced it,
    # raised OSError ENOEXEC instead.
    bindir = tmp_path / "bin"
    bindir.mkdir()
    script = bindir / "mms-py23"
    script.write_text(f'echo ran >> "{tmp_path / "ran"}"\nexec "{mms_tool}" "$@"\n')
    script.chmod(0o755)
    monkeypatch.setenv("MMS_TOOL", "mms-py23")
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    csv = tmp_path / "rows.csv"
    csv.write_text("x\n1\n2\n")
    s = mmstore.open(path, create=True)
    assert len(s.import_csv(csv, "t")) == 2
    assert (tmp_path / "ran").read_text() == "ran\n"
    # And by its path.
    monkeypatch.setenv("MMS_TOOL", str(script))
    assert len(s.import_csv(csv, "t")) == 4
    s.close()
