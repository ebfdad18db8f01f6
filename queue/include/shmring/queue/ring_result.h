// Results of the rings' data-path calls: a small enum, never an exception or an allocation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace shmring {

enum class RingResult : std::uint8_t {
  kOk,        // done
  kFull,      // no room now (writer side); retry later
  kEmpty,     // nothing to read now (reader side); retry later
  kTooLarge,  // the record exceeds the ring's maximum (or the caller's buffer is too small);
              // nothing was changed
  kLapped,    // broadcast reader: the writer overwrote records this reader had not read; the reader
              // has skipped ahead and counts the loss (see BroadcastReader::lost_records())
  kCorrupt,   // shared memory holds something no honest peer writes; nothing was read or written
  kFenced,    // MPMC: a commit or release lost to a recovery (skip_stalled / force_release) that
              // another process made; the item is not delivered / the copy must be discarded
  kEvicted,   // broadcast lossless reader: its reader slot was evicted or reclaimed
  kBusy,      // a recovery call found the slot not in the state it expected (nothing changed)
};

constexpr std::string_view to_string(RingResult result) noexcept {
  switch (result) {
    case RingResult::kOk: return "kOk";
    case RingResult::kFull: return "kFull";
    case RingResult::kEmpty: return "kEmpty";
    case RingResult::kTooLarge: return "kTooLarge";
    case RingResult::kLapped: return "kLapped";
    case RingResult::kCorrupt: return "kCorrupt";
    case RingResult::kFenced: return "kFenced";
    case RingResult::kEvicted: return "kEvicted";
    case RingResult::kBusy: return "kBusy";
  }
  return "kUnknown";
}

// How many records a batch read handed over, and why it stopped (kOk when it reached `limit` or
// drained everything it could see, kEmpty when it handed nothing, kCorrupt / kLapped as above).
struct ReadBatch {
  std::size_t records = 0;
  RingResult result = RingResult::kEmpty;
};

}  // namespace shmring
