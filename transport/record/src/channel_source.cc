#include "channel_source.h"

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "loss.h"
#include "shmring/transport/frame.h"
#include "shmring/transport/queue.h"
#include "shmring/transport/topic.h"

namespace shmring::record::detail {

namespace {

std::string hex(std::uint64_t v) {
  char text[24];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(v));
  return text;
}

void describe(const ChannelStats& stats, std::uint64_t incarnation, StringMap* metadata) {
  (*metadata)[kKindKey] = std::string(to_string(stats.kind));
  (*metadata)[kCapacityKey] = std::to_string(stats.capacity);
  (*metadata)[kMaxMessageKey] = std::to_string(stats.max_message);
  (*metadata)[kIncarnationKey] = hex(incarnation);
}

class TopicSource final : public ChannelSource {
 public:
  TopicSource(std::string name, TopicSubscriber subscriber, const ChannelStats& stats)
      : subscriber_(std::move(subscriber)), buffer_(subscriber_.max_message()) {
    name_ = std::move(name);
    kind_ = ChannelKind::kTopic;
    describe(stats, subscriber_.channel_incarnation(), &metadata_);
    metadata_[kLosslessKey] = subscriber_.lossless() ? "true" : "false";
    metadata_[kSequenceKey] = "topic sequence number";
    first_sequence_ = subscriber_.next_sequence();
  }
  Drained drain(const std::function<void(std::uint64_t, std::span<const std::byte>)>& sink, std::size_t max,
                std::size_t* count) override {
    *count = 0;
    while (*count < max) {
      if (subscriber_.lossless()) {
        // In place: the publisher cannot overwrite it until the view is released.
        TopicView view = subscriber_.try_receive_view();
        if (!view.ok()) return finish(view.result());
        sink(view.sequence(), view.data());
        view.release();
      } else {
        std::size_t n = 0;
        const ChannelResult r = subscriber_.try_receive(buffer_, &n);
        if (r != ChannelResult::kOk) return finish(r);
        sink(subscriber_.last_sequence(), std::span<const std::byte>(buffer_).first(n));
      }
      ++*count;
    }
    return Drained::kMore;
  }
  ::shmring::ChannelEndpoint* waitable() override { return &subscriber_; }

 private:
  static Drained finish(ChannelResult r) {
    switch (r) {
      case ChannelResult::kWouldBlock: return Drained::kEmpty;
      case ChannelResult::kEvicted: return Drained::kEvicted;
      default: return Drained::kBroken;
    }
  }
  TopicSubscriber subscriber_;
  std::vector<std::byte> buffer_;
};

class FrameSource final : public ChannelSource {
 public:
  FrameSource(std::string name, FrameSubscriber subscriber, const ChannelStats& stats)
      : subscriber_(std::move(subscriber)) {
    name_ = std::move(name);
    kind_ = ChannelKind::kFrames;
    describe(stats, subscriber_.channel_incarnation(), &metadata_);
    metadata_[kSequenceKey] = "frame number";
  }
  Drained drain(const std::function<void(std::uint64_t, std::span<const std::byte>)>& sink, std::size_t max,
                std::size_t* count) override {
    *count = 0;
    while (*count < max) {
      FrameView view = subscriber_.try_receive_view();  // the newest frame, pinned
      if (!view.ok()) return view.result() == ChannelResult::kWouldBlock ? Drained::kEmpty : Drained::kBroken;
      sink(frame_sequence(view), view.data());
      view.release();
      ++*count;
    }
    return Drained::kMore;
  }
  ::shmring::ChannelEndpoint* waitable() override { return &subscriber_; }

 private:
  static std::uint64_t frame_sequence(const FrameView& view) { return view.sequence(); }
  FrameSubscriber subscriber_;
};

class QueueSource final : public ChannelSource {
 public:
  QueueSource(std::string name, QueueTap tap, const ChannelStats& stats)
      : tap_(std::move(tap)), buffer_(tap_.max_message()) {
    name_ = std::move(name);
    kind_ = ChannelKind::kQueue;
    describe(stats, tap_.channel_incarnation(), &metadata_);
    metadata_[kSequenceKey] = "queue tickets seen by the tap (from 0)";
    first_sequence_ = 0;
  }
  Drained drain(const std::function<void(std::uint64_t, std::span<const std::byte>)>& sink, std::size_t max,
                std::size_t* count) override {
    *count = 0;
    while (*count < max) {
      std::size_t n = 0;
      const ChannelResult r = tap_.try_read(buffer_, &n);
      if (r == ChannelResult::kWouldBlock) return Drained::kEmpty;
      if (r != ChannelResult::kOk) return Drained::kBroken;
      // Tickets counted from the tap's start: missed ones make the jump.
      sink(tap_.read_count() + tap_.missed() - 1, std::span<const std::byte>(buffer_).first(n));
      ++*count;
    }
    return Drained::kMore;
  }
  ::shmring::ChannelEndpoint* waitable() override { return nullptr; }

 private:
  QueueTap tap_;
  std::vector<std::byte> buffer_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<ChannelSource>> ChannelSource::open(const std::string& name,
                                                                   const SubscriberOptions& options) {
  absl::StatusOr<ChannelStats> stats = read_stats(name);
  if (!stats.ok()) return stats.status();
  switch (stats->kind) {
    case ChannelKind::kTopic: {
      // Delivery is each subscriber's choice (topic.h): the recorder's, or the topic's default.
      TopicOptions o;
      o.create = false;
      o.delivery = options.topic_mode == TopicMode::kLossless ? TopicDelivery::kLossless
                   : options.topic_mode == TopicMode::kLossy  ? TopicDelivery::kLossy
                                                              : TopicDelivery::kDefault;
      o.start = options.topic_start_at_latest ? TopicStart::latest() : TopicStart::live();
      absl::StatusOr<TopicSubscriber> sub = TopicSubscriber::open(name, o);
      if (!sub.ok()) return sub.status();
      return std::unique_ptr<ChannelSource>(new TopicSource(name, std::move(*sub), *stats));
    }
    case ChannelKind::kFrames: {
      FrameOptions o;
      o.create = false;
      absl::StatusOr<FrameSubscriber> sub = FrameSubscriber::open(name, o);
      if (!sub.ok()) return sub.status();
      return std::unique_ptr<ChannelSource>(new FrameSource(name, std::move(*sub), *stats));
    }
    case ChannelKind::kQueue: {
      QueueTapOptions o;
      o.start = options.queue_start;
      absl::StatusOr<QueueTap> tap = QueueTap::open(name, o);
      if (!tap.ok()) return tap.status();
      return std::unique_ptr<ChannelSource>(new QueueSource(name, std::move(*tap), *stats));
    }
    case ChannelKind::kService:
      return absl::FailedPreconditionError(
          absl::StrCat("channel '", name, "' is a service: its requests and responses are not recorded"));
  }
  return absl::InvalidArgumentError(absl::StrCat("channel '", name, "': unknown kind"));
}

std::optional<std::uint64_t> first_sequence_of(const Channel& channel) {
  auto it = channel.metadata.find(kFirstSequenceKey);
  if (it == channel.metadata.end() || it->second.empty()) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : it->second) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return v;
}

}  // namespace shmring::record::detail
