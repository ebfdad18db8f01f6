// Private: the waiting loop shared by every blocking call, and the sender's wake-up.
//
// Pairing (no lost wake-up). Waiter:  seen = word.load(acquire); waiters.fetch_add(1, seq_cst);
// re-check the condition; futex_wait(word, seen).  Sender: publish (release); then
// waiters.fetch_add(0, seq_cst) -- an RMW, which always reads the latest value of `waiters` -- and
// only when it is non-zero: word.fetch_add(1, release) and futex_wake(word, all).
// Either the sender's RMW comes after the waiter's increment in the modification order of
// `waiters` (the sender sees a waiter and bumps `word` after the waiter read `seen`, so futex_wait
// returns at once or is woken), or it comes before it: then the waiter's RMW reads the value the
// sender's RMW wrote (or a later one in its release sequence), so the publish happens-before the
// waiter's re-check, which sees it. A plain load in the sender would not do: a release store
// followed by a load of another location may be reordered (x86 store buffer).
// A sender with no parked receiver makes no system call (one uncontended RMW).
//
// The same RMW tells the sender about armed descriptors (wait_fd): `waiters` counts parked
// threads in its low half and armed descriptors in its high half (control_block.h). With armed
// descriptors, fire_armed() scans the peer slots for the ones armed on this block and fires each
// once: SYNC(wait_fd) in wait_descriptor.h has the protocol and its pairing.
// Every futex_wait is bounded (kParkSliceNs) and runs in a loop that re-checks the condition and
// the deadline (CLOCK_MONOTONIC), so spurious wake-ups and EINTR only cost a lap.
#pragma once

#include <sched.h>
#include <time.h>

#include <chrono>
#include <climits>
#include <cstdint>

#include "shmring/core/clock.h"
#include "shmring/core/futex.h"
#include "shmring/transport/channel.h"
#include "channel_segment.h"
#include "control_block.h"

namespace shmring::detail {

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

// Longest single futex sleep: waiters wake at least this often to run their slow-path checks
// (dead peers, stalled slots) even when nobody wakes them.
inline constexpr std::int64_t kParkSliceNs = 10'000'000;

// Fires every descriptor armed on `armed_on` (kArmedOnData: data_wake, kArmedOnSpace: space_wake)
// of `seg`'s channel: each one's slot is disarmed with a CAS (the winner alone takes the armed
// count down) and then sent one datagram. Out of line (wake_signal.cc): the slow path.
void fire_armed(ChannelSegment& seg, std::uint32_t armed_on) noexcept;
// Leaves `events` in one peer slot (wait_events) and fires its descriptor if it is armed (on
// either block): how an evicted subscriber or a removed channel's endpoints hear about it.
void signal_peer(ChannelSegment& seg, PeerSlot& slot, WaitEvent events) noexcept;
void signal_peer(std::uint64_t file_tag, ControlBlock* control, PeerSlot& slot,
                 WaitEvent events) noexcept;
// A new endpoint with `role` (registered, its lifeline made) tells the descriptors that watch its
// role but are not armed (armed ones are fired by notify_*) to look at the peers again, so a sender
// that never blocks still watches receivers that joined after its descriptor was made. One
// datagram (kMembershipNotice) per such descriptor; the slow path of open.
void announce_membership(ChannelSegment& seg, PeerRole role) noexcept;

inline void notify(ChannelSegment& seg, WakeBlock& wake, std::uint32_t armed_on) noexcept {
  // SYNC(wake): see the comment at the top of this file. SYNC(wait_fd): the same RMW.
  const std::uint32_t waiters = wake.waiters.fetch_add(0, std::memory_order_seq_cst);
  if (waiters == 0) return;
  if ((waiters & kParkedMask) != 0) {
    wake.word.fetch_add(1, std::memory_order_release);
    futex_wake(&wake.word, INT_MAX);
  }
  if ((waiters >> kArmedShift) != 0) fire_armed(seg, armed_on);
}
// After a send: receivers parked on data_wake or armed for data.
inline void notify_receivers(ChannelSegment& seg) noexcept {
  notify(seg, seg.control()->data_wake, kArmedOnData);
}
// After room was made: senders parked on space_wake or armed for room.
inline void notify_senders(ChannelSegment& seg) noexcept {
  notify(seg, seg.control()->space_wake, kArmedOnSpace);
}

// Calls attempt() until it returns true or the deadline passes; between attempts waits as `options`
// says and calls idle(now) (slow-path hook). Returns attempt()'s last answer.
// Longest sleep of a waiter that cannot register on the wake word (a read-only subscriber): it
// polls at this period instead of being woken.
inline constexpr std::int64_t kReadOnlyPollNs = 200'000;

// `wake` may be null (read-only endpoint): parking then means sleeping kReadOnlyPollNs.
template <typename Attempt, typename Idle>
bool wait_until(WakeBlock* wake_block, const WaitOptions& options, std::uint64_t deadline_ns,
                Attempt&& attempt, Idle&& idle, std::int64_t park_slice_ns = kParkSliceNs) {
  std::uint32_t spins = 0;
  for (;;) {
    if (attempt()) return true;
    const std::uint64_t now = monotonic_ns();
    idle(now);
    if (now >= deadline_ns) return false;
    WaitStrategy strategy = options.strategy;
    if (strategy == WaitStrategy::kHybrid) {
      if (spins < options.spin_iterations) {
        ++spins;
        cpu_relax();
        continue;
      }
      strategy = WaitStrategy::kPark;
    }
    switch (strategy) {
      case WaitStrategy::kBusySpin:
        cpu_relax();
        break;
      case WaitStrategy::kYield:
        sched_yield();
        break;
      default: {
        if (wake_block == nullptr) {
          std::int64_t remaining = static_cast<std::int64_t>(deadline_ns - now);
          if (remaining > kReadOnlyPollNs) remaining = kReadOnlyPollNs;
          const timespec ts{0, static_cast<long>(remaining)};
          nanosleep(&ts, nullptr);
          break;
        }
        WakeBlock& wake = *wake_block;
        // SYNC(wake): waiter side.
        const std::uint32_t seen = wake.word.load(std::memory_order_acquire);
        wake.waiters.fetch_add(1, std::memory_order_seq_cst);
        if (attempt()) {
          wake.waiters.fetch_sub(1, std::memory_order_relaxed);
          return true;
        }
        std::int64_t remaining = static_cast<std::int64_t>(deadline_ns - now);
        if (remaining > park_slice_ns) remaining = park_slice_ns;
        futex_wait(&wake.word, seen, remaining);  // any outcome: loop and re-check
        wake.waiters.fetch_sub(1, std::memory_order_relaxed);
        break;
      }
    }
  }
}

inline std::uint64_t deadline_after(std::chrono::nanoseconds timeout) noexcept {
  const std::uint64_t now = monotonic_ns();
  if (timeout.count() <= 0) return now;
  const auto t = static_cast<std::uint64_t>(timeout.count());
  return now + t < now ? UINT64_MAX : now + t;
}

}  // namespace shmring::detail
