// FramePool: a pool of large, page-aligned frame buffers inside a region, for one writer that
// fills buffers in place and any number of readers that read the newest complete frame in place
// ("latest frame" semantics: a reader that falls behind skips to the newest frame).
//
// Region layout (every offset fixed; tests/queue/ring_layout_test.cc pins it):
//   [0, 128)                 RingHeader (kind kFramePool; capacity = buffers, max_record = frame
//                            bytes, slot_stride = buffer stride, data_offset = first buffer)
//   [128, 256)               FramePoolState  written by the writer: latest buffer, frame number
//   [256, 256 + 128 * n)     FrameSlot[n]    per buffer: sequence (odd while written), number, length
//   [data_offset, ...)       n buffers of slot_stride bytes each, page aligned
//
// Pins. A reader holding a frame pins its buffer so the writer does not reuse it. The pins live
// outside the pool (the transport keeps one per subscriber in its peer slot), so the pool asks the
// caller: the writer's try_claim() takes `is_pinned(index)`, the reader's try_take() takes
// `pin(index)` / `unpin()`. The protocol is Dekker's, all seq_cst: the reader stores its pin, then
// re-reads the buffer's sequence; the writer makes the sequence odd, then scans the pins. Either
// the reader sees the odd/changed sequence (and retries) or the writer sees the pin (and picks
// another buffer). SYNC(frame_pin) names these four operations.
//
// Publication. publish() writes the buffer's length and number, release-stores the even sequence
// (SYNC(frame_data)), then latest and frame_number (SYNC(frame_latest), release); a reader
// acquire-loads frame_number, latest and the sequence, so it sees every byte written into the
// buffer before publish().
//
// Nothing read from the region is trusted: attach validates the header against the mapped size;
// try_take() range-checks latest, the slot's number and length, and reports kCorrupt.
// One writer (the transport's single-publisher rule); readers only read the region (a read-only
// mapping is fine for them).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>

#include "absl/status/statusor.h"
#include "shmring/core/layout.h"
#include "shmring/queue/ring_header.h"
#include "shmring/queue/ring_result.h"

namespace shmring {

inline constexpr std::uint64_t kFramePage = 4096;           // buffer alignment and stride unit
inline constexpr std::uint64_t kMinFrameBuffers = 3;        // latest + one loan + one pinned
inline constexpr std::uint64_t kMaxFrameBuffers = 64;
inline constexpr std::uint64_t kMaxFrameBytes = kMaxRecordLimit;  // 1 GiB

// Written by the writer.
struct alignas(kFalseSharingRange) FramePoolState {
  std::atomic<std::uint64_t> latest;        // index + 1 of the newest complete frame (0: none)
  std::atomic<std::uint64_t> frame_number;  // number of the newest complete frame
  std::uint8_t pad[kFalseSharingRange - 2 * sizeof(std::atomic<std::uint64_t>)];
};
static_assert(std::is_standard_layout_v<FramePoolState>);
static_assert(sizeof(FramePoolState) == 128);
static_assert(offsetof(FramePoolState, frame_number) == 8);

// One buffer's words. Written by the writer; `seq` also read by readers (the pin protocol).
struct alignas(kFalseSharingRange) FrameSlot {
  std::atomic<std::uint64_t> seq;           // odd while the writer owns the buffer
  std::atomic<std::uint64_t> frame_number;  // valid while seq is even (0: holds no frame)
  std::atomic<std::uint64_t> length;
  std::uint8_t pad[kFalseSharingRange - 3 * sizeof(std::atomic<std::uint64_t>)];
};
static_assert(std::is_standard_layout_v<FrameSlot>);
static_assert(sizeof(FrameSlot) == 128);
static_assert(offsetof(FrameSlot, frame_number) == 8);
static_assert(offsetof(FrameSlot, length) == 16);

struct FramePoolControl {
  RingHeader header;
  FramePoolState state;
  // followed by FrameSlot[buffers], then the buffers at data_offset
};
static_assert(std::is_standard_layout_v<FramePoolControl>);
static_assert(sizeof(FramePoolControl) == 256);
static_assert(offsetof(FramePoolControl, state) == 128);

class FramePool {
 public:
  struct Options {
    std::uint64_t buffers = 4;            // kMinFrameBuffers .. kMaxFrameBuffers
    std::uint64_t frame_bytes = 4 << 20;  // 1 .. kMaxFrameBytes
  };
  // A buffer lent to the writer (try_claim): fill `buffer`, then publish() or abort().
  struct Claim {
    RingResult result = RingResult::kFull;
    std::uint32_t index = 0;
    std::uint64_t seq = 0;  // the buffer's (even) sequence before the claim
    std::span<std::byte> buffer;
  };
  // The newest frame, pinned for a reader (try_take).
  struct Frame {
    RingResult result = RingResult::kEmpty;
    std::uint32_t index = 0;
    std::uint64_t frame_number = 0;
    std::span<const std::byte> data;
  };

  // Bytes a pool of `options` occupies; 0 if the options are out of range.
  static std::size_t required_bytes(const Options& options) noexcept;
  // Lays a pool out in `region` (kRegionAlignment aligned, at least required_bytes) and publishes
  // its header. kInvalidArgument for bad options or region. Creator only, before anyone attaches.
  static absl::StatusOr<FramePool> create(void* region, std::size_t bytes, const Options& options);
  // Validates the header (codes in ring_header.h) and every size against `bytes`. Writes nothing:
  // a reader may attach through a mapping it will then make read-only.
  static absl::StatusOr<FramePool> attach(void* region, std::size_t bytes);

