// Pollable descriptors (wait_fd) and WaitSet: readiness, arming, one wake-up per arming, room for
// held-back senders, peer death (real processes, SIGKILL), eviction, removal, fork, and what a
// killed waiter leaves behind.
#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <signal.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <memory>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "shmring/core/detail/liveness_file.h"
#include "shmring/core/shared_memory.h"
#include "shmring/core/stable_hash.h"
#include "shmring/transport/frame.h"
#include "shmring/transport/queue.h"
#include "shmring/transport/topic.h"
#include "shmring/transport/wait_set.h"
#include "transport_test_util.h"

namespace shmring {
namespace {

using namespace std::chrono_literals;
using testing::channel_name;
using testing::bytes_of;

bool readable(int fd, int timeout_ms = 0) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN) != 0;
}

ChannelStats stats_of(const std::string& name) {
  absl::StatusOr<ChannelStats> st = read_stats(name);
  EXPECT_TRUE(st.ok()) << st.status();
  return st.ok() ? *st : ChannelStats{};
}

// ".<file tag>." as the channel's wait files spell it (wait_files.h): a hash of the segment's
// native key (ChannelSegment::file_tag); empty if the channel is gone.
std::string channel_id_hex(const std::string& name) {
  SharedMemory shm(channel_key(name));
  if (!shm.attach(AccessMode::kReadOnly)) return {};
  const std::uint64_t tag = stable_hash64(shm.native_key());
  char hex[20];
  std::snprintf(hex, sizeof(hex), ".%016llx.", static_cast<unsigned long long>(tag));
  return hex;
}

// The wait files (lifelines, sockets) of a channel.
std::vector<std::string> wait_files_of(const std::string& name) {
  const std::string hex = channel_id_hex(name);
  if (hex.empty()) return {};
  std::vector<std::string> out;
  for (const std::string& f : testing::dev_shm_entries("shmring-")) {
    // Not the channel's liveness file (liveness_file.h), which carries the same tag.
    if (f.rfind(shmring::detail::kLivenessPrefix, 0) == 0) continue;
    if (f.find(hex) != std::string::npos) out.push_back(f);
  }
  return out;
}

int drain(TopicSubscriber& sub) {
  std::vector<std::byte> buf(sub.max_message());
  std::size_t n = 0;
  int count = 0;
  for (;;) {
    const ChannelResult r = sub.try_receive(buf, &n);
    if (r != ChannelResult::kOk) {
      EXPECT_EQ(r, ChannelResult::kWouldBlock);
      return count;
    }
    ++count;
  }
}

TEST(WaitFdTest, SubscriberStartsReadableIsQuietOnceDrainedAndWakesOncePerArming) {
  const std::string name = channel_name("wfd_topic");
  auto pub = TopicPublisher::open(name, testing::topic(1 << 16, 256));
  ASSERT_TRUE(pub.ok()) << pub.status();
  auto sub = TopicSubscriber::open(name, testing::topic(1 << 16, 256));
  ASSERT_TRUE(sub.ok()) << sub.status();
  const int fd = sub->wait_fd();
  ASSERT_GE(fd, 0) << std::strerror(errno);
  EXPECT_EQ(sub->wait_fd(), fd);  // the same one every time
  EXPECT_TRUE(readable(fd)) << "a new descriptor starts readable, so the first drain arms it";
  EXPECT_EQ(drain(*sub), 0);
  EXPECT_FALSE(readable(fd));
  EXPECT_EQ(stats_of(name).receivers_armed, 1u);
  EXPECT_EQ(stats_of(name).receivers_parked, 0u);

  ASSERT_EQ(pub->try_send(bytes_of("one")), ChannelResult::kOk);
  EXPECT_TRUE(readable(fd, 5000));
  EXPECT_EQ(stats_of(name).receivers_armed, 0u) << "the first message fired (disarmed) it";
  for (int i = 0; i < 100; ++i) ASSERT_EQ(pub->try_send(bytes_of("more")), ChannelResult::kOk);
  EXPECT_EQ(stats_of(name).receivers_armed, 0u);
  EXPECT_TRUE(has(sub->take_wait_events(), WaitEvent::kData));
  EXPECT_EQ(drain(*sub), 101);
  EXPECT_FALSE(readable(fd)) << "the drain that ended in kWouldBlock re-armed it";
  EXPECT_EQ(stats_of(name).receivers_armed, 1u);
  EXPECT_EQ(sub->take_wait_events(), WaitEvent::kNone);
}

