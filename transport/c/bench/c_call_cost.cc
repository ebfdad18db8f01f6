// What the C API costs over the C++ call it wraps, measured in one run:
//  1. round trip: 64-byte messages bounced between two processes pinned to two cores over two
//     topics (ping, pong), busy-polling with the non-waiting calls: through the C API and through
//     the C++ API, in alternating repetitions;
//  2. call cost: one process sends and receives 64 bytes on one topic (no other process), so
//     only the calls are timed: ns per send + receive pair, C against C++.
// Prints medians with min..max and the C/C++ ratio, and one JSON line.
//
//   shmring_c_call_cost [--reps 7] [--count 200000] [--cpus 0,1]
//   (shmring_c_call_cost_shared: the same through libshmring.so)
#include <sched.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "shmring/shmring.h"
#include "shmring/transport/topic.h"

namespace {

using Clock = std::uint64_t;

Clock now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<Clock>(ts.tv_sec) * 1'000'000'000ULL + static_cast<Clock>(ts.tv_nsec);
}

void pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  sched_setaffinity(0, sizeof set, &set);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

constexpr std::size_t kSize = 64;

// One side of the C++ round trip: `first` sends first.
double cpp_side(const std::string& out, const std::string& in, long count, bool first) {
  auto pub = shmring::TopicPublisher::open(out);
  auto sub = shmring::TopicSubscriber::open(in);
  if (!pub.ok() || !sub.ok()) std::exit(3);
  std::byte message[kSize] = {};
  std::byte buffer[kSize];
  std::size_t n = 0;
  // Wait until the peer's subscriber exists, then go.
  while (shmring::read_stats(out).value_or(shmring::ChannelStats{}).peers.size() < 2) sched_yield();
  while (shmring::read_stats(in).value_or(shmring::ChannelStats{}).peers.size() < 2) sched_yield();
  const Clock start = now_ns();
  for (long i = 0; i < count; ++i) {
    if (first) pub->try_send(message);
    while (sub->try_receive(buffer, &n) != shmring::ChannelResult::kOk) {
    }
    if (!first) pub->try_send(message);
  }
  return static_cast<double>(now_ns() - start) / static_cast<double>(count);
}

double c_side(const std::string& out, const std::string& in, long count, bool first) {
  shmring_topic_publisher_t* pub = nullptr;
  shmring_topic_subscriber_t* sub = nullptr;
  if (shmring_topic_publisher_open(out.c_str(), nullptr, &pub) != SHMRING_OK ||
      shmring_topic_subscriber_open(in.c_str(), nullptr, &sub) != SHMRING_OK) {
    std::exit(3);
  }
  unsigned char message[kSize] = {};
  unsigned char buffer[kSize];
  std::size_t n = 0;
  shmring_channel_stats_t stats{};
  auto peers = [&](const std::string& name) {
    stats.struct_size = sizeof stats;
    return shmring_read_stats(name.c_str(), &stats, nullptr, 0) == SHMRING_OK ? stats.peer_count : 0u;
  };
  while (peers(out) < 2) sched_yield();
  while (peers(in) < 2) sched_yield();
  const Clock start = now_ns();
  for (long i = 0; i < count; ++i) {
    if (first) shmring_topic_publisher_send(pub, message, kSize, 0);
    while (shmring_topic_subscriber_receive(sub, buffer, kSize, &n, 0) != SHMRING_OK) {
    }
    if (!first) shmring_topic_publisher_send(pub, message, kSize, 0);
  }
  const double per = static_cast<double>(now_ns() - start) / static_cast<double>(count);
  shmring_topic_subscriber_destroy(sub);
  shmring_topic_publisher_destroy(pub);
  return per;
}

// One repetition of the round trip: ns per round trip, measured by the side that sends first.
double round_trip(bool c_api, long count, int cpu_a, int cpu_b, int rep) {
  const std::string ping = "bench.c_cost.ping." + std::to_string(getpid()) + "." + std::to_string(rep);
  const std::string pong = "bench.c_cost.pong." + std::to_string(getpid()) + "." + std::to_string(rep);
  std::fflush(nullptr);
  const pid_t child = fork();
  if (child == 0) {
    pin(cpu_b);
    if (c_api) {
      c_side(pong, ping, count, false);
    } else {
      cpp_side(pong, ping, count, false);
    }
    std::_Exit(0);
  }
  pin(cpu_a);
  const double per = c_api ? c_side(ping, pong, count, true) : cpp_side(ping, pong, count, true);
  int status = 0;
  waitpid(child, &status, 0);
  return per;
}

