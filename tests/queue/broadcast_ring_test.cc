#include "shmring/queue/broadcast_ring.h"

#include <gtest/gtest.h>
#include <sys/mman.h>

#include <array>
#include <cstring>
#include <string>
#include <vector>

#include "ring_test_util.h"

namespace shmring {
namespace {

using testing::bytes_of;
using testing::HeapRegion;

struct Fixture {
  explicit Fixture(BroadcastRing::Options o = {256, 0, false, 64, 0})
      : options(o), region(BroadcastRing::required_bytes(o)) {
    auto created = BroadcastRing::create(region.data(), region.size(), options);
    EXPECT_TRUE(created.ok()) << created.status();
    writer.emplace(std::move(*created));
  }
  BroadcastReader reader(BroadcastStart start = BroadcastStart::kNext) {
    auto r = BroadcastReader::attach(region.data(), region.size(), start);
    EXPECT_TRUE(r.ok()) << r.status();
    return std::move(*r);
  }
  BroadcastRing::Options options;
  HeapRegion region;
  std::optional<BroadcastRing> writer;
};

struct Read {
  RingResult result;
  std::string data;
};

Read read(BroadcastReader& r) {
  std::vector<std::byte> out(r.max_record());
  std::size_t n = 0;
  const RingResult result = r.try_read(out, &n);
  if (result != RingResult::kOk) return {result, ""};
  return {result, std::string(reinterpret_cast<const char*>(out.data()), n)};
}

TEST(BroadcastRing, EveryReaderSeesEveryRecord) {
  Fixture f;
  BroadcastReader a = f.reader();
  BroadcastReader b = f.reader();
  EXPECT_EQ(read(a).result, RingResult::kEmpty);
  for (int round = 0; round < 300; ++round) {
    for (int i = 0; i < 3; ++i) {
      ASSERT_EQ(f.writer->try_write(bytes_of(std::to_string(round * 3 + i) + std::string(i * 9, '-'))),
                RingResult::kOk);
    }
    for (int i = 0; i < 3; ++i) {
      const std::string expect = std::to_string(round * 3 + i) + std::string(i * 9, '-');
      EXPECT_EQ(read(a).data, expect);
      EXPECT_EQ(read(b).data, expect);
    }
  }
  EXPECT_EQ(read(a).result, RingResult::kEmpty);
  EXPECT_EQ(a.lost_records(), 0u);
}

TEST(BroadcastRing, ZeroByteMaxSizeAndTooLarge) {
  Fixture f;
  BroadcastReader r = f.reader();
  EXPECT_EQ(f.writer->max_record(), 112u);
  const std::string max(112, 'm');
  for (int i = 0; i < 40; ++i) {
    ASSERT_EQ(f.writer->try_write({}), RingResult::kOk);
    ASSERT_EQ(f.writer->try_write(bytes_of(max)), RingResult::kOk);
    Read x = read(r);
    EXPECT_EQ(x.result, RingResult::kOk);
    EXPECT_EQ(x.data, "");
    EXPECT_EQ(read(r).data, max);
  }
  const std::vector<std::byte> before = f.region.snapshot();
  EXPECT_EQ(f.writer->try_write(bytes_of(std::string(113, 't'))), RingResult::kTooLarge);
  EXPECT_EQ(f.region.snapshot(), before);
  // A buffer shorter than max_record is fine for records that fit; a record that does not fit is
  // reported with the length it needs and stays unread.
  std::array<std::byte, 16> small{};
  std::size_t n = 0;
  EXPECT_EQ(r.try_read(small, &n), RingResult::kEmpty);
  ASSERT_EQ(f.writer->try_write(bytes_of("tiny")), RingResult::kOk);
  ASSERT_EQ(f.writer->try_write(bytes_of(std::string(40, 'L'))), RingResult::kOk);
  ASSERT_EQ(r.try_read(small, &n), RingResult::kOk);
  EXPECT_EQ(n, 4u);
  n = 0;
  EXPECT_EQ(r.try_read(small, &n), RingResult::kTooLarge);
  EXPECT_EQ(n, 40u);
  EXPECT_EQ(r.try_read(small, &n), RingResult::kTooLarge);  // still there
  EXPECT_EQ(read(r).data, std::string(40, 'L'));
  EXPECT_EQ(r.lost_records(), 0u);
}

TEST(BroadcastRing, PaddingAtTheWrap) {
  Fixture f;
  BroadcastReader r = f.reader();
  const std::string s40(40, 'a');  // 56-byte records
  for (int i = 0; i < 4; ++i) ASSERT_EQ(f.writer->try_write(bytes_of(s40)), RingResult::kOk);
  for (int i = 0; i < 4; ++i) ASSERT_EQ(read(r).data, s40);
  // 224 used; 32 left before the end: a 56-byte record needs padding.
  ASSERT_EQ(f.writer->try_write(bytes_of(s40)), RingResult::kOk);
  EXPECT_EQ(f.writer->tail_position(), 256u + 56u);
  EXPECT_EQ(read(r).data, s40);
  EXPECT_EQ(r.position(), 256u + 56u);
}

TEST(BroadcastRing, LappedReaderCountsExactlyWhatItLost) {
  Fixture f;
  BroadcastReader r = f.reader();
  for (int i = 0; i < 3; ++i) ASSERT_EQ(f.writer->try_write(bytes_of("r" + std::to_string(i))), RingResult::kOk);
  EXPECT_EQ(read(r).data, "r0");
  // 100 more records (24 bytes each): far more than 256 bytes.
  for (int i = 3; i < 103; ++i) {
    ASSERT_EQ(f.writer->try_write(bytes_of("r" + std::to_string(i))), RingResult::kOk);
  }
  EXPECT_EQ(read(r).result, RingResult::kLapped);
  EXPECT_EQ(r.lapped_count(), 1u);
  const Read next = read(r);  // the latest record
  ASSERT_EQ(next.result, RingResult::kOk);
  EXPECT_EQ(next.data, "r102");
  EXPECT_EQ(r.lost_records(), 101u);  // r1 .. r101
  EXPECT_EQ(read(r).result, RingResult::kEmpty);
}

TEST(BroadcastRing, TornCopyIsDetected) {
  // Simulate the writer starting to overwrite the record being copied: move tail_intent a full ring
  // past the reader's cursor. The reader must not return the record.
  Fixture f;
  BroadcastReader r = f.reader();
  ASSERT_EQ(f.writer->try_write(bytes_of("first")), RingResult::kOk);
  ASSERT_EQ(f.writer->try_write(bytes_of("second")), RingResult::kOk);
  auto* control = static_cast<BroadcastControl*>(f.region.data());
  control->writer.tail_intent.store(256 + 8);
  EXPECT_EQ(read(r).result, RingResult::kLapped);
  control->writer.tail_intent.store(control->writer.tail.load());
  EXPECT_EQ(read(r).data, "second");  // jumped to the latest record
  EXPECT_EQ(r.lost_records(), 1u);
}

TEST(BroadcastRing, LateJoinersStartAtTheNextOrTheLatestRecord) {
  Fixture f;
  ASSERT_EQ(f.writer->try_write(bytes_of("old")), RingResult::kOk);
  ASSERT_EQ(f.writer->try_write(bytes_of("latest")), RingResult::kOk);
  BroadcastReader next = f.reader(BroadcastStart::kNext);
  BroadcastReader latest = f.reader(BroadcastStart::kLatest);
  ASSERT_EQ(f.writer->try_write(bytes_of("new")), RingResult::kOk);
  EXPECT_EQ(read(next).data, "new");
  EXPECT_EQ(read(latest).data, "latest");
  EXPECT_EQ(read(latest).data, "new");
  // kLatest on an empty ring: the first record written.
  Fixture g;
  BroadcastReader early = g.reader(BroadcastStart::kLatest);
  ASSERT_EQ(g.writer->try_write(bytes_of("x")), RingResult::kOk);
  EXPECT_EQ(read(early).data, "x");
}

TEST(BroadcastRing, LossyReaderWorksOnAReadOnlyMapping) {
  const BroadcastRing::Options options{4096, 0, false, 0, 0};
  const std::size_t bytes = BroadcastRing::required_bytes(options);
  void* rw = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(rw, MAP_FAILED);
  auto writer = BroadcastRing::create(rw, bytes, options);
  ASSERT_TRUE(writer.ok());
  ASSERT_EQ(writer->try_write(bytes_of("before")), RingResult::kOk);
  // A second, read-only view of the same pages: a write through it would SIGSEGV.
  void* ro = mremap(rw, 0, bytes, MREMAP_MAYMOVE);
  ASSERT_NE(ro, MAP_FAILED);
  ASSERT_EQ(mprotect(ro, bytes, PROT_READ), 0);
  auto reader = BroadcastReader::attach(ro, bytes, BroadcastStart::kLatest);
  ASSERT_TRUE(reader.ok()) << reader.status();
  ASSERT_EQ(writer->try_write(bytes_of("after")), RingResult::kOk);
  EXPECT_EQ(read(*reader).data, "before");
  EXPECT_EQ(read(*reader).data, "after");
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(writer->try_write(bytes_of(std::to_string(i))), RingResult::kOk);
  EXPECT_EQ(read(*reader).result, RingResult::kLapped);
  EXPECT_EQ(read(*reader).data, "999");
  EXPECT_EQ(reader->lost_records(), 999u);
  munmap(ro, bytes);
  munmap(rw, bytes);
}

TEST(BroadcastRing, PositionsAndSequencesAcrossTheWrapOf64Bits) {
  Fixture f({256, 0, false, 0, ~std::uint64_t{0} - 3 * 256 + 1});
  BroadcastReader r = f.reader();
  std::uint64_t written = 0;
  std::uint64_t got = 0;
  for (int round = 0; round < 500; ++round) {
    for (int i = 0; i < 2; ++i) {
      ASSERT_EQ(f.writer->try_write(bytes_of(std::to_string(written) + std::string(written % 30, '.'))),
                RingResult::kOk);
      ++written;
    }
    for (int i = 0; i < 2; ++i) {
      const Read x = read(r);
      ASSERT_EQ(x.result, RingResult::kOk);
      EXPECT_EQ(x.data, std::to_string(got) + std::string(got % 30, '.'));
      ++got;
    }
  }
  EXPECT_LT(f.writer->tail_position(), 100000u);
  EXPECT_LT(f.writer->next_sequence(), 1000u);
  EXPECT_EQ(r.lost_records(), 0u);
  // Lapping across the wrap still counts exactly.
  for (int i = 0; i < 50; ++i) ASSERT_EQ(f.writer->try_write(bytes_of("x")), RingResult::kOk);
  EXPECT_EQ(read(r).result, RingResult::kLapped);
  EXPECT_EQ(read(r).result, RingResult::kOk);
  EXPECT_EQ(r.lost_records(), 49u);
}

TEST(BroadcastRingLossless, WriterWaitsForTheSlowestRegisteredReader) {
  Fixture f({256, 0, true, 4, 0});
  auto fast = BroadcastReader::register_reader(f.region.data(), f.region.size(), 11);
  auto slow = BroadcastReader::register_reader(f.region.data(), f.region.size(), 22);
  ASSERT_TRUE(fast.ok() && slow.ok());
  EXPECT_NE(fast->slot_index(), slow->slot_index());
  int written = 0;
  while (f.writer->try_write(bytes_of("m" + std::to_string(written))) == RingResult::kOk) ++written;
  EXPECT_EQ(written, 10);  // 256 / 24
  EXPECT_EQ(f.writer->try_write(bytes_of("z")), RingResult::kFull);
  for (int i = 0; i < written; ++i) EXPECT_EQ(read(*fast).data, "m" + std::to_string(i));
  EXPECT_EQ(f.writer->try_write(bytes_of("z")), RingResult::kFull);  // slow still holds it
  EXPECT_EQ(read(*slow).data, "m0");
  EXPECT_EQ(f.writer->try_write(bytes_of("m10")), RingResult::kOk);
  EXPECT_EQ(f.writer->try_write(bytes_of("z")), RingResult::kFull);
  // Evicting the slow reader lets the writer go on; the evicted reader is told.
  EXPECT_EQ(f.writer->evict_reader(slow->slot_index(), 99), RingResult::kBusy);  // wrong token
  ASSERT_EQ(f.writer->evict_reader(slow->slot_index(), 22), RingResult::kOk);
  EXPECT_EQ(f.writer->reader_slot(slow->slot_index()).owner, kReaderSlotFree);
  EXPECT_EQ(read(*fast).data, "m10");
  for (int i = 11; i < 20; ++i) EXPECT_EQ(f.writer->try_write(bytes_of("m" + std::to_string(i))), RingResult::kOk);
  const Read x = read(*slow);  // intact record, then it notices
  EXPECT_TRUE(x.result == RingResult::kOk || x.result == RingResult::kLapped) << to_string(x.result);
  EXPECT_EQ(read(*slow).result, RingResult::kEvicted);
  for (int i = 11; i < 20; ++i) EXPECT_EQ(read(*fast).data, "m" + std::to_string(i));
  EXPECT_EQ(fast->lost_records(), 0u);
}

TEST(BroadcastRingLossless, SlotsRunOutAndComeBack) {
  Fixture f({256, 0, true, 2, 0});
  auto a = BroadcastReader::register_reader(f.region.data(), f.region.size(), 1);
  auto b = BroadcastReader::register_reader(f.region.data(), f.region.size(), 2);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(BroadcastReader::register_reader(f.region.data(), f.region.size(), 3).status().code(),
            absl::StatusCode::kResourceExhausted);
  a->unregister();
  auto c = BroadcastReader::register_reader(f.region.data(), f.region.size(), 3);
  ASSERT_TRUE(c.ok());
  ASSERT_EQ(f.writer->try_write(bytes_of("hi")), RingResult::kOk);
  EXPECT_EQ(read(*c).data, "hi");
  EXPECT_EQ(read(*b).data, "hi");
  EXPECT_EQ(BroadcastReader::register_reader(f.region.data(), f.region.size(), 0).status().code(),
            absl::StatusCode::kInvalidArgument);
  Fixture lossy;
  EXPECT_EQ(BroadcastReader::register_reader(lossy.region.data(), lossy.region.size(), 5).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(BroadcastRingLossless, ReaderJoiningLateStartsAtTheNextRecordAndIsNeverLapped) {
  Fixture f({256, 0, true, 4, 0});
  for (int i = 0; i < 50; ++i) ASSERT_EQ(f.writer->try_write(bytes_of("old")), RingResult::kOk);
  auto r = BroadcastReader::register_reader(f.region.data(), f.region.size(), 7);
  ASSERT_TRUE(r.ok());
  int written = 0;
  while (f.writer->try_write(bytes_of(std::to_string(written))) == RingResult::kOk) ++written;
  EXPECT_GT(written, 5);
  for (int i = 0; i < written; ++i) EXPECT_EQ(read(*r).data, std::to_string(i));
  EXPECT_EQ(r->lapped_count(), 0u);
}

// A writer scan that read a slot's owner just before that reader left can settle the freed slot
// (kReaderJoining -> its tail) for nobody. The writer then skips the free slot and runs ahead with
// a limit from a later scan. The next reader to take the slot must start at its own tail, not at
// that stale settlement, or the writer overwrites records it is about to read.
TEST(BroadcastRingLossless, StaleSettlementOfAFreedSlotIsNotTakenAsAStart) {
  Fixture f({256, 0, true, 1, 0});
  auto a = BroadcastReader::register_reader(f.region.data(), f.region.size(), 1);
  ASSERT_TRUE(a.ok());
  for (int i = 0; i < 5; ++i) ASSERT_EQ(f.writer->try_write(bytes_of("m" + std::to_string(i))), RingResult::kOk);
  for (int i = 0; i < 5; ++i) ASSERT_EQ(read(*a).data, "m" + std::to_string(i));
  a->unregister();
  // The stale settlement, as the racing scan leaves it: the freed slot says 120 (the tail then).
  auto* slot = reinterpret_cast<BroadcastReaderSlot*>(static_cast<std::byte*>(f.region.data()) +
                                                      sizeof(BroadcastControl));
  slot->position.store(120);
  // The writer goes on; m10 pads to 256 and ends at 280 > 256, so it scans, skips the free slot
  // and sets its limit to 240 + 256.
  for (int i = 5; i < 11; ++i) ASSERT_EQ(f.writer->try_write(bytes_of("m" + std::to_string(i))), RingResult::kOk);
  ASSERT_EQ(f.writer->tail_position(), 280u);
  auto b = BroadcastReader::register_reader(f.region.data(), f.region.size(), 2);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->position(), 280u);
  EXPECT_EQ(f.writer->reader_slot(0).position, 280u);
  // Within that limit, no new scan: these end at 496 and overwrite everything below 240.
  for (int i = 11; i < 20; ++i) ASSERT_EQ(f.writer->try_write(bytes_of("m" + std::to_string(i))), RingResult::kOk);
  for (int i = 11; i < 20; ++i) EXPECT_EQ(read(*b).data, "m" + std::to_string(i));
  EXPECT_EQ(b->lost_records(), 0u);
  EXPECT_EQ(b->lapped_count(), 0u);
}

// A slot position no live reader can hold (garbage) does not stop the writer: it is reset to the
// writer's tail, and the reader owning the slot learns it was evicted.
TEST(BroadcastRingLossless, ImpossibleSlotPositionIsResetNotFatal) {
  Fixture f({256, 0, true, 1, 0});
  auto r = BroadcastReader::register_reader(f.region.data(), f.region.size(), 9);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(f.writer->try_write(bytes_of("before")), RingResult::kOk);
  auto* slot = reinterpret_cast<BroadcastReaderSlot*>(static_cast<std::byte*>(f.region.data()) +
                                                      sizeof(BroadcastControl));
  slot->position.store(std::uint64_t{1} << 50);  // far ahead of any tail
  int written = 0;
  while (written < 30 && f.writer->try_write(bytes_of("after")) == RingResult::kOk) ++written;
  EXPECT_GT(written, 0);
  const Read x = read(*r);
  EXPECT_NE(x.result, RingResult::kCorrupt);
  EXPECT_EQ(read(*r).result, RingResult::kEvicted);
}

TEST(BroadcastRingAttach, ErrorCodes) {
  HeapRegion zero(4096);
  EXPECT_EQ(BroadcastReader::attach(zero.data(), zero.size()).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(BroadcastRing::attach(zero.data(), zero.size()).status().code(), absl::StatusCode::kUnavailable);
  const std::pair<const char*, void (*)(RingHeader*)> corruptions[] = {
      {"flags", [](RingHeader* h) { h->flags = 4; }},
      {"lossless without readers", [](RingHeader* h) { h->flags = kBroadcastLossless; }},
      {"readers on a lossy ring", [](RingHeader* h) { h->max_readers = 3; }},
      {"too many readers", [](RingHeader* h) { h->max_readers = 5000; h->flags = 1; }},
      {"capacity", [](RingHeader* h) { h->capacity = 1 << 20; }},
      {"max record", [](RingHeader* h) { h->max_record = 113; }},
      {"initial position", [](RingHeader* h) { h->initial_position = 4; }},
      {"magic", [](RingHeader* h) { h->magic = 1; }},
  };
  for (const auto& [name, mutate] : corruptions) {
    Fixture f;
    mutate(static_cast<RingHeader*>(f.region.data()));
    EXPECT_EQ(BroadcastReader::attach(f.region.data(), f.region.size()).status().code(),
              absl::StatusCode::kDataLoss) << name;
    EXPECT_EQ(BroadcastRing::attach(f.region.data(), f.region.size()).status().code(),
              absl::StatusCode::kDataLoss) << name;
  }
  Fixture f;
  static_cast<RingHeader*>(f.region.data())->kind = static_cast<std::uint32_t>(RingKind::kSpsc);
  EXPECT_EQ(BroadcastReader::attach(f.region.data(), f.region.size()).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(BroadcastRingHostile, CorruptRecordsAreReported) {
  const std::uint64_t words[][2] = {
      {(std::uint64_t{1} << 32) | 113, 0},         // length past max
      {(std::uint64_t{1} << 32) | 0xFFFFFFFF, 0},  // huge length
      {(std::uint64_t{9} << 32) | 4, 0},           // bad type
      {(std::uint64_t{2} << 32) | 40, 0},          // padding of the wrong size
      {(std::uint64_t{1} << 32) | 5, 12345},       // wrong sequence
      {(std::uint64_t{1} << 32) | 60, 0},          // longer than what was published
  };
  for (const auto& w : words) {
    Fixture f;
    BroadcastReader r = f.reader();
    ASSERT_EQ(f.writer->try_write(bytes_of("good")), RingResult::kOk);
    ASSERT_EQ(read(r).data, "good");
    ASSERT_EQ(f.writer->try_write(bytes_of("hello")), RingResult::kOk);
    std::memcpy(f.region.bytes() + sizeof(BroadcastControl) + 24, w, 16);
    EXPECT_EQ(read(r).result, RingResult::kCorrupt) << std::hex << w[0];
    r.resync();
    ASSERT_EQ(f.writer->try_write(bytes_of("again")), RingResult::kOk);
    EXPECT_EQ(read(r).data, "again");
  }
  // A tail that is behind the reader's cursor: corrupt, not lapped.
  Fixture f;
  BroadcastReader r = f.reader();
  ASSERT_EQ(f.writer->try_write(bytes_of("good")), RingResult::kOk);
  ASSERT_EQ(read(r).data, "good");
  static_cast<BroadcastControl*>(f.region.data())->writer.tail.store(8);
  EXPECT_EQ(read(r).result, RingResult::kCorrupt);
}

}  // namespace
}  // namespace shmring
