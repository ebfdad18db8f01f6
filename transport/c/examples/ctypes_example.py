"""The C API from Python's ctypes: what a binding in any language with a C FFI does.

Loads libshmring, declares the calls it uses, sends three messages on a topic (copying and
zero-copy), reads them back in place, and reads the topic's counters from outside.
Run: python3 ctypes_example.py [path/to/libshmring.so.0.3]
"""
import ctypes
import os
import sys

lib = ctypes.CDLL(sys.argv[1] if len(sys.argv) > 1 else "libshmring.so.0.3")

OK, WOULD_BLOCK = 0, 1


class View(ctypes.Structure):  # shmring_view_t
    _fields_ = [("data", ctypes.c_void_p), ("size", ctypes.c_size_t),
                ("sequence", ctypes.c_uint64), ("flags", ctypes.c_uint32)]


class PeerStats(ctypes.Structure):  # shmring_peer_stats_t
    _fields_ = [("index", ctypes.c_uint32), ("role", ctypes.c_int32), ("state", ctypes.c_int32),
                ("pid", ctypes.c_int32), ("alive", ctypes.c_bool), ("sent", ctypes.c_uint64),
                ("received", ctypes.c_uint64), ("lost", ctypes.c_uint64),
                ("blocked_ns", ctypes.c_uint64), ("lag", ctypes.c_uint64)]


handle = ctypes.c_void_p  # every handle is an opaque pointer
lib.shmring_status_string.restype = ctypes.c_char_p
lib.shmring_status_string.argtypes = [ctypes.c_int]
lib.shmring_last_error.restype = ctypes.c_char_p
lib.shmring_last_error.argtypes = []
lib.shmring_topic_publisher_open.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.POINTER(handle)]
lib.shmring_topic_subscriber_open.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.POINTER(handle)]
lib.shmring_topic_publisher_send.argtypes = [handle, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int64]
lib.shmring_topic_publisher_loan.argtypes = [handle, ctypes.c_size_t, ctypes.c_int64,
                                             ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_size_t)]
lib.shmring_topic_publisher_publish.argtypes = [handle, ctypes.c_size_t]
lib.shmring_topic_subscriber_view.argtypes = [handle, ctypes.c_int64, ctypes.POINTER(View)]
lib.shmring_topic_subscriber_release.argtypes = [handle]
lib.shmring_topic_subscriber_endpoint.restype = handle
lib.shmring_topic_subscriber_endpoint.argtypes = [handle]
lib.shmring_endpoint_stats.argtypes = [handle, ctypes.POINTER(PeerStats)]
lib.shmring_topic_publisher_destroy.argtypes = [handle]
lib.shmring_topic_subscriber_destroy.argtypes = [handle]
for call in (lib.shmring_topic_publisher_open, lib.shmring_topic_subscriber_open,
             lib.shmring_topic_publisher_send, lib.shmring_topic_publisher_loan,
             lib.shmring_topic_publisher_publish, lib.shmring_topic_subscriber_view,
             lib.shmring_topic_subscriber_release, lib.shmring_endpoint_stats):
    call.restype = ctypes.c_int


def check(status, what):
    if status != OK:
        raise RuntimeError(f"{what}: {lib.shmring_status_string(status).decode()}: "
                           f"{lib.shmring_last_error().decode()}")


name = f"ctypes.example.{os.getpid()}".encode()
publisher, subscriber = handle(), handle()
check(lib.shmring_topic_publisher_open(name, None, ctypes.byref(publisher)), "open publisher")
check(lib.shmring_topic_subscriber_open(name, None, ctypes.byref(subscriber)), "open subscriber")
try:
    for text in (b"hello", b"from"):  # copying
        check(lib.shmring_topic_publisher_send(publisher, text, len(text), 0), "send")
    buffer, capacity = ctypes.c_void_p(), ctypes.c_size_t()  # zero-copy: written in place
    check(lib.shmring_topic_publisher_loan(publisher, 6, 0, ctypes.byref(buffer), ctypes.byref(capacity)), "loan")
    ctypes.memmove(buffer, b"ctypes", 6)
    check(lib.shmring_topic_publisher_publish(publisher, 6), "publish")

    view = View()
    received = []
    while (status := lib.shmring_topic_subscriber_view(subscriber, 0, ctypes.byref(view))) == OK:
        received.append(ctypes.string_at(view.data, view.size))  # read in place, then copied out
        check(lib.shmring_topic_subscriber_release(subscriber), "release")
    assert status == WOULD_BLOCK, lib.shmring_status_string(status)
    stats = PeerStats()
    check(lib.shmring_endpoint_stats(lib.shmring_topic_subscriber_endpoint(subscriber), ctypes.byref(stats)),
          "stats")
    print(b" ".join(received).decode(), f"(the subscriber's slot counted {stats.received})")
    assert received == [b"hello", b"from", b"ctypes"] and stats.received == 3
finally:
    lib.shmring_topic_subscriber_destroy(subscriber)
    lib.shmring_topic_publisher_destroy(publisher)
