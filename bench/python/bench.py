#!/usr/bin/env python3
"""Python IPC benchmark: shmring (copy and zero-copy) beside multiprocessing.Queue,
multiprocessing.Pipe, multiprocessing.shared_memory + semaphores, and pyzmq over ipc://, in one
run. Two processes (fork), pinned to two cores; medians of --reps repetitions.

  PYTHONPATH=build/plain/python python3 bench/python/bench.py [--quick] [--json out.jsonl]

Round trip: A sends a message, B sends it back; A times N round trips (p50 of per-trip times).
One-CPU round trip (rtt-1cpu, 64 B): the same with both processes pinned to one CPU, where a
waiter that spins takes the time its peer needs (shmring's Python default must not lose to a pipe
there; shmring-hybrid is the C++ default wait, 2000 spins before sleeping).
Throughput: A sends N messages, B receives them; B's rate. Sizes: 64 B, 1 MiB, 6 MiB (a 1920x1080
RGB frame). Zero-copy rows (shmring-zc) write and read the first 8 bytes in place (loan/view), the
rest of the frame untouched, which is what zero-copy is for; every other row moves every byte.
"""

import argparse
import json
import multiprocessing as mp
import os
import statistics
import sys
import time
from multiprocessing import shared_memory

import shmring

FRAME = 1920 * 1080 * 3
SIZES = [64, 1 << 20, FRAME]


def pin(cpu):
    try:
        os.sched_setaffinity(0, {cpu})
    except OSError:
        pass


# --- transports: each gives (send(bytes-like), receive() -> bytes-like) for one side -------------

class ShmringTopic:
    """Two lossless topics (ab, ba); copy: send/receive; zero-copy: loan/view; spin: try_send /
    try_receive in a loop (busy-polling, as the C++ benchmark's "spin" rows do)."""

    def __init__(self, tag, size, zero_copy, spin=False, **wait):
        self.names = (f"pybench-{tag}-ab", f"pybench-{tag}-ba")
        self.size, self.zero_copy, self.spin = size, zero_copy, spin
        # The smallest ring that holds two messages: a ring much larger than the caches would make
        # every copy a trip to memory, which the one-slot alternatives do not pay.
        self.options = dict(capacity=1 << max(16, (2 * size + 64).bit_length()), max_message=size, lossless=True,
                            **wait)

    def open(self, side):
        out_name, in_name = self.names if side == 0 else self.names[::-1]
        self.rx = shmring.TopicSubscriber(in_name, **self.options)
        self.tx = shmring.TopicPublisher(out_name, **self.options)

    def ready(self):
        return True

    def send(self, message):
        if self.spin:
            while not self.tx.try_send(message):
                pass
            return
        if self.zero_copy:
            loan = self.tx.loan(self.size, timeout=30)
            loan.buffer[:8] = message[:8]
            loan.publish()
        else:
            self.tx.send(message, timeout=30)

    def receive(self):
        if self.spin:
            receive = self.rx.try_receive
            while (message := receive()) is None:
                pass
            return message
        if self.zero_copy:
            with self.rx.view(timeout=30) as data:
                return bytes(data[:8])
        return self.rx.receive(timeout=30)

    def close(self):
        self.tx.close()
        self.rx.close()


class MpQueue:
    def __init__(self, tag, size, zero_copy):
        self.q = (mp.Queue(), mp.Queue())

    def open(self, side):
        self.tx, self.rx = (self.q[0], self.q[1]) if side == 0 else (self.q[1], self.q[0])

    def send(self, message):
        self.tx.put(message)

    def receive(self):
        return self.rx.get()

    def close(self):
        pass


class MpPipe:
    def __init__(self, tag, size, zero_copy):
        self.a, self.b = mp.Pipe()

    def open(self, side):
        self.end = self.a if side == 0 else self.b

    def send(self, message):
        self.end.send_bytes(message)

    def receive(self):
        return self.end.recv_bytes()

    def close(self):
        pass


class SharedMemoryLock:
    """The hand-made way: one shared_memory block per direction, a lock, and two semaphores as
    'full' / 'empty' signals; every message is copied in and out."""

    def __init__(self, tag, size, zero_copy):
        self.size = size
        self.blocks = [shared_memory.SharedMemory(create=True, size=size + 8) for _ in range(2)]
        self.lock = [mp.Lock(), mp.Lock()]
        self.full = [mp.Semaphore(0), mp.Semaphore(0)]
        self.empty = [mp.Semaphore(1), mp.Semaphore(1)]

    def open(self, side):
        self.out, self.inn = (0, 1) if side == 0 else (1, 0)

    def send(self, message):
        self.empty[self.out].acquire()
        with self.lock[self.out]:
            buf = self.blocks[self.out].buf
            buf[:8] = len(message).to_bytes(8, "little")
            buf[8:8 + len(message)] = message
        self.full[self.out].release()

    def receive(self):
        self.full[self.inn].acquire()
        with self.lock[self.inn]:
            buf = self.blocks[self.inn].buf
            n = int.from_bytes(buf[:8], "little")
            message = bytes(buf[8:8 + n])
        self.empty[self.inn].release()
        return message

    def close(self):
        pass

    def cleanup(self):
        for block in self.blocks:
            block.close()
            block.unlink()


