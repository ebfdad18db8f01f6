// Ping-pong between two processes over two channels of one pattern, with the try_ calls only
// (busy-spin, as a latency-critical application does): the program tests/transport/
// syscall_count_test.sh runs under `strace -f -c` with two message counts, to show that the data
// path makes no system call per message.
//
//   syscall_driver PATTERN API ROUND_TRIPS      PATTERN: topic | queue | frames | service;
//                                               API: copy | zero (service: a client process
//                                               calls a server process, request -> response)
//   syscall_driver armed WAITERS MESSAGES       a publisher sends MESSAGES into a topic whose
//                                               WAITERS subscribers (other processes) sleep with
//                                               their descriptors armed: one wake-up each, however
//                                               many messages
//
// Exits 0 after ROUND_TRIPS verified round trips (each message carries its number), non-zero with
// a message on any error.
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "shmring/transport/frame.h"
#include "shmring/transport/queue.h"
#include "shmring/transport/service.h"
#include "shmring/transport/topic.h"

namespace {

using shmring::ChannelResult;

constexpr std::size_t kMessage = 64;

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "syscall_driver: %s\n", what.c_str());
  std::_Exit(2);
}

template <typename T>
T must(absl::StatusOr<T> opened, const char* what) {
  if (!opened.ok()) die(std::string(what) + ": " + std::string(opened.status().message()));
  return *std::move(opened);
}

std::uint64_t number_in(std::span<const std::byte> bytes) {
  std::uint64_t n = 0;
  if (bytes.size() >= sizeof n) std::memcpy(&n, bytes.data(), sizeof n);
  return n;
}

// One direction of the ping-pong, for each pattern and API: send(n) and receive() -> n, both
// spinning on try_ calls.
template <typename Sender, typename Receiver>
struct Link {
  Sender tx;
  Receiver rx;
  bool zero_copy;
  std::vector<std::byte> buffer;

  void send(std::uint64_t n) {
    if (zero_copy) {
      for (;;) {
        auto loan = loan_from(tx);
        if (!loan.ok()) continue;
        std::memcpy(loan.buffer().data(), &n, sizeof n);
        if (tx.publish(loan, kMessage) != ChannelResult::kOk) die("publish");
        return;
      }
    }
    std::byte message[kMessage] = {};
    std::memcpy(message, &n, sizeof n);
    while (tx.try_send(std::span<const std::byte>(message, kMessage)) != ChannelResult::kOk) {
    }
  }
  std::uint64_t receive() {
    if (zero_copy) {
      for (;;) {
        auto view = rx.try_receive_view();
        if (!view.ok()) continue;
        const std::uint64_t n = number_in(view.data());
        if (view.release() != ChannelResult::kOk) die("release");
        return n;
      }
    }
    std::size_t bytes = 0;
    while (rx.try_receive(buffer, &bytes) != ChannelResult::kOk) {
    }
    return number_in(std::span<const std::byte>(buffer.data(), bytes));
  }
  static auto loan_from(shmring::TopicPublisher& p) { return p.try_loan(kMessage); }
  static auto loan_from(shmring::QueueProducer& p) { return p.try_loan(); }
  static auto loan_from(shmring::FramePublisher& p) { return p.try_loan(); }
};

template <typename Open>
int run(const std::string& pattern, bool zero_copy, std::uint64_t round_trips, Open open) {
  const std::string ab = "t_sysc_" + std::to_string(getpid()) + "_" + pattern + "_ab";
  const std::string ba = "t_sysc_" + std::to_string(getpid()) + "_" + pattern + "_ba";
  int ready[2];
  int go[2];
  if (pipe(ready) != 0 || pipe(go) != 0) die("pipe");
  const pid_t child = fork();
  if (child < 0) die("fork");
  char byte = 0;
  if (child == 0) {
    auto link = open(/*rx=*/ab, /*tx=*/ba, zero_copy, /*first=*/false);
    if (write(ready[1], "r", 1) != 1 || read(go[0], &byte, 1) != 1) die("child handshake");
    for (std::uint64_t i = 1; i <= round_trips; ++i) {
      const std::uint64_t n = link.receive();
      if (n != i) die("child got " + std::to_string(n) + ", expected " + std::to_string(i));
      link.send(n);
    }
    std::_Exit(0);
  }
  // Both sides open their receivers before anyone sends (the child's first, then ours).
  if (read(ready[0], &byte, 1) != 1) die("parent handshake");
  auto link = open(/*rx=*/ba, /*tx=*/ab, zero_copy, /*first=*/true);
  if (write(go[1], "g", 1) != 1) die("go");
  for (std::uint64_t i = 1; i <= round_trips; ++i) {
    link.send(i);
    const std::uint64_t n = link.receive();
    if (n != i) die("parent got " + std::to_string(n) + ", expected " + std::to_string(i));
  }
  int status = 0;
  if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    die("the child failed");
  }
  std::printf("ok %s %s %llu round trips\n", pattern.c_str(), zero_copy ? "zero-copy" : "copy",
              static_cast<unsigned long long>(round_trips));
  return 0;
}

