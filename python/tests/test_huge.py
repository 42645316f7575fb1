"""array(huge=True) and column(name, huge=True): the 2 MiB paging hint
(mms_advise in mmstore.h). A hint changes how pages are mapped, never what
they hold: the same values, the same read-only protection, the same
lifetimes (R3-R5 of python/pymms.h), and the handle keeps working (its
later transactions grow and remap the region the hint split)."""
import gc
import os

import numpy as np
import pytest

import mmstore
from conftest import run_py

N = 1 << 19            # 8 MiB of records (x i64, y f64): several 2 MiB extents


def filled(path, n=N):
    s = mmstore.open(path, create=True)
    with s.write():
        t = s.create_table("t", [("x", "i64"), ("y", "f64"), ("name", "str")])
        t.extend({"x": np.arange(n), "y": np.arange(n) * 0.5})
    return s, t


def vm_flags(addr):
    """The VmFlags of the mapping holding addr (None if not found)."""
    cur = False
    with open("/proc/self/smaps") as f:
        for line in f:
            head = line.split()[0]
            if "-" in head and ":" not in head:
                lo, hi = (int(v, 16) for v in head.split("-"))
                cur = lo <= addr < hi
            elif cur and line.startswith("VmFlags:"):
                return line.split()[1:]
    return None


def handles(path):
    with mmstore.open(path, readonly=True) as o:
        return o.info()["handles"] - 1


def test_same_values_and_readonly(path):
    s, t = filled(path)
    s.close()
    s = mmstore.open(path, readonly=True)
    t = s.table("t")
    with s.read():
        plain_a, plain_x = t.array(), t.column("x")
        a, x, y = t.array(huge=True), t.column("x", huge=True), t.column(name="y", huge=1)
        assert t.column("name", huge=True) == [None] * N     # str fields: a list, as before
    assert np.array_equal(a, plain_a) and np.array_equal(x, plain_x)
    assert np.array_equal(y, np.arange(N) * 0.5) and x.sum() == N * (N - 1) // 2
    for v in (a, x, y, a["y"][::3]):
        assert not v.flags.writeable
        with pytest.raises(ValueError):
            v.flags.writeable = True
        with pytest.raises(ValueError):
            v[0] = 1
    with pytest.raises(TypeError):
        t.column()
    with pytest.raises(TypeError):
        t.column("x", hugepages=True)
    with pytest.raises(KeyError):
        t.column("nope", huge=True)
    if os.path.isdir("/sys/kernel/mm/transparent_hugepage"):
        # The hint is on the records' mapping (Linux's "hg" flag).
        assert "hg" in vm_flags(x.__array_interface__["data"][0])
    # Another process reads the same values, hint or not.
    code = """
        import sys, mmstore
        with mmstore.open(sys.argv[1], readonly=True) as r:
            t = r.table("t")
            with r.read():
                print(float(t.column("y", huge=True).sum()), int(t.column("x")[-1]))
    """
    assert run_py(code, path).stdout.split() == [str(float(y.sum())), str(N - 1)]
    s.close()


def test_lifetimes_after_close(path):
    s, t = filled(path)
    with s.read():
        x = t.column("x", huge=True)
        a = t.array(huge=True)
    s.close()
    assert handles(path) == 1, "the views keep the handle"
    assert x[-1] == N - 1 and a["y"][-1] == (N - 1) * 0.5
    del a
    gc.collect()
    assert handles(path) == 1 and int(x[12345]) == 12345
    del x
    gc.collect()
    assert handles(path) == 0, "the last view closes the handle"


def test_write_handle_keeps_working(path):
    s, t = filled(path)
    with s.read():
        before = t.column("y", huge=True)
    with s.write():
        w = t.array(writable=True, huge=True)
        w["x"][7] = -7
        # Growth past the hinted range: the region grows and is remapped.
        t.extend({"x": np.arange(N, 2 * N), "y": np.arange(N, 2 * N) * 0.5})
    with s.write():
        t.append({"x": 1})
        with pytest.raises(BufferError):        # R5 holds with the hint too
            t.array(writable=True, huge=True)
    with pytest.raises(mmstore.Error):          # outside a write transaction
        t.array(writable=True, huge=True)
    with s.read():
        x = t.column("x", huge=True)
        assert len(x) == 2 * N + 1 and x[7] == -7 and x[2 * N - 1] == 2 * N - 1
        assert np.array_equal(before, t.column("y")[:N])
    s.verify()
    del w, x, before
    s.close()
    with mmstore.open(path, readonly=True) as r:
        r.verify()
        assert r.table("t").column("x", huge=True)[7] == -7


