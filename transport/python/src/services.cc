// Services for Python (transport/include/shmring/transport/service.h): the C++ half of
// shmring.ServiceClient / ServiceServer (the Pythonic wrappers, asyncio included, are in
// shmring/_services.py). Kept apart from channels.cc: its own box, handles and exceptions.
//
// Memory safety. A request's bytes (a server's view of it), a response view and the two loans are
// memory inside the channel's segment. Each is a _ServiceLease that exports it through the buffer
// protocol; while any lease lives, its endpoint is not destroyed (close() only marks it closed;
// the last lease's end destroys it), so the mapping stays. Once a lease is settled it exports no
// bytes. The wrappers settle a lease only when no memoryview of theirs is still shared (as
// shmring.View does).
#include <pybind11/stl.h>

#include <cmath>
#include <cstring>
#include <mutex>
#include <thread>
#include <variant>

#include "box.h"
#include "errors.h"
#include "shmring/transport/service.h"

namespace shmring::python {

namespace {

PyObject* g_peer_gone = nullptr;
PyObject* g_cancelled = nullptr;

[[noreturn]] void raise_as(PyObject* type, const std::string& message) {
  PyErr_SetString(type, message.c_str());
  throw py::error_already_set();
}

// The results particular to services, then the common mapping.
[[noreturn]] void raise_service(ChannelResult r, const std::string& what) {
  if (r == ChannelResult::kPeerGone) {
    raise_as(g_peer_gone, what + ": no answer (its server died holding an at_most_once request, or "
                                 "dropped it), or the client is gone");
  }
  if (r == ChannelResult::kCancelled) raise_as(g_cancelled, what + ": the client cancelled the request");
  raise_result(r, what);
}

struct ServiceBox {
  std::mutex mutex;
  std::variant<std::monostate, ServiceClient, ServiceServer> endpoint;
  bool closed = false;
  int exports = 0;  // live leases (under the mutex)
  std::string what;

  template <typename T>
  T* get() {
    return closed ? nullptr : std::get_if<T>(&endpoint);
  }
  void close() {  // GIL held on entry
    closed = true;
    py::gil_scoped_release nogil;
    std::lock_guard<std::mutex> guard(mutex);
    if (exports == 0) endpoint = std::monostate{};
  }
  // Under the mutex: a lease ended.
  void lease_ended() {
    if (--exports == 0 && closed) endpoint = std::monostate{};
  }
};

// Runs fn() with the box's mutex held; the GIL released unless `keep_gil`.
template <typename Fn>
auto with_box(ServiceBox& box, Fn&& fn, bool keep_gil) {
  if (keep_gil) {
    std::lock_guard<std::mutex> guard(box.mutex);
    return fn();
  }
  py::gil_scoped_release nogil;
  std::lock_guard<std::mutex> guard(box.mutex);
  return fn();
}

std::span<const std::byte> bytes_of(const py::buffer_info& info) {
  return {static_cast<const std::byte*>(info.ptr), static_cast<std::size_t>(info.size * info.itemsize)};
}

// A lease of memory in the segment: the request a server holds (read-only), a response view
// (read-only), a request or response loan (writable).
struct PyServiceLease {
  std::shared_ptr<ServiceBox> box;
  std::variant<std::monostate, ActiveRequest, ResponseView, RequestLoan, ResponseLoan> lease;
  std::span<std::byte> bytes;
  bool writable = false;

