// The C++ side of the Python interop tests (tests/python/test_interop.py): sends or receives on a
// channel and prints a CRC-32 over every message in order, which the Python side compares with its
// own (zlib.crc32 chained the same way).
//
//   shmring_interop_peer topic-pub NAME COUNT      lossless topic, sizes 1..4000
//   shmring_interop_peer topic-sub NAME COUNT
//   shmring_interop_peer queue-pub NAME COUNT      queue of 4096-byte slots
//   shmring_interop_peer queue-sub NAME COUNT
//   shmring_interop_peer frames-pub NAME COUNT SIZE   frames; each frame carries its number and a
//   shmring_interop_peer frames-sub NAME COUNT SIZE   CRC of its body; prints "intact N torn 0"
//   shmring_interop_peer service-serve NAME COUNT    answers COUNT requests, each with its bytes
//                                                    reversed; prints "ready" once serving
//   shmring_interop_peer service-call NAME COUNT     calls COUNT times (messages 1..4000 bytes),
//                                                    checks each answer is its request reversed
// Exit 0 when done; 1 on any error (with a message on stderr).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "shmring/transport/frame.h"
#include "shmring/transport/queue.h"
#include "shmring/transport/service.h"
#include "shmring/transport/topic.h"

namespace {

using namespace std::chrono_literals;
using shmring::ChannelResult;

std::uint32_t crc32(const std::byte* data, std::size_t n, std::uint32_t crc) {
  static const auto table = [] {
    std::vector<std::uint32_t> t(256);
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  crc = ~crc;
  for (std::size_t i = 0; i < n; ++i) crc = table[(crc ^ static_cast<std::uint8_t>(data[i])) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

// Message i: a size and bytes derived from i.
std::vector<std::byte> message(std::uint64_t i, std::size_t max) {
  const std::size_t size = 1 + static_cast<std::size_t>((i * 2654435761u) % max);
  std::vector<std::byte> m(size);
  for (std::size_t j = 0; j < size; ++j) m[j] = static_cast<std::byte>((i * 31 + j * 7) & 0xFF);
  return m;
}

int fail(const std::string& what) {
  std::fprintf(stderr, "interop_peer: %s\n", what.c_str());
  return 1;
}

shmring::TopicOptions topic_options() {
  shmring::TopicOptions o;
  o.capacity = 1 << 20;
  o.max_message = 4096;
  o.lossless = true;
  return o;
}
shmring::QueueOptions queue_options() {
  shmring::QueueOptions o;
  o.capacity = 256;
  o.max_message = 4096;
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) return fail("usage: shmring_interop_peer MODE NAME COUNT [SIZE]");
  const std::string mode = argv[1];
  const std::string name = argv[2];
  const std::uint64_t count = std::strtoull(argv[3], nullptr, 10);
  const std::size_t frame_size = argc > 4 ? std::strtoull(argv[4], nullptr, 10) : 0;
  std::uint32_t crc = 0;
  std::vector<std::byte> buf(1 << 16);
  std::size_t n = 0;
  if (mode == "topic-pub") {
    auto pub = shmring::TopicPublisher::open(name, topic_options());
    if (!pub.ok()) return fail(pub.status().ToString());
    for (std::uint64_t i = 0; i < count; ++i) {
      const auto m = message(i, 4000);
      if (pub->send(m, 30s) != ChannelResult::kOk) return fail("send");
      crc = crc32(m.data(), m.size(), crc);
    }
  } else if (mode == "topic-sub") {
    auto sub = shmring::TopicSubscriber::open(name, topic_options());
    if (!sub.ok()) return fail(sub.status().ToString());
    std::printf("ready\n");
    std::fflush(stdout);
    for (std::uint64_t i = 0; i < count; ++i) {
      if (sub->receive(buf, &n, 30s) != ChannelResult::kOk) return fail("receive");
      crc = crc32(buf.data(), n, crc);
    }
  } else if (mode == "queue-pub") {
    auto producer = shmring::QueueProducer::open(name, queue_options());
    if (!producer.ok()) return fail(producer.status().ToString());
    for (std::uint64_t i = 0; i < count; ++i) {
      const auto m = message(i, 4096);
      if (producer->send(m, 30s) != ChannelResult::kOk) return fail("send");
      crc = crc32(m.data(), m.size(), crc);
    }
  } else if (mode == "queue-sub") {
    auto consumer = shmring::QueueConsumer::open(name, queue_options());
    if (!consumer.ok()) return fail(consumer.status().ToString());
    std::printf("ready\n");
    std::fflush(stdout);
    for (std::uint64_t i = 0; i < count; ++i) {
      if (consumer->receive(buf, &n, 30s) != ChannelResult::kOk) return fail("receive");
      crc = crc32(buf.data(), n, crc);
    }
  } else if (mode == "frames-pub" || mode == "frames-sub") {
    shmring::FrameOptions o;
    o.capacity = 4;
    o.max_message = frame_size;
    if (frame_size < 16) return fail("frames need SIZE >= 16");
    if (mode == "frames-pub") {
      auto pub = shmring::FramePublisher::open(name, o);
      if (!pub.ok()) return fail(pub.status().ToString());
      for (std::uint64_t i = 1; i <= count; ++i) {
        shmring::FrameLoan loan = pub->loan(30s);
        if (!loan.ok()) return fail("loan");
        std::byte* f = loan.buffer().data();
        for (std::size_t j = 16; j < frame_size; ++j) f[j] = static_cast<std::byte>((i + j) & 0xFF);
        const std::uint32_t body = crc32(f + 16, frame_size - 16, 0);
        std::memcpy(f, &i, 8);
        std::memcpy(f + 8, &body, 4);
        if (pub->publish(loan, frame_size) != ChannelResult::kOk) return fail("publish");
      }
    } else {
      auto sub = shmring::FrameSubscriber::open(name, o);
      if (!sub.ok()) return fail(sub.status().ToString());
      std::printf("ready\n");
      std::fflush(stdout);
      std::uint64_t intact = 0, torn = 0, last = 0;
      while (last < count) {
        shmring::FrameView v = sub->receive_view(30s);
        if (!v.ok()) return fail("receive_view");
        std::uint64_t number = 0;
        std::uint32_t body = 0;
        std::memcpy(&number, v.data().data(), 8);
        std::memcpy(&body, v.data().data() + 8, 4);
        if (crc32(v.data().data() + 16, v.data().size() - 16, 0) == body && v.data().size() == frame_size) {
          ++intact;
        } else {
          ++torn;
        }
        last = number;
        if (v.release() != ChannelResult::kOk) return fail("release");
      }
      std::printf("intact %llu torn %llu\n", static_cast<unsigned long long>(intact),
                  static_cast<unsigned long long>(torn));
      return torn == 0 ? 0 : 1;
    }
  } else if (mode == "service-serve") {
    shmring::ServiceOptions o;
    o.max_request = 4096;
    o.max_response = 4096;
    auto server = shmring::ServiceServer::open(name, o);
    if (!server.ok()) return fail(server.status().ToString());
    std::printf("ready\n");
    std::fflush(stdout);
    for (std::uint64_t i = 0; i < count; ++i) {
      shmring::ActiveRequest r = server->receive_request(30s);
      if (!r.ok()) return fail("receive_request");
      std::vector<std::byte> answer(r.data().rbegin(), r.data().rend());
      crc = crc32(r.data().data(), r.data().size(), crc);
      if (r.respond(answer) != ChannelResult::kOk) return fail("respond");
    }
  } else if (mode == "service-call") {
    shmring::ServiceOptions o;
    o.max_request = 4096;
    o.max_response = 4096;
    auto client = shmring::ServiceClient::open(name, o);
    if (!client.ok()) return fail(client.status().ToString());
    for (std::uint64_t i = 0; i < count; ++i) {
      const auto m = message(i, 4000);
      if (client->call(m, buf, &n, 30s) != ChannelResult::kOk) return fail("call");
      if (n != m.size() || !std::equal(m.rbegin(), m.rend(), buf.begin())) return fail("a wrong answer");
      crc = crc32(m.data(), m.size(), crc);
    }
  } else {
    return fail("unknown mode " + mode);
  }
  std::printf("crc %u\n", crc);
  return 0;
}
