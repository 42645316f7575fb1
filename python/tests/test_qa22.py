"""qa22: a writer killed (a Python one inside `with s.write():`, or the C
tool in its commit) while a Python process is inside `with s.read():`.
Since 14b7a16 the next writer takes the dead writer's commits over as its
backlog without waiting for readers (include/mmstore.h, mms_txn_begin and
"Read transactions"): a Python writer's `with s.write():` and import_csv
begin at once, the reader's state does not move, and once it leaves every
commit reaches everyone, wait() in another process included. Hangs are
caught by 60 s subprocess timeouts (no other timing)."""
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import mmstore
from conftest import child_env, popen_py, run_py

HANG = 60

# Commits n times 10 rows (x = len .. len + 9) to table t, then dies as
# argv[3] says: "inside": SIGKILL inside `with s.write():` after adding 5
# rows of -1; "nosync": the same in MMS_NOSYNC (its commits not synced);
# MMS_CRASH in its environment kills it inside a commit instead.
PY_WRITER = """
import os, signal, sys, numpy as np, mmstore
s = mmstore.open(sys.argv[1], nosync=sys.argv[3] == "nosync")
t = s.table("t")
for i in range(int(sys.argv[2])):
    with s.write():
        k = len(t)
        t.extend({"x": np.arange(k, k + 10)})
    print("committed", s.txn, flush=True)
with s.write():
    t.extend({"x": np.full(5, -1)})
    os.kill(os.getpid(), signal.SIGKILL)
"""

# The next writer: one commit of 10 rows after what it finds; prints the
# count it found.
NEXT_WRITER = """
import sys, numpy as np, mmstore
s = mmstore.open(sys.argv[1])
t = s.table("t")
with s.write():
    k = len(t)
    t.extend({"x": np.arange(k, k + 10)})
print(k, s.txn, flush=True)
s.close()
"""


def make(path, n=10):
    s = mmstore.open(path, create=True)
    with s.write():
        t = s.create_table("t", [("x", "i64")])
        t.extend({"x": np.arange(n)})
    s.close()


def kill_py_writer(path, n, how="inside", crash=None):
    p = run_py(PY_WRITER, path, n, how, check=False, timeout=HANG,
               env={"MMS_CRASH": crash} if crash else None)
    assert p.returncode == -signal.SIGKILL, f"writer: {p.returncode}\n{p.stdout}\n{p.stderr}"
    return p.stdout.count("committed")


def whole(t, n):
    """Table t holds x = 0 .. n - 1, in order (inside a transaction)."""
    assert len(t) == n
    assert (t.column("x") == np.arange(n)).all()


def next_writer(path):
    p = run_py(NEXT_WRITER, path, timeout=HANG)   # TimeoutExpired: it waits for the reader
    found, txn = map(int, p.stdout.split())
    return found, txn


@pytest.mark.parametrize("how,crash,made", [
    ("inside", None, 40),                                   # 3 commits, killed in a 4th txn
    ("nosync", None, 40),                                   # the same, none synced
    ("inside", "commit.journal_synced:3", 40),              # its 3rd commit made, not counted
    ("inside", "commit.journal_write:3", 30),               # its 3rd commit not made
])
def test_python_writer_killed_reader_inside_next_writer_begins(path, how, crash, made):
    make(path)
    s = mmstore.open(path, readonly=True)
    t = s.table("t")
    with s.read():
        a = t.column("x")
        snapshot = a.copy()
        kill_py_writer(path, 3, how, crash)
        found, txn = next_writer(path)
        assert found == made                               # every commit the journal holds
        whole(t, 10)                                       # this state never moved
        assert (a == snapshot).all()
        assert s.info()["published_txn"] == 1
        assert s.info()["committed_txn"] == txn
    with s.read():                                         # leaving applied them
        whole(t, made + 10)
        assert s.txn == txn
    s.verify()
    s.close()


