// `shmring stat`, `shmring top`, `shmring pub` and `shmring sub`: channels (transport/).
#include <poll.h>
#include <signal.h>
#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "commands.h"
#include "options.h"
#include "service_view.h"
#include "text.h"
#include "shmring/transport/channel.h"
#include "shmring/transport/frame.h"
#include "shmring/transport/queue.h"
#include "shmring/transport/topic.h"

namespace shmring::cli {

std::string_view kind_name(ChannelKind kind) { return to_string(kind); }

namespace {

using Clock = std::chrono::steady_clock;

std::string_view role_name(PeerRole role) { return role == PeerRole::kNone ? "-" : to_string(role); }

double per_second(std::uint64_t now, std::uint64_t before, double seconds) {
  return seconds > 0 && now >= before ? static_cast<double>(now - before) / seconds : 0;
}

std::string rate_text(double rate) {
  char buffer[32];
  if (rate >= 1e6) {
    std::snprintf(buffer, sizeof buffer, "%.2fM/s", rate / 1e6);
  } else if (rate >= 1e3) {
    std::snprintf(buffer, sizeof buffer, "%.1fk/s", rate / 1e3);
  } else {
    std::snprintf(buffer, sizeof buffer, "%.0f/s", rate);
  }
  return buffer;
}

// The error line for a channel that cannot be read: names the channel and the reason.
int channel_error(const std::string& command, const std::string& name, const absl::Status& status) {
  std::string reason(status.message());
  if (absl::IsNotFound(status)) reason = "no such channel (" + reason + ")";
  // A name that can never be a channel is a usage error, like any other bad value.
  return report_error(command, name + ": " + reason, absl::IsInvalidArgument(status) ? 2 : 1);
}

// Topics: a subscriber's delivery ("lossless" / "lossy"; null for any other endpoint) and a
// publisher's id, the one its messages carry (0 for any other endpoint, or unknown). What stat
// prints and its JSON says, from one rule.
const char* topic_delivery(const ChannelStats& s, const PeerStats& p) {
  if (s.kind != ChannelKind::kTopic || p.role != PeerRole::kSubscriber) return nullptr;
  return p.lossless ? "lossless" : "lossy";
}
std::uint32_t topic_publisher_id(const ChannelStats& s, const PeerStats& p) {
  return s.kind == ChannelKind::kTopic && p.role == PeerRole::kPublisher ? p.publisher_id : 0;
}

// `shmring top`'s line under a topic: each live publisher by id with its rate since the last
// round (matched by slot and id, so a publisher that took a dead one's slot starts afresh), and
// how many subscribers are lossless and lossy.
std::string topic_summary(const ChannelStats& s, const ChannelStats* before, double seconds) {
  std::string publishers;
  int count = 0, lossless = 0, lossy = 0;
  for (const PeerStats& p : s.peers) {
    if (!p.alive) continue;
    if (const char* delivery = topic_delivery(s, p)) {
      (std::string_view(delivery) == "lossless" ? lossless : lossy)++;
      continue;
    }
    const std::uint32_t id = topic_publisher_id(s, p);
    if (id == 0) continue;
    std::string rate = "-";
    if (before != nullptr) {
      for (const PeerStats& q : before->peers) {
        if (q.index == p.index && topic_publisher_id(*before, q) == id) rate = rate_text(per_second(p.sent, q.sent, seconds));
      }
    }
    publishers += std::string(count++ == 0 ? " " : ", ") + "#" + std::to_string(id) + " " + rate;
  }
  return "publishers " + std::to_string(count) + (count != 0 ? ":" + publishers : "") + "; subscribers " +
         std::to_string(lossless) + " lossless, " + std::to_string(lossy) + " lossy";
}

std::string stats_json(const ChannelStats& s, const ChannelStats* before, double seconds) {
  std::string out = "{\"name\":" + json_string(s.name) + ",\"kind\":" +
                    json_string(std::string(kind_name(s.kind))) +
                    ",\"lossless\":" + (s.lossless ? "true" : "false") +
                    ",\"capacity\":" + std::to_string(s.capacity) +
                    ",\"max_message\":" + std::to_string(s.max_message) +
                    ",\"attachments\":" + std::to_string(s.attachments) +
                    ",\"sent\":" + std::to_string(s.sent) + ",\"received\":" + std::to_string(s.received) +
                    ",\"lost\":" + std::to_string(s.lost) + ",\"blocked_ns\":" + std::to_string(s.blocked_ns) +
                    ",\"depth\":" + std::to_string(s.depth) +
                    ",\"peers_reclaimed\":" + std::to_string(s.peers_reclaimed) +
                    ",\"claims_skipped\":" + std::to_string(s.claims_skipped) +
                    ",\"evictions\":" + std::to_string(s.evictions) +
                    ",\"receivers_parked\":" + std::to_string(s.receivers_parked) +
                    ",\"senders_parked\":" + std::to_string(s.senders_parked) +
                    ",\"receivers_armed\":" + std::to_string(s.receivers_armed) +
                    ",\"senders_armed\":" + std::to_string(s.senders_armed);
  if (s.kind == ChannelKind::kTopic) {
    out += ",\"max_publishers\":" + std::to_string(s.max_publishers) + ",\"history\":" + std::to_string(s.history) +
           ",\"abandoned\":" + std::to_string(s.abandoned);
  }
  if (before != nullptr) {
    char rates[128];
    std::snprintf(rates, sizeof rates, ",\"sent_per_s\":%.1f,\"received_per_s\":%.1f",
                  per_second(s.sent, before->sent, seconds),
                  per_second(s.received, before->received, seconds));
    out += rates;
  }
  out += ",\"peers\":[";
  for (std::size_t i = 0; i < s.peers.size(); ++i) {
    const PeerStats& p = s.peers[i];
    out += std::string(i ? "," : "") + "{\"index\":" + std::to_string(p.index) + ",\"role\":" +
           json_string(std::string(role_name(p.role))) + ",\"pid\":" + std::to_string(p.pid) +
           ",\"alive\":" + (p.alive ? "true" : "false") + ",\"sent\":" + std::to_string(p.sent) +
           ",\"received\":" + std::to_string(p.received) + ",\"lost\":" + std::to_string(p.lost) +
           ",\"lag\":" + std::to_string(p.lag) + ",\"blocked_ns\":" + std::to_string(p.blocked_ns);
    if (const char* delivery = topic_delivery(s, p)) out += std::string(",\"delivery\":\"") + delivery + "\"";
    if (const std::uint32_t id = topic_publisher_id(s, p); id != 0) {
      out += ",\"publisher_id\":" + std::to_string(id);
    }
    if (!p.upstream_from.empty()) {  // a bridge import: where from, and its link
      out += ",\"upstream_from\":" + json_string(p.upstream_from) + ",\"upstream_link\":\"" +
             (p.upstream_up ? "up" : "down") + "\"";
    }
    out += "}";
  }
  out += "]";
  if (s.kind == ChannelKind::kService) out += service_json(s.name);
  return out + "}";
}

void print_stats(const ChannelStats& s, const ChannelStats& before, double seconds) {
  std::printf("channel %s: %s%s, capacity %llu, max message %llu B, %d attachment(s)\n",
              printable(s.name).c_str(), std::string(kind_name(s.kind)).c_str(),
              s.kind == ChannelKind::kTopic ? (s.lossless ? " (lossless)" : " (lossy)") : "",
              static_cast<unsigned long long>(s.capacity),
              static_cast<unsigned long long>(s.max_message), s.attachments);
  std::printf("  sent %llu (%s)  received %llu (%s)  lost %llu  blocked %.3f s\n",
              static_cast<unsigned long long>(s.sent),
              rate_text(per_second(s.sent, before.sent, seconds)).c_str(),
              static_cast<unsigned long long>(s.received),
              rate_text(per_second(s.received, before.received, seconds)).c_str(),
              static_cast<unsigned long long>(s.lost), static_cast<double>(s.blocked_ns) / 1e9);
  if (s.kind == ChannelKind::kTopic) {
    std::printf("  publishers at most %u; history %llu message(s) kept for late joiners; abandoned %llu\n",
                s.max_publishers, static_cast<unsigned long long>(s.history),
                static_cast<unsigned long long>(s.abandoned));
  }
  if (s.kind == ChannelKind::kQueue) {
    std::printf("  depth %llu of %llu; claims skipped %llu; items redelivered %llu\n",
                static_cast<unsigned long long>(s.depth), static_cast<unsigned long long>(s.capacity),
                static_cast<unsigned long long>(s.claims_skipped),
                static_cast<unsigned long long>(s.items_redelivered));
  }
  std::printf("  dead peers reclaimed %llu; evictions %llu; parked: %u receiver(s), %u sender(s); "
              "armed descriptors: %u receiver(s), %u sender(s)\n",
              static_cast<unsigned long long>(s.peers_reclaimed),
              static_cast<unsigned long long>(s.evictions), s.receivers_parked, s.senders_parked,
              s.receivers_armed, s.senders_armed);
  std::printf("  %-5s %-10s %8s %-5s %12s %12s %10s %12s %10s  %s\n", "SLOT", "ROLE", "PID", "ALIVE",
              "SENT", "RECEIVED", "LOST", "LAG", "BLOCKED", s.kind == ChannelKind::kTopic ? "TOPIC" : "");
  for (const PeerStats& p : s.peers) {
    const char* delivery = topic_delivery(s, p);
    const std::uint32_t id = topic_publisher_id(s, p);
    const std::string topic_detail = delivery != nullptr ? delivery
                                     : id != 0           ? "publisher " + std::to_string(id)
                                                         : "";
    std::printf("  %-5u %-10s %8d %-5s %12llu %12llu %10llu %12llu %9.3fs  %s\n", p.index,
                std::string(role_name(p.role)).c_str(), p.pid, !p.alive ? "DEAD" : p.state == PeerState::kDeadPending ? "left" : "yes",
                static_cast<unsigned long long>(p.sent), static_cast<unsigned long long>(p.received),
                static_cast<unsigned long long>(p.lost), static_cast<unsigned long long>(p.lag),
                static_cast<double>(p.blocked_ns) / 1e9, topic_detail.c_str());
  }
  for (const PeerStats& p : s.peers) {  // bridge imports: where the channel's messages come from
    if (p.upstream_from.empty()) continue;
    std::printf("  slot %u imports from %s: %s\n", p.index, printable(p.upstream_from).c_str(),
                !p.alive ? "the import is gone" : p.upstream_up ? "link up" : "link down");
  }
}

volatile sig_atomic_t g_interrupted = 0;
void on_interrupt(int) { g_interrupted = 1; }

struct StatOptions {
  std::string name;
  bool json = false;
  std::chrono::milliseconds interval{500};
};

int run_stat(const StatOptions& o) {
  const std::string& name = o.name;
  const std::int64_t interval_ms = o.interval.count();
  absl::StatusOr<ChannelStats> before = read_stats(name);
  if (!before.ok()) return channel_error("stat", name, before.status());
  std::optional<ServiceStats> service_before;
  if (before->kind == ChannelKind::kService) {
    if (absl::StatusOr<ServiceStats> s = read_service_stats(name); s.ok()) service_before = *std::move(s);
  }
  const auto start = Clock::now();
  std::this_thread::sleep_for(std::chrono::milliseconds(std::max<std::int64_t>(interval_ms, 1)));
  absl::StatusOr<ChannelStats> after = read_stats(name);
  if (!after.ok()) return channel_error("stat", name, after.status());
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (o.json) {
    std::printf("%s\n", stats_json(*after, &*before, seconds).c_str());
  } else {
    print_stats(*after, *before, seconds);
    if (after->kind == ChannelKind::kService) print_service(name, service_before ? &*service_before : nullptr, seconds);
  }
  return 0;
}

struct TopOptions {
  std::chrono::milliseconds interval{1000};
  std::int64_t iterations = 0;
};

int run_top(const TopOptions& o) {
  const std::int64_t interval_ms = std::max<std::int64_t>(o.interval.count(), 50);
  const std::int64_t iterations = o.iterations;

  // Raw keyboard input (no echo, no line buffering) while we run, restored on every exit path.
  termios saved{};
  const bool tty = isatty(STDIN_FILENO) != 0 && tcgetattr(STDIN_FILENO, &saved) == 0;
  if (tty) {
    termios raw = saved;
    raw.c_lflag &= static_cast<tcflag_t>(~(ICANON | ECHO));
    raw.c_cc[VMIN] = 0;
    raw.c_cc[VTIME] = 0;
    tcsetattr(STDIN_FILENO, TCSANOW, &raw);
  }
  struct sigaction action {};
  action.sa_handler = on_interrupt;
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);

