"""Two simulated hosts for the bridge tests: network namespaces A and B joined by a veth pair
(10.77.0.1 and 10.77.0.2), each running its own bridge and local programs. /dev/shm is shared, so
each host uses its own channel names (the import side maps "remote=local").

Needs root (CI runs as root). Without namespaces the tests say so and use loopback for both
hosts, unless SHMRING_BRIDGE_REQUIRE_NETNS=1 (set by tests/run_all.sh as root), which fails them.
Traffic stays inside the test's namespaces (or loopback); namespaces and channels are removed.
"""

import glob
import itertools
import json
import os
import signal
import subprocess
import threading
import time

import pytest

SHMRING = os.environ.get("SHMRING_CLI")
# Sanitizer builds run the same scenarios with fewer messages (SHMRING_BRIDGE_SCALE=0.1).
SCALE = float(os.environ.get("SHMRING_BRIDGE_SCALE", "1"))


def scaled(n, least=1000):
    return max(least, int(n * SCALE))
PEER = os.environ.get("SHMRING_BRIDGE_PEER")
_counter = itertools.count()
_ports = itertools.count(23000 + (os.getpid() % 500) * 20)


def run(*cmd, check=True):
    return subprocess.run(cmd, check=check, capture_output=True, text=True)


class Host:
    """One simulated host: a namespace (or none) and its addresses (IPv4, IPv6)."""

    def __init__(self, label, netns, address, address6):
        self.label = label
        self.netns = netns
        self.address = address
        self.address6 = address6

    def prefix(self):
        return ["ip", "netns", "exec", self.netns] if self.netns else []

    def start(self, args, **popen):
        # `ip netns exec` execs the command: the pid is the program's, so kill -9 reaches it.
        return subprocess.Popen(self.prefix() + list(map(str, args)), stdout=subprocess.PIPE,
                                stderr=popen.pop("stderr", subprocess.PIPE), text=True, **popen)

    def run(self, args, timeout=60):
        return subprocess.run(self.prefix() + list(map(str, args)), capture_output=True, text=True,
                              timeout=timeout)


class Network:
    def __init__(self):
        tag = f"{os.getpid() % 100000}"
        self.ns = [f"srbA{tag}", f"srbB{tag}"]
        self.veth = [f"srA{tag}", f"srB{tag}"]
        self.fallback = None
        try:
            for ns in self.ns:
                run("ip", "netns", "add", ns)
            run("ip", "link", "add", self.veth[0], "type", "veth", "peer", "name", self.veth[1])
            for ns, dev, addr, addr6 in zip(self.ns, self.veth, ["10.77.0.1/24", "10.77.0.2/24"],
                                            ["fd77::1/64", "fd77::2/64"]):
                run("ip", "link", "set", dev, "netns", ns)
                run("ip", "-n", ns, "addr", "add", addr, "dev", dev)
                # nodad: usable at once (duplicate address detection would hold it back ~1 s)
                run("ip", "-n", ns, "-6", "addr", "add", addr6, "dev", dev, "nodad")
                run("ip", "-n", ns, "link", "set", dev, "up")
                run("ip", "-n", ns, "link", "set", "lo", "up")
            self.a = Host("A", self.ns[0], "10.77.0.1", "fd77::1")
            self.b = Host("B", self.ns[1], "10.77.0.2", "fd77::2")
        except (subprocess.CalledProcessError, FileNotFoundError) as e:
            self.close()
            detail = e.stderr.strip() if isinstance(e, subprocess.CalledProcessError) else str(e)
            self.fallback = f"network namespaces unavailable ({detail}); using loopback"
            self.a = Host("A", None, "127.0.0.1", "::1")
            self.b = Host("B", None, "127.0.0.1", "::1")

    def link(self, up):
        """Cuts (or restores) the link between the hosts: the veth on host A goes down (up)."""
        if self.fallback:
            pytest.skip("link cut needs network namespaces")
        run("ip", "-n", self.ns[0], "link", "set", self.veth[0], "up" if up else "down")

    def close(self):
        for ns in self.ns:
            run("ip", "netns", "del", ns, check=False)  # takes its end of the veth pair with it


