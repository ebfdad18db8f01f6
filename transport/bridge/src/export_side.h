// The export side: reads local channels and sends what they carry to every import connected to
// its server carrier (docs/bridge.md: guarantees per pattern).
#pragma once

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "shmring/bridge/bridge.h"
#include "side.h"

namespace shmring::bridge {

// What make_export_side checks before it binds (kInvalidArgument).
absl::Status check_export_spec(const ExportSpec& spec);
// `origin`: this bridge's id, sent with every topic message.
absl::StatusOr<std::unique_ptr<Side>> make_export_side(const ExportSpec& spec, std::uint64_t origin);

}  // namespace shmring::bridge
