// describe_recording (`shmring record info`) and recover_mcap (`shmring record --recover`): both
// read a file as far as it goes and count each channel's losses from its sequence numbers when
// the file does not say them (a killed recorder).
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "loss.h"
#include "shmring/record/recorder.h"

namespace shmring::record {

namespace {

// The "shmring.loss" record of a file: MCAP channel id -> lost (nullopt: the file has none).
std::optional<std::map<std::uint16_t, std::uint64_t>> loss_record(const std::vector<Metadata>& metadata) {
  for (const Metadata& m : metadata) {
    if (m.name != detail::kLossMetadata) continue;
    std::map<std::uint16_t, std::uint64_t> out;
    for (const auto& [key, value] : m.entries) {
      char* end = nullptr;
      const unsigned long id = std::strtoul(key.c_str(), &end, 10);
      const unsigned long long lost = std::strtoull(value.c_str(), nullptr, 10);
      if (end != key.c_str() && id <= 65535) out[static_cast<std::uint16_t>(id)] = lost;
    }
    return out;
  }
  return std::nullopt;
}

// Sequence numbers mean "consecutive unless something was lost" only in shmring's channels.
bool counts_loss(const Channel& c) { return c.metadata.count(detail::kKindKey) != 0; }

}  // namespace

absl::StatusOr<RecordingInfo> describe_recording(const std::string& path) {
  absl::StatusOr<McapReader> reader = McapReader::open(path);
  if (!reader.ok()) return reader.status();
  RecordingInfo info;
  info.path = path;
  info.file_bytes = reader->file_size();
  info.complete = reader->has_summary();
  info.library = reader->header().library;
  std::map<std::uint16_t, ChannelInfo> channels;
  std::map<std::uint16_t, detail::SequenceTracker> trackers;
  if (info.complete) {
    absl::StatusOr<const Summary*> summary = reader->summary();
    if (summary.ok()) {
      for (const auto& [id, c] : (*summary)->channels) {
        ChannelInfo& ci = channels[id];
        ci.id = id;
        ci.topic = c.topic;
        ci.metadata = c.metadata;
      }
      std::set<std::string> kinds;
      for (const ChunkIndex& c : (*summary)->chunk_indexes) kinds.insert(c.compression.empty() ? "none" : c.compression);
      info.compression = kinds.size() == 1 ? *kinds.begin() : kinds.empty() ? "" : "mixed";
    }
  }
  ReadOptions ro;
  ro.skip_bad_chunks = true;
  ReadReport report;
  absl::Status s = reader->read_messages(ro, [&](const Message& m, const Channel& c) {
    ChannelInfo& ci = channels[m.channel_id];
    if (ci.messages == 0) {
      ci.id = c.id;
      ci.topic = c.topic;
      ci.metadata = c.metadata;
      ci.first_time = m.log_time;
      ci.first_sequence = m.sequence;
      trackers.emplace(m.channel_id, detail::SequenceTracker(detail::first_sequence_of(c)));
    }
    if (counts_loss(c)) trackers[m.channel_id].see(m.sequence);
    ++ci.messages;
    ci.bytes += m.data.size();
    ci.last_time = m.log_time;
    ci.last_sequence = m.sequence;
    if (info.messages == 0 || m.log_time < info.start_time) info.start_time = m.log_time;
    if (info.messages == 0 || m.log_time > info.end_time) info.end_time = m.log_time;
    ++info.messages;
    return true;
  }, &report);
  if (!s.ok()) return s;
  info.truncated = report.truncated;
  info.chunks = report.chunks_read;
  info.chunks_skipped = report.chunks_skipped;
  absl::StatusOr<std::vector<Metadata>> metadata = reader->metadata();
  if (metadata.ok()) info.metadata = *std::move(metadata);
  const auto recorded = loss_record(info.metadata);
  info.loss_from_metadata = recorded.has_value();
  for (auto& [id, ci] : channels) {
    auto kind = ci.metadata.find(detail::kKindKey);
    if (kind != ci.metadata.end()) ci.kind = kind->second;
    if (recorded) {
      auto it = recorded->find(id);
      ci.lost = it != recorded->end() ? it->second : 0;
    } else if (trackers.count(id) != 0) {
      ci.lost = trackers[id].lost();
    }
    info.lost += ci.lost;
    info.channels.push_back(std::move(ci));
  }
  return info;
}

absl::StatusOr<RecoverReport> recover_mcap(const std::string& in, const std::string& out,
                                           const WriterOptions& options) {
  absl::StatusOr<McapReader> reader = McapReader::open(in);
  if (!reader.ok()) return reader.status();
  absl::StatusOr<std::vector<Metadata>> metadata = reader->metadata();
  if (!metadata.ok()) metadata = std::vector<Metadata>();  // a bad record ends the list early
  const auto recorded = loss_record(*metadata);
  std::map<std::uint16_t, Schema> schemas;
  if (reader->has_summary()) {
    absl::StatusOr<const Summary*> summary = reader->summary();
    if (summary.ok()) schemas = (*summary)->schemas;
  }
  // Written beside `out` and renamed over it at the end: `out` may be `in`.
  const std::string temp = absl::StrCat(out, ".recovering-", getpid());
  WriterOptions wo = options;
  wo.overwrite = true;
  absl::StatusOr<McapWriter> writer = McapWriter::create(temp, wo);
  if (!writer.ok()) return writer.status();
  RecoverReport report;
  std::map<std::uint16_t, std::uint16_t> channel_ids, schema_ids;
  std::map<std::uint16_t, detail::SequenceTracker> trackers;
  absl::Status failure;
  ReadOptions ro;
  ro.skip_bad_chunks = true;
  absl::Status s = reader->read_messages(ro, [&](const Message& m, const Channel& c) {
    auto id = channel_ids.find(m.channel_id);
    if (id == channel_ids.end()) {
      std::uint16_t schema = 0;
      auto sc = schemas.find(c.schema_id);
      if (sc != schemas.end()) {
        auto known = schema_ids.find(c.schema_id);
        if (known == schema_ids.end()) {
          absl::StatusOr<std::uint16_t> sid = writer->add_schema(sc->second.name, sc->second.encoding, sc->second.data);
          if (!sid.ok()) {
            failure = sid.status();
            return false;
          }
          known = schema_ids.emplace(c.schema_id, *sid).first;
        }
        schema = known->second;
      }
      absl::StatusOr<std::uint16_t> cid = writer->add_channel(c.topic, c.message_encoding, schema, c.metadata);
      if (!cid.ok()) {
        failure = cid.status();
        return false;
      }
      id = channel_ids.emplace(m.channel_id, *cid).first;
      trackers.emplace(m.channel_id, detail::SequenceTracker(detail::first_sequence_of(c)));
    }
    if (counts_loss(c)) trackers[m.channel_id].see(m.sequence);
    Message copy = m;
    copy.channel_id = id->second;
    failure = writer->write(copy);
    if (failure.ok()) ++report.messages_written;
    return failure.ok();
  }, &report.read);
  if (s.ok()) s = failure;
  if (s.ok()) {
    for (const Metadata& m : *metadata) {
      if (m.name == detail::kLossMetadata) continue;
      if (s = writer->write_metadata(m); !s.ok()) break;
    }
  }
  if (s.ok()) {
    // The loss per channel: as the file said, or (a killed recorder's file) from the sequences.
    Metadata loss{detail::kLossMetadata, {}};
    report.loss_recomputed = !recorded.has_value();
    for (const auto& [old_id, new_id] : channel_ids) {
      std::uint64_t lost = trackers[old_id].lost();
      if (recorded) {
        auto it = recorded->find(old_id);
        lost = it != recorded->end() ? it->second : 0;
      }
      loss.entries[std::to_string(new_id)] = std::to_string(lost);
    }
    s = writer->write_metadata(loss);
  }
  if (s.ok()) s = writer->close();
  if (s.ok() && std::rename(temp.c_str(), out.c_str()) != 0) {
    s = absl::InternalError(absl::StrCat("rename '", temp, "' to '", out, "' failed"));
  }
  if (!s.ok()) {
    writer->close().IgnoreError();
    std::remove(temp.c_str());
    return s;
  }
  return report;
}

}  // namespace shmring::record
