// Services in one process (and a forked child): requests and responses, ids, streams and their
// back-pressure, zero-copy, limits, cancel, drop, close of either side with calls in flight,
// deadlines, misuse (moved-from, closed, foreign handles), options, stats.
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "shmring/transport/queue.h"
#include "shmring/transport/service.h"
#include "service_test_util.h"
#include "transport_test_util.h"

namespace shmring {
namespace {

using namespace std::chrono_literals;
using testing::bytes_of;
using testing::channel_name;
using testing::string_of;

ServiceOptions opts() {
  ServiceOptions o;
  o.max_request = 128;
  o.max_response = 128;
  o.max_in_flight = 4;
  o.response_depth = 2;
  o.max_clients = 4;
  o.max_servers = 4;
  o.max_active = 4;
  return o;
}

struct Pair {
  ServiceServer server;
  ServiceClient client;
};

Pair open_pair(const std::string& name, const ServiceOptions& o = opts()) {
  auto server = ServiceServer::open(name, o);
  EXPECT_TRUE(server.ok()) << server.status();
  auto client = ServiceClient::open(name, o);
  EXPECT_TRUE(client.ok()) << client.status();
  return {std::move(*server), std::move(*client)};
}

std::string receive_text(PendingResponse& p, std::chrono::nanoseconds timeout = 2s) {
  std::vector<std::byte> buf(256);
  std::size_t n = 0;
  const ChannelResult r = p.receive(buf, &n, timeout);
  if (r != ChannelResult::kOk) return "<" + std::string(to_string(r)) + ">";
  return string_of(std::span(buf).first(n));
}

TEST(ServiceTest, RequestAndResponseMatchedByTheTransport) {
  const std::string name = channel_name("svc_basic");
  Pair p = open_pair(name);
  PendingResponse pending = p.client.try_send_request(bytes_of("2+2"));
  ASSERT_TRUE(pending.ok()) << to_string(pending.result());
  EXPECT_FALSE(pending.done());
  EXPECT_NE(pending.id(), 0u);
  ActiveRequest request = p.server.receive_request(1s);
  ASSERT_TRUE(request.ok()) << to_string(request.result());
  EXPECT_EQ(string_of(request.data()), "2+2");
  EXPECT_EQ(request.id(), pending.id());
  EXPECT_FALSE(request.redelivered());
  EXPECT_FALSE(request.expired());
  EXPECT_FALSE(request.cancelled());
  EXPECT_EQ(p.server.active(), 1u);
  ASSERT_EQ(request.respond(bytes_of("4")), ChannelResult::kOk);
  EXPECT_TRUE(request.finished());
  EXPECT_TRUE(request.data().empty());  // the request's bytes are the client's again
  EXPECT_EQ(p.server.active(), 0u);
  EXPECT_EQ(request.respond(bytes_of("5")), ChannelResult::kClosed);
  EXPECT_EQ(receive_text(pending), "4");
  EXPECT_TRUE(pending.done());
  EXPECT_FALSE(pending.redelivered());
  std::vector<std::byte> buf(16);
  std::size_t n = 0;
  EXPECT_EQ(pending.try_receive(buf, &n), ChannelResult::kClosed);  // done
  EXPECT_EQ(p.client.in_flight(), 0u);
  // The call() convenience.
  std::thread server([&] {
    ActiveRequest r = p.server.receive_request(2s);
    if (r.ok()) r.respond(bytes_of(string_of(r.data()) + "!"));
  });
  n = 0;
  ASSERT_EQ(p.client.call(bytes_of("hi"), buf, &n, 2s), ChannelResult::kOk);
  EXPECT_EQ(string_of(std::span(buf).first(n)), "hi!");
  server.join();
  EXPECT_EQ(p.client.stats().sent, 2u);
  EXPECT_EQ(p.client.stats().received, 2u);
  EXPECT_EQ(p.server.stats().received, 2u);
  EXPECT_EQ(p.server.stats().sent, 2u);
}

TEST(ServiceTest, ResponsesAnsweredOutOfOrderReachTheirOwnRequests) {
  const std::string name = channel_name("svc_order");
  Pair p = open_pair(name);
  std::vector<PendingResponse> pending;
  for (int i = 0; i < 4; ++i) {
    pending.push_back(p.client.try_send_request(bytes_of("q" + std::to_string(i))));
    ASSERT_TRUE(pending.back().ok());
  }
  EXPECT_EQ(p.client.try_send_request(bytes_of("q4")).result(), ChannelResult::kWouldBlock);  // max_in_flight
  EXPECT_EQ(p.client.in_flight(), 4u);
  std::vector<ActiveRequest> requests;
  for (int i = 0; i < 4; ++i) {
    requests.push_back(p.server.try_receive_request());
    ASSERT_TRUE(requests.back().ok());
  }
  EXPECT_EQ(p.server.try_receive_request().result(), ChannelResult::kWouldBlock);
  for (int i = 3; i >= 0; --i) {
    ASSERT_EQ(requests[i].respond(bytes_of("a" + string_of(requests[i].data()))), ChannelResult::kOk);
  }
  std::vector<std::uint64_t> ids;
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(receive_text(pending[i]), "aq" + std::to_string(i));
    ids.push_back(pending[i].id());
  }
  for (std::size_t i = 0; i < ids.size(); ++i) {
    for (std::size_t j = i + 1; j < ids.size(); ++j) EXPECT_NE(ids[i], ids[j]);
  }
  EXPECT_TRUE(p.client.try_send_request(bytes_of("q4")).ok());  // room again
}

TEST(ServiceTest, ZeroCopyRequestsAndResponses) {
  const std::string name = channel_name("svc_zc");
  Pair p = open_pair(name);
  RequestLoan loan = p.client.try_loan_request();
  ASSERT_TRUE(loan.ok());
  ASSERT_EQ(loan.buffer().size(), 128u);
  std::memcpy(loan.buffer().data(), "in place", 8);
  PendingResponse pending = p.client.send_request(loan, 8);
  ASSERT_TRUE(pending.ok());
  EXPECT_FALSE(loan.ok());
  EXPECT_EQ(p.client.send_request(loan, 8).result(), ChannelResult::kClosed);  // spent
  std::vector<std::byte> copy(128);
  std::size_t n = 0;
  ActiveRequest request = p.server.try_receive_request(copy, &n);  // the copying form
  ASSERT_TRUE(request.ok());
  EXPECT_EQ(string_of(std::span(copy).first(n)), "in place");
  EXPECT_EQ(string_of(request.data()), "in place");
  ResponseLoan answer = request.try_loan_response();
  ASSERT_TRUE(answer.ok());
  EXPECT_EQ(request.try_loan_response().result(), ChannelResult::kWouldBlock);  // one at a time
  EXPECT_EQ(request.try_respond(bytes_of("x")), ChannelResult::kWouldBlock);   // a loan is out
  std::memcpy(answer.buffer().data(), "answer", 6);
  EXPECT_EQ(request.respond(answer, 129), ChannelResult::kTooLarge);
  ASSERT_EQ(request.respond(answer, 6), ChannelResult::kOk);
  ResponseView view = pending.receive_view(1s);
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(string_of(view.data()), "answer");
  EXPECT_TRUE(view.final());
  EXPECT_TRUE(pending.done());
  EXPECT_EQ(p.client.in_flight(), 1u);  // the view holds the call
  EXPECT_EQ(view.release(), ChannelResult::kOk);
  EXPECT_EQ(p.client.in_flight(), 0u);
  // An unsent loan gives its call back.
  {
    RequestLoan unused = p.client.try_loan_request();
    EXPECT_EQ(p.client.in_flight(), 1u);
  }
  EXPECT_EQ(p.client.in_flight(), 0u);
  // A loan abandoned before respond writes nothing; the request can still be answered.
  PendingResponse second = p.client.try_send_request(bytes_of("2"));
  ActiveRequest r2 = p.server.try_receive_request();
  ASSERT_TRUE(r2.ok());
  { ResponseLoan dropped = r2.try_loan_response(); }
  ASSERT_EQ(r2.respond(bytes_of("two")), ChannelResult::kOk);
  EXPECT_EQ(receive_text(second), "two");
}

TEST(ServiceTest, StreamsEndWithAFinalResponseAndWaitForTheClient) {
  const std::string name = channel_name("svc_stream");
  Pair p = open_pair(name);  // response_depth 2
  PendingResponse pending = p.client.try_send_request(bytes_of("count"));
  ActiveRequest request = p.server.try_receive_request();
  ASSERT_TRUE(request.ok());
  ASSERT_EQ(request.try_respond(bytes_of("1"), false), ChannelResult::kOk);
  ASSERT_EQ(request.try_respond(bytes_of("2"), false), ChannelResult::kOk);
  EXPECT_EQ(request.try_respond(bytes_of("3"), false), ChannelResult::kWouldBlock);  // depth 2
  EXPECT_FALSE(request.finished());
  EXPECT_EQ(receive_text(pending), "1");
  EXPECT_FALSE(pending.done());
  ASSERT_EQ(request.try_respond(bytes_of("3"), false), ChannelResult::kOk);
  // A blocking respond waits for the client (here: another thread takes the responses).
  std::vector<std::string> got;
  std::thread reader([&] {
    while (!pending.done()) {
      std::string s = receive_text(pending);
      got.push_back(s);
      if (s.front() == '<') break;
    }
  });
  for (int i = 4; i <= 9; ++i) ASSERT_EQ(request.respond(bytes_of(std::to_string(i)), false), ChannelResult::kOk);
  ASSERT_EQ(request.respond(bytes_of("end"), true), ChannelResult::kOk);
  reader.join();
  const std::vector<std::string> want = {"2", "3", "4", "5", "6", "7", "8", "9", "end"};
  EXPECT_EQ(got, want);
  EXPECT_TRUE(pending.done());
}

TEST(ServiceTest, DroppingThePendingResponseCancelsTheRequest) {
  const std::string name = channel_name("svc_cancel");
  Pair p = open_pair(name);
  ActiveRequest request;
  {
    PendingResponse pending = p.client.try_send_request(bytes_of("long"));
    request = p.server.try_receive_request();
    ASSERT_TRUE(request.ok());
    EXPECT_FALSE(request.cancelled());
  }  // dropped: cancelled
  EXPECT_TRUE(request.cancelled());
  EXPECT_EQ(request.try_respond(bytes_of("part"), false), ChannelResult::kCancelled);
  EXPECT_EQ(p.client.in_flight(), 1u);  // until the server lets go
  request.drop();
  EXPECT_EQ(p.client.in_flight(), 0u);
  // A cancelled request still queued is delivered (cancelled) and its final response dropped.
  { PendingResponse queued = p.client.try_send_request(bytes_of("queued")); }
  ActiveRequest late = p.server.try_receive_request();
  ASSERT_TRUE(late.ok());
  EXPECT_TRUE(late.cancelled());
  EXPECT_EQ(late.respond(bytes_of("nobody reads this")), ChannelResult::kOk);
  EXPECT_EQ(p.client.in_flight(), 0u);
  // cancel() after the final response arrived only frees the call.
  PendingResponse answered = p.client.try_send_request(bytes_of("x"));
  ActiveRequest r = p.server.try_receive_request();
  ASSERT_EQ(r.respond(bytes_of("y")), ChannelResult::kOk);
  answered.cancel();
  EXPECT_EQ(p.client.in_flight(), 0u);
  auto st = read_service_stats(name);
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(st->cancelled, 2u);
  EXPECT_EQ(st->in_flight, 0u);
}

TEST(ServiceTest, DroppingTheActiveRequestEndsItWithPeerGone) {
  const std::string name = channel_name("svc_drop");
  Pair p = open_pair(name);
  PendingResponse pending = p.client.try_send_request(bytes_of("q"));
  {
    ActiveRequest request = p.server.try_receive_request();
    ASSERT_TRUE(request.ok());
    ASSERT_EQ(request.try_respond(bytes_of("partial"), false), ChannelResult::kOk);
  }
  EXPECT_EQ(receive_text(pending), "partial");  // what was sent before the drop arrives first
  EXPECT_EQ(receive_text(pending), "<kPeerGone>");
  EXPECT_TRUE(pending.done());
  EXPECT_EQ(p.client.in_flight(), 0u);
  auto st = read_service_stats(name);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->peer_gone, 1u);
  EXPECT_EQ(p.client.stats().lost, 1u);
}

