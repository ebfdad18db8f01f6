// Services: request/response between processes. Any number of clients send requests; any number
// of competing servers take them, each request by exactly one live server, and answer each with
// one response or a stream of responses ending with a final one. The transport assigns request
// ids and routes every response to the request it answers; nobody encodes a correlation id.
//
//   // server                                        // client
//   auto server = ServiceServer::open("calc");       auto client = ServiceClient::open("calc");
//   for (;;) {                                       PendingResponse p = client->send_request(
//     ActiveRequest r = server->receive_request(1s);     bytes_of("2+2"), 1s);
//     if (!r.ok()) continue;                         std::size_t n = 0;
//     r.respond(answer_to(r.data()));                p.receive(buffer, &n, 1s);  // "4"
//   }
//
// Layout: one channel segment (ChannelKind::kService) holds the request queue (the queue
// pattern's MpmcQueue and its claim records), one area per server (the calls it holds) and one
// area per client (its calls: each request's payload and its responses). Each client owns its
// response path: responses are written straight into the calling client's area, never through a
// shared ring. docs/services.md has the protocol and the guarantees in full.
//
// Guarantees:
//  * Each request goes to one server at a time. A server killed while it holds a request
//    (received, not finally answered) does not lose it: once its death is known (the kernel-held
//    liveness lock; the recovery runs on the slow path of any endpoint) the request goes to
//    another server, which sees ActiveRequest::redelivered() (at-least-once), and so do the
//    responses it writes (ResponseView::redelivered()). With ServiceOptions::at_most_once (set by
//    the client, per request) it is not redelivered: the client's PendingResponse ends with
//    kPeerGone. A request is never lost silently, and no client waits past its request's
//    deadline.
//  * A client killed (or closed) with requests in flight: the recovery marks its calls, servers
//    see ActiveRequest::cancelled() (without a system call), their responses are dropped, and the
//    client's area is made free once no server holds any of its calls.
//  * A client that drops a PendingResponse before its final response cancels it: the server sees
//    cancelled(), and respond() on a stream answers kCancelled.
//  * A client has at most max_in_flight requests outstanding (back-pressure: try_send_request
//    answers kWouldBlock); a server holds at most max_active at once.
//  * Memory ordering: a successful send_request happens-before the server's receive of it (every
//    request byte is visible), and a successful respond happens-before the client's receive of
//    that response; a client's release of a ResponseView (or the end of its copy) happens-before
//    a server's reuse of that record.
//  * No system call on the data path while nobody sleeps: send, take, respond and receive are
//    loads, stores and a few atomic read-modify-writes in the segment; a futex wake or one datagram
//    only when the peer is parked or its descriptor armed.
//
// Threads, blocking, errors, fork and close follow the conventions of channel.h: one endpoint and
// its handles (PendingResponse, ActiveRequest, loans, views) are used by one thread at a time;
// handles belong to their endpoint's state (moving the endpoint keeps them usable), become inert
// when it closes (kClosed), and a forked child's copies never touch the parent's calls.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "shmring/transport/channel.h"
#include "shmring/transport/lease.h"

