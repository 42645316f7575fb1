"""A Table's name follows a rename made by another handle (another
process here, the mms tool): the C table handle finds its table again by
its region at the next transaction and takes the new name; the Table
showed the name it was created with for ever."""
import subprocess

import mmstore


def test_name_follows_a_rename_by_another_process(path, mms_tool):
    s = mmstore.open(path, create=True)
    with s.write():
        t = s.create_table("old", [("x", "i64")])
        t.append({"x": 1})
    assert t.name == "old"
    subprocess.run([mms_tool, "rename", path, "old", "new"], check=True, capture_output=True)
    with s.read():                      # the refresh
        assert s.tables() == ["new"]
        assert t.name == "new"
        assert t.get(0) == {"x": 1}
    assert t.name == "new" and "'new'" in repr(t)
    # Renamed back: the same again.
    subprocess.run([mms_tool, "rename", path, "new", "old"], check=True, capture_output=True)
    with s.read():
        assert t.name == "old"
    s.close()
    assert t.name == "old"              # a closed store's Table keeps its last name
