// Operations on segment files shared by SharedMemory and the segment directory (listing, gc).
#include "segment_files.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "ofd_lock.h"
#include "shmring/core/segment_header.h"
#include "shmring/core/system_semaphore.h"

namespace shmring::detail {

// Maps the whole file open at `fd`; the file may still be growing (creator between open and
// ftruncate), in which case `bytes` is what is there now.
bool map_file(int fd, bool writable, Mapping* out, int* errno_out) {
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    *errno_out = errno;
    return false;
  }
  out->bytes = static_cast<std::size_t>(st.st_size);
  if (out->bytes == 0) return true;
  void* address =
      mmap(nullptr, out->bytes, writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, fd, 0);
  if (address == MAP_FAILED) {
    *errno_out = errno;
    out->bytes = 0;
    return false;
  }
  out->address = address;
  return true;
}

void unmap(Mapping* mapping) {
  if (mapping->address != nullptr) munmap(mapping->address, mapping->bytes);
  *mapping = Mapping{};
}

// Removes the lock semaphore recorded in the header of the file open at `fd`, if the header is a
// valid shmring header. Returns false if the file holds something that is not a shmring segment.
bool remove_recorded_semaphore(int fd, bool* is_segment) {
  return inspect_segment_file(fd, /*remove_lock=*/true, is_segment);
}

bool inspect_segment_file(int fd, bool remove_lock, bool* is_segment) {
  *is_segment = false;
  Mapping mapping;
  int ignored = 0;
  if (!map_file(fd, false, &mapping, &ignored)) return false;
  if (mapping.bytes < kSegmentHeaderSize) {
    unmap(&mapping);
    *is_segment = true;  // a creator died before sizing it: ours, nothing else to remove
    return true;
  }
  const auto* header = static_cast<const SegmentHeader*>(mapping.address);
  if (header->magic == kSegmentMagic) {
    *is_segment = true;
    if (remove_lock && header->lock_semaphore_id >= 0) {
      SystemSemaphore lock =
          SystemSemaphore::adopt(header->lock_semaphore_id, header->lock_semaphore_ctime);
      if (lock.is_valid()) lock.remove();
    }
  } else {
    // A creator that died before writing the header leaves zeros; anything else is foreign.
    const auto* bytes = static_cast<const unsigned char*>(mapping.address);
    *is_segment = std::all_of(bytes, bytes + sizeof(SegmentHeader), [](unsigned char b) {
      return b == 0;
    });
  }
  unmap(&mapping);
  return true;
}

Reclaim reclaim_if_stale(const std::string& path, int* errno_out) {
  const int fd = open(path.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    *errno_out = errno;
    return errno == ENOENT ? Reclaim::kRetry : Reclaim::kError;
  }
  Reclaim outcome = Reclaim::kReclaimed;
  switch (detail::try_lock_exclusive(fd)) {
    case detail::LockAttempt::kBusy:
      // F_WRLCK: someone else is removing it right now; F_RDLCK: attachments are alive.
      outcome = detail::other_lock_type(fd) == F_RDLCK ? Reclaim::kLive : Reclaim::kRetry;
      break;
    case detail::LockAttempt::kError:
      *errno_out = errno;
      outcome = Reclaim::kError;
      break;
    case detail::LockAttempt::kTaken:
      if (!detail::same_file(fd, path.c_str())) {
        outcome = Reclaim::kRetry;
        break;
      }
      bool is_segment = false;
      if (!remove_recorded_semaphore(fd, &is_segment) || !is_segment) {
        outcome = Reclaim::kForeign;
        break;
      }
      unlink(path.c_str());
      break;
  }
  close(fd);
  return outcome;
}

}  // namespace shmring::detail
