"""Services for Python: requests answered by competing servers (docs/services.md).

    server = shmring.ServiceServer("upper")
    server.serve(lambda request: bytes(request.data).upper())      # blocking loop

    with shmring.ServiceClient("upper") as client:
        print(client.call(b"hello", timeout=1.0))                   # b'HELLO'

    async with shmring.AsyncServiceClient("upper") as client:       # asyncio
        answer = await client.call(b"hello")

The same rules as the channels (docs/python.md): waits take ``timeout`` in seconds (None: no
limit) and raise TimeoutError; ``try_`` calls return None (False) when there is nothing; waits
release the GIL and Ctrl-C interrupts them. Memory lent in place (a request a server holds, a
response view, a loan) is never reachable after it was given back: its memoryview raises
ValueError, and an array made from it keeps it lent until the array is gone (a request whose
memory is still shared cannot be answered finally: BufferError). A request also ends at its
deadline (``request_timeout``): waits never go past it.
"""

from __future__ import annotations

import asyncio
import inspect
import sys
import time

from . import _shmring
from ._shmring import CancelledError, PeerGoneError  # noqa: F401  (re-exported)

__all__ = [
    "AsyncServiceClient", "CancelledError", "PeerGoneError", "PendingResponse", "Request",
    "RequestLoan", "ResponseLoan", "ResponseView", "ServiceClient", "ServiceServer", "service_stats",
]

service_stats = _shmring.service_stats


def _shared(lease) -> bool:
    """Whether a memoryview other than ours still shares `lease`'s buffer (as shmring.View: an
    array made from it holds a reference to the lease through the managed buffer). The caller
    holds exactly one reference (an attribute or a local) besides this parameter."""
    return sys.getrefcount(lease) > 3


def _release(view) -> bool:
    """Releases our memoryview; False when something still exports it."""
    try:
        view.release()
        return True
    except BufferError:
        return False


class _Readiness:
    """One reader on an endpoint's descriptor in the running event loop, waking every coroutine
    that waits on it (asyncio allows one reader per descriptor)."""

    def __init__(self, fd: int):
        self._fd = fd
        self._waiters: set[asyncio.Future] = set()

    async def wait(self, timeout: float | None = None) -> None:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if not self._waiters:
            loop.add_reader(self._fd, self._fire)
        self._waiters.add(future)
        try:
            if timeout is None:
                await future
            else:
                await asyncio.wait_for(asyncio.shield(future), max(timeout, 0.0))
        except asyncio.TimeoutError:
            pass
        finally:
            self._waiters.discard(future)
            if not self._waiters:
                loop.remove_reader(self._fd)

    def _fire(self) -> None:
        for future in list(self._waiters):
            if not future.done():
                future.set_result(None)


def _left(deadline_ns: int) -> float:
    return (deadline_ns - time.monotonic_ns()) / 1e9


# --- client --------------------------------------------------------------------------------------


class ResponseView:
    """A response in place, read-only, until release() (or the end of a ``with`` block)."""

    __slots__ = ("_lease", "_data", "final", "redelivered")

    def __init__(self, lease):
        self._lease = lease
        self._data = memoryview(lease)
        self.final = lease.final              # the last response of its request
        self.redelivered = lease.redelivered  # written by a server that took the request over

    @property
    def data(self) -> memoryview:
        if self._data is None:
            raise ValueError("the response view was released")
        return self._data

    def __len__(self) -> int:
        return len(self.data)

    def __bytes__(self) -> bytes:
        return bytes(self.data)

    def release(self) -> None:
        """Gives the response back (the server may reuse its place). If an array made from it is
        still alive, that happens when the last one goes."""
        data, self._data = self._data, None
        lease, self._lease = self._lease, None
        if lease is None:
            return
        if _release(data) and not _shared(lease):
            lease.end()

    def __enter__(self) -> memoryview:
        return self.data

    def __exit__(self, *exc) -> bool:
        self.release()
        return False


