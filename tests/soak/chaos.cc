// shmring_chaos: kill storms against real processes, per pattern, for a chosen time; prints what
// an operator wants to know afterwards. Separate from the ctest suite (the test command runs a
// short one: tests/soak/chaos.sh).
//
//   shmring_chaos [--pattern topic|publishers|queue|frames|service|all] [--seconds N] [--kill-every-ms M]
//
// topic:  1 lossy publisher + 3 subscribers; each message is (publisher incarnation, sequence,
//         checksummed words). Subscribers count torn, duplicated and out-of-order messages and
//         what lost() reports.
// publishers: 4 publishers (max_publishers 4; half their messages by loan, so kills land inside
//         loans) + 3 subscribers: a lossless recorder, a lossy one and a read-only lossy one.
//         Besides torn / duplicated / out-of-order (per publisher incarnation), every subscriber
//         checks each message against what the others saw under the same topic sequence number
//         (one total order), and the recorder measures its longest wait between two messages (a
//         dead publisher's unfinished message holds it until the recovery skips it).
// queue:  2 producers + 2 consumers (views, marked before release). Every item has a global id;
//         at the end: lost = committed (send returned kOk) but never received; duplicated = received
//         twice without redelivered() (a redelivery after a consumer was killed holding the view
//         is the documented at-least-once case and counted apart).
// frames: 1 publisher + 2 viewers; torn frames and frame numbers going backwards.
// service: 4 clients call 3 competing servers (chaos_service.cc has the oracle).
// Every M ms (default 20) a random worker gets SIGKILL and a new one takes its place. At the end
// every worker is killed, one process opens each channel once more (running the recovery) and
// closes it, and the tool counts the run's segment files left in /dev/shm and the System V
// semaphore sets left. Exit 0 when nothing was torn, duplicated, reordered or lost and no segment
// was left (leftover semaphore sets are reported: see the note at the end of storm()).
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/sem.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "shmring/core/segment_directory.h"
#include "shmring/core/segment_header.h"
#include "shmring/core/shared_memory.h"
#include "shmring/transport/frame.h"
#include "shmring/transport/queue.h"
#include "shmring/transport/topic.h"

namespace shmring::chaos {
bool service_storm(int seconds, int kill_every_ms, std::mt19937_64& rng);  // chaos_service.cc
}

