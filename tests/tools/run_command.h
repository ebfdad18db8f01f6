// Runs a program with arguments and captures its exit status, stdout and stderr.
#pragma once

#include <string>
#include <vector>

namespace shmring::testing {

struct CommandResult {
  int status = -1;  // exit status, or 128 + signal
  std::string out;
  std::string err;
};

CommandResult run_command(const std::vector<std::string>& argv, const std::string& stdin_text = "",
                          int timeout_seconds = 60);

}  // namespace shmring::testing
