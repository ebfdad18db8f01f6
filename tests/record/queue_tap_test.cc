// QueueTap (transport/include/shmring/transport/queue.h): reads a queue's items without consuming
// them. What it must do: see every item consumers get while it keeps up (within a lap), count
// exactly what it missed when lapped, pass given-up claims uncounted, never change what consumers
// receive, and leave nothing behind when killed.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "shmring/transport/queue.h"
#include "shmring/transport/topic.h"
#include "transport_test_util.h"

namespace shmring {
namespace {

using namespace std::chrono_literals;
using testing::bytes_of;

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
constexpr std::uint64_t kScale = 4;  // the sanitizers slow every access down
#else
constexpr std::uint64_t kScale = 1;
#endif
using testing::channel_name;
using testing::string_of;

QueueOptions small(std::uint64_t capacity, std::uint64_t max_message = 64) {
  QueueOptions o;
  o.capacity = capacity;
  o.max_message = max_message;
  return o;
}

// An item that proves itself: producer id, counter, and a checksum of both in every word after.
struct Item {
  std::uint32_t producer;
  std::uint32_t pad;
  std::uint64_t counter;
  std::uint64_t check[4];
};
std::uint64_t mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}
Item make_item(std::uint32_t producer, std::uint64_t counter) {
  Item it{};
  it.producer = producer;
  it.counter = counter;
  for (int i = 0; i < 4; ++i) it.check[i] = mix((static_cast<std::uint64_t>(producer) << 40) ^ counter ^ (i * 7919ULL));
  return it;
}
bool item_valid(std::span<const std::byte> bytes) {
  if (bytes.size() != sizeof(Item)) return false;
  Item it;
  std::memcpy(&it, bytes.data(), sizeof it);
  const Item want = make_item(it.producer, it.counter);
  return std::memcmp(&it, &want, sizeof it) == 0;
}
std::uint64_t key_of(std::span<const std::byte> bytes) {
  Item it;
  std::memcpy(&it, bytes.data(), sizeof it);
  return (static_cast<std::uint64_t>(it.producer) << 40) | it.counter;
}
std::span<const std::byte> as_span(const Item& it) { return std::as_bytes(std::span(&it, 1)); }

TEST(QueueTapTest, SeesItemsBeforeAndAfterConsumersTakeThem) {
  const std::string name = channel_name("tap_keepup");
  auto producer = QueueProducer::open(name, small(16));
  auto consumer = QueueConsumer::open(name);
  ASSERT_TRUE(producer.ok() && consumer.ok());
  auto tap = QueueTap::open(name);
  ASSERT_TRUE(tap.ok()) << tap.status();
  EXPECT_EQ(tap->capacity(), 16u);
  EXPECT_EQ(tap->max_message(), 64u);
  std::vector<std::byte> buf(64);
  std::size_t n = 0;
  std::uint64_t ticket = 0;
  EXPECT_EQ(tap->try_read(buf, &n, &ticket), ChannelResult::kWouldBlock);

  // Items 0..5 sent; the tap reads 0..2 while they wait, the consumer takes all six, the tap reads
  // 3..5 after they were consumed (still in the ring), with the tickets the consumer saw.
  for (int i = 0; i < 6; ++i) ASSERT_EQ(producer->try_send(bytes_of("m" + std::to_string(i))), ChannelResult::kOk);
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(tap->try_read(buf, &n, &ticket), ChannelResult::kOk);
    EXPECT_EQ(string_of(std::span(buf).first(n)), "m" + std::to_string(i));
    EXPECT_EQ(ticket, static_cast<std::uint64_t>(i));
  }
  std::vector<std::uint64_t> consumer_tickets;
  for (int i = 0; i < 6; ++i) {
    QueueView v = consumer->try_receive_view();
    ASSERT_TRUE(v.ok());
    EXPECT_EQ(string_of(v.data()), "m" + std::to_string(i));  // the tap took nothing
    consumer_tickets.push_back(v.sequence());
  }
  EXPECT_EQ(consumer->try_receive_view().result(), ChannelResult::kWouldBlock);
  for (int i = 3; i < 6; ++i) {
    ASSERT_EQ(tap->try_read(buf, &n, &ticket), ChannelResult::kOk);
    EXPECT_EQ(string_of(std::span(buf).first(n)), "m" + std::to_string(i));
    EXPECT_EQ(ticket, consumer_tickets[static_cast<std::size_t>(i)]);
  }
  EXPECT_EQ(tap->try_read(buf, &n, &ticket), ChannelResult::kWouldBlock);
  EXPECT_EQ(tap->read_count(), 6u);
  EXPECT_EQ(tap->missed(), 0u);
  EXPECT_EQ(tap->next_ticket(), 6u);
  // Not a peer: the channel's registry and counters do not know it.
  auto stats = read_stats(name);
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->peers.size(), 2u);
  EXPECT_EQ(stats->received, 6u);
  EXPECT_TRUE(tap->stats().role == PeerRole::kNone);
}

