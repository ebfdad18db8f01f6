#include "shmring/queue/broadcast_ring.h"

#include <atomic>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace shmring {
namespace {

std::uint64_t data_offset_for(std::uint32_t max_readers) {
  return sizeof(BroadcastControl) + std::uint64_t{max_readers} * sizeof(BroadcastReaderSlot);
}

BroadcastReaderSlot* slots_of(void* region) {
  return reinterpret_cast<BroadcastReaderSlot*>(static_cast<std::byte*>(region) +
                                                sizeof(BroadcastControl));
}

// Checks what both handles need from a broadcast header copy.
absl::Status check_broadcast_geometry(const RingGeometry& g) {
  const bool lossless = (g.flags & kBroadcastLossless) != 0;
  if ((g.flags & ~kBroadcastLossless) != 0 || g.max_readers > kMaxBroadcastReaders ||
      lossless != (g.max_readers > 0) || g.data_offset != data_offset_for(g.max_readers) ||
      g.capacity < BroadcastRing::kMinCapacity || g.region_bytes != g.data_offset + g.capacity ||
      g.max_record > BroadcastRing::max_record_limit(g.capacity) || g.slot_stride != 0 ||
      g.initial_position % kRecordAlignment != 0) {
    return absl::DataLossError(absl::StrCat(
        "BroadcastRing: inconsistent header (flags ", g.flags, ", readers ", g.max_readers,
        ", data offset ", g.data_offset, ", capacity ", g.capacity, ", max record ", g.max_record,
        ", region bytes ", g.region_bytes, ")"));
  }
  return absl::OkStatus();
}

// A position `p` is plausible against `tail` if it is at most a ring behind and 8-aligned.
bool plausible(std::uint64_t p, std::uint64_t tail, std::uint64_t capacity) {
  return tail - p <= capacity && p % kRecordAlignment == 0;
}

}  // namespace

// --- Writer ---------------------------------------------------------------------------------------

std::size_t BroadcastRing::required_bytes(const Options& options) noexcept {
  if (options.capacity > kMaxCapacity) return 0;
  const std::uint32_t readers = options.lossless ? options.max_readers : 0;
  if (readers > kMaxBroadcastReaders) return 0;
  return data_offset_for(readers) + options.capacity;
}

absl::StatusOr<BroadcastRing> BroadcastRing::create(void* region, std::size_t bytes,
                                                    const Options& options) {
  if (!is_power_of_two(options.capacity) || options.capacity < kMinCapacity ||
      options.capacity > kMaxCapacity) {
    return absl::InvalidArgumentError(absl::StrCat("BroadcastRing::create: capacity ",
                                                   options.capacity,
                                                   " is not a power of two in [64, 2^40]"));
  }
  const std::uint64_t limit = max_record_limit(options.capacity);
  const std::uint64_t max_record = options.max_record == 0 ? limit : options.max_record;
  if (max_record > limit) {
    return absl::InvalidArgumentError(absl::StrCat("BroadcastRing::create: max_record ", max_record,
                                                   " exceeds ", limit));
  }
  if (options.lossless && (options.max_readers == 0 || options.max_readers > kMaxBroadcastReaders)) {
    return absl::InvalidArgumentError(absl::StrCat("BroadcastRing::create: max_readers ",
                                                   options.max_readers, " not in [1, 1024]"));
  }
  if (options.initial_position % kRecordAlignment != 0) {
    return absl::InvalidArgumentError("BroadcastRing::create: initial_position must be a multiple of 8");
  }
  const std::size_t needed = required_bytes(options);
  if (absl::Status s = check_region_for_create(region, bytes, needed, "BroadcastRing"); !s.ok()) {
    return s;
  }
  RingGeometry g;
  g.kind = RingKind::kBroadcast;
  g.max_readers = options.lossless ? options.max_readers : 0;
  g.flags = options.lossless ? kBroadcastLossless : 0;
  g.region_bytes = needed;
  g.data_offset = data_offset_for(g.max_readers);
  g.capacity = options.capacity;
  g.mask = options.capacity - 1;
  g.max_record = max_record;
  g.initial_position = options.initial_position;
  write_ring_header(region, g);
  auto* control = static_cast<BroadcastControl*>(region);
  std::memset(static_cast<void*>(&control->writer), 0, sizeof control->writer);
  control->writer.tail_intent.store(options.initial_position, std::memory_order_relaxed);
  control->writer.tail.store(options.initial_position, std::memory_order_relaxed);
  control->writer.latest.store(options.initial_position, std::memory_order_relaxed);
  control->writer.next_sequence.store(options.initial_position, std::memory_order_relaxed);
  BroadcastReaderSlot* slots = slots_of(region);
  for (std::uint32_t i = 0; i < g.max_readers; ++i) {
    std::memset(static_cast<void*>(&slots[i]), 0, sizeof slots[i]);
    slots[i].position.store(kReaderJoining, std::memory_order_relaxed);
    slots[i].owner.store(kReaderSlotFree, std::memory_order_relaxed);
  }
  // Data words are only ever accessed atomically; start them at zero.
  std::memset(static_cast<std::byte*>(region) + g.data_offset, 0, g.capacity);
  publish_ring_header(region);
  return attach(region, bytes);
}

