// Open-file-description (OFD) locks: the kernel-held evidence of who is attached to a segment.
//
// Every attachment opens the segment's file itself (its own open file description) and holds a
// shared lock on one byte far beyond the data (kAttachLockOffset). The kernel drops the lock when the
// description's last fd closes, including when the process is killed, so the set of these locks is
// exactly the set of live attachments. An exclusive lock on the same byte is taken to prove there is
// no other attachment (last detach, stale-segment reclaim).
#pragma once

#include <sys/types.h>

#include <cstdint>

namespace shmring::detail {

inline constexpr off_t kAttachLockOffset = off_t{1} << 62;

enum class LockAttempt { kTaken, kBusy, kError };

// Takes (or converts this description's lock to) a shared / exclusive lock, without waiting.
LockAttempt try_lock_shared(int fd);
LockAttempt try_lock_exclusive(int fd);
// Drops this description's lock on the attach byte (the attachment no longer counts).
void unlock_attach(int fd);

// Liveness bytes: byte kLivenessLockBase + n is "slot n of the segment's user is alive" (an
// exclusive OFD lock held by the user's attachment; see SharedMemory::hold_liveness).
inline constexpr off_t kLivenessLockBase = kAttachLockOffset + 1;
LockAttempt try_lock_liveness(int fd, std::uint32_t slot);
void unlock_liveness(int fd, std::uint32_t slot);
// The lock another description holds on liveness byte `slot`: F_UNLCK, F_WRLCK; -1 on error.
int liveness_lock_type(int fd, std::uint32_t slot);

// What another description holds on the attach byte, as seen from `fd`: F_UNLCK (nothing), F_RDLCK
// (at least one attachment) or F_WRLCK (someone is removing the segment); -1 on error.
int other_lock_type(int fd);

// Number of shared attach locks on the file open at `fd`, counted from /proc/locks (until two
// passes agree: the file is not one snapshot while other processes lock and unlock); -1 on error.
int count_attach_locks(int fd);

// True if the name at `path` still refers to the file open at `fd` (same device and inode).
bool same_file(int fd, const char* path);

}  // namespace shmring::detail
