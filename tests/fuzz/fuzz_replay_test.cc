// Runs the fuzz bodies in the normal build: on seed inputs built here (valid rings of every kind,
// then mutated byte by byte) and on any files in tests/fuzz/corpus/<target>/.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <vector>

#include "channel_fuzz_targets.h"
#include "fuzz_targets.h"
#include "service_fuzz_targets.h"
#include "shmring/core/shared_memory.h"
#include "test_support.h"
#include "shmring/queue/broadcast_layout.h"
#include "shmring/queue/broadcast_writer.h"
#include "shmring/queue/frame_pool.h"
#include "shmring/queue/mpmc_queue.h"
#include "shmring/queue/spsc_ring.h"
#include "shmring/transport/service.h"

namespace shmring {
namespace {

std::vector<std::vector<std::uint8_t>> seed_rings() {
  std::vector<std::vector<std::uint8_t>> seeds;
  auto make = [&](std::size_t bytes, auto create_and_fill) {
    std::vector<std::uint8_t> buffer(bytes + kRegionAlignment);
    void* p = buffer.data();
    std::size_t space = buffer.size();
    std::align(kRegionAlignment, bytes, p, space);
    create_and_fill(p, bytes);
    auto* b = static_cast<std::uint8_t*>(p);
    seeds.emplace_back(b, b + bytes);
  };
  const std::byte payload[40] = {};
  make(SpscRing::required_bytes({256, 0, 0}), [&](void* p, std::size_t n) {
    auto r = SpscRing::create(p, n, {256, 0, 0});
    for (int i = 0; i < 9; ++i) r->try_write(std::span(payload, i * 4));
  });
  make(MpmcQueue<>::required_bytes({4, 24, 0}), [&](void* p, std::size_t n) {
    auto q = MpmcQueue<>::create(p, n, {4, 24, 0});
    q->try_write(std::span(payload, 10));
  });
  // Broadcast: one publisher, lossy, records of every size; then two publishers with a lossless
  // reader, a history, a claim left open and an abandoned one in the gap table.
  BroadcastOptions one;
  one.capacity = 512;
  one.max_readers = 0;
  make(BroadcastLayout::required_bytes(one), [&](void* p, std::size_t n) {
    if (!BroadcastLayout::create(p, n, one).ok()) return;
    auto w = BroadcastWriter::attach(p, n, 1);
    for (int i = 0; i < 12; ++i) w->try_write(std::span(payload, i * 3));
  });
  BroadcastOptions two;
  two.capacity = 1024;
  two.max_readers = 2;
  two.max_publishers = 2;
  two.history = 2;
  make(BroadcastLayout::required_bytes(two), [&](void* p, std::size_t n) {
    if (!BroadcastLayout::create(p, n, two).ok()) return;
    auto a = BroadcastWriter::attach(p, n, 1);
    auto b = BroadcastWriter::attach(p, n, 2);
    for (int i = 0; i < 9; ++i) (i % 2 == 0 ? a : b)->try_write(std::span(payload, i * 4));
    const BroadcastWriter::Claim c = a->try_claim(20);  // left open, as a dead writer leaves it
    (void)c;
    b->try_write(std::span(payload, 7));
    append_broadcast_gap(*static_cast<BroadcastControl*>(p), 3, 192, 256, kGapAbandoned);
  });
  make(FramePool::required_bytes({3, 64}), [&](void* p, std::size_t n) {
    auto pool = FramePool::create(p, n, {3, 64});
    FramePool::Claim c = pool->try_claim(0, [](std::uint64_t) { return false; });
    pool->publish(c, 40, 1);
  });
  return seeds;
}

void replay_corpus(const char* target, void (*body)(const std::uint8_t*, std::size_t)) {
  const std::filesystem::path dir = std::filesystem::path(SHMRING_FUZZ_CORPUS_DIR) / target;
  if (!std::filesystem::exists(dir)) return;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    std::ifstream in(entry.path(), std::ios::binary);
    std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)), {});
    body(bytes.data(), bytes.size());
  }
}