namespace {

// The sequence number a writer taking over the ring continues with. publish_record() stores
// next_sequence, then latest, then tail, so a writer killed between those stores leaves
// next_sequence one ahead of what readers saw published. The record at `latest` settles it: if it
// ends at tail it is the last published record (next = its sequence + 1); if it starts at or after
// tail it was never published (next = its own sequence). Falls back to the stored value when the
// record does not add up (corrupt or never written).
std::uint64_t next_sequence_for_new_writer(const BroadcastControl& control, const std::byte* data,
                                           const RingGeometry& g, std::uint64_t tail) {
  const BroadcastWriterBlock& w = control.writer;
  const std::uint64_t stored = w.next_sequence.load(std::memory_order_relaxed);
  // SYNC(bcast_latest): pairs with the release store of latest in publish_record().
  const std::uint64_t latest = w.latest.load(std::memory_order_acquire);
  if (tail == g.initial_position || latest % kRecordAlignment != 0) return stored;
  const bool unpublished = static_cast<std::int64_t>(latest - tail) >= 0;
  if ((unpublished ? latest - tail : tail - latest) > g.capacity) return stored;
  const std::uint64_t index = latest & g.mask;
  if (index + sizeof(BroadcastRecordHeader) > g.capacity) return stored;
  const std::uint64_t word0 = detail::load_word_acquire(data + index);
  const auto length = static_cast<std::uint32_t>(word0);
  const auto type = static_cast<std::uint32_t>(word0 >> 32);
  if (type != static_cast<std::uint32_t>(RecordType::kData) || length > g.max_record) return stored;
  const std::uint64_t sequence = detail::load_word_acquire(data + index + 8);
  if (unpublished) return sequence;
  if (latest + align_up(sizeof(BroadcastRecordHeader) + length, kRecordAlignment) == tail) {
    return sequence + 1;
  }
  return stored;
}

}  // namespace

absl::StatusOr<BroadcastRing> BroadcastRing::attach(void* region, std::size_t bytes) {
  absl::StatusOr<RingGeometry> geometry = read_ring_header(region, bytes, RingKind::kBroadcast);
  if (!geometry.ok()) return geometry.status();
  const RingGeometry& g = *geometry;
  if (absl::Status s = check_broadcast_geometry(g); !s.ok()) return s;
  auto* control = static_cast<BroadcastControl*>(region);
  // SYNC(bcast_tail): pairs with the release store of tail in publish_record() (a previous writer's).
  const std::uint64_t tail = control->writer.tail.load(std::memory_order_acquire);
  const std::uint64_t sequence = next_sequence_for_new_writer(
      *control, static_cast<const std::byte*>(region) + g.data_offset, g, tail);
  if (tail % kRecordAlignment != 0) {
    return absl::DataLossError(absl::StrCat("BroadcastRing::attach: tail ", tail, " is misaligned"));
  }
  BroadcastRing ring;
  ring.cfg_.control = control;
  ring.cfg_.slots = slots_of(region);
  ring.cfg_.data = static_cast<std::byte*>(region) + g.data_offset;
  ring.cfg_.capacity = g.capacity;
  ring.cfg_.mask = g.mask;
  ring.cfg_.max_record = g.max_record;
  ring.cfg_.max_readers = g.max_readers;
  ring.w_.tail = tail;
  ring.w_.sequence = sequence;
  ring.w_.limit = tail;  // lossless: look at the readers before the first write
  // A previous writer may have died holding a claim (tail_intent ahead of tail, its space
  // scribbled): keep announcing at least that far. An implausible value is not trusted.
  const std::uint64_t intent = control->writer.tail_intent.load(std::memory_order_relaxed);
  const bool intent_plausible = intent - tail <= g.capacity && intent % kRecordAlignment == 0;
  ring.w_.intent_floor = intent_plausible ? intent : tail;
  return ring;
}