  FramePool(FramePool&&) noexcept = default;
  FramePool& operator=(FramePool&&) noexcept = default;
  FramePool(const FramePool&) = delete;
  FramePool& operator=(const FramePool&) = delete;

  // --- Writer ---
  // A buffer that is neither the latest frame nor pinned, searching from the one after
  // `after_index`: kOk with the buffer (its sequence made odd), or kFull when every buffer is
  // latest or pinned. `is_pinned(index)` must scan the pins with seq_cst loads (SYNC(frame_pin)).
  template <typename IsPinned>
  Claim try_claim(std::uint64_t after_index, IsPinned&& is_pinned) noexcept;
  // Makes the claim's first `bytes` (<= frame_bytes) the latest frame, numbered `frame_number`.
  void publish(const Claim& claim, std::size_t bytes, std::uint64_t frame_number) noexcept;
  // Gives a claim up: the buffer holds no frame (even sequence, number 0) and is free again.
  void abort(const Claim& claim) noexcept;

  // --- Reader ---
  // The newest frame if it is newer than `last_frame`, pinned through `pin(index)` (a seq_cst
  // store of the caller's pin word; `unpin()` clears it): kOk; kEmpty when there is nothing newer;
  // kCorrupt when the pool holds what no honest writer writes. Lock-free: retries a bounded number
  // of times while the writer recycles buffers under it (then kEmpty).
  template <typename Pin, typename Unpin>
  Frame try_take(std::uint64_t last_frame, Pin&& pin, Unpin&& unpin) const noexcept;

  // --- Inspection (racy, relaxed) ---
  std::uint64_t buffers() const noexcept { return buffers_; }
  std::uint64_t frame_bytes() const noexcept { return frame_bytes_; }
  std::uint64_t latest_frame_number() const noexcept;  // acquire: SYNC(frame_latest)
  std::uint64_t latest_index() const noexcept;  // index of the newest frame (0 if none or corrupt)

 private:
  FramePool() = default;
  static std::uint64_t data_offset_for(std::uint64_t buffers) noexcept;
  FrameSlot& slot(std::uint64_t i) const noexcept { return slots_[i]; }
  std::byte* buffer(std::uint64_t i) const noexcept { return data_ + i * stride_; }

  FramePoolControl* control_ = nullptr;
  FrameSlot* slots_ = nullptr;
  std::byte* data_ = nullptr;
  std::uint64_t buffers_ = 0;
  std::uint64_t frame_bytes_ = 0;
  std::uint64_t stride_ = 0;
};

// --- Inline: the writer's and the reader's steps ---------------------------------------------------

template <typename IsPinned>
FramePool::Claim FramePool::try_claim(std::uint64_t after_index, IsPinned&& is_pinned) noexcept {
  Claim claim;
  const std::uint64_t latest = control_->state.latest.load(std::memory_order_relaxed);
  for (std::uint64_t k = 1; k <= buffers_; ++k) {
    const std::uint64_t i = (after_index + k) % buffers_;
    if (latest == i + 1) continue;
    FrameSlot& s = slot(i);
    std::uint64_t seq = s.seq.load(std::memory_order_relaxed);
    if (seq & 1) ++seq;  // a writer died writing it: it holds nothing readable
    // SYNC(frame_pin): seq_cst odd store, then the caller's seq_cst scan of the pins.
    s.seq.store(seq + 1, std::memory_order_seq_cst);
    if (is_pinned(i)) {
      s.seq.store(seq, std::memory_order_release);  // unchanged content: readers may go on
      continue;
    }
    claim.result = RingResult::kOk;
    claim.index = static_cast<std::uint32_t>(i);
    claim.seq = seq;
    claim.buffer = std::span<std::byte>(buffer(i), frame_bytes_);
    return claim;
  }
  return claim;
}

template <typename Pin, typename Unpin>
FramePool::Frame FramePool::try_take(std::uint64_t last_frame, Pin&& pin, Unpin&& unpin) const noexcept {
  Frame frame;
  for (int tries = 0; tries < 64; ++tries) {
    // SYNC(frame_latest): pairs with the writer's release store of frame_number in publish().
    const std::uint64_t number = control_->state.frame_number.load(std::memory_order_acquire);
    if (number == last_frame) return frame;  // kEmpty
    const std::uint64_t latest = control_->state.latest.load(std::memory_order_acquire);
    if (latest == 0 || latest > buffers_) {
      frame.result = RingResult::kCorrupt;
      return frame;
    }
    const std::uint64_t i = latest - 1;
    FrameSlot& s = slot(i);
    // SYNC(frame_data): pairs with the release store of the even sequence in publish().
    const std::uint64_t seq = s.seq.load(std::memory_order_acquire);
    if (seq & 1) continue;  // recycled under us: look at latest again
    const std::uint64_t fn = s.frame_number.load(std::memory_order_relaxed);
    const std::uint64_t length = s.length.load(std::memory_order_relaxed);
    // SYNC(frame_pin): the caller's seq_cst pin, then this seq_cst re-read of the sequence.
    pin(i);
    if (s.seq.load(std::memory_order_seq_cst) != seq) {
      unpin();
      continue;
    }
    if (fn == 0 || fn <= last_frame || length > frame_bytes_) {
      unpin();
      if (fn != 0 && fn <= last_frame) return frame;  // nothing newer in that buffer: kEmpty
      frame.result = RingResult::kCorrupt;
      return frame;
    }
    frame.result = RingResult::kOk;
    frame.index = static_cast<std::uint32_t>(i);
    frame.frame_number = fn;
    frame.data = std::span<const std::byte>(buffer(i), length);
    return frame;
  }
  return frame;  // kEmpty: the writer kept recycling under us; try again later
}

}  // namespace shmring
