// The import side: one client carrier to one export and the imported channels; each channel's
// pattern protocol is its link (link.h), which feeds the local channel (topic/frames publisher,
// queue producer) opened with the settings the export describes.
//
// The import never stops reading its connection. A message its local channel has no room for
// (a lossless topic or a queue whose readers are slow) is held, with whatever follows for that
// channel, until there is room; how much is held per channel is bounded by what this import
// offered (its credit: an honest export sends no more, anything beyond is dropped and counted).
// Back-pressure thus reaches the export through credit, not through a full connection, and the
// other channels of the connection go on.
#include "import_side.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "link.h"
#include "shmring/core/clock.h"
#include "shmring/core/detail/message.h"
#include "wire.h"

namespace shmring::bridge {

using shmring::detail::cat;
namespace {

constexpr int kReceiveBatch = 2048;                       // messages taken from the carrier per step

// The import's link to its export, as the status and the log lines say it.
enum class Link : std::uint8_t {
  kConnecting,  // no connection yet (or the address cannot be reached): the carrier retries
  kUp,          // the export was heard from within peer_timeout
  kDown,        // the connection was lost, or the export fell silent
  kRefused,     // the handshake failed (CURVE); the carrier tries again with back-off
};

std::string_view to_string(Link link) {
  switch (link) {
    case Link::kConnecting: return "connecting";
    case Link::kUp: return "up";
    case Link::kDown: return "down";
    case Link::kRefused: return "refused";
  }
  return "?";
}
constexpr std::uint64_t kMaxDescribedBytes = 4ull << 30;  // the largest channel a description may ask for

// A data message the local channel had no room for.
struct Held {
  wire::Header header;
  std::string name;
  std::vector<std::byte> payload;
  std::size_t offset = 0;  // topic batch: the first record not delivered yet
  std::uint64_t epoch = 0;  // of the description it came under
  std::uint64_t since_ns = 0;    // since when it (or, at the front, the one before it) waited
  std::uint64_t arrived_ns = 0;
};

struct Channel : ImportChannel {
  // Made by the first description (its kind); kept while the kind stays.
  std::unique_ptr<ImportLink> link;
  // Described but not open (the local channel has another live publisher or producer, or refuses
  // us): opened again every 500 ms, so a standby import takes over when the active one dies.
  bool open_failed = false;
  std::uint64_t next_open_ns = 0;
  std::deque<Held> held;  // in order; bounded by ImportLink::may_hold
  std::size_t held_bytes = 0;

  bool open() const { return link && link->is_open(); }
};

class ImportSide final : public Side {
 public:
  ImportSide(const ImportSpec& spec, std::unique_ptr<Carrier> carrier)
      : spec_(spec), carrier_(std::move(carrier)), port_(*carrier_) {
    for (const ChannelRoute& r : spec.channels) {
      Channel c;
      c.route = r;
      c.queue_window = spec.queue_window;
      c.topic_window = spec.topic_window;
      c.status.direction = "import";
      c.status.channel = r.local;
      c.status.remote = r.remote;
      c.status.endpoint = carrier_->endpoint();
      channels_.push_back(std::move(c));
    }
  }

  void step(std::uint64_t now) override {
    take_carrier_events(now);
    check_silence(now);
    const bool heartbeat = now >= next_hello_ns_;
    if (heartbeat) say_hello(now);
    check_removed(now);
    for (Channel& c : channels_) {
      if (c.described && !c.open() && now >= c.next_open_ns) {
        c.next_open_ns = now + 500 * kMs;
        if (open_with_description(c)) next_hello_ns_ = now;  // queue credit again
      }
      port_.flush_acks(c);
      deliver_held(c, now);
      hand_back_late(c, now);
    }
    Incoming in;
    for (int i = 0; i < kReceiveBatch && carrier_->try_receive(&in); ++i) handle(in, now);
    for (Channel& c : channels_) {
      if (c.link) c.link->flow(c, port_, heartbeat);
    }
  }

  void plan_wait(std::uint64_t now, WaitPlan* plan) override {
    plan->until(next_hello_ns_);
    if (link_ == Link::kUp) plan->until(last_heard_ns_ + peer_timeout_ns() + 1);
    plan->add(carrier_->descriptor());
    if (carrier_->has_input()) plan->again = true;
    for (const Channel& c : channels_) {
      if (!c.unsent_acks.empty()) plan->until(now + 5 * kMs);  // the link refused them: retry
      if (!c.held.empty()) {
        // The local channel's descriptor says when there is room (try_send armed it).
        if (c.open()) plan->add(c.link->wait_fd());
        plan->until(now + 10 * kMs);
      }
    }
  }

