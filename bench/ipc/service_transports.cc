// shmring's services as benchmark transports: `shmring-service` (ServiceClient::send_request /
// PendingResponse::receive, ServiceServer::receive_request / ActiveRequest::respond, copying the
// whole message each way) and `shmring-service-zc` (loan_request, views of the request and the
// response, loan_response: the application writes and reads the first 8 bytes in place). Side 0
// is the client and side 1 the server in pingpong and wake; calls mode runs N clients and M
// competing servers, each client keeping `depth` calls in flight. They wait with the service's own
// strategies: spin = kBusySpin (and the try_ calls), hybrid, park, and fd = try_ calls, then epoll
// on wait_fd.
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <deque>
#include <optional>

#include "shmring/transport/service.h"
#include "transports.h"

namespace shmring::bench {
namespace {

constexpr std::chrono::seconds kTimeout{30};

std::size_t touched(std::size_t size) { return std::min<std::size_t>(size, sizeof(std::uint64_t)); }

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

// Retries a try_ call until it is not kWouldBlock, sleeping in epoll on `fd` in between.
class Poller {
 public:
  ~Poller() {
    if (epoll_ >= 0) close(epoll_);
  }
  bool active() const { return epoll_ >= 0; }
  bool watch(const ChannelEndpoint& endpoint) {
    epoll_ = epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN;
    return endpoint.wait_fd() >= 0 && epoll_ctl(epoll_, EPOLL_CTL_ADD, endpoint.wait_fd(), &ev) == 0;
  }
  bool wait(int timeout_ms) {
    epoll_event ev{};
    return epoll_wait(epoll_, &ev, 1, timeout_ms) >= 0;
  }

 private:
  int epoll_ = -1;
};

class ServiceBenchEndpoint final : public Endpoint {
 public:
  ServiceBenchEndpoint(ServiceClient client, ServiceServer server, bool zero_copy, bool spin, bool descriptor)
      : client_(std::move(client)), server_(std::move(server)), zero_copy_(zero_copy), spin_(spin) {
    if (descriptor) poller_.watch(client_.is_open() ? static_cast<const ChannelEndpoint&>(client_) : server_);
  }

  // --- pingpong: the client sends a request and receives its response; the server the reverse.
  bool send(const std::byte* data, std::size_t size) override {
    if (client_.is_open()) {
      pending_ = request(data, size);
      return pending_.ok();
    }
    return answer(active_, data, size);
  }
  bool receive(std::byte* data, std::size_t size) override {
    if (client_.is_open()) return response(pending_, data, size);
    active_ = take(std::chrono::duration_cast<std::chrono::nanoseconds>(kTimeout));
    if (!active_.ok() || active_.data().size() != size) return false;
    std::memcpy(data, active_.data().data(), zero_copy_ ? touched(size) : size);
    return true;
  }

  // --- calls: `depth` requests in flight, answered in any order.
  std::uint64_t make_calls(std::uint64_t count, int depth, std::size_t size) override {
    std::vector<std::byte> message(std::max<std::size_t>(size, 8));
    std::vector<std::byte> answer(message.size());
    struct Call {
      PendingResponse pending;
      std::uint64_t number = 0;
    };
    std::deque<Call> calls;
    std::uint64_t sent = 0;
    std::uint64_t answered = 0;
    const auto limit = static_cast<std::size_t>(std::clamp<int>(depth, 1, static_cast<int>(client_.max_in_flight())));
    while (answered < count) {
      while (sent < count && calls.size() < limit) {
        std::memcpy(message.data(), &sent, sizeof sent);
        Call c{request(message.data(), size), sent};
        if (!c.pending.ok()) break;
        calls.push_back(std::move(c));
        ++sent;
      }
      if (calls.empty()) return answered;
      // The oldest first (a server may answer out of order: the others wait their turn).
      Call& oldest = calls.front();
      if (!response(oldest.pending, answer.data(), size)) return answered;
      std::uint64_t got = 0;
      std::memcpy(&got, answer.data(), touched(size));
      if (size >= 8 && got != oldest.number) return answered;
      calls.pop_front();
      ++answered;
    }
    return answered;
  }

  bool serve_calls(const std::function<bool()>& stop, std::size_t size) override {
    std::vector<std::byte> scratch(std::max<std::size_t>(size, 8));
    while (!stop()) {
      ActiveRequest r = take(std::chrono::milliseconds(5));
      if (!r.ok()) {
        if (r.result() == ChannelResult::kTimedOut || r.result() == ChannelResult::kWouldBlock) continue;
        return false;
      }
      std::memcpy(scratch.data(), r.data().data(), zero_copy_ ? touched(r.data().size()) : r.data().size());
      if (!answer(r, scratch.data(), r.data().size())) return false;
    }
    return true;
  }

 private:
  PendingResponse request(const std::byte* data, std::size_t size) {
    if (zero_copy_) {
      RequestLoan loan = poller_.active() ? until_ok([&] { return client_.try_loan_request(); })
                                          : client_.loan_request(kTimeout);
      if (!loan.ok()) return PendingResponse();
      std::memcpy(loan.buffer().data(), data, touched(size));
      return client_.send_request(loan, size);
    }
    if (poller_.active()) return until_ok([&] { return client_.try_send_request({data, size}); });
    return client_.send_request({data, size}, kTimeout);
  }

