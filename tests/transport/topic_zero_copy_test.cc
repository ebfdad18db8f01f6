// Topic zero-copy: publisher loans and subscriber views in both modes, their misuse, their life
// across moves and closes, small receive buffers, and in-place reads against a lapping publisher
// in other processes (views validated on release, read-only for lossy subscribers).
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
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
using testing::topic;
using testing::fork_child;
using testing::wait_child;

// Loans exactly `size` bytes, fills message `id` in place and publishes it.
ChannelResult publish_in_place(TopicPublisher& pub, std::uint64_t id, std::size_t size) {
  TopicLoan loan = pub.try_loan(size);
  if (!loan.ok()) return loan.result();
  testing::fill_message(loan.buffer(), id);
  return pub.publish(loan, size);
}

// The id of an intact view, or ~0.
std::uint64_t id_of(const TopicView& view) {
  std::uint64_t id = 0;
  return testing::check_message(view.data(), &id) ? id : ~std::uint64_t{0};
}

TEST(TopicZeroCopy, LoansAndViewsCarryEveryMessageInBothModes) {
  for (const bool lossless : {false, true}) {
    const std::string name = channel_name(lossless ? "tz_rt_ll" : "tz_rt_ly");
    auto pub = TopicPublisher::open(name, topic(4096, 256, lossless));
    auto viewer = TopicSubscriber::open(name, topic(4096, 256, lossless));
    auto copier = TopicSubscriber::open(name, topic(4096, 256, lossless));
    ASSERT_TRUE(pub.ok() && viewer.ok() && copier.ok());
    for (std::uint64_t i = 0; i < 40; ++i) {
      const std::size_t size = 16 + (i % 5) * 24;
      if (i % 2 == 0) {
        ASSERT_EQ(publish_in_place(*pub, i, size), ChannelResult::kOk);
      } else {
        // A loan of the default size (max_message), published short.
        TopicLoan loan = pub->try_loan();
        ASSERT_TRUE(loan.ok()) << to_string(loan.result());
        ASSERT_EQ(loan.buffer().size(), 256u);
        testing::fill_message(loan.buffer().first(size), i);
        ASSERT_EQ(pub->publish(loan, size), ChannelResult::kOk);
        EXPECT_FALSE(loan.ok());  // spent
      }
      TopicView v = viewer->try_receive_view();
      ASSERT_TRUE(v.ok()) << to_string(v.result());
      EXPECT_EQ(v.data().size(), size);
      EXPECT_EQ(id_of(v), i);
      EXPECT_EQ(v.release(), ChannelResult::kOk);
      EXPECT_EQ(v.release(), ChannelResult::kOk);  // idempotent
      std::vector<std::byte> buf(256);
      std::size_t n = 0;
      ASSERT_EQ(copier->try_receive(buf, &n), ChannelResult::kOk);
      std::uint64_t id = 0;
      EXPECT_TRUE(testing::check_message(std::span(buf).first(n), &id));
      EXPECT_EQ(id, i);
    }
    EXPECT_EQ(viewer->try_receive_view().result(), ChannelResult::kWouldBlock);
    EXPECT_EQ(viewer->received(), 40u);
    EXPECT_EQ(viewer->lost(), 0u);
    EXPECT_EQ(pub->stats().sent, 40u);
    EXPECT_EQ(viewer->stats().received, 40u);
  }
}