namespace shmring {

struct ServiceOptions {
  // Limits, used by the creator; an opener with a non-zero value that differs from the service's
  // gets kFailedPrecondition. Memory: max_clients x max_in_flight x (max_request + response_depth
  // x max_response), about.
  std::uint64_t max_request = 0;     // bytes per request (creator default 256)
  std::uint64_t max_response = 0;    // bytes per response (creator default 256)
  std::uint32_t max_in_flight = 0;   // requests outstanding per client (creator default 16)
  std::uint32_t response_depth = 0;  // responses buffered per request, a power of two: a stream
                                     // waits for the client beyond it (creator default 4)
  std::uint32_t max_clients = 0;     // clients at once (creator default 16)
  std::uint32_t max_servers = 0;     // servers at once (creator default 8)
  std::uint32_t max_active = 0;      // requests one server holds at once (creator default 16)
  mode_t permissions = 0600;         // mode bits of a service this call creates
  gid_t group = static_cast<gid_t>(-1);  // group of a service this call creates (-1: the creator's)
  bool create = true;                // false: only open an existing service (kNotFound otherwise)
  WaitOptions wait;
  std::chrono::milliseconds open_timeout{2000};  // waiting for a creator to finish initialising
  // Client: each request's deadline is its send time plus this (ServiceClient::
  // set_request_timeout changes it). A PendingResponse never waits past it.
  std::chrono::nanoseconds request_timeout{std::chrono::seconds(10)};
  // Client: a request whose server dies while holding it is not given to another server; the
  // PendingResponse ends with kPeerGone instead (at-most-once). Default: redelivered.
  bool at_most_once = false;
};

class ServiceClient;
class ServiceServer;
class PendingResponse;
class ActiveRequest;

namespace detail {

struct ServiceEndpoint;
struct ServiceClientEndpoint;
struct ServiceServerEndpoint;

// The base of the service handles (RequestLoan, PendingResponse, ResponseView, ActiveRequest,
// ResponseLoan): move-only, settled by its destructor (what that means is said per class), inert
// (kClosed, no bytes) once its endpoint closes, and harmless in a forked child. It points at its
// endpoint's state, never at the endpoint object. Not meant to be named directly.
class ServiceHandle {
 public:
  ServiceHandle(const ServiceHandle&) = delete;
  ServiceHandle& operator=(const ServiceHandle&) = delete;

  // kOk while the handle is live; otherwise why there is none (the call that made it said so).
  ChannelResult result() const noexcept { return result_; }
  bool ok() const noexcept { return result_ == ChannelResult::kOk; }

 protected:
  enum class Kind : std::uint8_t { kRequestLoan, kPendingResponse, kResponseView, kActiveRequest, kResponseLoan };
  explicit ServiceHandle(Kind kind) noexcept : kind_(kind) {}
  ServiceHandle(ServiceHandle&& other) noexcept;
  ServiceHandle& operator=(ServiceHandle&& other) noexcept;  // settles this one first
  ~ServiceHandle();
  // Settles the handle now (as its destructor would). kOk, or kClosed when its endpoint closed.
  ChannelResult settle() noexcept;

  friend struct ServiceEndpoint;
  friend struct ServiceClientEndpoint;
  friend struct ServiceServerEndpoint;
  friend class shmring::ServiceClient;
  friend class shmring::ServiceServer;
  friend class shmring::PendingResponse;
  friend class shmring::ActiveRequest;
  ServiceEndpoint* owner_ = nullptr;
  Kind kind_;
  ChannelResult result_ = ChannelResult::kClosed;
  bool orphaned_ = false;          // its endpoint closed while it was live
  bool done_ = false;              // PendingResponse: final taken or ended; ActiveRequest: finished
  bool redelivered_ = false;
  bool final_ = false;             // ResponseView: a final response
  bool expired_ = false;           // PendingResponse: its deadline passed unanswered
  std::uint32_t index_ = 0;        // client: call index; server: held entry index
  std::uint32_t area_ = 0;         // server: the calling client's area
  std::uint32_t call_ = 0;         // server: the call in that area
  std::uint32_t generation_ = 0;
  std::uint32_t sequence_ = 0;     // view/loan: the record's sequence; request: responses written
  std::uint32_t flags_ = 0;        // request flags (kRequestAtMostOnce)
  std::uint64_t id_ = 0;
  std::uint64_t deadline_ns_ = 0;
  std::span<std::byte> bytes_;     // loan buffer, view or request data
};

}  // namespace detail

// A request buffer lent to a client (zero-copy send): fill buffer(), then
// ServiceClient::send_request(loan, bytes). It takes one of the client's max_in_flight calls;
// destroying it unsent gives the call back.
class RequestLoan : public detail::ServiceHandle {
 public:
  RequestLoan() noexcept : ServiceHandle(Kind::kRequestLoan) {}
  std::span<std::byte> buffer() const noexcept { return bytes_; }  // max_request bytes
};

// One response in place (zero-copy receive), until release() or destruction. While it is out its
// PendingResponse takes no other response (kWouldBlock), and the server cannot reuse the record.
class ResponseView : public detail::ServiceHandle {
 public:
  ResponseView() noexcept : ServiceHandle(Kind::kResponseView) {}
  std::span<const std::byte> data() const noexcept { return bytes_; }
  // The last response of its request (the PendingResponse is done() after it).
  bool final() const noexcept { return final_; }
  // Written by a server that took the request over from a server that died holding it.
  bool redelivered() const noexcept { return redelivered_; }
  // Gives the record back (the server may reuse it). kOk; kClosed if the client closed meanwhile.
  ChannelResult release() noexcept { return settle(); }
};

// A request a client sent, and the way to its responses. Drop it (or cancel()) before the final
// response and the request is cancelled: its server sees ActiveRequest::cancelled() and what it
// writes is dropped. The call stays taken (out of max_in_flight) until that server lets go.
class PendingResponse : public detail::ServiceHandle {
 public:
  PendingResponse() noexcept : ServiceHandle(Kind::kPendingResponse) {}

