// The bridge tests' local programs (tests/bridge/test_bridge.py runs them on each simulated host):
// publishers and producers that number and checksum what they send, and subscribers and
// consumers that check it (the oracle). Each prints one JSON line with what it saw.
//
//   bridge_peer topic-pub NAME --count N [--lossless] [--capacity B] [--max-message B] [--rate R]
//                         [--sizes mixed|N] [--no-last-pause]
//   bridge_peer topic-sub NAME [--lossless] [--capacity B] [--max-message B] --idle S [--expect N]
//                         [--stall-after N --stall S]   (stops reading for S seconds after N messages)
//   bridge_peer queue-produce NAME --count N [--base ID] [--rate R]
//   bridge_peer queue-consume NAME --idle S --out FILE [--pause-us N]
//   bridge_peer frames-pub NAME --count N --size B --rate R
//   bridge_peer frames-sub NAME --idle S
//   bridge_peer lost NAME          (the channel's lost counter, ChannelStats::lost)
//
// Message layout: [u64 number][u32 length of the whole message][u32 spare][u64 checksum of
// the rest][pseudo-random bytes from the number]. A subscriber checks length and checksum (no
// torn or corrupt message), and that numbers only go up (gaps: messages it never got).
#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "shmring/core/clock.h"
#include "shmring/core/stable_hash.h"
#include "shmring/transport/frame.h"
#include "shmring/transport/queue.h"
#include "shmring/transport/topic.h"

