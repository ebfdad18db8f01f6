// Finding, inspecting and cleaning up shmring segments on the machine (what `shmring ls`, `stat`
// and `gc` use). Everything here reads segment files without attaching to them, so it neither
// counts as an attachment nor keeps a segment alive; headers are validated before any field is used.
//
// Thread-safety: every function may be called from any thread (they share no state). None of them
// waits on a segment's lock: they only try its file lock without blocking. They make file-system
// system calls (open, fstat, mmap, fcntl) and read /proc.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace shmring {

inline constexpr std::string_view kDefaultSegmentDirectory = "/dev/shm";
inline constexpr std::string_view kSegmentNamePrefix = "shmring_";

enum class SegmentLiveness {
  kLive,          // at least one attachment (a live process) holds it
  kStale,         // no attachment: every process that used it is gone
  kBeingRemoved,  // someone holds the exclusive lock: a last detach or a gc is removing it now
  kUnknown        // could not be inspected (see SegmentListing::problem)
};

std::string_view to_string(SegmentLiveness liveness);

struct SegmentListing {
  std::string path;        // e.g. /dev/shm/shmring_prices_0123456789abcdef
  std::string native_key;  // file name
  std::string key;         // the key recorded by the creator (may be truncated), empty if unknown
  std::uint64_t file_bytes = 0;
  std::uint64_t data_bytes = 0;  // SharedMemory::size() of the segment
  int attachments = -1;          // live attachments, -1 if unknown
  SegmentLiveness liveness = SegmentLiveness::kUnknown;
  std::int32_t creator_pid = 0;
  bool creator_alive = false;    // the creator (same pid and start time) still runs
  std::int64_t created_unix_ns = 0;
  mode_t mode = 0;
  uid_t owner = 0;
  std::string problem;  // why the header could not be read or trusted; empty when it is fine
};

// The paths of the files in `directory` whose names start with `prefix`, sorted by name: the one
// directory scan behind every listing and sweep (segments, channels, wait files). Empty when the
// directory cannot be read.
std::vector<std::string> segment_paths(std::string_view directory = kDefaultSegmentDirectory,
                                       std::string_view prefix = kSegmentNamePrefix);

// A segment file opened the way tools read one: with pread, never mapped (whoever resizes the
// file cannot kill the reader with SIGBUS) and not as an attachment (it keeps nothing alive). What
// read_stats and `shmring stat` use to look at channels of any owner.
class SegmentFile {
 public:
  // Opens the file at `path` (never through a link) and reads its header. kNotFound (also for a
  // destroyed segment), kPermissionDenied, kUnavailable (its creator is still at work, or died
  // first), kDataLoss (not a shmring segment).
  static absl::StatusOr<SegmentFile> open(const std::string& path);
  SegmentFile(SegmentFile&& other) noexcept;
  SegmentFile& operator=(SegmentFile&& other) noexcept;
  SegmentFile(const SegmentFile&) = delete;
  SegmentFile& operator=(const SegmentFile&) = delete;
  ~SegmentFile();

  // Owner, mode, sizes, liveness and attachments, as inspect_segment() reports them.
  const SegmentListing& listing() const { return listing_; }
  // Copies out.size() bytes of the user data (SharedMemory::data()) from `offset`. kOutOfRange past
  // data_bytes; kDataLoss if the file shrank meanwhile.
  absl::Status read(std::uint64_t offset, std::span<std::byte> out) const;

 private:
  SegmentFile() = default;
  int fd_ = -1;
  SegmentListing listing_;
};

// Inspects one segment file. Errors: kNotFound, kPermissionDenied (it exists but cannot be opened).
// A file whose header is invalid is returned with `problem` set, not as an error.
absl::StatusOr<SegmentListing> inspect_segment(const std::string& path);

// Every file in `directory` whose name starts with `prefix`, inspected (sorted by name). Never
// fails: an unreadable directory gives an empty list, an unreadable file an entry with `problem`.
std::vector<SegmentListing> list_segments(std::string_view directory = kDefaultSegmentDirectory,
                                          std::string_view prefix = kSegmentNamePrefix);

struct GcReport {
  std::vector<std::string> removed;  // paths of stale segments removed (or that would be, dry run)
  std::vector<std::string> failed;   // "path: reason" for stale ones that could not be removed
  // "path: reason" for files gc does not act on: not a shmring segment (or not one yet: a file
  // being created), or another user's. Information, not a failure.
  std::vector<std::string> skipped;
  int live = 0;                      // segments left alone because they are in use
};

// Removes every stale segment (with its lock) in `directory` whose name starts with `prefix`.
// Never touches a segment with a live attachment, nor a file that is not a shmring segment; a
// segment that comes alive while gc looks at it is left alone (the check and the removal happen
// under the segment's exclusive lock). With `dry_run`, reports what it would remove. Errors are
// reported per file in GcReport::failed; files left alone in GcReport::skipped. Safe to run while other processes use the segments.
GcReport collect_stale_segments(bool dry_run, std::string_view directory = kDefaultSegmentDirectory,
                                std::string_view prefix = kSegmentNamePrefix);

// The same, looking at no more than `max_files` of the matching files, starting at a place that
// changes from call to call (so that repeated bounded sweeps cover a large directory): what a
// process can afford to do on the side, e.g. when it opens a channel.
GcReport collect_some_stale_segments(std::size_t max_files,
                                     std::string_view directory = kDefaultSegmentDirectory,
                                     std::string_view prefix = kSegmentNamePrefix);

}  // namespace shmring