class PendingResponse:
    """A request a client sent, and the way to its responses: one, or a stream ending with a final
    one. Dropping it before the final response cancels the request (its server sees
    ``Request.cancelled``)."""

    __slots__ = ("_pending", "_client")

    def __init__(self, pending, client: "ServiceClient"):
        self._pending = pending
        self._client = client

    @property
    def id(self) -> int:
        """The request's id (the server's ``Request.id``), assigned by the transport."""
        return self._pending.id

    @property
    def deadline(self) -> float:
        """time.monotonic() seconds after which nothing is waited for."""
        return self._pending.deadline_ns / 1e9

    @property
    def done(self) -> bool:
        """The final response was taken, or the request ended."""
        return self._pending.done

    @property
    def expired(self) -> bool:
        return self._pending.expired

    @property
    def redelivered(self) -> bool:
        """A response came from a server that took the request over from one that died."""
        return self._pending.redelivered

    def ready(self) -> bool:
        """Whether try_receive() would have something to say now."""
        return self._pending.ready()

    def receive(self, timeout: float | None = None) -> bytes:
        """The next response, waiting up to ``timeout`` seconds (and never past the deadline).
        TimeoutError when the time runs out; PeerGoneError when the request ended without a final
        response (its server died and it was at_most_once, or the server dropped it)."""
        return self._pending.receive(timeout)

    def try_receive(self) -> bytes | None:
        """The next response, or None when there is none yet (re-arms the client's wait_fd())."""
        return self._pending.try_receive()

    def view(self, timeout: float | None = None) -> ResponseView:
        """The next response in place (zero-copy)."""
        return ResponseView(self._pending.view(timeout))

    def try_view(self) -> ResponseView | None:
        lease = self._pending.try_view()
        return None if lease is None else ResponseView(lease)

    def cancel(self) -> None:
        """Cancels the request (nothing when it is done)."""
        self._pending.cancel()

    def __iter__(self):
        """Every response, the final one last (a stream)."""
        while not self.done:
            yield self.receive()

    async def receive_async(self) -> bytes:
        """The next response, awaited in the running event loop (no thread, no polling)."""
        readiness = self._client._readiness()
        while True:
            message = self.try_receive()  # raises at the end, at the deadline
            if message is not None:
                return message
            await readiness.wait(_left(self._pending.deadline_ns))


class RequestLoan:
    """Room for a request lent to a client, writable in place: fill ``buffer``, then send(n)."""

    __slots__ = ("_lease", "_buffer", "_client")

    def __init__(self, lease, client: "ServiceClient"):
        self._lease = lease
        self._buffer = memoryview(lease)
        self._client = client

    @property
    def buffer(self) -> memoryview:
        if self._buffer is None:
            raise ValueError("the loan was sent or abandoned")
        return self._buffer

    def __len__(self) -> int:
        return len(self.buffer)

    def send(self, nbytes: int | None = None) -> PendingResponse:
        """Sends the first ``nbytes`` (default: all) as the request. Arrays made from the buffer
        must be gone first (BufferError, and the loan is abandoned)."""
        size = len(self.buffer) if nbytes is None else nbytes
        buffer, self._buffer = self._buffer, None
        if not _release(buffer) or _shared(self._lease):
            self.abandon()
            raise BufferError("the loan's buffer is still in use (an array made from it is alive): "
                              "the loan was abandoned")
        pending = self._client._client.send_loan(self._lease, size)
        if pending is None:  # the request queue is full right now: keep the loan
            self._buffer = memoryview(self._lease)
            raise BlockingIOError("the service's request queue is full; send again")
        self._lease = None
        return PendingResponse(pending, self._client)

    def abandon(self) -> None:
        lease, self._lease = self._lease, None
        buffer, self._buffer = self._buffer, None
        if buffer is not None:
            _release(buffer)
        if lease is not None:
            lease.end()

    def __enter__(self) -> memoryview:
        return self.buffer

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is not None:
            self.abandon()
        return False