TEST(WaitFdTest, NoDescriptorNoArmingNoCost) {
  const std::string name = channel_name("wfd_none");
  auto pub = TopicPublisher::open(name, testing::topic(1 << 16, 256));
  auto sub = TopicSubscriber::open(name, testing::topic(1 << 16, 256));
  ASSERT_TRUE(pub.ok() && sub.ok());
  EXPECT_EQ(drain(*sub), 0);
  ASSERT_EQ(pub->try_send(bytes_of("x")), ChannelResult::kOk);
  const ChannelStats st = stats_of(name);
  EXPECT_EQ(st.receivers_armed, 0u);
  EXPECT_EQ(st.senders_armed, 0u);
  EXPECT_TRUE(wait_files_of(name).size() == 2u) << "only the two lifelines";
}

TEST(WaitFdTest, QueueProducerHearsAboutRoom) {
  const std::string name = channel_name("wfd_room");
  QueueOptions o;
  o.capacity = 2;
  o.max_message = 16;
  auto producer = QueueProducer::open(name, o);
  auto consumer = QueueConsumer::open(name, o);
  ASSERT_TRUE(producer.ok() && consumer.ok());
  const int fd = producer->wait_fd();
  ASSERT_GE(fd, 0);
  while (producer->try_send(bytes_of("item")) == ChannelResult::kOk) {
  }
  EXPECT_FALSE(readable(fd)) << "held back and armed";
  EXPECT_EQ(stats_of(name).senders_armed, 1u);
  std::byte buf[16];
  std::size_t n = 0;
  ASSERT_EQ(consumer->try_receive(buf, &n), ChannelResult::kOk);
  EXPECT_TRUE(readable(fd, 5000));
  EXPECT_TRUE(has(producer->take_wait_events(), WaitEvent::kRoom));
  EXPECT_EQ(producer->try_send(bytes_of("again")), ChannelResult::kOk);
}

TEST(WaitFdTest, LosslessPublisherHearsAboutRoom) {
  const std::string name = channel_name("wfd_lossless");
  auto pub = TopicPublisher::open(name, testing::topic(4096, 256, /*lossless=*/true));
  auto sub = TopicSubscriber::open(name, testing::topic(4096, 256, true));
  ASSERT_TRUE(pub.ok() && sub.ok());
  const int fd = pub->wait_fd();
  ASSERT_GE(fd, 0);
  const std::string msg(200, 'm');
  int sent = 0;
  while (pub->try_send(bytes_of(msg)) == ChannelResult::kOk) ++sent;
  ASSERT_GT(sent, 0);
  EXPECT_FALSE(readable(fd));
  std::vector<std::byte> buf(256);
  std::size_t n = 0;
  ASSERT_EQ(sub->try_receive(buf, &n), ChannelResult::kOk);
  EXPECT_TRUE(readable(fd, 5000));
  EXPECT_EQ(pub->try_send(bytes_of(msg)), ChannelResult::kOk);
}

TEST(WaitFdTest, FrameSubscriberHearsAboutNewFrames) {
  const std::string name = channel_name("wfd_frames");
  FrameOptions o;
  o.capacity = 3;
  o.max_message = 1024;
  auto pub = FramePublisher::open(name, o);
  auto sub = FrameSubscriber::open(name, o);
  ASSERT_TRUE(pub.ok() && sub.ok());
  const int fd = sub->wait_fd();
  ASSERT_GE(fd, 0);
  EXPECT_FALSE(sub->try_receive_view().ok());
  EXPECT_FALSE(readable(fd));
  ASSERT_EQ(pub->try_send(bytes_of("frame")), ChannelResult::kOk);
  EXPECT_TRUE(readable(fd, 5000));
  FrameView v = sub->try_receive_view();
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v.release(), ChannelResult::kOk);
  EXPECT_FALSE(sub->try_receive_view().ok());
  EXPECT_FALSE(readable(fd));
}

