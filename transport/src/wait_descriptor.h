// Private: an endpoint's pollable descriptor (wait_fd()).
//
// The descriptor the application sees is an epoll instance (itself pollable with poll, select,
// epoll, asyncio, GLib, Qt or asio) holding:
//   * this endpoint's wait socket (wait_files.h): a notifier that fires the endpoint sends it a
//     byte, so it turns readable;
//   * the read ends of the lifelines of the peers this endpoint waits on or for (a receiver:
//     the senders, and a queue consumer also the other consumers; a sender: the receivers): a
//     closed or dead peer makes it report a hang-up.
// It is readable when the endpoint may have work; nothing else runs to make it so (no thread, no
// daemon, no timer).
//
// SYNC(wait_fd): arming, firing, and why no wake-up is lost.
//   Endpoint (prepare_to_block, on the way to kWouldBlock):
//     look at the epoll set without waiting; if nothing is pending and the slot is still armed,
//     block (return kWouldBlock). Otherwise:
//     wake.waiters.fetch_add(kArmedUnit, seq_cst); slot.wait_armed CAS 0 -> armed_on (if it was
//     still armed, the count is taken back); wake.waiters.fetch_add(0, seq_cst) (the pairing
//     RMW); drain the socket; attempt the call again (acquire loads of the ring's positions);
//     repeat. After a few rounds without success it sends itself a datagram and answers
//     kWouldBlock: the descriptor is readable, so the application comes back.
//   Notifier (notify in wait.h): publish (release); waiters.fetch_add(0, seq_cst); if the high
//     half is non-zero: for each slot armed on this block, CAS armed_on -> 0 (acq_rel), and the
//     winner takes the count down and sends one datagram.
//   Either the notifier's RMW on `waiters` follows the endpoint's pairing RMW in its modification
//   order: then it reads that RMW's value (or a later one of its release sequence), so it sees the
//   slot armed and fires it, or someone else disarmed it first and fired it. Or it precedes it:
//   then the endpoint's pairing RMW reads the notifier's and the publish happens-before the
//   endpoint's next attempt, which finds the message. (Same argument as SYNC(wake); a plain load would not
//   do, see wait.h.)
//   The endpoint blocks only after it saw the slot armed with nothing pending; a notifier that
//   disarms it afterwards sends a datagram afterwards, which makes the descriptor readable: the
//   wake-up is late at worst, never lost. A datagram that arrives while the slot is armed again
//   (its sender disarmed before the re-arm) is drained by the next prepare_to_block, which also
//   retries the attempt: the descriptor never stays readable with nothing to do.
//   Cost: one datagram per armed endpoint per arming, however many messages follow; a sender
//   with no armed endpoint pays nothing beyond the RMW it already makes.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "channel_segment.h"
#include "control_block.h"

namespace shmring::detail {

// What a descriptor arms on and watches: derived from the endpoint's role (WaitDescriptor::create
// with a role), or given by a pattern whose endpoints wait on a wake block of their own (a service
// client waits on its area's block: kArmedOnOwn).
struct WaitPlan {
  WakeBlock* wake = nullptr;        // where notifiers look for armed descriptors
  std::uint32_t armed_on = 0;       // kArmedOnData, kArmedOnSpace or kArmedOnOwn
  WaitEvent ready_event = WaitEvent::kData;
  PeerRole watched[3] = {PeerRole::kNone, PeerRole::kNone, PeerRole::kNone};  // lifelines watched
  bool start_readable = true;       // receivers start readable (messages may be waiting)
};

class WaitDescriptor {
 public:
  // Makes the descriptor of the endpoint registered in `seg` with `role`. A receiver's starts
  // readable (one datagram to itself), so a first wait returns at once and the application's
  // first drain arms it. Null with *error an errno value on failure: ENOTSUP without a peer slot
  // (a read-only subscriber), else what the system call said (EMFILE, ...).
  static std::shared_ptr<WaitDescriptor> create(ChannelSegment& seg, PeerRole role,
                                                int* error) noexcept;
  // The same for an explicit plan.
  static std::shared_ptr<WaitDescriptor> create(ChannelSegment& seg, const WaitPlan& plan,
                                                int* error) noexcept;
  ~WaitDescriptor();
  WaitDescriptor(const WaitDescriptor&) = delete;
  WaitDescriptor& operator=(const WaitDescriptor&) = delete;

  int fd() const noexcept { return epoll_fd_; }
  bool closed() const noexcept { return closed_; }

  // The try_ calls' step before they answer kWouldBlock (see SYNC(wait_fd)). True: the descriptor
  // was (re-)armed or had something pending; the caller must attempt once more. False: it is armed
  // with nothing pending, so the caller may answer kWouldBlock and the application may block.
  bool prepare_to_block() noexcept;

  // What the descriptor has to report (WaitEvent bits): kData / kRoom when its socket holds a
  // wake-up (left there: the try_ calls drain it), kPeerGone when a watched peer hung up (that
  // peer is no longer watched), kEvicted / kRemoved left by other endpoints (kRemoved stays set).
  // Also what prepare_to_block() noticed since the last call.
  WaitEvent take_events() noexcept;
  // Events noticed by prepare_to_block() and not taken yet (no system call).
  bool has_pending() const noexcept { return pending_ != WaitEvent::kNone; }
  // Whether a watched peer hung up since the last call (the endpoint then runs its dead-peer
  // recovery at once instead of at its polling rate).
  bool take_peer_gone_news() noexcept {
    const bool news = peer_gone_news_;
    peer_gone_news_ = false;
    return news;
  }

