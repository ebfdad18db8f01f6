// The broadcast ring's layout (after Aeron's broadcast descriptor): what lives in the region, how a
// record is framed, and the checks every handle runs before it trusts a region. The roles that use
// it live beside it: BroadcastWriter (broadcast_writer.h, one per publisher), BroadcastReader
// (broadcast_reader.h, one per subscriber), BroadcastReaderSlots (broadcast_reader_slots.h, evicts
// lossless readers) and BroadcastPublishers (broadcast_publishers.h, the dead-publisher recovery).
//
// Several writers, one total order. A writer claims room for a record with one 16-byte
// compare-and-swap on the claim pair {position, sequence}: the record gets the bytes [position,
// position + size) and the topic sequence number `sequence`, so positions and sequence numbers
// follow one order that every reader sees. The writer fills the record and commits it by storing
// its commit word last; readers wait on that word in the record itself, never on a shared tail, so
// a record of up to one cache line costs a reader one line.
//
// Region layout (offsets from the region's start; every block is 128 bytes or a multiple):
//   RingHeader            kind kBroadcast, capacity, max_record, reader slots, initial position
//   BroadcastDescriptor   written once by the creator (key, history, publishers, index size)
//   BroadcastClaimBlock   the claim pair (every claim writes it)
//   BroadcastRareBlock    intent, reader generation, gap count, publisher ids (written rarely)
//   BroadcastGapEntry[kBroadcastGapEntries]   sequence numbers that carry no message
//   BroadcastPublisherSlot[max_publishers]    each publisher's claim in progress
//   BroadcastReaderSlot[max_readers]          lossless readers' positions
//   index: std::atomic<uint64_t>[index_entries], padded to 128 bytes
//   data: capacity bytes
//
// A record starts at a multiple of kBroadcastGranule (64) bytes and occupies
// align_up(kBroadcastRecordHeader + length, 64) bytes (or a run of filler): a record of up to 40
// payload bytes lives in one cache line, and two writers never share a line.
//   word 0: the commit word (commit_word(key, position, sequence) for a message, ^ kFillerMark for
//           filler, ^ kVoidMark for a void), stored last (release);
//   word 1: payload length (low 32 bits) | publisher id (high 32 bits); filler and void: the bytes
//           they occupy;
//   word 2: the publisher's own sequence number of this message (0 for its first);
//   then the payload.
// The commit word names the record's position and sequence, mixed with the ring's random key:
// stale bytes (an older lap's record or payload) never equal it (but with probability 2^-64, and a
// remote sender who fills payloads cannot aim at it without the key). A reader always knows the
// position and sequence it waits for, so "committed" is one comparison.
//   data   (sequence s): a message; the next record has sequence s + 1;
//   filler (sequence s): no message; skip its bytes; the next record still has sequence s (the
//          end of the ring, the unused tail of a claim committed short);
//   void   (sequence s): no message; skip its bytes; s is used up (a loan given up while another
//          writer had claimed after it: the number cannot be handed back).
// A dead writer's claim is not written into the data area (a writer on the next lap may already own
// those bytes): the recovery records it in the gap table, and readers waiting at it skip it.
//
// History: every kBroadcastIndexStride-th sequence (counted from the initial one) is an anchor: its
// claimer stores the position into index[(anchor number) % index_entries]. A reader that starts in
// the past (latest, last n, oldest) finds an anchor at or before its target and walks forward; an
// anchor is trusted only if the record there carries the anchor's sequence. The creator sizes the
// ring so that the last `history` messages, and the anchor before them, are never overwritten:
// (history + stride - 1 + 2) * largest record + intent chunk <= capacity.
//
// Lossy readers validate what they copied against `intent` (an upper bound of every byte a writer
// may be writing, raised in chunks of intent_chunk so that readers find it in their cache): a copy
// of the record at position c is intact if intent - c <= capacity after the copy (Aeron's
// broadcast receiver). Lossless readers hold the writers back through their slot position.
//
// Memory ordering: docs/memory-ordering.md (tags bcast_*). Hostile memory: every handle copies the
// header and descriptor once, checks them (check_broadcast_layout) and uses only its copy; every
// position, length and index read from the region is range-checked before it is followed.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "absl/status/statusor.h"
#include "shmring/core/layout.h"
#include "shmring/queue/ring_header.h"

