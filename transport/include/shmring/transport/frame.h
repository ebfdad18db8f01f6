// Frame channels: large messages (up to 1 GiB; meant for 1-32 MiB video/audio frames) written in
// place and read in place, with "latest frame" semantics.
//
// The ring is a FramePool (shmring/queue/frame_pool.h): `capacity` (>= 3) frame buffers of
// max_message bytes, each page aligned, each with a sequence word (odd while the publisher writes
// it). The publisher loans a buffer that
// is neither the latest frame nor pinned by a subscriber, fills it, and publishes it: it becomes the
// latest frame. A subscriber always gets the newest complete frame (a subscriber that falls behind
// skips to it; skipped frames are counted in lost()), pinned in place until it releases the view:
// the publisher never writes a pinned buffer, so a view is never torn.
//
// Pinning protocol (Dekker, all seq_cst): subscriber stores its pin (buffer + 1) in its peer slot,
// then re-reads the buffer's sequence word; publisher makes the sequence odd, then scans the pins.
// Either the subscriber sees the odd/changed sequence (and retries) or the publisher sees the pin
// (and picks another buffer). A subscriber that dies holding a pin is found dead by the publisher
// (slow path, when no buffer is free) and its pin dropped. With capacity buffers and k subscribers
// each pinning one old frame, the publisher needs capacity > k + 1 to never wait.
//
// Threads, blocking, errors: the conventions in channel.h. Memory ordering: a view (or copy) of
// frame n happens-after the publish() of frame n: every byte written into the loan's buffer before
// publish() is visible (release store of the buffer's even sequence and of the frame number,
// acquire loads by the subscriber). The publisher never writes a pinned buffer (see above).
// Dead subscribers' pins are reclaimed only when an endpoint opens and by loan()/send() with a
// timeout > 0, from their wait (every 2 ms, try-locking the segment lock): try_loan() never does.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "shmring/transport/channel.h"
#include "shmring/transport/lease.h"

namespace shmring {

struct FrameOptions {
  std::uint64_t capacity = 0;     // frame buffers (creator default 4, at least 3, at most 64)
  std::uint64_t max_message = 0;  // bytes per frame (creator default 4 MiB)
  std::uint32_t max_peers = 0;    // creator default 16
  mode_t permissions = 0600;  // mode bits of a channel this call creates (and the loosest it opens)
  // Trust (docs/security.md): a channel this endpoint opens (rather than creates) must be owned by
  // the caller's effective uid or one of these uids, and its mode must not grant more than
  // `permissions`; anything else is refused with kPermissionDenied (the message names the owner
  // and the mode), so a look-alike another local user made first is never used.
  std::vector<uid_t> trusted_owners;
  gid_t group = static_cast<gid_t>(-1);  // group of a channel this call creates (-1: the creator's)
  bool create = true;
  WaitOptions wait;
  std::chrono::milliseconds open_timeout{2000};
};

class FramePublisher;
class FrameSubscriber;

// A frame buffer lent to the publisher: fill buffer(), then FramePublisher::publish().
// Destroying an unpublished loan abandons it. Publisher's thread only. The loan belongs to the
// publisher's channel endpoint, not to the FramePublisher object: moving the publisher keeps the
// loan usable; closing it makes the loan inert (kClosed, empty buffer).
class FrameLoan : public detail::Lease {
 public:
  FrameLoan() = default;
  // result(), ok(): from detail::Lease (kOk, or why there is no loan).
  std::span<std::byte> buffer() const noexcept { return bytes_; }  // max_message bytes
};

// A frame lent to a subscriber, in place, until release() (or destruction), which unpins it and
// wakes a waiting publisher. Subscriber's thread only. Like a loan, it belongs to the subscriber's
// endpoint: moving the subscriber keeps it pinned; closing the subscriber unpins it and makes it
// inert (its bytes must not be read afterwards).
class FrameView : public detail::Lease {
 public:
  FrameView() = default;
  // result(), ok(): from detail::Lease (kOk, or why there is no view).
  std::span<const std::byte> data() const noexcept { return bytes_; }
  // The frame's sequence number: 1, 2, ... per channel incarnation (a publisher that takes over
  // continues the numbering), like QueueView::sequence() and TopicView::sequence().
  std::uint64_t sequence() const noexcept { return number_; }
  // Unpins the frame (the publisher may reuse its buffer) and wakes a publisher waiting for one.
  // kOk (also for an empty or already released view); kClosed if the subscriber was closed
  // meanwhile (the frame was unpinned then). Never waits.
  ChannelResult release() noexcept { return settle(); }
};

class FramePublisher : public ChannelEndpoint {
 public:
  // Opens (or creates) the frame channel as its one publisher. kFailedPrecondition if a live
  // publisher exists (or kind/limits differ); otherwise the errors of QueueProducer::open.
  static absl::StatusOr<FramePublisher> open(std::string_view name, const FrameOptions& options = {});
  FramePublisher() = default;

