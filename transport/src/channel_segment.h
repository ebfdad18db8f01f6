// Private: a channel's segment, its validated control block, and the peer registry.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "shmring/core/clock.h"
#include "shmring/core/detail/liveness_file.h"
#include "shmring/core/detail/message.h"
#include "shmring/core/fork_generation.h"
#include "shmring/core/shared_memory.h"
#include "shmring/transport/channel.h"
#include "control_block.h"

namespace shmring::detail {

// A validated local copy of a ChannelHeader: the only form code uses after open.
struct ChannelInfo {
  ChannelKind kind = ChannelKind::kQueue;
  std::uint32_t flags = 0;
  std::uint32_t max_peers = 0;
  std::uint64_t capacity = 0;
  std::uint64_t max_message = 0;
  std::uint64_t ring_offset = 0;
  std::uint64_t ring_bytes = 0;
  std::uint64_t total_bytes = 0;
  std::int64_t created_unix_ns = 0;
  RandomId liveness_id;  // names the channel's liveness file
  std::string name;
};

// Reads and checks the channel header at `base` (mapped over `mapped` bytes). kUnavailable: not ready;
// kFailedPrecondition: another layout version; kDataLoss: corrupt. Never reads outside the mapping.
absl::StatusOr<ChannelInfo> read_channel_header(const void* base, std::size_t mapped,
                                                std::string_view what);

struct ServiceShape;  // service_layout.h

// What shapes a channel's ring beyond its capacity and max_message (a topic: its default delivery,
// lossless reader slots, publisher slots and history; a service: the rest of its limits).
// Patterns that need nothing more leave it as it is.
struct RingShape {
  bool lossless = false;
  std::uint32_t readers = 0;
  std::uint32_t publishers = 1;
  std::uint64_t history = 0;
  const ServiceShape* service = nullptr;
};

// How one kind of ring is sized and made: one per pattern (kQueueRing in queue.cc, kTopicRing in
// topic.cc, kFrameRing in frame.cc), so the segment code creates any channel without knowing rings.
struct RingDescriptor {
  // Bytes of the ring region for (capacity, max_message, shape); 0 when they are invalid.
  std::uint64_t (*region_bytes)(std::uint64_t capacity, std::uint64_t max_message,
                                const RingShape& shape) noexcept = nullptr;
  // Creates the ring in [region, region + bytes) (the creator, under the segment lock).
  absl::Status (*create)(void* region, std::size_t bytes, std::uint64_t capacity,
                         std::uint64_t max_message, const RingShape& shape) = nullptr;
};

// What an endpoint asks for. Zero limits mean "whatever the channel has" when opening and the
// defaults when creating.
struct ChannelSpec {
  ChannelKind kind = ChannelKind::kQueue;
  const RingDescriptor* ring = nullptr;  // the pattern's ring (never null once filled in)
  RingShape shape;
  std::uint32_t flags = 0;
  bool check_flags = true;
  std::uint64_t capacity = 0;
  std::uint64_t max_message = 0;
  std::uint32_t max_peers = 0;
  std::uint64_t default_capacity = 1024;
  std::uint64_t default_max_message = 256;
  std::uint32_t default_max_peers = 64;
  mode_t permissions = 0600;  // of a channel this creates; the loosest mode it opens
  std::vector<uid_t> trusted_owners;  // who else may own a channel it opens (SharedMemory::Trust)
  gid_t group = static_cast<gid_t>(-1);
  bool create = true;
  bool read_only = false;  // attach the whole segment read-only (never creates, never registers)
  std::chrono::milliseconds open_timeout{2000};

  std::uint64_t ring_bytes(std::uint64_t capacity_, std::uint64_t max_message_) const noexcept {
    return ring->region_bytes(capacity_, max_message_, shape);
  }
};

// Fills the settings every pattern's options share (QueueOptions, TopicOptions, FrameOptions name
// them alike): limits, permissions, group, create and open_timeout.
template <typename Options>
void copy_common_options(const Options& options, ChannelSpec* spec) {
  spec->capacity = options.capacity;
  spec->max_message = options.max_message;
  spec->max_peers = options.max_peers;
  spec->permissions = options.permissions;
  spec->trusted_owners = options.trusted_owners;
  spec->group = options.group;
  spec->create = options.create;
  spec->open_timeout = options.open_timeout;
}

class ChannelSegment {
 public:
  // Opens or creates the channel and validates it against `spec` (does not register a peer).
  static absl::StatusOr<std::unique_ptr<ChannelSegment>> open(std::string_view name,
                                                             const ChannelSpec& spec);
  ~ChannelSegment();
  ChannelSegment(const ChannelSegment&) = delete;
  ChannelSegment& operator=(const ChannelSegment&) = delete;

  ControlBlock* control() const noexcept { return control_; }
  bool read_only() const noexcept { return read_only_; }
  const ChannelInfo& info() const noexcept { return info_; }
  std::byte* ring() const noexcept { return reinterpret_cast<std::byte*>(control_) + info_.ring_offset; }
  PeerSlot* peers() const noexcept { return peer_slots(control_); }
  PeerSlot* self() const noexcept { return self_; }
  std::uint32_t self_index() const noexcept { return self_index_; }
  std::uint64_t self_token() const noexcept { return self_token_; }
  SharedMemory& memory() noexcept { return memory_; }
  // Names this incarnation of the channel in its wait files (wait_files.h): a hash of the segment
  // key and the creation time.
  std::uint64_t channel_id() const noexcept { return channel_id_; }
  // Names the channel's companion files (wait_files.h, liveness_file.h): a hash of the segment's
  // native key, the same for every incarnation of the name, so the last endpoint to leave clears
  // what dead peers of any incarnation left (each file is checked stale on its own).
  std::uint64_t file_tag() const noexcept { return file_tag_; }
  // The segment file's permission bits (what the channel's wait files get). One fstat.
  mode_t file_mode() const noexcept;
  // After registration, without the lock: this endpoint's lifeline FIFO (wait_files.h), which
  // its watchers see hang up when it closes or dies; its random name goes into the peer slot
  // (SYNC(wait_name)). An error says why it could not be made (the endpoint then does not open).
  absl::Status create_lifeline() noexcept;
  // True in the process that opened it (false in a forked child that inherited it). No system
  // call: compares fork generations.
  bool owned_here() const noexcept { return fork_generation() == fork_generation_; }

