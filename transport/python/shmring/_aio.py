"""asyncio on the endpoints' pollable descriptors (wait_fd, docs/events.md): a coroutine tries,
and when there is nothing it waits for the descriptor in the event loop (no thread, no polling)."""

from __future__ import annotations

import asyncio


async def _readable(fd: int) -> None:
    loop = asyncio.get_running_loop()
    ready = loop.create_future()
    loop.add_reader(fd, lambda: ready.done() or ready.set_result(None))
    try:
        await ready
    finally:
        loop.remove_reader(fd)


async def receive_async(self) -> bytes:
    """The next message (bytes), awaiting it in the running event loop."""
    fd = self.wait_fd()
    while True:
        message = self.try_receive()  # None re-arms the descriptor
        if message is not None:
            return message
        await _readable(fd)


async def send_async(self, data) -> None:
    """Copies ``data`` in, awaiting room in the running event loop when the channel is full."""
    fd = self.wait_fd()
    while not self.try_send(data):  # False re-arms the descriptor
        await _readable(fd)


def aiter(self):
    return self


async def anext(self):
    if self.closed:
        raise StopAsyncIteration
    return await self.receive_async()
