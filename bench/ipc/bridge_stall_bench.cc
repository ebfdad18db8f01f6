// The bridge under a stalled subscriber and under a peer that never gives credit (`shmring bench
// --mode bridge-stall`): see bridge_bench.h. Figures, not pass/fail: what was lost, how long the
// publisher was held back, the bridges' peak heap, the honest subscriber's rate and longest gap,
// how long the bad peer held the topic before it was evicted.
#include <poll.h>
#include <sys/mman.h>
#include <zmq.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "bridge_bench.h"
#include "bridge_hosts.h"
#include "shmring/bridge/bridge.h"
#include "shmring/core/clock.h"
#include "shmring/transport/topic.h"

namespace shmring::bench {
namespace {

constexpr std::size_t kSize = 4096;           // bytes per message
constexpr double kRate = 5000;                // messages per second (20 MB/s)
constexpr int kSeconds = 16;                  // of publishing
constexpr std::uint64_t kStallAfterMs = 2000;  // the subscriber stops reading this long after the start...
constexpr std::uint64_t kStallMs = 8000;       // ...for this long
constexpr auto kEvictAfter = std::chrono::milliseconds(2000);

struct StallShared {
  std::atomic<int> subscribed{0};  // the receiver has opened its topic
  std::atomic<int> started{0};     // the publisher began (the receiver starts its clock)
  std::atomic<int> stop{0};        // the bridges and the bad peer may go
  std::uint64_t start_ns = 0;
  std::uint64_t published = 0;
  std::uint64_t publisher_blocked_ms = 0;
  std::uint64_t received = 0;
  std::uint64_t last_sequence = 0;
  std::uint64_t gaps = 0;
  std::uint64_t first_ns = 0, last_ns = 0, longest_gap_ns = 0;
  std::uint64_t evicted_after_ms = 0;  // bad peer: from its first hello to the first EVICTED
  std::uint64_t evictions_seen = 0;
  char error[200] = {};
};

void fail(StallShared* s, const std::string& what) { std::snprintf(s->error, sizeof s->error, "%s", what.c_str()); }

TopicOptions options() {
  TopicOptions o;
  o.lossless = true;
  o.capacity = 1 << 20;
  o.max_message = 8192;
  return o;
}

int publisher(StallShared* s, const std::string& name) {
  auto pub = TopicPublisher::open(name, options());
  if (!pub.ok()) return fail(s, std::string(pub.status().message())), 1;
  while (s->subscribed.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // the bridges are up
  std::vector<std::byte> m(kSize);
  const std::uint64_t count = static_cast<std::uint64_t>(kRate * kSeconds);
  s->start_ns = monotonic_ns();
  s->started.store(1);
  for (std::uint64_t i = 0; i < count; ++i) {
    const std::uint64_t due = s->start_ns + static_cast<std::uint64_t>(static_cast<double>(i) * 1e9 / kRate);
    while (monotonic_ns() < due) std::this_thread::sleep_for(std::chrono::microseconds(200));
    const std::uint64_t sequence = i + 1;
    std::memcpy(m.data(), &sequence, 8);
    if (pub->send(m, std::chrono::seconds(60)) != ChannelResult::kOk) return fail(s, "publisher timed out"), 1;
  }
  s->published = count;
  s->publisher_blocked_ms = pub->stats().blocked_ns / 1'000'000;
  return 0;
}

int receiver(StallShared* s, const std::string& name, bool stall) {
  auto sub = TopicSubscriber::open(name, options());
  if (!sub.ok()) return fail(s, std::string(sub.status().message())), 1;
  s->subscribed.store(1);
  std::vector<std::byte> m(8192);
  const std::uint64_t count = static_cast<std::uint64_t>(kRate * kSeconds);
  const std::uint64_t give_up = monotonic_ns() + 120'000'000'000ull;
  bool stalled = false;
  while (s->last_sequence < count && monotonic_ns() < give_up) {
    if (stall && !stalled && s->started.load() != 0 && monotonic_ns() > s->start_ns + kStallAfterMs * 1'000'000) {
      std::this_thread::sleep_for(std::chrono::milliseconds(kStallMs));
      stalled = true;
    }
    std::size_t bytes = 0;
    if (sub->receive(m, &bytes, std::chrono::milliseconds(100)) != ChannelResult::kOk) continue;
    std::uint64_t sequence = 0;
    std::memcpy(&sequence, m.data(), 8);
    const std::uint64_t now = monotonic_ns();
    if (sequence > s->last_sequence + 1) s->gaps += sequence - s->last_sequence - 1;
    s->last_sequence = sequence;
    if (s->received++ == 0) s->first_ns = now;
    if (s->last_ns != 0) s->longest_gap_ns = std::max(s->longest_gap_ns, now - s->last_ns);
    s->last_ns = now;
  }
  return 0;
}

int bridge_process(StallShared* s, const bridge::BridgeConfig& config) {
  bridge::set_logging(false);
  auto b = bridge::Bridge::create(config);
  if (!b.ok()) return fail(s, std::string(b.status().message())), 1;
  while (s->stop.load() == 0) (*b)->run_once(std::chrono::milliseconds(20));
  return 0;
}

// A raw client that asks for the lossless topic every 0.5 s with no credit and never gives any
// (it reads and drops what it is sent): the export holds the topic for it until it is evicted.
int bad_peer(StallShared* s, const std::string& endpoint, const std::string& name) {
  void* ctx = zmq_ctx_new();
  void* socket = zmq_socket(ctx, ZMQ_DEALER);
  zmq_connect(socket, endpoint.c_str());
  while (s->started.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  // The wire format (docs/bridge.md): magic, version 2, type, flags, name length, origin,
  // incarnation, sequence (the topic window: 0), value (queue credit: 0), the name.
  std::vector<unsigned char> hello(40 + name.size(), 0);
  const std::uint32_t magic = 0x31425253;
  std::memcpy(hello.data(), &magic, 4);
  hello[4] = 2;
  hello[5] = 1;  // HELLO
  hello[7] = static_cast<unsigned char>(name.size());
  std::memcpy(hello.data() + 40, name.data(), name.size());
  const std::uint64_t first = monotonic_ns();
  std::uint64_t next_hello = 0;
  while (s->stop.load() == 0) {
    if (monotonic_ns() >= next_hello) {
      zmq_send(socket, hello.data(), hello.size(), ZMQ_DONTWAIT);
      next_hello = monotonic_ns() + 500'000'000;
    }
    zmq_pollitem_t item{socket, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&item, 1, 50) <= 0) continue;
    zmq_msg_t part;
    zmq_msg_init(&part);
    if (zmq_msg_recv(&part, socket, ZMQ_DONTWAIT) >= 0 && zmq_msg_size(&part) >= 6 &&
        static_cast<const unsigned char*>(zmq_msg_data(&part))[5] == 10) {  // EVICTED
      if (s->evictions_seen++ == 0) s->evicted_after_ms = (monotonic_ns() - first) / 1'000'000;
    }
    zmq_msg_close(&part);
  }
  zmq_close(socket);
  zmq_ctx_term(ctx);
  return 0;
}

std::uint64_t heap_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("RssAnon:", 0) == 0) return std::stoull(line.substr(8));
  }
  return 0;
}

