// The bridge's message format on the carrier (docs/bridge.md, "Wire format"). Every message is a
// header part and, for data, a payload part. The header is fixed-size little-endian fields and
// the channel name; decode() checks everything a hostile sender could get wrong.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace shmring::bridge::wire {

inline constexpr std::uint32_t kMagic = 0x31425253;  // "SRB1" read as little-endian bytes
inline constexpr std::uint8_t kVersion = 3;  // 2: credit for topics, ALIVE, EVICTED; 3: history in DESCRIBE
inline constexpr std::size_t kFixedBytes = 40;       // before the name
inline constexpr std::size_t kMaxName = 128;         // kMaxChannelName
// The largest part an export accepts (it only takes headers); imports take what their channels
// allow, up to ImportSpec::max_message_bytes.
inline constexpr std::size_t kMaxControlPart = 4096;

enum class Type : std::uint8_t {
  // import -> export
  kHello = 1,     // "send me this channel"; repeated as a heartbeat. value: queue credit (items);
                  // sequence: topic window (bytes in flight it accepts)
  kAck = 2,       // queue: item `sequence` (ticket) is in the local queue; frames: frame taken
  // export -> import
  kDescribe = 3,  // the channel's kind and settings (payload: Description); value: its epoch
  kTopic = 4,     // topic messages: origin, incarnation; payload: records (TopicRecord), sequence:
                  // the first record's
  kItem = 5,      // a queue item: sequence = ticket; flags kRedelivered
  kFrame = 6,     // a frame: sequence = frame number
  kNotExported = 7,  // the export has no such channel
  // import -> export
  kCredit = 8,    // topic: incarnation = the description's epoch, sequence = payload bytes
                  // delivered since it, value = the window (bytes it accepts beyond those)
  // export -> import
  kAlive = 9,     // answers every HELLO: the export hears this import; flags kChannelOpen,
                  // kHasPosition (sequence: the next topic record this import will be offered)
  kEvicted = 10,  // this import no longer gets the channel: value = EvictReason, sequence = the
                  // bound it broke (ms); it may ask again later
};
inline constexpr std::uint8_t kLastType = 10;

// Whether messages of `type` travel from an import to an export.
constexpr bool from_import(Type type) {
  return type == Type::kHello || type == Type::kAck || type == Type::kCredit;
}

// kEvicted's value.
enum class EvictReason : std::uint8_t {
  kHeldBack = 1,  // lossless topic: it held the channel back longer than the export allows
  kAckLate = 2,   // queue: it did not acknowledge an item in time (the item went elsewhere)
};

inline constexpr std::uint8_t kRedelivered = 1;  // kItem: sent before (or adopted from a dead consumer)
inline constexpr std::uint8_t kRefused = 2;     // kAck: the import could not take it (too large
                                                 // for its local channel): dropped, counted
inline constexpr std::uint8_t kNotTaken = 4;    // kAck: the import's local channel is not open
                                                 // (yet), or holds too much: send the item elsewhere
inline constexpr std::uint8_t kHasBaseline = 1;  // kDescribe (topic): `sequence` is the first one
                                                 // this export covers for the peer
inline constexpr std::uint8_t kChannelOpen = 1;  // kAlive: the export has the channel open
inline constexpr std::uint8_t kHasPosition = 2;  // kAlive (topic): `sequence` is meaningful
inline constexpr std::uint8_t kEvictedNow = 4;   // kAlive: this import is evicted from the channel
                                                 // for now (its hellos are not served)

struct Header {
  Type type = Type::kHello;
  std::uint8_t flags = 0;
  std::uint64_t origin = 0;
  std::uint64_t incarnation = 0;
  std::uint64_t sequence = 0;
  std::uint64_t value = 0;  // kTopic/kItem/kFrame: payload bytes; the others: see Type
  std::string_view name;    // points into the decoded bytes
};

// The channel settings an export describes (kDescribe's payload, 32 bytes).
struct Description {
  std::uint32_t kind = 0;  // ChannelKind
  std::uint32_t lossless = 0;
  std::uint64_t capacity = 0;
  std::uint64_t max_message = 0;
  std::uint32_t max_peers = 0;
  // The export's bound on this import (0: none): queues: an item not acknowledged within it goes
  // elsewhere; lossless topics: an import that holds the channel back longer is evicted.
  std::uint32_t deadline_ms = 0;
  // Topics: the messages the exported topic keeps for late joiners (TopicOptions::history); the
  // import makes its local topic keep as many, so a late subscriber on its host gets them too.
  std::uint64_t history = 0;
};
inline constexpr std::size_t kDescriptionBytes = 40;

// A kTopic payload is one or more records, each [u64 sequence][u32 length][length bytes]: the
// export packs what its subscriber has ready into one carrier message (fewer, larger messages;
// nothing waits to be batched).
inline constexpr std::size_t kRecordHeader = 12;
// A batch holds at most this many bytes beyond one message of the largest size (the most any
// data message carries beyond its channel's max_message).
inline constexpr std::size_t kBatchSlack = 64 << 10;
inline constexpr std::size_t kMaxBatchOverhead = kRecordHeader + kBatchSlack;
struct TopicRecord {
  std::uint64_t sequence = 0;
  std::span<const std::byte> bytes;
};
// Writes a record header at `at` (kRecordHeader bytes).
void put_record_header(std::byte* at, std::uint64_t sequence, std::uint32_t length);
// Reads the record at `*offset` of `payload` and moves the offset past it. False (offset kept)
// at the end or when the record does not fit in what is left.
bool next_record(std::span<const std::byte> payload, std::size_t* offset, TopicRecord* out);

// Writes the header into `out` (resized). name must be 1..kMaxName bytes.
void encode(const Header& header, std::vector<std::byte>* out);
void encode(const Description& d, std::vector<std::byte>* out);

enum class DecodeError : std::uint8_t { kNone, kShort, kBadMagic, kBadVersion, kBadType, kBadName, kBadLength };
std::string_view to_string(DecodeError e);

// Parses a header part. Fails on a short part, another magic or version, an unknown type, a
// name of 0 or more than kMaxName bytes or not matching the part's length.
DecodeError decode(std::span<const std::byte> bytes, Header* out);
bool decode(std::span<const std::byte> bytes, Description* out);

}  // namespace shmring::bridge::wire
