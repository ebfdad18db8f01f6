// Where a topic subscriber starts (live, latest, the last n, the oldest; the topic's `history`),
// and each subscriber's own delivery (a lossless recorder beside lossy displays on one topic).
// One process and real processes, including a subscriber that opens while publishers write at
// full speed.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
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

constexpr std::size_t kMessage = 40;

TopicOptions history_topic(std::uint64_t history, std::uint64_t capacity = 1 << 16, bool lossless = false) {
  TopicOptions o = testing::topic(capacity, kMessage, lossless);
  o.history = history;
  o.max_publishers = 2;
  o.max_peers = 16;
  return o;
}

TopicOptions starting(TopicOptions o, TopicStart start, TopicDelivery delivery = TopicDelivery::kDefault) {
  o.start = start;
  o.delivery = delivery;
  return o;
}

void send_ids(TopicPublisher& pub, std::uint64_t from, std::uint64_t to) {
  std::vector<std::byte> buf(kMessage);
  for (std::uint64_t i = from; i < to; ++i) {
    testing::fill_message(buf, i);
    ASSERT_EQ(pub.send(buf, 5s), ChannelResult::kOk);
  }
}

// The ids the subscriber gets now (without waiting), in order.
std::vector<std::uint64_t> drain(TopicSubscriber& sub) {
  std::vector<std::uint64_t> ids;
  std::vector<std::byte> buf(kMessage);
  for (;;) {
    std::size_t n = 0;
    if (sub.try_receive(buf, &n) != ChannelResult::kOk) return ids;
    std::uint64_t id = 0;
    EXPECT_TRUE(testing::check_message(std::span(buf).first(n), &id));
    ids.push_back(id);
  }
}

std::vector<std::uint64_t> range(std::uint64_t from, std::uint64_t to) {
  std::vector<std::uint64_t> v;
  for (std::uint64_t i = from; i < to; ++i) v.push_back(i);
  return v;
}

TEST(TopicHistory, LiveLatestHistoryAndOldestStarts) {
  const std::string name = channel_name("th_starts");
  auto pub = TopicPublisher::open(name, history_topic(0));
  ASSERT_TRUE(pub.ok());
  send_ids(*pub, 0, 50);
  auto live = TopicSubscriber::open(name, starting(history_topic(0), TopicStart::live()));
  auto latest = TopicSubscriber::open(name, starting(history_topic(0), TopicStart::latest()));
  auto last10 = TopicSubscriber::open(name, starting(history_topic(0), TopicStart::history(10)));
  auto oldest = TopicSubscriber::open(name, starting(history_topic(0), TopicStart::oldest()));
  auto lossless10 = TopicSubscriber::open(
      name, starting(history_topic(0), TopicStart::history(10), TopicDelivery::kLossless));
  ASSERT_TRUE(live.ok() && latest.ok() && last10.ok() && oldest.ok() && lossless10.ok());
  EXPECT_EQ(live->next_sequence(), 50u);
  EXPECT_EQ(latest->next_sequence(), 49u);
  send_ids(*pub, 50, 52);
  EXPECT_EQ(drain(*live), range(50, 52));
  EXPECT_EQ(drain(*latest), range(49, 52));
  EXPECT_EQ(drain(*last10), range(40, 52));
  EXPECT_EQ(drain(*oldest), range(0, 52));  // the ring holds all 50
  EXPECT_EQ(drain(*lossless10), range(40, 52));
  for (auto* s : {&*live, &*latest, &*last10, &*oldest, &*lossless10}) {
    EXPECT_EQ(s->history_missed(), 0u);
    EXPECT_EQ(s->lost(), 0u);
  }
}

