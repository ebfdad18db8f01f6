// What every endpoint class and every loan/view handle shares, written once:
//  * detail::Lease, the base of TopicLoan, QueueLoan, FrameLoan, TopicView, QueueView and
//    FrameView: move-only, settled by its destructor (a loan is abandoned, a view released),
//    inert after its endpoint closes (result kClosed, no bytes), and harmless in a forked child
//    (the child's copy never touches the parent's claim, pin or cursor);
//  * ChannelEndpoint, the public base of the endpoint classes: move-only, closed by its
//    destructor, is_open(), close(), stats(), wait_fd() and take_wait_events(); what a WaitSet
//    takes.
// Both hold a pointer to the endpoint's channel state (transport/src/endpoint.h), never to the
// endpoint object, so moving an endpoint keeps its loan or view usable. Applications use the
// pattern classes (topic.h, queue.h, frame.h); detail::Lease is not meant to be named directly, and
// ChannelEndpoint only where any endpoint will do (WaitSet::add).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <memory>
#include <span>

#include "shmring/transport/channel.h"


namespace shmring::detail {

struct Endpoint;

class Lease {
 public:
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;

  ChannelResult result() const noexcept { return result_; }
  bool ok() const noexcept { return result_ == ChannelResult::kOk; }

 protected:
  Lease() = default;
  // Takes the other lease over (the endpoint follows it); `other` becomes empty (kClosed).
  Lease(Lease&& other) noexcept;
  // Settles this lease first (abandon / release), then takes `other` over.
  Lease& operator=(Lease&& other) noexcept;
  ~Lease();

  // Settles the lease now: a loan is abandoned, a view released (the pattern says what that
  // means). Returns the pattern's answer; kOk for an empty or already settled lease, kClosed for
  // one its endpoint closed while it was out (or a forked child's copy). Never waits.
  ChannelResult settle() noexcept;

  std::span<std::byte> bytes_;     // the loan's buffer or the view's data (read-only for views)
  std::uint64_t number_ = 0;       // QueueView: the ticket; FrameView: the frame number
  bool redelivered_ = false;       // QueueView: adopted from a dead consumer

 private:
  friend struct Endpoint;
  Endpoint* owner_ = nullptr;
  ChannelResult result_ = ChannelResult::kClosed;
  bool orphaned_ = false;  // its endpoint closed while it was out
};

}  // namespace shmring::detail

namespace shmring {

// The base of every endpoint class (TopicPublisher, TopicSubscriber, QueueProducer, QueueConsumer,
// FramePublisher, FrameSubscriber): what they share, and what a WaitSet takes.
class ChannelEndpoint {
 public:
  ChannelEndpoint(const ChannelEndpoint&) = delete;
  ChannelEndpoint& operator=(const ChannelEndpoint&) = delete;

  // False when closed or moved-from, and in a forked child: a child's copy of an endpoint is inert
  // (every data-path call returns kClosed, wait_fd() fails with EBADF, its loans and views are
  // inert) and closing it only lets the child's copy go. Open a new endpoint in the child.
  bool is_open() const noexcept;
  // This endpoint's counters, read from its peer slot; empty when closed or without a peer slot
  // (a read-only topic subscriber).
  PeerStats stats() const noexcept;
  // Names this incarnation of the channel: a hash of its segment and creation time, the same in
  // every process, different once the channel is removed and created again (0 when closed).
  // A bridge (shmring::bridge) sends it so the far side can tell a new channel from a gap.
  std::uint64_t channel_incarnation() const noexcept;
  // For bridges (shmring::bridge): this sending endpoint feeds the channel from another host,
  // `from` (the export's address; its first 35 bytes are kept), over a link that is `up` or not.
  // read_stats reports it in PeerStats::upstream_from / upstream_up, and `shmring stat` shows it.
  // The address is recorded by the first call; later calls change the link state only. Never
  // waits; no-op when closed.
  void set_upstream_link(std::string_view from, bool up) noexcept;
  // Settles an outstanding loan or view (a loan is given up; a view is handed on as the pattern
  // says and becomes inert), unregisters and detaches. Also the destructor. Waits up to 2 s for
  // the segment lock (then leaves its peer slot to the dead-peer recovery).
  void close() noexcept;

  // --- event-driven waiting (docs/events.md) ---
  // A descriptor that becomes readable when this endpoint may have work: a receiver, messages (or
  // a newer frame); a sender that was held back (lossless topic, queue, frames), room; any of
  // them, a peer it waits on or for closed or died, eviction, removal. Works with poll, select,
  // epoll (level- or edge-triggered), asyncio, GLib, Qt and asio. Made on the first call (later
  // calls return the same one), closed with the endpoint; it belongs to this endpoint's thread.
  // The protocol (no wake-up is lost when it is followed):
  //   1. wait until the descriptor is readable;
  //   2. call this endpoint's try_ calls (try_receive, try_send, ...) until one answers
  //      kWouldBlock: that answer re-arms the descriptor (it is readable when a first wait starts,
  //      so step 2 also runs first);
  //   3. optionally take_wait_events() to learn why; go to 1.
  // A sender with no armed descriptor makes no system call for it; an armed one costs the sender
  // one datagram per arming, not per message. A try_ call that answers kWouldBlock makes 1 to 3
  // system calls while a descriptor exists (it looks at the descriptor).
  // -1 with errno: EBADF (closed, or a forked child's copy), ENOTSUP (a read_only subscriber:
  // it is not registered, so nobody can wake it), or what the system said (EMFILE, ...).
  int wait_fd() const noexcept;
  // Why the descriptor is (or was) readable, as WaitEvent bits: kData / kRoom (may have work),
  // kPeerGone, kEvicted, kRemoved (stays set). Never waits; kNone without a descriptor.
  WaitEvent take_wait_events() noexcept;

 protected:
  friend class WaitSet;

  ChannelEndpoint() noexcept;
  explicit ChannelEndpoint(std::unique_ptr<detail::Endpoint> impl) noexcept;
  ChannelEndpoint(ChannelEndpoint&& other) noexcept;
  ChannelEndpoint& operator=(ChannelEndpoint&& other) noexcept;  // closes this one first
  ~ChannelEndpoint();

  std::unique_ptr<detail::Endpoint> impl_;
};

}  // namespace shmring
