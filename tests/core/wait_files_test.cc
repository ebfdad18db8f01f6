// The files behind wait_fd (core/detail/wait_files.h) against the collector that sweeps them:
// a file is never collected while it is being made, and a stale one is.
#include "shmring/core/detail/wait_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <ctime>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "shmring/core/segment_directory.h"

namespace shmring::detail {
namespace {

constexpr std::uint64_t kTag = 0x5eed0000c0ffee01ULL;

bool exists(const std::string& path) {
  struct stat st {};
  return lstat(path.c_str(), &st) == 0;
}

// Another process's channel open sweeps stale wait files at any moment, also while this one is
// making its lifeline: the sweep must never take a lifeline that is being made (before the
// fix, one made FIFO had no holder between mkfifo and open, and a sweep in that window removed it:
// the endpoint then failed to open, or held a lifeline nobody could find).
TEST(WaitFilesTest, ALifelineBeingMadeIsNeverCollected) {
  std::atomic<bool> done{false};
  std::thread sweeper([&] {
    while (!done.load(std::memory_order_relaxed)) collect_stale_wait_files_of(kTag);
  });
  int failed = 0, vanished = 0;
  for (int i = 0; i < 20000; ++i) {
    RandomId name;
    const int fd = create_lifeline(kTag, 0600, &name);
    if (fd < 0) {
      ++failed;
      continue;
    }
    if (!exists(wait_file_path(kLifelinePrefix, kTag, name))) ++vanished;
    remove_wait_file(kLifelinePrefix, kTag, name);
    close_lifeline(fd);
  }
  done = true;
  sweeper.join();
  EXPECT_EQ(failed, 0);
  EXPECT_EQ(vanished, 0);
}

TEST(WaitFilesTest, StaleLifelinesAndSocketsAreCollectedLiveOnesKept) {
  RandomId live_name, dead_name, live_socket, dead_socket;
  const int live = create_lifeline(kTag, 0600, &live_name);
  const int dead = create_lifeline(kTag, 0600, &dead_name);
  const int live_sock = create_wait_socket(kTag, 0600, &live_socket);
  const int dead_sock = create_wait_socket(kTag, 0600, &dead_socket);
  ASSERT_TRUE(live >= 0 && dead >= 0 && live_sock >= 0 && dead_sock >= 0);
  close_lifeline(dead);  // its owner is gone (as if killed): nobody holds it
  close(dead_sock);
  collect_stale_wait_files_of(kTag);
  EXPECT_TRUE(exists(wait_file_path(kLifelinePrefix, kTag, live_name)));
  EXPECT_TRUE(exists(wait_file_path(kWaitSocketPrefix, kTag, live_socket)));
  EXPECT_FALSE(exists(wait_file_path(kLifelinePrefix, kTag, dead_name)));
  EXPECT_FALSE(exists(wait_file_path(kWaitSocketPrefix, kTag, dead_socket)));
  remove_wait_file(kLifelinePrefix, kTag, live_name);
  remove_wait_file(kWaitSocketPrefix, kTag, live_socket);
  close_lifeline(live);
  close(live_sock);
}

// A maker killed between making its FIFO and naming it leaves the making name: collected once
// it is old, never while it is young (its maker may be about to open it).
TEST(WaitFilesTest, AHalfMadeLifelineIsCollectedOnlyOnceOld) {
  const std::string path = std::string(kDefaultSegmentDirectory) + "/shmring-m.wait_files_test_" + std::to_string(getpid());
  ASSERT_EQ(mkfifo(path.c_str(), 0600), 0);
  collect_stale_wait_files(0);
  EXPECT_TRUE(exists(path)) << "taken while young";
  const timespec old[2] = {{time(nullptr) - 3600, 0}, {time(nullptr) - 3600, 0}};
  ASSERT_EQ(utimensat(AT_FDCWD, path.c_str(), old, 0), 0);
  const std::vector<std::string> removed = collect_stale_wait_files(0, /*dry_run=*/true);
  EXPECT_NE(std::find(removed.begin(), removed.end(), path), removed.end());
  collect_stale_wait_files(0);
  EXPECT_FALSE(exists(path));
  unlink(path.c_str());
}

}  // namespace
}  // namespace shmring::detail
