// `shmring ls`, `shmring rm` and `shmring gc`: segments on the machine.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <string>

#include "commands.h"
#include "options.h"
#include "service_view.h"
#include "text.h"
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
  std::string service;  // a service's servers, clients, in flight, served, ... (service_view.h)
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
  if (stats->kind == ChannelKind::kService) summary.service = service_summary(summary.name);
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
         ",\"problem\":" + json_string(l.problem) +
         (c.kind == "service" ? service_json(c.name) : std::string()) + "}";
}

struct LsOptions {
  bool json = false;
  std::string dir = std::string(kDefaultSegmentDirectory);
};

int run_ls(const LsOptions& o) {
  const std::vector<SegmentListing> listings = list_segments(o.dir);
  if (o.json) {
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
    std::printf("%-32s %-8s %12llu %7d %-9s %-13s %9s %6s\n", printable(c.name).c_str(), c.kind.c_str(),
                static_cast<unsigned long long>(l.data_bytes), l.attachments, endpoints.c_str(),
                state.c_str(), creator.c_str(), age_text(l.created_unix_ns).c_str());
    if (!c.service.empty()) std::printf("  %s\n", printable(c.service).c_str());
    if (!l.problem.empty()) {
      std::printf("  ! %s: %s\n", printable(l.native_key).c_str(), printable(l.problem).c_str());
    }
    if (!c.problem.empty()) std::printf("  ! %s: %s\n", printable(c.name).c_str(), printable(c.problem).c_str());
  }
  std::printf("%zu segment(s); '+' after a pid: that creator has exited\n", listings.size());
  return 0;
}

struct RmOptions {
  bool force = false;
  std::vector<std::string> names;
};

int run_rm(const RmOptions& o) {
  int status = 0;
  for (const std::string& name : o.names) {
    // A channel by its name (what ls and stat show), else a segment by its key.
    SharedMemory channel(channel_key(name));
    if (validate_channel_name(name).ok() && channel.exists()) {
      if (const absl::Status removed = remove_channel(name); !removed.ok()) {
        status = report_error("rm", name + ": " + std::string(removed.message()));
        continue;
      }
      std::printf("removed channel %s (%s)\n", printable(name).c_str(), printable(channel.native_key()).c_str());
      continue;
    }
    SharedMemory shm(name);
    if (!shm.destroy(o.force ? DestroyMode::kForceNoWait : DestroyMode::kNoWait)) {
      status = report_error("rm", name + ": " + shm.error_string());
      continue;
    }
    std::printf("removed %s (%s)\n", printable(name).c_str(), printable(shm.native_key()).c_str());
  }
  return status;
}

struct GcOptions {
  bool dry_run = false;
  bool json = false;
  std::string dir = std::string(kDefaultSegmentDirectory);
};

int run_gc(const GcOptions& o) {
  GcReport report = collect_stale_segments(o.dry_run, o.dir);
  // The files of pollable descriptors whose endpoints died (they live in the default directory).
  std::size_t wait_files = 0;
  if (o.dir == kDefaultSegmentDirectory) {
    for (std::string& path : collect_stale_wait_files(o.dry_run)) {
      report.removed.push_back(std::move(path));
      ++wait_files;
    }
  }
  const char* verb = o.dry_run ? "would remove" : "removed";
  if (o.json) {
    for (const std::string& path : report.removed) {
      std::printf("{\"action\":%s,\"path\":%s}\n", json_string(verb).c_str(),
                  json_string(path).c_str());
    }
    for (const std::string& failure : report.failed) {
      std::printf("{\"action\":\"failed\",\"reason\":%s}\n", json_string(failure).c_str());
    }
    for (const std::string& skipped : report.skipped) {
      std::printf("{\"action\":\"skipped\",\"reason\":%s}\n", json_string(skipped).c_str());
    }
  } else {
    for (const std::string& path : report.removed) std::printf("%s %s\n", verb, printable(path).c_str());
    for (const std::string& failure : report.failed) std::printf("failed %s\n", printable(failure).c_str());
    for (const std::string& skipped : report.skipped) std::printf("skipped %s\n", printable(skipped).c_str());
    std::printf("%zu stale segment(s) %s, %d in use left alone; %zu stale descriptor file(s) %s\n",
                report.removed.size() - wait_files, verb, report.live, wait_files, verb);
  }
  // Files left alone are information; a stale segment gc could not remove is a failure.
  return report.failed.empty() ? 0 : 1;
}

}  // namespace

Verb add_ls(CLI::App& root) {
  auto o = std::make_shared<LsOptions>();
  CLI::App* app = root.add_subcommand("ls", "list segments and channels on this machine (live / stale)");
  set_long_description(app,
      "Lists every shmring segment on the machine: name, kind (segment, or the channel's kind),\n"
      "size, live attachments, endpoints, state (live / stale / being-removed), creator pid (alive\n"
      "or dead) and age. Stale segments (all users dead) can be removed with `shmring gc`.");
  app->add_flag("--json", o->json, "one JSON object per segment, one per line");
  add_directory(*app, "--dir", &o->dir, "look in DIR instead of /dev/shm");
  return {app, [o] { return run_ls(*o); }};
}

Verb add_rm(CLI::App& root) {
  auto o = std::make_shared<RmOptions>();
  CLI::App* app = root.add_subcommand("rm", "remove a segment or channel by name");
  set_long_description(app,
      "Removes the channel named NAME (what ls and stat show), or else the segment with key NAME:\n"
      "the name and its lock go now, processes still attached keep their mapping until they\n"
      "detach. Without --force the segment's lock is taken first (waits for a holder).");
  app->add_flag("--force", o->force, "do not take the segment's lock first");
  app->add_option("NAME", o->names, "channel names or segment keys")->required();
  return {app, [o] { return run_rm(*o); }};
}

Verb add_gc(CLI::App& root) {
  auto o = std::make_shared<GcOptions>();
  CLI::App* app = root.add_subcommand("gc", "remove every stale segment (all users dead)");
  set_long_description(app,
      "Removes every stale shmring segment (all attached processes dead) and prints each one it\n"
      "removed, and the files of pollable descriptors (shmring-l.*, shmring-w.*) whose endpoints\n"
      "died. Never touches a segment or file in use, nor a file that is not shmring's.");
  app->add_flag("--dry-run", o->dry_run, "only print what would be removed");
  app->add_flag("--json", o->json, "one JSON object per removal, one per line");
  add_directory(*app, "--dir", &o->dir, "look in DIR instead of /dev/shm");
  return {app, [o] { return run_gc(*o); }};
}

}  // namespace shmring::cli
