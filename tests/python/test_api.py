"""What a Python user expects of the API (issue 23, defect 9 and "what Python users expect"):
errors of the right type, names, reprs, docstrings, fileno(), `with sem:`, python -m shmring,
the version and the interpreter check."""

import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

import shmring
from conftest import run_python


def test_a_wrong_typed_timeout_is_a_type_error(name):
    with shmring.TopicSubscriber(name) as sub:
        for bad in ("1", b"1", object(), [1]):
            with pytest.raises(TypeError, match="timeout"):
                sub.receive(timeout=bad)
        with pytest.raises(ValueError):
            sub.receive(timeout=float("nan"))
        with pytest.raises(TimeoutError):
            sub.receive(timeout=0)  # an int is fine
    sem = shmring.SystemSemaphore(name + "_sem", 0, shmring.SemaphoreAccessMode.CREATE)
    try:
        with pytest.raises(TypeError):
            sem.acquire(timeout="soon")
    finally:
        sem.remove()


def test_name_repr_and_closed(name):
    pub = shmring.TopicPublisher(name)
    assert pub.name == name
    assert repr(pub) == f"<shmring.TopicPublisher {name!r} open>"
    pub.close()
    assert pub.name == name and repr(pub) == f"<shmring.TopicPublisher {name!r} closed>"
    with pytest.raises(ValueError, match="closed"):
        pub.send(b"x")
    assert "View" in repr(shmring.View) and isinstance(shmring.TopicPublisher, type)


def test_classes_are_real_subclasses_with_their_methods():
    for cls in (shmring.TopicSubscriber, shmring.QueueConsumer, shmring.FrameSubscriber):
        assert cls.__module__ == "shmring"
        assert issubclass(cls, shmring._shmring.__dict__[cls.__name__])
        for method in ("view", "try_view", "receive_async", "__iter__", "__anext__", "fileno"):
            assert method in dir(cls) and getattr(cls, method).__doc__ is not None or method.startswith("__")
    for cls in (shmring.TopicPublisher, shmring.QueueProducer, shmring.FramePublisher):
        assert "loan" in vars(cls.__mro__[1]) and "send_async" in dir(cls)


def test_constructor_docstrings_say_what_capacity_means():
    docs = {cls: cls.__init__.__doc__ for cls in (shmring.TopicPublisher, shmring.QueueProducer,
                                                   shmring.FramePublisher)}
    assert "bytes of the ring" in docs[shmring.TopicPublisher]
    assert "items the queue holds" in docs[shmring.QueueProducer]
    assert "frame buffers" in docs[shmring.FramePublisher]
    for doc in docs.values():
        assert "permissions: int = 0o600" in doc  # not 384
        assert "wait_strategy" in doc and "group" in doc


def test_every_option_is_accepted(name):
    with shmring.TopicPublisher(name, lossless=True, group=os.getgid(), evict_after=1.5, evict_lag=1 << 10,
                                dead_check_interval=0.01, wait_strategy=shmring.WaitStrategy.HYBRID,
                                spin_iterations=10) as pub, \
            shmring.TopicSubscriber(name, lossless=True, wait_strategy=shmring.WaitStrategy.BUSY_SPIN) as sub:
        pub.send(b"a")
        assert sub.receive(timeout=1) == b"a"
        assert sub.last_sequence == pub.next_sequence - 1
        assert sub.next_sequence == pub.next_sequence
        assert pub.channel_incarnation == sub.channel_incarnation != 0
    with shmring.QueueProducer(name + "q", trusted_owners=[os.getuid(), "root"], permissions=0o640):
        with pytest.raises(PermissionError):
            shmring.QueueConsumer(name + "q", permissions=0o600)  # the channel grants more than that
        shmring.QueueConsumer(name + "q", permissions=0o640).close()
    with pytest.raises(TypeError):
        shmring.QueueProducer(name + "q", trusted_owners="root")
    with pytest.raises(ValueError, match="no user"):
        shmring.QueueProducer(name + "q", trusted_owners=["no-such-user-here"])
    with pytest.raises(TypeError):
        shmring.QueueProducer(name + "q", wait_strategy="park")
    with pytest.raises(ValueError, match="no group"):
        shmring.QueueProducer(name + "q", group="no-such-group-here")


def test_topic_views_carry_their_sequence(name):
    with shmring.TopicPublisher(name) as pub, shmring.TopicSubscriber(name) as sub:
        for m in (b"one", b"two"):
            pub.send(m)
        expected = pub.next_sequence - 2
        first, second = sub.view(timeout=1), None
        assert first.sequence == expected
        first.release()
        second = sub.view(timeout=1)
        assert second.sequence == first.sequence + 1
        with pytest.warns(DeprecationWarning):
            assert second.number == second.sequence
        second.release()


def test_set_permissions_takes_a_keyword(name):
    shm = shmring.SharedMemory(name + "_seg")
    shm.set_permissions(mode=0o640)
    shm.set_group(gid=os.getgid())
    shm.set_trust(any_owner=False, trusted_owners=[0], max_mode=0o640)
    assert shm.group == os.getgid()
    assert shm.create(64)
    assert os.stat(f"/dev/shm/{shm.native_key}").st_mode & 0o777 == 0o640
    shm.detach()


