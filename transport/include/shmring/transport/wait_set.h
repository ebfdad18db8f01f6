// WaitSet: one thread waits for any number of channel endpoints, plain descriptors and timers.
//
//   auto set = shmring::WaitSet::create().value();
//   set.add(prices, 1);                // a TopicSubscriber
//   set.add(orders, 2);                // a QueueConsumer
//   set.add_fd(control_socket, 3);     // anything pollable
//   set.add_timer(4, 100ms, 100ms);    // periodic
//   for (;;) {
//     for (const WaitSet::Ready& r : set.wait(std::chrono::seconds(1)).value()) {
//       if (r.tag == 1) while (prices.try_receive(buf, &n) == ChannelResult::kOk) use(buf, n);
//       ...
//     }
//   }
//
// Built on the endpoints' descriptors (ChannelEndpoint::wait_fd, docs/events.md) and one epoll
// instance: waiting costs no CPU, and a sender pays nothing unless this set's endpoints are armed,
// then one datagram per endpoint per arming. Level-triggered: an endpoint stays ready until its
// try_ calls answer kWouldBlock (the drain re-arms it), so a handler that stops early is simply
// called again. Events per entry: kData / kRoom (may have work: drain with try_ calls),
// kPeerGone (a publisher, producer, subscriber or consumer it depends on closed or died),
// kEvicted (a lossless subscriber was evicted: reopen), kRemoved (the channel's name was removed),
// kReadable (plain descriptor), kTimer, kStop.
//
// Threads: a WaitSet and the endpoints in it belong to one thread, except stop(), which any
// thread (or a signal handler) may call. fork(): a child's copy of a set is the parent's (it shares
// its epoll instance): add, remove and wait refuse with kFailedPrecondition, and destroying it
// only lets the child's descriptors go; make a new set in the child. Endpoints may be moved while in the set (the entry
// follows the endpoint's state, not the handle object). An endpoint closed while in the set is
// never reported again, and remove() still drops its entry. Plain descriptors must be removed
// before they are closed (epoll's rule).
#pragma once

#include <sys/epoll.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "shmring/transport/channel.h"
#include "shmring/core/fork_generation.h"
#include "shmring/transport/lease.h"

namespace shmring {

namespace detail {
class WaitDescriptor;
}

class WaitSet {
 public:
  struct Ready {
    std::uint64_t tag = 0;              // the tag the entry was added with
    WaitEvent events = WaitEvent::kNone;  // why (a bit set)
  };

  // The epoll instance and the stop descriptor. Errors: what the system said (EMFILE, ...).
  static absl::StatusOr<WaitSet> create();

  WaitSet() = default;  // empty: create() makes a usable one
  WaitSet(WaitSet&& other) noexcept;
  WaitSet& operator=(WaitSet&& other) noexcept;
  WaitSet(const WaitSet&) = delete;
  WaitSet& operator=(const WaitSet&) = delete;
  ~WaitSet();

  // Adds an endpoint (TopicSubscriber, QueueConsumer, FrameSubscriber, TopicPublisher,
  // QueueProducer, FramePublisher) under `tag` (its wait_fd() is made if needed).
  // kAlreadyExists: the tag is taken, or the endpoint is in the set already; kFailedPrecondition:
  // the endpoint is closed (or a forked child's copy) or is a read_only subscriber; other errors
  // from the system.
  absl::Status add(ChannelEndpoint& endpoint, std::uint64_t tag);
  // Adds a plain descriptor, reported as kReadable when epoll reports any of `epoll_events`
  // (EPOLLIN by default; hang-ups and errors always count). The caller keeps owning it.
  absl::Status add_fd(int fd, std::uint64_t tag, std::uint32_t epoll_events = EPOLLIN);
  // Adds a timer (CLOCK_MONOTONIC) that expires `first` from now and then every `period` (0: once;
  // a one-shot timer's entry stays until removed). Reported as kTimer, once per wait however many
  // periods passed. kInvalidArgument for a negative or zero `first`.
  absl::Status add_timer(std::uint64_t tag, std::chrono::nanoseconds first,
                         std::chrono::nanoseconds period = std::chrono::nanoseconds(0));
  // Removes an entry. kNotFound if there is none with `tag`.
  absl::Status remove(std::uint64_t tag);
  std::size_t size() const noexcept { return entries_.size(); }

  // Waits up to `timeout` (negative: without limit) for at least one entry to be ready and
  // returns the ready ones (valid until the next call; empty when the time ran out). An EINTR
  // returns what is ready so far (possibly nothing). Events of endpoints noticed without the kernel
  // (a peer's hang-up seen by a try_ call) are returned without waiting.
  absl::StatusOr<std::span<const Ready>> wait(std::chrono::nanoseconds timeout);
  // Calls `handler` for each ready entry, waiting without limit in between, until the handler
  // returns false or stop() is called. kOk then; an error of wait() otherwise.
  absl::Status run(const std::function<bool(const Ready&)>& handler);
  // Makes a wait() in progress (or the next one) return a Ready with tag ~0 and kStop, and run()
  // return. Async-signal-safe (one write to an eventfd); any thread.
  void stop() noexcept;

 private:
  struct Entry {
    std::uint64_t tag = 0;
    enum class Kind { kEndpoint, kFd, kTimer } kind = Kind::kFd;
    int fd = -1;  // the descriptor in the epoll set (a timerfd: owned)
    std::shared_ptr<detail::WaitDescriptor> descriptor;  // kEndpoint
  };
  Entry* find(std::uint64_t tag) noexcept;
  // kFailedPrecondition when not created, or in a forked child (the set is the parent's).
  absl::Status usable() const;
  absl::Status add_entry(Entry entry, std::uint32_t epoll_events);
  void close_all() noexcept;

  std::uint64_t fork_generation_ = fork_generation();  // of the process that made it
  int epoll_fd_ = -1;
  int stop_fd_ = -1;
  std::vector<std::unique_ptr<Entry>> entries_;
  std::vector<Ready> ready_;
};

}  // namespace shmring
