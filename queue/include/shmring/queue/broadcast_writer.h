// BroadcastWriter: one publisher of a broadcast ring (after Aeron's broadcast transmitter and its
// concurrent publication). Up to max_publishers writers, in any processes, write one ring at once;
// every reader sees their records in one order (broadcast_layout.h has the format).
//
// A write is a claim, a fill and a commit:
//  * claim: one 16-byte CAS on the claim pair {position, sequence} gives the record its bytes and its
//    topic sequence number. Before the CAS the writer notes what it is claiming in its publisher
//    slot (SYNC(bcast_attempt)), so that the recovery can skip the claim of a writer that dies
//    before committing (BroadcastPublishers::recover, broadcast_publishers.h). The claim is refused
//    (kFull) while it would overwrite what the slowest lossless reader has not read, or another
//    writer's claim still in progress (a writer stalled inside its claim for a whole lap holds the
//    others back rather than have its record overwritten under it); the writer looks at the slots
//    only when its cached limit says so (once per lap at least), or when a lossless reader joined
//    since (reader_generation).
//  * fill: the payload is copied in (try_write) or written in place by the caller (try_claim);
//  * commit: the header words, then the commit word (release, SYNC(bcast_commit)).
// A record needing the end of the ring starts with a filler that runs to the end.
//
// Short commits and given-up claims: with one publisher (max_publishers == 1) nobody can have
// claimed after the writer, so commit(n) shrinks the claim and abort() hands it back (the claim
// pair moves back), exactly as if the unused bytes had never been asked for. With several, the
// unused tail of a short commit becomes filler, and an aborted claim becomes a void record: its
// sequence number carries no message (readers skip it without counting it lost).
//
// Threads and processes: one thread per BroadcastWriter at a time; writers in different handles
// (any process) run concurrently. Nothing waits, sleeps or makes a system call; try_write and
// try_claim retry their CAS while other writers win it (lock-free), and a lossless refresh scans at
// most max_readers slots.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "absl/status/statusor.h"
#include "shmring/queue/broadcast_layout.h"
#include "shmring/queue/detail/atomic_words.h"
#include "shmring/queue/ring_result.h"

namespace shmring {

class BroadcastWriter {
 public:
  // Registers as a publisher of the ring in `region`: takes a free publisher slot for `token` (any
  // value but 0 and ~0; the transport passes the endpoint's peer token, so the recovery can tell
  // whose slot it is) and gets a publisher id. Codes as BroadcastLayout::map; kInvalidArgument for
  // a bad token; kResourceExhausted when every publisher slot is taken.
  static absl::StatusOr<BroadcastWriter> attach(void* region, std::size_t bytes, std::uint64_t token);

  BroadcastWriter(BroadcastWriter&& other) noexcept;
  BroadcastWriter& operator=(BroadcastWriter&& other) noexcept;
  BroadcastWriter(const BroadcastWriter&) = delete;
  BroadcastWriter& operator=(const BroadcastWriter&) = delete;
  // Does not detach (a forked child's copy must not free its parent's slot): call detach().
  ~BroadcastWriter() = default;

  // What try_claim() hands out: on kOk, `buffer` is the record's payload, in place (contiguous,
  // 8-byte aligned).
  struct Claim {
    RingResult result = RingResult::kFull;
    std::span<std::byte> buffer;
  };

  // Copies `record` in as the next record. kOk; kTooLarge (nothing changed); kBusy while a claim is
  // out; kFull while the slowest lossless reader (or another writer's claim a lap behind) holds
  // the space; kCorrupt when the claim pair holds what no writer stores.
  RingResult try_write(std::span<const std::byte> record) noexcept;
  // Zero-copy: claims a record of up to `max_bytes` payload bytes and hands out its buffer. Results
  // as try_write. Readers see nothing of it before commit(). The claim first raises `intent` and
  // then issues a release fence, so lapped lossy readers that read bytes the caller writes reject
  // their copy (SYNC(bcast_loan)).
  Claim try_claim(std::size_t max_bytes) noexcept;
  // Publishes the claim as a record of `bytes` (<= the claimed size) payload bytes: kOk; kTooLarge
  // (the claim is kept); kBusy (no claim out). Release: every byte written into the buffer is
  // visible to a reader that receives the record.
  RingResult commit(std::size_t bytes) noexcept;
  // Gives the claim up: readers never see a message (one publisher: as if never claimed; several:
  // a void record). No-op without a claim.
  void abort() noexcept;
  bool has_claim() const noexcept { return claimed_; }

  // Gives any claim up and frees the publisher slot (the slot's owner must still be this writer's
  // token). Afterwards every call says kBusy. Idempotent.
  void detach() noexcept;
  // Marks the ring closed (release; readers see closed() after every earlier record).
  void close() noexcept;

