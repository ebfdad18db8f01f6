"""Topics across two hosts: exact loss accounting, lossless means lossless, kills and link cuts.

The oracle: the publisher on host A numbers and checksums its messages (bridge_peer); each
subscriber on host B checks every checksum and that numbers only go up, and counts the gaps. The
import reports what it lost in the imported topic's counters (ChannelStats::lost, `shmring stat`);
a subscriber's gaps must equal that (plus its own local loss, which the lossless ones do not have).
"""

import json
import random
import subprocess
import time

from conftest import bridge_pair, PEER, SHMRING, Bridge, result, scaled, settled_import, wait_line


def upstream_links(host, name):
    """(address, link) of each endpoint `shmring stat` says imports the channel."""
    out = host.run([SHMRING, "stat", name, "--json"])
    assert out.returncode == 0, out.stderr
    import json
    peers = json.loads(out.stdout.splitlines()[-1])["peers"]
    return [(p["upstream_from"], p["upstream_link"]) for p in peers if "upstream_from" in p]


def channel_lost(host, name):
    out = host.run([PEER, "lost", name])
    assert out.returncode == 0, out.stderr
    import json
    return json.loads(out.stdout)["lost"]


def test_lossless_topic_million_messages_two_remote_subscribers_lose_nothing(net, procs, port, names, go):
    """Both bridges also run in their own PID namespaces, as in containers sharing /dev/shm."""
    a, b = names(".a"), names(".b")
    count = scaled(1_000_000)
    subs = [procs(net.b.start([PEER, "topic-sub", b, "--lossless", "--idle", "5", "--expect", count]))
            for _ in range(2)]
    for s in subs:
        wait_line(s)
    # A small ring on host A: the publisher is held back by the bridge whenever the link is slower.
    pub = procs(net.a.start([PEER, "topic-pub", a, "--lossless", "--count", count, "--capacity", 1 << 18,
                             "--wait-file", go]))
    wait_line(pub)
    exporter, importer = bridge_pair(net, procs, port, a, b, go=go, pid_namespaces=True)
    assert result(pub, timeout=300)["published"] == count
    for s in subs:
        r = result(s, timeout=300)
        assert r["corrupt"] == 0 and r["duplicates"] == 0
        assert r["first"] == 0 and r["last"] == count - 1
        assert r["gaps"] == 0 and r["received"] == count, r
        assert r["local_lost"] == 0
    assert importer.channel(b)["lost"] == 0
    assert channel_lost(net.b, b) == 0
    held = exporter.channel(a)["held_back_ms"] + importer.channel(b)["held_back_ms"]
    print(f"lossless 1M: held back {held} ms in total (back-pressure at work)")
    exporter.stop()
    importer.stop()


def test_lossy_topic_counts_every_loss_exactly(net, procs, port, names, go):
    a, b = names(".a"), names(".b")
    count = scaled(1_000_000)
    subs = [procs(net.b.start([PEER, "topic-sub", b, "--idle", "5", "--capacity", 1 << 26, "--expect", count]))
            for _ in range(2)]
    for s in subs:
        wait_line(s)
    # A small ring on A and a publisher that never waits: the export's reader is lapped there, so
    # messages are lost on the way (and must be counted, exactly).
    pub = procs(net.a.start([PEER, "topic-pub", a, "--count", count, "--capacity", 1 << 16, "--wait-file", go]))
    wait_line(pub)
    exporter, importer = bridge_pair(net, procs, port, a, b, go=go)
    assert result(pub)["published"] == count
    lost = None
    for s in subs:
        r = result(s, timeout=120)
        assert r["corrupt"] == 0 and r["duplicates"] == 0
        missing = count - r["received"]  # before the first one received, too: all were subscribed
        assert missing == r["first"] + r["gaps"] + (count - 1 - r["last"])
        reported = settled_import(importer, b, count, r)["lost"]
        assert missing == reported + r["local_lost"], (r, reported)
        lost = reported
    assert channel_lost(net.b, b) == lost  # what `shmring stat` shows on host B
    print(f"lossy 1M: {lost} lost on the way, all counted")
    assert lost > 0, "the set-up should lose messages (a 64 KiB ring and an unpaced publisher)"
    exporter.stop()
    importer.stop()


