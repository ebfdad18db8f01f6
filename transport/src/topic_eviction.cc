#include "topic_eviction.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "wait.h"

namespace shmring::detail {
namespace {

// Calls visit(index, view) for every reader slot held by a subscriber whose start is settled
// (racy views: the slots change under the caller).
template <typename Visit>
void for_each_settled_reader(const BroadcastReaderSlots& slots, Visit&& visit) {
  for (std::uint32_t i = 0; i < slots.size(); ++i) {
    const BroadcastReaderSlots::View v = slots.slot(i);
    if (v.settled()) visit(i, v);
  }
}

// The evicted subscriber's descriptor hears about it even while it sleeps.
void tell_evicted(ChannelSegment& seg, std::uint64_t owner_token) {
  PeerSlot* peers = seg.peers();
  for (std::uint32_t i = 0; i < seg.info().max_peers; ++i) {
    PeerSlot& s = peers[i];
    if (state_of(s) == PeerState::kActive && s.token.load(std::memory_order_relaxed) == owner_token) {
      signal_peer(seg, s, WaitEvent::kEvicted);
      return;
    }
  }
}

}  // namespace

TopicEviction::TopicEviction(BroadcastReaderSlots slots, std::uint64_t evict_lag) noexcept
    : slots_(std::move(slots)), evict_lag_(evict_lag), next_lag_check_(slots_.claim_position_approx()) {}

bool TopicEviction::evict(ChannelSegment& seg, std::uint32_t index, std::uint64_t owner) noexcept {
  if (slots_.evict(index, owner) != RingResult::kOk) return false;
  tell_evicted(seg, owner);
  ++evictions_;
  seg.control()->counters.evictions.fetch_add(1, std::memory_order_relaxed);
  return true;
}

void TopicEviction::evict_slowest(ChannelSegment& seg) noexcept {
  const std::uint64_t claimed = slots_.claim_position_approx();
  std::optional<std::uint64_t> oldest;
  for_each_settled_reader(slots_, [&](std::uint32_t, const BroadcastReaderSlots::View& v) {
    if (!oldest || claimed - v.position > claimed - *oldest) oldest = v.position;
  });
  if (!oldest) return;
  for_each_settled_reader(slots_, [&](std::uint32_t i, const BroadcastReaderSlots::View& v) {
    if (v.position == *oldest) evict(seg, i, v.owner);
  });
}

void TopicEviction::evict_laggards(ChannelSegment& seg, bool now) noexcept {
  if (evict_lag_ == 0) return;
  const std::uint64_t claimed = slots_.claim_position_approx();
  if (!now && static_cast<std::int64_t>(claimed - next_lag_check_) < 0) return;
  // The interval leaves a laggard's lag room to be seen between evict_lag and the full ring.
  const std::uint64_t capacity = slots_.capacity();
  const std::uint64_t room = capacity > evict_lag_ ? (capacity - evict_lag_) / 2 : 0;
  next_lag_check_ = claimed + std::max<std::uint64_t>(std::min(evict_lag_ / 4, room), 64);
  for_each_settled_reader(slots_, [&](std::uint32_t i, const BroadcastReaderSlots::View& v) {
    const std::uint64_t lag = claimed - v.position;
    if (lag > evict_lag_ && lag <= capacity) evict(seg, i, v.owner);
  });
}

void TopicEviction::evict_owned_by(std::uint64_t token) noexcept {
  if (token == kSlotFree || token == kSlotReclaiming) return;
  for (std::uint32_t i = 0; i < slots_.size(); ++i) {
    if (slots_.slot(i).owner == token) slots_.evict(i, token);
  }
}

}  // namespace shmring::detail