namespace shmring {

// --- Format constants ------------------------------------------------------------------------------

inline constexpr std::uint64_t kBroadcastGranule = 64;        // records start at multiples of this
inline constexpr std::uint64_t kBroadcastRecordHeader = 24;   // commit word, length|publisher, pub seq
inline constexpr std::uint64_t kBroadcastIndexStride = 8;     // one anchor every 8 sequence numbers
inline constexpr std::uint32_t kBroadcastGapEntries = 64;     // the gap table's length
inline constexpr std::uint32_t kMaxBroadcastReaders = 1024;
inline constexpr std::uint32_t kMaxBroadcastPublishers = 256;
inline constexpr std::uint64_t kBroadcastMinCapacity = 256;
// RingHeader::flags: the creator's default delivery for readers that do not choose (informative:
// the ring itself treats every reader as it registers).
inline constexpr std::uint32_t kBroadcastLossless = 1;
// Marks xored into a commit word (random-looking, so that no mark is a small difference).
inline constexpr std::uint64_t kFillerMark = 0x5BD1E9955BD1E995ULL;
inline constexpr std::uint64_t kVoidMark = 0xC2B2AE3D27D4EB4FULL;
// Slot owners that are not tokens (reader and publisher slots).
inline constexpr std::uint64_t kSlotFree = 0;
inline constexpr std::uint64_t kSlotReclaiming = ~std::uint64_t{0};
// A lossless reader's slot position before its start is decided: writers ignore the slot.
inline constexpr std::uint64_t kReaderJoining = ~std::uint64_t{0};
// BroadcastGapEntry::reason.
inline constexpr std::uint64_t kGapAbandoned = 1;  // a dead writer's claim
inline constexpr std::uint64_t kGapVoid = 2;       // a loan given up (void record in the data area)

// The commit word of the record at `position` with sequence `sequence`: the position mixed with
// the key (splitmix64's finalizer, a bijection), xored with the sequence.
constexpr std::uint64_t position_tag(std::uint64_t key, std::uint64_t position) noexcept {
  std::uint64_t x = position ^ key;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}
constexpr std::uint64_t commit_word(std::uint64_t key, std::uint64_t position,
                                    std::uint64_t sequence) noexcept {
  return position_tag(key, position) ^ sequence;
}
// Bytes a record of `length` payload bytes occupies.
constexpr std::uint64_t broadcast_record_bytes(std::uint64_t length) noexcept {
  return align_up(kBroadcastRecordHeader + length, kBroadcastGranule);
}

// --- In-region structs -------------------------------------------------------------------------------

// Written by the creator before the header is published (SYNC(ring_ready)); read-only afterwards.
struct alignas(kFalseSharingRange) BroadcastDescriptor {
  std::uint64_t key;               // mixed into every commit word (random at create)
  std::uint64_t history;           // messages never overwritten (the creator's promise)
  std::uint64_t initial_sequence;  // sequence of the first record (a test hook; normally 0)
  std::uint64_t index_entries;     // anchors kept (a power of two)
  std::uint64_t intent_chunk;      // how far ahead writers raise intent (a multiple of 64)
  std::uint32_t max_publishers;    // publisher slots
  std::uint32_t index_stride;      // kBroadcastIndexStride
  std::uint8_t pad[kFalseSharingRange - 6 * sizeof(std::uint64_t)];
};
static_assert(std::is_standard_layout_v<BroadcastDescriptor>);
static_assert(sizeof(BroadcastDescriptor) == 128);
static_assert(offsetof(BroadcastDescriptor, key) == 0);
static_assert(offsetof(BroadcastDescriptor, history) == 8);
static_assert(offsetof(BroadcastDescriptor, initial_sequence) == 16);
static_assert(offsetof(BroadcastDescriptor, index_entries) == 24);
static_assert(offsetof(BroadcastDescriptor, intent_chunk) == 32);
static_assert(offsetof(BroadcastDescriptor, max_publishers) == 40);
static_assert(offsetof(BroadcastDescriptor, index_stride) == 44);

// The claim pair: the next record's position and sequence. Written only by a 16-byte CAS
// (detail::cas_pair, SYNC(bcast_claim)); read by 8-byte atomic loads (a reader needs one half).
struct alignas(kFalseSharingRange) BroadcastClaimBlock {
  alignas(16) std::uint64_t position;
  std::uint64_t sequence;
  std::uint8_t pad[kFalseSharingRange - 2 * sizeof(std::uint64_t)];
};
static_assert(std::is_standard_layout_v<BroadcastClaimBlock>);
static_assert(sizeof(BroadcastClaimBlock) == 128);
static_assert(offsetof(BroadcastClaimBlock, position) == 0);
static_assert(offsetof(BroadcastClaimBlock, sequence) == 8);

// Words written rarely and read on every message by some role, so they stay in readers' caches.
struct alignas(kFalseSharingRange) BroadcastRareBlock {
  std::atomic<std::uint64_t> intent;             // writers (CAS-max): SYNC(bcast_intent)
  std::atomic<std::uint64_t> reader_generation;  // lossless readers joining: SYNC(bcast_generation)
  std::atomic<std::uint64_t> gaps;               // gap entries appended so far: SYNC(bcast_gap)
  std::atomic<std::uint64_t> abandoned;          // dead writers' claims skipped (the recovery)
  std::atomic<std::uint32_t> next_publisher_id;  // publishers registering (slow path)
  std::atomic<std::uint32_t> reserved;
  std::uint8_t pad[kFalseSharingRange - 5 * sizeof(std::uint64_t)];
};
static_assert(std::is_standard_layout_v<BroadcastRareBlock>);
static_assert(sizeof(BroadcastRareBlock) == 128);
static_assert(offsetof(BroadcastRareBlock, intent) == 0);
static_assert(offsetof(BroadcastRareBlock, reader_generation) == 8);
static_assert(offsetof(BroadcastRareBlock, gaps) == 16);
static_assert(offsetof(BroadcastRareBlock, abandoned) == 24);
static_assert(offsetof(BroadcastRareBlock, next_publisher_id) == 32);

// A sequence number that carries no message: [position, end) holds a dead writer's claim
// (kGapAbandoned: readers skip it through this entry) or a void record (kGapVoid: readers skip it
// in the data area; the entry only keeps a lapped reader's loss count exact). The n-th entry
// appended (counting from 0) lives in gaps[n % kBroadcastGapEntries]; its `stamp` is
// (reason << 56) | (n + 1), stored last (release) and 0 while the entry is being written, so a reader
// can tell an entry that is not written yet from one that is (SYNC(bcast_gap)).
struct BroadcastGapEntry {
  std::atomic<std::uint64_t> stamp;
  std::atomic<std::uint64_t> sequence;
  std::atomic<std::uint64_t> position;
  std::atomic<std::uint64_t> end;
};
static_assert(std::is_standard_layout_v<BroadcastGapEntry>);
static_assert(sizeof(BroadcastGapEntry) == 32);
static_assert(offsetof(BroadcastGapEntry, sequence) == 8);
static_assert(offsetof(BroadcastGapEntry, position) == 16);
static_assert(offsetof(BroadcastGapEntry, end) == 24);
inline constexpr std::uint64_t kGapNumberMask = (std::uint64_t{1} << 56) - 1;

// One publisher: written by that publisher (and by the recovery, under the transport's lock, once
// its owner is dead).
struct alignas(kFalseSharingRange) BroadcastPublisherSlot {
  std::atomic<std::uint64_t> owner;             // kSlotFree, kSlotReclaiming or the owner's token
  // The claim being made or held: stored before each claim CAS (SYNC(bcast_attempt)); end 0: none.
  std::atomic<std::uint64_t> attempt_position;
  std::atomic<std::uint64_t> attempt_sequence;
  std::atomic<std::uint64_t> attempt_end;
  std::atomic<std::uint64_t> published;         // messages committed (the next publisher sequence)
  std::atomic<std::uint32_t> id;                // the publisher's id (non-zero while owned)
  std::atomic<std::uint32_t> reserved;
  std::uint8_t pad[kFalseSharingRange - 6 * sizeof(std::uint64_t)];
};
static_assert(std::is_standard_layout_v<BroadcastPublisherSlot>);
static_assert(sizeof(BroadcastPublisherSlot) == 128);
static_assert(offsetof(BroadcastPublisherSlot, attempt_position) == 8);
static_assert(offsetof(BroadcastPublisherSlot, attempt_sequence) == 16);
static_assert(offsetof(BroadcastPublisherSlot, attempt_end) == 24);
static_assert(offsetof(BroadcastPublisherSlot, published) == 32);
static_assert(offsetof(BroadcastPublisherSlot, id) == 40);

// One lossless reader's position, written by that reader (and by an evictor only to free it).
struct alignas(kFalseSharingRange) BroadcastReaderSlot {
  std::atomic<std::uint64_t> owner;     // kSlotFree, kSlotReclaiming or the reader's token
  std::atomic<std::uint64_t> position;  // kReaderJoining, or the reader's next position
  std::uint8_t pad[kFalseSharingRange - 2 * sizeof(std::atomic<std::uint64_t>)];
};
static_assert(std::is_standard_layout_v<BroadcastReaderSlot>);
static_assert(sizeof(BroadcastReaderSlot) == 128);
static_assert(offsetof(BroadcastReaderSlot, owner) == 0);
static_assert(offsetof(BroadcastReaderSlot, position) == 8);

// The fixed blocks at the start of every broadcast region.
struct BroadcastControl {
  RingHeader header;
  BroadcastDescriptor descriptor;
  BroadcastClaimBlock claim;
  BroadcastRareBlock rare;
  BroadcastGapEntry gaps[kBroadcastGapEntries];
  // followed by max_publishers BroadcastPublisherSlot, max_readers BroadcastReaderSlot, the index
  // and the data area
};
static_assert(std::is_standard_layout_v<BroadcastControl>);
static_assert(sizeof(BroadcastControl) == 2560);
static_assert(offsetof(BroadcastControl, descriptor) == 128);
static_assert(offsetof(BroadcastControl, claim) == 256);
static_assert(offsetof(BroadcastControl, rare) == 384);
static_assert(offsetof(BroadcastControl, gaps) == 512);
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);

