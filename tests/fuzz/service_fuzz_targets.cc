#include "service_fuzz_targets.h"

#include <unistd.h>

#include <chrono>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "control_block.h"
#include "service_layout.h"
#include "shmring/core/shared_memory.h"
#include "shmring/transport/service.h"

namespace shmring::fuzz {
namespace {

ServiceOptions small_service() {
  ServiceOptions o;
  o.max_request = 32;
  o.max_response = 32;
  o.max_in_flight = 2;
  o.response_depth = 2;
  o.max_clients = 3;
  o.max_servers = 3;
  o.max_active = 2;
  o.open_timeout = std::chrono::milliseconds(5);
  return o;
}

std::span<const std::byte> text(const char* s) { return std::as_bytes(std::span(s, std::strlen(s))); }

// The fuzzed service: made on first use with a server and a client that each hold a call, alive
// until the process exits.
struct Target {
  std::string name = "t_fuzz_" + std::to_string(getpid()) + "_service";
  ServiceServer server;
  ServiceClient client;
  PendingResponse pending;
  ActiveRequest request;
  SharedMemory memory{channel_key("t_fuzz_" + std::to_string(getpid()) + "_service")};
  std::vector<std::byte> original;
  std::size_t region_begin = 0;
  std::optional<detail::ServiceGeometry> geometry;
  bool ok = false;

  Target() {
    auto s = ServiceServer::open(name, small_service());
    auto c = ServiceClient::open(name, small_service());
    if (!s.ok() || !c.ok()) return;
    server = *std::move(s);
    client = *std::move(c);
    pending = client.try_send_request(text("held"));
    request = server.try_receive_request();
    if (!pending.ok() || !request.ok() || !memory.attach()) return;
    const auto* bytes = static_cast<const std::byte*>(memory.const_data());
    original.assign(bytes, bytes + memory.size());
    const auto* cb = static_cast<const ControlBlock*>(memory.const_data());
    region_begin = cb->header.ring_offset;
    detail::ServiceShape shape;
    shape.max_request = 32;
    shape.max_response = 32;
    shape.max_in_flight = 2;
    shape.response_depth = 2;
    shape.max_clients = 3;
    shape.max_servers = 3;
    shape.max_active = 2;
    geometry = detail::service_geometry(shape);
    ok = geometry.has_value() && region_begin + geometry->region_bytes <= original.size();
  }
  ~Target() {
    memory.detach();
    request.drop();
    pending.cancel();
    client.close();
    server.close();
  }
};

Target& target() {
  static Target t;
  return t;
}

}  // namespace

void service_region(const std::uint8_t* data, std::size_t size) {
  Target& t = target();
  if (!t.ok || size < 1) return;
  auto* bytes = static_cast<std::byte*>(t.memory.data());
  const detail::ServiceGeometry& g = *t.geometry;
  std::size_t begin = t.region_begin;
  std::size_t end = begin + sizeof(detail::ServiceHeader) + sizeof(detail::ServiceCounters) + sizeof(detail::ServiceMisc);
  switch (data[0] % 4) {
    case 1:
      begin = t.region_begin + g.queue_offset;
      end = begin + g.queue_bytes;
      break;
    case 2:
      begin = t.region_begin + g.servers_offset;
      end = t.region_begin + g.clients_offset;
      break;
    case 3:
      begin = t.region_begin + g.clients_offset;
      end = t.region_begin + g.region_bytes;
      break;
    default:
      break;
  }
  const std::size_t n = std::min(size - 1, end - begin);
  std::memcpy(bytes + begin, data + 1, n);

  std::uint64_t sink = 0;
  if (auto stats = read_service_stats(t.name); stats.ok()) sink += stats->in_flight + stats->requests;
  ServiceOptions o;
  o.create = false;
  o.open_timeout = std::chrono::milliseconds(5);
  auto server = ServiceServer::open(t.name, o);
  auto client = ServiceClient::open(t.name, o);
  std::vector<std::byte> out(64);
  std::size_t got = 0;
  if (client.ok()) {
    PendingResponse p = client->try_send_request(text("fuzz"));
    if (server.ok()) {
      for (int i = 0; i < 4; ++i) {
        ActiveRequest r = server->try_receive_request();
        if (!r.ok()) break;
        sink += r.data().size() + r.cancelled() + r.expired();
        r.try_respond(text("part"), false);
        if (i % 2 == 0) r.try_respond(text("end"));  // the others are dropped
      }
    }
    for (int i = 0; i < 4 && p.ok() && !p.done(); ++i) {
      if (p.try_receive(out, &got) == ChannelResult::kOk) sink += got;
    }
    RequestLoan loan = client->try_loan_request();
    if (loan.ok()) {
      PendingResponse q = client->send_request(loan, 3);
      sink += q.ok();
    }
    sink += client->in_flight();
  }
  // The anchors look at their calls (never waiting).
  sink += t.request.cancelled() + t.pending.ready();
  if (server.ok()) server->close();
  if (client.ok()) client->close();
  // Put the service back as it was (the anchors' areas and peer slots included).
  std::memcpy(bytes, t.original.data(), t.original.size());
  if (sink == 0xFFFFFFFFFFFFFFFF) std::abort();
}

}  // namespace shmring::fuzz
