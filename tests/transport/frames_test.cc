// Frame channels: in-place loan/publish and view, latest-frame semantics, pins that keep a frame
// intact, dead viewers' pins reclaimed, and 4 MiB frames across processes.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
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

FrameOptions frames(std::uint64_t count, std::uint64_t bytes) {
  FrameOptions o;
  o.capacity = count;
  o.max_message = bytes;
  return o;
}

void publish_frame(FramePublisher& pub, std::uint64_t id, std::size_t size) {
  FrameLoan loan = pub.loan(2s);
  ASSERT_TRUE(loan.ok()) << static_cast<int>(loan.result());
  testing::fill_message(loan.buffer().first(size), id);
  ASSERT_EQ(pub.publish(loan, size), ChannelResult::kOk);
}

TEST(FramesTest, SubscriberGetsTheNewestFrameAndCountsSkipped) {
  const std::string name = channel_name("f_latest");
  auto pub = FramePublisher::open(name, frames(3, 1 << 16));
  auto sub = FrameSubscriber::open(name);
  ASSERT_TRUE(pub.ok() && sub.ok()) << pub.status() << sub.status();
  EXPECT_FALSE(sub->try_receive_view().ok());
  publish_frame(*pub, 100, 4096);
  {
    FrameView v = sub->receive_view(1s);
    ASSERT_TRUE(v.ok());
    EXPECT_EQ(v.sequence(), 1u);
    std::uint64_t id = 0;
    EXPECT_TRUE(testing::check_message(v.data(), &id));
    EXPECT_EQ(id, 100u);
  }
  EXPECT_FALSE(sub->try_receive_view().ok());  // nothing newer
  for (std::uint64_t i = 0; i < 5; ++i) publish_frame(*pub, 200 + i, 8192);
  FrameView v = sub->try_receive_view();
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v.sequence(), 6u);
  EXPECT_EQ(sub->lost(), 4u);
  std::uint64_t id = 0;
  EXPECT_TRUE(testing::check_message(v.data(), &id));
  EXPECT_EQ(id, 204u);
}

TEST(FramesTest, PinnedFrameIsNeverOverwrittenAndFullPoolBlocksThePublisher) {
  const std::string name = channel_name("f_pin");
  auto pub = FramePublisher::open(name, frames(3, 1 << 14));
  auto a = FrameSubscriber::open(name);
  auto b = FrameSubscriber::open(name);
  ASSERT_TRUE(pub.ok() && a.ok() && b.ok());
  publish_frame(*pub, 1, 1 << 14);
  FrameView va = a->try_receive_view();
  ASSERT_TRUE(va.ok());
  for (std::uint64_t i = 2; i < 30; ++i) publish_frame(*pub, i, 1 << 14);  // two buffers rotate
  std::uint64_t id = 0;
  EXPECT_TRUE(testing::check_message(va.data(), &id));
  EXPECT_EQ(id, 1u);
  FrameView vb = b->try_receive_view();  // pins the latest buffer
  ASSERT_TRUE(vb.ok());
  publish_frame(*pub, 30, 1 << 14);  // the third buffer: now every buffer is latest or pinned
  FrameLoan blocked = pub->try_loan();
  EXPECT_EQ(blocked.result(), ChannelResult::kWouldBlock);
  EXPECT_EQ(pub->loan(20ms).result(), ChannelResult::kTimedOut);
  va.release();
  FrameLoan ok = pub->try_loan();
  EXPECT_TRUE(ok.ok());
  EXPECT_TRUE(testing::check_message(vb.data(), &id));
  EXPECT_EQ(id, 29u);
}

