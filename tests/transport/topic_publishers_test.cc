// Several publishers on one topic (issue 25): one total order for every subscriber, publisher ids
// and sequence numbers, and publishers killed mid-message that never stall the topic for longer
// than the recovery takes. Threads (also under ThreadSanitizer) and real processes (fork, SIGKILL,
// SIGSTOP).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "shmring/transport/channel.h"
#include "shmring/transport/topic.h"
#include "transport_test_util.h"

namespace shmring {
namespace {

using namespace std::chrono_literals;
using testing::channel_name;
using testing::fork_child;
using testing::wait_child;

constexpr std::size_t kMessage = 40;  // with its record header, one cache line

TopicOptions publishers_topic(std::uint32_t publishers, bool lossless, std::uint64_t capacity = 1 << 16) {
  TopicOptions o = testing::topic(capacity, kMessage, lossless);
  o.max_publishers = publishers;
  o.max_peers = 32;
  o.dead_check_interval = 2ms;
  return o;
}

// A message names its writer (a small index the test chose) and that writer's count.
std::uint64_t id_of(std::uint64_t writer, std::uint64_t seq) { return (writer << 40) | seq; }

TEST(TopicPublishers, IdsAndSequencesOnViewsAndCopies) {
  const std::string name = channel_name("tp_ids");
  auto a = TopicPublisher::open(name, publishers_topic(3, false));
  auto b = TopicPublisher::open(name, publishers_topic(3, false));
  auto sub = TopicSubscriber::open(name, publishers_topic(3, false));
  ASSERT_TRUE(a.ok() && b.ok() && sub.ok());
  EXPECT_NE(a->publisher_id(), 0u);
  EXPECT_NE(a->publisher_id(), b->publisher_id());
  EXPECT_EQ(a->max_publishers(), 3u);
  std::vector<std::byte> buf(kMessage);
  for (std::uint64_t i = 0; i < 6; ++i) {
    TopicPublisher& p = i % 3 == 0 ? *b : *a;
    testing::fill_message(buf, i);
    ASSERT_EQ(p.try_send(buf), ChannelResult::kOk);
  }
  EXPECT_EQ(a->published(), 4u);
  EXPECT_EQ(b->published(), 2u);
  EXPECT_EQ(a->next_sequence(), 6u);
  std::uint64_t a_count = 0, b_count = 0;
  for (std::uint64_t i = 0; i < 6; ++i) {
    std::uint32_t publisher = 0;
    std::uint64_t publisher_sequence = 0;
    if (i % 2 == 0) {
      TopicView v = sub->try_receive_view();
      ASSERT_TRUE(v.ok());
      EXPECT_EQ(v.sequence(), i);
      publisher = v.publisher();
      publisher_sequence = v.publisher_sequence();
      ASSERT_EQ(v.release(), ChannelResult::kOk);
    } else {
      std::size_t n = 0;
      ASSERT_EQ(sub->try_receive(buf, &n), ChannelResult::kOk);
      EXPECT_EQ(sub->last_sequence(), i);
      publisher = sub->last_publisher();
      publisher_sequence = sub->last_publisher_sequence();
    }
    const bool from_b = i % 3 == 0;
    EXPECT_EQ(publisher, from_b ? b->publisher_id() : a->publisher_id()) << i;
    EXPECT_EQ(publisher_sequence, from_b ? b_count++ : a_count++) << i;
  }
  // A publisher that opens later gets another id; ids of closed ones are not reused.
  const std::uint32_t old_a = a->publisher_id();
  a->close();
  auto c = TopicPublisher::open(name, publishers_topic(3, false));
  auto d = TopicPublisher::open(name, publishers_topic(3, false));
  ASSERT_TRUE(c.ok() && d.ok());
  EXPECT_NE(c->publisher_id(), old_a);
  EXPECT_EQ(TopicPublisher::open(name, publishers_topic(3, false)).status().code(),
            absl::StatusCode::kFailedPrecondition);
  auto stats = read_stats(name);
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->max_publishers, 3u);
  std::set<std::uint32_t> ids;
  for (const PeerStats& p : stats->peers) {
    if (p.role == PeerRole::kPublisher) ids.insert(p.publisher_id);
  }
  EXPECT_EQ(ids, (std::set<std::uint32_t>{b->publisher_id(), c->publisher_id(), d->publisher_id()}));
}

// Threads: three publishers (copies and loans), a lossless and a lossy subscriber. Every message
// intact, each publisher's in its order, the lossless one gets all, and both agree on the order.
TEST(TopicPublishers, ThreadsThreePublishersOneOrder) {
  for (const bool lossless_default : {true, false}) {
    const std::string name = channel_name(lossless_default ? "tp_threads_ll" : "tp_threads_ly");
    const std::uint64_t per_publisher = testing::rounds_from_env("SHMRING_TOPIC_THREAD_MESSAGES", 8000);
    TopicOptions recorder_options = publishers_topic(3, lossless_default, 8192);
    recorder_options.delivery = TopicDelivery::kLossless;
    TopicOptions display_options = recorder_options;
    display_options.delivery = TopicDelivery::kLossy;
    auto recorder = TopicSubscriber::open(name, recorder_options);
    auto display = TopicSubscriber::open(name, display_options);
    ASSERT_TRUE(recorder.ok() && display.ok());
    std::atomic<int> done{0};
    std::vector<std::thread> publishers;
    for (std::uint64_t w = 0; w < 3; ++w) {
      publishers.emplace_back([&, w] {
        auto pub = TopicPublisher::open(name, publishers_topic(3, lossless_default, 8192));
        ASSERT_TRUE(pub.ok()) << pub.status();
        std::vector<std::byte> buf(kMessage);
        for (std::uint64_t i = 0; i < per_publisher; ++i) {
          if (i % 2 == 0) {
            TopicLoan loan = pub->loan(kMessage, 10s);
            ASSERT_TRUE(loan.ok());
            testing::fill_message(loan.buffer(), id_of(w, i));
            ASSERT_EQ(pub->publish(loan, kMessage), ChannelResult::kOk);
          } else {
            testing::fill_message(buf, id_of(w, i));
            ASSERT_EQ(pub->send(buf, 10s), ChannelResult::kOk);
          }
        }
        done.fetch_add(1);
      });
    }
    std::map<std::uint64_t, std::uint64_t> recorder_order;  // topic sequence -> id
    std::uint64_t bad = 0;
    auto check = [&](TopicSubscriber& s, std::vector<std::int64_t>& last, bool strict,
                     std::map<std::uint64_t, std::uint64_t>* order, std::uint64_t* mismatches) {
      std::vector<std::byte> buf(kMessage);
      std::size_t n = 0;
      const ChannelResult r = s.receive(buf, &n, 1ms);
      if (r != ChannelResult::kOk) return r;
      std::uint64_t id = 0;
      if (!testing::check_message(std::span(buf).first(n), &id) || (id >> 40) > 2) {
        ++bad;
        return r;
      }
      const std::uint64_t w = id >> 40;
      const auto seq = static_cast<std::int64_t>(id & ((std::uint64_t{1} << 40) - 1));
      if (strict ? seq != last[w] + 1 : seq <= last[w]) ++bad;
      last[w] = seq;
      if (order != nullptr) (*order)[s.last_sequence()] = id;
      if (mismatches != nullptr) {
        const auto it = recorder_order.find(s.last_sequence());
        if (it != recorder_order.end() && it->second != id) ++*mismatches;
      }
      return r;
    };
    std::vector<std::int64_t> recorder_last(3, -1), display_last(3, -1);
    std::uint64_t received = 0, mismatches = 0;
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (received < 3 * per_publisher && std::chrono::steady_clock::now() < deadline) {
      if (check(*recorder, recorder_last, true, &recorder_order, nullptr) == ChannelResult::kOk) ++received;
      check(*display, display_last, false, nullptr, &mismatches);
    }
    for (auto& t : publishers) t.join();
    EXPECT_EQ(received, 3 * per_publisher);
    EXPECT_EQ(bad, 0u);
    EXPECT_EQ(mismatches, 0u);
    EXPECT_EQ(recorder->lost() + recorder->gaps_passed(), 0u);
    EXPECT_EQ(done.load(), 3);
  }
}

// --- processes ------------------------------------------------------------------------------------

constexpr std::uint64_t kOrderSlots = 1 << 20;
constexpr std::uint64_t kMaxWriters = 128;  // writer indices a test hands out

struct OrderBoard {
  std::atomic<std::uint32_t> ready;
  std::atomic<std::uint32_t> stop;
  std::atomic<std::uint64_t> torn;
  std::atomic<std::uint64_t> disorder;      // a publisher's messages out of its order
  std::atomic<std::uint64_t> missing;       // a lossless subscriber skipped one
  std::atomic<std::uint64_t> mismatches;    // one topic sequence, two messages
  std::atomic<std::uint64_t> received[4];
  std::atomic<std::uint64_t> lost[4];
  std::atomic<std::uint64_t> completed[kMaxWriters];  // per writer: messages sent (kOk)
  std::atomic<std::uint64_t> longest_wait_us;
  // topic sequence % kOrderSlots -> (sequence + 1, id) as the first subscriber saw it
  std::atomic<std::uint64_t> order_sequence[kOrderSlots];
  std::atomic<std::uint64_t> order_id[kOrderSlots];
};

void note_order(OrderBoard* b, std::uint64_t sequence, std::uint64_t id) {
  const std::uint64_t slot = sequence % kOrderSlots;
  std::uint64_t seen = b->order_sequence[slot].load();
  if (seen == sequence + 1) {
    if (b->order_id[slot].load() != id) b->mismatches.fetch_add(1);
    return;
  }
  if (seen < sequence + 1 && b->order_sequence[slot].compare_exchange_strong(seen, 0)) {
    b->order_id[slot].store(id);
    b->order_sequence[slot].store(sequence + 1);
  }
}

// A subscriber process: reads until stop, checks every message; `strict`: no message of a writer
// may be skipped (lossless), and it measures its longest wait between two messages.
int order_subscriber(const std::string& name, TopicOptions o, OrderBoard* b, int index, bool strict) {
  auto sub = TopicSubscriber::open(name, o);
  if (!sub.ok()) {
    std::fprintf(stderr, "subscriber %d: %s\n", index, sub.status().ToString().c_str());
    return 2;
  }
  b->ready.fetch_add(1);
  std::vector<std::int64_t> last(kMaxWriters, -1);
  std::vector<std::byte> buf(kMessage);
  auto previous = std::chrono::steady_clock::now();
  bool started = false;
  while (b->stop.load() == 0) {
    std::size_t n = 0;
    const ChannelResult r = sub->receive(buf, &n, 5ms);
    if (r == ChannelResult::kTimedOut) continue;
    if (r != ChannelResult::kOk) return 10 + static_cast<int>(r);
    const auto now = std::chrono::steady_clock::now();
    if (strict && started) {
      const auto waited = static_cast<std::uint64_t>(
          std::chrono::duration_cast<std::chrono::microseconds>(now - previous).count());
      std::uint64_t longest = b->longest_wait_us.load();
      while (waited > longest && !b->longest_wait_us.compare_exchange_weak(longest, waited)) {
      }
    }
    started = true;
    previous = now;
    std::uint64_t id = 0;
    if (n != kMessage || !testing::check_message(std::span(buf).first(n), &id) || (id >> 40) >= kMaxWriters) {
      b->torn.fetch_add(1);
      continue;
    }
    const std::uint64_t w = id >> 40;
    const auto seq = static_cast<std::int64_t>(id & ((std::uint64_t{1} << 40) - 1));
    if (seq <= last[w]) b->disorder.fetch_add(1);
    if (strict && last[w] >= 0 && seq > last[w] + 1) b->missing.fetch_add(1);
    last[w] = seq;
    note_order(b, sub->last_sequence(), id);
    b->received[index].fetch_add(1);
    b->lost[index].store(sub->lost());
  }
  b->lost[index].store(sub->lost());
  return 0;
}

// A publisher process sends as writer `w` until stop (or `count` messages), half by loan.
int order_publisher(const std::string& name, TopicOptions o, OrderBoard* b, std::uint64_t w, std::uint64_t count) {
  auto pub = TopicPublisher::open(name, o);
  if (!pub.ok()) {
    std::fprintf(stderr, "publisher %llu: %s\n", static_cast<unsigned long long>(w), pub.status().ToString().c_str());
    return 2;
  }
  std::vector<std::byte> buf(kMessage);
  for (std::uint64_t i = 0; i < count && b->stop.load() == 0;) {
    ChannelResult r;
    if (i % 2 == 0) {
      TopicLoan loan = pub->loan(kMessage, 10ms);
      r = loan.result();
      if (loan.ok()) {
        testing::fill_message(loan.buffer(), id_of(w, i));
        r = pub->publish(loan, kMessage);
      }
    } else {
      testing::fill_message(buf, id_of(w, i));
      r = pub->send(buf, 10ms);
    }
    if (r == ChannelResult::kTimedOut) continue;
    if (r != ChannelResult::kOk) return 3;
    b->completed[w].store(++i);
  }
  return 0;
}

// Four publisher processes, three subscriber processes (a lossless recorder, a lossy display, a
// read-only lossy display): one total order, nothing torn, the recorder misses nothing.
TEST(TopicPublishersMultiprocess, FourPublishersThreeSubscribersOneTotalOrder) {
  const std::string name = channel_name("tp_mp_order");
  testing::SharedRegion region(sizeof(OrderBoard));
  OrderBoard* b = region.as<OrderBoard>();
  TopicOptions o = publishers_topic(4, /*lossless=*/true);
  o.permissions = 0644;
  auto keeper = TopicSubscriber::open(name, [&] {
    TopicOptions k = o;
    k.delivery = TopicDelivery::kLossy;
    return k;
  }());
  ASSERT_TRUE(keeper.ok());
  std::vector<pid_t> subscribers;
  subscribers.push_back(fork_child([&] { return order_subscriber(name, o, b, 0, /*strict=*/true); }));
  TopicOptions display = o;
  display.delivery = TopicDelivery::kLossy;
  subscribers.push_back(fork_child([&] { return order_subscriber(name, display, b, 1, false); }));
  TopicOptions read_only = display;
  read_only.read_only = true;
  subscribers.push_back(fork_child([&] { return order_subscriber(name, read_only, b, 2, false); }));
  while (b->ready.load() < 3) std::this_thread::sleep_for(1ms);
  const std::uint64_t per_publisher = testing::rounds_from_env("SHMRING_TOPIC_PUBLISHER_MESSAGES", 100000);
  std::vector<pid_t> publishers;
  for (std::uint64_t w = 0; w < 4; ++w) {
    publishers.push_back(fork_child([&, w] { return order_publisher(name, o, b, w, per_publisher); }));
  }
  for (pid_t p : publishers) EXPECT_TRUE(wait_child(p, 120s).ok());
  // Every subscriber gets to the last message (the recorder receives all; a display receives or
  // counts lost each one); then they stop.
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  auto accounted = [&](int i) { return b->received[i].load() + b->lost[i].load(); };
  while ((accounted(0) < 4 * per_publisher || accounted(1) < 4 * per_publisher ||
          accounted(2) < 4 * per_publisher) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  b->stop.store(1);
  for (pid_t p : subscribers) EXPECT_TRUE(wait_child(p, 30s).ok());
  std::printf("4 publishers x %llu: recorder %llu, display %llu (+%llu lost), read-only %llu (+%llu lost)\n",
              static_cast<unsigned long long>(per_publisher),
              static_cast<unsigned long long>(b->received[0].load()),
              static_cast<unsigned long long>(b->received[1].load()), static_cast<unsigned long long>(b->lost[1].load()),
              static_cast<unsigned long long>(b->received[2].load()), static_cast<unsigned long long>(b->lost[2].load()));
  EXPECT_EQ(b->torn.load(), 0u);
  EXPECT_EQ(b->disorder.load(), 0u);
  EXPECT_EQ(b->missing.load(), 0u);
  EXPECT_EQ(b->mismatches.load(), 0u);
  EXPECT_EQ(b->received[0].load(), 4 * per_publisher);
  EXPECT_EQ(b->received[1].load() + b->lost[1].load(), 4 * per_publisher);
  EXPECT_EQ(b->received[2].load() + b->lost[2].load(), 4 * per_publisher);
}

// A publisher killed inside a loan, a hundred times, while two others keep publishing, with a
// lossless and a lossy subscriber: nothing torn, duplicated or out of order, the lossless one
// misses none of the completed messages, and the topic never stalls for long (the longest wait is
// printed; the bound is the dead-peer check, dead_check_interval = 2 ms, plus scheduling).
TEST(TopicPublishersMultiprocess, HundredPublishersKilledMidMessageNeverStallTheTopic) {
  const std::string name = channel_name("tp_mp_kill");
  testing::SharedRegion region(sizeof(OrderBoard));
  OrderBoard* b = region.as<OrderBoard>();
  const TopicOptions o = publishers_topic(4, /*lossless=*/true, 1 << 14);
  auto keeper = TopicSubscriber::open(name, [&] {
    TopicOptions k = o;
    k.delivery = TopicDelivery::kLossy;
    return k;
  }());
  ASSERT_TRUE(keeper.ok());
  std::vector<pid_t> subscribers;
  subscribers.push_back(fork_child([&] { return order_subscriber(name, o, b, 0, /*strict=*/true); }));
  TopicOptions display = o;
  display.delivery = TopicDelivery::kLossy;
  subscribers.push_back(fork_child([&] { return order_subscriber(name, display, b, 1, false); }));
  while (b->ready.load() < 2) std::this_thread::sleep_for(1ms);
  std::vector<pid_t> steady;
  for (std::uint64_t w = 0; w < 2; ++w) {
    steady.push_back(fork_child([&, w] { return order_publisher(name, o, b, w, ~std::uint64_t{0}); }));
  }
  const int kills = static_cast<int>(testing::rounds_from_env("SHMRING_TOPIC_PUBLISHER_KILLS", 100));
  std::mt19937_64 rng(17);
  int killed_in_loans = 0;
  for (int k = 0; k < kills; ++k) {
    const std::uint64_t w = 2 + static_cast<std::uint64_t>(k) % (kMaxWriters - 2);  // a new writer per incarnation
    // It publishes by loan and works inside each loan for a while: kills land inside loans.
    const pid_t victim = fork_child([&, w] {
      auto pub = TopicPublisher::open(name, o);
      if (!pub.ok()) return 2;
      for (std::uint64_t i = 0;; ) {
        TopicLoan loan = pub->loan(kMessage, 10ms);
        if (!loan.ok()) continue;
        testing::fill_message(loan.buffer(), id_of(w, i));
        const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(300);
        while (std::chrono::steady_clock::now() < until) {
        }
        if (pub->publish(loan, kMessage) != ChannelResult::kOk) return 3;
        b->completed[w].store(++i);
      }
    });
    std::this_thread::sleep_for(std::chrono::microseconds(2000 + rng() % 3000));
    kill(victim, SIGKILL);
    const testing::ChildResult r = wait_child(victim, 10s);
    EXPECT_TRUE(r.signaled);
    ++killed_in_loans;
  }
  std::this_thread::sleep_for(200ms);  // the last recovery, then the subscribers catch up
  const auto stats = read_stats(name);
  b->stop.store(1);
  for (pid_t p : steady) EXPECT_TRUE(wait_child(p, 30s).ok());
  for (pid_t p : subscribers) EXPECT_TRUE(wait_child(p, 30s).ok());
  ASSERT_TRUE(stats.ok());
  std::printf("%d publishers killed (mostly inside a loan): abandoned %llu, recorder received %llu, "
              "longest wait %.2f ms\n",
              killed_in_loans, static_cast<unsigned long long>(stats->abandoned),
              static_cast<unsigned long long>(b->received[0].load()), b->longest_wait_us.load() / 1000.0);
  RecordProperty("longest_wait_us", std::to_string(b->longest_wait_us.load()));
  EXPECT_EQ(b->torn.load(), 0u);
  EXPECT_EQ(b->disorder.load(), 0u);
  EXPECT_EQ(b->missing.load(), 0u);
  EXPECT_EQ(b->mismatches.load(), 0u);
  EXPECT_GT(stats->abandoned, 0u);
  EXPECT_LE(stats->abandoned, static_cast<std::uint64_t>(kills));
}

// Lossy topic, two publishers: one is stopped (SIGSTOP) inside a loan. The other is held back only
// once it has gone a whole lap round the stopped claim (never overwriting it), and goes on as soon
// as the stopped one is killed and the recovery skips its claim.
TEST(TopicPublishersMultiprocess, PublisherStoppedInALoanHoldsOthersBackOnlyUntilItDies) {
  const std::string name = channel_name("tp_mp_stop");
  TopicOptions o = publishers_topic(2, /*lossless=*/false, 4096);
  auto pub = TopicPublisher::open(name, o);
  auto sub = TopicSubscriber::open(name, o);
  ASSERT_TRUE(pub.ok() && sub.ok());
  testing::SharedRegion region(sizeof(std::atomic<int>));
  auto* in_loan = region.as<std::atomic<int>>();
  const pid_t stopped = fork_child([&] {
    auto other = TopicPublisher::open(name, o);
    if (!other.ok()) return 2;
    TopicLoan loan = other->loan(kMessage, 1s);
    if (!loan.ok()) return 3;
    in_loan->store(1);
    for (;;) pause();
  });
  while (in_loan->load() == 0) std::this_thread::sleep_for(1ms);
  kill(stopped, SIGSTOP);
  std::vector<std::byte> buf(kMessage);
  int sent = 0;
  while (sent < 1000 && pub->try_send(buf) == ChannelResult::kOk) ++sent;
  EXPECT_EQ(sent, 4096 / 64 - 1);  // a lap of one-line records round the open claim, then held back
  EXPECT_EQ(pub->send(buf, 20ms), ChannelResult::kTimedOut);
  kill(stopped, SIGKILL);
  ASSERT_TRUE(wait_child(stopped, 10s).signaled);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(pub->send(buf, 5s), ChannelResult::kOk);
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  std::printf("held back until the stopped publisher died; resumed %.2f ms after its kill\n", ms);
  auto stats = read_stats(name);
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->abandoned, 1u);
}

}  // namespace
}  // namespace shmring
