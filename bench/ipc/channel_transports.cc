// shmring's own channels as benchmark transports (transport/): `shmring-topic` (TopicPublisher /
// TopicSubscriber), `shmring-queue` (QueueProducer / QueueConsumer) and `shmring-frames`
// (FramePublisher / FrameSubscriber, zero-copy). They wait with the channels' own strategies:
// spin = kBusySpin, hybrid = kHybrid (spin, then park on the futex), park = kPark.
#include <cstring>

#include "shmring/transport/frame.h"
#include "shmring/transport/queue.h"
#include "shmring/transport/topic.h"
#include "transports.h"

namespace shmring::bench {
namespace {

constexpr std::chrono::seconds kTimeout{30};

WaitOptions wait_options(WaitMode wait) {
  WaitOptions options;
  options.strategy = wait == WaitMode::kSpin   ? WaitStrategy::kBusySpin
                     : wait == WaitMode::kPark ? WaitStrategy::kPark
                                               : WaitStrategy::kHybrid;
  return options;
}

std::string wait_text(WaitMode wait) {
  switch (wait) {
    case WaitMode::kSpin: return "busy-spin";
    case WaitMode::kHybrid: return "spin, then futex park";
    case WaitMode::kPark: return "futex park";
  }
  return "?";
}

std::uint64_t ring_capacity(std::size_t size) {
  std::uint64_t capacity = 1 << 20;
  while (capacity < 8 * (size + 64)) capacity <<= 1;
  return capacity;
}

// --- Topic: one channel per direction; subscribers are opened before publishers, and the harness
// starts no side before every side has opened, so nothing is published to nobody. Throughput and
// fan-out use lossless channels (the publisher waits for the slowest subscriber), so every message
// is delivered and the rate is the delivered rate.
class TopicEndpoint final : public Endpoint {
 public:
  TopicEndpoint(TopicPublisher publisher, TopicSubscriber subscriber)
      : publisher_(std::move(publisher)), subscriber_(std::move(subscriber)) {}
  bool send(const std::byte* data, std::size_t size) override {
    return publisher_.send(std::span<const std::byte>(data, size), kTimeout) == ChannelResult::kOk;
  }
  bool receive(std::byte* data, std::size_t size) override {
    std::size_t got = 0;
    return subscriber_.receive(std::span<std::byte>(data, size), &got, kTimeout) ==
               ChannelResult::kOk && got == size;
  }

 private:
  TopicPublisher publisher_;
  TopicSubscriber subscriber_;
};

class TopicTransport final : public IpcTransport {
 public:
  std::string wait_description(WaitMode wait) const override {
    return wait_text(wait) + " (topic)";
  }
  bool supports(const std::string& mode) const override {
    return mode == "pingpong" || mode == "throughput" || mode == "wake" || mode == "fanout";
  }
  absl::Status prepare(const BenchConfig&) override { return absl::OkStatus(); }
  absl::StatusOr<std::unique_ptr<Endpoint>> open(int side, const BenchConfig& config) override {
    TopicOptions options;
    options.capacity = ring_capacity(config.size);
    options.max_message = config.size;
    options.lossless = config.mode == "throughput" || config.mode == "fanout";
    options.wait = wait_options(config.wait);
    options.max_peers = 16;
    const std::string forward = "bench-topic-ab-" + config.run_id;
    const std::string back = "bench-topic-ba-" + config.run_id;
    const bool one_way = config.mode == "throughput" || config.mode == "fanout";
    TopicPublisher publisher;
    TopicSubscriber subscriber;
    if (side == 0) {
      if (!one_way) {
        auto opened = TopicSubscriber::open(back, options);
        if (!opened.ok()) return opened.status();
        subscriber = *std::move(opened);
      }
      auto opened = TopicPublisher::open(forward, options);
      if (!opened.ok()) return opened.status();
      publisher = *std::move(opened);
    } else {
      auto opened = TopicSubscriber::open(forward, options);
      if (!opened.ok()) return opened.status();
      subscriber = *std::move(opened);
      if (!one_way) {
        auto back_publisher = TopicPublisher::open(back, options);
        if (!back_publisher.ok()) return back_publisher.status();
        publisher = *std::move(back_publisher);
      }
    }
    return std::unique_ptr<Endpoint>(new TopicEndpoint(std::move(publisher), std::move(subscriber)));
  }
  void cleanup() override {}
};

// --- Queue: producers and consumers; pipeline mode runs 2 producers and 2 competing consumers.
class QueueEndpoint final : public Endpoint {
 public:
  QueueEndpoint(QueueProducer producer, QueueConsumer consumer, bool finish_on_empty)
      : producer_(std::move(producer)), consumer_(std::move(consumer)),
        finish_on_empty_(finish_on_empty) {}
  bool send(const std::byte* data, std::size_t size) override {
    return producer_.send(std::span<const std::byte>(data, size), kTimeout) == ChannelResult::kOk;
  }
  bool receive(std::byte* data, std::size_t size) override {
    std::size_t got = 0;
    // Pipeline consumers compete: the other one may take the last items, so wait in short steps
    // and let the caller look at the shared count in between.
    const auto timeout = finish_on_empty_ ? std::chrono::nanoseconds(std::chrono::milliseconds(50))
                                          : std::chrono::nanoseconds(kTimeout);
    return consumer_.receive(std::span<std::byte>(data, size), &got, timeout) ==
               ChannelResult::kOk && got == size;
  }

