// Kernel byte-stream peers: `pipe` (two pipes) and `uds` (a Unix stream socket pair). Messages have
// the run's fixed size, so a receiver reads exactly that many bytes. Spin mode uses O_NONBLOCK and
// retries (busy-polling); hybrid and park block in the kernel.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "transports.h"

namespace shmring::bench {
namespace {

class StreamEndpoint final : public Endpoint {
 public:
  StreamEndpoint(int read_fd, int write_fd) : read_fd_(read_fd), write_fd_(write_fd) {}
  ~StreamEndpoint() override {
    close(read_fd_);
    if (write_fd_ != read_fd_) close(write_fd_);
  }
  bool send(const std::byte* data, std::size_t size) override {
    while (size > 0) {
      const ssize_t n = write(write_fd_, data, size);
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) continue;
        return false;
      }
      data += n;
      size -= static_cast<std::size_t>(n);
    }
    return true;
  }
  bool receive(std::byte* data, std::size_t size) override {
    while (size > 0) {
      const ssize_t n = read(read_fd_, data, size);
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) continue;
        return false;
      }
      if (n == 0) return false;
      data += n;
      size -= static_cast<std::size_t>(n);
    }
    return true;
  }

 private:
  int read_fd_;
  int write_fd_;
};

void set_nonblocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

class StreamTransport final : public IpcTransport {
 public:
  explicit StreamTransport(bool socket) : socket_(socket) {}
  std::string wait_description(WaitMode wait) const override {
    return wait == WaitMode::kSpin ? "busy-poll (O_NONBLOCK read/write)" : "blocking read/write";
  }
  absl::Status prepare(const BenchConfig& config) override {
    if (socket_) {
      int pair[2];
      if (socketpair(AF_UNIX, SOCK_STREAM, 0, pair) != 0) return absl::InternalError("socketpair");
      fds_[0][0] = fds_[0][1] = pair[0];
      fds_[1][0] = fds_[1][1] = pair[1];
      const int buffer = static_cast<int>(std::max<std::size_t>(config.size * 4, 1 << 20));
      for (int fd : pair) {
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buffer, sizeof buffer);
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buffer, sizeof buffer);
      }
    } else {
      int a_to_b[2], b_to_a[2];
      if (pipe(a_to_b) != 0 || pipe(b_to_a) != 0) return absl::InternalError("pipe");
      // Larger pipes (up to the unprivileged limit) so big messages are not split into many writes.
      for (int fd : {a_to_b[1], b_to_a[1]}) fcntl(fd, F_SETPIPE_SZ, 1 << 20);
      fds_[0][0] = b_to_a[0];  // A reads what B writes
      fds_[0][1] = a_to_b[1];
      fds_[1][0] = a_to_b[0];
      fds_[1][1] = b_to_a[1];
    }
    return absl::OkStatus();
  }
  absl::StatusOr<std::unique_ptr<Endpoint>> open(int side, const BenchConfig& config) override {
    // Close the other side's descriptors in this process so end-of-file works.
    const int other = 1 - side;
    if (!socket_) {
      close(fds_[other][0]);
      close(fds_[other][1]);
    } else {
      close(fds_[other][0]);
    }
    if (config.wait == WaitMode::kSpin) {
      set_nonblocking(fds_[side][0]);
      set_nonblocking(fds_[side][1]);
    }
    return std::unique_ptr<Endpoint>(new StreamEndpoint(fds_[side][0], fds_[side][1]));
  }
  void cleanup() override {
    for (auto& side : fds_) {
      for (int& fd : side) {
        if (fd >= 0) close(fd);
        fd = -1;
      }
    }
  }

 private:
  bool socket_;
  int fds_[2][2] = {{-1, -1}, {-1, -1}};  // [side][read, write]
};

}  // namespace

std::unique_ptr<IpcTransport> make_pipe_transport() {
  return std::make_unique<StreamTransport>(false);
}
std::unique_ptr<IpcTransport> make_uds_transport() {
  return std::make_unique<StreamTransport>(true);
}

}  // namespace shmring::bench
