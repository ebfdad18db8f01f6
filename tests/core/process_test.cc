#include "shmring/core/process.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
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

}  // namespace
}  // namespace shmring
