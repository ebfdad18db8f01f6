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
// Blocking, errors and memory ordering follow the conventions in channel.h; in particular a
// consumer that receives an item (copy or view) sees every byte its producer wrote before send()
// or publish() returned kOk (release CAS of the slot's sequence / acquire load by the consumer).
// A redelivered item gives the same guarantee (the adopting consumer acquires the same sequence).
// The dead-peer recovery runs under the segment lock, which the data path only ever try-locks,
// and only on evidence: try_ calls and poll() look (every 64 empty polls, shared-memory reads only)
// for a head ticket claimed and not committed for 2 ms or a claim record unchanged for 20 ms;
// waiting calls run it once they have waited 1 ms (stall) or 20 ms, then at that rate. An empty
// queue alone never triggers it, so the data path makes no system call in steady state.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "shmring/transport/channel.h"
#include "shmring/transport/lease.h"

namespace shmring {

struct QueueOptions {
  // Used by the creator; an opener with a non-zero value that differs from the channel's gets
  // kFailedPrecondition.
  std::uint64_t capacity = 0;     // slots, a power of two (creator default 1024)
  std::uint64_t max_message = 0;  // bytes per item (creator default 256)
  std::uint32_t max_peers = 0;    // endpoints at once (creator default 64)
  mode_t permissions = 0600;      // mode bits of a channel this call creates (and the loosest it opens)
  // Trust (docs/security.md): a channel this endpoint opens (rather than creates) must be owned by
  // the caller's effective uid or one of these uids, and its mode must not grant more than
  // `permissions`; anything else is refused with kPermissionDenied (the message names the owner
  // and the mode), so a look-alike another local user made first is never used.
  std::vector<uid_t> trusted_owners;
  gid_t group = static_cast<gid_t>(-1);  // group of a channel this call creates (-1: the creator's)
  bool create = true;             // false: only open an existing channel (kNotFound otherwise)
  WaitOptions wait;
  std::chrono::milliseconds open_timeout{2000};  // waiting for a creator to finish initialising
};

class QueueProducer;
class QueueConsumer;

// A slot lent to a producer (zero-copy send): fill buffer(), then QueueProducer::publish().
// Destroying an unpublished loan abandons it (consumers pass the slot; not counted as lost).
// Used by the producer's thread only. The loan belongs to the producer's channel endpoint, not to
// the QueueProducer object: moving the producer keeps the loan usable; closing it gives the slot
// up and makes the loan inert (kClosed, empty buffer).
class QueueLoan : public detail::Lease {
 public:
  QueueLoan() = default;
  // result(), ok(): from detail::Lease (kOk, or why there is no loan).
  std::span<std::byte> buffer() const noexcept { return bytes_; }  // max_message bytes
};

// An item lent to a consumer (zero-copy receive): valid until release() (or destruction).
// Used by the consumer's thread only. Like a loan, it belongs to the consumer's endpoint: moving
// the consumer keeps it; closing the consumer hands the item to another consumer (see
// QueueConsumer::close) and makes the view inert (its bytes must not be read afterwards).
class QueueView : public detail::Lease {
 public:
  QueueView() = default;
  // result(), ok(): from detail::Lease (kOk, or why there is no view).
  std::span<const std::byte> data() const noexcept { return bytes_; }
  // The item's ticket in the queue: unique per committed item, kept on redelivery.
  std::uint64_t sequence() const noexcept { return number_; }
  // True if a consumer that died holding this item received it first.
  bool redelivered() const noexcept { return redelivered_; }
  // Gives the slot back (release: what was read is done before a producer reuses the slot) and
  // wakes parked producers. kOk (also for an empty or already released view); kClosed if the
  // consumer was closed meanwhile (the item then went to another consumer); or kCorrupt if
  // the slot was not in the state it lent (a recovery gave the item to another consumer because
  // this one was taken for dead, or a peer broke the protocol): the data read may then be wrong.
  // Never waits.
  ChannelResult release() noexcept { return settle(); }
};

class QueueProducer : public ChannelEndpoint {
 public:
  // Opens (or creates, see QueueOptions::create) the queue channel `name` as a producer.
  // Errors: kInvalidArgument (bad name or options), kFailedPrecondition (the channel exists with
  // another kind, version or limits), kResourceExhausted (all peer slots taken), kDeadlineExceeded
  // (its creator did not finish in open_timeout), kNotFound, kPermissionDenied, kDataLoss
  // (corrupt); kResourceExhausted also when /dev/shm has no room; kAborted when the segment lock
  // cannot be had within open_timeout (or was removed). Blocks: see channel.h (segment lock,
  // creator wait). May be called from any thread.
  static absl::StatusOr<QueueProducer> open(std::string_view name, const QueueOptions& options = {});

