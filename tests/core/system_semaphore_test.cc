// SystemSemaphore: the QSystemSemaphore contract, and holds released when a holder dies.
#include "shmring/core/system_semaphore.h"

#include <sys/ipc.h>
#include <sys/sem.h>
#include <unistd.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "gtest/gtest.h"
#include "test_support.h"

namespace shmring {
namespace {

using testing::fork_child;
using testing::unique_key;
using testing::wait_child;

TEST(SystemSemaphoreTest, EmptyKeyIsKeyError) {
  SystemSemaphore sem("");
  EXPECT_EQ(sem.error(), SystemSemaphoreError::kKeyError);
  EXPECT_FALSE(sem.acquire());
  EXPECT_FALSE(sem.release());
  SystemSemaphore unset;
  EXPECT_EQ(unset.error(), SystemSemaphoreError::kKeyError);
  EXPECT_FALSE(unset.is_valid());
}

TEST(SystemSemaphoreTest, CountingAcquireRelease) {
  SystemSemaphore sem(unique_key("sem"), 2, SemaphoreAccessMode::kCreate);
  ASSERT_TRUE(sem.is_valid()) << sem.error_string();
  EXPECT_EQ(sem.key().rfind("t_", 0), 0u);
  EXPECT_TRUE(sem.acquire());
  EXPECT_TRUE(sem.acquire());
  EXPECT_EQ(sem.held(), 2);
  EXPECT_FALSE(sem.try_acquire());
  EXPECT_TRUE(sem.timed_out());
  EXPECT_EQ(sem.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(sem.release(2));
  EXPECT_EQ(sem.value_approx(), 2);
  EXPECT_TRUE(sem.release(3));  // beyond what was held: adds tokens for good
  EXPECT_EQ(sem.value_approx(), 5);
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(sem.try_acquire());
  EXPECT_FALSE(sem.previous_owner_died());  // surplus tokens are not mistaken for dead holders
  EXPECT_FALSE(sem.release(0));
  EXPECT_TRUE(sem.release(5));
}

TEST(SystemSemaphoreTest, TimedAcquireWaitsAboutTheTimeout) {
  SystemSemaphore sem(unique_key("timed"), 0, SemaphoreAccessMode::kCreate);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(sem.try_acquire_for(50));
  const auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_GE(waited, std::chrono::milliseconds(45));
  EXPECT_TRUE(sem.timed_out());
  EXPECT_NE(sem.error_string().find("timed out"), std::string::npos);
}

TEST(SystemSemaphoreTest, OpenKeepsCountCreateResetsIt) {
  const std::string key = unique_key("modes");
  SystemSemaphore creator(key, 3, SemaphoreAccessMode::kCreate);
  ASSERT_TRUE(creator.acquire());
  SystemSemaphore opener(key, 10, SemaphoreAccessMode::kOpen);
  EXPECT_EQ(opener.value_approx(), 2);  // not reset
  EXPECT_EQ(opener.id(), creator.id());
  ASSERT_TRUE(creator.release());
  SystemSemaphore resetter(key, 1, SemaphoreAccessMode::kCreate);
  EXPECT_EQ(resetter.value_approx(), 1);
}

TEST(SystemSemaphoreTest, CreatorRemovesOnDestructionOpenerDoesNot) {
  const std::string key = unique_key("lifetime");
  int id = -1;
  {
    SystemSemaphore creator(key, 1, SemaphoreAccessMode::kCreate);
    id = creator.id();
    { SystemSemaphore opener(key); }
    EXPECT_EQ(semget(SystemSemaphore::sysv_key_for(key), 0, 0), id);  // the opener left it
  }
  EXPECT_EQ(semget(SystemSemaphore::sysv_key_for(key), 0, 0), -1);  // the creator removed it
  EXPECT_EQ(errno, ENOENT);
}

TEST(SystemSemaphoreTest, RemovedSemaphoreFailsWithNotFound) {
  const std::string key = unique_key("removed");
  SystemSemaphore sem(key, 1, SemaphoreAccessMode::kCreate);
  SystemSemaphore other(key);
  ASSERT_TRUE(sem.remove());
  EXPECT_FALSE(other.acquire());
  EXPECT_EQ(other.error(), SystemSemaphoreError::kNotFound);
}

TEST(SystemSemaphoreTest, AdoptRefusesARecycledId) {
  const key_t key = SystemSemaphore::random_segment_key();
  SystemSemaphore sem = SystemSemaphore::create_exclusive(key, 1, 0600);
  ASSERT_TRUE(sem.is_valid());
  SystemSemaphore wrong = SystemSemaphore::adopt(sem.id(), sem.creation_time() + 1, key, geteuid());
  EXPECT_FALSE(wrong.is_valid());
  EXPECT_EQ(wrong.error(), SystemSemaphoreError::kNotFound);
  EXPECT_TRUE(SystemSemaphore::adopt(sem.id(), sem.creation_time(), key, geteuid()).is_valid());
  sem.remove();
}

// What a segment header names is adopted (and so removed) only if it is exactly the set its
// owner made under the recorded key: a forged header naming another set gets nothing.
TEST(SystemSemaphoreTest, AdoptRefusesASetOfAnotherKeySizeOrCreator) {
  const key_t key = SystemSemaphore::random_segment_key();
  SystemSemaphore sem = SystemSemaphore::create_exclusive(key, 1, 0600);
  ASSERT_TRUE(sem.is_valid());
  EXPECT_FALSE(SystemSemaphore::adopt(sem.id(), sem.creation_time(), key + 1, geteuid()).is_valid());
  EXPECT_FALSE(SystemSemaphore::adopt(sem.id(), sem.creation_time(), key, geteuid() + 1).is_valid());
  // A keyed QSystemSemaphore-style set is not a segment lock either (another key space).
  const std::string name = unique_key("not-a-segment-lock");
  SystemSemaphore keyed(name, 1, SemaphoreAccessMode::kCreate);
  ASSERT_TRUE(keyed.is_valid());
  EXPECT_FALSE(SystemSemaphore::find(SystemSemaphore::sysv_key_for(name), geteuid()).is_valid());
  // A set of another size under the key.
  const key_t other_key = SystemSemaphore::random_segment_key();
  const int four = semget(other_key, 4, IPC_CREAT | IPC_EXCL | 0600);
  ASSERT_GE(four, 0);
  EXPECT_FALSE(SystemSemaphore::find(other_key, geteuid()).is_valid());
  semctl(four, 0, IPC_RMID);
  sem.remove();
}

TEST(SystemSemaphoreTest, FindLocatesASegmentLockByItsKey) {
  const key_t key = SystemSemaphore::random_segment_key();
  EXPECT_EQ(SystemSemaphore::create_exclusive(key, 1, 0600).is_valid(), true);
  EXPECT_EQ(SystemSemaphore::create_exclusive(key, 1, 0600).error(), SystemSemaphoreError::kAlreadyExists);
  SystemSemaphore found = SystemSemaphore::find(key, geteuid());
  ASSERT_TRUE(found.is_valid());
  EXPECT_TRUE(found.remove());
  EXPECT_FALSE(SystemSemaphore::find(key, geteuid()).is_valid());
}

// A QSystemSemaphore user expects a keyed mutex to be its own: a set another user made under the
// key first (with tokens of its choosing) is refused, not joined.
TEST(SystemSemaphoreTest, KeyedSemaphoreRefusesASetAnotherUserMade) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to act as another user";
  const std::string key = unique_key("squatted");
  const auto squatter = testing::run_as_nobody([&] {
    const int id = semget(SystemSemaphore::sysv_key_for(key), 3, IPC_CREAT | IPC_EXCL | 0666);
    if (id < 0) return 1;
    unsigned short values[3] = {5, 0, 5};
    union { int val; semid_ds* buf; unsigned short* array; } arg{};
    arg.array = values;
    semctl(id, 0, SETALL, arg);
    sembuf touch[2] = {{2, 1, 0}, {2, -1, 0}};  // sets sem_otime: "initialised"
    semop(id, touch, 2);
    return 0;
  });
  ASSERT_TRUE(squatter.ok());
  SystemSemaphore mine(key, 1);
  EXPECT_FALSE(mine.is_valid());
  EXPECT_EQ(mine.error(), SystemSemaphoreError::kPermissionDenied) << mine.error_string();
  EXPECT_NE(mine.error_string().find("belongs to uid"), std::string::npos) << mine.error_string();
  const int id = semget(SystemSemaphore::sysv_key_for(key), 0, 0);
  if (id >= 0) semctl(id, 0, IPC_RMID);
}

TEST(SystemSemaphoreTest, BlockedAcquireIsWokenByReleaseInAnotherProcess) {
  const std::string key = unique_key("wake");
  SystemSemaphore sem(key, 0, SemaphoreAccessMode::kCreate);
  const pid_t child = fork_child([&] {
    SystemSemaphore mine(key);
    return mine.acquire() ? 0 : 1;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_TRUE(sem.release());
  EXPECT_TRUE(wait_child(child, std::chrono::seconds(10)).ok());
}

TEST(SystemSemaphoreTest, HolderKilledGivesTokenBackAndIsReported) {
  const std::string key = unique_key("death");
  SystemSemaphore sem(key, 1, SemaphoreAccessMode::kCreate);
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  const pid_t child = fork_child([&] {
    SystemSemaphore mine(key);
    if (!mine.acquire()) return 1;
    (void)!write(ready[1], "x", 1);
    pause();
    return 0;
  });
  char byte;
  ASSERT_EQ(read(ready[0], &byte, 1), 1);
  EXPECT_FALSE(sem.try_acquire_for(10));
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  ASSERT_TRUE(sem.try_acquire_for(2000));
  EXPECT_TRUE(sem.previous_owner_died());
  ASSERT_TRUE(sem.release());
  ASSERT_TRUE(sem.acquire());
  EXPECT_FALSE(sem.previous_owner_died());
  close(ready[0]);
  close(ready[1]);
}

TEST(SystemSemaphoreTest, ReleaseInForkedChildDoesNotGiveBackParentsToken) {
  const std::string key = unique_key("forkhold");
  SystemSemaphore sem(key, 1, SemaphoreAccessMode::kCreate);
  ASSERT_TRUE(sem.acquire());
  const pid_t child = fork_child([&] {
    sem.release();  // the child never acquired: it adds a token for good, never the parent's
    return 0;
  });
  EXPECT_TRUE(wait_child(child).ok());
  EXPECT_EQ(sem.held(), 1);
  EXPECT_TRUE(sem.release());
}

TEST(SystemSemaphoreTest, OtherUserWithoutRightsIsPermissionDenied) {
  const key_t key = SystemSemaphore::random_segment_key();
  SystemSemaphore sem = SystemSemaphore::create_exclusive(key, 1, 0600);
  ASSERT_TRUE(sem.is_valid());
  const int id = sem.id();
  const std::int64_t stamp = sem.creation_time();
  const auto result = testing::run_as_nobody([&] {
    SystemSemaphore other = SystemSemaphore::adopt(id, stamp, key, 0);
    return other.error() == SystemSemaphoreError::kPermissionDenied ? 0 : 1;
  });
  EXPECT_TRUE(result.ok()) << result.code;
  sem.remove();
}

TEST(SystemSemaphoreTest, KeyMappingIsDeterministic) {
  EXPECT_EQ(SystemSemaphore::sysv_key_for("abc"), SystemSemaphore::sysv_key_for("abc"));
  EXPECT_NE(SystemSemaphore::sysv_key_for("abc"), SystemSemaphore::sysv_key_for("abd"));
  EXPECT_NE(SystemSemaphore::sysv_key_for(""), 0);
}

}  // namespace
}  // namespace shmring
