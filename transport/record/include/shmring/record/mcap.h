// MCAP files (https://mcap.dev/spec, major version 0), written and read from the published
// specification: the container `shmring record` writes and `shmring replay` reads, which Foxglove,
// rosbag2, PlotJuggler and the reference libraries open too. docs/record.md describes the layout
// shmring writes.
//
//   <magic> Header  [Schema | Channel | Chunk MessageIndex... | Metadata]...  DataEnd
//           [summary: Schema... Channel... ChunkIndex... MetadataIndex... Statistics]
//           [SummaryOffset...]  Footer <magic>
//
// McapWriter puts every Schema, Channel and Message record into chunks (zstd or uncompressed),
// each followed by one MessageIndex per channel in it, and writes the summary with its indexes at
// close(): a reader seeks by time through the chunk indexes. Until close() the file already holds
// every chunk written so far, complete: a writer killed at any instant leaves a file whose
// complete chunks McapReader reads (it tolerates a missing summary and a torn last record), and
// recover_mcap() turns into a complete file.
//
// McapReader never trusts the file: every length, offset and count is checked against the
// file's size and its own limits, chunk CRCs are verified, and a bad file is an absl::Status
// (kDataLoss with the offset), never a crash or an unbounded allocation.
//
// Threads: one object is used by one thread at a time. McapWriter may compress and write chunks
// on a thread of its own (WriterOptions::background); that is invisible to the caller.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace shmring::record {

// The 8 bytes every MCAP file starts and ends with.
inline constexpr std::string_view kMcapMagic{"\x89MCAP0\r\n", 8};

// Record opcodes (the specification's names).
enum class Opcode : std::uint8_t {
  kHeader = 0x01,
  kFooter = 0x02,
  kSchema = 0x03,
  kChannel = 0x04,
  kMessage = 0x05,
  kChunk = 0x06,
  kMessageIndex = 0x07,
  kChunkIndex = 0x08,
  kAttachment = 0x09,
  kAttachmentIndex = 0x0A,
  kStatistics = 0x0B,
  kMetadata = 0x0C,
  kMetadataIndex = 0x0D,
  kSummaryOffset = 0x0E,
  kDataEnd = 0x0F,
};

enum class Compression : std::uint8_t { kNone, kZstd };
// "none" / "zstd" (the chunk records say "" / "zstd").
std::string_view to_string(Compression compression) noexcept;
// "none" or "zstd"; kInvalidArgument otherwise.
absl::StatusOr<Compression> parse_compression(std::string_view text);

using StringMap = std::map<std::string, std::string>;

struct Header {
  std::string profile;
  std::string library;
};

struct Schema {
  std::uint16_t id = 0;  // never 0 in a file
  std::string name;
  std::string encoding;  // "" = no schema (raw bytes)
  std::string data;
};

struct Channel {
  std::uint16_t id = 0;
  std::uint16_t schema_id = 0;  // 0: no schema
  std::string topic;
  std::string message_encoding;
  StringMap metadata;
};

// A message as read or written. `data` points into the reader's (or the caller's) buffer: valid
// during the callback / the write() call only.
struct Message {
  std::uint16_t channel_id = 0;
  std::uint32_t sequence = 0;
  std::uint64_t log_time = 0;      // ns (shmring: CLOCK_REALTIME when the recorder got it)
  std::uint64_t publish_time = 0;  // ns (shmring: the log time; channels carry no send time)
  std::span<const std::byte> data;
};

struct Metadata {
  std::string name;
  StringMap entries;
};

struct Statistics {
  std::uint64_t message_count = 0;
  std::uint16_t schema_count = 0;
  std::uint32_t channel_count = 0;
  std::uint32_t attachment_count = 0;
  std::uint32_t metadata_count = 0;
  std::uint32_t chunk_count = 0;
  std::uint64_t message_start_time = 0;
  std::uint64_t message_end_time = 0;
  std::map<std::uint16_t, std::uint64_t> channel_message_counts;
};