  bool response(PendingResponse& p, std::byte* data, std::size_t size) {
    if (zero_copy_) {
      ResponseView v = poller_.active() ? until_ok([&] { return p.try_receive_view(); }) : spin_view(p);
      if (!v.ok() || v.data().size() != size) return false;
      std::memcpy(data, v.data().data(), touched(size));
      return v.release() == ChannelResult::kOk && p.done();
    }
    std::size_t n = 0;
    ChannelResult r;
    if (poller_.active()) {
      while ((r = p.try_receive({data, size}, &n)) == ChannelResult::kWouldBlock) poller_.wait(30000);
    } else if (spin_) {
      while ((r = p.try_receive({data, size}, &n)) == ChannelResult::kWouldBlock) {
      }
    } else {
      r = p.receive({data, size}, &n, kTimeout);
    }
    return r == ChannelResult::kOk && n == size && p.done();
  }

  ResponseView spin_view(PendingResponse& p) {
    if (!spin_) return p.receive_view(kTimeout);
    for (;;) {
      ResponseView v = p.try_receive_view();
      if (v.result() != ChannelResult::kWouldBlock) return v;
    }
  }

  // The next request: waiting up to `timeout` (pingpong: kTimeout; calls: a few ms, then the
  // caller looks whether the clients are done).
  ActiveRequest take(std::chrono::nanoseconds timeout) {
    const bool bounded = timeout < kTimeout;
    if (poller_.active()) {
      const int ms = bounded ? static_cast<int>(std::max<std::int64_t>(timeout.count() / 1'000'000, 1)) : 30000;
      for (int round = 0;; ++round) {
        ActiveRequest r = server_.try_receive_request();
        if (r.result() != ChannelResult::kWouldBlock || (bounded && round > 0)) return r;
        poller_.wait(ms);
      }
    }
    if (spin_) {
      const auto end = std::chrono::steady_clock::now() + timeout;
      for (;;) {
        ActiveRequest r = server_.try_receive_request();
        if (r.result() != ChannelResult::kWouldBlock) return r;
        if (bounded && std::chrono::steady_clock::now() > end) return r;
      }
    }
    return server_.receive_request(timeout);
  }

  bool answer(ActiveRequest& r, const std::byte* data, std::size_t size) {
    if (zero_copy_) {
      ResponseLoan loan = r.try_loan_response();  // a fresh request always has room
      if (!loan.ok()) return false;
      std::memcpy(loan.buffer().data(), data, touched(size));
      return r.respond(loan, size) == ChannelResult::kOk;
    }
    return r.try_respond({data, size}) == ChannelResult::kOk;
  }

  template <typename Attempt>
  auto until_ok(Attempt&& attempt) -> decltype(attempt()) {
    for (;;) {
      auto got = attempt();
      if (got.result() != ChannelResult::kWouldBlock) return got;
      poller_.wait(30000);
    }
  }

  ServiceClient client_;
  ServiceServer server_;
  bool zero_copy_;
  bool spin_;
  Poller poller_;
  PendingResponse pending_;
  ActiveRequest active_;
};

class ServiceTransport final : public IpcTransport {
 public:
  explicit ServiceTransport(bool zero_copy) : zero_copy_(zero_copy) {}
  std::string wait_description(WaitMode wait) const override {
    return wait_text(wait) + (zero_copy_ ? " (service, zero-copy)" : " (service)");
  }
  bool supports(const std::string& mode) const override {
    return mode == "pingpong" || mode == "wake" || mode == "calls";
  }
  absl::Status prepare(const BenchConfig&) override { return absl::OkStatus(); }
  absl::StatusOr<std::unique_ptr<Endpoint>> open(int side, const BenchConfig& config) override {
    ServiceOptions options;
    options.max_request = std::max<std::size_t>(config.size, 8);
    options.max_response = options.max_request;
    options.max_in_flight = static_cast<std::uint32_t>(std::clamp(config.depth, 1, 64));
    options.max_clients = 8;
    options.max_servers = 8;
    options.max_active = 16;
    options.wait = wait_options(config.wait);
    options.request_timeout = std::chrono::seconds(60);
    const std::string name = "bench-service-" + config.run_id;
    const bool client = config.mode == "calls" ? side < config.clients : side == 0;
    if (client) {
      auto opened = ServiceClient::open(name, options);
      if (!opened.ok()) return opened.status();
      // Wait for a server (pingpong: the harness starts both sides before either sends).
      return std::unique_ptr<Endpoint>(new ServiceBenchEndpoint(*std::move(opened), ServiceServer(), zero_copy_,
                                                                config.wait == WaitMode::kSpin,
                                                                config.wait == WaitMode::kDescriptor));
    }
    auto opened = ServiceServer::open(name, options);
    if (!opened.ok()) return opened.status();
    return std::unique_ptr<Endpoint>(new ServiceBenchEndpoint(ServiceClient(), *std::move(opened), zero_copy_,
                                                              config.wait == WaitMode::kSpin,
                                                              config.wait == WaitMode::kDescriptor));
  }
  void cleanup() override {}

 private:
  bool zero_copy_;
};

}  // namespace

std::unique_ptr<IpcTransport> make_shmring_service_transport(bool zero_copy) {
  return std::make_unique<ServiceTransport>(zero_copy);
}

}  // namespace shmring::bench
