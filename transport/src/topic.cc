// Topic channels: a BroadcastRing in a channel segment, plus registry, waiting and eviction.
#include "shmring/transport/topic.h"

#include <algorithm>
#include <optional>
#include <utility>
#include <vector>

#include "endpoint.h"
#include "shmring/queue/broadcast_ring.h"
#include "shmring/queue/detail/atomic_words.h"
#include "wait.h"

namespace shmring {
namespace detail {

struct TopicEndpoint final : Endpoint {
  std::optional<BroadcastRing> ring;      // publisher; subscribers use it only to evict dead peers
  std::optional<BroadcastReader> reader;  // subscriber
  PeerRole role = PeerRole::kNone;
  bool lossless = false;
  bool read_only = false;                 // a read-only subscriber: no peer slot, no lock
  BroadcastStart start = BroadcastStart::kNext;
  std::uint64_t sent = 0;
  std::uint64_t received = 0;
  std::uint64_t evictions = 0;
  std::uint64_t last_check_ns = 0;
  // Lossless publisher: since when the subscribers have held it back (0: not held back). Kept
  // across calls, so evict_after and the dead-subscriber check bound the time a subscriber holds
  // the publisher, whatever calls the publisher makes meanwhile; cleared by a write that succeeds.
  std::uint64_t held_back_since_ns = 0;
  std::uint64_t dead_check_ns = 5'000'000;
  std::uint64_t evict_after_ns = 0;
  std::uint64_t evict_lag = 0;        // bytes; 0: never
  std::uint64_t next_lag_check = 0;   // ring position at which to look at the lags again
  std::vector<std::byte> scratch;

