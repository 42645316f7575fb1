"""A Table's name follows a rename made by another handle (another
process here, the mms tool): the C table handle finds its table again by
its region at the next transaction and takes the new name; the Table
showed the name it was created with for ever."""
import subprocess

import mmstore


def test_name_follows_a_rename_by_another_process(path, mms_tool):
    s = mmstore.open(path, create=True)
    with s.write():
        t = s.create_table("old", [("x", "i64")])
        t.append({"x": 1})
    assert t.name == "old"
    subprocess.run([mms_tool, "rename", path, "old", "new"], check=True, capture_output=True)
    with s.read():                      # the refresh
        assert s.tables() == ["new"]
        assert t.name == "new"
        assert t.get(0) == {"x": 1}
    assert t.name == "new" and "'new'" in repr(t)
    # Renamed back: the same again.
    subprocess.run([mms_tool, "rename", path, "new", "old"], check=True, capture_output=True)
    with s.read():
        assert t.name == "old"
    s.close()
    assert t.name == "old"              # a closed store's Table keeps its last name


def test_table_lookup_follows_a_rename(path, mms_tool):
    """Store.table() finds a table by the name it has now: the old name is a
    KeyError once the handle saw the rename, and the new one gives the same
    Table object (one object per C table, as its views count on)."""
    s = mmstore.open(path, create=True)
    with s.write():
        t = s.create_table("old", [("x", "i64")])
        t.append({"x": 1})
    assert s.table("old") is t
    subprocess.run([mms_tool, "rename", path, "old", "new"], check=True, capture_output=True)
    with s.read():
        assert s.table("new") is t
        try:
            s.table("old")
        except KeyError:
            pass
        else:
            raise AssertionError("table('old') found a renamed table")
    assert s.table("new") is t
    # Another table takes the old name (another handle made it): a
    # different object.
    with mmstore.open(path) as s2, s2.write():
        s2.create_table("old", [("y", "i32")])
    with s.read():
        u = s.table("old")
        assert u is not t and [f.name for f in u.fields] == ["y"]
        assert s.table("new") is t and t.get(0) == {"x": 1}
    s.close()


def test_a_table_made_again_after_another_process_dropped_it_is_one_object(path, mms_tool):
    # Another process dropped t; this Store made t again: the C library
    # gives the new table the handle the old one had (by name), and the
    # Store made a second Table object over it. The first, still held,
    # then bypassed the refusals the second kept (created in this
    # transaction: no writable array).
    import pytest
    s = mmstore.open(path, create=True)
    with s.write():
        t = s.create_table("t", [("x", "i64")])
        t.append({"x": 1})
    subprocess.run([mms_tool, "drop", path, "t"], check=True, capture_output=True)
    with s.write():
        t2 = s.create_table("t", [("y", "f64")])
        t2.append({"y": 2.5})
        assert t2 is t and s.table("t") is t
        with pytest.raises(BufferError):
            t.array(writable=True)
    assert t.get(0) == {"y": 2.5} and [f.name for f in t.fields] == ["y"]
    s.close()


def test_a_ref_field_follows_a_rename_of_its_target_by_another_process(path, mms_tool):
    """A ref field's target is the target table's name now: once another
    process renamed the target, the referring Table's fields named the old
    name and append/extend of a ref into it failed NoentError ("its target
    table old is not there"), for as long as the Store was open."""
    s = mmstore.open(path, create=True)
    with s.write():
        t = s.create_table("old", [("x", "i64")])
        t.append({"x": 1})
        r = s.create_table("r", [("to", "ref", "old")])
        r.append({"to": ("old", 0)})
    assert r.fields[0].target == "old"
    subprocess.run([mms_tool, "rename", path, "old", "new"], check=True, capture_output=True)
    with s.write():
        assert r.fields[0].target == "new"
        assert r.append({"to": ("new", 0)}) == 1
        assert r.append({"to": t.ref(0)}) == 2
        assert r.extend({"to": [("new", 0)]}) == 3
        assert r.extend({"to": [t.ref(0)]}) == 4
    assert [r.get(i)["to"] for i in range(5)] == [("new", 0)] * 5
    s.verify()
    s.close()


def test_a_ref_field_whose_target_was_dropped_round_trips_its_field(path, mms_tool):
    """Field.target is None for a ref whose target table was dropped; the
    same spec given back to create_table opened or migrated nothing: "a
    third item is the size of chars or the target table of ref, not None"
    (C takes "" there, for a field that targets no table already)."""
    import pytest
    s = mmstore.open(path, create=True)
    with s.write():
        c = s.create_table("city", [("x", "i64")])
        c.append({"x": 1})
        p = s.create_table("person", [("id", "i64"), ("home", "ref", "city")])
        p.append({"id": 7, "home": None})
    s.close()
    subprocess.run([mms_tool, "drop", path, "city"], check=True, capture_output=True)
    s = mmstore.open(path)
    p = s.table("person")
    assert [(f.name, f.target) for f in p.fields] == [("id", None), ("home", None)]
    spec = [(f.name, f.kind, f.target) if f.kind == "ref" else (f.name, f.kind)
            for f in p.fields]
    with s.write():
        assert s.create_table("person", spec) is p            # the same layout: opened
        q = s.create_table("person", spec + [("age", "i32")])  # migrated, the ref kept
        assert q.get(0) == {"id": 7, "home": None, "age": 0}
        with pytest.raises(mmstore.Error):                    # a new ref needs a table
            s.create_table("other", [("r", "ref", None)])
    assert [f.name for f in s.table("person").fields] == ["id", "home", "age"]
    s.close()
