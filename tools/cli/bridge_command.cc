// `shmring bridge`: runs a shmring::bridge::Bridge (docs/bridge.md), or makes CURVE keys.
#include <signal.h>
#include <sys/stat.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "commands.h"
#include "options.h"
#include "shmring/bridge/bridge.h"

namespace shmring::cli {
namespace {

// What the command line says. The bridge's words are split at each `export` and `import`; each
// section is parsed by that word's command line into `section`, reset before each; the options
// allowed anywhere (--json, --interval, --config) keep the last value given.
struct SectionOptions {
  std::vector<std::string> channels;
  std::string bind;
  std::string connect;
  std::int64_t max_rate = 0;
  std::int64_t queue_window = 16;
  std::int64_t high_water_mark = 1000;
  std::string curve_secret_key;
  std::string curve_server_key;
  std::string curve_authorized;
};

struct BridgeOptions {
  bool json = false;
  std::chrono::milliseconds interval{1000};
  std::string config_file;
  SectionOptions section;
  std::string keygen_out;
  CLI::App* command = nullptr;
  CLI::App* export_words = nullptr;
  CLI::App* import_words = nullptr;
  CLI::App* keygen_words = nullptr;
};

std::atomic<bridge::Bridge*> running_bridge{nullptr};

extern "C" void stop_bridge(int) {
  if (bridge::Bridge* b = running_bridge.load()) b->stop();
}

int keygen(BridgeOptions& o, const std::vector<std::string>& words) {
  if (std::optional<int> done = parse_words(*o.keygen_words, "bridge keygen", words)) return *done;
  absl::StatusOr<bridge::CurveKeys> keys = bridge::generate_curve_keys();
  if (!keys.ok()) return report_error("bridge keygen", std::string(keys.status().message()));
  const std::optional<std::string> out =
      o.keygen_out.empty() ? std::nullopt : std::optional<std::string>(o.keygen_out);
  if (!out) {
    std::printf("public %s\nsecret %s\n", keys->public_key.c_str(), keys->secret_key.c_str());
    return 0;
  }
  const mode_t old = umask(077);  // the secret key file: owner only
  std::ofstream secret(*out + ".key");
  secret << keys->secret_key << "\n";
  umask(old);
  std::ofstream pub(*out + ".pub");
  pub << keys->public_key << "\n";
  if (!secret || !pub) return report_error("bridge keygen", "cannot write " + *out + ".key / .pub");
  std::printf("wrote %s.key (secret) and %s.pub (public %s)\n", out->c_str(), out->c_str(),
              keys->public_key.c_str());
  return 0;
}

std::string address(const std::string& text) {
  if (!text.empty() && text.find_first_not_of("0123456789") == std::string::npos) return "tcp://127.0.0.1:" + text;
  return text;
}

// The command line split at its "export" and "import" words: one section each.
struct Section {
  std::string verb;
  std::vector<std::string> words;
};

std::string human_status(const bridge::ChannelStatus& c) {
  std::string line = c.direction + " " + (c.direction == "export" ? c.channel : c.remote + " -> " + c.channel) +
                     " (" + std::string(to_string(c.kind)) + (c.lossless ? ", lossless" : "") + ")" +
                     (c.open ? "" : " [not open]") + ": " + std::to_string(c.messages) + " messages, " +
                     std::to_string(c.bytes) + " bytes, peers " + std::to_string(c.peers);
  if (c.lost != 0) line += ", lost " + std::to_string(c.lost);
  if (c.duplicates != 0) line += ", duplicates dropped " + std::to_string(c.duplicates);
  if (c.dropped != 0) line += ", dropped " + std::to_string(c.dropped);
  if (c.redelivered != 0) line += ", redelivered " + std::to_string(c.redelivered);
  if (c.rejected != 0) line += ", rejected " + std::to_string(c.rejected);
  if (c.resets != 0) line += ", upstream resets " + std::to_string(c.resets);
  return line;
}

int run_bridge(BridgeOptions& o, const std::vector<std::string>& words) {
  if (!words.empty() && words[0] == "keygen") return keygen(o, {words.begin() + 1, words.end()});
  if (!words.empty() && words[0] != "export" && words[0] != "import") {
    const std::string option = words[0].substr(0, words[0].find('='));
    if (option == "--high-water-mark" || option == "--queue-window" || option == "--curve-secret-key") {
      return report_error("bridge", option + " belongs to an export or import: put it after that word (or in "
                                             "the configuration file's section)", 2);
    }
    if (option.rfind("-", 0) == 0) return report_error("bridge", "unknown option " + option, 2);
    return report_error("bridge", "want `export`, `import`, `keygen` or --config (see --help)", 2);
  }
  std::vector<Section> sections;
  for (const std::string& w : words) {
    if (w == "export" || w == "import") {
      sections.push_back(Section{w, {}});
    } else {
      sections.back().words.push_back(w);
    }
  }
  bridge::BridgeConfig config;
  for (const Section& s : sections) {
    const std::string where = "bridge " + s.verb;
    o.section = SectionOptions{};
    CLI::App& command_line = s.verb == "export" ? *o.export_words : *o.import_words;
    if (std::optional<int> done = parse_words(command_line, where, s.words)) return *done;
    const SectionOptions& args = o.section;
    bridge::CarrierOptions carrier;
    carrier.high_water_mark = static_cast<int>(args.high_water_mark);
    const auto window = static_cast<std::uint32_t>(args.queue_window);
    auto key = [&](const std::string& option, const std::string& text, std::string* out) -> bool {
      if (text.empty()) return true;
      absl::StatusOr<std::string> k = bridge::read_key(text);
      if (!k.ok()) {
        report_error(where, "--" + option + ": " + std::string(k.status().message()), 2);
        return false;
      }
      *out = *k;
      return true;
    };
    if (!key("curve-secret-key", args.curve_secret_key, &carrier.security.secret_key)) return 2;
    if (s.verb == "export") {
      bridge::ExportSpec e;
      e.bind = address(args.bind);
      e.channels = args.channels;
      e.queue_window = window;
      e.max_rate = static_cast<double>(args.max_rate);
      if (!args.curve_authorized.empty()) {
        const std::string& list = args.curve_authorized;
        for (std::size_t start = 0; start <= list.size();) {
          const std::size_t end = std::min(list.find(',', start), list.size());
          if (end > start) {
            absl::StatusOr<std::string> k = bridge::read_key(list.substr(start, end - start));
            if (!k.ok()) return report_error(where, "--curve-authorized: " + std::string(k.status().message()), 2);
            carrier.security.authorized_clients.push_back(*k);
          }
          start = end + 1;
        }
      }
      e.carrier = carrier;
      config.exports.push_back(std::move(e));
    } else {
      bridge::ImportSpec i;
      i.connect = address(args.connect);
      for (const std::string& p : args.channels) {
        absl::StatusOr<bridge::ChannelRoute> r = bridge::parse_route(p);
        if (!r.ok()) return report_error(where, std::string(r.status().message()), 2);
        i.channels.push_back(*r);
      }
      i.queue_window = window;
      if (!key("curve-server-key", args.curve_server_key, &carrier.security.server_public_key)) return 2;
      i.carrier = carrier;
      config.imports.push_back(std::move(i));
    }
  }
  const bool json = o.json;
  const std::chrono::milliseconds interval = o.interval;
  const std::optional<std::string> config_file =
      o.config_file.empty() ? std::nullopt : std::optional<std::string>(o.config_file);
  if (config_file) {
    absl::StatusOr<bridge::BridgeConfig> from_file = bridge::load_bridge_config(*config_file);
    if (!from_file.ok()) return report_error("bridge", std::string(from_file.status().message()), 2);
    for (auto& e : from_file->exports) config.exports.push_back(std::move(e));
    for (auto& i : from_file->imports) config.imports.push_back(std::move(i));
  }
  if (config.exports.empty() && config.imports.empty()) {
    std::fputs(o.command->help("shmring", CLI::AppFormatMode::All).c_str(), stderr);
    return 2;
  }
  absl::StatusOr<std::unique_ptr<bridge::Bridge>> b = bridge::Bridge::create(config);
  if (!b.ok()) {
    return report_error("bridge", std::string(b.status().message()),
                        absl::IsInvalidArgument(b.status()) ? 2 : 1);
  }
  running_bridge.store(b->get());
  struct sigaction action = {};
  action.sa_handler = stop_bridge;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  signal(SIGPIPE, SIG_IGN);
  auto print = [json](const bridge::BridgeStatus& status) {
    if (json) {
      std::printf("%s\n", bridge::status_json(status).c_str());
    } else {
      for (const bridge::ChannelStatus& c : status.channels) std::printf("%s\n", human_status(c).c_str());
      if (status.malformed + status.unknown_channel != 0) {
        std::printf("network input dropped: %llu malformed, %llu for unknown channels\n",
                    static_cast<unsigned long long>(status.malformed),
                    static_cast<unsigned long long>(status.unknown_channel));
      }
    }
    std::fflush(stdout);
  };
  const std::chrono::milliseconds every = interval.count() > 0 ? interval : std::chrono::hours(24 * 365);
  absl::Status s = (*b)->run(print, every);
  // No handler may reach the bridge once it is destroyed: clear the pointer with the signals
  // blocked (libzmq's threads block them; the handler only runs on this thread).
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigprocmask(SIG_BLOCK, &stop_signals, nullptr);
  running_bridge.store(nullptr);
  if (!s.ok()) return report_error("bridge", std::string(s.message()));
  return 0;
}

// The options allowed anywhere on a bridge's command line.
void add_global_options(CLI::App& app, BridgeOptions* o) {
  app.add_flag("--json", o->json, "status lines as JSON (one object per line)");
  add_duration(app, "--interval", &o->interval, BareUnit::kSeconds, std::chrono::hours(24),
               "status every DURATION (default 1s; 0: only at exit)");
  app.add_option("--config", o->config_file, "read exports and imports from FILE (docs/bridge.md)")
      ->type_name("FILE");
}

// The options both an export and an import take (after their word).
void add_section_options(CLI::App& app, SectionOptions* s, const std::string& window_help) {
  add_integer(app, "--queue-window", &s->queue_window, 1, bridge::kMaxQueueWindow, window_help);
  add_integer(app, "--high-water-mark", &s->high_water_mark, 1, 1 << 20,
              "messages queued per connection before back-pressure (default 1000)");
}

CLI::App* add_words(CLI::App& bridge_app, const std::string& name, const std::string& help) {
  CLI::App* app = bridge_app.add_subcommand(name, help);
  app->disabled();  // never parsed as a subcommand: run_bridge parses each section with it
  app->prefix_command(false);
  app->allow_extras(false);
  return app;
}

}  // namespace

Verb add_bridge(CLI::App& root) {
  auto o = std::make_shared<BridgeOptions>();
  CLI::App* app = root.add_subcommand("bridge", "carry channels to and from other hosts over ZeroMQ");
  o->command = app;
  set_long_description(app,
      "Carries channels to other hosts over ZeroMQ (docs/bridge.md). `export` reads local channels\n"
      "and sends them to every import connected to ADDRESS; `import` connects to an export and\n"
      "publishes (or produces) what arrives into same-named local channels, so local subscribers\n"
      "and consumers need no change. Any number of exports and imports run in one process:\n"
      "  shmring bridge export CHANNEL... --bind ADDRESS [export options]\n"
      "                 [import CHANNEL... --connect ADDRESS [import options]] ...\n"
      "  shmring bridge --config FILE\n"
      "  shmring bridge keygen [--out PREFIX]");
  app->footer(
      "ADDRESS is tcp://HOST:PORT; a bare PORT binds tcp://127.0.0.1:PORT (loopback unless told\n"
      "otherwise). Keys are 40 characters of Z85 text or the path of a file holding one (`keygen`\n"
      "writes PREFIX.key, the secret, mode 0600, and PREFIX.pub). SIGINT or SIGTERM stops it\n"
      "cleanly. Exit status: 0 stopped by a signal, 1 could not start (bind, keys), 2 bad usage.");
  // Everything from the first word that is not an option on is run_bridge's to split and parse.
  app->prefix_command();
  add_global_options(*app, o.get());
  // Unknown options before the first word reach run_bridge too: it names the misplaced ones.
  app->allow_extras();

  o->export_words = add_words(*app, "export", "export CHANNEL... --bind ADDRESS: send local channels");
  CLI::App& e = *o->export_words;
  e.add_option("CHANNEL", o->section.channels, "local channels to send")->required();
  e.add_option("--bind", o->section.bind, "where imports connect")->type_name("ADDRESS")->required();
  add_integer(e, "--max-rate", &o->section.max_rate, 0, 1'000'000,
              "frames: send at most N frames per second per channel");
  add_section_options(e, &o->section,
                      "queues: items in flight per channel, held until acknowledged (16; each one a "
                      "consumer endpoint of the queue)");
  e.add_option("--curve-secret-key", o->section.curve_secret_key,
               "turn on CURVE (authentication and encryption) with this secret key")
      ->type_name("KEY");
  e.add_option("--curve-authorized", o->section.curve_authorized,
               "accept only these client public keys (comma separated; each key as text or a file); "
               "default: any client holding the server key")
      ->type_name("KEYS");
  add_global_options(e, o.get());

  o->import_words = add_words(*app, "import", "import CHANNEL... --connect ADDRESS: receive channels");
  CLI::App& i = *o->import_words;
  i.add_option("CHANNEL", o->section.channels,
               "channels to receive; REMOTE=LOCAL imports channel REMOTE under the name LOCAL")
      ->required();
  i.add_option("--connect", o->section.connect, "the export's address")->type_name("ADDRESS")->required();
  i.add_option("--curve-server-key", o->section.curve_server_key, "the export's public key (turns CURVE on)")
      ->type_name("KEY");
  i.add_option("--curve-secret-key", o->section.curve_secret_key,
               "this client's secret key (default: a fresh one per run)")
      ->type_name("KEY");
  add_section_options(i, &o->section, "queues: items this side accepts in flight per channel (16)");
  add_global_options(i, o.get());

  o->keygen_words = add_words(*app, "keygen", "keygen [--out PREFIX]: make a CURVE key pair");
  o->keygen_words->add_option("--out", o->keygen_out,
                              "write PREFIX.key (secret, 0600) and PREFIX.pub instead of printing them")
      ->type_name("PREFIX");
  return {app, [o] { return run_bridge(*o, o->command->remaining()); }};
}

}  // namespace shmring::cli