TEST(WaitFdTest, ReadOnlySubscriberHasNoDescriptor) {
  const std::string name = channel_name("wfd_ro");
  auto pub = TopicPublisher::open(name, testing::topic(4096, 256));
  ASSERT_TRUE(pub.ok());
  TopicOptions o = testing::topic(4096, 256);
  o.read_only = true;
  auto sub = TopicSubscriber::open(name, o);
  ASSERT_TRUE(sub.ok()) << sub.status();
  errno = 0;
  EXPECT_EQ(sub->wait_fd(), -1);
  EXPECT_EQ(errno, ENOTSUP);
  auto set = WaitSet::create();
  ASSERT_TRUE(set.ok());
  EXPECT_EQ(set->add(*sub, 1).code(), absl::StatusCode::kFailedPrecondition);
  TopicSubscriber closed;
  errno = 0;
  EXPECT_EQ(closed.wait_fd(), -1);
  EXPECT_EQ(errno, EBADF);
  EXPECT_EQ(closed.take_wait_events(), WaitEvent::kNone);
}

TEST(WaitFdTest, ConsumerInAnotherProcessSleepsInEpollAndGetsEverything) {
  const std::string name = channel_name("wfd_xproc");
  QueueOptions o;
  o.capacity = 64;
  o.max_message = 16;
  auto consumer = QueueConsumer::open(name, o);
  ASSERT_TRUE(consumer.ok());
  const int fd = consumer->wait_fd();
  ASSERT_GE(fd, 0);
  constexpr int kItems = 20000;
  const pid_t child = testing::fork_child([&] {
    auto producer = QueueProducer::open(name, o);
    if (!producer.ok()) return 2;
    unsigned seed = 7;
    for (int i = 0; i < kItems; ++i) {
      if (rand_r(&seed) % 1000 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(rand_r(&seed) % 20));
      std::uint32_t v = static_cast<std::uint32_t>(i);
      if (producer->send(std::as_bytes(std::span(&v, 1)), 10s) != ChannelResult::kOk) return 3;
    }
    return 0;
  });
  const int ep = epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLET;  // edge-triggered: the drain must reach kWouldBlock
  ASSERT_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev), 0);
  int next = 0;
  int wakeups = 0;
  while (next < kItems) {
    epoll_event out{};
    ASSERT_EQ(epoll_wait(ep, &out, 1, 10000), 1) << "stalled at item " << next;
    ++wakeups;
    std::byte buf[16];
    std::size_t n = 0;
    ChannelResult r;
    while ((r = consumer->try_receive(buf, &n)) == ChannelResult::kOk) {
      std::uint32_t v = 0;
      std::memcpy(&v, buf, sizeof(v));
      ASSERT_EQ(v, static_cast<std::uint32_t>(next));
      ++next;
    }
    ASSERT_EQ(r, ChannelResult::kWouldBlock);
  }
  close(ep);
  EXPECT_TRUE(testing::wait_child(child).ok());
  EXPECT_LE(wakeups, kItems);
  std::printf("[ figures ] %d items, %d epoll wake-ups\n", kItems, wakeups);
}

// A child process that runs `setup` (which opens what it needs and hands it back to be kept; null:
// failed, exit 2), says so through `ready`, and then waits to be killed.
pid_t hold_in_child(testing::ProcessBarrier& ready, const std::function<std::shared_ptr<void>()>& setup) {
  return testing::fork_child([&] {
    const std::shared_ptr<void> kept = setup();
    if (kept == nullptr) return 2;
    ready.arrive_and_wait();
    pause();
    return 0;
  });
}

// A publisher in another process: opens, reports ready through the barrier, then waits to be
// killed (or closes, when `close_after` is set).
pid_t publisher_child(const std::string& name, testing::ProcessBarrier& ready, bool close_after) {
  return testing::fork_child([&, close_after] {
    auto pub = TopicPublisher::open(name, testing::topic(4096, 256));
    if (!pub.ok()) return 2;
    ready.arrive_and_wait();
    if (close_after) {
      ready.arrive_and_wait();
      pub->close();
      return 0;
    }
    pause();
    return 0;
  });
}

