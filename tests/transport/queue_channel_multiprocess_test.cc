// Queue channels across real processes: a pipeline, deterministic crash points of each role, a
// stalled-but-alive producer, and kill -9 loops of each role with a lost/duplicated/torn oracle.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <thread>
#include <type_traits>
#include <vector>

#include "gtest/gtest.h"
#include "shmring/core/shared_memory.h"
#include "shmring/queue/mpmc_queue.h"
#include "shmring/transport/channel.h"
#include "shmring/transport/queue.h"
#include "transport_test_util.h"

namespace shmring {
namespace {

using namespace std::chrono_literals;
using testing::bytes_of;
using testing::channel_name;
using testing::string_of;
using testing::fork_child;
using testing::wait_child;

QueueOptions opts(std::uint64_t capacity, std::uint64_t max_message) {
  QueueOptions o;
  o.capacity = capacity;
  o.max_message = max_message;
  o.max_peers = 64;
  return o;
}

using Raw = testing::RawChannel;

// A child process that opens an `Endpoint` (QueueProducer or QueueConsumer), records kClaiming in
// its peer slot, takes a claim in the ring (a slot to write, or an item to read) and is killed
// before it records the ticket: the window recovery cannot attribute from the peer slots.
template <typename Endpoint>
pid_t killed_between_claim_and_record(const std::string& name, const QueueOptions& options) {
  return fork_child([&name, &options] {
    auto endpoint = Endpoint::open(name, options);
    if (!endpoint.ok()) return 2;
    Raw raw(name);
    if (!raw.attach()) return 3;
    PeerSlot& me = peer_slots(raw.control())[endpoint->stats().index];
    me.op_state.store(static_cast<std::uint32_t>(PeerOp::kClaiming));
    MpmcQueue<> q = raw.queue();
    const bool producer = std::is_same_v<Endpoint, QueueProducer>;
    if ((producer ? q.try_claim().result : q.try_claim_read().result) != RingResult::kOk) return 4;
    kill(getpid(), SIGKILL);
    return 0;
  });
}

// Parent waits for a flag a child sets in shared memory.
bool wait_flag(const std::atomic<std::uint32_t>& flag, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (flag.load() == 0) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

TEST(QueueChannelMultiprocessTest, PipelineTwoProducersThreeConsumersEveryItemOnce) {
  const std::string name = channel_name("qp_pipeline");
  constexpr std::uint64_t kPerProducer = 20000;
  constexpr int kProducers = 2;
  constexpr int kConsumers = 3;
  auto keeper = QueueConsumer::open(name, opts(256, 64));  // holds the channel open
  ASSERT_TRUE(keeper.ok()) << keeper.status();
  struct Shared {
    std::atomic<std::uint64_t> received;
    std::atomic<std::uint64_t> checksum;
    std::atomic<std::uint64_t> torn;
    std::atomic<std::uint8_t> seen[kProducers * kPerProducer];
  };
  testing::SharedRegion region(sizeof(Shared));
  Shared* sh = region.as<Shared>();
  std::vector<pid_t> pids;
  for (int c = 0; c < kConsumers; ++c) {
    pids.push_back(fork_child([&] {
      auto consumer = QueueConsumer::open(name, opts(256, 64));
      if (!consumer.ok()) return 2;
      std::vector<std::byte> buf(64);
      while (sh->received.load() < kProducers * kPerProducer) {
        std::size_t n = 0;
        if (consumer->receive(buf, &n, 20ms) != ChannelResult::kOk) continue;
        std::uint64_t id = 0;
        if (n != 64 || !testing::check_message(buf, &id) || id >= kProducers * kPerProducer) {
          sh->torn.fetch_add(1);
        } else {
          sh->seen[id].fetch_add(1);
          sh->checksum.fetch_add(testing::mix64(id));
        }
        sh->received.fetch_add(1);
      }
      return 0;
    }));
  }
  for (int p = 0; p < kProducers; ++p) {
    pids.push_back(fork_child([&, p] {
      auto producer = QueueProducer::open(name, opts(256, 64));
      if (!producer.ok()) return 2;
      std::vector<std::byte> msg(64);
      for (std::uint64_t i = 0; i < kPerProducer; ++i) {
        testing::fill_message(msg, p * kPerProducer + i);
        if (producer->send(msg, 10s) != ChannelResult::kOk) return 3;
      }
      return 0;
    }));
  }
  for (pid_t pid : pids) EXPECT_TRUE(wait_child(pid, 60s).ok());
  std::uint64_t expected = 0;
  std::uint64_t missing = 0;
  std::uint64_t duplicated = 0;
  for (std::uint64_t id = 0; id < kProducers * kPerProducer; ++id) {
    expected += testing::mix64(id);
    if (sh->seen[id].load() == 0) ++missing;
    if (sh->seen[id].load() > 1) ++duplicated;
  }
  EXPECT_EQ(sh->checksum.load(), expected);
  EXPECT_EQ(missing, 0u);
  EXPECT_EQ(duplicated, 0u);
  EXPECT_EQ(sh->torn.load(), 0u);
  auto st = read_stats(name);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->sent, kProducers * kPerProducer);
  EXPECT_EQ(st->received, kProducers * kPerProducer);
}

struct Flags {
  std::atomic<std::uint32_t> ready;
  std::atomic<std::uint64_t> value;
};

TEST(QueueChannelMultiprocessTest, ProducerKilledHoldingALoanIsSkippedAndCounted) {
  const std::string name = channel_name("qp_kill_loan");
  auto consumer = QueueConsumer::open(name, opts(8, 32));
  ASSERT_TRUE(consumer.ok());
  testing::SharedRegion region(sizeof(Flags));
  Flags* f = region.as<Flags>();
  const pid_t child = fork_child([&] {
    auto producer = QueueProducer::open(name, opts(8, 32));
    if (!producer.ok()) return 2;
    producer->try_send(bytes_of("before"));
    QueueLoan loan = producer->try_loan();  // claimed, never committed
    std::memcpy(loan.buffer().data(), "never", 5);
    kill(getpid(), SIGKILL);
    return 0;
  });
  EXPECT_TRUE(wait_child(child, 10s).signaled);
  auto producer = QueueProducer::open(name, opts(8, 32));
  ASSERT_TRUE(producer.ok());
  ASSERT_EQ(producer->try_send(bytes_of("after")), ChannelResult::kOk);
  std::vector<std::byte> buf(32);
  std::size_t n = 0;
  ASSERT_EQ(consumer->receive(buf, &n, 2s), ChannelResult::kOk);
  EXPECT_EQ(string_of(std::span(buf).first(n)), "before");
  ASSERT_EQ(consumer->receive(buf, &n, 2s), ChannelResult::kOk);  // passes the dead claim
  EXPECT_EQ(string_of(std::span(buf).first(n)), "after");
  auto st = read_stats(name);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->claims_skipped, 1u);
  EXPECT_GE(st->peers_reclaimed, 1u);
  EXPECT_EQ(st->sent, 2u);  // the dead producer's counter was kept
  (void)f;
}

TEST(QueueChannelMultiprocessTest, ProducerKilledAfterClaimBeforeRecordingTicketIsSkipped) {
  // The producer dies between the ring's claim and writing the ticket into its peer slot
  // (op_state kClaiming): recovery cannot know its ticket and must find the stall itself.
  const std::string name = channel_name("qp_kill_unknown");
  auto consumer = QueueConsumer::open(name, opts(8, 32));
  ASSERT_TRUE(consumer.ok());
  const pid_t child = killed_between_claim_and_record<QueueProducer>(name, opts(8, 32));
  EXPECT_TRUE(wait_child(child, 10s).signaled);
  auto producer = QueueProducer::open(name, opts(8, 32));
  ASSERT_TRUE(producer.ok());
  ASSERT_EQ(producer->try_send(bytes_of("after")), ChannelResult::kOk);
  std::vector<std::byte> buf(32);
  std::size_t n = 0;
  ASSERT_EQ(consumer->receive(buf, &n, 2s), ChannelResult::kOk);
  EXPECT_EQ(string_of(std::span(buf).first(n)), "after");
  auto st = read_stats(name);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->claims_skipped, 1u);
  // Once consumers passed the dead producer's barrier its peer slot is free again.
  EXPECT_EQ(consumer->receive(buf, &n, 50ms), ChannelResult::kTimedOut);
  st = read_stats(name);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->peers.size(), 2u);
}