BroadcastRing::Claim BroadcastRing::try_claim(std::size_t max_bytes) noexcept {
  if (w_.claimed) return {RingResult::kBusy, {}};  // one claim at a time
  if (max_bytes > cfg_.max_record) return {RingResult::kTooLarge, {}};
  const std::uint64_t size = align_up(sizeof(BroadcastRecordHeader) + max_bytes, kRecordAlignment);
  const std::uint64_t index = w_.tail & cfg_.mask;
  const std::uint64_t to_end = cfg_.capacity - index;
  const std::uint64_t padding = size <= to_end ? 0 : to_end;
  const std::uint64_t new_tail = w_.tail + padding + size;
  if (cfg_.max_readers > 0 && static_cast<std::int64_t>(new_tail - w_.limit) > 0) {
    const RingResult r = refresh_limit(new_tail);
    if (r != RingResult::kOk) return {r, {}};
  }
  announce(new_tail);
  // SYNC(bcast_claim): the caller's plain stores into the buffer must not become visible before
  // the tail_intent just announced; the fence orders it before them (a lapped reader's acquire
  // load or fence before its tail_intent check pairs with it).
  detail::seqlock_release_fence();
  w_.claimed = true;
  w_.claim_bytes = max_bytes;
  w_.claim_padding = padding;
  const std::uint64_t record_index = padding != 0 ? 0 : index;
  return {RingResult::kOk,
          std::span<std::byte>(cfg_.data + record_index + sizeof(BroadcastRecordHeader), max_bytes)};
}

RingResult BroadcastRing::commit(std::size_t bytes) noexcept {
  if (!w_.claimed) return RingResult::kBusy;
  if (bytes > w_.claim_bytes) return RingResult::kTooLarge;
  const std::uint64_t size = align_up(sizeof(BroadcastRecordHeader) + bytes, kRecordAlignment);
  const std::uint64_t padding = w_.claim_padding;
  const std::uint64_t record_index = padding != 0 ? 0 : (w_.tail & cfg_.mask);
  w_.claimed = false;
  // SYNC(bcast_tail): the release stores in publish_record() order the caller's stores into the
  // buffer before the record becomes visible.
  publish_record(padding, record_index, bytes, w_.tail + padding + size);
  return RingResult::kOk;
}

RingResult BroadcastRing::refresh_limit(std::uint64_t needed_tail) noexcept {
  BroadcastWriterBlock& block = cfg_.control->writer;
  // SYNC(bcast_join): a seq_cst read-modify-write of tail followed by seq_cst loads of the slot
  // owners, against register_reader()'s seq_cst owner CAS followed by its seq_cst load of tail:
  // either this scan sees the new reader, or the reader starts at or after this tail (which is all
  // the writer may overwrite up to before its next scan).
  block.tail.fetch_add(0, std::memory_order_seq_cst);
  std::uint64_t oldest = w_.tail;
  for (std::uint32_t i = 0; i < cfg_.max_readers; ++i) {
    BroadcastReaderSlot& slot = cfg_.slots[i];
    const std::uint64_t owner = slot.owner.load(std::memory_order_seq_cst);
    if (owner == kReaderSlotFree || owner == kReaderSlotReclaiming) continue;
    // SYNC(bcast_reader_pos): pairs with the reader's release CAS of its position after copying
    // the records before it; the writer may now overwrite them.
    std::uint64_t position = slot.position.load(std::memory_order_acquire);
    if (position == kReaderJoining || !plausible(position, w_.tail, cfg_.capacity)) {
      // Settle a joining reader's start here: it will read everything from our tail on
      // (register_reader() takes the later of this and its own start). A position no live reader
      // can hold (garbage, or one settled for a previous owner of the slot while the slot was
      // free and then left behind by the writer) is settled the same way: never kCorrupt for
      // what a slot says, and a reader whose position is changed under it is told kEvicted.
      if (slot.position.compare_exchange_strong(position, w_.tail, std::memory_order_acq_rel,
                                                std::memory_order_acquire)) {
        position = w_.tail;
      }
      if (!plausible(position, w_.tail, cfg_.capacity)) position = w_.tail;
    }
    if (static_cast<std::int64_t>(position - oldest) < 0) oldest = position;
  }
  w_.limit = oldest + cfg_.capacity;
  return static_cast<std::int64_t>(needed_tail - w_.limit) > 0 ? RingResult::kFull : RingResult::kOk;
}

