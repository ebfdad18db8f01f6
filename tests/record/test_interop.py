"""Interoperability with the reference MCAP library (ctest McapInteropTest): the reference reader
(@mcap/core in node, both indexed and streamed, CRCs checked) reads what `shmring record`
writes, message for message; shmring's reader reads what the reference writer writes."""

import os
import subprocess
import time

import pytest

from conftest import (SCALE, Recorder, dump, info, publisher, reference_read, reference_write,
                      stat, wait_for)


def lines(prefix, n):
    return [f"{prefix} {i} " + "x" * (i % 37) for i in range(n)]


def same_messages(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x == y


@pytest.mark.parametrize("compression", ["zstd", "none"])
def test_reference_reader_reads_a_shmring_recording(tmp_path, names, procs, compression):
    topic, queue, frames = names("it_topic"), names("it_queue"), names("it_frames")
    n = max(200, int(2000 * SCALE))
    out = str(tmp_path / "rec.mcap")
    tpub = publisher(procs, "topic", topic, "--lossless")
    qpub = publisher(procs, "queue", queue, "--capacity", "4096")
    fpub = publisher(procs, "frames", frames)
    wait_for(lambda: stat(topic) and stat(queue) and stat(frames), what="the channels")
    rec = Recorder(procs, out, [topic, queue, frames],
                   "--compression", compression, "--chunk-size", "8K", "--tap-poll-us", "100")
    for name in (topic, queue, frames):
        rec.wait_recording(name)
    consumer = procs([os.environ["SHMRING_CLI"], "sub", queue, "--count", str(n), "--timeout", "60"], text=True)
    expected = {topic: lines("t", n), queue: lines("q", n), frames: lines("f", n)}
    for name, p in ((topic, tpub), (queue, qpub), (frames, fpub)):
        for i, line in enumerate(expected[name]):
            p.stdin.write(line + "\n")
            if name == frames and i % 20 == 0:
                p.stdin.flush()
                time.sleep(0.002)
        p.stdin.close()
        assert p.wait(timeout=120) == 0
    got = consumer.communicate(timeout=120)[0].splitlines()
    assert got == expected[queue]  # the tap took nothing from the consumer
    time.sleep(0.5)  # the recorder drains what is left
    assert rec.stop() == 0

    ours = dump(out)
    theirs = reference_read(out)
    same_messages(theirs["messages"], ours["messages"])  # every message, field by field
    assert theirs["summary"]["statistics_messages"] == str(len(ours["messages"]))
    assert theirs["metadata"]["shmring.loss"] == ours["metadata"]["shmring.loss"]

    recorded = info(out)
    by_topic = {c["topic"]: c for c in recorded["channels"]}
    assert recorded["complete"] and recorded["loss_from_metadata"]
    for name in (topic, queue, frames):
        msgs = [m for m in ours["messages"] if m[0] == name]
        assert msgs, name
        first = 1 if name == frames else 0  # frame numbers count from 1, topic sequences and tickets from 0
        # Topics and queues count from where the recorder subscribed; frames (newest first, as
        # FrameSubscriber::lost) from the first frame it took.
        jumps = msgs[0][1] - first if name != frames else 0
        for m, previous in zip(msgs[1:], msgs):
            assert m[1] > previous[1]
            jumps += m[1] - previous[1] - 1
        for m in msgs:
            assert m[4].decode() == expected[name][m[1] - first], (name, m[1])
        assert by_topic[name]["lost"] == jumps, name
        if name == frames:
            assert msgs[-1][1] == n  # the newest frame is always taken
            assert by_topic[name]["messages"] + jumps == n - (msgs[0][1] - first), name
        else:
            assert by_topic[name]["messages"] + jumps == n, name
    assert by_topic[topic]["lost"] == 0  # lossless: nothing missed


@pytest.mark.parametrize("mode", ["zstd", "none", "unchunked"])
def test_shmring_reads_the_reference_writer(tmp_path, mode):
    path = str(tmp_path / f"ref_{mode}.mcap")
    reference_write(path, mode)
    ours = dump(path)
    assert ours["summary"]["complete"]
    msgs = ours["messages"]
    assert len(msgs) == 300
    for i, (topic, sequence, log_time, publish_time, data) in enumerate(msgs):
        assert topic == ("raw" if i % 2 == 0 else "points")
        assert sequence == i
        assert log_time == 1700000000000000000 + i * 1000000
        assert publish_time == log_time - 5
        if i % 2 == 0:
            assert data == f"raw message {i} {'r' * (i % 50)}".encode()
        else:
            assert data == f'{{"x":{i},"y":{-i}}}'.encode()
    assert ours["metadata"]["halfway"] == {"i": "150"}
    if mode != "unchunked":  # the reference's indexed reader reads its own chunked files
        same_messages(reference_read(path)["messages"], msgs)
    described = info(path)
    assert described["messages"] == 300
    assert described["lost"] == 0  # not a shmring file: sequences are not counted as losses
    assert {c["topic"]: c["messages"] for c in described["channels"]} == {"raw": 150, "points": 150}


def test_reference_reader_reads_a_recovered_file(tmp_path, names, procs):
    """A recorder killed mid-way; the reference reader refuses nothing in what --recover makes."""
    topic = names("it_kill")
    out = str(tmp_path / "killed.mcap")
    pub = publisher(procs, "topic", topic, "--lossless")
    wait_for(lambda: stat(topic), what="the channel")
    rec = Recorder(procs, out, [topic], "--flush-interval", "20ms", "--chunk-size", "4K")
    rec.wait_recording(topic)
    expected = lines("k", 3000)
    for line in expected:
        pub.stdin.write(line + "\n")
    pub.stdin.flush()
    wait_for(lambda: os.path.getsize(out) > 20000, what="chunks in the file")
    rec.process.kill()
    rec.process.wait()
    pub.stdin.close()
    pub.wait(timeout=60)
    before = dump(out)
    assert not before["summary"]["complete"]
    recovered = str(tmp_path / "recovered.mcap")
    r = subprocess.run([os.environ["SHMRING_CLI"], "record", "--recover", out, "-o", recovered],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    after = reference_read(recovered)
    same_messages(after["messages"], before["messages"])
    assert after["metadata"]["shmring.loss"] == {"1": "0"}
    for m in after["messages"]:
        assert m[4].decode() == expected[m[1]]
