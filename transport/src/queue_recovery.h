// Private: how a queue channel records claims in peer slots, and the dead-peer recovery that
// relies on those records.
//
// Claim protocol. Each endpoint has one outstanding claim at a time and records it in its peer
// slot (record_claim):
//   op_state = kClaiming (seq_cst)  ->  ring CAS (try_claim / try_claim_read)  ->
//   op_ticket = t; op_state = kClaimed  ->  commit / release  ->  op_state = kIdle
// so a process killed at any point leaves either kIdle (nothing held), kClaimed with the exact
// ticket, or kClaiming (it may or may not have taken a ticket, whose number is unknown).
//
// Recovery (QueueRecovery::run_locked, under the segment lock; run by consumers when the queue
// looks stalled and every 20 ms while they wait, by producers while the queue is full, and at open):
//  1. every kActive peer whose (pid, start time) is gone becomes kDeadPending (counters folded);
//  2. dead producers (settle_dead_producer): kClaimed t: skip_stalled(t) (kOk: counted in
//     claims_skipped; kBusy: it had committed). kClaiming: its ticket, if any, is below the
//     enqueue position read now (the barrier); the slot is freed once the dequeue position passes
//     the barrier; until then skip_unattributed_ticket may skip a ticket consumers are stuck on
//     that no producer slot names, while no live producer is in kClaiming;
//  3. dead consumers (settle_dead_consumer): kClaimed t with the slot still full(t): a consumer
//     running the recovery adopts the claim (takes t over in its own slot) and delivers the item
//     with redelivered() set. kClaiming: with no live consumer in kClaiming, adopt_orphans treats
//     every slot consumers hold (dequeue - capacity .. dequeue) that no consumer slot names as an
//     orphan: adopted if full, freed if it was a skipped slot being passed.
// Nothing is skipped or adopted on the strength of a timeout: only a peer whose process is gone.
#pragma once

#include <cstdint>
#include <vector>

#include "channel_segment.h"
#include "shmring/queue/mpmc_queue.h"

namespace shmring::detail {

// Runs one ring claim (`claim()` returns an MpmcQueue<>::Claim) recorded in `me` as the protocol
// above says. Returns the claim; on failure the slot says kIdle again.
template <typename ClaimFn>
MpmcQueue<>::Claim record_claim(PeerSlot& me, ClaimFn&& claim) {
  // SYNC(queue_claim): kClaiming is seq_cst (ordered before the ring's claim CAS as far as this
  // thread can order it; the ring's CAS is relaxed, so a recovery acts on a ticket no record names
  // only after seeing it so for a grace period, see queue_recovery.cc). kClaimed is a release
  // store: a recovery whose seq_cst (acquire) load of op_state sees it also sees op_ticket. A
  // release store is a plain move on x86; the seq_cst one it replaced cost a locked instruction
  // per claim (about 25 ns a round trip, near placement).
  me.op_state.store(static_cast<std::uint32_t>(PeerOp::kClaiming), std::memory_order_seq_cst);
  MpmcQueue<>::Claim c = claim();
  if (c.result != RingResult::kOk) {
    me.op_state.store(static_cast<std::uint32_t>(PeerOp::kIdle), std::memory_order_release);
    return c;
  }
  me.op_ticket.store(c.ticket, std::memory_order_relaxed);
  me.op_state.store(static_cast<std::uint32_t>(PeerOp::kClaimed), std::memory_order_release);
  return c;
}

// Clears this endpoint's claim record (after a commit, release or abort).
inline void clear_claim(PeerSlot& me) {
  me.op_state.store(static_cast<std::uint32_t>(PeerOp::kIdle), std::memory_order_release);
}

struct RecoveryResult {
  bool adopted = false;      // this endpoint now holds `ticket` (a dead consumer's item)
  std::uint64_t ticket = 0;
  bool unresolved = false;   // a dead consumer's item waits for a consumer to adopt it
};

// Which roles produce into the ring and consume from it (a queue channel's by default; a service's
// clients and servers, service_recovery.h), and what becomes of an item a dead consumer held.
struct QueueRecoveryPlan {
  PeerRole producer = PeerRole::kProducer;
  PeerRole consumer = PeerRole::kConsumer;
  // When set, an item a dead consumer held (its kClaimed ticket with the slot full, or an orphan
  // adopt_orphans confirmed) is not adopted: settle_item(context, ticket, dead) decides its fate
  // (it may read the item in place; `dead` is the dead consumer's slot, null when unknown) and the
  // recovery then frees the slot. Any endpoint can then settle such items, consumer or not.
  void (*settle_item)(void* context, std::uint64_t ticket, const PeerSlot* dead) = nullptr;
  void* context = nullptr;
};

// One endpoint's recovery: the steps above, plus the endpoint's memory of unattributed tickets
// (each is acted on only after this endpoint has seen it in that state for a grace period).
class QueueRecovery {
 public:
  QueueRecovery() = default;
  explicit QueueRecovery(const QueueRecoveryPlan& plan) : plan_(plan) {}

  // Under the segment lock. `can_adopt`: this endpoint is a consumer that can take over a dead
  // consumer's item (one at most per run).
  RecoveryResult run_locked(ChannelSegment& seg, MpmcQueue<>& q, bool can_adopt);

  // Evidence that a recovery is due, read from shared memory only (no lock, no system call):
  // consumers stuck on a ticket its producer claimed and has not committed for kStallBoundNs, or
  // an endpoint whose claim record (op state and ticket) has not changed for kHeldClaimBoundNs
  // (a claim normally lasts a copy; a live consumer holding a view that long also counts, and
  // the recovery then finds it alive and leaves it). The try_ calls look for it instead of
  // running the recovery whenever the queue is empty.
  bool stall_evident(const ChannelSegment& seg, const MpmcQueue<>& q, std::uint64_t now_ns);
  static constexpr std::uint64_t kStallBoundNs = 2'000'000;
  static constexpr std::uint64_t kHeldClaimBoundNs = 20'000'000;

 private:
  // A ticket seen in a suspicious state, and since when.
  struct Suspect {
    bool valid = false;
    std::uint64_t ticket = 0;
    std::uint64_t since_ns = 0;
  };
  // True once `ticket` has been `s` for the grace period (starts the clock on a new ticket).
  static bool confirm(Suspect& s, std::uint64_t ticket);

  struct Run;  // the state of one run_locked
  void settle_dead_producer(Run& run, PeerSlot& dead);
  void settle_dead_consumer(Run& run, std::uint32_t index, PeerSlot& dead);
  void skip_unattributed_ticket(Run& run);
  void adopt_orphans(Run& run);
  void adopt(Run& run, std::uint64_t ticket);
  // A dead consumer's full slot `ticket`: adopted, or handed to plan_.settle_item and freed.
  // False when it has to wait for a consumer that can adopt it.
  bool take_over(Run& run, std::uint64_t ticket, const PeerSlot* dead);

  QueueRecoveryPlan plan_;
  Suspect stalled_claim_;  // a producer ticket no producer slot names
  Suspect orphan_;         // a consumer-held slot no consumer slot names
  Suspect stalled_head_;   // stall_evident: the ticket consumers are stuck on
  // stall_evident: each peer slot's claim record as last seen, and since when.
  struct ClaimSeen {
    std::uint64_t token = 0;
    std::uint32_t op = 0;
    std::uint64_t ticket = 0;
    std::uint64_t since_ns = 0;
  };
  std::vector<ClaimSeen> claims_seen_;
};

}  // namespace shmring::detail
