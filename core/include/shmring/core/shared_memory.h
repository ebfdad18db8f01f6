// SharedMemory: a named shared-memory segment with the QSharedMemory contract, done right on Linux.
//
// What it adds over Qt's QSharedMemory on Linux:
//  * attachments are counted by the kernel (each attachment holds a shared OFD lock on the segment's
//    file), so the count is exact after kill -9, and the last detach removes the segment and its lock;
//  * a segment whose attachers all died is "stale": exists() is false, attach() reports kNotFound and
//    create() of the same key reclaims it;
//  * lock() is a SystemSemaphore whose hold is released by the kernel when the holder dies, and the
//    next locker learns that it happened (previous_owner_died());
//  * create_or_attach() is atomic; create() never disturbs a live segment;
//  * space is reserved at create (posix_fallocate), so a full /dev/shm is kOutOfResources at create
//    instead of a SIGBUS later;
//  * permissions are chosen at create (default 0600) and not subject to the umask;
//  * three backends: POSIX shared memory (default), a file on any mounted filesystem (tmpfs,
//    hugetlbfs), and an anonymous sealed memfd that is shared by passing its file descriptor.
//
// Layout of a segment: one header page (SegmentHeader, see segment_header.h) followed by the user's
// `size()` bytes; data() points past the header and is page aligned.
//
// Thread-safety: a SharedMemory object is used by one thread at a time (like QSharedMemory). Different
// objects, in the same or different processes, may use the same segment concurrently.
//
// Blocking: only lock() (and destroy(kNoWait) on an attached object, which takes the lock) wait
// without a bound; try_lock_for() waits at most its timeout. attach() (and create_or_attach(),
// attach_fd()) polls every 50 us, for at most 5 s, while the segment's creator is still writing
// its header; create/attach also retry after a 50 us sleep when racing a concurrent detach or
// removal. Every other call makes system calls (open, fcntl, mmap, ftruncate/posix_fallocate,
// semget/semctl) but never waits for another process.
//
// Memory ordering: the segment header is published by the creator's release store of its state
// and read with an acquire load, so an attacher sees a fully initialised header. Nothing is said
// about the user's bytes: order them with your own atomics, or with lock()/unlock(), which are
// System V semaphore operations and so act as full barriers between holders.
//
// Errors: every bool-returning call reports failure as false and sets error(), error_string() and
// status(); a success resets them.
//
// fork(): an object inherited by a forked child is inert in the child: its mapping stays usable, but
// detach() in the child only unmaps and never removes the segment on the parent's behalf.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "shmring/core/system_semaphore.h"

namespace shmring {

enum class AccessMode { kReadOnly, kReadWrite };

// Qt's QSharedMemory::SharedMemoryError, value for value.
enum class SharedMemoryError {
  kNoError,
  kPermissionDenied,
  kInvalidSize,
  kKeyError,
  kAlreadyExists,
  kNotFound,
  kLockError,
  kOutOfResources,
  kUnknownError
};

// Qt Solutions' QtSharedMemory destroy modes.
enum class DestroyMode {
  kNoWait,       // take the lock, remove the name and the lock now
  kForceNoWait,  // remove the name and the lock now, without taking the lock
  kWait          // remove the name now; the lock and memory go when the last attachment detaches
};

// Where the segment's memory comes from.
enum class Backend {
  kPosix,  // shm_open under /dev/shm; native key "shmring_<readable>_<hash>"
  kFile,   // a file at an absolute path (native key = the path), e.g. on tmpfs or hugetlbfs
  kMemfd   // memfd_create with seals: anonymous, shared by handing its fd to another process
};

// Returns the enum's name ("kNotFound", ...), for messages and tests.
std::string_view to_string(SharedMemoryError error);

// Maps a SharedMemoryError to the absl::StatusCode used at the library boundary.
absl::StatusCode to_status_code(SharedMemoryError error);

// Mode bits a new segment gets unless set_permissions() says otherwise (owner read/write).
inline constexpr mode_t kDefaultPermissions = 0600;

class SharedMemory {
 public:
  // A detached object with no key.
  SharedMemory();
  // A detached object with `key` (see set_key()).
  explicit SharedMemory(std::string_view key);
  // Detaches (which removes the segment if this was its last attachment).
  ~SharedMemory();

  SharedMemory(SharedMemory&& other) noexcept;
  SharedMemory& operator=(SharedMemory&& other) noexcept;
  SharedMemory(const SharedMemory&) = delete;
  SharedMemory& operator=(const SharedMemory&) = delete;

  // --- Keys ---------------------------------------------------------------------------------------
  // Sets the platform-independent key; the native key is derived from it deterministically (the
  // same in every process, build and compiler): "shmring_" + a readable, sanitised prefix of the key
  // + "_" + 16 hex digits of a 64-bit hash of the whole key. Detaches first. The backend becomes
  // kPosix.
  void set_key(std::string_view key);
  std::string key() const;
  // Sets the native key directly; key() becomes empty. Detaches first. For kPosix the native key is
  // the name under /dev/shm (without the leading '/'); a native key that starts with '/' selects the
  // kFile backend with that absolute path.
  void set_native_key(std::string_view native_key);
  std::string native_key() const;
  // Derives the native key set_key() would use, without touching any object.
  static std::string native_key_for(std::string_view key);