TEST(QueueTapTest, ZeroLengthAndFullSlotItems) {
  const std::string name = channel_name("tap_sizes");
  auto producer = QueueProducer::open(name, small(4, 40));
  ASSERT_TRUE(producer.ok());
  auto tap = QueueTap::open(name);
  ASSERT_TRUE(tap.ok());
  std::vector<std::byte> full(40);
  for (std::size_t i = 0; i < full.size(); ++i) full[i] = std::byte(i * 3 + 1);
  ASSERT_EQ(producer->try_send({}), ChannelResult::kOk);
  ASSERT_EQ(producer->try_send(full), ChannelResult::kOk);
  std::vector<std::byte> short_buf(39), buf(40);
  std::size_t n = 99;
  EXPECT_EQ(tap->try_read(short_buf, &n), ChannelResult::kTooLarge);
  ASSERT_EQ(tap->try_read(buf, &n), ChannelResult::kOk);
  EXPECT_EQ(n, 0u);
  ASSERT_EQ(tap->try_read(buf, &n), ChannelResult::kOk);
  EXPECT_EQ(n, 40u);
  EXPECT_EQ(buf, full);
}

TEST(QueueTapTest, StartsAtWaitingItemsOrAtTheNextClaim) {
  const std::string name = channel_name("tap_start");
  auto producer = QueueProducer::open(name, small(8));
  auto consumer = QueueConsumer::open(name);
  ASSERT_TRUE(producer.ok() && consumer.ok());
  for (int i = 0; i < 4; ++i) ASSERT_EQ(producer->try_send(bytes_of("a" + std::to_string(i))), ChannelResult::kOk);
  std::vector<std::byte> buf(64);
  std::size_t n = 0;
  ASSERT_EQ(consumer->try_receive(buf, &n), ChannelResult::kOk);  // a0 taken
  auto waiting = QueueTap::open(name);
  QueueTapOptions next_options;
  next_options.start = QueueTapStart::kNext;
  auto next = QueueTap::open(name, next_options);
  ASSERT_TRUE(waiting.ok() && next.ok());
  ASSERT_EQ(producer->try_send(bytes_of("b")), ChannelResult::kOk);
  std::vector<std::string> seen;
  while (waiting->try_read(buf, &n) == ChannelResult::kOk) seen.push_back(string_of(std::span(buf).first(n)));
  EXPECT_EQ(seen, (std::vector<std::string>{"a1", "a2", "a3", "b"}));
  seen.clear();
  while (next->try_read(buf, &n) == ChannelResult::kOk) seen.push_back(string_of(std::span(buf).first(n)));
  EXPECT_EQ(seen, (std::vector<std::string>{"b"}));
}

TEST(QueueTapTest, LappedTapCountsExactlyWhatItMissed) {
  const std::string name = channel_name("tap_lapped");
  auto producer = QueueProducer::open(name, small(8));
  auto consumer = QueueConsumer::open(name);
  ASSERT_TRUE(producer.ok() && consumer.ok());
  auto tap = QueueTap::open(name);
  ASSERT_TRUE(tap.ok());
  std::vector<std::byte> buf(64);
  std::size_t n = 0;
  std::uint64_t ticket = 0;
  // 40 items through an 8-slot queue while the tap looks at nothing.
  for (int i = 0; i < 40; ++i) {
    ASSERT_EQ(producer->try_send(bytes_of("m" + std::to_string(i))), ChannelResult::kOk);
    ASSERT_EQ(consumer->try_receive(buf, &n), ChannelResult::kOk);
  }
  std::vector<std::uint64_t> tickets;
  while (tap->try_read(buf, &n, &ticket) == ChannelResult::kOk) {
    EXPECT_EQ(string_of(std::span(buf).first(n)), "m" + std::to_string(ticket));
    tickets.push_back(ticket);
  }
  ASSERT_FALSE(tickets.empty());
  // What it read is the newest items, in order, up to the last; with what it missed, every ticket.
  for (std::size_t i = 1; i < tickets.size(); ++i) EXPECT_EQ(tickets[i], tickets[i - 1] + 1);
  EXPECT_EQ(tickets.back(), 39u);
  EXPECT_EQ(tap->missed() + tap->read_count(), 40u);
  EXPECT_EQ(tap->missed(), tickets.front());
  // A ring rewritten while the tap copies an item: the copy is thrown away and counted missed.
  // (Single-threaded here: the items after the jump are the last lap, all readable.)
  EXPECT_EQ(tap->next_ticket(), 40u);
}

