// The control block at the start of every channel segment: header, counters, wake words and the
// peer registry. In-segment layout: integers and atomics only, fixed offsets (static_asserts below),
// 128-byte blocks for fields written by different processes.
//
//   [0, 256)     ChannelHeader   written once by the creator, then `state` release-stored kReady
//   [256, 384)   ChannelCounters retired per-peer totals and recovery events (slow path only)
//   [384, 512)   WakeBlock data_wake   receivers park here; senders bump it after publishing
//   [512, 640)   WakeBlock space_wake  senders park here (queue full / lossless topic full)
//   [640, 768)   ChannelMisc     token generator, recovery hint
//   [768, ...)   PeerSlot[max_peers], 128 bytes each
//   [ring_offset, ring_offset + ring_bytes)  the ring (MpmcQueue, broadcast ring, frame pool)
//
// Nothing here is trusted by a reader: the header is copied once and validated
// (read_channel_header in channel_segment.cc), every peer slot field is range-checked before use.
// Changing any size, offset or meaning requires bumping kChannelLayoutVersion; the layout test in
// tests/transport/control_block_test.cc pins it.
//
// Private: this is the on-segment ABI, not an application API (applications see channel.h's
// ChannelStats and PeerStats). Endpoints read and write these fields under the orderings noted
// per field (SYNC tags name the pairings; counters are relaxed). peer_slots() and
// ring_offset_for() are pure address arithmetic.
//
// Version history: 1 (0.1): PeerSlot::aux/flags/barrier meant different things per pattern;
// 2 (0.2): one named field per meaning, unused header fields reserved; 3 (0.3): pollable
// descriptors (WakeBlock::waiters counts armed descriptors in its high half, PeerSlot::wait_armed
// and wait_events); 4 (0.3): trust (docs/security.md): the channel's liveness file is named by a
// random id in the header, and a PeerSlot is 256 bytes: its owner's uid and the random names of
// its wait files, and room for pattern fields.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "shmring/core/detail/random_id.h"
#include "shmring/core/layout.h"
#include "shmring/transport/channel.h"

