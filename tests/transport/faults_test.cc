// Promises kept under faults (issue 22), with real processes: a publisher asleep on its descriptor
// wakes after its only subscriber is SIGKILLed, forked children's copies of endpoints and WaitSets
// are inert and silence nothing of the parent's, senders see the deaths of receivers that joined
// after their descriptor was made, and a channel whose processes all crashed can be removed.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/sem.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "shmring/core/detail/liveness_file.h"
#include "shmring/core/segment_directory.h"
#include "shmring/core/segment_header.h"
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
using testing::bytes_of;
using testing::channel_name;

QueueOptions small(std::uint64_t capacity, std::uint64_t max_message) {
  QueueOptions o;
  o.capacity = capacity;
  o.max_message = max_message;
  return o;
}

bool readable(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN) != 0;
}

// A pipe a child writes one byte to when it is ready.
struct ReadySignal {
  int fds[2] = {-1, -1};
  ReadySignal() { EXPECT_EQ(pipe(fds), 0); }
  ~ReadySignal() {
    close(fds[0]);
    close(fds[1]);
  }
  void signal() const { [[maybe_unused]] const ssize_t n = write(fds[1], "r", 1); }
  bool wait(int timeout_ms = 10000) const {
    if (!readable(fds[0], timeout_ms)) return false;
    char c = 0;
    return read(fds[0], &c, 1) == 1;
  }
};

void kill_and_reap(pid_t child) {
  kill(child, SIGKILL);
  int status = 0;
  waitpid(child, &status, 0);
}

// Defect 1: the lifeline's hang-up can reach the publisher before the dying subscriber's liveness
// lock is released; the recovery it runs then finds the subscriber alive. The descriptor must come
// back (it looks again) until the subscriber is found dead, and the publisher goes on. 100 rounds.
TEST(FaultsTest, LosslessPublisherAsleepOnItsDescriptorWakesAfterItsSubscriberIsKilled) {
  for (int round = 0; round < 100; ++round) {
    const std::string name = channel_name("f_asleep");
    TopicOptions o = testing::topic(4096, 64);
    o.lossless = true;
    auto pub = TopicPublisher::open(name, o);
    ASSERT_TRUE(pub.ok()) << pub.status();
    const int fd = pub->wait_fd();
    ASSERT_GE(fd, 0);
    ReadySignal ready;
    const pid_t child = testing::fork_child([&] {
      auto sub = TopicSubscriber::open(name, o);  // subscribes, never reads
      if (!sub.ok()) return 1;
      ready.signal();
      for (;;) pause();
    });
    ASSERT_TRUE(ready.wait());
    int sent = 0;
    while (pub->try_send(bytes_of("0123456789abcdef")) == ChannelResult::kOk) ++sent;
    ASSERT_GT(sent, 0);
    kill_and_reap(child);
    // Every wake-up is followed by try_send (the protocol); it must reach kOk, never sleep for good.
    bool sent_again = false;
    for (int wakes = 0; wakes < 1000 && !sent_again; ++wakes) {
      ASSERT_TRUE(readable(fd, 10000)) << "round " << round << ": the publisher sleeps forever";
      pub->take_wait_events();
      sent_again = pub->try_send(bytes_of("after")) == ChannelResult::kOk;
    }
    EXPECT_TRUE(sent_again) << "round " << round;
  }
}

// Closes this process's lifeline descriptors (found through /proc/self/fd): what a dying process
// does first when the kernel closes its lifeline before it drops its liveness lock.
void close_own_lifelines() {
  for (int fd = 3; fd < 1024; ++fd) {
    char link[64];
    char target[256] = {};
    std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    const ssize_t n = readlink(link, target, sizeof target - 1);
    if (n > 0 && std::strstr(target, "/shmring-l.") != nullptr) close(fd);
  }
}

