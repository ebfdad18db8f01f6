// The header page at the start of every shmring segment (before the user's data).
//
// Written by the creator, which release-stores `state = kReady` last; readers acquire-load `state`
// and validate every field against the mapped size before use (see read_segment_header()).
// Layout changes must bump kSegmentLayoutVersion: tests/core/segment_layout_test.cc pins it.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <type_traits>

#include "absl/status/status.h"
#include "shmring/core/layout.h"

namespace shmring {

inline constexpr std::uint64_t kSegmentMagic = 0x31474553524d4853ULL;  // "SHMRSEG1" little-endian
// 1: first layout. 2: the lock's System V key (lock_semaphore_key), recorded before the set exists.
inline constexpr std::uint32_t kSegmentLayoutVersion = 2;
inline constexpr std::size_t kSegmentKeyCapacity = 256;

enum class SegmentState : std::uint32_t {
  kInitialising = 0,  // the creator is still writing the header
  kReady = 1,         // everything below is final
  kDestroyed = 2      // destroy() was called; the name is gone, new attaches are refused
};

struct SegmentHeader {
  std::uint64_t magic;                // kSegmentMagic
  std::atomic<std::uint32_t> state;   // SegmentState; SYNC(segment_ready)
  std::uint32_t layout_version;       // kSegmentLayoutVersion
  std::uint64_t header_size;          // bytes before the user's data (kSegmentHeaderSize)
  std::uint64_t user_size;            // bytes the creator asked for
  std::int32_t lock_semaphore_id;     // System V set holding the segment lock (-1: not made yet)
  std::uint32_t permissions;          // mode bits given at create
  std::int64_t lock_semaphore_ctime;  // its creation stamp (guards against a recycled id)
  std::int32_t creator_pid;
  std::uint32_t key_length;           // bytes used in `key`
  std::uint64_t creator_start_time;   // the creator's start time (clock ticks since boot)
  std::int64_t created_unix_ns;       // CLOCK_REALTIME at create, for tools
  char key[kSegmentKeyCapacity];      // the user's key (truncated), for tools; not NUL-terminated
  // The lock set's System V key (SystemSemaphore::random_segment_key), written right after the
  // magic and before the set is created: a creator killed before it recorded the id still leaves
  // the set findable (SystemSemaphore::find). 0: none yet.
  std::int32_t lock_semaphore_key;
  std::uint32_t reserved;             // written 0
};

static_assert(std::is_standard_layout_v<SegmentHeader>);
static_assert(sizeof(SegmentHeader) == 336);
static_assert(offsetof(SegmentHeader, state) == 8);
static_assert(offsetof(SegmentHeader, user_size) == 24);
static_assert(offsetof(SegmentHeader, lock_semaphore_id) == 32);
static_assert(offsetof(SegmentHeader, lock_semaphore_ctime) == 40);
static_assert(offsetof(SegmentHeader, creator_start_time) == 56);
static_assert(offsetof(SegmentHeader, key) == 72);
static_assert(offsetof(SegmentHeader, lock_semaphore_key) == 328);
static_assert(sizeof(SegmentHeader) <= kSegmentHeaderSize);

// A copy of the header's fields, taken once and validated; the only form code should use.
struct SegmentInfo {
  SegmentState state = SegmentState::kInitialising;
  std::uint64_t user_size = 0;
  std::int32_t lock_semaphore_id = -1;
  std::int64_t lock_semaphore_ctime = 0;
  std::int32_t lock_semaphore_key = 0;
  std::uint32_t permissions = 0;
  std::int32_t creator_pid = 0;
  std::uint64_t creator_start_time = 0;
  std::int64_t created_unix_ns = 0;
  std::string_view key;  // points into the mapping: copy it if the mapping may go
};

// Reads and checks a header mapped over `mapped_bytes` bytes. Errors: kUnavailable (not ready yet),
// kFailedPrecondition (another layout version), kDataLoss (bad magic or sizes that do not fit).
// Never reads outside [header, header + mapped_bytes). Acquire-loads `state`, so every field the
// creator wrote before storing kReady is visible in `out`. Never blocks; safe to call concurrently
// with anything (other processes may change the header: `out` is a checked copy).
absl::Status read_segment_header(const void* header, std::size_t mapped_bytes, SegmentInfo* out);

}  // namespace shmring