class ServiceClient:
    """A client of the service ``name`` (created if needed). Limits (``max_request``,
    ``max_response``, ``max_in_flight``, ``response_depth``, ``max_clients``, ``max_servers``,
    ``max_active``) are the creator's; 0 takes whatever the service has. Each request's deadline
    is its send time plus ``request_timeout`` seconds; ``at_most_once`` requests whose server dies
    end with PeerGoneError instead of going to another server."""

    def __init__(self, name: str, **options):
        self._client = _shmring._ServiceClient(name, **options)
        self._ready = None

    def send(self, data, timeout: float | None = None) -> PendingResponse:
        """Sends ``data`` (any bytes-like object) as a request, waiting up to ``timeout`` while
        max_in_flight requests are outstanding."""
        return PendingResponse(self._client.send(data, timeout), self)

    def try_send(self, data) -> PendingResponse | None:
        """As send() without waiting: None when max_in_flight requests are outstanding."""
        pending = self._client.try_send(data)
        return None if pending is None else PendingResponse(pending, self)

    def call(self, data, timeout: float | None = None) -> bytes:
        """Sends ``data`` and returns its (one, final) response, all within ``timeout``."""
        start = time.monotonic()
        pending = self.send(data, timeout)
        left = None if timeout is None else max(timeout - (time.monotonic() - start), 0.0)
        response = pending.receive(left)
        if not pending.done:
            pending.cancel()
            raise ValueError("the server answered with a stream: use send() and iterate")
        return response

    async def call_async(self, data, timeout: float | None = None) -> bytes:
        """call() awaited in the running event loop."""
        async def run() -> bytes:
            pending = self.try_send(data)
            while pending is None:
                await self._readiness().wait(0.01)  # a call of ours ends: room again
                pending = self.try_send(data)
            response = await pending.receive_async()
            if not pending.done:
                pending.cancel()
                raise ValueError("the server answered with a stream: use send() and receive_async()")
            return response
        return await run() if timeout is None else await asyncio.wait_for(run(), timeout)

    def loan(self, timeout: float | None = None) -> RequestLoan:
        """Room for a request in place (zero-copy); then loan.send(n)."""
        return RequestLoan(self._client.loan(timeout), self)

    def try_loan(self) -> RequestLoan | None:
        lease = self._client.try_loan()
        return None if lease is None else RequestLoan(lease, self)

    def _readiness(self) -> _Readiness:
        if self._ready is None:
            self._ready = _Readiness(self._client.wait_fd())
        return self._ready

    def close(self) -> None:
        self._client.close()

    @property
    def closed(self) -> bool:
        return self._client.closed

    @property
    def name(self) -> str:
        return self._client.name

    def wait_fd(self) -> int:
        return self._client.wait_fd()

    def take_wait_events(self) -> int:
        return self._client.take_wait_events()

    def stats(self) -> dict:
        return self._client.stats()

    max_request = property(lambda self: self._client.max_request)
    max_response = property(lambda self: self._client.max_response)
    max_in_flight = property(lambda self: self._client.max_in_flight)
    in_flight = property(lambda self: self._client.in_flight)

    @property
    def request_timeout(self) -> float:
        return self._client.request_timeout

    @request_timeout.setter
    def request_timeout(self, seconds: float) -> None:
        self._client.request_timeout = seconds

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> bool:
        self.close()
        return False


class AsyncServiceClient:
    """A ServiceClient for asyncio: ``answer = await client.call(b"...")``."""

    def __init__(self, name: str, **options):
        self.client = ServiceClient(name, **options)

    async def call(self, data, timeout: float | None = None) -> bytes:
        return await self.client.call_async(data, timeout)

    async def send(self, data, timeout: float | None = None) -> PendingResponse:
        """Sends a request (awaiting room among max_in_flight); await its responses with
        ``PendingResponse.receive_async()``."""
        async def run() -> PendingResponse:
            pending = self.client.try_send(data)
            while pending is None:
                await self.client._readiness().wait(0.01)
                pending = self.client.try_send(data)
            return pending
        return await run() if timeout is None else await asyncio.wait_for(run(), timeout)

    def close(self) -> None:
        self.client.close()

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc) -> bool:
        self.close()
        return False


# --- server --------------------------------------------------------------------------------------


