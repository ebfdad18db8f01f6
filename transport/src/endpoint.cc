#include "endpoint.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

namespace shmring {
namespace detail {

absl::Status Endpoint::open(std::string_view name, const ChannelSpec& spec, const OpenPlan& plan) {
  absl::StatusOr<std::unique_ptr<ChannelSegment>> opened_segment = ChannelSegment::open(name, spec);
  if (!opened_segment.ok()) return opened_segment.status();
  seg = *std::move(opened_segment);
  peer_role = plan.role;
  if (absl::Status s = attach_ring(); !s.ok()) return s;
  if (!plan.register_peer) return opened();
  if (!seg->lock_for(plan.open_timeout.count())) return seg->memory().status();
  recover_locked();
  if (plan.single_writer) {
    if (const PeerSlot* other = live_peer_with(plan.role)) {
      seg->unlock();
      return absl::FailedPreconditionError(
          cat(plan.pattern, " '", name, "' already has a live ", to_string(plan.role), " (pid ",
              other->pid.load(std::memory_order_relaxed), ")"));
    }
  }
  absl::Status s = seg->register_locked(plan.role, plan.peer_flags);
  if (s.ok()) {
    s = registered_locked();
    if (!s.ok()) seg->unregister_locked();
  }
  seg->unlock();
  if (!s.ok()) return s;
  // Without a lifeline its watchers could not see it die: the endpoint does not open (its slot is
  // given back when the segment closes).
  if (absl::Status lifeline = seg->create_lifeline(); !lifeline.ok()) return lifeline;
  // Armed endpoints that watch peers like this one start watching it at their next arming, and
  // what this open's recovery freed may be what they wait for: fire them (slow path; nothing
  // when none is armed).
  notify_receivers(*seg);
  notify_senders(*seg);
  announce_membership(*seg, plan.role);
  return opened();
}

void Endpoint::peer_gone() noexcept {
  if (seg->lock_for(0)) {
    recover_locked();
    seg->unlock();
    // What the recovery freed (room, a dead consumer's item, an evicted reader slot) may be what
    // other armed endpoints wait for.
    notify_receivers(*seg);
    notify_senders(*seg);
  } else {
    // Someone else holds the lock (maybe recovering): hint it, and come back soon.
    seg->control()->misc.recovery_hint.store(1, std::memory_order_relaxed);
    if (descriptor) descriptor->wake_self();
  }
}

void Endpoint::recover_locked() {
  seg->mark_dead_locked();
  PeerSlot* slots = seg->peers();
  for (std::uint32_t i = 0; i < seg->info().max_peers; ++i) {
    if (state_of(slots[i]) == PeerState::kDeadPending) seg->free_slot_locked(slots[i]);
  }
}

const PeerSlot* Endpoint::live_peer_with(PeerRole role) const noexcept {
  const PeerSlot* slots = seg->peers();
  for (std::uint32_t i = 0; i < seg->info().max_peers; ++i) {
    if (&slots[i] != seg->self() && state_of(slots[i]) == PeerState::kActive &&
        role_of(slots[i]) == role) {
      return &slots[i];
    }
  }
  return nullptr;
}

void Endpoint::add_blocked(std::uint64_t ns) noexcept {
  blocked_ns += ns;
  if (PeerSlot* me = seg->self(); me != nullptr && !seg->read_only()) {
    me->blocked_ns.store(blocked_ns, std::memory_order_relaxed);
  }
}

ChannelResult Endpoint::settle(Lease& lease) noexcept {
  ChannelResult out = ChannelResult::kClosed;
  // A forked child's copy of a loan or view must not touch its parent's claim, pin or cursor.
  if (lease_out == &lease && seg->owned_here()) out = end_lease(lease);
  take_back(lease);
  return out;
}

void Endpoint::orphan_outstanding() noexcept {
  if (lease_out == nullptr) return;
  Lease& lease = *lease_out;
  if (seg->owned_here()) orphan_lease(lease);
  take_back(lease);
  lease.orphaned_ = true;
}

}  // namespace detail

// --- Lease -----------------------------------------------------------------------------------------

namespace detail {

Lease::Lease(Lease&& other) noexcept
    : bytes_(std::exchange(other.bytes_, {})),
      number_(other.number_),
      redelivered_(other.redelivered_),
      owner_(std::exchange(other.owner_, nullptr)),
      result_(std::exchange(other.result_, ChannelResult::kClosed)),
      orphaned_(std::exchange(other.orphaned_, false)) {
  if (owner_ != nullptr) owner_->follow(other, *this);
}

Lease& Lease::operator=(Lease&& other) noexcept {
  if (this != &other) {
    settle();
    bytes_ = std::exchange(other.bytes_, {});
    number_ = other.number_;
    redelivered_ = other.redelivered_;
    owner_ = std::exchange(other.owner_, nullptr);
    result_ = std::exchange(other.result_, ChannelResult::kClosed);
    orphaned_ = std::exchange(other.orphaned_, false);
    if (owner_ != nullptr) owner_->follow(other, *this);
  }
  return *this;
}

Lease::~Lease() { settle(); }

ChannelResult Lease::settle() noexcept {
  if (owner_ == nullptr) {  // empty, settled, or orphaned by its endpoint's close()
    const bool orphaned = std::exchange(orphaned_, false);
    bytes_ = {};
    result_ = ChannelResult::kClosed;
    return orphaned ? ChannelResult::kClosed : ChannelResult::kOk;
  }
  return owner_->settle(*this);
}

}  // namespace detail

// --- ChannelEndpoint --------------------------------------------------------------------------------

ChannelEndpoint::ChannelEndpoint() noexcept = default;
ChannelEndpoint::ChannelEndpoint(std::unique_ptr<detail::Endpoint> impl) noexcept : impl_(std::move(impl)) {}
ChannelEndpoint::ChannelEndpoint(ChannelEndpoint&& other) noexcept = default;
ChannelEndpoint& ChannelEndpoint::operator=(ChannelEndpoint&& other) noexcept {
  if (this != &other) {
    close();
    impl_ = std::move(other.impl_);
  }
  return *this;
}
ChannelEndpoint::~ChannelEndpoint() { close(); }

bool ChannelEndpoint::is_open() const noexcept {
  return impl_ != nullptr && impl_->seg->owned_here();
}

PeerStats ChannelEndpoint::stats() const noexcept {
  return is_open() ? detail::peer_stats(*impl_->seg) : PeerStats{};
}

std::uint64_t ChannelEndpoint::channel_incarnation() const noexcept {
  return is_open() ? impl_->seg->channel_id() : 0;
}

void ChannelEndpoint::set_upstream_link(std::string_view from, bool up) noexcept {
  if (!impl_ || !impl_->seg->owned_here()) return;
  PeerSlot* me = impl_->seg->self();
  if (me == nullptr) return;
  if (me->upstream_link.load(std::memory_order_relaxed) == 0) {
    char text[sizeof me->upstream_from] = {};
    std::memcpy(text, from.data(), std::min(from.size(), sizeof text - 1));
    std::memcpy(me->upstream_from, text, sizeof text);
  }
  // SYNC(upstream_link): publishes upstream_from (written above, once) to read_stats' acquire.
  me->upstream_link.store(up ? kUpstreamLinkUp : kUpstreamLinkDown, std::memory_order_release);
}

int ChannelEndpoint::wait_fd() const noexcept {
  if (!impl_) {
    errno = EBADF;
    return -1;
  }
  if (!impl_->seg->owned_here()) {  // a forked child's copy: the parent's descriptor
    errno = EBADF;
    return -1;
  }
  if (!impl_->descriptor) {
    int error = 0;
    impl_->descriptor = impl_->make_descriptor(&error);
    if (!impl_->descriptor) {
      errno = error;
      return -1;
    }
  }
  return impl_->descriptor->fd();
}

WaitEvent ChannelEndpoint::take_wait_events() noexcept {
  if (!is_open() || !impl_->descriptor) return WaitEvent::kNone;
  const WaitEvent events = impl_->descriptor->take_events();
  if (impl_->descriptor->take_peer_gone_news()) impl_->peer_gone();
  return events;
}

void ChannelEndpoint::close() noexcept {
  if (!impl_) return;
  impl_->orphan_outstanding();
  impl_.reset();  // the pattern's endpoint, then its segment: unregistered and detached
}

}  // namespace shmring
