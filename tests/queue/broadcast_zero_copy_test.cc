// Broadcast ring zero-copy: the writer's try_claim/commit/abort and the reader's
// try_view/finish_view.
#include <gtest/gtest.h>

#include <cstring>
#include <optional>
#include <string>
#include <thread>
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

struct Ring {
  explicit Ring(std::uint64_t capacity = 1024, std::uint32_t publishers = 1)
      : region(BroadcastLayout::required_bytes(make(capacity, publishers))) {
    const absl::Status s = BroadcastLayout::create(region.data(), region.size(), make(capacity, publishers));
    EXPECT_TRUE(s.ok()) << s;
    auto w = BroadcastWriter::attach(region.data(), region.size(), 1);
    EXPECT_TRUE(w.ok()) << w.status();
    writer.emplace(std::move(*w));
  }
  static BroadcastOptions make(std::uint64_t capacity, std::uint32_t publishers) {
    BroadcastOptions o;
    o.capacity = capacity;
    o.max_publishers = publishers;
    return o;
  }
  BroadcastReader lossy() {
    auto r = BroadcastReader::attach(region.data(), region.size());
    EXPECT_TRUE(r.ok()) << r.status();
    return std::move(*r);
  }
  BroadcastReader lossless(std::uint64_t token) {
    auto r = BroadcastReader::register_reader(region.data(), region.size(), token);
    EXPECT_TRUE(r.ok()) << r.status();
    return std::move(*r);
  }
  BroadcastControl* control() { return static_cast<BroadcastControl*>(region.data()); }
  bool inside(const void* p) const {
    const auto* b = static_cast<const std::byte*>(p);
    return b >= region.bytes() && b < region.bytes() + region.size();
  }
  HeapRegion region;
  std::optional<BroadcastWriter> writer;
};

// Claims, fills with `text` and commits exactly its length.
RingResult claim_write(BroadcastWriter& w, const std::string& text, std::size_t claim_bytes = 0) {
  const BroadcastWriter::Claim c = w.try_claim(claim_bytes != 0 ? claim_bytes : text.size());
  if (c.result != RingResult::kOk) return c.result;
  std::memcpy(c.buffer.data(), text.data(), text.size());
  return w.commit(text.size());
}

std::string read_copy(BroadcastReader& r) {
  std::vector<std::byte> out(r.max_record());
  BroadcastRecordInfo info;
  if (r.try_read(out, &info) != RingResult::kOk) return "<none>";
  return std::string(reinterpret_cast<const char*>(out.data()), info.bytes);
}

std::string as_string(std::span<const std::byte> s) {
  return std::string(reinterpret_cast<const char*>(s.data()), s.size());
}

TEST(BroadcastClaim, CommittedClaimsAreRecordsLikeAnyOther) {
  Ring ring;
  BroadcastReader r = ring.lossy();
  for (int round = 0; round < 50; ++round) {
    const std::string a = "claim" + std::to_string(round);
    ASSERT_EQ(claim_write(*ring.writer, a, 300), RingResult::kOk);  // committed short
    ASSERT_EQ(ring.writer->try_write(bytes_of("copy" + std::to_string(round))), RingResult::kOk);
    EXPECT_EQ(read_copy(r), a);
    EXPECT_EQ(read_copy(r), "copy" + std::to_string(round));
  }
  EXPECT_EQ(r.lost_records(), 0u);
  EXPECT_EQ(ring.writer->claim_sequence_approx(), 100u);
  // Short claims gave their tails back (but for a filler where a claim did not fit before the end
  // of the ring: its record was placed at the start).
  EXPECT_LT(ring.writer->claim_position_approx(), 100u * 64 + 20u * 384);
}

