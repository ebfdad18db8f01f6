// Helpers for the service tests: a read-write view of a service's region as a hostile peer or a
// process stopped at a given instruction has it (white-box: transport/src/service_layout.h).
#pragma once

#include <optional>
#include <string>

#include "service_layout.h"
#include "shmring/transport/service.h"
#include "transport_test_util.h"

namespace shmring::testing {

struct RawService {
  RawChannel channel;
  std::optional<detail::ServiceRegion> region;
  explicit RawService(const std::string& name) : channel(name) {}
  bool attach() {
    if (!channel.attach()) return false;
    ControlBlock* cb = channel.control();
    auto r = detail::ServiceRegion::attach(reinterpret_cast<std::byte*>(cb) + cb->header.ring_offset,
                                           cb->header.ring_bytes);
    if (!r.ok()) return false;
    region.emplace(*std::move(r));
    return true;
  }
  PeerSlot& peer(std::uint32_t index) { return peer_slots(channel.control())[index]; }
  // The server area owned by the endpoint in peer slot `index` (-1: none).
  int server_area_of(std::uint32_t index) {
    for (std::uint32_t s = 0; s < region->shape().max_servers; ++s) {
      if (region->server(s).owner_token.load() != 0 && region->server(s).owner_index.load() == index) {
        return static_cast<int>(s);
      }
    }
    return -1;
  }
  int client_area_of(std::uint32_t index) {
    for (std::uint32_t a = 0; a < region->shape().max_clients; ++a) {
      if (region->client(a).header.state.load() == static_cast<std::uint32_t>(detail::ClientAreaState::kOwned) &&
          region->client(a).header.owner_index.load() == index) {
        return static_cast<int>(a);
      }
    }
    return -1;
  }
};

inline ServiceOptions service_options(std::uint32_t clients = 4, std::uint32_t servers = 4) {
  ServiceOptions o;
  o.max_request = 64;
  o.max_response = 64;
  o.max_in_flight = 4;
  o.response_depth = 2;
  o.max_clients = clients;
  o.max_servers = servers;
  o.max_active = 4;
  return o;
}

}  // namespace shmring::testing
