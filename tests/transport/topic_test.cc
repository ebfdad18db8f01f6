// Topic channels: fan-out, lossy loss accounting, lossless back-pressure and eviction, read-only
// subscribers, one publisher at a time; plus multi-process fan-out and dead-subscriber recovery.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
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
using testing::topic;
using testing::fork_child;
using testing::wait_child;

std::vector<std::byte> message(std::uint64_t seq, std::size_t size = 32) {
  std::vector<std::byte> m(size);
  testing::fill_message(m, seq);
  return m;
}

TEST(TopicTest, EverySubscriberSeesEveryMessageInOrder) {
  const std::string name = channel_name("t_fanout");
  auto pub = TopicPublisher::open(name, topic(4096, 64));
  ASSERT_TRUE(pub.ok()) << pub.status();
  auto a = TopicSubscriber::open(name, topic(4096, 64));
  auto b = TopicSubscriber::open(name);  // zero limits: whatever the channel has
  ASSERT_TRUE(a.ok() && b.ok()) << a.status() << b.status();
  for (std::uint64_t i = 0; i < 50; ++i) ASSERT_EQ(pub->try_send(message(i)), ChannelResult::kOk);
  for (TopicSubscriber* s : {&*a, &*b}) {
    std::vector<std::byte> buf(s->max_message());
    for (std::uint64_t i = 0; i < 50; ++i) {
      std::size_t n = 0;
      ASSERT_EQ(s->receive(buf, &n, 1s), ChannelResult::kOk);
      std::uint64_t id = 0;
      ASSERT_TRUE(testing::check_message(std::span(buf).first(n), &id));
      EXPECT_EQ(id, i);
    }
    std::size_t n = 0;
    EXPECT_EQ(s->try_receive(buf, &n), ChannelResult::kWouldBlock);
    EXPECT_EQ(s->lost(), 0u);
  }
  std::vector<std::byte> big(65);
  EXPECT_EQ(pub->try_send(big), ChannelResult::kTooLarge);
}

TEST(TopicTest, LappedLossySubscriberIsToldExactlyHowManyItLost) {
  const std::string name = channel_name("t_lapped");
  auto pub = TopicPublisher::open(name, topic(1024, 32));
  auto sub = TopicSubscriber::open(name, topic(1024, 32));
  ASSERT_TRUE(pub.ok() && sub.ok());
  constexpr std::uint64_t kTotal = 1000;  // far more than 1024 bytes of 64-byte records
  for (std::uint64_t i = 0; i < kTotal; ++i) ASSERT_EQ(pub->try_send(message(i)), ChannelResult::kOk);
  std::vector<std::byte> buf(32);
  std::uint64_t got = 0;
  std::uint64_t last = 0;
  std::size_t n = 0;
  while (sub->try_receive(buf, &n) == ChannelResult::kOk) {
    std::uint64_t id = 0;
    ASSERT_TRUE(testing::check_message(std::span(buf).first(n), &id));
    if (got > 0) {
      EXPECT_EQ(id, last + 1);
    }
    last = id;
    ++got;
  }
  EXPECT_EQ(last, kTotal - 1);
  EXPECT_GT(sub->lost(), 0u);
  EXPECT_EQ(got + sub->lost(), kTotal);
  auto st = read_stats(name);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->lost, sub->lost());
  EXPECT_EQ(st->sent, kTotal);
}