// A service: the child serves, the parent calls, both spinning on try_ calls. Zero-copy: the
// request is loaned and the response too, both read in place.
int run_service(bool zero_copy, std::uint64_t round_trips) {
  const std::string name = "t_sysc_" + std::to_string(getpid()) + "_service";
  shmring::ServiceOptions o;
  o.max_request = kMessage;
  o.max_response = kMessage;
  o.max_in_flight = 4;
  o.max_clients = 2;
  o.max_servers = 2;
  auto client = must(shmring::ServiceClient::open(name, o), "client");
  int ready[2];
  if (pipe(ready) != 0) die("pipe");
  const pid_t child = fork();
  if (child < 0) die("fork");
  if (child == 0) {
    auto server = must(shmring::ServiceServer::open(name, o), "server");
    if (write(ready[1], "r", 1) != 1) die("child handshake");
    for (std::uint64_t i = 1; i <= round_trips; ++i) {
      shmring::ActiveRequest r;
      do {
        r = server.try_receive_request();
      } while (r.result() == ChannelResult::kWouldBlock);
      if (!r.ok()) die("receive_request");
      const std::uint64_t n = number_in(r.data());
      if (n != i) die("server got " + std::to_string(n) + ", expected " + std::to_string(i));
      if (zero_copy) {
        shmring::ResponseLoan loan = r.try_loan_response();
        if (!loan.ok()) die("loan_response");
        std::memcpy(loan.buffer().data(), &n, sizeof n);
        if (r.respond(loan, kMessage) != ChannelResult::kOk) die("respond");
      } else {
        std::byte message[kMessage] = {};
        std::memcpy(message, &n, sizeof n);
        if (r.try_respond(std::span<const std::byte>(message, kMessage)) != ChannelResult::kOk) die("respond");
      }
    }
    std::_Exit(0);
  }
  char byte = 0;
  if (read(ready[0], &byte, 1) != 1) die("parent handshake");
  std::byte message[kMessage] = {};
  std::byte answer[kMessage];
  for (std::uint64_t i = 1; i <= round_trips; ++i) {
    shmring::PendingResponse p;
    if (zero_copy) {
      shmring::RequestLoan loan = client.try_loan_request();
      if (!loan.ok()) die("loan_request");
      std::memcpy(loan.buffer().data(), &i, sizeof i);
      p = client.send_request(loan, kMessage);
    } else {
      std::memcpy(message, &i, sizeof i);
      p = client.try_send_request(std::span<const std::byte>(message, kMessage));
    }
    if (!p.ok()) die("send_request");
    std::uint64_t n = 0;
    if (zero_copy) {
      shmring::ResponseView v;
      do {
        v = p.try_receive_view();
      } while (v.result() == ChannelResult::kWouldBlock);
      if (!v.ok()) die("receive_view");
      n = number_in(v.data());
      if (v.release() != ChannelResult::kOk) die("release");
    } else {
      std::size_t bytes = 0;
      ChannelResult r;
      while ((r = p.try_receive(answer, &bytes)) == ChannelResult::kWouldBlock) {
      }
      if (r != ChannelResult::kOk) die("receive");
      n = number_in(std::span<const std::byte>(answer, bytes));
    }
    if (n != i || !p.done()) die("client got " + std::to_string(n) + ", expected " + std::to_string(i));
  }
  int status = 0;
  if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    die("the child failed");
  }
  std::printf("ok service %s %llu round trips\n", zero_copy ? "zero-copy" : "copy",
              static_cast<unsigned long long>(round_trips));
  return 0;
}

