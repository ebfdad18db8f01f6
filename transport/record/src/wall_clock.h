// Private: the wall clock (CLOCK_REALTIME, ns since the Unix epoch): what MCAP log times are on,
// so a recording's times mean something to every other tool.
#pragma once

#include <time.h>

#include <cstdint>

namespace shmring::record::detail {

inline std::uint64_t wall_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ULL + static_cast<std::uint64_t>(ts.tv_nsec);
}

}  // namespace shmring::record::detail