TEST(ServiceTest, AServerClosedHoldingARequestHandsItToAnotherServer) {
  const std::string name = channel_name("svc_handover");
  Pair p = open_pair(name);
  auto second = ServiceServer::open(name, opts());
  ASSERT_TRUE(second.ok());
  PendingResponse pending = p.client.try_send_request(bytes_of("work"));
  ActiveRequest request = p.server.try_receive_request();
  ASSERT_TRUE(request.ok());
  ASSERT_EQ(request.try_respond(bytes_of("first half"), false), ChannelResult::kOk);
  p.server.close();
  EXPECT_FALSE(request.ok());
  EXPECT_EQ(request.try_respond(bytes_of("x")), ChannelResult::kClosed);
  ActiveRequest again = second->receive_request(1s);
  ASSERT_TRUE(again.ok()) << to_string(again.result());
  EXPECT_TRUE(again.redelivered());
  EXPECT_EQ(string_of(again.data()), "work");
  EXPECT_EQ(again.id(), pending.id());
  ASSERT_EQ(again.respond(bytes_of("whole")), ChannelResult::kOk);
  EXPECT_EQ(receive_text(pending), "first half");
  EXPECT_FALSE(pending.redelivered());
  EXPECT_EQ(receive_text(pending), "whole");
  EXPECT_TRUE(pending.redelivered());
  EXPECT_TRUE(pending.done());
  auto st = read_service_stats(name);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->redelivered, 1u);
}

