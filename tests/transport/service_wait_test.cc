// Services and event loops: the client's and the server's wait_fd (readable when there may be
// work, re-armed by the try_ call that answers kWouldBlock), take_wait_events, WaitSet, the
// hang-up of a dead server, and an edge-triggered event loop under load across processes.
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "service_test_util.h"
#include "shmring/transport/service.h"
#include "shmring/transport/wait_set.h"

namespace shmring {
namespace {

using namespace std::chrono_literals;
using testing::bytes_of;
using testing::channel_name;
using testing::fork_child;
using testing::service_options;
using testing::string_of;
using testing::wait_child;

bool readable(int fd, int timeout_ms = 0) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN) != 0;
}

TEST(ServiceWaitTest, TheClientsDescriptorSaysWhenAResponseArrives) {
  const std::string name = channel_name("svcw_client");
  auto server = ServiceServer::open(name, service_options());
  auto client = ServiceClient::open(name, service_options());
  ASSERT_TRUE(server.ok() && client.ok());
  const int fd = client->wait_fd();
  ASSERT_GE(fd, 0);
  EXPECT_EQ(client->wait_fd(), fd);  // the same one
  EXPECT_TRUE(readable(fd));        // starts readable: the first drain arms it
  PendingResponse a = client->try_send_request(bytes_of("a"));
  PendingResponse b = client->try_send_request(bytes_of("b"));
  std::vector<std::byte> buf(64);
  std::size_t n = 0;
  EXPECT_EQ(a.try_receive(buf, &n), ChannelResult::kWouldBlock);
  EXPECT_EQ(b.try_receive(buf, &n), ChannelResult::kWouldBlock);
  EXPECT_FALSE(readable(fd)) << "armed, nothing pending";
  ActiveRequest ra = server->try_receive_request();
  ActiveRequest rb = server->try_receive_request();
  ASSERT_TRUE(ra.ok() && rb.ok());
  rb.respond(bytes_of("B"));  // the second call's response
  EXPECT_TRUE(readable(fd, 1000));
  EXPECT_TRUE(has(client->take_wait_events(), WaitEvent::kData));
  // Polling the first call (nothing for it) must not leave the second's response unannounced.
  EXPECT_EQ(a.try_receive(buf, &n), ChannelResult::kWouldBlock);
  EXPECT_TRUE(readable(fd)) << "another call is ready: the descriptor stays readable";
  ASSERT_EQ(b.try_receive(buf, &n), ChannelResult::kOk);
  EXPECT_EQ(string_of(std::span(buf).first(n)), "B");
  EXPECT_EQ(a.try_receive(buf, &n), ChannelResult::kWouldBlock);
  EXPECT_FALSE(readable(fd));
  ra.respond(bytes_of("A"));
  EXPECT_TRUE(readable(fd, 1000));
  ASSERT_EQ(a.try_receive(buf, &n), ChannelResult::kOk);
  EXPECT_EQ(string_of(std::span(buf).first(n)), "A");
}

TEST(ServiceWaitTest, TheServersDescriptorSaysWhenARequestOrRoomComes) {
  const std::string name = channel_name("svcw_server");
  auto server = ServiceServer::open(name, service_options());
  auto client = ServiceClient::open(name, service_options());
  ASSERT_TRUE(server.ok() && client.ok());
  const int fd = server->wait_fd();
  ASSERT_GE(fd, 0);
  EXPECT_EQ(server->try_receive_request().result(), ChannelResult::kWouldBlock);
  EXPECT_FALSE(readable(fd));
  PendingResponse p = client->try_send_request(bytes_of("stream"));
  EXPECT_TRUE(readable(fd, 1000));
  ActiveRequest r = server->try_receive_request();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(server->try_receive_request().result(), ChannelResult::kWouldBlock);
  // response_depth 2: the third response waits for the client, and the descriptor says when.
  ASSERT_EQ(r.try_respond(bytes_of("1"), false), ChannelResult::kOk);
  ASSERT_EQ(r.try_respond(bytes_of("2"), false), ChannelResult::kOk);
  EXPECT_EQ(r.try_respond(bytes_of("3"), false), ChannelResult::kWouldBlock);
  EXPECT_FALSE(readable(fd));
  std::vector<std::byte> buf(64);
  std::size_t n = 0;
  ASSERT_EQ(p.try_receive(buf, &n), ChannelResult::kOk);
  EXPECT_TRUE(readable(fd, 1000));
  EXPECT_EQ(r.try_respond(bytes_of("3"), true), ChannelResult::kOk);
}

TEST(ServiceWaitTest, ADeadServerIsHeardAtOnceAndItsAtMostOnceRequestsEnd) {
  const std::string name = channel_name("svcw_dead");
  ServiceOptions o = service_options();
  o.at_most_once = true;
  auto client = ServiceClient::open(name, o);
  ASSERT_TRUE(client.ok());
  testing::SharedRegion region(sizeof(std::atomic<std::uint32_t>));
  auto* taken = region.as<std::atomic<std::uint32_t>>();
  const pid_t child = fork_child([&] {
    auto server = ServiceServer::open(name, o);
    if (!server.ok()) return 2;
    ActiveRequest r = server->receive_request(10s);
    taken->store(1);
    std::this_thread::sleep_for(60s);
    return 0;
  });
  PendingResponse p = client->send_request(bytes_of("q"), 1s);
  const int fd = client->wait_fd();
  while (taken->load() == 0) std::this_thread::sleep_for(1ms);
  std::vector<std::byte> buf(64);
  std::size_t n = 0;
  EXPECT_EQ(p.try_receive(buf, &n), ChannelResult::kWouldBlock);  // drained: armed, watching
  kill(child, SIGKILL);
  wait_child(child, 10s);
  ASSERT_TRUE(readable(fd, 5000));
  const WaitEvent events = client->take_wait_events();  // the hang-up runs the recovery
  EXPECT_TRUE(has(events, WaitEvent::kPeerGone)) << to_string(events);
  ChannelResult r = ChannelResult::kWouldBlock;
  for (int i = 0; i < 100 && r == ChannelResult::kWouldBlock; ++i) {
    r = p.try_receive(buf, &n);
    if (r == ChannelResult::kWouldBlock) readable(fd, 50);
  }
  EXPECT_EQ(r, ChannelResult::kPeerGone);
}

