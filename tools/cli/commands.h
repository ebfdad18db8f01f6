// The shmring verbs. A verb is one function, in its own file, that declares its subcommand on the
// root command line (options, help) and returns what runs it; main.cc lists every verb, one line
// each. Options are bound to state the returned `run` owns, so nothing is global.
//
// Exit status of every verb: 0 on success, 1 on failure (after one line "shmring VERB: NAME:
// reason" on stderr), 2 on a usage error (checked while parsing, before `run` is called, or by
// `run` for what depends on several options).
#pragma once

#include <functional>
#include <string>

#include <CLI/CLI.hpp>

namespace shmring::cli {

struct Verb {
  CLI::App* command = nullptr;  // the subcommand, owned by the root command line
  std::function<int()> run;     // called after a successful parse when `command` was chosen
};

// segment_commands.cc
Verb add_ls(CLI::App& root);
Verb add_rm(CLI::App& root);
Verb add_gc(CLI::App& root);
// channel_commands.cc
Verb add_stat(CLI::App& root);
Verb add_top(CLI::App& root);
Verb add_pub(CLI::App& root);
Verb add_sub(CLI::App& root);
// service_commands.cc
Verb add_call(CLI::App& root);
Verb add_serve(CLI::App& root);
// bench_command.cc
Verb add_bench(CLI::App& root);
// bridge_command.cc (needs ZeroMQ; without it main.cc registers a stub that says so)
Verb add_bridge(CLI::App& root);
// record_command.cc (needs zstd; without it main.cc registers stubs that say so)
Verb add_record(CLI::App& root);
Verb add_replay(CLI::App& root);
// completion_command.cc: `completion bash` and the hidden `manpage`, generated from the verbs
Verb add_completion(CLI::App& root);
Verb add_manpage(CLI::App& root);

// Prints "shmring VERB: message" to stderr (one line: control characters escaped) and returns
// `status`.
int report_error(const std::string& verb, const std::string& message, int status = 1);

}  // namespace shmring::cli
