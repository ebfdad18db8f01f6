// Private: the in-segment layout of a service channel (ChannelKind::kService), after the control
// block, in the ring region. Integers and atomics only, fixed offsets (static_asserts below); the
// layout test in tests/transport/service_layout_test.cc pins it (bump kServiceLayoutVersion with
// any change of size, offset or meaning).
//
//   [0, 128)        ServiceHeader    geometry, written once by the creator, then `version`
//                                    release-stored (SYNC(service_ready))
//   [128, 256)      ServiceCounters  retired totals and rare events (atomic adds)
//   [256, 384)      ServiceMisc      orphan_epoch (servers look for orphaned calls when it moves)
//   [queue_offset)  MpmcQueue<> of RequestRef: the requests waiting for a server (one per call)
//   [servers_offset) ServerArea[max_servers]: header + held[max_active] (the calls a server holds)
//   [clients_offset) ClientArea[max_clients]: header, wake block, Call[max_in_flight]
//
// A call is one request in flight and its response path, in the client's area:
//   CallHeader (64 B) | RequestBlock (stamp, then the payload; 64-aligned) | ResponseRecord[depth]
// The client writes the request (and the generation g into the block's stamp) and the header,
// sets the call's state (g, kInFlight) and pushes a RequestRef {area, call, g} into the queue. A
// server claims the ref (the queue's claim record in its peer slot), writes {area, call, g} into a
// free held entry of its own area, checks the stamp still says g (a ref left behind by a client
// whose area was reclaimed meanwhile is dropped), releases the queue slot, and from then on holds
// the call: it reads the request in place and writes responses into the call's records (tag =
// g << 32 | sequence, release-stored last). A call has one holder at a time; a held entry names
// its holder, so the dead-peer recovery knows which calls a dead server held
// (service_recovery.h). SYNC(held_stamp): the server's held entry store and stamp load, and the
// recovery's stamp store and held entry load when it reclaims an area, are seq_cst: one of them
// sees the other's store, so a server either sees the area reclaimed or keeps it from being.
//
// Call state word: generation (high 32 bits) | CallPhase (low 8 bits). The generation grows each
// time the client reuses the call and never goes back (also across clients that reuse an area), so
// a stale ref or held entry never matches a later request.
//
// Nothing here is trusted: every index read from the segment is range-checked, every length
// clamped, and a reader never loops on what it reads (service_layout.cc, ServiceRegion::attach).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <type_traits>

#include "absl/status/statusor.h"
#include "control_block.h"
#include "shmring/core/layout.h"
#include "shmring/queue/mpmc_queue.h"

