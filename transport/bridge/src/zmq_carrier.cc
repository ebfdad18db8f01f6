// The ZeroMQ carrier: a ROUTER socket bound by the export side, a DEALER connected by the import
// side. ZeroMQ frames the messages, reconnects, queues up to the high-water marks, checks liveness
// with its heartbeats and, with CURVE, authenticates and encrypts. The optional allow-list of
// client keys is enforced by a ZAP handler (zap_handler.h).
#include <zmq.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "shmring/bridge/carrier.h"
#include "shmring/core/clock.h"
#include "shmring/core/detail/message.h"
#include "zap_handler.h"
#include "zmq_context.h"

namespace shmring::bridge {

using shmring::detail::cat;
namespace {

constexpr std::size_t kZ85KeyLength = 40;

absl::Status zmq_error(std::string_view what) {
  return absl::InternalError(cat(what, ": ", zmq_strerror(zmq_errno())));
}

absl::Status check_key(std::string_view key, std::string_view what) {
  if (key.size() != kZ85KeyLength) {
    return absl::InvalidArgumentError(cat(what, " must be 40 characters of Z85 text (got ", key.size(), ")"));
  }
  std::uint8_t binary[32];
  const std::string text(key);
  if (zmq_z85_decode(binary, text.c_str()) == nullptr) {
    return absl::InvalidArgumentError(cat(what, " is not Z85 text"));
  }
  return absl::OkStatus();
}

// Endpoint text ZeroMQ accepts: tcp://host:port, ipc://path, inproc://name.
absl::Status check_endpoint(const std::string& endpoint) {
  if (endpoint.rfind("tcp://", 0) != 0 && endpoint.rfind("ipc://", 0) != 0 &&
      endpoint.rfind("inproc://", 0) != 0) {
    return absl::InvalidArgumentError(cat("bad address '", endpoint,
                                                   "' (want tcp://HOST:PORT)"));
  }
  return absl::OkStatus();
}

void set_int(void* socket, int option, int value) { zmq_setsockopt(socket, option, &value, sizeof value); }

void apply_common(void* socket, const CarrierOptions& o) {
  set_int(socket, ZMQ_LINGER, 0);
  set_int(socket, ZMQ_IPV6, 1);  // IPv6 addresses and host names resolving to them, IPv4 as well
  set_int(socket, ZMQ_SNDHWM, o.high_water_mark);
  set_int(socket, ZMQ_RCVHWM, o.receive_queue != 0 ? o.receive_queue : o.high_water_mark);
  set_int(socket, ZMQ_HEARTBEAT_IVL, static_cast<int>(o.heartbeat_interval.count()));
  set_int(socket, ZMQ_HEARTBEAT_TIMEOUT, static_cast<int>(o.peer_timeout.count()));
  set_int(socket, ZMQ_HEARTBEAT_TTL, static_cast<int>(o.peer_timeout.count()));
  // libzmq waits reconnect_ivl plus a random part of it before the first attempt, then doubles
  // the wait after each failed one up to reconnect_ivl_max (back-off with jitter).
  set_int(socket, ZMQ_RECONNECT_IVL, static_cast<int>(o.reconnect_interval.count()));
  set_int(socket, ZMQ_RECONNECT_IVL_MAX, static_cast<int>(o.reconnect_interval_max.count()));
  set_int(socket, ZMQ_HANDSHAKE_IVL, 5000);
  if (o.max_message_bytes != 0) {
    const std::int64_t max = static_cast<std::int64_t>(o.max_message_bytes);
    zmq_setsockopt(socket, ZMQ_MAXMSGSIZE, &max, sizeof max);
  }
}

// A PAIR socket connected to `socket`'s event monitor (null if ZeroMQ refuses; events are then
// not reported, which only slows down a reconnection's hello).
void* monitor_of(void* socket) {
  static std::atomic<unsigned> next{0};
  const std::string address = cat("inproc://shmring-bridge-monitor-", next.fetch_add(1));
  if (zmq_socket_monitor(socket, address.c_str(),
                         ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                             ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                             ZMQ_EVENT_CONNECT_RETRIED) != 0) {
    return nullptr;
  }
  void* pair = zmq_socket(zmq_context(), ZMQ_PAIR);
  if (pair == nullptr) return nullptr;
  // libzmq sends events with a blocking send: an unbounded pipe keeps a flood of handshakes
  // between two drains (take_events, every loop) from stalling its I/O thread.
  set_int(pair, ZMQ_RCVHWM, 0);
  if (zmq_connect(pair, address.c_str()) != 0) {
    zmq_close(pair);
    return nullptr;
  }
  return pair;
}

absl::Status set_key(void* socket, int option, const std::string& key) {
  if (zmq_setsockopt(socket, option, key.c_str(), key.size()) != 0) return zmq_error("setting a CURVE key");
  return absl::OkStatus();
}

// A socket and its event monitor, closed together.
struct Sockets {
  void* socket = nullptr;
  void* monitor = nullptr;  // PAIR socket receiving the socket's connection events (or null)

