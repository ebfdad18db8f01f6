// The channel endpoints for Python: TopicPublisher/TopicSubscriber, QueueProducer/QueueConsumer,
// FramePublisher/FrameSubscriber, their leases (_Lease), stats and the module-level channel calls.
// The Pythonic wrappers (Loan, View, context managers, asyncio) are in shmring/__init__.py.
#include <pybind11/stl.h>

#include <cmath>
#include <cstring>

#include "box.h"
#include "errors.h"

namespace shmring::python {

namespace {

// --- small conversions ------------------------------------------------------------------------------

std::chrono::milliseconds millis(double seconds, const char* what) {
  if (!(seconds >= 0) || !std::isfinite(seconds)) {
    throw py::value_error(std::string(what) + " must be a number of seconds >= 0");
  }
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(seconds * 1000.0)));
}

py::dict peer_stats_dict(const PeerStats& p) {
  py::dict d;
  d["index"] = p.index;
  d["role"] = std::string(to_string(p.role));
  d["state"] = std::string(to_string(p.state));
  d["pid"] = p.pid;
  d["alive"] = p.alive;
  d["sent"] = p.sent;
  d["received"] = p.received;
  d["lost"] = p.lost;
  d["blocked_s"] = static_cast<double>(p.blocked_ns) / 1e9;
  d["lag"] = p.lag;
  return d;
}

py::dict channel_stats_dict(const ChannelStats& s) {
  py::dict d;
  d["name"] = s.name;
  d["kind"] = std::string(to_string(s.kind));
  d["lossless"] = s.lossless;
  d["capacity"] = s.capacity;
  d["max_message"] = s.max_message;
  d["max_peers"] = s.max_peers;
  d["attachments"] = s.attachments;
  d["sent"] = s.sent;
  d["received"] = s.received;
  d["lost"] = s.lost;
  d["blocked_s"] = static_cast<double>(s.blocked_ns) / 1e9;
  d["peers_reclaimed"] = s.peers_reclaimed;
  d["claims_skipped"] = s.claims_skipped;
  d["items_redelivered"] = s.items_redelivered;
  d["evictions"] = s.evictions;
  d["depth"] = s.depth;
  d["receivers_parked"] = s.receivers_parked;
  d["senders_parked"] = s.senders_parked;
  d["receivers_armed"] = s.receivers_armed;
  d["senders_armed"] = s.senders_armed;
  py::list peers;
  for (const PeerStats& p : s.peers) peers.append(peer_stats_dict(p));
  d["peers"] = peers;
  return d;
}

// A buffer-protocol object's bytes, exported while this lives (Py_buffer directly: no shape or
// stride vectors to allocate on every send). Raises TypeError for objects without the protocol
// (and BufferError for a read-only one when `writable`).
class BufferRef {
 public:
  BufferRef(const py::handle& object, bool writable) {
    if (PyObject_GetBuffer(object.ptr(), &view_, writable ? PyBUF_WRITABLE : PyBUF_SIMPLE) != 0) {
      throw py::error_already_set();
    }
  }
  ~BufferRef() { PyBuffer_Release(&view_); }
  BufferRef(const BufferRef&) = delete;
  BufferRef& operator=(const BufferRef&) = delete;
  std::span<std::byte> bytes() const {
    return {static_cast<std::byte*>(view_.buf), static_cast<std::size_t>(view_.len)};
  }

 private:
  Py_buffer view_{};
};

[[noreturn]] void raise_lease_busy(const EndpointBox& box) {
  PyErr_SetString(PyExc_BufferError,
                  (box.what + ": its previous loan or view is still in use (a memoryview or numpy "
                              "array made from it is alive); release it first")
                      .c_str());
  throw py::error_already_set();
}

