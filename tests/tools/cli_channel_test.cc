// The real `shmring` binary against real channels: pub/sub across processes, stat, ls, top (in tmux),
// and the error paths (missing channel, corrupt channel header, usage errors).
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "run_command.h"
#include "shmring/core/shared_memory.h"
#include "shmring/transport/channel.h"
#include "shmring/transport/queue.h"
#include "shmring/transport/topic.h"
#include "test_support.h"

namespace shmring {
namespace {

using testing::CommandResult;
using testing::run_command;

const std::string kCli = SHMRING_CLI_PATH;

// Runs the CLI in a child process (the test keeps going) and collects its result at the end.
class Background {
 public:
  explicit Background(std::vector<std::string> argv, std::string input = "") {
    pid_ = testing::fork_child([argv, input, this] {
      const CommandResult r = run_command(argv, input, 30);
      // Hand the result back through a file: the child cannot share memory with the parent object.
      FILE* f = std::fopen(path().c_str(), "w");
      if (f == nullptr) return 1;
      std::fprintf(f, "%d\n%s", r.status, r.out.c_str());
      std::fclose(f);
      return 0;
    });
  }
  CommandResult finish() {
    testing::wait_child(pid_, std::chrono::seconds(40));
    CommandResult r;
    if (FILE* f = std::fopen(path().c_str(), "r")) {
      char buffer[8192];
      const std::size_t n = std::fread(buffer, 1, sizeof buffer, f);
      std::fclose(f);
      const std::string text(buffer, n);
      const auto newline = text.find('\n');
      r.status = std::atoi(text.substr(0, newline).c_str());
      r.out = text.substr(newline + 1);
    }
    unlink(path().c_str());
    return r;
  }

