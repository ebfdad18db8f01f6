// MpmcQueue: several writers, several competing readers (each item goes to exactly one reader),
// fixed-size slots chosen at creation. Dmitry Vyukov's bounded MPMC queue with 64-bit tickets, made
// recoverable when a process dies holding a slot.
//
//   MpmcQueue<>      (= MpmcQueue<void>) untyped: the slot size is set at creation, items are 0 to
//                    slot_size bytes.
//   MpmcQueue<T>     typed, for trivially copyable T: slot size sizeof(T); attach checks it.
//
// Region layout (see MpmcControl): RingHeader | enqueue_pos | dequeue_pos | counters | slots.
// A slot is an MpmcSlotHeader {sequence, length} and its payload, padded to kMpmcSlotAlignment.
//
// The sequence word of the slot that serves ticket t (t & mask) moves through
//     free(t) --commit--> full(t) --release--> free(t + capacity)
//     free(t) --skip_stalled / abort--> skipped(t) --a consumer passes it--> free(t + capacity)
// (a given-up slot's length says mpmc::kGivenUpLength until the next lap's commit)
// with free(t) = 4t, full(t) = 4t + 1, skipped(t) = 4t + 2 (mod 2^64). Every transition is a CAS
// from the exact expected value, so two parties can never both make one:
//  * a producer that claimed ticket t and died leaves free(t) behind; after the transport decides it
//    is dead, anyone calls skip_stalled(t) and consumers pass the slot (counted in skipped()).
//    A late commit of that claim finds skipped(t) and returns kFenced: the item is not delivered
//    twice or over someone else's.
//  * a consumer that claimed full(t) and died leaves it there; force_release(t) frees the slot (the
//    item is lost, counted in force_released()). A live consumer that was only slow learns it
//    from release() returning kFenced and must discard its copy (try_read does this for you).
// Precondition of both recoveries: the claimer is dead (or will not touch the slot again). A claimer
// declared dead while alive is fenced at commit/release, but bytes it writes into the payload after
// the slot was recycled can still land in the next lap's item.
//
// Hostile memory: lengths are clamped to the slot size, every index is masked, and an impossible
// sequence/ticket combination returns kCorrupt instead of spinning.
//
// Threads and processes: any number of producers and consumers, in any threads and processes. A
// handle holds only the (immutable) geometry, so one handle may be shared by several threads at
// once; each Claim is finished (commit/abort or release) exactly once, by whoever holds it.
// Blocking: nothing waits, sleeps or makes a system call. Calls are lock-free: a CAS that loses to
// another party retries, so a call finishes unless others keep winning. Note that Vyukov's queue
// is FIFO by ticket: while the oldest claimed ticket is uncommitted, consumers get kEmpty even if
// later tickets are committed (and producers get kFull behind an unreleased read claim a lap ago).
// Memory ordering: a consumer's successful claim/read of ticket t happens-after the producer's
// commit of t: the length and every payload byte written before commit() are visible
// (SYNC(mpmc_full)). A consumer's release() of t happens-before the producer of ticket
// t + capacity gets the slot from try_claim() (SYNC(mpmc_free)).
#pragma once

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <type_traits>

#include "absl/status/statusor.h"
#include "shmring/core/layout.h"
#include "shmring/queue/ring_header.h"
#include "shmring/queue/ring_result.h"

