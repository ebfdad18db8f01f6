// SpscRing: one writer, one reader, variable-size records (0 to max_record bytes) in a byte ring.
//
// Region layout (see SpscControl): RingHeader | write_pos block | read_pos block | data.
// A record is an 8-byte SpscRecordHeader {length, tag} and its payload, padded to 8 bytes. Records
// never straddle the end of the data area: a record that does not fit in what is left before the end
// is preceded by a padding record that fills it.
//
// Publication (layout version 3): the record header itself is the publication point. The writer
// writes the payload, stores 0 into the header word of the *next* record (so that what the reader
// finds there later is either 0 or that record's real header, never bytes of an older lap), then
// release-stores the header word. The tag in the header encodes the record's position and its type
// (record_tag()), so a header left from another lap or position (< 8 GiB away) never matches. The
// reader polls the header word at its own position (acquire): 0 is "not yet written", a header with
// the expected tag is a record, anything else is kCorrupt. The reader never loads write_pos on the
// data path; the writer still stores it (attach, size_approx, inspection). The writer keeps one
// 8-byte word free (the next header word), so a record fits only if it leaves 8 bytes before the
// reader's position. See docs/rings.md.
//
// Threads and processes: one thread (in any process) writes, one reads. The same handle may be used
// by the writer thread and the reader thread at once (their local state lives in separate 128-byte
// blocks); a process that only writes or only reads attaches its own handle. A second writer or
// reader is a broken contract, not a status.
//
// Blocking: nothing here waits, sleeps or makes a system call; every call is wait-free (a bounded
// number of steps). Waiting for room or for data is the caller's business.
// Memory ordering: a record the reader is handed happens-after the writer's commit() (or
// try_write()): every payload byte written before it is visible (SYNC(spsc_record)). Everything
// the reader did with a record before read()/try_read() returned happens-before the writer reuses
// its space (release store of read_pos, acquire load by the writer: SYNC(spsc_read_pos)).
// create/attach errors are absl codes (see ring_header.h); data-path results are RingResult.
//
// Hostile memory: the reader trusts nothing it loads from the region. Its own position is kept
// locally; every record header is checked (tag for this position and type, length <= max_record,
// fits before the end, padding exactly to the end, at most `capacity` bytes per batch); a failed
// check returns kCorrupt and hands out nothing more. The writer checks the reader's position (at most
// `capacity` behind, aligned). Neither ever touches memory outside the region.
#pragma once

#include <atomic>
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

// The header of one record in an SPSC ring: one 8-byte word, loaded and stored as a whole
// (std::atomic_ref<std::uint64_t>); `length` is its low half, `tag` its high half.
struct SpscRecordHeader {
  std::uint32_t length;  // payload bytes (kData), or bytes after this header up to the end (kPadding)
  std::uint32_t tag;     // SpscRing::record_tag(position, type): bits 3..32 of the position, type
};
static_assert(std::is_standard_layout_v<SpscRecordHeader>);
static_assert(sizeof(SpscRecordHeader) == 8);
static_assert(offsetof(SpscRecordHeader, length) == 0);
static_assert(offsetof(SpscRecordHeader, tag) == 4);
static_assert(std::atomic_ref<std::uint64_t>::required_alignment == 8);
static_assert(std::atomic_ref<std::uint64_t>::is_always_lock_free);

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
  // takes at most half the ring, which guarantees that a record (with the padding before it and the
  // 8-byte word kept free after it) always fits once the reader caught up, wherever the positions are.
  static constexpr std::uint64_t max_record_limit(std::uint64_t capacity) noexcept {
    const std::uint64_t half = capacity / 2;
    const std::uint64_t limit = half > sizeof(SpscRecordHeader) ? half - sizeof(SpscRecordHeader) : 0;
    return limit < kMaxRecordLimit ? limit : kMaxRecordLimit;
  }

  // The tag of the record header at `position` (record format of layout version 3): bits 3..32 of
  // the position in bits 2..31, the RecordType in bits 0..1. Never 0, so a zeroed word is never a
  // header; a header of another lap or position does not match (up to 8 GiB apart).
  static constexpr std::uint32_t record_tag(std::uint64_t position, RecordType type) noexcept {
    return (static_cast<std::uint32_t>(position >> 3) << 2) | static_cast<std::uint32_t>(type);
  }
  // The header word (as loaded and stored) of a record at `position`.
  static constexpr std::uint64_t header_word(std::uint64_t position, std::uint64_t length,
                                             RecordType type) noexcept {
    return (std::uint64_t{record_tag(position, type)} << 32) | (length & 0xFFFFFFFFu);
  }

  // Bytes of region a ring with these options needs (control area + data area); 0 if capacity
  // exceeds kMaxCapacity (other bad options are left for create() to refuse).
  static std::size_t required_bytes(const Options& options) noexcept;

  // Initialises a ring in `region` (aligned to kRegionAlignment, at least required_bytes()) and
  // returns a handle. kInvalidArgument for bad options or a region too small or misaligned.
  // Publishes the header last (release), so attach() in another process sees a complete ring.
  // Nobody may use the region during create().
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
  // Writer only. Release: a reader that sees closed() and then finds the ring empty has seen every
  // record committed before close().
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
  // Any thread (acquire load).
  bool closed() const noexcept;

  // --- Inspection ---------------------------------------------------------------------------------
  std::uint64_t capacity() const noexcept { return cfg_.capacity; }
  std::uint64_t max_record() const noexcept { return cfg_.max_record; }
  // Bytes in use (records and padding), racy: from the shared write_pos and read_pos, so either
  // side (or a third process) may call it.
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
    std::uint64_t pos = 0;         // next record's position (write_pos is a copy of it)
    std::uint64_t read_cache = 0;  // last read_pos seen
    std::uint64_t claim_pos = 0;   // position of the claimed record's header (after any padding)
    std::uint64_t claim_padding = 0;
    std::size_t claim_bytes = 0;
    bool claimed = false;
  };
  struct alignas(kFalseSharingRange) ReaderState {
    std::uint64_t pos = 0;  // next record to read (read_pos is a copy of it)
  };

  SpscRing() = default;
  static constexpr std::uint64_t kHeaderBytes = sizeof(SpscRecordHeader);
  static constexpr std::uint64_t kCacheLine = 64;
  static constexpr std::uint64_t record_size(std::uint64_t payload) noexcept {
    return align_up(kHeaderBytes + payload, kRecordAlignment);
  }
  std::atomic_ref<std::uint64_t> header_at(std::uint64_t position) const noexcept {
    return std::atomic_ref<std::uint64_t>(
        *reinterpret_cast<std::uint64_t*>(cfg_.data + (position & cfg_.mask)));
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
  const std::uint64_t index = pos & cfg_.mask;
  const std::uint64_t to_end = cfg_.capacity - index;
  const std::uint64_t padding = size <= to_end ? 0 : to_end;
  // The record, the padding before it, and the next header word (which commit() zeroes).
  const std::uint64_t needed = padding + size + kHeaderBytes;
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
  w_.claim_padding = padding;
  w_.claim_pos = pos + padding;
  w_.claim_bytes = bytes;
  w_.claimed = true;
  return {RingResult::kOk, std::span<std::byte>(
                               cfg_.data + (w_.claim_pos & cfg_.mask) + kHeaderBytes, bytes)};
}

