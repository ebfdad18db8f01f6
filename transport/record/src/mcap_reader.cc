// McapReader: the file is read with pread (or from memory), record by record; nothing in it is
// trusted. With a valid summary, chunks are found through the chunk indexes (seek by time);
// without one, the data section is scanned from the header on, up to the first torn record.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "compression.h"
#include "file_io.h"
#include "mcap_codec.h"
#include "shmring/record/mcap.h"

namespace shmring::record {

namespace {

absl::Status corrupt(std::uint64_t offset, std::string_view what) {
  return absl::DataLossError(absl::StrCat("MCAP: ", std::string(what), " (at byte ", offset, ")"));
}

// The bytes of a file or a memory buffer, read by offset.
class Source {
 public:
  Source() = default;
  explicit Source(std::span<const std::byte> memory) : memory_(memory), size_(memory.size()) {}
  Source(detail::UniqueFd fd, std::uint64_t size, std::string path)
      : fd_(std::move(fd)), size_(size), path_(std::move(path)) {}
  std::uint64_t size() const { return size_; }
  // [offset, offset + length), which the caller has checked lies inside the file; from memory it
  // points into the buffer, from a file into `buffer`.
  absl::StatusOr<std::span<const std::byte>> read(std::uint64_t offset, std::uint64_t length,
                                                  std::vector<std::byte>* buffer) const {
    if (offset > size_ || length > size_ - offset) return corrupt(offset, "read past the end");
    if (fd_.get() < 0) return memory_.subspan(offset, length);
    buffer->resize(length);
    if (absl::Status s = detail::read_exact(fd_.get(), offset, *buffer, path_); !s.ok()) return s;
    return std::span<const std::byte>(*buffer);
  }

 private:
  detail::UniqueFd fd_;
  std::span<const std::byte> memory_;
  std::uint64_t size_ = 0;
  std::string path_;
};

struct RecordAt {
  std::uint8_t opcode = 0;
  std::uint64_t offset = 0;       // of the opcode
  std::uint64_t body_offset = 0;
  std::uint64_t length = 0;       // body bytes
  std::uint64_t end() const { return body_offset + length; }
};

}  // namespace

struct McapReader::Impl {
  ReaderOptions options;
  Source source;
  Header header;
  std::uint64_t data_start = 0;   // just after the header record
  bool has_summary = false;
  std::uint64_t summary_start = 0;
  Summary summary;                // from the summary section, or from scan()
  bool summary_ready = false;
  detail::Decompressor decompressor;
  std::vector<std::byte> io_buffer;
  std::vector<std::byte> chunk_buffer;

  // The record whose opcode is at `offset`; kOk with *record, or truncated (false) when it runs
  // past `limit`.
  absl::StatusOr<bool> record_at(std::uint64_t offset, std::uint64_t limit, RecordAt* record) {
    if (offset > limit || limit - offset < detail::kRecordPrefix) return false;
    std::vector<std::byte> prefix_buffer;
    absl::StatusOr<std::span<const std::byte>> prefix = source.read(offset, detail::kRecordPrefix, &prefix_buffer);
    if (!prefix.ok()) return prefix.status();
    detail::Decoder d(*prefix);
    record->opcode = d.u8();
    record->length = d.u64();
    record->offset = offset;
    record->body_offset = offset + detail::kRecordPrefix;
    if (record->length > limit - record->body_offset) return false;
    return true;
  }

  absl::Status open();
  void read_summary();
  absl::Status scan();

  // Decodes the chunk whose record is `r` and hands its records to `each(opcode, body, offset in
  // the uncompressed records)`. kDataLoss / kResourceExhausted / kUnimplemented for a bad chunk.
  template <typename Each>
  absl::Status for_each_in_chunk(const RecordAt& r, Each&& each);

