#include "shmring/core/futex.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>

#include "sys_util.h"

namespace shmring {

static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t));

FutexWaitResult futex_wait(const std::atomic<std::uint32_t>* word, std::uint32_t expected,
                           std::int64_t timeout_ns) {
  timespec relative{};
  timespec* timeout = nullptr;
  if (timeout_ns >= 0) {
    relative = detail::to_timespec(timeout_ns);
    timeout = &relative;  // FUTEX_WAIT takes a relative time, measured on CLOCK_MONOTONIC
  }
  const long rc = syscall(SYS_futex, reinterpret_cast<const std::uint32_t*>(word), FUTEX_WAIT,
                          expected, timeout, nullptr, 0);
  if (rc == 0) return FutexWaitResult::kWoken;
  switch (errno) {
    case EAGAIN: return FutexWaitResult::kValueChanged;
    case ETIMEDOUT: return FutexWaitResult::kTimedOut;
    case EINTR: return FutexWaitResult::kInterrupted;
    default: return FutexWaitResult::kWoken;  // treat as spurious: the caller re-checks
  }
}

int futex_wake(const std::atomic<std::uint32_t>* word, int count) {
  return static_cast<int>(syscall(SYS_futex, reinterpret_cast<const std::uint32_t*>(word),
                                  FUTEX_WAKE, count < 0 ? INT_MAX : count, nullptr, nullptr, 0));
}

}  // namespace shmring