TEST(FramesTest, LimitsAndCopyingCalls) {
  const std::string name = channel_name("f_limits");
  EXPECT_EQ(FramePublisher::open(name, frames(2, 4096)).status().code(),
            absl::StatusCode::kInvalidArgument);
  auto pub = FramePublisher::open(name, frames(3, 4096));
  ASSERT_TRUE(pub.ok());
  EXPECT_EQ(FramePublisher::open(name, frames(3, 4096)).status().code(),
            absl::StatusCode::kFailedPrecondition);  // one live publisher
  EXPECT_EQ(FrameSubscriber::open(name, frames(3, 8192)).status().code(),
            absl::StatusCode::kFailedPrecondition);
  auto sub = FrameSubscriber::open(name);
  ASSERT_TRUE(sub.ok());
  std::vector<std::byte> big(4097);
  EXPECT_EQ(pub->send(big, 10ms), ChannelResult::kTooLarge);
  std::vector<std::byte> f(1000);
  testing::fill_message(f, 77);
  ASSERT_EQ(pub->send(f, 10ms), ChannelResult::kOk);
  std::vector<std::byte> out(4096);
  std::size_t n = 0;
  ASSERT_EQ(sub->receive(out, &n, 1s), ChannelResult::kOk);
  EXPECT_EQ(n, 1000u);
  std::uint64_t id = 0;
  EXPECT_TRUE(testing::check_message(std::span(out).first(n), &id));
  EXPECT_EQ(id, 77u);
  auto st = read_stats(name);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->kind, ChannelKind::kFrames);
  EXPECT_EQ(st->sent, 1u);
  EXPECT_EQ(st->received, 1u);
}

// Threads in one process (also run under ThreadSanitizer): a publisher rotating frames as fast as
// it can and three viewers holding views for a while; no view is ever torn.
// One pin word per subscriber: a second view while one is out would unpin the first and let the
// publisher overwrite it, so it is refused.
TEST(FramesTest, OneViewAtATimeKeepsTheFirstPinned) {
  const std::string name = channel_name("f_one_view");
  auto pub = FramePublisher::open(name, frames(3, 1 << 14));
  auto sub = FrameSubscriber::open(name);
  ASSERT_TRUE(pub.ok() && sub.ok());
  publish_frame(*pub, 1, 4096);
  FrameView first = sub->try_receive_view();
  ASSERT_TRUE(first.ok());
  publish_frame(*pub, 2, 4096);
  EXPECT_EQ(sub->try_receive_view().result(), ChannelResult::kWouldBlock);
  std::vector<std::byte> out(1 << 14);
  std::size_t n = 0;
  EXPECT_EQ(sub->try_receive(out, &n), ChannelResult::kWouldBlock);
  // With 3 buffers, the first pinned and the second latest, the publisher has exactly one buffer
  // to cycle through and never touches the first.
  for (std::uint64_t i = 3; i < 20; ++i) publish_frame(*pub, i, 4096);
  std::uint64_t id = 0;
  EXPECT_TRUE(testing::check_message(first.data(), &id));
  EXPECT_EQ(id, 1u);
  first.release();
  FrameView newest = sub->try_receive_view();
  ASSERT_TRUE(newest.ok());
  EXPECT_TRUE(testing::check_message(newest.data(), &id));
  EXPECT_EQ(id, 19u);
}

