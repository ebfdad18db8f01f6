#include "box.h"

#include <pthread.h>
#include <unistd.h>

#include <cmath>

#include "shmring/core/fork_generation.h"

namespace shmring::python {

namespace {
std::atomic<bool> g_exiting{false};
std::atomic<pthread_t> g_exit_thread{};
}  // namespace

void mark_interpreter_exiting() noexcept {
  g_exit_thread.store(pthread_self(), std::memory_order_relaxed);
  g_exiting.store(true, std::memory_order_release);
}

bool exiting_elsewhere() noexcept {
  return g_exiting.load(std::memory_order_acquire) &&
         pthread_equal(pthread_self(), g_exit_thread.load(std::memory_order_relaxed)) == 0;
}

void park_forever() noexcept {
  for (;;) pause();
}

EndpointBox::EndpointBox(Any opened, std::string type, std::string channel)
    : endpoint(std::make_unique<Any>(std::move(opened))),
      type_name(std::move(type)),
      channel_name(std::move(channel)),
      opened_in(::getpid()),
      generation(fork_generation()) {}

EndpointBox::~EndpointBox() {
  // A forked child must not run the C++ close (see box.h): the endpoint is left as it is. It is
  // one allocation per inherited endpoint, freed when the child exits.
  if (forked()) (void)endpoint.release();
}

bool EndpointBox::forked() const noexcept { return generation != fork_generation(); }

void EndpointBox::raise_unusable() const {
  if (forked()) {
    PyErr_SetString(PyExc_ValueError,
                    (what() + " was opened in process " + std::to_string(opened_in) +
                     ", and this process is a fork() of it: a forked child's copy of an endpoint "
                     "is inert (it never touches the channel, so the parent loses nothing); open "
                     "a new endpoint in the child")
                        .c_str());
    throw py::error_already_set();
  }
  throw py::value_error(what() + " is closed");
}

void EndpointBox::close() {
  closed.store(true, std::memory_order_relaxed);
  if (forked()) return;  // inert; the destructor leaks it
  without_gil([&] {
    std::unique_lock<std::mutex> lock(mutex);
    idle.wait(lock, [&] { return !copying; });
    close_if_unused();
  });
}

void EndpointBox::unpin() {
  if (forked()) return;
  // Taken with the GIL held: mutex holders never wait for the GIL (box.h), and this runs from
  // destructors, which must not re-take the GIL.
  std::lock_guard<std::mutex> guard(mutex);
  --pins;
  close_if_unused();
}

void EndpointBox::close_if_unused() {
  if (closed.load(std::memory_order_relaxed) && pins == 0 && !copying) endpoint.reset();
}

Deadline Deadline::from(const py::object& timeout) {
  if (timeout.is_none()) return Deadline(true, {});
  // Any real number (int, float, numpy scalars: __float__ / __index__); TypeError otherwise.
  const double seconds = PyFloat_AsDouble(timeout.ptr());
  if (seconds == -1.0 && PyErr_Occurred() != nullptr) {
    if (PyErr_ExceptionMatches(PyExc_TypeError)) {
      PyErr_Clear();
      PyErr_Format(PyExc_TypeError, "timeout must be None or a number of seconds, not %s",
                   Py_TYPE(timeout.ptr())->tp_name);
    }
    throw py::error_already_set();
  }
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

}  // namespace shmring::python
