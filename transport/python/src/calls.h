// The data-path calls of every Python endpoint class, written once as templates over the C++
// endpoint type T: copying send and receive, receive into a caller's buffer, and taking a lease
// (a loan or a view). channels.cc binds them per pattern.
#pragma once

#include <pybind11/pybind11.h>

#include <sched.h>

#include <cstring>
#include <optional>
#include <string>

#include "box.h"
#include "errors.h"
#include "lease.h"

namespace shmring::python {

// What every endpoint class holds; T says which C++ endpoint is inside.
template <typename T>
struct PyEndpoint {
  std::shared_ptr<EndpointBox> box;

  // The box, after checking that the endpoint can be used here (ValueError: closed, or a forked
  // child's copy). Every call starts with it, before any lock (box.h's fork rule).
  EndpointBox& usable() {
    if (box->forked() || box->closed.load(std::memory_order_relaxed)) box->raise_unusable();
    return *box;
  }
  // A call that reads a property of the open endpoint (max_message, lossless, ...).
  template <typename Fn>
  auto read(Fn&& fn) {
    EndpointBox& b = usable();
    using R = decltype(fn(std::declval<T&>()));
    const std::optional<R> r = locked<T>(b, [&](T* e, bool) -> std::optional<R> {
      if (e == nullptr) return std::nullopt;
      return fn(*e);
    }, /*keep_gil=*/true);
    if (!r) b.raise_unusable();  // closed meanwhile
    return *r;
  }
};

// BufferError: the endpoint's loan or view is still out.
[[noreturn]] inline void raise_lease_busy(const EndpointBox& box) {
  PyErr_SetString(PyExc_BufferError,
                  (box.what() + ": its loan or view is still in use (not yet published or released, "
                                "or a numpy array, memoryview or slice made from it is alive); "
                                "finish it, or drop those objects, first")
                      .c_str());
  throw py::error_already_set();
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

// The slice value that asks an attempt for the yield phase (timed_call).
inline constexpr std::chrono::nanoseconds kYieldPhase{-1};
// How long the yield phase lasts at most.
inline constexpr std::chrono::microseconds kYieldBudget{50};

inline bool would_block(ChannelResult r) { return r == ChannelResult::kWouldBlock || r == ChannelResult::kTimedOut; }
template <typename Lease>
bool would_block(const Lease& l) { return !l.ok() && would_block(l.result()); }

// The C++ call of one attempt, under the box's mutex: slice 0 is the try_ form (try_call()), a
// positive slice the blocking form (wait_call(slice), waiting as the endpoint's WaitOptions say),
// and kYieldPhase the first phase of Python's default wait on one CPU (channels.cc,
// default_wait): try_call() after each sched_yield() for up to kYieldBudget. Yielding lets a peer
// that shares the CPU run, where spinning would take its time; then the endpoint (opened with
// WaitStrategy::kPark) sleeps.
template <typename Try, typename Wait>
auto timed_call(std::chrono::nanoseconds slice, Try&& try_call, Wait&& wait_call) -> decltype(try_call()) {
  if (slice.count() > 0) return wait_call(slice);
  if (slice != kYieldPhase) return try_call();
  const auto start = std::chrono::steady_clock::now();
  for (;;) {
    sched_yield();
    auto r = try_call();
    if (!would_block(r) || std::chrono::steady_clock::now() - start >= kYieldBudget) return r;
  }
}

// One try first (most calls find a message or room at once), then, with a deadline, the wait:
// the yield phase (if the endpoint uses Python's default wait), then slices with the GIL
// released.
template <typename Attempt>
ChannelResult try_then_wait(const EndpointBox& box, const std::optional<Deadline>& deadline, Attempt& attempt) {
  const ChannelResult first = attempt(std::chrono::nanoseconds(0));
  if (!deadline || !would_block(first)) return first;
  if (box.yield_phase) {
    const ChannelResult r = attempt(kYieldPhase);
    if (!would_block(r)) return r;
  }
  return wait_loop(*deadline, attempt);
}

// Copying send: `data` is any buffer-protocol object. timeout None: no limit; no deadline (the
// try_ form): returns false when it would block.
template <typename T>
bool send_buffer(PyEndpoint<T>& self, const py::object& data, const std::optional<Deadline>& deadline) {
  EndpointBox& box = self.usable();
  if (box.lease_out) raise_lease_busy(box);
  const BufferRef buffer(data, false);
  const std::span<const std::byte> bytes = buffer.bytes();
  auto attempt = [&](std::chrono::nanoseconds slice) {
    return locked<T>(box, [&](T* e, bool) {
      if (e == nullptr) return ChannelResult::kClosed;
      return timed_call(slice, [&] { return e->try_send(bytes); }, [&](auto t) { return e->send(bytes, t); });
    }, slice.count() == 0 && bytes.size() < kReleaseGilBytes);
  };
  const ChannelResult r = try_then_wait(box, deadline, attempt);
  if (r == ChannelResult::kOk) return true;
  if (!deadline && r == ChannelResult::kWouldBlock) return false;
  if (r == ChannelResult::kClosed) box.raise_unusable();
  raise_result(r, box.what() + ".send");
}

// Copying receive into a new bytes object of the message's size. A try that finds a small message
// copies and releases it under one lock with the GIL kept (the common case, cheapest). Otherwise
// the view is taken under the lock and marked `copying` (close() and the endpoint's other calls
// wait for it: the mapping cannot go away mid-copy), the bytes object is made with the GIL, the
// message copied without the GIL or the lock, and the view released under the lock. A lossy
// topic's message overwritten while copied is skipped (the next one is taken).
template <typename T>
py::object receive_bytes(PyEndpoint<T>& self, const std::optional<Deadline>& deadline) {
  using View = decltype(std::declval<T&>().try_receive_view());
  EndpointBox& box = self.usable();
  if (box.lease_out) raise_lease_busy(box);
  for (int laps = 0;; ++laps) {
    View view;
    py::object out;
    bool copy_later = false;
    auto attempt = [&](std::chrono::nanoseconds slice) {
      const bool try_call = slice.count() == 0;
      return locked<T>(box, [&](T* e, bool gil_held) {
        if (e == nullptr) return ChannelResult::kClosed;
        view = timed_call(slice, [&] { return e->try_receive_view(); }, [&](auto t) { return e->receive_view(t); });
        if (!view.ok()) return view.result();
        const std::span<const std::byte> data = view.data();
        if (gil_held && data.size() < kReleaseGilBytes) {
          out = py::reinterpret_steal<py::object>(PyBytes_FromStringAndSize(
              reinterpret_cast<const char*>(data.data()), static_cast<Py_ssize_t>(data.size())));
          return view.release();  // out is null (MemoryError set) when that failed
        }
        if (!gil_held && exiting_elsewhere()) {
          view.release();  // this daemon thread parks on its way back (without_gil): hold nothing
          return ChannelResult::kClosed;
        }
        box.copying = true;
        copy_later = true;
        return ChannelResult::kOk;
      }, try_call);
    };
    ChannelResult r = try_then_wait(box, deadline, attempt);
    if (copy_later) {
      const std::span<const std::byte> data = view.data();
      out = py::reinterpret_steal<py::object>(PyBytes_FromStringAndSize(nullptr, static_cast<Py_ssize_t>(data.size())));
      char* target = out ? PyBytes_AS_STRING(out.ptr()) : nullptr;  // ours alone until returned
      r = without_gil([&] {
        if (target != nullptr) std::memcpy(target, data.data(), data.size());
        std::lock_guard<std::mutex> guard(box.mutex);
        const ChannelResult released = view.release();
        box.copying = false;
        box.idle.notify_all();
        box.close_if_unused();
        return released;
      });
    }
    if (r == ChannelResult::kOk && !out) throw py::error_already_set();  // MemoryError
    if (!out && copy_later) throw py::error_already_set();
    if (r == ChannelResult::kOk) return out;
    if (r == ChannelResult::kOverwritten && laps < 64) continue;
    if (!deadline && r == ChannelResult::kWouldBlock) return py::none();
    if (r == ChannelResult::kClosed) box.raise_unusable();
    raise_result(r, box.what() + ".receive");
  }
}

// Copying receive into the caller's writable buffer; returns the message's size.
template <typename T>
py::object receive_into(PyEndpoint<T>& self, const py::object& buffer, const std::optional<Deadline>& deadline) {
  EndpointBox& box = self.usable();
  if (box.lease_out) raise_lease_busy(box);
  const BufferRef target(buffer, true);
  const std::span<std::byte> out = target.bytes();
  std::size_t n = 0;
  auto attempt = [&](std::chrono::nanoseconds slice) {
    return locked<T>(box, [&](T* e, bool) {
      if (e == nullptr) return ChannelResult::kClosed;
      return timed_call(slice, [&] { return e->try_receive(out, &n); }, [&](auto t) { return e->receive(out, &n, t); });
    }, slice.count() == 0 && out.size() < kReleaseGilBytes);
  };
  const ChannelResult r = try_then_wait(box, deadline, attempt);
  if (r == ChannelResult::kOk) return py::int_(n);
  if (!deadline && r == ChannelResult::kWouldBlock) return py::none();
  if (r == ChannelResult::kClosed) box.raise_unusable();
  if (r == ChannelResult::kTooLarge) {
    throw py::value_error(box.what() + ".receive_into: a buffer of " + std::to_string(out.size()) +
                          " bytes is too small (the next message has " + std::to_string(n) +
                          " bytes; a buffer of max_message bytes always fits)");
  }
  raise_result(r, box.what() + ".receive_into");
}

// What a lease says about itself, per C++ lease type.
inline void describe(PyLease& l, const TopicView& v, const TopicSubscriber& sub) {
  l.sequence = v.sequence();
  l.publisher = v.publisher();
  l.publisher_sequence = v.publisher_sequence();
  l.lossy_view = !sub.lossless();
}
inline void describe(PyLease& l, const QueueView& v, const QueueConsumer&) {
  l.sequence = v.sequence();
  l.redelivered = v.redelivered();
}
inline void describe(PyLease& l, const FrameView& v, const FrameSubscriber&) { l.sequence = v.sequence(); }
template <typename Loan, typename Sender>
void describe(PyLease&, const Loan&, const Sender&) {}

// The bytes a lease exports: a view's message, or the `nbytes` (0: all) of a loan's buffer a
// queue or frame loan lends (a topic loan is made with that size).
template <typename L>
std::span<std::byte> bytes_of(const L& l, std::size_t nbytes) {
  if constexpr (std::is_same_v<L, TopicLoan>) {
    return l.buffer();
  } else if constexpr (kIsView<L>) {
    const std::span<const std::byte> data = l.data();
    return {const_cast<std::byte*>(data.data()), data.size()};  // exported read-only
  } else {
    const std::span<std::byte> buffer = l.buffer();
    return buffer.first(nbytes == 0 ? buffer.size() : std::min(nbytes, buffer.size()));
  }
}

// A loan (senders) or a view (receivers) as a _Lease: take(T&, slice) makes the C++ lease (with
// timed_call). `nbytes` is what a loan lends (0: max_message); None from the try_ form
// when there is nothing.
template <typename T, typename Take>
py::object take_lease(PyEndpoint<T>& self, const std::optional<Deadline>& deadline, std::size_t nbytes,
                      const char* call, Take&& take) {
  EndpointBox& box = self.usable();
  if (box.lease_out) raise_lease_busy(box);
  std::unique_ptr<PyLease> lease;
  auto attempt = [&](std::chrono::nanoseconds slice) {
    return locked<T>(box, [&](T* e, bool) {
      if (e == nullptr) return ChannelResult::kClosed;
      auto made = take(*e, slice);
      if (!made.ok()) return made.result();
      auto l = std::make_unique<PyLease>(self.box, bytes_of(made, nbytes), !kIsView<decltype(made)>);
      describe(*l, made, *e);
      l->lease = std::make_unique<PyLease::Any>(std::move(made));
      box.lease_out = true;
      ++box.pins;
      lease = std::move(l);  // no allocation under the lock after this point can fail
      return ChannelResult::kOk;
    }, slice.count() == 0);
  };
  const ChannelResult r = try_then_wait(box, deadline, attempt);
  if (r != ChannelResult::kOk) {
    if (!deadline && r == ChannelResult::kWouldBlock) return py::none();
    if (r == ChannelResult::kClosed) box.raise_unusable();
    raise_result(r, box.what() + "." + call);
  }
  return py::cast(std::move(lease));
}

}  // namespace shmring::python
