// Recorder: one thread waits on every recorded endpoint (WaitSet), polls the queue taps on a
// timer, looks for new channels on another, and hands each message to the RecordingWriter.
#include "shmring/record/recorder.h"

#include <fnmatch.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "channel_source.h"
#include "recording_writer.h"
#include "wall_clock.h"
#include "shmring/transport/wait_set.h"

namespace shmring::record {

namespace {

constexpr std::uint64_t kDiscoverTag = 1ull << 62;
constexpr std::uint64_t kTickTag = kDiscoverTag + 1;
constexpr std::uint64_t kPollTag = kDiscoverTag + 2;
constexpr std::uint64_t kTriggerTag = kDiscoverTag + 3;
// Messages drained from one channel before the others get their turn.
constexpr std::size_t kDrainBatch = 1024;
// How many discovery rounds a channel may look abandoned (no publisher or producer, nothing to
// read) before it is let go.
constexpr int kIdleRounds = 5;
// A channel that cannot be opened is tried again after this long.
constexpr std::uint64_t kRetryNs = 2'000'000'000;

bool matches(const std::vector<std::string>& patterns, const std::string& name) {
  if (patterns.empty()) return true;
  for (const std::string& p : patterns) {
    if (fnmatch(p.c_str(), name.c_str(), 0) == 0) return true;
  }
  return false;
}

// Whether anything still writes into the channel: a live publisher (topics, frames) or producer.
bool has_writer(const std::string& name) {
  absl::StatusOr<ChannelStats> stats = read_stats(name);
  if (!stats.ok()) return false;
  for (const PeerStats& p : stats->peers) {
    if (p.alive && (p.role == PeerRole::kPublisher || p.role == PeerRole::kProducer)) return true;
  }
  return false;
}

}  // namespace

struct Recorder::Impl {
  RecordOptions options;
  WaitSet waits;
  int trigger_fd = -1;
  std::atomic<bool> stopping{false};

  struct Active {
    std::uint32_t id;
    std::unique_ptr<detail::ChannelSource> source;
    int idle_rounds = 0;
    std::uint64_t messages = 0;
    std::uint64_t bytes = 0;
    std::uint64_t last_sequence = 0;
  };
  std::map<std::string, Active> active;          // by channel name
  std::map<std::string, std::uint64_t> retry_at;  // channels that failed to open
  std::map<std::string, std::string> last_error;  // logged once per distinct error
  std::uint32_t next_id = 1;
  bool polling = false;
  std::optional<detail::RecordingWriter> writer;
  absl::Status failure;
  std::uint64_t discover_rounds = 0;
  // Channels whose last drain stopped at kDrainBatch with messages left: drained again before
  // the loop waits. Needed, not an optimisation: after a try_ call re-armed the descriptor and
  // the next one returned a message, nothing wakes the wait set for what is still there (a
  // lossless publisher that filled the ring is waiting for room, not sending).
  std::set<std::string> backlog;

  mutable std::mutex status_mutex;
  RecordStatus snapshot;

  void log(const std::string& line) {
    if (options.log) options.log(line);
  }

  absl::Status drain(Active& a, bool* more) {
    std::size_t n = 0;
    const std::uint32_t id = a.id;
    absl::Status st;
    const detail::ChannelSource::Drained d = a.source->drain(
        [&](std::uint64_t sequence, std::span<const std::byte> data) {
          if (!st.ok()) return;
          st = writer->add(id, sequence, detail::wall_ns(), data);
          a.bytes += data.size();
          a.last_sequence = sequence;
        },
        kDrainBatch, &n);
    a.messages += n;
    if (n > 0) a.idle_rounds = 0;
    *more = d == detail::ChannelSource::Drained::kMore;
    if (*more) {
      backlog.insert(a.source->name());
    } else {
      backlog.erase(a.source->name());
    }
    if (!st.ok()) return st;
    if (d == detail::ChannelSource::Drained::kEvicted || d == detail::ChannelSource::Drained::kBroken) {
      log(absl::StrCat("channel '", a.source->name(), "': ",
                       d == detail::ChannelSource::Drained::kEvicted ? "evicted by its publisher" : "corrupt",
                       "; opening it again"));
      const std::string name = a.source->name();  // `a` goes with it
      drop(name);
    }
    return absl::OkStatus();
  }

  // Lets go of a channel. The status says so before its subscriber closes: a caller that sees
  // the segment gone (it goes with the last endpoint) never reads an older status that still
  // calls this incarnation open, and takes a new one for it.
  void drop(const std::string& name) {
    auto it = active.find(name);
    if (it == active.end()) return;
    if (it->second.source->waitable() != nullptr) waits.remove(it->second.id).IgnoreError();
    backlog.erase(name);
    publish_status();  // its final totals, still open
    std::unique_ptr<detail::ChannelSource> closing = std::move(it->second.source);
    active.erase(it);
    update_polling();
    publish_status();  // kept with those totals, not open
    closing.reset();
  }

