"""Helpers for the record tests run by pytest (ctest: McapInteropTest, RecordKillTest,
RecordPythonTest): the shmring CLI, shmring's MCAP dump, the reference reader in node, channel
names the suite's leak check covers, and recorders and publishers as real processes.

Environment (set by tests/record/CMakeLists.txt): SHMRING_CLI, SHMRING_MCAP_DUMP, and for the
interop test SHMRING_MCAP_NODE_DIR (where `npm install` put @mcap/core) and SHMRING_NODE."""

import itertools
import json
import os
import signal
import subprocess
import time

import pytest

SHMRING = os.environ.get("SHMRING_CLI")
DUMP = os.environ.get("SHMRING_MCAP_DUMP")
NODE = os.environ.get("SHMRING_NODE", "node")
NODE_DIR = os.environ.get("SHMRING_MCAP_NODE_DIR")
HERE = os.path.dirname(os.path.abspath(__file__))
SCALE = float(os.environ.get("SHMRING_RECORD_SCALE", "1"))
_counter = itertools.count()


def need(path, what):
    if not path or not os.path.exists(path):
        pytest.skip(f"{what} is not set (run through ctest)")


@pytest.fixture
def names():
    """Makes channel names no other test uses ("t_<pid>_r<n>_<label>": the leak check covers
    them); removes what is left of them afterwards."""
    made = []

    def make(label):
        name = f"t_{os.getpid()}_r{next(_counter)}_{label}"
        made.append(name)
        return name

    yield make
    if SHMRING:
        for name in made:
            subprocess.run([SHMRING, "rm", name], capture_output=True)


@pytest.fixture
def procs():
    """Processes started by a test, killed and reaped at its end whatever happens."""
    started = []

    def start(args, **popen):
        popen.setdefault("stdout", subprocess.PIPE)
        popen.setdefault("stderr", subprocess.PIPE)
        p = subprocess.Popen([str(a) for a in args], **popen)
        started.append(p)
        return p

    yield start
    for p in started:
        if p.poll() is None:
            p.kill()
        p.wait()
        for stream in (p.stdin, p.stdout, p.stderr):
            if stream:
                stream.close()


def dump(path, *extra):
    """Messages, metadata and summary as shmring's reader sees them (mcap_dump)."""
    need(DUMP, "SHMRING_MCAP_DUMP")
    out = subprocess.run([DUMP, path, *extra], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return parse_lines(out.stdout)


def reference_read(path):
    """The same as the reference reader (@mcap/core in node) sees it."""
    need(NODE_DIR, "SHMRING_MCAP_NODE_DIR")
    env = dict(os.environ, NODE_PATH=os.path.join(NODE_DIR, "node_modules"))
    out = subprocess.run([NODE, os.path.join(HERE, "interop", "mcap_interop.js"), "read", path],
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    return parse_lines(out.stdout)


def reference_write(path, mode):
    need(NODE_DIR, "SHMRING_MCAP_NODE_DIR")
    env = dict(os.environ, NODE_PATH=os.path.join(NODE_DIR, "node_modules"))
    out = subprocess.run([NODE, os.path.join(HERE, "interop", "mcap_interop.js"), "write", path, mode],
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr


def parse_lines(text):
    """{"messages": [(topic, sequence, log_time, publish_time, data bytes)], "metadata": {name:
    entries}, "summary": {...}} from the JSON lines of mcap_dump / mcap_interop.js."""
    messages, metadata, summary = [], {}, {}
    for line in text.splitlines():
        obj = json.loads(line)
        if "message" in obj:
            m = obj["message"]
            messages.append((m["topic"], int(m["sequence"]), int(m["log_time"]), int(m["publish_time"]),
                             bytes.fromhex(m["data"])))
        elif "metadata" in obj:
            metadata[obj["metadata"]["name"]] = obj["metadata"]["entries"]
        elif "summary" in obj:
            summary = obj["summary"]
    return {"messages": messages, "metadata": metadata, "summary": summary}


def wait_for(predicate, timeout=30, what="condition"):
    """Liveness only: polls until predicate() is true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


class Recorder:
    """`shmring record` as a process; its stderr lines are collected as they come."""

    def __init__(self, procs, out, channels, *options):
        need(SHMRING, "SHMRING_CLI")
        self.process = procs([SHMRING, "record", "-o", out, *options, *channels], text=True)
        self.lines = []
        os.set_blocking(self.process.stderr.fileno(), False)

    def _read(self):
        while True:
            try:
                line = self.process.stderr.readline()
            except (IOError, ValueError):
                return
            if not line:
                return
            self.lines.append(line.rstrip("\n"))

    def wait_recording(self, name, timeout=30):
        def seen():
            self._read()
            return any(f"'{name}'" in l and "recording" in l for l in self.lines)
        wait_for(seen, timeout, f"the recorder to record {name}")

    def stop(self, sig=signal.SIGINT, timeout=60):
        self.process.send_signal(sig)
        self.process.wait(timeout=timeout)
        self._read()
        return self.process.returncode


def publisher(procs, kind, name, *extra):
    """`shmring pub NAME --create --kind KIND ...` reading lines from a pipe."""
    need(SHMRING, "SHMRING_CLI")
    return procs([SHMRING, "pub", name, "--create", "--kind", kind, *extra], stdin=subprocess.PIPE,
                 text=True)


def stat(name):
    out = subprocess.run([SHMRING, "stat", name, "--json"], capture_output=True, text=True)
    if out.returncode != 0:
        return None
    return json.loads(out.stdout)


def info(path):
    out = subprocess.run([SHMRING, "record", "info", path, "--json"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)
