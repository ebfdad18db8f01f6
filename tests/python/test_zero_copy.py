"""Loans and views: memoryviews into the channel, numpy without copies, and no way to reach the
memory once it was given back."""

import numpy as np
import pytest

import shmring

H, W = 1080, 1920


def mapping_of(address):
    """The /proc/self/maps line whose range holds `address`."""
    with open("/proc/self/maps") as maps:
        for line in maps:
            low, high = (int(x, 16) for x in line.split()[0].split("-"))
            if low <= address < high:
                return line.strip()
    return ""


def test_1080p_frame_into_numpy_without_a_copy(name):
    frame_bytes = H * W * 3
    with shmring.FramePublisher(name, capacity=3, max_message=frame_bytes) as pub, \
            shmring.FrameSubscriber(name) as sub:
        with pub.loan() as buffer:
            image = np.frombuffer(buffer, np.uint8).reshape(H, W, 3)
            image[:] = 0
            image[540, 960] = (1, 2, 3)
            # The array is the channel's memory: no copy was made.
            assert "shmring_chan." in mapping_of(image.ctypes.data)
            del image  # before the loan is published
        with sub.view(timeout=1) as frame:
            image = np.frombuffer(frame, np.uint8).reshape(H, W, 3)
            assert not image.flags.owndata and not image.flags.writeable
            assert "shmring_chan." in mapping_of(image.ctypes.data)
            assert tuple(image[540, 960]) == (1, 2, 3)
            assert image.sum() == 6


def test_view_used_after_its_block_raises(name):
    with shmring.TopicPublisher(name) as pub, shmring.TopicSubscriber(name) as sub:
        pub.send(b"payload")
        with sub.view(timeout=1) as data:
            assert bytes(data) == b"payload"
        with pytest.raises(ValueError):
            data[0]
        with pytest.raises(ValueError):
            bytes(data)
        view = sub.try_view()
        assert view is None


def test_a_numpy_array_keeps_its_view_until_it_is_gone(name):
    with shmring.QueueProducer(name, capacity=4, max_message=64) as producer, \
            shmring.QueueConsumer(name) as consumer:
        producer.send(bytes(range(64)))
        producer.send(b"second")
        with consumer.view(timeout=1) as data:
            array = np.frombuffer(data, np.uint8)
        # The block ended, but `array` still reads the item: it stays lent (and unconsumed).
        assert array[63] == 63
        with pytest.raises(BufferError, match="still in use"):
            consumer.try_receive()
        del array
        assert consumer.receive(timeout=1) == b"second"


def test_loan_published_by_the_block_abandoned_on_exception(name):
    with shmring.TopicPublisher(name, max_message=128) as pub, shmring.TopicSubscriber(name) as sub:
        with pub.loan(5) as buffer:
            buffer[:] = b"hello"
        assert sub.receive(timeout=1) == b"hello"
        with pytest.raises(RuntimeError):
            with pub.loan(5) as buffer:
                buffer[:] = b"nope!"
                raise RuntimeError("changed my mind")
        assert sub.try_receive() is None
        loan = pub.loan(100)
        loan.buffer[:3] = b"abc"
        loan.publish(3)
        assert sub.receive(timeout=1) == b"abc"
        with pytest.raises(ValueError):
            loan.buffer[0] = 1
        with pytest.raises(ValueError):
            loan.publish()


def test_loan_with_a_live_array_is_refused_and_stays_lent(name):
    with shmring.QueueProducer(name, capacity=4, max_message=64) as producer, \
            shmring.QueueConsumer(name) as consumer:
        loan = producer.loan(8)
        array = np.frombuffer(loan.buffer, np.uint8)
        array[:] = 7
        with pytest.raises(BufferError, match="not published"):
            loan.publish()
        assert consumer.try_receive() is None
        with pytest.raises(BufferError, match="still in use"):
            producer.send(b"other")  # one lease at a time: the loan is still out
        del array
        loan.publish()  # now it goes
        assert consumer.receive(timeout=1) == bytes([7]) * 8
        with producer.loan(8) as buffer:
            buffer[:] = b"12345678"
        assert consumer.receive(timeout=1) == b"12345678"


def test_closing_with_a_view_out_keeps_the_memory_mapped(name):
    pub = shmring.TopicPublisher(name, lossless=True)
    sub = shmring.TopicSubscriber(name, lossless=True)
    pub.send(b"still readable")
    view = sub.view(timeout=1)
    array = np.frombuffer(view.data, np.uint8)
    sub.close()  # the view holds the mapping until it is released
    assert bytes(array) == b"still readable"
    del array
    view.release()
    pub.close()


def test_queue_view_details_and_one_view_at_a_time(name):
    with shmring.QueueProducer(name, capacity=4, max_message=16) as producer, \
            shmring.QueueConsumer(name) as consumer:
        producer.send(b"one")
        producer.send(b"two")
        first = consumer.view(timeout=1)
        assert bytes(first.data) == b"one" and first.redelivered is False
        with pytest.raises(BufferError):
            consumer.view(timeout=1)
        first.release()
        first.release()  # twice is fine
        with consumer.view(timeout=1) as data:
            assert bytes(data) == b"two"


def test_lossy_view_overwritten_while_viewed_raises(name):
    with shmring.TopicPublisher(name, capacity=4096, max_message=512) as pub, \
            shmring.TopicSubscriber(name) as sub:
        pub.send(b"a" * 500)
        with pytest.raises(shmring.OverwrittenError):
            with sub.view(timeout=1) as data:
                for _ in range(40):
                    pub.send(b"b" * 500)  # laps the viewer
                assert len(data) == 500
