#include "shmring/queue/broadcast_reader.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace shmring {
namespace {

// The claim pair's halves, each a value it really had (a reader needs no consistent pair: it finds
// record starts through the anchors).
struct Frontier {
  std::uint64_t sequence = 0;
  std::uint64_t position = 0;
};

Frontier load_frontier(const BroadcastLayout& l) {
  Frontier f;
  // SYNC(bcast_claim): acquire loads of the claim pair's halves (written by the writers' CAS).
  f.sequence = __atomic_load_n(&l.control->claim.sequence, __ATOMIC_ACQUIRE);
  f.position = __atomic_load_n(&l.control->claim.position, __ATOMIC_ACQUIRE);
  return f;
}

// What a start in the past is: a record start and its sequence.
struct Place {
  std::uint64_t position = 0;
  std::uint64_t sequence = 0;
};

// How a walk from an anchor ended.
enum class Walk { kReached, kOverwritten, kCorrupt };

// The end of the gap listed for `sequence` that covers `position`, if there is one. *complete
// (optional) is set false when an entry appended is not written yet.
bool listed_gap(const BroadcastLayout& l, std::uint64_t sequence, std::uint64_t position, std::uint64_t* end,
                bool* complete = nullptr) {
  bool found = false;
  const bool all = for_each_broadcast_gap(*l.control, [&](const BroadcastGap& gap) {
    if (found || gap.sequence != sequence || static_cast<std::int64_t>(position - gap.position) < 0 ||
        static_cast<std::int64_t>(gap.end - position) <= 0 || gap.end - position > l.capacity ||
        gap.end % kBroadcastGranule != 0) {
      return;
    }
    *end = gap.end;
    found = true;
  });
  if (complete != nullptr) *complete = all;
  return found;
}

// Gaps the table lists with sequence in [from, to).
std::uint64_t listed_gaps_between(const BroadcastLayout& l, std::uint64_t from, std::uint64_t to) {
  std::uint64_t n = 0;
  for_each_broadcast_gap(*l.control, [&](const BroadcastGap& gap) {
    if (gap.sequence - from < to - from) ++n;
  });
  return std::min(n, to - from);
}

// Walks from the record at `from` (sequence `sequence`) towards `target`: over messages, filler,
// voids and listed gaps, until it stands at `target` or at a record not committed yet.
Walk walk(const BroadcastLayout& l, Place from, std::uint64_t target, Place* reached) {
  Place at = from;
  const std::uint64_t max_steps = l.capacity / kBroadcastGranule + 2;
  for (std::uint64_t step = 0; step < max_steps && at.sequence != target; ++step) {
    const std::uint64_t index = l.index_of(at.position);
    const std::byte* record = l.data + index;
    const std::uint64_t to_end = l.capacity - index;
    const std::uint64_t expect = commit_word(l.key, at.position, at.sequence);
    // SYNC(bcast_commit): as in next_record().
    const std::uint64_t word0 = detail::load_word_acquire(record);
    const std::uint64_t word1 = detail::load_word_acquire(record + 8);
    const std::uint64_t mark = word0 ^ expect;
    std::uint64_t size = 0;
    std::uint64_t used = 1;
    if (mark == 0) {
      size = broadcast_record_bytes(static_cast<std::uint32_t>(word1));
      if (static_cast<std::uint32_t>(word1) > l.max_record || size > to_end) size = 0;
    } else if (mark == kFillerMark || mark == kVoidMark) {
      size = word1 % kBroadcastGranule == 0 && word1 <= to_end ? word1 : 0;
      used = mark == kVoidMark ? 1 : 0;
    } else {
      std::uint64_t end = 0;
      if (!listed_gap(l, at.sequence, at.position, &end)) break;  // not committed yet: stop here
      size = end - at.position;
    }
    // SYNC(bcast_intent): the words just loaded were not being overwritten.
    if (l.control->rare.intent.load(std::memory_order_acquire) - at.position > l.capacity) {
      return Walk::kOverwritten;
    }
    if (size == 0) return Walk::kCorrupt;
    at.position += size;
    at.sequence += used;
  }
  *reached = at;
  return Walk::kReached;
}

// The position of anchor `anchor` if it can be trusted: claimed (below the frontier's sequence),
// a plausible position strictly less than a ring behind, and, when its index entry may already hold
// a newer anchor, carrying the anchor's sequence in its commit word.
bool anchor_position(const BroadcastLayout& l, std::uint64_t anchor, const Frontier& f, std::uint64_t* position) {
  if (static_cast<std::int64_t>(anchor - l.initial_sequence) < 0 ||
      static_cast<std::int64_t>(f.sequence - anchor) <= 0) {
    return false;
  }
  // SYNC(bcast_index): pairs with the claimer's release store of the anchor's position.
  const std::uint64_t q = l.anchor_slot(anchor).load(std::memory_order_acquire);
  if (q % kBroadcastGranule != 0 || f.position - q >= l.capacity) return false;
  if (f.sequence - anchor > l.index_entries * kBroadcastIndexStride) {
    const std::uint64_t word0 = detail::load_word_acquire(l.data + l.index_of(q));
    const std::uint64_t mark = word0 ^ commit_word(l.key, q, anchor);
    if (mark != 0 && mark != kFillerMark && mark != kVoidMark) return false;
  }
  // What a reader would reject as overwritten (intent runs up to a chunk ahead of the claims) is no
  // start either.
  if (l.control->rare.intent.load(std::memory_order_acquire) - q > l.capacity) return false;
  *position = q;
  return true;
}

// Finds where a reader aiming at sequence `target` starts: the record `target` reached from an
// anchor at or before it (or the first record not committed yet on the way), else the oldest
// trusted anchor after it. False when nothing can be trusted yet.
bool locate(const BroadcastLayout& l, std::uint64_t target, const Frontier& f, Place* place) {
  if (f.sequence == l.initial_sequence) {  // nothing claimed yet: the first record
    *place = {l.initial_position, l.initial_sequence};
    return true;
  }
  const std::uint64_t stride = kBroadcastIndexStride;
  const std::uint64_t newest = target - (target - l.initial_sequence) % stride;  // anchor <= target
  const std::uint64_t reach = l.index_entries;
  for (std::uint64_t k = 0; k < reach; ++k) {
    const std::uint64_t anchor = newest - k * stride;
    if (static_cast<std::int64_t>(anchor - l.initial_sequence) < 0) break;
    // An anchor not claimed yet, or whose claimer has not stored its position yet (the newest), or
    // one already overwritten: try the one before (bounded by the index's reach).
    std::uint64_t q = 0;
    if (!anchor_position(l, anchor, f, &q)) continue;
    if (walk(l, {q, anchor}, target, place) == Walk::kReached) return true;
    break;  // overwritten under the walk: what lies before is older still
  }
  // The target is gone: the oldest anchor after it that can be trusted.
  const std::uint64_t newest_claimed = f.sequence - 1;
  const std::uint64_t last = newest_claimed - (newest_claimed - l.initial_sequence) % stride;
  std::uint64_t first = newest + stride;
  if (static_cast<std::int64_t>(last - first) > static_cast<std::int64_t>((reach - 1) * stride)) {
    first = last - (reach - 1) * stride;
  }
  for (std::uint64_t anchor = first; static_cast<std::int64_t>(last - anchor) >= 0; anchor += stride) {
    std::uint64_t q = 0;
    if (anchor_position(l, anchor, f, &q)) {
      *place = {q, anchor};
      return true;
    }
  }
  return false;
}

}  // namespace

