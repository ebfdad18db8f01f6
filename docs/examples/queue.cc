// A pipeline stage: producers and competing consumers; each item goes to exactly one consumer.
#include <cstdio>
#include <cstring>

#include "shmring/transport/queue.h"

int main() {
  using namespace std::chrono_literals;
  shmring::QueueOptions options;
  options.capacity = 1024;   // slots (creator's choice; openers pass 0 or the same)
  options.max_message = 256;  // bytes per item
  auto producer = shmring::QueueProducer::open("work", options);
  auto consumer = shmring::QueueConsumer::open("work", options);
  if (!producer.ok() || !consumer.ok()) return 1;
  // Zero-copy: write the item in place, then publish it.
  shmring::QueueLoan loan = producer->loan(1s);  // waits up to 1 s while the queue is full
  if (!loan.ok()) return 1;
  const char job[] = "resize image 42";
  std::memcpy(loan.buffer().data(), job, sizeof job);
  producer->publish(loan, sizeof job);
  // Read in place; the slot is reused once the view is released.
  shmring::QueueView view = consumer->receive_view(1s);
  if (view.ok()) std::printf("got: %s\n", reinterpret_cast<const char*>(view.data().data()));
  view.release();
  return 0;
}
