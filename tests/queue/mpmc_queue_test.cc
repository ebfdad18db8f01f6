#include "shmring/queue/mpmc_queue.h"

#include <gtest/gtest.h>

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
  explicit Fixture(MpmcQueue<>::Options o = {8, 24, 0})
      : options(o), region(MpmcQueue<>::required_bytes(o)) {
    auto created = MpmcQueue<>::create(region.data(), region.size(), options);
    EXPECT_TRUE(created.ok()) << created.status();
    queue.emplace(std::move(*created));
  }
  std::optional<std::string> read_one() {
    std::array<std::byte, 64> out{};
    std::size_t n = 0;
    const RingResult r = queue->try_read(out, &n);
    if (r != RingResult::kOk) return std::nullopt;
    return std::string(reinterpret_cast<const char*>(out.data()), n);
  }
  MpmcQueue<>::Options options;
  HeapRegion region;
  std::optional<MpmcQueue<>> queue;
};

TEST(MpmcQueue, EmptyOneManyFull) {
  Fixture f;
  EXPECT_EQ(f.read_one(), std::nullopt);
  ASSERT_EQ(f.queue->try_write(bytes_of("one")), RingResult::kOk);
  EXPECT_EQ(f.queue->size_approx(), 1u);
  EXPECT_EQ(f.read_one(), "one");
  for (int i = 0; i < 8; ++i) ASSERT_EQ(f.queue->try_write(bytes_of(std::to_string(i))), RingResult::kOk);
  EXPECT_EQ(f.queue->try_write(bytes_of("x")), RingResult::kFull);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(f.read_one(), std::to_string(i));
  EXPECT_EQ(f.read_one(), std::nullopt);
  for (int lap = 0; lap < 100; ++lap) {
    for (int i = 0; i < 5; ++i) ASSERT_EQ(f.queue->try_write(bytes_of(std::to_string(lap * 5 + i))), RingResult::kOk);
    for (int i = 0; i < 5; ++i) EXPECT_EQ(f.read_one(), std::to_string(lap * 5 + i));
  }
}

TEST(MpmcQueue, ZeroByteAndSlotSizeItems_TooLargeChangesNothing) {
  Fixture f;
  ASSERT_EQ(f.queue->try_write({}), RingResult::kOk);
  const std::string max(24, 'm');
  ASSERT_EQ(f.queue->try_write(bytes_of(max)), RingResult::kOk);
  const std::vector<std::byte> before = f.region.snapshot();
  EXPECT_EQ(f.queue->try_write(bytes_of(std::string(25, 't'))), RingResult::kTooLarge);
  std::array<std::byte, 23> small{};
  std::size_t n = 0;
  EXPECT_EQ(f.queue->try_read(small, &n), RingResult::kTooLarge);  // the buffer must hold a slot
  EXPECT_EQ(f.region.snapshot(), before);
  EXPECT_EQ(f.read_one(), "");
  EXPECT_EQ(f.read_one(), max);
}

TEST(MpmcQueue, TwoPhaseClaimCommitAndAbort) {
  Fixture f;
  MpmcQueue<>::Claim a = f.queue->try_claim();
  MpmcQueue<>::Claim b = f.queue->try_claim();
  ASSERT_EQ(a.result, RingResult::kOk);
  ASSERT_EQ(b.result, RingResult::kOk);
  EXPECT_EQ(b.ticket, a.ticket + 1);
  EXPECT_EQ(a.buffer.size(), 24u);
  std::memcpy(b.buffer.data(), "bee", 3);
  ASSERT_EQ(f.queue->commit(b, 3), RingResult::kOk);
  EXPECT_EQ(f.read_one(), std::nullopt);  // FIFO: a is not committed yet
  ASSERT_EQ(f.queue->abort(a), RingResult::kOk);
  EXPECT_EQ(f.read_one(), "bee");  // the aborted slot is passed
  EXPECT_EQ(f.queue->aborted(), 1u);
  EXPECT_EQ(f.queue->commit(a, 0), RingResult::kFenced);  // a dead claim cannot come back
}