namespace shmring {

// Slots start at multiples of this (one cache line: neighbours do not share lines).
inline constexpr std::size_t kMpmcSlotAlignment = 64;

struct MpmcSlotHeader {
  std::atomic<std::uint64_t> sequence;  // see the state machine above
  std::uint32_t length;                 // payload bytes of the item (<= slot size)
  std::uint32_t reserved;
};
static_assert(std::is_standard_layout_v<MpmcSlotHeader>);
static_assert(sizeof(MpmcSlotHeader) == 16);
static_assert(offsetof(MpmcSlotHeader, sequence) == 0);
static_assert(offsetof(MpmcSlotHeader, length) == 8);

// Recovery counters, written by whoever recovers (slow path only).
struct alignas(kFalseSharingRange) MpmcCounters {
  std::atomic<std::uint64_t> skipped;         // slots skipped by skip_stalled()
  std::atomic<std::uint64_t> aborted;         // claims given up by abort()
  std::atomic<std::uint64_t> force_released;  // items lost to force_release()
  std::uint8_t pad[kFalseSharingRange - 3 * sizeof(std::atomic<std::uint64_t>)];
};
static_assert(std::is_standard_layout_v<MpmcCounters>);
static_assert(sizeof(MpmcCounters) == 128);
static_assert(offsetof(MpmcCounters, skipped) == 0);
static_assert(offsetof(MpmcCounters, aborted) == 8);
static_assert(offsetof(MpmcCounters, force_released) == 16);

struct MpmcControl {
  RingHeader header;
  PaddedCounter enqueue_pos;  // next producer ticket (CAS by producers)
  PaddedCounter dequeue_pos;  // next consumer ticket (CAS by consumers)
  MpmcCounters counters;
};
static_assert(std::is_standard_layout_v<MpmcControl>);
static_assert(sizeof(MpmcControl) == 512);
static_assert(offsetof(MpmcControl, enqueue_pos) == 128);
static_assert(offsetof(MpmcControl, dequeue_pos) == 256);
static_assert(offsetof(MpmcControl, counters) == 384);

namespace mpmc {
// The length a slot says once its claim was given up (abort, skip_stalled), written before the
// release to skipped(t): no item is ever this long, so a reader that finds the slot already
// passed (free(t + capacity)) can still tell a given-up claim from a consumed item (QueueTap).
inline constexpr std::uint32_t kGivenUpLength = 0xFFFFFFFFu;
constexpr std::uint64_t free_seq(std::uint64_t ticket) noexcept { return ticket << 2; }
constexpr std::uint64_t full_seq(std::uint64_t ticket) noexcept { return (ticket << 2) | 1; }
constexpr std::uint64_t skipped_seq(std::uint64_t ticket) noexcept { return (ticket << 2) | 2; }
// Signed distance a - b of two tickets or sequences (mod 2^64).
constexpr std::int64_t distance(std::uint64_t a, std::uint64_t b) noexcept {
  return static_cast<std::int64_t>(a - b);
}
}  // namespace mpmc

template <typename T = void>
class MpmcQueue;

template <>
class MpmcQueue<void> {
 public:
  struct Options {
    std::uint64_t capacity = 1024;   // slots: a power of two >= 2
    std::uint64_t slot_size = 64;    // payload bytes per slot, 1 .. kMaxRecordLimit
    // First ticket (for tests: e.g. 2^64 - 3 * capacity to cross the wrap of the counters).
    std::uint64_t initial_position = 0;
  };

  // A producer's claim (try_claim) or a consumer's (try_claim_read): the ticket and the payload in
  // place. For a producer the buffer is the whole slot; for a consumer it is the item.
  struct Claim {
    RingResult result = RingResult::kFull;
    std::uint64_t ticket = 0;
    std::span<std::byte> buffer;
  };

  // What the slot serving a ticket holds now (inspection, racy).
  enum class SlotPhase : std::uint8_t { kFree, kFull, kSkipped, kOther };

  // Bytes of region a queue with these options needs.
  static std::size_t required_bytes(const Options& options) noexcept;
  // Initialises a queue in `region` and returns a handle; kInvalidArgument for bad options or a
  // region that is null, misaligned or too small. Publishes the header last (release). Nobody may
  // use the region during create().
  static absl::StatusOr<MpmcQueue> create(void* region, std::size_t bytes, const Options& options);
  // Attaches to a queue another handle created (codes in ring_header.h).
  static absl::StatusOr<MpmcQueue> attach(void* region, std::size_t bytes);

  MpmcQueue(MpmcQueue&&) noexcept = default;
  MpmcQueue& operator=(MpmcQueue&&) noexcept = default;
  MpmcQueue(const MpmcQueue&) = delete;
  MpmcQueue& operator=(const MpmcQueue&) = delete;

  // --- Producers ----------------------------------------------------------------------------------
  // Copies `item` into a slot and publishes it. kTooLarge (nothing changed), kFull, kCorrupt, or
  // kFenced (the claim was skipped by a recovery while this call ran: not delivered).
  RingResult try_write(std::span<const std::byte> item) noexcept;
  // Two-phase: claims the next ticket and hands out its slot's payload (slot_size bytes) in place.
  // kOk, kFull or kCorrupt. Consumers get kEmpty at this ticket until it is committed or aborted.
  Claim try_claim() noexcept;
  // Publishes `bytes` (<= slot_size) of a claim. kOk, or kFenced if skip_stalled() took it first.
  RingResult commit(const Claim& claim, std::size_t bytes) noexcept;
  // Gives a claim up: consumers pass the slot (counted in aborted()). kOk, or kFenced.
  RingResult abort(const Claim& claim) noexcept;

