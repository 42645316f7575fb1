"""Rule R4 of pymms.h as it stands since the C library keeps every range a
region ever mapped (src/map.c, "Retired ranges": zeros past a shorter file,
zeros for a dropped region, writable private ones in a write handle without
the guard): no array faults, whatever happens to its table, so a read-only
one is no longer refused; a writable one's stores in a later write
transaction are committed to whatever the range holds then (the table in
another layout, another table), so what could change that while it lives
is still refused. Each case runs in a child interpreter: a crash is its
exit status, not the death of the test run."""
from conftest import run_py

FILL = """
    import gc, sys
    import numpy as np
    import mmstore
    path = sys.argv[1]
    n = 100000
    s = mmstore.open(path, create=True)
    def four():
        return [("a", "f64"), ("b", "f64"), ("c", "f64"), ("d", "f64")]
    with s.write():
        t = s.create_table("t", four())
        t.extend({"a": np.arange(n) + 1.0, "b": np.ones(n)})
    """


def child(body, *args):
    p = run_py(FILL + body, *args, check=False)
    assert p.returncode == 0, f"child exited {p.returncode}:\n{p.stdout}\n{p.stderr}"
    return p.stdout.splitlines()


def test_readonly_view_of_a_table_created_in_an_aborted_transaction(path):
    # Refused (BufferError) while an abort unmapped the new region; now it
    # reads zeros after the abort, and a new table's bytes once one takes
    # the region, as an array of a table another process dropped does.
    out = child("""
    try:
        with s.write():
            u = s.create_table("u", [("x", "i64")])
            u.extend({"x": np.arange(n) + 1})
            a = u.column("x")
            print(int(a.sum()))
            raise KeyError("abort")
    except KeyError:
        pass
    print(int(a.sum()), s.tables())
    with s.write():
        s.create_table("v", [("y", "i64")]).extend({"y": np.full(n, 2)})
    a.sum()                          # v's bytes or zeros: read, never a fault
    s.verify()
    print("ok")
    """, path)
    assert out == ["5000050000", "0 ['t']", "ok"]


def test_readonly_view_of_a_table_migrated_in_an_aborted_transaction(path):
    out = child("""
    try:
        with s.write():
            t = s.create_table("t", [("a", "f64")])   # 32-byte records to 8
            a = t.column("a")
            print(a[-1])
            raise KeyError("abort")
    except KeyError:
        pass
    a.sum()                          # the old layout's bytes: read, never a fault
    with s.read():
        print(t.dtype.names, t.column("a")[-1])
    s.verify()
    print("ok")
    """, path)
    assert out == ["100000.0", "('a', 'b', 'c', 'd') 100000.0", "ok"]


def test_migration_under_readonly_views(path):
    # This Store, another Store of this process: the array shows the new
    # layout's bytes and zeros past them, as under another process's
    # migration (test_views_remap.py).
    out = child("""
    with s.read():
        x = t.column("a")
    for other in (s, mmstore.open(path)):
        with other.write():
            other.create_table("t", [("a", "f64")] if other is s else four())
        with s.read():
            pass
        print(x[-1], x[n // 4 - 1])
        if other is not s:
            other.close()
    s.verify()
    print("ok")
    """, path)
    # After shrinking to 8-byte records the old stride reads record 4i's
    # a at i: zeros past the quarter; migrated back to 32 bytes, the old
    # values (a kept, b-d zero).
    assert out == ["0.0 99997.0", "100000.0 25000.0", "ok"]


