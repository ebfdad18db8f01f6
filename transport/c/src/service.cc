// Services through the C API: shmring_service_client_*, shmring_service_server_*, and the two
// per-request handles, shmring_pending_response_* (a client's) and shmring_active_request_* (a
// server's). Each request handle wraps one C++ PendingResponse / ActiveRequest with its one view
// or loan; the C++ rules (one thread at a time per endpoint and its handles; handles inert once
// the endpoint closes) carry over unchanged.
#include <cstring>
#include <new>

#include "handles.h"
#include "options.h"

using namespace shmring;
using namespace shmring::c;

namespace {

// A new request handle for a C++ one that is ok(); the C++ handle's result otherwise (and then
// nothing is allocated). std::nothrow: an allocation failure must not leave the C++ handle live
// (it is settled, i.e. cancelled or dropped, when `made` goes out of scope).
template <typename CHandle, typename CppHandle>
shmring_status_t hand_out(const char* call, CppHandle made, CHandle** out) noexcept {
  if (!made.ok()) return from_result(made.result());
  *out = new (std::nothrow) CHandle(std::move(made));
  if (*out == nullptr) return fail(call, SHMRING_OUT_OF_MEMORY, "out of memory");
  return SHMRING_OK;
}

}  // namespace

extern "C" {

// --- client ---

shmring_status_t shmring_service_client_open(const char* name, const shmring_service_options_t* options,
                                             shmring_service_client_t** client) {
  return open_handle(__func__, name, client, [options](std::string_view n) -> absl::StatusOr<ServiceClient> {
    absl::StatusOr<ServiceOptions> cpp = service_options(options);
    if (!cpp.ok()) return cpp.status();
    return ServiceClient::open(n, *cpp);
  });
}

void shmring_service_client_destroy(shmring_service_client_t* client) { destroy_handle(client); }

shmring_endpoint_t* shmring_service_client_endpoint(shmring_service_client_t* client) { return client; }

shmring_status_t shmring_service_client_send_request(shmring_service_client_t* client, const void* request,
                                                     size_t size, int64_t timeout_ns,
                                                     shmring_pending_response_t** pending) {
  shmring_service_client_t* c = live(client);
  if (c == nullptr) return bad_handle(__func__, "an open service client");
  if (pending == nullptr) return null_argument(__func__, "pending");
  *pending = nullptr;
  if (request == nullptr && size != 0) return null_argument(__func__, "request (with a non-zero size)");
  const std::span<const std::byte> bytes(static_cast<const std::byte*>(request), size);
  return hand_out(__func__,
                  timeout_ns > 0 ? c->endpoint.send_request(bytes, timeout_of(timeout_ns))
                                 : c->endpoint.try_send_request(bytes),
                  pending);
}

shmring_status_t shmring_service_client_loan_request(shmring_service_client_t* client, int64_t timeout_ns,
                                                     void** buffer, size_t* capacity) {
  return loan_on(__func__, client, buffer, capacity, [&](ServiceClient& c) {
    return timeout_ns > 0 ? c.loan_request(timeout_of(timeout_ns)) : c.try_loan_request();
  });
}

shmring_status_t shmring_service_client_send_loaned_request(shmring_service_client_t* client, size_t size,
                                                            shmring_pending_response_t** pending) {
  shmring_service_client_t* c = live(client);
  if (c == nullptr) return bad_handle(__func__, "an open service client");
  if (pending == nullptr) return null_argument(__func__, "pending");
  *pending = nullptr;
  if (!c->lease.ok()) return from_result(ChannelResult::kClosed);  // no live loan
  return hand_out(__func__, c->endpoint.send_request(c->lease, size), pending);
}

shmring_status_t shmring_service_client_abandon_request(shmring_service_client_t* client) {
  shmring_service_client_t* c = live(client);
  if (c == nullptr) return bad_handle(__func__, "an open service client");
  c->lease = {};  // an unsent loan gives its call back
  return SHMRING_OK;
}

shmring_status_t shmring_service_client_call(shmring_service_client_t* client, const void* request,
                                             size_t request_size, void* response, size_t response_capacity,
                                             size_t* response_size, int64_t timeout_ns) {
  shmring_service_client_t* c = live(client);
  if (c == nullptr) return bad_handle(__func__, "an open service client");
  if (response_size == nullptr) return null_argument(__func__, "response_size");
  *response_size = 0;
  if (request == nullptr && request_size != 0) return null_argument(__func__, "request (with a non-zero size)");
  if (response == nullptr && response_capacity != 0) {
    return null_argument(__func__, "response (with a non-zero capacity)");
  }
  if (timeout_ns <= 0) {
    return fail(__func__, SHMRING_INVALID_ARGUMENT, "timeout_ns " + std::to_string(timeout_ns) + " is not positive");
  }
  return from_result(c->endpoint.call({static_cast<const std::byte*>(request), request_size},
                                      {static_cast<std::byte*>(response), response_capacity}, response_size,
                                      timeout_of(timeout_ns)));
}

shmring_status_t shmring_service_client_set_request_timeout(shmring_service_client_t* client, int64_t timeout_ns) {
  shmring_service_client_t* c = live(client);
  if (c == nullptr) return bad_handle(__func__, "an open service client");
  if (timeout_ns <= 0) {
    return fail(__func__, SHMRING_INVALID_ARGUMENT, "timeout_ns " + std::to_string(timeout_ns) + " is not positive");
  }
  c->endpoint.set_request_timeout(timeout_of(timeout_ns));
  return SHMRING_OK;
}

uint64_t shmring_service_client_max_request(const shmring_service_client_t* client) {
  const auto* c = live(client);
  return c != nullptr ? c->endpoint.max_request() : 0;
}

uint64_t shmring_service_client_max_response(const shmring_service_client_t* client) {
  const auto* c = live(client);
  return c != nullptr ? c->endpoint.max_response() : 0;
}

uint32_t shmring_service_client_in_flight(const shmring_service_client_t* client) {
  const auto* c = live(client);
  return c != nullptr ? c->endpoint.in_flight() : 0;
}

uint32_t shmring_service_client_servers_approx(const shmring_service_client_t* client) {
  const auto* c = live(client);
  return c != nullptr ? c->endpoint.servers_approx() : 0;
}

// --- pending responses ---

shmring_status_t shmring_pending_response_receive(shmring_pending_response_t* pending, void* buffer,
                                                  size_t capacity, size_t* size, bool* final,
                                                  int64_t timeout_ns) {
  shmring_pending_response_t* p = live(pending);
  if (p == nullptr) return bad_handle(__func__, "a pending response");
  if (size == nullptr) return null_argument(__func__, "size");
  if (buffer == nullptr && capacity != 0) return null_argument(__func__, "buffer (with a non-zero capacity)");
  *size = 0;
  if (final != nullptr) *final = false;
  if (p->view.ok()) return SHMRING_WOULD_BLOCK;  // a view is out: the next response waits for it
  const std::span<std::byte> out(static_cast<std::byte*>(buffer), capacity);
  const ChannelResult r = timeout_ns > 0 ? p->pending.receive(out, size, timeout_of(timeout_ns))
                                         : p->pending.try_receive(out, size);
  // A response taken with the call ending there is the final one (PendingResponse::done()).
  if (r == ChannelResult::kOk && final != nullptr) *final = p->pending.done();
  return from_result(r);
}

shmring_status_t shmring_pending_response_view(shmring_pending_response_t* pending, int64_t timeout_ns,
                                               shmring_view_t* view) {
  shmring_pending_response_t* p = live(pending);
  if (p == nullptr) return bad_handle(__func__, "a pending response");
  if (view == nullptr) return null_argument(__func__, "view");
  *view = shmring_view_t{nullptr, 0, 0, 0};
  if (p->view.ok()) return SHMRING_WOULD_BLOCK;  // one view at a time
  ResponseView taken = timeout_ns > 0 ? p->pending.receive_view(timeout_of(timeout_ns))
                                      : p->pending.try_receive_view();
  if (!taken.ok()) return from_result(taken.result());
  p->view = std::move(taken);
  view->data = p->view.data().data();
  view->size = p->view.data().size();
  view->sequence = p->pending.id();
  view->flags = (p->view.final() ? SHMRING_VIEW_FINAL : 0u) | (p->view.redelivered() ? SHMRING_VIEW_REDELIVERED : 0u);
  return SHMRING_OK;
}

shmring_status_t shmring_pending_response_release(shmring_pending_response_t* pending) {
  shmring_pending_response_t* p = live(pending);
  if (p == nullptr) return bad_handle(__func__, "a pending response");
  if (!p->view.ok()) return SHMRING_OK;  // none out
  const ChannelResult r = p->view.release();
  p->view = {};
  return from_result(r);
}

shmring_status_t shmring_pending_response_wait(shmring_pending_response_t* pending, int64_t timeout_ns) {
  shmring_pending_response_t* p = live(pending);
  if (p == nullptr) return bad_handle(__func__, "a pending response");
  if (timeout_ns <= 0) return p->pending.ready() ? SHMRING_OK : SHMRING_TIMED_OUT;
  return from_result(p->pending.wait(timeout_of(timeout_ns)));
}

uint64_t shmring_pending_response_id(const shmring_pending_response_t* pending) {
  const auto* p = live(pending);
  return p != nullptr ? p->pending.id() : 0;
}

bool shmring_pending_response_done(const shmring_pending_response_t* pending) {
  const auto* p = live(pending);
  return p != nullptr && p->pending.done();
}

bool shmring_pending_response_expired(const shmring_pending_response_t* pending) {
  const auto* p = live(pending);
  return p != nullptr && p->pending.expired();
}

bool shmring_pending_response_redelivered(const shmring_pending_response_t* pending) {
  const auto* p = live(pending);
  return p != nullptr && p->pending.redelivered();
}

void shmring_pending_response_destroy(shmring_pending_response_t* pending) {
  if (live(pending) != nullptr) delete pending;  // cancels the request if it is not done
}

// --- server ---

shmring_status_t shmring_service_server_open(const char* name, const shmring_service_options_t* options,
                                             shmring_service_server_t** server) {
  return open_handle(__func__, name, server, [options](std::string_view n) -> absl::StatusOr<ServiceServer> {
    absl::StatusOr<ServiceOptions> cpp = service_options(options);
    if (!cpp.ok()) return cpp.status();
    return ServiceServer::open(n, *cpp);
  });
}

void shmring_service_server_destroy(shmring_service_server_t* server) { destroy_handle(server); }

shmring_endpoint_t* shmring_service_server_endpoint(shmring_service_server_t* server) { return server; }

shmring_status_t shmring_service_server_receive_request(shmring_service_server_t* server, int64_t timeout_ns,
                                                        shmring_active_request_t** request) {
  shmring_service_server_t* s = live(server);
  if (s == nullptr) return bad_handle(__func__, "an open service server");
  if (request == nullptr) return null_argument(__func__, "request");
  *request = nullptr;
  return hand_out(__func__,
                  timeout_ns > 0 ? s->endpoint.receive_request(timeout_of(timeout_ns))
                                 : s->endpoint.try_receive_request(),
                  request);
}

shmring_status_t shmring_service_server_receive_request_into(shmring_service_server_t* server, void* buffer,
                                                             size_t capacity, size_t* size, int64_t timeout_ns,
                                                             shmring_active_request_t** request) {
  shmring_service_server_t* s = live(server);
  if (s == nullptr) return bad_handle(__func__, "an open service server");
  if (request == nullptr) return null_argument(__func__, "request");
  *request = nullptr;
  if (size == nullptr) return null_argument(__func__, "size");
  if (buffer == nullptr && capacity != 0) return null_argument(__func__, "buffer (with a non-zero capacity)");
  *size = 0;
  const std::span<std::byte> out(static_cast<std::byte*>(buffer), capacity);
  return hand_out(__func__,
                  timeout_ns > 0 ? s->endpoint.receive_request(out, size, timeout_of(timeout_ns))
                                 : s->endpoint.try_receive_request(out, size),
                  request);
}

uint64_t shmring_service_server_max_request(const shmring_service_server_t* server) {
  const auto* s = live(server);
  return s != nullptr ? s->endpoint.max_request() : 0;
}

uint64_t shmring_service_server_max_response(const shmring_service_server_t* server) {
  const auto* s = live(server);
  return s != nullptr ? s->endpoint.max_response() : 0;
}

uint32_t shmring_service_server_max_active(const shmring_service_server_t* server) {
  const auto* s = live(server);
  return s != nullptr ? s->endpoint.max_active() : 0;
}

uint32_t shmring_service_server_active(const shmring_service_server_t* server) {
  const auto* s = live(server);
  return s != nullptr ? s->endpoint.active() : 0;
}

// --- active requests ---

shmring_status_t shmring_active_request_data(const shmring_active_request_t* request, const void** data,
                                             size_t* size) {
  const auto* r = live(request);
  if (r == nullptr) return bad_handle(__func__, "an active request");
  if (data == nullptr) return null_argument(__func__, "data");
  if (size == nullptr) return null_argument(__func__, "size");
  *data = nullptr;
  *size = 0;
  if (!r->request.ok() || r->request.finished()) return SHMRING_CLOSED;  // its bytes may be reused
  *data = r->request.data().data();
  *size = r->request.data().size();
  return SHMRING_OK;
}

uint64_t shmring_active_request_id(const shmring_active_request_t* request) {
  const auto* r = live(request);
  return r != nullptr ? r->request.id() : 0;
}

bool shmring_active_request_expired(const shmring_active_request_t* request) {
  const auto* r = live(request);
  return r != nullptr && r->request.expired();
}

bool shmring_active_request_redelivered(const shmring_active_request_t* request) {
  const auto* r = live(request);
  return r != nullptr && r->request.redelivered();
}

bool shmring_active_request_cancelled(const shmring_active_request_t* request) {
  const auto* r = live(request);
  return r != nullptr && r->request.cancelled();
}

bool shmring_active_request_finished(const shmring_active_request_t* request) {
  const auto* r = live(request);
  return r != nullptr && r->request.finished();
}

shmring_status_t shmring_active_request_respond(shmring_active_request_t* request, const void* data, size_t size,
                                                bool final, bool wait) {
  shmring_active_request_t* r = live(request);
  if (r == nullptr) return bad_handle(__func__, "an active request");
  if (data == nullptr && size != 0) return null_argument(__func__, "data (with a non-zero size)");
  const std::span<const std::byte> bytes(static_cast<const std::byte*>(data), size);
  return from_result(wait ? r->request.respond(bytes, final) : r->request.try_respond(bytes, final));
}

shmring_status_t shmring_active_request_loan_response(shmring_active_request_t* request, bool wait, void** buffer,
                                                      size_t* capacity) {
  shmring_active_request_t* r = live(request);
  if (r == nullptr) return bad_handle(__func__, "an active request");
  if (buffer == nullptr) return null_argument(__func__, "buffer");
  if (capacity == nullptr) return null_argument(__func__, "capacity");
  *buffer = nullptr;
  *capacity = 0;
  if (r->loan.ok()) return SHMRING_WOULD_BLOCK;  // one loan at a time
  ResponseLoan taken = wait ? r->request.loan_response() : r->request.try_loan_response();
  if (!taken.ok()) return from_result(taken.result());
  r->loan = std::move(taken);
  *buffer = r->loan.buffer().data();
  *capacity = r->loan.buffer().size();
  return SHMRING_OK;
}

shmring_status_t shmring_active_request_respond_loaned(shmring_active_request_t* request, size_t size,
                                                       bool final) {
  shmring_active_request_t* r = live(request);
  if (r == nullptr) return bad_handle(__func__, "an active request");
  return from_result(r->request.respond(r->loan, size, final));
}

void shmring_active_request_destroy(shmring_active_request_t* request) {
  if (live(request) != nullptr) delete request;  // drops the request if it is not finished
}

// --- counters ---

shmring_status_t shmring_read_service_stats(const char* name, shmring_service_stats_t* stats) {
  if (name == nullptr) return null_argument(__func__, "name");
  if (stats == nullptr) return null_argument(__func__, "stats");
  if (stats->struct_size < sizeof(shmring_service_stats_t)) {
    return fail(__func__, SHMRING_INVALID_ARGUMENT,
                "stats->struct_size is " + std::to_string(stats->struct_size) + ", want " +
                    std::to_string(sizeof(shmring_service_stats_t)));
  }
  try {
    absl::StatusOr<ServiceStats> read = read_service_stats(name);
    if (!read.ok()) return fail(__func__, read.status());
    const std::size_t struct_size = stats->struct_size;
    std::memset(stats, 0, sizeof *stats);
    stats->struct_size = struct_size;
    stats->max_request = read->max_request;
    stats->max_response = read->max_response;
    stats->max_in_flight = read->max_in_flight;
    stats->response_depth = read->response_depth;
    stats->max_clients = read->max_clients;
    stats->max_servers = read->max_servers;
    stats->max_active = read->max_active;
    stats->servers = read->servers;
    stats->clients = read->clients;
    stats->in_flight = read->in_flight;
    stats->queued = read->queued;
    stats->held = read->held;
    stats->requests = read->requests;
    stats->served = read->served;
    stats->redelivered = read->redelivered;
    stats->expired = read->expired;
    stats->cancelled = read->cancelled;
    stats->peer_gone = read->peer_gone;
    stats->clients_reclaimed = read->clients_reclaimed;
    return SHMRING_OK;
  } catch (const std::bad_alloc&) {
    return fail(__func__, SHMRING_OUT_OF_MEMORY, "out of memory");
  }
}

}  // extern "C"
