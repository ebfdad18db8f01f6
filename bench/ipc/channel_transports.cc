// shmring's own channels as benchmark transports (transport/): `shmring-topic` (TopicPublisher /
// TopicSubscriber), `shmring-queue` (QueueProducer / QueueConsumer) and `shmring-frames`
// (FramePublisher / FrameSubscriber), each in two forms: copying (send / receive copy the whole
// message in and out; `shmring-frames-copy` for frames) and zero-copy (`shmring-topic-zc`,
// `shmring-queue-zc`, `shmring-frames`: loan + publish and view + release, the application
// writing and reading only the message's first 8 bytes in place, which is what zero-copy is for).
// They wait with the channels' own strategies: spin = kBusySpin, hybrid = kHybrid (spin, then park
// on the futex), park = kPark; fd = the try_ calls, then epoll on the endpoint's wait_fd() (the
// event-driven protocol of docs/events.md).
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
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
    case WaitMode::kDescriptor: return "epoll on wait_fd";
  }
  return "?";
}

// An epoll instance over one endpoint's wait_fd (WaitMode::kDescriptor), or nothing.
class DescriptorWait {
 public:
  DescriptorWait() = default;
  DescriptorWait(const DescriptorWait&) = delete;
  DescriptorWait& operator=(const DescriptorWait&) = delete;
  ~DescriptorWait() {
    if (epoll_ >= 0) close(epoll_);
  }
  bool active() const { return epoll_ >= 0; }
  // Watches `endpoint`'s descriptor.
  bool watch(const ChannelEndpoint& endpoint) {
    const int fd = endpoint.wait_fd();
    epoll_ = epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN;
    return fd >= 0 && epoll_ >= 0 && epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev) == 0;
  }
  // Retries `attempt` (a try_ call) until it is not kWouldBlock, sleeping in epoll in between.
  template <typename Attempt>
  ChannelResult until_done(Attempt&& attempt) {
    for (;;) {
      const ChannelResult r = attempt();
      if (r != ChannelResult::kWouldBlock) return r;
      epoll_event ev{};
      if (epoll_wait(epoll_, &ev, 1, 30000) == 0) return ChannelResult::kTimedOut;
    }
  }

 private:
  int epoll_ = -1;
};

std::uint64_t ring_capacity(std::size_t size) {
  std::uint64_t capacity = 1 << 20;
  while (capacity < 8 * (size + 64)) capacity <<= 1;
  return capacity;
}

// --- Topic: one channel per direction; subscribers are opened before publishers, and the harness
// starts no side before every side has opened, so nothing is published to nobody. Throughput and
// fan-out use lossless channels (the publisher waits for the slowest subscriber), so every message
// is delivered and the rate is the delivered rate.
// The zero-copy forms' "application": it writes / reads the first 8 bytes of the message in place.
std::size_t touched(std::size_t size) { return std::min<std::size_t>(size, sizeof(std::uint64_t)); }

class TopicEndpoint final : public Endpoint {
 public:
  TopicEndpoint(TopicPublisher publisher, TopicSubscriber subscriber, bool zero_copy, bool descriptors)
      : publisher_(std::move(publisher)), subscriber_(std::move(subscriber)), zero_copy_(zero_copy) {
    if (descriptors) {
      if (publisher_.is_open()) tx_.watch(publisher_);
      if (subscriber_.is_open()) rx_.watch(subscriber_);
    }
  }
  bool send(const std::byte* data, std::size_t size) override {
    if (tx_.active() && !zero_copy_) {
      return tx_.until_done([&] { return publisher_.try_send(std::span<const std::byte>(data, size)); }) ==
             ChannelResult::kOk;
    }
    if (zero_copy_) {
      TopicLoan loan = publisher_.loan(size, kTimeout);
      if (!loan.ok()) return false;
      std::memcpy(loan.buffer().data(), data, touched(size));
      return publisher_.publish(loan, size) == ChannelResult::kOk;
    }
    return publisher_.send(std::span<const std::byte>(data, size), kTimeout) == ChannelResult::kOk;
  }
  bool receive(std::byte* data, std::size_t size) override {
    if (rx_.active() && !zero_copy_) {
      std::size_t got = 0;
      return rx_.until_done([&] {
               return subscriber_.try_receive(std::span<std::byte>(data, size), &got);
             }) == ChannelResult::kOk && got == size;
    }
    if (zero_copy_) {
      TopicView view = subscriber_.receive_view(kTimeout);
      if (!view.ok() || view.data().size() != size) return false;
      std::memcpy(data, view.data().data(), touched(size));
      return view.release() == ChannelResult::kOk;
    }
    std::size_t got = 0;
    return subscriber_.receive(std::span<std::byte>(data, size), &got, kTimeout) ==
               ChannelResult::kOk && got == size;
  }

