// Topic channels: any number of publishers (up to TopicOptions::max_publishers) in one total order,
// any number of subscribers, each subscriber sees every message (or learns exactly how many it
// lost). The ring is a broadcast ring (queue/broadcast_layout.h): publishers claim room with one
// compare-and-swap and commit each record with a store its readers wait on.
//
// One order. Every subscriber sees the messages of all publishers in the same order, and each
// publisher's messages in its own order. Each message carries its topic sequence number
// (consecutive but where a number carries no message: a loan given up while another publisher had
// claimed after it, or a publisher that died mid-message), its publisher's id (stable while that
// publisher is open) and that publisher's own sequence number (TopicView::sequence / publisher /
// publisher_sequence; for copies TopicSubscriber::last_sequence / last_publisher /
// last_publisher_sequence).
//
// Delivery is each subscriber's choice (TopicOptions::delivery; the creator's `lossless` flag is
// the default for subscribers that do not choose), on one topic at once:
//  * lossy: never holds a publisher back. A subscriber that falls behind by more than the ring jumps
//    to the newest message and counts what it skipped (lost()). It never writes the ring: by
//    default it maps the channel read-write only to register itself (counters, wake-ups) and
//    mprotect()s the ring read-only in its own process; with TopicOptions::read_only it attaches the
//    whole segment read-only (kernel-enforced, works with 0644-style permissions for other users),
//    is not registered, and polls instead of being woken (every 200 us at most).
//  * lossless: owns a reader slot in the ring; no publisher overwrites what it has not read: send()
//    and loan() wait (with their timeout) for the slowest lossless subscriber. A subscriber whose
//    process died is evicted the next time a publisher is held back (checked at least every
//    dead_check_interval while blocked). A live subscriber that holds a publisher back for longer
//    than evict_after (if set), or that lags by more than evict_lag bytes (if set), is evicted: the
//    publisher carries on, evictions() and ChannelStats::evictions count it, and that subscriber's
//    receives return kEvicted (at once, or after the messages it had already been handed intact).
//
// Where a subscriber starts (TopicOptions::start): TopicStart::live() (messages not yet published
// when it opened), latest() (the newest message, then live), history(n) (the last n, then live),
// oldest() (everything the ring still holds). history_missed() says exactly how many of the
// messages it asked for were no longer there. TopicOptions::history = n at creation makes the ring
// keep the last n messages whatever the publishers do (lossy or lossless), so a history(n) start
// never misses any. A subscriber that opens before any publisher gets every message from the first.
//
// A publisher that dies mid-message never stalls the topic for long: once its death is known
// through its kernel-held liveness lock (a held-back publisher or a waiting lossless subscriber
// looks at least every dead_check_interval; the next publisher to open looks at once), its
// unfinished message is skipped, never delivered torn, and counted (ChannelStats::abandoned).
//
// Zero-copy (both deliveries): a publisher loans a record in the ring, fills it in place and
// publishes it (TopicLoan); a subscriber views a message in place (TopicView) until it releases it.
// Lossless: no publisher overwrites a viewed message (the subscriber's position moves on release),
// so a view is exactly as good as a copy, and a view held long holds the publishers back. Lossy: the
// publishers never wait, so a subscriber lapped while it holds a view can have the bytes
// overwritten under it; release() then says kOverwritten (validated after the reads, as a copy is)
// and whatever was computed from the view must be discarded. A lossy view is read-only memory.
//
// Threads, blocking, errors: the conventions in channel.h. Memory ordering: a message a subscriber
// receives happens-after the publish() that wrote it (docs/memory-ordering.md, bcast_*); a lossy
// subscriber re-validates after copying, so it never returns a torn or overwritten record; a
// lossless subscriber's receive happens-before any publisher overwrites that space.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "shmring/transport/channel.h"
#include "shmring/transport/lease.h"

namespace shmring {

// Each subscriber's delivery (see above). kDefault: the creator's `lossless` flag, unless the
// subscriber's own TopicOptions::lossless asks for lossless.
enum class TopicDelivery : std::uint8_t { kDefault, kLossless, kLossy };

// Where a subscriber starts. TopicStart::history(n) is what the design calls kHistory{n}.
struct TopicStart {
  enum class Mode : std::uint8_t { kLive, kLatest, kHistory, kOldest };
  Mode mode = Mode::kLive;
  std::uint64_t count = 0;  // kHistory: n

