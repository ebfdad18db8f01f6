// Queue channels in one process: API contracts, limits, validation, waiting, stats, permissions.
#include <signal.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "shmring/core/futex.h"
#include "shmring/core/shared_memory.h"
#include "shmring/transport/channel.h"
#include "control_block.h"
#include "shmring/transport/queue.h"
#include "transport_test_util.h"

namespace shmring {
namespace {

using namespace std::chrono_literals;
using testing::bytes_of;
using testing::channel_name;
using testing::RawChannel;
using testing::string_of;

QueueOptions small(std::uint64_t capacity = 8, std::uint64_t max_message = 64) {
  QueueOptions o;
  o.capacity = capacity;
  o.max_message = max_message;
  return o;
}

TEST(QueueChannelTest, SendAndReceiveRoundTrip) {
  const std::string name = channel_name("q_roundtrip");
  auto producer = QueueProducer::open(name, small());
  ASSERT_TRUE(producer.ok()) << producer.status();
  auto consumer = QueueConsumer::open(name);
  ASSERT_TRUE(consumer.ok()) << consumer.status();
  EXPECT_EQ(consumer->capacity(), 8u);
  EXPECT_EQ(consumer->max_message(), 64u);

  std::vector<std::byte> buf(64);
  std::size_t n = 0;
  EXPECT_EQ(consumer->try_receive(buf, &n), ChannelResult::kWouldBlock);
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(producer->try_send(bytes_of("m" + std::to_string(i))), ChannelResult::kOk);
  }
  EXPECT_EQ(producer->try_send(bytes_of("overflow")), ChannelResult::kWouldBlock);
  EXPECT_EQ(producer->send(bytes_of("overflow"), 20ms), ChannelResult::kTimedOut);
  for (int i = 0; i < 8; ++i) {
    ASSERT_EQ(consumer->try_receive(buf, &n), ChannelResult::kOk);
    EXPECT_EQ(string_of(std::span(buf).first(n)), "m" + std::to_string(i));
  }
  EXPECT_EQ(consumer->try_receive(buf, &n), ChannelResult::kWouldBlock);
  EXPECT_EQ(producer->stats().sent, 8u);
  EXPECT_EQ(consumer->stats().received, 8u);
}

TEST(QueueChannelTest, ZeroAndMaximumSizedMessagesAndTooLarge) {
  const std::string name = channel_name("q_sizes");
  auto producer = QueueProducer::open(name, small(4, 32));
  auto consumer = QueueConsumer::open(name);
  ASSERT_TRUE(producer.ok() && consumer.ok());
  std::vector<std::byte> big(33, std::byte{7});
  EXPECT_EQ(producer->try_send(big), ChannelResult::kTooLarge);
  EXPECT_EQ(producer->try_send({}), ChannelResult::kOk);
  EXPECT_EQ(producer->try_send(std::span(big).first(32)), ChannelResult::kOk);
  std::vector<std::byte> out(32);
  std::size_t n = 99;
  std::vector<std::byte> short_buf(31);
  EXPECT_EQ(consumer->try_receive(short_buf, &n), ChannelResult::kTooLarge);
  ASSERT_EQ(consumer->try_receive(out, &n), ChannelResult::kOk);
  EXPECT_EQ(n, 0u);
  ASSERT_EQ(consumer->try_receive(out, &n), ChannelResult::kOk);
  EXPECT_EQ(n, 32u);
  EXPECT_EQ(out[31], std::byte{7});
}

TEST(QueueChannelTest, LoanPublishAndViewAreZeroCopy) {
  const std::string name = channel_name("q_loan");
  auto producer = QueueProducer::open(name, small(4, 128));
  auto consumer = QueueConsumer::open(name);
  ASSERT_TRUE(producer.ok() && consumer.ok());
  {
    QueueLoan loan = producer->try_loan();
    ASSERT_TRUE(loan.ok());
    EXPECT_EQ(loan.buffer().size(), 128u);
    std::memcpy(loan.buffer().data(), "hello", 5);
    EXPECT_EQ(producer->publish(loan, 200), ChannelResult::kTooLarge);  // loan kept
    EXPECT_EQ(producer->publish(loan, 5), ChannelResult::kOk);
  }
  {
    QueueLoan abandoned = producer->loan(10ms);  // destroyed unpublished: consumers pass it
    ASSERT_TRUE(abandoned.ok());
  }
  ASSERT_EQ(producer->try_send(bytes_of("after")), ChannelResult::kOk);

  QueueView view = consumer->try_receive_view();
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(string_of(view.data()), "hello");
  EXPECT_FALSE(view.redelivered());
  const std::uint64_t first = view.sequence();
  EXPECT_EQ(view.release(), ChannelResult::kOk);
  QueueView second = consumer->receive_view(100ms);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(string_of(second.data()), "after");
  EXPECT_EQ(second.sequence(), first + 2);  // the abandoned slot had its own ticket
  second.release();
  EXPECT_FALSE(consumer->try_receive_view().ok());
}

TEST(QueueChannelTest, ClosingWithAnOutstandingLoanOrViewLosesAndStallsNothing) {
  const std::string name = channel_name("q_close_out");
  auto keeper = QueueProducer::open(name, small(4, 16));
  ASSERT_TRUE(keeper.ok());
  {
    auto producer = QueueProducer::open(name);
    ASSERT_TRUE(producer.ok());
    QueueLoan loan = producer->try_loan();
    ASSERT_TRUE(loan.ok());
    producer->close();  // the claim is given up; the loan is inert
  }
  ASSERT_EQ(keeper->try_send(bytes_of("kept")), ChannelResult::kOk);
  auto c1 = QueueConsumer::open(name);
  ASSERT_TRUE(c1.ok());
  QueueView held = c1->try_receive_view();
  ASSERT_TRUE(held.ok());
  EXPECT_EQ(string_of(held.data()), "kept");
  c1->close();  // the item goes to the next consumer
  auto c2 = QueueConsumer::open(name);
  ASSERT_TRUE(c2.ok());
  QueueView again = c2->receive_view(1s);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(string_of(again.data()), "kept");
  EXPECT_TRUE(again.redelivered());
}

// Loans and views belong to the endpoint, not to the object: moving a producer or consumer while
// one is out must neither strand the slot (consumers would wait on it forever) nor lose the item.
TEST(QueueChannelTest, LoansAndViewsSurviveMovingTheirEndpoint) {
  const std::string name = channel_name("q_move");
  auto p_opened = QueueProducer::open(name, small(4, 16));
  auto c_opened = QueueConsumer::open(name, small(4, 16));
  ASSERT_TRUE(p_opened.ok() && c_opened.ok());
  QueueProducer producer = *std::move(p_opened);
  QueueConsumer consumer = *std::move(c_opened);
  QueueLoan loan = producer.try_loan();
  ASSERT_TRUE(loan.ok());
  EXPECT_EQ(producer.try_loan().result(), ChannelResult::kWouldBlock);  // one at a time
  QueueProducer moved_producer = std::move(producer);
  QueueLoan moved_loan = std::move(loan);
  std::memcpy(moved_loan.buffer().data(), "moved", 5);
  EXPECT_EQ(producer.publish(moved_loan, 5), ChannelResult::kClosed);  // moved-from
  ASSERT_EQ(moved_producer.publish(moved_loan, 5), ChannelResult::kOk);
  ASSERT_EQ(moved_producer.try_send(bytes_of("second")), ChannelResult::kOk);
  QueueView view = consumer.try_receive_view();
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(consumer.try_receive_view().result(), ChannelResult::kWouldBlock);  // one at a time
  QueueConsumer moved_consumer = std::move(consumer);
  QueueView moved_view = std::move(view);
  EXPECT_EQ(string_of(moved_view.data()), "moved");
  EXPECT_EQ(moved_view.release(), ChannelResult::kOk);
  std::vector<std::byte> buf(16);
  std::size_t n = 0;
  ASSERT_EQ(moved_consumer.receive(buf, &n, 1s), ChannelResult::kOk);
  EXPECT_EQ(string_of(std::span(buf).first(n)), "second");
  EXPECT_EQ(moved_producer.stats().sent, 2u);
  EXPECT_EQ(moved_consumer.stats().received, 2u);
  // A view orphaned by close() says so on release (also for an empty item: no bytes to tell by).
  ASSERT_EQ(moved_producer.try_send({}), ChannelResult::kOk);
  QueueView orphan = moved_consumer.try_receive_view();
  ASSERT_TRUE(orphan.ok());
  moved_consumer.close();
  EXPECT_EQ(orphan.release(), ChannelResult::kClosed);
  EXPECT_EQ(orphan.release(), ChannelResult::kOk);  // already settled
}

// close() waits 2 s for the segment lock. When a stuck process holds it longer, the endpoint's
// slot must not stay occupied for as long as this process lives: it is left to the recovery.
TEST(QueueChannelTest, CloseWhileTheLockIsStuckLeavesTheSlotToTheRecovery) {
  const std::string name = channel_name("q_close_stuck");
  auto consumer = QueueConsumer::open(name, small());
  auto producer = QueueProducer::open(name, small());
  ASSERT_TRUE(consumer.ok() && producer.ok());
  ASSERT_EQ(producer->try_send(bytes_of("sent before close")), ChannelResult::kOk);
  RawChannel stuck(name);
  ASSERT_TRUE(stuck.attach());
  ASSERT_TRUE(stuck.memory.lock());  // the producer's close() cannot have it
  const auto t0 = std::chrono::steady_clock::now();
  producer->close();
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 1900ms);
  auto st = read_stats(name);
  ASSERT_TRUE(st.ok());
  ASSERT_EQ(st->peers.size(), 2u);
  int pending = 0;
  for (const PeerStats& p : st->peers) pending += p.state == PeerState::kDeadPending ? 1 : 0;
  EXPECT_EQ(pending, 1);
  EXPECT_EQ(st->sent, 1u);  // its counters were retired, not lost
  ASSERT_TRUE(stuck.memory.unlock());
  EXPECT_FALSE(consumer->recover(nullptr));  // frees the slot; nothing to redeliver
  st = read_stats(name);
  ASSERT_TRUE(st.ok());
  ASSERT_EQ(st->peers.size(), 1u);
  EXPECT_EQ(st->peers[0].role, PeerRole::kConsumer);
  EXPECT_EQ(st->sent, 1u);
  std::vector<std::byte> buf(64);
  std::size_t n = 0;
  ASSERT_EQ(consumer->try_receive(buf, &n), ChannelResult::kOk);
  EXPECT_EQ(string_of(std::span(buf).first(n)), "sent before close");
}