TEST(QueueChannelMultiprocessTest, StalledButAliveProducerIsNeverSkipped) {
  const std::string name = channel_name("qp_sigstop");
  auto consumer = QueueConsumer::open(name, opts(8, 32));
  ASSERT_TRUE(consumer.ok());
  testing::SharedRegion region(sizeof(Flags));
  Flags* f = region.as<Flags>();
  const pid_t child = fork_child([&] {
    auto producer = QueueProducer::open(name, opts(8, 32));
    if (!producer.ok()) return 2;
    QueueLoan loan = producer->try_loan();
    if (!loan.ok()) return 3;
    f->ready.store(1);
    raise(SIGSTOP);  // stalled while holding the claim
    std::memcpy(loan.buffer().data(), "late", 4);
    return producer->publish(loan, 4) == ChannelResult::kOk ? 0 : 4;
  });
  ASSERT_TRUE(wait_flag(f->ready, 5s));
  std::vector<std::byte> buf(32);
  std::size_t n = 0;
  // Far longer than any recovery interval: the claim's owner is alive, so nothing is skipped.
  EXPECT_EQ(consumer->receive(buf, &n, 300ms), ChannelResult::kTimedOut);
  kill(child, SIGCONT);
  ASSERT_EQ(consumer->receive(buf, &n, 5s), ChannelResult::kOk);
  EXPECT_EQ(string_of(std::span(buf).first(n)), "late");
  EXPECT_TRUE(wait_child(child, 10s).ok());
  auto st = read_stats(name);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->claims_skipped, 0u);
}

