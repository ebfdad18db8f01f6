// The broadcast ring by role: layout, writer, reader, reader-slot admin (single process, unit).
// Several writers, history and per-reader delivery: broadcast_publishers_test.cc.
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <array>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "ring_test_util.h"
#include "shmring/queue/broadcast_layout.h"
#include "shmring/queue/broadcast_reader.h"
#include "shmring/queue/broadcast_reader_slots.h"
#include "shmring/queue/broadcast_writer.h"

namespace shmring {
namespace {

using testing::bytes_of;
using testing::HeapRegion;

BroadcastOptions options(std::uint64_t capacity, std::uint32_t readers = 4, std::uint32_t publishers = 1) {
  BroadcastOptions o;
  o.capacity = capacity;
  o.max_readers = readers;
  o.max_publishers = publishers;
  return o;
}

struct Fixture {
  explicit Fixture(BroadcastOptions o = options(1024)) : opts(o), region(BroadcastLayout::required_bytes(o)) {
    const absl::Status s = BroadcastLayout::create(region.data(), region.size(), opts);
    EXPECT_TRUE(s.ok()) << s;
    auto w = BroadcastWriter::attach(region.data(), region.size(), 1000);
    EXPECT_TRUE(w.ok()) << w.status();
    writer.emplace(std::move(*w));
  }
  BroadcastReader reader(BroadcastStartAt start = {}) {
    auto r = BroadcastReader::attach(region.data(), region.size(), start);
    EXPECT_TRUE(r.ok()) << r.status();
    return std::move(*r);
  }
  BroadcastReader lossless(std::uint64_t token, BroadcastStartAt start = {}) {
    auto r = BroadcastReader::register_reader(region.data(), region.size(), token, start);
    EXPECT_TRUE(r.ok()) << r.status();
    return std::move(*r);
  }
  BroadcastReaderSlots slots() { return *BroadcastReaderSlots::attach(region.data(), region.size()); }
  BroadcastControl* control() { return static_cast<BroadcastControl*>(region.data()); }
  BroadcastOptions opts;
  HeapRegion region;
  std::optional<BroadcastWriter> writer;
};

struct Read {
  RingResult result;
  std::string data;
  BroadcastRecordInfo info;
};

Read read(BroadcastReader& r) {
  std::vector<std::byte> out(r.max_record());
  Read x{RingResult::kEmpty, "", {}};
  x.result = r.try_read(out, &x.info);
  if (x.result == RingResult::kOk) x.data.assign(reinterpret_cast<const char*>(out.data()), x.info.bytes);
  return x;
}

RingResult write(BroadcastWriter& w, const std::string& s) { return w.try_write(bytes_of(s)); }

TEST(BroadcastRing, EveryReaderSeesEveryRecordWithItsNumbers) {
  Fixture f;
  BroadcastReader a = f.reader();
  BroadcastReader b = f.reader();
  EXPECT_EQ(read(a).result, RingResult::kEmpty);
  for (int round = 0; round < 300; ++round) {
    for (int i = 0; i < 3; ++i) {
      ASSERT_EQ(write(*f.writer, std::to_string(round * 3 + i) + std::string(i * 19, '-')), RingResult::kOk);
    }
    for (int i = 0; i < 3; ++i) {
      const std::string expect = std::to_string(round * 3 + i) + std::string(i * 19, '-');
      for (BroadcastReader* r : {&a, &b}) {
        const Read x = read(*r);
        ASSERT_EQ(x.result, RingResult::kOk);
        EXPECT_EQ(x.data, expect);
        EXPECT_EQ(x.info.sequence, static_cast<std::uint64_t>(round * 3 + i));
        EXPECT_EQ(x.info.publisher, f.writer->id());
        EXPECT_EQ(x.info.publisher_sequence, static_cast<std::uint64_t>(round * 3 + i));
      }
    }
  }
  EXPECT_EQ(read(a).result, RingResult::kEmpty);
  EXPECT_EQ(a.lost_records(), 0u);
  EXPECT_EQ(f.writer->published(), 900u);
  EXPECT_EQ(f.writer->last_sequence(), 899u);
}

TEST(BroadcastRing, RecordsOfUpToFortyBytesTakeOneCacheLine) {
  Fixture f(options(4096));
  BroadcastReader r = f.reader();
  ASSERT_EQ(write(*f.writer, std::string(40, 'a')), RingResult::kOk);
  ASSERT_EQ(read(r).result, RingResult::kOk);
  EXPECT_EQ(r.position(), 64u);
  ASSERT_EQ(write(*f.writer, std::string(41, 'b')), RingResult::kOk);
  ASSERT_EQ(read(r).result, RingResult::kOk);
  EXPECT_EQ(r.position(), 64u + 128u);
  ASSERT_EQ(write(*f.writer, ""), RingResult::kOk);
  const Read empty = read(r);
  ASSERT_EQ(empty.result, RingResult::kOk);
  EXPECT_EQ(empty.data, "");
  EXPECT_EQ(r.position(), 256u);
  EXPECT_EQ(broadcast_record_bytes(64), 128u);
}

TEST(BroadcastRing, LimitsTooLargeAndShortBuffers) {
  Fixture f(options(1024));
  // (history + 2) records and one intent chunk (64 bytes) in 1024 bytes: 448-byte records.
  EXPECT_EQ(f.writer->max_record(), 448u - 24u);
  BroadcastReader r = f.reader();
  const std::vector<std::byte> before = f.region.snapshot();
  EXPECT_EQ(write(*f.writer, std::string(425, 't')), RingResult::kTooLarge);
  EXPECT_EQ(f.region.snapshot(), before);
  ASSERT_EQ(write(*f.writer, std::string(424, 'm')), RingResult::kOk);
  EXPECT_EQ(read(r).data, std::string(424, 'm'));
  // A buffer that fits the record is enough; a record that does not fit is reported and stays.
  std::array<std::byte, 16> small{};
  BroadcastRecordInfo info;
  ASSERT_EQ(write(*f.writer, "tiny"), RingResult::kOk);
  ASSERT_EQ(write(*f.writer, std::string(40, 'L')), RingResult::kOk);
  ASSERT_EQ(r.try_read(small, &info), RingResult::kOk);
  EXPECT_EQ(info.bytes, 4u);
  EXPECT_EQ(r.try_read(small, &info), RingResult::kTooLarge);
  EXPECT_EQ(info.bytes, 40u);
  EXPECT_EQ(r.try_read(small, nullptr), RingResult::kTooLarge);  // still there
  EXPECT_EQ(read(r).data, std::string(40, 'L'));
  EXPECT_EQ(r.lost_records(), 0u);
}

TEST(BroadcastRing, FillerAtTheEndOfTheRing) {
  Fixture f(options(1024));
  BroadcastReader r = f.reader();
  for (int i = 0; i < 7; ++i) ASSERT_EQ(write(*f.writer, std::string(100, 'a' + i)), RingResult::kOk);  // 128 each
  for (int i = 0; i < 7; ++i) ASSERT_EQ(read(r).data, std::string(100, 'a' + i));
  // 896 used, 128 left: a 256-byte record needs a filler first.
  ASSERT_EQ(write(*f.writer, std::string(200, 'w')), RingResult::kOk);
  EXPECT_EQ(f.writer->claim_position_approx(), 1024u + 256u);
  const Read x = read(r);
  EXPECT_EQ(x.data, std::string(200, 'w'));
  EXPECT_EQ(x.info.sequence, 7u);
  EXPECT_EQ(r.position(), 1024u + 256u);
}

TEST(BroadcastRing, LappedReaderJumpsToTheNewestAndCountsExactlyWhatItLost) {
  Fixture f(options(1024));
  BroadcastReader r = f.reader();
  for (int i = 0; i < 3; ++i) ASSERT_EQ(write(*f.writer, "r" + std::to_string(i)), RingResult::kOk);
  EXPECT_EQ(read(r).data, "r0");
  for (int i = 3; i < 103; ++i) ASSERT_EQ(write(*f.writer, "r" + std::to_string(i)), RingResult::kOk);
  EXPECT_EQ(read(r).result, RingResult::kLapped);
  EXPECT_EQ(r.lapped_count(), 1u);
  const Read next = read(r);
  ASSERT_EQ(next.result, RingResult::kOk);
  EXPECT_EQ(next.data, "r102");
  EXPECT_EQ(r.lost_records(), 101u);  // r1 .. r101
  EXPECT_EQ(read(r).result, RingResult::kEmpty);
}

TEST(BroadcastRing, TornCopyIsDetected) {
  // A writer starting to overwrite the record being copied raises intent a ring past it first: the
  // reader must not return the record.
  Fixture f(options(1024));
  BroadcastReader r = f.reader();
  for (int i = 0; i < 10; ++i) ASSERT_EQ(write(*f.writer, "r" + std::to_string(i)), RingResult::kOk);
  const std::uint64_t intent = f.control()->rare.intent.load();
  f.control()->rare.intent.store(1024 + 64);  // as if the bytes of r0 were being overwritten
  EXPECT_EQ(read(r).result, RingResult::kLapped);
  EXPECT_EQ(read(r).data, "r9");  // jumped to the newest record (from the anchor of r8)
  EXPECT_EQ(r.lost_records(), 9u);
  f.control()->rare.intent.store(intent);
}

TEST(BroadcastRing, LossyReaderWorksOnAReadOnlyMapping) {
  const BroadcastOptions o = options(4096, 0);
  const std::size_t bytes = BroadcastLayout::required_bytes(o);
  void* rw = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(rw, MAP_FAILED);
  ASSERT_TRUE(BroadcastLayout::create(rw, bytes, o).ok());
  auto writer = BroadcastWriter::attach(rw, bytes, 1);
  ASSERT_TRUE(writer.ok());
  ASSERT_EQ(write(*writer, "before"), RingResult::kOk);
  // A second, read-only view of the same pages: a write through it would SIGSEGV.
  void* ro = mremap(rw, 0, bytes, MREMAP_MAYMOVE);
  ASSERT_NE(ro, MAP_FAILED);
  ASSERT_EQ(mprotect(ro, bytes, PROT_READ), 0);
  auto reader = BroadcastReader::attach(ro, bytes, {BroadcastStart::kLatest});
  ASSERT_TRUE(reader.ok()) << reader.status();
  ASSERT_EQ(write(*writer, "after"), RingResult::kOk);
  EXPECT_EQ(read(*reader).data, "before");
  EXPECT_EQ(read(*reader).data, "after");
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(write(*writer, std::to_string(i)), RingResult::kOk);
  EXPECT_EQ(read(*reader).result, RingResult::kLapped);
  EXPECT_EQ(read(*reader).data, "999");
  EXPECT_EQ(reader->lost_records(), 999u);
  munmap(ro, bytes);
  munmap(rw, bytes);
}

TEST(BroadcastRing, PositionsAndSequencesAcrossTheWrapOf64Bits) {
  BroadcastOptions o = options(1024, 0);
  o.initial_position = std::uint64_t{0} - 3 * 1024;  // a multiple of 64, 3 rings before 2^64
  o.initial_sequence = ~std::uint64_t{0} - 100;
  Fixture f(o);
  BroadcastReader r = f.reader();
  std::uint64_t written = 0;
  std::uint64_t got = 0;
  for (int round = 0; round < 500; ++round) {
    for (int i = 0; i < 2; ++i) {
      ASSERT_EQ(write(*f.writer, std::to_string(written) + std::string(written % 90, '.')), RingResult::kOk);
      ++written;
    }
    for (int i = 0; i < 2; ++i) {
      const Read x = read(r);
      ASSERT_EQ(x.result, RingResult::kOk);
      EXPECT_EQ(x.data, std::to_string(got) + std::string(got % 90, '.'));
      EXPECT_EQ(x.info.sequence, o.initial_sequence + got);
      ++got;
    }
  }
  EXPECT_LT(f.writer->claim_position_approx(), 200000u);
  EXPECT_LT(f.writer->claim_sequence_approx(), 1000u);
  EXPECT_EQ(r.lost_records(), 0u);
  // Lapping across the wrap still counts exactly, and late starts find their anchors.
  BroadcastReader latest = f.reader({BroadcastStart::kHistory, 3});
  for (int i = 0; i < 50; ++i) ASSERT_EQ(write(*f.writer, "x"), RingResult::kOk);
  EXPECT_EQ(read(r).result, RingResult::kLapped);
  EXPECT_EQ(read(r).result, RingResult::kOk);
  EXPECT_EQ(r.lost_records(), 49u);
  EXPECT_EQ(latest.history_missed(), 0u);
  EXPECT_EQ(latest.next_sequence(), o.initial_sequence + written - 3);
}

TEST(BroadcastRingLossless, WritersWaitForTheSlowestRegisteredReader) {
  Fixture f(options(1024));
  BroadcastReader fast = f.lossless(11);
  BroadcastReader slow = f.lossless(22);
  EXPECT_NE(fast.slot_index(), slow.slot_index());
  int written = 0;
  while (write(*f.writer, "m" + std::to_string(written)) == RingResult::kOk) ++written;
  EXPECT_EQ(written, 16);  // 1024 / 64
  EXPECT_EQ(write(*f.writer, "z"), RingResult::kFull);
  for (int i = 0; i < written; ++i) EXPECT_EQ(read(fast).data, "m" + std::to_string(i));
  EXPECT_EQ(read(fast).result, RingResult::kEmpty);  // stores its position
  EXPECT_EQ(write(*f.writer, "z"), RingResult::kFull);  // slow still holds it
  EXPECT_EQ(read(slow).data, "m0");  // stores its position (every capacity / 16 = 64 bytes)
  EXPECT_EQ(write(*f.writer, "m16"), RingResult::kOk);
  EXPECT_EQ(write(*f.writer, "z"), RingResult::kFull);
  // Evicting the slow reader lets the writers go on; the evicted reader is told.
  BroadcastReaderSlots admin = f.slots();
  EXPECT_EQ(admin.evict(slow.slot_index(), 99), RingResult::kBusy);  // wrong token
  ASSERT_EQ(admin.evict(slow.slot_index(), 22), RingResult::kOk);
  EXPECT_EQ(admin.slot(slow.slot_index()).owner, kSlotFree);
  EXPECT_EQ(read(fast).data, "m16");
  for (int i = 17; i < 30; ++i) EXPECT_EQ(write(*f.writer, "m" + std::to_string(i)), RingResult::kOk);
  Read x = read(slow);  // records still intact, then it notices
  while (x.result == RingResult::kOk) x = read(slow);
  EXPECT_EQ(x.result, RingResult::kEvicted);
  for (int i = 17; i < 30; ++i) EXPECT_EQ(read(fast).data, "m" + std::to_string(i));
  EXPECT_EQ(fast.lost_records(), 0u);
}

TEST(BroadcastRingLossless, StoresItsPositionInBatchesAndWhenIdle) {
  Fixture f(options(4096));
  BroadcastReader r = f.lossless(5);
  BroadcastReaderSlots admin = f.slots();
  const std::uint64_t start = admin.slot(r.slot_index()).position;
  EXPECT_EQ(start, 0u);
  for (int i = 0; i < 3; ++i) ASSERT_EQ(write(*f.writer, "x"), RingResult::kOk);
  for (int i = 0; i < 3; ++i) ASSERT_EQ(read(r).result, RingResult::kOk);
  EXPECT_EQ(admin.slot(r.slot_index()).position, 0u);  // not per record
  EXPECT_FALSE(r.take_published());
  EXPECT_EQ(read(r).result, RingResult::kEmpty);        // idle: stored now
  EXPECT_EQ(admin.slot(r.slot_index()).position, 192u);
  EXPECT_TRUE(r.take_published());
  EXPECT_FALSE(r.take_published());
  // Every capacity / 16 bytes while busy.
  for (int i = 0; i < 4; ++i) ASSERT_EQ(write(*f.writer, "y"), RingResult::kOk);
  for (int i = 0; i < 4; ++i) ASSERT_EQ(read(r).result, RingResult::kOk);
  EXPECT_EQ(admin.slot(r.slot_index()).position, 192u + 256u);
}

TEST(BroadcastRingLossless, SlotsRunOutAndComeBack) {
  Fixture f(options(1024, 2));
  BroadcastReader a = f.lossless(1);
  BroadcastReader b = f.lossless(2);
  EXPECT_EQ(BroadcastReader::register_reader(f.region.data(), f.region.size(), 3).status().code(),
            absl::StatusCode::kResourceExhausted);
  a.unregister();
  EXPECT_EQ(read(a).result, RingResult::kEvicted);
  BroadcastReader c = f.lossless(3);
  ASSERT_EQ(write(*f.writer, "hi"), RingResult::kOk);
  EXPECT_EQ(read(c).data, "hi");
  EXPECT_EQ(read(b).data, "hi");
  EXPECT_EQ(BroadcastReader::register_reader(f.region.data(), f.region.size(), 0).status().code(),
            absl::StatusCode::kInvalidArgument);
  Fixture none(options(1024, 0));
  EXPECT_EQ(BroadcastReader::register_reader(none.region.data(), none.region.size(), 5).status().code(),
            absl::StatusCode::kResourceExhausted);
}

TEST(BroadcastRingLossless, ReaderJoiningLateIsNeverLapped) {
  Fixture f(options(1024));
  for (int i = 0; i < 50; ++i) ASSERT_EQ(write(*f.writer, "old"), RingResult::kOk);
  BroadcastReader r = f.lossless(7);
  int written = 0;
  while (write(*f.writer, std::to_string(written)) == RingResult::kOk) ++written;
  EXPECT_EQ(written, 16);
  for (int i = 0; i < written; ++i) EXPECT_EQ(read(r).data, std::to_string(i));
  EXPECT_EQ(r.lapped_count(), 0u);
}

// A slot position no live reader can hold (garbage) does not stop the writers; the reader owning
// the slot is overwritten and learns it was evicted, never reads a torn record.
TEST(BroadcastRingLossless, ImpossibleSlotPositionDoesNotHoldWritersBack) {
  Fixture f(options(1024, 1));
  BroadcastReader r = f.lossless(9);
  ASSERT_EQ(write(*f.writer, "before"), RingResult::kOk);
  f.region.bytes();
  auto* slot = reinterpret_cast<BroadcastReaderSlot*>(f.region.bytes() + sizeof(BroadcastControl) +
                                                      sizeof(BroadcastPublisherSlot));
  slot->position.store(std::uint64_t{1} << 50);  // far ahead of any claim
  int written = 0;
  while (written < 40 && write(*f.writer, "after") == RingResult::kOk) ++written;
  EXPECT_EQ(written, 40);
  Read x = read(r);
  EXPECT_NE(x.result, RingResult::kCorrupt);
  while (x.result == RingResult::kOk) x = read(r);
  EXPECT_EQ(x.result, RingResult::kEvicted);
}

TEST(BroadcastRingLayout, ErrorCodes) {
  HeapRegion zero(1 << 16);
  EXPECT_EQ(BroadcastReader::attach(zero.data(), zero.size()).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(BroadcastWriter::attach(zero.data(), zero.size(), 1).status().code(), absl::StatusCode::kUnavailable);
  const std::pair<const char*, void (*)(BroadcastControl*)> corruptions[] = {
      {"flags", [](BroadcastControl* c) { c->header.flags = 4; }},
      {"too many readers", [](BroadcastControl* c) { c->header.max_readers = 5000; }},
      {"readers that do not fit", [](BroadcastControl* c) { c->header.max_readers = 5; }},
      {"capacity", [](BroadcastControl* c) { c->header.capacity = 1 << 20; }},
      {"max record", [](BroadcastControl* c) { c->header.max_record = 425; }},
      {"initial position", [](BroadcastControl* c) { c->header.initial_position = 8; }},
      {"publishers", [](BroadcastControl* c) { c->descriptor.max_publishers = 0; }},
      {"history", [](BroadcastControl* c) { c->descriptor.history = 100; }},
      {"index", [](BroadcastControl* c) { c->descriptor.index_entries = 3; }},
      {"stride", [](BroadcastControl* c) { c->descriptor.index_stride = 4; }},
      {"chunk", [](BroadcastControl* c) { c->descriptor.intent_chunk = 1; }},
      {"magic", [](BroadcastControl* c) { c->header.magic = 1; }},
  };
  for (const auto& [name, mutate] : corruptions) {
    Fixture f(options(1024));
    mutate(f.control());
    EXPECT_EQ(BroadcastReader::attach(f.region.data(), f.region.size()).status().code(),
              absl::StatusCode::kDataLoss) << name;
    EXPECT_EQ(BroadcastWriter::attach(f.region.data(), f.region.size(), 2).status().code(),
              absl::StatusCode::kDataLoss) << name;
  }
  Fixture kind(options(1024));
  kind.control()->header.kind = static_cast<std::uint32_t>(RingKind::kSpsc);
  EXPECT_EQ(BroadcastReader::attach(kind.region.data(), kind.region.size()).status().code(),
            absl::StatusCode::kFailedPrecondition);
  // A ring of the previous layout (version 4: one writer, a shared tail) is refused, saying so.
  Fixture old(options(1024));
  old.control()->header.version.store(4);
  const absl::Status refused = BroadcastReader::attach(old.region.data(), old.region.size()).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.message().find("layout version 4"), std::string::npos) << refused;
  // Creation refuses what cannot be.
  HeapRegion big(1 << 20);
  BroadcastOptions o = options(1024);
  o.history = 20;  // 22 records of at least 64 bytes and a chunk do not fit 1024 bytes
  EXPECT_EQ(BroadcastLayout::create(big.data(), big.size(), o).code(), absl::StatusCode::kInvalidArgument);
  o = options(1000);
  EXPECT_EQ(BroadcastLayout::create(big.data(), big.size(), o).code(), absl::StatusCode::kInvalidArgument);
  o = options(1024, 4, 0);
  EXPECT_EQ(BroadcastLayout::create(big.data(), big.size(), o).code(), absl::StatusCode::kInvalidArgument);
  o = options(1024);
  o.max_record = 1000;
  EXPECT_EQ(BroadcastLayout::create(big.data(), big.size(), o).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(BroadcastLayout::capacity_for(1000, 0), 4096u);
  EXPECT_GE(BroadcastLayout::max_record_limit(BroadcastLayout::capacity_for(1000, 10), 10), 1000u);
}

TEST(BroadcastRingHostile, CorruptRecordsAreReportedNeverFollowed) {
  // Header words of the second record replaced by what no honest writer stores.
  struct Scribble {
    const char* name;
    bool filler;           // a commit word that says filler (else a message)
    std::uint64_t word1;   // length / occupied bytes
  };
  const Scribble scribbles[] = {
      {"length past max", false, (std::uint64_t{7} << 32) | 425},
      {"huge length", false, 0xFFFFFFFFu},
      {"filler of no granules", true, 40},
      {"filler past the end", true, 2048},
      {"filler of nothing", true, 0},
  };
  for (const Scribble& s : scribbles) {
    Fixture f(options(1024));
    BroadcastReader r = f.reader();
    ASSERT_EQ(write(*f.writer, "good"), RingResult::kOk);
    ASSERT_EQ(read(r).data, "good");
    ASSERT_EQ(write(*f.writer, "hello"), RingResult::kOk);
    std::byte* record = f.region.bytes() + (f.region.size() - 1024) + 64;
    std::uint64_t word0 = commit_word(f.control()->descriptor.key, 64, 1) ^ (s.filler ? kFillerMark : 0);
    std::memcpy(record, &word0, 8);
    std::memcpy(record + 8, &s.word1, 8);
    EXPECT_EQ(read(r).result, RingResult::kCorrupt) << s.name;
    r.resync();
    ASSERT_EQ(write(*f.writer, "again"), RingResult::kOk);
    EXPECT_EQ(read(r).data, "again") << s.name;
  }
  // Stale bytes that are not the commit word the reader waits for are "not yet", never a record.
  Fixture f(options(1024));
  BroadcastReader r = f.reader();
  std::byte* data = f.region.bytes() + (f.region.size() - 1024);
  const std::uint64_t stale = commit_word(f.control()->descriptor.key, 1024, 0);  // a later lap's
  std::memcpy(data, &stale, 8);
  EXPECT_EQ(read(r).result, RingResult::kEmpty);
}

}  // namespace
}  // namespace shmring
