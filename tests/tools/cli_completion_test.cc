// The generated bash completion (`shmring completion bash`) driven the way bash drives it: the
// script is sourced, COMP_WORDS/COMP_CWORD set, _shmring called, COMPREPLY read. And the
// generated man page: it formats without a warning from groff and has a section for every verb.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "run_command.h"
#include "shmring/transport/topic.h"

namespace shmring {
namespace {

using testing::run_command;

class CliCompletionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto script = run_command({SHMRING_CLI_PATH, "completion", "bash"});
    ASSERT_EQ(script.status, 0) << script.err;
    path_ = "/tmp/shmring_completion_" + std::to_string(getpid()) + ".bash";
    FILE* f = std::fopen(path_.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fwrite(script.out.data(), 1, script.out.size(), f);
    std::fclose(f);
  }
  void TearDown() override { unlink(path_.c_str()); }

  // What bash offers for the last word of `words` (after the command name).
  std::string complete(const std::vector<std::string>& words) {
    std::vector<std::string> argv = {"/bin/bash", "-c",
                                     "source \"$1\"; shift; COMP_WORDS=(\"$@\"); COMP_CWORD=$(($# - 1)); "
                                     "_shmring; printf '%s\\n' \"${COMPREPLY[*]}\"",
                                     "bash", path_, SHMRING_CLI_PATH};
    argv.insert(argv.end(), words.begin(), words.end());
    const auto r = run_command(argv);
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.err, "");
    return r.out.empty() ? r.out : r.out.substr(0, r.out.size() - 1);
  }

  std::string path_;
};

TEST_F(CliCompletionTest, ScriptIsValidBash) {
  EXPECT_EQ(run_command({"/bin/bash", "-n", path_}).status, 0);
}

TEST_F(CliCompletionTest, VerbsOptionsAndValues) {
  EXPECT_EQ(complete({"b"}), "bridge bench");
  EXPECT_EQ(complete({"--v"}), "--version");
  EXPECT_EQ(complete({"pub", "x", "--ma"}), "--max-message --max-publishers");
  EXPECT_EQ(complete({"sub", "x", "--format", ""}), "text hex json");
  EXPECT_EQ(complete({"sub", "x", "--format", "=", ""}), "text hex json");  // --format=<TAB>
  EXPECT_EQ(complete({"pub", "x", "--kind", "q"}), "queue");
  EXPECT_EQ(complete({"bench", "--wait", "p"}), "park");
  EXPECT_EQ(complete({"bench", "--transport", "shmring-q"}), "shmring-queue shmring-queue-zc");
  EXPECT_EQ(complete({"completion", ""}), "bash");
  EXPECT_EQ(complete({"help", "st"}), "stat");
  EXPECT_EQ(complete({"ls", "--dir", "/pro"}), "/proc");  // a directory
  EXPECT_EQ(complete({"stat", "x", "--interval", ""}), "");  // a free value: nothing to offer
}

#ifdef SHMRING_HAVE_BRIDGE
TEST_F(CliCompletionTest, BridgeSections) {
  EXPECT_EQ(complete({"bridge", ""}), "export import keygen");
  EXPECT_EQ(complete({"bridge", "export", "a", "--b"}), "--bind");
  EXPECT_EQ(complete({"bridge", "export", "a", "--bind", "7000", "import", "b", "--con"}), "--connect --config");
  EXPECT_EQ(complete({"bridge", "keygen", "--"}), "--help --out");
}
#endif

TEST_F(CliCompletionTest, ChannelNamesComeFromTheMachine) {
  const std::string name = "t_cli_complete_" + std::to_string(getpid());
  auto publisher = TopicPublisher::open(name);
  ASSERT_TRUE(publisher.ok()) << publisher.status();
  EXPECT_EQ(complete({"sub", name.substr(0, name.size() - 2)}), name);
  EXPECT_EQ(complete({"stat", name}), name);
}

TEST(CliManPageTest, FormatsCleanlyWithEveryVerb) {
  const auto page = run_command({SHMRING_CLI_PATH, "manpage"});
  ASSERT_EQ(page.status, 0) << page.err;
  for (const char* verb : {"ls", "stat", "top", "pub", "sub", "rm", "gc", "bridge", "bridge export",
                           "bridge import", "bridge keygen", "bench", "completion"}) {
    EXPECT_NE(page.out.find(std::string(".SS \"shmring ") + verb + " "), std::string::npos) << verb;
  }
  if (access("/usr/bin/groff", X_OK) != 0) GTEST_SKIP() << "groff is not installed";
  const auto groff = run_command({"/usr/bin/groff", "-man", "-ww", "-z", "-Tutf8"}, page.out);
  EXPECT_EQ(groff.status, 0);
  EXPECT_EQ(groff.err, "");  // no warning
}

}  // namespace
}  // namespace shmring
