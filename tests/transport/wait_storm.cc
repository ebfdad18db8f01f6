// One receiver, many channels, real processes: the receiver waits on the descriptors of 64
// lossless topics and 4 queues (epoll level- or edge-triggered, poll, or a WaitSet) while 4
// publisher processes send to them at random moments and rates (bursts, short pauses, long
// pauses). Every message must arrive, in order per sender, and none may wait long after its publish
// while the receiver is idle: a lost wake-up shows as a message stuck until the next burst (after a
// long pause) or as a hang at the end.
//
//   shmring_wait_storm run --mode level|edge|poll|waitset [--messages N] [--namespaces]
//
// `run` starts the receiver and the publishers as separate processes (exec of this program); with
// --namespaces each of them runs in its own PID and network namespace (unshare --pid --net --fork),
// sharing only /dev/shm. Exit codes: 0 pass, 1 a check failed, 2 bad usage, 77 namespaces
// unavailable (not root / no unshare).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "shmring/core/clock.h"
#include "shmring/transport/queue.h"
#include "shmring/transport/topic.h"
#include "shmring/transport/wait_set.h"

namespace {

using namespace std::chrono_literals;
using shmring::ChannelResult;

constexpr int kTopics = 64;
constexpr int kQueues = 4;
constexpr int kPublishers = 4;
constexpr std::uint64_t kTopicCapacity = 64 * 1024;
constexpr std::uint64_t kMaxMessage = 200;
constexpr std::uint64_t kQueueSlots = 1024;
constexpr std::uint64_t kQueueItem = 64;
// A message that waited longer than this after its publish, with the receiver idle, means a lost
// (or very late) wake-up: publishers pause for kLongPause twice each, so a lost wake-up before
// such a pause is caught.
constexpr std::uint64_t kStallBoundNs = 500'000'000;
constexpr auto kLongPause = 1200ms;

struct Message {
  std::uint32_t publisher;
  std::uint32_t channel;  // 0..63 topics, 64..67 queues
  std::uint64_t seq;      // per (channel, publisher), from 1
  std::uint64_t publish_ns;
  std::uint64_t check;    // publisher ^ channel ^ seq, mixed
};

std::uint64_t check_of(const Message& m) {
  return (m.seq * 0x9E3779B97F4A7C15ULL) ^ (std::uint64_t{m.publisher} << 40) ^ m.channel;
}

std::string topic_name(const std::string& prefix, int i) { return prefix + "_t" + std::to_string(i); }
std::string queue_name(const std::string& prefix, int i) { return prefix + "_q" + std::to_string(i); }

shmring::TopicOptions topic_options() {
  shmring::TopicOptions o;
  o.capacity = kTopicCapacity;
  o.max_message = kMaxMessage;
  o.lossless = true;
  o.max_peers = 8;
  return o;
}
shmring::QueueOptions queue_options() {
  shmring::QueueOptions o;
  o.capacity = kQueueSlots;
  o.max_message = kQueueItem;
  o.max_peers = 8;
  return o;
}

std::string arg_value(int argc, char** argv, const char* name, const char* fallback) {
  for (int i = 0; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], name) == 0) return argv[i + 1];
  }
  return fallback;
}
bool has_flag(int argc, char** argv, const char* name) {
  for (int i = 0; i < argc; ++i) {
    if (std::strcmp(argv[i], name) == 0) return true;
  }
  return false;
}

// --- publisher --------------------------------------------------------------------------------------