  static constexpr TopicStart live() noexcept { return {Mode::kLive, 0}; }
  static constexpr TopicStart latest() noexcept { return {Mode::kLatest, 0}; }
  static constexpr TopicStart history(std::uint64_t n) noexcept { return {Mode::kHistory, n}; }
  static constexpr TopicStart oldest() noexcept { return {Mode::kOldest, 0}; }
};

struct TopicOptions {
  // Creator's settings; an opener with a non-zero value that differs gets kFailedPrecondition.
  std::uint64_t capacity = 0;        // ring data bytes, a power of two (creator default 1 MiB, more if
                                     // `history` needs it)
  std::uint64_t max_message = 0;     // creator default: min(64 KiB, what capacity and history allow)
  std::uint32_t max_peers = 0;       // publishers + subscribers (creator default 64)
  std::uint32_t max_publishers = 0;  // publishers open at once (creator default 1)
  // Messages the ring keeps for late joiners whatever the publishers do: the creator checks that
  // (history + 9) records of max_message fit the ring (TopicPublisher::max_message() then says
  // what fits).
  std::uint64_t history = 0;
  // The default delivery for subscribers that do not choose (the creator's; openers need not
  // agree). For a subscriber with delivery kDefault, true also asks for lossless delivery.
  bool lossless = false;
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
  // A publisher held back (by a lossless subscriber, or by another publisher stalled inside a
  // message for a whole lap): how long it must have been held back before it looks for dead peers,
  // and then how often (the bound on how long a dead subscriber or a dead publisher's unfinished
  // message can hold it back), and after how long of being held back it evicts the slowest live
  // lossless subscriber (0: never; it then waits until its own timeout). Held-back time counts
  // across calls (short timeouts, try_send loops) and ends with a send that succeeds. A lossless
  // subscriber waiting at a message a publisher has claimed but not published looks for dead
  // publishers as often.
  std::chrono::milliseconds dead_check_interval{5};
  std::chrono::milliseconds evict_after{0};
  // Publishers: evict a live lossless subscriber that lags by more than this many bytes of the
  // ring (0: never). Checked after publishing, each time min(evict_lag / 4, (capacity -
  // evict_lag) / 2) more bytes went in (one scan of the reader slots; a subscriber can be that much
  // further behind when it is evicted), and whenever the publisher is held back.
  std::uint64_t evict_lag = 0;
  // Subscribers: delivery, start, and the read-only mode described above (lossy only).
  TopicDelivery delivery = TopicDelivery::kDefault;
  TopicStart start;
  bool read_only = false;
};

// A record lent to the publisher (zero-copy publish): fill buffer(), then TopicPublisher::publish().
// Destroying an unpublished loan abandons it (subscribers never see it). Used by the publisher's
// thread. The loan belongs to the publisher's channel endpoint, not to the TopicPublisher object:
// moving the publisher keeps the loan usable; closing it makes the loan inert (kClosed, empty).
class TopicLoan : public detail::Lease {
 public:
  TopicLoan() = default;
  // result(), ok(): from detail::Lease (kOk, or why there is no loan).
  // The bytes asked for (at most max_message), in place in the ring; 8-byte aligned.
  std::span<std::byte> buffer() const noexcept { return bytes_; }
};

// A message lent to a subscriber, in place, until release() (or destruction). Used by the
// subscriber's thread. Like a loan, it belongs to the subscriber's endpoint: moving the subscriber
// keeps it; closing the subscriber makes it inert (its bytes must not be read afterwards).
class TopicView : public detail::Lease {
 public:
  TopicView() = default;
  // result(), ok(): from detail::Lease (kOk, or why there is no view).
  std::span<const std::byte> data() const noexcept { return bytes_; }
  // Ends the view. kOk: the message was intact while viewed (counted as received). kOverwritten
  // (lossy): a publisher overwrote it meanwhile; discard what was read (counted as lost). The
  // bytes of a lossy view can change while they are read: check any length or offset found in
  // them against data().size() before following it.
  // kEvicted (lossless): this subscriber was evicted meanwhile, so the bytes may have been
  // overwritten. kOk also for an empty or already released view; kClosed if the subscriber was
  // closed meanwhile. Lossless: wakes a publisher parked for room. Never waits.
  ChannelResult release() noexcept { return settle(); }
  // The message's topic sequence number (see TopicSubscriber::last_sequence).
  std::uint64_t sequence() const noexcept { return number_; }
  // Its publisher's id (TopicPublisher::publisher_id) and that publisher's own sequence number of
  // it (0 for its first message).
  std::uint32_t publisher() const noexcept { return publisher_; }
  std::uint64_t publisher_sequence() const noexcept { return publisher_sequence_; }