TEST(TopicTest, LosslessPublisherWaitsForTheSlowestSubscriber) {
  const std::string name = channel_name("t_lossless");
  auto pub = TopicPublisher::open(name, topic(1024, 32, true));
  auto sub = TopicSubscriber::open(name, topic(1024, 32, true));
  ASSERT_TRUE(pub.ok() && sub.ok());
  std::uint64_t sent = 0;
  while (pub->try_send(message(sent)) == ChannelResult::kOk) ++sent;
  EXPECT_GT(sent, 10u);
  EXPECT_EQ(pub->send(message(sent), 20ms), ChannelResult::kTimedOut);
  std::thread reader([&] {
    std::vector<std::byte> buf(32);
    for (std::uint64_t i = 0; i < sent + 100; ++i) {
      std::size_t n = 0;
      ASSERT_EQ(sub->receive(buf, &n, 5s), ChannelResult::kOk);
      std::uint64_t id = 0;
      ASSERT_TRUE(testing::check_message(std::span(buf).first(n), &id));
      ASSERT_EQ(id, i);
    }
  });
  for (std::uint64_t i = sent; i < sent + 100; ++i) {
    ASSERT_EQ(pub->send(message(i), 5s), ChannelResult::kOk);
  }
  reader.join();
  EXPECT_EQ(sub->lost(), 0u);
}

TEST(TopicTest, StalledLosslessSubscriberIsEvictedAfterTheBound) {
  const std::string name = channel_name("t_evict");
  TopicOptions o = topic(1024, 32, true);
  o.evict_after = 30ms;
  auto pub = TopicPublisher::open(name, o);
  auto stalled = TopicSubscriber::open(name, o);
  ASSERT_TRUE(pub.ok() && stalled.ok());
  for (std::uint64_t i = 0; i < 200; ++i) {
    ASSERT_EQ(pub->send(message(i), 2s), ChannelResult::kOk) << i;
  }
  EXPECT_EQ(pub->evictions(), 1u);
  auto st = read_stats(name);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->evictions, 1u);
  std::vector<std::byte> buf(32);
  std::size_t n = 0;
  ChannelResult r = ChannelResult::kOk;
  for (int i = 0; i < 100 && r == ChannelResult::kOk; ++i) r = stalled->try_receive(buf, &n);
  EXPECT_EQ(r, ChannelResult::kEvicted);
}

// evict_lag: a live subscriber that falls more than that many bytes behind is evicted although it
// does not hold the publisher back yet; one that keeps up is not.
TEST(TopicTest, LaggingLosslessSubscriberIsEvictedBeyondTheLagBound) {
  const std::string name = channel_name("t_evict_lag");
  TopicOptions o = topic(8192, 32, true);
  o.evict_lag = 2600;  // 64-byte records (32-byte messages): about 40 messages
  auto pub = TopicPublisher::open(name, o);
  auto lagging = TopicSubscriber::open(name, o);
  auto keeping_up = TopicSubscriber::open(name, o);
  ASSERT_TRUE(pub.ok() && lagging.ok() && keeping_up.ok());
  std::vector<std::byte> buf(32);
  std::size_t n = 0;
  for (std::uint64_t i = 0; i < 40; ++i) {
    ASSERT_EQ(pub->try_send(message(i)), ChannelResult::kOk);
    ASSERT_EQ(keeping_up->try_receive(buf, &n), ChannelResult::kOk);
  }
  EXPECT_EQ(pub->evictions(), 0u);  // 2560 bytes behind: within the bound
  for (std::uint64_t i = 40; i < 100; ++i) {
    ASSERT_EQ(pub->try_send(message(i)), ChannelResult::kOk);  // never held back
    ASSERT_EQ(keeping_up->try_receive(buf, &n), ChannelResult::kOk);
  }
  EXPECT_EQ(pub->evictions(), 1u);
  ChannelResult r = ChannelResult::kOk;
  for (int i = 0; i < 200 && r == ChannelResult::kOk; ++i) r = lagging->try_receive(buf, &n);
  EXPECT_EQ(r, ChannelResult::kEvicted);
  EXPECT_EQ(keeping_up->lost(), 0u);
  auto st = read_stats(name);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->evictions, 1u);
}