TEST(ServiceTest, AtMostOnceRequestsEndWithPeerGoneInstead) {
  const std::string name = channel_name("svc_amo");
  ServiceOptions o = opts();
  auto server = ServiceServer::open(name, o);
  auto other = ServiceServer::open(name, o);
  o.at_most_once = true;
  auto client = ServiceClient::open(name, o);
  ASSERT_TRUE(server.ok() && other.ok() && client.ok());
  PendingResponse pending = client->try_send_request(bytes_of("once"));
  ActiveRequest request = server->try_receive_request();
  ASSERT_TRUE(request.ok());
  server->close();
  EXPECT_EQ(receive_text(pending), "<kPeerGone>");
  EXPECT_EQ(other->try_receive_request().result(), ChannelResult::kWouldBlock);
  auto st = read_service_stats(name);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->redelivered, 0u);
  EXPECT_EQ(st->peer_gone, 1u);
}

TEST(ServiceTest, AClientClosedWithCallsInFlightIsSeenAsGoneAndItsAreaReclaimed) {
  const std::string name = channel_name("svc_client_close");
  ServiceOptions o = opts();
  o.max_clients = 1;
  auto server = ServiceServer::open(name, o);
  ASSERT_TRUE(server.ok());
  ActiveRequest request;
  {
    auto client = ServiceClient::open(name, o);
    ASSERT_TRUE(client.ok());
    EXPECT_FALSE(ServiceClient::open(name, o).ok());  // max_clients 1
    PendingResponse pending = client->try_send_request(bytes_of("q"));
    PendingResponse queued = client->try_send_request(bytes_of("never taken"));
    request = server->try_receive_request();
    ASSERT_TRUE(request.ok());
    client->close();
    EXPECT_EQ(pending.result(), ChannelResult::kClosed);
    std::vector<std::byte> buf(8);
    std::size_t n = 0;
    EXPECT_EQ(pending.try_receive(buf, &n), ChannelResult::kClosed);
  }
  EXPECT_TRUE(request.cancelled());
  EXPECT_EQ(request.try_respond(bytes_of("p"), false), ChannelResult::kPeerGone);
  // The area drains while the server holds one of its calls: no new client yet.
  EXPECT_EQ(ServiceClient::open(name, o).status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(request.respond(bytes_of("dropped")), ChannelResult::kOk);
  auto again = ServiceClient::open(name, o);  // its open reclaims the area
  ASSERT_TRUE(again.ok()) << again.status();
  // The ref the first client left in the queue belongs to a call whose generation moved on.
  EXPECT_EQ(server->try_receive_request().result(), ChannelResult::kWouldBlock);
  PendingResponse fresh = again->try_send_request(bytes_of("fresh"));
  ActiveRequest r = server->try_receive_request();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(string_of(r.data()), "fresh");
  r.respond(bytes_of("ok"));
  EXPECT_EQ(receive_text(fresh), "ok");
  auto st = read_service_stats(name);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->clients_reclaimed, 1u);
  EXPECT_EQ(st->requests, 3u);
}

