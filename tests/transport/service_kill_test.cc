// Services across real processes killed with SIGKILL: servers and clients at every step of the
// protocol (deterministic windows made by a child that stops at a chosen instruction, white-box),
// and at random moments, repeated (black-box). The oracle everywhere: every request ends answered
// once (by a server that may be a redelivery's), or with kPeerGone (at_most_once), or at its
// deadline; never lost, never hanging, never answered twice; nothing left in /dev/shm.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "queue_recovery.h"
#include "service_test_util.h"
#include "shmring/transport/service.h"

namespace shmring {
namespace {

using namespace std::chrono_literals;
using testing::bytes_of;
using testing::channel_name;
using testing::fork_child;
using testing::service_options;
using testing::string_of;
using testing::wait_child;

std::string receive_text(PendingResponse& p, std::chrono::nanoseconds timeout = 5s) {
  std::vector<std::byte> buf(64);
  std::size_t n = 0;
  const ChannelResult r = p.receive(buf, &n, timeout);
  if (r != ChannelResult::kOk) return "<" + std::string(to_string(r)) + ">";
  return string_of(std::span(buf).first(n));
}

struct Flags {
  std::atomic<std::uint32_t> ready;
  std::atomic<std::uint32_t> stage;
};

bool wait_for_flag(const std::atomic<std::uint32_t>& flag, std::uint32_t value, std::chrono::milliseconds timeout) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (flag.load() < value) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(100us);
  }
  return true;
}

// Where a server child stops (is killed) in its handling of one request.
enum class ServerStop {
  kAfterClaimBeforeHeld,   // the ref claimed (recorded kClaimed), no held entry yet
  kAfterHeldBeforeRelease, // held entry written, queue slot not released
  kClaimingUnrecorded,     // ring claim taken in kClaiming: its ticket is not recorded
  kHolding,                // received (delivered to the application), nothing written
  kMidStream,              // one non-final response written
  kAfterFinalBeforeClear,  // the final record written, held entry still there
};

// A child that opens a server and stops at `stop` (then kills itself). The white-box stops redo
// the server's take by hand, from its peer slot and area.
pid_t server_stopping_at(const std::string& name, const ServiceOptions& o, ServerStop stop) {
  return fork_child([name, o, stop] {
    auto server = ServiceServer::open(name, o);
    if (!server.ok()) return 2;
    testing::RawService raw(name);
    if (!raw.attach()) return 3;
    const std::uint32_t me_index = server->stats().index;
    PeerSlot& me = raw.peer(me_index);
    const int area = raw.server_area_of(me_index);
    if (area < 0) return 4;
    detail::ServiceRegion& region = *raw.region;
    MpmcQueue<>& q = region.queue();
    if (stop == ServerStop::kHolding || stop == ServerStop::kMidStream) {
      ActiveRequest r = server->receive_request(5s);
      if (!r.ok()) return 5;
      if (stop == ServerStop::kMidStream && r.try_respond(bytes_of("partial"), false) != ChannelResult::kOk) return 6;
      kill(getpid(), SIGKILL);
    }
    if (stop == ServerStop::kClaimingUnrecorded) {
      me.op_state.store(static_cast<std::uint32_t>(PeerOp::kClaiming));
      for (int i = 0; i < 5000 && q.try_claim_read().result != RingResult::kOk; ++i) std::this_thread::sleep_for(1ms);
      kill(getpid(), SIGKILL);
    }
    MpmcQueue<>::Claim claim;
    for (int i = 0; i < 5000; ++i) {
      claim = detail::record_claim(me, [&] { return q.try_claim_read(); });
      if (claim.result == RingResult::kOk) break;
      std::this_thread::sleep_for(1ms);
    }
    if (claim.result != RingResult::kOk) return 7;
    detail::RequestRef ref;
    std::memcpy(&ref, claim.buffer.data(), sizeof ref);
    if (stop == ServerStop::kAfterClaimBeforeHeld) kill(getpid(), SIGKILL);
    region.held(static_cast<std::uint32_t>(area))[0].store(detail::held_entry(ref.area, ref.call, ref.generation));
    if (stop == ServerStop::kAfterHeldBeforeRelease) kill(getpid(), SIGKILL);
    q.release(claim);
    detail::clear_claim(me);
    // kAfterFinalBeforeClear: the final record, as publish() writes it, and no clearing.
    detail::CallHeader& call = region.call(ref.area, ref.call);
    detail::ResponseRecord& rec = region.record(call, 0);
    std::memcpy(region.response_payload(rec), "final", 5);
    rec.length.store(5);
    rec.flags.store(detail::kResponseFinal);
    rec.tag.store(detail::response_tag(ref.generation, 0), std::memory_order_release);
    kill(getpid(), SIGKILL);
    return 0;
  });
}