  std::map<std::string, ChannelStats> previous;
  auto last = Clock::now();
  for (std::int64_t round = 0; !g_interrupted && (iterations == 0 || round < iterations); ++round) {
    const double seconds = std::chrono::duration<double>(Clock::now() - last).count();
    last = Clock::now();
    std::string screen = "\033[H\033[2J";  // home + clear: redraw in place
    char line[512];
    const std::vector<std::string> names = list_channels();
    std::snprintf(line, sizeof line, "shmring top - %zu channel(s) - every %lld ms - q to quit\n\n",
                  names.size(), static_cast<long long>(interval_ms));
    screen += line;
    std::snprintf(line, sizeof line, "%-28s %-7s %9s %11s %11s %10s %12s %9s\n", "CHANNEL", "KIND",
                  "ENDPOINTS", "SENT/s", "RECV/s", "LOST", "MAX LAG", "DEPTH");
    screen += line;
    std::map<std::string, ChannelStats> current;
    for (const std::string& name : names) {
      absl::StatusOr<ChannelStats> stats = read_stats(name);
      if (!stats.ok()) {
        std::snprintf(line, sizeof line, "%-28s  ! %s\n", printable(name).c_str(),
                      printable(std::string(stats.status().message())).c_str());
        screen += line;
        continue;
      }
      int alive = 0, dead = 0;
      std::uint64_t max_lag = 0;
      for (const PeerStats& p : stats->peers) {
        (p.alive ? alive : dead)++;
        max_lag = std::max(max_lag, p.lag);
      }
      const auto before = previous.find(name);
      const bool have_before = before != previous.end();
      const std::string endpoints = std::to_string(alive) + (dead ? "+" + std::to_string(dead) + "!" : "");
      std::snprintf(line, sizeof line, "%-28s %-7s %9s %11s %11s %10llu %12llu %9llu\n",
                    printable(name).c_str(), std::string(kind_name(stats->kind)).c_str(), endpoints.c_str(),
                    have_before ? rate_text(per_second(stats->sent, before->second.sent, seconds)).c_str() : "-",
                    have_before ? rate_text(per_second(stats->received, before->second.received, seconds)).c_str() : "-",
                    static_cast<unsigned long long>(stats->lost),
                    static_cast<unsigned long long>(max_lag),
                    static_cast<unsigned long long>(stats->depth));
      screen += line;
      if (stats->kind == ChannelKind::kService) screen += "  " + service_summary(name) + "\n";
      if (stats->kind == ChannelKind::kTopic) {
        screen += "  " + topic_summary(*stats, have_before ? &before->second : nullptr, seconds) + "\n";
      }
      current.emplace(name, *std::move(stats));
    }
    if (names.empty()) screen += "(no channels)\n";
    screen += "\nENDPOINTS: live count; +N! = N dead endpoints not reclaimed yet\n";
    std::fwrite(screen.data(), 1, screen.size(), stdout);
    std::fflush(stdout);
    previous = std::move(current);
    // Wait for the next round, watching the keyboard.
    const auto next = Clock::now() + std::chrono::milliseconds(interval_ms);
    while (!g_interrupted && Clock::now() < next) {
      pollfd input{STDIN_FILENO, POLLIN, 0};
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(next - Clock::now());
      if (tty && poll(&input, 1, static_cast<int>(std::max<std::int64_t>(left.count(), 0))) > 0) {
        char key = 0;
        if (read(STDIN_FILENO, &key, 1) == 1 && (key == 'q' || key == 'Q')) g_interrupted = 1;
      } else if (!tty) {
        std::this_thread::sleep_for(left);
      }
    }
  }
  if (tty) tcsetattr(STDIN_FILENO, TCSANOW, &saved);
  std::printf("\n");
  return 0;
}

// Options shared by pub and sub for --create.
struct CreateOptions {
  bool create = false;
  std::string kind;
  std::uint64_t capacity = 0;
  std::uint64_t max_message = 0;
  bool lossless = false;
  std::int64_t history = 0;  // topics: messages the ring keeps for late joiners
  std::int64_t max_publishers = 0;  // topics: publishers at once (0: the default, 1)
  mode_t mode = 0600;
  std::vector<uid_t> trusted_owners;
};

// Declares --create, --kind, --capacity, --max-message, --lossless, --history, --max-publishers
// and --mode.
void add_create_options(CLI::App& app, CreateOptions* c) {
  CLI::Option* kind = add_choice(app, "--kind", &c->kind, {"topic", "queue", "frames"},
                                 "the kind of channel --create makes");
  app.add_flag("--create", c->create, "create the channel if it does not exist")->needs(kind);
  // Ranges: a topic's ring bytes, a queue's slots or a frame channel's buffers (each kind checks
  // its own rules when it creates the channel); a message of at most 1 GiB.
  add_size(app, "--capacity", &c->capacity, 1, std::uint64_t{1} << 40,
           "with --create: ring bytes (topic), slots (queue) or buffers (frames)");
  add_size(app, "--max-message", &c->max_message, 1, std::uint64_t{1} << 30,
           "with --create: the largest message in bytes");
  app.add_flag("--lossless", c->lossless, "with --create: a lossless topic (the publisher waits)");
  add_integer(app, "--history", &c->history, 0, std::int64_t{1} << 32,
              "with --create --kind topic: the ring keeps the last N messages for late joiners "
              "(default 0)");
  add_integer(app, "--max-publishers", &c->max_publishers, 1, 4096,
              "with --create --kind topic: publishers open at once, their messages in one order "
              "(default 1)");
  add_mode(app, "--mode", &c->mode,
           "permission bits of a channel --create makes, and the loosest an existing channel may "
           "have to be used (default 600; see docs/security.md)");
  add_users(app, "--trust-owner", &c->trusted_owners,
            "use an existing channel owned by this user (name or uid; repeatable): only the "
            "caller's own channels are used otherwise");
}

// The kind of an existing channel, or the one --create asks for; an existing topic's lossless flag
// overrides --lossless (an endpoint must match its channel).
absl::StatusOr<ChannelKind> kind_of(const std::string& name, CreateOptions* c) {
  absl::StatusOr<ChannelStats> stats = read_stats(name);
  if (stats.ok()) {
    c->lossless = stats->lossless;
    return stats->kind;
  }
  if (!c->create) return stats.status();
  if (c->kind == "topic") return ChannelKind::kTopic;
  if (c->kind == "queue") return ChannelKind::kQueue;
  return ChannelKind::kFrames;
}

// Fills what every kind of channel options shares from the command line.
template <typename Options>
Options options_from(const CreateOptions& c) {
  Options options;
  options.create = c.create;
  options.capacity = c.capacity;
  options.max_message = c.max_message;
  options.permissions = c.mode;
  options.trusted_owners = c.trusted_owners;
  return options;
}

// Reads the next record from stdin: a line, or (binary) a 4-byte little-endian length and that
// many bytes. A length above `limit` (the channel's max_message) is refused before anything is
// allocated: *too_long is set and false returned; so is a record cut short by the end of input.
bool read_record(bool binary, std::uint64_t limit, std::string* record, std::string* problem) {
  if (!binary) {
    if (!std::getline(std::cin, *record)) return false;
    if (record->size() > limit) {
      *problem = "a line of " + std::to_string(record->size()) + " bytes exceeds the channel's "
                 "max_message of " + std::to_string(limit);
      return false;
    }
    return true;
  }
  unsigned char length_bytes[4];
  if (!std::cin.read(reinterpret_cast<char*>(length_bytes), 4)) {
    if (std::cin.gcount() != 0) *problem = "input ends inside a length prefix";
    return false;
  }
  const std::uint32_t length = length_bytes[0] | (length_bytes[1] << 8) | (length_bytes[2] << 16) |
                               (static_cast<std::uint32_t>(length_bytes[3]) << 24);
  if (length > limit) {
    *problem = "a record of " + std::to_string(length) + " bytes exceeds the channel's max_message of " +
               std::to_string(limit);
    return false;
  }
  record->resize(length);
  if (!std::cin.read(record->data(), length)) {
    *problem = "input ends inside a record of " + std::to_string(length) + " bytes";
    return false;
  }
  return true;
}

void print_message(const std::string& format, std::span<const std::byte> message, std::uint64_t n) {
  const auto* bytes = reinterpret_cast<const char*>(message.data());
  if (format == "hex") {
    for (std::size_t i = 0; i < message.size(); ++i) {
      std::printf("%02x", static_cast<unsigned>(static_cast<unsigned char>(bytes[i])));
    }
    std::printf("\n");
  } else if (format == "json") {
    std::printf("{\"n\":%llu,\"bytes\":%zu,\"text\":%s}\n", static_cast<unsigned long long>(n),
                message.size(), json_string(std::string(bytes, message.size())).c_str());
  } else {
    std::fwrite(bytes, 1, message.size(), stdout);
    std::printf("\n");
  }
  std::fflush(stdout);
}

struct PubOptions {
  std::string name;
  bool binary = false;
  std::chrono::milliseconds timeout{5000};
  CreateOptions create;
};

int run_pub(PubOptions o) {
  const std::string& name = o.name;
  const std::chrono::milliseconds timeout = o.timeout;
  CreateOptions* c = &o.create;
  const absl::StatusOr<ChannelKind> kind = kind_of(name, c);
  if (!kind.ok()) return channel_error("pub", name, kind.status());
  if (*kind == ChannelKind::kService) return report_error("pub", name + ": a service: use `shmring call`");
  std::string record;
  std::string problem;
  std::uint64_t sent = 0;
  auto send_all = [&](std::uint64_t max_message, auto&& send_one) -> int {
    while (read_record(o.binary, max_message, &record, &problem)) {
      const ChannelResult result = send_one(std::as_bytes(std::span(record.data(), record.size())));
      if (result != ChannelResult::kOk) {
        return report_error("pub", name + ": message " + std::to_string(sent + 1) + ": " +
                                       std::string(to_string(result)));
      }
      ++sent;
    }
    if (!problem.empty()) {
      return report_error("pub", name + ": message " + std::to_string(sent + 1) + ": " + problem);
    }
    return 0;
  };
  int rc = 0;
  if (*kind == ChannelKind::kTopic) {
    auto options = options_from<TopicOptions>(*c);
    options.lossless = c->lossless;
    options.history = static_cast<std::uint64_t>(c->history);
    options.max_publishers = static_cast<std::uint32_t>(c->max_publishers);
    absl::StatusOr<TopicPublisher> publisher = TopicPublisher::open(name, options);
    if (!publisher.ok()) return channel_error("pub", name, publisher.status());
    rc = send_all(publisher->max_message(),
                  [&](std::span<const std::byte> m) { return publisher->send(m, timeout); });
  } else if (*kind == ChannelKind::kQueue) {
    const auto options = options_from<QueueOptions>(*c);
    absl::StatusOr<QueueProducer> producer = QueueProducer::open(name, options);
    if (!producer.ok()) return channel_error("pub", name, producer.status());
    rc = send_all(producer->max_message(),
                  [&](std::span<const std::byte> m) { return producer->send(m, timeout); });
  } else {
    const auto options = options_from<FrameOptions>(*c);
    absl::StatusOr<FramePublisher> publisher = FramePublisher::open(name, options);
    if (!publisher.ok()) return channel_error("pub", name, publisher.status());
    rc = send_all(publisher->max_message(),
                  [&](std::span<const std::byte> m) { return publisher->send(m, timeout); });
  }
  std::fprintf(stderr, "shmring pub: %s: %llu message(s) sent\n", printable(name).c_str(),
               static_cast<unsigned long long>(sent));
  return rc;
}

struct SubOptions {
  std::string name;
  std::int64_t count = 0;
  std::chrono::milliseconds timeout{0};
  std::string format = "text";
  std::string from = "live";  // topics: where the subscriber starts
  std::int64_t last = 0;      // topics: start with the last N messages (0: --from decides)
  CreateOptions create;
};

int run_sub(SubOptions o) {
  const std::string& name = o.name;
  const std::int64_t count = o.count;
  const std::chrono::milliseconds timeout = o.timeout;
  const std::string& format = o.format;
  CreateOptions* c = &o.create;
  const absl::StatusOr<ChannelKind> kind = kind_of(name, c);
  if (!kind.ok()) return channel_error("sub", name, kind.status());
  if (*kind == ChannelKind::kService) return report_error("sub", name + ": a service: use `shmring serve`");

  struct sigaction action {};
  action.sa_handler = on_interrupt;
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  const auto deadline = timeout.count() > 0 ? Clock::now() + timeout : Clock::time_point::max();
  std::uint64_t received = 0;
  // Receives in short slices so Ctrl-C, --count and --timeout are all honoured promptly.
  auto receive_all = [&](std::size_t max_message, auto&& receive_one) -> int {
    std::vector<std::byte> buffer(std::max<std::size_t>(max_message, 1));
    while (!g_interrupted && (count == 0 || received < static_cast<std::uint64_t>(count)) &&
           Clock::now() < deadline) {
      std::size_t bytes = 0;
      const ChannelResult result = receive_one(std::span<std::byte>(buffer), &bytes);
      if (result == ChannelResult::kTimedOut || result == ChannelResult::kWouldBlock) continue;
      if (result != ChannelResult::kOk) {
        return report_error("sub", name + ": " + std::string(to_string(result)));
      }
      ++received;
      print_message(format, std::span<const std::byte>(buffer.data(), bytes), received);
    }
    if (count > 0 && received < static_cast<std::uint64_t>(count) && !g_interrupted) {
      return report_error("sub", name + ": timed out after " + std::to_string(received) + " of " +
                                     std::to_string(count) + " message(s)");
    }
    return 0;
  };
  const auto slice = std::chrono::milliseconds(100);
  if (*kind == ChannelKind::kTopic) {
    auto options = options_from<TopicOptions>(*c);
    options.lossless = c->lossless;
    options.history = static_cast<std::uint64_t>(c->history);
    options.max_publishers = static_cast<std::uint32_t>(c->max_publishers);
    options.read_only = !c->create && !c->lossless;
    options.start = o.last > 0                 ? TopicStart::history(static_cast<std::uint64_t>(o.last))
                    : o.from == "latest" ? TopicStart::latest()
                    : o.from == "oldest" ? TopicStart::oldest()
                                         : TopicStart::live();
    absl::StatusOr<TopicSubscriber> subscriber = TopicSubscriber::open(name, options);
    if (!subscriber.ok()) return channel_error("sub", name, subscriber.status());
    if (const std::uint64_t missed = subscriber->history_missed(); missed > 0) {
      // Said once, on stderr: the start asked for messages the ring no longer held.
      std::fprintf(stderr, "shmring sub: %s: %llu of the messages asked for were no longer in the ring\n",
                   printable(name).c_str(), static_cast<unsigned long long>(missed));
    }
    return receive_all(subscriber->max_message(), [&](std::span<std::byte> out, std::size_t* n) {
      return subscriber->receive(out, n, slice);
    });
  }
  if (*kind == ChannelKind::kQueue) {
    const auto options = options_from<QueueOptions>(*c);
    absl::StatusOr<QueueConsumer> consumer = QueueConsumer::open(name, options);
    if (!consumer.ok()) return channel_error("sub", name, consumer.status());
    return receive_all(consumer->max_message(), [&](std::span<std::byte> out, std::size_t* n) {
      return consumer->receive(out, n, slice);
    });
  }
  const auto options = options_from<FrameOptions>(*c);
  absl::StatusOr<FrameSubscriber> subscriber = FrameSubscriber::open(name, options);
  if (!subscriber.ok()) return channel_error("sub", name, subscriber.status());
  return receive_all(subscriber->max_message(), [&](std::span<std::byte> out, std::size_t* n) {
    return subscriber->receive(out, n, slice);
  });
}

}  // namespace