// Options every pattern shares, as keyword arguments.
template <typename Options>
void common_options(Options& o, std::uint64_t capacity, std::uint64_t max_message, std::uint32_t max_peers,
                    int permissions, bool create, double open_timeout) {
  o.capacity = capacity;
  o.max_message = max_message;
  o.max_peers = max_peers;
  if (permissions < 0 || permissions > 0777) throw py::value_error("permissions must be within 0o000..0o777");
  o.permissions = static_cast<mode_t>(permissions);
  o.create = create;
  o.open_timeout = millis(open_timeout, "open_timeout");
}

// Opens the endpoint with the GIL released (opening may wait for the channel's lock).
template <typename T, typename Options>
std::shared_ptr<EndpointBox> open_box(const std::string& type, const std::string& name, const Options& o) {
  absl::StatusOr<T> opened = [&] {
    py::gil_scoped_release nogil;
    return T::open(name, o);
  }();
  if (!opened.ok()) raise_status(opened.status());
  auto box = std::make_shared<EndpointBox>();
  box->endpoint = *std::move(opened);
  box->what = type + "('" + name + "')";
  return box;
}

// --- the Python-facing endpoint ---------------------------------------------------------------------

// What every endpoint class holds; T says which C++ endpoint is inside.
template <typename T>
struct PyEndpoint {
  std::shared_ptr<EndpointBox> box;

  T& require() {
    T* e = box->get<T>();
    if (e == nullptr) throw py::value_error(box->what + " is closed");
    return *e;
  }
  void close() { box->close(); }
  bool closed() const { return box->closed; }
  int wait_fd() {
    require();
    const int fd = locked<T>(*box, [](T* e) { return e == nullptr ? -1 : e->wait_fd(); });
    if (fd < 0) {
      if (errno == ENOTSUP) {
        throw py::value_error(box->what + ": a read_only subscriber has no descriptor (nobody can wake it)");
      }
      PyErr_SetFromErrno(PyExc_OSError);
      throw py::error_already_set();
    }
    return fd;
  }
  std::uint32_t take_wait_events() {
    return static_cast<std::uint32_t>(
        locked<T>(*box, [](T* e) { return e == nullptr ? WaitEvent::kNone : e->take_wait_events(); }));
  }
  py::dict stats() { return peer_stats_dict(locked<T>(*box, [](T* e) { return e == nullptr ? PeerStats{} : e->stats(); })); }
};

// One try with the GIL kept (most calls find a message or room at once: no GIL round trip), then,
// with a deadline, the wait in slices with the GIL released.
template <typename Attempt>
ChannelResult try_then_wait(const std::optional<Deadline>& deadline, Attempt& attempt) {
  const ChannelResult first = attempt(std::chrono::nanoseconds(0));
  if (!deadline || (first != ChannelResult::kWouldBlock && first != ChannelResult::kTimedOut)) return first;
  return wait_loop(*deadline, attempt);
}

// Copying send: `data` is any buffer-protocol object; the GIL is released during the wait and the
// copy. timeout None: no limit; try_ (no deadline): returns false when it would block.
template <typename T>
bool send_buffer(PyEndpoint<T>& self, const py::object& data, const std::optional<Deadline>& deadline) {
  self.require();
  const BufferRef buffer(data, false);
  const std::span<const std::byte> bytes = buffer.bytes();
  EndpointBox& box = *self.box;
  auto attempt = [&](std::chrono::nanoseconds slice) {
    return locked<T>(box, [&](T* e) {
      if (e == nullptr) return ChannelResult::kClosed;
      return slice.count() > 0 ? e->send(bytes, slice) : e->try_send(bytes);
    }, slice.count() == 0 && bytes.size() < kReleaseGilBytes);
  };
  const ChannelResult r = try_then_wait(deadline, attempt);
  if (r == ChannelResult::kOk) return true;
  if (!deadline && r == ChannelResult::kWouldBlock) return false;
  raise_result(r, box.what + ".send");
}

