// BroadcastReader: one subscriber of a broadcast ring (after Aeron's broadcast receiver). Each
// reader sees every record of every writer, in the ring's one order, or learns exactly how many it
// lost. Its delivery is its own choice:
//  * lossy (attach): never holds a writer back and never writes the region (a read-only mapping is
//    fine). It copies a record (or views it), then checks that no writer had begun to overwrite it
//    (intent, SYNC(bcast_intent) / SYNC(bcast_view)): what it returns is never torn. A lapped
//    reader jumps to the newest message, returns kLapped once and counts what it missed from the
//    sequence numbers (lost_records()).
//  * lossless (register_reader): takes a reader slot and publishes its position in it
//    (SYNC(bcast_reader_pos)); writers never overwrite what it has not read. It stores its
//    position every capacity/16 bytes and whenever it finds nothing to read, not per record.
//
// Where it starts (BroadcastStartAt): kLive, the first record not yet committed when it opened;
// kLatest, the newest record claimed before it opened, then onwards; kHistory{n}, the last n
// records, then onwards; kOldest, the oldest record the ring still holds. A start in the past is
// found through the anchors (broadcast_layout.h); history_missed() says how many of the records
// asked for were no longer there. A reader that opens before any record was written starts with
// the first one.
//
// A record whose writer died before committing it is skipped once the recovery lists it in the gap
// table (BroadcastPublishers::recover): the reader waits at it until then (kEmpty), and
// stalled_on_claim() tells the transport to run the recovery.
//
// Threads: one thread per reader. Nothing waits, sleeps or makes a system call. Hostile memory:
// every length, position and anchor read from the region is checked before it is followed; a
// region that does not add up gives kCorrupt, never a read outside the data area.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "absl/status/statusor.h"
#include "shmring/queue/broadcast_layout.h"
#include "shmring/queue/detail/atomic_words.h"
#include "shmring/queue/ring_result.h"

namespace shmring {

enum class BroadcastStart : std::uint8_t { kLive, kLatest, kHistory, kOldest };

// Where a reader starts; `count` is n for kHistory.
struct BroadcastStartAt {
  BroadcastStart mode = BroadcastStart::kLive;
  std::uint64_t count = 0;
};

// What a reader learns of each record besides its bytes.
struct BroadcastRecordInfo {
  std::size_t bytes = 0;                 // payload length (also for kTooLarge: the length needed)
  std::uint64_t sequence = 0;            // the topic sequence number
  std::uint32_t publisher = 0;           // the writer's id (BroadcastWriter::id)
  std::uint64_t publisher_sequence = 0;  // that writer's own count (0 for its first message)
};

class BroadcastReader {
 public:
  // Lossy reader over a region it may only read. Codes as BroadcastLayout::map.
  static absl::StatusOr<BroadcastReader> attach(const void* region, std::size_t bytes,
                                                BroadcastStartAt start = {});
  // Lossless reader: takes a free reader slot for `token` (any value but 0 and ~0). kInvalidArgument
  // for a bad token, kResourceExhausted when every slot is taken (or the ring has none).
  static absl::StatusOr<BroadcastReader> register_reader(void* region, std::size_t bytes,
                                                         std::uint64_t token, BroadcastStartAt start = {});

  BroadcastReader(BroadcastReader&&) noexcept = default;
  BroadcastReader& operator=(BroadcastReader&&) noexcept = default;
  BroadcastReader(const BroadcastReader&) = delete;
  BroadcastReader& operator=(const BroadcastReader&) = delete;

  // Copies the next record into `out`. kOk, kEmpty, kLapped (jumped ahead; see lost_records()),
  // kCorrupt, kEvicted; kTooLarge when the record is longer than `out` (nothing consumed;
  // info->bytes says how long it is); kBusy while a view is out. `info` may be null.
  RingResult try_read(std::span<std::byte> out, BroadcastRecordInfo* info) noexcept;
  // Zero-copy: the next record in place until finish_view(). Results as try_read (no kTooLarge).
  // Lossless: writers cannot overwrite it before finish_view(). Lossy: only finish_view() tells
  // whether what was read was intact.
  RingResult try_view(std::span<const std::byte>* record, BroadcastRecordInfo* info) noexcept;
  // Ends the view. kOk: it was intact until now and is consumed. kLapped (lossy, or lossless while
  // reading history from before it registered): a writer overwrote it meanwhile; discard what was
  // read (counted in lost_records() or history_missed()). kEvicted (lossless). kOk with no view.
  RingResult finish_view() noexcept;
  bool has_view() const noexcept { return view_open_; }

