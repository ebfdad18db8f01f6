#include "shmring/queue/broadcast_writer.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace shmring {

absl::StatusOr<BroadcastWriter> BroadcastWriter::attach(void* region, std::size_t bytes, std::uint64_t token) {
  if (token == kSlotFree || token == kSlotReclaiming) {
    return absl::InvalidArgumentError("BroadcastWriter::attach: token may not be 0 or ~0");
  }
  absl::StatusOr<BroadcastLayout> layout = BroadcastLayout::map(region, bytes);
  if (!layout.ok()) return layout.status();
  BroadcastWriter w;
  w.l_ = *layout;
  for (std::uint32_t i = 0; i < w.l_.max_publishers; ++i) {
    std::uint64_t expected = kSlotFree;
    if (!w.l_.publishers[i].owner.compare_exchange_strong(expected, token, std::memory_order_acq_rel,
                                                          std::memory_order_relaxed)) {
      continue;
    }
    w.slot_ = &w.l_.publishers[i];
    w.slot_index_ = i;
    break;
  }
  if (w.slot_ == nullptr) {
    return absl::ResourceExhaustedError(absl::StrCat("BroadcastWriter::attach: all ", w.l_.max_publishers,
                                                     " publisher slots are taken"));
  }
  BroadcastRareBlock& rare = w.l_.control->rare;
  std::uint32_t id = rare.next_publisher_id.fetch_add(1, std::memory_order_relaxed) + 1;
  if (id == 0) id = rare.next_publisher_id.fetch_add(1, std::memory_order_relaxed) + 1;  // 2^32 wrap
  w.token_ = token;
  w.id_ = id;
  w.single_ = w.l_.max_publishers == 1;
  w.lossless_capable_ = w.l_.max_readers > 0;
  w.slot_->attempt_end.store(0, std::memory_order_relaxed);
  w.slot_->published.store(0, std::memory_order_relaxed);
  w.slot_->id.store(id, std::memory_order_relaxed);
  // A real value of the claim pair to start from (writers map the region writable).
  w.frontier_ = detail::load_pair(w.claim_pair());
  w.limit_ = w.frontier_.low;  // look at the readers before the first claim
  w.generation_ = rare.reader_generation.load(std::memory_order_acquire);
  w.intent_ = rare.intent.load(std::memory_order_relaxed);
  return w;
}

BroadcastWriter::BroadcastWriter(BroadcastWriter&& other) noexcept { *this = std::move(other); }

BroadcastWriter& BroadcastWriter::operator=(BroadcastWriter&& other) noexcept {
  if (this != &other) {
    l_ = other.l_;
    slot_ = std::exchange(other.slot_, nullptr);
    token_ = other.token_;
    id_ = other.id_;
    slot_index_ = other.slot_index_;
    single_ = other.single_;
    lossless_capable_ = other.lossless_capable_;
    frontier_ = other.frontier_;
    limit_ = other.limit_;
    generation_ = other.generation_;
    intent_ = other.intent_;
    published_ = other.published_;
    last_sequence_ = other.last_sequence_;
    claimed_ = std::exchange(other.claimed_, false);
    claim_start_ = other.claim_start_;
    claim_record_ = other.claim_record_;
    claim_end_ = other.claim_end_;
    claim_sequence_ = other.claim_sequence_;
    claim_bytes_ = other.claim_bytes_;
  }
  return *this;
}

RingResult BroadcastWriter::refresh_limit(std::uint64_t needed_end) noexcept {
  BroadcastControl& control = *l_.control;
  generation_ = control.rare.reader_generation.load(std::memory_order_acquire);
  // SYNC(bcast_join): a seq_cst load of the claim position, then seq_cst loads of every slot,
  // against a joining reader's seq_cst store of its slot position followed by its seq_cst load of
  // the claim position (BroadcastReader::register_reader): either this scan sees the reader, or
  // the reader's start check point is at or after `scan_position`, below which alone this writer
  // may overwrite until its next scan.
  // An RMW, not a load: it orders this writer's earlier stores (a single writer's plain claim
  // stores) before the slot loads below, and reads the latest claim position.
  const std::uint64_t scan_position = __atomic_fetch_add(claim_pair(), 0, __ATOMIC_SEQ_CST);
  std::uint64_t oldest = scan_position;
  bool joining = false;
  for (std::uint32_t i = 0; i < l_.max_readers; ++i) {
    BroadcastReaderSlot& slot = l_.readers[i];
    const std::uint64_t owner = slot.owner.load(std::memory_order_seq_cst);
    if (owner == kSlotFree || owner == kSlotReclaiming) continue;
    // SYNC(bcast_reader_pos): pairs with the reader's release of its position after reading the
    // records before it; this writer may overwrite them now.
    const std::uint64_t position = slot.position.load(std::memory_order_seq_cst);
    // A reader still joining (no position yet) holds nothing, but it is about to store one: scan
    // again at the next claim (it bumps the generation too, but it may be preempted in between).
    // A position no live reader can hold (garbage, more than a ring behind) holds nothing.
    if (position == kReaderJoining) {
      joining = true;
      continue;
    }
    if (!l_.plausible(position, scan_position)) continue;
    if (static_cast<std::int64_t>(position - oldest) < 0) oldest = position;
  }
  // Other writers' claims in progress hold this writer back too: a writer stalled inside its claim
  // for a whole lap must not have newer records written under it, nor write its late bytes over
  // them. (Its claim ends with its commit, which clears the note with a release store: what it
  // wrote happens-before this writer overwrites it.)
  for (std::uint32_t i = 0; i < l_.max_publishers; ++i) {
    if (i == slot_index_) continue;
    BroadcastPublisherSlot& other = l_.publishers[i];
    // SYNC(bcast_attempt): pairs with the claimer's stores before its claim CAS and its release
    // of attempt_end after its commit.
    if (other.attempt_end.load(std::memory_order_seq_cst) == 0) continue;
    const std::uint64_t position = other.attempt_position.load(std::memory_order_acquire);
    if (!l_.plausible(position, scan_position)) continue;
    if (static_cast<std::int64_t>(position - oldest) < 0) oldest = position;
  }
  limit_ = oldest + l_.capacity;
  if (static_cast<std::int64_t>(needed_end - limit_) > 0) return RingResult::kFull;
  if (joining) limit_ = needed_end;  // this claim, then a new scan
  return RingResult::kOk;
}

