"""Found by a fresh-eyes QA round of the binding as a data scientist uses
it (session 20): each test failed before its fix."""
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
