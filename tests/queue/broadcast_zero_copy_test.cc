// BroadcastRing zero-copy: the writer's claim/commit/abort and the reader's try_view/finish_view.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "ring_test_util.h"
#include "shmring/queue/broadcast_ring.h"

namespace shmring {
namespace {

using testing::bytes_of;
using testing::HeapRegion;

struct Ring {
  explicit Ring(BroadcastRing::Options o) : region(BroadcastRing::required_bytes(o)) {
    auto created = BroadcastRing::create(region.data(), region.size(), o);
    EXPECT_TRUE(created.ok()) << created.status();
    writer.emplace(std::move(*created));
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
    const auto* base = static_cast<const std::byte*>(region.data());
    return b >= base && b < base + region.size();
  }
  HeapRegion region;
  std::optional<BroadcastRing> writer;
};

BroadcastRing::Options lossy_options() { return {256, 0, false, 0, 0}; }
BroadcastRing::Options lossless_options() { return {256, 0, true, 4, 0}; }

// Claims, fills with `text` and commits exactly its length.
RingResult claim_write(BroadcastRing& w, const std::string& text, std::size_t claim_bytes = 0) {
  const BroadcastRing::Claim c = w.try_claim(claim_bytes != 0 ? claim_bytes : text.size());
  if (c.result != RingResult::kOk) return c.result;
  std::memcpy(c.buffer.data(), text.data(), text.size());
  return w.commit(text.size());
}

std::string read_copy(BroadcastReader& r) {
  std::vector<std::byte> out(r.max_record());
  std::size_t n = 0;
  if (r.try_read(out, &n) != RingResult::kOk) return "<none>";
  return std::string(reinterpret_cast<const char*>(out.data()), n);
}

std::string as_string(std::span<const std::byte> s) {
  return std::string(reinterpret_cast<const char*>(s.data()), s.size());
}

TEST(BroadcastClaim, CommittedClaimsAreRecordsLikeAnyOther) {
  Ring ring(lossy_options());
  BroadcastReader r = ring.lossy();
  for (int round = 0; round < 50; ++round) {
    const std::string a = "claim" + std::to_string(round);
    ASSERT_EQ(claim_write(*ring.writer, a, 100), RingResult::kOk);  // committed short
    ASSERT_EQ(ring.writer->try_write(bytes_of("copy" + std::to_string(round))), RingResult::kOk);
    EXPECT_EQ(read_copy(r), a);
    EXPECT_EQ(read_copy(r), "copy" + std::to_string(round));
  }
  EXPECT_EQ(r.lost_records(), 0u);
  EXPECT_EQ(ring.writer->next_sequence(), 100u);
}

TEST(BroadcastClaim, BufferIsContiguousAtTheWrapAndInsideTheRing) {
  Ring ring(lossy_options());
  BroadcastReader r = ring.lossy();
  for (int i = 0; i < 10; ++i) ASSERT_EQ(ring.writer->try_write(bytes_of("xxxx")), RingResult::kOk);
  for (int i = 0; i < 10; ++i) ASSERT_EQ(read_copy(r), "xxxx");
  ASSERT_EQ(ring.writer->tail_position(), 240u);
  const BroadcastRing::Claim c = ring.writer->try_claim(40);  // 56 bytes: does not fit in 16
  ASSERT_EQ(c.result, RingResult::kOk);
  EXPECT_TRUE(ring.inside(c.buffer.data()) && ring.inside(c.buffer.data() + 39));
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(c.buffer.data()) % 8, 0u);
  std::memset(c.buffer.data(), 'w', 40);
  ASSERT_EQ(ring.writer->commit(40), RingResult::kOk);
  EXPECT_EQ(ring.writer->tail_position(), 256u + 56u);
  EXPECT_EQ(read_copy(r), std::string(40, 'w'));
}

TEST(BroadcastClaim, MisuseIsRefusedAndChangesNothing) {
  Ring ring(lossy_options());
  EXPECT_EQ(ring.writer->commit(0), RingResult::kBusy);  // no claim out
  EXPECT_EQ(ring.writer->try_claim(113).result, RingResult::kTooLarge);
  EXPECT_FALSE(ring.writer->has_claim());
  const BroadcastRing::Claim c = ring.writer->try_claim(8);
  ASSERT_EQ(c.result, RingResult::kOk);
  EXPECT_EQ(ring.writer->commit(9), RingResult::kTooLarge);  // longer than claimed: kept
  EXPECT_TRUE(ring.writer->has_claim());
  EXPECT_EQ(ring.writer->tail_position(), 0u);
  EXPECT_EQ(ring.writer->commit(8), RingResult::kOk);
  EXPECT_EQ(ring.writer->tail_position(), 24u);
}

TEST(BroadcastClaim, AbortedClaimIsNeverSeenAndItsScribblesAreCountedAsOverwrites) {
  Ring ring(lossy_options());
  BroadcastReader r = ring.lossy();
  for (int i = 0; i < 10; ++i) {
    ASSERT_EQ(ring.writer->try_write(bytes_of("r" + std::to_string(i))), RingResult::kOk);
  }
  EXPECT_EQ(read_copy(r), "r0");
  EXPECT_EQ(read_copy(r), "r1");  // cursor 48; records 2..9 unread at 48..240
  // A maximal claim pads to 256 and takes [256, 384): its buffer is ring bytes 16..128, over the
  // unread records. The claimer scribbles, then gives up.
  const BroadcastRing::Claim c = ring.writer->try_claim(112);
  ASSERT_EQ(c.result, RingResult::kOk);
  std::memset(c.buffer.data(), 'Z', c.buffer.size());
  ring.writer->abort();
  // A short record afterwards ends at 280, below the claimed end: tail_intent must not drop
  // below 384, or the reader at 48 would take the scribbled bytes for records.
  ASSERT_EQ(ring.writer->try_write(bytes_of("after")), RingResult::kOk);
  EXPECT_GE(ring.control()->writer.tail_intent.load(), 384u);
  std::vector<std::byte> out(r.max_record());
  std::size_t n = 0;
  EXPECT_EQ(r.try_read(out, &n), RingResult::kLapped);
  EXPECT_EQ(read_copy(r), "after");
  EXPECT_EQ(r.lost_records(), 8u);  // r2 .. r9; the aborted claim was never a record
}

TEST(BroadcastClaim, NewWriterKeepsADeadWritersClaimAnnounced) {
  Ring ring(lossy_options());
  const BroadcastRing::Claim c = ring.writer->try_claim(112);  // [0, 128), never committed
  ASSERT_EQ(c.result, RingResult::kOk);
  auto next = BroadcastRing::attach(ring.region.data(), ring.region.size());
  ASSERT_TRUE(next.ok()) << next.status();
  ASSERT_EQ(next->try_write(bytes_of("n")), RingResult::kOk);
  EXPECT_GE(ring.control()->writer.tail_intent.load(), 128u);
  BroadcastReader r = ring.lossy();
  EXPECT_EQ(next->try_write(bytes_of("m")), RingResult::kOk);
  EXPECT_EQ(read_copy(r), "m");
}

TEST(BroadcastClaim, LosslessClaimWaitsForTheSlowestReader) {
  Ring ring(lossless_options());
  BroadcastReader slow = ring.lossless(7);
  int written = 0;
  while (claim_write(*ring.writer, "m" + std::to_string(written), 8) == RingResult::kOk) ++written;
  EXPECT_EQ(written, 10);  // 24-byte records in 256 bytes
  EXPECT_EQ(ring.writer->try_claim(8).result, RingResult::kFull);
  EXPECT_FALSE(ring.writer->has_claim());
  EXPECT_EQ(read_copy(slow), "m0");
  EXPECT_EQ(claim_write(*ring.writer, "m10", 8), RingResult::kOk);
}

TEST(BroadcastView, LossyViewIsInPlaceAndValidatedAtTheEnd) {
  Ring ring(lossy_options());
  BroadcastReader r = ring.lossy();
  std::span<const std::byte> v;
  EXPECT_EQ(r.try_view(&v), RingResult::kEmpty);
  ASSERT_EQ(ring.writer->try_write(bytes_of("one")), RingResult::kOk);
  ASSERT_EQ(claim_write(*ring.writer, "two"), RingResult::kOk);
  ASSERT_EQ(r.try_view(&v), RingResult::kOk);
  EXPECT_TRUE(ring.inside(v.data()));
  EXPECT_EQ(as_string(v), "one");
  std::vector<std::byte> out(r.max_record());
  std::size_t n = 0;
  EXPECT_EQ(r.try_read(out, &n), RingResult::kBusy);  // one view at a time
  EXPECT_EQ(r.try_view(&v), RingResult::kBusy);
  EXPECT_TRUE(r.has_view());
  EXPECT_EQ(r.finish_view(), RingResult::kOk);
  EXPECT_FALSE(r.has_view());
  EXPECT_EQ(r.finish_view(), RingResult::kOk);  // nothing out: no-op
  ASSERT_EQ(r.try_view(&v), RingResult::kOk);
  EXPECT_EQ(as_string(v), "two");
  EXPECT_EQ(r.finish_view(), RingResult::kOk);
  EXPECT_EQ(r.try_view(&v), RingResult::kEmpty);
  EXPECT_EQ(r.lost_records(), 0u);
}

TEST(BroadcastView, LossyViewOverwrittenWhileHeldIsReportedAndCountedLost) {
  Ring ring(lossy_options());
  BroadcastReader r = ring.lossy();
  ASSERT_EQ(ring.writer->try_write(bytes_of("held")), RingResult::kOk);
  std::span<const std::byte> v;
  ASSERT_EQ(r.try_view(&v), RingResult::kOk);
  for (int i = 0; i < 20; ++i) {
    ASSERT_EQ(ring.writer->try_write(bytes_of("w" + std::to_string(i))), RingResult::kOk);
  }
  EXPECT_EQ(r.finish_view(), RingResult::kLapped);
  EXPECT_EQ(r.lost_records(), 1u);
  EXPECT_EQ(r.try_view(&v), RingResult::kLapped);  // jumps to the latest record
  ASSERT_EQ(r.try_view(&v), RingResult::kOk);
  EXPECT_EQ(as_string(v), "w19");
  EXPECT_EQ(r.finish_view(), RingResult::kOk);
  EXPECT_EQ(r.lost_records(), 1u + 19u);  // the held record, then w0 .. w18
}

TEST(BroadcastView, LosslessViewHoldsTheWriterUntilFinished) {
  Ring ring(lossless_options());
  BroadcastReader r = ring.lossless(5);
  int written = 0;
  while (ring.writer->try_write(bytes_of("m" + std::to_string(written))) == RingResult::kOk) ++written;
  ASSERT_EQ(written, 10);
  std::span<const std::byte> v;
  ASSERT_EQ(r.try_view(&v), RingResult::kOk);
  EXPECT_EQ(as_string(v), "m0");
  EXPECT_EQ(ring.writer->try_write(bytes_of("z")), RingResult::kFull);  // m0 still viewed
  EXPECT_EQ(as_string(v), "m0");
  EXPECT_EQ(r.finish_view(), RingResult::kOk);
  EXPECT_EQ(ring.writer->try_write(bytes_of("m10")), RingResult::kOk);
  for (int i = 1; i <= 10; ++i) {
    ASSERT_EQ(r.try_view(&v), RingResult::kOk);
    EXPECT_EQ(as_string(v), "m" + std::to_string(i));
    ASSERT_EQ(r.finish_view(), RingResult::kOk);
  }
  // Evicted while viewing: the record may be overwritten, so the view is not vouched for.
  ASSERT_EQ(ring.writer->try_write(bytes_of("last")), RingResult::kOk);
  ASSERT_EQ(r.try_view(&v), RingResult::kOk);
  ASSERT_EQ(ring.writer->evict_reader(r.slot_index(), 5), RingResult::kOk);
  EXPECT_EQ(r.finish_view(), RingResult::kEvicted);
  EXPECT_EQ(r.try_view(&v), RingResult::kEvicted);
}

// Threads (TSan build): lossless claim/commit against lossless views; every record arrives intact
// and in order, and the writer never overwrites a record being viewed.
TEST(BroadcastZeroCopyStress, LosslessClaimsAndViewsAcrossThreads) {
  Ring ring({4096, 0, true, 4, 0});
  BroadcastReader a = ring.lossless(1);
  BroadcastReader b = ring.lossless(2);
  constexpr std::uint64_t kRecords = 200'000;
  std::thread writer([&] {
    for (std::uint64_t i = 0; i < kRecords;) {
      const std::size_t len = 8 + (i % 7) * 8;
      const BroadcastRing::Claim c = ring.writer->try_claim(len);
      if (c.result == RingResult::kFull) {
        std::this_thread::yield();
        continue;
      }
      ASSERT_EQ(c.result, RingResult::kOk);
      for (std::size_t w = 0; w < len; w += 8) std::memcpy(c.buffer.data() + w, &i, 8);
      ASSERT_EQ(ring.writer->commit(len), RingResult::kOk);
      ++i;
    }
  });
  auto consume = [&](BroadcastReader& r, std::uint64_t* bad) {
    for (std::uint64_t expect = 0; expect < kRecords;) {
      std::span<const std::byte> v;
      const RingResult res = r.try_view(&v);
      if (res == RingResult::kEmpty) {
        std::this_thread::yield();
        continue;
      }
      ASSERT_EQ(res, RingResult::kOk);
      if (v.size() != 8 + (expect % 7) * 8) ++*bad;
      for (std::size_t w = 0; w < v.size(); w += 8) {
        std::uint64_t x = 0;
        std::memcpy(&x, v.data() + w, 8);
        if (x != expect) ++*bad;
      }
      ASSERT_EQ(r.finish_view(), RingResult::kOk);
      ++expect;
    }
  };
  std::uint64_t bad_a = 0;
  std::uint64_t bad_b = 0;
  std::thread ta([&] { consume(a, &bad_a); });
  consume(b, &bad_b);
  ta.join();
  writer.join();
  EXPECT_EQ(bad_a, 0u);
  EXPECT_EQ(bad_b, 0u);
  EXPECT_EQ(a.lost_records() + b.lost_records(), 0u);
}

}  // namespace
}  // namespace shmring
