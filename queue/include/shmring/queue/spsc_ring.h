// SpscRing: one writer, one reader, variable-size records (0 to max_record bytes) in a byte ring.
//
// Region layout (see SpscControl): RingHeader | write_pos block | read_pos block | data.
// A record is an 8-byte SpscRecordHeader {length, type} and its payload, padded to 8 bytes. Records
// never straddle the end of the data area: a record that does not fit in what is left before the end
// is preceded by a padding record that fills it.
//
// Threads and processes: one thread (in any process) writes, one reads. The same handle may be used
// by the writer thread and the reader thread at once (their local state lives in separate 128-byte
// blocks); a process that only writes or only reads attaches its own handle. A second writer or
// reader is a broken contract, not a status.
//
// Hostile memory: the reader trusts nothing it loads from the region. Its own position is kept
// locally, the writer's position is checked (at most `capacity` ahead), every record header is
// checked (type, length <= max_record, fits before the end and inside what was published); a
// failed check returns kCorrupt and reads nothing. The writer checks the reader's position the same
// way. Neither ever touches memory outside the region.
#pragma once

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <type_traits>

#include "absl/status/statusor.h"
#include "shmring/core/layout.h"
#include "shmring/queue/ring_header.h"
#include "shmring/queue/ring_result.h"

namespace shmring {

// The header of one record in an SPSC ring.
struct SpscRecordHeader {
  std::uint32_t length;  // payload bytes (kData), or bytes after this header up to the end (kPadding)
  std::uint32_t type;    // RecordType
};
static_assert(std::is_standard_layout_v<SpscRecordHeader>);
static_assert(sizeof(SpscRecordHeader) == 8);
static_assert(offsetof(SpscRecordHeader, length) == 0);
static_assert(offsetof(SpscRecordHeader, type) == 4);

// The control area at the start of an SPSC region; the data area follows it.
struct SpscControl {
  RingHeader header;
  PaddedCounter write_pos;  // written by the writer only: end of the last committed record
  PaddedCounter read_pos;   // written by the reader only: end of the last consumed record
};
static_assert(std::is_standard_layout_v<SpscControl>);
static_assert(sizeof(SpscControl) == 384);
static_assert(offsetof(SpscControl, header) == 0);
static_assert(offsetof(SpscControl, write_pos) == 128);
static_assert(offsetof(SpscControl, read_pos) == 256);

class SpscRing {
 public:
  struct Options {
    // Bytes of the data area: a power of two, at least kMinCapacity.
    std::uint64_t capacity = 64 * 1024;
    // Largest payload; 0 picks the largest allowed, max_record_limit(capacity).
    std::uint64_t max_record = 0;
    // First position of both counters. For tests only (e.g. 2^64 - 3 * capacity to cross the wrap of
    // the 64-bit counters); a multiple of 8.
    std::uint64_t initial_position = 0;
  };

  // What try_claim() hands out: on kOk, `buffer` is the record's payload, in place.
  struct Claim {
    RingResult result = RingResult::kFull;
    std::span<std::byte> buffer;
  };

  static constexpr std::uint64_t kMinCapacity = 64;

  // The largest max_record a ring of `capacity` bytes accepts: a record (header + payload, padded)
  // takes at most half the ring, which guarantees that a record always fits once the reader caught
  // up, wherever the positions are.
  static constexpr std::uint64_t max_record_limit(std::uint64_t capacity) noexcept {
    const std::uint64_t half = capacity / 2;
    const std::uint64_t limit = half > sizeof(SpscRecordHeader) ? half - sizeof(SpscRecordHeader) : 0;
    return limit < kMaxRecordLimit ? limit : kMaxRecordLimit;
  }

  // Bytes of region a ring with these options needs (control area + data area).
  static std::size_t required_bytes(const Options& options) noexcept;

  // Initialises a ring in `region` (aligned to kRegionAlignment, at least required_bytes()) and
  // returns a handle. kInvalidArgument for bad options or a region too small or misaligned.
  static absl::StatusOr<SpscRing> create(void* region, std::size_t bytes, const Options& options);

  // Attaches to a ring another handle created (see ring_header.h for the codes).
  static absl::StatusOr<SpscRing> attach(void* region, std::size_t bytes);

  SpscRing(SpscRing&&) noexcept = default;
  SpscRing& operator=(SpscRing&&) noexcept = default;
  SpscRing(const SpscRing&) = delete;
  SpscRing& operator=(const SpscRing&) = delete;