class Zmq:
    def __init__(self, tag, size, zero_copy):
        self.paths = (f"ipc:///tmp/pybench-{tag}-ab", f"ipc:///tmp/pybench-{tag}-ba")

    def open(self, side):
        import zmq
        self.context = zmq.Context()
        self.tx = self.context.socket(zmq.PUSH)
        self.rx = self.context.socket(zmq.PULL)
        out_path, in_path = self.paths if side == 0 else self.paths[::-1]
        self.rx.bind(in_path)
        self.tx.connect(out_path)

    def send(self, message):
        self.tx.send(message, copy=len(message) < 65536)

    def receive(self):
        return self.rx.recv(copy=False).buffer

    def close(self):
        self.tx.close(linger=0)
        self.rx.close(linger=0)
        self.context.term()


TRANSPORTS = {
    "shmring": lambda t, s: ShmringTopic(t, s, False),
    "shmring-zc": lambda t, s: ShmringTopic(t, s, True),
    "shmring-spin": lambda t, s: ShmringTopic(t, s, False, spin=True),
    "shmring-hybrid": lambda t, s: ShmringTopic(t, s, False, wait_strategy=shmring.WaitStrategy.HYBRID,
                                                spin_iterations=2000),
    "shmring-park": lambda t, s: ShmringTopic(t, s, False, wait_strategy=shmring.WaitStrategy.PARK),
    "mp.Queue": lambda t, s: MpQueue(t, s, False),
    "mp.Pipe": lambda t, s: MpPipe(t, s, False),
    "shared_memory+lock": lambda t, s: SharedMemoryLock(t, s, False),
    "pyzmq-ipc": lambda t, s: Zmq(t, s, False),
}


# --- the two sides --------------------------------------------------------------------------------

# Rows that only some transports run: the one-CPU round trip, 64 B.
ONE_CPU = ("shmring", "shmring-hybrid", "shmring-park", "mp.Pipe")


def cpus_for(mode):
    return (0, 0) if mode == "rtt-1cpu" else (0, 1)


def side_b(transport, mode, count, warmup, size, barrier, results):
    pin(cpus_for(mode)[1])
    transport.open(1)
    barrier.wait()
    if mode.startswith("rtt"):
        for _ in range(count + warmup):
            transport.send(transport.receive())
    else:
        transport.receive()  # the first message starts the clock
        start = time.perf_counter()
        for _ in range(count - 1):
            transport.receive()
        results.put((count - 1) / (time.perf_counter() - start))
    barrier.wait()
    transport.close()


def run(name, mode, size, count):
    tag = f"{os.getpid()}-{int(time.time() * 1e6) % 10 ** 9}"
    transport = TRANSPORTS[name](tag, size)
    barrier, results = mp.Barrier(2), mp.Queue()
    warmup = max(count // 10, 5)
    other = mp.Process(target=side_b, args=(transport, mode, count, warmup, size, barrier, results))
    other.start()
    pin(cpus_for(mode)[0])
    transport.open(0)
    barrier.wait()
    message = os.urandom(size) if size <= 1 << 16 else bytes(size)
    if mode.startswith("rtt"):
        trips = []
        for i in range(count + warmup):
            t0 = time.perf_counter_ns()
            transport.send(message)
            transport.receive()
            if i >= warmup:
                trips.append(time.perf_counter_ns() - t0)
        value = statistics.median(trips)
    else:
        for _ in range(count):
            transport.send(message)
        value = results.get(timeout=120)
    barrier.wait()
    transport.close()
    other.join(timeout=60)
    if hasattr(transport, "cleanup"):
        transport.cleanup()
    return value


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer messages and 1 repetition")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--json", help="append one JSON object per row to this file")
    parser.add_argument("--only", help="comma-separated transports")
    parser.add_argument("--modes", default="rtt,throughput,rtt-1cpu", help="comma-separated: rtt, throughput, rtt-1cpu")
    args = parser.parse_args()
    mp.set_start_method("fork")
    reps = 1 if args.quick else args.reps
    names = args.only.split(",") if args.only else [n for n in TRANSPORTS if n not in ("shmring-hybrid", "shmring-park")]
    modes = args.modes.split(",")
    rows = []
    for size in SIZES:
        for mode in modes:
            if mode == "rtt-1cpu" and size != 64:
                continue
            base = {64: 20000, 1 << 20: 200, FRAME: 60}[size] if mode == "rtt" else {64: 200000, 1 << 20: 600, FRAME: 150}[size]
            if mode == "rtt-1cpu":
                base = 4000
            if args.quick:
                base = max(base // 10, 20)
            for name in (n for n in TRANSPORTS if n in ONE_CPU) if mode == "rtt-1cpu" else names:
                count = base // 4 if name in ("mp.Queue", "pyzmq-ipc") and size == 64 else base
                values = [run(name, mode, size, count) for _ in range(reps)]
                row = {"transport": name, "mode": mode, "size": size, "median": statistics.median(values),
                       "min": min(values), "max": max(values), "reps": reps, "count": count,
                       "cpus": ",".join(map(str, cpus_for(mode))), "python": sys.version.split()[0]}
                rows.append(row)
                unit = "ns" if mode.startswith("rtt") else "msg/s"
                print(f"{name:20} {mode:10} {size:>8} B  median {row['median']:12.0f} {unit}  "
                      f"(min {row['min']:.0f}, max {row['max']:.0f})", flush=True)
                if args.json:
                    with open(args.json, "a") as out:
                        out.write(json.dumps(row) + "\n")
    return rows


if __name__ == "__main__":
    main()
