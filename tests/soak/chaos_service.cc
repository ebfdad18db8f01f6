// The service pattern of shmring_chaos (chaos.cc): 4 clients call 3 competing servers while a
// random one of the seven is killed with SIGKILL every M ms and replaced. Clients 0 and 2 ask for
// at-least-once, 1 and 3 for at_most_once; every fourth request is answered with a stream (two
// responses, then the final one), the others with one; servers sometimes "work" a little while
// holding a request, so that kills find them holding one.
//
// Every request a client sent (send_request said kOk) ends, as the client sees it, in exactly one
// of: its final response (the right one: it carries the request's id), or kPeerGone (only for an
// at_most_once request), or the client was killed first (abandoned). At the end:
//   lost        sent, not abandoned, no end at all;
//   hanging     a live client waited more than 5 s for one (or hit the 10 s deadline);
//   gone (alo)  an at-least-once request ended with kPeerGone;
//   duplicated  a server received a request a second time without redelivered();
//   amo twice   an at_most_once request was received by a second server's application;
//   wrong       a response that belongs to another request, or a torn request.
// and no segment file of the run may be left. Any of these non-zero fails the storm.
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "shmring/core/segment_directory.h"
#include "shmring/transport/service.h"

namespace shmring::chaos {
namespace {

using namespace std::chrono_literals;

constexpr std::size_t kRequest = 64;
constexpr std::uint64_t kMaxIds = std::uint64_t{1} << 27;  // request ids tracked (bitmaps)
constexpr int kClients = 4;
constexpr int kServers = 3;
constexpr int kPipeline = 4;  // requests each client keeps in flight
constexpr std::uint64_t kHangingNs = 5'000'000'000;

struct ClientSlot {
  std::atomic<std::uint64_t> ids[kPipeline];       // id + 1 of each request in flight (0: none)
  std::atomic<std::uint64_t> since_ns[kPipeline];  // CLOCK_MONOTONIC when it was sent
};

struct Shared {
  std::atomic<std::uint64_t> next_id;
  std::atomic<std::uint64_t> sent_count;
  std::atomic<std::uint64_t> answered;
  std::atomic<std::uint64_t> peer_gone;
  std::atomic<std::uint64_t> gone_alo;
  std::atomic<std::uint64_t> hanging;
  std::atomic<std::uint64_t> duplicated;
  std::atomic<std::uint64_t> amo_twice;
  std::atomic<std::uint64_t> wrong;
  std::atomic<std::uint64_t> served_redelivered;
  std::atomic<std::uint64_t> served;
  ClientSlot clients[kClients];
  // One bit per request id.
  std::atomic<std::uint64_t> sent[kMaxIds / 64];
  std::atomic<std::uint64_t> ended[kMaxIds / 64];
  std::atomic<std::uint64_t> abandoned[kMaxIds / 64];
  std::atomic<std::uint64_t> taken[kMaxIds / 64];  // received by a server's application
  std::atomic<std::uint64_t> amo[kMaxIds / 64];    // sent at_most_once
};

Shared* g = nullptr;

bool set_bit(std::atomic<std::uint64_t>* bits, std::uint64_t id) {
  const std::uint64_t mask = std::uint64_t{1} << (id % 64);
  return (bits[id / 64].fetch_or(mask) & mask) != 0;  // was set already
}
bool bit(const std::atomic<std::uint64_t>* bits, std::uint64_t id) {
  return (bits[id / 64].load() & (std::uint64_t{1} << (id % 64))) != 0;
}

std::uint64_t now_ns() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::steady_clock::now().time_since_epoch())
                                        .count());
}

std::uint64_t word_of(std::uint64_t id, std::size_t off) {
  std::uint64_t x = id * 0x9E3779B97F4A7C15ULL + off;
  x ^= x >> 29;
  return x * 0xBF58476D1CE4E5B9ULL;
}
void fill(std::byte* out, std::uint64_t id) {
  std::memcpy(out, &id, 8);
  for (std::size_t off = 8; off + 8 <= kRequest; off += 8) {
    const std::uint64_t w = word_of(id, off);
    std::memcpy(out + off, &w, 8);
  }
}
bool intact(std::span<const std::byte> in, std::uint64_t* id) {
  if (in.size() != kRequest) return false;
  std::memcpy(id, in.data(), 8);
  for (std::size_t off = 8; off + 8 <= kRequest; off += 8) {
    std::uint64_t w;
    std::memcpy(&w, in.data() + off, 8);
    if (w != word_of(*id, off)) return false;
  }
  return *id < kMaxIds;
}

ServiceOptions options(bool at_most_once) {
  ServiceOptions o;
  o.max_request = kRequest;
  o.max_response = kRequest;
  o.max_in_flight = kPipeline;
  o.response_depth = 2;
  o.max_clients = 8;  // room for replacements while killed clients' areas drain
  o.max_servers = 6;
  o.max_active = 8;
  o.open_timeout = 1s;
  o.request_timeout = 10s;
  o.at_most_once = at_most_once;
  return o;
}