TEST(QueueChannelMultiprocessTest, ConsumerKilledHoldingAViewIsRedeliveredOnce) {
  const std::string name = channel_name("qp_kill_view");
  auto producer = QueueProducer::open(name, opts(8, 32));
  ASSERT_TRUE(producer.ok());
  ASSERT_EQ(producer->try_send(bytes_of("precious")), ChannelResult::kOk);
  ASSERT_EQ(producer->try_send(bytes_of("next")), ChannelResult::kOk);
  testing::SharedRegion region(sizeof(Flags));
  Flags* f = region.as<Flags>();
  const pid_t child = fork_child([&] {
    auto consumer = QueueConsumer::open(name, opts(8, 32));
    if (!consumer.ok()) return 2;
    QueueView view = consumer->try_receive_view();
    if (!view.ok()) return 3;
    f->value.store(view.sequence());
    kill(getpid(), SIGKILL);
    return 0;
  });
  EXPECT_TRUE(wait_child(child, 10s).signaled);
  auto consumer = QueueConsumer::open(name, opts(8, 32));
  ASSERT_TRUE(consumer.ok());
  // The dead consumer's item is adopted by the next consumer that looks (it may come first).
  int precious = 0;
  int next = 0;
  for (int i = 0; i < 2; ++i) {
    QueueView view = consumer->receive_view(2s);
    ASSERT_TRUE(view.ok());
    if (string_of(view.data()) == "precious") {
      ++precious;
      EXPECT_TRUE(view.redelivered());
      EXPECT_EQ(view.sequence(), f->value.load());
    } else {
      EXPECT_EQ(string_of(view.data()), "next");
      EXPECT_FALSE(view.redelivered());
      ++next;
    }
    view.release();
  }
  EXPECT_EQ(precious, 1);
  EXPECT_EQ(next, 1);
  EXPECT_FALSE(consumer->receive_view(100ms).ok());
  auto st = read_stats(name);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->items_redelivered, 1u);
  // The freed slot is usable again: the queue takes a full lap.
  for (int i = 0; i < 8; ++i) EXPECT_EQ(producer->try_send(bytes_of("lap")), ChannelResult::kOk);
}

