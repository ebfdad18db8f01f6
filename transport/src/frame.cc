// Frame channels: a FramePool (queue/frame_pool.h) in a channel segment; the subscribers' pins live
// in their peer slots (PeerSlot::pinned_buffer). See frame.h for the protocol.
#include "shmring/transport/frame.h"

#include <algorithm>
#include <cstring>
#include <optional>
#include <utility>

#include "endpoint.h"
#include "shmring/queue/frame_pool.h"

namespace shmring {
namespace detail {

struct FrameEndpoint final : Endpoint {
  std::optional<FramePool> pool;
  PeerRole role = PeerRole::kNone;
  std::uint64_t published = 0;   // publisher: frames published
  std::uint64_t last_index = 0;  // publisher: the buffer of its last frame
  FramePool::Claim claim;        // publisher: the loan out
  std::uint64_t last_frame = 0;  // subscriber: frame number of the last frame taken
  std::uint64_t received = 0;
  std::uint64_t lost = 0;
  std::uint64_t last_check_ns = 0;
  // Publisher, for the dead-pin check: since when loan() has found no buffer (the first wait
  // after a loan starts the count again; a flag on the fast path, the clock only when waiting).
  bool loaned = false;
  std::uint64_t last_loan_ns = 0;

  absl::Status attach_ring() override;
  absl::Status opened() override;
  ChannelResult end_lease(Lease& lease) noexcept override;

