#include "fuzz_targets.h"

#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <vector>

#include "shmring/queue/broadcast_ring.h"
#include "shmring/queue/mpmc_queue.h"
#include "shmring/queue/spsc_ring.h"

namespace shmring::fuzz {
namespace {

struct AlignedCopy {
  // Exactly `n` bytes (ASan tracks the requested size of an aligned new, so the first byte past
  // the copy is in a redzone), aligned as a ring region must be.
  AlignedCopy(const std::uint8_t* data, std::size_t n) : size(n) {
    bytes = static_cast<std::byte*>(::operator new(n == 0 ? 1 : n, std::align_val_t{kRegionAlignment}));
    if (n != 0) std::memcpy(bytes, data, n);
  }
  ~AlignedCopy() { ::operator delete(bytes, std::align_val_t{kRegionAlignment}); }
  AlignedCopy(const AlignedCopy&) = delete;
  AlignedCopy& operator=(const AlignedCopy&) = delete;
  std::size_t size;
  std::byte* bytes;
};

void touch(std::span<const std::byte> s, std::uint64_t* sink) {
  for (std::byte b : s) *sink += static_cast<std::uint8_t>(b);
}

}  // namespace

void attach_any_ring(const std::uint8_t* data, std::size_t size) {
  AlignedCopy copy(data, size);
  std::uint64_t sink = 0;
  if (auto spsc = SpscRing::attach(copy.bytes, copy.size); spsc.ok()) {
    for (int i = 0; i < 64; ++i) {
      if (spsc->try_read([&](std::span<const std::byte> s) { touch(s, &sink); }) != RingResult::kOk) break;
    }
    std::byte buf[64] = {};
    spsc->try_write(std::span(buf, spsc->max_record() < 64 ? spsc->max_record() : 64));
  }
  if (auto mpmc = MpmcQueue<>::attach(copy.bytes, copy.size); mpmc.ok()) {
    std::vector<std::byte> out(mpmc->slot_size() < 4096 ? mpmc->slot_size() : 0);
    std::size_t n = 0;
    if (!out.empty()) {
      for (int i = 0; i < 8; ++i) mpmc->try_read(out, &n);
      mpmc->try_write(std::span(out).first(out.size() < 16 ? out.size() : 16));
    }
    if (auto t = mpmc->stalled_producer_ticket()) mpmc->skip_stalled(*t);
    if (auto t = mpmc->stalled_consumer_ticket()) mpmc->force_release(*t);
  }
  if (auto reader = BroadcastReader::attach(copy.bytes, copy.size, BroadcastStart::kLatest); reader.ok()) {
    std::vector<std::byte> out(reader->max_record());
    std::size_t n = 0;
    for (int i = 0; i < 16; ++i) {
      const RingResult r = reader->try_read(out, &n);
      if (r == RingResult::kOk) touch(std::span(out).first(n), &sink);
      if (r == RingResult::kEmpty || r == RingResult::kCorrupt) break;
    }
  }
  if (auto writer = BroadcastRing::attach(copy.bytes, copy.size); writer.ok()) {
    std::byte buf[32] = {};
    writer->try_write(std::span(buf, writer->max_record() < 32 ? writer->max_record() : 32));
  }
  if (auto reader = BroadcastReader::register_reader(copy.bytes, copy.size, 5); reader.ok()) {
    std::vector<std::byte> out(reader->max_record());
    std::size_t n = 0;
    reader->try_read(out, &n);
  }
  if (sink == 0xFFFFFFFFFFFFFFFF) std::abort();
}

void scan_records(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return;
  const int kind = data[0] % 3;
  ++data;
  --size;
  constexpr std::uint64_t kCapacity = 512;
  std::uint64_t sink = 0;
  if (kind == 0) {
    const SpscRing::Options options{kCapacity, 0, 0};
    const std::size_t bytes = SpscRing::required_bytes(options);
    std::vector<std::uint8_t> zeros(bytes);
    AlignedCopy region(zeros.data(), bytes);
    auto ring = SpscRing::create(region.bytes, bytes, options);
    if (!ring.ok()) std::abort();
    // The input overwrites the positions (first 16 bytes) and the data area.
    auto* control = reinterpret_cast<SpscControl*>(region.bytes);
    if (size >= 8) {
      std::uint64_t w;
      std::memcpy(&w, data, 8);
      control->write_pos.value = w;
      data += 8;
      size -= 8;
    }
    std::memcpy(region.bytes + sizeof(SpscControl), data, size < kCapacity ? size : kCapacity);
    for (int i = 0; i < 200; ++i) {
      const ReadBatch b = ring->read([&](std::span<const std::byte> s) { touch(s, &sink); }, 4);
      if (b.result != RingResult::kOk) break;
    }
  } else if (kind == 1) {
    const BroadcastRing::Options options{kCapacity, 0, false, 0, 0};
    const std::size_t bytes = BroadcastRing::required_bytes(options);
    std::vector<std::uint8_t> zeros(bytes);
    AlignedCopy region(zeros.data(), bytes);
    auto writer = BroadcastRing::create(region.bytes, bytes, options);
    auto reader = BroadcastReader::attach(region.bytes, bytes, BroadcastStart::kNext);
    if (!writer.ok() || !reader.ok()) std::abort();
    auto* control = reinterpret_cast<BroadcastControl*>(region.bytes);
    if (size >= 16) {
      std::uint64_t t, ti;
      std::memcpy(&t, data, 8);
      std::memcpy(&ti, data + 8, 8);
      control->writer.tail = t % (4 * kCapacity);
      control->writer.tail_intent = ti % (4 * kCapacity);
      data += 16;
      size -= 16;
    }
    std::memcpy(region.bytes + sizeof(BroadcastControl), data, size < kCapacity ? size : kCapacity);
    std::vector<std::byte> out(reader->max_record());
    for (int i = 0; i < 200; ++i) {
      std::size_t n = 0;
      const RingResult r = reader->try_read(out, &n);
      if (r == RingResult::kOk) touch(std::span(out).first(n), &sink);
      if (r == RingResult::kEmpty) break;
      if (r == RingResult::kCorrupt) reader->resync();
    }
  } else {
    const MpmcQueue<>::Options options{8, 40, 0};
    const std::size_t bytes = MpmcQueue<>::required_bytes(options);
    std::vector<std::uint8_t> zeros(bytes);
    AlignedCopy region(zeros.data(), bytes);
    auto q = MpmcQueue<>::create(region.bytes, bytes, options);
    if (!q.ok()) std::abort();
    // The input overwrites the positions and the slots.
    const std::size_t span = bytes - 128;
    std::memcpy(region.bytes + 128, data, size < span ? size : span);
    std::byte out[40];
    for (int i = 0; i < 32; ++i) {
      std::size_t n = 0;
      q->try_read(out, &n);
      q->try_write(std::span(out, 8));
      if (auto t = q->stalled_producer_ticket()) q->skip_stalled(*t);
      if (auto t = q->stalled_consumer_ticket()) q->force_release(*t);
    }
  }
  if (sink == 0xFFFFFFFFFFFFFFFF) std::abort();
}

}  // namespace shmring::fuzz
