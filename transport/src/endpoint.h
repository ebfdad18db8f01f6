// Private: the endpoint lifecycle every pattern shares (topic.cc, queue.cc, frame.cc keep only
// what differs):
//  * open: segment, ring attach, segment lock, dead-peer recovery, single-writer check,
//    registration, unlock (Endpoint::open with the pattern's hooks);
//  * close: the outstanding loan/view settled or orphaned, the peer slot unregistered (or left to
//    the recovery when the lock is stuck; ChannelSegment's destructor);
//  * the blocking loop with its blocked-time accounting (Endpoint::wait_for);
//  * ring results as ChannelResult (channel_result);
//  * the loan/view mechanics behind detail::Lease (lend, settle, the forked-child guard).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "absl/status/status.h"
#include "channel_segment.h"
#include "shmring/queue/ring_result.h"
#include "shmring/transport/lease.h"
#include "wait.h"
#include "wait_descriptor.h"

namespace shmring::detail {

// A ring call's result on the channel API: kOk, kFull/kEmpty -> kWouldBlock, kTooLarge, kEvicted,
// kLapped -> kOverwritten; anything else (a peer broke the protocol) -> kCorrupt. Inline: it is
// on every message's path.
inline ChannelResult channel_result(RingResult result) noexcept {
  switch (result) {
    case RingResult::kOk: return ChannelResult::kOk;
    case RingResult::kFull:
    case RingResult::kEmpty: return ChannelResult::kWouldBlock;
    case RingResult::kTooLarge: return ChannelResult::kTooLarge;
    case RingResult::kEvicted: return ChannelResult::kEvicted;
    case RingResult::kLapped: return ChannelResult::kOverwritten;
    default: return ChannelResult::kCorrupt;
  }
}

// What differs between patterns when an endpoint opens.
struct OpenPlan {
  PeerRole role = PeerRole::kNone;
  std::uint32_t peer_flags = 0;       // PeerSlot::flags (topic: a lossless subscriber)
  bool single_writer = false;         // refuse when another live endpoint has `role`
  bool register_peer = true;          // false: a read-only subscriber (no lock, no peer slot)
  std::string_view pattern = "channel";  // for messages: "topic", "frames channel", ...
  std::chrono::milliseconds open_timeout{2000};
};

struct Endpoint {
  // Closes the descriptor (disarming it) while the segment is still attached.
  virtual ~Endpoint() {
    if (descriptor) descriptor->close();
  }

  std::unique_ptr<ChannelSegment> seg;
  PeerRole peer_role = PeerRole::kNone;  // the role it opened with
  WaitOptions wait;
  std::uint64_t blocked_ns = 0;
  Lease* lease_out = nullptr;  // the one loan or view out (kept current by Lease's moves)
  // The pollable descriptor (wait_fd()), made on first use; shared with the WaitSets it is in.
  std::shared_ptr<WaitDescriptor> descriptor;

  // Opens the channel for this endpoint: ChannelSegment::open(name, spec), attach_ring(), then
  // (unless plan.register_peer is false) under the segment lock (bounded by open_timeout):
  // recover_locked(), the single-writer check, registration and registered_locked(); then
  // opened() without the lock.
  absl::Status open(std::string_view name, const ChannelSpec& spec, const OpenPlan& plan);

  // --- pattern hooks ---
  // Attaches (and validates) the ring in seg's ring region; before the lock.
  virtual absl::Status attach_ring() = 0;
  // Under the lock: dead peers found and what they held settled (default: slots freed).
  virtual void recover_locked();
  // Under the lock, right after registering (e.g. a lossless reader slot). On an error the peer
  // slot is unregistered and open fails.
  virtual absl::Status registered_locked() { return absl::OkStatus(); }
  // After the lock is given back (e.g. mprotect of the ring).
  virtual absl::Status opened() { return absl::OkStatus(); }
  // Ends the outstanding loan or view in the process that made it: a loan abandoned, a view
  // released. Returns what Lease::settle() reports.
  virtual ChannelResult end_lease(Lease& lease) noexcept = 0;
  // close() with a loan or view out, in the process that made it. Default: end_lease.
  virtual void orphan_lease(Lease& lease) noexcept { end_lease(lease); }

