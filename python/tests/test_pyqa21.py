"""Found by a fresh-eyes QA round of the binding (session 21): each test
failed before its fix."""
import os
import signal
import time

import numpy as np
import pytest

import mmstore
from conftest import popen_py, run_py


def _stat(pid):
    """(parent pid, state, start time) of process pid, or None when there
    is no such process."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    rest = text[text.rindex(")") + 2:].split()
    return int(rest[1]), rest[0], int(rest[19])


def _children(pid):
    kids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            st = _stat(int(d))
            if st and st[0] == pid:
                kids.append(int(d))
    return kids


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


def _running(pid, start):
    """Is the process pid that started at start still running (not
    gone, not a zombie, not another process that took its pid)?"""
    st = _stat(pid)
    return st is not None and st[2] == start and st[1] != "Z"


def test_import_csv_tool_dies_with_its_interpreter(path, mms_tool, tmp_path):
    # import_csv ran the tool with posix_spawn: an interpreter SIGKILLed
    # while it ran left the tool running -- finishing the import, or, as
    # here, waiting for ever in open() of a FIFO whose writer never came.
    fifo = str(tmp_path / "rows.csv")
    os.mkfifo(fifo)
    p = popen_py("""
        import sys, mmstore
        s = mmstore.open(sys.argv[1], create=True)
        print("importing", flush=True)
        s.import_csv(sys.argv[2], "t")
    """, path, fifo)
    tool = start = None
    try:
        assert p.stdout.readline() == "importing\n", p.stderr.read()
        deadline = time.monotonic() + 60
        while tool is None and time.monotonic() < deadline:
            for k in _children(p.pid):
                if fifo.encode() in _cmdline(k):    # the tool, exec'ed
                    st = _stat(k)
                    if st:
                        tool, start = k, st[2]
            time.sleep(0.01)
        assert tool is not None, "the tool did not start"
        p.kill()
        p.wait()
        deadline = time.monotonic() + 30
        while _running(tool, start) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _running(tool, start), "the tool outlived the interpreter that ran it"
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        if tool is not None and _running(tool, start):
            os.kill(tool, signal.SIGKILL)


def test_every_call_on_a_table_another_process_dropped_is_noent(path, mms_tool):
    # get, array, column, dtype, ... raised NoentError on a Table whose
    # table another process dropped, but len(t) said 0, live() gave an
    # empty mask, ref(0) and delete(0) an IndexError "out of range (0
    # slots)": a dropped table passed for an empty one.
    import subprocess
    s = mmstore.open(path, create=True)
    with s.write():
        t = s.create_table("t", [("x", "i64"), ("s", "str")])
        t.append({"x": 1, "s": "a"})
    subprocess.run([mms_tool, "drop", path, "t"], check=True, capture_output=True)
    reads = {
        "len": lambda: len(t), "live": t.live, "ref": lambda: t.ref(0),
        "get": lambda: t.get(0), "str": lambda: t.str(0, "s"), "array": t.array,
        "column": lambda: t.column("x"), "missing": lambda: t.missing("x"),
        "dtype": lambda: t.dtype, "fields": lambda: t.fields, "slots": lambda: t.slots,
        "find": lambda: t.find("x", 1), "range": lambda: t.range("x", 0, 2),
    }
    writes = {"delete": lambda: t.delete(0), "append": lambda: t.append({"x": 2}),
              "extend": lambda: t.extend({"x": [2]})}
    for how in ("own", "read"):
        for name, call in reads.items():
            with pytest.raises(mmstore.NoentError, match="dropped"):
                if how == "read":
                    with s.read():
                        call()
                else:
                    call()
    for name, call in writes.items():
        with pytest.raises(mmstore.NoentError, match="dropped"):
            with s.write():
                call()
    assert "dropped" in repr(t)
    assert s.tables() == []
    s.close()


def test_import_csv_inside_a_write_of_another_store_of_this_store_is_refused(path, mms_tool,
                                                                            tmp_path):
    # import_csv refused a call inside a transaction of its own Store, but
    # not inside a write transaction this thread holds through another
    # Store of the same store: the tool's commit then waited for the writer
    # lock for ever, and import_csv for the tool. In a child, which a
    # deadline (not a measure of speed) ends if it hangs.
    csv = tmp_path / "rows.csv"
    csv.write_text("a\n1\n")
    p = run_py("""
        import sys, mmstore
        s = mmstore.open(sys.argv[1], create=True)
        other = mmstore.open(sys.argv[1] + "/")      # another Store, another path
        with other.write():
            other.create_table("u", [("x", "i64")])
            try:
                s.import_csv(sys.argv[2], "t")
            except mmstore.BusyError as e:
                print("refused:", e)
        print(s.tables())
        print(len(s.import_csv(sys.argv[2], "t")))   # outside it, it imports
    """, path, csv, timeout=120, check=False)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("refused: ") and "another Store" in p.stdout, p.stdout
    assert p.stdout.endswith("['u']\n1\n"), p.stdout


def test_a_ref_value_of_the_wrong_type_names_the_field(path):
    # The README: a key (and a value to append) of the wrong type raises
    # TypeError naming the field. A ref field's did for a float or a str,
    # but a list, bytes, a dict, a (table, "x") or a (b"t", 0) gave
    # Python's "'list' object cannot be interpreted as an integer", naming
    # nothing.
    s = mmstore.open(path, create=True)
    with s.write():
        t = s.create_table("t", [("x", "i64")])
        t.append({"x": 1})
        u = s.create_table("u", [("r", "ref", "t")])
    for v in ([], b"t", {}, object(), 1.5, "t", ("t", "x"), ("t", 0.0), (b"t", 0), ("t",),
              ("t", 0, 1)):
        with pytest.raises(TypeError, match="field r"):
            with s.write():
                u.append({"r": v})
        with pytest.raises(TypeError, match="field r"):
            with s.write():
                u.extend({"r": [v]})
    assert len(u) == 0
    s.close()


def test_import_csv_of_a_store_opened_huge_false_gives_the_tool_no_huge(path, mms_tool,
                                                                        tmp_path, monkeypatch):
    # open(huge=False) turns off the 2 MiB advice of bulk appends, import_csv
    # among them (README), but the tool opened its own handle with the
    # default: it advised them. It is told now as the C library reads it,
    # MMS_HUGE=0 (an MMS_HUGE the environment sets wins, as for the Store).
    csv = tmp_path / "rows.csv"
    csv.write_text("a\n1\n")
    seen = tmp_path / "env"
    w = tmp_path / "mms-wrapper"
    w.write_text('#!/bin/sh\necho "MMS_HUGE=${MMS_HUGE-unset}" >> "%s"\nexec "%s" "$@"\n'
                 % (seen, mms_tool))
    w.chmod(0o755)
    monkeypatch.setenv("MMS_TOOL", str(w))
    monkeypatch.delenv("MMS_HUGE", raising=False)
    for i, huge in enumerate((False, True)):
        with mmstore.open(f"{path}{i}", create=True, huge=huge) as s:
            assert len(s.import_csv(str(csv), "t")) == 1
    monkeypatch.setenv("MMS_HUGE", "1")
    with mmstore.open(f"{path}2", create=True, huge=False) as s:
        assert len(s.import_csv(str(csv), "t")) == 1
    assert seen.read_text().split() == ["MMS_HUGE=0", "MMS_HUGE=unset", "MMS_HUGE=1"]


def test_to_pandas_of_no_records_keeps_text_columns_object(path):
    # to_pandas gave str, blob and chars columns as lists, which pandas
    # makes object columns -- but float64 ones when they are empty: a
    # table with no live record gave float64 text columns (.str on them
    # raised AttributeError, a concat changed dtypes).
    pd = pytest.importorskip("pandas")
    s = mmstore.open(path, create=True)
    spec = [("s", "str"), ("b", "blob"), ("c", "chars", 3), ("x", "i8")]
    with s.write():
        t = s.create_table("t", spec)
    want = {"s": np.dtype(object), "b": np.dtype(object), "c": np.dtype(object),
            "x": np.dtype(np.int8)}
    assert t.to_pandas().dtypes.to_dict() == want            # no record
    with s.write():
        t.append({"s": "a", "b": b"b", "c": "c"})
    assert t.to_pandas().dtypes.to_dict() == want
    with s.write():
        t.delete(0)
    df = t.to_pandas()                                        # none live
    assert df.dtypes.to_dict() == want and len(df) == 0
    assert list(df["s"].str.upper()) == []
    s.close()


def test_dask_dataframe_over_a_store_with_no_records(tmp_path):
    # The float64 text columns of an empty to_pandas (above) failed
    # mmstore_dask.dataframe: a shard whose table had no live record
    # raised "field 's' has missing values it had none of".
    pytest.importorskip("dask.dataframe")
    import mmstore_dask
    paths = []
    for i, n in enumerate((2, 0)):
        p = str(tmp_path / f"s{i}.mms")
        paths.append(p)
        with mmstore.open(p, create=True) as s:
            with s.write():
                t = s.create_table("t", [("s", "str"), ("x", "i64")])
                for j in range(n):
                    t.append({"s": "a", "x": j})
    df = mmstore_dask.dataframe(paths, "t").compute(scheduler="sync")
    assert list(df["s"]) == ["a", "a"] and list(df["x"]) == [0, 1]


def test_import_csv_returns_its_table_while_another_process_reads(path, mms_tool, tmp_path):
    # While a read transaction of another process holds commits back, a new
    # read transaction sees the state before them: import_csv, which looked
    # its table up in one after the tool had committed, raised KeyError for
    # a table it had created with every row -- "it raised anything else:
    # none is" (README). It waits now until its commit is seen (the
    # reader ends its transaction once the import has committed, a little
    # later: without the wait the lookup came first).
    csv = tmp_path / "rows.csv"
    csv.write_text("a\n1\n2\n")
    s = mmstore.open(path, create=True)
    reader = popen_py("""
        import sys, time, mmstore
        o = mmstore.open(sys.argv[1], readonly=True)
        with o.read():
            print("in", flush=True)
            while o.info()["committed_txn"] < 1:
                time.sleep(0.01)
            time.sleep(1)
        print(o.tables(), flush=True)
    """, path)
    try:
        assert reader.stdout.readline() == "in\n", reader.stderr.read()
        t = s.import_csv(str(csv), "t")
        assert len(t) == 2 and list(t.column("a")) == [1, 2]
        assert reader.stdout.readline() == "['t']\n"
    finally:
        reader.kill()
        reader.wait()
    s.close()


def test_import_csv_inside_a_read_of_another_store_of_this_store_is_refused(path, mms_tool,
                                                                           tmp_path):
    # The same, the reader being this thread (another Store): its commit
    # could not be seen until the read ends, which it cannot while
    # import_csv waits. Refused before the tool runs, as the C library
    # refuses a wait there (TxnError).
    csv = tmp_path / "rows.csv"
    csv.write_text("a\n1\n")
    s = mmstore.open(path, create=True)
    other = mmstore.open(path)
    with other.read():
        with pytest.raises(mmstore.TxnError, match="another Store"):
            s.import_csv(str(csv), "t")
    assert s.tables() == []
    s.close()
    other.close()


def test_import_csv_says_imported_when_it_fails_after_the_commit(path, mms_tool, tmp_path):
    # "It raised anything else: none is" (README) -- but a Store closed by
    # a signal handler while the tool ran made import_csv raise ValueError
    # after the tool had committed every row, saying nothing of it. Any
    # exception after the commit carries .imported True and its note now.
    import threading
    fifo = str(tmp_path / "rows.csv")
    os.mkfifo(fifo)
    s = mmstore.open(path, create=True)
    closed = threading.Event()

    def close_once_the_tool_runs(signum, frame):
        if not closed.is_set() and any(fifo.encode() in _cmdline(k)
                                       for k in _children(os.getpid())):
            s.close()
            closed.set()

    def write_rows():
        closed.wait()
        with open(fifo, "w") as f:
            f.write("a\n1\n")

    old = signal.signal(signal.SIGALRM, close_once_the_tool_runs)
    writer = threading.Thread(target=write_rows)
    writer.start()
    signal.setitimer(signal.ITIMER_REAL, 0.02, 0.02)
    try:
        with pytest.raises(ValueError, match="closed") as e:
            s.import_csv(fifo, "t")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        closed.set()
        writer.join()
    assert e.value.imported is True
    with mmstore.open(path) as s2:
        assert len(s2.table("t")) == 1


def test_import_csv_store_closed_while_it_waits_to_see_its_commit(path, mms_tool, tmp_path):
    # A signal handler run while import_csv waited (in slices) for another
    # process's reader to let its commit be seen could close the Store: the
    # next slice then called the C library with the handle closed, raising
    # InvalError "handle is NULL" instead of the ValueError of a closed
    # Store. The handler closes it at its second tick after the tool is
    # gone: the first may come at the check right after the tool's exit,
    # the second only in the wait.
    csv = tmp_path / "rows.csv"
    csv.write_text("a\n1\n")
    s = mmstore.open(path, create=True)
    reader = popen_py("""
        import sys, time, mmstore
        o = mmstore.open(sys.argv[1], readonly=True)
        with o.read():
            print("in", flush=True)
            time.sleep(120)
    """, path)
    ticks = []
    # Children of earlier tests (a dask pool's workers) are not the tool.
    others = set(_children(os.getpid()))

    def close_in_the_wait(signum, frame):
        if s.closed or set(_children(os.getpid())) - others:
            return
        if s.info()["committed_txn"] >= 1:
            ticks.append(1)
            if len(ticks) == 2:
                s.close()

    old = signal.signal(signal.SIGALRM, close_in_the_wait)
    try:
        assert reader.stdout.readline() == "in\n", reader.stderr.read()
        signal.setitimer(signal.ITIMER_REAL, 0.02, 0.02)
        with pytest.raises(ValueError, match="closed") as e:
            s.import_csv(str(csv), "t")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        reader.kill()
        reader.wait()
    assert e.value.imported is True
    with mmstore.open(path) as s2:
        assert len(s2.table("t")) == 1


def test_write_store_closed_while_it_waits_for_another_writer(path):
    # The same wait in slices, for the writer lock: a handler that closed
    # the Store made the next slice raise InvalError "handle is NULL".
    s = mmstore.open(path, create=True)
    writer = popen_py("""
        import sys, time, mmstore
        o = mmstore.open(sys.argv[1])
        with o.write():
            print("in", flush=True)
            time.sleep(120)
    """, path)

    def close(signum, frame):
        if not s.closed:
            s.close()

    old = signal.signal(signal.SIGALRM, close)
    try:
        assert writer.stdout.readline() == "in\n", writer.stderr.read()
        signal.setitimer(signal.ITIMER_REAL, 0.02, 0.02)
        with pytest.raises(ValueError, match="closed"):
            with s.write():
                pass
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        writer.kill()
        writer.wait()


def test_wait_store_closed_while_it_waits_for_a_commit(path):
    # And in wait(): a handler that closed the Store made the next slice
    # raise InvalError "handle is NULL".
    s = mmstore.open(path, create=True)

    def close(signum, frame):
        if not s.closed:
            s.close()

    old = signal.signal(signal.SIGALRM, close)
    signal.setitimer(signal.ITIMER_REAL, 0.02, 0.02)
    try:
        with pytest.raises(ValueError, match="closed"):
            s.wait(s.txn)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def test_import_csv_failure_is_seen_with_sigchld_ignored(path, mms_tool, tmp_path):
    # With SIGCHLD ignored (a daemon's habit) the kernel reaps the tool
    # itself: import_csv's waitpid failed (ECHILD), its status stayed 0,
    # and a tool that refused a bad row and imported nothing passed for
    # one that imported every row -- import_csv returned the Table. The
    # status is lost then: it raises, with .imported None (not known).
    csv = tmp_path / "rows.csv"
    csv.write_text("a\n1\nzz\n")
    s = mmstore.open(path, create=True)
    with s.write():
        t = s.create_table("t", [("a", "i64")])
    old = signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    try:
        for skip_bad, rows in ((False, 0), (True, 1)):
            with pytest.raises(mmstore.Error, match="not known") as e:
                s.import_csv(str(csv), "t", skip_bad=skip_bad)
            assert e.value.imported is None
            assert len(t) == rows
    finally:
        signal.signal(signal.SIGCHLD, old)
    s.close()


def test_import_csv_huge_false_with_mms_huge_empty(path, mms_tool, tmp_path, monkeypatch):
    # An empty MMS_HUGE is unset to the C library: the Store opened with
    # huge=False had no huge advice, but import_csv, seeing the variable
    # set, passed it on as it was instead of MMS_HUGE=0, so the tool (which
    # also reads empty as unset) advised 2 MiB pages.
    csv = tmp_path / "rows.csv"
    csv.write_text("a\n1\n")
    seen = tmp_path / "env"
    w = tmp_path / "mms-wrapper"
    w.write_text('#!/bin/sh\necho "MMS_HUGE=${MMS_HUGE-unset}" >> "%s"\nexec "%s" "$@"\n'
                 % (seen, mms_tool))
    w.chmod(0o755)
    monkeypatch.setenv("MMS_TOOL", str(w))
    monkeypatch.setenv("MMS_HUGE", "")
    with mmstore.open(path, create=True, huge=False) as s:
        assert len(s.import_csv(str(csv), "t")) == 1
    assert seen.read_text().split() == ["MMS_HUGE=0"]


def test_import_csv_wait_does_not_move_on_to_later_commits(path, mms_tool, tmp_path):
    # import_csv waited to see its commit in slices, each a new
    # mms_read_begin_latest: one begun after a later commit of another
    # process waited for that one too. Here, between two slices, the
    # reader that held the import back ends (the import is published),
    # another begins, and another writer commits: the next slice waited
    # for that commit, held back by the new reader -- for ever, though
    # the import was seen. In a child, which the deadline ends if it hangs.
    csv = tmp_path / "rows.csv"
    csv.write_text("a\n1\n")
    p = run_py("""
        import os, signal, subprocess, sys
        import mmstore
        path, csv = sys.argv[1], sys.argv[2]
        code = ("import sys, mmstore\\n"
                "o = mmstore.open(sys.argv[1])\\n"
                "with o.read():\\n"
                "    print('in', flush=True)\\n"
                "    sys.stdin.readline()\\n"
                "print('out', flush=True)\\n"
                "sys.stdin.readline()\\n")
        def reader():
            r = subprocess.Popen([sys.executable, "-u", "-c", code, path], text=True,
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            assert r.stdout.readline() == "in\\n"
            return r
        s = mmstore.open(path, create=True)
        r1 = reader()
        readers = [r1]
        ticks = []

        def children():
            kids = []
            for d in os.listdir("/proc"):
                try:
                    with open(f"/proc/{d}/stat") as f:
                        t = f.read()
                except OSError:
                    continue
                if int(t[t.rindex(")") + 2:].split()[1]) == os.getpid():
                    kids.append(int(d))
            return kids

        busy = []

        def between_slices(signum, frame):
            # Python runs a handler inside another (at its next bytecode):
            # one that came while this one scanned /proc would count twice.
            if busy:
                return
            busy.append(1)
            try:
                tick()
            finally:
                busy.pop()

        def tick():
            if len(ticks) == 2 or any(k not in [r.pid for r in readers]
                                      for k in children()):
                return
            if s.info()["committed_txn"] >= 1:
                ticks.append(1)
                if len(ticks) == 2:            # in the wait, not in collect_tool
                    r1.stdin.write("end\\n"); r1.stdin.flush()
                    assert r1.stdout.readline() == "out\\n"   # the import is published
                    readers.append(reader())                  # a reader from now
                    with mmstore.open(path) as w:             # and a later commit
                        with w.write():
                            w.create_table("later", [("x", "i64")])

        signal.signal(signal.SIGALRM, between_slices)
        signal.setitimer(signal.ITIMER_REAL, 0.02, 0.02)
        t = s.import_csv(csv, "t")
        signal.setitimer(signal.ITIMER_REAL, 0)
        print(len(t), len(ticks))
        for r in readers:
            r.kill()
    """, path, csv, timeout=60, check=False)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "1 2\n"
