// The real `shmring` binary and services: `serve --echo` answering `call` across processes, what
// `ls`, `stat` (text and JSON) and `top` show of a service, and the error paths (no service, no
// answer before the deadline, a dead server with at_most_once requests in flight, pub/sub on a
// service, usage errors).
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "run_command.h"
#include "shmring/transport/service.h"
#include "test_support.h"

namespace shmring {
namespace {

using namespace std::chrono_literals;
using testing::CommandResult;
using testing::run_command;

const std::string kCli = SHMRING_CLI_PATH;

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout = 10s) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    if (condition()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return false;
}

std::uint32_t servers_of(const std::string& name) {
  auto st = read_service_stats(name);
  return st.ok() ? st->servers : 0;
}

// `shmring serve NAME --echo ...` in a child process.
pid_t serve(const std::string& name, const std::vector<std::string>& more = {}) {
  return testing::fork_child([name, more] {
    std::vector<std::string> argv = {kCli, "serve", name, "--echo"};
    argv.insert(argv.end(), more.begin(), more.end());
    return run_command(argv, "", 60).status;
  });
}

TEST(CliServiceTest, CallGetsEveryLineAnsweredByServe) {
  const std::string name = testing::unique_key("cli_svc");
  const pid_t server = serve(name, {"--count", "3"});
  ASSERT_TRUE(eventually([&] { return servers_of(name) == 1; }));
  const CommandResult r = run_command({kCli, "call", name}, "one\ntwo\nthree\n");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "one\ntwo\nthree\n");
  EXPECT_TRUE(testing::wait_child(server, 10s).ok());  // --count 3: done
}

TEST(CliServiceTest, LsStatAndTopShowTheServiceFigures) {
  const std::string name = testing::unique_key("cli_svc_view");
  const pid_t server = serve(name, {"--timeout", "4s"});
  ASSERT_TRUE(eventually([&] { return servers_of(name) == 1; }));
  ASSERT_EQ(run_command({kCli, "call", name}, "a\nb\n").status, 0);
  const CommandResult stat = run_command({kCli, "stat", name, "--interval", "10"});
  EXPECT_EQ(stat.status, 0) << stat.err;
  EXPECT_NE(stat.out.find("channel " + name + ": service"), std::string::npos) << stat.out;
  EXPECT_NE(stat.out.find("service: 1 server(s), 0 client(s)"), std::string::npos) << stat.out;
  EXPECT_NE(stat.out.find("served 2"), std::string::npos) << stat.out;
  EXPECT_NE(stat.out.find("redelivered 0  expired 0"), std::string::npos) << stat.out;
  const CommandResult json = run_command({kCli, "stat", name, "--json", "--interval", "10"});
  EXPECT_NE(json.out.find("\"service\":{\"servers\":1,\"clients\":0,\"in_flight\":0"), std::string::npos) << json.out;
  EXPECT_NE(json.out.find("\"served\":2,\"redelivered\":0,\"expired\":0"), std::string::npos) << json.out;
  const CommandResult ls = run_command({kCli, "ls"});
  EXPECT_NE(ls.out.find("1 server(s), 0 client(s), 0 in flight, 2 served, 0 redelivered, 0 expired"),
            std::string::npos)
      << ls.out;
  const CommandResult top = run_command({kCli, "top", "--iterations", "1"});
  EXPECT_NE(top.out.find("2 served"), std::string::npos) << top.out;
  EXPECT_TRUE(testing::wait_child(server, 10s).ok());  // --timeout: done
}

TEST(CliServiceTest, RequestsWithoutAnAnswerAreReported) {
  const std::string name = testing::unique_key("cli_svc_err");
  // No such service (call does not create one unless asked).
  CommandResult r = run_command({kCli, "call", name}, "x\n");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("shmring call: " + name), std::string::npos) << r.err;
  // A service nobody serves: the request's deadline passes.
  r = run_command({kCli, "call", name, "--create", "--timeout", "200ms"}, "x\n");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("no answer before its deadline"), std::string::npos) << r.err;
  // The server holds an at_most_once request and dies: the client says so at once (it does not
  // wait for the deadline).
  ServiceOptions amo;
  amo.at_most_once = true;
  const pid_t holder = testing::fork_child([&] {
    auto s = ServiceServer::open(name);
    if (!s.ok()) return 2;
    ActiveRequest held = s->receive_request(20s);
    std::this_thread::sleep_for(60s);
    return 0;
  });
  ASSERT_TRUE(eventually([&] { return servers_of(name) == 1; }));
  auto client = ServiceClient::open(name, amo);
  ASSERT_TRUE(client.ok());
  PendingResponse p = client->try_send_request(std::as_bytes(std::span("q", 1)));
  ASSERT_TRUE(eventually([&] { return read_service_stats(name)->held == 1; }));
  kill(holder, SIGKILL);
  testing::wait_child(holder, 10s);
  std::byte buf[16];
  std::size_t n = 0;
  EXPECT_EQ(p.receive(buf, &n, 10s), ChannelResult::kPeerGone);
  // pub and sub refuse a service.
  r = run_command({kCli, "pub", name}, "x\n");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("a service: use `shmring call`"), std::string::npos) << r.err;
  r = run_command({kCli, "sub", name, "--timeout", "1"});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("a service: use `shmring serve`"), std::string::npos) << r.err;
}

TEST(CliServiceTest, UsageErrorsAreExitTwo) {
  const std::string name = testing::unique_key("cli_svc_usage");
  EXPECT_EQ(run_command({kCli, "serve", name}).status, 2);  // how to answer?
  EXPECT_EQ(run_command({kCli, "serve", name, "--echo", "--max-in-flight", "99999"}).status, 2);
  EXPECT_EQ(run_command({kCli, "call", name, "--format", "xml"}, "x\n").status, 2);
  EXPECT_EQ(run_command({kCli, "call"}).status, 2);
  const CommandResult help = run_command({kCli, "serve", "--help"});
  EXPECT_EQ(help.status, 0);
  EXPECT_NE(help.out.find("--echo"), std::string::npos);
}

}  // namespace
}  // namespace shmring