struct ChunkIndex {
  std::uint64_t message_start_time = 0;
  std::uint64_t message_end_time = 0;
  std::uint64_t chunk_start_offset = 0;  // from the start of the file
  std::uint64_t chunk_length = 0;        // the whole record, opcode and length included
  std::map<std::uint16_t, std::uint64_t> message_index_offsets;
  std::uint64_t message_index_length = 0;
  std::string compression;  // "" or "zstd"
  std::uint64_t compressed_size = 0;
  std::uint64_t uncompressed_size = 0;
};

struct MetadataIndex {
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
  std::string name;
};

// What a file's summary section holds (or what a scan of its data section found).
struct Summary {
  std::map<std::uint16_t, Schema> schemas;
  std::map<std::uint16_t, Channel> channels;
  std::vector<ChunkIndex> chunk_indexes;
  std::vector<MetadataIndex> metadata_indexes;
  std::optional<Statistics> statistics;
};

// --- Writing ------------------------------------------------------------------------------------

struct WriterOptions {
  Compression compression = Compression::kZstd;
  int zstd_level = 1;                     // zstd's own scale (1: fast; negative: faster still)
  std::uint64_t chunk_bytes = 4u << 20;   // a chunk is closed once its records reach this size
  // Compress and write finished chunks on a thread of the writer's own (at most
  // `chunks_in_flight` wait; write() waits when they are all taken: back-pressure).
  bool background = true;
  std::uint32_t chunks_in_flight = 4;
  bool overwrite = false;   // false: create() refuses an existing file (kAlreadyExists)
  std::string profile;      // Header.profile ("" : none)
  std::string library = "shmring";
  mode_t permissions = 0644;
};

class McapWriter {
 public:
  // Creates `path` and writes the magic and the Header. Errors: kAlreadyExists, and what the
  // file system said (kPermissionDenied, kNotFound for a missing directory, ...).
  static absl::StatusOr<McapWriter> create(const std::string& path, const WriterOptions& options = {});
  McapWriter();
  McapWriter(McapWriter&&) noexcept;
  McapWriter& operator=(McapWriter&&) noexcept;  // closes this one first
  ~McapWriter();  // close(), errors dropped

  // Registers a schema / channel and returns its id (1, 2, ...; channel ids 1, 2, ...): the record
  // goes into the current chunk (and into the summary at close). kResourceExhausted past 65535.
  absl::StatusOr<std::uint16_t> add_schema(std::string name, std::string encoding, std::string data);
  // kInvalidArgument for a schema id never added.
  absl::StatusOr<std::uint16_t> add_channel(std::string topic, std::string message_encoding,
                                            std::uint16_t schema_id, StringMap metadata);
  // Appends a message to the current chunk (copied); closes the chunk when it is full.
  // kInvalidArgument for a channel id never added. Errors of the background thread (a full disk)
  // are returned by the next call.
  absl::Status write(const Message& message);
  // Writes a Metadata record into the data section (after the current chunk, which it closes).
  absl::Status write_metadata(const Metadata& metadata);
  // Closes the current chunk, to be written at once (on the writer's thread: does not wait for it
  // unless all `chunks_in_flight` are taken). What the recorder does every flush interval.
  absl::Status end_chunk();
  // Closes the current chunk and waits until everything written so far is in the file (not
  // synced to the disk: see sync()). What a reader of a killed writer's file then sees.
  absl::Status flush();
  // flush(), then fdatasync.
  absl::Status sync();
  // Writes the last chunk, DataEnd, the summary (schemas, channels, chunk and metadata indexes,
  // statistics), the summary offsets and the footer, and closes the file. Idempotent; after a
  // failure the file is left as it is (readable as a truncated file).
  absl::Status close();

