// ServiceServer, ActiveRequest and ResponseLoan: the server's side of a service (service.h; the
// layout and protocol in service_layout.h).
//
// A server owns one server area: max_active held entries naming the calls it holds. Taking a
// request is the queue pattern's claim (recorded in the server's peer slot), the held entry, the
// stamp check and the release of the queue slot; answering writes records straight into the
// client's call. A request whose server died is taken over from the call's state (kOrphaned).
#include "shmring/transport/service.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "queue_recovery.h"
#include "service_endpoint.h"
#include "wait.h"

namespace shmring {
namespace detail {

struct ServiceServerEndpoint final : ServiceEndpoint {
  struct LocalHeld {
    bool used = false;
    std::uint32_t consumed_seen = 0;  // the client's consumed count as last read
    ServiceHandle* request = nullptr;
    ServiceHandle* loan = nullptr;
  };
  std::uint32_t area = 0;
  bool has_area = false;
  std::vector<LocalHeld> held;
  std::vector<std::uint32_t> free_held;
  std::uint64_t orphan_epoch_seen = 0;
  std::uint64_t served = 0;
  std::uint64_t taken = 0;

  ~ServiceServerEndpoint() override;
  absl::Status registered_locked() override;
  absl::Status opened() override;
  std::shared_ptr<WaitDescriptor> make_descriptor(int* error) noexcept override;
  ChannelResult settle_handle(ServiceHandle& handle) noexcept override;
  void follow_handle(const ServiceHandle& from, ServiceHandle& to) noexcept override;

  const ServiceShape& shape() const { return region->shape(); }
  PeerSlot& me() const { return *seg->self(); }
  std::atomic<std::uint64_t>& held_word(std::uint32_t k) const { return region->held(area)[k]; }
  bool usable() const { return has_area && seg->owned_here(); }

  // One attempt to take a request: an orphan first (when the epoch moved), then the queue.
  // True with `request` bound; false when there is none (or no free held entry).
  bool take_one(ServiceHandle& request) noexcept;
  bool take_orphan(ServiceHandle& request) noexcept;
  bool take_from_queue(ServiceHandle& request, bool* corrupt) noexcept;
  void bind(ServiceHandle& request, std::uint32_t k, std::uint32_t a, std::uint32_t c, std::uint32_t g,
            std::uint64_t id, std::uint64_t deadline, std::uint32_t bytes, std::uint32_t flags,
            std::uint32_t sequence, bool redelivered) noexcept;
  // Whether a request may be waiting (queue not empty, orphans announced): after a descriptor
  // was armed on another call's behalf.
  bool work_pending() const noexcept;
  // work_pending(), or a stream held here other than `except` that waited for room and may go
  // on (room made, or its client gone): after a re-arm that may have drained the wake-up of
  // work other than the one the caller attempted, the descriptor is left readable if true.
  bool other_work(const ServiceHandle* except) noexcept;