  void close() {
    if (socket == nullptr) return;
    zmq_socket_monitor(socket, nullptr, 0);
    if (monitor != nullptr) zmq_close(monitor);
    zmq_close(socket);  // linger 0: queued messages are dropped at once
    socket = monitor = nullptr;
  }
};

// The export's ROUTER, bound.
absl::StatusOr<Sockets> open_server(const std::string& endpoint, const CarrierOptions& options) {
  const CarrierSecurity& sec = options.security;
  Sockets s;
  s.socket = zmq_socket(zmq_context(), ZMQ_ROUTER);
  if (s.socket == nullptr) return zmq_error("zmq_socket");
  auto fail = [&s](absl::Status status) {
    s.close();
    return status;
  };
  apply_common(s.socket, options);
  set_int(s.socket, ZMQ_ROUTER_MANDATORY, 1);
  if (!sec.secret_key.empty()) {
    set_int(s.socket, ZMQ_CURVE_SERVER, 1);
    if (absl::Status k = set_key(s.socket, ZMQ_CURVE_SECRETKEY, sec.secret_key); !k.ok()) return fail(k);
    // ZAP: every CURVE handshake is checked against this server's allow-list (any key when empty).
    const std::string domain = register_zap_domain(sec.authorized_clients);
    zmq_setsockopt(s.socket, ZMQ_ZAP_DOMAIN, domain.data(), domain.size());
  }
  s.monitor = monitor_of(s.socket);  // before bind: no event is missed
  if (zmq_bind(s.socket, endpoint.c_str()) != 0) {
    return fail(absl::UnavailableError(cat("cannot bind ", endpoint, ": ", zmq_strerror(zmq_errno()))));
  }
  return s;
}

// The import's DEALER, connecting (ZeroMQ connects in the background). `mine`: this client's
// CURVE keys (empty without CURVE).
absl::StatusOr<Sockets> open_client(const std::string& endpoint, const CarrierOptions& options,
                                    const CurveKeys& mine) {
  Sockets s;
  s.socket = zmq_socket(zmq_context(), ZMQ_DEALER);
  if (s.socket == nullptr) return zmq_error("zmq_socket");
  auto fail = [&s](absl::Status status) {
    s.close();
    return status;
  };
  apply_common(s.socket, options);
  // Nothing is queued for a connection that is not up: a send then says kFull (the bridge's
  // heartbeat repeats what matters), rather than piling up for a server that may never come.
  set_int(s.socket, ZMQ_IMMEDIATE, 1);
  if (!mine.secret_key.empty()) {
    const std::pair<int, const std::string*> keys[] = {{ZMQ_CURVE_SERVERKEY, &options.security.server_public_key},
                                                       {ZMQ_CURVE_PUBLICKEY, &mine.public_key},
                                                       {ZMQ_CURVE_SECRETKEY, &mine.secret_key}};
    for (const auto& [option, key] : keys) {
      if (absl::Status k = set_key(s.socket, option, *key); !k.ok()) return fail(k);
    }
  }
  s.monitor = monitor_of(s.socket);  // before connect: the first handshake is seen
  if (zmq_connect(s.socket, endpoint.c_str()) != 0) {
    return fail(absl::InvalidArgumentError(cat("cannot connect to ", endpoint, ": ", zmq_strerror(zmq_errno()))));
  }
  return s;
}

class ZmqCarrier final : public Carrier {
 public:
  // A server carrier (`client_keys` unused), or a client one that can make its socket again.
  ZmqCarrier(Sockets sockets, bool server, std::string endpoint, CarrierOptions options, CurveKeys client_keys)
      : server_(server), endpoint_(std::move(endpoint)), options_(std::move(options)),
        client_keys_(std::move(client_keys)), jitter_(std::random_device{}()) {
    for (zmq_msg_t& m : parts_) zmq_msg_init(&m);
    adopt(sockets);
  }
  ~ZmqCarrier() override {
    for (zmq_msg_t& m : parts_) zmq_msg_close(&m);
    sockets_.close();
  }

