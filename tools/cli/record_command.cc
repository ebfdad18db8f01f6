// shmring record / shmring replay: channels into MCAP files and back (docs/record.md).
// Each verb's parsing sits in one function (parse_record, parse_replay) that fills the library's
// options, so moving to another parser touches nothing else.
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <ctime>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "args.h"
#include "commands.h"
#include "shmring/record/mcap.h"
#include "shmring/record/recorder.h"
#include "shmring/record/replayer.h"

namespace shmring::cli {

namespace {

constexpr const char* kRecordUsage =
    "usage: shmring record -o FILE [options] [CHANNEL|PATTERN]...\n"
    "       shmring record info FILE [--json]\n"
    "       shmring record --recover FILE [-o OUT]\n"
    "       shmring record trigger [NAME]\n"
    "\n"
    "Records topics, frames and queues into one MCAP file until SIGINT or SIGTERM, then closes it\n"
    "complete and exits 0. Names are channel names or glob patterns (* ? [...]); none: every\n"
    "channel. Channels that appear later are recorded when a pattern matches them. Topics are\n"
    "recorded as a subscriber (a lossless topic is held back, nothing missed; a lossy one never\n"
    "is), frames newest first, queues through a tap that takes no item from the consumers. Every\n"
    "message missed is written into the file: jumps in the sequence numbers and a per-channel\n"
    "count (shmring record info shows them).\n"
    "\n"
    "options:\n"
    "  -o, --output FILE       the file to write (an existing one is refused without --force)\n"
    "  --compression zstd|none chunk compression (default zstd)\n"
    "  --zstd-level N          zstd level (default 1; negative: faster)\n"
    "  --chunk-size BYTES      records per chunk before it is compressed (default 4M)\n"
    "  --split-size BYTES      start a new file at this size (FILE becomes STEM_000.EXT, ...)\n"
    "  --split-duration T      start a new file after this long (e.g. 10m)\n"
    "  --pre-buffer T          keep the last T in memory; write it, and record on, when triggered\n"
    "                          (SIGUSR1, or `shmring record trigger NAME`)\n"
    "  --pre-buffer-bytes B    memory for the pre-buffer at most (default 1G)\n"
    "  --trigger-name NAME     the name `shmring record trigger` uses (default: default)\n"
    "  --lossless | --lossy    record only topics of this mode (default: each as it is)\n"
    "  --latest                topics: start with the newest message instead of the next\n"
    "  --queue-start waiting|next  queues: items not yet consumed too (default), or only new ones\n"
    "  --tap-poll-us N         how often queues are read (default 500 us)\n"
    "  --flush-interval T      longest a message waits in memory (default 1s)\n"
    "  --message-encoding ENC  the channels' message encoding (default: none, raw bytes)\n"
    "  --force                 overwrite an existing FILE\n"
    "  --quiet                 no progress lines on stderr\n"
    "  --json                  the final summary as JSON\n"
    "Exit status: 0 stopped by a signal (file complete), 1 failed, 2 bad usage.\n";

constexpr const char* kReplayUsage =
    "usage: shmring replay FILE... [--rate X | --max] [--loop] [--start T] [--end T]\n"
    "                      [--map A=B]... [--channel PATTERN]... [--create] [--json]\n"
    "\n"
    "Publishes the recorded messages into their channels (topic, frames, queue, as recorded) at\n"
    "the recorded pace, scaled by --rate, or as fast as the channels take them (--max). Lossless\n"
    "topics, queues and frame channels hold the replay back when their readers are slow; nothing\n"
    "is dropped. --start/--end: offsets from the first message (e.g. 2.5s). --map A=B publishes\n"
    "channel A into B. --create makes missing channels with the recorded kind and limits.\n"
    "Prints the timing error (how late messages went out) p50/p99/max, and the rate.\n"
    "Exit status: 0 done or stopped by SIGINT/SIGTERM, 1 failed, 2 bad usage.\n";

std::atomic<record::Recorder*> running_recorder{nullptr};
std::atomic<record::Replayer*> running_replayer{nullptr};

void on_stop_signal(int) {
  if (record::Recorder* r = running_recorder.load()) r->stop();
  if (record::Replayer* r = running_replayer.load()) r->stop();
}
void on_trigger_signal(int) {
  if (record::Recorder* r = running_recorder.load()) r->trigger();
}

// SIGINT and SIGTERM stop the running recorder or replayer (and SIGUSR1 triggers a recorder).
void install_handlers(bool trigger) {
  struct sigaction action = {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  if (trigger) {
    action.sa_handler = on_trigger_signal;
    sigaction(SIGUSR1, &action, nullptr);
  }
}

// Once run() returned: no handler may reach the object any more (blocked, then the pointer
// cleared; the handlers run on this thread only while it is set).
void block_handlers() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGUSR1);
  sigprocmask(SIG_BLOCK, &signals, nullptr);
  running_recorder.store(nullptr);
  running_replayer.store(nullptr);
}

// Takes every "--NAME X" / "--NAME=X" out of `args` (options that may be repeated).
std::vector<std::string> take_repeated(std::vector<std::string>* args, const std::string& name) {
  std::vector<std::string> values, rest;
  const std::string flag = "--" + name;
  for (std::size_t i = 0; i < args->size(); ++i) {
    const std::string& a = (*args)[i];
    if (a == flag && i + 1 < args->size()) {
      values.push_back((*args)[++i]);
    } else if (a.rfind(flag + "=", 0) == 0) {
      values.push_back(a.substr(flag.size() + 1));
    } else {
      rest.push_back(a);
    }
  }
  *args = std::move(rest);
  return values;
}

// "-o X" is "--output X".
std::vector<std::string> expand_short(std::vector<std::string> args) {
  for (std::string& a : args) {
    if (a == "-o") a = "--output";
  }
  return args;
}

std::string format_time(std::uint64_t ns) {
  const time_t s = static_cast<time_t>(ns / 1'000'000'000);
  tm t{};
  gmtime_r(&s, &t);
  char text[64];
  std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", t.tm_year + 1900, t.tm_mon + 1,
                t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, static_cast<unsigned>(ns / 1'000'000 % 1000));
  return text;
}

std::string trigger_address(const std::string& name) { return "shmring-record." + name; }

// The datagram socket `shmring record trigger NAME` writes to: abstract, so nothing is left
// behind. Anyone on the host may trigger (it only makes the recorder write what it buffered).
int bind_trigger(const std::string& name) {
  const int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string path = trigger_address(name);
  if (path.size() + 1 >= sizeof addr.sun_path) {
    close(fd);
    return -1;
  }
  std::memcpy(addr.sun_path + 1, path.data(), path.size());
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + path.size())) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

