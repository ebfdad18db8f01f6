// The shmring subcommands. Each takes the arguments after its name and returns the exit status:
// 0 on success, 1 on failure (after printing one line "shmring CMD: NAME: reason" to stderr),
// 2 on a usage error.
#pragma once

#include <string>
#include <vector>

namespace shmring::cli {

int run_ls(const std::vector<std::string>& args);
int run_rm(const std::vector<std::string>& args);
int run_gc(const std::vector<std::string>& args);
int run_bench(const std::vector<std::string>& args);
int run_stat(const std::vector<std::string>& args);
int run_top(const std::vector<std::string>& args);
int run_pub(const std::vector<std::string>& args);
int run_sub(const std::vector<std::string>& args);
int run_bridge(const std::vector<std::string>& args);  // bridge_command.cc (needs ZeroMQ)
int run_record(const std::vector<std::string>& args);  // record_command.cc (needs zstd)
int run_replay(const std::vector<std::string>& args);  // record_command.cc

// Prints "shmring CMD: message" to stderr and returns `status`.
int report_error(const std::string& command, const std::string& message, int status = 1);

}  // namespace shmring::cli
