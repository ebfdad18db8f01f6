// A small command-line parser for the shmring subcommands: positional arguments, boolean flags
// (--json) and options with a value (--count 10 or --count=10). Unknown options are errors, and so
// is every value out of its range or in the wrong form: each typed getter checks it and records a
// one-line error (error()), which the commands report with exit status 2.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <limits>
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
  // The option as an integer in [min, max]; `fallback` if absent. Sets error() on anything else
  // (empty, not a number, overflow, out of range).
  std::int64_t integer(const std::string& option, std::int64_t fallback,
                       std::int64_t min = std::numeric_limits<std::int64_t>::min(),
                       std::int64_t max = std::numeric_limits<std::int64_t>::max());
  // A byte count in [min, max], with an optional binary suffix: 64, 4K / 4KiB, 1M / 1MiB, 1G.
  std::uint64_t bytes(const std::string& option, std::uint64_t fallback, std::uint64_t min,
                      std::uint64_t max);
  // A duration in [0, max]: a number with a unit (us, ms, s, m, h) or a bare number taken in
  // `bare_unit` ("s" or "ms"). Fractions are fine ("1.5s").
  std::chrono::milliseconds duration(const std::string& option, std::chrono::milliseconds fallback,
                                     const std::string& bare_unit, std::chrono::milliseconds max);
  // File mode bits in octal (600, 0644), at most 07777.
  mode_t mode(const std::string& option, mode_t fallback);
  // One of `choices`.
  std::string choice(const std::string& option, const std::string& fallback,
                     const std::set<std::string>& choices);
  const std::vector<std::string>& positional() const { return positional_; }

 private:
  std::set<std::string> flags_;
  std::map<std::string, std::string> values_;
  std::vector<std::string> positional_;
  void fail(const std::string& option, const std::string& text, const std::string& what);
  std::string error_;
};

// Escapes `text` as a JSON string, quotes included.
std::string json_string(const std::string& text);

// `text` with control characters (a newline in a channel name...) written as \n, \xNN: what an
// error message quotes stays on one line.
std::string printable(const std::string& text);

}  // namespace shmring::cli
