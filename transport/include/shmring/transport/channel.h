// Channels: the names, results, waiting strategies and inspection calls shared by every pattern.
//
// A channel is one SharedMemory segment with key channel_key(name) (native name under /dev/shm:
// SharedMemory::native_key_for(channel_key(name))), holding a control block (counters, wake words,
// the peer registry; private to the library) and one ring. Patterns: Topic (topic.h), Queue
// (queue.h), Frames (frame.h), Service (service.h: requests and their responses).
//
// Lifetime: the segment lives while any endpoint is open (the kernel counts attachments); when the
// last endpoint closes (or dies) the channel and whatever it still held are gone.
//
// Conventions shared by every endpoint class (QueueProducer/Consumer, TopicPublisher/Subscriber,
// FramePublisher/Subscriber), stated once here:
//  * Thread-safety: one endpoint object is used by one thread at a time (moving it between threads
//    is fine); any number of endpoints, in any threads and processes, may use one channel at once.
//    Loans and views belong to the endpoint that made them (same thread rule), one of each kind
//    at a time: a second is refused with kWouldBlock. They point at the endpoint's channel state,
//    not at the endpoint object, so moving the endpoint keeps them; close() settles them (a loan
//    is abandoned, a view released or handed on) and makes them inert (kClosed, no bytes to use).
//  * Blocking: open() may wait for the segment lock and for a creator to finish initialising (each
//    bounded by open_timeout; SharedMemory::attach may also poll up to 5 s for a segment whose
//    creator stopped inside create())
//    and makes system calls (shm_open, mmap, fcntl, semop, /proc reads). close() and the destructor
//    wait up to 2 s for the segment lock to unregister; if it cannot be had, the peer slot is
//    marked as if its process had died (no lock needed) and the next dead-peer recovery frees it. try_ calls and poll() never wait: they spin only on lock-free
//    CAS retries; on their slow path (ring full/empty, recovery due) they may take the segment
//    lock if it is free right now (never waiting for it) and read /proc. Calls with a timeout
//    wait as the endpoint's WaitOptions say, never past the timeout (CLOCK_MONOTONIC), waking at
//    least every 10 ms to run slow-path checks; a timeout <= 0 makes them behave as the try_ call.
//  * Memory ordering: a successful send/publish happens-before the receive/view that returns its
//    message: every byte the sender wrote into the message (or the loan's buffer) before the call
//    is visible to the receiver. Where the sender waits for space (queue, lossless topic,
//    frames), a receiver's release of a view (or the end of a receive's copy) happens-before the
//    sender's reuse of that space. Nothing else is ordered: counters and stats are relaxed.
//  * Errors on the data path are ChannelResult values, never exceptions; every data-path call on a
//    closed or moved-from endpoint returns kClosed (or an empty loan/view with result kClosed).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace shmring {

inline constexpr std::size_t kMaxChannelName = 128;  // bytes of a channel name
inline constexpr std::uint32_t kMaxPeers = 1024;     // endpoints (peer slots) per channel at most

enum class ChannelKind : std::uint32_t { kQueue = 1, kTopic = 2, kFrames = 3, kService = 4 };

// An endpoint's peer slot, as read_stats() reports it.
enum class PeerState : std::uint32_t {
  kFree = 0,
  kActive = 1,       // a live endpoint (as far as anyone knows)
  kDeadPending = 2,  // found dead; something it held is not settled yet (see the queue recovery)
};

enum class PeerRole : std::uint32_t {
  kNone = 0,
  kProducer = 1,    // queue
  kConsumer = 2,    // queue
  kPublisher = 3,   // topic / frames
  kSubscriber = 4,  // topic / frames
  kServer = 5,      // service
  kClient = 6,      // service
};

// Lower-case names ("topic", "publisher", "active", ...); "unknown" for a value out of range.
std::string_view to_string(ChannelKind kind) noexcept;
std::string_view to_string(PeerRole role) noexcept;
std::string_view to_string(PeerState state) noexcept;

