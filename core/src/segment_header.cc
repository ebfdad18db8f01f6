#include "shmring/core/segment_header.h"

#include <algorithm>
#include <string>

namespace shmring {

absl::Status read_segment_header(const void* mapping, std::size_t mapped_bytes, SegmentInfo* out) {
  if (mapping == nullptr || mapped_bytes < kSegmentHeaderSize) {
    return absl::DataLossError("segment of " + std::to_string(mapped_bytes) +
                               " bytes is smaller than its header page");
  }
  const auto* header = static_cast<const SegmentHeader*>(mapping);
  // SYNC(segment_ready): pairs with the creator's release store of kReady in SharedMemory::create;
  // every field below was written before it.
  const auto state = static_cast<SegmentState>(header->state.load(std::memory_order_acquire));
  if (state == SegmentState::kInitialising) {
    return absl::UnavailableError("segment is still being initialised by its creator");
  }
  if (header->magic != kSegmentMagic) {
    return absl::DataLossError("not a shmring segment (bad magic)");
  }
  if (header->layout_version != kSegmentLayoutVersion) {
    return absl::FailedPreconditionError(
        "segment layout version " + std::to_string(header->layout_version) +
        " is not the supported version " + std::to_string(kSegmentLayoutVersion));
  }
  if (state != SegmentState::kReady && state != SegmentState::kDestroyed) {
    return absl::DataLossError("segment state word is corrupt");
  }
  const std::uint64_t header_size = header->header_size;
  const std::uint64_t user_size = header->user_size;
  if (header_size != kSegmentHeaderSize || user_size == 0 ||
      user_size > mapped_bytes - kSegmentHeaderSize) {
    return absl::DataLossError("segment header sizes (header " + std::to_string(header_size) +
                               ", data " + std::to_string(user_size) + ") do not fit in " +
                               std::to_string(mapped_bytes) + " mapped bytes");
  }
  out->state = state;
  out->user_size = user_size;
  out->lock_semaphore_id = header->lock_semaphore_id;
  out->lock_semaphore_ctime = header->lock_semaphore_ctime;
  out->lock_semaphore_key = header->lock_semaphore_key;
  out->permissions = header->permissions & 0777;
  out->creator_pid = header->creator_pid;
  out->creator_start_time = header->creator_start_time;
  out->created_unix_ns = header->created_unix_ns;
  const std::size_t key_length = std::min<std::size_t>(header->key_length, kSegmentKeyCapacity);
  out->key = std::string_view(header->key, key_length);
  return absl::OkStatus();
}

}  // namespace shmring