TEST(TopicZeroCopy, LoanMisuseIsRefusedAndAbandonedLoansAreNeverSeen) {
  const std::string name = channel_name("tz_misuse");
  auto pub = TopicPublisher::open(name, topic(4096, 128));
  auto other = TopicPublisher::open(channel_name("tz_misuse_other"), topic(4096, 128));
  auto sub = TopicSubscriber::open(name, topic(4096, 128));
  ASSERT_TRUE(pub.ok() && other.ok() && sub.ok());
  EXPECT_EQ(pub->try_loan(129).result(), ChannelResult::kTooLarge);
  {
    TopicLoan loan = pub->try_loan(64);
    ASSERT_TRUE(loan.ok());
    EXPECT_EQ(pub->try_loan(8).result(), ChannelResult::kWouldBlock);  // one loan at a time
    const std::vector<std::byte> m(16);
    EXPECT_EQ(pub->try_send(m), ChannelResult::kWouldBlock);  // the loan's space comes first
    EXPECT_EQ(pub->publish(loan, 65), ChannelResult::kTooLarge);  // kept
    EXPECT_TRUE(loan.ok());
    EXPECT_EQ(other->publish(loan, 8), ChannelResult::kClosed);  // not its loan
    other->abandon(loan);                                         // no-op
    EXPECT_TRUE(loan.ok());
    std::memset(loan.buffer().data(), 0x5a, 64);
  }  // destroyed unpublished: abandoned
  TopicLoan abandoned = pub->try_loan(32);
  ASSERT_TRUE(abandoned.ok());
  pub->abandon(abandoned);
  EXPECT_FALSE(abandoned.ok());
  EXPECT_EQ(pub->publish(abandoned, 8), ChannelResult::kClosed);
  EXPECT_EQ(sub->try_receive_view().result(), ChannelResult::kWouldBlock);  // nothing published
  ASSERT_EQ(publish_in_place(*pub, 77, 32), ChannelResult::kOk);
  TopicView v = sub->try_receive_view();
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(id_of(v), 77u);
  EXPECT_EQ(sub->try_receive_view().result(), ChannelResult::kWouldBlock);  // one view at a time
  std::vector<std::byte> buf(128);
  std::size_t n = 0;
  EXPECT_EQ(sub->try_receive(buf, &n), ChannelResult::kWouldBlock);
  EXPECT_EQ(v.release(), ChannelResult::kOk);
  EXPECT_EQ(pub->stats().sent, 1u);
}

TEST(TopicZeroCopy, LoansAndViewsSurviveMovingTheirEndpointAndDieWithClose) {
  const std::string name = channel_name("tz_move");
  auto opened = TopicPublisher::open(name, topic(4096, 128, true));
  auto sub_opened = TopicSubscriber::open(name, topic(4096, 128, true));
  ASSERT_TRUE(opened.ok() && sub_opened.ok());
  TopicPublisher pub = *std::move(opened);
  TopicSubscriber sub = *std::move(sub_opened);
  TopicLoan loan = pub.try_loan(32);
  ASSERT_TRUE(loan.ok());
  TopicPublisher moved_pub = std::move(pub);  // the loan stays good
  TopicLoan moved_loan = std::move(loan);
  testing::fill_message(moved_loan.buffer(), 5);
  EXPECT_EQ(pub.publish(moved_loan, 32), ChannelResult::kClosed);  // moved-from publisher
  ASSERT_EQ(moved_pub.publish(moved_loan, 32), ChannelResult::kOk);
  TopicView view = sub.try_receive_view();
  ASSERT_TRUE(view.ok());
  TopicSubscriber moved_sub = std::move(sub);
  TopicView moved_view = std::move(view);
  EXPECT_EQ(id_of(moved_view), 5u);
  EXPECT_EQ(moved_view.release(), ChannelResult::kOk);
  EXPECT_EQ(moved_sub.received(), 1u);
  // Closing the endpoint makes an outstanding loan or view inert; destroying them later is safe.
  TopicLoan orphan_loan = moved_pub.try_loan(16);
  ASSERT_TRUE(orphan_loan.ok());
  ASSERT_EQ(publish_in_place(moved_pub, 6, 32), ChannelResult::kWouldBlock);  // loan out
  moved_pub.abandon(orphan_loan);
  ASSERT_EQ(publish_in_place(moved_pub, 6, 32), ChannelResult::kOk);
  orphan_loan = moved_pub.try_loan(16);
  ASSERT_TRUE(orphan_loan.ok());
  TopicView orphan_view = moved_sub.try_receive_view();
  ASSERT_TRUE(orphan_view.ok());
  moved_pub.close();
  moved_sub.close();
  EXPECT_FALSE(orphan_loan.ok());
  EXPECT_TRUE(orphan_loan.buffer().empty());
  EXPECT_EQ(orphan_view.release(), ChannelResult::kClosed);
}