TEST(WaitFdTest, SubscriberHearsThatItsPublisherWasKilled) {
  const std::string name = channel_name("wfd_killed");
  auto sub = TopicSubscriber::open(name, testing::topic(4096, 256));
  ASSERT_TRUE(sub.ok());
  testing::ProcessBarrier ready(2);
  const pid_t child = publisher_child(name, ready, false);
  ASSERT_TRUE(ready.arrive_and_wait());
  const int fd = sub->wait_fd();
  ASSERT_GE(fd, 0);
  drain(*sub);  // arms, and watches the publisher's lifeline
  EXPECT_FALSE(readable(fd));
  kill(child, SIGKILL);
  EXPECT_TRUE(testing::wait_child(child).signaled);
  EXPECT_TRUE(readable(fd, 5000)) << "the publisher's death did not reach the descriptor";
  EXPECT_TRUE(has(sub->take_wait_events(), WaitEvent::kPeerGone));
  drain(*sub);  // (the recovery the death ran may have fired this descriptor once more)
  EXPECT_FALSE(readable(fd));
  EXPECT_FALSE(has(sub->take_wait_events(), WaitEvent::kPeerGone)) << "reported once";
}

TEST(WaitFdTest, SubscriberHearsThatItsPublisherClosed) {
  const std::string name = channel_name("wfd_closed");
  auto sub = TopicSubscriber::open(name, testing::topic(4096, 256));
  ASSERT_TRUE(sub.ok());
  testing::ProcessBarrier ready(2);
  const pid_t child = publisher_child(name, ready, true);
  ASSERT_TRUE(ready.arrive_and_wait());
  const int fd = sub->wait_fd();
  ASSERT_GE(fd, 0);
  drain(*sub);
  ASSERT_TRUE(ready.arrive_and_wait());  // now it closes
  EXPECT_TRUE(readable(fd, 5000));
  EXPECT_TRUE(has(sub->take_wait_events(), WaitEvent::kPeerGone));
  EXPECT_TRUE(testing::wait_child(child).ok());
}

TEST(WaitFdTest, LosslessPublisherHeldBackByAKilledSubscriberIsWokenAndGoesOn) {
  const std::string name = channel_name("wfd_deadsub");
  auto pub = TopicPublisher::open(name, testing::topic(4096, 256, true));
  ASSERT_TRUE(pub.ok());
  testing::ProcessBarrier ready(2);
  const pid_t child = hold_in_child(ready, [&]() -> std::shared_ptr<void> {
    auto sub = TopicSubscriber::open(name, testing::topic(4096, 256, true));
    return sub.ok() ? std::make_shared<TopicSubscriber>(*std::move(sub)) : nullptr;
  });
  ASSERT_TRUE(ready.arrive_and_wait());
  const int fd = pub->wait_fd();
  ASSERT_GE(fd, 0);
  const std::string msg(200, 'm');
  while (pub->try_send(bytes_of(msg)) == ChannelResult::kOk) {
  }
  EXPECT_FALSE(readable(fd)) << "held back by the (live) subscriber, armed";
  kill(child, SIGKILL);
  EXPECT_TRUE(testing::wait_child(child).signaled);
  ASSERT_TRUE(readable(fd, 5000));
  EXPECT_TRUE(has(pub->take_wait_events(), WaitEvent::kPeerGone));
  // The next try_send runs the dead-subscriber recovery at once and goes on.
  EXPECT_EQ(pub->try_send(bytes_of(msg)), ChannelResult::kOk);
}

TEST(WaitFdTest, LosslessPublisherWaitingOnItsDescriptorIsWokenForEvictAfter) {
  const std::string name = channel_name("wfd_evict_after");
  TopicOptions o = testing::topic(4096, 256, true);
  o.evict_after = std::chrono::milliseconds(50);
  auto pub = TopicPublisher::open(name, o);
  auto sub = TopicSubscriber::open(name, testing::topic(4096, 256, true));  // alive, never reads
  ASSERT_TRUE(pub.ok() && sub.ok());
  const int fd = pub->wait_fd();
  ASSERT_GE(fd, 0);
  const std::string msg(200, 'm');
  while (pub->try_send(bytes_of(msg)) == ChannelResult::kOk) {
  }
  EXPECT_FALSE(readable(fd)) << "held back: armed, with the evict_after timer set";
  ASSERT_TRUE(readable(fd, 5000)) << "nothing woke the publisher when evict_after passed";
  EXPECT_TRUE(has(pub->take_wait_events(), WaitEvent::kRoom));
  EXPECT_EQ(pub->try_send(bytes_of(msg)), ChannelResult::kOk);
  EXPECT_EQ(pub->evictions(), 1u);
}

