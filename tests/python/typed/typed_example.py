"""A typed program against shmring's stubs: `mypy --strict` over it must pass (tests/python/
test_packaging.py runs it). It is also run, so every line is real."""

from __future__ import annotations

import asyncio
import selectors
import sys

import shmring


def topic(name: str) -> list[bytes]:
    got: list[bytes] = []
    with shmring.TopicPublisher(name, capacity=1 << 16, max_message=256, permissions=0o600,
                                wait_strategy=shmring.WaitStrategy.PARK, max_publishers=2,
                                history=4) as pub, \
            shmring.TopicSubscriber(name, start="oldest", delivery="lossless") as sub:
        publisher_id: int = pub.publisher_id
        delivery: str = sub.delivery
        assert delivery == "lossless" and pub.history == 4 and pub.max_publishers == 2
        pub.send(b"x")
        sent: bool = pub.try_send(bytearray(b"y"))
        assert sent
        with pub.loan(3) as buffer:
            buffer[:] = b"abc"
        message: bytes = sub.receive(timeout=1.0)
        got.append(message)
        maybe: bytes | None = sub.try_receive()
        if maybe is not None:
            got.append(maybe)
        view = sub.view(timeout=1.0)
        sequence: int = view.sequence
        assert sequence > 0 and view.publisher == publisher_id and view.publisher_sequence >= 0
        missed: int = sub.history_missed
        assert missed == 0 and sub.last_publisher == publisher_id
        with view as data:
            got.append(bytes(data))
        events: shmring.WaitEvent = sub.take_wait_events()
        assert isinstance(events, shmring.WaitEvent)
        with selectors.DefaultSelector() as selector:
            selector.register(sub, selectors.EVENT_READ)
        name_back: str = sub.name
        assert name_back == name
        stats: dict[str, object] = shmring.stats(name)
        assert stats["kind"] == "topic"
    return got


def queue(name: str) -> int:
    async def main() -> int:
        with shmring.QueueProducer(name, capacity=8) as producer, shmring.QueueConsumer(name) as consumer:
            await producer.send_async(b"job")
            job: bytes = await consumer.receive_async()
            buffer = bytearray(consumer.max_message)
            producer.send(b"12")
            n: int = consumer.receive_into(buffer, timeout=1)
            return len(job) + n
    return asyncio.run(main())


def segment(key: str) -> None:
    with shmring.SharedMemory(key, create=True, size=64) as shm:
        shm.buf[:2] = b"hi"
        assert shm.name == key
        shm.unlink()
    with shmring.SystemSemaphore(key, 1, shmring.SemaphoreAccessMode.CREATE) as sem:
        assert sem.key == key
    shmring.SystemSemaphore(key).remove()


if __name__ == "__main__":
    segment(sys.argv[1] + "s")
    print(topic(sys.argv[1]), queue(sys.argv[1] + "q"))
