// ServiceClient, PendingResponse, RequestLoan and ResponseView: the client's side of a service
// (service.h; the layout and protocol in service_layout.h).
//
// A client owns one area and its max_in_flight calls. Locally it keeps, per call, what uses it
// (a loan, a pending response, a view, a cancelled request waiting for its server to let go) and
// the generation it last sent; a call is free again once nothing uses it and no server can write
// into it any more (its final response was taken, or it ended).
#include "shmring/transport/service.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "queue_recovery.h"
#include "service_endpoint.h"
#include "wait.h"

namespace shmring {
namespace detail {

struct ServiceClientEndpoint final : ServiceEndpoint {
  struct LocalCall {
    std::uint32_t generation = 0;  // of the last request sent in this call
    bool sent = false;             // a request of `generation` is out and not finished
    bool cancelled = false;        // dropped before its final response: waits for its holder
    std::uint32_t consumed = 0;    // responses taken (this generation)
    std::uint32_t polls = 0;       // empty polls (the deadline and evidence are looked at every few)
    // The recovery while this call waits: first after a while, then at growing gaps (a slow
    // server is asked about once in a while, a dead one found soon enough).
    std::uint64_t waiting_since_ns = 0;  // first empty poll or wait (0: not yet)
    std::uint64_t next_recovery_ns = 0;
    std::uint64_t recovery_gap_ns = 0;
    bool listed = true;            // in free_calls
    ServiceHandle* loan = nullptr;
    ServiceHandle* pending = nullptr;
    ServiceHandle* view = nullptr;
    bool in_use() const { return sent || cancelled || loan != nullptr || pending != nullptr || view != nullptr; }
  };

  std::uint32_t area = 0;
  bool has_area = false;
  std::vector<LocalCall> calls;
  std::vector<std::uint32_t> free_calls;  // a stack of free call indexes
  std::uint64_t request_timeout_ns = 10'000'000'000;
  bool at_most_once = false;
  std::uint64_t next_id = 0;
  std::uint64_t requests = 0;
  std::uint64_t completed = 0;
  std::uint64_t lost = 0;
  // When a send that found the request queue full is to be tried again (0: none): the
  // descriptor's timer makes it readable then (nobody announces room in the queue). Kept, also
  // once passed, until the next send attempt: a re-arm on behalf of another call may drain the
  // timer's wake-up, and the timer set again in the past makes the descriptor readable at once.
  // Forgotten kSendRetryGraceNs after it passed (an application that gave the send up does not
  // wake forever).
  std::uint64_t send_retry_ns = 0;

  ~ServiceClientEndpoint() override;

  absl::Status registered_locked() override;
  absl::Status opened() override;
  std::shared_ptr<WaitDescriptor> make_descriptor(int* error) noexcept override;
  std::uint64_t wake_deadline_ns() const noexcept override {
    if (send_retry_ns == 0) return 0;
    return monotonic_ns() < send_retry_ns + kSendRetryGraceNs ? send_retry_ns : 0;
  }
  ChannelResult settle_handle(ServiceHandle& handle) noexcept override;
  void follow_handle(const ServiceHandle& from, ServiceHandle& to) noexcept override;

  const ServiceShape& shape() const { return region->shape(); }
  CallHeader& call(std::uint32_t index) const { return region->call(area, index); }
  PeerSlot& me() const { return *seg->self(); }
  bool usable() const { return has_area && seg->owned_here(); }

  // A free call (kWouldBlock when none), reaping cancelled calls whose servers let go first.
  bool acquire(std::uint32_t* index) noexcept;
  // Frees calls that were cancelled and that no server holds any more. True if any.
  bool reap() noexcept;
  void release_call(std::uint32_t index) noexcept;
  // Sends the request written in call `index` (`bytes` of payload) and binds `pending` to it.
  // kWouldBlock: the request queue is full (a server held up inside a take while the others took
  // a lap past it): nothing sent, the call is still the caller's.
  ChannelResult send(std::uint32_t index, std::size_t bytes, ServiceHandle& pending) noexcept;
  // send(), and while the queue is full: waiting until `deadline_ns` (sleeping in short steps:
  // nobody announces room in the queue) if `blocking`, else making the descriptor readable soon.
  ChannelResult send_waiting(std::uint32_t index, std::size_t bytes, ServiceHandle& pending, bool blocking,
                             std::uint64_t deadline_ns) noexcept;
  static constexpr std::uint64_t kQueueFullRetryNs = 1'000'000;
  static constexpr std::uint64_t kSendRetryGraceNs = 100'000'000;