  void append_status(BridgeStatus* status) const override {
    const std::uint64_t now = monotonic_ns();
    for (const Channel& c : channels_) {
      ChannelStatus s = c.status;
      s.open = c.open();
      s.peers = c.described && link_ == Link::kUp ? 1 : 0;
      s.link = std::string(to_string(link_));
      s.link_changes = link_changes_;
      s.link_ms = (now - link_since_ns_) / kMs;
      s.kind = static_cast<ChannelKind>(c.description.kind != 0 ? c.description.kind : 2);
      s.lossless = c.description.lossless != 0;
      if (!c.held.empty()) s.held_back_ns += now - c.held.front().since_ns;
      status->channels.push_back(std::move(s));
    }
    status->malformed += malformed_;
    status->unknown_channel += unknown_channel_;
    status->refused += refused_;
  }

 private:
  // --- the carrier ---

  void take_carrier_events(std::uint64_t now) {
    const CarrierEvents events = carrier_->take_events();
    if (events.refused > 0) {
      refused_ += events.refused;
      set_link(Link::kRefused, now,
               "the handshake failed: a wrong server key, a client key the export does not accept, or "
               "CURVE on one side only; trying again with back-off");
    }
    if (events.disconnected > 0 && link_ == Link::kUp) set_link(Link::kDown, now, "the connection was lost");
    if (events.connected > 0) {
      // Maybe a new export process: it must hear from us before it sends anything.
      for (Channel& c : channels_) c.described = false;
      next_hello_ns_ = now;
    }
    if (events.retried > 0 && !retry_reported_ && link_ != Link::kUp) {
      retry_reported_ = true;
      log_event(cat("import ", carrier_->endpoint(), ": cannot connect (the address does not resolve or cannot be "
                    "reached, or nothing listens there); trying again with back-off"));
    }
  }

  std::uint64_t peer_timeout_ns() const {
    return static_cast<std::uint64_t>(spec_.carrier.peer_timeout.count()) * kMs;
  }

  // The export answers every hello (ALIVE), so silence for peer_timeout means the link is down,
  // whatever the channels' data does.
  void check_silence(std::uint64_t now) {
    if (link_ == Link::kUp && now - last_heard_ns_ > peer_timeout_ns()) {
      set_link(Link::kDown, now, cat("nothing heard from the export for ", spec_.carrier.peer_timeout.count(), " ms"));
    }
  }

  void heard(std::uint64_t now) {
    last_heard_ns_ = now;
    if (link_ != Link::kUp) set_link(Link::kUp, now, "");
  }

  // A change of the link's state: logged, counted, and told to every local channel this import
  // feeds (shmring stat shows it).
  void set_link(Link to, std::uint64_t now, const std::string& why) {
    if (to == link_) return;
    std::string line = cat("import ", carrier_->endpoint(), ": link ", to_string(to));
    if (!why.empty()) line += cat(" (", why, ")");
    if (to == Link::kUp && link_changes_ > 0) line += cat(" after ", (now - link_since_ns_) / kMs, " ms ", to_string(link_));
    log_event(line);
    link_ = to;
    link_since_ns_ = now;
    ++link_changes_;
    retry_reported_ = false;
    for (Channel& c : channels_) {
      if (c.open()) c.link->set_upstream(carrier_->endpoint(), link_ == Link::kUp);
    }
  }

  // A HELLO per channel: "send me this channel", with the credit this import offers (queue items,
  // topic bytes); repeated as a heartbeat.
  void say_hello(std::uint64_t now) {
    for (const Channel& c : channels_) {
      wire::Header h;
      h.type = wire::Type::kHello;
      // No queue items while the local channel cannot be opened (another import is its producer,
      // or it is refused): they would wait here for nothing.
      h.value = c.described && !c.open() ? 0 : spec_.queue_window;
      h.sequence = spec_.topic_window;
      port_.send_control(c, h);  // kFull (not connected): the next heartbeat repeats it
    }
    // Until every channel is described (just started, or the export restarted): often, so the
    // first HELLO after the connection comes up is not half a heartbeat away.
    bool all_described = true;
    for (const Channel& c : channels_) all_described = all_described && c.described;
    const std::uint64_t interval =
        all_described ? static_cast<std::uint64_t>(spec_.carrier.heartbeat_interval.count()) * kMs : 20 * kMs;
    next_hello_ns_ = now + interval;
  }

  Channel* find(std::string_view remote) {
    for (Channel& c : channels_) {
      if (c.route.remote == remote) return &c;
    }
    return nullptr;
  }

