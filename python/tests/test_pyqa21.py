"""Found by a fresh-eyes QA round of the binding (session 21): each test
failed before its fix."""
import os
import signal
import time

import numpy as np
import pytest

import mmstore
from conftest import popen_py


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