// --- Creation and the validated view every handle keeps ---------------------------------------------

// A ring's shape, chosen by its creator.
struct BroadcastOptions {
  std::uint64_t capacity = 64 * 1024;  // data bytes: a power of two >= kBroadcastMinCapacity
  std::uint64_t max_record = 0;        // 0: the largest allowed (max_record_limit)
  std::uint32_t max_readers = 64;      // lossless reader slots (0 .. kMaxBroadcastReaders)
  std::uint32_t max_publishers = 1;    // writers at once (1 .. kMaxBroadcastPublishers)
  std::uint64_t history = 0;           // the last `history` messages are never overwritten
  bool lossless = false;               // the default delivery (RingHeader::flags), informative
  // Test hooks: first position (a multiple of 64) and first sequence; the key (0: random).
  std::uint64_t initial_position = 0;
  std::uint64_t initial_sequence = 0;
  std::uint64_t key = 0;
};

// Pointers into a checked region and the checked copy of its constants: what every role uses after
// attach. `writable` is false for a read-only mapping.
struct BroadcastLayout {
  BroadcastControl* control = nullptr;
  BroadcastPublisherSlot* publishers = nullptr;
  BroadcastReaderSlot* readers = nullptr;
  std::atomic<std::uint64_t>* index = nullptr;
  std::byte* data = nullptr;
  std::uint64_t capacity = 0;
  std::uint64_t mask = 0;
  std::uint64_t max_record = 0;
  std::uint64_t key = 0;
  std::uint64_t history = 0;
  std::uint64_t initial_position = 0;
  std::uint64_t initial_sequence = 0;
  std::uint64_t index_entries = 0;
  std::uint64_t intent_chunk = 0;
  std::uint32_t max_readers = 0;
  std::uint32_t max_publishers = 0;
  std::uint32_t flags = 0;

