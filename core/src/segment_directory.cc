#include "shmring/core/segment_directory.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
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

absl::StatusOr<SegmentListing> inspect_segment(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) {
    const int saved = errno;
    const std::string message = "inspect " + path + ": " + detail::errno_text(saved);
    if (saved == ENOENT) return absl::NotFoundError(message);
    if (saved == EACCES || saved == EPERM) return absl::PermissionDeniedError(message);
    return absl::UnknownError(message);
  }
  SegmentListing listing;
  listing.path = path;
  listing.native_key = path.substr(path.find_last_of('/') + 1);
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
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
  detail::Mapping mapping;
  int map_errno = 0;
  if (!detail::map_file(fd, false, &mapping, &map_errno)) {
    listing.problem = "cannot map: " + detail::errno_text(map_errno);
  } else {
    SegmentInfo info;
    const absl::Status header = read_segment_header(mapping.address, mapping.bytes, &info);
    if (header.ok()) {
      listing.key = std::string(info.key);
      listing.data_bytes = info.user_size;
      listing.creator_pid = info.creator_pid;
      listing.creator_alive = is_alive(ProcessIdentity{info.creator_pid, info.creator_start_time});
      listing.created_unix_ns = info.created_unix_ns;
    } else {
      listing.problem = std::string(header.message());
    }
    detail::unmap(&mapping);
  }
  close(fd);
  return listing;
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

GcReport collect_from(const std::vector<std::string>& paths, bool dry_run);

}  // namespace

GcReport collect_stale_segments(bool dry_run, std::string_view directory, std::string_view prefix) {
  return collect_from(segment_paths(directory, prefix), dry_run);
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
  return collect_from(paths, false);
}

namespace {

GcReport collect_from(const std::vector<std::string>& paths, bool dry_run) {
  GcReport report;
  for (const std::string& path : paths) {
    if (dry_run) {
      absl::StatusOr<SegmentListing> listing = inspect_segment(path);
      if (!listing.ok()) continue;
      if (listing->liveness != SegmentLiveness::kStale) {
        ++report.live;
        continue;
      }
      const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
      bool is_segment = false;
      const bool readable = fd >= 0 && detail::inspect_segment_file(fd, false, &is_segment);
      if (fd >= 0) close(fd);
      if (readable && is_segment) {
        report.removed.push_back(path);
      } else {
        report.failed.push_back(path + ": not a shmring segment; left alone");
      }
      continue;
    }
    int errno_value = 0;
    switch (detail::reclaim_if_stale(path, &errno_value)) {
      case detail::Reclaim::kReclaimed: report.removed.push_back(path); break;
      case detail::Reclaim::kLive: ++report.live; break;
      case detail::Reclaim::kRetry: break;  // vanished or removed by someone else meanwhile
      case detail::Reclaim::kForeign:
        report.failed.push_back(path + ": not a shmring segment; left alone");
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