  // Selects the backend (detaches first). kMemfd segments have no name: create() makes an anonymous
  // segment and another process joins it with attach_fd(). Other members keep their meaning.
  void set_backend(Backend backend);
  Backend backend() const { return backend_; }

  // Mode bits for segments this object creates (default kDefaultPermissions), applied exactly,
  // regardless of the umask. The segment's lock gets the same bits.
  void set_permissions(mode_t mode) { permissions_ = mode & 0777; }
  mode_t permissions() const { return permissions_; }
  // Group owning segments this object creates (and their lock), e.g. so that a group of services
  // can attach with 0660; -1 (default) keeps the creator's group. A group the creator may not
  // give files to makes create() fail with kPermissionDenied, leaving nothing behind.
  void set_group(gid_t group) { group_ = group; }
  gid_t group() const { return group_; }

  // --- Trust (an extension of this library; docs/security.md) ------------------------------------
  // Which existing segments attach() (and create_or_attach()) accept. By default, any file the
  // mode bits let this process open, as QSharedMemory does. With `any_owner` false, a segment
  // whose file is owned by neither the caller's effective uid nor one of `trusted_owners`, or whose
  // mode grants any bit outside `max_mode`, is refused with kPermissionDenied (the message names
  // the owner and the mode) before anything is mapped or locked. Channels always set this (a
  // squatter's look-alike segment is never used).
  struct Trust {
    bool any_owner = true;
    std::vector<uid_t> trusted_owners;  // besides the caller's effective uid
    mode_t max_mode = 0777;
  };
  void set_trust(Trust trust) { trust_ = std::move(trust); }
  const Trust& trust() const { return trust_; }

  // --- Lifecycle ----------------------------------------------------------------------------------
  // Creates a new segment of `size` bytes (zero-filled) and attaches to it in `mode`.
  // Fails with kAlreadyExists if a live segment has the key (and leaves it untouched), kKeyError for
  // an empty key, kInvalidSize for size 0 or a size that cannot be represented, kOutOfResources when
  // the system cannot provide the space (nothing is left behind), kPermissionDenied. A stale segment
  // with the same key (every attacher dead) is reclaimed. Blocks only on the filesystem.
  bool create(std::size_t size, AccessMode mode = AccessMode::kReadWrite);
  // Creates the segment, or attaches to the live one with the same key; atomic with respect to any
  // number of processes doing the same and detaching concurrently. `size` is used when creating; an
  // existing segment keeps its own size. Errors as create() and attach().
  bool create_or_attach(std::size_t size, AccessMode mode = AccessMode::kReadWrite);
  // Attaches to the live segment with this key. kNotFound if there is none or it is stale or being
  // destroyed; kPermissionDenied if the mode bits refuse `mode`; kUnknownError for a file that is not
  // a shmring segment, or whose creator has not finished writing its header within 5 s. A
  // kReadOnly attachment maps the pages read-only: writing through it kills the process with
  // SIGSEGV.
  bool attach(AccessMode mode = AccessMode::kReadWrite);
  // kMemfd backend: joins the segment whose descriptor `fd` was inherited or received over a Unix
  // socket. `fd` stays owned by the caller. A separate open file description is made through
  // /proc/self/fd, so the attachment is counted on its own. Errors as attach().
  bool attach_fd(int fd, AccessMode mode = AccessMode::kReadWrite);
  // Unmaps and drops this attachment; the last attachment to go removes the segment's name and its
  // lock. Releases the lock first if this object holds it. False (kNotFound) if not attached.
  // Never waits (the last-attachment test is a non-blocking try of the exclusive file lock).
  bool detach();
  bool is_attached() const { return mapping_ != nullptr; }

  // --- Data ---------------------------------------------------------------------------------------
  // The user's bytes (page aligned), or nullptr when detached.
  void* data();
  const void* data() const;
  const void* const_data() const;
  // Bytes available at data(); 0 when detached.
  std::size_t size() const { return size_; }
  AccessMode access_mode() const { return access_mode_; }
  // The segment's file descriptor (for kMemfd: pass it to another process), or -1 when detached.
  int fd() const { return fd_; }

  // --- Lock ---------------------------------------------------------------------------------------
  // Takes the segment's lock (a SystemSemaphore with count 1), blocking until it is free. If the
  // previous holder died while holding it, lock() still succeeds and previous_owner_died() is true
  // until the next lock(). False with kLockError if not attached, if this object already holds the
  // lock, or if the lock was removed (segment destroyed).
  bool lock();
  // As lock(), giving up after `timeout_ms` milliseconds of CLOCK_MONOTONIC time (kLockError).
  bool try_lock_for(std::int64_t timeout_ms);
  // Releases the lock; false (kLockError) if this object does not hold it. Never waits. The
  // holder's writes before unlock() are visible to the next holder after its lock().
  bool unlock();
  bool holds_lock() const { return holds_lock_; }
  bool previous_owner_died() const { return previous_owner_died_; }

