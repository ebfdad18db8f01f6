"""`shmring record` and `shmring replay` as a user runs them (ctest RecordCliTest): signals,
the pre-buffer triggered by the CLI and by SIGUSR1, rotation, info, replay with --json, and the
exit statuses of misuse."""

import json
import os
import signal
import subprocess
import time

from conftest import SHMRING, Recorder, dump, info, need, publisher, stat, wait_for


def cli(*args, **kw):
    return subprocess.run([SHMRING, *map(str, args)], capture_output=True, text=True, timeout=120, **kw)


def feed(p, lines):
    for line in lines:
        p.stdin.write(line + "\n")
    p.stdin.flush()


def test_sigterm_closes_the_file_complete_and_exits_0(tmp_path, names, procs):
    need(SHMRING, "SHMRING_CLI")
    topic = names("cli_term")
    pub = publisher(procs, "topic", topic, "--lossless")
    wait_for(lambda: stat(topic), what="the channel")
    out = str(tmp_path / "term.mcap")
    rec = Recorder(procs, out, [topic])
    rec.wait_recording(topic)
    feed(pub, [f"m{i}" for i in range(100)])
    time.sleep(0.3)
    assert rec.stop(signal.SIGTERM) == 0
    d = dump(out)
    assert d["summary"]["complete"]
    assert [m[4] for m in d["messages"]] == [f"m{i}".encode() for i in range(100)]
    assert any("wrote " + out in l for l in rec.lines)


def test_pre_buffer_is_written_on_the_cli_trigger_and_on_sigusr1(tmp_path, names, procs):
    need(SHMRING, "SHMRING_CLI")
    topic = names("cli_pre")
    pub = publisher(procs, "topic", topic, "--lossless")
    wait_for(lambda: stat(topic), what="the channel")
    for how in ("cli", "signal"):
        out = str(tmp_path / f"pre_{how}.mcap")
        trigger = f"t{os.getpid()}{how}"
        rec = Recorder(procs, out, [topic], "--pre-buffer", "10s", "--trigger-name", trigger)
        rec.wait_recording(topic)
        feed(pub, [f"{how} before {i}" for i in range(50)])
        time.sleep(0.3)
        assert not os.path.exists(out)  # nothing written before the trigger
        if how == "cli":
            r = cli("record", "trigger", trigger)
            assert r.returncode == 0, r.stderr
        else:
            rec.process.send_signal(signal.SIGUSR1)
        wait_for(lambda: os.path.exists(out), what="the triggered file")
        feed(pub, [f"{how} after {i}" for i in range(10)])
        time.sleep(0.3)
        assert rec.stop() == 0
        got = [m[4].decode() for m in dump(out)["messages"]]
        assert got == [f"{how} before {i}" for i in range(50)] + [f"{how} after {i}" for i in range(10)]
    r = cli("record", "trigger", f"nobody{os.getpid()}")
    assert r.returncode == 1 and "no recorder" in r.stderr


def test_split_size_info_and_replay(tmp_path, names, procs):
    need(SHMRING, "SHMRING_CLI")
    topic = names("cli_split")
    pub = publisher(procs, "topic", topic, "--lossless")
    wait_for(lambda: stat(topic), what="the channel")
    out = str(tmp_path / "split.mcap")
    rec = Recorder(procs, out, [topic], "--split-size", "16K", "--chunk-size", "4K", "--compression", "none")
    rec.wait_recording(topic)
    lines = [f"split {i} " + "p" * 100 for i in range(600)]
    feed(pub, lines)
    time.sleep(0.5)
    assert rec.stop() == 0
    files = sorted(f for f in os.listdir(tmp_path) if f.startswith("split_"))
    assert len(files) >= 3 and files[0] == "split_000.mcap"
    got = []
    for f in files:
        described = info(str(tmp_path / f))
        assert described["complete"] and described["lost"] == 0
        got += [m[4].decode() for m in dump(str(tmp_path / f))["messages"]]
    assert got == lines
    text = cli("record", "info", str(tmp_path / files[0]))
    assert text.returncode == 0 and "complete" in text.stdout and topic in text.stdout
    # Replay the split set into a new channel at 10x the pace, counted by a subscriber.
    target = names("cli_replayed")
    sub = procs([SHMRING, "sub", target, "--create", "--kind", "topic", "--lossless", "--count", "600",
                 "--timeout", "60"], text=True)
    wait_for(lambda: stat(target), what="the replay target")
    r = cli("replay", *[tmp_path / f for f in files], "--map", f"{topic}={target}", "--rate", "10", "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["messages"] == 600 and report["timing_p99_ns"] >= report["timing_p50_ns"] >= 0
    assert sub.communicate(timeout=60)[0].splitlines() == lines


def test_misuse_exit_statuses(tmp_path):
    need(SHMRING, "SHMRING_CLI")
    assert cli("record").returncode == 2  # no -o
    assert cli("record", "-o", tmp_path / "x.mcap", "--compression", "lz4").returncode == 2
    assert cli("record", "-o", tmp_path / "x.mcap", "--lossless", "--lossy").returncode == 2
    assert cli("record", "info").returncode == 2
    assert cli("record", "info", tmp_path / "missing.mcap").returncode == 1
    assert cli("replay").returncode == 2
    assert cli("replay", tmp_path / "x.mcap", "--map", "nonsense").returncode == 2
    assert cli("replay", tmp_path / "x.mcap", "--rate", "2", "--max").returncode == 2
    existing = tmp_path / "exists.mcap"
    existing.write_bytes(b"keep me")
    p = subprocess.Popen([SHMRING, "record", "-o", existing, "--quiet", "none_such"], stderr=subprocess.PIPE, text=True)
    assert p.wait(timeout=30) == 1 and "exists" in p.stderr.read()
    p.stderr.close()
    assert existing.read_bytes() == b"keep me"
    p = subprocess.Popen([SHMRING, "record", "-o", existing, "--quiet", "--force", "none_such"])
    time.sleep(0.3)
    p.send_signal(signal.SIGINT)
    assert p.wait(timeout=30) == 0
    assert dump(str(existing))["summary"]["complete"]
    assert cli("record", "--recover", tmp_path / "missing.mcap").returncode == 1
