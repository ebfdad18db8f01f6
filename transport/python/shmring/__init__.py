"""shmring for Python: topics, queues, frames and services between processes through shared memory.

    import shmring, numpy as np

    with shmring.FrameSubscriber("camera") as sub:
        with sub.view(timeout=1.0) as frame:              # zero-copy, read-only memoryview
            image = np.frombuffer(frame, np.uint8).reshape(1080, 1920, 3)
            process(image)

Rules (docs/python.md):
* a call that waits takes ``timeout`` in seconds (None: no limit) and raises TimeoutError when it
  runs out; a ``try_`` call never waits and returns None (False for sends) when there is nothing;
* every call that can wait releases the GIL, and Ctrl-C interrupts it within 50 ms;
* a loan's or view's memory is never reachable after it was given back: its memoryview raises
  ValueError once released, and a numpy array made from a view keeps the view (and the channel's
  memory) until the array is gone.
"""

from __future__ import annotations

import enum as _enum
import sys

from . import _shmring
from ._shmring import (  # noqa: F401  (re-exported)
    AccessMode,
    BusyError,
    CorruptError,
    Error,
    EvictedError,
    FramePublisher,
    FrameSubscriber,
    MismatchError,
    OverwrittenError,
    QueueConsumer,
    QueueProducer,
    ResourceExhaustedError,
    SemaphoreAccessMode,
    SharedMemory,
    SharedMemoryError,
    SystemSemaphore,
    SystemSemaphoreError,
    TopicPublisher,
    TopicSubscriber,
    list_channels,
    remove_channel,
    stats,
)
from . import _aio
from ._services import (  # noqa: F401  (re-exported; services: docs/services.md)
    AsyncServiceClient,
    CancelledError,
    PeerGoneError,
    PendingResponse,
    Request,
    RequestLoan,
    ResponseLoan,
    ResponseView,
    ServiceClient,
    ServiceServer,
    service_stats,
)

__all__ = [
    "AccessMode", "BusyError", "CorruptError", "Error", "EvictedError", "FramePublisher",
    "FrameSubscriber", "Loan", "MismatchError", "OverwrittenError", "QueueConsumer",
    "QueueProducer", "ResourceExhaustedError", "SemaphoreAccessMode", "SharedMemory",
    "SharedMemoryError", "SystemSemaphore", "SystemSemaphoreError", "TopicPublisher",
    "TopicSubscriber", "View", "WaitEvent", "list_channels", "remove_channel", "stats",
    # services
    "AsyncServiceClient", "CancelledError", "PeerGoneError", "PendingResponse", "Request",
    "RequestLoan", "ResponseLoan", "ResponseView", "ServiceClient", "ServiceServer", "service_stats",
]

__version__ = "0.3.0"


class WaitEvent(_enum.IntFlag):
    """Why an endpoint's wait_fd() woke (take_wait_events())."""

    NONE = 0
    DATA = 1 << 0
    ROOM = 1 << 1
    PEER_GONE = 1 << 2
    EVICTED = 1 << 3
    REMOVED = 1 << 4


def _still_viewed(lease) -> bool:
    """Whether a memoryview other than ours still shares `lease`'s buffer. numpy.frombuffer,
    slicing and memoryview() make views that share our memoryview's managed buffer; releasing ours
    leaves theirs working, and that managed buffer keeps a reference to the lease, which is how it
    shows here."""
    # The caller's local, this parameter and getrefcount's argument; any more is a shared buffer.
    return sys.getrefcount(lease) > 3


class View:
    """A message lent in place, read-only, until release() (or the end of a ``with`` block).

    ``with sub.view() as data:`` gives ``data``, a read-only memoryview. After the block the
    memoryview raises ValueError. A numpy array made from it (numpy.frombuffer) keeps the message
    lent (a queue item is then consumed, and a lossless publisher held, only once the array is
    gone), so the array never reads memory the channel reuses.
    """

    __slots__ = ("_lease", "_data", "number", "redelivered")

    def __init__(self, lease):
        self._lease = lease
        self._data = memoryview(lease)
        self.number = lease.number          # queue: ticket; frames: frame number
        self.redelivered = lease.redelivered  # queue: taken over from a dead consumer

    @property
    def data(self) -> memoryview:
        if self._data is None:
            raise ValueError("the view was released")
        return self._data

    def __len__(self) -> int:
        return len(self.data)

    def __bytes__(self) -> bytes:
        return bytes(self.data)

    def release(self) -> None:
        """Gives the message back. Raises OverwrittenError when a lossy topic's message was
        overwritten while viewed (discard what was computed from it), EvictedError when this
        lossless subscriber was evicted meanwhile. If an array made from the view is still alive,
        the message is given back when the last one goes (and those errors are not reported)."""
        data, self._data = self._data, None
        lease, self._lease = self._lease, None
        if lease is None:
            return
        try:
            data.release()  # our memoryview (the with block's) raises ValueError from now on
        except BufferError:
            return  # something holds an export of it: the lease ends with the last one
        if _still_viewed(lease):
            return  # an array made from it is alive: the lease ends with the last one
        lease.release()

    def __enter__(self) -> memoryview:
        return self.data

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            self.release()
        else:
            try:
                self.release()
            except Error:
                pass  # the body's exception matters more
        return False