TEST(QueueTapTest, GivenUpClaimsArePassedUncountedBeforeAndAfterConsumersPassThem) {
  const std::string name = channel_name("tap_given_up");
  auto producer = QueueProducer::open(name, small(8));
  auto consumer = QueueConsumer::open(name);
  ASSERT_TRUE(producer.ok() && consumer.ok());
  auto tap = QueueTap::open(name);
  ASSERT_TRUE(tap.ok());
  std::vector<std::byte> buf(64);
  std::size_t n = 0;
  auto send = [&](const std::string& s) { ASSERT_EQ(producer->try_send(bytes_of(s)), ChannelResult::kOk); };
  auto abandon = [&](const std::string& junk) {
    QueueLoan loan = producer->try_loan();
    ASSERT_TRUE(loan.ok());
    std::memcpy(loan.buffer().data(), junk.data(), junk.size());
    producer->abandon(loan);
  };
  send("a");
  abandon("junk1");
  send("b");
  // The tap looks first (the given-up slot is still skipped), then the consumer.
  std::vector<std::string> seen;
  while (tap->try_read(buf, &n) == ChannelResult::kOk) seen.push_back(string_of(std::span(buf).first(n)));
  EXPECT_EQ(seen, (std::vector<std::string>{"a", "b"}));
  while (consumer->try_receive(buf, &n) == ChannelResult::kOk) {
  }
  // Now the consumer passes a given-up slot before the tap looks at it.
  send("c");
  abandon("junk2");
  send("d");
  std::vector<std::string> got;
  while (consumer->try_receive(buf, &n) == ChannelResult::kOk) got.push_back(string_of(std::span(buf).first(n)));
  EXPECT_EQ(got, (std::vector<std::string>{"c", "d"}));
  while (tap->try_read(buf, &n) == ChannelResult::kOk) seen.push_back(string_of(std::span(buf).first(n)));
  EXPECT_EQ(seen, (std::vector<std::string>{"a", "b", "c", "d"}));
  EXPECT_EQ(tap->missed(), 0u);
  EXPECT_EQ(tap->read_count(), 4u);
}

TEST(QueueTapTest, ErrorsAndClosedTap) {
  const std::string name = channel_name("tap_errors");
  EXPECT_EQ(QueueTap::open(name).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(QueueTap::open("bad/name").status().code(), absl::StatusCode::kInvalidArgument);
  {
    auto topic = TopicPublisher::open(name, testing::topic(4096, 64));
    ASSERT_TRUE(topic.ok());
    EXPECT_EQ(QueueTap::open(name).status().code(), absl::StatusCode::kFailedPrecondition);
  }
  const std::string qname = channel_name("tap_errors_q");
  auto producer = QueueProducer::open(qname, small(4));
  ASSERT_TRUE(producer.ok());
  auto tap = QueueTap::open(qname);
  ASSERT_TRUE(tap.ok());
  errno = 0;
  EXPECT_EQ(tap->wait_fd(), -1);
  EXPECT_EQ(errno, ENOTSUP);
  std::vector<std::byte> buf(64);
  std::size_t n = 0;
  std::uint64_t ticket = 0;
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(tap->read(buf, &n, &ticket, 30ms), ChannelResult::kTimedOut);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 30ms);
  std::thread sender([&] {
    std::this_thread::sleep_for(20ms);
    producer->try_send(bytes_of("late"));
  });
  EXPECT_EQ(tap->read(buf, &n, &ticket, 10s), ChannelResult::kOk);
  sender.join();
  EXPECT_EQ(string_of(std::span(buf).first(n)), "late");
  QueueTap moved = std::move(*tap);
  EXPECT_EQ(tap->try_read(buf, &n), ChannelResult::kClosed);
  EXPECT_EQ(tap->missed(), 0u);
  moved.close();
  EXPECT_FALSE(moved.is_open());
  EXPECT_EQ(moved.try_read(buf, &n), ChannelResult::kClosed);
  EXPECT_EQ(moved.read(buf, &n, nullptr, 10ms), ChannelResult::kClosed);
}