 private:
  std::string path() const { return "/tmp/shmring_cli_bg_" + std::to_string(pid_id_); }
  int pid_id_ = getpid() * 100 + counter_++;
  static inline int counter_ = 0;
  pid_t pid_ = -1;
};

bool wait_for(const std::function<bool()>& condition, int ms = 5000) {
  for (int i = 0; i < ms; ++i) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return false;
}

int endpoints(const std::string& name) {
  absl::StatusOr<ChannelStats> stats = read_stats(name);
  return stats.ok() ? static_cast<int>(stats->peers.size()) : -1;
}

// Live attachments (read_stats() reads without attaching; a read_only subscriber maps
// the channel read-only and takes no registry slot, so only the kernel's count shows it).
int attachments(const std::string& name) {
  absl::StatusOr<ChannelStats> stats = read_stats(name);
  return stats.ok() ? stats->attachments : -1;  // read_stats reads without attaching
}

TEST(CliChannelTest, PubToQueueArrivesAtSubInAnotherProcess) {
  const std::string name = testing::unique_key("cliq");
  Background sub({kCli, "sub", name, "--create", "--kind", "queue", "--count", "3", "--timeout", "20"});
  ASSERT_TRUE(wait_for([&] { return endpoints(name) == 1; }));
  const CommandResult pub = run_command({kCli, "pub", name}, "alpha\nbeta\ngamma\n");
  EXPECT_EQ(pub.status, 0) << pub.err;
  EXPECT_NE(pub.err.find("3 message(s) sent"), std::string::npos);
  const CommandResult r = sub.finish();
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.out, "alpha\nbeta\ngamma\n");
}

TEST(CliChannelTest, BinaryRecordsToTopicPrintedAsJsonAndHex) {
  const std::string name = testing::unique_key("clit");
  Background json_sub({kCli, "sub", name, "--create", "--kind", "topic", "--lossless", "--count", "2",
                       "--format", "json", "--timeout", "20"});
  ASSERT_TRUE(wait_for([&] { return endpoints(name) == 1; }));
  Background hex_sub({kCli, "sub", name, "--count", "2", "--format", "hex", "--timeout", "20"});
  ASSERT_TRUE(wait_for([&] { return attachments(name) == 2; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // past its attach, to its first read
  std::string records;
  for (const std::string& r : {std::string("a\nb"), std::string("\x01\x02", 2)}) {
    const std::uint32_t n = static_cast<std::uint32_t>(r.size());
    records.append(reinterpret_cast<const char*>(&n), 4).append(r);
  }
  const CommandResult pub = run_command({kCli, "pub", name, "--binary"}, records);
  EXPECT_EQ(pub.status, 0) << pub.err;
  const CommandResult json = json_sub.finish();
  EXPECT_EQ(json.status, 0);
  EXPECT_NE(json.out.find("{\"n\":1,\"bytes\":3,\"text\":\"a\\nb\"}"), std::string::npos) << json.out;
  const CommandResult hex = hex_sub.finish();
  EXPECT_EQ(hex.out, "610a62\n0102\n") << hex.out;
}

TEST(CliChannelTest, SubTimesOutWithAClearError) {
  const std::string name = testing::unique_key("clito");
  QueueProducer producer = *QueueProducer::open(name);
  const CommandResult r = run_command({kCli, "sub", name, "--count", "1", "--timeout", "1"});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("timed out after 0 of 1"), std::string::npos) << r.err;
}

// --history N (what a creator makes the ring keep) and where `sub` starts on a topic: --from
// live|latest|oldest and --last N. The channel is kept alive by a subscriber of this process that
// never reads (a lossy one: it holds nobody back).
TEST(CliChannelTest, TopicHistoryAndWhereSubStarts) {
  const std::string name = testing::unique_key("clihist");
  TopicOptions keep;
  keep.history = 4;
  absl::StatusOr<TopicSubscriber> keeper = TopicSubscriber::open(name, keep);
  ASSERT_TRUE(keeper.ok()) << keeper.status();
  // A publisher must agree with the creator's history (or not say): another value is refused.
  const CommandResult wrong = run_command({kCli, "pub", name, "--history", "5"}, "x\n");
  EXPECT_EQ(wrong.status, 1) << wrong.err;
  const CommandResult pub = run_command({kCli, "pub", name, "--history", "4"}, "m0\nm1\nm2\nm3\nm4\nm5\n");
  ASSERT_EQ(pub.status, 0) << pub.err;
  const CommandResult last = run_command({kCli, "sub", name, "--last", "3", "--count", "3", "--timeout", "10"});
  EXPECT_EQ(last.status, 0) << last.err;
  EXPECT_EQ(last.out, "m3\nm4\nm5\n");
  const CommandResult latest = run_command({kCli, "sub", name, "--from", "latest", "--count", "1", "--timeout", "10"});
  EXPECT_EQ(latest.status, 0) << latest.err;
  EXPECT_EQ(latest.out, "m5\n");
  const CommandResult oldest = run_command({kCli, "sub", name, "--from", "oldest", "--count", "6", "--timeout", "10"});
  EXPECT_EQ(oldest.status, 0) << oldest.err;
  EXPECT_EQ(oldest.out, "m0\nm1\nm2\nm3\nm4\nm5\n");
  // Live: nothing of the past; it times out having printed nothing.
  const CommandResult live = run_command({kCli, "sub", name, "--from", "live", "--count", "1", "--timeout", "1"});
  EXPECT_EQ(live.status, 1);
  EXPECT_EQ(live.out, "");
  // --from and --last exclude each other; --last 0 is not a start.
  EXPECT_EQ(run_command({kCli, "sub", name, "--from", "oldest", "--last", "2"}).status, 2);
  EXPECT_EQ(run_command({kCli, "sub", name, "--last", "0"}).status, 2);
  EXPECT_EQ(run_command({kCli, "sub", name, "--from", "yesterday"}).status, 2);
  // stat shows each subscriber's delivery (the keeper's: the creator's default, lossy).
  const CommandResult stat = run_command({kCli, "stat", name});
  EXPECT_EQ(stat.status, 0) << stat.err;
  EXPECT_NE(stat.out.find("lossy"), std::string::npos) << stat.out;
  const CommandResult json = run_command({kCli, "stat", name, "--json"});
  EXPECT_NE(json.out.find("\"delivery\":\"lossy\""), std::string::npos) << json.out;
}

// Several publishers on a topic a `sub --create --max-publishers 2` made; `top` names each live
// publisher with its rate and counts each delivery among the subscribers.
TEST(CliChannelTest, TopShowsEachPublisherAndTheSubscribersDelivery) {
  const std::string name = testing::unique_key("clipubs");
  std::fflush(nullptr);
  const pid_t maker = fork();
  if (maker == 0) {
    const int null = open("/dev/null", O_WRONLY);
    dup2(null, STDOUT_FILENO);
    execl(kCli.c_str(), kCli.c_str(), "sub", name.c_str(), "--create", "--kind", "topic", "--max-publishers",
          "2", "--timeout", "30", static_cast<char*>(nullptr));
    _exit(127);
  }
  absl::StatusOr<ChannelStats> made = read_stats(name);
  for (int i = 0; i < 2000 && (!made.ok() || made->peers.empty()); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    made = read_stats(name);
  }
  ASSERT_TRUE(made.ok()) << made.status();
  EXPECT_EQ(made->max_publishers, 2u);
  TopicOptions careful_options;
  careful_options.delivery = TopicDelivery::kLossless;
  absl::StatusOr<TopicSubscriber> careful = TopicSubscriber::open(name, careful_options);
  absl::StatusOr<TopicPublisher> a = TopicPublisher::open(name);
  absl::StatusOr<TopicPublisher> b = TopicPublisher::open(name);
  ASSERT_TRUE(careful.ok() && a.ok() && b.ok()) << careful.status() << a.status() << b.status();
  // A third publisher is refused, from the command line too.
  const CommandResult third = run_command({kCli, "pub", name}, "x\n");
  EXPECT_EQ(third.status, 1) << third.err;
  EXPECT_NE(third.err.find("publisher"), std::string::npos) << third.err;
  const std::vector<std::byte> m(8);
  EXPECT_EQ(a->try_send(m), ChannelResult::kOk);
  EXPECT_EQ(b->try_send(m), ChannelResult::kOk);
  const CommandResult top = run_command({kCli, "top", "--iterations", "2", "--interval", "50"});
  EXPECT_EQ(top.status, 0) << top.err;
  const std::string ids[] = {std::to_string(a->publisher_id()), std::to_string(b->publisher_id())};
  EXPECT_NE(top.out.find("publishers 2: #" + ids[0]), std::string::npos) << top.out;
  EXPECT_NE(top.out.find(", #" + ids[1]), std::string::npos) << top.out;
  EXPECT_NE(top.out.find("subscribers 1 lossless, 1 lossy"), std::string::npos) << top.out;
  const CommandResult stat = run_command({kCli, "stat", name, "--json", "--interval", "10"});
  EXPECT_NE(stat.out.find("\"max_publishers\":2,\"history\":0,\"abandoned\":0"), std::string::npos) << stat.out;
  const CommandResult text = run_command({kCli, "stat", name, "--interval", "10"});
  EXPECT_NE(text.out.find("publishers at most 2; history 0"), std::string::npos) << text.out;
  kill(maker, SIGTERM);
  int status = 0;
  waitpid(maker, &status, 0);
  EXPECT_TRUE(WIFEXITED(status)) << status;
  // --max-publishers is checked like any number.
  EXPECT_EQ(run_command({kCli, "pub", name, "--max-publishers", "0"}, "x\n").status, 2);
}

TEST(CliChannelTest, StatShowsCountersAndEndpoints) {
  const std::string name = testing::unique_key("clistat");
  QueueProducer producer = *QueueProducer::open(name);
  QueueConsumer consumer = *QueueConsumer::open(name);
  const std::byte item[4] = {};
  for (int i = 0; i < 5; ++i) ASSERT_EQ(producer.try_send(item), ChannelResult::kOk);
  CommandResult r = run_command({kCli, "stat", name, "--interval", "50"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("channel " + name + ": queue"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("depth 5"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("producer"), std::string::npos);
  EXPECT_NE(r.out.find("consumer"), std::string::npos);
  r = run_command({kCli, "stat", name, "--json", "--interval", "10"});
  ASSERT_EQ(r.status, 0);
  EXPECT_NE(r.out.find("\"kind\":\"queue\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"sent\":5"), std::string::npos);
  EXPECT_NE(r.out.find("\"role\":\"producer\""), std::string::npos);
  r = run_command({kCli, "ls"});
  EXPECT_NE(r.out.find(name), std::string::npos);
  EXPECT_NE(r.out.find("2 alive"), std::string::npos) << r.out;
}

TEST(CliChannelTest, MissingAndCorruptChannelsAreOneLineErrors) {
  const std::string missing = testing::unique_key("nochan");
  for (const char* command : {"stat", "sub", "pub"}) {
    std::vector<std::string> argv = {kCli, command, missing};
    if (std::string(command) != "stat") argv.insert(argv.end(), {"--timeout", "1"});
    const CommandResult r = run_command(argv, "x\n");
    EXPECT_EQ(r.status, 1) << command;
    EXPECT_NE(r.err.find("shmring " + std::string(command) + ": " + missing + ": no such channel"),
              std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
  // A segment under a channel's key whose control block is garbage.
  const std::string corrupt = testing::unique_key("badchan");
  SharedMemory shm(channel_key(corrupt));
  ASSERT_TRUE(shm.create(1 << 16));
  std::memset(shm.data(), 0x5a, shm.size());
  for (const char* command : {"stat", "sub"}) {
    std::vector<std::string> argv = {kCli, command, corrupt};
    if (std::string(command) == "sub") argv.insert(argv.end(), {"--timeout", "1"});
    const CommandResult r = run_command(argv);
    EXPECT_EQ(r.status, 1) << command;
    EXPECT_NE(r.err.find("shmring " + std::string(command) + ": " + corrupt + ": "), std::string::npos)
        << r.err;
  }
  const CommandResult ls = run_command({kCli, "ls"});
  EXPECT_EQ(ls.status, 0);  // lists it with the problem, does not crash
  EXPECT_NE(ls.out.find(corrupt), std::string::npos);
  EXPECT_EQ(run_command({kCli, "sub", corrupt, "--format", "xml"}).status, 2);
  EXPECT_EQ(run_command({kCli, "pub", "x", "--create"}).status, 2);  // --create without --kind
}

TEST(CliChannelTest, TopRedrawsInATerminalAndQuitsOnQ) {
  if (run_command({"/usr/bin/tmux", "-V"}).status != 0) GTEST_SKIP() << "tmux is not installed";
  const std::string name = testing::unique_key("clitop");
  TopicPublisher publisher = *TopicPublisher::open(name);
  TopicSubscriber subscriber = *TopicSubscriber::open(name);
  const std::string session = "shmring_top_" + std::to_string(getpid());
  CommandResult r = run_command({"/usr/bin/tmux", "new-session", "-d", "-s", session, "-x", "150",
                                 "-y", "40", kCli + " top --interval 100"});
  ASSERT_EQ(r.status, 0) << r.err;
  const std::byte message[8] = {};
  bool shown = false;
  for (int i = 0; i < 100 && !shown; ++i) {
    publisher.try_send(message);
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    r = run_command({"/usr/bin/tmux", "capture-pane", "-p", "-t", session});
    shown = r.out.find(name) != std::string::npos && r.out.find("topic") != std::string::npos &&
            r.out.find("shmring top") != std::string::npos;
  }
  EXPECT_TRUE(shown) << r.out;
  // Redrawn in place: the screen holds one frame, not a scroll of them.
  EXPECT_EQ(r.out.find("shmring top -"), r.out.rfind("shmring top -")) << r.out;
  run_command({"/usr/bin/tmux", "send-keys", "-t", session, "q"});
  const bool gone = wait_for([&] {
    return run_command({"/usr/bin/tmux", "has-session", "-t", session}).status != 0;
  }, 3000);
  EXPECT_TRUE(gone) << "top did not exit on q";
  if (!gone) run_command({"/usr/bin/tmux", "kill-session", "-t", session});
}

TEST(CliChannelTest, TopExitsCleanlyOnSigint) {
  const pid_t child = testing::fork_child([] {
    execl(kCli.c_str(), kCli.c_str(), "top", "--interval", "50", static_cast<char*>(nullptr));
    return 127;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  kill(child, SIGINT);
  const auto result = testing::wait_child(child, std::chrono::seconds(5));
  EXPECT_TRUE(result.exited);
  EXPECT_EQ(result.code, 0);
}

}  // namespace
}  // namespace shmring
