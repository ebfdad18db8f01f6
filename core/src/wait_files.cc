#include "shmring/core/detail/wait_files.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "shmring/core/detail/fork_closed_fds.h"
#include "shmring/core/detail/liveness_file.h"
#include "shmring/core/segment_directory.h"

namespace shmring::detail {

namespace {

// A fresh name that is already taken means someone made the file before us (or a 2^-128 chance):
// draw again, a few times.
constexpr int kNameAttempts = 8;

std::string hex16(std::uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

bool fill_address(const std::string& path, sockaddr_un* addr, socklen_t* len) {
  if (path.size() >= sizeof(addr->sun_path)) {
    errno = ENAMETOOLONG;
    return false;
  }
  std::memset(addr, 0, sizeof(*addr));
  addr->sun_family = AF_UNIX;
  std::memcpy(addr->sun_path, path.data(), path.size());
  *len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
  return true;
}

// A FIFO being made has no holder until its maker opens it, and a collector takes a FIFO nobody
// holds for a dead endpoint's: so it is made under a name of its own (kMakingPrefix), opened, and
// only then renamed to `path` (never over an existing name). A maker killed in between leaves the
// making name, which the collector removes once it is old (kMakingGraceSeconds).
constexpr std::string_view kMakingPrefix = "shmring-m.";
constexpr time_t kMakingGraceSeconds = 60;

// Makes the FIFO at `path` (never over an existing name: EEXIST) and opens it read-write,
// registered to be closed in fork children (a child holding it would hide its parent's death).
// -1 with errno.
int make_and_open_fifo(const std::string& path, mode_t mode) {
  const std::string making =
      std::string(kDefaultSegmentDirectory) + "/" + std::string(kMakingPrefix) + to_hex(random_id());
  if (mkfifo(making.c_str(), mode) != 0) return -1;
  const int fd = open_closed_in_fork_children(
      [&] { return open(making.c_str(), O_RDWR | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC); });
  struct stat st{};
  // Exact mode bits (mkfifo applied the umask), and the FIFO we made (not one put in its place).
  int saved = 0;
  if (fd < 0 || fstat(fd, &st) != 0 || !S_ISFIFO(st.st_mode) || st.st_uid != geteuid() ||
      fchmod(fd, mode) != 0) {
    saved = fd < 0 ? errno : EPERM;
  } else if (renameat2(AT_FDCWD, making.c_str(), AT_FDCWD, path.c_str(), RENAME_NOREPLACE) != 0) {
    saved = errno;  // EEXIST: the caller draws another name
  } else {
    return fd;  // held from before its name could be seen
  }
  close_fork_closed(fd);
  unlink(making.c_str());
  errno = saved;
  return -1;
}

}  // namespace

// One unbound datagram socket per process sends every wake-up (sendto is thread-safe). Made at
// the first channel open (prepare_wake_sender), so a sender does not need a new descriptor later.
int sender_socket() noexcept {
  static std::atomic<int> shared{-1};
  int fd = shared.load(std::memory_order_acquire);
  if (fd >= 0) return fd;
  const int made = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (made < 0) return -1;
  if (shared.compare_exchange_strong(fd, made, std::memory_order_acq_rel)) return made;
  close(made);  // another thread made one first
  return fd;
}

void prepare_wake_sender() noexcept { sender_socket(); }

std::string wait_file_path(std::string_view prefix, std::uint64_t tag, const RandomId& name) {
  return std::string(kDefaultSegmentDirectory) + "/" + std::string(prefix) + hex16(tag) + "." +
         to_hex(name);
}

int create_lifeline(std::uint64_t tag, mode_t channel_mode, RandomId* name) noexcept {
  try {
    const mode_t mode = writers_only(channel_mode) | S_IRUSR | S_IWUSR;
    for (int attempt = 0; attempt < kNameAttempts; ++attempt) {
      *name = random_id();
      const int fd = make_and_open_fifo(wait_file_path(kLifelinePrefix, tag, *name), mode);
      if (fd >= 0 || errno != EEXIST) return fd;
    }
    return -1;
  } catch (...) {
    errno = ENOMEM;
    return -1;
  }
}

void close_lifeline(int fd) noexcept { close_fork_closed(fd); }

int open_lifeline(std::uint64_t tag, const RandomId& name, uid_t owner) noexcept {
  try {
    const std::string path = wait_file_path(kLifelinePrefix, tag, name);
    const int fd = open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return -1;
    struct stat st{};
    if (fstat(fd, &st) != 0 || !S_ISFIFO(st.st_mode) || st.st_uid != owner) {
      close(fd);  // never watch anything else under that name
      errno = EPERM;
      return -1;
    }
    return fd;
  } catch (...) {
    errno = ENOMEM;
    return -1;
  }
}

int create_wait_socket(std::uint64_t tag, mode_t channel_mode, RandomId* name) noexcept {
  try {
    const mode_t mode = writers_only(channel_mode) | S_IRUSR | S_IWUSR;
    for (int attempt = 0; attempt < kNameAttempts; ++attempt) {
      const int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd < 0) return -1;
      *name = random_id();
      const std::string path = wait_file_path(kWaitSocketPrefix, tag, *name);
      sockaddr_un addr{};
      socklen_t len = 0;
      if (fill_address(path, &addr, &len) && bind(fd, reinterpret_cast<sockaddr*>(&addr), len) == 0) {
        if (chmod(path.c_str(), mode) == 0) return fd;
        const int saved = errno;
        close(fd);
        unlink(path.c_str());
        errno = saved;
        return -1;
      }
      const int saved = errno;
      close(fd);
      errno = saved;
      if (saved != EADDRINUSE) return -1;
    }
    return -1;
  } catch (...) {
    errno = ENOMEM;
    return -1;
  }
}

bool send_wake(std::uint64_t tag, const RandomId& name, char byte) noexcept {
  if (name.empty()) return false;
  // The path is built on the stack: this runs on a sender's path (once per armed waiter).
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const int n = std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%.*s/%.*s%016llx.%016llx%016llx",
                              static_cast<int>(kDefaultSegmentDirectory.size()),
                              kDefaultSegmentDirectory.data(),
                              static_cast<int>(kWaitSocketPrefix.size()), kWaitSocketPrefix.data(),
                              static_cast<unsigned long long>(tag),
                              static_cast<unsigned long long>(name.words[0]),
                              static_cast<unsigned long long>(name.words[1]));
  if (n <= 0 || static_cast<std::size_t>(n) >= sizeof(addr.sun_path)) return false;
  const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + static_cast<std::size_t>(n) + 1);
  auto send_with = [&](int fd) {
    return sendto(fd, &byte, 1, MSG_DONTWAIT | MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&addr), len) == 1;
  };
  const int shared = sender_socket();
  if (shared >= 0 && send_with(shared)) return true;
  if (shared >= 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOBUFS) return false;
  // EAGAIN has two meanings: the receiver's queue is full (it is readable already: done), or the
  // shared socket's send budget is spent on datagrams not read yet (a Unix datagram is charged to
  // its sender until it is read). A fresh socket has a budget of its own and tells them apart.
  const int fresh = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fresh < 0) return false;
  const bool sent = send_with(fresh);
  const bool queue_full = !sent && (errno == EAGAIN || errno == EWOULDBLOCK);
  close(fresh);
  return sent || queue_full;
}