// Several producer and consumer threads at full speed, a tap reading beside them with pauses:
// consumers receive every item exactly once (the tap changes nothing), every item the tap returns
// is intact and was produced, and items read + missed = every ticket.
TEST(QueueTapTest, ThreadsAtFullSpeedTapChangesNothingAndAccountsForEveryTicket) {
  const std::string name = channel_name("tap_threads");
  constexpr int kProducers = 2, kConsumers = 2;
  const std::uint64_t per_producer = 100000 / kScale;
  auto probe = QueueProducer::open(name, small(64, sizeof(Item)));
  ASSERT_TRUE(probe.ok());
  auto tap = QueueTap::open(name);
  ASSERT_TRUE(tap.ok());
  std::atomic<int> producers_left{kProducers};
  std::vector<std::thread> threads;
  std::vector<std::vector<std::uint64_t>> received(kConsumers);
  for (int p = 0; p < kProducers; ++p) {
    threads.emplace_back([&, p] {
      auto producer = QueueProducer::open(name);
      for (std::uint64_t i = 0; i < per_producer; ++i) {
        const Item it = make_item(static_cast<std::uint32_t>(p), i);
        ASSERT_EQ(producer->send(as_span(it), 10s), ChannelResult::kOk);
      }
      producers_left.fetch_sub(1);
    });
  }
  for (int c = 0; c < kConsumers; ++c) {
    threads.emplace_back([&, c] {
      auto consumer = QueueConsumer::open(name);
      std::vector<std::byte> buf(sizeof(Item));
      std::size_t n = 0;
      for (;;) {
        const ChannelResult r = consumer->receive(buf, &n, 20ms);
        if (r == ChannelResult::kOk) {
          ASSERT_TRUE(item_valid(std::span(buf).first(n)));
          received[static_cast<std::size_t>(c)].push_back(key_of(buf));
        } else if (producers_left.load() == 0 && consumer->size_approx() == 0) {
          break;
        }
      }
    });
  }
  std::set<std::uint64_t> tapped;
  std::vector<std::byte> buf(sizeof(Item));
  std::size_t n = 0;
  std::mt19937 rng(7);
  std::uint64_t reads = 0;
  while (producers_left.load() != 0) {
    if (tap->try_read(buf, &n) == ChannelResult::kOk) {
      ASSERT_TRUE(item_valid(std::span(buf).first(n)));
      EXPECT_TRUE(tapped.insert(key_of(buf)).second);
      if (++reads % 4096 == 0 && rng() % 4 == 0) std::this_thread::sleep_for(1ms);  // falls behind
    }
  }
  for (auto& t : threads) t.join();
  while (tap->try_read(buf, &n) == ChannelResult::kOk) {
    ASSERT_TRUE(item_valid(std::span(buf).first(n)));
    EXPECT_TRUE(tapped.insert(key_of(buf)).second);
  }
  std::set<std::uint64_t> consumed;
  for (const auto& r : received) {
    for (std::uint64_t k : r) EXPECT_TRUE(consumed.insert(k).second) << "delivered twice: " << k;
  }
  EXPECT_EQ(consumed.size(), kProducers * per_producer);
  for (std::uint64_t k : tapped) EXPECT_TRUE(consumed.count(k)) << "tapped an item nobody sent: " << k;
  EXPECT_EQ(tap->read_count(), tapped.size());
  EXPECT_EQ(tap->read_count() + tap->missed(), kProducers * per_producer);
  RecordProperty("tap_read", std::to_string(tap->read_count()));
  RecordProperty("tap_missed", std::to_string(tap->missed()));
}

