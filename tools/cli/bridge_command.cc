// `shmring bridge`: runs a shmring::bridge::Bridge, checks its configuration, or makes CURVE keys.
// The command line is split at each `export` and `import` word; each section is parsed by that
// word's own CLI11 command line, then turned into an ExportSpec or ImportSpec.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "commands.h"
#include "options.h"
#include "shmring/bridge/bridge.h"
#include "text.h"

namespace shmring::cli {
namespace {

// One section's options (after its `export` or `import` word), reset before each section.
struct SectionOptions {
  std::vector<std::string> channels;
  std::string bind;
  std::string connect;
  std::int64_t max_rate = 0;
  std::int64_t queue_window = 16;
  std::uint64_t topic_window = bridge::kDefaultTopicWindow;
  std::chrono::milliseconds evict_after = bridge::ExportSpec{}.evict_after;
  std::chrono::milliseconds ack_timeout = bridge::ExportSpec{}.ack_timeout;
  std::int64_t high_water_mark = 1000;
  std::string curve_secret_key;
  std::string curve_server_key;
  std::string curve_authorized;
};

// What the command line says. The options allowed anywhere (--json, --interval, --config,
// --check) keep the last value given.
struct BridgeOptions {
  bool json = false;
  bool check = false;  // --check: only check what the command line and file set up
  std::chrono::milliseconds interval{1000};
  std::string config_file;
  SectionOptions section;
  std::string keygen_out;
  CLI::App* command = nullptr;
  CLI::App* export_words = nullptr;
  CLI::App* import_words = nullptr;
  CLI::App* keygen_words = nullptr;
};

// A usage error (exit status 2): where it is ("bridge export") and what is wrong.
struct UsageError {
  std::string where;
  std::string message;
};

std::atomic<bridge::Bridge*> running_bridge{nullptr};

extern "C" void stop_bridge(int) {
  if (bridge::Bridge* b = running_bridge.load()) b->stop();
}

int keygen(BridgeOptions& o, const std::vector<std::string>& words) {
  if (std::optional<int> done = parse_words(*o.keygen_words, "bridge keygen", words)) return *done;
  absl::StatusOr<bridge::CurveKeys> keys = bridge::generate_curve_keys();
  if (!keys.ok()) return report_error("bridge keygen", std::string(keys.status().message()));
  if (o.keygen_out.empty()) {
    std::printf("public %s\nsecret %s\n", keys->public_key.c_str(), keys->secret_key.c_str());
    return 0;
  }
  if (absl::Status s = bridge::write_key_files(o.keygen_out, *keys); !s.ok()) {
    return report_error("bridge keygen", std::string(s.message()));
  }
  std::printf("wrote %s.key (secret) and %s.pub (public %s)\n", o.keygen_out.c_str(), o.keygen_out.c_str(),
              keys->public_key.c_str());
  return 0;
}

std::string address(const std::string& text) {
  if (!text.empty() && text.find_first_not_of("0123456789") == std::string::npos) return "tcp://127.0.0.1:" + text;
  return text;
}

// --- status lines ---------------------------------------------------------------------------------

// " [link down for 8.2 s]" when an import's link is not up.
std::string link_text(const bridge::ChannelStatus& c) {
  if (c.direction != "import" || c.link == "up") return "";
  char since[32];
  std::snprintf(since, sizeof since, "%.1f", static_cast<double>(c.link_ms) / 1000.0);
  return " [link " + c.link + " for " + since + " s]";
}

std::string human_status(const bridge::ChannelStatus& c) {
  std::string line = c.direction + " " + (c.direction == "export" ? c.channel : c.remote + " -> " + c.channel) +
                     " (" + std::string(to_string(c.kind)) + (c.lossless ? ", lossless" : "") + ")" +
                     (c.open ? "" : " [not open]") + link_text(c) + ": " + std::to_string(c.messages) +
                     " messages, " + std::to_string(c.bytes) + " bytes, peers " + std::to_string(c.peers);
  if (c.lost != 0) line += ", lost " + std::to_string(c.lost);
  if (c.duplicates != 0) line += ", duplicates dropped " + std::to_string(c.duplicates);
  if (c.dropped != 0) line += ", dropped " + std::to_string(c.dropped);
  if (c.redelivered != 0) line += ", redelivered " + std::to_string(c.redelivered);
  if (c.rejected != 0) line += ", rejected " + std::to_string(c.rejected);
  if (c.resets != 0) line += ", upstream resets " + std::to_string(c.resets);
  if (c.evictions != 0) line += ", evictions " + std::to_string(c.evictions);
  return line;
}

void print_status(const bridge::BridgeStatus& status, bool json) {
  if (json) {
    std::printf("%s\n", bridge::status_json(status).c_str());
  } else {
    for (const bridge::ChannelStatus& c : status.channels) std::printf("%s\n", printable(human_status(c)).c_str());
    if (status.malformed + status.unknown_channel != 0) {
      std::printf("network input dropped: %llu malformed, %llu for unknown channels\n",
                  static_cast<unsigned long long>(status.malformed),
                  static_cast<unsigned long long>(status.unknown_channel));
    }
  }
  std::fflush(stdout);
}

// --- the command line -----------------------------------------------------------------------------

// The command line split at its "export" and "import" words: one section each.
struct Section {
  std::string verb;
  std::vector<std::string> words;
};

std::vector<Section> split_sections(const std::vector<std::string>& words) {
  std::vector<Section> sections;
  for (const std::string& w : words) {
    if (w == "export" || w == "import") {
      sections.push_back(Section{w, {}});
    } else {
      sections.back().words.push_back(w);
    }
  }
  return sections;
}

// What comes before the first `export` or `import`: not an option of the whole command (those
// were parsed already), so a misplaced one is named.
std::optional<UsageError> check_first_word(const std::vector<std::string>& words) {
  if (words.empty() || words[0] == "export" || words[0] == "import") return std::nullopt;
  const std::string option = words[0].substr(0, words[0].find('='));
  for (const char* belongs : {"--high-water-mark", "--queue-window", "--topic-window", "--curve-secret-key"}) {
    if (option == belongs) {
      return UsageError{"bridge", option + " belongs to an export or import: put it after that word (or in the "
                                           "configuration file's section)"};
    }
  }
  if (option.rfind("-", 0) == 0) return UsageError{"bridge", "unknown option " + option};
  return UsageError{"bridge", "want `export`, `import`, `keygen` or --config (see --help)"};
}

// A key option's value, read as bridge::read_key says, into *out (left alone if empty).
std::optional<UsageError> read_key_option(const std::string& where, const std::string& option, const std::string& text,
                                          bridge::KeyKind kind, std::string* out) {
  if (text.empty()) return std::nullopt;
  absl::StatusOr<std::string> k = bridge::read_key(text, kind);
  if (!k.ok()) return UsageError{where, "--" + option + ": " + std::string(k.status().message())};
  if (kind == bridge::KeyKind::kSecret && *k == text) {
    std::fprintf(stderr, "shmring %s: warning: a secret key given as text shows in ps; prefer a file (mode 0600)\n",
                 where.c_str());
  }
  *out = *k;
  return std::nullopt;
}

// --curve-authorized KEY,KEY...
std::optional<UsageError> read_authorized(const std::string& where, const std::string& list,
                                          std::vector<std::string>* out) {
  for (std::size_t start = 0; start <= list.size();) {
    const std::size_t end = std::min(list.find(',', start), list.size());
    if (end > start) {
      absl::StatusOr<std::string> k = bridge::read_key(list.substr(start, end - start), bridge::KeyKind::kPublic);
      if (!k.ok()) return UsageError{where, "--curve-authorized: " + std::string(k.status().message())};
      out->push_back(*k);
    }
    start = end + 1;
  }
  return std::nullopt;
}

std::optional<UsageError> add_export(const SectionOptions& s, const bridge::CarrierOptions& carrier,
                                     bridge::BridgeConfig* config) {
  bridge::ExportSpec e;
  e.bind = address(s.bind);
  e.channels = s.channels;
  e.queue_window = static_cast<std::uint32_t>(s.queue_window);
  e.topic_window = s.topic_window;
  e.max_rate = static_cast<double>(s.max_rate);
  e.evict_after = s.evict_after;
  e.ack_timeout = s.ack_timeout;
  e.carrier = carrier;
  if (auto error = read_authorized("bridge export", s.curve_authorized, &e.carrier.security.authorized_clients)) {
    return error;
  }
  config->exports.push_back(std::move(e));
  return std::nullopt;
}

std::optional<UsageError> add_import(const SectionOptions& s, const bridge::CarrierOptions& carrier,
                                     bridge::BridgeConfig* config) {
  bridge::ImportSpec i;
  i.connect = address(s.connect);
  for (const std::string& p : s.channels) {
    absl::StatusOr<bridge::ChannelRoute> r = bridge::parse_route(p);
    if (!r.ok()) return UsageError{"bridge import", std::string(r.status().message())};
    i.channels.push_back(*r);
  }
  i.queue_window = static_cast<std::uint32_t>(s.queue_window);
  i.topic_window = s.topic_window;
  i.carrier = carrier;
  if (auto error = read_key_option("bridge import", "curve-server-key", s.curve_server_key, bridge::KeyKind::kPublic,
                                   &i.carrier.security.server_public_key)) {
    return error;
  }
  config->imports.push_back(std::move(i));
  return std::nullopt;
}

// One section: parsed by its word's command line, then the options both kinds take, then what
// its kind adds. nullopt with *exit_status set: --help was printed, or a usage error reported.
std::optional<UsageError> parse_section(BridgeOptions& o, const Section& s, bridge::BridgeConfig* config,
                                        std::optional<int>* exit_status) {
  const std::string where = "bridge " + s.verb;
  o.section = SectionOptions{};
  CLI::App& command_line = s.verb == "export" ? *o.export_words : *o.import_words;
  if ((*exit_status = parse_words(command_line, where, s.words))) return std::nullopt;
  const SectionOptions& args = o.section;
  bridge::CarrierOptions carrier;
  carrier.high_water_mark = static_cast<int>(args.high_water_mark);
  if (auto error = read_key_option(where, "curve-secret-key", args.curve_secret_key, bridge::KeyKind::kSecret,
                                   &carrier.security.secret_key)) {
    return error;
  }
  return s.verb == "export" ? add_export(args, carrier, config) : add_import(args, carrier, config);
}

// --config FILE: its exports and imports join the command line's.
std::optional<UsageError> add_config_file(const std::string& path, bridge::BridgeConfig* config) {
  if (path.empty()) return std::nullopt;
  absl::StatusOr<bridge::BridgeConfig> from_file = bridge::load_bridge_config(path);
  if (!from_file.ok()) return UsageError{"bridge", std::string(from_file.status().message())};
  for (auto& e : from_file->exports) config->exports.push_back(std::move(e));
  for (auto& i : from_file->imports) config->imports.push_back(std::move(i));
  return std::nullopt;
}

// --- running --------------------------------------------------------------------------------------

// --check: what the command line and file set up, checked as Bridge::create would (nothing is
// bound or connected).
int check_only(const bridge::BridgeConfig& config) {
  if (absl::Status s = bridge::check_config(config); !s.ok()) {
    return report_error("bridge", std::string(s.message()), 2);
  }
  for (const bridge::ExportSpec& e : config.exports) {
    std::string names;
    for (const std::string& c : e.channels) names += " " + c;
    std::printf("export%s at %s%s\n", printable(names).c_str(), printable(e.bind).c_str(),
                e.carrier.security.secret_key.empty() ? " (no CURVE)" : " (CURVE)");
  }
  for (const bridge::ImportSpec& i : config.imports) {
    std::string names;
    for (const bridge::ChannelRoute& r : i.channels) names += " " + r.remote + (r.local == r.remote ? "" : "=" + r.local);
    std::printf("import%s from %s%s\n", printable(names).c_str(), printable(i.connect).c_str(),
                i.carrier.security.server_public_key.empty() ? " (no CURVE)" : " (CURVE)");
  }
  std::printf("configuration OK\n");
  return 0;
}

// Runs the bridge until SIGINT or SIGTERM, printing its status every `interval` (0: at exit only).
int run_until_stopped(const bridge::BridgeConfig& config, bool json, std::chrono::milliseconds interval) {
  absl::StatusOr<std::unique_ptr<bridge::Bridge>> b = bridge::Bridge::create(config);
  if (!b.ok()) {
    return report_error("bridge", std::string(b.status().message()), absl::IsInvalidArgument(b.status()) ? 2 : 1);
  }
  running_bridge.store(b->get());
  struct sigaction action = {};
  action.sa_handler = stop_bridge;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  signal(SIGPIPE, SIG_IGN);
  const std::chrono::milliseconds every = interval.count() > 0 ? interval : std::chrono::hours(24 * 365);
  absl::Status s = (*b)->run([json](const bridge::BridgeStatus& status) { print_status(status, json); }, every);
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

int run_bridge(BridgeOptions& o, const std::vector<std::string>& words) {
  if (!words.empty() && words[0] == "keygen") return keygen(o, {words.begin() + 1, words.end()});
  if (auto error = check_first_word(words)) return report_error(error->where, error->message, 2);
  bridge::BridgeConfig config;
  for (const Section& s : split_sections(words)) {
    std::optional<int> exit_status;
    if (auto error = parse_section(o, s, &config, &exit_status)) return report_error(error->where, error->message, 2);
    if (exit_status) return *exit_status;
  }
  if (auto error = add_config_file(o.config_file, &config)) return report_error(error->where, error->message, 2);
  if (config.exports.empty() && config.imports.empty()) {
    std::fputs(o.command->help("shmring", CLI::AppFormatMode::All).c_str(), stderr);
    return 2;
  }
  if (o.check) return check_only(config);
  return run_until_stopped(config, o.json, o.interval);
}

// --- declarations ---------------------------------------------------------------------------------

// The options allowed anywhere on a bridge's command line.
void add_global_options(CLI::App& app, BridgeOptions* o) {
  app.add_flag("--json", o->json, "status lines as JSON (one object per line)");
  add_duration(app, "--interval", &o->interval, BareUnit::kSeconds, std::chrono::hours(24),
               "status every DURATION (default 1s; 0: only at exit)");
  app.add_option("--config", o->config_file, "read exports and imports from FILE (below)")->type_name("FILE");
  app.add_flag("--check", o->check, "check the command line and FILE, print what they set up, and exit");
}

// The options both an export and an import take (after their word).
void add_section_options(CLI::App& app, SectionOptions* s, const std::string& window_help,
                         const std::string& topic_window_help) {
  add_integer(app, "--queue-window", &s->queue_window, 1, bridge::kMaxQueueWindow, window_help);
  add_size(app, "--topic-window", &s->topic_window, 1, bridge::kMaxTopicWindow, topic_window_help);
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

void add_export_words(BridgeOptions* o) {
  CLI::App& e = *o->export_words;
  e.add_option("CHANNEL", o->section.channels, "local channels to send: names, or patterns ('md.*', quoted) an "
                                               "import may ask for")
      ->required();
  e.add_option("--bind", o->section.bind, "where imports connect")->type_name("ADDRESS")->required();
  add_integer(e, "--max-rate", &o->section.max_rate, 0, 1'000'000,
              "frames: send at most N frames per second per channel");
  add_section_options(e, &o->section,
                      "queues: items in flight per channel, held until acknowledged (16; each one a "
                      "consumer endpoint of the queue)",
                      "topics: most bytes in flight to one import (8M)");
  add_duration(e, "--evict-after", &o->section.evict_after, BareUnit::kSeconds, std::chrono::hours(24),
               "lossless topics: evict an import that holds the topic back this long (30s; 0: never); the "
               "others go on");
  add_duration(e, "--ack-timeout", &o->section.ack_timeout, BareUnit::kSeconds, std::chrono::hours(24),
               "queues: an item not acknowledged this long goes back to the queue and its import is evicted "
               "(30s; 0: never)");
  e.add_option("--curve-secret-key", o->section.curve_secret_key,
               "turn on CURVE (authentication and encryption) with this secret key")
      ->type_name("KEY");
  e.add_option("--curve-authorized", o->section.curve_authorized,
               "accept only these client public keys (comma separated; each key as text or a file); "
               "default: any client holding the server key")
      ->type_name("KEYS");
  add_global_options(e, o);
}

void add_import_words(BridgeOptions* o) {
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
  add_section_options(i, &o->section, "queues: items this side accepts in flight per channel (16)",
                      "topics: bytes this side accepts in flight per channel (8M)");
  add_global_options(i, o);
}

}  // namespace

Verb add_bridge(CLI::App& root) {
  auto o = std::make_shared<BridgeOptions>();
  CLI::App* app = root.add_subcommand("bridge", "carry channels to and from other hosts over ZeroMQ");
  o->command = app;
  set_long_description(app,
      "Carries channels to other hosts over ZeroMQ. `export` reads local channels and sends them to\n"
      "every import connected to ADDRESS; `import` connects to an export and publishes (or produces)\n"
      "what arrives into same-named local channels, so local subscribers and consumers need no\n"
      "change. Topics count every message lost on the way (`shmring stat` of the imported topic); a\n"
      "lossless topic holds its publisher back end to end (credit) and loses nothing while the link\n"
      "is up; queue items are consumed exactly once while the link is up, at least once across a\n"
      "crash; frames go newest first. Any number of exports and imports run in one process:\n"
      "  shmring bridge export CHANNEL... --bind ADDRESS [export options]\n"
      "                 [import CHANNEL... --connect ADDRESS [import options]] ...\n"
      "  shmring bridge --config FILE [--check]\n"
      "  shmring bridge keygen [--out PREFIX]");
  app->footer(
      "ADDRESS is tcp://HOST:PORT or tcp://[IPv6]:PORT; a bare PORT binds tcp://127.0.0.1:PORT\n"
      "(loopback unless told otherwise). Keys are a file holding one (`keygen --out P` writes P.key,\n"
      "the secret, mode 0600, and P.pub) or its 40 characters of Z85 text (visible in ps: prefer\n"
      "files); a secret key file others may read is refused.\n"
      "\n"
      "The configuration file: sections [export] and [import], each any number of times, with\n"
      "`key = value` lines; '#' starts a comment at a line's start or after a space.\n"
      "  [export]  bind, channels (names or patterns, space separated), max_rate, queue_window,\n"
      "            topic_window, evict_after, ack_timeout, high_water_mark, curve_secret_key,\n"
      "            curve_authorized (public keys, space separated)\n"
      "  [import]  connect, channels (NAME or REMOTE=LOCAL), queue_window, topic_window,\n"
      "            high_water_mark, curve_server_key, curve_secret_key\n"
      "Sizes take K, M or G (8M); durations ms, s, m or h (30s).\n"
      "\n"
      "Status lines go to stdout every --interval, events (peers, the link going down and up,\n"
      "evictions, refused handshakes) to stderr. SIGINT or SIGTERM stops it cleanly. Exit status: 0\n"
      "stopped by a signal (or --check passed), 1 could not start (bind), 2 bad usage or\n"
      "configuration.");
  // Everything from the first word that is not an option on is run_bridge's to split and parse.
  app->prefix_command();
  add_global_options(*app, o.get());
  // Unknown options before the first word reach run_bridge too: it names the misplaced ones.
  app->allow_extras();

  o->export_words = add_words(*app, "export", "export CHANNEL... --bind ADDRESS: send local channels");
  add_export_words(o.get());
  o->import_words = add_words(*app, "import", "import CHANNEL... --connect ADDRESS: receive channels");
  add_import_words(o.get());
  o->keygen_words = add_words(*app, "keygen", "keygen [--out PREFIX]: make a CURVE key pair");
  o->keygen_words->add_option("--out", o->keygen_out,
                              "write PREFIX.key (secret, 0600) and PREFIX.pub, each made anew, instead of printing "
                              "them")
      ->type_name("PREFIX");
  return {app, [o] { return run_bridge(*o, o->command->remaining()); }};
}

}  // namespace shmring::cli
