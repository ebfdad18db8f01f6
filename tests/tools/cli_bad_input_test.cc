// Every option of the shmring command line against bad values: each must exit 2 with one line on
// stderr ("shmring CMD: ...") that names the option, before touching any channel. Table-driven:
// option x {empty, negative, zero, huge, non-numeric, wrong unit}, for the classes each option
// refuses. Then what the parser must accept (units, suffixes, repeats), and the generated help.
#include <gtest/gtest.h>

#include <unistd.h>

#include <string>
#include <thread>
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
  std::string where = "";            // what the error line starts with, if not the command
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
      {{"sub", "t_cli_bad"}, "last", kAll & ~kWrongUnit},
      {{"pub", "t_cli_bad", "--create", "--kind", "topic"}, "history", kAll & ~kZero & ~kWrongUnit},
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
      {{"sub", "t_cli_bad", "--create", "--kind", "queue"}, "capacity", kAll},
      {{"sub", "t_cli_bad", "--create", "--kind", "queue"}, "max-message", kAll},
      {{"sub", "t_cli_bad", "--create", "--kind", "queue"}, "mode", kEmpty | kNegative | kHuge | kNonNumeric | kWrongUnit},
#ifdef SHMRING_HAVE_BRIDGE
      {{"bridge", "export", "t_cli_bad", "--bind", "7000"}, "queue-window", kAll, "bridge export"},
      {{"bridge", "export", "t_cli_bad", "--bind", "7000"}, "high-water-mark", kAll, "bridge export"},
      {{"bridge", "export", "t_cli_bad", "--bind", "7000"}, "max-rate", kAll & ~kZero, "bridge export"},
      {{"bridge", "export", "t_cli_bad", "--bind", "7000"}, "interval", kAll & ~kZero, "bridge export"},
      {{"bridge", "import", "t_cli_bad", "--connect", "7000"}, "queue-window", kAll, "bridge import"},
      {{"bridge", "import", "t_cli_bad", "--connect", "7000"}, "interval", kAll & ~kZero, "bridge import"},
      {{"bridge"}, "interval", kAll & ~kZero},
      {{"bridge"}, "queue-window", kAll},  // belongs after `export` or `import`, whatever its value
#endif
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
      const std::string where = c.where.empty() ? c.command[0] : c.where;
      EXPECT_EQ(result.status, 2) << what << ": " << result.err;
      EXPECT_EQ(result.err.rfind("shmring " + where + ": ", 0), 0u) << what << ": " << result.err;
      EXPECT_EQ(result.err.find('\n'), result.err.size() - 1) << what << ": not one line: " << result.err;
      EXPECT_NE(result.err.find("--" + c.option), std::string::npos) << what << ": names no option: " << result.err;
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

