"""The GIL is released while waiting, Ctrl-C interrupts a wait, asyncio waits on the descriptor."""

import asyncio
import signal
import threading
import time

import pytest

import shmring


def test_another_thread_runs_while_one_waits(name):
    with shmring.TopicSubscriber(name) as sub:
        progress = 0
        stop = threading.Event()

        def count():
            nonlocal progress
            while not stop.is_set():
                progress += 1

        counter = threading.Thread(target=count)
        counter.start()
        with pytest.raises(TimeoutError):
            sub.receive(timeout=0.5)
        before = progress
        stop.set()
        counter.join()
        # With the GIL held for the whole wait, the counter would barely have moved.
        assert before > 10000, before


def test_ctrl_c_interrupts_a_blocking_receive(name, spawn):
    child = spawn(f"""
        import sys, time, shmring
        sub = shmring.TopicSubscriber({name!r})
        print("waiting", flush=True)
        start = time.monotonic()
        try:
            sub.receive()                      # no timeout
        except KeyboardInterrupt:
            print(f"interrupted after {{time.monotonic() - start:.3f}} s", flush=True)
            raise SystemExit(0)
        raise SystemExit(3)
    """, stdout=__import__("subprocess").PIPE, text=True)
    assert child.stdout.readline().strip() == "waiting"
    time.sleep(0.2)
    child.send_signal(signal.SIGINT)
    assert child.wait(timeout=30) == 0
    print(child.stdout.read().strip())


def test_ctrl_c_interrupts_a_semaphore_and_a_lock_wait(name, spawn):
    child = spawn(f"""
        import shmring
        sem = shmring.SystemSemaphore({name!r} + "_sem", 0, shmring.SemaphoreAccessMode.CREATE)
        print("waiting", flush=True)
        try:
            sem.acquire()
        except KeyboardInterrupt:
            raise SystemExit(0)
        raise SystemExit(3)
    """, stdout=__import__("subprocess").PIPE, text=True)
    assert child.stdout.readline().strip() == "waiting"
    time.sleep(0.2)
    child.send_signal(signal.SIGINT)
    assert child.wait(timeout=30) == 0


def test_receive_async_and_async_for(name):
    async def main():
        with shmring.TopicPublisher(name) as pub, shmring.TopicSubscriber(name) as sub:
            loop = asyncio.get_running_loop()

            async def publish_later():
                for i in range(5):
                    await asyncio.sleep(0.01)
                    pub.send(bytes([i]))

            task = loop.create_task(publish_later())
            first = await asyncio.wait_for(sub.receive_async(), 5)
            rest = []
            async for message in sub:
                rest.append(message)
                if len(rest) == 4:
                    break
            await task
            return [first] + rest

    assert asyncio.run(main()) == [bytes([i]) for i in range(5)]


def test_send_async_waits_for_room(name):
    async def main():
        with shmring.QueueProducer(name, capacity=2, max_message=8) as producer, \
                shmring.QueueConsumer(name) as consumer:
            async def drain_later():
                got = []
                while len(got) < 6:
                    await asyncio.sleep(0.005)
                    message = consumer.try_receive()
                    if message is not None:
                        got.append(message)
                return got

            drainer = asyncio.get_running_loop().create_task(drain_later())
            for i in range(6):
                await asyncio.wait_for(producer.send_async(bytes([i])), 5)
            return await drainer

    assert asyncio.run(main()) == [bytes([i]) for i in range(6)]
