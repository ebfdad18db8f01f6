// kill -9 loops for topics: 100 lossless-subscriber kills (the publisher must never be held back
// for long by a dead one; live subscribers lose nothing), 100 lossless-publisher kills (subscribers
// see no torn or duplicated record and no gap in what a publisher completed) and 100
// lossy-publisher kills (nothing torn or repeated; received + lost matches what the ring carried). Half the subscriber and
// publisher incarnations use the zero-copy calls (views, loans), so kills also land mid-view and
// mid-loan.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "shmring/core/shared_memory.h"
#include "shmring/transport/channel.h"
#include "shmring/transport/topic.h"
#include "transport_test_util.h"

namespace shmring {
namespace {

using namespace std::chrono_literals;
using testing::channel_name;
using testing::fork_child;
using testing::wait_child;

constexpr std::size_t kMessage = 48;

TopicOptions lossless_options() {
  TopicOptions o;
  o.capacity = 16384;
  o.max_message = kMessage;
  o.lossless = true;
  o.max_peers = 32;
  o.dead_check_interval = 2ms;
  return o;
}

struct SubscriberBoard {
  std::atomic<std::uint32_t> stop;
  std::atomic<std::uint64_t> torn;
  std::atomic<std::uint64_t> gaps;        // a lossless subscriber missed a record
  std::atomic<std::uint64_t> duplicated;  // or saw one twice / out of order
  std::atomic<std::uint64_t> received;
  std::atomic<std::uint64_t> evicted;
};

// Receives a message by copy into `buf`, or (zero_copy) as a view that is copied out and released.
// kOk only for an intact message; *n is its length.
ChannelResult receive_one(TopicSubscriber& sub, bool zero_copy, std::vector<std::byte>& buf,
                          std::size_t* n) {
  if (!zero_copy) return sub.receive(buf, n, 20ms);
  TopicView view = sub.receive_view(20ms);
  if (!view.ok()) return view.result();
  *n = std::min(view.data().size(), buf.size());
  std::memcpy(buf.data(), view.data().data(), *n);
  return view.release();
}

// Reads until told to stop; ids must be consecutive from the first one it sees.
int lossless_subscriber(const std::string& name, SubscriberBoard* b, bool zero_copy) {
  auto sub = TopicSubscriber::open(name, lossless_options());
  if (!sub.ok()) return 2;
  std::vector<std::byte> buf(kMessage);
  bool first = true;
  std::uint64_t next = 0;
  while (b->stop.load() == 0) {
    std::size_t n = 0;
    const ChannelResult r = receive_one(*sub, zero_copy, buf, &n);
    if (r == ChannelResult::kTimedOut) continue;
    if (r == ChannelResult::kEvicted) {
      b->evicted.fetch_add(1);
      return 0;
    }
    if (r != ChannelResult::kOk) return 3;
    std::uint64_t id = 0;
    if (n != kMessage || !testing::check_message(std::span(buf).first(n), &id)) {
      b->torn.fetch_add(1);
      continue;
    }
    if (!first && id > next) b->gaps.fetch_add(1);
    if (!first && id < next) b->duplicated.fetch_add(1);
    first = false;
    next = id + 1;
    b->received.fetch_add(1);
  }
  return sub->lost() == 0 ? 0 : 4;
}

TEST(TopicKillTest, HundredLosslessSubscriberKillsNeverStallThePublisher) {
  const std::string name = channel_name("tk_subs");
  auto pub = TopicPublisher::open(name, lossless_options());
  ASSERT_TRUE(pub.ok()) << pub.status();
  testing::SharedRegion region(sizeof(SubscriberBoard));
  SubscriberBoard* b = region.as<SubscriberBoard>();
  // Every other subscriber incarnation reads zero-copy (views), so kills land inside views too.
  int spawned = 0;
  auto spawn = [&] {
    const bool zero_copy = spawned++ % 2 == 1;
    return fork_child([&, zero_copy] { return lossless_subscriber(name, b, zero_copy); });
  };
  std::vector<pid_t> subs;
  for (int i = 0; i < 3; ++i) subs.push_back(spawn());
  std::mt19937_64 rng(7);
  int kills = 0;
  int bad = 0;
  std::uint64_t id = 0;
  std::uint64_t timeouts = 0;
  std::int64_t worst_us = 0;
  std::vector<std::byte> msg(kMessage);
  auto next_kill = std::chrono::steady_clock::now() + 20ms;
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (kills < 100 && std::chrono::steady_clock::now() < deadline) {
    testing::fill_message(msg, id);
    const auto t0 = std::chrono::steady_clock::now();
    const ChannelResult r = pub->send(msg, 2s);
    const auto t1 = std::chrono::steady_clock::now();
    worst_us = std::max<std::int64_t>(
        worst_us, std::chrono::duration_cast<std::chrono::microseconds>(t1 - t0).count());
    if (r == ChannelResult::kOk) {
      ++id;
    } else {
      ++timeouts;
    }
    if (t1 >= next_kill) {
      const std::size_t k = rng() % subs.size();
      kill(subs[k], SIGKILL);
      if (!wait_child(subs[k], 10s).signaled) ++bad;
      subs[k] = spawn();
      ++kills;
      next_kill = t1 + std::chrono::microseconds(5000 + rng() % 40000);
    }
  }
  b->stop.store(1);
  for (pid_t p : subs) {
    if (!wait_child(p, 10s).ok()) ++bad;
  }
  auto st = read_stats(name);
  ASSERT_TRUE(st.ok());
  std::printf("topic kill -9 subscribers: kills %d, published %llu, publish timeouts %llu, worst "
              "publish %lld us, received %llu, gaps %llu, duplicated %llu, torn %llu, peers "
              "reclaimed %llu\n",
              kills, static_cast<unsigned long long>(id), static_cast<unsigned long long>(timeouts),
              static_cast<long long>(worst_us), static_cast<unsigned long long>(b->received.load()),
              static_cast<unsigned long long>(b->gaps.load()),
              static_cast<unsigned long long>(b->duplicated.load()),
              static_cast<unsigned long long>(b->torn.load()),
              static_cast<unsigned long long>(st->peers_reclaimed));
  EXPECT_GE(kills, 100);
  EXPECT_EQ(bad, 0);
  EXPECT_EQ(timeouts, 0u);  // a dead subscriber never held the publisher for 2 s
  EXPECT_EQ(b->gaps.load(), 0u);
  EXPECT_EQ(b->duplicated.load(), 0u);
  EXPECT_EQ(b->torn.load(), 0u);
  EXPECT_EQ(b->evicted.load(), 0u);
}

constexpr std::uint64_t kMaxIncarnations = 256;

// One publisher incarnation of the kill loops: opens the topic (retrying while the previous
// publisher is not reaped yet) and publishes ids (inc << 32 | seq) until it is killed, every other
// incarnation through loans so that kills also land inside them. *completed counts the publishes
// that returned kOk. `timeout` is publish's and loan's (0: the try_ calls).
int publisher_incarnation(const std::string& name, const TopicOptions& o, std::uint64_t inc,
                          std::chrono::nanoseconds timeout, std::atomic<std::uint64_t>* completed) {
  absl::StatusOr<TopicPublisher> pub = TopicPublisher::open(name, o);
  for (int i = 0; i < 200 && !pub.ok(); ++i) {
    std::this_thread::sleep_for(1ms);
    pub = TopicPublisher::open(name, o);
  }
  if (!pub.ok()) return 2;
  const bool zero_copy = inc % 2 == 1;
  std::vector<std::byte> msg(kMessage);
  for (std::uint64_t seq = 0;; ++seq) {
    if (zero_copy) {
      TopicLoan loan = pub->loan(kMessage, timeout);
      if (!loan.ok()) return 3;
      testing::fill_message(loan.buffer(), (inc << 32) | seq);
      if (pub->publish(loan, kMessage) != ChannelResult::kOk) return 3;
    } else {
      testing::fill_message(msg, (inc << 32) | seq);
      if (pub->send(msg, timeout) != ChannelResult::kOk) return 3;
    }
    completed->store(seq + 1);
    if (seq % 32 == 0) std::this_thread::sleep_for(50us);
  }
}

struct KillLoop {
  int kills = 0;
  int bad = 0;  // incarnations that ended otherwise than by our SIGKILL
  std::uint64_t incarnations = 0;
};

// Starts publisher incarnations with spawn(inc) and kills each at a random moment (5-45 ms), 100
// times (or until 20 s pass or kMaxIncarnations are used); the last one is killed too.
KillLoop kill_publishers(const std::function<pid_t(std::uint64_t)>& spawn, std::uint64_t seed) {
  KillLoop loop;
  std::mt19937_64 rng(seed);
  pid_t publisher = spawn(loop.incarnations++);
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (loop.kills < 100 && loop.incarnations < kMaxIncarnations &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::microseconds(5000 + rng() % 40000));
    kill(publisher, SIGKILL);
    const testing::ChildResult r = wait_child(publisher, 10s);
    if (!r.signaled) {
      ++loop.bad;
      std::printf("publisher incarnation %llu exited with %d\n",
                  static_cast<unsigned long long>(loop.incarnations - 1), r.code);
    }
    ++loop.kills;
    publisher = spawn(loop.incarnations++);
  }
  std::this_thread::sleep_for(50ms);
  kill(publisher, SIGKILL);
  wait_child(publisher, 10s);
  return loop;
}

struct PublisherBoard {
  std::atomic<std::uint32_t> stop;
  std::atomic<std::uint32_t> ready;
  std::atomic<std::uint64_t> torn;
  std::atomic<std::uint64_t> duplicated;
  std::atomic<std::uint64_t> received;
  std::atomic<std::uint64_t> completed[kMaxIncarnations];  // records a publisher saw kOk for
  std::atomic<std::uint64_t> seen[2][kMaxIncarnations];    // per subscriber: next expected seq
  std::atomic<std::uint64_t> gaps[2];
};

TEST(TopicKillTest, HundredPublisherKillsLeaveNoTornDuplicatedOrMissingRecord) {
  const std::string name = channel_name("tk_pubs");
  TopicOptions o = lossless_options();
  testing::SharedRegion region(sizeof(PublisherBoard));
  PublisherBoard* b = region.as<PublisherBoard>();
  // The parent creates the channel with a subscriber handle that it closes once the two reading
  // subscribers are in (a lossless subscriber that never reads would hold the publishers back).
  auto keeper = TopicSubscriber::open(name, o);
  ASSERT_TRUE(keeper.ok()) << keeper.status();
  std::vector<pid_t> subs;
  for (int s = 0; s < 2; ++s) {
    subs.push_back(fork_child([&, s] {
      auto sub = TopicSubscriber::open(name, o);
      if (!sub.ok()) return 2;
      b->ready.fetch_add(1);
      std::vector<std::byte> buf(kMessage);
      while (b->stop.load() == 0) {
        std::size_t n = 0;
        const ChannelResult r = receive_one(*sub, /*zero_copy=*/s == 1, buf, &n);
        if (r == ChannelResult::kTimedOut) continue;
        if (r != ChannelResult::kOk) return 10 + static_cast<int>(r);
        std::uint64_t id = 0;
        if (n != kMessage || !testing::check_message(std::span(buf).first(n), &id) ||
            (id >> 32) >= kMaxIncarnations) {
          b->torn.fetch_add(1);
          continue;
        }
        const std::uint64_t inc = id >> 32;
        const std::uint64_t seq = id & 0xffffffffu;
        const std::uint64_t expected = b->seen[s][inc].load();
        if (seq < expected) b->duplicated.fetch_add(1);
        if (seq > expected) b->gaps[s].fetch_add(1);
        b->seen[s][inc].store(seq + 1);
        b->received.fetch_add(1);
      }
      return 0;
    }));
  }
  while (b->ready.load() < 2) std::this_thread::sleep_for(1ms);
  keeper->close();
  // Stay attached (unregistered) so that the parent is the last to detach and the
  // segment goes away even though the last publisher is killed.
  SharedMemory hold(channel_key(name));
  ASSERT_TRUE(hold.attach(AccessMode::kReadWrite));
  const KillLoop loop = kill_publishers(
      [&](std::uint64_t inc) {
        return fork_child([&, inc] {
          return publisher_incarnation(name, lossless_options(), inc, 2s, &b->completed[inc]);
        });
      },
      11);
  int bad = loop.bad;
  const int kills = loop.kills;
  const std::uint64_t incarnation = loop.incarnations;
  std::this_thread::sleep_for(100ms);  // let the subscribers drain
  b->stop.store(1);
  for (pid_t p : subs) {
    const testing::ChildResult r = wait_child(p, 10s);
    if (!r.ok()) {
      ++bad;
      std::printf("subscriber exited with %d (signal: %d)\n", r.code, r.signaled);
    }
  }
  std::uint64_t missing = 0;
  for (std::uint64_t inc = 0; inc < incarnation; ++inc) {
    for (int s = 0; s < 2; ++s) {
      if (b->seen[s][inc].load() < b->completed[inc].load()) ++missing;
    }
  }
  std::printf("topic kill -9 publishers: kills %d, incarnations %llu, received %llu, gaps %llu/%llu, "
              "duplicated %llu, torn %llu, incarnations with completed records missing %llu\n",
              kills, static_cast<unsigned long long>(incarnation),
              static_cast<unsigned long long>(b->received.load()),
              static_cast<unsigned long long>(b->gaps[0].load()),
              static_cast<unsigned long long>(b->gaps[1].load()),
              static_cast<unsigned long long>(b->duplicated.load()),
              static_cast<unsigned long long>(b->torn.load()),
              static_cast<unsigned long long>(missing));
  EXPECT_GE(kills, 100);
  EXPECT_EQ(bad, 0);
  EXPECT_EQ(b->torn.load(), 0u);
  EXPECT_EQ(b->duplicated.load(), 0u);
  EXPECT_EQ(b->gaps[0].load() + b->gaps[1].load(), 0u);
  EXPECT_EQ(missing, 0u);
}

// Lossy topic, 100 publisher kills: subscribers (one copying, one viewing) see nothing torn,
// repeated or out of order, and every message the ring carried is received or counted lost:
// the completed publishes <= received + lost <= completed + one unrecorded publish per publisher.
TEST(TopicKillTest, HundredLossyPublisherKillsKeepTheLossCountExact) {
  const std::string name = channel_name("tk_lossy_pubs");
  TopicOptions o;
  o.capacity = 4096;  // small: the slow subscriber gets lapped now and then
  o.max_message = kMessage;
  o.max_peers = 32;
  struct Board {
    std::atomic<std::uint32_t> stop;
    std::atomic<std::uint32_t> ready;
    std::atomic<std::uint64_t> torn;
    std::atomic<std::uint64_t> out_of_order;
    std::atomic<std::uint64_t> received[2];
    std::atomic<std::uint64_t> lost[2];
    std::atomic<std::uint64_t> completed[kMaxIncarnations];
  };
  testing::SharedRegion region(sizeof(Board));
  Board* b = region.as<Board>();
  auto keeper = TopicSubscriber::open(name, o);  // creates the channel; never reads (lossy: harmless)
  ASSERT_TRUE(keeper.ok()) << keeper.status();
  std::vector<pid_t> subs;
  for (int s = 0; s < 2; ++s) {
    subs.push_back(fork_child([&, s] {
      auto sub = TopicSubscriber::open(name, o);
      if (!sub.ok()) return 2;
      b->ready.fetch_add(1);
      std::vector<std::byte> buf(kMessage);
      bool first = true;
      std::uint64_t last = 0;
      auto take = [&](std::span<const std::byte> m) {
        std::uint64_t id = 0;
        if (m.size() != kMessage || !testing::check_message(m, &id)) {
          b->torn.fetch_add(1);
          return;
        }
        if (!first && id <= last) b->out_of_order.fetch_add(1);
        first = false;
        last = id;
      };
      for (;;) {
        const bool stopping = b->stop.load() != 0;
        if (s == 0) {
          std::size_t n = 0;
          const ChannelResult r = sub->receive(buf, &n, stopping ? 0ms : 20ms);
          if (r == ChannelResult::kOk) {
            take(std::span(buf).first(n));
          } else if (stopping) {
            break;
          }
        } else {
          TopicView v = sub->receive_view(stopping ? 0ms : 20ms);
          if (!v.ok()) {
            if (stopping) break;
            continue;
          }
          std::vector<std::byte> copy(v.data().begin(), v.data().end());
          std::this_thread::sleep_for(20us);  // the slow one
          if (v.release() == ChannelResult::kOk) take(copy);  // kOverwritten: counted lost
        }
      }
      b->received[s].store(sub->received());
      b->lost[s].store(sub->lost());
      return 0;
    }));
  }
  while (b->ready.load() < 2) std::this_thread::sleep_for(1ms);
  SharedMemory hold(channel_key(name));  // keeps the channel while publishers come and go
  ASSERT_TRUE(hold.attach(AccessMode::kReadWrite));
  const KillLoop loop = kill_publishers(
      [&](std::uint64_t inc) {
        return fork_child([&, inc] {
          return publisher_incarnation(name, o, inc, std::chrono::nanoseconds(0), &b->completed[inc]);
        });
      },
      13);
  int bad = loop.bad;
  const int kills = loop.kills;
  const std::uint64_t incarnation = loop.incarnations;
  b->stop.store(1);
  for (pid_t p : subs) {
    if (!wait_child(p, 10s).ok()) ++bad;
  }
  std::uint64_t completed = 0;
  for (std::uint64_t inc = 0; inc < incarnation; ++inc) completed += b->completed[inc].load();
  std::printf("topic lossy kill -9 publishers: kills %d, completed publishes %llu, subscriber "
              "received+lost %llu+%llu / %llu+%llu, torn %llu, repeated or out of order %llu\n",
              kills, static_cast<unsigned long long>(completed),
              static_cast<unsigned long long>(b->received[0].load()),
              static_cast<unsigned long long>(b->lost[0].load()),
              static_cast<unsigned long long>(b->received[1].load()),
              static_cast<unsigned long long>(b->lost[1].load()),
              static_cast<unsigned long long>(b->torn.load()),
              static_cast<unsigned long long>(b->out_of_order.load()));
  EXPECT_GE(kills, 100);
  EXPECT_EQ(bad, 0);
  EXPECT_EQ(b->torn.load(), 0u);
  EXPECT_EQ(b->out_of_order.load(), 0u);
  for (int s = 0; s < 2; ++s) {
    const std::uint64_t carried = b->received[s].load() + b->lost[s].load();
    EXPECT_GE(carried, completed) << "subscriber " << s;
    EXPECT_LE(carried, completed + incarnation) << "subscriber " << s;
  }
}

}  // namespace
}  // namespace shmring