// Producer and consumer processes at full speed, the tap in this process stalling now and then:
// the same accounting across processes, where the tap's racing copies are real.
TEST(QueueTapTest, ProcessesAtFullSpeedTapAccountsForEveryTicket) {
  const std::string name = channel_name("tap_procs");
  const std::uint64_t items = 300000 / kScale;
  auto owner = QueueProducer::open(name, small(256, sizeof(Item)));
  ASSERT_TRUE(owner.ok());
  auto tap = QueueTap::open(name);
  ASSERT_TRUE(tap.ok());
  testing::ProcessBarrier barrier(3);
  const pid_t producer = testing::fork_child([&] {
    auto p = QueueProducer::open(name);
    if (!p.ok() || !barrier.arrive_and_wait()) return 1;
    for (std::uint64_t i = 0; i < items; ++i) {
      const Item it = make_item(1, i);
      if (p->send(as_span(it), 30s) != ChannelResult::kOk) return 2;
    }
    return 0;
  });
  const pid_t consumer = testing::fork_child([&] {
    auto c = QueueConsumer::open(name);
    if (!c.ok() || !barrier.arrive_and_wait()) return 1;
    std::vector<std::byte> buf(sizeof(Item));
    std::size_t n = 0;
    for (std::uint64_t i = 0; i < items; ++i) {
      if (c->receive(buf, &n, 30s) != ChannelResult::kOk) return 3;
      if (!item_valid(std::span(buf).first(n)) || key_of(buf) != ((1ULL << 40) | i)) return 4;
    }
    return 0;
  });
  ASSERT_TRUE(barrier.arrive_and_wait());
  std::vector<std::byte> buf(sizeof(Item));
  std::size_t n = 0;
  std::uint64_t ticket = 0, last = 0;
  bool first = true;
  std::mt19937 rng(11);
  auto drain = [&] {
    while (tap->try_read(buf, &n, &ticket) == ChannelResult::kOk) {
      ASSERT_TRUE(item_valid(std::span(buf).first(n)));
      ASSERT_EQ(key_of(buf), (1ULL << 40) | ticket);  // one producer: item i has ticket i
      if (!first) {
        ASSERT_GT(ticket, last);
      }
      first = false;
      last = ticket;
      if (rng() % 20000 == 0) std::this_thread::sleep_for(2ms);
    }
  };
  const auto give_up = std::chrono::steady_clock::now() + 120s;  // liveness only
  while (tap->next_ticket() < items && std::chrono::steady_clock::now() < give_up) {
    drain();
    if (::testing::Test::HasFatalFailure()) break;
  }
  const testing::ChildResult p = testing::wait_child(producer, 120s);
  const testing::ChildResult c = testing::wait_child(consumer, 120s);
  EXPECT_TRUE(p.ok()) << p.code;
  EXPECT_TRUE(c.ok()) << c.code;
  drain();
  EXPECT_EQ(tap->read_count() + tap->missed(), items);
  EXPECT_GT(tap->read_count(), 0u);
  RecordProperty("tap_read", std::to_string(tap->read_count()));
  RecordProperty("tap_missed", std::to_string(tap->missed()));
}

// A tap killed at any point leaves nothing: no peer slot, no lock held, and the channel is gone
// once its endpoints close.
TEST(QueueTapTest, KilledTapLeavesNothing) {
  const std::string name = channel_name("tap_killed");
  {
    auto producer = QueueProducer::open(name, small(8));
    auto consumer = QueueConsumer::open(name);
    ASSERT_TRUE(producer.ok() && consumer.ok());
    for (int round = 0; round < 20; ++round) {
      const pid_t child = testing::fork_child([&] {
        auto tap = QueueTap::open(name);
        if (!tap.ok()) return 1;
        std::vector<std::byte> buf(64);
        std::size_t n = 0;
        for (;;) tap->read(buf, &n, nullptr, 1ms);
      });
      for (int i = 0; i < 8; ++i) {
        producer->send(bytes_of("x"), 1s);
        std::vector<std::byte> buf(64);
        std::size_t n = 0;
        ASSERT_EQ(consumer->receive(buf, &n, 1s), ChannelResult::kOk);
      }
      if (round % 2 == 0) std::this_thread::sleep_for(std::chrono::microseconds(100 * round));
      kill(child, SIGKILL);
      testing::wait_child(child, 10s);
    }
    auto stats = read_stats(name);
    ASSERT_TRUE(stats.ok());
    EXPECT_EQ(stats->peers.size(), 2u);
    EXPECT_EQ(stats->attachments, 2);  // producer and consumer: the killed taps left none
  }
  EXPECT_EQ(read_stats(name).status().code(), absl::StatusCode::kNotFound);
  // (ChannelLeakCheck checks /dev/shm at the end of the binary.)
}

}  // namespace
}  // namespace shmring
