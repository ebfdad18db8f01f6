// BroadcastRing: one writer, any number of readers, each reader sees every record (or learns exactly
// how many it lost). Variable-size records (0 to max_record bytes) in a byte ring.
//
// Two modes, chosen at creation:
//  * lossy (default): the writer never waits. Readers (BroadcastReader::attach) keep their cursor in
//    their own process and never write the region, so they can map it read-only. A reader copies a
//    record out, then checks that the writer had not started to overwrite it (tail_intent, Aeron's
//    broadcast receiver): a record it returns is never torn. A reader that was lapped jumps to the
//    latest record, returns kLapped once, and counts the records it missed (lost_records()).
//  * lossless: readers register a cursor slot (BroadcastReader::register_reader; at most
//    max_readers, each slot in its own 128-byte block, tagged with the caller's token) and the
//    writer never overwrites what the slowest registered reader has not consumed: try_write returns
//    kFull instead. evict_reader() frees the slot of a dead or hopelessly slow reader.
//
// Region layout (see BroadcastControl): RingHeader | writer block | reader slots | data. A record is
// a 16-byte BroadcastRecordHeader {length, type, sequence} and its payload, padded to 8 bytes; a
// record that does not fit before the end is preceded by a padding record (an 8-byte {length, type}).
// Every access to the data area is an 8-byte atomic (release stores by the writer, acquire loads by
// readers), see detail/atomic_words.h.
//
// Threads and processes: one writer thread (one BroadcastRing handle writing) at a time; each
// reader has its own BroadcastReader, used by one thread at a time. evict_reader() and
// reader_slot() may be called from any handle, in any process, concurrently with the writer and
// the readers (slot changes are CASes).
// Blocking: nothing waits, sleeps or makes a system call; try_write() and try_read() finish in a
// bounded number of steps (the lossless writer scans at most max_readers slots).
// Memory ordering: a record a reader returns happens-after the try_write() or commit() that wrote
// it: every byte of it is visible and it was not overwritten while copied (SYNC(bcast_data),
// SYNC(bcast_tail)).
// Lossless: a reader's consumption of a record happens-before the writer overwrites its space
// (release store of the reader slot position, acquire load by the writer).
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <type_traits>

#include "absl/status/statusor.h"
#include "shmring/core/layout.h"
#include "shmring/queue/detail/atomic_words.h"
#include "shmring/queue/ring_header.h"
#include "shmring/queue/ring_result.h"