namespace {

using namespace std::chrono_literals;
using shmring::ChannelResult;

constexpr std::size_t kMessage = 64;
constexpr std::uint64_t kMaxItems = std::uint64_t{1} << 30;  // queue item ids tracked (bitmaps)

struct Shared {
  std::atomic<std::uint64_t> sent{0};
  std::atomic<std::uint64_t> received{0};
  std::atomic<std::uint64_t> torn{0};
  std::atomic<std::uint64_t> duplicated{0};
  std::atomic<std::uint64_t> redelivered{0};
  std::atomic<std::uint64_t> out_of_order{0};
  std::atomic<std::uint64_t> lost_reported{0};
  std::atomic<std::uint64_t> next_item{0};
  std::atomic<std::uint32_t> incarnation{0};
  std::atomic<std::uint64_t> order_mismatches{0};
  std::atomic<std::uint64_t> longest_stall_us{0};
  // Topic sequence -> (publisher incarnation << 32 | its sequence), as the first subscriber to
  // get that number saw it: [seq % kOrderEntries] holds (seq + 1, value).
  std::atomic<std::uint64_t> order_sequence[1 << 20];
  std::atomic<std::uint64_t> order_value[1 << 20];
  // One bit per queue item id: committed (its send returned kOk) and seen (a consumer got it).
  std::atomic<std::uint64_t> committed[kMaxItems / 64];
  std::atomic<std::uint64_t> seen[kMaxItems / 64];
};

Shared* g = nullptr;

std::uint64_t mix(std::uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  return x;
}

void fill(std::byte* out, std::size_t n, std::uint64_t who, std::uint64_t seq) {
  std::memcpy(out, &who, 8);
  std::memcpy(out + 8, &seq, 8);
  for (std::size_t off = 16; off + 8 <= n; off += 8) {
    const std::uint64_t w = mix(who * 1'000'003 + seq + off);
    std::memcpy(out + off, &w, 8);
  }
}

bool intact(const std::byte* in, std::size_t n, std::uint64_t* who, std::uint64_t* seq) {
  if (n < 16) return false;
  std::memcpy(who, in, 8);
  std::memcpy(seq, in + 8, 8);
  for (std::size_t off = 16; off + 8 <= n; off += 8) {
    std::uint64_t w;
    std::memcpy(&w, in + off, 8);
    if (w != mix(*who * 1'000'003 + *seq + off)) return false;
  }
  return true;
}

// --- workers (each runs until killed) ---------------------------------------------------------------

int topic_publisher(const std::string& name) {
  shmring::TopicOptions o;
  o.capacity = 1 << 16;
  o.max_message = kMessage;
  o.max_peers = 16;
  o.open_timeout = 1s;
  for (;;) {
    auto pub = shmring::TopicPublisher::open(name, o);
    if (!pub.ok()) {  // the previous publisher's death is not reclaimed yet
      std::this_thread::sleep_for(1ms);
      continue;
    }
    const std::uint64_t who = g->incarnation.fetch_add(1) + 1;
    std::byte m[kMessage];
    for (std::uint64_t seq = 0;; ++seq) {
      fill(m, kMessage, who, seq);
      if (pub->try_send(m) == ChannelResult::kOk) g->sent.fetch_add(1, std::memory_order_relaxed);
      if (seq % 64 == 0) std::this_thread::sleep_for(20us);
    }
  }
}

int topic_subscriber(const std::string& name) {
  shmring::TopicOptions o;
  o.capacity = 1 << 16;
  o.max_message = kMessage;
  o.max_peers = 16;
  o.open_timeout = 1s;
  auto sub = shmring::TopicSubscriber::open(name, o);
  if (!sub.ok()) return 2;
  std::byte buf[kMessage];
  std::uint64_t last_who = 0, last_seq = 0, lost = 0;
  for (;;) {
    std::size_t n = 0;
    const ChannelResult r = sub->receive(buf, &n, 10ms);
    if (sub->lost() != lost) {
      g->lost_reported.fetch_add(sub->lost() - lost, std::memory_order_relaxed);
      lost = sub->lost();
    }
    if (r != ChannelResult::kOk) continue;
    std::uint64_t who = 0, seq = 0;
    g->received.fetch_add(1, std::memory_order_relaxed);
    if (!intact(buf, n, &who, &seq)) {
      g->torn.fetch_add(1);
      continue;
    }
    if (who == last_who && seq == last_seq) g->duplicated.fetch_add(1);
    if (who == last_who && seq < last_seq) g->out_of_order.fetch_add(1);
    last_who = who;
    last_seq = seq;
  }
}

// --- several publishers ------------------------------------------------------------------------

constexpr std::uint64_t kOrderEntries = 1 << 20;

shmring::TopicOptions publishers_options() {
  shmring::TopicOptions o;
  o.capacity = 1 << 16;
  o.max_message = kMessage;
  o.max_peers = 16;
  o.max_publishers = 4;
  o.lossless = true;  // the recorder's default; the displays choose lossy
  o.dead_check_interval = 5ms;
  o.open_timeout = 1s;
  return o;
}

// The same topic sequence must name the same message at every subscriber.
void check_order(std::uint64_t sequence, std::uint64_t value) {
  const std::uint64_t slot = sequence % kOrderEntries;
  std::uint64_t seen = g->order_sequence[slot].load(std::memory_order_acquire);
  if (seen == sequence + 1) {
    if (g->order_value[slot].load(std::memory_order_relaxed) != value) g->order_mismatches.fetch_add(1);
    return;
  }
  // First to see this number (or the entry holds an older one): record it. A racing subscriber
  // that saw the same number records the same value if the order is one.
  if (seen < sequence + 1 && g->order_sequence[slot].compare_exchange_strong(seen, 0)) {
    g->order_value[slot].store(value, std::memory_order_relaxed);
    g->order_sequence[slot].store(sequence + 1, std::memory_order_release);
  }
}

int several_publishers_publisher(const std::string& name) {
  const shmring::TopicOptions o = publishers_options();
  for (;;) {
    auto pub = shmring::TopicPublisher::open(name, o);
    if (!pub.ok()) {  // every publisher slot taken: a dead one is not recovered yet
      std::this_thread::sleep_for(1ms);
      continue;
    }
    const std::uint64_t who = g->incarnation.fetch_add(1) + 1;
    std::byte m[kMessage];
    for (std::uint64_t seq = 0;;) {
      ChannelResult r;
      if (seq % 2 == 0) {
        shmring::TopicLoan loan = pub->loan(kMessage, 10ms);
        r = loan.result();
        if (loan.ok()) {
          fill(loan.buffer().data(), kMessage, who, seq);
          // Work inside the loan now and then, as publishers do, so that kills land there.
          if (seq % 32 == 0) std::this_thread::sleep_for(200us);
          r = pub->publish(loan, kMessage);
        }
      } else {
        fill(m, kMessage, who, seq);
        r = pub->send(m, 10ms);
      }
      if (r != ChannelResult::kOk) continue;
      g->sent.fetch_add(1, std::memory_order_relaxed);
      ++seq;
      if (seq % 64 == 0) std::this_thread::sleep_for(20us);
    }
  }
}

// kind 0: the lossless recorder; 1: lossy; 2: lossy and read-only.
int several_publishers_subscriber(const std::string& name, int kind) {
  shmring::TopicOptions o = publishers_options();
  o.delivery = kind == 0 ? shmring::TopicDelivery::kLossless : shmring::TopicDelivery::kLossy;
  o.read_only = kind == 2;
  auto sub = shmring::TopicSubscriber::open(name, o);
  if (!sub.ok()) return 2;
  std::byte buf[kMessage];
  std::vector<std::uint64_t> last(1 << 16, ~std::uint64_t{0});  // per incarnation (mod 2^16)
  std::uint64_t lost = 0;
  auto previous = std::chrono::steady_clock::now();
  for (;;) {
    std::size_t n = 0;
    const ChannelResult r = sub->receive(buf, &n, 10ms);
    if (sub->lost() != lost) {
      g->lost_reported.fetch_add(sub->lost() - lost, std::memory_order_relaxed);
      lost = sub->lost();
    }
    if (r != ChannelResult::kOk) continue;
    if (kind == 0) {
      const auto now = std::chrono::steady_clock::now();
      const auto waited = static_cast<std::uint64_t>(
          std::chrono::duration_cast<std::chrono::microseconds>(now - previous).count());
      previous = now;
      std::uint64_t longest = g->longest_stall_us.load();
      while (waited > longest && !g->longest_stall_us.compare_exchange_weak(longest, waited)) {
      }
    }
    std::uint64_t who = 0, seq = 0;
    g->received.fetch_add(1, std::memory_order_relaxed);
    if (!intact(buf, n, &who, &seq)) {
      g->torn.fetch_add(1);
      continue;
    }
    std::uint64_t& mine = last[who % last.size()];
    if (mine != ~std::uint64_t{0} && seq == mine) g->duplicated.fetch_add(1);
    if (mine != ~std::uint64_t{0} && seq < mine) g->out_of_order.fetch_add(1);
    mine = seq;
    check_order(sub->last_sequence(), (who << 32) | (seq & 0xFFFFFFFF));
  }
}

int publishers_recorder(const std::string& name) { return several_publishers_subscriber(name, 0); }
int publishers_display(const std::string& name) { return several_publishers_subscriber(name, 1); }
int publishers_reader(const std::string& name) { return several_publishers_subscriber(name, 2); }

int queue_producer(const std::string& name) {
  shmring::QueueOptions o;
  o.capacity = 256;
  o.max_message = kMessage;
  o.max_peers = 16;
  o.open_timeout = 1s;
  auto producer = shmring::QueueProducer::open(name, o);
  if (!producer.ok()) return 2;
  std::byte m[kMessage];
  for (;;) {
    const std::uint64_t id = g->next_item.fetch_add(1);
    if (id >= kMaxItems) {
      std::this_thread::sleep_for(10ms);
      continue;
    }
    fill(m, kMessage, 1, id);
    while (producer->send(m, 10ms) != ChannelResult::kOk) {
    }
    g->committed[id / 64].fetch_or(std::uint64_t{1} << (id % 64), std::memory_order_relaxed);
    g->sent.fetch_add(1, std::memory_order_relaxed);
    if (id % 64 == 0) std::this_thread::sleep_for(20us);  // 10 minutes stay within the bitmaps
  }
}

int queue_consumer(const std::string& name) {
  shmring::QueueOptions o;
  o.capacity = 256;
  o.max_message = kMessage;
  o.max_peers = 16;
  o.open_timeout = 1s;
  auto consumer = shmring::QueueConsumer::open(name, o);
  if (!consumer.ok()) return 2;
  for (;;) {
    shmring::QueueView view = consumer->receive_view(10ms);
    if (!view.ok()) continue;
    std::uint64_t who = 0, id = 0;
    if (!intact(view.data().data(), view.data().size(), &who, &id) || id >= kMaxItems) {
      g->torn.fetch_add(1);
    } else if ((g->seen[id / 64].fetch_or(std::uint64_t{1} << (id % 64)) &
                (std::uint64_t{1} << (id % 64))) != 0) {
      (view.redelivered() ? g->redelivered : g->duplicated).fetch_add(1);
    } else {
      g->received.fetch_add(1, std::memory_order_relaxed);
    }
    view.release();  // after the mark: a kill in between redelivers (at-least-once for views)
  }
}

int frame_publisher(const std::string& name) {
  shmring::FrameOptions o;
  o.capacity = 4;
  o.max_message = 64 * 1024;
  o.max_peers = 8;
  o.open_timeout = 1s;
  for (;;) {
    auto pub = shmring::FramePublisher::open(name, o);
    if (!pub.ok()) {
      std::this_thread::sleep_for(1ms);
      continue;
    }
    const std::uint64_t who = g->incarnation.fetch_add(1) + 1;
    for (std::uint64_t seq = 0;; ++seq) {
      shmring::FrameLoan loan = pub->loan(10ms);
      if (!loan.ok()) continue;
      fill(loan.buffer().data(), loan.buffer().size(), who, seq);
      if (pub->publish(loan, loan.buffer().size()) == ChannelResult::kOk) g->sent.fetch_add(1);
      std::this_thread::sleep_for(50us);
    }
  }
}

int frame_viewer(const std::string& name) {
  shmring::FrameOptions o;
  o.capacity = 4;
  o.max_message = 64 * 1024;
  o.max_peers = 8;
  o.open_timeout = 1s;
  auto sub = shmring::FrameSubscriber::open(name, o);
  if (!sub.ok()) return 2;
  std::uint64_t last_number = 0;
  for (;;) {
    shmring::FrameView view = sub->receive_view(10ms);
    if (!view.ok()) continue;
    std::uint64_t who = 0, seq = 0;
    g->received.fetch_add(1, std::memory_order_relaxed);
    if (!intact(view.data().data(), view.data().size(), &who, &seq)) g->torn.fetch_add(1);
    if (view.sequence() <= last_number) g->out_of_order.fetch_add(1);
    last_number = view.sequence();
    view.release();
  }
}

// --- the storm ------------------------------------------------------------------------------------

struct Role {
  int (*body)(const std::string&);
  pid_t pid = 0;
};

pid_t spawn(int (*body)(const std::string&), const std::string& name) {
  const pid_t pid = fork();
  if (pid == 0) std::_Exit(body(name));
  return pid;
}

// The ids of every System V semaphore set on the machine.
std::set<int> sem_sets() {
  std::set<int> ids;
  FILE* f = std::fopen("/proc/sysvipc/sem", "r");
  if (f == nullptr) return ids;
  char line[512];
  if (std::fgets(line, sizeof line, f) != nullptr) {  // the header line
    while (std::fgets(line, sizeof line, f) != nullptr) {
      int key = 0, id = 0;
      if (std::sscanf(line, "%d %d", &key, &id) == 2) ids.insert(id);
    }
  }
  std::fclose(f);
  return ids;
}

// The lock sets recorded in the headers of every shmring segment in /dev/shm, by id or (a creator
// killed before it recorded the id) by key: sets that some segment (this run's or anyone else's)
// still owns.
std::set<int> owned_sem_sets() {
  std::set<int> ids;
  for (const shmring::SegmentListing& l : shmring::list_segments()) {
    const int fd = open(l.path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    alignas(shmring::SegmentHeader) unsigned char page[4096] = {};
    const ssize_t got = pread(fd, page, sizeof page, 0);
    close(fd);
    if (got < static_cast<ssize_t>(sizeof(shmring::SegmentHeader))) continue;
    const auto* header = reinterpret_cast<const shmring::SegmentHeader*>(page);
    if (header->magic != shmring::kSegmentMagic) continue;
    if (header->lock_semaphore_id >= 0) ids.insert(header->lock_semaphore_id);
    if (header->lock_semaphore_key != 0) {
      const int id = semget(header->lock_semaphore_key, 0, 0);
      if (id >= 0) ids.insert(id);
    }
  }
  return ids;
}

// Lifelines and wake-up sockets in /dev/shm (files of endpoints).
std::size_t wait_file_count() {
  return shmring::segment_paths(shmring::kDefaultSegmentDirectory, "shmring-l.").size() +
         shmring::segment_paths(shmring::kDefaultSegmentDirectory, "shmring-w.").size();
}

bool storm(const std::string& pattern, int seconds, int kill_every_ms, std::mt19937_64& rng) {
  // Zero the counters and the part of the bitmaps the previous storm used (fresh pages are zero).
  const std::uint64_t used = std::min<std::uint64_t>(g->next_item.load(), kMaxItems);
  std::memset(static_cast<void*>(g->committed), 0, (used + 63) / 64 * 8);
  std::memset(static_cast<void*>(g->seen), 0, (used + 63) / 64 * 8);
  std::memset(static_cast<void*>(g), 0, offsetof(Shared, order_sequence));
  std::memset(static_cast<void*>(g->order_sequence), 0, sizeof g->order_sequence);
  const std::string name = "chaos_" + std::to_string(getpid()) + "_" + pattern;
  std::vector<Role> roles;
  if (pattern == "topic") {
    roles = {{topic_subscriber}, {topic_subscriber}, {topic_subscriber}, {topic_publisher}};
  } else if (pattern == "publishers") {
    roles = {{publishers_recorder},
             {publishers_display},
             {publishers_reader},
             {several_publishers_publisher},
             {several_publishers_publisher},
             {several_publishers_publisher},
             {several_publishers_publisher}};
  } else if (pattern == "queue") {
    roles = {{queue_consumer}, {queue_consumer}, {queue_producer}, {queue_producer}};
  } else {
    roles = {{frame_viewer}, {frame_viewer}, {frame_publisher}};
  }
  const std::set<int> sems_before = sem_sets();
  const std::size_t wait_files_before = wait_file_count();
  for (Role& r : roles) {
    r.pid = spawn(r.body, name);
    std::this_thread::sleep_for(5ms);
  }
  std::uint64_t kills = 0;
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < end) {
    std::this_thread::sleep_for(std::chrono::milliseconds(kill_every_ms));
    Role& victim = roles[rng() % roles.size()];
    kill(victim.pid, SIGKILL);
    waitpid(victim.pid, nullptr, 0);
    ++kills;
    victim.pid = spawn(victim.body, name);
  }
  // The channel's counters while its last users still live.
  auto stats = shmring::read_stats(name);
  const std::uint64_t evictions = stats.ok() ? stats->evictions : 0;
  const std::uint64_t reclaimed = stats.ok() ? stats->peers_reclaimed : 0;
  const std::uint64_t abandoned = stats.ok() ? stats->abandoned : 0;
  // Queue: let the consumers drain what was committed (no more kills), then everyone goes.
  if (pattern == "queue") {
    for (Role& r : roles) {
      if (r.body == queue_producer) kill(r.pid, SIGKILL), waitpid(r.pid, nullptr, 0), r.pid = 0;
    }
    std::this_thread::sleep_for(1500ms);
  }
  for (Role& r : roles) {
    if (r.pid != 0) kill(r.pid, SIGKILL), waitpid(r.pid, nullptr, 0);
  }
  std::uint64_t lost = 0;
  if (pattern == "queue") {
    const std::uint64_t ids = std::min<std::uint64_t>(g->next_item.load(), kMaxItems);
    for (std::uint64_t word = 0; word < (ids + 63) / 64; ++word) {
      lost += static_cast<std::uint64_t>(__builtin_popcountll(g->committed[word].load() & ~g->seen[word].load()));
    }
  }
  // Every user is dead: one more open of the channel and a close (the recovery, then the last
  // detach; an open that finds the segment stale removes it), and the channel's file must be gone.
  if (pattern == "topic" || pattern == "publishers") {
    shmring::TopicOptions o;
    o.create = false;
    auto last = shmring::TopicSubscriber::open(name, o);
  } else if (pattern == "queue") {
    shmring::QueueOptions o;
    o.create = false;
    auto last = shmring::QueueConsumer::open(name, o);
  } else {
    shmring::FrameOptions o;
    o.create = false;
    auto last = shmring::FrameSubscriber::open(name, o);
  }
  // Lifelines and sockets of killed endpoints are removed by the recovery that reclaims them, or
  // by the last endpoint to leave the channel: after that last close none may be left (other
  // shmring users running meanwhile have theirs: counted before the storm, see wait_files_before).
  const std::size_t wait_files_left =
      wait_file_count() > wait_files_before ? wait_file_count() - wait_files_before : 0;
  shmring::collect_stale_wait_files(false);
  const std::string prefix = "shmring_chan.chaos_" + std::to_string(getpid()) + "_";
  const std::size_t left = shmring::list_segments(shmring::kDefaultSegmentDirectory, prefix).size();
  // Sets that appeared during the storm and that no segment owns: what this run leaked (other
  // shmring users running meanwhile own theirs).
  int sems_left = 0;
  const std::set<int> owned = owned_sem_sets();
  for (const int id : sem_sets()) {
    if (sems_before.count(id) == 0 && owned.count(id) == 0) ++sems_left;
  }
  std::printf("%-6s %4d s  kills %6llu  sent %10llu  received %10llu  torn %llu  duplicated %llu  "
              "out-of-order %llu  lost %llu (%s)  redelivered %llu  evictions %llu  reclaimed %llu  "
              "leftover segments %zu  leftover semaphores %d  leftover descriptor files %zu\n",
              pattern.c_str(), seconds, static_cast<unsigned long long>(kills),
              static_cast<unsigned long long>(g->sent.load()),
              static_cast<unsigned long long>(g->received.load()),
              static_cast<unsigned long long>(g->torn.load()),
              static_cast<unsigned long long>(g->duplicated.load()),
              static_cast<unsigned long long>(g->out_of_order.load()),
              static_cast<unsigned long long>(pattern == "queue" ? lost : g->lost_reported.load()),
              pattern == "queue" ? "committed, never received" : pattern == "frames" ? "frames skipped" : "reported by lost()",
              static_cast<unsigned long long>(g->redelivered.load()),
              static_cast<unsigned long long>(evictions), static_cast<unsigned long long>(reclaimed),
              left, sems_left, wait_files_left);
  if (pattern == "publishers") {
    std::printf("%-6s order mismatches %llu  abandoned (dead publishers' unfinished messages) %llu  "
                "longest wait of the lossless subscriber %.1f ms\n",
                "", static_cast<unsigned long long>(g->order_mismatches.load()),
                static_cast<unsigned long long>(abandoned), g->longest_stall_us.load() / 1000.0);
  }
  std::fflush(stdout);
  return g->order_mismatches.load() == 0 && g->torn.load() == 0 && g->duplicated.load() == 0 &&
         g->out_of_order.load() == 0 && (pattern != "queue" || lost == 0) && left == 0 && sems_left == 0 &&
         wait_files_left == 0;
  // Leftover semaphores fail the storm: a creator records its lock's key before it creates the
  // set, so even one killed between semget and recording the id leaves the set findable (the
  // reclaim of its half-made segment removes it).
}

}  // namespace

