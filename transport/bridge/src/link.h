// A pattern's link: how one kind of channel (topic, queue, frames) crosses the carrier, both
// halves in one file (topic_link.cc, queue_link.cc, frame_link.cc). The sides (export_side.cc,
// import_side.cc) keep what every pattern shares: the carrier, the peers and their hellos, opening
// and reopening local channels, descriptions, acknowledgements that the link refused, the loop.
// A link keeps the local endpoint(s) and its pattern's protocol state.
//
// Adding a pattern (services, say): its ChannelKind in the transport, its message types in
// wire.h, one new <pattern>_link.cc defining a Pattern (an ExportLink and an ImportLink), and its
// line in links.cc. Nothing in the sides changes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "shmring/bridge/bridge.h"
#include "shmring/bridge/carrier.h"
#include "shmring/transport/channel.h"
#include "side.h"
#include "wire.h"

namespace shmring::bridge {

inline constexpr std::uint64_t kMs = 1'000'000;
inline constexpr std::uint64_t kFullRetryNs = 1 * kMs;  // a link that said kFull: try again this soon

// --- the export half ---

// One import's state for one exported channel: it asked for the channel (a HELLO).
struct PeerChannel {
  bool described = false;       // its DESCRIBE went out: data may follow on the same connection
  std::uint32_t credit = 0;     // what its latest HELLO offered (queues: items in flight)
  std::uint32_t in_flight = 0;  // sent, not acknowledged yet (queues: items; frames: frames)
  // Topics: credit in bytes of batch payload. Since its description (of `epoch`) it may have been
  // sent up to `delivered` (what its CREDIT says went into its local topic) + `window`; `sent`
  // so far.
  std::uint64_t epoch = 0;
  std::uint64_t window = 0;
  std::uint64_t delivered = 0;
  std::uint64_t sent = 0;
  std::uint64_t blocked_since_ns = 0;  // lossless: since when it holds the channel back (0: not)
  // Lossless topics: an import let back after an eviction does not hold the channel back until
  // it has given credit (a CREDIT of this epoch): one that never does costs the others one
  // evict_after per connection, not one per pause. Meanwhile it misses what it has no credit for.
  bool on_probation = false;
};

// An exported channel as its link sees it.
struct ExportChannel {
  std::string name;
  std::uint64_t incarnation = 0;         // the local channel's, sent with every message
  std::map<PeerId, PeerChannel> peers;   // the imports that asked for it
  ChannelStatus status;
};

// What an export link sends through: the side's carrier, with its origin. A peer the carrier
// says is gone is noted, and so is one the link evicts; the side acts on both once the link has
// returned.
class ExportPort {
 public:
  ExportPort(Carrier& carrier, std::uint64_t origin) : carrier_(carrier), origin_(origin) {}
  // A header of `type` for channel `c` (origin, incarnation and name filled in).
  wire::Header header(const ExportChannel& c, wire::Type type) const {
    wire::Header h;
    h.type = type;
    h.origin = origin_;
    h.incarnation = c.incarnation;
    h.name = c.name;
    return h;
  }
  SendResult send(const PeerId& to, std::span<const std::byte> header, std::span<const std::byte> payload) {
    const SendResult r = carrier_.try_send(to, header, payload);
    if (r == SendResult::kGone) gone_.push_back(to);
    return r;
  }
  std::vector<PeerId> take_gone() { return std::exchange(gone_, {}); }
  // Evicts `id` from the channel (it broke the bound `bound_ms` for `why`): the side tells it,
  // counts it, forgets what it held (ExportLink::forget) and ignores its hellos for a while.
  struct Eviction {
    PeerId id;
    wire::EvictReason why;
    std::uint64_t bound_ms;
  };
  void evict(const PeerId& id, wire::EvictReason why, std::uint64_t bound_ms) {
    evicted_.push_back(Eviction{id, why, bound_ms});
  }
  std::vector<Eviction> take_evicted() { return std::exchange(evicted_, {}); }
  // A message without payload (a control message) to `to`.
  SendResult send_control(const PeerId& to, const wire::Header& h) {
    wire::encode(h, &control_);
    return send(to, control_, {});
  }

