"""Flow control across hosts: a lossless topic loses nothing whatever its subscribers do, a stall
never looks like a dead link, and every buffer on the way is bounded.

Memory is measured as each bridge's anonymous resident memory (RssAnon, sampled every 50 ms: its
heap and libzmq's queues, not the channels it maps), against the documented bound: a topic
window (8 MiB by default) per channel and connection, plus one batch, on each side.
"""

import json

from conftest import PEER, SHMRING, Bridge, bridge_pair, result, scaled, wait_line
from test_edges import python_in

MiB = 1 << 20
# What a bridge may hold for one stalled channel, with everything else it needs (libzmq's
# threads, the status lines): the window on each side, a batch, and room to spare.
HEAP_BOUND_KB = 64 * 1024


def channel_lost(host, name):
    out = host.run([PEER, "lost", name])
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)["lost"]


def test_lossless_topic_loses_nothing_through_an_8s_subscriber_stall(net, procs, port, names, go):
    """The issue's case: 4 KiB messages, a subscriber on host B that stops reading for 8 s after
    2000 of them. The import holds what it was given credit for and keeps reading its connection
    (so the link stays up), the export stops reading, the publisher on host A waits: 0 lost."""
    a, b = names(".a"), names(".b")
    count = scaled(40_000, least=8000)
    sub = procs(net.b.start([PEER, "topic-sub", b, "--lossless", "--idle", 20, "--expect", count,
                             "--stall-after", 2000, "--stall", 8]))
    wait_line(sub)
    pub = procs(net.a.start([PEER, "topic-pub", a, "--lossless", "--count", count, "--capacity", MiB,
                             "--max-message", 8192, "--sizes", 4096, "--wait-file", go]))
    wait_line(pub)
    exporter, importer = bridge_pair(net, procs, port, a, b, go=go)
    p = result(pub, timeout=180)
    r = result(sub, timeout=180)
    print(f"8 s stall: {r['received']} of {count} received, publisher held back {p['blocked_ms']} ms, "
          f"bridge heap peaks: export {exporter.peak_heap_kb} KiB, import {importer.peak_heap_kb} KiB")
    assert p["published"] == count
    assert r["received"] == count and r["gaps"] == 0 and r["duplicates"] == 0 and r["corrupt"] == 0, r
    assert importer.channel(b)["lost"] == 0 and channel_lost(net.b, b) == 0
    assert p["blocked_ms"] >= 1000  # the stall reached the publisher on host A
    assert not any("forgotten" in line or "disconnected" in line for line in exporter.log), exporter.log
    assert exporter.peak_heap_kb < HEAP_BOUND_KB and importer.peak_heap_kb < HEAP_BOUND_KB
    exporter.stop()
    importer.stop()


def test_one_mib_messages_to_a_stuck_subscriber_keep_both_bridges_bounded(net, procs, port, names, go):
    """1 MiB lossless messages to a subscriber that stops after 5 for 6 s: the bridges hold a
    window each, not what their carrier queues could take (which grew them by 1.2 GiB)."""
    a, b = names(".a"), names(".b")
    count = scaled(150, least=60)
    sub = procs(net.b.start([PEER, "topic-sub", b, "--lossless", "--idle", 20, "--expect", count,
                             "--capacity", 8 * MiB, "--max-message", MiB + 64, "--stall-after", 5, "--stall", 6]))
    wait_line(sub)
    pub = procs(net.a.start([PEER, "topic-pub", a, "--lossless", "--count", count, "--capacity", 8 * MiB,
                             "--max-message", MiB + 64, "--sizes", MiB, "--wait-file", go]))
    wait_line(pub)
    exporter, importer = bridge_pair(net, procs, port, a, b, go=go)
    p = result(pub, timeout=180)
    r = result(sub, timeout=180)
    print(f"1 MiB messages, stuck subscriber: bridge heap peaks: export {exporter.peak_heap_kb} KiB, "
          f"import {importer.peak_heap_kb} KiB; publisher held back {p['blocked_ms']} ms")
    assert r["received"] == count and r["gaps"] == 0 and r["corrupt"] == 0, r
    assert exporter.peak_heap_kb < HEAP_BOUND_KB and importer.peak_heap_kb < HEAP_BOUND_KB
    exporter.stop()
    importer.stop()


def test_an_export_that_ignores_credit_cannot_grow_the_import(net, procs, port, names):
    """A fake export floods 1 MiB batches for a lossless topic whose subscriber on host B does not
    read: the import keeps what it offered credit for and drops (and counts) the rest."""
    remote, local = names(".h"), names(".hb")
    address = f"tcp://{net.a.address}:{port()}"
    sub = procs(net.b.start([PEER, "topic-sub", local, "--lossless", "--capacity", 4 * MiB, "--max-message", MiB,
                             "--idle", 1, "--stall-after", 1, "--stall", 7]))
    wait_line(sub)
    fake = procs(python_in(net.a, '''
        ctx = zmq.Context(); s = ctx.socket(zmq.ROUTER); s.bind(sys.argv[1]); name = sys.argv[2]
        peer, hello = s.recv_multipart()
        s.send_multipart([peer, header(DESCRIBE, name, value=1),
                          description(lossless=1, capacity=1 << 22, max_message=1 << 20)])
        body = b"x" * ((1 << 20) - 12)
        end = time.monotonic() + 4
        sequence = 0
        while time.monotonic() < end:
            s.send_multipart([peer, *topic(name, (sequence, body))])
            sequence += 1
        print(sequence, flush=True)
        time.sleep(1)
    ''', address, remote))
    importer = procs(Bridge(net.b, ["import", f"{remote}={local}", "--connect", address]))
    out, err = fake.communicate(timeout=60)
    assert fake.returncode == 0, err
    sent = int(out.split()[0])
    status = importer.wait(lambda s: s["channels"][0]["rejected"] > 0, what="batches beyond credit dropped")
    print(f"fake export: {sent} batches of 1 MiB sent, import heap peak {importer.peak_heap_kb} KiB, "
          f"rejected {status['channels'][0]['rejected']}")
    assert sent > 20  # it did flood
    assert importer.peak_heap_kb < HEAP_BOUND_KB
    assert importer.process.poll() is None
    result(sub, timeout=60)  # (the fake's messages are not the test peers' kind: counted corrupt)
    importer.stop()