// A consumer already waiting when another one dies holding an item, with no other traffic and no
// recovery hint: it must adopt the item whether it waits in short timeouts (the 20 ms without
// progress count across calls) or polls with try_ calls and zero timeouts (evidence: a claim
// record that does not change).
TEST(QueueChannelMultiprocessTest, WaitersInShortCallsAdoptADeadConsumersItem) {
  for (const int mode : {0, 1, 2}) {
    SCOPED_TRACE(mode == 0 ? "receive_view(10ms)" : mode == 1 ? "try_receive_view()" : "receive_view(0)");
    const std::string name = channel_name("qp_short_waits");
    auto producer = QueueProducer::open(name, opts(8, 32));
    auto consumer = QueueConsumer::open(name, opts(8, 32));
    ASSERT_TRUE(producer.ok() && consumer.ok());
    ASSERT_EQ(producer->try_send(bytes_of("precious")), ChannelResult::kOk);
    testing::SharedRegion region(sizeof(Flags));
    Flags* f = region.as<Flags>();
    const pid_t child = fork_child([&] {
      auto dying = QueueConsumer::open(name, opts(8, 32));
      if (!dying.ok()) return 2;
      QueueView view = dying->try_receive_view();
      if (!view.ok()) return 3;
      f->value.store(view.sequence() + 1);
      pause();
      return 0;
    });
    while (f->value.load() == 0) std::this_thread::sleep_for(1ms);
    kill(child, SIGKILL);
    EXPECT_TRUE(wait_child(child, 10s).signaled);
    bool adopted = false;
    for (int i = 0; i < 2000 && !adopted; ++i) {  // bounded: about 5 s at worst
      QueueView view = mode == 0 ? consumer->receive_view(10ms)
                       : mode == 1 ? consumer->try_receive_view()
                                   : consumer->receive_view(0ms);
      if (!view.ok()) {
        if (mode != 0) std::this_thread::sleep_for(2ms);
        continue;
      }
      EXPECT_EQ(string_of(view.data()), "precious");
      EXPECT_TRUE(view.redelivered());
      EXPECT_EQ(view.sequence() + 1, f->value.load());
      adopted = true;
    }
    EXPECT_TRUE(adopted) << "the dead consumer's item was never adopted";
  }
}

TEST(QueueChannelMultiprocessTest, ItemAdoptedJustAsTheTimeoutExpiresIsDeliveredNotDropped) {
  // The waiting loop's slow-path hook adopts a dead consumer's item at the same moment the deadline
  // passes: the call must return the item, not report a timeout (and consume it unseen).
  const std::string name = channel_name("qp_adopt_deadline");
  auto producer = QueueProducer::open(name, opts(8, 32));
  auto consumer = QueueConsumer::open(name, opts(8, 32));  // opened before the death: no hint yet
  ASSERT_TRUE(producer.ok() && consumer.ok());
  ASSERT_EQ(producer->try_send(bytes_of("last one")), ChannelResult::kOk);
  const pid_t child = fork_child([&] {
    auto c = QueueConsumer::open(name, opts(8, 32));
    if (!c.ok()) return 2;
    QueueView v = c->try_receive_view();
    if (!v.ok()) return 3;
    kill(getpid(), SIGKILL);
    return 0;
  });
  EXPECT_TRUE(wait_child(child, 10s).signaled);
  QueueView v = consumer->receive_view(std::chrono::nanoseconds(1));
  if (!v.ok()) v = consumer->receive_view(1s);  // (if the adoption came on a later lap)
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(string_of(v.data()), "last one");
  EXPECT_TRUE(v.redelivered());
}

TEST(QueueChannelMultiprocessTest, ConsumerKilledAfterClaimBeforeRecordingTicketIsRedelivered) {
  const std::string name = channel_name("qp_kill_cunknown");
  auto producer = QueueProducer::open(name, opts(8, 32));
  ASSERT_TRUE(producer.ok());
  ASSERT_EQ(producer->try_send(bytes_of("orphan")), ChannelResult::kOk);
  const pid_t child = killed_between_claim_and_record<QueueConsumer>(name, opts(8, 32));
  EXPECT_TRUE(wait_child(child, 10s).signaled);
  auto consumer = QueueConsumer::open(name, opts(8, 32));
  ASSERT_TRUE(consumer.ok());
  QueueView view = consumer->receive_view(2s);
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(string_of(view.data()), "orphan");
  EXPECT_TRUE(view.redelivered());
  view.release();
  auto st = read_stats(name);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->items_redelivered, 1u);
}

// --- kill -9 loops ---------------------------------------------------------------------------------

constexpr std::uint64_t kIncarnations = 512;
constexpr std::uint64_t kPerIncarnation = 1 << 16;
constexpr std::size_t kMessage = 64;

struct Oracle {
  std::atomic<std::uint32_t> stop_producers;
  std::atomic<std::uint32_t> stop_consumers;
  std::atomic<std::uint64_t> torn;
  std::atomic<std::uint64_t> duplicated;
  std::atomic<std::uint64_t> redelivered_same;
  std::atomic<std::uint64_t> delivered;
  std::atomic<std::uint64_t> committed_bits[kIncarnations * kPerIncarnation / 64];
  std::atomic<std::uint64_t> delivered_ticket[kIncarnations * kPerIncarnation];  // ticket + 1
};

void spin_for(std::chrono::microseconds d) {
  const auto end = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < end) {
  }
}

