// The interface every transport in the cross-process benchmark implements, and the options of one
// benchmark run. A transport connects two processes, side 0 ("A", the initiator) and side 1 ("B",
// the responder), with a channel in each direction.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace shmring::bench {

// kDescriptor: shmring channels only: try_ calls, then epoll on the endpoint's wait_fd().
enum class WaitMode { kSpin, kHybrid, kPark, kDescriptor };

std::string to_string(WaitMode wait);

struct BenchConfig {
  std::string transport = "shmring-spsc";
  std::string mode = "pingpong";  // pingpong | throughput | wake | wake-cost | fanout | pipeline | frames | calls
  std::size_t size = 64;
  std::uint64_t count = 200000;
  WaitMode wait = WaitMode::kSpin;
  std::vector<int> cpus = {0, 1};
  int subscribers = 1;
  int clients = 1;   // calls mode: client processes (sides 0 .. clients - 1)
  int servers = 1;   // calls mode: server processes (the sides after the clients)
  int depth = 16;    // calls mode: calls each client keeps in flight
  double rate = 0;  // messages per second for open-loop runs; 0 = closed loop
  int repetitions = 3;
  bool json = false;
  std::string run_id;  // unique per run: names of segments, queues and sockets
};

// One process's end of the connection. Messages have the fixed size of the run.
class Endpoint {
 public:
  virtual ~Endpoint() = default;
  // Sends one message, waiting (per the run's WaitMode) while the channel is full.
  virtual bool send(const std::byte* data, std::size_t size) = 0;
  // Receives one message of `size` bytes into `data`, waiting while there is none.
  virtual bool receive(std::byte* data, std::size_t size) = 0;
  // Zero-copy forms (frames mode): publish a `size`-byte message written in place (only its first
  // 8 bytes, a frame number, are touched) / take the next message in place and release it.
  // `*number` gets those 8 bytes. The defaults copy through send()/receive().
  virtual bool send_in_place(std::size_t size, std::uint64_t number);
  virtual bool receive_in_place(std::size_t size, std::uint64_t* number);
  // Calls mode (request/response transports): a client makes `count` calls of `size` bytes,
  // keeping up to `depth` in flight, and returns how many were answered (each answer checked to
  // be its request's). The default makes them one at a time with send() then receive().
  virtual std::uint64_t make_calls(std::uint64_t count, int depth, std::size_t size);
  // A server answers calls until stop() says so (asked at least every 10 ms). The default cannot
  // serve (false): a transport with a calls mode overrides it.
  virtual bool serve_calls(const std::function<bool()>& stop, std::size_t size);
};

class IpcTransport {
 public:
  virtual ~IpcTransport() = default;
  // How this transport waits under `wait`, for the results table ("busy-poll", "blocking read"...).
  virtual std::string wait_description(WaitMode wait) const = 0;
  // In the parent, before the two processes are forked: creates what both sides open.
  virtual absl::Status prepare(const BenchConfig& config) = 0;
  // In a child process: opens side `side`. Two-process modes use side 0 (A) and 1 (B); fanout
  // uses 0 (publisher) and 1..subscribers; pipeline uses 0-1 (producers) and 2-3 (consumers);
  // calls uses 0..clients-1 (clients) and the rest (servers). Request/response transports (the
  // services) take side 0 of pingpong and wake as the client and side 1 as the server.
  virtual absl::StatusOr<std::unique_ptr<Endpoint>> open(int side, const BenchConfig& config) = 0;
  // Modes this transport can run (default: pingpong, throughput, wake).
  virtual bool supports(const std::string& mode) const;
  // In the parent after both children exited (also after failures): removes what prepare() made.
  virtual void cleanup() = 0;
};

// The transport called `name`, or nullptr with `why_not` set (unknown, or not built/installed:
// the run reports it as skipped).
std::unique_ptr<IpcTransport> make_transport(const std::string& name, std::string* why_not);

// Every transport name the harness knows, built or not.
std::vector<std::string> known_transports();

}  // namespace shmring::bench