void remove_wait_file(std::string_view prefix, std::uint64_t tag, const RandomId& name) noexcept {
  if (name.empty()) return;
  try {
    unlink(wait_file_path(prefix, tag, name).c_str());
  } catch (...) {
  }
}

namespace {

// Whether anyone holds the FIFO at `path` (an endpoint's lifeline): a non-blocking writer-side
// open fails with ENXIO when nobody has it open for reading (the owner holds it read-write).
bool fifo_has_holder(const std::string& path) {
  const int fd = open(path.c_str(), O_WRONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
  if (fd >= 0) {
    close(fd);
    return true;
  }
  return errno != ENXIO;
}

// Whether a socket is bound at `path`: connect() on a datagram socket sends nothing and fails
// with ECONNREFUSED when nobody is.
bool socket_has_owner(const std::string& path) {
  const int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return true;
  sockaddr_un addr{};
  socklen_t len = 0;
  bool owned = true;
  if (fill_address(path, &addr, &len) && connect(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0) {
    owned = errno != ECONNREFUSED;
  }
  close(fd);
  return owned;
}

// Every wait file's name starts so (both prefixes above).
constexpr std::string_view kWaitFilePrefix = "shmring-";

std::vector<std::string> collect(std::size_t limit, bool dry_run, const std::string& id_filter) {
  std::vector<std::string> removed;
  std::size_t looked = 0;
  const uid_t me = geteuid();
  for (const std::string& path : segment_paths(kDefaultSegmentDirectory, kWaitFilePrefix)) {
    const std::string_view name = std::string_view(path).substr(kDefaultSegmentDirectory.size() + 1);
    const bool lifeline = name.starts_with(kLifelinePrefix);
    const bool sock = name.starts_with(kWaitSocketPrefix);
    const bool making = name.starts_with(kMakingPrefix);
    if (!lifeline && !sock && !making) continue;
    if (making && !id_filter.empty()) continue;  // made before it had a tag in its name
    if (!id_filter.empty() && name.find(id_filter) == std::string_view::npos) continue;
    if (limit != 0 && looked++ >= limit) break;
    struct stat st{};
    if (lstat(path.c_str(), &st) != 0) continue;
    if (me != 0 && st.st_uid != me) continue;  // other users' files are theirs to clean
    // A FIFO still under its making name is young unless its maker died (see make_and_open_fifo).
    const bool stale = making     ? S_ISFIFO(st.st_mode) && time(nullptr) - st.st_mtime > kMakingGraceSeconds &&
                                    !fifo_has_holder(path)
                       : lifeline ? S_ISFIFO(st.st_mode) && !fifo_has_holder(path)
                                  : S_ISSOCK(st.st_mode) && !socket_has_owner(path);
    if (!stale) continue;
    if (dry_run || unlink(path.c_str()) == 0) removed.push_back(path);
  }
  return removed;
}

}  // namespace

std::vector<std::string> collect_stale_wait_files(std::size_t limit, bool dry_run) {
  return collect(limit, dry_run, "");
}

void collect_stale_wait_files_of(std::uint64_t tag) noexcept {
  try {
    collect(0, false, "." + hex16(tag) + ".");
  } catch (...) {
  }
}

}  // namespace shmring::detail
