"""Fixtures of the mmstore pytest suite: a fresh store path per test, the
mms tool, and a runner for Python code in another process (the subprocess
tests: a second process reading while this one writes, crashes that must
stay in the child)."""
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

# Where the stores live: on tmpfs, as the C tests' (tests/test.h, "Stores
# on tmpfs"): a directory of this run's own in MMS_TEST_SHM (kept), else in
# /dev/shm (removed at the end: it is memory), else pytest's default on the
# disk; --basetemp wins. None of these tests is about what a sync reaches,
# and on the disk the syncs of their commits were a third or more of the
# suite's wall time (release, same sitting, a loaded machine: 104 -> 64 s).
_shm_own = None


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    global _shm_own
    if config.option.basetemp:
        return
    base = os.environ.get("MMS_TEST_SHM")
    if not base:
        try:
            v = os.statvfs("/dev/shm")
        except OSError:
            return
        if v.f_bavail * v.f_frsize < 1 << 30:
            return
        base = "/dev/shm"
    own = os.path.join(base, f"mms-pytest.{os.getpid()}")
    os.makedirs(own, exist_ok=True)
    if base == "/dev/shm":
        _shm_own = own
    config.option.basetemp = own


def pytest_unconfigure(config):
    if _shm_own:
        shutil.rmtree(_shm_own, ignore_errors=True)


@pytest.fixture
def path(tmp_path):
    """A path for a new store (not created yet)."""
    return str(tmp_path / "s.mms")


@pytest.fixture
def mms_tool():
    """The mms command-line tool (ctest sets MMS_TOOL)."""
    tool = os.environ.get("MMS_TOOL")
    if not tool or not os.access(tool, os.X_OK):
        pytest.skip("MMS_TOOL does not name the mms tool")
    return tool


def child_env(extra=None):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    env.update(extra or {})
    return env


def run_py(code, *args, timeout=60, check=True, env=None):
    """Run code in a new interpreter (env: variables to add); return its
    stdout. With check, a non-zero exit (a crash is a negative one) fails
    the test."""
    p = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *map(str, args)],
                       capture_output=True, text=True, timeout=timeout, env=child_env(env))
    if check:
        assert p.returncode == 0, f"child exited {p.returncode}:\n{p.stdout}\n{p.stderr}"
    return p


def popen_py(code, *args):
    """Start code in a new interpreter, stdout piped, line-buffered."""
    return subprocess.Popen([sys.executable, "-u", "-c", textwrap.dedent(code), *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=child_env())