  // --- Inspection and removal ---------------------------------------------------------------------
  // True if a live segment has this key (one or more live attachments, in any process). Racy by
  // nature; never waits; leaves error() alone. A segment this user may not open counts as live.
  bool exists() const;
  // Number of live attachments of the segment (all processes), counted from the kernel's lock table;
  // works attached or not. -1 with an error set if the segment is not there.
  int num_attachments() const;
  // Removes the segment now (see DestroyMode). Attachments in other processes keep their mapping
  // until they detach; new attaches get kNotFound. This object is detached afterwards. Works on a
  // detached object by key too (kNoWait and kForceNoWait). Attached with kNoWait it waits for the
  // lock without a bound (as lock()); the other modes never wait. Errors: kLockError (lock),
  // kNotFound (no such segment; a kMemfd object that is not attached), kKeyError,
  // kPermissionDenied, kUnknownError (not a shmring segment).
  bool destroy(DestroyMode mode = DestroyMode::kNoWait);

  // --- Liveness locks (an extension of this library) ---------------------------------------------
  // A user of the segment (one channel endpoint, say) can hold a numbered liveness lock while it
  // lives: an OFD lock on a byte of the file past the data, which the kernel drops when this
  // attachment detaches or its process dies. Every process that maps the segment sees it, whatever
  // its PID namespace, and pid reuse cannot fake it. Numbers are the caller's, below
  // kMaxLivenessSlots. No waiting; a system call each (slow path only).
  static constexpr std::uint32_t kMaxLivenessSlots = 1u << 20;
  enum class Liveness { kHeld, kFree, kUnknown };
  // Takes liveness lock `slot` for this attachment. False if another attachment holds it, the
  // slot number is out of range, or this object is not attached (or the file is read-only to us).
  bool hold_liveness(std::uint32_t slot);
  // Gives it back (also done by detach and by the death of the process).
  void release_liveness(std::uint32_t slot);
  // Whether an attachment other than this one holds `slot` (kUnknown if it cannot be told).
  Liveness liveness_of(std::uint32_t slot) const;

  // --- Errors -------------------------------------------------------------------------------------
  // The outcome of the last operation (kNoError after a success).
  SharedMemoryError error() const { return error_; }
  // Names the operation, the key and the system's reason; empty after a success.
  std::string error_string() const { return error_string_; }
  // The same as an absl::Status (OkStatus after a success).
  absl::Status status() const;

 private:

  bool fail(SharedMemoryError error, std::string_view operation, std::string_view reason,
            int errno_value = 0) const;
  bool succeed() const;
  std::string describe() const;
  std::string path_for_open() const;
  // create(), in steps: the request checked; the file made (O_EXCL, a stale one reclaimed) and
  // locked as our attachment; the segment built in it (sized, reserved, mapped, its lock and
  // header written) and adopted.
  enum class CreateStep { kCreated, kRetry, kFailed };
  bool do_create(std::size_t size, AccessMode mode, bool* already_exists);
  bool check_create_request(std::size_t size) const;
  CreateStep create_file(const std::string& path, bool named, int* fd, bool* already_exists);
  bool build_segment(int fd, const std::string& path, bool named, std::size_t size, AccessMode mode);
  bool do_attach(AccessMode mode, bool* not_found);
  bool check_trust(int fd, std::string_view operation) const;
  bool finish_attach(int fd, AccessMode mode, bool created);
  void release_mapping();
  bool is_last_to_leave();  // detach(): see shared_memory.cc
  void adopt_attachment(int locked_fd, int data_fd, void* mapping, std::size_t mapping_size,
                        std::size_t size, AccessMode mode, SystemSemaphore lock);
  friend struct ForkHandlers;  // closes lock_fd_ in a fork child (fork_handlers.cc)

  Backend backend_ = Backend::kPosix;
  std::string key_;
  std::string native_key_;
  mode_t permissions_ = kDefaultPermissions;
  gid_t group_ = static_cast<gid_t>(-1);
  Trust trust_;

  int fd_ = -1;       // the segment's file, for the user (fd()); holds no lock
  int lock_fd_ = -1;  // own open file description holding this attachment's shared OFD lock
  void* mapping_ = nullptr;  // start of the header page
  std::size_t mapping_size_ = 0;
  std::size_t size_ = 0;
  AccessMode access_mode_ = AccessMode::kReadWrite;
  pid_t attach_pid_ = 0;  // process that attached: a forked child's copy is inert
  std::unique_ptr<SystemSemaphore> lock_;
  bool holds_lock_ = false;
  bool previous_owner_died_ = false;

  mutable SharedMemoryError error_ = SharedMemoryError::kNoError;
  mutable std::string error_string_;
};

}  // namespace shmring