TEST(FramesTest, LoansAndViewsSurviveMovingTheirEndpointAndDieWithClose) {
  const std::string name = channel_name("f_move");
  auto opened = FramePublisher::open(name, frames(4, 1 << 14));
  auto sub_opened = FrameSubscriber::open(name);
  ASSERT_TRUE(opened.ok() && sub_opened.ok());
  FramePublisher pub = *std::move(opened);
  FrameSubscriber sub = *std::move(sub_opened);
  FrameLoan loan = pub.try_loan();
  ASSERT_TRUE(loan.ok());
  EXPECT_EQ(pub.try_loan().result(), ChannelResult::kWouldBlock);  // one loan at a time
  FramePublisher moved_pub = std::move(pub);
  FrameLoan moved_loan = std::move(loan);
  testing::fill_message(moved_loan.buffer().first(64), 42);
  EXPECT_EQ(pub.publish(moved_loan, 64), ChannelResult::kClosed);  // moved-from
  ASSERT_EQ(moved_pub.publish(moved_loan, 64), ChannelResult::kOk);
  FrameView view = sub.try_receive_view();
  ASSERT_TRUE(view.ok());
  FrameSubscriber moved_sub = std::move(sub);
  FrameView moved_view = std::move(view);
  std::uint64_t id = 0;
  EXPECT_TRUE(testing::check_message(moved_view.data(), &id));
  EXPECT_EQ(id, 42u);
  moved_view.release();
  // poll hands the newest frame in place; the copying try_ calls work like the others.
  ASSERT_EQ(moved_pub.try_send(std::vector<std::byte>(32, std::byte{7})), ChannelResult::kOk);
  std::size_t seen = 0;
  EXPECT_EQ(moved_sub.poll([&](std::span<const std::byte> f) { seen = f.size(); }, 10), 1u);
  EXPECT_EQ(seen, 32u);
  std::vector<std::byte> out(1 << 14);
  std::size_t n = 0;
  EXPECT_EQ(moved_sub.try_receive(out, &n), ChannelResult::kWouldBlock);
  // Closing with a loan and a view out: both become inert, the pin is dropped.
  FrameLoan orphan_loan = moved_pub.try_loan();
  ASSERT_TRUE(orphan_loan.ok());
  ASSERT_EQ(orphan_loan.buffer().size(), 1u << 14);
  moved_pub.close();
  EXPECT_FALSE(orphan_loan.ok());
  EXPECT_TRUE(orphan_loan.buffer().empty());
  auto pub2 = FramePublisher::open(name);
  ASSERT_TRUE(pub2.ok()) << pub2.status();
  publish_frame(*pub2, 43, 64);
  FrameView orphan_view = moved_sub.try_receive_view();
  ASSERT_TRUE(orphan_view.ok());
  moved_sub.close();
  EXPECT_FALSE(orphan_view.ok());
  orphan_view.release();  // harmless
}

// A forked child inherits copies of the parent's endpoints and views; settling those copies must
// not drop the parent's pin (the publisher would then overwrite the frame the parent is reading).
TEST(FramesMultiprocessTest, ForkedCopyOfAViewNeverUnpinsTheParents) {
  const std::string name = channel_name("f_fork_view");
  auto pub = FramePublisher::open(name, frames(3, 1 << 14));
  auto sub = FrameSubscriber::open(name);
  ASSERT_TRUE(pub.ok() && sub.ok());
  publish_frame(*pub, 1, 4096);
  FrameView view = sub->try_receive_view();
  ASSERT_TRUE(view.ok());
  const pid_t child = fork_child([&] {
    view.release();
    sub->close();
    return 0;
  });
  ASSERT_TRUE(wait_child(child, 10s).ok());
  for (std::uint64_t i = 2; i < 20; ++i) publish_frame(*pub, i, 4096);
  std::uint64_t id = 0;
  EXPECT_TRUE(testing::check_message(view.data(), &id));
  EXPECT_EQ(id, 1u);
}

// A subscriber cannot corrupt a frame: the pool is read-only in its process, so writing through a
// view kills the writer (SIGSEGV) and the frame stays intact for everyone else.
TEST(FramesMultiprocessTest, SubscriberCannotWriteThroughAView) {
  const std::string name = channel_name("f_readonly");
  auto pub = FramePublisher::open(name, frames(3, 1 << 14));
  auto witness = FrameSubscriber::open(name);
  ASSERT_TRUE(pub.ok() && witness.ok());
  publish_frame(*pub, 5, 4096);
  const pid_t child = fork_child([&] {
    testing::default_sigsegv();
    auto sub = FrameSubscriber::open(name);
    if (!sub.ok()) return 2;
    FrameView v = sub->receive_view(5s);
    if (!v.ok()) return 3;
    *reinterpret_cast<volatile std::byte*>(const_cast<std::byte*>(v.data().data())) = std::byte{0};
    return 4;  // not reached
  });
  const testing::ChildResult r = wait_child(child, 10s);
  EXPECT_TRUE(r.signaled);
  EXPECT_EQ(r.code, SIGSEGV);
  FrameView v = witness->try_receive_view();
  ASSERT_TRUE(v.ok());
  std::uint64_t id = 0;
  EXPECT_TRUE(testing::check_message(v.data(), &id));
  EXPECT_EQ(id, 5u);
}