TEST(WaitFdTest, EvictedSubscriberIsTold) {
  const std::string name = channel_name("wfd_evict");
  TopicOptions o = testing::topic(4096, 256, true);
  o.evict_lag = 1024;
  auto pub = TopicPublisher::open(name, o);
  auto sub = TopicSubscriber::open(name, testing::topic(4096, 256, true));
  ASSERT_TRUE(pub.ok() && sub.ok());
  const int fd = sub->wait_fd();
  ASSERT_GE(fd, 0);
  drain(*sub);
  const std::string msg(100, 'e');
  for (int i = 0; i < 40 && pub->evictions() == 0; ++i) pub->try_send(bytes_of(msg));
  ASSERT_EQ(pub->evictions(), 1u);
  EXPECT_TRUE(readable(fd, 5000));
  EXPECT_TRUE(has(sub->take_wait_events(), WaitEvent::kEvicted));
}

TEST(WaitFdTest, RemovedChannelIsReportedAndStaysReported) {
  const std::string name = channel_name("wfd_removed");
  auto pub = TopicPublisher::open(name, testing::topic(4096, 256));
  auto sub = TopicSubscriber::open(name, testing::topic(4096, 256));
  ASSERT_TRUE(pub.ok() && sub.ok());
  const int fd = sub->wait_fd();
  ASSERT_GE(fd, 0);
  drain(*sub);
  ASSERT_TRUE(remove_channel(name).ok());
  EXPECT_TRUE(readable(fd, 5000));
  EXPECT_TRUE(has(sub->take_wait_events(), WaitEvent::kRemoved));
  EXPECT_TRUE(has(sub->take_wait_events(), WaitEvent::kRemoved)) << "removal is a lasting state";
}

TEST(WaitFdTest, AForkedChildCannotUseItsParentsDescriptor) {
  const std::string name = channel_name("wfd_fork");
  auto pub = TopicPublisher::open(name, testing::topic(4096, 256));
  auto sub = TopicSubscriber::open(name, testing::topic(4096, 256));
  ASSERT_TRUE(pub.ok() && sub.ok());
  const int fd = sub->wait_fd();
  ASSERT_GE(fd, 0);
  drain(*sub);
  const pid_t child = testing::fork_child([&] {
    if (sub->wait_fd() != -1 || errno != EBADF) return 2;
    std::byte buf[256];
    std::size_t n = 0;
    sub->try_receive(buf, &n);  // the child's copy is inert: must not arm the parent's slot
    return 0;
  });
  EXPECT_TRUE(testing::wait_child(child).ok());
  EXPECT_EQ(stats_of(name).receivers_armed, 1u);
  ASSERT_EQ(pub->try_send(bytes_of("after fork")), ChannelResult::kOk);
  EXPECT_TRUE(readable(fd, 5000));
}

TEST(WaitFdTest, WaiterKilledWhileArmedLeavesNothingAndCostsOneDatagram) {
  const std::string name = channel_name("wfd_killwaiter");
  auto pub = TopicPublisher::open(name, testing::topic(4096, 256));
  ASSERT_TRUE(pub.ok());
  testing::ProcessBarrier ready(2);
  const pid_t child = hold_in_child(ready, [&]() -> std::shared_ptr<void> {
    auto sub = TopicSubscriber::open(name, testing::topic(4096, 256));
    if (!sub.ok() || sub->wait_fd() < 0) return nullptr;
    drain(*sub);  // armed
    return std::make_shared<TopicSubscriber>(*std::move(sub));
  });
  ASSERT_TRUE(ready.arrive_and_wait());
  EXPECT_EQ(stats_of(name).receivers_armed, 1u);
  EXPECT_EQ(wait_files_of(name).size(), 3u) << "two lifelines and the child's socket";
  kill(child, SIGKILL);
  EXPECT_TRUE(testing::wait_child(child).signaled);
  ASSERT_EQ(pub->try_send(bytes_of("to nobody")), ChannelResult::kOk);
  EXPECT_EQ(stats_of(name).receivers_armed, 0u) << "fired once (into nothing), then free";
  ASSERT_EQ(pub->try_send(bytes_of("again")), ChannelResult::kOk);
  // The next opener's recovery frees the dead slot and its files.
  auto other = TopicSubscriber::open(name, testing::topic(4096, 256));
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(wait_files_of(name).size(), 2u) << "the dead subscriber's files are gone";
}