def test_losses_at_the_end_of_a_stream_are_counted(net, procs, port, names, go):
    """Messages dropped on the way with none after them (a burst into an import that offers one
    message of credit) are counted all the same: the export tells the import where it stands with
    every ALIVE, so the import knows what never came. (Before, such a tail was never counted: the
    import learnt of a gap only from the message after it.)"""
    a, b = names(".a"), names(".b")
    count = 3000
    sub = procs(net.b.start([PEER, "topic-sub", b, "--idle", "2", "--expect", count, "--capacity", 1 << 24]))
    wait_line(sub)
    pub = procs(net.a.start([PEER, "topic-pub", a, "--count", count, "--sizes", 64, "--no-last-pause",
                             "--wait-file", go]))
    wait_line(pub)
    address = f"tcp://{net.a.address}:{port()}"
    exporter = procs(Bridge(net.a, ["export", a, "--bind", address]))
    importer = procs(Bridge(net.b, ["import", f"{a}={b}", "--connect", address, "--topic-window", 1]))
    importer.wait_ready(b)
    exporter.wait_ready(a)
    open(go, "w").close()
    assert result(pub)["published"] == count
    r = result(sub, timeout=60)
    missing = count - r["received"]
    c = importer.wait(lambda s: s["channels"][0]["messages"] + s["channels"][0]["lost"] >= count, timeout=30,
                      what=f"the import accounting for all {count} (accounting hole)")["channels"][0]
    print(f"tail: subscriber got {r['received']} of {count} (last {r['last']}), the import reports {c['lost']} lost")
    assert missing > 0 and r["last"] < count - 1  # one message of credit: the burst's end is dropped too
    assert missing == c["lost"] + r["local_lost"], (r, c)
    assert channel_lost(net.b, b) == c["lost"]
    exporter.stop()
    importer.stop()


def test_kill_and_restart_either_bridge_reports_the_real_gap(net, procs, port, names, go):
    """20 SIGKILLs (10 of each side) mid-stream; every restart resumes by itself, and what the
    subscriber misses equals what the import side reports lost, message for message."""
    a, b = names(".a"), names(".b")
    rate, seconds = scaled(20000), 14
    count = rate * seconds
    sub = procs(net.b.start([PEER, "topic-sub", b, "--lossless", "--idle", "8", "--expect", count]))
    wait_line(sub)
    pub = procs(net.a.start([PEER, "topic-pub", a, "--lossless", "--count", count, "--rate", rate,
                             "--wait-file", go]))
    wait_line(pub)
    exporter, importer = bridge_pair(net, procs, port, a, b, go=go)
    rng = random.Random(15)
    kills = 0
    for i in range(20):
        time.sleep(rng.uniform(0.15, 0.45))
        victim = exporter if i % 2 == 0 else importer
        victim.kill()
        kills += 1
        time.sleep(rng.uniform(0.0, 0.2))
        victim.start()
    assert kills == 20
    assert result(pub, timeout=180)["published"] == count
    r = result(sub, timeout=180)
    reported = channel_lost(net.b, b)
    print(f"20 kills: subscriber got {r['received']} of {count}, gaps {r['gaps']}, reported lost {reported}")
    assert r["corrupt"] == 0 and r["duplicates"] == 0
    assert r["first"] == 0 and r["last"] == count - 1, r
    assert r["gaps"] == reported, (r, reported)
    assert r["received"] > count // 2  # it went on after every restart
    exporter.stop()
    importer.stop()


