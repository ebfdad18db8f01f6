// Inspection of channels from outside, declared in channel.h: read_stats (counters without
// disturbing the channel), list_channels, remove_channel, and the clean-up of stale wait files.
#include <algorithm>
#include <string>
#include <vector>

#include "channel_segment.h"
#include "control_block.h"
#include "shmring/core/detail/wait_files.h"
#include "shmring/core/segment_directory.h"
#include "shmring/core/shared_memory.h"
#include "shmring/core/stable_hash.h"
#include "shmring/queue/broadcast_publishers.h"
#include "shmring/queue/mpmc_queue.h"
#include "shmring/transport/channel.h"
#include "wait.h"

namespace shmring {

namespace {

// A topic's ring: its shape, abandoned messages, each publisher's id and each subscriber's lag
// behind the claims (the ring is mapped read-only: only loads).
void add_topic_stats(const void* ring, std::uint64_t ring_bytes, const ControlBlock* cb, ChannelStats* st) {
  const PeerSlot* slots = peer_slots(cb);
  absl::StatusOr<BroadcastPublishers> publishers =
      BroadcastPublishers::attach(const_cast<void*>(ring), ring_bytes);  // views only
  const std::uint64_t claimed = publishers.ok() ? publishers->claim_position_approx() : 0;
  if (publishers.ok()) {
    st->max_publishers = publishers->size();
    st->abandoned = publishers->abandoned();
    absl::StatusOr<BroadcastLayout> layout = BroadcastLayout::map(ring, ring_bytes);
    st->history = layout.ok() ? layout->history : 0;
  }
  for (PeerStats& p : st->peers) {
    const PeerSlot& s = slots[p.index];
    const std::uint64_t position = p.lag;  // the subscriber's position, stored by stats_of
    p.lag = 0;
    if (!publishers.ok()) continue;
    if (p.role == PeerRole::kSubscriber) {
      p.lossless = (s.peer_flags.load(std::memory_order_relaxed) & kPeerLosslessSubscriber) != 0;
      p.lag = static_cast<std::int64_t>(claimed - position) > 0 ? claimed - position : 0;
    } else if (p.role == PeerRole::kPublisher) {
      const std::uint64_t token = s.token.load(std::memory_order_relaxed);
      for (std::uint32_t i = 0; i < publishers->size(); ++i) {
        const BroadcastPublishers::View v = publishers->slot(i);
        if (v.owner == token) p.publisher_id = v.id;
      }
    }
  }
}

absl::StatusOr<ChannelStats> stats_of(SharedMemory& memory, std::string_view what) {
  absl::StatusOr<detail::ChannelInfo> info =
      detail::read_channel_header(memory.const_data(), memory.size(), what);
  if (!info.ok()) return info.status();
  const auto* cb = static_cast<const ControlBlock*>(memory.const_data());
  ChannelStats st;
  st.name = info->name;
  st.kind = info->kind;
  st.lossless = (info->flags & kChannelLossless) != 0;
  st.capacity = info->capacity;
  st.max_message = info->max_message;
  st.max_peers = info->max_peers;
  st.attachments = memory.num_attachments();
  const ChannelCounters& c = cb->counters;
  st.sent = c.retired_sent.load(std::memory_order_relaxed);
  st.received = c.retired_received.load(std::memory_order_relaxed);
  st.lost = c.retired_lost.load(std::memory_order_relaxed);
  st.blocked_ns = c.retired_blocked_ns.load(std::memory_order_relaxed);
  st.peers_reclaimed = c.peers_reclaimed.load(std::memory_order_relaxed);
  st.claims_skipped = c.claims_skipped.load(std::memory_order_relaxed);
  st.items_redelivered = c.items_redelivered.load(std::memory_order_relaxed);
  st.evictions = c.evictions.load(std::memory_order_relaxed);
  const std::uint32_t data_waiters = cb->data_wake.waiters.load(std::memory_order_relaxed);
  const std::uint32_t space_waiters = cb->space_wake.waiters.load(std::memory_order_relaxed);
  st.receivers_parked = data_waiters & kParkedMask;
  st.senders_parked = space_waiters & kParkedMask;
  st.receivers_armed = data_waiters >> kArmedShift;
  st.senders_armed = space_waiters >> kArmedShift;
  const PeerSlot* slots = peer_slots(cb);
  for (std::uint32_t i = 0; i < info->max_peers; ++i) {
    const PeerSlot& s = slots[i];
    const std::uint32_t state = s.state.load(std::memory_order_acquire);
    if (state == static_cast<std::uint32_t>(PeerState::kFree)) continue;
    PeerStats p;
    p.index = i;
    p.state = static_cast<PeerState>(state);
    p.role = static_cast<PeerRole>(s.role.load(std::memory_order_relaxed));
    p.pid = s.pid.load(std::memory_order_relaxed);
    p.alive = detail::peer_alive_in(memory, i, s);
    p.sent = s.sent.load(std::memory_order_relaxed);
    p.received = s.received.load(std::memory_order_relaxed);
    p.lost = s.lost.load(std::memory_order_relaxed);
    p.blocked_ns = s.blocked_ns.load(std::memory_order_relaxed);
    p.lag = s.position.load(std::memory_order_relaxed);
    if (p.state == PeerState::kActive) {  // dead peers' counters are in the retired totals already
      st.sent += p.sent;
      st.received += p.received;
      st.lost += p.lost;
      st.blocked_ns += p.blocked_ns;
    }
    st.peers.push_back(p);
  }
  const void* ring = static_cast<const std::byte*>(memory.const_data()) + info->ring_offset;
  if (info->kind == ChannelKind::kQueue) {
    const absl::StatusOr<std::uint64_t> depth = MpmcQueue<>::depth_of(ring, info->ring_bytes);
    st.depth = depth.ok() ? std::min(*depth, info->capacity) : 0;
  }
  if (info->kind == ChannelKind::kTopic) add_topic_stats(ring, info->ring_bytes, cb, &st);
  return st;
}

}  // namespace

absl::StatusOr<ChannelStats> read_stats(std::string_view name) {
  if (absl::Status s = validate_channel_name(name); !s.ok()) return s;
  SharedMemory memory(channel_key(name));
  if (!memory.attach(AccessMode::kReadOnly)) return memory.status();
  return stats_of(memory, detail::cat("channel '", name, "'"));
}

std::vector<std::string> list_channels() {
  std::vector<std::string> names;
  // Every channel's file starts so (kChannelKeyPrefix has no byte native_key_for replaces).
  const std::string prefix = detail::cat(kSegmentNamePrefix, kChannelKeyPrefix);
  for (const std::string& path : segment_paths(kDefaultSegmentDirectory, prefix)) {
    const std::string entry = path.substr(kDefaultSegmentDirectory.size() + 1);
    SharedMemory memory;
    memory.set_native_key(entry);
    if (!memory.attach(AccessMode::kReadOnly)) continue;  // stale, foreign or not permitted
    absl::StatusOr<detail::ChannelInfo> info =
        detail::read_channel_header(memory.const_data(), memory.size(), entry);
    if (!info.ok()) continue;
    // Only a segment whose name really is this channel's (not a look-alike).
    if (SharedMemory::native_key_for(channel_key(info->name)) != entry) continue;
    names.push_back(info->name);
  }
  return names;
}

std::vector<std::string> collect_stale_wait_files(bool dry_run) {
  return detail::collect_stale_wait_files(0, dry_run);
}

absl::Status remove_channel(std::string_view name) {
  if (absl::Status s = validate_channel_name(name); !s.ok()) return s;
  SharedMemory memory(channel_key(name));
  if (!memory.exists()) {
    return absl::NotFoundError(detail::cat("remove_channel: no channel '", name, "'"));
  }
  // Endpoints that wait on descriptors hear about it (WaitEvent::kRemoved): attached before the
  // name goes, signalled after. Best effort: without write access nobody is told.
  SharedMemory notifier(channel_key(name));
  const bool attached = notifier.attach(AccessMode::kReadWrite);
  if (!memory.destroy(DestroyMode::kForceNoWait)) return memory.status();
  if (attached) {
    absl::StatusOr<detail::ChannelInfo> info =
        detail::read_channel_header(notifier.data(), notifier.size(), "remove_channel");
    if (info.ok()) {
      auto* control = static_cast<ControlBlock*>(notifier.data());
      const std::uint64_t id =
          stable_hash64(notifier.native_key(), static_cast<std::uint64_t>(info->created_unix_ns));
      PeerSlot* slots = peer_slots(control);
      for (std::uint32_t i = 0; i < info->max_peers; ++i) {
        if (detail::state_of(slots[i]) != PeerState::kActive) continue;
        detail::signal_peer(id, control, slots[i], WaitEvent::kRemoved);
      }
    }
    notifier.detach();
  }
  return absl::OkStatus();
}

}  // namespace shmring
