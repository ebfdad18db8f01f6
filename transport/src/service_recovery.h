// Private: the dead-peer recovery of a service channel. Runs under the segment lock (any endpoint:
// at open, when a watched peer hangs up, and from the slow path of waiting calls), like the
// queue's; nothing is done on the strength of a timeout, only for a peer whose process is gone
// (its liveness lock is free) or that closed.
//
// One run (run_locked):
//  1. dead peers are marked (ChannelSegment::mark_dead_locked);
//  2. each server area whose owner is gone: every held entry {area, call, g} is settled
//     (settle_held): a call answered already (a final record of g) is left to its client; one
//     still in flight is made kOrphaned (another server takes it: redelivered) or, if its request
//     was at_most_once, kEnded (the client's PendingResponse answers kPeerGone); one the client
//     cancelled or left is kEnded (nobody holds it any more). Then the area is free;
//  3. each client area whose owner is gone starts draining (drain_client): its calls in flight
//     become kClientGone (their holders see cancelled(); what they write is dropped), orphaned and
//     ended ones are left to the reclaim;
//  4. the request queue's claims (QueueRecovery, with clients as producers and servers as
//     consumers): a dead client's uncommitted ref is skipped; a ref a dead server claimed and had
//     not recorded as held is settled like a held entry of a request never delivered (made
//     kOrphaned, even at_most_once: no application saw it), then its slot freed;
//  5. draining areas nobody holds a call of any more are reclaimed (reclaim_area): every call's
//     generation is bumped (state and stamp) first, then the held entries are looked at
//     (SYNC(held_stamp), service_layout.h), so a server that takes a stale ref meanwhile either
//     sees the new stamp and drops it or is seen holding it (and the area waits).
// What it changed is returned, so the caller wakes the servers (orphans to take) and the clients
// (calls ended).
#pragma once

#include <cstdint>

#include "channel_segment.h"
#include "queue_recovery.h"
#include "service_layout.h"

namespace shmring::detail {

struct ServiceRecoveryResult {
  bool orphaned = false;      // calls were made kOrphaned: servers should look
  bool ended = false;         // calls changed phase: clients should look
  bool reclaimed = false;     // client areas were made free
};

class ServiceRecovery {
 public:
  ServiceRecovery(ChannelSegment& seg, ServiceRegion& region) noexcept;
  ServiceRecovery(const ServiceRecovery&) = delete;
  ServiceRecovery& operator=(const ServiceRecovery&) = delete;

  // Under the segment lock.
  ServiceRecoveryResult run_locked() noexcept;

  // Evidence that a recovery is due, from shared memory only (no lock, no system call): the
  // queue's (a claim record unchanged for long, a stalled head ticket) or the recovery hint.
  bool stall_evident(std::uint64_t now_ns) noexcept;

  // Settles one call {area, call, g} whose holder is gone or let go without answering (a held
  // entry of a dead server, a server that closes): as step 2 above. `delivered`: an application
  // may have seen the request (at_most_once then ends it instead of redelivering it). Lock-free
  // (CAS on the call's state): also what a closing server does for its own held calls.
  static void settle_held(ServiceRegion& region, std::uint64_t entry, bool delivered,
                          ServiceRecoveryResult* result) noexcept;
  // Settles every held entry of server area `s` and frees it (its counters retired): step 2 for
  // an owner that is gone, or what a server does when it closes. Lock-free.
  static void free_server_area(ServiceRegion& region, std::uint32_t s, ServiceRecoveryResult* result) noexcept;
  // Starts draining client area `a` (step 3): for an owner that is gone, or a client that closes.
  // Lock-free.
  static void drain_area(ServiceRegion& region, std::uint32_t a) noexcept;

 private:
  static void settle_queue_item(void* self, std::uint64_t ticket, const PeerSlot* dead) noexcept;
  bool owner_gone(std::uint64_t token, std::uint32_t index) const noexcept;
  void settle_server_area(std::uint32_t s) noexcept;
  void drain_client(std::uint32_t a) noexcept;
  void reclaim_area(std::uint32_t a) noexcept;
  // The held table of the server area owned by peer `dead` (null if none).
  const std::atomic<std::uint64_t>* held_of(const PeerSlot& dead, std::uint32_t* count) const noexcept;

  ChannelSegment& seg_;
  ServiceRegion& region_;
  QueueRecovery queue_;
  ServiceRecoveryResult result_;
};

}  // namespace shmring::detail