// Copying receive into a new bytes object of the message's size. A try that finds a small message
// copies and releases it under one lock with the GIL kept (the common case, cheapest); otherwise
// the message is viewed in place (waiting with the GIL released), the bytes object made, the
// message copied (without the GIL when large) and the view released. While the view is out, other
// threads' calls on this endpoint are refused (one lease at a time), so the copy needs no lock. A
// lossy topic's message overwritten while copied is skipped (the next one is taken).
template <typename T>
py::object receive_bytes(PyEndpoint<T>& self, const std::optional<Deadline>& deadline) {
  using View = decltype(std::declval<T&>().try_receive_view());
  self.require();
  EndpointBox& box = *self.box;
  if (box.lease_out) raise_lease_busy(box);
  for (int laps = 0;; ++laps) {
    View view;
    py::object out;
    auto attempt = [&](std::chrono::nanoseconds slice) {
      const bool try_call = slice.count() == 0;
      return locked<T>(box, [&](T* e) {
        if (e == nullptr) return ChannelResult::kClosed;
        view = try_call ? e->try_receive_view() : e->receive_view(slice);
        if (!view.ok()) return view.result();
        const std::span<const std::byte> data = view.data();
        if (try_call && data.size() < kReleaseGilBytes) {  // the GIL is held here
          out = py::reinterpret_steal<py::object>(PyBytes_FromStringAndSize(
              reinterpret_cast<const char*>(data.data()), static_cast<Py_ssize_t>(data.size())));
          return view.release();
        }
        return ChannelResult::kOk;  // copied below
      }, try_call);
    };
    ChannelResult r = try_then_wait(deadline, attempt);
    if (r == ChannelResult::kOk && !view.ok() && !out) throw py::error_already_set();  // no memory
    if (r == ChannelResult::kOk && out) return out;
    if (r == ChannelResult::kOk) {
      const std::span<const std::byte> data = view.data();
      out = py::reinterpret_steal<py::object>(PyBytes_FromStringAndSize(nullptr, static_cast<Py_ssize_t>(data.size())));
      if (out) {
        char* target = PyBytes_AS_STRING(out.ptr());  // ours alone until returned
        py::gil_scoped_release nogil;
        std::memcpy(target, data.data(), data.size());
      }
      r = locked<T>(box, [&](T*) { return view.release(); }, true);
      if (!out) throw py::error_already_set();
      if (r == ChannelResult::kOk) return out;
    }
    if (r == ChannelResult::kOverwritten && laps < 64) continue;
    if (!deadline && r == ChannelResult::kWouldBlock) return py::none();
    raise_result(r, box.what + ".receive");
  }
}

// Copying receive into the caller's writable buffer; returns the message's size.
template <typename T>
py::object receive_into(PyEndpoint<T>& self, const py::object& buffer, const std::optional<Deadline>& deadline) {
  self.require();
  EndpointBox& box = *self.box;
  if (box.lease_out) raise_lease_busy(box);
  const BufferRef target(buffer, true);
  const std::span<std::byte> out = target.bytes();
  std::size_t n = 0;
  auto attempt = [&](std::chrono::nanoseconds slice) {
    return locked<T>(box, [&](T* e) {
      if (e == nullptr) return ChannelResult::kClosed;
      return slice.count() > 0 ? e->receive(out, &n, slice) : e->try_receive(out, &n);
    }, slice.count() == 0 && out.size() < kReleaseGilBytes);
  };
  const ChannelResult r = try_then_wait(deadline, attempt);
  if (r == ChannelResult::kOk) return py::int_(n);
  if (!deadline && r == ChannelResult::kWouldBlock) return py::none();
  if (r == ChannelResult::kTooLarge) {
    throw py::value_error(box.what + ".receive_into: a buffer of " + std::to_string(out.size()) +
                          " bytes is too small (the next message has " + std::to_string(n) +
                          " bytes; a buffer of max_message bytes always fits)");
  }
  raise_result(r, box.what + ".receive_into");
}