  void handle(const Incoming& in, std::uint64_t now) {
    wire::Header h;
    const wire::DecodeError error = in.parts < 1 || in.parts > 2 ? wire::DecodeError::kShort : wire::decode(in.header, &h);
    if (error != wire::DecodeError::kNone) {
      if (error == wire::DecodeError::kBadVersion && !version_reported_) {
        version_reported_ = true;
        log_event(cat("import ", carrier_->endpoint(), ": the export speaks another version of the bridge's "
                      "protocol (this one speaks ", static_cast<unsigned>(wire::kVersion), "): upgrade both"));
      }
      ++malformed_;
      return;
    }
    heard(now);
    Channel* c = find(h.name);
    if (c == nullptr) {
      ++unknown_channel_;
      return;
    }
    switch (h.type) {
      case wire::Type::kDescribe: return describe(*c, in.payload, h);
      case wire::Type::kAlive:
        if ((h.flags & wire::kHasPosition) != 0 && c->open() && c->held.empty()) c->link->at_position(*c, h);
        return;
      case wire::Type::kEvicted: return evicted(*c, h);
      case wire::Type::kNotExported:
        if (c->status.rejected++ == 0) {
          log_event(cat("import ", c->route.remote, ": ", carrier_->endpoint(), " does not export it"));
        }
        return;
      default: break;
    }
    const Pattern* pattern = pattern_for_data(h.type);
    if (pattern == nullptr) {
      ++malformed_;  // import-to-export types do not come this way
      return;
    }
    if (!take_data(*c, *pattern, h, in.payload, now) && c->link) {
      c->link->finished(*c, in.payload.size(), c->epoch);  // dropped: its credit comes back
    }
  }

  // A data message for `c`. False if it was dropped here (counted, or handed back).
  bool take_data(Channel& c, const Pattern& pattern, const wire::Header& h, std::span<const std::byte> payload,
                 std::uint64_t now) {
    const bool kind_matches = c.link && static_cast<ChannelKind>(c.description.kind) == pattern.kind;
    if (c.described && !c.open()) {
      // Its local channel is not open (a standby import, or one that is refused): an item goes
      // back to the export for another import; topic messages and frames are the open one's.
      if (kind_matches) c.link->cannot_take(c, port_, h, /*open=*/false);
      return false;
    }
    // For an open channel of that kind, with the payload the header announces, no larger than the
    // upstream channel allows (an honest export never sends more) or than the local channel holds
    // (plus what a batch adds).
    const std::uint64_t limit =
        kind_matches ? std::min(c.description.max_message, c.local_max_message) + c.link->batch_overhead() : 0;
    if (!c.open() || !kind_matches || h.value != payload.size() || payload.size() > limit) {
      ++c.status.rejected;
      // A frame or an item that can never go in is refused, so the export does not wait for it
      // (frames: its credit; items: a slot of its window). One for a channel that is not open
      // here yet stays unacknowledged: it is sent again once the channel opens.
      if (c.open() && kind_matches) c.link->cannot_take(c, port_, h, /*open=*/true);
      return false;
    }
    if (!c.held.empty()) return hold(c, h, payload, 0, now);  // behind what waits: in order
    std::size_t offset = 0;
    if (deliver(c, h, payload, &offset)) {
      c.link->finished(c, payload.size(), c.epoch);
      return true;
    }
    return hold(c, h, payload, offset, now);
  }

  // The export will not send this channel for a while: this import broke a bound it sets (a
  // lossless topic held back too long, queue items not acknowledged in time). What this import
  // holds is still delivered; it asks again with its hellos, and the gap is counted then.
  void evicted(Channel& c, const wire::Header& h) {
    ++c.status.evictions;
    const bool held_back = h.value == static_cast<std::uint64_t>(wire::EvictReason::kHeldBack);
    log_event(cat("import ", c.route.remote, " -> ", c.route.local, ": evicted by the export: ",
                  held_back ? "this side held the lossless topic back" : "items were not acknowledged",
                  " for more than ", h.sequence, " ms; asking again"));
  }

  // Keeps a message for later, within what this import offered. False: beyond it (an export that
  // ignores credit): dropped, counted, handed back (queue items).
  bool hold(Channel& c, const wire::Header& h, std::span<const std::byte> payload, std::size_t offset,
            std::uint64_t now) {
    if (!c.link->may_hold(c, c.held.size(), c.held_bytes, payload.size())) {
      ++c.status.rejected;
      c.link->cannot_take(c, port_, h, /*open=*/false);
      return false;
    }
    Held& m = c.held.emplace_back();
    m.header = h;
    m.name = std::string(h.name);
    m.header.name = m.name;  // the copy's own bytes (the carrier's go with the next receive)
    m.payload.assign(payload.begin(), payload.end());
    m.offset = offset;
    m.epoch = c.epoch;
    m.since_ns = m.arrived_ns = now;
    c.held_bytes += payload.size();
    return true;
  }

