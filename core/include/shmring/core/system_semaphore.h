// SystemSemaphore: a counting semaphore shared between processes (Qt's QSystemSemaphore contract),
// whose holds are given back by the kernel when the holding process dies.
//
// It is a System V semaphore set of three counters:
//   [0] available tokens; acquire takes one with SEM_UNDO, so the kernel returns it if the holder
//       dies without releasing;
//   [1] tokens currently held, changed without SEM_UNDO, so a holder that dies leaves its mark;
//   [2] tokens in existence (initial count plus tokens added by release() beyond what was held).
// With no deaths, [0] + [1] == [2]. After an acquire, any excess is the number of holds whose owner
// died; the acquirer reports previous_owner_died() and removes the excess. For a semaphore of count 1
// (a lock, which is how SharedMemory uses it) the detection is exact; for larger counts it is a hint.
//
// Keyed semaphores map the key to a System V key with a 32-bit hash (see sysv_key_for()), so two
// different keys can in principle collide. A keyed semaphore is trusted only if the caller's
// effective uid created it (or owns it): a set another user made under the same key is refused
// with kPermissionDenied, as a mutex must be the caller's own. SharedMemory gives each segment a
// set of its own under a random key it records in the segment header before the set exists
// (create_exclusive() / adopt() / find()), so a creator killed at any instruction leaves its set
// findable, and a forged header cannot make anyone remove a set that is not the segment's.
//
// Thread-safety: one object is used by one thread at a time; any number of objects in any processes
// may use the same semaphore.
//
// Blocking: only acquire() (no bound) and try_acquire_for() (at most its timeout) wait; every
// other call makes semget/semop/semctl system calls that do not wait. Memory ordering: each
// operation is a System V semop, a full barrier in the kernel, so a holder's writes before
// release() are visible to the next acquirer after its acquire().
// Errors: bool-returning calls set error(), error_string() and status() (reset on success).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace shmring {

// Qt's QSystemSemaphore::AccessMode.
enum class SemaphoreAccessMode {
  kOpen,   // use the existing semaphore, or create it with the initial count if there is none
  kCreate  // create it, or take it over and reset it to the initial count if it exists
};

// Qt's QSystemSemaphore::SystemSemaphoreError, value for value.
enum class SystemSemaphoreError {
  kNoError,
  kPermissionDenied,
  kKeyError,
  kAlreadyExists,
  kNotFound,
  kOutOfResources,
  kUnknownError
};

std::string_view to_string(SystemSemaphoreError error);

class SystemSemaphore {
 public:
  // The largest count a System V semaphore can hold (SEMVMX).
  static constexpr int kMaxCount = 32767;

  // An object with no semaphore (error() is kKeyError until set_key()).
  SystemSemaphore() = default;
  // Opens or creates the semaphore for `key` (see set_key()).
  explicit SystemSemaphore(std::string_view key, int initial_count = 0,
                           SemaphoreAccessMode mode = SemaphoreAccessMode::kOpen);
  // Releases every token this object still holds. A semaphore this object created with kCreate is
  // removed from the system, as QSystemSemaphore does.
  ~SystemSemaphore();

  SystemSemaphore(SystemSemaphore&& other) noexcept;
  SystemSemaphore& operator=(SystemSemaphore&& other) noexcept;
  SystemSemaphore(const SystemSemaphore&) = delete;
  SystemSemaphore& operator=(const SystemSemaphore&) = delete;

  // Switches this object to `key`; empty key: kKeyError. `initial_count` (0..kMaxCount) is used
  // when the semaphore is created (kOpen) or always (kCreate).
  void set_key(std::string_view key, int initial_count = 0,
               SemaphoreAccessMode mode = SemaphoreAccessMode::kOpen);
  std::string key() const { return key_; }

