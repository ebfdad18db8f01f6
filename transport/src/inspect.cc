// Inspection of channels from outside, declared in channel.h: read_stats (counters without
// disturbing the channel), list_channels, remove_channel, and the clean-up of stale wait files.
//
// Channels of any owner are read with pread through core's SegmentFile, never mapped: a file its
// owner (or anyone with write access) keeps resizing cannot kill the tool that looks at it, and
// reading is not an attachment, so it keeps nothing alive.
#include <sys/stat.h>
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "channel_segment.h"
#include "control_block.h"
#include "shmring/core/detail/liveness_file.h"
#include "shmring/core/detail/wait_files.h"
#include "shmring/core/segment_directory.h"
#include "shmring/core/shared_memory.h"
#include "shmring/core/stable_hash.h"
#include "shmring/queue/broadcast_layout.h"
#include "shmring/queue/mpmc_queue.h"
#include "shmring/transport/channel.h"
#include "wait.h"

namespace shmring {

namespace {

using detail::ChannelInfo;
using detail::LivenessFile;
using detail::RandomId;

// How much of a ring region a tool reads: its header and positions (every ring keeps them in its
// first bytes; nothing past them is needed for stats). A topic's ring: its fixed blocks and as
// many publisher slots as a ring can have.
constexpr std::size_t kRingPeekBytes = 1024;
constexpr std::size_t kTopicPeekBytes =
    sizeof(BroadcastControl) + std::size_t{kMaxBroadcastPublishers} * sizeof(BroadcastPublisherSlot);

std::string channel_path(std::string_view name) {
  return std::string(kDefaultSegmentDirectory) + "/" + SharedMemory::native_key_for(channel_key(name));
}

// The copy's storage: 128-byte blocks, so the control block and ring structs in it are aligned.
struct alignas(kFalseSharingRange) Block {
  std::byte b[kFalseSharingRange];
};

// A channel's control block (with its peer slots) and the start of its ring, read with pread.
struct ChannelCopy {
  ChannelInfo info;
  std::vector<Block> storage;  // [0, ring_offset + ring peek) of the user data
  std::size_t size = 0;
  const std::byte* data() const { return reinterpret_cast<const std::byte*>(storage.data()); }
  const ControlBlock* control() const { return reinterpret_cast<const ControlBlock*>(data()); }
  const std::byte* ring() const { return data() + info.ring_offset; }
  std::size_t ring_peek() const { return size - info.ring_offset; }
};

absl::StatusOr<ChannelCopy> copy_channel(const SegmentFile& file, std::string_view what) {
  const std::uint64_t data_bytes = file.listing().data_bytes;
  if (data_bytes < sizeof(ControlBlock)) {
    return absl::DataLossError(detail::cat(what, ": too small for a channel"));
  }
  ChannelCopy copy;
  copy.storage.resize(sizeof(ControlBlock) / sizeof(Block));
  copy.size = sizeof(ControlBlock);
  auto bytes = [&] {
    return std::span<std::byte>(reinterpret_cast<std::byte*>(copy.storage.data()), copy.size);
  };
  if (absl::Status s = file.read(0, bytes()); !s.ok()) return s;
  absl::StatusOr<ChannelInfo> info = detail::read_channel_header(copy.data(), data_bytes, what);
  if (!info.ok()) return info.status();
  copy.size = copy.info.ring_offset = info->ring_offset;  // (checked against data_bytes)
  copy.size += std::min<std::uint64_t>(info->ring_bytes,
                                       info->kind == ChannelKind::kTopic ? kTopicPeekBytes : kRingPeekBytes);
  copy.storage.resize((copy.size + sizeof(Block) - 1) / sizeof(Block));
  if (absl::Status s = file.read(0, bytes()); !s.ok()) return s;
  // Checked once more from the full copy: a header that changed between the reads is refused.
  absl::StatusOr<ChannelInfo> again = detail::read_channel_header(copy.data(), data_bytes, what);
  if (!again.ok()) return again.status();
  if (again->ring_offset != info->ring_offset || again->max_peers != info->max_peers) {
    return absl::UnavailableError(detail::cat(what, ": changed while it was read"));
  }
  copy.info = *std::move(again);
  return copy;
}

// Queue depth and a topic's writer tail, from the ring's first bytes.
std::uint64_t queue_depth(const ChannelCopy& c) {
  if (c.ring_peek() < sizeof(MpmcControl)) return 0;
  alignas(MpmcControl) std::byte control[sizeof(MpmcControl)];
  std::memcpy(control, c.ring(), sizeof control);
  if (!read_ring_header(control, c.info.ring_bytes, RingKind::kMpmc).ok()) return 0;
  const auto* q = reinterpret_cast<const MpmcControl*>(control);
  const std::uint64_t enqueue = q->enqueue_pos.value.load(std::memory_order_relaxed);
  const std::uint64_t dequeue = q->dequeue_pos.value.load(std::memory_order_relaxed);
  const auto depth = static_cast<std::int64_t>(enqueue - dequeue);
  return depth <= 0 ? 0 : std::min<std::uint64_t>(static_cast<std::uint64_t>(depth), c.info.capacity);
}

// What a tool shows of a topic's ring, from its first bytes: where the writers are (lag), its
// shape, the dead publishers' messages skipped, and each publisher slot's owner token and id.
struct TopicPeek {
  std::uint64_t claimed = 0;
  std::uint32_t max_publishers = 0;
  std::uint64_t history = 0;
  std::uint64_t abandoned = 0;
  std::vector<std::pair<std::uint64_t, std::uint32_t>> publishers;  // (owner token, id)
};

std::optional<TopicPeek> topic_peek(const ChannelCopy& c) {
  if (c.ring_peek() < sizeof(BroadcastControl)) return std::nullopt;
  if (!read_ring_header(c.ring(), c.info.ring_bytes, RingKind::kBroadcast).ok()) return std::nullopt;
  const auto* control = reinterpret_cast<const BroadcastControl*>(c.ring());
  TopicPeek peek;
  peek.claimed = control->claim.position;
  peek.max_publishers = control->descriptor.max_publishers;
  peek.history = control->descriptor.history;
  peek.abandoned = control->rare.abandoned.load(std::memory_order_relaxed);
  const auto* slots = reinterpret_cast<const BroadcastPublisherSlot*>(control + 1);
  const std::size_t fit = (c.ring_peek() - sizeof(BroadcastControl)) / sizeof(BroadcastPublisherSlot);
  for (std::uint32_t i = 0; i < peek.max_publishers && i < fit; ++i) {
    peek.publishers.emplace_back(slots[i].owner.load(std::memory_order_relaxed),
                                 slots[i].id.load(std::memory_order_relaxed));
  }
  return peek;
}

ChannelStats stats_of(const SegmentFile& file, const ChannelCopy& c) {
  const ChannelInfo& info = c.info;
  const ControlBlock* cb = c.control();
  ChannelStats st;
  st.name = info.name;
  st.kind = info.kind;
  st.lossless = (info.flags & kChannelLossless) != 0;
  st.capacity = info.capacity;
  st.max_message = info.max_message;
  st.max_peers = info.max_peers;
  st.attachments = file.listing().attachments;
  const ChannelCounters& counters = cb->counters;
  st.sent = counters.retired_sent.load(std::memory_order_relaxed);
  st.received = counters.retired_received.load(std::memory_order_relaxed);
  st.lost = counters.retired_lost.load(std::memory_order_relaxed);
  st.blocked_ns = counters.retired_blocked_ns.load(std::memory_order_relaxed);
  st.peers_reclaimed = counters.peers_reclaimed.load(std::memory_order_relaxed);
  st.claims_skipped = counters.claims_skipped.load(std::memory_order_relaxed);
  st.items_redelivered = counters.items_redelivered.load(std::memory_order_relaxed);
  st.evictions = counters.evictions.load(std::memory_order_relaxed);
  const std::uint32_t data_waiters = cb->data_wake.waiters.load(std::memory_order_relaxed);
  const std::uint32_t space_waiters = cb->space_wake.waiters.load(std::memory_order_relaxed);
  st.receivers_parked = data_waiters & kParkedMask;
  st.senders_parked = space_waiters & kParkedMask;
  st.receivers_armed = data_waiters >> kArmedShift;
  st.senders_armed = space_waiters >> kArmedShift;
  // Liveness from the channel's liveness file, if this user may open it (read-only: only asked);
  // otherwise each peer's (pid, start time) decides.
  absl::StatusOr<LivenessFile> opened =
      LivenessFile::open(stable_hash64(file.listing().native_key), info.liveness_id, file.listing().owner,
                         /*writable=*/false);
  const LivenessFile liveness = opened.ok() ? *std::move(opened) : LivenessFile();
  const std::optional<TopicPeek> topic = info.kind == ChannelKind::kTopic ? topic_peek(c) : std::nullopt;
  if (topic.has_value()) {
    st.max_publishers = topic->max_publishers;
    st.history = topic->history;
    st.abandoned = topic->abandoned;
  }
  const PeerSlot* slots = peer_slots(cb);
  for (std::uint32_t i = 0; i < info.max_peers; ++i) {
    const PeerSlot& s = slots[i];
    const std::uint32_t state = s.state.load(std::memory_order_acquire);
    if (state == static_cast<std::uint32_t>(PeerState::kFree)) continue;
    PeerStats p;
    p.index = i;
    p.state = static_cast<PeerState>(state);
    p.role = static_cast<PeerRole>(s.role.load(std::memory_order_relaxed));
    p.pid = s.pid.load(std::memory_order_relaxed);
    p.alive = detail::peer_alive_in(liveness, i, s);
    p.sent = s.sent.load(std::memory_order_relaxed);
    p.received = s.received.load(std::memory_order_relaxed);
    p.lost = s.lost.load(std::memory_order_relaxed);
    p.blocked_ns = s.blocked_ns.load(std::memory_order_relaxed);
    // SYNC(upstream_link): pairs with the release in set_upstream_link (upstream_from first).
    if (const std::uint32_t link = s.upstream_link.load(std::memory_order_acquire); link != 0) {
      p.upstream_up = link == kUpstreamLinkUp;
      for (std::size_t k = 0; k < sizeof s.upstream_from && s.upstream_from[k] != '\0'; ++k) {
        const unsigned char byte = static_cast<unsigned char>(s.upstream_from[k]);
        if (byte >= 0x20 && byte < 0x7f) {  // written by another process: nothing to a terminal
          p.upstream_from += static_cast<char>(byte);
        } else {
          char escaped[8];
          std::snprintf(escaped, sizeof escaped, "\\x%02x", byte);
          p.upstream_from += escaped;
        }
      }
    }
    if (topic.has_value() && p.role == PeerRole::kSubscriber) {
      const std::uint64_t position = s.position.load(std::memory_order_relaxed);
      p.lag = static_cast<std::int64_t>(topic->claimed - position) > 0 ? topic->claimed - position : 0;
      p.lossless = (s.peer_flags.load(std::memory_order_relaxed) & kPeerLosslessSubscriber) != 0;
    }
    if (topic.has_value() && p.role == PeerRole::kPublisher) {
      const std::uint64_t token = s.token.load(std::memory_order_relaxed);
      for (const auto& [owner, id] : topic->publishers) {
        if (owner == token) p.publisher_id = id;
      }
    }
    if (p.state == PeerState::kActive) {  // dead peers' counters are in the retired totals already
      st.sent += p.sent;
      st.received += p.received;
      st.lost += p.lost;
      st.blocked_ns += p.blocked_ns;
    }
    st.peers.push_back(p);
  }
  if (info.kind == ChannelKind::kQueue) st.depth = queue_depth(c);
  return st;
}

}  // namespace

absl::StatusOr<ChannelStats> read_stats(std::string_view name) {
  if (absl::Status s = validate_channel_name(name); !s.ok()) return s;
  const std::string what = detail::cat("channel '", name, "'");
  absl::StatusOr<SegmentFile> file = SegmentFile::open(channel_path(name));
  if (!file.ok()) {
    if (absl::IsNotFound(file.status())) {
      return absl::NotFoundError(detail::cat(what, ": no such channel"));
    }
    return file.status();
  }
  if (file->listing().liveness == SegmentLiveness::kStale) {
    return absl::NotFoundError(detail::cat(what, ": no live channel (every endpoint is gone)"));
  }
  absl::StatusOr<ChannelCopy> copy = copy_channel(*file, what);
  if (!copy.ok()) return copy.status();
  if (copy->info.name != name) return absl::DataLossError(detail::cat(what, ": names another channel"));
  return stats_of(*file, *copy);
}

std::vector<std::string> list_channels() {
  std::vector<std::string> names;
  // Every channel's file starts so (kChannelKeyPrefix has no byte native_key_for replaces).
  const std::string prefix = detail::cat(kSegmentNamePrefix, kChannelKeyPrefix);
  for (const std::string& path : segment_paths(kDefaultSegmentDirectory, prefix)) {
    const std::string entry = path.substr(kDefaultSegmentDirectory.size() + 1);
    absl::StatusOr<SegmentFile> file = SegmentFile::open(path);
    if (!file.ok() || file->listing().liveness == SegmentLiveness::kStale) continue;
    absl::StatusOr<ChannelCopy> copy = copy_channel(*file, entry);
    if (!copy.ok()) continue;
    // Only a segment whose name really is this channel's (not a look-alike).
    if (SharedMemory::native_key_for(channel_key(copy->info.name)) != entry) continue;
    names.push_back(copy->info.name);
  }
  return names;
}

std::vector<std::string> collect_stale_wait_files(bool dry_run) {
  std::vector<std::string> removed = detail::collect_stale_wait_files(0, dry_run);
  for (std::string& path : detail::collect_stale_liveness_files(std::nullopt, dry_run)) {
    removed.push_back(std::move(path));
  }
  return removed;
}

absl::Status remove_channel(std::string_view name) {
  if (absl::Status s = validate_channel_name(name); !s.ok()) return s;
  const std::string what = detail::cat("remove_channel: channel '", name, "'");
  // The liveness file goes with the name (endpoints still open keep theirs open).
  const std::uint64_t tag = stable_hash64(SharedMemory::native_key_for(channel_key(name)));
  RandomId liveness_id;
  if (absl::StatusOr<SegmentFile> file = SegmentFile::open(channel_path(name)); file.ok()) {
    if (absl::StatusOr<ChannelCopy> copy = copy_channel(*file, what); copy.ok()) {
      liveness_id = copy->info.liveness_id;
    }
  } else if (absl::IsNotFound(file.status())) {
    return absl::NotFoundError(detail::cat(what, ": no such channel"));
  }
  SharedMemory memory(channel_key(name));
  if (!memory.exists()) {
    // Every endpoint died (stale): its file and lock go now, as gc would remove them.
    if (!memory.destroy(DestroyMode::kForceNoWait)) return memory.status();
    if (!liveness_id.empty()) detail::remove_liveness_file(tag, liveness_id);
    return absl::OkStatus();
  }
  // Endpoints that wait on descriptors hear about it (WaitEvent::kRemoved): attached before the
  // name goes, signalled after. Best effort: without write access nobody is told.
  // Only a channel this user owns is attached for that: mapping another user's file would let its
  // owner kill this process (SIGBUS) by resizing it.
  SharedMemory notifier(channel_key(name));
  notifier.set_trust({/*any_owner=*/false, {}, 0777});
  const bool attached = notifier.attach(AccessMode::kReadWrite);
  if (!memory.destroy(DestroyMode::kForceNoWait)) return memory.status();
  if (!liveness_id.empty()) detail::remove_liveness_file(tag, liveness_id);
  if (attached) {
    absl::StatusOr<ChannelInfo> info =
        detail::read_channel_header(notifier.data(), notifier.size(), "remove_channel");
    if (info.ok()) {
      auto* control = static_cast<ControlBlock*>(notifier.data());
      // tag: ChannelSegment::file_tag, what the endpoints' wait files are named by.
      PeerSlot* slots = peer_slots(control);
      for (std::uint32_t i = 0; i < info->max_peers; ++i) {
        if (detail::state_of(slots[i]) != PeerState::kActive) continue;
        detail::signal_peer(tag, control, slots[i], WaitEvent::kRemoved);
      }
    }
    notifier.detach();
  }
  return absl::OkStatus();
}

}  // namespace shmring