// Result of a data-path call. Small, never an exception or an allocation.
enum class ChannelResult : std::uint8_t {
  kOk,
  kWouldBlock,  // try_ call: full (send side) or empty (receive side) right now
  kTimedOut,    // a blocking call reached its timeout (measured on the monotonic clock)
  kTooLarge,    // the message exceeds the channel's max_message (or the caller's buffer is short)
  kCorrupt,     // the segment holds something no honest peer writes
  kEvicted,     // topic lossless subscriber: its reader slot was evicted or reclaimed
  kClosed,      // the endpoint is not open (moved-from or closed)
  kOverwritten, // topic lossy view: the publisher overwrote the message while it was viewed;
                // discard what was read (the message counts as lost)
  kPeerGone,    // service: the request ended without a final response (its server died and the
                // request was at_most_once, or the server dropped it); or its client is gone
  kCancelled,   // service server: the client cancelled the request; what is written is dropped
};
std::string_view to_string(ChannelResult result) noexcept;

// How a blocking call waits once it cannot proceed.
enum class WaitStrategy : std::uint8_t {
  kBusySpin,  // spin with a pause instruction until the deadline (lowest latency, burns a core)
  kYield,     // sched_yield between attempts
  kPark,      // sleep on the channel's futex wake word at once
  kHybrid,    // spin `spin_iterations` times, then park (default)
};

// Per-endpoint waiting settings.
struct WaitOptions {
  WaitStrategy strategy = WaitStrategy::kHybrid;
  std::uint32_t spin_iterations = 2000;  // kHybrid: attempts before parking
};

// The SharedMemory key of a channel: kChannelKeyPrefix + name (its file is
// /dev/shm/shmring_chan.<readable name prefix>_<hash>). Pure; does not validate `name`.
inline constexpr std::string_view kChannelKeyPrefix = "chan.";
std::string channel_key(std::string_view name);

// Checks a channel name: 1 .. kMaxChannelName bytes, no '/' and no NUL. kInvalidArgument if not.
// Pure, thread-safe.
absl::Status validate_channel_name(std::string_view name);

// Counters of one endpoint, as read from its peer slot.
struct PeerStats {
  std::uint32_t index = 0;
  PeerRole role = PeerRole::kNone;
  PeerState state = PeerState::kFree;
  std::int32_t pid = 0;
  bool alive = false;  // it holds its slot's liveness lock (kernel-held, dies with its process:
                       // neither pid reuse nor another PID namespace fools it)
  std::uint64_t sent = 0;
  std::uint64_t received = 0;
  std::uint64_t lost = 0;
  std::uint64_t blocked_ns = 0;
  std::uint64_t lag = 0;  // topic subscribers: bytes behind the publishers (lossless: exact)
  bool lossless = false;  // topic subscribers: lossless delivery (holds the publishers back)
  std::uint32_t publisher_id = 0;  // topic publishers: the id its messages carry (0: unknown)
  // A bridge import feeding the channel through this endpoint (ChannelEndpoint::
  // set_upstream_link): the export's address (at most 35 bytes, control characters escaped; empty
  // when the endpoint is not an import) and whether the link to it is up.
  std::string upstream_from;
  bool upstream_up = false;
};

// A consistent-enough snapshot of a channel's counters (each counter is read atomically; the set is
// not a single instant).
struct ChannelStats {
  std::string name;
  ChannelKind kind = ChannelKind::kQueue;
  bool lossless = false;
  std::uint64_t capacity = 0;
  std::uint64_t max_message = 0;
  std::uint32_t max_peers = 0;
  std::int32_t attachments = 0;  // kernel count of live attachments (tools included)
  // Totals over live peers plus retired ones.
  std::uint64_t sent = 0;
  std::uint64_t received = 0;
  std::uint64_t lost = 0;
  std::uint64_t blocked_ns = 0;
  std::uint64_t peers_reclaimed = 0;
  std::uint64_t claims_skipped = 0;
  std::uint64_t items_redelivered = 0;
  std::uint64_t evictions = 0;
  // Topics: publishers open at once (the creator's), messages kept for late joiners, and dead
  // publishers' unfinished messages skipped.
  std::uint32_t max_publishers = 0;
  std::uint64_t history = 0;
  std::uint64_t abandoned = 0;
  std::uint64_t depth = 0;  // queue: items waiting (approximate)
  // Endpoints parked (or about to park) on the channel's wake words right now: receivers waiting
  // for data, senders waiting for room (queue, lossless topic, frames).
  std::uint32_t receivers_parked = 0;
  std::uint32_t senders_parked = 0;
  // Endpoints whose pollable descriptor (wait_fd) is armed right now: the next message (or freed
  // room) costs the sender one datagram per armed endpoint.
  std::uint32_t receivers_armed = 0;
  std::uint32_t senders_armed = 0;
  std::vector<PeerStats> peers;  // occupied slots only
};