  void update_polling() {
    bool taps = false;
    for (const auto& [name, a] : active) taps = taps || a.source->waitable() == nullptr;
    if (taps == polling) return;
    if (taps) {
      const auto period = std::chrono::duration_cast<std::chrono::nanoseconds>(options.subscriber.tap_poll_interval);
      waits.add_timer(kPollTag, period, period).IgnoreError();
    } else {
      waits.remove(kPollTag).IgnoreError();
    }
    polling = taps;
  }

  void open_channel(const std::string& name, std::uint64_t now) {
    absl::StatusOr<std::unique_ptr<detail::ChannelSource>> source =
        detail::ChannelSource::open(name, options.subscriber);
    if (!source.ok()) {
      retry_at[name] = now + kRetryNs;
      const std::string message = std::string(source.status().message());
      if (last_error[name] != message && source.status().code() != absl::StatusCode::kNotFound) {
        log(absl::StrCat("channel '", name, "': not recorded: ", message));
      }
      last_error[name] = message;
      return;
    }
    retry_at.erase(name);
    last_error.erase(name);
    Active a{next_id++, std::move(*source)};
    writer->add_channel(a.id, name, a.source->metadata(), a.source->first_sequence());
    if (::shmring::ChannelEndpoint* e = a.source->waitable()) {
      if (absl::Status s = waits.add(*e, a.id); !s.ok()) {
        log(absl::StrCat("channel '", name, "': cannot wait on it: ", s.message()));
        return;
      }
    }
    log(absl::StrCat("recording ", std::string(to_string(a.source->kind())), " '", name, "'"));
    active.emplace(name, std::move(a));
    update_polling();
    publish_status();
  }

  void discover() {
    const std::uint64_t now = detail::wall_ns();
    for (const std::string& name : list_channels()) {
      if (active.count(name) != 0 || !matches(options.channels, name)) continue;
      auto retry = retry_at.find(name);
      if (retry != retry_at.end() && now < retry->second) continue;
      open_channel(name, now);
    }
    // Every few rounds: channels nobody writes any more are let go (their segments can go).
    if (++discover_rounds % 5 != 0) return;
    std::vector<std::string> idle;
    for (auto& [name, a] : active) {
      if (has_writer(name)) {
        a.idle_rounds = 0;
      } else if (++a.idle_rounds >= kIdleRounds) {
        idle.push_back(name);
      }
    }
    for (const std::string& name : idle) {
      bool more = true;
      while (more && failure.ok() && active.count(name) != 0) failure = drain(active.at(name), &more);
      if (active.count(name) != 0) log(absl::StrCat("channel '", name, "': no writer left; let go"));
      drop(name);
    }
  }

  void publish_status() {
    RecordStatus s;
    s.files = writer->files();
    s.waiting_for_trigger = writer->waiting_for_trigger();
    for (const auto& [name, a] : active) {
      ChannelRecordStatus c;
      c.name = name;
      c.kind = a.source->kind();
      c.open = true;
      c.messages = a.messages;
      c.bytes = a.bytes;
      c.last_sequence = a.last_sequence;
      c.lost = writer->lost(a.id);
      s.messages += c.messages;
      s.bytes += c.bytes;
      s.lost += c.lost;
      s.channels.push_back(std::move(c));
    }
    std::lock_guard lock(status_mutex);
    // Channels let go keep their totals in the status.
    for (const ChannelRecordStatus& old : snapshot.channels) {
      bool still = false;
      for (const ChannelRecordStatus& c : s.channels) still = still || c.name == old.name;
      if (!still) {
        ChannelRecordStatus gone = old;
        gone.open = false;
        s.messages += gone.messages;
        s.bytes += gone.bytes;
        s.lost += gone.lost;
        s.channels.push_back(std::move(gone));
      }
    }
    snapshot = std::move(s);
  }

  // Names of the active channels (all, or the polled taps only): a copy, since draining may
  // let a channel go.
  std::vector<std::string> names(bool taps_only) const {
    std::vector<std::string> out;
    for (const auto& [name, a] : active) {
      if (!taps_only || a.source->waitable() == nullptr) out.push_back(name);
    }
    return out;
  }

  // An endpoint in the wait set is ready.
  void on_ready(const WaitSet::Ready& r) {
    std::string name;
    for (const auto& [n, a] : active) {
      if (a.id == r.tag) name = n;
    }
    if (name.empty()) return;
    bool more = false;
    if (has(r.events, WaitEvent::kRemoved)) {
      more = true;
      while (more && failure.ok() && active.count(name) != 0) failure = drain(active.at(name), &more);
      log(absl::StrCat("channel '", name, "' was removed; looking for a new one"));
      drop(name);
      return;
    }
    if (failure.ok()) failure = drain(active.at(name), &more);  // an eviction says so and drops it
    if (has(r.events, WaitEvent::kEvicted) && active.count(name) != 0) {
      log(absl::StrCat("channel '", name, "': evicted by its publisher; opening it again"));
      drop(name);
    }
  }

