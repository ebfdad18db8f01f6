// A small command-line parser for the shmring subcommands: positional arguments, boolean flags
// (--json) and options with a value (--count 10 or --count=10). Unknown options are errors.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace shmring::cli {

class Args {
 public:
  // `flags`: options without a value; `options`: options that take one. Both without "--".
  Args(std::vector<std::string> argv, std::set<std::string> flags, std::set<std::string> options);

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }

  bool has(const std::string& flag) const { return flags_.count(flag) != 0; }
  std::optional<std::string> value(const std::string& option) const;
  // The option as an integer; `fallback` if absent. Sets error() on a malformed number.
  std::int64_t integer(const std::string& option, std::int64_t fallback);
  const std::vector<std::string>& positional() const { return positional_; }

 private:
  std::set<std::string> flags_;
  std::map<std::string, std::string> values_;
  std::vector<std::string> positional_;
  std::string error_;
};

// Escapes `text` as a JSON string, quotes included.
std::string json_string(const std::string& text);

}  // namespace shmring::cli