int send_trigger(const std::string& name) {
  const int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return report_error("record trigger", "socket failed");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string path = trigger_address(name);
  if (path.size() + 1 >= sizeof addr.sun_path) {
    close(fd);
    return report_error("record trigger", "name too long", 2);
  }
  std::memcpy(addr.sun_path + 1, path.data(), path.size());
  const char one = 1;
  const ssize_t n = sendto(fd, &one, 1, 0, reinterpret_cast<sockaddr*>(&addr),
                           static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + path.size()));
  close(fd);
  if (n != 1) return report_error("record trigger", "no recorder with pre-buffer named '" + printable(name) + "'");
  return 0;
}

struct RecordCommand {
  record::RecordOptions options;
  std::string trigger_name = "default";
  bool quiet = false;
  bool json = false;
};

// Parses `shmring record` (not info / --recover / trigger). Usage errors in *error.
std::optional<RecordCommand> parse_record(std::vector<std::string> argv, std::string* error) {
  Args args(expand_short(std::move(argv)),
            {"lossless", "lossy", "latest", "force", "quiet", "json"},
            {"output", "compression", "zstd-level", "chunk-size", "split-size", "split-duration",
             "pre-buffer", "pre-buffer-bytes", "trigger-name", "queue-start", "tap-poll-us",
             "flush-interval", "message-encoding"});
  RecordCommand c;
  record::RecordOptions& o = c.options;
  o.output = args.value("output").value_or("");
  const std::string compression = args.choice("compression", "zstd", {"zstd", "none"});
  o.writer.compression = compression == "none" ? record::Compression::kNone : record::Compression::kZstd;
  o.writer.zstd_level = static_cast<int>(args.integer("zstd-level", 1, -50, 19));
  o.writer.chunk_bytes = args.bytes("chunk-size", 4u << 20, 1024, 1ull << 30);
  o.writer.overwrite = args.has("force");
  o.split_bytes = args.bytes("split-size", 0, 0, 1ull << 50);
  const auto day = std::chrono::milliseconds(86'400'000LL * 365);
  o.split_duration = args.duration("split-duration", std::chrono::milliseconds(0), "s", day);
  o.pre_buffer = args.duration("pre-buffer", std::chrono::milliseconds(0), "s", day);
  o.pre_buffer_bytes = args.bytes("pre-buffer-bytes", 1ull << 30, 1, 1ull << 45);
  c.trigger_name = args.value("trigger-name").value_or("default");
  if (args.has("lossless") && args.has("lossy")) *error = "--lossless and --lossy exclude each other";
  o.subscriber.topic_mode = args.has("lossless") ? record::TopicMode::kLossless
                            : args.has("lossy")  ? record::TopicMode::kLossy
                                                 : record::TopicMode::kAsChannel;
  o.subscriber.topic_start_at_latest = args.has("latest");
  o.subscriber.queue_start = args.choice("queue-start", "waiting", {"waiting", "next"}) == "next"
                                 ? QueueTapStart::kNext
                                 : QueueTapStart::kWaiting;
  o.subscriber.tap_poll_interval = std::chrono::microseconds(args.integer("tap-poll-us", 500, 10, 1'000'000));
  o.flush_interval = args.duration("flush-interval", std::chrono::milliseconds(1000), "s", day);
  if (o.flush_interval.count() == 0) o.flush_interval = std::chrono::milliseconds(1);
  o.message_encoding = args.value("message-encoding").value_or("");
  c.quiet = args.has("quiet");
  c.json = args.has("json");
  for (const std::string& p : args.positional()) {
    if (p != "--") o.channels.push_back(p);
  }
  if (!args.ok()) *error = args.error();
  if (error->empty() && o.output.empty()) *error = "-o FILE is required";
  if (!error->empty()) return std::nullopt;
  return c;
}

