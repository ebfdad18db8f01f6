// The C++ API from an installed package: a topic round trip, copying and zero-copy.
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

#include <shmring/transport/topic.h>

int main() {
  using namespace std::chrono_literals;
  const std::string name = "pkg.cpp." + std::to_string(getpid());
  auto pub = shmring::TopicPublisher::open(name);
  auto sub = shmring::TopicSubscriber::open(name);
  if (!pub.ok() || !sub.ok()) {
    std::fprintf(stderr, "open: %s\n", (pub.ok() ? sub.status() : pub.status()).ToString().c_str());
    return 1;
  }
  shmring::TopicLoan loan = pub->loan(8, 1s);
  if (!loan.ok()) return 2;
  std::memcpy(loan.buffer().data(), "from C++", 8);
  if (pub->publish(loan, 8) != shmring::ChannelResult::kOk) return 3;
  shmring::TopicView view = sub->receive_view(1s);
  const bool ok = view.ok() && view.data().size() == 8 && std::memcmp(view.data().data(), "from C++", 8) == 0;
  view.release();
  std::printf("C++ consumer: %s\n", ok ? "ok" : "WRONG");
  return ok ? 0 : 4;
}
