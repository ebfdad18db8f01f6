// A hash that is the same in every process, build and compiler (unlike std::hash / absl::Hash),
// for deriving names that different programs must agree on.
#pragma once

#include <cstdint>
#include <string_view>

namespace shmring {

// 64-bit FNV-1a over the bytes, followed by the murmur3 finaliser so that every input bit affects
// every output bit (FNV-1a alone leaves the high bits weak for short keys). Pure; never fails.
constexpr std::uint64_t stable_hash64(std::string_view bytes, std::uint64_t seed = 0) noexcept {
  std::uint64_t h = 0xcbf29ce484222325ULL ^ seed;
  for (const char c : bytes) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

}  // namespace shmring
