// Queue channels: MpmcQueue<> in a channel segment, blocking waits, and dead-peer recovery.
//
// Claim protocol (what recovery relies on). Each endpoint has one outstanding claim at a time and
// records it in its peer slot:
//   op_state = kClaiming (seq_cst)  ->  ring CAS (try_claim / try_claim_read)  ->
//   op_ticket = t; op_state = kClaimed  ->  commit / release  ->  op_state = kIdle
// so a process killed at any point leaves either kIdle (nothing held), kClaimed with the exact
// ticket, or kClaiming (it may or may not have taken a ticket, whose number is unknown).
//
// Recovery (recover_locked, under the segment lock; run by consumers when the queue looks empty or
// stalled and every 20 ms while they wait, by producers while the queue is full, and at open):
//  1. every kActive peer whose (pid, start time) is gone becomes kDeadPending (counters folded);
//  2. dead producer, kClaimed t: skip_stalled(t) (kOk: counted in claims_skipped; kBusy: it had
//     committed). Dead producer, kClaiming: its ticket, if any, is below the enqueue position read
//     now (the barrier); while consumers are stuck on a ticket that no producer slot names and no
//     live producer is in kClaiming, that ticket is skipped; the slot is freed once the dequeue
//     position passes the barrier;
//  3. dead consumer, kClaimed t with the slot still full(t): a consumer running the recovery adopts
//     the claim (takes t over in its own slot) and delivers the item with redelivered() set;
//     dead consumer, kClaiming: with no live consumer in kClaiming, every slot a consumer holds
//     (dequeue - capacity .. dequeue) that no consumer slot names is an orphan: adopted if full,
//     freed if it was a skipped slot being passed.
// Nothing is skipped or adopted on the strength of a timeout: only a peer whose process is gone.
#include "shmring/transport/queue_channel.h"

#include <cstring>
#include <optional>
#include <utility>

#include "channel_segment.h"
#include "shmring/queue/mpmc_queue.h"
#include "wait.h"