RingResult BroadcastRing::evict_reader(std::uint32_t index, std::uint64_t token) noexcept {
  if (index >= cfg_.max_readers || token == kReaderSlotFree || token == kReaderSlotReclaiming) {
    return RingResult::kBusy;
  }
  BroadcastReaderSlot& slot = cfg_.slots[index];
  std::uint64_t expected = token;
  if (!slot.owner.compare_exchange_strong(expected, kReaderSlotReclaiming, std::memory_order_acq_rel,
                                          std::memory_order_relaxed)) {
    return RingResult::kBusy;
  }
  slot.position.store(kReaderJoining, std::memory_order_relaxed);
  // SYNC(bcast_slot_free): pairs with the acquire of a later owner CAS in register_reader(): the
  // position is kReaderJoining again before the slot can be taken.
  slot.owner.store(kReaderSlotFree, std::memory_order_release);
  return RingResult::kOk;
}

BroadcastRing::ReaderSlotView BroadcastRing::reader_slot(std::uint32_t index) const noexcept {
  if (index >= cfg_.max_readers) return {};
  return {cfg_.slots[index].owner.load(std::memory_order_relaxed),
          cfg_.slots[index].position.load(std::memory_order_relaxed)};
}

void BroadcastRing::close() noexcept { store_ring_state(cfg_.control, RingState::kClosed); }

// --- Readers --------------------------------------------------------------------------------------

absl::StatusOr<BroadcastReader> BroadcastReader::attach(const void* region, std::size_t bytes,
                                                        BroadcastStart start) {
  absl::StatusOr<RingGeometry> geometry = read_ring_header(region, bytes, RingKind::kBroadcast);
  if (!geometry.ok()) return geometry.status();
  const RingGeometry& g = *geometry;
  if (absl::Status s = check_broadcast_geometry(g); !s.ok()) return s;
  BroadcastReader reader;
  reader.cfg_.control = static_cast<const BroadcastControl*>(region);
  reader.cfg_.data = static_cast<const std::byte*>(region) + g.data_offset;
  reader.cfg_.capacity = g.capacity;
  reader.cfg_.mask = g.mask;
  reader.cfg_.max_record = g.max_record;
  const BroadcastWriterBlock& block = reader.cfg_.control->writer;
  // SYNC(bcast_tail): pairs with the release store of tail in BroadcastRing::publish_record().
  const std::uint64_t tail = block.tail.load(std::memory_order_acquire);
  if (tail % kRecordAlignment != 0) {
    return absl::DataLossError(absl::StrCat("BroadcastReader::attach: tail ", tail, " is misaligned"));
  }
  reader.cursor_ = tail;
  const std::uint64_t previous = reader.establish_baseline(tail, g.initial_position);
  if (start == BroadcastStart::kLatest && previous != tail) {
    reader.cursor_ = previous;  // the record just before tail
    reader.next_sequence_ -= 1;
  }
  return reader;
}