// A view (receivers) as a _Lease; None from the try_ form when there is nothing.
template <typename T>
py::object take_view(PyEndpoint<T>& self, const std::optional<Deadline>& deadline) {
  self.require();
  EndpointBox& box = *self.box;
  if (box.lease_out) raise_lease_busy(box);
  auto lease = std::make_unique<PyLease>();
  auto attempt = [&](std::chrono::nanoseconds slice) {
    return locked<T>(box, [&](T* e) {
      if (e == nullptr) return ChannelResult::kClosed;
      auto view = slice.count() > 0 ? e->receive_view(slice) : e->try_receive_view();
      if (!view.ok()) return view.result();
      const std::span<const std::byte> data = view.data();
      lease->bytes = std::span<std::byte>(const_cast<std::byte*>(data.data()), data.size());
      if constexpr (std::is_same_v<T, QueueConsumer>) {
        lease->number = view.sequence();
        lease->redelivered = view.redelivered();
      } else if constexpr (std::is_same_v<T, FrameSubscriber>) {
        lease->number = view.sequence();
      }
      lease->lease = std::move(view);
      box.lease_out = true;
      return ChannelResult::kOk;
    }, slice.count() == 0);
  };
  const ChannelResult r = try_then_wait(deadline, attempt);
  if (r != ChannelResult::kOk) {
    if (!deadline && r == ChannelResult::kWouldBlock) return py::none();
    raise_result(r, box.what + ".view");
  }
  lease->box = self.box;
  return py::cast(std::move(lease));
}

// A loan (senders) of `nbytes` (0: max_message) as a _Lease; None from the try_ form.
template <typename T>
py::object take_loan(PyEndpoint<T>& self, std::size_t nbytes, const std::optional<Deadline>& deadline) {
  T& endpoint = self.require();
  EndpointBox& box = *self.box;
  if (box.lease_out) raise_lease_busy(box);
  if (nbytes > endpoint.max_message()) {
    throw py::value_error(box.what + ".loan: " + std::to_string(nbytes) + " bytes exceed max_message " +
                          std::to_string(endpoint.max_message()));
  }
  auto lease = std::make_unique<PyLease>();
  auto attempt = [&](std::chrono::nanoseconds slice) {
    return locked<T>(box, [&](T* e) {
      if (e == nullptr) return ChannelResult::kClosed;
      auto loan = [&] {
        if constexpr (std::is_same_v<T, TopicPublisher>) {
          return slice.count() > 0 ? e->loan(nbytes, slice) : e->try_loan(nbytes);
        } else {
          return slice.count() > 0 ? e->loan(slice) : e->try_loan();
        }
      }();
      if (!loan.ok()) return loan.result();
      const std::span<std::byte> buffer = loan.buffer();
      lease->bytes = buffer.first(nbytes == 0 ? buffer.size() : std::min(nbytes, buffer.size()));
      lease->writable = true;
      lease->lease = std::move(loan);
      box.lease_out = true;
      return ChannelResult::kOk;
    }, slice.count() == 0);
  };
  const ChannelResult r = try_then_wait(deadline, attempt);
  if (r != ChannelResult::kOk) {
    if (!deadline && r == ChannelResult::kWouldBlock) return py::none();
    raise_result(r, box.what + ".loan");
  }
  lease->box = self.box;
  return py::cast(std::move(lease));
}

std::optional<Deadline> no_deadline() { return std::nullopt; }

// The constructor of an endpoint whose options are only the common ones (queues, frames).
template <typename T, typename Options>
void bind_common_init(py::class_<PyEndpoint<T>>& c, const char* type) {
  c.def(py::init([type](const std::string& name, std::uint64_t capacity, std::uint64_t max_message,
                        std::uint32_t max_peers, int permissions, bool create, double open_timeout) {
          Options o;
          common_options(o, capacity, max_message, max_peers, permissions, create, open_timeout);
          return PyEndpoint<T>{open_box<T>(type, name, o)};
        }),
        py::arg("name"), py::kw_only(), py::arg("capacity") = 0, py::arg("max_message") = 0,
        py::arg("max_peers") = 0, py::arg("permissions") = 0600, py::arg("create") = true,
        py::arg("open_timeout") = 2.0);
}