 private:
  Carrier& carrier_;
  std::uint64_t origin_;
  std::vector<PeerId> gone_;
  std::vector<Eviction> evicted_;
  std::vector<std::byte> control_;
};

// The export half of a pattern: the local endpoint(s) reading one channel, and what goes to
// each peer. Made when the channel opens, destroyed when it closes (what its endpoints held goes
// back to the channel).
class ExportLink {
 public:
  virtual ~ExportLink() = default;
  // Opens the local channel `name` (its stats say the mode). Sets *incarnation.
  virtual absl::Status open(const std::string& name, const ChannelStats& stats, const ExportSpec& spec,
                            std::uint64_t* incarnation) = 0;
  // Events the local channel left since the last call (kRemoved: the side reopens it).
  virtual WaitEvent take_wait_events() = 0;
  // The DESCRIBE's baseline: the sequence number the next message read will have (topics).
  virtual std::optional<std::uint64_t> baseline() const { return std::nullopt; }
  // Where `peer` stands (topics: the sequence of the next record it will be offered; everything
  // before it was sent or dropped for it), told with every ALIVE: so an import counts a gap at
  // the end of a stream, with nothing after it to reveal it. nullopt: nothing to tell.
  virtual std::optional<std::uint64_t> position_for(const PeerId&, const PeerChannel&) const { return std::nullopt; }
  // Moves what is ready to the described peers; never waits. Not OK: the local endpoint failed
  // (the message says how); the side closes the channel and opens it again.
  virtual absl::Status move(ExportChannel& c, ExportPort& port, std::uint64_t now) = 0;
  virtual void plan_wait(const ExportChannel& c, std::uint64_t now, WaitPlan* plan) = 0;
  // A message from an import for this channel, other than HELLO (ACK, CREDIT): the link checks
  // that it is of this incarnation (or epoch). `peer`: its state, null if it has not asked for
  // the channel.
  virtual void on_message(ExportChannel& c, const PeerId& from, PeerChannel* peer, const wire::Header& h) = 0;
  // Import `id` is gone: what it was owed or held moves on to the others.
  virtual void forget(ExportChannel& c, const PeerId& id) = 0;
};

// --- the import half ---

struct Ack {
  std::uint64_t incarnation = 0;
  std::uint64_t sequence = 0;
  std::uint8_t flags = 0;
};

// An imported channel as its link sees it.
struct ImportChannel {
  ChannelRoute route;
  std::uint32_t queue_window = 0;       // what this import offers (ImportSpec)
  std::uint64_t topic_window = 0;
  bool described = false;
  wire::Description description;        // as the export describes its channel
  std::uint64_t epoch = 0;              // of that description
  std::uint64_t local_max_message = 0;  // of the local channel (it may have existed already)
  std::vector<Ack> unsent_acks;         // acks the link refused, sent again
  ChannelStatus status;
};

// What an import link sends through: acknowledgements, kept and sent again while the carrier
// refuses them.
class ImportPort {
 public:
  explicit ImportPort(Carrier& carrier) : carrier_(carrier) {}
  // Acknowledges item (or frame) `of`, of its upstream channel incarnation.
  void ack(ImportChannel& c, const wire::Header& of, std::uint8_t flags) {
    const Ack a{of.incarnation, of.sequence, flags};
    if (!c.unsent_acks.empty() || !send_ack(c, a)) c.unsent_acks.push_back(a);
  }
  // A control message for `c` (its remote name filled in). False: the link refused it now.
  bool send_control(const ImportChannel& c, wire::Header h) {
    h.name = c.route.remote;
    wire::encode(h, &control_);
    return carrier_.try_send({}, control_, {}) == SendResult::kOk;
  }
  void flush_acks(ImportChannel& c) {
    std::size_t sent = 0;
    while (sent < c.unsent_acks.size() && send_ack(c, c.unsent_acks[sent])) ++sent;
    c.unsent_acks.erase(c.unsent_acks.begin(), c.unsent_acks.begin() + static_cast<std::ptrdiff_t>(sent));
  }

