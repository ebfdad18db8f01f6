// Where a broadcast reader starts (live, latest, the last n, the oldest; the anchors behind them)
// and each reader's own delivery (lossless and lossy readers on one ring). Unit tests.
#include <gtest/gtest.h>

#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "ring_test_util.h"
#include "shmring/queue/broadcast_layout.h"
#include "shmring/queue/broadcast_reader.h"
#include "shmring/queue/broadcast_writer.h"

namespace shmring {
namespace {

using testing::bytes_of;
using testing::HeapRegion;

struct Ring {
  explicit Ring(std::uint64_t capacity, std::uint64_t history = 0, std::uint32_t publishers = 1)
      : region(BroadcastLayout::required_bytes(make(capacity, history, publishers))) {
    const absl::Status s = BroadcastLayout::create(region.data(), region.size(), make(capacity, history, publishers));
    EXPECT_TRUE(s.ok()) << s;
    auto w = BroadcastWriter::attach(region.data(), region.size(), 1);
    EXPECT_TRUE(w.ok()) << w.status();
    writer.emplace(std::move(*w));
  }
  static BroadcastOptions make(std::uint64_t capacity, std::uint64_t history, std::uint32_t publishers) {
    BroadcastOptions o;
    o.capacity = capacity;
    o.history = history;
    o.max_publishers = publishers;
    return o;
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
  void publish(int from, int to) {
    for (int i = from; i < to; ++i) ASSERT_EQ(writer->try_write(bytes_of("m" + std::to_string(i))), RingResult::kOk);
  }
  HeapRegion region;
  std::optional<BroadcastWriter> writer;
};

std::string read(BroadcastReader& r) {
  std::vector<std::byte> out(r.max_record());
  BroadcastRecordInfo info;
  for (int laps = 0; laps < 4; ++laps) {
    const RingResult result = r.try_read(out, &info);
    if (result == RingResult::kLapped) continue;
    if (result != RingResult::kOk) return std::string("<") + std::string(to_string(result)) + ">";
    return std::string(reinterpret_cast<const char*>(out.data()), info.bytes);
  }
  return "<lapped>";
}

BroadcastStartAt history(std::uint64_t n) { return {BroadcastStart::kHistory, n}; }

TEST(BroadcastHistory, EveryStartOnARingThatHoldsEverything) {
  Ring ring(4096);
  ring.publish(0, 20);
  BroadcastReader live = ring.reader();
  BroadcastReader latest = ring.reader({BroadcastStart::kLatest});
  BroadcastReader last5 = ring.reader(history(5));
  BroadcastReader oldest = ring.reader({BroadcastStart::kOldest});
  BroadcastReader more = ring.reader(history(50));  // more than was ever published
  ring.publish(20, 21);
  EXPECT_EQ(read(live), "m20");
  EXPECT_EQ(read(latest), "m19");
  EXPECT_EQ(read(latest), "m20");
  for (int i = 15; i <= 20; ++i) EXPECT_EQ(read(last5), "m" + std::to_string(i));
  for (int i = 0; i <= 20; ++i) EXPECT_EQ(read(oldest), "m" + std::to_string(i));
  for (int i = 0; i <= 20; ++i) EXPECT_EQ(read(more), "m" + std::to_string(i));
  for (BroadcastReader* r : {&live, &latest, &last5, &oldest, &more}) {
    EXPECT_EQ(r->history_missed(), 0u);
    EXPECT_EQ(r->lost_records(), 0u);
    EXPECT_EQ(r->live_sequence(), 20u);
    EXPECT_EQ(read(*r), "<kEmpty>");
  }
}

TEST(BroadcastHistory, ReadersOpenedBeforeAnyWriterGetTheFirstMessage) {
  for (const BroadcastStartAt start : {BroadcastStartAt{}, BroadcastStartAt{BroadcastStart::kLatest},
                                       history(7), BroadcastStartAt{BroadcastStart::kOldest}}) {
    Ring ring(1024);
    BroadcastReader r = ring.reader(start);
    BroadcastReader l = ring.lossless(9, start);
    ring.publish(0, 2);
    EXPECT_EQ(read(r), "m0");
    EXPECT_EQ(read(r), "m1");
    EXPECT_EQ(read(l), "m0");
    EXPECT_EQ(read(l), "m1");
    EXPECT_EQ(r.history_missed() + l.history_missed(), 0u);
  }
}

TEST(BroadcastHistory, TheLastNAreNeverOverwrittenAndWhatIsGoneIsCounted) {
  // History 10 on a ring of 4096 bytes: a reader joining at any time gets exactly the last 10.
  Ring ring(4096, 10);
  // The last 10 and the anchor before them (up to 7 more) stay: 19 of the largest records and an
  // intent chunk fit the ring.
  EXPECT_LE(19 * broadcast_record_bytes(ring.writer->max_record()) + 256, 4096u);
  int published = 0;
  for (int round = 0; round < 40; ++round) {
    const int burst = 1 + (round * 37) % 90;
    for (int i = 0; i < burst; ++i, ++published) {
      const std::string text = "m" + std::to_string(published) + std::string((published * 13) % 150, '.');
      ASSERT_EQ(ring.writer->try_write(bytes_of(text)), RingResult::kOk);
    }
    BroadcastReader r = ring.reader(history(10));
    const int expect_from = std::max(0, published - 10);
    for (int i = expect_from; i < published; ++i) {
      const std::string got = read(r);
      ASSERT_EQ(got.substr(0, got.find('.')), "m" + std::to_string(i)) << round;
    }
    EXPECT_EQ(r.history_missed(), 0u);
    // Asking for more than the history promises: what is gone is counted, exactly.
    BroadcastReader greedy = ring.reader(history(100000));
    const std::uint64_t asked = std::min<std::uint64_t>(100000, published);
    std::uint64_t got = 0;
    while (read(greedy) != "<kEmpty>") ++got;
    EXPECT_EQ(got + greedy.history_missed(), asked) << round;
    EXPECT_GE(got, std::min<std::uint64_t>(10, published)) << round;
  }
}

TEST(BroadcastHistory, OldestAfterManyLapsStartsAtTheOldestAnchorStillThere) {
  Ring ring(1024);
  ring.publish(0, 1000);
  BroadcastReader oldest = ring.reader({BroadcastStart::kOldest});
  EXPECT_EQ(oldest.history_missed(), 0u);  // kOldest asks for whatever is there
  std::vector<std::string> got;
  for (std::string s = read(oldest); s != "<kEmpty>"; s = read(oldest)) got.push_back(s);
  ASSERT_FALSE(got.empty());
  EXPECT_EQ(got.back(), "m999");
  EXPECT_GE(got.size(), 8u);   // at least an anchor's worth of the 16 records a 1024-byte ring holds
  EXPECT_LE(got.size(), 16u);
  EXPECT_EQ(std::stoi(got.front().substr(1)) % 8, 0);  // an anchor
}

TEST(BroadcastHistory, StartWhileTheFirstClaimIsOpen) {
  // A reader opening while the very first record is claimed but not committed starts with it.
  Ring ring(1024);
  const BroadcastWriter::Claim c = ring.writer->try_claim(5);
  ASSERT_EQ(c.result, RingResult::kOk);
  BroadcastReader live = ring.reader();
  BroadcastReader latest = ring.reader({BroadcastStart::kLatest});
  std::memcpy(c.buffer.data(), "first", 5);
  ASSERT_EQ(ring.writer->commit(5), RingResult::kOk);
  EXPECT_EQ(read(live), "first");
  EXPECT_EQ(read(latest), "first");
}

TEST(BroadcastDelivery, LossyAndLosslessReadersOnOneRing) {
  Ring ring(1024);
  BroadcastReader recorder = ring.lossless(1);
  BroadcastReader display = ring.reader();
  int written = 0;
  while (ring.writer->try_write(bytes_of("m" + std::to_string(written))) == RingResult::kOk) ++written;
  EXPECT_EQ(written, 16);  // held back by the lossless reader only
  // The lossy display read nothing and holds nobody back; the recorder drains and frees the ring.
  for (int i = 0; i < 16; ++i) ASSERT_EQ(read(recorder), "m" + std::to_string(i));
  EXPECT_EQ(read(recorder), "<kEmpty>");
  for (int round = 0; round < 20; ++round) {
    for (int i = 0; i < 16; ++i, ++written) {
      ASSERT_EQ(ring.writer->try_write(bytes_of("m" + std::to_string(written))), RingResult::kOk);
    }
    for (int i = written - 16; i < written; ++i) ASSERT_EQ(read(recorder), "m" + std::to_string(i));
  }
  EXPECT_EQ(recorder.lost_records(), 0u);
  // The display was lapped: it jumps to the newest and knows exactly what it missed.
  EXPECT_EQ(read(display), "m" + std::to_string(written - 1));
  EXPECT_EQ(display.lost_records(), static_cast<std::uint64_t>(written - 1));
  EXPECT_EQ(display.lapped_count(), 1u);
}

TEST(BroadcastDelivery, LosslessReaderWithHistoryHoldsWritersFromItsStart) {
  Ring ring(4096, 20);
  ring.publish(0, 30);
  BroadcastReader r = ring.lossless(3, history(20));
  EXPECT_EQ(r.history_missed(), 0u);
  // From now on the writer may not overwrite m10 onwards.
  int written = 30;
  while (ring.writer->try_write(bytes_of("m" + std::to_string(written))) == RingResult::kOk) ++written;
  EXPECT_EQ(written, 10 + 4096 / 64);
  for (int i = 10; i < written; ++i) ASSERT_EQ(read(r), "m" + std::to_string(i));
  EXPECT_EQ(r.lost_records() + r.history_missed(), 0u);
}

}  // namespace
}  // namespace shmring
