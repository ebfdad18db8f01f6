// Runs the fuzz bodies in the normal build: on seed inputs built here (valid rings of every kind,
// then mutated byte by byte) and on any files in tests/fuzz/corpus/<target>/.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <vector>

#include "fuzz_targets.h"
#include "shmring/queue/broadcast_ring.h"
#include "shmring/queue/mpmc_queue.h"
#include "shmring/queue/spsc_ring.h"

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
  make(BroadcastRing::required_bytes({256, 0, false, 0, 0}), [&](void* p, std::size_t n) {
    auto w = BroadcastRing::create(p, n, {256, 0, false, 0, 0});
    for (int i = 0; i < 12; ++i) w->try_write(std::span(payload, i * 3));
  });
  make(BroadcastRing::required_bytes({256, 0, true, 2, 0}), [&](void* p, std::size_t n) {
    auto w = BroadcastRing::create(p, n, {256, 0, true, 2, 0});
    w->try_write(std::span(payload, 5));
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

}  // namespace
}  // namespace shmring
