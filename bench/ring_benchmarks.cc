// In-process ring benchmarks, each beside a well-known baseline (Boost.Lockfree). Threads are
// pinned round-robin to cores 0 and 1 (the writer on 0, the first reader on 1).
#include <benchmark/benchmark.h>
#include <pthread.h>
#include <sched.h>

#include <array>
#include <atomic>
#include <boost/lockfree/queue.hpp>
#include <boost/lockfree/spsc_queue.hpp>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "shmring/queue/broadcast_layout.h"
#include "shmring/queue/broadcast_reader.h"
#include "shmring/queue/broadcast_writer.h"
#include "shmring/queue/mpmc_queue.h"
#include "shmring/queue/spsc_ring.h"

namespace {

using namespace shmring;

void pin(int core) {
  const int cores = static_cast<int>(std::thread::hardware_concurrency());
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(core % (cores > 0 ? cores : 1), &set);
  pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

struct Region {
  explicit Region(std::size_t n) : bytes(n), data(std::aligned_alloc(128, align_up(n, 128))) {
    std::memset(data, 0, align_up(n, 128));
  }
  ~Region() { std::free(data); }
  std::size_t bytes;
  void* data;
};

constexpr std::uint64_t kRingBytes = 1 << 20;

// --- SPSC throughput ------------------------------------------------------------------------------

void BM_SpscRing_Throughput(benchmark::State& state) {
  const std::size_t size = static_cast<std::size_t>(state.range(0));
  const SpscRing::Options options{kRingBytes, 0, 0};
  Region region(SpscRing::required_bytes(options));
  auto writer = SpscRing::create(region.data, region.bytes, options);
  auto reader = SpscRing::attach(region.data, region.bytes);
  std::atomic<bool> stop{false};
  std::thread consumer([&] {
    pin(1);
    std::uint64_t sink = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      reader->read([&](std::span<const std::byte> s) { sink += s.size(); }, 256);
    }
    while (reader->read([&](std::span<const std::byte> s) { sink += s.size(); }).records) {
    }
    benchmark::DoNotOptimize(sink);
  });
  pin(0);
  std::vector<std::byte> record(size, std::byte{1});
  for (auto _ : state) {
    while (writer->try_write(record) != RingResult::kOk) {
    }
  }
  stop = true;
  consumer.join();
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(size));
}
BENCHMARK(BM_SpscRing_Throughput)->Arg(8)->Arg(64)->Arg(512)->Arg(4096)->UseRealTime();

template <std::size_t N>
void BM_BoostSpsc_Throughput(benchmark::State& state) {
  using Item = std::array<std::byte, N>;
  auto queue = std::make_unique<boost::lockfree::spsc_queue<Item>>(kRingBytes / N);
  std::atomic<bool> stop{false};
  std::thread consumer([&] {
    pin(1);
    Item item;
    std::uint64_t sink = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      while (queue->pop(item)) sink += static_cast<std::uint8_t>(item[0]);
    }
    while (queue->pop(item)) sink += 1;
    benchmark::DoNotOptimize(sink);
  });
  pin(0);
  Item item{};
  item.fill(std::byte{1});
  for (auto _ : state) {
    while (!queue->push(item)) {
    }
  }
  stop = true;
  consumer.join();
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(N));
}
BENCHMARK_TEMPLATE(BM_BoostSpsc_Throughput, 8)->UseRealTime();
BENCHMARK_TEMPLATE(BM_BoostSpsc_Throughput, 64)->UseRealTime();
BENCHMARK_TEMPLATE(BM_BoostSpsc_Throughput, 512)->UseRealTime();
BENCHMARK_TEMPLATE(BM_BoostSpsc_Throughput, 4096)->UseRealTime();

// --- SPSC round trip (8-byte ping, 8-byte pong) ---------------------------------------------------