// --- Opening ------------------------------------------------------------------------------------------

absl::StatusOr<BroadcastReader> BroadcastReader::attach(const void* region, std::size_t bytes,
                                                        BroadcastStartAt start) {
  absl::StatusOr<BroadcastLayout> layout = BroadcastLayout::map(region, bytes);
  if (!layout.ok()) return layout.status();
  BroadcastReader reader;
  reader.l_ = *layout;
  reader.publish_every_ = std::max<std::uint64_t>(reader.l_.capacity / 16, kBroadcastGranule);
  if (!reader.settle_start(start)) {
    reader.start_pending_ = true;
    reader.pending_start_ = start;
  }
  return reader;
}

absl::StatusOr<BroadcastReader> BroadcastReader::register_reader(void* region, std::size_t bytes,
                                                                 std::uint64_t token, BroadcastStartAt start) {
  if (token == kSlotFree || token == kSlotReclaiming) {
    return absl::InvalidArgumentError("BroadcastReader::register_reader: token may not be 0 or ~0");
  }
  absl::StatusOr<BroadcastLayout> layout = BroadcastLayout::map(region, bytes);
  if (!layout.ok()) return layout.status();
  BroadcastReader reader;
  reader.l_ = *layout;
  reader.publish_every_ = std::max<std::uint64_t>(reader.l_.capacity / 16, kBroadcastGranule);
  for (std::uint32_t i = 0; i < reader.l_.max_readers; ++i) {
    BroadcastReaderSlot& slot = reader.l_.readers[i];
    std::uint64_t expected = kSlotFree;
    // The slot's position is kReaderJoining (SYNC(bcast_slot_free)): writers ignore it until
    // settle_start() stores a start.
    if (slot.owner.compare_exchange_strong(expected, token, std::memory_order_seq_cst,
                                           std::memory_order_relaxed)) {
      reader.slot_ = &slot;
      reader.slot_index_ = i;
      break;
    }
  }
  if (reader.slot_ == nullptr) {
    return absl::ResourceExhaustedError(absl::StrCat("BroadcastReader::register_reader: all ",
                                                     reader.l_.max_readers, " reader slots are taken"));
  }
  reader.token_ = token;
  reader.hold_writers();
  if (!reader.settle_start(start)) {
    reader.start_pending_ = true;
    reader.pending_start_ = start;
  }
  reader.publish_position();  // up to the start, if it lies after what hold_writers() stored
  return reader;
}

