// The real `shmring` binary against real segments held or abandoned by other processes.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"
#include "run_command.h"
#include "shmring/core/shared_memory.h"
#include "test_support.h"

namespace shmring {
namespace {

using testing::run_command;

const std::string kCli = SHMRING_CLI_PATH;

class CliSegmentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir_template[] = "/dev/shm/shmring_t_clitest_XXXXXX";
    ASSERT_NE(mkdtemp(dir_template), nullptr);
    dir_ = dir_template;
  }
  void TearDown() override {
    run_command({kCli, "gc", "--dir", dir_});
    rmdir(dir_.c_str());
  }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  void make_stale(const std::string& name) { testing::make_stale_segment(path(name)); }

  std::string dir_;
};

TEST_F(CliSegmentTest, HelpAndUsageErrors) {
  auto r = run_command({kCli, "--help"});
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.out.find("usage: shmring"), std::string::npos);
  r = run_command({kCli});
  EXPECT_EQ(r.status, 2);
  r = run_command({kCli, "frobnicate"});
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.err, "shmring frobnicate: unknown command (see shmring --help)\n");
  for (const char* command : {"ls", "rm", "gc"}) {
    r = run_command({kCli, command, "--help"});
    EXPECT_EQ(r.status, 0) << command;
    EXPECT_NE(r.out.find(std::string("usage: shmring ") + command), std::string::npos);
  }
  r = run_command({kCli, "ls", "--bogus"});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("unknown option --bogus"), std::string::npos);
}

TEST_F(CliSegmentTest, LsShowsLiveAndStaleSegments) {
  SharedMemory live;
  live.set_native_key(path("shmring_live"));
  ASSERT_TRUE(live.create(12345));
  make_stale("shmring_dead");
  auto r = run_command({kCli, "ls", "--dir", dir_});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("12345"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("live"), std::string::npos);
  EXPECT_NE(r.out.find("stale"), std::string::npos);
  EXPECT_NE(r.out.find("2 segment(s)"), std::string::npos);
  r = run_command({kCli, "ls", "--json", "--dir", dir_});
  ASSERT_EQ(r.status, 0);
  EXPECT_NE(r.out.find("\"native_key\":\"shmring_live\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"state\":\"live\""), std::string::npos);
  EXPECT_NE(r.out.find("\"state\":\"stale\""), std::string::npos);
  EXPECT_NE(r.out.find("\"size\":12345"), std::string::npos);
  EXPECT_NE(r.out.find("\"attachments\":1"), std::string::npos);
  r = run_command({kCli, "ls", "--dir", "/nonexistent-shmring-dir"});
  EXPECT_EQ(r.status, 2);  // a bad --dir is a usage error, as every bad option value

  EXPECT_NE(r.err.find("/nonexistent-shmring-dir"), std::string::npos);
}

TEST_F(CliSegmentTest, GcRemovesOnlyStaleSegments) {
  SharedMemory live;
  live.set_native_key(path("shmring_live"));
  ASSERT_TRUE(live.create(100));
  make_stale("shmring_dead1");
  make_stale("shmring_dead2");
  auto r = run_command({kCli, "gc", "--dry-run", "--dir", dir_});
  ASSERT_EQ(r.status, 0);
  EXPECT_NE(r.out.find("would remove " + path("shmring_dead1")), std::string::npos) << r.out;
  EXPECT_EQ(access(path("shmring_dead1").c_str(), F_OK), 0);
  r = run_command({kCli, "gc", "--dir", dir_});
  ASSERT_EQ(r.status, 0);
  EXPECT_NE(r.out.find("removed " + path("shmring_dead1")), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("removed " + path("shmring_dead2")), std::string::npos);
  EXPECT_NE(r.out.find("2 stale segment(s) removed, 1 in use left alone"), std::string::npos);
  EXPECT_NE(access(path("shmring_dead1").c_str(), F_OK), 0);
  EXPECT_TRUE(live.exists());
  r = run_command({kCli, "gc", "--json", "--dir", dir_});
  EXPECT_EQ(r.out, "");  // nothing left to do
}

TEST_F(CliSegmentTest, RmRemovesByKeyAndReportsMissing) {
  const std::string key = testing::unique_key("cli_rm");
  SharedMemory shm(key);
  ASSERT_TRUE(shm.create(100));
  auto r = run_command({kCli, "rm", key});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("removed " + key), std::string::npos);
  EXPECT_FALSE(shm.exists());
  r = run_command({kCli, "rm", key});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("shmring rm: " + key), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("No such file"), std::string::npos);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1);  // one line
  r = run_command({kCli, "rm"});
  EXPECT_EQ(r.status, 2);
}

}  // namespace
}  // namespace shmring