@pytest.fixture(scope="session")
def net():
    if not SHMRING or not PEER:
        pytest.skip("SHMRING_CLI / SHMRING_BRIDGE_PEER not set (run through ctest)")
    network = Network()
    if network.fallback:
        if os.environ.get("SHMRING_BRIDGE_REQUIRE_NETNS") == "1":
            pytest.fail(network.fallback)
        print("\n" + network.fallback)
    yield network
    network.close()


class Bridge:
    """A `shmring bridge` process on a host, with its latest --json status."""

    def __init__(self, host, args, pid_namespace=False):
        self.host = host
        self.args = list(args)
        # In its own PID namespace too (as in a container that shares only /dev/shm): it sees
        # itself as pid 1, and no peer can see its pid.
        # Signals go to the bridge itself (unshare does not pass them on; see target()).
        self.wrapper = ["unshare", "--pid", "--fork", "--kill-child"] if pid_namespace else []
        self.status = None
        self.log = []
        self.peak_heap_kb = 0  # the largest RssAnon seen (sampled every 50 ms)
        self.start()

    def start(self):
        self.status = None
        self.process = self.host.start([*self.wrapper, SHMRING, "bridge", *self.args, "--json", "--interval", "100ms"])
        threading.Thread(target=self._read, args=(self.process,), daemon=True).start()
        threading.Thread(target=self._read_log, args=(self.process,), daemon=True).start()
        threading.Thread(target=self._sample_memory, args=(self.process,), daemon=True).start()

    def _sample_memory(self, process):
        """The bridge's anonymous memory (heap, libzmq's queues): its buffers, not the channels it maps."""
        while process.poll() is None:
            pid = self.target()
            try:
                with open(f"/proc/{pid}/status") as f:
                    for line in f:
                        if line.startswith("RssAnon:"):
                            self.peak_heap_kb = max(self.peak_heap_kb, int(line.split()[1]))
            except (OSError, TypeError, ValueError):
                pass
            time.sleep(0.05)

    def _read(self, process):
        for line in process.stdout:
            try:
                status = json.loads(line)
            except ValueError:
                continue
            if process is self.process:
                self.status = status

    def _read_log(self, process):
        for line in process.stderr:
            self.log.append(line.rstrip())

    def channel(self, name):
        for c in (self.status or {}).get("channels", []):
            if c["channel"] == name:
                return c
        return None

    def wait(self, predicate, timeout=20, what="bridge status"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"bridge exited ({self.process.returncode}): {self.log[-5:]}")
            if self.status is not None and predicate(self.status):
                return self.status
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}; last status {self.status}; log {self.log[-8:]}")

    def wait_ready(self, name, timeout=20):
        """Until channel `name` is open here with a peer (export: an import wants it; import: described)."""
        return self.wait(lambda s: any(c["channel"] == name and c["open"] and c["peers"] > 0
                                       for c in s["channels"]), timeout, f"{name} ready")

    def target(self):
        """The bridge's pid: the process started, or under unshare its child."""
        if not self.wrapper:
            return self.process.pid
        try:
            with open(f"/proc/{self.process.pid}/task/{self.process.pid}/children") as f:
                children = f.read().split()
            return int(children[0]) if children else None
        except OSError:
            return None

    def signal(self, number):
        pid = self.target()
        if pid is not None:
            try:
                os.kill(pid, number)
            except ProcessLookupError:
                pass

    def kill(self):
        self.signal(signal.SIGKILL)
        self.process.kill()
        self.process.wait()

    def stop(self):
        if self.process.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.returncode


