#include "fork_handlers.h"

#include <pthread.h>
#include <unistd.h>

#include <mutex>
#include <set>

#include "shmring/core/fork_generation.h"
#include "shmring/core/shared_memory.h"

namespace shmring {

namespace detail {
std::atomic<std::uint64_t> g_fork_generation{0};
}  // namespace detail

namespace {

// Installed at load time (this file is linked with every SharedMemory user), before any fork the
// library could see.
const bool kGenerationHandlerInstalled = [] {
  pthread_atfork(nullptr, nullptr,
                 [] { detail::g_fork_generation.fetch_add(1, std::memory_order_relaxed); });
  return true;
}();

// The registry of attached objects. The prepare handler takes its mutex so that the child's copy
// of the set is consistent; the child handler closes the descriptors and unlocks.
std::mutex& registry_mutex() {
  static std::mutex m;
  return m;
}
std::set<SharedMemory*>& attached() {
  static std::set<SharedMemory*> objects;
  return objects;
}

}  // namespace

void ForkHandlers::add(SharedMemory* shm) {
  static const bool installed = [] {
    pthread_atfork([] { registry_mutex().lock(); }, [] { registry_mutex().unlock(); },
                   [] {
                     for (SharedMemory* s : attached()) {
                       if (s->lock_fd_ >= 0) close(s->lock_fd_);
                       s->lock_fd_ = -1;
                     }
                     attached().clear();
                     registry_mutex().unlock();
                   });
    return true;
  }();
  (void)installed;
  std::lock_guard<std::mutex> guard(registry_mutex());
  attached().insert(shm);
}

void ForkHandlers::remove(SharedMemory* shm) {
  std::lock_guard<std::mutex> guard(registry_mutex());
  attached().erase(shm);
}

}  // namespace shmring
