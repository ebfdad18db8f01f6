// Status codes, their names, and this thread's last error message.
#include <string>

#include "handles.h"

namespace shmring::c {
namespace {

// The message of the last failing call on this thread (shmring_last_error).
thread_local std::string last_error;

shmring_status_t from_code(absl::StatusCode code) noexcept {
  switch (code) {
    case absl::StatusCode::kOk: return SHMRING_OK;
    case absl::StatusCode::kInvalidArgument: return SHMRING_INVALID_ARGUMENT;
    case absl::StatusCode::kNotFound: return SHMRING_NOT_FOUND;
    case absl::StatusCode::kAlreadyExists: return SHMRING_ALREADY_EXISTS;
    case absl::StatusCode::kPermissionDenied: return SHMRING_PERMISSION_DENIED;
    case absl::StatusCode::kFailedPrecondition: return SHMRING_FAILED_PRECONDITION;
    case absl::StatusCode::kResourceExhausted: return SHMRING_RESOURCE_EXHAUSTED;
    case absl::StatusCode::kDeadlineExceeded: return SHMRING_DEADLINE_EXCEEDED;
    case absl::StatusCode::kAborted: return SHMRING_ABORTED;
    case absl::StatusCode::kDataLoss: return SHMRING_DATA_LOSS;
    case absl::StatusCode::kUnavailable: return SHMRING_UNAVAILABLE;
    case absl::StatusCode::kInternal: return SHMRING_INTERNAL;
    default: return SHMRING_UNKNOWN;
  }
}

}  // namespace

shmring_status_t fail(const char* call, shmring_status_t status, const std::string& message) noexcept {
  try {
    last_error.assign(call).append(": ").append(message);
  } catch (...) {
    last_error.clear();  // no room for the message: the status still says what happened
  }
  return status;
}

shmring_status_t fail(const char* call, const absl::Status& status) noexcept {
  const shmring_status_t code = from_code(status.code());
  try {
    return fail(call, code == SHMRING_OK ? SHMRING_INTERNAL : code, std::string(status.message()));
  } catch (...) {
    return fail(call, code, "out of memory for the message");
  }
}

shmring_status_t bad_handle(const char* call, const char* wanted) noexcept {
  return fail(call, SHMRING_INVALID_ARGUMENT,
              std::string("the handle is NULL, destroyed, or not ") + wanted);
}

shmring_status_t null_argument(const char* call, const char* argument) noexcept {
  return fail(call, SHMRING_INVALID_ARGUMENT, std::string(argument) + " is NULL");
}

}  // namespace shmring::c

extern "C" {

const char* shmring_status_string(shmring_status_t status) {
  switch (status) {
    case SHMRING_OK: return "ok";
    case SHMRING_WOULD_BLOCK: return "would block";
    case SHMRING_TIMED_OUT: return "timed out";
    case SHMRING_TOO_LARGE: return "too large";
    case SHMRING_CORRUPT: return "corrupt";
    case SHMRING_EVICTED: return "evicted";
    case SHMRING_CLOSED: return "closed";
    case SHMRING_OVERWRITTEN: return "overwritten";
    case SHMRING_PEER_GONE: return "peer gone";
    case SHMRING_CANCELLED: return "cancelled";
    case SHMRING_INVALID_ARGUMENT: return "invalid argument";
    case SHMRING_NOT_FOUND: return "not found";
    case SHMRING_ALREADY_EXISTS: return "already exists";
    case SHMRING_PERMISSION_DENIED: return "permission denied";
    case SHMRING_FAILED_PRECONDITION: return "failed precondition";
    case SHMRING_RESOURCE_EXHAUSTED: return "resource exhausted";
    case SHMRING_DEADLINE_EXCEEDED: return "deadline exceeded";
    case SHMRING_ABORTED: return "aborted";
    case SHMRING_DATA_LOSS: return "data loss";
    case SHMRING_UNAVAILABLE: return "unavailable";
    case SHMRING_INTERNAL: return "internal error";
    case SHMRING_UNKNOWN: return "unknown error";
    case SHMRING_OUT_OF_MEMORY: return "out of memory";
  }
  return "unknown status";
}

const char* shmring_last_error(void) { return shmring::c::last_error.c_str(); }

}  // extern "C"