  // The segment lock (slow path only). lock_for gives up after `ms` (0: try once).
  bool lock_for(std::int64_t ms) noexcept;
  void unlock() noexcept;

  // Under the lock: claims a free peer slot for this process. kResourceExhausted if none.
  absl::Status register_locked(PeerRole role, std::uint32_t flags);
  // Under the lock: folds this endpoint's counters into the retired totals and frees its slot.
  void unregister_locked() noexcept;
  // Under the lock: every kActive peer that is gone becomes kDeadPending (its counters folded into
  // the retired totals). Returns how many were found.
  std::uint32_t mark_dead_locked() noexcept;
  // Whether the endpoint in peer slot `index` lives: it holds that slot's liveness lock (an OFD
  // lock in the channel's liveness file that the kernel drops with its process), which holds across
  // PID namespaces and pid reuse. (pid, start time) only if the kernel cannot be asked.
  bool peer_alive(std::uint32_t index, const PeerSlot& slot) const noexcept;
  // Under the lock: frees a slot (after its pending state is settled): its armed descriptor is
  // disarmed (WakeBlock count) and its wait files removed.
  void free_slot_locked(PeerSlot& slot) noexcept;

  // Under the lock: the peer slot is still this endpoint's (kActive with its token).
  bool owns_slot_locked() const noexcept;

  // Heartbeat and the endpoint's own counters (relaxed stores into its slot).
  void touch(std::uint64_t now_ns) noexcept;

  // For endpoints that only read the ring (lossy topic and frame subscribers): maps the ring's
  // pages read-only in this process, so a stray write faults instead of corrupting what the other
  // endpoints read. The control block (peer slots, wake words) stays writable. Best effort.
  void protect_ring_read_only() noexcept;

  // Leaves this endpoint's peer slot to the dead-peer recovery as if this process had died, without
  // the lock: kActive -> kDeadPending (a CAS; its counters retired), its op state kept (a queue
  // consumer's unreleased item is then redelivered), and the recovery hinted. The next recovery
  // under the lock settles and frees the slot. Also what close() does when the lock stays busy.
  void leave_to_recovery() noexcept;

  // How long close() waits for the segment lock to unregister.
  static constexpr std::int64_t kCloseLockTimeoutMs = 2000;

 private:
  ChannelSegment() = default;
  // Removes the stale companion files (lifelines, sockets, liveness files) under this channel's
  // name: what endpoints of any incarnation left when they died. The last endpoint to leave, an
  // open that finds the channel stale and a creator call it (slow path: a directory scan).
  void collect_companions() noexcept;
  absl::Status initialise_locked(const ChannelSpec& spec, std::uint64_t capacity,
                                 std::uint64_t max_message, std::uint32_t max_peers);

  SharedMemory memory_;
  ControlBlock* control_ = nullptr;
  ChannelInfo info_;
  PeerSlot* self_ = nullptr;
  std::uint32_t self_index_ = 0;
  std::uint64_t self_token_ = 0;
  std::uint64_t fork_generation_ = 0;  // fork_generation() of the opening process
  std::uint64_t channel_id_ = 0;
  std::uint64_t file_tag_ = 0;
  LivenessFile liveness_;  // the channel's liveness file (registered endpoints only)
  int lifeline_fd_ = -1;
  bool read_only_ = false;
};

// Disarms a peer slot's descriptor if it is armed (an exchange: exactly one of this and the
// notifier's CAS takes the armed count down).
void disarm_slot(ControlBlock* control, PeerSlot& slot) noexcept;

// peer_alive with a liveness file opened by other means (read_stats: read-only, or not at all when
// the caller may not open it; then (pid, start time) decide).
bool peer_alive_in(const LivenessFile& liveness, std::uint32_t index, const PeerSlot& slot) noexcept;

// A peer slot's counters (relaxed loads).
struct PeerCounters {
  std::uint64_t sent = 0;
  std::uint64_t received = 0;
  std::uint64_t lost = 0;
  std::uint64_t blocked_ns = 0;
};
PeerCounters counters_of(const PeerSlot& slot) noexcept;
// Adds `counters` to the channel's retired totals (atomic adds; no lock needed).
void retire_counters(ControlBlock* control, const PeerCounters& counters) noexcept;
// Folds a peer slot's counters into the channel's retired totals (under the lock).
void fold_counters_locked(ControlBlock* control, const PeerSlot& slot) noexcept;

// A peer slot's state (acquire: pairs with the release that registered it, SYNC(peer_slot)) and
// role. Shared by every endpoint kind.
PeerState state_of(const PeerSlot& s);
PeerRole role_of(const PeerSlot& s);

// Removes the liveness files (liveness_file.h) no channel segment names and nobody holds a byte of
// (with `tag`, only that channel name's): what channels whose endpoints all died leave. The
// caller's own files only (any user's, for root). Returns the paths removed (dry_run: that would be).
std::vector<std::string> collect_stale_liveness_files(std::optional<std::uint64_t> tag, bool dry_run);

// The counters of this endpoint's own peer slot (empty when it has none).
PeerStats peer_stats(const ChannelSegment& seg);

}  // namespace shmring::detail