std::string status_json(const record::RecordStatus& s) {
  std::string out = "{\"files\":[";
  for (std::size_t i = 0; i < s.files.size(); ++i) out += (i ? "," : "") + json_string(s.files[i]);
  out += "],\"messages\":" + std::to_string(s.messages) + ",\"lost\":" + std::to_string(s.lost) +
         ",\"bytes\":" + std::to_string(s.bytes) + ",\"channels\":[";
  for (std::size_t i = 0; i < s.channels.size(); ++i) {
    const record::ChannelRecordStatus& c = s.channels[i];
    out += std::string(i ? "," : "") + "{\"name\":" + json_string(c.name) + ",\"kind\":\"" +
           std::string(to_string(c.kind)) + "\",\"messages\":" + std::to_string(c.messages) +
           ",\"lost\":" + std::to_string(c.lost) + ",\"bytes\":" + std::to_string(c.bytes) + "}";
  }
  return out + "]}";
}

int run_record_info(std::vector<std::string> argv) {
  Args args(std::move(argv), {"json"}, {});
  if (!args.ok() || args.positional().size() != 1) {
    return report_error("record info", args.ok() ? "usage: shmring record info FILE [--json]" : args.error(), 2);
  }
  absl::StatusOr<record::RecordingInfo> info = record::describe_recording(args.positional()[0]);
  if (!info.ok()) return report_error("record info", std::string(info.status().message()));
  const record::RecordingInfo& r = *info;
  const double seconds = r.messages > 0 ? static_cast<double>(r.end_time - r.start_time) / 1e9 : 0;
  if (args.has("json")) {
    std::string out = "{\"path\":" + json_string(r.path) + ",\"bytes\":" + std::to_string(r.file_bytes) +
                      ",\"complete\":" + (r.complete ? "true" : "false") + ",\"truncated\":" +
                      (r.truncated ? "true" : "false") + ",\"loss_from_metadata\":" +
                      (r.loss_from_metadata ? "true" : "false") + ",\"messages\":" + std::to_string(r.messages) +
                      ",\"lost\":" + std::to_string(r.lost) + ",\"start_time\":" + std::to_string(r.start_time) +
                      ",\"end_time\":" + std::to_string(r.end_time) + ",\"chunks\":" + std::to_string(r.chunks) +
                      ",\"chunks_skipped\":" + std::to_string(r.chunks_skipped) + ",\"compression\":" +
                      json_string(r.compression) + ",\"channels\":[";
    for (std::size_t i = 0; i < r.channels.size(); ++i) {
      const record::ChannelInfo& c = r.channels[i];
      out += std::string(i ? "," : "") + "{\"id\":" + std::to_string(c.id) + ",\"topic\":" + json_string(c.topic) +
             ",\"kind\":" + json_string(c.kind) + ",\"messages\":" + std::to_string(c.messages) +
             ",\"lost\":" + std::to_string(c.lost) + ",\"bytes\":" + std::to_string(c.bytes) +
             ",\"first_sequence\":" + std::to_string(c.first_sequence) + ",\"last_sequence\":" +
             std::to_string(c.last_sequence) + "}";
    }
    std::printf("%s]}\n", out.c_str());
    return 0;
  }
  std::printf("file:       %s (%" PRIu64 " bytes, %s%s)\n", r.path.c_str(), r.file_bytes,
              r.complete ? "complete" : "no summary: a recorder was stopped before it closed the file",
              r.truncated ? ", ends in a torn record" : "");
  std::printf("written by: %s\n", r.library.c_str());
  std::printf("messages:   %" PRIu64 " in %zu channels; lost %" PRIu64 " (%s)\n", r.messages, r.channels.size(),
              r.lost, r.loss_from_metadata ? "as recorded" : "counted from the sequence numbers");
  if (r.messages > 0) {
    std::printf("time:       %s .. %s (%.3f s)\n", format_time(r.start_time).c_str(),
                format_time(r.end_time).c_str(), seconds);
  }
  std::printf("chunks:     %" PRIu64 "%s%s", r.chunks, r.compression.empty() ? "" : " ", r.compression.c_str());
  if (r.chunks_skipped > 0) std::printf(", %" PRIu64 " bad chunks not read", r.chunks_skipped);
  std::printf("\n%5s  %-7s %12s %10s %14s  %s\n", "id", "kind", "messages", "lost", "bytes", "channel");
  for (const record::ChannelInfo& c : r.channels) {
    std::printf("%5u  %-7s %12" PRIu64 " %10" PRIu64 " %14" PRIu64 "  %s\n", c.id,
                c.kind.empty() ? "-" : c.kind.c_str(), c.messages, c.lost, c.bytes, printable(c.topic).c_str());
  }
  return 0;
}

