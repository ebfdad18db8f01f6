#include "wire.h"

#include <bit>
#include <cstring>

namespace shmring::bridge::wire {
namespace {

// Little-endian field access (x86 and arm64 Linux are little-endian; memcpy keeps it portable
// across alignment, and the compiler makes it a plain load/store).
template <typename T>
void put(std::byte* at, T value) {
  static_assert(std::endian::native == std::endian::little);
  std::memcpy(at, &value, sizeof value);
}
template <typename T>
T get(const std::byte* at) {
  T value;
  std::memcpy(&value, at, sizeof value);
  return value;
}

}  // namespace

void encode(const Header& h, std::vector<std::byte>* out) {
  out->resize(kFixedBytes + h.name.size());
  std::byte* p = out->data();
  put<std::uint32_t>(p, kMagic);
  put<std::uint8_t>(p + 4, kVersion);
  put<std::uint8_t>(p + 5, static_cast<std::uint8_t>(h.type));
  put<std::uint8_t>(p + 6, h.flags);
  put<std::uint8_t>(p + 7, static_cast<std::uint8_t>(h.name.size()));
  put<std::uint64_t>(p + 8, h.origin);
  put<std::uint64_t>(p + 16, h.incarnation);
  put<std::uint64_t>(p + 24, h.sequence);
  put<std::uint64_t>(p + 32, h.value);
  std::memcpy(p + kFixedBytes, h.name.data(), h.name.size());
}

void encode(const Description& d, std::vector<std::byte>* out) {
  out->assign(kDescriptionBytes, std::byte{0});
  std::byte* p = out->data();
  put<std::uint32_t>(p, d.kind);
  put<std::uint32_t>(p + 4, d.lossless);
  put<std::uint64_t>(p + 8, d.capacity);
  put<std::uint64_t>(p + 16, d.max_message);
  put<std::uint32_t>(p + 24, d.max_peers);
  put<std::uint32_t>(p + 28, d.deadline_ms);
  put<std::uint64_t>(p + 32, d.history);
}

void put_record_header(std::byte* at, std::uint64_t sequence, std::uint32_t length) {
  put<std::uint64_t>(at, sequence);
  put<std::uint32_t>(at + 8, length);
}

bool next_record(std::span<const std::byte> payload, std::size_t* offset, TopicRecord* out) {
  if (*offset > payload.size() || payload.size() - *offset < kRecordHeader) return false;
  const std::byte* p = payload.data() + *offset;
  const std::uint64_t length = get<std::uint32_t>(p + 8);
  if (length > payload.size() - *offset - kRecordHeader) return false;
  out->sequence = get<std::uint64_t>(p);
  out->bytes = std::span<const std::byte>(p + kRecordHeader, static_cast<std::size_t>(length));
  *offset += kRecordHeader + static_cast<std::size_t>(length);
  return true;
}

std::string_view to_string(DecodeError e) {
  switch (e) {
    case DecodeError::kNone: return "none";
    case DecodeError::kShort: return "truncated header";
    case DecodeError::kBadMagic: return "wrong magic";
    case DecodeError::kBadVersion: return "unsupported version";
    case DecodeError::kBadType: return "unknown message type";
    case DecodeError::kBadName: return "bad channel name";
    case DecodeError::kBadLength: return "header length does not match";
  }
  return "unknown";
}

DecodeError decode(std::span<const std::byte> bytes, Header* out) {
  if (bytes.size() < kFixedBytes) return DecodeError::kShort;
  const std::byte* p = bytes.data();
  if (get<std::uint32_t>(p) != kMagic) return DecodeError::kBadMagic;
  if (get<std::uint8_t>(p + 4) != kVersion) return DecodeError::kBadVersion;
  const auto type = get<std::uint8_t>(p + 5);
  if (type < static_cast<std::uint8_t>(Type::kHello) || type > kLastType) {
    return DecodeError::kBadType;
  }
  const std::size_t name_length = get<std::uint8_t>(p + 7);
  if (name_length == 0 || name_length > kMaxName) return DecodeError::kBadName;
  if (bytes.size() != kFixedBytes + name_length) return DecodeError::kBadLength;
  out->type = static_cast<Type>(type);
  out->flags = get<std::uint8_t>(p + 6);
  out->origin = get<std::uint64_t>(p + 8);
  out->incarnation = get<std::uint64_t>(p + 16);
  out->sequence = get<std::uint64_t>(p + 24);
  out->value = get<std::uint64_t>(p + 32);
  out->name = std::string_view(reinterpret_cast<const char*>(p + kFixedBytes), name_length);
  return DecodeError::kNone;
}

bool decode(std::span<const std::byte> bytes, Description* out) {
  if (bytes.size() != kDescriptionBytes) return false;
  const std::byte* p = bytes.data();
  out->kind = get<std::uint32_t>(p);
  out->lossless = get<std::uint32_t>(p + 4);
  out->capacity = get<std::uint64_t>(p + 8);
  out->max_message = get<std::uint64_t>(p + 16);
  out->max_peers = get<std::uint32_t>(p + 24);
  out->deadline_ms = get<std::uint32_t>(p + 28);
  out->history = get<std::uint64_t>(p + 32);
  return true;
}

}  // namespace shmring::bridge::wire
