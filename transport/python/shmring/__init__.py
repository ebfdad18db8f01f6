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
* memory a Python object can still reach is never given back: a numpy array made from a view or
  a loan keeps it lent, and keeps the channel mapped, until the array is gone.
"""

from __future__ import annotations

import atexit as _atexit
import enum as _enum
import sys as _sys
from typing import Any as _Any, Iterator as _Iterator

from . import _build

try:
    from . import _shmring
except ImportError as _error:  # e.g. the extension was built for another Python
    _here = f"{_sys.version_info.major}.{_sys.version_info.minor}"
    if _here != _build.PYTHON:
        raise ImportError(
            f"shmring {_build.VERSION} was built for Python {_build.PYTHON}, and this is Python "
            f"{_here} ({_sys.executable}): install shmring with this interpreter "
            f"(python{_here} -m pip install ...) or run Python {_build.PYTHON}") from _error
    raise

from ._shmring import (  # noqa: F401  (re-exported)
    AccessMode,
    BusyError,
    CorruptError,
    DestroyMode,
    Error,
    EvictedError,
    MismatchError,
    OverwrittenError,
    ResourceExhaustedError,
    SemaphoreAccessMode,
    SharedMemoryError,
    SystemSemaphoreError,
    WaitStrategy,
    collect_garbage,
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

# Daemon threads still waiting in shmring when the interpreter exits park for good instead of
# taking the GIL back during finalization (box.h, park_forever).
_atexit.register(_shmring._interpreter_exiting)

__all__ = [
    "AccessMode", "BusyError", "CorruptError", "DestroyMode", "Error", "EvictedError", "FramePublisher",
    "FrameSubscriber", "Loan", "MismatchError", "OverwrittenError", "QueueConsumer",
    "QueueProducer", "ResourceExhaustedError", "SemaphoreAccessMode", "SharedMemory",
    "SharedMemoryError", "SystemSemaphore", "SystemSemaphoreError", "TopicPublisher",
    "TopicSubscriber", "View", "WaitEvent", "WaitStrategy", "collect_garbage", "list_channels",
    "remove_channel", "stats",
    # services
    "AsyncServiceClient", "CancelledError", "PeerGoneError", "PendingResponse", "Request",
    "RequestLoan", "ResponseLoan", "ResponseView", "ServiceClient", "ServiceServer", "service_stats",
]

__version__: str = _build.VERSION

_BITS = _shmring._WAIT_EVENT_BITS


class WaitEvent(_enum.IntFlag):
    """Why an endpoint's wait_fd() woke (take_wait_events()). DATA and ROOM say "may have work":
    the try_ calls tell for sure."""

    NONE = 0
    DATA = _BITS["DATA"]
    ROOM = _BITS["ROOM"]
    PEER_GONE = _BITS["PEER_GONE"]
    EVICTED = _BITS["EVICTED"]
    REMOVED = _BITS["REMOVED"]


class View:
    """A message lent in place, read-only, until release() (or the end of a ``with`` block).

    ``with sub.view() as data:`` gives ``data``, a read-only memoryview; after the block it raises
    ValueError. A numpy array (or slice, or memoryview) made from it keeps the message lent until
    the array is gone: a queue item is consumed, a lossless publisher let go and a frame unpinned
    only then, so the array never reads memory the channel reuses. A lossy topic's publisher never
    waits: release() tells whether the message was overwritten so far (OverwrittenError), and an
    array kept past it can change; copy what you keep.
    """

    __slots__ = ("_lease", "_data", "sequence", "redelivered", "publisher", "publisher_sequence")

    def __init__(self, lease: _Any) -> None:
        self._lease = lease
        self._data: memoryview | None = memoryview(lease)
        #: topic: the message's sequence number; queue: the item's ticket; frames: frame number.
        self.sequence: int = lease.sequence
        #: queue: the item was taken over from a consumer that died holding it.
        self.redelivered: bool = lease.redelivered
        #: topic: the id of the publisher that sent it (TopicPublisher.publisher_id); 0 otherwise.
        self.publisher: int = lease.publisher
        #: topic: that publisher's own number for it (0 for its first message); 0 otherwise.
        self.publisher_sequence: int = lease.publisher_sequence

    @property
    def number(self) -> int:
        """The old name of ``sequence`` (0.2; it was 0 for topics)."""
        import warnings
        warnings.warn("View.number is deprecated, use View.sequence", DeprecationWarning, stacklevel=2)
        return self.sequence

    @property
    def data(self) -> memoryview:
        if self._data is None:
            raise ValueError("the view was released")
        return self._data

    def __len__(self) -> int:
        return len(self.data)

    def __bytes__(self) -> bytes:
        return bytes(self.data)

    def __repr__(self) -> str:
        state = "released" if self._data is None else f"{len(self._data)} bytes"
        return f"<shmring.View sequence={self.sequence} {state}>"

    def release(self) -> None:
        """Gives the message back. Raises OverwrittenError when a lossy topic's message was
        overwritten while viewed (discard what was computed from it), EvictedError when this
        lossless subscriber was evicted meanwhile. If an array made from the view is still alive,
        the message is given back when the last one goes (and those errors are not reported),
        except for a lossy topic, which is checked now."""
        data, self._data = self._data, None
        lease, self._lease = self._lease, None
        if lease is None:
            return
        try:
            if data is not None:
                data.release()  # the with block's memoryview raises ValueError from now on
        except BufferError:
            pass  # an array made from it holds an export: the lease counts it
        lease.release()

    def __enter__(self) -> memoryview:
        return self.data

    def __exit__(self, exc_type: object, exc: object, tb: object) -> bool:
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
    block publishes all of it when it ends normally and abandons it on an exception;
    ``loan.publish(k)`` sends fewer bytes. The memory belongs to the channel once published, so a
    loan whose buffer is still used by a numpy array (or slice, or memoryview) is never published:
    publish() raises BufferError and the loan stays lent (``del`` the array, publish again). A
    ``with`` block that ends like that abandons the loan once the array is gone.
    """

    __slots__ = ("_lease", "_buffer")

    def __init__(self, lease: _Any) -> None:
        self._lease = lease
        self._buffer: memoryview | None = memoryview(lease)

    @property
    def buffer(self) -> memoryview:
        if self._lease is None:
            raise ValueError("the loan was published or abandoned")
        if self._buffer is None:
            self._buffer = memoryview(self._lease)
        return self._buffer

    def __len__(self) -> int:
        return len(self.buffer)

    def __repr__(self) -> str:
        state = "settled" if self._lease is None else f"{self._lease.nbytes} bytes"
        return f"<shmring.Loan {state}>"

    def _release_ours(self) -> None:
        buffer, self._buffer = self._buffer, None
        if buffer is not None:
            try:
                buffer.release()
            except BufferError:
                self._buffer = buffer  # an array made from it holds an export: still ours

    def publish(self, nbytes: int | None = None) -> None:
        """Sends the first ``nbytes`` (default: all) of the buffer as the next message.
        BufferError while an array made from the buffer is alive (the loan stays lent)."""
        if self._lease is None:
            raise ValueError("the loan was published or abandoned")
        size = self._lease.nbytes if nbytes is None else nbytes
        self._release_ours()
        self._lease.publish(size)
        self._lease = None
        self._buffer = None

    def abandon(self) -> None:
        """Gives the room back unsent (once no array made from the buffer is alive)."""
        lease, self._lease = self._lease, None
        if lease is not None:
            self._release_ours()
            self._buffer = None
            lease.abandon()

    def __enter__(self) -> memoryview:
        return self.buffer

    def __exit__(self, exc_type: object, exc: object, tb: object) -> bool:
        if self._lease is None:
            return False  # published or abandoned inside the block
        if exc_type is not None:
            self.abandon()
            return False
        try:
            self.publish()
        except BufferError:
            self.abandon()
            raise BufferError(
                "the loan's buffer is still in use (a numpy array, memoryview or slice made from "
                "it is alive) at the end of the with block: it was not published, and it is "
                "abandoned once those objects are gone; del them inside the block") from None
        return False