def test_empty_table(path):
    s = mmstore.open(path, create=True)
    with s.write():
        s.create_table("e", [("v", "f64")])
    with s.read():
        e = s.table("e")
        assert len(e.array(huge=True)) == 0 and len(e.column("v", huge=True)) == 0
    s.close()


# ---------------------------------------------------------------------------
# The writer's default (MMS_NOHUGE off): the fresh space an extend of at
# least 2 MiB writes is advised 2 MiB pages (widened to whole 2 MiB), so the
# page cache holds what it appended in 2 MiB folios. Smaller appends are not
# advised; open(huge=False) and MMS_HUGE=0 turn it off, MMS_HUGE=1 wins over
# huge=False; read-only handles advise nothing. Checked on the advice itself (the "hg" VmFlag
# of the mapping), not on timings nor folio sizes (which depend on the file
# system holding the test directory).
# ---------------------------------------------------------------------------
# The child gets vm_flags and fresh_flags as source (fresh() adds them):
# importing them from this module imported pytest as well, most of each
# child's start.
FRESH = """
import sys, mmstore, numpy as np
kw = eval(sys.argv[2])
n = kw.pop("n", 300000)                                # 2.4 MB: past one 2 MiB folio
s = mmstore.open(sys.argv[1], **kw)
if not s.readonly:
    with s.write():
        t = s.create_table("t", [("x", "f64")]) if "t" not in s.tables() else s.table("t")
        t.extend({"x": np.arange(n) * 1.0})
print(" ".join(fresh_flags(s)))
"""


def fresh_flags(s):
    """["table:hg"] if the mapping of the page past the table's last record
    (its fresh space) is advised 2 MiB pages, else ["table:-"]."""
    t = s.table("t")
    with s.read():
        x = t.column("x")
        end = x.__array_interface__["data"][0] + x.nbytes
    flags = vm_flags((end + 4095) & ~4095)
    assert flags is not None and "rd" in flags, f"no file mapping past the records: {flags}"
    return ["table:" + ("hg" if "hg" in flags else "-")]


def fresh(path, env=None, **kw):
    import inspect
    import subprocess
    import sys
    import textwrap
    from conftest import child_env
    e = child_env()
    e.pop("MMS_HUGE", None)
    e.update(env or {})
    code = inspect.getsource(vm_flags) + inspect.getsource(fresh_flags) + textwrap.dedent(FRESH)
    p = subprocess.run([sys.executable, "-c", code, path, repr(kw)],
                       capture_output=True, text=True, timeout=60, env=e)
    assert p.returncode == 0, p.stderr
    return p.stdout.split()


@pytest.mark.skipif(not os.path.isdir("/sys/kernel/mm/transparent_hugepage"),
                    reason="no transparent huge pages: the advice does not exist")
def test_writer_fresh_space_advice(tmp_path):
    d = str(tmp_path)
    # The default: advised, in a new table and appending to one.
    assert fresh(d + "/a.mms", create=True)[0] == "table:hg"
    assert fresh(d + "/a.mms")[0] == "table:hg"
    # Appends under 2 MiB are not.
    assert fresh(d + "/e.mms", create=True, n=200000)[0] == "table:-"
    # Off: open(huge=False), and MMS_HUGE=0 in the environment.
    assert fresh(d + "/b.mms", create=True, huge=False)[0] == "table:-"
    assert fresh(d + "/a.mms", huge=False)[0] == "table:-"
    assert fresh(d + "/c.mms", env={"MMS_HUGE": "0"}, create=True)[0] == "table:-"
    # The environment wins over the flag, either way.
    assert fresh(d + "/d.mms", env={"MMS_HUGE": "1"}, create=True, huge=False)[0] == "table:hg"
    # A read-only handle is not advised (its views take huge=True for that).
    assert fresh(d + "/a.mms", readonly=True)[0] == "table:-"
    # The data is the same whichever way it was written.
    for name in "abcde":
        with mmstore.open(f"{d}/{name}.mms", readonly=True) as r:
            with r.read():
                x = r.table("t").column("x")
                assert len(x) % 100000 == 0 and x[199999] == 199999.0
                del x
            r.verify()
