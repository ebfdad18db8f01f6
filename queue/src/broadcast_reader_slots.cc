#include "shmring/queue/broadcast_reader_slots.h"

namespace shmring {

absl::StatusOr<BroadcastReaderSlots> BroadcastReaderSlots::attach(void* region, std::size_t bytes) {
  absl::StatusOr<BroadcastLayout> layout = BroadcastLayout::map(region, bytes);
  if (!layout.ok()) return layout.status();
  BroadcastReaderSlots slots;
  slots.l_ = *layout;
  return slots;
}

BroadcastReaderSlots::View BroadcastReaderSlots::slot(std::uint32_t index) const noexcept {
  if (index >= l_.max_readers) return {};
  return {l_.readers[index].owner.load(std::memory_order_relaxed),
          l_.readers[index].position.load(std::memory_order_relaxed)};
}

RingResult BroadcastReaderSlots::evict(std::uint32_t index, std::uint64_t token) noexcept {
  if (index >= l_.max_readers || token == kSlotFree || token == kSlotReclaiming) return RingResult::kBusy;
  BroadcastReaderSlot& slot = l_.readers[index];
  std::uint64_t expected = token;
  if (!slot.owner.compare_exchange_strong(expected, kSlotReclaiming, std::memory_order_acq_rel,
                                          std::memory_order_relaxed)) {
    return RingResult::kBusy;
  }
  // SYNC(bcast_reader_pos): an RMW, so it reads the reader's last release of its position: the
  // reader's reads of everything before it happen-before the release below, and so before any
  // writer overwrites them.
  slot.position.exchange(kReaderJoining, std::memory_order_acq_rel);
  // SYNC(bcast_slot_free): pairs with the acquire of a later owner CAS in register_reader() and
  // with the writers' loads of the owner: the position is kReaderJoining before the slot is free.
  slot.owner.store(kSlotFree, std::memory_order_release);
  return RingResult::kOk;
}

std::uint64_t BroadcastReaderSlots::claim_position_approx() const noexcept {
  return __atomic_load_n(&l_.control->claim.position, __ATOMIC_RELAXED);
}

}  // namespace shmring
