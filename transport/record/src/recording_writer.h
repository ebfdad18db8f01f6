// Private: the files of one recording. Messages from the channel sources go into the current
// MCAP file (declaring each channel in each file, counting the jumps in its sequence numbers),
// or into the pre-buffer until a trigger; files rotate by size and age, and each is closed with
// its "shmring.loss" and "shmring.recording" metadata.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "loss.h"
#include "shmring/record/mcap.h"
#include "shmring/record/recorder.h"

namespace shmring::record::detail {

class RecordingWriter {
 public:
  explicit RecordingWriter(const RecordOptions& options);
  ~RecordingWriter();

  // Opens the first file now (a recording of nothing is an empty file, not no file), unless
  // pre-buffering.
  absl::Status start();
  // A channel source joins (id: unique for the recording; a reopened channel gets a new id).
  void add_channel(std::uint32_t id, std::string name, StringMap metadata,
                   std::optional<std::uint64_t> first_sequence);
  // One message of channel `id`: written (or buffered). Errors: the file's.
  absl::Status add(std::uint32_t id, std::uint64_t sequence, std::uint64_t log_time,
                   std::span<const std::byte> data);
  // Time passes: flushes the chunk when flush_interval has passed, rotates by age, trims the
  // pre-buffer.
  absl::Status tick(std::uint64_t now_ns);
  // Pre-buffer: writes what is buffered within the window ending at `now_ns` (older messages are
  // let go first, whether or not a tick came since) and writes directly from now on. No-op
  // otherwise.
  absl::Status trigger(std::uint64_t now_ns);
  bool waiting_for_trigger() const { return buffering_; }
  // Closes the current file complete.
  absl::Status close();

  const std::vector<std::string>& files() const { return files_; }
  std::uint64_t lost(std::uint32_t id) const;
  std::uint64_t buffered_bytes() const { return buffered_bytes_; }

 private:
  // Lets go of buffered messages older than the pre-buffer window ending at `now_ns`.
  void trim_to_window(std::uint64_t now_ns);

  struct ChannelState {
    std::string name;
    StringMap metadata;
    std::optional<std::uint64_t> first_sequence;  // at subscribe
    SequenceTracker tracker;     // across files
    std::uint64_t lost_total = 0;
    bool trimmed = false;        // the pre-buffer dropped some of its messages
    bool seen = false;
  };
  struct Buffered {
    std::uint32_t id;
    std::uint64_t sequence;
    std::uint64_t log_time;
    std::vector<std::byte> data;
  };
  absl::Status write(std::uint32_t id, std::uint64_t sequence, std::uint64_t log_time,
                     std::span<const std::byte> data);
  absl::Status open_file();
  absl::Status close_file();
  std::string file_name(std::size_t index) const;

  RecordOptions options_;
  std::map<std::uint32_t, ChannelState> channels_;
  std::optional<McapWriter> writer_;
  std::map<std::uint32_t, std::uint16_t> file_channels_;    // source id -> MCAP channel id
  std::map<std::uint16_t, std::uint64_t> file_lost_;        // MCAP channel id -> lost in this file
  std::uint64_t file_started_ns_ = 0;                       // CLOCK_REALTIME
  std::uint64_t file_first_time_ = 0, file_last_time_ = 0;
  std::uint64_t last_flush_ns_ = 0;
  std::vector<std::string> files_;
  bool buffering_ = false;
  std::deque<Buffered> buffer_;
  std::uint64_t buffered_bytes_ = 0;
};

}  // namespace shmring::record::detail
