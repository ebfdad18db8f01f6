"""libshmring.so through Python's ctypes, as a binding in another language would use it: the
documented example runs (and docs/c-api.md holds the same code), every function shmring.h declares
is exported, the structs a binding mirrors have the sizes the library fills in, and errors come
back as codes with a message. SHMRING_LIB names the library (ctest sets it)."""
import ctypes
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEADER = ROOT / "transport/c/include/shmring/shmring.h"
EXAMPLE = ROOT / "transport/c/examples/ctypes_example.py"
DOC = ROOT / "docs/c-api.md"
LIB = os.environ.get("SHMRING_LIB")

pytestmark = pytest.mark.skipif(not LIB, reason="SHMRING_LIB not set (run through ctest)")


@pytest.fixture(scope="module")
def lib():
    library = ctypes.CDLL(LIB)
    library.shmring_last_error.restype = ctypes.c_char_p
    library.shmring_status_string.restype = ctypes.c_char_p
    library.shmring_status_string.argtypes = [ctypes.c_int]
    return library


def declared_functions():
    text = re.sub(r"/\*.*?\*/", "", HEADER.read_text(), flags=re.S)
    return sorted(set(re.findall(r"\b(shmring_[a-z_0-9]+)\s*\(", text)))


def test_the_example_runs():
    out = subprocess.run([sys.executable, str(EXAMPLE), LIB], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("hello from ctypes (the subscriber's slot counted 3)")


def test_the_doc_shows_the_example_as_it_is():
    doc = DOC.read_text()
    marker = "<!-- example: transport/c/examples/ctypes_example.py -->"
    assert marker in doc
    block = doc.split(marker, 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    assert block == EXAMPLE.read_text()


def test_every_declared_function_is_exported(lib):
    functions = declared_functions()
    assert len(functions) > 60
    missing = [f for f in functions if not hasattr(lib, f)]
    assert missing == []


def test_struct_sizes_match_what_a_binding_mirrors(lib):
    class TopicOptions(ctypes.Structure):  # shmring_topic_options_t, field for field
        _fields_ = [("struct_size", ctypes.c_size_t), ("capacity", ctypes.c_uint64),
                    ("max_message", ctypes.c_uint64), ("max_peers", ctypes.c_uint32),
                    ("permissions", ctypes.c_uint32), ("group", ctypes.c_int64), ("create", ctypes.c_bool),
                    ("lossless", ctypes.c_bool), ("start_at_latest", ctypes.c_bool),
                    ("read_only", ctypes.c_bool), ("wait_strategy", ctypes.c_int32),
                    ("spin_iterations", ctypes.c_uint32), ("open_timeout_ms", ctypes.c_uint32),
                    ("dead_check_interval_ms", ctypes.c_uint32), ("evict_after_ms", ctypes.c_uint32),
                    ("evict_lag", ctypes.c_uint64), ("trusted_owners", ctypes.POINTER(ctypes.c_uint32)),
                    ("trusted_owner_count", ctypes.c_size_t),
                    # SHMRING_C_API_VERSION 2
                    ("history", ctypes.c_uint64), ("start_count", ctypes.c_uint64),
                    ("max_publishers", ctypes.c_uint32), ("delivery", ctypes.c_int32),
                    ("start", ctypes.c_int32)]

    options = TopicOptions()
    lib.shmring_topic_options_init(ctypes.byref(options))
    assert options.struct_size == ctypes.sizeof(TopicOptions)
    assert options.create and options.permissions == 0o600 and options.group == -1
    assert options.wait_strategy == 3 and options.open_timeout_ms == 2000
    # A lossless topic through the mirrored struct.
    options.lossless = True
    name = f"t_ctypes.lossless.{os.getpid()}".encode()
    sub = ctypes.c_void_p()
    lib.shmring_topic_publisher_lossless.restype = ctypes.c_bool
    lib.shmring_topic_subscriber_lossless.restype = ctypes.c_bool
    assert lib.shmring_topic_subscriber_open(name, ctypes.byref(options), ctypes.byref(sub)) == 0
    try:
        assert lib.shmring_topic_subscriber_lossless(sub)
    finally:
        lib.shmring_topic_subscriber_destroy(sub)
    # Version 2's fields through the mirror: two publishers, a subscriber that asks for the oldest.
    name = f"t_ctypes.v2.{os.getpid()}".encode()
    lib.shmring_topic_publisher_send.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int64]
    lib.shmring_topic_publisher_id.restype = ctypes.c_uint32
    lib.shmring_topic_subscriber_last_publisher.restype = ctypes.c_uint32
    lib.shmring_topic_subscriber_receive.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t,
                                                     ctypes.POINTER(ctypes.c_size_t), ctypes.c_int64]
    creator = TopicOptions()
    lib.shmring_topic_options_init(ctypes.byref(creator))
    creator.max_publishers = 2
    first, second, oldest = ctypes.c_void_p(), ctypes.c_void_p(), ctypes.c_void_p()
    assert lib.shmring_topic_publisher_open(name, ctypes.byref(creator), ctypes.byref(first)) == 0
    try:
        assert lib.shmring_topic_publisher_open(name, None, ctypes.byref(second)) == 0
        assert lib.shmring_topic_publisher_send(first, b"one", 3, 0) == 0
        assert lib.shmring_topic_publisher_send(second, b"two", 3, 0) == 0
        start = TopicOptions()
        lib.shmring_topic_options_init(ctypes.byref(start))
        start.start = 3  # SHMRING_START_OLDEST
        assert lib.shmring_topic_subscriber_open(name, ctypes.byref(start), ctypes.byref(oldest)) == 0
        buffer, size = ctypes.create_string_buffer(64), ctypes.c_size_t()
        for text, publisher in ((b"one", first), (b"two", second)):
            assert lib.shmring_topic_subscriber_receive(oldest, buffer, 64, ctypes.byref(size), 0) == 0
            assert buffer.raw[:size.value] == text
            assert lib.shmring_topic_subscriber_last_publisher(oldest) == lib.shmring_topic_publisher_id(publisher)
    finally:
        lib.shmring_topic_subscriber_destroy(oldest)
        lib.shmring_topic_publisher_destroy(second)
        lib.shmring_topic_publisher_destroy(first)