void record_delivery(Oracle* o, std::span<const std::byte> data, std::uint64_t ticket) {
  std::uint64_t id = 0;
  if (data.size() != kMessage || !testing::check_message(data, &id) ||
      id >= kIncarnations * kPerIncarnation) {
    o->torn.fetch_add(1);
    return;
  }
  std::uint64_t expected = 0;
  if (!o->delivered_ticket[id].compare_exchange_strong(expected, ticket + 1)) {
    if (expected == ticket + 1) {
      o->redelivered_same.fetch_add(1);  // the same delivery again (a dead consumer's item)
    } else {
      o->duplicated.fetch_add(1);
    }
    return;
  }
  o->delivered.fetch_add(1);
}

int producer_main(const std::string& name, Oracle* o, std::uint64_t incarnation) {
  auto producer = QueueProducer::open(name, opts(64, kMessage));
  if (!producer.ok()) return 2;
  std::vector<std::byte> msg(kMessage);
  for (std::uint64_t seq = 0; seq < kPerIncarnation && o->stop_producers.load() == 0;) {
    const std::uint64_t id = incarnation * kPerIncarnation + seq;
    testing::fill_message(msg, id);
    ChannelResult r;
    if (seq % 2 == 0) {
      r = producer->send(msg, 100ms);
    } else {
      QueueLoan loan = producer->loan(100ms);
      r = loan.result();
      if (r == ChannelResult::kOk) {
        std::memcpy(loan.buffer().data(), msg.data(), msg.size());
        if (seq % 8 == 1) spin_for(50us);  // widen the claim..commit window for the killer
        r = producer->publish(loan, msg.size());
      }
    }
    if (r == ChannelResult::kOk) {
      o->committed_bits[id / 64].fetch_or(std::uint64_t{1} << (id % 64));
      ++seq;
      if (seq % 64 == 0) std::this_thread::sleep_for(100us);
    } else if (r != ChannelResult::kTimedOut) {
      return 5;
    }
  }
  return 0;
}

int consumer_main(const std::string& name, Oracle* o) {
  auto consumer = QueueConsumer::open(name, opts(64, kMessage));
  if (!consumer.ok()) return 2;
  while (o->stop_consumers.load() == 0) {
    QueueView view = consumer->receive_view(20ms);
    if (!view.ok()) continue;
    record_delivery(o, view.data(), view.sequence());
    if (view.sequence() % 8 == 1) spin_for(50us);  // widen the claim..release window
    if (view.release() != ChannelResult::kOk) o->torn.fetch_add(1);
  }
  return 0;
}

enum class Victim { kProducers, kConsumers };

