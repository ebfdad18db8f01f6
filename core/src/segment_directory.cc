#include "shmring/core/segment_directory.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <utility>
#include <cerrno>

#include "absl/status/status.h"
#include "ofd_lock.h"
#include "segment_files.h"
#include "shmring/core/layout.h"
#include "shmring/core/process.h"
#include "shmring/core/segment_header.h"
#include "shmring/core/clock.h"
#include "sys_util.h"

namespace shmring {

std::string_view to_string(SegmentLiveness liveness) {
  switch (liveness) {
    case SegmentLiveness::kLive: return "live";
    case SegmentLiveness::kStale: return "stale";
    case SegmentLiveness::kBeingRemoved: return "being-removed";
    case SegmentLiveness::kUnknown: return "unknown";
  }
  return "unknown";
}

namespace {

// Opens a file of the segment directory to be read (never through a link, never blocking).
absl::StatusOr<int> open_for_reading(const std::string& path, std::string_view operation) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd >= 0) return fd;
  const int saved = errno;
  const std::string message = std::string(operation) + " " + path + ": " + detail::errno_text(saved);
  if (saved == ENOENT) return absl::NotFoundError(message);
  if (saved == EACCES || saved == EPERM) return absl::PermissionDeniedError(message);
  return absl::UnknownError(message);
}

// What the file open at `fd` is: listing fields from fstat, the locks and its header (pread).
SegmentListing describe_file(int fd, const std::string& path, detail::FileHeader* header) {
  SegmentListing listing;
  listing.path = path;
  listing.native_key = path.substr(path.find_last_of('/') + 1);
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    listing.problem = "not a regular file";
    return listing;
  }
  listing.file_bytes = static_cast<std::uint64_t>(st.st_size);
  listing.mode = st.st_mode & 0777;
  listing.owner = st.st_uid;
  switch (detail::other_lock_type(fd)) {
    case F_RDLCK: listing.liveness = SegmentLiveness::kLive; break;
    case F_UNLCK: listing.liveness = SegmentLiveness::kStale; break;
    case F_WRLCK: listing.liveness = SegmentLiveness::kBeingRemoved; break;
    default: listing.liveness = SegmentLiveness::kUnknown; break;
  }
  listing.attachments = detail::count_attach_locks(fd);
  // Read, never mapped: a file someone else keeps resizing would kill this process with SIGBUS.
  if (!detail::read_file_header(fd, header)) {
    listing.problem = "cannot read: " + detail::errno_text(errno);
  } else if (header->kind == detail::FileKind::kSegment) {
    listing.key = header->key;
    listing.data_bytes = header->info.user_size;
    listing.creator_pid = header->info.creator_pid;
    listing.creator_alive =
        is_alive(ProcessIdentity{header->info.creator_pid, header->info.creator_start_time});
    listing.created_unix_ns = header->info.created_unix_ns;
  } else if (header->kind == detail::FileKind::kHalfMade) {
    listing.problem = "its creator has not finished it (or died first)";
  } else {
    listing.problem = header->problem;
  }
  return listing;
}

}  // namespace

absl::StatusOr<SegmentListing> inspect_segment(const std::string& path) {
  absl::StatusOr<int> fd = open_for_reading(path, "inspect");
  if (!fd.ok()) return fd.status();
  detail::FileHeader header;
  SegmentListing listing = describe_file(*fd, path, &header);
  close(*fd);
  return listing;
}

SegmentFile::SegmentFile(SegmentFile&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), listing_(std::move(other.listing_)) {}

SegmentFile& SegmentFile::operator=(SegmentFile&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    listing_ = std::move(other.listing_);
  }
  return *this;
}

SegmentFile::~SegmentFile() {
  if (fd_ >= 0) close(fd_);
}

absl::StatusOr<SegmentFile> SegmentFile::open(const std::string& path) {
  absl::StatusOr<int> fd = open_for_reading(path, "open");
  if (!fd.ok()) return fd.status();
  SegmentFile file;
  file.fd_ = *fd;
  detail::FileHeader header;
  file.listing_ = describe_file(file.fd_, path, &header);
  switch (header.kind) {
    case detail::FileKind::kSegment:
      if (header.info.state == SegmentState::kDestroyed) {
        return absl::NotFoundError(path + ": the segment has been destroyed");
      }
      return file;
    case detail::FileKind::kHalfMade:
      return absl::UnavailableError(path + ": " + file.listing_.problem);
    case detail::FileKind::kForeign:
      break;
  }
  return absl::DataLossError(path + ": " + file.listing_.problem);
}

