// shmring_publishers_bench (docs/benchmarks.md, "Several publishers and history"): what its parts
// share. Several publisher processes send into one topic read by one subscriber process; every
// message starts with a Stamp (who sent it, that publisher's number of it, when), from which the
// subscriber measures latency and checks that each publisher's messages arrive in its order.
//
// A peer (shmring's topic, iceoryx) supplies the bodies of the child processes (PeerUnderTest);
// run_processes() forks, pins and times them; publish_loop() and subscribe_loop() are the loops
// every peer runs around its own send and receive calls.
#pragma once

#include <sys/types.h>
#include <time.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "bench_util.h"
#include "histogram.h"

namespace shmring::bench::publishers {

inline constexpr int kMaxPublishers = 8;

// The first bytes of every message (messages are at least this long).
struct Stamp {
  std::uint32_t publisher = 0;  // the publisher's index in the run (0 .. publishers - 1)
  std::uint32_t reserved = 0;
  std::uint64_t sequence = 0;   // that publisher's number of this message, from 0
  std::int64_t sent_ns = 0;     // CLOCK_MONOTONIC just before the send call
};
static_assert(sizeof(Stamp) == 24);

// kThroughput: publishers send as fast as they can; kLatency: each sends at rate / publishers.
enum class Load { kThroughput, kLatency };

struct RunSpec {
  std::string peer;        // "shmring" or "iceoryx"
  std::string name;        // the topic's name (unique per run)
  int publishers = 1;
  int max_publishers = 1;  // shmring: the topic's TopicOptions::max_publishers
  bool lossless = true;    // the subscriber's delivery
  Load load = Load::kThroughput;
  double rate = 0;         // kLatency: messages per second, all publishers together
  std::size_t size = 64;
  double seconds = 2;      // how long the publishers send
  std::vector<int> publisher_cpus;  // publisher i runs on publisher_cpus[i % size]
  int subscriber_cpu = 1;
};

// What the children hand back (in memory shared with the parent).
struct PublisherRecord {
  std::uint64_t published = 0;
  // The rate's window: from the first send after the warm-up (first_count messages sent before
  // it) to the last.
  std::uint64_t first_count = 0;
  std::int64_t first_ns = 0;
  std::int64_t last_ns = 0;
};

struct SubscriberRecord {
  std::uint64_t received = 0;
  // The rate's window: from the first message after the warm-up (first_count received before
  // it) to the last.
  std::uint64_t first_count = 0;
  std::int64_t first_ns = 0;
  std::int64_t last_ns = 0;
  std::uint64_t received_from[kMaxPublishers] = {};
  // A message whose publisher number is not above the last one seen from that publisher.
  std::uint64_t out_of_order = 0;
  // Messages missing between two received from one publisher (its numbers skipped).
  std::uint64_t gaps = 0;
  // shmring only: a topic sequence number that did not grow, or a message whose publisher
  // sequence (TopicSubscriber::last_publisher_sequence) differs from the one in its payload.
  std::uint64_t topic_order_violations = 0;
  // What the subscriber's own counters say it lost (shmring: TopicSubscriber::lost()).
  std::uint64_t lost_counted = 0;
  bool counts_losses = false;  // whether lost_counted means anything for this peer
};

struct SharedRun {
  LatencyHistogram latency;
  std::atomic<int> ready{0};
  std::atomic<int> go{0};
  std::atomic<int> stop{0};
  std::atomic<int> publishers_done{0};
  std::atomic<int> drained{0};        // the subscriber has everything: publishers may close
  std::atomic<std::int64_t> measure_from_ns{0};  // latency: samples sent before this are warm-up
  PublisherRecord publisher[kMaxPublishers];
  SubscriberRecord subscriber;
  std::atomic<int> errors{0};
  char error[256] = {};
};

inline void fail(SharedRun& run, const std::string& why) {
  if (run.errors.fetch_add(1) == 0) std::snprintf(run.error, sizeof run.error, "%s", why.c_str());
}

// One peer's processes. prepare() and cleanup() run in the parent (before forking, after every
// child exited, also after failures); the run_ bodies in the forked children, which have pinned
// themselves already. A body opens its endpoint, adds 1 to `ready`, waits for `go`, runs
// publish_loop / subscribe_loop, and returns the exit status (0: no error).
class PeerUnderTest {
 public:
  virtual ~PeerUnderTest() = default;
  virtual absl::Status prepare(const RunSpec& spec) = 0;
  virtual int run_publisher(int index, const RunSpec& spec, SharedRun& run) = 0;
  virtual int run_subscriber(const RunSpec& spec, SharedRun& run) = 0;
  virtual void cleanup(const RunSpec& spec) = 0;
};

std::unique_ptr<PeerUnderTest> make_shmring_peer();
// nullptr when iceoryx was not found at build time; *why_not says so.
std::unique_ptr<PeerUnderTest> make_iceoryx_peer(std::string* why_not);

// What one run measured.
struct Outcome {
  bool ok = false;
  bool skipped = false;  // the peer could not be prepared here (error says why)
  std::string error;
  double delivered_per_s = 0;  // messages the subscriber received per second
  double published_per_s = 0;  // messages all publishers sent per second
  std::uint64_t published = 0;
  std::uint64_t received = 0;
  std::uint64_t lost = 0;      // published - received
  std::uint64_t gaps = 0;
  std::uint64_t out_of_order = 0;
  std::uint64_t topic_order_violations = 0;
  std::uint64_t lost_counted = 0;
  bool counts_losses = false;
  std::uint64_t samples = 0, p50 = 0, p99 = 0, p999 = 0, max = 0;
  // Set by the benchmark around the run: the cache-line floor probed before it, and the
  // placement of the cores ("near", "far"; "mixed" if the probes before and after disagree;
  // "same-core" when publishers and subscriber share one).
  std::uint64_t floor_ns = 0;
  std::string placement;
};

// Forks the subscriber, then the publishers (each pinned as `spec` says), lets them run for
// spec.seconds, stops the publishers, waits until the subscriber has drained everything, and
// gathers the records. A child that hangs is killed after a generous limit (the run reports it).
Outcome run_processes(PeerUnderTest& peer, const RunSpec& spec);

void sleep_until_ns(std::int64_t deadline_ns);

// The publisher's loop: `send(message)` (a bool) until `stop`, pacing for kLatency.
template <typename Send>
void publish_loop(int index, const RunSpec& spec, SharedRun& run, Send&& send) {
  std::vector<std::byte> message(spec.size, std::byte{0x5a});
  Stamp stamp;
  stamp.publisher = static_cast<std::uint32_t>(index);
  PublisherRecord& mine = run.publisher[index];
  const std::int64_t interval =
      spec.load == Load::kLatency && spec.rate > 0
          ? static_cast<std::int64_t>(1e9 * spec.publishers / spec.rate)
          : 0;
  const std::int64_t started = now_ns();
  const std::int64_t measure_from = run.measure_from_ns.load();
  // Publishers take turns within one interval rather than all sending at once.
  std::int64_t next = started + interval * index / spec.publishers;
  bool counting = false;
  while (run.stop.load(std::memory_order_relaxed) == 0) {
    if (interval > 0) {
      next += interval;
      sleep_until_ns(next);
    }
    // The rate counts from the end of the warm-up (the clock read only now and then: it costs
    // as much as a message).
    if (!counting && (stamp.sequence & 255) == 0) {
      const std::int64_t t = now_ns();
      if (t >= measure_from) {
        counting = true;
        mine.first_ns = t;
        mine.first_count = stamp.sequence;
      }
    }
    stamp.sent_ns = now_ns();
    std::memcpy(message.data(), &stamp, sizeof stamp);
    if (!send(std::span<const std::byte>(message))) {
      fail(run, "publisher " + std::to_string(index) + ": send failed");
      break;
    }
    ++stamp.sequence;
  }
  mine.last_ns = now_ns();
  mine.published = stamp.sequence;
  if (!counting) {
    mine.first_ns = started;
    mine.first_count = 0;
  }
  run.publishers_done.fetch_add(1);  // after every send: the subscriber's end-of-run test
}

enum class Got { kMessage, kNone, kError };

// The subscriber's loop: `receive(buffer)` (a Got; the message's bytes are in the buffer) until
// every publisher is done and nothing is left. Checks each publisher's order, records latency
// (kLatency, after the warm-up) and the counts.
template <typename Receive>
void subscribe_loop(const RunSpec& spec, SharedRun& run, Receive&& receive) {
  std::vector<std::byte> buffer(spec.size);
  SubscriberRecord& mine = run.subscriber;
  std::uint64_t expected[kMaxPublishers] = {};
  const std::int64_t measure_from = run.measure_from_ns.load();
  const bool latency = spec.load == Load::kLatency;
  const std::int64_t give_up_after = static_cast<std::int64_t>(spec.seconds * 1e9) + 60'000'000'000;
  const std::int64_t started = now_ns();
  bool counting = false;
  bool idle = true;  // no message since the last empty poll
  for (std::uint64_t polls = 0;; ++polls) {
    // Read before trying: a message published before the last publisher said it was done is
    // visible to the try that follows.
    const bool all_done = run.publishers_done.load(std::memory_order_acquire) == spec.publishers;
    const Got got = receive(std::span<std::byte>(buffer));
    if (got == Got::kError) return;
    if (got == Got::kNone) {
      // The end of a busy stretch: when the last message (so far) arrived, give or take a poll.
      if (!idle) mine.last_ns = now_ns();
      idle = true;
      if (all_done) break;
      if ((polls & 0xffff) == 0 && now_ns() - started > give_up_after) {
        fail(run, "subscriber: the publishers never finished");
        return;
      }
      continue;
    }
    idle = false;
    Stamp stamp;
    std::memcpy(&stamp, buffer.data(), sizeof stamp);
    if (stamp.publisher >= static_cast<std::uint32_t>(spec.publishers)) {
      fail(run, "subscriber: a message from publisher " + std::to_string(stamp.publisher));
      return;
    }
    std::uint64_t& next = expected[stamp.publisher];
    if (stamp.sequence < next) {
      ++mine.out_of_order;
    } else {
      mine.gaps += stamp.sequence - next;
      next = stamp.sequence + 1;
    }
    ++mine.received_from[stamp.publisher];
    // The clock for every message when measuring latency; else now and then (it costs as much
    // as a message).
    if (latency || (!counting && (mine.received & 255) == 0)) {
      const std::int64_t t = now_ns();
      if (!counting && t >= measure_from) {
        counting = true;
        mine.first_ns = t;
        mine.first_count = mine.received;
      }
      if (latency && stamp.sent_ns >= measure_from) {
        run.latency.record(static_cast<std::uint64_t>(t - stamp.sent_ns));
      }
    }
    ++mine.received;
  }
}

// --- History ---------------------------------------------------------------------------------------
// A topic created with TopicOptions::history = messages gets that many messages; then, `repetitions`
// times, a fresh subscriber process opens it with TopicStart::history(messages) and times from before
// open() until it has received the last of them.
struct HistorySpec {
  std::string name;
  std::uint64_t messages = 10000;
  std::size_t size = 64;
  int repetitions = 7;
  int publisher_cpu = 0;
  int subscriber_cpu = 1;
};

struct HistoryOutcome {
  bool ok = false;
  std::string error;
  std::uint64_t capacity = 0;                 // the ring the creator chose
  std::vector<std::int64_t> join_ns;          // per repetition: open() + receiving them all
  std::vector<std::int64_t> open_ns;          // per repetition: open() alone
  std::uint64_t history_missed = 0;           // summed over repetitions
  std::uint64_t out_of_order = 0;             // messages not in 0, 1, 2, ... order
  std::uint64_t short_count = 0;              // repetitions that did not receive them all
};

HistoryOutcome measure_history(const HistorySpec& spec);

}  // namespace shmring::bench::publishers