 private:
  TopicPublisher publisher_;
  TopicSubscriber subscriber_;
  bool zero_copy_;
  DescriptorWait tx_, rx_;
};

class TopicTransport final : public IpcTransport {
 public:
  explicit TopicTransport(bool zero_copy) : zero_copy_(zero_copy) {}
  std::string wait_description(WaitMode wait) const override {
    return wait_text(wait) + (zero_copy_ ? " (topic, zero-copy)" : " (topic)");
  }
  bool supports(const std::string& mode) const override {
    return mode == "pingpong" || mode == "throughput" || mode == "wake" || mode == "fanout" ||
           mode == "wake-cost";
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
    return std::unique_ptr<Endpoint>(
        new TopicEndpoint(std::move(publisher), std::move(subscriber), zero_copy_,
                          config.wait == WaitMode::kDescriptor));
  }
  void cleanup() override {}

 private:
  bool zero_copy_;
};

// --- Queue: producers and consumers; pipeline mode runs 2 producers and 2 competing consumers.
class QueueEndpoint final : public Endpoint {
 public:
  QueueEndpoint(QueueProducer producer, QueueConsumer consumer, bool finish_on_empty, bool zero_copy,
                bool descriptors)
      : producer_(std::move(producer)), consumer_(std::move(consumer)),
        finish_on_empty_(finish_on_empty), zero_copy_(zero_copy) {
    if (descriptors && !finish_on_empty) {
      if (producer_.is_open()) tx_.watch(producer_);
      if (consumer_.is_open()) rx_.watch(consumer_);
    }
  }
  bool send(const std::byte* data, std::size_t size) override {
    if (tx_.active() && !zero_copy_) {
      return tx_.until_done([&] { return producer_.try_send(std::span<const std::byte>(data, size)); }) ==
             ChannelResult::kOk;
    }
    if (zero_copy_) {
      QueueLoan loan = producer_.loan(kTimeout);
      if (!loan.ok()) return false;
      std::memcpy(loan.buffer().data(), data, touched(size));
      return producer_.publish(loan, size) == ChannelResult::kOk;
    }
    return producer_.send(std::span<const std::byte>(data, size), kTimeout) == ChannelResult::kOk;
  }
  bool receive(std::byte* data, std::size_t size) override {
    std::size_t got = 0;
    // Pipeline consumers compete: the other one may take the last items, so wait in short steps
    // and let the caller look at the shared count in between.
    const auto timeout = finish_on_empty_ ? std::chrono::nanoseconds(std::chrono::milliseconds(50))
                                          : std::chrono::nanoseconds(kTimeout);
    if (rx_.active() && !zero_copy_) {
      return rx_.until_done([&] { return consumer_.try_receive(std::span<std::byte>(data, size), &got); }) ==
                 ChannelResult::kOk && got == size;
    }
    if (zero_copy_) {
      QueueView view = consumer_.receive_view(timeout);
      if (!view.ok() || view.data().size() != size) return false;
      std::memcpy(data, view.data().data(), touched(size));
      return view.release() == ChannelResult::kOk;
    }
    return consumer_.receive(std::span<std::byte>(data, size), &got, timeout) ==
               ChannelResult::kOk && got == size;
  }

 private:
  QueueProducer producer_;
  QueueConsumer consumer_;
  bool finish_on_empty_;
  bool zero_copy_;
  DescriptorWait tx_, rx_;
};

