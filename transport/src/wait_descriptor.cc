#include "wait_descriptor.h"

#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <new>

#include "shmring/core/detail/wait_files.h"

namespace shmring::detail {

namespace {

constexpr std::uint64_t kSocketTag = ~std::uint64_t{0};  // epoll data of the socket; peers: tokens
constexpr std::uint64_t kTimerTag = ~std::uint64_t{0} - 1;
// How many scans a watched peer without a lifeline gets before it is left unwatched (its process
// could not make one: no descriptors left).
constexpr int kMaxRescans = 16;

bool is_receiver(PeerRole role) { return role == PeerRole::kSubscriber || role == PeerRole::kConsumer; }

}  // namespace

bool watches(PeerRole watcher, PeerRole peer) noexcept {
  if (is_receiver(watcher)) {
    return peer == PeerRole::kPublisher || peer == PeerRole::kProducer ||
           (watcher == PeerRole::kConsumer && peer == PeerRole::kConsumer);
  }
  return peer == PeerRole::kSubscriber || peer == PeerRole::kConsumer;
}

std::shared_ptr<WaitDescriptor> WaitDescriptor::create(ChannelSegment& seg, PeerRole role,
                                                       int* error) noexcept {
  WaitPlan plan;
  ControlBlock* control = seg.control();
  if (is_receiver(role)) {
    plan.armed_on = kArmedOnData;
    plan.wake = &control->data_wake;
    plan.ready_event = WaitEvent::kData;
    plan.watched[0] = PeerRole::kPublisher;
    plan.watched[1] = PeerRole::kProducer;
    // A queue consumer also watches the other consumers: a dead one's item is redelivered by the
    // recovery that its hang-up runs.
    plan.watched[2] = role == PeerRole::kConsumer ? PeerRole::kConsumer : PeerRole::kProducer;
    plan.start_readable = true;
  } else {
    plan.armed_on = kArmedOnSpace;
    plan.wake = &control->space_wake;
    plan.ready_event = WaitEvent::kRoom;
    plan.watched[0] = PeerRole::kSubscriber;
    plan.watched[1] = PeerRole::kConsumer;
    plan.watched[2] = PeerRole::kConsumer;
    plan.start_readable = false;  // a sender arms on its first kWouldBlock
  }
  return create(seg, plan, error);
}

std::shared_ptr<WaitDescriptor> WaitDescriptor::create(ChannelSegment& seg, const WaitPlan& plan,
                                                       int* error) noexcept {
  *error = 0;
  if (seg.self() == nullptr || seg.read_only()) {
    *error = ENOTSUP;  // not registered: nowhere to arm
    return nullptr;
  }
  std::shared_ptr<WaitDescriptor> d(new (std::nothrow) WaitDescriptor());
  if (d == nullptr) {
    *error = ENOMEM;
    return nullptr;
  }
  d->seg_ = &seg;
  d->slot_ = seg.self();
  d->token_ = seg.self_token();
  d->armed_on_ = plan.armed_on;
  d->wake_ = plan.wake;
  d->ready_event_ = plan.ready_event;
  for (int i = 0; i < 3; ++i) d->watched_[i] = plan.watched[i];
  d->epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (d->epoll_fd_ < 0) {
    *error = errno;
    d->close();
    return nullptr;
  }
  d->socket_fd_ = create_wait_socket(seg.file_tag(), seg.file_mode(), &d->socket_name_);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kSocketTag;
  if (d->socket_fd_ < 0 || epoll_ctl(d->epoll_fd_, EPOLL_CTL_ADD, d->socket_fd_, &ev) != 0) {
    *error = errno;
    d->close();
    return nullptr;
  }
  publish_name(d->slot_->socket_name, d->socket_name_);  // SYNC(wait_name): notifiers find it
  d->refresh_watches();
  // A receiver starts readable: the application's first wait returns and its first drain arms it
  // (messages may be waiting already). A sender starts quiet: it arms on its first kWouldBlock.
  if (plan.start_readable && !send_wake(seg.file_tag(), d->socket_name_)) {
    *error = errno != 0 ? errno : EIO;
    d->close();
    return nullptr;
  }
  return d;
}

WaitDescriptor::~WaitDescriptor() {
  close();
  if (epoll_fd_ >= 0) ::close(epoll_fd_);
}

bool WaitDescriptor::slot_is_mine() const noexcept {
  return seg_->owned_here() && seg_->self() == slot_ &&
         slot_->state.load(std::memory_order_acquire) == static_cast<std::uint32_t>(PeerState::kActive) &&
         slot_->token.load(std::memory_order_relaxed) == token_;
}

void WaitDescriptor::drop_watch(std::uint64_t token) noexcept {
  for (auto it = watches_.begin(); it != watches_.end(); ++it) {
    if (it->token != token) continue;
    epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, it->fd, nullptr);
    ::close(it->fd);
    watches_.erase(it);
    return;
  }
}