  absl::Status run();
};

absl::Status Recorder::Impl::run() {
  writer.emplace(options);
  if (absl::Status s = writer->start(); !s.ok()) return s;
  auto ms = [](std::chrono::milliseconds m) { return std::chrono::duration_cast<std::chrono::nanoseconds>(m); };
  waits.add_timer(kDiscoverTag, std::chrono::nanoseconds(1), ms(options.discover_interval)).IgnoreError();
  waits.add_timer(kTickTag, ms(std::chrono::milliseconds(50)), ms(std::chrono::milliseconds(50))).IgnoreError();
  waits.add_fd(trigger_fd, kTriggerTag).IgnoreError();
  while (!stopping.load(std::memory_order_relaxed) && failure.ok()) {
    // With a backlog, look at what is ready without waiting, then go on draining it.
    const auto timeout = backlog.empty() ? std::chrono::milliseconds(500) : std::chrono::milliseconds(0);
    absl::StatusOr<std::span<const WaitSet::Ready>> ready = waits.wait(timeout);
    if (!ready.ok()) {
      failure = ready.status();
      break;
    }
    for (const WaitSet::Ready& r : *ready) {
      if (r.tag == ~0ull) continue;  // stop()
      if (r.tag == kDiscoverTag) {
        discover();
      } else if (r.tag == kTickTag) {
        if (absl::Status s = writer->tick(detail::wall_ns()); !s.ok()) failure = s;
        publish_status();
      } else if (r.tag == kTriggerTag) {
        std::uint64_t n = 0;
        if (::read(trigger_fd, &n, sizeof n) == static_cast<ssize_t>(sizeof n) && writer->waiting_for_trigger()) {
          log("triggered: writing the pre-buffer");
          if (absl::Status s = writer->trigger(detail::wall_ns()); !s.ok()) failure = s;
        }
      } else if (r.tag == kPollTag) {
        for (const std::string& name : names(/*taps=*/true)) {
          auto it = active.find(name);
          bool more = false;
          if (it != active.end() && failure.ok()) failure = drain(it->second, &more);
        }
      } else {
        on_ready(r);
      }
      if (!failure.ok()) break;
    }
    for (const std::string& name : std::vector<std::string>(backlog.begin(), backlog.end())) {
      auto it = active.find(name);
      bool more = false;
      if (it != active.end() && failure.ok()) failure = drain(it->second, &more);
    }
  }
  // Whatever is left in the channels goes into the file, then the file is closed complete.
  for (const std::string& name : names(false)) {
    bool more = true;
    for (int round = 0; more && failure.ok() && round < 64 && active.count(name) != 0; ++round) {
      failure = drain(active.at(name), &more);
    }
  }
  publish_status();
  absl::Status closed = writer->close();
  {
    std::lock_guard lock(status_mutex);
    snapshot.files = writer->files();
  }
  if (!failure.ok()) return failure;
  return closed;
}

Recorder::Recorder(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Recorder::~Recorder() {
  if (impl_ && impl_->trigger_fd >= 0) ::close(impl_->trigger_fd);
}

absl::StatusOr<std::unique_ptr<Recorder>> Recorder::create(RecordOptions options) {
  if (options.output.empty()) return absl::InvalidArgumentError("record: no output file (-o FILE)");
  if (options.flush_interval.count() <= 0 || options.discover_interval.count() <= 0 ||
      options.subscriber.tap_poll_interval.count() <= 0) {
    return absl::InvalidArgumentError("record: intervals must be positive");
  }
  if (options.split_duration.count() < 0 || options.pre_buffer.count() < 0) {
    return absl::InvalidArgumentError("record: durations must not be negative");
  }
  for (const std::string& p : options.channels) {
    if (p.empty() || p.find('/') != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat("record: '", p, "' is no channel name or pattern"));
    }
  }
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  absl::StatusOr<WaitSet> waits = WaitSet::create();
  if (!waits.ok()) return waits.status();
  impl->waits = *std::move(waits);
  impl->trigger_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (impl->trigger_fd < 0) return absl::InternalError("record: eventfd failed");
  return std::unique_ptr<Recorder>(new Recorder(std::move(impl)));
}

absl::Status Recorder::run() { return impl_->run(); }

void Recorder::stop() noexcept {
  impl_->stopping.store(true, std::memory_order_relaxed);
  impl_->waits.stop();
}

void Recorder::trigger() noexcept {
  const std::uint64_t one = 1;
  [[maybe_unused]] const ssize_t n = ::write(impl_->trigger_fd, &one, sizeof one);
}

RecordStatus Recorder::status() const {
  std::lock_guard lock(impl_->status_mutex);
  return impl_->snapshot;
}

}  // namespace shmring::record