namespace shmring {

inline constexpr std::uint32_t kBroadcastLossless = 1;   // RingHeader::flags
inline constexpr std::uint32_t kMaxBroadcastReaders = 1024;
// Reader slot owner values that are not tokens.
inline constexpr std::uint64_t kReaderSlotFree = 0;
inline constexpr std::uint64_t kReaderSlotReclaiming = ~std::uint64_t{0};
// Reader slot position while the reader's start is not decided yet.
inline constexpr std::uint64_t kReaderJoining = ~std::uint64_t{0};

struct BroadcastRecordHeader {
  std::uint32_t length;    // payload bytes (kData); bytes after the first 8 up to the end (kPadding)
  std::uint32_t type;      // RecordType
  std::uint64_t sequence;  // kData: the record's number (consecutive); absent in padding
};
static_assert(std::is_standard_layout_v<BroadcastRecordHeader>);
static_assert(sizeof(BroadcastRecordHeader) == 16);
static_assert(offsetof(BroadcastRecordHeader, length) == 0);
static_assert(offsetof(BroadcastRecordHeader, type) == 4);
static_assert(offsetof(BroadcastRecordHeader, sequence) == 8);

// Written by the writer only.
struct alignas(kFalseSharingRange) BroadcastWriterBlock {
  std::atomic<std::uint64_t> tail_intent;    // end of the record being written (>= tail)
  std::atomic<std::uint64_t> tail;           // end of the last complete record
  std::atomic<std::uint64_t> latest;         // start of the last complete data record
  std::atomic<std::uint64_t> next_sequence;  // sequence of the next record
  std::uint8_t pad[kFalseSharingRange - 4 * sizeof(std::atomic<std::uint64_t>)];
};
static_assert(std::is_standard_layout_v<BroadcastWriterBlock>);
static_assert(sizeof(BroadcastWriterBlock) == 128);
static_assert(offsetof(BroadcastWriterBlock, tail_intent) == 0);
static_assert(offsetof(BroadcastWriterBlock, tail) == 8);
static_assert(offsetof(BroadcastWriterBlock, latest) == 16);
static_assert(offsetof(BroadcastWriterBlock, next_sequence) == 24);

// One lossless reader's cursor, written by that reader (and by the writer or an evictor only to
// settle a joining position or to free the slot).
struct alignas(kFalseSharingRange) BroadcastReaderSlot {
  std::atomic<std::uint64_t> owner;     // kReaderSlotFree, kReaderSlotReclaiming or the reader's token
  std::atomic<std::uint64_t> position;  // kReaderJoining, or the reader's next position
  std::uint8_t pad[kFalseSharingRange - 2 * sizeof(std::atomic<std::uint64_t>)];
};
static_assert(std::is_standard_layout_v<BroadcastReaderSlot>);
static_assert(sizeof(BroadcastReaderSlot) == 128);
static_assert(offsetof(BroadcastReaderSlot, owner) == 0);
static_assert(offsetof(BroadcastReaderSlot, position) == 8);

struct BroadcastControl {
  RingHeader header;
  BroadcastWriterBlock writer;
  // followed by max_readers BroadcastReaderSlot, then the data area
};
static_assert(std::is_standard_layout_v<BroadcastControl>);
static_assert(sizeof(BroadcastControl) == 256);
static_assert(offsetof(BroadcastControl, writer) == 128);

// Where a new lossy reader starts.
enum class BroadcastStart : std::uint8_t {
  kNext,    // with the next record written after attach
  kLatest,  // with the last record written before attach (if it is still there), then onwards
};

// The writer's handle (also the handle for evicting readers).
class BroadcastRing {
 public:
  struct Options {
    std::uint64_t capacity = 64 * 1024;  // data bytes: a power of two >= kMinCapacity
    std::uint64_t max_record = 0;        // 0: the largest allowed, max_record_limit(capacity)
    bool lossless = false;
    std::uint32_t max_readers = 64;      // lossless only: reader slots (1 .. kMaxBroadcastReaders)
    // First position and first sequence (tests: 2^64 - 3 * capacity); a multiple of 8.
    std::uint64_t initial_position = 0;
  };
  // A view of one reader slot (racy).
  struct ReaderSlotView {
    std::uint64_t owner = kReaderSlotFree;
    std::uint64_t position = kReaderJoining;
  };

  static constexpr std::uint64_t kMinCapacity = 64;
  static constexpr std::uint64_t max_record_limit(std::uint64_t capacity) noexcept {
    const std::uint64_t half = capacity / 2;
    const std::uint64_t limit =
        half > sizeof(BroadcastRecordHeader) ? half - sizeof(BroadcastRecordHeader) : 0;
    return limit < kMaxRecordLimit ? limit : kMaxRecordLimit;
  }

  static std::size_t required_bytes(const Options& options) noexcept;
  // Initialises a ring in `region`; kInvalidArgument for bad options or a null, misaligned or too
  // small region. Publishes the header last (release). Nobody may use the region meanwhile.
  static absl::StatusOr<BroadcastRing> create(void* region, std::size_t bytes, const Options& options);
  // Attaches as the writer (after the previous writer died: resumes at the published tail) or to
  // administer reader slots. Codes as in ring_header.h. Two live writers are a broken contract.
  static absl::StatusOr<BroadcastRing> attach(void* region, std::size_t bytes);

  BroadcastRing(BroadcastRing&&) noexcept = default;
  BroadcastRing& operator=(BroadcastRing&&) noexcept = default;
  BroadcastRing(const BroadcastRing&) = delete;
  BroadcastRing& operator=(const BroadcastRing&) = delete;

  // What try_claim() hands out: on kOk, `buffer` is the record's payload, in place.
  struct Claim {
    RingResult result = RingResult::kFull;
    std::span<std::byte> buffer;
  };

  // Copies `record` in as the next record. kTooLarge (nothing changed); lossless only: kFull when
  // the slowest registered reader has not consumed the space (a reader slot holding a position
  // no live reader can have is reset to the writer's tail, and that reader is told kEvicted);
  // kBusy while a claim is out.
  RingResult try_write(std::span<const std::byte> record) noexcept;