  CarrierEvents take_events() noexcept override {
    CarrierEvents events;
    if (sockets_.socket == nullptr) {
      reopen_if_due();
      return events;
    }
    if (sockets_.monitor == nullptr) return events;
    // Each event is two parts: 2 bytes of event number and 4 of value, then the peer's address.
    for (;;) {
      zmq_msg_t m;
      zmq_msg_init(&m);
      if (zmq_msg_recv(&m, sockets_.monitor, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&m);
        break;
      }
      std::uint16_t event = 0;
      if (zmq_msg_size(&m) >= 2) std::memcpy(&event, zmq_msg_data(&m), 2);
      const bool more = zmq_msg_more(&m) != 0;
      zmq_msg_close(&m);
      if (more) {  // the address part
        zmq_msg_init(&m);
        zmq_msg_recv(&m, sockets_.monitor, 0);
        zmq_msg_close(&m);
      }
      if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
        ++events.connected;
        refusals_ = 0;
      }
      if (event == ZMQ_EVENT_DISCONNECTED) ++events.disconnected;
      if (event == ZMQ_EVENT_CONNECT_RETRIED) ++events.retried;
      if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH || event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL ||
          event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) {
        ++events.refused;
      }
    }
    // A refused handshake ends a client's ZeroMQ connection for good (libzmq does not reconnect
    // after a protocol error): close the socket, make a new one after the back-off.
    if (!server_ && events.refused > 0) {
      sockets_.close();
      fd_ = -1;
      reopen_at_ns_ = monotonic_ns() + backoff_ns(refusals_++);
    }
    return events;
  }

