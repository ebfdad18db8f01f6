"""No misuse of loans, views, arrays or threads crashes the interpreter or corrupts a message
(issue 23, defects 1, 2 and 7). The crash cases run in a child process: a segfault is a failed
test, not a dead test run."""

import numpy as np
import pytest

import shmring
from conftest import assert_clean_exit, run_python


def test_large_receive_racing_close_from_another_thread(name):
    # 6 MiB messages are copied without the GIL; close() from another thread must wait for the
    # copy instead of unmapping the ring under it (it used to SIGSEGV).
    result = run_python("""
        import random, sys, threading, time, shmring
        name = sys.argv[1]
        payload = b"Z" * (6 << 20)
        for round in range(40):
            pub = shmring.TopicPublisher(name, capacity=1 << 25, max_message=6 << 20)
            sub = shmring.TopicSubscriber(name, create=False)
            stop = threading.Event()
            def publish():
                while not stop.is_set():
                    pub.send(payload)
            def receive():
                while True:
                    try:
                        assert sub.receive(timeout=2) == payload
                    except ValueError:   # closed
                        return
            threads = [threading.Thread(target=publish), threading.Thread(target=receive)]
            for t in threads:
                t.start()
            time.sleep(random.uniform(0.001, 0.02))
            sub.close()
            threads[1].join()
            stop.set()
            threads[0].join()
            pub.close()
        print("ok")
    """, name, timeout=300)
    assert_clean_exit(result, "ok")


def test_loan_with_an_array_is_never_reused_nor_unmapped(name):
    # The sequence: publish() refused while the array lives used to abandon the loan, so
    # the array's next write landed in the next message, and after close it segfaulted.
    result = run_python("""
        import sys, numpy as np, shmring
        name = sys.argv[1]
        pub = shmring.TopicPublisher(name, max_message=64)
        sub = shmring.TopicSubscriber(name)
        loan = pub.loan(8)
        arr = np.frombuffer(loan.buffer, np.uint8)
        try:
            loan.publish()
            raise SystemExit("published while an array used the buffer")
        except BufferError:
            pass
        try:
            pub.send(b"GOODGOOD")   # the loan is still out: refused, not sent into its room
            raise SystemExit("sent while the loan was out")
        except BufferError:
            pass
        arr[:] = ord("X")
        assert sub.try_receive() is None   # nothing published, nothing corrupted
        pub.close()
        sub.close()
        arr[:] = 1                          # still mapped: the loan pins the mapping
        assert int(arr.sum()) == 8
        del arr, loan                       # the loan is abandoned, the channel closes
        print("ok")
    """, name)
    assert_clean_exit(result, "ok")


def test_forgotten_del_in_a_frame_loan_block(name):
    # docs' 1080p example without `del image`: the block's end refuses to publish; the array keeps
    # the room until it is gone, and nothing it writes reaches a subscriber.
    result = run_python("""
        import sys, numpy as np, shmring
        name = sys.argv[1]
        H, W = 108, 192
        pub = shmring.FramePublisher(name, capacity=3, max_message=H * W * 3)
        sub = shmring.FrameSubscriber(name)
        try:
            with pub.loan() as buffer:
                image = np.frombuffer(buffer, np.uint8).reshape(H, W, 3)
                image[:] = 1
            raise SystemExit("published with the array alive")
        except BufferError as e:
            assert "abandoned once" in str(e), e
        try:
            pub.send(bytes(H * W * 3))
            raise SystemExit("sent while the loan was out")
        except BufferError:
            pass
        image[:] = 9
        assert sub.try_receive() is None
        del image                                 # the loan is abandoned now
        pub.send(b"\\2" * (H * W * 3))
        assert sub.receive(timeout=5) == b"\\2" * (H * W * 3)
        with pub.loan() as buffer:                # and loans work again
            buffer[:3] = b"abc"
        assert sub.receive(timeout=5)[:3] == b"abc"
        image = np.frombuffer(pub.loan().buffer, np.uint8)
        pub.close(); sub.close()
        image[:] = 7                              # mapped until the array goes
        print("ok")
    """, name)
    assert_clean_exit(result, "ok")


def test_arrays_over_views_outlive_close_and_release(name):
    result = run_python("""
        import sys, numpy as np, shmring
        name = sys.argv[1]
        producer = shmring.QueueProducer(name, capacity=4, max_message=64)
        consumer = shmring.QueueConsumer(name)
        producer.send(bytes(range(64)))
        view = consumer.view(timeout=5)
        part = view.data[8:16]                # a slice shares the export
        array = np.frombuffer(view.data, np.uint8)
        view.release()                        # deferred: arrays still read it
        consumer.close()
        producer.close()
        assert int(array[63]) == 63 and bytes(part) == bytes(range(8, 16))
        del array
        assert bytes(part) == bytes(range(8, 16))
        del part
        try:
            memoryview(view._lease) if view._lease else None
        except ValueError:
            pass
        print("ok")
    """, name)
    assert_clean_exit(result, "ok")


def test_a_given_back_lease_exports_nothing(name):
    with shmring.TopicPublisher(name) as pub, shmring.TopicSubscriber(name) as sub:
        pub.send(b"abc")
        view = sub.view(timeout=1)
        lease = view._lease
        view.release()
        with pytest.raises(ValueError, match="given back"):
            memoryview(lease)


def test_view_released_while_an_array_lives_keeps_the_item_until_it_goes(name):
    with shmring.QueueProducer(name, capacity=4, max_message=64) as producer, \
            shmring.QueueConsumer(name) as consumer:
        producer.send(b"first")
        producer.send(b"second")
        view = consumer.view(timeout=1)
        array = np.frombuffer(view.data, np.uint8)
        view.release()
        with pytest.raises(BufferError, match="still in use"):
            consumer.try_receive()
        assert bytes(array) == b"first"
        del array
        assert consumer.receive(timeout=1) == b"second"


def test_lossy_view_lapped_while_an_array_lives_raises(name):
    # The block's release used to be deferred while the array lived, so a lapped lossy view was
    # never reported (the array's bytes changed silently).
    with shmring.TopicPublisher(name, capacity=4096, max_message=512) as pub, \
            shmring.TopicSubscriber(name) as sub:
        pub.send(b"a" * 500)
        with pytest.raises(shmring.OverwrittenError):
            with sub.view(timeout=1) as data:
                array = np.frombuffer(data, np.uint8)
                for _ in range(40):
                    pub.send(b"b" * 500)  # laps the viewer
        assert len(array) == 500  # still mapped (contents are the publisher's now, as documented)
        del array
        pub.send(b"next")
        assert sub.receive(timeout=1) == b"next"


def test_lossy_view_not_lapped_with_an_array_is_fine(name):
    with shmring.TopicPublisher(name, capacity=1 << 16, max_message=512) as pub, \
            shmring.TopicSubscriber(name) as sub:
        pub.send(b"a" * 500)
        with sub.view(timeout=1) as data:
            array = np.frombuffer(data, np.uint8)
        assert bytes(array) == b"a" * 500
        pub.send(b"b")
        assert sub.receive(timeout=1) == b"b"  # the view was given back at the block's end
