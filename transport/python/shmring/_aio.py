"""asyncio on the endpoints' pollable descriptors (wait_fd, docs/events.md): a coroutine tries,
and when there is nothing it waits for the descriptor in the event loop (no thread, no polling).

Any number of tasks may await one endpoint: per endpoint and event loop there is one reader
callback (loop.add_reader accepts one per descriptor), which wakes every waiting task; each tries
again, and those that find nothing wait again. close() wakes them too, so they end."""

from __future__ import annotations

import asyncio
import threading
from typing import Any


class _Waiters:
    """The tasks of one event loop awaiting one endpoint's descriptor."""

    def __init__(self, loop: asyncio.AbstractEventLoop, fd: int) -> None:
        self.loop = loop
        self.fd = fd
        self.futures: set[asyncio.Future[None]] = set()
        self.reading = False
        self.closed = False  # the endpoint is closing: nothing will wake a new waiter

    def add(self) -> asyncio.Future[None]:
        future = self.loop.create_future()
        # Under the lock that close() takes to mark the endpoint closing (before its descriptor
        # goes): either this registers first and close() then wakes it, or it sees `closed`.
        with _lock:
            if self.closed:
                future.set_result(None)  # try again now: the endpoint says it is closed
                return future
            self.futures.add(future)
            if not self.reading:
                self.loop.add_reader(self.fd, self.wake)
                self.reading = True
        return future

    def discard(self, future: asyncio.Future[None]) -> None:
        self.futures.discard(future)
        if not self.futures:
            self._stop_reading()

    def wake(self) -> None:
        """The descriptor is readable (or the endpoint closed): every waiting task tries again."""
        futures, self.futures = self.futures, set()
        self._stop_reading()
        for future in futures:
            if not future.done():
                future.set_result(None)

    def _stop_reading(self) -> None:
        if self.reading:
            self.reading = False
            self.loop.remove_reader(self.fd)


# One lock for every endpoint's table of waiters: close() may come from another thread.
_lock = threading.Lock()


def _waiters(endpoint: Any, loop: asyncio.AbstractEventLoop) -> _Waiters:
    with _lock:
        if endpoint.__dict__.get("_aio_closing"):
            closing = _Waiters(loop, -1)
            closing.closed = True
            return closing
        table: dict[asyncio.AbstractEventLoop, _Waiters] | None = endpoint.__dict__.get("_aio_waiters")
        if table is None:
            table = endpoint.__dict__["_aio_waiters"] = {}
        waiters = table.get(loop)
        if waiters is None or waiters.loop.is_closed():
            waiters = table[loop] = _Waiters(loop, endpoint.wait_fd())
        return waiters


async def _ready(waiters: _Waiters) -> None:
    future = waiters.add()
    try:
        await future
    finally:
        waiters.discard(future)


def wake_on_close(endpoint: Any) -> None:
    """Called by close() before the descriptor goes: wakes every task awaiting the endpoint (in
    any loop, from any thread), which then finds it closed."""
    with _lock:
        endpoint.__dict__["_aio_closing"] = True
        table = endpoint.__dict__.pop("_aio_waiters", None)
        for waiters in (table or {}).values():
            waiters.closed = True
    if not table:
        return
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    for loop, waiters in table.items():
        if loop is running:
            waiters.wake()
        elif not loop.is_closed():
            try:
                loop.call_soon_threadsafe(waiters.wake)
            except RuntimeError:
                pass  # the loop closed meanwhile


async def receive_async(self: Any) -> bytes:
    """The next message (bytes), awaiting it in the running event loop. Any number of tasks may
    await one endpoint; ValueError once the endpoint is closed."""
    # The descriptor exists before the first try, so that try's "nothing" arms it.
    waiters = _waiters(self, asyncio.get_running_loop())
    while True:
        message: bytes | None = self.try_receive()  # None re-arms the descriptor
        if message is not None:
            return message
        await _ready(waiters)


async def send_async(self: Any, data: Any) -> None:
    """Copies ``data`` in, awaiting room in the running event loop when the channel is full.
    Any number of tasks may await one endpoint; ValueError once the endpoint is closed."""
    waiters = _waiters(self, asyncio.get_running_loop())
    while not self.try_send(data):  # False re-arms the descriptor
        await _ready(waiters)


def async_iter(self: Any) -> Any:
    return self


async def async_next(self: Any) -> bytes:
    """``async for``: the next message; ends when the endpoint is closed."""
    try:
        return await receive_async(self)
    except ValueError:
        if self._stopped_by_close():
            raise StopAsyncIteration from None
        raise
