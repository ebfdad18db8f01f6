// Topic channels: a BroadcastRing in a channel segment, plus registry, waiting and eviction.
#include "shmring/transport/topic.h"

#include <algorithm>
#include <optional>
#include <utility>
#include <vector>

#include "channel_segment.h"
#include "shmring/queue/broadcast_ring.h"
#include "shmring/queue/detail/atomic_words.h"
#include "wait.h"

namespace shmring {
namespace detail {

struct TopicEndpoint {
  std::unique_ptr<ChannelSegment> seg;
  std::optional<BroadcastRing> ring;      // publisher; subscribers use it only to evict dead peers
  std::optional<BroadcastReader> reader;  // subscriber
  WaitOptions wait;
  bool lossless = false;
  std::uint64_t sent = 0;
  std::uint64_t received = 0;
  std::uint64_t blocked_ns = 0;
  std::uint64_t evictions = 0;
  std::uint64_t last_check_ns = 0;
  std::uint64_t dead_check_ns = 5'000'000;
  std::uint64_t evict_after_ns = 0;
  std::uint64_t evict_lag = 0;        // bytes; 0: never
  std::uint64_t next_lag_check = 0;   // ring position at which to look at the lags again
  std::vector<std::byte> scratch;
  // The one loan (publisher) or view (subscriber) out, so that closing the endpoint can make it
  // inert; the loan or view keeps this pointer current when it is moved.
  TopicLoan* loan_out = nullptr;
  TopicView* view_out = nullptr;
};

namespace {

constexpr std::uint64_t kDefaultTopicCapacity = 1 << 20;
constexpr std::uint32_t kDefaultTopicPeers = 64;

std::uint64_t default_max_message(std::uint64_t capacity) {
  const std::uint64_t limit = BroadcastRing::max_record_limit(capacity);
  return std::min<std::uint64_t>(64 * 1024, limit == 0 ? 1 : limit);
}

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
  const bool lossless = options.lossless;
  const std::uint32_t readers = options.max_peers != 0 ? options.max_peers : kDefaultTopicPeers;
  auto ring_options = [lossless, readers](std::uint64_t capacity, std::uint64_t max_message) {
    BroadcastRing::Options o;
    o.capacity = capacity;
    o.max_record = max_message;
    o.lossless = lossless;
    o.max_readers = lossless ? std::min<std::uint32_t>(readers, kMaxBroadcastReaders) : 0;
    return o;
  };
  spec.ring_bytes = [ring_options](std::uint64_t capacity, std::uint64_t max_message) -> std::uint64_t {
    if (!is_power_of_two(capacity) || capacity < BroadcastRing::kMinCapacity || max_message == 0 ||
        max_message > BroadcastRing::max_record_limit(capacity)) {
      return 0;
    }
    return BroadcastRing::required_bytes(ring_options(capacity, max_message));
  };
  spec.init_ring = [ring_options](void* ring, std::size_t bytes, std::uint64_t capacity,
                                  std::uint64_t max_message) -> absl::Status {
    return BroadcastRing::create(ring, bytes, ring_options(capacity, max_message)).status();
  };
  return spec;
}


// Under the lock: dead peers are removed; a dead lossless subscriber's cursor slot is evicted so it
// no longer holds the publisher back.
void recover_locked(TopicEndpoint& e) {
  ChannelSegment& seg = *e.seg;
  seg.mark_dead_locked();
  PeerSlot* slots = seg.peers();
  for (std::uint32_t i = 0; i < seg.info().max_peers; ++i) {
    PeerSlot& s = slots[i];
    if (state_of(s) != PeerState::kDeadPending) continue;
    if (role_of(s) == PeerRole::kSubscriber && (s.flags.load(std::memory_order_relaxed) & 1) != 0 &&
        e.ring.has_value()) {
      e.ring->evict_reader(s.aux.load(std::memory_order_relaxed),
                           s.token.load(std::memory_order_relaxed));
    }
    seg.free_slot_locked(s);
  }
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
    if (v.position == *oldest && ring.evict_reader(i, v.owner) == RingResult::kOk) ++n;
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
    switch (attempt()) {
      case RingResult::kOk:
        out = ChannelResult::kOk;
        return true;
      case RingResult::kFull:
        return false;
      case RingResult::kTooLarge:
        out = ChannelResult::kTooLarge;
        return true;
      default:
        out = ChannelResult::kCorrupt;
        return true;
    }
  };
  if (try_once()) return out;
  const std::uint64_t start = monotonic_ns();
  std::uint64_t held_since = start;
  auto idle = [&](std::uint64_t now) {
    e.seg->touch(now);
    if (now - e.last_check_ns >= e.dead_check_ns && e.seg->lock_for(0)) {
      e.last_check_ns = now;
      recover_locked(e);
      e.seg->unlock();
    }
    if (e.evict_after_ns != 0 && now - held_since >= e.evict_after_ns) {
      evict_slowest(e);
      held_since = now;
    }
    evict_laggards(e, /*now=*/true);  // held back: whoever holds it lags by about the ring
  };
  // Even a try_ call gets one look for dead subscribers (rate-limited), so a dead one cannot hold
  // a publisher that only ever polls.
  idle(start);
  if (try_once()) return out;
  if (timeout.count() <= 0) return ChannelResult::kWouldBlock;
  // Sleep no longer than the dead-subscriber check period, so that bound holds while parked.
  const auto slice =
      static_cast<std::int64_t>(std::clamp<std::uint64_t>(e.dead_check_ns, 100'000, kParkSliceNs));
  const bool done = wait_until(&e.seg->control()->space_wake, e.wait, deadline_after(timeout),
                               try_once, idle, slice);
  e.blocked_ns += monotonic_ns() - start;
  e.seg->self()->blocked_ns.store(e.blocked_ns, std::memory_order_relaxed);
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
  PeerSlot* me = e.seg->read_only() ? nullptr : e.seg->self();
  auto try_once = [&]() -> bool {
    for (int lap = 0; lap < kMaxLapsInARow; ++lap) {
      switch (attempt()) {
        case RingResult::kOk:
          result = ChannelResult::kOk;
          return true;
        case RingResult::kEmpty:
          return false;
        case RingResult::kLapped:
          continue;  // jumped ahead; the loss is counted when the next record arrives
        case RingResult::kEvicted:
          result = ChannelResult::kEvicted;
          return true;
        case RingResult::kTooLarge:
          result = ChannelResult::kTooLarge;
          return true;
        default:
          if (!e.lossless) e.reader->resync();
          result = ChannelResult::kCorrupt;
          return true;
      }
    }
    return false;
  };
  if (try_once()) return result;
  if (timeout.count() <= 0) return ChannelResult::kWouldBlock;
  const std::uint64_t start = monotonic_ns();
  WakeBlock* wake = e.seg->read_only() ? nullptr : &e.seg->control()->data_wake;
  const bool done = wait_until(wake, e.wait, deadline_after(timeout), try_once,
                               [&](std::uint64_t now) {
                                 if (me != nullptr) e.seg->touch(now);
                               });
  e.blocked_ns += monotonic_ns() - start;
  if (me != nullptr) me->blocked_ns.store(e.blocked_ns, std::memory_order_relaxed);
  return done ? result : ChannelResult::kTimedOut;
}

// A message was received (copy, or a view released intact): counters, and a lossless publisher
// waiting for this space is woken.
void note_received(TopicEndpoint& e) {
  ++e.received;
  if (!e.seg->read_only()) {
    PeerSlot* me = e.seg->self();
    me->received.store(e.received, std::memory_order_relaxed);
    me->position.store(e.reader->position(), std::memory_order_relaxed);
    me->lost.store(e.reader->lost_records(), std::memory_order_relaxed);
  }
  if (e.lossless) notify(e.seg->control()->space_wake);
}

// The publisher's peer slot and parked subscribers learn of a published message; laggards are
// evicted if the publisher asked for it.
void note_sent(TopicEndpoint& e) {
  e.seg->self()->sent.store(++e.sent, std::memory_order_relaxed);
  notify(e.seg->control()->data_wake);
  if (e.evict_lag != 0) evict_laggards(e, /*now=*/false);
}

}  // namespace

void abandon_topic_loan(TopicEndpoint& e, TopicLoan& loan) noexcept {
  if (e.loan_out == &loan) {
    e.ring->abort();
    e.loan_out = nullptr;
  }
  loan.owner_ = nullptr;
  loan.result_ = ChannelResult::kClosed;
  loan.buffer_ = {};
}

ChannelResult finish_topic_view(TopicEndpoint& e, TopicView& view) noexcept {
  ChannelResult out = ChannelResult::kClosed;
  // A forked child's copy of a view must not move its parent's lossless cursor.
  if (e.view_out == &view && !e.seg->owned_here()) e.view_out = nullptr;
  if (e.view_out == &view) {
    e.view_out = nullptr;
    switch (e.reader->finish_view()) {
      case RingResult::kOk:
        note_received(e);
        out = ChannelResult::kOk;
        break;
      case RingResult::kLapped:
        if (!e.seg->read_only()) {
          e.seg->self()->lost.store(e.reader->lost_records(), std::memory_order_relaxed);
        }
        out = ChannelResult::kOverwritten;
        break;
      default:
        out = ChannelResult::kEvicted;
        break;
    }
  }
  view.owner_ = nullptr;
  view.result_ = ChannelResult::kClosed;
  view.data_ = {};
  return out;
}

}  // namespace detail

using detail::TopicEndpoint;

// --- TopicLoan / TopicView -------------------------------------------------------------------------

void TopicLoan::take_from(TopicLoan& other) noexcept {
  owner_ = std::exchange(other.owner_, nullptr);
  result_ = std::exchange(other.result_, ChannelResult::kClosed);
  buffer_ = std::exchange(other.buffer_, {});
  if (owner_ != nullptr && owner_->loan_out == &other) owner_->loan_out = this;
}
TopicLoan::TopicLoan(TopicLoan&& other) noexcept { take_from(other); }
TopicLoan& TopicLoan::operator=(TopicLoan&& other) noexcept {
  if (this != &other) {
    if (owner_ != nullptr) detail::abandon_topic_loan(*owner_, *this);
    take_from(other);
  }
  return *this;
}
TopicLoan::~TopicLoan() {
  if (owner_ != nullptr) detail::abandon_topic_loan(*owner_, *this);
}

void TopicView::take_from(TopicView& other) noexcept {
  owner_ = std::exchange(other.owner_, nullptr);
  result_ = std::exchange(other.result_, ChannelResult::kClosed);
  data_ = std::exchange(other.data_, {});
  orphaned_ = std::exchange(other.orphaned_, false);
  if (owner_ != nullptr && owner_->view_out == &other) owner_->view_out = this;
}
TopicView::TopicView(TopicView&& other) noexcept { take_from(other); }
TopicView& TopicView::operator=(TopicView&& other) noexcept {
  if (this != &other) {
    release();
    take_from(other);
  }
  return *this;
}
TopicView::~TopicView() { release(); }

ChannelResult TopicView::release() noexcept {
  if (owner_ == nullptr) {  // empty, released, or orphaned by TopicSubscriber::close()
    const bool orphaned = std::exchange(orphaned_, false);
    data_ = {};
    result_ = ChannelResult::kClosed;
    return orphaned ? ChannelResult::kClosed : ChannelResult::kOk;
  }
  return detail::finish_topic_view(*owner_, *this);
}

// --- TopicPublisher --------------------------------------------------------------------------------

TopicPublisher::TopicPublisher() = default;
TopicPublisher::TopicPublisher(TopicPublisher&&) noexcept = default;
TopicPublisher& TopicPublisher::operator=(TopicPublisher&& other) noexcept {
  if (this != &other) {
    close();
    impl_ = std::move(other.impl_);
  }
  return *this;
}
TopicPublisher::~TopicPublisher() { close(); }
void TopicPublisher::close() noexcept {
  if (impl_ && impl_->loan_out != nullptr) detail::abandon_topic_loan(*impl_, *impl_->loan_out);
  impl_.reset();
}

absl::StatusOr<TopicPublisher> TopicPublisher::open(std::string_view name,
                                                    const TopicOptions& options) {
  TopicOptions o = options;
  o.read_only = false;
  auto seg = detail::ChannelSegment::open(name, detail::topic_spec(o));
  if (!seg.ok()) return seg.status();
  auto e = std::make_unique<TopicEndpoint>();
  e->seg = *std::move(seg);
  e->wait = options.wait;
  e->lossless = (e->seg->info().flags & kChannelLossless) != 0;
  e->dead_check_ns = static_cast<std::uint64_t>(options.dead_check_interval.count()) * 1'000'000;
  e->evict_after_ns = static_cast<std::uint64_t>(options.evict_after.count()) * 1'000'000;
  e->evict_lag = e->lossless ? options.evict_lag : 0;
  absl::StatusOr<BroadcastRing> ring = BroadcastRing::attach(e->seg->ring(), e->seg->info().ring_bytes);
  if (!ring.ok()) return ring.status();
  e->ring.emplace(*std::move(ring));
  if (!e->seg->lock_for(options.open_timeout.count())) return e->seg->memory().status();
  detail::recover_locked(*e);
  const PeerSlot* slots = e->seg->peers();
  for (std::uint32_t i = 0; i < e->seg->info().max_peers; ++i) {
    if (detail::state_of(slots[i]) == PeerState::kActive &&
        detail::role_of(slots[i]) == PeerRole::kPublisher) {
      e->seg->unlock();
      return absl::FailedPreconditionError(detail::cat(
          "topic '", name, "' already has a live publisher (pid ",
          slots[i].pid.load(std::memory_order_relaxed), ")"));
    }
  }
  absl::Status s = e->seg->register_locked(PeerRole::kPublisher, 0);
  e->seg->unlock();
  if (!s.ok()) return s;
  // Resume after the last complete record (a previous publisher may have written since attach).
  ring = BroadcastRing::attach(e->seg->ring(), e->seg->info().ring_bytes);
  if (!ring.ok()) return ring.status();
  e->ring.emplace(*std::move(ring));
  e->next_lag_check = e->ring->tail_position();
  TopicPublisher p;
  p.impl_ = std::move(e);
  return p;
}

ChannelResult TopicPublisher::try_publish(std::span<const std::byte> message) noexcept {
  return publish(message, std::chrono::nanoseconds(0));
}

ChannelResult TopicPublisher::publish(std::span<const std::byte> message,
                                      std::chrono::nanoseconds timeout) noexcept {
  if (!impl_) return ChannelResult::kClosed;
  TopicEndpoint& e = *impl_;
  if (e.loan_out != nullptr) return ChannelResult::kWouldBlock;  // the loan's space comes first
  const ChannelResult r =
      detail::write_with_wait(e, timeout, [&] { return e.ring->try_write(message); });
  if (r == ChannelResult::kOk) detail::note_sent(e);
  return r;
}

TopicLoan TopicPublisher::try_loan(std::size_t max_bytes) noexcept {
  return loan(max_bytes, std::chrono::nanoseconds(0));
}

TopicLoan TopicPublisher::loan(std::size_t max_bytes, std::chrono::nanoseconds timeout) noexcept {
  TopicLoan loan;
  if (!impl_) return loan;
  TopicEndpoint& e = *impl_;
  if (e.loan_out != nullptr) {
    loan.result_ = ChannelResult::kWouldBlock;  // one loan at a time
    return loan;
  }
  const std::size_t bytes = max_bytes != 0 ? max_bytes : e.ring->max_record();
  BroadcastRing::Claim claim;
  loan.result_ = detail::write_with_wait(e, timeout, [&] {
    claim = e.ring->try_claim(bytes);
    return claim.result;
  });
  if (loan.result_ == ChannelResult::kOk) {
    loan.owner_ = &e;
    loan.buffer_ = claim.buffer;
    e.loan_out = &loan;  // kept current by TopicLoan's move
  }
  return loan;
}

ChannelResult TopicPublisher::publish(TopicLoan& loan, std::size_t bytes) noexcept {
  if (!impl_ || loan.owner_ != impl_.get() || !loan.ok()) return ChannelResult::kClosed;
  TopicEndpoint& e = *impl_;
  if (bytes > loan.buffer_.size()) return ChannelResult::kTooLarge;
  const RingResult r = e.ring->commit(bytes);
  e.loan_out = nullptr;
  loan.owner_ = nullptr;
  loan.result_ = ChannelResult::kClosed;
  loan.buffer_ = {};
  if (r != RingResult::kOk) return ChannelResult::kCorrupt;  // not reachable with a live loan
  detail::note_sent(e);
  return ChannelResult::kOk;
}

void TopicPublisher::abandon(TopicLoan& loan) noexcept {
  if (impl_ && loan.owner_ == impl_.get()) detail::abandon_topic_loan(*impl_, loan);
}

std::uint64_t TopicPublisher::max_message() const noexcept {
  return impl_ ? impl_->ring->max_record() : 0;
}
bool TopicPublisher::lossless() const noexcept { return impl_ && impl_->lossless; }
PeerStats TopicPublisher::stats() const noexcept {
  return impl_ ? detail::peer_stats(*impl_->seg) : PeerStats{};
}
std::uint64_t TopicPublisher::evictions() const noexcept { return impl_ ? impl_->evictions : 0; }

// --- TopicSubscriber -------------------------------------------------------------------------------

TopicSubscriber::TopicSubscriber() = default;
TopicSubscriber::TopicSubscriber(TopicSubscriber&&) noexcept = default;
TopicSubscriber& TopicSubscriber::operator=(TopicSubscriber&& other) noexcept {
  if (this != &other) {
    close();
    impl_ = std::move(other.impl_);
  }
  return *this;
}
TopicSubscriber::~TopicSubscriber() { close(); }

void TopicSubscriber::close() noexcept {
  if (!impl_) return;
  if (impl_->view_out != nullptr) {
    // The view becomes inert (release() says kClosed); the slot goes with the unregistration.
    TopicView& view = *impl_->view_out;
    view.owner_ = nullptr;
    view.result_ = ChannelResult::kClosed;
    view.orphaned_ = true;
    impl_->view_out = nullptr;
  }
  if (impl_->reader && impl_->reader->lossless() && impl_->seg->owned_here()) {
    impl_->reader->unregister();
  }
  impl_.reset();
}

absl::StatusOr<TopicSubscriber> TopicSubscriber::open(std::string_view name,
                                                      const TopicOptions& options) {
  auto seg = detail::ChannelSegment::open(name, detail::topic_spec(options));
  if (!seg.ok()) return seg.status();
  auto e = std::make_unique<TopicEndpoint>();
  e->seg = *std::move(seg);
  e->wait = options.wait;
  const detail::ChannelInfo& info = e->seg->info();
  e->lossless = (info.flags & kChannelLossless) != 0;
  e->scratch.resize(info.max_message);
  const BroadcastStart start = options.start_at_latest ? BroadcastStart::kLatest : BroadcastStart::kNext;
  if (options.read_only) {
    if (e->lossless) {
      return absl::FailedPreconditionError(detail::cat(
          "topic '", name, "': a lossless subscriber must map the channel read-write"));
    }
    absl::StatusOr<BroadcastReader> reader =
        BroadcastReader::attach(e->seg->ring(), info.ring_bytes, start);
    if (!reader.ok()) return reader.status();
    e->reader.emplace(*std::move(reader));
  } else {
    if (e->lossless) {
      absl::StatusOr<BroadcastRing> admin = BroadcastRing::attach(e->seg->ring(), info.ring_bytes);
      if (!admin.ok()) return admin.status();
      e->ring.emplace(*std::move(admin));
    }
    if (!e->seg->lock_for(options.open_timeout.count())) return e->seg->memory().status();
    detail::recover_locked(*e);
    absl::Status s = e->seg->register_locked(PeerRole::kSubscriber, e->lossless ? 1 : 0);
    if (s.ok()) {
      absl::StatusOr<BroadcastReader> reader =
          e->lossless ? BroadcastReader::register_reader(e->seg->ring(), info.ring_bytes,
                                                         e->seg->self_token())
                      : BroadcastReader::attach(e->seg->ring(), info.ring_bytes, start);
      if (reader.ok()) {
        e->reader.emplace(*std::move(reader));
        e->seg->self()->aux.store(e->reader->slot_index(), std::memory_order_relaxed);
        // Its lag (read_stats) counts from where it starts, not from the ring's first byte.
        e->seg->self()->position.store(e->reader->position(), std::memory_order_relaxed);
      } else {
        e->seg->unregister_locked();
        s = reader.status();
      }
    }
    e->seg->unlock();
    if (!s.ok()) return s;
    if (!e->lossless) {
      // A lossy subscriber never writes the ring: make a stray write fault instead of corrupting
      // what the publisher and the other subscribers read.
      e->seg->protect_ring_read_only();
    }
  }
  TopicSubscriber sub;
  sub.impl_ = std::move(e);
  return sub;
}

ChannelResult TopicSubscriber::receive(std::span<std::byte> out, std::size_t* bytes,
                                       std::chrono::nanoseconds timeout) noexcept {
  if (!impl_) return ChannelResult::kClosed;
  TopicEndpoint& e = *impl_;
  if (e.view_out != nullptr) return ChannelResult::kWouldBlock;
  std::size_t n = 0;
  const ChannelResult r =
      detail::read_with_wait(e, timeout, [&] { return e.reader->try_read(out, &n); });
  if (r == ChannelResult::kOk) detail::note_received(e);
  if ((r == ChannelResult::kOk || r == ChannelResult::kTooLarge) && bytes != nullptr) *bytes = n;
  return r;
}

ChannelResult TopicSubscriber::try_receive(std::span<std::byte> out, std::size_t* bytes) noexcept {
  return receive(out, bytes, std::chrono::nanoseconds(0));
}

TopicView TopicSubscriber::take_view(std::chrono::nanoseconds timeout) noexcept {
  TopicView view;
  if (!impl_) return view;
  TopicEndpoint& e = *impl_;
  if (e.view_out != nullptr) {
    view.result_ = ChannelResult::kWouldBlock;  // one view at a time
    return view;
  }
  std::span<const std::byte> data;
  view.result_ = detail::read_with_wait(e, timeout, [&] { return e.reader->try_view(&data); });
  if (view.result_ == ChannelResult::kOk) {
    view.owner_ = &e;
    view.data_ = data;
    e.view_out = &view;  // kept current by TopicView's move
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
  if (!impl_) return 0;
  std::size_t n = 0;
  if (impl_->lossless) {
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
    if (try_receive(impl_->scratch, &bytes) != ChannelResult::kOk) break;
    handler(std::span<const std::byte>(impl_->scratch.data(), bytes));
    ++n;
  }
  return n;
}

std::uint64_t TopicSubscriber::lost() const noexcept {
  return impl_ ? impl_->reader->lost_records() : 0;
}
std::uint64_t TopicSubscriber::received() const noexcept { return impl_ ? impl_->received : 0; }
std::uint64_t TopicSubscriber::max_message() const noexcept {
  return impl_ ? impl_->reader->max_record() : 0;
}
bool TopicSubscriber::lossless() const noexcept { return impl_ && impl_->lossless; }
PeerStats TopicSubscriber::stats() const noexcept {
  return impl_ && !impl_->seg->read_only() ? detail::peer_stats(*impl_->seg) : PeerStats{};
}

}  // namespace shmring
