// Fan-out demo: one publisher, three subscriber processes (one deliberately slow) on a lossy topic.
// Prints one line per second: messages/s, latency p50/p99/p99.9 and messages lost per subscriber,
// then a summary with each subscriber's latency over the whole run. Exit status 0 if every
// subscriber received or was told it lost every message, none torn, duplicated or out of order.
//
//   shmring_example_fanout [--seconds 10] [--rate 200000] [--wait auto|spin|hybrid|park|fd]
//                          [--name demo.fanout.PID]
//
// How the processes wait decides what the latency figures measure. With a core for each of the
// four processes, subscribers busy-spin and the publisher paces itself by spinning: the figures
// are the data path's (around a microsecond). With fewer cores than processes (a 2-core VM), a
// spinning subscriber sits on the core the publisher or another subscriber needs until the
// scheduler takes it away, so the figures measure time slices (from microseconds to milliseconds,
// different every second). There `--wait auto` (the default) parks the subscribers on the
// channel's futex (the publisher wakes them only when one is parked) and has the publisher sleep
// between bursts instead of spinning: every figure then includes one wake-up, and stays put.
#include <sched.h>
#include <sys/epoll.h>
#include <sys/prctl.h>

#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <thread>

#include "example_util.h"
#include "shmring/transport/topic.h"

using namespace shmring;
using namespace shmring::examples;

namespace {

constexpr int kSubscribers = 3;
constexpr int kProcesses = kSubscribers + 1;
constexpr int kMaxSeconds = 600;
// Parked mode: the publisher wakes this often and sends what is due (20 messages at 200 000/s).
constexpr std::uint64_t kBurstNs = 100'000;

enum class Wait { kSpin, kHybrid, kPark, kDescriptor };

struct Second {
  std::atomic<std::uint64_t> count, p50, p99, p999, lost;
  std::atomic<std::uint32_t> done;  // stored last
};
struct Whole {  // one subscriber's latency over the whole run, and the spread of its seconds
  std::atomic<std::uint64_t> p50, p99, p999, second_p50_min, second_p50_max;
};
struct Board {
  std::atomic<std::uint32_t> ready;
  std::atomic<std::uint32_t> stop;
  std::atomic<std::uint64_t> bad[kSubscribers];
  std::atomic<std::uint64_t> total[kSubscribers];
  std::atomic<std::uint64_t> lost[kSubscribers];
  Whole whole[kSubscribers];
  Second seconds[kMaxSeconds][kSubscribers];
};

struct Payload {
  std::uint64_t seq;
  std::uint64_t sent_ns;
  std::uint64_t check;
};

// The cores this process may run on: its affinity mask, capped by a cgroup v2 CPU quota (a
// container limited to 1.5 CPUs counts as 2).
int usable_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  int cores = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set)
                                                          : static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
  if (FILE* f = std::fopen("/sys/fs/cgroup/cpu.max", "r")) {
    char quota[32] = {};
    long period = 0;
    if (std::fscanf(f, "%31s %ld", quota, &period) == 2 && std::strcmp(quota, "max") != 0 && period > 0) {
      const long limit = (std::atol(quota) + period - 1) / period;
      cores = std::min(cores, static_cast<int>(std::max(1L, limit)));
    }
    std::fclose(f);
  }
  return std::max(cores, 1);
}

const char* wait_name(Wait wait) {
  switch (wait) {
    case Wait::kSpin: return "spin";
    case Wait::kHybrid: return "hybrid";
    case Wait::kPark: return "park";
    case Wait::kDescriptor: return "fd";
  }
  return "?";
}