  PyServiceLease() = default;
  PyServiceLease(const PyServiceLease&) = delete;
  PyServiceLease& operator=(const PyServiceLease&) = delete;
  ~PyServiceLease() { end(); }
  bool settled() const { return std::holds_alternative<std::monostate>(lease); }
  // Registers with the box (under its mutex): the endpoint stays while this lives.
  void adopt(std::shared_ptr<ServiceBox> b) {
    box = std::move(b);
    ++box->exports;
  }
  // Settles whatever is held (a request dropped, a view released, a loan given up) and lets go of
  // the endpoint. GIL may be held.
  void end() {
    if (box == nullptr) return;
    py::gil_scoped_release nogil;
    std::lock_guard<std::mutex> guard(box->mutex);
    lease = std::monostate{};  // the handle's destructor settles it
    bytes = {};
    box->lease_ended();
    box = nullptr;
  }
};

// A request a client sent: its responses.
struct PyPending {
  std::shared_ptr<ServiceBox> box;
  PendingResponse pending;
  ~PyPending() {
    if (box == nullptr) return;
    py::gil_scoped_release nogil;
    std::lock_guard<std::mutex> guard(box->mutex);
    pending = PendingResponse();  // cancels the request if not done
  }
};

ServiceOptions service_options(std::uint64_t max_request, std::uint64_t max_response, std::uint32_t max_in_flight,
                               std::uint32_t response_depth, std::uint32_t max_clients, std::uint32_t max_servers,
                               std::uint32_t max_active, int permissions, bool create, double open_timeout,
                               double request_timeout, bool at_most_once) {
  ServiceOptions o;
  o.max_request = max_request;
  o.max_response = max_response;
  o.max_in_flight = max_in_flight;
  o.response_depth = response_depth;
  o.max_clients = max_clients;
  o.max_servers = max_servers;
  o.max_active = max_active;
  if (permissions < 0 || permissions > 0777) throw py::value_error("permissions must be within 0o000..0o777");
  o.permissions = static_cast<mode_t>(permissions);
  o.create = create;
  if (!(open_timeout >= 0) || !std::isfinite(open_timeout)) throw py::value_error("open_timeout must be >= 0");
  o.open_timeout = std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(open_timeout * 1000)));
  if (!(request_timeout > 0) || !std::isfinite(request_timeout)) throw py::value_error("request_timeout must be > 0");
  o.request_timeout = std::chrono::nanoseconds(static_cast<std::int64_t>(std::min(request_timeout, 1e9) * 1e9));
  o.at_most_once = at_most_once;
  return o;
}

template <typename T>
std::shared_ptr<ServiceBox> open_service(const std::string& type, const std::string& name, const ServiceOptions& o) {
  absl::StatusOr<T> opened = [&] {
    py::gil_scoped_release nogil;
    return T::open(name, o);
  }();
  if (!opened.ok()) raise_status(opened.status());
  auto box = std::make_shared<ServiceBox>();
  box->endpoint = *std::move(opened);
  box->what = type + "('" + name + "')";
  return box;
}

struct PyServiceClient {
  std::shared_ptr<ServiceBox> box;
  ServiceClient& require() {
    ServiceClient* c = box->get<ServiceClient>();
    if (c == nullptr) throw py::value_error(box->what + " is closed");
    return *c;
  }
};

struct PyServiceServer {
  std::shared_ptr<ServiceBox> box;
  ServiceServer& require() {
    ServiceServer* s = box->get<ServiceServer>();
    if (s == nullptr) throw py::value_error(box->what + " is closed");
    return *s;
  }
};

// wait_fd / take_wait_events / stats for either endpoint.
template <typename T>
int endpoint_fd(ServiceBox& box) {
  const int fd = with_box(box, [&] {
    T* e = box.get<T>();
    return e == nullptr ? -1 : e->wait_fd();
  }, true);
  if (fd < 0) {
    if (box.closed) throw py::value_error(box.what + " is closed");
    PyErr_SetFromErrno(PyExc_OSError);
    throw py::error_already_set();
  }
  return fd;
}

template <typename T>
std::uint32_t endpoint_events(ServiceBox& box) {
  return static_cast<std::uint32_t>(with_box(box, [&] {
    T* e = box.get<T>();
    return e == nullptr ? WaitEvent::kNone : e->take_wait_events();
  }, true));
}

template <typename T>
py::dict endpoint_stats(ServiceBox& box) {
  const PeerStats p = with_box(box, [&] {
    T* e = box.get<T>();
    return e == nullptr ? PeerStats{} : e->stats();
  }, true);
  py::dict d;
  d["index"] = p.index;
  d["role"] = std::string(to_string(p.role));
  d["pid"] = p.pid;
  d["sent"] = p.sent;
  d["received"] = p.received;
  d["lost"] = p.lost;
  d["blocked_s"] = static_cast<double>(p.blocked_ns) / 1e9;
  return d;
}

