#include "shmring/queue/broadcast_layout.h"

#include <algorithm>
#include <cstring>
#include <random>

#include "absl/strings/str_cat.h"

namespace shmring {
namespace {

// How far ahead of a claim writers raise `intent`: a sixteenth of the ring, between one granule
// and 64 KiB. Lossy readers then see `intent` change once per chunk, not once per message.
std::uint64_t intent_chunk_for(std::uint64_t capacity) {
  const std::uint64_t chunk = (capacity / 16) & ~(kBroadcastGranule - 1);
  return std::clamp<std::uint64_t>(chunk, kBroadcastGranule, 64 * 1024);
}

// Anchors for one ring of the smallest records (each anchor covers kBroadcastIndexStride of them),
// so a reader can find a start anywhere in what the ring holds.
std::uint64_t index_entries_for(std::uint64_t capacity) {
  return std::max<std::uint64_t>(2, capacity / (kBroadcastGranule * kBroadcastIndexStride));
}

std::uint64_t data_offset_for(std::uint32_t publishers, std::uint32_t readers, std::uint64_t index_entries) {
  return sizeof(BroadcastControl) + std::uint64_t{publishers} * sizeof(BroadcastPublisherSlot) +
         std::uint64_t{readers} * sizeof(BroadcastReaderSlot) +
         align_up(index_entries * sizeof(std::uint64_t), kFalseSharingRange);
}

std::uint64_t random_key() {
  std::random_device device;
  return (std::uint64_t{device()} << 32) ^ device();
}

}  // namespace

std::uint64_t BroadcastLayout::max_record_limit(std::uint64_t capacity, std::uint64_t history) noexcept {
  if (!is_power_of_two(capacity) || capacity < kBroadcastMinCapacity || capacity > kMaxCapacity ||
      history > capacity) {
    return 0;
  }
  // The last `history` messages and the anchor at or before the oldest of them (up to stride - 1
  // more), plus two records of the largest size (a claim and a wrap filler) and one intent chunk
  // fit the ring: writers never overwrite them, lossy readers still accept them, and a reader
  // asking for them finds an anchor to walk from.
  const std::uint64_t kept = history == 0 ? 0 : history + kBroadcastIndexStride - 1;
  const std::uint64_t record = ((capacity - intent_chunk_for(capacity)) / (kept + 2)) &
                               ~(kBroadcastGranule - 1);
  if (record < kBroadcastGranule) return 0;
  return std::min<std::uint64_t>(record - kBroadcastRecordHeader, kMaxRecordLimit);
}

std::uint64_t BroadcastLayout::capacity_for(std::uint64_t max_record, std::uint64_t history) noexcept {
  for (std::uint64_t capacity = kBroadcastMinCapacity; capacity <= kMaxCapacity; capacity <<= 1) {
    if (max_record_limit(capacity, history) >= max_record) return capacity;
  }
  return 0;
}

std::size_t BroadcastLayout::required_bytes(const BroadcastOptions& o) noexcept {
  if (!is_power_of_two(o.capacity) || o.capacity < kBroadcastMinCapacity || o.capacity > kMaxCapacity ||
      o.max_readers > kMaxBroadcastReaders || o.max_publishers == 0 ||
      o.max_publishers > kMaxBroadcastPublishers) {
    return 0;
  }
  return data_offset_for(o.max_publishers, o.max_readers, index_entries_for(o.capacity)) + o.capacity;
}

absl::Status BroadcastLayout::create(void* region, std::size_t bytes, const BroadcastOptions& o) {
  if (!is_power_of_two(o.capacity) || o.capacity < kBroadcastMinCapacity || o.capacity > kMaxCapacity) {
    return absl::InvalidArgumentError(absl::StrCat("broadcast ring: capacity ", o.capacity,
                                                   " is not a power of two in [256, 2^40]"));
  }
  const std::uint64_t limit = max_record_limit(o.capacity, o.history);
  if (limit == 0) {
    return absl::InvalidArgumentError(absl::StrCat("broadcast ring: a ring of ", o.capacity,
                                                   " bytes cannot keep a history of ", o.history));
  }
  const std::uint64_t max_record = o.max_record == 0 ? limit : o.max_record;
  if (max_record > limit) {
    return absl::InvalidArgumentError(absl::StrCat(
        "broadcast ring: max_record ", max_record, " exceeds ", limit, " (capacity ", o.capacity,
        ", history ", o.history, "; a ring of ", capacity_for(max_record, o.history), " bytes would do)"));
  }
  if (o.max_readers > kMaxBroadcastReaders) {
    return absl::InvalidArgumentError(absl::StrCat("broadcast ring: max_readers ", o.max_readers,
                                                   " exceeds ", kMaxBroadcastReaders));
  }
  if (o.max_publishers == 0 || o.max_publishers > kMaxBroadcastPublishers) {
    return absl::InvalidArgumentError(absl::StrCat("broadcast ring: max_publishers ", o.max_publishers,
                                                   " not in [1, ", kMaxBroadcastPublishers, "]"));
  }
  if (o.initial_position % kBroadcastGranule != 0) {
    return absl::InvalidArgumentError("broadcast ring: initial_position must be a multiple of 64");
  }
  const std::size_t needed = required_bytes(o);
  if (absl::Status s = check_region_for_create(region, bytes, needed, "BroadcastLayout"); !s.ok()) {
    return s;
  }
  const std::uint64_t index_entries = index_entries_for(o.capacity);
  RingGeometry g;
  g.kind = RingKind::kBroadcast;
  g.max_readers = o.max_readers;
  g.flags = o.lossless ? kBroadcastLossless : 0;
  g.region_bytes = needed;
  g.data_offset = data_offset_for(o.max_publishers, o.max_readers, index_entries);
  g.capacity = o.capacity;
  g.mask = o.capacity - 1;
  g.max_record = max_record;
  g.initial_position = o.initial_position;
  write_ring_header(region, g);
  // Everything after the header starts as zero bytes; then the words whose "nothing" is not zero.
  std::memset(static_cast<std::byte*>(region) + sizeof(RingHeader), 0, needed - sizeof(RingHeader));
  auto* control = static_cast<BroadcastControl*>(region);
  BroadcastDescriptor& d = control->descriptor;
  d.key = o.key != 0 ? o.key : random_key();
  d.history = o.history;
  d.initial_sequence = o.initial_sequence;
  d.index_entries = index_entries;
  d.intent_chunk = intent_chunk_for(o.capacity);
  d.max_publishers = o.max_publishers;
  d.index_stride = kBroadcastIndexStride;
  control->claim.position = o.initial_position;
  control->claim.sequence = o.initial_sequence;
  control->rare.intent.store(o.initial_position, std::memory_order_relaxed);
  auto* byte_region = static_cast<std::byte*>(region);
  auto* readers = reinterpret_cast<BroadcastReaderSlot*>(
      byte_region + sizeof(BroadcastControl) + std::uint64_t{o.max_publishers} * sizeof(BroadcastPublisherSlot));
  for (std::uint32_t i = 0; i < o.max_readers; ++i) {
    readers[i].position.store(kReaderJoining, std::memory_order_relaxed);
  }
  auto* index = reinterpret_cast<std::atomic<std::uint64_t>*>(readers + o.max_readers);
  // No anchor yet: ~0 is never a plausible position (not a multiple of 64).
  for (std::uint64_t i = 0; i < index_entries; ++i) index[i].store(~std::uint64_t{0}, std::memory_order_relaxed);
  publish_ring_header(region);
  return absl::OkStatus();
}

absl::StatusOr<BroadcastLayout> BroadcastLayout::map(const void* region, std::size_t bytes) {
  absl::StatusOr<RingGeometry> geometry = read_ring_header(region, bytes, RingKind::kBroadcast);
  if (!geometry.ok()) return geometry.status();
  const RingGeometry& g = *geometry;
  // One copy of the descriptor; nothing below reads the shared one again. (read_ring_header's
  // acquire of `version` ordered the creator's writes of it before these loads.)
  const auto* shared = static_cast<const BroadcastControl*>(region);
  if (g.region_bytes < sizeof(BroadcastControl)) {
    return absl::DataLossError(absl::StrCat("broadcast ring: region of ", g.region_bytes, " bytes is too small"));
  }
  const BroadcastDescriptor d = shared->descriptor;
  BroadcastLayout l;
  l.capacity = g.capacity;
  l.mask = g.mask;
  l.max_record = g.max_record;
  l.key = d.key;
  l.history = d.history;
  l.initial_position = g.initial_position;
  l.initial_sequence = d.initial_sequence;
  l.index_entries = d.index_entries;
  l.intent_chunk = d.intent_chunk;
  l.max_readers = g.max_readers;
  l.max_publishers = d.max_publishers;
  l.flags = g.flags;
  const bool consistent =
      (g.flags & ~kBroadcastLossless) == 0 && g.slot_stride == 0 && g.capacity >= kBroadcastMinCapacity &&
      l.max_readers <= kMaxBroadcastReaders && l.max_publishers >= 1 &&
      l.max_publishers <= kMaxBroadcastPublishers && d.index_stride == kBroadcastIndexStride &&
      l.index_entries == index_entries_for(l.capacity) && l.intent_chunk == intent_chunk_for(l.capacity) &&
      l.max_record <= max_record_limit(l.capacity, l.history) &&
      l.initial_position % kBroadcastGranule == 0 &&
      g.data_offset == data_offset_for(l.max_publishers, l.max_readers, l.index_entries) &&
      g.region_bytes == g.data_offset + l.capacity;
  if (!consistent) {
    return absl::DataLossError(absl::StrCat(
        "broadcast ring: inconsistent header (flags ", g.flags, ", readers ", l.max_readers, ", publishers ",
        l.max_publishers, ", capacity ", l.capacity, ", max record ", l.max_record, ", history ", l.history,
        ", index ", l.index_entries, ", data offset ", g.data_offset, ", region bytes ", g.region_bytes, ")"));
  }
  auto* base = const_cast<std::byte*>(static_cast<const std::byte*>(region));
  l.control = reinterpret_cast<BroadcastControl*>(base);
  l.publishers = reinterpret_cast<BroadcastPublisherSlot*>(base + sizeof(BroadcastControl));
  l.readers = reinterpret_cast<BroadcastReaderSlot*>(l.publishers + l.max_publishers);
  l.index = reinterpret_cast<std::atomic<std::uint64_t>*>(l.readers + l.max_readers);
  l.data = base + g.data_offset;
  return l;
}

void append_broadcast_gap(BroadcastControl& control, std::uint64_t sequence, std::uint64_t position,
                          std::uint64_t end, std::uint64_t reason) noexcept {
  const std::uint64_t n = control.rare.gaps.fetch_add(1, std::memory_order_acq_rel);
  BroadcastGapEntry& entry = control.gaps[n % kBroadcastGapEntries];
  // SYNC(bcast_gap): stamp 0 first, then every field (release), then the stamp (release): a reader
  // that reads the same stamp before and after its loads of the fields read this entry.
  entry.stamp.store(0, std::memory_order_relaxed);
  entry.sequence.store(sequence, std::memory_order_release);
  entry.position.store(position, std::memory_order_release);
  entry.end.store(end, std::memory_order_release);
  entry.stamp.store((reason << 56) | ((n + 1) & kGapNumberMask), std::memory_order_release);
}

}  // namespace shmring
