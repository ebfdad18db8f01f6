// Layout constants shared by everything that lives in shared memory.
//
// These values are part of the on-segment ABI: processes built by different compilers must agree
// on them, so they are fixed numbers, not std::hardware_destructive_interference_size.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace shmring {

// Distance kept between fields written by different processes. 128 bytes covers the adjacent-line
// prefetcher on x86 (which pulls pairs of 64-byte lines) and the 128-byte lines of some ARM cores.
inline constexpr std::size_t kFalseSharingRange = 128;

// Page size assumed for the segment header; the header occupies one such page so that user data
// starts page-aligned.
inline constexpr std::size_t kSegmentHeaderSize = 4096;

static_assert(std::atomic<std::uint64_t>::is_always_lock_free,
              "shmring needs lock-free 64-bit atomics: they are shared between processes");
static_assert(std::atomic<std::uint32_t>::is_always_lock_free,
              "shmring needs lock-free 32-bit atomics: they are shared between processes");

// Rounds `value` up to a multiple of `alignment` (a power of two).
constexpr std::uint64_t align_up(std::uint64_t value, std::uint64_t alignment) noexcept {
  return (value + alignment - 1) & ~(alignment - 1);
}

constexpr bool is_power_of_two(std::uint64_t value) noexcept {
  return value != 0 && (value & (value - 1)) == 0;
}

}  // namespace shmring
