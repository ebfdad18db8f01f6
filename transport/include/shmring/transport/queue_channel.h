// Queue channels: several producers, several competing consumers, each item delivered to exactly one
// consumer, producers wait (with a timeout) when the queue is full. The ring is an MpmcQueue<> with
// fixed-size slots (max_message bytes each).
//
// Delivery and crash semantics (docs/transport.md states them in full):
//  * Every item a producer committed (send returned kOk, or publish returned kOk) is delivered to
//    exactly one consumer, unless that consumer dies before releasing it: see below.
//  * A producer killed between claiming a slot and committing it (inside send(), or holding a loan)
//    leaves a slot consumers would wait on forever. Once its death is known (pid + start time, on
//    the slow path under the segment lock) the slot is skipped and counted
//    (ChannelStats::claims_skipped); that one message is lost, nothing else. A producer that is only
//    slow is never skipped (liveness comes from the kernel, not from a timeout).
//  * A consumer killed while it holds an item (inside receive(), or holding a QueueView) does not
//    lose it: another consumer adopts the slot and receives the item with redelivered() == true and
//    the same sequence() the dead consumer saw (ChannelStats::items_redelivered). For receive()
//    (copying) the dead consumer's call never returned, so the item is delivered exactly once; for a
//    view the dead consumer may have acted on it first: at-least-once, deduplicate by sequence().
//  * Order: FIFO per producer, except that a redelivered item comes when it is adopted.
//
// Endpoints are used by one thread at a time; any number of endpoints may exist in one process.
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
struct QueueEndpoint;
}

struct QueueOptions {
  // Used by the creator; an opener with a non-zero value that differs from the channel's gets
  // kFailedPrecondition.
  std::uint64_t capacity = 0;     // slots, a power of two (creator default 1024)
  std::uint64_t max_message = 0;  // bytes per item (creator default 256)
  std::uint32_t max_peers = 0;    // endpoints at once (creator default 64)
  mode_t permissions = 0600;      // mode bits of a channel this call creates
  gid_t group = static_cast<gid_t>(-1);  // group of a channel this call creates (-1: the creator's)
  bool create = true;             // false: only open an existing channel (kNotFound otherwise)
  WaitOptions wait;
  std::chrono::milliseconds open_timeout{2000};  // waiting for a creator to finish initialising
};

class QueueProducer;
class QueueConsumer;

// A slot lent to a producer (zero-copy send): fill buffer(), then QueueProducer::publish().
// Destroying an unpublished loan abandons it (consumers pass the slot; not counted as lost).
class QueueLoan {
 public:
  QueueLoan() = default;
  QueueLoan(QueueLoan&& other) noexcept;
  QueueLoan& operator=(QueueLoan&& other) noexcept;
  QueueLoan(const QueueLoan&) = delete;
  QueueLoan& operator=(const QueueLoan&) = delete;
  ~QueueLoan();

  ChannelResult result() const noexcept { return result_; }
  bool ok() const noexcept { return result_ == ChannelResult::kOk; }
  std::span<std::byte> buffer() const noexcept { return buffer_; }  // max_message bytes

 private:
  friend class QueueProducer;
  QueueProducer* owner_ = nullptr;
  ChannelResult result_ = ChannelResult::kClosed;
  std::uint64_t ticket_ = 0;
  std::span<std::byte> buffer_;
};

// An item lent to a consumer (zero-copy receive): valid until release() (or destruction).
class QueueView {
 public:
  QueueView() = default;
  QueueView(QueueView&& other) noexcept;
  QueueView& operator=(QueueView&& other) noexcept;
  QueueView(const QueueView&) = delete;
  QueueView& operator=(const QueueView&) = delete;
  ~QueueView();

  ChannelResult result() const noexcept { return result_; }
  bool ok() const noexcept { return result_ == ChannelResult::kOk; }
  std::span<const std::byte> data() const noexcept { return data_; }
  // The item's ticket in the queue: unique per committed item, kept on redelivery.
  std::uint64_t sequence() const noexcept { return ticket_; }
  // True if a consumer that died holding this item received it first.
  bool redelivered() const noexcept { return redelivered_; }
  // Gives the slot back. kOk, or kCorrupt if the slot was not in the state it lent (only a peer that
  // breaks the protocol can cause that; the data read may then be wrong).
  ChannelResult release() noexcept;

 private:
  friend class QueueConsumer;
  QueueConsumer* owner_ = nullptr;
  ChannelResult result_ = ChannelResult::kClosed;
  std::uint64_t ticket_ = 0;
  bool redelivered_ = false;
  std::span<const std::byte> data_;
};

