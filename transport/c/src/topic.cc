// Topics through the C API: shmring_topic_publisher_* and shmring_topic_subscriber_*.
#include "handles.h"
#include "options.h"

using namespace shmring;
using namespace shmring::c;

extern "C" {

shmring_status_t shmring_topic_publisher_open(const char* name, const shmring_topic_options_t* options,
                                              shmring_topic_publisher_t** publisher) {
  return open_handle(__func__, name, publisher, [options](std::string_view n) -> absl::StatusOr<TopicPublisher> {
    absl::StatusOr<TopicOptions> cpp = topic_options(options);
    if (!cpp.ok()) return cpp.status();
    return TopicPublisher::open(n, *cpp);
  });
}

void shmring_topic_publisher_destroy(shmring_topic_publisher_t* publisher) { destroy_handle(publisher); }

shmring_endpoint_t* shmring_topic_publisher_endpoint(shmring_topic_publisher_t* publisher) { return publisher; }

shmring_status_t shmring_topic_publisher_send(shmring_topic_publisher_t* publisher, const void* data,
                                              size_t size, int64_t timeout_ns) {
  return send_on(__func__, publisher, data, size, timeout_ns);
}

shmring_status_t shmring_topic_publisher_loan(shmring_topic_publisher_t* publisher, size_t max_bytes,
                                              int64_t timeout_ns, void** buffer, size_t* capacity) {
  return loan_on(__func__, publisher, buffer, capacity, [&](TopicPublisher& p) {
    return timeout_ns > 0 ? p.loan(max_bytes, timeout_of(timeout_ns)) : p.try_loan(max_bytes);
  });
}

shmring_status_t shmring_topic_publisher_publish(shmring_topic_publisher_t* publisher, size_t size) {
  return publish_on(__func__, publisher, size);
}

shmring_status_t shmring_topic_publisher_abandon(shmring_topic_publisher_t* publisher) {
  return abandon_on(__func__, publisher);
}

uint64_t shmring_topic_publisher_next_sequence(const shmring_topic_publisher_t* publisher) {
  const auto* p = live(publisher);
  return p != nullptr ? p->endpoint.next_sequence() : 0;
}

uint64_t shmring_topic_publisher_evictions(const shmring_topic_publisher_t* publisher) {
  const auto* p = live(publisher);
  return p != nullptr ? p->endpoint.evictions() : 0;
}

bool shmring_topic_publisher_lossless(const shmring_topic_publisher_t* publisher) {
  const auto* p = live(publisher);
  return p != nullptr && p->endpoint.lossless();
}

uint32_t shmring_topic_publisher_id(const shmring_topic_publisher_t* publisher) {
  const auto* p = live(publisher);
  return p != nullptr ? p->endpoint.publisher_id() : 0;
}

uint64_t shmring_topic_publisher_published(const shmring_topic_publisher_t* publisher) {
  const auto* p = live(publisher);
  return p != nullptr ? p->endpoint.published() : 0;
}

uint32_t shmring_topic_publisher_max_publishers(const shmring_topic_publisher_t* publisher) {
  const auto* p = live(publisher);
  return p != nullptr ? p->endpoint.max_publishers() : 0;
}

uint64_t shmring_topic_publisher_history(const shmring_topic_publisher_t* publisher) {
  const auto* p = live(publisher);
  return p != nullptr ? p->endpoint.history() : 0;
}

shmring_status_t shmring_topic_subscriber_open(const char* name, const shmring_topic_options_t* options,
                                               shmring_topic_subscriber_t** subscriber) {
  return open_handle(__func__, name, subscriber, [options](std::string_view n) -> absl::StatusOr<TopicSubscriber> {
    absl::StatusOr<TopicOptions> cpp = topic_options(options);
    if (!cpp.ok()) return cpp.status();
    return TopicSubscriber::open(n, *cpp);
  });
}

void shmring_topic_subscriber_destroy(shmring_topic_subscriber_t* subscriber) { destroy_handle(subscriber); }

shmring_endpoint_t* shmring_topic_subscriber_endpoint(shmring_topic_subscriber_t* subscriber) { return subscriber; }

shmring_status_t shmring_topic_subscriber_receive(shmring_topic_subscriber_t* subscriber, void* buffer,
                                                  size_t capacity, size_t* size, int64_t timeout_ns) {
  return receive_on(__func__, subscriber, buffer, capacity, size, timeout_ns);
}

shmring_status_t shmring_topic_subscriber_view(shmring_topic_subscriber_t* subscriber, int64_t timeout_ns,
                                               shmring_view_t* view) {
  return view_on(__func__, subscriber, timeout_ns, view);
}

shmring_status_t shmring_topic_subscriber_release(shmring_topic_subscriber_t* subscriber) {
  return release_on(__func__, subscriber);
}

uint64_t shmring_topic_subscriber_lost(const shmring_topic_subscriber_t* subscriber) {
  const auto* s = live(subscriber);
  return s != nullptr ? s->endpoint.lost() : 0;
}

uint64_t shmring_topic_subscriber_received(const shmring_topic_subscriber_t* subscriber) {
  const auto* s = live(subscriber);
  return s != nullptr ? s->endpoint.received() : 0;
}

uint64_t shmring_topic_subscriber_last_sequence(const shmring_topic_subscriber_t* subscriber) {
  const auto* s = live(subscriber);
  return s != nullptr ? s->endpoint.last_sequence() : 0;
}

bool shmring_topic_subscriber_lossless(const shmring_topic_subscriber_t* subscriber) {
  const auto* s = live(subscriber);
  return s != nullptr && s->endpoint.lossless();
}

shmring_topic_delivery_t shmring_topic_subscriber_delivery(const shmring_topic_subscriber_t* subscriber) {
  const auto* s = live(subscriber);
  if (s == nullptr) return SHMRING_DELIVERY_DEFAULT;
  return s->endpoint.delivery() == TopicDelivery::kLossless ? SHMRING_DELIVERY_LOSSLESS : SHMRING_DELIVERY_LOSSY;
}

uint32_t shmring_topic_subscriber_last_publisher(const shmring_topic_subscriber_t* subscriber) {
  const auto* s = live(subscriber);
  return s != nullptr ? s->endpoint.last_publisher() : 0;
}

uint64_t shmring_topic_subscriber_last_publisher_sequence(const shmring_topic_subscriber_t* subscriber) {
  const auto* s = live(subscriber);
  return s != nullptr ? s->endpoint.last_publisher_sequence() : 0;
}

uint64_t shmring_topic_subscriber_history_missed(const shmring_topic_subscriber_t* subscriber) {
  const auto* s = live(subscriber);
  return s != nullptr ? s->endpoint.history_missed() : 0;
}

}  // extern "C"
