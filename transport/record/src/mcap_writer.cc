// McapWriter: records go into the current chunk on the caller's thread; a finished chunk (or a
// metadata record) becomes a job that is compressed and written in order, on the writer's own
// thread (WriterOptions::background) or at once. The summary is assembled from what the jobs
// wrote and written at close().
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "compression.h"
#include "file_io.h"
#include "mcap_codec.h"
#include "shmring/record/mcap.h"

namespace shmring::record {

using detail::Encoder;

namespace {

// A chunk's records as they are built, before compression.
struct OpenChunk {
  std::vector<std::byte> records;
  std::uint64_t start_time = 0;
  std::uint64_t end_time = 0;
  std::uint64_t messages = 0;
  // Per channel: (log time, offset of the message record in `records`).
  std::map<std::uint16_t, std::vector<std::pair<std::uint64_t, std::uint64_t>>> index;
};

// What the writing side does next, in order.
struct Job {
  enum class Kind { kChunk, kMetadata } kind = Kind::kChunk;
  OpenChunk chunk;
  std::vector<std::byte> record;  // kMetadata: the whole record
  std::string name;               // kMetadata: for its index
};

}  // namespace

struct McapWriter::Impl {
  WriterOptions options;
  std::string path;
  detail::UniqueFd fd;
  bool open = false;

  // --- caller's side ---
  std::map<std::uint16_t, Schema> schemas;
  std::map<std::uint16_t, Channel> channels;
  OpenChunk chunk;
  Statistics stats;

  // --- writing side (the worker thread, or the caller when not in the background) ---
  detail::Compressor compressor;
  std::vector<std::byte> compressed;
  std::vector<std::byte> scratch;
  std::atomic<std::uint64_t> offset{0};  // bytes in the file (read by bytes_written())
  std::vector<ChunkIndex> chunk_indexes;
  std::vector<MetadataIndex> metadata_indexes;

  // --- hand-over ---
  std::mutex mutex;
  std::condition_variable changed;
  std::deque<Job> jobs;
  bool busy = false;       // the worker is running a job
  bool stopping = false;
  absl::Status error;      // the first error of the writing side
  std::uint64_t queued_bytes = 0;
  std::thread worker;
  // Record buffers of written chunks, kept for the next chunks (their pages stay mapped: no
  // page faults per chunk, which for video frames is per frame).
  std::vector<std::vector<std::byte>> spare;

  Impl(const WriterOptions& o) : options(o), compressor(o.compression, o.zstd_level) {}

  absl::Status write_bytes(std::span<const std::byte> bytes) {
    if (absl::Status s = detail::write_all(fd.get(), bytes, path); !s.ok()) return s;
    offset.fetch_add(bytes.size(), std::memory_order_relaxed);
    return absl::OkStatus();
  }

  absl::Status run(Job& job) {
    if (job.kind == Job::Kind::kMetadata) {
      MetadataIndex index{offset.load(std::memory_order_relaxed), job.record.size(), std::move(job.name)};
      if (absl::Status s = write_bytes(job.record); !s.ok()) return s;
      metadata_indexes.push_back(std::move(index));
      return absl::OkStatus();
    }
    OpenChunk& c = job.chunk;
    // Uncompressed records are written as they are (no copy); zstd output goes from `compressed`.
    std::span<const std::byte> data(c.records);
    if (!compressor.name().empty()) {
      if (absl::Status s = compressor.compress(c.records, &compressed); !s.ok()) return s;
      data = compressed;
    }
    const std::string_view compression = compressor.name();
    scratch.clear();
    Encoder e(&scratch);
    e.u8(static_cast<std::uint8_t>(Opcode::kChunk));
    e.u64(8 + 8 + 8 + 4 + 4 + compression.size() + 8 + data.size());
    e.u64(c.start_time);
    e.u64(c.end_time);
    e.u64(c.records.size());
    e.u32(detail::crc32_update(0, c.records));
    e.string(compression);
    e.u64(data.size());
    const std::uint64_t at = offset.load(std::memory_order_relaxed);
    ChunkIndex index;
    index.message_start_time = c.start_time;
    index.message_end_time = c.end_time;
    index.chunk_start_offset = at;
    index.chunk_length = scratch.size() + data.size();
    index.compression = std::string(compression);
    index.compressed_size = data.size();
    index.uncompressed_size = c.records.size();
    if (absl::Status s = write_bytes(scratch); !s.ok()) return s;
    if (absl::Status s = write_bytes(data); !s.ok()) return s;
    scratch.clear();
    const std::uint64_t indexes_start = at + index.chunk_length;
    for (const auto& [channel, entries] : c.index) {
      index.message_index_offsets[channel] = indexes_start + scratch.size();
      detail::encode_message_index(e, channel, entries);
    }
    index.message_index_length = scratch.size();
    if (absl::Status s = write_bytes(scratch); !s.ok()) return s;
    chunk_indexes.push_back(std::move(index));
    return absl::OkStatus();
  }