// Why this way of waiting, in a sentence a newcomer can act on.
void explain(Wait wait, int cores, bool chosen) {
  std::printf("machine: %d usable core(s) for %d processes (1 publisher, %d subscribers)", cores,
              kProcesses, kSubscribers);
  double load = 0;
  if (getloadavg(&load, 1) == 1 && load > cores) {
    // Other programs compete for the cores: every wake-up waits for a turn, and the p99 shows it.
    std::printf("; busy: load average %.1f (other programs delay wake-ups: see the p99)", load);
  }
  std::printf("\n");
  const char* why = !chosen ? "as asked (--wait)" : cores >= kProcesses ? "a core each" : "more processes than cores";
  switch (wait) {
    case Wait::kSpin:
      std::printf("waits: spin (%s): subscribers busy-spin, the publisher paces itself by spinning;\n"
                  "       latencies are the data path's. With fewer cores than processes they would\n"
                  "       measure the scheduler's time slices instead.\n", why);
      break;
    case Wait::kHybrid:
      std::printf("waits: hybrid (%s): subscribers spin 2000 times, then park on the channel's futex;\n"
                  "       the publisher paces itself by spinning.\n", why);
      break;
    case Wait::kPark:
      std::printf("waits: park (%s): subscribers sleep on the channel's futex, woken by the\n"
                  "       publisher (a system call only while one is parked); the publisher sleeps\n"
                  "       between bursts of what is due every %" PRIu64 " us. Every figure includes a\n"
                  "       wake-up; with a core per process, --wait spin shows the data path alone.\n",
                  why, kBurstNs / 1000);
      break;
    case Wait::kDescriptor:
      std::printf("waits: fd (%s): subscribers sleep in epoll on their wait_fd() (docs/events.md);\n"
                  "       the publisher sleeps between bursts every %" PRIu64 " us.\n", why, kBurstNs / 1000);
      break;
  }
}

// Waits for and receives the next message the way `wait` says (20 ms at most, so the stop flag is
// seen promptly).
ChannelResult next_message(TopicSubscriber& sub, Wait wait, int epoll_fd, std::span<std::byte> buf,
                           std::size_t* n) {
  if (wait != Wait::kDescriptor) return sub.receive(buf, n, std::chrono::milliseconds(20));
  const ChannelResult r = sub.try_receive(buf, n);
  if (r != ChannelResult::kWouldBlock) return r;
  epoll_event event{};
  epoll_wait(epoll_fd, &event, 1, 20);  // kWouldBlock re-armed the descriptor
  return sub.try_receive(buf, n);
}

