// FramePool: layout and validation of what an attacher reads, the writer's claim/publish/abort,
// the reader's take with pins, and hostile bytes (never a crash, never an out-of-bounds span).
#include "shmring/queue/frame_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

#include "ring_test_util.h"

namespace shmring {
namespace {

using testing::HeapRegion;

constexpr FramePool::Options kSmall{4, 10'000};

// One reader's pin word, as the transport keeps it in a peer slot.
struct Pin {
  std::atomic<std::uint64_t> word{0};
  auto pin() {
    return [this](std::uint64_t i) { word.store(i + 1, std::memory_order_seq_cst); };
  }
  auto unpin() {
    return [this] { word.store(0, std::memory_order_release); };
  }
  auto pinned() {
    return [this](std::uint64_t i) { return word.load(std::memory_order_seq_cst) == i + 1; };
  }
};

TEST(FramePoolTest, RequiredBytesRefusesOutOfRangeOptions) {
  EXPECT_EQ(FramePool::required_bytes({2, 100}), 0u);   // fewer than 3 buffers
  EXPECT_EQ(FramePool::required_bytes({65, 100}), 0u);  // more than 64
  EXPECT_EQ(FramePool::required_bytes({4, 0}), 0u);
  EXPECT_EQ(FramePool::required_bytes({4, kMaxFrameBytes + 1}), 0u);
  // Header, state and 4 slot blocks fit in one page; each buffer is rounded up to pages.
  EXPECT_EQ(FramePool::required_bytes(kSmall), 4096u + 4 * 12288u);
  HeapRegion region(4096);
  EXPECT_EQ(FramePool::create(region.data(), region.size(), {2, 100}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FramePool::create(region.data(), region.size(), kSmall).status().code(),
            absl::StatusCode::kInvalidArgument);  // region too small
}

TEST(FramePoolTest, PublishedFrameIsTakenInPlaceAndNumbered) {
  HeapRegion region(FramePool::required_bytes(kSmall));
  auto writer = FramePool::create(region.data(), region.size(), kSmall);
  ASSERT_TRUE(writer.ok()) << writer.status();
  auto reader = FramePool::attach(region.data(), region.size());
  ASSERT_TRUE(reader.ok()) << reader.status();
  EXPECT_EQ(reader->buffers(), 4u);
  EXPECT_EQ(reader->frame_bytes(), 10'000u);
  Pin pin;
  EXPECT_EQ(reader->try_take(0, pin.pin(), pin.unpin()).result, RingResult::kEmpty);

  FramePool::Claim claim = writer->try_claim(0, pin.pinned());
  ASSERT_EQ(claim.result, RingResult::kOk);
  ASSERT_EQ(claim.buffer.size(), 10'000u);
  EXPECT_EQ((claim.buffer.data() - region.bytes()) % kFramePage, 0);  // page aligned in the region
  std::memset(claim.buffer.data(), 0x5A, 777);
  writer->publish(claim, 777, 1);
  EXPECT_EQ(reader->latest_frame_number(), 1u);

  const FramePool::Frame frame = reader->try_take(0, pin.pin(), pin.unpin());
  ASSERT_EQ(frame.result, RingResult::kOk);
  EXPECT_EQ(frame.frame_number, 1u);
  EXPECT_EQ(frame.data.size(), 777u);
  EXPECT_EQ(frame.data.data(), claim.buffer.data());  // in place
  EXPECT_EQ(std::to_integer<int>(frame.data[776]), 0x5A);
  EXPECT_EQ(pin.word.load(), frame.index + 1u);  // pinned until the caller unpins
  // Nothing newer than frame 1.
  EXPECT_EQ(reader->try_take(1, pin.pin(), pin.unpin()).result, RingResult::kEmpty);
}

TEST(FramePoolTest, WriterNeverClaimsThePinnedOrTheLatestBuffer) {
  HeapRegion region(FramePool::required_bytes({3, 4096}));
  auto pool = FramePool::create(region.data(), region.size(), {3, 4096});
  ASSERT_TRUE(pool.ok());
  Pin a;
  Pin b;
  auto pinned = [&](std::uint64_t i) { return a.pinned()(i) || b.pinned()(i); };
  FramePool::Claim first = pool->try_claim(0, pinned);
  ASSERT_EQ(first.result, RingResult::kOk);
  pool->publish(first, 1, 1);
  ASSERT_EQ(pool->try_take(0, a.pin(), a.unpin()).index, first.index);  // reader a pins frame 1
  FramePool::Claim second = pool->try_claim(first.index, pinned);
  ASSERT_EQ(second.result, RingResult::kOk);
  EXPECT_NE(second.index, first.index);
  pool->publish(second, 1, 2);
  ASSERT_EQ(pool->try_take(1, b.pin(), b.unpin()).index, second.index);  // reader b pins frame 2
  FramePool::Claim third = pool->try_claim(second.index, pinned);
  ASSERT_EQ(third.result, RingResult::kOk);
  EXPECT_NE(third.index, first.index);
  EXPECT_NE(third.index, second.index);
  pool->publish(third, 1, 3);
  // Buffers: `third` is the latest, `first` and `second` are pinned: nothing to lend.
  EXPECT_EQ(pool->try_claim(third.index, pinned).result, RingResult::kFull);
  // A claim that is given up leaves its buffer free and holding no frame.
  a.unpin()();
  FramePool::Claim again = pool->try_claim(third.index, pinned);
  ASSERT_EQ(again.result, RingResult::kOk);
  EXPECT_EQ(again.index, first.index);
  pool->abort(again);
  EXPECT_EQ(pool->try_take(3, a.pin(), a.unpin()).result, RingResult::kEmpty);  // nothing newer
  EXPECT_EQ(pool->try_claim(third.index, pinned).index, first.index);
}

TEST(FramePoolTest, AttachRefusesHeadersThatDoNotAddUp) {
  const std::size_t bytes = FramePool::required_bytes(kSmall);
  HeapRegion region(bytes);
  EXPECT_EQ(FramePool::attach(region.data(), bytes).status().code(), absl::StatusCode::kUnavailable);
  ASSERT_TRUE(FramePool::create(region.data(), bytes, kSmall).ok());
  auto* header = static_cast<RingHeader*>(region.data());
  std::byte saved_header[sizeof(RingHeader)];
  std::memcpy(saved_header, static_cast<const void*>(header), sizeof saved_header);
  auto restore = [&] { std::memcpy(static_cast<void*>(header), saved_header, sizeof saved_header); };
  // A region too small for what the header says.
  EXPECT_EQ(FramePool::attach(region.data(), bytes - 1).status().code(), absl::StatusCode::kDataLoss);
  header->capacity = 2;  // fewer buffers than a pool can have
  EXPECT_EQ(FramePool::attach(region.data(), bytes).status().code(), absl::StatusCode::kDataLoss);
  restore();
  header->slot_stride = 4096;  // a stride that does not hold a frame
  EXPECT_EQ(FramePool::attach(region.data(), bytes).status().code(), absl::StatusCode::kDataLoss);
  restore();
  header->data_offset = 8192;
  EXPECT_EQ(FramePool::attach(region.data(), bytes).status().code(), absl::StatusCode::kDataLoss);
  restore();
  header->kind = static_cast<std::uint32_t>(RingKind::kMpmc);  // another ring's region
  EXPECT_EQ(FramePool::attach(region.data(), bytes).status().code(),
            absl::StatusCode::kFailedPrecondition);
  restore();
  EXPECT_TRUE(FramePool::attach(region.data(), bytes).ok());
}

TEST(FramePoolTest, HostileStateWordsAreCorruptNotACrash) {
  const std::size_t bytes = FramePool::required_bytes(kSmall);
  HeapRegion region(bytes);
  auto pool = FramePool::create(region.data(), bytes, kSmall);
  ASSERT_TRUE(pool.ok());
  auto* control = static_cast<FramePoolControl*>(region.data());
  auto* slots = reinterpret_cast<FrameSlot*>(region.bytes() + sizeof(FramePoolControl));
  Pin pin;
  control->state.frame_number.store(9);
  control->state.latest.store(1000);  // no such buffer
  EXPECT_EQ(pool->try_take(0, pin.pin(), pin.unpin()).result, RingResult::kCorrupt);
  control->state.latest.store(2);
  slots[1].frame_number.store(9);
  slots[1].length.store(kSmall.frame_bytes + 1);  // longer than a buffer
  EXPECT_EQ(pool->try_take(0, pin.pin(), pin.unpin()).result, RingResult::kCorrupt);
  EXPECT_EQ(pin.word.load(), 0u);  // not left pinned
  slots[1].frame_number.store(0);  // "a frame" that holds none
  slots[1].length.store(10);
  EXPECT_EQ(pool->try_take(0, pin.pin(), pin.unpin()).result, RingResult::kCorrupt);
  slots[1].seq.store(3);  // odd forever (a writer died writing it): the reader gives up for now
  EXPECT_EQ(pool->try_take(0, pin.pin(), pin.unpin()).result, RingResult::kEmpty);
  // The writer treats an odd sequence as a buffer that holds nothing and reuses it.
  control->state.latest.store(0);
  FramePool::Claim claim = pool->try_claim(0, pin.pinned());
  ASSERT_EQ(claim.result, RingResult::kOk);
  EXPECT_EQ(claim.seq % 2, 0u);
}

TEST(FramePoolTest, ConcurrentReaderNeverSeesATornFrame) {
  // One writer thread publishes frames whose every word is the frame number; a reader thread
  // takes the newest frame and checks every word while it holds the pin.
  constexpr FramePool::Options kOptions{3, 64 * 1024};
  HeapRegion region(FramePool::required_bytes(kOptions));
  auto writer = FramePool::create(region.data(), region.size(), kOptions);
  ASSERT_TRUE(writer.ok());
  auto reader = FramePool::attach(region.data(), region.size());
  ASSERT_TRUE(reader.ok());
  Pin pin;
  std::atomic<bool> done{false};
  std::atomic<std::uint64_t> torn{0};
  std::atomic<std::uint64_t> taken{0};
  std::thread reading([&] {
    std::uint64_t last = 0;
    while (!done.load(std::memory_order_acquire)) {
      const FramePool::Frame f = reader->try_take(last, pin.pin(), pin.unpin());
      if (f.result != RingResult::kOk) continue;
      const auto* words = reinterpret_cast<const std::atomic<std::uint64_t>*>(f.data.data());
      for (std::size_t i = 0; i < f.data.size() / 8; ++i) {
        if (words[i].load(std::memory_order_relaxed) != f.frame_number) ++torn;
      }
      last = f.frame_number;
      ++taken;
      pin.unpin()();
    }
  });
  std::uint64_t after = 0;
  for (std::uint64_t n = 1; n <= 20'000; ++n) {
    FramePool::Claim c;
    do {
      c = writer->try_claim(after, pin.pinned());
    } while (c.result != RingResult::kOk);
    auto* words = reinterpret_cast<std::atomic<std::uint64_t>*>(c.buffer.data());
    for (std::size_t i = 0; i < c.buffer.size() / 8; ++i) words[i].store(n, std::memory_order_relaxed);
    writer->publish(c, c.buffer.size(), n);
    after = c.index;
  }
  done.store(true, std::memory_order_release);
  reading.join();
  EXPECT_EQ(torn.load(), 0u);
  EXPECT_GT(taken.load(), 0u);
}

}  // namespace
}  // namespace shmring