// poll() hands at most `max` messages, in both modes; a subscriber's lag (read_stats) is the bytes
// it has yet to read, counted from where it joined.
TEST(TopicTest, PollHandsAtMostMaxAndLagCountsUnreadBytes) {
  for (const bool lossless : {false, true}) {
    const std::string name = channel_name(lossless ? "t_poll_ll" : "t_poll_ly");
    auto pub = TopicPublisher::open(name, topic(4096, 32, lossless));
    ASSERT_TRUE(pub.ok());
    for (std::uint64_t i = 0; i < 5; ++i) ASSERT_EQ(pub->try_send(message(i)), ChannelResult::kOk);
    auto sub = TopicSubscriber::open(name, topic(4096, 32, lossless));  // joins at 320
    ASSERT_TRUE(sub.ok());
    for (std::uint64_t i = 5; i < 15; ++i) ASSERT_EQ(pub->try_send(message(i)), ChannelResult::kOk);
    auto lag_of_subscriber = [&]() -> std::uint64_t {
      auto st = read_stats(name);
      EXPECT_TRUE(st.ok());
      for (const PeerStats& p : st->peers) {
        if (p.role == PeerRole::kSubscriber) return p.lag;
      }
      return ~std::uint64_t{0};
    };
    EXPECT_EQ(lag_of_subscriber(), 10u * 64u);  // a 32-byte message takes one 64-byte line
    std::uint64_t next = 5;
    auto handler = [&](std::span<const std::byte> m) {
      std::uint64_t id = 0;
      EXPECT_TRUE(testing::check_message(m, &id));
      EXPECT_EQ(id, next++);
    };
    EXPECT_EQ(sub->poll(handler, 3), 3u);
    EXPECT_EQ(lag_of_subscriber(), 7u * 64u);
    EXPECT_EQ(sub->poll(handler, 100), 7u);
    EXPECT_EQ(sub->poll(handler, 100), 0u);
    EXPECT_EQ(lag_of_subscriber(), 0u);
    EXPECT_EQ(sub->received(), 10u);
  }
}

TEST(TopicTest, PublisherDeadMidMessageIsSkippedWhenTheNextOneOpens) {
  // A publisher killed between its claim and its commit leaves a message no subscriber may wait
  // for; the next publisher's open recovers it: lossless readers see no gap in the messages, one
  // sequence number carries none (abandoned), and the numbering goes on.
  const std::string name = channel_name("t_deadmid");
  auto sub = TopicSubscriber::open(name, topic(1024, 32, true));
  ASSERT_TRUE(sub.ok());
  const pid_t child = fork_child([&] {
    auto pub = TopicPublisher::open(name, topic(1024, 32, true));
    if (!pub.ok()) return 2;
    for (std::uint64_t i = 0; i < 3; ++i) {
      if (pub->try_send(message(i)) != ChannelResult::kOk) return 3;
    }
    TopicLoan loan = pub->try_loan(32);
    if (!loan.ok()) return 4;
    std::memset(loan.buffer().data(), 0x5A, 16);
    _exit(0);  // dies holding the loan: no publish, no close
  });
  ASSERT_TRUE(wait_child(child, 10s).ok());
  std::vector<std::byte> buf(32);
  for (std::uint64_t i = 0; i < 3; ++i) {
    std::size_t n = 0;
    ASSERT_EQ(sub->receive(buf, &n, 1s), ChannelResult::kOk) << i;
  }
  std::size_t n = 0;
  EXPECT_EQ(sub->try_receive(buf, &n), ChannelResult::kWouldBlock);  // waits at the dead claim
  auto next = TopicPublisher::open(name, topic(1024, 32, true));
  ASSERT_TRUE(next.ok());
  ASSERT_EQ(next->try_send(message(3)), ChannelResult::kOk);
  ASSERT_EQ(sub->receive(buf, &n, 1s), ChannelResult::kOk);
  std::uint64_t id = 0;
  ASSERT_TRUE(testing::check_message(std::span(buf).first(n), &id));
  EXPECT_EQ(id, 3u);
  EXPECT_EQ(sub->last_sequence(), 4u);  // 3 was the dead publisher's unfinished message
  EXPECT_EQ(sub->gaps_passed(), 1u);
  EXPECT_EQ(sub->lost(), 0u);
  EXPECT_EQ(sub->last_publisher(), next->publisher_id());
  auto stats = read_stats(name);
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->abandoned, 1u);
}

