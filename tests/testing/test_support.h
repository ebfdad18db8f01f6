// Helpers for tests: unique keys, real child processes, and /dev/shm bookkeeping.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace shmring::testing {

// A key no other test (or concurrent test process) uses: "t_<pid>_<counter>_<label>".
std::string unique_key(const std::string& label);

// Forks a child that runs `body` and exits with its return value (uncaught exceptions exit 99).
// The child never returns into the test framework.
pid_t fork_child(const std::function<int()>& body);

// What happened to a child.
struct ChildResult {
  bool exited = false;    // exited normally; `code` holds the exit status
  bool signaled = false;  // killed by a signal; `code` holds the signal number
  bool timed_out = false; // still running after the timeout (it has been killed with SIGKILL)
  int code = 0;
  bool ok() const { return exited && code == 0; }
};

// Waits for `pid` up to `timeout`; a child still running then is killed and reaped.
ChildResult wait_child(pid_t pid, std::chrono::milliseconds timeout = std::chrono::seconds(60));

// Names under /dev/shm that start with `prefix`.
std::vector<std::string> dev_shm_entries(const std::string& prefix);

// Creates a segment at the file path `path` (SharedMemory file backend) in a child process that is
// then killed with SIGKILL: the segment is left stale (no live attachment).
void make_stale_segment(const std::string& path, std::size_t size = 64);

// Sanitizer runtimes turn SIGSEGV into a report and abort(); a child that is meant to be killed by
// the kernel for a bad write (into read-only shared memory) restores the default action first.
void default_sigsegv();

// Runs `body` in a forked child as user/group nobody (65534) and returns its result; used for
// permission tests (the suite runs as root).
ChildResult run_as_nobody(const std::function<int()>& body);

}  // namespace shmring::testing