TEST(FuzzReplay, HeaderValidationOnMutatedRings) {
  // SHMRING_WRITE_FUZZ_SEEDS=<dir>: also write the seed rings there (to refresh the corpus).
  if (const char* dir = std::getenv("SHMRING_WRITE_FUZZ_SEEDS")) {
    int i = 0;
    for (const auto& seed : seed_rings()) {
      std::ofstream out(std::filesystem::path(dir) / ("seed_ring_" + std::to_string(i++)),
                        std::ios::binary);
      out.write(reinterpret_cast<const char*>(seed.data()), static_cast<std::streamsize>(seed.size()));
    }
  }
  std::mt19937_64 rng(7);
  for (const auto& seed : seed_rings()) {
    fuzz::attach_any_ring(seed.data(), seed.size());
    for (int i = 0; i < 3000; ++i) {
      std::vector<std::uint8_t> m = seed;
      const int flips = 1 + static_cast<int>(rng() % 4);
      for (int f = 0; f < flips; ++f) {
        const std::size_t at = rng() % (rng() % 2 ? 160 : m.size());  // mostly the header
        m[at] = static_cast<std::uint8_t>(rng());
      }
      if (rng() % 8 == 0) m.resize(rng() % m.size());
      fuzz::attach_any_ring(m.data(), m.size());
    }
  }
  replay_corpus("header_fuzzer", fuzz::attach_any_ring);
}

TEST(FuzzReplay, RecordScanningOnRandomBytes) {
  std::mt19937_64 rng(11);
  for (int i = 0; i < 3000; ++i) {
    std::vector<std::uint8_t> input(1 + rng() % 700);
    for (auto& b : input) b = static_cast<std::uint8_t>(rng() % 3 == 0 ? rng() : rng() % 8);
    fuzz::scan_records(input.data(), input.size());
  }
  replay_corpus("record_fuzzer", fuzz::scan_records);
}

TEST(FuzzReplay, SegmentHeadersFromMutatedValidOnes) {
  // A valid segment (header page included) as the seed, then mutated: mostly the header.
  SharedMemory seed_memory(testing::unique_key("fuzz_seed"));
  ASSERT_TRUE(seed_memory.create(256));
  const int fd = seed_memory.fd();
  std::vector<std::uint8_t> seed(4096);
  ASSERT_EQ(pread(fd, seed.data(), seed.size(), 0), static_cast<ssize_t>(seed.size()));
  seed_memory.detach();
  std::mt19937_64 rng(13);
  fuzz::segment_header(seed.data(), seed.size());
  for (int i = 0; i < 3000; ++i) {
    std::vector<std::uint8_t> m = seed;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) m[rng() % 400] = static_cast<std::uint8_t>(rng());
    if (rng() % 8 == 0) m.resize(rng() % m.size());
    fuzz::segment_header(m.data(), m.size());
  }
  replay_corpus("segment_fuzzer", fuzz::segment_header);
}

TEST(FuzzReplay, ChannelControlBlockUnderHostileBytes) {
  std::mt19937_64 rng(17);
  for (int i = 0; i < 600; ++i) {
    // Mostly small values (counts, states, roles, tickets near the real ones), sometimes anything.
    std::vector<std::uint8_t> input(1 + rng() % 1200);
    for (auto& b : input) b = static_cast<std::uint8_t>(rng() % 4 == 0 ? rng() : rng() % 5);
    input[0] = static_cast<std::uint8_t>(i % 3);
    fuzz::channel_control_block(input.data(), input.size());
  }
  replay_corpus("channel_fuzzer", fuzz::channel_control_block);
}

TEST(FuzzReplay, ServiceRegionUnderHostileBytes) {
  std::mt19937_64 rng(19);
  for (int i = 0; i < 800; ++i) {
    // Small values mostly (indexes, phases, generations and counts near the real ones).
    std::vector<std::uint8_t> input(1 + rng() % 2000);
    for (auto& b : input) b = static_cast<std::uint8_t>(rng() % 4 == 0 ? rng() : rng() % 6);
    input[0] = static_cast<std::uint8_t>(i % 4);
    fuzz::service_region(input.data(), input.size());
  }
  replay_corpus("service_fuzzer", fuzz::service_region);
  // The body ran against a live service (it made one), which is whole again afterwards.
  auto stats = read_service_stats("t_fuzz_" + std::to_string(getpid()) + "_service");
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->servers, 1u);
  EXPECT_EQ(stats->clients, 1u);
  EXPECT_EQ(stats->held, 1u);
}

}  // namespace
}  // namespace shmring