def test_c_tool_killed_in_its_commit_python_writer_begins(path, mms_tool, tmp_path):
    # The C writer: `mms import` appending 100 rows, killed after its
    # journal sync, before its count (MMS_CRASH).
    make(path)
    csv = tmp_path / "rows.csv"
    csv.write_text("x\n" + "".join(f"{i}\n" for i in range(10, 110)))
    s = mmstore.open(path, readonly=True)
    t = s.table("t")
    with s.read():
        p = subprocess.run([mms_tool, "import", path, "t", str(csv)], capture_output=True,
                           text=True, timeout=HANG,
                           env=child_env({"MMS_CRASH": "commit.journal_synced:1"}))
        assert p.returncode == -signal.SIGKILL, p.stderr
        found, txn = next_writer(path)
        assert found == 110 and txn == 3
        whole(t, 10)
    with s.read():
        whole(t, 120)
    s.verify()
    s.close()


def test_import_csv_after_a_killed_writer_with_a_reader_inside(path, mms_tool, tmp_path):
    # A reader in another process inside; the writer killed inside its
    # transaction; import_csv (this process) begins without waiting for the
    # reader, commits, and waits to see its commit -- which comes when the
    # reader, seeing that commit counted, leaves. Its table holds the dead
    # writer's rows and its own.
    make(path)
    csv = tmp_path / "rows.csv"
    csv.write_text("x\n" + "".join(f"{i}\n" for i in range(50, 70)))
    reader = popen_py("""
        import sys, time, numpy as np, mmstore
        o = mmstore.open(sys.argv[1], readonly=True)
        t = o.table("t")
        with o.read():
            print("in", flush=True)
            while o.info()["committed_txn"] < 6:           # 1 + 3 + the next writer's + import
                time.sleep(0.01)
            assert len(t) == 10 and (t.column("x") == np.arange(10)).all()
        print("out", flush=True)
    """, path)
    s = None
    try:
        assert reader.stdout.readline() == "in\n", reader.stderr.read()
        kill_py_writer(path, 3)
        found, txn = next_writer(path)                     # a writer first: 40 rows, txn 5
        assert (found, txn) == (40, 5)
        s = mmstore.open(path)
        t = s.import_csv(str(csv), "t")
        assert reader.stdout.readline() == "out\n", reader.stderr.read()
        with s.read():
            whole(t, 70)
    finally:
        reader.kill()
        reader.wait()
    s.verify()
    s.close()


def test_import_csv_right_after_a_writer_killed_in_its_commit(path, mms_tool, tmp_path):
    # The same with no writer in between: import_csv's tool is the next
    # writer after a Python writer killed after its journal sync.
    make(path)
    csv = tmp_path / "rows.csv"
    csv.write_text("x\n" + "".join(f"{i}\n" for i in range(40, 60)))
    reader = popen_py("""
        import sys, time, mmstore
        o = mmstore.open(sys.argv[1], readonly=True)
        with o.read():
            print("in", flush=True)
            while o.info()["committed_txn"] < 5:           # 1 + 3 (the last uncounted) + import
                time.sleep(0.01)
            print(len(o.table("t")), flush=True)
    """, path)
    s = None
    try:
        assert reader.stdout.readline() == "in\n", reader.stderr.read()
        kill_py_writer(path, 3, crash="commit.journal_synced:3")
        s = mmstore.open(path)
        t = s.import_csv(str(csv), "t")
        assert reader.stdout.readline() == "10\n", reader.stderr.read()
        with s.read():
            whole(t, 60)
    finally:
        reader.kill()
        reader.wait()
    s.verify()
    s.close()


WAITER = """
import sys, mmstore
w = mmstore.open(sys.argv[1], readonly=True)
txn = w.txn
print("waiting", txn, flush=True)
target = int(sys.argv[2])
try:
    while txn < target:
        txn = w.wait(txn, timeout=%d)
except TimeoutError:
    with w.read():                                         # a new transaction shows it
        print("wait timed out at txn", txn, "where a read shows txn", w.txn, flush=True)
    sys.exit(1)
with w.read():
    print(txn, len(w.table("t")), flush=True)
""" % HANG


