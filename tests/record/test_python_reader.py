"""The Python reader and writer, shmring.record (ctest RecordPythonTest): it reads what
`shmring record` and shmring's C++ writer make exactly as the C++ reader does, tolerates what a
killed recorder leaves, refuses corrupt files with McapError, and what its Writer makes is read
by the C++ reader (and the reference reader when node is there)."""

import os
import struct
import subprocess
import time

import numpy as np
import pytest

from shmring.record import McapError, Reader, Writer

from conftest import (NODE_DIR, SHMRING, Recorder, dump, info, need, publisher, reference_read,
                      stat, wait_for)


def python_messages(path, **kw):
    with Reader(path) as r:
        return [(m.channel, m.sequence, m.log_time, m.publish_time, bytes(m.data)) for m in r.messages(**kw)]


@pytest.fixture
def recording(tmp_path, names, procs):
    """A real recording: a lossless topic and a frame channel, recorded by `shmring record`."""
    need(SHMRING, "SHMRING_CLI")
    topic, frames = names("py_topic"), names("py_frames")
    tp = publisher(procs, "topic", topic, "--lossless")
    fp = publisher(procs, "frames", frames)
    wait_for(lambda: stat(topic) and stat(frames), what="the channels")
    out = str(tmp_path / "py.mcap")
    rec = Recorder(procs, out, [topic, frames], "--chunk-size", "4K")
    rec.wait_recording(topic)
    rec.wait_recording(frames)
    for i in range(500):
        tp.stdin.write(f"topic {i}\n")
        fp.stdin.write(f"frame {i}\n")
        if i % 50 == 0:
            fp.stdin.flush()
            time.sleep(0.01)
    for p in (tp, fp):
        p.stdin.close()
        assert p.wait(timeout=60) == 0
    time.sleep(0.3)
    assert rec.stop() == 0
    return out, topic, frames


def test_reads_a_recording_as_the_cpp_reader_does(recording):
    path, topic, frames = recording
    ours = python_messages(path)
    assert ours == dump(path)["messages"]
    with Reader(path) as r:
        assert r.complete and not r.truncated
        assert {c.topic for c in r.channels.values()} == {topic, frames}
        assert r.channels[1].metadata["shmring.kind"] in ("topic", "frames")
        assert r.statistics["message_count"] == len(ours)
        lost = r.lost
        described = {c["topic"]: c["lost"] for c in info(path)["channels"]}
        assert lost == described
        assert lost[topic] == 0
        names = [name for name, _ in r.metadata]
        assert "shmring.loss" in names and "shmring.recording" in names
        # Filters: by channel and by time.
        only = list(r.messages(channels=[topic]))
        assert len(only) == 500 and all(m.channel == topic for m in only)
        t0, t1 = only[100].log_time, only[200].log_time
        window = [m for m in r.messages(start=t0, end=t1, channels=[topic])]
        assert [bytes(m.data) for m in window] == [bytes(m.data) for m in only if t0 <= m.log_time < t1]


def test_data_is_a_memoryview_numpy_can_take_without_copying(recording):
    path, topic, _ = recording
    with Reader(path) as r:
        m = next(iter(r.messages(channels=[topic])))
        assert isinstance(m.data, memoryview)
        a = np.frombuffer(m.data, np.uint8)
        assert a.tobytes() == b"topic 0"
        assert not a.flags.owndata  # a view of the chunk, not a copy


def test_a_killed_recorders_file_reads_up_to_its_last_chunk(recording, tmp_path):
    path, topic, frames = recording
    whole = python_messages(path)
    data = open(path, "rb").read()
    previous = 0
    for n in list(range(0, 200, 7)) + list(range(200, len(data), max(1, len(data) // 150))) + [len(data) - 1]:
        cut = str(tmp_path / "cut.mcap")
        with open(cut, "wb") as f:
            f.write(data[:n])
        try:
            r = Reader(cut)
        except McapError:
            assert n < 40  # only a torn header is refused
            continue
        with r:
            got = [(m.channel, m.sequence, m.log_time, m.publish_time, bytes(m.data)) for m in r]
            assert got == whole[:len(got)]
            assert len(got) >= previous
            previous = len(got)
            assert not r.complete  # (truncated unless the cut fell between two records)
            if any(m[0] == topic for m in got):
                assert r.lost[topic] == 0


def test_corrupt_files_raise_mcap_error(tmp_path, recording):
    path, _, _ = recording
    bad = str(tmp_path / "bad.mcap")
    with open(bad, "wb") as f:
        f.write(b"not an mcap file at all")
    with pytest.raises(McapError):
        Reader(bad)
    data = bytearray(open(path, "rb").read())
    # A byte changed inside the first chunk's records: its CRC says so.
    data[200] ^= 0x55
    with open(bad, "wb") as f:
        f.write(data)
    with pytest.raises(McapError):
        with Reader(bad) as r:
            list(r)


@pytest.mark.parametrize("compression", ["zstd", "none"])
def test_writer_files_are_read_by_shmring_and_the_reference(tmp_path, compression):
    path = str(tmp_path / f"w_{compression}.mcap")
    with Writer(path, compression=compression, chunk_size=2048) as w:
        s = w.add_schema("demo.Point", "jsonschema", b'{"type":"object"}')
        a = w.add_channel("a", metadata={"k": "v"})
        b = w.add_channel("b", "json", s)
        for i in range(400):
            w.write(a if i % 2 == 0 else b, f"payload {i}".encode(), log_time=1000 + i, sequence=i)
            if i == 100:
                w.write_metadata("note", {"at": "100"})
        w.write(a, np.arange(10, dtype=np.uint16), log_time=5000, sequence=400)  # any buffer
    ours = dump(path)
    assert ours["summary"]["complete"]
    assert len(ours["messages"]) == 401
    assert ours["messages"][3] == ("b", 3, 1003, 1003, b"payload 3")
    assert ours["messages"][400][4] == np.arange(10, dtype=np.uint16).tobytes()
    assert ours["metadata"]["note"] == {"at": "100"}
    assert python_messages(path) == ours["messages"]
    with Reader(path) as r:
        assert r.schemas[1].name == "demo.Point"
        assert r.channels[1].metadata == {"k": "v"}
    if NODE_DIR and os.path.exists(NODE_DIR):
        assert reference_read(path)["messages"] == ours["messages"]


def test_writer_refuses_misuse(tmp_path):
    path = str(tmp_path / "x.mcap")
    with Writer(path) as w:
        with pytest.raises(ValueError):
            w.write(7, b"no such channel")
        with pytest.raises(ValueError):
            w.add_channel("c", schema_id=9)
    with pytest.raises(FileExistsError):
        Writer(path)
    with pytest.raises(ValueError):
        Writer(str(tmp_path / "y.mcap"), compression="lz4")
