// Topic channels: a broadcast ring in a channel segment, plus registry, waiting and recovery. The
// ring's roles: BroadcastWriter (each publisher), BroadcastReader (each subscriber), and the admin
// handles any endpoint that may write the ring holds for the recovery: BroadcastReaderSlots (through
// TopicEviction, topic_eviction.h) and BroadcastPublishers (dead publishers' unfinished messages).
#include "shmring/transport/topic.h"

#include <algorithm>
#include <optional>
#include <utility>
#include <vector>

#include "endpoint.h"
#include "shmring/queue/broadcast_layout.h"
#include "shmring/queue/broadcast_publishers.h"
#include "shmring/queue/broadcast_reader.h"
#include "shmring/queue/broadcast_reader_slots.h"
#include "shmring/queue/broadcast_writer.h"
#include "shmring/queue/detail/atomic_words.h"
#include "topic_eviction.h"
#include "wait.h"

namespace shmring {
namespace detail {

struct TopicEndpoint final : Endpoint {
  std::optional<BroadcastWriter> writer;  // publisher
  std::optional<BroadcastReader> reader;  // subscriber
  // Endpoints that may write the ring (publishers, lossless subscribers): the recovery's handles.
  std::optional<TopicEviction> eviction;
  std::optional<BroadcastPublishers> publishers;
  PeerRole role = PeerRole::kNone;
  bool default_lossless = false;  // the creator's flag
  bool lossless = false;          // subscriber: its delivery
  bool read_only = false;         // a read-only subscriber: no peer slot, no lock
  bool ring_writable = true;      // false once a lossy subscriber mprotect()ed the ring
  TopicDelivery delivery = TopicDelivery::kDefault;  // as asked
  bool asked_lossless = false;                       // TopicOptions::lossless, as asked
  BroadcastStartAt start;
  std::uint64_t max_publishers = 0;  // as asked (0: any)
  std::uint64_t history = 0;         // as asked (0: any)
  std::uint64_t sent = 0;
  std::uint64_t received = 0;
  std::uint64_t last_check_ns = 0;
  // Since when the publisher has been held back (0: not held back). Kept across calls, so
  // evict_after and the dead-peer check bound the time it is held, whatever calls it makes
  // meanwhile; cleared by a write that succeeds.
  std::uint64_t held_back_since_ns = 0;
  // A lossless subscriber: since when it waits at a message claimed but not published (0: not).
  std::uint64_t stalled_since_ns = 0;
  std::uint64_t dead_check_ns = 5'000'000;
  std::uint64_t evict_after_ns = 0;
  std::uint64_t evict_lag = 0;
  BroadcastRecordInfo last;  // the message most recently returned
  std::vector<std::byte> scratch;