  // The request's id: assigned by the transport, unique per service incarnation, the same the
  // server sees in ActiveRequest::id().
  std::uint64_t id() const noexcept { return id_; }
  // CLOCK_MONOTONIC nanoseconds after which nothing is waited for.
  std::uint64_t deadline_ns() const noexcept { return deadline_ns_; }
  // The final response was taken, or the call ended (kPeerGone, the deadline, cancel()).
  bool done() const noexcept { return done_; }
  // The deadline passed before the final response (the call was then cancelled).
  bool expired() const noexcept { return expired_; }
  // A response came from a server that took the request over from one that died holding it
  // (the stream may then repeat what the first server sent).
  bool redelivered() const noexcept { return redelivered_; }

  // Whether try_receive would have something to say now (a response, the end, the deadline).
  // Never waits; shared-memory loads only.
  bool ready() noexcept;
  // Waits up to `timeout` (and never past the deadline) until ready(). kOk, kTimedOut, kClosed.
  ChannelResult wait(std::chrono::nanoseconds timeout) noexcept;

  // Copies the next response into `out` and sets *bytes (done() tells whether it was the final
  // one). kOk; kWouldBlock (none yet); kTimedOut (the deadline passed: done() and expired());
  // kPeerGone (the call ended without a final response: its server died and the request was
  // at_most_once, or the server dropped it; done()); kTooLarge (`out` is shorter than the
  // response: nothing taken, *bytes says how long it is); kClosed (done already, moved-from, or the client closed); kCorrupt.
  // Never waits.
  ChannelResult try_receive(std::span<std::byte> out, std::size_t* bytes) noexcept;
  // As try_receive, waiting up to `timeout` (and never past the deadline). kTimedOut for both.
  ChannelResult receive(std::span<std::byte> out, std::size_t* bytes,
                        std::chrono::nanoseconds timeout) noexcept;
  // Zero-copy: the next response in place. Results as try_receive / receive (no kTooLarge).
  ResponseView try_receive_view() noexcept;
  ResponseView receive_view(std::chrono::nanoseconds timeout) noexcept;
  // Cancels the request (nothing when done already); the handle becomes done(). Also the
  // destructor. Never waits.
  void cancel() noexcept { settle(); }
};

// A response buffer lent to a server (zero-copy respond): fill buffer(), then
// ActiveRequest::respond(loan, bytes, final). Destroying it unsent writes nothing.
class ResponseLoan : public detail::ServiceHandle {
 public:
  ResponseLoan() noexcept : ServiceHandle(Kind::kResponseLoan) {}
  std::span<std::byte> buffer() const noexcept { return bytes_; }  // max_response bytes
};

// A request a server holds until it answers it finally. Dropping it (or drop()) without a final
// response ends the request: the client's PendingResponse answers kPeerGone. Closing the server
// with requests held hands them to another server (as if it had died), or ends them
// (at_most_once).
class ActiveRequest : public detail::ServiceHandle {
 public:
  ActiveRequest() noexcept : ServiceHandle(Kind::kActiveRequest) {}

  // The request in place (valid until the final response, drop, or close).
  std::span<const std::byte> data() const noexcept { return bytes_; }
  std::uint64_t id() const noexcept { return id_; }
  std::uint64_t deadline_ns() const noexcept { return deadline_ns_; }
  // The deadline has passed: the client stopped waiting; the server may skip it (drop()).
  bool expired() const noexcept;
  // Taken over from a server that died holding it (at-least-once: the first may have acted on it).
  bool redelivered() const noexcept { return redelivered_; }
  // The final response was written (or the request was dropped): nothing more can be sent.
  bool finished() const noexcept { return done_; }
  // The client cancelled the request or is gone: what is written is dropped. One shared-memory
  // load, no system call.
  bool cancelled() const noexcept;