  // The data section's records from the header on, in order, up to DataEnd or a torn record;
  // `each(record)` returns a status (non-ok stops).
  template <typename Each>
  absl::Status for_each_data_record(ReadReport* report, Each&& each);
};

absl::Status McapReader::Impl::open() {
  const std::uint64_t size = source.size();
  if (size < kMcapMagic.size()) return corrupt(0, "too short for an MCAP file");
  absl::StatusOr<std::span<const std::byte>> magic = source.read(0, kMcapMagic.size(), &io_buffer);
  if (!magic.ok()) return magic.status();
  if (std::memcmp(magic->data(), kMcapMagic.data(), kMcapMagic.size()) != 0) {
    return corrupt(0, "not an MCAP file (bad magic)");
  }
  RecordAt r;
  absl::StatusOr<bool> whole = record_at(kMcapMagic.size(), size, &r);
  if (!whole.ok()) return whole.status();
  if (!*whole) return corrupt(kMcapMagic.size(), "the header record is torn");
  if (r.opcode != static_cast<std::uint8_t>(Opcode::kHeader)) return corrupt(r.offset, "no header record");
  absl::StatusOr<std::span<const std::byte>> body = source.read(r.body_offset, r.length, &io_buffer);
  if (!body.ok()) return body.status();
  std::optional<Header> h = detail::decode_header(*body);
  if (!h) return corrupt(r.offset, "bad header record");
  header = std::move(*h);
  data_start = r.end();
  read_summary();
  return absl::OkStatus();
}

// Reads the footer and the summary section; any inconsistency leaves has_summary false (the data
// section is scanned instead).
void McapReader::Impl::read_summary() {
  const std::uint64_t size = source.size();
  const std::uint64_t tail_bytes = detail::kFooterRecordBytes + kMcapMagic.size();
  if (size < data_start + tail_bytes) return;
  const std::uint64_t footer_start = size - tail_bytes;
  absl::StatusOr<std::span<const std::byte>> tail = source.read(footer_start, tail_bytes, &io_buffer);
  if (!tail.ok()) return;
  if (std::memcmp(tail->data() + detail::kFooterRecordBytes, kMcapMagic.data(), kMcapMagic.size()) != 0) {
    return;
  }
  detail::Decoder d(*tail);
  if (d.u8() != static_cast<std::uint8_t>(Opcode::kFooter) || d.u64() != 20) return;
  std::optional<detail::Footer> f = detail::decode_footer(tail->subspan(detail::kRecordPrefix, 20));
  if (!f) return;
  if (f->summary_start == 0) return;  // a complete file without a summary: scan
  if (f->summary_start < data_start || f->summary_start > footer_start) return;
  if (f->summary_offset_start != 0 &&
      (f->summary_offset_start < f->summary_start || f->summary_offset_start > footer_start)) {
    return;
  }
  const std::uint64_t summary_end = f->summary_offset_start != 0 ? f->summary_offset_start : footer_start;
  std::vector<std::byte> buffer;
  // The CRC covers the summary, the summary offsets and the footer up to its CRC field.
  absl::StatusOr<std::span<const std::byte>> all =
      source.read(f->summary_start, footer_start + detail::kRecordPrefix + 16 - f->summary_start, &buffer);
  if (!all.ok()) return;
  if (f->summary_crc != 0 && detail::crc32_update(0, *all) != f->summary_crc) return;
  std::span<const std::byte> bytes = all->first(summary_end - f->summary_start);
  Summary s;
  while (!bytes.empty()) {
    detail::RecordView v;
    if (detail::next_record(bytes, &v) != detail::RecordParse::kOk) return;
    switch (static_cast<Opcode>(v.opcode)) {
      case Opcode::kSchema: {
        std::optional<Schema> x = detail::decode_schema(v.body);
        if (!x) return;
        if (x->id != 0) s.schemas[x->id] = std::move(*x);
        break;
      }
      case Opcode::kChannel: {
        std::optional<Channel> x = detail::decode_channel(v.body);
        if (!x) return;
        s.channels[x->id] = std::move(*x);
        break;
      }
      case Opcode::kChunkIndex: {
        std::optional<ChunkIndex> x = detail::decode_chunk_index(v.body);
        if (!x || x->chunk_start_offset < data_start || x->chunk_start_offset > f->summary_start ||
            x->chunk_length > f->summary_start - x->chunk_start_offset) {
          return;
        }
        s.chunk_indexes.push_back(std::move(*x));
        break;
      }
      case Opcode::kMetadataIndex: {
        std::optional<MetadataIndex> x = detail::decode_metadata_index(v.body);
        if (!x) return;
        s.metadata_indexes.push_back(std::move(*x));
        break;
      }
      case Opcode::kStatistics: {
        std::optional<Statistics> x = detail::decode_statistics(v.body);
        if (!x) return;
        s.statistics = std::move(*x);
        break;
      }
      default:
        break;  // attachment indexes, unknown records
    }
    bytes = bytes.subspan(v.size);
  }
  summary = std::move(s);
  summary_start = f->summary_start;
  has_summary = true;
  summary_ready = true;
}

template <typename Each>
absl::Status McapReader::Impl::for_each_in_chunk(const RecordAt& r, Each&& each) {
  std::vector<std::byte> record_buffer;
  absl::StatusOr<std::span<const std::byte>> body = source.read(r.body_offset, r.length, &record_buffer);
  if (!body.ok()) return body.status();
  std::optional<detail::ChunkHeader> chunk = detail::decode_chunk(*body);
  if (!chunk) return corrupt(r.offset, "bad chunk record");
  if (chunk->uncompressed_size > options.max_chunk_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat("MCAP: chunk at byte ", r.offset, " holds ",
                                                     chunk->uncompressed_size, " bytes, over the limit ",
                                                     options.max_chunk_bytes));
  }
  if (absl::Status s = decompressor.decompress(chunk->compression, chunk->records,
                                               chunk->uncompressed_size, &chunk_buffer);
      !s.ok()) {
    return absl::Status(s.code(), absl::StrCat("MCAP: chunk at byte ", r.offset, ": ", s.message()));
  }
  if (chunk->uncompressed_crc != 0 && detail::crc32_update(0, chunk_buffer) != chunk->uncompressed_crc) {
    return corrupt(r.offset, "chunk CRC mismatch");
  }
  std::span<const std::byte> rest(chunk_buffer);
  std::uint64_t at = 0;
  while (!rest.empty()) {
    detail::RecordView v;
    if (detail::next_record(rest, &v) != detail::RecordParse::kOk) {
      return corrupt(r.offset, absl::StrCat("torn record inside a chunk, at ", at));
    }
    if (absl::Status s = each(v.opcode, v.body, at); !s.ok()) return s;
    rest = rest.subspan(v.size);
    at += v.size;
  }
  return absl::OkStatus();
}

