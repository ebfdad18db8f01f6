// shmring: the command line for shmring segments and channels.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "commands.h"

namespace {

constexpr const char* kUsage =
    "usage: shmring COMMAND [options]\n"
    "\n"
    "commands:\n"
    "  ls     list segments and channels on this machine (live / stale)\n"
    "  stat   show a channel: counters, rates, every endpoint and its lag\n"
    "  top    live view of all channels (q or Ctrl-C to quit)\n"
    "  pub    publish lines (or length-prefixed records) from stdin to a channel\n"
    "  sub    print what arrives on a channel\n"
    "  rm     remove a segment or channel by name\n"
    "  gc     remove every stale segment (all users dead); --dry-run to preview\n"
    "  bridge carry channels to and from other hosts over ZeroMQ (export, import, keygen)\n"
    "  record record channels into an MCAP file (info, --recover, trigger)\n"
    "  replay publish a recording into its channels at the recorded pace\n"
    "  bench  cross-process benchmark against the physical floor and other IPC mechanisms\n"
    "\n"
    "`shmring COMMAND --help` describes each command.\n";

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "help") == 0) {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const std::string command = argv[1];
  const std::vector<std::string> args(argv + 2, argv + argc);
  if (command == "ls") return shmring::cli::run_ls(args);
  if (command == "rm") return shmring::cli::run_rm(args);
  if (command == "gc") return shmring::cli::run_gc(args);
  if (command == "bench") return shmring::cli::run_bench(args);
  if (command == "stat") return shmring::cli::run_stat(args);
  if (command == "top") return shmring::cli::run_top(args);
  if (command == "pub") return shmring::cli::run_pub(args);
  if (command == "sub") return shmring::cli::run_sub(args);
  if (command == "bridge") {
#ifdef SHMRING_HAVE_BRIDGE
    return shmring::cli::run_bridge(args);
#else
    return shmring::cli::report_error(command, "this shmring was built without ZeroMQ (libzmq3-dev)", 1);
#endif
  }
  if (command == "record" || command == "replay") {
#ifdef SHMRING_HAVE_RECORD
    return command == "record" ? shmring::cli::run_record(args) : shmring::cli::run_replay(args);
#else
    return shmring::cli::report_error(command, "this shmring was built without zstd (libzstd-dev)", 1);
#endif
  }
  return shmring::cli::report_error(command, "unknown command (see shmring --help)", 2);
}