def test_link_cut_is_survived_the_gap_reported_and_the_import_says_so(net, procs, port, names, go):
    """A cut link: the import notices within peer_timeout (its export answers every hello, so
    silence means down), says so in a log line and its status (link down, peers 0), and `shmring
    stat` of the imported channel on host B shows where it comes from and that the link is down.
    When the link is back, it says so, traffic goes on, and the gap is counted exactly."""
    a, b = names(".a"), names(".b")
    rate, seconds = scaled(10000), 12
    count = rate * seconds
    sub = procs(net.b.start([PEER, "topic-sub", b, "--idle", "10", "--expect", count, "--capacity", 1 << 24]))
    wait_line(sub)
    pub = procs(net.a.start([PEER, "topic-pub", a, "--count", count, "--rate", rate, "--wait-file", go]))
    wait_line(pub)
    exporter, importer = bridge_pair(net, procs, port, a, b, go=go)
    address = importer.args[3]  # import CHANNEL --connect ADDRESS
    assert upstream_links(net.b, b) == [(address, "up")]
    time.sleep(2)
    net.link(up=False)
    down = importer.wait(lambda s: s["channels"][0]["link"] == "down", timeout=30, what="the link seen down")
    assert down["channels"][0]["peers"] == 0
    assert upstream_links(net.b, b) == [(address, "down")]
    stat_text = net.b.run([SHMRING, "stat", b]).stdout
    assert f"imports from {address}: link down" in stat_text, stat_text
    time.sleep(1)  # past the peer timeout on both sides (3 s): the export forgets the import too
    before = importer.channel(b)["messages"]
    net.link(up=True)
    importer.wait(lambda s: s["channels"][0]["link"] == "up" and s["channels"][0]["messages"] > before + rate,
                  timeout=30, what="the link up and traffic after it")
    assert upstream_links(net.b, b) == [(address, "up")]
    assert any("link down (" in line for line in importer.log), importer.log
    assert any("link up after" in line for line in importer.log), importer.log
    assert importer.status["channels"][0]["link_changes"] >= 3  # connecting -> up -> down -> up
    assert result(pub, timeout=120)["published"] == count
    r = result(sub, timeout=120)
    reported = channel_lost(net.b, b)
    print(f"link cut: subscriber got {r['received']} of {count}, gaps {r['gaps']}, reported lost {reported}")
    assert r["corrupt"] == 0 and r["duplicates"] == 0
    assert r["last"] == count - 1
    assert r["gaps"] == reported + r["local_lost"]
    assert r["gaps"] > 0  # 4 s of a 10 000/s stream cannot all have waited in buffers
    exporter.stop()
    importer.stop()


def test_an_imported_topic_removed_here_is_opened_again(net, procs, port, names, go):
    """`shmring rm` of the imported channel on host B: the import notices, opens it again, and
    subscribers that open it by name afterwards receive."""
    a, b = names(".a"), names(".b")
    pub = procs(net.a.start([PEER, "topic-pub", a, "--count", 60000, "--rate", 10000, "--wait-file", go]))
    wait_line(pub)
    exporter, importer = bridge_pair(net, procs, port, a, b, go=go)
    time.sleep(0.5)
    assert net.b.run([SHMRING, "rm", b]).returncode == 0
    time.sleep(0.5)
    sub = procs(net.b.start([PEER, "topic-sub", b, "--idle", "3"]))
    r = result(sub, timeout=60)
    assert r["received"] > 1000 and r["corrupt"] == 0 and r["duplicates"] == 0
    assert "removed" in " ".join(importer.log)
    result(pub)
    exporter.stop()
    importer.stop()