def test_shared_memory_has_the_standard_librarys_habits(name):
    key = name + "_seg"
    with pytest.raises(FileNotFoundError):
        shmring.SharedMemory(key, create=False)
    with shmring.SharedMemory(key, create=True, size=128) as shm:
        assert shm.name == key and shm.size >= 128
        shm.buf[:5] = b"hello"
        assert shm.buf is shm.buf
        with pytest.raises(FileExistsError):
            shmring.SharedMemory(key, create=True, size=128)
        other = shmring.SharedMemory(key, create=False, mode=shmring.AccessMode.READ_ONLY)
        assert bytes(other.buf[:5]) == b"hello"
        import numpy as np
        array = np.frombuffer(shm.buf, np.uint8)
        with pytest.raises(BufferError):
            shm.close()  # an array still uses the mapping
        del array
        other.close()
        shm.unlink()
        assert not shm.is_attached()
    qt = shmring.SharedMemory(key)
    assert not qt.attach()  # the Qt contract is still there
    assert qt.error() == shmring.SharedMemoryError.NOT_FOUND


def test_with_a_semaphore_takes_a_token_for_the_block(name):
    sem = shmring.SystemSemaphore(name + "_sem", 1, shmring.SemaphoreAccessMode.CREATE)
    try:
        with sem:
            assert not sem.try_acquire()
        assert sem.try_acquire()
        sem.release()
    finally:
        sem.remove()


def test_python_dash_m_shmring(name):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    with shmring.TopicPublisher(name, lossless=True), shmring.TopicSubscriber(name, lossless=True):
        ls = subprocess.run([sys.executable, "-m", "shmring", "ls"], env=env, capture_output=True, text=True)
        assert ls.returncode == 0 and name in ls.stdout and "lossless" in ls.stdout, ls.stderr
        stat = subprocess.run([sys.executable, "-m", "shmring", "stat", name, "--json"], env=env,
                              capture_output=True, text=True)
        assert stat.returncode == 0, stat.stderr
        import json
        assert json.loads(stat.stdout)["kind"] == "topic"
    missing = subprocess.run([sys.executable, "-m", "shmring", "stat", name + "-none"], env=env,
                             capture_output=True, text=True)
    assert missing.returncode == 1 and "no channel" in missing.stderr
    gc = subprocess.run([sys.executable, "-m", "shmring", "gc", "--dry-run"], env=env, capture_output=True,
                        text=True)
    assert gc.returncode == 0 and "would remove" in gc.stdout, gc.stdout + gc.stderr


def test_the_version_is_the_projects():
    source = os.environ.get("SHMRING_SOURCE_DIR")
    if not source:
        pytest.skip("SHMRING_SOURCE_DIR is not set (run through ctest)")
    cmake = pathlib.Path(source, "CMakeLists.txt").read_text()
    version = re.search(r"project\(shmring VERSION ([0-9.]+)", cmake).group(1)
    assert shmring.__version__ == version == shmring._shmring.__version__


def _other_python():
    """Another CPython 3 on this machine (Debian's or pyenv's), with its version; (None, None)."""
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    candidates = [f"/usr/bin/python3.{minor}" for minor in range(8, 15)]
    candidates += sorted(str(p) for p in pathlib.Path.home().glob(".pyenv/versions/3.*/bin/python3"))
    for candidate in candidates:
        if not os.access(candidate, os.X_OK):
            continue
        probe = subprocess.run([candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                               capture_output=True, text=True)
        version = probe.stdout.strip()
        if probe.returncode == 0 and version != here and version >= "3.8":
            return candidate, version
    return None, None


def test_import_under_another_python_says_which_it_was_built_for(tmp_path):
    package = pathlib.Path(shmring.__file__).parent
    built_for = f"{sys.version_info.major}.{sys.version_info.minor}"
    other, version = _other_python()
    if other is not None:
        result = subprocess.run([other, "-c", "import shmring"], capture_output=True, text=True,
                                env=dict(os.environ, PYTHONPATH=str(package.parent)))
        assert result.returncode != 0
        assert f"built for Python {built_for}" in result.stderr and version in result.stderr, result.stderr
    # The same check without a second interpreter: a copy whose extension is for another Python.
    copy = tmp_path / "shmring"
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("_shmring*.so"))
    (copy / "_build.py").write_text((package / "_build.py").read_text().replace(
        f'PYTHON = "{built_for}"', 'PYTHON = "3.99"'))
    result = subprocess.run([sys.executable, "-c", "import shmring"], capture_output=True, text=True,
                            env=dict(os.environ, PYTHONPATH=str(tmp_path)))
    assert result.returncode != 0
    assert "built for Python 3.99" in result.stderr and f"this is Python {built_for}" in result.stderr, result.stderr


def test_fileno_is_the_wait_descriptor(name):
    with shmring.QueueConsumer(name) as consumer:
        assert consumer.fileno() == consumer.wait_fd() >= 0
