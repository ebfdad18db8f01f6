// Pipeline demo: 2 producer processes, 3 competing consumer processes on a queue channel. Every item
// is processed once: the consumers' checksum of the items equals the producers'.
//
//   shmring_example_pipeline [--items 200000] [--name demo.pipeline]
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <thread>

#include "example_util.h"
#include "shmring/transport/queue.h"

using namespace shmring;
using namespace shmring::examples;

namespace {

constexpr int kProducers = 2;
constexpr int kConsumers = 3;

struct Board {
  std::atomic<std::uint64_t> produced_sum;
  std::atomic<std::uint64_t> consumed_sum;
  std::atomic<std::uint64_t> consumed;
  std::atomic<std::uint64_t> per_consumer[kConsumers];
  std::atomic<std::uint32_t> producers_done;
};

struct Item {
  std::uint64_t id;
  std::uint64_t value;
};

}  // namespace

int main(int argc, char** argv) {
  const std::uint64_t items = std::strtoull(arg(argc, argv, "--items", "200000").c_str(), nullptr, 10);
  const std::string name = arg(argc, argv, "--name", "demo.pipeline." + std::to_string(getpid()));
  QueueOptions o;
  o.capacity = 1024;
  o.max_message = sizeof(Item);
  auto keeper = QueueProducer::open(name, o);  // keeps the channel while children come and go
  if (!keeper.ok()) {
    std::fprintf(stderr, "%s\n", keeper.status().ToString().c_str());
    return 2;
  }
  Board* board = shared_block<Board>();
  const std::uint64_t total = items * kProducers;
  const auto start = std::chrono::steady_clock::now();
  std::vector<pid_t> pids;
  for (int c = 0; c < kConsumers; ++c) {
    pids.push_back(spawn([&, c] {
      auto consumer = QueueConsumer::open(name, o);
      if (!consumer.ok()) return 2;
      while (board->consumed.load() < total) {
        const std::size_t n = consumer->poll(
            [&](std::span<const std::byte> m) {
              Item it{};
              std::memcpy(&it, m.data(), std::min(m.size(), sizeof(it)));
              board->consumed_sum.fetch_add(mix64(it.id) ^ it.value);
              board->per_consumer[c].fetch_add(1);
              board->consumed.fetch_add(1);
            },
            64);
        if (n == 0) {
          QueueView v = consumer->receive_view(std::chrono::milliseconds(10));
          if (v.ok()) {
            Item it{};
            std::memcpy(&it, v.data().data(), std::min(v.data().size(), sizeof(it)));
            board->consumed_sum.fetch_add(mix64(it.id) ^ it.value);
            board->per_consumer[c].fetch_add(1);
            board->consumed.fetch_add(1);
          }
        }
      }
      return 0;
    }));
  }
  for (int p = 0; p < kProducers; ++p) {
    pids.push_back(spawn([&, p] {
      auto producer = QueueProducer::open(name, o);
      if (!producer.ok()) return 2;
      std::uint64_t sum = 0;
      for (std::uint64_t i = 0; i < items; ++i) {
        const Item it{p * items + i, mix64(i * 31 + p)};
        if (producer->send(std::as_bytes(std::span(&it, 1)), std::chrono::seconds(10)) !=
            ChannelResult::kOk) {
          return 3;
        }
        sum += mix64(it.id) ^ it.value;
      }
      board->produced_sum.fetch_add(sum);
      return 0;
    }));
  }
  bool ok = true;
  for (pid_t pid : pids) ok = wait_ok(pid) && ok;
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("pipeline: %d producers x %" PRIu64 " items, %d consumers, %.2f s (%.0f items/s)\n",
              kProducers, items, kConsumers, secs, static_cast<double>(total) / secs);
  for (int c = 0; c < kConsumers; ++c) {
    std::printf("  consumer %d processed %" PRIu64 "\n", c, board->per_consumer[c].load());
  }
  const bool sums = board->produced_sum.load() == board->consumed_sum.load() &&
                    board->consumed.load() == total;
  std::printf("  processed %" PRIu64 " of %" PRIu64 ", checksum %s\n", board->consumed.load(), total,
              sums ? "matches" : "DIFFERS");
  ok = ok && sums;
  std::printf("%s\n", ok ? "OK" : "FAILED");
  return ok ? 0 : 1;
}
