// Listing, inspecting and garbage-collecting segments, with live, stale (killed) and foreign files.
#include "shmring/core/segment_directory.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"
#include "shmring/core/shared_memory.h"
#include "test_support.h"

namespace shmring {
namespace {

class SegmentDirectoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir_template[] = "/dev/shm/shmring_t_dirtest_XXXXXX";
    ASSERT_NE(mkdtemp(dir_template), nullptr);
    dir_ = dir_template;
  }
  void TearDown() override {
    collect_stale_segments(false, dir_, "");
    for (const char* name : {"/foreign", "/shmring_foreign"}) unlink((dir_ + name).c_str());
    rmdir(dir_.c_str());
  }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }

  void make_stale(const std::string& name) { testing::make_stale_segment(path(name)); }

  std::string dir_;
};

TEST_F(SegmentDirectoryTest, ListsLiveAndStaleSegmentsWithTheirFacts) {
  SharedMemory live;
  live.set_native_key(path("shmring_live"));
  ASSERT_TRUE(live.create(5000));
  SharedMemory second;
  second.set_native_key(path("shmring_live"));
  ASSERT_TRUE(second.attach(AccessMode::kReadOnly));
  make_stale("shmring_stale");

  const std::vector<SegmentListing> listings = list_segments(dir_, "shmring_");
  ASSERT_EQ(listings.size(), 2u);
  const SegmentListing& l = listings[0];
  EXPECT_EQ(l.native_key, "shmring_live");
  EXPECT_EQ(l.liveness, SegmentLiveness::kLive);
  EXPECT_EQ(l.attachments, 2);
  EXPECT_EQ(l.data_bytes, 5000u);
  EXPECT_EQ(l.creator_pid, getpid());
  EXPECT_TRUE(l.creator_alive);
  EXPECT_GT(l.created_unix_ns, 0);
  EXPECT_EQ(l.mode, 0600u);
  EXPECT_TRUE(l.problem.empty()) << l.problem;
  const SegmentListing& s = listings[1];
  EXPECT_EQ(s.native_key, "shmring_stale");
  EXPECT_EQ(s.liveness, SegmentLiveness::kStale);
  EXPECT_EQ(s.attachments, 0);
  EXPECT_FALSE(s.creator_alive);
  EXPECT_EQ(to_string(s.liveness), "stale");
}

TEST_F(SegmentDirectoryTest, GcRemovesOnlyStaleSegments) {
  SharedMemory live;
  live.set_native_key(path("shmring_live"));
  ASSERT_TRUE(live.create(100));
  make_stale("shmring_stale1");
  make_stale("shmring_stale2");
  const int fd = open(path("shmring_foreign").c_str(), O_CREAT | O_WRONLY, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, "user data that is no segment", 28), 28);
  ASSERT_EQ(ftruncate(fd, 8192), 0);
  close(fd);

  GcReport dry = collect_stale_segments(true, dir_, "shmring_");
  EXPECT_EQ(dry.removed.size(), 2u);
  EXPECT_EQ(access(path("shmring_stale1").c_str(), F_OK), 0);  // dry run: still there

  GcReport report = collect_stale_segments(false, dir_, "shmring_");
  EXPECT_EQ(report.removed.size(), 2u);
  EXPECT_EQ(report.live, 1);
  EXPECT_TRUE(report.failed.empty());
  ASSERT_EQ(report.skipped.size(), 1u);  // the foreign file is reported and left alone
  EXPECT_NE(report.skipped[0].find("not a shmring segment"), std::string::npos);
  EXPECT_NE(access(path("shmring_stale1").c_str(), F_OK), 0);
  EXPECT_NE(access(path("shmring_stale2").c_str(), F_OK), 0);
  EXPECT_EQ(access(path("shmring_foreign").c_str(), F_OK), 0);
  EXPECT_TRUE(live.exists());
  EXPECT_TRUE(live.lock());  // its lock untouched
  EXPECT_TRUE(live.unlock());
}

TEST_F(SegmentDirectoryTest, InspectReportsMissingAndCorruptSegments) {
  EXPECT_TRUE(absl::IsNotFound(inspect_segment(path("nothing")).status()));
  const int fd = open(path("shmring_corrupt").c_str(), O_CREAT | O_RDWR, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ftruncate(fd, 4096 * 2), 0);
  const std::uint32_t ready = 1;
  ASSERT_EQ(pwrite(fd, &ready, sizeof ready, 8), 4);  // "ready" but no magic
  close(fd);
  absl::StatusOr<SegmentListing> listing = inspect_segment(path("shmring_corrupt"));
  ASSERT_TRUE(listing.ok());
  EXPECT_NE(listing->problem.find("bad magic"), std::string::npos) << listing->problem;
  unlink(path("shmring_corrupt").c_str());
}

TEST_F(SegmentDirectoryTest, UnreadableSegmentIsPermissionDenied) {
  SharedMemory live;
  live.set_native_key(path("shmring_private"));
  ASSERT_TRUE(live.create(100));
  const std::string target = path("shmring_private");
  const auto result = testing::run_as_nobody([&] {
    absl::StatusOr<SegmentListing> listing = inspect_segment(target);
    return absl::IsPermissionDenied(listing.status()) ? 0 : 1;
  });
  // The directory made by mkdtemp is 0700: nobody cannot even reach the file, which is the same
  // answer (permission denied).
  EXPECT_TRUE(result.ok()) << result.code;
}

}  // namespace
}  // namespace shmring
