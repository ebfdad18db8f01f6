// What a Python endpoint holds (EndpointBox: the C++ endpoint behind a mutex, shared with the
// leases that keep its mapping alive), timeouts in seconds (Deadline), and the two ways a call
// runs C++ code: without the GIL (without_gil) and under the endpoint's mutex (locked).
//
// Rules every binding follows (docs/python.md, "Threads", "fork"):
//  * The mutex is never held while waiting for the GIL. So a thread that holds the GIL may wait
//    for the mutex without a deadlock, and the GIL is taken back only with the mutex released.
//  * The GIL is released and taken back with explicit calls, never in a destructor: a daemon
//    thread that takes the GIL back while the interpreter is finalizing is ended by CPython with
//    pthread_exit, and that forced unwind must not cross a noexcept frame (a destructor), which
//    would std::terminate the process.
//  * In a forked child, an inherited endpoint is never touched again: its mutex may be held by a
//    thread that does not exist there, and its C++ state may be mid-call. Every call checks
//    forked() first, and destruction leaks the C++ objects instead of closing them.
#pragma once

#include <pybind11/pybind11.h>

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>
#include <variant>

#include "shmring/transport/frame.h"
#include "shmring/transport/queue.h"
#include "shmring/transport/topic.h"

namespace shmring::python {

namespace py = pybind11;

// The interpreter is exiting (an atexit callback said so) and this is not the thread that runs
// the exit: a daemon thread (every other thread was joined before atexit callbacks run).
bool exiting_elsewhere() noexcept;
// Called by the atexit callback (shmring/__init__.py), in the exiting thread.
void mark_interpreter_exiting() noexcept;
// Where a daemon thread that comes back from a wait during the interpreter's exit stays: it never
// takes the GIL again (taking it during finalization races CPython's teardown), and the process's
// exit ends it. Called with no lock held.
[[noreturn]] void park_forever() noexcept;

// Runs fn() with the GIL released; fn must not touch Python. The GIL is taken back by a plain
// call after fn returns (or throws), never by a destructor (see above); a daemon thread that
// returns during the interpreter's exit parks instead (park_forever).
template <typename Fn>
auto without_gil(Fn&& fn) -> decltype(fn()) {
  if constexpr (std::is_void_v<decltype(fn())>) {
    without_gil([&] {
      fn();
      return true;
    });
  } else {
    PyThreadState* state = PyEval_SaveThread();
    std::optional<decltype(fn())> result;
    try {
      result.emplace(fn());
    } catch (...) {
      if (exiting_elsewhere()) park_forever();
      PyEval_RestoreThread(state);
      throw;
    }
    if (exiting_elsewhere()) park_forever();
    PyEval_RestoreThread(state);
    return std::move(*result);
  }
}

// One Python endpoint's C++ endpoint, shared with the leases (loans and views) it has out, so the
// mapping a lease's memory lives in stays mapped while anything can reach it: close() with a pin
// out only marks the endpoint closed, and the last unpin closes it.
struct EndpointBox {
  using Any = std::variant<TopicPublisher, TopicSubscriber, QueueProducer, QueueConsumer,
                           FramePublisher, FrameSubscriber>;

  EndpointBox(Any opened, std::string type_name, std::string channel_name);
  EndpointBox(const EndpointBox&) = delete;
  EndpointBox& operator=(const EndpointBox&) = delete;
  // Closes the endpoint (in a forked child: leaks it, see above). GIL held.
  ~EndpointBox();

  // One C++ call at a time (the C++ endpoint is used by one thread at a time).
  std::mutex mutex;
  // Signalled when `copying` ends.
  std::condition_variable idle;
  // Under the mutex: null once closed and unpinned.
  std::unique_ptr<Any> endpoint;
  // A C++ loan or view is held by a Python lease (the endpoint's data calls are refused with
  // BufferError meanwhile). Written under the mutex; read before taking it (a hint: the C++ call
  // refuses a second lease itself).
  std::atomic<bool> lease_out{false};
  // Under the mutex: a copying receive holds a view while it copies without the lock; other calls
  // wait for it to end.
  bool copying = false;
  // Under the mutex: Python leases that keep the mapping (their memory may still be exported).
  int pins = 0;
  // close() was called.
  std::atomic<bool> closed{false};
  // Blocking calls start with the yield phase (Python's default wait, calls.h).
  bool yield_phase = false;