TEST(CliBadInputTest, UsageErrorsNameWhatIsWrong) {
  struct Case {
    std::vector<std::string> argv;
    std::string error;  // the whole line on stderr
  };
  const std::vector<Case> cases = {
      {{"ls", "--bogus"}, "shmring ls: unknown option --bogus\n"},
      {{"ls", "stray"}, "shmring ls: unexpected argument 'stray'\n"},
      {{"stat"}, "shmring stat: NAME is required\n"},
      {{"rm"}, "shmring rm: NAME is required\n"},
      {{"sub", "x", "--count"}, "shmring sub: option --count needs a value\n"},
      {{"pub", "x", "--create"}, "shmring pub: --create requires --kind\n"},
      {{"frobnicate"}, "shmring frobnicate: unknown command (see shmring --help)\n"},
      {{"--bogus"}, "shmring: unknown option --bogus (see shmring --help)\n"},
      {{"bench", "--size", "3X"},
       "shmring bench: --size: needs a size from 1 to 1G bytes (a number with an optional K, M or G), "
       "not '3X'\n"},
      {{"stat", "x", "--interval", "2 s"},
       "shmring stat: --interval: needs a duration from 0 to 1h (a number with us, ms, s, m or h; a "
       "bare number is in ms), not '2 s'\n"},
      {{"sub", "x", "--format", "a\nb"}, "shmring sub: --format: needs one of text, hex, json, not 'a\\nb'\n"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> argv = {SHMRING_CLI_PATH};
    argv.insert(argv.end(), c.argv.begin(), c.argv.end());
    const auto result = run_command(argv);
    EXPECT_EQ(result.status, 2) << c.argv[0];
    EXPECT_EQ(result.err, c.error);
    EXPECT_EQ(result.out, "");
  }
}

TEST(CliBadInputTest, UnitsSuffixesAndRepeatsAreAccepted) {
  const std::string name = "t_cli_units_" + std::to_string(getpid());
  // Sizes with suffixes; an option given twice keeps its last value. The sub holds the channel
  // while this process reads what it was created with.
  std::thread sub([&] {
    run_command({SHMRING_CLI_PATH, "sub", name, "--create", "--kind", "queue", "--capacity", "4", "--capacity",
                 "1K", "--max-message", "2KiB", "--mode", "0640", "--count", "1", "--timeout", "20s"});
  });
  absl::StatusOr<ChannelStats> stats;
  for (int i = 0; i < 2000 && !(stats = read_stats(name)).ok(); ++i) usleep(5000);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->capacity, 1024u);
  EXPECT_EQ(stats->max_message, 2048u);
  // The channel is looser (0640) than the default (0600) a pub accepts: it says so, and --mode
  // accepts it.
  auto r = run_command({SHMRING_CLI_PATH, "pub", name, "--timeout", "1.5s"}, "one\n");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("mode 0640 grants more than the 0600"), std::string::npos) << r.err;
  r = run_command({SHMRING_CLI_PATH, "pub", name, "--mode", "640", "--timeout", "1.5s"}, "one\n");
  EXPECT_EQ(r.status, 0) << r.err;
  sub.join();
  // --max-message 2K refuses a line of 2049 bytes (the channel's limit, not a parse error).
  r = run_command({SHMRING_CLI_PATH, "pub", name, "--create", "--kind", "topic", "--max-message", "2K"},
                  std::string(2049, 'x') + "\n");
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_NE(r.err.find("max_message of 2048"), std::string::npos) << r.err;
  QueueConsumer consumer = *QueueConsumer::open(name);  // for the subs below
  // Durations: a unit, a fraction, a bare number in the option's unit. A timed-out sub is a
  // failure (1), not a usage error (2).
  for (const char* timeout : {"200ms", "0.2s", "1", "200000us"}) {
    r = run_command({SHMRING_CLI_PATH, "sub", name, "--count", "1", "--timeout", timeout});
    EXPECT_EQ(r.status, 1) << timeout << ": " << r.err;
    EXPECT_NE(r.err.find("timed out after 0 of 1"), std::string::npos) << r.err;
  }
  // --option=value and --option value are the same.
  r = run_command({SHMRING_CLI_PATH, "stat", name, "--interval=10", "--json"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(remove_channel(name).ok());
}

TEST(CliBadInputTest, EveryVerbHasGeneratedHelp) {
  auto r = run_command({SHMRING_CLI_PATH, "--help"});
  ASSERT_EQ(r.status, 0);
  const std::vector<std::string> verbs = {"ls", "stat", "top", "pub", "sub", "rm", "gc", "bridge", "bench",
                                          "completion"};
  for (const std::string& verb : verbs) {
    EXPECT_NE(r.out.find("\n  " + verb + " "), std::string::npos) << verb << " not listed:\n" << r.out;
    const auto help = run_command({SHMRING_CLI_PATH, verb, "--help"});
    EXPECT_EQ(help.status, 0) << verb;
    EXPECT_NE(help.out.find("usage: shmring " + verb), std::string::npos) << help.out;
    EXPECT_EQ(help.err, "");
    // `shmring help VERB` is the same text.
    EXPECT_EQ(run_command({SHMRING_CLI_PATH, "help", verb}).out, help.out) << verb;
  }
  // Each option's line in the help says what it takes.
  r = run_command({SHMRING_CLI_PATH, "pub", "--help"});
  EXPECT_NE(r.out.find("--max-message SIZE"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--timeout DURATION"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--mode MODE"), std::string::npos) << r.out;
  r = run_command({SHMRING_CLI_PATH, "--version"});
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.out.rfind("shmring ", 0), 0u) << r.out;
  // No arguments: the help, on stderr, as a usage error.
  r = run_command({SHMRING_CLI_PATH});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("usage: shmring"), std::string::npos);
}

}  // namespace
}  // namespace shmring