struct StopCase {
  ServerStop stop;
  bool at_most_once;
  const char* expect;  // what the client receives: "answer" (from the second server), "final"
                       // (the dead server's), "<kPeerGone>"
  bool redelivered;    // the second server sees the request redelivered
};

class ServiceServerKillTest : public ::testing::TestWithParam<StopCase> {};

TEST_P(ServiceServerKillTest, EveryRequestEndsAnsweredOnceOrAsDocumented) {
  const StopCase c = GetParam();
  const std::string name = channel_name("svck_server");
  ServiceOptions o = service_options();
  o.at_most_once = c.at_most_once;
  auto client = ServiceClient::open(name, o);
  ASSERT_TRUE(client.ok()) << client.status();
  const pid_t child = server_stopping_at(name, o, c.stop);
  std::this_thread::sleep_for(20ms);  // the child is waiting for the request (or not: it polls)
  PendingResponse pending = client->try_send_request(bytes_of("request"));
  ASSERT_TRUE(pending.ok());
  const testing::ChildResult died = wait_child(child, 10s);
  ASSERT_TRUE(died.signaled) << "exit " << died.code;
  auto second = ServiceServer::open(name, o);  // its open runs the recovery
  ASSERT_TRUE(second.ok());
  ActiveRequest request = second->receive_request(std::string(c.expect) == "answer" ? 5s : 100ms);
  if (std::string(c.expect) == "answer") {
    ASSERT_TRUE(request.ok()) << to_string(request.result());
    EXPECT_EQ(string_of(request.data()), "request");
    EXPECT_EQ(request.redelivered(), c.redelivered);
    EXPECT_EQ(request.id(), pending.id());
    ASSERT_EQ(request.respond(bytes_of("answer")), ChannelResult::kOk);
  } else {
    EXPECT_FALSE(request.ok()) << "answered (or ended) requests are not redelivered";
  }
  std::string got = receive_text(pending);
  if (c.stop == ServerStop::kMidStream) {
    EXPECT_EQ(got, "partial");  // what the dead server sent first
    if (!c.at_most_once) got = receive_text(pending);
    else got = receive_text(pending);
  }
  EXPECT_EQ(got, c.expect);
  EXPECT_TRUE(pending.done());
  EXPECT_EQ(second->try_receive_request().result(), ChannelResult::kWouldBlock);  // nothing twice
  auto st = read_service_stats(name);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->redelivered, c.redelivered ? 1u : 0u);
  EXPECT_EQ(st->in_flight, 0u);
}

INSTANTIATE_TEST_SUITE_P(
    Stops, ServiceServerKillTest,
    ::testing::Values(StopCase{ServerStop::kAfterClaimBeforeHeld, false, "answer", true},
                      // Never delivered to an application: redelivered even at_most_once.
                      StopCase{ServerStop::kAfterClaimBeforeHeld, true, "answer", true},
                      StopCase{ServerStop::kAfterHeldBeforeRelease, false, "answer", true},
                      StopCase{ServerStop::kAfterHeldBeforeRelease, true, "<kPeerGone>", false},
                      StopCase{ServerStop::kClaimingUnrecorded, false, "answer", true},
                      StopCase{ServerStop::kHolding, false, "answer", true},
                      StopCase{ServerStop::kHolding, true, "<kPeerGone>", false},
                      StopCase{ServerStop::kMidStream, false, "answer", true},
                      StopCase{ServerStop::kMidStream, true, "<kPeerGone>", false},
                      StopCase{ServerStop::kAfterFinalBeforeClear, false, "final", false},
                      StopCase{ServerStop::kAfterFinalBeforeClear, true, "final", false}));

