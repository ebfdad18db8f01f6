// The vocabulary of channel.h every file uses: names and keys, validation, to_string. The
// inspection from outside (read_stats, list_channels, remove_channel) is in inspect.cc.
#include <string>
#include <utility>

#include "shmring/core/detail/message.h"
#include "shmring/transport/channel.h"

namespace shmring {

std::string channel_key(std::string_view name) { return detail::cat(kChannelKeyPrefix, name); }

absl::Status validate_channel_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxChannelName) {
    return absl::InvalidArgumentError(detail::cat("channel name '", name, "' must have 1 to ",
                                                   kMaxChannelName, " bytes"));
  }
  for (const char c : name) {
    if (c == '/' || c == '\0') {
      return absl::InvalidArgumentError(
          detail::cat("channel name '", name, "' must not contain '/' or NUL"));
    }
  }
  return absl::OkStatus();
}

std::string_view to_string(ChannelResult result) noexcept {
  switch (result) {
    case ChannelResult::kOk: return "kOk";
    case ChannelResult::kWouldBlock: return "kWouldBlock";
    case ChannelResult::kTimedOut: return "kTimedOut";
    case ChannelResult::kTooLarge: return "kTooLarge";
    case ChannelResult::kCorrupt: return "kCorrupt";
    case ChannelResult::kEvicted: return "kEvicted";
    case ChannelResult::kClosed: return "kClosed";
    case ChannelResult::kOverwritten: return "kOverwritten";
    case ChannelResult::kPeerGone: return "kPeerGone";
    case ChannelResult::kCancelled: return "kCancelled";
  }
  return "kUnknown";
}

std::string_view to_string(ChannelKind kind) noexcept {
  switch (kind) {
    case ChannelKind::kQueue: return "queue";
    case ChannelKind::kTopic: return "topic";
    case ChannelKind::kFrames: return "frames";
    case ChannelKind::kService: return "service";
  }
  return "unknown";
}

std::string_view to_string(PeerRole role) noexcept {
  switch (role) {
    case PeerRole::kNone: return "none";
    case PeerRole::kProducer: return "producer";
    case PeerRole::kConsumer: return "consumer";
    case PeerRole::kPublisher: return "publisher";
    case PeerRole::kSubscriber: return "subscriber";
    case PeerRole::kServer: return "server";
    case PeerRole::kClient: return "client";
  }
  return "unknown";
}

std::string_view to_string(PeerState state) noexcept {
  switch (state) {
    case PeerState::kFree: return "free";
    case PeerState::kActive: return "active";
    case PeerState::kDeadPending: return "dead-pending";
  }
  return "unknown";
}

std::string to_string(WaitEvent set) {
  static constexpr std::pair<WaitEvent, std::string_view> kNames[] = {
      {WaitEvent::kData, "data"},         {WaitEvent::kRoom, "room"},
      {WaitEvent::kPeerGone, "peer-gone"}, {WaitEvent::kEvicted, "evicted"},
      {WaitEvent::kRemoved, "removed"},   {WaitEvent::kReadable, "readable"},
      {WaitEvent::kTimer, "timer"},       {WaitEvent::kStop, "stop"},
  };
  std::string out;
  for (const auto& [bit, name] : kNames) {
    if (!has(set, bit)) continue;
    if (!out.empty()) out += '|';
    out += name;
  }
  return out.empty() ? "none" : out;
}

}  // namespace shmring
