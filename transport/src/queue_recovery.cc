#include "queue_recovery.h"

#include <optional>

namespace shmring::detail {
namespace {

// An unattributed ticket (a dead peer died before recording it) is acted on only when the same
// endpoint has seen it in that state for this long: a live peer's records are then certainly
// visible (the rings' claim CAS is relaxed, so on a weakly ordered CPU it could become visible
// an instant before the peer's kClaiming record).
constexpr std::uint64_t kUnattributedGraceNs = 2'000'000;

PeerOp op_of(const PeerSlot& s) {
  // SYNC(queue_claim): pairs with record_claim's seq_cst stores.
  return static_cast<PeerOp>(s.op_state.load(std::memory_order_seq_cst));
}
bool occupied(const PeerSlot& s) {
  const PeerState st = state_of(s);
  return st == PeerState::kActive || st == PeerState::kDeadPending;
}
std::uint64_t ticket_of(const PeerSlot& s) { return s.op_ticket.load(std::memory_order_relaxed); }

// An occupied slot with `role` that holds ticket `t` (kClaimed), other than `except`.
bool claimed_by_any(const PeerSlot* slots, std::uint32_t n, PeerRole role, std::uint64_t t,
                    const PeerSlot* except = nullptr, bool live_only = false) {
  for (std::uint32_t i = 0; i < n; ++i) {
    const PeerSlot& s = slots[i];
    if (&s == except || !occupied(s) || role_of(s) != role) continue;
    if (live_only && state_of(s) != PeerState::kActive) continue;
    if (op_of(s) == PeerOp::kClaimed && ticket_of(s) == t) return true;
  }
  return false;
}

// A live endpoint with `role` (other than `except`) is between its kClaiming record and its ticket.
bool live_claiming(const PeerSlot* slots, std::uint32_t n, PeerRole role,
                   const PeerSlot* except = nullptr) {
  for (std::uint32_t i = 0; i < n; ++i) {
    const PeerSlot& s = slots[i];
    if (&s == except || state_of(s) != PeerState::kActive || role_of(s) != role) continue;
    if (op_of(s) == PeerOp::kClaiming) return true;
  }
  return false;
}

}  // namespace

struct QueueRecovery::Run {
  ChannelSegment& seg;
  MpmcQueue<>& q;
  bool can_adopt;
  PeerSlot* slots;
  std::uint32_t n;
  std::uint64_t dequeue;  // the dequeue position when the run started
  RecoveryResult result;
  bool dead_unknown_producer = false;  // a dead producer in kClaiming, its barrier not passed
  bool dead_unknown_consumer = false;  // a dead consumer in kClaiming
};

bool QueueRecovery::confirm(Suspect& s, std::uint64_t ticket) {
  const std::uint64_t now = monotonic_ns();
  if (s.valid && s.ticket == ticket) return now - s.since_ns >= kUnattributedGraceNs;
  s.valid = true;
  s.ticket = ticket;
  s.since_ns = now;
  return false;
}

bool QueueRecovery::stall_evident(const ChannelSegment& seg, const MpmcQueue<>& q,
                                  std::uint64_t now_ns) {
  if (const std::optional<std::uint64_t> t = q.stalled_producer_ticket()) {
    if (!stalled_head_.valid || stalled_head_.ticket != *t) {
      stalled_head_ = {true, *t, now_ns};
    } else if (now_ns - stalled_head_.since_ns >= kStallBoundNs) {
      return true;
    }
  } else {
    stalled_head_.valid = false;
  }
  const std::uint32_t n = seg.info().max_peers;
  if (claims_seen_.size() != n) claims_seen_.assign(n, {});
  const PeerSlot* slots = seg.peers();
  bool evident = false;
  for (std::uint32_t i = 0; i < n; ++i) {
    const PeerSlot& s = slots[i];
    ClaimSeen& seen = claims_seen_[i];
    const std::uint32_t op = s.op_state.load(std::memory_order_relaxed);
    if (!occupied(s) || op == static_cast<std::uint32_t>(PeerOp::kIdle)) {
      seen = {};
      continue;
    }
    const std::uint64_t token = s.token.load(std::memory_order_relaxed);
    const std::uint64_t ticket = ticket_of(s);
    if (seen.since_ns == 0 || seen.token != token || seen.op != op || seen.ticket != ticket) {
      seen = {token, op, ticket, now_ns};
    } else if (now_ns - seen.since_ns >= kHeldClaimBoundNs) {
      evident = true;
      seen.since_ns = now_ns;  // a live holder is looked at again only after another bound
    }
  }
  return evident;
}

RecoveryResult QueueRecovery::run_locked(ChannelSegment& seg, MpmcQueue<>& q, bool can_adopt) {
  seg.mark_dead_locked();
  Run run{seg, q, can_adopt && seg.self() != nullptr, seg.peers(), seg.info().max_peers,
          q.dequeue_position_approx(), {}};
  for (std::uint32_t i = 0; i < run.n; ++i) {
    PeerSlot& s = run.slots[i];
    if (state_of(s) != PeerState::kDeadPending) continue;
    const PeerRole role = role_of(s);
    if (role == plan_.producer) {
      settle_dead_producer(run, s);
    } else if (role == plan_.consumer) {
      settle_dead_consumer(run, i, s);
    } else {
      seg.free_slot_locked(s);
    }
  }
  if (run.dead_unknown_producer) skip_unattributed_ticket(run);
  if (run.dead_unknown_consumer) adopt_orphans(run);
  // SYNC(recovery_hint): leave_to_recovery() marks a slot kDeadPending and then sets the hint
  // without the lock. Store our verdict, then look for such slots again: either we see the slot
  // (and keep the hint set), or its hint store comes after ours (all seq_cst), so a hint is never
  // lost while a slot waits to be settled.
  std::atomic<std::uint32_t>& hint = seg.control()->misc.recovery_hint;
  hint.store(run.result.unresolved ? 1 : 0, std::memory_order_seq_cst);
  if (!run.result.unresolved) {
    for (std::uint32_t i = 0; i < run.n; ++i) {
      if (run.slots[i].state.load(std::memory_order_seq_cst) ==
          static_cast<std::uint32_t>(PeerState::kDeadPending)) {
        hint.store(1, std::memory_order_seq_cst);
        break;
      }
    }
  }
  return run.result;
}

void QueueRecovery::settle_dead_producer(Run& run, PeerSlot& dead) {
  const PeerOp op = op_of(dead);
  if (op == PeerOp::kClaimed) {
    if (run.q.skip_stalled(ticket_of(dead)) == RingResult::kOk) {
      run.seg.control()->counters.claims_skipped.fetch_add(1, std::memory_order_relaxed);
    }
  } else if (op == PeerOp::kClaiming) {
    // Its ticket, if it took one, is below the enqueue position the first recovery saw.
    if (dead.claim_barrier_set.load(std::memory_order_relaxed) == 0) {
      dead.claim_barrier.store(run.q.enqueue_position_approx(), std::memory_order_relaxed);
      dead.claim_barrier_set.store(1, std::memory_order_relaxed);
    }
    if (mpmc::distance(run.dequeue, dead.claim_barrier.load(std::memory_order_relaxed)) < 0) {
      run.dead_unknown_producer = true;
      return;  // kept until consumers pass the barrier
    }
  }
  run.seg.free_slot_locked(dead);
}

void QueueRecovery::settle_dead_consumer(Run& run, std::uint32_t index, PeerSlot& dead) {
  const PeerOp op = op_of(dead);
  if (op == PeerOp::kClaiming) {
    run.dead_unknown_consumer = true;  // freed by adopt_orphans once no orphan is left
    return;
  }
  if (op != PeerOp::kClaimed) {
    run.seg.free_slot_locked(dead);
    return;
  }
  const std::uint64_t t = ticket_of(dead);
  const MpmcQueue<>::SlotPhase phase = run.q.slot_phase(t);
  const bool taken = mpmc::distance(run.dequeue, t) > 0;
  // A live consumer naming the same ticket already adopted it (a recovery that died between
  // adopting and freeing this slot): the item is in good hands.
  const bool held_by_live = claimed_by_any(run.slots, run.n, plan_.consumer, t,
                                           &run.slots[index], /*live_only=*/true);
  if (!held_by_live && taken && phase == MpmcQueue<>::SlotPhase::kFull) {
    if (!take_over(run, t, &dead)) return;  // kept for a consumer that can adopt it
  } else if (!held_by_live && taken && phase == MpmcQueue<>::SlotPhase::kSkipped) {
    run.q.force_release(t);
  }
  run.seg.free_slot_locked(dead);
}

void QueueRecovery::skip_unattributed_ticket(Run& run) {
  const std::optional<std::uint64_t> t = run.q.stalled_producer_ticket();
  if (!t) return;
  if (claimed_by_any(run.slots, run.n, plan_.producer, *t)) return;
  if (live_claiming(run.slots, run.n, plan_.producer)) return;
  if (confirm(stalled_claim_, *t) && run.q.skip_stalled(*t) == RingResult::kOk) {
    run.seg.control()->counters.claims_skipped.fetch_add(1, std::memory_order_relaxed);
  }
}

void QueueRecovery::adopt_orphans(Run& run) {
  if (live_claiming(run.slots, run.n, plan_.consumer, run.seg.self())) {
    run.result.unresolved = true;  // its ticket could be any of them: later
    return;
  }
  const std::uint64_t d0 = run.q.dequeue_position_approx();
  const std::uint64_t cap = run.q.capacity();
  for (std::uint64_t k = 0; k < cap; ++k) {
    const std::uint64_t t = d0 - cap + k;
    const MpmcQueue<>::SlotPhase phase = run.q.slot_phase(t);
    if (phase != MpmcQueue<>::SlotPhase::kFull && phase != MpmcQueue<>::SlotPhase::kSkipped) continue;
    if (claimed_by_any(run.slots, run.n, plan_.consumer, t)) continue;
    if (!confirm(orphan_, t)) {  // seen for the first time (or not long enough): later
      run.result.unresolved = true;
      return;
    }
    if (phase == MpmcQueue<>::SlotPhase::kSkipped) {
      run.q.force_release(t);
    } else if (!take_over(run, t, nullptr)) {
      return;
    }
  }
  for (std::uint32_t i = 0; i < run.n; ++i) {
    PeerSlot& s = run.slots[i];
    if (state_of(s) == PeerState::kDeadPending && role_of(s) == plan_.consumer &&
        op_of(s) == PeerOp::kClaiming) {
      run.seg.free_slot_locked(s);
    }
  }
}

bool QueueRecovery::take_over(Run& run, std::uint64_t ticket, const PeerSlot* dead) {
  if (plan_.settle_item != nullptr) {
    plan_.settle_item(plan_.context, ticket, dead);
    run.q.force_release(ticket);
    return true;
  }
  if (!run.can_adopt || run.result.adopted) {
    run.result.unresolved = true;
    return false;
  }
  adopt(run, ticket);
  return true;
}

void QueueRecovery::adopt(Run& run, std::uint64_t ticket) {
  PeerSlot* me = run.seg.self();
  me->op_ticket.store(ticket, std::memory_order_relaxed);
  me->op_state.store(static_cast<std::uint32_t>(PeerOp::kClaimed), std::memory_order_seq_cst);
  run.result.adopted = true;
  run.result.ticket = ticket;
  run.seg.control()->counters.items_redelivered.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace shmring::detail
