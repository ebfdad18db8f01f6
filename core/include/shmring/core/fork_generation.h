// Which side of a fork() this process is on, without a system call.
//
// fork_generation() is 0 in a process that was started normally and goes up by one in the child
// of every fork() (a pthread_atfork child handler, installed when the library is loaded). An
// object that remembers the generation it was made in can tell "I am still in the process that
// made me" with one relaxed load, where getpid() would be a system call on every check: the data
// path uses it to keep a forked child's copies of endpoints, loans and views from touching what
// belongs to the parent. Not seen by a child made by a raw clone() that skips the atfork handlers
// (such a child must not use what it inherited).
#pragma once

#include <atomic>
#include <cstdint>

namespace shmring {

namespace detail {
extern std::atomic<std::uint64_t> g_fork_generation;
}

inline std::uint64_t fork_generation() noexcept {
  // Relaxed: only this thread's own history matters (the child handler ran in this thread before
  // fork() returned in the child).
  return detail::g_fork_generation.load(std::memory_order_relaxed);
}

}  // namespace shmring
