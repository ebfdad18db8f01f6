// Private: one recorded channel: the endpoint that reads it (a topic or frame subscriber, or a
// queue tap), its sequence numbers, and what the channel record says about it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "shmring/record/mcap.h"
#include "shmring/record/recorder.h"
#include "shmring/transport/channel.h"
#include "shmring/transport/lease.h"

namespace shmring::record::detail {

class ChannelSource {
 public:
  // Opens channel `name` (whatever kind it is) as `options` say. kNotFound if it is gone; the
  // endpoints' errors.
  static absl::StatusOr<std::unique_ptr<ChannelSource>> open(const std::string& name,
                                                             const SubscriberOptions& options);
  virtual ~ChannelSource() = default;

  const std::string& name() const { return name_; }
  ChannelKind kind() const { return kind_; }
  // What its MCAP channel record says: kind, limits, mode, incarnation, what the sequence counts.
  const StringMap& metadata() const { return metadata_; }
  // The sequence number its first message should carry, if known at open (a topic's next
  // sequence, a tap's first ticket); nullopt for frames (the first frame taken is the start).
  std::optional<std::uint64_t> first_sequence() const { return first_sequence_; }

  enum class Drained { kEmpty, kMore, kEvicted, kBroken };
  // Hands up to `max` messages to `sink(sequence, bytes)` (the bytes valid during the call).
  // kEmpty: all read (the descriptor is re-armed); kMore: `max` reached; kEvicted: a lossless
  // subscriber was evicted (reopen); kBroken: the channel answers kCorrupt.
  virtual Drained drain(const std::function<void(std::uint64_t, std::span<const std::byte>)>& sink,
                        std::size_t max, std::size_t* count) = 0;
  // The endpoint to wait on (WaitSet), or nullptr: a tap, which is polled.
  virtual ::shmring::ChannelEndpoint* waitable() = 0;

 protected:
  std::string name_;
  ChannelKind kind_ = ChannelKind::kTopic;
  StringMap metadata_;
  std::optional<std::uint64_t> first_sequence_;
};

}  // namespace shmring::record::detail
