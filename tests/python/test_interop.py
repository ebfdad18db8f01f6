"""Python and C++ processes on one channel: Python -> C++ and C++ -> Python for topics, queues and
frames, checked with CRC-32 over every message in order."""

import subprocess
import zlib

import pytest

import shmring

COUNT = 3000


def message(i, limit):
    """The same messages the C++ peer makes (tests/python/interop_peer.cc)."""
    size = 1 + (i * 2654435761) % (2 ** 32) % limit
    return bytes(((i * 31 + j * 7) & 0xFF) for j in range(size))


def start_cpp(peer, *args):
    process = subprocess.Popen([peer, *map(str, args)], stdout=subprocess.PIPE, text=True)
    return process


def crc_of(process):
    out, _ = process.communicate(timeout=120)
    assert process.returncode == 0, out
    return int(out.split("crc ")[1])


@pytest.mark.parametrize("pattern", ["topic", "queue"])
def test_python_sends_cpp_receives(name, peer, pattern):
    receiver = start_cpp(peer, f"{pattern}-sub", name, COUNT)
    assert receiver.stdout.readline().strip() == "ready"
    crc = 0
    if pattern == "topic":
        sender = shmring.TopicPublisher(name, capacity=1 << 20, max_message=4096, lossless=True)
    else:
        sender = shmring.QueueProducer(name, capacity=256, max_message=4096)
    with sender:
        for i in range(COUNT):
            m = message(i, 4000 if pattern == "topic" else 4096)
            if i % 2:
                sender.send(m, timeout=30)
            else:  # zero-copy half of the time
                with sender.loan(len(m), timeout=30) as buffer:
                    buffer[:len(m)] = m
                    if pattern == "queue":
                        pass
            crc = zlib.crc32(m, crc)
    assert crc_of(receiver) == crc


def test_python_queue_loans_carry_exact_sizes(name, peer):
    # A queue loan lends a whole slot: publish(n) sends exactly n bytes.
    receiver = start_cpp(peer, "queue-sub", name, 10)
    assert receiver.stdout.readline().strip() == "ready"
    crc = 0
    with shmring.QueueProducer(name, capacity=256, max_message=4096) as producer:
        for i in range(10):
            m = message(i, 4096)
            loan = producer.loan(timeout=30)
            loan.buffer[:len(m)] = m
            loan.publish(len(m))
            crc = zlib.crc32(m, crc)
    assert crc_of(receiver) == crc


@pytest.mark.parametrize("pattern", ["topic", "queue"])
def test_cpp_sends_python_receives(name, peer, pattern):
    if pattern == "topic":
        receiver = shmring.TopicSubscriber(name, capacity=1 << 20, max_message=4096, lossless=True)
    else:
        receiver = shmring.QueueConsumer(name, capacity=256, max_message=4096)
    crc = 0
    with receiver:
        sender = start_cpp(peer, f"{pattern}-pub", name, COUNT)
        for i in range(COUNT):
            if i % 2:
                crc = zlib.crc32(receiver.receive(timeout=30), crc)
            else:
                with receiver.view(timeout=30) as data:
                    crc = zlib.crc32(data, crc)
        assert crc_of(sender) == crc


def frame(i, size):
    body = bytes(((i + j) & 0xFF) for j in range(16, size))
    return i.to_bytes(8, "little") + zlib.crc32(body).to_bytes(4, "little") + bytes(4) + body


def test_frames_both_ways(name, peer):
    size = 64 * 1024
    # Python publishes, C++ checks every frame it sees is intact.
    receiver = start_cpp(peer, "frames-sub", name, 200, size)
    assert receiver.stdout.readline().strip() == "ready"
    with shmring.FramePublisher(name, capacity=4, max_message=size) as pub:
        for i in range(1, 201):
            with pub.loan(timeout=30) as buffer:
                buffer[:] = frame(i, size)
        out, _ = receiver.communicate(timeout=120)
    assert receiver.returncode == 0 and "torn 0" in out, out
    # C++ publishes, Python checks.
    with shmring.FrameSubscriber(name + "b", capacity=4, max_message=size) as sub:
        sender = start_cpp(peer, "frames-pub", name + "b", 200, size)
        last = intact = 0
        while last < 200:
            with sub.view(timeout=30) as data:
                last = int.from_bytes(data[:8], "little")
                assert zlib.crc32(data[16:]) == int.from_bytes(data[8:12], "little")
                intact += 1
        sender.communicate(timeout=120)
        assert sender.returncode == 0 and intact > 0