 private:
  friend class TopicSubscriber;
  std::uint32_t publisher_ = 0;
  std::uint64_t publisher_sequence_ = 0;
};

// Where a message came from before it reached this host: a bridge's importing publisher
// (shmring::bridge) sends each message with its position in the exporting host's topic.
struct UpstreamPosition {
  std::uint64_t origin = 0;       // the exporting side (any non-zero id it chooses)
  std::uint64_t incarnation = 0;  // the exported channel's channel_incarnation()
  std::uint64_t sequence = 0;     // the message's sequence number there
};

class TopicPublisher : public ChannelEndpoint {
 public:
  // Opens (or creates) the topic as one of its publishers. kFailedPrecondition if max_publishers
  // live publishers have it open already (or for another kind, or other limits); otherwise the
  // errors of QueueProducer::open. A topic made by an older shmring (another ring layout) is
  // refused with kFailedPrecondition saying so. Blocks as described in channel.h.
  static absl::StatusOr<TopicPublisher> open(std::string_view name, const TopicOptions& options = {});

  TopicPublisher() = default;

  // Copies `message` in as the next message. kOk, kTooLarge, kCorrupt, kClosed; kWouldBlock when
  // held back: by a lossless subscriber, or (several publishers) by another publisher stalled
  // inside a message for a whole lap. Once held back for dead_check_interval (across calls) it
  // try-locks the segment and recovers dead peers, without waiting for the lock, and evicts as
  // evict_after / evict_lag say. Wakes parked subscribers (a futex system call only if some are
  // parked).
  ChannelResult try_send(std::span<const std::byte> message) noexcept;
  // As try_send, waiting up to `timeout` for room (recovering and evicting as TopicOptions says),
  // parking on space_wake in slices of dead_check_interval clamped to [100 us, 10 ms]. kOk,
  // kTimedOut, kTooLarge, kCorrupt, kClosed. A publisher that is never held back never waits.
  ChannelResult send(std::span<const std::byte> message, std::chrono::nanoseconds timeout) noexcept;
  // Zero-copy: lends room for a message of up to `max_bytes` (0: max_message()) in the ring. Unlike
  // the queue's and frames' loans (fixed-size slots and buffers), a topic's records are variable
  // in size, so a loan says how much it needs: that is the one extra argument. The loan's result:
  // kOk, kTooLarge, kCorrupt, kClosed; held back: kWouldBlock (try_loan) or kTimedOut (loan, which
  // waits as send() does). One loan at a time; no copying send while it is out (kWouldBlock). Ask
  // for what you need: a loan waits until that much room is free (lossless), may overwrite that
  // much of the oldest messages (lossy), and, with several publishers, the unused part of a loan
  // published short stays unused until the ring comes round.
  TopicLoan try_loan(std::size_t max_bytes = 0) noexcept;
  TopicLoan loan(std::size_t max_bytes, std::chrono::nanoseconds timeout) noexcept;
  // Publishes the loan's first `bytes` (<= its buffer) as the next message and wakes parked
  // subscribers. kOk; kTooLarge (loan kept); kClosed (not this publisher's live loan). Never
  // waits. Release: the bytes written into the buffer are visible to every subscriber that gets it.
  ChannelResult publish(TopicLoan& loan, std::size_t bytes) noexcept;
  // Gives a loan up; subscribers never see it (with several publishers its sequence number may
  // carry no message). No-op for a loan that is not this publisher's.
  void abandon(TopicLoan& loan) noexcept;

  std::uint64_t max_message() const noexcept;
  // The creator's default delivery (TopicOptions::lossless).
  bool lossless() const noexcept;
  std::uint32_t max_publishers() const noexcept;
  std::uint64_t history() const noexcept;
  std::uint64_t evictions() const noexcept;  // live subscribers this publisher evicted
  // This publisher's id, as subscribers see it (TopicView::publisher): stable while it is open,
  // unique on this channel incarnation (a publisher that opens after it gets another).
  std::uint32_t publisher_id() const noexcept;
  // Messages this publisher sent: the publisher sequence its next message carries.
  std::uint64_t published() const noexcept;
  // The topic sequence number the next message claimed on this channel gets (by any publisher):
  // with one publisher, the number its next message carries. A publisher that takes over after a
  // crash continues the numbering.
  std::uint64_t next_sequence() const noexcept;

  // --- for bridges (shmring::bridge) ---
  // try_send, also recording in the channel that this message is upstream message `from`. A
  // publisher that takes over after this one dies (at any instruction) learns from
  // upstream_resume() exactly which upstream message comes next. Results as try_send.
  ChannelResult try_send_from(const UpstreamPosition& from, std::span<const std::byte> message) noexcept;
  // Records, without sending, that upstream message `next` is the next one expected (a bridge that
  // learns that the messages before it were lost on the way, with none of them to send).
  // upstream_resume() returns it until the next try_send_from. No-op while a loan is out.
  void mark_upstream(const UpstreamPosition& next) noexcept;
  // The upstream position that comes after the last message sent with try_send_from by this or
  // an earlier publisher of this channel incarnation (its sequence: the next one expected), or
  // the one mark_upstream recorded after it; origin 0 when there was none. Never waits.
  UpstreamPosition upstream_resume() const noexcept;
  // Adds `n` to this publisher's lost counter: messages lost before they reached it (a bridge
  // counts the gaps in the upstream sequence). PeerStats::lost, ChannelStats::lost and
  // `shmring stat` show it.
  void count_upstream_lost(std::uint64_t n) noexcept;
  // is_open(), close() (also the destructor): from ChannelEndpoint; an outstanding loan is
  // given up.