int client(const std::string& name, int index) {
  const bool at_most_once = index % 2 == 1;
  auto opened = ServiceClient::open(name, options(at_most_once));
  if (!opened.ok()) return 2;
  ServiceClient c = *std::move(opened);
  ClientSlot& slot = g->clients[index];
  PendingResponse pending[kPipeline];
  std::uint64_t ids[kPipeline] = {};
  std::byte request[kRequest];
  std::byte response[kRequest];
  for (;;) {
    bool progress = false;
    for (int k = 0; k < kPipeline; ++k) {
      if (!pending[k].ok() || pending[k].done()) {  // send a new one in this place
        const std::uint64_t id = g->next_id.fetch_add(1);
        if (id >= kMaxIds) return 0;
        slot.since_ns[k].store(now_ns());
        slot.ids[k].store(id + 1);  // before the send: a kill after it marks the id abandoned
        if (at_most_once) set_bit(g->amo, id);
        fill(request, id);
        pending[k] = c.send_request(request, 100ms);
        if (!pending[k].ok()) {
          slot.ids[k].store(0);
          continue;
        }
        ids[k] = id;
        set_bit(g->sent, id);
        g->sent_count.fetch_add(1, std::memory_order_relaxed);
        progress = true;
      }
      std::size_t n = 0;
      const ChannelResult r = pending[k].try_receive(response, &n);
      if (r == ChannelResult::kWouldBlock) continue;
      progress = true;
      const std::uint64_t id = ids[k];
      std::uint64_t got = 0;
      if (r == ChannelResult::kOk) {
        if (n != 16 || (std::memcpy(&got, response, 8), got != id)) g->wrong.fetch_add(1);
        if (!pending[k].done()) continue;  // a stream's first responses
        g->answered.fetch_add(1, std::memory_order_relaxed);
      } else if (r == ChannelResult::kPeerGone) {
        g->peer_gone.fetch_add(1, std::memory_order_relaxed);
        if (!at_most_once) g->gone_alo.fetch_add(1);
      } else if (r == ChannelResult::kTimedOut) {
        g->hanging.fetch_add(1);  // the 10 s deadline passed
      } else {
        g->wrong.fetch_add(1);
      }
      if (set_bit(g->ended, id)) g->wrong.fetch_add(1);  // ended twice
      slot.ids[k].store(0);
    }
    if (!progress) {
      for (int k = 0; k < kPipeline; ++k) {
        if (pending[k].ok() && !pending[k].done()) {
          pending[k].wait(1ms);
          break;
        }
      }
    }
  }
}

int server(const std::string& name, int) {
  auto opened = ServiceServer::open(name, options(false));
  if (!opened.ok()) return 2;
  ServiceServer s = *std::move(opened);
  std::mt19937 rng(static_cast<unsigned>(getpid()));
  for (;;) {
    ActiveRequest r = s.receive_request(10ms);
    if (!r.ok()) continue;
    std::uint64_t id = 0;
    if (!intact(r.data(), &id)) {
      g->wrong.fetch_add(1);
      continue;  // dropped
    }
    g->served.fetch_add(1, std::memory_order_relaxed);
    if (set_bit(g->taken, id)) {  // an application saw it before
      if (r.redelivered()) {
        g->served_redelivered.fetch_add(1, std::memory_order_relaxed);
      } else {
        g->duplicated.fetch_add(1);
      }
      if (bit(g->amo, id)) g->amo_twice.fetch_add(1);
    }
    std::byte answer[16];
    std::memcpy(answer, &id, 8);
    std::memset(answer + 8, 0, 8);
    if (rng() % 8 == 0) std::this_thread::sleep_for(std::chrono::microseconds(rng() % 200));  // "work"
    if (id % 4 == 0) {
      for (int part = 0; part < 2; ++part) {
        if (r.respond(answer, false) != ChannelResult::kOk) break;  // cancelled or gone: dropped
      }
    }
    r.respond(answer, true);
  }
}

pid_t spawn(int (*body)(const std::string&, int), const std::string& name, int index) {
  const pid_t pid = fork();
  if (pid == 0) std::_Exit(body(name, index));
  return pid;
}

// A killed client's requests in flight are abandoned (nobody is left to see their end).
void abandon(int index) {
  ClientSlot& slot = g->clients[index];
  for (int k = 0; k < kPipeline; ++k) {
    const std::uint64_t id = slot.ids[k].exchange(0);
    if (id != 0) set_bit(g->abandoned, id - 1);
  }
}

