// `shmring bridge` in a build without ZeroMQ: the verb exists (so scripts get a clear answer) and
// says why it cannot run.
#include "commands.h"

namespace shmring::cli {

Verb add_bridge(CLI::App& root) {
  CLI::App* app = root.add_subcommand("bridge", "carry channels to other hosts (not in this build: needs libzmq)");
  app->prefix_command();
  app->allow_extras();
  return {app, [] { return report_error("bridge", "this shmring was built without ZeroMQ (libzmq3-dev)", 1); }};
}

}  // namespace shmring::cli