TEST(ServiceKillTest, AnAtMostOnceClientIsToldPromptlyWhenItsOnlyServerDies) {
  // No other server ever comes: the client's own wait runs the recovery and ends the call.
  const std::string name = channel_name("svck_amo_alone");
  ServiceOptions o = service_options();
  o.at_most_once = true;
  auto client = ServiceClient::open(name, o);
  ASSERT_TRUE(client.ok());
  testing::SharedRegion region(sizeof(Flags));
  Flags* f = region.as<Flags>();
  const pid_t child = fork_child([&] {
    auto server = ServiceServer::open(name, o);
    if (!server.ok()) return 2;
    ActiveRequest r = server->receive_request(5s);
    f->ready.store(1);
    std::this_thread::sleep_for(60s);
    return 0;
  });
  PendingResponse pending = client->try_send_request(bytes_of("q"));
  ASSERT_TRUE(wait_for_flag(f->ready, 1, 10s));
  kill(child, SIGKILL);
  wait_child(child, 10s);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(receive_text(pending, 30s), "<kPeerGone>");
  EXPECT_LT(std::chrono::steady_clock::now() - start, 9s);  // liveness: long before the deadline (10 s)
  // At-least-once and no server left: the client waits for its deadline, not forever.
  client->set_request_timeout(300ms);
  ServiceOptions alo = service_options();
  auto client2 = ServiceClient::open(name, alo);
  client2->set_request_timeout(300ms);
  const pid_t child2 = fork_child([&] {
    auto server = ServiceServer::open(name, alo);
    if (!server.ok()) return 2;
    ActiveRequest r = server->receive_request(5s);
    f->ready.store(2);
    std::this_thread::sleep_for(60s);
    return 0;
  });
  PendingResponse waits = client2->try_send_request(bytes_of("q2"));
  ASSERT_TRUE(wait_for_flag(f->ready, 2, 10s));
  kill(child2, SIGKILL);
  wait_child(child2, 10s);
  EXPECT_EQ(receive_text(waits, 30s), "<kTimedOut>");
  EXPECT_TRUE(waits.expired());
}

TEST(ServiceKillTest, AClientKilledWithCallsInFlightIsCancelledAndItsAreaReclaimed) {
  const int rounds = testing::rounds_from_env("SHMRING_SERVICE_KILL_ROUNDS", 20);
  const std::string name = channel_name("svck_client");
  const ServiceOptions o = service_options(/*clients=*/1);
  auto server = ServiceServer::open(name, o);
  ASSERT_TRUE(server.ok());
  testing::SharedRegion region(sizeof(Flags));
  Flags* f = region.as<Flags>();
  for (int round = 0; round < rounds; ++round) {
    f->ready.store(0);
    const pid_t child = fork_child([&] {
      auto client = ServiceClient::open(name, o);
      if (!client.ok()) return 2;
      std::vector<PendingResponse> calls;
      for (int i = 0; i < 3; ++i) calls.push_back(client->try_send_request(bytes_of("q" + std::to_string(i))));
      f->ready.store(1);
      std::this_thread::sleep_for(60s);
      return 0;
    });
    ASSERT_TRUE(wait_for_flag(f->ready, 1, 10s)) << "round " << round;
    ActiveRequest held = server->receive_request(5s);
    ASSERT_TRUE(held.ok());
    EXPECT_FALSE(held.cancelled());
    kill(child, SIGKILL);
    ASSERT_TRUE(wait_child(child, 10s).signaled);
    // The server learns it from shared memory once a recovery ran (its idle wait runs one; a
    // descriptor's hang-up would run it at once): no system call on its own path.
    std::vector<ActiveRequest> rest;
    for (int i = 0; i < 50 && !held.cancelled(); ++i) {
      ActiveRequest r = server->receive_request(30ms);
      if (r.ok()) rest.push_back(std::move(r));
    }
    EXPECT_TRUE(held.cancelled()) << "round " << round;
    EXPECT_EQ(held.try_respond(bytes_of("x"), false), ChannelResult::kPeerGone);
    for (int i = 0; i < 10; ++i) {  // the two still queued come (cancelled), or were dropped
      ActiveRequest r = server->try_receive_request();
      if (r.ok()) rest.push_back(std::move(r));
    }
    for (ActiveRequest& r : rest) {
      EXPECT_TRUE(r.cancelled());
      r.drop();
    }
    held.respond(bytes_of("dropped"));
    // max_clients 1: the next client gets the area once nobody holds its calls.
    auto next = ServiceClient::open(name, o);
    ASSERT_TRUE(next.ok()) << "round " << round << ": " << next.status();
    PendingResponse p = next->try_send_request(bytes_of("fresh"));
    ActiveRequest r = server->receive_request(5s);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(string_of(r.data()), "fresh");
    r.respond(bytes_of("ok"));
    EXPECT_EQ(receive_text(p), "ok");
  }
  auto st = read_service_stats(name);
  ASSERT_TRUE(st.ok());
  EXPECT_GE(st->clients_reclaimed, static_cast<std::uint64_t>(rounds));
}