// ns per 64-byte send + receive pair in one thread, C and C++ in alternating blocks of `count`
// pairs on the same two endpoints (opened once through each API), `blocks` blocks each.
void call_pairs(long count, int blocks, int rep, std::vector<double>* c_out, std::vector<double>* cpp_out) {
  const std::string c_name = "bench.c_cost.c." + std::to_string(getpid()) + "." + std::to_string(rep);
  const std::string cpp_name = "bench.c_cost.cpp." + std::to_string(getpid()) + "." + std::to_string(rep);
  unsigned char message[kSize] = {};
  unsigned char buffer[kSize];
  std::size_t n = 0;
  shmring_topic_publisher_t* c_pub = nullptr;
  shmring_topic_subscriber_t* c_sub = nullptr;
  if (shmring_topic_publisher_open(c_name.c_str(), nullptr, &c_pub) != SHMRING_OK ||
      shmring_topic_subscriber_open(c_name.c_str(), nullptr, &c_sub) != SHMRING_OK) {
    std::exit(3);
  }
  auto pub = shmring::TopicPublisher::open(cpp_name);
  auto sub = shmring::TopicSubscriber::open(cpp_name);
  if (!pub.ok() || !sub.ok()) std::exit(3);
  const auto out = std::as_bytes(std::span(message));
  const auto in = std::as_writable_bytes(std::span(buffer));
  for (int block = 0; block < blocks; ++block) {
    Clock start = now_ns();
    for (long i = 0; i < count; ++i) {
      shmring_topic_publisher_send(c_pub, message, kSize, 0);
      shmring_topic_subscriber_receive(c_sub, buffer, kSize, &n, 0);
    }
    c_out->push_back(static_cast<double>(now_ns() - start) / static_cast<double>(count));
    start = now_ns();
    for (long i = 0; i < count; ++i) {
      pub->try_send(out);
      sub->try_receive(in, &n);
    }
    cpp_out->push_back(static_cast<double>(now_ns() - start) / static_cast<double>(count));
  }
  shmring_topic_subscriber_destroy(c_sub);
  shmring_topic_publisher_destroy(c_pub);
}

const char* arg(int argc, char** argv, const char* key, const char* fallback) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], key) == 0) return argv[i + 1];
  }
  return fallback;
}

void report(const char* what, const std::vector<double>& c, const std::vector<double>& cpp) {
  const auto [c_min, c_max] = std::minmax_element(c.begin(), c.end());
  const auto [p_min, p_max] = std::minmax_element(cpp.begin(), cpp.end());
  std::printf("%-34s C %7.1f ns (%.1f..%.1f)   C++ %7.1f ns (%.1f..%.1f)   C - C++ %+6.1f ns, ratio %.3f\n", what,
              median(c), *c_min, *c_max, median(cpp), *p_min, *p_max, median(c) - median(cpp),
              median(c) / median(cpp));
}

}  // namespace

int main(int argc, char** argv) {
  const int reps = std::atoi(arg(argc, argv, "--reps", "7"));
  const long count = std::atol(arg(argc, argv, "--count", "200000"));
  int cpu_a = 0, cpu_b = 1;
  std::sscanf(arg(argc, argv, "--cpus", "0,1"), "%d,%d", &cpu_a, &cpu_b);
  if (reps < 1 || count < 1) return 2;
  std::vector<double> c_rt, cpp_rt, c_pair, cpp_pair;
  for (int rep = 0; rep < reps; ++rep) {  // alternating, so drift in the machine hits both alike
    cpp_rt.push_back(round_trip(false, count, cpu_a, cpu_b, 4 * rep));
    c_rt.push_back(round_trip(true, count, cpu_a, cpu_b, 4 * rep + 1));
    call_pairs(count / 2, 10, 4 * rep + 2, &c_pair, &cpp_pair);
  }
  std::printf("C API against C++ API, 64 B topic messages, %d repetitions (median, min..max), cores %d,%d\n", reps,
              cpu_a, cpu_b);
  report("round trip (two processes)", c_rt, cpp_rt);
  report("send + receive (one thread)", c_pair, cpp_pair);
  std::printf("(one thread: %zu blocks of %ld pairs per API, alternating; fastest block: C %.1f ns, C++ %.1f ns)\n",
              c_pair.size(), count / 2, *std::min_element(c_pair.begin(), c_pair.end()),
              *std::min_element(cpp_pair.begin(), cpp_pair.end()));
  std::printf("{\"bench\":\"c_call_cost\",\"size\":64,\"reps\":%d,\"count\":%ld,\"cpus\":\"%d,%d\","
              "\"rtt_c_ns\":%.1f,\"rtt_cpp_ns\":%.1f,\"pair_c_ns\":%.1f,\"pair_cpp_ns\":%.1f}\n",
              reps, count, cpu_a, cpu_b, median(c_rt), median(cpp_rt), median(c_pair), median(cpp_pair));
  return 0;
}