// One try with the GIL held, then (with a deadline) slices with the GIL released.
template <typename Attempt>
ChannelResult try_then_wait(const std::optional<Deadline>& deadline, Attempt&& attempt) {
  const ChannelResult first = attempt(std::chrono::nanoseconds(0));
  if (!deadline || (first != ChannelResult::kWouldBlock && first != ChannelResult::kTimedOut)) return first;
  return wait_loop(*deadline, attempt);
}

// --- client ------------------------------------------------------------------------------------------

py::object client_send(PyServiceClient& self, const py::buffer& data, const std::optional<Deadline>& deadline) {
  self.require();
  const py::buffer_info info = data.request();
  const std::span<const std::byte> request = bytes_of(info);
  auto pending = std::make_unique<PyPending>();
  ServiceBox& box = *self.box;
  auto attempt = [&](std::chrono::nanoseconds slice) {
    return with_box(box, [&] {
      ServiceClient* c = box.get<ServiceClient>();
      if (c == nullptr) return ChannelResult::kClosed;
      pending->pending = slice.count() > 0 ? c->send_request(request, slice) : c->try_send_request(request);
      return pending->pending.result();
    }, slice.count() == 0);
  };
  const ChannelResult r = try_then_wait(deadline, attempt);
  if (r != ChannelResult::kOk) {
    if (!deadline && r == ChannelResult::kWouldBlock) return py::none();
    raise_service(r, box.what + ".send");
  }
  pending->box = self.box;
  return py::cast(std::move(pending));
}

py::object client_loan(PyServiceClient& self, const std::optional<Deadline>& deadline) {
  self.require();
  auto lease = std::make_unique<PyServiceLease>();
  ServiceBox& box = *self.box;
  auto attempt = [&](std::chrono::nanoseconds slice) {
    return with_box(box, [&] {
      ServiceClient* c = box.get<ServiceClient>();
      if (c == nullptr) return ChannelResult::kClosed;
      RequestLoan loan = slice.count() > 0 ? c->loan_request(slice) : c->try_loan_request();
      if (!loan.ok()) return loan.result();
      lease->bytes = loan.buffer();
      lease->writable = true;
      lease->lease = std::move(loan);
      lease->adopt(self.box);
      return ChannelResult::kOk;
    }, slice.count() == 0);
  };
  const ChannelResult r = try_then_wait(deadline, attempt);
  if (r != ChannelResult::kOk) {
    if (!deadline && r == ChannelResult::kWouldBlock) return py::none();
    raise_service(r, box.what + ".loan");
  }
  return py::cast(std::move(lease));
}

// Sends the first `nbytes` of a request loan; the loan is settled (its memory is the request's).
py::object client_send_loan(PyServiceClient& self, PyServiceLease& lease, std::size_t nbytes) {
  self.require();
  ServiceBox& box = *self.box;
  auto pending = std::make_unique<PyPending>();
  const ChannelResult r = with_box(box, [&] {
    ServiceClient* c = box.get<ServiceClient>();
    RequestLoan* loan = std::get_if<RequestLoan>(&lease.lease);
    if (c == nullptr || loan == nullptr || lease.box.get() != &box) return ChannelResult::kClosed;
    pending->pending = c->send_request(*loan, nbytes);
    return pending->pending.result();
  }, true);
  if (r != ChannelResult::kOk) {
    if (r == ChannelResult::kWouldBlock) return py::none();  // the queue is full: loan kept
    raise_service(r, box.what + ".send (loan)");
  }
  lease.end();
  pending->box = self.box;
  return py::cast(std::move(pending));
}

