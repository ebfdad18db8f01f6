#include "recording_writer.h"

#include <unistd.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "wall_clock.h"

namespace shmring::record::detail {

RecordingWriter::RecordingWriter(const RecordOptions& options)
    : options_(options), buffering_(options.pre_buffer.count() > 0) {}

RecordingWriter::~RecordingWriter() { close().IgnoreError(); }

void RecordingWriter::add_channel(std::uint32_t id, std::string name, StringMap metadata,
                                  std::optional<std::uint64_t> first_sequence) {
  ChannelState& c = channels_[id];
  c.name = std::move(name);
  c.metadata = std::move(metadata);
  c.first_sequence = first_sequence;
  c.tracker = SequenceTracker(first_sequence);
}

absl::Status RecordingWriter::start() {
  if (buffering_ || writer_) return absl::OkStatus();
  return open_file();
}

std::uint64_t RecordingWriter::lost(std::uint32_t id) const {
  auto it = channels_.find(id);
  return it == channels_.end() ? 0 : it->second.lost_total;
}

std::string RecordingWriter::file_name(std::size_t index) const {
  if (options_.split_bytes == 0 && options_.split_duration.count() == 0) return options_.output;
  const std::filesystem::path p(options_.output);
  const std::string stem = (p.parent_path() / p.stem()).string();
  return absl::StrFormat("%s_%03d%s", stem, index, p.extension().string());
}

absl::Status RecordingWriter::open_file() {
  const std::string path = file_name(files_.size());
  absl::StatusOr<McapWriter> w = McapWriter::create(path, options_.writer);
  if (!w.ok()) return w.status();
  writer_.emplace(*std::move(w));
  files_.push_back(path);
  file_channels_.clear();
  file_lost_.clear();
  file_started_ns_ = wall_ns();
  file_first_time_ = file_last_time_ = 0;
  last_flush_ns_ = file_started_ns_;
  return absl::OkStatus();
}

absl::Status RecordingWriter::close_file() {
  if (!writer_) return absl::OkStatus();
  Metadata loss{kLossMetadata, {}};
  for (const auto& [mcap_id, lost] : file_lost_) loss.entries[std::to_string(mcap_id)] = std::to_string(lost);
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  Metadata recording{kRecordingMetadata,
                     {{"recorder", "shmring record"},
                      {"host", host},
                      {"pid", std::to_string(getpid())},
                      {"file_index", std::to_string(files_.size() - 1)},
                      {"file_start_time", std::to_string(file_started_ns_)},
                      {"file_end_time", std::to_string(wall_ns())}}};
  absl::Status s = writer_->write_metadata(loss);
  if (s.ok()) s = writer_->write_metadata(recording);
  absl::Status closed = writer_->close();
  writer_.reset();
  return s.ok() ? closed : s;
}

absl::Status RecordingWriter::write(std::uint32_t id, std::uint64_t sequence, std::uint64_t log_time,
                                    std::span<const std::byte> data) {
  auto c = channels_.find(id);
  if (c == channels_.end()) return absl::InternalError("RecordingWriter: unknown channel");
  ChannelState& ch = c->second;
  if (!writer_) {
    if (absl::Status s = open_file(); !s.ok()) return s;
  }
  auto declared = file_channels_.find(id);
  if (declared == file_channels_.end()) {
    StringMap metadata = ch.metadata;
    // The sequence this file expects first: where the channel stood when this file began.
    if (ch.tracker.expected()) {
      std::uint64_t first = *ch.tracker.expected();
      if (!ch.seen && ch.first_sequence) first = *ch.first_sequence;
      metadata[kFirstSequenceKey] = std::to_string(first);
    }
    absl::StatusOr<std::uint16_t> mcap_id =
        writer_->add_channel(ch.name, options_.message_encoding, 0, std::move(metadata));
    if (!mcap_id.ok()) return mcap_id.status();
    declared = file_channels_.emplace(id, *mcap_id).first;
    file_lost_[*mcap_id] = 0;
  }
  const std::uint64_t before = ch.tracker.lost();
  ch.tracker.see(static_cast<std::uint32_t>(sequence));
  const std::uint64_t jump = ch.tracker.lost() - before;
  ch.lost_total += jump;
  file_lost_[declared->second] += jump;
  ch.seen = true;
  if (file_first_time_ == 0) file_first_time_ = log_time;
  file_last_time_ = log_time;
  if (absl::Status s = writer_->write({declared->second, static_cast<std::uint32_t>(sequence), log_time,
                                       log_time, data});
      !s.ok()) {
    return s;
  }
  if (options_.split_bytes != 0 && writer_->bytes_written() >= options_.split_bytes) return close_file();
  return absl::OkStatus();
}

absl::Status RecordingWriter::add(std::uint32_t id, std::uint64_t sequence, std::uint64_t log_time,
                                  std::span<const std::byte> data) {
  if (!buffering_) return write(id, sequence, log_time, data);
  buffer_.push_back({id, sequence, log_time, std::vector<std::byte>(data.begin(), data.end())});
  buffered_bytes_ += data.size();
  // Over the byte limit: the oldest go now (the time limit is applied by tick()).
  while (buffered_bytes_ > options_.pre_buffer_bytes && !buffer_.empty()) {
    buffered_bytes_ -= buffer_.front().data.size();
    channels_[buffer_.front().id].trimmed = true;
    buffer_.pop_front();
  }
  return absl::OkStatus();
}

absl::Status RecordingWriter::trigger(std::uint64_t now_ns) {
  if (!buffering_) return absl::OkStatus();
  trim_to_window(now_ns);
  buffering_ = false;
  // Each channel's count starts at its first buffered message if earlier ones were let go (they
  // fell out of the window: not lost, just not kept).
  std::map<std::uint32_t, bool> started;
  for (const Buffered& b : buffer_) {
    if (started[b.id]) continue;
    started[b.id] = true;
    ChannelState& ch = channels_[b.id];
    if (ch.trimmed || !ch.first_sequence) {
      ch.tracker = SequenceTracker(b.sequence);
      ch.first_sequence = b.sequence;
    }
  }
  while (!buffer_.empty()) {
    Buffered& b = buffer_.front();
    if (absl::Status s = write(b.id, b.sequence, b.log_time, b.data); !s.ok()) return s;
    buffered_bytes_ -= b.data.size();
    buffer_.pop_front();
  }
  if (writer_) {
    last_flush_ns_ = wall_ns();
    return writer_->flush();
  }
  return absl::OkStatus();
}

void RecordingWriter::trim_to_window(std::uint64_t now) {
  const std::uint64_t window = static_cast<std::uint64_t>(options_.pre_buffer.count());
  while (!buffer_.empty() && buffer_.front().log_time + window < now) {
    buffered_bytes_ -= buffer_.front().data.size();
    channels_[buffer_.front().id].trimmed = true;
    buffer_.pop_front();
  }
}

absl::Status RecordingWriter::tick(std::uint64_t now) {
  if (buffering_) {
    trim_to_window(now);
    return absl::OkStatus();
  }
  if (!writer_) return absl::OkStatus();
  if (options_.split_duration.count() > 0 &&
      now - file_started_ns_ >= static_cast<std::uint64_t>(options_.split_duration.count())) {
    return close_file();  // the next message opens the next file
  }
  if (now - last_flush_ns_ >= static_cast<std::uint64_t>(options_.flush_interval.count()) * 1'000'000) {
    last_flush_ns_ = now;
    return writer_->end_chunk();  // written by the writer's thread: reading goes on meanwhile
  }
  return absl::OkStatus();
}

absl::Status RecordingWriter::close() {
  if (buffering_) {
    buffer_.clear();  // never triggered: nothing is written
    buffered_bytes_ = 0;
  }
  return close_file();
}

}  // namespace shmring::record::detail
