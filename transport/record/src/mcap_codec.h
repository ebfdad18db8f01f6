// Private: MCAP's byte-level encoding (little-endian integers, length-prefixed strings, maps,
// arrays), CRC32, and each record's body encoded and decoded. Decoding never reads past the span it
// is given and reports a short or inconsistent body as a failure (nullopt / false): the reader
// turns that into kDataLoss with the offset.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "shmring/record/mcap.h"

namespace shmring::record::detail {

// CRC-32 (IEEE 802.3, reflected, as zlib's crc32): crc32_update(0, ...) starts a checksum.
std::uint32_t crc32_update(std::uint32_t crc, std::span<const std::byte> bytes) noexcept;

// Opcode byte + uint64 length.
inline constexpr std::size_t kRecordPrefix = 9;
// A footer record's whole size (prefix + 8 + 8 + 4); the closing magic follows it.
inline constexpr std::size_t kFooterRecordBytes = kRecordPrefix + 20;

// Appends MCAP-encoded values to a byte vector.
class Encoder {
 public:
  explicit Encoder(std::vector<std::byte>* out) : out_(out) {}
  void u8(std::uint8_t v) { out_->push_back(std::byte(v)); }
  void u16(std::uint16_t v) { le(v, 2); }
  void u32(std::uint32_t v) { le(v, 4); }
  void u64(std::uint64_t v) { le(v, 8); }
  void bytes(std::span<const std::byte> b) { out_->insert(out_->end(), b.begin(), b.end()); }
  void raw(std::string_view s) { bytes(std::as_bytes(std::span(s.data(), s.size()))); }
  void string(std::string_view s) {
    u32(static_cast<std::uint32_t>(s.size()));
    raw(s);
  }
  void string_map(const StringMap& map);
  void u16_u64_map(const std::map<std::uint16_t, std::uint64_t>& map);
  // Starts a record: opcode and a length to be patched by end_record().
  std::size_t begin_record(Opcode op);
  void end_record(std::size_t start);
  std::vector<std::byte>& out() { return *out_; }

 private:
  void le(std::uint64_t v, int n) {
    for (int i = 0; i < n; ++i) out_->push_back(std::byte((v >> (8 * i)) & 0xff));
  }
  std::vector<std::byte>* out_;
};

// Reads MCAP-encoded values from a span; any read past the end sets failed() and returns zeros.
class Decoder {
 public:
  explicit Decoder(std::span<const std::byte> in) : in_(in) {}
  std::uint8_t u8();
  std::uint16_t u16() { return static_cast<std::uint16_t>(le(2)); }
  std::uint32_t u32() { return static_cast<std::uint32_t>(le(4)); }
  std::uint64_t u64() { return le(8); }
  std::span<const std::byte> bytes(std::uint64_t n);
  std::string string();
  // uint32-prefixed bytes.
  std::span<const std::byte> prefixed32();
  StringMap string_map();
  std::map<std::uint16_t, std::uint64_t> u16_u64_map();
  bool failed() const { return failed_; }
  std::size_t position() const { return pos_; }
  std::size_t remaining() const { return in_.size() - pos_; }
  std::span<const std::byte> rest() const { return in_.subspan(pos_); }

 private:
  std::uint64_t le(int n);
  std::span<const std::byte> in_;
  std::size_t pos_ = 0;
  bool failed_ = false;
};

// --- Records (bodies without the opcode/length prefix, unless said) ---------------------------

void encode_header(Encoder& e, const Header& h);
void encode_footer(Encoder& e, std::uint64_t summary_start, std::uint64_t summary_offset_start,
                   std::uint32_t summary_crc);
void encode_schema(Encoder& e, const Schema& s);
void encode_channel(Encoder& e, const Channel& c);
void encode_message(Encoder& e, const Message& m);
void encode_message_index(Encoder& e, std::uint16_t channel_id,
                          const std::vector<std::pair<std::uint64_t, std::uint64_t>>& entries);
void encode_chunk_index(Encoder& e, const ChunkIndex& c);
void encode_statistics(Encoder& e, const Statistics& s);
void encode_metadata(Encoder& e, const Metadata& m);
void encode_metadata_index(Encoder& e, const MetadataIndex& m);
void encode_summary_offset(Encoder& e, Opcode group, std::uint64_t start, std::uint64_t length);
void encode_data_end(Encoder& e, std::uint32_t data_crc);

std::optional<Header> decode_header(std::span<const std::byte> body);
struct Footer {
  std::uint64_t summary_start = 0;
  std::uint64_t summary_offset_start = 0;
  std::uint32_t summary_crc = 0;
};
std::optional<Footer> decode_footer(std::span<const std::byte> body);
std::optional<Schema> decode_schema(std::span<const std::byte> body);
std::optional<Channel> decode_channel(std::span<const std::byte> body);
// `data` points into `body`.
std::optional<Message> decode_message(std::span<const std::byte> body);
struct ChunkHeader {
  std::uint64_t message_start_time = 0;
  std::uint64_t message_end_time = 0;
  std::uint64_t uncompressed_size = 0;
  std::uint32_t uncompressed_crc = 0;
  std::string compression;
  std::span<const std::byte> records;  // points into the body
};
std::optional<ChunkHeader> decode_chunk(std::span<const std::byte> body);
std::optional<ChunkIndex> decode_chunk_index(std::span<const std::byte> body);
std::optional<Statistics> decode_statistics(std::span<const std::byte> body);
std::optional<Metadata> decode_metadata(std::span<const std::byte> body);
std::optional<MetadataIndex> decode_metadata_index(std::span<const std::byte> body);
struct SummaryOffset {
  std::uint8_t group_opcode = 0;
  std::uint64_t group_start = 0;
  std::uint64_t group_length = 0;
};
std::optional<SummaryOffset> decode_summary_offset(std::span<const std::byte> body);

// One record in a byte range: its opcode and body, or why not.
struct RecordView {
  std::uint8_t opcode = 0;
  std::span<const std::byte> body;
  std::size_t size = 0;  // prefix + body
};
enum class RecordParse { kOk, kTruncated };
// The record at the start of `bytes`; kTruncated if its prefix or body runs past the end.
RecordParse next_record(std::span<const std::byte> bytes, RecordView* record);

}  // namespace shmring::record::detail