namespace shmring::detail {

inline constexpr std::uint64_t kServiceMagic = 0x3143565352524D53ULL;  // "SMRRSVC1" little-endian
inline constexpr std::uint32_t kServiceLayoutVersion = 1;

// Hard limits (what attach accepts; the options are checked against them).
inline constexpr std::uint32_t kMaxServiceClients = 1024;
inline constexpr std::uint32_t kMaxServiceServers = 1024;
inline constexpr std::uint32_t kMaxInFlight = 4096;      // calls per client
inline constexpr std::uint32_t kMaxActive = 4096;        // held entries per server
inline constexpr std::uint32_t kMaxResponseDepth = 4096; // records per call
inline constexpr std::uint64_t kMaxServicePayload = std::uint64_t{1} << 30;

struct alignas(kFalseSharingRange) ServiceHeader {
  std::uint64_t magic;                  // kServiceMagic
  std::atomic<std::uint32_t> version;   // 0 while being created, then kServiceLayoutVersion
  std::uint32_t abi;                    // kRingAbiFingerprint of the creator
  std::uint32_t max_clients;
  std::uint32_t max_servers;
  std::uint32_t max_in_flight;          // calls per client
  std::uint32_t max_active;             // held entries per server
  std::uint32_t response_depth;         // records per call (a power of two)
  std::uint32_t reserved0;
  std::uint64_t max_request;            // request payload bytes
  std::uint64_t max_response;           // response payload bytes
  std::uint64_t queue_offset;           // from the start of the region
  std::uint64_t queue_bytes;
  std::uint64_t servers_offset;
  std::uint64_t server_stride;
  std::uint64_t clients_offset;
  std::uint64_t client_stride;
  std::uint64_t call_stride;
  std::uint64_t record_stride;
  std::uint64_t region_bytes;
};
static_assert(std::is_standard_layout_v<ServiceHeader>);
static_assert(sizeof(ServiceHeader) == 128);
static_assert(offsetof(ServiceHeader, version) == 8);
static_assert(offsetof(ServiceHeader, max_clients) == 16);
static_assert(offsetof(ServiceHeader, response_depth) == 32);
static_assert(offsetof(ServiceHeader, max_request) == 40);
static_assert(offsetof(ServiceHeader, queue_offset) == 56);
static_assert(offsetof(ServiceHeader, servers_offset) == 72);
static_assert(offsetof(ServiceHeader, clients_offset) == 88);
static_assert(offsetof(ServiceHeader, call_stride) == 104);
static_assert(offsetof(ServiceHeader, region_bytes) == 120);

// Totals of areas whose owner left (folded in when an area is freed or reused) and rare events,
// counted with atomic adds by whoever sees them.
struct alignas(kFalseSharingRange) ServiceCounters {
  std::atomic<std::uint64_t> retired_requests;   // requests sent by clients that left
  std::atomic<std::uint64_t> retired_served;     // final responses by servers that left
  std::atomic<std::uint64_t> redelivered;        // calls handed to another server (holder died)
  std::atomic<std::uint64_t> expired;            // calls whose deadline passed before the answer
  std::atomic<std::uint64_t> cancelled;          // calls the client dropped before the answer
  std::atomic<std::uint64_t> peer_gone;          // calls ended without a final response
  std::atomic<std::uint64_t> clients_reclaimed;  // areas of clients that left, made free again
  std::atomic<std::uint64_t> retired_completed;  // calls completed by clients that left
  std::uint8_t pad[kFalseSharingRange - 8 * sizeof(std::atomic<std::uint64_t>)];
};
static_assert(std::is_standard_layout_v<ServiceCounters>);
static_assert(sizeof(ServiceCounters) == 128);
static_assert(offsetof(ServiceCounters, redelivered) == 16);
static_assert(offsetof(ServiceCounters, clients_reclaimed) == 48);

struct alignas(kFalseSharingRange) ServiceMisc {
  // Bumped (release) after a call is made kOrphaned; servers that see it move scan for orphans.
  // SYNC(orphan_epoch).
  std::atomic<std::uint64_t> orphan_epoch;
  std::uint8_t pad[kFalseSharingRange - sizeof(std::atomic<std::uint64_t>)];
};
static_assert(std::is_standard_layout_v<ServiceMisc>);
static_assert(sizeof(ServiceMisc) == 128);

// What travels through the request queue: which call, of which generation, and what a server
// needs to know before it looks at the call (so the fast path touches only the queue slot and
// the request payload).
struct RequestRef {
  std::uint32_t area;      // client area index
  std::uint32_t call;      // call index in the area
  std::uint32_t generation;
  std::uint32_t bytes;     // request payload bytes
  std::uint64_t id;        // the request id (PendingResponse::id)
  std::uint64_t deadline_ns;  // CLOCK_MONOTONIC
  std::uint32_t flags;     // kRequestAtMostOnce
  std::uint32_t reserved;
};
static_assert(std::is_standard_layout_v<RequestRef>);
static_assert(std::is_trivially_copyable_v<RequestRef>);
static_assert(sizeof(RequestRef) == 40);
static_assert(offsetof(RequestRef, id) == 16);
static_assert(offsetof(RequestRef, deadline_ns) == 24);

inline constexpr std::uint32_t kRequestAtMostOnce = 1;

// A server's area: its identity and the calls it holds.
struct alignas(64) ServerAreaHeader {
  std::atomic<std::uint64_t> owner_token;  // PeerSlot::token of the owner; 0: free
  std::atomic<std::uint32_t> owner_index;  // its peer slot
  std::atomic<std::uint32_t> reserved0;
  std::atomic<std::uint64_t> served;       // final responses written (the owner's counter)
  std::atomic<std::uint64_t> taken;        // requests taken (incl. redelivered)
  std::uint8_t pad[64 - 32];
};
static_assert(std::is_standard_layout_v<ServerAreaHeader>);
static_assert(sizeof(ServerAreaHeader) == 64);
static_assert(offsetof(ServerAreaHeader, served) == 16);
// Followed by std::atomic<std::uint64_t> held[max_active]: 0 (free) or held_entry(area, call, g).

constexpr std::uint64_t held_entry(std::uint32_t area, std::uint32_t call, std::uint32_t generation) {
  return (std::uint64_t{area + 1} << 48) | (std::uint64_t{call & 0xFFFF} << 32) | generation;
}
constexpr std::uint32_t held_area(std::uint64_t e) { return static_cast<std::uint32_t>(e >> 48) - 1; }
constexpr std::uint32_t held_call(std::uint64_t e) { return static_cast<std::uint32_t>(e >> 32) & 0xFFFF; }
constexpr std::uint32_t held_generation(std::uint64_t e) { return static_cast<std::uint32_t>(e); }

enum class ClientAreaState : std::uint32_t {
  kFree = 0,      // no owner; every call idle; a client opening may take it
  kOwned = 1,     // owner_token / owner_index name the live client
  kDraining = 2,  // the owner left (closed or died); waits until no server can write into it
};

// A client's area: identity, counters, and (in its own 128-byte block) the wake block its waits
// park on and its descriptor arms on.
struct alignas(kFalseSharingRange) ClientAreaHeader {
  std::atomic<std::uint64_t> owner_token;
  std::atomic<std::uint32_t> owner_index;
  std::atomic<std::uint32_t> state;           // ClientAreaState
  std::atomic<std::uint64_t> requests;        // the owner's counters: requests sent,
  std::atomic<std::uint64_t> completed;       // calls that got their final response
  std::uint8_t pad[kFalseSharingRange - 32];
};
static_assert(std::is_standard_layout_v<ClientAreaHeader>);
static_assert(sizeof(ClientAreaHeader) == 128);
static_assert(offsetof(ClientAreaHeader, requests) == 16);

struct ClientArea {
  ClientAreaHeader header;
  WakeBlock wake;  // the client's waits park here; servers notify it after each response
  // followed by the calls (call_stride each)
};
static_assert(std::is_standard_layout_v<ClientArea>);
static_assert(sizeof(ClientArea) == 256);
static_assert(offsetof(ClientArea, wake) == 128);

enum class CallPhase : std::uint32_t {
  kIdle = 0,        // the client may use it
  kInFlight = 1,    // sent: in the queue, being taken, or held by a server
  kCancelled = 2,   // the client dropped it; its holder (if any) finishes, then it is idle
  kOrphaned = 3,    // its holder died (at-least-once): waits for another server to take it
  kEnded = 4,       // ended without a (further) response: no server holds it or will
  kClientGone = 5,  // the client closed or died; its holder (if any) finishes
};
constexpr std::uint64_t call_state(std::uint32_t generation, CallPhase phase) {
  return (std::uint64_t{generation} << 32) | static_cast<std::uint32_t>(phase);
}
constexpr std::uint32_t state_generation(std::uint64_t s) { return static_cast<std::uint32_t>(s >> 32); }
constexpr CallPhase state_phase(std::uint64_t s) { return static_cast<CallPhase>(s & 0xFF); }

struct alignas(64) CallHeader {
  std::atomic<std::uint64_t> state;         // call_state(); SYNC(call_state)
  std::atomic<std::uint64_t> request_id;    // what the client sent with the current generation
  std::atomic<std::uint64_t> deadline_ns;
  std::atomic<std::uint32_t> request_bytes;
  std::atomic<std::uint32_t> request_flags;
  std::atomic<std::uint32_t> consumed;      // responses the client took (this generation)
  std::atomic<std::uint32_t> room_wanted;   // a server waits for room in this call's records
  std::uint8_t pad[64 - 40];
};
static_assert(std::is_standard_layout_v<CallHeader>);
static_assert(sizeof(CallHeader) == 64);
static_assert(offsetof(CallHeader, request_bytes) == 24);
static_assert(offsetof(CallHeader, consumed) == 32);

// The start of a call's request block; the payload follows (max_request bytes).
struct RequestBlock {
  std::atomic<std::uint64_t> stamp;  // the generation the payload belongs to; SYNC(held_stamp)
  std::uint64_t reserved;
};
static_assert(std::is_standard_layout_v<RequestBlock>);
static_assert(sizeof(RequestBlock) == 16);

// One response. `tag` is written last (release): generation << 32 | sequence in the call's
// stream. SYNC(response_tag).
struct alignas(16) ResponseRecord {
  std::atomic<std::uint64_t> tag;
  std::atomic<std::uint32_t> length;
  std::atomic<std::uint32_t> flags;  // kResponseFinal | kResponseRedelivered
  // followed by the payload (max_response bytes)
};
static_assert(std::is_standard_layout_v<ResponseRecord>);
static_assert(sizeof(ResponseRecord) == 16);

inline constexpr std::uint32_t kResponseFinal = 1;
inline constexpr std::uint32_t kResponseRedelivered = 2;

constexpr std::uint64_t response_tag(std::uint32_t generation, std::uint32_t sequence) {
  return (std::uint64_t{generation} << 32) | sequence;
}

// The geometry a service is created with.
struct ServiceShape {
  std::uint64_t max_request = 256;
  std::uint64_t max_response = 256;
  std::uint32_t max_in_flight = 16;
  std::uint32_t response_depth = 4;
  std::uint32_t max_clients = 16;
  std::uint32_t max_servers = 8;
  std::uint32_t max_active = 16;
};

// The validated geometry of a service region (a local copy: never read from the segment again).
struct ServiceGeometry {
  ServiceShape shape;
  std::uint64_t queue_capacity = 0;
  std::uint64_t queue_offset = 0;
  std::uint64_t queue_bytes = 0;
  std::uint64_t servers_offset = 0;
  std::uint64_t server_stride = 0;
  std::uint64_t clients_offset = 0;
  std::uint64_t client_stride = 0;
  std::uint64_t call_stride = 0;
  std::uint64_t request_stride = 0;  // RequestBlock + max_request, 64-aligned
  std::uint64_t record_stride = 0;
  std::uint64_t region_bytes = 0;
};

// The geometry for `shape` (nullopt when a limit is out of range or the sizes overflow).
std::optional<ServiceGeometry> service_geometry(const ServiceShape& shape) noexcept;

// Validates a copy of a ServiceHeader (the first sizeof(ServiceHeader) bytes of a region of
// `region_bytes`), whose version word was read with acquire: the geometry it describes, or
// kUnavailable (not published), kFailedPrecondition (another version or ABI), kDataLoss.
absl::StatusOr<ServiceGeometry> read_service_header(const ServiceHeader& copy, std::uint32_t version,
                                                    std::uint64_t region_bytes);

// A service region in this process: pointers computed from the validated geometry. Every
// accessor takes indexes the caller has checked against the geometry (area < max_clients, ...).
class ServiceRegion {
 public:
  // Lays the region out in [region, region + bytes) and publishes it (creator, under the lock).
  static absl::Status create(void* region, std::size_t bytes, const ServiceShape& shape);
  // Validates the header (acquire of `version`, then a local copy) and the queue inside.
  // kUnavailable (not published), kFailedPrecondition (another version or ABI), kDataLoss.
  static absl::StatusOr<ServiceRegion> attach(void* region, std::size_t bytes);

