// Several writers on one broadcast ring: one order for every reader, publisher ids and sequences,
// short commits and given-up claims, and the recovery of a writer that died holding a claim
// (BroadcastPublishers). Unit tests, one process; the thread and process storms are in
// ring_stress_test.cc and ring_multiprocess_test.cc.
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "ring_test_util.h"
#include "shmring/queue/broadcast_layout.h"
#include "shmring/queue/broadcast_publishers.h"
#include "shmring/queue/broadcast_reader.h"
#include "shmring/queue/broadcast_writer.h"

namespace shmring {
namespace {

using testing::bytes_of;
using testing::HeapRegion;

struct Ring {
  explicit Ring(std::uint32_t publishers, std::uint64_t capacity = 4096, std::uint32_t readers = 4)
      : region(BroadcastLayout::required_bytes(make(publishers, capacity, readers))) {
    const absl::Status s = BroadcastLayout::create(region.data(), region.size(), make(publishers, capacity, readers));
    EXPECT_TRUE(s.ok()) << s;
  }
  static BroadcastOptions make(std::uint32_t publishers, std::uint64_t capacity, std::uint32_t readers) {
    BroadcastOptions o;
    o.capacity = capacity;
    o.max_publishers = publishers;
    o.max_readers = readers;
    return o;
  }
  BroadcastWriter writer(std::uint64_t token) {
    auto w = BroadcastWriter::attach(region.data(), region.size(), token);
    EXPECT_TRUE(w.ok()) << w.status();
    return std::move(*w);
  }
  BroadcastReader reader(BroadcastStartAt start = {}) {
    auto r = BroadcastReader::attach(region.data(), region.size(), start);
    EXPECT_TRUE(r.ok()) << r.status();
    return std::move(*r);
  }
  BroadcastReader lossless(std::uint64_t token) {
    auto r = BroadcastReader::register_reader(region.data(), region.size(), token);
    EXPECT_TRUE(r.ok()) << r.status();
    return std::move(*r);
  }
  BroadcastPublishers admin() { return *BroadcastPublishers::attach(region.data(), region.size()); }
  BroadcastControl* control() { return static_cast<BroadcastControl*>(region.data()); }
  HeapRegion region;
};

struct Got {
  RingResult result = RingResult::kEmpty;
  std::string data;
  BroadcastRecordInfo info;
};

Got read(BroadcastReader& r) {
  std::vector<std::byte> out(r.max_record());
  Got g;
  g.result = r.try_read(out, &g.info);
  if (g.result == RingResult::kOk) g.data.assign(reinterpret_cast<const char*>(out.data()), g.info.bytes);
  return g;
}

RingResult write(BroadcastWriter& w, const std::string& s) { return w.try_write(bytes_of(s)); }

// Claims room for `claimed` bytes and fills in `text` (not committed).
bool claim_with(BroadcastWriter& w, const std::string& text, std::size_t claimed) {
  const BroadcastWriter::Claim c = w.try_claim(claimed);
  if (c.result != RingResult::kOk) return false;
  std::memcpy(c.buffer.data(), text.data(), text.size());
  return true;
}

TEST(BroadcastPublishers, SeveralWritersOneOrderEveryReader) {
  Ring ring(3);
  BroadcastReader a = ring.reader();
  BroadcastReader b = ring.reader();
  std::vector<BroadcastWriter> writers;
  for (std::uint64_t t = 1; t <= 3; ++t) writers.push_back(ring.writer(100 + t));
  std::set<std::uint32_t> ids;
  for (const BroadcastWriter& w : writers) ids.insert(w.id());
  EXPECT_EQ(ids.size(), 3u);
  EXPECT_EQ(ids.count(0), 0u);
  std::vector<std::string> order;
  for (int i = 0; i < 600; ++i) {
    BroadcastWriter& w = writers[(i * 7 + i / 5) % 3];
    const std::string text = std::to_string(w.id()) + ":" + std::to_string(w.published()) + std::string(i % 50, '+');
    ASSERT_EQ(write(w, text), RingResult::kOk);
    order.push_back(text);
    if (i % 4 == 3) {
      for (BroadcastReader* r : {&a, &b}) {
        for (int k = 3; k >= 0; --k) {
          const Got g = read(*r);
          ASSERT_EQ(g.result, RingResult::kOk);
          const std::size_t index = order.size() - 1 - k;
          EXPECT_EQ(g.data, order[index]);
          EXPECT_EQ(g.info.sequence, index);
          EXPECT_EQ(g.data, std::to_string(g.info.publisher) + ":" + std::to_string(g.info.publisher_sequence) +
                                std::string(index % 50, '+'));
        }
      }
    }
  }
  EXPECT_EQ(a.lost_records() + a.gaps_passed(), 0u);
}

TEST(BroadcastPublishers, SlotsRunOutAndDetachFreesOne) {
  Ring ring(2);
  BroadcastWriter a = ring.writer(1);
  BroadcastWriter b = ring.writer(2);
  EXPECT_EQ(BroadcastWriter::attach(ring.region.data(), ring.region.size(), 3).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(BroadcastWriter::attach(ring.region.data(), ring.region.size(), 0).status().code(),
            absl::StatusCode::kInvalidArgument);
  const std::uint32_t old_id = a.id();
  a.detach();
  EXPECT_EQ(write(a, "x"), RingResult::kBusy);
  a.detach();  // idempotent
  BroadcastWriter c = ring.writer(3);
  EXPECT_NE(c.id(), old_id);  // ids are not reused with the slot
  EXPECT_EQ(c.slot_index(), 0u);
  BroadcastPublishers admin = ring.admin();
  EXPECT_EQ(admin.slot(0).owner, 3u);
  EXPECT_EQ(admin.slot(0).id, c.id());
  EXPECT_EQ(admin.slot(1).owner, 2u);
}

TEST(BroadcastPublishers, OnePublisherShortCommitsAndAbortsLeaveNoTrace) {
  Ring ring(1, 1024);
  BroadcastWriter w = ring.writer(1);
  BroadcastReader r = ring.reader();
  ASSERT_TRUE(claim_with(w, "short", 400));
  ASSERT_EQ(w.commit(5), RingResult::kOk);
  EXPECT_EQ(w.claim_position_approx(), 64u);  // the unused 384 bytes given back
  ASSERT_TRUE(claim_with(w, "dropped", 200));
  w.abort();
  EXPECT_EQ(w.claim_position_approx(), 64u);
  EXPECT_EQ(w.claim_sequence_approx(), 1u);
  ASSERT_EQ(write(w, "next"), RingResult::kOk);
  EXPECT_EQ(read(r).data, "short");
  const Got next = read(r);
  EXPECT_EQ(next.data, "next");
  EXPECT_EQ(next.info.sequence, 1u);  // consecutive: the aborted claim used no number
  EXPECT_EQ(r.gaps_passed(), 0u);
  EXPECT_EQ(ring.control()->rare.gaps.load(), 0u);
}

TEST(BroadcastPublishers, SeveralPublishersFillShortCommitsAndVoidAbortedClaims) {
  Ring ring(2, 4096);
  BroadcastWriter a = ring.writer(1);
  BroadcastWriter b = ring.writer(2);
  BroadcastReader r = ring.reader();
  ASSERT_TRUE(claim_with(a, "short", 400));  // sequence 0
  ASSERT_EQ(write(b, "b0"), RingResult::kOk);  // sequence 1, after a's claim
  EXPECT_EQ(read(r).result, RingResult::kEmpty);  // waits at a's claim
  EXPECT_TRUE(r.stalled_on_claim());
  ASSERT_EQ(a.commit(5), RingResult::kOk);  // the rest of a's claim becomes filler
  ASSERT_TRUE(claim_with(a, "dropped", 100));  // sequence 2
  ASSERT_EQ(write(b, "b1"), RingResult::kOk);  // sequence 3
  a.abort();  // b claimed after: a void
  ASSERT_EQ(write(a, "a1"), RingResult::kOk);  // sequence 4
  const std::vector<std::pair<std::string, std::uint64_t>> expect = {{"short", 0}, {"b0", 1}, {"b1", 3}, {"a1", 4}};
  for (const auto& [text, sequence] : expect) {
    const Got g = read(r);
    ASSERT_EQ(g.result, RingResult::kOk) << text;
    EXPECT_EQ(g.data, text);
    EXPECT_EQ(g.info.sequence, sequence);
  }
  EXPECT_EQ(read(r).result, RingResult::kEmpty);
  EXPECT_EQ(r.lost_records(), 0u);
  EXPECT_EQ(r.gaps_passed(), 1u);
  EXPECT_EQ(ring.control()->rare.gaps.load(), 1u);
  EXPECT_EQ(ring.admin().abandoned(), 0u);
}

// A writer dies after its claim CAS and before its commit: readers wait at its claim until the
// recovery lists it; then they skip it (no loss), and its slot is free again.
TEST(BroadcastPublishers, DeadWritersClaimIsSkippedOnceRecovered) {
  Ring ring(2, 4096);
  BroadcastReader r = ring.reader();
  BroadcastReader late_joiner_from_history = ring.reader({BroadcastStart::kOldest});
  std::optional<BroadcastWriter> dying = ring.writer(1);
  BroadcastWriter survivor = ring.writer(2);
  ASSERT_EQ(write(survivor, "before"), RingResult::kOk);
  ASSERT_TRUE(claim_with(*dying, "never committed", 300));
  ASSERT_EQ(write(survivor, "after"), RingResult::kOk);
  EXPECT_EQ(read(r).data, "before");
  EXPECT_EQ(read(r).result, RingResult::kEmpty);
  EXPECT_TRUE(r.stalled_on_claim());
  dying.reset();  // "killed": its slot still says what it claimed
  BroadcastPublishers admin = ring.admin();
  // While its owner lives, nothing happens.
  BroadcastPublishers::Recovery none = admin.recover([](std::uint64_t) { return true; });
  EXPECT_EQ(none.freed + none.abandoned + none.deferred, 0u);
  const BroadcastPublishers::Recovery rec = admin.recover([](std::uint64_t token) { return token != 1; });
  EXPECT_EQ(rec.freed, 1u);
  EXPECT_EQ(rec.abandoned, 1u);
  EXPECT_EQ(admin.abandoned(), 1u);
  EXPECT_FALSE(admin.slot(0).taken());
  const Got g = read(r);
  EXPECT_EQ(g.data, "after");
  EXPECT_EQ(g.info.sequence, 2u);
  EXPECT_EQ(r.gaps_passed(), 1u);
  EXPECT_EQ(r.lost_records(), 0u);
  EXPECT_EQ(read(late_joiner_from_history).data, "before");
  EXPECT_EQ(read(late_joiner_from_history).data, "after");
  // A second recovery finds nothing more.
  const BroadcastPublishers::Recovery again = admin.recover([](std::uint64_t token) { return token != 1; });
  EXPECT_EQ(again.freed + again.abandoned, 0u);
  // The freed slot takes a new writer.
  BroadcastWriter next = ring.writer(3);
  ASSERT_EQ(write(next, "new"), RingResult::kOk);
  EXPECT_EQ(read(r).data, "new");
}

TEST(BroadcastPublishers, DeadWritersLastClaimEndsWhereTheClaimPairSays) {
  // One publisher: it dies mid-claim (also with a wrap filler on the way); the next recovery lists
  // [claim, claim pair) and the reader goes on with the next writer's records.
  for (const std::size_t before : {std::size_t{0}, std::size_t{6}}) {
    Ring ring(1, 1024);
    BroadcastReader r = ring.reader();
    {
      BroadcastWriter w = ring.writer(1);
      for (std::size_t i = 0; i < before; ++i) {
        ASSERT_EQ(write(w, std::string(100, 'x')), RingResult::kOk);  // 128 bytes each
        ASSERT_EQ(read(r).result, RingResult::kOk);
      }
      ASSERT_TRUE(claim_with(w, "lost", 300));  // 384 bytes: after 6, a filler to the end first
    }
    EXPECT_EQ(read(r).result, RingResult::kEmpty);
    const auto rec = ring.admin().recover([](std::uint64_t) { return false; });
    EXPECT_EQ(rec.abandoned, 1u);
    BroadcastWriter next = ring.writer(2);
    ASSERT_EQ(write(next, "resumed"), RingResult::kOk);
    const Got g = read(r);
    EXPECT_EQ(g.data, "resumed") << before;
    EXPECT_EQ(g.info.sequence, before + 1);
    EXPECT_EQ(r.lost_records(), 0u);
  }
}

TEST(BroadcastPublishers, RecoveryLeavesCommittedFailedAndLiveClaimsAlone) {
  Ring ring(3, 4096);
  BroadcastPublishers admin = ring.admin();
  BroadcastPublisherSlot* slots = reinterpret_cast<BroadcastPublisherSlot*>(ring.region.bytes() + sizeof(BroadcastControl));
  {
    // Died after committing, before clearing its note: nothing to skip.
    BroadcastWriter w = ring.writer(1);
    ASSERT_EQ(write(w, "done"), RingResult::kOk);
    slots[0].attempt_position.store(0);
    slots[0].attempt_sequence.store(0);
    slots[0].attempt_end.store(64);
  }
  {
    // Noted a claim whose CAS never happened (the pair never passed its sequence).
    BroadcastWriter w = ring.writer(2);
    slots[1].attempt_position.store(64);
    slots[1].attempt_sequence.store(1);
    slots[1].attempt_end.store(128);
  }
  const auto rec = admin.recover([](std::uint64_t token) { return token == 3; });
  EXPECT_EQ(rec.freed, 2u);
  EXPECT_EQ(rec.abandoned, 0u);
  EXPECT_EQ(ring.control()->rare.gaps.load(), 0u);
  // A dead writer noting the same claim as a live one: the live one may own it; wait.
  BroadcastWriter live = ring.writer(3);
  ASSERT_EQ(live.slot_index(), 0u);
  ASSERT_TRUE(claim_with(live, "mine", 10));
  slots[1].owner.store(9);
  slots[1].attempt_position.store(64);
  slots[1].attempt_sequence.store(1);
  slots[1].attempt_end.store(128);
  const auto deferred = admin.recover([](std::uint64_t token) { return token == 3; });
  EXPECT_EQ(deferred.deferred, 1u);
  EXPECT_EQ(deferred.abandoned, 0u);
  EXPECT_TRUE(admin.slot(1).taken());
  ASSERT_EQ(live.commit(4), RingResult::kOk);
  const auto settled = admin.recover([](std::uint64_t token) { return token == 3; });
  EXPECT_EQ(settled.freed, 1u);
  EXPECT_EQ(settled.abandoned, 0u);
}

TEST(BroadcastPublishers, TwoDeadWritersNotingOneClaimAreSettledByTheClaimAfterIt) {
  Ring ring(3, 4096);
  BroadcastReader r = ring.reader();
  BroadcastPublisherSlot* slots = reinterpret_cast<BroadcastPublisherSlot*>(ring.region.bytes() + sizeof(BroadcastControl));
  {
    BroadcastWriter a = ring.writer(1);
    BroadcastWriter b = ring.writer(2);
    ASSERT_TRUE(claim_with(a, "a", 100));  // [0, 128), sequence 0
    // b noted the same claim with another size (it lost the CAS to a, then died).
    b.detach();
    slots[1].owner.store(2);
    slots[1].attempt_position.store(0);
    slots[1].attempt_sequence.store(0);
    slots[1].attempt_end.store(64);
  }
  BroadcastWriter c = ring.writer(3);
  ASSERT_EQ(write(c, "c"), RingResult::kOk);  // sequence 1 at 128: says where a's claim ended
  ASSERT_EQ(write(c, "d"), RingResult::kOk);
  const auto rec = ring.admin().recover([](std::uint64_t token) { return token == 3; });
  EXPECT_EQ(rec.abandoned, 1u);
  EXPECT_EQ(rec.freed, 2u);
  EXPECT_EQ(read(r).data, "c");
  EXPECT_EQ(read(r).data, "d");
  EXPECT_EQ(r.lost_records(), 0u);
}

TEST(BroadcastPublishers, LappedReaderDoesNotCountGapsAsLost) {
  Ring ring(2, 1024);
  BroadcastWriter a = ring.writer(1);
  BroadcastWriter b = ring.writer(2);
  BroadcastReader r = ring.reader();
  ASSERT_EQ(write(a, "first"), RingResult::kOk);
  EXPECT_EQ(read(r).data, "first");
  int voids = 0;
  int messages = 0;
  for (int i = 0; i < 40; ++i) {
    ASSERT_TRUE(claim_with(a, "x", 8));
    ASSERT_EQ(write(b, "m"), RingResult::kOk);
    ++messages;
    if (i % 4 == 0) {
      a.abort();
      ++voids;
    } else {
      ASSERT_EQ(a.commit(1), RingResult::kOk);
      ++messages;
    }
  }
  EXPECT_EQ(read(r).result, RingResult::kLapped);
  const Got newest = read(r);
  ASSERT_EQ(newest.result, RingResult::kOk);
  EXPECT_EQ(newest.info.sequence, static_cast<std::uint64_t>(messages + voids));  // the newest one
  EXPECT_EQ(r.lost_records() + r.gaps_passed(), static_cast<std::uint64_t>(messages + voids - 1));
  EXPECT_EQ(r.gaps_passed(), static_cast<std::uint64_t>(voids));
}

TEST(BroadcastPublishers, LosslessReaderHoldsEveryWriterBack) {
  Ring ring(2, 1024);
  BroadcastWriter a = ring.writer(1);
  BroadcastWriter b = ring.writer(2);
  BroadcastReader slow = ring.lossless(50);
  int written = 0;
  for (;;) {
    BroadcastWriter& w = written % 2 == 0 ? a : b;
    if (write(w, "m" + std::to_string(written)) != RingResult::kOk) break;
    ++written;
  }
  EXPECT_EQ(written, 16);
  EXPECT_EQ(write(a, "no"), RingResult::kFull);
  EXPECT_EQ(write(b, "no"), RingResult::kFull);
  for (int i = 0; i < written; ++i) EXPECT_EQ(read(slow).data, "m" + std::to_string(i));
  EXPECT_EQ(write(b, "yes"), RingResult::kOk);
  EXPECT_EQ(read(slow).data, "yes");
}

}  // namespace
}  // namespace shmring
