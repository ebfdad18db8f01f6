// Copies for memory that a writer may overwrite while a reader copies it (the broadcast ring's
// seqlock-style "copy, then validate"). Short records: each 8-byte word is one atomic access, so
// the copy is not a data race and ThreadSanitizer sees every ordering; on x86-64 acquire loads and
// release stores are plain moves. Long records (kBulkCopyBytes, not under ThreadSanitizer): memcpy
// bracketed by the seqlock fences, as the zero-copy claim and view already are. Internal;
// stateless, never block. They order the copy, not its atomicity: the caller's protocol
// (intent re-check) detects an overwrite.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>

#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
#endif

namespace shmring::detail {

inline std::uint64_t load_word_acquire(const std::byte* p) noexcept {
  return __atomic_load_n(reinterpret_cast<const std::uint64_t*>(p), __ATOMIC_ACQUIRE);
}

inline void store_word_release(std::byte* p, std::uint64_t value) noexcept {
  __atomic_store_n(reinterpret_cast<std::uint64_t*>(p), value, __ATOMIC_RELEASE);
}

// A pair of 64-bit words at a 16-byte aligned address, changed only by a 16-byte compare-and-swap
// (cmpxchg16b on x86-64: the queue target compiles with -mcx16) and read either half at a time
// (8-byte atomic loads, which work on a read-only mapping) or whole by a CAS that changes nothing.
static_assert(std::endian::native == std::endian::little,
              "WordPair's low word is the one at the lower address: little-endian targets only");
struct WordPair {
  std::uint64_t low = 0;   // at the lower address
  std::uint64_t high = 0;
  friend bool operator==(const WordPair&, const WordPair&) = default;
};

// If *pair equals *expected, stores `desired` and returns true; otherwise loads the current value
// into *expected and returns false. Sequentially consistent (a full barrier), like every locked
// instruction.
inline bool compare_exchange_pair(std::uint64_t* pair, WordPair* expected, WordPair desired) noexcept {
  __extension__ using Wide = unsigned __int128;  // GCC and Clang; -Wpedantic knows it as an extension
#if defined(__SANITIZE_THREAD__) && defined(__x86_64__)
  // ThreadSanitizer's runtime does a 16-byte CAS under a mutex of its own process, not with
  // cmpxchg16b, so writers in two processes would not exclude each other (torn and lost claims
  // in the multi-process tests, under TSan only). The real instruction, and what it orders
  // (a full barrier) told to TSan as a release and an acquire on both words' addresses.
  __tsan_release(pair);
  __tsan_release(pair + 1);
  std::uint64_t low = expected->low;
  std::uint64_t high = expected->high;
  bool swapped;
  __asm__ __volatile__("lock cmpxchg16b %1"
                       : "=@ccz"(swapped), "+m"(*reinterpret_cast<Wide*>(pair)), "+a"(low), "+d"(high)
                       : "b"(desired.low), "c"(desired.high)
                       : "memory");
  __tsan_acquire(pair);
  __tsan_acquire(pair + 1);
  if (swapped) return true;
  expected->low = low;
  expected->high = high;
  return false;
#else
  const Wide e = (Wide{expected->high} << 64) | expected->low;
  const Wide d = (Wide{desired.high} << 64) | desired.low;
  const Wide old = __sync_val_compare_and_swap(reinterpret_cast<Wide*>(pair), e, d);
  if (old == e) return true;
  expected->low = static_cast<std::uint64_t>(old);
  expected->high = static_cast<std::uint64_t>(old >> 64);
  return false;
#endif
}

// The whole pair, atomically (a CAS that stores what it finds; needs a writable mapping).
inline WordPair load_pair(std::uint64_t* pair) noexcept {
  WordPair current{};
  compare_exchange_pair(pair, &current, current);
  return current;
}

inline std::uint64_t load_word_acquire(const std::uint64_t* p) noexcept {
  return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

// Fences for the seqlock edges where the other side's accesses are plain, not atomic: the caller's
// stores into a broadcast claim (after the intent announcement) and the caller's reads of a
// lossy broadcast view (before the intent re-check). GCC's ThreadSanitizer does not model
// fences and warns (-Wtsan); the fence still runs, and what TSan checks (threads of one process)
// never relies on it: those edges only matter against a writer in another process.
#if defined(__GNUC__) && !defined(__clang__)
#define SHMRING_NO_TSAN_FENCE_WARNING_BEGIN \
  _Pragma("GCC diagnostic push") _Pragma("GCC diagnostic ignored \"-Wtsan\"")
#define SHMRING_NO_TSAN_FENCE_WARNING_END _Pragma("GCC diagnostic pop")
#else
#define SHMRING_NO_TSAN_FENCE_WARNING_BEGIN
#define SHMRING_NO_TSAN_FENCE_WARNING_END
#endif

// Earlier stores become visible before any later store (plain ones included).
inline void seqlock_release_fence() noexcept {
  SHMRING_NO_TSAN_FENCE_WARNING_BEGIN
  __atomic_thread_fence(__ATOMIC_RELEASE);
  SHMRING_NO_TSAN_FENCE_WARNING_END
}

// Earlier loads (plain ones included) are done before any later load.
inline void seqlock_acquire_fence() noexcept {
  SHMRING_NO_TSAN_FENCE_WARNING_BEGIN
  __atomic_thread_fence(__ATOMIC_ACQUIRE);
  SHMRING_NO_TSAN_FENCE_WARNING_END
}

// Records at least this long are copied in bulk (memcpy bracketed by the seqlock fences) in
// builds without ThreadSanitizer: one atomic access per 8 bytes held large copies to about a
// quarter of memcpy's bandwidth. Shorter records, and every record under ThreadSanitizer (which
// does not model fences and must see every access as atomic), are copied word by word.
inline constexpr std::size_t kBulkCopyBytes = 256;
#if defined(__SANITIZE_THREAD__)
inline constexpr bool kBulkCopies = false;
#else
inline constexpr bool kBulkCopies = true;
#endif

// Copies `n` bytes from `src` (8-byte aligned; readable up to n rounded up to 8) to `dst`: one
// acquire load per word, or (bulk) plain loads followed by an acquire fence. Either way every byte
// loaded is loaded before anything the caller loads afterwards (its intent check):
// SYNC(bcast_intent) word by word, SYNC(bcast_bulk) in bulk.
inline void copy_words_acquire(std::byte* dst, const std::byte* src, std::size_t n) noexcept {
  if (kBulkCopies && n >= kBulkCopyBytes) {
    std::memcpy(dst, src, n);  // may race with an overwriting writer: the caller validates after
    seqlock_acquire_fence();
    return;
  }
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const std::uint64_t w = load_word_acquire(src + i);
    std::memcpy(dst + i, &w, 8);
  }
  if (i < n) {
    const std::uint64_t w = load_word_acquire(src + i);
    std::memcpy(dst + i, &w, n - i);
  }
}

// Copies `n` bytes from `src` to `dst` (8-byte aligned; writable up to n rounded up to 8); the
// bytes after `n` in the last word are zero. One release store per word, or (bulk) a release
// fence and plain stores: either way the intent the writer announced before is ordered
// before every byte stored (SYNC(bcast_intent) / SYNC(bcast_bulk)), and the record header's release
// stores that follow order the bytes before the header.
inline void copy_words_release(std::byte* dst, const std::byte* src, std::size_t n) noexcept {
  std::size_t i = 0;
  if (kBulkCopies && n >= kBulkCopyBytes) {
    seqlock_release_fence();
    i = n & ~std::size_t{7};
    std::memcpy(dst, src, i);
  }
  for (; i + 8 <= n; i += 8) {
    std::uint64_t w;
    std::memcpy(&w, src + i, 8);
    store_word_release(dst + i, w);
  }
  if (i < n) {
    std::uint64_t w = 0;
    std::memcpy(&w, src + i, n - i);
    store_word_release(dst + i, w);
  }
}

}  // namespace shmring::detail
