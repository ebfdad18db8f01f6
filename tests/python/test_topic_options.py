"""Topics grown up, from Python: several publishers in one order, history for late joiners,
each subscriber's delivery, and where a subscriber starts. Mistakes in the options raise a clear
TypeError/ValueError before anything is opened."""

import subprocess

import pytest

import shmring


def test_several_publishers_one_order_with_publisher_ids(name, spawn):
    first = shmring.TopicPublisher(name, max_publishers=2, capacity=1 << 16)
    sub = shmring.TopicSubscriber(name, create=False, delivery="lossless")
    assert first.max_publishers == 2
    # The second publisher in another process: ids are per publisher, stable while it is open.
    child = spawn(
        """
        import sys, shmring
        p = shmring.TopicPublisher(sys.argv[1], create=False)
        print(p.publisher_id, flush=True)
        for i in range(100):
            p.send(b"B%d" % i, timeout=10)
        sys.stdin.read()
        """, name, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    other_id = int(child.stdout.readline())
    assert other_id != first.publisher_id
    for i in range(100):
        first.send(b"A%d" % i, timeout=10)
    assert first.published == 100
    got = {first.publisher_id: [], other_id: []}
    sequences = []
    for _ in range(200):
        view = sub.view(timeout=10)
        # The view and the subscriber say the same about where the message came from.
        assert (view.publisher, view.publisher_sequence, view.sequence) == (
            sub.last_publisher, sub.last_publisher_sequence, sub.last_sequence)
        assert bytes(view) == (b"A" if view.publisher == first.publisher_id else b"B") + b"%d" % view.publisher_sequence
        got[view.publisher].append(view.publisher_sequence)
        sequences.append(view.sequence)
        view.release()
    # Each publisher's own messages in its order, numbered 0, 1, ...; one topic order for all.
    assert got[first.publisher_id] == list(range(100))
    assert got[other_id] == list(range(100))
    assert sequences == sorted(sequences) and len(set(sequences)) == 200
    child.stdin.close()
    assert child.wait(timeout=30) == 0


def test_view_says_which_publisher_sent_it(name):
    pub = shmring.TopicPublisher(name, max_publishers=2)
    sub = shmring.TopicSubscriber(name, create=False)
    pub.send(b"x")
    pub.send(b"y")
    view = sub.view(timeout=5)
    assert (view.publisher, view.publisher_sequence) == (pub.publisher_id, 0)
    view.release()
    view = sub.view(timeout=5)
    assert (view.publisher, view.publisher_sequence, bytes(view)) == (pub.publisher_id, 1, b"y")
    view.release()


def test_history_for_late_joiners_and_start_modes(name):
    pub = shmring.TopicPublisher(name, history=8, capacity=1 << 16, max_message=256)
    assert pub.history == 8
    for i in range(5000):  # far more than the ring holds
        pub.send(b"%d" % i)
    last3 = shmring.TopicSubscriber(name, create=False, start=3)
    assert [last3.try_receive() for _ in range(3)] == [b"4997", b"4998", b"4999"]
    assert last3.try_receive() is None and last3.history_missed == 0
    latest = shmring.TopicSubscriber(name, create=False, start="latest")
    assert latest.try_receive() == b"4999"
    also_latest = shmring.TopicSubscriber(name, create=False, start_at_latest=True)
    assert also_latest.try_receive() == b"4999"
    live = shmring.TopicSubscriber(name, create=False, start="live")
    assert live.try_receive() is None
    oldest = shmring.TopicSubscriber(name, create=False, start="oldest")
    kept = []
    while (m := oldest.try_receive()) is not None:
        kept.append(int(m))
    assert len(kept) >= 8 and kept == list(range(kept[0], 5000)) and kept[0] > 0
    assert oldest.history_missed == 0  # "everything the ring holds" asks for no number
    # More than the ring kept: exactly how many were missing.
    greedy = shmring.TopicSubscriber(name, create=False, start=4000)
    got = []
    while (m := greedy.try_receive()) is not None:
        got.append(int(m))
    assert got == kept
    assert len(got) + greedy.history_missed == 4000
    pub.send(b"5000")
    assert live.try_receive() == b"5000"


def test_delivery_is_each_subscribers_choice(name):
    pub = shmring.TopicPublisher(name, capacity=4096, max_message=64)  # lossy by default
    careful = shmring.TopicSubscriber(name, create=False, delivery="lossless")
    casual = shmring.TopicSubscriber(name, create=False)
    assert careful.delivery == "lossless" and casual.delivery == "lossy"
    # The lossless one holds the publisher back: it fills, then waits.
    sent = 0
    while pub.try_send(b"m" * 32):
        sent += 1
    assert 0 < sent < 10000
    assert [careful.try_receive() for _ in range(sent)] == [b"m" * 32] * sent
    assert careful.lost == 0
    stats = shmring.stats(name)
    assert stats["max_publishers"] == 1 and stats["history"] == 0 and stats["abandoned"] == 0
    subscribers = sorted(p["lossless"] for p in stats["peers"] if p["role"] == "subscriber")
    assert subscribers == [False, True]
    assert [p["publisher_id"] for p in stats["peers"] if p["role"] == "publisher"] == [pub.publisher_id]


def test_option_mistakes_are_clear_errors(name):
    with pytest.raises(ValueError, match="start"):
        shmring.TopicSubscriber(name, start="newest")
    with pytest.raises(ValueError, match=">= 0"):
        shmring.TopicSubscriber(name, start=-1)
    with pytest.raises(TypeError, match="start"):
        shmring.TopicSubscriber(name, start=True)
    with pytest.raises(TypeError, match="start"):
        shmring.TopicSubscriber(name, start=1.5)
    with pytest.raises(ValueError, match="not both"):
        shmring.TopicSubscriber(name, start="oldest", start_at_latest=True)
    with pytest.raises(ValueError, match="delivery"):
        shmring.TopicSubscriber(name, delivery="sometimes")
    with pytest.raises(ValueError, match="contradicts"):
        shmring.TopicSubscriber(name, delivery="lossy", lossless=True)
    with pytest.raises(TypeError, match="delivery"):
        shmring.TopicSubscriber(name, delivery=1)
    assert name not in shmring.list_channels()  # nothing was opened
    # A second publisher where the creator allowed one; an opener disagreeing on the settings.
    pub = shmring.TopicPublisher(name, history=4)
    with pytest.raises(shmring.Error, match="publisher"):
        shmring.TopicPublisher(name, create=False)
    with pytest.raises(shmring.MismatchError):
        shmring.TopicSubscriber(name, create=False, history=5)
    with pytest.raises(shmring.MismatchError):
        shmring.TopicSubscriber(name, create=False, max_publishers=3)
    pub.close()
