// Helpers shared by the ring tests: aligned heap regions, shared anonymous mappings, records that
// carry (writer, sequence, checksum) so a reader can tell loss, duplication, reordering and tearing.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "shmring/queue/ring_header.h"

namespace shmring::testing {

// Heap memory aligned for a ring region, zero-filled.
class HeapRegion {
 public:
  explicit HeapRegion(std::size_t bytes)
      : bytes_(bytes), data_(std::aligned_alloc(kRegionAlignment, align_up(bytes == 0 ? 1 : bytes,
                                                                           kRegionAlignment))) {
    std::memset(data_, 0, align_up(bytes == 0 ? 1 : bytes, kRegionAlignment));
  }
  ~HeapRegion() { std::free(data_); }
  HeapRegion(const HeapRegion&) = delete;
  HeapRegion& operator=(const HeapRegion&) = delete;
  void* data() const { return data_; }
  std::byte* bytes() const { return static_cast<std::byte*>(data_); }
  std::size_t size() const { return bytes_; }
  std::vector<std::byte> snapshot() const { return {bytes(), bytes() + bytes_}; }

 private:
  std::size_t bytes_;
  void* data_;
};

// MAP_SHARED | MAP_ANONYMOUS memory: shared with children forked after it is made.
class SharedAnonymousRegion {
 public:
  explicit SharedAnonymousRegion(std::size_t bytes) : bytes_(bytes) {
    data_ = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (data_ == MAP_FAILED) data_ = nullptr;
  }
  ~SharedAnonymousRegion() {
    if (data_ != nullptr) munmap(data_, bytes_);
  }
  SharedAnonymousRegion(const SharedAnonymousRegion&) = delete;
  SharedAnonymousRegion& operator=(const SharedAnonymousRegion&) = delete;
  void* data() const { return data_; }
  std::size_t size() const { return bytes_; }

 private:
  std::size_t bytes_;
  void* data_ = nullptr;
};

// FNV-1a, 64-bit.
inline std::uint64_t checksum(std::span<const std::byte> bytes) {
  std::uint64_t h = 1469598103934665603ULL;
  for (std::byte b : bytes) {
    h ^= static_cast<std::uint8_t>(b);
    h *= 1099511628211ULL;
  }
  return h;
}

// A test record: [writer u32][length u32][sequence u64][checksum u64][filler...]; the checksum
// covers the first 16 bytes and the filler. At least kMinTestRecord bytes.
inline constexpr std::size_t kMinTestRecord = 24;

inline std::size_t test_record_size(std::uint64_t sequence, std::size_t max_size) {
  // Deterministic, varied lengths in [kMinTestRecord, max_size].
  const std::uint64_t x = (sequence * 0x9E3779B97F4A7C15ULL) >> 40;
  return kMinTestRecord + static_cast<std::size_t>(x % (max_size - kMinTestRecord + 1));
}

inline void fill_test_record(std::span<std::byte> out, std::uint32_t writer, std::uint64_t sequence) {
  const auto length = static_cast<std::uint32_t>(out.size());
  std::memcpy(out.data(), &writer, 4);
  std::memcpy(out.data() + 4, &length, 4);
  std::memcpy(out.data() + 8, &sequence, 8);
  for (std::size_t i = kMinTestRecord; i < out.size(); ++i) {
    out[i] = static_cast<std::byte>((sequence + i * 31 + writer) & 0xFF);
  }
  std::uint64_t sum = checksum(out.first(16));
  if (out.size() > kMinTestRecord) sum ^= checksum(out.subspan(kMinTestRecord));
  std::memcpy(out.data() + 16, &sum, 8);
}

struct DecodedRecord {
  bool valid = false;
  std::uint32_t writer = 0;
  std::uint64_t sequence = 0;
};

inline DecodedRecord decode_test_record(std::span<const std::byte> in) {
  DecodedRecord r;
  if (in.size() < kMinTestRecord) return r;
  std::uint32_t length = 0;
  std::uint64_t sum = 0;
  std::memcpy(&r.writer, in.data(), 4);
  std::memcpy(&length, in.data() + 4, 4);
  std::memcpy(&r.sequence, in.data() + 8, 8);
  std::memcpy(&sum, in.data() + 16, 8);
  std::uint64_t expect = checksum(in.first(16));
  if (in.size() > kMinTestRecord) expect ^= checksum(in.subspan(kMinTestRecord));
  r.valid = length == in.size() && sum == expect;
  return r;
}

// Scale for record counts: sanitizer builds define SHMRING_TEST_SLOW; SHMRING_TEST_SCALE (a
// percentage) overrides.
inline std::uint64_t scaled(std::uint64_t plain_count) {
  if (const char* env = std::getenv("SHMRING_TEST_SCALE")) {
    return plain_count * std::strtoull(env, nullptr, 10) / 100;
  }
#ifdef SHMRING_TEST_SLOW
  return plain_count / 50;
#else
  return plain_count;
#endif
}

inline std::span<const std::byte> bytes_of(const std::string& s) {
  return std::as_bytes(std::span<const char>(s.data(), s.size()));
}

}  // namespace shmring::testing
