// Futex wait/wake on a 32-bit word in shared memory (process-shared: never FUTEX_PRIVATE_FLAG).
//
// Thread-safety: both calls may be made by any number of threads and processes on the same word.
// Memory ordering: none beyond what the kernel does: futex_wait's value check is not an acquire and
// futex_wake is not a release. Callers publish with their own atomics and re-check their condition
// after every return (see transport/src/wait.h for the no-lost-wake-up pairing).
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
// CLOCK_MONOTONIC. Makes one system call; blocks the calling thread. Never fails: unexpected errno
// values are reported as kWoken (the caller re-checks anyway).
FutexWaitResult futex_wait(const std::atomic<std::uint32_t>* word, std::uint32_t expected,
                           std::int64_t timeout_ns);

// Wakes up to `count` waiters on `word` (count < 0: all); returns how many were woken, or -1 with
// errno set. One system call, never blocks.
int futex_wake(const std::atomic<std::uint32_t>* word, int count);

}  // namespace shmring
