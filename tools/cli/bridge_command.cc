// `shmring bridge`: runs a shmring::bridge::Bridge (docs/bridge.md), or makes CURVE keys.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "args.h"
#include "commands.h"
#include "shmring/bridge/bridge.h"

namespace shmring::cli {
namespace {

constexpr const char* kBridgeUsage =
    "usage: shmring bridge export CHANNEL... --bind ADDRESS [export options]\n"
    "                      [import CHANNEL... --connect ADDRESS [import options]] ...\n"
    "       shmring bridge import CHANNEL... --connect ADDRESS [import options] [export ...]\n"
    "       shmring bridge --config FILE [--check]\n"
    "       shmring bridge keygen [--out PREFIX]\n"
    "\n"
    "Carries channels to other hosts over ZeroMQ. `export` reads local channels and sends them to\n"
    "every import connected to ADDRESS; `import` connects to an export and publishes (or produces)\n"
    "what arrives into same-named local channels, so local subscribers and consumers need no\n"
    "change. Any number of exports and imports run in one process. Topics count every message\n"
    "lost on the way (`shmring stat` of the imported topic); a lossless topic holds its publisher\n"
    "back end to end (credit) and loses nothing while the link is up; queue items are consumed\n"
    "exactly once while the link is up, at least once across a crash; frames go newest first.\n"
    "\n"
    "  ADDRESS                  tcp://HOST:PORT or tcp://[IPv6]:PORT; a bare PORT binds\n"
    "                           tcp://127.0.0.1:PORT (loopback unless told otherwise)\n"
    "  export CHANNEL           a name, or a pattern ('md.*', quoted) an import may ask for\n"
    "  import CHANNEL           REMOTE=LOCAL imports channel REMOTE under the name LOCAL\n"
    "export options:\n"
    "  --max-rate N             frames: send at most N frames per second per channel\n"
    "  --queue-window N         queues: items in flight per channel, held until acknowledged\n"
    "                           (16; 1..256, each one a consumer endpoint of the queue)\n"
    "  --topic-window SIZE      topics: most bytes in flight to one import (8M)\n"
    "  --evict-after DURATION   lossless topics: evict an import that holds the topic back this\n"
    "                           long (30s; 0: never); the others go on\n"
    "  --ack-timeout DURATION   queues: an item not acknowledged this long goes back to the queue\n"
    "                           and its import is evicted (30s; 0: never)\n"
    "  --curve-secret-key KEY   turn on CURVE (authentication and encryption) with this secret key\n"
    "  --curve-authorized KEYS  accept only these client public keys (comma separated; each key\n"
    "                           as text or a file); default: any client holding the server key\n"
    "import options:\n"
    "  --curve-server-key KEY   the export's public key (turns CURVE on)\n"
    "  --curve-secret-key KEY   this client's secret key (default: a fresh one per run)\n"
    "  --queue-window N         queues: items this side accepts in flight per channel (16)\n"
    "  --topic-window SIZE      topics: bytes this side accepts in flight per channel (8M)\n"
    "both:\n"
    "  --high-water-mark N      messages queued per connection before back-pressure (1000)\n"
    "  --json                   status lines as JSON (one object per line)\n"
    "  --interval DURATION      status every DURATION (1s); 0: only at exit\n"
    "  --config FILE            read exports and imports from FILE (below)\n"
    "  --check                  check the command line and FILE, print what they set up, exit\n"
    "Keys are a file holding one (`keygen --out P` writes P.key, the secret, mode 0600, and\n"
    "P.pub) or its 40 characters of Z85 text (visible in ps: prefer files).\n"
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
    "evictions, refused handshakes) to stderr. SIGINT or SIGTERM stops it cleanly.\n"
    "Exit status: 0 stopped by a signal (or --check passed), 1 could not start (bind), 2 bad usage\n"
    "or configuration.\n";

std::atomic<bridge::Bridge*> running_bridge{nullptr};

extern "C" void stop_bridge(int) {
  if (bridge::Bridge* b = running_bridge.load()) b->stop();
}

int keygen(const std::vector<std::string>& argv) {
  Args args(argv, {"help"}, {"out"});
  if (args.has("help")) {
    std::fputs(kBridgeUsage, stdout);
    return 0;
  }
  if (!args.ok()) return report_error("bridge keygen", args.error(), 2);
  if (!args.positional().empty()) return report_error("bridge keygen", "unexpected " + args.positional()[0], 2);
  absl::StatusOr<bridge::CurveKeys> keys = bridge::generate_curve_keys();
  if (!keys.ok()) return report_error("bridge keygen", std::string(keys.status().message()));
  const std::optional<std::string> out = args.value("out");
  if (!out) {
    std::printf("public %s\nsecret %s\n", keys->public_key.c_str(), keys->secret_key.c_str());
    return 0;
  }
  if (absl::Status s = bridge::write_key_files(*out, *keys); !s.ok()) {
    return report_error("bridge keygen", std::string(s.message()));
  }
  std::printf("wrote %s.key (secret) and %s.pub (public %s)\n", out->c_str(), out->c_str(),
              keys->public_key.c_str());
  return 0;
}

std::string address(const std::string& text) {
  if (!text.empty() && text.find_first_not_of("0123456789") == std::string::npos) return "tcp://127.0.0.1:" + text;
  return text;
}

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
                     (c.open ? "" : " [not open]") + link_text(c) + ": " + std::to_string(c.messages) + " messages, " +
                     std::to_string(c.bytes) + " bytes, peers " + std::to_string(c.peers);
  if (c.lost != 0) line += ", lost " + std::to_string(c.lost);
  if (c.duplicates != 0) line += ", duplicates dropped " + std::to_string(c.duplicates);
  if (c.dropped != 0) line += ", dropped " + std::to_string(c.dropped);
  if (c.redelivered != 0) line += ", redelivered " + std::to_string(c.redelivered);
  if (c.rejected != 0) line += ", rejected " + std::to_string(c.rejected);
  if (c.resets != 0) line += ", upstream resets " + std::to_string(c.resets);
  if (c.evictions != 0) line += ", evictions " + std::to_string(c.evictions);
  return line;
}

// --- the command line -----------------------------------------------------------------------------

// The command line split at its "export" and "import" words: one section each (the first, before
// any such word, has an empty verb and takes the options of the whole command).
struct Section {
  std::string verb;
  std::vector<std::string> words;
};

std::vector<Section> split_sections(const std::vector<std::string>& argv) {
  std::vector<Section> sections(1);
  for (const std::string& w : argv) {
    if (w == "export" || w == "import") {
      sections.push_back(Section{w, {}});
    } else {
      sections.back().words.push_back(w);
    }
  }
  return sections;
}

// What the command line asks for.
struct Request {
  bridge::BridgeConfig config;
  bool help = false;
  bool check = false;  // --check: only check what the command line and file set up
  bool json = false;
  std::chrono::milliseconds interval{1000};
  std::optional<std::string> config_file;
};

// A usage error (exit status 2): where it is ("bridge export") and what is wrong.
struct UsageError {
  std::string where;
  std::string message;
};

// A key option's value, read as bridge::read_key says, into *out (left alone if absent).
std::optional<UsageError> read_key_option(const Args& args, const std::string& where, const std::string& option,
                                          bridge::KeyKind kind, std::string* out) {
  if (!args.value(option)) return std::nullopt;
  absl::StatusOr<std::string> k = bridge::read_key(*args.value(option), kind);
  if (!k.ok()) return UsageError{where, "--" + option + ": " + std::string(k.status().message())};
  if (kind == bridge::KeyKind::kSecret && *k == *args.value(option)) {
    std::fprintf(stderr, "shmring %s: warning: a secret key given as text shows in ps; prefer a file (mode 0600)\n",
                 where.c_str());
  }
  *out = *k;
  return std::nullopt;
}

// --curve-authorized KEY,KEY...
std::optional<UsageError> read_authorized(const Args& args, const std::string& where, std::vector<std::string>* out) {
  if (!args.value("curve-authorized")) return std::nullopt;
  const std::string list = *args.value("curve-authorized");
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

// The section before any `export` or `import`: options of the whole command only.
std::optional<UsageError> check_command_section(const Args& args) {
  if (!args.positional().empty()) return UsageError{"bridge", "want `export`, `import`, `keygen` or --config (see --help)"};
  for (const char* option : {"high-water-mark", "queue-window", "topic-window", "curve-secret-key"}) {
    if (args.value(option)) {
      return UsageError{"bridge", std::string("--") + option +
                                      " belongs to an export or import: put it after that word "
                                      "(or in the configuration file's section)"};
    }
  }
  return std::nullopt;
}

std::optional<UsageError> add_export(Args& args, const std::string& where, const bridge::CarrierOptions& carrier,
                                     std::uint32_t window, std::uint64_t topic_window, Request* out) {
  bridge::ExportSpec e;
  if (!args.value("bind")) return UsageError{where, "--bind ADDRESS is required"};
  e.bind = address(*args.value("bind"));
  e.channels = args.positional();
  e.queue_window = window;
  e.max_rate = static_cast<double>(args.integer("max-rate", 0, 0, 1'000'000));
  e.evict_after = args.duration("evict-after", e.evict_after, "s", std::chrono::hours(24));
  e.ack_timeout = args.duration("ack-timeout", e.ack_timeout, "s", std::chrono::hours(24));
  e.topic_window = topic_window;
  e.carrier = carrier;
  if (auto error = read_authorized(args, where, &e.carrier.security.authorized_clients)) return error;
  if (!args.ok()) return UsageError{where, args.error()};
  out->config.exports.push_back(std::move(e));
  return std::nullopt;
}

std::optional<UsageError> add_import(const Args& args, const std::string& where, const bridge::CarrierOptions& carrier,
                                     std::uint32_t window, std::uint64_t topic_window, Request* out) {
  bridge::ImportSpec i;
  if (!args.value("connect")) return UsageError{where, "--connect ADDRESS is required"};
  i.connect = address(*args.value("connect"));
  for (const std::string& p : args.positional()) {
    absl::StatusOr<bridge::ChannelRoute> r = bridge::parse_route(p);
    if (!r.ok()) return UsageError{where, std::string(r.status().message())};
    i.channels.push_back(*r);
  }
  i.queue_window = window;
  i.topic_window = topic_window;
  i.carrier = carrier;
  if (auto error = read_key_option(args, where, "curve-server-key", bridge::KeyKind::kPublic,
                                   &i.carrier.security.server_public_key)) {
    return error;
  }
  out->config.imports.push_back(std::move(i));
  return std::nullopt;
}

// One section: the options every section takes, then what its verb adds.
std::optional<UsageError> parse_section(const Section& s, Request* out) {
  std::set<std::string> options = {"config",       "interval",     "high-water-mark",
                                   "curve-secret-key", "queue-window", "topic-window"};
  if (s.verb == "export") options.insert({"bind", "max-rate", "curve-authorized", "evict-after", "ack-timeout"});
  if (s.verb == "import") options.insert({"connect", "curve-server-key"});
  Args args(s.words, {"help", "json", "check"}, options);
  if (args.has("help")) {
    out->help = true;
    return std::nullopt;
  }
  const std::string where = s.verb.empty() ? "bridge" : "bridge " + s.verb;
  if (!args.ok()) return UsageError{where, args.error()};
  out->json = out->json || args.has("json");
  out->check = out->check || args.has("check");
  if (args.value("interval")) out->interval = args.duration("interval", out->interval, "s", std::chrono::hours(24));
  if (args.value("config")) out->config_file = args.value("config");
  bridge::CarrierOptions carrier;
  carrier.high_water_mark = static_cast<int>(args.integer("high-water-mark", 1000, 1, 1 << 20));
  const auto window = static_cast<std::uint32_t>(args.integer("queue-window", 16, 1, bridge::kMaxQueueWindow));
  const std::uint64_t topic_window =
      args.bytes("topic-window", bridge::kDefaultTopicWindow, 1, bridge::kMaxTopicWindow);
  if (!args.ok()) return UsageError{where, args.error()};
  if (auto error = read_key_option(args, where, "curve-secret-key", bridge::KeyKind::kSecret, &carrier.security.secret_key)) return error;
  if (s.verb.empty()) return check_command_section(args);
  if (args.positional().empty()) return UsageError{where, "name at least one channel"};
  return s.verb == "export" ? add_export(args, where, carrier, window, topic_window, out)
                            : add_import(args, where, carrier, window, topic_window, out);
}

// --config FILE: its exports and imports join the command line's.
std::optional<UsageError> add_config_file(Request* request) {
  if (!request->config_file) return std::nullopt;
  absl::StatusOr<bridge::BridgeConfig> from_file = bridge::load_bridge_config(*request->config_file);
  if (!from_file.ok()) return UsageError{"bridge", std::string(from_file.status().message())};
  for (auto& e : from_file->exports) request->config.exports.push_back(std::move(e));
  for (auto& i : from_file->imports) request->config.imports.push_back(std::move(i));
  return std::nullopt;
}

// --check: what the command line and file set up, checked as Bridge::create would (nothing is
// bound or connected).
int check_only(const Request& request) {
  if (absl::Status s = bridge::check_config(request.config); !s.ok()) {
    return report_error("bridge", std::string(s.message()), 2);
  }
  for (const bridge::ExportSpec& e : request.config.exports) {
    std::string names;
    for (const std::string& c : e.channels) names += " " + c;
    std::printf("export%s at %s%s\n", names.c_str(), e.bind.c_str(),
                e.carrier.security.secret_key.empty() ? " (no CURVE)" : " (CURVE)");
  }
  for (const bridge::ImportSpec& i : request.config.imports) {
    std::string names;
    for (const bridge::ChannelRoute& r : i.channels) names += " " + r.remote + (r.local == r.remote ? "" : "=" + r.local);
    std::printf("import%s from %s%s\n", names.c_str(), i.connect.c_str(),
                i.carrier.security.server_public_key.empty() ? " (no CURVE)" : " (CURVE)");
  }
  std::printf("configuration OK\n");
  return 0;
}

// --- running --------------------------------------------------------------------------------------

void print_status(const bridge::BridgeStatus& status, bool json) {
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
}

// Runs the bridge until SIGINT or SIGTERM, printing its status every `interval` (0: at exit only).
int run_until_stopped(const Request& request) {
  absl::StatusOr<std::unique_ptr<bridge::Bridge>> b = bridge::Bridge::create(request.config);
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
  const bool json = request.json;
  const std::chrono::milliseconds every =
      request.interval.count() > 0 ? request.interval : std::chrono::hours(24 * 365);
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

}  // namespace

int run_bridge(const std::vector<std::string>& argv) {
  if (!argv.empty() && argv[0] == "keygen") return keygen({argv.begin() + 1, argv.end()});
  Request request;
  for (const Section& s : split_sections(argv)) {
    if (auto error = parse_section(s, &request)) return report_error(error->where, error->message, 2);
    if (request.help) {
      std::fputs(kBridgeUsage, stdout);
      return 0;
    }
  }
  if (auto error = add_config_file(&request)) return report_error(error->where, error->message, 2);
  if (request.config.exports.empty() && request.config.imports.empty()) {
    std::fputs(kBridgeUsage, stderr);
    return 2;
  }
  if (request.check) return check_only(request);
  return run_until_stopped(request);
}

}  // namespace shmring::cli
