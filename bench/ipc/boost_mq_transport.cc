// Boost.Interprocess message_queue: two queues (A->B, B->A). Spin mode polls try_send/try_receive;
// hybrid and park use the blocking calls (Boost waits on an interprocess condition variable).
#include <boost/interprocess/ipc/message_queue.hpp>

#include "transports.h"

namespace shmring::bench {
namespace {

namespace bip = boost::interprocess;

class BoostMqEndpoint final : public Endpoint {
 public:
  BoostMqEndpoint(const std::string& out, const std::string& in, bool spin)
      : out_(bip::open_only, out.c_str()), in_(bip::open_only, in.c_str()), spin_(spin) {}
  bool send(const std::byte* data, std::size_t size) override {
    if (!spin_) {
      out_.send(data, size, 0);
      return true;
    }
    while (!out_.try_send(data, size, 0)) {
    }
    return true;
  }
  bool receive(std::byte* data, std::size_t size) override {
    bip::message_queue::size_type received = 0;
    unsigned priority = 0;
    if (!spin_) {
      in_.receive(data, size, received, priority);
    } else {
      while (!in_.try_receive(data, size, received, priority)) {
      }
    }
    return received == size;
  }

 private:
  bip::message_queue out_;
  bip::message_queue in_;
  bool spin_;
};

class BoostMqTransport final : public IpcTransport {
 public:
  std::string wait_description(WaitMode wait) const override {
    return wait == WaitMode::kSpin ? "busy-poll (try_send/try_receive)"
                                   : "blocking (interprocess condition variable)";
  }
  absl::Status prepare(const BenchConfig& config) override {
    names_[0] = "shmring_bench_bmq_ab_" + config.run_id;
    names_[1] = "shmring_bench_bmq_ba_" + config.run_id;
    // Bounded by memory: at most 64 MiB of queued messages, at least 4, at most 1024.
    const std::size_t depth =
        std::clamp<std::size_t>((64u << 20) / std::max<std::size_t>(config.size, 1), 4, 1024);
    try {
      for (const std::string& name : names_) {
        bip::message_queue::remove(name.c_str());
        bip::message_queue(bip::create_only, name.c_str(), depth, config.size);
      }
    } catch (const std::exception& e) {
      cleanup();
      return absl::InternalError(std::string("boost message_queue: ") + e.what());
    }
    return absl::OkStatus();
  }
  absl::StatusOr<std::unique_ptr<Endpoint>> open(int side, const BenchConfig& config) override {
    try {
      return std::unique_ptr<Endpoint>(new BoostMqEndpoint(
          names_[side], names_[1 - side], config.wait == WaitMode::kSpin));
    } catch (const std::exception& e) {
      return absl::InternalError(std::string("boost message_queue open: ") + e.what());
    }
  }
  void cleanup() override {
    for (const std::string& name : names_) {
      if (!name.empty()) bip::message_queue::remove(name.c_str());
    }
  }

 private:
  std::string names_[2];  // [0]: A -> B, [1]: B -> A
};

}  // namespace

std::unique_ptr<IpcTransport> make_boost_mq_transport() {
  return std::make_unique<BoostMqTransport>();
}

}  // namespace shmring::bench