TEST(ServiceKillTest, AClientKilledInsideItsPushLeavesNothingStuck) {
  // The client dies between recording kClaiming and the ring's claim of its ref (the window the
  // recovery cannot attribute), and another dies holding a claimed, uncommitted ref.
  const std::string name = channel_name("svck_push");
  const ServiceOptions o = service_options();
  auto server = ServiceServer::open(name, o);
  auto client = ServiceClient::open(name, o);
  ASSERT_TRUE(server.ok() && client.ok());
  for (const bool recorded : {false, true}) {
    const pid_t child = fork_child([&] {
      auto c = ServiceClient::open(name, o);
      if (!c.ok()) return 2;
      testing::RawService raw(name);
      if (!raw.attach()) return 3;
      PeerSlot& me = raw.peer(c->stats().index);
      MpmcQueue<>& q = raw.region->queue();
      if (recorded) {
        detail::record_claim(me, [&] { return q.try_claim(); });
      } else {
        me.op_state.store(static_cast<std::uint32_t>(PeerOp::kClaiming));
        q.try_claim();
      }
      kill(getpid(), SIGKILL);
      return 0;
    });
    ASSERT_TRUE(wait_child(child, 10s).signaled);
    PendingResponse p = client->try_send_request(bytes_of("behind"));
    ActiveRequest r = server->receive_request(5s);  // passes the dead claim once recovered
    ASSERT_TRUE(r.ok()) << (recorded ? "recorded" : "unrecorded");
    EXPECT_EQ(string_of(r.data()), "behind");
    r.respond(bytes_of("ok"));
    EXPECT_EQ(receive_text(p), "ok");
  }
}

// Racy: a server is killed at a random moment while it answers a stream of requests; another
// server takes over. Every request gets exactly one final answer, none hangs; requests held by
// the killed server come redelivered.
TEST(ServiceKillTest, ServersKilledAtRandomMomentsLoseNothing) {
  const int rounds = testing::rounds_from_env("SHMRING_SERVICE_KILL_ROUNDS", 100);
  const std::string name = channel_name("svck_random");
  const ServiceOptions o = service_options();
  auto client = ServiceClient::open(name, o);
  auto backup = ServiceServer::open(name, o);
  ASSERT_TRUE(client.ok() && backup.ok());
  std::mt19937_64 rng(static_cast<std::uint64_t>(getpid()));
  std::uint64_t answered_by_backup = 0;
  std::uint64_t redelivered = 0;
  testing::SharedRegion region(sizeof(Flags));
  Flags* f = region.as<Flags>();
  for (int round = 0; round < rounds; ++round) {
    f->ready.store(0);
    const pid_t child = fork_child([&] {
      auto server = ServiceServer::open(name, o);
      if (!server.ok()) return 2;
      f->ready.store(1);
      std::mt19937 work(static_cast<unsigned>(getpid()));
      for (;;) {
        ActiveRequest r = server->receive_request(1s);
        if (!r.ok()) continue;
        r.respond(bytes_of("part"), false);
        std::this_thread::sleep_for(std::chrono::microseconds(work() % 300));  // "work"
        r.respond(bytes_of("s:" + string_of(r.data())));
      }
    });
    ASSERT_TRUE(wait_for_flag(f->ready, 1, 10s));
    std::vector<PendingResponse> pending;
    for (int i = 0; i < 3; ++i) pending.push_back(client->try_send_request(bytes_of(std::to_string(round * 10 + i))));
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 1000));
    kill(child, SIGKILL);
    ASSERT_TRUE(wait_child(child, 10s).signaled);
    for (int i = 0; i < 3; ++i) {
      const std::string want = std::to_string(round * 10 + i);
      bool done = false;
      for (int spin = 0; spin < 500 && !done; ++spin) {
        // The backup serves what is left (redelivered or never taken).
        ActiveRequest r = backup->receive_request(1ms);
        if (r.ok()) {
          ++answered_by_backup;
          if (r.redelivered()) ++redelivered;
          r.respond(bytes_of("b:" + string_of(r.data())));
        }
        std::vector<std::byte> buf(64);
        std::size_t n = 0;
        for (;;) {
          const ChannelResult res = pending[i].try_receive(buf, &n);
          if (res != ChannelResult::kOk) {
            ASSERT_EQ(res, ChannelResult::kWouldBlock) << to_string(res);
            break;
          }
          const std::string got = string_of(std::span(buf).first(n));
          if (pending[i].done()) {
            EXPECT_TRUE(got == "s:" + want || got == "b:" + want) << got;
            done = true;
            break;
          }
          EXPECT_EQ(got, "part");
        }
      }
      ASSERT_TRUE(done) << "round " << round << " request " << i << " never answered";
    }
    EXPECT_EQ(backup->try_receive_request().result(), ChannelResult::kWouldBlock) << "answered twice";
  }
  std::printf("%d rounds: %llu answered by the backup (%llu redelivered)\n", rounds,
              static_cast<unsigned long long>(answered_by_backup), static_cast<unsigned long long>(redelivered));
  auto st = read_service_stats(name);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->redelivered, redelivered);
  EXPECT_EQ(st->in_flight, 0u);
}