// The race made certain: the subscriber's lifeline hangs up 300 ms before its process dies (and
// its liveness lock goes). The recovery the hang-up runs finds it alive; the publisher asleep on
// its descriptor must still be woken when the subscriber is dead, and go on.
TEST(FaultsTest, LosslessPublisherWakesWhenASubscriberDiesAfterItsLifelineHungUp) {
  const std::string name = channel_name("f_hangup_first");
  TopicOptions o = testing::topic(4096, 64);
  o.lossless = true;
  auto pub = TopicPublisher::open(name, o);
  ASSERT_TRUE(pub.ok()) << pub.status();
  const int fd = pub->wait_fd();
  ASSERT_GE(fd, 0);
  ReadySignal ready;
  ReadySignal go;
  const pid_t child = testing::fork_child([&] {
    auto sub = TopicSubscriber::open(name, o);  // never reads
    if (!sub.ok()) return 1;
    ready.signal();
    if (!go.wait()) return 2;
    close_own_lifelines();
    std::this_thread::sleep_for(300ms);
    _exit(0);  // dies without closing the endpoint: the kernel drops its liveness lock
  });
  ASSERT_TRUE(ready.wait());
  while (pub->try_send(bytes_of("0123456789abcdef")) == ChannelResult::kOk) {
  }
  go.signal();
  bool sent_again = false;
  for (int wakes = 0; wakes < 1000 && !sent_again; ++wakes) {
    ASSERT_TRUE(readable(fd, 10000)) << "the publisher sleeps forever after " << wakes << " wake-ups";
    pub->take_wait_events();
    sent_again = pub->try_send(bytes_of("after")) == ChannelResult::kOk;
  }
  EXPECT_TRUE(sent_again);
  EXPECT_TRUE(testing::wait_child(child).exited);
}

// The same race for a queue consumer's item (redelivery after a hang-up) and a frame publisher
// held back by a dead subscriber's pin: the receiver/sender asleep on its descriptor comes back.
TEST(FaultsTest, QueueConsumerAsleepOnItsDescriptorGetsADeadConsumersItem) {
  for (int round = 0; round < 30; ++round) {
    const std::string name = channel_name("f_qitem");
    auto producer = QueueProducer::open(name, small(16, 32));
    auto consumer = QueueConsumer::open(name, small(16, 32));
    ASSERT_TRUE(producer.ok() && consumer.ok());
    const int fd = consumer->wait_fd();
    ASSERT_GE(fd, 0);
    std::vector<std::byte> buf(32);
    std::size_t n = 0;
    while (consumer->try_receive(buf, &n) == ChannelResult::kOk) {
    }
    ReadySignal ready;
    const pid_t child = testing::fork_child([&] {
      auto taker = QueueConsumer::open(name, small(16, 32));
      if (!taker.ok()) return 1;
      for (;;) {
        QueueView v = taker->receive_view(10s);  // takes the item and holds it
        if (v.ok()) {
          ready.signal();
          for (;;) pause();
        }
      }
    });
    ASSERT_EQ(producer->try_send(bytes_of("the item")), ChannelResult::kOk);
    ASSERT_TRUE(ready.wait());
    kill_and_reap(child);
    bool got = false;
    for (int wakes = 0; wakes < 1000 && !got; ++wakes) {
      ASSERT_TRUE(readable(fd, 10000)) << "round " << round << ": the consumer sleeps forever";
      consumer->take_wait_events();
      got = consumer->try_receive(buf, &n) == ChannelResult::kOk;
    }
    ASSERT_TRUE(got) << "round " << round;
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(buf.data()), n), "the item");
  }
}