TEST(ServiceTest, ADeadlinePassedEndsTheWaitAndTheServerSeesItExpired) {
  const std::string name = channel_name("svc_deadline");
  ServiceOptions o = opts();
  o.request_timeout = 50ms;
  auto client = ServiceClient::open(name, o);
  ASSERT_TRUE(client.ok());
  PendingResponse pending = client->try_send_request(bytes_of("late"));
  EXPECT_EQ(receive_text(pending, 10s), "<kTimedOut>");  // the deadline, not the 10 s
  EXPECT_TRUE(pending.done());
  EXPECT_TRUE(pending.expired());
  auto server = ServiceServer::open(name, o);
  ASSERT_TRUE(server.ok());
  ActiveRequest request = server->try_receive_request();
  ASSERT_TRUE(request.ok());
  EXPECT_TRUE(request.expired());
  EXPECT_TRUE(request.cancelled());
  request.drop();
  EXPECT_EQ(client->in_flight(), 0u);
  // A wait shorter than the deadline is only that wait's timeout.
  client->set_request_timeout(10s);
  PendingResponse second = client->try_send_request(bytes_of("x"));
  EXPECT_EQ(receive_text(second, 20ms), "<kTimedOut>");
  EXPECT_FALSE(second.done());
  EXPECT_FALSE(second.expired());
  auto st = read_service_stats(name);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->expired, 1u);
}

