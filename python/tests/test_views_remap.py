"""Arrays over a table that another process migrates to smaller records or
drops (DESIGN 6b: a view never crashes the interpreter). Another process
cannot be refused as a Store of this process is (rule R4 of pymms.h): this
handle maps the table's new file, or none, at its next transaction, while
an array taken before still points at the old, longer range. Each case
runs in a child interpreter, so that a crash (SIGSEGV) is the child's exit
status, reported here, and not the death of the test run."""
import pytest

from conftest import run_py

# What the other process does, one step per run (argv: path, tool, step).
OTHER = """
import subprocess, sys
import mmstore
path, tool, step = sys.argv[1:4]
if step == "drop":
    subprocess.run([tool, "drop", path, "t"], check=True, capture_output=True)
else:
    s = mmstore.open(path)
    with s.write():
        if step == "migrate":      # 32-byte records to 8-byte ones
            s.create_table("t", [("a", "f64")])
        else:                      # a new table, in t's region if t is gone
            s.create_table("u", [("z", "u8")]).append({"z": 7})
    s.close()
"""

# A holds an array of t (4 f64 fields: 32-byte records, 200 KiB of them),
# has the other process take each step, begins a read transaction after
# each (the handle maps what the header now says: a new file, none, or a
# new table's) and reads the whole old array. What the array shows is the
# region's bytes now (help(mmstore), "Lifetimes"): zeros past the end of
# what the region maps.
HOLDER = """
    import subprocess, sys
    import numpy as np
    import mmstore
    path, tool, steps, other = sys.argv[1], sys.argv[2], sys.argv[3].split(","), sys.argv[4]
    n = 6400
    s = mmstore.open(path, create=True)
    with s.write():
        t = s.create_table("t", [("a", "f64"), ("b", "f64"), ("c", "f64"), ("d", "f64")])
        t.extend({"a": np.arange(n) + 1.0, "b": np.ones(n), "c": np.ones(n), "d": np.ones(n)})
    with s.read():
        a = t.array()
    assert a["a"].sum() == n * (n + 1) / 2
    for step in steps:
        subprocess.run([sys.executable, "-c", other, path, tool, step], check=True)
        with s.read():
            tables = s.tables()
        raw = a.view(np.uint8).reshape(-1).copy()   # every byte of the old array
        print(step, tables, len(raw), int(np.count_nonzero(raw[n * 8:])))  # past t's new end
    if steps == ["migrate"]:
        # The first n * 8 bytes are t's records in their new layout.
        assert (raw[:n * 8].view(np.float64) == np.arange(n) + 1.0).all()
        with s.read():
            assert (t.column("a") == np.arange(n) + 1.0).all()
    if steps == ["drop"]:
        assert not raw.any()
    if steps == ["drop", "create"]:
        assert raw[0] == 7 and not raw[1:].any()    # u took t's region
    s.close()
    print("ok")
    """


@pytest.mark.parametrize("steps, want", [
    ("migrate", ["migrate ['t'] 204800 0"]),
    ("drop", ["drop [] 204800 0"]),
    ("drop,create", ["drop [] 204800 0", "create ['u'] 204800 0"]),
])
def test_array_survives_another_process_shrinking_its_table(path, mms_tool, steps, want):
    p = run_py(HOLDER, path, mms_tool, steps, OTHER, check=False)
    assert p.returncode == 0, f"the holder exited {p.returncode}:\n{p.stdout}\n{p.stderr}"
    assert p.stdout.splitlines() == want + ["ok"]