void BM_SpscRing_RoundTrip(benchmark::State& state) {
  const SpscRing::Options options{1 << 16, 0, 0};
  Region a(SpscRing::required_bytes(options)), b(SpscRing::required_bytes(options));
  auto ping_w = SpscRing::create(a.data, a.bytes, options);
  auto ping_r = SpscRing::attach(a.data, a.bytes);
  auto pong_w = SpscRing::create(b.data, b.bytes, options);
  auto pong_r = SpscRing::attach(b.data, b.bytes);
  std::atomic<bool> stop{false};
  std::thread echo([&] {
    pin(1);
    std::uint64_t v = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      if (ping_r->try_read([&](std::span<const std::byte> s) { std::memcpy(&v, s.data(), 8); }) ==
          RingResult::kOk) {
        while (pong_w->try_write(std::as_bytes(std::span(&v, 1))) != RingResult::kOk) {
        }
      }
    }
  });
  pin(0);
  std::uint64_t v = 0;
  for (auto _ : state) {
    while (ping_w->try_write(std::as_bytes(std::span(&v, 1))) != RingResult::kOk) {
    }
    while (pong_r->try_read([&](std::span<const std::byte> s) { std::memcpy(&v, s.data(), 8); }) !=
           RingResult::kOk) {
    }
    ++v;
  }
  stop = true;
  echo.join();
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SpscRing_RoundTrip)->UseRealTime();

void BM_BoostSpsc_RoundTrip(benchmark::State& state) {
  boost::lockfree::spsc_queue<std::uint64_t> ping(4096), pong(4096);
  std::atomic<bool> stop{false};
  std::thread echo([&] {
    pin(1);
    std::uint64_t v = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      if (ping.pop(v)) {
        while (!pong.push(v)) {
        }
      }
    }
  });
  pin(0);
  std::uint64_t v = 0;
  for (auto _ : state) {
    while (!ping.push(v)) {
    }
    while (!pong.pop(v)) {
    }
    ++v;
  }
  stop = true;
  echo.join();
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_BoostSpsc_RoundTrip)->UseRealTime();

// --- MPMC: P producers and P consumers move kItems 16-byte items ----------------------------------

constexpr std::uint64_t kMpmcItems = 400'000;
struct Item16 {
  std::uint64_t a, b;
};

template <typename Push, typename Pop>
void run_mpmc(int pairs, Push push, Pop pop) {
  std::atomic<std::uint64_t> consumed{0};
  std::vector<std::thread> threads;
  const std::uint64_t per_producer = kMpmcItems / pairs;
  for (int p = 0; p < pairs; ++p) {
    threads.emplace_back([&, p] {
      pin(2 * p);
      for (std::uint64_t i = 0; i < per_producer;) {
        if (push(Item16{i, static_cast<std::uint64_t>(p)})) ++i; else std::this_thread::yield();
      }
    });
    threads.emplace_back([&, p] {
      pin(2 * p + 1);
      Item16 item;
      while (consumed.load(std::memory_order_relaxed) < per_producer * pairs) {
        if (pop(item)) consumed.fetch_add(1, std::memory_order_relaxed); else std::this_thread::yield();
      }
    });
  }
  for (auto& t : threads) t.join();
}

void BM_MpmcQueue(benchmark::State& state) {
  const int pairs = static_cast<int>(state.range(0));
  const MpmcQueue<Item16>::Options options{4096, 0};
  Region region(MpmcQueue<Item16>::required_bytes(options));
  auto q = MpmcQueue<Item16>::create(region.data, region.bytes, options);
  for (auto _ : state) {
    run_mpmc(pairs, [&](const Item16& v) { return q->try_push(v) == RingResult::kOk; },
             [&](Item16& v) { return q->try_pop(v) == RingResult::kOk; });
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(kMpmcItems / pairs * pairs));
}
BENCHMARK(BM_MpmcQueue)->Arg(1)->Arg(2)->Arg(4)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_BoostQueue(benchmark::State& state) {
  const int pairs = static_cast<int>(state.range(0));
  boost::lockfree::queue<Item16> q(4096);
  for (auto _ : state) {
    run_mpmc(pairs, [&](const Item16& v) { return q.bounded_push(v); },
             [&](Item16& v) { return q.pop(v); });
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(kMpmcItems / pairs * pairs));
}
BENCHMARK(BM_BoostQueue)->Arg(1)->Arg(2)->Arg(4)->UseRealTime()->Unit(benchmark::kMillisecond);

// --- Broadcast: 1 writer to R readers, 64-byte records, every reader gets every record -------------

constexpr std::uint64_t kBroadcastRecords = 400'000;

BroadcastOptions broadcast_options(std::uint32_t readers, std::uint32_t publishers) {
  BroadcastOptions o;
  o.capacity = kRingBytes;
  o.max_readers = readers;
  o.max_publishers = publishers;
  return o;
}