template <typename T>
py::class_<PyEndpoint<T>> bind_common(py::module_& m, const char* name, const char* doc) {
  py::class_<PyEndpoint<T>> c(m, name, doc);
  c.def("close", &PyEndpoint<T>::close,
        "Closes the endpoint (also on leaving a with block). A loan or view still in use keeps "
        "the channel mapped until it is released.")
      .def_property_readonly("closed", &PyEndpoint<T>::closed)
      .def_property_readonly("name", [](PyEndpoint<T>& self) { return self.box->what; })
      .def("wait_fd", &PyEndpoint<T>::wait_fd,
           "A descriptor that turns readable when this endpoint may have work (docs/events.md): "
           "for selectors, asyncio's add_reader, GLib. Drain with try_ calls until they find "
           "nothing (which re-arms it).")
      .def("take_wait_events", &PyEndpoint<T>::take_wait_events,
           "Why the descriptor woke, as WaitEvent bits (data, room, peer gone, evicted, removed).")
      .def("stats", &PyEndpoint<T>::stats, "This endpoint's counters (a dict).")
      .def("__enter__", [](py::object self) { return self; })
      .def("__exit__", [](PyEndpoint<T>& self, py::args) {
        self.close();
        return false;
      });
  return c;
}

template <typename T>
void bind_sender(py::class_<PyEndpoint<T>>& c) {
  c.def("send", [](PyEndpoint<T>& self, const py::object& data, const py::object& timeout) {
          send_buffer(self, data, Deadline::from(timeout));
        }, py::arg("data"), py::arg("timeout") = py::none(),
        "Copies `data` (any bytes-like object) in, waiting up to `timeout` seconds (None: no "
        "limit) while the channel is full. TimeoutError when the time runs out; ValueError when "
        "it is larger than max_message.")
      .def("try_send", [](PyEndpoint<T>& self, const py::object& data) { return send_buffer(self, data, no_deadline()); },
           py::arg("data"), "As send() without waiting: False when the channel is full.")
      .def_property_readonly("max_message", [](PyEndpoint<T>& self) { return self.require().max_message(); });
}

template <typename T>
void bind_receiver(py::class_<PyEndpoint<T>>& c) {
  c.def("receive", [](PyEndpoint<T>& self, const py::object& timeout) {
          return receive_bytes(self, Deadline::from(timeout));
        }, py::arg("timeout") = py::none(),
        "The next message as bytes, waiting up to `timeout` seconds (None: no limit); "
        "TimeoutError when the time runs out. The GIL is released while it waits and copies.")
      .def("try_receive", [](PyEndpoint<T>& self) { return receive_bytes(self, no_deadline()); },
           "The next message as bytes, or None when there is none (re-arms wait_fd()).")
      .def("receive_into", [](PyEndpoint<T>& self, const py::object& buffer, const py::object& timeout) {
             return receive_into(self, buffer, Deadline::from(timeout));
           }, py::arg("buffer"), py::arg("timeout") = py::none(),
           "Copies the next message into `buffer` (writable, e.g. a bytearray or numpy array) and "
           "returns its size.")
      .def("try_receive_into", [](PyEndpoint<T>& self, const py::object& buffer) {
             return receive_into(self, buffer, no_deadline());
           }, py::arg("buffer"), "As receive_into() without waiting: None when there is nothing.")
      .def("_view", [](PyEndpoint<T>& self, const py::object& timeout) { return take_view(self, Deadline::from(timeout)); },
           py::arg("timeout") = py::none())
      .def("_try_view", [](PyEndpoint<T>& self) { return take_view(self, no_deadline()); })
      .def_property_readonly("max_message", [](PyEndpoint<T>& self) { return self.require().max_message(); });
}

