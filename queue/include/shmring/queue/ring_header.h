// The header at the start of every ring region, and the pieces of layout the rings share.
//
// A ring region is caller-provided memory (a SharedMemory mapping, or plain memory in tests) that
// starts with a RingHeader. Everything in it is a fixed-width integer or a lock-free atomic: no
// pointers, no std:: containers, nothing whose layout depends on the compiler. Positions are 64-bit
// counters that only grow; an index is `position & mask`.
//
// Life of a header: the creator writes every field with `version` at 0, initialises the ring's
// positions, then release-stores kRingLayoutVersion into `version` ("ready"). An attacher
// acquire-loads `version` (0: kUnavailable), then copies the header into local memory and validates
// the copy against the mapped size; it never reads the shared header's fields again. Codes:
//   kInvalidArgument     the caller's region is null, misaligned or smaller than a header
//   kUnavailable         version is 0: the creator has not finished (retry)
//   kFailedPrecondition  a ring of another layout version, ABI or kind
//   kDataLoss            corrupt: bad magic, sizes that do not add up or do not fit the region,
//                        capacity not a power of two, positions that cannot be, ...
//
// Every function below is free of shared state of its own: thread-safe, never blocks, makes no
// system call.
#pragma once

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "shmring/core/layout.h"

namespace shmring {

// "SHMRRING" read as a little-endian 64-bit word.
inline constexpr std::uint64_t kRingMagic = 0x474E4952524D4853ULL;

// Layout version of every in-region struct of queue/. Bump it whenever a size, an offset, a field's
// meaning or a record format changes; tests/queue/ring_layout_test.cc pins the layout per version.
// 1: first layout. 3: SPSC records published by their header word (2 is not used: tests take 2 as
// "some other version"). 4: the frame pool (RingKind::kFramePool) joins the rings. 5: the broadcast
// ring by role, with several writers (a claim pair, commit words per record, 64-byte records,
// publisher and reader slots, anchors, gap table: broadcast_layout.h).
inline constexpr std::uint32_t kRingLayoutVersion = 5;

enum class RingKind : std::uint32_t { kSpsc = 1, kMpmc = 2, kBroadcast = 3, kFramePool = 4 };

// Lifecycle word; the writer may close a ring to tell readers that no more records will come.
enum class RingState : std::uint32_t { kActive = 1, kClosed = 2 };

// Alignment a caller's region must have (and the granularity of the control blocks).
inline constexpr std::size_t kRegionAlignment = kFalseSharingRange;

// Records in byte rings (SPSC, broadcast) start at multiples of this.
inline constexpr std::size_t kRecordAlignment = 8;

// Largest record payload any ring accepts (record lengths are 32-bit in the record headers).
inline constexpr std::uint64_t kMaxRecordLimit = std::uint64_t{1} << 30;

// Largest capacity (bytes or slots) accepted at create or attach.
inline constexpr std::uint64_t kMaxCapacity = std::uint64_t{1} << 40;

namespace detail {
// Facts that two processes must share to use one ring: byte order and the sizes of the atomics.
constexpr std::uint32_t ring_abi_fingerprint() noexcept {
  return (std::endian::native == std::endian::little ? 0x4C000000u : 0x42000000u) |
         (static_cast<std::uint32_t>(sizeof(std::atomic<std::uint64_t>)) << 16) |
         (static_cast<std::uint32_t>(alignof(std::atomic<std::uint64_t>)) << 8) |
         static_cast<std::uint32_t>(sizeof(std::atomic<std::uint32_t>));
}
}  // namespace detail
inline constexpr std::uint32_t kRingAbiFingerprint = detail::ring_abi_fingerprint();

// The first 128 bytes of every ring region. Written by the creator only, before `version`.
struct RingHeader {
  std::uint64_t magic;                  // kRingMagic
  std::atomic<std::uint32_t> version;   // 0 while being created, then kRingLayoutVersion
  std::uint32_t kind;                   // RingKind
  std::uint32_t abi;                    // kRingAbiFingerprint of the creator
  std::atomic<std::uint32_t> state;     // RingState; the writer may store kClosed
  std::uint64_t region_bytes;           // bytes the ring occupies from the start of the region
  std::uint64_t data_offset;            // offset of the data area (records or slots)
  std::uint64_t capacity;               // data bytes (SPSC, broadcast), slots (MPMC), buffers (frames)
  std::uint64_t max_record;             // largest payload (SPSC, broadcast), slot payload (MPMC),
                                        // frame bytes (frames)
  std::uint64_t slot_stride;            // MPMC: bytes per slot; frames: per buffer; 0 for byte rings
  std::uint64_t initial_position;       // first position/ticket (a test hook; normally 0)
  std::uint32_t flags;                  // broadcast: kBroadcastLossless
  std::uint32_t max_readers;            // broadcast lossless: reader slots; else 0
  std::uint8_t reserved[48];            // zero
};

static_assert(std::is_standard_layout_v<RingHeader>);
static_assert(sizeof(RingHeader) == 128);
static_assert(offsetof(RingHeader, magic) == 0);
static_assert(offsetof(RingHeader, version) == 8);
static_assert(offsetof(RingHeader, kind) == 12);
static_assert(offsetof(RingHeader, abi) == 16);
static_assert(offsetof(RingHeader, state) == 20);
static_assert(offsetof(RingHeader, region_bytes) == 24);
static_assert(offsetof(RingHeader, data_offset) == 32);
static_assert(offsetof(RingHeader, capacity) == 40);
static_assert(offsetof(RingHeader, max_record) == 48);
static_assert(offsetof(RingHeader, slot_stride) == 56);
static_assert(offsetof(RingHeader, initial_position) == 64);
static_assert(offsetof(RingHeader, flags) == 72);
static_assert(offsetof(RingHeader, max_readers) == 76);
static_assert(std::atomic<std::uint32_t>::is_always_lock_free);
static_assert(sizeof(std::atomic<std::uint32_t>) == 4);

// A 64-bit counter alone in its 128-byte block (so that what one process writes never shares a
// cache line, or an adjacent-line prefetch pair, with what another process writes).
struct alignas(kFalseSharingRange) PaddedCounter {
  std::atomic<std::uint64_t> value;
  std::uint8_t pad[kFalseSharingRange - sizeof(std::atomic<std::uint64_t>)];
};
static_assert(std::is_standard_layout_v<PaddedCounter>);
static_assert(sizeof(PaddedCounter) == kFalseSharingRange);
static_assert(offsetof(PaddedCounter, value) == 0);
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);
static_assert(sizeof(std::atomic<std::uint64_t>) == 8);