bool WaitDescriptor::poll_set(bool* any) noexcept {
  epoll_event events[32];
  const int n = epoll_wait(epoll_fd_, events, 32, 0);
  *any = n > 0;
  bool socket_ready = false;
  for (int i = 0; i < n; ++i) {
    const std::uint64_t tag = events[i].data.u64;
    if (tag == kSocketTag) {
      socket_ready = true;
      continue;
    }
    if (tag == kTimerTag) {
      std::uint64_t expirations = 0;
      [[maybe_unused]] const ssize_t got = ::read(timer_fd_, &expirations, sizeof(expirations));
      timer_ns_ = 0;
      // The endpoint's own deadline passed: its try_ calls have work. (A suspect's time is looked
      // at by check_suspects.)
      if (endpoint_deadline_ns_ != 0 && monotonic_ns() >= endpoint_deadline_ns_) {
        endpoint_deadline_ns_ = 0;
        pending_ |= ready_event_;
      }
      continue;
    }
    // A lifeline: registered for hang-ups only (events 0). Its owner closed or died; if it still
    // looks alive, it is looked at again (see Suspect).
    for (const Watch& w : watches_) {
      if (w.token != tag) continue;
      std::erase_if(suspects_, [&](const Suspect& x) { return x.token == tag; });
      try {
        suspects_.push_back({w.token, w.index, monotonic_ns() + 1'000'000, 1'000'000});
      } catch (...) {
      }
      break;
    }
    drop_watch(tag);
    pending_ |= WaitEvent::kPeerGone;
    peer_gone_news_ = true;
  }
  if (socket_ready && take_membership_notices()) {
    membership_seen_ = ~std::uint64_t{0};  // look at the peers again (refresh_watches)
    char byte = 0;  // what is left (a wake-up) keeps the socket ready
    socket_ready = recv(socket_fd_, &byte, 1, MSG_PEEK | MSG_DONTWAIT) == 1;
  }
  return socket_ready;
}

bool WaitDescriptor::take_membership_notices() noexcept {
  bool any = false;
  for (int i = 0; i < 64; ++i) {  // bounded: a flood of notices waits for the next look
    char byte = 0;
    if (recv(socket_fd_, &byte, 1, MSG_PEEK | MSG_DONTWAIT) != 1 || byte != kMembershipNotice) break;
    [[maybe_unused]] const ssize_t taken = recv(socket_fd_, &byte, 1, MSG_DONTWAIT);
    any = true;
  }
  return any;
}

void WaitDescriptor::check_suspects(std::uint64_t now_ns) noexcept {
  const PeerSlot* slots = seg_->peers();
  for (auto it = suspects_.begin(); it != suspects_.end();) {
    if (now_ns < it->due_ns) {
      ++it;
      continue;
    }
    const PeerSlot& s = slots[it->index];
    if (state_of(s) != PeerState::kActive || s.token.load(std::memory_order_relaxed) != it->token) {
      it = suspects_.erase(it);  // its slot was freed (or given to another endpoint): done
      continue;
    }
    // Still registered. Dead now (its liveness lock is free): the try_ calls run the recovery
    // (prepare_to_block takes the news), so the application is told to make one ("may have
    // work", also through a WaitSet, which reports only events), and that recovery frees the
    // slot. Alive: the dying process has not let its lock go yet (or it closed its lifeline and
    // is unregistering): look again later.
    if (!seg_->peer_alive(it->index, s)) {
      peer_gone_news_ = true;
      pending_ |= ready_event_;
      it = suspects_.erase(it);
      continue;
    }
    it->backoff_ns = std::min<std::uint64_t>(it->backoff_ns * 2, 64'000'000);
    it->due_ns = now_ns + it->backoff_ns;
    ++it;
  }
}

