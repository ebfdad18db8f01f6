// What both service endpoints share (service_endpoint.h): the spec and ring descriptor of a
// service, attaching its region, the recovery and its triggers, waking clients, and the handles'
// move and settle mechanics.
#include "service_endpoint.h"

#include <utility>

#include "shmring/core/detail/wait_files.h"
#include "wait.h"

namespace shmring {
namespace detail {

namespace {

// The limits of a service with `capacity` calls per client and `max_message` request bytes
// (what the segment code passes) and the rest from the spec's shape.
std::optional<ServiceShape> full_shape(std::uint64_t capacity, std::uint64_t max_message,
                                       const RingShape& shape) noexcept {
  if (shape.service == nullptr || capacity > kMaxInFlight) return std::nullopt;
  ServiceShape s = *shape.service;
  s.max_in_flight = static_cast<std::uint32_t>(capacity);
  s.max_request = max_message;
  return s;
}

constexpr RingDescriptor kServiceRing{
    [](std::uint64_t capacity, std::uint64_t max_message, const RingShape& shape) noexcept -> std::uint64_t {
      const std::optional<ServiceShape> s = full_shape(capacity, max_message, shape);
      if (!s) return 0;
      const std::optional<ServiceGeometry> g = service_geometry(*s);
      return g ? g->region_bytes : 0;
    },
    [](void* region, std::size_t bytes, std::uint64_t capacity, std::uint64_t max_message,
       const RingShape& shape) -> absl::Status {
      const std::optional<ServiceShape> s = full_shape(capacity, max_message, shape);
      if (!s) return absl::InvalidArgumentError("service: limits out of range");
      return ServiceRegion::create(region, bytes, *s);
    },
};

template <typename T>
T or_default(T value, T fallback) {
  return value != 0 ? value : fallback;
}

}  // namespace

absl::Status check_service_options(const ServiceOptions& o, std::string_view name) {
  auto out_of_range = [&](std::string_view field, std::uint64_t value, std::string_view limit) {
    return absl::InvalidArgumentError(cat("service '", name, "': ", field, " ", value, " is out of range (", limit, ")"));
  };
  if (o.max_request > kMaxServicePayload) return out_of_range("max_request", o.max_request, "<= 2^30");
  if (o.max_response > kMaxServicePayload) return out_of_range("max_response", o.max_response, "<= 2^30");
  if (o.max_in_flight > kMaxInFlight) return out_of_range("max_in_flight", o.max_in_flight, "<= 4096");
  if (o.max_active > kMaxActive) return out_of_range("max_active", o.max_active, "<= 4096");
  if (o.max_clients > kMaxServiceClients) return out_of_range("max_clients", o.max_clients, "<= 1024");
  if (o.max_servers > kMaxServiceServers) return out_of_range("max_servers", o.max_servers, "<= 1024");
  if (o.response_depth > kMaxResponseDepth || (o.response_depth != 0 && !is_power_of_two(o.response_depth))) {
    return out_of_range("response_depth", o.response_depth, "a power of two <= 4096");
  }
  if (std::uint64_t{o.max_clients} + o.max_servers > kMaxPeers) {
    return out_of_range("max_clients + max_servers", std::uint64_t{o.max_clients} + o.max_servers, "<= 1024");
  }
  if (o.request_timeout.count() <= 0) return out_of_range("request_timeout (ns)", 0, "> 0");
  return absl::OkStatus();
}

ChannelSpec service_spec(const ServiceOptions& options, ServiceShape* shape) {
  const ServiceShape defaults;
  shape->max_request = or_default(options.max_request, defaults.max_request);
  shape->max_response = or_default(options.max_response, defaults.max_response);
  shape->max_in_flight = or_default(options.max_in_flight, defaults.max_in_flight);
  shape->response_depth = or_default(options.response_depth, defaults.response_depth);
  shape->max_clients = or_default(options.max_clients, defaults.max_clients);
  shape->max_servers = or_default(options.max_servers, defaults.max_servers);
  shape->max_active = or_default(options.max_active, defaults.max_active);
  ChannelSpec spec;
  spec.kind = ChannelKind::kService;
  spec.ring = &kServiceRing;
  spec.shape.service = shape;
  // The service's own limits are checked by attach_ring with their own names; the generic
  // capacity / max_message / max_peers checks are not asked for (0).
  spec.default_capacity = shape->max_in_flight;
  spec.default_max_message = shape->max_request;
  spec.default_max_peers = shape->max_clients + shape->max_servers;
  spec.permissions = options.permissions;
  spec.group = options.group;
  spec.create = options.create;
  spec.open_timeout = options.open_timeout;
  return spec;
}

void fire_client(ChannelSegment& seg, const ServiceRegion& region, std::uint32_t area) noexcept {
  ClientArea& a = region.client(area);
  const std::uint32_t index = a.header.owner_index.load(std::memory_order_relaxed);
  if (index >= seg.info().max_peers) return;
  PeerSlot& slot = seg.peers()[index];
  // SYNC(wait_fd): as take_armed in wake_signal.cc, on the area's own block: the winner of the
  // CAS takes the armed count down and sends the one datagram.
  std::uint32_t expected = kArmedOnOwn;
  if (!slot.wait_armed.compare_exchange_strong(expected, 0, std::memory_order_acq_rel,
                                               std::memory_order_relaxed)) {
    return;
  }
  a.wake.waiters.fetch_sub(kArmedUnit, std::memory_order_relaxed);
  send_wake(seg.file_tag(), load_name(slot.socket_name));  // SYNC(wait_name)
}

absl::Status ServiceEndpoint::attach_ring() {
  const ChannelInfo& info = seg->info();
  absl::StatusOr<ServiceRegion> attached = ServiceRegion::attach(seg->ring(), info.ring_bytes);
  if (!attached.ok()) {
    return absl::Status(attached.status().code(),
                        cat("service '", info.name, "': ", std::string(attached.status().message())));
  }
  const ServiceShape& have = attached->shape();
  if (info.capacity != have.max_in_flight || info.max_message != have.max_request ||
      info.max_peers != have.max_clients + have.max_servers) {
    return absl::DataLossError(cat("service '", info.name, "': region does not match its control block"));
  }
  auto mismatch = [&](std::string_view field, std::uint64_t in_service, std::uint64_t asked) {
    return absl::FailedPreconditionError(cat("service '", info.name, "': ", field, " is ", in_service,
                                             " in the service but ", asked, " was asked"));
  };
  const std::pair<std::string_view, std::pair<std::uint64_t, std::uint64_t>> limits[] = {
      {"max_request", {have.max_request, wanted.max_request}},
      {"max_response", {have.max_response, wanted.max_response}},
      {"max_in_flight", {have.max_in_flight, wanted.max_in_flight}},
      {"response_depth", {have.response_depth, wanted.response_depth}},
      {"max_clients", {have.max_clients, wanted.max_clients}},
      {"max_servers", {have.max_servers, wanted.max_servers}},
      {"max_active", {have.max_active, wanted.max_active}},
  };
  for (const auto& [field, values] : limits) {
    if (values.second != 0 && values.first != values.second) return mismatch(field, values.first, values.second);
  }
  region.emplace(*std::move(attached));
  recovery = std::make_unique<ServiceRecovery>(*seg, *region);
  return absl::OkStatus();
}

void ServiceEndpoint::recover_locked() {
  const ServiceRecoveryResult r = recovery->run_locked();
  open_recovery.orphaned = open_recovery.orphaned || r.orphaned;
  open_recovery.ended = open_recovery.ended || r.ended;
  open_recovery.reclaimed = open_recovery.reclaimed || r.reclaimed;
}

void ServiceEndpoint::peer_gone() noexcept { try_recover(); }

void ServiceEndpoint::try_recover() noexcept {
  last_recovery_ns = monotonic_ns();
  if (!seg->lock_for(0)) {
    // Someone else holds the lock (maybe recovering): hint it, and come back soon.
    seg->control()->misc.recovery_hint.store(1, std::memory_order_relaxed);
    if (descriptor) descriptor->wake_self();
    return;
  }
  const ServiceRecoveryResult r = recovery->run_locked();
  seg->unlock();
  notify_after(r);
}

void ServiceEndpoint::recover_every(std::uint64_t now_ns, std::uint64_t interval_ns) noexcept {
  if (now_ns - last_recovery_ns < interval_ns) return;
  try_recover();
}

void ServiceEndpoint::after_empty_poll() noexcept {
  if (++empty_polls < kEmptyPollsPerEvidenceCheck) return;
  empty_polls = 0;
  const std::uint64_t now = monotonic_ns();
  if (recovery->stall_evident(now)) recover_every(now, kStalledRecoveryNs);
}

void ServiceEndpoint::idle(std::uint64_t now_ns, bool evident) noexcept {
  seg->touch(now_ns);
  if (idle_since_ns == 0) idle_since_ns = now_ns;
  const std::uint64_t interval = evident ? kStalledRecoveryNs : kIdleRecoveryNs;
  if (now_ns - idle_since_ns >= interval) recover_every(now_ns, interval);
}

void ServiceEndpoint::notify_after(const ServiceRecoveryResult& r) noexcept {
  // Servers: orphans to take, or queue slots the queue's recovery freed. Nothing when none waits.
  notify_receivers(*seg);
  if (!r.ended && !r.orphaned) return;
  for (std::uint32_t a = 0; a < region->shape().max_clients; ++a) {
    if (region->client(a).header.state.load(std::memory_order_acquire) ==
        static_cast<std::uint32_t>(ClientAreaState::kOwned)) {
      notify_client(*seg, *region, a);
    }
  }
}

std::uint32_t ServiceEndpoint::live_servers() const noexcept {
  std::uint32_t n = 0;
  const PeerSlot* slots = seg->peers();
  for (std::uint32_t i = 0; i < seg->info().max_peers; ++i) {
    if (state_of(slots[i]) == PeerState::kActive && role_of(slots[i]) == PeerRole::kServer) ++n;
  }
  return n;
}

// --- ServiceHandle -----------------------------------------------------------------------------------

ServiceHandle::ServiceHandle(ServiceHandle&& other) noexcept
    : owner_(std::exchange(other.owner_, nullptr)),
      kind_(other.kind_),
      result_(std::exchange(other.result_, ChannelResult::kClosed)),
      orphaned_(std::exchange(other.orphaned_, false)),
      done_(other.done_),
      redelivered_(other.redelivered_),
      final_(other.final_),
      expired_(other.expired_),
      index_(other.index_),
      area_(other.area_),
      call_(other.call_),
      generation_(other.generation_),
      sequence_(other.sequence_),
      flags_(other.flags_),
      id_(other.id_),
      deadline_ns_(other.deadline_ns_),
      bytes_(std::exchange(other.bytes_, {})) {
  if (owner_ != nullptr) owner_->follow_handle(other, *this);
}

ServiceHandle& ServiceHandle::operator=(ServiceHandle&& other) noexcept {
  if (this == &other) return *this;
  settle();
  owner_ = std::exchange(other.owner_, nullptr);
  kind_ = other.kind_;
  result_ = std::exchange(other.result_, ChannelResult::kClosed);
  orphaned_ = std::exchange(other.orphaned_, false);
  done_ = other.done_;
  redelivered_ = other.redelivered_;
  final_ = other.final_;
  expired_ = other.expired_;
  index_ = other.index_;
  area_ = other.area_;
  call_ = other.call_;
  generation_ = other.generation_;
  sequence_ = other.sequence_;
  flags_ = other.flags_;
  id_ = other.id_;
  deadline_ns_ = other.deadline_ns_;
  bytes_ = std::exchange(other.bytes_, {});
  if (owner_ != nullptr) owner_->follow_handle(other, *this);
  return *this;
}

ServiceHandle::~ServiceHandle() { settle(); }

ChannelResult ServiceHandle::settle() noexcept {
  if (owner_ == nullptr) {  // empty, settled, done, or orphaned by its endpoint's close()
    bytes_ = {};
    if (std::exchange(orphaned_, false)) {
      result_ = ChannelResult::kClosed;
      return ChannelResult::kClosed;
    }
    return ChannelResult::kOk;
  }
  return owner_->settle_handle(*this);
}

}  // namespace detail
}  // namespace shmring