  // What the call's next response looks like: kOk (the record at `consumed` is there: *record
  // set), kPeerGone (the call ended with nothing more), kWouldBlock.
  ChannelResult look(std::uint32_t index, ResponseRecord** record) noexcept;
  // The record at `consumed` was taken (a copy done, or a view released): frees it for the server
  // and, after the final one, the call. `pending` is still bound (or null).
  void consume(std::uint32_t index, bool final) noexcept;
  // The call ended without a final response (kEnded): frees it.
  void end(std::uint32_t index) noexcept;
  // Cancels the request of call `index` (the pending response was dropped, or its deadline
  // passed: `expired`): the server is told; the call is freed as soon as no server can write
  // into it. Counted as cancelled (or expired) unless its final response was there already.
  void cancel(std::uint32_t index, bool expired) noexcept;
  // A receive on `pending` (call `index`) that answered `r` without a response: the call ended
  // (kPeerGone) or its deadline passed (kTimedOut with `expired`) makes the pending response done
  // and frees (or cancels) the call; any other result changes nothing.
  void settle_unanswered(PendingResponse& pending, std::uint32_t index, ChannelResult r, bool expired) noexcept {
    if (r == ChannelResult::kPeerGone) {
      calls[index].pending = nullptr;
      end(index);
    } else if (r == ChannelResult::kTimedOut && expired) {
      pending.expired_ = true;
      calls[index].pending = nullptr;
      cancel(index, true);
    } else {
      return;
    }
    pending.done_ = true;
    detach(pending);
  }
  // Whether any call of this client (but `except`) has a response (or an end) to take: after a
  // descriptor was armed, a call other than the one polled may have been answered meanwhile.
  bool any_ready(std::uint32_t except = ~std::uint32_t{0}) noexcept;
  // acquire(), and with a descriptor and no free call: re-armed before the caller answers
  // kWouldBlock (calls are freed by responses taken, and by servers letting go of cancelled ones).
  bool acquire_or_arm(std::uint32_t* index) noexcept;
  // Every few empty polls: the deadline (true when it passed) and, after kPollRecoveryNs without
  // an answer, the recovery (a dead server?), at doubling gaps up to kMaxRecoveryGapNs.
  bool deadline_passed(std::uint32_t index, std::uint64_t deadline_ns) noexcept;
  // The idle hook of a waiting call: the same, starting after kIdleRecoveryNs (kStalledRecoveryNs
  // when a recovery is hinted).
  void wait_idle(std::uint32_t index, std::uint64_t now) noexcept;
  void recover_for(LocalCall& c, std::uint64_t now, std::uint64_t first_gap_ns) noexcept;
  static constexpr std::uint64_t kPollRecoveryNs = 200'000'000;
  static constexpr std::uint64_t kMaxRecoveryGapNs = 1'000'000'000;
};

namespace {

std::uint64_t deadline_from(std::uint64_t now, std::uint64_t timeout_ns) {
  return now + timeout_ns < now ? UINT64_MAX : now + timeout_ns;
}

}  // namespace

absl::Status ServiceClientEndpoint::registered_locked() {
  // A free area: every call idle and nobody holding any (the open's recovery reclaimed what it
  // could just before).
  for (std::uint32_t a = 0; a < shape().max_clients; ++a) {
    ClientArea& ca = region->client(a);
    if (ca.header.state.load(std::memory_order_acquire) != static_cast<std::uint32_t>(ClientAreaState::kFree)) {
      continue;
    }
    area = a;
    has_area = true;
    ca.header.owner_token.store(seg->self_token(), std::memory_order_relaxed);
    ca.header.owner_index.store(seg->self_index(), std::memory_order_relaxed);
    ca.header.requests.store(0, std::memory_order_relaxed);
    ca.header.completed.store(0, std::memory_order_relaxed);
    ca.wake.waiters.store(0, std::memory_order_relaxed);
    ca.header.state.store(static_cast<std::uint32_t>(ClientAreaState::kOwned), std::memory_order_release);
    calls.assign(shape().max_in_flight, LocalCall{});
    free_calls.clear();
    for (std::uint32_t k = shape().max_in_flight; k-- > 0;) {
      calls[k].generation = state_generation(call(k).state.load(std::memory_order_acquire));
      free_calls.push_back(k);
    }
    return absl::OkStatus();
  }
  return absl::ResourceExhaustedError(cat("service '", seg->info().name, "': all ", shape().max_clients,
                                          " client areas are taken"));
}

absl::Status ServiceClientEndpoint::opened() {
  notify_after(open_recovery);
  return absl::OkStatus();
}

std::shared_ptr<WaitDescriptor> ServiceClientEndpoint::make_descriptor(int* error) noexcept {
  WaitPlan plan;
  plan.wake = &region->client(area).wake;
  plan.armed_on = kArmedOnOwn;
  plan.ready_event = WaitEvent::kData;
  // A dead server may have held our requests: its hang-up runs the recovery (redelivery, or the
  // end of at_most_once requests) at once.
  plan.watched[0] = plan.watched[1] = plan.watched[2] = PeerRole::kServer;
  plan.start_readable = true;
  return WaitDescriptor::create(*seg, plan, error);
}

ServiceClientEndpoint::~ServiceClientEndpoint() {
  for (LocalCall& c : calls) {
    orphan(c.loan);
    orphan(c.pending);
    orphan(c.view);
    c.loan = c.pending = c.view = nullptr;
  }
  if (!has_area || !seg->owned_here() || seg->self() == nullptr) return;
  // Our calls in flight become kClientGone (their servers see cancelled(); what they write is
  // dropped) and the area drains until a recovery reclaims it: what the recovery would do had we
  // died. Lock-free (CAS on the calls' states); the recovery acts only on areas whose owner is
  // gone or that drain, so nothing races with it.
  ServiceRecovery::drain_area(*region, area);
}

// --- calls -------------------------------------------------------------------------------------------

bool ServiceClientEndpoint::acquire(std::uint32_t* index) noexcept {
  if (free_calls.empty() && !reap()) return false;
  *index = free_calls.back();
  free_calls.pop_back();
  LocalCall& c = calls[*index];
  c.listed = false;
  c.consumed = 0;
  c.polls = 0;
  c.waiting_since_ns = 0;
  return true;
}

void ServiceClientEndpoint::release_call(std::uint32_t index) noexcept {
  LocalCall& c = calls[index];
  c.sent = false;
  c.cancelled = false;
  if (!c.in_use() && !c.listed) {
    c.listed = true;
    free_calls.push_back(index);
  }
}

bool ServiceClientEndpoint::reap() noexcept {
  bool freed = false;
  for (std::uint32_t k = 0; k < calls.size(); ++k) {
    LocalCall& c = calls[k];
    if (!c.cancelled || c.view != nullptr) continue;
    CallHeader& h = call(k);
    std::uint64_t s = h.state.load(std::memory_order_acquire);
    if (state_generation(s) != c.generation) continue;  // not ours (cannot happen while we own it)
    const CallPhase phase = state_phase(s);
    // Let go: ended (nobody holds it), or its final response is there (its holder writes no more).
    const bool let_go = phase == CallPhase::kEnded || phase == CallPhase::kIdle ||
                        region->answered(h, c.generation);
    if (!let_go) continue;
    if (phase != CallPhase::kIdle &&
        !h.state.compare_exchange_strong(s, call_state(c.generation, CallPhase::kIdle),
                                         std::memory_order_acq_rel, std::memory_order_relaxed)) {
      continue;  // changed meanwhile: next time
    }
    release_call(k);
    freed = true;
  }
  return freed;
}

ChannelResult ServiceClientEndpoint::send(std::uint32_t index, std::size_t bytes,
                                          ServiceHandle& pending) noexcept {
  LocalCall& c = calls[index];
  std::uint32_t g = c.generation + 1;
  if (g == 0) g = 1;
  CallHeader& h = call(index);
  const std::uint64_t now = monotonic_ns();
  const std::uint64_t deadline = deadline_from(now, request_timeout_ns);
  const std::uint64_t id = (seg->self_token() << 40) | (++next_id & ((std::uint64_t{1} << 40) - 1));
  const std::uint32_t flags = at_most_once ? kRequestAtMostOnce : 0;
  region->request(h).stamp.store(g, std::memory_order_relaxed);
  h.request_id.store(id, std::memory_order_relaxed);
  h.deadline_ns.store(deadline, std::memory_order_relaxed);
  h.request_bytes.store(static_cast<std::uint32_t>(bytes), std::memory_order_relaxed);
  h.request_flags.store(flags, std::memory_order_relaxed);
  h.consumed.store(0, std::memory_order_relaxed);
  h.room_wanted.store(0, std::memory_order_relaxed);
  // SYNC(call_state): publishes the request and the header above to whoever acquires the state
  // (a server taking the call over, the recovery); the ref's commit below publishes them to the
  // server that claims the ref (SYNC(mpmc_full)).
  h.state.store(call_state(g, CallPhase::kInFlight), std::memory_order_release);
  c.generation = g;
  const RequestRef ref{area, index, g, static_cast<std::uint32_t>(bytes), id, deadline, flags, 0};
  for (;;) {
    const MpmcQueue<>::Claim claim = record_claim(me(), [&] { return region->queue().try_claim(); });
    if (claim.result != RingResult::kOk) {
      // Full (refs a reclaimed client left behind, and no server taking them) or corrupt: the
      // request was not sent; the call goes back (its generation is used up, which is harmless).
      h.state.store(call_state(g, CallPhase::kIdle), std::memory_order_release);
      return claim.result == RingResult::kFull ? ChannelResult::kWouldBlock : ChannelResult::kCorrupt;
    }
    std::memcpy(claim.buffer.data(), &ref, sizeof ref);
    const RingResult committed = region->queue().commit(claim, sizeof ref);
    clear_claim(me());
    if (committed == RingResult::kOk) break;
    // kFenced: a recovery skipped our claim (we were taken for dead): claim again.
  }
  notify_receivers(*seg);
  c.sent = true;
  c.cancelled = false;
  ++requests;
  region->client(area).header.requests.store(requests, std::memory_order_relaxed);
  me().sent.store(requests, std::memory_order_relaxed);
  pending.owner_ = this;
  pending.result_ = ChannelResult::kOk;
  pending.index_ = index;
  pending.generation_ = g;
  pending.id_ = id;
  pending.deadline_ns_ = deadline;
  pending.done_ = false;
  pending.expired_ = false;
  pending.redelivered_ = false;
  c.pending = &pending;
  return ChannelResult::kOk;
}

ChannelResult ServiceClientEndpoint::send_waiting(std::uint32_t index, std::size_t bytes, ServiceHandle& pending,
                                                  bool blocking, std::uint64_t deadline_ns) noexcept {
  send_retry_ns = 0;  // this is the attempt it asked for
  ChannelResult r = send(index, bytes, pending);
  if (r != ChannelResult::kWouldBlock) return r;
  const std::uint64_t now = monotonic_ns();
  if (!blocking || now >= deadline_ns) {
    if (descriptor != nullptr) {  // come back soon (kept while the descriptor re-arms)
      send_retry_ns = now + kQueueFullRetryNs;
      descriptor->set_deadline(send_retry_ns);
    }
    return blocking ? ChannelResult::kTimedOut : ChannelResult::kWouldBlock;
  }
  const bool sent = wait_for(nullptr, std::chrono::nanoseconds(deadline_ns - now),
                             [&] {
                               r = send(index, bytes, pending);
                               return r != ChannelResult::kWouldBlock;
                             },
                             [&](std::uint64_t t) { seg->touch(t); });
  return sent ? r : ChannelResult::kTimedOut;
}

ChannelResult ServiceClientEndpoint::look(std::uint32_t index, ResponseRecord** record) noexcept {
  LocalCall& c = calls[index];
  CallHeader& h = call(index);
  ResponseRecord& r = region->record(h, c.consumed);
  // SYNC(response_tag): pairs with the server's release store of the tag; the record's length,
  // flags and payload are visible.
  if (r.tag.load(std::memory_order_acquire) == response_tag(c.generation, c.consumed)) {
    *record = &r;
    return ChannelResult::kOk;
  }
  // SYNC(call_state): an end is stored after every response its holder wrote, so once it is seen
  // the record is looked at once more before the call is taken as ended.
  const std::uint64_t s = h.state.load(std::memory_order_acquire);
  if (state_generation(s) == c.generation && state_phase(s) == CallPhase::kEnded) {
    if (r.tag.load(std::memory_order_acquire) == response_tag(c.generation, c.consumed)) {
      *record = &r;
      return ChannelResult::kOk;
    }
    return ChannelResult::kPeerGone;
  }
  return ChannelResult::kWouldBlock;
}

void ServiceClientEndpoint::consume(std::uint32_t index, bool final) noexcept {
  LocalCall& c = calls[index];
  ++c.consumed;
  c.polls = 0;
  c.waiting_since_ns = 0;
  CallHeader& h = call(index);
  if (final) {
    // The holder writes nothing more after a final response: the call is ours again.
    std::uint64_t s = h.state.load(std::memory_order_relaxed);
    while (state_generation(s) == c.generation && state_phase(s) != CallPhase::kIdle &&
           !h.state.compare_exchange_weak(s, call_state(c.generation, CallPhase::kIdle),
                                          std::memory_order_acq_rel, std::memory_order_relaxed)) {
    }
    if (!c.cancelled) {
      ++completed;
      region->client(area).header.completed.store(completed, std::memory_order_relaxed);
      me().received.store(completed, std::memory_order_relaxed);
    }
    release_call(index);
    return;
  }
  // SYNC(stream_room): seq_cst store, then seq_cst load of room_wanted; the server stores
  // room_wanted (seq_cst) and then loads consumed (seq_cst): one of us sees the other, so a
  // server waiting for room is woken or sees the room itself.
  h.consumed.store(c.consumed, std::memory_order_seq_cst);
  if (h.room_wanted.load(std::memory_order_seq_cst) != 0) notify_receivers(*seg);
}

void ServiceClientEndpoint::end(std::uint32_t index) noexcept {
  LocalCall& c = calls[index];
  CallHeader& h = call(index);
  std::uint64_t s = call_state(c.generation, CallPhase::kEnded);
  h.state.compare_exchange_strong(s, call_state(c.generation, CallPhase::kIdle), std::memory_order_acq_rel,
                                  std::memory_order_relaxed);
  if (!c.cancelled) {
    ++lost;
    me().lost.store(lost, std::memory_order_relaxed);
  }
  release_call(index);
}

void ServiceClientEndpoint::cancel(std::uint32_t index, bool expired) noexcept {
  LocalCall& c = calls[index];
  if (!c.sent || c.cancelled) return;
  CallHeader& h = call(index);
  if (!region->answered(h, c.generation)) {
    (expired ? region->counters().expired : region->counters().cancelled).fetch_add(1, std::memory_order_relaxed);
  }
  for (int round = 0; round < 64; ++round) {
    std::uint64_t s = h.state.load(std::memory_order_acquire);
    if (state_generation(s) != c.generation) break;
    const CallPhase phase = state_phase(s);
    CallPhase target;
    if (phase == CallPhase::kInFlight) {
      target = CallPhase::kCancelled;  // queued or held: its server finishes (or drops) it
    } else if (phase == CallPhase::kOrphaned || phase == CallPhase::kEnded) {
      target = CallPhase::kIdle;  // nobody holds it: ours again at once
    } else {
      break;
    }
    if (!h.state.compare_exchange_strong(s, call_state(c.generation, target), std::memory_order_acq_rel,
                                         std::memory_order_relaxed)) {
      continue;
    }
    if (target == CallPhase::kIdle) {
      release_call(index);
      return;
    }
    break;
  }
  c.cancelled = true;
  // An answered call is let go already: free it now rather than at the next reap.
  if (c.view == nullptr) reap();
}

bool ServiceClientEndpoint::any_ready(std::uint32_t except) noexcept {
  for (std::uint32_t k = 0; k < calls.size(); ++k) {
    const LocalCall& c = calls[k];
    if (k == except || !c.sent || c.cancelled || c.pending == nullptr || c.view != nullptr) continue;
    ResponseRecord* r = nullptr;
    if (look(k, &r) != ChannelResult::kWouldBlock) return true;
  }
  return false;
}

bool ServiceClientEndpoint::acquire_or_arm(std::uint32_t* index) noexcept {
  if (acquire(index)) return true;
  if (descriptor == nullptr) return false;
  // SYNC(wait_fd): armed, then tried again; a drained wake-up that was a response's leaves the
  // descriptor readable (the application takes the response, which frees a call).
  for (int round = 0; round < 4; ++round) {
    if (!prepare_to_block()) return false;
    const bool got = acquire(index);
    const bool ready = any_ready();
    if (ready) descriptor->wake_self();
    if (got || ready) return got;
  }
  descriptor->wake_self();
  return false;
}

bool ServiceClientEndpoint::deadline_passed(std::uint32_t index, std::uint64_t deadline_ns) noexcept {
  LocalCall& c = calls[index];
  if ((++c.polls & 15) != 0) return false;  // the clock every 16 empty polls
  const std::uint64_t now = monotonic_ns();
  if (now >= deadline_ns) return true;
  // A busy-polling caller makes no system call on its own for a while: only a call unanswered
  // for kPollRecoveryNs (a dead server, or a machine too loaded to tell) looks, rarely.
  recover_for(c, now, kPollRecoveryNs);
  if ((c.polls & 1023) == 0) after_empty_poll();
  return false;
}

void ServiceClientEndpoint::wait_idle(std::uint32_t index, std::uint64_t now) noexcept {
  seg->touch(now);
  const bool hinted = seg->control()->misc.recovery_hint.load(std::memory_order_relaxed) != 0;
  recover_for(calls[index], now, hinted ? kStalledRecoveryNs : kIdleRecoveryNs);
}

void ServiceClientEndpoint::recover_for(LocalCall& c, std::uint64_t now, std::uint64_t first_gap_ns) noexcept {
  if (c.waiting_since_ns == 0) {
    c.waiting_since_ns = now;
    c.recovery_gap_ns = first_gap_ns;
    c.next_recovery_ns = now + first_gap_ns;
    return;
  }
  if (first_gap_ns < c.recovery_gap_ns && c.next_recovery_ns == c.waiting_since_ns + c.recovery_gap_ns) {
    // Polled first, waiting now (before any recovery): the wait's shorter first gap.
    c.recovery_gap_ns = first_gap_ns;
    c.next_recovery_ns = c.waiting_since_ns + first_gap_ns;
  }
  if (now < c.next_recovery_ns) return;
  try_recover();
  c.recovery_gap_ns = std::min(std::max(c.recovery_gap_ns, first_gap_ns) * 2, kMaxRecoveryGapNs);
  c.next_recovery_ns = now + c.recovery_gap_ns;
}

// --- handles -----------------------------------------------------------------------------------------

ChannelResult ServiceClientEndpoint::settle_handle(ServiceHandle& handle) noexcept {
  const std::uint32_t index = handle.index_;
  const bool here = seg->owned_here();  // a forked child's copy only lets go
  LocalCall* c = index < calls.size() ? &calls[index] : nullptr;
  switch (handle.kind_) {
    case ServiceHandle::Kind::kRequestLoan:
      if (c != nullptr && c->loan == &handle) {
        c->loan = nullptr;
        if (here) release_call(index);
      }
      break;
    case ServiceHandle::Kind::kPendingResponse:
      if (c != nullptr && c->pending == &handle) {
        c->pending = nullptr;
        if (here) cancel(index, false);
      }
      break;
    case ServiceHandle::Kind::kResponseView:
      if (c != nullptr && c->view == &handle) {
        c->view = nullptr;
        if (here) {
          if (c->cancelled && !handle.final_) {
            // Dropped meanwhile: the record is given back all the same (the server may be
            // waiting for room to end its stream).
            ++c->consumed;
            call(index).consumed.store(c->consumed, std::memory_order_seq_cst);
            if (call(index).room_wanted.load(std::memory_order_seq_cst) != 0) notify_receivers(*seg);
            reap();
          } else {
            consume(index, handle.final_);
          }
        }
      }
      break;
    default:
      break;
  }
  detach(handle);
  handle.result_ = ChannelResult::kClosed;
  return here ? ChannelResult::kOk : ChannelResult::kClosed;
}

void ServiceClientEndpoint::follow_handle(const ServiceHandle& from, ServiceHandle& to) noexcept {
  if (to.index_ >= calls.size()) return;
  LocalCall& c = calls[to.index_];
  if (c.loan == &from) c.loan = &to;
  if (c.pending == &from) c.pending = &to;
  if (c.view == &from) c.view = &to;
}

}  // namespace detail

using detail::ServiceClientEndpoint;
using detail::ServiceHandle;
using detail::endpoint_as;

// --- ServiceClient -----------------------------------------------------------------------------------

absl::StatusOr<ServiceClient> ServiceClient::open(std::string_view name, const ServiceOptions& options) {
  if (absl::Status s = detail::check_service_options(options, name); !s.ok()) return s;
  auto e = std::make_unique<ServiceClientEndpoint>();
  e->wait = options.wait;
  e->request_timeout_ns = static_cast<std::uint64_t>(options.request_timeout.count());
  e->at_most_once = options.at_most_once;
  e->wanted = {options.max_request, options.max_response, options.max_in_flight, options.response_depth,
               options.max_clients, options.max_servers, options.max_active};
  detail::ServiceShape shape;
  const detail::ChannelSpec spec = detail::service_spec(options, &shape);
  detail::OpenPlan plan;
  plan.role = PeerRole::kClient;
  plan.pattern = "service";
  plan.open_timeout = options.open_timeout;
  if (absl::Status s = e->open(name, spec, plan); !s.ok()) return s;
  return ServiceClient(std::unique_ptr<detail::Endpoint>(std::move(e)));
}

PendingResponse ServiceClient::make_request(std::span<const std::byte> request, bool blocking,
                                            std::chrono::nanoseconds timeout) noexcept {
  PendingResponse pending;
  ServiceClientEndpoint* e = endpoint_as<ServiceClientEndpoint>(impl_);
  if (e == nullptr || !e->usable()) return pending;
  if (request.size() > e->shape().max_request) {
    pending.result_ = ChannelResult::kTooLarge;
    return pending;
  }
  const std::uint64_t deadline = detail::deadline_after(timeout);
  std::uint32_t index = 0;
  const bool waits = blocking && timeout.count() > 0;
  bool got = waits ? e->acquire(&index) : e->acquire_or_arm(&index);
  if (!got && waits) {
    got = e->wait_for(&e->region->client(e->area).wake, timeout, [&] { return e->acquire(&index); },
                      [&](std::uint64_t now) { e->seg->touch(now); });
  }
  if (!got) {
    pending.result_ = blocking && timeout.count() > 0 ? ChannelResult::kTimedOut : ChannelResult::kWouldBlock;
    return pending;
  }
  if (!request.empty()) {
    std::memcpy(e->region->request_payload(e->call(index)), request.data(), request.size());
  }
  const ChannelResult r = e->send_waiting(index, request.size(), pending, blocking && timeout.count() > 0, deadline);
  if (r != ChannelResult::kOk) {
    e->release_call(index);
    pending.result_ = r;
  }
  return pending;
}

PendingResponse ServiceClient::try_send_request(std::span<const std::byte> request) noexcept {
  return make_request(request, false, {});
}

PendingResponse ServiceClient::send_request(std::span<const std::byte> request,
                                            std::chrono::nanoseconds timeout) noexcept {
  return make_request(request, true, timeout);
}

RequestLoan ServiceClient::make_loan(bool blocking, std::chrono::nanoseconds timeout) noexcept {
  RequestLoan loan;
  ServiceClientEndpoint* e = endpoint_as<ServiceClientEndpoint>(impl_);
  if (e == nullptr || !e->usable()) return loan;
  std::uint32_t index = 0;
  const bool waits = blocking && timeout.count() > 0;
  bool got = waits ? e->acquire(&index) : e->acquire_or_arm(&index);
  if (!got && waits) {
    got = e->wait_for(&e->region->client(e->area).wake, timeout, [&] { return e->acquire(&index); },
                      [&](std::uint64_t now) { e->seg->touch(now); });
  }
  if (!got) {
    loan.result_ = blocking && timeout.count() > 0 ? ChannelResult::kTimedOut : ChannelResult::kWouldBlock;
    return loan;
  }
  loan.owner_ = e;
  loan.result_ = ChannelResult::kOk;
  loan.index_ = index;
  loan.bytes_ = std::span<std::byte>(e->region->request_payload(e->call(index)), e->shape().max_request);
  e->calls[index].loan = &loan;
  return loan;
}

RequestLoan ServiceClient::try_loan_request() noexcept { return make_loan(false, {}); }
RequestLoan ServiceClient::loan_request(std::chrono::nanoseconds timeout) noexcept {
  return make_loan(true, timeout);
}

PendingResponse ServiceClient::send_request(RequestLoan& loan, std::size_t bytes) noexcept {
  PendingResponse pending;
  ServiceClientEndpoint* e = endpoint_as<ServiceClientEndpoint>(impl_);
  if (e == nullptr || !e->usable() || loan.owner_ != e || loan.index_ >= e->calls.size() ||
      e->calls[loan.index_].loan != &loan) {
    return pending;  // kClosed: not this client's live loan
  }
  if (bytes > loan.bytes_.size()) {
    pending.result_ = ChannelResult::kTooLarge;
    return pending;
  }
  const std::uint32_t index = loan.index_;
  const ChannelResult r = e->send_waiting(index, bytes, pending, false, 0);
  if (r != ChannelResult::kOk) {
    pending.result_ = r;  // kWouldBlock (the queue is full): the loan is kept, send it again
    return pending;
  }
  e->calls[index].loan = nullptr;
  detail::ServiceEndpoint::detach(loan);
  loan.result_ = ChannelResult::kClosed;
  return pending;
}

ChannelResult ServiceClient::call(std::span<const std::byte> request, std::span<std::byte> response,
                                  std::size_t* bytes, std::chrono::nanoseconds timeout) noexcept {
  ServiceClientEndpoint* e = endpoint_as<ServiceClientEndpoint>(impl_);
  if (e == nullptr) return ChannelResult::kClosed;
  const std::uint64_t start = monotonic_ns();
  const std::uint64_t saved = e->request_timeout_ns;
  const auto bound = static_cast<std::uint64_t>(std::max<std::int64_t>(timeout.count(), 1));
  e->request_timeout_ns = std::min(saved, bound);
  PendingResponse pending = send_request(request, timeout);
  e->request_timeout_ns = saved;
  if (!pending.ok()) return pending.result();
  const std::uint64_t spent = monotonic_ns() - start;
  const auto left = std::chrono::nanoseconds(spent >= bound ? 0 : bound - spent);
  const ChannelResult r = pending.receive(response, bytes, left);
  if (r == ChannelResult::kOk && !pending.done()) return ChannelResult::kCorrupt;  // a stream
  return r;
}

void ServiceClient::set_request_timeout(std::chrono::nanoseconds timeout) noexcept {
  ServiceClientEndpoint* e = endpoint_as<ServiceClientEndpoint>(impl_);
  if (e != nullptr && timeout.count() > 0) e->request_timeout_ns = static_cast<std::uint64_t>(timeout.count());
}
std::chrono::nanoseconds ServiceClient::request_timeout() const noexcept {
  const ServiceClientEndpoint* e = endpoint_as<ServiceClientEndpoint>(impl_);
  return std::chrono::nanoseconds(e != nullptr ? static_cast<std::int64_t>(e->request_timeout_ns) : 0);
}
std::uint64_t ServiceClient::max_request() const noexcept {
  return impl_ ? endpoint_as<ServiceClientEndpoint>(impl_)->shape().max_request : 0;
}
std::uint64_t ServiceClient::max_response() const noexcept {
  return impl_ ? endpoint_as<ServiceClientEndpoint>(impl_)->shape().max_response : 0;
}
std::uint32_t ServiceClient::max_in_flight() const noexcept {
  return impl_ ? endpoint_as<ServiceClientEndpoint>(impl_)->shape().max_in_flight : 0;
}
std::uint32_t ServiceClient::in_flight() const noexcept {
  ServiceClientEndpoint* e = endpoint_as<ServiceClientEndpoint>(impl_);
  if (e == nullptr || !e->usable()) return 0;
  e->reap();  // cancelled calls whose servers let go meanwhile
  return static_cast<std::uint32_t>(std::count_if(e->calls.begin(), e->calls.end(),
                                                  [](const auto& c) { return c.in_use(); }));
}
std::uint32_t ServiceClient::servers_approx() const noexcept {
  return impl_ ? endpoint_as<ServiceClientEndpoint>(impl_)->live_servers() : 0;
}

// --- PendingResponse ---------------------------------------------------------------------------------

namespace {

// The pending response's endpoint when it may be used here (not inert, not a forked child's).
ServiceClientEndpoint* client_of(detail::ServiceEndpoint* owner) {
  auto* e = static_cast<ServiceClientEndpoint*>(owner);
  return e != nullptr && e->seg->owned_here() ? e : nullptr;
}

}  // namespace

bool PendingResponse::ready() noexcept {
  ServiceClientEndpoint* e = client_of(owner_);
  if (e == nullptr) return false;
  if (e->calls[index_].view != nullptr) return false;
  detail::ResponseRecord* r = nullptr;
  if (e->look(index_, &r) != ChannelResult::kWouldBlock) return true;
  return monotonic_ns() >= deadline_ns_;
}

ChannelResult PendingResponse::wait(std::chrono::nanoseconds timeout) noexcept {
  ServiceClientEndpoint* e = client_of(owner_);
  if (e == nullptr) return ChannelResult::kClosed;
  if (ready()) return ChannelResult::kOk;
  const std::uint64_t now = monotonic_ns();
  if (timeout.count() <= 0 || now >= deadline_ns_) return ChannelResult::kTimedOut;
  const auto bound = std::min<std::uint64_t>(static_cast<std::uint64_t>(timeout.count()), deadline_ns_ - now);
  const std::uint32_t index = index_;
  const bool done = e->wait_for(&e->region->client(e->area).wake, std::chrono::nanoseconds(bound),
                                [&] { return ready(); }, [&](std::uint64_t t) { e->wait_idle(index, t); });
  return done ? ChannelResult::kOk : ChannelResult::kTimedOut;
}

namespace {

// One attempt at the next response of `p` (index `index` in `e`): `take(record)` takes it.
// Returns what try_receive would say; kWouldBlock also when nothing is there yet.
template <typename Take>
ChannelResult attempt_response(ServiceClientEndpoint* e, std::uint32_t index, std::uint64_t deadline,
                               bool* expired, Take&& take) {
  detail::ResponseRecord* record = nullptr;
  const ChannelResult r = e->look(index, &record);
  if (r == ChannelResult::kOk) return take(*record);
  if (r == ChannelResult::kPeerGone) return r;
  if (e->deadline_passed(index, deadline)) {
    *expired = true;
    return ChannelResult::kTimedOut;
  }
  return ChannelResult::kWouldBlock;
}

}  // namespace

template <typename Take>
static ChannelResult receive_response(PendingResponse& p, ServiceClientEndpoint* e, std::uint32_t index,
                                      std::uint64_t deadline, bool blocking, std::chrono::nanoseconds timeout,
                                      bool* expired, Take&& take) {
  ChannelResult out = attempt_response(e, index, deadline, expired, take);
  if (out != ChannelResult::kWouldBlock) return out;
  if (!blocking || timeout.count() <= 0) {
    if (e->descriptor == nullptr) return ChannelResult::kWouldBlock;
    // With a descriptor: re-armed before kWouldBlock (SYNC(wait_fd)). The descriptor is shared
    // by all calls, so a re-arm that drained a wake-up may have drained another call's: whatever
    // this call answers, a response of another call that is there leaves the descriptor readable
    // (an edge-triggered loop that polled that call earlier in its pass comes back for it).
    for (int round = 0; round < 4; ++round) {
      if (!e->prepare_to_block()) return ChannelResult::kWouldBlock;
      detail::ResponseRecord* record = nullptr;
      const ChannelResult r = e->look(index, &record);
      if (r == ChannelResult::kOk || r == ChannelResult::kPeerGone) {
        const ChannelResult out_now = r == ChannelResult::kOk ? take(*record) : r;
        if (e->any_ready(r == ChannelResult::kOk ? ~std::uint32_t{0} : index)) e->descriptor->wake_self();
        return out_now;
      }
      if (e->any_ready()) break;
    }
    e->descriptor->wake_self();
    return ChannelResult::kWouldBlock;
  }
  const std::uint64_t now = monotonic_ns();
  if (now >= deadline) {
    *expired = true;
    return ChannelResult::kTimedOut;
  }
  const auto bound = std::min<std::uint64_t>(static_cast<std::uint64_t>(timeout.count()), deadline - now);
  e->wait_for(&e->region->client(e->area).wake, std::chrono::nanoseconds(bound),
              [&] {
                detail::ResponseRecord* record = nullptr;
                const ChannelResult r = e->look(index, &record);
                if (r == ChannelResult::kWouldBlock) return false;
                out = r == ChannelResult::kOk ? take(*record) : r;
                return true;
              },
              [&](std::uint64_t t) { e->wait_idle(index, t); });
  if (out == ChannelResult::kWouldBlock) {
    out = ChannelResult::kTimedOut;
    if (monotonic_ns() >= deadline) *expired = true;
  }
  (void)p;
  return out;
}

ChannelResult PendingResponse::try_receive(std::span<std::byte> out, std::size_t* bytes) noexcept {
  return receive(out, bytes, std::chrono::nanoseconds(0));
}

ChannelResult PendingResponse::receive(std::span<std::byte> out, std::size_t* bytes,
                                       std::chrono::nanoseconds timeout) noexcept {
  ServiceClientEndpoint* e = client_of(owner_);
  if (e == nullptr) return ChannelResult::kClosed;
  const std::uint32_t index = index_;
  if (e->calls[index].view != nullptr) return ChannelResult::kWouldBlock;  // a view is out
  bool final = false;
  bool expired = false;
  const ChannelResult r = receive_response(
      *this, e, index, deadline_ns_, timeout.count() > 0, timeout, &expired,
      [&](detail::ResponseRecord& record) {
        const std::uint64_t length = std::min<std::uint64_t>(record.length.load(std::memory_order_relaxed),
                                                             e->shape().max_response);
        if (out.size() < length) {
          if (bytes != nullptr) *bytes = length;  // how long a buffer it takes (as topics say)
          return ChannelResult::kTooLarge;
        }
        const std::uint32_t flags = record.flags.load(std::memory_order_relaxed);
        if (length != 0) std::memcpy(out.data(), e->region->response_payload(record), length);
        if (bytes != nullptr) *bytes = length;
        final = (flags & detail::kResponseFinal) != 0;
        if ((flags & detail::kResponseRedelivered) != 0) redelivered_ = true;
        if (final) e->calls[index].pending = nullptr;  // done: the call is freed by consume()
        e->consume(index, final);
        return ChannelResult::kOk;
      });
  if (r == ChannelResult::kOk && final) {
    done_ = true;
    ServiceClientEndpoint::detach(*this);
  } else {
    e->settle_unanswered(*this, index, r, expired);
  }
  return r;
}

ResponseView PendingResponse::try_receive_view() noexcept { return receive_view(std::chrono::nanoseconds(0)); }

ResponseView PendingResponse::receive_view(std::chrono::nanoseconds timeout) noexcept {
  ResponseView view;
  ServiceClientEndpoint* e = client_of(owner_);
  if (e == nullptr) return view;
  const std::uint32_t index = index_;
  if (e->calls[index].view != nullptr) {
    view.result_ = ChannelResult::kWouldBlock;  // one view at a time
    return view;
  }
  bool expired = false;
  const ChannelResult r = receive_response(
      *this, e, index, deadline_ns_, timeout.count() > 0, timeout, &expired,
      [&](detail::ResponseRecord& record) {
        const std::uint64_t length = std::min<std::uint64_t>(record.length.load(std::memory_order_relaxed),
                                                             e->shape().max_response);
        const std::uint32_t flags = record.flags.load(std::memory_order_relaxed);
        view.owner_ = e;
        view.result_ = ChannelResult::kOk;
        view.index_ = index;
        view.generation_ = generation_;
        view.final_ = (flags & detail::kResponseFinal) != 0;
        view.redelivered_ = (flags & detail::kResponseRedelivered) != 0;
        view.bytes_ = std::span<std::byte>(e->region->response_payload(record), length);
        e->calls[index].view = &view;
        if (view.redelivered_) redelivered_ = true;
        return ChannelResult::kOk;
      });
  if (r == ChannelResult::kOk) {
    if (view.final_) {  // the call is freed when the view is released
      done_ = true;
      e->calls[index].pending = nullptr;
      ServiceClientEndpoint::detach(*this);
    }
    return view;
  }
  view.result_ = r;
  e->settle_unanswered(*this, index, r, expired);
  return view;
}

}  // namespace shmring