  // The publisher id (stable while registered, unique per ring incarnation but for 2^32 wrap).
  std::uint32_t id() const noexcept { return id_; }
  std::uint32_t slot_index() const noexcept { return slot_index_; }
  // Messages this writer committed: the publisher sequence its next message carries.
  std::uint64_t published() const noexcept { return published_; }
  // The topic sequence of the last message this writer committed (valid once published() > 0).
  std::uint64_t last_sequence() const noexcept { return last_sequence_; }
  // The topic sequence of the claim out (valid while has_claim()).
  std::uint64_t claiming_sequence() const noexcept { return claim_sequence_; }
  // The claim pair as this writer last saw it (its next message gets at least this sequence).
  std::uint64_t next_sequence_hint() const noexcept { return frontier_.high; }
  // The claim pair's position and sequence now (racy loads).
  std::uint64_t claim_position_approx() const noexcept;
  std::uint64_t claim_sequence_approx() const noexcept;
  const BroadcastLayout& layout() const noexcept { return l_; }
  std::uint64_t capacity() const noexcept { return l_.capacity; }
  std::uint64_t max_record() const noexcept { return l_.max_record; }

 private:
  BroadcastWriter() = default;
  // Claims room for a payload of `payload` bytes: kOk (claim_* set), kFull, kCorrupt (the claim
  // pair holds what no writer stores).
  RingResult claim(std::uint64_t payload) noexcept;
  // Lossless: rescans the reader slots; kOk if `needed_end` is within the new limit.
  RingResult refresh_limit(std::uint64_t needed_end) noexcept;
  // Raises `intent` to at least `end` (SYNC(bcast_intent)).
  void announce(std::uint64_t end) noexcept;
  // Commit words and header words of the claim, for a record of `length` payload bytes.
  void publish(std::uint64_t length) noexcept;
  // Several publishers: makes [from, claim_end_) filler (a record occupying the rest of the claim).
  void fill(std::uint64_t from, std::uint64_t sequence) noexcept;
  std::byte* at(std::uint64_t position) const noexcept { return l_.data + l_.index_of(position); }
  std::uint64_t* claim_pair() const noexcept { return &l_.control->claim.position; }
  void clear_attempt() noexcept { slot_->attempt_end.store(0, std::memory_order_release); }