TEST(MpmcQueue, SkipStalledProducer_LateCommitIsFenced) {
  Fixture f;
  ASSERT_EQ(f.queue->try_write(bytes_of("before")), RingResult::kOk);
  MpmcQueue<>::Claim dead = f.queue->try_claim();  // "dies" holding the claim
  ASSERT_EQ(dead.result, RingResult::kOk);
  ASSERT_EQ(f.queue->try_write(bytes_of("after")), RingResult::kOk);
  EXPECT_EQ(f.queue->stalled_producer_ticket(), std::nullopt);  // "before" is readable first
  EXPECT_EQ(f.read_one(), "before");
  EXPECT_EQ(f.read_one(), std::nullopt);  // blocked behind the dead claim
  ASSERT_EQ(f.queue->stalled_producer_ticket(), dead.ticket);
  EXPECT_EQ(f.queue->skip_stalled(dead.ticket + 5), RingResult::kBusy);  // not claimed yet
  EXPECT_EQ(f.queue->skip_stalled(dead.ticket + 1), RingResult::kBusy);  // committed
  ASSERT_EQ(f.queue->skip_stalled(dead.ticket), RingResult::kOk);
  EXPECT_EQ(f.queue->skip_stalled(dead.ticket), RingResult::kBusy);  // once only
  EXPECT_EQ(f.queue->skipped(), 1u);
  EXPECT_EQ(f.read_one(), "after");
  EXPECT_EQ(f.queue->commit(dead, 3), RingResult::kFenced);
  EXPECT_EQ(f.read_one(), std::nullopt);
  // The queue keeps working for many laps.
  for (int i = 0; i < 100; ++i) {
    ASSERT_EQ(f.queue->try_write(bytes_of(std::to_string(i))), RingResult::kOk);
    ASSERT_EQ(f.read_one(), std::to_string(i));
  }
}

TEST(MpmcQueue, ForceReleaseDeadConsumer_SlowConsumerIsFenced) {
  Fixture f;  // 8 slots
  for (int i = 0; i < 8; ++i) ASSERT_EQ(f.queue->try_write(bytes_of(std::to_string(i))), RingResult::kOk);
  MpmcQueue<>::Claim held = f.queue->try_claim_read();  // a consumer "dies" holding item 0
  ASSERT_EQ(held.result, RingResult::kOk);
  for (int i = 1; i < 8; ++i) EXPECT_EQ(f.read_one(), std::to_string(i));
  EXPECT_EQ(f.queue->try_write(bytes_of("n")), RingResult::kFull);  // ticket 8 is the held slot
  ASSERT_EQ(f.queue->stalled_consumer_ticket(), held.ticket);
  EXPECT_EQ(f.queue->stalled_producer_ticket(), std::nullopt);
  EXPECT_EQ(f.queue->force_release(held.ticket + 8), RingResult::kBusy);  // not claimed by a reader
  ASSERT_EQ(f.queue->force_release(held.ticket), RingResult::kOk);
  EXPECT_EQ(f.queue->force_release(held.ticket), RingResult::kBusy);
  EXPECT_EQ(f.queue->force_released(), 1u);
  for (int i = 0; i < 8; ++i) ASSERT_EQ(f.queue->try_write(bytes_of("n")), RingResult::kOk);
  EXPECT_EQ(f.queue->release(held), RingResult::kFenced);  // the slow consumer learns it lost
  for (int i = 0; i < 8; ++i) EXPECT_EQ(f.read_one(), "n");
  EXPECT_EQ(f.read_one(), std::nullopt);
}

TEST(MpmcQueue, TicketsAcrossTheWrapOf64Bits) {
  Fixture f({8, 24, ~std::uint64_t{0} - 3 * 8 + 1});
  std::uint64_t written = 0;
  std::uint64_t read = 0;
  for (int round = 0; round < 100; ++round) {
    for (int i = 0; i < 3; ++i) {
      if (f.queue->try_write(bytes_of(std::to_string(written))) == RingResult::kOk) ++written;
    }
    for (int i = 0; i < 2 + round % 2; ++i) {
      if (auto s = f.read_one()) {
        EXPECT_EQ(*s, std::to_string(read++));
      }
    }
  }
  while (auto s = f.read_one()) EXPECT_EQ(*s, std::to_string(read++));
  EXPECT_EQ(read, written);
  EXPECT_LT(f.queue->enqueue_position_approx(), 1000u);
  // Recovery across the wrap too.
  Fixture g({4, 8, ~std::uint64_t{0}});
  MpmcQueue<>::Claim dead = g.queue->try_claim();
  ASSERT_EQ(dead.ticket, ~std::uint64_t{0});
  ASSERT_EQ(g.queue->try_write(bytes_of("x")), RingResult::kOk);
  ASSERT_EQ(g.queue->skip_stalled(dead.ticket), RingResult::kOk);
  EXPECT_EQ(g.read_one(), "x");
}

