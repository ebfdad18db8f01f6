// The import side: receives from one export and is the local publisher (topics, frames) or
// producer (queues) of the imported channels.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "shmring/bridge/bridge.h"
#include "side.h"

namespace shmring::bridge {

// What make_import_side checks before it connects (kInvalidArgument).
absl::Status check_import_spec(const ImportSpec& spec);
absl::StatusOr<std::unique_ptr<Side>> make_import_side(const ImportSpec& spec);

}  // namespace shmring::bridge