// Defect 4: a lossy publisher, a producer and a frame publisher made their descriptor before the
// receiver joined; the receiver is killed; each reports kPeerGone.
TEST(FaultsTest, SendersSeeTheDeathOfReceiversThatJoinedAfterTheirDescriptor) {
  for (int kind = 0; kind < 3; ++kind) {
    const std::string name = channel_name("f_late");
    ChannelEndpoint* sender = nullptr;
    absl::StatusOr<TopicPublisher> pub = absl::UnknownError("");
    absl::StatusOr<QueueProducer> producer = absl::UnknownError("");
    absl::StatusOr<FramePublisher> frames = absl::UnknownError("");
    FrameOptions fo;
    fo.capacity = 3;
    fo.max_message = 4096;
    if (kind == 0) {
      pub = TopicPublisher::open(name, testing::topic(4096, 64));
      ASSERT_TRUE(pub.ok());
      sender = &*pub;
    } else if (kind == 1) {
      producer = QueueProducer::open(name, small(16, 32));
      ASSERT_TRUE(producer.ok());
      sender = &*producer;
    } else {
      frames = FramePublisher::open(name, fo);
      ASSERT_TRUE(frames.ok());
      sender = &*frames;
    }
    const int fd = sender->wait_fd();
    ASSERT_GE(fd, 0);
    ReadySignal ready;
    const pid_t child = testing::fork_child([&] {
      // Each receiver stays open until the process is killed.
      auto topic_sub = kind == 0 ? TopicSubscriber::open(name, testing::topic(4096, 64))
                                 : absl::StatusOr<TopicSubscriber>(absl::UnknownError(""));
      auto queue_sub = kind == 1 ? QueueConsumer::open(name, small(16, 32))
                                 : absl::StatusOr<QueueConsumer>(absl::UnknownError(""));
      auto frame_sub = kind == 2 ? FrameSubscriber::open(name, fo)
                                 : absl::StatusOr<FrameSubscriber>(absl::UnknownError(""));
      if (!topic_sub.ok() && !queue_sub.ok() && !frame_sub.ok()) return 1;
      ready.signal();
      for (;;) pause();
    });
    ASSERT_TRUE(ready.wait());
    // The join may have made the descriptor readable (it looks at the newcomer): take that.
    if (readable(fd, 0)) sender->take_wait_events();
    kill_and_reap(child);
    WaitEvent seen = WaitEvent::kNone;
    for (int i = 0; i < 100 && !has(seen, WaitEvent::kPeerGone); ++i) {
      if (readable(fd, 10000)) seen |= sender->take_wait_events();
    }
    EXPECT_TRUE(has(seen, WaitEvent::kPeerGone)) << "kind " << kind << ": " << to_string(seen);
  }
}

// Defect 2: a forked child that closes its inherited copy (close, destructor, move-assignment)
// must not take the parent's entries out of the epoll instance they share.
TEST(FaultsTest, AForkedChildClosingItsCopyLeavesTheParentsDescriptorAwake) {
  for (int how = 0; how < 3; ++how) {
    const std::string name = channel_name("f_forkfd");
    auto pub = TopicPublisher::open(name, testing::topic(4096, 64));
    auto sub = TopicSubscriber::open(name, testing::topic(4096, 64));
    ASSERT_TRUE(pub.ok() && sub.ok());
    const int fd = sub->wait_fd();
    ASSERT_GE(fd, 0);
    std::vector<std::byte> buf(64);
    std::size_t n = 0;
    ASSERT_EQ(sub->try_receive(buf, &n), ChannelResult::kWouldBlock);  // armed
    ASSERT_FALSE(readable(fd, 0));
    const pid_t child = testing::fork_child([&] {
      if (sub->is_open()) return 1;  // a child's copy says it is not open
      if (how == 0) sub->close();
      if (how == 1) {
        TopicSubscriber moved = std::move(*sub);
        (void)moved;  // destroyed here
      }
      if (how == 2) *sub = TopicSubscriber();
      return 0;
    });
    ASSERT_TRUE(testing::wait_child(child).ok());
    ASSERT_EQ(pub->try_send(bytes_of("still heard")), ChannelResult::kOk);
    EXPECT_TRUE(readable(fd, 5000)) << "how " << how << ": the child's close silenced the parent";
    EXPECT_EQ(sub->try_receive(buf, &n), ChannelResult::kOk);
  }
}

