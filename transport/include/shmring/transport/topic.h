// Topic channels: one publisher, any number of subscribers, each subscriber sees every message
// (or learns exactly how many it lost). The ring is a BroadcastRing (variable-size records).
//
// Lossy (default): the publisher never waits. A subscriber that falls behind by more than the ring
// jumps ahead and counts what it skipped (lost()). A lossy subscriber never writes the ring: by
// default it maps the channel read-write only to register itself (counters, wake-ups) and
// mprotect()s the ring read-only in its own process; with TopicOptions::read_only it attaches the
// whole segment read-only (kernel-enforced, works with 0644-style permissions for other users), is
// not registered, and polls instead of being woken (every 200 us at most).
//
// Lossless (TopicOptions::lossless, chosen by the creator; openers must agree): subscribers own a
// cursor slot in the ring and the publisher never overwrites what the slowest live subscriber has
// not read: send() and loan() wait (with their timeout). A subscriber whose process died is
// evicted by the publisher the next time it is held back (checked at least every dead_check_interval while
// blocked). A live subscriber that holds the publisher back for longer than evict_after (if set),
// or that lags by more than evict_lag bytes (if set), is evicted: the publisher carries on,
// evictions() and ChannelStats::evictions count it, and that subscriber's receives return
// kEvicted (at once, or after the messages it had already been handed intact).
//
// Publisher crash: a new publisher may open the topic once the old one is dead; it resumes after
// the last complete record. A record the dead publisher was writing is never delivered torn.
//
// Zero-copy (both modes): the publisher loans a record in the ring, fills it in place and publishes
// it (TopicLoan); a subscriber views a message in place (TopicView) until it releases it. Lossless:
// the publisher never overwrites a viewed message (the subscriber's cursor moves on release), so a
// view is exactly as good as a copy, and a view held long holds the publisher back. Lossy: the
// publisher never waits, so a subscriber that is lapped while it holds a view can have the bytes
// overwritten under it; release() then says kOverwritten (validated after the reads, as a copy
// is) and whatever was computed from the view must be discarded. A lossy view is read-only memory.
//
// Threads, blocking, errors: the conventions in channel.h. Memory ordering: a message a subscriber
// receives happens-after the publish() that wrote it (the payload words are release-stored and
// acquire-loaded, and a lossy reader re-validates after copying, so it never returns a torn or
// overwritten record). Lossless: a subscriber's receive happens-before the publisher overwriting
// that space (the reader slot position is release-stored).
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

struct TopicOptions {
  // Creator's settings; an opener with a non-zero value that differs gets kFailedPrecondition.
  std::uint64_t capacity = 0;     // ring data bytes, a power of two (creator default 1 MiB)
  std::uint64_t max_message = 0;  // creator default: min(64 KiB, capacity / 2 - 16)
  std::uint32_t max_peers = 0;    // publisher + subscribers (creator default 64)
  bool lossless = false;          // must match the channel's
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
  // Lossless publisher: how long it must have been held back before it looks for dead subscribers,
  // and then how often (the bound on how long a dead subscriber can hold it back), and after how
  // long of being held back it evicts the slowest live subscriber (0: never; it then waits until
  // its own timeout). Held-back time counts across calls (short timeouts, try_send loops) and
  // ends with a send that succeeds.
  std::chrono::milliseconds dead_check_interval{5};
  std::chrono::milliseconds evict_after{0};
  // Lossless publisher: evicts a live subscriber that lags by more than this many bytes of the
  // ring (0: never). Checked after publishing, each time min(evict_lag / 4, (capacity -
  // evict_lag) / 2) more bytes went in (one scan of the reader slots; a subscriber can be that much
  // further behind when it is evicted), and whenever the publisher is held back.
  std::uint64_t evict_lag = 0;
  // Subscribers: where a new subscriber starts, and the read-only mode described above.
  bool start_at_latest = false;
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
  // (lossy): the publisher overwrote it meanwhile; discard what was read (counted as lost). The
  // bytes of a lossy view can change while they are read: check any length or offset found in
  // them against data().size() before following it.
  // kEvicted (lossless): this subscriber was evicted meanwhile, so the bytes may have been
  // overwritten. kOk also for an empty or already released view; kClosed if the subscriber was
  // closed meanwhile. Lossless: wakes a publisher parked for room. Never waits.
  ChannelResult release() noexcept { return settle(); }
  // The message's sequence number in the topic (see TopicSubscriber::last_sequence).
  std::uint64_t sequence() const noexcept { return number_; }
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
  // Opens (or creates) the topic as its one publisher. kFailedPrecondition if the topic already
  // has a live publisher (or other kind, lossless mode or limits); otherwise the errors of
  // QueueProducer::open. Blocks as described in channel.h.
  static absl::StatusOr<TopicPublisher> open(std::string_view name, const TopicOptions& options = {});