int publish(const std::string& prefix, int index, std::uint64_t messages, std::uint64_t seed) {
  std::vector<shmring::TopicPublisher> topics;
  std::vector<int> topic_ids;
  for (int t = index; t < kTopics; t += kPublishers) {
    auto p = shmring::TopicPublisher::open(topic_name(prefix, t), topic_options());
    if (!p.ok()) {
      std::fprintf(stderr, "publisher %d: %s\n", index, p.status().ToString().c_str());
      return 1;
    }
    topics.push_back(*std::move(p));
    topic_ids.push_back(t);
  }
  std::vector<shmring::QueueProducer> queues;
  for (int q = 0; q < kQueues; ++q) {
    auto p = shmring::QueueProducer::open(queue_name(prefix, q), queue_options());
    if (!p.ok()) {
      std::fprintf(stderr, "publisher %d: %s\n", index, p.status().ToString().c_str());
      return 1;
    }
    queues.push_back(*std::move(p));
  }
  std::mt19937_64 rng(seed * 7919 + static_cast<std::uint64_t>(index));
  std::vector<std::uint64_t> seq(kTopics + kQueues, 0);
  // Two long pauses at random points of this publisher's stream.
  const std::uint64_t pause_a = rng() % messages, pause_b = rng() % messages;
  std::byte buf[kMaxMessage] = {};
  std::uint64_t sent = 0;
  while (sent < messages) {
    const std::uint64_t burst = std::min<std::uint64_t>(1 + rng() % 600, messages - sent);
    for (std::uint64_t i = 0; i < burst; ++i, ++sent) {
      if (sent == pause_a || sent == pause_b) std::this_thread::sleep_for(kLongPause);
      const bool to_queue = rng() % 5 == 0;
      Message m{};
      m.publisher = static_cast<std::uint32_t>(index);
      const std::size_t slot = to_queue ? rng() % kQueues : rng() % topics.size();
      m.channel = static_cast<std::uint32_t>(to_queue ? kTopics + static_cast<int>(slot) : topic_ids[slot]);
      m.seq = ++seq[m.channel];
      m.publish_ns = shmring::monotonic_ns();
      m.check = check_of(m);
      std::memcpy(buf, &m, sizeof(m));
      const std::size_t size = to_queue ? kQueueItem : sizeof(Message) + rng() % (kMaxMessage - sizeof(Message) + 1);
      const std::span<const std::byte> bytes(buf, size);
      const ChannelResult r = to_queue ? queues[slot].send(bytes, 30s) : topics[slot].send(bytes, 30s);
      if (r != ChannelResult::kOk) {
        std::fprintf(stderr, "publisher %d: send: %s\n", index, std::string(shmring::to_string(r)).c_str());
        return 1;
      }
    }
    const std::uint64_t dice = rng() % 100;
    if (dice < 2) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20 + rng() % 60));
    } else if (dice < 60) {
      std::this_thread::sleep_for(std::chrono::microseconds(rng() % 2000));
    }  // else straight into the next burst
  }
  return 0;
}

// --- receiver ---------------------------------------------------------------------------------------

struct Checker {
  std::vector<std::uint64_t> next_seq = std::vector<std::uint64_t>((kTopics + kQueues) * kPublishers, 1);
  std::uint64_t received = 0;
  std::uint64_t max_wait_ns = 0;
  std::uint64_t stalls = 0;  // messages past kStallBoundNs
  bool failed = false;

  void take(std::span<const std::byte> bytes, int channel) {
    Message m{};
    if (bytes.size() < sizeof(m)) {
      fail("short message", channel);
      return;
    }
    std::memcpy(&m, bytes.data(), sizeof(m));
    const std::uint64_t now = shmring::monotonic_ns();
    if (m.check != check_of(m) || m.channel != static_cast<std::uint32_t>(channel) || m.publisher >= kPublishers) {
      fail("corrupt message", channel);
      return;
    }
    std::uint64_t& expected = next_seq[static_cast<std::size_t>(channel) * kPublishers + m.publisher];
    if (m.seq != expected) {
      std::fprintf(stderr, "channel %d publisher %u: got seq %" PRIu64 ", expected %" PRIu64 "\n", channel,
                   m.publisher, m.seq, expected);
      failed = true;
    }
    expected = m.seq + 1;
    ++received;
    const std::uint64_t waited = now > m.publish_ns ? now - m.publish_ns : 0;
    max_wait_ns = std::max(max_wait_ns, waited);
    if (waited > kStallBoundNs) ++stalls;
  }
  void fail(const char* what, int channel) {
    std::fprintf(stderr, "channel %d: %s\n", channel, what);
    failed = true;
  }
};

struct Receiver {
  std::vector<shmring::TopicSubscriber> topics;
  std::vector<shmring::QueueConsumer> queues;
  std::vector<std::byte> buf = std::vector<std::byte>(kMaxMessage);
  Checker checker;

  int fd_of(int channel) const {
    return channel < kTopics ? topics[static_cast<std::size_t>(channel)].wait_fd()
                             : queues[static_cast<std::size_t>(channel - kTopics)].wait_fd();
  }
  // Drains one channel until kWouldBlock (which re-arms its descriptor). False on an error.
  bool drain(int channel) {
    for (;;) {
      std::size_t n = 0;
      const ChannelResult r = channel < kTopics
                                  ? topics[static_cast<std::size_t>(channel)].try_receive(buf, &n)
                                  : queues[static_cast<std::size_t>(channel - kTopics)].try_receive(buf, &n);
      if (r == ChannelResult::kWouldBlock) return true;
      if (r != ChannelResult::kOk) {
        std::fprintf(stderr, "channel %d: receive: %s\n", channel, std::string(shmring::to_string(r)).c_str());
        return false;
      }
      checker.take(std::span<const std::byte>(buf.data(), n), channel);
    }
  }
};

