#include "shmring/core/detail/liveness_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <utility>

#include "shmring/core/detail/fork_closed_fds.h"
#include "shmring/core/segment_directory.h"
#include "sys_util.h"

namespace shmring::detail {
namespace {

flock byte_lock(short type, off_t start, off_t length) {
  flock lock{};
  lock.l_type = type;
  lock.l_whence = SEEK_SET;
  lock.l_start = start;
  lock.l_len = length;
  lock.l_pid = 0;  // required to be 0 for OFD locks
  return lock;
}

absl::Status status_from(int errno_value, const std::string& what) {
  const std::string message = what + ": " + errno_text(errno_value);
  switch (classify_errno(errno_value)) {
    case ErrnoClass::kPermission: return absl::PermissionDeniedError(message);
    case ErrnoClass::kNotFound: return absl::NotFoundError(message);
    case ErrnoClass::kExists: return absl::AlreadyExistsError(message);
    case ErrnoClass::kNoResources: return absl::ResourceExhaustedError(message);
    default: return absl::UnknownError(message);
  }
}

}  // namespace

std::string liveness_path(std::uint64_t tag, const LivenessId& id) {
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(tag));
  return std::string(kDefaultSegmentDirectory) + "/" + std::string(kLivenessPrefix) + hex + "." +
         to_hex(id);
}

bool parse_liveness_name(std::string_view file_name, std::uint64_t* tag, LivenessId* id) noexcept {
  if (!file_name.starts_with(kLivenessPrefix)) return false;
  file_name.remove_prefix(kLivenessPrefix.size());
  if (file_name.size() != 16 + 1 + 32 || file_name[16] != '.') return false;
  RandomId tag_words;
  // The tag is 16 hex digits: parse it as the low word of a 32-digit id.
  if (!from_hex(std::string(16, '0') + std::string(file_name.substr(0, 16)), &tag_words)) return false;
  if (!from_hex(file_name.substr(17), id)) return false;
  *tag = tag_words.words[1];
  return true;
}

mode_t writers_only(mode_t channel_mode) noexcept {
  mode_t mode = 0;
  if ((channel_mode & S_IWUSR) != 0) mode |= S_IRUSR | S_IWUSR;
  if ((channel_mode & S_IWGRP) != 0) mode |= S_IRGRP | S_IWGRP;
  if ((channel_mode & S_IWOTH) != 0) mode |= S_IROTH | S_IWOTH;
  return mode;
}

LivenessFile::LivenessFile(LivenessFile&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}

LivenessFile& LivenessFile::operator=(LivenessFile&& other) noexcept {
  if (this != &other) {
    close_fork_closed(fd_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

LivenessFile::~LivenessFile() { close_fork_closed(fd_); }

absl::StatusOr<LivenessFile> LivenessFile::create(std::uint64_t tag, const LivenessId& id,
                                                  mode_t channel_mode, gid_t group) {
  const std::string path = liveness_path(tag, id);
  const mode_t mode = writers_only(channel_mode) | S_IRUSR | S_IWUSR;  // the creator holds locks too
  const int fd = open_closed_in_fork_children([&] {
    return ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
  });
  if (fd < 0) return status_from(errno, "create " + path);
  LivenessFile file(fd);
  // Held from the start: a collector that found the file between its creation and this lock could
  // have removed it (nobody held anything), so the name must still be this file afterwards.
  struct stat made {};
  struct stat named {};
  if (!file.hold(kCreatorByte) || fstat(fd, &made) != 0 || stat(path.c_str(), &named) != 0 ||
      made.st_ino != named.st_ino || made.st_dev != named.st_dev) {
    return absl::AlreadyExistsError("create " + path + ": taken away as it was made");
  }
  // Exact mode bits whatever the umask, and the channel's group.
  if (fchmod(fd, mode) != 0 ||
      (group != static_cast<gid_t>(-1) && fchown(fd, static_cast<uid_t>(-1), group) != 0)) {
    const int saved = errno;
    unlink(path.c_str());
    return status_from(saved, "set the mode or group of " + path);
  }
  return file;
}

absl::StatusOr<LivenessFile> LivenessFile::open(std::uint64_t tag, const LivenessId& id, uid_t owner,
                                                bool writable) {
  const std::string path = liveness_path(tag, id);
  const int fd = open_closed_in_fork_children([&] {
    return ::open(path.c_str(), (writable ? O_RDWR : O_RDONLY) | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  });
  if (fd < 0) return status_from(errno, "open " + path);
  LivenessFile file(fd);
  struct stat st {};
  if (fstat(fd, &st) != 0) return status_from(errno, "stat " + path);
  if (!S_ISREG(st.st_mode) || st.st_uid != owner) {
    return absl::FailedPreconditionError(path + " is not the channel's liveness file (owned by " +
                                         user_text(st.st_uid) + ", the channel by " +
                                         user_text(owner) + ")");
  }
  return file;
}

bool LivenessFile::hold(std::uint32_t slot) noexcept {
  if (fd_ < 0) return false;
  flock lock = byte_lock(F_WRLCK, static_cast<off_t>(slot), 1);
  return fcntl(fd_, F_OFD_SETLK, &lock) == 0;
}

void LivenessFile::release(std::uint32_t slot) noexcept {
  if (fd_ < 0) return;
  flock lock = byte_lock(F_UNLCK, static_cast<off_t>(slot), 1);
  fcntl(fd_, F_OFD_SETLK, &lock);
}

LivenessFile::State LivenessFile::state_of(std::uint32_t slot) const noexcept {
  if (fd_ < 0) return State::kUnknown;
  // A read-lock probe: it conflicts with the endpoints' exclusive locks only, so nobody's read lock
  // counts, and it needs no write access.
  flock lock = byte_lock(F_RDLCK, static_cast<off_t>(slot), 1);
  if (fcntl(fd_, F_OFD_GETLK, &lock) != 0) return State::kUnknown;
  return lock.l_type == F_UNLCK ? State::kFree : State::kHeld;
}

LivenessFile::State LivenessFile::any_held() const noexcept {
  if (fd_ < 0) return State::kUnknown;
  flock lock = byte_lock(F_RDLCK, 0, 0);  // every byte
  if (fcntl(fd_, F_OFD_GETLK, &lock) != 0) return State::kUnknown;
  return lock.l_type == F_UNLCK ? State::kFree : State::kHeld;
}

bool remove_liveness_file(std::uint64_t tag, const LivenessId& id) noexcept {
  try {
    return unlink(liveness_path(tag, id).c_str()) == 0 || errno == ENOENT;
  } catch (...) {
    return false;
  }
}

}  // namespace shmring::detail