int subscriber(const std::string& name, Board* board, int index, std::uint64_t start_ns, Wait wait,
               int seconds, std::uint64_t expected) {
  TopicOptions o;
  o.wait.strategy = wait == Wait::kSpin     ? WaitStrategy::kBusySpin
                    : wait == Wait::kHybrid ? WaitStrategy::kHybrid
                                            : WaitStrategy::kPark;
  auto sub = TopicSubscriber::open(name, o);
  if (!sub.ok()) {
    std::fprintf(stderr, "subscriber %d: %s\n", index, sub.status().ToString().c_str());
    return 2;
  }
  int epoll_fd = -1;
  if (wait == Wait::kDescriptor) {
    epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    epoll_event event{};
    event.events = EPOLLIN;
    if (sub->wait_fd() < 0 || epoll_ctl(epoll_fd, EPOLL_CTL_ADD, sub->wait_fd(), &event) != 0) {
      std::perror("wait_fd");
      return 2;
    }
  }
  board->ready.fetch_add(1);
  std::vector<std::byte> buf(sub->max_message());
  std::vector<std::uint64_t> samples;
  std::vector<std::uint64_t> all;  // every latency of the run, for the summary
  all.reserve(index == kSubscribers - 1 ? expected / 8 : expected);
  std::uint64_t second_p50_min = UINT64_MAX, second_p50_max = 0;
  int second = 0;
  std::uint64_t next = 0;
  bool first = true;
  auto flush = [&](int s) {
    if (s >= kMaxSeconds) return;
    Second& out = board->seconds[s][index];
    out.count.store(samples.size());
    const std::uint64_t p50 = percentile(samples, 0.50);
    out.p50.store(p50);
    out.p99.store(percentile(samples, 0.99));
    out.p999.store(percentile(samples, 0.999));
    out.lost.store(sub->lost());
    out.done.store(1);
    if (!samples.empty() && s < seconds) {  // not the drain after the run
      second_p50_min = std::min(second_p50_min, p50);
      second_p50_max = std::max(second_p50_max, p50);
    }
    samples.clear();
  };
  for (;;) {
    // Once the publisher has stopped, drain what is left at full speed: then every message it
    // published has been received or counted lost (the summary checks received + lost).
    const bool stopping = board->stop.load() != 0;
    std::size_t n = 0;
    const ChannelResult r = stopping ? sub->try_receive(buf, &n) : next_message(*sub, wait, epoll_fd, buf, &n);
    if (stopping && r != ChannelResult::kOk) break;
    const std::uint64_t now = now_ns();
    const int s = now < start_ns ? 0 : static_cast<int>((now - start_ns) / 1'000'000'000ULL);
    while (second < s) flush(second++);
    if (r != ChannelResult::kOk) continue;
    Payload p{};
    if (n != sizeof(p)) {
      board->bad[index].fetch_add(1);
      continue;
    }
    std::memcpy(&p, buf.data(), sizeof(p));
    if (p.check != mix64(p.seq) || (!first && p.seq < next)) board->bad[index].fetch_add(1);
    first = false;
    next = p.seq + 1;
    samples.push_back(now - p.sent_ns);
    all.push_back(now - p.sent_ns);
    board->total[index].fetch_add(1);
    if (index == kSubscribers - 1 && !stopping) {
      std::this_thread::sleep_for(std::chrono::microseconds(50));  // the slow one
    }
  }
  flush(second);
  board->lost[index].store(sub->lost());
  Whole& whole = board->whole[index];
  whole.p50.store(percentile(all, 0.50));
  whole.p99.store(percentile(all, 0.99));
  whole.p999.store(percentile(all, 0.999));
  whole.second_p50_min.store(second_p50_min == UINT64_MAX ? 0 : second_p50_min);
  whole.second_p50_max.store(second_p50_max);
  if (epoll_fd >= 0) close(epoll_fd);
  return 0;
}

// "850ns", "12.3us", "4.10ms": the unit that suits the value.
std::string duration_text(std::uint64_t ns) {
  char buffer[32];
  if (ns < 1000) {
    std::snprintf(buffer, sizeof buffer, "%" PRIu64 "ns", ns);
  } else if (ns < 1'000'000) {
    std::snprintf(buffer, sizeof buffer, "%.1fus", static_cast<double>(ns) / 1e3);
  } else {
    std::snprintf(buffer, sizeof buffer, "%.2fms", static_cast<double>(ns) / 1e6);
  }
  return buffer;
}

void print_second(Board* board, int r) {
  std::printf("t=%2ds", r + 1);
  for (int i = 0; i < kSubscribers; ++i) {
    const Second& x = board->seconds[r][i];
    std::printf(" | sub%d %7" PRIu64 " msg/s p50 %8s p99 %8s p99.9 %8s lost %" PRIu64, i, x.count.load(),
                duration_text(x.p50.load()).c_str(), duration_text(x.p99.load()).c_str(),
                duration_text(x.p999.load()).c_str(), x.lost.load());
  }
  std::printf("\n");
  std::fflush(stdout);
}

// Sends what is due until `end_ns`: spinning from message to message, or (parked modes) in bursts
// with a sleep between them, so the publisher never holds a core it does not use.
// Returns how many it sent; *printed: the seconds whose line it printed.
std::uint64_t publish(TopicPublisher& pub, Board* board, Wait wait, double rate, std::uint64_t start_ns,
                      std::uint64_t end_ns, int seconds, int* printed_out) {
  const bool bursts = wait == Wait::kPark || wait == Wait::kDescriptor;
  const double interval_ns = 1e9 / rate;
  std::uint64_t seq = 0;
  int printed = 0;
  for (;;) {
    const std::uint64_t now = now_ns();
    const auto due = start_ns + static_cast<std::uint64_t>(static_cast<double>(seq) * interval_ns);
    if (due >= end_ns) break;  // everything due in the run is sent, late or not
    if (now < due) {
      if (bursts) {
        const std::uint64_t wake = std::min(due + kBurstNs - (due - start_ns) % kBurstNs, end_ns);
        const timespec at{static_cast<time_t>(wake / 1'000'000'000ULL), static_cast<long>(wake % 1'000'000'000ULL)};
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, nullptr);
      } else if (due - now > 50'000) {
        std::this_thread::sleep_for(std::chrono::microseconds(20));
      }
      continue;
    }
    Payload p{seq, now_ns(), mix64(seq)};
    pub.try_send(std::as_bytes(std::span(&p, 1)));
    ++seq;
    const int s = static_cast<int>((now - start_ns) / 1'000'000'000ULL);
    if (s >= printed + 1 && printed < seconds) {
      bool all = true;  // every subscriber has flushed that second (or it is long over)
      for (int i = 0; i < kSubscribers; ++i) all = all && board->seconds[printed][i].done.load() != 0;
      if (all || s >= printed + 2) print_second(board, printed++);
    }
  }
  *printed_out = printed;
  return seq;
}

}  // namespace

