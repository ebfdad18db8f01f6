#include <pybind11/stl.h>

#include "box.h"
#include "errors.h"
#include "shmring/core/segment_directory.h"
#include "stats.h"

namespace shmring::python {

py::dict peer_stats_dict(const PeerStats& p) {
  py::dict d;
  d["index"] = p.index;
  d["role"] = std::string(to_string(p.role));
  d["state"] = std::string(to_string(p.state));
  d["pid"] = p.pid;
  d["alive"] = p.alive;
  d["sent"] = p.sent;
  d["received"] = p.received;
  d["lost"] = p.lost;
  d["blocked_s"] = static_cast<double>(p.blocked_ns) / 1e9;
  d["lag"] = p.lag;
  if (p.role == PeerRole::kSubscriber) d["lossless"] = p.lossless;        // topics: its delivery
  if (p.role == PeerRole::kPublisher) d["publisher_id"] = p.publisher_id;  // topics: what views say
  return d;
}

py::dict channel_stats_dict(const ChannelStats& s) {
  py::dict d;
  d["name"] = s.name;
  d["kind"] = std::string(to_string(s.kind));
  d["lossless"] = s.lossless;
  d["capacity"] = s.capacity;
  d["max_message"] = s.max_message;
  d["max_peers"] = s.max_peers;
  d["attachments"] = s.attachments;
  d["sent"] = s.sent;
  d["received"] = s.received;
  d["lost"] = s.lost;
  d["blocked_s"] = static_cast<double>(s.blocked_ns) / 1e9;
  d["peers_reclaimed"] = s.peers_reclaimed;
  d["claims_skipped"] = s.claims_skipped;
  d["items_redelivered"] = s.items_redelivered;
  d["evictions"] = s.evictions;
  d["depth"] = s.depth;
  d["receivers_parked"] = s.receivers_parked;
  d["senders_parked"] = s.senders_parked;
  d["receivers_armed"] = s.receivers_armed;
  d["senders_armed"] = s.senders_armed;
  if (s.kind == ChannelKind::kTopic) {
    d["max_publishers"] = s.max_publishers;
    d["history"] = s.history;
    d["abandoned"] = s.abandoned;  // dead publishers' unfinished messages skipped
  }
  py::list peers;
  for (const PeerStats& p : s.peers) peers.append(peer_stats_dict(p));
  d["peers"] = peers;
  return d;
}

void bind_inspection(py::module_& m) {
  m.def("list_channels", [] { return without_gil([] { return list_channels(); }); },
        "Names of the live channels on this machine.");
  m.def("stats", [](const std::string& name) {
    absl::StatusOr<ChannelStats> s = without_gil([&] { return read_stats(name); });
    if (!s.ok()) raise_status(s.status());
    return channel_stats_dict(*s);
  }, py::arg("name"), "A channel's counters and peers (a dict), read without disturbing it.");
  m.def("remove_channel", [](const std::string& name) {
    const absl::Status s = without_gil([&] { return remove_channel(name); });
    if (!s.ok()) raise_status(s);
  }, py::arg("name"),
     "Removes a channel's name now (open endpoints keep working; new opens make a new channel). "
     "FileNotFoundError when there is none.");
  m.def("collect_garbage", [](bool dry_run, bool segments, bool wait_files_too) {
    auto [report, wait_files] = without_gil([&] {
      GcReport r = segments ? collect_stale_segments(dry_run) : GcReport{};
      return std::pair(std::move(r), wait_files_too ? collect_stale_wait_files(dry_run) : std::vector<std::string>{});
    });
    py::dict d;
    d["removed"] = report.removed;
    d["failed"] = report.failed;
    d["skipped"] = report.skipped;
    d["live"] = report.live;
    d["wait_files_removed"] = wait_files;
    return d;
  }, py::kw_only(), py::arg("dry_run") = false, py::arg("segments") = true, py::arg("wait_files") = true,
     "Removes every stale segment (all its processes dead) and the stale descriptor files, as "
     "`shmring gc` does (segments=False / wait_files=False leave one kind alone); with dry_run, "
     "only says what it would remove. Never touches anything in use. Returns a dict: removed, "
     "failed ('path: reason'), live (left alone), wait_files_removed.");
}

}  // namespace shmring::python
