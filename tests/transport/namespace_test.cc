// Liveness across PID namespaces (containers that share /dev/shm but not PIDs): a subscriber runs
// as `shmring sub` under `unshare --pid --fork --mount-proc` (pid 1 in its own namespace). A live
// one is never taken for dead by a publisher that keeps looking for dead subscribers; a killed one
// is reclaimed as promptly as in one namespace. Needs root (CI runs as root); skipped otherwise.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "shmring/transport/topic.h"
#include "transport_test_util.h"

namespace shmring {
namespace {

using namespace std::chrono_literals;
using testing::channel_name;
using testing::topic;

std::vector<std::byte> message(int i) {
  std::vector<std::byte> m(32);
  testing::fill_message(m, static_cast<std::uint64_t>(i));
  return m;
}

bool namespaces_available() {
  return std::system("unshare --pid --fork --mount-proc true > /dev/null 2>&1") == 0;
}

// `shmring sub NAME --count N --timeout 60` in a new PID (and mount) namespace, output discarded.
pid_t spawn_namespaced_subscriber(const std::string& name, int count) {
  const pid_t pid = fork();
  if (pid != 0) return pid;
  const int devnull = open("/dev/null", O_WRONLY);
  if (devnull >= 0) dup2(devnull, STDOUT_FILENO);
  const std::string count_text = std::to_string(count);
  execlp("unshare", "unshare", "--pid", "--fork", "--kill-child", "--mount-proc", SHMRING_CLI_PATH,
         "sub", name.c_str(), "--count", count_text.c_str(), "--timeout", "60", nullptr);
  _exit(127);
}

// Waits until the channel has `peers` registered endpoints (the subscriber registered).
bool wait_for_peers(const std::string& name, std::size_t peers) {
  for (int i = 0; i < 2000; ++i) {
    auto st = read_stats(name);
    if (st.ok() && st->peers.size() >= peers) return true;
    std::this_thread::sleep_for(5ms);
  }
  return false;
}

int wait_exit(pid_t pid) {
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

TEST(NamespaceTest, LiveSubscriberInAnotherPidNamespaceIsNeverReclaimed) {
  if (!namespaces_available()) GTEST_SKIP() << "unshare --pid needs root here";
  const std::string name = channel_name("ns_live");
  TopicOptions o = topic(1024, 32, true);
  o.dead_check_interval = 1ms;  // the publisher looks for dead subscribers all the time
  auto pub = TopicPublisher::open(name, o);
  ASSERT_TRUE(pub.ok()) << pub.status();
  constexpr int kMessages = 3000;
  const pid_t sub = spawn_namespaced_subscriber(name, kMessages);
  ASSERT_TRUE(wait_for_peers(name, 2)) << "the namespaced subscriber never registered";
  auto st = read_stats(name);
  ASSERT_TRUE(st.ok());
  for (const PeerStats& p : st->peers) EXPECT_TRUE(p.alive) << "peer " << p.index << " pid " << p.pid;
  // The ring holds ~20 messages: the publisher is held back over and over, and each time runs
  // its dead-subscriber check against a subscriber whose pid means nothing in this namespace.
  for (int i = 0; i < kMessages; ++i) {
    ASSERT_EQ(pub->send(message(i), 10s), ChannelResult::kOk) << i;
  }
  EXPECT_EQ(wait_exit(sub), 0) << "the subscriber was evicted or lost messages";
  st = read_stats(name);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->peers_reclaimed, 0u);
  EXPECT_EQ(pub->evictions(), 0u);
}

TEST(NamespaceTest, KilledSubscriberInAnotherPidNamespaceIsReclaimed) {
  if (!namespaces_available()) GTEST_SKIP() << "unshare --pid needs root here";
  const std::string name = channel_name("ns_dead");
  TopicOptions o = topic(1024, 32, true);
  o.dead_check_interval = 1ms;
  auto pub = TopicPublisher::open(name, o);
  ASSERT_TRUE(pub.ok()) << pub.status();
  const pid_t sub = spawn_namespaced_subscriber(name, 1'000'000);
  ASSERT_TRUE(wait_for_peers(name, 2));
  kill(sub, SIGKILL);  // --kill-child: the namespace's pid 1 dies with it
  wait_exit(sub);
  // Far more than the ring holds: only possible once the dead subscriber is reclaimed.
  for (int i = 0; i < 200; ++i) {
    ASSERT_EQ(pub->send(message(i), 10s), ChannelResult::kOk) << i;
  }
  auto st = read_stats(name);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->peers_reclaimed, 1u);
}

}  // namespace
}  // namespace shmring
