// One thread serving several channels with a WaitSet: three topics and a work queue, fed by
// another process, plus a timer. The thread sleeps until something happens; it learns that the
// feeding process is gone (peer-gone) without polling.
//
//   docs_example_waitset        (forks its own feeder; exits 0 when everything arrived)
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "shmring/transport/queue.h"
#include "shmring/transport/topic.h"
#include "shmring/transport/wait_set.h"

using namespace std::chrono_literals;

int feed(const std::vector<std::string>& topics, const std::string& queue) {
  std::vector<shmring::TopicPublisher> publishers;
  for (const std::string& name : topics) publishers.push_back(shmring::TopicPublisher::open(name).value());
  shmring::QueueProducer jobs = shmring::QueueProducer::open(queue).value();
  for (int i = 0; i < 30; ++i) {
    const std::string text = "tick " + std::to_string(i);
    publishers[i % publishers.size()].try_send(std::as_bytes(std::span(text)));
    if (i % 10 == 0) jobs.send(std::as_bytes(std::span(text)), 1s);
    std::this_thread::sleep_for(5ms);  // the receiver sleeps in between
  }
  return 0;  // closing everything: the receiver hears "peer-gone"
}

int main() {
  const std::string prefix = "example-ws-" + std::to_string(getpid());
  const std::vector<std::string> topics = {prefix + "-a", prefix + "-b", prefix + "-c"};
  const std::string queue = prefix + "-jobs";

  // Open the receiving ends first (they create the channels), then start the feeder.
  std::vector<shmring::TopicSubscriber> subscribers;
  for (const std::string& name : topics) subscribers.push_back(shmring::TopicSubscriber::open(name).value());
  shmring::QueueConsumer jobs = shmring::QueueConsumer::open(queue).value();

  shmring::WaitSet set = shmring::WaitSet::create().value();
  for (std::size_t i = 0; i < subscribers.size(); ++i) {
    if (!set.add(subscribers[i], i).ok()) return 1;
  }
  if (!set.add(jobs, 100).ok() || !set.add_timer(200, 100ms, 100ms).ok()) return 1;

  const pid_t feeder = fork();
  if (feeder == 0) _exit(feed(topics, queue));

  int messages = 0, job_count = 0, gone = 0;
  std::byte buffer[256];
  std::size_t n = 0;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while ((messages < 30 || job_count < 3 || gone < 4) && std::chrono::steady_clock::now() < deadline) {
    const auto woken = set.wait(1s);  // the ready entries (valid until the next wait)
    if (!woken.ok()) return 1;
    for (const shmring::WaitSet::Ready& ready : *woken) {
      if (ready.tag == 200) continue;  // the timer: housekeeping would go here
      if (shmring::has(ready.events, shmring::WaitEvent::kPeerGone)) ++gone;
      // Drain until kWouldBlock: that re-arms the endpoint's descriptor.
      if (ready.tag == 100) {
        while (jobs.try_receive(buffer, &n) == shmring::ChannelResult::kOk) ++job_count;
      } else {
        while (subscribers[ready.tag].try_receive(buffer, &n) == shmring::ChannelResult::kOk) ++messages;
      }
    }
  }
  int status = 0;
  waitpid(feeder, &status, 0);
  std::printf("%d messages, %d jobs, %d peer-gone events\n", messages, job_count, gone);
  for (const std::string& name : topics) (void)shmring::remove_channel(name);
  (void)shmring::remove_channel(queue);
  return messages == 30 && job_count == 3 && gone == 4 ? 0 : 1;
}