// Defect 3: a forked child's copies are inert and say so, for every endpoint and lease kind; the
// parent loses nothing.
TEST(FaultsTest, AForkedChildsCopiesAreInertAndTheParentLosesNothing) {
  const std::string topic = channel_name("f_inert_t");
  const std::string queue = channel_name("f_inert_q");
  const std::string frame = channel_name("f_inert_f");
  FrameOptions fo;
  fo.capacity = 3;
  fo.max_message = 4096;
  auto pub = TopicPublisher::open(topic, testing::topic(4096, 64));
  auto sub = TopicSubscriber::open(topic, testing::topic(4096, 64));
  auto producer = QueueProducer::open(queue, small(16, 32));
  auto consumer = QueueConsumer::open(queue, small(16, 32));
  auto fpub = FramePublisher::open(frame, fo);
  auto fsub = FrameSubscriber::open(frame, fo);
  ASSERT_TRUE(pub.ok() && sub.ok() && producer.ok() && consumer.ok() && fpub.ok() && fsub.ok());
  ASSERT_EQ(producer->try_send(bytes_of("item 1")), ChannelResult::kOk);
  TopicLoan loan = pub->try_loan(16);
  ASSERT_TRUE(loan.ok());
  const pid_t child = testing::fork_child([&] {
    std::vector<std::byte> buf(4096);
    std::size_t n = 0;
    int failures = 0;
    auto expect = [&](bool ok) { failures += ok ? 0 : 1; };
    expect(!pub->is_open() && !sub->is_open() && !producer->is_open() && !consumer->is_open() &&
           !fpub->is_open() && !fsub->is_open());
    expect(pub->try_send(bytes_of("from the child")) == ChannelResult::kClosed);
    expect(pub->publish(loan, 4) == ChannelResult::kClosed);
    expect(sub->try_receive(buf, &n) == ChannelResult::kClosed);
    expect(producer->try_send(bytes_of("child item")) == ChannelResult::kClosed);
    expect(consumer->try_receive(buf, &n) == ChannelResult::kClosed);  // consumes nothing
    expect(consumer->try_receive_view().result() == ChannelResult::kClosed);
    expect(fpub->try_send(bytes_of("child frame")) == ChannelResult::kClosed);
    expect(fsub->try_receive(buf, &n) == ChannelResult::kClosed);
    expect(pub->wait_fd() == -1 && errno == EBADF);
    expect(pub->max_message() == 0 && consumer->max_message() == 0);
    auto set = WaitSet::create();
    expect(set.ok() && set->add(*sub, 1).code() == absl::StatusCode::kFailedPrecondition);
    return failures;
  });
  const testing::ChildResult r = testing::wait_child(child);
  EXPECT_TRUE(r.ok()) << "child: " << r.code << " check(s) failed";
  // The parent's loan is intact and its messages, items and frames all arrive.
  ASSERT_TRUE(loan.ok());
  std::memcpy(loan.buffer().data(), "mine", 4);
  ASSERT_EQ(pub->publish(loan, 4), ChannelResult::kOk);
  ASSERT_EQ(pub->try_send(bytes_of("next")), ChannelResult::kOk);
  std::vector<std::byte> buf(4096);
  std::size_t n = 0;
  ASSERT_EQ(sub->try_receive(buf, &n), ChannelResult::kOk);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(buf.data()), n), "mine");
  ASSERT_EQ(sub->try_receive(buf, &n), ChannelResult::kOk);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(buf.data()), n), "next");
  EXPECT_EQ(sub->try_receive(buf, &n), ChannelResult::kWouldBlock) << "the child published nothing";
  ASSERT_EQ(consumer->try_receive(buf, &n), ChannelResult::kOk);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(buf.data()), n), "item 1");
  EXPECT_EQ(consumer->try_receive(buf, &n), ChannelResult::kWouldBlock);
  ASSERT_EQ(fpub->try_send(bytes_of("frame")), ChannelResult::kOk);
  ASSERT_EQ(fsub->try_receive(buf, &n), ChannelResult::kOk);
}