  SendResult try_send(const PeerId& peer, std::span<const std::byte> header,
                      std::span<const std::byte> payload) noexcept override {
    void* socket = sockets_.socket;
    if (socket == nullptr) return SendResult::kFull;  // a client between two sockets
    const bool more = !payload.empty();
    if (server_) {
      // ROUTER_MANDATORY: EHOSTUNREACH for a peer that is gone, EAGAIN at its high-water mark.
      // Once the first part is taken, ZeroMQ takes the whole message.
      if (zmq_send(socket, peer.data(), peer.size(), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
        return zmq_errno() == EAGAIN ? SendResult::kFull : SendResult::kGone;
      }
      zmq_send(socket, header.data(), header.size(), more ? ZMQ_SNDMORE : 0);
      if (more) zmq_send(socket, payload.data(), payload.size(), 0);
      return SendResult::kOk;
    }
    if (zmq_send(socket, header.data(), header.size(), ZMQ_DONTWAIT | (more ? ZMQ_SNDMORE : 0)) < 0) {
      // EAGAIN: at the high-water mark, or (ZMQ_IMMEDIATE) not connected right now.
      return zmq_errno() == EAGAIN ? SendResult::kFull : SendResult::kGone;
    }
    if (more) zmq_send(socket, payload.data(), payload.size(), 0);
    return SendResult::kOk;
  }

  bool try_receive(Incoming* out) noexcept override {
    if (sockets_.socket == nullptr) return false;
    std::size_t n = 0;
    int more = 0;
    do {
      zmq_msg_t& m = parts_[n < kParts ? n : kParts - 1];  // extra parts overwrite the last slot
      if (zmq_msg_recv(&m, sockets_.socket, n == 0 ? ZMQ_DONTWAIT : 0) < 0) {
        if (n == 0) return false;
        break;  // not reachable: ZeroMQ delivers whole messages
      }
      ++n;
      more = zmq_msg_more(&m);
    } while (more);
    auto span_of = [&](std::size_t i) {
      if (i >= n || i >= kParts) return std::span<const std::byte>();
      return std::span<const std::byte>(static_cast<const std::byte*>(zmq_msg_data(&parts_[i])),
                                        zmq_msg_size(&parts_[i]));
    };
    const std::size_t first = server_ ? 1 : 0;  // a ROUTER prefixes the sender's routing id
    *out = Incoming{};
    out->peer = server_ ? span_of(0) : std::span<const std::byte>();
    out->parts = n - first;
    if (n > kParts) return true;  // too many parts: the caller sees parts > 2 and drops it
    out->header = span_of(first);
    out->payload = span_of(first + 1);
    return true;
  }

  int descriptor() const noexcept override { return fd_; }

  bool has_input() noexcept override {
    if (sockets_.socket == nullptr) return false;
    int events = 0;
    std::size_t size = sizeof events;
    if (zmq_getsockopt(sockets_.socket, ZMQ_EVENTS, &events, &size) != 0) return false;
    return (events & ZMQ_POLLIN) != 0;
  }

  std::string endpoint() const override { return endpoint_; }

 private:
  void adopt(Sockets sockets) {
    sockets_ = sockets;
    fd_ = -1;
    std::size_t size = sizeof fd_;
    if (sockets_.socket != nullptr && zmq_getsockopt(sockets_.socket, ZMQ_FD, &fd_, &size) != 0) fd_ = -1;
  }

  void reopen_if_due() {
    const std::uint64_t now = monotonic_ns();
    if (now < reopen_at_ns_) return;
    absl::StatusOr<Sockets> s = open_client(endpoint_, options_, client_keys_);
    if (s.ok()) {
      adopt(*s);
    } else {
      reopen_at_ns_ = now + backoff_ns(refusals_++);
    }
  }

  // reconnect_interval doubled per earlier failure, up to reconnect_interval_max, plus a random
  // part of up to half of it.
  std::uint64_t backoff_ns(unsigned failures) {
    const std::uint64_t first = static_cast<std::uint64_t>(options_.reconnect_interval.count()) * 1'000'000;
    const std::uint64_t most =
        std::max(first, static_cast<std::uint64_t>(options_.reconnect_interval_max.count()) * 1'000'000);
    const std::uint64_t wait = std::min(most, first << std::min(failures, 20u));
    return wait + std::uniform_int_distribution<std::uint64_t>(0, wait / 2)(jitter_);
  }

  static constexpr std::size_t kParts = 4;  // routing id, header, payload, and one to spot extras
  Sockets sockets_;
  bool server_;
  std::string endpoint_;
  CarrierOptions options_;
  CurveKeys client_keys_;
  int fd_ = -1;
  zmq_msg_t parts_[kParts];
  unsigned refusals_ = 0;           // client: refused handshakes in a row
  std::uint64_t reopen_at_ns_ = 0;  // client without a socket: when to make the next
  std::minstd_rand jitter_;
};

}  // namespace