// Frame calls with a timeout honour it and never return early.
TEST(FramesTest, BlockingCallsTimeOutNeverEarly) {
  const std::string name = channel_name("f_timeouts");
  auto pub = FramePublisher::open(name, frames(3, 1 << 14));
  auto a = FrameSubscriber::open(name);
  auto b = FrameSubscriber::open(name);
  ASSERT_TRUE(pub.ok() && a.ok() && b.ok());
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(a->receive_view(20ms).result(), ChannelResult::kTimedOut);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 20ms);
  // Two subscribers pin two frames and the third buffer is the latest: nothing to lend.
  publish_frame(*pub, 1, 64);
  FrameView va = a->try_receive_view();
  publish_frame(*pub, 2, 64);
  FrameView vb = b->try_receive_view();
  ASSERT_TRUE(va.ok() && vb.ok());
  publish_frame(*pub, 3, 64);
  start = std::chrono::steady_clock::now();
  EXPECT_EQ(pub->loan(20ms).result(), ChannelResult::kTimedOut);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 20ms);
}

TEST(FramesStressTest, ThreadsViewsAreNeverTorn) {
  const std::string name = channel_name("f_stress");
  auto pub = FramePublisher::open(name, frames(5, 1 << 12));
  ASSERT_TRUE(pub.ok());
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> torn{0};
  std::atomic<std::uint64_t> views{0};
  std::vector<std::thread> viewers;
  for (int i = 0; i < 3; ++i) {
    viewers.emplace_back([&] {
      auto sub = FrameSubscriber::open(name);
      ASSERT_TRUE(sub.ok());
      std::uint64_t last = 0;
      while (!stop.load()) {
        FrameView v = sub->receive_view(10ms);
        if (!v.ok()) continue;
        std::uint64_t id = 0;
        for (int pass = 0; pass < 3; ++pass) {  // hold it and look again: still intact
          if (!testing::check_message(v.data(), &id) || id != v.sequence()) torn.fetch_add(1);
        }
        if (v.sequence() <= last) torn.fetch_add(1);
        last = v.sequence();
        views.fetch_add(1);
      }
    });
  }
#if defined(__SANITIZE_THREAD__)
  constexpr std::uint64_t kFrames = 2000;
#else
  constexpr std::uint64_t kFrames = 50000;
#endif
  for (std::uint64_t i = 1; i <= kFrames; ++i) publish_frame(*pub, i, 1 << 12);
  stop = true;
  for (auto& t : viewers) t.join();
  EXPECT_EQ(torn.load(), 0u);
  EXPECT_GT(views.load(), 0u);
}