  // --- Consumers ----------------------------------------------------------------------------------
  // Copies the next item into `out` (which must hold slot_size() bytes, else kTooLarge and nothing
  // is taken) and sets *bytes. kOk, kEmpty, kCorrupt, or kFenced: the item was force-released by a
  // recovery while it was being copied; it is lost and `out` must be ignored.
  RingResult try_read(std::span<std::byte> out, std::size_t* bytes) noexcept;
  // Two-phase: claims the next full slot and hands its item out in place (passing skipped slots).
  // kOk, kEmpty or kCorrupt. The producer a lap ahead gets kFull until it is released.
  Claim try_claim_read() noexcept;
  // Frees the slot of a read claim. kOk, or kFenced if force_release() took it first (the item was
  // counted lost and the slot may already hold the next lap's item: discard what was read).
  RingResult release(const Claim& claim) noexcept;

  // --- Recovery (slow path; the caller decides when, from peer liveness) ---------------------------
  // If a producer holds ticket `ticket` uncommitted (it was claimed: enqueue position past it, and
  // its slot is still free(ticket)), marks it skipped so consumers pass it. kOk, or kBusy if the slot
  // is not in that state (committed meanwhile, not claimed yet, already skipped).
  RingResult skip_stalled(std::uint64_t ticket) noexcept;
  // If a consumer holds ticket `ticket` unreleased (dequeue position past it, slot full(ticket) or
  // skipped(ticket)), frees the slot for the next lap; a full item is lost and counted. kOk or kBusy.
  RingResult force_release(std::uint64_t ticket) noexcept;
  // The ticket consumers are blocked on because its producer claimed it and has not committed, if
  // any: dequeue_pos == ticket < enqueue_pos and the slot is free(ticket). A waiter that sees the
  // same ticket here for long enough asks the transport for skip_stalled(ticket).
  std::optional<std::uint64_t> stalled_producer_ticket() const noexcept;
  // The ticket producers are blocked on because a consumer claimed it a lap ago and has not
  // released it, if any (the slot for enqueue_pos still holds that older ticket, already claimed).
  std::optional<std::uint64_t> stalled_consumer_ticket() const noexcept;
  // The phase of the slot serving `ticket`, from the point of view of that ticket.
  SlotPhase slot_phase(std::uint64_t ticket) const noexcept;
  // The item of `ticket` in place, for a consumer that holds the ticket by other means (the
  // transport's recovery adopted a dead consumer's claim): kOk and its payload (length clamped to
  // the slot size) if the slot is full(ticket), else kBusy. The acquire load of the slot's
  // sequence pairs with the producer's commit (SYNC(mpmc_full)).
  RingResult view_of_ticket(std::uint64_t ticket, std::span<const std::byte>* item) const noexcept;

  // --- Inspection ---------------------------------------------------------------------------------
  // All racy (relaxed loads) except capacity() and slot_size(); any thread may call them.
  std::uint64_t capacity() const noexcept { return cfg_.capacity; }
  std::uint64_t slot_size() const noexcept { return cfg_.slot_size; }
  std::uint64_t size_approx() const noexcept;
  std::uint64_t enqueue_position_approx() const noexcept;
  std::uint64_t dequeue_position_approx() const noexcept;
  std::uint64_t skipped() const noexcept;
  std::uint64_t aborted() const noexcept;
  std::uint64_t force_released() const noexcept;
  // Items waiting in a queue in a region this process may only read (a tool's read-only mapping),
  // validated like attach(); reads two positions, writes nothing. Same codes as attach().
  static absl::StatusOr<std::uint64_t> depth_of(const void* region, std::size_t bytes) noexcept;

  // Marks the queue closed (release) / reads the mark (acquire); see load_ring_state(). The queue
  // itself ignores it: producers can still write after close().
  void close() noexcept;
  bool closed() const noexcept;

 private:
  struct Config {
    MpmcControl* control = nullptr;
    std::byte* slots = nullptr;
    std::uint64_t capacity = 0;
    std::uint64_t mask = 0;
    std::uint64_t slot_size = 0;
    std::uint64_t stride = 0;
  };
  MpmcQueue() = default;
  MpmcSlotHeader* slot(std::uint64_t ticket) const noexcept {
    return reinterpret_cast<MpmcSlotHeader*>(cfg_.slots + (ticket & cfg_.mask) * cfg_.stride);
  }
  std::byte* payload(MpmcSlotHeader* s) const noexcept {
    return reinterpret_cast<std::byte*>(s) + sizeof(MpmcSlotHeader);
  }

