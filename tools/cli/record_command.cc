// shmring record / shmring replay: channels into MCAP files and back (docs/record.md).
// add_record and add_replay declare the options (CLI11) into a struct the run functions read.
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

#include "commands.h"
#include "options.h"
#include "text.h"
#include "shmring/record/mcap.h"
#include "shmring/record/recorder.h"
#include "shmring/record/replayer.h"

namespace shmring::cli {

namespace {

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

// What `shmring record` was told.
struct RecordCli {
  record::RecordOptions options;
  std::string compression = "zstd";
  std::int64_t zstd_level = 1;
  std::uint64_t chunk_size = 4u << 20;
  std::chrono::milliseconds split_duration{0}, pre_buffer{0}, flush_interval{1000};
  std::string queue_start = "waiting";
  std::int64_t tap_poll_us = 500;
  std::string trigger_name = "default";
  bool lossless = false, lossy = false, latest = false, force = false, quiet = false, json = false;
  std::string recover;                 // --recover FILE
  std::string info_file;               // record info FILE
  bool info_json = false;
  std::string trigger_target = "default";  // record trigger [NAME]
  CLI::App* info = nullptr;
  CLI::App* trigger = nullptr;
};

// The library's options from what was parsed.
void finish_record_options(RecordCli& c) {
  record::RecordOptions& o = c.options;
  o.writer.compression = c.compression == "none" ? record::Compression::kNone : record::Compression::kZstd;
  o.writer.zstd_level = static_cast<int>(c.zstd_level);
  o.writer.chunk_bytes = c.chunk_size;
  o.writer.overwrite = c.force;
  o.split_duration = c.split_duration;
  o.pre_buffer = c.pre_buffer;
  o.flush_interval = std::max(c.flush_interval, std::chrono::milliseconds(1));
  o.subscriber.topic_mode = c.lossless ? record::TopicMode::kLossless
                            : c.lossy  ? record::TopicMode::kLossy
                                       : record::TopicMode::kAsChannel;
  o.subscriber.topic_start_at_latest = c.latest;
  o.subscriber.queue_start = c.queue_start == "next" ? QueueTapStart::kNext : QueueTapStart::kWaiting;
  o.subscriber.tap_poll_interval = std::chrono::microseconds(c.tap_poll_us);
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

int run_record_info(const std::string& file, bool json) {
  absl::StatusOr<record::RecordingInfo> info = record::describe_recording(file);
  if (!info.ok()) return report_error("record info", std::string(info.status().message()));
  const record::RecordingInfo& r = *info;
  const double seconds = r.messages > 0 ? static_cast<double>(r.end_time - r.start_time) / 1e9 : 0;
  if (json) {
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

int run_record_recover(const RecordCli& c) {
  record::WriterOptions w;
  w.compression = c.options.writer.compression;
  const std::string& in = c.recover;
  const std::string out = c.options.output.empty() ? in : c.options.output;
  absl::StatusOr<record::RecoverReport> report = record::recover_mcap(in, out, w);
  if (!report.ok()) return report_error("record --recover", std::string(report.status().message()));
  std::printf("recovered %" PRIu64 " messages into %s%s%s\n", report->messages_written, out.c_str(),
              report->read.truncated ? " (a torn tail was dropped)" : "",
              report->loss_recomputed ? "; losses counted from the sequence numbers" : "");
  if (report->read.chunks_skipped > 0) {
    std::printf("%" PRIu64 " bad chunks could not be read\n", report->read.chunks_skipped);
  }
  return 0;
}


int run_record(RecordCli& cli) {
  if (cli.info->parsed()) return run_record_info(cli.info_file, cli.info_json);
  if (cli.trigger->parsed()) return send_trigger(cli.trigger_target);
  finish_record_options(cli);
  if (!cli.recover.empty()) return run_record_recover(cli);
  if (cli.options.output.empty()) return report_error("record", "-o FILE is required", 2);
  RecordCli* command = &cli;
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


// What `shmring replay` was told.
struct ReplayCli {
  record::ReplayOptions options;
  double rate = 0;
  std::chrono::milliseconds start{-1}, end{-1};
  std::vector<std::string> maps;
  bool json = false;
};


int run_replay(ReplayCli& cli) {
  record::ReplayOptions* options = &cli.options;
  const bool json = cli.json;
  if (cli.rate != 0) options->rate = cli.rate;
  if (cli.start.count() >= 0) options->start = cli.start;
  if (cli.end.count() >= 0) options->end = cli.end;
  for (const std::string& m : cli.maps) {
    const auto eq = m.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == m.size()) {
      return report_error("replay", "--map needs RECORDED=CHANNEL, not '" + printable(m) + "'", 2);
    }
    options->map[m.substr(0, eq)] = m.substr(eq + 1);
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

}  // namespace
}  // namespace shmring::cli

namespace shmring::cli {

Verb add_record(CLI::App& root) {
  auto c = std::make_shared<RecordCli>();
  CLI::App* app = root.add_subcommand("record", "record channels into an MCAP file (info, --recover, trigger)");
  set_long_description(app,
      "Records topics, frames and queues into one MCAP file (docs/record.md) until SIGINT or\n"
      "SIGTERM, then closes it complete and exits 0. CHANNELs are names or glob patterns (* ? [...]);\n"
      "none: every channel. Channels that appear later are recorded when a pattern matches them.\n"
      "Topics are recorded as a subscriber (a lossless topic is held back, nothing missed; a lossy\n"
      "one never is), frames newest first, queues through a tap that takes no item from the\n"
      "consumers. Every message missed is written into the file: jumps in the sequence numbers and\n"
      "a per-channel count (`shmring record info` shows them).\n"
      "  shmring record -o FILE [options] [CHANNEL]...\n"
      "  shmring record info FILE [--json]\n"
      "  shmring record --recover FILE [-o OUT]\n"
      "  shmring record trigger [NAME]");
  app->footer("Exit status: 0 stopped by a signal (file complete), 1 failed, 2 bad usage.");
  app->add_option("CHANNEL", c->options.channels, "channel names or glob patterns")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  app->add_option("-o,--output", c->options.output, "the file to write (with --recover: where to)")->type_name("FILE");
  add_choice(*app, "--compression", &c->compression, {"zstd", "none"}, "chunk compression (default zstd)");
  add_integer(*app, "--zstd-level", &c->zstd_level, -50, 19, "zstd level (default 1; negative: faster)");
  add_size(*app, "--chunk-size", &c->chunk_size, 1024, 1ull << 30, "records per chunk before it is compressed (default 4M)");
  add_size(*app, "--split-size", &c->options.split_bytes, 0, 1ull << 50,
           "start a new file at this size (FILE becomes STEM_000.EXT, ...)");
  const auto year = std::chrono::hours(24 * 365);
  add_duration(*app, "--split-duration", &c->split_duration, BareUnit::kSeconds, year,
               "start a new file after this long (e.g. 10m)");
  add_duration(*app, "--pre-buffer", &c->pre_buffer, BareUnit::kSeconds, year,
               "keep the last T in memory; write it, and record on, when triggered");
  add_size(*app, "--pre-buffer-bytes", &c->options.pre_buffer_bytes, 1, 1ull << 45,
           "memory for the pre-buffer at most (default 1G)");
  app->add_option("--trigger-name", c->trigger_name, "the name `shmring record trigger` uses (default: default)")
      ->type_name("NAME");
  CLI::Option* lossless = app->add_flag("--lossless", c->lossless,
                                        "record every topic losslessly (holding its publishers back)");
  app->add_flag("--lossy", c->lossy, "record every topic lossily (never holding anyone back)")->excludes(lossless);
  app->add_flag("--latest", c->latest, "topics: start with the newest message instead of the next");
  add_choice(*app, "--queue-start", &c->queue_start, {"waiting", "next"},
             "queues: items not yet consumed too (waiting, default), or only new ones");
  add_integer(*app, "--tap-poll-us", &c->tap_poll_us, 10, 1'000'000, "how often queues are read (default 500 us)");
  add_duration(*app, "--flush-interval", &c->flush_interval, BareUnit::kSeconds, year,
               "longest a message waits in memory (default 1s)");
  app->add_option("--message-encoding", c->options.message_encoding, "the channels' message encoding (default: none)")
      ->type_name("ENC");
  app->add_option("--recover", c->recover, "rewrite FILE (torn by a killed recorder) as a complete file")->type_name("FILE");
  app->add_flag("--force", c->force, "overwrite an existing FILE");
  app->add_flag("--quiet", c->quiet, "no progress lines on stderr");
  app->add_flag("--json", c->json, "the final summary as JSON");
  c->info = app->add_subcommand("info", "describe a recording: channels, counts, time range, losses");
  c->info->add_option("FILE", c->info_file, "the recording")->required();
  c->info->add_flag("--json", c->info_json, "one JSON object");
  c->trigger = app->add_subcommand("trigger", "make a recorder with --pre-buffer write what it buffered");
  c->trigger->add_option("NAME", c->trigger_target, "its --trigger-name (default: default)");
  return {app, [c] { return run_record(*c); }};
}

Verb add_replay(CLI::App& root) {
  auto c = std::make_shared<ReplayCli>();
  CLI::App* app = root.add_subcommand("replay", "publish a recording into its channels at the recorded pace");
  set_long_description(app,
      "Publishes the recorded messages into their channels (topic, frames, queue, as recorded) at\n"
      "the recorded pace, scaled by --rate, or as fast as the channels take them (--max). Lossless\n"
      "topics, queues and frame channels hold the replay back when their readers are slow; nothing\n"
      "is dropped. --start/--end: offsets from the first message (e.g. 2.5s). --map A=B publishes\n"
      "channel A into B. --create makes missing channels with the recorded kind and limits.\n"
      "Prints the timing error (how late messages went out) p50/p99/max, and the rate.");
  app->footer("Exit status: 0 done or stopped by SIGINT/SIGTERM, 1 failed, 2 bad usage.");
  app->add_option("FILE", c->options.files, "the recording (several: one after the other)")
      ->required()
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  CLI::Option* rate = app->add_option("--rate", c->rate, "speed factor (2: twice as fast)")
                          ->check(CLI::PositiveNumber)
                          ->type_name("X");
  app->add_flag("--max", c->options.max_speed, "as fast as the channels take them")->excludes(rate);
  app->add_flag("--loop", c->options.loop, "start over at the end, until stopped");
  const auto year = std::chrono::hours(24 * 365);
  add_duration(*app, "--start", &c->start, BareUnit::kSeconds, year, "begin this long after the first message");
  add_duration(*app, "--end", &c->end, BareUnit::kSeconds, year, "end this long after the first message");
  app->add_option("--map", c->maps, "publish recorded channel A into B")
      ->type_name("A=B")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  app->add_option("--channel", c->options.channels, "replay only these recorded channels (glob patterns)")
      ->type_name("PATTERN")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  app->add_flag("--create", c->options.create, "create missing channels with the recorded kind and limits");
  app->add_flag("--json", c->json, "the report as one JSON object");
  return {app, [c] { return run_replay(*c); }};
}

}  // namespace shmring::cli
