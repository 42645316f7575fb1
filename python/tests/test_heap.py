"""The application's heap objects from Python: alloc, heap_write, heap,
free and the root, across commits, aborts, reopens and another process."""
import os
import struct

import numpy as np
import pytest

import mmstore
from conftest import run_py

NODE = struct.Struct("<QQd")  # next ref, id, value


def build_list(s, n):
    """A linked list of n nodes from the root; returns the refs."""
    refs = []
    with s.write():
        nxt = 0
        for i in reversed(range(n)):
            r = s.alloc(NODE.size)
            s.heap_write(r, NODE.pack(nxt, i, i * 0.5))
            refs.append(r)
            nxt = r
        s.root = nxt
    return list(reversed(refs))


def walk(s):
    out = []
    r = s.root
    while r:
        nxt, i, v = NODE.unpack(s.heap(r, 0, NODE.size))
        out.append((i, v))
        r = nxt
    return out


def test_graph_survives_reopen_and_other_process(path):
    s = mmstore.open(path, create=True)
    build_list(s, 50)
    assert walk(s) == [(i, i * 0.5) for i in range(50)]
    s.close()
    s = mmstore.open(path, readonly=True)
    assert walk(s) == [(i, i * 0.5) for i in range(50)]
    s.close()
    out = run_py(f"""
        import struct, mmstore
        s = mmstore.open({path!r}, readonly=True)
        r, n = s.root, 0
        while r:
            r, i, v = struct.unpack("<QQd", s.heap(r, 0, 24))
            n += i
        print(n)
    """)
    assert out.stdout.strip() == str(sum(range(50)))


def test_heap_reads_whole_object_and_numpy(path):
    s = mmstore.open(path, create=True)
    with s.write():
        r = s.alloc(8 * 100, zero=False)
        s.heap_write(r, np.arange(100, dtype="<i8").tobytes())
        s.root = r
    whole = s.heap(r)
    assert len(whole) >= 800  # the usable size, perhaps more than asked
    assert (np.frombuffer(s.heap(r, 0, 800), dtype="<i8") == np.arange(100)).all()
    assert s.heap(r, 8 * 99, 8) == struct.pack("<q", 99)
    assert s.heap(r, len(whole), 0) == b""
    with s.write():
        s.heap_write(r, struct.pack("<q", -7), offset=8)
    assert s.heap(r, 8, 8) == struct.pack("<q", -7)
    z = None
    with s.write():
        z = s.alloc(64)
    assert s.heap(z, 0, 64) == bytes(64)  # zeroed by default
    s.close()


def test_abort_undoes_heap_write_and_alloc(path):
    s = mmstore.open(path, create=True)
    refs = build_list(s, 3)
    before = s.heap(refs[0], 0, NODE.size)
    with pytest.raises(RuntimeError):
        with s.write():
            s.heap_write(refs[0], NODE.pack(0, 99, 9.0))
            extra = s.alloc(32)
            s.root = extra
            assert s.heap(refs[0], 0, NODE.size) == NODE.pack(0, 99, 9.0)
            raise RuntimeError("abort")
    assert s.heap(refs[0], 0, NODE.size) == before
    assert s.root == refs[0]
    with pytest.raises(mmstore.BadrefError):
        s.heap(extra)  # its allocation went with the abort
    s.close()


def test_refusals(path):
    s = mmstore.open(path, create=True)
    refs = build_list(s, 2)
    with pytest.raises(mmstore.BadrefError):
        s.heap(0)
    with pytest.raises(mmstore.BadrefError):
        s.heap(refs[0] + 8)  # the middle of an object
    with pytest.raises(IndexError):
        s.heap(refs[0], 0, 1 << 20)
    with pytest.raises(mmstore.RangeError):
        s.heap(refs[0], 1 << 20)
    with pytest.raises(ValueError):
        s.heap(refs[0], -1)
    with pytest.raises(TypeError):
        s.heap("x")
    with pytest.raises(mmstore.NotxnError):
        s.heap_write(refs[0], b"x")
    with pytest.raises(mmstore.NotxnError):
        s.alloc(8)
    with pytest.raises(mmstore.NotxnError):
        s.free(refs[1])
    with pytest.raises(mmstore.NotxnError):
        s.root = 0
    with pytest.raises(AttributeError):
        del s.root
    with s.write():
        with pytest.raises(IndexError):
            s.heap_write(refs[0], bytes(1 << 20))
        with pytest.raises(ValueError):
            s.alloc(0)
        s.free(refs[1])
        with pytest.raises(mmstore.BadrefError):
            s.free(refs[1])  # a double free is refused
        with pytest.raises(mmstore.BadrefError):
            s.heap(refs[1])
        s.heap_write(refs[0], struct.pack("<Q", 0))  # unlink it
    # Freeing the root's object fails the commit (C's rule).
    with pytest.raises(mmstore.BadrefError):
        with s.write():
            s.free(s.root)
    assert walk(s) == [(0, 0.0)]
    s.close()
    r = mmstore.open(path, readonly=True)
    with pytest.raises(mmstore.RdonlyError):
        r.alloc(8)
    with pytest.raises(mmstore.RdonlyError):
        r.heap_write(r.root, b"x")
    assert r.heap(r.root, 8, 8) == struct.pack("<Q", 0)
    r.close()