def test_writable_arrays_still_refused_where_a_store_would_fault(path):
    # Each refusal below, when it was lifted (a child run with the checks
    # removed), let a store through the writable array reach the zeros past
    # the table's shorter file: SIGSEGV while those were read-only; now the
    # store is taken, and one made in a later write transaction is
    # committed into the table's new layout (as it is when another
    # process, which cannot be refused, migrates the table).
    out = child("""
    def refused(fn):
        try:
            fn()
        except BufferError as e:
            return "refused"
        return "done"
    with s.write():
        w = t.array(writable=True)
    # 1. Migrating it (smaller records) while the writable array lives,
    #    through this Store or another of this process.
    for other in (s, mmstore.open(path)):
        with other.write():
            print(refused(lambda: other.create_table("t", [("a", "f64")])))
        if other is not s:
            other.close()
    w["a"][-1] = 5.0                 # still mapped writable: no fault
    del w
    gc.collect()
    # 2. A writable array of a table migrated (here: to larger records) in
    #    this transaction: an abort maps the old, shorter file back.
    try:
        with s.write():
            s.create_table("t", four() + [("e", "f64")])
            print(refused(lambda: t.array(writable=True)))
            raise KeyError("abort")
    except KeyError:
        pass
    # 3. Of a table created in it (an abort drops its region).
    try:
        with s.write():
            u = s.create_table("u", [("x", "i64")])
            print(refused(lambda: u.array(writable=True)))
            raise KeyError("abort")
    except KeyError:
        pass
    s.verify()
    print("ok")
    """, path)
    assert out == ["refused", "refused", "refused", "refused", "ok"]


def test_writable_array_counted_across_a_rename(path, mms_tool):
    # Another process renamed the table; a second Store of this process
    # migrated it by its new name while the first Store, which had not
    # seen the rename yet, held a writable array: the writable views were
    # counted by name, the migration went ahead, and the store through the
    # array killed the interpreter (SIGSEGV). They are counted by the
    # table's region now, whatever either Store calls it.
    out = child("""
    import subprocess
    with s.write():
        w = t.array(writable=True)
    subprocess.run([sys.argv[2], "rename", path, "t", "new"], check=True, capture_output=True)
    o = mmstore.open(path)
    try:
        with o.write():
            o.create_table("new", [("a", "f64")])
        print("migrated")
    except BufferError:
        print("refused")
    o.close()
    with s.read():
        pass
    w["a"][-1] = 1.0
    del w
    s.verify()
    print("ok")
    """, path, mms_tool)
    assert out == ["refused", "ok"]


def test_writable_array_kept_past_its_transaction_survives_another_process(path, mms_tool):
    # Another process (which no Store here can refuse) migrates the table
    # to smaller records, or drops it; at this handle's next transaction
    # the range past the table's new end was read-only zeros, and a store
    # through a writable array kept from an earlier transaction killed the
    # interpreter (SIGSEGV). Such a store is never committed (R5) and now
    # never faults either: in a write handle without the guard the zeros
    # are the handle's private pages, as the rest of its view is.
    for step in ("migrate", "drop"):
        out = child("""
    import subprocess
    step, tool = sys.argv[2], sys.argv[3]
    with s.write():
        w = t.array(writable=True)
    if step == "drop":
        subprocess.run([tool, "drop", path, "t"], check=True, capture_output=True)
    else:
        subprocess.run([sys.executable, "-c", "import mmstore, sys; s = mmstore.open(sys.argv[1]); "
                        "w = s.write(); w.__enter__(); s.create_table('t', [('a', 'f64')]); "
                        "w.__exit__(None, None, None); s.close()", path], check=True)
    with s.read():
        pass                             # this handle follows: zeros past the new end
    w["a"][-1] = 5.0                     # past it
    w["d"][0] = 6.0
    print(w["a"][-1], float(w["a"][:-1].sum()))
    del w
    gc.collect()
    with s.read():
        print(s.tables(), t.slots if s.tables() else 0)
    s.verify()
    print("ok")
    """, path, step, mms_tool)
        if step == "migrate":
            # The stores are the array's own; the table keeps its records.
            assert out == ["5.0 1249975000.0", "['t'] 100000", "ok"], out
        else:
            assert out == ["5.0 0.0", "[] 0", "ok"], out