class ResponseLoan:
    """Room for a response lent to a server, writable in place: fill ``buffer``, then
    respond(n, final)."""

    __slots__ = ("_lease", "_buffer", "_request")

    def __init__(self, lease, request: "Request"):
        self._lease = lease
        self._buffer = memoryview(lease)
        self._request = request

    @property
    def buffer(self) -> memoryview:
        if self._buffer is None:
            raise ValueError("the loan was sent or abandoned")
        return self._buffer

    def respond(self, nbytes: int | None = None, final: bool = True) -> None:
        """Sends the first ``nbytes`` (default: all) as the next response."""
        size = len(self.buffer) if nbytes is None else nbytes
        if final:
            self._request._give_back_memory()  # BufferError here leaves the loan as it was
        buffer, self._buffer = self._buffer, None
        if not _release(buffer) or _shared(self._lease):
            self.abandon()
            raise BufferError("the loan's buffer is still in use (an array made from it is alive): "
                              "the loan was abandoned")
        lease, self._lease = self._lease, None
        self._request._lease.send_loan(lease, size, final)
        if final:
            self._request._lease = None

    def abandon(self) -> None:
        lease, self._lease = self._lease, None
        buffer, self._buffer = self._buffer, None
        if buffer is not None:
            _release(buffer)
        if lease is not None:
            lease.end()

    def __enter__(self) -> memoryview:
        return self.buffer

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is not None:
            self.abandon()
        return False


class Request:
    """A request a server holds until it answers finally: ``data`` is the request in place (a
    read-only memoryview). Dropping it (drop(), or leaving a ``with`` block unanswered) ends the
    request: its client gets PeerGoneError."""

    __slots__ = ("_lease", "_data", "_server")

    def __init__(self, lease, server: "ServiceServer"):
        self._lease = lease
        self._data = memoryview(lease)
        self._server = server

    @property
    def data(self) -> memoryview:
        if self._data is None:
            raise ValueError("the request was answered or dropped")
        return self._data

    def __bytes__(self) -> bytes:
        return bytes(self.data)

    def __len__(self) -> int:
        return len(self.data)

    id = property(lambda self: self._held().id)
    redelivered = property(lambda self: self._held().redelivered)

    @property
    def deadline(self) -> float:
        """time.monotonic() seconds after which the client no longer waits."""
        return self._held().deadline_ns / 1e9

    @property
    def expired(self) -> bool:
        """The deadline passed: the client stopped waiting (the server may drop() it)."""
        return self._held().expired

    @property
    def cancelled(self) -> bool:
        """The client cancelled the request or is gone: what is sent is dropped."""
        return self._lease is not None and self._lease.cancelled

    @property
    def finished(self) -> bool:
        return self._lease is None

    def _held(self):
        if self._lease is None:
            raise ValueError("the request was answered or dropped")
        return self._lease

    def _give_back_memory(self) -> None:
        """Before a final response: our memoryview of the request goes; BufferError (nothing sent)
        if an array made from it is still alive."""
        data, self._data = self._data, None
        if data is None:
            return
        if not _release(data):
            self._data = data  # exported by something: still ours, still valid
        elif _shared(self._lease):
            self._data = memoryview(self._lease)
        else:
            return
        raise BufferError("the request's memory is still in use (an array made from it is alive): "
                          "drop it before the final response")

    def respond(self, data, final: bool = True) -> None:
        """Sends a response (``final`` ends the request), waiting for room when the client has not
        taken the stream's earlier responses (up to the deadline: TimeoutError). CancelledError or
        PeerGoneError for a response that is not final to a client that cancelled or is gone."""
        self._held()
        if final:
            self._give_back_memory()  # before any local reference to the lease (it counts them)
        self._lease.respond(data, final)
        if final:
            self._lease = None

    def try_respond(self, data, final: bool = True) -> bool:
        """As respond() without waiting: False when there is no room yet."""
        self._held()
        if final:
            self._give_back_memory()  # before any local reference to the lease (it counts them)
        sent = self._lease.try_respond(data, final)
        if final and sent:
            self._lease = None
        elif final:
            self._data = memoryview(self._lease)
        return sent

    async def respond_async(self, data, final: bool = True) -> None:
        """respond() awaited in the running event loop (room for a stream comes through the
        server's wait_fd)."""
        readiness = self._server._readiness()
        while not self.try_respond(data, final):
            if self.expired:
                raise TimeoutError("the request's deadline passed while its stream waited for room")
            await readiness.wait(min(max(_left(self._held().deadline_ns), 0.0), 0.05))

    def loan(self) -> ResponseLoan:
        """Room for the next response in place (zero-copy), waiting for room like respond()."""
        return ResponseLoan(self._held().loan_response(), self)

    def try_loan(self) -> ResponseLoan | None:
        lease = self._held().try_loan_response()
        return None if lease is None else ResponseLoan(lease, self)

    def drop(self) -> None:
        """Ends the request without a final response (its client gets PeerGoneError). If an
        array made from the request's memory is still alive, that happens when the last one goes."""
        lease, self._lease = self._lease, None
        data, self._data = self._data, None
        if lease is None:
            return
        if (data is None or _release(data)) and not _shared(lease):
            lease.end()

    def __enter__(self) -> "Request":
        return self

    def __exit__(self, *exc) -> bool:
        self.drop()
        return False