// Responses: copied out as bytes, or viewed in place. None from the try_ forms when there is none.
py::object pending_receive(PyPending& self, const std::optional<Deadline>& deadline) {
  if (self.box == nullptr) throw py::value_error("no request");
  ServiceBox& box = *self.box;
  std::vector<std::byte> buffer;
  std::size_t n = 0;
  auto attempt = [&](std::chrono::nanoseconds slice) {
    return with_box(box, [&] {
      if (buffer.empty()) {
        ServiceClient* c = box.get<ServiceClient>();
        buffer.resize(std::max<std::uint64_t>(c == nullptr ? 1 : c->max_response(), 1));
      }
      const ChannelResult out =
          slice.count() > 0 ? self.pending.receive(buffer, &n, slice) : self.pending.try_receive(buffer, &n);
      // The request's deadline passed (not this slice's): stop here.
      return out == ChannelResult::kTimedOut && self.pending.expired() ? ChannelResult::kClosed : out;
    }, slice.count() == 0);
  };
  const ChannelResult r = try_then_wait(deadline, attempt);
  if (r == ChannelResult::kOk) {
    return py::bytes(reinterpret_cast<const char*>(buffer.data()), static_cast<py::ssize_t>(n));
  }
  if (!deadline && r == ChannelResult::kWouldBlock) return py::none();
  if (r == ChannelResult::kClosed && self.pending.expired()) {
    raise_as(PyExc_TimeoutError, box.what + ".receive: the request's deadline passed");
  }
  if (r == ChannelResult::kClosed && self.pending.done()) {
    throw py::value_error(box.what + ": the request is done (its final response was taken)");
  }
  raise_service(r, box.what + ".receive");
}

py::object pending_view(PyPending& self, const std::optional<Deadline>& deadline) {
  if (self.box == nullptr) throw py::value_error("no request");
  ServiceBox& box = *self.box;
  auto lease = std::make_unique<PyServiceLease>();
  auto attempt = [&](std::chrono::nanoseconds slice) {
    return with_box(box, [&] {
      ResponseView v = slice.count() > 0 ? self.pending.receive_view(slice) : self.pending.try_receive_view();
      if (!v.ok()) {
        return v.result() == ChannelResult::kTimedOut && self.pending.expired() ? ChannelResult::kClosed : v.result();
      }
      const std::span<const std::byte> data = v.data();
      lease->bytes = std::span<std::byte>(const_cast<std::byte*>(data.data()), data.size());
      lease->lease = std::move(v);
      lease->adopt(self.box);
      return ChannelResult::kOk;
    }, slice.count() == 0);
  };
  const ChannelResult r = try_then_wait(deadline, attempt);
  if (r != ChannelResult::kOk) {
    if (!deadline && r == ChannelResult::kWouldBlock) return py::none();
    if (r == ChannelResult::kClosed && self.pending.expired()) {
      raise_as(PyExc_TimeoutError, box.what + ".view: the request's deadline passed");
    }
    raise_service(r, box.what + ".view");
  }
  return py::cast(std::move(lease));
}

// --- server ------------------------------------------------------------------------------------------

py::object server_receive(PyServiceServer& self, const std::optional<Deadline>& deadline) {
  self.require();
  ServiceBox& box = *self.box;
  auto lease = std::make_unique<PyServiceLease>();
  auto attempt = [&](std::chrono::nanoseconds slice) {
    return with_box(box, [&] {
      ServiceServer* s = box.get<ServiceServer>();
      if (s == nullptr) return ChannelResult::kClosed;
      ActiveRequest r = slice.count() > 0 ? s->receive_request(slice) : s->try_receive_request();
      if (!r.ok()) return r.result();
      const std::span<const std::byte> data = r.data();
      lease->bytes = std::span<std::byte>(const_cast<std::byte*>(data.data()), data.size());
      lease->lease = std::move(r);
      lease->adopt(self.box);
      return ChannelResult::kOk;
    }, slice.count() == 0);
  };
  const ChannelResult r = try_then_wait(deadline, attempt);
  if (r != ChannelResult::kOk) {
    if (!deadline && r == ChannelResult::kWouldBlock) return py::none();
    raise_service(r, box.what + ".receive");
  }
  return py::cast(std::move(lease));
}

ActiveRequest* request_of(PyServiceLease& lease) { return std::get_if<ActiveRequest>(&lease.lease); }

