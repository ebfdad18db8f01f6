// What the C handles are: each one a tagged struct holding the C++ endpoint and its one loan or
// view (the C API lends one at a time per endpoint, as the C++ API does). The tag lets every call
// refuse a NULL, foreign, wrong-kind or destroyed handle with SHMRING_INVALID_ARGUMENT instead of
// crashing, at the cost of one compare. Also the small helpers every pattern's file shares.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <new>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "absl/status/status.h"
#include "shmring/shmring.h"
#include "shmring/transport/frame.h"
#include "shmring/transport/queue.h"
#include "shmring/transport/service.h"
#include "shmring/transport/topic.h"

namespace shmring::c {

// A handle's kind. Distinct, unlikely words (not 0, 1, 2...) so garbage rarely passes for one.
enum class Tag : std::uint32_t {
  kTopicPublisher = 0x53524301,
  kTopicSubscriber = 0x53524302,
  kQueueProducer = 0x53524303,
  kQueueConsumer = 0x53524304,
  kFramePublisher = 0x53524305,
  kFrameSubscriber = 0x53524306,
  kServiceClient = 0x53524307,
  kServiceServer = 0x53524308,
  kPendingResponse = 0x53524309,
  kActiveRequest = 0x5352430a,
  kDestroyed = 0x5352dead,
};

}  // namespace shmring::c

// The part every endpoint handle starts with (shmring_endpoint_t is a pointer to it).
struct shmring_endpoint {
  explicit shmring_endpoint(shmring::c::Tag t) noexcept : tag(t) {}
  shmring::c::Tag tag;
  shmring::ChannelEndpoint* base = nullptr;  // the C++ endpoint inside the derived handle
};

// Each handle: the C++ endpoint and its outstanding loan or view (empty when none is out).
template <typename Endpoint, typename Lease, shmring::c::Tag kTag>
struct EndpointHandle : shmring_endpoint {
  static constexpr shmring::c::Tag kHandleTag = kTag;
  explicit EndpointHandle(Endpoint e) noexcept : shmring_endpoint(kTag), endpoint(std::move(e)) {
    base = &endpoint;
  }
  ~EndpointHandle() { tag = shmring::c::Tag::kDestroyed; }
  Endpoint endpoint;
  Lease lease;
};

struct shmring_topic_publisher
    : EndpointHandle<shmring::TopicPublisher, shmring::TopicLoan, shmring::c::Tag::kTopicPublisher> {
  using EndpointHandle::EndpointHandle;
};
struct shmring_topic_subscriber
    : EndpointHandle<shmring::TopicSubscriber, shmring::TopicView, shmring::c::Tag::kTopicSubscriber> {
  using EndpointHandle::EndpointHandle;
};
struct shmring_queue_producer
    : EndpointHandle<shmring::QueueProducer, shmring::QueueLoan, shmring::c::Tag::kQueueProducer> {
  using EndpointHandle::EndpointHandle;
};
struct shmring_queue_consumer
    : EndpointHandle<shmring::QueueConsumer, shmring::QueueView, shmring::c::Tag::kQueueConsumer> {
  using EndpointHandle::EndpointHandle;
};
struct shmring_frame_publisher
    : EndpointHandle<shmring::FramePublisher, shmring::FrameLoan, shmring::c::Tag::kFramePublisher> {
  using EndpointHandle::EndpointHandle;
};
struct shmring_frame_subscriber
    : EndpointHandle<shmring::FrameSubscriber, shmring::FrameView, shmring::c::Tag::kFrameSubscriber> {
  using EndpointHandle::EndpointHandle;
};

