#include "shmring/transport/wait_set.h"

#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <utility>

#include "endpoint.h"
#include "shmring/core/clock.h"
#include "shmring/core/fork_generation.h"
#include "shmring/core/detail/message.h"
#include "wait_descriptor.h"

namespace shmring {

namespace {

absl::Status errno_status(std::string_view what, int error) {
  const std::string message = detail::cat("WaitSet: ", what, ": ", std::strerror(error));
  switch (error) {
    case EBADF:
    case EINVAL:
    case EPERM: return absl::InvalidArgumentError(message);
    case EEXIST: return absl::AlreadyExistsError(message);
    case ENOENT: return absl::NotFoundError(message);
    case EMFILE:
    case ENFILE:
    case ENOMEM:
    case ENOSPC: return absl::ResourceExhaustedError(message);
    default: return absl::InternalError(message);
  }
}

timespec to_timespec(std::chrono::nanoseconds d) {
  const auto ns = std::max<std::int64_t>(0, d.count());
  return timespec{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
}

// epoll_pwait2 takes nanoseconds (Linux 5.11); older kernels get epoll_wait with milliseconds
// rounded up, so a wait is never shorter than asked.
int epoll_wait_ns(int epfd, epoll_event* events, int max, std::int64_t timeout_ns) {
  static std::atomic<bool> have_pwait2{true};  // relaxed: a hint, any thread may clear it
  if (have_pwait2.load(std::memory_order_relaxed)) {
    const timespec ts = to_timespec(std::chrono::nanoseconds(timeout_ns));
    const int n = epoll_pwait2(epfd, events, max, timeout_ns < 0 ? nullptr : &ts, nullptr);
    if (n >= 0 || errno != ENOSYS) return n;
    have_pwait2.store(false, std::memory_order_relaxed);
  }
  constexpr std::int64_t kMaxMs = 1 << 30;
  const int ms = timeout_ns < 0 ? -1
                                : static_cast<int>(std::min<std::int64_t>(
                                      timeout_ns / 1'000'000 + (timeout_ns % 1'000'000 != 0), kMaxMs));
  return epoll_wait(epfd, events, max, ms);
}

}  // namespace

absl::StatusOr<WaitSet> WaitSet::create() {
  WaitSet set;
  set.epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (set.epoll_fd_ < 0) return errno_status("epoll_create1", errno);
  set.stop_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (set.stop_fd_ < 0) return errno_status("eventfd", errno);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;  // the stop entry
  if (epoll_ctl(set.epoll_fd_, EPOLL_CTL_ADD, set.stop_fd_, &ev) != 0) {
    return errno_status("epoll_ctl", errno);
  }
  return set;
}

WaitSet::WaitSet(WaitSet&& other) noexcept
    : fork_generation_(other.fork_generation_),
      epoll_fd_(std::exchange(other.epoll_fd_, -1)),
      stop_fd_(std::exchange(other.stop_fd_, -1)),
      entries_(std::move(other.entries_)),
      ready_(std::move(other.ready_)) {}

WaitSet& WaitSet::operator=(WaitSet&& other) noexcept {
  if (this != &other) {
    close_all();
    fork_generation_ = other.fork_generation_;
    epoll_fd_ = std::exchange(other.epoll_fd_, -1);
    stop_fd_ = std::exchange(other.stop_fd_, -1);
    entries_ = std::move(other.entries_);
    ready_ = std::move(other.ready_);
  }
  return *this;
}

WaitSet::~WaitSet() { close_all(); }

void WaitSet::close_all() noexcept {
  for (const auto& e : entries_) {
    if (e->kind == Entry::Kind::kTimer && e->fd >= 0) close(e->fd);
  }
  entries_.clear();
  if (epoll_fd_ >= 0) close(epoll_fd_);
  if (stop_fd_ >= 0) close(stop_fd_);
  epoll_fd_ = -1;
  stop_fd_ = -1;
}

WaitSet::Entry* WaitSet::find(std::uint64_t tag) noexcept {
  for (const auto& e : entries_) {
    if (e->tag == tag) return e.get();
  }
  return nullptr;
}

absl::Status WaitSet::usable() const {
  if (epoll_fd_ < 0) return absl::FailedPreconditionError("WaitSet: not created (use WaitSet::create)");
  if (fork_generation() != fork_generation_) {
    return absl::FailedPreconditionError(
        "WaitSet: this set was inherited through fork() and belongs to the parent (it shares the "
        "parent's epoll instance); make a new one in the child");
  }
  return absl::OkStatus();
}

absl::Status WaitSet::add_entry(Entry entry, std::uint32_t epoll_events) {
  if (absl::Status s = usable(); !s.ok()) return s;
  if (find(entry.tag) != nullptr) {
    return absl::AlreadyExistsError(detail::cat("WaitSet: tag ", entry.tag, " is taken"));
  }
  auto owned = std::make_unique<Entry>(std::move(entry));
  epoll_event ev{};
  ev.events = epoll_events;
  ev.data.ptr = owned.get();
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, owned->fd, &ev) != 0) {
    if (errno == EEXIST) {
      return absl::AlreadyExistsError(
          detail::cat("WaitSet: descriptor ", owned->fd, " is in the set already (under another tag)"));
    }
    return errno_status("epoll_ctl", errno);
  }
  entries_.push_back(std::move(owned));
  return absl::OkStatus();
}

