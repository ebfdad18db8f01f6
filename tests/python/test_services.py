"""Services from Python (docs/services.md): calls, ids, zero copy both ways, streams, cancel, drop,
deadlines, memory safety of what is lent in place, asyncio (a client's concurrent calls and a
server loop), servers and clients killed mid-call, and interop with C++ clients and servers."""

import asyncio
import os
import signal
import subprocess
import threading
import time
import zlib

import pytest

import shmring

np = pytest.importorskip("numpy")

SMALL = dict(max_request=256, max_response=256, max_in_flight=4, response_depth=2, max_clients=4,
             max_servers=4, max_active=4)


def serve_in_thread(server, handler, count):
    thread = threading.Thread(target=server.serve, args=(handler,), kwargs={"count": count, "timeout": 20})
    thread.start()
    return thread


def test_call_and_serve(name):
    with shmring.ServiceServer(name, **SMALL) as server, shmring.ServiceClient(name, **SMALL) as client:
        thread = serve_in_thread(server, lambda r: bytes(r.data).upper(), 3)
        assert client.call(b"hello", timeout=5) == b"HELLO"
        assert client.call(bytearray(b"bytearray"), timeout=5) == b"BYTEARRAY"
        assert client.call(np.frombuffer(b"numpy", np.uint8), timeout=5) == b"NUMPY"
        thread.join()
        stats = shmring.service_stats(name)
        assert stats["served"] == 3 and stats["requests"] == 3 and stats["in_flight"] == 0


def test_ids_and_out_of_order_answers(name):
    with shmring.ServiceServer(name, **SMALL) as server, shmring.ServiceClient(name, **SMALL) as client:
        pending = [client.send(f"q{i}".encode()) for i in range(4)]
        assert client.try_send(b"one too many") is None  # max_in_flight
        requests = [server.receive(timeout=5) for _ in range(4)]
        assert [r.id for r in requests] == [p.id for p in pending]
        for r in reversed(requests):
            r.respond(b"a" + bytes(r.data))
        assert [p.receive(timeout=5) for p in pending] == [b"aq0", b"aq1", b"aq2", b"aq3"]
        assert all(p.done for p in pending)


def test_zero_copy_both_ways(name):
    with shmring.ServiceServer(name, **SMALL) as server, shmring.ServiceClient(name, **SMALL) as client:
        with client.loan() as buffer:
            buffer[:5] = b"12345"
        loan = client.loan()
        loan.buffer[:3] = b"abc"
        pending = loan.send(3)
        request = server.receive(timeout=5)
        numbers = np.frombuffer(request.data, np.uint8)  # in place, read-only
        assert bytes(numbers) == b"abc"
        assert not numbers.flags.writeable
        with pytest.raises(BufferError):
            request.respond(b"x")  # the array still shares the request's memory
        del numbers
        response = request.loan()
        response.buffer[:4] = b"done"
        response.respond(4)
        assert request.finished
        with pending.view(timeout=5) as data:
            assert bytes(data) == b"done"
        assert pending.done


def test_streams_end_with_a_final_response_and_wait_for_the_client(name):
    with shmring.ServiceServer(name, **SMALL) as server, shmring.ServiceClient(name, **SMALL) as client:
        pending = client.send(b"count")
        request = server.receive(timeout=5)
        assert request.try_respond(b"1", final=False)
        assert request.try_respond(b"2", final=False)
        assert not request.try_respond(b"3", final=False)  # response_depth 2: the client reads first

        def rest():
            for i in range(3, 8):
                request.respond(str(i).encode(), final=False)
            request.respond(b"end")
        thread = threading.Thread(target=rest)
        thread.start()
        assert list(pending) == [b"1", b"2", b"3", b"4", b"5", b"6", b"7", b"end"]
        thread.join()


def test_cancel_drop_and_deadline(name):
    with shmring.ServiceServer(name, **SMALL) as server, shmring.ServiceClient(name, **SMALL) as client:
        pending = client.send(b"cancel me")
        request = server.receive(timeout=5)
        pending.cancel()
        assert request.cancelled
        with pytest.raises(shmring.CancelledError):
            request.respond(b"part", final=False)
        request.drop()
        pending = client.send(b"drop me")
        with server.receive(timeout=5):
            pass  # left unanswered: dropped
        with pytest.raises(shmring.PeerGoneError):
            pending.receive(timeout=5)
        client.request_timeout = 0.1
        pending = client.send(b"too late")
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            pending.receive(timeout=30)  # the deadline, not the 30 s
        assert time.monotonic() - start < 10
        assert pending.expired and pending.done
        late = server.receive(timeout=5)
        assert late.expired
        late.drop()