 private:
  using ChannelEndpoint::ChannelEndpoint;
  TopicLoan take_loan(std::size_t max_bytes, std::chrono::nanoseconds timeout) noexcept;
};

class TopicSubscriber : public ChannelEndpoint {
 public:
  // Opens (or creates) the topic as a subscriber. Errors as TopicPublisher::open; also
  // kFailedPrecondition for read_only with lossless delivery (chosen, or the topic's default),
  // kResourceExhausted when every peer or lossless reader slot is taken. A read_only subscriber
  // takes no lock and is not registered.
  static absl::StatusOr<TopicSubscriber> open(std::string_view name, const TopicOptions& options = {});

  TopicSubscriber() = default;

  // Copies the next message into `out` and sets *bytes. kOk, kWouldBlock, kEvicted (lossless:
  // this subscriber was evicted; reopen), kCorrupt, kClosed; kTooLarge when the next message is
  // longer than `out`: it is not consumed and *bytes says how long it is (a buffer of
  // max_message() bytes always fits). A lapped lossy subscriber skips ahead to the newest message
  // (lost() grows; kWouldBlock if it is lapped 64 times in a row, i.e. the publishers rewrite the
  // whole ring faster than this subscriber copies one message).
  // Never waits, never takes a lock; a lossy subscriber writes only its own peer slot.
  ChannelResult try_receive(std::span<std::byte> out, std::size_t* bytes) noexcept;
  // As try_receive, waiting up to `timeout` (kTimedOut): parks on data_wake, or for a read_only
  // subscriber sleeps in 200 us steps.
  ChannelResult receive(std::span<std::byte> out, std::size_t* bytes,
                        std::chrono::nanoseconds timeout) noexcept;
  // Zero-copy: the next message in place until the view is released (see TopicView). Results as
  // try_receive / receive (no kTooLarge). One view at a time: while a view is out, receive calls
  // return kWouldBlock.
  TopicView try_receive_view() noexcept;
  TopicView receive_view(std::chrono::nanoseconds timeout) noexcept;

  // Hands up to `max` available messages to `handler`; does not wait; stops at the first non-kOk
  // result. Returns how many. Lossless: in place (a view released when the handler returns);
  // lossy: a validated copy in an internal buffer (a lossy view could be overwritten under the
  // handler). The span is valid only during the call; `handler` must not call this subscriber.
  std::size_t poll(const std::function<void(std::span<const std::byte>)>& handler,
                   std::size_t max) noexcept;

  // Messages skipped after being lapped (exact, but for a number that carried no message skipped
  // among more than 64 such: see gaps_passed()).
  std::uint64_t lost() const noexcept;
  // Of the messages a latest() / history(n) start asked for, how many were no longer in the ring
  // (known at open; grows only if one is overwritten before this subscriber got to it, which a
  // topic's `history` prevents).
  std::uint64_t history_missed() const noexcept;
  // Sequence numbers passed that carried no message (see the top of this file).
  std::uint64_t gaps_passed() const noexcept;
  // The topic sequence number of the message most recently returned (received, or viewed), its
  // publisher's id and that publisher's own number. 0 before the first message.
  std::uint64_t last_sequence() const noexcept;
  std::uint32_t last_publisher() const noexcept;
  std::uint64_t last_publisher_sequence() const noexcept;
  // The sequence number the next message will carry if this subscriber loses none (and no number
  // is a gap); nullopt when unknown (its start is not settled yet: a publisher was in the middle
  // of the topic's first message when it opened) or closed.
  std::optional<std::uint64_t> next_sequence() const noexcept;
  std::uint64_t received() const noexcept;
  std::uint64_t max_message() const noexcept;
  // This subscriber's delivery (kLossless or kLossy, never kDefault).
  TopicDelivery delivery() const noexcept;
  bool lossless() const noexcept { return delivery() == TopicDelivery::kLossless; }
  // stats(): from ChannelEndpoint; empty for a read_only subscriber (it has no peer slot).
  // is_open(), close() (also the destructor): from ChannelEndpoint; close() also gives a
  // lossless reader slot back, and a view still out becomes inert.

 private:
  using ChannelEndpoint::ChannelEndpoint;
  TopicView take_view(std::chrono::nanoseconds timeout) noexcept;
};

}  // namespace shmring
