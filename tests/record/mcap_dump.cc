// Test helper: prints what shmring's MCAP reader reads from a file, one JSON object per line, so
// other programs (the reference reader in node, the Python reader) can be compared with it:
//   {"message": {"topic": ..., "channel_id": N, "sequence": N, "log_time": N, "publish_time": N, "data": HEX}}
//   {"metadata": {"name": ..., "entries": {...}}}
//   {"summary": {"complete": true|false, "messages": N, "channels": N, "truncated": ...}}
// Usage: mcap_dump FILE [--time-order]. Exit status 1 with the error on stderr if the read fails.
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <string>

#include "shmring/record/mcap.h"

namespace {

std::string json(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c >= 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: mcap_dump FILE [--time-order]\n");
    return 2;
  }
  using namespace shmring::record;
  absl::StatusOr<McapReader> reader = McapReader::open(argv[1]);
  if (!reader.ok()) {
    std::fprintf(stderr, "%s\n", reader.status().ToString().c_str());
    return 1;
  }
  ReadOptions options;
  if (argc > 2 && std::strcmp(argv[2], "--time-order") == 0) options.order = ReadOptions::Order::kLogTime;
  ReadReport report;
  absl::Status s = reader->read_messages(options, [](const Message& m, const Channel& c) {
    std::string hex;
    hex.reserve(m.data.size() * 2);
    for (std::byte b : m.data) {
      char two[3];
      std::snprintf(two, sizeof two, "%02x", static_cast<unsigned>(b));
      hex += two;
    }
    std::printf("{\"message\": {\"topic\": %s, \"channel_id\": %u, \"sequence\": %u, \"log_time\": %" PRIu64
                ", \"publish_time\": %" PRIu64 ", \"data\": \"%s\"}}\n",
                json(c.topic).c_str(), m.channel_id, m.sequence, m.log_time, m.publish_time, hex.c_str());
    return true;
  }, &report);
  if (!s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 1;
  }
  absl::StatusOr<std::vector<Metadata>> metadata = reader->metadata();
  if (!metadata.ok()) {
    std::fprintf(stderr, "%s\n", metadata.status().ToString().c_str());
    return 1;
  }
  for (const Metadata& m : *metadata) {
    std::string entries;
    for (const auto& [k, v] : m.entries) entries += (entries.empty() ? "" : ", ") + json(k) + ": " + json(v);
    std::printf("{\"metadata\": {\"name\": %s, \"entries\": {%s}}}\n", json(m.name).c_str(), entries.c_str());
  }
  absl::StatusOr<const Summary*> summary = reader->summary();
  if (!summary.ok()) {
    std::fprintf(stderr, "%s\n", summary.status().ToString().c_str());
    return 1;
  }
  std::printf("{\"summary\": {\"complete\": %s, \"messages\": %" PRIu64 ", \"channels\": %zu, \"truncated\": %s}}\n",
              reader->has_summary() ? "true" : "false", report.messages, (*summary)->channels.size(),
              report.truncated ? "true" : "false");
  return 0;
}