// Racy: clients killed at random moments while a server answers them; the server never blocks on
// a dead client, and the areas come back.
TEST(ServiceKillTest, ClientsKilledAtRandomMomentsLeaveNothingBehind) {
  const int rounds = testing::rounds_from_env("SHMRING_SERVICE_KILL_ROUNDS", 100);
  const std::string name = channel_name("svck_random_client");
  const ServiceOptions o = service_options(/*clients=*/2);
  auto server = ServiceServer::open(name, o);
  ASSERT_TRUE(server.ok());
  std::mt19937_64 rng(static_cast<std::uint64_t>(getpid()) + 1);
  for (int round = 0; round < rounds; ++round) {
    const pid_t child = fork_child([&] {
      auto client = ServiceClient::open(name, o);
      if (!client.ok()) return 2;
      for (int i = 0;; ++i) {
        PendingResponse p = client->send_request(bytes_of("c" + std::to_string(i)), 1s);
        std::vector<std::byte> buf(64);
        std::size_t n = 0;
        while (p.ok() && !p.done() && p.receive(buf, &n, 1s) == ChannelResult::kOk) {
        }
      }
    });
    const auto end = std::chrono::steady_clock::now() + std::chrono::microseconds(rng() % 4000);
    while (std::chrono::steady_clock::now() < end) {
      ActiveRequest r = server->receive_request(100us);
      if (!r.ok()) continue;
      // A stream deeper than the client's buffer: the server waits for the client's reads.
      for (int k = 0; k < 3 && r.respond(bytes_of("s"), false) == ChannelResult::kOk; ++k) {
      }
      r.respond(bytes_of("end"));
    }
    kill(child, SIGKILL);
    ASSERT_TRUE(wait_child(child, 10s).signaled);
  }
  // A client's open runs the recovery: what the dead clients left is then cancelled, and once it
  // is answered (or dropped) their areas are free again.
  auto a = ServiceClient::open(name, o);
  ASSERT_TRUE(a.ok()) << a.status();
  for (int i = 0; i < 200; ++i) {
    ActiveRequest r = server->receive_request(5ms);
    if (r.ok()) {
      EXPECT_TRUE(r.cancelled());
      EXPECT_NE(r.try_respond(bytes_of("x"), false), ChannelResult::kOk);
    }
  }
  auto b = ServiceClient::open(name, o);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  auto st = read_service_stats(name);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->in_flight, 0u);
  EXPECT_EQ(st->held, 0u);
  EXPECT_EQ(st->clients, 2u);
}

}  // namespace
}  // namespace shmring