// What a pollable descriptor (an endpoint's wait_fd(), or a WaitSet entry) has to report: a bit
// set. kData and kRoom say "may have work": the try_ calls tell for sure.
enum class WaitEvent : std::uint32_t {
  kNone = 0,
  kData = 1u << 0,      // a receiving endpoint may have messages (or a newer frame)
  kRoom = 1u << 1,      // a sending endpoint that was held back may have room
  kPeerGone = 1u << 2,  // an endpoint this one waits on (or for) closed or died
  kEvicted = 1u << 3,   // this lossless subscriber was evicted: its receives return kEvicted
  kRemoved = 1u << 4,   // the channel's name was removed (remove_channel, `shmring rm`)
  kReadable = 1u << 5,  // WaitSet: a plain descriptor entry is ready
  kTimer = 1u << 6,     // WaitSet: a timer entry expired
  kStop = 1u << 7,      // WaitSet: stop() was called (run() returns)
};
constexpr WaitEvent operator|(WaitEvent a, WaitEvent b) noexcept {
  return static_cast<WaitEvent>(static_cast<std::uint32_t>(a) | static_cast<std::uint32_t>(b));
}
constexpr WaitEvent& operator|=(WaitEvent& a, WaitEvent b) noexcept { return a = a | b; }
constexpr WaitEvent operator&(WaitEvent a, WaitEvent b) noexcept {
  return static_cast<WaitEvent>(static_cast<std::uint32_t>(a) & static_cast<std::uint32_t>(b));
}
// Whether `set` contains any of the bits of `event`.
constexpr bool has(WaitEvent set, WaitEvent event) noexcept {
  return (static_cast<std::uint32_t>(set) & static_cast<std::uint32_t>(event)) != 0;
}
// "data|peer-gone", "none".
std::string to_string(WaitEvent set);

// Reads a channel's counters from another process without disturbing it: reads the segment file
// with pread (never maps it, so whoever resizes it cannot kill the caller; not an attachment, so it
// keeps nothing alive), takes no lock, writes nothing; works on channels of any owner the caller
// may read. kNotFound if there is no such live channel; kDataLoss if the segment does not hold a
// valid control block; kInvalidArgument for a bad name; kPermissionDenied. Never waits on the
// channel; makes system calls (open, pread, fcntl lock probes, /proc reads for PeerStats::alive).
// Thread-safe. Counters are read with relaxed loads (see ChannelStats).
absl::StatusOr<ChannelStats> read_stats(std::string_view name);

// Names of the live channels on this machine (scans /dev/shm for channel segments and reads each
// one's name from its control block with pread; stale and foreign segments are left out). Never fails: a
// segment it cannot read is skipped. Thread-safe; file-system system calls only, no waiting.
std::vector<std::string> list_channels();

// Removes a channel's name now (SharedMemory::destroy kForceNoWait): open endpoints keep working,
// new opens create a fresh channel; a channel whose endpoints all died (stale) is removed with
// its lock, as gc would. kNotFound if there is none; kPermissionDenied when this user may not
// remove the name (in /dev/shm, a sticky directory, only its owner and root may). Does not take the segment lock, so
// it never waits; it also removes the channel's lock, so endpoints still open on the old segment
// can no longer run the dead-peer recovery or unregister (those steps fail quietly).
absl::Status remove_channel(std::string_view name);

// Removes the companion files of channels (docs/events.md, docs/security.md: "shmring-l.*",
// "shmring-w.*", "shmring-a.*" in /dev/shm) that nobody owns any more: an endpoint killed before any recovery of
// its channel ran leaves them. Returns the paths removed (dry_run: that would be). Never removes a
// file an endpoint still holds. `shmring gc` calls it; opening a channel removes a few now and then.
std::vector<std::string> collect_stale_wait_files(bool dry_run = false);

}  // namespace shmring