absl::Status WaitSet::add(ChannelEndpoint& endpoint, std::uint64_t tag) {
  if (absl::Status s = usable(); !s.ok()) return s;
  if (!endpoint.is_open()) {
    return absl::FailedPreconditionError(
        "WaitSet: the endpoint is closed (or a forked child's copy of the parent's)");
  }
  if (find(tag) != nullptr) return absl::AlreadyExistsError(detail::cat("WaitSet: tag ", tag, " is taken"));
  const int fd = endpoint.wait_fd();
  if (fd < 0) {
    if (errno == ENOTSUP) {
      return absl::FailedPreconditionError(
          "WaitSet: a read_only subscriber has no descriptor (it is not registered, so no sender "
          "can wake it); poll it with a timer entry instead");
    }
    return errno_status("wait_fd", errno);
  }
  for (const auto& entry : entries_) {
    if (entry->descriptor != nullptr && entry->descriptor == endpoint.impl_->descriptor) {
      return absl::AlreadyExistsError(
          detail::cat("WaitSet: this endpoint is in the set already (tag ", entry->tag, ")"));
    }
  }
  Entry e;
  e.tag = tag;
  e.kind = Entry::Kind::kEndpoint;
  e.fd = fd;
  e.descriptor = endpoint.impl_->descriptor;
  return add_entry(std::move(e), EPOLLIN);
}

absl::Status WaitSet::add_fd(int fd, std::uint64_t tag, std::uint32_t epoll_events) {
  if (fd < 0) return absl::InvalidArgumentError(detail::cat("WaitSet: bad descriptor ", fd));
  Entry e;
  e.tag = tag;
  e.kind = Entry::Kind::kFd;
  e.fd = fd;
  return add_entry(std::move(e), epoll_events);
}

absl::Status WaitSet::add_timer(std::uint64_t tag, std::chrono::nanoseconds first,
                                std::chrono::nanoseconds period) {
  if (absl::Status s = usable(); !s.ok()) return s;
  if (first.count() <= 0 || period.count() < 0) {
    return absl::InvalidArgumentError(detail::cat("WaitSet: timer ", tag, " needs first > 0 and period >= 0"));
  }
  if (find(tag) != nullptr) return absl::AlreadyExistsError(detail::cat("WaitSet: tag ", tag, " is taken"));
  const int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (fd < 0) return errno_status("timerfd_create", errno);
  itimerspec spec{};
  spec.it_value = to_timespec(first);
  spec.it_interval = to_timespec(period);
  if (timerfd_settime(fd, 0, &spec, nullptr) != 0) {
    const int error = errno;
    close(fd);
    return errno_status("timerfd_settime", error);
  }
  Entry e;
  e.tag = tag;
  e.kind = Entry::Kind::kTimer;
  e.fd = fd;
  absl::Status s = add_entry(std::move(e), EPOLLIN);
  if (!s.ok()) close(fd);
  return s;
}

