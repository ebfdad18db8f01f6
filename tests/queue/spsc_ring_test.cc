#include "shmring/queue/spsc_ring.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "ring_test_util.h"

namespace shmring {
namespace {

using testing::bytes_of;
using testing::HeapRegion;

std::string as_string(std::span<const std::byte> s) {
  return std::string(reinterpret_cast<const char*>(s.data()), s.size());
}

struct Fixture {
  explicit Fixture(SpscRing::Options o = {256, 0, 0})
      : options(o), region(SpscRing::required_bytes(o)) {
    auto created = SpscRing::create(region.data(), region.size(), options);
    EXPECT_TRUE(created.ok()) << created.status();
    ring.emplace(std::move(*created));
  }
  std::optional<std::string> read_one() {
    std::optional<std::string> out;
    const RingResult r = ring->try_read([&](std::span<const std::byte> s) { out = as_string(s); });
    EXPECT_EQ(r == RingResult::kOk, out.has_value()) << to_string(r);
    return out;
  }
  SpscRing::Options options;
  HeapRegion region;
  std::optional<SpscRing> ring;
};

TEST(SpscRing, EmptyRingReadsNothing) {
  Fixture f;
  int calls = 0;
  EXPECT_EQ(f.ring->try_read([&](auto) { ++calls; }), RingResult::kEmpty);
  EXPECT_EQ(f.ring->read([&](auto) { ++calls; }).result, RingResult::kEmpty);
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(f.ring->size_approx(), 0u);
}

TEST(SpscRing, OneRecordRoundTrips) {
  Fixture f;
  ASSERT_EQ(f.ring->try_write(bytes_of("hello")), RingResult::kOk);
  EXPECT_EQ(f.ring->size_approx(), 16u);  // 8-byte header + 5 bytes, padded to 8
  EXPECT_EQ(f.read_one(), "hello");
  EXPECT_EQ(f.read_one(), std::nullopt);
}

TEST(SpscRing, ManyRecordsInOrderThroughManyWraps) {
  Fixture f;
  std::uint64_t next_write = 0;
  std::uint64_t next_read = 0;
  for (int round = 0; round < 2000; ++round) {
    while (f.ring->try_write(bytes_of(std::to_string(next_write) + std::string(next_write % 37, 'x'))) ==
           RingResult::kOk) {
      ++next_write;
    }
    const ReadBatch batch = f.ring->read(
        [&](std::span<const std::byte> s) {
          EXPECT_EQ(as_string(s), std::to_string(next_read) + std::string(next_read % 37, 'x'));
          ++next_read;
        },
        1 + round % 5);
    EXPECT_EQ(batch.result, RingResult::kOk);
  }
  while (f.ring->try_read([&](std::span<const std::byte> s) {
    EXPECT_EQ(as_string(s), std::to_string(next_read) + std::string(next_read % 37, 'x'));
    ++next_read;
  }) == RingResult::kOk) {
  }
  EXPECT_EQ(next_read, next_write);
  EXPECT_GT(next_write, 5000u);
}

TEST(SpscRing, FullRingRefusesUntilReaderConsumes) {
  // 256 data bytes: 15 records of 8-byte payload (16 bytes each); the writer keeps the 8-byte header
  // word after the last record free (it zeroes it before publishing), so a 16th does not fit.
  Fixture f;
  const std::string eight = "01234567";
  for (int i = 0; i < 15; ++i) ASSERT_EQ(f.ring->try_write(bytes_of(eight)), RingResult::kOk) << i;
  EXPECT_EQ(f.ring->try_write(bytes_of(eight)), RingResult::kFull);
  EXPECT_EQ(f.ring->try_write({}), RingResult::kOk);  // an empty record needs 8 bytes (+8 free)
  EXPECT_EQ(f.ring->try_write({}), RingResult::kFull);
  EXPECT_EQ(f.ring->size_approx(), 248u);
  EXPECT_EQ(f.read_one(), eight);  // 16 bytes free, but the next record needs 8 of padding first
  EXPECT_EQ(f.ring->try_write(bytes_of(eight)), RingResult::kFull);
  EXPECT_EQ(f.read_one(), eight);
  EXPECT_EQ(f.ring->try_write(bytes_of(eight)), RingResult::kOk);  // padding at 248, record at 256
  EXPECT_EQ(f.ring->write_position(), 272u);
  EXPECT_EQ(f.ring->try_write(bytes_of(eight)), RingResult::kFull);
}

TEST(SpscRing, RecordThatDoesNotFitBeforeTheEndIsPrecededByPadding) {
  Fixture f;  // capacity 256
  // 200 bytes used: 5 records of 32 payload bytes (40 each).
  const std::string thirty_two(32, 'a');
  for (int i = 0; i < 5; ++i) ASSERT_EQ(f.ring->try_write(bytes_of(thirty_two)), RingResult::kOk);
  for (int i = 0; i < 5; ++i) ASSERT_EQ(f.read_one(), thirty_two);
  // 56 bytes remain before the end; a 64-byte payload (72-byte record) needs padding + wrap.
  const std::string sixty_four(64, 'b');
  ASSERT_EQ(f.ring->try_write(bytes_of(sixty_four)), RingResult::kOk);
  EXPECT_EQ(f.ring->write_position(), 256u + 72u);
  SpscRecordHeader padding;
  std::memcpy(&padding, f.region.bytes() + sizeof(SpscControl) + 200, sizeof padding);
  EXPECT_EQ(padding.tag, SpscRing::record_tag(200, RecordType::kPadding));
  EXPECT_EQ(padding.length, 56u - 8u);
  SpscRecordHeader record;
  std::memcpy(&record, f.region.bytes() + sizeof(SpscControl), sizeof record);
  EXPECT_EQ(record.tag, SpscRing::record_tag(256, RecordType::kData));
  EXPECT_EQ(record.length, 64u);
  EXPECT_EQ(f.read_one(), sixty_four);  // the reader skips the padding silently
  EXPECT_EQ(f.read_one(), std::nullopt);
  EXPECT_EQ(f.ring->read_position(), 256u + 72u);
}

TEST(SpscRing, ZeroByteAndMaxSizeRecords) {
  Fixture f;
  EXPECT_EQ(f.ring->max_record(), 120u);  // half of 256, less the record header
  const std::string max(120, 'm');
  for (int i = 0; i < 50; ++i) {
    ASSERT_EQ(f.ring->try_write({}), RingResult::kOk);
    EXPECT_EQ(f.read_one(), "");
    // A max-size record fits in a ring the reader emptied, wherever the positions are.
    ASSERT_EQ(f.ring->try_write(bytes_of(max)), RingResult::kOk);
    EXPECT_EQ(f.read_one(), max);
  }
}

TEST(SpscRing, TooLargeIsRejectedWithoutChangingAByte) {
  Fixture f;
  ASSERT_EQ(f.ring->try_write(bytes_of("x")), RingResult::kOk);
  const std::vector<std::byte> before = f.region.snapshot();
  const std::string too_big(121, 't');
  EXPECT_EQ(f.ring->try_write(bytes_of(too_big)), RingResult::kTooLarge);
  EXPECT_EQ(f.ring->try_claim(121).result, RingResult::kTooLarge);
  EXPECT_EQ(f.ring->try_claim(std::size_t{1} << 40).result, RingResult::kTooLarge);
  EXPECT_EQ(f.region.snapshot(), before);
  EXPECT_FALSE(f.ring->has_claim());
}

TEST(SpscRing, ClaimCommitAbortAndShorterCommit) {
  Fixture f;
  SpscRing::Claim claim = f.ring->try_claim(10);
  ASSERT_EQ(claim.result, RingResult::kOk);
  ASSERT_EQ(claim.buffer.size(), 10u);
  std::memcpy(claim.buffer.data(), "abortedxxx", 10);
  f.ring->abort();
  EXPECT_EQ(f.read_one(), std::nullopt);  // nothing published

  claim = f.ring->try_claim(10);
  ASSERT_EQ(claim.result, RingResult::kOk);
  std::memcpy(claim.buffer.data(), "committed!", 10);
  EXPECT_EQ(f.read_one(), std::nullopt);  // not visible before commit
  f.ring->commit();
  EXPECT_EQ(f.read_one(), "committed!");

  claim = f.ring->try_claim(100);
  ASSERT_EQ(claim.result, RingResult::kOk);
  std::memcpy(claim.buffer.data(), "short", 5);
  f.ring->commit(5);
  EXPECT_EQ(f.read_one(), "short");
  EXPECT_EQ(f.ring->write_position(), f.ring->read_position());
}

TEST(SpscRing, AbortedClaimAtTheWrapLeavesNothingBehind) {
  Fixture f;
  const std::string s(32, 'a');
  for (int i = 0; i < 5; ++i) ASSERT_EQ(f.ring->try_write(bytes_of(s)), RingResult::kOk);
  for (int i = 0; i < 5; ++i) ASSERT_EQ(f.read_one(), s);
  SpscRing::Claim claim = f.ring->try_claim(64);  // needs padding at 200
  ASSERT_EQ(claim.result, RingResult::kOk);
  f.ring->abort();
  ASSERT_EQ(f.ring->try_write(bytes_of("small")), RingResult::kOk);  // fits at 200 after all
  EXPECT_EQ(f.read_one(), "small");
  EXPECT_EQ(f.ring->read_position(), 216u);
}

TEST(SpscRing, ReaderAttachingLaterSeesWhatWasWritten) {
  Fixture f;
  ASSERT_EQ(f.ring->try_write(bytes_of("early")), RingResult::kOk);
  auto reader = SpscRing::attach(f.region.data(), f.region.size());
  ASSERT_TRUE(reader.ok()) << reader.status();
  ASSERT_EQ(f.ring->try_write(bytes_of("late")), RingResult::kOk);
  std::vector<std::string> got;
  reader->read([&](std::span<const std::byte> s) { got.push_back(as_string(s)); });
  EXPECT_EQ(got, (std::vector<std::string>{"early", "late"}));
  // A writer that re-attaches resumes from the committed position.
  auto writer = SpscRing::attach(f.region.data(), f.region.size());
  ASSERT_TRUE(writer.ok());
  EXPECT_EQ(writer->write_position(), f.ring->write_position());
}

TEST(SpscRing, PositionsAcrossTheWrapOf64Bits) {
  const std::uint64_t capacity = 256;
  Fixture f({capacity, 0, ~std::uint64_t{0} - 3 * capacity + 1});
  std::uint64_t written = 0;
  std::uint64_t read = 0;
  for (int round = 0; round < 200; ++round) {
    for (int i = 0; i < 3; ++i) {
      const std::string s = std::to_string(written) + std::string(written % 50, '.');
      if (f.ring->try_write(bytes_of(s)) == RingResult::kOk) ++written;
    }
    f.ring->read([&](std::span<const std::byte> s) {
      EXPECT_EQ(as_string(s), std::to_string(read) + std::string(read % 50, '.'));
      ++read;
    }, 2);
  }
  f.ring->read([&](std::span<const std::byte> s) {
    EXPECT_EQ(as_string(s), std::to_string(read) + std::string(read % 50, '.'));
    ++read;
  });
  EXPECT_EQ(read, written);
  EXPECT_LT(f.ring->write_position(), 100000u);  // the counters wrapped past 2^64
}

TEST(SpscRing, CloseIsSeenAfterTheLastRecord) {
  Fixture f;
  ASSERT_EQ(f.ring->try_write(bytes_of("last")), RingResult::kOk);
  EXPECT_FALSE(f.ring->closed());
  f.ring->close();
  EXPECT_TRUE(f.ring->closed());
  EXPECT_EQ(f.read_one(), "last");
}

TEST(SpscRing, CreateRejectsBadOptionsAndRegions) {
  HeapRegion region(1 << 16);
  EXPECT_EQ(SpscRing::create(region.data(), region.size(), {100, 0, 0}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SpscRing::create(region.data(), region.size(), {32, 0, 0}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SpscRing::create(region.data(), region.size(), {256, 121, 0}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SpscRing::create(region.data(), region.size(), {256, 0, 4}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SpscRing::create(region.data(), 384 + 255, {256, 0, 0}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SpscRing::create(region.bytes() + 8, region.size() - 8, {256, 0, 0}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SpscRing::create(nullptr, 1 << 16, {256, 0, 0}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// --- Attach errors and corrupt memory -------------------------------------------------------------

TEST(SpscRingAttach, NotReadyIsUnavailable) {
  HeapRegion region(4096);
  EXPECT_EQ(SpscRing::attach(region.data(), region.size()).status().code(),
            absl::StatusCode::kUnavailable);
}

TEST(SpscRingAttach, TooSmallOrMisalignedIsInvalidArgument) {
  Fixture f;
  EXPECT_EQ(SpscRing::attach(f.region.data(), 100).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SpscRing::attach(f.region.bytes() + 64, 1000).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(SpscRingAttach, VersionAbiAndKindMismatchAreFailedPrecondition) {
  for (int field = 0; field < 3; ++field) {
    Fixture f;
    auto* header = static_cast<RingHeader*>(f.region.data());
    if (field == 0) header->version.store(kRingLayoutVersion + 1);
    if (field == 1) header->abi ^= 1;
    if (field == 2) header->kind = static_cast<std::uint32_t>(RingKind::kMpmc);
    EXPECT_EQ(SpscRing::attach(f.region.data(), f.region.size()).status().code(),
              absl::StatusCode::kFailedPrecondition)
        << field;
  }
}

TEST(SpscRingAttach, CorruptHeadersAreDataLoss) {
  struct Case {
    const char* name;
    void (*mutate)(RingHeader*, SpscControl*);
    std::size_t region_bytes;  // 0: the fixture's
  };
  const Case cases[] = {
      {"magic", [](RingHeader* h, SpscControl*) { h->magic ^= 0x100; }, 0},
      {"unknown kind", [](RingHeader* h, SpscControl*) { h->kind = 77; }, 0},
      {"capacity not a power of two", [](RingHeader* h, SpscControl*) { h->capacity = 200; }, 0},
      {"capacity past the region", [](RingHeader* h, SpscControl*) {
         h->capacity = 512; h->region_bytes = 384 + 512; }, 0},
      {"region bytes past the mapping", [](RingHeader*, SpscControl*) {}, 384 + 128},
      {"region bytes inconsistent", [](RingHeader* h, SpscControl*) { h->region_bytes -= 8; }, 0},
      {"data offset", [](RingHeader* h, SpscControl*) { h->data_offset = 256; }, 0},
      {"data offset huge", [](RingHeader* h, SpscControl*) { h->data_offset = ~0ull - 127; }, 0},
      {"max record too big", [](RingHeader* h, SpscControl*) { h->max_record = 121; }, 0},
      {"max record huge", [](RingHeader* h, SpscControl*) { h->max_record = ~0ull; }, 0},
      {"slot stride", [](RingHeader* h, SpscControl*) { h->slot_stride = 64; }, 0},
      {"capacity zero", [](RingHeader* h, SpscControl*) { h->capacity = 0; }, 0},
      {"positions apart by more than capacity", [](RingHeader*, SpscControl* c) {
         c->write_pos.value = 1024; }, 0},
      {"read ahead of write", [](RingHeader*, SpscControl* c) { c->read_pos.value = 16; }, 0},
      {"misaligned position", [](RingHeader*, SpscControl* c) {
         c->write_pos.value = 3; }, 0},
  };
  for (const Case& c : cases) {
    Fixture f;
    c.mutate(static_cast<RingHeader*>(f.region.data()), static_cast<SpscControl*>(f.region.data()));
    const std::size_t bytes = c.region_bytes != 0 ? c.region_bytes : f.region.size();
    EXPECT_EQ(SpscRing::attach(f.region.data(), bytes).status().code(), absl::StatusCode::kDataLoss)
        << c.name;
  }
}

TEST(SpscRingHostile, CorruptRecordHeadersAreReportedNotFollowed) {
  struct Case {
    const char* name;
    std::uint64_t position;  // where the reader stands (initial position of the ring)
    SpscRecordHeader header;
  };
  const auto data = [](std::uint64_t pos) { return SpscRing::record_tag(pos, RecordType::kData); };
  const auto pad = [](std::uint64_t pos) { return SpscRing::record_tag(pos, RecordType::kPadding); };
  const Case cases[] = {
      {"length past max", 0, {121, data(0)}},
      {"length huge", 0, {0xFFFFFFFF, data(0)}},
      {"record past the end", 200, {56, data(200)}},
      {"tag of the previous lap", 256, {5, data(0)}},
      {"tag of another position", 0, {5, data(8)}},
      {"bad type", 0, {5, data(0) | 3}},
      {"padding of the wrong size", 0, {40, pad(0)}},
      {"padding not to the end", 200, {40, pad(200)}},
      {"record past the end by a word", 200, {49, data(200)}},
  };
  for (const Case& c : cases) {
    Fixture f({256, 0, c.position});
    ASSERT_EQ(f.ring->try_write(bytes_of("hello")), RingResult::kOk);
    std::memcpy(f.region.bytes() + sizeof(SpscControl) + (c.position & 255), &c.header,
                sizeof c.header);
    int calls = 0;
    EXPECT_EQ(f.ring->try_read([&](auto) { ++calls; }), RingResult::kCorrupt) << c.name;
    EXPECT_EQ(calls, 0) << c.name;
    EXPECT_EQ(f.ring->read_position(), c.position) << c.name;
  }
}

TEST(SpscRingHostile, PayloadOfAnOlderLapIsNeverTakenForARecord) {
  // A payload that holds exactly the header word a record of the next lap will have at that index:
  // the writer zeroes the next header word before publishing, so the reader waits instead.
  Fixture f;  // capacity 256
  const std::uint64_t forged = SpscRing::header_word(256 + 24, 8, RecordType::kData);
  std::string payload(8, '\0');
  std::memcpy(payload.data(), &forged, 8);
  ASSERT_EQ(f.ring->try_write(bytes_of("a")), RingResult::kOk);      // [0, 16)
  ASSERT_EQ(f.ring->try_write(bytes_of(payload)), RingResult::kOk);  // [16, 32), payload at 24
  EXPECT_EQ(f.read_one(), "a");
  EXPECT_EQ(f.read_one(), payload);
  for (int i = 0; i < 15; ++i) {  // [32, 272)
    ASSERT_EQ(f.ring->try_write(bytes_of("12345678")), RingResult::kOk) << i;
    EXPECT_EQ(f.read_one(), "12345678");
  }
  ASSERT_EQ(f.ring->try_write({}), RingResult::kOk);  // [272, 280)
  EXPECT_EQ(f.read_one(), "");
  EXPECT_EQ(f.ring->read_position(), 256u + 24u);
  EXPECT_EQ(f.read_one(), std::nullopt);  // zeroed, not the forged header of that position
  ASSERT_EQ(f.ring->try_write(bytes_of("real")), RingResult::kOk);
  EXPECT_EQ(f.read_one(), "real");
}

TEST(SpscRingHostile, ImpossiblePeerPositionsAreReported) {
  Fixture f;
  auto* control = static_cast<SpscControl*>(f.region.data());
  // The reader does not use write_pos at all: scribbling it changes nothing for the reader.
  control->write_pos.value = 1 << 20;
  EXPECT_EQ(f.ring->try_read([](auto) {}), RingResult::kEmpty);
  ASSERT_EQ(f.ring->try_write(bytes_of("x")), RingResult::kOk);
  EXPECT_EQ(f.read_one(), "x");
  control->write_pos.value = 5;
  EXPECT_EQ(f.ring->try_read([](auto) {}), RingResult::kEmpty);

  // The writer's view of the reader: fill the ring, then make read_pos impossible.
  const std::string s(8, 'x');
  while (f.ring->try_write(bytes_of(s)) == RingResult::kOk) {
  }
  control->read_pos.value = 1 << 20;  // ahead of the writer
  EXPECT_EQ(f.ring->try_write(bytes_of(s)), RingResult::kCorrupt);
  control->read_pos.value = 12;  // misaligned
  EXPECT_EQ(f.ring->try_write(bytes_of(s)), RingResult::kCorrupt);
}

TEST(SpscRingAttach, WriterResumesAfterRecordsPublishedPastWritePos) {
  // A writer that died between publishing a header and storing write_pos.
  Fixture f;
  ASSERT_EQ(f.ring->try_write(bytes_of("one")), RingResult::kOk);
  ASSERT_EQ(f.ring->try_write(bytes_of("two")), RingResult::kOk);
  auto* control = static_cast<SpscControl*>(f.region.data());
  control->write_pos.value = 16;  // as if the second commit stopped before its write_pos store
  auto writer = SpscRing::attach(f.region.data(), f.region.size());
  ASSERT_TRUE(writer.ok()) << writer.status();
  EXPECT_EQ(writer->write_position(), 32u);
  ASSERT_EQ(writer->try_write(bytes_of("three")), RingResult::kOk);
  EXPECT_EQ(f.read_one(), "one");
  EXPECT_EQ(f.read_one(), "two");
  EXPECT_EQ(f.read_one(), "three");
  EXPECT_EQ(f.read_one(), std::nullopt);
}

TEST(SpscRing, CreateZeroesTheFirstHeaderWordOfADirtyRegion) {
  HeapRegion region(SpscRing::required_bytes({256, 0, 0}));
  std::memset(region.bytes(), 0x5A, region.size());
  const std::uint64_t forged = SpscRing::header_word(0, 4, RecordType::kData);
  std::memcpy(region.bytes() + sizeof(SpscControl) + 8, &forged, 8);  // not where the reader starts
  auto ring = SpscRing::create(region.data(), region.size(), {256, 0, 0});
  ASSERT_TRUE(ring.ok());
  EXPECT_EQ(ring->try_read([](auto) {}), RingResult::kEmpty);
  ASSERT_EQ(ring->try_write(bytes_of("ok")), RingResult::kOk);
  std::string got;
  EXPECT_EQ(ring->try_read([&](std::span<const std::byte> s) { got = as_string(s); }), RingResult::kOk);
  EXPECT_EQ(got, "ok");
  EXPECT_EQ(ring->try_read([](auto) {}), RingResult::kEmpty);
}

}  // namespace
}  // namespace shmring
