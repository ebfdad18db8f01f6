// ZeroMQ over ipc:// with a PAIR socket per side. It always blocks in zmq_send/zmq_recv: ZeroMQ moves
// bytes on a background I/O thread, which inherits the pinned core, and a busy-polling caller on
// that core starves it (a 64 KiB stream then crawls at one message per scheduler tick). Blocking is
// its fastest honest configuration here. The socket file lives in a private directory under /tmp.
#include <zmq.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>

#include "transports.h"

namespace shmring::bench {
namespace {

class ZmqEndpoint final : public Endpoint {
 public:
  ZmqEndpoint(void* context, void* socket, bool spin) : context_(context), socket_(socket), spin_(spin) {}
  ~ZmqEndpoint() override {
    // Let queued messages reach the peer before closing (a sender finishes before its receiver),
    // but do not hang for ever if the peer is gone.
    int linger = 10000;
    zmq_setsockopt(socket_, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close(socket_);
    zmq_ctx_term(context_);
  }
  bool send(const std::byte* data, std::size_t size) override {
    for (;;) {
      if (zmq_send(socket_, data, size, spin_ ? ZMQ_DONTWAIT : 0) == static_cast<int>(size)) {
        return true;
      }
      if (zmq_errno() != EAGAIN && zmq_errno() != EINTR) return false;
    }
  }
  bool receive(std::byte* data, std::size_t size) override {
    for (;;) {
      const int n = zmq_recv(socket_, data, size, spin_ ? ZMQ_DONTWAIT : 0);
      if (n >= 0) return static_cast<std::size_t>(n) == size;
      if (zmq_errno() != EAGAIN && zmq_errno() != EINTR) return false;
    }
  }

 private:
  void* context_;
  void* socket_;
  bool spin_;
};

class ZmqTransport final : public IpcTransport {
 public:
  std::string wait_description(WaitMode wait) const override {
    (void)wait;
    return "blocking zmq_send/zmq_recv (polling starves its I/O thread on the pinned core)";
  }
  absl::Status prepare(const BenchConfig& config) override {
    char dir_template[] = "/tmp/shmring_bench_zmq_XXXXXX";
    if (mkdtemp(dir_template) == nullptr) return absl::InternalError("mkdtemp");
    dir_ = dir_template;
    endpoint_ = "ipc://" + dir_ + "/pair";
    (void)config;
    return absl::OkStatus();
  }
  absl::StatusOr<std::unique_ptr<Endpoint>> open(int side, const BenchConfig& config) override {
    void* context = zmq_ctx_new();
    void* socket = zmq_socket(context, ZMQ_PAIR);
    const int hwm = 100000;
    zmq_setsockopt(socket, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(socket, ZMQ_RCVHWM, &hwm, sizeof hwm);
    const int rc = side == 1 ? zmq_bind(socket, endpoint_.c_str())
                             : zmq_connect(socket, endpoint_.c_str());
    if (rc != 0) {
      zmq_close(socket);
      zmq_ctx_term(context);
      return absl::InternalError(std::string("zmq bind/connect: ") + zmq_strerror(zmq_errno()));
    }
    (void)config;
    return std::unique_ptr<Endpoint>(new ZmqEndpoint(context, socket, /*spin=*/false));
  }
  void cleanup() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

 private:
  std::string dir_;
  std::string endpoint_;
};

}  // namespace

std::unique_ptr<IpcTransport> make_zmq_transport() { return std::make_unique<ZmqTransport>(); }

}  // namespace shmring::bench