TEST(TopicHistory, SubscribersOpenedBeforeAnyPublisherGetTheFirstMessage) {
  const std::string name = channel_name("th_first");
  auto live = TopicSubscriber::open(name, starting(history_topic(0), TopicStart::live()));
  auto history = TopicSubscriber::open(name, starting(history_topic(0), TopicStart::history(100)));
  auto lossless = TopicSubscriber::open(name, starting(history_topic(0), TopicStart::latest(), TopicDelivery::kLossless));
  ASSERT_TRUE(live.ok() && history.ok() && lossless.ok());
  // The publisher is another process, opened afterwards.
  const pid_t child = fork_child([&] {
    auto pub = TopicPublisher::open(name, history_topic(0));
    if (!pub.ok()) return 2;
    std::vector<std::byte> buf(kMessage);
    for (std::uint64_t i = 0; i < 5; ++i) {
      testing::fill_message(buf, i);
      if (pub->send(buf, 5s) != ChannelResult::kOk) return 3;
    }
    return 0;
  });
  ASSERT_TRUE(wait_child(child, 10s).ok());
  EXPECT_EQ(drain(*live), range(0, 5));
  EXPECT_EQ(drain(*history), range(0, 5));
  EXPECT_EQ(drain(*lossless), range(0, 5));
  EXPECT_EQ(history->history_missed(), 0u);  // nothing that was published is missing
}

TEST(TopicHistory, TheTopicsHistoryIsKeptWhateverThePublishersDoAndWhatIsGoneIsCounted) {
  const std::string name = channel_name("th_keep");
  TopicOptions o = history_topic(100, 16384);
  auto pub = TopicPublisher::open(name, o);
  ASSERT_TRUE(pub.ok());
  EXPECT_EQ(pub->history(), 100u);
  TopicOptions other = history_topic(7, 16384);
  EXPECT_EQ(TopicPublisher::open(name, other).status().code(), absl::StatusCode::kFailedPrecondition);
  std::uint64_t published = 0;
  for (int round = 0; round < 20; ++round) {
    const std::uint64_t burst = 1 + static_cast<std::uint64_t>(round) * 97 % 700;
    send_ids(*pub, published, published + burst);
    published += burst;
    auto sub = TopicSubscriber::open(name, starting(o, TopicStart::history(100)));
    ASSERT_TRUE(sub.ok());
    EXPECT_EQ(drain(*sub), range(published > 100 ? published - 100 : 0, published)) << round;
    EXPECT_EQ(sub->history_missed(), 0u);
    // More than the history promises: exactly what is gone is counted.
    auto greedy = TopicSubscriber::open(name, starting(o, TopicStart::history(1'000'000)));
    ASSERT_TRUE(greedy.ok());
    const std::vector<std::uint64_t> got = drain(*greedy);
    ASSERT_FALSE(got.empty());
    EXPECT_EQ(got.back(), published - 1);
    EXPECT_EQ(got.size() + greedy->history_missed(), published) << round;
    EXPECT_EQ(got.front(), greedy->history_missed());
  }
  // A ring too small for its history is refused at creation, saying what would do.
  TopicOptions too_small = history_topic(1000, 4096);
  const auto refused = TopicPublisher::open(channel_name("th_small"), too_small);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  // With no capacity given, the creator sizes the ring for the history.
  TopicOptions sized;
  sized.history = 10000;
  sized.max_message = 64;
  auto big = TopicPublisher::open(channel_name("th_sized"), sized);
  ASSERT_TRUE(big.ok()) << big.status();
  EXPECT_GE(big->max_message(), 64u);
}