absl::StatusOr<CurveKeys> generate_curve_keys() {
  char public_key[41];
  char secret_key[41];
  // A key that starts with '/' or '.' would read as a path on a command line (read_key): such
  // pairs are drawn again (about one in 40), so every key made here also works as text.
  auto path_like = [](const char* key) { return key[0] == '/' || key[0] == '.'; };
  do {
    if (zmq_curve_keypair(public_key, secret_key) != 0) {
      return absl::UnavailableError(cat("ZeroMQ cannot make CURVE keys: ", zmq_strerror(zmq_errno())));
    }
  } while (path_like(public_key) || path_like(secret_key));
  return CurveKeys{public_key, secret_key};
}

absl::StatusOr<std::string> curve_public_key(std::string_view secret_key) {
  if (absl::Status s = check_key(secret_key, "the secret key"); !s.ok()) return s;
  char public_key[41];
  const std::string secret(secret_key);
  if (zmq_curve_public(public_key, secret.c_str()) != 0) return zmq_error("deriving the public key");
  return std::string(public_key);
}

absl::Status check_zmq_options(const std::string& endpoint, const CarrierOptions& options, bool server) {
  if (absl::Status s = check_endpoint(endpoint); !s.ok()) return s;
  const CarrierSecurity& sec = options.security;
  if (server) {
    if (!sec.authorized_clients.empty() && sec.secret_key.empty()) {
      return absl::InvalidArgumentError("authorised client keys need CURVE on (a secret key)");
    }
    if (sec.secret_key.empty()) return absl::OkStatus();
    if (absl::Status s = check_key(sec.secret_key, "--curve-secret-key"); !s.ok()) return s;
    for (const std::string& k : sec.authorized_clients) {
      if (absl::Status s = check_key(k, "an authorised client key"); !s.ok()) return s;
      if (k == sec.secret_key) {
        return absl::InvalidArgumentError("--curve-secret-key is one of the authorised (public) client keys: "
                                          "give the export's own secret key");
      }
    }
    return absl::OkStatus();
  }
  if (sec.server_public_key.empty() && sec.secret_key.empty()) return absl::OkStatus();
  if (sec.server_public_key.empty()) {
    return absl::InvalidArgumentError("CURVE on the import side needs --curve-server-key");
  }
  if (absl::Status s = check_key(sec.server_public_key, "--curve-server-key"); !s.ok()) return s;
  if (sec.secret_key == sec.server_public_key) {
    return absl::InvalidArgumentError("--curve-secret-key is the export's public key (--curve-server-key): "
                                      "give this import's own secret key");
  }
  if (!sec.secret_key.empty()) return check_key(sec.secret_key, "--curve-secret-key");
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Carrier>> make_zmq_server(const std::string& endpoint,
                                                         const CarrierOptions& options) {
  if (absl::Status s = check_zmq_options(endpoint, options, /*server=*/true); !s.ok()) return s;
  absl::StatusOr<Sockets> sockets = open_server(endpoint, options);
  if (!sockets.ok()) return sockets.status();
  return std::unique_ptr<Carrier>(new ZmqCarrier(*sockets, /*server=*/true, endpoint, options, {}));
}

absl::StatusOr<std::unique_ptr<Carrier>> make_zmq_client(const std::string& endpoint,
                                                         const CarrierOptions& options) {
  if (absl::Status s = check_zmq_options(endpoint, options, /*server=*/false); !s.ok()) return s;
  const CarrierSecurity& sec = options.security;
  CurveKeys mine;
  if (!sec.server_public_key.empty()) {
    if (sec.secret_key.empty()) {  // an ephemeral client key: enough when the server allows any
      absl::StatusOr<CurveKeys> k = generate_curve_keys();
      if (!k.ok()) return k.status();
      mine = *k;
    } else {
      absl::StatusOr<std::string> pub = curve_public_key(sec.secret_key);
      if (!pub.ok()) return pub.status();
      mine = CurveKeys{*pub, sec.secret_key};
    }
  }
  absl::StatusOr<Sockets> sockets = open_client(endpoint, options, mine);
  if (!sockets.ok()) return sockets.status();
  return std::unique_ptr<Carrier>(new ZmqCarrier(*sockets, /*server=*/false, endpoint, options, mine));
}

}  // namespace shmring::bridge