template <typename Each>
absl::Status McapReader::Impl::for_each_data_record(ReadReport* report, Each&& each) {
  const std::uint64_t limit = has_summary ? summary_start : source.size();
  std::uint64_t offset = data_start;
  report->valid_bytes = offset;
  for (;;) {
    RecordAt r;
    absl::StatusOr<bool> whole = record_at(offset, limit, &r);
    if (!whole.ok()) return whole.status();
    if (!*whole) {
      // A torn record (a killed writer) or the end: anything left over is a torn tail.
      report->truncated = offset != limit;
      return absl::OkStatus();
    }
    if (r.opcode == static_cast<std::uint8_t>(Opcode::kDataEnd) ||
        r.opcode == static_cast<std::uint8_t>(Opcode::kFooter)) {
      report->valid_bytes = r.end();
      return absl::OkStatus();
    }
    if (absl::Status s = each(r); !s.ok()) return s;
    offset = r.end();
    report->valid_bytes = offset;
  }
}

// Builds the summary from the data section (no summary section).
absl::Status McapReader::Impl::scan() {
  Summary s;
  Statistics stats;
  ReadReport report;
  auto note_message = [&](const Message& m) {
    if (stats.message_count == 0 || m.log_time < stats.message_start_time) stats.message_start_time = m.log_time;
    if (stats.message_count == 0 || m.log_time > stats.message_end_time) stats.message_end_time = m.log_time;
    ++stats.message_count;
    ++stats.channel_message_counts[m.channel_id];
  };
  auto inner = [&](std::uint8_t opcode, std::span<const std::byte> body, std::uint64_t offset,
                   ChunkIndex* index) -> absl::Status {
    switch (static_cast<Opcode>(opcode)) {
      case Opcode::kSchema: {
        std::optional<Schema> x = detail::decode_schema(body);
        if (!x) return corrupt(offset, "bad schema record");
        if (x->id != 0) s.schemas[x->id] = std::move(*x);
        break;
      }
      case Opcode::kChannel: {
        std::optional<Channel> x = detail::decode_channel(body);
        if (!x) return corrupt(offset, "bad channel record");
        s.channels[x->id] = std::move(*x);
        break;
      }
      case Opcode::kMessage: {
        std::optional<Message> m = detail::decode_message(body);
        if (!m) return corrupt(offset, "bad message record");
        note_message(*m);
        if (index != nullptr) {
          const bool first = index->message_index_offsets.empty();
          index->message_start_time = first ? m->log_time : std::min(index->message_start_time, m->log_time);
          index->message_end_time = first ? m->log_time : std::max(index->message_end_time, m->log_time);
          index->message_index_offsets[m->channel_id] = 0;  // channels seen (offsets unknown)
        }
        break;
      }
      default:
        break;
    }
    return absl::OkStatus();
  };
  absl::Status st = for_each_data_record(&report, [&](const RecordAt& r) -> absl::Status {
    switch (static_cast<Opcode>(r.opcode)) {
      case Opcode::kChunk: {
        ChunkIndex index;
        index.chunk_start_offset = r.offset;
        index.chunk_length = r.end() - r.offset;
        if (absl::Status e = for_each_in_chunk(r, [&](std::uint8_t op, std::span<const std::byte> body,
                                                      std::uint64_t) { return inner(op, body, r.offset, &index); });
            !e.ok()) {
          return e;
        }
        index.uncompressed_size = chunk_buffer.size();
        // Which channels it holds is known, their message index offsets are not: empty (the
        // specification's "no message indexing available").
        index.message_index_offsets.clear();
        ++stats.chunk_count;
        s.chunk_indexes.push_back(std::move(index));
        return absl::OkStatus();
      }
      case Opcode::kMetadata: {
        absl::StatusOr<std::span<const std::byte>> body = source.read(r.body_offset, r.length, &io_buffer);
        if (!body.ok()) return body.status();
        std::optional<Metadata> m = detail::decode_metadata(*body);
        if (!m) return corrupt(r.offset, "bad metadata record");
        s.metadata_indexes.push_back({r.offset, r.end() - r.offset, m->name});
        ++stats.metadata_count;
        return absl::OkStatus();
      }
      case Opcode::kSchema:
      case Opcode::kChannel:
      case Opcode::kMessage: {
        absl::StatusOr<std::span<const std::byte>> body = source.read(r.body_offset, r.length, &io_buffer);
        if (!body.ok()) return body.status();
        return inner(r.opcode, *body, r.offset, nullptr);
      }
      default:
        return absl::OkStatus();
    }
  });
  if (!st.ok()) return st;
  stats.schema_count = static_cast<std::uint16_t>(s.schemas.size());
  stats.channel_count = static_cast<std::uint32_t>(s.channels.size());
  s.statistics = std::move(stats);
  summary = std::move(s);
  summary_ready = true;
  return absl::OkStatus();
}