int run_record_recover(std::vector<std::string> argv) {
  Args args(expand_short(std::move(argv)), {}, {"recover", "output", "compression"});
  const std::optional<std::string> in = args.value("recover");
  if (!args.ok() || !in || !args.positional().empty()) {
    return report_error("record", args.ok() ? "usage: shmring record --recover FILE [-o OUT]" : args.error(), 2);
  }
  record::WriterOptions w;
  w.compression = args.choice("compression", "zstd", {"zstd", "none"}) == "none" ? record::Compression::kNone
                                                                                  : record::Compression::kZstd;
  const std::string out = args.value("output").value_or(*in);
  absl::StatusOr<record::RecoverReport> report = record::recover_mcap(*in, out, w);
  if (!report.ok()) return report_error("record --recover", std::string(report.status().message()));
  std::printf("recovered %" PRIu64 " messages into %s%s%s\n", report->messages_written, out.c_str(),
              report->read.truncated ? " (a torn tail was dropped)" : "",
              report->loss_recomputed ? "; losses counted from the sequence numbers" : "");
  if (report->read.chunks_skipped > 0) {
    std::printf("%" PRIu64 " bad chunks could not be read\n", report->read.chunks_skipped);
  }
  return 0;
}

}  // namespace

int run_record(const std::vector<std::string>& argv) {
  if (!argv.empty() && (argv[0] == "--help" || argv[0] == "help")) {
    std::fputs(kRecordUsage, stdout);
    return 0;
  }
  if (!argv.empty() && argv[0] == "info") return run_record_info({argv.begin() + 1, argv.end()});
  if (!argv.empty() && argv[0] == "trigger") {
    if (argv.size() > 2) return report_error("record trigger", "usage: shmring record trigger [NAME]", 2);
    return send_trigger(argv.size() == 2 ? argv[1] : "default");
  }
  for (const std::string& a : argv) {
    if (a == "--recover" || a.rfind("--recover=", 0) == 0) return run_record_recover(argv);
  }
  std::string error;
  std::optional<RecordCommand> command = parse_record(argv, &error);
  if (!command) {
    std::fprintf(stderr, "shmring record: %s\n%s", error.c_str(), kRecordUsage);
    return 2;
  }
  const bool quiet = command->quiet;
  command->options.log = [quiet](const std::string& line) {
    if (!quiet) std::fprintf(stderr, "shmring record: %s\n", line.c_str());
  };
  absl::StatusOr<std::unique_ptr<record::Recorder>> recorder = record::Recorder::create(command->options);
  if (!recorder.ok()) return report_error("record", std::string(recorder.status().message()), 2);
  int trigger_fd = -1;
  if (command->options.pre_buffer.count() > 0) {
    trigger_fd = bind_trigger(command->trigger_name);
    if (trigger_fd < 0) {
      return report_error("record", "cannot listen for triggers as '" + printable(command->trigger_name) +
                                        "' (another recorder has that name?)");
    }
  }
  running_recorder.store(recorder->get());
  install_handlers(true);
  std::atomic<bool> done{false};
  std::thread trigger_thread;
  if (trigger_fd >= 0) {
    trigger_thread = std::thread([&] {
      sigset_t all;
      sigfillset(&all);
      pthread_sigmask(SIG_BLOCK, &all, nullptr);  // signals go to the recording thread
      while (!done.load()) {
        pollfd p{trigger_fd, POLLIN, 0};
        if (poll(&p, 1, 100) == 1) {
          char byte = 0;
          if (recv(trigger_fd, &byte, 1, 0) >= 0) (*recorder)->trigger();
        }
      }
    });
  }
  if (!quiet) {
    std::fprintf(stderr, "shmring record: recording into %s (SIGINT or SIGTERM stops%s)\n",
                 command->options.output.c_str(),
                 trigger_fd >= 0 ? ("; waiting for a trigger: SIGUSR1 or `shmring record trigger " +
                                    command->trigger_name + "`").c_str()
                                 : "");
  }
  const absl::Status s = (*recorder)->run();
  block_handlers();
  done.store(true);
  if (trigger_thread.joinable()) trigger_thread.join();
  if (trigger_fd >= 0) close(trigger_fd);
  const record::RecordStatus status = (*recorder)->status();
  if (command->json) {
    std::printf("%s\n", status_json(status).c_str());
  } else if (!quiet) {
    for (const std::string& f : status.files) std::fprintf(stderr, "shmring record: wrote %s\n", f.c_str());
    for (const record::ChannelRecordStatus& c : status.channels) {
      std::fprintf(stderr, "shmring record: %-7s %s: %" PRIu64 " messages, %" PRIu64 " lost, %" PRIu64 " bytes\n",
                   std::string(to_string(c.kind)).c_str(), printable(c.name).c_str(), c.messages, c.lost, c.bytes);
    }
  }
  if (!s.ok()) return report_error("record", std::string(s.message()));
  return 0;
}

