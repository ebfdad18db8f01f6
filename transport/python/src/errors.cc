#include "errors.h"

#include <Python.h>

#include <string>

namespace shmring::python {

namespace py = pybind11;

namespace {

// Owned by the module (kept alive by its attributes); set once at import.
PyObject* g_error = nullptr;
PyObject* g_evicted = nullptr;
PyObject* g_overwritten = nullptr;
PyObject* g_corrupt = nullptr;
PyObject* g_mismatch = nullptr;
PyObject* g_exhausted = nullptr;
PyObject* g_busy = nullptr;

PyObject* make(py::module_& m, const char* name, PyObject* base, const char* doc) {
  const std::string qualified = std::string("shmring.") + name;
  PyObject* type = PyErr_NewExceptionWithDoc(qualified.c_str(), doc, base, nullptr);
  if (type == nullptr) throw py::error_already_set();
  m.add_object(name, py::reinterpret_borrow<py::object>(type));
  return type;
}

[[noreturn]] void raise(PyObject* type, const std::string& message) {
  PyErr_SetString(type, message.c_str());
  throw py::error_already_set();
}

}  // namespace

void register_exceptions(py::module_& m) {
  g_error = make(m, "Error", PyExc_Exception, "Base of shmring's own exceptions.");
  g_evicted = make(m, "EvictedError", g_error,
                   "This lossless subscriber was evicted by its publisher (too slow); reopen it.");
  g_overwritten = make(m, "OverwrittenError", g_error,
                       "A lossy topic's message was overwritten while it was viewed: discard what "
                       "was computed from the view.");
  g_corrupt = make(m, "CorruptError", g_error,
                   "The channel's shared memory does not hold what the protocol allows (a peer "
                   "broke it, or the segment is damaged).");
  g_mismatch = make(m, "MismatchError", g_error,
                    "The channel exists with another kind, mode or limits than asked, or already "
                    "has its one publisher.");
  g_exhausted = make(m, "ResourceExhaustedError", g_error,
                     "No room: every peer slot is taken, or /dev/shm is full.");
  g_busy = make(m, "BusyError", g_error,
                "The channel's lock could not be had in time (or was removed).");
}

void raise_status(const absl::Status& status) {
  const std::string message(status.message());
  switch (status.code()) {
    case absl::StatusCode::kNotFound: raise(PyExc_FileNotFoundError, message);
    case absl::StatusCode::kPermissionDenied: raise(PyExc_PermissionError, message);
    case absl::StatusCode::kAlreadyExists: raise(PyExc_FileExistsError, message);
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange: raise(PyExc_ValueError, message);
    case absl::StatusCode::kDeadlineExceeded: raise(PyExc_TimeoutError, message);
    case absl::StatusCode::kFailedPrecondition: raise(g_mismatch, message);
    case absl::StatusCode::kResourceExhausted: raise(g_exhausted, message);
    case absl::StatusCode::kDataLoss: raise(g_corrupt, message);
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kUnavailable: raise(g_busy, message);
    default: raise(g_error, message);
  }
}

void raise_result(ChannelResult result, std::string_view what) {
  const std::string w(what);
  switch (result) {
    case ChannelResult::kTimedOut:
    case ChannelResult::kWouldBlock: raise(PyExc_TimeoutError, w + ": timed out");
    case ChannelResult::kTooLarge: raise(PyExc_ValueError, w + ": message larger than the channel's max_message");
    case ChannelResult::kEvicted: raise(g_evicted, w + ": this subscriber was evicted (it fell too far behind); reopen it");
    case ChannelResult::kOverwritten: raise(g_overwritten, w + ": the message was overwritten while it was viewed");
    case ChannelResult::kCorrupt: raise(g_corrupt, w + ": the channel's shared memory is corrupt");
    case ChannelResult::kClosed: raise(PyExc_ValueError, w + ": the endpoint is closed");
    default: raise(g_error, w + ": " + std::string(to_string(result)));
  }
}

}  // namespace shmring::python
