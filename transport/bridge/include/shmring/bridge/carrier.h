// The carrier: what the bridge needs from a network messaging engine, and nothing more. The bridge
// (bridge.h) speaks its own small message format (docs/bridge.md) over a carrier; framing,
// connection, reconnection, queuing and transport security are the carrier's (the engine's) job.
// ZeroMQ is the one carrier today (make_zmq_server / make_zmq_client); a second engine is a second
// implementation of this interface, with no change to the channel side.
//
// A server carrier binds and talks to any number of peers, each named by a PeerId it chooses; a
// client carrier connects to one server (its PeerId arguments are ignored, and what it receives
// carries an empty one). Both sides reconnect by themselves. A carrier is used by one thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace shmring::bridge {

// A peer of a server carrier (ZeroMQ: the connection's routing id). Opaque bytes.
using PeerId = std::string;

enum class SendResult : std::uint8_t {
  kOk,
  kFull,  // the engine's queue toward that peer is at its high-water mark: try again later
  kGone,  // no such peer (it disconnected)
};

// One message as received: its sender (server carriers) and its parts. The spans stay valid
// until the next try_receive on the same carrier.
struct Incoming {
  std::span<const std::byte> peer;
  std::span<const std::byte> header;
  std::span<const std::byte> payload;
  std::size_t parts = 0;  // data parts the message had (the bridge sends 1 or 2); more: malformed
};

// Connection events a carrier saw since it was last asked.
struct CarrierEvents {
  std::uint32_t connected = 0;     // connections (re)established and past their handshake
  std::uint32_t disconnected = 0;  // connections lost
  std::uint32_t refused = 0;       // handshakes that failed (authentication, protocol)
  std::uint32_t retried = 0;       // client: connection attempts that failed (address unresolvable,
                                   // unreachable, or nothing listening); tried again after a back-off
};

class Carrier {
 public:
  virtual ~Carrier() = default;

  // Sends one message (header, then payload, which may be empty) to `peer`. Never waits: kFull
  // when the engine's queue toward the peer (or, for a client, toward the server) is full.
  virtual SendResult try_send(const PeerId& peer, std::span<const std::byte> header,
                              std::span<const std::byte> payload) noexcept = 0;
  // The next message received, if any (true). Never waits.
  virtual bool try_receive(Incoming* out) noexcept = 0;
  // A descriptor to poll for readability (with the bridge's other descriptors): it becomes
  // readable when the carrier's state may have changed. It can also be readable with nothing to
  // receive, and a message can be waiting while it is quiet (ZeroMQ's ZMQ_FD is edge-like):
  // call has_input() before every wait and after every wake.
  virtual int descriptor() const noexcept = 0;
  // Whether try_receive would return a message now.
  virtual bool has_input() noexcept = 0;
  // Connection events since the last call. A client whose connection came back says hello
  // again at once (the server may be a new process that knows nothing of it). A client refused
  // at the handshake connects again after a back-off; callers call this at least every
  // heartbeat_interval, which is when a due reconnection is started.
  virtual CarrierEvents take_events() noexcept = 0;
  // Where it listens or connects, for status lines ("tcp://127.0.0.1:7001").
  virtual std::string endpoint() const = 0;
};

// CURVE keys, as 40-character Z85 text (ZeroMQ's encoding; `shmring bridge keygen` makes them).
struct CurveKeys {
  std::string public_key;
  std::string secret_key;
};
// A fresh key pair (neither key starts with '/' or '.', so both work as text where read_key takes
// a file or a key). kUnavailable if the ZeroMQ library was built without CURVE.
absl::StatusOr<CurveKeys> generate_curve_keys();
// The public key of a Z85 secret key (kInvalidArgument if it is not one).
absl::StatusOr<std::string> curve_public_key(std::string_view secret_key);

// Security of a carrier. Empty: plain TCP (anyone who can reach the port can talk to it).
struct CarrierSecurity {
  std::string secret_key;          // this side's secret key: turns CURVE on
  std::string server_public_key;   // client: the server's public key (required with CURVE)
  // Server: the public keys of the clients it accepts. Empty with CURVE on: any client that
  // knows the server's public key (the handshake proves it).
  std::vector<std::string> authorized_clients;
};

struct CarrierOptions {
  CarrierSecurity security;
  // Messages queued toward one peer before try_send says kFull (ZeroMQ SNDHWM / RCVHWM).
  int high_water_mark = 1000;
  // Messages received and not yet taken before the connection is read no further (ZeroMQ
  // RCVHWM; 0: high_water_mark). It bounds what a peer that ignores flow control can make this
  // side hold: receive_queue x the largest message accepted (an import uses kImportReceiveQueue).
  int receive_queue = 0;
  // Connection liveness (ZeroMQ heartbeats): a peer silent for `peer_timeout` is dropped.
  std::chrono::milliseconds heartbeat_interval{500};
  std::chrono::milliseconds peer_timeout{3000};
  // Reconnection: the first attempt after reconnect_interval, then each failed attempt doubles
  // the wait up to reconnect_interval_max, each with a random jitter added (so many clients of
  // one restarted server do not come back in step). A handshake that is refused (CURVE) ends a
  // ZeroMQ connection for good: the client makes a new socket, with the same back-off.
  std::chrono::milliseconds reconnect_interval{100};
  std::chrono::milliseconds reconnect_interval_max{5000};
  // Larger incoming message parts are refused by the engine before they are read in full (0: no
  // limit). The export side takes headers only (4 KiB); the import side's default is
  // kDefaultImportMaxMessage: a channel described with larger messages is refused.
  std::size_t max_message_bytes = 0;
};

// An import's receive_queue when none is given: room for 32 batches (an honest export sends no
// more than the window it was given credit for; this bounds a dishonest one's flood).
inline constexpr int kImportReceiveQueue = 32;
inline constexpr std::size_t kDefaultImportMaxMessage = std::size_t{256} << 20;

// ZeroMQ carriers (ROUTER bound at `endpoint`, DEALER connected to it), tcp:// (IPv4, IPv6 as
// tcp://[::1]:7001, or a host name), or ipc://, inproc:// for tests. kInvalidArgument for a bad endpoint or key; kUnavailable when the address
// cannot be bound.
// What the factories check before they bind or connect: the endpoint's form, the keys.
absl::Status check_zmq_options(const std::string& endpoint, const CarrierOptions& options, bool server);
absl::StatusOr<std::unique_ptr<Carrier>> make_zmq_server(const std::string& endpoint,
                                                         const CarrierOptions& options);
absl::StatusOr<std::unique_ptr<Carrier>> make_zmq_client(const std::string& endpoint,
                                                         const CarrierOptions& options);

}  // namespace shmring::bridge