namespace {

// Parses `shmring replay`. Usage errors in *error.
std::optional<record::ReplayOptions> parse_replay(std::vector<std::string> argv, bool* json, std::string* error) {
  std::vector<std::string> maps = take_repeated(&argv, "map");
  std::vector<std::string> channels = take_repeated(&argv, "channel");
  Args args(std::move(argv), {"max", "loop", "create", "json"}, {"rate", "start", "end"});
  record::ReplayOptions o;
  o.files = args.positional();
  o.max_speed = args.has("max");
  o.loop = args.has("loop");
  o.create = args.has("create");
  *json = args.has("json");
  if (const std::optional<std::string> rate = args.value("rate")) {
    char* end = nullptr;
    o.rate = std::strtod(rate->c_str(), &end);
    if (rate->empty() || *end != '\0' || !(o.rate > 0) || o.rate > 1e6) {
      *error = "--rate needs a number above 0, not '" + printable(*rate) + "'";
    }
    if (o.max_speed) *error = "--rate and --max exclude each other";
  }
  const auto year = std::chrono::milliseconds(86'400'000LL * 365);
  if (args.value("start")) o.start = args.duration("start", std::chrono::milliseconds(0), "s", year);
  if (args.value("end")) o.end = args.duration("end", std::chrono::milliseconds(0), "s", year);
  for (const std::string& m : maps) {
    const auto eq = m.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == m.size()) {
      *error = "--map needs RECORDED=CHANNEL, not '" + printable(m) + "'";
      break;
    }
    o.map[m.substr(0, eq)] = m.substr(eq + 1);
  }
  o.channels = std::move(channels);
  if (!args.ok()) *error = args.error();
  if (error->empty() && o.files.empty()) *error = "no FILE";
  if (!error->empty()) return std::nullopt;
  return o;
}

}  // namespace

