// Operations on segment files shared by SharedMemory and the segment directory (listing, gc).
#include "segment_files.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "ofd_lock.h"
#include "shmring/core/system_semaphore.h"
#include "sys_util.h"

namespace shmring::detail {

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

bool read_file_header(int fd, FileHeader* out) {
  *out = FileHeader{};
  struct stat st {};
  if (fstat(fd, &st) != 0) return false;
  out->owner = st.st_uid;
  out->mode = st.st_mode & 07777;
  out->file_bytes = static_cast<std::uint64_t>(st.st_size);
  if (!S_ISREG(st.st_mode)) {
    out->problem = "not a regular file";
    return true;
  }
  if (out->file_bytes == 0) {  // a creator killed before it sized the file
    out->kind = FileKind::kHalfMade;
    return true;
  }
  if (out->file_bytes < kSegmentHeaderSize) {
    // A creator sizes the file in one step: nothing of ours is ever this small.
    out->problem = "smaller than a segment header page";
    return true;
  }
  alignas(SegmentHeader) unsigned char page[kSegmentHeaderSize];
  const ssize_t got = retry_eintr([&] { return pread(fd, page, sizeof page, 0); });
  if (got < 0) return false;
  if (static_cast<std::size_t>(got) < sizeof(SegmentHeader)) {  // shrunk meanwhile
    out->problem = "shorter than its header";
    return true;
  }
  const auto* header = reinterpret_cast<const SegmentHeader*>(page);
  if (header->magic != kSegmentMagic) {
    // A creator killed before it wrote the magic leaves zeros; anything else is foreign.
    const bool zeros = std::all_of(page, page + sizeof(SegmentHeader), [](unsigned char b) { return b == 0; });
    out->kind = zeros ? FileKind::kHalfMade : FileKind::kForeign;
    if (!zeros) out->problem = "not a shmring segment (bad magic)";
    return true;
  }
  out->lock_key = header->lock_semaphore_key;
  const absl::Status status =
      read_segment_header(page, static_cast<std::size_t>(std::min<std::uint64_t>(out->file_bytes, SIZE_MAX)),
                          &out->info);
  if (status.ok()) {
    out->kind = FileKind::kSegment;
    out->key = std::string(out->info.key);
    out->info.key = {};  // pointed into `page`
    out->lock_id = out->info.lock_semaphore_id;
    out->lock_ctime = out->info.lock_semaphore_ctime;
    return true;
  }
  if (absl::IsUnavailable(status)) {  // the magic, and the creator still at work (or dead)
    out->kind = FileKind::kHalfMade;
    return true;
  }
  out->kind = FileKind::kForeign;
  out->problem = std::string(status.message());
  return true;
}

bool may_act_on(uid_t owner) {
  const uid_t me = geteuid();
  return me == 0 || owner == me;
}

void remove_lock_set(const FileHeader& header) {
  if (header.kind == FileKind::kForeign || header.lock_key == 0) return;
  const auto key = static_cast<key_t>(header.lock_key);
  // Only a set its owner created under the key the header records: a forged header can name no
  // one else's set (SystemSemaphore::adopt checks key, size, creator and stamp).
  SystemSemaphore lock = header.kind == FileKind::kSegment && header.lock_id >= 0
                             ? SystemSemaphore::adopt(header.lock_id, header.lock_ctime, key, header.owner)
                             : SystemSemaphore::find(key, header.owner);
  if (lock.is_valid()) lock.remove();
}

Reclaim reclaim_if_stale(const std::string& path, int* errno_out, uid_t* owner_out) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) {
    *errno_out = errno;
    return errno == ENOENT ? Reclaim::kRetry : Reclaim::kError;
  }
  FileHeader header;
  if (!read_file_header(fd, &header)) {
    *errno_out = errno;
    close(fd);
    return Reclaim::kError;
  }
  if (owner_out != nullptr) *owner_out = header.owner;
  if (!may_act_on(header.owner)) {
    close(fd);
    return Reclaim::kNotOurs;
  }
  if (header.kind == FileKind::kForeign) {
    close(fd);
    return Reclaim::kForeign;
  }
  // The exclusive lock proves nobody is attached; it needs a writable description.
  close(fd);
  const int locked = open(path.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (locked < 0) {
    *errno_out = errno;
    return errno == ENOENT ? Reclaim::kRetry : Reclaim::kError;
  }
  Reclaim outcome = Reclaim::kReclaimed;
  switch (detail::try_lock_exclusive(locked)) {
    case detail::LockAttempt::kBusy:
      // F_WRLCK: someone else is removing it right now; F_RDLCK: attachments are alive.
      outcome = detail::other_lock_type(locked) == F_RDLCK ? Reclaim::kLive : Reclaim::kRetry;
      break;
    case detail::LockAttempt::kError:
      *errno_out = errno;
      outcome = Reclaim::kError;
      break;
    case detail::LockAttempt::kTaken:
      // Read again under the lock, from the file we locked (the name may have been replaced).
      if (!detail::same_file(locked, path.c_str()) || !read_file_header(locked, &header)) {
        outcome = Reclaim::kRetry;
        break;
      }
      if (!may_act_on(header.owner)) {
        outcome = Reclaim::kNotOurs;
        break;
      }
      if (header.kind == FileKind::kForeign) {
        outcome = Reclaim::kForeign;
        break;
      }
      remove_lock_set(header);
      if (unlink(path.c_str()) != 0 && errno != ENOENT) {
        *errno_out = errno;
        outcome = Reclaim::kError;
      }
      break;
  }
  close(locked);
  return outcome;
}

}  // namespace shmring::detail