TEST(ServiceTest, LimitsAreChecked) {
  const std::string name = channel_name("svc_limits");
  Pair p = open_pair(name);
  const std::string big(129, 'x');
  EXPECT_EQ(p.client.try_send_request(bytes_of(big)).result(), ChannelResult::kTooLarge);
  EXPECT_EQ(p.client.in_flight(), 0u);
  PendingResponse pending = p.client.try_send_request(bytes_of("q"));
  ActiveRequest request = p.server.try_receive_request();
  ASSERT_TRUE(request.ok());
  EXPECT_EQ(request.try_respond(bytes_of(big)), ChannelResult::kTooLarge);
  ASSERT_EQ(request.try_respond(bytes_of("0123456789")), ChannelResult::kOk);
  std::vector<std::byte> small(4);
  std::size_t n = 0;
  EXPECT_EQ(pending.try_receive(small, &n), ChannelResult::kTooLarge);  // nothing taken
  EXPECT_EQ(receive_text(pending), "0123456789");
  std::vector<std::byte> too_small(100);
  EXPECT_EQ(p.server.try_receive_request(too_small, &n).result(), ChannelResult::kTooLarge);
  // max_active: a server holds at most 4.
  std::vector<PendingResponse> sent;
  std::vector<ActiveRequest> held;
  auto client2 = ServiceClient::open(name, opts());
  for (int i = 0; i < 4; ++i) sent.push_back(p.client.try_send_request(bytes_of("a")));
  sent.push_back(client2->try_send_request(bytes_of("b")));
  for (int i = 0; i < 4; ++i) held.push_back(p.server.try_receive_request());
  EXPECT_EQ(p.server.active(), 4u);
  EXPECT_EQ(p.server.try_receive_request().result(), ChannelResult::kWouldBlock);
  held[0].respond(bytes_of("done"));
  EXPECT_TRUE(p.server.try_receive_request().ok());
}

