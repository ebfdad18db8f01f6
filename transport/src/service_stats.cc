// read_service_stats (service.h): a service's counters, read from a read-only attachment like
// read_stats, writing nothing and trusting nothing (every loop is bounded by the validated
// geometry).
#include "channel_segment.h"
#include "service_layout.h"
#include "shmring/core/shared_memory.h"
#include "shmring/transport/service.h"

namespace shmring {

absl::StatusOr<ServiceStats> read_service_stats(std::string_view name) {
  if (absl::Status s = validate_channel_name(name); !s.ok()) return s;
  SharedMemory memory(channel_key(name));
  if (!memory.attach(AccessMode::kReadOnly)) return memory.status();
  const std::string what = detail::cat("service '", name, "'");
  absl::StatusOr<detail::ChannelInfo> info = detail::read_channel_header(memory.const_data(), memory.size(), what);
  if (!info.ok()) return info.status();
  if (info->kind != ChannelKind::kService) {
    return absl::FailedPreconditionError(detail::cat(what, ": the channel is a ", to_string(info->kind)));
  }
  // attach() and every accessor below only read (the mapping is read-only).
  auto* base = const_cast<std::byte*>(static_cast<const std::byte*>(memory.const_data()));
  absl::StatusOr<detail::ServiceRegion> region =
      detail::ServiceRegion::attach(base + info->ring_offset, info->ring_bytes);
  if (!region.ok()) return region.status();
  const detail::ServiceShape& shape = region->shape();
  ServiceStats st;
  st.name = info->name;
  st.max_request = shape.max_request;
  st.max_response = shape.max_response;
  st.max_in_flight = shape.max_in_flight;
  st.response_depth = shape.response_depth;
  st.max_clients = shape.max_clients;
  st.max_servers = shape.max_servers;
  st.max_active = shape.max_active;
  const auto* control = static_cast<const ControlBlock*>(memory.const_data());
  const PeerSlot* slots = peer_slots(control);
  for (std::uint32_t i = 0; i < info->max_peers; ++i) {
    if (detail::state_of(slots[i]) != PeerState::kActive || !detail::peer_alive_in(memory, i, slots[i])) continue;
    if (detail::role_of(slots[i]) == PeerRole::kServer) ++st.servers;
    if (detail::role_of(slots[i]) == PeerRole::kClient) ++st.clients;
  }
  const detail::ServiceCounters& c = region->counters();
  st.requests = c.retired_requests.load(std::memory_order_relaxed);
  st.served = c.retired_served.load(std::memory_order_relaxed);
  st.redelivered = c.redelivered.load(std::memory_order_relaxed);
  st.expired = c.expired.load(std::memory_order_relaxed);
  st.cancelled = c.cancelled.load(std::memory_order_relaxed);
  st.peer_gone = c.peer_gone.load(std::memory_order_relaxed);
  st.clients_reclaimed = c.clients_reclaimed.load(std::memory_order_relaxed);
  for (std::uint32_t s = 0; s < shape.max_servers; ++s) {
    const detail::ServerAreaHeader& h = region->server(s);
    if (h.owner_token.load(std::memory_order_relaxed) == 0) continue;
    st.served += h.served.load(std::memory_order_relaxed);
    const std::atomic<std::uint64_t>* held = region->held(s);
    for (std::uint32_t k = 0; k < shape.max_active; ++k) {
      if (held[k].load(std::memory_order_relaxed) != 0) ++st.held;
    }
  }
  for (std::uint32_t a = 0; a < shape.max_clients; ++a) {
    const detail::ClientArea& area = region->client(a);
    const auto state = static_cast<detail::ClientAreaState>(area.header.state.load(std::memory_order_relaxed));
    if (state == detail::ClientAreaState::kFree) continue;
    st.requests += area.header.requests.load(std::memory_order_relaxed);
    for (std::uint32_t k = 0; k < shape.max_in_flight; ++k) {
      const std::uint64_t s = region->call(a, k).state.load(std::memory_order_relaxed);
      if (detail::state_phase(s) != detail::CallPhase::kIdle) ++st.in_flight;
    }
  }
  st.queued = region->queue().size_approx();
  return st;
}

}  // namespace shmring