  void work() {
    std::unique_lock lock(mutex);
    for (;;) {
      changed.wait(lock, [&] { return stopping || !jobs.empty(); });
      if (jobs.empty()) return;  // stopping, nothing left
      Job job = std::move(jobs.front());
      jobs.pop_front();
      busy = true;
      lock.unlock();
      const std::size_t bytes = job.chunk.records.size() + job.record.size();
      absl::Status s = error.ok() ? run(job) : absl::OkStatus();
      lock.lock();
      busy = false;
      queued_bytes -= bytes;
      if (spare.size() < options.chunks_in_flight) {
        job.chunk.records.clear();
        spare.push_back(std::move(job.chunk.records));
      }
      if (!s.ok() && error.ok()) error = s;
      changed.notify_all();
    }
  }

  absl::Status submit(Job job) {
    if (!options.background) {
      if (absl::Status s = error; !s.ok()) return s;
      error = run(job);
      return error;
    }
    std::unique_lock lock(mutex);
    changed.wait(lock, [&] { return !error.ok() || jobs.size() < options.chunks_in_flight; });
    if (!error.ok()) return error;
    queued_bytes += job.chunk.records.size() + job.record.size();
    jobs.push_back(std::move(job));
    changed.notify_all();
    return absl::OkStatus();
  }

  absl::Status drain() {
    if (!options.background) return error;
    std::unique_lock lock(mutex);
    changed.wait(lock, [&] { return jobs.empty() && !busy; });
    return error;
  }

  absl::Status close_chunk() {
    if (chunk.records.empty()) return absl::OkStatus();
    ++stats.chunk_count;
    Job job;
    job.chunk = std::move(chunk);
    chunk = OpenChunk();
    {
      std::lock_guard lock(mutex);
      if (!spare.empty()) {
        chunk.records = std::move(spare.back());
        spare.pop_back();
      }
    }
    return submit(std::move(job));
  }

  void stop_worker() {
    if (!worker.joinable()) return;
    {
      std::lock_guard lock(mutex);
      stopping = true;
      changed.notify_all();
    }
    worker.join();
  }