void BroadcastReader::hold_writers() noexcept {
  // SYNC(bcast_generation): pairs with the writers' acquire load before each claim. From their
  // next claim on, writers scan the slots, and while this slot is still joining they scan again
  // at every claim (BroadcastWriter::refresh_limit), so the position stored below holds them from
  // their next claim on, however long this reader is preempted before storing it.
  BroadcastRareBlock& rare = l_.control->rare;
  rare.reader_generation.fetch_add(1, std::memory_order_acq_rel);
  // Before the start is chosen, the slot holds the writers back from everything a reader could
  // still accept (a ring, less the intent chunk, behind the claims), so a start in the past stays
  // readable while it is looked for. A hold that fell more than that behind before it was stored
  // (this reader was preempted) is moved up.
  const std::uint64_t window = l_.capacity - l_.intent_chunk;
  for (int attempt = 0; attempt < 8; ++attempt) {
    const std::uint64_t claimed = __atomic_load_n(&l_.control->claim.position, __ATOMIC_SEQ_CST);
    const std::uint64_t hold = claimed - l_.initial_position < window ? l_.initial_position : claimed - window;
    // SYNC(bcast_join): the slot's position first (seq_cst), then the claim position (seq_cst):
    // either a writer's scan sees this slot, or that scan's claim position is at or before
    // safe_from_, and that writer overwrites only below it until its next scan. Records below
    // safe_from_ are validated like a lossy reader's.
    if (attempt == 0) {
      slot_->position.store(hold, std::memory_order_seq_cst);
    } else {
      std::uint64_t expected = published_;
      if (!slot_->position.compare_exchange_strong(expected, hold, std::memory_order_seq_cst)) return;  // evicted
    }
    published_ = hold;
    safe_from_ = __atomic_load_n(&l_.control->claim.position, __ATOMIC_SEQ_CST);
    if (safe_from_ - hold <= window) break;
  }
  rare.reader_generation.fetch_add(1, std::memory_order_acq_rel);
}

bool BroadcastReader::settle_start(BroadcastStartAt start) noexcept {
  const Frontier f = load_frontier(l_);
  const std::uint64_t claimed = f.sequence - l_.initial_sequence;
  std::uint64_t asked = 0;
  switch (start.mode) {
    case BroadcastStart::kLive: asked = 0; break;
    case BroadcastStart::kLatest: asked = std::min<std::uint64_t>(1, claimed); break;
    case BroadcastStart::kHistory: asked = std::min<std::uint64_t>(start.count, claimed); break;
    case BroadcastStart::kOldest: asked = claimed; break;
  }
  const std::uint64_t target = f.sequence - asked;
  Place place;
  if (!locate(l_, target, f, &place)) return false;
  start_pending_ = false;
  live_sequence_ = f.sequence;
  // Where live records start (the slot of a lossless reader protects them): a lossless reader whose
  // history is overwritten before it gets to it goes on there.
  Place live = place;
  live_known_ = asked == 0 || (slot_ != nullptr && locate(l_, f.sequence, f, &live));
  live_position_ = live.position;
  if (live_known_) live_sequence_ = live.sequence;
  // Asked for but gone (kOldest asks for whatever is there: nothing is missing).
  if (start.mode != BroadcastStart::kOldest && static_cast<std::int64_t>(place.sequence - target) > 0) {
    history_missed_ += (place.sequence - target) - listed_gaps_between(l_, target, place.sequence);
  }
  move_to(place.position, place.sequence);
  gaps_seen_ = 0;
  // A lossless reader's slot holds the writers from hold_writers() on; the position moves up to the
  // start with the reader's first store (a start below it is validated: it is below safe_from_).
  return true;
}

