"""asyncio with several tasks per endpoint (issue 23, defect 4) and iteration that ends on close
(defect 5), sync and async."""

import asyncio
import threading
import time

import pytest

import shmring


def test_two_tasks_awaiting_one_consumer_both_get_an_item(name):
    # loop.add_reader keeps one callback per descriptor: the second waiter used to replace the
    # first, which was never woken while its item stayed queued.
    async def main():
        with shmring.QueueProducer(name, capacity=8, max_message=8) as producer, \
                shmring.QueueConsumer(name) as consumer:
            tasks = [asyncio.create_task(consumer.receive_async()) for _ in range(2)]
            await asyncio.sleep(0.05)  # both are waiting on the descriptor
            producer.send(b"a")
            producer.send(b"b")
            return sorted(await asyncio.wait_for(asyncio.gather(*tasks), 10))

    for _ in range(10):
        assert asyncio.run(main()) == [b"a", b"b"]


def test_many_tasks_share_a_stream_and_all_make_progress(name):
    async def main():
        with shmring.QueueProducer(name, capacity=16, max_message=8) as producer, \
                shmring.QueueConsumer(name) as consumer:
            got = {i: [] for i in range(4)}

            async def take(i):
                while True:
                    message = await consumer.receive_async()
                    if message == b"end":
                        return
                    got[i].append(int(message))
                    await asyncio.sleep(0.001)  # gives the others a turn

            async def give():
                for n in range(400):
                    await producer.send_async(str(n).encode())
                for _ in range(4):
                    await producer.send_async(b"end")

            await asyncio.wait_for(asyncio.gather(give(), *(take(i) for i in range(4))), 60)
            return got

    got = asyncio.run(main())
    assert sorted(sum(got.values(), [])) == list(range(400))
    assert all(got[i] for i in range(4)), {i: len(v) for i, v in got.items()}


def test_two_tasks_awaiting_room_both_send(name):
    async def main():
        with shmring.QueueProducer(name, capacity=2, max_message=8) as producer, \
                shmring.QueueConsumer(name) as consumer:
            producer.send(b"1")
            producer.send(b"2")
            tasks = [asyncio.create_task(producer.send_async(m)) for m in (b"3", b"4")]
            await asyncio.sleep(0.05)
            first = [consumer.receive(timeout=1), consumer.receive(timeout=1)]
            await asyncio.wait_for(asyncio.gather(*tasks), 10)
            return first + sorted([consumer.receive(timeout=1), consumer.receive(timeout=1)])

    assert asyncio.run(main()) == [b"1", b"2", b"3", b"4"]


def test_async_for_ends_when_another_task_closes(name):
    async def main():
        pub = shmring.TopicPublisher(name)
        sub = shmring.TopicSubscriber(name)
        pub.send(b"one")
        got = []

        async def consume():
            async for message in sub:
                got.append(message)

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.05)
        sub.close()
        await asyncio.wait_for(task, 10)
        pub.close()
        return got

    assert asyncio.run(main()) == [b"one"]


def test_async_for_ends_when_another_thread_closes(name):
    # The close races the task's registration with the event loop: many rounds, random delays.
    import random

    async def main():
        with shmring.TopicPublisher(name):
            sub = shmring.TopicSubscriber(name)
            threading.Timer(random.uniform(0, 0.01), sub.close).start()
            async for _ in sub:
                pass
            return sub.closed

    for _ in range(40):
        assert asyncio.run(asyncio.wait_for(main(), 10)) is True


def test_receive_async_raises_once_closed(name):
    async def main():
        with shmring.TopicPublisher(name):
            sub = shmring.TopicSubscriber(name)
            task = asyncio.create_task(sub.receive_async())
            await asyncio.sleep(0.02)
            sub.close()
            with pytest.raises(ValueError, match="closed"):
                await asyncio.wait_for(task, 10)

    asyncio.run(main())


def test_for_loop_ends_when_another_thread_closes(name):
    with shmring.TopicPublisher(name) as pub:
        sub = shmring.TopicSubscriber(name)
        pub.send(b"x")
        threading.Timer(0.2, sub.close).start()
        start = time.monotonic()
        assert list(sub) == [b"x"]  # ends instead of raising
        assert time.monotonic() - start < 30


def test_selectors_take_an_endpoint(name):
    import selectors
    with shmring.TopicPublisher(name) as pub, shmring.TopicSubscriber(name) as sub:
        assert sub.try_receive() is None
        with selectors.DefaultSelector() as selector:
            selector.register(sub, selectors.EVENT_READ)  # fileno()
            pub.send(b"ready")
            assert [key.fileobj for key, _ in selector.select(10)] == [sub]
            assert shmring.WaitEvent.DATA in sub.take_wait_events()
            assert sub.try_receive() == b"ready"