TEST(BroadcastClaim, BufferIsContiguousAtTheEndOfTheRingAndInsideIt) {
  Ring ring;
  BroadcastReader r = ring.lossy();
  for (int i = 0; i < 15; ++i) ASSERT_EQ(ring.writer->try_write(bytes_of("xxxx")), RingResult::kOk);
  for (int i = 0; i < 15; ++i) ASSERT_EQ(read_copy(r), "xxxx");
  ASSERT_EQ(ring.writer->claim_position_approx(), 960u);
  const BroadcastWriter::Claim c = ring.writer->try_claim(100);  // 128 bytes: not in the 64 left
  ASSERT_EQ(c.result, RingResult::kOk);
  EXPECT_TRUE(ring.inside(c.buffer.data()) && ring.inside(c.buffer.data() + 99));
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(c.buffer.data()) % 8, 0u);
  std::memset(c.buffer.data(), 'w', 100);
  ASSERT_EQ(ring.writer->commit(100), RingResult::kOk);
  EXPECT_EQ(ring.writer->claim_position_approx(), 1024u + 128u);
  EXPECT_EQ(read_copy(r), std::string(100, 'w'));
}

TEST(BroadcastClaim, MisuseIsRefusedAndChangesNothing) {
  Ring ring;
  EXPECT_EQ(ring.writer->commit(0), RingResult::kBusy);  // no claim out
  EXPECT_EQ(ring.writer->try_claim(425).result, RingResult::kTooLarge);
  EXPECT_FALSE(ring.writer->has_claim());
  const BroadcastWriter::Claim c = ring.writer->try_claim(8);
  ASSERT_EQ(c.result, RingResult::kOk);
  EXPECT_EQ(ring.writer->try_claim(8).result, RingResult::kBusy);     // one claim at a time
  EXPECT_EQ(ring.writer->try_write(bytes_of("x")), RingResult::kBusy);
  EXPECT_EQ(ring.writer->commit(9), RingResult::kTooLarge);  // longer than claimed: kept
  EXPECT_TRUE(ring.writer->has_claim());
  EXPECT_EQ(ring.writer->commit(8), RingResult::kOk);
  EXPECT_EQ(ring.writer->claim_position_approx(), 64u);
  ring.writer->abort();  // nothing out: no-op
  EXPECT_EQ(ring.writer->claim_position_approx(), 64u);
}

TEST(BroadcastClaim, AbortedClaimIsNeverSeenAndItsScribblesCountAsOverwrites) {
  Ring ring;
  BroadcastReader r = ring.lossy();
  for (int i = 0; i < 12; ++i) ASSERT_EQ(ring.writer->try_write(bytes_of("r" + std::to_string(i))), RingResult::kOk);
  EXPECT_EQ(read_copy(r), "r0");
  EXPECT_EQ(read_copy(r), "r1");  // cursor 128; r2 .. r11 unread at 128 .. 768
  // A maximal claim (448 bytes) goes to the start of the ring: its buffer lies over unread
  // records. The claimer scribbles, then gives up.
  const BroadcastWriter::Claim c = ring.writer->try_claim(424);
  ASSERT_EQ(c.result, RingResult::kOk);
  std::memset(c.buffer.data(), 'Z', c.buffer.size());
  ring.writer->abort();
  // A short record afterwards ends below the claimed end: intent must not drop below it, or the
  // reader at 128 would take the scribbled bytes for records.
  ASSERT_EQ(ring.writer->try_write(bytes_of("after")), RingResult::kOk);
  EXPECT_GE(ring.control()->rare.intent.load(), 1024u + 448u);
  BroadcastRecordInfo info;
  std::vector<std::byte> out(r.max_record());
  EXPECT_EQ(r.try_read(out, &info), RingResult::kLapped);
  EXPECT_EQ(read_copy(r), "after");
  EXPECT_EQ(r.lost_records(), 10u);  // r2 .. r11; the aborted claim was never a record
}

TEST(BroadcastClaim, LosslessClaimWaitsForTheSlowestReader) {
  Ring ring;
  BroadcastReader slow = ring.lossless(7);
  int written = 0;
  while (claim_write(*ring.writer, "m" + std::to_string(written), 8) == RingResult::kOk) ++written;
  EXPECT_EQ(written, 16);
  EXPECT_EQ(ring.writer->try_claim(8).result, RingResult::kFull);
  EXPECT_FALSE(ring.writer->has_claim());
  EXPECT_EQ(read_copy(slow), "m0");
  EXPECT_EQ(claim_write(*ring.writer, "m16", 8), RingResult::kOk);
}