int receive(const std::string& prefix, const std::string& mode, std::uint64_t total) {
  Receiver rx;
  for (int t = 0; t < kTopics; ++t) {
    auto s = shmring::TopicSubscriber::open(topic_name(prefix, t), topic_options());
    if (!s.ok()) {
      std::fprintf(stderr, "receiver: %s\n", s.status().ToString().c_str());
      return 1;
    }
    rx.topics.push_back(*std::move(s));
  }
  for (int q = 0; q < kQueues; ++q) {
    auto c = shmring::QueueConsumer::open(queue_name(prefix, q), queue_options());
    if (!c.ok()) {
      std::fprintf(stderr, "receiver: %s\n", c.status().ToString().c_str());
      return 1;
    }
    rx.queues.push_back(*std::move(c));
  }
  constexpr int kChannels = kTopics + kQueues;
  int ep = -1;
  std::vector<pollfd> pfds;
  auto set = shmring::WaitSet::create();
  if (!set.ok()) return 1;
  if (mode == "level" || mode == "edge") {
    ep = epoll_create1(EPOLL_CLOEXEC);
    for (int c = 0; c < kChannels; ++c) {
      epoll_event ev{};
      ev.events = EPOLLIN | (mode == "edge" ? EPOLLET : 0u);
      ev.data.u32 = static_cast<std::uint32_t>(c);
      if (rx.fd_of(c) < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, rx.fd_of(c), &ev) != 0) return 1;
    }
  } else if (mode == "poll") {
    for (int c = 0; c < kChannels; ++c) pfds.push_back({rx.fd_of(c), POLLIN, 0});
  } else if (mode == "waitset") {
    for (int c = 0; c < kTopics; ++c) {
      if (!set->add(rx.topics[static_cast<std::size_t>(c)], static_cast<std::uint64_t>(c)).ok()) return 1;
    }
    for (int q = 0; q < kQueues; ++q) {
      if (!set->add(rx.queues[static_cast<std::size_t>(q)], static_cast<std::uint64_t>(kTopics + q)).ok()) return 1;
    }
  } else {
    std::fprintf(stderr, "unknown mode %s\n", mode.c_str());
    return 2;
  }
  // Returns the channels ready now (waiting up to timeout_ms).
  std::vector<int> ready;
  auto wait_ready = [&](int timeout_ms) -> bool {
    ready.clear();
    if (ep >= 0) {
      epoll_event events[kChannels];
      const int n = epoll_wait(ep, events, kChannels, timeout_ms);
      if (n < 0) return errno == EINTR;
      for (int i = 0; i < n; ++i) ready.push_back(static_cast<int>(events[i].data.u32));
    } else if (!pfds.empty()) {
      const int n = poll(pfds.data(), pfds.size(), timeout_ms);
      if (n < 0) return errno == EINTR;
      for (int c = 0; c < kChannels; ++c) {
        if (pfds[static_cast<std::size_t>(c)].revents != 0) ready.push_back(c);
      }
    } else {
      auto r = set->wait(std::chrono::milliseconds(timeout_ms));
      if (!r.ok()) return false;
      for (const auto& entry : *r) ready.push_back(static_cast<int>(entry.tag));
    }
    return true;
  };
  // Every descriptor starts readable: the first round drains (and arms) all of them.
  if (!wait_ready(1000)) return 1;
  for (int c = 0; c < kChannels; ++c) {
    if (!rx.drain(c)) return 1;
  }
  // No traffic, no wake-up.
  if (!wait_ready(100)) return 1;
  const std::size_t idle_wakeups = ready.size();
  std::printf("ready\n");
  std::fflush(stdout);

  std::uint64_t wakeups = 0;
  const std::uint64_t deadline = shmring::monotonic_ns() + 240'000'000'000ULL;
  while (rx.checker.received < total) {
    if (!wait_ready(1000)) return 1;
    if (ready.empty()) {
      if (shmring::monotonic_ns() > deadline) {
        std::fprintf(stderr, "receiver: stuck at %" PRIu64 " of %" PRIu64 " messages\n", rx.checker.received,
                     total);
        return 1;
      }
      continue;
    }
    ++wakeups;
    for (const int c : ready) {
      if (!rx.drain(c)) return 1;
    }
  }
  const Checker& k = rx.checker;
  std::printf("storm mode=%s messages=%" PRIu64 " wakeups=%" PRIu64 " idle_wakeups=%zu max_wait_ms=%.2f stalls=%" PRIu64
              "\n",
              mode.c_str(), k.received, wakeups, idle_wakeups, static_cast<double>(k.max_wait_ns) / 1e6, k.stalls);
  std::fflush(stdout);
  if (ep >= 0) close(ep);
  return k.failed || k.stalls != 0 || idle_wakeups != 0 ? 1 : 0;
}

