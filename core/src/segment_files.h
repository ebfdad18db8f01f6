// Operations on segment files shared by SharedMemory and the segment directory (listing, gc).
//
// Trust (docs/security.md): a file in a shared directory may belong to anyone. Its header is read
// with pread, never mapped (a file its owner keeps resizing kills whoever maps it with SIGBUS), and
// nothing is removed on the word of a header in a file the caller does not own (root excepted, and
// even root removes only a lock set that the file's owner created under the recorded key).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "shmring/core/segment_header.h"

namespace shmring::detail {

struct Mapping {
  void* address = nullptr;
  std::size_t bytes = 0;
};

// Maps the whole file open at `fd`; the file may still be growing (a creator between open and
// ftruncate), in which case `bytes` is what is there now (possibly 0, with no mapping). Only for
// files the caller trusts (its own or a trusted owner's, see SharedMemory::set_trust).
bool map_file(int fd, bool writable, Mapping* out, int* errno_out);
void unmap(Mapping* mapping);

// What the first page of a segment file says, read with pread.
enum class FileKind {
  kSegment,   // a shmring segment header (ready, being made, or destroyed)
  kHalfMade,  // what a creator killed before it wrote its header leaves: empty, zeros, or the magic
              // (with or without the lock's key)
  kForeign,   // anything else: never touched
};
struct FileHeader {
  FileKind kind = FileKind::kForeign;
  std::uint64_t file_bytes = 0;
  uid_t owner = 0;
  mode_t mode = 0;
  SegmentInfo info;                 // kSegment only (its key string is copied into `key`)
  std::string key;
  std::int32_t lock_key = 0;        // kSegment and kHalfMade: the lock set's System V key (0: none)
  std::int32_t lock_id = -1;        // kSegment: the lock set's id
  std::int64_t lock_ctime = 0;
  std::string problem;              // why a kForeign file is not a segment
};
// Reads and classifies the file open at `fd` (fstat, then pread of its header page). False (with
// errno) if it cannot be read.
bool read_file_header(int fd, FileHeader* out);

// Whether the caller may act on (remove, reclaim) a file owned by `owner`: its own, or any when
// the caller is root.
bool may_act_on(uid_t owner);

// Removes the lock set the header names, if it is what the file's owner made for it (see
// SystemSemaphore::adopt / find). A no-op for foreign files.
void remove_lock_set(const FileHeader& header);

enum class Reclaim {
  kLive,       // attachments hold it: left alone
  kRetry,      // it vanished or is being removed by someone else right now
  kReclaimed,  // it was stale: its lock and its name are gone
  kForeign,    // not a shmring segment: left alone
  kNotOurs,    // another user's file: left alone (see may_act_on)
  kError       // could not be opened or locked (errno in *errno_out)
};

// The name `path` exists. If no attachment holds it, it is stale: remove its lock and its name.
// `owner_out`: the file's owner (for messages), when it could be told.
Reclaim reclaim_if_stale(const std::string& path, int* errno_out, uid_t* owner_out = nullptr);

}  // namespace shmring::detail
