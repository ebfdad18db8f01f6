"""Crash consistency (ctest RecordKillTest): `shmring record` killed with SIGKILL at random points
while a lossless topic, a lossy topic and a queue flow. Every time: the file opens, every complete
message in it is one that was published (in order, no duplicates), `shmring record --recover`
makes a complete file with exactly those messages and a loss count equal to the jumps in their
sequence numbers, and nothing of the recorder is left in /dev/shm."""

import os
import random
import signal
import subprocess
import time

from conftest import SCALE, SHMRING, Recorder, dump, info, need, publisher, stat, wait_for

ROUNDS = max(4, int(float(os.environ.get("SHMRING_RECORD_KILL_ROUNDS", "20")) * SCALE))


def test_recorder_killed_at_random_points(tmp_path, names, procs):
    need(SHMRING, "SHMRING_CLI")
    rng = random.Random(27)
    lossless, lossy, queue = names("k_lossless"), names("k_lossy"), names("k_queue")
    pubs = {
        lossless: publisher(procs, "topic", lossless, "--lossless", "--timeout", "60"),
        lossy: publisher(procs, "topic", lossy, "--capacity", "65536"),
        queue: publisher(procs, "queue", queue, "--capacity", "1024", "--timeout", "60"),
    }
    wait_for(lambda: all(stat(n) for n in pubs), what="the channels")
    consumer = procs([SHMRING, "sub", queue, "--timeout", "600"], text=True, stdout=subprocess.DEVNULL)
    sent = {name: [] for name in pubs}
    counter = [0]

    def publish(k):
        for _ in range(k):
            for name, p in pubs.items():
                line = f"{name[-4:]} {counter[0]:08d} " + "z" * (counter[0] % 61)
                sent[name].append(line)
                p.stdin.write(line + "\n")
            counter[0] += 1
        for p in pubs.values():
            p.stdin.flush()

    for round_ in range(ROUNDS):
        out = str(tmp_path / f"k{round_}.mcap")
        options = ["--flush-interval", f"{rng.choice([10, 50, 200])}ms", "--chunk-size", rng.choice(["2K", "16K", "1M"]),
                   "--compression", rng.choice(["zstd", "none"]), "--tap-poll-us", "200"]
        rec = Recorder(procs, out, list(pubs), *options)
        for name in pubs:
            rec.wait_recording(name)
        start = {name: len(lines) for name, lines in sent.items()}
        start[queue] = 0  # the tap also sees items still waiting from before it started
        publish(rng.randint(50, 3000))
        time.sleep(rng.uniform(0.0, 0.3))
        publish(rng.randint(0, 1000))
        time.sleep(rng.uniform(0.0, 0.05))
        rec.process.send_signal(signal.SIGKILL)
        rec.process.wait()

        # What the killed recorder left: readable, and every message one that was published.
        left = dump(out)
        check_messages(left["messages"], sent, start)
        recovered = str(tmp_path / f"k{round_}.recovered.mcap")
        r = subprocess.run([SHMRING, "record", "--recover", out, "-o", recovered], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        fixed = dump(recovered)
        assert fixed["summary"]["complete"]
        assert fixed["messages"] == left["messages"]
        described = info(recovered)
        assert described["complete"] and described["loss_from_metadata"]
        by_topic = {c["topic"]: c for c in described["channels"]}
        for name in pubs:
            msgs = [m for m in fixed["messages"] if m[0] == name]
            if not msgs:
                continue
            jumps = sum(b[1] - a[1] - 1 for a, b in zip(msgs, msgs[1:]))
            assert by_topic[name]["lost"] >= jumps  # plus any before its first message
            if name == lossless:
                assert jumps == 0  # a lossless topic has no gaps in a file
        # In place, too (the default).
        r = subprocess.run([SHMRING, "record", "--recover", out], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert dump(out)["messages"] == left["messages"]
    # The consumer goes first (killed), so the producer, closing normally, is the queue's last
    # endpoint and removes it (a channel whose last endpoint was killed stays until gc).
    consumer.kill()
    consumer.wait()
    for p in pubs.values():
        p.stdin.close()
        assert p.wait(timeout=120) == 0


def check_messages(messages, sent, start):
    """Every message is one that was published on its channel after the recorder started, in
    the order published, none twice."""
    position = {}
    for topic, sequence, log_time, publish_time, data in messages:
        line = data.decode()
        lines = sent[topic]
        at = position.get(topic, start[topic])
        # Find it at or after the last one seen (the recorder may have missed some: lossy, tap).
        try:
            index = lines.index(line, at)
        except ValueError:
            raise AssertionError(f"{topic}: {line!r} was not published (or is out of order)")
        position[topic] = index + 1