  // Records skipped after being lapped (exact: from the sequence numbers, less the gaps the gap
  // table lists, unless more than kBroadcastGapEntries gaps happened within one lap).
  std::uint64_t lost_records() const noexcept { return lost_; }
  // Of the records a kLatest / kHistory start asked for, how many were no longer in the ring: known
  // at open, and grows if a history record is overwritten before this reader gets to it.
  std::uint64_t history_missed() const noexcept { return history_missed_; }
  // Sequence numbers passed that carried no message (voids, dead writers' claims).
  std::uint64_t gaps_passed() const noexcept { return gaps_passed_; }
  // Whether the start is settled (false while a brand-new ring's first record is being written
  // and no record start can be trusted yet; the first read settles it).
  bool start_known() const noexcept { return !start_pending_; }
  // The sequence number the next record returned will carry if nothing is lost.
  std::uint64_t next_sequence() const noexcept { return sequence_; }
  // The first sequence number live records have (the start kLive would have taken at open).
  std::uint64_t live_sequence() const noexcept { return live_sequence_; }
  std::uint64_t lapped_count() const noexcept { return lapped_; }

  // Lossless: stores the position now if it moved forward since the last store (also done every
  // capacity/16 bytes and when nothing is left to read). Returns whether it stored one.
  bool publish_position() noexcept;
  // Lossless: whether the position was stored since the last call (then writers may have room).
  bool take_published() noexcept {
    const bool published = published_news_;
    published_news_ = false;
    return published;
  }
  // Lossless: gives the slot back; afterwards every read says kEvicted. Lossy: no-op.
  void unregister() noexcept;
  // Lossy: after kCorrupt, skip to the newest record (what was skipped is not counted).
  void resync() noexcept;

  // Whether the record this reader waits for has been claimed by a writer but not committed: a
  // writer is writing it, or died (the transport then runs the recovery). Racy; slow path.
  bool stalled_on_claim() const noexcept;

  std::uint64_t max_record() const noexcept { return l_.max_record; }
  std::uint64_t position() const noexcept { return cursor_; }
  // The claim position (racy, relaxed): what a tool compares positions with for lag.
  std::uint64_t writer_position_approx() const noexcept;
  bool lossless() const noexcept { return slot_ != nullptr; }
  std::uint32_t slot_index() const noexcept { return slot_index_; }
  bool closed() const noexcept;
  const BroadcastLayout& layout() const noexcept { return l_; }

 private:
  BroadcastReader() = default;
  // The record at cursor_: calls copy(payload, length) for a message before validating it (false:
  // it does not fit, kTooLarge, not consumed), skips filler, voids and listed gaps, fills `info`.
  template <typename Copy>
  RingResult next_record(Copy&& copy, BroadcastRecordInfo* info, std::uint64_t* start) noexcept;
  // Nothing committed at cursor_: kEmpty, kLapped / kEvicted (overrun()); or kOk when a listed gap
  // was skipped (the caller looks again).
  RingResult not_ready() noexcept;
  // Whether bytes read at `position` may have been overwritten while read: intent has passed
  // position + capacity. Every reader checks (one load of a line that changes once per intent
  // chunk): a lossless reader is overwritten only once it was evicted, or while it reads history
  // from before its slot held the writers back.
  bool overwritten(std::uint64_t position) const noexcept;
  // The record at the cursor was overwritten. Lossy, or lossless below safe_from_ (history): jump
  // to the newest record and count what was skipped (kLapped). Lossless from safe_from_ on: the
  // slot was taken from this reader (kEvicted).
  RingResult overrun() noexcept;
  // Whether a view at `position` must be validated when it ends (lossy, or lossless below
  // safe_from_); a lossless view from safe_from_ on is held by the slot.
  bool validates(std::uint64_t position) const noexcept {
    return slot_ == nullptr || static_cast<std::int64_t>(position - safe_from_) < 0;
  }
  void move_to(std::uint64_t position, std::uint64_t sequence) noexcept {
    cursor_ = position;
    sequence_ = sequence;
    expect_ = commit_word(l_.key, position, sequence);
  }
  // After a record was consumed: lossless readers store their position now and then.
  void consumed() noexcept {
    if (slot_ != nullptr && static_cast<std::int64_t>(cursor_ - published_) >= static_cast<std::int64_t>(publish_every_)) {
      publish_position();
    }
  }
  // Counts `n` sequence numbers skipped from `from` (lapped, or history gone): into history_missed_
  // below live_sequence_, into lost_ from there.
  void count_skipped(std::uint64_t from, std::uint64_t to) noexcept;
  // Picks the start for `start` (or the newest record, for a lapped reader) and moves there.
  // False when no start can be established yet (a brand-new ring mid-write): start_pending_.
  bool settle_start(BroadcastStartAt start) noexcept;
  // Lossless, at registration: stores a position that holds the writers back from everything still
  // readable, sets safe_from_, and makes the writers rescan (SYNC(bcast_join)).
  void hold_writers() noexcept;