  // Writes a response; `final` ends the request. kOk; kWouldBlock (try_respond: the client has
  // not taken the earlier responses of the stream yet); kTimedOut (respond: the deadline passed
  // while waiting for room); kCancelled (the client cancelled: nothing written; drop() it) or
  // kPeerGone (the client is gone) — both for a response that is not final or has to wait for
  // room: a final response with room is written without looking (one fewer shared line on the
  // fast path) and answers kOk even when nobody will read it; kTooLarge (more than max_response);
  // kClosed (finished, moved-from or the server closed).
  ChannelResult try_respond(std::span<const std::byte> response, bool final = true) noexcept;
  // As try_respond, waiting for room up to the request's deadline.
  ChannelResult respond(std::span<const std::byte> response, bool final = true) noexcept;
  // Zero-copy: a buffer for the next response (results as try_respond / respond).
  ResponseLoan try_loan_response() noexcept;
  ResponseLoan loan_response() noexcept;
  // Sends `bytes` of the loan. kOk, kTooLarge (loan kept), kClosed (not this request's live loan).
  ChannelResult respond(ResponseLoan& loan, std::size_t bytes, bool final = true) noexcept;
  // Ends the request without a final response (the client gets kPeerGone). Also the destructor.
  void drop() noexcept { settle(); }
};

class ServiceClient : public ChannelEndpoint {
 public:
  // Opens (or creates, see ServiceOptions::create) the service `name` as a client.
  // Errors: kInvalidArgument (bad name or options), kFailedPrecondition (the channel exists with
  // another kind, version or limits), kResourceExhausted (max_clients clients, or all peer slots,
  // taken), kDeadlineExceeded, kNotFound, kPermissionDenied, kDataLoss (corrupt), kAborted (the
  // segment lock could not be had). Blocks as channel.h says. Any thread.
  static absl::StatusOr<ServiceClient> open(std::string_view name, const ServiceOptions& options = {});

  ServiceClient() = default;

  // Copies `request` in and sends it (its deadline: now + request_timeout). The PendingResponse
  // has result kOk, or: kWouldBlock (max_in_flight requests outstanding: take or drop responses;
  // or, rarely, the request queue is full: a server stalled inside a take while the others took
  // a whole lap of requests past it), kTooLarge (more than max_request), kClosed, kCorrupt.
  // Never waits.
  PendingResponse try_send_request(std::span<const std::byte> request) noexcept;
  // As try_send_request, waiting up to `timeout` for a call to free up (a cancelled request's
  // server letting go) and for room in the queue. kTimedOut then.
  PendingResponse send_request(std::span<const std::byte> request,
                               std::chrono::nanoseconds timeout) noexcept;
  // Zero-copy: a request buffer (one of the max_in_flight calls). kOk, kWouldBlock / kTimedOut,
  // kClosed.
  RequestLoan try_loan_request() noexcept;
  RequestLoan loan_request(std::chrono::nanoseconds timeout) noexcept;
  // Sends `bytes` of the loan. The PendingResponse's result: kOk, kTooLarge (loan kept),
  // kWouldBlock (the request queue is full, see try_send_request: loan kept), kClosed (not this
  // client's live loan). Never waits.
  PendingResponse send_request(RequestLoan& loan, std::size_t bytes) noexcept;

  // Sends `request` and waits for its one (final) response, all within `timeout` (which also
  // bounds the request's deadline). Results as PendingResponse::receive, plus the send's; a
  // response that is not final is kCorrupt (use send_request for streams).
  ChannelResult call(std::span<const std::byte> request, std::span<std::byte> response,
                     std::size_t* bytes, std::chrono::nanoseconds timeout) noexcept;

  // The deadline of requests sent from now on: send time + `timeout` (> 0).
  void set_request_timeout(std::chrono::nanoseconds timeout) noexcept;
  std::chrono::nanoseconds request_timeout() const noexcept;

