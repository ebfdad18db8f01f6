// The C options structs as C++ options (options.cc): kInvalidArgument naming what is wrong with
// them; a NULL struct gives the C++ defaults. May throw std::bad_alloc (open_handle catches it).
#pragma once

#include "absl/status/statusor.h"
#include "handles.h"

namespace shmring::c {

absl::StatusOr<TopicOptions> topic_options(const shmring_topic_options_t* options);
absl::StatusOr<QueueOptions> queue_options(const shmring_queue_options_t* options);
absl::StatusOr<FrameOptions> frame_options(const shmring_frame_options_t* options);
absl::StatusOr<ServiceOptions> service_options(const shmring_service_options_t* options);

}  // namespace shmring::c
