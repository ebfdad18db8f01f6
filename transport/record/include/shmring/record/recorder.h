// Recording channels into MCAP files: what `shmring record` runs (docs/record.md).
//
//   shmring::record::RecordOptions options;
//   options.output = "run.mcap";
//   options.channels = {"prices", "camera*"};
//   auto recorder = shmring::record::Recorder::create(options).value();
//   std::thread t([&] { recorder->run(); });   // until stop()
//   ...
//   recorder->stop();  t.join();               // the file is closed complete
//
// Per pattern:
//  * topics: a subscriber (TopicSubscriber). On a lossless topic it holds the publisher back and
//    misses nothing; on a lossy one it never holds it back, and what it skipped shows as a jump
//    in the sequence numbers. The MCAP sequence is the topic's sequence number (mod 2^32).
//  * frames: a subscriber, newest frame first; the frames it skipped show as jumps in the frame
//    numbers (the MCAP sequence).
//  * queues: a QueueTap (transport/queue.h): reads without consuming, so consumers get every
//    item as before; the MCAP sequence counts tickets, so the tickets the tap missed (lapped)
//    show as jumps.
// Every jump is written into the file: the sequence shows it, each channel record says which
// sequence number it expected first ("shmring.first_sequence"), and a "shmring.loss" Metadata
// record written at close counts the lost messages per channel (recomputed from the sequences
// by recover and info when a killed recorder left none).
//
// Channels named by a pattern (glob: * ? [...]) are picked up as they appear; a channel whose
// publishers and producers are gone (and that has nothing left to read) is let go, and picked up
// again when it comes back. A removed and re-created channel is a new MCAP channel (its
// "shmring.incarnation" differs).
//
// Threads: run() on one thread; stop(), trigger() and status() from any thread (stop() and
// trigger() also from a signal handler).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "shmring/record/mcap.h"
#include "shmring/transport/channel.h"
#include "shmring/transport/queue.h"

namespace shmring::record {

// How topics are subscribed to. Delivery is each subscriber's choice (topic.h): kLossless holds
// the topic's publishers back until the recorder has the message, kLossy never does (it counts
// what it misses); kAsChannel takes the topic's default (its creator's `lossless` flag).
enum class TopicMode : std::uint8_t { kAsChannel, kLossless, kLossy };

// Every option of the recorder's endpoints, in one place.
struct SubscriberOptions {
  TopicMode topic_mode = TopicMode::kAsChannel;
  bool topic_start_at_latest = false;  // begin with the newest message instead of the next one
  QueueTapStart queue_start = QueueTapStart::kWaiting;
  // How often queues (taps cannot be woken) are looked at. A queue whose producers fill more
  // than its capacity in this time laps the tap (counted).
  std::chrono::microseconds tap_poll_interval{500};
};

struct RecordOptions {
  // The file to write. With splitting, "<stem>_<NNN><ext>" (run.mcap: run_000.mcap, ...).
  std::string output;
  // Channel names and glob patterns; empty: every channel ("*").
  std::vector<std::string> channels;
  SubscriberOptions subscriber;
  WriterOptions writer;
  std::string message_encoding;  // written in each channel record ("": opaque bytes)
  // Rotation: a new file once the current one holds this many bytes / is this old (0: never).
  std::uint64_t split_bytes = 0;
  std::chrono::nanoseconds split_duration{0};
  // Pre-buffer: keep the last `pre_buffer` of messages in memory (at most pre_buffer_bytes) and
  // write nothing until trigger(); then write them and go on recording. 0: record at once.
  std::chrono::nanoseconds pre_buffer{0};
  std::uint64_t pre_buffer_bytes = 1ull << 30;
  // The longest a message waits in memory before its chunk is written (a killed recorder loses
  // at most this much), and how often new channels are looked for.
  std::chrono::milliseconds flush_interval{1000};
  std::chrono::milliseconds discover_interval{200};
  // Where problems are reported (a channel that cannot be opened, ...): one line each.
  std::function<void(const std::string&)> log;
};

struct ChannelRecordStatus {
  std::string name;
  ChannelKind kind = ChannelKind::kTopic;
  bool open = false;           // being recorded now
  std::uint64_t messages = 0;  // written (or held in the pre-buffer)
  std::uint64_t lost = 0;      // missed: jumps in the sequence
  std::uint64_t bytes = 0;
  // The channel's sequence of the newest message taken (0 before the first): what a caller
  // compares with what was sent to know the recorder has caught up.
  std::uint64_t last_sequence = 0;
};

struct RecordStatus {
  std::vector<std::string> files;  // written or being written, in order
  std::uint64_t messages = 0;
  std::uint64_t lost = 0;
  std::uint64_t bytes = 0;
  bool waiting_for_trigger = false;
  std::vector<ChannelRecordStatus> channels;
};

class Recorder {
 public:
  // Checks the options (patterns, output path, splitting) and opens nothing yet.
  static absl::StatusOr<std::unique_ptr<Recorder>> create(RecordOptions options);
  ~Recorder();
  Recorder(const Recorder&) = delete;
  Recorder& operator=(const Recorder&) = delete;

  // Records until stop(); closes the last file complete and returns. Errors: the file cannot be
  // created or written (kAlreadyExists, kResourceExhausted, ...); a channel that cannot be opened
  // is logged and retried, not an error.
  absl::Status run();
  // Makes run() finish. Async-signal-safe.
  void stop() noexcept;
  // Pre-buffer mode: writes what is buffered and records from then on. Async-signal-safe; no-op
  // otherwise.
  void trigger() noexcept;
  RecordStatus status() const;

 private:
  struct Impl;
  explicit Recorder(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// --- What a file holds ---------------------------------------------------------------------------

struct ChannelInfo {
  std::uint16_t id = 0;
  std::string topic;
  std::string kind;        // "topic", "frames", "queue" (shmring files), or ""
  std::uint64_t messages = 0;
  std::uint64_t lost = 0;  // from the "shmring.loss" record, or from the sequence numbers
  std::uint64_t bytes = 0;
  std::uint64_t first_time = 0, last_time = 0;
  std::uint32_t first_sequence = 0, last_sequence = 0;
  StringMap metadata;
};

struct RecordingInfo {
  std::string path;
  std::uint64_t file_bytes = 0;
  bool complete = false;        // summary and footer present
  bool truncated = false;       // ends in a torn record
  bool loss_from_metadata = false;  // else recomputed from the sequence numbers
  std::string library;
  std::uint64_t messages = 0;
  std::uint64_t lost = 0;
  std::uint64_t start_time = 0, end_time = 0;
  std::uint64_t chunks = 0;
  std::uint64_t chunks_skipped = 0;  // bad chunks (not read)
  std::string compression;     // of the chunks ("zstd", "none", "mixed")
  std::vector<ChannelInfo> channels;
  std::vector<Metadata> metadata;
};

// Reads the whole file (tolerating a torn tail and, counted, bad chunks) and describes it:
// `shmring record info`.
absl::StatusOr<RecordingInfo> describe_recording(const std::string& path);

}  // namespace shmring::record
