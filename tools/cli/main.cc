// shmring: the command line for shmring segments and channels (docs/cli.md). The verbs declare
// themselves (commands.h); this file lists them, parses with CLI11 and maps every parse error to
// one line on stderr and exit status 2.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "commands.h"
#include "options.h"
#include "text.h"

namespace shmring::cli {
namespace {

// Every verb, in the order --help lists them. Adding a verb: its add_ function, and one line here.
constexpr Verb (*kVerbs[])(CLI::App&) = {
    add_ls,  add_stat, add_top,    add_pub,   add_sub,  add_call, add_serve, add_rm,
    add_gc,  add_bridge, add_record, add_replay, add_bench, add_completion, add_manpage,
};

std::unique_ptr<CLI::App> make_root(std::vector<Verb>* verbs) {
  auto root = std::make_unique<CLI::App>(
      "Lists, inspects, feeds and cleans up shmring segments and channels on this machine, carries\n"
      "channels to other hosts and runs the cross-process benchmark.",
      "shmring");
  root->formatter(make_formatter());
  root->set_version_flag("--version", "shmring " SHMRING_VERSION, "print the version and exit");
  // Repeating an option keeps its last value (as most command lines do).
  root->option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  root->require_subcommand(1, 1);
  for (auto add : kVerbs) verbs->push_back(add(*root));
  // After the verbs: they would inherit it.
  root->footer("`shmring VERB --help` describes each verb; docs/cli.md has them all.\n"
               "Exit status: 0 success, 1 failure (one line on stderr), 2 usage error.");
  return root;
}

}  // namespace
}  // namespace shmring::cli

int main(int argc, char** argv) {
  using namespace shmring::cli;
  std::vector<Verb> verbs;
  const std::unique_ptr<CLI::App> root = make_root(&verbs);
  if (argc < 2) {
    std::fputs(root->help().c_str(), stderr);
    return 2;
  }
  std::vector<std::string> words(argv + 1, argv + argc);
  if (words[0] == "help") {  // `shmring help [VERB]` is `shmring [VERB] --help`
    words.erase(words.begin());
    words.push_back("--help");
  }
  const std::string first = words[0];
  std::reverse(words.begin(), words.end());  // CLI11 takes them last first
  try {
    root->parse(words);
  } catch (const CLI::CallForHelp&) {
    // A verb with sections of its own (bridge export/import/keygen) shows them all.
    const std::vector<CLI::App*> chosen = root->get_subcommands();
    const bool sections = !chosen.empty() && !chosen.front()->get_subcommands({}).empty();
    std::fputs(root->help("", sections ? CLI::AppFormatMode::All : CLI::AppFormatMode::Normal).c_str(), stdout);
    return 0;
  } catch (const CLI::CallForVersion& version) {
    std::printf("%s\n", version.what());
    return 0;
  } catch (const CLI::ParseError& error) {
    const std::vector<CLI::App*> chosen = root->get_subcommands();
    if (!chosen.empty()) return report_error(chosen.front()->get_name(), usage_message(error), 2);
    if (first.rfind("-", 0) != 0) return report_error(first, "unknown command (see shmring --help)", 2);
    const std::string option = first.substr(0, first.find('='));  // before a verb: not ours
    std::fprintf(stderr, "shmring: unknown option %s (see shmring --help)\n", printable(option).c_str());
    return 2;
  }
  for (const Verb& verb : verbs) {
    if (verb.command->parsed()) return verb.run();
  }
  return report_error(first, "unknown command (see shmring --help)", 2);
}
