// Time-bounded multi-thread runs of every ring with both ends in one process (so ThreadSanitizer
// sees them): per-writer sequence numbers and checksums, no loss, no duplicate, no torn record.
// SHMRING_STRESS_MS sets the duration of each run (default 700 ms).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "ring_test_util.h"
#include "shmring/queue/broadcast_ring.h"
#include "shmring/queue/mpmc_queue.h"
#include "shmring/queue/spsc_ring.h"

namespace shmring {
namespace {

using namespace std::chrono_literals;
using testing::decode_test_record;
using testing::fill_test_record;
using testing::HeapRegion;
using testing::test_record_size;

std::chrono::milliseconds run_time() {
  if (const char* env = std::getenv("SHMRING_STRESS_MS")) return std::chrono::milliseconds(std::atoi(env));
  return 700ms;
}

class Deadline {
 public:
  Deadline() : end_(std::chrono::steady_clock::now() + run_time()) {}
  bool passed() const { return std::chrono::steady_clock::now() >= end_; }

 private:
  std::chrono::steady_clock::time_point end_;
};

TEST(RingStress, SpscNoLossNoDuplicateNoTear) {
  const SpscRing::Options options{4096, 300, 0};
  HeapRegion region(SpscRing::required_bytes(options));
  auto writer = SpscRing::create(region.data(), region.size(), options);
  ASSERT_TRUE(writer.ok());
  auto reader = SpscRing::attach(region.data(), region.size());
  ASSERT_TRUE(reader.ok());
  std::atomic<std::uint64_t> written{0};
  std::thread producer([&] {
    Deadline deadline;
    std::uint64_t seq = 0;
    std::vector<std::byte> buf(300);
    while (!deadline.passed()) {
      const std::size_t n = test_record_size(seq, 300);
      if (seq % 3 == 0) {  // zero-copy path
        SpscRing::Claim claim = writer->try_claim(n);
        if (claim.result == RingResult::kFull) { std::this_thread::yield(); continue; }
        ASSERT_EQ(claim.result, RingResult::kOk);
        fill_test_record(claim.buffer, 0, seq);
        writer->commit();
      } else {
        fill_test_record(std::span(buf).first(n), 0, seq);
        const RingResult r = writer->try_write(std::span(buf).first(n));
        if (r == RingResult::kFull) { std::this_thread::yield(); continue; }
        ASSERT_EQ(r, RingResult::kOk);
      }
      ++seq;
    }
    written = seq;
    writer->close();
  });
  std::uint64_t expect = 0;
  std::uint64_t bad = 0;
  for (;;) {
    const bool closed = reader->closed();
    const ReadBatch batch = reader->read([&](std::span<const std::byte> rec) {
      const auto d = decode_test_record(rec);
      if (!d.valid || d.sequence != expect) ++bad;
      expect = d.sequence + 1;
    }, 64);
    ASSERT_NE(batch.result, RingResult::kCorrupt);
    if (batch.records == 0) {
      if (closed) break;
      std::this_thread::yield();
    }
  }
  producer.join();
  EXPECT_EQ(bad, 0u);
  EXPECT_EQ(expect, written.load());
  EXPECT_GT(written.load(), 1000u);
  RecordProperty("records", std::to_string(written.load()));
}

TEST(RingStress, MpmcEveryItemExactlyOnceInPerProducerOrder) {
  constexpr int kProducers = 2;
  constexpr int kConsumers = 2;
  const MpmcQueue<>::Options options{64, 40, 0};
  HeapRegion region(MpmcQueue<>::required_bytes(options));
  auto created = MpmcQueue<>::create(region.data(), region.size(), options);
  ASSERT_TRUE(created.ok());
  constexpr std::uint64_t kMinimumPerProducer = 2000;
  std::vector<std::uint64_t> produced(kProducers);
  std::atomic<int> producers_done{0};
  std::vector<std::vector<std::uint8_t>> seen(kProducers);
  for (auto& s : seen) s.assign(1 << 24, 0);
  std::atomic<std::uint64_t> bad{0};
  std::vector<std::thread> threads;
  for (int p = 0; p < kProducers; ++p) {
    threads.emplace_back([&, p] {
      auto q = MpmcQueue<>::attach(region.data(), region.size());
      Deadline deadline;
      std::uint64_t seq = 0;
      std::byte buf[40];
      // Runs for the stress duration, but always long enough to write kMinimumPerProducer items:
      // on a loaded machine a thread may barely be scheduled before the deadline.
      while ((!deadline.passed() || seq < kMinimumPerProducer) && seq < (1u << 24)) {
        const std::size_t n = test_record_size(seq, 40);
        fill_test_record(std::span(buf, n), p, seq);
        if (seq % 4 == 0) {  // two-phase
          const MpmcQueue<>::Claim c = q->try_claim();
          if (c.result == RingResult::kFull) { std::this_thread::yield(); continue; }
          std::memcpy(c.buffer.data(), buf, n);
          if (q->commit(c, n) != RingResult::kOk) ++bad;
        } else {
          const RingResult r = q->try_write(std::span(buf, n));
          if (r == RingResult::kFull) { std::this_thread::yield(); continue; }
          if (r != RingResult::kOk) ++bad;
        }
        ++seq;
      }
      produced[p] = seq;
      ++producers_done;
    });
  }
  for (int c = 0; c < kConsumers; ++c) {
    threads.emplace_back([&] {
      auto q = MpmcQueue<>::attach(region.data(), region.size());
      std::vector<std::int64_t> last(kProducers, -1);
      std::byte out[40];
      for (;;) {
        const bool done = producers_done.load() == kProducers;
        std::size_t n = 0;
        const RingResult r = q->try_read(out, &n);
        if (r == RingResult::kEmpty) {
          if (done) break;
          std::this_thread::yield();
          continue;
        }
        const auto d = decode_test_record(std::span<const std::byte>(out, n));
        if (r != RingResult::kOk || !d.valid || d.writer >= kProducers || d.sequence >= (1u << 24)) {
          ++bad;
          continue;
        }
        if (static_cast<std::int64_t>(d.sequence) <= last[d.writer]) ++bad;  // per-producer order
        last[d.writer] = static_cast<std::int64_t>(d.sequence);
        seen[d.writer][d.sequence]++;  // each index written by one consumer only (exactly once)
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(bad.load(), 0u);
  for (int p = 0; p < kProducers; ++p) {
    std::uint64_t missing = 0, duplicated = 0;
    for (std::uint64_t s = 0; s < produced[p]; ++s) {
      if (seen[p][s] == 0) ++missing;
      if (seen[p][s] > 1) ++duplicated;
    }
    EXPECT_EQ(missing, 0u) << "producer " << p;
    EXPECT_EQ(duplicated, 0u) << "producer " << p;
    EXPECT_GE(produced[p], kMinimumPerProducer);
  }
}

TEST(RingStress, MpmcRecoveryOfAbandonedClaims) {
  // One producer abandons every 97th claim (as if it died holding it); a monitor skips tickets that
  // stay stalled across two samples. Every committed item arrives exactly once; every abandoned
  // one is skipped, and its late commit is fenced.
  const MpmcQueue<>::Options options{16, 24, 0};
  HeapRegion region(MpmcQueue<>::required_bytes(options));
  auto q = MpmcQueue<>::create(region.data(), region.size(), options);
  ASSERT_TRUE(q.ok());
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> committed{0}, abandoned{0}, received{0}, bad{0};
  std::vector<MpmcQueue<>::Claim> dead;
  std::mutex dead_mutex;
  std::set<std::uint64_t> dead_tickets;  // the "liveness" evidence the transport would have
  std::thread producer([&] {
    auto p = MpmcQueue<>::attach(region.data(), region.size());
    Deadline deadline;
    std::uint64_t seq = 0;
    while (!deadline.passed()) {
      const MpmcQueue<>::Claim c = p->try_claim();
      if (c.result != RingResult::kOk) { std::this_thread::yield(); continue; }
      if (++seq % 97 == 0) {
        dead.push_back(c);
        std::lock_guard lock(dead_mutex);
        dead_tickets.insert(c.ticket);
        ++abandoned;
        continue;
      }
      fill_test_record(c.buffer.first(24), 0, seq);
      if (p->commit(c, 24) == RingResult::kOk) ++committed; else ++bad;
    }
    stop = true;
  });
  std::thread monitor([&] {
    auto m = MpmcQueue<>::attach(region.data(), region.size());
    std::optional<std::uint64_t> previous;
    while (!stop.load() || m->size_approx() > 0) {
      const std::optional<std::uint64_t> now = m->stalled_producer_ticket();
      bool owner_dead = false;
      if (now) {
        std::lock_guard lock(dead_mutex);
        owner_dead = dead_tickets.count(*now) != 0;
      }
      if (now && previous == now && owner_dead) m->skip_stalled(*now);
      previous = now;
      std::this_thread::sleep_for(200us);
    }
  });
  std::thread consumer([&] {
    auto c = MpmcQueue<>::attach(region.data(), region.size());
    std::byte out[24];
    while (!stop.load() || c->size_approx() > 0) {
      std::size_t n = 0;
      const RingResult r = c->try_read(out, &n);
      if (r == RingResult::kOk) {
        if (!decode_test_record(std::span<const std::byte>(out, n)).valid) ++bad;
        ++received;
      } else if (r != RingResult::kEmpty) {
        ++bad;
      } else {
        std::this_thread::yield();
      }
    }
  });
  producer.join();
  monitor.join();
  consumer.join();
  EXPECT_EQ(bad.load(), 0u);
  EXPECT_EQ(received.load(), committed.load());
  EXPECT_EQ(q->skipped(), abandoned.load());
  for (const auto& c : dead) EXPECT_EQ(q->commit(c, 0), RingResult::kFenced);
  EXPECT_GT(abandoned.load(), 3u);
}

TEST(RingStress, BroadcastLossyReadersCountLossExactlyAndNeverTear) {
  const BroadcastRing::Options options{4096, 200, false, 0, 0};
  HeapRegion region(BroadcastRing::required_bytes(options));
  auto writer = BroadcastRing::create(region.data(), region.size(), options);
  ASSERT_TRUE(writer.ok());
  constexpr int kReaders = 2;
  std::vector<BroadcastReader> readers;
  for (int i = 0; i < kReaders; ++i) readers.push_back(*BroadcastReader::attach(region.data(), region.size()));
  std::atomic<std::uint64_t> written{0};
  std::thread producer([&] {
    Deadline deadline;
    std::uint64_t seq = 0;
    std::byte buf[200];
    while (!deadline.passed()) {
      const std::size_t n = test_record_size(seq, 200);
      fill_test_record(std::span(buf, n), 0, seq);
      ASSERT_EQ(writer->try_write(std::span(buf, n)), RingResult::kOk);  // never waits
      ++seq;
      if (seq % 64 == 0) std::this_thread::yield();
    }
    written = seq;
    writer->close();
  });
  std::vector<std::thread> threads;
  std::vector<std::uint64_t> got(kReaders), bad(kReaders), laps(kReaders), lost(kReaders);
  for (int i = 0; i < kReaders; ++i) {
    threads.emplace_back([&, i] {
      BroadcastReader& r = readers[i];
      std::byte out[200];
      std::int64_t last = -1;
      std::uint64_t gaps = 0;
      for (std::uint64_t k = 0;; ++k) {
        const bool closed = r.closed();
        std::size_t n = 0;
        const RingResult res = r.try_read(out, &n);
        if (res == RingResult::kEmpty) {
          if (closed) break;
          std::this_thread::yield();
          continue;
        }
        if (res == RingResult::kLapped) continue;
        const auto d = decode_test_record(std::span<const std::byte>(out, n));
        if (res != RingResult::kOk || !d.valid || static_cast<std::int64_t>(d.sequence) <= last) {
          ++bad[i];
          continue;
        }
        gaps += d.sequence - static_cast<std::uint64_t>(last + 1);
        last = static_cast<std::int64_t>(d.sequence);
        ++got[i];
        if (i == 1 && k % 1000 == 0) std::this_thread::sleep_for(100us);  // a slow reader
      }
      lost[i] = r.lost_records();
      laps[i] = r.lapped_count();
      EXPECT_EQ(gaps, r.lost_records()) << "reader " << i;
    });
  }
  producer.join();
  for (auto& t : threads) t.join();
  for (int i = 0; i < kReaders; ++i) {
    EXPECT_EQ(bad[i], 0u) << "reader " << i;
    EXPECT_EQ(got[i] + lost[i], written.load()) << "reader " << i;
  }
  RecordProperty("laps", std::to_string(laps[1]));
}

TEST(RingStress, BroadcastLosslessRegisteredReadersMissNothing) {
  const BroadcastRing::Options options{2048, 120, true, 4, 0};
  HeapRegion region(BroadcastRing::required_bytes(options));
  auto writer = BroadcastRing::create(region.data(), region.size(), options);
  ASSERT_TRUE(writer.ok());
  constexpr int kReaders = 2;
  std::vector<BroadcastReader> readers;
  for (int i = 0; i < kReaders; ++i) {
    readers.push_back(*BroadcastReader::register_reader(region.data(), region.size(), 100 + i));
  }
  std::atomic<std::uint64_t> written{0};
  std::thread producer([&] {
    Deadline deadline;
    std::uint64_t seq = 0;
    std::byte buf[120];
    while (!deadline.passed()) {
      const std::size_t n = test_record_size(seq, 120);
      fill_test_record(std::span(buf, n), 0, seq);
      const RingResult r = writer->try_write(std::span(buf, n));
      if (r == RingResult::kFull) { std::this_thread::yield(); continue; }
      ASSERT_EQ(r, RingResult::kOk);
      ++seq;
    }
    written = seq;
    writer->close();
  });
  std::vector<std::thread> threads;
  std::vector<std::uint64_t> got(kReaders), bad(kReaders);
  for (int i = 0; i < kReaders; ++i) {
    threads.emplace_back([&, i] {
      BroadcastReader& r = readers[i];
      std::byte out[120];
      std::uint64_t expect = 0;
      for (;;) {
        const bool closed = r.closed();
        std::size_t n = 0;
        const RingResult res = r.try_read(out, &n);
        if (res == RingResult::kEmpty) {
          if (closed) break;
          std::this_thread::yield();
          continue;
        }
        const auto d = decode_test_record(std::span<const std::byte>(out, n));
        if (res != RingResult::kOk || !d.valid || d.sequence != expect) ++bad[i];
        expect = d.sequence + 1;
        ++got[i];
      }
      r.unregister();
    });
  }
  producer.join();
  for (auto& t : threads) t.join();
  for (int i = 0; i < kReaders; ++i) {
    EXPECT_EQ(bad[i], 0u);
    EXPECT_EQ(got[i], written.load());
    EXPECT_EQ(readers[i].lost_records(), 0u);
  }
}

TEST(RingStress, BroadcastReadersJoinAndLeaveWhileTheWriterRuns) {
  // Registration racing the writer's scans (SYNC(bcast_join)): a registered reader never loses a
  // record from its start on.
  const BroadcastRing::Options options{1024, 64, true, 2, 0};
  HeapRegion region(BroadcastRing::required_bytes(options));
  auto writer = BroadcastRing::create(region.data(), region.size(), options);
  ASSERT_TRUE(writer.ok());
  std::atomic<bool> stop{false};
  std::thread producer([&] {
    std::uint64_t seq = 0;
    std::byte buf[64];
    while (!stop.load()) {
      fill_test_record(std::span(buf, 32), 0, seq);
      if (writer->try_write(std::span(buf, 32)) == RingResult::kOk) ++seq; else std::this_thread::yield();
    }
  });
  Deadline deadline;
  std::uint64_t bad = 0, sessions = 0;
  std::uint64_t token = 1;
  while (!deadline.passed()) {
    auto r = BroadcastReader::register_reader(region.data(), region.size(), token++);
    ASSERT_TRUE(r.ok()) << r.status();
    ++sessions;
    std::int64_t last = -1;
    std::byte out[64];
    for (int i = 0; i < 200;) {
      std::size_t n = 0;
      const RingResult res = r->try_read(out, &n);
      if (res == RingResult::kEmpty) { std::this_thread::yield(); continue; }
      const auto d = decode_test_record(std::span<const std::byte>(out, n));
      if (res != RingResult::kOk || !d.valid || (last >= 0 && d.sequence != std::uint64_t(last + 1))) ++bad;
      last = static_cast<std::int64_t>(d.sequence);
      ++i;
    }
    r->unregister();
  }
  stop = true;
  producer.join();
  EXPECT_EQ(bad, 0u);
  EXPECT_GT(sessions, 3u);
}

}  // namespace
}  // namespace shmring