  // 0 when closed.
  std::uint64_t max_request() const noexcept;
  std::uint64_t max_response() const noexcept;
  std::uint32_t max_in_flight() const noexcept;
  // Calls of this client that are taken (sent and not done, cancelled and not let go, loaned).
  std::uint32_t in_flight() const noexcept;
  // Live servers right now (racy: a peer-slot scan).
  std::uint32_t servers_approx() const noexcept;
  // wait_fd() (ChannelEndpoint): readable when a response (or an end) may be ready for any of
  // this client's pending requests, or a server closed or died. Drain: try_receive on every
  // pending response until each answers kWouldBlock.

 private:
  using ChannelEndpoint::ChannelEndpoint;
  PendingResponse make_request(std::span<const std::byte> request, bool blocking,
                               std::chrono::nanoseconds timeout) noexcept;
  RequestLoan make_loan(bool blocking, std::chrono::nanoseconds timeout) noexcept;
};

class ServiceServer : public ChannelEndpoint {
 public:
  // As ServiceClient::open, registering a server (kResourceExhausted: max_servers servers).
  static absl::StatusOr<ServiceServer> open(std::string_view name, const ServiceOptions& options = {});

  ServiceServer() = default;

  // Takes the next request (a request whose server died comes first, redelivered()); its data()
  // is the request in place. kOk; kWouldBlock (none; or max_active requests held already: answer
  // some first); kClosed; kCorrupt. Never waits.
  ActiveRequest try_receive_request() noexcept;
  // As try_receive_request, waiting up to `timeout` (parks on the channel's data wake word).
  ActiveRequest receive_request(std::chrono::nanoseconds timeout) noexcept;
  // The copying forms: the request is also copied into `out` (at least max_request bytes, else
  // kTooLarge and nothing is taken) and *bytes set.
  ActiveRequest try_receive_request(std::span<std::byte> out, std::size_t* bytes) noexcept;
  ActiveRequest receive_request(std::span<std::byte> out, std::size_t* bytes,
                                std::chrono::nanoseconds timeout) noexcept;

  std::uint64_t max_request() const noexcept;
  std::uint64_t max_response() const noexcept;
  std::uint32_t max_active() const noexcept;
  // Requests this server holds now.
  std::uint32_t active() const noexcept;
  // wait_fd() (ChannelEndpoint): readable when a request may be waiting (or a held stream may
  // have room again), or another server closed or died. Drain: try_receive_request (and the
  // waiting try_respond calls) until kWouldBlock.

 private:
  using ChannelEndpoint::ChannelEndpoint;
  ActiveRequest take(std::span<std::byte> out, std::size_t* bytes, bool copy, bool blocking,
                     std::chrono::nanoseconds timeout) noexcept;
};

// What `shmring stat` shows of a service (read without disturbing it, like read_stats).
struct ServiceStats {
  std::string name;
  std::uint64_t max_request = 0;
  std::uint64_t max_response = 0;
  std::uint32_t max_in_flight = 0;
  std::uint32_t response_depth = 0;
  std::uint32_t max_clients = 0;
  std::uint32_t max_servers = 0;
  std::uint32_t max_active = 0;
  std::uint32_t servers = 0;      // live servers
  std::uint32_t clients = 0;      // live clients
  std::uint64_t in_flight = 0;    // calls sent and not finished (waiting, held, or answered and
                                  // not taken yet; cancelled ones until their server lets go)
  std::uint64_t queued = 0;       // requests waiting for a server (approximate)
  std::uint64_t held = 0;         // requests held by servers
  std::uint64_t requests = 0;     // requests sent
  std::uint64_t served = 0;       // final responses written
  std::uint64_t redelivered = 0;  // requests handed to another server after their server died
  std::uint64_t expired = 0;      // requests whose deadline passed before their final response
  std::uint64_t cancelled = 0;    // requests their client dropped before the final response
  std::uint64_t peer_gone = 0;    // requests ended without a final response (kPeerGone)
  std::uint64_t clients_reclaimed = 0;  // areas of clients that left, made free again
};

// Reads a service's counters from another process (read-only attachment, no lock, writes nothing).
// kNotFound, kFailedPrecondition (not a service), kDataLoss, kInvalidArgument, kPermissionDenied.
absl::StatusOr<ServiceStats> read_service_stats(std::string_view name);

}  // namespace shmring
