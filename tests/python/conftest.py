"""Fixtures for the Python package's tests: unique channel names (cleaned up), the C++ interop
peer, and a way to run Python code in a separate process."""

import itertools
import os
import subprocess
import sys
import textwrap

import pytest

import shmring

_counter = itertools.count()


@pytest.fixture
def name():
    """A channel name no other test uses ("t_<pid>_py<n>", as the C++ tests name theirs, so the
    suite's leak check covers it); removed afterwards if it is still there."""
    channel = f"t_{os.getpid()}_py{next(_counter)}"
    yield channel
    try:
        shmring.remove_channel(channel)
    except FileNotFoundError:
        pass
    # What a child that exited with endpoints or segments still attached left (a daemon thread
    # held them): the channel's segment and the tests' "<name>_seg*" segments, by key.
    for key in ["chan." + channel] + [f"{channel}_seg{i}" for i in range(8)] + [channel + "_seg"]:
        shmring.SharedMemory(key).destroy(shmring.DestroyMode.FORCE_NO_WAIT)


@pytest.fixture
def peer():
    """The C++ interop peer (tests/python/interop_peer.cc)."""
    path = os.environ.get("SHMRING_INTEROP_PEER")
    if not path or not os.path.exists(path):
        pytest.skip("SHMRING_INTEROP_PEER is not set (run through ctest)")
    return path


def python_process(code, *args, **popen):
    """Starts `code` (dedented) in a new Python process with the same package on its path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *map(str, args)],
                            env=env, **popen)


def run_python(code, *args, timeout=120):
    """Runs `code` (dedented) in a new Python process and returns the CompletedProcess (stdout and
    stderr as text). A crash (SIGSEGV, SIGABRT) shows as a negative returncode: the test fails
    instead of the test run dying."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=timeout)


def assert_clean_exit(result, expected_stdout=None):
    """The child exited with 0 (no signal), and printed `expected_stdout` if given."""
    assert result.returncode == 0, (
        f"child exited with {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}")
    if expected_stdout is not None:
        assert result.stdout.strip() == expected_stdout, result.stdout + result.stderr


@pytest.fixture
def spawn():
    started = []

    def start(code, *args, **popen):
        process = python_process(code, *args, **popen)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait()
