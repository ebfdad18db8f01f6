// Small private helpers for system calls: errno text, signed monotonic time, EINTR retries.
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <string>

#include <sys/types.h>

#include "shmring/core/clock.h"

namespace shmring::detail {

// "No such file or directory (errno 2)".
inline std::string errno_text(int errno_value) {
  char buffer[256];
  // GNU strerror_r returns the message (possibly not in buffer).
  const char* text = strerror_r(errno_value, buffer, sizeof buffer);
  return std::string(text) + " (errno " + std::to_string(errno_value) + ")";
}

// "uid 1001 (bob)" (the name when the system knows one).
std::string user_text(uid_t uid);
// "0644".
std::string mode_text(mode_t mode);

// What a failed system call's errno says, in the classes every error code of core/ is made from
// (SharedMemoryError, SystemSemaphoreError and through them absl::Status): one table for all.
enum class ErrnoClass { kPermission, kNotFound, kExists, kBadName, kNoResources, kOther };

inline ErrnoClass classify_errno(int errno_value) {
  switch (errno_value) {
    case EACCES:
    case EPERM:
    case EROFS:
      return ErrnoClass::kPermission;
    case ENOENT:
    case EIDRM:  // a SysV id whose set was removed
      return ErrnoClass::kNotFound;
    case EEXIST:
      return ErrnoClass::kExists;
    case ENAMETOOLONG:
    case ENOTDIR:
    case ELOOP:
      return ErrnoClass::kBadName;
    case ENOSPC:
    case ENOMEM:
    case EMFILE:
    case ENFILE:
    case EFBIG:
    case EDQUOT:
    case ERANGE:  // SysV semaphore limits
      return ErrnoClass::kNoResources;
    default:
      return ErrnoClass::kOther;
  }
}

// shmring::monotonic_ns (shmring/core/clock.h) as a signed count, for deadline arithmetic.
inline std::int64_t monotonic_ns_signed() noexcept {
  return static_cast<std::int64_t>(shmring::monotonic_ns());
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