class QueueProducer {
 public:
  // Opens (or creates, see QueueOptions::create) the queue channel `name` as a producer.
  // Errors: kInvalidArgument (bad name or options), kFailedPrecondition (the channel exists with
  // another kind, version or limits), kResourceExhausted (all peer slots taken), kDeadlineExceeded
  // (its creator did not finish in open_timeout), kNotFound, kPermissionDenied, kDataLoss (corrupt).
  static absl::StatusOr<QueueProducer> open(std::string_view name, const QueueOptions& options = {});

  QueueProducer();
  QueueProducer(QueueProducer&&) noexcept;
  QueueProducer& operator=(QueueProducer&&) noexcept;
  ~QueueProducer();

  // Copies `message` in. kOk, kWouldBlock (full), kTooLarge, kCorrupt.
  ChannelResult try_send(std::span<const std::byte> message) noexcept;
  // As try_send, waiting up to `timeout` for room. kOk, kTimedOut, kTooLarge, kCorrupt.
  ChannelResult send(std::span<const std::byte> message, std::chrono::nanoseconds timeout) noexcept;

  // Zero-copy: lends the next slot (result kOk) or says why not (kWouldBlock / kTimedOut / ...).
  // One loan at a time per producer.
  QueueLoan try_loan() noexcept;
  QueueLoan loan(std::chrono::nanoseconds timeout) noexcept;
  // Publishes `bytes` (<= max_message) of the loan. kOk, kTooLarge (loan kept), or kCorrupt (the
  // slot was skipped by a recovery: only when this producer was wrongly declared dead).
  ChannelResult publish(QueueLoan& loan, std::size_t bytes) noexcept;
  // Gives a loan up (consumers pass the slot).
  void abandon(QueueLoan& loan) noexcept;

  std::uint64_t max_message() const noexcept;
  std::uint64_t capacity() const noexcept;
  std::uint64_t size_approx() const noexcept;
  PeerStats stats() const noexcept;  // this endpoint's counters
  bool is_open() const noexcept { return impl_ != nullptr; }
  // Unregisters and detaches (also done by the destructor).
  void close() noexcept;

 private:
  QueueLoan make_loan(bool blocking, std::chrono::nanoseconds timeout) noexcept;
  std::unique_ptr<detail::QueueEndpoint> impl_;
  std::uint64_t sent_ = 0;
  std::uint64_t blocked_ns_ = 0;
  bool loan_out_ = false;
};

class QueueConsumer {
 public:
  static absl::StatusOr<QueueConsumer> open(std::string_view name, const QueueOptions& options = {});

  QueueConsumer();
  QueueConsumer(QueueConsumer&&) noexcept;
  QueueConsumer& operator=(QueueConsumer&&) noexcept;
  ~QueueConsumer();

  // Copies the next item into `out` (at least max_message bytes, else kTooLarge) and sets *bytes.
  // kOk, kWouldBlock (empty), kTooLarge, kCorrupt.
  ChannelResult try_receive(std::span<std::byte> out, std::size_t* bytes) noexcept;
  // As try_receive, waiting up to `timeout`. kOk, kTimedOut, kTooLarge, kCorrupt.
  ChannelResult receive(std::span<std::byte> out, std::size_t* bytes,
                        std::chrono::nanoseconds timeout) noexcept;

  // Zero-copy: the next item in place, until the view is released. One view at a time.
  QueueView try_receive_view() noexcept;
  QueueView receive_view(std::chrono::nanoseconds timeout) noexcept;

  // Hands up to `max` available items to `handler` one by one (each released after the handler
  // returns); does not wait. Returns how many were handled.
  std::size_t poll(const std::function<void(std::span<const std::byte>)>& handler,
                   std::size_t max) noexcept;

  // Runs the dead-peer recovery now (it also runs by itself when the queue looks empty or stalled):
  // reclaims dead peers' slots, skips dead producers' uncommitted claims, and returns in `view`
  // an item a dead consumer held, if any (then true).
  bool recover(QueueView* view) noexcept;

  std::uint64_t max_message() const noexcept;
  std::uint64_t capacity() const noexcept;
  std::uint64_t size_approx() const noexcept;
  PeerStats stats() const noexcept;
  bool is_open() const noexcept { return impl_ != nullptr; }
  void close() noexcept;

 private:
  friend class QueueView;
  QueueView take(bool blocking, std::chrono::nanoseconds timeout) noexcept;
  ChannelResult finish(QueueView& view) noexcept;
  std::unique_ptr<detail::QueueEndpoint> impl_;
  std::uint64_t received_ = 0;
  std::uint64_t blocked_ns_ = 0;
  bool view_out_ = false;
};

}  // namespace shmring
