"""Every channel class, its copying calls, options, and the error rule."""

import errno
import os
import threading

import pytest

import shmring


def test_topic_round_trip_and_counters(name):
    with shmring.TopicPublisher(name, capacity=1 << 16, max_message=1024) as pub, \
            shmring.TopicSubscriber(name) as sub:
        assert sub.try_receive() is None
        assert pub.try_send(b"first") is True
        pub.send(bytearray(b"second"))
        pub.send(memoryview(b"xthirdx")[1:-1])
        assert sub.receive(timeout=1) == b"first"
        assert sub.receive(timeout=1) == b"second"
        assert sub.try_receive() == b"third"
        assert sub.received == 3 and sub.lost == 0
        assert pub.max_message == 1024 and not pub.lossless
        assert sub.stats()["received"] == 3
        st = shmring.stats(name)
        assert st["kind"] == "topic" and st["sent"] == 3
        assert name in shmring.list_channels()


def test_receive_into_fills_a_callers_buffer(name):
    with shmring.TopicPublisher(name, capacity=1 << 16, max_message=256) as pub, \
            shmring.TopicSubscriber(name) as sub:
        pub.send(b"0123456789")
        small = bytearray(4)
        with pytest.raises(ValueError, match="too small"):
            sub.receive_into(small, timeout=1)
        buf = bytearray(256)
        assert sub.receive_into(buf, timeout=1) == 10  # not consumed by the failed call
        assert bytes(buf[:10]) == b"0123456789"
        assert sub.try_receive_into(buf) is None


def test_lossy_subscriber_counts_what_it_lost(name):
    with shmring.TopicPublisher(name, capacity=4096, max_message=256) as pub, \
            shmring.TopicSubscriber(name) as sub:
        for i in range(1000):
            pub.send(i.to_bytes(4, "little") * 16)
        got = [m for m in iter(sub.try_receive, None)]
        assert 0 < len(got) < 1000
        assert sub.lost + len(got) == 1000


def test_lossless_publisher_waits_then_times_out(name):
    with shmring.TopicPublisher(name, capacity=4096, max_message=256, lossless=True) as pub, \
            shmring.TopicSubscriber(name, lossless=True) as sub:
        sent = 0
        while pub.try_send(b"x" * 200):
            sent += 1
        with pytest.raises(TimeoutError):
            pub.send(b"x" * 200, timeout=0.05)
        assert sub.receive(timeout=1) == b"x" * 200
        assert pub.try_send(b"y")


def test_queue_round_trip(name):
    with shmring.QueueProducer(name, capacity=8, max_message=64) as producer, \
            shmring.QueueConsumer(name) as consumer:
        assert producer.capacity == 8 and consumer.max_message == 64
        for i in range(8):
            assert producer.try_send(bytes([i]) * (i + 1))
        assert producer.try_send(b"full") is False
        assert producer.size == 8
        assert [consumer.receive(timeout=1) for _ in range(8)] == [bytes([i]) * (i + 1) for i in range(8)]
        with pytest.raises(TimeoutError):
            consumer.receive(timeout=0.02)


def test_frames_newest_first(name):
    with shmring.FramePublisher(name, capacity=3, max_message=1 << 16) as pub, \
            shmring.FrameSubscriber(name) as sub:
        for i in range(5):
            pub.send(bytes([i]) * 1000)
        assert sub.receive(timeout=1) == bytes([4]) * 1000  # the newest
        assert sub.try_receive() is None
        assert pub.frames_published == 5


def test_blocking_iteration_and_closed_endpoints(name):
    pub = shmring.TopicPublisher(name)
    sub = shmring.TopicSubscriber(name)
    pub.send(b"a")
    assert next(iter(sub)) == b"a"
    sub.close()
    assert sub.closed
    with pytest.raises(ValueError, match="closed"):
        sub.try_receive()
    with pytest.raises(StopIteration):
        next(sub)
    sub.close()  # twice is fine
    pub.close()


def test_errors_follow_one_rule(name):
    with pytest.raises(FileNotFoundError):
        shmring.TopicSubscriber(name, create=False)
    with pytest.raises(ValueError):
        shmring.TopicPublisher("bad/name")
    with pytest.raises(ValueError):
        shmring.TopicPublisher("")
    with pytest.raises(ValueError):
        shmring.QueueProducer(name, capacity=3)  # not a power of two
    with pytest.raises(ValueError):
        shmring.TopicPublisher(name, open_timeout=-1)
    with pytest.raises(TypeError):
        shmring.TopicPublisher(name, no_such_option=1)
    with shmring.TopicPublisher(name, max_message=64) as pub:
        with pytest.raises(ValueError, match="max_message"):
            pub.send(b"x" * 65)
        with pytest.raises(TypeError):
            pub.send("text is not bytes")
        with pytest.raises(shmring.MismatchError, match="already has a live publisher"):
            shmring.TopicPublisher(name)
        with pytest.raises(shmring.MismatchError):
            shmring.QueueConsumer(name)  # a topic, not a queue
        with pytest.raises(shmring.MismatchError):
            shmring.TopicSubscriber(name, max_message=128)  # the channel's limit is 64
        # Delivery is each subscriber's own choice: lossless on a lossy-by-default topic is fine.
        with shmring.TopicSubscriber(name, lossless=True) as lossless_sub:
            assert lossless_sub.lossless
        with pytest.raises(ValueError):
            shmring.TopicSubscriber(name).receive(timeout=-1)
    assert issubclass(shmring.EvictedError, shmring.Error)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become another user")
def test_permission_denied_for_another_user(name, spawn):
    with shmring.TopicPublisher(name, permissions=0o600):
        child = spawn(f"""
            import os, shmring
            os.setgid(65534); os.setuid(65534)
            try:
                shmring.TopicSubscriber({name!r}, create=False)
            except PermissionError as e:
                raise SystemExit(0)
            raise SystemExit(3)
        """)
        assert child.wait(timeout=30) == 0


def test_wait_fd_and_events(name):
    with shmring.TopicPublisher(name) as pub, shmring.TopicSubscriber(name) as sub:
        fd = sub.wait_fd()
        assert fd >= 0 and sub.wait_fd() == fd
        assert sub.try_receive() is None  # arms
        pub.send(b"wake")
        assert shmring.WaitEvent.DATA in shmring.WaitEvent(sub.take_wait_events())
    with shmring.TopicSubscriber(name + "ro_pub") as owner:
        ro = shmring.TopicSubscriber(name + "ro_pub", read_only=True)
        with pytest.raises(ValueError, match="read_only"):
            ro.wait_fd()
        ro.close()
        del owner


def test_second_thread_can_use_another_endpoint(name):
    # Endpoints are guarded: two threads on one endpoint never corrupt it (they take turns).
    with shmring.QueueProducer(name, capacity=1024) as producer, shmring.QueueConsumer(name) as consumer:
        def produce():
            for i in range(2000):
                producer.send(i.to_bytes(4, "little"), timeout=5)
        threads = [threading.Thread(target=produce) for _ in range(2)]
        for t in threads:
            t.start()
        got = [int.from_bytes(consumer.receive(timeout=5), "little") for _ in range(4000)]
        for t in threads:
            t.join()
        assert sorted(got) == sorted(list(range(2000)) * 2)


def test_stubs_name_every_public_class():
    import os
    stub = os.path.join(os.path.dirname(shmring.__file__), "__init__.pyi")
    text = open(stub).read()
    for public in shmring.__all__:
        assert public in text, public
    assert shmring.TopicSubscriber.receive.__doc__  # docstrings reach help()