class QueueTransport final : public IpcTransport {
 public:
  explicit QueueTransport(bool zero_copy) : zero_copy_(zero_copy) {}
  std::string wait_description(WaitMode wait) const override {
    return wait_text(wait) + (zero_copy_ ? " (queue, zero-copy)" : " (queue)");
  }
  bool supports(const std::string& mode) const override {
    return mode == "pingpong" || mode == "throughput" || mode == "wake" || mode == "pipeline";
  }
  absl::Status prepare(const BenchConfig&) override { return absl::OkStatus(); }
  absl::StatusOr<std::unique_ptr<Endpoint>> open(int side, const BenchConfig& config) override {
    QueueOptions options;
    options.max_message = std::max<std::size_t>(config.size, 8);
    // At most 16 MiB of slots (the topic's ring for 1 MiB messages is as large): beyond the
    // caches, large messages measure DRAM rather than the channel.
    options.capacity = 1024;
    while (options.capacity > 4 && options.capacity * options.max_message > (16u << 20)) {
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
        new QueueEndpoint(std::move(producer), std::move(consumer), pipeline, zero_copy_,
                          config.wait == WaitMode::kDescriptor));
  }
  void cleanup() override {}

 private:
  bool zero_copy_;
};

// --- Frames: zero-copy hand-over of large frames; the subscriber always takes the newest.
class FramesEndpoint final : public Endpoint {
 public:
  FramesEndpoint(FramePublisher publisher, FrameSubscriber subscriber, bool zero_copy)
      : publisher_(std::move(publisher)), subscriber_(std::move(subscriber)), zero_copy_(zero_copy) {}
  bool send(const std::byte* data, std::size_t size) override {
    if (zero_copy_) {
      std::uint64_t number = 0;
      std::memcpy(&number, data, touched(size));
      return send_in_place(size, number);
    }
    return publisher_.send(std::span<const std::byte>(data, size), kTimeout) == ChannelResult::kOk;
  }
  bool receive(std::byte* data, std::size_t size) override {
    if (zero_copy_) {
      std::uint64_t number = 0;
      if (!receive_in_place(size, &number)) return false;
      std::memcpy(data, &number, touched(size));
      return true;
    }
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
  bool zero_copy_;
};

// Frames: one channel per direction for round trips (newest-frame semantics lose nothing when one
// frame is in flight); throughput counts the frames the subscriber saw (older ones are skipped by
// design: `lost`).
class FramesTransport final : public IpcTransport {
 public:
  explicit FramesTransport(bool zero_copy) : zero_copy_(zero_copy) {}
  std::string wait_description(WaitMode wait) const override {
    return wait_text(wait) + (zero_copy_ ? " (frames, zero-copy)" : " (frames, copying)");
  }
  bool supports(const std::string& mode) const override {
    return mode == "frames" || mode == "pingpong" || mode == "throughput";
  }
  absl::Status prepare(const BenchConfig&) override { return absl::OkStatus(); }
  absl::StatusOr<std::unique_ptr<Endpoint>> open(int side, const BenchConfig& config) override {
    FrameOptions options;
    options.max_message = std::max<std::size_t>(config.size, 8);
    options.wait = wait_options(config.wait);
    const std::string forward = "bench-frames-" + config.run_id;
    const std::string back = "bench-frames-ba-" + config.run_id;
    const bool round_trip = config.mode == "pingpong";
    FramePublisher publisher;
    FrameSubscriber subscriber;
    auto open_publisher = [&](const std::string& name) -> absl::Status {
      auto opened = FramePublisher::open(name, options);
      if (!opened.ok()) return opened.status();
      publisher = *std::move(opened);
      return absl::OkStatus();
    };
    auto open_subscriber = [&](const std::string& name) -> absl::Status {
      auto opened = FrameSubscriber::open(name, options);
      if (!opened.ok()) return opened.status();
      subscriber = *std::move(opened);
      return absl::OkStatus();
    };
    absl::Status status = side == 0 ? open_publisher(forward) : open_subscriber(forward);
    if (status.ok() && round_trip) status = side == 0 ? open_subscriber(back) : open_publisher(back);
    if (!status.ok()) return status;
    return std::unique_ptr<Endpoint>(
        new FramesEndpoint(std::move(publisher), std::move(subscriber), zero_copy_));
  }
  void cleanup() override {}

 private:
  bool zero_copy_;
};

}  // namespace

std::unique_ptr<IpcTransport> make_shmring_topic_transport(bool zero_copy) {
  return std::make_unique<TopicTransport>(zero_copy);
}
std::unique_ptr<IpcTransport> make_shmring_queue_transport(bool zero_copy) {
  return std::make_unique<QueueTransport>(zero_copy);
}
std::unique_ptr<IpcTransport> make_shmring_frames_transport(bool zero_copy) {
  return std::make_unique<FramesTransport>(zero_copy);
}

}  // namespace shmring::bench