@pytest.mark.parametrize("how,crash,made", [
    ("inside", None, 40),
    ("nosync", None, 40),
    ("inside", "commit.journal_synced:3", 40),
])
def test_wait_in_another_process_sees_the_dead_writers_commits(path, how, crash, made):
    # No next writer: the reader (this process) leaves, and a waiter in
    # another process must see every commit the dead writer made.
    # FAILS (after 60 s) with commit.journal_synced: mms_wait never takes
    # over a dead writer's last commit (written and synced, not counted),
    # which any new read transaction takes over and shows (mms__pin,
    # mms__pin_stuck); the waiter times out one commit behind.
    make(path)
    s = mmstore.open(path, readonly=True)
    target = made // 10                                    # txn of the last commit made
    waiter = popen_py(WAITER, path, target)
    try:
        assert waiter.stdout.readline().split()[0] == "waiting", waiter.stderr.read()
        with s.read():
            kill_py_writer(path, 3, how, crash)
            assert len(s.table("t")) == 10
        out, err = waiter.communicate(timeout=2 * HANG)
        assert waiter.returncode == 0, out + err
        assert out.split() == [str(target), str(made)]
    finally:
        waiter.kill()
        waiter.wait()
    with s.read():
        whole(s.table("t"), made)
    s.close()


def _seal(path):
    os.chmod(path, 0o755)
    for f in os.listdir(path):
        os.chmod(os.path.join(path, f), 0o644)


@pytest.fixture
def open_path():
    """A store path that other users may reach (pytest's tmp_path is not):
    in a directory of its own under /tmp, 0755."""
    import shutil
    import tempfile
    d = tempfile.mkdtemp(prefix="qa22-", dir="/tmp")
    os.chmod(d, 0o755)
    yield os.path.join(d, "s.mms")
    shutil.rmtree(d)


@pytest.mark.skipif(os.geteuid() != 0, reason="the reader drops to another uid (needs root)")
def test_import_csv_with_an_unslotted_reader_inside_after_a_killed_writer(open_path, mms_tool):
    # The reader may not write the store (nobody: no slot, it pins with a
    # lock on a byte); the writer dies in its commit after its journal
    # sync; import_csv begins at once (its tool takes the dead writer's
    # commit over), and once the reader leaves -- it cannot apply -- the
    # Store waiting in import_csv applies and sees its commit.
    path = open_path
    make(path)
    _seal(path)
    csv = path + ".csv"
    with open(csv, "w") as f:
        f.write("x\n" + "".join(f"{i}\n" for i in range(40, 60)))
    reader = subprocess.Popen([sys.executable, "-u", "-c", textwrap.dedent("""
        import os, sys, time, numpy as np, mmstore
        os.setgroups([]); os.setgid(65534); os.setuid(65534)
        o = mmstore.open(sys.argv[1], readonly=True)
        t = o.table("t")
        with o.read():
            print("in", flush=True)
            sys.stdin.readline()
            assert len(t) == 10 and (t.column("x") == np.arange(10)).all()
        with o.read():
            print(len(t), flush=True)
    """), path], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=child_env())
    s = None
    try:
        assert reader.stdout.readline() == "in\n", reader.stderr.read()
        kill_py_writer(path, 3, crash="commit.journal_synced:3")
        s = mmstore.open(path)
        got = []
        th = threading.Thread(target=lambda: got.append(s.import_csv(str(csv), "t")))
        th.start()
        # The tool commits (txn 5) while the reader stays inside.
        with mmstore.open(path, readonly=True) as o:
            deadline = time.monotonic() + HANG
            while o.info()["committed_txn"] < 5 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert o.info()["committed_txn"] == 5, "import_csv's tool did not commit"
        reader.stdin.write("go\n")
        reader.stdin.flush()
        th.join(HANG)
        assert not th.is_alive(), "import_csv still waits, 60 s after the reader left"
        assert len(got) == 1
        out = reader.stdout.readline()
        assert int(out) in (10, 60), out + reader.stderr.read()
        with s.read():
            whole(s.table("t"), 60)
    finally:
        reader.kill()
        reader.wait()
    s.verify()
    s.close()
