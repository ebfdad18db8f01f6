#include "shmring/core/detail/fork_closed_fds.h"

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <mutex>
#include <set>

namespace shmring::detail {
namespace {

std::mutex& registry_mutex() {
  static std::mutex m;
  return m;
}
std::set<int>& registered() {
  static std::set<int> fds;
  return fds;
}

// Installed before the first descriptor is registered. The prepare handler takes the registry's
// lock so the child's copy of the set is consistent; the child handler blanks every descriptor.
void install_handlers() {
  static const bool installed = [] {
    pthread_atfork([] { registry_mutex().lock(); }, [] { registry_mutex().unlock(); },
                   [] {
                     const int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                     if (null_fd >= 0) {
                       for (const int kept : registered()) dup3(null_fd, kept, O_CLOEXEC);
                       close(null_fd);
                     }
                     registered().clear();
                     registry_mutex().unlock();
                   });
    return true;
  }();
  (void)installed;
}

}  // namespace

int open_closed_in_fork_children(const std::function<int()>& open_fd) {
  install_handlers();
  std::lock_guard<std::mutex> guard(registry_mutex());
  const int fd = open_fd();
  if (fd >= 0) {
    try {
      registered().insert(fd);
    } catch (...) {
      close(fd);
      return -1;
    }
  }
  return fd;
}

void close_fork_closed(int fd) noexcept {
  if (fd < 0) return;
  std::lock_guard<std::mutex> guard(registry_mutex());
  registered().erase(fd);
  close(fd);
}

}  // namespace shmring::detail