TEST(QueueChannelTest, RecycledPidDoesNotKeepADeadPeerAlive) {
  // Liveness is the slot's kernel-held liveness lock, never the pid: a slot naming a live pid
  // whose lock nobody holds is a dead process whose pid was reused (reclaimed), and a live
  // endpoint whose slot names another pid (another PID namespace) is alive (kept).
  const std::string name = channel_name("q_pidreuse");
  QueueOptions o = small();
  o.max_peers = 2;
  auto consumer = QueueConsumer::open(name, o);
  auto ghost = QueueProducer::open(name, o);
  ASSERT_TRUE(consumer.ok() && ghost.ok());
  RawChannel raw(name);
  ASSERT_TRUE(raw.attach());
  const std::uint32_t index = ghost->stats().index;
  PeerSlot& slot = peer_slots(raw.control())[index];
  // While the slot's endpoint lives, it holds its place.
  EXPECT_EQ(QueueProducer::open(name, o).status().code(), absl::StatusCode::kResourceExhausted);
  // A pid that is not the registering process (pid 1 started long before this test): the
  // endpoint still holds its liveness lock, so it is alive and keeps its place.
  slot.pid.store(1);
  EXPECT_EQ(QueueProducer::open(name, o).status().code(), absl::StatusCode::kResourceExhausted);
  auto st = read_stats(name);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->peers_reclaimed, 0u);
  ghost->close();
  // The slot comes back as a registration of a live pid (this process) with no liveness lock
  // behind it: what a dead peer whose pid was reused looks like. Open's recovery reclaims it.
  const std::uint64_t token = slot.token.load() + 1000;
  slot.role.store(static_cast<std::uint32_t>(PeerRole::kProducer));
  slot.token.store(token);
  slot.pid.store(getpid());
  slot.state.store(static_cast<std::uint32_t>(PeerState::kActive));
  auto newcomer = QueueProducer::open(name, o);
  EXPECT_TRUE(newcomer.ok()) << newcomer.status();
  st = read_stats(name);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->peers_reclaimed, 1u);
  EXPECT_EQ(st->peers.size(), 2u);
}

