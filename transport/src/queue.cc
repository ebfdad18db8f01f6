// Queue channels: MpmcQueue<> in a channel segment, blocking waits, and the claim records the
// dead-peer recovery (queue_recovery.h) relies on.
#include "shmring/transport/queue.h"

#include <algorithm>
#include <cstring>
#include <optional>
#include <utility>

#include "endpoint.h"
#include "queue_recovery.h"

namespace shmring {
namespace detail {

struct QueueEndpoint final : Endpoint {
  std::optional<MpmcQueue<>> q;
  PeerRole role = PeerRole::kNone;
  QueueRecovery recovery;
  std::uint64_t last_recovery_ns = 0;
  std::uint32_t empty_polls = 0;  // try_ calls that found nothing since the last evidence check
  // Progress for recovery_due: the first wait after an item moved starts the count again (a flag
  // on the fast path, the clock read only when a call starts to wait).
  bool progressed = false;
  std::uint64_t last_progress_ns = 0;
  void note_wait_start() {
    if (progressed) {
      last_progress_ns = monotonic_ns();
      progressed = false;
    }
  }
  std::uint64_t sent = 0;
  std::uint64_t received = 0;

  absl::Status attach_ring() override;
  void recover_locked() override { recovery.run_locked(*seg, *q, false); }
  ChannelResult end_lease(Lease& lease) noexcept override;
  void orphan_lease(Lease& lease) noexcept override;