TEST(BroadcastView, LossyViewIsInPlaceAndValidatedAtTheEnd) {
  Ring ring;
  BroadcastReader r = ring.lossy();
  std::span<const std::byte> v;
  BroadcastRecordInfo info;
  EXPECT_EQ(r.try_view(&v, &info), RingResult::kEmpty);
  ASSERT_EQ(ring.writer->try_write(bytes_of("one")), RingResult::kOk);
  ASSERT_EQ(claim_write(*ring.writer, "two"), RingResult::kOk);
  ASSERT_EQ(r.try_view(&v, &info), RingResult::kOk);
  EXPECT_TRUE(ring.inside(v.data()));
  EXPECT_EQ(as_string(v), "one");
  EXPECT_EQ(info.sequence, 0u);
  EXPECT_EQ(info.publisher, ring.writer->id());
  std::vector<std::byte> out(r.max_record());
  EXPECT_EQ(r.try_read(out, nullptr), RingResult::kBusy);  // one view at a time
  EXPECT_EQ(r.try_view(&v, nullptr), RingResult::kBusy);
  EXPECT_TRUE(r.has_view());
  EXPECT_EQ(r.finish_view(), RingResult::kOk);
  EXPECT_FALSE(r.has_view());
  EXPECT_EQ(r.finish_view(), RingResult::kOk);  // nothing out: no-op
  ASSERT_EQ(r.try_view(&v, &info), RingResult::kOk);
  EXPECT_EQ(as_string(v), "two");
  EXPECT_EQ(info.sequence, 1u);
  EXPECT_EQ(r.finish_view(), RingResult::kOk);
  EXPECT_EQ(r.try_view(&v, nullptr), RingResult::kEmpty);
  EXPECT_EQ(r.lost_records(), 0u);
}

TEST(BroadcastView, LossyViewOverwrittenWhileHeldIsReportedAndCountedLost) {
  Ring ring;
  BroadcastReader r = ring.lossy();
  ASSERT_EQ(ring.writer->try_write(bytes_of("held")), RingResult::kOk);
  std::span<const std::byte> v;
  ASSERT_EQ(r.try_view(&v, nullptr), RingResult::kOk);
  for (int i = 0; i < 20; ++i) ASSERT_EQ(ring.writer->try_write(bytes_of("w" + std::to_string(i))), RingResult::kOk);
  EXPECT_EQ(r.finish_view(), RingResult::kLapped);
  EXPECT_EQ(r.lost_records(), 1u);
  EXPECT_EQ(r.try_view(&v, nullptr), RingResult::kLapped);  // jumps to the newest record
  ASSERT_EQ(r.try_view(&v, nullptr), RingResult::kOk);
  EXPECT_EQ(as_string(v), "w19");
  EXPECT_EQ(r.finish_view(), RingResult::kOk);
  EXPECT_EQ(r.lost_records(), 1u + 19u);  // the held record, then w0 .. w18
}

TEST(BroadcastView, LosslessViewHoldsTheWritersUntilFinished) {
  Ring ring;
  BroadcastReader r = ring.lossless(5);
  int written = 0;
  while (ring.writer->try_write(bytes_of("m" + std::to_string(written))) == RingResult::kOk) ++written;
  ASSERT_EQ(written, 16);
  std::span<const std::byte> v;
  ASSERT_EQ(r.try_view(&v, nullptr), RingResult::kOk);
  EXPECT_EQ(as_string(v), "m0");
  EXPECT_EQ(ring.writer->try_write(bytes_of("z")), RingResult::kFull);  // m0 still viewed
  EXPECT_EQ(as_string(v), "m0");
  EXPECT_EQ(r.finish_view(), RingResult::kOk);
  EXPECT_EQ(ring.writer->try_write(bytes_of("m16")), RingResult::kOk);
  for (int i = 1; i <= 16; ++i) {
    ASSERT_EQ(r.try_view(&v, nullptr), RingResult::kOk);
    EXPECT_EQ(as_string(v), "m" + std::to_string(i));
    ASSERT_EQ(r.finish_view(), RingResult::kOk);
  }
  // Evicted while viewing: the record may be overwritten, so the view is not vouched for.
  ASSERT_EQ(ring.writer->try_write(bytes_of("last")), RingResult::kOk);
  ASSERT_EQ(r.try_view(&v, nullptr), RingResult::kOk);
  auto admin = BroadcastReaderSlots::attach(ring.region.data(), ring.region.size());
  ASSERT_TRUE(admin.ok());
  ASSERT_EQ(admin->evict(r.slot_index(), 5), RingResult::kOk);
  EXPECT_EQ(r.finish_view(), RingResult::kEvicted);
  EXPECT_EQ(r.try_view(&v, nullptr), RingResult::kEvicted);
}