  // Delivers what `c` holds, in order, while its local channel takes it.
  void deliver_held(Channel& c, std::uint64_t now) {
    while (!c.held.empty()) {
      if (!c.open() && !open_with_description(c)) {
        // Its local channel went (removed or broken) and cannot be opened: what it held is
        // dropped and counted.
        for (const Held& m : c.held) {
          c.link->cannot_take(c, port_, m.header, /*open=*/false);
          c.link->finished(c, m.payload.size(), m.epoch);
        }
        c.status.rejected += c.held.size();
        c.held.clear();
        c.held_bytes = 0;
        return;
      }
      Held& m = c.held.front();
      if (!deliver(c, m.header, m.payload, &m.offset)) return;
      c.status.held_back_ns += now - m.since_ns;
      c.link->finished(c, m.payload.size(), m.epoch);
      c.held_bytes -= m.payload.size();
      c.held.pop_front();
      if (!c.held.empty()) c.held.front().since_ns = now;
    }
  }

  // Messages held longer than the link allows go back (queue items: to the export, for another
  // import, before its ack_timeout takes them back and this import would deliver them twice).
  void hand_back_late(Channel& c, std::uint64_t now) {
    if (c.held.empty()) return;
    const std::uint64_t limit_ms = c.link->hold_limit_ms(c);
    std::size_t handed = 0;
    while (limit_ms != 0 && !c.held.empty() && now - c.held.front().arrived_ns >= limit_ms * kMs) {
      Held& m = c.held.front();
      c.link->cannot_take(c, port_, m.header, /*open=*/false);
      c.link->finished(c, m.payload.size(), m.epoch);
      c.held_bytes -= m.payload.size();
      c.held.pop_front();
      ++handed;
    }
    if (handed > 0) {
      log_event(cat("import ", c.route.local, ": the local channel took nothing for ", limit_ms, " ms; handed ",
                    handed, " item(s) back to the export"));
    }
  }

  // --- opening the local channel ---

  void describe(Channel& c, std::span<const std::byte> payload, const wire::Header& h) {
    wire::Description d;
    if (!wire::decode(payload, &d) || pattern_for(static_cast<ChannelKind>(d.kind)) == nullptr) {
      ++malformed_;
      return;
    }
    const bool same = c.described && d.kind == c.description.kind && d.lossless == c.description.lossless;
    // Whatever a description says, this host will not make a channel bigger than this.
    const std::uint64_t item_bytes = d.kind == static_cast<std::uint32_t>(ChannelKind::kTopic) ? 1 : d.max_message;
    if (d.max_message == 0 || d.max_message > spec_.carrier.max_message_bytes || d.max_peers > kMaxPeers ||
        d.capacity == 0 || d.capacity > kMaxDescribedBytes / item_bytes) {
      ++c.status.rejected;
      if (c.status.rejected == 1) log_event(cat("import ", c.route.local, ": refused a description beyond the limits"));
      return;
    }
    c.epoch = h.value;
    if (same && c.open()) {
      c.description = d;
      c.link->described(c, h);
      return;
    }
    if (c.link && c.description.kind != d.kind) {  // another kind: another link
      c.held.clear();
      c.held_bytes = 0;
      c.link.reset();
    }
    if (c.link) c.link->close();
    if (!c.link) c.link = pattern_for(static_cast<ChannelKind>(d.kind))->make_import();
    c.description = d;
    c.described = true;
    if (!open_with_description(c)) {
      next_hello_ns_ = 0;  // withdraws the queue credit at once (hello says 0 while not open)
      return;
    }
    c.link->described(c, h);
    log_event(cat("import ", c.route.remote, " -> ", c.route.local, ": open (",
                  to_string(static_cast<ChannelKind>(d.kind)), d.lossless ? ", lossless" : "", ")"));
  }