  BroadcastLayout l_;
  BroadcastPublisherSlot* slot_ = nullptr;
  std::uint64_t token_ = 0;
  std::uint32_t id_ = 0;
  std::uint32_t slot_index_ = 0;
  bool single_ = true;             // max_publishers == 1
  bool lossless_capable_ = false;  // the ring has reader slots
  detail::WordPair frontier_;      // the claim pair after this writer's last CAS (a real value)
  std::uint64_t limit_ = 0;        // lossless: claims may end up to here without a rescan
  std::uint64_t generation_ = 0;   // reader_generation at the last rescan
  std::uint64_t intent_ = 0;       // intent is known to be at least this
  std::uint64_t published_ = 0;
  std::uint64_t last_sequence_ = 0;
  // The claim out: [claim_start_, claim_end_), the record at claim_record_ (after a wrap filler),
  // sequence claim_sequence_, room for claim_bytes_ payload bytes.
  bool claimed_ = false;
  std::uint64_t claim_start_ = 0;
  std::uint64_t claim_record_ = 0;
  std::uint64_t claim_end_ = 0;
  std::uint64_t claim_sequence_ = 0;
  std::uint64_t claim_bytes_ = 0;
};

// --- Inline hot path ---------------------------------------------------------------------------------

inline RingResult BroadcastWriter::claim(std::uint64_t payload) noexcept {
  const std::uint64_t size = broadcast_record_bytes(payload);
  if (lossless_capable_ &&
      l_.control->rare.reader_generation.load(std::memory_order_acquire) != generation_) {
    // SYNC(bcast_generation): a lossless reader joined since the last scan; look at it now.
    limit_ = frontier_.low;
  }
  detail::WordPair current = frontier_;
  for (;;) {
    const std::uint64_t position = current.low;
    // Only writers change the pair, and they store record starts: anything else is corrupt (and
    // would put a record's words past the end of the data area).
    if (position % kBroadcastGranule != 0) {
      frontier_ = current;
      clear_attempt();  // a failed CAS may have noted one
      return RingResult::kCorrupt;
    }
    const std::uint64_t to_end = l_.capacity - l_.index_of(position);
    const std::uint64_t filler = size <= to_end ? 0 : to_end;
    const std::uint64_t end = position + filler + size;
    if (static_cast<std::int64_t>(end - limit_) > 0 && refresh_limit(end) != RingResult::kOk) {
      frontier_ = current;
      // A failed CAS may have noted a claim: a note left behind would hold the other writers back
      // as if this writer were inside a claim.
      clear_attempt();
      return RingResult::kFull;
    }
    // SYNC(bcast_attempt): what this writer is claiming, before the claim; the CAS below (a full
    // barrier) orders these stores before it, and the recovery that sees the claim sees them. (One
    // publisher: the recovery runs only once it is dead, when all its stores are in.)
    slot_->attempt_position.store(position, std::memory_order_relaxed);
    slot_->attempt_sequence.store(current.high, std::memory_order_relaxed);
    slot_->attempt_end.store(end, std::memory_order_relaxed);
    if (single_) {
      // The only writer: the pair is its own. Plain stores, position first: a writer killed
      // between them leaves (end, sequence), which the recovery repairs from this attempt
      // (BroadcastPublishers). Readers use one half at a time; a writer's scan starts with a
      // seq_cst RMW on the position (refresh_limit), which orders these stores before it.
      __atomic_store_n(&l_.control->claim.position, end, __ATOMIC_RELEASE);
      __atomic_store_n(&l_.control->claim.sequence, current.high + 1, __ATOMIC_RELEASE);
      frontier_ = {end, current.high + 1};
      claim_start_ = position;
      claim_record_ = position + filler;
      claim_end_ = end;
      claim_sequence_ = current.high;
      break;
    }
    // SYNC(bcast_claim): the claim; seq_cst (see refresh_limit() and the lossless join).
    if (detail::compare_exchange_pair(claim_pair(), &current, {end, current.high + 1})) {
      frontier_ = {end, current.high + 1};
      claim_start_ = position;
      claim_record_ = position + filler;
      claim_end_ = end;
      claim_sequence_ = current.high;
      break;
    }
    // Another writer claimed first: `current` holds the pair now; try again from there.
  }
  if (l_.is_anchor(claim_sequence_)) {
    // SYNC(bcast_index): where the anchor starts, for readers that begin in the past.
    l_.anchor_slot(claim_sequence_).store(claim_start_, std::memory_order_release);
  }
  announce(claim_end_);
  claimed_ = true;
  return RingResult::kOk;
}

inline void BroadcastWriter::announce(std::uint64_t end) noexcept {
  if (static_cast<std::int64_t>(end - intent_) <= 0) return;
  std::atomic<std::uint64_t>& intent = l_.control->rare.intent;
  // A chunk ahead, so that readers see intent change once per chunk; never past this writer's
  // limit, so that a lossless reader the writers wait for never takes intent for an overwrite.
  const std::uint64_t target =
      static_cast<std::int64_t>(end + l_.intent_chunk - limit_) > 0 ? limit_ : end + l_.intent_chunk;
  std::uint64_t seen = intent.load(std::memory_order_relaxed);
  // SYNC(bcast_intent): intent >= end before any byte of the claim is stored. The data-area stores
  // that follow are release stores (or follow a release fence), so a reader that loads one of them
  // and then loads intent sees this value or a later one (read-read coherence when this writer only
  // loaded it, write-read coherence when it raised it).
  while (static_cast<std::int64_t>(end - seen) > 0 &&
         !intent.compare_exchange_weak(seen, target, std::memory_order_relaxed)) {
  }
  intent_ = static_cast<std::int64_t>(end - seen) > 0 ? target : seen;
}

inline void BroadcastWriter::publish(std::uint64_t length) noexcept {
  std::byte* record = at(claim_record_);
  // SYNC(bcast_commit): the header words, then the commit word, all release stores after the
  // payload (every earlier store, plain ones included, is visible to a reader that acquires the
  // commit word).
  detail::store_word_release(record + 8, (std::uint64_t{id_} << 32) | length);
  detail::store_word_release(record + 16, published_);
  if (claim_record_ != claim_start_) {
    // The filler to the end of the ring goes first: a reader that passes it finds the record.
    detail::store_word_release(at(claim_start_) + 8, claim_record_ - claim_start_);
    detail::store_word_release(at(claim_start_), commit_word(l_.key, claim_start_, claim_sequence_) ^ kFillerMark);
  }
  detail::store_word_release(record, commit_word(l_.key, claim_record_, claim_sequence_));
  last_sequence_ = claim_sequence_;
  ++published_;
  slot_->published.store(published_, std::memory_order_relaxed);
  claimed_ = false;
  clear_attempt();
}

inline RingResult BroadcastWriter::try_write(std::span<const std::byte> record) noexcept {
  if (claimed_ || slot_ == nullptr) return RingResult::kBusy;
  if (record.size() > l_.max_record) return RingResult::kTooLarge;
  const RingResult r = claim(record.size());
  if (r != RingResult::kOk) return r;
  // SYNC(bcast_intent) / SYNC(bcast_bulk): release stores of the payload words (or a release fence
  // and memcpy), after the intent announced in claim().
  detail::copy_words_release(at(claim_record_) + kBroadcastRecordHeader, record.data(), record.size());
  publish(record.size());
  return RingResult::kOk;
}

}  // namespace shmring
