#include "service_layout.h"

#include <cstring>

#include "shmring/core/detail/message.h"
#include "shmring/queue/ring_header.h"

namespace shmring::detail {

namespace {

constexpr std::uint64_t kHeadersBytes = sizeof(ServiceHeader) + sizeof(ServiceCounters) + sizeof(ServiceMisc);
static_assert(kHeadersBytes % kRegionAlignment == 0);

bool mul(std::uint64_t a, std::uint64_t b, std::uint64_t* out) { return !__builtin_mul_overflow(a, b, out); }
bool add(std::uint64_t a, std::uint64_t b, std::uint64_t* out) { return !__builtin_add_overflow(a, b, out); }

bool shape_in_range(const ServiceShape& s) {
  return s.max_request >= 1 && s.max_request <= kMaxServicePayload && s.max_response >= 1 &&
         s.max_response <= kMaxServicePayload && s.max_in_flight >= 1 &&
         s.max_in_flight <= kMaxInFlight && is_power_of_two(s.response_depth) &&
         s.response_depth <= kMaxResponseDepth && s.max_clients >= 1 &&
         s.max_clients <= kMaxServiceClients && s.max_servers >= 1 &&
         s.max_servers <= kMaxServiceServers && s.max_active >= 1 && s.max_active <= kMaxActive;
}

}  // namespace

std::optional<ServiceGeometry> service_geometry(const ServiceShape& shape) noexcept {
  if (!shape_in_range(shape)) return std::nullopt;
  ServiceGeometry g;
  g.shape = shape;
  std::uint64_t calls = 0;
  if (!mul(shape.max_clients, shape.max_in_flight, &calls)) return std::nullopt;
  // One ref per call at most, and twice as many slots: the queue is full only when a server is
  // held up inside its take (descheduled between claiming a ref and releasing its slot, or dead
  // until recovered) while the others take 2 x calls refs past it (FIFO by ticket), or when a
  // reclaimed client's refs wait there with no server to pass them.
  g.queue_capacity = 2;
  while (g.queue_capacity < 2 * calls) g.queue_capacity <<= 1;
  g.queue_offset = kHeadersBytes;
  g.queue_bytes = MpmcQueue<>::required_bytes({g.queue_capacity, sizeof(RequestRef), 0});
  if (g.queue_bytes == 0) return std::nullopt;
  g.servers_offset = align_up(g.queue_offset + g.queue_bytes, kFalseSharingRange);
  g.server_stride = align_up(sizeof(ServerAreaHeader) + std::uint64_t{shape.max_active} * 8, kFalseSharingRange);
  std::uint64_t servers_bytes = 0;
  if (!mul(g.server_stride, shape.max_servers, &servers_bytes) ||
      !add(g.servers_offset, servers_bytes, &g.clients_offset)) {
    return std::nullopt;
  }
  g.request_stride = align_up(sizeof(RequestBlock) + shape.max_request, 64);
  g.record_stride = align_up(sizeof(ResponseRecord) + shape.max_response, 64);
  std::uint64_t records = 0;
  if (!mul(g.record_stride, shape.response_depth, &records)) return std::nullopt;
  // Calls start on their own 128-byte block: a call's records (written by servers) never share a
  // prefetch pair with the next call's header (written by the client).
  g.call_stride = align_up(sizeof(CallHeader) + g.request_stride + records, kFalseSharingRange);
  std::uint64_t calls_bytes = 0;
  if (!mul(g.call_stride, shape.max_in_flight, &calls_bytes) ||
      !add(sizeof(ClientArea), calls_bytes, &g.client_stride)) {
    return std::nullopt;
  }
  std::uint64_t clients_bytes = 0;
  if (!mul(g.client_stride, shape.max_clients, &clients_bytes) ||
      !add(g.clients_offset, clients_bytes, &g.region_bytes)) {
    return std::nullopt;
  }
  if (g.region_bytes > (std::uint64_t{1} << 46)) return std::nullopt;
  return g;
}

absl::Status ServiceRegion::create(void* region, std::size_t bytes, const ServiceShape& shape) {
  const std::optional<ServiceGeometry> g = service_geometry(shape);
  if (!g) return absl::InvalidArgumentError("service: limits out of range");
  if (region == nullptr || reinterpret_cast<std::uintptr_t>(region) % kRegionAlignment != 0 ||
      bytes < g->region_bytes) {
    return absl::InvalidArgumentError(cat("service: region of ", bytes, " bytes for ", g->region_bytes));
  }
  auto* base = static_cast<std::byte*>(region);
  auto* header = static_cast<ServiceHeader*>(region);
  std::memset(region, 0, kHeadersBytes);
  absl::StatusOr<MpmcQueue<>> queue =
      MpmcQueue<>::create(base + g->queue_offset, g->queue_bytes, {g->queue_capacity, sizeof(RequestRef), 0});
  if (!queue.ok()) return queue.status();
  // Zero what the protocol reads (headers, held entries, call headers, record tags); payloads are
  // left as the segment had them (a fresh segment is zero anyway).
  for (std::uint32_t s = 0; s < shape.max_servers; ++s) {
    std::memset(base + g->servers_offset + s * g->server_stride, 0,
                sizeof(ServerAreaHeader) + std::size_t{shape.max_active} * 8);
  }
  for (std::uint32_t c = 0; c < shape.max_clients; ++c) {
    std::byte* area = base + g->clients_offset + c * g->client_stride;
    std::memset(area, 0, sizeof(ClientArea));
    for (std::uint32_t k = 0; k < shape.max_in_flight; ++k) {
      std::byte* call = area + sizeof(ClientArea) + k * g->call_stride;
      std::memset(call, 0, sizeof(CallHeader) + sizeof(RequestBlock));
      for (std::uint32_t r = 0; r < shape.response_depth; ++r) {
        std::memset(call + sizeof(CallHeader) + g->request_stride + r * g->record_stride, 0,
                    sizeof(ResponseRecord));
      }
    }
  }
  header->magic = kServiceMagic;
  header->abi = kRingAbiFingerprint;
  header->max_clients = shape.max_clients;
  header->max_servers = shape.max_servers;
  header->max_in_flight = shape.max_in_flight;
  header->max_active = shape.max_active;
  header->response_depth = shape.response_depth;
  header->max_request = shape.max_request;
  header->max_response = shape.max_response;
  header->queue_offset = g->queue_offset;
  header->queue_bytes = g->queue_bytes;
  header->servers_offset = g->servers_offset;
  header->server_stride = g->server_stride;
  header->clients_offset = g->clients_offset;
  header->client_stride = g->client_stride;
  header->call_stride = g->call_stride;
  header->record_stride = g->record_stride;
  header->region_bytes = g->region_bytes;
  // SYNC(service_ready): publishes the header and everything laid out above.
  header->version.store(kServiceLayoutVersion, std::memory_order_release);
  return absl::OkStatus();
}

absl::StatusOr<ServiceGeometry> read_service_header(const ServiceHeader& h, std::uint32_t version,
                                                    std::uint64_t region_bytes) {
  if (version == 0) return absl::UnavailableError("service: not ready yet");
  if (h.magic != kServiceMagic) return absl::DataLossError("service: bad magic");
  if (version != kServiceLayoutVersion || h.abi != kRingAbiFingerprint) {
    return absl::FailedPreconditionError(
        cat("service: layout version ", version, ", this build speaks ", kServiceLayoutVersion));
  }
  ServiceShape shape;
  shape.max_request = h.max_request;
  shape.max_response = h.max_response;
  shape.max_in_flight = h.max_in_flight;
  shape.response_depth = h.response_depth;
  shape.max_clients = h.max_clients;
  shape.max_servers = h.max_servers;
  shape.max_active = h.max_active;
  // Every offset and stride is recomputed from the limits and must be what the header says.
  const std::optional<ServiceGeometry> g = service_geometry(shape);
  if (!g || g->queue_offset != h.queue_offset || g->queue_bytes != h.queue_bytes ||
      g->servers_offset != h.servers_offset || g->server_stride != h.server_stride ||
      g->clients_offset != h.clients_offset || g->client_stride != h.client_stride ||
      g->call_stride != h.call_stride || g->record_stride != h.record_stride ||
      g->region_bytes != h.region_bytes || h.region_bytes > region_bytes) {
    return absl::DataLossError(cat("service: inconsistent header (region ", h.region_bytes,
                                   " bytes, mapped ", region_bytes, ")"));
  }
  return *g;
}

absl::StatusOr<ServiceRegion> ServiceRegion::attach(void* region, std::size_t bytes) {
  if (region == nullptr || reinterpret_cast<std::uintptr_t>(region) % kRegionAlignment != 0 ||
      bytes < kHeadersBytes) {
    return absl::DataLossError(cat("service: region of ", bytes, " bytes is too small"));
  }
  const auto* shared = static_cast<const ServiceHeader*>(region);
  // SYNC(service_ready): pairs with create()'s release store.
  const std::uint32_t version = shared->version.load(std::memory_order_acquire);
  ServiceHeader h;
  std::memcpy(static_cast<void*>(&h), static_cast<const void*>(shared), sizeof(h));
  absl::StatusOr<ServiceGeometry> g = read_service_header(h, version, bytes);
  if (!g.ok()) return g.status();
  auto* base = static_cast<std::byte*>(region);
  absl::StatusOr<MpmcQueue<>> queue = MpmcQueue<>::attach(base + g->queue_offset, g->queue_bytes);
  if (!queue.ok()) return queue.status();
  if (queue->capacity() != g->queue_capacity || queue->slot_size() != sizeof(RequestRef)) {
    return absl::DataLossError("service: request queue does not match the service header");
  }
  ServiceRegion r;
  r.base_ = base;
  r.g_ = *g;
  r.queue_.emplace(*std::move(queue));
  return r;
}

bool ServiceRegion::answered(CallHeader& c, std::uint32_t generation) const noexcept {
  for (std::uint32_t k = 0; k < g_.shape.response_depth; ++k) {
    ResponseRecord& r = record(c, k);
    // SYNC(response_tag): pairs with the release store that published the record.
    const std::uint64_t tag = r.tag.load(std::memory_order_acquire);
    if (state_generation(tag) == generation &&
        (r.flags.load(std::memory_order_relaxed) & kResponseFinal) != 0) {
      return true;
    }
  }
  return false;
}

std::uint32_t ServiceRegion::published(CallHeader& c, std::uint32_t generation) const noexcept {
  std::uint32_t count = 0;
  for (std::uint32_t k = 0; k < g_.shape.response_depth; ++k) {
    const std::uint64_t tag = record(c, k).tag.load(std::memory_order_acquire);
    if (state_generation(tag) != generation) continue;
    const std::uint32_t next = static_cast<std::uint32_t>(tag) + 1;
    if (next > count) count = next;
  }
  return count;
}

}  // namespace shmring::detail
