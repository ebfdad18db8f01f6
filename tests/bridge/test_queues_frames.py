"""Queues and frames across two hosts.

Queues: items produced on host A are consumed by competing consumers on both hosts. While the link
and both bridges are up, every item is consumed exactly once. Across bridge crashes the guarantee
is at-least-once: nothing is lost, and an item is delivered twice at most once per item held in
flight by a crashed bridge (the queue window, 16, per crash).

Frames: newest first; a slow (here: rate-limited) link skips frames, never tears one and never
holds the publisher.
"""

import os
import random
import subprocess
import struct
import time

from conftest import bridge_pair, PEER, SHMRING, Bridge, result, scaled, wait_line

WINDOW = 16


def read_ids(paths):
    ids = []
    for path in paths:
        with open(path, "rb") as f:
            data = f.read()
        ids += struct.unpack(f"<{len(data) // 8}q", data)
    return ids


def start_queue(net, procs, port, names, go, tmp_path, count, rate=0, consumers_b=2, consumers_a=1):
    a, b = names(".qa"), names(".qb")
    files = [str(tmp_path / f"ids{i}") for i in range(consumers_a + consumers_b)]
    consumers = []
    for i in range(consumers_b):
        consumers.append(procs(net.b.start([PEER, "queue-consume", b, "--idle", "6", "--out", files[i]])))
    producer = procs(net.a.start([PEER, "queue-produce", a, "--count", count, "--rate", rate, "--wait-file", go]))
    wait_line(producer)
    for i in range(consumers_a):
        # Local to the producer, it would win most races: slowed down, so both hosts get work.
        consumers.append(procs(net.a.start([PEER, "queue-consume", a, "--idle", "6", "--pause-us", 50,
                                            "--out", files[consumers_b + i]])))
    for c in consumers:
        wait_line(c)
    exporter, importer = bridge_pair(net, procs, port, a, b, go=go)
    return a, b, producer, consumers, files, exporter, importer


def test_queue_items_are_consumed_once_by_consumers_on_both_hosts(net, procs, port, names, go, tmp_path):
    count = scaled(50_000)
    a, b, producer, consumers, files, exporter, importer = start_queue(
        net, procs, port, names, go, tmp_path, count)
    assert result(producer)["produced"] == count
    per_consumer = [result(c)["received"] for c in consumers]
    ids = read_ids(files)
    print(f"queue: consumers on B got {per_consumer[:2]}, the one on A {per_consumer[2]}")
    assert sorted(ids) == list(range(count))  # nothing lost, nothing twice
    assert sum(per_consumer[:2]) > 0 and per_consumer[2] > 0  # both hosts consumed
    assert importer.channel(b)["duplicates"] == 0
    exporter.stop()
    importer.stop()


def test_queue_survives_bridge_kills_at_least_once_with_bounded_duplicates(net, procs, port, names, go, tmp_path):
    count = scaled(40_000)
    a, b, producer, consumers, files, exporter, importer = start_queue(
        net, procs, port, names, go, tmp_path, count, rate=scaled(8000, least=800))
    rng = random.Random(7)
    kills = 0
    for i in range(6):  # with the topic test's 20, the suite kills a bridge 26 times
        time.sleep(rng.uniform(0.3, 0.6))
        victim = exporter if i % 2 == 0 else importer
        victim.kill()
        kills += 1
        time.sleep(0.1)
        victim.start()
    assert result(producer, timeout=120)["produced"] == count
    for c in consumers:
        result(c, timeout=120)
    ids = read_ids(files)
    duplicates = len(ids) - len(set(ids))
    print(f"queue, {kills} bridge kills: {len(ids)} deliveries of {count} items, {duplicates} duplicates "
          f"(bound {WINDOW * kills})")
    assert set(ids) == set(range(count))  # at least once: nothing lost
    assert duplicates <= WINDOW * kills
    exporter.stop()
    importer.stop()