  Config cfg_;
};

// --- Inline hot path (Vyukov, with CAS commit and release) ----------------------------------------

inline MpmcQueue<void>::Claim MpmcQueue<void>::try_claim() noexcept {
  std::atomic<std::uint64_t>& enqueue = cfg_.control->enqueue_pos.value;
  std::uint64_t ticket = enqueue.load(std::memory_order_relaxed);
  for (;;) {
    MpmcSlotHeader* s = slot(ticket);
    // SYNC(mpmc_free): pairs with the release CAS to free(t + capacity) in release(), in
    // force_release() and in a consumer's passing of a skipped slot; the previous lap's reader is
    // done with the payload.
    const std::uint64_t seq = s->sequence.load(std::memory_order_acquire);
    const std::int64_t d = mpmc::distance(seq, mpmc::free_seq(ticket));
    if (d == 0) {
      if (enqueue.compare_exchange_weak(ticket, ticket + 1, std::memory_order_relaxed,
                                        std::memory_order_relaxed)) {
        return {RingResult::kOk, ticket, std::span<std::byte>(payload(s), cfg_.slot_size)};
      }
    } else if (d < 0) {
      return {RingResult::kFull, 0, {}};  // the slot still holds the previous lap
    } else {
      // Another producer took this ticket; an honest one has moved enqueue_pos past it already.
      const std::uint64_t now = enqueue.load(std::memory_order_relaxed);
      if (now == ticket) return {RingResult::kCorrupt, 0, {}};
      ticket = now;
    }
  }
}

inline RingResult MpmcQueue<void>::commit(const Claim& claim, std::size_t bytes) noexcept {
  assert(bytes <= cfg_.slot_size);
  MpmcSlotHeader* s = slot(claim.ticket);
  s->length = static_cast<std::uint32_t>(bytes <= cfg_.slot_size ? bytes : cfg_.slot_size);
  std::uint64_t expected = mpmc::free_seq(claim.ticket);
  // Publishes length and payload (SYNC(mpmc_full)); fails if skip_stalled() fenced this ticket.
  if (s->sequence.compare_exchange_strong(expected, mpmc::full_seq(claim.ticket),
                                          std::memory_order_release, std::memory_order_relaxed)) {
    return RingResult::kOk;
  }
  return RingResult::kFenced;
}

inline RingResult MpmcQueue<void>::try_write(std::span<const std::byte> item) noexcept {
  if (item.size() > cfg_.slot_size) return RingResult::kTooLarge;
  const Claim claim = try_claim();
  if (claim.result != RingResult::kOk) return claim.result;
  if (!item.empty()) std::memcpy(claim.buffer.data(), item.data(), item.size());
  return commit(claim, item.size());
}

inline MpmcQueue<void>::Claim MpmcQueue<void>::try_claim_read() noexcept {
  std::atomic<std::uint64_t>& dequeue = cfg_.control->dequeue_pos.value;
  std::uint64_t ticket = dequeue.load(std::memory_order_relaxed);
  for (;;) {
    MpmcSlotHeader* s = slot(ticket);
    // SYNC(mpmc_full): pairs with the release CAS to full(t) in commit() (and to skipped(t) in
    // skip_stalled()/abort()); the producer's length and payload are complete.
    const std::uint64_t seq = s->sequence.load(std::memory_order_acquire);
    const std::int64_t d = mpmc::distance(seq, mpmc::free_seq(ticket));
    if (d == 1) {  // full(ticket)
      if (dequeue.compare_exchange_weak(ticket, ticket + 1, std::memory_order_relaxed,
                                        std::memory_order_relaxed)) {
        const std::uint32_t length = s->length;
        const std::size_t n = length <= cfg_.slot_size ? length : cfg_.slot_size;
        return {RingResult::kOk, ticket, std::span<std::byte>(payload(s), n)};
      }
    } else if (d == 2) {  // skipped(ticket): take the ticket and pass the slot on
      if (dequeue.compare_exchange_weak(ticket, ticket + 1, std::memory_order_relaxed,
                                        std::memory_order_relaxed)) {
        std::uint64_t expected = mpmc::skipped_seq(ticket);
        // SYNC(mpmc_free): the release a producer's acquire of free(t + capacity) pairs with.
        s->sequence.compare_exchange_strong(expected, mpmc::free_seq(ticket + cfg_.capacity),
                                            std::memory_order_release, std::memory_order_relaxed);
        ticket = ticket + 1;
      }
    } else if (d <= 0) {
      return {RingResult::kEmpty, 0, {}};  // not produced (or not committed) yet
    } else {
      // Another consumer took this ticket; an honest one has moved dequeue_pos past it already.
      const std::uint64_t now = dequeue.load(std::memory_order_relaxed);
      if (now == ticket) return {RingResult::kCorrupt, 0, {}};
      ticket = now;
    }
  }
}

inline RingResult MpmcQueue<void>::release(const Claim& claim) noexcept {
  std::uint64_t expected = mpmc::full_seq(claim.ticket);
  // Hands the slot to the next lap's producer (SYNC(mpmc_free)); fails if force_release() took it.
  if (slot(claim.ticket)->sequence.compare_exchange_strong(
          expected, mpmc::free_seq(claim.ticket + cfg_.capacity), std::memory_order_release,
          std::memory_order_relaxed)) {
    return RingResult::kOk;
  }
  return RingResult::kFenced;
}

inline RingResult MpmcQueue<void>::try_read(std::span<std::byte> out, std::size_t* bytes) noexcept {
  if (out.size() < cfg_.slot_size) return RingResult::kTooLarge;
  const Claim claim = try_claim_read();
  if (claim.result != RingResult::kOk) return claim.result;
  if (!claim.buffer.empty()) std::memcpy(out.data(), claim.buffer.data(), claim.buffer.size());
  if (bytes != nullptr) *bytes = claim.buffer.size();
  return release(claim);
}

// --- Typed wrapper --------------------------------------------------------------------------------

template <typename T>
class MpmcQueue {
  static_assert(std::is_trivially_copyable_v<T>, "MpmcQueue<T> copies T's bytes between processes");
  static_assert(!std::is_pointer_v<T>, "a pointer means nothing in another process");

