"""Interpreter exit with daemon threads waiting (issue 23, defect 3) and fork() (defect 6): a
forked child's inherited endpoints are inert and say so, consume nothing, never deadlock, and do
not disturb the parent."""

import os
import select

import pytest

import shmring
from conftest import assert_clean_exit, run_python


@pytest.mark.parametrize("wait", ["receive", "view", "semaphore", "lock", "send"])
def test_exit_with_a_daemon_thread_waiting(name, wait):
    # A daemon thread that takes the GIL back during finalization is ended by CPython with a
    # forced unwind; it used to cross a destructor and abort ("terminate called without an
    # active exception").
    code = """
        import sys, threading, time, shmring
        name, wait = sys.argv[1], sys.argv[2]
        if wait in ("receive", "view"):
            sub = shmring.TopicSubscriber(name)
            target = (lambda: sub.receive()) if wait == "receive" else (lambda: sub.view())
        elif wait == "semaphore":
            sem = shmring.SystemSemaphore(name + "_sem", 0, shmring.SemaphoreAccessMode.CREATE)
            target = sem.acquire
        elif wait == "lock":
            key = name + "_seg" + sys.argv[3]
            holder = shmring.SharedMemory(key, create=True, size=64)
            holder.lock()
            other = shmring.SharedMemory(key, create=False)
            target = other.lock
        else:
            producer = shmring.QueueProducer(name, capacity=2, max_message=8)
            consumer = shmring.QueueConsumer(name)
            producer.send(b"1"); producer.send(b"2")
            target = lambda: producer.send(b"3")
        for _ in range(3):
            threading.Thread(target=target, daemon=True).start()
        time.sleep(0.2)
        if wait == "semaphore":
            sem.release(1)   # one thread takes it and waits again, during the exit too
        print("exiting", flush=True)
    """
    for round in range(4):
        result = run_python(code, name, wait, round)
        if wait == "semaphore":
            shmring.SystemSemaphore(name + "_sem", 0, shmring.SemaphoreAccessMode.OPEN).remove()
        assert_clean_exit(result, "exiting")
        assert "terminate" not in result.stderr, result.stderr
    # The children exited with endpoints open (their daemon threads held them): their descriptor
    # files are stale now. The segments go with the `name` fixture.
    shmring.collect_garbage(segments=False)


def test_forked_child_publisher_is_inert_and_says_so(name):
    result = run_python("""
        import os, sys, shmring
        name = sys.argv[1]
        pub = shmring.TopicPublisher(name)
        sub = shmring.TopicSubscriber(name)
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                pub.send(b"from the child")
                code = 3
            except ValueError as e:
                if "fork" not in str(e):
                    code = 4
            try:
                pub.loan(8)
                code = 5
            except ValueError:
                pass
            if not pub.closed or "fork" not in repr(pub):
                code = 6
            pub.close()   # does nothing to the parent's endpoint
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, status
        assert sub.try_receive() is None          # nothing from the child
        pub.send(b"parent")                       # the parent loses nothing
        assert sub.receive(timeout=5) == b"parent"
        print("ok")
    """, name)
    assert_clean_exit(result, "ok")


def test_forked_child_consumer_consumes_nothing(name):
    result = run_python("""
        import os, sys, shmring
        name = sys.argv[1]
        producer = shmring.QueueProducer(name, capacity=4, max_message=16)
        consumer = shmring.QueueConsumer(name)
        producer.send(b"for the parent")
        pid = os.fork()
        if pid == 0:
            for call in (consumer.try_receive, consumer.try_view, lambda: consumer.receive(timeout=0)):
                try:
                    call()
                    os._exit(3)
                except ValueError as e:
                    if "fork" not in str(e):
                        os._exit(4)
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, status
        assert consumer.receive(timeout=5) == b"for the parent"
        print("ok")
    """, name)
    assert_clean_exit(result, "ok")


def test_forked_child_loans_and_views_are_inert(name):
    result = run_python("""
        import os, sys, shmring
        name = sys.argv[1]
        producer = shmring.QueueProducer(name, capacity=4, max_message=16)
        consumer = shmring.QueueConsumer(name)
        producer.send(b"viewed")
        loan = producer.loan(8)
        loan.buffer[:8] = b"parent's"
        view = consumer.view(timeout=5)
        pid = os.fork()
        if pid == 0:
            code = 0
            for call in (loan.publish, view.release):
                try:
                    call()
                    code = 3
                except ValueError as e:
                    if "fork" not in str(e):
                        code = 4
            del loan, view          # garbage collection settles nothing of the parent's
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, status
        assert bytes(view.data) == b"viewed"
        view.release()
        loan.publish()
        assert consumer.receive(timeout=5) == b"parent's"
        print("ok")
    """, name)
    assert_clean_exit(result, "ok")


def test_fork_while_a_thread_waits_does_not_deadlock_the_childs_close(name):
    # The waiting thread holds the endpoint's lock at fork time; the child's copy of that lock
    # stays taken forever, so the child must never take it.
    result = run_python("""
        import os, sys, threading, time, shmring
        name = sys.argv[1]
        for _ in range(20):
            sub = shmring.TopicSubscriber(name)
            def wait():
                try:
                    sub.receive(timeout=0.3)
                except (TimeoutError, ValueError):
                    pass
            waiting = threading.Thread(target=wait)
            waiting.start()
            time.sleep(0.01)
            pid = os.fork()
            if pid == 0:
                sub.close()
                del sub
                os._exit(0)
            _, status = os.waitpid(pid, 0)
            assert os.waitstatus_to_exitcode(status) == 0, status
            waiting.join()
            sub.close()
        print("ok")
    """, name, timeout=120)
    assert_clean_exit(result, "ok")


def test_a_child_dropping_its_copy_leaves_the_parents_descriptor_working(name):
    with shmring.TopicPublisher(name) as pub, shmring.TopicSubscriber(name) as sub:
        fd = sub.wait_fd()
        assert sub.try_receive() is None  # armed
        pid = os.fork()
        if pid == 0:
            import gc
            try:
                sub.close()
                gc.collect()
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        pub.send(b"wake")
        readable, _, _ = select.select([fd], [], [], 10)
        assert readable == [fd]
        assert sub.try_receive() == b"wake"