  // --- Writer -------------------------------------------------------------------------------------
  // Copies `record` in as one record. kTooLarge (nothing changed) if it exceeds max_record(); kFull
  // if there is no room now; kCorrupt if the reader's position is impossible.
  RingResult try_write(std::span<const std::byte> record) noexcept;

  // Reserves a record of `bytes` payload bytes and hands out its buffer, in place. Nothing is visible
  // to the reader until commit(); abort() gives the space back. One claim at a time.
  Claim try_claim(std::size_t bytes) noexcept;
  // Publishes the claimed record with its full claimed size, or with `bytes` <= the claimed size.
  void commit() noexcept { commit(w_.claim_bytes); }
  void commit(std::size_t bytes) noexcept;
  // Drops the claim; the reader never sees it.
  void abort() noexcept { w_.claimed = false; }
  bool has_claim() const noexcept { return w_.claimed; }

  // Marks the ring closed (no more records); a reader drains what is there, then sees closed().
  void close() noexcept;

  // --- Reader -------------------------------------------------------------------------------------
  // Hands the next record to `handler(std::span<const std::byte>)`, in place, then consumes it. The
  // span is valid only during the call. kOk, kEmpty or kCorrupt.
  template <typename Handler>
  RingResult try_read(Handler&& handler) noexcept(noexcept(handler(std::span<const std::byte>{})));

  // Hands up to `limit` records to `handler`, in place, and consumes them all at the end (one
  // release of read_pos per batch).
  template <typename Handler>
  ReadBatch read(Handler&& handler, std::size_t limit = std::numeric_limits<std::size_t>::max())
      noexcept(noexcept(handler(std::span<const std::byte>{})));

  // True once the writer called close(); records committed before it are still readable.
  bool closed() const noexcept;

  // --- Inspection ---------------------------------------------------------------------------------
  std::uint64_t capacity() const noexcept { return cfg_.capacity; }
  std::uint64_t max_record() const noexcept { return cfg_.max_record; }
  // Bytes in use (records and padding), racy.
  std::uint64_t size_approx() const noexcept;
  // This handle's local positions (writer: next record; reader: next record to read).
  std::uint64_t write_position() const noexcept { return w_.pos; }
  std::uint64_t read_position() const noexcept { return r_.pos; }

 private:
  struct Config {
    SpscControl* control = nullptr;
    std::byte* data = nullptr;
    std::uint64_t capacity = 0;
    std::uint64_t mask = 0;
    std::uint64_t max_record = 0;
  };
  struct alignas(kFalseSharingRange) WriterState {
    std::uint64_t pos = 0;         // local copy of write_pos (only this side writes it)
    std::uint64_t read_cache = 0;  // last read_pos seen
    std::uint64_t claim_index = 0; // index of the claimed record's header
    std::uint64_t claim_padding = 0;
    std::size_t claim_bytes = 0;
    bool claimed = false;
  };
  struct alignas(kFalseSharingRange) ReaderState {
    std::uint64_t pos = 0;          // local copy of read_pos (only this side writes it)
    std::uint64_t write_cache = 0;  // last write_pos seen
  };

  SpscRing() = default;
  static constexpr std::uint64_t record_size(std::uint64_t payload) noexcept {
    return align_up(sizeof(SpscRecordHeader) + payload, kRecordAlignment);
  }