// WAITERS subscriber processes arm their descriptors and sleep in poll() until the publisher is
// done (their pipe closes); the publisher sends MESSAGES into a lossy topic (never held back).
int run_armed(int waiters, std::uint64_t messages) {
  const std::string name = "t_" + std::to_string(getpid()) + "_sysc_armed";
  shmring::TopicOptions o;
  o.capacity = 1 << 20;
  o.max_message = kMessage;
  o.max_peers = 16;
  auto pub = must(shmring::TopicPublisher::open(name, o), "publisher");
  int ready[2], done[2];
  if (pipe(ready) != 0 || pipe(done) != 0) die("pipe");
  std::vector<pid_t> children;
  for (int i = 0; i < waiters; ++i) {
    const pid_t pid = fork();
    if (pid == 0) {
      close(ready[0]);
      close(done[1]);
      auto sub = must(shmring::TopicSubscriber::open(name, o), "subscriber");
      const int fd = sub.wait_fd();
      if (fd < 0) die("wait_fd");
      std::byte buf[kMessage];
      std::size_t n = 0;
      while (sub.try_receive(buf, &n) == ChannelResult::kOk) {
      }  // drained: armed
      if (write(ready[1], "r", 1) != 1) die("write");
      char c;
      while (read(done[0], &c, 1) > 0) {
      }  // the publisher closed its end: done
      pollfd p{fd, POLLIN, 0};
      const bool woken = poll(&p, 1, 0) == 1;
      _exit(woken ? 0 : 3);  // one wake-up must have arrived
    }
    children.push_back(pid);
  }
  close(ready[1]);
  close(done[0]);
  for (int i = 0; i < waiters; ++i) {
    char c;
    if (read(ready[0], &c, 1) != 1) die("a subscriber did not get ready");
  }
  std::byte msg[kMessage] = {};
  for (std::uint64_t i = 0; i < messages; ++i) {
    std::memcpy(msg, &i, sizeof(i));
    if (pub.try_send(msg) != ChannelResult::kOk) die("try_send");
  }
  close(done[1]);
  int failed = 0;
  for (const pid_t pid : children) {
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) ++failed;
  }
  if (failed != 0) die("a subscriber was not woken");
  std::printf("armed: %d waiters, %llu messages\n", waiters, static_cast<unsigned long long>(messages));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    die("usage: syscall_driver topic|queue|frames|service copy|zero ROUND_TRIPS | armed WAITERS MESSAGES");
  }
  const std::string pattern = argv[1];
  if (pattern == "armed") return run_armed(std::atoi(argv[2]), std::strtoull(argv[3], nullptr, 10));
  const bool zero_copy = std::string(argv[2]) == "zero";
  const std::uint64_t round_trips = std::strtoull(argv[3], nullptr, 10);
  if (pattern == "service") return run_service(zero_copy, round_trips);
  if (pattern == "topic") {
    return run(pattern, zero_copy, round_trips,
               [](const std::string& rx, const std::string& tx, bool zero, bool) {
                 shmring::TopicOptions o;
                 o.capacity = 1 << 16;
                 o.max_message = kMessage;
                 o.max_peers = 4;
                 auto sub = must(shmring::TopicSubscriber::open(rx, o), "subscriber");
                 auto pub = must(shmring::TopicPublisher::open(tx, o), "publisher");
                 return Link<shmring::TopicPublisher, shmring::TopicSubscriber>{
                     std::move(pub), std::move(sub), zero, std::vector<std::byte>(kMessage)};
               });
  }
  if (pattern == "queue") {
    return run(pattern, zero_copy, round_trips,
               [](const std::string& rx, const std::string& tx, bool zero, bool) {
                 shmring::QueueOptions o;
                 o.capacity = 64;
                 o.max_message = kMessage;
                 o.max_peers = 4;
                 auto consumer = must(shmring::QueueConsumer::open(rx, o), "consumer");
                 auto producer = must(shmring::QueueProducer::open(tx, o), "producer");
                 return Link<shmring::QueueProducer, shmring::QueueConsumer>{
                     std::move(producer), std::move(consumer), zero, std::vector<std::byte>(kMessage)};
               });
  }
  if (pattern == "frames") {
    return run(pattern, zero_copy, round_trips,
               [](const std::string& rx, const std::string& tx, bool zero, bool) {
                 shmring::FrameOptions o;
                 o.capacity = 4;
                 o.max_message = kMessage;
                 o.max_peers = 4;
                 auto sub = must(shmring::FrameSubscriber::open(rx, o), "frame subscriber");
                 auto pub = must(shmring::FramePublisher::open(tx, o), "frame publisher");
                 return Link<shmring::FramePublisher, shmring::FrameSubscriber>{
                     std::move(pub), std::move(sub), zero, std::vector<std::byte>(kMessage)};
               });
  }
  die("unknown pattern " + pattern);
}