def test_imports_started_at_the_same_instant_fan_out_and_one_takes_over(net, procs, port, names, go):
    """Five imports start at the same instant: three into channels of their own (fan-out), two
    into the same one. Of those two, one becomes its publisher and the other waits as a standby;
    when the active one is killed, the standby takes over and the count stays exact."""
    a, shared = names(".a"), names(".shared")
    own = [names(f".own{i}") for i in range(3)]
    count, rate = scaled(60000), scaled(20000, least=2000)
    subs = {n: procs(net.b.start([PEER, "topic-sub", n, "--lossless", "--idle", "6", "--expect", count]))
            for n in own + [shared]}
    for s in subs.values():
        wait_line(s)
    pub = procs(net.a.start([PEER, "topic-pub", a, "--lossless", "--count", count, "--rate", rate,
                             "--wait-file", go]))
    wait_line(pub)
    address = f"tcp://{net.a.address}:{port()}"
    exporter = procs(Bridge(net.a, ["export", a, "--bind", address]))
    imports = [procs(Bridge(net.b, ["import", f"{a}={n}", "--connect", address]))
               for n in own + [shared, shared]]
    for bridge, name in zip(imports[:3], own):
        bridge.wait_ready(name)
    pair = imports[3:]
    deadline = time.monotonic() + 20
    while sum(1 for p in pair if (p.channel(shared) or {}).get("open")) != 1:
        assert time.monotonic() < deadline, [p.status for p in pair]
        time.sleep(0.05)
    time.sleep(0.3)
    assert sum(1 for p in pair if p.channel(shared)["open"]) == 1  # never both
    active, standby = pair if pair[0].channel(shared)["open"] else pair[::-1]
    exporter.wait(lambda s: s["peers"] == 5, what="five imports")
    open(go, "w").close()
    time.sleep(1.0)
    active.kill()
    standby.wait(lambda s: s["channels"][0]["open"] and s["channels"][0]["messages"] > 0, timeout=20,
                 what="the standby taking over")
    assert result(pub, timeout=120)["published"] == count
    for name in own:
        r = result(subs[name], timeout=120)
        assert r["received"] == count and r["gaps"] == 0 and r["duplicates"] == 0 and r["corrupt"] == 0, r
    r = result(subs[shared], timeout=120)
    reported = channel_lost(net.b, shared)
    print(f"takeover: the shared channel got {r['received']} of {count}, gaps {r['gaps']}, reported {reported}")
    assert r["corrupt"] == 0 and r["duplicates"] == 0 and r["last"] == count - 1
    assert r["first"] + r["gaps"] == reported
    for bridge in [exporter, standby] + imports[:3]:
        bridge.stop()


def test_an_imported_topic_keeps_the_exported_history(net, procs, port, names, go):
    """A topic made with --history on host A (and two publishers) is imported as a topic that
    keeps as much history: a subscriber started late on host B gets the last N from its own host."""
    a, b = names(".a"), names(".b")
    keeper = procs(net.a.start([SHMRING, "sub", a, "--create", "--kind", "topic", "--history", 8,
                                "--max-publishers", 2, "--capacity", 1 << 16, "--max-message", 256,
                                "--timeout", 60], stderr=None))
    deadline = time.monotonic() + 20
    while net.a.run([SHMRING, "stat", a, "--json"]).returncode != 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    exporter, importer = bridge_pair(net, procs, port, a, b, go=go)
    stat = json.loads(net.b.run([SHMRING, "stat", b, "--json"]).stdout.splitlines()[-1])
    assert stat["history"] == 8, stat
    lines = "".join(f"m{i}\n" for i in range(20))
    pub = subprocess.run(net.a.prefix() + [SHMRING, "pub", a], input=lines, capture_output=True, text=True,
                         timeout=60)
    assert pub.returncode == 0, pub.stderr
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        stat = json.loads(net.b.run([SHMRING, "stat", b, "--json"]).stdout.splitlines()[-1])
        if stat["sent"] >= 20:
            break
        time.sleep(0.05)
    assert stat["sent"] >= 20, stat
    late = net.b.run([SHMRING, "sub", b, "--last", 8, "--count", 8, "--timeout", 10])
    assert late.returncode == 0, late.stderr
    assert late.stdout.split() == [f"m{i}" for i in range(12, 20)]
    assert "missed" not in late.stderr
    exporter.stop()
    importer.stop()
    keeper.terminate()
    keeper.wait(timeout=20)