Verb add_stat(CLI::App& root) {
  auto o = std::make_shared<StatOptions>();
  CLI::App* app = root.add_subcommand("stat", "show a channel: counters, rates, every endpoint and its lag");
  set_long_description(app,
      "Shows a channel: kind, capacity, counters (sent, received, lost, time blocked), queue depth,\n"
      "recoveries, and every endpoint (role, pid, alive or dead, its counters and lag). Rates come\n"
      "from two snapshots --interval apart. Reading never disturbs the channel.");
  app->add_option("NAME", o->name, "the channel")->required();
  app->add_flag("--json", o->json, "one JSON object");
  add_duration(*app, "--interval", &o->interval, BareUnit::kMilliseconds, std::chrono::hours(1),
               "time between the two snapshots (default 500ms; a bare number is in ms)");
  return {app, [o] { return run_stat(*o); }};
}

Verb add_top(CLI::App& root) {
  auto o = std::make_shared<TopOptions>();
  CLI::App* app = root.add_subcommand("top", "live view of all channels (q or Ctrl-C to quit)");
  set_long_description(app,
      "A live view of every channel on the machine, redrawn in place: kind, endpoints alive/dead,\n"
      "message rates, loss and the largest subscriber lag. Quit with q or Ctrl-C.");
  add_duration(*app, "--interval", &o->interval, BareUnit::kMilliseconds, std::chrono::hours(1),
               "time between redraws (default 1s, at least 50ms; a bare number is in ms)");
  add_integer(*app, "--iterations", &o->iterations, 0, 1'000'000'000,
              "redraw N times, then exit (for scripts; default 0: until q)");
  return {app, [o] { return run_top(*o); }};
}