// Services: the client lends one request buffer at a time; the server lends nothing itself (its
// requests and their response loans are handles of their own, below).
struct shmring_service_client
    : EndpointHandle<shmring::ServiceClient, shmring::RequestLoan, shmring::c::Tag::kServiceClient> {
  using EndpointHandle::EndpointHandle;
};
struct NoLease {};
struct shmring_service_server
    : EndpointHandle<shmring::ServiceServer, NoLease, shmring::c::Tag::kServiceServer> {
  using EndpointHandle::EndpointHandle;
};
// A request's handles: not endpoints (shmring_endpoint_* refuses them), several out at once. They
// belong to their endpoint's state, not to the endpoint's handle: destroying the endpoint first
// leaves them inert (SHMRING_CLOSED) and still safe to destroy.
struct shmring_pending_response {
  static constexpr shmring::c::Tag kHandleTag = shmring::c::Tag::kPendingResponse;
  explicit shmring_pending_response(shmring::PendingResponse p) noexcept : pending(std::move(p)) {}
  ~shmring_pending_response() {
    view = {};  // the view goes back before the request is cancelled
    tag = shmring::c::Tag::kDestroyed;
  }
  shmring::c::Tag tag = kHandleTag;
  shmring::PendingResponse pending;
  shmring::ResponseView view;
};
struct shmring_active_request {
  static constexpr shmring::c::Tag kHandleTag = shmring::c::Tag::kActiveRequest;
  explicit shmring_active_request(shmring::ActiveRequest r) noexcept : request(std::move(r)) {}
  ~shmring_active_request() {
    loan = {};  // an unsent response loan writes nothing; then the request is dropped if unfinished
    tag = shmring::c::Tag::kDestroyed;
  }
  shmring::c::Tag tag = kHandleTag;
  shmring::ActiveRequest request;
  shmring::ResponseLoan loan;
};