inline void SpscRing::commit(std::size_t bytes) noexcept {
  assert(w_.claimed && bytes <= w_.claim_bytes && "SpscRing: commit without a claim, or too long");
  if (bytes > w_.claim_bytes) bytes = w_.claim_bytes;
  const std::uint64_t pos = w_.claim_pos;
  const std::uint64_t next = pos + record_size(bytes);
  // The next header word: whatever an older lap left there (payload bytes included) becomes 0 before
  // the reader can reach it. try_claim() kept it free. Ordered before the reader's load by the
  // release below (SYNC(spsc_record)).
  header_at(next).store(0, std::memory_order_relaxed);
  // Publishes the payload and the zeroed next header word (SYNC(spsc_record)).
  header_at(pos).store(header_word(pos, bytes, RecordType::kData), std::memory_order_release);
  if (w_.claim_padding != 0) {
    // The padding last: the reader reaches the record only through it, so it finds the record
    // already published (SYNC(spsc_record)).
    const std::uint64_t padding_pos = pos - w_.claim_padding;
    header_at(padding_pos)
        .store(header_word(padding_pos, w_.claim_padding - kHeaderBytes, RecordType::kPadding),
               std::memory_order_release);
  }
  w_.pos = next;
  w_.claimed = false;
  // For attach() and inspection only; the reader does not wait on it (SYNC(spsc_write_pos)).
  cfg_.control->write_pos.value.store(next, std::memory_order_release);
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
  const std::uint64_t start = r_.pos;
  std::uint64_t pos = start;
  while (batch.records < limit) {
    // SYNC(spsc_record): pairs with the release store of the header word in SpscRing::commit(); the
    // payload and the zeroed next header word are visible.
    const std::uint64_t word = header_at(pos).load(std::memory_order_acquire);
    if (word == 0) {
      // Not written yet. Ask for the line after the header's line now: a record of more than a
      // few bytes continues there, and the writer fills it before it publishes the header, so
      // fetching it while waiting takes its transfer off the path from "header seen" to "record
      // handed out" (measured: 64-byte round trip 1.5x -> 1.1x the one-line floor). A hint only;
      // nothing is read through it.
      __builtin_prefetch(cfg_.data + ((((pos & cfg_.mask) | (kCacheLine - 1)) + 1) & cfg_.mask));
      break;
    }
    const std::uint64_t length = word & 0xFFFFFFFFu;
    const std::uint32_t tag = static_cast<std::uint32_t>(word >> 32);
    const std::uint64_t index = pos & cfg_.mask;
    const std::uint64_t to_end = cfg_.capacity - index;
    if (tag == record_tag(pos, RecordType::kPadding)) {
      if (length != to_end - kHeaderBytes || pos + to_end - start > cfg_.capacity) {
        batch.result = RingResult::kCorrupt;
        break;
      }
      pos += to_end;
      continue;
    }
    const std::uint64_t size = record_size(length);
    if (tag != record_tag(pos, RecordType::kData) || length > cfg_.max_record || size > to_end ||
        pos + size - start > cfg_.capacity) {
      batch.result = RingResult::kCorrupt;  // a stale header, another position's, or impossible
      break;
    }
    handler(std::span<const std::byte>(cfg_.data + index + kHeaderBytes, length));
    pos += size;
    ++batch.records;
  }
  if (batch.result != RingResult::kCorrupt) {
    batch.result = batch.records > 0 ? RingResult::kOk : RingResult::kEmpty;
  }
  if (pos != start) {
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
