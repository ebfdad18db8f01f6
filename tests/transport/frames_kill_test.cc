// kill -9 loops for frame channels: 100 viewer kills (their pins never block the publisher for
// long) and 100 publisher kills (viewers never see a torn frame; the next publisher resumes).
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <random>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "shmring/transport/channel.h"
#include "shmring/transport/frame.h"
#include "transport_test_util.h"

namespace shmring {
namespace {

using namespace std::chrono_literals;
using testing::channel_name;
using testing::fork_child;
using testing::wait_child;

constexpr std::size_t kFrame = 64 * 1024;

FrameOptions options() {
  FrameOptions o;
  o.capacity = 3;  // with 2 viewers pinning, the publisher has exactly one spare buffer
  o.max_message = kFrame;
  o.max_peers = 32;
  return o;
}

struct Board {
  std::atomic<std::uint32_t> stop;
  std::atomic<std::uint64_t> views;
  std::atomic<std::uint64_t> torn;
  std::atomic<std::uint64_t> backwards;  // a frame shown again, or an older one after a newer
};

// Takes views and holds each for a while (so kills often land while a frame is pinned). Frame ids
// grow with publication order (also across publisher incarnations), so every view must show a
// larger id than the one before.
int viewer(const std::string& name, Board* b) {
  auto sub = FrameSubscriber::open(name, options());
  if (!sub.ok()) return 2;
  bool first = true;
  std::uint64_t last_id = 0;
  while (b->stop.load() == 0) {
    FrameView v = sub->receive_view(20ms);
    if (!v.ok()) continue;
    std::uint64_t id = 0;
    if (v.data().size() != kFrame || !testing::check_message(v.data(), &id)) b->torn.fetch_add(1);
    std::this_thread::sleep_for(std::chrono::microseconds(200));
    std::uint64_t again = 0;  // still intact after holding it
    if (!testing::check_message(v.data(), &again) || again != id) b->torn.fetch_add(1);
    if (!first && id <= last_id) b->backwards.fetch_add(1);
    first = false;
    last_id = id;
    b->views.fetch_add(1);
  }
  return 0;
}

TEST(FramesKillTest, HundredViewerKillsNeverBlockThePublisherForLong) {
  const std::string name = channel_name("fk_viewers");
  auto pub = FramePublisher::open(name, options());
  ASSERT_TRUE(pub.ok());
  testing::SharedRegion region(sizeof(Board));
  Board* b = region.as<Board>();
  std::vector<pid_t> viewers;
  for (int i = 0; i < 2; ++i) viewers.push_back(fork_child([&] { return viewer(name, b); }));
  std::mt19937_64 rng(3);
  int kills = 0;
  int bad = 0;
  std::uint64_t timeouts = 0;
  std::int64_t worst_us = 0;
  std::uint64_t id = 1;
  auto next_kill = std::chrono::steady_clock::now() + 20ms;
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (kills < 100 && std::chrono::steady_clock::now() < deadline) {
    const auto t0 = std::chrono::steady_clock::now();
    FrameLoan loan = pub->loan(2s);
    const auto t1 = std::chrono::steady_clock::now();
    worst_us = std::max<std::int64_t>(
        worst_us, std::chrono::duration_cast<std::chrono::microseconds>(t1 - t0).count());
    if (!loan.ok()) {
      ++timeouts;
    } else {
      testing::fill_message(loan.buffer(), id++);
      pub->publish(loan, kFrame);
    }
    std::this_thread::sleep_for(100us);
    if (t1 >= next_kill) {
      const std::size_t k = rng() % viewers.size();
      kill(viewers[k], SIGKILL);
      if (!wait_child(viewers[k], 10s).signaled) ++bad;
      viewers[k] = fork_child([&] { return viewer(name, b); });
      ++kills;
      next_kill = t1 + std::chrono::microseconds(5000 + rng() % 40000);
    }
  }
  b->stop.store(1);
  for (pid_t p : viewers) {
    if (!wait_child(p, 10s).ok()) ++bad;
  }
  std::printf("frames kill -9 viewers: kills %d, frames %llu, views %llu, loan timeouts %llu, worst "
              "loan %lld us, torn %llu, backwards %llu\n",
              kills, static_cast<unsigned long long>(id - 1),
              static_cast<unsigned long long>(b->views.load()),
              static_cast<unsigned long long>(timeouts), static_cast<long long>(worst_us),
              static_cast<unsigned long long>(b->torn.load()),
              static_cast<unsigned long long>(b->backwards.load()));
  EXPECT_GE(kills, 100);
  EXPECT_EQ(bad, 0);
  EXPECT_EQ(timeouts, 0u);
  EXPECT_EQ(b->torn.load(), 0u);
  EXPECT_EQ(b->backwards.load(), 0u);
  EXPECT_GT(b->views.load(), 0u);
}

TEST(FramesKillTest, HundredPublisherKillsNeverShowATornFrame) {
  const std::string name = channel_name("fk_pubs");
  testing::SharedRegion region(sizeof(Board));
  Board* b = region.as<Board>();
  auto keeper = FrameSubscriber::open(name, options());  // creates the channel, never pins
  ASSERT_TRUE(keeper.ok());
  std::vector<pid_t> viewers;
  for (int i = 0; i < 2; ++i) viewers.push_back(fork_child([&] { return viewer(name, b); }));
  std::mt19937_64 rng(5);
  auto spawn = [&](std::uint64_t inc) {
    return fork_child([&, inc] {
      absl::StatusOr<FramePublisher> pub = FramePublisher::open(name, options());
      for (int i = 0; i < 200 && !pub.ok(); ++i) {
        std::this_thread::sleep_for(1ms);
        pub = FramePublisher::open(name, options());
      }
      if (!pub.ok()) return 2;
      for (std::uint64_t seq = 0;; ++seq) {
        FrameLoan loan = pub->loan(2s);
        if (!loan.ok()) return 3;
        testing::fill_message(loan.buffer(), (inc << 32) | seq);  // killed mid-fill: never shown
        pub->publish(loan, kFrame);
        std::this_thread::sleep_for(200us);
      }
    });
  };
  int kills = 0;
  int bad = 0;
  pid_t publisher = spawn(0);
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (kills < 100 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::microseconds(5000 + rng() % 40000));
    kill(publisher, SIGKILL);
    if (!wait_child(publisher, 10s).signaled) ++bad;
    ++kills;
    publisher = spawn(static_cast<std::uint64_t>(kills));
  }
  kill(publisher, SIGKILL);
  wait_child(publisher, 10s);
  b->stop.store(1);
  for (pid_t p : viewers) {
    if (!wait_child(p, 10s).ok()) ++bad;
  }
  std::printf("frames kill -9 publishers: kills %d, views %llu, torn %llu, repeated or backwards %llu\n",
              kills, static_cast<unsigned long long>(b->views.load()),
              static_cast<unsigned long long>(b->torn.load()),
              static_cast<unsigned long long>(b->backwards.load()));
  EXPECT_GE(kills, 100);
  EXPECT_EQ(bad, 0);
  EXPECT_EQ(b->torn.load(), 0u);
  EXPECT_EQ(b->backwards.load(), 0u);
  EXPECT_GT(b->views.load(), 0u);
}

}  // namespace
}  // namespace shmring
