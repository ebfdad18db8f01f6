#include "shmring/queue/frame_pool.h"

#include <cstring>

#include "absl/strings/str_cat.h"

namespace shmring {

std::uint64_t FramePool::data_offset_for(std::uint64_t buffers) noexcept {
  return align_up(sizeof(FramePoolControl) + buffers * sizeof(FrameSlot), kFramePage);
}

std::size_t FramePool::required_bytes(const Options& options) noexcept {
  if (options.buffers < kMinFrameBuffers || options.buffers > kMaxFrameBuffers ||
      options.frame_bytes == 0 || options.frame_bytes > kMaxFrameBytes) {
    return 0;
  }
  return data_offset_for(options.buffers) + options.buffers * align_up(options.frame_bytes, kFramePage);
}

absl::StatusOr<FramePool> FramePool::create(void* region, std::size_t bytes, const Options& options) {
  const std::size_t needed = required_bytes(options);
  if (needed == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "FramePool::create: ", options.buffers, " buffers of ", options.frame_bytes,
        " bytes (buffers ", kMinFrameBuffers, "..", kMaxFrameBuffers, ", bytes 1..", kMaxFrameBytes, ")"));
  }
  if (absl::Status s = check_region_for_create(region, bytes, needed, "FramePool"); !s.ok()) return s;
  RingGeometry g;
  g.kind = RingKind::kFramePool;
  g.region_bytes = needed;
  g.data_offset = data_offset_for(options.buffers);
  g.capacity = options.buffers;
  g.max_record = options.frame_bytes;
  g.slot_stride = align_up(options.frame_bytes, kFramePage);
  write_ring_header(region, g);
  auto* control = static_cast<FramePoolControl*>(region);
  control->state.latest.store(0, std::memory_order_relaxed);
  control->state.frame_number.store(0, std::memory_order_relaxed);
  std::memset(control->state.pad, 0, sizeof control->state.pad);
  auto* slots = reinterpret_cast<FrameSlot*>(static_cast<std::byte*>(region) + sizeof(FramePoolControl));
  for (std::uint64_t i = 0; i < options.buffers; ++i) {
    slots[i].seq.store(0, std::memory_order_relaxed);
    slots[i].frame_number.store(0, std::memory_order_relaxed);
    slots[i].length.store(0, std::memory_order_relaxed);
    std::memset(slots[i].pad, 0, sizeof slots[i].pad);
  }
  publish_ring_header(region);  // SYNC(ring_ready): everything above is visible to attachers
  return attach(region, bytes);
}

absl::StatusOr<FramePool> FramePool::attach(void* region, std::size_t bytes) {
  absl::StatusOr<RingGeometry> geometry = read_ring_header(region, bytes, RingKind::kFramePool);
  if (!geometry.ok()) return geometry.status();
  const RingGeometry& g = *geometry;
  const Options options{g.capacity, g.max_record};
  const std::size_t needed = required_bytes(options);
  if (needed == 0 || g.slot_stride != align_up(g.max_record, kFramePage) ||
      g.data_offset != data_offset_for(g.capacity) || g.region_bytes != needed) {
    return absl::DataLossError(absl::StrCat(
        "FramePool::attach: inconsistent header (buffers ", g.capacity, ", frame bytes ", g.max_record,
        ", stride ", g.slot_stride, ", data offset ", g.data_offset, ", region bytes ", g.region_bytes,
        ")"));
  }
  FramePool pool;
  pool.control_ = static_cast<FramePoolControl*>(region);
  pool.slots_ = reinterpret_cast<FrameSlot*>(static_cast<std::byte*>(region) + sizeof(FramePoolControl));
  pool.data_ = static_cast<std::byte*>(region) + g.data_offset;
  pool.buffers_ = g.capacity;
  pool.frame_bytes_ = g.max_record;
  pool.stride_ = g.slot_stride;
  return pool;
}

void FramePool::publish(const Claim& claim, std::size_t bytes, std::uint64_t frame_number) noexcept {
  FrameSlot& s = slot(claim.index);
  s.length.store(bytes <= frame_bytes_ ? bytes : frame_bytes_, std::memory_order_relaxed);
  s.frame_number.store(frame_number, std::memory_order_relaxed);
  // SYNC(frame_data): release: the buffer's bytes, length and number are complete.
  s.seq.store(claim.seq + 2, std::memory_order_release);
  control_->state.latest.store(claim.index + 1, std::memory_order_release);
  // SYNC(frame_latest): readers acquire frame_number, then latest and the slot's sequence.
  control_->state.frame_number.store(frame_number, std::memory_order_release);
}

void FramePool::abort(const Claim& claim) noexcept {
  // The buffer was not latest and held no pinned frame; mark it written-but-empty (even, new seq).
  FrameSlot& s = slot(claim.index);
  s.frame_number.store(0, std::memory_order_relaxed);
  s.seq.store(claim.seq + 2, std::memory_order_release);
}

std::uint64_t FramePool::latest_frame_number() const noexcept {
  // SYNC(frame_latest): pairs with the writer's release store of frame_number in publish().
  return control_->state.frame_number.load(std::memory_order_acquire);
}

std::uint64_t FramePool::latest_index() const noexcept {
  const std::uint64_t latest = control_->state.latest.load(std::memory_order_acquire);
  return latest == 0 || latest > buffers_ ? 0 : latest - 1;
}

}  // namespace shmring
