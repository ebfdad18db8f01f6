#include "shmring/queue/ring_header.h"

#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"

namespace shmring {
namespace {

const RingHeader* header_of(const void* region) { return static_cast<const RingHeader*>(region); }

}  // namespace

const char* to_string(RingKind kind) {
  switch (kind) {
    case RingKind::kSpsc: return "kSpsc";
    case RingKind::kMpmc: return "kMpmc";
    case RingKind::kBroadcast: return "kBroadcast";
    case RingKind::kFramePool: return "kFramePool";
  }
  return "kUnknown";
}

absl::Status check_region_for_create(const void* region, std::size_t bytes, std::size_t needed,
                                     const char* ring_name) {
  if (region == nullptr) return absl::InvalidArgumentError(absl::StrCat(ring_name, "::create: null region"));
  if (reinterpret_cast<std::uintptr_t>(region) % kRegionAlignment != 0) {
    return absl::InvalidArgumentError(absl::StrCat(ring_name, "::create: region not aligned to ",
                                                   kRegionAlignment, " bytes"));
  }
  if (needed == 0 || bytes < needed) {
    return absl::InvalidArgumentError(absl::StrCat(ring_name, "::create: region of ", bytes,
                                                   " bytes, the ring needs ", needed));
  }
  return absl::OkStatus();
}

absl::StatusOr<RingGeometry> read_ring_header(const void* region, std::size_t bytes, RingKind kind) {
  const char* name = to_string(kind);
  if (region == nullptr) return absl::InvalidArgumentError(absl::StrCat("attach ", name, ": null region"));
  if (reinterpret_cast<std::uintptr_t>(region) % kRegionAlignment != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("attach ", name, ": region not aligned to ", kRegionAlignment, " bytes"));
  }
  if (bytes < sizeof(RingHeader)) {
    return absl::InvalidArgumentError(
        absl::StrCat("attach ", name, ": region of ", bytes, " bytes is smaller than a ring header"));
  }
  const RingHeader* shared = header_of(region);
  // SYNC(ring_ready): pairs with the release store of `version` in publish_ring_header(); every
  // header field and the initial positions were written before it.
  const std::uint32_t version = shared->version.load(std::memory_order_acquire);
  if (version == 0) {
    return absl::UnavailableError(absl::StrCat("attach ", name, ": ring not ready yet (version 0)"));
  }
  // One copy of the plain fields; nothing below reads the shared header again.
  const std::uint64_t magic = shared->magic;
  const std::uint32_t kind_word = shared->kind;
  const std::uint32_t abi = shared->abi;
  RingGeometry g;
  g.region_bytes = shared->region_bytes;
  g.data_offset = shared->data_offset;
  g.capacity = shared->capacity;
  g.max_record = shared->max_record;
  g.slot_stride = shared->slot_stride;
  g.initial_position = shared->initial_position;
  g.flags = shared->flags;
  g.max_readers = shared->max_readers;
  g.kind = kind;

  if (magic != kRingMagic) {
    return absl::DataLossError(absl::StrCat("attach ", name, ": bad magic 0x", absl::Hex(magic)));
  }
  if (version != kRingLayoutVersion) {
    return absl::FailedPreconditionError(absl::StrCat("attach ", name, ": ring layout version ", version,
                                                      ", this build supports ", kRingLayoutVersion));
  }
  if (abi != kRingAbiFingerprint) {
    return absl::FailedPreconditionError(absl::StrCat("attach ", name, ": ABI fingerprint 0x",
                                                      absl::Hex(abi), " differs from this build's 0x",
                                                      absl::Hex(kRingAbiFingerprint)));
  }
  if (kind_word != static_cast<std::uint32_t>(kind)) {
    if (kind_word >= 1 && kind_word <= 4) {
      return absl::FailedPreconditionError(
          absl::StrCat("attach ", name, ": the region holds a ",
                       to_string(static_cast<RingKind>(kind_word)), " ring"));
    }
    return absl::DataLossError(absl::StrCat("attach ", name, ": unknown ring kind ", kind_word));
  }
  if (g.region_bytes > bytes) {
    return absl::DataLossError(absl::StrCat("attach ", name, ": header claims ", g.region_bytes,
                                            " bytes, the region has ", bytes));
  }
  if (g.data_offset < sizeof(RingHeader) || g.data_offset % kRegionAlignment != 0 ||
      g.data_offset > g.region_bytes) {
    return absl::DataLossError(absl::StrCat("attach ", name, ": bad data offset ", g.data_offset));
  }
  // A frame pool's capacity counts buffers (any number in its range, checked by FramePool).
  const bool power_of_two_needed = kind != RingKind::kFramePool;
  if ((power_of_two_needed && !is_power_of_two(g.capacity)) || g.capacity == 0 ||
      g.capacity > kMaxCapacity) {
    return absl::DataLossError(
        absl::StrCat("attach ", name, ": capacity ", g.capacity, " is out of range (a power of two <= 2^40 but for frame pools)"));
  }
  if (g.max_record > kMaxRecordLimit) {
    return absl::DataLossError(absl::StrCat("attach ", name, ": max record ", g.max_record));
  }
  g.mask = power_of_two_needed ? g.capacity - 1 : 0;
  return g;
}

void write_ring_header(void* region, const RingGeometry& g) {
  auto* header = static_cast<RingHeader*>(region);
  header->version.store(0, std::memory_order_relaxed);
  header->magic = kRingMagic;
  header->kind = static_cast<std::uint32_t>(g.kind);
  header->abi = kRingAbiFingerprint;
  header->state.store(static_cast<std::uint32_t>(RingState::kActive), std::memory_order_relaxed);
  header->region_bytes = g.region_bytes;
  header->data_offset = g.data_offset;
  header->capacity = g.capacity;
  header->max_record = g.max_record;
  header->slot_stride = g.slot_stride;
  header->initial_position = g.initial_position;
  header->flags = g.flags;
  header->max_readers = g.max_readers;
  std::memset(header->reserved, 0, sizeof header->reserved);
}

void publish_ring_header(void* region) {
  // SYNC(ring_ready): the release that read_ring_header()'s acquire pairs with.
  static_cast<RingHeader*>(region)->version.store(kRingLayoutVersion, std::memory_order_release);
}

RingState load_ring_state(const void* region) {
  // SYNC(ring_state): pairs with the release store in store_ring_state() (close()).
  const std::uint32_t state = header_of(region)->state.load(std::memory_order_acquire);
  return state == static_cast<std::uint32_t>(RingState::kClosed) ? RingState::kClosed
                                                                  : RingState::kActive;
}

void store_ring_state(void* region, RingState state) {
  // SYNC(ring_state): release; everything the writer did before close() is visible to a reader
  // that acquires kClosed.
  static_cast<RingHeader*>(region)->state.store(static_cast<std::uint32_t>(state),
                                                std::memory_order_release);
}

}  // namespace shmring