TEST(TopicZeroCopy, LosslessViewHoldsThePublisherUntilReleased) {
  const std::string name = channel_name("tz_hold");
  auto pub = TopicPublisher::open(name, topic(1024, 32, true));
  auto sub = TopicSubscriber::open(name, topic(1024, 32, true));
  ASSERT_TRUE(pub.ok() && sub.ok());
  std::uint64_t published = 0;
  while (publish_in_place(*pub, published, 32) == ChannelResult::kOk) ++published;
  EXPECT_EQ(published, 1024u / 64u);  // a 32-byte message takes one 64-byte line
  EXPECT_EQ(pub->try_loan(32).result(), ChannelResult::kWouldBlock);
  TopicView v = sub->try_receive_view();
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(pub->try_loan(32).result(), ChannelResult::kWouldBlock);  // still viewed
  EXPECT_EQ(id_of(v), 0u);
  // A loan with a timeout is granted once another thread releases the view.
  std::thread releaser([&] {
    std::this_thread::sleep_for(20ms);
    EXPECT_EQ(v.release(), ChannelResult::kOk);
  });
  TopicLoan loan = pub->loan(32, 5s);
  releaser.join();
  ASSERT_TRUE(loan.ok()) << to_string(loan.result());
  testing::fill_message(loan.buffer(), published);
  ASSERT_EQ(pub->publish(loan, 32), ChannelResult::kOk);
  // poll() hands the rest in place.
  std::uint64_t expect = 1;
  const std::size_t handled = sub->poll(
      [&](std::span<const std::byte> m) {
        std::uint64_t id = 0;
        EXPECT_TRUE(testing::check_message(m, &id));
        EXPECT_EQ(id, expect++);
      },
      1000);
  EXPECT_EQ(handled, published);
  EXPECT_EQ(sub->lost(), 0u);
}

TEST(TopicZeroCopy, LossyViewOverwrittenWhileHeldSaysSoAndCountsTheLoss) {
  const std::string name = channel_name("tz_overwritten");
  auto pub = TopicPublisher::open(name, topic(1024, 32));
  auto sub = TopicSubscriber::open(name, topic(1024, 32));
  ASSERT_TRUE(pub.ok() && sub.ok());
  ASSERT_EQ(publish_in_place(*pub, 0, 32), ChannelResult::kOk);
  TopicView v = sub->try_receive_view();
  ASSERT_TRUE(v.ok());
  for (std::uint64_t i = 1; i <= 100; ++i) ASSERT_EQ(publish_in_place(*pub, i, 32), ChannelResult::kOk);
  EXPECT_EQ(v.release(), ChannelResult::kOverwritten);
  EXPECT_EQ(sub->received(), 0u);
  EXPECT_EQ(sub->lost(), 1u);
  TopicView next = sub->try_receive_view();  // rides out the lap: the newest message
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(id_of(next), 100u);
  EXPECT_EQ(next.release(), ChannelResult::kOk);
  EXPECT_EQ(sub->received() + sub->lost(), 101u);
  auto st = read_stats(name);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->lost, 100u);
}

TEST(TopicZeroCopy, ReceiveBufferNeedsToFitTheMessageNotTheChannelLimit) {
  const std::string name = channel_name("tz_small_buf");
  auto pub = TopicPublisher::open(name, topic(4096, 1024));
  auto sub = TopicSubscriber::open(name, topic(4096, 1024));
  ASSERT_TRUE(pub.ok() && sub.ok());
  ASSERT_EQ(pub->try_send(std::vector<std::byte>(24)), ChannelResult::kOk);
  ASSERT_EQ(pub->try_send(std::vector<std::byte>(600)), ChannelResult::kOk);
  std::vector<std::byte> small(64);
  std::size_t n = 0;
  ASSERT_EQ(sub->try_receive(small, &n), ChannelResult::kOk);
  EXPECT_EQ(n, 24u);
  n = 0;
  EXPECT_EQ(sub->try_receive(small, &n), ChannelResult::kTooLarge);
  EXPECT_EQ(n, 600u);  // what it needs; not consumed
  std::vector<std::byte> big(n);
  ASSERT_EQ(sub->receive(big, &n, 1s), ChannelResult::kOk);
  EXPECT_EQ(n, 600u);
  EXPECT_EQ(sub->received(), 2u);
  EXPECT_EQ(sub->lost(), 0u);
}