void BM_BroadcastRing_Lossless(benchmark::State& state) {
  const int readers = static_cast<int>(state.range(0));
  const BroadcastOptions options = broadcast_options(8, 1);
  Region region(BroadcastLayout::required_bytes(options));
  if (!BroadcastLayout::create(region.data, region.bytes, options).ok()) std::abort();
  auto writer = BroadcastWriter::attach(region.data, region.bytes, 1);
  for (auto _ : state) {
    std::vector<std::thread> threads;
    std::atomic<int> ready{0};
    for (int r = 0; r < readers; ++r) {
      threads.emplace_back([&, r] {
        pin(1 + r);
        auto reader = BroadcastReader::register_reader(region.data, region.bytes, 1 + r);
        ++ready;
        std::byte out[64 * 1024];
        std::uint64_t got = 0;
        while (got < kBroadcastRecords) {
          if (reader->try_read(std::span(out, reader->max_record()), nullptr) == RingResult::kOk) ++got;
          else std::this_thread::yield();
        }
        reader->unregister();
      });
    }
    while (ready.load() < readers) std::this_thread::yield();
    pin(0);
    std::byte record[64] = {};
    for (std::uint64_t i = 0; i < kBroadcastRecords;) {
      if (writer->try_write(record) == RingResult::kOk) ++i; else std::this_thread::yield();
    }
    for (auto& t : threads) t.join();
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(kBroadcastRecords));
  state.counters["deliveries/s"] = benchmark::Counter(
      static_cast<double>(state.iterations() * kBroadcastRecords * readers), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_BroadcastRing_Lossless)->Arg(1)->Arg(2)->Arg(4)->UseRealTime()->Unit(benchmark::kMillisecond);

// Several writers (threads) into one lossless reader, 64-byte records: the cost of the shared
// claim (one 16-byte CAS per record) beside one writer (plain stores).
void BM_BroadcastRing_Publishers(benchmark::State& state) {
  const int writers = static_cast<int>(state.range(0));
  const BroadcastOptions options = broadcast_options(2, static_cast<std::uint32_t>(std::max(writers, 2)));
  Region region(BroadcastLayout::required_bytes(options));
  if (!BroadcastLayout::create(region.data, region.bytes, options).ok()) std::abort();
  const std::uint64_t per_writer = kBroadcastRecords / static_cast<std::uint64_t>(writers);
  for (auto _ : state) {
    auto reader = BroadcastReader::register_reader(region.data, region.bytes, 100);
    std::vector<std::thread> threads;
    for (int w = 0; w < writers; ++w) {
      threads.emplace_back([&, w] {
        pin(w % 2);  // writers share the machine's cores with the reader
        auto writer = BroadcastWriter::attach(region.data, region.bytes, 1 + w);
        std::byte record[64] = {};
        for (std::uint64_t i = 0; i < per_writer;) {
          if (writer->try_write(record) == RingResult::kOk) ++i; else std::this_thread::yield();
        }
        writer->detach();
      });
    }
    pin(1);
    std::byte out[64];
    for (std::uint64_t got = 0; got < per_writer * writers;) {
      if (reader->try_read(out, nullptr) == RingResult::kOk) ++got; else std::this_thread::yield();
    }
    for (auto& t : threads) t.join();
    reader->unregister();
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(per_writer * writers));
}
BENCHMARK(BM_BroadcastRing_Publishers)->Arg(1)->Arg(2)->Arg(4)->UseRealTime()->Unit(benchmark::kMillisecond);

// Baseline: one boost spsc_queue per reader, the writer pushes every record into each.
void BM_BoostSpscFanout(benchmark::State& state) {
  const int readers = static_cast<int>(state.range(0));
  using Item = std::array<std::byte, 64>;
  for (auto _ : state) {
    std::vector<std::unique_ptr<boost::lockfree::spsc_queue<Item>>> queues;
    for (int r = 0; r < readers; ++r) {
      queues.push_back(std::make_unique<boost::lockfree::spsc_queue<Item>>(kRingBytes / 64));
    }
    std::vector<std::thread> threads;
    for (int r = 0; r < readers; ++r) {
      threads.emplace_back([&, r] {
        pin(1 + r);
        Item item;
        std::uint64_t got = 0;
        while (got < kBroadcastRecords) {
          if (queues[r]->pop(item)) ++got; else std::this_thread::yield();
        }
      });
    }
    pin(0);
    Item record{};
    for (std::uint64_t i = 0; i < kBroadcastRecords; ++i) {
      for (auto& q : queues) {
        while (!q->push(record)) std::this_thread::yield();
      }
    }
    for (auto& t : threads) t.join();
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(kBroadcastRecords));
  state.counters["deliveries/s"] = benchmark::Counter(
      static_cast<double>(state.iterations() * kBroadcastRecords * readers), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_BoostSpscFanout)->Arg(1)->Arg(2)->Arg(4)->UseRealTime()->Unit(benchmark::kMillisecond);

// --- Broadcast copy vs zero-copy: 1 writer, 1 lossless reader, records of `size` bytes ------------
// Both sides do the same work on the message: the writer fills it (memset), the reader looks at
// one byte per cache line. Copying: fill a local buffer, try_write (copy in), try_read (copy out),
// look. Zero-copy: fill the claim in place, commit; view in place, look, finish_view.

constexpr std::uint64_t kBytesPerRun = 64 << 20;

std::uint64_t look_at(std::span<const std::byte> message) {
  std::uint64_t sum = 0;
  for (std::size_t i = 0; i < message.size(); i += 64) sum += static_cast<std::uint8_t>(message[i]);
  return sum;
}

template <bool kZeroCopy>
void BM_BroadcastRing_BySize(benchmark::State& state) {
  const auto size = static_cast<std::size_t>(state.range(0));
  const std::uint64_t records = kBytesPerRun / size;
  const BroadcastOptions options = broadcast_options(2, 1);
  Region region(BroadcastLayout::required_bytes(options));
  if (!BroadcastLayout::create(region.data, region.bytes, options).ok()) std::abort();
  auto writer = BroadcastWriter::attach(region.data, region.bytes, 1);
  std::uint64_t checksum = 0;
  for (auto _ : state) {
    std::atomic<bool> ready{false};
    std::thread reader_thread([&] {
      pin(1);
      auto reader = BroadcastReader::register_reader(region.data, region.bytes, 1);
      ready = true;
      std::vector<std::byte> out(size);
      for (std::uint64_t got = 0; got < records;) {
        RingResult r;
        BroadcastRecordInfo info;
        if constexpr (kZeroCopy) {
          std::span<const std::byte> view;
          r = reader->try_view(&view, &info);
          if (r == RingResult::kOk) {
            checksum += look_at(view);
            r = reader->finish_view();
          }
        } else {
          r = reader->try_read(out, &info);
          if (r == RingResult::kOk) checksum += look_at(std::span(out.data(), info.bytes));
        }
        if (r == RingResult::kOk) ++got; else std::this_thread::yield();
      }
      reader->unregister();
    });
    while (!ready.load()) std::this_thread::yield();
    pin(0);
    std::vector<std::byte> message(size);
    for (std::uint64_t i = 0; i < records;) {
      if constexpr (kZeroCopy) {
        const BroadcastWriter::Claim claim = writer->try_claim(size);
        if (claim.result != RingResult::kOk) {
          std::this_thread::yield();
          continue;
        }
        std::memset(claim.buffer.data(), static_cast<int>(i), size);
        writer->commit(size);
        ++i;
      } else {
        std::memset(message.data(), static_cast<int>(i), size);
        while (writer->try_write(message) != RingResult::kOk) std::this_thread::yield();
        ++i;
      }
    }
    reader_thread.join();
  }
  benchmark::DoNotOptimize(checksum);
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(records));
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(records * size));
}
BENCHMARK_TEMPLATE(BM_BroadcastRing_BySize, false)->Arg(64)->Arg(4096)->Arg(65536)->UseRealTime()
    ->Unit(benchmark::kMillisecond)->Name("BM_BroadcastRing_Copy");
BENCHMARK_TEMPLATE(BM_BroadcastRing_BySize, true)->Arg(64)->Arg(4096)->Arg(65536)->UseRealTime()
    ->Unit(benchmark::kMillisecond)->Name("BM_BroadcastRing_ZeroCopy");

}  // namespace

BENCHMARK_MAIN();