  QueueProducer() = default;

  // Copies `message` in. kOk, kWouldBlock (full), kTooLarge, kCorrupt, kClosed. Never waits.
  // If a recovery skipped this producer's claim (it was wrongly taken for dead) it claims again.
  ChannelResult try_send(std::span<const std::byte> message) noexcept;
  // As try_send, waiting up to `timeout` for room (parks on the channel's space_wake word).
  // kOk, kTimedOut, kTooLarge, kCorrupt, kClosed.
  ChannelResult send(std::span<const std::byte> message, std::chrono::nanoseconds timeout) noexcept;

  // Zero-copy: lends the next slot (result kOk) or says why not: kWouldBlock (try_loan: full;
  // also while another loan of this producer is out), kTimedOut (loan), kCorrupt, kClosed. One
  // loan at a time per producer. loan() waits like send(). While a loan is out, consumers behind its ticket wait: hold
  // it briefly. Nothing of the loan is visible to consumers before publish().
  QueueLoan try_loan() noexcept;
  QueueLoan loan(std::chrono::nanoseconds timeout) noexcept;
  // Publishes `bytes` (<= max_message) of the loan. kOk, kTooLarge (loan kept), kClosed (not this
  // producer's live loan), or kCorrupt (the slot was skipped by a recovery: only when this producer
  // was wrongly declared dead; not delivered). Never waits; wakes parked consumers (one futex
  // system call only if some are parked). Release: the buffer's bytes are visible to the consumer.
  ChannelResult publish(QueueLoan& loan, std::size_t bytes) noexcept;
  // Gives a loan up (consumers pass the slot). No-op for a loan that is not this producer's.
  void abandon(QueueLoan& loan) noexcept;

  // 0 when closed. size_approx() is racy: slots claimed by producers minus slots claimed by
  // consumers (claims not yet committed included).
  std::uint64_t max_message() const noexcept;
  std::uint64_t capacity() const noexcept;
  std::uint64_t size_approx() const noexcept;
  // stats(): from ChannelEndpoint (this endpoint's counters; empty when closed).
  // is_open(), close(): from ChannelEndpoint. close() (also the destructor and
  // move-assignment) gives up an outstanding loan, then unregisters and detaches; it waits up to
  // 2 s for the segment lock (see channel.h). Idempotent.

 private:
  using ChannelEndpoint::ChannelEndpoint;
  QueueLoan make_loan(bool blocking, std::chrono::nanoseconds timeout) noexcept;
};

class QueueConsumer : public ChannelEndpoint {
 public:
  // As QueueProducer::open, registering a consumer.
  static absl::StatusOr<QueueConsumer> open(std::string_view name, const QueueOptions& options = {});

  QueueConsumer() = default;

  // Copies the next item into `out` (at least max_message bytes, else kTooLarge) and sets *bytes.
  // kOk, kWouldBlock (empty), kTooLarge, kCorrupt, kClosed. Never waits. May return an item
  // adopted from a dead consumer (the copy does not say so; use a view to learn redelivered()).
  // kWouldBlock also while the oldest claimed item is not committed yet, even if later ones are.
  ChannelResult try_receive(std::span<std::byte> out, std::size_t* bytes) noexcept;
  // As try_receive, waiting up to `timeout` (parks on data_wake). kOk, kTimedOut, kTooLarge,
  // kCorrupt, kClosed.
  ChannelResult receive(std::span<std::byte> out, std::size_t* bytes,
                        std::chrono::nanoseconds timeout) noexcept;

  // Zero-copy: the next item in place, until the view is released. One view at a time: while one
  // is out, receive calls return kWouldBlock. Results as try_receive / receive (no kTooLarge). While a view is held, the
  // slot stays taken: producers a lap behind wait for it.
  QueueView try_receive_view() noexcept;
  QueueView receive_view(std::chrono::nanoseconds timeout) noexcept;

  // Hands up to `max` available items to `handler` one by one (each released after the handler
  // returns); does not wait. Returns how many were handled; stops at the first non-kOk result. The
  // span is valid only during the call; `handler` must not call back into this consumer.
  std::size_t poll(const std::function<void(std::span<const std::byte>)>& handler,
                   std::size_t max) noexcept;