int main(int argc, char** argv) {
  std::string pattern = "all";
  int seconds = 10;
  int kill_every_ms = 20;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string option = argv[i];
    if (option == "--pattern") pattern = argv[i + 1];
    else if (option == "--seconds") seconds = std::atoi(argv[i + 1]);
    else if (option == "--kill-every-ms") kill_every_ms = std::atoi(argv[i + 1]);
    else {
      std::fprintf(stderr, "usage: shmring_chaos [--pattern topic|publishers|queue|frames|service|all] [--seconds N] "
                           "[--kill-every-ms M]\n");
      return 2;
    }
  }
  if (seconds < 1 || kill_every_ms < 1 ||
      (pattern != "all" && pattern != "topic" && pattern != "publishers" && pattern != "queue" &&
       pattern != "frames" && pattern != "service")) {
    std::fprintf(stderr, "shmring_chaos: bad --pattern, --seconds or --kill-every-ms\n");
    return 2;
  }
  void* memory = mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED) return 1;
  g = static_cast<Shared*>(memory);
  std::mt19937_64 rng(static_cast<std::uint64_t>(getpid()));
  bool ok = true;
  for (const std::string& p :
       {std::string("topic"), std::string("publishers"), std::string("queue"), std::string("frames")}) {
    if (pattern == "all" || pattern == p) ok = storm(p, seconds, kill_every_ms, rng) && ok;
  }
  if (pattern == "all" || pattern == "service") ok = shmring::chaos::service_storm(seconds, kill_every_ms, rng) && ok;
  std::printf("%s\n", ok ? "chaos: nothing torn, duplicated, reordered or lost; no segment left behind"
                         : "chaos: FAILED (see the counts above)");
  return ok ? 0 : 1;
}
