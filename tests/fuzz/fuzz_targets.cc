#include "fuzz_targets.h"

#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <vector>

#include "shmring/queue/broadcast_layout.h"
#include "shmring/queue/broadcast_publishers.h"
#include "shmring/queue/broadcast_reader.h"
#include "shmring/queue/broadcast_reader_slots.h"
#include "shmring/queue/broadcast_writer.h"
#include "shmring/queue/frame_pool.h"
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

// Reads with `reader` until it stops handing out records: copies and views, every byte touched.
void drain(BroadcastReader& reader, std::uint64_t* sink, int rounds) {
  std::vector<std::byte> out(reader.max_record());
  for (int i = 0; i < rounds; ++i) {
    BroadcastRecordInfo info;
    RingResult r;
    if (i % 2 == 0) {
      r = reader.try_read(out, &info);
      if (r == RingResult::kOk) touch(std::span(out).first(info.bytes), sink);
    } else {
      std::span<const std::byte> view;
      r = reader.try_view(&view, &info);
      if (r == RingResult::kOk) {
        touch(view, sink);
        r = reader.finish_view();
      }
    }
    if (r == RingResult::kEmpty || r == RingResult::kEvicted) break;
    if (r == RingResult::kCorrupt) reader.resync();
    *sink += info.sequence + info.publisher + reader.lost_records() + reader.history_missed();
  }
  *sink += reader.stalled_on_claim() ? 1 : 0;
}

