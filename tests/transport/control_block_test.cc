// Pins the on-segment layout of the channel control block (transport/src/control_block.h) to
// kChannelLayoutVersion. If this test fails, something every process of a channel reads moved:
// bump kChannelLayoutVersion and add a row for the new version below (keep the old rows: they
// document what older peers expect).
#include <gtest/gtest.h>

#include <cstddef>
#include <map>
#include <string>

#include "control_block.h"

namespace shmring {
namespace {

#define SHMRING_FIELD(type, field) " " #field "@" + std::to_string(offsetof(type, field))
#define SHMRING_SIZE(type) std::string(#type ":") + std::to_string(sizeof(type))

std::string layout_fingerprint() {
  std::string s;
  s += SHMRING_SIZE(ChannelHeader) + SHMRING_FIELD(ChannelHeader, magic) +
       SHMRING_FIELD(ChannelHeader, state) + SHMRING_FIELD(ChannelHeader, version) +
       SHMRING_FIELD(ChannelHeader, kind) + SHMRING_FIELD(ChannelHeader, flags) +
       SHMRING_FIELD(ChannelHeader, max_peers) + SHMRING_FIELD(ChannelHeader, name_length) +
       SHMRING_FIELD(ChannelHeader, capacity) + SHMRING_FIELD(ChannelHeader, max_message) +
       SHMRING_FIELD(ChannelHeader, ring_offset) + SHMRING_FIELD(ChannelHeader, ring_bytes) +
       SHMRING_FIELD(ChannelHeader, total_bytes) +
       (kChannelLayoutVersion >= 4 ? SHMRING_FIELD(ChannelHeader, liveness_id) : std::string()) +
       SHMRING_FIELD(ChannelHeader, created_unix_ns) +
       SHMRING_FIELD(ChannelHeader, name) + "\n";
  s += SHMRING_SIZE(ChannelCounters) + SHMRING_FIELD(ChannelCounters, retired_sent) +
       SHMRING_FIELD(ChannelCounters, retired_received) + SHMRING_FIELD(ChannelCounters, retired_lost) +
       SHMRING_FIELD(ChannelCounters, retired_blocked_ns) +
       SHMRING_FIELD(ChannelCounters, peers_reclaimed) + SHMRING_FIELD(ChannelCounters, claims_skipped) +
       SHMRING_FIELD(ChannelCounters, items_redelivered) + SHMRING_FIELD(ChannelCounters, evictions) +
       "\n";
  s += SHMRING_SIZE(WakeBlock) + SHMRING_FIELD(WakeBlock, word) + SHMRING_FIELD(WakeBlock, waiters) + "\n";
  s += SHMRING_SIZE(ChannelMisc) + SHMRING_FIELD(ChannelMisc, next_token) +
       SHMRING_FIELD(ChannelMisc, recovery_hint) + "\n";
  s += SHMRING_SIZE(PeerSlot) + SHMRING_FIELD(PeerSlot, state) + SHMRING_FIELD(PeerSlot, role) +
       SHMRING_FIELD(PeerSlot, token) + SHMRING_FIELD(PeerSlot, pid) +
       SHMRING_FIELD(PeerSlot, peer_flags) + SHMRING_FIELD(PeerSlot, start_time) +
       SHMRING_FIELD(PeerSlot, heartbeat_ns) + SHMRING_FIELD(PeerSlot, sent) +
       SHMRING_FIELD(PeerSlot, received) + SHMRING_FIELD(PeerSlot, lost) +
       SHMRING_FIELD(PeerSlot, blocked_ns) + SHMRING_FIELD(PeerSlot, op_state) +
       SHMRING_FIELD(PeerSlot, claim_barrier_set) + SHMRING_FIELD(PeerSlot, op_ticket) +
       SHMRING_FIELD(PeerSlot, claim_barrier) + SHMRING_FIELD(PeerSlot, position) +
       SHMRING_FIELD(PeerSlot, reader_slot) + SHMRING_FIELD(PeerSlot, pinned_buffer) +
       SHMRING_FIELD(PeerSlot, wait_armed) + SHMRING_FIELD(PeerSlot, wait_events) +
       SHMRING_FIELD(PeerSlot, uid) + SHMRING_FIELD(PeerSlot, lifeline_name) +
       SHMRING_FIELD(PeerSlot, socket_name) + SHMRING_FIELD(PeerSlot, upstream_link) +
       SHMRING_FIELD(PeerSlot, upstream_from) + SHMRING_FIELD(PeerSlot, pattern_reserved) + "\n";
  s += SHMRING_SIZE(ControlBlock) + SHMRING_FIELD(ControlBlock, counters) +
       SHMRING_FIELD(ControlBlock, data_wake) + SHMRING_FIELD(ControlBlock, space_wake) +
       SHMRING_FIELD(ControlBlock, misc) + "\n";
  // Constants whose values are part of the format.
  s += "magic=" + std::to_string(kChannelMagic) + " kinds=" +
       std::to_string(static_cast<int>(ChannelKind::kQueue)) +
       std::to_string(static_cast<int>(ChannelKind::kTopic)) +
       std::to_string(static_cast<int>(ChannelKind::kFrames)) +
       " roles=" + std::to_string(static_cast<int>(PeerRole::kProducer)) +
       std::to_string(static_cast<int>(PeerRole::kConsumer)) +
       std::to_string(static_cast<int>(PeerRole::kPublisher)) +
       std::to_string(static_cast<int>(PeerRole::kSubscriber)) +
       " states=" + std::to_string(static_cast<int>(PeerState::kActive)) +
       std::to_string(static_cast<int>(PeerState::kDeadPending)) +
       " ops=" + std::to_string(static_cast<int>(PeerOp::kClaiming)) +
       std::to_string(static_cast<int>(PeerOp::kClaimed)) +
       " lossless=" + std::to_string(kChannelLossless) +
       " lossless_subscriber=" + std::to_string(kPeerLosslessSubscriber) +
       " ring_offset(64)=" + std::to_string(ring_offset_for(64)) +
       " armed_unit=" + std::to_string(kArmedUnit) + " armed_on=" + std::to_string(kArmedOnData) +
       std::to_string(kArmedOnSpace) + "\n";
  return s;
}

const std::map<std::uint32_t, std::string>& pinned_layouts() {
  static const std::map<std::uint32_t, std::string> layouts = {
      // 2 (0.2): per-pattern PeerSlot fields named (v1 shared aux/flags/barrier between patterns:
      // aux was the topic reader slot, the frames pin and the queue barrier flag at offset 76);
      // unused header fields reserved.
      {2,
       "ChannelHeader:256 magic@0 state@8 version@12 kind@16 flags@20 max_peers@24 name_length@28 "
       "capacity@32 max_message@40 ring_offset@48 ring_bytes@56 total_bytes@64 created_unix_ns@88 "
       "name@96\n"
       "ChannelCounters:128 retired_sent@0 retired_received@8 retired_lost@16 retired_blocked_ns@24 "
       "peers_reclaimed@32 claims_skipped@40 items_redelivered@48 evictions@56\n"
       "WakeBlock:128 word@0 waiters@4\n"
       "ChannelMisc:128 next_token@0 recovery_hint@8\n"
       "PeerSlot:128 state@0 role@4 token@8 pid@16 peer_flags@20 start_time@24 heartbeat_ns@32 "
       "sent@40 received@48 lost@56 blocked_ns@64 op_state@72 claim_barrier_set@76 op_ticket@80 "
       "claim_barrier@88 position@96 reader_slot@104 pinned_buffer@108\n"
       "ControlBlock:768 counters@256 data_wake@384 space_wake@512 misc@640\n"
       "magic=3552856610022705235 kinds=123 roles=1234 states=12 ops=12 lossless=1 "
       "lossless_subscriber=1 ring_offset(64)=12288\n"},
      // 3 (0.3): pollable descriptors: WakeBlock::waiters counts parked threads in its low half
      // and armed descriptors in its high half; PeerSlot::wait_armed@112 and wait_events@116
      // (v2's reserved bytes).
      {3,
       "ChannelHeader:256 magic@0 state@8 version@12 kind@16 flags@20 max_peers@24 name_length@28 "
       "capacity@32 max_message@40 ring_offset@48 ring_bytes@56 total_bytes@64 created_unix_ns@88 "
       "name@96\n"
       "ChannelCounters:128 retired_sent@0 retired_received@8 retired_lost@16 retired_blocked_ns@24 "
       "peers_reclaimed@32 claims_skipped@40 items_redelivered@48 evictions@56\n"
       "WakeBlock:128 word@0 waiters@4\n"
       "ChannelMisc:128 next_token@0 recovery_hint@8\n"
       "PeerSlot:128 state@0 role@4 token@8 pid@16 peer_flags@20 start_time@24 heartbeat_ns@32 "
       "sent@40 received@48 lost@56 blocked_ns@64 op_state@72 claim_barrier_set@76 op_ticket@80 "
       "claim_barrier@88 position@96 reader_slot@104 pinned_buffer@108 wait_armed@112 "
       "wait_events@116\n"
       "ControlBlock:768 counters@256 data_wake@384 space_wake@512 misc@640\n"
       "magic=3552856610022705235 kinds=123 roles=1234 states=12 ops=12 lossless=1 "
       "lossless_subscriber=1 ring_offset(64)=12288 armed_unit=65536 armed_on=12\n"},
      // 4 (0.3): trust. ChannelHeader::liveness_id@72 (v3's reserved0/1) names the channel's
      // liveness file; PeerSlot grows to 256 bytes: uid@128, the random names of the endpoint's
      // wait files (lifeline_name@136, socket_name@152), a bridge import's upstream_link@168 and
      // upstream_from@172 (from room written 0), and room for pattern fields@208.
      {4,
       "ChannelHeader:256 magic@0 state@8 version@12 kind@16 flags@20 max_peers@24 name_length@28 "
       "capacity@32 max_message@40 ring_offset@48 ring_bytes@56 total_bytes@64 liveness_id@72 "
       "created_unix_ns@88 name@96\n"
       "ChannelCounters:128 retired_sent@0 retired_received@8 retired_lost@16 retired_blocked_ns@24 "
       "peers_reclaimed@32 claims_skipped@40 items_redelivered@48 evictions@56\n"
       "WakeBlock:128 word@0 waiters@4\n"
       "ChannelMisc:128 next_token@0 recovery_hint@8\n"
       "PeerSlot:256 state@0 role@4 token@8 pid@16 peer_flags@20 start_time@24 heartbeat_ns@32 "
       "sent@40 received@48 lost@56 blocked_ns@64 op_state@72 claim_barrier_set@76 op_ticket@80 "
       "claim_barrier@88 position@96 reader_slot@104 pinned_buffer@108 wait_armed@112 "
       "wait_events@116 uid@128 lifeline_name@136 socket_name@152 upstream_link@168 upstream_from@172 "
       "pattern_reserved@208\n"
       "ControlBlock:768 counters@256 data_wake@384 space_wake@512 misc@640\n"
       "magic=3552856610022705235 kinds=123 roles=1234 states=12 ops=12 lossless=1 "
       "lossless_subscriber=1 ring_offset(64)=20480 armed_unit=65536 armed_on=12\n"},
  };
  return layouts;
}

TEST(ControlBlockLayoutTest, LayoutIsPinnedForThisVersion) {
  const auto& layouts = pinned_layouts();
  const auto it = layouts.find(kChannelLayoutVersion);
  ASSERT_NE(it, layouts.end()) << "no pinned layout for kChannelLayoutVersion "
                               << kChannelLayoutVersion << "; add this one:\n"
                               << layout_fingerprint();
  EXPECT_EQ(layout_fingerprint(), it->second)
      << "the control block layout changed: bump kChannelLayoutVersion and pin the new layout";
  // The figures every version so far shares.
  EXPECT_EQ(sizeof(ChannelHeader), 256u);
  EXPECT_EQ(sizeof(ControlBlock), 768u);
  EXPECT_EQ(sizeof(PeerSlot), 256u);
  EXPECT_EQ(offsetof(ControlBlock, data_wake), 384u);
  EXPECT_EQ(offsetof(PeerSlot, op_ticket), 80u);

  EXPECT_TRUE(std::atomic<std::uint64_t>::is_always_lock_free);
}

TEST(ControlBlockLayoutTest, EveryPatternFieldOfAPeerSlotHasItsOwnBytes) {
  // v1 let three patterns share one word; v2 gives each meaning its own bytes.
  const std::size_t ends[] = {offsetof(PeerSlot, claim_barrier_set) + 4, offsetof(PeerSlot, reader_slot) + 4,
                              offsetof(PeerSlot, pinned_buffer) + 4};
  EXPECT_LE(ends[0], offsetof(PeerSlot, op_ticket));
  EXPECT_LE(ends[1], offsetof(PeerSlot, pinned_buffer));
  EXPECT_LE(ends[2], sizeof(PeerSlot));
}

}  // namespace
}  // namespace shmring
