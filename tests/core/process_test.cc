#include "shmring/core/process.h"

#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <new>
#include <thread>

#include "gtest/gtest.h"
#include "shmring/core/futex.h"
#include "test_support.h"

namespace shmring {
namespace {

TEST(ProcessTest, CurrentProcessIsAlive) {
  const ProcessIdentity me = current_process();
  EXPECT_EQ(me.pid, getpid());
  EXPECT_GT(me.start_time, 0u);
  EXPECT_TRUE(is_alive(me));
}

TEST(ProcessTest, ReusedPidWithOtherStartTimeIsDead) {
  ProcessIdentity impostor = current_process();
  impostor.start_time += 1;
  EXPECT_FALSE(is_alive(impostor));
  EXPECT_FALSE(is_alive(ProcessIdentity{}));
  EXPECT_FALSE(is_alive(ProcessIdentity{999999999, 1}));
}

TEST(ProcessTest, KilledChildIsDeadEvenBeforeReaping) {
  const pid_t child = testing::fork_child([] {
    pause();
    return 0;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const ProcessIdentity who{child, process_start_time(child)};
  EXPECT_TRUE(is_alive(who));
  kill(child, SIGKILL);
  for (int i = 0; i < 1000 && is_alive(who); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_FALSE(is_alive(who));  // a zombie is dead
  waitpid(child, nullptr, 0);
}

TEST(FutexTest, WaitTimesOutAndSeesChangedValue) {
  std::atomic<std::uint32_t> word{5};
  EXPECT_EQ(futex_wait(&word, 4, 1'000'000), FutexWaitResult::kValueChanged);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(futex_wait(&word, 5, 20'000'000), FutexWaitResult::kTimedOut);
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(15));
}

TEST(FutexTest, WakeWakesAWaiter) {
  std::atomic<std::uint32_t> word{0};
  std::thread waiter([&] {
    while (word.load() == 0) futex_wait(&word, 0, -1);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  word.store(1);
  futex_wake(&word, 1);
  waiter.join();
  SUCCEED();
}

// The futex is process-shared (no FUTEX_PRIVATE_FLAG): a wake from one process finds a waiter in
// another. With a private futex the parent's wake would never find the child, and the child would
// sleep out its 30 s timeout.
TEST(FutexTest, WakeReachesAWaiterInAnotherProcess) {
  void* shared = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(shared, MAP_FAILED);
  auto* word = new (shared) std::atomic<std::uint32_t>(0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    const FutexWaitResult r = futex_wait(word, 0, 30'000'000'000LL);
    _exit(r == FutexWaitResult::kWoken ? 0 : 1 + static_cast<int>(r));
  }
  // The word never changes: only a wake that reaches the sleeping child can end its wait. Retry
  // until the kernel says it woke someone (the child may not be asleep yet).
  int woken = 0;
  for (int i = 0; i < 5000 && woken == 0; ++i) {
    woken = futex_wake(word, 1);
    if (woken == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(woken, 1);
  if (woken == 0) kill(child, SIGKILL);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  munmap(shared, 4096);
}

}  // namespace
}  // namespace shmring