TEST(QueueChannelTest, GarbageInPeerSlotsNeverCrashesOrHangsRecovery) {
  // A hostile or broken peer can write anything into the registry; recovery and stats must cope.
  const std::string name = channel_name("q_garbage");
  QueueOptions o = small(8, 32);
  o.max_peers = 16;
  auto producer = QueueProducer::open(name, o);
  auto consumer = QueueConsumer::open(name, o);
  ASSERT_TRUE(producer.ok() && consumer.ok());
  RawChannel raw(name);
  ASSERT_TRUE(raw.attach());
  std::uint64_t x = 0x1234567;
  for (int round = 0; round < 20; ++round) {
    auto* bytes = reinterpret_cast<std::uint64_t*>(peer_slots(raw.control()) + 2);  // not ours
    for (std::size_t i = 0; i < 14 * sizeof(PeerSlot) / 8; ++i) {
      x = testing::mix64(x);
      bytes[i] = (round % 2 == 0) ? x : (x & 0x300000003ULL);  // random, then small plausible values
    }
    QueueView adopted;
    consumer->recover(&adopted);
    adopted.release();
    EXPECT_TRUE(read_stats(name).ok());
    EXPECT_EQ(producer->try_send(std::as_bytes(std::span("ok", 2))), ChannelResult::kOk);
    std::vector<std::byte> buf(32);
    std::size_t n = 0;
    EXPECT_NE(consumer->receive(buf, &n, 5ms), ChannelResult::kCorrupt);
  }
}

