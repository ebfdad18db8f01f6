// Typed options for the shmring verbs, on CLI11: whole numbers in a range, sizes with binary
// suffixes (64, 4K, 1M), durations with units (500ms, 2s), octal modes, one-of-a-set choices and
// existing directories. Each value is checked while the command line is parsed, so a bad one is a
// usage error (exit status 2) whose message names the option, before any verb runs.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace shmring::cli {

// A byte count with an optional binary suffix: 64, 4K / 4KiB / 4KB, 1M, 1G. nullopt if malformed
// or above 2^64 - 1.
std::optional<std::uint64_t> parse_size(const std::string& text);

// The unit of a duration written as a bare number ("500" is 500 ms or 500 s, per option).
enum class BareUnit { kMilliseconds, kSeconds };

// A duration: a number (fractions allowed) with a unit (us, ms, s, m, h) or a bare number in
// `bare`; rounded up to whole milliseconds. nullopt if malformed, negative or beyond ~292 years.
std::optional<std::chrono::milliseconds> parse_duration(const std::string& text, BareUnit bare);

// Declare option `name` ("--count") on `app`, bound to *target (which keeps its value when the
// option is absent: set the default before). `help` is the option's line in --help.
CLI::Option* add_integer(CLI::App& app, const std::string& name, std::int64_t* target, std::int64_t min,
                         std::int64_t max, const std::string& help);
CLI::Option* add_size(CLI::App& app, const std::string& name, std::uint64_t* target, std::uint64_t min,
                      std::uint64_t max, const std::string& help);
CLI::Option* add_duration(CLI::App& app, const std::string& name, std::chrono::milliseconds* target,
                          BareUnit bare, std::chrono::milliseconds max, const std::string& help);
CLI::Option* add_mode(CLI::App& app, const std::string& name, mode_t* target, const std::string& help);
// A user, by name or uid, resolved while parsing (repeatable: each adds one to *target).
CLI::Option* add_users(CLI::App& app, const std::string& name, std::vector<uid_t>* target,
                       const std::string& help);
CLI::Option* add_choice(CLI::App& app, const std::string& name, std::string* target,
                        std::vector<std::string> choices, const std::string& help);
// An existing directory this process can read (type DIR: completed as a directory).
CLI::Option* add_directory(CLI::App& app, const std::string& name, std::string* target,
                           const std::string& help);

// A verb's long description: the first paragraphs of its --help and of its man page section
// (the short one, given to add_subcommand, is its line in the list of verbs).
void set_long_description(CLI::App* app, const std::string& text);
std::string long_description(const CLI::App* app);

// The choices of an option declared by add_choice, or nullptr (for shell completion).
const std::vector<std::string>* choices_of(const CLI::Option* option);

// The formatter every verb's --help uses: "usage: shmring VERB [--option TYPE]... NAME".
std::shared_ptr<CLI::Formatter> make_formatter();

// The one-line message for a usage error (what follows "shmring VERB: ").
std::string usage_message(const CLI::ParseError& error);

// Parses `words` with `app`, a command line of its own (`command` names it in messages, e.g.
// "bridge export"). nullopt: parsed, go on. Otherwise the exit status to return: 0 after --help
// (printed to stdout), 2 after a usage error (one line on stderr).
std::optional<int> parse_words(CLI::App& app, const std::string& command, std::vector<std::string> words);

}  // namespace shmring::cli
