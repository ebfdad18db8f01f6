// The options structs: their defaults, and their translation into the C++ options. A struct is
// read only as far as its struct_size reaches (a program built against an older header passes a
// shorter one); bytes beyond what this library knows must be zero (a newer program asking for
// something this library cannot do is refused, not ignored). Called inside open_handle's
// try/catch: building a message may throw std::bad_alloc.
#include <sys/types.h>

#include <cstddef>
#include <cstdio>
#include <cstring>
#include <string>
#include <type_traits>

#include "options.h"

namespace shmring::c {
namespace {

// Whether `field` lies within the caller's struct.
#define SHMRING_C_HAS(options, field) \
  ((options)->struct_size >= offsetof(std::remove_reference_t<decltype(*(options))>, field) + sizeof((options)->field))

// struct_size is sane, and whatever lies past the fields this library knows is zero.
template <typename Struct>
absl::Status size_ok(const Struct* options) {
  if (options->struct_size < sizeof(options->struct_size) + 8) {
    return absl::InvalidArgumentError("options->struct_size is " + std::to_string(options->struct_size) +
                                      ": fill the options with its _options_init() call first");
  }
  if (options->struct_size > sizeof(Struct)) {
    const auto* bytes = reinterpret_cast<const unsigned char*>(options);
    for (std::size_t i = sizeof(Struct); i < options->struct_size; ++i) {
      if (bytes[i] != 0) {
        return absl::InvalidArgumentError(
            "options set fields this library (shmring " + std::string(shmring_version()) +
            ") does not know (struct_size " + std::to_string(options->struct_size) + " > " +
            std::to_string(sizeof(Struct)) + ")");
      }
    }
  }
  return absl::OkStatus();
}

absl::Status wait_ok(std::int32_t strategy) {
  if (strategy >= SHMRING_WAIT_BUSY_SPIN && strategy <= SHMRING_WAIT_HYBRID) return absl::OkStatus();
  return absl::InvalidArgumentError("wait_strategy " + std::to_string(strategy) +
                                    " is not a shmring_wait_strategy_t");
}

absl::Status permissions_ok(std::uint32_t permissions, std::int64_t group) {
  if (permissions > 07777) {
    char octal[16];
    std::snprintf(octal, sizeof octal, "%o", permissions);
    return absl::InvalidArgumentError("permissions 0" + std::string(octal) + " is more than 07777");
  }
  if (group < -1 || group >= static_cast<std::int64_t>(static_cast<gid_t>(-1))) {
    return absl::InvalidArgumentError("group " + std::to_string(group) + " is not -1 or a group id");
  }
  return absl::OkStatus();
}

// The fields every pattern's options share.
template <typename Cpp, typename C>
void copy_common(const C* o, Cpp* cpp) noexcept {
  if (SHMRING_C_HAS(o, capacity)) cpp->capacity = o->capacity;
  if (SHMRING_C_HAS(o, max_message)) cpp->max_message = o->max_message;
  if (SHMRING_C_HAS(o, max_peers)) cpp->max_peers = o->max_peers;
  if (SHMRING_C_HAS(o, permissions)) cpp->permissions = static_cast<mode_t>(o->permissions);
  if (SHMRING_C_HAS(o, group)) cpp->group = static_cast<gid_t>(o->group);
  if (SHMRING_C_HAS(o, create)) cpp->create = o->create;
  if (SHMRING_C_HAS(o, wait_strategy)) cpp->wait.strategy = static_cast<WaitStrategy>(o->wait_strategy);
  if (SHMRING_C_HAS(o, spin_iterations)) cpp->wait.spin_iterations = o->spin_iterations;
  if (SHMRING_C_HAS(o, open_timeout_ms)) cpp->open_timeout = std::chrono::milliseconds(o->open_timeout_ms);
  if (SHMRING_C_HAS(o, trusted_owner_count) && o->trusted_owner_count != 0) {
    cpp->trusted_owners.assign(o->trusted_owners, o->trusted_owners + o->trusted_owner_count);
  }
}

// What every options struct (channels' and services') is checked for: its size, the wait
// strategy, the permission bits and the group.
template <typename C>
absl::Status check_shared(const C* o) {
  if (absl::Status s = size_ok(o); !s.ok()) return s;
  if (SHMRING_C_HAS(o, wait_strategy)) {
    if (absl::Status s = wait_ok(o->wait_strategy); !s.ok()) return s;
  }
  return permissions_ok(SHMRING_C_HAS(o, permissions) ? o->permissions : 0600,
                        SHMRING_C_HAS(o, group) ? o->group : -1);
}

template <typename Cpp, typename C>
absl::StatusOr<Cpp> checked_common(const C* o) {
  Cpp cpp;
  if (o == nullptr) return cpp;
  if (absl::Status s = check_shared(o); !s.ok()) return s;
  if (SHMRING_C_HAS(o, trusted_owner_count) && o->trusted_owner_count != 0 && o->trusted_owners == nullptr) {
    return absl::InvalidArgumentError("trusted_owners is NULL with trusted_owner_count " +
                                      std::to_string(o->trusted_owner_count));
  }
  if (SHMRING_C_HAS(o, trusted_owner_count) && o->trusted_owner_count > 65536) {
    return absl::InvalidArgumentError("trusted_owner_count " + std::to_string(o->trusted_owner_count) +
                                      " is more than 65536");
  }
  copy_common(o, &cpp);
  return cpp;
}

template <typename C>
void init_common(C* o) noexcept {
  std::memset(o, 0, sizeof *o);
  o->struct_size = sizeof *o;
  o->permissions = 0600;
  o->group = -1;
  o->create = true;
  o->wait_strategy = SHMRING_WAIT_HYBRID;
  o->spin_iterations = WaitOptions{}.spin_iterations;
  o->open_timeout_ms = 2000;
}

}  // namespace

absl::StatusOr<TopicOptions> topic_options(const shmring_topic_options_t* o) {
  absl::StatusOr<TopicOptions> cpp = checked_common<TopicOptions>(o);
  if (!cpp.ok() || o == nullptr) return cpp;
  if (SHMRING_C_HAS(o, lossless)) cpp->lossless = o->lossless;
  const bool at_latest = SHMRING_C_HAS(o, start_at_latest) && o->start_at_latest;
  if (at_latest) cpp->start = TopicStart::latest();
  if (SHMRING_C_HAS(o, history)) cpp->history = o->history;
  if (SHMRING_C_HAS(o, max_publishers)) cpp->max_publishers = o->max_publishers;
  if (SHMRING_C_HAS(o, delivery)) {
    switch (o->delivery) {
      case SHMRING_DELIVERY_DEFAULT: cpp->delivery = TopicDelivery::kDefault; break;
      case SHMRING_DELIVERY_LOSSLESS: cpp->delivery = TopicDelivery::kLossless; break;
      case SHMRING_DELIVERY_LOSSY:
        if (SHMRING_C_HAS(o, lossless) && o->lossless) {
          return absl::InvalidArgumentError("delivery SHMRING_DELIVERY_LOSSY contradicts lossless = true");
        }
        cpp->delivery = TopicDelivery::kLossy;
        break;
      default:
        return absl::InvalidArgumentError("delivery " + std::to_string(o->delivery) +
                                          " is not a shmring_topic_delivery_t");
    }
  }
  const std::uint64_t count = SHMRING_C_HAS(o, start_count) ? o->start_count : 0;
  if (SHMRING_C_HAS(o, start) && o->start != SHMRING_START_LIVE) {
    if (at_latest) return absl::InvalidArgumentError("give start or start_at_latest, not both");
    switch (o->start) {
      case SHMRING_START_LATEST: cpp->start = TopicStart::latest(); break;
      case SHMRING_START_HISTORY: cpp->start = TopicStart::history(count); break;
      case SHMRING_START_OLDEST: cpp->start = TopicStart::oldest(); break;
      default:
        return absl::InvalidArgumentError("start " + std::to_string(o->start) + " is not a shmring_topic_start_t");
    }
  }
  if (count != 0 && !(SHMRING_C_HAS(o, start) && o->start == SHMRING_START_HISTORY)) {
    return absl::InvalidArgumentError("start_count " + std::to_string(count) +
                                      " is only for start SHMRING_START_HISTORY");
  }
  if (SHMRING_C_HAS(o, read_only)) cpp->read_only = o->read_only;
  if (SHMRING_C_HAS(o, dead_check_interval_ms)) {
    cpp->dead_check_interval = std::chrono::milliseconds(o->dead_check_interval_ms);
  }
  if (SHMRING_C_HAS(o, evict_after_ms)) cpp->evict_after = std::chrono::milliseconds(o->evict_after_ms);
  if (SHMRING_C_HAS(o, evict_lag)) cpp->evict_lag = o->evict_lag;
  return cpp;
}

absl::StatusOr<QueueOptions> queue_options(const shmring_queue_options_t* o) { return checked_common<QueueOptions>(o); }

absl::StatusOr<FrameOptions> frame_options(const shmring_frame_options_t* o) { return checked_common<FrameOptions>(o); }

// Services share the vocabulary (permissions, group, create, waiting) but not the limits, and
// have no trusted owners.
absl::StatusOr<ServiceOptions> service_options(const shmring_service_options_t* o) {
  ServiceOptions cpp;
  if (o == nullptr) return cpp;
  if (absl::Status s = check_shared(o); !s.ok()) return s;
  if (SHMRING_C_HAS(o, request_timeout_ns) && o->request_timeout_ns <= 0) {
    return absl::InvalidArgumentError("request_timeout_ns " + std::to_string(o->request_timeout_ns) +
                                      " is not positive");
  }
  if (SHMRING_C_HAS(o, max_request)) cpp.max_request = o->max_request;
  if (SHMRING_C_HAS(o, max_response)) cpp.max_response = o->max_response;
  if (SHMRING_C_HAS(o, max_in_flight)) cpp.max_in_flight = o->max_in_flight;
  if (SHMRING_C_HAS(o, response_depth)) cpp.response_depth = o->response_depth;
  if (SHMRING_C_HAS(o, max_clients)) cpp.max_clients = o->max_clients;
  if (SHMRING_C_HAS(o, max_servers)) cpp.max_servers = o->max_servers;
  if (SHMRING_C_HAS(o, max_active)) cpp.max_active = o->max_active;
  if (SHMRING_C_HAS(o, permissions)) cpp.permissions = static_cast<mode_t>(o->permissions);
  if (SHMRING_C_HAS(o, group)) cpp.group = static_cast<gid_t>(o->group);
  if (SHMRING_C_HAS(o, create)) cpp.create = o->create;
  if (SHMRING_C_HAS(o, at_most_once)) cpp.at_most_once = o->at_most_once;
  if (SHMRING_C_HAS(o, wait_strategy)) cpp.wait.strategy = static_cast<WaitStrategy>(o->wait_strategy);
  if (SHMRING_C_HAS(o, spin_iterations)) cpp.wait.spin_iterations = o->spin_iterations;
  if (SHMRING_C_HAS(o, open_timeout_ms)) cpp.open_timeout = std::chrono::milliseconds(o->open_timeout_ms);
  if (SHMRING_C_HAS(o, request_timeout_ns)) cpp.request_timeout = std::chrono::nanoseconds(o->request_timeout_ns);
  return cpp;
}

}  // namespace shmring::c

extern "C" {

void shmring_topic_options_init(shmring_topic_options_t* options) {
  if (options == nullptr) return;
  shmring::c::init_common(options);
  const shmring::TopicOptions defaults;
  options->dead_check_interval_ms = static_cast<std::uint32_t>(defaults.dead_check_interval.count());
  options->evict_after_ms = static_cast<std::uint32_t>(defaults.evict_after.count());
}

void shmring_service_options_init(shmring_service_options_t* options) {
  if (options == nullptr) return;
  shmring::c::init_common(options);
  options->request_timeout_ns = shmring::ServiceOptions{}.request_timeout.count();
}

void shmring_queue_options_init(shmring_queue_options_t* options) {
  if (options != nullptr) shmring::c::init_common(options);
}

void shmring_frame_options_init(shmring_frame_options_t* options) {
  if (options != nullptr) shmring::c::init_common(options);
}

}  // extern "C"
