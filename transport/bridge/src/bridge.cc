// The bridge loop: every export and import side steps, then all of them wait together in one
// poll() on their carriers' and endpoints' descriptors (and the stop descriptor).
#include "shmring/bridge/bridge.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <ctime>
#include <mutex>

#include "shmring/core/detail/message.h"
#include "shmring/core/clock.h"
#include "shmring/core/detail/text.h"
#include "shmring/core/stable_hash.h"
#include "export_side.h"
#include "import_side.h"
#include "side.h"

namespace shmring::bridge {

using shmring::detail::cat;

namespace {
std::atomic<bool> logging{true};
}  // namespace

void set_logging(bool on) noexcept { logging.store(on, std::memory_order_relaxed); }

void log_event(const std::string& text) {
  if (!logging.load(std::memory_order_relaxed)) return;
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  tm local;
  localtime_r(&ts.tv_sec, &local);
  char when[32];
  std::strftime(when, sizeof when, "%H:%M:%S", &local);
  // Names and addresses may come from another user or another host: one printable line.
  std::fprintf(stderr, "%s.%03ld shmring bridge: %s\n", when, ts.tv_nsec / 1'000'000,
               shmring::detail::terminal_safe(text).c_str());
}

struct Bridge::Impl {
  std::vector<std::unique_ptr<Side>> sides;
  // Held while the sides step and plan (not while the loop sleeps): status() may be called
  // from any thread.
  mutable std::mutex mutex;
  int stop_fd = -1;  // eventfd: stop() writes it, the loop polls it
  std::atomic<bool> stopping{false};

  ~Impl() {
    if (stop_fd >= 0) close(stop_fd);
  }
};

namespace {

// Stable per host: an export that restarts keeps its origin, so the import can tell a restart
// (same origin and channel incarnation: sequence goes on) from another channel.
std::uint64_t host_origin() {
  char name[256] = {};
  gethostname(name, sizeof name - 1);
  return stable_hash64(name, 0x62726964676531) | 1;  // never 0 (0 means "none")
}

}  // namespace

absl::Status check_config(const BridgeConfig& config) {
  if (config.exports.empty() && config.imports.empty()) {
    return absl::InvalidArgumentError("nothing to bridge: no export and no import");
  }
  for (const ExportSpec& e : config.exports) {
    if (absl::Status s = check_export_spec(e); !s.ok()) return s;
  }
  for (const ImportSpec& i : config.imports) {
    if (absl::Status s = check_import_spec(i); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Bridge>> Bridge::create(const BridgeConfig& config) {
  if (absl::Status s = check_config(config); !s.ok()) return s;
  auto impl = std::make_unique<Impl>();
  const std::uint64_t origin = host_origin();
  for (const ExportSpec& e : config.exports) {
    absl::StatusOr<std::unique_ptr<Side>> side = make_export_side(e, origin);
    if (!side.ok()) return side.status();
    impl->sides.push_back(*std::move(side));
  }
  for (const ImportSpec& i : config.imports) {
    absl::StatusOr<std::unique_ptr<Side>> side = make_import_side(i);
    if (!side.ok()) return side.status();
    impl->sides.push_back(*std::move(side));
  }
  impl->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (impl->stop_fd < 0) return absl::ResourceExhaustedError("eventfd failed");
  return std::unique_ptr<Bridge>(new Bridge(std::move(impl)));
}

Bridge::Bridge(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Bridge::~Bridge() = default;

void Bridge::run_once(std::chrono::milliseconds max_wait) {
  WaitPlan plan;
  std::uint64_t now = 0;
  {
    std::lock_guard lock(impl_->mutex);
    now = monotonic_ns();
    for (auto& side : impl_->sides) side->step(now);
    now = monotonic_ns();
    plan.add(impl_->stop_fd);
    for (auto& side : impl_->sides) side->plan_wait(now, &plan);
  }
  int timeout_ms = static_cast<int>(max_wait.count());
  if (plan.again) {
    timeout_ms = 0;
  } else if (plan.deadline_ns != 0) {
    const std::uint64_t until = plan.deadline_ns > now ? plan.deadline_ns - now : 0;
    timeout_ms = std::min<int>(timeout_ms, static_cast<int>((until + 999'999) / 1'000'000));
  }
  if (impl_->stopping.load(std::memory_order_relaxed)) return;
  poll(plan.fds.data(), plan.fds.size(), timeout_ms);
}

absl::Status Bridge::run(const std::function<void(const BridgeStatus&)>& on_status,
                         std::chrono::milliseconds status_interval) {
  std::uint64_t next_status = monotonic_ns() + static_cast<std::uint64_t>(status_interval.count()) * 1'000'000;
  while (!impl_->stopping.load(std::memory_order_relaxed)) {
    run_once(std::chrono::milliseconds(50));
    if (on_status && monotonic_ns() >= next_status) {
      on_status(status());
      next_status = monotonic_ns() + static_cast<std::uint64_t>(status_interval.count()) * 1'000'000;
    }
  }
  if (on_status) on_status(status());
  return absl::OkStatus();
}

void Bridge::stop() noexcept {
  // Relaxed: the eventfd write wakes the loop, which then reads the flag (any order works: the
  // loop checks the flag before and after every poll).
  impl_->stopping.store(true, std::memory_order_relaxed);
  const std::uint64_t one = 1;
  [[maybe_unused]] ssize_t n = write(impl_->stop_fd, &one, sizeof one);
}

BridgeStatus Bridge::status() const {
  std::lock_guard lock(impl_->mutex);
  BridgeStatus s;
  for (const auto& side : impl_->sides) side->append_status(&s);
  return s;
}


std::string status_json(const BridgeStatus& s) {
  std::string out = cat("{\"peers\":", s.peers, ",\"malformed\":", s.malformed,
                                 ",\"unknown_channel\":", s.unknown_channel, ",\"refused\":", s.refused, ",\"channels\":[");
  bool first = true;
  for (const ChannelStatus& c : s.channels) {
    out += cat(first ? "" : ",", "{\"direction\":\"", c.direction, "\",\"channel\":", shmring::detail::json_quote(c.channel),
                    ",\"remote\":", shmring::detail::json_quote(c.remote), ",\"endpoint\":", shmring::detail::json_quote(c.endpoint), ",\"kind\":\"",
                    to_string(c.kind), "\",\"open\":", c.open ? "true" : "false",
                    ",\"lossless\":", c.lossless ? "true" : "false", ",\"peers\":", c.peers,
                    ",\"messages\":", c.messages, ",\"bytes\":", c.bytes, ",\"lost\":", c.lost,
                    ",\"duplicates\":", c.duplicates, ",\"dropped\":", c.dropped,
                    ",\"redelivered\":", c.redelivered, ",\"rejected\":", c.rejected,
                    ",\"resets\":", c.resets, ",\"held_back_ms\":", c.held_back_ns / 1'000'000,
               ",\"evictions\":", c.evictions, ",\"link\":", shmring::detail::json_quote(c.link),
               ",\"link_changes\":", c.link_changes, ",\"link_ms\":", c.link_ms, "}");
    first = false;
  }
  out += cat("]}");
  return out;
}

}  // namespace shmring::bridge