TEST(TopicTest, MaxPublishersLiveAndDeliveryIsEachSubscribersOwn) {
  const std::string name = channel_name("t_onepub");
  auto pub = TopicPublisher::open(name, topic(1024, 32));
  ASSERT_TRUE(pub.ok());
  EXPECT_EQ(pub->max_publishers(), 1u);
  auto second = TopicPublisher::open(name, topic(1024, 32));
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(second.status().message().find("max_publishers"), std::string_view::npos) << second.status();
  // A lossless subscriber on a lossy-by-default topic: its own choice.
  auto lossless = TopicSubscriber::open(name, topic(1024, 32, true));
  ASSERT_TRUE(lossless.ok()) << lossless.status();
  EXPECT_EQ(lossless->delivery(), TopicDelivery::kLossless);
  auto lossy = TopicSubscriber::open(name, topic(1024, 32));
  ASSERT_TRUE(lossy.ok());
  EXPECT_EQ(lossy->delivery(), TopicDelivery::kLossy);
  TopicOptions other = topic(1024, 32);
  other.max_publishers = 4;
  EXPECT_EQ(TopicPublisher::open(name, other).status().code(), absl::StatusCode::kFailedPrecondition);
  pub->close();
  EXPECT_TRUE(TopicPublisher::open(name, topic(1024, 32)).ok());
}

TEST(TopicTest, ReadOnlySubscriberWorksWhereItMayNotWrite) {
  const std::string name = channel_name("t_readonly");
  TopicOptions o = topic(4096, 32);
  o.permissions = 0644;  // other users may read, not write
  auto pub = TopicPublisher::open(name, o);
  ASSERT_TRUE(pub.ok());
  ASSERT_EQ(pub->try_send(message(7)), ChannelResult::kOk);
  const pid_t child = fork_child([&] {
    if (setgid(65534) != 0 || setuid(65534) != 0) return 98;
    TopicOptions rw;
    if (TopicSubscriber::open(name, rw).status().code() != absl::StatusCode::kPermissionDenied) {
      return 2;
    }
    TopicOptions ro;
    ro.read_only = true;
    ro.start = TopicStart::latest();
    ro.trusted_owners = {0};  // root made it, 0644
    ro.permissions = 0644;
    auto sub = TopicSubscriber::open(name, ro);
    if (!sub.ok()) return 3;
    std::vector<std::byte> buf(32);
    std::size_t n = 0;
    if (sub->receive(buf, &n, 1s) != ChannelResult::kOk) return 4;
    std::uint64_t id = 0;
    if (!testing::check_message(std::span(buf).first(n), &id) || id != 7) return 5;
    // And it keeps receiving (it polls: it cannot register on the wake word).
    if (sub->receive(buf, &n, 2s) != ChannelResult::kOk) return 6;
    if (!testing::check_message(std::span(buf).first(n), &id) || id != 8) return 7;
    return 0;
  });
  std::this_thread::sleep_for(200ms);
  ASSERT_EQ(pub->try_send(message(8)), ChannelResult::kOk);
  const testing::ChildResult r = wait_child(child, 10s);
  EXPECT_TRUE(r.ok()) << "child exit " << r.code;
}