namespace shmring {

inline constexpr std::uint64_t kChannelMagic = 0x314E4843524D4853ULL;  // "SHMRCHN1" little-endian
inline constexpr std::uint32_t kChannelLayoutVersion = 4;

enum class ChannelState : std::uint32_t { kInitialising = 0, kReady = 1 };

// Channel flags (ChannelHeader::flags).
inline constexpr std::uint32_t kChannelLossless = 1;

struct alignas(kFalseSharingRange) ChannelHeader {
  std::uint64_t magic;               // kChannelMagic
  std::atomic<std::uint32_t> state;  // ChannelState; SYNC(channel_ready)
  std::uint32_t version;             // kChannelLayoutVersion
  std::uint32_t kind;                // ChannelKind
  std::uint32_t flags;               // kChannelLossless, ...
  std::uint32_t max_peers;           // PeerSlots that follow the control block
  std::uint32_t name_length;         // bytes used in `name`
  std::uint64_t capacity;            // queue: slots; topic: data bytes; frames: frame buffers
  std::uint64_t max_message;         // queue: slot payload; topic: max record; frames: frame bytes
  std::uint64_t ring_offset;         // from the start of the control block (page aligned)
  std::uint64_t ring_bytes;          // bytes of the ring region
  std::uint64_t total_bytes;         // control block + peers + ring (<= the segment's size)
  // Random 128-bit id naming the channel's liveness file (core/detail/liveness_file.h), where
  // endpoints hold their liveness locks; written by the creator.
  std::uint64_t liveness_id[2];
  std::int64_t created_unix_ns;      // CLOCK_REALTIME at create, for tools
  char name[kMaxChannelName];        // the channel's name (not NUL-terminated)
};
static_assert(std::is_standard_layout_v<ChannelHeader>);
static_assert(sizeof(ChannelHeader) == 256);
static_assert(offsetof(ChannelHeader, state) == 8);
static_assert(offsetof(ChannelHeader, kind) == 16);
static_assert(offsetof(ChannelHeader, capacity) == 32);
static_assert(offsetof(ChannelHeader, ring_offset) == 48);
static_assert(offsetof(ChannelHeader, liveness_id) == 72);
static_assert(offsetof(ChannelHeader, created_unix_ns) == 88);
static_assert(offsetof(ChannelHeader, name) == 96);

// Totals of peers that left (folded in when a peer unregisters or is reclaimed) and recovery events.
// Written under the segment lock only.
struct alignas(kFalseSharingRange) ChannelCounters {
  std::atomic<std::uint64_t> retired_sent;
  std::atomic<std::uint64_t> retired_received;
  std::atomic<std::uint64_t> retired_lost;
  std::atomic<std::uint64_t> retired_blocked_ns;
  std::atomic<std::uint64_t> peers_reclaimed;   // dead peers found and removed
  std::atomic<std::uint64_t> claims_skipped;    // queue: dead producers' uncommitted slots skipped
  std::atomic<std::uint64_t> items_redelivered; // queue: dead consumers' items handed to another
  std::atomic<std::uint64_t> evictions;         // topic: lossless subscribers evicted
  std::uint8_t pad[kFalseSharingRange - 8 * sizeof(std::atomic<std::uint64_t>)];
};
static_assert(std::is_standard_layout_v<ChannelCounters>);
static_assert(sizeof(ChannelCounters) == 128);
static_assert(offsetof(ChannelCounters, claims_skipped) == 40);

// A futex word and who waits for it: threads parked (or about to park) on the word, counted in the
// low half of `waiters`, and armed descriptors (wait_fd, wait_descriptor.h), counted in its high
// half. One word for both keeps the sender's fast path at one RMW (notify in wait.h).
struct alignas(kFalseSharingRange) WakeBlock {
  std::atomic<std::uint32_t> word;     // bumped by a sender that saw parked threads
  std::atomic<std::uint32_t> waiters;  // kParkedUnit * parked + kArmedUnit * armed descriptors
  std::uint8_t pad[kFalseSharingRange - 2 * sizeof(std::atomic<std::uint32_t>)];
};
static_assert(std::is_standard_layout_v<WakeBlock>);
static_assert(sizeof(WakeBlock) == 128);
static_assert(offsetof(WakeBlock, waiters) == 4);
inline constexpr std::uint32_t kParkedUnit = 1;
inline constexpr std::uint32_t kParkedMask = 0xFFFF;
inline constexpr std::uint32_t kArmedUnit = 1u << 16;  // at most kMaxPeers (1024) armed per block
inline constexpr std::uint32_t kArmedShift = 16;

// PeerSlot::wait_armed: which wake block the endpoint's descriptor is armed on (0: not armed).
inline constexpr std::uint32_t kArmedOnData = 1;   // receivers (data_wake)
inline constexpr std::uint32_t kArmedOnSpace = 2;  // senders held back (space_wake)
// A wake block of the endpoint's own, which its pattern locates and fires (a service client's
// area: service_layout.h). Generic code (disarm_slot, fire_armed) leaves it to the pattern.
inline constexpr std::uint32_t kArmedOnOwn = 3;

// Topic: where an importing publisher's (a bridge's) messages came from (TopicPublisher::
// try_send_from). Written by the one publisher, read by the next one after a crash.
struct UpstreamMark {
  std::atomic<std::uint64_t> origin;
  std::atomic<std::uint64_t> incarnation;
  std::atomic<std::uint64_t> sequence;       // the upstream message being sent
  std::atomic<std::uint64_t> ring_sequence;  // the ring sequence it gets if the send completes
};

struct alignas(kFalseSharingRange) ChannelMisc {
  std::atomic<std::uint64_t> next_token;     // registration tokens (epochs), under the lock
  std::atomic<std::uint32_t> recovery_hint;  // non-zero: someone saw a dead peer or a stall
  std::atomic<std::uint32_t> reserved;       // written 0, not read (v1 named it closed)
  // Two copies, so a publisher killed while writing one leaves the other whole; upstream_current
  // says which is valid (1 + index; 0: none). Carved from padding that v3 writes 0 (zero-filled
  // at creation), so no layout version change: older readers never look here.
  UpstreamMark upstream[2];
  std::atomic<std::uint32_t> upstream_current;
  std::uint8_t pad[kFalseSharingRange - 16 - 2 * sizeof(UpstreamMark) - 4];
};
static_assert(std::is_standard_layout_v<ChannelMisc>);
static_assert(sizeof(ChannelMisc) == 128);
static_assert(offsetof(ChannelMisc, upstream) == 16);
static_assert(offsetof(ChannelMisc, upstream_current) == 80);


// What an endpoint is doing with the ring right now (queue: its one outstanding claim).
enum class PeerOp : std::uint32_t {
  kIdle = 0,
  kClaiming = 1,  // may have claimed a ticket whose number is not recorded yet
  kClaimed = 2,   // holds ticket `op_ticket`
};

// PeerSlot::upstream_link.
inline constexpr std::uint32_t kUpstreamLinkUp = 1;
inline constexpr std::uint32_t kUpstreamLinkDown = 2;

// PeerSlot::peer_flags.
inline constexpr std::uint32_t kPeerLosslessSubscriber = 1;  // topic: owns a lossless reader slot

// One endpoint. Identity fields are written under the lock before `state` is release-stored
// kActive; the counters are written by the endpoint itself (relaxed stores, no RMW on the hot path).
// The fields from offset 72 to 120 each belong to one pattern; the others leave them 0.
// Who writes what: the registering process (under the lock) everything up to `state`; the endpoint
// itself its counters, heartbeat, pattern fields, wait_armed (arming) and its wait-file names; a
// notifier wait_armed (disarming CAS) and wait_events; the recovery (under the lock) `state` and
// the pattern fields of a dead endpoint.
struct alignas(kFalseSharingRange) PeerSlot {
  std::atomic<std::uint32_t> state;         // PeerState; SYNC(peer_slot)
  std::atomic<std::uint32_t> role;          // PeerRole
  std::atomic<std::uint64_t> token;         // registration epoch, unique per channel
  std::atomic<std::int32_t> pid;            // for display and /proc liveness
  std::atomic<std::uint32_t> peer_flags;    // kPeerLosslessSubscriber
  std::atomic<std::uint64_t> start_time;    // with pid: ProcessIdentity
  std::atomic<std::uint64_t> heartbeat_ns;  // CLOCK_MONOTONIC of the endpoint's last activity
  std::atomic<std::uint64_t> sent;
  std::atomic<std::uint64_t> received;
  std::atomic<std::uint64_t> lost;
  std::atomic<std::uint64_t> blocked_ns;    // time spent inside blocking calls that had to wait
  // Queue: the endpoint's one claim (queue_recovery.h), and what the recovery noted of a producer
  // that died in kClaiming (the enqueue position then: its ticket, if any, is below it).
  std::atomic<std::uint32_t> op_state;           // PeerOp; SYNC(queue_claim)
  std::atomic<std::uint32_t> claim_barrier_set;  // 1 once claim_barrier is written
  std::atomic<std::uint64_t> op_ticket;          // PeerOp::kClaimed: the ticket
  std::atomic<std::uint64_t> claim_barrier;
  // Topic subscriber: its position (for lag) and, lossless, its reader slot in the ring.
  std::atomic<std::uint64_t> position;
  std::atomic<std::uint32_t> reader_slot;
  // Frames subscriber: the buffer it pins (index + 1; 0: none). SYNC(frame_pin).
  std::atomic<std::uint32_t> pinned_buffer;
  // Descriptor waiting (wait_descriptor.h): kArmedOnData / kArmedOnSpace while the endpoint's
  // descriptor is armed, set by the endpoint, cleared by the one notifier that fires it (a CAS);
  // SYNC(wait_fd). wait_events: WaitEvent bits a notifier leaves for the endpoint (evicted,
  // removed), taken with an exchange.
  std::atomic<std::uint32_t> wait_armed;
  std::atomic<std::uint32_t> wait_events;
  std::uint64_t reserved;
  // --- v4 ---
  // The effective uid of the endpoint's process (written at registration): the owner its wait
  // files must have (watchers and notifiers refuse files of anyone else).
  std::atomic<std::uint32_t> uid;
  std::uint32_t reserved2;
  // Random 128-bit names of the endpoint's lifeline FIFO and wait socket (core/detail/wait_files.h),
  // written by the endpoint after it made the file: word 0 relaxed, then word 1 (never 0) release;
  // a reader acquire-loads word 1 first (0: not made). SYNC(wait_name).
  std::atomic<std::uint64_t> lifeline_name[2];
  std::atomic<std::uint64_t> socket_name[2];
  // A bridge import (shmring::bridge) feeding the channel through this endpoint: where from
  // (the export's address, NUL-padded, written once before upstream_link first becomes non-zero)
  // and the link's state (kUpstreamLinkUp / kUpstreamLinkDown; 0: not an import). SYNC(upstream_link).
  // Carved from v4's pattern_reserved (written 0 at registration), so no layout version change.
  std::atomic<std::uint32_t> upstream_link;
  char upstream_from[36];
  // Written 0; room for fields of patterns to come (each with its own bytes).
  std::uint8_t pattern_reserved[48];
};
static_assert(std::is_standard_layout_v<PeerSlot>);
static_assert(sizeof(PeerSlot) == 256);
static_assert(offsetof(PeerSlot, token) == 8);
static_assert(offsetof(PeerSlot, peer_flags) == 20);
static_assert(offsetof(PeerSlot, start_time) == 24);
static_assert(offsetof(PeerSlot, sent) == 40);
static_assert(offsetof(PeerSlot, op_state) == 72);
static_assert(offsetof(PeerSlot, claim_barrier_set) == 76);
static_assert(offsetof(PeerSlot, op_ticket) == 80);
static_assert(offsetof(PeerSlot, claim_barrier) == 88);
static_assert(offsetof(PeerSlot, position) == 96);
static_assert(offsetof(PeerSlot, reader_slot) == 104);
static_assert(offsetof(PeerSlot, pinned_buffer) == 108);
static_assert(offsetof(PeerSlot, wait_armed) == 112);
static_assert(offsetof(PeerSlot, wait_events) == 116);
static_assert(offsetof(PeerSlot, uid) == 128);
static_assert(offsetof(PeerSlot, lifeline_name) == 136);
static_assert(offsetof(PeerSlot, socket_name) == 152);
static_assert(offsetof(PeerSlot, upstream_link) == 168);
static_assert(offsetof(PeerSlot, upstream_from) == 172);
static_assert(offsetof(PeerSlot, pattern_reserved) == 208);
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);
static_assert(std::atomic<std::uint32_t>::is_always_lock_free);