def test_errors_are_codes_with_messages(lib):
    lib.shmring_queue_producer_send.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int64]
    assert lib.shmring_queue_producer_send(None, b"x", 1, 0) == 20  # SHMRING_INVALID_ARGUMENT
    assert b"shmring_queue_producer_send" in lib.shmring_last_error()
    assert lib.shmring_status_string(20) == b"invalid argument"
    consumer = ctypes.c_void_p()
    status = lib.shmring_queue_consumer_open(b"a/b", None, ctypes.byref(consumer))
    assert status == 20 and consumer.value is None
    assert b"a/b" in lib.shmring_last_error()
    lib.shmring_remove_channel.argtypes = [ctypes.c_char_p]
    assert lib.shmring_remove_channel(f"t_ctypes.none.{os.getpid()}".encode()) == 21  # SHMRING_NOT_FOUND


def test_channels_are_listed_and_removed(lib):
    name = f"t_ctypes.listed.{os.getpid()}".encode()
    consumer = ctypes.c_void_p()
    assert lib.shmring_queue_consumer_open(name, None, ctypes.byref(consumer)) == 0
    try:
        listing = ctypes.c_void_p()
        assert lib.shmring_list_channels(ctypes.byref(listing)) == 0
        lib.shmring_channel_list_size.restype = ctypes.c_size_t
        lib.shmring_channel_list_size.argtypes = [ctypes.c_void_p]
        lib.shmring_channel_list_name.restype = ctypes.c_char_p
        lib.shmring_channel_list_name.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
        names = [lib.shmring_channel_list_name(listing, i) for i in range(lib.shmring_channel_list_size(listing))]
        lib.shmring_channel_list_destroy(listing)
        assert name in names
        assert lib.shmring_remove_channel(name) == 0
    finally:
        lib.shmring_queue_consumer_destroy(consumer)