TEST(QueueChannelTest, PollHandsUpToMaxItems) {
  const std::string name = channel_name("q_poll");
  auto producer = QueueProducer::open(name, small(16, 16));
  auto consumer = QueueConsumer::open(name);
  ASSERT_TRUE(producer.ok() && consumer.ok());
  for (int i = 0; i < 10; ++i) ASSERT_EQ(producer->try_send(bytes_of(std::to_string(i))), ChannelResult::kOk);
  std::vector<std::string> got;
  auto handler = [&](std::span<const std::byte> m) { got.push_back(string_of(m)); };
  EXPECT_EQ(consumer->poll(handler, 4), 4u);
  EXPECT_EQ(consumer->poll(handler, 100), 6u);
  EXPECT_EQ(consumer->poll(handler, 100), 0u);
  ASSERT_EQ(got.size(), 10u);
  EXPECT_EQ(got[9], "9");
}

TEST(QueueChannelTest, OpenerWithOtherLimitsOrKindIsRefused) {
  const std::string name = channel_name("q_mismatch");
  auto producer = QueueProducer::open(name, small(8, 64));
  ASSERT_TRUE(producer.ok());
  auto wrong_size = QueueConsumer::open(name, small(8, 128));
  ASSERT_FALSE(wrong_size.ok());
  EXPECT_EQ(wrong_size.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(wrong_size.status().message().find("max_message"), std::string_view::npos);
  auto wrong_capacity = QueueConsumer::open(name, small(16, 64));
  ASSERT_FALSE(wrong_capacity.ok());
  EXPECT_EQ(wrong_capacity.status().code(), absl::StatusCode::kFailedPrecondition);
  // A channel of another kind: the kind word says "topic".
  RawChannel raw(name);
  ASSERT_TRUE(raw.attach());
  raw.control()->header.kind = static_cast<std::uint32_t>(ChannelKind::kTopic);
  auto wrong_kind = QueueConsumer::open(name);
  ASSERT_FALSE(wrong_kind.ok());
  EXPECT_EQ(wrong_kind.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(wrong_kind.status().message().find("kind"), std::string_view::npos);
  raw.control()->header.kind = static_cast<std::uint32_t>(ChannelKind::kQueue);
}

TEST(QueueChannelTest, CorruptOrForeignControlBlockIsAnErrorNotACrash) {
  const std::string name = channel_name("q_corrupt");
  auto producer = QueueProducer::open(name, small());
  ASSERT_TRUE(producer.ok());
  RawChannel raw(name);
  ASSERT_TRUE(raw.attach());
  ChannelHeader& h = raw.control()->header;
  alignas(ChannelHeader) unsigned char saved_copy[sizeof(ChannelHeader)];
  std::memcpy(saved_copy, static_cast<const void*>(&h), sizeof(h));
  auto restore = [&] { std::memcpy(static_cast<void*>(&h), saved_copy, sizeof(h)); };
  h.version = 99;
  auto r = QueueConsumer::open(name);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition) << r.status();
  restore();
  h.magic = 0;
  EXPECT_EQ(QueueConsumer::open(name).status().code(), absl::StatusCode::kDataLoss);
  restore();
  h.ring_bytes = ~std::uint64_t{0} - 4096;
  EXPECT_EQ(QueueConsumer::open(name).status().code(), absl::StatusCode::kDataLoss);
  restore();
  h.max_peers = 100000;
  EXPECT_EQ(QueueConsumer::open(name).status().code(), absl::StatusCode::kDataLoss);
  restore();
  h.name_length = 5000;
  EXPECT_EQ(QueueConsumer::open(name).status().code(), absl::StatusCode::kDataLoss);
  restore();
  // The ring header inside is validated too.
  std::byte* ring = reinterpret_cast<std::byte*>(raw.control()) + h.ring_offset;
  std::uint64_t saved_magic = 0;
  std::memcpy(&saved_magic, ring, 8);
  std::memset(ring, 0x5A, 8);
  EXPECT_FALSE(QueueConsumer::open(name).ok());
  std::memcpy(ring, &saved_magic, 8);
  EXPECT_TRUE(QueueConsumer::open(name).ok());
}

// A channel whose creator has not finished initialising is waited for (open_timeout, then
// kDeadlineExceeded); one whose creator died while initialising, holding the segment lock, is
// initialised again by the next opener.
TEST(QueueChannelTest, UnfinishedCreatorIsWaitedForAndADeadOneIsReplaced) {
  const std::string name = channel_name("q_creator");
  auto keeper = QueueProducer::open(name, small());
  ASSERT_TRUE(keeper.ok());
  RawChannel raw(name);
  ASSERT_TRUE(raw.attach());
  raw.control()->header.state.store(static_cast<std::uint32_t>(ChannelState::kInitialising));
  QueueOptions o = small();
  o.open_timeout = 50ms;
  const auto start = std::chrono::steady_clock::now();
  auto waited = QueueConsumer::open(name, o);
  EXPECT_EQ(waited.status().code(), absl::StatusCode::kDeadlineExceeded) << waited.status();
  EXPECT_GE(std::chrono::steady_clock::now() - start, 50ms);
  // Now the "creator" holds the lock and dies mid-initialisation.
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  const pid_t creator = testing::fork_child([&] {
    RawChannel own(name);
    if (!own.attach() || !own.memory.lock()) return 2;
    const char c = 1;
    if (write(ready[1], &c, 1) != 1) return 3;
    pause();
    return 0;
  });
  char c = 0;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  kill(creator, SIGKILL);
  EXPECT_TRUE(testing::wait_child(creator, 10s).signaled);
  close(ready[0]);
  close(ready[1]);
  o.open_timeout = 2000ms;
  auto replaced = QueueConsumer::open(name, o);
  ASSERT_TRUE(replaced.ok()) << replaced.status();
  EXPECT_EQ(raw.control()->header.state.load(), static_cast<std::uint32_t>(ChannelState::kReady));
}

TEST(QueueChannelTest, BadNamesAndOptionsAreRejected) {
  EXPECT_EQ(QueueProducer::open("").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(QueueProducer::open("a/b").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(QueueProducer::open(std::string(kMaxChannelName + 1, 'x')).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(QueueProducer::open(channel_name("q_badcap"), small(3, 64)).status().code(),
            absl::StatusCode::kInvalidArgument);
  QueueOptions no_create = small();
  no_create.create = false;
  EXPECT_EQ(QueueConsumer::open(channel_name("q_absent"), no_create).status().code(),
            absl::StatusCode::kNotFound);
}

TEST(QueueChannelTest, PeerSlotsAreLimitedAndReused) {
  const std::string name = channel_name("q_peers");
  QueueOptions o = small();
  o.max_peers = 2;
  auto a = QueueProducer::open(name, o);
  auto b = QueueConsumer::open(name, o);
  ASSERT_TRUE(a.ok() && b.ok());
  auto c = QueueConsumer::open(name, o);
  EXPECT_EQ(c.status().code(), absl::StatusCode::kResourceExhausted);
  b->close();
  EXPECT_TRUE(QueueConsumer::open(name, o).ok());
}

TEST(QueueChannelTest, TimeoutIsNeverEarly) {
  const std::string name = channel_name("q_timeout");
  for (WaitStrategy strategy : {WaitStrategy::kBusySpin, WaitStrategy::kYield, WaitStrategy::kPark,
                                WaitStrategy::kHybrid}) {
    QueueOptions o = small();
    o.wait.strategy = strategy;
    auto consumer = QueueConsumer::open(name, o);
    ASSERT_TRUE(consumer.ok());
    std::vector<std::byte> buf(64);
    std::size_t n = 0;
    const auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(consumer->receive(buf, &n, 30ms), ChannelResult::kTimedOut);
    EXPECT_GE(std::chrono::steady_clock::now() - start, 30ms);
  }
}

TEST(QueueChannelTest, ParkedConsumerIsWokenBySender) {
  const std::string name = channel_name("q_wake");
  QueueOptions o = small();
  o.wait.strategy = WaitStrategy::kPark;
  auto producer = QueueProducer::open(name, o);
  auto consumer = QueueConsumer::open(name, o);
  ASSERT_TRUE(producer.ok() && consumer.ok());
  std::atomic<int> got{0};
  std::thread receiver([&] {
    std::vector<std::byte> buf(64);
    std::size_t n = 0;
    for (int i = 0; i < 100; ++i) {
      if (consumer->receive(buf, &n, 5s) == ChannelResult::kOk) got.fetch_add(1);
    }
  });
  // Parked receivers are visible from outside (shmring stat shows them).
  bool seen_parked = false;
  for (int i = 0; i < 200 && !seen_parked; ++i) {
    auto st = read_stats(name);
    ASSERT_TRUE(st.ok());
    seen_parked = st->receivers_parked == 1 && st->senders_parked == 0;
    if (!seen_parked) std::this_thread::sleep_for(1ms);
  }
  EXPECT_TRUE(seen_parked);
  // With a receiver parked, a send takes the wake path: it bumps the wake word and wakes the futex.
  RawChannel raw(name);
  ASSERT_TRUE(raw.attach());
  const std::uint32_t word_before = raw.control()->data_wake.word.load();
  for (int i = 0; i < 100; ++i) {
    if (i % 10 == 0) std::this_thread::sleep_for(2ms);  // let the receiver park
    ASSERT_EQ(producer->send(bytes_of("x"), 5s), ChannelResult::kOk);
  }
  receiver.join();
  EXPECT_EQ(got.load(), 100);
  EXPECT_NE(raw.control()->data_wake.word.load(), word_before);  // futex_wake was issued
  auto after = read_stats(name);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->receivers_parked, 0u);
}

TEST(QueueChannelTest, SenderWithoutParkedReceiverMakesNoWakeCall) {
  const std::string name = channel_name("q_nowake");
  auto producer = QueueProducer::open(name, small(1024, 16));
  auto consumer = QueueConsumer::open(name);
  ASSERT_TRUE(producer.ok() && consumer.ok());
  RawChannel raw(name);
  ASSERT_TRUE(raw.attach());
  const std::uint32_t before = raw.control()->data_wake.word.load();
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(producer->try_send(bytes_of("y")), ChannelResult::kOk);
  std::vector<std::byte> buf(16);
  std::size_t n = 0;
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(consumer->try_receive(buf, &n), ChannelResult::kOk);
  // The wake word is only bumped (and futex_wake only called) when waiters != 0.
  EXPECT_EQ(raw.control()->data_wake.word.load(), before);
  EXPECT_EQ(raw.control()->space_wake.word.load(), 0u);
  EXPECT_EQ(raw.control()->data_wake.waiters.load(), 0u);
}

TEST(QueueChannelTest, ProducerBlockedOnFullQueueIsWokenByConsumer) {
  const std::string name = channel_name("q_full_wake");
  QueueOptions o = small(2, 16);
  o.wait.strategy = WaitStrategy::kPark;
  auto producer = QueueProducer::open(name, o);
  auto consumer = QueueConsumer::open(name, o);
  ASSERT_TRUE(producer.ok() && consumer.ok());
  std::thread sender([&] {
    for (int i = 0; i < 50; ++i) EXPECT_EQ(producer->send(bytes_of("z"), 5s), ChannelResult::kOk);
  });
  std::vector<std::byte> buf(16);
  std::size_t n = 0;
  int got = 0;
  while (got < 50) {
    std::this_thread::sleep_for(100us);
    if (consumer->receive(buf, &n, 5s) == ChannelResult::kOk) ++got;
  }
  sender.join();
  EXPECT_GT(producer->stats().blocked_ns, 0u);
}

TEST(QueueChannelTest, GroupAtCreationLetsThatGroupUseTheChannel) {
  const std::string name = channel_name("q_group");
  QueueOptions o = small(16, 32);
  o.permissions = 0660;
  o.group = 65534;  // nogroup
  auto producer = QueueProducer::open(name, o);
  ASSERT_TRUE(producer.ok()) << producer.status();
  ASSERT_EQ(producer->try_send(bytes_of("for the group")), ChannelResult::kOk);
  // Another user in that group consumes it (a forked child switched to nobody:nogroup).
  const pid_t child = fork();
  if (child == 0) {
    if (setgid(65534) != 0 || setuid(65534) != 0) _exit(98);
    // Without trusting the creator, a channel another user made is not used.
    if (QueueConsumer::open(name).status().code() != absl::StatusCode::kPermissionDenied) _exit(3);
    QueueOptions trusting;
    trusting.trusted_owners = {0};  // root made it
    trusting.permissions = 0660;    // and group members may use it
    auto consumer = QueueConsumer::open(name, trusting);
    if (!consumer.ok()) _exit(1);
    std::vector<std::byte> buf(32);
    std::size_t n = 0;
    _exit(consumer->receive(buf, &n, 2s) == ChannelResult::kOk && n == 13 ? 0 : 2);
  }
  int status = 0;
  waitpid(child, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

TEST(QueueChannelTest, StatsListAndRemoveFromOutside) {
  const std::string name = channel_name("q_stats");
  QueueOptions o = small(16, 32);
  o.permissions = 0640;
  auto producer = QueueProducer::open(name, o);
  auto consumer = QueueConsumer::open(name, o);
  ASSERT_TRUE(producer.ok() && consumer.ok());
  for (int i = 0; i < 5; ++i) ASSERT_EQ(producer->try_send(bytes_of("s")), ChannelResult::kOk);
  std::vector<std::byte> buf(32);
  std::size_t n = 0;
  ASSERT_EQ(consumer->try_receive(buf, &n), ChannelResult::kOk);

  absl::StatusOr<ChannelStats> st = read_stats(name);
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(st->name, name);
  EXPECT_EQ(st->kind, ChannelKind::kQueue);
  EXPECT_EQ(st->capacity, 16u);
  EXPECT_EQ(st->sent, 5u);
  EXPECT_EQ(st->received, 1u);
  EXPECT_EQ(st->depth, 4u);
  ASSERT_EQ(st->peers.size(), 2u);
  EXPECT_TRUE(st->peers[0].alive);
  EXPECT_EQ(st->peers[0].role, PeerRole::kProducer);
  EXPECT_EQ(st->peers[1].role, PeerRole::kConsumer);

  // Closed endpoints' counters stay in the totals.
  consumer->close();
  st = read_stats(name);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->received, 1u);
  EXPECT_EQ(st->peers.size(), 1u);

  const std::vector<std::string> names = list_channels();
  EXPECT_NE(std::find(names.begin(), names.end(), name), names.end());

  struct stat sb{};
  const std::string path = "/dev/shm/" + SharedMemory::native_key_for(channel_key(name));
  ASSERT_EQ(stat(path.c_str(), &sb), 0);
  EXPECT_EQ(sb.st_mode & 0777, 0640u);

  EXPECT_EQ(read_stats(channel_name("q_nothing")).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(remove_channel(name).ok());
  EXPECT_EQ(read_stats(name).status().code(), absl::StatusCode::kNotFound);
  // The open producer still works on its (now unnamed) segment.
  EXPECT_EQ(producer->try_send(bytes_of("s")), ChannelResult::kOk);
}

TEST(QueueChannelTest, ChannelVanishesWithItsLastEndpoint) {
  const std::string name = channel_name("q_lifetime");
  {
    auto producer = QueueProducer::open(name, small());
    ASSERT_TRUE(producer.ok());
    EXPECT_TRUE(read_stats(name).ok());
  }
  EXPECT_EQ(read_stats(name).status().code(), absl::StatusCode::kNotFound);
}

// Every wait strategy, both directions (consumers wait for items, producers for room).
TEST(QueueChannelStressTest, EveryWaitStrategyDeliversEverythingOnce) {
#if defined(__SANITIZE_THREAD__)
  constexpr std::uint64_t kItems = 2000;
#else
  constexpr std::uint64_t kItems = 20000;
#endif
  for (WaitStrategy strategy : {WaitStrategy::kBusySpin, WaitStrategy::kYield, WaitStrategy::kPark,
                                WaitStrategy::kHybrid}) {
    const std::string name = channel_name("q_strategy");
    QueueOptions o = small(4, 16);  // tiny: producers wait for room as often as consumers for items
    o.wait.strategy = strategy;
    o.wait.spin_iterations = 10;
    auto producer = QueueProducer::open(name, o);
    auto consumer = QueueConsumer::open(name, o);
    ASSERT_TRUE(producer.ok() && consumer.ok());
    std::vector<std::uint8_t> seen(kItems, 0);
    std::thread receiver([&] {
      std::vector<std::byte> buf(16);
      for (std::uint64_t i = 0; i < kItems; ++i) {
        std::size_t n = 0;
        ASSERT_EQ(consumer->receive(buf, &n, 10s), ChannelResult::kOk);
        std::uint64_t id = 0;
        ASSERT_TRUE(testing::check_message(std::span(buf).first(n), &id));
        ASSERT_LT(id, kItems);
        ++seen[id];
      }
    });
    std::vector<std::byte> msg(16);
    for (std::uint64_t i = 0; i < kItems; ++i) {
      testing::fill_message(msg, i);
      ASSERT_EQ(producer->send(msg, 10s), ChannelResult::kOk);
    }
    receiver.join();
    for (std::uint64_t i = 0; i < kItems; ++i) ASSERT_EQ(seen[i], 1) << "strategy " << int(strategy);
  }
}

// Threads in one process (also run under ThreadSanitizer): 3 producers, 3 consumers, every item
// received exactly once, intact; the waits survive a chaos thread waking the futex words and a
// SIGALRM storm interrupting them.
TEST(QueueChannelStressTest, ThreadsExactlyOnceUnderSpuriousWakeupsAndSignals) {
  const std::string name = channel_name("q_stress");
  constexpr int kProducers = 3;
  constexpr int kConsumers = 3;
#if defined(__SANITIZE_THREAD__)
  constexpr std::uint64_t kPerProducer = 5000;
#else
  constexpr std::uint64_t kPerProducer = 40000;
#endif
  QueueOptions o = small(64, 48);
  o.wait.spin_iterations = 50;
  auto keeper = QueueProducer::open(name, o);
  ASSERT_TRUE(keeper.ok());

  struct sigaction sa{};
  sa.sa_handler = [](int) {};
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: futex waits return EINTR
  struct sigaction old{};
  sigaction(SIGALRM, &sa, &old);
  itimerval timer{{0, 200}, {0, 200}};
  setitimer(ITIMER_REAL, &timer, nullptr);

  std::atomic<bool> stop_chaos{false};
  RawChannel raw(name);
  ASSERT_TRUE(raw.attach());
  std::thread chaos([&] {
    while (!stop_chaos.load()) {
      futex_wake(&raw.control()->data_wake.word, INT_MAX);
      futex_wake(&raw.control()->space_wake.word, INT_MAX);
      std::this_thread::sleep_for(20us);
    }
  });

  std::vector<std::atomic<std::uint8_t>> seen(kProducers * kPerProducer);
  std::atomic<std::uint64_t> torn{0};
  std::atomic<std::uint64_t> received{0};
  std::vector<std::thread> threads;
  for (int p = 0; p < kProducers; ++p) {
    threads.emplace_back([&, p] {
      auto producer = QueueProducer::open(name, o);
      ASSERT_TRUE(producer.ok());
      std::vector<std::byte> msg(48);
      for (std::uint64_t i = 0; i < kPerProducer; ++i) {
        const std::uint64_t id = p * kPerProducer + i;
        testing::fill_message(msg, id);
        if (i % 3 == 0) {
          QueueLoan loan = producer->loan(10s);
          ASSERT_TRUE(loan.ok());
          std::memcpy(loan.buffer().data(), msg.data(), msg.size());
          ASSERT_EQ(producer->publish(loan, msg.size()), ChannelResult::kOk);
        } else {
          ASSERT_EQ(producer->send(msg, 10s), ChannelResult::kOk);
        }
      }
    });
  }
  for (int c = 0; c < kConsumers; ++c) {
    threads.emplace_back([&, c] {
      auto consumer = QueueConsumer::open(name, o);
      ASSERT_TRUE(consumer.ok());
      std::vector<std::byte> buf(48);
      while (received.load() < kProducers * kPerProducer) {
        std::uint64_t id = 0;
        if (c == 0) {
          QueueView v = consumer->receive_view(20ms);
          if (!v.ok()) continue;
          if (!testing::check_message(v.data(), &id) || id >= seen.size()) {
            torn.fetch_add(1);
          } else {
            seen[id].fetch_add(1);
          }
          v.release();
        } else {
          std::size_t n = 0;
          if (consumer->receive(buf, &n, 20ms) != ChannelResult::kOk) continue;
          if (n != 48 || !testing::check_message(buf, &id) || id >= seen.size()) {
            torn.fetch_add(1);
          } else {
            seen[id].fetch_add(1);
          }
        }
        received.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  stop_chaos = true;
  chaos.join();
  itimerval off{};
  setitimer(ITIMER_REAL, &off, nullptr);
  sigaction(SIGALRM, &old, nullptr);

  std::uint64_t lost = 0;
  std::uint64_t duplicated = 0;
  for (auto& s : seen) {
    if (s.load() == 0) ++lost;
    if (s.load() > 1) ++duplicated;
  }
  std::printf("stress: %llu items, lost %llu, duplicated %llu, torn %llu\n",
              static_cast<unsigned long long>(received.load()),
              static_cast<unsigned long long>(lost), static_cast<unsigned long long>(duplicated),
              static_cast<unsigned long long>(torn.load()));
  EXPECT_EQ(lost, 0u);
  EXPECT_EQ(duplicated, 0u);
  EXPECT_EQ(torn.load(), 0u);
}

}  // namespace
}  // namespace shmring