struct ControlBlock {
  ChannelHeader header;
  ChannelCounters counters;
  WakeBlock data_wake;
  WakeBlock space_wake;
  ChannelMisc misc;
  // followed by PeerSlot[header.max_peers]
};
static_assert(std::is_standard_layout_v<ControlBlock>);
static_assert(sizeof(ControlBlock) == 768);
static_assert(offsetof(ControlBlock, counters) == 256);
static_assert(offsetof(ControlBlock, data_wake) == 384);
static_assert(offsetof(ControlBlock, space_wake) == 512);
static_assert(offsetof(ControlBlock, misc) == 640);

// SYNC(wait_name): a file's random name (lifeline_name, socket_name) is published by its owner after
// the file exists: word 0 relaxed, then word 1 (never 0 in a made name) release. A reader
// acquire-loads word 1 first (0: not made yet), then word 0; a name read while its slot changes
// hands may be torn, which only makes the open fail (ENOENT) and the reader look again later.
inline void publish_name(std::atomic<std::uint64_t> (&words)[2], const detail::RandomId& name) noexcept {
  words[0].store(name.words[0], std::memory_order_relaxed);
  words[1].store(name.words[1], std::memory_order_release);
}
inline detail::RandomId load_name(const std::atomic<std::uint64_t> (&words)[2]) noexcept {
  detail::RandomId name;
  name.words[1] = words[1].load(std::memory_order_acquire);
  name.words[0] = words[0].load(std::memory_order_relaxed);
  return name;
}
inline void clear_name(std::atomic<std::uint64_t> (&words)[2]) noexcept {
  words[1].store(0, std::memory_order_relaxed);
  words[0].store(0, std::memory_order_relaxed);
}

inline PeerSlot* peer_slots(ControlBlock* control) noexcept {
  return reinterpret_cast<PeerSlot*>(reinterpret_cast<std::byte*>(control) + sizeof(ControlBlock));
}
inline const PeerSlot* peer_slots(const ControlBlock* control) noexcept {
  return reinterpret_cast<const PeerSlot*>(reinterpret_cast<const std::byte*>(control) +
                                           sizeof(ControlBlock));
}

// Where the ring starts for `max_peers` peer slots: page aligned.
constexpr std::uint64_t ring_offset_for(std::uint32_t max_peers) noexcept {
  return align_up(sizeof(ControlBlock) + std::uint64_t{max_peers} * sizeof(PeerSlot), 4096);
}

}  // namespace shmring