class _Endpoint:
    """What every endpoint class adds to its compiled base (mixed in first)."""

    _closed: bool
    name: str

    def fileno(self) -> int:
        """The pollable descriptor (wait_fd()), so select and selectors take the endpoint."""
        return self.wait_fd()  # type: ignore[attr-defined, no-any-return]

    def take_wait_events(self) -> WaitEvent:
        """Why the descriptor woke: WaitEvent bits (DATA, ROOM, PEER_GONE, EVICTED, REMOVED)."""
        return WaitEvent(super().take_wait_events())  # type: ignore[misc]

    def close(self) -> None:
        """Closes the endpoint (also on leaving a with block); tasks awaiting it in asyncio end
        (receive_async raises ValueError, async for ends). Calling it again does nothing."""
        _aio.wake_on_close(self)
        super().close()  # type: ignore[misc]

    def __exit__(self, *exc: object) -> bool:
        self.close()
        return False

    def _stopped_by_close(self) -> bool:
        """The endpoint was closed here (not merely inherited through fork())."""
        return bool(self.closed) and not self._forked  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        if self._forked:  # type: ignore[attr-defined]
            state = "inherited through fork(), inert"
        else:
            state = "closed" if self.closed else "open"  # type: ignore[attr-defined]
        return f"<shmring.{type(self).__name__} {self.name!r} {state}>"