std::uint64_t BroadcastReader::establish_baseline(std::uint64_t position,
                                                  std::uint64_t initial_position) noexcept {
  have_sequence_ = false;
  if (position == initial_position) {  // nothing written yet: the first record is initial_position
    have_sequence_ = true;
    next_sequence_ = initial_position;
    return position;
  }
  const BroadcastWriterBlock& block = cfg_.control->writer;
  // SYNC(bcast_latest): pairs with the release store of latest in publish_record().
  const std::uint64_t latest = block.latest.load(std::memory_order_acquire);
  if (position - latest > cfg_.capacity || latest % kRecordAlignment != 0) return position;
  const std::uint64_t index = latest & cfg_.mask;
  // SYNC(bcast_data): acquire loads of data words (see try_read()).
  const std::uint64_t word0 = detail::load_word_acquire(cfg_.data + index);
  const auto length = static_cast<std::uint32_t>(word0);
  const auto type = static_cast<std::uint32_t>(word0 >> 32);
  const std::uint64_t size = align_up(sizeof(BroadcastRecordHeader) + length, kRecordAlignment);
  if (type != static_cast<std::uint32_t>(RecordType::kData) || length > cfg_.max_record ||
      size > cfg_.capacity - index || latest + size != position) {
    return position;  // not the record just before `position` (the writer moved on): unknown
  }
  // Only now is the second header word known to lie inside the data area.
  const std::uint64_t sequence = detail::load_word_acquire(cfg_.data + index + 8);
  const std::uint64_t intent = block.tail_intent.load(std::memory_order_acquire);
  if (intent - latest > cfg_.capacity) return position;  // overwritten meanwhile
  have_sequence_ = true;
  next_sequence_ = sequence + 1;
  return latest;
}

absl::StatusOr<BroadcastReader> BroadcastReader::register_reader(void* region, std::size_t bytes,
                                                                 std::uint64_t token) {
  if (token == kReaderSlotFree || token == kReaderSlotReclaiming) {
    return absl::InvalidArgumentError("BroadcastReader::register_reader: token may not be 0 or ~0");
  }
  absl::StatusOr<BroadcastReader> reader = attach(region, bytes, BroadcastStart::kNext);
  if (!reader.ok()) return reader.status();
  absl::StatusOr<RingGeometry> g = read_ring_header(region, bytes, RingKind::kBroadcast);
  if (!g.ok()) return g.status();
  if (g->max_readers == 0) {
    return absl::FailedPreconditionError(
        "BroadcastReader::register_reader: the ring is lossy (no reader slots)");
  }
  BroadcastReaderSlot* slots = slots_of(region);
  int restarts = 0;
  for (std::uint32_t i = 0; i < g->max_readers; ++i) {
    std::uint64_t expected = kReaderSlotFree;
    // SYNC(bcast_join) and SYNC(bcast_slot_free): seq_cst (see refresh_limit()).
    if (!slots[i].owner.compare_exchange_strong(expected, token, std::memory_order_seq_cst,
                                                std::memory_order_relaxed)) {
      continue;
    }
    BroadcastWriterBlock& block = static_cast<BroadcastControl*>(region)->writer;
    // SYNC(bcast_join): seq_cst, after the owner CAS (see refresh_limit()).
    const std::uint64_t tail = block.tail.load(std::memory_order_seq_cst);
    // Usually the slot still says kReaderJoining and we start at `tail`. The writer may have
    // settled it first: for us, at its own tail, which can be ahead of ours (start there: it may
    // already overwrite what lies before), or for the slot's previous owner (a scan that read
    // that owner, then settled after it left): then at or behind our tail (start at ours). Junk
    // also means our tail. A CAS, never a store, so a settling by the writer is never lost.
    std::uint64_t found = kReaderJoining;
    std::uint64_t position = tail;
    while (!slots[i].position.compare_exchange_strong(found, position, std::memory_order_acq_rel,
                                                      std::memory_order_acquire)) {
      const bool ahead = found != kReaderJoining && found % kRecordAlignment == 0 &&
                         static_cast<std::int64_t>(found - tail) > 0 &&
                         found - tail <= g->capacity;
      position = ahead ? found : tail;
    }
    // An evictor may have freed the slot between our owner CAS and our position CAS (evictors
    // skip kReaderJoining slots, but the slot can hold a settlement meanwhile). Our position would
    // then sit in a slot the writer ignores: start over (the slot is free or someone else's).
    if (slots[i].owner.load(std::memory_order_seq_cst) != token) {
      if (++restarts > 16) break;
      i = static_cast<std::uint32_t>(-1);  // the loop's ++i makes it 0
      continue;
    }
    reader->slot_ = &slots[i];
    reader->slot_index_ = i;
    reader->token_ = token;
    reader->cursor_ = position;
    reader->published_ = position;
    reader->establish_baseline(position, g->initial_position);
    return reader;
  }
  if (restarts > 16) {
    return absl::AbortedError(
        "BroadcastReader::register_reader: evicted while registering, again and again");
  }
  return absl::ResourceExhaustedError(absl::StrCat("BroadcastReader::register_reader: all ",
                                                   g->max_readers, " reader slots are taken"));
}

