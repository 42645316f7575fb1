"""Found by a fresh-eyes QA round of the binding as a data scientist uses
it (session 20): each test failed before its fix."""
import subprocess

import numpy as np
import pytest

import mmstore
from conftest import run_py


def test_create_table_from_a_dtype_numpy_sizes_past_2_gib(path):
    # numpy keeps a structured dtype's itemsize in a C int: a field at
    # offset 2**31 - 8 makes it -2**31. create_table read that as a failed
    # attribute lookup and returned NULL with no exception: SystemError.
    dt = np.dtype({"names": ["a"], "formats": ["i8"], "offsets": [2**31 - 8]})
    s = mmstore.open(path, create=True)
    with pytest.raises(ValueError, match="itemsize"):
        with s.write():
            s.create_table("t", dt)
    assert s.tables() == []
    s.close()


def test_table_of_a_name_another_process_dropped_is_a_key_error(path, mms_tool):
    # Store.table(name) answered from its cache while the cached handle
    # still had that name, which a dropped table's handle keeps: after
    # another process dropped t, s.table("t") gave the dead Table (0 slots,
    # every call on it NoentError) while s.tables() listed nothing.
    s = mmstore.open(path, create=True)
    with s.write():
        t = s.create_table("t", [("x", "i64")])
        t.append({"x": 1})
    assert s.table("t") is t
    subprocess.run([mms_tool, "drop", path, "t"], check=True, capture_output=True)
    with pytest.raises(KeyError):
        s.table("t")                  # no transaction of this handle since the drop
    assert s.tables() == []
    with pytest.raises(KeyError):
        s.table("t")
    with s.write():                   # made again: still one Table per table
        assert s.create_table("t", [("y", "f64")]) is t
    assert s.table("t") is t and t.fields[0].name == "y"
    s.close()