@pytest.fixture
def names():
    """Channel names no other test uses ("t_<pid>_br<n>...", which the suite's leak check
    covers); checks that none is left behind."""
    prefix = f"t_{os.getpid()}_br{next(_counter)}"
    yield lambda suffix: f"{prefix}{suffix}"
    # Processes that closed their endpoints have removed their files by the time they exit
    # (procs waits for that); allow a loaded machine a while for the last unlink to land.
    deadline = time.monotonic() + 10
    while glob.glob(f"/dev/shm/*{prefix}*") and time.monotonic() < deadline:
        time.sleep(0.05)
    left = glob.glob(f"/dev/shm/*{prefix}*")
    for path in left:
        os.unlink(path)
    assert not left, f"channels left behind: {left}"


@pytest.fixture
def procs(names):
    """Processes a test starts; killed at the end if still running (before `names` checks for
    channels left behind, hence the dependency)."""
    started = []

    def track(p):
        started.append(p)
        return p

    yield track
    # Asked to stop first (SIGTERM: each closes its endpoints and removes what it made), killed
    # only if it does not within 20 s: a sanitizer build's exit (leak check) is slow under load,
    # and a SIGKILL would leave its files behind for the next open to reclaim.
    running = []
    for p in started:
        process = p.process if isinstance(p, Bridge) else p
        if process.poll() is None:
            if isinstance(p, Bridge):
                p.signal(signal.SIGTERM)
            else:
                process.terminate()
            running.append(process)
    deadline = time.monotonic() + 20
    for process in running:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.wait()


@pytest.fixture
def port():
    return lambda: next(_ports)


def bridge_pair(net, procs, port, a, b, go=None, export_args=(), pid_namespaces=False):
    """An export of channel `a` on host A and an import of it as `b` on host B, both ready (the
    import has its channel open, the export a peer for it); then creates `go`, if given."""
    address = f"tcp://{net.a.address}:{port()}"
    exporter = procs(Bridge(net.a, ["export", a, "--bind", address, *export_args], pid_namespaces))
    importer = procs(Bridge(net.b, ["import", f"{a}={b}", "--connect", address], pid_namespaces))
    importer.wait_ready(b)
    exporter.wait_ready(a)
    if go:
        open(go, "w").close()
    return exporter, importer


def settled_import(importer, name, published, received, timeout=30):
    """The import's status for channel `name` once it accounts for every published message
    (delivered + lost == published), given what the subscriber `received` (its result). Tells
    apart the two ways a subscriber can miss messages that the import does not report:
    - a stall at the end of the stream: the import gets there, but the subscriber's idle window
      ran out before the last messages reached it;
    - an accounting hole: the import never accounts for them (lost on the way, never counted).
    The import's counts are read from its status lines, 100 ms apart: waiting for them to settle
    also keeps a gap counted just before the subscriber saw the last message from being missed."""
    deadline = time.monotonic() + timeout
    while True:
        c = importer.channel(name) or {"messages": 0, "lost": 0}
        accounted = c["messages"] + c["lost"]
        if accounted >= published:
            break
        if time.monotonic() > deadline:
            raise AssertionError(f"accounting hole: the import accounts for {accounted} of {published} messages "
                                 f"({c['messages']} delivered, {c['lost']} lost) and never for the rest; "
                                 f"the subscriber got {received}")
        time.sleep(0.05)
    if received["last"] < published - 1:
        raise AssertionError(f"stall at the end of the stream: the import accounts for every message "
                             f"({c['messages']} delivered, {c['lost']} lost), but the subscriber's idle window "
                             f"ended at message {received['last']} of {published}: {received}")
    return c


def result(process, timeout=120):
    """The last JSON line a peer program printed, once it exits."""
    out, err = process.communicate(timeout=timeout)
    lines = [l for l in out.splitlines() if l.startswith("{")]
    assert process.returncode == 0, f"exit {process.returncode}: {err.strip()}"
    return json.loads(lines[-1])


def wait_line(process, timeout=30):
    """Waits for the first line (a peer's {"ready":true})."""
    line = process.stdout.readline()
    assert line, f"no output: {process.stderr.read()}"
    return json.loads(line)


@pytest.fixture
def go(tmp_path):
    """A file whose creation tells waiting peers (--wait-file) to start."""
    return str(tmp_path / "go")