  // A free buffer (kOk), or kWouldBlock / kTimedOut when every buffer is latest or pinned, or
  // kClosed. try_loan never waits; loan parks on space_wake (woken when a view is released).
  // One loan at a time. Subscribers never see the loan's buffer before publish().
  FrameLoan try_loan() noexcept;
  FrameLoan loan(std::chrono::nanoseconds timeout) noexcept;
  // Makes the loan's first `bytes` the latest frame (release; see above) and wakes parked
  // subscribers. kOk, kTooLarge (loan kept), or kClosed (not this publisher's live loan).
  // Never waits.
  ChannelResult publish(FrameLoan& loan, std::size_t bytes) noexcept;
  // Gives a loan up (the buffer is free for a later loan). No-op for another publisher's loan.
  void abandon(FrameLoan& loan) noexcept;
  // Copying: loan + copy + publish. kOk, kTooLarge (`frame` > max_message), kWouldBlock,
  // kTimedOut, kClosed; kWouldBlock also while a loan is out. try_send never waits.
  ChannelResult send(std::span<const std::byte> frame, std::chrono::nanoseconds timeout) noexcept;
  ChannelResult try_send(std::span<const std::byte> frame) noexcept;

  std::uint64_t max_message() const noexcept;
  std::uint64_t frames_published() const noexcept;
  // is_open(), close() (also the destructor): from ChannelEndpoint; an outstanding loan is
  // given up.

 private:
  using ChannelEndpoint::ChannelEndpoint;
};

class FrameSubscriber : public ChannelEndpoint {
 public:
  // Opens (or creates) the frame channel as a subscriber; errors as FramePublisher::open (no
  // publisher check).
  static absl::StatusOr<FrameSubscriber> open(std::string_view name, const FrameOptions& options = {});
  FrameSubscriber() = default;

  // The newest frame newer than the last one this subscriber took, pinned in place. kOk,
  // kWouldBlock / kTimedOut (no newer frame), kCorrupt, kClosed. One view at a time: while a view
  // is out, every receive call returns kWouldBlock (release it first). The try_ call never
  // waits; receive_view parks on data_wake. Neither takes a lock.
  FrameView try_receive_view() noexcept;
  FrameView receive_view(std::chrono::nanoseconds timeout) noexcept;
  // Copying: `out` must hold max_message() bytes (else kTooLarge); the frame stays pinned during
  // the copy. Results as receive_view; a timeout <= 0 does not wait (as try_receive).
  ChannelResult receive(std::span<std::byte> out, std::size_t* bytes,
                        std::chrono::nanoseconds timeout) noexcept;
  ChannelResult try_receive(std::span<std::byte> out, std::size_t* bytes) noexcept;
  // Hands up to `max` frames to `handler`, in place (each pinned during its call, then released);
  // does not wait. With "newest frame" semantics that is the newest frame, plus any published
  // while the handler ran. Returns how many; `handler` must not call this subscriber.
  std::size_t poll(const std::function<void(std::span<const std::byte>)>& handler,
                   std::size_t max) noexcept;

  std::uint64_t lost() const noexcept;  // frames published that this subscriber skipped
  std::uint64_t received() const noexcept;
  std::uint64_t max_message() const noexcept;
  // is_open(), close() (also the destructor): from ChannelEndpoint. A view still out is
  // unpinned and becomes inert (no bytes; release() says kClosed).

 private:
  using ChannelEndpoint::ChannelEndpoint;
  FrameView take(bool blocking, std::chrono::nanoseconds timeout) noexcept;
};

}  // namespace shmring