// Every blocking topic call honours its timeout and never returns early, in every wait strategy.
TEST(TopicZeroCopy, BlockingCallsTimeOutNeverEarly) {
  for (WaitStrategy strategy : {WaitStrategy::kBusySpin, WaitStrategy::kYield, WaitStrategy::kPark,
                                WaitStrategy::kHybrid}) {
    const std::string name = channel_name("tz_timeouts");
    TopicOptions o = topic(1024, 32, true);
    o.wait.strategy = strategy;
    auto pub = TopicPublisher::open(name, o);
    auto sub = TopicSubscriber::open(name, o);
    ASSERT_TRUE(pub.ok() && sub.ok());
    auto never_early = [](auto&& call, ChannelResult expected) {
      const auto start = std::chrono::steady_clock::now();
      EXPECT_EQ(call(), expected);
      EXPECT_GE(std::chrono::steady_clock::now() - start, 20ms);
    };
    std::vector<std::byte> buf(32);
    std::size_t n = 0;
    never_early([&] { return sub->receive(buf, &n, 20ms); }, ChannelResult::kTimedOut);
    never_early([&] { return sub->receive_view(20ms).result(); }, ChannelResult::kTimedOut);
    while (pub->try_send(buf) == ChannelResult::kOk) {
    }
    never_early([&] { return pub->send(buf, 20ms); }, ChannelResult::kTimedOut);
    never_early([&] { return pub->loan(32, 20ms).result(); }, ChannelResult::kTimedOut);
  }
}

// A forked child's copy of a lossless view must not move the parent's cursor (the publisher could
// then overwrite the message the parent is viewing).
TEST(TopicZeroCopyMultiprocess, ForkedCopyOfAViewNeverReleasesTheParents) {
  const std::string name = channel_name("tz_fork_view");
  auto pub = TopicPublisher::open(name, topic(1024, 32, true));
  auto sub = TopicSubscriber::open(name, topic(1024, 32, true));
  ASSERT_TRUE(pub.ok() && sub.ok());
  std::uint64_t published = 0;
  while (publish_in_place(*pub, published, 32) == ChannelResult::kOk) ++published;
  TopicView view = sub->try_receive_view();
  ASSERT_TRUE(view.ok());
  const pid_t child = fork_child([&] {
    view.release();
    sub->close();
    return 0;
  });
  ASSERT_TRUE(wait_child(child, 10s).ok());
  EXPECT_EQ(pub->try_loan(32).result(), ChannelResult::kWouldBlock);  // still held by the parent
  EXPECT_EQ(id_of(view), 0u);
  EXPECT_EQ(view.release(), ChannelResult::kOk);
  EXPECT_EQ(publish_in_place(*pub, published, 32), ChannelResult::kOk);
}

// A lossy subscriber's view is read-only memory: a subscriber process that writes through it dies
// (SIGSEGV) and the message stays intact for everyone else.
TEST(TopicZeroCopyMultiprocess, LossySubscriberCannotWriteThroughAView) {
  const std::string name = channel_name("tz_readonly");
  auto pub = TopicPublisher::open(name, topic(4096, 64));
  auto witness = TopicSubscriber::open(name, topic(4096, 64));
  ASSERT_TRUE(pub.ok() && witness.ok());
  testing::SharedRegion region(sizeof(std::atomic<std::uint32_t>));
  auto* ready = region.as<std::atomic<std::uint32_t>>();
  const pid_t child = fork_child([&] {
    testing::default_sigsegv();
    auto sub = TopicSubscriber::open(name, topic(4096, 64));
    if (!sub.ok()) return 2;
    ready->store(1);
    TopicView v = sub->receive_view(5s);
    if (!v.ok()) return 3;
    auto* p = const_cast<std::byte*>(v.data().data());
    *reinterpret_cast<volatile std::byte*>(p) = std::byte{0xee};
    return 4;  // not reached
  });
  while (ready->load() == 0) std::this_thread::sleep_for(1ms);
  ASSERT_EQ(publish_in_place(*pub, 9, 64), ChannelResult::kOk);
  const testing::ChildResult r = wait_child(child, 10s);
  EXPECT_TRUE(r.signaled);
  EXPECT_EQ(r.code, SIGSEGV);
  TopicView v = witness->try_receive_view();
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(id_of(v), 9u);
  EXPECT_EQ(v.release(), ChannelResult::kOk);
}