// --- Reading ----------------------------------------------------------------------------------------

RingResult BroadcastReader::try_view(std::span<const std::byte>* record, BroadcastRecordInfo* info) noexcept {
  if (evicted_) return RingResult::kEvicted;
  if (view_open_) return RingResult::kBusy;
  if (start_pending_ && !settle_start(pending_start_)) return RingResult::kEmpty;
  const std::byte* payload = nullptr;
  std::uint32_t length = 0;
  std::uint64_t start = 0;
  // Only the words are validated now; the payload is validated in finish_view(), after the reads.
  const RingResult r = next_record(
      [&](const std::byte* p, std::uint32_t n) {
        payload = p;
        length = n;
        return true;
      },
      info, &start);
  if (r != RingResult::kOk) return r;
  view_open_ = true;
  view_start_ = start;
  view_next_ = cursor_;
  *record = std::span<const std::byte>(payload, length);
  return RingResult::kOk;
}

RingResult BroadcastReader::finish_view() noexcept {
  if (!view_open_) return RingResult::kOk;
  view_open_ = false;
  // SYNC(bcast_view): the caller's reads of the record (plain loads) are ordered before the intent
  // load by this acquire fence; had a writer begun to overwrite any byte read, the intent it
  // raised before (SYNC(bcast_intent), SYNC(bcast_loan)) is visible here.
  detail::seqlock_acquire_fence();
  if (overwritten(view_start_)) {
    if (!validates(view_start_)) {
      evicted_ = true;  // lossless: only an eviction lets a writer overwrite an unread record
      return RingResult::kEvicted;
    }
    count_skipped(sequence_ - 1, sequence_);  // accepted by try_view, but unusable
    return RingResult::kLapped;
  }
  if (slot_ != nullptr) {
    if (slot_->owner.load(std::memory_order_relaxed) != token_) {
      evicted_ = true;
      return RingResult::kEvicted;
    }
    consumed();
    if (evicted_) return RingResult::kEvicted;
  }
  return RingResult::kOk;
}

RingResult BroadcastReader::not_ready() noexcept {
  if (slot_ != nullptr && static_cast<std::int64_t>(cursor_ - published_) > 0 && !publish_position()) {
    return RingResult::kEvicted;
  }
  // SYNC(bcast_gap): pairs with the release of the gap count by the recovery (or a voiding writer).
  // SYNC(bcast_gap): a changed count means entries to look at; the ones listed for sequence
  // numbers not reached yet are kept here, so that reaching them later needs no new search.
  const std::uint64_t gaps = l_.control->rare.gaps.load(std::memory_order_acquire);
  if (gaps != gaps_seen_) {
    ahead_count_ = 0;
    const bool complete = for_each_broadcast_gap(*l_.control, [&](const BroadcastGap& gap) {
      if (static_cast<std::int64_t>(gap.sequence - sequence_) >= 0 && ahead_count_ < kBroadcastGapEntries) {
        ahead_[ahead_count_++] = gap;
      }
    });
    // Every entry appended so far was read (one still being written: read again next time).
    if (complete) gaps_seen_ = gaps;
  }
  for (std::uint32_t k = 0; k < ahead_count_; ++k) {
    const BroadcastGap& gap = ahead_[k];
    if (gap.sequence != sequence_ || static_cast<std::int64_t>(cursor_ - gap.position) < 0 ||
        static_cast<std::int64_t>(gap.end - cursor_) <= 0 || gap.end - cursor_ > l_.capacity ||
        gap.end % kBroadcastGranule != 0) {
      continue;
    }
    ++gaps_passed_;
    move_to(gap.end, sequence_ + 1);
    return RingResult::kOk;
  }
  if (overwritten(cursor_)) return overrun();
  return RingResult::kEmpty;
}