TEST(FramesMultiprocessTest, DeadViewersPinsAreReclaimed) {
  const std::string name = channel_name("f_deadpin");
  auto pub = FramePublisher::open(name, frames(3, 1 << 14));
  ASSERT_TRUE(pub.ok());
  struct Shared {
    std::atomic<std::uint32_t> pinned;
  };
  testing::SharedRegion region(sizeof(Shared));
  Shared* sh = region.as<Shared>();
  auto viewer = [&] {
    return fork_child([&] {
      auto sub = FrameSubscriber::open(name);
      if (!sub.ok()) return 2;
      FrameView v = sub->receive_view(2s);
      if (!v.ok()) return 3;
      sh->pinned.fetch_add(1);
      for (;;) pause();
    });
  };
  publish_frame(*pub, 1, 100);
  const pid_t a = viewer();
  while (sh->pinned.load() < 1) std::this_thread::sleep_for(1ms);
  publish_frame(*pub, 2, 100);
  const pid_t b = viewer();
  while (sh->pinned.load() < 2) std::this_thread::sleep_for(1ms);
  publish_frame(*pub, 3, 100);
  EXPECT_EQ(pub->try_loan().result(), ChannelResult::kWouldBlock);
  kill(a, SIGKILL);
  kill(b, SIGKILL);
  EXPECT_TRUE(wait_child(a, 5s).signaled);
  EXPECT_TRUE(wait_child(b, 5s).signaled);
  FrameLoan loan = pub->loan(2s);
  EXPECT_TRUE(loan.ok());
  auto st = read_stats(name);
  ASSERT_TRUE(st.ok());
  EXPECT_GE(st->peers_reclaimed, 1u);
}

TEST(FramesMultiprocessTest, FourMiBFramesAtSixtyPerSecondWithASlowViewer) {
  const std::string name = channel_name("f_video");
  constexpr std::size_t kFrame = 4 << 20;
  constexpr std::uint64_t kFrames = 60;  // one second of video
  auto pub = FramePublisher::open(name, frames(4, kFrame));
  ASSERT_TRUE(pub.ok()) << pub.status();
  struct Shared {
    std::atomic<std::uint32_t> ready;
    std::atomic<std::uint32_t> done;
    std::atomic<std::uint64_t> received[2];
    std::atomic<std::uint64_t> lost[2];
    std::atomic<std::uint64_t> torn[2];
  };
  testing::SharedRegion region(sizeof(Shared));
  Shared* sh = region.as<Shared>();
  std::vector<pid_t> pids;
  for (int s = 0; s < 2; ++s) {
    pids.push_back(fork_child([&, s] {
      auto sub = FrameSubscriber::open(name);
      if (!sub.ok()) return 2;
      sh->ready.fetch_add(1);
      while (sh->done.load() == 0) {  // (under a sanitizer a frame can take long to paint)
        FrameView v = sub->receive_view(100ms);
        if (!v.ok()) continue;
        std::uint64_t id = 0;
        if (v.data().size() != kFrame || !testing::check_message(v.data(), &id) ||
            id != v.sequence()) {
          sh->torn[s].fetch_add(1);
        }
        sh->received[s].fetch_add(1);
        if (s == 1) std::this_thread::sleep_for(50ms);  // slow viewer: always shows the newest
        if (v.sequence() == kFrames) break;
      }
      sh->lost[s].store(sub->lost());
      return 0;
    }));
  }
  while (sh->ready.load() < 2) std::this_thread::sleep_for(1ms);
  const auto start = std::chrono::steady_clock::now();
  for (std::uint64_t i = 1; i <= kFrames; ++i) {
    std::this_thread::sleep_until(start + i * 16667us);
    publish_frame(*pub, i, kFrame);
  }
  std::this_thread::sleep_for(200ms);
  sh->done.store(1);
  for (pid_t p : pids) EXPECT_TRUE(wait_child(p, 30s).ok());
  for (int s = 0; s < 2; ++s) {
    std::printf("viewer %d: frames %llu, skipped %llu, torn %llu\n", s,
                static_cast<unsigned long long>(sh->received[s].load()),
                static_cast<unsigned long long>(sh->lost[s].load()),
                static_cast<unsigned long long>(sh->torn[s].load()));
    EXPECT_EQ(sh->torn[s].load(), 0u);
    EXPECT_GT(sh->received[s].load(), 0u);
  }
  EXPECT_LT(sh->received[1].load(), kFrames);  // the slow one skipped to the newest frames
}

}  // namespace
}  // namespace shmring
