// The MCAP fuzz body in the normal build (ctest McapFuzzTest): on the corpus in
// tests/fuzz/corpus/mcap_fuzzer/ (files shmring and the reference writer made), on every
// truncation of them, and on random mutations (bytes changed, ranges copied, lengths rewritten).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <vector>

#include "mcap_fuzz_target.h"

namespace {

std::vector<std::vector<std::uint8_t>> corpus() {
  std::vector<std::vector<std::uint8_t>> out;
  const std::filesystem::path dir = std::filesystem::path(SHMRING_FUZZ_CORPUS_DIR) / "mcap_fuzzer";
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    std::ifstream in(entry.path(), std::ios::binary);
    out.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  return out;
}

TEST(McapFuzz, CorpusAndEveryTruncation) {
  const auto files = corpus();
  ASSERT_GE(files.size(), 3u);
  for (const auto& f : files) {
    for (std::size_t n = 0; n <= f.size(); n += 1 + n / 64) shmring::fuzz::read_mcap(f.data(), n);
  }
}

TEST(McapFuzz, RandomMutations) {
  const auto files = corpus();
  std::mt19937_64 rng(27);
  const int rounds = std::getenv("SHMRING_MCAP_FUZZ_ROUNDS") ? std::atoi(std::getenv("SHMRING_MCAP_FUZZ_ROUNDS")) : 3000;
  for (int i = 0; i < rounds; ++i) {
    std::vector<std::uint8_t> f = files[rng() % files.size()];
    const int edits = 1 + static_cast<int>(rng() % 8);
    for (int e = 0; e < edits && !f.empty(); ++e) {
      const std::size_t at = rng() % f.size();
      switch (rng() % 4) {
        case 0: f[at] = static_cast<std::uint8_t>(rng()); break;
        case 1: {  // a length or offset field rewritten: 8 bytes of something big or small
          const std::uint64_t v = rng() % 3 == 0 ? rng() : rng() % 4096;
          for (int k = 0; k < 8 && at + static_cast<std::size_t>(k) < f.size(); ++k) f[at + static_cast<std::size_t>(k)] = static_cast<std::uint8_t>(v >> (8 * k));
          break;
        }
        case 2: f.resize(at); break;
        default: {  // a range copied elsewhere
          const std::size_t from = rng() % f.size(), len = rng() % 64;
          for (std::size_t k = 0; k < len && from + k < f.size() && at + k < f.size(); ++k) f[at + k] = f[from + k];
        }
      }
    }
    shmring::fuzz::read_mcap(f.data(), f.size());
  }
}

}  // namespace