def test_frames_newest_first_over_a_rate_limited_link(net, procs, port, names, go):
    a, b = names(".fa"), names(".fb")
    size, fps, count, max_rate = 4 << 20, 30, 75, 10
    sub = procs(net.b.start([PEER, "frames-sub", b, "--idle", "4", "--size", size]))
    wait_line(sub)
    pub = procs(net.a.start([PEER, "frames-pub", a, "--count", count, "--size", size, "--rate", fps,
                             "--wait-file", go]))
    wait_line(pub)
    exporter, importer = bridge_pair(net, procs, port, a, b, export_args=["--max-rate", max_rate])
    started = time.monotonic()
    open(go, "w").close()
    p = result(pub, timeout=60)
    seconds = time.monotonic() - started
    r = result(sub, timeout=60)
    print(f"frames: {p['published']} published at {fps}/s in {seconds:.1f} s, {r['received']} arrived "
          f"(limit {max_rate}/s), worst publish {p['worst_publish_us']} us")
    assert p["published"] == count and p["refused"] == 0  # the publisher never waited
    assert r["corrupt"] == 0 and r["duplicates"] == 0  # no torn frame, numbers only go up
    assert r["last"] == count - 1  # the newest frame arrives
    assert 2 <= r["received"] <= max_rate * (seconds + 1) + 2
    assert r["received"] < count  # older frames were skipped
    exporter.stop()
    importer.stop()


def test_a_queue_recreated_upstream_is_not_mistaken_for_redeliveries(net, procs, port, names, go, tmp_path):
    """Its tickets start over: the import must not drop the new items as ones it has seen."""
    a, b = names(".qa"), names(".qb")
    files = [str(tmp_path / "ids0")]
    consumer = procs(net.b.start([PEER, "queue-consume", b, "--idle", "8", "--out", files[0]]))
    wait_line(consumer)
    first = procs(net.a.start([PEER, "queue-produce", a, "--count", 2000, "--wait-file", go]))
    wait_line(first)
    exporter, importer = bridge_pair(net, procs, port, a, b, go=go)
    assert result(first)["produced"] == 2000
    importer.wait(lambda s: s["channels"][0]["messages"] == 2000, what="the first 2000 items")
    # The queue on host A is removed and made again (tickets from 0 again); the export reopens it.
    assert net.a.run([SHMRING, "rm", a]).returncode == 0
    os.unlink(go)
    second = procs(net.a.start([PEER, "queue-produce", a, "--count", 2000, "--base", 100000, "--wait-file", go]))
    wait_line(second)
    exporter.wait(lambda s: s["channels"][0]["open"], what="the new queue opened")
    time.sleep(0.3)
    open(go, "w").close()
    assert result(second)["produced"] == 2000
    assert result(consumer)["received"] == 4000
    assert sorted(read_ids(files)) == list(range(2000)) + list(range(100000, 102000))
    assert importer.channel(b)["duplicates"] == 0
    exporter.stop()
    importer.stop()


def test_imports_at_the_same_instant_one_unable_to_open_its_queue_strand_nothing(net, procs, port, names, go,
                                                                                 tmp_path):
    """Three imports start together: two produce into the same local queue (a queue takes any
    number of producers), the third cannot open its local channel (a topic holds that name).
    Items sent to the third before its hello withdrew its credit come back to the export: every
    item is consumed exactly once, none stranded."""
    a, b, taken = names(".qa"), names(".qb"), names(".taken")
    count = scaled(20000)
    files = [str(tmp_path / "ids0")]
    consumer = procs(net.b.start([PEER, "queue-consume", b, "--idle", "6", "--out", files[0]]))
    # `taken` is a topic on host B while the test runs (it ends when one message arrives).
    holder = procs(net.b.start([SHMRING, "sub", taken, "--create", "--kind", "topic", "--count", 1,
                                "--timeout", 60]))
    wait_line(consumer)
    time.sleep(0.3)
    producer = procs(net.a.start([PEER, "queue-produce", a, "--count", count, "--wait-file", go]))
    wait_line(producer)
    address = f"tcp://{net.a.address}:{port()}"
    exporter = procs(Bridge(net.a, ["export", a, "--bind", address]))
    imports = [procs(Bridge(net.b, ["import", f"{a}={local}", "--connect", address])) for local in (b, b, taken)]
    exporter.wait(lambda s: s["peers"] == 3, what="three imports")
    open(go, "w").close()
    assert result(producer)["produced"] == count
    assert result(consumer)["received"] == count
    assert sorted(read_ids(files)) == list(range(count))
    assert [i.channel(local)["open"] for i, local in zip(imports, (b, b, taken))] == [True, True, False]
    assert any("cannot open" in line for line in imports[2].log)
    for bridge in [exporter] + imports:
        bridge.stop()
    ended = subprocess.run(net.b.prefix() + [SHMRING, "pub", taken], input="end\n", text=True,
                           capture_output=True, timeout=30)
    assert ended.returncode == 0, ended.stderr
    holder.communicate(timeout=30)