int main(int argc, char** argv) {
  const int seconds = std::min(std::atoi(arg(argc, argv, "--seconds", "10").c_str()), kMaxSeconds - 1);
  const double rate = std::atof(arg(argc, argv, "--rate", "200000").c_str());
  const std::string name = arg(argc, argv, "--name", "demo.fanout." + std::to_string(getpid()));
  const std::string wait_arg = arg(argc, argv, "--wait", "auto");
  if (seconds < 1 || !(rate >= 1 && rate <= 1e8)) {
    std::fprintf(stderr, "usage: shmring_example_fanout [--seconds 1..%d] [--rate 1..1e8] "
                         "[--wait auto|spin|hybrid|park|fd] [--name NAME]\n", kMaxSeconds - 1);
    return 2;
  }
  const int cores = usable_cores();
  Wait wait = cores >= kProcesses ? Wait::kSpin : Wait::kPark;
  if (wait_arg == "spin") {
    wait = Wait::kSpin;
  } else if (wait_arg == "hybrid") {
    wait = Wait::kHybrid;
  } else if (wait_arg == "park") {
    wait = Wait::kPark;
  } else if (wait_arg == "fd") {
    wait = Wait::kDescriptor;
  } else if (wait_arg != "auto") {
    std::fprintf(stderr, "--wait: want auto, spin, hybrid, park or fd, not '%s'\n", wait_arg.c_str());
    return 2;
  }
  // Sleeps end when asked, not up to 50 us later (the default timer slack): the parked
  // publisher's bursts and the slow subscriber's pauses keep their length. Inherited by children.
  prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
  TopicOptions o;
  o.capacity = 1 << 20;
  o.max_message = 64;
  auto pub = TopicPublisher::open(name, o);
  if (!pub.ok()) {
    std::fprintf(stderr, "publisher: %s\n", pub.status().ToString().c_str());
    return 2;
  }
  Board* board = shared_block<Board>();
  const std::uint64_t start_ns = now_ns() + 200'000'000ULL;  // subscribers align their seconds
  const auto expected = static_cast<std::uint64_t>(rate * seconds);
  std::vector<pid_t> pids;
  for (int i = 0; i < kSubscribers; ++i) {
    pids.push_back(spawn([&, i] { return subscriber(name, board, i, start_ns, wait, seconds, expected); }));
  }
  while (board->ready.load() < kSubscribers) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  while (now_ns() < start_ns) std::this_thread::sleep_for(std::chrono::microseconds(100));
  std::printf("fan-out: 1 publisher, %d subscriber processes (#%d is slow), %.0f msg/s offered, "
              "%d s\n", kSubscribers, kSubscribers - 1, rate, seconds);
  explain(wait, cores, wait_arg == "auto");
  std::fflush(stdout);
  const std::uint64_t end_ns = start_ns + static_cast<std::uint64_t>(seconds) * 1'000'000'000ULL;
  int printed = 0;
  const std::uint64_t seq = publish(*pub, board, wait, rate, start_ns, end_ns, seconds, &printed);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  board->stop.store(1);
  bool ok = true;
  for (pid_t pid : pids) ok = wait_ok(pid) && ok;
  while (printed < seconds) print_second(board, printed++);
  std::printf("summary: published %" PRIu64 " messages in %d s (waits: %s)\n", seq, seconds, wait_name(wait));
  for (int i = 0; i < kSubscribers; ++i) {
    std::printf("  sub%d%s: received %" PRIu64 ", lost %" PRIu64 " (received + lost = %" PRIu64
                "), torn/duplicated/out-of-order %" PRIu64 "\n",
                i, i == kSubscribers - 1 ? " (slow)" : "", board->total[i].load(),
                board->lost[i].load(), board->total[i].load() + board->lost[i].load(),
                board->bad[i].load());
    if (board->bad[i].load() != 0 || board->total[i].load() + board->lost[i].load() != seq) ok = false;
  }
  std::printf("  latency, publish to receive, over the whole run (and the range of the per-second p50s):\n");
  for (int i = 0; i < kSubscribers; ++i) {
    const Whole& w = board->whole[i];
    std::printf("  sub%d%s: p50 %s  p99 %s  p99.9 %s  (per-second p50 %s .. %s)\n", i,
                i == kSubscribers - 1 ? " (slow: how far behind it runs)" : "", duration_text(w.p50.load()).c_str(),
                duration_text(w.p99.load()).c_str(), duration_text(w.p999.load()).c_str(),
                duration_text(w.second_p50_min.load()).c_str(), duration_text(w.second_p50_max.load()).c_str());
  }
  if (auto st = read_stats(name); st.ok()) {
    std::printf("  channel: sent %" PRIu64 ", received %" PRIu64 ", lost %" PRIu64 "\n", st->sent,
                st->received, st->lost);
  }
  std::printf("%s\n", ok ? "OK" : "FAILED");
  return ok ? 0 : 1;
}
