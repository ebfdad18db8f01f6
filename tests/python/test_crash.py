"""A Python process killed with SIGKILL mid-loan or mid-view behaves as a C++ one: a queue item a
dead consumer viewed is redelivered, a producer's unpublished loan blocks nobody."""

import signal
import subprocess

import shmring


def test_consumer_killed_mid_view_has_its_item_redelivered(name, spawn):
    with shmring.QueueProducer(name, capacity=8, max_message=64) as producer:
        producer.send(b"precious")
        child = spawn(f"""
            import time, shmring
            consumer = shmring.QueueConsumer({name!r})
            view = consumer.view(timeout=5)
            print(bytes(view.data).decode(), flush=True)
            time.sleep(60)
        """, stdout=subprocess.PIPE, text=True)
        assert child.stdout.readline().strip() == "precious"
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        with shmring.QueueConsumer(name) as consumer:
            with consumer.view(timeout=10) as data:  # the recovery hands the item on
                assert bytes(data) == b"precious"
            assert shmring.stats(name)["items_redelivered"] == 1


def test_producer_killed_mid_loan_blocks_nobody(name, spawn):
    with shmring.QueueConsumer(name, capacity=8, max_message=64) as consumer:
        child = spawn(f"""
            import time, shmring
            producer = shmring.QueueProducer({name!r})
            loan = producer.loan(8, timeout=5)
            loan.buffer[:4] = b"half"
            print("loaned", flush=True)
            time.sleep(60)
        """, stdout=subprocess.PIPE, text=True)
        assert child.stdout.readline().strip() == "loaned"
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        with shmring.QueueProducer(name) as producer:
            producer.send(b"after")
            assert consumer.receive(timeout=10) == b"after"  # the dead claim is skipped
        assert shmring.stats(name)["claims_skipped"] == 1


def test_publisher_killed_mid_loan_never_shows_a_torn_message(name, spawn):
    with shmring.TopicSubscriber(name, capacity=1 << 16, max_message=1024) as sub:
        child = spawn(f"""
            import time, shmring
            pub = shmring.TopicPublisher({name!r})
            pub.send(b"whole")
            loan = pub.loan(512, timeout=5)
            loan.buffer[:4] = b"torn"
            print("loaned", flush=True)
            time.sleep(60)
        """, stdout=subprocess.PIPE, text=True)
        assert child.stdout.readline().strip() == "loaned"
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        assert sub.receive(timeout=5) == b"whole"
        assert sub.try_receive() is None
        with shmring.TopicPublisher(name) as pub:  # a new publisher takes over
            pub.send(b"next")
        assert sub.receive(timeout=5) == b"next"
