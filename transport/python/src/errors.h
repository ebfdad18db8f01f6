// The Python exceptions of the shmring module and the one mapping from library results to them.
//
// Rule (docs/python.md): a call that waits and runs out of time raises TimeoutError; a try_ call
// that finds nothing returns None (or False for sends). Everything else that is not a success
// raises: the built-in exception when one means the same thing (FileNotFoundError,
// PermissionError, FileExistsError, ValueError, TimeoutError), else a subclass of shmring.Error.
#pragma once

#include <pybind11/pybind11.h>

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "shmring/transport/channel.h"

namespace shmring::python {

// Creates shmring.Error and its subclasses in `module`.
void register_exceptions(pybind11::module_& module);

// Raises the exception for a failed status ("what: message"). Never returns.
[[noreturn]] void raise_status(const absl::Status& status);
// Raises the exception for a channel call result that is not kOk (`what` names the call).
[[noreturn]] void raise_result(ChannelResult result, std::string_view what);

}  // namespace shmring::python