  TopicPublisher() = default;

  // Lossy: always kOk (or kTooLarge / kCorrupt / kClosed); never waits. Lossless: kWouldBlock
  // when a subscriber holds the publisher back; once it has been held back for
  // dead_check_interval (across calls) it try-locks the segment and evicts dead subscribers,
  // without waiting for the lock, and evicts as evict_after / evict_lag say.
  // Wakes parked subscribers (a futex system call only if some are parked).
  ChannelResult try_send(std::span<const std::byte> message) noexcept;
  // Lossless: waits up to `timeout` for room (evicting as TopicOptions says), parking on
  // space_wake in slices of dead_check_interval clamped to [100 us, 10 ms]. kOk, kTimedOut,
  // kTooLarge, kCorrupt, kClosed. Lossy: the same as try_send.
  ChannelResult send(std::span<const std::byte> message, std::chrono::nanoseconds timeout) noexcept;
  // Zero-copy: lends room for a message of up to `max_bytes` (0: max_message()) in the ring. Unlike
  // the queue's and frames' loans (fixed-size slots and buffers), a topic's records are variable
  // in size, so a loan says how much it needs: that is the one extra argument. The
  // loan's result: kOk, kTooLarge, kCorrupt, kClosed; lossless also kWouldBlock (try_loan) or
  // kTimedOut (loan, which waits and evicts as send() does). One loan at a time; no copying
  // send while it is out (kWouldBlock). Ask for what you need: a lossless loan waits until that
  // much room is free, and a lossy one may overwrite that much of the oldest messages.
  TopicLoan try_loan(std::size_t max_bytes = 0) noexcept;
  TopicLoan loan(std::size_t max_bytes, std::chrono::nanoseconds timeout) noexcept;
  // Publishes the loan's first `bytes` (<= its buffer) as the next message and wakes parked
  // subscribers. kOk; kTooLarge (loan kept); kClosed (not this publisher's live loan). Never
  // waits. Release: the bytes written into the buffer are visible to every subscriber that gets it.
  ChannelResult publish(TopicLoan& loan, std::size_t bytes) noexcept;
  // Gives a loan up; subscribers never see it. No-op for a loan that is not this publisher's.
  void abandon(TopicLoan& loan) noexcept;

  std::uint64_t max_message() const noexcept;
  bool lossless() const noexcept;
  std::uint64_t evictions() const noexcept;  // live subscribers this publisher evicted
  // The sequence number the next message will carry (TopicSubscriber::last_sequence). A
  // publisher that takes over after a crash continues the numbering.
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
};

class TopicSubscriber : public ChannelEndpoint {
 public:
  // Opens (or creates) the topic as a subscriber. Errors as TopicPublisher::open; also
  // kFailedPrecondition for read_only on a lossless topic, kResourceExhausted when every peer or
  // lossless reader slot is taken. A read_only subscriber takes no lock and is not registered.
  static absl::StatusOr<TopicSubscriber> open(std::string_view name, const TopicOptions& options = {});

  TopicSubscriber() = default;

  // Copies the next message into `out` and sets *bytes. kOk, kWouldBlock, kEvicted (lossless:
  // this subscriber was evicted; reopen), kCorrupt, kClosed; kTooLarge when the next message is
  // longer than `out`: it is not consumed and *bytes says how long it is (a buffer of
  // max_message() bytes always fits). A lapped lossy subscriber skips ahead (lost() grows) and
  // goes on with the oldest message left (kWouldBlock if it is lapped 64 times in a row, i.e. the
  // publisher rewrites the whole ring faster than this subscriber copies one message).
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

  std::uint64_t lost() const noexcept;  // messages skipped after being lapped (exact)
  // The sequence number of the message most recently returned (received, or viewed): numbers
  // are consecutive per channel incarnation, so a jump is exactly the messages skipped. 0
  // before the first message.
  std::uint64_t last_sequence() const noexcept;
  // The sequence number the next message will carry if this subscriber loses none: known once a
  // message was returned, and usually right after open (not when the publisher was overwriting
  // the record just before the start at that instant); nullopt when unknown or closed.
  std::optional<std::uint64_t> next_sequence() const noexcept;
  std::uint64_t received() const noexcept;
  std::uint64_t max_message() const noexcept;
  bool lossless() const noexcept;
  // stats(): from ChannelEndpoint; empty for a read_only subscriber (it has no peer slot).
  // is_open(), close() (also the destructor): from ChannelEndpoint; close() also gives a
  // lossless reader slot back, and a view still out becomes inert.

 private:
  using ChannelEndpoint::ChannelEndpoint;
  TopicView take_view(std::chrono::nanoseconds timeout) noexcept;
};

}  // namespace shmring