 public:
  struct Options {
    std::uint64_t capacity = 1024;
    std::uint64_t initial_position = 0;  // tests only
  };

  static std::size_t required_bytes(const Options& options) noexcept {
    return MpmcQueue<>::required_bytes(untyped(options));
  }
  static absl::StatusOr<MpmcQueue> create(void* region, std::size_t bytes, const Options& options) {
    absl::StatusOr<MpmcQueue<>> queue = MpmcQueue<>::create(region, bytes, untyped(options));
    if (!queue.ok()) return queue.status();
    return MpmcQueue(std::move(*queue));
  }
  // kFailedPrecondition if the ring's slot size is not sizeof(T).
  static absl::StatusOr<MpmcQueue> attach(void* region, std::size_t bytes) {
    absl::StatusOr<MpmcQueue<>> queue = MpmcQueue<>::attach(region, bytes);
    if (!queue.ok()) return queue.status();
    if (queue->slot_size() != sizeof(T)) {
      return absl::FailedPreconditionError("MpmcQueue<T>::attach: slot size " +
                                           std::to_string(queue->slot_size()) + " is not sizeof(T) " +
                                           std::to_string(sizeof(T)));
    }
    return MpmcQueue(std::move(*queue));
  }

  // kOk, kFull, kCorrupt, or kFenced (see MpmcQueue<>::try_write).
  RingResult try_push(const T& value) noexcept {
    return queue_.try_write(std::as_bytes(std::span<const T, 1>(&value, 1)));
  }
  // kOk (value set), kEmpty, kCorrupt (an item of the wrong size), kFenced (lost to recovery).
  RingResult try_pop(T& value) noexcept {
    const MpmcQueue<>::Claim claim = queue_.try_claim_read();
    if (claim.result != RingResult::kOk) return claim.result;
    const bool whole = claim.buffer.size() == sizeof(T);
    if (whole) std::memcpy(&value, claim.buffer.data(), sizeof(T));
    const RingResult released = queue_.release(claim);
    if (released != RingResult::kOk) return released;
    return whole ? RingResult::kOk : RingResult::kCorrupt;
  }

  // The untyped queue, for recovery and inspection calls.
  MpmcQueue<>& untyped() noexcept { return queue_; }
  const MpmcQueue<>& untyped() const noexcept { return queue_; }
  std::uint64_t capacity() const noexcept { return queue_.capacity(); }
  std::uint64_t size_approx() const noexcept { return queue_.size_approx(); }

 private:
  explicit MpmcQueue(MpmcQueue<>&& queue) : queue_(std::move(queue)) {}
  static MpmcQueue<>::Options untyped(const Options& options) {
    return {options.capacity, sizeof(T), options.initial_position};
  }
  MpmcQueue<> queue_;
};

}  // namespace shmring
