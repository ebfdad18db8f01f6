// shmring_record_bench: the figures of record and replay (docs/benchmarks.md, "Record and replay").
// Prints a table and, with --json FILE, appends one JSON object per row.
//
//   lossless  a lossless 64 B topic published as fast as it goes into `shmring record`'s
//             recorder: the rate it sustains (0 loss by construction: lossless holds the publisher
//             back; the file is checked for every message), to /dev/shm and to the disk,
//             uncompressed and zstd, beside the same topic's one-way rate to a plain subscriber in
//             the same run
//   frames    1080p frames (6 MiB) published at 60/s for --seconds (30): frames skipped, disk MB/s,
//             recorder CPU per frame
//   replay    a recording of a 64 B topic paced at 10 000 msg/s replayed at its pace (timing error
//             p50/p99/max) and with --max (rate into a lossless topic with a subscriber)
//
// Usage: shmring_record_bench [--mode lossless|frames|replay|all] [--messages N] [--seconds S]
//                             [--dir DIR] [--repeat R] [--json FILE]
// The publisher and the subscriber are child processes; the recorder runs in this process. No
// pinning: the 2 vCPUs are shared by publisher, recorder (two threads) and the kernel.
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "shmring/core/clock.h"
#include "shmring/record/mcap.h"
#include "shmring/record/recorder.h"
#include "shmring/record/replayer.h"
#include "shmring/transport/frame.h"
#include "shmring/transport/topic.h"