namespace shmring::c {

// The handle if it is a live one of its kind, else nullptr.
template <typename Handle>
Handle* live(Handle* handle) noexcept {
  return handle != nullptr && handle->tag == Handle::kHandleTag ? handle : nullptr;
}
template <typename Handle>
const Handle* live(const Handle* handle) noexcept {
  return handle != nullptr && handle->tag == Handle::kHandleTag ? handle : nullptr;
}
// Any live endpoint handle.
bool is_endpoint(const shmring_endpoint* endpoint) noexcept;
// A C++ PeerStats as the C struct (endpoint.cc).
void peer_stats_to_c(const PeerStats& from, shmring_peer_stats_t* to) noexcept;

// --- errors (errors.cc) ---

inline shmring_status_t from_result(ChannelResult result) noexcept {
  switch (result) {
    case ChannelResult::kOk: return SHMRING_OK;
    case ChannelResult::kWouldBlock: return SHMRING_WOULD_BLOCK;
    case ChannelResult::kTimedOut: return SHMRING_TIMED_OUT;
    case ChannelResult::kTooLarge: return SHMRING_TOO_LARGE;
    case ChannelResult::kCorrupt: return SHMRING_CORRUPT;
    case ChannelResult::kEvicted: return SHMRING_EVICTED;
    case ChannelResult::kClosed: return SHMRING_CLOSED;
    case ChannelResult::kOverwritten: return SHMRING_OVERWRITTEN;
    case ChannelResult::kPeerGone: return SHMRING_PEER_GONE;
    case ChannelResult::kCancelled: return SHMRING_CANCELLED;
  }
  return SHMRING_UNKNOWN;
}

// Records "call: message" as this thread's last error and returns `status`. Never throws.
shmring_status_t fail(const char* call, shmring_status_t status, const std::string& message) noexcept;
// The same for a C++ status: its code mapped, its message kept.
shmring_status_t fail(const char* call, const absl::Status& status) noexcept;
// A NULL, foreign, wrong-kind or destroyed handle: SHMRING_INVALID_ARGUMENT naming what was wanted.
shmring_status_t bad_handle(const char* call, const char* wanted) noexcept;
// A NULL pointer argument.
shmring_status_t null_argument(const char* call, const char* argument) noexcept;

// --- the data path, written once for the three patterns ---

inline std::chrono::nanoseconds timeout_of(std::int64_t timeout_ns) noexcept {
  return std::chrono::nanoseconds(timeout_ns);
}

template <typename Handle>
shmring_status_t send_on(const char* call, Handle* handle, const void* data, std::size_t size,
                         std::int64_t timeout_ns) noexcept {
  Handle* h = live(handle);
  if (h == nullptr) return bad_handle(call, "an open handle of its kind");
  if (data == nullptr && size != 0) return null_argument(call, "data (with a non-zero size)");
  const std::span<const std::byte> bytes(static_cast<const std::byte*>(data), size);
  return from_result(timeout_ns > 0 ? h->endpoint.send(bytes, timeout_of(timeout_ns))
                                    : h->endpoint.try_send(bytes));
}

template <typename Handle>
shmring_status_t receive_on(const char* call, Handle* handle, void* buffer, std::size_t capacity,
                            std::size_t* size, std::int64_t timeout_ns) noexcept {
  Handle* h = live(handle);
  if (h == nullptr) return bad_handle(call, "an open handle of its kind");
  if (size == nullptr) return null_argument(call, "size");
  if (buffer == nullptr && capacity != 0) return null_argument(call, "buffer (with a non-zero capacity)");
  *size = 0;
  const std::span<std::byte> out(static_cast<std::byte*>(buffer), capacity);
  return from_result(timeout_ns > 0 ? h->endpoint.receive(out, size, timeout_of(timeout_ns))
                                    : h->endpoint.try_receive(out, size));
}

// Takes a view into the handle (refused while one is out: the C++ move would release it).
template <typename Handle>
shmring_status_t view_on(const char* call, Handle* handle, std::int64_t timeout_ns, shmring_view_t* view) noexcept {
  Handle* h = live(handle);
  if (h == nullptr) return bad_handle(call, "an open handle of its kind");
  if (view == nullptr) return null_argument(call, "view");
  *view = shmring_view_t{nullptr, 0, 0, 0};
  if (h->lease.ok()) return SHMRING_WOULD_BLOCK;  // one view at a time
  auto taken = timeout_ns > 0 ? h->endpoint.receive_view(timeout_of(timeout_ns)) : h->endpoint.try_receive_view();
  if (!taken.ok()) return from_result(taken.result());
  h->lease = std::move(taken);
  view->data = h->lease.data().data();
  view->size = h->lease.data().size();
  view->sequence = h->lease.sequence();
  if constexpr (std::is_same_v<decltype(h->lease), QueueView>) {
    view->flags = h->lease.redelivered() ? SHMRING_VIEW_REDELIVERED : 0u;
  }
  return SHMRING_OK;
}

template <typename Handle>
shmring_status_t release_on(const char* call, Handle* handle) noexcept {
  Handle* h = live(handle);
  if (h == nullptr) return bad_handle(call, "an open handle of its kind");
  const ChannelResult result = h->lease.release();
  h->lease = {};
  return from_result(result);
}

// Takes a loan into the handle; `make` is the pattern's try_loan / loan call.
template <typename Handle, typename Make>
shmring_status_t loan_on(const char* call, Handle* handle, void** buffer, std::size_t* capacity,
                         Make&& make) noexcept {
  Handle* h = live(handle);
  if (h == nullptr) return bad_handle(call, "an open handle of its kind");
  if (buffer == nullptr) return null_argument(call, "buffer");
  if (capacity == nullptr) return null_argument(call, "capacity");
  *buffer = nullptr;
  *capacity = 0;
  if (h->lease.ok()) return SHMRING_WOULD_BLOCK;  // one loan at a time
  auto taken = make(h->endpoint);
  if (!taken.ok()) return from_result(taken.result());
  h->lease = std::move(taken);
  *buffer = h->lease.buffer().data();
  *capacity = h->lease.buffer().size();
  return SHMRING_OK;
}

template <typename Handle>
shmring_status_t publish_on(const char* call, Handle* handle, std::size_t size) noexcept {
  Handle* h = live(handle);
  if (h == nullptr) return bad_handle(call, "an open handle of its kind");
  return from_result(h->endpoint.publish(h->lease, size));
}

template <typename Handle>
shmring_status_t abandon_on(const char* call, Handle* handle) noexcept {
  Handle* h = live(handle);
  if (h == nullptr) return bad_handle(call, "an open handle of its kind");
  h->endpoint.abandon(h->lease);
  h->lease = {};
  return SHMRING_OK;
}

// Opens the C++ endpoint and wraps it in a new handle.
template <typename Handle, typename Open>
shmring_status_t open_handle(const char* call, const char* name, Handle** out, Open&& open) noexcept {
  if (out == nullptr) return null_argument(call, "the handle's address");
  *out = nullptr;
  if (name == nullptr) return null_argument(call, "name");
  try {
    auto endpoint = open(std::string_view(name));
    if (!endpoint.ok()) return fail(call, endpoint.status());
    *out = new Handle(*std::move(endpoint));
    return SHMRING_OK;
  } catch (const std::bad_alloc&) {
    return fail(call, SHMRING_OUT_OF_MEMORY, "out of memory");
  } catch (...) {
    return fail(call, SHMRING_INTERNAL, "unexpected C++ exception");
  }
}

template <typename Handle>
void destroy_handle(Handle* handle) noexcept {
  if (live(handle) != nullptr) delete handle;  // closes the endpoint, settles its loan or view
}

}  // namespace shmring::c