std::uint64_t check_hanging() {
  const std::uint64_t now = now_ns();
  std::uint64_t n = 0;
  for (ClientSlot& slot : g->clients) {
    for (int k = 0; k < kPipeline; ++k) {
      const std::uint64_t since = slot.since_ns[k].load();
      if (slot.ids[k].load() != 0 && now > since && now - since > kHangingNs) {
        ++n;
        slot.since_ns[k].store(now);  // counted once per 5 s
      }
    }
  }
  return n;
}

}  // namespace

bool service_storm(int seconds, int kill_every_ms, std::mt19937_64& rng) {
  void* memory = mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED) return false;
  g = static_cast<Shared*>(memory);
  const std::string name = "chaos_" + std::to_string(getpid()) + "_service";
  struct Role {
    int (*body)(const std::string&, int);
    int index;
    pid_t pid;
  };
  std::vector<Role> roles;
  for (int i = 0; i < kServers; ++i) roles.push_back({server, i, 0});
  for (int i = 0; i < kClients; ++i) roles.push_back({client, i, 0});
  for (Role& r : roles) {
    r.pid = spawn(r.body, name, r.index);
    std::this_thread::sleep_for(5ms);
  }
  std::uint64_t kills = 0;
  std::uint64_t hanging = 0;
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < end) {
    std::this_thread::sleep_for(std::chrono::milliseconds(kill_every_ms));
    Role& victim = roles[rng() % roles.size()];
    kill(victim.pid, SIGKILL);
    waitpid(victim.pid, nullptr, 0);
    if (victim.body == client) abandon(victim.index);
    ++kills;
    victim.pid = spawn(victim.body, name, victim.index);
    hanging += check_hanging();
  }
  // No more kills: what is in flight settles (redeliveries, ends), then everyone goes.
  std::this_thread::sleep_for(1s);
  hanging += check_hanging();
  auto stats = read_service_stats(name);
  for (Role& r : roles) {
    if (r.body != client) continue;
    kill(r.pid, SIGKILL);
    waitpid(r.pid, nullptr, 0);
    abandon(r.index);
  }
  for (Role& r : roles) {
    if (r.body == server) kill(r.pid, SIGKILL), waitpid(r.pid, nullptr, 0);
  }
  std::uint64_t lost = 0;
  const std::uint64_t ids = std::min<std::uint64_t>(g->next_id.load(), kMaxIds);
  for (std::uint64_t w = 0; w < (ids + 63) / 64; ++w) {
    lost += static_cast<std::uint64_t>(
        __builtin_popcountll(g->sent[w].load() & ~g->ended[w].load() & ~g->abandoned[w].load()));
  }
  // Every user is dead: one more open and close (the recovery, then the last detach).
  {
    ServiceOptions o;
    o.create = false;
    auto last = ServiceServer::open(name, o);
  }
  // Files of killed endpoints whose recovery never ran (the service went stale first) are left for
  // `shmring gc` (or the sweep at the next open): reported, then removed, as for the other patterns.
  const std::size_t wait_files_for_gc = collect_stale_wait_files(false).size();
  const std::string prefix = "shmring_chan.chaos_" + std::to_string(getpid()) + "_service";
  const std::size_t left = list_segments(kDefaultSegmentDirectory, prefix).size();
  hanging += g->hanging.load();
  std::printf("%-7s %4d s  kills %6llu  sent %9llu  answered %9llu  peer-gone %llu (at-least-once: %llu)  "
              "lost %llu  hanging %llu  duplicated %llu  at-most-once twice %llu  wrong %llu  "
              "served %llu (again after a redelivery %llu)  redelivered %llu  leftover segments %zu  "
              "descriptor files for gc %zu\n",
              "service", seconds, static_cast<unsigned long long>(kills),
              static_cast<unsigned long long>(g->sent_count.load()),
              static_cast<unsigned long long>(g->answered.load()),
              static_cast<unsigned long long>(g->peer_gone.load()),
              static_cast<unsigned long long>(g->gone_alo.load()), static_cast<unsigned long long>(lost),
              static_cast<unsigned long long>(hanging), static_cast<unsigned long long>(g->duplicated.load()),
              static_cast<unsigned long long>(g->amo_twice.load()), static_cast<unsigned long long>(g->wrong.load()),
              static_cast<unsigned long long>(g->served.load()),
              static_cast<unsigned long long>(g->served_redelivered.load()),
              static_cast<unsigned long long>(stats.ok() ? stats->redelivered : 0), left, wait_files_for_gc);
  std::fflush(stdout);
  const bool ok = lost == 0 && hanging == 0 && g->gone_alo.load() == 0 && g->duplicated.load() == 0 &&
                  g->amo_twice.load() == 0 && g->wrong.load() == 0 && left == 0 && g->answered.load() > 0;
  munmap(memory, sizeof(Shared));
  g = nullptr;
  return ok;
}

}  // namespace shmring::chaos