// --- McapReader -------------------------------------------------------------------------------

McapReader::McapReader() = default;
McapReader::McapReader(McapReader&&) noexcept = default;
McapReader& McapReader::operator=(McapReader&&) noexcept = default;
McapReader::~McapReader() = default;

absl::StatusOr<McapReader> McapReader::open(const std::string& path, const ReaderOptions& options) {
  detail::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return detail::errno_status(errno, "open", path);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return detail::errno_status(errno, "stat", path);
  if (!S_ISREG(st.st_mode)) return absl::InvalidArgumentError(absl::StrCat("'", path, "' is not a regular file"));
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->source = Source(std::move(fd), static_cast<std::uint64_t>(st.st_size), path);
  if (absl::Status s = impl->open(); !s.ok()) return s;
  McapReader reader;
  reader.impl_ = std::move(impl);
  return reader;
}

absl::StatusOr<McapReader> McapReader::open_bytes(std::span<const std::byte> bytes,
                                                  const ReaderOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->source = Source(bytes);
  if (absl::Status s = impl->open(); !s.ok()) return s;
  McapReader reader;
  reader.impl_ = std::move(impl);
  return reader;
}

const Header& McapReader::header() const noexcept {
  static const Header kNone;
  return impl_ ? impl_->header : kNone;
}
std::uint64_t McapReader::file_size() const noexcept { return impl_ ? impl_->source.size() : 0; }
bool McapReader::has_summary() const noexcept { return impl_ && impl_->has_summary; }

