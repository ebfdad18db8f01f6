// A latency histogram with bounded relative error (log-linear buckets, as in HdrHistogram):
// values are grouped by their power of two, and each power of two is split into kSubBuckets
// equal parts, so a reported percentile is within 1/kSubBuckets (about 3%) of the true value.
// Fixed size, no allocation: it lives in memory shared with the measuring child processes.
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>

namespace shmring::bench {

class LatencyHistogram {
 public:
  static constexpr int kSubBucketBits = 5;
  static constexpr int kSubBuckets = 1 << kSubBucketBits;  // 32: <= 3.1% relative error
  // Values below 2 * kSubBuckets get a bucket each; above, each power of two gets kSubBuckets.
  static constexpr int kExact = 2 * kSubBuckets;
  static constexpr int kMagnitudes = 64 - (kSubBucketBits + 1);
  static constexpr int kBuckets = kExact + kMagnitudes * kSubBuckets;

  void clear() { *this = LatencyHistogram{}; }

  void record(std::uint64_t value) {
    ++counts_[index_of(value)];
    ++total_;
    max_ = std::max(max_, value);
    min_ = std::min(min_, value);
    sum_ += value;
  }

  void merge(const LatencyHistogram& other) {
    for (int i = 0; i < kBuckets; ++i) counts_[i] += other.counts_[i];
    total_ += other.total_;
    max_ = std::max(max_, other.max_);
    min_ = std::min(min_, other.min_);
    sum_ += other.sum_;
  }

  std::uint64_t count() const { return total_; }
  std::uint64_t max() const { return total_ ? max_ : 0; }
  std::uint64_t min() const { return total_ ? min_ : 0; }
  double mean() const { return total_ ? static_cast<double>(sum_) / static_cast<double>(total_) : 0; }

  // The value at `percentile` (0..100): the midpoint of the bucket holding it, capped by max().
  std::uint64_t percentile(double percentile) const {
    if (total_ == 0) return 0;
    const auto rank = static_cast<std::uint64_t>(percentile / 100.0 * static_cast<double>(total_));
    std::uint64_t seen = 0;
    for (int i = 0; i < kBuckets; ++i) {
      seen += counts_[i];
      if (seen > rank || (seen == total_ && seen > 0)) {
        return std::min(midpoint_of(i), max_);
      }
    }
    return max_;
  }

  static int index_of(std::uint64_t value) {
    if (value < kExact) return static_cast<int>(value);
    // Shift so the top kSubBucketBits + 1 bits remain: (value >> shift) is in [kSubBuckets, kExact).
    const int shift = 64 - std::countl_zero(value) - (kSubBucketBits + 1);  // >= 1
    const auto sub = static_cast<int>(value >> shift) - kSubBuckets;
    return kExact + (shift - 1) * kSubBuckets + sub;
  }

  static std::uint64_t lowest_of(int index) {
    if (index < kExact) return static_cast<std::uint64_t>(index);
    const int shift = (index - kExact) / kSubBuckets + 1;
    const int sub = (index - kExact) % kSubBuckets;
    return static_cast<std::uint64_t>(kSubBuckets + sub) << shift;
  }

  static std::uint64_t midpoint_of(int index) {
    if (index < kExact) return lowest_of(index);
    const int shift = (index - kExact) / kSubBuckets + 1;
    return lowest_of(index) + ((std::uint64_t{1} << shift) >> 1);
  }

 private:
  std::uint64_t counts_[kBuckets] = {};
  std::uint64_t total_ = 0;
  std::uint64_t max_ = 0;
  std::uint64_t min_ = UINT64_MAX;
  std::uint64_t sum_ = 0;
};

}  // namespace shmring::bench