absl::Status WaitSet::remove(std::uint64_t tag) {
  const auto it = std::find_if(entries_.begin(), entries_.end(),
                               [&](const std::unique_ptr<Entry>& e) { return e->tag == tag; });
  if (it == entries_.end()) return absl::NotFoundError(detail::cat("WaitSet: no entry with tag ", tag));
  Entry& e = **it;
  // An endpoint's descriptor stays open while this entry holds it (even after the endpoint
  // closed), so the number still names it. A forked child's copy shares the parent's epoll
  // instance: it takes nothing out of it.
  if (fork_generation() == fork_generation_) epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, e.fd, nullptr);
  if (e.kind == Entry::Kind::kTimer) close(e.fd);
  entries_.erase(it);
  return absl::OkStatus();
}

absl::StatusOr<std::span<const WaitSet::Ready>> WaitSet::wait(std::chrono::nanoseconds timeout) {
  if (absl::Status s = usable(); !s.ok()) return s;
  ready_.clear();
  const bool forever = timeout.count() < 0;
  const std::uint64_t deadline = forever ? 0 : monotonic_ns() + static_cast<std::uint64_t>(timeout.count());
  epoll_event events[64];
  for (;;) {
    bool pending = false;
    for (const auto& e : entries_) {
      if (e->kind == Entry::Kind::kEndpoint && !e->descriptor->closed() && e->descriptor->has_pending()) {
        pending = true;
        break;
      }
    }
    std::int64_t wait_ns = -1;
    if (pending) {
      wait_ns = 0;
    } else if (!forever) {
      const std::uint64_t now = monotonic_ns();
      wait_ns = now >= deadline ? 0 : static_cast<std::int64_t>(deadline - now);
    }
    const int n = epoll_wait_ns(epoll_fd_, events, 64, wait_ns);
    if (n < 0) {
      if (errno == EINTR) return std::span<const Ready>(ready_);
      return errno_status("epoll_wait", errno);
    }
    for (int i = 0; i < n; ++i) {
      auto* e = static_cast<Entry*>(events[i].data.ptr);
      if (e == nullptr) {  // stop()
        std::uint64_t count = 0;
        while (read(stop_fd_, &count, sizeof(count)) == sizeof(count)) {
        }
        ready_.push_back({~std::uint64_t{0}, WaitEvent::kStop});
        continue;
      }
      switch (e->kind) {
        case Entry::Kind::kFd:
          ready_.push_back({e->tag, WaitEvent::kReadable});
          break;
        case Entry::Kind::kTimer: {
          std::uint64_t expirations = 0;
          if (read(e->fd, &expirations, sizeof(expirations)) == sizeof(expirations)) {
            ready_.push_back({e->tag, WaitEvent::kTimer});
          }
          break;
        }
        case Entry::Kind::kEndpoint: {
          if (e->descriptor->closed()) {
            epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, e->fd, nullptr);  // never reported again
            break;
          }
          const WaitEvent ev = e->descriptor->take_events();
          if (ev != WaitEvent::kNone) ready_.push_back({e->tag, ev});
          break;
        }
      }
    }
    if (pending) {  // what try_ calls noticed (a hang-up they took out of the kernel's set)
      for (const auto& e : entries_) {
        if (e->kind != Entry::Kind::kEndpoint || e->descriptor->closed() || !e->descriptor->has_pending()) {
          continue;
        }
        const WaitEvent ev = e->descriptor->take_events();
        if (ev == WaitEvent::kNone) continue;
        auto same = std::find_if(ready_.begin(), ready_.end(), [&](const Ready& r) { return r.tag == e->tag; });
        if (same != ready_.end()) {
          same->events |= ev;
        } else {
          ready_.push_back({e->tag, ev});
        }
      }
    }
    if (!ready_.empty()) return std::span<const Ready>(ready_);
    if (!forever && monotonic_ns() >= deadline) return std::span<const Ready>(ready_);
  }
}

absl::Status WaitSet::run(const std::function<bool(const Ready&)>& handler) {
  for (;;) {
    absl::StatusOr<std::span<const Ready>> ready = wait(std::chrono::nanoseconds(-1));
    if (!ready.ok()) return ready.status();
    for (const Ready& r : *ready) {
      if (r.events == WaitEvent::kStop) return absl::OkStatus();
      if (!handler(r)) return absl::OkStatus();
    }
  }
}

void WaitSet::stop() noexcept {
  const std::uint64_t one = 1;
  if (stop_fd_ >= 0) {
    [[maybe_unused]] const ssize_t n = write(stop_fd_, &one, sizeof(one));
  }
}

}  // namespace shmring