def test_memory_lent_in_place_is_never_reachable_after_it_is_given_back(name):
    with shmring.ServiceServer(name, **SMALL) as server, shmring.ServiceClient(name, **SMALL) as client:
        pending = client.send(b"q")
        request = server.receive(timeout=5)
        data = request.data
        request.respond(b"response")
        with pytest.raises(ValueError):
            bytes(data)  # the request's memory is the client's again
        view = pending.view(timeout=5)
        array = np.frombuffer(view.data, np.uint8)
        view.release()  # the array keeps the response lent until it goes
        assert bytes(array) == b"response"
        del array
        client.close()  # a lease alive would keep the mapping; none is


def test_a_killed_server_redelivers_or_ends_at_most_once_requests(name, spawn):
    for at_most_once in (False, True):
        channel = f"{name}_{int(at_most_once)}"
        holder = spawn("""
            import sys, time, shmring
            server = shmring.ServiceServer(sys.argv[1], **eval(sys.argv[2]))
            request = server.receive(timeout=10)
            print("holding", flush=True)
            time.sleep(60)
        """, channel, repr(SMALL), stdout=subprocess.PIPE, text=True)
        with shmring.ServiceClient(channel, at_most_once=at_most_once, **SMALL) as client:
            pending = client.send(b"work")
            assert holder.stdout.readline().strip() == "holding"
            with shmring.ServiceServer(channel, **SMALL) as backup:
                os.kill(holder.pid, signal.SIGKILL)
                holder.wait()
                if at_most_once:
                    with pytest.raises(shmring.PeerGoneError):
                        pending.receive(timeout=10)
                else:
                    request = None
                    deadline = time.monotonic() + 10
                    while request is None and time.monotonic() < deadline:
                        try:
                            request = backup.receive(timeout=0.05)
                        except TimeoutError:
                            pending.try_receive()  # the client's polls run the recovery too
                    assert request is not None and request.redelivered
                    request.respond(b"again")
                    assert pending.receive(timeout=5) == b"again"
                    assert pending.redelivered


def test_a_killed_client_is_seen_as_gone(name, spawn):
    with shmring.ServiceServer(name, **SMALL) as server:
        caller = spawn("""
            import sys, time, shmring
            client = shmring.ServiceClient(sys.argv[1], **eval(sys.argv[2]))
            pending = client.send(b"q")
            print("sent", flush=True)
            time.sleep(60)
        """, name, repr(SMALL), stdout=subprocess.PIPE, text=True)
        assert caller.stdout.readline().strip() == "sent"
        request = server.receive(timeout=5)
        os.kill(caller.pid, signal.SIGKILL)
        caller.wait()
        deadline = time.monotonic() + 10
        while not request.cancelled and time.monotonic() < deadline:
            try:
                server.receive(timeout=0.05).drop()
            except TimeoutError:
                pass
        assert request.cancelled
        with pytest.raises(shmring.PeerGoneError):
            request.respond(b"x", final=False)
        request.drop()


def test_asyncio_concurrent_calls_and_server_loop(name):
    async def main():
        server = shmring.ServiceServer(name, **SMALL)
        client = shmring.AsyncServiceClient(name, **SMALL)

        async def handler(request):
            await asyncio.sleep(0.001 * (len(request.data) % 3))  # answers out of order
            return bytes(request.data)[::-1]

        serving = asyncio.ensure_future(server.serve_async(handler))
        words = [f"word{i}".encode() for i in range(60)]
        answers = await asyncio.wait_for(asyncio.gather(*(client.call(w) for w in words)), 30)
        assert answers == [w[::-1] for w in words]
        serving.cancel()
        try:
            await serving
        except asyncio.CancelledError:
            pass
        client.close()
        server.close()
    asyncio.run(main())


def test_python_client_cpp_server(name, peer):
    count = 2000
    server = subprocess.Popen([peer, "service-serve", name, str(count)], stdout=subprocess.PIPE, text=True)
    assert server.stdout.readline().strip() == "ready"
    crc = 0
    with shmring.ServiceClient(name, max_request=4096, max_response=4096) as client:
        for i in range(count):
            size = 1 + (i * 2654435761) % (2 ** 32) % 4000
            message = bytes(((i * 31 + j * 7) & 0xFF) for j in range(size))
            assert client.call(message, timeout=30) == message[::-1]
            crc = zlib.crc32(message, crc)
    out, _ = server.communicate(timeout=60)
    assert server.returncode == 0
    assert int(out.split("crc ")[1]) == crc


def test_cpp_client_python_server(name, peer):
    count = 2000
    with shmring.ServiceServer(name, max_request=4096, max_response=4096) as server:
        caller = subprocess.Popen([peer, "service-call", name, str(count)], stdout=subprocess.PIPE, text=True)
        crc = 0

        def answer(request):
            nonlocal crc
            crc = zlib.crc32(request.data, crc)
            return bytes(request.data)[::-1]
        assert server.serve(answer, count=count, timeout=60) == count
        out, _ = caller.communicate(timeout=60)
        assert caller.returncode == 0, out
        assert int(out.split("crc ")[1]) == crc