// Threads (TSan build): lossless claim/commit from two writers against lossless views; every record
// arrives intact and in each writer's order, and no writer overwrites a record being viewed.
TEST(BroadcastZeroCopyStress, LosslessClaimsAndViewsAcrossThreads) {
  Ring ring(4096, 2);
  BroadcastReader a = ring.lossless(1);
  BroadcastReader b = ring.lossless(2);
  const std::uint64_t records = testing::scaled(200'000);
  auto produce = [&](BroadcastWriter& w, std::uint64_t tag) {
    for (std::uint64_t i = 0; i < records;) {
      const std::size_t len = 16 + (i % 7) * 8;
      const BroadcastWriter::Claim c = w.try_claim(len);
      if (c.result == RingResult::kFull) {
        std::this_thread::yield();
        continue;
      }
      ASSERT_EQ(c.result, RingResult::kOk);
      const std::uint64_t value = (tag << 48) | i;
      for (std::size_t k = 0; k < len; k += 8) std::memcpy(c.buffer.data() + k, &value, 8);
      ASSERT_EQ(w.commit(len), RingResult::kOk);
      ++i;
    }
  };
  auto second = BroadcastWriter::attach(ring.region.data(), ring.region.size(), 2);
  ASSERT_TRUE(second.ok());
  auto consume = [&](BroadcastReader& r, std::uint64_t* bad) {
    std::uint64_t next[2] = {0, 0};
    for (std::uint64_t got = 0; got < 2 * records;) {
      std::span<const std::byte> v;
      BroadcastRecordInfo info;
      const RingResult res = r.try_view(&v, &info);
      if (res == RingResult::kEmpty) {
        std::this_thread::yield();
        continue;
      }
      ASSERT_EQ(res, RingResult::kOk);
      std::uint64_t first = 0;
      std::memcpy(&first, v.data(), 8);
      const std::uint64_t tag = first >> 48;
      const std::uint64_t i = first & 0xFFFFFFFFFFFFULL;
      if (tag > 1 || i != next[tag] || v.size() != 16 + (i % 7) * 8 || info.sequence != got ||
          info.publisher_sequence != i) {
        ++*bad;
      }
      for (std::size_t k = 0; k < v.size(); k += 8) {
        std::uint64_t x = 0;
        std::memcpy(&x, v.data() + k, 8);
        if (x != first) ++*bad;
      }
      if (tag <= 1) next[tag] = i + 1;
      ASSERT_EQ(r.finish_view(), RingResult::kOk);
      ++got;
    }
  };
  std::uint64_t bad_a = 0;
  std::uint64_t bad_b = 0;
  std::thread w1([&] { produce(*ring.writer, 0); });
  std::thread w2([&] { produce(*second, 1); });
  std::thread ta([&] { consume(a, &bad_a); });
  consume(b, &bad_b);
  ta.join();
  w1.join();
  w2.join();
  EXPECT_EQ(bad_a, 0u);
  EXPECT_EQ(bad_b, 0u);
  EXPECT_EQ(a.lost_records() + b.lost_records() + a.gaps_passed() + b.gaps_passed(), 0u);
}

}  // namespace
}  // namespace shmring