  // --- lease mechanics ---
  bool lease_busy() const noexcept { return lease_out != nullptr; }
  // Hands `bytes` out through `lease` (kOk), which becomes the endpoint's one lease out.
  void lend(Lease& lease, std::span<std::byte> bytes) noexcept {
    lease.owner_ = this;
    lease.result_ = ChannelResult::kOk;
    lease.orphaned_ = false;
    lease.bytes_ = bytes;
    lease_out = &lease;  // kept current by Lease's move
  }
  // For views: the bytes stay read-only to the caller (the view's accessor returns const bytes;
  // the lease keeps one span type for loans and views).
  void lend(Lease& lease, std::span<const std::byte> bytes) noexcept {
    lend(lease, std::span<std::byte>(const_cast<std::byte*>(bytes.data()), bytes.size()));
  }
  // Makes a lease inert (kClosed, no bytes) and, if it was the one out, forgets it: what a
  // publish/commit does after it used the lease.
  void take_back(Lease& lease) noexcept {
    if (lease_out == &lease) lease_out = nullptr;
    lease.owner_ = nullptr;
    lease.result_ = ChannelResult::kClosed;
    lease.bytes_ = {};
  }
  // Sets a failed call's result on an empty lease.
  static void refuse(Lease& lease, ChannelResult result) noexcept { lease.result_ = result; }
  static bool lent_by(const Lease& lease, const Endpoint* e) noexcept { return lease.owner_ == e; }
  static std::span<std::byte> bytes_of(const Lease& lease) noexcept { return lease.bytes_; }
  static void set_details(Lease& lease, std::uint64_t number, bool redelivered) noexcept {
    lease.number_ = number;
    lease.redelivered_ = redelivered;
  }
  static std::uint64_t number_of(const Lease& lease) noexcept { return lease.number_; }
  // Lease::settle() and the destructor: end_lease() if `lease` is the one out and this is the
  // process that made it (a forked child's copy only lets go), then take_back().
  ChannelResult settle(Lease& lease) noexcept;
  // close(): an outstanding lease is orphan_lease()d (in the owning process) and made inert; its
  // release() then says kClosed.
  void orphan_outstanding() noexcept;
  // Lease's move: the endpoint now follows `to`.
  void follow(const Lease& from, Lease& to) noexcept {
    if (lease_out == &from) lease_out = &to;
  }

  // --- descriptor waiting (wait_descriptor.h) ---
  // The try_ calls' last step before they answer kWouldBlock: with a descriptor, re-arms it if a
  // notifier fired it, then tells the caller to attempt once more (true). False: no descriptor,
  // or armed with nothing pending (answer kWouldBlock). A watched peer's hang-up runs
  // peer_gone() first.
  bool prepare_to_block() noexcept {
    if (descriptor == nullptr) return false;
    const bool again = descriptor->prepare_to_block();
    if (descriptor->take_peer_gone_news()) peer_gone();
    if (!again) descriptor->set_deadline(wake_deadline_ns());  // about to block
    return again;
  }
  // When this endpoint's try_ calls have work of their own to do, with nobody's action
  // (CLOCK_MONOTONIC ns; 0: never): a held-back lossless publisher's evict_after.
  virtual std::uint64_t wake_deadline_ns() const noexcept { return 0; }
  // attempt() until it succeeds or prepare_to_block() says block. Each round means a notifier
  // fired meanwhile (and its datagram may have been drained); after a few, the descriptor is made
  // readable again (a datagram to itself) so that the application comes back: it is never left
  // drained and disarmed. Returns attempt()'s last answer.
  // When an attempt succeeds after the descriptor was (re)armed, the descriptor is armed with its
  // socket drained while there may be more work behind this success (what arrived while it was
  // armed): it is made readable again (a datagram to itself), so an application that stops before
  // it sees kWouldBlock (a WaitSet handler that returns early) is called again, as level-triggered
  // readiness promises. One datagram per such race, never per message.
  template <typename Attempt>
  bool attempt_before_blocking(Attempt&& attempt) {
    for (int round = 0; round < 4; ++round) {
      if (!prepare_to_block()) return false;
      if (attempt()) {
        descriptor->wake_self();
        return true;
      }
    }
    descriptor->wake_self();
    return false;
  }
  // A peer this endpoint watches closed or died: run the dead-peer recovery now if the lock is
  // free (else hint it), instead of at the polling rate of a blocked call.
  virtual void peer_gone() noexcept;
  // Makes this endpoint's descriptor (wait_fd()): by default from its role (wait_descriptor.h);
  // a pattern whose endpoints wait elsewhere gives its own plan.
  virtual std::shared_ptr<WaitDescriptor> make_descriptor(int* error) noexcept {
    return WaitDescriptor::create(*seg, peer_role, error);
  }

  // --- blocking ---
  // wait_until() on `wake` (nullptr: a read-only endpoint, which sleeps in steps) until attempt()
  // says done or `timeout` passes; the time spent is added to this endpoint's blocked_ns (and its
  // peer slot). Returns attempt()'s last answer.
  template <typename Attempt, typename Idle>
  bool wait_for(WakeBlock* wake, std::chrono::nanoseconds timeout, Attempt&& attempt, Idle&& idle,
                std::int64_t park_slice_ns = kParkSliceNs) {
    const std::uint64_t start = monotonic_ns();
    const bool done = wait_until(wake, wait, deadline_after(timeout), attempt, idle, park_slice_ns);
    add_blocked(monotonic_ns() - start);
    return done;
  }
  void add_blocked(std::uint64_t ns) noexcept;

  // The slot of a live endpoint with `role` other than this one (nullptr if none).
  const PeerSlot* live_peer_with(PeerRole role) const noexcept;
};

// A handle's endpoint as its pattern's type; nullptr when closed, and in a forked child: a child's
// copy of an endpoint is inert (every data-path call answers kClosed) and never touches what
// belongs to the parent (its claims, cursors, positions, loans and views). One relaxed load and a
// compare (fork_generation()), no system call.
template <typename E>
E* endpoint_as(const std::unique_ptr<Endpoint>& impl) noexcept {
  if (impl == nullptr || !impl->seg->owned_here()) return nullptr;
  return static_cast<E*>(impl.get());
}

}  // namespace shmring::detail