  // Runs a recovery if the segment lock is free right now (never waits for it).
  RecoveryResult try_recover(bool can_adopt) {
    RecoveryResult res;
    if (!seg->lock_for(0)) return res;
    res = recovery.run_locked(*seg, *q, can_adopt);
    seg->unlock();
    return res;
  }
  PeerSlot& me() const { return *seg->self(); }
};

namespace {

constexpr std::uint64_t kStalledRecoveryIntervalNs = 1'000'000;   // a stall persists: 1 ms
constexpr std::uint64_t kIdleRecoveryIntervalNs = 20'000'000;     // a blocked call, nothing seen
// A consumer's try_ calls that find the queue empty look for evidence of a stall (shared-memory
// reads and a clock read, no system call) once per this many calls.
constexpr std::uint32_t kEmptyPollsPerEvidenceCheck = 64;

constexpr RingDescriptor kQueueRing{
    [](std::uint64_t capacity, std::uint64_t max_message, const RingShape&) noexcept -> std::uint64_t {
      if (!is_power_of_two(capacity) || capacity < 2 || max_message == 0) return 0;
      return MpmcQueue<>::required_bytes({capacity, max_message, 0});
    },
    [](void* ring, std::size_t bytes, std::uint64_t capacity, std::uint64_t max_message,
       const RingShape&) -> absl::Status {
      return MpmcQueue<>::create(ring, bytes, {capacity, max_message, 0}).status();
    },
};

ChannelSpec queue_spec(const QueueOptions& options) {
  ChannelSpec spec;
  spec.kind = ChannelKind::kQueue;
  spec.ring = &kQueueRing;
  copy_common_options(options, &spec);
  return spec;
}

absl::StatusOr<std::unique_ptr<Endpoint>> open_queue(std::string_view name,
                                                     const QueueOptions& options, PeerRole role) {
  auto e = std::make_unique<QueueEndpoint>();
  e->role = role;
  e->wait = options.wait;
  OpenPlan plan;
  plan.role = role;
  plan.pattern = "queue";
  plan.open_timeout = options.open_timeout;
  if (absl::Status s = e->open(name, queue_spec(options), plan); !s.ok()) return s;
  return std::unique_ptr<Endpoint>(std::move(e));
}

// Commit, then clear the claim (a kill in between leaves kClaimed with a committed slot: recovery's
// skip_stalled then answers kBusy and nothing is skipped).
RingResult commit_claim(QueueEndpoint& e, const MpmcQueue<>::Claim& claim, std::size_t bytes) {
  const RingResult r = e.q->commit(claim, bytes);
  clear_claim(e.me());
  if (r == RingResult::kOk) notify_receivers(*e.seg);
  return r;
}

void count_sent(QueueEndpoint& e) { e.me().sent.store(++e.sent, std::memory_order_relaxed); }

// Whether a waiting call is due a recovery now: once the endpoint has made no progress (no item
// sent or received) for `interval` (1 ms with evidence of a stall, else 20 ms), counted across
// calls, and then at that rate. Waits of a moment between items (a ping-pong, a burst) never run
// one; a consumer waiting in short timeouts behind a dead consumer's item does.
bool recovery_due(const QueueEndpoint& e, std::uint64_t now, bool stalled) {
  const std::uint64_t interval = stalled ? kStalledRecoveryIntervalNs : kIdleRecoveryIntervalNs;
  return now - std::max(e.last_progress_ns, e.last_recovery_ns) >= interval;
}

// A waiting producer's slow path: heartbeat, and a recovery when it has waited long enough
// (sooner when consumers look stuck on an item a lap behind).
void producer_idle(QueueEndpoint& e, std::uint64_t now) {
  e.seg->touch(now);
  if (!recovery_due(e, now, e.q->stalled_consumer_ticket().has_value())) return;
  e.last_recovery_ns = now;
  e.try_recover(false);
}

}  // namespace

absl::Status QueueEndpoint::attach_ring() {
  const ChannelInfo& info = seg->info();
  absl::StatusOr<MpmcQueue<>> attached = MpmcQueue<>::attach(seg->ring(), info.ring_bytes);
  if (!attached.ok()) return attached.status();
  if (attached->capacity() != info.capacity || attached->slot_size() != info.max_message) {
    return absl::DataLossError(cat("channel '", info.name, "': ring does not match its control block"));
  }
  q.emplace(*std::move(attached));
  return absl::OkStatus();
}

ChannelResult QueueEndpoint::end_lease(Lease& lease) noexcept {
  const MpmcQueue<>::Claim claim{RingResult::kOk, number_of(lease), bytes_of(lease)};
  if (role == PeerRole::kProducer) {  // a loan given up: consumers pass the slot
    q->abort(claim);
    clear_claim(me());
    notify_receivers(*seg);  // consumers may pass the aborted slot now
    return ChannelResult::kOk;
  }
  const RingResult r = q->release(claim);
  clear_claim(me());
  if (r != RingResult::kOk) return ChannelResult::kCorrupt;
  me().received.store(++received, std::memory_order_relaxed);
  notify_senders(*seg);
  return ChannelResult::kOk;
}

void QueueEndpoint::orphan_lease(Lease& lease) noexcept {
  if (role == PeerRole::kProducer) {
    end_lease(lease);
    return;
  }
  // An unreleased view: leave the claim recorded and hand the slot to the recovery as if this
  // consumer had died, so another consumer receives the item (redelivered).
  seg->leave_to_recovery();
}

}  // namespace detail

using detail::endpoint_as;
using detail::Endpoint;
using detail::QueueEndpoint;

// --- QueueProducer ---------------------------------------------------------------------------------

absl::StatusOr<QueueProducer> QueueProducer::open(std::string_view name,
                                                  const QueueOptions& options) {
  auto e = detail::open_queue(name, options, PeerRole::kProducer);
  if (!e.ok()) return e.status();
  return QueueProducer(*std::move(e));
}

std::uint64_t QueueProducer::max_message() const noexcept {
  const auto* e = endpoint_as<QueueEndpoint>(impl_);
  return e != nullptr ? e->q->slot_size() : 0;
}
std::uint64_t QueueProducer::capacity() const noexcept {
  const auto* e = endpoint_as<QueueEndpoint>(impl_);
  return e != nullptr ? e->q->capacity() : 0;
}
std::uint64_t QueueProducer::size_approx() const noexcept {
  const auto* e = endpoint_as<QueueEndpoint>(impl_);
  return e != nullptr ? e->q->size_approx() : 0;
}
ChannelResult QueueProducer::try_send(std::span<const std::byte> message) noexcept {
  return send(message, std::chrono::nanoseconds(0));
}

ChannelResult QueueProducer::send(std::span<const std::byte> message,
                                  std::chrono::nanoseconds timeout) noexcept {
  QueueEndpoint* e = endpoint_as<QueueEndpoint>(impl_);
  if (e == nullptr) return ChannelResult::kClosed;
  if (message.size() > e->q->slot_size()) return ChannelResult::kTooLarge;
  ChannelResult out = ChannelResult::kWouldBlock;
  auto attempt = [&]() -> bool {
    for (;;) {
      const MpmcQueue<>::Claim claim = detail::record_claim(e->me(), [&] { return e->q->try_claim(); });
      if (claim.result == RingResult::kFull) return false;
      if (claim.result != RingResult::kOk) {
        out = ChannelResult::kCorrupt;
        return true;
      }
      if (!message.empty()) std::memcpy(claim.buffer.data(), message.data(), message.size());
      // kFenced: a recovery skipped our claim (we were taken for dead): not delivered, try again.
      if (detail::commit_claim(*e, claim, message.size()) == RingResult::kOk) {
        detail::count_sent(*e);
        e->progressed = true;
        out = ChannelResult::kOk;
        return true;
      }
    }
  };
  if (attempt()) return out;
  if (timeout.count() <= 0) {
    // With a descriptor: re-armed before kWouldBlock (SYNC(wait_fd)).
    return e->attempt_before_blocking(attempt) ? out : ChannelResult::kWouldBlock;
  }
  e->note_wait_start();
  const bool done = e->wait_for(&e->seg->control()->space_wake, timeout, attempt,
                                [&](std::uint64_t now) { detail::producer_idle(*e, now); });
  return done ? out : ChannelResult::kTimedOut;
}

QueueLoan QueueProducer::make_loan(bool blocking, std::chrono::nanoseconds timeout) noexcept {
  QueueLoan loan;
  QueueEndpoint* e = endpoint_as<QueueEndpoint>(impl_);
  if (e == nullptr) return loan;
  if (e->lease_busy()) {
    Endpoint::refuse(loan, ChannelResult::kWouldBlock);  // one loan at a time
    return loan;
  }
  MpmcQueue<>::Claim claim;
  ChannelResult out = ChannelResult::kWouldBlock;
  auto attempt = [&]() -> bool {
    claim = detail::record_claim(e->me(), [&] { return e->q->try_claim(); });
    if (claim.result == RingResult::kFull) return false;
    out = claim.result == RingResult::kOk ? ChannelResult::kOk : ChannelResult::kCorrupt;
    e->progressed = true;
    return true;
  };
  bool done = attempt();
  if (!done && blocking && timeout.count() > 0) {
    e->note_wait_start();
    done = e->wait_for(&e->seg->control()->space_wake, timeout, attempt,
                       [&](std::uint64_t now) { detail::producer_idle(*e, now); });
    if (!done) out = ChannelResult::kTimedOut;
  } else if (!done) {
    done = e->attempt_before_blocking(attempt);  // with a descriptor: re-armed first
  }
  if (out != ChannelResult::kOk) {
    Endpoint::refuse(loan, out);
    return loan;
  }
  e->lend(loan, claim.buffer);
  Endpoint::set_details(loan, claim.ticket, false);
  return loan;
}

QueueLoan QueueProducer::try_loan() noexcept { return make_loan(false, {}); }
QueueLoan QueueProducer::loan(std::chrono::nanoseconds timeout) noexcept {
  return make_loan(true, timeout);
}

ChannelResult QueueProducer::publish(QueueLoan& loan, std::size_t bytes) noexcept {
  QueueEndpoint* e = endpoint_as<QueueEndpoint>(impl_);
  // A forked child's copy of the loan must not commit its parent's claim.
  if (e == nullptr || !Endpoint::lent_by(loan, e) || !loan.ok() || !e->seg->owned_here()) {
    return ChannelResult::kClosed;
  }
  if (bytes > loan.buffer().size()) return ChannelResult::kTooLarge;
  const MpmcQueue<>::Claim claim{RingResult::kOk, Endpoint::number_of(loan), loan.buffer()};
  const RingResult r = detail::commit_claim(*e, claim, bytes);
  e->take_back(loan);
  if (r != RingResult::kOk) return ChannelResult::kCorrupt;
  detail::count_sent(*e);
  return ChannelResult::kOk;
}

void QueueProducer::abandon(QueueLoan& loan) noexcept {
  QueueEndpoint* e = endpoint_as<QueueEndpoint>(impl_);
  if (e != nullptr && Endpoint::lent_by(loan, e)) e->settle(loan);
}

// --- QueueConsumer ---------------------------------------------------------------------------------

absl::StatusOr<QueueConsumer> QueueConsumer::open(std::string_view name,
                                                  const QueueOptions& options) {
  auto e = detail::open_queue(name, options, PeerRole::kConsumer);
  if (!e.ok()) return e.status();
  return QueueConsumer(*std::move(e));
}

std::uint64_t QueueConsumer::max_message() const noexcept {
  const auto* e = endpoint_as<QueueEndpoint>(impl_);
  return e != nullptr ? e->q->slot_size() : 0;
}
std::uint64_t QueueConsumer::capacity() const noexcept {
  const auto* e = endpoint_as<QueueEndpoint>(impl_);
  return e != nullptr ? e->q->capacity() : 0;
}
std::uint64_t QueueConsumer::size_approx() const noexcept {
  const auto* e = endpoint_as<QueueEndpoint>(impl_);
  return e != nullptr ? e->q->size_approx() : 0;
}
bool QueueConsumer::recover(QueueView* view) noexcept {
  QueueEndpoint* e = endpoint_as<QueueEndpoint>(impl_);
  if (e == nullptr || e->lease_busy()) return false;
  e->last_recovery_ns = monotonic_ns();
  const detail::RecoveryResult r = e->try_recover(true);
  if (!r.adopted) return false;
  std::span<const std::byte> data;
  if (e->q->view_of_ticket(r.ticket, &data) != RingResult::kOk) {
    // Cannot happen with honest peers (the slot was full(t) under the lock); give the claim up.
    detail::clear_claim(e->me());
    return false;
  }
  QueueView adopted;
  e->lend(adopted, data);
  Endpoint::set_details(adopted, r.ticket, true);
  if (view != nullptr) *view = std::move(adopted);
  return true;
}

QueueView QueueConsumer::take(bool blocking, std::chrono::nanoseconds timeout) noexcept {
  QueueView view;
  QueueEndpoint* e = endpoint_as<QueueEndpoint>(impl_);
  if (e == nullptr) return view;
  if (e->lease_busy()) {
    Endpoint::refuse(view, ChannelResult::kWouldBlock);  // one view at a time
    return view;
  }
  ChannelResult out = ChannelResult::kWouldBlock;
  // The dead-peer recovery, and the item of a dead consumer it hands this one, if any.
  auto try_adopt = [&]() -> bool {
    QueueView adopted;
    if (!recover(&adopted)) return false;
    view = std::move(adopted);
    out = ChannelResult::kOk;
    return true;
  };
  auto attempt = [&]() -> bool {
    if (e->seg->control()->misc.recovery_hint.load(std::memory_order_relaxed) != 0 &&
        monotonic_ns() - e->last_recovery_ns >= detail::kStalledRecoveryIntervalNs && try_adopt()) {
      return true;
    }
    const MpmcQueue<>::Claim claim =
        detail::record_claim(e->me(), [&] { return e->q->try_claim_read(); });
    if (claim.result != RingResult::kOk) {
      if (claim.result == RingResult::kEmpty) return false;
      out = ChannelResult::kCorrupt;
      return true;
    }
    e->lend(view, std::span<const std::byte>(claim.buffer));
    Endpoint::set_details(view, claim.ticket, false);
    e->progressed = true;
    out = ChannelResult::kOk;
    return true;
  };
  auto idle = [&](std::uint64_t now) {
    e->seg->touch(now);
    const bool stalled = e->q->stalled_producer_ticket().has_value() ||
                         e->seg->control()->misc.recovery_hint.load(std::memory_order_relaxed) != 0;
    if (detail::recovery_due(*e, now, stalled)) try_adopt();
  };
  bool done = attempt();
  if (!done && blocking && timeout.count() > 0) {
    e->note_wait_start();
    done = e->wait_for(&e->seg->control()->data_wake, timeout,
                       [&]() { return out == ChannelResult::kOk || attempt(); }, idle);
    // The idle hook may have adopted an item just as the deadline passed: it is ours to deliver
    // (dropping the view here would release, i.e. consume, it unseen).
    if (!done && out != ChannelResult::kOk) out = ChannelResult::kTimedOut;
  } else if (!done && ++e->empty_polls >= detail::kEmptyPollsPerEvidenceCheck) {
    // (A blocking call with a timeout <= 0 behaves as the try_ call, here too.)
    // try_: no recovery because the queue is empty for a moment; only on evidence of a stall (a
    // claim that does not move), rate-limited. The common path makes no system call.
    e->empty_polls = 0;
    const std::uint64_t now = monotonic_ns();
    if (now - e->last_recovery_ns >= detail::kStalledRecoveryIntervalNs &&
        e->recovery.stall_evident(*e->seg, *e->q, now)) {
      try_adopt();
    }
  }
  // With a descriptor: re-armed before kWouldBlock (SYNC(wait_fd)).
  if (!done && out == ChannelResult::kWouldBlock && !(blocking && timeout.count() > 0) &&
      e->attempt_before_blocking(attempt)) {
    done = true;
  }
  if (out != ChannelResult::kOk) {
    view = QueueView();
    Endpoint::refuse(view, out);
  }
  return view;
}

QueueView QueueConsumer::try_receive_view() noexcept { return take(false, {}); }
QueueView QueueConsumer::receive_view(std::chrono::nanoseconds timeout) noexcept {
  return take(true, timeout);
}

ChannelResult QueueConsumer::receive(std::span<std::byte> out, std::size_t* bytes,
                                     std::chrono::nanoseconds timeout) noexcept {
  if (!is_open()) return ChannelResult::kClosed;
  if (out.size() < max_message()) return ChannelResult::kTooLarge;
  const std::uint64_t deadline = detail::deadline_after(timeout);
  for (;;) {
    const std::uint64_t now = monotonic_ns();
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