// Responds to the request `lease` holds (copy). True: sent; False (try_ form): no room yet. A
// final response settles the lease (the request's memory is the client's again); the wrapper
// makes sure no memoryview of it is shared before calling.
bool request_respond(PyServiceLease& lease, const py::buffer& data, bool final, bool blocking) {
  if (lease.box == nullptr || request_of(lease) == nullptr) throw py::value_error("the request is finished");
  ServiceBox& box = *lease.box;
  const py::buffer_info info = data.request();
  const std::span<const std::byte> response = bytes_of(info);
  std::optional<Deadline> deadline;
  if (blocking) deadline = Deadline::from(py::none());  // bounded by the request's own deadline
  auto attempt = [&](std::chrono::nanoseconds slice) {
    bool expired = false;
    const ChannelResult out = with_box(box, [&] {
      ActiveRequest* r = request_of(lease);
      if (r == nullptr) return ChannelResult::kClosed;
      expired = r->expired();
      return r->try_respond(response, final);
    }, true);
    if (out != ChannelResult::kWouldBlock || slice.count() == 0) return out;
    // No room (a stream the client reads slowly): what respond() waits for, up to the request's
    // deadline; here in short sleeps without the GIL or the lock, so Ctrl-C is heard.
    if (expired) return ChannelResult::kTimedOut;
    py::gil_scoped_release nogil;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
    return out;
  };
  const ChannelResult r = try_then_wait(deadline, attempt);
  if (r == ChannelResult::kOk) {
    if (final) lease.end();
    return true;
  }
  if (!blocking && r == ChannelResult::kWouldBlock) return false;
  raise_service(r, box.what + ".respond");
}

// A response loan for the request; None (try_ form) when there is no room yet.
py::object request_loan(PyServiceLease& request, bool blocking) {
  if (request.box == nullptr || request_of(request) == nullptr) throw py::value_error("the request is finished");
  ServiceBox& box = *request.box;
  auto lease = std::make_unique<PyServiceLease>();
  std::optional<Deadline> deadline;
  if (blocking) deadline = Deadline::from(py::none());
  auto attempt = [&](std::chrono::nanoseconds slice) {
    bool expired = false;
    const ChannelResult out = with_box(box, [&] {
      ActiveRequest* r = request_of(request);
      if (r == nullptr) return ChannelResult::kClosed;
      expired = r->expired();
      ResponseLoan loan = r->try_loan_response();
      if (!loan.ok()) return loan.result();
      lease->bytes = loan.buffer();
      lease->writable = true;
      lease->lease = std::move(loan);
      lease->adopt(request.box);
      return ChannelResult::kOk;
    }, true);
    if (out != ChannelResult::kWouldBlock || slice.count() == 0) return out;
    if (expired) return ChannelResult::kTimedOut;
    py::gil_scoped_release nogil;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
    return out;
  };
  const ChannelResult r = try_then_wait(deadline, attempt);
  if (r != ChannelResult::kOk) {
    if (!blocking && r == ChannelResult::kWouldBlock) return py::none();
    raise_service(r, box.what + ".loan_response");
  }
  return py::cast(std::move(lease));
}

void request_send_loan(PyServiceLease& request, PyServiceLease& loan, std::size_t nbytes, bool final) {
  if (request.box == nullptr || request_of(request) == nullptr) throw py::value_error("the request is finished");
  ServiceBox& box = *request.box;
  const ChannelResult r = with_box(box, [&] {
    ActiveRequest* a = request_of(request);
    ResponseLoan* l = std::get_if<ResponseLoan>(&loan.lease);
    if (a == nullptr || l == nullptr) return ChannelResult::kClosed;
    return a->respond(*l, nbytes, final);
  }, true);
  if (r != ChannelResult::kOk) raise_service(r, box.what + ".respond (loan)");
  loan.end();
  if (final) request.end();
}

std::optional<Deadline> no_deadline() { return std::nullopt; }

}  // namespace