void kill_loop(Victim victim, int target_kills) {
  const std::string name = channel_name(victim == Victim::kProducers ? "qk_prod" : "qk_cons");
  auto keeper = QueueProducer::open(name, opts(64, kMessage));  // keeps the channel alive
  ASSERT_TRUE(keeper.ok()) << keeper.status();
  testing::SharedRegion region(sizeof(Oracle));
  Oracle* o = region.as<Oracle>();
  ASSERT_NE(o, nullptr);
  std::uint64_t next_incarnation = 0;
  std::vector<pid_t> producers;
  std::vector<pid_t> consumers;
  auto spawn_producer = [&] {
    if (next_incarnation >= kIncarnations) return;
    const std::uint64_t inc = next_incarnation++;
    producers.push_back(fork_child([&, inc] { return producer_main(name, o, inc); }));
  };
  auto spawn_consumer = [&] { consumers.push_back(fork_child([&] { return consumer_main(name, o); })); };
  for (int i = 0; i < 3; ++i) spawn_producer();
  for (int i = 0; i < 3; ++i) spawn_consumer();

  std::mt19937_64 rng(12345);
  int kills = 0;
  int bad_exits = 0;
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (kills < target_kills && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::microseconds(5000 + rng() % 40000));
    std::vector<pid_t>& pool = victim == Victim::kProducers ? producers : consumers;
    const std::size_t k = rng() % pool.size();
    kill(pool[k], SIGKILL);
    const testing::ChildResult r = wait_child(pool[k], 10s);
    if (!r.signaled) ++bad_exits;
    pool.erase(pool.begin() + static_cast<long>(k));
    ++kills;
    if (victim == Victim::kProducers) spawn_producer(); else spawn_consumer();
    // Producers that finished their range exit; replace them.
    for (std::size_t i = 0; i < producers.size();) {
      int status = 0;
      if (waitpid(producers[i], &status, WNOHANG) == producers[i]) {
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) ++bad_exits;
        producers.erase(producers.begin() + static_cast<long>(i));
        spawn_producer();
      } else {
        ++i;
      }
    }
  }
  o->stop_producers.store(1);
  for (pid_t p : producers) {
    if (!wait_child(p, 10s).ok()) ++bad_exits;
  }
  // Let the consumers drain and adopt what killed consumers held.
  const auto drain_deadline = std::chrono::steady_clock::now() + 5s;
  int quiet = 0;
  while (std::chrono::steady_clock::now() < drain_deadline && quiet < 10) {
    auto st = read_stats(name);
    quiet = (st.ok() && st->depth == 0) ? quiet + 1 : 0;
    std::this_thread::sleep_for(30ms);
  }
  o->stop_consumers.store(1);
  for (pid_t c : consumers) {
    if (!wait_child(c, 10s).ok()) ++bad_exits;
  }
  // Last sweep: anything a consumer killed at the very end held.
  {
    auto last = QueueConsumer::open(name, opts(64, kMessage));
    ASSERT_TRUE(last.ok());
    // Recovery acts on an unrecorded claim only after seeing it for a grace period: keep looking
    // until nothing has turned up for 100 ms.
    auto quiet_since = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() - quiet_since < 100ms) {
      QueueView view;
      if (!last->recover(&view)) view = last->try_receive_view();
      if (!view.ok()) {
        std::this_thread::sleep_for(1ms);
        continue;
      }
      record_delivery(o, view.data(), view.sequence());
      view.release();
      quiet_since = std::chrono::steady_clock::now();
    }
  }
  std::uint64_t committed = 0;
  std::uint64_t lost = 0;
  std::uint64_t delivered_uncommitted = 0;
  for (std::uint64_t id = 0; id < next_incarnation * kPerIncarnation; ++id) {
    const bool c = (o->committed_bits[id / 64].load() >> (id % 64)) & 1;
    const bool d = o->delivered_ticket[id].load() != 0;
    committed += c;
    if (c && !d) ++lost;
    if (!c && d) ++delivered_uncommitted;
  }
  auto st = read_stats(name);
  ASSERT_TRUE(st.ok());
  std::printf(
      "kill -9 %s: kills %d, incarnations %llu, committed %llu, delivered %llu, lost %llu, "
      "duplicated %llu, torn %llu, redelivered (same ticket seen twice) %llu, delivered but killed "
      "before recording its commit %llu, claims skipped %llu, items redelivered %llu, peers "
      "reclaimed %llu\n",
      victim == Victim::kProducers ? "producers" : "consumers", kills,
      static_cast<unsigned long long>(next_incarnation), static_cast<unsigned long long>(committed),
      static_cast<unsigned long long>(o->delivered.load()), static_cast<unsigned long long>(lost),
      static_cast<unsigned long long>(o->duplicated.load()),
      static_cast<unsigned long long>(o->torn.load()),
      static_cast<unsigned long long>(o->redelivered_same.load()),
      static_cast<unsigned long long>(delivered_uncommitted),
      static_cast<unsigned long long>(st->claims_skipped),
      static_cast<unsigned long long>(st->items_redelivered),
      static_cast<unsigned long long>(st->peers_reclaimed));
  EXPECT_GE(kills, target_kills);
  EXPECT_EQ(bad_exits, 0);
  EXPECT_EQ(lost, 0u);
  EXPECT_EQ(o->duplicated.load(), 0u);
  EXPECT_EQ(o->torn.load(), 0u);
  EXPECT_GT(committed, 0u);
  if (victim == Victim::kProducers) {
    EXPECT_LE(st->claims_skipped, static_cast<std::uint64_t>(kills));
    EXPECT_EQ(st->items_redelivered, 0u);
  } else {
    EXPECT_EQ(st->claims_skipped, 0u);
    EXPECT_LE(st->items_redelivered, static_cast<std::uint64_t>(kills));
  }
}

TEST(QueueChannelKillTest, HundredProducerKillsLoseOnlyUncommittedClaims) {
  kill_loop(Victim::kProducers, 100);
}

TEST(QueueChannelKillTest, HundredConsumerKillsLoseNothing) { kill_loop(Victim::kConsumers, 100); }

}  // namespace
}  // namespace shmring
