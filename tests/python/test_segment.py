"""SharedMemory and SystemSemaphore: the QSharedMemory contract, and the two-program example."""

import os
import subprocess
import sys

import pytest

import shmring


def test_create_attach_lock_and_errors(name):
    a = shmring.SharedMemory(name)
    assert a.key == name and a.native_key
    assert a.create(1000)
    assert a.size >= 1000 and a.is_attached()
    b = shmring.SharedMemory(name)
    assert not b.create(1000)
    assert b.error() == shmring.SharedMemoryError.ALREADY_EXISTS and b.error_string()
    assert b.attach(shmring.AccessMode.READ_ONLY)
    assert a.lock(timeout=1)
    with a.data() as data:
        data[:5] = b"hello"
    assert a.unlock()
    with b.data() as data:
        assert bytes(data[:5]) == b"hello"
        with pytest.raises(TypeError):
            data[0] = 1  # read-only attachment
    assert a.num_attachments() == 2
    kept = a.data()
    with pytest.raises(BufferError):
        a.detach()  # a memoryview is alive
    kept.release()
    assert a.detach() and b.detach()
    c = shmring.SharedMemory(name)
    assert not c.attach()
    assert c.error() == shmring.SharedMemoryError.NOT_FOUND
    with pytest.raises(ValueError):
        c.data()


def test_lock_times_out_while_another_holds_it(name):
    a, b = shmring.SharedMemory(name), shmring.SharedMemory(name)
    assert a.create(64) and b.attach()
    assert a.lock()
    assert not b.lock(timeout=0.05)
    a.unlock()
    assert b.lock(timeout=1)
    b.unlock()
    b.detach()
    a.detach()


def test_system_semaphore(name):
    sem = shmring.SystemSemaphore(name, 1, shmring.SemaphoreAccessMode.CREATE)
    assert sem.key == name
    assert sem.acquire(timeout=1)
    assert not sem.acquire(timeout=0.02)
    assert not sem.try_acquire()
    assert sem.release()
    assert sem.try_acquire()
    assert sem.release()
    assert sem.remove()


def test_the_two_program_example():
    example = os.path.join(os.environ.get("SHMRING_SOURCE_DIR", "."), "docs/examples/segment.py")
    if not os.path.exists(example):
        pytest.skip("SHMRING_SOURCE_DIR is not set")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    writer = subprocess.Popen([sys.executable, example, "write", "hello from python"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    assert "written" in writer.stdout.readline()
    reader = subprocess.run([sys.executable, example], capture_output=True, text=True, env=env, timeout=60)
    assert reader.returncode == 0, reader.stdout + reader.stderr
    assert reader.stdout.startswith("hello from python (2 attached)"), reader.stdout
    writer.communicate("\n", timeout=60)
    assert writer.returncode == 0
    missing = subprocess.run([sys.executable, example], capture_output=True, text=True, env=env, timeout=60)
    assert missing.returncode == 1  # the writer's detach removed it