void WaitDescriptor::drain_socket() noexcept {
  char bytes[16][8];
  iovec iov[16];
  mmsghdr messages[16];
  for (int i = 0; i < 16; ++i) {
    iov[i] = {bytes[i], sizeof(bytes[i])};
    messages[i] = {};
    messages[i].msg_hdr.msg_iov = &iov[i];
    messages[i].msg_hdr.msg_iovlen = 1;
  }
  // The queue holds one datagram per firing (plus the first one): one call drains it.
  for (int round = 0; round < 8; ++round) {
    const int n = recvmmsg(socket_fd_, messages, 16, MSG_DONTWAIT, nullptr);
    if (n < 16) return;
  }
}

void WaitDescriptor::collect_slot_events() noexcept {
  if (slot_->wait_events.load(std::memory_order_relaxed) == 0) return;
  // Acquire: pairs with signal_peer's release fetch_or.
  const auto bits = static_cast<WaitEvent>(slot_->wait_events.exchange(0, std::memory_order_acquire));
  pending_ |= bits;
  sticky_ |= bits & WaitEvent::kRemoved;
}

void WaitDescriptor::refresh_watches() noexcept {
  const std::uint64_t epoch = seg_->control()->misc.next_token.load(std::memory_order_relaxed);
  const bool changed = epoch != membership_seen_;
  if (!changed && rescans_left_ == 0) return;
  membership_seen_ = epoch;
  rescans_left_ = changed ? kMaxRescans : rescans_left_ - 1;
  bool missing = false;
  const PeerSlot* slots = seg_->peers();
  for (std::uint32_t i = 0; i < seg_->info().max_peers && watches_.size() < kMaxWatchedPeers; ++i) {
    const PeerSlot& s = slots[i];
    if (&s == slot_ || state_of(s) != PeerState::kActive) continue;
    const PeerRole role = role_of(s);
    if (role != watched_[0] && role != watched_[1] && role != watched_[2]) continue;
    const std::uint64_t token = s.token.load(std::memory_order_relaxed);
    if (std::any_of(watches_.begin(), watches_.end(), [&](const Watch& w) { return w.token == token; })) {
      continue;
    }
    // SYNC(wait_name): the peer records its lifeline's random name after making it.
    const RandomId name = load_name(s.lifeline_name);
    const int fd = name.empty() ? -1
                                : open_lifeline(seg_->file_tag(), name,
                                                static_cast<uid_t>(s.uid.load(std::memory_order_relaxed)));
    if (fd < 0) {
      // Not made (or recorded) yet: look again on the next arming. A file that is not the peer's
      // own FIFO (EPERM) is never watched.
      missing = missing || name.empty() || errno == ENOENT;
      continue;
    }
    // A FIFO opened after its last writer left never reports the hang-up (Linux waits for a
    // writer first). Its owner holds it read-write and never writes, so a read says which: 0 (end
    // of file) means no writer is left, the owner closed it or died, and that is reported now
    // (looked at again while its liveness lock is still held, as after a hang-up); EAGAIN means
    // the owner holds it, and its hang-up will be reported.
    char byte = 0;
    if (::read(fd, &byte, 1) == 0) {
      ::close(fd);
      pending_ |= WaitEvent::kPeerGone;
      peer_gone_news_ = true;
      try {
        suspects_.push_back({token, i, monotonic_ns() + 1'000'000, 1'000'000});
      } catch (...) {
      }
      continue;
    }
    epoll_event ev{};
    ev.events = 0;  // hang-ups and errors only (always reported)
    ev.data.u64 = token;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
      ::close(fd);
      continue;
    }
    try {
      watches_.push_back({token, i, fd});
    } catch (...) {
      epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
      ::close(fd);
    }
  }
  if (!missing) rescans_left_ = 0;
}

bool WaitDescriptor::prepare_to_block() noexcept {
  if (closed_ || !seg_->owned_here()) return false;
  collect_slot_events();
  bool any = false;
  const bool socket_ready = poll_set(&any);
  if (!suspects_.empty()) {
    check_suspects(monotonic_ns());
    any = any || peer_gone_news_;
  }
  // SYNC(wait_fd): block only when armed with nothing pending. seq_cst: after the epoll look, so
  // a notifier that disarms after this load sends after it, and the descriptor turns readable.
  if (!any && slot_->wait_armed.load(std::memory_order_seq_cst) == armed_on_) return false;
  if (!slot_is_mine()) return false;  // taken for dead and given away: nothing to arm
  // SYNC(wait_fd): count first, then arm (a CAS from 0: only this endpoint arms its slot), then
  // the seq_cst RMW the notifier's RMW pairs with, then drain, then the caller attempts again.
  // Counting before arming means a process killed in between leaves the count one too high (the
  // notifiers scan for nothing) rather than one too low (a wrapped count would hide an armed
  // endpoint from every notifier).
  wake_->waiters.fetch_add(kArmedUnit, std::memory_order_seq_cst);
  std::uint32_t idle = 0;
  if (!slot_->wait_armed.compare_exchange_strong(idle, armed_on_, std::memory_order_seq_cst)) {
    wake_->waiters.fetch_sub(kArmedUnit, std::memory_order_relaxed);  // it was still armed
  }
  wake_->waiters.fetch_add(0, std::memory_order_seq_cst);  // SYNC(wait_fd): the pairing RMW
  if (socket_ready) drain_socket();
  refresh_watches();
  return true;
}