class _Sender(_Endpoint):
    def loan(self, nbytes: int = 0, timeout: float | None = None) -> Loan:
        """Room for a message of ``nbytes`` (0: max_message) in the channel, waiting up to
        ``timeout`` seconds (None: no limit) for it; TimeoutError when the time runs out. One
        loan at a time per endpoint."""
        return Loan(self._loan(nbytes, timeout))  # type: ignore[attr-defined]

    def try_loan(self, nbytes: int = 0) -> Loan | None:
        """As loan() without waiting: None when there is no room."""
        lease = self._try_loan(nbytes)  # type: ignore[attr-defined]
        return None if lease is None else Loan(lease)

    send_async = _aio.send_async


class _Receiver(_Endpoint):
    def view(self, timeout: float | None = None) -> View:
        """The next message in place (zero-copy), waiting up to ``timeout`` seconds (None: no
        limit); TimeoutError when the time runs out. One view at a time per endpoint."""
        return View(self._view(timeout))  # type: ignore[attr-defined]

    def try_view(self) -> View | None:
        """The next message in place, or None when there is none."""
        lease = self._try_view()  # type: ignore[attr-defined]
        return None if lease is None else View(lease)

    def __iter__(self) -> _Iterator[bytes]:
        return self  # type: ignore[return-value]

    def __next__(self) -> bytes:
        """Blocking iteration: the next message; ends when the endpoint is closed (also by
        another thread while this one waits)."""
        try:
            return self.receive()  # type: ignore[attr-defined, no-any-return]
        except ValueError:
            if self._stopped_by_close():
                raise StopIteration from None
            raise

    receive_async = _aio.receive_async
    __aiter__ = _aio.async_iter
    __anext__ = _aio.async_next


class TopicPublisher(_Sender, _shmring.TopicPublisher):
    __doc__ = _shmring.TopicPublisher.__doc__


class TopicSubscriber(_Receiver, _shmring.TopicSubscriber):
    __doc__ = _shmring.TopicSubscriber.__doc__


class QueueProducer(_Sender, _shmring.QueueProducer):
    __doc__ = _shmring.QueueProducer.__doc__


class QueueConsumer(_Receiver, _shmring.QueueConsumer):
    __doc__ = _shmring.QueueConsumer.__doc__


class FramePublisher(_Sender, _shmring.FramePublisher):
    __doc__ = _shmring.FramePublisher.__doc__


class FrameSubscriber(_Receiver, _shmring.FrameSubscriber):
    __doc__ = _shmring.FrameSubscriber.__doc__


from ._segment import SharedMemory, SystemSemaphore  # noqa: E402