  // Makes the descriptor readable at `deadline_ns` (CLOCK_MONOTONIC; 0: never) through a timer in
  // its epoll set: for work the endpoint has to do at a time of its own (a lossless publisher's
  // evict_after), not at a peer's action. The same timer also brings the endpoint back to look at
  // watched peers again (see Suspect). A system call only when the timer's time changes.
  void set_deadline(std::uint64_t deadline_ns) noexcept;

  // Makes the descriptor readable (a datagram to itself): what a try_ call does when it stops
  // retrying while a notifier may have fired it, and when a peer's recovery could not run now.
  void wake_self() noexcept;

  // Disarms the slot (when this process still owns it), closes the socket and the watched
  // lifelines and unlinks the socket; the (now empty) epoll instance stays until destruction.
  // The endpoint calls it before it unregisters; later calls are no-ops. In a forked child (whose
  // copy shares the epoll instance with the parent's) it only closes the child's descriptors: it
  // never takes anything out of the parent's set.
  void close() noexcept;

 private:
  WaitDescriptor() = default;
  // The slot is still this endpoint's (this process, kActive, same token).
  bool slot_is_mine() const noexcept;
  void drop_watch(std::uint64_t token) noexcept;
  // Looks at the epoll set without waiting: lifeline hang-ups are handled, and the return value
  // says whether the socket holds datagrams. *any: whether anything at all was pending.
  bool poll_set(bool* any) noexcept;
  void drain_socket() noexcept;
  // Adds the lifelines of peers with a watched role that joined since the last scan.
  void refresh_watches() noexcept;
  void collect_slot_events() noexcept;
  // Takes membership notices (datagrams kMembershipNotice, sent by an endpoint that joined) off
  // the front of the socket's queue; true if any was there.
  bool take_membership_notices() noexcept;
  // Looks again at the watched peers in suspects_ that are due (see Suspect).
  void check_suspects(std::uint64_t now_ns) noexcept;
  // Sets the timer to the earlier of the endpoint's deadline and the next suspect's.
  void arm_timer() noexcept;

  struct Watch {
    std::uint64_t token = 0;
    std::uint32_t index = 0;  // its peer slot
    int fd = -1;
  };
  // A watched peer to look at again. A lifeline hangs up as its process dies, but the kernel
  // closes a dying process's descriptors one at a time, so its liveness lock may still be held
  // when the hang-up is seen: the recovery that hang-up runs then finds the peer alive and frees
  // nothing, and nothing else would ever wake this descriptor. Such a peer is looked at again
  // (1 ms, then doubling up to 64 ms, through the descriptor's timer) until its slot is freed or
  // changes hands, each look that finds it dead running the recovery again.
  struct Suspect {
    std::uint64_t token = 0;
    std::uint32_t index = 0;
    std::uint64_t due_ns = 0;
    std::uint64_t backoff_ns = 0;
  };

  ChannelSegment* seg_ = nullptr;
  PeerSlot* slot_ = nullptr;
  WakeBlock* wake_ = nullptr;
  std::uint32_t armed_on_ = 0;
  WaitEvent ready_event_ = WaitEvent::kData;  // kData for receivers, kRoom for senders
  PeerRole watched_[3] = {PeerRole::kNone, PeerRole::kNone, PeerRole::kNone};
  int epoll_fd_ = -1;
  int socket_fd_ = -1;
  int timer_fd_ = -1;                       // made when first needed
  std::uint64_t endpoint_deadline_ns_ = 0;  // set_deadline's (0: none)
  std::uint64_t timer_ns_ = 0;              // what the timer is set to (0: disarmed)
  std::vector<Watch> watches_;
  std::vector<Suspect> suspects_;
  std::uint64_t token_ = 0;
  RandomId socket_name_;  // its wait socket's random name (also in the peer slot)
  std::uint64_t membership_seen_ = 0;  // ChannelMisc::next_token at the last scan
  int rescans_left_ = 0;  // a watched peer had no lifeline yet: scans left before it is given up
  WaitEvent pending_ = WaitEvent::kNone;
  WaitEvent sticky_ = WaitEvent::kNone;  // kRemoved once seen
  bool peer_gone_news_ = false;
  bool closed_ = false;
};

// The byte of a datagram that says "an endpoint joined: watch it" (a wake-up is 1). Sent by a new
// endpoint to the descriptors of peers that watch its role but are not armed (armed ones are fired
// anyway), so a sender that never blocks still learns of, and watches, receivers that join later.
inline constexpr char kMembershipNotice = 2;

// Whether an endpoint with role `watcher` watches peers with role `peer` through its descriptor
// (their lifelines): receivers watch senders (a queue consumer also the other consumers), senders
// watch receivers. What WaitDescriptor::create sets up, and whom announce_membership tells.
bool watches(PeerRole watcher, PeerRole peer) noexcept;

// Most peers one descriptor watches (each costs a file descriptor); peers beyond it are not
// watched (their death is then found by the polling recovery only).
inline constexpr std::size_t kMaxWatchedPeers = 256;

}  // namespace shmring::detail