// Two publisher processes write at full speed (lossy, history 1000); subscribers open meanwhile,
// in another process, asking for the last 1000: they get 1000 history messages (none missing,
// each publisher's in order), then live ones with nothing skipped (lossless) or every skip counted
// (lossy).
TEST(TopicHistoryMultiprocess, LateJoinersWhilePublishersWriteAtFullSpeed) {
  const std::string name = channel_name("th_mp_late");
  const TopicOptions o = history_topic(1000, 1 << 17);
  auto keeper = TopicSubscriber::open(name, o);
  ASSERT_TRUE(keeper.ok());
  struct Board {
    std::atomic<std::uint32_t> stop;
  };
  testing::SharedRegion region(sizeof(Board));
  Board* b = region.as<Board>();
  std::vector<pid_t> publishers;
  for (std::uint64_t w = 0; w < 2; ++w) {
    publishers.push_back(fork_child([&, w] {
      auto pub = TopicPublisher::open(name, o);
      if (!pub.ok()) return 2;
      std::vector<std::byte> buf(kMessage);
      for (std::uint64_t i = 0; b->stop.load() == 0; ++i) {
        testing::fill_message(buf, (w << 40) | i);
        if (pub->send(buf, 1s) != ChannelResult::kOk) return 3;
      }
      return 0;
    }));
  }
  std::this_thread::sleep_for(50ms);  // the ring has gone round many times by now
  for (const TopicDelivery delivery : {TopicDelivery::kLossless, TopicDelivery::kLossy}) {
    for (int join = 0; join < 5; ++join) {
      const pid_t joiner = fork_child([&] {
        auto sub = TopicSubscriber::open(name, starting(o, TopicStart::history(1000), delivery));
        if (!sub.ok()) return 2;
        if (sub->history_missed() != 0) return 3;
        std::vector<std::int64_t> last(2, -1);
        std::vector<std::byte> buf(kMessage);
        std::uint64_t got = 0;
        std::int64_t previous_sequence = -1;
        while (got < 20000) {
          std::size_t n = 0;
          const ChannelResult r = sub->receive(buf, &n, 5s);
          if (r != ChannelResult::kOk) return 4;
          std::uint64_t id = 0;
          if (!testing::check_message(std::span(buf).first(n), &id) || (id >> 40) > 1) return 5;
          const std::uint64_t w = id >> 40;
          const auto seq = static_cast<std::int64_t>(id & ((std::uint64_t{1} << 40) - 1));
          if (seq <= last[w]) return 6;  // each publisher's own order
          const auto sequence = static_cast<std::int64_t>(sub->last_sequence());
          // Lossless: consecutive topic sequence numbers from the first (history) message on.
          if (delivery == TopicDelivery::kLossless && previous_sequence >= 0 && sequence != previous_sequence + 1) {
            return 7;
          }
          previous_sequence = sequence;
          last[w] = seq;
          ++got;
        }
        // Lossless: the history it started with was held for it (a lossy one that falls a ring
        // behind while reading it has it overwritten, and counts that in history_missed()).
        if (delivery == TopicDelivery::kLossless && (sub->history_missed() != 0 || sub->lost() != 0)) return 8;
        return 0;
      });
      const testing::ChildResult r = wait_child(joiner, 60s);
      EXPECT_TRUE(r.ok()) << "joiner " << join << " exited with " << r.code;
    }
  }
  b->stop.store(1);
  for (pid_t p : publishers) EXPECT_TRUE(wait_child(p, 30s).ok());
}