TEST(WaitFdTest, DeadPeersFilesGoWithTheLastEndpoint) {
  const std::string name = channel_name("wfd_lastout");
  std::string id;
  {
    auto pub = TopicPublisher::open(name, testing::topic(4096, 256));
    ASSERT_TRUE(pub.ok());
    id = channel_id_hex(name);
    testing::ProcessBarrier ready(2);
    const pid_t child = hold_in_child(ready, [&]() -> std::shared_ptr<void> {
      auto sub = TopicSubscriber::open(name, testing::topic(4096, 256));
      if (!sub.ok() || sub->wait_fd() < 0) return nullptr;
      return std::make_shared<TopicSubscriber>(*std::move(sub));
    });
    ASSERT_TRUE(ready.arrive_and_wait());
    kill(child, SIGKILL);
    EXPECT_TRUE(testing::wait_child(child).signaled);
    EXPECT_EQ(wait_files_of(name).size(), 3u);
  }  // the last endpoint leaves: the segment goes, and so do the dead peer's files
  for (const std::string& f : testing::dev_shm_entries("shmring-")) {
    EXPECT_EQ(f.find(id), std::string::npos) << "left behind: " << f;
  }
}

TEST(WaitFdTest, ConsumerHearsAnotherConsumersDeathAndGetsItsItem) {
  const std::string name = channel_name("wfd_redeliver");
  QueueOptions o;
  o.capacity = 8;
  o.max_message = 16;
  auto producer = QueueProducer::open(name, o);
  ASSERT_TRUE(producer.ok());
  ASSERT_EQ(producer->try_send(bytes_of("item")), ChannelResult::kOk);
  testing::ProcessBarrier ready(2);
  const pid_t child = hold_in_child(ready, [&]() -> std::shared_ptr<void> {
    auto c = QueueConsumer::open(name, o);
    if (!c.ok()) return nullptr;
    auto held = std::make_shared<std::pair<QueueConsumer, QueueView>>(*std::move(c), QueueView());
    held->second = held->first.try_receive_view();  // holds the item, then dies
    return held->second.ok() ? held : nullptr;
  });
  ASSERT_TRUE(ready.arrive_and_wait());
  auto consumer = QueueConsumer::open(name, o);
  ASSERT_TRUE(consumer.ok());
  const int fd = consumer->wait_fd();
  ASSERT_GE(fd, 0);
  std::byte buf[16];
  std::size_t n = 0;
  ASSERT_EQ(consumer->try_receive(buf, &n), ChannelResult::kWouldBlock);  // armed, watching it
  EXPECT_FALSE(readable(fd));
  kill(child, SIGKILL);
  EXPECT_TRUE(testing::wait_child(child).signaled);
  ASSERT_TRUE(readable(fd, 5000)) << "the other consumer's death did not wake this one";
  EXPECT_TRUE(has(consumer->take_wait_events(), WaitEvent::kPeerGone));
  EXPECT_EQ(consumer->try_receive(buf, &n), ChannelResult::kOk) << "its item was not handed on";
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(buf), n), "item");
}

TEST(WaitFdTest, SendersStartQuietAndALossyPublisherNeverWakes) {
  const std::string name = channel_name("wfd_quiet");
  auto pub = TopicPublisher::open(name, testing::topic(4096, 256));
  ASSERT_TRUE(pub.ok());
  const int fd = pub->wait_fd();
  ASSERT_GE(fd, 0);
  EXPECT_FALSE(readable(fd));
  for (int i = 0; i < 100; ++i) ASSERT_EQ(pub->try_send(bytes_of("x")), ChannelResult::kOk);
  EXPECT_FALSE(readable(fd));
  auto set = WaitSet::create();
  ASSERT_TRUE(set.ok());
  ASSERT_TRUE(set->add(*pub, 1).ok());
  auto ready = set->wait(std::chrono::milliseconds(20));
  ASSERT_TRUE(ready.ok());
  EXPECT_TRUE(ready->empty());
}