  // Opens the local endpoint as c.description says (or, when the channel exists with other
  // limits, with its limits). False, logged and counted, if it cannot.
  bool open_with_description(Channel& c) {
    absl::Status s = c.link->open(c, /*exact=*/true);
    if (absl::IsFailedPrecondition(s)) s = c.link->open(c, /*exact=*/false);  // it exists: take its limits
    if (!s.ok()) {
      if (!c.open_failed) {
        log_event(cat("import ", c.route.local, ": cannot open (trying again every 500 ms): ", std::string(s.message())));
      }
      c.open_failed = true;
      return false;
    }
    if (c.open_failed) log_event(cat("import ", c.route.local, ": open now"));
    c.open_failed = false;
    // Made now: it is what hears that the channel was removed (check_removed), even for a
    // publisher that never waits.
    if (c.link->wait_fd() < 0) log_event(cat("import ", c.route.local, ": no descriptor: ", std::strerror(errno)));
    c.local_max_message = c.link->max_message();
    c.link->opened(c);
    c.link->set_upstream(carrier_->endpoint(), link_ == Link::kUp);
    return true;
  }

  // The local endpoint is gone (the channel removed, or broken): open it again now (the next
  // description says how, if this fails).
  void reopen_local(Channel& c, const std::string& why) {
    log_event(cat("import ", c.route.local, ": ", why, "; opening the local channel again"));
    c.link->close();
    if (!open_with_description(c)) {
      c.described = false;  // a fresh hello brings a fresh description
      next_hello_ns_ = 0;
    }
  }

  // A local channel removed by name (shmring rm) keeps working for endpoints already open, but
  // nobody new finds it: reopen. Looked at every 100 ms (it costs a system call or two).
  void check_removed(std::uint64_t now) {
    if (now < next_event_check_ns_) return;
    next_event_check_ns_ = now + 100 * kMs;
    for (Channel& c : channels_) {
      if (c.open() && has(c.link->take_wait_events(), WaitEvent::kRemoved)) {
        reopen_local(c, "the local channel was removed");
      }
    }
  }

  // --- delivery ---

  // False: the local channel has no room now. A batch is delivered from *offset on, which is
  // left at the record that found no room.
  bool deliver(Channel& c, const wire::Header& h, std::span<const std::byte> payload, std::size_t* offset) {
    std::string why;
    switch (c.link->deliver(c, port_, h, payload, offset, &why)) {
      case Delivery::kDone: return true;
      case Delivery::kNoRoom: return false;
      case Delivery::kBroken: reopen_local(c, why); return false;
    }
    return true;
  }

  ImportSpec spec_;
  std::unique_ptr<Carrier> carrier_;
  ImportPort port_;
  std::vector<Channel> channels_;
  std::uint64_t next_hello_ns_ = 0;
  std::uint64_t next_event_check_ns_ = 0;
  std::uint64_t refused_ = 0;
  std::uint64_t malformed_ = 0;
  std::uint64_t unknown_channel_ = 0;
  Link link_ = Link::kConnecting;
  std::uint64_t link_since_ns_ = monotonic_ns();
  std::uint64_t link_changes_ = 0;
  std::uint64_t last_heard_ns_ = 0;
  bool retry_reported_ = false;  // a failed connection attempt was logged in this state
  bool version_reported_ = false;
};

}  // namespace

absl::Status check_import_spec(const ImportSpec& spec) {
  if (spec.channels.empty()) return absl::InvalidArgumentError("import: no channels");
  for (const ChannelRoute& r : spec.channels) {
    for (const std::string& name : {r.remote, r.local}) {
      if (absl::Status s = validate_channel_name(name); !s.ok()) return s;
      if (name.size() > wire::kMaxName) return absl::InvalidArgumentError("channel name too long");
    }
  }
  if (spec.topic_window == 0 || spec.topic_window > kMaxTopicWindow) {
    return absl::InvalidArgumentError(cat("topic_window must be 1..", kMaxTopicWindow, " bytes"));
  }
  return check_zmq_options(spec.connect, spec.carrier, /*server=*/false);
}

absl::StatusOr<std::unique_ptr<Side>> make_import_side(const ImportSpec& spec) {
  if (absl::Status s = check_import_spec(spec); !s.ok()) return s;
  ImportSpec checked = spec;
  if (checked.carrier.max_message_bytes == 0) checked.carrier.max_message_bytes = kDefaultImportMaxMessage;
  // A data message may carry more than its largest message (a topic batch: wire.h).
  CarrierOptions carrier_options = checked.carrier;
  carrier_options.max_message_bytes += wire::kMaxBatchOverhead;
  if (carrier_options.receive_queue == 0) {
    carrier_options.receive_queue = std::min(carrier_options.high_water_mark, kImportReceiveQueue);
  }
  absl::StatusOr<std::unique_ptr<Carrier>> carrier = make_zmq_client(checked.connect, carrier_options);
  if (!carrier.ok()) return carrier.status();
  return std::unique_ptr<Side>(new ImportSide(checked, *std::move(carrier)));
}

}  // namespace shmring::bridge