  ~TopicEndpoint() override {
    // Gives a lossless reader slot back (a forked child's copy leaves its parent's alone).
    if (reader && reader->lossless() && seg && seg->owned_here()) reader->unregister();
  }
  absl::Status attach_ring() override;
  void recover_locked() override;
  // A held-back lossless publisher with evict_after: when the slowest subscriber is due to go.
  std::uint64_t wake_deadline_ns() const noexcept override {
    if (role != PeerRole::kPublisher || !lossless || evict_after_ns == 0 || held_back_since_ns == 0) return 0;
    return held_back_since_ns + evict_after_ns;
  }
  absl::Status registered_locked() override;
  absl::Status opened() override;
  ChannelResult end_lease(Lease& lease) noexcept override;
  // close() with a view out: nothing to hand back (the reader slot goes with the unregistration).
  void orphan_lease(Lease& lease) noexcept override {
    if (role == PeerRole::kPublisher) end_lease(lease);
  }
};

namespace {

constexpr std::uint64_t kDefaultTopicCapacity = 1 << 20;
constexpr std::uint32_t kDefaultTopicPeers = 64;

std::uint64_t default_max_message(std::uint64_t capacity) {
  const std::uint64_t limit = BroadcastRing::max_record_limit(capacity);
  return std::min<std::uint64_t>(64 * 1024, limit == 0 ? 1 : limit);
}

BroadcastRing::Options ring_options(std::uint64_t capacity, std::uint64_t max_message,
                                    const RingShape& shape) noexcept {
  BroadcastRing::Options o;
  o.capacity = capacity;
  o.max_record = max_message;
  o.lossless = shape.lossless;
  o.max_readers = shape.lossless ? shape.readers : 0;
  return o;
}

constexpr RingDescriptor kTopicRing{
    [](std::uint64_t capacity, std::uint64_t max_message, const RingShape& shape) noexcept
        -> std::uint64_t {
      if (!is_power_of_two(capacity) || capacity < BroadcastRing::kMinCapacity ||
          max_message == 0 || max_message > BroadcastRing::max_record_limit(capacity)) {
        return 0;
      }
      return BroadcastRing::required_bytes(ring_options(capacity, max_message, shape));
    },
    [](void* ring, std::size_t bytes, std::uint64_t capacity, std::uint64_t max_message,
       const RingShape& shape) -> absl::Status {
      return BroadcastRing::create(ring, bytes, ring_options(capacity, max_message, shape)).status();
    },
};

ChannelSpec topic_spec(const TopicOptions& options) {
  ChannelSpec spec;
  spec.kind = ChannelKind::kTopic;
  spec.flags = options.lossless ? kChannelLossless : 0;
  copy_common_options(options, &spec);
  spec.default_capacity = kDefaultTopicCapacity;
  spec.default_max_message =
      default_max_message(options.capacity != 0 ? options.capacity : kDefaultTopicCapacity);
  spec.default_max_peers = kDefaultTopicPeers;
  spec.read_only = options.read_only;
  spec.ring = &kTopicRing;
  spec.shape.lossless = options.lossless;
  spec.shape.readers = std::min<std::uint32_t>(
      options.max_peers != 0 ? options.max_peers : kDefaultTopicPeers, kMaxBroadcastReaders);
  return spec;
}


// Calls visit(index, slot view) for every lossless reader slot held by a reader whose start is
// settled (racy views: the slots change under the publisher).
template <typename Visit>
void for_each_settled_reader(const BroadcastRing& ring, Visit&& visit) {
  for (std::uint32_t i = 0; i < ring.max_readers(); ++i) {
    const BroadcastRing::ReaderSlotView v = ring.reader_slot(i);
    if (v.owner == kReaderSlotFree || v.owner == kReaderSlotReclaiming || v.position == kReaderJoining) {
      continue;
    }
    visit(i, v);
  }
}

// An evicted subscriber's descriptor hears about it (WaitEvent::kEvicted) even while it sleeps.
void tell_evicted(TopicEndpoint& e, std::uint64_t owner_token) {
  PeerSlot* slots = e.seg->peers();
  for (std::uint32_t i = 0; i < e.seg->info().max_peers; ++i) {
    PeerSlot& s = slots[i];
    if (state_of(s) == PeerState::kActive && s.token.load(std::memory_order_relaxed) == owner_token) {
      signal_peer(*e.seg, s, WaitEvent::kEvicted);
      return;
    }
  }
}

void count_evictions(TopicEndpoint& e, std::uint64_t n) {
  if (n == 0) return;
  e.evictions += n;
  e.seg->control()->counters.evictions.fetch_add(n, std::memory_order_relaxed);
}

// Evicts the live lossless subscribers at the oldest position (the ones holding the publisher).
void evict_slowest(TopicEndpoint& e) {
  BroadcastRing& ring = *e.ring;
  const std::uint64_t tail = ring.tail_position();
  std::optional<std::uint64_t> oldest;
  for_each_settled_reader(ring, [&](std::uint32_t, const BroadcastRing::ReaderSlotView& v) {
    if (!oldest || tail - v.position > tail - *oldest) oldest = v.position;
  });
  if (!oldest) return;
  std::uint64_t n = 0;
  for_each_settled_reader(ring, [&](std::uint32_t i, const BroadcastRing::ReaderSlotView& v) {
    if (v.position == *oldest && ring.evict_reader(i, v.owner) == RingResult::kOk) {
      tell_evicted(e, v.owner);
      ++n;
    }
  });
  count_evictions(e, n);
}

// Evicts the live lossless subscribers that lag by more than evict_lag bytes. Runs after a publish
// once the tail passed next_lag_check, and (`now`) whenever the publisher is held back. The
// interval leaves a laggard's lag room to be seen between evict_lag and the full ring:
// min(evict_lag / 4, (capacity - evict_lag) / 2), at least 64 bytes.
void evict_laggards(TopicEndpoint& e, bool now) {
  BroadcastRing& ring = *e.ring;
  const std::uint64_t tail = ring.tail_position();
  if (e.evict_lag == 0) return;
  if (!now && static_cast<std::int64_t>(tail - e.next_lag_check) < 0) return;
  const std::uint64_t room = ring.capacity() > e.evict_lag ? (ring.capacity() - e.evict_lag) / 2 : 0;
  e.next_lag_check = tail + std::max<std::uint64_t>(std::min(e.evict_lag / 4, room), 64);
  std::uint64_t n = 0;
  for_each_settled_reader(ring, [&](std::uint32_t i, const BroadcastRing::ReaderSlotView& v) {
    const std::uint64_t lag = tail - v.position;
    if (lag > e.evict_lag && lag <= ring.capacity() && ring.evict_reader(i, v.owner) == RingResult::kOk) {
      tell_evicted(e, v.owner);
      ++n;
    }
  });
  count_evictions(e, n);
}

// A publisher's write attempt (try_write or try_claim) repeated until it is done: a lossless
// publisher that finds no room looks for dead subscribers (rate-limited), evicts as TopicOptions
// say, and waits up to `timeout` on space_wake. kOk, kWouldBlock (timeout <= 0), kTimedOut,
// kTooLarge, kCorrupt.
template <typename Attempt>
ChannelResult write_with_wait(TopicEndpoint& e, std::chrono::nanoseconds timeout, Attempt&& attempt) {
  ChannelResult out = ChannelResult::kWouldBlock;
  auto try_once = [&]() -> bool {
    out = channel_result(attempt());
    return out != ChannelResult::kWouldBlock;
  };
  if (try_once()) {
    e.held_back_since_ns = 0;
    return out;
  }
  // Held back (lossless: no room). What follows runs only then: a full ring is the evidence that
  // a subscriber may be dead or stuck. Every check is measured from when the subscribers started
  // holding the publisher back, across calls.
  const std::uint64_t start = monotonic_ns();
  if (e.held_back_since_ns == 0) e.held_back_since_ns = start;
  auto idle = [&](std::uint64_t now) {
    e.seg->touch(now);
    if (now - e.held_back_since_ns >= e.dead_check_ns && now - e.last_check_ns >= e.dead_check_ns &&
        e.seg->lock_for(0)) {
      e.last_check_ns = now;
      e.recover_locked();
      e.seg->unlock();
    }
    if (e.evict_after_ns != 0 && now - e.held_back_since_ns >= e.evict_after_ns) {
      evict_slowest(e);
      e.held_back_since_ns = now;  // the next slowest gets its own evict_after
    }
    evict_laggards(e, /*now=*/true);  // held back: whoever holds it lags by about the ring
  };
  // Even a try_ call gets its look (at the rates above), so a dead or stuck subscriber cannot
  // hold a publisher that only ever polls.
  idle(start);
  if (try_once()) {
    e.held_back_since_ns = 0;
    return out;
  }
  if (timeout.count() <= 0) {
    // With a descriptor: re-armed (and a watched subscriber's death handled) before kWouldBlock.
    if (!e.attempt_before_blocking(try_once)) return ChannelResult::kWouldBlock;
    e.held_back_since_ns = 0;
    return out;
  }
  // Sleep no longer than the dead-subscriber check period, so that bound holds while parked.
  const auto slice =
      static_cast<std::int64_t>(std::clamp<std::uint64_t>(e.dead_check_ns, 100'000, kParkSliceNs));
  const bool done = e.wait_for(&e.seg->control()->space_wake, timeout, try_once, idle, slice);
  if (done) e.held_back_since_ns = 0;
  return done ? out : ChannelResult::kTimedOut;
}

// Consecutive laps a receive call rides out before it gives up for now (kWouldBlock).
constexpr int kMaxLapsInARow = 64;

// A subscriber's read attempt (try_read or try_view) repeated until it is done, waiting up to
// `timeout` on data_wake (a read_only subscriber sleeps in steps instead). kOk, kWouldBlock,
// kTimedOut, kTooLarge, kEvicted, kCorrupt.
template <typename Attempt>
ChannelResult read_with_wait(TopicEndpoint& e, std::chrono::nanoseconds timeout, Attempt&& attempt) {
  ChannelResult result = ChannelResult::kWouldBlock;
  auto try_once = [&]() -> bool {
    for (int lap = 0; lap < kMaxLapsInARow; ++lap) {
      const RingResult r = attempt();
      if (r == RingResult::kLapped) continue;  // jumped ahead; the loss is counted on the next record
      result = channel_result(r);
      if (result == ChannelResult::kCorrupt && !e.lossless) e.reader->resync();
      return result != ChannelResult::kWouldBlock;
    }
    result = ChannelResult::kWouldBlock;
    return false;
  };
  if (try_once()) return result;
  if (timeout.count() <= 0) {
    // With a descriptor: re-armed before kWouldBlock (SYNC(wait_fd)).
    return e.attempt_before_blocking(try_once) ? result : ChannelResult::kWouldBlock;
  }
  WakeBlock* wake = e.read_only ? nullptr : &e.seg->control()->data_wake;
  const bool done = e.wait_for(wake, timeout, try_once, [&](std::uint64_t now) {
    if (!e.read_only) e.seg->touch(now);
  });
  return done ? result : ChannelResult::kTimedOut;
}

// A message was received (copy, or a view released intact): counters, and a lossless publisher
// waiting for this space is woken.
void note_received(TopicEndpoint& e) {
  ++e.received;
  if (!e.read_only) {
    PeerSlot* me = e.seg->self();
    me->received.store(e.received, std::memory_order_relaxed);
    me->position.store(e.reader->position(), std::memory_order_relaxed);
    me->lost.store(e.reader->lost_records(), std::memory_order_relaxed);
  }
  if (e.lossless) notify_senders(*e.seg);
}

// The publisher's peer slot and parked subscribers learn of a published message; laggards are
// evicted if the publisher asked for it.
void note_sent(TopicEndpoint& e) {
  e.seg->self()->sent.store(++e.sent, std::memory_order_relaxed);
  notify_receivers(*e.seg);
  if (e.evict_lag != 0) evict_laggards(e, /*now=*/false);
}

}  // namespace

// --- TopicEndpoint: the pattern's hooks ------------------------------------------------------------

absl::Status TopicEndpoint::attach_ring() {
  const ChannelInfo& info = seg->info();
  lossless = (info.flags & kChannelLossless) != 0;
  if (role == PeerRole::kPublisher || lossless) {
    // The publisher writes through it; a lossless subscriber uses it to evict dead subscribers.
    absl::StatusOr<BroadcastRing> attached = BroadcastRing::attach(seg->ring(), info.ring_bytes);
    if (!attached.ok()) return attached.status();
    ring.emplace(*std::move(attached));
  }
  if (role == PeerRole::kSubscriber) {
    scratch.resize(info.max_message);
    if (read_only) {
      if (lossless) {
        return absl::FailedPreconditionError(cat(
            "topic '", info.name, "': a lossless subscriber must map the channel read-write"));
      }
      absl::StatusOr<BroadcastReader> attached =
          BroadcastReader::attach(seg->ring(), info.ring_bytes, start);
      if (!attached.ok()) return attached.status();
      reader.emplace(*std::move(attached));
    }
  }
  return absl::OkStatus();
}

// Under the lock: dead peers are removed; a dead lossless subscriber's cursor slot is evicted so it
// no longer holds the publisher back.
void TopicEndpoint::recover_locked() {
  seg->mark_dead_locked();
  PeerSlot* slots = seg->peers();
  for (std::uint32_t i = 0; i < seg->info().max_peers; ++i) {
    PeerSlot& s = slots[i];
    if (state_of(s) != PeerState::kDeadPending) continue;
    if (role_of(s) == PeerRole::kSubscriber && (s.peer_flags.load(std::memory_order_relaxed) & kPeerLosslessSubscriber) != 0 &&
        ring.has_value()) {
      ring->evict_reader(s.reader_slot.load(std::memory_order_relaxed),
                         s.token.load(std::memory_order_relaxed));
    }
    seg->free_slot_locked(s);
  }
}

absl::Status TopicEndpoint::registered_locked() {
  if (role != PeerRole::kSubscriber) return absl::OkStatus();
  const ChannelInfo& info = seg->info();
  absl::StatusOr<BroadcastReader> attached =
      lossless ? BroadcastReader::register_reader(seg->ring(), info.ring_bytes, seg->self_token())
               : BroadcastReader::attach(seg->ring(), info.ring_bytes, start);
  if (!attached.ok()) return attached.status();
  reader.emplace(*std::move(attached));
  seg->self()->reader_slot.store(reader->slot_index(), std::memory_order_relaxed);
  // Its lag (read_stats) counts from where it starts, not from the ring's first byte.
  seg->self()->position.store(reader->position(), std::memory_order_relaxed);
  return absl::OkStatus();
}

absl::Status TopicEndpoint::opened() {
  if (role == PeerRole::kPublisher) {
    // Resume after the last complete record (a previous publisher may have written since attach).
    absl::StatusOr<BroadcastRing> attached = BroadcastRing::attach(seg->ring(), seg->info().ring_bytes);
    if (!attached.ok()) return attached.status();
    ring.emplace(*std::move(attached));
    next_lag_check = ring->tail_position();
  } else if (!lossless && !read_only) {
    // A lossy subscriber never writes the ring: make a stray write fault instead of corrupting
    // what the publisher and the other subscribers read.
    seg->protect_ring_read_only();
  }
  return absl::OkStatus();
}

ChannelResult TopicEndpoint::end_lease(Lease&) noexcept {
  if (role == PeerRole::kPublisher) {  // a loan: subscribers never see it
    ring->abort();
    return ChannelResult::kOk;
  }
  switch (reader->finish_view()) {
    case RingResult::kOk:
      note_received(*this);
      return ChannelResult::kOk;
    case RingResult::kLapped:
      if (!read_only) seg->self()->lost.store(reader->lost_records(), std::memory_order_relaxed);
      return ChannelResult::kOverwritten;
    default:
      return ChannelResult::kEvicted;
  }
}

namespace {

absl::StatusOr<std::unique_ptr<Endpoint>> open_topic(std::string_view name, TopicOptions options,
                                                     PeerRole role) {
  if (role == PeerRole::kPublisher) options.read_only = false;
  auto e = std::make_unique<TopicEndpoint>();
  e->role = role;
  e->wait = options.wait;
  e->read_only = options.read_only;
  e->start = options.start_at_latest ? BroadcastStart::kLatest : BroadcastStart::kNext;
  e->dead_check_ns = static_cast<std::uint64_t>(options.dead_check_interval.count()) * 1'000'000;
  e->evict_after_ns = static_cast<std::uint64_t>(options.evict_after.count()) * 1'000'000;
  OpenPlan plan;
  plan.role = role;
  plan.pattern = "topic";
  plan.single_writer = role == PeerRole::kPublisher;
  plan.register_peer = !options.read_only;
  plan.open_timeout = options.open_timeout;
  // The peer slot's flag tells the recovery to evict a dead lossless subscriber's reader slot;
  // whether the topic is lossless is the creator's choice, known once the header is read.
  plan.peer_flags = options.lossless && role == PeerRole::kSubscriber ? kPeerLosslessSubscriber : 0;
  if (absl::Status s = e->open(name, topic_spec(options), plan); !s.ok()) return s;
  e->evict_lag = e->lossless ? options.evict_lag : 0;
  return e;
}

}  // namespace
}  // namespace detail

using detail::TopicEndpoint;
using detail::endpoint_as;

// --- TopicPublisher --------------------------------------------------------------------------------

absl::StatusOr<TopicPublisher> TopicPublisher::open(std::string_view name,
                                                    const TopicOptions& options) {
  auto e = detail::open_topic(name, options, PeerRole::kPublisher);
  if (!e.ok()) return e.status();
  return TopicPublisher(*std::move(e));
}

ChannelResult TopicPublisher::try_send(std::span<const std::byte> message) noexcept {
  return send(message, std::chrono::nanoseconds(0));
}

ChannelResult TopicPublisher::send(std::span<const std::byte> message,
                                   std::chrono::nanoseconds timeout) noexcept {
  TopicEndpoint* e = endpoint_as<TopicEndpoint>(impl_);
  if (e == nullptr) return ChannelResult::kClosed;
  if (e->lease_busy()) return ChannelResult::kWouldBlock;  // the loan's space comes first
  const ChannelResult r =
      detail::write_with_wait(*e, timeout, [&] { return e->ring->try_write(message); });
  if (r == ChannelResult::kOk) detail::note_sent(*e);
  return r;
}

namespace {

// Records in the channel that upstream message `at` is the one being sent (or, with nothing sent
// after it, the next one expected): the copy not in use is written in full, then made current,
// so a kill part-way leaves the old one. Relaxed/release suffice: only a later publisher reads it,
// after it attached under the segment lock and read the tail (acquire) that the sends published.
void write_upstream_mark(TopicEndpoint* e, const UpstreamPosition& at) {
  ChannelMisc& misc = e->seg->control()->misc;
  const std::uint32_t current = misc.upstream_current.load(std::memory_order_relaxed);
  const std::uint32_t next_index = current == 1 ? 1 : 0;
  UpstreamMark& mark = misc.upstream[next_index];
  mark.origin.store(at.origin, std::memory_order_relaxed);
  mark.incarnation.store(at.incarnation, std::memory_order_relaxed);
  mark.sequence.store(at.sequence, std::memory_order_relaxed);
  mark.ring_sequence.store(e->ring->next_sequence(), std::memory_order_relaxed);
  // SYNC(upstream_mark): pairs with the acquire load in upstream_resume() (a later publisher's).
  misc.upstream_current.store(next_index + 1, std::memory_order_release);
}

}  // namespace

ChannelResult TopicPublisher::try_send_from(const UpstreamPosition& from,
                                            std::span<const std::byte> message) noexcept {
  TopicEndpoint* e = endpoint_as<TopicEndpoint>(impl_);
  if (e == nullptr) return ChannelResult::kClosed;
  if (e->lease_busy()) return ChannelResult::kWouldBlock;
  // Written before the message: a publisher killed after the write but before the send leaves a
  // mark whose ring_sequence is the ring's next one, which upstream_resume() reads as "not sent".
  write_upstream_mark(e, from);
  return try_send(message);
}

void TopicPublisher::mark_upstream(const UpstreamPosition& next) noexcept {
  TopicEndpoint* e = endpoint_as<TopicEndpoint>(impl_);
  if (e == nullptr || e->lease_busy()) return;
  // Nothing is sent after it: the ring does not pass the mark's ring_sequence, so
  // upstream_resume() reads `next` as the one expected.
  write_upstream_mark(e, next);
}

UpstreamPosition TopicPublisher::upstream_resume() const noexcept {
  const TopicEndpoint* e = endpoint_as<TopicEndpoint>(impl_);
  if (e == nullptr) return {};
  const ChannelMisc& misc = e->seg->control()->misc;
  // SYNC(upstream_mark): pairs with the release store in write_upstream_mark().
  const std::uint32_t current = misc.upstream_current.load(std::memory_order_acquire);
  if (current != 1 && current != 2) return {};
  const UpstreamMark& mark = misc.upstream[current - 1];
  UpstreamPosition p;
  p.origin = mark.origin.load(std::memory_order_relaxed);
  p.incarnation = mark.incarnation.load(std::memory_order_relaxed);
  p.sequence = mark.sequence.load(std::memory_order_relaxed);
  // The marked message got the ring sequence it was promised if the ring has gone past it.
  if (e->ring->next_sequence() > mark.ring_sequence.load(std::memory_order_relaxed)) ++p.sequence;
  return p;
}

void TopicPublisher::count_upstream_lost(std::uint64_t n) noexcept {
  TopicEndpoint* e = endpoint_as<TopicEndpoint>(impl_);
  if (e == nullptr || n == 0) return;
  PeerSlot* me = e->seg->self();
  me->lost.store(me->lost.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

std::uint64_t TopicPublisher::next_sequence() const noexcept {
  const TopicEndpoint* e = endpoint_as<TopicEndpoint>(impl_);
  return e != nullptr ? e->ring->next_sequence() : 0;
}

TopicLoan TopicPublisher::try_loan(std::size_t max_bytes) noexcept {
  return loan(max_bytes, std::chrono::nanoseconds(0));
}

TopicLoan TopicPublisher::loan(std::size_t max_bytes, std::chrono::nanoseconds timeout) noexcept {
  TopicLoan loan;
  TopicEndpoint* e = endpoint_as<TopicEndpoint>(impl_);
  if (e == nullptr) return loan;
  if (e->lease_busy()) {
    detail::Endpoint::refuse(loan, ChannelResult::kWouldBlock);  // one loan at a time
    return loan;
  }
  const std::size_t bytes = max_bytes != 0 ? max_bytes : e->ring->max_record();
  BroadcastRing::Claim claim;
  const ChannelResult r = detail::write_with_wait(*e, timeout, [&] {
    claim = e->ring->try_claim(bytes);
    return claim.result;
  });
  if (r == ChannelResult::kOk) {
    e->lend(loan, claim.buffer);
  } else {
    detail::Endpoint::refuse(loan, r);
  }
  return loan;
}

ChannelResult TopicPublisher::publish(TopicLoan& loan, std::size_t bytes) noexcept {
  TopicEndpoint* e = endpoint_as<TopicEndpoint>(impl_);
  // A forked child's copy of the loan must not commit its parent's claim.
  if (e == nullptr || !detail::Endpoint::lent_by(loan, e) || !loan.ok() || !e->seg->owned_here()) {
    return ChannelResult::kClosed;
  }
  if (bytes > loan.buffer().size()) return ChannelResult::kTooLarge;
  const RingResult r = e->ring->commit(bytes);
  e->take_back(loan);
  if (r != RingResult::kOk) return ChannelResult::kCorrupt;  // not reachable with a live loan
  detail::note_sent(*e);
  return ChannelResult::kOk;
}

void TopicPublisher::abandon(TopicLoan& loan) noexcept {
  TopicEndpoint* e = endpoint_as<TopicEndpoint>(impl_);
  if (e != nullptr && detail::Endpoint::lent_by(loan, e)) e->settle(loan);
}

std::uint64_t TopicPublisher::max_message() const noexcept {
  const TopicEndpoint* e = endpoint_as<TopicEndpoint>(impl_);
  return e != nullptr ? e->ring->max_record() : 0;
}
bool TopicPublisher::lossless() const noexcept {
  const TopicEndpoint* e = endpoint_as<TopicEndpoint>(impl_);
  return e != nullptr && e->lossless;
}
std::uint64_t TopicPublisher::evictions() const noexcept {
  const TopicEndpoint* e = endpoint_as<TopicEndpoint>(impl_);
  return e != nullptr ? e->evictions : 0;
}

// --- TopicSubscriber -------------------------------------------------------------------------------

absl::StatusOr<TopicSubscriber> TopicSubscriber::open(std::string_view name,
                                                      const TopicOptions& options) {
  auto e = detail::open_topic(name, options, PeerRole::kSubscriber);
  if (!e.ok()) return e.status();
  return TopicSubscriber(*std::move(e));
}

ChannelResult TopicSubscriber::receive(std::span<std::byte> out, std::size_t* bytes,
                                       std::chrono::nanoseconds timeout) noexcept {
  TopicEndpoint* e = endpoint_as<TopicEndpoint>(impl_);
  if (e == nullptr) return ChannelResult::kClosed;
  if (e->lease_busy()) return ChannelResult::kWouldBlock;
  std::size_t n = 0;
  const ChannelResult r =
      detail::read_with_wait(*e, timeout, [&] { return e->reader->try_read(out, &n); });
  if (r == ChannelResult::kOk) detail::note_received(*e);
  if ((r == ChannelResult::kOk || r == ChannelResult::kTooLarge) && bytes != nullptr) *bytes = n;
  return r;
}

ChannelResult TopicSubscriber::try_receive(std::span<std::byte> out, std::size_t* bytes) noexcept {
  return receive(out, bytes, std::chrono::nanoseconds(0));
}

TopicView TopicSubscriber::take_view(std::chrono::nanoseconds timeout) noexcept {
  TopicView view;
  TopicEndpoint* e = endpoint_as<TopicEndpoint>(impl_);
  if (e == nullptr) return view;
  if (e->lease_busy()) {
    detail::Endpoint::refuse(view, ChannelResult::kWouldBlock);  // one view at a time
    return view;
  }
  std::span<const std::byte> data;
  const ChannelResult r =
      detail::read_with_wait(*e, timeout, [&] { return e->reader->try_view(&data); });
  if (r == ChannelResult::kOk) {
    e->lend(view, data);
    detail::Endpoint::set_details(view, e->reader->next_sequence() - 1, false);
  } else {
    detail::Endpoint::refuse(view, r);
  }
  return view;
}

TopicView TopicSubscriber::try_receive_view() noexcept {
  return take_view(std::chrono::nanoseconds(0));
}
TopicView TopicSubscriber::receive_view(std::chrono::nanoseconds timeout) noexcept {
  return take_view(timeout);
}

std::size_t TopicSubscriber::poll(const std::function<void(std::span<const std::byte>)>& handler,
                                  std::size_t max) noexcept {
  TopicEndpoint* e = endpoint_as<TopicEndpoint>(impl_);
  if (e == nullptr) return 0;
  std::size_t n = 0;
  if (e->lossless) {
    // In place: the publisher cannot overwrite a message before its view is released.
    while (n < max) {
      TopicView view = take_view(std::chrono::nanoseconds(0));
      if (!view.ok()) break;
      handler(view.data());
      if (view.release() != ChannelResult::kOk) break;
      ++n;
    }
    return n;
  }
  while (n < max) {
    std::size_t bytes = 0;
    if (try_receive(e->scratch, &bytes) != ChannelResult::kOk) break;
    handler(std::span<const std::byte>(e->scratch.data(), bytes));
    ++n;
  }
  return n;
}

std::uint64_t TopicSubscriber::lost() const noexcept {
  const TopicEndpoint* e = endpoint_as<TopicEndpoint>(impl_);
  return e != nullptr ? e->reader->lost_records() : 0;
}
std::uint64_t TopicSubscriber::last_sequence() const noexcept {
  const TopicEndpoint* e = endpoint_as<TopicEndpoint>(impl_);
  if (e == nullptr) return 0;
  const std::uint64_t next = e->reader->next_sequence();
  return next != 0 ? next - 1 : 0;
}
std::optional<std::uint64_t> TopicSubscriber::next_sequence() const noexcept {
  const TopicEndpoint* e = endpoint_as<TopicEndpoint>(impl_);
  if (e == nullptr || !e->reader->knows_next_sequence()) return std::nullopt;
  return e->reader->next_sequence();
}
std::uint64_t TopicSubscriber::received() const noexcept {
  const TopicEndpoint* e = endpoint_as<TopicEndpoint>(impl_);
  return e != nullptr ? e->received : 0;
}
std::uint64_t TopicSubscriber::max_message() const noexcept {
  const TopicEndpoint* e = endpoint_as<TopicEndpoint>(impl_);
  return e != nullptr ? e->reader->max_record() : 0;
}
bool TopicSubscriber::lossless() const noexcept {
  const TopicEndpoint* e = endpoint_as<TopicEndpoint>(impl_);
  return e != nullptr && e->lossless;
}

}  // namespace shmring