namespace {

using shmring::ChannelResult;
constexpr std::size_t kHeader = 24;

std::uint64_t splitmix(std::uint64_t& x) {
  std::uint64_t z = (x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

std::uint64_t checksum(const std::byte* data, std::size_t n) {
  return shmring::stable_hash64(std::string_view(reinterpret_cast<const char*>(data), n));
}

// Fills `out` (at least kHeader bytes) as message `number`.
void make_message(std::uint64_t number, std::span<std::byte> out) {
  std::uint64_t seed = number * 7919 + 1;
  for (std::size_t i = kHeader; i < out.size(); i += 8) {
    const std::uint64_t r = splitmix(seed);
    std::memcpy(out.data() + i, &r, std::min<std::size_t>(8, out.size() - i));
  }
  const auto length = static_cast<std::uint32_t>(out.size());
  const std::uint32_t spare = 0;
  const std::uint64_t sum = checksum(out.data() + kHeader, out.size() - kHeader);
  std::memcpy(out.data(), &number, 8);
  std::memcpy(out.data() + 8, &length, 4);
  std::memcpy(out.data() + 12, &spare, 4);
  std::memcpy(out.data() + 16, &sum, 8);
}

// The number of a message that checks out, or -1.
std::int64_t check_message(std::span<const std::byte> in) {
  if (in.size() < kHeader) return -1;
  std::uint64_t number = 0;
  std::uint32_t length = 0;
  std::uint64_t sum = 0;
  std::memcpy(&number, in.data(), 8);
  std::memcpy(&length, in.data() + 8, 4);
  std::memcpy(&sum, in.data() + 16, 8);
  if (length != in.size() || sum != checksum(in.data() + kHeader, in.size() - kHeader)) return -1;
  return static_cast<std::int64_t>(number);
}

// Mixed sizes: mostly small, some large (average about 600 bytes), fixed by the number.
std::size_t size_for(std::uint64_t number, std::size_t fixed, std::size_t max) {
  if (fixed != 0) return std::min(fixed, max);
  static constexpr std::size_t kSizes[] = {24, 32, 64, 64, 100, 128, 256, 256, 512, 1000, 2048, 4096};
  std::uint64_t seed = number;
  const std::size_t s = kSizes[splitmix(seed) % (sizeof kSizes / sizeof kSizes[0])];
  return std::min(s, max);
}

struct Options {
  std::map<std::string, std::string> values;
  bool has(const std::string& k) const { return values.count(k) != 0; }
  double number(const std::string& k, double fallback) const {
    auto it = values.find(k);
    return it == values.end() ? fallback : std::stod(it->second);
  }
  std::string text(const std::string& k, const std::string& fallback) const {
    auto it = values.find(k);
    return it == values.end() ? fallback : it->second;
  }
};

// Paces a loop at `rate` per second (0: no pacing).
struct Pacer {
  double rate;
  std::uint64_t start = shmring::monotonic_ns();
  void wait(std::uint64_t done) const {
    if (rate <= 0) return;
    const auto due = start + static_cast<std::uint64_t>(static_cast<double>(done) * 1e9 / rate);
    while (shmring::monotonic_ns() < due) std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
};

// --wait-file PATH: after opening, wait until PATH exists (the test starts the bridges meanwhile).
void wait_for_go(const Options& o) {
  if (!o.has("wait-file")) return;
  std::printf("{\"ready\":true}\n");
  std::fflush(stdout);
  while (access(o.text("wait-file", "").c_str(), F_OK) != 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

int fail(const std::string& what) {
  std::fprintf(stderr, "bridge_peer: %s\n", what.c_str());
  return 1;
}

// Receives with `attempt` until nothing arrived for `idle` seconds (or `expect` were seen).
struct Oracle {
  std::uint64_t received = 0, gaps = 0, duplicates = 0, corrupt = 0;
  std::int64_t first = -1, last = -1;
  void see(std::span<const std::byte> message) {
    const std::int64_t n = check_message(message);
    if (n < 0) {
      ++corrupt;
      return;
    }
    if (last >= 0 && n <= last) {
      ++duplicates;  // at or below what was seen: delivered twice (or out of order)
      return;
    }
    if (first < 0) first = n;
    if (last >= 0) gaps += static_cast<std::uint64_t>(n - last - 1);
    last = n;
    ++received;
  }
  void print(const char* extra) const {
    std::printf("{\"received\":%llu,\"first\":%lld,\"last\":%lld,\"gaps\":%llu,\"duplicates\":%llu,"
                "\"corrupt\":%llu%s}\n",
                static_cast<unsigned long long>(received), static_cast<long long>(first),
                static_cast<long long>(last), static_cast<unsigned long long>(gaps),
                static_cast<unsigned long long>(duplicates), static_cast<unsigned long long>(corrupt), extra);
    std::fflush(stdout);
  }
};

int topic_pub(const std::string& name, const Options& o) {
  shmring::TopicOptions t;
  t.lossless = o.has("lossless");
  t.capacity = static_cast<std::uint64_t>(o.number("capacity", 1 << 20));
  t.max_message = static_cast<std::uint64_t>(o.number("max-message", 0));
  auto pub = shmring::TopicPublisher::open(name, t);
  if (!pub.ok()) return fail(std::string(pub.status().message()));
  wait_for_go(o);
  const auto count = static_cast<std::uint64_t>(o.number("count", 1000));
  const auto fixed = static_cast<std::size_t>(o.number("sizes", 0));
  const Pacer pacer{o.number("rate", 0)};
  std::vector<std::byte> buffer(pub->max_message());
  for (std::uint64_t i = 0; i < count; ++i) {
    // The last one after a pause: the link has drained, so it arrives and closes every gap
    // (--no-last-pause: not, so a test can lose the end of a stream).
    if (i + 1 == count && count > 1 && !o.has("no-last-pause")) {
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
    }
    const std::span<std::byte> m(buffer.data(), std::max(kHeader, size_for(i, fixed, buffer.size())));
    make_message(i, m);
    const ChannelResult r = pub->send(m, std::chrono::seconds(120));
    if (r != ChannelResult::kOk) return fail("send: " + std::string(shmring::to_string(r)));
    pacer.wait(i + 1);
  }
  // blocked_ms: how long the publisher was held back (lossless back-pressure).
  std::printf("{\"published\":%llu,\"blocked_ms\":%llu}\n", static_cast<unsigned long long>(count),
              static_cast<unsigned long long>(pub->stats().blocked_ns / 1'000'000));
  std::fflush(stdout);
  // Stay (the channel stays) until told: a test may read the counters first.
  if (o.has("linger")) std::this_thread::sleep_for(std::chrono::duration<double>(o.number("linger", 0)));
  return 0;
}

int topic_sub(const std::string& name, const Options& o) {
  shmring::TopicOptions t;
  t.lossless = o.has("lossless");
  t.capacity = static_cast<std::uint64_t>(o.number("capacity", 0));
  t.max_message = static_cast<std::uint64_t>(o.number("max-message", 0));
  auto sub = shmring::TopicSubscriber::open(name, t);
  if (!sub.ok()) return fail(std::string(sub.status().message()));
  std::printf("{\"ready\":true}\n");
  std::fflush(stdout);
  const auto idle_ns = static_cast<std::uint64_t>(o.number("idle", 5) * 1e9);
  const auto expect = static_cast<std::uint64_t>(o.number("expect", 0));
  std::vector<std::byte> buffer(sub->max_message());
  Oracle oracle;
  std::uint64_t last_ns = shmring::monotonic_ns();
  bool started = false;
  const auto start_ns = static_cast<std::uint64_t>(o.number("start-timeout", 60) * 1e9);
  const auto stall_after = static_cast<std::uint64_t>(o.number("stall-after", 0));
  bool stalled = false;
  while (expect == 0 || oracle.last + 1 < static_cast<std::int64_t>(expect)) {
    if (stall_after != 0 && !stalled && oracle.received + oracle.corrupt + oracle.duplicates == stall_after) {
      // A subscriber that stops reading for a while (its reader slot holds a lossless topic).
      std::this_thread::sleep_for(std::chrono::duration<double>(o.number("stall", 8)));
      last_ns = shmring::monotonic_ns();
      stalled = true;
    }
    std::size_t bytes = 0;
    const ChannelResult r = sub->receive(buffer, &bytes, std::chrono::milliseconds(50));
    const std::uint64_t now = shmring::monotonic_ns();
    if (r == ChannelResult::kOk) {
      oracle.see(std::span<const std::byte>(buffer.data(), bytes));
      last_ns = now;
      started = true;
    } else if (r != ChannelResult::kTimedOut) {
      return fail("receive: " + std::string(shmring::to_string(r)));
    } else if (now - last_ns > (started ? idle_ns : start_ns)) {
      break;
    }
  }
  const std::string extra = ",\"local_lost\":" + std::to_string(sub->lost());
  oracle.print(extra.c_str());
  return 0;
}

int queue_produce(const std::string& name, const Options& o) {
  shmring::QueueOptions q;
  q.capacity = static_cast<std::uint64_t>(o.number("capacity", 1024));
  q.max_message = 256;
  auto producer = shmring::QueueProducer::open(name, q);
  if (!producer.ok()) return fail(std::string(producer.status().message()));
  wait_for_go(o);
  const auto count = static_cast<std::uint64_t>(o.number("count", 1000));
  const auto base = static_cast<std::uint64_t>(o.number("base", 0));
  const Pacer pacer{o.number("rate", 0)};
  std::vector<std::byte> buffer(64);
  for (std::uint64_t i = 0; i < count; ++i) {
    make_message(base + i, buffer);
    const ChannelResult r = producer->send(buffer, std::chrono::seconds(120));
    if (r != ChannelResult::kOk) return fail("send: " + std::string(shmring::to_string(r)));
    pacer.wait(i + 1);
  }
  std::printf("{\"produced\":%llu}\n", static_cast<unsigned long long>(count));
  std::fflush(stdout);
  if (o.has("linger")) std::this_thread::sleep_for(std::chrono::duration<double>(o.number("linger", 0)));
  return 0;
}

int queue_consume(const std::string& name, const Options& o) {
  shmring::QueueOptions q;
  q.capacity = static_cast<std::uint64_t>(o.number("capacity", 1024));
  q.max_message = 256;
  auto consumer = shmring::QueueConsumer::open(name, q);
  if (!consumer.ok()) return fail(std::string(consumer.status().message()));
  std::printf("{\"ready\":true}\n");
  std::fflush(stdout);
  std::ofstream out(o.text("out", "/dev/null"), std::ios::binary);
  const auto idle_ns = static_cast<std::uint64_t>(o.number("idle", 5) * 1e9);
  const auto start_ns = static_cast<std::uint64_t>(o.number("start-timeout", 60) * 1e9);
  std::vector<std::byte> buffer(consumer->max_message());
  std::uint64_t received = 0, corrupt = 0;
  std::uint64_t last_ns = shmring::monotonic_ns();
  const auto pause_us = static_cast<std::int64_t>(o.number("pause-us", 0));  // a slow consumer
  for (;;) {
    std::size_t bytes = 0;
    const ChannelResult r = consumer->receive(buffer, &bytes, std::chrono::milliseconds(50));
    const std::uint64_t now = shmring::monotonic_ns();
    if (r == ChannelResult::kOk) {
      const std::int64_t n = check_message(std::span<const std::byte>(buffer.data(), bytes));
      if (n < 0) {
        ++corrupt;
      } else {
        out.write(reinterpret_cast<const char*>(&n), 8);
        ++received;
      }
      if (pause_us > 0) std::this_thread::sleep_for(std::chrono::microseconds(pause_us));
      last_ns = now;
    } else if (r != ChannelResult::kTimedOut) {
      return fail("receive: " + std::string(shmring::to_string(r)));
    } else if (now - last_ns > (received > 0 ? idle_ns : start_ns)) {
      break;
    }
  }
  out.flush();
  std::printf("{\"received\":%llu,\"corrupt\":%llu}\n", static_cast<unsigned long long>(received),
              static_cast<unsigned long long>(corrupt));
  return 0;
}

int frames_pub(const std::string& name, const Options& o) {
  shmring::FrameOptions f;
  f.max_message = static_cast<std::uint64_t>(o.number("size", 4 << 20));
  auto pub = shmring::FramePublisher::open(name, f);
  if (!pub.ok()) return fail(std::string(pub.status().message()));
  wait_for_go(o);
  const auto count = static_cast<std::uint64_t>(o.number("count", 100));
  const Pacer pacer{o.number("rate", 30)};
  std::uint64_t refused = 0, worst_ns = 0;
  for (std::uint64_t i = 0; i < count; ++i) {
    const std::uint64_t t0 = shmring::monotonic_ns();
    shmring::FrameLoan loan = pub->try_loan();
    if (!loan.ok()) {
      ++refused;  // every buffer pinned: the publisher is never made to wait
    } else {
      make_message(i, loan.buffer());
      pub->publish(loan, loan.buffer().size());
    }
    worst_ns = std::max(worst_ns, shmring::monotonic_ns() - t0);
    pacer.wait(i + 1);
  }
  std::printf("{\"published\":%llu,\"refused\":%llu,\"worst_publish_us\":%llu}\n",
              static_cast<unsigned long long>(count - refused), static_cast<unsigned long long>(refused),
              static_cast<unsigned long long>(worst_ns / 1000));
  std::fflush(stdout);
  if (o.has("linger")) std::this_thread::sleep_for(std::chrono::duration<double>(o.number("linger", 0)));
  return 0;
}

int frames_sub(const std::string& name, const Options& o) {
  shmring::FrameOptions f;
  f.max_message = static_cast<std::uint64_t>(o.number("size", 0));
  auto sub = shmring::FrameSubscriber::open(name, f);
  if (!sub.ok()) return fail(std::string(sub.status().message()));
  std::printf("{\"ready\":true}\n");
  std::fflush(stdout);
  const auto idle_ns = static_cast<std::uint64_t>(o.number("idle", 5) * 1e9);
  const auto start_ns = static_cast<std::uint64_t>(o.number("start-timeout", 60) * 1e9);
  Oracle oracle;
  std::uint64_t last_ns = shmring::monotonic_ns();
  for (;;) {
    shmring::FrameView v = sub->receive_view(std::chrono::milliseconds(50));
    const std::uint64_t now = shmring::monotonic_ns();
    if (v.ok()) {
      oracle.see(v.data());
      v.release();
      last_ns = now;
    } else if (v.result() != ChannelResult::kTimedOut) {
      return fail("receive: " + std::string(shmring::to_string(v.result())));
    } else if (now - last_ns > (oracle.received > 0 ? idle_ns : start_ns)) {
      break;
    }
  }
  oracle.print("");
  return 0;
}

int lost(const std::string& name) {
  auto st = shmring::read_stats(name);
  if (!st.ok()) return fail(std::string(st.status().message()));
  std::printf("{\"lost\":%llu,\"sent\":%llu}\n", static_cast<unsigned long long>(st->lost),
              static_cast<unsigned long long>(st->sent));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return fail("usage: bridge_peer MODE NAME [--option value | --flag]...");
  const std::string mode = argv[1];
  const std::string name = argv[2];
  Options o;
  for (int i = 3; i < argc; ++i) {
    std::string key = argv[i];
    if (key.rfind("--", 0) != 0) return fail("unexpected " + key);
    key = key.substr(2);
    if (i + 1 < argc && std::strncmp(argv[i + 1], "--", 2) != 0) {
      o.values[key] = argv[++i];
    } else {
      o.values[key] = "1";
    }
  }
  if (mode == "topic-pub") return topic_pub(name, o);
  if (mode == "topic-sub") return topic_sub(name, o);
  if (mode == "queue-produce") return queue_produce(name, o);
  if (mode == "queue-consume") return queue_consume(name, o);
  if (mode == "frames-pub") return frames_pub(name, o);
  if (mode == "frames-sub") return frames_sub(name, o);
  if (mode == "lost") return lost(name);
  return fail("unknown mode " + mode);
}
