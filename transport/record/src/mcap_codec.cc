#include "mcap_codec.h"

#include <array>
#include <bit>
#include <cstring>

namespace shmring::record::detail {

namespace {

// Slicing-by-8: table[k][b] is the CRC of byte b followed by k zero bytes, so eight input bytes are
// folded per step (a few times faster than a byte at a time: chunks of video frames are MBs).
using CrcTables = std::array<std::array<std::uint32_t, 256>, 8>;
constexpr CrcTables make_crc_tables() {
  CrcTables t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    t[0][i] = c;
  }
  for (std::uint32_t i = 0; i < 256; ++i) {
    for (std::size_t k = 1; k < 8; ++k) t[k][i] = (t[k - 1][i] >> 8) ^ t[0][t[k - 1][i] & 0xff];
  }
  return t;
}
constexpr CrcTables kCrc = make_crc_tables();

}  // namespace

std::uint32_t crc32_update(std::uint32_t crc, std::span<const std::byte> bytes) noexcept {
  static_assert(std::endian::native == std::endian::little, "the 8-byte step reads little-endian words");
  std::uint32_t c = ~crc;
  const auto* p = reinterpret_cast<const std::uint8_t*>(bytes.data());
  std::size_t n = bytes.size();
  while (n >= 8) {
    std::uint32_t lo = 0, hi = 0;
    std::memcpy(&lo, p, 4);
    std::memcpy(&hi, p + 4, 4);
    lo ^= c;
    c = kCrc[7][lo & 0xff] ^ kCrc[6][(lo >> 8) & 0xff] ^ kCrc[5][(lo >> 16) & 0xff] ^ kCrc[4][lo >> 24] ^
        kCrc[3][hi & 0xff] ^ kCrc[2][(hi >> 8) & 0xff] ^ kCrc[1][(hi >> 16) & 0xff] ^ kCrc[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  while (n-- > 0) c = kCrc[0][(c ^ *p++) & 0xff] ^ (c >> 8);
  return ~c;
}

// --- Encoder ----------------------------------------------------------------------------------

void Encoder::string_map(const StringMap& map) {
  std::size_t bytes = 0;
  for (const auto& [k, v] : map) bytes += 8 + k.size() + v.size();
  u32(static_cast<std::uint32_t>(bytes));
  for (const auto& [k, v] : map) {
    string(k);
    string(v);
  }
}

void Encoder::u16_u64_map(const std::map<std::uint16_t, std::uint64_t>& map) {
  u32(static_cast<std::uint32_t>(map.size() * 10));
  for (const auto& [k, v] : map) {
    u16(k);
    u64(v);
  }
}

std::size_t Encoder::begin_record(Opcode op) {
  const std::size_t start = out_->size();
  u8(static_cast<std::uint8_t>(op));
  u64(0);
  return start;
}

void Encoder::end_record(std::size_t start) {
  const std::uint64_t length = out_->size() - start - kRecordPrefix;
  for (int i = 0; i < 8; ++i) (*out_)[start + 1 + i] = std::byte((length >> (8 * i)) & 0xff);
}

// --- Decoder ----------------------------------------------------------------------------------

std::uint8_t Decoder::u8() {
  if (failed_ || remaining() < 1) {
    failed_ = true;
    return 0;
  }
  return static_cast<std::uint8_t>(in_[pos_++]);
}

std::uint64_t Decoder::le(int n) {
  if (failed_ || remaining() < static_cast<std::size_t>(n)) {
    failed_ = true;
    return 0;
  }
  std::uint64_t v = 0;
  for (int i = 0; i < n; ++i) v |= static_cast<std::uint64_t>(in_[pos_ + i]) << (8 * i);
  pos_ += static_cast<std::size_t>(n);
  return v;
}

std::span<const std::byte> Decoder::bytes(std::uint64_t n) {
  if (failed_ || remaining() < n) {
    failed_ = true;
    return {};
  }
  std::span<const std::byte> out = in_.subspan(pos_, static_cast<std::size_t>(n));
  pos_ += static_cast<std::size_t>(n);
  return out;
}

std::span<const std::byte> Decoder::prefixed32() { return bytes(u32()); }

std::string Decoder::string() {
  const std::span<const std::byte> b = prefixed32();
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

StringMap Decoder::string_map() {
  StringMap map;
  Decoder inner(prefixed32());
  if (failed_) return map;
  while (inner.remaining() > 0 && !inner.failed()) {
    std::string k = inner.string();
    std::string v = inner.string();
    if (!inner.failed()) map[std::move(k)] = std::move(v);
  }
  if (inner.failed()) failed_ = true;
  return map;
}

std::map<std::uint16_t, std::uint64_t> Decoder::u16_u64_map() {
  std::map<std::uint16_t, std::uint64_t> map;
  Decoder inner(prefixed32());
  if (failed_) return map;
  while (inner.remaining() > 0 && !inner.failed()) {
    const std::uint16_t k = inner.u16();
    const std::uint64_t v = inner.u64();
    if (!inner.failed()) map[k] = v;
  }
  if (inner.failed()) failed_ = true;
  return map;
}

// --- Record bodies ----------------------------------------------------------------------------

void encode_header(Encoder& e, const Header& h) {
  const std::size_t r = e.begin_record(Opcode::kHeader);
  e.string(h.profile);
  e.string(h.library);
  e.end_record(r);
}

void encode_footer(Encoder& e, std::uint64_t summary_start, std::uint64_t summary_offset_start,
                   std::uint32_t summary_crc) {
  const std::size_t r = e.begin_record(Opcode::kFooter);
  e.u64(summary_start);
  e.u64(summary_offset_start);
  e.u32(summary_crc);
  e.end_record(r);
}

void encode_schema(Encoder& e, const Schema& s) {
  const std::size_t r = e.begin_record(Opcode::kSchema);
  e.u16(s.id);
  e.string(s.name);
  e.string(s.encoding);
  e.string(s.data);
  e.end_record(r);
}

void encode_channel(Encoder& e, const Channel& c) {
  const std::size_t r = e.begin_record(Opcode::kChannel);
  e.u16(c.id);
  e.u16(c.schema_id);
  e.string(c.topic);
  e.string(c.message_encoding);
  e.string_map(c.metadata);
  e.end_record(r);
}

void encode_message(Encoder& e, const Message& m) {
  const std::size_t r = e.begin_record(Opcode::kMessage);
  e.u16(m.channel_id);
  e.u32(m.sequence);
  e.u64(m.log_time);
  e.u64(m.publish_time);
  e.bytes(m.data);
  e.end_record(r);
}

void encode_message_index(Encoder& e, std::uint16_t channel_id,
                          const std::vector<std::pair<std::uint64_t, std::uint64_t>>& entries) {
  const std::size_t r = e.begin_record(Opcode::kMessageIndex);
  e.u16(channel_id);
  e.u32(static_cast<std::uint32_t>(entries.size() * 16));
  for (const auto& [time, offset] : entries) {
    e.u64(time);
    e.u64(offset);
  }
  e.end_record(r);
}

void encode_chunk_index(Encoder& e, const ChunkIndex& c) {
  const std::size_t r = e.begin_record(Opcode::kChunkIndex);
  e.u64(c.message_start_time);
  e.u64(c.message_end_time);
  e.u64(c.chunk_start_offset);
  e.u64(c.chunk_length);
  e.u16_u64_map(c.message_index_offsets);
  e.u64(c.message_index_length);
  e.string(c.compression);
  e.u64(c.compressed_size);
  e.u64(c.uncompressed_size);
  e.end_record(r);
}

void encode_statistics(Encoder& e, const Statistics& s) {
  const std::size_t r = e.begin_record(Opcode::kStatistics);
  e.u64(s.message_count);
  e.u16(s.schema_count);
  e.u32(s.channel_count);
  e.u32(s.attachment_count);
  e.u32(s.metadata_count);
  e.u32(s.chunk_count);
  e.u64(s.message_start_time);
  e.u64(s.message_end_time);
  e.u16_u64_map(s.channel_message_counts);
  e.end_record(r);
}

void encode_metadata(Encoder& e, const Metadata& m) {
  const std::size_t r = e.begin_record(Opcode::kMetadata);
  e.string(m.name);
  e.string_map(m.entries);
  e.end_record(r);
}

void encode_metadata_index(Encoder& e, const MetadataIndex& m) {
  const std::size_t r = e.begin_record(Opcode::kMetadataIndex);
  e.u64(m.offset);
  e.u64(m.length);
  e.string(m.name);
  e.end_record(r);
}

void encode_summary_offset(Encoder& e, Opcode group, std::uint64_t start, std::uint64_t length) {
  const std::size_t r = e.begin_record(Opcode::kSummaryOffset);
  e.u8(static_cast<std::uint8_t>(group));
  e.u64(start);
  e.u64(length);
  e.end_record(r);
}

void encode_data_end(Encoder& e, std::uint32_t data_crc) {
  const std::size_t r = e.begin_record(Opcode::kDataEnd);
  e.u32(data_crc);
  e.end_record(r);
}

template <typename T>
std::optional<T> done(const Decoder& d, T value) {
  if (d.failed()) return std::nullopt;
  return value;
}

std::optional<Header> decode_header(std::span<const std::byte> body) {
  Decoder d(body);
  Header h;
  h.profile = d.string();
  h.library = d.string();
  return done(d, std::move(h));
}

std::optional<Footer> decode_footer(std::span<const std::byte> body) {
  Decoder d(body);
  Footer f;
  f.summary_start = d.u64();
  f.summary_offset_start = d.u64();
  f.summary_crc = d.u32();
  return done(d, f);
}

std::optional<Schema> decode_schema(std::span<const std::byte> body) {
  Decoder d(body);
  Schema s;
  s.id = d.u16();
  s.name = d.string();
  s.encoding = d.string();
  s.data = d.string();
  return done(d, std::move(s));
}

std::optional<Channel> decode_channel(std::span<const std::byte> body) {
  Decoder d(body);
  Channel c;
  c.id = d.u16();
  c.schema_id = d.u16();
  c.topic = d.string();
  c.message_encoding = d.string();
  c.metadata = d.string_map();
  return done(d, std::move(c));
}

std::optional<Message> decode_message(std::span<const std::byte> body) {
  Decoder d(body);
  Message m;
  m.channel_id = d.u16();
  m.sequence = d.u32();
  m.log_time = d.u64();
  m.publish_time = d.u64();
  m.data = d.rest();
  return done(d, m);
}

std::optional<ChunkHeader> decode_chunk(std::span<const std::byte> body) {
  Decoder d(body);
  ChunkHeader c;
  c.message_start_time = d.u64();
  c.message_end_time = d.u64();
  c.uncompressed_size = d.u64();
  c.uncompressed_crc = d.u32();
  c.compression = d.string();
  c.records = d.bytes(d.u64());
  return done(d, std::move(c));
}

std::optional<ChunkIndex> decode_chunk_index(std::span<const std::byte> body) {
  Decoder d(body);
  ChunkIndex c;
  c.message_start_time = d.u64();
  c.message_end_time = d.u64();
  c.chunk_start_offset = d.u64();
  c.chunk_length = d.u64();
  c.message_index_offsets = d.u16_u64_map();
  c.message_index_length = d.u64();
  c.compression = d.string();
  c.compressed_size = d.u64();
  c.uncompressed_size = d.u64();
  return done(d, std::move(c));
}

std::optional<Statistics> decode_statistics(std::span<const std::byte> body) {
  Decoder d(body);
  Statistics s;
  s.message_count = d.u64();
  s.schema_count = d.u16();
  s.channel_count = d.u32();
  s.attachment_count = d.u32();
  s.metadata_count = d.u32();
  s.chunk_count = d.u32();
  s.message_start_time = d.u64();
  s.message_end_time = d.u64();
  s.channel_message_counts = d.u16_u64_map();
  return done(d, std::move(s));
}

std::optional<Metadata> decode_metadata(std::span<const std::byte> body) {
  Decoder d(body);
  Metadata m;
  m.name = d.string();
  m.entries = d.string_map();
  return done(d, std::move(m));
}

std::optional<MetadataIndex> decode_metadata_index(std::span<const std::byte> body) {
  Decoder d(body);
  MetadataIndex m;
  m.offset = d.u64();
  m.length = d.u64();
  m.name = d.string();
  return done(d, std::move(m));
}

std::optional<SummaryOffset> decode_summary_offset(std::span<const std::byte> body) {
  Decoder d(body);
  SummaryOffset s;
  s.group_opcode = d.u8();
  s.group_start = d.u64();
  s.group_length = d.u64();
  return done(d, s);
}

RecordParse next_record(std::span<const std::byte> bytes, RecordView* record) {
  if (bytes.size() < kRecordPrefix) return RecordParse::kTruncated;
  Decoder d(bytes);
  record->opcode = d.u8();
  const std::uint64_t length = d.u64();
  if (length > bytes.size() - kRecordPrefix) return RecordParse::kTruncated;
  record->body = bytes.subspan(kRecordPrefix, static_cast<std::size_t>(length));
  record->size = kRecordPrefix + static_cast<std::size_t>(length);
  return RecordParse::kOk;
}

}  // namespace shmring::record::detail
