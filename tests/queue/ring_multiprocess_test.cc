// Writer and readers in separate processes over a SharedMemory segment: per-writer sequence
// numbers and checksums (no loss, duplicate or tear), at least 10 million records per run in the
// plain build (fewer under sanitizers, see scaled()). And the hostile-memory run: a process scribbles
// random bytes over a live ring while the others keep using it; nobody may crash or touch memory
// outside the region (the region ends at a PROT_NONE guard page).
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "ring_test_util.h"
#include "shmring/core/shared_memory.h"
#include "shmring/queue/broadcast_layout.h"
#include "shmring/queue/broadcast_publishers.h"
#include "shmring/queue/broadcast_reader.h"
#include "shmring/queue/broadcast_reader_slots.h"
#include "shmring/queue/broadcast_writer.h"
#include "shmring/queue/mpmc_queue.h"
#include "shmring/queue/spsc_ring.h"
#include "test_support.h"

namespace shmring {
namespace {

using namespace std::chrono_literals;
using testing::decode_test_record;
using testing::fill_test_record;
using testing::fork_child;
using testing::scaled;
using testing::test_record_size;
using testing::unique_key;
using testing::wait_child;

// Shared scoreboard after the ring in the segment.
struct alignas(128) Board {
  std::atomic<std::uint64_t> ready;
  std::atomic<std::uint64_t> done;
  std::atomic<std::uint64_t> count[8];
  std::atomic<std::uint64_t> sum[8];
  std::atomic<std::uint64_t> lost[8];
};

struct Segment {
  explicit Segment(std::size_t bytes) : ring_bytes(align_up(bytes, 4096)), shm(unique_key("ring")) {
    EXPECT_TRUE(shm.create(this->ring_bytes + sizeof(Board))) << shm.error_string();
  }
  std::size_t ring_bytes;
  SharedMemory shm;
  std::string key() const { return shm.key(); }
};

// In a child: attaches its own SharedMemory by key (a real second attachment).
struct Attached {
  Attached(const std::string& key, std::size_t bytes, AccessMode mode = AccessMode::kReadWrite)
      : shm(key), ring_bytes(bytes) {
    ok = shm.attach(mode);
    if (!ok) std::fprintf(stderr, "attach %s: %s\n", key.c_str(), shm.error_string().c_str());
  }
  void* ring() { return shm.data(); }
  Board* board() {
    return reinterpret_cast<Board*>(static_cast<std::byte*>(shm.data()) + ring_bytes);
  }
  SharedMemory shm;
  std::size_t ring_bytes;
  bool ok = false;
};

Board* board_of(Segment& s) {
  return reinterpret_cast<Board*>(static_cast<std::byte*>(s.shm.data()) + s.ring_bytes);
}

void wait_ready(Board* b, std::uint64_t n) {
  while (b->ready.load() < n) std::this_thread::yield();
}

void expect_children_ok(const std::vector<pid_t>& pids, std::chrono::milliseconds timeout = 120s) {
  for (pid_t pid : pids) {
    const testing::ChildResult r = wait_child(pid, timeout);
    EXPECT_TRUE(r.ok()) << "child " << pid << " exited=" << r.exited << " signaled=" << r.signaled
                        << " timed_out=" << r.timed_out << " code=" << r.code;
  }
}

TEST(RingMultiprocess, SpscTenMillionRecords) {
  const std::uint64_t records = scaled(10'000'000);
  const SpscRing::Options options{1 << 16, 64, 0};
  Segment seg(SpscRing::required_bytes(options));
  ASSERT_TRUE(SpscRing::create(seg.shm.data(), seg.ring_bytes, options).ok());
  const std::string key = seg.key();
  const std::size_t ring_bytes = seg.ring_bytes;
  std::vector<pid_t> pids;
  pids.push_back(fork_child([&] {  // reader
    Attached a(key, ring_bytes);
    auto ring = SpscRing::attach(a.ring(), ring_bytes);
    if (!a.ok || !ring.ok()) return 2;
    a.board()->ready++;
    std::uint64_t expect = 0, bad = 0;
    while (expect < records) {
      const ReadBatch b = ring->read([&](std::span<const std::byte> rec) {
        const auto d = decode_test_record(rec);
        if (!d.valid || d.sequence != expect) ++bad;
        expect = d.sequence + 1;
      }, 256);
      if (b.result == RingResult::kCorrupt) return 3;
      if (b.records == 0) std::this_thread::yield();
    }
    a.board()->count[0] = expect;
    return bad == 0 ? 0 : 4;
  }));
  pids.push_back(fork_child([&] {  // writer
    Attached a(key, ring_bytes);
    auto ring = SpscRing::attach(a.ring(), ring_bytes);
    if (!a.ok || !ring.ok()) return 2;
    wait_ready(a.board(), 1);
    for (std::uint64_t seq = 0; seq < records;) {
      SpscRing::Claim c = ring->try_claim(test_record_size(seq, 64));
      if (c.result == RingResult::kFull) { std::this_thread::yield(); continue; }
      if (c.result != RingResult::kOk) return 3;
      fill_test_record(c.buffer, 0, seq);
      ring->commit();
      ++seq;
    }
    return 0;
  }));
  expect_children_ok(pids);
  EXPECT_EQ(board_of(seg)->count[0].load(), records);
}

TEST(RingMultiprocess, MpmcTwoProducersTwoConsumers) {
  const std::uint64_t per_producer = scaled(5'000'000);
  const MpmcQueue<>::Options options{1024, 32, 0};
  Segment seg(MpmcQueue<>::required_bytes(options));
  ASSERT_TRUE(MpmcQueue<>::create(seg.shm.data(), seg.ring_bytes, options).ok());
  const std::string key = seg.key();
  const std::size_t ring_bytes = seg.ring_bytes;
  std::vector<pid_t> pids;
  for (int c = 0; c < 2; ++c) {
    pids.push_back(fork_child([&, c] {
      Attached a(key, ring_bytes);
      auto q = MpmcQueue<>::attach(a.ring(), ring_bytes);
      if (!a.ok || !q.ok()) return 2;
      a.board()->ready++;
      std::int64_t last[2] = {-1, -1};
      std::uint64_t count = 0, sum = 0, bad = 0;
      std::byte out[32];
      for (;;) {
        const bool done = a.board()->done.load() == 2;
        std::size_t n = 0;
        const RingResult r = q->try_read(out, &n);
        if (r == RingResult::kEmpty) {
          if (done) break;
          std::this_thread::yield();
          continue;
        }
        const auto d = decode_test_record(std::span<const std::byte>(out, n));
        if (r != RingResult::kOk || !d.valid || d.writer > 1 ||
            static_cast<std::int64_t>(d.sequence) <= last[d.writer]) {
          ++bad;
          continue;
        }
        last[d.writer] = static_cast<std::int64_t>(d.sequence);
        ++count;
        sum += d.sequence * 2 + d.writer;
      }
      a.board()->count[c] = count;
      a.board()->sum[c] = sum;
      return bad == 0 ? 0 : 4;
    }));
  }
  for (int p = 0; p < 2; ++p) {
    pids.push_back(fork_child([&, p] {
      Attached a(key, ring_bytes);
      auto q = MpmcQueue<>::attach(a.ring(), ring_bytes);
      if (!a.ok || !q.ok()) return 2;
      wait_ready(a.board(), 2);
      std::byte buf[32];
      for (std::uint64_t seq = 0; seq < per_producer;) {
        const std::size_t n = test_record_size(seq, 32);
        fill_test_record(std::span(buf, n), p, seq);
        const RingResult r = q->try_write(std::span(buf, n));
        if (r == RingResult::kFull) { std::this_thread::yield(); continue; }
        if (r != RingResult::kOk) return 3;
        ++seq;
      }
      a.board()->done++;
      return 0;
    }));
  }
  expect_children_ok(pids);
  Board* b = board_of(seg);
  const std::uint64_t n = per_producer;
  // sum over producers p and sequences s of 2s + p
  const std::uint64_t expected_sum = 2 * (n * (n - 1) / 2) * 2 + n;
  EXPECT_EQ(b->count[0] + b->count[1], 2 * n);
  EXPECT_EQ(b->sum[0] + b->sum[1], expected_sum);
}

// Two writer processes, two reader processes (lossless: both registered; lossy: one maps the
// segment read-only). Every record intact, each writer's records in its order, nothing lost when
// lossless, the loss counted exactly when lossy.
void broadcast_run(bool lossless) {
  const std::uint64_t records = scaled(10'000'000) / 2;  // per writer
  BroadcastOptions options;
  options.capacity = 1 << 16;
  options.max_record = 64;
  options.max_readers = 4;
  options.max_publishers = 2;
  Segment seg(BroadcastLayout::required_bytes(options));
  ASSERT_TRUE(BroadcastLayout::create(seg.shm.data(), seg.ring_bytes, options).ok());
  const std::string key = seg.key();
  const std::size_t ring_bytes = seg.ring_bytes;
  constexpr int kReaders = 2;
  constexpr int kWriters = 2;
  std::vector<pid_t> pids;
  for (int i = 0; i < kReaders; ++i) {
    pids.push_back(fork_child([&, i] {
      // Lossy reader 1 maps the segment read-only: it must never write the ring.
      const AccessMode mode = !lossless && i == 1 ? AccessMode::kReadOnly : AccessMode::kReadWrite;
      Attached a(key, ring_bytes, mode);
      if (!a.ok) return 2;
      absl::StatusOr<BroadcastReader> r =
          lossless ? BroadcastReader::register_reader(a.ring(), ring_bytes, 1000 + i)
                   : BroadcastReader::attach(a.shm.const_data(), ring_bytes);
      if (!r.ok()) return 2;
      Attached board_view(key, ring_bytes);  // the scoreboard needs write access
      board_view.board()->ready++;
      std::int64_t last[kWriters] = {-1, -1};
      std::uint64_t got = 0, bad = 0;
      std::byte out[64];
      for (std::uint64_t k = 0;; ++k) {
        const bool closed = r->closed();
        BroadcastRecordInfo info;
        const RingResult res = r->try_read(out, &info);
        if (res == RingResult::kEmpty) {
          if (closed) break;
          std::this_thread::yield();
          continue;
        }
        if (res == RingResult::kLapped && !lossless) continue;
        const auto d = decode_test_record(std::span<const std::byte>(out, info.bytes));
        if (res != RingResult::kOk || !d.valid || d.writer >= kWriters ||
            static_cast<std::int64_t>(d.sequence) <= last[d.writer] || d.sequence != info.publisher_sequence ||
            (lossless && static_cast<std::int64_t>(d.sequence) != last[d.writer] + 1)) {
          ++bad;
          continue;
        }
        last[d.writer] = static_cast<std::int64_t>(d.sequence);
        ++got;
      }
      board_view.board()->count[i] = got;
      board_view.board()->lost[i] = r->lost_records();
      if (lossless) r->unregister();
      return bad == 0 ? 0 : 4;
    }));
  }
  for (int w = 0; w < kWriters; ++w) {
    pids.push_back(fork_child([&, w] {
      Attached a(key, ring_bytes);
      if (!a.ok) return 2;
      auto writer = BroadcastWriter::attach(a.ring(), ring_bytes, 500 + w);
      if (!writer.ok()) return 2;
      wait_ready(a.board(), kReaders);
      std::byte buf[64];
      for (std::uint64_t seq = 0; seq < records;) {
        const std::size_t n = test_record_size(seq * 2 + w, 64);
        fill_test_record(std::span(buf, n), w, seq);
        const RingResult r = writer->try_write(std::span(buf, n));
        if (r == RingResult::kFull) { std::this_thread::yield(); continue; }
        if (r != RingResult::kOk) return 3;
        ++seq;
      }
      writer->detach();
      a.board()->done++;
      if (a.board()->done.load() == kWriters) store_ring_state(a.ring(), RingState::kClosed);
      return 0;
    }));
  }
  expect_children_ok(pids);
  Board* b = board_of(seg);
  for (int i = 0; i < kReaders; ++i) {
    EXPECT_EQ(b->count[i] + b->lost[i], kWriters * records) << "reader " << i;
    if (lossless) {
      EXPECT_EQ(b->lost[i].load(), 0u);
    }
  }
  ::testing::Test::RecordProperty("lost_reader0", std::to_string(b->lost[0].load()));
}

TEST(RingMultiprocess, BroadcastPublishersLossyTwoReadersOneReadOnly) { broadcast_run(false); }
TEST(RingMultiprocess, BroadcastPublishersLosslessTwoRegisteredReaders) { broadcast_run(true); }

// --- Hostile memory -------------------------------------------------------------------------------

// Shared anonymous memory that ends exactly at a PROT_NONE guard page.
class GuardedRegion {
 public:
  explicit GuardedRegion(std::size_t bytes) : bytes_(bytes) {
    const std::size_t page = 4096;
    pages_ = align_up(bytes, page);
    base_ = static_cast<std::byte*>(
        mmap(nullptr, pages_ + 2 * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    mmap(base_ + page, pages_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    region_ = base_ + page + pages_ - bytes;  // 128-aligned: every ring size is a multiple of 128
  }
  ~GuardedRegion() { munmap(base_, pages_ + 2 * 4096); }
  void* data() const { return region_; }
  std::size_t size() const { return bytes_; }

 private:
  std::size_t bytes_, pages_;
  std::byte* base_;
  std::byte* region_;
};

// Scribbles random bytes over [region, region + bytes) until the deadline.
int scribble(void* region, std::size_t bytes, std::chrono::milliseconds run, unsigned seed) {
  std::mt19937_64 rng(seed);
  auto* p = static_cast<std::byte*>(region);
  const auto end = std::chrono::steady_clock::now() + run;
  while (std::chrono::steady_clock::now() < end) {
    for (int i = 0; i < 8; ++i) {
      const std::size_t at = rng() % bytes;
      if (rng() % 4 == 0 && at + 8 <= bytes) {  // a whole random word (positions, lengths)
        const std::uint64_t v = rng() % 3 == 0 ? rng() : rng() % 1000000;
        std::memcpy(p + (at & ~std::size_t{7}), &v, 8);
      } else {
        p[at] = static_cast<std::byte>(rng());
      }
    }
    std::this_thread::sleep_for(20us);
  }
  return 0;
}

// Forks a child that calls body() until `run` has passed. The body (often holding a move-only
// ring handle) is made inside the child.
template <typename MakeBody>
pid_t run_for(std::chrono::milliseconds run, MakeBody make_body) {
  return fork_child([run, &make_body] {
    auto body = make_body();
    const auto end = std::chrono::steady_clock::now() + run;
    while (std::chrono::steady_clock::now() < end) body();
    return 0;
  });
}

TEST(RingMultiprocess, ScribbledRingsNeverCrashTheirUsers) {
  const auto run = std::chrono::milliseconds(scaled(100) >= 100 ? 1500 : 1000);
  // SPSC
  {
    const SpscRing::Options options{4096, 0, 0};
    GuardedRegion g(SpscRing::required_bytes(options));
    ASSERT_TRUE(SpscRing::create(g.data(), g.size(), options).ok());
    std::vector<pid_t> pids;
    pids.push_back(run_for(run, [&] { return [&, ring = std::optional<SpscRing>()]() mutable {
      if (!ring) {
        auto r = SpscRing::attach(g.data(), g.size());
        if (r.ok()) ring.emplace(std::move(*r));
        return;
      }
      std::uint64_t sum = 0;
      const ReadBatch b = ring->read([&](std::span<const std::byte> s) {
        for (std::byte x : s) sum += static_cast<std::uint8_t>(x);  // touch every byte handed out
      });
      if (b.result == RingResult::kCorrupt) ring.reset();  // re-validate the header
      if (sum == 42) std::fputc(' ', stderr);
    }; }));
    pids.push_back(run_for(run, [&] { return [&, ring = std::optional<SpscRing>(), seq = std::uint64_t{0}]() mutable {
      if (!ring) {
        auto r = SpscRing::attach(g.data(), g.size());
        if (r.ok()) ring.emplace(std::move(*r));
        return;
      }
      std::byte buf[200];
      fill_test_record(std::span(buf, test_record_size(seq, 200)), 0, seq);
      const RingResult r = ring->try_write(std::span(buf, test_record_size(seq, 200)));
      ++seq;
      if (r == RingResult::kCorrupt) ring.reset();
    }; }));
    pids.push_back(fork_child([&] { return scribble(g.data(), g.size(), run, 1); }));
    expect_children_ok(pids, 30s);
  }
  // MPMC
  {
    const MpmcQueue<>::Options options{64, 100, 0};
    GuardedRegion g(MpmcQueue<>::required_bytes(options));
    ASSERT_TRUE(MpmcQueue<>::create(g.data(), g.size(), options).ok());
    std::vector<pid_t> pids;
    for (int role = 0; role < 2; ++role) {
      pids.push_back(run_for(run, [&] { return [&, role, q = std::optional<MpmcQueue<>>()]() mutable {
        if (!q) {
          auto r = MpmcQueue<>::attach(g.data(), g.size());
          if (r.ok()) q.emplace(std::move(*r));
          return;
        }
        std::byte buf[100] = {};
        std::size_t n = 0;
        const RingResult r = role == 0 ? q->try_write(std::span(buf, 50)) : q->try_read(buf, &n);
        if (r == RingResult::kCorrupt) q.reset();
        // Recovery calls on junk must be harmless too.
        if (role == 1) {
          if (auto t = q ? q->stalled_producer_ticket() : std::nullopt) q->skip_stalled(*t);
          if (auto t = q ? q->stalled_consumer_ticket() : std::nullopt) q->force_release(*t);
        }
      }; }));
    }
    pids.push_back(fork_child([&] { return scribble(g.data(), g.size(), run, 2); }));
    expect_children_ok(pids, 30s);
  }
  // Broadcast: two writers, a lossless reader (so that reader slots are scribbled too), a lossy
  // one, and the admin handles (recovery of "dead" writers, evictions) run against the junk.
  {
    BroadcastOptions options;
    options.capacity = 4096;
    options.max_readers = 4;
    options.max_publishers = 3;
    options.history = 4;
    GuardedRegion g(BroadcastLayout::required_bytes(options));
    ASSERT_TRUE(BroadcastLayout::create(g.data(), g.size(), options).ok());
    std::vector<pid_t> pids;
    for (int writer = 0; writer < 2; ++writer) {
      pids.push_back(run_for(run, [&] { return [&, writer, w = std::optional<BroadcastWriter>(), seq = std::uint64_t{0}]() mutable {
        if (!w) {
          auto r = BroadcastWriter::attach(g.data(), g.size(), 10 + writer);
          if (r.ok()) w.emplace(std::move(*r));
          return;
        }
        std::byte buf[300] = {};
        RingResult r;
        if (++seq % 3 == 0) {
          const BroadcastWriter::Claim c = w->try_claim(seq % w->max_record());
          r = c.result;
          if (r == RingResult::kOk) {
            std::memset(c.buffer.data(), 7, c.buffer.size());
            if (seq % 2 == 0) w->abort(); else w->commit(c.buffer.size() / 2);
          }
        } else {
          r = w->try_write(std::span(buf, seq % std::min<std::uint64_t>(300, w->max_record())));
        }
        if (r == RingResult::kCorrupt || r == RingResult::kFull || r == RingResult::kBusy) {
          auto slots = BroadcastReaderSlots::attach(g.data(), g.size());
          if (slots.ok()) {
            for (std::uint32_t i = 0; i < slots->size(); ++i) slots->evict(i, slots->slot(i).owner);
          }
          auto admin = BroadcastPublishers::attach(g.data(), g.size());
          if (admin.ok()) admin->recover([&](std::uint64_t token) { return token == 10u + writer; });
          if (r == RingResult::kBusy) w.reset();  // its slot was taken from it
        }
      }; }));
    }
    for (int lossless = 0; lossless < 2; ++lossless) {
      pids.push_back(run_for(run, [&] { return [&, lossless, r = std::optional<BroadcastReader>()]() mutable {
        if (!r) {
          const BroadcastStartAt start{static_cast<BroadcastStart>(lossless * 2 + 1), 3};
          auto a = lossless ? BroadcastReader::register_reader(g.data(), g.size(), 77, start)
                            : BroadcastReader::attach(static_cast<const void*>(g.data()), g.size(), start);
          if (a.ok()) r.emplace(std::move(*a));
          return;
        }
        std::vector<std::byte> out(r->max_record());
        BroadcastRecordInfo info;
        RingResult res;
        if (lossless) {
          std::span<const std::byte> view;
          res = r->try_view(&view, &info);
          if (res == RingResult::kOk) {
            std::uint64_t sum = 0;
            for (std::byte x : view) sum += static_cast<std::uint8_t>(x);  // touch every byte handed out
            if (sum == 42) std::fputc(' ', stderr);
            res = r->finish_view();
          }
        } else {
          res = r->try_read(out, &info);
        }
        if (res == RingResult::kCorrupt) r->resync();
        if (res == RingResult::kEvicted) r.reset();
        (void)r->stalled_on_claim();
      }; }));
    }
    pids.push_back(fork_child([&] { return scribble(g.data(), g.size(), run, 3); }));
    expect_children_ok(pids, 30s);
  }
}

}  // namespace
}  // namespace shmring