  // The largest payload a ring of `capacity` bytes keeping `history` messages accepts (0: none).
  static std::uint64_t max_record_limit(std::uint64_t capacity, std::uint64_t history = 0) noexcept;
  // The smallest capacity (a power of two) that holds records of `max_record` bytes and keeps
  // `history` of them; 0 if none within kMaxCapacity.
  static std::uint64_t capacity_for(std::uint64_t max_record, std::uint64_t history) noexcept;
  // Bytes of the region for `options` (0 if they are out of range).
  static std::size_t required_bytes(const BroadcastOptions& options) noexcept;
  // Initialises a ring in `region` (kInvalidArgument for bad options or a null, misaligned or too
  // small region) and publishes its header last (release). Nobody may use the region meanwhile.
  static absl::Status create(void* region, std::size_t bytes, const BroadcastOptions& options);
  // Reads and checks the header and descriptor of a region (codes as in ring_header.h: kUnavailable
  // not ready, kFailedPrecondition another layout version, kDataLoss inconsistent).
  static absl::StatusOr<BroadcastLayout> map(const void* region, std::size_t bytes);

  bool default_lossless() const noexcept { return (flags & kBroadcastLossless) != 0; }
  std::uint64_t index_of(std::uint64_t position) const noexcept { return position & mask; }
  // Whether `position` may be a record start a reader can look at: granule-aligned and within one
  // ring behind `frontier`.
  bool plausible(std::uint64_t position, std::uint64_t frontier) const noexcept {
    return position % kBroadcastGranule == 0 && frontier - position <= capacity;
  }
  // The anchor number of `sequence` (sequence - initial_sequence) / stride, when it is an anchor.
  bool is_anchor(std::uint64_t sequence) const noexcept {
    return (sequence - initial_sequence) % kBroadcastIndexStride == 0;
  }
  std::atomic<std::uint64_t>& anchor_slot(std::uint64_t sequence) const noexcept {
    return index[((sequence - initial_sequence) / kBroadcastIndexStride) & (index_entries - 1)];
  }
};

