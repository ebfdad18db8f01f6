// Operations on segment files shared by SharedMemory and the segment directory (listing, gc).
#pragma once

#include <cstddef>
#include <string>

namespace shmring::detail {

struct Mapping {
  void* address = nullptr;
  std::size_t bytes = 0;
};

// Maps the whole file open at `fd`; the file may still be growing (a creator between open and
// ftruncate), in which case `bytes` is what is there now (possibly 0, with no mapping).
bool map_file(int fd, bool writable, Mapping* out, int* errno_out);
void unmap(Mapping* mapping);

// Removes the lock semaphore recorded in the header of the file open at `fd`. `is_segment` tells
// whether the file is a shmring segment (a valid header, or the zeros a creator that died early
// leaves); false for foreign files, which are left alone. Returns false if the file cannot be read.
bool remove_recorded_semaphore(int fd, bool* is_segment);
// The same check, removing the lock only if `remove_lock`.
bool inspect_segment_file(int fd, bool remove_lock, bool* is_segment);

enum class Reclaim {
  kLive,       // attachments hold it: left alone
  kRetry,      // it vanished or is being removed by someone else right now
  kReclaimed,  // it was stale: its lock and its name are gone
  kForeign,    // not a shmring segment: left alone
  kError       // could not be opened or locked (errno in *errno_out)
};

// The name `path` exists. If no attachment holds it, it is stale: remove its lock and its name.
Reclaim reclaim_if_stale(const std::string& path, int* errno_out);

}  // namespace shmring::detail
