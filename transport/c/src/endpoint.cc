// What every endpoint shares through the C API: shmring_endpoint_* (close, wait_fd, stats, ...).
#include <cerrno>
#include <cstring>

#include "handles.h"

using namespace shmring;
using namespace shmring::c;

namespace shmring::c {

bool is_endpoint(const shmring_endpoint* endpoint) noexcept {
  if (endpoint == nullptr) return false;
  switch (endpoint->tag) {
    case Tag::kTopicPublisher:
    case Tag::kTopicSubscriber:
    case Tag::kQueueProducer:
    case Tag::kQueueConsumer:
    case Tag::kFramePublisher:
    case Tag::kFrameSubscriber:
    case Tag::kServiceClient:
    case Tag::kServiceServer:
      return true;
    case Tag::kPendingResponse:
    case Tag::kActiveRequest:
    case Tag::kDestroyed:
      return false;
  }
  return false;
}

void peer_stats_to_c(const PeerStats& from, shmring_peer_stats_t* to) noexcept {
  to->index = from.index;
  to->role = static_cast<std::int32_t>(from.role);
  to->state = static_cast<std::int32_t>(from.state);
  to->pid = from.pid;
  to->alive = from.alive;
  to->sent = from.sent;
  to->received = from.received;
  to->lost = from.lost;
  to->blocked_ns = from.blocked_ns;
  to->lag = from.lag;
}

}  // namespace shmring::c

extern "C" {

shmring_status_t shmring_endpoint_close(shmring_endpoint_t* endpoint) {
  if (!is_endpoint(endpoint)) return bad_handle(__func__, "an endpoint");
  endpoint->base->close();  // settles the loan or view the handle holds (it becomes inert)
  return SHMRING_OK;
}

bool shmring_endpoint_is_open(const shmring_endpoint_t* endpoint) {
  return is_endpoint(endpoint) && endpoint->base->is_open();
}

shmring_status_t shmring_endpoint_wait_fd(shmring_endpoint_t* endpoint, int* fd) {
  if (!is_endpoint(endpoint)) return bad_handle(__func__, "an endpoint");
  if (fd == nullptr) return null_argument(__func__, "fd");
  *fd = -1;
  if (!endpoint->base->is_open()) return SHMRING_CLOSED;
  const int descriptor = endpoint->base->wait_fd();
  if (descriptor >= 0) {
    *fd = descriptor;
    return SHMRING_OK;
  }
  const int error = errno;
  switch (error) {
    case EBADF: return SHMRING_CLOSED;  // e.g. a forked child's copy
    case ENOTSUP:
      return fail(__func__, SHMRING_FAILED_PRECONDITION,
                  "a read_only topic subscriber has no descriptor (nobody can wake it)");
    case EMFILE:
    case ENFILE:
    case ENOMEM:
      return fail(__func__, SHMRING_RESOURCE_EXHAUSTED, std::strerror(error));
    default:
      return fail(__func__, SHMRING_UNAVAILABLE, std::strerror(error));
  }
}

uint32_t shmring_endpoint_take_wait_events(shmring_endpoint_t* endpoint) {
  if (!is_endpoint(endpoint)) return 0;
  return static_cast<std::uint32_t>(endpoint->base->take_wait_events()) & 0x1fu;
}

shmring_status_t shmring_endpoint_stats(const shmring_endpoint_t* endpoint, shmring_peer_stats_t* stats) {
  if (!is_endpoint(endpoint)) return bad_handle(__func__, "an endpoint");
  if (stats == nullptr) return null_argument(__func__, "stats");
  std::memset(stats, 0, sizeof *stats);
  if (!endpoint->base->is_open()) return SHMRING_CLOSED;
  peer_stats_to_c(endpoint->base->stats(), stats);
  return SHMRING_OK;
}

uint64_t shmring_endpoint_channel_incarnation(const shmring_endpoint_t* endpoint) {
  return is_endpoint(endpoint) ? endpoint->base->channel_incarnation() : 0;
}

uint64_t shmring_endpoint_max_message(const shmring_endpoint_t* endpoint) {
  if (!is_endpoint(endpoint)) return 0;
  switch (endpoint->tag) {
    case Tag::kTopicPublisher: return static_cast<const shmring_topic_publisher*>(endpoint)->endpoint.max_message();
    case Tag::kTopicSubscriber: return static_cast<const shmring_topic_subscriber*>(endpoint)->endpoint.max_message();
    case Tag::kQueueProducer: return static_cast<const shmring_queue_producer*>(endpoint)->endpoint.max_message();
    case Tag::kQueueConsumer: return static_cast<const shmring_queue_consumer*>(endpoint)->endpoint.max_message();
    case Tag::kFramePublisher: return static_cast<const shmring_frame_publisher*>(endpoint)->endpoint.max_message();
    case Tag::kFrameSubscriber: return static_cast<const shmring_frame_subscriber*>(endpoint)->endpoint.max_message();
    // Services: the request size (both sides handle requests; responses have their own calls).
    case Tag::kServiceClient: return static_cast<const shmring_service_client*>(endpoint)->endpoint.max_request();
    case Tag::kServiceServer: return static_cast<const shmring_service_server*>(endpoint)->endpoint.max_request();
    case Tag::kPendingResponse:
    case Tag::kActiveRequest:
    case Tag::kDestroyed: return 0;
  }
  return 0;
}

}  // extern "C"