  // Room for the next response of `request`. kOk, kWouldBlock (the client has not taken enough),
  // kCancelled / kPeerGone (nobody will take them).
  ChannelResult room(ServiceHandle& request) noexcept;
  // kOk, kCancelled or kPeerGone from the call's state.
  ChannelResult client_state(const ServiceHandle& request) const noexcept;
  // room(), waiting (room_wanted set, parked on data_wake) up to the request's deadline.
  ChannelResult wait_room(ServiceHandle& request, bool blocking) noexcept;
  // Publishes `bytes` written in the record of the request's next sequence.
  void publish(ServiceHandle& request, std::size_t bytes, bool final) noexcept;
  // The request is done (final written, or dropped): its held entry freed, the handle detached.
  void finish(ServiceHandle& request) noexcept;
  // ActiveRequest::try_respond / respond.
  ChannelResult respond_copy(ServiceHandle& request, std::span<const std::byte> response, bool final,
                             bool blocking) noexcept;
};

absl::Status ServiceServerEndpoint::registered_locked() {
  for (std::uint32_t s = 0; s < shape().max_servers; ++s) {
    ServerAreaHeader& h = region->server(s);
    if (h.owner_token.load(std::memory_order_acquire) != 0) continue;
    area = s;
    has_area = true;
    for (std::uint32_t k = 0; k < shape().max_active; ++k) held_word(k).store(0, std::memory_order_relaxed);
    h.served.store(0, std::memory_order_relaxed);
    h.taken.store(0, std::memory_order_relaxed);
    h.owner_index.store(seg->self_index(), std::memory_order_relaxed);
    h.owner_token.store(seg->self_token(), std::memory_order_release);
    held.assign(shape().max_active, LocalHeld{});
    free_held.clear();
    for (std::uint32_t k = shape().max_active; k-- > 0;) free_held.push_back(k);
    // Orphans made before we came are ours to look for at the first take.
    orphan_epoch_seen = region->misc().orphan_epoch.load(std::memory_order_acquire) - 1;
    return absl::OkStatus();
  }
  return absl::ResourceExhaustedError(cat("service '", seg->info().name, "': all ", shape().max_servers,
                                          " server areas are taken"));
}

absl::Status ServiceServerEndpoint::opened() {
  notify_after(open_recovery);
  return absl::OkStatus();
}

std::shared_ptr<WaitDescriptor> ServiceServerEndpoint::make_descriptor(int* error) noexcept {
  WaitPlan plan;
  plan.wake = &seg->control()->data_wake;
  plan.armed_on = kArmedOnData;
  plan.ready_event = WaitEvent::kData;
  // Another server's death leaves calls to take over (its hang-up runs the recovery at once);
  // a client's death cancels the calls it had here.
  plan.watched[0] = PeerRole::kServer;
  plan.watched[1] = PeerRole::kClient;
  plan.watched[2] = PeerRole::kServer;
  plan.start_readable = true;
  return WaitDescriptor::create(*seg, plan, error);
}

ServiceServerEndpoint::~ServiceServerEndpoint() {
  for (LocalHeld& h : held) {
    orphan(h.request);
    orphan(h.loan);
    h.request = h.loan = nullptr;
  }
  if (!has_area || !seg->owned_here() || seg->self() == nullptr) return;
  // The requests we hold go to another server (or end, at_most_once), as if we had died; then
  // the area is free. Lock-free (CAS on the calls' states); the recovery acts only on areas whose
  // owner is gone.
  ServiceRecoveryResult r;
  me().sent.store(served, std::memory_order_relaxed);
  ServiceRecovery::free_server_area(*region, area, &r);
  notify_after(r);
}

// --- taking requests ----------------------------------------------------------------------------------

void ServiceServerEndpoint::bind(ServiceHandle& request, std::uint32_t k, std::uint32_t a, std::uint32_t c,
                                 std::uint32_t g, std::uint64_t id, std::uint64_t deadline, std::uint32_t bytes,
                                 std::uint32_t flags, std::uint32_t sequence, bool redelivered) noexcept {
  free_held.pop_back();  // k: take_orphan and take_from_queue use the last free entry
  LocalHeld& h = held[k];
  h.used = true;
  h.consumed_seen = 0;
  h.request = &request;
  h.loan = nullptr;
  request.owner_ = this;
  request.result_ = ChannelResult::kOk;
  request.index_ = k;
  request.area_ = a;
  request.call_ = c;
  request.generation_ = g;
  request.id_ = id;
  request.deadline_ns_ = deadline;
  request.flags_ = flags;
  request.sequence_ = sequence;
  request.redelivered_ = redelivered;
  request.done_ = false;
  const std::uint32_t length = static_cast<std::uint32_t>(std::min<std::uint64_t>(bytes, shape().max_request));
  request.bytes_ = std::span<std::byte>(region->request_payload(region->call(a, c)), length);
  ++taken;
  region->server(area).taken.store(taken, std::memory_order_relaxed);
  me().received.store(taken, std::memory_order_relaxed);
}

bool ServiceServerEndpoint::take_orphan(ServiceHandle& request) noexcept {
  // SYNC(orphan_epoch): acquire pairs with the release of the epoch after a call was orphaned.
  const std::uint64_t epoch = region->misc().orphan_epoch.load(std::memory_order_acquire);
  if (epoch == orphan_epoch_seen) return false;
  const std::uint32_t k = free_held.back();
  for (std::uint32_t a = 0; a < shape().max_clients; ++a) {
    for (std::uint32_t c = 0; c < shape().max_in_flight; ++c) {
      CallHeader& call = region->call(a, c);
      std::uint64_t s = call.state.load(std::memory_order_acquire);
      if (state_phase(s) != CallPhase::kOrphaned) continue;
      const std::uint32_t g = state_generation(s);
      // Held first, then taken (a kill in between leaves the call kOrphaned: nothing lost).
      held_word(k).store(held_entry(a, c, g), std::memory_order_seq_cst);
      if (!call.state.compare_exchange_strong(s, call_state(g, CallPhase::kInFlight), std::memory_order_acq_rel,
                                              std::memory_order_relaxed)) {
        held_word(k).store(0, std::memory_order_release);
        continue;  // another server (or the client's cancel) was first
      }
      // SYNC(call_state): the CAS acquired the client's release of (g, kInFlight): the header
      // and the request are visible.
      bind(request, k, a, c, g, call.request_id.load(std::memory_order_relaxed),
           call.deadline_ns.load(std::memory_order_relaxed), call.request_bytes.load(std::memory_order_relaxed),
           call.request_flags.load(std::memory_order_relaxed), region->published(call, g), /*redelivered=*/true);
      return true;
    }
  }
  orphan_epoch_seen = epoch;  // nothing left that was announced up to `epoch`
  return false;
}

bool ServiceServerEndpoint::take_from_queue(ServiceHandle& request, bool* corrupt) noexcept {
  MpmcQueue<>& q = region->queue();
  // Refs that cannot be served (a reclaimed client's, or garbage) are passed; a few per call.
  for (int skipped = 0; skipped < 16; ++skipped) {
    const MpmcQueue<>::Claim claim = record_claim(me(), [&] { return q.try_claim_read(); });
    if (claim.result == RingResult::kEmpty) return false;
    if (claim.result != RingResult::kOk) {
      *corrupt = true;
      return false;
    }
    RequestRef ref{};
    const bool whole = claim.buffer.size() == sizeof(RequestRef);
    if (whole) std::memcpy(&ref, claim.buffer.data(), sizeof ref);
    const bool sane = whole && ref.area < shape().max_clients && ref.call < shape().max_in_flight &&
                      ref.bytes <= shape().max_request && ref.generation != 0;
    const std::uint32_t k = free_held.back();
    bool current = false;
    if (sane) {
      CallHeader& call = region->call(ref.area, ref.call);
      RequestBlock& block = region->request(call);
      __builtin_prefetch(region->request_payload(call));
      // SYNC(held_stamp): held entry, then the stamp, both seq_cst (see service_layout.h).
      held_word(k).store(held_entry(ref.area, ref.call, ref.generation), std::memory_order_seq_cst);
      current = block.stamp.load(std::memory_order_seq_cst) == ref.generation;
      if (!current) held_word(k).store(0, std::memory_order_release);
    }
    const RingResult released = q.release(claim);
    clear_claim(me());
    if (released != RingResult::kOk && current) {
      // A recovery freed our claim (we were taken for dead): the call is settled by it.
      held_word(k).store(0, std::memory_order_release);
      current = false;
    }
    if (!current) continue;
    bind(request, k, ref.area, ref.call, ref.generation, ref.id, ref.deadline_ns, ref.bytes, ref.flags, 0,
         /*redelivered=*/false);
    return true;
  }
  return false;
}

bool ServiceServerEndpoint::take_one(ServiceHandle& request) noexcept {
  if (free_held.empty()) return false;
  if (take_orphan(request)) return true;
  bool corrupt = false;
  return take_from_queue(request, &corrupt);
}

bool ServiceServerEndpoint::work_pending() const noexcept {
  return region->queue().size_approx() != 0 ||
         region->misc().orphan_epoch.load(std::memory_order_acquire) != orphan_epoch_seen;
}

bool ServiceServerEndpoint::other_work(const ServiceHandle* except) noexcept {
  if (work_pending()) return true;
  for (LocalHeld& h : held) {
    if (!h.used || h.request == nullptr || h.request == except) continue;
    if (region->call(h.request->area_, h.request->call_).room_wanted.load(std::memory_order_relaxed) == 0) continue;
    if (room(*h.request) != ChannelResult::kWouldBlock) return true;
  }
  return false;
}

// --- answering ---------------------------------------------------------------------------------------

ChannelResult ServiceServerEndpoint::client_state(const ServiceHandle& request) const noexcept {
  const std::uint64_t s =
      region->call(request.area_, request.call_).state.load(std::memory_order_acquire);
  if (state_generation(s) != request.generation_) return ChannelResult::kPeerGone;
  switch (state_phase(s)) {
    case CallPhase::kCancelled: return ChannelResult::kCancelled;
    case CallPhase::kClientGone:
    case CallPhase::kEnded:
    case CallPhase::kIdle: return ChannelResult::kPeerGone;
    default: return ChannelResult::kOk;
  }
}

ChannelResult ServiceServerEndpoint::room(ServiceHandle& request) noexcept {
  LocalHeld& h = held[request.index_];
  const std::uint32_t depth = shape().response_depth;
  if (request.sequence_ - h.consumed_seen < depth) return ChannelResult::kOk;
  CallHeader& call = region->call(request.area_, request.call_);
  // SYNC(stream_room): seq_cst, after room_wanted's seq_cst store when waiting (service_client.cc).
  h.consumed_seen = call.consumed.load(std::memory_order_seq_cst);
  if (request.sequence_ - h.consumed_seen < depth) return ChannelResult::kOk;
  const ChannelResult state = client_state(request);
  return state != ChannelResult::kOk ? state : ChannelResult::kWouldBlock;
}

ChannelResult ServiceServerEndpoint::wait_room(ServiceHandle& request, bool blocking) noexcept {
  ChannelResult r = room(request);
  if (r != ChannelResult::kWouldBlock) return r;
  CallHeader& call = region->call(request.area_, request.call_);
  call.room_wanted.store(1, std::memory_order_seq_cst);
  r = room(request);
  if (r == ChannelResult::kWouldBlock && blocking) {
    const std::uint64_t now = monotonic_ns();
    if (now < request.deadline_ns_) {
      wait_for(&seg->control()->data_wake, std::chrono::nanoseconds(request.deadline_ns_ - now),
               [&] {
                 r = room(request);
                 return r != ChannelResult::kWouldBlock;
               },
               [&](std::uint64_t t) { idle(t, false); });
    }
    if (r == ChannelResult::kWouldBlock) r = ChannelResult::kTimedOut;
  } else if (r == ChannelResult::kWouldBlock && descriptor != nullptr) {
    // Re-armed before kWouldBlock; the client's consume fires data_wake (room_wanted stays set).
    // The descriptor serves every request held here and the queue: a re-arm that drained a
    // wake-up leaves it readable when other work is there, whatever this stream answers.
    for (int round = 0; round < 4; ++round) {
      if (!prepare_to_block()) return ChannelResult::kWouldBlock;
      r = room(request);
      if (other_work(&request)) {
        descriptor->wake_self();
        if (r == ChannelResult::kWouldBlock) return r;
      }
      if (r != ChannelResult::kWouldBlock) break;
    }
    if (r == ChannelResult::kWouldBlock) descriptor->wake_self();
  }
  if (r != ChannelResult::kWouldBlock) call.room_wanted.store(0, std::memory_order_relaxed);
  return r;
}

void ServiceServerEndpoint::publish(ServiceHandle& request, std::size_t bytes, bool final) noexcept {
  CallHeader& call = region->call(request.area_, request.call_);
  ResponseRecord& record = region->record(call, request.sequence_);
  record.length.store(static_cast<std::uint32_t>(bytes), std::memory_order_relaxed);
  record.flags.store((final ? kResponseFinal : 0) | (request.redelivered_ ? kResponseRedelivered : 0),
                     std::memory_order_relaxed);
  // SYNC(response_tag): publishes the payload, length and flags to the client's acquire load.
  record.tag.store(response_tag(request.generation_, request.sequence_), std::memory_order_release);
  ++request.sequence_;
  notify_client(*seg, *region, request.area_);
  if (!final) return;
  ++served;
  region->server(area).served.store(served, std::memory_order_relaxed);
  me().sent.store(served, std::memory_order_relaxed);
  finish(request);
}

void ServiceServerEndpoint::finish(ServiceHandle& request) noexcept {
  LocalHeld& h = held[request.index_];
  // After the final record (or the end): the recovery would find the call answered (or ended)
  // even if we died before this store.
  held_word(request.index_).store(0, std::memory_order_release);
  h.used = false;
  h.request = nullptr;
  h.loan = nullptr;
  free_held.push_back(request.index_);
  request.done_ = true;
  detach(request);
}

ChannelResult ServiceServerEndpoint::respond_copy(ServiceHandle& request, std::span<const std::byte> response,
                                                  bool final, bool blocking) noexcept {
  if (response.size() > shape().max_response) return ChannelResult::kTooLarge;
  if (held[request.index_].loan != nullptr) return ChannelResult::kWouldBlock;  // a loan is out
  // Not final: the client's state first (a stream to nobody stops here). Final with room: no look.
  if (!final) {
    const ChannelResult state = client_state(request);
    if (state != ChannelResult::kOk) return state;
  }
  const ChannelResult r = wait_room(request, blocking);
  if (r != ChannelResult::kOk) return r;
  CallHeader& call = region->call(request.area_, request.call_);
  ResponseRecord& record = region->record(call, request.sequence_);
  if (!response.empty()) std::memcpy(region->response_payload(record), response.data(), response.size());
  publish(request, response.size(), final);
  return ChannelResult::kOk;
}

// --- handles -----------------------------------------------------------------------------------------

ChannelResult ServiceServerEndpoint::settle_handle(ServiceHandle& handle) noexcept {
  const bool here = seg->owned_here();
  LocalHeld* h = handle.index_ < held.size() ? &held[handle.index_] : nullptr;
  if (handle.kind_ == ServiceHandle::Kind::kResponseLoan) {
    if (h != nullptr && h->loan == &handle) h->loan = nullptr;  // given up: nothing written
  } else if (handle.kind_ == ServiceHandle::Kind::kActiveRequest && h != nullptr && h->request == &handle) {
    if (!here) {
      h->request = nullptr;  // a forked child's copy: the parent still holds the call
    } else {
      if (h->loan != nullptr) {
        orphan(h->loan);
        h->loan = nullptr;
      }
      // Dropped without a final response: the call ends (the client's PendingResponse answers
      // kPeerGone; a cancelled one is freed).
      CallHeader& call = region->call(handle.area_, handle.call_);
      for (int round = 0; round < 64; ++round) {
        std::uint64_t s = call.state.load(std::memory_order_acquire);
        const CallPhase phase = state_phase(s);
        if (state_generation(s) != handle.generation_ ||
            (phase != CallPhase::kInFlight && phase != CallPhase::kCancelled && phase != CallPhase::kClientGone)) {
          break;
        }
        if (call.state.compare_exchange_strong(s, call_state(handle.generation_, CallPhase::kEnded),
                                               std::memory_order_acq_rel, std::memory_order_relaxed)) {
          if (phase == CallPhase::kInFlight) {
            region->counters().peer_gone.fetch_add(1, std::memory_order_relaxed);
          }
          break;
        }
      }
      finish(handle);
      notify_client(*seg, *region, handle.area_);
    }
  }
  detach(handle);
  handle.result_ = ChannelResult::kClosed;
  return here ? ChannelResult::kOk : ChannelResult::kClosed;
}

void ServiceServerEndpoint::follow_handle(const ServiceHandle& from, ServiceHandle& to) noexcept {
  if (to.index_ >= held.size()) return;
  LocalHeld& h = held[to.index_];
  if (h.request == &from) h.request = &to;
  if (h.loan == &from) h.loan = &to;
}

}  // namespace detail

using detail::ServiceHandle;
using detail::ServiceServerEndpoint;
using detail::endpoint_as;

// --- ServiceServer -----------------------------------------------------------------------------------

absl::StatusOr<ServiceServer> ServiceServer::open(std::string_view name, const ServiceOptions& options) {
  if (absl::Status s = detail::check_service_options(options, name); !s.ok()) return s;
  auto e = std::make_unique<ServiceServerEndpoint>();
  e->wait = options.wait;
  e->wanted = {options.max_request, options.max_response, options.max_in_flight, options.response_depth,
               options.max_clients, options.max_servers, options.max_active};
  detail::ServiceShape shape;
  const detail::ChannelSpec spec = detail::service_spec(options, &shape);
  detail::OpenPlan plan;
  plan.role = PeerRole::kServer;
  plan.pattern = "service";
  plan.open_timeout = options.open_timeout;
  if (absl::Status s = e->open(name, spec, plan); !s.ok()) return s;
  return ServiceServer(std::unique_ptr<detail::Endpoint>(std::move(e)));
}

ActiveRequest ServiceServer::take(std::span<std::byte> out, std::size_t* bytes, bool copy, bool blocking,
                                  std::chrono::nanoseconds timeout) noexcept {
  ActiveRequest request;
  ServiceServerEndpoint* e = endpoint_as<ServiceServerEndpoint>(impl_);
  if (e == nullptr || !e->usable()) return request;
  if (copy && out.size() < e->shape().max_request) {
    request.result_ = ChannelResult::kTooLarge;
    return request;
  }
  bool got = e->take_one(request);
  if (!got && blocking && timeout.count() > 0) {
    got = e->wait_for(&e->seg->control()->data_wake, timeout, [&] { return e->take_one(request); },
                      [&](std::uint64_t now) { e->idle(now, e->recovery->stall_evident(now)); });
    if (!got) request.result_ = ChannelResult::kTimedOut;
  } else if (!got) {
    request.result_ = ChannelResult::kWouldBlock;
    if (e->descriptor != nullptr && !e->free_held.empty()) {
      // Re-armed before kWouldBlock (SYNC(wait_fd)). A re-arm may drain the wake-up of other
      // work (more requests, room for a held stream): then the descriptor is left readable.
      bool rearmed = false;
      for (int round = 0; round < 4 && !got; ++round) {
        if (!e->prepare_to_block()) break;
        rearmed = true;
        got = e->take_one(request);
      }
      // Also when nothing was taken with requests left (stale refs passed, a ref being written).
      if ((rearmed && e->other_work(nullptr)) || (!got && e->work_pending())) e->descriptor->wake_self();
    } else if (e->descriptor == nullptr) {
      e->after_empty_poll();
    }
  }
  if (!got) return request;
  e->idle_since_ns = 0;
  if (copy) {
    if (!request.bytes_.empty()) std::memcpy(out.data(), request.bytes_.data(), request.bytes_.size());
    if (bytes != nullptr) *bytes = request.bytes_.size();
  }
  return request;
}

ActiveRequest ServiceServer::try_receive_request() noexcept { return take({}, nullptr, false, false, {}); }
ActiveRequest ServiceServer::receive_request(std::chrono::nanoseconds timeout) noexcept {
  return take({}, nullptr, false, true, timeout);
}
ActiveRequest ServiceServer::try_receive_request(std::span<std::byte> out, std::size_t* bytes) noexcept {
  return take(out, bytes, true, false, {});
}
ActiveRequest ServiceServer::receive_request(std::span<std::byte> out, std::size_t* bytes,
                                             std::chrono::nanoseconds timeout) noexcept {
  return take(out, bytes, true, true, timeout);
}

std::uint64_t ServiceServer::max_request() const noexcept {
  return impl_ ? endpoint_as<ServiceServerEndpoint>(impl_)->shape().max_request : 0;
}
std::uint64_t ServiceServer::max_response() const noexcept {
  return impl_ ? endpoint_as<ServiceServerEndpoint>(impl_)->shape().max_response : 0;
}
std::uint32_t ServiceServer::max_active() const noexcept {
  return impl_ ? endpoint_as<ServiceServerEndpoint>(impl_)->shape().max_active : 0;
}
std::uint32_t ServiceServer::active() const noexcept {
  const ServiceServerEndpoint* e = endpoint_as<ServiceServerEndpoint>(impl_);
  return e == nullptr ? 0 : e->shape().max_active - static_cast<std::uint32_t>(e->free_held.size());
}

// --- ActiveRequest -----------------------------------------------------------------------------------

namespace {

ServiceServerEndpoint* server_of(detail::ServiceEndpoint* owner) {
  auto* e = static_cast<ServiceServerEndpoint*>(owner);
  return e != nullptr && e->seg->owned_here() ? e : nullptr;
}

}  // namespace

bool ActiveRequest::expired() const noexcept { return monotonic_ns() >= deadline_ns_; }

bool ActiveRequest::cancelled() const noexcept {
  const ServiceServerEndpoint* e = server_of(owner_);
  return e != nullptr && e->client_state(*this) != ChannelResult::kOk;
}

ChannelResult ActiveRequest::try_respond(std::span<const std::byte> response, bool final) noexcept {
  ServiceServerEndpoint* e = server_of(owner_);
  if (e == nullptr) return ChannelResult::kClosed;
  return e->respond_copy(*this, response, final, false);
}

ChannelResult ActiveRequest::respond(std::span<const std::byte> response, bool final) noexcept {
  ServiceServerEndpoint* e = server_of(owner_);
  if (e == nullptr) return ChannelResult::kClosed;
  return e->respond_copy(*this, response, final, true);
}

ResponseLoan ActiveRequest::try_loan_response() noexcept {
  ResponseLoan loan;
  ServiceServerEndpoint* e = server_of(owner_);
  if (e == nullptr) return loan;
  if (e->held[index_].loan != nullptr) {
    loan.result_ = ChannelResult::kWouldBlock;  // one loan at a time
    return loan;
  }
  const ChannelResult room = e->wait_room(*this, false);
  if (room != ChannelResult::kOk) {
    loan.result_ = room;
    return loan;
  }
  detail::CallHeader& call = e->region->call(area_, call_);
  detail::ResponseRecord& record = e->region->record(call, sequence_);
  loan.owner_ = e;
  loan.result_ = ChannelResult::kOk;
  loan.index_ = index_;
  loan.generation_ = generation_;
  loan.sequence_ = sequence_;
  loan.bytes_ = std::span<std::byte>(e->region->response_payload(record), e->shape().max_response);
  e->held[index_].loan = &loan;
  return loan;
}

ResponseLoan ActiveRequest::loan_response() noexcept {
  ServiceServerEndpoint* e = server_of(owner_);
  if (e == nullptr) return ResponseLoan();
  if (e->held[index_].loan == nullptr) {
    const ChannelResult room = e->wait_room(*this, true);
    if (room != ChannelResult::kOk) {
      ResponseLoan refused;
      refused.result_ = room;
      return refused;
    }
  }
  return try_loan_response();
}

ChannelResult ActiveRequest::respond(ResponseLoan& loan, std::size_t bytes, bool final) noexcept {
  ServiceServerEndpoint* e = server_of(owner_);
  if (e == nullptr || loan.owner_ != e || e->held[index_].loan != &loan) return ChannelResult::kClosed;
  if (bytes > loan.bytes_.size()) return ChannelResult::kTooLarge;
  e->held[index_].loan = nullptr;
  detail::ServiceEndpoint::detach(loan);
  loan.result_ = ChannelResult::kClosed;
  e->publish(*this, bytes, final);
  return ChannelResult::kOk;
}

}  // namespace shmring