def test_bounds_near_2_63_and_misuse(path):
    """Offsets and sizes near 2**63 are refused by the bounds check (an
    offset plus a size that would wrap); heap_write, alloc, free and the
    root setter refuse a read transaction; every call refuses a closed
    Store and a forked child's copy, and the object is unchanged."""
    s = mmstore.open(path, create=True)
    with s.write():
        r = s.alloc(32)
        s.heap_write(r, bytes(range(32)))
        s.root = r
    big = 2**63 - 1
    for off, size in ((big, None), (big, big), (16, big), (33, 0), (0, 33)):
        with pytest.raises(IndexError):
            s.heap(r, off, size)
    for off in (2**63, -1):
        with pytest.raises(ValueError):
            s.heap(r, off)
    assert s.heap(r, 32, 0) == b""
    assert s.heap(r, 16) == bytes(range(16, 32))
    with s.write():
        for data, off in ((b"x", big), (b"", 33), (bytes(2), 31)):
            with pytest.raises(IndexError):
                s.heap_write(r, data, off)
        s.heap_write(r, b"", 32)
        with pytest.raises(mmstore.FullError):
            s.alloc(2**64 - 1)
        with pytest.raises(mmstore.BadrefError):
            s.free(2**64 - 1)
    with s.read():
        with pytest.raises(mmstore.NotxnError):
            s.heap_write(r, b"x")
        with pytest.raises(mmstore.NotxnError):
            s.alloc(8)
        with pytest.raises(mmstore.NotxnError):
            s.free(r)
        with pytest.raises(mmstore.NotxnError):
            s.root = 0
        assert s.heap(r, 0, 4) == bytes(range(4))
    pid = os.fork()
    if pid == 0:  # the child: the copied handle refuses every call
        code = 0
        for call in (lambda: s.heap(r), lambda: s.free(0), lambda: s.alloc(1)):
            try:
                call()
                code = 1
            except mmstore.ForkError:
                pass
            except BaseException:
                code = 2
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert s.heap(r) == bytes(range(32))
    s.close()
    for call in (lambda: s.heap(r), lambda: s.heap_write(r, b"x"), lambda: s.alloc(1),
                 lambda: s.free(0)):
        with pytest.raises(ValueError, match="closed"):
            call()
    with pytest.raises(ValueError, match="closed"):
        s.root = 0


def test_heap_write_refuses_a_string(path):
    """A string (or blob) a record holds is a heap allocation whose first
    bytes are its header: heap_write over it succeeded and committed, and the
    record's string was gone (get raised BadrefError, verify() CorruptError).
    Strings change through their record."""
    s = mmstore.open(path, create=True)
    with s.write():
        t = s.create_table("t", [("s", "str"), ("b", "blob")])
        t.append({"s": "hello", "b": b"blob"})
    refs = [int(r) for r in t.array()[0][["s", "b"]].tolist()]
    with s.write():
        for ref in refs:
            with pytest.raises(mmstore.BadrefError, match="string"):
                s.heap_write(ref, b"\xff" * 8)
            with pytest.raises(mmstore.BadrefError, match="string"):
                s.heap_write(ref, b"x", 9)
    assert t.get(0) == {"s": "hello", "b": b"blob"}
    s.verify()
    with s.write():                     # a plain allocation still takes it
        ref = s.alloc(16)
        s.heap_write(ref, b"\xff" * 8)
    assert s.heap(ref, 0, 8) == b"\xff" * 8
    s.close()


def library_refs(s):
    """The library's own heap objects, in a store whose application made
    none: every live allocation (a step of 16 bytes) that is not a string
    -- the catalog, the table's field list, bitmaps."""
    found = []
    for ref in range(16, 256 * 1024, 16):
        try:
            s.heap(ref, 0, 0)
        except mmstore.BadrefError:
            continue
        try:
            s.string(ref)
            continue
        except mmstore.BadrefError:
            found.append(ref)
    return found


def test_library_objects_refused(path):
    """A ref that names one of the library's own heap objects (found by
    guessing) was accepted: heap_write over the catalog or a table's field
    list committed, and the store then failed verify() (CorruptError: the
    catalog has a bad magic, a field is damaged) for good. heap_write and
    free refuse them with BadrefError; the store verifies and reopens."""
    s = mmstore.open(path, create=True)
    with s.write():
        t = s.create_table("t", [("id", "i64"), ("s", "str")])
        for i in range(20):
            t.append({"id": i, "s": f"n{i}"})
        t.append({"id": None, "s": "null id"})  # null bitmaps
        t.delete(3)                             # a deleted-record bitmap
    refs = library_refs(s)
    assert len(refs) >= 4
    for ref in refs:
        before = s.heap(ref)
        with s.write():
            with pytest.raises(mmstore.BadrefError, match="library's own"):
                s.heap_write(ref, b"\0" * 16)
            with pytest.raises(mmstore.BadrefError, match="library's own"):
                s.free(ref)
            mine = s.alloc(len(before))    # would take a freed object's place
            assert mine != ref
        assert s.heap(ref) == before
        s.verify()
    s.close()
    s = mmstore.open(path)
    s.verify()
    assert s.table("t").get(20) == {"id": None, "s": "null id"}
    s.close()