BroadcastWriter::Claim BroadcastWriter::try_claim(std::size_t max_bytes) noexcept {
  if (claimed_ || slot_ == nullptr) return {RingResult::kBusy, {}};
  if (max_bytes > l_.max_record) return {RingResult::kTooLarge, {}};
  const RingResult r = claim(max_bytes);
  if (r != RingResult::kOk) return {r, {}};
  claim_bytes_ = max_bytes;
  // SYNC(bcast_loan): the caller's plain stores into the buffer must not become visible before the
  // intent announced in claim(); this fence orders it before them (a lapped reader's acquire loads
  // or fence before its intent check pair with it).
  detail::seqlock_release_fence();
  return {RingResult::kOk, std::span<std::byte>(at(claim_record_) + kBroadcastRecordHeader, max_bytes)};
}

void BroadcastWriter::fill(std::uint64_t from, std::uint64_t sequence) noexcept {
  if (from == claim_end_) return;
  std::byte* filler = at(from);
  detail::store_word_release(filler + 8, claim_end_ - from);
  detail::store_word_release(filler, commit_word(l_.key, from, sequence) ^ kFillerMark);
}

RingResult BroadcastWriter::commit(std::size_t bytes) noexcept {
  if (!claimed_) return RingResult::kBusy;
  if (bytes > claim_bytes_) return RingResult::kTooLarge;
  const std::uint64_t record_end = claim_record_ + broadcast_record_bytes(bytes);
  if (record_end != claim_end_) {
    if (single_) {
      // Nobody can have claimed after this writer: give the unused tail back (one store: the
      // sequence stays).
      slot_->attempt_end.store(record_end, std::memory_order_relaxed);
      __atomic_store_n(&l_.control->claim.position, record_end, __ATOMIC_RELEASE);
      frontier_ = {record_end, claim_sequence_ + 1};
      claim_end_ = record_end;
    } else {
      // The tail becomes filler before the record is committed, so that a reader passing the
      // record finds it.
      fill(record_end, claim_sequence_ + 1);
    }
  }
  publish(bytes);
  return RingResult::kOk;
}

void BroadcastWriter::abort() noexcept {
  if (!claimed_) return;
  claimed_ = false;
  if (single_) {
    // The claim is handed back: position first, then sequence (a writer killed between them
    // leaves (start, sequence + 1), which the recovery repairs from this attempt).
    __atomic_store_n(&l_.control->claim.position, claim_start_, __ATOMIC_RELEASE);
    __atomic_store_n(&l_.control->claim.sequence, claim_sequence_, __ATOMIC_RELEASE);
    frontier_ = {claim_start_, claim_sequence_};
    clear_attempt();
    return;
  }
  // Several publishers: the claim's sequence is used up. A void record
  // covers the claim (after the wrap filler, if the claim has one), and the gap table lists it, so
  // a lapped reader does not count it as lost.
  append_broadcast_gap(*l_.control, claim_sequence_, claim_start_, claim_end_, kGapVoid);
  if (claim_record_ != claim_start_) {
    detail::store_word_release(at(claim_start_) + 8, claim_record_ - claim_start_);
    detail::store_word_release(at(claim_start_), commit_word(l_.key, claim_start_, claim_sequence_) ^ kFillerMark);
  }
  std::byte* record = at(claim_record_);
  detail::store_word_release(record + 8, claim_end_ - claim_record_);
  // SYNC(bcast_commit): the void's length before its commit word.
  detail::store_word_release(record, commit_word(l_.key, claim_record_, claim_sequence_) ^ kVoidMark);
  clear_attempt();
}

void BroadcastWriter::detach() noexcept {
  if (slot_ == nullptr) return;
  abort();
  slot_->id.store(0, std::memory_order_relaxed);
  std::uint64_t expected = token_;
  // SYNC(bcast_slot_free): the attempt cleared before the slot is free.
  slot_->owner.compare_exchange_strong(expected, kSlotFree, std::memory_order_release,
                                       std::memory_order_relaxed);
  slot_ = nullptr;
}

void BroadcastWriter::close() noexcept { store_ring_state(l_.control, RingState::kClosed); }

std::uint64_t BroadcastWriter::claim_position_approx() const noexcept {
  return __atomic_load_n(claim_pair(), __ATOMIC_RELAXED);
}
std::uint64_t BroadcastWriter::claim_sequence_approx() const noexcept {
  return __atomic_load_n(&l_.control->claim.sequence, __ATOMIC_RELAXED);
}

}  // namespace shmring
