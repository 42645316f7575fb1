"""store.write(timeout=...): wait at most that many seconds for another
writer (mms_txn_begin_timed), TimeoutError after; timeout=0 is nowait=True;
the wait still ends on Ctrl-C (test_errors.py,
test_ctrl_c_while_waiting_for_another_writer); a writer that commits or dies
meanwhile lets us in. Times are checked only from below: a timeout is never cut short."""
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import mmstore
from conftest import child_env

# Holds a write transaction (one appended row) until its stdin says
# "commit" (then commits) or closes (then it is killed or aborts).
HOLDER = """
import sys, mmstore
s = mmstore.open(sys.argv[1])
w = s.write()
w.__enter__()
s.table("t").append({"x": 7})
print("holding", flush=True)
if sys.stdin.readline() == "commit\\n":
    w.__exit__(None, None, None)
    print("committed", flush=True)
sys.stdin.readline()
"""


def make(path):
    s = mmstore.open(path, create=True)
    with s.write():
        s.create_table("t", [("x", "i64")])
    return s


def hold(path):
    p = subprocess.Popen([sys.executable, "-u", "-c", textwrap.dedent(HOLDER), path],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                         env=child_env())
    assert p.stdout.readline() == "holding\n"
    return p


def release(p):
    p.stdin.close()
    assert p.wait(timeout=60) == 0


def test_timeout_passes_then_raises_timeout_error(path):
    s = make(path)
    h = hold(path)
    try:
        start = time.monotonic()
        with pytest.raises(TimeoutError) as e:
            with s.write(timeout=0.3):
                pass
        assert time.monotonic() - start >= 0.3
        assert "0.3 s" in str(e.value)
        # timeout=0 is nowait=True: BusyError at once.
        with pytest.raises(mmstore.BusyError):
            with s.write(timeout=0):
                pass
        with pytest.raises(mmstore.BusyError):
            with s.write(nowait=True, timeout=0):
                pass
        # The Store is as it was: no transaction, and it reads.
        with s.read():
            assert len(s.table("t")) == 0
    finally:
        release(h)
    with s.write(timeout=30):
        s.table("t").append({"x": 1})
    assert len(s.table("t")) == 1
    s.close()


def test_writer_commits_within_the_timeout(path):
    s = make(path)
    h = hold(path)
    h.stdin.write("commit\n")
    h.stdin.flush()
    with s.write(timeout=60):           # waits for the commit, then gets in
        assert s.table("t").get(0) == {"x": 7}
        s.table("t").append({"x": 8})
    assert h.stdout.readline() == "committed\n"
    release(h)
    assert [s.table("t").get(i)["x"] for i in range(2)] == [7, 8]
    s.close()


def test_writer_killed_while_we_wait(path):
    s = make(path)
    h = hold(path)
    threading.Timer(0.3, h.kill).start()
    with s.write(timeout=60):           # the dead writer's lock is taken over
        assert len(s.table("t")) == 0   # its row was never committed
        s.table("t").append({"x": 9})
    h.wait()
    h.stdin.close()
    assert s.table("t").get(0) == {"x": 9}
    s.verify()
    s.close()


def test_bad_timeouts(path):
    s = make(path)
    for bad in (-1, -0.5, float("nan")):
        with pytest.raises(ValueError, match="timeout"):
            s.write(timeout=bad)
    with pytest.raises(TypeError):
        s.write(timeout="1")
    with pytest.raises(ValueError, match="nowait"):
        s.write(nowait=True, timeout=1)
    with s.write(timeout=None):         # None: for ever, as without it
        s.table("t").append({"x": 1})
    with s.write(timeout=5):
        s.table("t").append({"x": 2})
    assert len(s.table("t")) == 2
    s.close()