  absl::Status finish();
};

absl::Status McapWriter::Impl::finish() {
  if (absl::Status s = close_chunk(); !s.ok()) return s;
  if (absl::Status s = drain(); !s.ok()) return s;
  stop_worker();
  std::vector<std::byte> out;
  Encoder e(&out);
  // No data section CRC (0: "not available", as the specification allows): every chunk carries
  // its own, and one more pass over every byte cost as much as the rest of writing a 6 MiB frame.
  detail::encode_data_end(e, 0);
  if (absl::Status s = write_bytes(out); !s.ok()) return s;

  // Summary: groups by opcode, each described by a SummaryOffset.
  const std::uint64_t summary_start = offset.load(std::memory_order_relaxed);
  out.clear();
  struct Group {
    Opcode op;
    std::uint64_t start;
    std::uint64_t length;
  };
  std::vector<Group> groups;
  auto group = [&](Opcode op, auto&& encode_all) {
    const std::size_t before = out.size();
    encode_all();
    if (out.size() > before) groups.push_back({op, summary_start + before, out.size() - before});
  };
  group(Opcode::kSchema, [&] {
    for (const auto& [id, s] : schemas) detail::encode_schema(e, s);
  });
  group(Opcode::kChannel, [&] {
    for (const auto& [id, c] : channels) detail::encode_channel(e, c);
  });
  group(Opcode::kChunkIndex, [&] {
    for (const ChunkIndex& c : chunk_indexes) detail::encode_chunk_index(e, c);
  });
  group(Opcode::kMetadataIndex, [&] {
    for (const MetadataIndex& m : metadata_indexes) detail::encode_metadata_index(e, m);
  });
  stats.schema_count = static_cast<std::uint16_t>(schemas.size());
  stats.channel_count = static_cast<std::uint32_t>(channels.size());
  stats.metadata_count = static_cast<std::uint32_t>(metadata_indexes.size());
  group(Opcode::kStatistics, [&] { detail::encode_statistics(e, stats); });
  const std::uint64_t summary_offset_start = summary_start + out.size();
  for (const Group& g : groups) detail::encode_summary_offset(e, g.op, g.start, g.length);
  // The footer's CRC covers the summary, the summary offsets and the footer up to the CRC field.
  detail::encode_footer(e, summary_start, summary_offset_start, 0);
  const std::size_t crc_at = out.size() - 4;
  const std::uint32_t crc = detail::crc32_update(0, std::span(out).first(crc_at));
  for (int i = 0; i < 4; ++i) out[crc_at + static_cast<std::size_t>(i)] = std::byte((crc >> (8 * i)) & 0xff);
  e.raw(kMcapMagic);
  return write_bytes(out);
}

// --- McapWriter -------------------------------------------------------------------------------

McapWriter::McapWriter() = default;
McapWriter::McapWriter(McapWriter&&) noexcept = default;
McapWriter& McapWriter::operator=(McapWriter&& other) noexcept {
  if (this != &other) {
    close().IgnoreError();
    impl_ = std::move(other.impl_);
  }
  return *this;
}
McapWriter::~McapWriter() { close().IgnoreError(); }

absl::StatusOr<McapWriter> McapWriter::create(const std::string& path, const WriterOptions& options) {
  if (options.chunks_in_flight == 0) return absl::InvalidArgumentError("chunks_in_flight must be > 0");
  auto impl = std::make_unique<Impl>(options);
  impl->path = path;
  const int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (options.overwrite ? O_TRUNC : O_EXCL);
  impl->fd = detail::UniqueFd(::open(path.c_str(), flags, options.permissions));
  if (impl->fd.get() < 0) return detail::errno_status(errno, "create", path);
  std::vector<std::byte> out;
  Encoder e(&out);
  e.raw(kMcapMagic);
  detail::encode_header(e, Header{options.profile, options.library});
  if (absl::Status s = impl->write_bytes(out); !s.ok()) return s;
  impl->open = true;
  if (options.background) {
    Impl* raw = impl.get();
    impl->worker = std::thread([raw] { raw->work(); });
  }
  McapWriter writer;
  writer.impl_ = std::move(impl);
  return writer;
}

absl::StatusOr<std::uint16_t> McapWriter::add_schema(std::string name, std::string encoding,
                                                     std::string data) {
  if (!is_open()) return absl::FailedPreconditionError("McapWriter: closed");
  if (impl_->schemas.size() >= 65535) return absl::ResourceExhaustedError("McapWriter: 65535 schemas");
  Schema s{static_cast<std::uint16_t>(impl_->schemas.size() + 1), std::move(name), std::move(encoding),
           std::move(data)};
  Encoder e(&impl_->chunk.records);
  detail::encode_schema(e, s);
  const std::uint16_t id = s.id;
  impl_->schemas.emplace(id, std::move(s));
  return id;
}

absl::StatusOr<std::uint16_t> McapWriter::add_channel(std::string topic, std::string message_encoding,
                                                      std::uint16_t schema_id, StringMap metadata) {
  if (!is_open()) return absl::FailedPreconditionError("McapWriter: closed");
  if (schema_id != 0 && impl_->schemas.count(schema_id) == 0) {
    return absl::InvalidArgumentError(absl::StrCat("McapWriter: no schema ", schema_id));
  }
  if (impl_->channels.size() >= 65535) return absl::ResourceExhaustedError("McapWriter: 65535 channels");
  Channel c{static_cast<std::uint16_t>(impl_->channels.size() + 1), schema_id, std::move(topic),
            std::move(message_encoding), std::move(metadata)};
  Encoder e(&impl_->chunk.records);
  detail::encode_channel(e, c);
  const std::uint16_t id = c.id;
  impl_->channels.emplace(id, std::move(c));
  return id;
}

absl::Status McapWriter::write(const Message& message) {
  if (!is_open()) return absl::FailedPreconditionError("McapWriter: closed");
  Impl& w = *impl_;
  if (w.channels.count(message.channel_id) == 0) {
    return absl::InvalidArgumentError(absl::StrCat("McapWriter: no channel ", message.channel_id));
  }
  OpenChunk& c = w.chunk;
  if (c.messages == 0 || message.log_time < c.start_time) c.start_time = message.log_time;
  if (c.messages == 0 || message.log_time > c.end_time) c.end_time = message.log_time;
  c.index[message.channel_id].emplace_back(message.log_time, c.records.size());
  if (c.records.capacity() < c.records.size() + message.data.size() + 64) {
    c.records.reserve(std::max<std::size_t>(w.options.chunk_bytes, c.records.size()) + message.data.size() + 64);
  }
  Encoder e(&c.records);
  detail::encode_message(e, message);
  ++c.messages;
  Statistics& s = w.stats;
  if (s.message_count == 0 || message.log_time < s.message_start_time) s.message_start_time = message.log_time;
  if (s.message_count == 0 || message.log_time > s.message_end_time) s.message_end_time = message.log_time;
  ++s.message_count;
  ++s.channel_message_counts[message.channel_id];
  if (c.records.size() >= w.options.chunk_bytes) return w.close_chunk();
  if (!w.options.background && !w.error.ok()) return w.error;
  return absl::OkStatus();
}

absl::Status McapWriter::write_metadata(const Metadata& metadata) {
  if (!is_open()) return absl::FailedPreconditionError("McapWriter: closed");
  if (absl::Status s = impl_->close_chunk(); !s.ok()) return s;
  Job job;
  job.kind = Job::Kind::kMetadata;
  Encoder e(&job.record);
  detail::encode_metadata(e, metadata);
  job.name = metadata.name;
  return impl_->submit(std::move(job));
}

absl::Status McapWriter::end_chunk() {
  if (!is_open()) return absl::FailedPreconditionError("McapWriter: closed");
  return impl_->close_chunk();
}

absl::Status McapWriter::flush() {
  if (!is_open()) return absl::FailedPreconditionError("McapWriter: closed");
  if (absl::Status s = impl_->close_chunk(); !s.ok()) return s;
  return impl_->drain();
}

absl::Status McapWriter::sync() {
  if (absl::Status s = flush(); !s.ok()) return s;
  if (::fdatasync(impl_->fd.get()) != 0) return detail::errno_status(errno, "fdatasync", impl_->path);
  return absl::OkStatus();
}

absl::Status McapWriter::close() {
  if (!is_open()) return absl::OkStatus();
  absl::Status s = impl_->finish();
  impl_->stop_worker();
  impl_->open = false;
  if (::close(impl_->fd.release()) != 0 && s.ok()) s = detail::errno_status(errno, "close", impl_->path);
  return s;
}

bool McapWriter::is_open() const noexcept { return impl_ != nullptr && impl_->open; }

const std::string& McapWriter::path() const noexcept {
  static const std::string kNone;
  return impl_ ? impl_->path : kNone;
}

std::uint64_t McapWriter::bytes_written() const noexcept {
  if (!impl_) return 0;
  std::lock_guard lock(impl_->mutex);  // queued_bytes; `offset` may be a job stale
  return impl_->offset.load(std::memory_order_relaxed) + impl_->queued_bytes +
         impl_->chunk.records.size();
}

std::uint64_t McapWriter::message_count() const noexcept { return impl_ ? impl_->stats.message_count : 0; }

const std::map<std::uint16_t, Channel>& McapWriter::channels() const noexcept {
  static const std::map<std::uint16_t, Channel> kNone;
  return impl_ ? impl_->channels : kNone;
}

std::string_view to_string(Compression compression) noexcept {
  return compression == Compression::kZstd ? "zstd" : "none";
}

absl::StatusOr<Compression> parse_compression(std::string_view text) {
  if (text == "zstd") return Compression::kZstd;
  if (text == "none") return Compression::kNone;
  return absl::InvalidArgumentError(absl::StrCat("compression '", std::string(text), "': use zstd or none"));
}

}  // namespace shmring::record
