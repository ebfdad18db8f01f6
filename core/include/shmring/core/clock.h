// The one clock every timeout and deadline in shmring is measured on: CLOCK_MONOTONIC, in
// nanoseconds. Never goes back, unaffected by changes of the wall clock; no system call on Linux
// (vDSO).
#pragma once

#include <time.h>

#include <cstdint>

namespace shmring {

inline std::uint64_t monotonic_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ULL +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

}  // namespace shmring
