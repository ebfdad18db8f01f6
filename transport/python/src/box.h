// What the Python objects hold: an endpoint (or a lease) behind a mutex, released-GIL helpers, and
// the bounded-slice waiting loop that lets Ctrl-C interrupt a blocking call.
#pragma once

#include <pybind11/pybind11.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <variant>

#include "shmring/transport/frame.h"
#include "shmring/transport/queue.h"
#include "shmring/transport/topic.h"

namespace shmring::python {

namespace py = pybind11;

// One Python endpoint's C++ endpoint, shared with the lease (loan or view) it has out, so that the
// mapping the lease's memory lives in stays mapped until the lease is gone: close() with a lease out
// only marks the endpoint closed, and the lease's end closes it.
struct EndpointBox {
  using Any = std::variant<std::monostate, TopicPublisher, TopicSubscriber, QueueProducer,
                           QueueConsumer, FramePublisher, FrameSubscriber>;
  // One call at a time: taken with the GIL released (and never held while waiting for the GIL,
  // so a thread holding the GIL may wait for it without a deadlock).
  std::mutex mutex;
  Any endpoint;
  bool closed = false;     // close() was called (under the GIL)
  bool lease_out = false;  // a _Lease exists (under the mutex)
  std::string what;        // "TopicSubscriber('prices')", for messages

  template <typename T>
  T* get() {
    return closed ? nullptr : std::get_if<T>(&endpoint);
  }
  // Destroys the endpoint unless a lease is out (then the lease's end does). GIL held.
  void close();
};

// A timeout given in seconds (None: no limit), consumed in slices.
class Deadline {
 public:
  // `timeout`: None or a number of seconds >= 0 (ValueError otherwise).
  static Deadline from(const py::object& timeout);
  // The next wait: at most kSignalSlice, at most what is left (0 once it passed).
  std::chrono::nanoseconds next_slice() const;
  bool passed() const { return !forever_ && std::chrono::steady_clock::now() >= at_; }

  // How long one wait with the GIL released lasts at most: the bound on how late Ctrl-C (or any
  // signal handler) runs during a blocking call.
  static constexpr std::chrono::milliseconds kSignalSlice{50};

 private:
  Deadline(bool forever, std::chrono::steady_clock::time_point at) : forever_(forever), at_(at) {}
  bool forever_;
  std::chrono::steady_clock::time_point at_;
};

// Calls attempt(slice) -- which releases the GIL itself -- until it returns something other than
// kTimedOut / kWouldBlock or the deadline passes (kTimedOut); between slices, with the GIL, runs
// the pending signal handlers (a KeyboardInterrupt propagates as py::error_already_set).
template <typename Attempt>
ChannelResult wait_loop(const Deadline& deadline, Attempt&& attempt) {
  for (;;) {
    const ChannelResult r = attempt(deadline.next_slice());
    if (r != ChannelResult::kTimedOut && r != ChannelResult::kWouldBlock) return r;
    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
    if (deadline.passed()) return ChannelResult::kTimedOut;
  }
}

// Runs fn(T* endpoint or nullptr if closed) with the box's mutex held, and the GIL released
// unless `keep_gil` (a try_ call that copies little: releasing and re-taking the GIL would cost
// more than the call). Holding the GIL while waiting for the mutex cannot deadlock: no thread
// waits for the GIL while it holds the mutex.
template <typename T, typename Fn>
auto locked(EndpointBox& box, Fn&& fn, bool keep_gil = false) {
  if (keep_gil) {
    std::lock_guard<std::mutex> guard(box.mutex);
    return fn(box.get<T>());
  }
  py::gil_scoped_release nogil;
  std::lock_guard<std::mutex> guard(box.mutex);
  return fn(box.get<T>());
}

// Copies of at least this many bytes release the GIL even in a try_ call.
inline constexpr std::size_t kReleaseGilBytes = 64 * 1024;

// A loan or a view handed to Python: exports its bytes through the buffer protocol (read-only for
// views) until it is settled; its end (settle, or the destructor) gives the lease back and closes a
// closed endpoint. The Python wrappers (shmring.Loan / shmring.View) settle it only once every
// memoryview of it is released, so its memory is never reachable after it was given back.
struct PyLease {
  using Any = std::variant<std::monostate, TopicLoan, TopicView, QueueLoan, QueueView, FrameLoan, FrameView>;
  std::shared_ptr<EndpointBox> box;  // declared first: destroyed after `lease`
  Any lease;
  std::span<std::byte> bytes;
  bool writable = false;
  std::uint64_t number = 0;   // queue: ticket; frames: frame number
  bool redelivered = false;   // queue: taken over from a dead consumer

  PyLease() = default;
  PyLease(const PyLease&) = delete;
  PyLease& operator=(const PyLease&) = delete;
  ~PyLease();
  bool settled() const { return std::holds_alternative<std::monostate>(lease); }
  // Views: release (kOk, kOverwritten, kEvicted, kClosed). GIL held on entry.
  ChannelResult release();
  // Loans: publish the first `n` bytes. GIL held on entry.
  ChannelResult publish(std::size_t n);
  // Loans: give up; views: release and ignore the answer.
  void abandon();

 private:
  // Under the box's mutex: ends the lease (fn(lease) decides how), then lease_out = false.
  template <typename Fn>
  ChannelResult finish(Fn&& fn);
};

}  // namespace shmring::python