  const ServiceGeometry& geometry() const noexcept { return g_; }
  const ServiceShape& shape() const noexcept { return g_.shape; }
  ServiceCounters& counters() const noexcept {
    return *reinterpret_cast<ServiceCounters*>(base_ + sizeof(ServiceHeader));
  }
  ServiceMisc& misc() const noexcept {
    return *reinterpret_cast<ServiceMisc*>(base_ + sizeof(ServiceHeader) + sizeof(ServiceCounters));
  }
  MpmcQueue<>& queue() noexcept { return *queue_; }
  const MpmcQueue<>& queue() const noexcept { return *queue_; }

  ServerAreaHeader& server(std::uint32_t index) const noexcept {
    return *reinterpret_cast<ServerAreaHeader*>(base_ + g_.servers_offset + index * g_.server_stride);
  }
  std::atomic<std::uint64_t>* held(std::uint32_t server_index) const noexcept {
    return reinterpret_cast<std::atomic<std::uint64_t>*>(&server(server_index) + 1);
  }
  ClientArea& client(std::uint32_t index) const noexcept {
    return *reinterpret_cast<ClientArea*>(base_ + g_.clients_offset + index * g_.client_stride);
  }
  CallHeader& call(std::uint32_t area, std::uint32_t call) const noexcept {
    return *reinterpret_cast<CallHeader*>(reinterpret_cast<std::byte*>(&client(area)) +
                                          sizeof(ClientArea) + call * g_.call_stride);
  }
  RequestBlock& request(CallHeader& c) const noexcept {
    return *reinterpret_cast<RequestBlock*>(reinterpret_cast<std::byte*>(&c) + sizeof(CallHeader));
  }
  std::byte* request_payload(CallHeader& c) const noexcept {
    return reinterpret_cast<std::byte*>(&request(c)) + sizeof(RequestBlock);
  }
  ResponseRecord& record(CallHeader& c, std::uint32_t sequence) const noexcept {
    return *reinterpret_cast<ResponseRecord*>(reinterpret_cast<std::byte*>(&c) + sizeof(CallHeader) +
                                              g_.request_stride +
                                              (sequence & (g_.shape.response_depth - 1)) * g_.record_stride);
  }
  std::byte* response_payload(ResponseRecord& r) const noexcept {
    return reinterpret_cast<std::byte*>(&r) + sizeof(ResponseRecord);
  }

  // Whether the records of call `c` hold a final response of `generation` (the recovery's test
  // for "answered").
  bool answered(CallHeader& c, std::uint32_t generation) const noexcept;
  // The number of responses generation `generation` published in `c` (1 + the largest sequence
  // whose tag says so; 0 if none): where a server that takes the call over continues.
  std::uint32_t published(CallHeader& c, std::uint32_t generation) const noexcept;

 private:
  ServiceRegion() = default;
  std::byte* base_ = nullptr;
  ServiceGeometry g_;
  std::optional<MpmcQueue<>> queue_;
};

}  // namespace shmring::detail
