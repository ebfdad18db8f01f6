#include "shmring/core/process.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace shmring {
namespace {

// Reads /proc/<pid>/stat; returns false if the process is gone. `state` gets field 3.
bool read_stat(pid_t pid, char* state, std::uint64_t* start_time) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  const int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buffer[1024];
  const ssize_t n = read(fd, buffer, sizeof buffer - 1);
  close(fd);
  if (n <= 0) return false;
  buffer[n] = '\0';
  // The command name (field 2) is in parentheses and may contain spaces: parse after the last ')'.
  const char* p = std::strrchr(buffer, ')');
  if (p == nullptr || p[1] == '\0') return false;
  p += 2;
  *state = *p;
  // Field 3 is `state`; field 22 is `starttime`: skip 19 more fields.
  for (int field = 3; field < 22; ++field) {
    p = std::strchr(p, ' ');
    if (p == nullptr) return false;
    ++p;
  }
  *start_time = std::strtoull(p, nullptr, 10);
  return true;
}

}  // namespace

std::uint64_t process_start_time(pid_t pid) {
  char state = 0;
  std::uint64_t start = 0;
  return read_stat(pid, &state, &start) ? start : 0;
}

ProcessIdentity current_process() {
  static thread_local ProcessIdentity cached;
  const pid_t pid = getpid();
  if (cached.pid != pid) cached = ProcessIdentity{pid, process_start_time(pid)};
  return cached;
}

bool is_alive(const ProcessIdentity& who) {
  if (who.pid <= 0) return false;
  char state = 0;
  std::uint64_t start = 0;
  if (!read_stat(who.pid, &state, &start)) {
    // /proc may hide the process rather than lack it (hidepid=2 hides other users' processes; a
    // /proc mounted for another pid namespace; EACCES). Ask the kernel directly: only ESRCH means
    // gone. The start time cannot be checked then, so a reused pid counts as alive: the safe side,
    // since a live peer's resources must never be reclaimed.
    return kill(who.pid, 0) == 0 || errno != ESRCH;
  }
  if (state == 'Z' || state == 'X') return false;  // exited, waiting to be reaped
  return start == who.start_time;
}

}  // namespace shmring
