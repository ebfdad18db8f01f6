// QueueTap: reads a queue's committed items by their slots' sequence words without claiming them
// (queue.h has the contract). Read-only mapping, no lock, no peer slot.
#include <cstring>
#include <optional>
#include <utility>

#include "endpoint.h"
#include "shmring/queue/mpmc_queue.h"
#include "shmring/queue/ring_header.h"
#include "shmring/transport/queue.h"

namespace shmring {
namespace detail {

struct QueueTapEndpoint final : Endpoint {
  std::optional<MpmcQueue<>> q;
  const MpmcControl* control = nullptr;  // the ring's positions and counters (read-only)
  std::byte* slots = nullptr;
  std::uint64_t stride = 0;
  std::uint64_t next = 0;     // the ticket to look at next
  std::uint64_t missed = 0;
  std::uint64_t read = 0;
  absl::Status attach_ring() override;
  ChannelResult end_lease(Lease&) noexcept override { return ChannelResult::kOk; }  // none

  const MpmcSlotHeader* slot(std::uint64_t ticket) const noexcept {
    return reinterpret_cast<const MpmcSlotHeader*>(slots + (ticket & (q->capacity() - 1)) * stride);
  }
  std::uint64_t enqueue_position() const noexcept {
    // SYNC(tap_lap): the producer of ticket t + capacity claims it (its CAS on enqueue_pos) before
    // it writes a byte of the slot; this load comes after the copy's loads (acquire), so a copy
    // that saw such a write sees the claim here and is thrown away.
    return control->enqueue_pos.value.load(std::memory_order_acquire);
  }
  // The tap fell a lap behind at `ticket`: skip to a quarter of the ring behind the producers.
  void jump(std::uint64_t ticket) noexcept {
    const std::uint64_t cap = q->capacity();
    std::uint64_t to = enqueue_position() - cap + cap / 4;
    if (mpmc::distance(to, ticket + 1) < 0) to = ticket + 1;
    missed += to - ticket;
    next = to;
  }
  enum class Step { kItem, kNothing, kMovedOn };
  Step step(std::span<std::byte> out, std::size_t* bytes, std::uint64_t* ticket) noexcept;
};

namespace {

// Copies an item's length and payload out of a slot the tap does not own: a producer a lap later
// may be writing it at the same time (the caller validates afterwards, see SYNC(tap_lap)). The
// words are loaded with acquire so the validation load comes after all of them. Not instrumented
// by ThreadSanitizer: a race here is the design (a seqlock read), and what decides is the
// validation; the producer's writes stay instrumented.
__attribute__((no_sanitize("thread"))) std::size_t copy_item(const MpmcSlotHeader* s,
                                                              std::uint64_t slot_size, std::byte* out,
                                                              std::uint32_t* length_out) noexcept {
  const std::uint32_t length = __atomic_load_n(&s->length, __ATOMIC_ACQUIRE);
  *length_out = length;
  const std::size_t n = length <= slot_size ? length : slot_size;
  const auto* src = reinterpret_cast<const std::byte*>(s) + sizeof(MpmcSlotHeader);
  std::size_t i = 0;
  // The slot's payload is padded to kMpmcSlotAlignment, so whole words past n stay inside it.
  for (; i < n; i += 8) {
    const std::uint64_t w = __atomic_load_n(reinterpret_cast<const std::uint64_t*>(src + i), __ATOMIC_ACQUIRE);
    std::memcpy(out + i, &w, n - i < 8 ? n - i : 8);
  }
  return n;
}

}  // namespace

// The queue ring as a tap sees it: its size, to check the segment against (a tap never creates).
constexpr RingDescriptor kTapRing{
    [](std::uint64_t capacity, std::uint64_t max_message, const RingShape&) noexcept -> std::uint64_t {
      if (!is_power_of_two(capacity) || capacity < 2 || max_message == 0) return 0;
      return MpmcQueue<>::required_bytes({capacity, max_message, 0});
    },
    [](void*, std::size_t, std::uint64_t, std::uint64_t, const RingShape&) -> absl::Status {
      return absl::FailedPreconditionError("a queue tap never creates the queue");
    },
};

absl::Status QueueTapEndpoint::attach_ring() {
  const ChannelInfo& info = seg->info();
  absl::StatusOr<MpmcQueue<>> attached = MpmcQueue<>::attach(seg->ring(), info.ring_bytes);
  if (!attached.ok()) return attached.status();
  if (attached->capacity() != info.capacity || attached->slot_size() != info.max_message) {
    return absl::DataLossError(cat("channel '", info.name, "': ring does not match its control block"));
  }
  absl::StatusOr<RingGeometry> geometry =
      read_ring_header(seg->ring(), info.ring_bytes, RingKind::kMpmc);  // attach() checked it
  if (!geometry.ok()) return geometry.status();
  q.emplace(*std::move(attached));
  control = reinterpret_cast<const MpmcControl*>(seg->ring());
  slots = seg->ring() + geometry->data_offset;
  stride = geometry->slot_stride;
  return absl::OkStatus();
}

// One ticket: an item copied out, nothing to read at `next` yet, or moved on without an item
// (given up, missed, lapped: the caller goes on).
QueueTapEndpoint::Step QueueTapEndpoint::step(std::span<std::byte> out, std::size_t* bytes,
                                     std::uint64_t* ticket) noexcept {
  const std::uint64_t t = next;
  const std::uint64_t cap = q->capacity();
  const MpmcSlotHeader* s = slot(t);
  // SYNC(mpmc_full): pairs with the producer's release CAS to full(t) (the payload and length are
  // complete); for a consumed slot, with the consumer's release CAS to free(t + capacity), which
  // happened after its own acquire of full(t).
  const std::uint64_t seq = s->sequence.load(std::memory_order_acquire);
  const std::int64_t d = mpmc::distance(seq, mpmc::free_seq(t));
  if (d <= 0) return Step::kNothing;  // not produced, or claimed and not committed
  if (d == 2) {                                   // skipped(t): a given-up claim, no item
    next = t + 1;
    return Step::kMovedOn;
  }
  const bool full = d == 1;
  const bool consumed = static_cast<std::uint64_t>(d) == 4 * cap;  // free(t + capacity)
  if (!full && !consumed) {  // the slot serves a later lap (or holds junk): lapped
    jump(t);
    return Step::kMovedOn;
  }
  std::uint32_t length = 0;
  const std::size_t n = copy_item(s, q->slot_size(), out.data(), &length);
  if (mpmc::distance(enqueue_position(), t + cap) > 0) {  // ticket t + capacity claimed: overwritten
    jump(t);
    return Step::kMovedOn;
  }
  next = t + 1;
  // A passed slot whose claim was given up says so in its length (mpmc::kGivenUpLength).
  if (consumed && length == mpmc::kGivenUpLength) return Step::kMovedOn;
  ++read;
  if (bytes != nullptr) *bytes = n;
  if (ticket != nullptr) *ticket = t;
  return Step::kItem;
}

}  // namespace detail

using detail::endpoint_as;
using detail::QueueTapEndpoint;

absl::StatusOr<QueueTap> QueueTap::open(std::string_view name, const QueueTapOptions& options) {
  auto e = std::make_unique<QueueTapEndpoint>();
  detail::ChannelSpec spec;
  spec.kind = ChannelKind::kQueue;
  spec.create = false;
  spec.read_only = true;
  spec.open_timeout = options.open_timeout;
  spec.ring = &detail::kTapRing;
  detail::OpenPlan plan;
  plan.role = PeerRole::kNone;
  plan.register_peer = false;
  plan.pattern = "queue";
  plan.open_timeout = options.open_timeout;
  if (absl::Status s = e->open(name, spec, plan); !s.ok()) return s;
  e->next = options.start == QueueTapStart::kNext ? e->q->enqueue_position_approx()
                                                  : e->q->dequeue_position_approx();
  return QueueTap(std::unique_ptr<detail::Endpoint>(std::move(e)));
}

ChannelResult QueueTap::try_read(std::span<std::byte> out, std::size_t* bytes,
                                 std::uint64_t* ticket) noexcept {
  QueueTapEndpoint* e = endpoint_as<QueueTapEndpoint>(impl_);
  if (e == nullptr) return ChannelResult::kClosed;
  if (out.size() < e->q->slot_size()) return ChannelResult::kTooLarge;
  // Bounded: each round moves `next` on; a ring of junk ends in a jump to the producers.
  for (std::uint64_t round = 0; round <= e->q->capacity() + 1; ++round) {
    switch (e->step(out, bytes, ticket)) {
      case QueueTapEndpoint::Step::kItem: return ChannelResult::kOk;
      case QueueTapEndpoint::Step::kNothing: return ChannelResult::kWouldBlock;
      case QueueTapEndpoint::Step::kMovedOn: break;
    }
  }
  return ChannelResult::kWouldBlock;
}

ChannelResult QueueTap::read(std::span<std::byte> out, std::size_t* bytes, std::uint64_t* ticket,
                             std::chrono::nanoseconds timeout) noexcept {
  QueueTapEndpoint* e = endpoint_as<QueueTapEndpoint>(impl_);
  if (e == nullptr) return ChannelResult::kClosed;
  ChannelResult out_result = ChannelResult::kWouldBlock;
  auto attempt = [&]() -> bool {
    out_result = try_read(out, bytes, ticket);
    return out_result != ChannelResult::kWouldBlock;
  };
  if (attempt()) return out_result;
  if (timeout.count() <= 0) return ChannelResult::kWouldBlock;
  // No wake word to park on (not registered): wait_for sleeps in kReadOnlyPollNs steps.
  const bool done = e->wait_for(nullptr, timeout, attempt, [](std::uint64_t) {});
  return done ? out_result : ChannelResult::kTimedOut;
}

std::uint64_t QueueTap::missed() const noexcept {
  return impl_ ? endpoint_as<QueueTapEndpoint>(impl_)->missed : 0;
}
std::uint64_t QueueTap::read_count() const noexcept {
  return impl_ ? endpoint_as<QueueTapEndpoint>(impl_)->read : 0;
}
std::uint64_t QueueTap::next_ticket() const noexcept {
  return impl_ ? endpoint_as<QueueTapEndpoint>(impl_)->next : 0;
}
std::uint64_t QueueTap::max_message() const noexcept {
  return impl_ ? endpoint_as<QueueTapEndpoint>(impl_)->q->slot_size() : 0;
}
std::uint64_t QueueTap::capacity() const noexcept {
  return impl_ ? endpoint_as<QueueTapEndpoint>(impl_)->q->capacity() : 0;
}

}  // namespace shmring