class ServiceServer:
    """A server of the service ``name`` (created if needed), competing with any other servers for
    its requests. A server that closes (or dies) holding requests hands them to another server."""

    def __init__(self, name: str, **options):
        self._server = _shmring._ServiceServer(name, **options)
        self._ready = None

    def receive(self, timeout: float | None = None) -> Request:
        """The next request, waiting up to ``timeout`` seconds: TimeoutError when none came."""
        return Request(self._server.receive(timeout), self)

    def try_receive(self) -> Request | None:
        """The next request, or None (also while max_active requests are held)."""
        lease = self._server.try_receive()
        return None if lease is None else Request(lease, self)

    def __iter__(self):
        """Requests as they come (blocking), until the server is closed."""
        while not self.closed:
            try:
                yield self.receive(0.1)
            except TimeoutError:
                continue

    def serve(self, handler, *, timeout: float | None = None, count: int | None = None) -> int:
        """Answers requests with ``handler(request)``: its return value (bytes-like) is the final
        response; None when the handler answered itself (or streamed). An exception in the handler
        drops that request (its client gets PeerGoneError) and serving goes on. Stops after
        ``count`` requests, after ``timeout`` seconds, or when the server is closed. Returns how
        many requests it took."""
        end = None if timeout is None else time.monotonic() + timeout
        served = 0
        while not self.closed and (count is None or served < count):
            if end is not None and time.monotonic() >= end:
                break
            try:
                request = self.receive(0.1 if end is None else max(min(0.1, end - time.monotonic()), 0.0))
            except TimeoutError:
                continue
            served += 1
            _answer(handler, request)
        return served

    async def serve_async(self, handler, *, concurrency: int | None = None) -> None:
        """Serves in the running event loop until cancelled (or the server closes): up to
        ``concurrency`` (default max_active) requests at once, each answered by ``handler(request)``
        -- a coroutine function or a plain one -- whose result is the final response (None: it
        answered itself). An exception drops that request."""
        slots = asyncio.Semaphore(concurrency or self.max_active)
        readiness = self._readiness()
        tasks: set[asyncio.Task] = set()
        try:
            while not self.closed:
                await slots.acquire()
                request = self.try_receive()
                while request is None and not self.closed:
                    await readiness.wait(0.1)
                    request = self.try_receive()
                if request is None:
                    slots.release()
                    break
                task = asyncio.ensure_future(_answer_async(handler, request, slots))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        finally:
            for task in tasks:
                task.cancel()

    def _readiness(self) -> _Readiness:
        if self._ready is None:
            self._ready = _Readiness(self._server.wait_fd())
        return self._ready

    def close(self) -> None:
        self._server.close()

    @property
    def closed(self) -> bool:
        return self._server.closed

    @property
    def name(self) -> str:
        return self._server.name

    def wait_fd(self) -> int:
        return self._server.wait_fd()

    def take_wait_events(self) -> int:
        return self._server.take_wait_events()

    def stats(self) -> dict:
        return self._server.stats()

    max_request = property(lambda self: self._server.max_request)
    max_response = property(lambda self: self._server.max_response)
    max_active = property(lambda self: self._server.max_active)
    active = property(lambda self: self._server.active)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> bool:
        self.close()
        return False


def _answer(handler, request: Request) -> None:
    try:
        response = handler(request)
        if response is not None and not request.finished:
            request.respond(response)
    except Exception:  # noqa: BLE001  (the request is dropped; serving goes on)
        pass
    finally:
        request.drop()  # nothing when answered


async def _answer_async(handler, request: Request, slots: asyncio.Semaphore) -> None:
    try:
        response = handler(request)
        if inspect.isawaitable(response):
            response = await response
        if response is not None and not request.finished:
            await request.respond_async(response)
    except asyncio.CancelledError:
        raise
    except Exception:  # noqa: BLE001
        pass
    finally:
        request.drop()
        slots.release()