  bool is_open() const noexcept;
  const std::string& path() const noexcept;
  // Bytes in the file so far plus the current chunk's records (an estimate of the size to come).
  std::uint64_t bytes_written() const noexcept;
  std::uint64_t message_count() const noexcept;
  // The channels added so far, by id.
  const std::map<std::uint16_t, Channel>& channels() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// --- Reading ------------------------------------------------------------------------------------

struct ReaderOptions {
  // A chunk that would decompress to more than this is refused (kResourceExhausted): the file
  // names the size, and a hostile file must not make the reader allocate without bound.
  std::uint64_t max_chunk_bytes = 2ull << 30;
};

// Which messages to read, and in which order.
struct ReadOptions {
  std::uint64_t start_time = 0;              // log_time >= start_time
  std::uint64_t end_time = UINT64_MAX;       // log_time < end_time
  std::vector<std::uint16_t> channels;       // empty: all
  // kFile: as stored (shmring's writer stores log-time order). kLogTime: by log time (chunks
  // whose time ranges overlap are read together and merged; without a summary, file order).
  enum class Order : std::uint8_t { kFile, kLogTime } order = Order::kFile;
  // A chunk that fails its CRC or does not decompress is skipped and counted
  // (ReadReport::chunks_skipped) instead of ending the read with kDataLoss.
  bool skip_bad_chunks = false;
};

// How a read went: what was delivered and what of the file could not be.
struct ReadReport {
  std::uint64_t messages = 0;
  std::uint64_t chunks_read = 0;
  std::uint64_t chunks_skipped = 0;  // bad chunks passed over (skip_bad_chunks)
  bool truncated = false;            // the data section ends in a torn record (a killed writer)
  std::uint64_t valid_bytes = 0;     // where the last whole record of the data section ends
};

class McapReader {
 public:
  // Opens `path` and reads its header, footer and summary (if any). kDataLoss: not an MCAP file
  // (bad magic, header); a missing or bad summary is no error (has_summary() is false, and the
  // summary is built by scanning the data section).
  static absl::StatusOr<McapReader> open(const std::string& path, const ReaderOptions& options = {});
  // The same over bytes in memory (kept by the caller while the reader lives): for tests and
  // fuzzing.
  static absl::StatusOr<McapReader> open_bytes(std::span<const std::byte> bytes,
                                               const ReaderOptions& options = {});
  McapReader();
  McapReader(McapReader&&) noexcept;
  McapReader& operator=(McapReader&&) noexcept;
  ~McapReader();

  const Header& header() const noexcept;
  std::uint64_t file_size() const noexcept;
  // The file ends with a valid footer and summary section (a writer that closed it).
  bool has_summary() const noexcept;
  // Schemas, channels, chunk indexes, metadata indexes and statistics: from the summary section,
  // or (without one) from a scan of the data section, made on first use. The scan's errors are
  // those of read_messages; a truncated file is no error.
  absl::StatusOr<const Summary*> summary();

  // Calls `handler` for each message as `options` say, with the message's channel; the handler
  // returns false to stop. kDataLoss for a corrupt file (with the offset), kResourceExhausted for
  // a chunk over max_chunk_bytes. A torn last record is not an error (report->truncated).
  absl::Status read_messages(const ReadOptions& options,
                             const std::function<bool(const Message&, const Channel&)>& handler,
                             ReadReport* report = nullptr);
  // Every Metadata record of the data section, in file order.
  absl::StatusOr<std::vector<Metadata>> metadata();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Rewrites the MCAP file `in` as a complete file `out` (`out` may equal `in`: the new file
// replaces it atomically): every complete message, schema, channel and metadata record of its
// data section, re-chunked with `options`, and the summary. Bad chunks are skipped (counted in
// the report); a torn tail is dropped. For a file written by shmring record whose loss metadata
// is missing (a killed recorder), the per-channel loss is recomputed from the sequence numbers.
struct RecoverReport {
  ReadReport read;
  std::uint64_t messages_written = 0;
  bool loss_recomputed = false;
};
absl::StatusOr<RecoverReport> recover_mcap(const std::string& in, const std::string& out,
                                           const WriterOptions& options = {});

}  // namespace shmring::record
