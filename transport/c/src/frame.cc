// Frame channels through the C API: shmring_frame_publisher_* and shmring_frame_subscriber_*.
#include "handles.h"
#include "options.h"

using namespace shmring;
using namespace shmring::c;

extern "C" {

shmring_status_t shmring_frame_publisher_open(const char* name, const shmring_frame_options_t* options,
                                              shmring_frame_publisher_t** publisher) {
  return open_handle(__func__, name, publisher, [options](std::string_view n) -> absl::StatusOr<FramePublisher> {
    absl::StatusOr<FrameOptions> cpp = frame_options(options);
    if (!cpp.ok()) return cpp.status();
    return FramePublisher::open(n, *cpp);
  });
}

void shmring_frame_publisher_destroy(shmring_frame_publisher_t* publisher) { destroy_handle(publisher); }

shmring_endpoint_t* shmring_frame_publisher_endpoint(shmring_frame_publisher_t* publisher) { return publisher; }

shmring_status_t shmring_frame_publisher_send(shmring_frame_publisher_t* publisher, const void* data,
                                              size_t size, int64_t timeout_ns) {
  return send_on(__func__, publisher, data, size, timeout_ns);
}

shmring_status_t shmring_frame_publisher_loan(shmring_frame_publisher_t* publisher, int64_t timeout_ns,
                                              void** buffer, size_t* capacity) {
  return loan_on(__func__, publisher, buffer, capacity, [&](FramePublisher& p) {
    return timeout_ns > 0 ? p.loan(timeout_of(timeout_ns)) : p.try_loan();
  });
}

shmring_status_t shmring_frame_publisher_publish(shmring_frame_publisher_t* publisher, size_t size) {
  return publish_on(__func__, publisher, size);
}

shmring_status_t shmring_frame_publisher_abandon(shmring_frame_publisher_t* publisher) {
  return abandon_on(__func__, publisher);
}

uint64_t shmring_frame_publisher_frames_published(const shmring_frame_publisher_t* publisher) {
  const auto* p = live(publisher);
  return p != nullptr ? p->endpoint.frames_published() : 0;
}

shmring_status_t shmring_frame_subscriber_open(const char* name, const shmring_frame_options_t* options,
                                               shmring_frame_subscriber_t** subscriber) {
  return open_handle(__func__, name, subscriber, [options](std::string_view n) -> absl::StatusOr<FrameSubscriber> {
    absl::StatusOr<FrameOptions> cpp = frame_options(options);
    if (!cpp.ok()) return cpp.status();
    return FrameSubscriber::open(n, *cpp);
  });
}

void shmring_frame_subscriber_destroy(shmring_frame_subscriber_t* subscriber) { destroy_handle(subscriber); }

shmring_endpoint_t* shmring_frame_subscriber_endpoint(shmring_frame_subscriber_t* subscriber) { return subscriber; }

shmring_status_t shmring_frame_subscriber_receive(shmring_frame_subscriber_t* subscriber, void* buffer,
                                                  size_t capacity, size_t* size, int64_t timeout_ns) {
  return receive_on(__func__, subscriber, buffer, capacity, size, timeout_ns);
}

shmring_status_t shmring_frame_subscriber_view(shmring_frame_subscriber_t* subscriber, int64_t timeout_ns,
                                               shmring_view_t* view) {
  return view_on(__func__, subscriber, timeout_ns, view);
}

shmring_status_t shmring_frame_subscriber_release(shmring_frame_subscriber_t* subscriber) {
  return release_on(__func__, subscriber);
}

uint64_t shmring_frame_subscriber_lost(const shmring_frame_subscriber_t* subscriber) {
  const auto* s = live(subscriber);
  return s != nullptr ? s->endpoint.lost() : 0;
}

uint64_t shmring_frame_subscriber_received(const shmring_frame_subscriber_t* subscriber) {
  const auto* s = live(subscriber);
  return s != nullptr ? s->endpoint.received() : 0;
}

}  // extern "C"
