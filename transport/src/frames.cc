// Frame channels: a pool of page-aligned frame buffers with per-buffer sequence words and a
// "latest" index, in a channel segment. See frames.h for the protocol.
#include "shmring/transport/frames.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "channel_segment.h"
#include "wait.h"

namespace shmring {
namespace detail {

inline constexpr std::uint64_t kFramePoolMagic = 0x314D5246524D4853ULL;  // "SHMRFRM1"
inline constexpr std::uint64_t kFramePage = 4096;
inline constexpr std::uint64_t kMaxFrameBuffers = 64;
inline constexpr std::uint64_t kMaxFrameBytes = std::uint64_t{1} << 30;

// Written once by the creator (before the channel header's kReady).
struct alignas(kFalseSharingRange) FramePoolHeader {
  std::uint64_t magic;
  std::uint64_t count;        // frame buffers
  std::uint64_t frame_bytes;  // bytes per buffer
  std::uint64_t stride;       // align_up(frame_bytes, 4096)
  std::uint64_t data_offset;  // first buffer, from the start of the pool (page aligned)
};
static_assert(sizeof(FramePoolHeader) == 128);

// Written by the publisher.
struct alignas(kFalseSharingRange) FramePoolState {
  std::atomic<std::uint64_t> latest;        // index + 1 of the newest complete frame (0: none)
  std::atomic<std::uint64_t> frame_number;  // number of the newest complete frame
};
static_assert(sizeof(FramePoolState) == 128);

struct alignas(kFalseSharingRange) FrameSlot {
  std::atomic<std::uint64_t> seq;           // odd while the publisher writes the buffer
  std::atomic<std::uint64_t> frame_number;  // valid while seq is even
  std::atomic<std::uint64_t> length;
};
static_assert(sizeof(FrameSlot) == 128);
static_assert(std::is_standard_layout_v<FrameSlot>);

struct FramePoolLayout {
  FramePoolHeader header;
  FramePoolState state;
  // FrameSlot[count], then the buffers at data_offset
};
static_assert(sizeof(FramePoolLayout) == 256);

std::uint64_t frame_data_offset(std::uint64_t count) {
  return align_up(sizeof(FramePoolLayout) + count * sizeof(FrameSlot), kFramePage);
}

struct FramePool {
  FramePoolLayout* layout = nullptr;
  FrameSlot* slots = nullptr;
  std::byte* data = nullptr;
  std::uint64_t count = 0;
  std::uint64_t frame_bytes = 0;
  std::uint64_t stride = 0;
  std::byte* buffer(std::uint64_t i) const { return data + i * stride; }
};

absl::StatusOr<FramePool> attach_pool(std::byte* ring, std::uint64_t ring_bytes,
                                      const ChannelInfo& info) {
  if (ring_bytes < sizeof(FramePoolLayout)) return absl::DataLossError("frame pool: too small");
  FramePoolHeader h;
  std::memcpy(static_cast<void*>(&h), ring, sizeof(h));  // read once, then use the copy
  if (h.magic != kFramePoolMagic || h.count < 3 || h.count > kMaxFrameBuffers ||
      h.count != info.capacity || h.frame_bytes != info.max_message || h.frame_bytes == 0 ||
      h.frame_bytes > kMaxFrameBytes || h.stride != align_up(h.frame_bytes, kFramePage) ||
      h.data_offset != frame_data_offset(h.count) || h.data_offset + h.count * h.stride > ring_bytes) {
    return absl::DataLossError(cat("channel '", info.name, "': inconsistent frame pool header"));
  }
  FramePool p;
  p.layout = reinterpret_cast<FramePoolLayout*>(ring);
  p.slots = reinterpret_cast<FrameSlot*>(ring + sizeof(FramePoolLayout));
  p.data = ring + h.data_offset;
  p.count = h.count;
  p.frame_bytes = h.frame_bytes;
  p.stride = h.stride;
  return p;
}

struct FrameEndpoint {
  std::unique_ptr<ChannelSegment> seg;
  FramePool pool;
  WaitOptions wait;
  std::uint64_t published = 0;  // publisher: frames published
  std::uint64_t last_index = 0;
  std::uint64_t last_frame = 0;  // subscriber: frame number of the last frame taken
  std::uint64_t received = 0;
  std::uint64_t lost = 0;
  std::uint64_t blocked_ns = 0;
  std::uint64_t last_check_ns = 0;
  // The one loan (publisher) or view (subscriber) out, so that closing the endpoint can make it
  // inert; the loan or view keeps this pointer current when it is moved.
  FrameLoan* loan_out = nullptr;
  FrameView* view_out = nullptr;
};

namespace {

ChannelSpec frame_spec(const FrameOptions& options) {
  ChannelSpec spec;
  spec.kind = ChannelKind::kFrames;
  copy_common_options(options, &spec);
  spec.default_capacity = 4;
  spec.default_max_message = 4 << 20;
  spec.default_max_peers = 16;
  spec.ring_bytes = [](std::uint64_t count, std::uint64_t frame_bytes) -> std::uint64_t {
    if (count < 3 || count > kMaxFrameBuffers || frame_bytes == 0 || frame_bytes > kMaxFrameBytes) {
      return 0;
    }
    return frame_data_offset(count) + count * align_up(frame_bytes, kFramePage);
  };
  spec.init_ring = [](void* ring, std::size_t, std::uint64_t count,
                      std::uint64_t frame_bytes) -> absl::Status {
    auto* layout = static_cast<FramePoolLayout*>(ring);
    layout->header.magic = kFramePoolMagic;
    layout->header.count = count;
    layout->header.frame_bytes = frame_bytes;
    layout->header.stride = align_up(frame_bytes, kFramePage);
    layout->header.data_offset = frame_data_offset(count);
    layout->state.latest.store(0, std::memory_order_relaxed);
    layout->state.frame_number.store(0, std::memory_order_relaxed);
    auto* slots = reinterpret_cast<FrameSlot*>(static_cast<std::byte*>(ring) + sizeof(FramePoolLayout));
    for (std::uint64_t i = 0; i < count; ++i) {
      slots[i].seq.store(0, std::memory_order_relaxed);
      slots[i].frame_number.store(0, std::memory_order_relaxed);
      slots[i].length.store(0, std::memory_order_relaxed);
    }
    return absl::OkStatus();  // published by the channel header's release store of kReady
  };
  return spec;
}


void recover_locked(FrameEndpoint& e) {
  ChannelSegment& seg = *e.seg;
  seg.mark_dead_locked();
  PeerSlot* slots = seg.peers();
  for (std::uint32_t i = 0; i < seg.info().max_peers; ++i) {
    if (state_of(slots[i]) == PeerState::kDeadPending) seg.free_slot_locked(slots[i]);  // drops its pin
  }
}

bool pinned(const FrameEndpoint& e, std::uint64_t index) {
  const PeerSlot* slots = e.seg->peers();
  for (std::uint32_t i = 0; i < e.seg->info().max_peers; ++i) {
    const PeerSlot& s = slots[i];
    if (state_of(s) != PeerState::kActive || role_of(s) != PeerRole::kSubscriber) continue;
    // SYNC(frame_pin): seq_cst, after the seq_cst store that made the buffer's sequence odd.
    if (s.aux.load(std::memory_order_seq_cst) == index + 1) return true;
  }
  return false;
}

absl::StatusOr<std::unique_ptr<FrameEndpoint>> open_frames(std::string_view name,
                                                          const FrameOptions& options, PeerRole role) {
  auto seg = ChannelSegment::open(name, frame_spec(options));
  if (!seg.ok()) return seg.status();
  auto e = std::make_unique<FrameEndpoint>();
  e->seg = *std::move(seg);
  e->wait = options.wait;
  absl::StatusOr<FramePool> pool = attach_pool(e->seg->ring(), e->seg->info().ring_bytes, e->seg->info());
  if (!pool.ok()) return pool.status();
  e->pool = *pool;
  if (!e->seg->lock_for(options.open_timeout.count())) return e->seg->memory().status();
  recover_locked(*e);
  if (role == PeerRole::kPublisher) {
    const PeerSlot* slots = e->seg->peers();
    for (std::uint32_t i = 0; i < e->seg->info().max_peers; ++i) {
      if (state_of(slots[i]) == PeerState::kActive && role_of(slots[i]) == PeerRole::kPublisher) {
        e->seg->unlock();
        return absl::FailedPreconditionError(cat("frames channel '", name,
                                                 "' already has a live publisher (pid ",
                                                 slots[i].pid.load(std::memory_order_relaxed), ")"));
      }
    }
  }
  absl::Status s = e->seg->register_locked(role, 0);
  e->seg->unlock();
  if (!s.ok()) return s;
  // A subscriber only reads the pool (its pin lives in its peer slot): a stray write through a
  // view faults instead of corrupting a frame the publisher and other subscribers use.
  if (role == PeerRole::kSubscriber) e->seg->protect_ring_read_only();
  // SYNC(frame_latest): pairs with the publisher's release store of frame_number.
  e->last_frame = role == PeerRole::kSubscriber
                      ? 0
                      : e->pool.layout->state.frame_number.load(std::memory_order_acquire);
  e->published = e->last_frame;
  const std::uint64_t latest = e->pool.layout->state.latest.load(std::memory_order_acquire);
  e->last_index = latest == 0 || latest > e->pool.count ? 0 : latest - 1;
  return e;
}

}  // namespace
}  // namespace detail

using detail::FrameEndpoint;

// --- FrameLoan / FrameView -------------------------------------------------------------------------

namespace detail {

void abandon_frame_loan(FrameEndpoint& e, FrameLoan& loan) noexcept {
  // A forked child's copy of a loan must not touch its parent's buffer.
  if (e.loan_out == &loan && !e.seg->owned_here()) e.loan_out = nullptr;
  if (e.loan_out == &loan) {
    // The buffer was not latest and held no pinned frame; mark it written-but-empty (even, new seq).
    FrameSlot& slot = e.pool.slots[loan.index_];
    slot.frame_number.store(0, std::memory_order_relaxed);
    slot.seq.store(loan.seq_ + 2, std::memory_order_release);
    e.loan_out = nullptr;
  }
  loan.owner_ = nullptr;
  loan.result_ = ChannelResult::kClosed;
  loan.buffer_ = {};
}

void release_frame_view(FrameEndpoint& e, FrameView& view) noexcept {
  // A forked child's copy of a view must not drop its parent's pin.
  if (e.view_out == &view && !e.seg->owned_here()) e.view_out = nullptr;
  if (e.view_out == &view) {
    // SYNC(frame_pin): the release orders this subscriber's reads of the frame before the unpin
    // the publisher's seq_cst scan may observe.
    e.seg->self()->aux.store(0, std::memory_order_release);
    e.view_out = nullptr;
    notify(e.seg->control()->space_wake);
  }
  view.owner_ = nullptr;
  view.result_ = ChannelResult::kClosed;
  view.data_ = {};
}

}  // namespace detail

void FrameLoan::take_from(FrameLoan& o) noexcept {
  owner_ = std::exchange(o.owner_, nullptr);
  result_ = std::exchange(o.result_, ChannelResult::kClosed);
  index_ = o.index_;
  seq_ = o.seq_;
  buffer_ = std::exchange(o.buffer_, {});
  if (owner_ != nullptr && owner_->loan_out == &o) owner_->loan_out = this;
}
FrameLoan::FrameLoan(FrameLoan&& o) noexcept { take_from(o); }
FrameLoan& FrameLoan::operator=(FrameLoan&& o) noexcept {
  if (this != &o) {
    if (owner_ != nullptr) detail::abandon_frame_loan(*owner_, *this);
    take_from(o);
  }
  return *this;
}
FrameLoan::~FrameLoan() {
  if (owner_ != nullptr) detail::abandon_frame_loan(*owner_, *this);
}

void FrameView::take_from(FrameView& o) noexcept {
  owner_ = std::exchange(o.owner_, nullptr);
  result_ = std::exchange(o.result_, ChannelResult::kClosed);
  frame_number_ = o.frame_number_;
  data_ = std::exchange(o.data_, {});
  if (owner_ != nullptr && owner_->view_out == &o) owner_->view_out = this;
}
FrameView::FrameView(FrameView&& o) noexcept { take_from(o); }
FrameView& FrameView::operator=(FrameView&& o) noexcept {
  if (this != &o) {
    release();
    take_from(o);
  }
  return *this;
}
FrameView::~FrameView() { release(); }
void FrameView::release() noexcept {
  if (owner_ != nullptr) {
    detail::release_frame_view(*owner_, *this);
    return;
  }
  result_ = ChannelResult::kClosed;
  data_ = {};
}

// --- FramePublisher --------------------------------------------------------------------------------

FramePublisher::FramePublisher() = default;
FramePublisher::FramePublisher(FramePublisher&&) noexcept = default;
FramePublisher& FramePublisher::operator=(FramePublisher&& o) noexcept {
  if (this != &o) {
    close();
    impl_ = std::move(o.impl_);
  }
  return *this;
}
FramePublisher::~FramePublisher() { close(); }
void FramePublisher::close() noexcept {
  if (impl_ && impl_->loan_out != nullptr) detail::abandon_frame_loan(*impl_, *impl_->loan_out);
  impl_.reset();
}

absl::StatusOr<FramePublisher> FramePublisher::open(std::string_view name,
                                                    const FrameOptions& options) {
  auto e = detail::open_frames(name, options, PeerRole::kPublisher);
  if (!e.ok()) return e.status();
  FramePublisher p;
  p.impl_ = *std::move(e);
  return p;
}

FrameLoan FramePublisher::try_loan() noexcept { return loan(std::chrono::nanoseconds(0)); }

FrameLoan FramePublisher::loan(std::chrono::nanoseconds timeout) noexcept {
  FrameLoan loan;
  if (!impl_) return loan;
  FrameEndpoint& e = *impl_;
  if (e.loan_out != nullptr) {
    loan.result_ = ChannelResult::kWouldBlock;  // one loan at a time
    return loan;
  }
  detail::FramePool& pool = e.pool;
  std::uint64_t chosen = 0;
  std::uint64_t chosen_seq = 0;
  auto attempt = [&]() -> bool {
    const std::uint64_t latest = pool.layout->state.latest.load(std::memory_order_relaxed);
    for (std::uint64_t k = 1; k <= pool.count; ++k) {
      const std::uint64_t i = (e.last_index + k) % pool.count;
      if (latest == i + 1) continue;
      detail::FrameSlot& slot = pool.slots[i];
      std::uint64_t seq = slot.seq.load(std::memory_order_relaxed);
      if (seq & 1) ++seq;  // a publisher died writing it: it holds nothing readable
      // SYNC(frame_pin): seq_cst odd store, then seq_cst scan of the pins (frames.h).
      slot.seq.store(seq + 1, std::memory_order_seq_cst);
      if (detail::pinned(e, i)) {
        slot.seq.store(seq, std::memory_order_release);  // unchanged content: readers may go on
        continue;
      }
      chosen = i;
      chosen_seq = seq;
      return true;
    }
    return false;
  };
  bool done = attempt();
  if (!done && timeout.count() > 0) {
    const std::uint64_t start = detail::monotonic_ns();
    done = detail::wait_until(&e.seg->control()->space_wake, e.wait, detail::deadline_after(timeout),
                              attempt, [&](std::uint64_t now) {
                                e.seg->touch(now);
                                if (now - e.last_check_ns >= 2'000'000 && e.seg->lock_for(0)) {
                                  e.last_check_ns = now;
                                  detail::recover_locked(e);
                                  e.seg->unlock();
                                }
                              }, 2'000'000);
    e.blocked_ns += detail::monotonic_ns() - start;
    e.seg->self()->blocked_ns.store(e.blocked_ns, std::memory_order_relaxed);
  }
  if (!done) {
    loan.result_ = timeout.count() > 0 ? ChannelResult::kTimedOut : ChannelResult::kWouldBlock;
    return loan;
  }
  loan.owner_ = &e;
  loan.result_ = ChannelResult::kOk;
  loan.index_ = static_cast<std::uint32_t>(chosen);
  loan.seq_ = chosen_seq;
  loan.buffer_ = std::span<std::byte>(pool.buffer(chosen), pool.frame_bytes);
  e.loan_out = &loan;  // kept current by FrameLoan's move
  return loan;
}

ChannelResult FramePublisher::publish(FrameLoan& loan, std::size_t bytes) noexcept {
  if (!impl_ || loan.owner_ != impl_.get() || loan.result_ != ChannelResult::kOk) {
    return ChannelResult::kClosed;
  }
  if (bytes > loan.buffer_.size()) return ChannelResult::kTooLarge;
  FrameEndpoint& e = *impl_;
  detail::FrameSlot& slot = e.pool.slots[loan.index_];
  const std::uint64_t number = ++e.published;
  slot.length.store(bytes, std::memory_order_relaxed);
  slot.frame_number.store(number, std::memory_order_relaxed);
  // SYNC(frame_data): release: the buffer's bytes, length and number are complete.
  slot.seq.store(loan.seq_ + 2, std::memory_order_release);
  e.pool.layout->state.latest.store(loan.index_ + 1, std::memory_order_release);
  // SYNC(frame_latest): readers acquire frame_number, then latest and the slot's sequence.
  e.pool.layout->state.frame_number.store(number, std::memory_order_release);
  e.last_index = loan.index_;
  e.seg->self()->sent.store(number, std::memory_order_relaxed);
  detail::notify(e.seg->control()->data_wake);
  loan.owner_ = nullptr;
  loan.result_ = ChannelResult::kClosed;
  loan.buffer_ = {};
  e.loan_out = nullptr;
  return ChannelResult::kOk;
}

void FramePublisher::abandon(FrameLoan& loan) noexcept {
  if (impl_ && loan.owner_ == impl_.get()) detail::abandon_frame_loan(*impl_, loan);
}

ChannelResult FramePublisher::send(std::span<const std::byte> frame,
                                   std::chrono::nanoseconds timeout) noexcept {
  if (!impl_) return ChannelResult::kClosed;
  if (frame.size() > impl_->pool.frame_bytes) return ChannelResult::kTooLarge;
  FrameLoan l = loan(timeout);
  if (!l.ok()) return l.result();
  if (!frame.empty()) std::memcpy(l.buffer().data(), frame.data(), frame.size());
  return publish(l, frame.size());
}

ChannelResult FramePublisher::try_send(std::span<const std::byte> frame) noexcept {
  return send(frame, std::chrono::nanoseconds(0));
}

std::uint64_t FramePublisher::max_message() const noexcept { return impl_ ? impl_->pool.frame_bytes : 0; }
std::uint64_t FramePublisher::frames_published() const noexcept { return impl_ ? impl_->published : 0; }
PeerStats FramePublisher::stats() const noexcept {
  return impl_ ? detail::peer_stats(*impl_->seg) : PeerStats{};
}

// --- FrameSubscriber -------------------------------------------------------------------------------

FrameSubscriber::FrameSubscriber() = default;
FrameSubscriber::FrameSubscriber(FrameSubscriber&&) noexcept = default;
FrameSubscriber& FrameSubscriber::operator=(FrameSubscriber&& o) noexcept {
  if (this != &o) {
    close();
    impl_ = std::move(o.impl_);
  }
  return *this;
}
FrameSubscriber::~FrameSubscriber() { close(); }
void FrameSubscriber::close() noexcept {
  if (impl_ && impl_->view_out != nullptr) {
    // Unpinned (the publisher may reuse the buffer) and inert, but kept distinguishable from a
    // released view: its data() is left as it was, not to be read.
    FrameView& view = *impl_->view_out;
    if (impl_->seg->owned_here()) {  // a forked child's copy must not drop its parent's pin
      impl_->seg->self()->aux.store(0, std::memory_order_release);
      detail::notify(impl_->seg->control()->space_wake);
    }
    impl_->view_out = nullptr;
    view.owner_ = nullptr;
    view.result_ = ChannelResult::kClosed;
  }
  impl_.reset();
}

absl::StatusOr<FrameSubscriber> FrameSubscriber::open(std::string_view name,
                                                      const FrameOptions& options) {
  auto e = detail::open_frames(name, options, PeerRole::kSubscriber);
  if (!e.ok()) return e.status();
  FrameSubscriber s;
  s.impl_ = *std::move(e);
  return s;
}

FrameView FrameSubscriber::take(bool blocking, std::chrono::nanoseconds timeout) noexcept {
  FrameView view;
  if (!impl_) return view;
  FrameEndpoint& e = *impl_;
  if (e.view_out != nullptr) {
    // One view at a time: a second pin would replace the first (a subscriber has one pin word),
    // leaving the first view's buffer free for the publisher to overwrite.
    view.result_ = ChannelResult::kWouldBlock;
    return view;
  }
  detail::FramePool& pool = e.pool;
  PeerSlot* me = e.seg->self();
  ChannelResult out = ChannelResult::kWouldBlock;
  auto attempt = [&]() -> bool {
    for (int tries = 0; tries < 64; ++tries) {
      // SYNC(frame_latest): pairs with the publisher's release store of frame_number.
      const std::uint64_t number = pool.layout->state.frame_number.load(std::memory_order_acquire);
      if (number == e.last_frame) return false;
      const std::uint64_t latest = pool.layout->state.latest.load(std::memory_order_acquire);
      if (latest == 0 || latest > pool.count) {
        out = ChannelResult::kCorrupt;
        return true;
      }
      const std::uint64_t i = latest - 1;
      detail::FrameSlot& slot = pool.slots[i];
      // SYNC(frame_data): pairs with the release store of the even sequence in publish().
      const std::uint64_t seq = slot.seq.load(std::memory_order_acquire);
      if (seq & 1) continue;  // recycled under us: look at latest again
      const std::uint64_t fn = slot.frame_number.load(std::memory_order_relaxed);
      const std::uint64_t length = slot.length.load(std::memory_order_relaxed);
      // SYNC(frame_pin): seq_cst pin, then seq_cst re-read of the sequence (frames.h).
      me->aux.store(i + 1, std::memory_order_seq_cst);
      if (slot.seq.load(std::memory_order_seq_cst) != seq) {
        me->aux.store(0, std::memory_order_release);
        continue;
      }
      if (fn == 0 || fn <= e.last_frame || length > pool.frame_bytes) {
        me->aux.store(0, std::memory_order_release);
        if (fn != 0 && fn <= e.last_frame) return false;  // nothing newer in that buffer
        out = ChannelResult::kCorrupt;
        return true;
      }
      if (e.last_frame != 0 && fn > e.last_frame + 1) e.lost += fn - e.last_frame - 1;
      e.last_frame = fn;
      ++e.received;
      me->received.store(e.received, std::memory_order_relaxed);
      me->lost.store(e.lost, std::memory_order_relaxed);
      view.owner_ = &e;
      view.result_ = ChannelResult::kOk;
      view.frame_number_ = fn;
      view.data_ = std::span<const std::byte>(pool.buffer(i), length);
      e.view_out = &view;  // kept current by FrameView's move
      out = ChannelResult::kOk;
      return true;
    }
    return false;
  };
  bool done = attempt();
  if (!done && blocking && timeout.count() > 0) {
    const std::uint64_t start = detail::monotonic_ns();
    done = detail::wait_until(&e.seg->control()->data_wake, e.wait, detail::deadline_after(timeout),
                              attempt, [&](std::uint64_t now) { e.seg->touch(now); });
    e.blocked_ns += detail::monotonic_ns() - start;
    me->blocked_ns.store(e.blocked_ns, std::memory_order_relaxed);
    if (!done) out = ChannelResult::kTimedOut;
  }
  if (out != ChannelResult::kOk) view.result_ = out;
  return view;
}

FrameView FrameSubscriber::try_receive_view() noexcept { return take(false, {}); }
FrameView FrameSubscriber::receive_view(std::chrono::nanoseconds timeout) noexcept {
  return take(true, timeout);
}

ChannelResult FrameSubscriber::receive(std::span<std::byte> out, std::size_t* bytes,
                                       std::chrono::nanoseconds timeout) noexcept {
  if (!impl_) return ChannelResult::kClosed;
  if (out.size() < impl_->pool.frame_bytes) return ChannelResult::kTooLarge;
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

std::uint64_t FrameSubscriber::lost() const noexcept { return impl_ ? impl_->lost : 0; }
std::uint64_t FrameSubscriber::received() const noexcept { return impl_ ? impl_->received : 0; }
std::uint64_t FrameSubscriber::max_message() const noexcept { return impl_ ? impl_->pool.frame_bytes : 0; }
PeerStats FrameSubscriber::stats() const noexcept {
  return impl_ ? detail::peer_stats(*impl_->seg) : PeerStats{};
}

}  // namespace shmring