  PeerSlot& me() const { return *seg->self(); }
  // Whether a live subscriber pins buffer `index`.
  bool pinned(std::uint64_t index) const noexcept;
  void unpin() noexcept {
    // SYNC(frame_pin): the release orders this subscriber's reads of the frame before the unpin
    // the publisher's seq_cst scan may observe.
    me().pinned_buffer.store(0, std::memory_order_release);
  }
};

namespace {

// Dead subscribers' pins are looked for at most this often while a publisher waits for a buffer.
constexpr std::uint64_t kDeadPinCheckNs = 2'000'000;

constexpr RingDescriptor kFrameRing{
    [](std::uint64_t buffers, std::uint64_t frame_bytes, const RingShape&) noexcept -> std::uint64_t {
      return FramePool::required_bytes({buffers, frame_bytes});
    },
    [](void* ring, std::size_t bytes, std::uint64_t buffers, std::uint64_t frame_bytes,
       const RingShape&) -> absl::Status {
      return FramePool::create(ring, bytes, {buffers, frame_bytes}).status();
    },
};

ChannelSpec frame_spec(const FrameOptions& options) {
  ChannelSpec spec;
  spec.kind = ChannelKind::kFrames;
  spec.ring = &kFrameRing;
  copy_common_options(options, &spec);
  spec.default_capacity = 4;
  spec.default_max_message = 4 << 20;
  spec.default_max_peers = 16;
  return spec;
}

absl::StatusOr<std::unique_ptr<Endpoint>> open_frames(std::string_view name,
                                                      const FrameOptions& options, PeerRole role) {
  auto e = std::make_unique<FrameEndpoint>();
  e->role = role;
  e->wait = options.wait;
  OpenPlan plan;
  plan.role = role;
  plan.pattern = "frames channel";
  plan.single_writer = role == PeerRole::kPublisher;
  plan.open_timeout = options.open_timeout;
  if (absl::Status s = e->open(name, frame_spec(options), plan); !s.ok()) return s;
  return std::unique_ptr<Endpoint>(std::move(e));
}

}  // namespace

absl::Status FrameEndpoint::attach_ring() {
  const ChannelInfo& info = seg->info();
  absl::StatusOr<FramePool> attached = FramePool::attach(seg->ring(), info.ring_bytes);
  if (!attached.ok()) return attached.status();
  if (attached->buffers() != info.capacity || attached->frame_bytes() != info.max_message) {
    return absl::DataLossError(cat("channel '", info.name, "': frame pool does not match its control block"));
  }
  pool.emplace(*std::move(attached));
  return absl::OkStatus();
}

absl::Status FrameEndpoint::opened() {
  // A subscriber only reads the pool (its pin lives in its peer slot): a stray write through a
  // view faults instead of corrupting a frame the publisher and other subscribers use.
  if (role == PeerRole::kSubscriber) seg->protect_ring_read_only();
  if (role == PeerRole::kPublisher) {
    last_frame = pool->latest_frame_number();  // resume the numbering of a previous publisher
    published = last_frame;
    last_index = pool->latest_index();
  }
  return absl::OkStatus();
}

bool FrameEndpoint::pinned(std::uint64_t index) const noexcept {
  const PeerSlot* slots = seg->peers();
  for (std::uint32_t i = 0; i < seg->info().max_peers; ++i) {
    const PeerSlot& s = slots[i];
    if (state_of(s) != PeerState::kActive || role_of(s) != PeerRole::kSubscriber) continue;
    // SYNC(frame_pin): seq_cst, after the seq_cst store that made the buffer's sequence odd.
    if (s.pinned_buffer.load(std::memory_order_seq_cst) == index + 1) return true;
  }
  return false;
}

ChannelResult FrameEndpoint::end_lease(Lease&) noexcept {
  if (role == PeerRole::kPublisher) {
    pool->abort(claim);  // the buffer is free for a later loan
  } else {
    unpin();
    notify_senders(*seg);  // a publisher may be waiting for this buffer
  }
  return ChannelResult::kOk;
}

}  // namespace detail

using detail::endpoint_as;
using detail::Endpoint;
using detail::FrameEndpoint;

// --- FramePublisher --------------------------------------------------------------------------------

absl::StatusOr<FramePublisher> FramePublisher::open(std::string_view name,
                                                    const FrameOptions& options) {
  auto e = detail::open_frames(name, options, PeerRole::kPublisher);
  if (!e.ok()) return e.status();
  return FramePublisher(*std::move(e));
}

FrameLoan FramePublisher::try_loan() noexcept { return loan(std::chrono::nanoseconds(0)); }

FrameLoan FramePublisher::loan(std::chrono::nanoseconds timeout) noexcept {
  FrameLoan loan;
  FrameEndpoint* e = endpoint_as<FrameEndpoint>(impl_);
  if (e == nullptr) return loan;
  if (e->lease_busy()) {
    Endpoint::refuse(loan, ChannelResult::kWouldBlock);  // one loan at a time
    return loan;
  }
  FramePool::Claim claim;
  auto attempt = [&]() -> bool {
    claim = e->pool->try_claim(e->last_index, [&](std::uint64_t i) { return e->pinned(i); });
    return claim.result == RingResult::kOk;
  };
  bool done = attempt();
  if (!done && timeout.count() > 0) {
    if (e->loaned) {
      e->last_loan_ns = monotonic_ns();
      e->loaned = false;
    }
    done = e->wait_for(&e->seg->control()->space_wake, timeout, attempt,
                       [&](std::uint64_t now) {
                         e->seg->touch(now);
                         // No buffer to be had for kDeadPinCheckNs (counted across calls since
                         // the last loan): a dead subscriber's pin is dropped with its peer slot.
                         if (now - std::max(e->last_loan_ns, e->last_check_ns) >= detail::kDeadPinCheckNs &&
                             e->seg->lock_for(0)) {
                           e->last_check_ns = now;
                           e->recover_locked();
                           e->seg->unlock();
                         }
                       },
                       detail::kDeadPinCheckNs);
  } else if (!done) {
    done = e->attempt_before_blocking(attempt);  // with a descriptor: re-armed first
  }
  if (!done) {
    Endpoint::refuse(loan, timeout.count() > 0 ? ChannelResult::kTimedOut : ChannelResult::kWouldBlock);
    return loan;
  }
  e->loaned = true;
  e->claim = claim;
  e->lend(loan, claim.buffer);
  return loan;
}

ChannelResult FramePublisher::publish(FrameLoan& loan, std::size_t bytes) noexcept {
  FrameEndpoint* e = endpoint_as<FrameEndpoint>(impl_);
  // A forked child's copy of the loan must not publish its parent's buffer.
  if (e == nullptr || !Endpoint::lent_by(loan, e) || !loan.ok() || !e->seg->owned_here()) {
    return ChannelResult::kClosed;
  }
  if (bytes > loan.buffer().size()) return ChannelResult::kTooLarge;
  const std::uint64_t number = ++e->published;
  e->pool->publish(e->claim, bytes, number);
  e->last_index = e->claim.index;
  e->me().sent.store(number, std::memory_order_relaxed);
  detail::notify_receivers(*e->seg);
  e->take_back(loan);
  return ChannelResult::kOk;
}

void FramePublisher::abandon(FrameLoan& loan) noexcept {
  FrameEndpoint* e = endpoint_as<FrameEndpoint>(impl_);
  if (e != nullptr && Endpoint::lent_by(loan, e)) e->settle(loan);
}

ChannelResult FramePublisher::send(std::span<const std::byte> frame,
                                   std::chrono::nanoseconds timeout) noexcept {
  if (!is_open()) return ChannelResult::kClosed;
  if (frame.size() > max_message()) return ChannelResult::kTooLarge;
  FrameLoan l = loan(timeout);
  if (!l.ok()) return l.result();
  if (!frame.empty()) std::memcpy(l.buffer().data(), frame.data(), frame.size());
  return publish(l, frame.size());
}

ChannelResult FramePublisher::try_send(std::span<const std::byte> frame) noexcept {
  return send(frame, std::chrono::nanoseconds(0));
}

std::uint64_t FramePublisher::max_message() const noexcept {
  const auto* e = endpoint_as<FrameEndpoint>(impl_);
  return e != nullptr ? e->pool->frame_bytes() : 0;
}
std::uint64_t FramePublisher::frames_published() const noexcept {
  const auto* e = endpoint_as<FrameEndpoint>(impl_);
  return e != nullptr ? e->published : 0;
}
// --- FrameSubscriber -------------------------------------------------------------------------------

absl::StatusOr<FrameSubscriber> FrameSubscriber::open(std::string_view name,
                                                      const FrameOptions& options) {
  auto e = detail::open_frames(name, options, PeerRole::kSubscriber);
  if (!e.ok()) return e.status();
  return FrameSubscriber(*std::move(e));
}

FrameView FrameSubscriber::take(bool blocking, std::chrono::nanoseconds timeout) noexcept {
  FrameView view;
  FrameEndpoint* e = endpoint_as<FrameEndpoint>(impl_);
  if (e == nullptr) return view;
  if (e->lease_busy()) {
    // One view at a time: a second pin would replace the first (a subscriber has one pin word),
    // leaving the first view's buffer free for the publisher to overwrite.
    Endpoint::refuse(view, ChannelResult::kWouldBlock);
    return view;
  }
  ChannelResult out = ChannelResult::kWouldBlock;
  auto attempt = [&]() -> bool {
    const FramePool::Frame frame = e->pool->try_take(
        e->last_frame,
        [&](std::uint64_t i) {
          // SYNC(frame_pin): seq_cst pin, then the pool's seq_cst re-read of the sequence.
          e->me().pinned_buffer.store(static_cast<std::uint32_t>(i + 1), std::memory_order_seq_cst);
        },
        [&] { e->unpin(); });
    if (frame.result == RingResult::kEmpty) return false;
    if (frame.result != RingResult::kOk) {
      out = ChannelResult::kCorrupt;
      return true;
    }
    if (e->last_frame != 0 && frame.frame_number > e->last_frame + 1) {
      e->lost += frame.frame_number - e->last_frame - 1;
    }
    e->last_frame = frame.frame_number;
    e->me().received.store(++e->received, std::memory_order_relaxed);
    e->me().lost.store(e->lost, std::memory_order_relaxed);
    e->lend(view, frame.data);
    Endpoint::set_details(view, frame.frame_number, false);
    out = ChannelResult::kOk;
    return true;
  };
  bool done = attempt();
  if (!done && blocking && timeout.count() > 0) {
    done = e->wait_for(&e->seg->control()->data_wake, timeout, attempt,
                       [&](std::uint64_t now) { e->seg->touch(now); });
    if (!done) out = ChannelResult::kTimedOut;
  } else if (!done) {
    done = e->attempt_before_blocking(attempt);  // with a descriptor: re-armed first
  }
  if (out != ChannelResult::kOk) Endpoint::refuse(view, out);
  return view;
}

FrameView FrameSubscriber::try_receive_view() noexcept { return take(false, {}); }
FrameView FrameSubscriber::receive_view(std::chrono::nanoseconds timeout) noexcept {
  return take(true, timeout);
}

ChannelResult FrameSubscriber::receive(std::span<std::byte> out, std::size_t* bytes,
                                       std::chrono::nanoseconds timeout) noexcept {
  if (!is_open()) return ChannelResult::kClosed;
  if (out.size() < max_message()) return ChannelResult::kTooLarge;
  FrameView v = take(timeout.count() > 0, timeout);
  if (!v.ok()) return v.result();
  std::memcpy(out.data(), v.data().data(), v.data().size());
  if (bytes != nullptr) *bytes = v.data().size();
  return ChannelResult::kOk;
}

ChannelResult FrameSubscriber::try_receive(std::span<std::byte> out, std::size_t* bytes) noexcept {
  return receive(out, bytes, std::chrono::nanoseconds(0));
}

std::size_t FrameSubscriber::poll(const std::function<void(std::span<const std::byte>)>& handler,
                                  std::size_t max) noexcept {
  std::size_t n = 0;
  while (n < max) {
    FrameView v = take(false, {});
    if (!v.ok()) break;
    handler(v.data());
    ++n;
  }
  return n;
}

std::uint64_t FrameSubscriber::lost() const noexcept {
  const auto* e = endpoint_as<FrameEndpoint>(impl_);
  return e != nullptr ? e->lost : 0;
}
std::uint64_t FrameSubscriber::received() const noexcept {
  const auto* e = endpoint_as<FrameEndpoint>(impl_);
  return e != nullptr ? e->received : 0;
}
std::uint64_t FrameSubscriber::max_message() const noexcept {
  const auto* e = endpoint_as<FrameEndpoint>(impl_);
  return e != nullptr ? e->pool->frame_bytes() : 0;
}
}  // namespace shmring