// A lossless recorder and lossy displays on one topic, each in its own process: the publisher is
// held back by the recorder only; the recorder gets every message; a slow display loses messages
// and counts each exactly; a read-only display works beside them.
TEST(TopicDeliveryMultiprocess, LosslessRecorderAndLossyDisplaysOnOneTopic) {
  const std::string name = channel_name("td_mixed");
  TopicOptions o = testing::topic(8192, kMessage, /*lossless=*/false);
  o.permissions = 0644;
  struct Board {
    std::atomic<std::uint32_t> ready;
    std::atomic<std::uint32_t> stop;
    std::atomic<std::uint64_t> received[3];
    std::atomic<std::uint64_t> lost[3];
    std::atomic<std::uint64_t> bad[3];
  };
  testing::SharedRegion region(sizeof(Board));
  Board* b = region.as<Board>();
  auto pub = TopicPublisher::open(name, o);
  ASSERT_TRUE(pub.ok());
  const std::uint64_t total = 200000;
  auto subscriber = [&](int index, TopicDelivery delivery, bool read_only, bool slow) {
    return fork_child([&, index, delivery, read_only, slow] {
      TopicOptions mine = o;
      mine.delivery = delivery;
      mine.read_only = read_only;
      auto sub = TopicSubscriber::open(name, mine);
      if (!sub.ok()) return 2;
      if (sub->delivery() != delivery) return 3;
      b->ready.fetch_add(1);
      std::vector<std::byte> buf(kMessage);
      std::int64_t last = -1;
      while (b->stop.load() == 0) {
        std::size_t n = 0;
        const ChannelResult r = sub->receive(buf, &n, 5ms);
        if (r == ChannelResult::kTimedOut) continue;
        if (r != ChannelResult::kOk) return 4;
        std::uint64_t id = 0;
        if (!testing::check_message(std::span(buf).first(n), &id) || static_cast<std::int64_t>(id) <= last) {
          b->bad[index].fetch_add(1);
        }
        if (delivery == TopicDelivery::kLossless && static_cast<std::int64_t>(id) != last + 1) {
          b->bad[index].fetch_add(1);
        }
        last = static_cast<std::int64_t>(id);
        b->received[index].fetch_add(1);
        b->lost[index].store(sub->lost());
        if (slow && id % 100 == 0) std::this_thread::sleep_for(1ms);
      }
      b->lost[index].store(sub->lost());
      return 0;
    });
  };
  std::vector<pid_t> subscribers = {subscriber(0, TopicDelivery::kLossless, false, false),
                                    subscriber(1, TopicDelivery::kLossy, false, true),
                                    subscriber(2, TopicDelivery::kLossy, true, true)};
  while (b->ready.load() < 3) std::this_thread::sleep_for(1ms);
  send_ids(*pub, 0, total);
  // Every subscriber gets to the last message (received, or counted lost by a display).
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  auto accounted = [&](int i) { return b->received[i].load() + b->lost[i].load(); };
  while ((accounted(0) < total || accounted(1) < total || accounted(2) < total) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  auto stats = read_stats(name);
  b->stop.store(1);
  for (pid_t p : subscribers) EXPECT_TRUE(wait_child(p, 30s).ok());
  ASSERT_TRUE(stats.ok());
  int lossless_peers = 0;
  for (const PeerStats& p : stats->peers) lossless_peers += p.lossless ? 1 : 0;
  EXPECT_EQ(lossless_peers, 1);  // the read-only display is not registered; the other is lossy
  std::printf("recorder %llu; display %llu + lost %llu; read-only display %llu + lost %llu\n",
              static_cast<unsigned long long>(b->received[0].load()),
              static_cast<unsigned long long>(b->received[1].load()), static_cast<unsigned long long>(b->lost[1].load()),
              static_cast<unsigned long long>(b->received[2].load()), static_cast<unsigned long long>(b->lost[2].load()));
  EXPECT_EQ(b->received[0].load(), total);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(b->bad[i].load(), 0u) << i;
  EXPECT_EQ(b->received[1].load() + b->lost[1].load(), total);
  EXPECT_EQ(b->received[2].load() + b->lost[2].load(), total);
  EXPECT_GT(b->lost[1].load(), 0u);  // the display was slow, and nobody waited for it
}

TEST(TopicDelivery, ReadOnlySubscribersAreLossyByChoice) {
  const std::string name = channel_name("td_readonly");
  auto pub = TopicPublisher::open(name, testing::topic(4096, kMessage, /*lossless=*/true));
  ASSERT_TRUE(pub.ok());
  TopicOptions read_only = testing::topic(4096, kMessage);
  read_only.read_only = true;
  // The topic's default is lossless: a read-only subscriber must choose lossy.
  EXPECT_EQ(TopicSubscriber::open(name, read_only).status().code(), absl::StatusCode::kFailedPrecondition);
  read_only.delivery = TopicDelivery::kLossy;
  read_only.start = TopicStart::oldest();
  send_ids(*pub, 0, 3);
  auto sub = TopicSubscriber::open(name, read_only);
  ASSERT_TRUE(sub.ok()) << sub.status();
  EXPECT_EQ(sub->delivery(), TopicDelivery::kLossy);
  EXPECT_EQ(drain(*sub), range(0, 3));
  // The default (no choice) follows the creator's flag; TopicOptions::lossless also asks for it.
  auto by_default = TopicSubscriber::open(name, testing::topic(4096, kMessage));
  ASSERT_TRUE(by_default.ok());
  EXPECT_EQ(by_default->delivery(), TopicDelivery::kLossless);
}

}  // namespace
}  // namespace shmring