TEST(MpmcQueue, TypedQueue) {
  struct Item {
    std::uint64_t a;
    double b;
  };
  HeapRegion region(MpmcQueue<Item>::required_bytes({16, 0}));
  auto q = MpmcQueue<Item>::create(region.data(), region.size(), {16, 0});
  ASSERT_TRUE(q.ok()) << q.status();
  for (int i = 0; i < 16; ++i) ASSERT_EQ(q->try_push({std::uint64_t(i), i * 0.5}), RingResult::kOk);
  EXPECT_EQ(q->try_push({0, 0}), RingResult::kFull);
  Item item{};
  for (int i = 0; i < 16; ++i) {
    ASSERT_EQ(q->try_pop(item), RingResult::kOk);
    EXPECT_EQ(item.a, std::uint64_t(i));
    EXPECT_EQ(item.b, i * 0.5);
  }
  EXPECT_EQ(q->try_pop(item), RingResult::kEmpty);
  EXPECT_TRUE(MpmcQueue<Item>::attach(region.data(), region.size()).ok());
  EXPECT_EQ(MpmcQueue<std::uint32_t>::attach(region.data(), region.size()).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(MpmcQueueAttach, ErrorCodes) {
  {
    HeapRegion zero(4096);
    EXPECT_EQ(MpmcQueue<>::attach(zero.data(), zero.size()).status().code(), absl::StatusCode::kUnavailable);
  }
  {
    Fixture f;
    EXPECT_EQ(MpmcQueue<>::attach(f.region.data(), f.region.size() - 1).status().code(),
              absl::StatusCode::kDataLoss);
    static_cast<RingHeader*>(f.region.data())->version.store(2);
    EXPECT_EQ(MpmcQueue<>::attach(f.region.data(), f.region.size()).status().code(),
              absl::StatusCode::kFailedPrecondition);
  }
  const std::pair<const char*, void (*)(RingHeader*)> corruptions[] = {
      {"stride", [](RingHeader* h) { h->slot_stride = 8; }},
      {"slot size", [](RingHeader* h) { h->max_record = 0; }},
      {"capacity", [](RingHeader* h) { h->capacity = 3; }},
      {"capacity 1", [](RingHeader* h) { h->capacity = 1; }},
      {"capacity x stride overflow", [](RingHeader* h) {
         h->capacity = std::uint64_t{1} << 40; h->max_record = (1 << 30) - 16;
         h->slot_stride = std::uint64_t{1} << 30; }},
      {"data offset", [](RingHeader* h) { h->data_offset = 384; }},
      {"magic", [](RingHeader* h) { h->magic = 0; }},
  };
  for (const auto& [name, mutate] : corruptions) {
    Fixture f;
    mutate(static_cast<RingHeader*>(f.region.data()));
    EXPECT_EQ(MpmcQueue<>::attach(f.region.data(), f.region.size()).status().code(),
              absl::StatusCode::kDataLoss)
        << name;
  }
  Fixture spsc_sized;
  static_cast<RingHeader*>(spsc_sized.region.data())->kind = static_cast<std::uint32_t>(RingKind::kBroadcast);
  EXPECT_EQ(MpmcQueue<>::attach(spsc_sized.region.data(), spsc_sized.region.size()).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(MpmcQueueHostile, ScribbledSlotsAreClampedOrReported) {
  Fixture f;
  ASSERT_EQ(f.queue->try_write(bytes_of("abc")), RingResult::kOk);
  auto* slot0 = reinterpret_cast<MpmcSlotHeader*>(f.region.bytes() + sizeof(MpmcControl));
  slot0->length = 0xFFFFFFFF;  // clamped to the slot size
  MpmcQueue<>::Claim c = f.queue->try_claim_read();
  ASSERT_EQ(c.result, RingResult::kOk);
  EXPECT_EQ(c.buffer.size(), 24u);
  ASSERT_EQ(f.queue->release(c), RingResult::kOk);
  // A sequence from the future with an unmoved position: kCorrupt, not a spin.
  ASSERT_EQ(f.queue->try_write(bytes_of("def")), RingResult::kOk);
  auto* slot1 = reinterpret_cast<MpmcSlotHeader*>(f.region.bytes() + sizeof(MpmcControl) + 64);
  slot1->sequence.store(mpmc::free_seq(1000));
  EXPECT_EQ(f.read_one(), std::nullopt);
  std::array<std::byte, 64> out{};
  std::size_t n = 0;
  EXPECT_EQ(f.queue->try_read(out, &n), RingResult::kCorrupt);
  auto* slot2 = reinterpret_cast<MpmcSlotHeader*>(f.region.bytes() + sizeof(MpmcControl) + 128);
  slot2->sequence.store(mpmc::free_seq(1000));
  EXPECT_EQ(f.queue->try_write(bytes_of("x")), RingResult::kCorrupt);
}

}  // namespace
}  // namespace shmring
