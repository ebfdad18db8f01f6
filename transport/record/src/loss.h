// Private: how a recording says what it lacks. The names of the metadata shmring writes, and the
// per-channel count of lost messages kept from the sequence numbers (the recorder counts while
// writing; info and recover count the same way from a file).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "shmring/record/mcap.h"

namespace shmring::record::detail {

// Channel record metadata keys.
inline constexpr char kKindKey[] = "shmring.kind";               // topic | frames | queue
inline constexpr char kLosslessKey[] = "shmring.lossless";       // topics: true | false
inline constexpr char kCapacityKey[] = "shmring.capacity";
inline constexpr char kMaxMessageKey[] = "shmring.max_message";
inline constexpr char kIncarnationKey[] = "shmring.incarnation"; // hex
inline constexpr char kSequenceKey[] = "shmring.sequence";       // what the sequence numbers count
inline constexpr char kFirstSequenceKey[] = "shmring.first_sequence";  // expected first (decimal)
// Metadata records written at close.
inline constexpr char kLossMetadata[] = "shmring.loss";          // channel id -> lost (decimal)
inline constexpr char kRecordingMetadata[] = "shmring.recording";

// Counts the messages missing from one channel's sequence of 32-bit MCAP sequence numbers.
class SequenceTracker {
 public:
  SequenceTracker() = default;
  explicit SequenceTracker(std::optional<std::uint64_t> expected) {
    if (expected) expected_ = static_cast<std::uint32_t>(*expected);
  }
  // Adds the jump before `sequence` (mod 2^32) to lost() and expects the one after it.
  void see(std::uint32_t sequence) {
    if (expected_) lost_ += static_cast<std::uint32_t>(sequence - *expected_);
    expected_ = sequence + 1;
  }
  std::uint64_t lost() const { return lost_; }
  std::optional<std::uint32_t> expected() const { return expected_; }

 private:
  std::optional<std::uint32_t> expected_;
  std::uint64_t lost_ = 0;
};

// The expected first sequence a channel record states, if any.
std::optional<std::uint64_t> first_sequence_of(const Channel& channel);

}  // namespace shmring::record::detail
