"""Two processes: a reader's views stay as they were for its whole read
transaction while another process commits, and the next read transaction
sees the commit and the growth; wait() wakes on another process's commit
(with the GIL released); and the same records read by C (the mms tool) and
by Python agree."""
import json
import subprocess
import threading
import time

import numpy as np
import pytest

import mmstore
from conftest import popen_py, run_py

WRITER = """
import sys, numpy as np, mmstore
s = mmstore.open(sys.argv[1])
t = s.table("t")
with s.write():
    w = t.array(writable=True)
    w["x"][0] = -1
    del w
    t.extend({"x": np.arange(1000, 1000 + int(sys.argv[2]))})
    print("committing", flush=True)
print("committed", s.txn, flush=True)
s.close()
"""


def make(path, n=10):
    s = mmstore.open(path, create=True)
    with s.write():
        t = s.create_table("t", [("x", "i64")])
        t.extend({"x": np.arange(n)})
    return s, t


def test_reader_sees_one_state_while_another_process_commits(path):
    s, t = make(path)
    with s.read():
        a = t.column("x")
        snapshot = a.copy()
        txn = s.txn
        w = popen_py(WRITER, path, 100000)
        # The writer's commit does not wait for this reader: it returns, and
        # is held back (not applied) while the reader is inside.
        out, err = w.communicate(timeout=60)
        assert w.returncode == 0, err
        assert int(out.split()[-1]) == txn + 1
        assert (a == snapshot).all() and len(t) == 10 and t.get(0)["x"] == 0
        assert s.info()["published_txn"] == txn
    # The old view shows the handle's mapping (now the new state) ...
    with s.read():
        assert s.txn == txn + 1
        assert len(t) == t.slots == 100010            # the growth, mapped
        b = t.column("x")
        assert b[0] == -1 and b[-1] == 100999 and b[10] == 1000
        assert len(a) == 10                           # old views keep their length
    s.verify()
    s.close()


def test_wait_wakes_on_another_process_commit(path):
    s, t = make(path)
    txn = s.txn
    got = []
    gaps = []

    def waiter():
        got.append(s.wait(txn, timeout=30))

    th = threading.Thread(target=waiter)
    th.start()
    time.sleep(0.05)
    w = popen_py(WRITER, path, 10)
    # While the waiter is blocked the GIL is free: this thread keeps running.
    last = time.monotonic()
    while th.is_alive():
        now = time.monotonic()
        gaps.append(now - last)
        last = now
        with pytest.raises(mmstore.BusyError):
            s.tables()                                # R1: the waiter has the Store
        time.sleep(0.001)
    th.join()
    assert w.wait(timeout=60) == 0
    assert got == [txn + 1]
    assert len(gaps) > 10 and max(gaps) < 0.2
    with s.read():
        assert len(t) == 20
    s.close()


def test_c_and_python_read_the_same(path, mms_tool):
    s = mmstore.open(path, create=True)
    with s.write():
        c = s.create_table("c", [("name", "str")])
        c.extend({"name": ["a", "b"]})
        t = s.create_table("t", [("i", "i64"), ("f", "f64"), ("u", "u8"), ("b", "bool"),
                                 ("ch", "chars", 4), ("s", "str"), ("bl", "blob"),
                                 ("r", "ref", "c")])
        t.extend({"i": [-5, 2**62], "f": [0.1, -2.5], "u": [255, 0], "b": [True, False],
                  "ch": ["ab", "wxyz"], "s": ["héllo", None], "bl": [b"\x01\xff", None],
                  "r": [("c", 1), None]})
        t.append({"i": 7, "s": 'quote" , comma'})
        t.delete(0)
    s.checkpoint()
    dump = subprocess.run([mms_tool, "dump", path, "t", "--format", "jsonl"],
                          capture_output=True, text=True, check=True).stdout
    from_c = [json.loads(line) for line in dump.splitlines()]
    with s.read():
        from_py = [t.get(i) for i in np.flatnonzero(t.live())]
    assert len(from_c) == len(from_py) == 2
    for rc, rp in zip(from_c, from_py):
        rp = dict(rp)
        rp["bl"] = rp["bl"].hex() if rp["bl"] is not None else None
        rp["r"] = rp["r"][1] if rp["r"] is not None else None
        assert rc == rp
    schema = subprocess.run([mms_tool, "schema", path, "t"], capture_output=True, text=True,
                            check=True).stdout.splitlines()[1:]
    assert [tuple(line.split()) for line in schema] == [
        (f.name, f.kind, str(f.offset), str(f.size), f.target or "-") for f in t.fields]
    s.close()
    # And a store written by C (mms import) read by Python in a new process.
    csv = path + ".csv"
    with open(csv, "w") as f:
        f.write("k,v\n" + "".join(f"{i},{i * 0.5:g}\n" for i in range(1000)))
    subprocess.run([mms_tool, "import", path, "kv", csv], check=True, capture_output=True)
    out = run_py("""
        import sys, mmstore
        with mmstore.open(sys.argv[1], readonly=True) as s:
            t = s.table("kv")
            with s.read():
                print(len(t), t.column("k").sum(), t.column("v").sum(), t.dtype.descr)
    """, path).stdout
    assert out.split()[:3] == ["1000", "499500", "249750.0"]