  alignas(kFalseSharingRange) Config cfg_;
  WriterState w_;
  ReaderState r_;
};

// --- Inline hot path ------------------------------------------------------------------------------

inline SpscRing::Claim SpscRing::try_claim(std::size_t bytes) noexcept {
  assert(!w_.claimed && "SpscRing: one claim at a time");
  if (bytes > cfg_.max_record) return {RingResult::kTooLarge, {}};
  const std::uint64_t size = record_size(bytes);
  const std::uint64_t pos = w_.pos;
  std::uint64_t index = pos & cfg_.mask;
  const std::uint64_t to_end = cfg_.capacity - index;
  const std::uint64_t needed = size <= to_end ? size : to_end + size;
  if ((pos - w_.read_cache) + needed > cfg_.capacity) {
    // SYNC(spsc_read_pos): pairs with the release store of read_pos in SpscRing::read(); the reader
    // is done with every byte before that position, so the writer may overwrite them.
    const std::uint64_t read = cfg_.control->read_pos.value.load(std::memory_order_acquire);
    if (pos - read > cfg_.capacity || (read & (kRecordAlignment - 1)) != 0) {
      return {RingResult::kCorrupt, {}};
    }
    w_.read_cache = read;
    if ((pos - read) + needed > cfg_.capacity) return {RingResult::kFull, {}};
  }
  w_.claim_padding = 0;
  if (size > to_end) {
    const SpscRecordHeader padding{static_cast<std::uint32_t>(to_end - sizeof(SpscRecordHeader)),
                                   static_cast<std::uint32_t>(RecordType::kPadding)};
    std::memcpy(cfg_.data + index, &padding, sizeof padding);
    w_.claim_padding = to_end;
    index = 0;
  }
  w_.claim_index = index;
  w_.claim_bytes = bytes;
  w_.claimed = true;
  return {RingResult::kOk,
          std::span<std::byte>(cfg_.data + index + sizeof(SpscRecordHeader), bytes)};
}

inline void SpscRing::commit(std::size_t bytes) noexcept {
  assert(w_.claimed && bytes <= w_.claim_bytes && "SpscRing: commit without a claim, or too long");
  if (bytes > w_.claim_bytes) bytes = w_.claim_bytes;
  const SpscRecordHeader header{static_cast<std::uint32_t>(bytes),
                                static_cast<std::uint32_t>(RecordType::kData)};
  std::memcpy(cfg_.data + w_.claim_index, &header, sizeof header);
  w_.pos += w_.claim_padding + record_size(bytes);
  w_.claimed = false;
  // Publishes the padding and record headers and the payload written before it (SYNC(spsc_write_pos)).
  cfg_.control->write_pos.value.store(w_.pos, std::memory_order_release);
}

inline RingResult SpscRing::try_write(std::span<const std::byte> record) noexcept {
  const Claim claim = try_claim(record.size());
  if (claim.result != RingResult::kOk) return claim.result;
  if (!record.empty()) std::memcpy(claim.buffer.data(), record.data(), record.size());
  commit(record.size());
  return RingResult::kOk;
}

template <typename Handler>
ReadBatch SpscRing::read(Handler&& handler, std::size_t limit)
    noexcept(noexcept(handler(std::span<const std::byte>{}))) {
  ReadBatch batch;
  std::uint64_t pos = r_.pos;
  while (batch.records < limit) {
    if (pos == r_.write_cache) {
      // SYNC(spsc_write_pos): pairs with the release store of write_pos in SpscRing::commit(); the
      // headers and payloads before that position are complete.
      r_.write_cache = cfg_.control->write_pos.value.load(std::memory_order_acquire);
      if (pos == r_.write_cache) break;
    }
    const std::uint64_t available = r_.write_cache - pos;
    const std::uint64_t index = pos & cfg_.mask;
    const std::uint64_t to_end = cfg_.capacity - index;
    if (available > cfg_.capacity || available < sizeof(SpscRecordHeader)) {
      batch.result = RingResult::kCorrupt;
      break;
    }
    SpscRecordHeader header;
    std::memcpy(&header, cfg_.data + index, sizeof header);
    if (header.type == static_cast<std::uint32_t>(RecordType::kPadding)) {
      if (header.length != to_end - sizeof(SpscRecordHeader) || to_end >= available) {
        batch.result = RingResult::kCorrupt;  // an honest writer publishes padding with its record
        break;
      }
      pos += to_end;
      continue;
    }
    const std::uint64_t size = record_size(header.length);
    if (header.type != static_cast<std::uint32_t>(RecordType::kData) ||
        header.length > cfg_.max_record || size > to_end || size > available) {
      batch.result = RingResult::kCorrupt;
      break;
    }
    handler(std::span<const std::byte>(cfg_.data + index + sizeof(SpscRecordHeader),
                                       header.length));
    pos += size;
    ++batch.records;
  }
  if (batch.result != RingResult::kCorrupt) {
    batch.result = batch.records > 0 ? RingResult::kOk : RingResult::kEmpty;
  }
  if (pos != r_.pos) {
    r_.pos = pos;
    // Hands the consumed bytes back to the writer (SYNC(spsc_read_pos)).
    cfg_.control->read_pos.value.store(pos, std::memory_order_release);
  }
  return batch;
}

template <typename Handler>
RingResult SpscRing::try_read(Handler&& handler)
    noexcept(noexcept(handler(std::span<const std::byte>{}))) {
  const ReadBatch batch = read(std::forward<Handler>(handler), 1);
  return batch.records == 1 ? RingResult::kOk : batch.result;
}

}  // namespace shmring