TEST(WaitFdTest, AClosedEndpointLeavesAWaitSetQuietEvenWhenAChildHoldsItsDescriptors) {
  const std::string name = channel_name("wfd_closed_fork");
  auto sub = TopicSubscriber::open(name, testing::topic(4096, 256));
  ASSERT_TRUE(sub.ok());
  auto set = WaitSet::create();
  ASSERT_TRUE(set.ok());
  ASSERT_TRUE(set->add(*sub, 7).ok());  // readable (it starts so)
  const pid_t child = testing::fork_child([] {
    pause();  // holds copies of every descriptor
    return 0;
  });
  sub->close();
  for (int i = 0; i < 3; ++i) {
    auto ready = set->wait(std::chrono::milliseconds(10));
    ASSERT_TRUE(ready.ok());
    EXPECT_TRUE(ready->empty());
  }
  EXPECT_TRUE(set->remove(7).ok());
  kill(child, SIGKILL);
  testing::wait_child(child);
}

TEST(WaitFdTest, ProcessesArmingAndClosingAtTheSameInstantWhileFiredKeepTheCountRight) {
  // Several processes open, arm and close the same topic at the same instant, round after round,
  // while the publisher fires them: every arming, firing, disarming and slot reuse races another.
  const std::string name = channel_name("wfd_storm");
  auto pub = TopicPublisher::open(name, testing::topic(1 << 16, 64));
  ASSERT_TRUE(pub.ok());
  constexpr int kProcesses = 6;
  const int rounds = testing::rounds_from_env("SHMRING_WFD_ROUNDS", 40);
  testing::ProcessBarrier together(kProcesses);
  std::vector<pid_t> children;
  for (int i = 0; i < kProcesses; ++i) {
    children.push_back(testing::fork_child([&] {
      for (int r = 0; r < rounds; ++r) {
        auto sub = TopicSubscriber::open(name, testing::topic(1 << 16, 64));
        if (!sub.ok() || sub->wait_fd() < 0) return 2;
        if (!together.arrive_and_wait()) return 3;  // all open at once
        drain(*sub);                                // all arm at once (while being fired)
        if (!together.arrive_and_wait()) return 4;
      }  // all close at once
      return 0;
    }));
  }
  int done = 0;
  while (done < kProcesses) {
    (void)pub->try_send(bytes_of("fire"));
    for (pid_t& child : children) {
      if (child > 0 && waitpid(child, nullptr, WNOHANG) == child) {
        child = -1;
        ++done;
      }
    }
  }
  const ChannelStats st = stats_of(name);
  EXPECT_EQ(st.receivers_armed, 0u) << "armed count leaked or wrapped";
  EXPECT_EQ(st.senders_armed, 0u);
  EXPECT_EQ(st.receivers_parked, 0u);
  EXPECT_EQ(wait_files_of(name).size(), 1u) << "only the publisher's lifeline stays";
}

// --- WaitSet ----------------------------------------------------------------------------------------

TEST(WaitSetTest, TimersFireAndPlainDescriptorsAreReported) {
  auto set = WaitSet::create();
  ASSERT_TRUE(set.ok()) << set.status();
  ASSERT_TRUE(set->add_timer(7, 20ms).ok());
  const auto start = std::chrono::steady_clock::now();
  auto ready = set->wait(5s);
  ASSERT_TRUE(ready.ok());
  ASSERT_EQ(ready->size(), 1u);
  EXPECT_EQ((*ready)[0].tag, 7u);
  EXPECT_EQ((*ready)[0].events, WaitEvent::kTimer);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 20ms) << "a timer never fires early";
  ready = set->wait(10ms);
  ASSERT_TRUE(ready.ok());
  EXPECT_TRUE(ready->empty()) << "a one-shot timer fires once";

  int pipe_fds[2];
  ASSERT_EQ(pipe2(pipe_fds, O_CLOEXEC), 0);
  ASSERT_TRUE(set->add_fd(pipe_fds[0], 9).ok());
  ASSERT_EQ(write(pipe_fds[1], "x", 1), 1);
  ready = set->wait(5s);
  ASSERT_TRUE(ready.ok());
  ASSERT_EQ(ready->size(), 1u);
  EXPECT_EQ((*ready)[0].tag, 9u);
  EXPECT_EQ((*ready)[0].events, WaitEvent::kReadable);
  EXPECT_TRUE(set->remove(9).ok());
  close(pipe_fds[0]);
  close(pipe_fds[1]);
}