// A WaitSet inherited through fork(): the child cannot use it, and destroying or removing from it
// in the child leaves the parent's set working.
TEST(FaultsTest, AForkedChildsWaitSetIsInertAndLeavesTheParentsSetWorking) {
  const std::string name = channel_name("f_forkset");
  auto pub = TopicPublisher::open(name, testing::topic(4096, 64));
  auto sub = TopicSubscriber::open(name, testing::topic(4096, 64));
  ASSERT_TRUE(pub.ok() && sub.ok());
  auto set = WaitSet::create();
  ASSERT_TRUE(set.ok());
  ASSERT_TRUE(set->add(*sub, 7).ok());
  std::vector<std::byte> buf(64);
  std::size_t n = 0;
  auto drained = set->wait(0ns);
  ASSERT_TRUE(drained.ok());
  while (sub->try_receive(buf, &n) == ChannelResult::kOk) {
  }
  const pid_t child = testing::fork_child([&] {
    if (set->wait(0ns).status().code() != absl::StatusCode::kFailedPrecondition) return 1;
    (void)set->remove(7);
    *set = WaitSet();  // destroyed in the child
    return 0;
  });
  ASSERT_TRUE(testing::wait_child(child).ok());
  ASSERT_EQ(pub->try_send(bytes_of("x")), ChannelResult::kOk);
  auto ready = set->wait(5s);
  ASSERT_TRUE(ready.ok());
  ASSERT_EQ(ready->size(), 1u);
  EXPECT_EQ((*ready)[0].tag, 7u);
}

// Defect 5: adding one endpoint twice says what happened in the project's words.
TEST(FaultsTest, AddingAnEndpointToAWaitSetTwiceSaysSo) {
  const std::string name = channel_name("f_twice");
  auto sub = TopicSubscriber::open(name, testing::topic(4096, 64));
  ASSERT_TRUE(sub.ok());
  auto set = WaitSet::create();
  ASSERT_TRUE(set.ok());
  ASSERT_TRUE(set->add(*sub, 1).ok());
  const absl::Status again = set->add(*sub, 2);
  EXPECT_EQ(again.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_NE(again.message().find("in the set already (tag 1)"), std::string::npos) << again;
  EXPECT_EQ(again.message().find("File exists"), std::string::npos) << again;
}

// remove_channel() on a channel whose processes all crashed removes its file and its lock.
TEST(FaultsTest, RemovingAChannelWhoseProcessesAllCrashedRemovesItsFileAndLock) {
  const std::string name = channel_name("f_crashed");
  ReadySignal ready;
  const pid_t child = testing::fork_child([&] {
    auto q = QueueProducer::open(name, small(16, 32));
    if (!q.ok()) return 1;
    ready.signal();
    for (;;) pause();
  });
  ASSERT_TRUE(ready.wait());
  const std::string path =
      std::string(kDefaultSegmentDirectory) + "/" + SharedMemory::native_key_for(channel_key(name));
  // The segment's lock set and the channel's liveness file, as the header records them.
  alignas(ChannelHeader) std::byte page[kSegmentHeaderSize + sizeof(ChannelHeader)];
  {
    const int fd = open(path.c_str(), O_RDONLY);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(pread(fd, page, sizeof page, 0), static_cast<ssize_t>(sizeof page));
    close(fd);
  }
  const int lock_id = reinterpret_cast<const SegmentHeader*>(page)->lock_semaphore_id;
  const auto* channel = reinterpret_cast<const ChannelHeader*>(page + kSegmentHeaderSize);
  detail::RandomId liveness;
  liveness.words[0] = channel->liveness_id[0];
  liveness.words[1] = channel->liveness_id[1];
  ASSERT_GE(lock_id, 0);
  ASSERT_EQ(access(detail::liveness_path(stable_hash64(SharedMemory::native_key_for(channel_key(name))), liveness).c_str(), F_OK), 0);
  kill_and_reap(child);
  EXPECT_EQ(read_stats(name).status().code(), absl::StatusCode::kNotFound);  // no live channel
  ASSERT_TRUE(remove_channel(name).ok());
  EXPECT_NE(access(path.c_str(), F_OK), 0) << "the file stays";
  semid_ds ds{};
  EXPECT_NE(semctl(lock_id, 0, IPC_STAT, &ds), 0) << "the lock set stays";
  EXPECT_NE(access(detail::liveness_path(stable_hash64(SharedMemory::native_key_for(channel_key(name))), liveness).c_str(), F_OK), 0) << "the liveness file stays";
  EXPECT_EQ(remove_channel(name).code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace shmring