// Every role of the broadcast ring on the bytes: readers of every start (lossy and lossless), a
// writer, the recovery of dead writers and the eviction of readers.
void broadcast_roles(std::byte* region, std::size_t size, std::uint64_t* sink) {
  for (const BroadcastStart start : {BroadcastStart::kLive, BroadcastStart::kLatest, BroadcastStart::kHistory,
                                     BroadcastStart::kOldest}) {
    if (auto reader = BroadcastReader::attach(region, size, {start, 5}); reader.ok()) drain(*reader, sink, 16);
  }
  if (auto reader = BroadcastReader::register_reader(region, size, 5, {BroadcastStart::kHistory, 3}); reader.ok()) {
    drain(*reader, sink, 8);
    reader->unregister();
  }
  if (auto writer = BroadcastWriter::attach(region, size, 9); writer.ok()) {
    std::byte buf[32] = {};
    writer->try_write(std::span(buf, writer->max_record() < 32 ? writer->max_record() : 32));
    const BroadcastWriter::Claim c = writer->try_claim(writer->max_record() < 16 ? writer->max_record() : 16);
    if (c.result == RingResult::kOk) writer->commit(c.buffer.size() / 2);
    writer->detach();
  }
  if (auto admin = BroadcastPublishers::attach(region, size); admin.ok()) {
    admin->recover([](std::uint64_t token) { return token == 9; });
  }
  if (auto slots = BroadcastReaderSlots::attach(region, size); slots.ok()) {
    for (std::uint32_t i = 0; i < slots->size() && i < 8; ++i) slots->evict(i, slots->slot(i).owner);
  }
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
  broadcast_roles(copy.bytes, copy.size, &sink);
  if (auto pool = FramePool::attach(copy.bytes, copy.size); pool.ok()) {
    // Reader: the newest frame, pinned and read through; writer: claim, publish, abort.
    std::uint64_t pin = 0;
    std::uint64_t last = 0;
    for (int i = 0; i < 8; ++i) {
      const FramePool::Frame f = pool->try_take(
          last, [&](std::uint64_t index) { pin = index + 1; }, [&] { pin = 0; });
      if (f.result != RingResult::kOk) break;
      touch(f.data, &sink);
      last = f.frame_number;
      pin = 0;
    }
    FramePool::Claim c = pool->try_claim(0, [&](std::uint64_t index) { return pin == index + 1; });
    if (c.result == RingResult::kOk) {
      if (!c.buffer.empty()) c.buffer[0] = std::byte{1};
      pool->publish(c, c.buffer.size() / 2, last + 1);
      c = pool->try_claim(c.index, [](std::uint64_t) { return false; });
      if (c.result == RingResult::kOk) pool->abort(c);
    }
    sink += pool->latest_frame_number() + pool->latest_index();
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
    // Input: [initial position: 8 bytes][mode: 1 byte][data area bytes...]. The reader starts at
    // the initial position (near 2^64 too); the data area is the input. With mode bit 0 set, the
    // header words along the reader's path are rewritten with the tags a writer would give them
    // (length and type still from the input), so that the checks after the tag are reached too.
    std::uint64_t initial = 0;
    if (size >= 8) {
      std::memcpy(&initial, data, 8);
      initial &= ~std::uint64_t{kRecordAlignment - 1};
      data += 8;
      size -= 8;
    }
    std::uint8_t mode = 0;
    if (size >= 1) {
      mode = data[0];
      ++data;
      --size;
    }
    const SpscRing::Options options{kCapacity, 0, initial};
    const std::size_t bytes = SpscRing::required_bytes(options);
    std::vector<std::uint8_t> zeros(bytes);
    AlignedCopy region(zeros.data(), bytes);
    auto ring = SpscRing::create(region.bytes, bytes, options);
    if (!ring.ok()) std::abort();
    std::byte* area = region.bytes + sizeof(SpscControl);
    std::memcpy(area, data, size < kCapacity ? size : kCapacity);
    if ((mode & 1) != 0) {
      std::uint64_t pos = initial;
      for (int step = 0; step < 64; ++step) {
        const std::uint64_t index = pos & (kCapacity - 1);
        std::uint64_t word;
        std::memcpy(&word, area + index, 8);
        if (word == 0) break;
        const std::uint64_t to_end = kCapacity - index;
        const bool padding = ((word >> 32) & 3) == 2;
        const std::uint64_t length =
            padding ? (to_end - 8 + ((word >> 34) & 1) * 8) : (word & 0xFFFF) % (ring->max_record() + 24);
        word = SpscRing::header_word(pos, length, padding ? RecordType::kPadding : RecordType::kData);
        std::memcpy(area + index, &word, 8);
        pos += padding ? to_end : align_up(8 + length, kRecordAlignment);
      }
    }
    for (int i = 0; i < 200; ++i) {
      const ReadBatch b = ring->read([&](std::span<const std::byte> s) { touch(s, &sink); }, 4);
      if (b.result != RingResult::kOk) break;
    }
    // The writer against a reader position from the input.
    auto* control = reinterpret_cast<SpscControl*>(region.bytes);
    if ((mode & 2) != 0 && size >= 8) {
      std::uint64_t read;
      std::memcpy(&read, data, 8);
      control->read_pos.value = (mode & 4) != 0 ? read : initial + read % (2 * kCapacity);
    }
    std::byte buf[200] = {};
    for (int i = 0; i < 40; ++i) {
      const std::size_t n = static_cast<std::size_t>(i * 37 + mode) % (ring->max_record() + 2);
      if (i % 3 == 0) {
        const SpscRing::Claim claim = ring->try_claim(n);
        if (claim.result == RingResult::kOk) {
          if (!claim.buffer.empty()) std::memset(claim.buffer.data(), i, claim.buffer.size());
          if (i % 2 == 0) ring->commit(n / 2); else ring->abort();
        }
      } else if (ring->try_write(std::span(buf, n < sizeof buf ? n : sizeof buf)) == RingResult::kCorrupt) {
        break;
      }
      ring->read([&](std::span<const std::byte> s) { touch(s, &sink); }, 2);
    }
  } else if (kind == 1) {
    // A valid broadcast ring (2 publishers, 2 reader slots, history 2) whose claim pair, intent,
    // gap table, publisher and reader slots, anchors and data area come from the input:
    // [mode: 1][claim position: 8][claim sequence: 8][intent: 8][gap count: 8][control bytes: 1024]
    // [data area...]. With mode bit 0 set, the words along a reader's path get the commit words a
    // writer would give them (lengths and kinds still from the input), so the checks after the
    // commit word are reached too.
    constexpr std::uint64_t kRing = 1024;  // the least that keeps a history of 2
    BroadcastOptions options;
    options.capacity = kRing;
    options.max_readers = 2;
    options.max_publishers = 2;
    options.history = 2;
    options.key = 0x1234;
    const std::size_t bytes = BroadcastLayout::required_bytes(options);
    std::vector<std::uint8_t> zeros(bytes);
    AlignedCopy region(zeros.data(), bytes);
    if (!BroadcastLayout::create(region.bytes, bytes, options).ok()) std::abort();
    auto layout = BroadcastLayout::map(region.bytes, bytes);
    if (!layout.ok()) std::abort();
    auto take = [&](void* out, std::size_t n) {
      const std::size_t k = size < n ? size : n;
      std::memcpy(out, data, k);
      data += k;
      size -= k;
    };
    std::uint8_t mode = 0;
    take(&mode, 1);
    BroadcastControl& control = *layout->control;
    std::uint64_t words[4] = {};
    take(words, sizeof words);
    control.claim.position = words[0] % (8 * kRing) & ~(kBroadcastGranule - 1);
    control.claim.sequence = words[1] % 64;
    control.rare.intent.store(words[2] % (8 * kRing));
    control.rare.gaps.store(words[3] % 200);
    // The gap table, publisher slots, reader slots and index: from the input.
    auto* after_rare = reinterpret_cast<std::byte*>(&control.gaps[0]);
    const std::size_t control_bytes = static_cast<std::size_t>(layout->data - after_rare);
    std::vector<std::byte> control_input(control_bytes < 1024 ? control_bytes : 1024);
    take(control_input.data(), control_input.size());
    if ((mode & 2) != 0) std::memcpy(after_rare, control_input.data(), control_input.size());
    take(layout->data, kRing);
    if ((mode & 1) != 0) {
      // Commit words along the path from position 0, sequence 0.
      std::uint64_t pos = 0;
      std::uint64_t seq = 0;
      for (int step = 0; step < 32; ++step) {
        std::byte* record = layout->data + layout->index_of(pos);
        std::uint64_t word1;
        std::memcpy(&word1, record + 8, 8);
        const std::uint64_t kind_bits = word1 >> 62;
        const std::uint64_t mark = kind_bits == 1 ? kFillerMark : kind_bits == 2 ? kVoidMark : 0;
        const std::uint64_t word0 = commit_word(layout->key, pos, seq) ^ mark;
        std::memcpy(record, &word0, 8);
        const std::uint64_t size_of = mark == 0 ? broadcast_record_bytes(static_cast<std::uint32_t>(word1) % 400)
                                                : (word1 % 8 + 1) * kBroadcastGranule;
        if (mark != kFillerMark) ++seq;
        pos += size_of;
        if ((step & 7) == 0) layout->anchor_slot(seq).store(pos);
      }
    }
    broadcast_roles(region.bytes, bytes, &sink);
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