// Appends a gap entry (any role that may write the region: a writer voiding its claim, the
// recovery abandoning a dead writer's): takes the next entry, writes it (SYNC(bcast_gap)).
void append_broadcast_gap(BroadcastControl& control, std::uint64_t sequence, std::uint64_t position,
                          std::uint64_t end, std::uint64_t reason) noexcept;

// A gap entry as read whole.
struct BroadcastGap {
  std::uint64_t sequence = 0;
  std::uint64_t position = 0;
  std::uint64_t end = 0;
  std::uint64_t reason = 0;
};
// Calls visit(gap) for every entry of the table that is still there, newest first. Returns false
// if an entry appended was not written completely yet (look again later: it may be the one).
template <typename Visit>
bool for_each_broadcast_gap(const BroadcastControl& control, Visit&& visit) noexcept {
  // SYNC(bcast_gap): the count first, then each entry's stamp (acquire), its fields (acquire), and
  // its stamp again: the same stamp before and after means the fields are that entry's.
  const std::uint64_t appended = control.rare.gaps.load(std::memory_order_acquire);
  const std::uint64_t entries = appended < kBroadcastGapEntries ? appended : kBroadcastGapEntries;
  bool complete = true;
  for (std::uint64_t k = 0; k < entries; ++k) {
    const std::uint64_t number = appended - 1 - k;
    const BroadcastGapEntry& entry = control.gaps[number % kBroadcastGapEntries];
    const std::uint64_t stamp = entry.stamp.load(std::memory_order_acquire);
    BroadcastGap gap;
    gap.sequence = entry.sequence.load(std::memory_order_acquire);
    gap.position = entry.position.load(std::memory_order_acquire);
    gap.end = entry.end.load(std::memory_order_acquire);
    gap.reason = stamp >> 56;
    const bool whole = entry.stamp.load(std::memory_order_acquire) == stamp;
    const std::uint64_t written = stamp & kGapNumberMask;  // its number + 1; 0 while being written
    if (written == number + 1 && whole) {
      visit(gap);
    } else if (static_cast<std::int64_t>(written - (number + 1)) < 0 || !whole) {
      complete = false;  // not written yet (or being written): this one may matter
    }
    // A newer entry (number + 1 + kBroadcastGapEntries ...) took its place: it is gone.
  }
  return complete;
}

}  // namespace shmring
