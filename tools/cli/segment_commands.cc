// `shmring ls`, `shmring rm` and `shmring gc`: segments on the machine.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <string>

#include "args.h"
#include "commands.h"
#include "shmring/core/segment_directory.h"
#include "shmring/core/shared_memory.h"
#include "shmring/transport/channel.h"

namespace shmring::cli {

std::string_view kind_name(ChannelKind kind);  // channel_commands.cc

namespace {

// For a channel segment: its name, kind and endpoints (alive / dead). Empty kind for plain segments.
struct ChannelSummary {
  std::string name;
  std::string kind = "segment";
  int alive = 0;
  int dead = 0;
  std::string problem;
};

ChannelSummary summarize(const SegmentListing& l) {
  ChannelSummary summary;
  summary.name = l.key.empty() ? l.native_key : l.key;
  if (l.key.rfind(kChannelKeyPrefix, 0) != 0) return summary;
  summary.name = l.key.substr(kChannelKeyPrefix.size());
  summary.kind = "channel";
  if (l.liveness != SegmentLiveness::kLive) return summary;
  absl::StatusOr<ChannelStats> stats = read_stats(summary.name);
  if (!stats.ok()) {
    summary.problem = std::string(stats.status().message());
    return summary;
  }
  summary.kind = std::string(kind_name(stats->kind));
  for (const PeerStats& p : stats->peers) (p.alive ? summary.alive : summary.dead)++;
  return summary;
}

std::string age_text(std::int64_t created_unix_ns) {
  if (created_unix_ns <= 0) return "-";
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  const std::int64_t seconds =
      (std::int64_t{now.tv_sec} * 1'000'000'000 + now.tv_nsec - created_unix_ns) / 1'000'000'000;
  if (seconds < 120) return std::to_string(seconds) + "s";
  if (seconds < 7200) return std::to_string(seconds / 60) + "m";
  if (seconds < 172800) return std::to_string(seconds / 3600) + "h";
  return std::to_string(seconds / 86400) + "d";
}

std::string listing_json(const SegmentListing& l) {
  const ChannelSummary c = summarize(l);
  return "{\"name\":" + json_string(c.name) + ",\"native_key\":" + json_string(l.native_key) +
         ",\"path\":" + json_string(l.path) + ",\"kind\":" + json_string(c.kind) +
         ",\"endpoints_alive\":" + std::to_string(c.alive) +
         ",\"endpoints_dead\":" + std::to_string(c.dead) +
         ",\"size\":" + std::to_string(l.data_bytes) +
         ",\"file_bytes\":" + std::to_string(l.file_bytes) +
         ",\"attachments\":" + std::to_string(l.attachments) +
         ",\"state\":" + json_string(std::string(to_string(l.liveness))) +
         ",\"creator_pid\":" + std::to_string(l.creator_pid) +
         ",\"creator_alive\":" + (l.creator_alive ? "true" : "false") +
         ",\"created_unix_ns\":" + std::to_string(l.created_unix_ns) +
         ",\"mode\":" + json_string([&] {
           char buffer[8];
           std::snprintf(buffer, sizeof buffer, "%04o", static_cast<unsigned>(l.mode));
           return std::string(buffer);
         }()) +
         ",\"problem\":" + json_string(l.problem) + "}";
}

constexpr const char* kLsHelp =
    "usage: shmring ls [--json] [--dir DIR]\n"
    "Lists every shmring segment on the machine: name, size, live attachments, state\n"
    "(live / stale / being-removed), creator pid (alive or dead) and age. Stale segments (all\n"
    "users dead) can be removed with `shmring gc`.\n"
    "  --json      one JSON object per segment, one per line\n"
    "  --dir DIR   look in DIR instead of /dev/shm\n";

constexpr const char* kRmHelp =
    "usage: shmring rm [--force] NAME...\n"
    "Removes the segment (or channel) with each key NAME: the name and its lock go now, processes\n"
    "still attached keep their mapping until they detach. Without --force the segment's lock is\n"
    "taken first (waits for a holder); with --force it is not.\n";

constexpr const char* kGcHelp =
    "usage: shmring gc [--dry-run] [--json] [--dir DIR]\n"
    "Removes every stale shmring segment (all attached processes dead) and prints each one it\n"
    "removed, and the files of pollable descriptors (shmring-l.*, shmring-w.*) whose endpoints\n"
    "died. Never touches a segment or file in use, nor a file that is not shmring's.\n"
    "  --dry-run   only print what would be removed\n";

}  // namespace

int report_error(const std::string& command, const std::string& message, int status) {
  // One line, whatever the message quotes (a name with a newline, a key with control bytes).
  std::fprintf(stderr, "shmring %s: %s\n", printable(command).c_str(), printable(message).c_str());
  return status;
}

namespace {

// --dir: an existing directory this process can read, or a usage error (status 2).
bool directory_ok(const std::string& command, const std::string& dir, int* status) {
  struct stat st {};
  if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    *status = report_error(command, "--dir " + dir + ": no such directory", 2);
    return false;
  }
  if (access(dir.c_str(), R_OK | X_OK) != 0) {
    *status = report_error(command, "--dir " + dir + ": cannot read it", 2);
    return false;
  }
  return true;
}

}  // namespace

int run_ls(const std::vector<std::string>& argv) {
  Args args(argv, {"json", "help"}, {"dir"});
  if (args.has("help")) return std::fputs(kLsHelp, stdout), 0;
  if (!args.ok()) return report_error("ls", args.error(), 2);
  const std::string dir = args.value("dir").value_or(std::string(kDefaultSegmentDirectory));
  int status = 0;
  if (!directory_ok("ls", dir, &status)) return status;
  const std::vector<SegmentListing> listings = list_segments(dir);
  if (args.has("json")) {
    for (const SegmentListing& l : listings) std::printf("%s\n", listing_json(l).c_str());
    return 0;
  }
  std::printf("%-32s %-8s %12s %7s %-9s %-13s %9s %6s\n", "NAME", "KIND", "SIZE", "ATTACH",
              "ENDPOINTS", "STATE", "CREATOR", "AGE");
  for (const SegmentListing& l : listings) {
    const ChannelSummary c = summarize(l);
    const std::string creator =
        l.creator_pid == 0 ? "-" : std::to_string(l.creator_pid) + (l.creator_alive ? "" : "+");
    std::string state(to_string(l.liveness));
    if (!l.problem.empty()) state += " (!)";
    const std::string endpoints =
        c.kind == "segment" ? "-" : std::to_string(c.alive) + " alive" + (c.dead ? ", " + std::to_string(c.dead) + " dead" : "");
    std::printf("%-32s %-8s %12llu %7d %-9s %-13s %9s %6s\n", c.name.c_str(), c.kind.c_str(),
                static_cast<unsigned long long>(l.data_bytes), l.attachments, endpoints.c_str(),
                state.c_str(), creator.c_str(), age_text(l.created_unix_ns).c_str());
    if (!l.problem.empty()) std::printf("  ! %s: %s\n", l.native_key.c_str(), l.problem.c_str());
    if (!c.problem.empty()) std::printf("  ! %s: %s\n", c.name.c_str(), c.problem.c_str());
  }
  std::printf("%zu segment(s); '+' after a pid: that creator has exited\n", listings.size());
  return 0;
}

int run_rm(const std::vector<std::string>& argv) {
  Args args(argv, {"force", "help"}, {});
  if (args.has("help")) return std::fputs(kRmHelp, stdout), 0;
  if (!args.ok()) return report_error("rm", args.error(), 2);
  if (args.positional().empty()) return report_error("rm", "which channel or segment? (shmring rm NAME)", 2);
  int status = 0;
  for (const std::string& name : args.positional()) {
    // A channel by its name (what ls and stat show), else a segment by its key.
    SharedMemory channel(channel_key(name));
    if (validate_channel_name(name).ok() && channel.exists()) {
      if (const absl::Status removed = remove_channel(name); !removed.ok()) {
        status = report_error("rm", name + ": " + std::string(removed.message()));
        continue;
      }
      std::printf("removed channel %s (%s)\n", name.c_str(), channel.native_key().c_str());
      continue;
    }
    SharedMemory shm(name);
    if (!shm.destroy(args.has("force") ? DestroyMode::kForceNoWait : DestroyMode::kNoWait)) {
      status = report_error("rm", name + ": " + shm.error_string());
      continue;
    }
    std::printf("removed %s (%s)\n", name.c_str(), shm.native_key().c_str());
  }
  return status;
}

int run_gc(const std::vector<std::string>& argv) {
  Args args(argv, {"dry-run", "json", "help"}, {"dir"});
  if (args.has("help")) return std::fputs(kGcHelp, stdout), 0;
  if (!args.ok()) return report_error("gc", args.error(), 2);
  const std::string dir = args.value("dir").value_or(std::string(kDefaultSegmentDirectory));
  int status = 0;
  if (!directory_ok("gc", dir, &status)) return status;
  const bool dry_run = args.has("dry-run");
  GcReport report = collect_stale_segments(dry_run, dir);
  // The files of pollable descriptors whose endpoints died (they live in the default directory).
  std::size_t wait_files = 0;
  if (dir == kDefaultSegmentDirectory) {
    for (std::string& path : collect_stale_wait_files(dry_run)) {
      report.removed.push_back(std::move(path));
      ++wait_files;
    }
  }
  const char* verb = dry_run ? "would remove" : "removed";
  if (args.has("json")) {
    for (const std::string& path : report.removed) {
      std::printf("{\"action\":%s,\"path\":%s}\n", json_string(verb).c_str(),
                  json_string(path).c_str());
    }
    for (const std::string& failure : report.failed) {
      std::printf("{\"action\":\"failed\",\"reason\":%s}\n", json_string(failure).c_str());
    }
  } else {
    for (const std::string& path : report.removed) std::printf("%s %s\n", verb, path.c_str());
    for (const std::string& failure : report.failed) std::printf("skipped %s\n", failure.c_str());
    std::printf("%zu stale segment(s) %s, %d in use left alone; %zu stale descriptor file(s) %s\n",
                report.removed.size() - wait_files, verb, report.live, wait_files, verb);
  }
  return 0;
}

}  // namespace shmring::cli
