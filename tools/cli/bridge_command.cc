// `shmring bridge`: runs a shmring::bridge::Bridge (docs/bridge.md), or makes CURVE keys.
#include <signal.h>
#include <sys/stat.h>

#include <atomic>
#include <cstdio>
#include <fstream>
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
    "       shmring bridge --config FILE\n"
    "       shmring bridge keygen [--out PREFIX]\n"
    "\n"
    "Carries channels to other hosts over ZeroMQ (docs/bridge.md). `export` reads local channels\n"
    "and sends them to every import connected to ADDRESS; `import` connects to an export and\n"
    "publishes (or produces) what arrives into same-named local channels, so local subscribers\n"
    "and consumers need no change. Any number of exports and imports run in one process.\n"
    "\n"
    "  ADDRESS                  tcp://HOST:PORT; a bare PORT binds tcp://127.0.0.1:PORT (loopback\n"
    "                           unless told otherwise)\n"
    "  import CHANNEL           REMOTE=LOCAL imports channel REMOTE under the name LOCAL\n"
    "export options:\n"
    "  --max-rate N             frames: send at most N frames per second per channel\n"
    "  --queue-window N         queues: items in flight per channel, held until acknowledged\n"
    "                           (16; 1..256, each one a consumer endpoint of the queue)\n"
    "  --curve-secret-key KEY   turn on CURVE (authentication and encryption) with this secret key\n"
    "  --curve-authorized KEYS  accept only these client public keys (comma separated; each key\n"
    "                           as text or a file); default: any client holding the server key\n"
    "import options:\n"
    "  --curve-server-key KEY   the export's public key (turns CURVE on)\n"
    "  --curve-secret-key KEY   this client's secret key (default: a fresh one per run)\n"
    "  --queue-window N         queues: items this side accepts in flight per channel (16)\n"
    "both:\n"
    "  --high-water-mark N      messages queued per connection before back-pressure (1000)\n"
    "  --json                   status lines as JSON (one object per line)\n"
    "  --interval DURATION      status every DURATION (1s); 0: only at exit\n"
    "  --config FILE            read exports and imports from FILE (docs/bridge.md)\n"
    "Keys are 40 characters of Z85 text or the path of a file holding one (`keygen` writes\n"
    "PREFIX.key, the secret, mode 0600, and PREFIX.pub). SIGINT or SIGTERM stops it cleanly.\n"
    "Exit status: 0 stopped by a signal, 1 could not start (bind, keys), 2 bad usage.\n";

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

}  // namespace

int run_bridge(const std::vector<std::string>& argv) {
  if (!argv.empty() && argv[0] == "keygen") return keygen({argv.begin() + 1, argv.end()});
  const std::set<std::string> flags = {"help", "json"};
  const std::set<std::string> common = {"config", "interval", "high-water-mark", "curve-secret-key", "queue-window"};
  std::vector<Section> sections(1);
  for (const std::string& w : argv) {
    if (w == "export" || w == "import") {
      sections.push_back(Section{w, {}});
    } else {
      sections.back().words.push_back(w);
    }
  }
  bridge::BridgeConfig config;
  bool json = false;
  std::chrono::milliseconds interval{1000};
  std::optional<std::string> config_file;
  for (const Section& s : sections) {
    std::set<std::string> options = common;
    if (s.verb == "export") options.insert({"bind", "max-rate", "curve-authorized"});
    if (s.verb == "import") options.insert({"connect", "curve-server-key"});
    Args args(s.words, flags, options);
    if (args.has("help")) {
      std::fputs(kBridgeUsage, stdout);
      return 0;
    }
    const std::string where = s.verb.empty() ? "bridge" : "bridge " + s.verb;
    if (!args.ok()) return report_error(where, args.error(), 2);
    json = json || args.has("json");
    if (args.value("interval")) interval = args.duration("interval", interval, "s", std::chrono::hours(24));
    if (args.value("config")) config_file = args.value("config");
    bridge::CarrierOptions carrier;
    carrier.high_water_mark = static_cast<int>(args.integer("high-water-mark", 1000, 1, 1 << 20));
    const auto window = static_cast<std::uint32_t>(args.integer("queue-window", 16, 1, bridge::kMaxQueueWindow));
    if (!args.ok()) return report_error(where, args.error(), 2);
    auto key = [&](const std::string& option, std::string* out) -> bool {
      if (!args.value(option)) return true;
      absl::StatusOr<std::string> k = bridge::read_key(*args.value(option));
      if (!k.ok()) {
        report_error(where, "--" + option + ": " + std::string(k.status().message()), 2);
        return false;
      }
      *out = *k;
      return true;
    };
    if (!key("curve-secret-key", &carrier.security.secret_key)) return 2;
    if (s.verb.empty()) {
      if (!args.positional().empty()) {
        return report_error("bridge", "want `export`, `import`, `keygen` or --config (see --help)", 2);
      }
      for (const char* option : {"high-water-mark", "queue-window", "curve-secret-key"}) {
        if (args.value(option)) {
          return report_error("bridge", std::string("--") + option +
                                            " belongs to an export or import: put it after that word "
                                            "(or in the configuration file's section)", 2);
        }
      }
      continue;
    }
    if (args.positional().empty()) return report_error(where, "name at least one channel", 2);
    if (s.verb == "export") {
      bridge::ExportSpec e;
      if (!args.value("bind")) return report_error(where, "--bind ADDRESS is required", 2);
      e.bind = address(*args.value("bind"));
      e.channels = args.positional();
      e.queue_window = window;
      e.max_rate = static_cast<double>(args.integer("max-rate", 0, 0, 1'000'000));
      if (args.value("curve-authorized")) {
        std::string list = *args.value("curve-authorized");
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
      if (!args.ok()) return report_error(where, args.error(), 2);
      e.carrier = carrier;
      config.exports.push_back(std::move(e));
    } else {
      bridge::ImportSpec i;
      if (!args.value("connect")) return report_error(where, "--connect ADDRESS is required", 2);
      i.connect = address(*args.value("connect"));
      for (const std::string& p : args.positional()) {
        absl::StatusOr<bridge::ChannelRoute> r = bridge::parse_route(p);
        if (!r.ok()) return report_error(where, std::string(r.status().message()), 2);
        i.channels.push_back(*r);
      }
      i.queue_window = window;
      if (!key("curve-server-key", &carrier.security.server_public_key)) return 2;
      i.carrier = carrier;
      config.imports.push_back(std::move(i));
    }
  }
  if (config_file) {
    absl::StatusOr<bridge::BridgeConfig> from_file = bridge::load_bridge_config(*config_file);
    if (!from_file.ok()) return report_error("bridge", std::string(from_file.status().message()), 2);
    for (auto& e : from_file->exports) config.exports.push_back(std::move(e));
    for (auto& i : from_file->imports) config.imports.push_back(std::move(i));
  }
  if (config.exports.empty() && config.imports.empty()) {
    std::fputs(kBridgeUsage, stderr);
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

}  // namespace shmring::cli
