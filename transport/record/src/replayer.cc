#include "shmring/record/replayer.h"

#include <fnmatch.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <variant>

#include "absl/strings/str_cat.h"
#include "loss.h"
#include "shmring/core/clock.h"
#include "shmring/record/mcap.h"
#include "shmring/transport/frame.h"
#include "shmring/transport/queue.h"
#include "shmring/transport/topic.h"

namespace shmring::record {

namespace {

using namespace std::chrono_literals;

// A blocked send is retried in slices this long, so stop() is seen.
constexpr auto kSendSlice = 100ms;
// The replayer sleeps until this long before a message is due, then spins.
constexpr std::uint64_t kSpinNs = 200'000;

std::uint64_t number(const StringMap& m, const char* key) {
  auto it = m.find(key);
  return it == m.end() ? 0 : std::strtoull(it->second.c_str(), nullptr, 10);
}

std::string kind_of(const Channel& c) {
  auto it = c.metadata.find(detail::kKindKey);
  return it == c.metadata.end() ? "topic" : it->second;  // another writer's file: topics
}

// One channel being published into.
struct Target {
  std::string name;
  std::variant<TopicPublisher, FramePublisher, QueueProducer> endpoint;
  ReplayChannelStats stats;
};

absl::StatusOr<Target> open_target(const std::string& name, const Channel& recorded, bool create) {
  const std::string kind = kind_of(recorded);
  const std::uint64_t capacity = create ? number(recorded.metadata, detail::kCapacityKey) : 0;
  const std::uint64_t max_message = create ? number(recorded.metadata, detail::kMaxMessageKey) : 0;
  absl::StatusOr<ChannelStats> live = read_stats(name);
  if (!live.ok() && live.status().code() != absl::StatusCode::kNotFound) return live.status();
  if (!live.ok() && !create) {
    return absl::NotFoundError(absl::StrCat("channel '", name, "' does not exist (--create makes it)"));
  }
  if (live.ok() && std::string(to_string(live->kind)) != kind) {
    return absl::FailedPreconditionError(absl::StrCat("channel '", name, "' is a ",
                                                      std::string(to_string(live->kind)), ", the recording has a ", kind));
  }
  Target t;
  t.name = name;
  t.stats.name = name;
  if (kind == "frames") {
    FrameOptions o;
    o.create = create;
    if (!live.ok()) {
      o.capacity = capacity;
      o.max_message = max_message;
    }
    absl::StatusOr<FramePublisher> p = FramePublisher::open(name, o);
    if (!p.ok()) return p.status();
    t.endpoint = std::move(*p);
  } else if (kind == "queue") {
    QueueOptions o;
    o.create = create;
    if (!live.ok()) {
      o.capacity = capacity;
      o.max_message = max_message;
    }
    absl::StatusOr<QueueProducer> p = QueueProducer::open(name, o);
    if (!p.ok()) return p.status();
    t.endpoint = std::move(*p);
  } else {
    TopicOptions o;
    o.create = create;
    if (live.ok()) {
      o.lossless = live->lossless;  // the live channel's mode (its creator's choice)
    } else {
      auto lossless = recorded.metadata.find(detail::kLosslessKey);
      o.lossless = lossless != recorded.metadata.end() && lossless->second == "true";
      o.capacity = capacity;
      o.max_message = max_message;
    }
    absl::StatusOr<TopicPublisher> p = TopicPublisher::open(name, o);
    if (!p.ok()) return p.status();
    t.endpoint = std::move(*p);
  }
  return t;
}

std::int64_t percentile(std::vector<std::int64_t>& v, double q) {
  if (v.empty()) return 0;
  const std::size_t k = std::min(v.size() - 1, static_cast<std::size_t>(q * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

}  // namespace

struct Replayer::Impl {
  ReplayOptions options;
  std::vector<McapReader> readers;
  std::vector<Target> targets;
  // Per file: MCAP channel id -> target index (absent: not replayed).
  std::vector<std::map<std::uint16_t, std::size_t>> routes;
  std::uint64_t first_time = 0;  // the recording's first log time
  std::atomic<bool> stopping{false};
  mutable std::mutex mutex;
  ReplayStats stats;
  std::vector<std::int64_t> lateness;

  bool selected(const std::string& name) const {
    if (options.channels.empty()) return true;
    for (const std::string& p : options.channels) {
      if (fnmatch(p.c_str(), name.c_str(), 0) == 0) return true;
    }
    return false;
  }

  // Sends one message, waiting (in slices, watching stop()) where the channel holds back.
  bool send(Target& t, std::span<const std::byte> data) {
    for (;;) {
      if (stopping.load(std::memory_order_relaxed)) return false;
      ChannelResult r = ChannelResult::kOk;
      if (auto* topic = std::get_if<TopicPublisher>(&t.endpoint)) {
        r = topic->send(data, kSendSlice);
      } else if (auto* frames = std::get_if<FramePublisher>(&t.endpoint)) {
        r = frames->send(data, kSendSlice);
      } else {
        r = std::get<QueueProducer>(t.endpoint).send(data, kSendSlice);
      }
      if (r == ChannelResult::kOk) {
        ++t.stats.messages;
        t.stats.bytes += data.size();
        return true;
      }
      if (r == ChannelResult::kTimedOut || r == ChannelResult::kWouldBlock) continue;
      ++t.stats.dropped;  // too large for the channel, or the channel broke
      if (options.log) {
        options.log(absl::StrCat("channel '", t.name, "': message not sent (", std::string(to_string(r)), ")"));
      }
      return true;
    }
  }

  // Waits until `due` (CLOCK_MONOTONIC ns): sleeps, then spins the last stretch.
  bool wait_until(std::uint64_t due) {
    for (;;) {
      if (stopping.load(std::memory_order_relaxed)) return false;
      const std::uint64_t now = monotonic_ns();
      if (now >= due) return true;
      if (due - now > kSpinNs) {
        const std::uint64_t wake = std::min(due - kSpinNs, now + 50'000'000);  // stop() within 50 ms
        const timespec ts{static_cast<time_t>(wake / 1'000'000'000), static_cast<long>(wake % 1'000'000'000)};
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr);
      }
    }
  }

  absl::Status play_once(std::uint64_t* played) {
    const std::uint64_t from = first_time + static_cast<std::uint64_t>(options.start.value_or(0ns).count());
    const std::uint64_t to =
        options.end ? first_time + static_cast<std::uint64_t>(options.end->count()) : UINT64_MAX;
    const std::uint64_t base = monotonic_ns();
    for (std::size_t f = 0; f < readers.size(); ++f) {
      ReadOptions ro;
      ro.start_time = from;
      ro.end_time = to;
      ro.order = ReadOptions::Order::kLogTime;
      for (const auto& [id, target] : routes[f]) ro.channels.push_back(id);
      if (ro.channels.empty()) continue;
      absl::Status s = readers[f].read_messages(ro, [&](const Message& m, const Channel&) {
        auto route = routes[f].find(m.channel_id);
        if (route == routes[f].end()) return true;
        if (!options.max_speed) {
          const double offset = static_cast<double>(m.log_time - from) / options.rate;
          const std::uint64_t due = base + static_cast<std::uint64_t>(offset);
          if (!wait_until(due)) return false;
          lateness.push_back(static_cast<std::int64_t>(monotonic_ns() - due));
        }
        if (!send(targets[route->second], m.data)) return false;
        ++*played;
        return true;
      });
      if (!s.ok()) return s;
      if (stopping.load(std::memory_order_relaxed)) break;
    }
    return absl::OkStatus();
  }
};

Replayer::Replayer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Replayer::~Replayer() = default;

absl::StatusOr<std::unique_ptr<Replayer>> Replayer::create(ReplayOptions options) {
  if (options.files.empty()) return absl::InvalidArgumentError("replay: no file");
  if (!options.max_speed && !(options.rate > 0)) return absl::InvalidArgumentError("replay: --rate must be > 0");
  if (options.start && options.end && *options.end <= *options.start) {
    return absl::InvalidArgumentError("replay: --end must be after --start");
  }
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  std::map<std::string, std::size_t> by_name;
  bool any_time = false;
  for (const std::string& path : impl->options.files) {
    absl::StatusOr<McapReader> reader = McapReader::open(path);
    if (!reader.ok()) return reader.status();
    absl::StatusOr<const Summary*> summary = reader->summary();
    if (!summary.ok()) return summary.status();
    std::map<std::uint16_t, std::size_t> route;
    for (const auto& [id, channel] : (*summary)->channels) {
      if (!impl->selected(channel.topic)) continue;
      auto mapped = impl->options.map.find(channel.topic);
      const std::string name = mapped != impl->options.map.end() ? mapped->second : channel.topic;
      auto known = by_name.find(name);
      if (known == by_name.end()) {
        absl::StatusOr<Target> t = open_target(name, channel, impl->options.create);
        if (!t.ok()) return t.status();
        known = by_name.emplace(name, impl->targets.size()).first;
        impl->targets.push_back(*std::move(t));
      }
      route[id] = known->second;
    }
    const std::optional<Statistics>& stats = (*summary)->statistics;
    if (stats && stats->message_count > 0 && (!any_time || stats->message_start_time < impl->first_time)) {
      impl->first_time = stats->message_start_time;
      any_time = true;
    }
    impl->readers.push_back(*std::move(reader));
    impl->routes.push_back(std::move(route));
  }
  return std::unique_ptr<Replayer>(new Replayer(std::move(impl)));
}

absl::Status Replayer::run() {
  Impl& r = *impl_;
  const std::uint64_t start = monotonic_ns();
  absl::Status s;
  std::uint64_t loops = 0;
  for (;;) {
    std::uint64_t played = 0;
    s = r.play_once(&played);
    if (!s.ok() || r.stopping.load(std::memory_order_relaxed)) break;
    ++loops;
    if (!r.options.loop || played == 0) break;
  }
  std::lock_guard lock(r.mutex);
  r.stats.loops = loops;
  r.stats.seconds = static_cast<double>(monotonic_ns() - start) / 1e9;
  r.stats.timing_p50_ns = percentile(r.lateness, 0.50);
  r.stats.timing_p99_ns = percentile(r.lateness, 0.99);
  r.stats.timing_max_ns = r.lateness.empty() ? 0 : *std::max_element(r.lateness.begin(), r.lateness.end());
  r.stats.channels.clear();
  r.stats.messages = r.stats.bytes = 0;
  for (const Target& t : r.targets) {
    r.stats.channels.push_back(t.stats);
    r.stats.messages += t.stats.messages;
    r.stats.bytes += t.stats.bytes;
  }
  if (!s.ok()) return s;
  if (r.stopping.load(std::memory_order_relaxed)) return absl::CancelledError("replay: stopped");
  return absl::OkStatus();
}

void Replayer::stop() noexcept { impl_->stopping.store(true, std::memory_order_relaxed); }

ReplayStats Replayer::stats() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->stats;
}

}  // namespace shmring::record