RingResult BroadcastReader::overrun() noexcept {
  if (!validates(cursor_)) {
    evicted_ = true;  // lossless from safe_from_ on: writers overwrite only a freed slot's records
    return RingResult::kEvicted;
  }
  Place place;
  if (slot_ != nullptr && live_known_ && static_cast<std::int64_t>(live_position_ - cursor_) > 0) {
    // Lossless, history overwritten before it was read: go on with the first live record, which
    // the slot protects; only history is missed.
    place = {live_position_, live_sequence_};
  } else {
    const Frontier f = load_frontier(l_);
    const std::uint64_t target =
        f.sequence == l_.initial_sequence ? f.sequence : f.sequence - 1;  // the newest record
    if (!locate(l_, target, f, &place) || static_cast<std::int64_t>(place.sequence - sequence_) < 0) {
      return RingResult::kEmpty;  // no trusted start yet (writers mid-claim): try again later
    }
  }
  ++lapped_;
  count_skipped(sequence_, place.sequence);
  move_to(place.position, place.sequence);
  if (slot_ != nullptr) publish_position();
  return RingResult::kLapped;
}

void BroadcastReader::count_skipped(std::uint64_t from, std::uint64_t to) noexcept {
  if (static_cast<std::int64_t>(to - from) <= 0) return;
  const std::uint64_t gaps = listed_gaps_between(l_, from, to);
  gaps_passed_ += gaps;
  std::uint64_t n = to - from - gaps;
  // What lies before the live start was history this reader asked for.
  if (static_cast<std::int64_t>(live_sequence_ - from) > 0) {
    const std::uint64_t history = std::min(n, live_sequence_ - from);
    history_missed_ += history;
    n -= history;
  }
  lost_ += n;
}

bool BroadcastReader::publish_position() noexcept {
  // Only forward: a start below the position registered is held by that position (and validated).
  if (slot_ == nullptr || static_cast<std::int64_t>(cursor_ - published_) <= 0) return false;
  std::uint64_t expected = published_;
  // SYNC(bcast_reader_pos): release: this reader is done with the bytes before cursor_; pairs
  // with the writers' loads of the slot position in refresh_limit().
  if (slot_->position.compare_exchange_strong(expected, cursor_, std::memory_order_release,
                                              std::memory_order_relaxed)) {
    published_ = cursor_;
    published_news_ = true;
    return true;
  }
  evicted_ = true;
  return false;
}

void BroadcastReader::unregister() noexcept {
  if (slot_ == nullptr) return;
  std::uint64_t expected = token_;
  if (slot_->owner.compare_exchange_strong(expected, kSlotReclaiming, std::memory_order_acq_rel,
                                           std::memory_order_relaxed)) {
    slot_->position.exchange(kReaderJoining, std::memory_order_acq_rel);
    // SYNC(bcast_slot_free): the position is kReaderJoining again before the slot can be taken.
    slot_->owner.store(kSlotFree, std::memory_order_release);
  }
  slot_ = nullptr;
  evicted_ = true;
}

void BroadcastReader::resync() noexcept {
  const Frontier f = load_frontier(l_);
  Place place;
  if (locate(l_, f.sequence, f, &place)) {
    move_to(place.position, place.sequence);
    return;
  }
  // The anchors lead through the corruption: take the claim pair itself, read so that both halves
  // belong together (the position the same before and after the sequence).
  for (int attempt = 0; attempt < 64; ++attempt) {
    const std::uint64_t before = __atomic_load_n(&l_.control->claim.position, __ATOMIC_ACQUIRE);
    const std::uint64_t sequence = __atomic_load_n(&l_.control->claim.sequence, __ATOMIC_ACQUIRE);
    const std::uint64_t after = __atomic_load_n(&l_.control->claim.position, __ATOMIC_ACQUIRE);
    if (before == after && before % kBroadcastGranule == 0) {
      move_to(before, sequence);
      return;
    }
  }
}

bool BroadcastReader::stalled_on_claim() const noexcept {
  if (start_pending_) return true;
  const std::uint64_t word0 = detail::load_word_acquire(l_.data + l_.index_of(cursor_));
  const std::uint64_t mark = word0 ^ expect_;
  if (mark == 0 || mark == kFillerMark || mark == kVoidMark) return false;
  const std::uint64_t claimed = __atomic_load_n(&l_.control->claim.position, __ATOMIC_RELAXED);
  return static_cast<std::int64_t>(claimed - cursor_) > 0;
}

std::uint64_t BroadcastReader::writer_position_approx() const noexcept {
  return __atomic_load_n(&l_.control->claim.position, __ATOMIC_RELAXED);
}

bool BroadcastReader::closed() const noexcept { return load_ring_state(l_.control) == RingState::kClosed; }

}  // namespace shmring
