// Eclipse iceoryx 2.0 (Debian's packages) as a peer: the untyped zero-copy API (loan -> write ->
// publish, take -> read -> release), one topic per direction (`iceoryx`), or its request/response
// (`iceoryx-rr`: UntypedClient / UntypedServer, side 0 the client, side 1 the server). prepare()
// starts its own iox-roudi with a mempool configuration sized for the run (iceoryx_roudi.h);
// cleanup() stops it. Spin mode busy-polls take(); hybrid and park block on a WaitSet.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>
#include <thread>

#include "iceoryx_hoofs/log/logmanager.hpp"
#include "iceoryx_posh/popo/rpc_header.hpp"
#include "iceoryx_posh/popo/untyped_client.hpp"
#include "iceoryx_posh/popo/untyped_publisher.hpp"
#include "iceoryx_posh/popo/untyped_server.hpp"
#include "iceoryx_posh/popo/untyped_subscriber.hpp"
#include "iceoryx_posh/popo/wait_set.hpp"
#include "iceoryx_posh/runtime/posh_runtime.hpp"
#include "iceoryx_roudi.h"
#include "transports.h"

namespace shmring::bench {
namespace {

std::size_t queue_depth(std::size_t size) {
  return std::clamp<std::size_t>((64u << 20) / std::max<std::size_t>(size, 1), 2, 256);
}

iox::capro::IdString_t id(const std::string& text) {
  return iox::capro::IdString_t(iox::cxx::TruncateToCapacity, text.c_str());
}

class IceoryxEndpoint final : public Endpoint {
 public:
  IceoryxEndpoint(const std::string& out_topic, const std::string& in_topic, std::size_t size,
                  bool spin)
      : subscriber_({id("shmring"), id("bench"), id(in_topic)}, subscriber_options(size)),
        publisher_({id("shmring"), id("bench"), id(out_topic)}, publisher_options()),
        spin_(spin) {
    if (!spin_) {
      waitset_.emplace();
      waitset_->attachState(subscriber_, iox::popo::SubscriberState::HAS_DATA)
          .or_else([](auto&) { std::fprintf(stderr, "iceoryx: cannot attach waitset\n"); });
    }
  }
  // Waits (up to 10 s) until the other side's subscriber is connected, so no message is dropped.
  bool wait_for_peer() {
    for (int i = 0; i < 10000 && !publisher_.hasSubscribers(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return publisher_.hasSubscribers();
  }
  bool send(const std::byte* data, std::size_t size) override {
    for (;;) {
      auto loaned = publisher_.loan(static_cast<std::uint32_t>(size));
      if (!loaned.has_error()) {
        std::memcpy(loaned.value(), data, size);
        publisher_.publish(loaned.value());
        return true;
      }
      if (loaned.get_error() != iox::popo::AllocationError::RUNNING_OUT_OF_CHUNKS) return false;
    }
  }
  bool receive(std::byte* data, std::size_t size) override {
    for (;;) {
      auto taken = subscriber_.take();
      if (!taken.has_error()) {
        std::memcpy(data, taken.value(), size);
        subscriber_.release(taken.value());
        return true;
      }
      if (taken.get_error() != iox::popo::ChunkReceiveResult::NO_CHUNK_AVAILABLE) return false;
      if (waitset_) waitset_->wait();
    }
  }

 private:
  static iox::popo::SubscriberOptions subscriber_options(std::size_t size) {
    iox::popo::SubscriberOptions options;
    options.queueCapacity = queue_depth(size);
    options.historyRequest = 0;
    options.queueFullPolicy = iox::popo::QueueFullPolicy::BLOCK_PRODUCER;  // lossless
    return options;
  }
  static iox::popo::PublisherOptions publisher_options() {
    iox::popo::PublisherOptions options;
    options.historyCapacity = 0;
    options.subscriberTooSlowPolicy = iox::popo::ConsumerTooSlowPolicy::WAIT_FOR_CONSUMER;
    return options;
  }

  iox::popo::UntypedSubscriber subscriber_;
  iox::popo::UntypedPublisher publisher_;
  std::optional<iox::popo::WaitSet<>> waitset_;
  bool spin_;
};

// Request/response: the client loans a request, sends it and takes the response; the server takes
// the request, loans the response for it, sends it and releases the request.
class IceoryxRrEndpoint final : public Endpoint {
 public:
  IceoryxRrEndpoint(const std::string& service, std::size_t size, bool client, bool spin) : spin_(spin) {
    const iox::capro::ServiceDescription description{id("shmring"), id("bench-rr"), id(service)};
    if (client) {
      iox::popo::ClientOptions options;
      options.responseQueueCapacity = 16;
      client_.emplace(description, options);
      if (!spin_) {
        waitset_.emplace();
        waitset_->attachState(*client_, iox::popo::ClientState::HAS_RESPONSE).or_else([](auto&) {
          std::fprintf(stderr, "iceoryx: cannot attach waitset\n");
        });
      }
    } else {
      iox::popo::ServerOptions options;
      options.requestQueueCapacity = 16;
      server_.emplace(description, options);
      if (!spin_) {
        waitset_.emplace();
        waitset_->attachState(*server_, iox::popo::ServerState::HAS_REQUEST).or_else([](auto&) {
          std::fprintf(stderr, "iceoryx: cannot attach waitset\n");
        });
      }
    }
    (void)size;
  }
  bool wait_for_peer() {
    for (int i = 0; i < 10000; ++i) {
      if (client_ && client_->getConnectionState() == iox::ConnectionState::CONNECTED) return true;
      if (server_ && server_->hasClients()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return false;
  }
  bool send(const std::byte* data, std::size_t size) override {
    if (client_) {
      auto loaned = client_->loan(static_cast<std::uint32_t>(size), alignof(std::max_align_t));
      if (loaned.has_error()) return false;
      std::memcpy(loaned.value(), data, size);
      return !client_->send(loaned.value()).has_error();
    }
    if (request_ == nullptr) return false;
    auto loaned = server_->loan(iox::popo::RequestHeader::fromPayload(request_), static_cast<std::uint32_t>(size),
                                alignof(std::max_align_t));
    if (loaned.has_error()) return false;
    std::memcpy(loaned.value(), data, size);
    const bool sent = !server_->send(loaned.value()).has_error();
    server_->releaseRequest(request_);
    request_ = nullptr;
    return sent;
  }
  bool receive(std::byte* data, std::size_t size) override {
    for (;;) {
      if (client_) {
        auto taken = client_->take();
        if (!taken.has_error()) {
          std::memcpy(data, taken.value(), size);
          client_->releaseResponse(taken.value());
          return true;
        }
        if (taken.get_error() != iox::popo::ChunkReceiveResult::NO_CHUNK_AVAILABLE) return false;
      } else {
        auto taken = server_->take();
        if (!taken.has_error()) {
          request_ = taken.value();
          std::memcpy(data, request_, size);
          return true;
        }
        if (taken.get_error() != iox::popo::ServerRequestResult::NO_PENDING_REQUESTS) return false;
      }
      if (waitset_) waitset_->wait();
    }
  }

 private:
  std::optional<iox::popo::UntypedClient> client_;
  std::optional<iox::popo::UntypedServer> server_;
  std::optional<iox::popo::WaitSet<>> waitset_;
  const void* request_ = nullptr;
  bool spin_;
};

class IceoryxTransport final : public IpcTransport {
 public:
  explicit IceoryxTransport(bool request_response) : request_response_(request_response) {}
  std::string wait_description(WaitMode wait) const override {
    if (request_response_) {
      return wait == WaitMode::kSpin ? "busy-poll take() (request/response, loan API)"
                                     : "WaitSet (request/response, loan API)";
    }
    return wait == WaitMode::kSpin ? "busy-poll take() (zero-copy loan API)"
                                   : "WaitSet (zero-copy loan API)";
  }
  absl::Status prepare(const BenchConfig& config) override {
    // One mempool big enough for the run's messages (plus iceoryx's chunk header), enough chunks
    // for two full queues in each direction.
    const std::size_t chunk = ((config.size + 256 + 63) / 64) * 64;
    return roudi_.start(chunk, 4 * queue_depth(config.size) + 16);
  }
  absl::StatusOr<std::unique_ptr<Endpoint>> open(int side, const BenchConfig& config) override {
    const std::string name = "shmring_bench_" + std::to_string(side) + "_" + config.run_id;
    // Only errors: its start-up chatter ("RouDi not found - waiting") would drown the results.
    iox::log::LogManager::GetLogManager().SetDefaultLogLevel(iox::log::LogLevel::kError,
                                                         iox::log::LogLevelOutput::kHideLogLevel);
    iox::runtime::PoshRuntime::initRuntime(iox::RuntimeName_t(iox::cxx::TruncateToCapacity, name.c_str()));
    if (request_response_) {
      auto rr = std::make_unique<IceoryxRrEndpoint>("rr" + config.run_id, config.size, side == 0,
                                                     config.wait == WaitMode::kSpin);
      if (!rr->wait_for_peer()) return absl::DeadlineExceededError("iceoryx client and server never connected");
      return std::unique_ptr<Endpoint>(std::move(rr));
    }
    auto endpoint = std::make_unique<IceoryxEndpoint>(side == 0 ? "ab" + config.run_id : "ba" + config.run_id,
                                                      side == 0 ? "ba" + config.run_id : "ab" + config.run_id,
                                                      config.size, config.wait == WaitMode::kSpin);
    if (!endpoint->wait_for_peer()) return absl::DeadlineExceededError("iceoryx peer never subscribed");
    return std::unique_ptr<Endpoint>(std::move(endpoint));
  }
  void cleanup() override { roudi_.stop(); }

 private:
  bool request_response_;
  RoudiProcess roudi_;
};

}  // namespace

std::unique_ptr<IpcTransport> make_iceoryx_transport() {
  return std::make_unique<IceoryxTransport>(false);
}

std::unique_ptr<IpcTransport> make_iceoryx_rr_transport() {
  return std::make_unique<IceoryxTransport>(true);
}

}  // namespace shmring::bench
