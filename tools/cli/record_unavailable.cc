// `shmring record` and `shmring replay` in a build without zstd: the verbs exist (so scripts get a
// clear answer) and say why they cannot run.
#include "commands.h"

namespace shmring::cli {

namespace {

Verb unavailable(CLI::App& root, const char* name) {
  CLI::App* app = root.add_subcommand(name, std::string(name) + " (not in this build: needs libzstd)");
  app->prefix_command();
  app->allow_extras();
  return {app, [name] { return report_error(name, "this shmring was built without zstd (libzstd-dev)", 1); }};
}

}  // namespace

Verb add_record(CLI::App& root) { return unavailable(root, "record"); }
Verb add_replay(CLI::App& root) { return unavailable(root, "replay"); }

}  // namespace shmring::cli