// Header of a record in a byte ring (SPSC and broadcast).
enum class RecordType : std::uint32_t { kData = 1, kPadding = 2 };

// The local, validated copy of a ring header: the only thing the rings use after attach.
struct RingGeometry {
  RingKind kind = RingKind::kSpsc;
  std::uint64_t region_bytes = 0;
  std::uint64_t data_offset = 0;
  std::uint64_t capacity = 0;
  std::uint64_t mask = 0;
  std::uint64_t max_record = 0;
  std::uint64_t slot_stride = 0;
  std::uint64_t initial_position = 0;
  std::uint32_t flags = 0;
  std::uint32_t max_readers = 0;
};

// Reads the header of `region` once (acquire on `version`), checks what every ring kind shares
// (alignment, magic, version, ABI, kind, region_bytes <= bytes, data area in bounds, capacity within
// limits and, but for the frame pool, a power of two) and returns the copy. Ring-specific checks are the caller's.
absl::StatusOr<RingGeometry> read_ring_header(const void* region, std::size_t bytes, RingKind kind);

// Checks the caller's region for create: non-null, aligned to kRegionAlignment, at least `needed`
// bytes.
absl::Status check_region_for_create(const void* region, std::size_t bytes, std::size_t needed,
                                     const char* ring_name);

// Fills a header (version left at 0) for create; the creator publishes it with publish_ring_header
// (a release store of `version`: everything written into the region before it is visible to an
// attacher whose read_ring_header succeeds). Creator only, before anyone attaches.
void write_ring_header(void* region, const RingGeometry& geometry);
void publish_ring_header(void* region);

// The lifecycle word, readable by any attacher (acquire: everything written before close() is
// visible). store_ring_state is a release store, by the writer.
RingState load_ring_state(const void* region);
void store_ring_state(void* region, RingState state);

// Returns "kSpsc" etc.
const char* to_string(RingKind kind);

}  // namespace shmring
