// Pins the on-segment layout of a service region (transport/src/service_layout.h) to
// kServiceLayoutVersion, and checks the region's geometry and its validation on attach. If the
// first test fails, something every process of a service reads moved: bump
// kServiceLayoutVersion and add a row for the new version below (keep the old rows).
#include <gtest/gtest.h>

#include <cstddef>
#include <cstring>
#include <map>
#include <new>
#include <string>
#include <vector>

#include "control_block.h"
#include "service_layout.h"
#include "shmring/transport/channel.h"
#include "shmring/transport/service.h"

namespace shmring::detail {
namespace {

#define SHMRING_FIELD(type, field) " " #field "@" + std::to_string(offsetof(type, field))
#define SHMRING_SIZE(type) std::string(#type ":") + std::to_string(sizeof(type))

std::string layout_fingerprint() {
  std::string s;
  s += SHMRING_SIZE(ServiceHeader) + SHMRING_FIELD(ServiceHeader, magic) + SHMRING_FIELD(ServiceHeader, version) +
       SHMRING_FIELD(ServiceHeader, abi) + SHMRING_FIELD(ServiceHeader, max_clients) +
       SHMRING_FIELD(ServiceHeader, max_servers) + SHMRING_FIELD(ServiceHeader, max_in_flight) +
       SHMRING_FIELD(ServiceHeader, max_active) + SHMRING_FIELD(ServiceHeader, response_depth) +
       SHMRING_FIELD(ServiceHeader, max_request) + SHMRING_FIELD(ServiceHeader, max_response) +
       SHMRING_FIELD(ServiceHeader, queue_offset) + SHMRING_FIELD(ServiceHeader, queue_bytes) +
       SHMRING_FIELD(ServiceHeader, servers_offset) + SHMRING_FIELD(ServiceHeader, server_stride) +
       SHMRING_FIELD(ServiceHeader, clients_offset) + SHMRING_FIELD(ServiceHeader, client_stride) +
       SHMRING_FIELD(ServiceHeader, call_stride) + SHMRING_FIELD(ServiceHeader, record_stride) +
       SHMRING_FIELD(ServiceHeader, region_bytes) + "\n";
  s += SHMRING_SIZE(ServiceCounters) + SHMRING_FIELD(ServiceCounters, retired_requests) +
       SHMRING_FIELD(ServiceCounters, retired_served) + SHMRING_FIELD(ServiceCounters, redelivered) +
       SHMRING_FIELD(ServiceCounters, expired) + SHMRING_FIELD(ServiceCounters, cancelled) +
       SHMRING_FIELD(ServiceCounters, peer_gone) + SHMRING_FIELD(ServiceCounters, clients_reclaimed) +
       SHMRING_FIELD(ServiceCounters, retired_completed) + "\n";
  s += SHMRING_SIZE(ServiceMisc) + SHMRING_FIELD(ServiceMisc, orphan_epoch) + "\n";
  s += SHMRING_SIZE(RequestRef) + SHMRING_FIELD(RequestRef, area) + SHMRING_FIELD(RequestRef, call) +
       SHMRING_FIELD(RequestRef, generation) + SHMRING_FIELD(RequestRef, bytes) + SHMRING_FIELD(RequestRef, id) +
       SHMRING_FIELD(RequestRef, deadline_ns) + SHMRING_FIELD(RequestRef, flags) + "\n";
  s += SHMRING_SIZE(ServerAreaHeader) + SHMRING_FIELD(ServerAreaHeader, owner_token) +
       SHMRING_FIELD(ServerAreaHeader, owner_index) + SHMRING_FIELD(ServerAreaHeader, served) +
       SHMRING_FIELD(ServerAreaHeader, taken) + "\n";
  s += SHMRING_SIZE(ClientAreaHeader) + SHMRING_FIELD(ClientAreaHeader, owner_token) +
       SHMRING_FIELD(ClientAreaHeader, owner_index) + SHMRING_FIELD(ClientAreaHeader, state) +
       SHMRING_FIELD(ClientAreaHeader, requests) + SHMRING_FIELD(ClientAreaHeader, completed) + "\n";
  s += SHMRING_SIZE(ClientArea) + SHMRING_FIELD(ClientArea, wake) + "\n";
  s += SHMRING_SIZE(CallHeader) + SHMRING_FIELD(CallHeader, state) + SHMRING_FIELD(CallHeader, request_id) +
       SHMRING_FIELD(CallHeader, deadline_ns) + SHMRING_FIELD(CallHeader, request_bytes) +
       SHMRING_FIELD(CallHeader, request_flags) + SHMRING_FIELD(CallHeader, consumed) +
       SHMRING_FIELD(CallHeader, room_wanted) + "\n";
  s += SHMRING_SIZE(RequestBlock) + SHMRING_FIELD(RequestBlock, stamp) + "\n";
  s += SHMRING_SIZE(ResponseRecord) + SHMRING_FIELD(ResponseRecord, tag) + SHMRING_FIELD(ResponseRecord, length) +
       SHMRING_FIELD(ResponseRecord, flags) + "\n";
  // Constants whose values are part of the format.
  s += "magic=" + std::to_string(kServiceMagic) + " kind=" + std::to_string(static_cast<int>(ChannelKind::kService)) +
       " roles=" + std::to_string(static_cast<int>(PeerRole::kServer)) +
       std::to_string(static_cast<int>(PeerRole::kClient)) + " phases=" +
       std::to_string(static_cast<int>(CallPhase::kIdle)) + std::to_string(static_cast<int>(CallPhase::kInFlight)) +
       std::to_string(static_cast<int>(CallPhase::kCancelled)) +
       std::to_string(static_cast<int>(CallPhase::kOrphaned)) + std::to_string(static_cast<int>(CallPhase::kEnded)) +
       std::to_string(static_cast<int>(CallPhase::kClientGone)) +
       " areas=" + std::to_string(static_cast<int>(ClientAreaState::kFree)) +
       std::to_string(static_cast<int>(ClientAreaState::kOwned)) +
       std::to_string(static_cast<int>(ClientAreaState::kDraining)) + " at_most_once=" +
       std::to_string(kRequestAtMostOnce) + " final=" + std::to_string(kResponseFinal) +
       " redelivered=" + std::to_string(kResponseRedelivered) + " armed_on_own=" + std::to_string(kArmedOnOwn) +
       " held(3,7,9)=" + std::to_string(held_entry(3, 7, 9)) + " state(5,ended)=" +
       std::to_string(call_state(5, CallPhase::kEnded)) + " tag(5,2)=" + std::to_string(response_tag(5, 2)) + "\n";
  const std::optional<ServiceGeometry> g = service_geometry(ServiceShape{});
  s += "default geometry: queue " + std::to_string(g->queue_capacity) + "@" + std::to_string(g->queue_offset) +
       "+" + std::to_string(g->queue_bytes) + " servers@" + std::to_string(g->servers_offset) + "x" +
       std::to_string(g->server_stride) + " clients@" + std::to_string(g->clients_offset) + "x" +
       std::to_string(g->client_stride) + " call " + std::to_string(g->call_stride) + " request " +
       std::to_string(g->request_stride) + " record " + std::to_string(g->record_stride) + " region " +
       std::to_string(g->region_bytes) + "\n";
  return s;
}

const std::map<std::uint32_t, std::string>& pinned_layouts() {
  static const std::map<std::uint32_t, std::string> layouts = {
      // 1: the first service layout.
      {1,
       "ServiceHeader:128 magic@0 version@8 abi@12 max_clients@16 max_servers@20 max_in_flight@24 "
       "max_active@28 response_depth@32 max_request@40 max_response@48 queue_offset@56 queue_bytes@64 "
       "servers_offset@72 server_stride@80 clients_offset@88 client_stride@96 call_stride@104 "
       "record_stride@112 region_bytes@120\n"
       "ServiceCounters:128 retired_requests@0 retired_served@8 redelivered@16 expired@24 cancelled@32 "
       "peer_gone@40 clients_reclaimed@48 retired_completed@56\n"
       "ServiceMisc:128 orphan_epoch@0\n"
       "RequestRef:40 area@0 call@4 generation@8 bytes@12 id@16 deadline_ns@24 flags@32\n"
       "ServerAreaHeader:64 owner_token@0 owner_index@8 served@16 taken@24\n"
       "ClientAreaHeader:128 owner_token@0 owner_index@8 state@12 requests@16 completed@24\n"
       "ClientArea:256 wake@128\n"
       "CallHeader:64 state@0 request_id@8 deadline_ns@16 request_bytes@24 request_flags@28 consumed@32 "
       "room_wanted@36\n"
       "RequestBlock:16 stamp@0\n"
       "ResponseRecord:16 tag@0 length@8 flags@12\n"
       "magic=3549775847161482579 kind=4 roles=56 phases=012345 areas=012 at_most_once=1 final=1 "
       "redelivered=2 armed_on_own=3 held(3,7,9)=1125929971613705 state(5,ended)=21474836484 "
       "tag(5,2)=21474836482\n"
       "default geometry: queue 512@384+33280 servers@33664x256 clients@35712x26880 call 1664 request 320 "
       "record 320 region 465792\n"},
  };
  return layouts;
}

TEST(ServiceLayoutTest, LayoutIsPinnedForThisVersion) {
  const auto& layouts = pinned_layouts();
  const auto it = layouts.find(kServiceLayoutVersion);
  ASSERT_NE(it, layouts.end()) << "no pinned layout for kServiceLayoutVersion " << kServiceLayoutVersion
                               << "; add this one:\n"
                               << layout_fingerprint();
  EXPECT_EQ(layout_fingerprint(), it->second)
      << "the service layout changed: bump kServiceLayoutVersion and pin the new layout";
}

TEST(ServiceLayoutTest, GeometryKeepsWritersApartAndRefusesWhatDoesNotFit) {
  ServiceShape shape;
  shape.max_request = 1;
  shape.max_response = 1000;
  shape.max_in_flight = 3;
  shape.response_depth = 8;
  const std::optional<ServiceGeometry> g = service_geometry(shape);
  ASSERT_TRUE(g.has_value());
  EXPECT_EQ(g->queue_capacity, 128u);  // >= 2 x clients x calls, a power of two
  EXPECT_EQ(g->servers_offset % kFalseSharingRange, 0u);
  EXPECT_EQ(g->clients_offset % kFalseSharingRange, 0u);
  EXPECT_EQ(g->call_stride % kFalseSharingRange, 0u);  // calls never share a prefetch pair
  EXPECT_EQ(g->client_stride % kFalseSharingRange, 0u);
  EXPECT_EQ(g->record_stride % 64, 0u);
  EXPECT_GE(g->record_stride, sizeof(ResponseRecord) + 1000);
  for (ServiceShape bad : {ServiceShape{0, 1, 1, 1, 1, 1, 1}, ServiceShape{1, 1, 0, 1, 1, 1, 1},
                           ServiceShape{1, 1, 1, 3, 1, 1, 1}, ServiceShape{1, 1, 1, 1, 0, 1, 1},
                           ServiceShape{1, 1, 1, 1, 1, 1, 0}, ServiceShape{std::uint64_t{1} << 31, 1, 1, 1, 1, 1, 1},
                           ServiceShape{1, 1, kMaxInFlight + 1, 1, 1, 1, 1}}) {
    EXPECT_FALSE(service_geometry(bad).has_value());
  }
  // Huge but valid limits overflow nothing: the region is refused by its size, not wrapped.
  ServiceShape huge{kMaxServicePayload, kMaxServicePayload, kMaxInFlight, kMaxResponseDepth,
                    kMaxServiceClients, 1, 1};
  EXPECT_FALSE(service_geometry(huge).has_value());
}

TEST(ServiceLayoutTest, AttachValidatesEveryHeaderField) {
  const std::optional<ServiceGeometry> g = service_geometry(ServiceShape{});
  ASSERT_TRUE(g.has_value());
  auto* raw = static_cast<std::byte*>(::operator new(g->region_bytes, std::align_val_t{4096}));
  ASSERT_TRUE(ServiceRegion::create(raw, g->region_bytes, ServiceShape{}).ok());
  ASSERT_TRUE(ServiceRegion::attach(raw, g->region_bytes).ok());
  EXPECT_EQ(ServiceRegion::attach(raw, g->region_bytes - 1).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(ServiceRegion::attach(raw + 64, g->region_bytes - 64).status().code(), absl::StatusCode::kDataLoss);
  std::vector<std::byte> saved(raw, raw + sizeof(ServiceHeader));
  // Every 4-byte word of the header changed alone makes attach refuse (or, for the version word
  // at 0, report not-ready / another version).
  for (std::size_t off = 0; off < sizeof(ServiceHeader); off += 4) {
    if (off == 36) continue;  // reserved0: not read
    std::uint32_t word = 0;
    std::memcpy(&word, raw + off, 4);
    const std::uint32_t changed = word ^ 0x00010000u;
    std::memcpy(raw + off, &changed, 4);
    EXPECT_FALSE(ServiceRegion::attach(raw, g->region_bytes).ok()) << "offset " << off;
    std::memcpy(raw, saved.data(), saved.size());
  }
  auto* header = reinterpret_cast<ServiceHeader*>(raw);
  header->version.store(0);
  EXPECT_EQ(ServiceRegion::attach(raw, g->region_bytes).status().code(), absl::StatusCode::kUnavailable);
  header->version.store(kServiceLayoutVersion + 1);
  EXPECT_EQ(ServiceRegion::attach(raw, g->region_bytes).status().code(), absl::StatusCode::kFailedPrecondition);
  ::operator delete(raw, std::align_val_t{4096});
}

}  // namespace
}  // namespace shmring::detail