TEST(ServiceTest, OptionsAndKindsAreChecked) {
  const std::string name = channel_name("svc_options");
  auto server = ServiceServer::open(name, opts());
  ASSERT_TRUE(server.ok());
  ServiceOptions other = opts();
  other.max_response = 64;
  EXPECT_EQ(ServiceClient::open(name, other).status().code(), absl::StatusCode::kFailedPrecondition);
  ServiceOptions any;  // zero limits: whatever the service has
  auto client = ServiceClient::open(name, any);
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_EQ(client->max_response(), 128u);
  EXPECT_EQ(client->max_in_flight(), 4u);
  ServiceOptions bad;
  bad.response_depth = 3;
  EXPECT_EQ(ServiceServer::open(channel_name("svc_bad"), bad).status().code(), absl::StatusCode::kInvalidArgument);
  bad = {};
  bad.request_timeout = 0s;
  EXPECT_EQ(ServiceClient::open(channel_name("svc_bad"), bad).status().code(), absl::StatusCode::kInvalidArgument);
  bad = {};
  bad.max_clients = 1000;
  bad.max_servers = 100;
  EXPECT_EQ(ServiceClient::open(channel_name("svc_bad"), bad).status().code(), absl::StatusCode::kInvalidArgument);
  // A queue's name is not a service, and the other way round.
  const std::string queue_name = channel_name("svc_is_queue");
  auto consumer = QueueConsumer::open(queue_name);
  ASSERT_TRUE(consumer.ok());
  EXPECT_EQ(ServiceServer::open(queue_name).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(QueueProducer::open(name).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(read_service_stats(queue_name).status().code(), absl::StatusCode::kFailedPrecondition);
  ServiceOptions existing;
  existing.create = false;
  EXPECT_EQ(ServiceClient::open(channel_name("svc_missing"), existing).status().code(), absl::StatusCode::kNotFound);
  auto st = read_stats(name);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->kind, ChannelKind::kService);
  EXPECT_EQ(to_string(st->kind), "service");
}

TEST(ServiceTest, MisuseAnswersClosedAndNeverCrashes) {
  const std::string name = channel_name("svc_misuse");
  Pair p = open_pair(name);
  ServiceClient moved_to = std::move(p.client);
  std::vector<std::byte> buf(8);
  std::size_t n = 0;
  EXPECT_EQ(p.client.try_send_request(bytes_of("x")).result(), ChannelResult::kClosed);  // moved-from
  EXPECT_EQ(p.client.try_loan_request().result(), ChannelResult::kClosed);
  EXPECT_EQ(p.client.call(bytes_of("x"), buf, &n, 1ms), ChannelResult::kClosed);
  EXPECT_EQ(p.client.in_flight(), 0u);
  PendingResponse empty;
  EXPECT_EQ(empty.try_receive(buf, &n), ChannelResult::kClosed);
  EXPECT_EQ(empty.wait(1ms), ChannelResult::kClosed);
  EXPECT_FALSE(empty.ready());
  empty.cancel();
  ActiveRequest no_request;
  EXPECT_EQ(no_request.try_respond(bytes_of("x")), ChannelResult::kClosed);
  EXPECT_FALSE(no_request.cancelled());
  no_request.drop();
  // Handles survive a move of their endpoint, and of themselves.
  PendingResponse pending = moved_to.try_send_request(bytes_of("q"));
  ServiceClient moved_again = std::move(moved_to);
  PendingResponse pending_moved = std::move(pending);
  EXPECT_EQ(pending.try_receive(buf, &n), ChannelResult::kClosed);
  ActiveRequest request = p.server.try_receive_request();
  ActiveRequest request_moved = std::move(request);
  ASSERT_TRUE(request_moved.ok());
  EXPECT_EQ(request.try_respond(bytes_of("x")), ChannelResult::kClosed);
  ASSERT_EQ(request_moved.respond(bytes_of("r")), ChannelResult::kOk);
  EXPECT_EQ(receive_text(pending_moved), "r");
  // A view blocks the next receive of its pending response; a foreign loan is refused.
  PendingResponse two = moved_again.try_send_request(bytes_of("two"));
  ActiveRequest r2 = p.server.try_receive_request();
  r2.respond(bytes_of("a"), false);
  r2.respond(bytes_of("b"), true);
  ResponseView view = two.try_receive_view();
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(two.try_receive(buf, &n), ChannelResult::kWouldBlock);
  EXPECT_EQ(two.try_receive_view().result(), ChannelResult::kWouldBlock);
  EXPECT_EQ(view.release(), ChannelResult::kOk);
  EXPECT_EQ(view.release(), ChannelResult::kOk);  // twice: nothing more
  EXPECT_EQ(receive_text(two), "b");
  auto other = ServiceClient::open(name, opts());
  RequestLoan foreign = other->try_loan_request();
  EXPECT_EQ(moved_again.send_request(foreign, 1).result(), ChannelResult::kClosed);
  EXPECT_TRUE(foreign.ok());  // still the other client's
  // Closing the client makes its handles inert.
  PendingResponse open_call = moved_again.try_send_request(bytes_of("c"));
  RequestLoan open_loan = moved_again.try_loan_request();
  moved_again.close();
  EXPECT_EQ(open_call.try_receive(buf, &n), ChannelResult::kClosed);
  EXPECT_TRUE(open_loan.buffer().empty());
  EXPECT_EQ(open_loan.result(), ChannelResult::kClosed);
  moved_again.close();  // twice
}

TEST(ServiceTest, AForkedChildsCopiesNeverTouchTheParentsCalls) {
  const std::string name = channel_name("svc_fork");
  Pair p = open_pair(name);
  PendingResponse pending = p.client.try_send_request(bytes_of("q"));
  ActiveRequest request = p.server.try_receive_request();
  ASSERT_TRUE(request.ok());
  const pid_t child = testing::fork_child([&] {
    std::vector<std::byte> buf(8);
    std::size_t n = 0;
    if (pending.try_receive(buf, &n) != ChannelResult::kClosed) return 2;
    if (request.try_respond(bytes_of("from the child")) != ChannelResult::kClosed) return 3;
    if (p.client.try_send_request(bytes_of("child")).result() != ChannelResult::kClosed) return 4;
    if (p.server.try_receive_request().result() != ChannelResult::kClosed) return 5;
    if (p.client.wait_fd() != -1) return 6;
    pending.cancel();
    request.drop();
    return 0;  // the copies' destructors run too
  });
  EXPECT_TRUE(testing::wait_child(child, 10s).ok());
  EXPECT_FALSE(request.cancelled());
  ASSERT_EQ(request.respond(bytes_of("parent")), ChannelResult::kOk);
  EXPECT_EQ(receive_text(pending), "parent");
}

TEST(ServiceTest, AFullRequestQueueHoldsSendsBackUntilTheStalledTakeEnds) {
  // A server held up inside its take (here: a raw claim of the first ref, never released) while
  // another server takes a whole lap of requests past it: the queue (2 x calls slots) is full.
  const std::string name = channel_name("svc_queue_full");
  ServiceOptions o = opts();
  o.max_clients = 1;
  o.max_in_flight = 2;  // 2 calls: a queue of 4 slots
  Pair p = open_pair(name, o);
  testing::RawService raw(name);
  ASSERT_TRUE(raw.attach());
  PendingResponse stuck = p.client.try_send_request(bytes_of("stuck"));
  const MpmcQueue<>::Claim held = raw.region->queue().try_claim_read();
  ASSERT_EQ(held.result, RingResult::kOk);
  for (int i = 0; i < 3; ++i) {
    PendingResponse q = p.client.try_send_request(bytes_of("q"));
    ASSERT_TRUE(q.ok()) << i;
    ActiveRequest r = p.server.try_receive_request();
    ASSERT_TRUE(r.ok());
    r.respond(bytes_of("a"));
    EXPECT_EQ(receive_text(q), "a");
  }
  EXPECT_EQ(p.client.try_send_request(bytes_of("blocked")).result(), ChannelResult::kWouldBlock);
  EXPECT_EQ(p.client.send_request(bytes_of("blocked"), 30ms).result(), ChannelResult::kTimedOut);
  RequestLoan loan = p.client.try_loan_request();
  ASSERT_TRUE(loan.ok());
  EXPECT_EQ(p.client.send_request(loan, 1).result(), ChannelResult::kWouldBlock);
  EXPECT_TRUE(loan.ok());  // kept
  EXPECT_EQ(p.client.in_flight(), 2u);
  std::thread release([&] {
    std::this_thread::sleep_for(20ms);
    raw.region->queue().release(held);
  });
  PendingResponse after = p.client.send_request(loan, 1);
  EXPECT_EQ(after.result(), ChannelResult::kWouldBlock);  // never waits: sent again below
  release.join();
  after = p.client.send_request(loan, 1);
  ASSERT_TRUE(after.ok()) << to_string(after.result());
  ActiveRequest r = p.server.try_receive_request();
  ASSERT_TRUE(r.ok());
  r.respond(bytes_of("b"));
  EXPECT_EQ(receive_text(after), "b");
}

TEST(ServiceTest, StatsCountWhatHappened) {
  const std::string name = channel_name("svc_stats");
  Pair p = open_pair(name);
  auto st = read_service_stats(name);
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(st->servers, 1u);
  EXPECT_EQ(st->clients, 1u);
  EXPECT_EQ(st->max_in_flight, 4u);
  EXPECT_EQ(st->response_depth, 2u);
  PendingResponse a = p.client.try_send_request(bytes_of("a"));
  PendingResponse b = p.client.try_send_request(bytes_of("b"));
  ActiveRequest ra = p.server.try_receive_request();
  st = read_service_stats(name);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->requests, 2u);
  EXPECT_EQ(st->in_flight, 2u);
  EXPECT_EQ(st->queued, 1u);
  EXPECT_EQ(st->held, 1u);
  ra.respond(bytes_of("x"));
  receive_text(a);
  st = read_service_stats(name);
  EXPECT_EQ(st->served, 1u);
  EXPECT_EQ(st->in_flight, 1u);
  EXPECT_EQ(st->held, 0u);
  EXPECT_EQ(read_service_stats(channel_name("svc_none")).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace shmring
