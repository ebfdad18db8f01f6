#include "shmring/queue/broadcast_publishers.h"

#include <vector>

#include "shmring/queue/detail/atomic_words.h"

namespace shmring {
namespace {

struct Attempt {
  std::uint32_t slot = 0;
  std::uint64_t position = 0;
  std::uint64_t sequence = 0;
  std::uint64_t end = 0;  // 0: none
  bool dead = false;
};

Attempt attempt_of(const BroadcastPublisherSlot& slot, std::uint32_t index, bool dead) {
  Attempt a;
  a.slot = index;
  a.dead = dead;
  // SYNC(bcast_attempt): acquire; the writer stores its attempt before its claim CAS, and clears
  // `end` (release) after its commit.
  a.end = slot.attempt_end.load(std::memory_order_acquire);
  a.position = slot.attempt_position.load(std::memory_order_acquire);
  a.sequence = slot.attempt_sequence.load(std::memory_order_acquire);
  return a;
}

class Recoverer {
 public:
  explicit Recoverer(const BroadcastLayout& l) : l_(l) {
    // SYNC(bcast_claim): the whole pair at once (a CAS that changes nothing): every claim before
    // it, and each claimer's attempt, is visible.
    const detail::WordPair pair = detail::load_pair(&l_.control->claim.position);
    frontier_position_ = pair.low;
    frontier_sequence_ = pair.high;
  }

  // One publisher stores the pair's halves one after the other: killed between them, it leaves a
  // pair that never was. Its attempt (p, s, e) says which: (e, s) is a claim half made, (p, s + 1)
  // a claim half handed back. Runs only when that publisher is dead (its slot's owner is), before
  // the pair is judged.
  void repair_single(const Attempt& a) {
    if (a.end == 0) return;
    std::uint64_t* pair = &l_.control->claim.position;
    if (frontier_position_ == a.end && frontier_sequence_ == a.sequence) {
      frontier_sequence_ = a.sequence + 1;
    } else if (frontier_position_ == a.position && frontier_sequence_ == a.sequence + 1) {
      frontier_sequence_ = a.sequence;
    } else {
      return;
    }
    detail::WordPair expected{frontier_position_, frontier_sequence_ == a.sequence ? a.sequence + 1 : a.sequence};
    detail::compare_exchange_pair(pair, &expected, {frontier_position_, frontier_sequence_});
  }

  // The end of the dead claim `a`, or 0 when it needs no gap (moot) or cannot be decided yet
  // (*defer).
  std::uint64_t gap_end(const Attempt& a, const std::vector<Attempt>& all, bool* defer) const {
    *defer = false;
    if (static_cast<std::int64_t>(frontier_sequence_ - a.sequence) <= 0) {
      // Not claimed as of the pair read before the slots; but the writer may have claimed (and
      // died) between that read and the slot's: then the pair has moved past it by now, and the
      // claim is judged by a later recovery, whose pair read comes before its slot read (freeing
      // the slot now would leave the claim neither committed nor listed: every reader stuck at
      // it). Still not past it: the dead writer never made its CAS, and never will.
      // SYNC(bcast_claim): the same whole-pair read as the constructor's, after the slot loads.
      const detail::WordPair now = detail::load_pair(&l_.control->claim.position);
      if (static_cast<std::int64_t>(now.high - a.sequence) > 0) *defer = true;
      return 0;
    }
    if (a.position % kBroadcastGranule != 0 || frontier_position_ - a.position > l_.capacity) return 0;
    if (committed(a.position, a.sequence) || listed(a.sequence)) return 0;
    for (const Attempt& other : all) {
      if (!other.dead && other.end != 0 && other.position == a.position && other.sequence == a.sequence) {
        *defer = true;  // a live writer may own it
        return 0;
      }
    }
    std::uint64_t end = 0;
    if (frontier_sequence_ == a.sequence + 1) {
      end = frontier_position_;  // the last claim: the pair says where it ends
    } else {
      bool ambiguous = false;
      for (const Attempt& other : all) {
        if (!other.dead || other.end == 0 || other.position != a.position || other.sequence != a.sequence) continue;
        if (end != 0 && other.end != end) ambiguous = true;
        end = other.end;
      }
      if (ambiguous) end = confirmed_end(a, all);
      if (end == 0) {
        *defer = true;
        return 0;
      }
    }
    // Nothing an honest writer claims: more than two of the largest records, or not in granules.
    if (end % kBroadcastGranule != 0 || static_cast<std::int64_t>(end - a.position) <= 0 ||
        end - a.position > 2 * broadcast_record_bytes(l_.max_record)) {
      return 0;
    }
    return end;
  }