void WaitDescriptor::set_deadline(std::uint64_t deadline_ns) noexcept {
  endpoint_deadline_ns_ = deadline_ns;
  arm_timer();
}

void WaitDescriptor::arm_timer() noexcept {
  if (closed_) return;
  std::uint64_t when = endpoint_deadline_ns_;
  for (const Suspect& suspect : suspects_) {
    if (when == 0 || suspect.due_ns < when) when = suspect.due_ns;
  }
  if (when == timer_ns_) return;
  if (timer_fd_ < 0) {
    if (when == 0) return;
    timer_fd_ = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kTimerTag;
    if (timer_fd_ < 0 || epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, timer_fd_, &ev) != 0) {
      if (timer_fd_ >= 0) ::close(timer_fd_);
      timer_fd_ = -1;
      wake_self();  // no timer: come back now rather than never
      return;
    }
  }
  itimerspec spec{};  // all zero: disarm
  if (when != 0) {
    spec.it_value.tv_sec = static_cast<time_t>(when / 1'000'000'000);
    spec.it_value.tv_nsec = static_cast<long>(when % 1'000'000'000);
  }
  if (timerfd_settime(timer_fd_, TFD_TIMER_ABSTIME, &spec, nullptr) == 0) timer_ns_ = when;
}

void WaitDescriptor::wake_self() noexcept {
  if (!closed_) send_wake(seg_->file_tag(), socket_name_);
}

WaitEvent WaitDescriptor::take_events() noexcept {
  if (closed_ || !seg_->owned_here()) return WaitEvent::kNone;
  collect_slot_events();
  bool any = false;
  const bool socket_ready = poll_set(&any);
  if (!suspects_.empty()) check_suspects(monotonic_ns());
  refresh_watches();  // a membership notice (or a missing lifeline) asks for a look
  arm_timer();
  WaitEvent events = pending_ | sticky_;
  pending_ = WaitEvent::kNone;
  if (socket_ready) events |= ready_event_;
  return events;
}

void WaitDescriptor::close() noexcept {
  if (closed_) return;
  closed_ = true;
  const bool owner = seg_ != nullptr && seg_->owned_here();
  if (owner && slot_ != nullptr && slot_is_mine()) {
    // Disarmed against this descriptor's own block (an exchange: exactly one of this and a
    // notifier's CAS takes the armed count down), which may be a pattern's own (kArmedOnOwn).
    if (slot_->wait_armed.exchange(0, std::memory_order_acq_rel) == armed_on_) {
      wake_->waiters.fetch_sub(kArmedUnit, std::memory_order_relaxed);
    }
  }
  // Emptied, not closed: the epoll instance stays (never readable again) until the last holder
  // (a WaitSet entry) lets go, so a WaitSet can always take it out of its own set, even when a
  // forked child still holds copies of the descriptors.
  // A forked child shares the epoll instance with its parent: it must take nothing out of it
  // (the parent's descriptor would go deaf). Closing its own copies changes nothing there.
  auto forget = [&](int fd) {
    if (owner) epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
    ::close(fd);
  };
  for (const Watch& w : watches_) forget(w.fd);
  watches_.clear();
  suspects_.clear();
  if (socket_fd_ >= 0) forget(socket_fd_);
  socket_fd_ = -1;
  if (timer_fd_ >= 0) forget(timer_fd_);
  timer_fd_ = -1;
  if (owner && seg_ != nullptr && !socket_name_.empty()) {
    if (slot_ != nullptr && slot_is_mine()) clear_name(slot_->socket_name);
    remove_wait_file(kWaitSocketPrefix, seg_->file_tag(), socket_name_);
  }
}

}  // namespace shmring::detail