absl::Status SegmentFile::read(std::uint64_t offset, std::span<std::byte> out) const {
  if (offset > listing_.data_bytes || out.size() > listing_.data_bytes - offset) {
    return absl::OutOfRangeError("read of " + std::to_string(out.size()) + " bytes at " +
                                 std::to_string(offset) + " is past the " +
                                 std::to_string(listing_.data_bytes) + " data bytes");
  }
  std::size_t done = 0;
  while (done < out.size()) {
    const ssize_t got = pread(fd_, out.data() + done, out.size() - done,
                              static_cast<off_t>(kSegmentHeaderSize + offset + done));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return absl::UnknownError("pread: " + detail::errno_text(errno));
    if (got == 0) return absl::DataLossError("the file shrank under the reader");
    done += static_cast<std::size_t>(got);
  }
  return absl::OkStatus();
}

std::vector<std::string> segment_paths(std::string_view directory, std::string_view prefix) {
  std::vector<std::string> paths;
  DIR* dir = opendir(std::string(directory).c_str());
  if (dir == nullptr) return paths;
  while (const dirent* entry = readdir(dir)) {
    const std::string_view name = entry->d_name;
    if (name.substr(0, prefix.size()) == prefix) {
      paths.push_back(std::string(directory) + "/" + std::string(name));
    }
  }
  closedir(dir);
  std::sort(paths.begin(), paths.end());
  return paths;
}

std::vector<SegmentListing> list_segments(std::string_view directory, std::string_view prefix) {
  std::vector<SegmentListing> listings;
  for (const std::string& path : segment_paths(directory, prefix)) {
    absl::StatusOr<SegmentListing> listing = inspect_segment(path);
    if (listing.ok()) {
      listings.push_back(*std::move(listing));
    } else if (!absl::IsNotFound(listing.status())) {  // vanished meanwhile: not worth listing
      SegmentListing unreadable;
      unreadable.path = path;
      unreadable.native_key = path.substr(path.find_last_of('/') + 1);
      unreadable.problem = std::string(listing.status().message());
      listings.push_back(std::move(unreadable));
    }
  }
  return listings;
}

namespace {

GcReport collect_from(const std::vector<std::string>& paths, bool dry_run, bool only_own);

}  // namespace

GcReport collect_stale_segments(bool dry_run, std::string_view directory, std::string_view prefix) {
  return collect_from(segment_paths(directory, prefix), dry_run, /*only_own=*/false);
}

GcReport collect_some_stale_segments(std::size_t max_files, std::string_view directory,
                                     std::string_view prefix) {
  std::vector<std::string> paths = segment_paths(directory, prefix);
  if (paths.size() > max_files) {
    // A different window each call: the clock picks where it starts.
    const std::size_t start = static_cast<std::size_t>(monotonic_ns() / 1000) % paths.size();
    std::rotate(paths.begin(), paths.begin() + static_cast<std::ptrdiff_t>(start), paths.end());
    paths.resize(max_files);
  }
  // A sweep on the side never looks inside other users' files (root's included).
  return collect_from(paths, false, /*only_own=*/true);
}

namespace {

GcReport collect_from(const std::vector<std::string>& paths, bool dry_run, bool only_own) {
  GcReport report;
  const uid_t me = geteuid();
  for (const std::string& path : paths) {
    struct stat st {};
    if (lstat(path.c_str(), &st) != 0) continue;
    if (only_own && st.st_uid != me) continue;
    if (dry_run) {
      absl::StatusOr<SegmentListing> listing = inspect_segment(path);
      if (!listing.ok()) continue;
      if (listing->liveness != SegmentLiveness::kStale) {
        ++report.live;
        continue;
      }
      const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
      detail::FileHeader header;
      const bool readable = fd >= 0 && detail::read_file_header(fd, &header);
      if (fd >= 0) close(fd);
      if (!readable || header.kind == detail::FileKind::kForeign) {
        report.skipped.push_back(path + ": not a shmring segment; left alone");
      } else if (!detail::may_act_on(header.owner)) {
        report.skipped.push_back(path + ": belongs to " + detail::user_text(header.owner) +
                                "; left alone");
      } else {
        report.removed.push_back(path);
      }
      continue;
    }
    int errno_value = 0;
    uid_t owner = 0;
    switch (detail::reclaim_if_stale(path, &errno_value, &owner)) {
      case detail::Reclaim::kReclaimed: report.removed.push_back(path); break;
      case detail::Reclaim::kLive: ++report.live; break;
      case detail::Reclaim::kRetry: break;  // vanished or removed by someone else meanwhile
      case detail::Reclaim::kForeign:
        report.skipped.push_back(path + ": not a shmring segment; left alone");
        break;
      case detail::Reclaim::kNotOurs:
        report.skipped.push_back(path + ": belongs to " + detail::user_text(owner) + "; left alone");
        break;
      case detail::Reclaim::kError:
        report.failed.push_back(path + ": " + detail::errno_text(errno_value));
        break;
    }
  }
  return report;
}

}  // namespace
}  // namespace shmring
