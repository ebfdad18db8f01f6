// Topic channels: one publisher, any number of subscribers, each subscriber sees every message
// (or learns exactly how many it lost). The ring is a BroadcastRing (variable-size records).
//
// Lossy (default): the publisher never waits. A subscriber that falls behind by more than the ring
// jumps ahead and counts what it skipped (lost()). A lossy subscriber never writes the ring: by
// default it maps the channel read-write only to register itself (counters, wake-ups) and
// mprotect()s the ring read-only in its own process; with TopicOptions::read_only it attaches the
// whole segment read-only (kernel-enforced, works with 0644-style permissions for other users), is
// not registered, and polls instead of being woken (every 200 us at most).
//
// Lossless (TopicOptions::lossless, chosen by the creator; openers must agree): subscribers own a
// cursor slot in the ring and the publisher never overwrites what the slowest live subscriber has
// not read: publish() waits (with its timeout). A subscriber whose process died is evicted by the
// publisher the next time it is held back (checked at least every dead_check_interval while
// blocked). A live subscriber that holds the publisher back for longer than evict_after (if set)
// is evicted: the publisher carries on, ChannelStats::evictions counts it, and that subscriber's
// next receive returns kEvicted.
//
// Publisher crash: a new publisher may open the topic once the old one is dead; it resumes after
// the last complete record. A record the dead publisher was writing is never delivered torn.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string_view>

#include "absl/status/statusor.h"
#include "shmring/transport/channel.h"

namespace shmring {

namespace detail {
struct TopicEndpoint;
}

struct TopicOptions {
  // Creator's settings; an opener with a non-zero value that differs gets kFailedPrecondition.
  std::uint64_t capacity = 0;     // ring data bytes, a power of two (creator default 1 MiB)
  std::uint64_t max_message = 0;  // creator default: min(64 KiB, capacity / 2 - 16)
  std::uint32_t max_peers = 0;    // publisher + subscribers (creator default 64)
  bool lossless = false;          // must match the channel's
  mode_t permissions = 0600;
  gid_t group = static_cast<gid_t>(-1);  // group of a channel this call creates (-1: the creator's)
  bool create = true;
  WaitOptions wait;
  std::chrono::milliseconds open_timeout{2000};
  // Lossless publisher: how often a blocked publisher looks for dead subscribers (the bound on how
  // long a dead subscriber can hold it back), and after how long of being held back it evicts the
  // slowest live subscriber (0: never; it then waits until its own timeout).
  std::chrono::milliseconds dead_check_interval{5};
  std::chrono::milliseconds evict_after{0};
  // Subscribers: where a new subscriber starts, and the read-only mode described above.
  bool start_at_latest = false;
  bool read_only = false;
};

class TopicPublisher {
 public:
  // kFailedPrecondition if the topic already has a live publisher (or other kind/limits).
  static absl::StatusOr<TopicPublisher> open(std::string_view name, const TopicOptions& options = {});

  TopicPublisher();
  TopicPublisher(TopicPublisher&&) noexcept;
  TopicPublisher& operator=(TopicPublisher&&) noexcept;
  ~TopicPublisher();

  // Lossy: always kOk (or kTooLarge / kCorrupt). Lossless: kWouldBlock when a subscriber holds the
  // publisher back.
  ChannelResult try_publish(std::span<const std::byte> message) noexcept;
  // Lossless: waits up to `timeout` for room (evicting as TopicOptions says). kOk, kTimedOut, ...
  ChannelResult publish(std::span<const std::byte> message, std::chrono::nanoseconds timeout) noexcept;

  std::uint64_t max_message() const noexcept;
  bool lossless() const noexcept;
  PeerStats stats() const noexcept;
  std::uint64_t evictions() const noexcept;  // live subscribers this publisher evicted
  bool is_open() const noexcept { return impl_ != nullptr; }
  void close() noexcept;

 private:
  std::unique_ptr<detail::TopicEndpoint> impl_;
};

class TopicSubscriber {
 public:
  static absl::StatusOr<TopicSubscriber> open(std::string_view name, const TopicOptions& options = {});

  TopicSubscriber();
  TopicSubscriber(TopicSubscriber&&) noexcept;
  TopicSubscriber& operator=(TopicSubscriber&&) noexcept;
  ~TopicSubscriber();

  // Copies the next message into `out` (at least max_message() bytes) and sets *bytes. kOk,
  // kWouldBlock, kTooLarge, kEvicted (lossless: this subscriber was evicted; reopen), kCorrupt.
  // A lapped lossy subscriber skips ahead (lost() grows) and goes on with the oldest message left.
  ChannelResult try_receive(std::span<std::byte> out, std::size_t* bytes) noexcept;
  ChannelResult receive(std::span<std::byte> out, std::size_t* bytes,
                        std::chrono::nanoseconds timeout) noexcept;
  // Hands up to `max` available messages to `handler`; does not wait. Returns how many.
  std::size_t poll(const std::function<void(std::span<const std::byte>)>& handler,
                   std::size_t max) noexcept;

  std::uint64_t lost() const noexcept;  // messages skipped after being lapped (exact)
  std::uint64_t received() const noexcept;
  std::uint64_t max_message() const noexcept;
  bool lossless() const noexcept;
  PeerStats stats() const noexcept;
  bool is_open() const noexcept { return impl_ != nullptr; }
  void close() noexcept;

 private:
  std::unique_ptr<detail::TopicEndpoint> impl_;
};

}  // namespace shmring
