// Small private helpers for system calls: errno text and the monotonic clock.
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <string>

namespace shmring::detail {

// "No such file or directory (errno 2)".
inline std::string errno_text(int errno_value) {
  char buffer[256];
  // GNU strerror_r returns the message (possibly not in buffer).
  const char* text = strerror_r(errno_value, buffer, sizeof buffer);
  return std::string(text) + " (errno " + std::to_string(errno_value) + ")";
}

inline std::int64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

inline timespec to_timespec(std::int64_t ns) {
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
  ts.tv_nsec = static_cast<long>(ns % 1'000'000'000);
  return ts;
}

// Retries a system call while it fails with EINTR.
template <typename F>
auto retry_eintr(F&& call) {
  for (;;) {
    auto result = call();
    if (result != -1 || errno != EINTR) return result;
  }
}

}  // namespace shmring::detail