RingResult BroadcastReader::lapped() noexcept {
  ++lapped_;
  const BroadcastWriterBlock& block = cfg_.control->writer;
  // SYNC(bcast_latest): pairs with the release store of latest in publish_record(); then SYNC(bcast_tail).
  const std::uint64_t latest = block.latest.load(std::memory_order_acquire);
  const std::uint64_t tail = block.tail.load(std::memory_order_acquire);
  cursor_ = plausible(latest, tail, cfg_.capacity) ? latest : tail;
  jumped_ = have_sequence_;
  if (slot_ != nullptr) publish_cursor();
  return RingResult::kLapped;
}

RingResult BroadcastReader::try_view(std::span<const std::byte>* record) noexcept {
  if (evicted_) return RingResult::kEvicted;
  if (view_open_) return RingResult::kBusy;
  const std::byte* payload = nullptr;
  std::uint32_t length = 0;
  // Only the header is validated now; the payload is validated in finish_view(), after the reads.
  const RingResult r = next_record(
      [&payload](const std::byte* p, std::uint32_t) {
        payload = p;
        return true;
      },
      &view_start_, &length);
  if (r != RingResult::kOk) return r;
  view_open_ = true;
  *record = std::span<const std::byte>(payload, length);
  return RingResult::kOk;
}

RingResult BroadcastReader::finish_view() noexcept {
  if (!view_open_) return RingResult::kOk;
  view_open_ = false;
  if (slot_ != nullptr) {
    // Lossless: the writer could not overwrite the record while our slot still held its start;
    // handing the space back is the release of SYNC(bcast_reader_pos).
    return publish_cursor() ? RingResult::kOk : RingResult::kEvicted;
  }
  if (evicted_) return RingResult::kEvicted;  // lossless reader already unregistered
  // SYNC(bcast_view): the caller's reads of the record (plain loads) are ordered before the
  // tail_intent load by this acquire fence; had the writer begun to overwrite any byte read, the
  // tail_intent it announced before (SYNC(bcast_data), SYNC(bcast_claim)) is visible here.
  detail::seqlock_acquire_fence();
  const std::uint64_t intent = cfg_.control->writer.tail_intent.load(std::memory_order_relaxed);
  if (intent - view_start_ > cfg_.capacity) {
    ++lost_;  // accepted by try_view, but unusable
    return RingResult::kLapped;
  }
  return RingResult::kOk;
}

void BroadcastReader::resync() noexcept {
  // SYNC(bcast_tail): pairs with the release store of tail in publish_record().
  cursor_ = cfg_.control->writer.tail.load(std::memory_order_acquire);
  have_sequence_ = false;  // what was skipped is not counted
  jumped_ = false;
}

void BroadcastReader::unregister() noexcept {
  if (slot_ == nullptr) return;
  std::uint64_t expected = token_;
  if (slot_->owner.compare_exchange_strong(expected, kReaderSlotReclaiming,
                                           std::memory_order_acq_rel, std::memory_order_relaxed)) {
    slot_->position.store(kReaderJoining, std::memory_order_relaxed);
    // SYNC(bcast_slot_free): as in BroadcastRing::evict_reader().
    slot_->owner.store(kReaderSlotFree, std::memory_order_release);
  }
  slot_ = nullptr;
  evicted_ = true;
}

bool BroadcastReader::closed() const noexcept {
  return load_ring_state(cfg_.control) == RingState::kClosed;
}

std::uint64_t BroadcastReader::writer_tail_approx() const noexcept {
  return cfg_.control->writer.tail.load(std::memory_order_relaxed);
}

}  // namespace shmring