 private:
  bool send_ack(const ImportChannel& c, const Ack& a) {
    wire::Header h;
    h.type = wire::Type::kAck;
    h.flags = a.flags;
    h.incarnation = a.incarnation;
    h.sequence = a.sequence;
    return send_control(c, h);
  }
  Carrier& carrier_;
  std::vector<std::byte> control_;
};

// What became of a data message offered to the local channel.
enum class Delivery : std::uint8_t {
  kDone,    // delivered, or dropped and counted
  kNoRoom,  // the local channel has no room now: the side holds it (and what follows for the
            // channel) and offers it again when the local channel says there is room
  kBroken,  // the local endpoint failed: the side opens the channel again, then offers it again
};

// The import half of a pattern: the local endpoint that feeds one channel, and delivery. Made
// when the channel is first described as this kind; it outlives closing and reopening the
// endpoint (what it remembers, such as queue tickets, stays).
class ImportLink {
 public:
  virtual ~ImportLink() = default;
  // Opens the local endpoint as the description says (exact), or with whatever limits the
  // existing channel has (!exact).
  virtual absl::Status open(const ImportChannel& c, bool exact) = 0;
  virtual void close() = 0;
  virtual bool is_open() const = 0;
  virtual int wait_fd() const = 0;
  virtual WaitEvent take_wait_events() = 0;
  virtual std::uint64_t max_message() const = 0;  // of the local channel
  // After open: the link picks up what the local channel remembers (topics: the upstream mark).
  virtual void opened(ImportChannel&) {}
  // Tells the local channel where its messages come from and whether the link is up (for
  // `shmring stat`: ChannelEndpoint::set_upstream_link). No-op when not open.
  virtual void set_upstream(std::string_view from, bool up) = 0;
  // A DESCRIBE of the channel arrived while it is open (topics: the baseline to count from).
  virtual void described(ImportChannel&, const wire::Header&) {}
  // An ALIVE with the export's position for this import (ExportLink::position_for), when nothing
  // is held here: everything before it has arrived or was dropped on the way (topics: a gap).
  virtual void at_position(ImportChannel&, const wire::Header&) {}
  // Bytes a data message of this pattern may carry beyond one message of the largest size.
  virtual std::uint64_t batch_overhead() const { return 0; }
  // Delivers a data message of this pattern from *offset on (a batch is left at the record that
  // found no room). `why` says what broke, with kBroken.
  virtual Delivery deliver(ImportChannel& c, ImportPort& port, const wire::Header& h,
                           std::span<const std::byte> payload, std::size_t* offset, std::string* why) = 0;
  // A data message for this channel that cannot go in: its local channel is not open here, or
  // holds as much as this import offered (`open` false), or it is refused (`open` true: malformed
  // or too large, already counted).
  virtual void cannot_take(ImportChannel&, ImportPort&, const wire::Header&, bool /*open*/) {}
  // Whether the side may hold `incoming` payload bytes more for this channel, on top of the
  // `messages` and `bytes` it holds: an honest export never sends beyond what this import
  // offered, so this is the bound on what an import keeps per channel.
  virtual bool may_hold(const ImportChannel&, std::size_t messages, std::size_t bytes, std::size_t incoming) const = 0;
  // How long a message may be held here before it is handed back (cannot_take), in ms; 0: as
  // long as it takes.
  virtual std::uint64_t hold_limit_ms(const ImportChannel&) const { return 0; }
  // A data message is done with (delivered or dropped) that arrived under description `epoch`.
  virtual void finished(ImportChannel&, std::size_t /*payload_bytes*/, std::uint64_t /*epoch*/) {}
  // Sends what the link owes the export (topics: credit): at every heartbeat (`heartbeat`), and
  // after each step when enough has changed.
  virtual void flow(ImportChannel&, ImportPort&, bool /*heartbeat*/) {}
};

// Options for opening a local channel as a description says: its limits (exact), or none, so an
// existing channel's own limits apply.
template <typename Options>
Options described_limits(const wire::Description& d, bool exact) {
  Options o;
  if (exact) {
    o.capacity = d.capacity;
    o.max_message = d.max_message;
    o.max_peers = d.max_peers;
  }
  return o;
}

// Endpoint::open(name, o) into *slot.
template <typename Endpoint, typename Options>
absl::Status open_into(const std::string& name, const Options& o, std::optional<Endpoint>* slot) {
  absl::StatusOr<Endpoint> opened = Endpoint::open(name, o);
  if (!opened.ok()) return opened.status();
  slot->emplace(*std::move(opened));
  return absl::OkStatus();
}

// The endpoint calls every import link makes the same way, on its one local endpoint (a
// TopicPublisher, QueueProducer or FramePublisher).
template <typename Endpoint>
class SendingLink : public ImportLink {
 public:
  void close() override { endpoint_.reset(); }
  bool is_open() const override { return endpoint_.has_value(); }
  int wait_fd() const override { return endpoint_ ? endpoint_->wait_fd() : -1; }
  WaitEvent take_wait_events() override { return endpoint_->take_wait_events(); }
  std::uint64_t max_message() const override { return endpoint_->max_message(); }
  void set_upstream(std::string_view from, bool up) override {
    if (endpoint_) endpoint_->set_upstream_link(from, up);
  }

 protected:
  template <typename Options>
  absl::Status open_endpoint(const ImportChannel& c, const Options& o) {
    return open_into<Endpoint>(c.route.local, o, &endpoint_);
  }
  std::optional<Endpoint> endpoint_;
};

// --- registration ---

// One pattern: its channel kind, the message that carries its data from export to import, and
// its two halves.
struct Pattern {
  ChannelKind kind;
  wire::Type data;
  std::unique_ptr<ExportLink> (*make_export)();
  std::unique_ptr<ImportLink> (*make_import)();
};

// The patterns the bridge carries (links.cc). Null for a kind or message it does not know.
const Pattern* pattern_for(ChannelKind kind);
const Pattern* pattern_for_data(wire::Type data);

// Each defined in its <pattern>_link.cc.
const Pattern& topic_pattern();
const Pattern& queue_pattern();
const Pattern& frame_pattern();

}  // namespace shmring::bridge
