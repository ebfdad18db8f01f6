#include "shmring/core/system_semaphore.h"

#include <sys/ipc.h>
#include <sys/random.h>
#include <sys/sem.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <thread>
#include <utility>

#include "shmring/core/stable_hash.h"
#include "sys_util.h"

namespace shmring {
namespace {

// Indexes of the three counters in the set (see the header).
constexpr unsigned short kAvailable = 0;
constexpr unsigned short kHeld = 1;
constexpr unsigned short kTotal = 2;
constexpr int kSetSize = 3;

// glibc leaves this union to the caller.
union SemArg {
  int val;
  semid_ds* buf;
  unsigned short* array;
};

SystemSemaphoreError error_from_errno(int errno_value) {
  if (errno_value == EINVAL) return SystemSemaphoreError::kNotFound;  // the id no longer names a set
  switch (detail::classify_errno(errno_value)) {
    case detail::ErrnoClass::kPermission: return SystemSemaphoreError::kPermissionDenied;
    case detail::ErrnoClass::kNotFound: return SystemSemaphoreError::kNotFound;
    case detail::ErrnoClass::kExists: return SystemSemaphoreError::kAlreadyExists;
    case detail::ErrnoClass::kNoResources: return SystemSemaphoreError::kOutOfResources;
    case detail::ErrnoClass::kBadName:
    case detail::ErrnoClass::kOther: break;
  }
  return SystemSemaphoreError::kUnknownError;
}

std::int64_t change_time(int id) {
  semid_ds ds{};
  SemArg arg{};
  arg.buf = &ds;
  if (semctl(id, 0, IPC_STAT, arg) != 0) return -1;
  return static_cast<std::int64_t>(ds.sem_ctime);
}

// Sets the three counters, then makes one no-op semop so sem_otime becomes non-zero: openers of a
// keyed set wait for that, because semget() creates a set before its values are set.
bool initialise_set(int id, int initial_count) {
  unsigned short values[kSetSize] = {static_cast<unsigned short>(initial_count), 0,
                                     static_cast<unsigned short>(initial_count)};
  SemArg arg{};
  arg.array = values;
  if (semctl(id, 0, SETALL, arg) != 0) return false;
  sembuf touch[2] = {{kTotal, 1, 0}, {kTotal, -1, 0}};
  return semop(id, touch, 2) == 0;
}

bool wait_until_initialised(int id) {
  for (int i = 0; i < 2000; ++i) {  // up to ~2 s for a creator between semget and SETALL
    semid_ds ds{};
    SemArg arg{};
    arg.buf = &ds;
    if (semctl(id, 0, IPC_STAT, arg) != 0) return false;
    if (ds.sem_otime != 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  errno = ETIMEDOUT;
  return false;
}

}  // namespace

std::string_view to_string(SystemSemaphoreError error) {
  switch (error) {
    case SystemSemaphoreError::kNoError: return "kNoError";
    case SystemSemaphoreError::kPermissionDenied: return "kPermissionDenied";
    case SystemSemaphoreError::kKeyError: return "kKeyError";
    case SystemSemaphoreError::kAlreadyExists: return "kAlreadyExists";
    case SystemSemaphoreError::kNotFound: return "kNotFound";
    case SystemSemaphoreError::kOutOfResources: return "kOutOfResources";
    case SystemSemaphoreError::kUnknownError: return "kUnknownError";
  }
  return "?";
}

key_t SystemSemaphore::sysv_key_for(std::string_view key) {
  auto value = static_cast<key_t>(stable_hash64(key, /*seed=*/0x53454d41) & 0x7fffffff);
  return value == IPC_PRIVATE ? 1 : value;
}

SystemSemaphore::SystemSemaphore(std::string_view key, int initial_count,
                                 SemaphoreAccessMode mode) {
  set_key(key, initial_count, mode);
}

SystemSemaphore::~SystemSemaphore() { release_everything(); }

SystemSemaphore::SystemSemaphore(SystemSemaphore&& other) noexcept { *this = std::move(other); }

SystemSemaphore& SystemSemaphore::operator=(SystemSemaphore&& other) noexcept {
  if (this != &other) {
    release_everything();
    key_ = std::move(other.key_);
    id_ = std::exchange(other.id_, -1);
    ctime_ = other.ctime_;
    held_ = std::exchange(other.held_, 0);
    holder_pid_ = other.holder_pid_;
    created_by_ = std::exchange(other.created_by_, 0);
    previous_owner_died_ = other.previous_owner_died_;
    timed_out_ = other.timed_out_;
    error_ = other.error_;
    error_string_ = std::move(other.error_string_);
  }
  return *this;
}

void SystemSemaphore::release_everything() {
  if (id_ < 0) return;
  // A fork child inherits `held_` but not the parent's SEM_UNDO adjustments: only the process that
  // acquired gives the tokens back.
  if (held_ > 0 && holder_pid_ == getpid()) release(held_);
  if (created_by_ != 0 && created_by_ == getpid()) semctl(id_, 0, IPC_RMID);
  id_ = -1;
  held_ = 0;
  created_by_ = 0;
}

void SystemSemaphore::set_key(std::string_view key, int initial_count, SemaphoreAccessMode mode) {
  release_everything();
  key_ = std::string(key);
  if (key_.empty()) {
    fail_message(SystemSemaphoreError::kKeyError, "set_key", "the key is empty");
    return;
  }
  if (initial_count < 0 || initial_count > kMaxCount) {
    fail_message(SystemSemaphoreError::kUnknownError, "set_key",
                 "initial count " + std::to_string(initial_count) + " is outside 0.." +
                     std::to_string(kMaxCount));
    return;
  }
  open_or_create(initial_count, mode);
}

bool SystemSemaphore::open_or_create(int initial_count, SemaphoreAccessMode mode) {
  const key_t sysv_key = sysv_key_for(key_);
  for (int attempt = 0; attempt < 100; ++attempt) {
    int id = semget(sysv_key, kSetSize, IPC_CREAT | IPC_EXCL | 0600);
    if (id >= 0) {
      if (!initialise_set(id, initial_count)) {
        const int saved = errno;
        semctl(id, 0, IPC_RMID);
        return fail(error_from_errno(saved), "create", saved);
      }
      id_ = id;
      ctime_ = change_time(id);
      created_by_ = (mode == SemaphoreAccessMode::kCreate) ? getpid() : 0;
      succeed();
      return true;
    }
    if (errno != EEXIST) return fail(error_from_errno(errno), "create", errno);
    id = semget(sysv_key, 0, 0);
    if (id < 0) {
      if (errno == ENOENT) continue;  // removed between the two semget calls
      return fail(error_from_errno(errno), "open", errno);
    }
    if (!wait_until_initialised(id)) {
      if (errno == EIDRM || errno == EINVAL) continue;
      return fail(error_from_errno(errno), "open", errno);
    }
    if (!check_keyed_set(id)) return false;
    if (mode == SemaphoreAccessMode::kCreate && !initialise_set(id, initial_count)) {
      return fail(error_from_errno(errno), "reset", errno);
    }
    id_ = id;
    ctime_ = change_time(id);
    created_by_ = (mode == SemaphoreAccessMode::kCreate) ? getpid() : 0;
    succeed();
    return true;
  }
  return fail_message(SystemSemaphoreError::kUnknownError, "open",
                      "the semaphore kept disappearing while being opened");
}

namespace {

// The kernel's view of set `id` (IPC_STAT); false if it is gone or cannot be read.
bool stat_set(int id, semid_ds* ds) {
  SemArg arg{};
  arg.buf = ds;
  return semctl(id, 0, IPC_STAT, arg) == 0;
}

// Whether `ds` describes what create_exclusive() makes: `key`, three counters, created by
// `creator`.
// The key space of segment locks (random_segment_key): the top bit set.
constexpr std::uint32_t kSegmentKeyBit = 0x80000000u;

bool is_segment_set(const semid_ds& ds, key_t key, uid_t creator) {
  return (static_cast<std::uint32_t>(key) & kSegmentKeyBit) != 0 && ds.sem_perm.__key == key && ds.sem_nsems == static_cast<unsigned long>(kSetSize) &&
         ds.sem_perm.cuid == creator;
}

}  // namespace

bool SystemSemaphore::check_keyed_set(int id) {
  semid_ds ds{};
  if (!stat_set(id, &ds)) return fail(error_from_errno(errno), "open", errno);
  const uid_t me = geteuid();
  if (ds.sem_perm.cuid != me && ds.sem_perm.uid != me) {
    return fail_message(SystemSemaphoreError::kPermissionDenied, "open",
                        "the set under this key (id " + std::to_string(id) + ") belongs to uid " +
                            std::to_string(ds.sem_perm.uid) + ", not to this user (uid " +
                            std::to_string(me) + "); a semaphore must be the caller's own");
  }
  if (ds.sem_nsems != static_cast<unsigned long>(kSetSize)) {
    return fail_message(SystemSemaphoreError::kKeyError, "open",
                        "the set under this key has " + std::to_string(ds.sem_nsems) +
                            " semaphores, not a SystemSemaphore's 3");
  }
  return true;
}

SystemSemaphore SystemSemaphore::create_exclusive(key_t key, int initial_count, mode_t mode_bits) {
  SystemSemaphore sem;
  sem.key_.clear();
  if (key == IPC_PRIVATE || initial_count < 0 || initial_count > kMaxCount) {
    sem.fail_message(SystemSemaphoreError::kKeyError, "create_exclusive",
                     "bad key or initial count");
    return sem;
  }
  const int id =
      semget(key, kSetSize, IPC_CREAT | IPC_EXCL | static_cast<int>(mode_bits & 0777));
  if (id < 0) {
    sem.fail(error_from_errno(errno), "create_exclusive", errno);
    return sem;
  }
  if (!initialise_set(id, initial_count)) {
    const int saved = errno;
    semctl(id, 0, IPC_RMID);
    sem.fail(error_from_errno(saved), "create_exclusive", saved);
    return sem;
  }
  sem.id_ = id;
  sem.ctime_ = change_time(id);
  sem.succeed();
  return sem;
}

SystemSemaphore SystemSemaphore::adopt(int id, std::int64_t expected_ctime, key_t key,
                                       uid_t creator) {
  SystemSemaphore sem;
  semid_ds ds{};
  if (id < 0 || !stat_set(id, &ds)) {
    sem.fail(id < 0 ? SystemSemaphoreError::kNotFound : error_from_errno(errno), "adopt",
             id < 0 ? EINVAL : errno);
    return sem;
  }
  if (static_cast<std::int64_t>(ds.sem_ctime) != expected_ctime || !is_segment_set(ds, key, creator)) {
    sem.fail_message(SystemSemaphoreError::kNotFound, "adopt",
                     "semaphore id " + std::to_string(id) +
                         " is not the set the segment recorded (key, size, creator or creation "
                         "stamp differ)");
    return sem;
  }
  sem.id_ = id;
  sem.ctime_ = static_cast<std::int64_t>(ds.sem_ctime);
  sem.succeed();
  return sem;
}

SystemSemaphore SystemSemaphore::find(key_t key, uid_t creator) {
  SystemSemaphore sem;
  const int id = key == IPC_PRIVATE ? -1 : semget(key, 0, 0);
  semid_ds ds{};
  if (id < 0 || !stat_set(id, &ds) || !is_segment_set(ds, key, creator)) {
    sem.fail_message(SystemSemaphoreError::kNotFound, "find", "no segment lock under that key");
    return sem;
  }
  sem.id_ = id;
  sem.ctime_ = static_cast<std::int64_t>(ds.sem_ctime);
  sem.succeed();
  return sem;
}

key_t SystemSemaphore::random_segment_key() {
  std::uint32_t bits = 0;
  while (getrandom(&bits, sizeof bits, 0) != static_cast<ssize_t>(sizeof bits)) {
  }
  // Top bit set: sysv_key_for() clears it, so the two never meet; never IPC_PRIVATE (0).
  return static_cast<key_t>(bits | kSegmentKeyBit);
}

bool SystemSemaphore::acquire() { return acquire_until(-1); }

bool SystemSemaphore::try_acquire_for(std::int64_t timeout_ms) {
  return acquire_until(std::max<std::int64_t>(timeout_ms, 0));
}

bool SystemSemaphore::acquire_until(std::int64_t timeout_ms) {
  timed_out_ = false;
  previous_owner_died_ = false;
  if (id_ < 0) return fail_message(error_, "acquire", "no semaphore");
  // Taking from [0] with SEM_UNDO and adding to [1] without it, in one atomic semop: if this process
  // dies holding the token, the kernel gives [0] back and [1] keeps the mark.
  sembuf take[2] = {{kAvailable, -1, SEM_UNDO}, {kHeld, 1, 0}};
  const std::int64_t deadline =
      timeout_ms < 0 ? -1 : detail::monotonic_ns_signed() + timeout_ms * 1'000'000;
  for (;;) {
    int rc;
    if (deadline < 0) {
      rc = semop(id_, take, 2);
    } else {
      const std::int64_t left = std::max<std::int64_t>(deadline - detail::monotonic_ns_signed(), 0);
      if (left == 0) {
        take[0].sem_flg |= IPC_NOWAIT;
        rc = semop(id_, take, 2);
        take[0].sem_flg &= static_cast<short>(~IPC_NOWAIT);
      } else {
        timespec ts = detail::to_timespec(left);
        rc = semtimedop(id_, take, 2, &ts);
      }
    }
    if (rc == 0) break;
    if (errno == EINTR) continue;  // a signal: the monotonic deadline still holds
    if (errno == EAGAIN) {
      timed_out_ = true;
      return fail_message(SystemSemaphoreError::kUnknownError, "acquire",
                          "timed out after " + std::to_string(timeout_ms) + " ms");
    }
    return fail(error_from_errno(errno), "acquire", errno);
  }
  ++held_;
  holder_pid_ = getpid();
  repair_dead_holders();
  succeed();
  return true;
}

void SystemSemaphore::repair_dead_holders() {
  unsigned short values[kSetSize] = {};
  SemArg arg{};
  arg.array = values;
  if (semctl(id_, 0, GETALL, arg) != 0) return;  // a consistent snapshot of all three counters
  const int excess = int{values[kAvailable]} + int{values[kHeld]} - int{values[kTotal]};
  if (excess <= 0) return;
  previous_owner_died_ = true;
  sembuf forget{kHeld, static_cast<short>(-excess), IPC_NOWAIT};
  semop(id_, &forget, 1);  // best effort: a concurrent repair may already have done it
}

bool SystemSemaphore::release(int n) {
  if (id_ < 0) return fail_message(error_, "release", "no semaphore");
  if (held_ > 0 && holder_pid_ != getpid()) held_ = 0;  // inherited across fork: not ours
  if (n < 1) {
    return fail_message(SystemSemaphoreError::kUnknownError, "release",
                        "count " + std::to_string(n) + " is not positive");
  }
  const int from_held = std::min(n, held_);
  const int surplus = n - from_held;
  if (from_held > 0) {
    // The inverse of acquire: [0] back with SEM_UNDO (cancelling the acquire's adjustment), [1] down.
    sembuf give[2] = {{kAvailable, static_cast<short>(from_held), SEM_UNDO},
                      {kHeld, static_cast<short>(-from_held), IPC_NOWAIT}};
    if (semop(id_, give, 2) != 0) {
      if (errno != EAGAIN) return fail(error_from_errno(errno), "release", errno);
      // [1] was already repaired by someone who thought we died; give [0] back alone.
      sembuf give_only{kAvailable, static_cast<short>(from_held), SEM_UNDO};
      if (semop(id_, &give_only, 1) != 0) return fail(error_from_errno(errno), "release", errno);
    }
    held_ -= from_held;
  }
  if (surplus > 0) {
    // New tokens for good: no SEM_UNDO, and counted in [2] so they are not taken for dead holds.
    sembuf add[2] = {{kAvailable, static_cast<short>(surplus), 0},
                     {kTotal, static_cast<short>(surplus), 0}};
    if (semop(id_, add, 2) != 0) return fail(error_from_errno(errno), "release", errno);
  }
  succeed();
  return true;
}

bool SystemSemaphore::remove() {
  if (id_ < 0) return fail_message(error_, "remove", "no semaphore");
  // Only the set this object knows: a set removed by someone else whose id the kernel handed to a
  // new set meanwhile has another creation stamp (two last leavers of a segment can both try).
  if (ctime_ >= 0 && change_time(id_) != ctime_) {
    id_ = -1;
    held_ = 0;
    created_by_ = 0;
    return fail_message(SystemSemaphoreError::kNotFound, "remove", "the set is gone (its id now names another)");
  }
  if (semctl(id_, 0, IPC_RMID) != 0) return fail(error_from_errno(errno), "remove", errno);
  id_ = -1;
  held_ = 0;
  created_by_ = 0;
  succeed();
  return true;
}

bool SystemSemaphore::set_group(gid_t group) {
  if (id_ < 0) return fail_message(error_, "set_group", "no semaphore");
  semid_ds ds{};
  SemArg arg{};
  arg.buf = &ds;
  if (semctl(id_, 0, IPC_STAT, arg) != 0) return fail(error_from_errno(errno), "set_group", errno);
  ds.sem_perm.gid = group;
  if (semctl(id_, 0, IPC_SET, arg) != 0) return fail(error_from_errno(errno), "set_group", errno);
  ctime_ = change_time(id_);  // IPC_SET changes the stamp that identifies the set
  succeed();
  return true;
}

int SystemSemaphore::value_approx() const {
  if (id_ < 0) return -1;
  return semctl(id_, kAvailable, GETVAL);
}

absl::Status SystemSemaphore::status() const {
  switch (error_) {
    case SystemSemaphoreError::kNoError: return absl::OkStatus();
    case SystemSemaphoreError::kPermissionDenied: return absl::PermissionDeniedError(error_string_);
    case SystemSemaphoreError::kKeyError: return absl::InvalidArgumentError(error_string_);
    case SystemSemaphoreError::kAlreadyExists: return absl::AlreadyExistsError(error_string_);
    case SystemSemaphoreError::kNotFound: return absl::NotFoundError(error_string_);
    case SystemSemaphoreError::kOutOfResources:
      return absl::ResourceExhaustedError(error_string_);
    case SystemSemaphoreError::kUnknownError:
      return timed_out_ ? absl::DeadlineExceededError(error_string_)
                        : absl::UnknownError(error_string_);
  }
  return absl::UnknownError(error_string_);
}

bool SystemSemaphore::fail(SystemSemaphoreError error, std::string_view operation,
                           int errno_value) const {
  return fail_message(error, operation, detail::errno_text(errno_value));
}

bool SystemSemaphore::fail_message(SystemSemaphoreError error, std::string_view operation,
                                   std::string_view message) const {
  error_ = error;
  error_string_ = "SystemSemaphore::" + std::string(operation) + " (key '" + key_ + "', id " +
                  std::to_string(id_) + "): " + std::string(message);
  return false;
}

void SystemSemaphore::succeed() const {
  error_ = SystemSemaphoreError::kNoError;
  error_string_.clear();
}

}  // namespace shmring
