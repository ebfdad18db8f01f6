// Process identity that survives pid reuse: a pid plus the process's start time.
#pragma once

#include <sys/types.h>

#include <cstdint>

namespace shmring {

struct ProcessIdentity {
  std::int32_t pid = 0;
  std::uint64_t start_time = 0;  // clock ticks after boot (field 22 of /proc/<pid>/stat)
  friend bool operator==(const ProcessIdentity&, const ProcessIdentity&) = default;
};

// The calling process's identity (cached per thread, keyed by pid, so it is refreshed after
// fork). The first call in a thread reads /proc/self/stat; later calls make one getpid().
// Thread-safe. start_time is 0 if /proc cannot be read.
ProcessIdentity current_process();

// Start time of `pid`, or 0 if there is no such process (or /proc cannot tell). Reads
// /proc/<pid>/stat; thread-safe, never blocks beyond the file read.
std::uint64_t process_start_time(pid_t pid);

// True if the process `who` names is still running: same pid *and* same start time, so a recycled
// pid does not count. A zombie counts as dead. Slow path only: reads /proc. Thread-safe.
// A process /proc does not show (hidepid, EACCES) is asked about with kill(pid, 0): alive unless
// ESRCH, and then a recycled pid is not detected (it counts as alive: resources of a live peer are
// never reclaimed, a dead one's may be kept until its pid is free again). Processes sharing a
// channel must share a PID namespace (pids are compared as numbers). Also a system call.
bool is_alive(const ProcessIdentity& who);

}  // namespace shmring
