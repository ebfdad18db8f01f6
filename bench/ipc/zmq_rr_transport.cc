// ZeroMQ request/response over ipc:// (`zmq-rr`), what a user on one host picks instead of a
// service: REQ/REP for pingpong and wake (one call at a time), DEALER/ROUTER for calls mode (each
// client's DEALER connects to every server's ROUTER and spreads its calls over them, `depth` in
// flight). Blocking calls only (see zmq_transport.cc: polling starves ZeroMQ's I/O thread on the
// pinned core). The sockets live in a private directory under /tmp.
#include <zmq.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <set>
#include <vector>

#include "transports.h"

namespace shmring::bench {
namespace {

class ZmqRrEndpoint final : public Endpoint {
 public:
  ZmqRrEndpoint(void* context, void* socket) : context_(context), socket_(socket) {}
  ~ZmqRrEndpoint() override {
    int linger = 1000;
    zmq_setsockopt(socket_, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close(socket_);
    zmq_ctx_term(context_);
  }
  bool send(const std::byte* data, std::size_t size) override {
    for (;;) {
      if (zmq_send(socket_, data, size, 0) == static_cast<int>(size)) return true;
      if (zmq_errno() != EINTR) return false;
    }
  }
  bool receive(std::byte* data, std::size_t size) override {
    for (;;) {
      const int n = zmq_recv(socket_, data, size, 0);
      if (n >= 0) return static_cast<std::size_t>(n) == size;
      if (zmq_errno() != EINTR) return false;
    }
  }
  // DEALER: `depth` calls out, answered by whichever server took each.
  std::uint64_t make_calls(std::uint64_t count, int depth, std::size_t size) override {
    std::vector<std::byte> message(std::max<std::size_t>(size, 8));
    std::set<std::uint64_t> out;
    std::uint64_t sent = 0, answered = 0;
    while (answered < count) {
      while (sent < count && out.size() < static_cast<std::size_t>(std::max(depth, 1))) {
        std::memcpy(message.data(), &sent, sizeof sent);
        if (!send(message.data(), size)) return answered;
        out.insert(sent++);
      }
      if (!receive(message.data(), size)) return answered;
      std::uint64_t got = 0;
      std::memcpy(&got, message.data(), std::min<std::size_t>(size, 8));
      if (size >= 8 && out.erase(got) != 1) return answered;
      if (size < 8) out.erase(out.begin());
      ++answered;
    }
    return answered;
  }
  // ROUTER: [client identity][request] in, the same identity and the answer out.
  bool serve_calls(const std::function<bool()>& stop, std::size_t size) override {
    std::vector<std::byte> identity(256), message(std::max<std::size_t>(size, 8));
    while (!stop()) {
      zmq_pollitem_t item{socket_, 0, ZMQ_POLLIN, 0};
      if (zmq_poll(&item, 1, 5) <= 0) continue;
      const int id_bytes = zmq_recv(socket_, identity.data(), identity.size(), 0);
      const int n = id_bytes >= 0 ? zmq_recv(socket_, message.data(), message.size(), 0) : -1;
      if (n < 0) return false;
      if (zmq_send(socket_, identity.data(), static_cast<std::size_t>(id_bytes), ZMQ_SNDMORE) < 0 ||
          zmq_send(socket_, message.data(), static_cast<std::size_t>(n), 0) < 0) {
        return false;
      }
    }
    return true;
  }

 private:
  void* context_;
  void* socket_;
};

class ZmqRrTransport final : public IpcTransport {
 public:
  std::string wait_description(WaitMode) const override {
    return "blocking REQ/REP (calls: DEALER/ROUTER) over ipc://";
  }
  bool supports(const std::string& mode) const override {
    return mode == "pingpong" || mode == "wake" || mode == "calls";
  }
  absl::Status prepare(const BenchConfig&) override {
    char dir_template[] = "/tmp/shmring_bench_zmqrr_XXXXXX";
    if (mkdtemp(dir_template) == nullptr) return absl::InternalError("mkdtemp");
    dir_ = dir_template;
    return absl::OkStatus();
  }
  absl::StatusOr<std::unique_ptr<Endpoint>> open(int side, const BenchConfig& config) override {
    const bool calls = config.mode == "calls";
    const bool client = calls ? side < config.clients : side == 0;
    void* context = zmq_ctx_new();
    void* socket = zmq_socket(context, calls ? (client ? ZMQ_DEALER : ZMQ_ROUTER) : (client ? ZMQ_REQ : ZMQ_REP));
    int rc = 0;
    if (client) {
      const int servers = calls ? config.servers : 1;
      for (int s = 0; s < servers && rc == 0; ++s) rc = zmq_connect(socket, address(s).c_str());
    } else {
      rc = zmq_bind(socket, address(calls ? side - config.clients : 0).c_str());
    }
    if (rc != 0) {
      zmq_close(socket);
      zmq_ctx_term(context);
      return absl::InternalError(std::string("zmq bind/connect: ") + zmq_strerror(zmq_errno()));
    }
    return std::unique_ptr<Endpoint>(new ZmqRrEndpoint(context, socket));
  }
  void cleanup() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

 private:
  std::string address(int server) const { return "ipc://" + dir_ + "/rr-" + std::to_string(server); }
  std::string dir_;
};

}  // namespace

std::unique_ptr<IpcTransport> make_zmq_rr_transport() { return std::make_unique<ZmqRrTransport>(); }

}  // namespace shmring::bench