int run_replay(const std::vector<std::string>& argv) {
  if (!argv.empty() && (argv[0] == "--help" || argv[0] == "help")) {
    std::fputs(kReplayUsage, stdout);
    return 0;
  }
  bool json = false;
  std::string error;
  std::optional<record::ReplayOptions> options = parse_replay(argv, &json, &error);
  if (!options) {
    std::fprintf(stderr, "shmring replay: %s\n%s", error.c_str(), kReplayUsage);
    return 2;
  }
  options->log = [](const std::string& line) { std::fprintf(stderr, "shmring replay: %s\n", line.c_str()); };
  absl::StatusOr<std::unique_ptr<record::Replayer>> replayer = record::Replayer::create(*options);
  if (!replayer.ok()) {
    return report_error("replay", std::string(replayer.status().message()),
                        absl::IsInvalidArgument(replayer.status()) ? 2 : 1);
  }
  running_replayer.store(replayer->get());
  install_handlers(false);
  const absl::Status s = (*replayer)->run();
  block_handlers();
  const record::ReplayStats st = (*replayer)->stats();
  const double rate = st.seconds > 0 ? static_cast<double>(st.messages) / st.seconds : 0;
  const double mbps = st.seconds > 0 ? static_cast<double>(st.bytes) / st.seconds / 1e6 : 0;
  if (json) {
    std::string out = "{\"messages\":" + std::to_string(st.messages) + ",\"bytes\":" + std::to_string(st.bytes) +
                      ",\"seconds\":" + std::to_string(st.seconds) + ",\"loops\":" + std::to_string(st.loops) +
                      ",\"messages_per_second\":" + std::to_string(rate) + ",\"timing_p50_ns\":" +
                      std::to_string(st.timing_p50_ns) + ",\"timing_p99_ns\":" + std::to_string(st.timing_p99_ns) +
                      ",\"timing_max_ns\":" + std::to_string(st.timing_max_ns) + ",\"channels\":[";
    for (std::size_t i = 0; i < st.channels.size(); ++i) {
      out += std::string(i ? "," : "") + "{\"name\":" + json_string(st.channels[i].name) + ",\"messages\":" +
             std::to_string(st.channels[i].messages) + ",\"dropped\":" + std::to_string(st.channels[i].dropped) + "}";
    }
    std::printf("%s]}\n", out.c_str());
  } else {
    std::printf("replayed %" PRIu64 " messages (%" PRIu64 " bytes) in %.3f s: %.0f msg/s, %.1f MB/s%s\n",
                st.messages, st.bytes, st.seconds, rate, mbps, absl::IsCancelled(s) ? " (stopped)" : "");
    if (!options->max_speed) {
      std::printf("timing error (late against the recorded pace): p50 %.1f us, p99 %.1f us, max %.1f us\n",
                  static_cast<double>(st.timing_p50_ns) / 1e3, static_cast<double>(st.timing_p99_ns) / 1e3,
                  static_cast<double>(st.timing_max_ns) / 1e3);
    }
    for (const record::ReplayChannelStats& c : st.channels) {
      std::printf("  %s: %" PRIu64 " messages%s\n", printable(c.name).c_str(), c.messages,
                  c.dropped > 0 ? (", " + std::to_string(c.dropped) + " not sent").c_str() : "");
    }
  }
  if (!s.ok() && !absl::IsCancelled(s)) return report_error("replay", std::string(s.message()));
  return 0;
}

}  // namespace shmring::cli
