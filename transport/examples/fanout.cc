// Fan-out demo: one publisher, three subscriber processes (one deliberately slow) on a lossy topic.
// Prints one line per second: messages/s, latency p50/p99/p99.9 and messages lost per subscriber,
// then a summary. Exit status 0 if no subscriber saw a torn, duplicated or out-of-order message.
//
//   shmring_example_fanout [--seconds 10] [--rate 200000] [--name demo.fanout]
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <thread>

#include "example_util.h"
#include "shmring/transport/topic.h"

using namespace shmring;
using namespace shmring::examples;

namespace {

constexpr int kSubscribers = 3;
constexpr int kMaxSeconds = 600;

struct Second {
  std::atomic<std::uint64_t> count, p50, p99, p999, lost;
  std::atomic<std::uint32_t> done;  // stored last
};
struct Board {
  std::atomic<std::uint32_t> ready;
  std::atomic<std::uint32_t> stop;
  std::atomic<std::uint64_t> bad[kSubscribers];
  std::atomic<std::uint64_t> total[kSubscribers];
  std::atomic<std::uint64_t> lost[kSubscribers];
  Second seconds[kMaxSeconds][kSubscribers];
};

struct Payload {
  std::uint64_t seq;
  std::uint64_t sent_ns;
  std::uint64_t check;
};

int subscriber(const std::string& name, Board* board, int index, std::uint64_t start_ns) {
  TopicOptions o;
  o.wait.strategy = WaitStrategy::kHybrid;
  auto sub = TopicSubscriber::open(name, o);
  if (!sub.ok()) {
    std::fprintf(stderr, "subscriber %d: %s\n", index, sub.status().ToString().c_str());
    return 2;
  }
  board->ready.fetch_add(1);
  std::vector<std::byte> buf(sub->max_message());
  std::vector<std::uint64_t> samples;
  int second = 0;
  std::uint64_t next = 0;
  bool first = true;
  auto flush = [&](int s) {
    if (s >= kMaxSeconds) return;
    Second& out = board->seconds[s][index];
    out.count.store(samples.size());
    std::sort(samples.begin(), samples.end());
    out.p50.store(percentile(samples, 0.50));
    out.p99.store(percentile(samples, 0.99));
    out.p999.store(percentile(samples, 0.999));
    out.lost.store(sub->lost());
    out.done.store(1);
    samples.clear();
  };
  for (;;) {
    // Once the publisher has stopped, drain what is left at full speed: then every message it
    // published has been received or counted lost (the summary checks received + lost).
    const bool stopping = board->stop.load() != 0;
    std::size_t n = 0;
    const ChannelResult r = stopping ? sub->try_receive(buf, &n)
                                     : sub->receive(buf, &n, std::chrono::milliseconds(20));
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
    board->total[index].fetch_add(1);
    if (index == kSubscribers - 1 && !stopping) {
      std::this_thread::sleep_for(std::chrono::microseconds(50));  // the slow one
    }
  }
  flush(second);
  board->lost[index].store(sub->lost());
  return 0;
}

void print_second(Board* board, int r) {
  std::printf("t=%2ds", r + 1);
  for (int i = 0; i < kSubscribers; ++i) {
    const Second& x = board->seconds[r][i];
    std::printf(" | sub%d %7" PRIu64 " msg/s p50 %5.1fus p99 %6.1fus p99.9 %7.1fus lost %" PRIu64, i,
                x.count.load(), x.p50.load() / 1e3, x.p99.load() / 1e3, x.p999.load() / 1e3,
                x.lost.load());
  }
  std::printf("\n");
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  const int seconds = std::min(std::atoi(arg(argc, argv, "--seconds", "10").c_str()), kMaxSeconds - 1);
  const double rate = std::atof(arg(argc, argv, "--rate", "200000").c_str());
  const std::string name = arg(argc, argv, "--name", "demo.fanout." + std::to_string(getpid()));
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
  std::vector<pid_t> pids;
  for (int i = 0; i < kSubscribers; ++i) {
    pids.push_back(spawn([&, i] { return subscriber(name, board, i, start_ns); }));
  }
  while (board->ready.load() < kSubscribers) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  while (now_ns() < start_ns) std::this_thread::sleep_for(std::chrono::microseconds(100));
  std::printf("fan-out: 1 publisher, %d subscriber processes (#%d is slow), %.0f msg/s offered, "
              "%d s\n", kSubscribers, kSubscribers - 1, rate, seconds);
  std::uint64_t seq = 0;
  const double interval_ns = 1e9 / rate;
  int printed = 0;
  const std::uint64_t end_ns = start_ns + static_cast<std::uint64_t>(seconds) * 1'000'000'000ULL;
  for (;;) {
    const std::uint64_t now = now_ns();
    if (now >= end_ns) break;
    const auto due = start_ns + static_cast<std::uint64_t>(static_cast<double>(seq) * interval_ns);
    if (now < due) {
      if (due - now > 50'000) std::this_thread::sleep_for(std::chrono::microseconds(20));
      continue;
    }
    Payload p{seq, now_ns(), mix64(seq)};
    pub->try_send(std::as_bytes(std::span(&p, 1)));
    ++seq;
    const int s = static_cast<int>((now - start_ns) / 1'000'000'000ULL);
    if (s >= printed + 1) {
      bool all = true;  // every subscriber has flushed that second (or it is long over)
      for (int i = 0; i < kSubscribers; ++i) all = all && board->seconds[printed][i].done.load() != 0;
      if (all || s >= printed + 2) print_second(board, printed++);
    }
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  board->stop.store(1);
  bool ok = true;
  for (pid_t pid : pids) ok = wait_ok(pid) && ok;
  while (printed < seconds) print_second(board, printed++);
  std::printf("summary: published %" PRIu64 " messages in %d s\n", seq, seconds);
  for (int i = 0; i < kSubscribers; ++i) {
    std::printf("  sub%d%s: received %" PRIu64 ", lost %" PRIu64 " (received + lost = %" PRIu64
                "), torn/duplicated/out-of-order %" PRIu64 "\n",
                i, i == kSubscribers - 1 ? " (slow)" : "", board->total[i].load(),
                board->lost[i].load(), board->total[i].load() + board->lost[i].load(),
                board->bad[i].load());
    if (board->bad[i].load() != 0 || board->total[i].load() + board->lost[i].load() != seq) ok = false;
  }
  if (auto st = read_stats(name); st.ok()) {
    std::printf("  channel: sent %" PRIu64 ", received %" PRIu64 ", lost %" PRIu64 "\n", st->sent,
                st->received, st->lost);
  }
  std::printf("%s\n", ok ? "OK" : "FAILED");
  return ok ? 0 : 1;
}