Verb add_pub(CLI::App& root) {
  auto o = std::make_shared<PubOptions>();
  CLI::App* app = root.add_subcommand("pub", "publish lines (or length-prefixed records) from stdin to a channel");
  set_long_description(app,
      "Publishes each line read from stdin (without its newline) to the channel, or with --binary\n"
      "each record framed as a 4-byte little-endian length followed by that many bytes: as a topic\n"
      "publisher, a queue producer or a frame publisher, whichever the channel is. Without --create\n"
      "the channel must exist. Prints `N message(s) sent` on stderr.");
  app->add_option("NAME", o->name, "the channel")->required();
  app->add_flag("--binary", o->binary, "records are a 4-byte little-endian length and that many bytes");
  add_duration(*app, "--timeout", &o->timeout, BareUnit::kSeconds, std::chrono::hours(24),
               "how long a blocking send (full queue, lossless topic) waits (default 5s; bare: s)");
  add_create_options(*app, &o->create);
  return {app, [o] { return run_pub(*o); }};
}

Verb add_sub(CLI::App& root) {
  auto o = std::make_shared<SubOptions>();
  CLI::App* app = root.add_subcommand("sub", "print what arrives on a channel");
  set_long_description(app,
      "Prints each message that arrives: as text lines (default), hex, or one JSON object per\n"
      "message. Stops after --count messages, or when --timeout passes (exit 1 if --count was not\n"
      "reached), or on Ctrl-C. On an existing lossy topic it subscribes read-only. Without --create\n"
      "the channel must exist.");
  app->add_option("NAME", o->name, "the channel")->required();
  add_integer(*app, "--count", &o->count, 0, std::int64_t{1} << 50, "stop after N messages (default 0: no limit)");
  add_duration(*app, "--timeout", &o->timeout, BareUnit::kSeconds, std::chrono::hours(24 * 365),
               "stop after this long (default 0: no limit; a bare number is in s)");
  add_choice(*app, "--format", &o->format, {"text", "hex", "json"}, "text (default), hex or json");
  CLI::Option* from = add_choice(*app, "--from", &o->from, {"live", "latest", "oldest"},
                                 "topics: where to start: live (default: what is published from now "
                                 "on), latest (the newest message, then live), oldest (all the ring holds)");
  add_integer(*app, "--last", &o->last, 1, std::int64_t{1} << 32,
              "topics: start with the last N messages, then live (says on stderr how many were no "
              "longer there)")
      ->excludes(from);
  add_create_options(*app, &o->create);
  return {app, [o] { return run_sub(*o); }};
}

}  // namespace shmring::cli