  // Zero-copy write: reserves a record of up to `max_bytes` payload bytes and hands out its payload
  // buffer, in place (contiguous, 8-byte aligned). Results as try_write() (kBusy while another
  // claim is out). Readers see nothing of it before commit(); abort() drops it.
  // Lossy rings: the claimed space may still hold old records a lapped reader is copying. The
  // claim announces itself first (tail_intent, then a release fence), so such a reader rejects
  // its copy; the caller's stores into the buffer are plain stores, which makes this a seqlock-style
  // race with lapped readers in other processes (see docs/memory-ordering.md, bcast_claim).
  Claim try_claim(std::size_t max_bytes) noexcept;
  // Publishes the claim as a record of `bytes` (<= the claimed size) payload bytes. kOk; kTooLarge
  // (bytes > claimed: the claim is kept); kBusy (no claim out). Release: every byte written into
  // the buffer is visible to a reader that receives the record.
  RingResult commit(std::size_t bytes) noexcept;
  // Drops the claim; readers never see it (old records in its space count as overwritten).
  void abort() noexcept { w_.claimed = false; }
  bool has_claim() const noexcept { return w_.claimed; }

  // Frees reader slot `index` if it still holds `token` (kOk), else kBusy. The reader, if alive,
  // gets kEvicted; whatever it reads afterwards is still validated.
  RingResult evict_reader(std::uint32_t index, std::uint64_t token) noexcept;
  // Racy view of slot `index` (< max_readers()).
  ReaderSlotView reader_slot(std::uint32_t index) const noexcept;

  // Writer only: marks the ring closed (release; readers see closed() after every earlier record).
  void close() noexcept;

  std::uint64_t capacity() const noexcept { return cfg_.capacity; }
  std::uint64_t max_record() const noexcept { return cfg_.max_record; }
  bool lossless() const noexcept { return cfg_.max_readers > 0; }
  std::uint32_t max_readers() const noexcept { return cfg_.max_readers; }
  std::uint64_t tail_position() const noexcept { return w_.tail; }
  std::uint64_t next_sequence() const noexcept { return w_.sequence; }

 private:
  struct Config {
    BroadcastControl* control = nullptr;
    BroadcastReaderSlot* slots = nullptr;
    std::byte* data = nullptr;
    std::uint64_t capacity = 0;
    std::uint64_t mask = 0;
    std::uint64_t max_record = 0;
    std::uint32_t max_readers = 0;
  };
  struct WriterState {
    std::uint64_t tail = 0;
    std::uint64_t sequence = 0;
    std::uint64_t limit = 0;  // lossless: the writer may write up to here without looking at readers
    // The highest tail_intent announced: a claim committed short (or aborted) may have scribbled
    // up to its claimed end, so tail_intent never goes below it again.
    std::uint64_t intent_floor = 0;
    bool claimed = false;
    std::uint64_t claim_bytes = 0;    // payload bytes claimed
    std::uint64_t claim_padding = 0;  // padding bytes before the claimed record
  };
  BroadcastRing() = default;
  RingResult refresh_limit(std::uint64_t needed_tail) noexcept;
  // Announces that the writer is about to overwrite everything up to `new_tail` (SYNC(bcast_data)).
  void announce(std::uint64_t new_tail) noexcept;
  // Writes the padding record (if any) and the header of the record at w_.tail (payload `length`
  // bytes at data index `index`), then publishes it: the last step of try_write() and commit().
  void publish_record(std::uint64_t padding, std::uint64_t index, std::uint64_t length,
                      std::uint64_t new_tail) noexcept;

  Config cfg_;
  WriterState w_;
};

// A reader's handle: lossy (attach) or lossless (register_reader).
class BroadcastReader {
 public:
  // Lossy reader over a region it may only read (a read-only mapping is fine: nothing is written).
  // Codes as in ring_header.h. Also works on a lossless ring, but such a reader does not hold the
  // writer back and can be lapped.
  static absl::StatusOr<BroadcastReader> attach(const void* region, std::size_t bytes,
                                                BroadcastStart start = BroadcastStart::kNext);
  // Lossless reader: claims a free reader slot for `token` (any value but 0 and ~0; the transport
  // uses it to tell whose slot it is, e.g. a peer id and an epoch) and starts at the next record.
  // kFailedPrecondition on a lossy ring, kResourceExhausted when every slot is taken.
  static absl::StatusOr<BroadcastReader> register_reader(void* region, std::size_t bytes,
                                                         std::uint64_t token);

