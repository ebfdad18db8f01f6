// Replaying a recording into channels: what `shmring replay` runs (docs/record.md).
//
// Each recorded channel is published again under its name (or the name --map gives it) with
// the endpoint of its kind: a topic publisher, a frame publisher, a queue producer. Messages go
// out in log-time order at the recorded pace (scaled by `rate`), or as fast as the channels take
// them (`max_speed`). A lossless topic, a queue and a frame channel hold the replay back when
// their readers are slow (back-pressure, nothing dropped); a lossy topic never does. Channels
// must exist (a subscriber or consumer opened them) unless `create` is set: then they are made
// with the recorded kind and limits.
//
// Timing: each message is due at start + (log_time - first log_time) / rate on CLOCK_MONOTONIC;
// the replayer sleeps until shortly before, then spins. ReplayStats reports how late each send
// was (the timing error) as percentiles.
//
// Threads: run() on one thread; stop() from any thread or a signal handler.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace shmring::record {

struct ReplayOptions {
  std::vector<std::string> files;  // replayed one after the other (a split recording)
  double rate = 1.0;               // > 0: 2.0 plays twice as fast
  bool max_speed = false;          // ignore the recorded timing
  bool loop = false;               // start over at the end, until stop()
  // The part to play, as offsets from the first message's log time.
  std::optional<std::chrono::nanoseconds> start;
  std::optional<std::chrono::nanoseconds> end;
  std::map<std::string, std::string> map;  // recorded channel name -> channel to publish into
  bool create = false;                     // create missing channels (recorded kind and limits)
  std::vector<std::string> channels;       // replay only these recorded names/patterns (empty: all)
  std::function<void(const std::string&)> log;
};

struct ReplayChannelStats {
  std::string name;  // published into
  std::uint64_t messages = 0;
  std::uint64_t bytes = 0;
  std::uint64_t dropped = 0;  // messages the channel refused (too large)
};

struct ReplayStats {
  std::uint64_t messages = 0;
  std::uint64_t bytes = 0;
  std::uint64_t loops = 0;
  double seconds = 0;  // wall time of the replay
  // How late each message went out against its due time (paced replay only), in ns.
  std::int64_t timing_p50_ns = 0, timing_p99_ns = 0, timing_max_ns = 0;
  std::vector<ReplayChannelStats> channels;
};

class Replayer {
 public:
  // Opens the files and every channel they will publish into (errors: a file that is not MCAP,
  // a channel that does not exist without `create`, a channel of another kind, a live publisher
  // on a topic or frame channel).
  static absl::StatusOr<std::unique_ptr<Replayer>> create(ReplayOptions options);
  ~Replayer();
  Replayer(const Replayer&) = delete;
  Replayer& operator=(const Replayer&) = delete;

  // Replays until the end (or stop()); kCancelled if stopped.
  absl::Status run();
  void stop() noexcept;
  ReplayStats stats() const;

 private:
  struct Impl;
  explicit Replayer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace shmring::record
