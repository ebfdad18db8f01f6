#include "test_support.h"

#include <dirent.h>
#include <sched.h>
#include <sys/mman.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <thread>

#include "shmring/core/shared_memory.h"

namespace shmring::testing {

std::string unique_key(const std::string& label) {
  static std::atomic<int> counter{0};
  return "t_" + std::to_string(getpid()) + "_" + std::to_string(counter++) + "_" + label;
}

pid_t fork_child(const std::function<int()>& body) {
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    int code = 99;
    try {
      code = body();
    } catch (...) {
      code = 99;
    }
    std::fflush(nullptr);
    _exit(code);
  }
  return pid;
}

ChildResult wait_child(pid_t pid, std::chrono::milliseconds timeout) {
  ChildResult result;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  for (;;) {
    const pid_t done = waitpid(pid, &status, WNOHANG);
    if (done == pid) break;
    if (done < 0) {
      result.exited = true;
      result.code = -1;
      return result;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      result.timed_out = true;
      return result;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (WIFEXITED(status)) {
    result.exited = true;
    result.code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.signaled = true;
    result.code = WTERMSIG(status);
  }
  return result;
}

std::vector<std::string> dev_shm_entries(const std::string& prefix) {
  std::vector<std::string> names;
  if (DIR* dir = opendir("/dev/shm")) {
    while (dirent* entry = readdir(dir)) {
      std::string name = entry->d_name;
      if (name.rfind(prefix, 0) == 0) names.push_back(name);
    }
    closedir(dir);
  }
  return names;
}

void make_stale_segment(const std::string& path, std::size_t size) {
  int ready[2];
  if (pipe(ready) != 0) std::abort();
  const pid_t child = fork_child([&] {
    SharedMemory shm;
    shm.set_native_key(path);
    if (!shm.create(size)) return 1;
    (void)!write(ready[1], "x", 1);
    pause();
    return 0;
  });
  char byte = 0;
  const bool created = read(ready[0], &byte, 1) == 1;
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  close(ready[0]);
  close(ready[1]);
  if (!created) std::abort();  // the test cannot go on without it
}

ChildResult run_as_nobody(const std::function<int()>& body) {
  return wait_child(fork_child([&] {
    if (setgid(65534) != 0 || setuid(65534) != 0) return 98;
    return body();
  }));
}

void default_sigsegv() {
  struct sigaction action {};
  action.sa_handler = SIG_DFL;
  sigemptyset(&action.sa_mask);
  sigaction(SIGSEGV, &action, nullptr);
}

struct ProcessBarrier::Shared {
  std::atomic<unsigned long long> arrived{0};
};

ProcessBarrier::ProcessBarrier(int parties) : parties_(parties) {
  void* memory = mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  shared_ = memory == MAP_FAILED ? nullptr : new (memory) Shared();
}

ProcessBarrier::~ProcessBarrier() {
  if (shared_ != nullptr) munmap(shared_, sizeof(Shared));
}

bool ProcessBarrier::arrive_and_wait(std::chrono::milliseconds timeout) {
  if (shared_ == nullptr) return false;
  ++round_;
  const unsigned long long target = round_ * static_cast<unsigned long long>(parties_);
  shared_->arrived.fetch_add(1, std::memory_order_acq_rel);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  // Spin first (so the parties leave within nanoseconds of each other when each has a core),
  // then yield (so a party without a core gets one).
  for (int spins = 0; shared_->arrived.load(std::memory_order_acquire) < target; ++spins) {
    if (spins < 100'000) {
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#endif
      continue;
    }
    if (std::chrono::steady_clock::now() > deadline) return false;
    sched_yield();
  }
  return true;
}

int rounds_from_env(const char* name, int fallback) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return fallback;
  const int rounds = std::atoi(value);
  return rounds > 0 ? rounds : fallback;
}

}  // namespace shmring::testing
