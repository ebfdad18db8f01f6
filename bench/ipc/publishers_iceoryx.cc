// iceoryx 2.0 (Debian's packages) in shmring_publishers_bench: several UntypedPublishers, each in
// its own process, on one service read by one UntypedSubscriber (zero-copy loan -> write -> publish,
// take -> read -> release; the subscriber busy-polls take()). Lossless: the subscriber's queue
// blocks the producers (BLOCK_PRODUCER / WAIT_FOR_CONSUMER); lossy: the oldest data is discarded
// (DISCARD_OLDEST_DATA on both sides). The parent runs a private iox-roudi (iceoryx_roudi.h).
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "iceoryx_hoofs/log/logmanager.hpp"
#include "iceoryx_posh/popo/untyped_publisher.hpp"
#include "iceoryx_posh/popo/untyped_subscriber.hpp"
#include "iceoryx_posh/runtime/posh_runtime.hpp"
#include "iceoryx_roudi.h"
#include "publishers_bench.h"

namespace shmring::bench::publishers {
namespace {

// iceoryx 2.0's largest subscriber queue.
constexpr std::uint64_t kQueueCapacity = 256;

iox::capro::IdString_t id(const std::string& text) {
  return iox::capro::IdString_t(iox::cxx::TruncateToCapacity, text.c_str());
}

iox::capro::ServiceDescription service(const RunSpec& spec) {
  return {id("shmring"), id("publishers"), id(spec.name)};
}

// A child's runtime name: the benchmark's pid (its parent's) and its role ("s", "p0", "p1", ...).
std::string runtime_name(pid_t benchmark, const std::string& role) {
  return "pubbench_" + std::to_string(benchmark) + "_" + role;
}

void init_runtime(const std::string& role) {
  // Only errors: its start-up chatter would drown the results.
  iox::log::LogManager::GetLogManager().SetDefaultLogLevel(iox::log::LogLevel::kError,
                                                       iox::log::LogLevelOutput::kHideLogLevel);
  const std::string name = runtime_name(getppid(), role);
  iox::runtime::PoshRuntime::initRuntime(iox::RuntimeName_t(iox::cxx::TruncateToCapacity, name.c_str()));
}

void wait_for_go(SharedRun& run) {
  while (run.go.load(std::memory_order_acquire) == 0) {
  }
}

class IceoryxPeer final : public PeerUnderTest {
 public:
  absl::Status prepare(const RunSpec& spec) override {
    // Chunks for the subscriber's full queue, what every publisher may hold, and slack.
    const std::size_t chunk = ((spec.size + 256 + 63) / 64) * 64;
    return roudi_.start(chunk, 2 * kQueueCapacity + 16 * static_cast<std::size_t>(spec.publishers) + 64);
  }

  int run_publisher(int index, const RunSpec& spec, SharedRun& run) override {
    init_runtime("p" + std::to_string(index));
    iox::popo::PublisherOptions options;
    options.historyCapacity = 0;
    options.subscriberTooSlowPolicy = spec.lossless ? iox::popo::ConsumerTooSlowPolicy::WAIT_FOR_CONSUMER
                                                    : iox::popo::ConsumerTooSlowPolicy::DISCARD_OLDEST_DATA;
    iox::popo::UntypedPublisher publisher(service(spec), options);
    // Connected to the subscriber before the first message, so none is dropped for want of one.
    for (int i = 0; i < 10000 && !publisher.hasSubscribers(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (!publisher.hasSubscribers()) {
      fail(run, "iceoryx publisher: the subscriber never connected");
      return 1;
    }
    run.ready.fetch_add(1);
    wait_for_go(run);
    publish_loop(index, spec, run, [&](std::span<const std::byte> message) {
      for (;;) {
        auto loaned = publisher.loan(static_cast<std::uint32_t>(message.size()));
        if (!loaned.has_error()) {
          std::memcpy(loaned.value(), message.data(), message.size());
          publisher.publish(loaned.value());
          return true;
        }
        if (loaned.get_error() != iox::popo::AllocationError::RUNNING_OUT_OF_CHUNKS) return false;
      }
    });
    while (run.drained.load(std::memory_order_acquire) == 0 && run.errors.load() == 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return run.errors.load() == 0 ? 0 : 1;
  }

  int run_subscriber(const RunSpec& spec, SharedRun& run) override {
    init_runtime("s");
    iox::popo::SubscriberOptions options;
    options.queueCapacity = kQueueCapacity;
    options.historyRequest = 0;
    options.queueFullPolicy = spec.lossless ? iox::popo::QueueFullPolicy::BLOCK_PRODUCER
                                            : iox::popo::QueueFullPolicy::DISCARD_OLDEST_DATA;
    iox::popo::UntypedSubscriber subscriber(service(spec), options);
    run.ready.fetch_add(1);
    wait_for_go(run);
    subscribe_loop(spec, run, [&](std::span<std::byte> buffer) {
      auto taken = subscriber.take();
      if (taken.has_error()) {
        if (taken.get_error() == iox::popo::ChunkReceiveResult::NO_CHUNK_AVAILABLE) return Got::kNone;
        fail(run, "iceoryx subscriber: take failed");
        return Got::kError;
      }
      std::memcpy(buffer.data(), taken.value(), buffer.size());
      subscriber.release(taken.value());
      return Got::kMessage;
    });
    run.drained.store(1, std::memory_order_release);
    return run.errors.load() == 0 ? 0 : 1;
  }

  void cleanup(const RunSpec& spec) override {
    roudi_.stop();
    // A runtime leaves its socket and lock file in /tmp when its process ends without tearing it
    // down (the children _exit()).
    std::vector<std::string> roles = {"s"};
    for (int i = 0; i < spec.publishers; ++i) roles.push_back("p" + std::to_string(i));
    for (const std::string& role : roles) {
      const std::string path = "/tmp/" + runtime_name(getpid(), role);
      unlink(path.c_str());
      unlink((path + ".lock").c_str());
    }
  }

 private:
  RoudiProcess roudi_;
};

}  // namespace

std::unique_ptr<PeerUnderTest> make_iceoryx_peer(std::string*) { return std::make_unique<IceoryxPeer>(); }

}  // namespace shmring::bench::publishers