struct Figures {
  std::uint64_t export_heap_kib = 0, import_heap_kib = 0;
};

// One scenario: `stall` (the subscriber stops reading for 8 s) or a bad peer.
void run_scenario(const Hosts& hosts, bool stall, int port, bool json, std::FILE* out) {
  void* memory = mmap(nullptr, sizeof(StallShared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  auto* s = new (memory) StallShared;
  const std::string endpoint = "tcp://" + hosts.address[0] + ":" + std::to_string(port);
  const std::string tag = std::to_string(getpid()) + "." + std::to_string(port);
  const std::string a = "bench.stall." + tag + ".a", b = "bench.stall." + tag + ".b";
  bridge::BridgeConfig exporting, importing;
  bridge::ExportSpec e;
  e.bind = endpoint;
  e.channels = {a};
  if (!stall) e.evict_after = kEvictAfter;
  exporting.exports.push_back(e);
  bridge::ImportSpec i;
  i.connect = endpoint;
  i.channels = {bridge::ChannelRoute{a, b}};
  importing.imports.push_back(i);
  const std::string load_before = loadavg();
  std::vector<pid_t> children;
  children.push_back(spawn(hosts, 1, [&] { return receiver(s, b, stall); }));
  children.push_back(spawn(hosts, 0, [&] { return publisher(s, a); }));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the topics exist
  const pid_t exporter = spawn(hosts, 0, [&] { return bridge_process(s, exporting); });
  const pid_t importer = spawn(hosts, 1, [&] { return bridge_process(s, importing); });
  children.push_back(exporter);
  children.push_back(importer);
  if (!stall) children.push_back(spawn(hosts, 1, [&] { return bad_peer(s, endpoint, a); }));
  Figures f;
  bool ended[2] = {false, false};  // the receiver and the publisher end the run
  while (!ended[0] || !ended[1]) {
    for (int k = 0; k < 2; ++k) ended[k] = ended[k] || waitpid(children[k], nullptr, WNOHANG) == children[k];
    f.export_heap_kib = std::max(f.export_heap_kib, heap_kib(exporter));
    f.import_heap_kib = std::max(f.import_heap_kib, heap_kib(importer));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  s->stop.store(1);
  for (std::size_t k = 2; k < children.size(); ++k) waitpid(children[k], nullptr, 0);
  const double seconds = s->last_ns > s->first_ns ? static_cast<double>(s->last_ns - s->first_ns) / 1e9 : 0;
  const double rate = seconds > 0 ? static_cast<double>(s->received - 1) / seconds : 0;
  const std::uint64_t lost = s->published > s->received ? s->published - s->received : 0;
  const char* scenario = stall ? "subscriber-stall" : "peer-never-reads";
  if (json) {
    std::fprintf(out,
                 "{\"bench\":\"bridge\",\"mode\":\"bridge-stall\",\"scenario\":\"%s\",\"netns\":%s,\"size\":%zu,"
                 "\"rate\":%.0f,\"published\":%llu,\"received\":%llu,\"lost\":%llu,\"gaps\":%llu,"
                 "\"publisher_held_back_ms\":%llu,\"export_heap_kib\":%llu,\"import_heap_kib\":%llu,"
                 "\"received_per_s\":%.0f,\"longest_gap_ms\":%llu,\"stall_ms\":%llu,\"evict_after_ms\":%lld,"
                 "\"evicted_after_ms\":%llu,\"evictions_seen\":%llu,\"loadavg_before\":\"%s\",\"loadavg_after\":\"%s\","
                 "\"error\":\"%s\"}\n",
                 scenario, hosts.netns ? "true" : "false", kSize, kRate, static_cast<unsigned long long>(s->published),
                 static_cast<unsigned long long>(s->received), static_cast<unsigned long long>(lost),
                 static_cast<unsigned long long>(s->gaps), static_cast<unsigned long long>(s->publisher_blocked_ms),
                 static_cast<unsigned long long>(f.export_heap_kib), static_cast<unsigned long long>(f.import_heap_kib),
                 rate, static_cast<unsigned long long>(s->longest_gap_ns / 1'000'000),
                 static_cast<unsigned long long>(stall ? kStallMs : 0),
                 static_cast<long long>(stall ? 0 : kEvictAfter.count()),
                 static_cast<unsigned long long>(s->evicted_after_ms), static_cast<unsigned long long>(s->evictions_seen),
                 load_before.c_str(), loadavg().c_str(), s->error);
  } else {
    std::fprintf(out,
                 "  %-17s %llu published, %llu received, %llu lost; publisher held back %.1f s; bridge heap peak "
                 "export %.1f MiB, import %.1f MiB; subscriber %.0f msgs/s (publisher %.0f/s), longest gap %.1f s",
                 scenario, static_cast<unsigned long long>(s->published), static_cast<unsigned long long>(s->received),
                 static_cast<unsigned long long>(lost), static_cast<double>(s->publisher_blocked_ms) / 1e3,
                 static_cast<double>(f.export_heap_kib) / 1024, static_cast<double>(f.import_heap_kib) / 1024, rate,
                 kRate, static_cast<double>(s->longest_gap_ns) / 1e9);
    if (!stall) {
      std::fprintf(out, "; the bad peer evicted %.1f s after its first hello (evict_after %.1f s), told %llu time(s)",
                   static_cast<double>(s->evicted_after_ms) / 1e3, static_cast<double>(kEvictAfter.count()) / 1e3,
                   static_cast<unsigned long long>(s->evictions_seen));
    }
    std::fprintf(out, "; load %s -> %s%s%s\n", load_before.c_str(), loadavg().c_str(), s->error[0] ? "  ERROR: " : "",
                 s->error);
  }
  std::fflush(out);
  munmap(memory, sizeof(StallShared));
}

}  // namespace

int run_bridge_stall_benchmark(const BridgeBenchConfig& config, std::FILE* out) {
  Hosts hosts;
  hosts.make();
  if (!config.json) {
    std::fprintf(out,
                 "bridge under stalls: a lossless topic, %zu B at %.0f/s for %d s, host A -> host B over %s, unpinned "
                 "on %u cores\n",
                 kSize, kRate, kSeconds, hosts.netns ? "a veth pair" : "loopback", std::thread::hardware_concurrency());
  }
  int port = 27000 + static_cast<int>(getpid() % 1000) * 4;
  for (int rep = 0; rep < config.repetitions; ++rep) {
    run_scenario(hosts, /*stall=*/true, ++port, config.json, out);
    run_scenario(hosts, /*stall=*/false, ++port, config.json, out);
  }
  hosts.remove();
  return 0;
}

}  // namespace shmring::bench