namespace shmring {
namespace detail {

struct QueueEndpoint {
  std::unique_ptr<ChannelSegment> seg;
  std::optional<MpmcQueue<>> q;
  WaitOptions wait;
  std::uint64_t last_recovery_ns = 0;
  // Grace for the two unattributed recoveries (see confirm()): the ticket this endpoint saw and when.
  struct Suspect {
    bool valid = false;
    std::uint64_t ticket = 0;
    std::uint64_t since_ns = 0;
  };
  Suspect stalled_claim;  // a producer ticket no producer slot names
  Suspect orphan;         // a consumer-held slot no consumer slot names
  std::uint64_t sent = 0;
  std::uint64_t received = 0;
  std::uint64_t blocked_ns = 0;
  // The one loan (producer) or view (consumer) out, so that closing the endpoint can settle it;
  // the loan or view keeps this pointer current when it is moved.
  QueueLoan* loan_out = nullptr;
  QueueView* view_out = nullptr;
};

namespace {

constexpr std::uint64_t kStalledRecoveryIntervalNs = 1'000'000;   // a stall persists: 1 ms
constexpr std::uint64_t kIdleRecoveryIntervalNs = 20'000'000;     // nothing seen: 20 ms
// An unattributed ticket (a dead peer died before recording it) is acted on only when the same
// endpoint has seen it in that state for this long: a live peer's records are then certainly
// visible (the rings' claim CAS is relaxed, so on a weakly ordered CPU it could become visible
// an instant before the peer's kClaiming record).
constexpr std::uint64_t kUnattributedGraceNs = 2'000'000;

bool confirm(QueueEndpoint::Suspect& s, std::uint64_t ticket) {
  const std::uint64_t now = monotonic_ns();
  if (s.valid && s.ticket == ticket) return now - s.since_ns >= kUnattributedGraceNs;
  s.valid = true;
  s.ticket = ticket;
  s.since_ns = now;
  return false;
}

PeerOp op_of(const PeerSlot& s) {
  return static_cast<PeerOp>(s.op_state.load(std::memory_order_seq_cst));
}
bool occupied(const PeerSlot& s) {
  const PeerState st = state_of(s);
  return st == PeerState::kActive || st == PeerState::kDeadPending;
}

ChannelSpec queue_spec(const QueueOptions& options) {
  ChannelSpec spec;
  spec.kind = ChannelKind::kQueue;
  copy_common_options(options, &spec);
  spec.ring_bytes = [](std::uint64_t capacity, std::uint64_t max_message) -> std::uint64_t {
    if (!is_power_of_two(capacity) || capacity < 2 || max_message == 0) return 0;
    return MpmcQueue<>::required_bytes({capacity, max_message, 0});
  };
  spec.init_ring = [](void* ring, std::size_t bytes, std::uint64_t capacity,
                      std::uint64_t max_message) -> absl::Status {
    absl::StatusOr<MpmcQueue<>> q = MpmcQueue<>::create(ring, bytes, {capacity, max_message, 0});
    return q.status();
  };
  return spec;
}

struct RecoveryResult {
  bool adopted = false;
  std::uint64_t ticket = 0;
  bool unresolved = false;  // a dead consumer's item waits for a consumer to adopt it
};

void adopt(QueueEndpoint& e, std::uint64_t ticket, RecoveryResult* res) {
  PeerSlot* me = e.seg->self();
  me->op_ticket.store(ticket, std::memory_order_relaxed);
  me->op_state.store(static_cast<std::uint32_t>(PeerOp::kClaimed), std::memory_order_seq_cst);
  res->adopted = true;
  res->ticket = ticket;
  e.seg->control()->counters.items_redelivered.fetch_add(1, std::memory_order_relaxed);
}

RecoveryResult recover_locked(QueueEndpoint& e, bool can_adopt) {
  ChannelSegment& seg = *e.seg;
  MpmcQueue<>& q = *e.q;
  ControlBlock* cb = seg.control();
  seg.mark_dead_locked();
  PeerSlot* slots = seg.peers();
  const std::uint32_t n = seg.info().max_peers;
  RecoveryResult res;
  can_adopt = can_adopt && seg.self() != nullptr;
  const std::uint64_t dequeue = q.dequeue_position_approx();
  bool dead_unknown_producer = false;
  bool dead_unknown_consumer = false;

  for (std::uint32_t i = 0; i < n; ++i) {
    PeerSlot& s = slots[i];
    if (state_of(s) != PeerState::kDeadPending) continue;
    const PeerRole role = role_of(s);
    const PeerOp op = op_of(s);
    const std::uint64_t t = s.op_ticket.load(std::memory_order_relaxed);
    if (role == PeerRole::kProducer) {
      if (op == PeerOp::kClaimed) {
        if (q.skip_stalled(t) == RingResult::kOk) {
          cb->counters.claims_skipped.fetch_add(1, std::memory_order_relaxed);
        }
        seg.free_slot_locked(s);
      } else if (op == PeerOp::kClaiming) {
        if (s.aux.load(std::memory_order_relaxed) == 0) {
          s.barrier.store(q.enqueue_position_approx(), std::memory_order_relaxed);
          s.aux.store(1, std::memory_order_relaxed);
        }
        if (mpmc::distance(dequeue, s.barrier.load(std::memory_order_relaxed)) >= 0) {
          seg.free_slot_locked(s);
        } else {
          dead_unknown_producer = true;
        }
      } else {
        seg.free_slot_locked(s);
      }
    } else if (role == PeerRole::kConsumer) {
      if (op == PeerOp::kClaimed) {
        const MpmcQueue<>::SlotPhase phase = q.slot_phase(t);
        const bool taken = mpmc::distance(dequeue, t) > 0;
        // A live consumer naming the same ticket already adopted it (a recovery that died between
        // adopting and freeing this slot): the item is in good hands.
        bool held_by_live = false;
        for (std::uint32_t j = 0; j < n; ++j) {
          const PeerSlot& o = slots[j];
          if (j != i && state_of(o) == PeerState::kActive && role_of(o) == PeerRole::kConsumer &&
              op_of(o) == PeerOp::kClaimed && o.op_ticket.load(std::memory_order_relaxed) == t) {
            held_by_live = true;
          }
        }
        if (held_by_live) {
          seg.free_slot_locked(s);
        } else if (taken && phase == MpmcQueue<>::SlotPhase::kFull) {
          if (can_adopt && !res.adopted) {
            adopt(e, t, &res);
            seg.free_slot_locked(s);
          } else {
            res.unresolved = true;
          }
        } else {
          if (taken && phase == MpmcQueue<>::SlotPhase::kSkipped) q.force_release(t);
          seg.free_slot_locked(s);
        }
      } else if (op == PeerOp::kClaiming) {
        dead_unknown_consumer = true;
      } else {
        seg.free_slot_locked(s);
      }
    } else {
      seg.free_slot_locked(s);
    }
  }

  if (dead_unknown_producer) {
    if (const std::optional<std::uint64_t> t = q.stalled_producer_ticket()) {
      bool known = false;
      bool live_unknown = false;
      for (std::uint32_t i = 0; i < n; ++i) {
        const PeerSlot& s = slots[i];
        if (!occupied(s) || role_of(s) != PeerRole::kProducer) continue;
        const PeerOp op = op_of(s);
        if (op == PeerOp::kClaimed && s.op_ticket.load(std::memory_order_relaxed) == *t) known = true;
        if (op == PeerOp::kClaiming && state_of(s) == PeerState::kActive) live_unknown = true;
      }
      if (!known && !live_unknown && confirm(e.stalled_claim, *t) &&
          q.skip_stalled(*t) == RingResult::kOk) {
        cb->counters.claims_skipped.fetch_add(1, std::memory_order_relaxed);
      }
    }
  }

  if (dead_unknown_consumer) {
    bool live_unknown = false;
    for (std::uint32_t i = 0; i < n; ++i) {
      const PeerSlot& s = slots[i];
      if (&s == seg.self() || state_of(s) != PeerState::kActive) continue;
      if (role_of(s) == PeerRole::kConsumer && op_of(s) == PeerOp::kClaiming) live_unknown = true;
    }
    if (live_unknown) {
      res.unresolved = true;
    } else {
      const std::uint64_t d0 = q.dequeue_position_approx();
      const std::uint64_t cap = q.capacity();
      bool orphan_left = false;
      for (std::uint64_t k = 0; k < cap; ++k) {
        const std::uint64_t t = d0 - cap + k;
        const MpmcQueue<>::SlotPhase phase = q.slot_phase(t);
        if (phase != MpmcQueue<>::SlotPhase::kFull && phase != MpmcQueue<>::SlotPhase::kSkipped) {
          continue;
        }
        bool known = false;
        for (std::uint32_t i = 0; i < n && !known; ++i) {
          const PeerSlot& s = slots[i];
          if (occupied(s) && role_of(s) == PeerRole::kConsumer && op_of(s) == PeerOp::kClaimed &&
              s.op_ticket.load(std::memory_order_relaxed) == t) {
            known = true;
          }
        }
        if (known) continue;
        if (!confirm(e.orphan, t)) {  // seen for the first time (or not long enough): later
          orphan_left = true;
          break;
        }
        if (phase == MpmcQueue<>::SlotPhase::kSkipped) {
          q.force_release(t);
        } else if (can_adopt && !res.adopted) {
          adopt(e, t, &res);
        } else {
          orphan_left = true;
        }
      }
      if (orphan_left) {
        res.unresolved = true;
      } else {
        for (std::uint32_t i = 0; i < n; ++i) {
          PeerSlot& s = slots[i];
          if (state_of(s) == PeerState::kDeadPending && role_of(s) == PeerRole::kConsumer &&
              op_of(s) == PeerOp::kClaiming) {
            seg.free_slot_locked(s);
          }
        }
      }
    }
  }
  cb->misc.recovery_hint.store(res.unresolved ? 1 : 0, std::memory_order_relaxed);
  return res;
}

// Runs a recovery if the lock is free right now (never waits for it).
RecoveryResult try_recover(QueueEndpoint& e, bool can_adopt) {
  RecoveryResult res;
  if (!e.seg->lock_for(0)) return res;
  res = recover_locked(e, can_adopt);
  e.seg->unlock();
  return res;
}

absl::StatusOr<std::unique_ptr<QueueEndpoint>> open_endpoint(std::string_view name,
                                                            const QueueOptions& options,
                                                            PeerRole role) {
  absl::StatusOr<std::unique_ptr<ChannelSegment>> seg = ChannelSegment::open(name, queue_spec(options));
  if (!seg.ok()) return seg.status();
  auto e = std::make_unique<QueueEndpoint>();
  e->seg = *std::move(seg);
  e->wait = options.wait;
  const ChannelInfo& info = e->seg->info();
  absl::StatusOr<MpmcQueue<>> q = MpmcQueue<>::attach(e->seg->ring(), info.ring_bytes);
  if (!q.ok()) return q.status();
  if (q->capacity() != info.capacity || q->slot_size() != info.max_message) {
    return absl::DataLossError("channel '" + info.name + "': ring does not match its control block");
  }
  e->q.emplace(*std::move(q));
  if (!e->seg->lock_for(options.open_timeout.count())) return e->seg->memory().status();
  recover_locked(*e, false);
  absl::Status s = e->seg->register_locked(role, 0);
  e->seg->unlock();
  if (!s.ok()) return s;
  return e;
}

}  // namespace
}  // namespace detail

using detail::QueueEndpoint;

// --- QueueLoan / QueueView -------------------------------------------------------------------------

namespace detail {

void abandon_queue_loan(QueueEndpoint& e, QueueLoan& loan) noexcept {
  if (e.loan_out == &loan) {
    e.loan_out = nullptr;
    if (e.seg->owned_here()) {  // a forked child's copy must not touch its parent's claim
      const MpmcQueue<>::Claim claim{RingResult::kOk, loan.ticket_, loan.buffer_};
      e.q->abort(claim);
      e.seg->self()->op_state.store(static_cast<std::uint32_t>(PeerOp::kIdle),
                                    std::memory_order_release);
      notify(e.seg->control()->data_wake);  // consumers may pass the aborted slot now
    }
  }
  loan.owner_ = nullptr;
  loan.result_ = ChannelResult::kClosed;
  loan.buffer_ = {};
}

ChannelResult finish_queue_view(QueueEndpoint& e, QueueView& view) noexcept {
  ChannelResult out = ChannelResult::kClosed;
  // A forked child's copy of a view must not release its parent's slot.
  if (e.view_out == &view && !e.seg->owned_here()) e.view_out = nullptr;
  if (e.view_out == &view) {
    e.view_out = nullptr;
    const MpmcQueue<>::Claim claim{RingResult::kOk, view.ticket_, {}};
    const RingResult r = e.q->release(claim);
    e.seg->self()->op_state.store(static_cast<std::uint32_t>(PeerOp::kIdle),
                                  std::memory_order_release);
    if (r == RingResult::kOk) {
      e.seg->self()->received.store(++e.received, std::memory_order_relaxed);
      notify(e.seg->control()->space_wake);
      out = ChannelResult::kOk;
    } else {
      out = ChannelResult::kCorrupt;
    }
  }
  view.owner_ = nullptr;
  view.result_ = ChannelResult::kClosed;
  view.data_ = {};
  return out;
}

}  // namespace detail

void QueueLoan::take_from(QueueLoan& other) noexcept {
  owner_ = std::exchange(other.owner_, nullptr);
  result_ = std::exchange(other.result_, ChannelResult::kClosed);
  ticket_ = other.ticket_;
  buffer_ = std::exchange(other.buffer_, {});
  if (owner_ != nullptr && owner_->loan_out == &other) owner_->loan_out = this;
}
QueueLoan::QueueLoan(QueueLoan&& other) noexcept { take_from(other); }
QueueLoan& QueueLoan::operator=(QueueLoan&& other) noexcept {
  if (this != &other) {
    if (owner_ != nullptr) detail::abandon_queue_loan(*owner_, *this);
    take_from(other);
  }
  return *this;
}
QueueLoan::~QueueLoan() {
  if (owner_ != nullptr) detail::abandon_queue_loan(*owner_, *this);
}

void QueueView::take_from(QueueView& other) noexcept {
  owner_ = std::exchange(other.owner_, nullptr);
  result_ = std::exchange(other.result_, ChannelResult::kClosed);
  ticket_ = other.ticket_;
  redelivered_ = other.redelivered_;
  data_ = std::exchange(other.data_, {});
  orphaned_ = std::exchange(other.orphaned_, false);
  if (owner_ != nullptr && owner_->view_out == &other) owner_->view_out = this;
}
QueueView::QueueView(QueueView&& other) noexcept { take_from(other); }
QueueView& QueueView::operator=(QueueView&& other) noexcept {
  if (this != &other) {
    release();
    take_from(other);
  }
  return *this;
}
QueueView::~QueueView() { release(); }

ChannelResult QueueView::release() noexcept {
  if (owner_ == nullptr) {  // empty, released, or orphaned by QueueConsumer::close()
    const bool orphaned = std::exchange(orphaned_, false);
    result_ = ChannelResult::kClosed;
    data_ = {};
    return orphaned ? ChannelResult::kClosed : ChannelResult::kOk;
  }
  return detail::finish_queue_view(*owner_, *this);
}

// --- QueueProducer ---------------------------------------------------------------------------------

QueueProducer::QueueProducer() = default;
QueueProducer::QueueProducer(QueueProducer&&) noexcept = default;
QueueProducer& QueueProducer::operator=(QueueProducer&& other) noexcept {
  if (this != &other) {
    close();
    impl_ = std::move(other.impl_);
  }
  return *this;
}
QueueProducer::~QueueProducer() { close(); }

absl::StatusOr<QueueProducer> QueueProducer::open(std::string_view name,
                                                  const QueueOptions& options) {
  auto e = detail::open_endpoint(name, options, PeerRole::kProducer);
  if (!e.ok()) return e.status();
  QueueProducer p;
  p.impl_ = *std::move(e);
  return p;
}

void QueueProducer::close() noexcept {
  // An outstanding loan is given up (consumers pass the slot); the QueueLoan becomes inert.
  if (impl_ && impl_->loan_out != nullptr) detail::abandon_queue_loan(*impl_, *impl_->loan_out);
  impl_.reset();
}

std::uint64_t QueueProducer::max_message() const noexcept { return impl_ ? impl_->q->slot_size() : 0; }
std::uint64_t QueueProducer::capacity() const noexcept { return impl_ ? impl_->q->capacity() : 0; }
std::uint64_t QueueProducer::size_approx() const noexcept { return impl_ ? impl_->q->size_approx() : 0; }
PeerStats QueueProducer::stats() const noexcept {
  return impl_ ? detail::peer_stats(*impl_->seg) : PeerStats{};
}

namespace {

// One claim attempt, recorded in the peer slot (see the protocol at the top).
RingResult claim_once(QueueEndpoint& e, MpmcQueue<>::Claim* claim) {
  PeerSlot* me = e.seg->self();
  me->op_state.store(static_cast<std::uint32_t>(PeerOp::kClaiming), std::memory_order_seq_cst);
  *claim = e.q->try_claim();
  if (claim->result != RingResult::kOk) {
    me->op_state.store(static_cast<std::uint32_t>(PeerOp::kIdle), std::memory_order_release);
    return claim->result;
  }
  me->op_ticket.store(claim->ticket, std::memory_order_relaxed);
  me->op_state.store(static_cast<std::uint32_t>(PeerOp::kClaimed), std::memory_order_seq_cst);
  return RingResult::kOk;
}

// Commit, then clear the claim (a kill in between leaves kClaimed with a committed slot: recovery's
// skip_stalled then answers kBusy and nothing is skipped).
RingResult commit_claim(QueueEndpoint& e, const MpmcQueue<>::Claim& claim, std::size_t bytes) {
  const RingResult r = e.q->commit(claim, bytes);
  e.seg->self()->op_state.store(static_cast<std::uint32_t>(PeerOp::kIdle), std::memory_order_release);
  if (r == RingResult::kOk) detail::notify(e.seg->control()->data_wake);
  return r;
}

void producer_idle(QueueEndpoint& e, std::uint64_t now) {
  e.seg->touch(now);
  const bool stalled = e.q->stalled_consumer_ticket().has_value();
  const std::uint64_t interval =
      stalled ? detail::kStalledRecoveryIntervalNs : detail::kIdleRecoveryIntervalNs;
  if (now - e.last_recovery_ns < interval) return;
  e.last_recovery_ns = now;
  detail::try_recover(e, false);
}

}  // namespace

ChannelResult QueueProducer::try_send(std::span<const std::byte> message) noexcept {
  return send(message, std::chrono::nanoseconds(0));
}

ChannelResult QueueProducer::send(std::span<const std::byte> message,
                                  std::chrono::nanoseconds timeout) noexcept {
  if (!impl_) return ChannelResult::kClosed;
  QueueEndpoint& e = *impl_;
  if (message.size() > e.q->slot_size()) return ChannelResult::kTooLarge;
  ChannelResult out = ChannelResult::kWouldBlock;
  auto attempt = [&]() -> bool {
    for (;;) {
      MpmcQueue<>::Claim claim;
      const RingResult r = claim_once(e, &claim);
      if (r == RingResult::kFull) return false;
      if (r != RingResult::kOk) {
        out = ChannelResult::kCorrupt;
        return true;
      }
      if (!message.empty()) std::memcpy(claim.buffer.data(), message.data(), message.size());
      // kFenced: a recovery skipped our claim (we were taken for dead): not delivered, try again.
      if (commit_claim(e, claim, message.size()) == RingResult::kOk) {
        e.seg->self()->sent.store(++e.sent, std::memory_order_relaxed);
        out = ChannelResult::kOk;
        return true;
      }
    }
  };
  if (attempt()) return out;
  if (timeout.count() <= 0) return ChannelResult::kWouldBlock;
  const std::uint64_t start = detail::monotonic_ns();
  const bool done = detail::wait_until(&e.seg->control()->space_wake, e.wait,
                                       detail::deadline_after(timeout), attempt,
                                       [&](std::uint64_t now) { producer_idle(e, now); });
  e.blocked_ns += detail::monotonic_ns() - start;
  e.seg->self()->blocked_ns.store(e.blocked_ns, std::memory_order_relaxed);
  return done ? out : ChannelResult::kTimedOut;
}

QueueLoan QueueProducer::make_loan(bool blocking, std::chrono::nanoseconds timeout) noexcept {
  QueueLoan loan;
  if (!impl_) return loan;
  QueueEndpoint& e = *impl_;
  if (e.loan_out != nullptr) {
    loan.result_ = ChannelResult::kWouldBlock;  // one loan at a time
    return loan;
  }
  MpmcQueue<>::Claim claim;
  ChannelResult out = ChannelResult::kWouldBlock;
  auto attempt = [&]() -> bool {
    const RingResult r = claim_once(e, &claim);
    if (r == RingResult::kFull) return false;
    out = r == RingResult::kOk ? ChannelResult::kOk : ChannelResult::kCorrupt;
    return true;
  };
  bool done = attempt();
  if (!done && blocking && timeout.count() > 0) {
    const std::uint64_t start = detail::monotonic_ns();
    done = detail::wait_until(&e.seg->control()->space_wake, e.wait, detail::deadline_after(timeout),
                              attempt, [&](std::uint64_t now) { producer_idle(e, now); });
    e.blocked_ns += detail::monotonic_ns() - start;
    e.seg->self()->blocked_ns.store(e.blocked_ns, std::memory_order_relaxed);
    if (!done) out = ChannelResult::kTimedOut;
  }
  loan.result_ = out;
  if (out == ChannelResult::kOk) {
    loan.owner_ = &e;
    loan.ticket_ = claim.ticket;
    loan.buffer_ = claim.buffer;
    e.loan_out = &loan;  // kept current by QueueLoan's move
  }
  return loan;
}

QueueLoan QueueProducer::try_loan() noexcept { return make_loan(false, {}); }
QueueLoan QueueProducer::loan(std::chrono::nanoseconds timeout) noexcept {
  return make_loan(true, timeout);
}

ChannelResult QueueProducer::publish(QueueLoan& loan, std::size_t bytes) noexcept {
  if (!impl_ || loan.owner_ != impl_.get() || loan.result_ != ChannelResult::kOk) {
    return ChannelResult::kClosed;
  }
  if (bytes > loan.buffer_.size()) return ChannelResult::kTooLarge;
  QueueEndpoint& e = *impl_;
  MpmcQueue<>::Claim claim{RingResult::kOk, loan.ticket_, loan.buffer_};
  const RingResult r = commit_claim(e, claim, bytes);
  loan.owner_ = nullptr;
  loan.result_ = ChannelResult::kClosed;
  loan.buffer_ = {};
  e.loan_out = nullptr;
  if (r != RingResult::kOk) return ChannelResult::kCorrupt;
  e.seg->self()->sent.store(++e.sent, std::memory_order_relaxed);
  return ChannelResult::kOk;
}

void QueueProducer::abandon(QueueLoan& loan) noexcept {
  if (impl_ && loan.owner_ == impl_.get()) detail::abandon_queue_loan(*impl_, loan);
}

// --- QueueConsumer ---------------------------------------------------------------------------------

QueueConsumer::QueueConsumer() = default;
QueueConsumer::QueueConsumer(QueueConsumer&&) noexcept = default;
QueueConsumer& QueueConsumer::operator=(QueueConsumer&& other) noexcept {
  if (this != &other) {
    close();
    impl_ = std::move(other.impl_);
  }
  return *this;
}
QueueConsumer::~QueueConsumer() { close(); }

absl::StatusOr<QueueConsumer> QueueConsumer::open(std::string_view name,
                                                  const QueueOptions& options) {
  auto e = detail::open_endpoint(name, options, PeerRole::kConsumer);
  if (!e.ok()) return e.status();
  QueueConsumer c;
  c.impl_ = *std::move(e);
  return c;
}

void QueueConsumer::close() noexcept {
  if (impl_ && impl_->view_out != nullptr) {
    // An unreleased view: leave the claim recorded and hand the slot to the recovery as if this
    // consumer had died, so another consumer receives the item (redelivered). The QueueView
    // becomes inert (release() says kClosed) and must not be read (the segment is unmapped).
    if (impl_->seg->owned_here()) impl_->seg->leave_to_recovery();
    QueueView& view = *impl_->view_out;
    view.owner_ = nullptr;
    view.result_ = ChannelResult::kClosed;
    view.orphaned_ = true;
    impl_->view_out = nullptr;
  }
  impl_.reset();
}

std::uint64_t QueueConsumer::max_message() const noexcept { return impl_ ? impl_->q->slot_size() : 0; }
std::uint64_t QueueConsumer::capacity() const noexcept { return impl_ ? impl_->q->capacity() : 0; }
std::uint64_t QueueConsumer::size_approx() const noexcept { return impl_ ? impl_->q->size_approx() : 0; }
PeerStats QueueConsumer::stats() const noexcept {
  return impl_ ? detail::peer_stats(*impl_->seg) : PeerStats{};
}

namespace {

// The item of ticket `t` in place (an adopted claim), validated against the ring's geometry.
bool view_of_ticket(QueueEndpoint& e, std::uint64_t t, std::span<const std::byte>* data) {
  const std::uint64_t cap = e.q->capacity();
  const std::uint64_t slot_size = e.q->slot_size();
  const std::uint64_t stride = align_up(sizeof(MpmcSlotHeader) + slot_size, kMpmcSlotAlignment);
  const std::uint64_t offset = sizeof(MpmcControl) + (t & (cap - 1)) * stride;
  if (offset + stride > e.seg->info().ring_bytes) return false;
  auto* slot = reinterpret_cast<MpmcSlotHeader*>(e.seg->ring() + offset);
  // SYNC(mpmc_full): pairs with the producer's release CAS to full(t) in commit().
  if (slot->sequence.load(std::memory_order_acquire) != mpmc::full_seq(t)) return false;
  const std::uint32_t length = slot->length;
  const std::size_t n = length <= slot_size ? length : slot_size;
  *data = std::span<const std::byte>(reinterpret_cast<const std::byte*>(slot) + sizeof(MpmcSlotHeader), n);
  return true;
}

}  // namespace

bool QueueConsumer::recover(QueueView* view) noexcept {
  if (!impl_ || impl_->view_out != nullptr) return false;
  QueueEndpoint& e = *impl_;
  e.last_recovery_ns = detail::monotonic_ns();
  const detail::RecoveryResult r = detail::try_recover(e, true);
  if (!r.adopted) return false;
  std::span<const std::byte> data;
  if (!view_of_ticket(e, r.ticket, &data)) {
    // Cannot happen with honest peers (the slot was full(t) under the lock); give the claim up.
    e.seg->self()->op_state.store(static_cast<std::uint32_t>(PeerOp::kIdle), std::memory_order_release);
    return false;
  }
  QueueView v;
  v.owner_ = &e;
  v.result_ = ChannelResult::kOk;
  v.ticket_ = r.ticket;
  v.redelivered_ = true;
  v.data_ = data;
  e.view_out = &v;  // kept current by QueueView's move
  if (view != nullptr) {
    *view = std::move(v);
  }
  return true;
}

QueueView QueueConsumer::take(bool blocking, std::chrono::nanoseconds timeout) noexcept {
  QueueView view;
  if (!impl_) return view;
  QueueEndpoint& e = *impl_;
  if (e.view_out != nullptr) {
    view.result_ = ChannelResult::kWouldBlock;  // one view at a time
    return view;
  }
  PeerSlot* me = e.seg->self();
  ChannelResult out = ChannelResult::kWouldBlock;
  auto attempt = [&]() -> bool {
    if (e.seg->control()->misc.recovery_hint.load(std::memory_order_relaxed) != 0 &&
        detail::monotonic_ns() - e.last_recovery_ns >= detail::kStalledRecoveryIntervalNs) {
      if (recover(&view)) {
        out = ChannelResult::kOk;
        return true;
      }
    }
    me->op_state.store(static_cast<std::uint32_t>(PeerOp::kClaiming), std::memory_order_seq_cst);
    const MpmcQueue<>::Claim claim = e.q->try_claim_read();
    if (claim.result != RingResult::kOk) {
      me->op_state.store(static_cast<std::uint32_t>(PeerOp::kIdle), std::memory_order_release);
      if (claim.result == RingResult::kEmpty) return false;
      out = ChannelResult::kCorrupt;
      return true;
    }
    me->op_ticket.store(claim.ticket, std::memory_order_relaxed);
    me->op_state.store(static_cast<std::uint32_t>(PeerOp::kClaimed), std::memory_order_seq_cst);
    view.owner_ = &e;
    view.result_ = ChannelResult::kOk;
    view.ticket_ = claim.ticket;
    view.redelivered_ = false;
    view.data_ = claim.buffer;
    e.view_out = &view;  // kept current by QueueView's move
    out = ChannelResult::kOk;
    return true;
  };
  auto idle = [&](std::uint64_t now) {
    e.seg->touch(now);
    const bool stalled = e.q->stalled_producer_ticket().has_value() ||
                         e.seg->control()->misc.recovery_hint.load(std::memory_order_relaxed) != 0;
    const std::uint64_t interval =
        stalled ? detail::kStalledRecoveryIntervalNs : detail::kIdleRecoveryIntervalNs;
    if (now - e.last_recovery_ns < interval) return;
    QueueView adopted;
    if (recover(&adopted)) {
      view = std::move(adopted);
      out = ChannelResult::kOk;
    }
  };
  bool done = attempt();
  if (!done && blocking && timeout.count() > 0) {
    const std::uint64_t start = detail::monotonic_ns();
    done = detail::wait_until(&e.seg->control()->data_wake, e.wait, detail::deadline_after(timeout),
                              [&]() { return out == ChannelResult::kOk || attempt(); }, idle);
    e.blocked_ns += detail::monotonic_ns() - start;
    me->blocked_ns.store(e.blocked_ns, std::memory_order_relaxed);
    // The idle hook may have adopted an item just as the deadline passed: it is ours to deliver
    // (dropping the view here would release, i.e. consume, it unseen).
    if (!done && out != ChannelResult::kOk) out = ChannelResult::kTimedOut;
  } else if (!done && !blocking) {
    // try_: a stalled queue still gets its recovery, at the stalled rate.
    idle(detail::monotonic_ns());
  }
  if (out != ChannelResult::kOk) {
    view = QueueView();
    view.result_ = out;
  }
  return view;
}

QueueView QueueConsumer::try_receive_view() noexcept { return take(false, {}); }
QueueView QueueConsumer::receive_view(std::chrono::nanoseconds timeout) noexcept {
  return take(true, timeout);
}

ChannelResult QueueConsumer::receive(std::span<std::byte> out, std::size_t* bytes,
                                     std::chrono::nanoseconds timeout) noexcept {
  if (!impl_) return ChannelResult::kClosed;
  if (out.size() < impl_->q->slot_size()) return ChannelResult::kTooLarge;
  const std::uint64_t deadline = detail::deadline_after(timeout);
  for (;;) {
    const std::uint64_t now = detail::monotonic_ns();
    const auto left = std::chrono::nanoseconds(deadline > now ? deadline - now : 0);
    QueueView view = take(timeout.count() > 0, left);
    if (!view.ok()) return view.result();
    const std::span<const std::byte> data = view.data();
    if (!data.empty()) std::memcpy(out.data(), data.data(), data.size());
    if (bytes != nullptr) *bytes = data.size();
    // kCorrupt here means the slot was taken from us while we copied: the copy is void, go again.
    if (view.release() == ChannelResult::kOk) return ChannelResult::kOk;
  }
}

ChannelResult QueueConsumer::try_receive(std::span<std::byte> out, std::size_t* bytes) noexcept {
  return receive(out, bytes, std::chrono::nanoseconds(0));
}

std::size_t QueueConsumer::poll(const std::function<void(std::span<const std::byte>)>& handler,
                                std::size_t max) noexcept {
  std::size_t n = 0;
  while (n < max) {
    QueueView view = take(false, {});
    if (!view.ok()) break;
    handler(view.data());
    view.release();
    ++n;
  }
  return n;
}

}  // namespace shmring