  BroadcastReader(BroadcastReader&&) noexcept = default;
  BroadcastReader& operator=(BroadcastReader&&) noexcept = default;
  BroadcastReader(const BroadcastReader&) = delete;
  BroadcastReader& operator=(const BroadcastReader&) = delete;

  // Copies the next record into `out` and sets *bytes. kOk, kEmpty, kLapped (jumped ahead; see
  // lost_records()), kCorrupt, kEvicted; kTooLarge when the record is longer than `out`: nothing is
  // consumed and *bytes is set to the length needed (retry with a larger buffer). kBusy while a
  // view is out.
  RingResult try_read(std::span<std::byte> out, std::size_t* bytes) noexcept;

  // Zero-copy read: the next record, in place (a span into the ring), until finish_view(). kOk,
  // kEmpty, kLapped, kCorrupt, kEvicted as try_read() (no kTooLarge). One view at a time; no
  // try_read() while a view is out (kBusy).
  // Lossless: the writer does not overwrite the record before finish_view() (it is consumed then).
  // Lossy: the writer never waits, so a lapped view can be overwritten while it is read: only
  // finish_view() tells whether what was read was intact.
  RingResult try_view(std::span<const std::byte>* record) noexcept;
  // Ends the view. kOk: the record was intact until now (lossy: validated after the caller's
  // reads, SYNC(bcast_view)) and is consumed. kLapped (lossy): the writer overwrote it meanwhile;
  // what was read is unreliable and the record counts in lost_records(). kEvicted (lossless): the
  // slot was evicted meanwhile, so the record may have been overwritten. kOk when no view is out.
  RingResult finish_view() noexcept;
  bool has_view() const noexcept { return view_open_; }

  // Records the writer published that this reader skipped after being lapped. Exact: counted from
  // the sequence numbers when the reader next receives a record, against the sequence the reader
  // was due to see since it attached (learnt at attach from the record before its start; in the
  // rare case that record was overwritten during attach, losses before the first record received
  // are not counted).
  std::uint64_t lost_records() const noexcept { return lost_; }
  // The sequence number the next record returned should carry: the last one returned plus 1
  // (sequence numbers are consecutive per ring, continued by a writer that takes over).
  // Meaningful once a record has been returned.
  std::uint64_t next_sequence() const noexcept { return next_sequence_; }
  // Whether next_sequence() is known: after a record was returned, and right after attaching
  // when the start was settled (an empty ring, or the record just before the start was read).
  bool knows_next_sequence() const noexcept { return have_sequence_; }
  std::uint64_t lapped_count() const noexcept { return lapped_; }
  // Lossless: gives the slot back (also done by nobody else: call it before exiting); afterwards
  // try_read() returns kEvicted. Lossy: no-op.
  void unregister() noexcept;
  // Lossy readers: after kCorrupt, skip to the writer's tail (what was skipped is not counted).
  void resync() noexcept;

  std::uint64_t max_record() const noexcept { return cfg_.max_record; }
  std::uint64_t position() const noexcept { return cursor_; }
  // The writer's tail as published (racy, relaxed): what a tool compares positions with for lag.
  std::uint64_t writer_tail_approx() const noexcept;
  bool lossless() const noexcept { return slot_ != nullptr; }
  std::uint32_t slot_index() const noexcept { return slot_index_; }
  bool closed() const noexcept;

 private:
  struct Config {
    const BroadcastControl* control = nullptr;
    const std::byte* data = nullptr;
    std::uint64_t capacity = 0;
    std::uint64_t mask = 0;
    std::uint64_t max_record = 0;
  };
  BroadcastReader() = default;
  RingResult lapped() noexcept;
  // Finds the next data record (after at most one padding record), calls copy(payload, length)
  // for it before validating it (false: it does not fit, kTooLarge, not consumed), checks its
  // sequence number and moves the cursor past it. *start: where it begins; *length: its length
  // (also for kTooLarge). Results as try_read().
  template <typename Copy>
  RingResult next_record(Copy&& copy, std::uint64_t* start, std::uint32_t* length) noexcept;
  // Checks the sequence number of the record about to be returned (a gap is loss only right after
  // a lap) and remembers the next one. False: the sequence is impossible (kCorrupt).
  bool accept_sequence(std::uint64_t sequence) noexcept;
  // Lossless: stores cursor_ in the slot (release, SYNC(bcast_reader_pos)). False if the slot was
  // taken from this reader (then evicted_ is set).
  bool publish_cursor() noexcept;
  // Sets next_sequence_ for a reader starting at `position`, from the record that ends there;
  // returns that record's start (or `position` when there is none or it is unknown).
  std::uint64_t establish_baseline(std::uint64_t position, std::uint64_t initial_position) noexcept;

