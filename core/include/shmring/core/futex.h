// Futex wait/wake on a 32-bit word in shared memory (process-shared: never FUTEX_PRIVATE_FLAG).
#pragma once

#include <atomic>
#include <cstdint>

namespace shmring {

enum class FutexWaitResult {
  kWoken,         // woken by futex_wake (or spuriously: callers re-check their condition)
  kValueChanged,  // *word != expected when the call started
  kTimedOut,      // the timeout passed
  kInterrupted    // a signal arrived; callers loop with their own monotonic deadline
};

// Sleeps while `*word == expected`, at most `timeout_ns` (< 0: no limit), measured on
// CLOCK_MONOTONIC. Makes one system call.
FutexWaitResult futex_wait(const std::atomic<std::uint32_t>* word, std::uint32_t expected,
                           std::int64_t timeout_ns);

// Wakes up to `count` waiters on `word`; returns how many were woken (or -1).
int futex_wake(const std::atomic<std::uint32_t>* word, int count);

}  // namespace shmring
