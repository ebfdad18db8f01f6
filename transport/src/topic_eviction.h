// Private: how a topic gets rid of lossless subscribers that hold its publishers back (the sibling
// of queue_recovery.h). A lossless subscriber's reader slot holds every publisher back; a slot is
// freed (evicted, BroadcastReaderSlots::evict) when
//  * its subscriber died (the recovery, under the segment lock: evict_owned_by);
//  * it held a publisher back for evict_after (evict_slowest: the subscribers at the oldest
//    position go);
//  * it lags by more than evict_lag bytes (evict_laggards: after publishing, each time
//    min(evict_lag / 4, (capacity - evict_lag) / 2) more bytes went in, and whenever a publisher is
//    held back).
// An evicted subscriber's descriptor hears about it (WaitEvent::kEvicted); its receives return
// kEvicted (at once, or after the messages it was already handed intact). Each eviction of a live
// subscriber counts in the endpoint's evictions() and ChannelCounters::evictions.
#pragma once

#include <cstdint>

#include "channel_segment.h"
#include "shmring/queue/broadcast_reader_slots.h"

namespace shmring::detail {

class TopicEviction {
 public:
  // `evict_lag`: bytes (0: never).
  TopicEviction(BroadcastReaderSlots slots, std::uint64_t evict_lag) noexcept;

  // Evicts the live lossless subscribers at the oldest position (the ones holding publishers).
  void evict_slowest(ChannelSegment& seg) noexcept;
  // Evicts those that lag by more than evict_lag bytes: after a publish once the claim position
  // passed the next check point, or (`now`) whenever a publisher is held back.
  void evict_laggards(ChannelSegment& seg, bool now) noexcept;
  // The recovery (under the lock): frees the reader slot `token` owns, if any (a dead subscriber,
  // also one that died while it was registering). Not counted as an eviction of a live subscriber.
  void evict_owned_by(std::uint64_t token) noexcept;

  bool lags_checked() const noexcept { return evict_lag_ != 0; }
  std::uint64_t evictions() const noexcept { return evictions_; }

 private:
  // Frees slot `index` of `owner`, tells its subscriber and counts it. True if it was freed.
  bool evict(ChannelSegment& seg, std::uint32_t index, std::uint64_t owner) noexcept;

  BroadcastReaderSlots slots_;
  std::uint64_t evict_lag_ = 0;
  std::uint64_t next_lag_check_ = 0;
  std::uint64_t evictions_ = 0;
};

}  // namespace shmring::detail
