// Every option of the shmring command line against bad values: each must exit 2 with one line on
// stderr ("shmring CMD: ..."), before touching any channel. Table-driven: option x {empty,
// negative, zero, huge, non-numeric, wrong unit}, for the classes each option refuses.
#include <gtest/gtest.h>

#include <unistd.h>

#include <string>
#include <vector>

#include "run_command.h"
#include "shmring/core/shared_memory.h"
#include "shmring/transport/queue.h"

namespace shmring {
namespace {

using testing::run_command;

enum Bad : unsigned { kEmpty = 1, kNegative = 2, kZero = 4, kHuge = 8, kNonNumeric = 16, kWrongUnit = 32 };
constexpr unsigned kAll = kEmpty | kNegative | kZero | kHuge | kNonNumeric | kWrongUnit;

struct OptionCase {
  std::vector<std::string> command;  // the command and what it needs besides the option
  std::string option;
  unsigned refused;                  // which classes of value this option must refuse
};

const char* value_of(Bad bad) {
  switch (bad) {
    case kEmpty: return "";
    case kNegative: return "-1";
    case kZero: return "0";
    case kHuge: return "99999999999999999999999";
    case kNonNumeric: return "abc";
    case kWrongUnit: return "5parsecs";
  }
  return "";
}

const std::vector<OptionCase>& cases() {
  static const std::vector<OptionCase> all = {
      {{"stat", "t_cli_bad"}, "interval", kAll & ~kZero},
      {{"top", "--iterations", "1"}, "interval", kAll & ~kZero},
      {{"top", "--interval", "50"}, "iterations", kAll & ~kZero & ~kWrongUnit},
      {{"sub", "t_cli_bad"}, "count", kAll & ~kZero & ~kWrongUnit},
      {{"sub", "t_cli_bad"}, "timeout", kAll & ~kZero},
      {{"sub", "t_cli_bad"}, "format", kEmpty | kNegative | kZero | kHuge | kNonNumeric | kWrongUnit},
      {{"pub", "t_cli_bad"}, "timeout", kAll & ~kZero},
      {{"pub", "t_cli_bad", "--create", "--kind", "topic"}, "capacity", kAll},
      {{"pub", "t_cli_bad", "--create", "--kind", "topic"}, "max-message", kAll},
      {{"pub", "t_cli_bad", "--create", "--kind", "topic"}, "mode", kEmpty | kNegative | kHuge | kNonNumeric | kWrongUnit},
      {{"pub", "t_cli_bad", "--create"}, "kind", kAll},
      {{"bench"}, "size", kAll},
      {{"bench"}, "count", kAll},
      {{"bench"}, "reps", kAll},
      {{"bench"}, "subscribers", kAll},
      {{"bench"}, "rate", kAll & ~kZero},
      {{"bench"}, "transport", kAll},
      {{"bench"}, "mode", kAll},
      {{"bench"}, "wait", kAll},
      {{"bench"}, "cpus", kAll},
      {{"gc"}, "dir", kEmpty | kNegative | kZero | kHuge | kNonNumeric | kWrongUnit},
      {{"ls"}, "dir", kEmpty | kNegative | kZero | kHuge | kNonNumeric | kWrongUnit},
  };
  return all;
}

TEST(CliBadInputTest, EveryOptionRefusesBadValuesWithOneLineAndStatus2) {
  int checked = 0;
  for (const OptionCase& c : cases()) {
    for (Bad bad : {kEmpty, kNegative, kZero, kHuge, kNonNumeric, kWrongUnit}) {
      if ((c.refused & bad) == 0) continue;
      std::vector<std::string> argv = {SHMRING_CLI_PATH};
      argv.insert(argv.end(), c.command.begin(), c.command.end());
      argv.push_back("--" + c.option + "=" + value_of(bad));
      const auto result = run_command(argv, "", 30);
      const std::string what = c.command[0] + " --" + c.option + "=" + value_of(bad);
      EXPECT_EQ(result.status, 2) << what << ": " << result.err;
      EXPECT_EQ(result.err.rfind("shmring " + c.command[0] + ": ", 0), 0u) << what << ": " << result.err;
      EXPECT_EQ(result.err.find('\n'), result.err.size() - 1) << what << ": not one line: " << result.err;
      ++checked;
    }
  }
  EXPECT_GT(checked, 100);
}

TEST(CliBadInputTest, ANameWithANewlineStaysOnOneLine) {
  const auto result = run_command({SHMRING_CLI_PATH, "stat", "bad\nname"});
  EXPECT_EQ(result.status, 1);
  EXPECT_EQ(result.err.find('\n'), result.err.size() - 1) << result.err;
  EXPECT_NE(result.err.find("bad\\nname"), std::string::npos) << result.err;
}

TEST(CliBadInputTest, AnImpossibleChannelNameIsAUsageError) {
  const auto result = run_command({SHMRING_CLI_PATH, "stat", "a/b"});
  EXPECT_EQ(result.status, 2) << result.err;
}

TEST(CliBadInputTest, BinaryPublishRefusesALengthAboveMaxMessageBeforeAllocating) {
  // 7 bytes of input whose first four say 0x41414141 (1 GiB): refused, nothing allocated (a
  // 4 GiB allocation under a memory limit used to abort the process).
  const std::string name = "t_cli_binlen_" + std::to_string(getpid());
  const auto result = run_command({SHMRING_CLI_PATH, "pub", name, "--create", "--kind", "topic",
                                   "--binary"},
                                  "AAAAAAA");
  EXPECT_EQ(result.status, 1) << result.err;
  EXPECT_NE(result.err.find("exceeds the channel's max_message"), std::string::npos) << result.err;
  // A record cut short by the end of the input is reported too.
  const std::string cut("\x10\x00\x00\x00" "abc", 7);
  const auto short_input = run_command({SHMRING_CLI_PATH, "pub", name, "--create", "--kind", "topic",
                                        "--binary"},
                                       cut);
  EXPECT_EQ(short_input.status, 1) << short_input.err;
  EXPECT_NE(short_input.err.find("input ends inside a record"), std::string::npos) << short_input.err;
}

TEST(CliBadInputTest, RmTakesTheChannelName) {
  const std::string name = "t_cli_rm_" + std::to_string(getpid());
  auto consumer = QueueConsumer::open(name);  // keeps the channel alive
  ASSERT_TRUE(consumer.ok()) << consumer.status();
  const auto removed = run_command({SHMRING_CLI_PATH, "rm", name});
  EXPECT_EQ(removed.status, 0) << removed.err;
  EXPECT_NE(removed.out.find("removed channel " + name), std::string::npos) << removed.out;
  EXPECT_FALSE(SharedMemory(channel_key(name)).exists());
  const auto again = run_command({SHMRING_CLI_PATH, "rm", name});
  EXPECT_EQ(again.status, 1);  // gone: a one-line error naming it
  EXPECT_NE(again.err.find(name), std::string::npos);
}

}  // namespace
}  // namespace shmring
