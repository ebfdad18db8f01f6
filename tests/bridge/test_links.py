"""The link between the two bridges: addresses (IPv6), reconnecting after a refused handshake,
and what the import says when it cannot connect (a cut link: test_topics.py)."""

import subprocess
import time

from conftest import PEER, SHMRING, Bridge, result, wait_line


def keygen(tmp_path, who):
    out = subprocess.run([SHMRING, "bridge", "keygen", "--out", str(tmp_path / who)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return tmp_path / who


def test_ipv6_bind_and_connect(net, procs, port, names, go):
    """`tcp://[ADDRESS]:PORT` binds and connects (it used to fail with "No such device", and a
    connect to [::1] never succeeded)."""
    a, b = names(".a"), names(".b")
    sub = procs(net.b.start([PEER, "topic-sub", b, "--lossless", "--idle", "3", "--expect", 2000]))
    wait_line(sub)
    pub = procs(net.a.start([PEER, "topic-pub", a, "--lossless", "--count", 2000, "--wait-file", go]))
    wait_line(pub)
    address = f"tcp://[{net.a.address6}]:{port()}"
    exporter = procs(Bridge(net.a, ["export", a, "--bind", address]))
    importer = procs(Bridge(net.b, ["import", f"{a}={b}", "--connect", address]))
    importer.wait_ready(b)
    exporter.wait_ready(a)
    open(go, "w").close()
    assert result(pub)["published"] == 2000
    r = result(sub)
    assert r["received"] == 2000 and r["gaps"] == 0 and r["corrupt"] == 0, r
    exporter.stop()
    importer.stop()


def test_an_import_refused_by_curve_connects_once_the_export_accepts_it(net, procs, port, names, go, tmp_path):
    """libzmq never reconnects after a refused handshake: the import makes its socket again
    (with back-off and jitter), so it connects as soon as the export's allow-list takes it."""
    a, b = names(".a"), names(".b")
    server, client, other = keygen(tmp_path, "server"), keygen(tmp_path, "client"), keygen(tmp_path, "other")
    sub = procs(net.b.start([PEER, "topic-sub", b, "--idle", "1", "--start-timeout", 60]))
    wait_line(sub)
    pub = procs(net.a.start([PEER, "topic-pub", a, "--count", 600, "--rate", 1000, "--wait-file", go]))
    wait_line(pub)
    address = f"tcp://{net.a.address}:{port()}"
    export_args = ["export", a, "--bind", address, "--curve-secret-key", f"{server}.key", "--curve-authorized"]
    exporter = procs(Bridge(net.a, export_args + [f"{other}.pub"]))  # the allow-list lacks the client
    importer = procs(Bridge(net.b, ["import", f"{a}={b}", "--connect", address,
                                    "--curve-server-key", f"{server}.pub", "--curve-secret-key", f"{client}.key"]))
    importer.wait(lambda s: s["refused"] >= 2, timeout=30, what="refused handshakes, retried")
    assert not importer.channel(b)["open"]
    exporter.stop()
    exporter = procs(Bridge(net.a, export_args + [f"{other}.pub,{client}.pub"]))  # fixed
    importer.wait_ready(b, timeout=30)
    open(go, "w").close()
    assert result(pub)["published"] == 600
    assert result(sub)["received"] > 0
    exporter.stop()
    importer.stop()


def test_an_import_that_cannot_connect_says_so(net, procs, port, names):
    """Nothing listens at the address, or the name does not resolve: the import logs that it
    cannot connect (it used to say nothing) and its status says connecting."""
    b = names(".b")
    importers = [procs(Bridge(net.b, ["import", f"x={b}", "--connect", f"tcp://{net.a.address}:{port()}"])),
                 procs(Bridge(net.b, ["import", f"x={b}", "--connect", "tcp://no-such-host.invalid:7000"]))]
    for importer in importers:
        importer.wait(lambda s: s["channels"][0]["link"] == "connecting", what="a status line")
        deadline = time.monotonic() + 20
        while not any("cannot connect" in line for line in importer.log):
            assert time.monotonic() < deadline, importer.log
            time.sleep(0.05)
        assert importer.status["channels"][0]["link"] == "connecting"
        importer.stop()
