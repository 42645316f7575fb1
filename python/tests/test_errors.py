"""Errors: the exception classes come from the C error table (checked
against include/mmstore.h), carry code, name and detail, and system errors
are OSError subclasses. No input crashes the interpreter: a fuzz run in a
child process calls everything with wrong types, huge and negative
indices, on closed stores and from the wrong thread."""
import json
import os
import re
import threading

import numpy as np
import pytest

import mmstore
from conftest import run_py

HEADER = os.path.join(os.path.dirname(__file__), "..", "..", "include", "mmstore.h")


def c_error_table():
    """(name, code, message) of every X(...) line of MMS_ERRORS."""
    text = open(HEADER).read()
    return re.findall(r'X\((MMS_E\w+), (-\d+), "([^"]*)"\)', text)


def test_one_class_per_c_code():
    table = c_error_table()
    assert len(table) >= 19
    classes = {c.code: c for c in vars(mmstore).values()
               if isinstance(c, type) and issubclass(c, mmstore.Error) and c is not mmstore.Error}
    assert sorted(classes) == sorted(int(code) for _, code, _ in table)
    for name, code, msg in table:
        cls = classes[int(code)]
        assert cls.name == name and cls.__doc__ == msg
        assert getattr(mmstore, name) == int(code)   # the code, as a constant
        assert cls.__name__ == name[5:].capitalize() + "Error"
        assert issubclass(cls, mmstore.Error) and issubclass(cls, Exception)
    assert issubclass(mmstore.InvalError, ValueError)
    assert issubclass(mmstore.NoentError, KeyError)
    assert issubclass(mmstore.RangeError, IndexError)
    assert mmstore.Error.code is None


