// read_service_stats (service.h): a service's counters, read like read_stats: with pread through
// core's SegmentFile (never mapped, not an attachment), only the few blocks the figures come from
// (headers, the queue's positions, server areas, client area headers and call headers), trusting
// nothing (every loop bounded by the validated geometry, read from the copy).
#include <cstring>
#include <vector>

#include "channel_segment.h"
#include "service_layout.h"
#include "shmring/core/detail/liveness_file.h"
#include "shmring/core/segment_directory.h"
#include "shmring/core/shared_memory.h"
#include "shmring/core/stable_hash.h"
#include "shmring/transport/service.h"

namespace shmring {

namespace {

// Aligned storage for copies of in-segment structs.
struct alignas(kFalseSharingRange) Block {
  std::byte b[kFalseSharingRange];
};

class Copy {
 public:
  explicit Copy(std::size_t bytes) : storage_((bytes + sizeof(Block) - 1) / sizeof(Block)), size_(bytes) {}
  std::span<std::byte> bytes() { return {reinterpret_cast<std::byte*>(storage_.data()), size_}; }
  template <typename T>
  const T& as(std::size_t offset = 0) const {
    return *reinterpret_cast<const T*>(reinterpret_cast<const std::byte*>(storage_.data()) + offset);
  }

 private:
  std::vector<Block> storage_;
  std::size_t size_;
};

}  // namespace

absl::StatusOr<ServiceStats> read_service_stats(std::string_view name) {
  if (absl::Status s = validate_channel_name(name); !s.ok()) return s;
  const std::string what = detail::cat("service '", name, "'");
  absl::StatusOr<SegmentFile> file = SegmentFile::open(
      std::string(kDefaultSegmentDirectory) + "/" + SharedMemory::native_key_for(channel_key(name)));
  if (!file.ok()) {
    if (absl::IsNotFound(file.status())) return absl::NotFoundError(detail::cat(what, ": no such service"));
    return file.status();
  }
  if (file->listing().liveness == SegmentLiveness::kStale) {
    return absl::NotFoundError(detail::cat(what, ": no live service (every endpoint is gone)"));
  }
  const std::uint64_t data_bytes = file->listing().data_bytes;
  Copy control(sizeof(ControlBlock));
  if (data_bytes < sizeof(ControlBlock)) return absl::DataLossError(detail::cat(what, ": too small"));
  if (absl::Status s = file->read(0, control.bytes()); !s.ok()) return s;
  absl::StatusOr<detail::ChannelInfo> info = detail::read_channel_header(&control.as<ControlBlock>(), data_bytes, what);
  if (!info.ok()) return info.status();
  if (info->kind != ChannelKind::kService) {
    return absl::FailedPreconditionError(detail::cat(what, ": the channel is a ", to_string(info->kind)));
  }
  if (info->name != name) return absl::DataLossError(detail::cat(what, ": names another channel"));
  // Control block and peer slots, then the service's headers (header, counters, misc).
  Copy peers(info->ring_offset);
  if (absl::Status s = file->read(0, peers.bytes()); !s.ok()) return s;
  constexpr std::size_t kHeaders = sizeof(detail::ServiceHeader) + sizeof(detail::ServiceCounters) +
                                   sizeof(detail::ServiceMisc);
  if (info->ring_bytes < kHeaders) return absl::DataLossError(detail::cat(what, ": region too small"));
  Copy headers(kHeaders);
  if (absl::Status s = file->read(info->ring_offset, headers.bytes()); !s.ok()) return s;
  const auto& header = headers.as<detail::ServiceHeader>();
  absl::StatusOr<detail::ServiceGeometry> geometry =
      detail::read_service_header(header, header.version.load(std::memory_order_acquire), info->ring_bytes);
  if (!geometry.ok()) return geometry.status();
  const detail::ServiceGeometry& g = *geometry;
  const detail::ServiceShape& shape = g.shape;
  ServiceStats st;
  st.name = info->name;
  st.max_request = shape.max_request;
  st.max_response = shape.max_response;
  st.max_in_flight = shape.max_in_flight;
  st.response_depth = shape.response_depth;
  st.max_clients = shape.max_clients;
  st.max_servers = shape.max_servers;
  st.max_active = shape.max_active;
  // Live servers and clients, judged by the channel's liveness file (asked read-only), else by
  // (pid, start time).
  absl::StatusOr<detail::LivenessFile> opened =
      detail::LivenessFile::open(stable_hash64(file->listing().native_key), info->liveness_id,
                                 file->listing().owner, /*writable=*/false);
  const detail::LivenessFile liveness = opened.ok() ? *std::move(opened) : detail::LivenessFile();
  const PeerSlot* slots = peer_slots(&peers.as<ControlBlock>());
  for (std::uint32_t i = 0; i < info->max_peers; ++i) {
    if (detail::state_of(slots[i]) != PeerState::kActive || !detail::peer_alive_in(liveness, i, slots[i])) continue;
    if (detail::role_of(slots[i]) == PeerRole::kServer) ++st.servers;
    if (detail::role_of(slots[i]) == PeerRole::kClient) ++st.clients;
  }
  const auto& c = headers.as<detail::ServiceCounters>(sizeof(detail::ServiceHeader));
  st.requests = c.retired_requests.load(std::memory_order_relaxed);
  st.served = c.retired_served.load(std::memory_order_relaxed);
  st.redelivered = c.redelivered.load(std::memory_order_relaxed);
  st.expired = c.expired.load(std::memory_order_relaxed);
  st.cancelled = c.cancelled.load(std::memory_order_relaxed);
  st.peer_gone = c.peer_gone.load(std::memory_order_relaxed);
  st.clients_reclaimed = c.clients_reclaimed.load(std::memory_order_relaxed);
  // The queue's positions: what waits for a server.
  Copy queue(sizeof(MpmcControl));
  if (file->read(info->ring_offset + g.queue_offset, queue.bytes()).ok()) {
    const auto& q = queue.as<MpmcControl>();
    const auto depth = static_cast<std::int64_t>(q.enqueue_pos.value.load(std::memory_order_relaxed) -
                                                 q.dequeue_pos.value.load(std::memory_order_relaxed));
    st.queued = depth <= 0 ? 0 : std::min<std::uint64_t>(static_cast<std::uint64_t>(depth), g.queue_capacity);
  }
  // Server areas (headers and held entries).
  Copy servers(g.server_stride * shape.max_servers);
  if (absl::Status s = file->read(info->ring_offset + g.servers_offset, servers.bytes()); !s.ok()) return s;
  for (std::uint32_t s = 0; s < shape.max_servers; ++s) {
    const auto& h = servers.as<detail::ServerAreaHeader>(s * g.server_stride);
    if (h.owner_token.load(std::memory_order_relaxed) == 0) continue;
    st.served += h.served.load(std::memory_order_relaxed);
    for (std::uint32_t k = 0; k < shape.max_active; ++k) {
      const auto& e = servers.as<std::atomic<std::uint64_t>>(s * g.server_stride + sizeof(detail::ServerAreaHeader) + k * 8);
      if (e.load(std::memory_order_relaxed) != 0) ++st.held;
    }
  }
  // Client areas: their counters and their calls' states.
  Copy area(sizeof(detail::ClientArea));
  Copy call(sizeof(detail::CallHeader));
  for (std::uint32_t a = 0; a < shape.max_clients; ++a) {
    const std::uint64_t base = info->ring_offset + g.clients_offset + a * g.client_stride;
    if (absl::Status s = file->read(base, area.bytes()); !s.ok()) return s;
    const auto& h = area.as<detail::ClientAreaHeader>();
    if (h.state.load(std::memory_order_relaxed) == static_cast<std::uint32_t>(detail::ClientAreaState::kFree)) {
      continue;
    }
    st.requests += h.requests.load(std::memory_order_relaxed);
    for (std::uint32_t k = 0; k < shape.max_in_flight; ++k) {
      if (absl::Status s = file->read(base + sizeof(detail::ClientArea) + k * g.call_stride, call.bytes()); !s.ok()) {
        return s;
      }
      const std::uint64_t state = call.as<detail::CallHeader>().state.load(std::memory_order_relaxed);
      if (detail::state_phase(state) != detail::CallPhase::kIdle) ++st.in_flight;
    }
  }
  return st;
}

}  // namespace shmring
