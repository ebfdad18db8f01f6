#include "shmring/queue/mpmc_queue.h"

#include <cstring>

#include "absl/strings/str_cat.h"

namespace shmring {
namespace {

std::uint64_t stride_for(std::uint64_t slot_size) {
  return align_up(sizeof(MpmcSlotHeader) + slot_size, kMpmcSlotAlignment);
}

}  // namespace

std::size_t MpmcQueue<void>::required_bytes(const Options& options) noexcept {
  if (options.capacity > kMaxCapacity || options.slot_size > kMaxRecordLimit) return 0;
  std::uint64_t slots_bytes = 0;
  if (__builtin_mul_overflow(options.capacity, stride_for(options.slot_size), &slots_bytes)) return 0;
  std::uint64_t total = 0;
  if (__builtin_add_overflow(slots_bytes, sizeof(MpmcControl), &total)) return 0;
  if (total > std::numeric_limits<std::size_t>::max()) return 0;
  return static_cast<std::size_t>(total);
}

absl::StatusOr<MpmcQueue<void>> MpmcQueue<void>::create(void* region, std::size_t bytes,
                                                        const Options& options) {
  if (!is_power_of_two(options.capacity) || options.capacity < 2 ||
      options.capacity > kMaxCapacity) {
    return absl::InvalidArgumentError(absl::StrCat("MpmcQueue::create: capacity ", options.capacity,
                                                   " is not a power of two in [2, 2^40]"));
  }
  if (options.slot_size == 0 || options.slot_size > kMaxRecordLimit) {
    return absl::InvalidArgumentError(
        absl::StrCat("MpmcQueue::create: slot size ", options.slot_size, " not in [1, 2^30]"));
  }
  const std::size_t needed = required_bytes(options);
  if (absl::Status s = check_region_for_create(region, bytes, needed, "MpmcQueue"); !s.ok()) return s;

  RingGeometry g;
  g.kind = RingKind::kMpmc;
  g.region_bytes = needed;
  g.data_offset = sizeof(MpmcControl);
  g.capacity = options.capacity;
  g.mask = options.capacity - 1;
  g.max_record = options.slot_size;
  g.slot_stride = stride_for(options.slot_size);
  g.initial_position = options.initial_position;
  write_ring_header(region, g);

  auto* control = static_cast<MpmcControl*>(region);
  std::memset(reinterpret_cast<std::byte*>(control) + sizeof(RingHeader), 0,
              sizeof(MpmcControl) - sizeof(RingHeader));
  control->enqueue_pos.value.store(options.initial_position, std::memory_order_relaxed);
  control->dequeue_pos.value.store(options.initial_position, std::memory_order_relaxed);
  std::byte* slots = static_cast<std::byte*>(region) + g.data_offset;
  for (std::uint64_t i = 0; i < options.capacity; ++i) {
    // Slot i serves the first ticket >= initial_position that is congruent to i.
    const std::uint64_t ticket =
        options.initial_position + ((i - options.initial_position) & g.mask);
    auto* s = reinterpret_cast<MpmcSlotHeader*>(slots + i * g.slot_stride);
    s->length = 0;
    s->reserved = 0;
    s->sequence.store(mpmc::free_seq(ticket), std::memory_order_relaxed);
  }
  publish_ring_header(region);
  return attach(region, bytes);
}

absl::StatusOr<MpmcQueue<void>> MpmcQueue<void>::attach(void* region, std::size_t bytes) {
  absl::StatusOr<RingGeometry> geometry = read_ring_header(region, bytes, RingKind::kMpmc);
  if (!geometry.ok()) return geometry.status();
  const RingGeometry& g = *geometry;
  std::uint64_t slots_bytes = 0;
  const bool overflow = __builtin_mul_overflow(g.capacity, g.slot_stride, &slots_bytes);
  if (g.capacity < 2 || g.max_record == 0 || g.slot_stride != stride_for(g.max_record) ||
      g.data_offset != sizeof(MpmcControl) || overflow ||
      g.region_bytes - g.data_offset != slots_bytes) {
    return absl::DataLossError(absl::StrCat(
        "MpmcQueue::attach: inconsistent header (capacity ", g.capacity, ", slot size ",
        g.max_record, ", stride ", g.slot_stride, ", region bytes ", g.region_bytes, ")"));
  }
  MpmcQueue queue;
  queue.cfg_.control = static_cast<MpmcControl*>(region);
  queue.cfg_.slots = static_cast<std::byte*>(region) + g.data_offset;
  queue.cfg_.capacity = g.capacity;
  queue.cfg_.mask = g.mask;
  queue.cfg_.slot_size = g.max_record;
  queue.cfg_.stride = g.slot_stride;
  return queue;
}

RingResult MpmcQueue<void>::abort(const Claim& claim) noexcept {
  MpmcSlotHeader* s = slot(claim.ticket);
  // Fenced already (a recovery skipped the claim): the slot may serve a later lap; leave it.
  if (s->sequence.load(std::memory_order_relaxed) != mpmc::free_seq(claim.ticket)) return RingResult::kFenced;
  s->length = mpmc::kGivenUpLength;  // still the claim's own slot; published by the CAS below
  std::uint64_t expected = mpmc::free_seq(claim.ticket);
  // SYNC(mpmc_full): a release like commit(); consumers pass the slot.
  if (s->sequence.compare_exchange_strong(expected, mpmc::skipped_seq(claim.ticket),
                                                           std::memory_order_release,
                                                           std::memory_order_relaxed)) {
    cfg_.control->counters.aborted.fetch_add(1, std::memory_order_relaxed);
    return RingResult::kOk;
  }
  return RingResult::kFenced;
}

RingResult MpmcQueue<void>::skip_stalled(std::uint64_t ticket) noexcept {
  // SYNC(mpmc_enqueue): relaxed is enough: the CAS below is what decides; this load only refuses a
  // ticket no producer has claimed yet (enqueue_pos only grows).
  const std::uint64_t enqueue = cfg_.control->enqueue_pos.value.load(std::memory_order_relaxed);
  if (mpmc::distance(enqueue, ticket) <= 0) return RingResult::kBusy;
  MpmcSlotHeader* s = slot(ticket);
  if (s->sequence.load(std::memory_order_relaxed) != mpmc::free_seq(ticket)) return RingResult::kBusy;
  // The claimer is dead (the caller's precondition): nobody else writes this slot's length now.
  s->length = mpmc::kGivenUpLength;
  std::uint64_t expected = mpmc::free_seq(ticket);
  // Release: consumers that acquire skipped(t) pass it (SYNC(mpmc_full)).
  if (s->sequence.compare_exchange_strong(expected, mpmc::skipped_seq(ticket),
                                                     std::memory_order_release,
                                                     std::memory_order_relaxed)) {
    cfg_.control->counters.skipped.fetch_add(1, std::memory_order_relaxed);
    return RingResult::kOk;
  }
  return RingResult::kBusy;
}

RingResult MpmcQueue<void>::force_release(std::uint64_t ticket) noexcept {
  const std::uint64_t dequeue = cfg_.control->dequeue_pos.value.load(std::memory_order_relaxed);
  if (mpmc::distance(dequeue, ticket) <= 0) return RingResult::kBusy;  // no consumer claimed it
  MpmcSlotHeader* s = slot(ticket);
  std::uint64_t expected = mpmc::full_seq(ticket);
  // Release: the next lap's producer acquires free(t + capacity) (SYNC(mpmc_free)). The acquire
  // half orders nothing we rely on; acq_rel keeps the CAS symmetric with release().
  if (s->sequence.compare_exchange_strong(expected, mpmc::free_seq(ticket + cfg_.capacity),
                                          std::memory_order_release, std::memory_order_relaxed)) {
    cfg_.control->counters.force_released.fetch_add(1, std::memory_order_relaxed);
    return RingResult::kOk;
  }
  expected = mpmc::skipped_seq(ticket);  // a consumer died while passing a skipped slot
  if (s->sequence.compare_exchange_strong(expected, mpmc::free_seq(ticket + cfg_.capacity),
                                          std::memory_order_release, std::memory_order_relaxed)) {
    return RingResult::kOk;
  }
  return RingResult::kBusy;
}

MpmcQueue<void>::SlotPhase MpmcQueue<void>::slot_phase(std::uint64_t ticket) const noexcept {
  const std::uint64_t seq = slot(ticket)->sequence.load(std::memory_order_relaxed);
  switch (mpmc::distance(seq, mpmc::free_seq(ticket))) {
    case 0: return SlotPhase::kFree;
    case 1: return SlotPhase::kFull;
    case 2: return SlotPhase::kSkipped;
    default: return SlotPhase::kOther;
  }
}

RingResult MpmcQueue<void>::view_of_ticket(std::uint64_t ticket,
                                           std::span<const std::byte>* item) const noexcept {
  MpmcSlotHeader* s = slot(ticket);
  // SYNC(mpmc_full): pairs with the producer's release CAS to full(ticket) in commit().
  if (s->sequence.load(std::memory_order_acquire) != mpmc::full_seq(ticket)) return RingResult::kBusy;
  const std::uint64_t length = s->length;
  *item = std::span<const std::byte>(payload(s), length <= cfg_.slot_size ? length : cfg_.slot_size);
  return RingResult::kOk;
}

absl::StatusOr<std::uint64_t> MpmcQueue<void>::depth_of(const void* region, std::size_t bytes) noexcept {
  // attach() only reads the region; the queue handle is used for two relaxed loads.
  absl::StatusOr<MpmcQueue> queue = attach(const_cast<void*>(region), bytes);
  if (!queue.ok()) return queue.status();
  return queue->size_approx();
}

std::optional<std::uint64_t> MpmcQueue<void>::stalled_producer_ticket() const noexcept {
  const std::uint64_t dequeue = cfg_.control->dequeue_pos.value.load(std::memory_order_relaxed);
  const std::uint64_t enqueue = cfg_.control->enqueue_pos.value.load(std::memory_order_relaxed);
  if (mpmc::distance(enqueue, dequeue) <= 0) return std::nullopt;
  if (slot_phase(dequeue) != SlotPhase::kFree) return std::nullopt;
  return dequeue;
}

std::optional<std::uint64_t> MpmcQueue<void>::stalled_consumer_ticket() const noexcept {
  const std::uint64_t enqueue = cfg_.control->enqueue_pos.value.load(std::memory_order_relaxed);
  const std::uint64_t dequeue = cfg_.control->dequeue_pos.value.load(std::memory_order_relaxed);
  const std::uint64_t previous = enqueue - cfg_.capacity;  // the ticket the slot held a lap ago
  if (mpmc::distance(dequeue, previous) <= 0) return std::nullopt;  // not claimed by a consumer
  const SlotPhase phase = slot_phase(previous);
  if (phase != SlotPhase::kFull && phase != SlotPhase::kSkipped) return std::nullopt;
  return previous;
}

std::uint64_t MpmcQueue<void>::size_approx() const noexcept {
  const std::uint64_t dequeue = cfg_.control->dequeue_pos.value.load(std::memory_order_relaxed);
  const std::uint64_t enqueue = cfg_.control->enqueue_pos.value.load(std::memory_order_relaxed);
  const std::int64_t d = mpmc::distance(enqueue, dequeue);
  if (d <= 0) return 0;
  return static_cast<std::uint64_t>(d) > cfg_.capacity ? cfg_.capacity : static_cast<std::uint64_t>(d);
}

std::uint64_t MpmcQueue<void>::enqueue_position_approx() const noexcept {
  return cfg_.control->enqueue_pos.value.load(std::memory_order_relaxed);
}
std::uint64_t MpmcQueue<void>::dequeue_position_approx() const noexcept {
  return cfg_.control->dequeue_pos.value.load(std::memory_order_relaxed);
}
std::uint64_t MpmcQueue<void>::skipped() const noexcept {
  return cfg_.control->counters.skipped.load(std::memory_order_relaxed);
}
std::uint64_t MpmcQueue<void>::aborted() const noexcept {
  return cfg_.control->counters.aborted.load(std::memory_order_relaxed);
}
std::uint64_t MpmcQueue<void>::force_released() const noexcept {
  return cfg_.control->counters.force_released.load(std::memory_order_relaxed);
}

void MpmcQueue<void>::close() noexcept { store_ring_state(cfg_.control, RingState::kClosed); }
bool MpmcQueue<void>::closed() const noexcept {
  return load_ring_state(cfg_.control) == RingState::kClosed;
}

}  // namespace shmring