  // A new set under the System V key `key` (never IPC_PRIVATE), created exclusively with
  // `mode_bits`: kAlreadyExists when a set has that key (the caller picks another key). This is how
  // SharedMemory makes a segment's lock (see above).
  static SystemSemaphore create_exclusive(key_t key, int initial_count, mode_t mode_bits);
  // Adopts the set `id` recorded in a segment header, refusing (kNotFound) anything that is not
  // exactly what create_exclusive() made for that segment: System V key `key`, three counters,
  // created by `creator` (the segment file's owner), and the creation stamp `expected_ctime`
  // (creation_time(); a recycled id has another). So a forged or stale header cannot name
  // another set.
  static SystemSemaphore adopt(int id, std::int64_t expected_ctime, key_t key, uid_t creator);
  // Finds the set create_exclusive() made under `key` by `creator` (a creator that died before it
  // recorded the id leaves only the key); kNotFound if there is none or it is not such a set.
  static SystemSemaphore find(key_t key, uid_t creator);
  // A random System V key for create_exclusive(): never IPC_PRIVATE, never a key sysv_key_for()
  // can give (their top bit differs), so segment locks and keyed semaphores never meet.
  static key_t random_segment_key();

  bool is_valid() const { return id_ >= 0; }
  int id() const { return id_; }
  // The kernel's change time of the set, fixed once it is initialised; identifies it with id().
  std::int64_t creation_time() const { return ctime_; }

  // Takes one token, blocking until one is available (EINTR is retried). False on error: kNotFound
  // if the semaphore was removed, kPermissionDenied.
  bool acquire();
  // As acquire(), giving up after `timeout_ms` of CLOCK_MONOTONIC time (0: do not wait); then
  // false with error kUnknownError, error_string() saying "timed out", and timed_out() true.
  bool try_acquire_for(std::int64_t timeout_ms);
  // Takes one token only if one is available now; never waits.
  bool try_acquire() { return try_acquire_for(0); }
  // Gives back `n` tokens (n >= 1, else kUnknownError). Tokens this object holds are returned
  // first; the rest are added to the semaphore for good. kNotFound if the set was removed.
  // In a fork child, tokens the parent held are not the child's: they count as "the rest".
  bool release(int n = 1);
  // Removes the set from the system (only the set this object adopted: a set whose creation stamp
  // changed is left alone); waiters in other processes fail with kNotFound.
  // kPermissionDenied unless this user owns or created the set (or has CAP_SYS_ADMIN).
  bool remove();
  // Gives the set to `group` (its owner keeps the mode bits). Needs the rights chown needs.
  bool set_group(gid_t group);

  // True if the last acquire found that a previous holder died while holding a token.
  bool previous_owner_died() const { return previous_owner_died_; }
  bool timed_out() const { return timed_out_; }
  // Tokens this object holds.
  int held() const { return held_; }
  // Current available count (racy, for inspection), -1 on error.
  int value_approx() const;

  SystemSemaphoreError error() const { return error_; }
  std::string error_string() const { return error_string_; }
  absl::Status status() const;

  // The System V key used for `key` (a deterministic 32-bit hash, never IPC_PRIVATE).
  static key_t sysv_key_for(std::string_view key);

 private:
  bool open_or_create(int initial_count, SemaphoreAccessMode mode);
  // Whether the keyed set `id` is this user's: created by (or owned by) the effective uid, with
  // three counters and no bits for others beyond what this user would give. Sets error() if not.
  bool check_keyed_set(int id);
  bool fail(SystemSemaphoreError error, std::string_view operation, int errno_value) const;
  bool fail_message(SystemSemaphoreError error, std::string_view operation,
                    std::string_view message) const;
  void succeed() const;
  bool acquire_until(std::int64_t timeout_ms);
  void repair_dead_holders();
  void release_everything();

  std::string key_;
  int id_ = -1;
  std::int64_t ctime_ = 0;
  int held_ = 0;
  pid_t holder_pid_ = 0;  // the process whose SEM_UNDO adjustments back `held_` (not a fork child)
  pid_t created_by_ = 0;  // process that made it with kCreate: its destructor removes it
  bool previous_owner_died_ = false;
  bool timed_out_ = false;
  mutable SystemSemaphoreError error_ = SystemSemaphoreError::kKeyError;
  mutable std::string error_string_ = "SystemSemaphore: no key set";
};

}  // namespace shmring
