// The cross-process benchmark: runs side A and side B of a transport in two forked processes pinned
// to two cores, measures, repeats, and reports next to the physical floor probed before and after.
#include "harness.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

#include <sys/epoll.h>

#include "bench_util.h"
#include "histogram.h"
#include "shmring/transport/topic.h"
#include "transports.h"

namespace shmring::bench {
namespace {

void spin_until(std::int64_t deadline_ns) {
  while (now_ns() < deadline_ns) {
  }
}

constexpr int kMaxSides = 9;  // a publisher and up to 8 subscribers

// What one measuring process hands back to the parent.
struct SideRecord {
  std::uint64_t received = 0;
  std::uint64_t sent = 0;
  std::uint64_t lost = 0;
  std::uint64_t checksum = 0;  // pipeline: sum of the sequence numbers received
  std::int64_t first_ns = 0;
  std::int64_t last_ns = 0;
};

// What the measuring processes share with the parent (a MAP_SHARED mapping).
struct RunRecord {
  LatencyHistogram latency;
  std::atomic<int> ready{0};
  std::atomic<int> go{0};
  std::atomic<std::uint64_t> consumed{0};  // pipeline: items taken by all consumers together
  std::atomic<int> clients_done{0};        // calls: clients that made all their calls
  SideRecord sides[kMaxSides];
  std::uint64_t lost = 0;
  std::atomic<std::uint64_t> errors{0};
  double memcpy_bytes_per_ns = 0;
  char error[256] = {};
};

int sides_for(const BenchConfig& config) {
  if (config.mode == "fanout") return 1 + std::clamp(config.subscribers, 1, kMaxSides - 1);
  if (config.mode == "wake-cost") return 1 + std::clamp(config.subscribers, 0, kMaxSides - 1);
  if (config.mode == "pipeline") return 4;
  if (config.mode == "calls") return std::clamp(config.clients, 1, kMaxSides - 1) + std::clamp(config.servers, 1, kMaxSides - 1);
  return 2;
}

// Senders on the first core, receivers on the second (calls: clients on the first, servers on
// the second).
int cpu_for(const BenchConfig& config, int side) {
  const bool sender = config.mode == "pipeline" ? side < 2 : config.mode == "calls" ? side < config.clients : side == 0;
  return config.cpus[sender ? 0 : 1];
}

void record_error(RunRecord* record, const std::string& text) {
  if (record->errors.fetch_add(1) == 0) {
    std::snprintf(record->error, sizeof record->error, "%s", text.c_str());
  }
}

std::uint64_t warmup_count(const BenchConfig& config) {
  return std::min<std::uint64_t>(std::max<std::uint64_t>(config.count / 10, 100), 20000);
}

// --- The roles ------------------------------------------------------------------------------------

// Pingpong and wake: A sends, B echoes, A records the round trip. Open loop (rate > 0): sends are
// scheduled at fixed intervals and latency is measured from the scheduled time, so a stall also
// counts against the messages that should have been sent during it (no coordinated omission).
void run_round_trips(int side, Endpoint& endpoint, const BenchConfig& config, RunRecord* record) {
  const bool wake = config.mode == "wake";
  std::vector<std::byte> message(config.size, std::byte{0x5a});
  const std::uint64_t warmup = wake ? 10 : warmup_count(config);
  const std::uint64_t total = warmup + config.count;
  if (side == 1) {
    for (std::uint64_t i = 0; i < total; ++i) {
      if (!endpoint.receive(message.data(), message.size()) ||
          !endpoint.send(message.data(), message.size())) {
        record_error(record, "B: send/receive failed");
        return;
      }
    }
    return;
  }
  const std::int64_t interval = config.rate > 0 ? static_cast<std::int64_t>(1e9 / config.rate) : 0;
  std::int64_t scheduled = now_ns();
  for (std::uint64_t i = 0; i < total; ++i) {
    if (wake) {
      // Idle long enough for the receiver to park (its spin phase is far shorter than this);
      // spinning, not sleeping, so this core stays awake (see child_main).
      spin_until(now_ns() + 200'000);
      scheduled = now_ns();
    } else if (interval > 0) {
      scheduled += interval;
      spin_until(scheduled);
    } else {
      scheduled = now_ns();
    }
    if (!endpoint.send(message.data(), message.size()) ||
        !endpoint.receive(message.data(), message.size())) {
      record_error(record, "A: send/receive failed");
      return;
    }
    if (i >= warmup) record->latency.record(static_cast<std::uint64_t>(now_ns() - scheduled));
  }
  record->sides[1].received = config.count;
}

// Throughput: A streams `count` messages carrying a sequence number; B checks the sequence and
// times from the first to the last message.
void run_stream(int side, Endpoint& endpoint, const BenchConfig& config, RunRecord* record) {
  std::vector<std::byte> message(config.size, std::byte{0});
  const bool numbered = config.size >= sizeof(std::uint64_t);
  if (side == 0) {
    const std::int64_t interval =
        config.rate > 0 ? static_cast<std::int64_t>(1e9 / config.rate) : 0;
    std::int64_t scheduled = now_ns();
    for (std::uint64_t i = 0; i < config.count; ++i) {
      if (interval > 0) {
        scheduled += interval;
        spin_until(scheduled);
      }
      if (numbered) std::memcpy(message.data(), &i, sizeof i);
      if (!endpoint.send(message.data(), message.size())) {
        record_error(record, "A: send failed");
        return;
      }
    }
    return;
  }
  SideRecord& mine = record->sides[side];
  std::uint64_t expected = 0;
  for (std::uint64_t i = 0; i < config.count; ++i) {
    if (!endpoint.receive(message.data(), message.size())) {
      record_error(record, "B: receive failed");
      return;
    }
    const std::int64_t t = now_ns();
    if (i == 0) mine.first_ns = t;
    mine.last_ns = t;
    if (numbered) {
      std::uint64_t sequence = 0;
      std::memcpy(&sequence, message.data(), sizeof sequence);
      if (sequence != expected) {
        if (sequence > expected) {
          mine.lost += sequence - expected;
        } else {
          record_error(record, "B: sequence went backwards");
        }
      }
      expected = sequence + 1;
    }
    ++mine.received;
    // The last message seen: done (a newest-frame channel skips frames, so fewer may arrive).
    if (numbered && expected == config.count) break;
  }
}

// Pipeline: producers (sides 0, 1) each send count / 2 numbered items; consumers (2, 3) compete for
// them until all count items are taken, summing the numbers so the parent can check that every
// item arrived exactly once.
void run_pipeline(int side, Endpoint& endpoint, const BenchConfig& config, RunRecord* record) {
  std::vector<std::byte> message(std::max<std::size_t>(config.size, sizeof(std::uint64_t)));
  SideRecord& mine = record->sides[side];
  const std::uint64_t per_producer = config.count / 2;
  if (side < 2) {
    for (std::uint64_t i = 0; i < per_producer; ++i) {
      const std::uint64_t number = side * per_producer + i + 1;
      std::memcpy(message.data(), &number, sizeof number);
      if (!endpoint.send(message.data(), message.size())) {
        record_error(record, "producer: send failed");
        return;
      }
      ++mine.sent;
    }
    return;
  }
  const std::uint64_t total = per_producer * 2;
  while (record->consumed.load() < total) {
    if (!endpoint.receive(message.data(), message.size())) {
      if (record->consumed.load() >= total) break;  // the other consumer took the last ones
      record_error(record, "consumer: receive failed");
      return;
    }
    std::uint64_t number = 0;
    std::memcpy(&number, message.data(), sizeof number);
    const std::int64_t t = now_ns();
    if (mine.received == 0) mine.first_ns = t;
    mine.last_ns = t;
    mine.checksum += number;
    ++mine.received;
    record->consumed.fetch_add(1);
  }
}

// Calls: each client makes `count` calls (`depth` in flight) and times them; servers answer until
// every client is done.
void run_calls(int side, Endpoint& endpoint, const BenchConfig& config, RunRecord* record) {
  SideRecord& mine = record->sides[side];
  if (side < config.clients) {
    mine.first_ns = now_ns();
    mine.received = endpoint.make_calls(config.count, config.depth, config.size);
    mine.last_ns = now_ns();
    record->clients_done.fetch_add(1);
    if (mine.received != config.count) {
      record_error(record, "client: " + std::to_string(mine.received) + " of " + std::to_string(config.count) +
                               " calls answered");
    }
    return;
  }
  if (!endpoint.serve_calls([&] { return record->clients_done.load() >= config.clients; }, config.size)) {
    record_error(record, "server: serving failed");
  }
}

// Frames: the publisher hands over `count` frames written in place (only the frame number is
// touched); the subscriber takes the newest frame each time, in place, and releases it.
void run_frames(int side, Endpoint& endpoint, const BenchConfig& config, RunRecord* record) {
  SideRecord& mine = record->sides[side];
  if (side == 0) {
    mine.first_ns = now_ns();
    for (std::uint64_t i = 1; i <= config.count; ++i) {
      if (!endpoint.send_in_place(config.size, i)) {
        record_error(record, "frames: publish failed");
        return;
      }
    }
    mine.last_ns = now_ns();
    mine.sent = config.count;
    return;
  }
  std::uint64_t number = 0;
  while (number < config.count) {
    if (!endpoint.receive_in_place(config.size, &number)) {
      record_error(record, "frames: receive failed");
      return;
    }
    const std::int64_t t = now_ns();
    if (mine.received == 0) mine.first_ns = t;
    mine.last_ns = t;
    ++mine.received;
  }
  mine.lost = config.count - mine.received;
}

// Wake-cost: what armed descriptors cost a publisher. Side 0 publishes `count` messages into a
// lossy topic as fast as it can (never held back) and times itself; sides 1..subscribers each
// wait in epoll on their subscriber's wait_fd, drain it until kWouldBlock (which re-arms it), and
// wait again, until the publisher is done. The publisher pays one datagram per armed subscriber
// per arming: the rate with 0, 1 and 8 subscribers shows what that costs per message.
int run_wake_cost(int side, const BenchConfig& config, RunRecord* record) {
  TopicOptions options;
  options.capacity = 1 << 22;
  options.max_message = std::max<std::size_t>(config.size, 8);
  options.max_peers = kMaxSides + 1;
  const std::string name = "bench-wakecost-" + config.run_id;
  SideRecord& mine = record->sides[side];
  std::vector<std::byte> message(config.size, std::byte{0x33});
  if (side == 0) {
    absl::StatusOr<TopicPublisher> publisher = TopicPublisher::open(name, options);
    record->ready.fetch_add(1);
    if (!publisher.ok()) {
      record_error(record, std::string(publisher.status().message()));
      return 1;
    }
    while (record->go.load(std::memory_order_acquire) == 0) {
    }
    mine.first_ns = now_ns();
    for (std::uint64_t i = 0; i < config.count; ++i) {
      if (publisher->try_send(message) != ChannelResult::kOk) {
        record_error(record, "wake-cost: try_send failed");
        break;
      }
    }
    mine.last_ns = now_ns();
    mine.sent = config.count;
    record->consumed.store(1, std::memory_order_release);  // done
    return record->errors.load() == 0 ? 0 : 1;
  }
  absl::StatusOr<TopicSubscriber> subscriber = TopicSubscriber::open(name, options);
  const int fd = subscriber.ok() ? subscriber->wait_fd() : -1;
  const int ep = epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  if (fd < 0 || ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
    record_error(record, "wake-cost: no descriptor");
    record->ready.fetch_add(1);
    return 1;
  }
  std::vector<std::byte> buffer(options.max_message);
  auto drain = [&] {
    std::size_t n = 0;
    ChannelResult r;
    while ((r = subscriber->try_receive(buffer, &n)) == ChannelResult::kOk || r == ChannelResult::kOverwritten) {
      ++mine.received;
    }
  };
  drain();  // armed before the publisher starts
  record->ready.fetch_add(1);
  while (record->consumed.load(std::memory_order_acquire) == 0) {
    epoll_event out{};
    if (epoll_wait(ep, &out, 1, 20) == 1) {
      ++mine.sent;  // wake-ups
      drain();
    }
  }
  close(ep);
  return 0;
}

// The bandwidth floor: one core copying the message size over and over.
void run_memcpy(const BenchConfig& config, RunRecord* record) {
  std::vector<std::byte> source(config.size, std::byte{1}), target(config.size);
  const std::uint64_t rounds = std::max<std::uint64_t>(config.count, 1);
  const std::int64_t start = now_ns();
  for (std::uint64_t i = 0; i < rounds; ++i) {
    std::memcpy(target.data(), source.data(), config.size);
    asm volatile("" : : "r"(target.data()) : "memory");  // keep the copy
  }
  const std::int64_t elapsed = std::max<std::int64_t>(now_ns() - start, 1);
  record->memcpy_bytes_per_ns =
      static_cast<double>(config.size) * static_cast<double>(rounds) / static_cast<double>(elapsed);
  record->sides[1].received = rounds;
  record->sides[1].first_ns = start;
  record->sides[1].last_ns = start + elapsed;
}

int child_main(int side, IpcTransport& transport, const BenchConfig& given, RunRecord* record) {
  // Wake mode measures a parked *receiver*: side A busy-waits (through the idle gap too), so its
  // core never sleeps and only B's wake-up is in the round trip.
  BenchConfig config = given;
  if (config.mode == "wake" && side == 0) config.wait = WaitMode::kSpin;
  if (!pin_to_cpu(cpu_for(config, side))) {
    record_error(record, "cannot pin to cpu " + std::to_string(cpu_for(config, side)));
  }
  if (config.mode == "wake-cost") return run_wake_cost(side, config, record);
  const bool memcpy_floor = config.transport == "floor" && config.mode == "throughput";
  std::unique_ptr<Endpoint> endpoint;
  if (!memcpy_floor) {
    absl::StatusOr<std::unique_ptr<Endpoint>> opened = transport.open(side, config);
    if (!opened.ok()) {
      record_error(record, std::string(opened.status().message()));
      record->ready.fetch_add(1);
      return 1;
    }
    endpoint = *std::move(opened);
  }
  record->ready.fetch_add(1);
  while (record->go.load(std::memory_order_acquire) == 0) {
  }
  if (memcpy_floor) {
    if (side == 0) run_memcpy(config, record);
  } else if (config.mode == "throughput" || config.mode == "fanout") {
    run_stream(side == 0 ? 0 : side, *endpoint, config, record);
  } else if (config.mode == "pipeline") {
    run_pipeline(side, *endpoint, config, record);
  } else if (config.mode == "frames") {
    run_frames(side, *endpoint, config, record);
  } else if (config.mode == "calls") {
    run_calls(side, *endpoint, config, record);
  } else {
    run_round_trips(side, *endpoint, config, record);
  }
  return record->errors.load() == 0 ? 0 : 1;
}

template <typename T>
T median_of(std::vector<T> values) {
  if (values.empty()) return T{};
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

struct Measurement {
  bool ok = false;
  std::string error;
  std::uint64_t p50 = 0, p99 = 0, p999 = 0, max = 0;
  double msgs_per_s = 0;   // per receiver (fanout: the slowest subscriber's rate)
  double msgs_per_s_median_subscriber = 0;
  double gbps = 0;
  std::uint64_t lost = 0;
  std::uint64_t errors = 0;
};

Measurement run_once(IpcTransport& transport, const BenchConfig& config) {
  Measurement result;
  RunRecord* record = make_shared_record<RunRecord>();
  if (record == nullptr) {
    result.error = "mmap failed";
    return result;
  }
  if (const absl::Status prepared = transport.prepare(config); !prepared.ok()) {
    result.error = std::string(prepared.message());
    release_shared(record);
    return result;
  }
  std::fflush(nullptr);
  const int sides = sides_for(config);
  std::vector<pid_t> children(static_cast<std::size_t>(sides), -1);
  for (int side = sides - 1; side >= 0; --side) {  // receivers first, so they are ready
    children[side] = fork();
    if (children[side] == 0) _exit(child_main(side, transport, config, record));
  }
  const std::int64_t ready_deadline = now_ns() + 20'000'000'000;
  while (record->ready.load() < sides && now_ns() < ready_deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  record->go.store(1, std::memory_order_release);
  // Generous limit: a peer 1000x slower than expected still finishes; a hung one does not. When one
  // side fails, the others could wait for it forever: give them a second, then stop them.
  const std::int64_t deadline = now_ns() + 120'000'000'000;
  bool timed_out = false;
  int running = sides;
  std::int64_t first_failure_ns = 0;
  while (running > 0) {
    for (pid_t& child : children) {
      int status = 0;
      if (child > 0 && waitpid(child, &status, WNOHANG) == child) {
        child = -1;
        --running;
        if ((!WIFEXITED(status) || WEXITSTATUS(status) != 0) && first_failure_ns == 0) {
          first_failure_ns = now_ns();
        }
      }
    }
    const bool stuck_after_failure =
        first_failure_ns != 0 && now_ns() - first_failure_ns > 1'000'000'000;
    if (running > 0 && (now_ns() > deadline || stuck_after_failure)) {
      timed_out = now_ns() > deadline;
      for (pid_t child : children) {
        if (child > 0) kill(child, SIGKILL);
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  transport.cleanup();
  result.errors = record->errors.load() + (timed_out ? 1 : 0);
  result.error = timed_out ? "timed out after 120 s" : record->error;
  const LatencyHistogram& h = record->latency;
  result.p50 = h.percentile(50);
  result.p99 = h.percentile(99);
  result.p999 = h.percentile(99.9);
  result.max = h.max();
  auto rate_of = [](const SideRecord& side) {
    if (side.received < 2 || side.last_ns <= side.first_ns) return 0.0;
    return static_cast<double>(side.received - 1) /
           (static_cast<double>(side.last_ns - side.first_ns) / 1e9);
  };
  if (record->memcpy_bytes_per_ns > 0) {
    result.gbps = record->memcpy_bytes_per_ns;  // bytes per ns == GB/s
    result.msgs_per_s = record->memcpy_bytes_per_ns * 1e9 / static_cast<double>(config.size);
  } else if (config.mode == "pipeline") {
    // Items through the pipeline per second: all consumers' items over the span they covered.
    std::uint64_t received = 0, checksum = 0;
    std::int64_t first = INT64_MAX, last = 0;
    for (int side = 2; side < 4; ++side) {
      const SideRecord& r = record->sides[side];
      received += r.received;
      checksum += r.checksum;
      if (r.received > 0) first = std::min(first, r.first_ns);
      last = std::max(last, r.last_ns);
    }
    const std::uint64_t total = config.count / 2 * 2;
    if (received != total || checksum != total * (total + 1) / 2) {
      ++result.errors;
      result.error = "pipeline: " + std::to_string(received) + " of " + std::to_string(total) +
                     " items arrived, checksum " + (checksum == total * (total + 1) / 2 ? "ok" : "wrong");
    }
    result.lost = total > received ? total - received : 0;
    if (last > first) result.msgs_per_s = static_cast<double>(received) / (static_cast<double>(last - first) / 1e9);
  } else if (config.mode == "calls") {
    // Calls answered per second, all clients together, over the span they covered.
    std::uint64_t received = 0;
    std::int64_t first = INT64_MAX, last = 0;
    for (int side = 0; side < config.clients; ++side) {
      const SideRecord& r = record->sides[side];
      received += r.received;
      if (r.received > 0) first = std::min(first, r.first_ns);
      last = std::max(last, r.last_ns);
    }
    const std::uint64_t total = config.count * static_cast<std::uint64_t>(config.clients);
    result.lost = total > received ? total - received : 0;
    if (last > first) result.msgs_per_s = static_cast<double>(received) / (static_cast<double>(last - first) / 1e9);
  } else if (config.mode == "wake-cost") {
    // The publisher's own rate (messages it sent per second while subscribers woke and drained).
    const SideRecord& publisher = record->sides[0];
    if (publisher.sent > 1 && publisher.last_ns > publisher.first_ns) {
      result.msgs_per_s = static_cast<double>(publisher.sent) /
                          (static_cast<double>(publisher.last_ns - publisher.first_ns) / 1e9);
    }
    std::vector<double> wakeups;
    for (int side = 1; side < sides; ++side) wakeups.push_back(static_cast<double>(record->sides[side].sent));
    result.msgs_per_s_median_subscriber = median_of(wakeups);  // wake-ups per subscriber (median)
  } else if (config.mode == "frames") {
    // Hand-overs per second: the publisher's loan -> publish rate while a viewer takes the newest
    // frame concurrently (newest-first: the viewer skips frames, counted as lost).
    const SideRecord& publisher = record->sides[0];
    if (publisher.sent > 1 && publisher.last_ns > publisher.first_ns) {
      result.msgs_per_s = static_cast<double>(publisher.sent) /
                          (static_cast<double>(publisher.last_ns - publisher.first_ns) / 1e9);
    }
    result.msgs_per_s_median_subscriber = rate_of(record->sides[1]);
    result.lost = record->sides[1].lost;
  } else {
    // Every receiving side (fanout: each subscriber); report the slowest and the median.
    std::vector<double> rates;
    for (int side = 1; side < sides; ++side) {
      rates.push_back(rate_of(record->sides[side]));
      result.lost += record->sides[side].lost;
    }
    result.msgs_per_s = *std::min_element(rates.begin(), rates.end());
    result.msgs_per_s_median_subscriber = median_of(rates);
  }
  // Frames are handed over without touching the payload: no bandwidth to speak of.
  if (result.gbps == 0 && config.mode != "frames") {
    result.gbps = result.msgs_per_s * static_cast<double>(config.size) / 1e9;
  }
  result.ok = result.errors == 0;
  release_shared(record);
  return result;
}

}  // namespace

bool Endpoint::send_in_place(std::size_t size, std::uint64_t number) {
  std::vector<std::byte> message(std::max<std::size_t>(size, sizeof number));
  std::memcpy(message.data(), &number, sizeof number);
  return send(message.data(), size);
}

bool Endpoint::receive_in_place(std::size_t size, std::uint64_t* number) {
  std::vector<std::byte> message(std::max<std::size_t>(size, sizeof *number));
  if (!receive(message.data(), size)) return false;
  std::memcpy(number, message.data(), sizeof *number);
  return true;
}

std::uint64_t Endpoint::make_calls(std::uint64_t count, int depth, std::size_t size) {
  (void)depth;
  std::vector<std::byte> message(std::max<std::size_t>(size, sizeof(std::uint64_t)));
  std::vector<std::byte> answer(message.size());
  for (std::uint64_t i = 0; i < count; ++i) {
    std::memcpy(message.data(), &i, sizeof i);
    if (!send(message.data(), size) || !receive(answer.data(), size)) return i;
    if (std::memcmp(answer.data(), &i, std::min(size, sizeof i)) != 0) return i;
  }
  return count;
}

bool Endpoint::serve_calls(const std::function<bool()>& stop, std::size_t size) {
  (void)stop;
  (void)size;
  return false;
}

bool IpcTransport::supports(const std::string& mode) const {
  return mode == "pingpong" || mode == "throughput" || mode == "wake";
}

std::string to_string(WaitMode wait) {
  switch (wait) {
    case WaitMode::kSpin: return "spin";
    case WaitMode::kHybrid: return "hybrid";
    case WaitMode::kPark: return "park";
    case WaitMode::kDescriptor: return "fd";
  }
  return "?";
}

std::uint64_t probe_floor_ns(const std::vector<int>& cpus) {
  BenchConfig probe;
  probe.transport = "floor";
  probe.mode = "pingpong";
  probe.count = 20000;
  probe.cpus = cpus;
  probe.run_id = "probe" + std::to_string(getpid());
  std::unique_ptr<IpcTransport> floor = make_floor_transport();
  const Measurement m = run_once(*floor, probe);
  return m.ok ? m.p50 : 0;
}

int run_benchmark(const BenchConfig& given, std::FILE* out) {
  BenchConfig config = given;
  if (config.run_id.empty()) config.run_id = std::to_string(getpid());
  const bool latency_mode = config.mode == "pingpong" || config.mode == "wake";
  auto emit_skip = [&](const std::string& why) {
    if (config.json) {
      std::fprintf(out,
                   "{\"transport\":\"%s\",\"mode\":\"%s\",\"size\":%zu,\"wait\":\"%s\","
                   "\"skipped\":true,\"reason\":\"%s\"}\n",
                   config.transport.c_str(), config.mode.c_str(), config.size,
                   to_string(config.wait).c_str(), json_escape(why).c_str());
    } else {
      std::fprintf(out, "%-14s %-10s %8zu B %-6s skipped: %s\n", config.transport.c_str(),
                   config.mode.c_str(), config.size, to_string(config.wait).c_str(), why.c_str());
    }
    std::fflush(out);
  };
  static const char* const kModes[] = {"pingpong", "throughput", "wake", "wake-cost", "fanout",
                                        "pipeline", "frames", "calls"};
  if (std::find(std::begin(kModes), std::end(kModes), config.mode) == std::end(kModes)) {
    emit_skip("unknown mode '" + config.mode + "'");
    return 1;
  }
  std::string why_not;
  std::unique_ptr<IpcTransport> transport = make_transport(config.transport, &why_not);
  if (transport == nullptr) {
    emit_skip(why_not);
    return 0;
  }
  if (!transport->supports(config.mode)) {
    emit_skip("transport '" + config.transport + "' has no " + config.mode + " mode");
    return 0;
  }
  const std::uint64_t floor_before = probe_floor_ns(config.cpus);
  std::vector<Measurement> runs;
  for (int rep = 0; rep < std::max(config.repetitions, 1); ++rep) {
    BenchConfig attempt = config;
    attempt.run_id = config.run_id + "_" + std::to_string(rep);
    runs.push_back(run_once(*transport, attempt));
  }
  const std::uint64_t floor_after = probe_floor_ns(config.cpus);

  std::vector<std::uint64_t> p50, p99, p999, max;
  std::vector<double> rates, gbps;
  std::uint64_t lost = 0, errors = 0;
  std::string first_error;
  for (const Measurement& m : runs) {
    p50.push_back(m.p50);
    p99.push_back(m.p99);
    p999.push_back(m.p999);
    max.push_back(m.max);
    rates.push_back(m.msgs_per_s);
    gbps.push_back(m.gbps);
    lost += m.lost;
    errors += m.errors;
    if (first_error.empty()) first_error = m.error;
  }
  const auto [p50_min, p50_max] = std::minmax_element(p50.begin(), p50.end());
  const auto [rate_min, rate_max] = std::minmax_element(rates.begin(), rates.end());
  const double floor_ns = static_cast<double>(floor_before ? floor_before : 1);
  const std::string placement = floor_before == 0 ? "unknown" : floor_before < 300 ? "near" : "far";
  if (config.json) {
    std::fprintf(
        out,
        "{\"transport\":\"%s\",\"mode\":\"%s\",\"size\":%zu,\"wait\":\"%s\",\"wait_how\":\"%s\","
        "\"cpus\":\"%s\",\"count\":%llu,\"repetitions\":%zu,\"rate\":%.0f,\"subscribers\":%d,"
        "\"floor_probe_ns\":%llu,\"floor_probe_after_ns\":%llu,\"placement\":\"%s\"",
        config.transport.c_str(), config.mode.c_str(), config.size, to_string(config.wait).c_str(),
        json_escape(transport->wait_description(config.wait)).c_str(),
        cpus_text(config.cpus).c_str(), static_cast<unsigned long long>(config.count), runs.size(),
        config.rate, config.mode == "pipeline" ? 2 : sides_for(config) - 1,
        static_cast<unsigned long long>(floor_before),
        static_cast<unsigned long long>(floor_after), placement.c_str());
    if (config.mode == "calls") {
      std::fprintf(out, ",\"clients\":%d,\"servers\":%d,\"depth\":%d", config.clients, config.servers,
                   config.depth);
    }
    if (latency_mode) {
      std::fprintf(out,
                   ",\"rtt_p50_ns\":%llu,\"rtt_p99_ns\":%llu,\"rtt_p999_ns\":%llu,"
                   "\"rtt_max_ns\":%llu,\"rtt_p50_ns_min\":%llu,\"rtt_p50_ns_max\":%llu,"
                   "\"rtt_p50_floor_ratio\":%.3f,\"rtt_p50_above_floor_ns\":%lld",
                   static_cast<unsigned long long>(median_of(p50)),
                   static_cast<unsigned long long>(median_of(p99)),
                   static_cast<unsigned long long>(median_of(p999)),
                   static_cast<unsigned long long>(median_of(max)),
                   static_cast<unsigned long long>(*p50_min),
                   static_cast<unsigned long long>(*p50_max),
                   static_cast<double>(median_of(p50)) / floor_ns,
                   static_cast<long long>(median_of(p50)) - static_cast<long long>(floor_before));
    } else {
      std::fprintf(out, ",\"msgs_per_s\":%.0f,\"gbps\":%.3f,\"msgs_per_s_min\":%.0f,"
                        "\"msgs_per_s_max\":%.0f",
                   median_of(rates), median_of(gbps), *rate_min, *rate_max);
    }
    std::fprintf(out, ",\"lost\":%llu,\"errors\":%llu,\"error\":\"%s\"}\n",
                 static_cast<unsigned long long>(lost), static_cast<unsigned long long>(errors),
                 json_escape(first_error).c_str());
  } else {
    std::fprintf(out, "%-14s %-10s %8zu B %-6s cpus %s floor %llu/%llu ns (%s): ",
                 config.transport.c_str(), config.mode.c_str(), config.size,
                 to_string(config.wait).c_str(), cpus_text(config.cpus).c_str(),
                 static_cast<unsigned long long>(floor_before),
                 static_cast<unsigned long long>(floor_after), placement.c_str());
    if (config.mode == "calls") {
      std::fprintf(out, "%d client(s) x %d server(s), %d in flight each: ", config.clients, config.servers,
                   config.depth);
    }
    if (latency_mode) {
      std::fprintf(out,
                   "rtt p50 %llu ns (%.2fx floor, %+lld ns above it; reps %llu..%llu) p99 %llu "
                   "p99.9 %llu max %llu",
                   static_cast<unsigned long long>(median_of(p50)),
                   static_cast<double>(median_of(p50)) / floor_ns,
                   static_cast<long long>(median_of(p50)) - static_cast<long long>(floor_before),
                   static_cast<unsigned long long>(*p50_min),
                   static_cast<unsigned long long>(*p50_max),
                   static_cast<unsigned long long>(median_of(p99)),
                   static_cast<unsigned long long>(median_of(p999)),
                   static_cast<unsigned long long>(median_of(max)));
    } else {
      std::fprintf(out, "%.0f msgs/s (reps %.0f..%.0f) %.2f GB/s", median_of(rates), *rate_min,
                   *rate_max, median_of(gbps));
    }
    std::fprintf(out, " lost %llu errors %llu%s%s\n", static_cast<unsigned long long>(lost),
                 static_cast<unsigned long long>(errors), first_error.empty() ? "" : ": ",
                 first_error.c_str());
  }
  std::fflush(out);
  return errors == 0 ? 0 : 1;
}

std::vector<std::string> known_transports() {
  return {"floor",          "shmring-spsc",     "shmring-topic",       "shmring-topic-zc",
          "shmring-queue",  "shmring-queue-zc", "shmring-frames-copy", "shmring-frames",
          "pipe",           "uds",              "boost-mq",            "zmq",
          "iceoryx",        "shmring-service",  "shmring-service-zc",  "zmq-rr",
          "grpc",           "iceoryx-rr"};
}

std::unique_ptr<IpcTransport> make_transport(const std::string& name, std::string* why_not) {
  if (name == "floor") return make_floor_transport();
  if (name == "shmring-spsc") return make_shmring_spsc_transport();
  if (name == "shmring-topic") return make_shmring_topic_transport(false);
  if (name == "shmring-topic-zc") return make_shmring_topic_transport(true);
  if (name == "shmring-queue") return make_shmring_queue_transport(false);
  if (name == "shmring-queue-zc") return make_shmring_queue_transport(true);
  if (name == "shmring-frames-copy") return make_shmring_frames_transport(false);
  if (name == "shmring-frames") return make_shmring_frames_transport(true);
  if (name == "shmring-service") return make_shmring_service_transport(false);
  if (name == "shmring-service-zc") return make_shmring_service_transport(true);
  if (name == "zmq-rr") {
    if (auto zmq = make_zmq_rr_transport()) return zmq;
    *why_not = "ZeroMQ (libzmq3-dev) was not found when shmring was built";
    return nullptr;
  }
  if (name == "grpc") {
    if (auto grpc = make_grpc_transport()) return grpc;
    *why_not = "gRPC (Debian's libgrpc++-dev) was not found when shmring was built";
    return nullptr;
  }
  if (name == "iceoryx-rr") {
    if (auto iceoryx = make_iceoryx_rr_transport()) return iceoryx;
    *why_not = "iceoryx (Debian's iceoryx, libiceoryx-posh-dev) was not found when shmring was built";
    return nullptr;
  }
  if (name == "pipe") return make_pipe_transport();
  if (name == "uds") return make_uds_transport();
  if (name == "boost-mq") return make_boost_mq_transport();
  if (name == "zmq") {
    if (auto zmq = make_zmq_transport()) return zmq;
    *why_not = "ZeroMQ (libzmq3-dev) was not found when shmring was built";
    return nullptr;
  }
  if (name == "iceoryx") {
    if (auto iceoryx = make_iceoryx_transport()) return iceoryx;
    *why_not = "iceoryx (Debian's iceoryx, libiceoryx-posh-dev) was not found when shmring was built";
    return nullptr;
  }
  const auto known = known_transports();
  if (std::find(known.begin(), known.end(), name) != known.end()) {
    *why_not = "transport '" + name + "' is not implemented in this build";
  } else {
    *why_not = "unknown transport '" + name + "'";
  }
  return nullptr;
}

}  // namespace shmring::bench