namespace {

using namespace std::chrono_literals;
using shmring::ChannelResult;
using shmring::monotonic_ns;
namespace record = shmring::record;

struct Config {
  std::string mode = "all";
  std::uint64_t messages = 2'000'000;
  int seconds = 30;
  int repeat = 3;
  std::string dir = "/var/tmp";
  std::string json;
};

std::string channel(const std::string& label) { return "bench_rec_" + std::to_string(getpid()) + "_" + label; }

pid_t child(const std::function<int()>& body) {
  const pid_t pid = fork();
  if (pid == 0) _exit(body());
  return pid;
}
bool reap(pid_t pid) {
  int status = 0;
  return waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// Shared with the children: when the publisher started and finished (CLOCK_MONOTONIC).
struct Times {
  std::atomic<std::uint64_t> start{0}, end{0};
};
Times* shared_times() {
  static Times* t = new (mmap(nullptr, sizeof(Times), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0)) Times;
  return t;
}

shmring::TopicOptions lossless_topic() {
  shmring::TopicOptions o;
  o.lossless = true;
  o.capacity = 1 << 20;
  o.max_message = 1024;
  return o;
}

// Publishes `n` 64 B messages as fast as the lossless topic takes them; records the times.
int publish_64(const std::string& name, std::uint64_t n) {
  auto p = shmring::TopicPublisher::open(name, lossless_topic());
  if (!p.ok()) return 1;
  std::byte msg[64] = {};
  Times* t = shared_times();
  t->start.store(monotonic_ns());
  for (std::uint64_t i = 0; i < n; ++i) {
    std::memcpy(msg, &i, 8);
    if (p->send(msg, 30s) != ChannelResult::kOk) return 2;
  }
  t->end.store(monotonic_ns());
  return 0;
}

FILE* json_out = nullptr;
void emit(const std::string& object) {
  if (json_out != nullptr) std::fprintf(json_out, "%s\n", object.c_str());
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// The topic's own one-way rate: publisher -> a plain subscriber process.
double baseline_rate(std::uint64_t n) {
  const std::string name = channel("base");
  auto owner = shmring::TopicSubscriber::open(name, lossless_topic());  // makes the topic
  const pid_t sub = child([&] {
    auto s = shmring::TopicSubscriber::open(name, lossless_topic());
    if (!s.ok()) return 1;
    std::byte buf[1024];
    std::size_t len = 0;
    for (std::uint64_t i = 0; i < n; ++i) {
      if (s->receive(buf, &len, 30s) != ChannelResult::kOk) return 2;
    }
    return 0;
  });
  owner->close();
  std::this_thread::sleep_for(50ms);  // the child subscribed
  const pid_t pub = child([&] { return publish_64(name, n); });
  const bool ok = reap(pub) && reap(sub);
  Times* t = shared_times();
  return ok ? static_cast<double>(n) / (static_cast<double>(t->end - t->start) / 1e9) : 0;
}

struct RecordedRun {
  double rate = 0;
  std::uint64_t messages = 0, lost = 0, bytes = 0;
};

RecordedRun recorded_rate(std::uint64_t n, const std::string& dir, record::Compression compression) {
  const std::string name = channel("rec");
  const std::string file = dir + "/shmring_record_bench_" + std::to_string(getpid()) + ".mcap";
  std::filesystem::remove(file);
  auto owner = shmring::TopicSubscriber::open(name, lossless_topic());
  record::RecordOptions o;
  o.output = file;
  o.channels = {name};
  o.writer.compression = compression;
  o.discover_interval = 10ms;
  auto recorder = record::Recorder::create(o);
  std::thread t([&] { (void)(*recorder)->run(); });
  for (int i = 0; i < 2000; ++i) {
    const auto s = (*recorder)->status();
    if (!s.channels.empty()) break;
    std::this_thread::sleep_for(1ms);
  }
  owner->close();
  const pid_t pub = child([&] { return publish_64(name, n); });
  RecordedRun r;
  const bool ok = reap(pub);
  for (int i = 0; i < 30000 && (*recorder)->status().messages < n; ++i) std::this_thread::sleep_for(1ms);
  (*recorder)->stop();
  t.join();
  Times* times = shared_times();
  auto info = record::describe_recording(file);
  if (ok && info.ok()) {
    r.rate = static_cast<double>(n) / (static_cast<double>(times->end - times->start) / 1e9);
    r.messages = info->messages;
    r.lost = info->lost;
    r.bytes = info->file_bytes;
  }
  std::filesystem::remove(file);
  return r;
}

void run_lossless(const Config& c) {
  std::printf("== lossless 64 B topic recorded (%" PRIu64 " messages, median of %d)\n", c.messages, c.repeat);
  std::printf("%-22s %14s %10s %10s %12s %12s\n", "target", "msg/s", "x topic", "lost", "in file", "file MB");
  for (const auto& [where, dir] : {std::pair<std::string, std::string>{"/dev/shm", "/dev/shm"}, {"disk", c.dir}}) {
    for (record::Compression comp : {record::Compression::kNone, record::Compression::kZstd}) {
      std::vector<double> rates, bases;
      RecordedRun last;
      for (int i = 0; i < c.repeat; ++i) {
        bases.push_back(baseline_rate(c.messages));
        last = recorded_rate(c.messages, dir, comp);
        rates.push_back(last.rate);
      }
      const double rate = median(rates), base = median(bases);
      const std::string label = where + " " + std::string(record::to_string(comp));
      std::printf("%-22s %14.0f %10.2f %10" PRIu64 " %12" PRIu64 " %12.1f   (topic alone: %.0f msg/s; spread %.0f..%.0f)\n",
                  label.c_str(), rate, base > 0 ? rate / base : 0, last.lost, last.messages,
                  static_cast<double>(last.bytes) / 1e6, base, *std::min_element(rates.begin(), rates.end()),
                  *std::max_element(rates.begin(), rates.end()));
      char buf[512];
      std::snprintf(buf, sizeof buf,
                    "{\"bench\":\"record-lossless\",\"target\":\"%s\",\"compression\":\"%s\",\"size\":64,"
                    "\"messages\":%" PRIu64 ",\"recorded_msgs_per_s\":%.0f,\"topic_msgs_per_s\":%.0f,"
                    "\"lost\":%" PRIu64 ",\"in_file\":%" PRIu64 ",\"file_bytes\":%" PRIu64 "}",
                    where.c_str(), std::string(record::to_string(comp)).c_str(), c.messages, rate, base,
                    last.lost, last.messages, last.bytes);
      emit(buf);
    }
  }
}

void run_frames(const Config& c) {
  constexpr std::size_t kFrame = 1920 * 1080 * 3;  // 6 MiB: 1080p RGB
  std::printf("== 1080p frames (%zu B) at 60/s for %d s, recorded to disk (%s)\n", kFrame, c.seconds, c.dir.c_str());
  std::printf("%-8s %10s %10s %10s %12s %14s\n", "chunks", "published", "recorded", "skipped", "disk MB/s", "CPU ms/frame");
  for (record::Compression comp : {record::Compression::kNone, record::Compression::kZstd}) {
    const std::string name = channel("frames");
    const std::string file = c.dir + "/shmring_record_bench_frames_" + std::to_string(getpid()) + ".mcap";
    std::filesystem::remove(file);
    shmring::FrameOptions fo;
    fo.capacity = 4;
    fo.max_message = kFrame;
    auto owner = shmring::FrameSubscriber::open(name, fo);
    record::RecordOptions o;
    o.output = file;
    o.channels = {name};
    o.writer.compression = comp;
    o.discover_interval = 10ms;
    auto recorder = record::Recorder::create(o);
    std::thread t([&] { (void)(*recorder)->run(); });
    while ((*recorder)->status().channels.empty()) std::this_thread::sleep_for(1ms);
    owner->close();
    const int frames = 60 * c.seconds;
    rusage before{};
    getrusage(RUSAGE_SELF, &before);
    const std::uint64_t t0 = monotonic_ns();
    const pid_t pub = child([&] {
      auto p = shmring::FramePublisher::open(name, fo);
      if (!p.ok()) return 1;
      std::uint64_t seed = 1;
      for (int i = 0; i < frames; ++i) {
        const std::uint64_t due = t0 + static_cast<std::uint64_t>(i) * 1'000'000'000ULL / 60;
        while (monotonic_ns() < due) std::this_thread::sleep_for(std::chrono::nanoseconds(due - monotonic_ns()));
        shmring::FrameLoan loan = p->loan(5s);
        if (!loan.ok()) return 2;
        // A camera-like picture: smooth gradients with sensor noise in the low bits.
        auto* px = reinterpret_cast<std::uint8_t*>(loan.buffer().data());
        for (std::size_t k = 0; k < kFrame; k += 8) {
          seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
          const std::uint8_t base = static_cast<std::uint8_t>((k / 5760 + i) & 0xff);
          for (std::size_t b = 0; b < 8; ++b) px[k + b] = static_cast<std::uint8_t>(base + ((seed >> (b * 8)) & 3));
        }
        if (p->publish(loan, kFrame) != ChannelResult::kOk) return 3;
      }
      return 0;
    });
    const bool ok = reap(pub);
    std::this_thread::sleep_for(300ms);
    (*recorder)->stop();
    t.join();
    const double seconds = static_cast<double>(monotonic_ns() - t0) / 1e9;
    rusage after{};
    getrusage(RUSAGE_SELF, &after);
    auto cpu = [](const rusage& r) {
      return static_cast<double>(r.ru_utime.tv_sec + r.ru_stime.tv_sec) +
             static_cast<double>(r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
    };
    auto info = record::describe_recording(file);
    if (!ok || !info.ok()) {
      std::printf("frames run failed\n");
      continue;
    }
    const double mbps = static_cast<double>(info->file_bytes) / seconds / 1e6;
    const double cpu_ms = (cpu(after) - cpu(before)) * 1e3 / static_cast<double>(std::max<std::uint64_t>(1, info->messages));
    std::printf("%-8s %10d %10" PRIu64 " %10" PRIu64 " %12.1f %14.2f\n", std::string(record::to_string(comp)).c_str(), frames,
                info->messages, info->lost, mbps, cpu_ms);
    char buf[512];
    std::snprintf(buf, sizeof buf,
                  "{\"bench\":\"record-frames\",\"compression\":\"%s\",\"frame_bytes\":%zu,\"fps\":60,\"seconds\":%d,"
                  "\"published\":%d,\"recorded\":%" PRIu64 ",\"skipped\":%" PRIu64 ",\"disk_mb_per_s\":%.1f,"
                  "\"cpu_ms_per_frame\":%.2f,\"file_bytes\":%" PRIu64 "}",
                  std::string(record::to_string(comp)).c_str(), kFrame, c.seconds, frames, info->messages, info->lost,
                  mbps, cpu_ms, info->file_bytes);
    emit(buf);
    std::filesystem::remove(file);
  }
}

void run_replay(const Config& c) {
  const std::string name = channel("replay");
  const std::string file = "/dev/shm/shmring_record_bench_replay_" + std::to_string(getpid()) + ".mcap";
  std::filesystem::remove(file);
  const std::uint64_t n = 20000;  // 2 s at 10 000 msg/s
  {
    auto owner = shmring::TopicSubscriber::open(name, lossless_topic());
    record::RecordOptions o;
    o.output = file;
    o.channels = {name};
    o.discover_interval = 10ms;
    auto recorder = record::Recorder::create(o);
    std::thread t([&] { (void)(*recorder)->run(); });
    while ((*recorder)->status().channels.empty()) std::this_thread::sleep_for(1ms);
    owner->close();
    const pid_t pub = child([&] {
      auto p = shmring::TopicPublisher::open(name, lossless_topic());
      std::byte msg[64] = {};
      const std::uint64_t t0 = monotonic_ns();
      for (std::uint64_t i = 0; i < n; ++i) {
        while (monotonic_ns() < t0 + i * 100'000) {
        }
        if (p->send(msg, 5s) != ChannelResult::kOk) return 2;
      }
      return 0;
    });
    if (!reap(pub)) std::printf("replay: the publisher failed\n");
    for (int i = 0; i < 30000 && (*recorder)->status().messages < n; ++i) std::this_thread::sleep_for(1ms);
    (*recorder)->stop();
    t.join();
  }
  std::printf("== replay of a 64 B topic recorded at 10 000 msg/s (%" PRIu64 " messages), into a lossless topic with a subscriber\n", n);
  for (bool max : {false, true}) {
    std::vector<double> p50, p99, rates;
    record::ReplayStats last;
    for (int i = 0; i < c.repeat; ++i) {
      auto owner = shmring::TopicSubscriber::open(name, lossless_topic());
      const pid_t sub = child([&] {
        auto s = shmring::TopicSubscriber::open(name, lossless_topic());
        std::byte buf[1024];
        std::size_t len = 0;
        for (std::uint64_t k = 0; k < n; ++k) {
          if (s->receive(buf, &len, 30s) != ChannelResult::kOk) return 1;
        }
        return 0;
      });
      std::this_thread::sleep_for(50ms);  // the child subscribed: the topic lives on without `owner`
      owner->close();  // (a lossless subscriber that never reads would hold the replay back)
      record::ReplayOptions ro;
      ro.files = {file};
      ro.max_speed = max;
      auto replayer = record::Replayer::create(ro);
      if (!replayer.ok()) {
        std::printf("replay failed: %s\n", std::string(replayer.status().message()).c_str());
        return;
      }
      (void)(*replayer)->run();
      last = (*replayer)->stats();
      reap(sub);
      p50.push_back(static_cast<double>(last.timing_p50_ns) / 1e3);
      p99.push_back(static_cast<double>(last.timing_p99_ns) / 1e3);
      rates.push_back(static_cast<double>(last.messages) / last.seconds);
    }
    if (max) {
      std::printf("  --max: %.0f msg/s (median of %d; spread %.0f..%.0f)\n", median(rates), c.repeat,
                  *std::min_element(rates.begin(), rates.end()), *std::max_element(rates.begin(), rates.end()));
    } else {
      std::printf("  paced: timing error p50 %.1f us, p99 %.1f us (medians of %d runs; p99 spread %.1f..%.1f us)\n",
                  median(p50), median(p99), c.repeat, *std::min_element(p99.begin(), p99.end()),
                  *std::max_element(p99.begin(), p99.end()));
    }
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  "{\"bench\":\"replay\",\"max\":%s,\"messages\":%" PRIu64 ",\"msgs_per_s\":%.0f,"
                  "\"timing_p50_us\":%.1f,\"timing_p99_us\":%.1f}",
                  max ? "true" : "false", n, median(rates), median(p50), median(p99));
    emit(buf);
  }
  std::filesystem::remove(file);
}

}  // namespace

int main(int argc, char** argv) {
  Config c;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--mode") c.mode = v;
    else if (k == "--messages") c.messages = std::stoull(v);
    else if (k == "--seconds") c.seconds = std::stoi(v);
    else if (k == "--repeat") c.repeat = std::stoi(v);
    else if (k == "--dir") c.dir = v;
    else if (k == "--json") c.json = v;
    else {
      std::fprintf(stderr, "usage: shmring_record_bench [--mode lossless|frames|replay|all] [--messages N] "
                           "[--seconds S] [--repeat R] [--dir DIR] [--json FILE]\n");
      return 2;
    }
  }
  shared_times();  // mapped before any fork, so the children share it
  if (!c.json.empty()) json_out = std::fopen(c.json.c_str(), "a");
  std::printf("2 vCPUs, no pinning; disk files in %s\n", c.dir.c_str());
  if (c.mode == "lossless" || c.mode == "all") run_lossless(c);
  if (c.mode == "replay" || c.mode == "all") run_replay(c);
  if (c.mode == "frames" || c.mode == "all") run_frames(c);
  if (json_out != nullptr) std::fclose(json_out);
  return 0;
}