template <typename T>
void bind_loans(py::class_<PyEndpoint<T>>& c) {
  c.def("_loan", [](PyEndpoint<T>& self, std::size_t nbytes, const py::object& timeout) {
          return take_loan(self, nbytes, Deadline::from(timeout));
        }, py::arg("nbytes") = 0, py::arg("timeout") = py::none())
      .def("_try_loan", [](PyEndpoint<T>& self, std::size_t nbytes) { return take_loan(self, nbytes, no_deadline()); },
           py::arg("nbytes") = 0);
}

}  // namespace

// --- EndpointBox, Deadline, PyLease ---------------------------------------------------------------

void EndpointBox::close() {
  closed = true;
  py::gil_scoped_release nogil;
  std::lock_guard<std::mutex> guard(mutex);
  if (!lease_out) endpoint = std::monostate{};
}

Deadline Deadline::from(const py::object& timeout) {
  if (timeout.is_none()) return Deadline(true, {});
  const double seconds = timeout.cast<double>();
  if (!(seconds >= 0) || std::isnan(seconds)) throw py::value_error("timeout must be None or a number of seconds >= 0");
  const auto ns = std::chrono::nanoseconds(static_cast<std::int64_t>(std::min(seconds, 1e9) * 1e9));
  return Deadline(false, std::chrono::steady_clock::now() + ns);
}

std::chrono::nanoseconds Deadline::next_slice() const {
  if (forever_) return kSignalSlice;
  const auto left = at_ - std::chrono::steady_clock::now();
  if (left <= std::chrono::nanoseconds(0)) return std::chrono::nanoseconds(0);
  return std::min<std::chrono::nanoseconds>(left, kSignalSlice);
}

template <typename Fn>
ChannelResult PyLease::finish(Fn&& fn) {
  if (box == nullptr) return ChannelResult::kClosed;
  ChannelResult r = ChannelResult::kOk;
  {
    py::gil_scoped_release nogil;
    std::lock_guard<std::mutex> guard(box->mutex);
    if (!settled()) r = fn();
    lease = std::monostate{};
    bytes = {};
    box->lease_out = false;
    if (box->closed) box->endpoint = std::monostate{};
  }
  return r;
}

ChannelResult PyLease::release() {
  return finish([&] {
    return std::visit([](auto& l) -> ChannelResult {
      using L = std::decay_t<decltype(l)>;
      if constexpr (std::is_same_v<L, TopicView> || std::is_same_v<L, QueueView> || std::is_same_v<L, FrameView>) {
        return l.release();
      } else {
        return ChannelResult::kOk;  // a loan given up (its destructor)
      }
    }, lease);
  });
}

ChannelResult PyLease::publish(std::size_t n) {
  return finish([&] {
    return std::visit([&](auto& l) -> ChannelResult {
      using L = std::decay_t<decltype(l)>;
      if constexpr (std::is_same_v<L, TopicLoan>) {
        TopicPublisher* p = std::get_if<TopicPublisher>(&box->endpoint);
        return p == nullptr ? ChannelResult::kClosed : p->publish(l, n);
      } else if constexpr (std::is_same_v<L, QueueLoan>) {
        QueueProducer* p = std::get_if<QueueProducer>(&box->endpoint);
        return p == nullptr ? ChannelResult::kClosed : p->publish(l, n);
      } else if constexpr (std::is_same_v<L, FrameLoan>) {
        FramePublisher* p = std::get_if<FramePublisher>(&box->endpoint);
        return p == nullptr ? ChannelResult::kClosed : p->publish(l, n);
      } else {
        return ChannelResult::kClosed;  // not a loan
      }
    }, lease);
  });
}

void PyLease::abandon() {
  finish([] { return ChannelResult::kOk; });  // the loan's / view's destructor settles it
}

PyLease::~PyLease() {
  if (box != nullptr && !settled()) abandon();
}