TEST(WaitSetTest, BadEntriesAreRefused) {
  auto set = WaitSet::create();
  ASSERT_TRUE(set.ok());
  ASSERT_TRUE(set->add_timer(1, 1s).ok());
  EXPECT_EQ(set->add_timer(1, 1s).code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(set->add_timer(2, 0s).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(set->add_fd(-1, 3).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(set->add_fd(987654, 3).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(set->remove(42).code(), absl::StatusCode::kNotFound);
  TopicSubscriber closed;
  EXPECT_EQ(set->add(closed, 5).code(), absl::StatusCode::kFailedPrecondition);
  WaitSet empty;
  EXPECT_EQ(empty.wait(1ms).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(WaitSetTest, StopFromAnotherThreadEndsRun) {
  auto set = WaitSet::create();
  ASSERT_TRUE(set.ok());
  std::thread stopper([&] {
    std::this_thread::sleep_for(20ms);
    set->stop();
  });
  int calls = 0;
  EXPECT_TRUE(set->run([&](const WaitSet::Ready&) { return ++calls < 100; }).ok());
  stopper.join();
  EXPECT_EQ(calls, 0);
}

TEST(WaitSetTest, ServesManyChannelsAndReportsDataPeerDeathAndRemoval) {
  const std::string base = channel_name("ws_many");
  std::vector<TopicSubscriber> subs;
  auto set = WaitSet::create();
  ASSERT_TRUE(set.ok());
  constexpr int kTopics = 8;
  for (int i = 0; i < kTopics; ++i) {
    auto sub = TopicSubscriber::open(base + "_" + std::to_string(i), testing::topic(4096, 64));
    ASSERT_TRUE(sub.ok());
    subs.push_back(*std::move(sub));
    ASSERT_TRUE(set->add(subs.back(), static_cast<std::uint64_t>(i)).ok());
  }
  // Moving the handles around does not disturb the set (it follows the endpoints).
  std::vector<TopicSubscriber> moved = std::move(subs);
  // First wait: every descriptor starts readable.
  auto ready = set->wait(1s);
  ASSERT_TRUE(ready.ok());
  EXPECT_EQ(ready->size(), static_cast<std::size_t>(kTopics));
  for (auto& s : moved) drain(s);
  ready = set->wait(10ms);
  ASSERT_TRUE(ready.ok());
  EXPECT_TRUE(ready->empty()) << "drained: nothing until traffic";

  testing::ProcessBarrier step(2);
  const pid_t child = testing::fork_child([&] {
    auto pub = TopicPublisher::open(base + "_3", testing::topic(4096, 64));
    if (!pub.ok()) return 2;
    step.arrive_and_wait();
    if (pub->try_send(bytes_of("hello")) != ChannelResult::kOk) return 3;
    step.arrive_and_wait();
    pause();  // killed
    return 0;
  });
  ASSERT_TRUE(step.arrive_and_wait());
  // The publisher joined after the arming: the subscriber starts watching it at its next arming.
  ASSERT_TRUE(step.arrive_and_wait());
  ready = set->wait(5s);
  ASSERT_TRUE(ready.ok());
  ASSERT_EQ(ready->size(), 1u);
  EXPECT_EQ((*ready)[0].tag, 3u);
  EXPECT_TRUE(has((*ready)[0].events, WaitEvent::kData));
  EXPECT_EQ(drain(moved[3]), 1);  // re-arms, now watching the publisher
  kill(child, SIGKILL);
  EXPECT_TRUE(testing::wait_child(child).signaled);
  ready = set->wait(5s);
  ASSERT_TRUE(ready.ok());
  ASSERT_EQ(ready->size(), 1u);
  EXPECT_EQ((*ready)[0].tag, 3u);
  EXPECT_TRUE(has((*ready)[0].events, WaitEvent::kPeerGone)) << to_string((*ready)[0].events);
  EXPECT_EQ(drain(moved[3]), 0);  // the protocol: try_ calls after any event (they run the recovery)

  ASSERT_TRUE(remove_channel(base + "_5").ok());
  ready = set->wait(5s);
  ASSERT_TRUE(ready.ok());
  ASSERT_EQ(ready->size(), 1u);
  EXPECT_EQ((*ready)[0].tag, 5u);
  EXPECT_TRUE(has((*ready)[0].events, WaitEvent::kRemoved));

  // A closed endpoint is never reported again, and its entry can still be removed.
  moved[6].close();
  ready = set->wait(10ms);
  ASSERT_TRUE(ready.ok());
  for (const auto& r : *ready) EXPECT_NE(r.tag, 6u);
  EXPECT_TRUE(set->remove(6).ok());
}

}  // namespace
}  // namespace shmring