// Threads in one process (also run under ThreadSanitizer): a publisher and three subscribers on a
// lossless topic (every message, in order) and on a lossy one (in order, received + lost = sent).
TEST(TopicStressTest, ThreadsLosslessAndLossy) {
  for (const bool lossless : {true, false}) {
    const std::string name = channel_name(lossless ? "t_stress_ll" : "t_stress_ly");
#if defined(__SANITIZE_THREAD__)
    constexpr std::uint64_t kTotal = 5000;
#else
    constexpr std::uint64_t kTotal = 100000;
#endif
    TopicOptions o = topic(4096, 64, lossless);
    o.wait.spin_iterations = 100;
    auto pub = TopicPublisher::open(name, o);
    ASSERT_TRUE(pub.ok());
    std::vector<TopicSubscriber> subs;
    for (int i = 0; i < 3; ++i) {
      auto s = TopicSubscriber::open(name, o);
      ASSERT_TRUE(s.ok());
      subs.push_back(*std::move(s));
    }
    std::atomic<std::uint64_t> bad{0};
    std::vector<std::uint64_t> got(3, 0);
    std::vector<std::thread> threads;
    for (int i = 0; i < 3; ++i) {
      threads.emplace_back([&, i] {
        std::vector<std::byte> buf(64);
        std::uint64_t next = 0;
        for (;;) {
          std::size_t n = 0;
          const ChannelResult r = subs[i].receive(buf, &n, 200ms);
          if (r == ChannelResult::kTimedOut) break;
          std::uint64_t id = 0;
          if (r != ChannelResult::kOk || !testing::check_message(std::span(buf).first(n), &id) ||
              id < next) {
            bad.fetch_add(1);
            continue;
          }
          if (lossless && id != next) bad.fetch_add(1);
          next = id + 1;
          ++got[i];
          if (id == kTotal - 1) break;
        }
      });
    }
    for (std::uint64_t i = 0; i < kTotal; ++i) {
      ASSERT_EQ(pub->send(message(i, 64), 5s), ChannelResult::kOk);
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(bad.load(), 0u);
    for (int i = 0; i < 3; ++i) {
      if (lossless) {
        EXPECT_EQ(got[i], kTotal);
      } else {
        EXPECT_EQ(got[i] + subs[i].lost(), kTotal);
      }
    }
  }
}

TEST(TopicMultiprocessTest, FanOutThreeSubscriberProcessesOneSlow) {
  const std::string name = channel_name("t_mp_fanout");
  constexpr std::uint64_t kTotal = 50000;
  TopicOptions o = topic(1 << 16, 64);
  auto pub = TopicPublisher::open(name, o);
  ASSERT_TRUE(pub.ok());
  struct Shared {
    std::atomic<std::uint32_t> ready;
    std::atomic<std::uint32_t> done;
    std::atomic<std::uint32_t> finished;
    std::atomic<std::uint64_t> received[3];
    std::atomic<std::uint64_t> lost[3];
    std::atomic<std::uint64_t> bad[3];  // torn, duplicated or out of order
  };
  testing::SharedRegion region(sizeof(Shared));
  Shared* sh = region.as<Shared>();
  std::vector<pid_t> pids;
  for (int s = 0; s < 3; ++s) {
    pids.push_back(fork_child([&, s] {
      auto sub = TopicSubscriber::open(name, o);
      if (!sub.ok()) return 2;
      sh->ready.fetch_add(1);
      std::vector<std::byte> buf(64);
      std::uint64_t next = 0;
      while (sh->done.load() == 0) {
        std::size_t n = 0;
        const ChannelResult r = sub->receive(buf, &n, 100ms);
        if (r == ChannelResult::kTimedOut) continue;
        if (r != ChannelResult::kOk) return 3;
        std::uint64_t id = 0;
        if (!testing::check_message(std::span(buf).first(n), &id) || id < next) {
          sh->bad[s].fetch_add(1);
        } else {
          next = id + 1;
        }
        sh->received[s].fetch_add(1);
        if (s == 2) std::this_thread::sleep_for(20us);  // the slow one
        if (id == kTotal - 1) break;
      }
      sh->lost[s].store(sub->lost());
      sh->finished.fetch_add(1);
      return 0;
    }));
  }
  while (sh->ready.load() < 3) std::this_thread::sleep_for(1ms);
  for (std::uint64_t i = 0; i < kTotal; ++i) {
    ASSERT_EQ(pub->try_send(message(i, 64)), ChannelResult::kOk);
    if (i % 256 == 0) std::this_thread::sleep_for(50us);
  }
  // Subscribers stop at the last message; `done` only rescues one that could never see it.
  const auto rescue = std::chrono::steady_clock::now() + 20s;
  while (sh->finished.load() < 3 && std::chrono::steady_clock::now() < rescue) {
    std::this_thread::sleep_for(1ms);
  }
  sh->done.store(1);
  for (pid_t p : pids) EXPECT_TRUE(wait_child(p, 30s).ok());
  for (int s = 0; s < 3; ++s) {
    std::printf("subscriber %d: received %llu, lost %llu\n", s,
                static_cast<unsigned long long>(sh->received[s].load()),
                static_cast<unsigned long long>(sh->lost[s].load()));
    EXPECT_EQ(sh->bad[s].load(), 0u);
    EXPECT_EQ(sh->received[s].load() + sh->lost[s].load(), kTotal);
  }
}

TEST(TopicMultiprocessTest, StoppedLosslessSubscriberIsNotTakenForDead) {
  // A SIGSTOPped subscriber is alive: it holds the publisher back (no eviction without
  // evict_after), and after SIGCONT it carries on with nothing lost.
  const std::string name = channel_name("t_mp_sigstop");
  TopicOptions o = topic(1024, 32, true);
  o.dead_check_interval = 1ms;
  auto pub = TopicPublisher::open(name, o);
  ASSERT_TRUE(pub.ok());
  struct Shared {
    std::atomic<std::uint32_t> ready;
    std::atomic<std::uint64_t> received;
    std::atomic<std::uint64_t> bad;
  };
  testing::SharedRegion region(sizeof(Shared));
  Shared* sh = region.as<Shared>();
  constexpr std::uint64_t kTotal = 500;
  const pid_t child = fork_child([&] {
    auto sub = TopicSubscriber::open(name, o);
    if (!sub.ok()) return 2;
    sh->ready.store(1);
    raise(SIGSTOP);
    std::vector<std::byte> buf(32);
    for (std::uint64_t i = 0; i < kTotal; ++i) {
      std::size_t n = 0;
      if (sub->receive(buf, &n, 5s) != ChannelResult::kOk) return 3;
      std::uint64_t id = 0;
      if (!testing::check_message(std::span(buf).first(n), &id) || id != i) sh->bad.fetch_add(1);
      sh->received.fetch_add(1);
    }
    return sub->lost() == 0 ? 0 : 4;
  });
  while (sh->ready.load() == 0) std::this_thread::sleep_for(1ms);
  std::uint64_t sent = 0;
  while (pub->try_send(message(sent)) == ChannelResult::kOk) ++sent;
  // Far longer than dead_check_interval: the stopped subscriber is alive, so it still holds.
  EXPECT_EQ(pub->send(message(sent), 200ms), ChannelResult::kTimedOut);
  kill(child, SIGCONT);
  for (; sent < kTotal; ++sent) ASSERT_EQ(pub->send(message(sent), 5s), ChannelResult::kOk);
  EXPECT_TRUE(wait_child(child, 10s).ok());
  EXPECT_EQ(sh->received.load(), kTotal);
  EXPECT_EQ(sh->bad.load(), 0u);
  EXPECT_EQ(pub->evictions(), 0u);
}

// evict_after bounds how long a subscriber holds the publisher back, whatever calls the publisher
// makes meanwhile: sends with a timeout shorter than the bound, or try_send loops (each call used
// to start the count again, so a stopped subscriber held the publisher for ever).
TEST(TopicMultiprocessTest, EvictAfterHoldsAcrossShortCallsAndTrySendLoops) {
  for (const bool try_loop : {false, true}) {
    SCOPED_TRACE(try_loop ? "try_send loop" : "send with 20 ms timeouts");
    const std::string name = channel_name(try_loop ? "t_mp_evict_try" : "t_mp_evict_short");
    TopicOptions o = topic(1024, 32, true);
    o.evict_after = 100ms;
    auto pub = TopicPublisher::open(name, o);
    ASSERT_TRUE(pub.ok());
    testing::SharedRegion region(sizeof(std::atomic<std::uint32_t>));
    auto* ready = region.as<std::atomic<std::uint32_t>>();
    const pid_t child = fork_child([&] {
      auto sub = TopicSubscriber::open(name, o);
      if (!sub.ok()) return 2;
      ready->store(1);
      raise(SIGSTOP);  // alive, registered, reading nothing
      return 0;
    });
    while (ready->load() == 0) std::this_thread::sleep_for(1ms);
    std::uint64_t sent = 0;
    while (pub->try_send(message(sent)) == ChannelResult::kOk) ++sent;  // the ring is full now
    // Each call is far shorter than evict_after; together they are far longer (bounded: ~5 s).
    ChannelResult r = ChannelResult::kWouldBlock;
    for (int call = 0; call < 250'000 && r != ChannelResult::kOk; ++call) {
      r = try_loop ? pub->try_send(message(sent)) : pub->send(message(sent), 20ms);
      if (try_loop && r != ChannelResult::kOk) std::this_thread::sleep_for(20us);
      if (!try_loop && call > 250) break;
    }
    EXPECT_EQ(r, ChannelResult::kOk) << "the stopped subscriber was never evicted";
    EXPECT_EQ(pub->evictions(), 1u);
    kill(child, SIGKILL);
    wait_child(child, 10s);
  }
}

TEST(TopicMultiprocessTest, KilledLosslessSubscriberStopsHoldingThePublisher) {
  const std::string name = channel_name("t_mp_deadsub");
  TopicOptions o = topic(1024, 32, true);
  o.dead_check_interval = 2ms;
  auto pub = TopicPublisher::open(name, o);
  auto live = TopicSubscriber::open(name, o);
  ASSERT_TRUE(pub.ok() && live.ok());
  struct Shared {
    std::atomic<std::uint32_t> ready;
  };
  testing::SharedRegion region(sizeof(Shared));
  Shared* sh = region.as<Shared>();
  const pid_t child = fork_child([&] {
    auto sub = TopicSubscriber::open(name, o);
    if (!sub.ok()) return 2;
    sh->ready.store(1);
    for (;;) pause();  // never reads
  });
  while (sh->ready.load() == 0) std::this_thread::sleep_for(1ms);
  std::vector<std::byte> buf(32);
  std::size_t n = 0;
  std::uint64_t sent = 0;
  for (;;) {  // fill until the silent subscriber holds the publisher back
    const ChannelResult r = pub->try_send(message(sent));
    if (r != ChannelResult::kOk) break;
    ++sent;
    ASSERT_EQ(live->try_receive(buf, &n), ChannelResult::kOk);
  }
  EXPECT_EQ(pub->send(message(sent), 50ms), ChannelResult::kTimedOut);
  kill(child, SIGKILL);
  EXPECT_TRUE(wait_child(child, 5s).signaled);
  const auto start = std::chrono::steady_clock::now();
  ASSERT_EQ(pub->send(message(sent), 5s), ChannelResult::kOk);
  const auto waited = std::chrono::steady_clock::now() - start;
  std::printf("publisher released %lld us after the subscriber's death was reaped\n",
              static_cast<long long>(std::chrono::duration_cast<std::chrono::microseconds>(waited).count()));
  ++sent;
  for (std::uint64_t i = 0; i < 1000; ++i) {
    ASSERT_EQ(pub->send(message(sent + i), 1s), ChannelResult::kOk);
    ASSERT_EQ(live->receive(buf, &n, 1s), ChannelResult::kOk);
  }
  EXPECT_EQ(live->lost(), 0u);
  auto st = read_stats(name);
  ASSERT_TRUE(st.ok());
  EXPECT_GE(st->peers_reclaimed, 1u);
}

}  // namespace
}  // namespace shmring
