#include "shmring/queue/spsc_ring.h"

#include <atomic>
#include <cstring>
#include <new>

#include "absl/strings/str_cat.h"

namespace shmring {

std::size_t SpscRing::required_bytes(const Options& options) noexcept {
  if (options.capacity > kMaxCapacity) return 0;
  return sizeof(SpscControl) + options.capacity;
}

absl::StatusOr<SpscRing> SpscRing::create(void* region, std::size_t bytes, const Options& options) {
  if (!is_power_of_two(options.capacity) || options.capacity < kMinCapacity ||
      options.capacity > kMaxCapacity) {
    return absl::InvalidArgumentError(absl::StrCat("SpscRing::create: capacity ", options.capacity,
                                                   " is not a power of two in [64, 2^40]"));
  }
  const std::uint64_t limit = max_record_limit(options.capacity);
  const std::uint64_t max_record = options.max_record == 0 ? limit : options.max_record;
  if (max_record > limit) {
    return absl::InvalidArgumentError(absl::StrCat("SpscRing::create: max_record ", max_record,
                                                   " exceeds ", limit, " for capacity ",
                                                   options.capacity));
  }
  if (options.initial_position % kRecordAlignment != 0) {
    return absl::InvalidArgumentError("SpscRing::create: initial_position must be a multiple of 8");
  }
  const std::size_t needed = required_bytes(options);
  if (absl::Status s = check_region_for_create(region, bytes, needed, "SpscRing"); !s.ok()) return s;

  RingGeometry g;
  g.kind = RingKind::kSpsc;
  g.region_bytes = needed;
  g.data_offset = sizeof(SpscControl);
  g.capacity = options.capacity;
  g.mask = options.capacity - 1;
  g.max_record = max_record;
  g.initial_position = options.initial_position;
  write_ring_header(region, g);
  auto* control = static_cast<SpscControl*>(region);
  std::memset(control->write_pos.pad, 0, sizeof control->write_pos.pad);
  std::memset(control->read_pos.pad, 0, sizeof control->read_pos.pad);
  control->write_pos.value.store(options.initial_position, std::memory_order_relaxed);
  control->read_pos.value.store(options.initial_position, std::memory_order_relaxed);
  // The first record's header word must read "not written yet" (the rest of the data area may hold
  // anything: the reader only ever looks at header words that the writer zeroed or wrote).
  std::atomic_ref<std::uint64_t>(*reinterpret_cast<std::uint64_t*>(
                                     static_cast<std::byte*>(region) + sizeof(SpscControl) +
                                     (options.initial_position & (options.capacity - 1))))
      .store(0, std::memory_order_relaxed);
  publish_ring_header(region);  // SYNC(ring_ready) publishes the zeroed word and the positions
  return attach(region, bytes);
}

absl::StatusOr<SpscRing> SpscRing::attach(void* region, std::size_t bytes) {
  absl::StatusOr<RingGeometry> geometry = read_ring_header(region, bytes, RingKind::kSpsc);
  if (!geometry.ok()) return geometry.status();
  const RingGeometry& g = *geometry;
  if (g.data_offset != sizeof(SpscControl) || g.region_bytes != g.data_offset + g.capacity ||
      g.capacity < kMinCapacity || g.max_record > max_record_limit(g.capacity) ||
      g.slot_stride != 0 || g.initial_position % kRecordAlignment != 0) {
    return absl::DataLossError(absl::StrCat(
        "SpscRing::attach: inconsistent header (data offset ", g.data_offset, ", region bytes ",
        g.region_bytes, ", capacity ", g.capacity, ", max record ", g.max_record, ")"));
  }
  auto* control = static_cast<SpscControl*>(region);
  std::uint64_t read = 0;
  std::uint64_t write = 0;
  bool consistent = false;
  for (int attempt = 0; attempt < 3 && !consistent; ++attempt) {
    // SYNC(spsc_read_pos): pairs with the release store in read(); then SYNC(spsc_write_pos): pairs
    // with the release store in commit(). read_pos first: it never passes write_pos.
    read = control->read_pos.value.load(std::memory_order_acquire);
    write = control->write_pos.value.load(std::memory_order_acquire);
    consistent = write - read <= g.capacity && read % kRecordAlignment == 0 &&
                 write % kRecordAlignment == 0;
  }
  if (!consistent) {
    return absl::DataLossError(absl::StrCat("SpscRing::attach: impossible positions (write ", write,
                                            ", read ", read, ", capacity ", g.capacity, ")"));
  }
  SpscRing ring;
  ring.cfg_.control = control;
  ring.cfg_.data = static_cast<std::byte*>(region) + g.data_offset;
  ring.cfg_.capacity = g.capacity;
  ring.cfg_.mask = g.mask;
  ring.cfg_.max_record = g.max_record;
  ring.w_.read_cache = read;
  ring.r_.pos = read;
  // A writer that died between publishing a record header and storing write_pos left published
  // records after write_pos (a record, or a record and the padding before it): resume after them, so
  // that a re-attached writer never overwrites a record the reader may already have consumed.
  for (int step = 0; step < 2 && write - read < g.capacity; ++step) {
    const std::uint64_t index = write & g.mask;
    // SYNC(spsc_record): pairs with the release store of the header word in commit().
    const std::uint64_t word = ring.header_at(write).load(std::memory_order_acquire);
    const std::uint64_t length = word & 0xFFFFFFFFu;
    const std::uint32_t tag = static_cast<std::uint32_t>(word >> 32);
    std::uint64_t size = 0;
    if (tag == record_tag(write, RecordType::kData) && length <= g.max_record &&
        record_size(length) <= g.capacity - index) {
      size = record_size(length);
    } else if (tag == record_tag(write, RecordType::kPadding) &&
               length == g.capacity - index - kHeaderBytes) {
      size = g.capacity - index;
    } else {
      break;
    }
    if (write + size - read > g.capacity - kHeaderBytes) break;
    write += size;
  }
  ring.w_.pos = write;
  return ring;
}

void SpscRing::close() noexcept { store_ring_state(cfg_.control, RingState::kClosed); }

bool SpscRing::closed() const noexcept {
  return load_ring_state(cfg_.control) == RingState::kClosed;
}

std::uint64_t SpscRing::size_approx() const noexcept {
  const std::uint64_t read = cfg_.control->read_pos.value.load(std::memory_order_relaxed);
  const std::uint64_t write = cfg_.control->write_pos.value.load(std::memory_order_relaxed);
  const std::uint64_t used = write - read;
  return used > cfg_.capacity ? cfg_.capacity : used;
}

}  // namespace shmring