  // Runs the dead-peer recovery now (it also runs by itself when the queue looks empty or stalled):
  // reclaims dead peers' slots, skips dead producers' uncommitted claims, and returns in `view`
  // an item a dead consumer held, if any (then true). False if closed, if a view is already out,
  // if nothing was adopted, or if the segment lock is busy right now (it never waits for it).
  // Reads /proc to judge liveness.
  bool recover(QueueView* view) noexcept;

  std::uint64_t max_message() const noexcept;
  std::uint64_t capacity() const noexcept;
  std::uint64_t size_approx() const noexcept;
  // is_open(), close(): from ChannelEndpoint. close() (also the destructor and
  // move-assignment) unregisters and detaches. With a view still out, the item is handed to the
  // recovery as if this consumer had died: another consumer receives it redelivered. The view
  // becomes inert (release() says kClosed). Waits up to 2 s for the lock.

 private:
  using ChannelEndpoint::ChannelEndpoint;
  QueueView take(bool blocking, std::chrono::nanoseconds timeout) noexcept;
};

// Where a QueueTap starts reading.
enum class QueueTapStart : std::uint8_t {
  kWaiting,  // the items consumers have not taken yet, then every later one (default)
  kNext,     // only items claimed by producers after open
};

struct QueueTapOptions {
  QueueTapStart start = QueueTapStart::kWaiting;
  std::chrono::milliseconds open_timeout{2000};  // waiting for a creator to finish initialising
};

// A tap on a queue: reads the items producers commit, in ticket order, without consuming them
// (a recorder's view of a pipeline: `shmring record`). It maps the channel read-only, takes no
// lock and no peer slot, and writes nothing: consumers receive exactly what they would without
// it, producers never wait for it, and a tap that dies leaves nothing behind. It never holds a
// slot either, so it reads an item while it is still in the ring: until producers have claimed
// `capacity` more tickets after it, whether or not a consumer took it meanwhile. A tap that falls
// further behind than that is lapped: it jumps ahead (a quarter of the ring behind the producers)
// and counts the tickets it passed unread in missed(), exactly.
// A ticket whose claim a producer gave up (an abandoned loan, a dead producer's claim skipped by
// the recovery) is no item: the tap passes it uncounted, as consumers do (its slot says so even
// after consumers passed it); while lapped, such tickets count in missed() with the items.
// Waiting: it cannot register for wake-ups, so read() polls (every 200 us at most); there is no
// wait_fd (-1, ENOTSUP). Threads, closing: the conventions in channel.h. Memory ordering: an item
// it returns happens-after the producer's commit (acquire of the slot's sequence, or of the
// consumer's release that followed it), and it is validated after the copy: a producer can only
// overwrite a slot after claiming the ticket a lap later, so the copy is good if the enqueue
// position has not passed that ticket when the copy is done.
class QueueTap : public ChannelEndpoint {
 public:
  // Attaches to an existing queue channel read-only. kNotFound if there is none; otherwise the
  // errors of QueueProducer::open (no lock is taken, so no kAborted).
  static absl::StatusOr<QueueTap> open(std::string_view name, const QueueTapOptions& options = {});
  QueueTap() = default;

  // Copies the next item into `out` (at least max_message bytes, else kTooLarge), sets *bytes and
  // *ticket (the item's QueueView::sequence(); either may be null). kOk, kWouldBlock (nothing
  // new, or the next ticket is claimed and not committed yet), kTooLarge, kClosed. Never waits,
  // never writes shared memory.
  ChannelResult try_read(std::span<std::byte> out, std::size_t* bytes,
                         std::uint64_t* ticket = nullptr) noexcept;
  // As try_read, polling up to `timeout` (kTimedOut).
  ChannelResult read(std::span<std::byte> out, std::size_t* bytes, std::uint64_t* ticket,
                     std::chrono::nanoseconds timeout) noexcept;

  std::uint64_t missed() const noexcept;    // tickets passed unread (see above); 0 when closed
  std::uint64_t read_count() const noexcept;  // items returned
  std::uint64_t next_ticket() const noexcept;  // the ticket it looks at next
  std::uint64_t max_message() const noexcept;
  std::uint64_t capacity() const noexcept;
  // is_open(), close(), channel_incarnation(): from ChannelEndpoint. stats() is empty (no
  // peer slot).

 private:
  using ChannelEndpoint::ChannelEndpoint;
};

}  // namespace shmring
