#include "ofd_lock.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>

namespace shmring::detail {
namespace {

flock lock_byte(short type, off_t offset) {
  flock lock{};
  lock.l_type = type;
  lock.l_whence = SEEK_SET;
  lock.l_start = offset;
  lock.l_len = 1;
  lock.l_pid = 0;  // required to be 0 for OFD locks
  return lock;
}
flock attach_byte(short type) { return lock_byte(type, kAttachLockOffset); }

LockAttempt try_lock_at(int fd, short type, off_t offset) {
  flock lock = lock_byte(type, offset);
  if (fcntl(fd, F_OFD_SETLK, &lock) == 0) return LockAttempt::kTaken;
  return (errno == EAGAIN || errno == EACCES) ? LockAttempt::kBusy : LockAttempt::kError;
}
LockAttempt try_lock(int fd, short type) { return try_lock_at(fd, type, kAttachLockOffset); }

}  // namespace

LockAttempt try_lock_shared(int fd) { return try_lock(fd, F_RDLCK); }
LockAttempt try_lock_exclusive(int fd) { return try_lock(fd, F_WRLCK); }
void unlock_attach(int fd) { try_lock(fd, F_UNLCK); }

LockAttempt try_lock_liveness(int fd, std::uint32_t slot) {
  return try_lock_at(fd, F_WRLCK, kLivenessLockBase + static_cast<off_t>(slot));
}
void unlock_liveness(int fd, std::uint32_t slot) {
  try_lock_at(fd, F_UNLCK, kLivenessLockBase + static_cast<off_t>(slot));
}
int liveness_lock_type(int fd, std::uint32_t slot) {
  // Tested as a read lock: it conflicts with the exclusive liveness locks, and F_OFD_GETLK needs no
  // write access for it (a read-only attachment can ask).
  flock lock = lock_byte(F_RDLCK, kLivenessLockBase + static_cast<off_t>(slot));
  if (fcntl(fd, F_OFD_GETLK, &lock) != 0) return -1;
  return lock.l_type;
}

int other_lock_type(int fd) {
  flock lock = attach_byte(F_WRLCK);
  if (fcntl(fd, F_OFD_GETLK, &lock) != 0) return -1;
  return lock.l_type;
}

namespace {

// One pass over /proc/locks: the shared attach-byte OFD locks on the file `st` names.
int count_attach_locks_once(const struct stat& st) {
  FILE* file = std::fopen("/proc/locks", "re");
  if (file == nullptr) return -1;
  char wanted[64];
  std::snprintf(wanted, sizeof wanted, "%02x:%02x:%" PRIu64, major(st.st_dev), minor(st.st_dev),
                static_cast<std::uint64_t>(st.st_ino));
  char start[32];
  std::snprintf(start, sizeof start, "%" PRId64, static_cast<std::int64_t>(kAttachLockOffset));
  // Lines look like "12: OFDLCK ADVISORY  READ  -1 00:1a:1234 4611686018427387904 4611...".
  // Waiters are listed as "12: -> OFDLCK ..." and are not holders.
  int count = 0;
  char line[512];
  while (std::fgets(line, sizeof line, file) != nullptr) {
    if (std::strstr(line, "->") != nullptr) continue;
    char kind[16], advisory[16], mode[16], pid[16], device[64], from[32];
    if (std::sscanf(line, "%*s %15s %15s %15s %15s %63s %31s", kind, advisory, mode, pid, device,
                    from) != 6) {
      continue;
    }
    if (std::strcmp(kind, "OFDLCK") == 0 && std::strcmp(mode, "READ") == 0 &&
        std::strcmp(device, wanted) == 0 && std::strcmp(from, start) == 0) {
      ++count;
    }
  }
  std::fclose(file);
  return count;
}

}  // namespace

int count_attach_locks(int fd) {
  struct stat st {};
  if (fstat(fd, &st) != 0) return -1;
  // The kernel produces /proc/locks a page per read() and lets the lock list change between
  // pages, so while other processes take and drop locks one pass can show a lock twice or miss
  // one. Two passes that agree are taken as the answer (a few tries, then the last pass).
  int count = count_attach_locks_once(st);
  for (int attempt = 0; attempt < 8 && count >= 0; ++attempt) {
    const int again = count_attach_locks_once(st);
    if (again == count) break;
    count = again;
  }
  return count;
}

bool same_file(int fd, const char* path) {
  struct stat by_fd {}, by_name {};
  if (fstat(fd, &by_fd) != 0 || stat(path, &by_name) != 0) return false;
  return by_fd.st_dev == by_name.st_dev && by_fd.st_ino == by_name.st_ino;
}

}  // namespace shmring::detail
