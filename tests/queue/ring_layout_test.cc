// Pins the in-region layout of every ring to kRingLayoutVersion. If this test fails, the layout of
// something that lives in shared memory changed: bump kRingLayoutVersion in ring_header.h and add
// a row for the new version below (keep the old rows: they document what older peers expect).
#include <gtest/gtest.h>

#include <cstddef>
#include <map>
#include <string>

#include "shmring/queue/broadcast_layout.h"
#include "shmring/queue/frame_pool.h"
#include "shmring/queue/mpmc_queue.h"
#include "shmring/queue/ring_header.h"
#include "shmring/queue/spsc_ring.h"

namespace shmring {
namespace {

#define SHMRING_FIELD(type, field) \
  " " #field "@" + std::to_string(offsetof(type, field))
#define SHMRING_SIZE(type) std::string(#type ":") + std::to_string(sizeof(type))

std::string layout_fingerprint() {
  std::string s;
  s += SHMRING_SIZE(RingHeader) + SHMRING_FIELD(RingHeader, magic) + SHMRING_FIELD(RingHeader, version) +
       SHMRING_FIELD(RingHeader, kind) + SHMRING_FIELD(RingHeader, abi) + SHMRING_FIELD(RingHeader, state) +
       SHMRING_FIELD(RingHeader, region_bytes) + SHMRING_FIELD(RingHeader, data_offset) +
       SHMRING_FIELD(RingHeader, capacity) + SHMRING_FIELD(RingHeader, max_record) +
       SHMRING_FIELD(RingHeader, slot_stride) + SHMRING_FIELD(RingHeader, initial_position) +
       SHMRING_FIELD(RingHeader, flags) + SHMRING_FIELD(RingHeader, max_readers) + "\n";
  s += SHMRING_SIZE(PaddedCounter) + SHMRING_FIELD(PaddedCounter, value) + "\n";
  s += SHMRING_SIZE(SpscRecordHeader) + SHMRING_FIELD(SpscRecordHeader, length) +
       SHMRING_FIELD(SpscRecordHeader, tag) + "\n";
  s += SHMRING_SIZE(SpscControl) + SHMRING_FIELD(SpscControl, write_pos) +
       SHMRING_FIELD(SpscControl, read_pos) + "\n";
  s += SHMRING_SIZE(MpmcSlotHeader) + SHMRING_FIELD(MpmcSlotHeader, sequence) +
       SHMRING_FIELD(MpmcSlotHeader, length) + "\n";
  s += SHMRING_SIZE(MpmcCounters) + SHMRING_FIELD(MpmcCounters, skipped) +
       SHMRING_FIELD(MpmcCounters, aborted) + SHMRING_FIELD(MpmcCounters, force_released) + "\n";
  s += SHMRING_SIZE(MpmcControl) + SHMRING_FIELD(MpmcControl, enqueue_pos) +
       SHMRING_FIELD(MpmcControl, dequeue_pos) + SHMRING_FIELD(MpmcControl, counters) + "\n";
  // Version 5: the broadcast ring by role (broadcast_layout.h).
  s += SHMRING_SIZE(BroadcastDescriptor) + SHMRING_FIELD(BroadcastDescriptor, key) +
       SHMRING_FIELD(BroadcastDescriptor, history) + SHMRING_FIELD(BroadcastDescriptor, initial_sequence) +
       SHMRING_FIELD(BroadcastDescriptor, index_entries) + SHMRING_FIELD(BroadcastDescriptor, intent_chunk) +
       SHMRING_FIELD(BroadcastDescriptor, max_publishers) + SHMRING_FIELD(BroadcastDescriptor, index_stride) + "\n";
  s += SHMRING_SIZE(BroadcastClaimBlock) + SHMRING_FIELD(BroadcastClaimBlock, position) +
       SHMRING_FIELD(BroadcastClaimBlock, sequence) + "\n";
  s += SHMRING_SIZE(BroadcastRareBlock) + SHMRING_FIELD(BroadcastRareBlock, intent) +
       SHMRING_FIELD(BroadcastRareBlock, reader_generation) + SHMRING_FIELD(BroadcastRareBlock, gaps) +
       SHMRING_FIELD(BroadcastRareBlock, abandoned) + SHMRING_FIELD(BroadcastRareBlock, next_publisher_id) + "\n";
  s += SHMRING_SIZE(BroadcastGapEntry) + SHMRING_FIELD(BroadcastGapEntry, stamp) +
       SHMRING_FIELD(BroadcastGapEntry, sequence) + SHMRING_FIELD(BroadcastGapEntry, position) +
       SHMRING_FIELD(BroadcastGapEntry, end) + "\n";
  s += SHMRING_SIZE(BroadcastPublisherSlot) + SHMRING_FIELD(BroadcastPublisherSlot, owner) +
       SHMRING_FIELD(BroadcastPublisherSlot, attempt_position) +
       SHMRING_FIELD(BroadcastPublisherSlot, attempt_sequence) + SHMRING_FIELD(BroadcastPublisherSlot, attempt_end) +
       SHMRING_FIELD(BroadcastPublisherSlot, published) + SHMRING_FIELD(BroadcastPublisherSlot, id) + "\n";
  s += SHMRING_SIZE(BroadcastReaderSlot) + SHMRING_FIELD(BroadcastReaderSlot, owner) +
       SHMRING_FIELD(BroadcastReaderSlot, position) + "\n";
  s += SHMRING_SIZE(BroadcastControl) + SHMRING_FIELD(BroadcastControl, descriptor) +
       SHMRING_FIELD(BroadcastControl, claim) + SHMRING_FIELD(BroadcastControl, rare) +
       SHMRING_FIELD(BroadcastControl, gaps) + "\n";
  s += "granule=" + std::to_string(kBroadcastGranule) + " record_header=" + std::to_string(kBroadcastRecordHeader) +
       " stride=" + std::to_string(kBroadcastIndexStride) + " gap_entries=" + std::to_string(kBroadcastGapEntries) +
       " filler=" + std::to_string(kFillerMark) + " void=" + std::to_string(kVoidMark) +
       " commit(7,640,3)=" + std::to_string(commit_word(7, 640, 3)) + "\n";
  if (kRingLayoutVersion >= 4) {
    s += SHMRING_SIZE(FramePoolState) + SHMRING_FIELD(FramePoolState, latest) +
         SHMRING_FIELD(FramePoolState, frame_number) + "\n";
    s += SHMRING_SIZE(FrameSlot) + SHMRING_FIELD(FrameSlot, seq) + SHMRING_FIELD(FrameSlot, frame_number) +
         SHMRING_FIELD(FrameSlot, length) + "\n";
    s += SHMRING_SIZE(FramePoolControl) + SHMRING_FIELD(FramePoolControl, header) +
         SHMRING_FIELD(FramePoolControl, state) + " frame_kind=" +
         std::to_string(static_cast<int>(RingKind::kFramePool)) + " frame_page=" +
         std::to_string(kFramePage) + "\n";
  }
  // Constants whose values are part of the format.
  s += "magic=" + std::to_string(kRingMagic) + " kinds=" +
       std::to_string(static_cast<int>(RingKind::kSpsc)) + std::to_string(static_cast<int>(RingKind::kMpmc)) +
       std::to_string(static_cast<int>(RingKind::kBroadcast)) + " records=" +
       std::to_string(static_cast<int>(RecordType::kData)) + std::to_string(static_cast<int>(RecordType::kPadding)) +
       " states=" + std::to_string(static_cast<int>(RingState::kActive)) +
       std::to_string(static_cast<int>(RingState::kClosed)) + " record_align=" +
       std::to_string(kRecordAlignment) + " slot_align=" + std::to_string(kMpmcSlotAlignment) +
       " mpmc_seq=" + std::to_string(mpmc::full_seq(5)) + "," + std::to_string(mpmc::skipped_seq(5)) +
       " lossless=" + std::to_string(kBroadcastLossless) + " spsc_tag=" +
       std::to_string(SpscRing::header_word(0, 1, RecordType::kData)) + "," +
       std::to_string(SpscRing::header_word(8, 10, RecordType::kPadding)) + "\n";
  return s;
}

const std::map<std::uint32_t, std::string>& pinned_layouts() {
  static const std::map<std::uint32_t, std::string> layouts = {
      {1,
       "RingHeader:128 magic@0 version@8 kind@12 abi@16 state@20 region_bytes@24 data_offset@32 "
       "capacity@40 max_record@48 slot_stride@56 initial_position@64 flags@72 max_readers@76\n"
       "PaddedCounter:128 value@0\n"
       "SpscRecordHeader:8 length@0 type@4\n"
       "SpscControl:384 write_pos@128 read_pos@256\n"
       "MpmcSlotHeader:16 sequence@0 length@8\n"
       "MpmcCounters:128 skipped@0 aborted@8 force_released@16\n"
       "MpmcControl:512 enqueue_pos@128 dequeue_pos@256 counters@384\n"
       "BroadcastRecordHeader:16 length@0 type@4 sequence@8\n"
       "BroadcastWriterBlock:128 tail_intent@0 tail@8 latest@16 next_sequence@24\n"
       "BroadcastReaderSlot:128 owner@0 position@8\n"
       "BroadcastControl:256 writer@128\n"
       "magic=5138124842793257043 kinds=123 records=12 states=12 record_align=8 slot_align=64 "
       "mpmc_seq=21,22 lossless=1\n"},
      // 3: SPSC records are published by their header word (tag = position bits and type) instead
      // of write_pos; the writer zeroes the next header word. Broadcast and MPMC unchanged. (2 was
      // never used.)
      {3,
       "RingHeader:128 magic@0 version@8 kind@12 abi@16 state@20 region_bytes@24 data_offset@32 "
       "capacity@40 max_record@48 slot_stride@56 initial_position@64 flags@72 max_readers@76\n"
       "PaddedCounter:128 value@0\n"
       "SpscRecordHeader:8 length@0 tag@4\n"
       "SpscControl:384 write_pos@128 read_pos@256\n"
       "MpmcSlotHeader:16 sequence@0 length@8\n"
       "MpmcCounters:128 skipped@0 aborted@8 force_released@16\n"
       "MpmcControl:512 enqueue_pos@128 dequeue_pos@256 counters@384\n"
       "BroadcastRecordHeader:16 length@0 type@4 sequence@8\n"
       "BroadcastWriterBlock:128 tail_intent@0 tail@8 latest@16 next_sequence@24\n"
       "BroadcastReaderSlot:128 owner@0 position@8\n"
       "BroadcastControl:256 writer@128\n"
       "magic=5138124842793257043 kinds=123 records=12 states=12 record_align=8 slot_align=64 "
       "mpmc_seq=21,22 lossless=1 spsc_tag=" "4294967297,25769803786" "\n"},
      // 4: the frame pool (its buffers' words and state) joins the rings with RingKind::kFramePool
      // (it lived in transport/ before, unpinned). SPSC, MPMC and broadcast unchanged.
      {4,
       "RingHeader:128 magic@0 version@8 kind@12 abi@16 state@20 region_bytes@24 data_offset@32 "
       "capacity@40 max_record@48 slot_stride@56 initial_position@64 flags@72 max_readers@76\n"
       "PaddedCounter:128 value@0\n"
       "SpscRecordHeader:8 length@0 tag@4\n"
       "SpscControl:384 write_pos@128 read_pos@256\n"
       "MpmcSlotHeader:16 sequence@0 length@8\n"
       "MpmcCounters:128 skipped@0 aborted@8 force_released@16\n"
       "MpmcControl:512 enqueue_pos@128 dequeue_pos@256 counters@384\n"
       "BroadcastRecordHeader:16 length@0 type@4 sequence@8\n"
       "BroadcastWriterBlock:128 tail_intent@0 tail@8 latest@16 next_sequence@24\n"
       "BroadcastReaderSlot:128 owner@0 position@8\n"
       "BroadcastControl:256 writer@128\n"
       "FramePoolState:128 latest@0 frame_number@8\n"
       "FrameSlot:128 seq@0 frame_number@8 length@16\n"
       "FramePoolControl:256 header@0 state@128 frame_kind=4 frame_page=4096\n"
       "magic=5138124842793257043 kinds=123 records=12 states=12 record_align=8 slot_align=64 "
       "mpmc_seq=21,22 lossless=1 spsc_tag=" "4294967297,25769803786" "\n"},
      // 5: the broadcast ring by role, several writers: a claim pair (16-byte CAS), a commit word
      // per 64-byte-aligned record, publisher and reader slots, anchors and the gap table. SPSC,
      // MPMC and the frame pool unchanged.
      {5,
       "RingHeader:128 magic@0 version@8 kind@12 abi@16 state@20 region_bytes@24 data_offset@32 "
       "capacity@40 max_record@48 slot_stride@56 initial_position@64 flags@72 max_readers@76\n"
       "PaddedCounter:128 value@0\n"
       "SpscRecordHeader:8 length@0 tag@4\n"
       "SpscControl:384 write_pos@128 read_pos@256\n"
       "MpmcSlotHeader:16 sequence@0 length@8\n"
       "MpmcCounters:128 skipped@0 aborted@8 force_released@16\n"
       "MpmcControl:512 enqueue_pos@128 dequeue_pos@256 counters@384\n"
       "BroadcastDescriptor:128 key@0 history@8 initial_sequence@16 index_entries@24 intent_chunk@32 "
       "max_publishers@40 index_stride@44\n"
       "BroadcastClaimBlock:128 position@0 sequence@8\n"
       "BroadcastRareBlock:128 intent@0 reader_generation@8 gaps@16 abandoned@24 next_publisher_id@32\n"
       "BroadcastGapEntry:32 stamp@0 sequence@8 position@16 end@24\n"
       "BroadcastPublisherSlot:128 owner@0 attempt_position@8 attempt_sequence@16 attempt_end@24 "
       "published@32 id@40\n"
       "BroadcastReaderSlot:128 owner@0 position@8\n"
       "BroadcastControl:2560 descriptor@128 claim@256 rare@384 gaps@512\n"
       "granule=64 record_header=24 stride=8 gap_entries=64 filler=6616326155283851669 "
       "void=14029467366897019727 commit(7,640,3)=5221059320210472275\n"
       "FramePoolState:128 latest@0 frame_number@8\n"
       "FrameSlot:128 seq@0 frame_number@8 length@16\n"
       "FramePoolControl:256 header@0 state@128 frame_kind=4 frame_page=4096\n"
       "magic=5138124842793257043 kinds=123 records=12 states=12 record_align=8 slot_align=64 "
       "mpmc_seq=21,22 lossless=1 spsc_tag=" "4294967297,25769803786" "\n"},
  };
  return layouts;
}

TEST(RingLayout, MatchesThePinnedLayoutOfItsVersion) {
  const auto& layouts = pinned_layouts();
  const auto it = layouts.find(kRingLayoutVersion);
  ASSERT_NE(it, layouts.end()) << "no pinned layout for kRingLayoutVersion " << kRingLayoutVersion
                               << "; add this one:\n" << layout_fingerprint();
  EXPECT_EQ(layout_fingerprint(), it->second)
      << "the ring layout changed: bump kRingLayoutVersion and pin the new layout";
}

TEST(RingLayout, AtomicsAreLockFreeAndFixedSize) {
  static_assert(std::atomic<std::uint64_t>::is_always_lock_free);
  static_assert(std::atomic<std::uint32_t>::is_always_lock_free);
  EXPECT_EQ(sizeof(std::atomic<std::uint64_t>), 8u);
  EXPECT_EQ(alignof(std::atomic<std::uint64_t>), 8u);
  EXPECT_EQ(kRingAbiFingerprint, 0x4C080804u);
}

}  // namespace
}  // namespace shmring