def test_errors_carry_code_name_detail(path, tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        mmstore.open(path)
    assert e.value.errno == 2 and e.value.code == -2 and isinstance(e.value.detail, str)
    afile = tmp_path / "file"
    afile.write_text("x")
    with pytest.raises(NotADirectoryError):
        mmstore.open(str(afile))
    empty = tmp_path / "empty.mms"
    empty.mkdir()
    with pytest.raises(mmstore.NotstoreError) as e:
        mmstore.open(str(empty))
    assert e.value.code == mmstore.MMS_ENOTSTORE and e.value.name == "MMS_ENOTSTORE"
    assert "not an mmstore store" in str(e.value)
    s = mmstore.open(path, create=True)
    s.close()
    with open(os.path.join(path, "region-0-0"), "r+b") as f:
        f.write(b"XXXXXXXX")
    with pytest.raises(mmstore.NotstoreError) as e:
        mmstore.open(path)
    assert "magic" in e.value.detail and e.value.detail in str(e.value)
    with open(os.path.join(path, "region-0-0"), "r+b") as f:
        f.seek(64)
        f.write(b"XXXXXXXX")
    with pytest.raises(mmstore.Error):
        mmstore.open(path)


def test_transaction_misuse(path):
    s = mmstore.open(path, create=True)
    with s.write():
        t = s.create_table("t", [("x", "i32")])
        with pytest.raises(mmstore.TxnError):
            with s.write():
                pass
        with pytest.raises(mmstore.TxnError):
            with s.read():
                pass
        with pytest.raises(mmstore.TxnError):
            s.verify()
        with pytest.raises(mmstore.TxnError):
            s.checkpoint()
    with s.read():
        with pytest.raises(mmstore.TxnError):
            with s.read():
                pass
        with pytest.raises(mmstore.NotxnError):
            t.append({"x": 1})
        with pytest.raises(mmstore.NotxnError):
            t.delete(0)
    with pytest.raises(mmstore.NotxnError):
        t.extend({"x": [1]})
    txn = s.read()
    with txn:
        with pytest.raises(RuntimeError):
            txn.__enter__()
    # close() inside a write block aborts the transaction; its end says so
    # (test_pyfix22.py).
    with pytest.raises(mmstore.TxnError):
        with s.write():
            t.append({"x": 1})
            s.close()
    with mmstore.open(path) as s2:
        assert len(s2.table("t")) == 0
    # A second handle of the same store in this process may write too.
    s = mmstore.open(path)
    other = mmstore.open(path)
    with s.write():
        with pytest.raises(mmstore.BusyError):
            with other.write(nowait=True):
                pass
    with other.write():
        other.table("t").append({"x": 5})
    assert s.table("t").get(0) == {"x": 5}
    # Beginning a write transaction while this thread reads through another
    # handle would wait for itself: refused.
    with s.read():
        with pytest.raises(mmstore.TxnError):
            with other.write():
                other.table("t").append({"x": 6})
        with pytest.raises(mmstore.TxnError):
            other.wait(0, timeout=0.01)
    assert len(other.table("t")) == 1
    s.close()
    other.close()


FUZZ = r"""
import gc, sys, threading, numpy as np, mmstore
path = sys.argv[1]
s = mmstore.open(path, create=True)
with s.write():
    c = s.create_table("c", [("n", "str")])
    c.append({"n": "x"})
    t = s.create_table("t", [("i", "i32"), ("f", "f64"), ("b", "bool"), ("ch", "chars", 4),
                             ("s", "str"), ("bl", "blob"), ("r", "ref", "c"), ("u", "u64")])
    t.extend({"i": np.arange(10, dtype=np.int32)})
weird = [None, True, -1, -11, 10, 2**31, 2**63, 2**64, 2**100, -2**100, 1.5, float("nan"),
         float("inf"), "", "i", "nope", "\0", "\udcff", b"", b"\xff" * 100, bytearray(b"x"),
         [], [1, 2], (), ("c", 0), ("c", -5), ("c", 2**70), ("t", 0), {}, {"i": 1}, object(),
         np.int64(-1), np.uint64(2**64 - 1), np.float32(1), np.bool_(True), np.arange(3),
         np.zeros((2, 2)), np.array(["a"]), np.array([b"abcdefgh"]), np.zeros(0),
         np.zeros(3, dtype=[("i", "<i8")]), np.zeros(2, dtype=t.dtype), memoryview(b"ab"),
         mmstore, s, t, lambda: 0]
calls = 0
def hit(f, *a):
    global calls
    calls += 1
    try:
        f(*a)
    except (Exception, SystemError) as e:
        assert not isinstance(e, SystemError), (f, a, e)
def everything(store, table):
    for w in weird:
        hit(mmstore.open, w)
        hit(store.table, w); hit(store.wait, w, 0); hit(store.string, w)
        hit(store.create_table, "z", w); hit(store.create_table, w, [("a", "i8")])
        hit(store.create_table, "z", [("a", w)]); hit(store.create_table, "z", [(w, "i8")])
        hit(store.create_table, "z", [("a", "chars", w)]); hit(store.create_table, "z", [("a", "ref", w)])
        for m in ("get", "delete", "ref", "column", "append", "extend"):
            hit(getattr(table, m), w)
        hit(table.str, w, "s"); hit(table.str, 0, w); hit(table.array, w)
        for f in ("i", "f", "b", "ch", "s", "bl", "r", "u"):
            hit(table.append, {f: w}); hit(table.extend, {f: [w]}); hit(table.extend, {f: w})
        hit(store.import_csv, w, "t"); hit(store.import_csv, "/nonexistent", w)
    for a in ("dtype", "fields", "slots", "record_size", "name"):
        hit(getattr, table, a)
    hit(len, table); hit(repr, table); hit(repr, store); hit(store.info); hit(store.tables)
    hit(table.live); hit(table.to_pandas); hit(store.verify)
everything(s, t)                       # outside a transaction
with s.read():
    everything(s, t)
try:
    with s.write():
        everything(s, t)
        raise KeyError("abort")
except KeyError:
    pass
# From another thread while this one is inside a transaction.
with s.write():
    th = threading.Thread(target=everything, args=(s, t)); th.start(); th.join()
s.verify()
s.close()
everything(s, t)                       # closed
gc.collect()
print("calls", calls)
"""


def test_fuzz_does_not_crash(path):
    out = run_py(FUZZ, path, timeout=120).stdout
    assert int(out.split()[-1]) > 10000


def test_wrong_thread(path):
    s = mmstore.open(path, create=True)
    with s.write():
        t = s.create_table("t", [("x", "i32")])
        t.append({"x": 1})
    seen = []

    def other():
        for f in (s.tables, lambda: t.get(0), lambda: len(t), s.info, lambda: t.array(),
                  lambda: s.write().__enter__(), s.close):
            try:
                f()
                seen.append(None)
            except mmstore.BusyError as e:
                seen.append(e.code)

    with s.write():
        th = threading.Thread(target=other)
        th.start()
        th.join()
    assert seen == [mmstore.MMS_EBUSY] * 7
    # Outside a transaction any thread may use it (one at a time).
    seen.clear()
    th = threading.Thread(target=lambda: seen.append(t.get(0)))
    th.start()
    th.join()
    assert seen == [{"x": 1}]
    s.close()


def test_names_with_nul_are_refused(path):
    s = mmstore.open(path, create=True)
    with s.write():
        t = s.create_table("a", [("x", "i32")])
        t.append({"x": 1})
    with pytest.raises(ValueError):
        s.table("a\0junk")                 # C would read "a"
    with pytest.raises(ValueError):
        t.get(0) and t.str(0, "x\0")
    with pytest.raises(ValueError):
        t.column("x\0y")
    s.close()


def test_integer_arguments_out_of_range_raise_value_error(path):
    # wait(-1), string(-1), wait(0, timeout=10**400) and a chars size of
    # 2**70 raised OverflowError from the C conversions (OverflowError is an
    # ArithmeticError, not the ValueError every other bad value raises):
    # each now says what is allowed. A value of the wrong type stays a
    # TypeError.
    s = mmstore.open(path, create=True)
    for call, allowed in ((lambda v: s.wait(v, timeout=0), "txn must be an int from 0 to 2"),
                          (s.string, "ref must be an int from 0 to 2")):
        for v in (-1, -2**70, 2**64, 2**100):
            with pytest.raises(ValueError, match=re.escape(allowed)) as e:
                call(v)
            assert not isinstance(e.value, OverflowError) and str(v) in str(e.value)
        with pytest.raises(TypeError):
            call(1.5)
    for tmo in (-1, -0.5, -10**400, 10**400, float("nan")):
        with pytest.raises(ValueError, match="timeout must be None or a number of seconds") as e:
            s.wait(0, timeout=tmo)
        assert not isinstance(e.value, OverflowError)
    with pytest.raises(TypeError):
        s.wait(0, timeout="1")
    with s.write():
        for size in (-1, 0, 2**24 + 1, 2**70, -2**70):
            with pytest.raises(ValueError, match="chars size .* is not in 1..") as e:
                s.create_table("c", [("c", "chars", size)])
            assert not isinstance(e.value, OverflowError)
        t = s.create_table("c", [("c", "chars", np.int32(3))])  # any integer type
        assert t.fields[0].size == 3
        t.append({"c": b"abc"})
    # Record indices were right already: IndexError, as a list raises it.
    for i in (-2, 1, 2**64, -2**70):
        with pytest.raises(IndexError):
            t.get(i)
    s.close()


def test_fork_child_gets_an_error(path):
    s = mmstore.open(path, create=True)
    with s.write():
        s.create_table("a", [("x", "i32")]).append({"x": 1})
    pid = os.fork()
    if pid == 0:  # the child: the handle is not usable here
        code = 1
        try:
            s.tables()
        except mmstore.ForkError:
            code = 0
        except BaseException:
            code = 2
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert s.table("a").get(0) == {"x": 1}
    s.close()


def test_bad_string_ref_names_table_record_field(path):
    """A str field holding a ref that is no string (a damaged file: commits
    refuse such a ref) raises BadrefError naming the table, the record and
    the field (the message was once formatted with %U by vsnprintf: garbage,
    or a crash)."""
    s = mmstore.open(path, create=True)
    with s.write():
        t = s.create_table("people", [("id", "i64"), ("name", "str")])
        t.append({"id": 1, "name": "ann"})
        t.append({"id": 2, "name": "bob"})
    s.checkpoint()
    s.close()
    [region] = [f for f in os.listdir(path) if f.startswith("region-1-")]
    with open(os.path.join(path, region), "r+b") as f:    # record 1's name: 16 + 8
        f.seek(24)
        f.write((0x2ed8e9f0).to_bytes(8, "little"))
    s = mmstore.open(path, readonly=True)
    t = s.table("people")
    for get in (lambda: t.get(1), lambda: t.str(1, "name"), lambda: t.column("name")):
        with pytest.raises(mmstore.BadrefError) as e:
            get()
        assert "table people record 1 field name: ref 0x2ed8e9f0 is not a string" in e.value.detail
    assert t.get(0) == {"id": 1, "name": "ann"}
    s.close()


def test_conversions_that_call_the_store_back(path, mms_tool):
    # A value's __index__ / __array__ / __len__ runs Python code while the
    # call converting it holds pointers into the handle: a close() from
    # there freed the handle under it (heap-use-after-free: a field named
    # '' of kind '?', then a crash), a delete or migration could free what
    # it used. Now such a call back raises BusyError, and nothing is lost.
    import contextlib
    import subprocess
    s = mmstore.open(path, create=True)
    with s.write():
        t = s.create_table("t", [("x", "i64"), ("s", "str")])
        t.extend({"x": [1, 2, 3], "s": ["a", "b", "c"]})
    s.close()
    subprocess.run([mms_tool, "index", path, "t", "x", "--ordered"], check=True,
                   capture_output=True)
    s = mmstore.open(path)
    t = s.table("t")

    class CallsBack:
        def __init__(self, action):
            self.action = action

        def __index__(self):
            self.action()
            return 1

        def __len__(self):
            self.action()
            return 1

        def __iter__(self):
            self.action()
            return iter([self])

        def __array__(self, dtype=None):
            self.action()
            return np.array([1])

    calls = {
        "append": lambda v: t.append({"x": v}),
        "extend": lambda v: t.extend({"x": v}),
        "get": t.get, "str": lambda v: t.str(v, "s"), "delete": t.delete,
        "find": lambda v: t.find("x", v), "range": lambda v: t.range("x", None, v),
        "create_table": lambda v: s.create_table("u", v),
        "import_csv": lambda v: s.import_csv(os.devnull, "u", schema=v),
    }
    actions = [s.close, lambda: t.delete(0), lambda: s.create_table("t", [("x", "i64")])]
    for name, call in calls.items():
        for action in actions:
            txn = contextlib.nullcontext() if name == "import_csv" else s.write()
            with pytest.raises(mmstore.BusyError, match="converting"):
                with txn:
                    call(CallsBack(action))
            assert not s.closed, name
    assert [t.get(i) for i in range(3)] == [{"x": 1, "s": "a"}, {"x": 2, "s": "b"},
                                            {"x": 3, "s": "c"}]
    s.verify()
    s.close()


def test_close_from_a_del_inside_a_call(path):
    # A __del__ that closes the Store, run by the garbage collector while a
    # call on it allocates, closed the handle under the call
    # (heap-use-after-free in get under ASan). Now that close() raises
    # BusyError (ignored in __del__, as Python does), and the call finishes.
    import gc
    s = mmstore.open(path, create=True)
    with s.write():
        t = s.create_table("t", [("x", "i64")] + [(f"f{i}", "str") for i in range(20)])
        t.extend({"x": [1, 2], **{f"f{i}": ["abc", "d"] for i in range(20)}})
    s.close()
    refused, want = [], {"x": 2, **{f"f{i}": "d" for i in range(20)}}
    old = gc.get_threshold()
    # Thresholds (k, 1, 1) make every collection a full one: of the whole
    # suite's objects (numpy, pandas, dask...), 19 times over, most of this
    # test's time. Frozen, the collector skips them; what it collects here,
    # the Closer's cycle, is made after the freeze.
    gc.collect()
    gc.freeze()
    try:
        for k in range(1, 20):
            s = mmstore.open(path)
            t = s.table("t")
            inside = [False]

            class Closer:
                def __del__(self, s=s, inside=inside):
                    try:
                        s.close()
                    except mmstore.BusyError:
                        refused.append(inside[0])

            gc.collect()
            a = Closer()
            a.me = a
            del a
            gc.set_threshold(k, 1, 1)  # collect at the call's k-th allocation
            inside[0] = True
            got = t.get(1) if not s.closed else want
            inside[0] = False
            gc.set_threshold(*old)
            gc.collect()
            assert got == want
            s.close()
    finally:
        gc.set_threshold(*old)
        gc.unfreeze()
    assert refused and all(refused)  # some collections ran inside get


def test_other_thread_during_the_pandas_import(path):
    # to_pandas checked the Store (R1), then imported pandas, then began its
    # read transaction: Python code that another thread ran during the
    # import could close the Store (to_pandas then called mms_read_begin on
    # a NULL handle: InvalError "handle is NULL") or begin a read
    # transaction, which to_pandas then took for its own caller's and read
    # inside, unowned (R1, R2). A finder that runs when pandas is imported
    # makes the other thread act at that moment; a child process, so that
    # pandas is not imported yet.
    pytest.importorskip("pandas")
    script = """
        import sys, threading
        import numpy as np
        import mmstore
        s = mmstore.open(sys.argv[1], create=True)
        with s.write():
            t = s.create_table("t", [("a", "i64")]) if "t" not in s.tables() else s.table("t")
            t.extend({"a": np.arange(5)})
        mode = sys.argv[2]
        inside, done = threading.Event(), threading.Event()
        def other():
            if mode == "close":
                s.close()
                inside.set()
            else:
                with s.read():
                    inside.set()
                    done.wait(10)
        class Hook:
            def find_spec(self, name, *args):
                if name == "pandas":
                    threading.Thread(target=other).start()
                    inside.wait(10)
                return None
        sys.meta_path.insert(0, Hook())
        try:
            t.to_pandas()
            print("no error")
        except Exception as e:
            print(type(e).__name__, e)
        done.set()
        """
    out = run_py(script, path, "close")
    assert out.stdout.startswith("ValueError the store is closed"), out.stdout
    out = run_py(script, path, "read")
    assert out.stdout.startswith("BusyError"), out.stdout


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
def test_messages_with_hex_refs_and_floats_are_formatted(path):
    # PyErr_Format knows no %llx nor %g: a bad ref said "0x%llx is not a ref
    # to a record of table %s (use %s.ref(index) ...)", unformatted, and the
    # f32 overflow "(%g)". Now they name the ref, the table and the limit.
    s = mmstore.open(path, create=True)
    with s.write():
        o = s.create_table("o", [("v", "i32")])
        o.append({"v": 1})
        t = s.create_table("t", [("r", "ref", "o"), ("f", "f32")])
        bad = o.ref(0) + 5
        with pytest.raises(ValueError) as e:
            t.append({"r": bad})
        assert str(e.value) == (f"ref field r: {bad:#x} is not a ref to a record of table o "
                                "(use o.ref(index) or (table, index))")
        with pytest.raises(ValueError) as e:
            t.extend({"r": np.array([o.ref(0), bad], dtype=np.uint64)})
        assert str(e.value) == f"column r: value 1 ({bad:#x}) is not a ref to a record of table o"
        with pytest.raises(ValueError) as e:
            t.extend({"f": np.array([1e300])})
        assert "past its range (3.40282e+38)" in str(e.value) and "%" not in str(e.value)
    s.close()


def test_pickling_or_copying_a_handle_says_what_to_do(path):
    # pickle.dumps(store), copy.copy(table) -- a multiprocessing Pool's
    # arguments -- said only "cannot pickle 'mmstore.Store' object". Now
    # the TypeError says to pass the path (and table name) and reopen.
    import copy
    import pickle
    s = mmstore.open(path, create=True)
    with s.write():
        t = s.create_table("t", [("x", "f64")])
        t.append({"x": 1.0})
    for obj, what in ((s, "pass its path"), (t, "the table's name ('t')")):
        for fn in (pickle.dumps, copy.copy, copy.deepcopy):
            with pytest.raises(TypeError, match=re.escape(what)) as e:
                fn(obj)
            assert "mmstore.open" in str(e.value) and repr(s.path) in str(e.value)
    # What they hold can be pickled: a copy of the data.
    assert pickle.loads(pickle.dumps(t.column("x"))).tolist() == [1.0]
    assert pickle.loads(pickle.dumps(t.fields)) == t.fields
    s.close()


@pytest.mark.parametrize("timeout", [None, 60])
def test_ctrl_c_while_waiting_for_another_writer(path, timeout):
    # with s.write(): waited for another process's write transaction in
    # mms_txn_begin, which sleeps again when a signal interrupts it: Ctrl-C
    # did nothing until that writer let go (for ever, for a writer that
    # does not). Now KeyboardInterrupt comes while it waits, the block is
    # never entered, and the Store stays usable. The other writer lets go
    # after 20 s; the old module entered the block then. With a timeout
    # (60 s) the C call waits in slices of at most 100 ms with the signal
    # handlers run between them: the same.
    s = mmstore.open(path, create=True)
    with s.write():
        s.create_table("t", [("x", "i64")])
    out = run_py("""
        import os, signal, subprocess, sys, threading
        import mmstore
        path = sys.argv[1]
        timeout = None if sys.argv[2] == "None" else float(sys.argv[2])
        holder = subprocess.Popen([sys.executable, "-c", "\\n".join([
            "import mmstore, sys, time",
            "s = mmstore.open(sys.argv[1])",
            "w = s.write(); w.__enter__(); print('holding', flush=True); time.sleep(20)"]),
            path], stdout=subprocess.PIPE, text=True)
        assert holder.stdout.readline() == "holding\\n"
        s = mmstore.open(path)
        threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()
        try:
            with s.write(timeout=timeout):
                print("entered")
        except KeyboardInterrupt:
            print("interrupted", s.info()["writer_pid"] == holder.pid)
        holder.kill()
        holder.wait()
        with s.write(timeout=timeout):  # the dead writer's lock is taken over
            s.table("t").append({"x": 1})
        print(len(s.table("t")), repr(s).endswith("txn 2>"))
        """, path, timeout, timeout=60)
    assert out.stdout.split("\n")[:2] == ["interrupted True", "1 True"], out.stdout
    s.close()


def test_ctrl_c_in_a_write_block_says_whether_it_committed(path):
    # A Ctrl-C while the commit of `with s.write():` ran (the GIL released,
    # the C commit not interruptible) came as a KeyboardInterrupt on the
    # line after the block, as one inside the block does, which aborts:
    # committed or not, the caller could not tell. Now the one __exit__
    # sees says .committed (and a note). The signal comes from a timer at
    # 30 points spread over a transaction's time (a durable commit: fsync).
    out = run_py("""
        import json, os, signal, sys, threading, time
        import mmstore
        s = mmstore.open(sys.argv[1], create=True)
        with s.write():
            t = s.create_table("t", [("x", "i64")])
        t0 = time.monotonic()
        for i in range(5):
            with s.write():
                t.append({"x": -1})
        took = (time.monotonic() - t0) / 5
        seen = []
        for i in range(30):
            timer = threading.Timer(took * 3 * i / 30, os.kill, (os.getpid(), signal.SIGINT))
            state, got = [], "done"
            try:
                try:
                    timer.start()
                    with s.write():
                        state.append("in")
                        t.append({"x": i})
                        time.sleep(took)  # as long in the block as in the commit
                    state.append("out")
                finally:
                    timer.join()
                    time.sleep(0.002)
            except KeyboardInterrupt as e:
                got = getattr(e, "committed", "after" if state else "before")
            with s.read():
                seen.append([got, int((t.column("x") == i).sum())])
        print(json.dumps(seen))
        """, path, timeout=120)
    seen = json.loads(out.stdout)
    for got, n in seen:
        assert n == (1 if got in ("done", "after", True) else 0), seen
    assert False in {got for got, _ in seen}, seen  # some came inside the block


def test_a_failed_commit_says_whether_it_may_have_committed(path):
    # A commit whose journal sync failed raised "commit: Input/output
    # error: cannot sync the journal" and nothing more, yet the next open
    # replayed the transaction (mmstore.h: the handle is poisoned, the next
    # open decides). The exception now says so (.committed None and a
    # note); a commit that failed writing the journal says it was aborted.
    s = mmstore.open(path, create=True)
    with s.write():
        s.create_table("t", [("x", "i64")])
    s.close()
    out = run_py("""
        import os, sys
        import mmstore
        s = mmstore.open(sys.argv[1])
        try:
            with s.write():
                s.table("t").append({"x": 1})
            print("committed")
        except OSError as e:
            print(e.errno, e.committed, e.__notes__)
        os._exit(0)  # as a crash: the next open decides
        """, path, env={"MMS_FAULT": "fsync:1:5"})
    assert out.stdout.splitlines() == [
        "5 None ['mmstore: whether the transaction committed is decided when the store is "
        "opened again (close this Store and open it: its handle is poisoned)']"], out.stdout
    s = mmstore.open(path)
    assert len(s.table("t")) in (0, 1)
    s.verify()
    s.close()
    out = run_py("""
        import sys
        import mmstore
        s = mmstore.open(sys.argv[1])
        n = len(s.table("t"))
        try:
            with s.write():
                s.table("t").append({"x": 1})
        except OSError as e:
            print(e.errno, e.committed, e.__notes__)
        with s.write():  # the handle stays usable
            s.table("t").append({"x": 2})
        print(len(s.table("t")) - n)
        """, path, env={"MMS_FAULT": "pwrite:1:28"})
    assert out.stdout.splitlines() == [
        "28 False ['mmstore: the transaction was aborted, nothing of it was applied']", "1"]