 private:
  // Whether the claim (p, s) was committed: a message or a void at p, or the wrap filler at p and
  // a message or void at the start of the ring.
  bool committed(std::uint64_t p, std::uint64_t s) const {
    const std::uint64_t mark = word(p) ^ commit_word(l_.key, p, s);
    if (mark == 0 || mark == kVoidMark) return true;
    if (mark != kFillerMark) return false;
    const std::uint64_t q = p + (l_.capacity - l_.index_of(p));
    const std::uint64_t after = word(q) ^ commit_word(l_.key, q, s);
    return after == 0 || after == kVoidMark;
  }
  bool committed_any(std::uint64_t p, std::uint64_t s) const {
    const std::uint64_t mark = word(p) ^ commit_word(l_.key, p, s);
    return mark == 0 || mark == kVoidMark || mark == kFillerMark;
  }
  // The claim after (p, s) started at one of the candidates' ends: the one some slot notes as its
  // claim of s + 1, or the one where a record of s + 1 is committed.
  std::uint64_t confirmed_end(const Attempt& a, const std::vector<Attempt>& all) const {
    for (const Attempt& candidate : all) {
      if (!candidate.dead || candidate.end == 0 || candidate.position != a.position ||
          candidate.sequence != a.sequence) {
        continue;
      }
      for (const Attempt& next : all) {
        if (next.end != 0 && next.sequence == a.sequence + 1 && next.position == candidate.end) {
          return candidate.end;
        }
      }
      if (committed_any(candidate.end, a.sequence + 1) || listed_at(a.sequence + 1, candidate.end)) {
        return candidate.end;
      }
    }
    return 0;
  }
  // Whether the gap table lists sequence `s` (starting at `position`, unless it is ~0).
  bool listed_at(std::uint64_t s, std::uint64_t position) const {
    bool found = false;
    for_each_broadcast_gap(*l_.control, [&](const BroadcastGap& gap) {
      if (gap.sequence == s && (position == ~std::uint64_t{0} || gap.position == position)) found = true;
    });
    return found;
  }
  bool listed(std::uint64_t s) const { return listed_at(s, ~std::uint64_t{0}); }
  std::uint64_t word(std::uint64_t position) const {
    return detail::load_word_acquire(l_.data + l_.index_of(position));
  }

  const BroadcastLayout& l_;
  std::uint64_t frontier_position_ = 0;
  std::uint64_t frontier_sequence_ = 0;
};

}  // namespace

absl::StatusOr<BroadcastPublishers> BroadcastPublishers::attach(void* region, std::size_t bytes) {
  absl::StatusOr<BroadcastLayout> layout = BroadcastLayout::map(region, bytes);
  if (!layout.ok()) return layout.status();
  BroadcastPublishers publishers;
  publishers.l_ = *layout;
  return publishers;
}

BroadcastPublishers::View BroadcastPublishers::slot(std::uint32_t index) const noexcept {
  if (index >= l_.max_publishers) return {};
  const BroadcastPublisherSlot& s = l_.publishers[index];
  View v;
  v.owner = s.owner.load(std::memory_order_relaxed);
  v.id = s.id.load(std::memory_order_relaxed);
  v.published = s.published.load(std::memory_order_relaxed);
  v.claiming = s.attempt_end.load(std::memory_order_relaxed) != 0;
  return v;
}

BroadcastPublishers::Recovery BroadcastPublishers::recover_with(bool (*alive)(void*, std::uint64_t),
                                                                void* context) noexcept {
  Recovery out;
  // The claim pair first, then the slots: a claim the pair shows was noted (before its CAS) in a
  // slot this loop reads afterwards; a claim made after the pair was read is not judged here.
  Recoverer recoverer(l_);
  std::vector<Attempt> attempts;
  std::vector<std::uint64_t> owners;
  bool any_dead = false;
  for (std::uint32_t i = 0; i < l_.max_publishers; ++i) {
    const std::uint64_t owner = l_.publishers[i].owner.load(std::memory_order_acquire);
    if (owner == kSlotFree || owner == kSlotReclaiming) continue;
    const bool dead = !alive(context, owner);
    any_dead = any_dead || dead;
    attempts.push_back(attempt_of(l_.publishers[i], i, dead));
    owners.push_back(owner);
  }
  if (!any_dead) return out;
  if (l_.max_publishers == 1 && attempts.size() == 1) recoverer.repair_single(attempts[0]);
  for (std::size_t k = 0; k < attempts.size(); ++k) {
    const Attempt& a = attempts[k];
    if (!a.dead) continue;
    if (a.end != 0) {
      bool defer = false;
      const std::uint64_t end = recoverer.gap_end(a, attempts, &defer);
      if (defer) {
        ++out.deferred;
        continue;
      }
      if (end != 0) {
        append_broadcast_gap(*l_.control, a.sequence, a.position, end, kGapAbandoned);
        l_.control->rare.abandoned.fetch_add(1, std::memory_order_relaxed);
        ++out.abandoned;
      }
    }
    BroadcastPublisherSlot& slot = l_.publishers[a.slot];
    slot.attempt_end.store(0, std::memory_order_relaxed);
    slot.id.store(0, std::memory_order_relaxed);
    std::uint64_t expected = owners[k];
    // SYNC(bcast_slot_free): the slot's attempt is cleared before it can be taken again.
    if (slot.owner.compare_exchange_strong(expected, kSlotFree, std::memory_order_release,
                                           std::memory_order_relaxed)) {
      ++out.freed;
    }
  }
  return out;
}

std::uint64_t BroadcastPublishers::claim_sequence_approx() const noexcept {
  return __atomic_load_n(&l_.control->claim.sequence, __ATOMIC_RELAXED);
}
std::uint64_t BroadcastPublishers::claim_position_approx() const noexcept {
  return __atomic_load_n(&l_.control->claim.position, __ATOMIC_RELAXED);
}

}  // namespace shmring