absl::StatusOr<const Summary*> McapReader::summary() {
  if (!impl_) return absl::FailedPreconditionError("McapReader: not open");
  if (!impl_->summary_ready) {
    if (absl::Status s = impl_->scan(); !s.ok()) return s;
  }
  return &impl_->summary;
}

absl::Status McapReader::read_messages(const ReadOptions& options,
                                       const std::function<bool(const Message&, const Channel&)>& handler,
                                       ReadReport* report_out) {
  if (!impl_) return absl::FailedPreconditionError("McapReader: not open");
  Impl& r = *impl_;
  ReadReport local;
  ReadReport& report = report_out != nullptr ? *report_out : local;
  report = ReadReport();
  std::map<std::uint16_t, Channel> seen_channels;  // from the records read (a file without summary)
  const std::map<std::uint16_t, Channel>& channels = r.has_summary ? r.summary.channels : seen_channels;
  auto wanted_channel = [&](std::uint16_t id) {
    return options.channels.empty() ||
           std::find(options.channels.begin(), options.channels.end(), id) != options.channels.end();
  };
  bool stopped = false;
  // One record from a chunk or the data section: channels are learnt, messages delivered (or,
  // with `collect`, kept for sorting).
  struct Pending {
    Message message;
    std::uint64_t order;
  };
  std::vector<Pending>* collect = nullptr;
  std::uint64_t order = 0;
  auto on_record = [&](std::uint8_t opcode, std::span<const std::byte> body,
                       std::uint64_t offset) -> absl::Status {
    if (stopped) return absl::OkStatus();
    if (opcode == static_cast<std::uint8_t>(Opcode::kChannel) && !r.has_summary) {
      std::optional<Channel> c = detail::decode_channel(body);
      if (!c) return corrupt(offset, "bad channel record");
      seen_channels[c->id] = std::move(*c);
      return absl::OkStatus();
    }
    if (opcode != static_cast<std::uint8_t>(Opcode::kMessage)) return absl::OkStatus();
    std::optional<Message> m = detail::decode_message(body);
    if (!m) return corrupt(offset, "bad message record");
    if (m->log_time < options.start_time || m->log_time >= options.end_time || !wanted_channel(m->channel_id)) {
      return absl::OkStatus();
    }
    auto c = channels.find(m->channel_id);
    if (c == channels.end()) return corrupt(offset, absl::StrCat("message on unknown channel ", m->channel_id));
    if (collect != nullptr) {
      collect->push_back({*m, order++});
      return absl::OkStatus();
    }
    ++report.messages;
    if (!handler(*m, c->second)) stopped = true;
    return absl::OkStatus();
  };
  auto chunk_failed = [&](const absl::Status& s) {
    if (options.skip_bad_chunks && (s.code() == absl::StatusCode::kDataLoss ||
                                    s.code() == absl::StatusCode::kUnimplemented ||
                                    s.code() == absl::StatusCode::kResourceExhausted)) {
      ++report.chunks_skipped;
      return false;
    }
    return true;
  };

  if (r.has_summary && !r.summary.chunk_indexes.empty()) {
    // Seek by time through the chunk indexes.
    std::vector<const ChunkIndex*> chunks;
    for (const ChunkIndex& c : r.summary.chunk_indexes) {
      if (c.message_end_time < options.start_time || c.message_start_time >= options.end_time) continue;
      if (!options.channels.empty() && !c.message_index_offsets.empty() &&
          std::none_of(options.channels.begin(), options.channels.end(),
                       [&](std::uint16_t id) { return c.message_index_offsets.count(id) != 0; })) {
        continue;
      }
      chunks.push_back(&c);
    }
    const bool by_time = options.order == ReadOptions::Order::kLogTime;
    std::sort(chunks.begin(), chunks.end(), [&](const ChunkIndex* a, const ChunkIndex* b) {
      if (by_time && a->message_start_time != b->message_start_time) {
        return a->message_start_time < b->message_start_time;
      }
      return a->chunk_start_offset < b->chunk_start_offset;
    });
    std::vector<Pending> group;
    std::vector<std::vector<std::byte>> group_buffers;
    std::size_t i = 0;
    while (i < chunks.size() && !stopped) {
      // By time: the run of chunks whose time ranges overlap is read together and merged.
      std::size_t j = i + 1;
      std::uint64_t end = chunks[i]->message_end_time;
      if (by_time) {
        while (j < chunks.size() && chunks[j]->message_start_time <= end) {
          end = std::max(end, chunks[j]->message_end_time);
          ++j;
        }
      }
      const bool merge = j - i > 1;
      group.clear();
      group_buffers.clear();
      collect = merge ? &group : nullptr;
      for (std::size_t k = i; k < j && !stopped; ++k) {
        RecordAt rec;
        absl::StatusOr<bool> whole = r.record_at(chunks[k]->chunk_start_offset, r.summary_start, &rec);
        if (!whole.ok()) return whole.status();
        if (!*whole || rec.opcode != static_cast<std::uint8_t>(Opcode::kChunk)) {
          absl::Status bad = corrupt(chunks[k]->chunk_start_offset, "chunk index points at no chunk");
          if (chunk_failed(bad)) return bad;
          continue;
        }
        absl::Status s = r.for_each_in_chunk(rec, on_record);
        if (!s.ok()) {
          if (chunk_failed(s)) return s;
          continue;
        }
        ++report.chunks_read;
        if (merge) {
          // Keep this chunk's bytes alive for the merge: its messages point into them.
          group_buffers.push_back(std::move(r.chunk_buffer));
          r.chunk_buffer = std::vector<std::byte>();
        }
      }
      collect = nullptr;
      if (merge) {
        std::stable_sort(group.begin(), group.end(), [](const Pending& a, const Pending& b) {
          return a.message.log_time < b.message.log_time;
        });
        for (const Pending& p : group) {
          if (stopped) break;
          ++report.messages;
          if (!handler(p.message, channels.at(p.message.channel_id))) stopped = true;
        }
      }
      i = j;
    }
    report.valid_bytes = r.summary_start;
    return absl::OkStatus();
  }

  // No summary (or no chunk indexes): the data section in file order.
  return r.for_each_data_record(&report, [&](const RecordAt& rec) -> absl::Status {
    if (stopped) return absl::OkStatus();
    switch (static_cast<Opcode>(rec.opcode)) {
      case Opcode::kChunk: {
        if (options.start_time != 0 || options.end_time != UINT64_MAX) {
          // The chunk's time range sits in its first 16 bytes: skip a chunk outside the range.
          absl::StatusOr<std::span<const std::byte>> head = r.source.read(rec.body_offset, std::min<std::uint64_t>(16, rec.length), &r.io_buffer);
          if (!head.ok()) return head.status();
          if (head->size() == 16) {
            detail::Decoder d(*head);
            const std::uint64_t start = d.u64(), end = d.u64();
            if (end < options.start_time || start >= options.end_time) return absl::OkStatus();
          }
        }
        absl::Status s = r.for_each_in_chunk(rec, on_record);
        if (!s.ok()) {
          if (chunk_failed(s)) return s;
          return absl::OkStatus();
        }
        ++report.chunks_read;
        return absl::OkStatus();
      }
      case Opcode::kChannel:
      case Opcode::kMessage: {
        absl::StatusOr<std::span<const std::byte>> body = r.source.read(rec.body_offset, rec.length, &r.io_buffer);
        if (!body.ok()) return body.status();
        return on_record(rec.opcode, *body, rec.offset);
      }
      default:
        return absl::OkStatus();
    }
  });
}

absl::StatusOr<std::vector<Metadata>> McapReader::metadata() {
  if (!impl_) return absl::FailedPreconditionError("McapReader: not open");
  Impl& r = *impl_;
  std::vector<Metadata> out;
  ReadReport report;
  absl::Status s = r.for_each_data_record(&report, [&](const RecordAt& rec) -> absl::Status {
    if (rec.opcode != static_cast<std::uint8_t>(Opcode::kMetadata)) return absl::OkStatus();
    absl::StatusOr<std::span<const std::byte>> body = r.source.read(rec.body_offset, rec.length, &r.io_buffer);
    if (!body.ok()) return body.status();
    std::optional<Metadata> m = detail::decode_metadata(*body);
    if (!m) return corrupt(rec.offset, "bad metadata record");
    out.push_back(std::move(*m));
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return out;
}

}  // namespace shmring::record
