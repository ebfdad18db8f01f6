// SharedMemory: lifecycle of a segment. How the pieces fit:
//  - a segment is a file (under /dev/shm, at a path, or a memfd) holding a header page + user data;
//  - each attachment has its own open file description with a shared OFD lock on the attach byte
//    (ofd_lock.h), so "who is attached" is kernel state that a crash cannot leave wrong;
//  - whoever takes the exclusive lock on that byte is alone: the last detacher removes the segment,
//    a creator that finds an unlocked leftover reclaims it;
//  - after taking any lock on a named file we check that the name still refers to the file we opened
//    (a remover may have unlinked it in between), and retry if not;
//  - the segment lock is a private SystemSemaphore whose id and stamp live in the header.
#include "shmring/core/shared_memory.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <optional>
#include <thread>
#include <utility>

#include "fork_handlers.h"
#include "ofd_lock.h"
#include "segment_files.h"
#include "shmring/core/layout.h"
#include "shmring/core/process.h"
#include "shmring/core/segment_directory.h"
#include "shmring/core/segment_header.h"
#include "shmring/core/stable_hash.h"
#include "sys_util.h"

namespace shmring {
namespace {

using detail::Mapping;
using detail::Reclaim;
using detail::map_file;
using detail::reclaim_if_stale;
using detail::unmap;

// Bounds on the retry loops that resolve races with concurrent creators and removers.
constexpr int kRaceRetries = 10000;
constexpr std::int64_t kCreatorWaitNs = 5'000'000'000;  // how long an attacher waits for "ready"
constexpr std::int64_t kCreateOrAttachNs = 10'000'000'000;
constexpr std::size_t kReadablePrefix = 40;
constexpr std::size_t kMaxUserSize =
    static_cast<std::size_t>(INT64_MAX) - kSegmentHeaderSize - (std::size_t{1} << 30);

SharedMemoryError error_from_errno(int errno_value) {
  switch (detail::classify_errno(errno_value)) {
    case detail::ErrnoClass::kPermission: return SharedMemoryError::kPermissionDenied;
    case detail::ErrnoClass::kNotFound: return SharedMemoryError::kNotFound;
    case detail::ErrnoClass::kExists: return SharedMemoryError::kAlreadyExists;
    case detail::ErrnoClass::kBadName: return SharedMemoryError::kKeyError;
    case detail::ErrnoClass::kNoResources: return SharedMemoryError::kOutOfResources;
    case detail::ErrnoClass::kOther: break;
  }
  return SharedMemoryError::kUnknownError;
}

void pause_briefly() { std::this_thread::sleep_for(std::chrono::microseconds(50)); }

std::string hex16(std::uint64_t value) {
  char buffer[17];
  std::snprintf(buffer, sizeof buffer, "%016llx", static_cast<unsigned long long>(value));
  return buffer;
}

// Bytes to allocate for `wanted`: hugetlbfs only takes whole huge pages, whose size it reports as
// the filesystem block size.
std::size_t allocation_bytes(int fd, std::size_t wanted) {
  struct statfs fs {};
  if (fstatfs(fd, &fs) == 0 && fs.f_type == HUGETLBFS_MAGIC && fs.f_bsize > 0 &&
      is_power_of_two(static_cast<std::uint64_t>(fs.f_bsize))) {
    return static_cast<std::size_t>(align_up(wanted, static_cast<std::uint64_t>(fs.f_bsize)));
  }
  return wanted;
}

// Opens the descriptor that holds an attachment's OFD lock. It is opened read-write whenever the
// caller may, even for a kReadOnly attachment: it is never mapped, and only a writable description
// can take the exclusive lock that lets the last attachment remove the segment. Without write
// permission it falls back to read-only (that attachment then cannot be the one that removes it;
// the segment becomes stale when it goes, for the next create() or `shmring gc`).
int open_lock_descriptor(const std::string& path, AccessMode mode, int extra_flags) {
  const int fd = open(path.c_str(), O_RDWR | O_CLOEXEC | extra_flags);
  if (fd >= 0 || mode == AccessMode::kReadWrite || (errno != EACCES && errno != EROFS)) return fd;
  return open(path.c_str(), O_RDONLY | O_CLOEXEC | extra_flags);
}

// A new open file description of the file open at `fd` (not a dup, which would share one).
int reopen(int fd, bool writable) {
  const std::string self = "/proc/self/fd/" + std::to_string(fd);
  return open(self.c_str(), (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);
}

std::size_t memory_available_for_memfd() {
  struct sysinfo info {};
  if (sysinfo(&info) != 0) return SIZE_MAX;
  return (static_cast<std::size_t>(info.totalram) + info.totalswap) * info.mem_unit;
}

}  // namespace

std::string_view to_string(SharedMemoryError error) {
  switch (error) {
    case SharedMemoryError::kNoError: return "kNoError";
    case SharedMemoryError::kPermissionDenied: return "kPermissionDenied";
    case SharedMemoryError::kInvalidSize: return "kInvalidSize";
    case SharedMemoryError::kKeyError: return "kKeyError";
    case SharedMemoryError::kAlreadyExists: return "kAlreadyExists";
    case SharedMemoryError::kNotFound: return "kNotFound";
    case SharedMemoryError::kLockError: return "kLockError";
    case SharedMemoryError::kOutOfResources: return "kOutOfResources";
    case SharedMemoryError::kUnknownError: return "kUnknownError";
  }
  return "?";
}

absl::StatusCode to_status_code(SharedMemoryError error) {
  switch (error) {
    case SharedMemoryError::kNoError: return absl::StatusCode::kOk;
    case SharedMemoryError::kPermissionDenied: return absl::StatusCode::kPermissionDenied;
    case SharedMemoryError::kInvalidSize: return absl::StatusCode::kInvalidArgument;
    case SharedMemoryError::kKeyError: return absl::StatusCode::kInvalidArgument;
    case SharedMemoryError::kAlreadyExists: return absl::StatusCode::kAlreadyExists;
    case SharedMemoryError::kNotFound: return absl::StatusCode::kNotFound;
    case SharedMemoryError::kLockError: return absl::StatusCode::kAborted;
    case SharedMemoryError::kOutOfResources: return absl::StatusCode::kResourceExhausted;
    case SharedMemoryError::kUnknownError: return absl::StatusCode::kUnknown;
  }
  return absl::StatusCode::kUnknown;
}

std::string SharedMemory::native_key_for(std::string_view key) {
  // Readable part: the first bytes of the key with anything outside [A-Za-z0-9._-] made '_'; the
  // hash covers the whole key, so keys differing only in replaced bytes still differ.
  std::string readable;
  for (const char c : key.substr(0, kReadablePrefix)) {
    const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                       c == '.' || c == '_' || c == '-';
    readable.push_back(plain ? c : '_');
  }
  return std::string(kSegmentNamePrefix) + readable + "_" + hex16(stable_hash64(key));
}

SharedMemory::SharedMemory() = default;

SharedMemory::SharedMemory(std::string_view key) { set_key(key); }

SharedMemory::~SharedMemory() {
  if (is_attached()) detach();
}

SharedMemory::SharedMemory(SharedMemory&& other) noexcept { *this = std::move(other); }

SharedMemory& SharedMemory::operator=(SharedMemory&& other) noexcept {
  if (this == &other) return *this;
  if (is_attached()) detach();
  backend_ = other.backend_;
  key_ = std::move(other.key_);
  native_key_ = std::move(other.native_key_);
  permissions_ = other.permissions_;
  group_ = other.group_;
  trust_ = std::move(other.trust_);
  fd_ = std::exchange(other.fd_, -1);
  lock_fd_ = std::exchange(other.lock_fd_, -1);
  mapping_ = std::exchange(other.mapping_, nullptr);
  mapping_size_ = std::exchange(other.mapping_size_, 0);
  size_ = std::exchange(other.size_, 0);
  access_mode_ = other.access_mode_;
  attach_pid_ = other.attach_pid_;
  lock_ = std::move(other.lock_);
  holds_lock_ = std::exchange(other.holds_lock_, false);
  previous_owner_died_ = other.previous_owner_died_;
  error_ = other.error_;
  error_string_ = std::move(other.error_string_);
  if (is_attached()) {
    ForkHandlers::remove(&other);
    ForkHandlers::add(this);
  }
  return *this;
}

void SharedMemory::adopt_attachment(int locked_fd, int data_fd, void* mapping,
                                    std::size_t mapping_size, std::size_t size, AccessMode mode,
                                    SystemSemaphore lock) {
  lock_fd_ = locked_fd;
  fd_ = data_fd;
  mapping_ = mapping;
  mapping_size_ = mapping_size;
  size_ = size;
  access_mode_ = mode;
  attach_pid_ = getpid();
  lock_ = lock.is_valid() ? std::make_unique<SystemSemaphore>(std::move(lock)) : nullptr;
  holds_lock_ = false;
  previous_owner_died_ = false;
  ForkHandlers::add(this);
}

void SharedMemory::set_key(std::string_view key) {
  if (backend_ != Backend::kMemfd && key == key_ && !key_.empty()) return;
  if (is_attached()) detach();
  key_ = std::string(key);
  native_key_ = key_.empty() ? std::string() : native_key_for(key_);
  if (backend_ != Backend::kMemfd) backend_ = Backend::kPosix;
  succeed();
}

void SharedMemory::set_native_key(std::string_view native_key) {
  if (is_attached()) detach();
  key_.clear();
  native_key_ = std::string(native_key);
  if (backend_ != Backend::kMemfd) {
    backend_ = (!native_key_.empty() && native_key_.front() == '/') ? Backend::kFile
                                                                     : Backend::kPosix;
  }
  succeed();
}

std::string SharedMemory::key() const { return key_; }
std::string SharedMemory::native_key() const { return native_key_; }

void SharedMemory::set_backend(Backend backend) {
  if (is_attached()) detach();
  backend_ = backend;
}

void* SharedMemory::data() {
  return mapping_ == nullptr ? nullptr : static_cast<char*>(mapping_) + kSegmentHeaderSize;
}
const void* SharedMemory::data() const { return const_data(); }
const void* SharedMemory::const_data() const {
  return mapping_ == nullptr ? nullptr : static_cast<const char*>(mapping_) + kSegmentHeaderSize;
}

std::string SharedMemory::path_for_open() const {
  return backend_ == Backend::kPosix ? "/dev/shm/" + native_key_ : native_key_;
}

std::string SharedMemory::describe() const {
  std::string text = "key '" + key_ + "'";
  if (backend_ == Backend::kMemfd) return text + " (memfd)";
  return text + " (native '" + native_key_ + "')";
}

bool SharedMemory::fail(SharedMemoryError error, std::string_view operation,
                        std::string_view reason, int errno_value) const {
  error_ = error;
  error_string_ = "SharedMemory::" + std::string(operation) + ": " + describe() + ": " +
                  std::string(reason);
  if (errno_value != 0) error_string_ += ": " + detail::errno_text(errno_value);
  return false;
}

bool SharedMemory::succeed() const {
  error_ = SharedMemoryError::kNoError;
  error_string_.clear();
  return true;
}

absl::Status SharedMemory::status() const {
  if (error_ == SharedMemoryError::kNoError) return absl::OkStatus();
  return absl::Status(to_status_code(error_), error_string_);
}

namespace {

// Checks a native key for the backend; returns an explanation if it is unusable.
std::string native_key_problem(Backend backend, const std::string& native_key) {
  if (backend == Backend::kMemfd) return {};
  if (native_key.empty()) return "the key is empty";
  if (backend == Backend::kFile) {
    if (native_key.front() != '/') return "a file segment needs an absolute path";
    if (native_key.size() >= PATH_MAX) return "the path is too long";
    return {};
  }
  if (native_key.size() > NAME_MAX) return "the native key is longer than NAME_MAX (255)";
  if (native_key.find('/') != std::string::npos) return "a POSIX native key cannot contain '/'";
  if (native_key == "." || native_key == "..") return "'.' and '..' are not segment names";
  if (native_key.find('\0') != std::string::npos) return "the native key contains a NUL byte";
  return {};
}

}  // namespace

bool SharedMemory::create(std::size_t size, AccessMode mode) {
  if (is_attached()) return fail(SharedMemoryError::kAlreadyExists, "create", "already attached");
  bool already_exists = false;
  return do_create(size, mode, &already_exists);
}

bool SharedMemory::check_create_request(std::size_t size) const {
  if (const std::string problem = native_key_problem(backend_, native_key_); !problem.empty()) {
    return fail(SharedMemoryError::kKeyError, "create", problem);
  }
  if (size == 0) return fail(SharedMemoryError::kInvalidSize, "create", "size 0");
  if (size > kMaxUserSize) {
    return fail(SharedMemoryError::kInvalidSize, "create",
                "size " + std::to_string(size) + " cannot be represented as a file size");
  }
  if (backend_ == Backend::kMemfd && size > memory_available_for_memfd()) {
    return fail(SharedMemoryError::kOutOfResources, "create",
                "size " + std::to_string(size) + " exceeds the machine's memory and swap", ENOMEM);
  }
  return true;
}

SharedMemory::CreateStep SharedMemory::create_file(const std::string& path, bool named, int* fd,
                                                   bool* already_exists) {
  if (named) {
    *fd = open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, permissions_);
  } else {
    const std::string label = "shmring:" + key_;
    *fd = memfd_create(label.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING);
  }
  if (*fd < 0) {
    const int saved = errno;
    if (saved != EEXIST) {
      fail(error_from_errno(saved), "create", "cannot create", saved);
      return CreateStep::kFailed;
    }
    int reclaim_errno = 0;
    uid_t owner = 0;
    switch (reclaim_if_stale(path, &reclaim_errno, &owner)) {
      case Reclaim::kNotOurs:
        *already_exists = true;
        fail(SharedMemoryError::kAlreadyExists, "create",
             "the name is held by a file of uid " + std::to_string(owner) +
                 ", not this user's: it is neither used nor removed",
             EEXIST);
        return CreateStep::kFailed;
      case Reclaim::kLive:
        *already_exists = true;
        fail(SharedMemoryError::kAlreadyExists, "create", "a live segment already has this key", EEXIST);
        return CreateStep::kFailed;
      case Reclaim::kForeign:
        *already_exists = true;
        fail(SharedMemoryError::kAlreadyExists, "create",
             "the name is taken by a file that is not a shmring segment", EEXIST);
        return CreateStep::kFailed;
      case Reclaim::kError:
        fail(error_from_errno(reclaim_errno), "create", "cannot inspect the existing segment",
             reclaim_errno);
        return CreateStep::kFailed;
      case Reclaim::kRetry:
        pause_briefly();
        return CreateStep::kRetry;
      case Reclaim::kReclaimed:
        return CreateStep::kRetry;
    }
  }
  // The file is ours. Count ourselves as an attachment before anything else, so a concurrent
  // creator does not take our half-made segment for a stale one.
  if (detail::try_lock_shared(*fd) != detail::LockAttempt::kTaken ||
      (named && !detail::same_file(*fd, path.c_str()))) {
    close(*fd);  // a reclaimer removed it before we locked it: start again
    *fd = -1;
    return CreateStep::kRetry;
  }
  return CreateStep::kCreated;
}

namespace {

// Why a step of building a new segment failed.
struct BuildError {
  SharedMemoryError error;
  std::string reason;
  int errno_value;
};

// Gives the new file its mode, group and size, with every page reserved (a full filesystem is an
// error here instead of a SIGBUS later); a memfd is sealed. *total: bytes to map.
std::optional<BuildError> size_new_file(int data_fd, bool named, std::size_t size, mode_t permissions,
                                        gid_t group, std::size_t* total) {
  fchmod(data_fd, permissions);  // exact mode bits, whatever the umask
  if (group != static_cast<gid_t>(-1) && fchown(data_fd, static_cast<uid_t>(-1), group) != 0) {
    return BuildError{error_from_errno(errno), "cannot give the segment to group " + std::to_string(group),
                      errno};
  }
  *total = allocation_bytes(data_fd, kSegmentHeaderSize + size);
  if (ftruncate(data_fd, static_cast<off_t>(*total)) != 0) {
    const int saved = errno;
    return BuildError{saved == EINVAL ? SharedMemoryError::kInvalidSize : error_from_errno(saved),
                      "cannot size the segment to " + std::to_string(*total) + " bytes", saved};
  }
  if (const int rc = posix_fallocate(data_fd, 0, static_cast<off_t>(*total)); rc != 0) {
    return BuildError{rc == EINVAL ? SharedMemoryError::kInvalidSize : error_from_errno(rc),
                      "cannot reserve " + std::to_string(*total) + " bytes", rc};
  }
  if (!named && fcntl(data_fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
    return BuildError{error_from_errno(errno), "cannot seal the memfd", errno};
  }
  return std::nullopt;
}

// Starts the header of a new segment: the magic, then the key its lock set will have. The
// compiler may not move either store after the set's creation, nor the key before the magic: a
// creator killed in the middle must leave zeros, the magic alone, or the magic and the key, which
// is what the stale-segment reclaim recognises as a half-made segment of ours (anything else is a
// foreign file it never removes); with the key, the reclaim also finds and removes the set. A
// signal fence only restrains the compiler; the stores are to this process's mapping, which the
// kernel keeps whatever the process did before it was killed.
void begin_new_header(void* address, key_t lock_key) {
  auto* header = static_cast<SegmentHeader*>(address);
  header->magic = kSegmentMagic;
  std::atomic_signal_fence(std::memory_order_seq_cst);
  header->lock_semaphore_id = -1;
  header->lock_semaphore_key = static_cast<std::int32_t>(lock_key);
  std::atomic_signal_fence(std::memory_order_seq_cst);
}

// Fills the rest of a new segment's header and publishes it (state kReady).
void finish_new_header(void* address, const std::string& key, std::size_t size, mode_t permissions,
                       const SystemSemaphore& lock) {
  auto* header = static_cast<SegmentHeader*>(address);
  const ProcessIdentity me = current_process();
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  header->layout_version = kSegmentLayoutVersion;
  header->header_size = kSegmentHeaderSize;
  header->user_size = size;
  header->lock_semaphore_id = lock.id();
  header->lock_semaphore_ctime = lock.creation_time();
  header->permissions = permissions;
  header->creator_pid = me.pid;
  header->creator_start_time = me.start_time;
  header->created_unix_ns = std::int64_t{now.tv_sec} * 1'000'000'000 + now.tv_nsec;
  const std::size_t key_length = std::min(key.size(), kSegmentKeyCapacity);
  std::memcpy(header->key, key.data(), key_length);
  header->key_length = static_cast<std::uint32_t>(key_length);
  // SYNC(segment_ready): publishes every field above; pairs with the acquire load in
  // read_segment_header().
  header->state.store(static_cast<std::uint32_t>(SegmentState::kReady), std::memory_order_release);
}

// The segment's lock: a set under a random key, recorded in the header before the set exists
// (begin_new_header). A key another set has already is replaced by a fresh one.
SystemSemaphore make_segment_lock(void* header, mode_t permissions) {
  SystemSemaphore lock;
  for (int attempt = 0; attempt < 64; ++attempt) {
    const key_t key = SystemSemaphore::random_segment_key();
    begin_new_header(header, key);
    lock = SystemSemaphore::create_exclusive(key, 1, permissions);
    if (lock.error() != SystemSemaphoreError::kAlreadyExists) break;
  }
  return lock;
}

}  // namespace

bool SharedMemory::build_segment(int fd, const std::string& path, bool named, std::size_t size,
                                 AccessMode mode) {
  // Everything but the lock goes through a second description: a mapping keeps its description
  // alive in every fork child, and the lock's description must die with this attachment.
  const int data_fd = reopen(fd, true);
  auto abandon = [&](SharedMemoryError error, std::string_view reason, int errno_value) {
    if (named && detail::same_file(fd, path.c_str())) unlink(path.c_str());
    if (data_fd >= 0) close(data_fd);
    close(fd);
    return fail(error, "create", reason, errno_value);
  };
  if (data_fd < 0) return abandon(error_from_errno(errno), "cannot reopen", errno);
  std::size_t total = 0;
  if (const std::optional<BuildError> e = size_new_file(data_fd, named, size, permissions_, group_, &total)) {
    return abandon(e->error, e->reason, e->errno_value);
  }
  void* address = mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_SHARED, data_fd, 0);
  if (address == MAP_FAILED) return abandon(error_from_errno(errno), "cannot map", errno);