class Loan:
    """Room for a message lent to a sender, writable in place, until publish() or abandon().

    ``with pub.loan(n) as buffer:`` gives ``buffer``, a writable memoryview of ``n`` bytes. The
    block publishes all of it when it ends normally and abandons it on an exception. Use
    ``loan.publish(k)`` to send fewer bytes. Arrays made from the buffer must be gone before it is
    published (``del array``): the memory belongs to the channel afterwards, so a loan whose buffer
    is still referenced is abandoned and BufferError raised.
    """

    __slots__ = ("_lease", "_buffer")

    def __init__(self, lease):
        self._lease = lease
        self._buffer = memoryview(lease)

    @property
    def buffer(self) -> memoryview:
        if self._buffer is None:
            raise ValueError("the loan was published or abandoned")
        return self._buffer

    def __len__(self) -> int:
        return len(self.buffer)

    def _give_back(self):
        buffer, self._buffer = self._buffer, None
        lease, self._lease = self._lease, None
        if lease is None:
            raise ValueError("the loan was published or abandoned")
        try:
            buffer.release()
            busy = _still_viewed(lease)
        except BufferError:
            busy = True
        if busy:
            lease.abandon()
            raise BufferError(
                "the loan's buffer is still in use (a numpy array or memoryview made from it is "
                "alive): the loan was abandoned; drop those objects before publishing")
        return lease

    def publish(self, nbytes: int | None = None) -> None:
        """Sends the first ``nbytes`` (default: all) of the buffer as the next message."""
        size = len(self.buffer) if nbytes is None else nbytes
        self._give_back().publish(size)

    def abandon(self) -> None:
        """Gives the room back unsent."""
        if self._lease is not None:
            try:
                self._give_back()
            except BufferError:
                pass  # abandoned all the same

    def __enter__(self) -> memoryview:
        return self.buffer

    def __exit__(self, exc_type, exc, tb) -> bool:
        if self._lease is None:
            return False  # published or abandoned inside the block
        if exc_type is None:
            size = len(self._buffer)
            self._give_back().publish(size)
        else:
            try:
                self._give_back()
            except BufferError:
                pass
        return False


def _view(self, timeout: float | None = None) -> View:
    """The next message in place (zero-copy), waiting up to ``timeout`` seconds (None: no limit).
    TimeoutError when the time runs out. One view at a time per endpoint."""
    return View(self._view(timeout))


def _try_view(self) -> View | None:
    """The next message in place, or None when there is none."""
    lease = self._try_view()
    return None if lease is None else View(lease)


def _loan(self, nbytes: int = 0, timeout: float | None = None) -> Loan:
    """Room for a message of ``nbytes`` (0: max_message) in the channel, waiting up to
    ``timeout`` seconds for it. One loan at a time per endpoint."""
    return Loan(self._loan(nbytes, timeout))


def _try_loan(self, nbytes: int = 0) -> Loan | None:
    """As loan() without waiting: None when there is no room."""
    lease = self._try_loan(nbytes)
    return None if lease is None else Loan(lease)


def _iter(self):
    return self


def _next(self):
    """Blocking iteration: the next message (bytes); stops when the endpoint is closed."""
    if self.closed:
        raise StopIteration
    return self.receive()


for _cls in (TopicSubscriber, QueueConsumer, FrameSubscriber):
    _cls.view = _view
    _cls.try_view = _try_view
    _cls.__iter__ = _iter
    _cls.__next__ = _next
    _cls.receive_async = _aio.receive_async
    _cls.__aiter__ = _aio.aiter
    _cls.__anext__ = _aio.anext
for _cls in (TopicPublisher, QueueProducer, FramePublisher):
    _cls.loan = _loan
    _cls.try_loan = _try_loan
    _cls.send_async = _aio.send_async
del _cls