// The seqlock check end to end: a publisher loaning in place laps two viewing subscriber processes
// (one slow) over and over. A view whose release() says kOk must be intact; every message is
// either received or counted lost.
TEST(TopicZeroCopyMultiprocess, ViewsAgainstALappingPublisherNeverAcceptATornMessage) {
  const std::string name = channel_name("tz_mp_lap");
  constexpr std::uint64_t kTotal = 200000;
  constexpr std::size_t kSize = 256;
  TopicOptions o = topic(8192, kSize);
  auto pub = TopicPublisher::open(name, o);
  ASSERT_TRUE(pub.ok());
  struct Board {
    std::atomic<std::uint32_t> ready;
    std::atomic<std::uint32_t> done;
    std::atomic<std::uint64_t> received[2];
    std::atomic<std::uint64_t> lost[2];
    std::atomic<std::uint64_t> overwritten[2];
    std::atomic<std::uint64_t> torn_accepted[2];
    std::atomic<std::uint64_t> out_of_order[2];
  };
  testing::SharedRegion region(sizeof(Board));
  Board* b = region.as<Board>();
  std::vector<pid_t> pids;
  for (int s = 0; s < 2; ++s) {
    pids.push_back(fork_child([&, s] {
      auto sub = TopicSubscriber::open(name, o);
      if (!sub.ok()) return 2;
      b->ready.fetch_add(1);
      std::uint64_t next = 0;
      for (;;) {
        TopicView v = sub->receive_view(100ms);
        if (v.result() == ChannelResult::kTimedOut) {
          if (b->done.load() != 0) break;
          continue;
        }
        if (!v.ok()) return 3;
        std::uint64_t id = 0;
        bool intact = testing::check_message(v.data(), &id);
        // The slow one dwells on the view (re-reading it) so that the publisher laps it.
        for (int again = 0; s == 1 && again < 20; ++again) {
          std::uint64_t same = 0;
          intact = testing::check_message(v.data(), &same) && same == id && intact;
        }
        const ChannelResult r = v.release();
        if (r == ChannelResult::kOverwritten) {
          b->overwritten[s].fetch_add(1);
          continue;
        }
        if (r != ChannelResult::kOk) return 4;
        if (!intact) {
          b->torn_accepted[s].fetch_add(1);
          continue;
        }
        if (id < next) b->out_of_order[s].fetch_add(1);
        next = id + 1;
        if (id == kTotal - 1) break;
      }
      b->received[s].store(sub->received());
      b->lost[s].store(sub->lost());
      return 0;
    }));
  }
  while (b->ready.load() < 2) std::this_thread::sleep_for(1ms);
  for (std::uint64_t i = 0; i < kTotal; ++i) {
    ASSERT_EQ(publish_in_place(*pub, i, kSize), ChannelResult::kOk);
    if (i % 4096 == 0) std::this_thread::sleep_for(100us);
  }
  std::this_thread::sleep_for(200ms);
  b->done.store(1);
  for (pid_t p : pids) EXPECT_TRUE(wait_child(p, 30s).ok());
  for (int s = 0; s < 2; ++s) {
    std::printf("viewer %d: received %llu, lost %llu (of which overwritten while viewed %llu)\n", s,
                static_cast<unsigned long long>(b->received[s].load()),
                static_cast<unsigned long long>(b->lost[s].load()),
                static_cast<unsigned long long>(b->overwritten[s].load()));
    EXPECT_EQ(b->torn_accepted[s].load(), 0u);
    EXPECT_EQ(b->out_of_order[s].load(), 0u);
    // Once the publisher stops, a lapped viewer jumps to the last message and keeps it intact, so
    // every message is accounted for.
    EXPECT_EQ(b->received[s].load() + b->lost[s].load(), kTotal);
  }
}

}  // namespace
}  // namespace shmring