void bind_services(py::module_& m) {
  PyObject* base = m.attr("Error").ptr();
  g_peer_gone = PyErr_NewExceptionWithDoc(
      "shmring.PeerGoneError",
      "A request ended without a final response (its server died holding it and it was "
      "at_most_once, or the server dropped it), or the client a server answers is gone.",
      base, nullptr);
  g_cancelled = PyErr_NewExceptionWithDoc("shmring.CancelledError",
                                          "The client cancelled the request a server is answering.", base, nullptr);
  if (g_peer_gone == nullptr || g_cancelled == nullptr) throw py::error_already_set();
  m.add_object("PeerGoneError", py::reinterpret_borrow<py::object>(g_peer_gone));
  m.add_object("CancelledError", py::reinterpret_borrow<py::object>(g_cancelled));

  py::class_<PyServiceLease>(m, "_ServiceLease", py::buffer_protocol(),
                             "A request held, a response view, or a loan (use shmring's wrappers).")
      .def_buffer([](PyServiceLease& l) {
        static std::byte empty = std::byte{0};
        void* ptr = l.settled() ? static_cast<void*>(&empty) : static_cast<void*>(l.bytes.data());
        const auto size = static_cast<py::ssize_t>(l.settled() ? 0 : l.bytes.size());
        return py::buffer_info(ptr, 1, py::format_descriptor<std::uint8_t>::format(), 1, {size}, {1},
                               /*readonly=*/!l.writable || l.settled());
      })
      .def_property_readonly("settled", &PyServiceLease::settled)
      .def_property_readonly("nbytes", [](PyServiceLease& l) { return l.bytes.size(); })
      // Requests.
      .def_property_readonly("id", [](PyServiceLease& l) {
        ActiveRequest* r = request_of(l);
        return r == nullptr ? 0 : r->id();
      })
      .def_property_readonly("deadline_ns", [](PyServiceLease& l) {
        ActiveRequest* r = request_of(l);
        return r == nullptr ? 0 : r->deadline_ns();
      })
      .def_property_readonly("expired", [](PyServiceLease& l) {
        ActiveRequest* r = request_of(l);
        return r != nullptr && r->expired();
      })
      .def_property_readonly("redelivered", [](PyServiceLease& l) {
        if (ActiveRequest* r = request_of(l)) return r->redelivered();
        if (ResponseView* v = std::get_if<ResponseView>(&l.lease)) return v->redelivered();
        return false;
      })
      .def_property_readonly("cancelled", [](PyServiceLease& l) {
        if (l.box == nullptr) return false;
        return with_box(*l.box, [&] {
          ActiveRequest* r = request_of(l);
          return r != nullptr && r->cancelled();
        }, true);
      })
      .def_property_readonly("final", [](PyServiceLease& l) {
        ResponseView* v = std::get_if<ResponseView>(&l.lease);
        return v != nullptr && v->final();
      })
      .def("respond", [](PyServiceLease& l, const py::buffer& data, bool final) { request_respond(l, data, final, true); },
           py::arg("data"), py::arg("final") = true)
      .def("try_respond", [](PyServiceLease& l, const py::buffer& data, bool final) {
             return request_respond(l, data, final, false);
           }, py::arg("data"), py::arg("final") = true)
      .def("loan_response", [](PyServiceLease& l) { return request_loan(l, true); })
      .def("try_loan_response", [](PyServiceLease& l) { return request_loan(l, false); })
      .def("send_loan", &request_send_loan, py::arg("loan"), py::arg("nbytes"), py::arg("final") = true)
      // Every kind: settle (drop a request, release a view, give a loan up).
      .def("end", &PyServiceLease::end);

  py::class_<PyPending>(m, "_Pending", "A request a client sent (use shmring.PendingResponse).")
      .def_property_readonly("id", [](PyPending& p) { return p.pending.id(); })
      .def_property_readonly("deadline_ns", [](PyPending& p) { return p.pending.deadline_ns(); })
      .def_property_readonly("done", [](PyPending& p) { return p.pending.done(); })
      .def_property_readonly("expired", [](PyPending& p) { return p.pending.expired(); })
      .def_property_readonly("redelivered", [](PyPending& p) { return p.pending.redelivered(); })
      .def("ready", [](PyPending& p) {
        if (p.box == nullptr) return false;
        return with_box(*p.box, [&] { return p.pending.ready(); }, true);
      })
      .def("receive", [](PyPending& p, const py::object& timeout) { return pending_receive(p, Deadline::from(timeout)); },
           py::arg("timeout") = py::none())
      .def("try_receive", [](PyPending& p) { return pending_receive(p, no_deadline()); })
      .def("view", [](PyPending& p, const py::object& timeout) { return pending_view(p, Deadline::from(timeout)); },
           py::arg("timeout") = py::none())
      .def("try_view", [](PyPending& p) { return pending_view(p, no_deadline()); })
      .def("cancel", [](PyPending& p) {
        if (p.box == nullptr) return;
        with_box(*p.box, [&] {
          p.pending.cancel();
          return 0;
        }, true);
      });

  py::class_<PyServiceClient>(m, "_ServiceClient")
      .def(py::init([](const std::string& name, std::uint64_t max_request, std::uint64_t max_response,
                       std::uint32_t max_in_flight, std::uint32_t response_depth, std::uint32_t max_clients,
                       std::uint32_t max_servers, std::uint32_t max_active, int permissions, bool create,
                       double open_timeout, double request_timeout, bool at_most_once) {
             return PyServiceClient{open_service<ServiceClient>(
                 "ServiceClient", name,
                 service_options(max_request, max_response, max_in_flight, response_depth, max_clients, max_servers,
                                 max_active, permissions, create, open_timeout, request_timeout, at_most_once))};
           }),
           py::arg("name"), py::kw_only(), py::arg("max_request") = 0, py::arg("max_response") = 0,
           py::arg("max_in_flight") = 0, py::arg("response_depth") = 0, py::arg("max_clients") = 0,
           py::arg("max_servers") = 0, py::arg("max_active") = 0, py::arg("permissions") = 0600,
           py::arg("create") = true, py::arg("open_timeout") = 2.0, py::arg("request_timeout") = 10.0,
           py::arg("at_most_once") = false)
      .def("close", [](PyServiceClient& c) { c.box->close(); })
      .def_property_readonly("closed", [](PyServiceClient& c) { return c.box->closed; })
      .def_property_readonly("name", [](PyServiceClient& c) { return c.box->what; })
      .def("send", [](PyServiceClient& c, const py::buffer& data, const py::object& timeout) {
             return client_send(c, data, Deadline::from(timeout));
           }, py::arg("data"), py::arg("timeout") = py::none())
      .def("try_send", [](PyServiceClient& c, const py::buffer& data) { return client_send(c, data, no_deadline()); },
           py::arg("data"))
      .def("loan", [](PyServiceClient& c, const py::object& timeout) { return client_loan(c, Deadline::from(timeout)); },
           py::arg("timeout") = py::none())
      .def("try_loan", [](PyServiceClient& c) { return client_loan(c, no_deadline()); })
      .def("send_loan", &client_send_loan, py::arg("loan"), py::arg("nbytes"))
      .def("wait_fd", [](PyServiceClient& c) { return endpoint_fd<ServiceClient>(*c.box); })
      .def("take_wait_events", [](PyServiceClient& c) { return endpoint_events<ServiceClient>(*c.box); })
      .def("stats", [](PyServiceClient& c) { return endpoint_stats<ServiceClient>(*c.box); })
      .def_property_readonly("max_request", [](PyServiceClient& c) { return c.require().max_request(); })
      .def_property_readonly("max_response", [](PyServiceClient& c) { return c.require().max_response(); })
      .def_property_readonly("max_in_flight", [](PyServiceClient& c) { return c.require().max_in_flight(); })
      .def_property_readonly("in_flight", [](PyServiceClient& c) {
        return with_box(*c.box, [&] {
          ServiceClient* e = c.box->get<ServiceClient>();
          return e == nullptr ? 0u : e->in_flight();
        }, true);
      })
      .def_property("request_timeout",
                    [](PyServiceClient& c) { return static_cast<double>(c.require().request_timeout().count()) / 1e9; },
                    [](PyServiceClient& c, double seconds) {
                      if (!(seconds > 0) || !std::isfinite(seconds)) throw py::value_error("request_timeout must be > 0");
                      c.require().set_request_timeout(
                          std::chrono::nanoseconds(static_cast<std::int64_t>(std::min(seconds, 1e9) * 1e9)));
                    });

  py::class_<PyServiceServer>(m, "_ServiceServer")
      .def(py::init([](const std::string& name, std::uint64_t max_request, std::uint64_t max_response,
                       std::uint32_t max_in_flight, std::uint32_t response_depth, std::uint32_t max_clients,
                       std::uint32_t max_servers, std::uint32_t max_active, int permissions, bool create,
                       double open_timeout) {
             return PyServiceServer{open_service<ServiceServer>(
                 "ServiceServer", name,
                 service_options(max_request, max_response, max_in_flight, response_depth, max_clients, max_servers,
                                 max_active, permissions, create, open_timeout, 10.0, false))};
           }),
           py::arg("name"), py::kw_only(), py::arg("max_request") = 0, py::arg("max_response") = 0,
           py::arg("max_in_flight") = 0, py::arg("response_depth") = 0, py::arg("max_clients") = 0,
           py::arg("max_servers") = 0, py::arg("max_active") = 0, py::arg("permissions") = 0600,
           py::arg("create") = true, py::arg("open_timeout") = 2.0)
      .def("close", [](PyServiceServer& s) { s.box->close(); })
      .def_property_readonly("closed", [](PyServiceServer& s) { return s.box->closed; })
      .def_property_readonly("name", [](PyServiceServer& s) { return s.box->what; })
      .def("receive", [](PyServiceServer& s, const py::object& timeout) {
             return server_receive(s, Deadline::from(timeout));
           }, py::arg("timeout") = py::none())
      .def("try_receive", [](PyServiceServer& s) { return server_receive(s, no_deadline()); })
      .def("wait_fd", [](PyServiceServer& s) { return endpoint_fd<ServiceServer>(*s.box); })
      .def("take_wait_events", [](PyServiceServer& s) { return endpoint_events<ServiceServer>(*s.box); })
      .def("stats", [](PyServiceServer& s) { return endpoint_stats<ServiceServer>(*s.box); })
      .def_property_readonly("max_request", [](PyServiceServer& s) { return s.require().max_request(); })
      .def_property_readonly("max_response", [](PyServiceServer& s) { return s.require().max_response(); })
      .def_property_readonly("max_active", [](PyServiceServer& s) { return s.require().max_active(); })
      .def_property_readonly("active", [](PyServiceServer& s) {
        return with_box(*s.box, [&] {
          ServiceServer* e = s.box->get<ServiceServer>();
          return e == nullptr ? 0u : e->active();
        }, true);
      });

  m.def("service_stats", [](const std::string& name) {
    absl::StatusOr<ServiceStats> s = [&] {
      py::gil_scoped_release nogil;
      return read_service_stats(name);
    }();
    if (!s.ok()) raise_status(s.status());
    py::dict d;
    d["name"] = s->name;
    d["servers"] = s->servers;
    d["clients"] = s->clients;
    d["in_flight"] = s->in_flight;
    d["queued"] = s->queued;
    d["held"] = s->held;
    d["requests"] = s->requests;
    d["served"] = s->served;
    d["redelivered"] = s->redelivered;
    d["expired"] = s->expired;
    d["cancelled"] = s->cancelled;
    d["peer_gone"] = s->peer_gone;
    d["clients_reclaimed"] = s->clients_reclaimed;
    d["max_request"] = s->max_request;
    d["max_response"] = s->max_response;
    d["max_in_flight"] = s->max_in_flight;
    d["response_depth"] = s->response_depth;
    d["max_clients"] = s->max_clients;
    d["max_servers"] = s->max_servers;
    d["max_active"] = s->max_active;
    return d;
  }, py::arg("name"), "A service's counters (a dict), read without disturbing it.");
}

}  // namespace shmring::python
