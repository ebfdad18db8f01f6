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

// A barrier for real processes: made before fork() (in MAP_SHARED anonymous memory), then each of
// `parties` processes calls arrive_and_wait() once per round. Spins with sched_yield; gives up
// (returns false) after `timeout`, e.g. when a party died.
class ProcessBarrier {
 public:
  explicit ProcessBarrier(int parties);
  ~ProcessBarrier();
  ProcessBarrier(const ProcessBarrier&) = delete;
  ProcessBarrier& operator=(const ProcessBarrier&) = delete;
  bool arrive_and_wait(std::chrono::milliseconds timeout = std::chrono::seconds(30));

 private:
  struct Shared;
  Shared* shared_;
  int parties_;
  unsigned long long round_ = 0;  // this process's own count of rounds
};

// How many rounds a race test runs: `fallback`, or the environment variable `name` if set (long
// runs by hand, e.g. SHMRING_LAST_OUT_ROUNDS=10000).
int rounds_from_env(const char* name, int fallback);

}  // namespace shmring::testing
