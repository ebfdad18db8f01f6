// What every endpoint class and every loan/view handle shares, written once:
//  * detail::Lease, the base of TopicLoan, QueueLoan, FrameLoan, TopicView, QueueView and
//    FrameView: move-only, settled by its destructor (a loan is abandoned, a view released),
//    inert after its endpoint closes (result kClosed, no bytes), and harmless in a forked child
//    (the child's copy never touches the parent's claim, pin or cursor);
//  * detail::EndpointHandle, the base of the six endpoint classes: move-only, closed by its
//    destructor, is_open() and close().
// Both hold a pointer to the endpoint's channel state (transport/src/endpoint.h), never to the
// endpoint object, so moving an endpoint keeps its loan or view usable. Applications use the
// pattern classes (topic.h, queue.h, frame.h); nothing here is meant to be named directly.
#pragma once

#include <cstddef>
#include <cstdint>
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

class EndpointHandle {
 public:
  EndpointHandle(const EndpointHandle&) = delete;
  EndpointHandle& operator=(const EndpointHandle&) = delete;

  bool is_open() const noexcept { return impl_ != nullptr; }
  // This endpoint's counters, read from its peer slot; empty when closed or without a peer slot
  // (a read-only topic subscriber).
  PeerStats stats() const noexcept;
  // Settles an outstanding loan or view (a loan is given up; a view is handed on as the pattern
  // says and becomes inert), unregisters and detaches. Also the destructor. Waits up to 2 s for
  // the segment lock (then leaves its peer slot to the dead-peer recovery).
  void close() noexcept;

 protected:
  EndpointHandle() noexcept;
  explicit EndpointHandle(std::unique_ptr<Endpoint> impl) noexcept;
  EndpointHandle(EndpointHandle&& other) noexcept;
  EndpointHandle& operator=(EndpointHandle&& other) noexcept;  // closes this one first
  ~EndpointHandle();

  std::unique_ptr<Endpoint> impl_;
};

}  // namespace shmring::detail