void bind_channels(py::module_& m) {
  py::class_<PyLease>(m, "_Lease", py::buffer_protocol(),
                      "A loan or view's memory (use shmring.Loan / shmring.View).")
      .def_buffer([](PyLease& l) {
        static std::byte empty = std::byte{0};
        // Settled: no bytes (the wrappers never export a settled lease; this keeps a stray
        // memoryview(lease) from reaching given-back memory).
        void* ptr = l.settled() ? static_cast<void*>(&empty) : static_cast<void*>(l.bytes.data());
        const auto size = static_cast<py::ssize_t>(l.settled() ? 0 : l.bytes.size());
        return py::buffer_info(ptr, 1, py::format_descriptor<std::uint8_t>::format(), 1, {size}, {1},
                               /*readonly=*/!l.writable || l.settled());
      })
      .def_property_readonly("nbytes", [](PyLease& l) { return l.bytes.size(); })
      .def_property_readonly("number", [](PyLease& l) { return l.number; })
      .def_property_readonly("redelivered", [](PyLease& l) { return l.redelivered; })
      .def_property_readonly("settled", &PyLease::settled)
      .def("release", [](PyLease& l) {
        const ChannelResult r = l.release();
        if (r != ChannelResult::kOk) raise_result(r, "view.release");
      })
      .def("publish", [](PyLease& l, std::size_t n) {
        if (n > l.bytes.size()) throw py::value_error("publish: more bytes than the loan holds");
        const ChannelResult r = l.publish(n);
        if (r != ChannelResult::kOk) raise_result(r, "loan.publish");
      })
      .def("abandon", &PyLease::abandon);

  // Topic.
  auto topic_pub = bind_common<TopicPublisher>(m, "TopicPublisher",
      "The one publisher of a topic: every subscriber gets every message (lossy: a slow one skips "
      "ahead and counts what it lost; lossless: the publisher waits for the slowest).");
  topic_pub.def(py::init([](const std::string& name, std::uint64_t capacity, std::uint64_t max_message,
                            std::uint32_t max_peers, bool lossless, int permissions, bool create,
                            double open_timeout, double dead_check_interval, double evict_after,
                            std::uint64_t evict_lag) {
                  TopicOptions o;
                  common_options(o, capacity, max_message, max_peers, permissions, create, open_timeout);
                  o.lossless = lossless;
                  o.dead_check_interval = millis(dead_check_interval, "dead_check_interval");
                  o.evict_after = millis(evict_after, "evict_after");
                  o.evict_lag = evict_lag;
                  return PyEndpoint<TopicPublisher>{open_box<TopicPublisher>("TopicPublisher", name, o)};
                }),
                py::arg("name"), py::kw_only(), py::arg("capacity") = 0, py::arg("max_message") = 0,
                py::arg("max_peers") = 0, py::arg("lossless") = false, py::arg("permissions") = 0600,
                py::arg("create") = true, py::arg("open_timeout") = 2.0,
                py::arg("dead_check_interval") = 0.005, py::arg("evict_after") = 0.0,
                py::arg("evict_lag") = 0)
      .def_property_readonly("lossless", [](PyEndpoint<TopicPublisher>& s) { return s.require().lossless(); })
      .def_property_readonly("evictions", [](PyEndpoint<TopicPublisher>& s) { return s.require().evictions(); });
  bind_sender(topic_pub);
  bind_loans(topic_pub);

  auto topic_sub = bind_common<TopicSubscriber>(m, "TopicSubscriber", "A subscriber of a topic.");
  topic_sub.def(py::init([](const std::string& name, std::uint64_t capacity, std::uint64_t max_message,
                            std::uint32_t max_peers, bool lossless, int permissions, bool create,
                            double open_timeout, bool start_at_latest, bool read_only) {
                  TopicOptions o;
                  common_options(o, capacity, max_message, max_peers, permissions, create, open_timeout);
                  o.lossless = lossless;
                  o.start = start_at_latest ? TopicStart::latest() : TopicStart::live();
                  o.read_only = read_only;
                  return PyEndpoint<TopicSubscriber>{open_box<TopicSubscriber>("TopicSubscriber", name, o)};
                }),
                py::arg("name"), py::kw_only(), py::arg("capacity") = 0, py::arg("max_message") = 0,
                py::arg("max_peers") = 0, py::arg("lossless") = false, py::arg("permissions") = 0600,
                py::arg("create") = true, py::arg("open_timeout") = 2.0,
                py::arg("start_at_latest") = false, py::arg("read_only") = false)
      .def_property_readonly("lossless", [](PyEndpoint<TopicSubscriber>& s) { return s.require().lossless(); })
      .def_property_readonly("lost", [](PyEndpoint<TopicSubscriber>& s) { return s.require().lost(); })
      .def_property_readonly("received", [](PyEndpoint<TopicSubscriber>& s) { return s.require().received(); });
  bind_receiver(topic_sub);

  // Queue.
  auto producer = bind_common<QueueProducer>(m, "QueueProducer",
      "A producer of a work queue: every item goes to exactly one consumer.");
  bind_common_init<QueueProducer, QueueOptions>(producer, "QueueProducer");
  producer.def_property_readonly("capacity", [](PyEndpoint<QueueProducer>& s) { return s.require().capacity(); })
      .def_property_readonly("size", [](PyEndpoint<QueueProducer>& s) { return s.require().size_approx(); });
  bind_sender(producer);
  bind_loans(producer);

  auto consumer = bind_common<QueueConsumer>(m, "QueueConsumer",
      "A consumer of a work queue (consumers compete for the items).");
  bind_common_init<QueueConsumer, QueueOptions>(consumer, "QueueConsumer");
  consumer.def_property_readonly("capacity", [](PyEndpoint<QueueConsumer>& s) { return s.require().capacity(); })
      .def_property_readonly("size", [](PyEndpoint<QueueConsumer>& s) { return s.require().size_approx(); });
  bind_receiver(consumer);

  // Frames.
  auto frame_pub = bind_common<FramePublisher>(m, "FramePublisher",
      "The publisher of a frames channel: large frames written in place, subscribers take the newest.");
  bind_common_init<FramePublisher, FrameOptions>(frame_pub, "FramePublisher");
  frame_pub.def_property_readonly("frames_published", [](PyEndpoint<FramePublisher>& s) { return s.require().frames_published(); });
  bind_sender(frame_pub);
  bind_loans(frame_pub);

  auto frame_sub = bind_common<FrameSubscriber>(m, "FrameSubscriber",
      "A subscriber of a frames channel: each receive takes the newest frame (older ones are skipped).");
  bind_common_init<FrameSubscriber, FrameOptions>(frame_sub, "FrameSubscriber");
  frame_sub.def_property_readonly("lost", [](PyEndpoint<FrameSubscriber>& s) { return s.require().lost(); })
      .def_property_readonly("received", [](PyEndpoint<FrameSubscriber>& s) { return s.require().received(); });
  bind_receiver(frame_sub);

  // Module-level calls.
  m.def("list_channels", [] {
    py::gil_scoped_release nogil;
    return list_channels();
  }, "Names of the live channels on this machine.");
  m.def("stats", [](const std::string& name) {
    absl::StatusOr<ChannelStats> s = [&] {
      py::gil_scoped_release nogil;
      return read_stats(name);
    }();
    if (!s.ok()) raise_status(s.status());
    return channel_stats_dict(*s);
  }, py::arg("name"), "A channel's counters and peers (a dict), read without disturbing it.");
  m.def("remove_channel", [](const std::string& name) {
    const absl::Status s = [&] {
      py::gil_scoped_release nogil;
      return remove_channel(name);
    }();
    if (!s.ok()) raise_status(s);
  }, py::arg("name"), "Removes a channel's name now (open endpoints keep working).");
}

}  // namespace shmring::python
