// The bridge benchmark: see bridge_bench.h.
#include "bridge_bench.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <new>
#include <string>
#include <thread>

#include "bridge_hosts.h"
#include "histogram.h"
#include "shmring/bridge/bridge.h"
#include "shmring/core/clock.h"
#include "shmring/transport/topic.h"

namespace shmring::bench {
namespace {

enum Kind : std::uint64_t { kWarmup = 1, kMeasured = 2, kEnd = 3 };
constexpr std::size_t kStamp = 24;  // kind, sequence, send time

// Shared by the parent and the children of one run (an anonymous shared mapping).
struct Shared {
  std::atomic<int> ready{0};  // the receiver has a warm-up message: the whole path is up
  std::atomic<int> done{0};   // the receiver saw the end
  std::atomic<int> stop{0};   // the bridges may go
  LatencyHistogram histogram;
  std::uint64_t received = 0;
  std::uint64_t first_ns = 0;
  std::uint64_t last_ns = 0;
  char error[200] = {};
};

void fail(Shared* shared, const std::string& what) {
  std::snprintf(shared->error, sizeof shared->error, "%s", what.c_str());
}

// The sender's loop over any transport: warm up until the receiver hears, then the measured
// messages (paced at `rate`, stamped with their scheduled time: open loop), then end markers.
void send_all(Shared* shared, std::size_t size, std::uint64_t count, double rate,
              const std::function<bool(std::span<const std::byte>)>& send) {
  prctl(PR_SET_TIMERSLACK, 1);  // wake on time (the default slack is 50 us), for both transports
  std::vector<std::byte> m(std::max(size, kStamp));
  auto stamp = [&](std::uint64_t kind, std::uint64_t sequence, std::uint64_t when) {
    std::memcpy(m.data(), &kind, 8);
    std::memcpy(m.data() + 8, &sequence, 8);
    std::memcpy(m.data() + 16, &when, 8);
  };
  const std::uint64_t give_up = monotonic_ns() + 30'000'000'000ull;
  while (shared->ready.load() == 0 && monotonic_ns() < give_up) {
    stamp(kWarmup, 0, monotonic_ns());
    send(m);
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // warm-up messages drain
  const std::uint64_t start = monotonic_ns();
  for (std::uint64_t i = 0; i < count; ++i) {
    std::uint64_t when = monotonic_ns();
    if (rate > 0) {
      when = start + static_cast<std::uint64_t>(static_cast<double>(i) * 1e9 / rate);
      // Sleep, not spin: on two cores a spinning sender would take a core from the bridges.
      const timespec due{static_cast<time_t>(when / 1'000'000'000), static_cast<long>(when % 1'000'000'000)};
      while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &due, nullptr) == EINTR) {
      }
    }
    stamp(kMeasured, i, when);
    if (!send(m)) return;
  }
  const std::uint64_t end_by = monotonic_ns() + 30'000'000'000ull;
  while (shared->done.load() == 0 && monotonic_ns() < end_by) {
    stamp(kEnd, count, monotonic_ns());
    send(m);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

// The receiver's side: what one message means.
bool receive_one(Shared* shared, std::span<const std::byte> m) {
  if (m.size() < kStamp) return true;
  std::uint64_t kind = 0, sent = 0;
  std::memcpy(&kind, m.data(), 8);
  std::memcpy(&sent, m.data() + 16, 8);
  const std::uint64_t now = monotonic_ns();
  if (kind == kWarmup) shared->ready.store(1);
  if (kind == kEnd) return false;
  if (kind == kMeasured) {
    shared->histogram.record(now > sent ? now - sent : 0);
    if (shared->received++ == 0) shared->first_ns = now;
    shared->last_ns = now;
  }
  return true;
}

// --- raw ZeroMQ ------------------------------------------------------------------------------------

int zmq_sender(Shared* shared, const std::string& endpoint, std::size_t size, std::uint64_t count, double rate,
               bool lossless) {
  void* ctx = zmq_ctx_new();
  void* s = zmq_socket(ctx, ZMQ_XPUB);
  int one = 1;
  if (lossless) zmq_setsockopt(s, ZMQ_XPUB_NODROP, &one, sizeof one);  // wait at the HWM, as the bridge
  if (zmq_bind(s, endpoint.c_str()) != 0) {
    fail(shared, std::string("zmq bind: ") + zmq_strerror(zmq_errno()));
    return 1;
  }
  send_all(shared, size, count, rate, [&](std::span<const std::byte> m) {
    while (zmq_send(s, m.data(), m.size(), 0) < 0) {
      if (zmq_errno() != EAGAIN && zmq_errno() != EINTR) return false;
      std::this_thread::yield();  // NODROP at the HWM: wait as the bridge's lossless path does
    }
    return true;
  });
  zmq_close(s);
  return 0;
}

int zmq_receiver(Shared* shared, const std::string& endpoint, std::size_t size) {
  void* ctx = zmq_ctx_new();
  void* s = zmq_socket(ctx, ZMQ_SUB);
  zmq_setsockopt(s, ZMQ_SUBSCRIBE, "", 0);
  zmq_connect(s, endpoint.c_str());
  std::vector<std::byte> buffer(std::max(size, kStamp));
  const std::uint64_t give_up = monotonic_ns() + 120'000'000'000ull;
  int timeout = 100;
  zmq_setsockopt(s, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
  while (monotonic_ns() < give_up) {
    const int n = zmq_recv(s, buffer.data(), buffer.size(), 0);
    if (n < 0) continue;
    if (!receive_one(shared, std::span<const std::byte>(buffer.data(), static_cast<std::size_t>(n)))) break;
  }
  shared->done.store(1);
  zmq_close(s);
  return 0;
}

// --- the bridge ------------------------------------------------------------------------------------

TopicOptions topic_options(std::size_t size, bool lossless) {
  TopicOptions o;
  std::uint64_t capacity = 1 << 20;
  while (capacity < 8 * (size + 64)) capacity <<= 1;
  o.capacity = capacity;
  o.max_message = std::max<std::uint64_t>(size, kStamp) + 64;
  o.lossless = lossless;
  return o;
}

int bridge_process(Shared* shared, const bridge::BridgeConfig& config) {
  bridge::set_logging(false);
  auto b = bridge::Bridge::create(config);
  if (!b.ok()) {
    fail(shared, std::string(b.status().message()));
    return 1;
  }
  while (shared->stop.load() == 0) (*b)->run_once(std::chrono::milliseconds(20));
  return 0;
}

int topic_sender(Shared* shared, const std::string& name, std::size_t size, std::uint64_t count, double rate,
                 bool lossless) {
  auto pub = TopicPublisher::open(name, topic_options(size, lossless));
  if (!pub.ok()) {
    fail(shared, std::string(pub.status().message()));
    return 1;
  }
  send_all(shared, size, count, rate, [&](std::span<const std::byte> m) {
    return pub->send(m, std::chrono::seconds(30)) == ChannelResult::kOk;
  });
  return 0;
}

int topic_receiver(Shared* shared, const std::string& name, std::size_t size, bool lossless) {
  auto sub = TopicSubscriber::open(name, topic_options(size, lossless));
  if (!sub.ok()) {
    fail(shared, std::string(sub.status().message()));
    return 1;
  }
  const std::uint64_t give_up = monotonic_ns() + 120'000'000'000ull;
  while (monotonic_ns() < give_up) {
    TopicView v = sub->receive_view(std::chrono::milliseconds(100));
    if (!v.ok()) continue;
    const bool more = receive_one(shared, v.data());
    v.release();
    if (!more) break;
  }
  shared->done.store(1);
  return 0;
}

// --- one run ---------------------------------------------------------------------------------------

struct RunResult {
  bool ok = false;
  std::string error;
  std::uint64_t p50 = 0, p99 = 0, p999 = 0, received = 0;
  double rate = 0;  // delivered messages per second
};

RunResult run_once(const Hosts& hosts, bool use_bridge, bool latency, std::size_t size, std::uint64_t count,
                   double rate, int port) {
  void* memory = mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  auto* shared = new (memory) Shared;
  const bool lossless = !latency;  // throughput: nothing dropped, on both transports
  const std::string endpoint = "tcp://" + hosts.address[0] + ":" + std::to_string(port);
  std::vector<pid_t> children;
  if (use_bridge) {
    const std::string a = "bench.bridge." + std::to_string(getpid()) + "." + std::to_string(port) + ".a";
    const std::string b = "bench.bridge." + std::to_string(getpid()) + "." + std::to_string(port) + ".b";
    bridge::BridgeConfig exporting, importing;
    bridge::ExportSpec e;
    e.bind = endpoint;
    e.channels = {a};
    exporting.exports.push_back(e);
    bridge::ImportSpec i;
    i.connect = endpoint;
    i.channels = {bridge::ChannelRoute{a, b}};
    importing.imports.push_back(i);
    children.push_back(spawn(hosts, 1, [&] { return topic_receiver(shared, b, size, lossless); }));
    children.push_back(spawn(hosts, 0, [&] { return topic_sender(shared, a, size, count, rate, lossless); }));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the topics exist
    children.push_back(spawn(hosts, 0, [&] { return bridge_process(shared, exporting); }));
    children.push_back(spawn(hosts, 1, [&] { return bridge_process(shared, importing); }));
  } else {
    children.push_back(spawn(hosts, 1, [&] { return zmq_receiver(shared, endpoint, size); }));
    children.push_back(spawn(hosts, 0, [&] { return zmq_sender(shared, endpoint, size, count, rate, lossless); }));
  }
  // The receiver ends the run; the bridges are told to go after it.
  int status = 0;
  waitpid(children[0], &status, 0);
  waitpid(children[1], &status, 0);
  shared->stop.store(1);
  for (std::size_t k = 2; k < children.size(); ++k) waitpid(children[k], &status, 0);
  RunResult r;
  r.error = shared->error;
  r.received = shared->received;
  r.ok = r.error.empty() && r.received > 0;
  r.p50 = shared->histogram.percentile(50);
  r.p99 = shared->histogram.percentile(99);
  r.p999 = shared->histogram.percentile(99.9);
  if (shared->received > 1 && shared->last_ns > shared->first_ns) {
    r.rate = static_cast<double>(shared->received - 1) * 1e9 / static_cast<double>(shared->last_ns - shared->first_ns);
  }
  if (r.received < count && r.error.empty() && !latency) r.error = "lost messages";
  munmap(memory, sizeof(Shared));
  return r;
}

template <typename T>
T median(std::vector<T> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? T{} : v[v.size() / 2];
}

}  // namespace

int run_bridge_benchmark(const BridgeBenchConfig& config, std::FILE* out) {
  Hosts hosts;
  hosts.make();
  const std::vector<std::size_t> sizes =
      config.sizes.empty() ? std::vector<std::size_t>{64, 4096, 1 << 20} : config.sizes;
  const char* where = hosts.netns ? "veth between two network namespaces" : "loopback (no namespaces: not root?)";
  if (!config.json) {
    std::fprintf(out, "bridge %s: host A -> host B over %s, unpinned on %u cores, %d reps (medians, min..max)\n",
                 config.latency ? "latency (one-way, open loop)" : "throughput (lossless)", where,
                 std::thread::hardware_concurrency(), config.repetitions);
  }
  int port = 26000 + static_cast<int>(getpid() % 1000) * 8;
  int status = 0;
  for (std::size_t size : sizes) {
    const bool big = size >= (256 << 10);
    const double rate = config.rate > 0 ? config.rate : (big ? 200 : 10000);
    const std::uint64_t count =
        config.count > 0 ? config.count
                         : (config.latency ? static_cast<std::uint64_t>(rate * (big ? 2 : 2))
                                           : (big ? 1000 : (size > 1024 ? 100000 : 500000)));
    double zmq_metric = 0;
    for (const bool use_bridge : {false, true}) {
      std::vector<std::uint64_t> p50, p99, p999;
      std::vector<double> rates;
      std::string error;
      const std::string load_before = loadavg();
      for (int rep = 0; rep < config.repetitions; ++rep) {
        const RunResult r = run_once(hosts, use_bridge, config.latency, size, count, config.latency ? rate : 0, ++port);
        if (!r.ok || !r.error.empty()) {
          error = r.error.empty() ? "nothing received" : r.error;
          status = 1;
        }
        p50.push_back(r.p50);
        p99.push_back(r.p99);
        p999.push_back(r.p999);
        rates.push_back(r.rate);
      }
      const char* name = use_bridge ? "bridge" : "zmq-pubsub";
      const double metric = config.latency ? static_cast<double>(median(p50)) : median(rates);
      if (!use_bridge) zmq_metric = metric;
      const double ratio = zmq_metric > 0 ? metric / zmq_metric : 0;
      const auto [rmin, rmax] = std::minmax_element(rates.begin(), rates.end());
      const auto [lmin, lmax] = std::minmax_element(p50.begin(), p50.end());
      if (config.json) {
        std::fprintf(out,
                     "{\"bench\":\"bridge\",\"mode\":\"%s\",\"transport\":\"%s\",\"size\":%zu,\"count\":%llu,"
                     "\"netns\":%s,\"p50_ns\":%llu,\"p99_ns\":%llu,\"p999_ns\":%llu,\"p50_ns_min\":%llu,"
                     "\"p50_ns_max\":%llu,\"msgs_per_s\":%.0f,\"msgs_per_s_min\":%.0f,\"msgs_per_s_max\":%.0f,"
                     "\"ratio_to_zmq\":%.3f,\"reps\":%d,\"loadavg_before\":\"%s\",\"loadavg_after\":\"%s\","
                     "\"error\":\"%s\"}\n",
                     config.latency ? "bridge-latency" : "bridge-throughput", name, size, static_cast<unsigned long long>(count),
                     hosts.netns ? "true" : "false", static_cast<unsigned long long>(median(p50)),
                     static_cast<unsigned long long>(median(p99)), static_cast<unsigned long long>(median(p999)),
                     static_cast<unsigned long long>(*lmin), static_cast<unsigned long long>(*lmax), median(rates),
                     *rmin, *rmax, ratio, config.repetitions, load_before.c_str(), loadavg().c_str(), error.c_str());
      } else if (config.latency) {
        std::fprintf(out,
                     "  %-10s %8zu B  p50 %7.1f us (%.1f..%.1f)  p99 %8.1f us  p99.9 %8.1f us  x%.2f of zmq  load %s%s%s\n",
                     name, size, median(p50) / 1e3, *lmin / 1e3, *lmax / 1e3, median(p99) / 1e3, median(p999) / 1e3,
                     ratio, load_before.c_str(), error.empty() ? "" : "  ERROR: ", error.c_str());
      } else {
        std::fprintf(out, "  %-10s %8zu B  %10.0f msgs/s (%.0f..%.0f)  %8.1f MB/s  x%.2f of zmq  load %s%s%s\n", name,
                     size, median(rates), *rmin, *rmax, median(rates) * static_cast<double>(size) / 1e6, ratio,
                     load_before.c_str(), error.empty() ? "" : "  ERROR: ", error.c_str());
      }
      std::fflush(out);
    }
  }
  hosts.remove();
  return status;
}

}  // namespace shmring::bench
