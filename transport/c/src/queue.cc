// Queues through the C API: shmring_queue_producer_* and shmring_queue_consumer_*.
#include "handles.h"
#include "options.h"

using namespace shmring;
using namespace shmring::c;

extern "C" {

shmring_status_t shmring_queue_producer_open(const char* name, const shmring_queue_options_t* options,
                                             shmring_queue_producer_t** producer) {
  return open_handle(__func__, name, producer, [options](std::string_view n) -> absl::StatusOr<QueueProducer> {
    absl::StatusOr<QueueOptions> cpp = queue_options(options);
    if (!cpp.ok()) return cpp.status();
    return QueueProducer::open(n, *cpp);
  });
}

void shmring_queue_producer_destroy(shmring_queue_producer_t* producer) { destroy_handle(producer); }

shmring_endpoint_t* shmring_queue_producer_endpoint(shmring_queue_producer_t* producer) { return producer; }

shmring_status_t shmring_queue_producer_send(shmring_queue_producer_t* producer, const void* data, size_t size,
                                             int64_t timeout_ns) {
  return send_on(__func__, producer, data, size, timeout_ns);
}

shmring_status_t shmring_queue_producer_loan(shmring_queue_producer_t* producer, int64_t timeout_ns,
                                             void** buffer, size_t* capacity) {
  return loan_on(__func__, producer, buffer, capacity, [&](QueueProducer& p) {
    return timeout_ns > 0 ? p.loan(timeout_of(timeout_ns)) : p.try_loan();
  });
}

shmring_status_t shmring_queue_producer_publish(shmring_queue_producer_t* producer, size_t size) {
  return publish_on(__func__, producer, size);
}

shmring_status_t shmring_queue_producer_abandon(shmring_queue_producer_t* producer) {
  return abandon_on(__func__, producer);
}

uint64_t shmring_queue_producer_capacity(const shmring_queue_producer_t* producer) {
  const auto* p = live(producer);
  return p != nullptr ? p->endpoint.capacity() : 0;
}

uint64_t shmring_queue_producer_size_approx(const shmring_queue_producer_t* producer) {
  const auto* p = live(producer);
  return p != nullptr ? p->endpoint.size_approx() : 0;
}

shmring_status_t shmring_queue_consumer_open(const char* name, const shmring_queue_options_t* options,
                                             shmring_queue_consumer_t** consumer) {
  return open_handle(__func__, name, consumer, [options](std::string_view n) -> absl::StatusOr<QueueConsumer> {
    absl::StatusOr<QueueOptions> cpp = queue_options(options);
    if (!cpp.ok()) return cpp.status();
    return QueueConsumer::open(n, *cpp);
  });
}

void shmring_queue_consumer_destroy(shmring_queue_consumer_t* consumer) { destroy_handle(consumer); }

shmring_endpoint_t* shmring_queue_consumer_endpoint(shmring_queue_consumer_t* consumer) { return consumer; }

shmring_status_t shmring_queue_consumer_receive(shmring_queue_consumer_t* consumer, void* buffer,
                                                size_t capacity, size_t* size, int64_t timeout_ns) {
  return receive_on(__func__, consumer, buffer, capacity, size, timeout_ns);
}

shmring_status_t shmring_queue_consumer_view(shmring_queue_consumer_t* consumer, int64_t timeout_ns,
                                             shmring_view_t* view) {
  return view_on(__func__, consumer, timeout_ns, view);
}

shmring_status_t shmring_queue_consumer_release(shmring_queue_consumer_t* consumer) {
  return release_on(__func__, consumer);
}

uint64_t shmring_queue_consumer_capacity(const shmring_queue_consumer_t* consumer) {
  const auto* c = live(consumer);
  return c != nullptr ? c->endpoint.capacity() : 0;
}

uint64_t shmring_queue_consumer_size_approx(const shmring_queue_consumer_t* consumer) {
  const auto* c = live(consumer);
  return c != nullptr ? c->endpoint.size_approx() : 0;
}

}  // extern "C"
