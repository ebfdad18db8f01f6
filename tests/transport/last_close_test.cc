// Two endpoints holding a channel's last two attachments close at the same instant, round after
// round: the channel's segment must be gone every time (it used to stay behind in 85 of 300 rounds
// for topics and 153 of 300 for queues). Real processes; SHMRING_LAST_OUT_ROUNDS sets the rounds.
#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "shmring/core/shared_memory.h"
#include "shmring/transport/frame.h"
#include "shmring/transport/queue.h"
#include "shmring/transport/topic.h"
#include "transport_test_util.h"
#ifdef SHMRING_CLI_PATH
#include "run_command.h"
#endif

namespace shmring {
namespace {

using testing::fork_child;
using testing::ProcessBarrier;
using testing::channel_name;
using testing::topic;
using testing::wait_child;

// Runs `rounds` rounds of: both sides open(side) -> barrier -> close -> barrier -> side 0 checks
// that the channel's file is gone (and removes it if not, to go on) -> barrier.
template <typename Open>
void close_together(const std::string& name, int rounds, Open open) {
  const std::string file = "/dev/shm/" + SharedMemory::native_key_for(channel_key(name));
  ProcessBarrier barrier(2);
  std::vector<pid_t> children;
  for (int side = 0; side < 2; ++side) {
    children.push_back(fork_child([&, side] {
      int left_behind = 0;
      for (int round = 0; round < rounds; ++round) {
        {
          auto endpoint = open(side);
          if (!endpoint.ok()) {
            std::fprintf(stderr, "open: %s\n", std::string(endpoint.status().message()).c_str());
            return 10;
          }
          if (!barrier.arrive_and_wait()) return 11;  // both open
        }  // both close here
        if (!barrier.arrive_and_wait()) return 12;
        if (side == 0 && access(file.c_str(), F_OK) == 0) {
          ++left_behind;
          remove_channel(name).IgnoreError();
        }
        if (!barrier.arrive_and_wait()) return 13;
      }
      if (left_behind != 0) {
        std::fprintf(stderr, "%s left behind in %d of %d rounds\n", name.c_str(), left_behind, rounds);
        return 20;
      }
      return 0;
    }));
  }
  for (pid_t child : children) {
    const auto result = wait_child(child, std::chrono::seconds(240));
    EXPECT_TRUE(result.ok()) << "exit " << result.code << " signaled " << result.signaled;
  }
  EXPECT_NE(access(file.c_str(), F_OK), 0);
}

TEST(LastCloseTest, TwoTopicSubscribersClosingTogetherRemoveTheChannel) {
  const std::string name = channel_name("lastout_topic");
  close_together(name, testing::rounds_from_env("SHMRING_LAST_OUT_ROUNDS", 300), [&](int) {
    // The default ring (1 MiB): unmapping it takes long enough for the two closes to overlap.
    return TopicSubscriber::open(name, topic(1 << 20, 256, false));
  });
}

TEST(LastCloseTest, QueueProducerAndConsumerClosingTogetherRemoveTheChannel) {
  const std::string name = channel_name("lastout_queue");
  QueueOptions options;
  options.capacity = 1024;
  options.max_message = 1024;
  options.max_peers = 8;
  close_together(name, testing::rounds_from_env("SHMRING_LAST_OUT_ROUNDS", 300), [&](int side) {
    struct Either {
      absl::Status status_;
      QueueProducer producer;
      QueueConsumer consumer;
      bool ok() const { return status_.ok(); }
      absl::Status status() const { return status_; }
    };
    Either e;
    if (side == 0) {
      auto p = QueueProducer::open(name, options);
      e.status_ = p.status();
      if (p.ok()) e.producer = *std::move(p);
    } else {
      auto c = QueueConsumer::open(name, options);
      e.status_ = c.status();
      if (c.ok()) e.consumer = *std::move(c);
    }
    return e;
  });
}

TEST(LastCloseTest, FramePublisherAndSubscriberClosingTogetherRemoveTheChannel) {
  const std::string name = channel_name("lastout_frames");
  FrameOptions options;
  options.capacity = 3;
  options.max_message = 1 << 20;
  options.max_peers = 4;
  close_together(name, testing::rounds_from_env("SHMRING_LAST_OUT_ROUNDS", 300), [&](int side) {
    struct Either {
      absl::Status status_;
      FramePublisher publisher;
      FrameSubscriber subscriber;
      bool ok() const { return status_.ok(); }
      absl::Status status() const { return status_; }
    };
    Either e;
    if (side == 0) {
      auto p = FramePublisher::open(name, options);
      e.status_ = p.status();
      if (p.ok()) e.publisher = *std::move(p);
    } else {
      auto s = FrameSubscriber::open(name, options);
      e.status_ = s.status();
      if (s.ok()) e.subscriber = *std::move(s);
    }
    return e;
  });
}

#ifdef SHMRING_CLI_PATH
// A channel whose every user was killed is swept by the next channel open anywhere on the machine
// (a bounded, rate-limited pass over /dev/shm), without `shmring gc`; a live channel never is.
TEST(LastCloseTest, ChannelsOfKilledUsersAreSweptByTheNextOpenElsewhere) {
  const std::string dead = channel_name("swept");
  const std::string live = channel_name("kept");
  auto kept = TopicSubscriber::open(live, topic(1 << 16, 256, false));
  ASSERT_TRUE(kept.ok());
  const pid_t child = fork_child([&] {
    auto sub = TopicSubscriber::open(dead, topic(1 << 16, 256, false));
    if (!sub.ok()) return 2;
    raise(SIGKILL);
    return 3;
  });
  wait_child(child, std::chrono::seconds(30));
  const std::string dead_file = "/dev/shm/" + SharedMemory::native_key_for(channel_key(dead));
  ASSERT_EQ(access(dead_file.c_str(), F_OK), 0) << "the killed user's channel should be stale now";
  // Fresh processes (each sweeps once) open an unrelated channel until the stale one is gone; a
  // sweep looks at 16 files at most, so with many other channels around it can take a few.
  const std::string other = channel_name("opener");
  for (int i = 0; i < 50 && access(dead_file.c_str(), F_OK) == 0; ++i) {
    testing::run_command({SHMRING_CLI_PATH, "sub", other, "--create", "--kind", "topic",
                          "--timeout", "1ms"});
  }
  EXPECT_NE(access(dead_file.c_str(), F_OK), 0) << "the stale channel was not swept";
  EXPECT_TRUE(SharedMemory(channel_key(live)).exists()) << "a live channel was swept";
}
#endif

}  // namespace
}  // namespace shmring
