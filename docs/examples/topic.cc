// Market-data fan-out: one publisher, any number of subscriber processes; lossy by default.
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "shmring/transport/topic.h"

int main(int argc, char** argv) {
  using namespace std::chrono_literals;
  const bool publisher = argc > 1 && std::string_view(argv[1]) == "pub";
  if (publisher) {
    auto pub = shmring::TopicPublisher::open("prices");  // creates the channel if needed
    if (!pub.ok()) return std::puts(pub.status().ToString().c_str()), 1;
    const char quote[] = "EURUSD 1.0842";
    pub->send(std::as_bytes(std::span(quote)), 1s);  // never waits on a lossy topic
    return 0;
  }
  auto sub = shmring::TopicSubscriber::open("prices");
  if (!sub.ok()) return std::puts(sub.status().ToString().c_str()), 1;
  std::vector<std::byte> message(sub->max_message());  // room for the largest message
  std::size_t bytes = 0;
  const shmring::ChannelResult result = sub->receive(message, &bytes, 2s);
  if (result != shmring::ChannelResult::kOk) {
    return std::printf("nothing: %s\n", std::string(shmring::to_string(result)).c_str()), 1;
  }
  std::printf("%.*s (lost so far: %llu)\n", static_cast<int>(bytes),
              reinterpret_cast<const char*>(message.data()), static_cast<unsigned long long>(sub->lost()));
  return 0;
}