  const std::string type_name;     // "TopicSubscriber"
  const std::string channel_name;  // "prices"
  const pid_t opened_in;           // the process that opened it
  const std::uint64_t generation;  // fork_generation() there

  // The endpoint, or nullptr when closed (or forked). Under the mutex.
  template <typename T>
  T* get() {
    return closed.load(std::memory_order_relaxed) || forked() || endpoint == nullptr
               ? nullptr
               : std::get_if<T>(endpoint.get());
  }
  // This is a forked child's copy (never touch the C++ endpoint or the mutex).
  bool forked() const noexcept;
  // "TopicSubscriber('prices')", for messages.
  std::string what() const { return type_name + "('" + channel_name + "')"; }

  // Raises ValueError: closed, or a forked child's copy (with a message that says so).
  [[noreturn]] void raise_unusable() const;
  // Marks the endpoint closed and, unless something pins it, closes the C++ endpoint (without
  // the GIL: closing may wait for the channel's lock). GIL held on entry.
  void close();
  // A lease ends its pin (GIL held): the last one closes a closed endpoint.
  void unpin();
  // Under the mutex: closes the C++ endpoint if close() was called and nothing pins it or copies.
  void close_if_unused();
};

// A timeout given in seconds (None: no limit), consumed in slices.
class Deadline {
 public:
  // `timeout`: None or a real number of seconds >= 0 (TypeError / ValueError otherwise).
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

// Runs `wait_slice(slice)` -- which waits at most `slice` with the GIL released and returns
// whether it is done -- until it is done or the deadline passes; between slices, with the GIL,
// runs the pending signal handlers (a KeyboardInterrupt propagates as py::error_already_set).
template <typename WaitSlice>
bool wait_in_slices(const Deadline& deadline, WaitSlice&& wait_slice) {
  for (;;) {
    if (wait_slice(deadline.next_slice())) return true;
    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
    if (deadline.passed()) return false;
  }
}

// Calls attempt(slice) until it returns something other than kTimedOut / kWouldBlock or the
// deadline passes (then kTimedOut), as wait_in_slices.
template <typename Attempt>
ChannelResult wait_loop(const Deadline& deadline, Attempt&& attempt) {
  ChannelResult r = ChannelResult::kTimedOut;
  const bool done = wait_in_slices(deadline, [&](std::chrono::nanoseconds slice) {
    r = attempt(slice);
    return r != ChannelResult::kTimedOut && r != ChannelResult::kWouldBlock;
  });
  return done ? r : ChannelResult::kTimedOut;
}

// Runs fn(T* endpoint or nullptr if closed, bool gil_held) under the box's mutex. With
// `keep_gil` (a try_ call that copies little: releasing and re-taking the GIL would cost more than
// the call) it keeps the GIL unless a copy is in flight; otherwise it releases the GIL, waits for
// the mutex and for a copy in flight to end. The caller checked that the box is not forked.
template <typename T, typename Fn>
auto locked(EndpointBox& box, Fn&& fn, bool keep_gil = false) {
  if (keep_gil) {
    std::unique_lock<std::mutex> lock(box.mutex);
    if (!box.copying) return fn(box.get<T>(), true);
  }
  return without_gil([&] {
    std::unique_lock<std::mutex> lock(box.mutex);
    box.idle.wait(lock, [&] { return !box.copying; });
    return fn(box.get<T>(), false);
  });
}

// Copies of at least this many bytes release the GIL even in a try_ call.
inline constexpr std::size_t kReleaseGilBytes = 64 * 1024;

}  // namespace shmring::python
