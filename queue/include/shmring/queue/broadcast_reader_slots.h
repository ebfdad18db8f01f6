// BroadcastReaderSlots: the small admin handle over a broadcast ring's lossless reader slots. Any
// process that may write the region (a publisher, a subscriber, a tool) evicts dead or hopelessly
// slow lossless readers through it, without being a writer or a reader of the ring.
//
// Threads and processes: any number of handles, concurrently with the writers and the readers
// (slot changes are CASes). Never waits; each call touches one slot (views: one slot each).
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "shmring/queue/broadcast_layout.h"
#include "shmring/queue/ring_result.h"

namespace shmring {

class BroadcastReaderSlots {
 public:
  // Codes as BroadcastLayout::map.
  static absl::StatusOr<BroadcastReaderSlots> attach(void* region, std::size_t bytes);

  // One slot, as loaded (racy): owner kSlotFree / kSlotReclaiming / a token; position
  // kReaderJoining until the reader's start is settled.
  struct View {
    std::uint64_t owner = kSlotFree;
    std::uint64_t position = kReaderJoining;
    bool settled() const noexcept {
      return owner != kSlotFree && owner != kSlotReclaiming && position != kReaderJoining;
    }
  };
  std::uint32_t size() const noexcept { return l_.max_readers; }
  View slot(std::uint32_t index) const noexcept;

  // Frees slot `index` if it still holds `token` (kOk), else kBusy. The reader, if alive, gets
  // kEvicted (at once, or after the records it was already handed intact); writers may then
  // overwrite what it had not read.
  RingResult evict(std::uint32_t index, std::uint64_t token) noexcept;

  // The claim position (racy): where the writers are, for lag.
  std::uint64_t claim_position_approx() const noexcept;
  std::uint64_t capacity() const noexcept { return l_.capacity; }

 private:
  BroadcastReaderSlots() = default;
  BroadcastLayout l_;
};

}  // namespace shmring
