// Pins the in-segment header layout to its version number: if this fails, you changed the layout;
// bump kSegmentLayoutVersion and update the expected values together.
#include <cstddef>

#include "gtest/gtest.h"
#include "shmring/core/segment_header.h"

namespace shmring {
namespace {

TEST(SegmentLayoutTest, HeaderLayoutMatchesItsVersion) {
  ASSERT_EQ(kSegmentLayoutVersion, 2u) << "layout version changed: update the pins below";
  EXPECT_EQ(kSegmentMagic, 0x31474553524d4853ULL);
  EXPECT_EQ(kSegmentHeaderSize, 4096u);
  EXPECT_EQ(sizeof(SegmentHeader), 336u);
  EXPECT_EQ(offsetof(SegmentHeader, magic), 0u);
  EXPECT_EQ(offsetof(SegmentHeader, state), 8u);
  EXPECT_EQ(offsetof(SegmentHeader, layout_version), 12u);
  EXPECT_EQ(offsetof(SegmentHeader, header_size), 16u);
  EXPECT_EQ(offsetof(SegmentHeader, user_size), 24u);
  EXPECT_EQ(offsetof(SegmentHeader, lock_semaphore_id), 32u);
  EXPECT_EQ(offsetof(SegmentHeader, permissions), 36u);
  EXPECT_EQ(offsetof(SegmentHeader, lock_semaphore_ctime), 40u);
  EXPECT_EQ(offsetof(SegmentHeader, creator_pid), 48u);
  EXPECT_EQ(offsetof(SegmentHeader, key_length), 52u);
  EXPECT_EQ(offsetof(SegmentHeader, creator_start_time), 56u);
  EXPECT_EQ(offsetof(SegmentHeader, created_unix_ns), 64u);
  EXPECT_EQ(offsetof(SegmentHeader, key), 72u);
  EXPECT_EQ(offsetof(SegmentHeader, lock_semaphore_key), 328u);
}

TEST(SegmentLayoutTest, HeaderValidationRejectsGarbage) {
  alignas(8) unsigned char page[kSegmentHeaderSize] = {};
  SegmentInfo info;
  EXPECT_TRUE(absl::IsUnavailable(read_segment_header(page, sizeof page + 100, &info)));
  EXPECT_TRUE(absl::IsDataLoss(read_segment_header(page, 10, &info)));
  EXPECT_TRUE(absl::IsDataLoss(read_segment_header(nullptr, 1 << 20, &info)));
  auto* header = reinterpret_cast<SegmentHeader*>(page);
  header->state.store(1);
  EXPECT_TRUE(absl::IsDataLoss(read_segment_header(page, sizeof page + 100, &info)));  // magic
  header->magic = kSegmentMagic;
  header->layout_version = 7;
  EXPECT_TRUE(absl::IsFailedPrecondition(read_segment_header(page, sizeof page + 100, &info)));
  header->layout_version = kSegmentLayoutVersion;
  header->header_size = kSegmentHeaderSize;
  header->user_size = 101;
  EXPECT_TRUE(absl::IsDataLoss(read_segment_header(page, sizeof page + 100, &info)));
  header->user_size = 100;
  header->key_length = 100000;  // clamped, never read past the key field
  ASSERT_TRUE(read_segment_header(page, sizeof page + 100, &info).ok());
  EXPECT_EQ(info.key.size(), kSegmentKeyCapacity);
  header->state.store(77);
  EXPECT_TRUE(absl::IsDataLoss(read_segment_header(page, sizeof page + 100, &info)));
}

}  // namespace
}  // namespace shmring
