#include "shmring/core/detail/wait_files.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <set>

#include "shmring/core/segment_directory.h"

namespace shmring::detail {

namespace {

// Temporary names older than this are left-overs of a process killed while creating one.
constexpr time_t kTempFileMaxAgeSeconds = 60;

std::string hex(std::uint64_t v) {
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

// --- lifelines a fork child must not keep ----------------------------------------------------------
// A child that inherited a lifeline would keep it open after its parent died, and the watchers
// would never see the hang-up. The child handler puts /dev/null over each one (the descriptor
// number stays valid, so the child's copy of the endpoint closes it harmlessly later).

std::mutex& lifeline_mutex() {
  static std::mutex m;
  return m;
}
std::set<int>& lifelines() {
  static std::set<int> fds;
  return fds;
}

// Installs the child handler (once). Called before the first lifeline is opened.
void install_lifeline_fork_handler() {
  static const bool installed = [] {
    pthread_atfork([] { lifeline_mutex().lock(); }, [] { lifeline_mutex().unlock(); },
                   [] {
                     const int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                     if (null_fd >= 0) {
                       for (const int kept : lifelines()) dup3(null_fd, kept, O_CLOEXEC);
                       close(null_fd);
                     }
                     lifelines().clear();
                     lifeline_mutex().unlock();
                   });
    return true;
  }();
  (void)installed;
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

namespace {

std::string temp_path(char kind, std::uint64_t channel_id, std::uint64_t token) {
  return std::string(kDefaultSegmentDirectory) + "/" + std::string(kWaitTempPrefix) + kind + "." +
         hex(channel_id) + "." + hex(token);
}

}  // namespace

std::string wait_file_path(std::string_view prefix, std::uint64_t channel_id, std::uint64_t token) {
  return std::string(kDefaultSegmentDirectory) + "/" + std::string(prefix) + hex(channel_id) + "." +
         hex(token);
}

int create_lifeline(std::uint64_t channel_id, std::uint64_t token, mode_t mode) noexcept {
  try {
    const std::string tmp = temp_path('l', channel_id, token);
    unlink(tmp.c_str());  // a left-over of a killed process with the same token cannot exist, but
                          // an old incarnation's could: same id only with the same creation time
    if (mkfifo(tmp.c_str(), mode & 0666) != 0) return -1;
    chmod(tmp.c_str(), mode & 0666);  // mkfifo applied the umask
    install_lifeline_fork_handler();
    int fd = -1;
    {
      // Opened and recorded under the registry's mutex, which the fork handlers take: a child
      // forked meanwhile never holds an unrecorded lifeline (it would hide its parent's death).
      std::lock_guard<std::mutex> guard(lifeline_mutex());
      fd = open(tmp.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
      if (fd >= 0) lifelines().insert(fd);
    }
    if (fd < 0 || rename(tmp.c_str(), wait_file_path(kLifelinePrefix, channel_id, token).c_str()) != 0) {
      const int saved = errno;
      if (fd >= 0) close_lifeline(fd);
      unlink(tmp.c_str());
      errno = saved;
      return -1;
    }
    return fd;
  } catch (...) {
    errno = ENOMEM;
    return -1;
  }
}

void close_lifeline(int fd) noexcept {
  if (fd < 0) return;
  std::lock_guard<std::mutex> guard(lifeline_mutex());  // with the close: see create_lifeline
  lifelines().erase(fd);
  close(fd);
}

int open_lifeline(std::uint64_t channel_id, std::uint64_t token) noexcept {
  try {
    const std::string path = wait_file_path(kLifelinePrefix, channel_id, token);
    struct stat st{};
    if (lstat(path.c_str(), &st) != 0) return -1;
    if (!S_ISFIFO(st.st_mode)) {  // never open anything else under that name
      errno = EINVAL;
      return -1;
    }
    return open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  } catch (...) {
    errno = ENOMEM;
    return -1;
  }
}

int create_wait_socket(std::uint64_t channel_id, std::uint64_t token, mode_t mode) noexcept {
  try {
    const int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    const std::string tmp = temp_path('w', channel_id, token);
    sockaddr_un addr{};
    socklen_t len = 0;
    unlink(tmp.c_str());
    if (!fill_address(tmp, &addr, &len) || bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
        chmod(tmp.c_str(), mode & 0666) != 0 ||
        rename(tmp.c_str(), wait_file_path(kWaitSocketPrefix, channel_id, token).c_str()) != 0) {
      const int saved = errno;
      close(fd);
      unlink(tmp.c_str());
      errno = saved;
      return -1;
    }
    return fd;
  } catch (...) {
    errno = ENOMEM;
    return -1;
  }
}

bool send_wake(std::uint64_t channel_id, std::uint64_t token) noexcept {
  // The path is built on the stack: this runs on a sender's path (once per armed waiter).
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const int n = std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%.*s/%.*s%016llx.%016llx",
                              static_cast<int>(kDefaultSegmentDirectory.size()),
                              kDefaultSegmentDirectory.data(),
                              static_cast<int>(kWaitSocketPrefix.size()), kWaitSocketPrefix.data(),
                              static_cast<unsigned long long>(channel_id),
                              static_cast<unsigned long long>(token));
  if (n <= 0 || static_cast<std::size_t>(n) >= sizeof(addr.sun_path)) return false;
  const char byte = 1;
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

void remove_wait_files(std::uint64_t channel_id, std::uint64_t token) noexcept {
  try {
    unlink(wait_file_path(kLifelinePrefix, channel_id, token).c_str());
    unlink(wait_file_path(kWaitSocketPrefix, channel_id, token).c_str());
  } catch (...) {
  }
}

namespace {

// Whether anyone holds the FIFO at `path` (an endpoint's lifeline): a non-blocking writer-side
// open fails with ENXIO when nobody has it open for reading (the owner holds it read-write).
bool fifo_has_holder(const std::string& path) {
  const int fd = open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
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

}  // namespace

namespace {

// Every wait file's name starts so (the three prefixes above).
constexpr std::string_view kWaitFilePrefix = "shmring-";

std::vector<std::string> collect(std::size_t limit, bool dry_run, const std::string& id_filter) {
  std::vector<std::string> removed;
  std::size_t looked = 0;
  for (const std::string& path : segment_paths(kDefaultSegmentDirectory, kWaitFilePrefix)) {
    const std::string_view name = std::string_view(path).substr(kDefaultSegmentDirectory.size() + 1);
    const bool lifeline = name.starts_with(kLifelinePrefix);
    const bool sock = name.starts_with(kWaitSocketPrefix);
    const bool temp = name.starts_with(kWaitTempPrefix);
    if (!lifeline && !sock && !temp) continue;
    if (!id_filter.empty() && name.find(id_filter) == std::string_view::npos) continue;
    if (limit != 0 && looked++ >= limit) break;
    struct stat st{};
    if (lstat(path.c_str(), &st) != 0) continue;
    bool stale = false;
    if (temp) {
      stale = time(nullptr) - st.st_mtime > kTempFileMaxAgeSeconds;
    } else if (lifeline) {
      stale = S_ISFIFO(st.st_mode) && !fifo_has_holder(path);
    } else {
      stale = S_ISSOCK(st.st_mode) && !socket_has_owner(path);
    }
    if (!stale) continue;
    if (dry_run || unlink(path.c_str()) == 0) removed.push_back(path);
  }
  return removed;
}

}  // namespace

std::vector<std::string> collect_stale_wait_files(std::size_t limit, bool dry_run) {
  return collect(limit, dry_run, "");
}

void collect_stale_wait_files_of(std::uint64_t channel_id) noexcept {
  try {
    collect(0, false, "." + hex(channel_id) + ".");
  } catch (...) {
  }
}

}  // namespace shmring::detail