 private:
  QueueProducer producer_;
  QueueConsumer consumer_;
  bool finish_on_empty_;
};

class QueueTransport final : public IpcTransport {
 public:
  std::string wait_description(WaitMode wait) const override {
    return wait_text(wait) + " (queue)";
  }
  bool supports(const std::string& mode) const override {
    return mode == "pingpong" || mode == "throughput" || mode == "wake" || mode == "pipeline";
  }
  absl::Status prepare(const BenchConfig&) override { return absl::OkStatus(); }
  absl::StatusOr<std::unique_ptr<Endpoint>> open(int side, const BenchConfig& config) override {
    QueueOptions options;
    options.max_message = std::max<std::size_t>(config.size, 8);
    options.capacity = 1024;
    while (options.capacity > 8 && options.capacity * options.max_message > (64u << 20)) {
      options.capacity >>= 1;
    }
    options.wait = wait_options(config.wait);
    const std::string forward = "bench-queue-ab-" + config.run_id;
    const std::string back = "bench-queue-ba-" + config.run_id;
    QueueProducer producer;
    QueueConsumer consumer;
    const bool pipeline = config.mode == "pipeline";
    const bool sends_forward = pipeline ? side < 2 : side == 0;
    const bool round_trip = config.mode == "pingpong" || config.mode == "wake";
    auto open_producer = [&](const std::string& name) -> absl::Status {
      auto opened = QueueProducer::open(name, options);
      if (!opened.ok()) return opened.status();
      producer = *std::move(opened);
      return absl::OkStatus();
    };
    auto open_consumer = [&](const std::string& name) -> absl::Status {
      auto opened = QueueConsumer::open(name, options);
      if (!opened.ok()) return opened.status();
      consumer = *std::move(opened);
      return absl::OkStatus();
    };
    absl::Status status = sends_forward ? open_producer(forward) : open_consumer(forward);
    if (status.ok() && round_trip) status = sends_forward ? open_consumer(back) : open_producer(back);
    if (!status.ok()) return status;
    return std::unique_ptr<Endpoint>(
        new QueueEndpoint(std::move(producer), std::move(consumer), pipeline));
  }
  void cleanup() override {}
};

// --- Frames: zero-copy hand-over of large frames; the subscriber always takes the newest.
class FramesEndpoint final : public Endpoint {
 public:
  FramesEndpoint(FramePublisher publisher, FrameSubscriber subscriber)
      : publisher_(std::move(publisher)), subscriber_(std::move(subscriber)) {}
  bool send(const std::byte* data, std::size_t size) override {
    return publisher_.send(std::span<const std::byte>(data, size), kTimeout) == ChannelResult::kOk;
  }
  bool receive(std::byte* data, std::size_t size) override {
    std::size_t got = 0;
    return subscriber_.receive(std::span<std::byte>(data, size), &got, kTimeout) ==
           ChannelResult::kOk;
  }
  bool send_in_place(std::size_t size, std::uint64_t number) override {
    FrameLoan loan = publisher_.loan(kTimeout);
    if (!loan.ok() || loan.buffer().size() < sizeof number) return false;
    std::memcpy(loan.buffer().data(), &number, sizeof number);  // the only bytes touched
    return publisher_.publish(loan, size) == ChannelResult::kOk;
  }
  bool receive_in_place(std::size_t, std::uint64_t* number) override {
    FrameView view = subscriber_.receive_view(kTimeout);
    if (!view.ok() || view.data().size() < sizeof *number) return false;
    std::memcpy(number, view.data().data(), sizeof *number);
    view.release();
    return true;
  }

 private:
  FramePublisher publisher_;
  FrameSubscriber subscriber_;
};

class FramesTransport final : public IpcTransport {
 public:
  std::string wait_description(WaitMode wait) const override {
    return wait_text(wait) + " (frames, zero-copy)";
  }
  bool supports(const std::string& mode) const override { return mode == "frames"; }
  absl::Status prepare(const BenchConfig&) override { return absl::OkStatus(); }
  absl::StatusOr<std::unique_ptr<Endpoint>> open(int side, const BenchConfig& config) override {
    FrameOptions options;
    options.max_message = std::max<std::size_t>(config.size, 8);
    options.wait = wait_options(config.wait);
    const std::string name = "bench-frames-" + config.run_id;
    if (side == 0) {
      auto opened = FramePublisher::open(name, options);
      if (!opened.ok()) return opened.status();
      return std::unique_ptr<Endpoint>(new FramesEndpoint(*std::move(opened), FrameSubscriber()));
    }
    auto opened = FrameSubscriber::open(name, options);
    if (!opened.ok()) return opened.status();
    return std::unique_ptr<Endpoint>(new FramesEndpoint(FramePublisher(), *std::move(opened)));
  }
  void cleanup() override {}
};

}  // namespace

std::unique_ptr<IpcTransport> make_shmring_topic_transport() {
  return std::make_unique<TopicTransport>();
}
std::unique_ptr<IpcTransport> make_shmring_queue_transport() {
  return std::make_unique<QueueTransport>();
}
std::unique_ptr<IpcTransport> make_shmring_frames_transport() {
  return std::make_unique<FramesTransport>();
}

}  // namespace shmring::bench
