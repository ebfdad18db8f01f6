#include "service_recovery.h"

#include <cstring>

namespace shmring::detail {

namespace {

// A hostile peer can keep changing a call's state under us: a CAS loop gives up after this many
// rounds (the next recovery tries again).
constexpr int kMaxCasRounds = 64;

}  // namespace

ServiceRecovery::ServiceRecovery(ChannelSegment& seg, ServiceRegion& region) noexcept
    : seg_(seg),
      region_(region),
      queue_(QueueRecoveryPlan{PeerRole::kClient, PeerRole::kServer, &ServiceRecovery::settle_queue_item, this}) {}

bool ServiceRecovery::owner_gone(std::uint64_t token, std::uint32_t index) const noexcept {
  if (index >= seg_.info().max_peers) return true;
  const PeerSlot& slot = seg_.peers()[index];
  return state_of(slot) != PeerState::kActive || slot.token.load(std::memory_order_relaxed) != token;
}

void ServiceRecovery::settle_held(ServiceRegion& region, std::uint64_t entry, bool delivered,
                                  ServiceRecoveryResult* result) noexcept {
  const ServiceShape& shape = region.shape();
  const std::uint32_t a = held_area(entry);
  const std::uint32_t c = held_call(entry);
  const std::uint32_t g = held_generation(entry);
  if (a >= shape.max_clients || c >= shape.max_in_flight) return;  // not an honest entry
  CallHeader& call = region.call(a, c);
  ServiceCounters& counters = region.counters();
  for (int round = 0; round < kMaxCasRounds; ++round) {
    // SYNC(call_state): acquire pairs with the client's release store of (g, kInFlight) (the
    // request's flags are visible) and with other CASes on the word.
    std::uint64_t s = call.state.load(std::memory_order_acquire);
    if (state_generation(s) != g) return;  // the call moved on: nothing of ours left
    CallPhase target;
    const CallPhase phase = state_phase(s);
    if (phase == CallPhase::kInFlight) {
      if (region.answered(call, g)) return;  // its final response is there for the client
      const bool at_most_once =
          delivered && (call.request_flags.load(std::memory_order_relaxed) & kRequestAtMostOnce) != 0;
      target = at_most_once ? CallPhase::kEnded : CallPhase::kOrphaned;
    } else if (phase == CallPhase::kCancelled || phase == CallPhase::kClientGone) {
      target = CallPhase::kEnded;  // nobody holds it now: its client (or the reclaim) may reuse it
    } else {
      return;
    }
    if (!call.state.compare_exchange_strong(s, call_state(g, target), std::memory_order_acq_rel,
                                            std::memory_order_relaxed)) {
      continue;  // the client cancelled meanwhile: look again
    }
    if (target == CallPhase::kOrphaned) {
      counters.redelivered.fetch_add(1, std::memory_order_relaxed);
      // SYNC(orphan_epoch): after the CAS; a server that acquires the new epoch finds the call.
      region.misc().orphan_epoch.fetch_add(1, std::memory_order_acq_rel);
      if (result != nullptr) result->orphaned = true;
    } else if (phase == CallPhase::kInFlight) {
      counters.peer_gone.fetch_add(1, std::memory_order_relaxed);
    }
    if (result != nullptr) result->ended = true;
    return;
  }
}

const std::atomic<std::uint64_t>* ServiceRecovery::held_of(const PeerSlot& dead,
                                                           std::uint32_t* count) const noexcept {
  const std::uint32_t index = static_cast<std::uint32_t>(&dead - seg_.peers());
  const std::uint64_t token = dead.token.load(std::memory_order_relaxed);
  for (std::uint32_t s = 0; s < region_.shape().max_servers; ++s) {
    const ServerAreaHeader& h = region_.server(s);
    if (h.owner_token.load(std::memory_order_acquire) == token &&
        h.owner_index.load(std::memory_order_relaxed) == index) {
      *count = region_.shape().max_active;
      return region_.held(s);
    }
  }
  return nullptr;
}

void ServiceRecovery::settle_queue_item(void* self, std::uint64_t ticket, const PeerSlot* dead) noexcept {
  auto* r = static_cast<ServiceRecovery*>(self);
  std::span<const std::byte> item;
  if (r->region_.queue().view_of_ticket(ticket, &item) != RingResult::kOk || item.size() < sizeof(RequestRef)) {
    return;
  }
  RequestRef ref;
  std::memcpy(&ref, item.data(), sizeof ref);
  if (ref.area >= r->region_.shape().max_clients || ref.call >= r->region_.shape().max_in_flight) return;
  const std::uint64_t entry = held_entry(ref.area, ref.call, ref.generation);
  if (dead != nullptr) {
    std::uint32_t count = 0;
    if (const std::atomic<std::uint64_t>* held = r->held_of(*dead, &count)) {
      for (std::uint32_t k = 0; k < count; ++k) {
        // Recorded as held (it died after that step): its area's settlement decides.
        if (held[k].load(std::memory_order_acquire) == entry) return;
      }
    }
  }
  settle_held(r->region_, entry, /*delivered=*/false, &r->result_);
}

void ServiceRecovery::settle_server_area(std::uint32_t s) noexcept {
  ServerAreaHeader& h = region_.server(s);
  const std::uint64_t token = h.owner_token.load(std::memory_order_acquire);
  if (token == 0 || !owner_gone(token, h.owner_index.load(std::memory_order_relaxed))) return;
  free_server_area(region_, s, &result_);
}

void ServiceRecovery::free_server_area(ServiceRegion& region, std::uint32_t s,
                                       ServiceRecoveryResult* result) noexcept {
  ServerAreaHeader& h = region.server(s);
  std::atomic<std::uint64_t>* held = region.held(s);
  for (std::uint32_t k = 0; k < region.shape().max_active; ++k) {
    const std::uint64_t e = held[k].load(std::memory_order_acquire);
    if (e == 0) continue;
    settle_held(region, e, /*delivered=*/true, result);
    held[k].store(0, std::memory_order_release);
  }
  ServiceCounters& c = region.counters();
  c.retired_served.fetch_add(h.served.load(std::memory_order_relaxed), std::memory_order_relaxed);
  h.served.store(0, std::memory_order_relaxed);
  h.taken.store(0, std::memory_order_relaxed);
  h.owner_token.store(0, std::memory_order_release);
}

void ServiceRecovery::drain_client(std::uint32_t a) noexcept {
  ClientArea& area = region_.client(a);
  if (area.header.state.load(std::memory_order_acquire) != static_cast<std::uint32_t>(ClientAreaState::kOwned)) {
    return;
  }
  if (!owner_gone(area.header.owner_token.load(std::memory_order_relaxed),
                  area.header.owner_index.load(std::memory_order_relaxed))) {
    return;
  }
  drain_area(region_, a);
}

void ServiceRecovery::drain_area(ServiceRegion& region, std::uint32_t a) noexcept {
  ClientArea& area = region.client(a);
  ServiceCounters& counters = region.counters();
  for (std::uint32_t k = 0; k < region.shape().max_in_flight; ++k) {
    CallHeader& call = region.call(a, k);
    for (int round = 0; round < kMaxCasRounds; ++round) {
      std::uint64_t s = call.state.load(std::memory_order_acquire);
      const CallPhase phase = state_phase(s);
      CallPhase target;
      if (phase == CallPhase::kInFlight) {
        target = CallPhase::kClientGone;  // its holder (if any) finishes; what it writes is dropped
      } else if (phase == CallPhase::kOrphaned) {
        target = CallPhase::kEnded;  // nobody holds it: no server needs to take it any more
      } else {
        break;
      }
      if (call.state.compare_exchange_strong(s, call_state(state_generation(s), target),
                                              std::memory_order_acq_rel, std::memory_order_relaxed)) {
        if (phase == CallPhase::kInFlight && !region.answered(call, state_generation(s))) {
          counters.cancelled.fetch_add(1, std::memory_order_relaxed);
        }
        break;
      }
    }
  }
  counters.retired_requests.fetch_add(area.header.requests.load(std::memory_order_relaxed),
                                      std::memory_order_relaxed);
  counters.retired_completed.fetch_add(area.header.completed.load(std::memory_order_relaxed),
                                       std::memory_order_relaxed);
  area.header.requests.store(0, std::memory_order_relaxed);
  area.header.completed.store(0, std::memory_order_relaxed);
  area.header.owner_token.store(0, std::memory_order_relaxed);
  area.header.state.store(static_cast<std::uint32_t>(ClientAreaState::kDraining), std::memory_order_release);
}

void ServiceRecovery::reclaim_area(std::uint32_t a) noexcept {
  ClientArea& area = region_.client(a);
  if (area.header.state.load(std::memory_order_acquire) != static_cast<std::uint32_t>(ClientAreaState::kDraining)) {
    return;
  }
  const ServiceShape& shape = region_.shape();
  // SYNC(held_stamp): first every call's stamp moves to the next generation (seq_cst), then the
  // held entries are read (seq_cst). A server that took a ref of this area writes its held entry
  // (seq_cst) and then reads the stamp (seq_cst): it sees the new stamp and drops the ref, or we
  // see its entry and the area waits.
  for (std::uint32_t k = 0; k < shape.max_in_flight; ++k) {
    CallHeader& call = region_.call(a, k);
    std::uint32_t next = state_generation(call.state.load(std::memory_order_acquire)) + 1;
    if (next == 0) next = 1;
    region_.request(call).stamp.store(next, std::memory_order_seq_cst);
  }
  for (std::uint32_t s = 0; s < shape.max_servers; ++s) {
    const std::atomic<std::uint64_t>* held = region_.held(s);
    for (std::uint32_t k = 0; k < shape.max_active; ++k) {
      const std::uint64_t e = held[k].load(std::memory_order_seq_cst);
      if (e != 0 && held_area(e) == a) return;  // a server still holds a call of it: later
    }
  }
  for (std::uint32_t k = 0; k < shape.max_in_flight; ++k) {
    CallHeader& call = region_.call(a, k);
    const std::uint32_t next = static_cast<std::uint32_t>(region_.request(call).stamp.load(std::memory_order_relaxed));
    call.consumed.store(0, std::memory_order_relaxed);
    call.room_wanted.store(0, std::memory_order_relaxed);
    call.state.store(call_state(next, CallPhase::kIdle), std::memory_order_release);
  }
  area.wake.waiters.store(0, std::memory_order_relaxed);
  area.header.state.store(static_cast<std::uint32_t>(ClientAreaState::kFree), std::memory_order_release);
  region_.counters().clients_reclaimed.fetch_add(1, std::memory_order_relaxed);
  result_.reclaimed = true;
}

ServiceRecoveryResult ServiceRecovery::run_locked() noexcept {
  result_ = {};
  seg_.mark_dead_locked();
  for (std::uint32_t s = 0; s < region_.shape().max_servers; ++s) settle_server_area(s);
  for (std::uint32_t a = 0; a < region_.shape().max_clients; ++a) drain_client(a);
  queue_.run_locked(seg_, region_.queue(), /*can_adopt=*/false);
  for (std::uint32_t a = 0; a < region_.shape().max_clients; ++a) reclaim_area(a);
  return result_;
}

bool ServiceRecovery::stall_evident(std::uint64_t now_ns) noexcept {
  if (seg_.control()->misc.recovery_hint.load(std::memory_order_relaxed) != 0) return true;
  return queue_.stall_evident(seg_, region_.queue(), now_ns);
}

}  // namespace shmring::detail