// --- orchestration ----------------------------------------------------------------------------------

pid_t spawn(const std::vector<std::string>& args, int stdout_fd) {
  const pid_t pid = fork();
  if (pid != 0) return pid;
  if (stdout_fd >= 0) dup2(stdout_fd, STDOUT_FILENO);
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  execvp(argv[0], argv.data());
  _exit(127);
}

int run(const char* self, const std::string& mode, std::uint64_t messages, bool namespaces) {
  std::vector<std::string> wrap;
  if (namespaces) {
    if (geteuid() != 0 || system("unshare --pid --net --fork true >/dev/null 2>&1") != 0) {
      std::printf("namespaces unavailable (need root and unshare): skipped\n");
      return 77;
    }
    wrap = {"unshare", "--pid", "--net", "--fork", "--"};
  }
  const std::string prefix = "t_" + std::to_string(getpid()) + "_storm_" + mode;
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) return 1;
  std::vector<std::string> rx_args = wrap;
  rx_args.insert(rx_args.end(), {self, "receive", "--prefix", prefix, "--mode", mode, "--messages",
                                 std::to_string(messages)});
  const pid_t receiver = spawn(rx_args, out[1]);
  close(out[1]);
  FILE* rx_out = fdopen(out[0], "r");
  char line[512];
  if (fgets(line, sizeof(line), rx_out) == nullptr || std::strcmp(line, "ready\n") != 0) {
    std::fprintf(stderr, "receiver did not get ready\n");
    kill(receiver, SIGKILL);
    waitpid(receiver, nullptr, 0);
    return 1;
  }
  std::vector<pid_t> publishers;
  const std::uint64_t seed = static_cast<std::uint64_t>(getpid());
  for (int i = 0; i < kPublishers; ++i) {
    const std::uint64_t share = messages / kPublishers + (i == 0 ? messages % kPublishers : 0);
    std::vector<std::string> args = wrap;
    args.insert(args.end(), {self, "publish", "--prefix", prefix, "--index", std::to_string(i), "--messages",
                             std::to_string(share), "--seed", std::to_string(seed)});
    publishers.push_back(spawn(args, -1));
  }
  bool ok = true;
  for (const pid_t p : publishers) {
    int status = 0;
    waitpid(p, &status, 0);
    ok = ok && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  }
  while (fgets(line, sizeof(line), rx_out) != nullptr) std::fputs(line, stdout);
  fclose(rx_out);
  int status = 0;
  waitpid(receiver, &status, 0);
  ok = ok && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  for (int t = 0; t < kTopics; ++t) (void)shmring::remove_channel(topic_name(prefix, t));
  for (int q = 0; q < kQueues; ++q) (void)shmring::remove_channel(queue_name(prefix, q));
  std::printf("%s\n", ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s run --mode level|edge|poll|waitset [--messages N] [--namespaces]\n", argv[0]);
    return 2;
  }
  const std::string command = argv[1];
  const std::string mode = arg_value(argc, argv, "--mode", "level");
  const std::uint64_t messages = std::strtoull(arg_value(argc, argv, "--messages", "1000000").c_str(), nullptr, 10);
  const std::string prefix = arg_value(argc, argv, "--prefix", "");
  if (command == "run") {
    char self[4096] = {};
    if (readlink("/proc/self/exe", self, sizeof(self) - 1) <= 0) return 2;
    return run(self, mode, messages, has_flag(argc, argv, "--namespaces"));
  }
  if (command == "receive") return receive(prefix, mode, messages);
  if (command == "publish") {
    return publish(prefix, std::atoi(arg_value(argc, argv, "--index", "0").c_str()), messages,
                   std::strtoull(arg_value(argc, argv, "--seed", "1").c_str(), nullptr, 10));
  }
  std::fprintf(stderr, "unknown command %s\n", command.c_str());
  return 2;
}
