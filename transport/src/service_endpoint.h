// Private: what the two service endpoints (service_client.cc, service_server.cc) share: the
// channel spec of a service, the region, the recovery and its triggers, the client's wake-up, and
// the mechanics of the handles (detail::ServiceHandle in service.h).
//
// Handles. Each live handle is registered in its endpoint's table (a client: per call; a server:
// per held entry) and points back at the endpoint (owner_); a handle with no owner_ is inert.
// Moving a handle re-points the table (follow_handle); destroying one settles it
// (settle_handle: the pattern says what that means per kind); closing the endpoint makes every
// registered handle inert after handing back what it held (the destructors of the endpoints).
#pragma once

#include <climits>
#include <cstdint>
#include <memory>
#include <optional>

#include "endpoint.h"
#include "service_layout.h"
#include "service_recovery.h"
#include "shmring/core/futex.h"
#include "shmring/transport/service.h"

namespace shmring::detail {

// The channel spec of a service opened with `options` (`shape` receives the limits to create it
// with: the options', or the defaults).
ChannelSpec service_spec(const ServiceOptions& options, ServiceShape* shape);

// Checks what the application asked for: kInvalidArgument naming `name` and the limit.
absl::Status check_service_options(const ServiceOptions& options, std::string_view name);

// Fires the armed descriptor of the client that owns area `area` (out of line: the slow path).
void fire_client(ChannelSegment& seg, const ServiceRegion& region, std::uint32_t area) noexcept;

// After a response (or a change of a call's phase) in area `area`: wakes its client's parked
// waits and fires its armed descriptor. SYNC(wake) in wait.h: the same pairing on the area's own
// wake block (the client parks and arms there), so the RMW is what the fast path pays.
inline void notify_client(ChannelSegment& seg, const ServiceRegion& region, std::uint32_t area) noexcept {
  WakeBlock& wake = region.client(area).wake;
  const std::uint32_t waiters = wake.waiters.fetch_add(0, std::memory_order_seq_cst);
  if (waiters == 0) return;
  if ((waiters & kParkedMask) != 0) {
    wake.word.fetch_add(1, std::memory_order_release);
    futex_wake(&wake.word, INT_MAX);
  }
  if ((waiters >> kArmedShift) != 0) fire_client(seg, region, area);
}

struct ServiceEndpoint : Endpoint {
  std::optional<ServiceRegion> region;
  ServiceShape wanted;  // the opener's limits; 0: whatever the service has
  std::unique_ptr<ServiceRecovery> recovery;
  ServiceRecoveryResult open_recovery;  // what the open's recovery changed (acted on in opened())
  std::uint64_t last_recovery_ns = 0;
  std::uint32_t empty_polls = 0;  // try_ calls that found nothing since the last evidence check
  // Since when waiting calls have found nothing (0: something moved since), counted across calls
  // so that a loop of short waits behind a dead peer runs the recovery too.
  std::uint64_t idle_since_ns = 0;

  absl::Status attach_ring() override;
  void recover_locked() override;
  ChannelResult end_lease(Lease&) noexcept override { return ChannelResult::kOk; }  // no leases
  void peer_gone() noexcept override;

  // Runs the recovery now if the segment lock is free (never waits for it), then wakes whom its
  // changes concern. Reads /proc and takes the lock: the slow path only.
  void try_recover() noexcept;
  // try_recover, at most once per `interval_ns`.
  void recover_every(std::uint64_t now_ns, std::uint64_t interval_ns) noexcept;
  // A try_ call found nothing: every kEmptyPollsPerEvidenceCheck such calls it looks for evidence
  // of a dead peer (shared memory only) and recovers on it, at most once per kStalledRecoveryNs.
  void after_empty_poll() noexcept;
  // The idle hook of a waiting call: heartbeat, and the recovery once nothing has moved for
  // `interval_ns` (kStalledRecoveryNs with evidence of a stall, else kIdleRecoveryNs), then at
  // that rate.
  void idle(std::uint64_t now_ns, bool evident) noexcept;
  // Wakes the servers (orphans to take) and every client (phases changed) as `r` says.
  void notify_after(const ServiceRecoveryResult& r) noexcept;

  // The live servers (a peer-slot scan).
  std::uint32_t live_servers() const noexcept;

  // --- handles ---
  virtual ChannelResult settle_handle(ServiceHandle& handle) noexcept = 0;
  virtual void follow_handle(const ServiceHandle& from, ServiceHandle& to) noexcept = 0;
  // Makes a registered handle inert (its endpoint closed): kClosed, no bytes, no owner.
  static void orphan(ServiceHandle* handle) noexcept {
    if (handle == nullptr) return;
    handle->owner_ = nullptr;
    handle->orphaned_ = true;
    handle->result_ = ChannelResult::kClosed;
    handle->bytes_ = {};
  }
  // The handle is done with its endpoint: inert, its result kept.
  static void detach(ServiceHandle& handle) noexcept {
    handle.owner_ = nullptr;
    handle.bytes_ = {};
  }

  static constexpr std::uint32_t kEmptyPollsPerEvidenceCheck = 64;
  static constexpr std::uint64_t kStalledRecoveryNs = 1'000'000;   // evidence seen: 1 ms
  static constexpr std::uint64_t kIdleRecoveryNs = 20'000'000;     // a wait, nothing seen: 20 ms
};

}  // namespace shmring::detail