TEST(ServiceWaitTest, OneThreadServesAndCallsThroughAWaitSet) {
  const std::string name = channel_name("svcw_set");
  auto server = ServiceServer::open(name, service_options());
  auto client = ServiceClient::open(name, service_options());
  ASSERT_TRUE(server.ok() && client.ok());
  auto set = WaitSet::create();
  ASSERT_TRUE(set.ok());
  ASSERT_TRUE(set->add(*server, 1).ok());
  ASSERT_TRUE(set->add(*client, 2).ok());
  EXPECT_EQ(set->add(*client, 3).code(), absl::StatusCode::kAlreadyExists);  // the same endpoint twice
  constexpr int kCalls = 2000;
  int sent = 0;
  int answered = 0;
  std::vector<PendingResponse> pending;
  std::vector<std::byte> buf(64);
  while (answered < kCalls) {
    while (sent < kCalls) {  // keep max_in_flight requests out
      PendingResponse p = client->try_send_request(bytes_of(std::to_string(sent)));
      if (!p.ok()) break;
      pending.push_back(std::move(p));
      ++sent;
    }
    auto ready = set->wait(5s);
    ASSERT_TRUE(ready.ok());
    ASSERT_FALSE(ready->empty()) << "a wake-up was lost: " << answered << " answered";
    for (const WaitSet::Ready& r : *ready) {
      if (r.tag == 1) {
        for (;;) {
          ActiveRequest request = server->try_receive_request();
          if (!request.ok()) break;
          request.respond(bytes_of("=" + string_of(request.data())));
        }
      } else if (r.tag == 2) {
        for (auto it = pending.begin(); it != pending.end();) {
          std::size_t n = 0;
          const ChannelResult res = it->try_receive(buf, &n);
          if (res == ChannelResult::kOk) {
            ++answered;
            it = pending.erase(it);
          } else {
            ASSERT_EQ(res, ChannelResult::kWouldBlock);
            ++it;
          }
        }
      }
    }
  }
  EXPECT_EQ(answered, kCalls);
}

// Edge-triggered epoll on both sides, in two processes, 16 requests in flight: every response
// arrives and none waits for a timer. The client polls its calls in turn, so a re-arm on behalf of
// one call often drains the wake-up that announced another call's response (one polled earlier in
// the same pass): that must leave the descriptor readable.
TEST(ServiceWaitTest, EdgeTriggeredLoopsAcrossProcessesLoseNoWakeUp) {
  const std::string name = channel_name("svcw_edge");
  ServiceOptions o = service_options();
  o.max_in_flight = 16;
  o.max_active = 16;
  constexpr int kCalls = 20000;
  auto client = ServiceClient::open(name, o);
  ASSERT_TRUE(client.ok());
  const pid_t server_pid = fork_child([&] {
    auto server = ServiceServer::open(name, o);
    if (!server.ok()) return 2;
    const int ep = epoll_create1(0);
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLET;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, server->wait_fd(), &ev) != 0) return 3;
    int served = 0;
    while (served < kCalls) {
      for (;;) {
        ActiveRequest r = server->try_receive_request();
        if (!r.ok()) break;
        if (r.respond(r.data()) != ChannelResult::kOk) return 4;
        ++served;
      }
      if (served >= kCalls) break;
      if (epoll_wait(ep, &ev, 1, 10000) != 1) return 5;  // 10 s: a lost wake-up
    }
    return 0;
  });
  const int ep = epoll_create1(0);
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLET;
  ASSERT_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, client->wait_fd(), &ev), 0);
  std::vector<PendingResponse> pending;
  std::vector<std::byte> buf(64);
  int sent = 0;
  int answered = 0;
  while (answered < kCalls) {
    while (sent < kCalls) {
      PendingResponse p = client->try_send_request(bytes_of(std::to_string(sent)));
      if (!p.ok()) break;
      pending.push_back(std::move(p));
      ++sent;
    }
    for (auto it = pending.begin(); it != pending.end();) {
      std::size_t n = 0;
      const ChannelResult res = it->try_receive(buf, &n);
      if (res == ChannelResult::kOk) {
        ++answered;
        it = pending.erase(it);
      } else {
        ASSERT_EQ(res, ChannelResult::kWouldBlock) << to_string(res);
        ++it;
      }
    }
    if (answered < kCalls && !pending.empty()) {
      ASSERT_EQ(epoll_wait(ep, &ev, 1, 10000), 1) << "lost wake-up after " << answered;
    }
  }
  EXPECT_TRUE(wait_child(server_pid, 30s).ok());
  close(ep);
}

}  // namespace
}  // namespace shmring