  Config cfg_;
  BroadcastReaderSlot* slot_ = nullptr;  // lossless only
  std::uint32_t slot_index_ = 0;
  std::uint64_t token_ = 0;
  std::uint64_t published_ = 0;  // lossless: last position stored in the slot
  std::uint64_t cursor_ = 0;
  std::uint64_t next_sequence_ = 0;
  bool have_sequence_ = false;
  bool jumped_ = false;  // moved ahead after a lap; the next record's sequence tells the loss
  bool evicted_ = false;
  bool view_open_ = false;
  std::uint64_t view_start_ = 0;  // start of the viewed record
  std::uint64_t lost_ = 0;
  std::uint64_t lapped_ = 0;
};

// --- Inline hot path ------------------------------------------------------------------------------

inline RingResult BroadcastRing::try_write(std::span<const std::byte> record) noexcept {
  if (w_.claimed) return RingResult::kBusy;  // the claim's space comes first
  if (record.size() > cfg_.max_record) return RingResult::kTooLarge;
  const std::uint64_t size =
      align_up(sizeof(BroadcastRecordHeader) + record.size(), kRecordAlignment);
  const std::uint64_t pos = w_.tail;
  const std::uint64_t index = pos & cfg_.mask;
  const std::uint64_t to_end = cfg_.capacity - index;
  const std::uint64_t padding = size <= to_end ? 0 : to_end;
  const std::uint64_t new_tail = pos + padding + size;
  if (cfg_.max_readers > 0 && static_cast<std::int64_t>(new_tail - w_.limit) > 0) {
    const RingResult r = refresh_limit(new_tail);
    if (r != RingResult::kOk) return r;
  }
  announce(new_tail);
  const std::uint64_t record_index = padding != 0 ? 0 : index;
  // SYNC(bcast_data): release stores of the payload words (see announce()).
  detail::copy_words_release(cfg_.data + record_index + sizeof(BroadcastRecordHeader), record.data(),
                             record.size());
  publish_record(padding, record_index, record.size(), new_tail);
  return RingResult::kOk;
}

inline void BroadcastRing::announce(std::uint64_t new_tail) noexcept {
  const std::uint64_t intent =
      static_cast<std::int64_t>(new_tail - w_.intent_floor) > 0 ? new_tail : w_.intent_floor;
  w_.intent_floor = intent;
  // SYNC(bcast_data): ordered before the data stores that follow by their release (try_write(),
  // publish_record()); a reader's acquire load that sees one of them also sees this tail_intent,
  // so its validation detects the overwrite.
  cfg_.control->writer.tail_intent.store(intent, std::memory_order_relaxed);
}

inline void BroadcastRing::publish_record(std::uint64_t padding, std::uint64_t index,
                                          std::uint64_t length, std::uint64_t new_tail) noexcept {
  BroadcastWriterBlock& block = cfg_.control->writer;
  const std::uint64_t pos = w_.tail;
  if (padding != 0) {
    detail::store_word_release(
        cfg_.data + (pos & cfg_.mask),
        (std::uint64_t{static_cast<std::uint32_t>(RecordType::kPadding)} << 32) | (padding - 8));
  }
  // SYNC(bcast_data): release stores of the header words.
  detail::store_word_release(cfg_.data + index,
                             (std::uint64_t{static_cast<std::uint32_t>(RecordType::kData)} << 32) |
                                 length);
  detail::store_word_release(cfg_.data + index + 8, w_.sequence);
  ++w_.sequence;
  w_.tail = new_tail;
  block.next_sequence.store(w_.sequence, std::memory_order_relaxed);
  // SYNC(bcast_latest): the release a reader's acquire of latest pairs with.
  block.latest.store(pos + padding, std::memory_order_release);
  // SYNC(bcast_tail): publishes the record; pairs with the readers' acquire of tail.
  block.tail.store(new_tail, std::memory_order_release);
}

template <typename Copy>
inline RingResult BroadcastReader::next_record(Copy&& copy, std::uint64_t* start,
                                               std::uint32_t* length_out) noexcept {
  const BroadcastWriterBlock& block = cfg_.control->writer;
  for (int step = 0; step < 2; ++step) {  // at most one padding record, then the record
    // SYNC(bcast_tail): pairs with the release store of tail in publish_record(); the records
    // before it were complete when it was stored.
    const std::uint64_t tail = block.tail.load(std::memory_order_acquire);
    if (tail == cursor_) return RingResult::kEmpty;
    const std::uint64_t available = tail - cursor_;
    if (available > cfg_.capacity) {
      // Behind by more than the ring (lapped) or ahead of the writer (corrupt).
      return static_cast<std::int64_t>(available) > 0 ? lapped() : RingResult::kCorrupt;
    }
    const std::uint64_t index = cursor_ & cfg_.mask;
    const std::uint64_t to_end = cfg_.capacity - index;
    // SYNC(bcast_data): acquire loads of the data words pair with the writer's release stores.
    const std::uint64_t word0 = detail::load_word_acquire(cfg_.data + index);
    const auto length = static_cast<std::uint32_t>(word0);
    const auto type = static_cast<std::uint32_t>(word0 >> 32);
    bool sane = false;
    bool fits = true;
    std::uint64_t size = 0;
    std::uint64_t sequence = 0;
    if (type == static_cast<std::uint32_t>(RecordType::kPadding)) {
      sane = length == to_end - 8 && to_end < available;
      size = to_end;
    } else if (type == static_cast<std::uint32_t>(RecordType::kData) && length <= cfg_.max_record) {
      size = align_up(sizeof(BroadcastRecordHeader) + length, kRecordAlignment);
      sane = size <= to_end && size <= available;
      if (sane) {
        sequence = detail::load_word_acquire(cfg_.data + index + 8);
        fits = copy(cfg_.data + index + sizeof(BroadcastRecordHeader), length);
      }
    }
    // Validate after the loads: had the writer begun to overwrite any byte we loaded, our acquire
    // loads would make its tail_intent (stored before those bytes) visible here (SYNC(bcast_data)).
    const std::uint64_t intent = block.tail_intent.load(std::memory_order_acquire);
    if (intent - cursor_ > cfg_.capacity) return lapped();
    if (!sane) return RingResult::kCorrupt;
    if (type == static_cast<std::uint32_t>(RecordType::kPadding)) {
      cursor_ += size;
      continue;
    }
    *length_out = length;
    if (!fits) return RingResult::kTooLarge;  // not consumed
    if (!accept_sequence(sequence)) return RingResult::kCorrupt;
    *start = cursor_;
    cursor_ += size;
    return RingResult::kOk;
  }
  return RingResult::kCorrupt;  // padding after padding
}

inline RingResult BroadcastReader::try_read(std::span<std::byte> out, std::size_t* bytes) noexcept {
  if (evicted_) return RingResult::kEvicted;
  if (view_open_) return RingResult::kBusy;
  std::uint64_t start = 0;
  std::uint32_t length = 0;
  const RingResult r = next_record(
      [&](const std::byte* payload, std::uint32_t n) {
        if (n > out.size()) return false;
        detail::copy_words_acquire(out.data(), payload, n);
        return true;
      },
      &start, &length);
  if (r == RingResult::kOk || r == RingResult::kTooLarge) *bytes = length;
  // The record is intact (validated) even if the slot was taken meanwhile: the next call then
  // reports kEvicted.
  if (r == RingResult::kOk && slot_ != nullptr) publish_cursor();
  return r;
}

inline bool BroadcastReader::accept_sequence(std::uint64_t sequence) noexcept {
  if (have_sequence_ && sequence != next_sequence_) {
    // Only a jump after a lap skips sequence numbers; the gap is what was lost.
    const std::uint64_t gap = sequence - next_sequence_;
    if (!jumped_ || gap >= (std::uint64_t{1} << 62)) return false;
    lost_ += gap;
  }
  jumped_ = false;
  have_sequence_ = true;
  next_sequence_ = sequence + 1;
  return true;
}

inline bool BroadcastReader::publish_cursor() noexcept {
  std::uint64_t expected = published_;
  // SYNC(bcast_reader_pos): release: this reader is done with the bytes before cursor_; pairs
  // with the writer's acquire of the slot position in refresh_limit().
  if (slot_->position.compare_exchange_strong(expected, cursor_, std::memory_order_release,
                                              std::memory_order_relaxed)) {
    published_ = cursor_;
    return true;
  }
  evicted_ = true;
  return false;
}

}  // namespace shmring