  ~TopicEndpoint() override {
    // Gives the ring's slots back (a forked child's copy leaves its parent's alone).
    if (!seg || !seg->owned_here()) return;
    if (reader && reader->lossless()) reader->unregister();
    if (writer) writer->detach();
  }
  absl::Status attach_ring() override;
  void recover_locked() override;
  // A held-back publisher with evict_after: when the slowest subscriber is due to go.
  std::uint64_t wake_deadline_ns() const noexcept override {
    if (role != PeerRole::kPublisher || evict_after_ns == 0 || held_back_since_ns == 0) return 0;
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
constexpr std::uint64_t kDefaultTopicMessage = 64 * 1024;
// With a history and no max_message: the message size the default capacity is sized for.
constexpr std::uint64_t kHistoryMessageHint = 256;

std::uint64_t default_max_message(std::uint64_t capacity, std::uint64_t history) {
  const std::uint64_t limit = BroadcastLayout::max_record_limit(capacity, history);
  return std::min<std::uint64_t>(kDefaultTopicMessage, limit == 0 ? 1 : limit);
}

// The creator's capacity when it gave none: 1 MiB, or what `history` messages of max_message
// (or of kHistoryMessageHint bytes) need.
std::uint64_t default_capacity(const TopicOptions& o) {
  if (o.history == 0) return kDefaultTopicCapacity;
  const std::uint64_t message = o.max_message != 0 ? o.max_message : kHistoryMessageHint;
  const std::uint64_t needed = BroadcastLayout::capacity_for(message, o.history);
  return std::max(kDefaultTopicCapacity, needed == 0 ? kDefaultTopicCapacity : needed);
}

BroadcastOptions ring_options(std::uint64_t capacity, std::uint64_t max_message, const RingShape& shape) noexcept {
  BroadcastOptions o;
  o.capacity = capacity;
  o.max_record = max_message;
  o.lossless = shape.lossless;
  o.max_readers = shape.readers;
  o.max_publishers = shape.publishers;
  o.history = shape.history;
  return o;
}

constexpr RingDescriptor kTopicRing{
    [](std::uint64_t capacity, std::uint64_t max_message, const RingShape& shape) noexcept -> std::uint64_t {
      if (max_message == 0 || max_message > BroadcastLayout::max_record_limit(capacity, shape.history)) return 0;
      return BroadcastLayout::required_bytes(ring_options(capacity, max_message, shape));
    },
    [](void* ring, std::size_t bytes, std::uint64_t capacity, std::uint64_t max_message,
       const RingShape& shape) -> absl::Status {
      return BroadcastLayout::create(ring, bytes, ring_options(capacity, max_message, shape));
    },
};

ChannelSpec topic_spec(const TopicOptions& options) {
  ChannelSpec spec;
  spec.kind = ChannelKind::kTopic;
  spec.flags = options.lossless ? kChannelLossless : 0;
  spec.check_flags = false;  // the creator's default delivery: openers need not agree
  copy_common_options(options, &spec);
  spec.default_capacity = default_capacity(options);
  spec.default_max_message =
      default_max_message(options.capacity != 0 ? options.capacity : spec.default_capacity, options.history);
  spec.default_max_peers = kDefaultTopicPeers;
  spec.read_only = options.read_only;
  spec.ring = &kTopicRing;
  spec.shape.lossless = options.lossless;
  // Every subscriber may choose lossless delivery: one reader slot per peer.
  spec.shape.readers = std::min<std::uint32_t>(options.max_peers != 0 ? options.max_peers : kDefaultTopicPeers,
                                               kMaxBroadcastReaders);
  spec.shape.publishers = options.max_publishers != 0 ? options.max_publishers : 1;
  spec.shape.history = options.history;
  return spec;
}

BroadcastStartAt start_of(const TopicStart& s) {
  switch (s.mode) {
    case TopicStart::Mode::kLive: return {BroadcastStart::kLive, 0};
    case TopicStart::Mode::kLatest: return {BroadcastStart::kLatest, 0};
    case TopicStart::Mode::kHistory: return {BroadcastStart::kHistory, s.count};
    case TopicStart::Mode::kOldest: return {BroadcastStart::kOldest, 0};
  }
  return {};
}

// Whether an active endpoint holds `token` (the recovery's liveness test for ring slots: a peer
// found dead is kDeadPending by now).
bool token_active(const ChannelSegment& seg, std::uint64_t token) {
  const PeerSlot* peers = seg.peers();
  for (std::uint32_t i = 0; i < seg.info().max_peers; ++i) {
    if (state_of(peers[i]) == PeerState::kActive && peers[i].token.load(std::memory_order_relaxed) == token) {
      return true;
    }
  }
  return false;
}

// Under the lock, or try-locked: the dead-peer recovery, then wakes whoever may wait for what it
// freed.
void recover_now(TopicEndpoint& e) {
  if (!e.seg->lock_for(0)) return;
  e.recover_locked();
  e.seg->unlock();
  notify_receivers(*e.seg);
  notify_senders(*e.seg);
}

// A publisher's write attempt (try_write or try_claim) repeated until it is done: a publisher that
// finds no room looks for dead peers (rate-limited), evicts as TopicOptions say, and waits up to
// `timeout` on space_wake. kOk, kWouldBlock (timeout <= 0), kTimedOut, kTooLarge, kCorrupt.
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
  // Held back: the evidence that a subscriber (or a publisher mid-message) may be dead or stuck.
  // Every check is measured from when the publisher started being held back, across calls.
  const std::uint64_t start = monotonic_ns();
  if (e.held_back_since_ns == 0) e.held_back_since_ns = start;
  auto idle = [&](std::uint64_t now) {
    e.seg->touch(now);
    if (now - e.held_back_since_ns >= e.dead_check_ns && now - e.last_check_ns >= e.dead_check_ns) {
      e.last_check_ns = now;
      recover_now(e);
    }
    if (e.eviction) {
      if (e.evict_after_ns != 0 && now - e.held_back_since_ns >= e.evict_after_ns) {
        e.eviction->evict_slowest(*e.seg);
        e.held_back_since_ns = now;  // the next slowest gets its own evict_after
      }
      e.eviction->evict_laggards(*e.seg, /*now=*/true);  // held back: whoever holds it lags by about the ring
    }
  };
  // Even a try_ call gets its look (at the rates above), so a dead or stuck peer cannot hold a
  // publisher that only ever polls.
  idle(start);
  if (try_once()) {
    e.held_back_since_ns = 0;
    return out;
  }
  if (timeout.count() <= 0) {
    // With a descriptor: re-armed (and a watched peer's death handled) before kWouldBlock.
    if (!e.attempt_before_blocking(try_once)) return ChannelResult::kWouldBlock;
    e.held_back_since_ns = 0;
    return out;
  }
  // Sleep no longer than the dead-peer check period, so that bound holds while parked.
  const auto slice =
      static_cast<std::int64_t>(std::clamp<std::uint64_t>(e.dead_check_ns, 100'000, kParkSliceNs));
  const bool done = e.wait_for(&e.seg->control()->space_wake, timeout, try_once, idle, slice);
  if (done) e.held_back_since_ns = 0;
  return done ? out : ChannelResult::kTimedOut;
}

// Consecutive laps a receive call rides out before it gives up for now (kWouldBlock).
constexpr int kMaxLapsInARow = 64;

// A lossless subscriber waiting at a message a publisher claimed but has not published: after
// dead_check_interval, and then as often, it looks for dead publishers (their unfinished message
// is then skipped).
void check_stall(TopicEndpoint& e, std::uint64_t now) {
  if (!e.lossless || !e.reader->stalled_on_claim()) {
    e.stalled_since_ns = 0;
    return;
  }
  if (e.stalled_since_ns == 0) e.stalled_since_ns = now;
  if (now - e.stalled_since_ns >= e.dead_check_ns && now - e.last_check_ns >= e.dead_check_ns) {
    e.last_check_ns = now;
    recover_now(e);
  }
}

// A subscriber's read attempt (try_read or try_view) repeated until it is done, waiting up to
// `timeout` on data_wake (a read_only subscriber sleeps in steps instead). kOk, kWouldBlock,
// kTimedOut, kTooLarge, kEvicted, kCorrupt.
template <typename Attempt>
ChannelResult read_with_wait(TopicEndpoint& e, std::chrono::nanoseconds timeout, Attempt&& attempt) {
  ChannelResult result = ChannelResult::kWouldBlock;
  auto try_once = [&]() -> bool {
    for (int lap = 0; lap < kMaxLapsInARow; ++lap) {
      const RingResult r = attempt();
      if (r == RingResult::kLapped) continue;  // jumped ahead; the loss is counted already
      result = channel_result(r);
      if (result == ChannelResult::kCorrupt && !e.lossless) e.reader->resync();
      // A lossless reader stores its position when it finds nothing: publishers may have room now.
      if (e.lossless && e.reader->take_published()) notify_senders(*e.seg);
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
    if (e.read_only) return;
    e.seg->touch(now);
    check_stall(e, now);
  });
  return done ? result : ChannelResult::kTimedOut;
}

// A message was received (copy, or a view released intact): counters, and a lossless subscriber
// that stored its position wakes a publisher waiting for room.
void note_received(TopicEndpoint& e) {
  ++e.received;
  if (!e.read_only) {
    PeerSlot* me = e.seg->self();
    me->received.store(e.received, std::memory_order_relaxed);
    me->position.store(e.reader->position(), std::memory_order_relaxed);
    me->lost.store(e.reader->lost_records(), std::memory_order_relaxed);
  }
  if (e.lossless && e.reader->take_published()) notify_senders(*e.seg);
}

// The publisher's peer slot and parked subscribers learn of a published message; laggards are
// evicted if the publisher asked for it.
void note_sent(TopicEndpoint& e) {
  e.seg->self()->sent.store(++e.sent, std::memory_order_relaxed);
  notify_receivers(*e.seg);
  if (e.evict_lag != 0 && e.eviction) e.eviction->evict_laggards(*e.seg, /*now=*/false);
}

// The ring's error for a channel made by another shmring, in the channel's words.
absl::Status ring_error(const ChannelInfo& info, const absl::Status& s) {
  if (absl::IsFailedPrecondition(s) && s.message().find("layout version") != std::string_view::npos) {
    return absl::FailedPreconditionError(
        cat("topic '", info.name, "' was made by another version of shmring (", std::string(s.message()),
            "): remove it (shmring rm ", info.name, ") and create it again"));
  }
  return absl::Status(s.code(), cat("topic '", info.name, "': ", std::string(s.message())));
}

}  // namespace

// --- TopicEndpoint: the pattern's hooks ------------------------------------------------------------

absl::Status TopicEndpoint::attach_ring() {
  const ChannelInfo& info = seg->info();
  default_lossless = (info.flags & kChannelLossless) != 0;
  absl::StatusOr<BroadcastLayout> layout = BroadcastLayout::map(seg->ring(), info.ring_bytes);
  if (!layout.ok()) return ring_error(info, layout.status());
  if (max_publishers != 0 && max_publishers != layout->max_publishers) {
    return absl::FailedPreconditionError(cat("topic '", info.name, "': max_publishers is ", layout->max_publishers,
                                             ", not ", max_publishers));
  }
  if (history != 0 && history != layout->history) {
    return absl::FailedPreconditionError(
        cat("topic '", info.name, "': history is ", layout->history, ", not ", history));
  }
  if (role == PeerRole::kSubscriber) {
    lossless = delivery == TopicDelivery::kLossless ||
               (delivery == TopicDelivery::kDefault && (asked_lossless || default_lossless));
    scratch.resize(info.max_message);
    if (read_only) {
      if (lossless) {
        return absl::FailedPreconditionError(cat("topic '", info.name,
                                                 "': a lossless subscriber must map the channel read-write "
                                                 "(choose TopicDelivery::kLossy for a read-only one)"));
      }
      absl::StatusOr<BroadcastReader> attached = BroadcastReader::attach(seg->ring(), info.ring_bytes, start);
      if (!attached.ok()) return ring_error(info, attached.status());
      reader.emplace(*std::move(attached));
      return absl::OkStatus();
    }
  }
  // Publishers and registered subscribers may write the ring until a lossy subscriber protects it
  // (opened()): they hold the recovery's handles.
  absl::StatusOr<BroadcastReaderSlots> slots = BroadcastReaderSlots::attach(seg->ring(), info.ring_bytes);
  absl::StatusOr<BroadcastPublishers> admin = BroadcastPublishers::attach(seg->ring(), info.ring_bytes);
  if (!slots.ok()) return ring_error(info, slots.status());
  if (!admin.ok()) return ring_error(info, admin.status());
  eviction.emplace(*std::move(slots), role == PeerRole::kPublisher ? evict_lag : 0);
  publishers.emplace(*std::move(admin));
  return absl::OkStatus();
}

// Under the lock: dead peers are removed; a dead lossless subscriber's reader slot is freed so it
// no longer holds the publishers back, and a dead publisher's unfinished message is skipped. An
// endpoint that may no longer write the ring (a lossy subscriber, after opened()) leaves the peers
// whose ring slots need that to the next recovery by one that may.
void TopicEndpoint::recover_locked() {
  seg->mark_dead_locked();
  PeerSlot* slots = seg->peers();
  if (ring_writable && publishers) {
    publishers->recover([this](std::uint64_t token) { return token_active(*seg, token); });
  }
  for (std::uint32_t i = 0; i < seg->info().max_peers; ++i) {
    PeerSlot& s = slots[i];
    if (state_of(s) != PeerState::kDeadPending) continue;
    const bool lossless_subscriber =
        role_of(s) == PeerRole::kSubscriber &&
        (s.peer_flags.load(std::memory_order_relaxed) & kPeerLosslessSubscriber) != 0;
    const bool needs_ring = lossless_subscriber || role_of(s) == PeerRole::kPublisher;
    if (needs_ring && !ring_writable) continue;
    if (lossless_subscriber && eviction) eviction->evict_owned_by(s.token.load(std::memory_order_relaxed));
    seg->free_slot_locked(s);
  }
}

absl::Status TopicEndpoint::registered_locked() {
  const ChannelInfo& info = seg->info();
  if (role == PeerRole::kPublisher) {
    absl::StatusOr<BroadcastWriter> attached =
        BroadcastWriter::attach(seg->ring(), info.ring_bytes, seg->self_token());
    if (absl::IsResourceExhausted(attached.status())) {
      const std::uint32_t max = publishers ? publishers->size() : 0;
      return absl::FailedPreconditionError(
          max == 1 ? cat("topic '", info.name, "' already has a live publisher (max_publishers 1)")
                   : cat("topic '", info.name, "' already has ", max, " live publishers (max_publishers ", max, ")"));
    }
    if (!attached.ok()) return ring_error(info, attached.status());
    writer.emplace(*std::move(attached));
    return absl::OkStatus();
  }
  if (lossless) seg->self()->peer_flags.store(kPeerLosslessSubscriber, std::memory_order_relaxed);
  absl::StatusOr<BroadcastReader> attached =
      lossless ? BroadcastReader::register_reader(seg->ring(), info.ring_bytes, seg->self_token(), start)
               : BroadcastReader::attach(seg->ring(), info.ring_bytes, start);
  if (absl::IsResourceExhausted(attached.status())) {
    return absl::ResourceExhaustedError(cat("topic '", info.name, "': all ", info.max_peers,
                                            " lossless reader slots are taken"));
  }
  if (!attached.ok()) return ring_error(info, attached.status());
  reader.emplace(*std::move(attached));
  seg->self()->reader_slot.store(reader->slot_index(), std::memory_order_relaxed);
  // Its lag (read_stats) counts from where it starts, not from the ring's first byte.
  seg->self()->position.store(reader->position(), std::memory_order_relaxed);
  return absl::OkStatus();
}

absl::Status TopicEndpoint::opened() {
  if (role == PeerRole::kSubscriber && !lossless && !read_only) {
    // A lossy subscriber never writes the ring: make a stray write fault instead of corrupting
    // what the publishers and the other subscribers read. Its recovery leaves ring slots alone.
    seg->protect_ring_read_only();
    ring_writable = false;
  }
  return absl::OkStatus();
}

ChannelResult TopicEndpoint::end_lease(Lease&) noexcept {
  if (role == PeerRole::kPublisher) {  // a loan: subscribers never see it
    writer->abort();
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
  e->delivery = options.delivery;
  e->asked_lossless = options.lossless;
  e->start = start_of(options.start);
  e->max_publishers = options.max_publishers;
  e->history = options.history;
  e->dead_check_ns = static_cast<std::uint64_t>(options.dead_check_interval.count()) * 1'000'000;
  e->evict_after_ns = static_cast<std::uint64_t>(options.evict_after.count()) * 1'000'000;
  e->evict_lag = options.evict_lag;
  OpenPlan plan;
  plan.role = role;
  plan.pattern = "topic";
  plan.single_writer = false;  // the ring's publisher slots count publishers (max_publishers)
  plan.register_peer = !options.read_only;
  plan.open_timeout = options.open_timeout;
  if (absl::Status s = e->open(name, topic_spec(options), plan); !s.ok()) return s;
  return e;
}

}  // namespace
}  // namespace detail

using detail::TopicEndpoint;
using detail::endpoint_as;

// --- TopicPublisher --------------------------------------------------------------------------------

absl::StatusOr<TopicPublisher> TopicPublisher::open(std::string_view name, const TopicOptions& options) {
  auto e = detail::open_topic(name, options, PeerRole::kPublisher);
  if (!e.ok()) return e.status();
  return TopicPublisher(*std::move(e));
}

ChannelResult TopicPublisher::try_send(std::span<const std::byte> message) noexcept {
  return send(message, std::chrono::nanoseconds(0));
}

ChannelResult TopicPublisher::send(std::span<const std::byte> message, std::chrono::nanoseconds timeout) noexcept {
  TopicEndpoint* e = endpoint_as<TopicEndpoint>(impl_);
  if (e == nullptr) return ChannelResult::kClosed;
  if (e->lease_busy()) return ChannelResult::kWouldBlock;  // the loan's space comes first
  const ChannelResult r = detail::write_with_wait(*e, timeout, [&] { return e->writer->try_write(message); });
  if (r == ChannelResult::kOk) detail::note_sent(*e);
  return r;
}

namespace {

// Records in the channel that upstream message `at` is the one being sent (or, with nothing sent
// after it, the next one expected), its ring_sequence unknown (~0: "not sent"; try_send_from stores
// its claim's sequence there once it has one). The copy not in use is written in full, then made
// current, so a kill part-way leaves the old one. Relaxed/release suffice: only a later publisher
// reads it, after it attached under the segment lock.
UpstreamMark& write_upstream_mark(TopicEndpoint* e, const UpstreamPosition& at) {
  ChannelMisc& misc = e->seg->control()->misc;
  const std::uint32_t current = misc.upstream_current.load(std::memory_order_relaxed);
  const std::uint32_t next_index = current == 1 ? 1 : 0;
  UpstreamMark& mark = misc.upstream[next_index];
  mark.origin.store(at.origin, std::memory_order_relaxed);
  mark.incarnation.store(at.incarnation, std::memory_order_relaxed);
  mark.sequence.store(at.sequence, std::memory_order_relaxed);
  mark.ring_sequence.store(~std::uint64_t{0}, std::memory_order_relaxed);
  // SYNC(upstream_mark): pairs with the acquire load in upstream_resume() (a later publisher's).
  misc.upstream_current.store(next_index + 1, std::memory_order_release);
  return mark;
}

}  // namespace

ChannelResult TopicPublisher::try_send_from(const UpstreamPosition& from,
                                            std::span<const std::byte> message) noexcept {
  TopicEndpoint* e = endpoint_as<TopicEndpoint>(impl_);
  if (e == nullptr) return ChannelResult::kClosed;
  if (e->lease_busy()) return ChannelResult::kWouldBlock;
  if (message.size() > e->writer->max_record()) return ChannelResult::kTooLarge;
  // The mark is written before the message: a publisher killed after it but before its claim
  // leaves ring_sequence unknown (~0), which upstream_resume() reads as "not sent". The claim's
  // sequence goes into the mark before the record is committed; a claim the recovery later skips
  // as a dead publisher's unfinished message is in the gap table.
  UpstreamMark& mark = write_upstream_mark(e, from);
  BroadcastWriter::Claim claim;
  const ChannelResult r = detail::write_with_wait(*e, std::chrono::nanoseconds(0), [&] {
    claim = e->writer->try_claim(message.size());
    return claim.result;
  });
  if (r != ChannelResult::kOk) return r;
  mark.ring_sequence.store(e->writer->claiming_sequence(), std::memory_order_release);
  detail::copy_words_release(claim.buffer.data(), message.data(), message.size());
  e->writer->commit(message.size());
  detail::note_sent(*e);
  return ChannelResult::kOk;
}

void TopicPublisher::mark_upstream(const UpstreamPosition& next) noexcept {
  TopicEndpoint* e = endpoint_as<TopicEndpoint>(impl_);
  if (e == nullptr || e->lease_busy()) return;
  // Nothing is sent after it: the mark's ring_sequence stays unknown (~0), so upstream_resume()
  // reads `next` as the one expected.
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
  const std::uint64_t ring_sequence = mark.ring_sequence.load(std::memory_order_acquire);
  // The marked message was sent if it got a claim that was not skipped as unfinished.
  bool skipped = false;
  for_each_broadcast_gap(*e->writer->layout().control, [&](const BroadcastGap& gap) {
    if (gap.sequence == ring_sequence) skipped = true;
  });
  if (ring_sequence != ~std::uint64_t{0} && !skipped) ++p.sequence;
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
  return e != nullptr ? e->writer->claim_sequence_approx() : 0;
}
std::uint32_t TopicPublisher::publisher_id() const noexcept {
  const TopicEndpoint* e = endpoint_as<TopicEndpoint>(impl_);
  return e != nullptr ? e->writer->id() : 0;
}
std::uint64_t TopicPublisher::published() const noexcept {
  const TopicEndpoint* e = endpoint_as<TopicEndpoint>(impl_);
  return e != nullptr ? e->writer->published() : 0;
}

TopicLoan TopicPublisher::try_loan(std::size_t max_bytes) noexcept {
  return take_loan(max_bytes, std::chrono::nanoseconds(0));
}
TopicLoan TopicPublisher::loan(std::size_t max_bytes, std::chrono::nanoseconds timeout) noexcept {
  return take_loan(max_bytes, timeout);
}

TopicLoan TopicPublisher::take_loan(std::size_t max_bytes, std::chrono::nanoseconds timeout) noexcept {
  TopicLoan loan;
  TopicEndpoint* e = endpoint_as<TopicEndpoint>(impl_);
  if (e == nullptr) return loan;
  if (e->lease_busy()) {
    detail::Endpoint::refuse(loan, ChannelResult::kWouldBlock);  // one loan at a time
    return loan;
  }
  const std::size_t bytes = max_bytes != 0 ? max_bytes : e->writer->max_record();
  BroadcastWriter::Claim claim;
  const ChannelResult r = detail::write_with_wait(*e, timeout, [&] {
    claim = e->writer->try_claim(bytes);
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
  const RingResult r = e->writer->commit(bytes);
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
  return e != nullptr ? e->writer->max_record() : 0;
}
bool TopicPublisher::lossless() const noexcept {
  const TopicEndpoint* e = endpoint_as<TopicEndpoint>(impl_);
  return e != nullptr && e->default_lossless;
}
std::uint32_t TopicPublisher::max_publishers() const noexcept {
  const TopicEndpoint* e = endpoint_as<TopicEndpoint>(impl_);
  return e != nullptr ? e->writer->layout().max_publishers : 0;
}
std::uint64_t TopicPublisher::history() const noexcept {
  const TopicEndpoint* e = endpoint_as<TopicEndpoint>(impl_);
  return e != nullptr ? e->writer->layout().history : 0;
}
std::uint64_t TopicPublisher::evictions() const noexcept {
  const TopicEndpoint* e = endpoint_as<TopicEndpoint>(impl_);
  return e != nullptr && e->eviction ? e->eviction->evictions() : 0;
}

// --- TopicSubscriber -------------------------------------------------------------------------------

absl::StatusOr<TopicSubscriber> TopicSubscriber::open(std::string_view name, const TopicOptions& options) {
  auto e = detail::open_topic(name, options, PeerRole::kSubscriber);
  if (!e.ok()) return e.status();
  return TopicSubscriber(*std::move(e));
}

ChannelResult TopicSubscriber::receive(std::span<std::byte> out, std::size_t* bytes,
                                       std::chrono::nanoseconds timeout) noexcept {
  TopicEndpoint* e = endpoint_as<TopicEndpoint>(impl_);
  if (e == nullptr) return ChannelResult::kClosed;
  if (e->lease_busy()) return ChannelResult::kWouldBlock;
  BroadcastRecordInfo info;
  const ChannelResult r = detail::read_with_wait(*e, timeout, [&] { return e->reader->try_read(out, &info); });
  if (r == ChannelResult::kOk) {
    e->last = info;
    detail::note_received(*e);
  }
  if ((r == ChannelResult::kOk || r == ChannelResult::kTooLarge) && bytes != nullptr) *bytes = info.bytes;
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
  BroadcastRecordInfo info;
  const ChannelResult r = detail::read_with_wait(*e, timeout, [&] { return e->reader->try_view(&data, &info); });
  if (r == ChannelResult::kOk) {
    e->lend(view, data);
    e->last = info;
    detail::Endpoint::set_details(view, info.sequence, false);
    view.publisher_ = info.publisher;
    view.publisher_sequence_ = info.publisher_sequence;
  } else {
    detail::Endpoint::refuse(view, r);
  }
  return view;
}

TopicView TopicSubscriber::try_receive_view() noexcept { return take_view(std::chrono::nanoseconds(0)); }
TopicView TopicSubscriber::receive_view(std::chrono::nanoseconds timeout) noexcept { return take_view(timeout); }

std::size_t TopicSubscriber::poll(const std::function<void(std::span<const std::byte>)>& handler,
                                  std::size_t max) noexcept {
  TopicEndpoint* e = endpoint_as<TopicEndpoint>(impl_);
  if (e == nullptr) return 0;
  std::size_t n = 0;
  if (e->lossless) {
    // In place: no publisher can overwrite a message before its view is released.
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
std::uint64_t TopicSubscriber::history_missed() const noexcept {
  const TopicEndpoint* e = endpoint_as<TopicEndpoint>(impl_);
  return e != nullptr ? e->reader->history_missed() : 0;
}
std::uint64_t TopicSubscriber::gaps_passed() const noexcept {
  const TopicEndpoint* e = endpoint_as<TopicEndpoint>(impl_);
  return e != nullptr ? e->reader->gaps_passed() : 0;
}
std::uint64_t TopicSubscriber::last_sequence() const noexcept {
  const TopicEndpoint* e = endpoint_as<TopicEndpoint>(impl_);
  return e != nullptr ? e->last.sequence : 0;
}
std::uint32_t TopicSubscriber::last_publisher() const noexcept {
  const TopicEndpoint* e = endpoint_as<TopicEndpoint>(impl_);
  return e != nullptr ? e->last.publisher : 0;
}
std::uint64_t TopicSubscriber::last_publisher_sequence() const noexcept {
  const TopicEndpoint* e = endpoint_as<TopicEndpoint>(impl_);
  return e != nullptr ? e->last.publisher_sequence : 0;
}
std::optional<std::uint64_t> TopicSubscriber::next_sequence() const noexcept {
  const TopicEndpoint* e = endpoint_as<TopicEndpoint>(impl_);
  if (e == nullptr || !e->reader->start_known()) return std::nullopt;
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
TopicDelivery TopicSubscriber::delivery() const noexcept {
  const TopicEndpoint* e = endpoint_as<TopicEndpoint>(impl_);
  if (e == nullptr) return TopicDelivery::kDefault;
  return e->lossless ? TopicDelivery::kLossless : TopicDelivery::kLossy;
}

}  // namespace shmring
