#include "lease.h"

#include <type_traits>

#include "errors.h"

namespace shmring::python {

namespace {

// The sender that publishes a loan of type L.
template <typename L>
using PublisherOf = std::conditional_t<std::is_same_v<L, TopicLoan>, TopicPublisher,
                                       std::conditional_t<std::is_same_v<L, QueueLoan>, QueueProducer, FramePublisher>>;

PyLease* lease_of(PyObject* self) {
  try {
    return py::cast<PyLease*>(py::handle(self));
  } catch (const py::cast_error&) {
    return nullptr;
  }
}

}  // namespace

ChannelResult PyLease::settle(End how, std::size_t n) {
  // The GIL is held: mutex holders never wait for the GIL (box.h), and the C++ calls never wait.
  std::unique_lock<std::mutex> lock(box->mutex);
  box->idle.wait(lock, [&] { return !box->copying; });
  const ChannelResult r = std::visit([&](auto& l) -> ChannelResult {
    using L = std::decay_t<decltype(l)>;
    if constexpr (kIsView<L>) {
      return l.release();
    } else {
      if (how != End::kPublish) return ChannelResult::kOk;  // the loan's destructor abandons it
      auto* sender = box->get<PublisherOf<L>>();
      return sender == nullptr ? ChannelResult::kClosed : sender->publish(l, n);
    }
  }, *lease);
  lease.reset();  // an unpublished loan is abandoned, a view released (if it was not yet)
  box->lease_out = false;
  return r;
}

void PyLease::unpin_if_unused() {
  if (pinned && settled() && exports == 0) {
    pinned = false;
    box->unpin();
  }
}

ChannelResult PyLease::release() {
  if (settled()) return ChannelResult::kOk;
  if (box->forked()) box->raise_unusable();
  if (exports > 0 && !lossy_view) {
    settle_when_unexported = true;
    return ChannelResult::kOk;
  }
  const ChannelResult r = settle(End::kRelease);
  unpin_if_unused();
  return r;
}

ChannelResult PyLease::publish(std::size_t n) {
  if (settled()) throw py::value_error("the loan was published or abandoned");
  if (box->forked()) box->raise_unusable();
  if (exports > 0) {
    PyErr_SetString(PyExc_BufferError,
                    "the loan's buffer is still in use (a numpy array, memoryview or slice made from "
                    "it is alive): it was not published and stays lent; drop those objects (del) and "
                    "publish again");
    throw py::error_already_set();
  }
  const ChannelResult r = settle(End::kPublish, n);
  unpin_if_unused();
  return r;
}

void PyLease::abandon() {
  if (settled()) return;
  if (box->forked()) box->raise_unusable();
  if (exports > 0) {
    settle_when_unexported = true;
    return;
  }
  settle(End::kAbandon);
  unpin_if_unused();
}

PyLease::~PyLease() {
  if (box->forked()) {
    (void)lease.release();  // never touch the C++ lease in a forked child (box.h)
    return;
  }
  if (!settled()) settle(End::kAbandon);
  unpin_if_unused();
}

int PyLease::get_buffer(PyObject* self, Py_buffer* view, int flags) {
  view->obj = nullptr;
  PyLease* l = lease_of(self);
  if (l == nullptr) {
    PyErr_SetString(PyExc_TypeError, "not a shmring lease");
    return -1;
  }
  if (l->settled()) {
    PyErr_SetString(PyExc_ValueError, "the loan or view was given back: its memory is the channel's again");
    return -1;
  }
  if ((flags & PyBUF_WRITABLE) != 0 && !l->writable) {
    PyErr_SetString(PyExc_BufferError, "a view is read-only");
    return -1;
  }
  if (PyBuffer_FillInfo(view, self, l->bytes.data(), static_cast<Py_ssize_t>(l->bytes.size()),
                        l->writable ? 0 : 1, flags) != 0) {
    return -1;
  }
  ++l->exports;
  return 0;
}

void PyLease::release_buffer(PyObject* self, Py_buffer* /*view*/) {
  PyLease* l = lease_of(self);
  if (l == nullptr || --l->exports > 0) return;
  if (l->box->forked()) return;
  if (l->settle_when_unexported && !l->settled()) l->settle(End::kAbandon);
  l->unpin_if_unused();
}

void bind_lease(py::module_& m) {
  py::class_<PyLease> lease(m, "_Lease", py::buffer_protocol(),
                            "A loan's or view's memory (shmring.Loan / shmring.View wrap it).");
  // Our own buffer protocol instead of pybind11's: it counts the exports (lease.h).
  auto* heap_type = reinterpret_cast<PyHeapTypeObject*>(lease.ptr());
  heap_type->as_buffer.bf_getbuffer = &PyLease::get_buffer;
  heap_type->as_buffer.bf_releasebuffer = &PyLease::release_buffer;
  lease.def_property_readonly("nbytes", [](PyLease& l) { return l.bytes.size(); })
      .def_property_readonly("sequence", [](PyLease& l) { return l.sequence; })
      .def_property_readonly("publisher", [](PyLease& l) { return l.publisher; },
                             "Topic views: the id of the publisher that sent it (TopicPublisher.publisher_id); 0 otherwise.")
      .def_property_readonly("publisher_sequence", [](PyLease& l) { return l.publisher_sequence; },
                             "Topic views: that publisher's own number for it (0 for its first message, as for other views).")
      .def_property_readonly("redelivered", [](PyLease& l) { return l.redelivered; })
      .def_property_readonly("settled", &PyLease::settled)
      .def_property_readonly("exports", [](PyLease& l) { return l.exports; })
      .def("release", [](PyLease& l) {
        const ChannelResult r = l.release();
        if (r != ChannelResult::kOk) raise_result(r, l.box->what() + " view.release");
      })
      .def("publish", [](PyLease& l, std::size_t n) {
        if (n > l.bytes.size()) throw py::value_error("publish: more bytes than the loan holds");
        const ChannelResult r = l.publish(n);
        if (r != ChannelResult::kOk) raise_result(r, l.box->what() + " loan.publish");
      })
      .def("abandon", &PyLease::abandon);
}

}  // namespace shmring::python