  SystemSemaphore lock = make_segment_lock(address, permissions_);
  if (lock.is_valid() && group_ != static_cast<gid_t>(-1) && !lock.set_group(group_)) {
    lock.remove();
  }
  if (!lock.is_valid()) {
    munmap(address, total);
    // The system's semaphore sets (or this user's share of them) may be used up: say so.
    const SharedMemoryError error = lock.error() == SystemSemaphoreError::kOutOfResources
                                        ? SharedMemoryError::kOutOfResources
                                        : SharedMemoryError::kLockError;
    return abandon(error, "cannot create the segment lock: " + lock.error_string(), 0);
  }
  finish_new_header(address, key_, size, permissions_, lock);
  if (mode == AccessMode::kReadOnly) mprotect(address, total, PROT_READ);
  adopt_attachment(fd, data_fd, address, total, size, mode, std::move(lock));
  return succeed();
}

bool SharedMemory::do_create(std::size_t size, AccessMode mode, bool* already_exists) {
  *already_exists = false;
  if (!check_create_request(size)) return false;
  const std::string path = path_for_open();
  const bool named = backend_ != Backend::kMemfd;
  for (int attempt = 0; attempt < kRaceRetries; ++attempt) {
    int fd = -1;
    switch (create_file(path, named, &fd, already_exists)) {
      case CreateStep::kFailed: return false;
      case CreateStep::kRetry: continue;
      case CreateStep::kCreated: return build_segment(fd, path, named, size, mode);
    }
  }
  return fail(SharedMemoryError::kUnknownError, "create",
              "gave up after too many races with concurrent creators and removers");
}

bool SharedMemory::create_or_attach(std::size_t size, AccessMode mode) {
  if (is_attached()) {
    return fail(SharedMemoryError::kAlreadyExists, "create_or_attach", "already attached");
  }
  const std::int64_t deadline = detail::monotonic_ns_signed() + kCreateOrAttachNs;
  while (detail::monotonic_ns_signed() < deadline) {
    bool already_exists = false;
    if (do_create(size, mode, &already_exists)) return true;
    if (!already_exists || backend_ == Backend::kMemfd) return false;
    bool not_found = false;
    if (do_attach(mode, &not_found)) return true;
    if (!not_found) return false;
    // It went away between the two steps (its last user detached): create it again.
  }
  return fail(SharedMemoryError::kUnknownError, "create_or_attach",
              "the segment kept appearing and disappearing for 10 s");
}

bool SharedMemory::attach(AccessMode mode) {
  if (is_attached()) return fail(SharedMemoryError::kAlreadyExists, "attach", "already attached");
  bool not_found = false;
  return do_attach(mode, &not_found);
}

bool SharedMemory::do_attach(AccessMode mode, bool* not_found) {
  *not_found = false;
  if (backend_ == Backend::kMemfd) {
    *not_found = true;
    return fail(SharedMemoryError::kNotFound, "attach",
                "a memfd segment has no name; join it with attach_fd()");
  }
  if (const std::string problem = native_key_problem(backend_, native_key_); !problem.empty()) {
    return fail(SharedMemoryError::kKeyError, "attach", problem);
  }
  const std::string path = path_for_open();
  for (int attempt = 0; attempt < kRaceRetries; ++attempt) {
    const int fd = open_lock_descriptor(path, mode, O_NOFOLLOW);
    if (fd < 0) {
      const int saved = errno;
      *not_found = (saved == ENOENT);
      std::string what = "cannot open";
      struct stat st {};
      if ((saved == EACCES || saved == EPERM) && lstat(path.c_str(), &st) == 0) {
        what += " the file of " + detail::user_text(st.st_uid) + ", mode " + detail::mode_text(st.st_mode & 0777);
      }
      return fail(error_from_errno(saved), "attach", what, saved);
    }
    if (!check_trust(fd, "attach")) {
      close(fd);
      return false;
    }
    const detail::LockAttempt locked = detail::try_lock_shared(fd);
    if (locked == detail::LockAttempt::kError) {
      const int saved = errno;
      close(fd);
      return fail(error_from_errno(saved), "attach", "cannot lock", saved);
    }
    if (locked == detail::LockAttempt::kBusy || !detail::same_file(fd, path.c_str())) {
      close(fd);  // being removed, or already replaced: look again
      pause_briefly();
      continue;
    }
    const bool ok = finish_attach(fd, mode, false);
    if (!ok && error_ == SharedMemoryError::kNotFound) *not_found = true;
    return ok;
  }
  return fail(SharedMemoryError::kUnknownError, "attach",
              "gave up after too many races with concurrent creators and removers");
}

bool SharedMemory::check_trust(int fd, std::string_view operation) const {
  struct stat st {};
  if (fstat(fd, &st) != 0) return fail(error_from_errno(errno), operation, "cannot stat", errno);
  if (!S_ISREG(st.st_mode)) {
    return fail(SharedMemoryError::kUnknownError, operation, "not a regular file: not a segment");
  }
  if (trust_.any_owner) return true;
  const uid_t me = geteuid();
  const bool trusted_owner =
      st.st_uid == me || std::find(trust_.trusted_owners.begin(), trust_.trusted_owners.end(),
                                   st.st_uid) != trust_.trusted_owners.end();
  if (!trusted_owner) {
    return fail(SharedMemoryError::kPermissionDenied, operation,
                "the segment is owned by " + detail::user_text(st.st_uid) + ", not by this user (" +
                    detail::user_text(me) + ") or an owner it trusts: not used");
  }
  const mode_t mode = st.st_mode & 0777;
  if ((mode & ~trust_.max_mode) != 0) {
    return fail(SharedMemoryError::kPermissionDenied, operation,
                "the segment's mode " + detail::mode_text(mode) + " grants more than the " +
                    detail::mode_text(trust_.max_mode) + " asked for: not used");
  }
  return true;
}

bool SharedMemory::attach_fd(int fd, AccessMode mode) {
  if (is_attached()) return fail(SharedMemoryError::kAlreadyExists, "attach_fd", "already attached");
  // A new open file description of the same file, so this attachment holds a lock of its own.
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  const int own = open_lock_descriptor(path, mode, 0);
  if (own < 0) {
    const int saved = errno;
    return fail(saved == ENOENT ? SharedMemoryError::kNotFound : error_from_errno(saved),
                "attach_fd", "cannot reopen descriptor " + std::to_string(fd), saved);
  }
  if (detail::try_lock_shared(own) != detail::LockAttempt::kTaken) {
    const int saved = errno;
    close(own);
    return fail(SharedMemoryError::kNotFound, "attach_fd", "the segment is being removed", saved);
  }
  backend_ = Backend::kMemfd;
  return finish_attach(own, mode, false);
}

bool SharedMemory::finish_attach(int fd, AccessMode mode, bool /*created*/) {
  const bool named = backend_ != Backend::kMemfd;
  const std::string path = path_for_open();
  // Nobody else attached means every other user is gone (or detached as we arrived): the segment is
  // stale. Remove it if we can (we hold the only lock), and report kNotFound.
  auto give_up_stale = [&](std::string_view why) {
    detail::FileHeader header;
    if (named && detail::try_lock_exclusive(fd) == detail::LockAttempt::kTaken &&
        detail::same_file(fd, path.c_str()) && detail::read_file_header(fd, &header) &&
        header.kind != detail::FileKind::kForeign && detail::may_act_on(header.owner)) {
      detail::remove_lock_set(header);
      unlink(path.c_str());
    }
    close(fd);
    return fail(SharedMemoryError::kNotFound, "attach", why);
  };

  // Map through a second description (see do_create): the lock's description must not be kept
  // alive by mappings inherited by fork children.
  const int data_fd = reopen(fd, mode == AccessMode::kReadWrite);
  if (data_fd < 0) {
    const int saved = errno;
    close(fd);
    return fail(error_from_errno(saved), "attach", "cannot reopen", saved);
  }
  auto close_both = [&] {
    close(data_fd);
    close(fd);
  };
  const std::int64_t deadline = detail::monotonic_ns_signed() + kCreatorWaitNs;
  Mapping mapping;
  SegmentInfo info;
  for (;;) {
    int map_errno = 0;
    if (!map_file(data_fd, mode == AccessMode::kReadWrite, &mapping, &map_errno)) {
      close_both();
      return fail(error_from_errno(map_errno), "attach", "cannot map", map_errno);
    }
    absl::Status header = read_segment_header(mapping.address, mapping.bytes, &info);
    if (header.ok()) break;
    const bool still_being_made =
        mapping.bytes < kSegmentHeaderSize || absl::IsUnavailable(header);
    unmap(&mapping);
    if (!still_being_made) {
      close_both();
      return fail(SharedMemoryError::kUnknownError, "attach",
                  "not a usable shmring segment: " + std::string(header.message()));
    }
    if (detail::other_lock_type(fd) == F_UNLCK) {
      close(data_fd);
      return give_up_stale("its creator died before finishing it (stale; removed)");
    }
    if (detail::monotonic_ns_signed() > deadline) {
      close_both();
      return fail(SharedMemoryError::kUnknownError, "attach",
                  "its creator has not finished initialising it after 5 s");
    }
    pause_briefly();
  }
  if (info.state == SegmentState::kDestroyed) {
    unmap(&mapping);
    close_both();
    return fail(SharedMemoryError::kNotFound, "attach", "the segment has been destroyed");
  }
  if (detail::other_lock_type(fd) == F_UNLCK) {
    unmap(&mapping);
    close(data_fd);
    return give_up_stale("every process attached to it has died (stale; removed)");
  }
  struct stat st {};
  const uid_t file_owner = fstat(fd, &st) == 0 ? st.st_uid : static_cast<uid_t>(-1);
  adopt_attachment(fd, data_fd, mapping.address, mapping.bytes, static_cast<std::size_t>(info.user_size),
                   mode,
                   SystemSemaphore::adopt(info.lock_semaphore_id, info.lock_semaphore_ctime,
                                          static_cast<key_t>(info.lock_semaphore_key), file_owner));
  return succeed();
}

void SharedMemory::release_mapping() {
  if (mapping_ != nullptr) munmap(mapping_, mapping_size_);
  mapping_ = nullptr;
  mapping_size_ = 0;
  size_ = 0;
}

// The last one out always knows it. Every live attachment holds a shared lock on the attach byte.
// First try to convert ours to an exclusive lock: that works when nobody else is attached. When
// it does not, others were attached an instant ago, and they may be leaving right now too (two
// last detaches at the same moment each saw the other's lock): drop our shared lock, then try
// once more for an exclusive one. Whoever drops its shared lock last finds no other shared lock
// and takes the exclusive one, so one of the leavers always removes the segment; an attachment
// that is really staying keeps its shared lock and makes both attempts fail. An attacher that
// arrives in between either holds a shared lock (we leave the segment to it) or finds no other
// attachment and removes the segment itself as stale (finish_attach), as it would after a crash.
bool SharedMemory::is_last_to_leave() {
  if (detail::try_lock_exclusive(lock_fd_) == detail::LockAttempt::kTaken) return true;
  detail::unlock_attach(lock_fd_);
  if (detail::try_lock_exclusive(lock_fd_) == detail::LockAttempt::kTaken) return true;
  // Someone held a lock at that instant. Another leaver runs this same protocol and one of us
  // wins; but a holder that lets go without running it (an attach that gave up, a probe) would
  // leave the segment behind. If nobody holds one any more, try again (a few times: a new
  // attacher may come in between, and then it is not the last one out that we are).
  for (int again = 0; again < 3 && detail::other_lock_type(lock_fd_) == F_UNLCK; ++again) {
    if (detail::try_lock_exclusive(lock_fd_) == detail::LockAttempt::kTaken) return true;
  }
  return false;
}

bool SharedMemory::detach() {
  if (!is_attached()) return fail(SharedMemoryError::kNotFound, "detach", "not attached");
  if (holds_lock_) unlock();
  release_mapping();
  ForkHandlers::remove(this);
  // A forked child's copy is inert (its lock_fd_ was closed at fork): it decides nothing.
  if (attach_pid_ == getpid() && lock_fd_ >= 0 && is_last_to_leave()) {
    // We were the last attachment: the segment and its lock go with us. New attachers that opened
    // the name meanwhile see our exclusive lock and look again.
    if (lock_ != nullptr) lock_->remove();
    if (backend_ != Backend::kMemfd) {
      const std::string path = path_for_open();
      if (detail::same_file(lock_fd_, path.c_str())) unlink(path.c_str());
    }
  }
  if (lock_fd_ >= 0) close(lock_fd_);
  if (fd_ >= 0) close(fd_);
  lock_fd_ = -1;
  fd_ = -1;
  lock_.reset();
  holds_lock_ = false;
  return succeed();
}

bool SharedMemory::hold_liveness(std::uint32_t slot) {
  if (!is_attached() || lock_fd_ < 0 || slot >= kMaxLivenessSlots) return false;
  return detail::try_lock_liveness(lock_fd_, slot) == detail::LockAttempt::kTaken;
}

void SharedMemory::release_liveness(std::uint32_t slot) {
  if (is_attached() && lock_fd_ >= 0 && slot < kMaxLivenessSlots) detail::unlock_liveness(lock_fd_, slot);
}

SharedMemory::Liveness SharedMemory::liveness_of(std::uint32_t slot) const {
  if (!is_attached() || slot >= kMaxLivenessSlots) return Liveness::kUnknown;
  // A forked child's copy has no lock descriptor; the data descriptor serves for asking.
  const int fd = lock_fd_ >= 0 ? lock_fd_ : fd_;
  if (fd < 0) return Liveness::kUnknown;
  const int type = detail::liveness_lock_type(fd, slot);
  if (type < 0) return Liveness::kUnknown;
  return type == F_UNLCK ? Liveness::kFree : Liveness::kHeld;
}

bool SharedMemory::lock() { return try_lock_for(-1); }

bool SharedMemory::try_lock_for(std::int64_t timeout_ms) {
  if (!is_attached()) return fail(SharedMemoryError::kLockError, "lock", "not attached");
  if (holds_lock_) return fail(SharedMemoryError::kLockError, "lock", "this object holds it already");
  if (lock_ == nullptr) {
    return fail(SharedMemoryError::kLockError, "lock", "the segment's lock has been removed");
  }
  const bool ok = timeout_ms < 0 ? lock_->acquire() : lock_->try_acquire_for(timeout_ms);
  if (!ok) {
    return fail(SharedMemoryError::kLockError, "lock",
                lock_->timed_out() ? "timed out" : lock_->error_string());
  }
  holds_lock_ = true;
  previous_owner_died_ = lock_->previous_owner_died();
  return succeed();
}

bool SharedMemory::unlock() {
  if (!holds_lock_) return fail(SharedMemoryError::kLockError, "unlock", "this object does not hold the lock");
  holds_lock_ = false;
  if (lock_ == nullptr || !lock_->release()) {
    return fail(SharedMemoryError::kLockError, "unlock",
                lock_ ? lock_->error_string() : "the lock has been removed");
  }
  return succeed();
}

bool SharedMemory::exists() const {
  if (backend_ == Backend::kMemfd) return is_attached();
  if (!native_key_problem(backend_, native_key_).empty()) return false;
  const int fd = open(path_for_open().c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return errno == EACCES;  // there, though we may not look inside
  // Live means some attachment holds a shared lock; an exclusive one means it is being removed.
  const bool live = detail::other_lock_type(fd) == F_RDLCK;
  close(fd);
  return live;
}

int SharedMemory::num_attachments() const {
  if (is_attached()) {
    const int count = detail::count_attach_locks(fd_);
    if (count < 0) fail(SharedMemoryError::kUnknownError, "num_attachments", "cannot read /proc/locks", errno);
    return count;
  }
  if (backend_ == Backend::kMemfd) {
    fail(SharedMemoryError::kNotFound, "num_attachments", "not attached");
    return -1;
  }
  const int fd = open(path_for_open().c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    fail(error_from_errno(errno), "num_attachments", "cannot open", errno);
    return -1;
  }
  const int count = detail::count_attach_locks(fd);
  close(fd);
  if (count < 0) fail(SharedMemoryError::kUnknownError, "num_attachments", "cannot read /proc/locks", errno);
  return count;
}

namespace {

// Whether this process may remove the name `path` (and so destroy the segment): in a sticky
// directory (/dev/shm) only the file's owner, the directory's owner and root may. Checked before
// anything is changed, so a user who could not remove the name destroys nothing either. Empty
// when it may; otherwise why not.
std::string cannot_unlink_because(const std::string& path) {
  const std::string directory = path.substr(0, path.find_last_of('/') + 1);
  struct stat dir {};
  struct stat file {};
  if (stat(directory.empty() ? "." : directory.c_str(), &dir) != 0 || lstat(path.c_str(), &file) != 0) {
    return {};  // let the removal itself report what is wrong
  }
  const uid_t me = geteuid();
  if ((dir.st_mode & S_ISVTX) != 0 && me != 0 && file.st_uid != me && dir.st_uid != me) {
    return "only its owner (" + detail::user_text(file.st_uid) +
           ") or root may remove its name from the sticky directory " + directory;
  }
  return {};
}

}  // namespace

bool SharedMemory::destroy(DestroyMode mode) {
  if (backend_ != Backend::kMemfd && native_key_problem(backend_, native_key_).empty()) {
    if (const std::string why = cannot_unlink_because(path_for_open()); !why.empty()) {
      return fail(SharedMemoryError::kPermissionDenied, "destroy", why);
    }
  }
  if (is_attached()) {
    if (mode == DestroyMode::kNoWait && !holds_lock_ && !lock()) return false;
    const bool named = backend_ != Backend::kMemfd;
    const std::string path = path_for_open();
    if (mode != DestroyMode::kWait) {
      if (access_mode_ == AccessMode::kReadWrite) {
        static_cast<SegmentHeader*>(mapping_)->state.store(
            static_cast<std::uint32_t>(SegmentState::kDestroyed), std::memory_order_release);
      }
      if (lock_ != nullptr) lock_->remove();  // waiters and other holders get kLockError
      lock_.reset();
      holds_lock_ = false;
    }
    // In a sticky directory (/dev/shm) only the file's owner (or root) may remove its name: say
    // so instead of reporting a removal that did not happen.
    const bool unlinked = !named || !detail::same_file(fd_, path.c_str()) || unlink(path.c_str()) == 0;
    const int saved = errno;
    detach();
    if (!unlinked) return fail(error_from_errno(saved), "destroy", "cannot remove the name", saved);
    return succeed();
  }
  // Not attached: destroy by key.
  if (backend_ == Backend::kMemfd) {
    return fail(SharedMemoryError::kNotFound, "destroy", "a memfd segment has no name");
  }
  if (const std::string problem = native_key_problem(backend_, native_key_); !problem.empty()) {
    return fail(SharedMemoryError::kKeyError, "destroy", problem);
  }
  const std::string path = path_for_open();
  const int fd = open(path.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return fail(error_from_errno(errno), "destroy", "cannot open", errno);
  if (detail::try_lock_exclusive(fd) == detail::LockAttempt::kTaken) {
    detail::FileHeader header;
    if (!detail::read_file_header(fd, &header) || header.kind == detail::FileKind::kForeign) {
      close(fd);
      return fail(SharedMemoryError::kUnknownError, "destroy", "not a shmring segment");
    }
    if (!detail::may_act_on(header.owner)) {
      close(fd);
      return fail(SharedMemoryError::kPermissionDenied, "destroy",
                  "the segment belongs to " + detail::user_text(header.owner));
    }
    detail::remove_lock_set(header);
    const bool removed = !detail::same_file(fd, path.c_str()) || unlink(path.c_str()) == 0;
    const int saved = errno;
    close(fd);
    if (!removed) return fail(error_from_errno(saved), "destroy", "cannot remove the name", saved);
    return succeed();
  }
  // Still attached elsewhere: attach briefly so the usual path does the work.
  close(fd);
  SharedMemory self;
  self.backend_ = backend_;
  self.key_ = key_;
  self.native_key_ = native_key_;
  if (!self.attach(AccessMode::kReadWrite)) {
    error_ = self.error_;
    error_string_ = self.error_string_;
    return false;
  }
  if (!self.destroy(mode)) {
    error_ = self.error_;
    error_string_ = self.error_string_;
    return false;
  }
  return succeed();
}

}  // namespace shmring