  BroadcastLayout l_;
  BroadcastReaderSlot* slot_ = nullptr;  // lossless only
  std::uint32_t slot_index_ = 0;
  std::uint64_t token_ = 0;
  std::uint64_t cursor_ = 0;
  std::uint64_t sequence_ = 0;
  std::uint64_t expect_ = 0;        // the commit word of a message at cursor_ with sequence_
  std::uint64_t published_ = 0;     // lossless: the position last stored in the slot
  std::uint64_t publish_every_ = 0;
  std::uint64_t safe_from_ = 0;     // lossless: positions from here on need no validation
  std::uint64_t live_sequence_ = 0;
  std::uint64_t live_position_ = 0;  // where the record live_sequence_ starts, if live_known_
  bool live_known_ = false;
  std::uint64_t gaps_seen_ = 0;     // the gap count when the table was last read whole
  // Gaps listed for sequence numbers this reader has not reached (as of that reading).
  std::array<BroadcastGap, kBroadcastGapEntries> ahead_{};
  std::uint32_t ahead_count_ = 0;
  BroadcastStartAt pending_start_{};
  bool start_pending_ = false;
  bool published_news_ = false;
  bool evicted_ = false;
  bool view_open_ = false;
  std::uint64_t view_start_ = 0;    // the viewed record's position
  std::uint64_t view_next_ = 0;     // where the cursor goes when the view ends
  std::uint64_t lost_ = 0;
  std::uint64_t history_missed_ = 0;
  std::uint64_t gaps_passed_ = 0;
  std::uint64_t lapped_ = 0;
};

// --- Inline hot path ---------------------------------------------------------------------------------

inline bool BroadcastReader::overwritten(std::uint64_t position) const noexcept {
  // SYNC(bcast_intent): after the loads of the record (acquire, or plain loads and an acquire
  // fence): a writer that stored any of the bytes loaded had raised intent before.
  const std::uint64_t intent = l_.control->rare.intent.load(std::memory_order_acquire);
  return intent - position > l_.capacity;
}

template <typename Copy>
inline RingResult BroadcastReader::next_record(Copy&& copy, BroadcastRecordInfo* info,
                                               std::uint64_t* start) noexcept {
  // Filler and voids may follow each other; a ring's worth of them without a message is corrupt.
  const std::uint64_t max_steps = l_.capacity / kBroadcastGranule + 2;
  for (std::uint64_t step = 0; step < max_steps; ++step) {
    const std::uint64_t index = l_.index_of(cursor_);
    const std::byte* record = l_.data + index;
    const std::uint64_t to_end = l_.capacity - index;
    // SYNC(bcast_commit): pairs with the writer's release store of the commit word.
    const std::uint64_t word0 = detail::load_word_acquire(record);
    if (word0 == expect_) {
      const std::uint64_t word1 = detail::load_word_acquire(record + 8);
      const auto length = static_cast<std::uint32_t>(word1);
      const bool sane = length <= l_.max_record && kBroadcastRecordHeader + length <= to_end;
      std::uint64_t publisher_sequence = 0;
      bool fits = true;
      if (sane) {
        publisher_sequence = detail::load_word_acquire(record + 16);
        fits = copy(record + kBroadcastRecordHeader, length);
      }
      if (overwritten(cursor_)) return overrun();
      if (!sane) return RingResult::kCorrupt;
      if (info != nullptr) {
        info->bytes = length;
        info->sequence = sequence_;
        info->publisher = static_cast<std::uint32_t>(word1 >> 32);
        info->publisher_sequence = publisher_sequence;
      }
      if (!fits) return RingResult::kTooLarge;
      *start = cursor_;
      move_to(cursor_ + broadcast_record_bytes(length), sequence_ + 1);
      return RingResult::kOk;
    }
    const std::uint64_t mark = word0 ^ expect_;
    if (mark != kFillerMark && mark != kVoidMark) {
      const RingResult r = not_ready();
      if (r == RingResult::kOk) continue;  // a listed gap was skipped
      return r;
    }
    const std::uint64_t occupied = detail::load_word_acquire(record + 8);
    if (overwritten(cursor_)) return overrun();
    if (occupied == 0 || occupied % kBroadcastGranule != 0 || occupied > to_end) return RingResult::kCorrupt;
    if (mark == kVoidMark) ++gaps_passed_;
    move_to(cursor_ + occupied, mark == kVoidMark ? sequence_ + 1 : sequence_);
  }
  return RingResult::kCorrupt;
}

inline RingResult BroadcastReader::try_read(std::span<std::byte> out, BroadcastRecordInfo* info) noexcept {
  if (evicted_) return RingResult::kEvicted;
  if (view_open_) return RingResult::kBusy;
  if (start_pending_ && !settle_start(pending_start_)) return RingResult::kEmpty;
  std::uint64_t start = 0;
  const RingResult r = next_record(
      [&](const std::byte* payload, std::uint32_t n) {
        if (n > out.size()) return false;
        detail::copy_words_acquire(out.data(), payload, n);
        return true;
      },
      info, &start);
  if (r == RingResult::kOk) consumed();
  return r;
}

}  // namespace shmring
