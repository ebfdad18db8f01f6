// The import side: one client carrier to one export and the imported channels; each channel's
// pattern protocol is its link (link.h), which feeds the local channel (topic/frames publisher,
// queue producer) opened with the settings the export describes.
//
// One message at a time is held when the local channel has no room (lossless topic, queue): the
// import stops reading the carrier until it goes in, so the link fills and the export stops
// reading its channel: back-pressure end to end.
#include "import_side.h"

#include <cerrno>
#include <cstring>
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
constexpr std::uint64_t kMaxDescribedBytes = 4ull << 30;  // the largest channel a description may ask for

struct Channel : ImportChannel {
  // Made by the first description (its kind); kept while the kind stays.
  std::unique_ptr<ImportLink> link;
  // Described but not open (the local channel has another live publisher or producer, or refuses
  // us): opened again every 500 ms, so a standby import takes over when the active one dies.
  bool open_failed = false;
  std::uint64_t next_open_ns = 0;

  bool open() const { return link && link->is_open(); }
};

// A message the local channel had no room for.
struct Held {
  std::size_t channel = 0;
  wire::Header header;
  std::string name;
  std::vector<std::byte> payload;
  std::size_t offset = 0;  // topic batch: the first record not delivered yet
  std::uint64_t since_ns = 0;
};

class ImportSide final : public Side {
 public:
  ImportSide(const ImportSpec& spec, std::unique_ptr<Carrier> carrier)
      : spec_(spec), carrier_(std::move(carrier)), port_(*carrier_) {
    for (const ChannelRoute& r : spec.channels) {
      Channel c;
      c.route = r;
      c.status.direction = "import";
      c.status.channel = r.local;
      c.status.remote = r.remote;
      c.status.endpoint = carrier_->endpoint();
      channels_.push_back(std::move(c));
    }
  }

  void step(std::uint64_t now) override {
    take_carrier_events(now);
    if (now >= next_hello_ns_) say_hello(now);
    check_removed(now);
    for (Channel& c : channels_) {
      if (c.described && !c.open() && now >= c.next_open_ns) {
        c.next_open_ns = now + 500 * kMs;
        if (open_with_description(c)) next_hello_ns_ = now;  // queue credit again
      }
      port_.flush_acks(c);
    }
    if (held_ && !channels_[held_->channel].open()) {
      // Its local channel went (removed or broken): the message goes into the reopened one, or,
      // if it cannot be opened, is dropped and counted.
      Channel& c = channels_[held_->channel];
      if (!open_with_description(c)) {
        ++c.status.rejected;
        held_.reset();
      }
    }
    if (held_ && !deliver_held(now)) return;
    Incoming in;
    for (int i = 0; i < kReceiveBatch && carrier_->try_receive(&in); ++i) {
      handle(in, now);
      if (held_) return;  // stop reading: back-pressure
    }
  }

  void plan_wait(std::uint64_t now, WaitPlan* plan) override {
    plan->until(next_hello_ns_);
    if (held_) {
      // The local channel's descriptor says when there is room (try_send armed it).
      plan->add(channels_[held_->channel].link->wait_fd());
      plan->until(now + 10 * kMs);
      return;
    }
    plan->add(carrier_->descriptor());
    if (carrier_->has_input()) plan->again = true;
    for (const Channel& c : channels_) {
      if (!c.unsent_acks.empty()) plan->until(now + 5 * kMs);  // the link refused them: retry
    }
  }

  void append_status(BridgeStatus* status) const override {
    for (const Channel& c : channels_) {
      ChannelStatus s = c.status;
      s.open = c.open();
      s.peers = c.described ? 1 : 0;
      s.kind = static_cast<ChannelKind>(c.description.kind != 0 ? c.description.kind : 2);
      s.lossless = c.description.lossless != 0;
      if (held_ && held_->channel == static_cast<std::size_t>(&c - channels_.data())) {
        s.held_back_ns += monotonic_ns() - held_->since_ns;
      }
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
      if (refused_ == 0) {
        log_event(cat("import ", carrier_->endpoint(), ": the handshake failed (CURVE: wrong server key, "
                      "a client key the export does not accept, or CURVE on one side only); retrying"));
      }
      refused_ += events.refused;
    }
    if (events.connected > 0) {
      // Maybe a new export process: it must hear from us before it sends anything.
      for (Channel& c : channels_) c.described = false;
      next_hello_ns_ = now;
    }
  }

  // A HELLO per channel: "send me this channel", with the queue credit; repeated as a heartbeat.
  void say_hello(std::uint64_t now) {
    for (const Channel& c : channels_) {
      wire::Header h;
      h.type = wire::Type::kHello;
      // No queue items while the local channel cannot be opened (another import is its producer,
      // or it is refused): they would wait here for nothing.
      h.value = c.described && !c.open() ? 0 : spec_.queue_window;
      h.name = c.route.remote;
      wire::encode(h, &control_);
      carrier_->try_send({}, control_, {});  // kFull (not connected): the next heartbeat repeats it
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
    if (in.parts < 1 || in.parts > 2 || wire::decode(in.header, &h) != wire::DecodeError::kNone) {
      ++malformed_;
      return;
    }
    Channel* c = find(h.name);
    if (c == nullptr) {
      ++unknown_channel_;
      return;
    }
    if (h.type == wire::Type::kDescribe) return describe(*c, in.payload, h);
    if (h.type == wire::Type::kNotExported) {
      if (c->status.rejected++ == 0) {
        log_event(cat("import ", c->route.remote, ": ", carrier_->endpoint(), " does not export it"));
      }
      return;
    }
    const Pattern* pattern = pattern_for_data(h.type);
    if (pattern == nullptr) {
      ++malformed_;  // import-to-export types do not come this way
      return;
    }
    // Data: for an open channel of that kind, with the payload the header announces, no larger
    // than the upstream channel allows (an honest export never sends more) or than the local
    // channel holds (plus what a batch adds).
    const bool kind_matches = c->link && static_cast<ChannelKind>(c->description.kind) == pattern->kind;
    if (c->described && !c->open()) {
      // Its local channel is not open (a standby import, or one that is refused): an item goes
      // back to the export for another import; topic messages and frames are the open one's.
      if (kind_matches) c->link->cannot_take(*c, port_, h, /*open=*/false);
      return;
    }
    const std::uint64_t limit = kind_matches
                                    ? std::min(c->description.max_message, c->local_max_message) +
                                          c->link->batch_overhead()
                                    : 0;
    if (!c->open() || !kind_matches || h.value != in.payload.size() || in.payload.size() > limit) {
      ++c->status.rejected;
      // A frame or an item that can never go in is refused, so the export does not wait for it
      // (frames: its credit; items: a slot of its window). One for a channel that is not open
      // here yet stays unacknowledged: it is sent again once the channel opens.
      if (c->open() && kind_matches) c->link->cannot_take(*c, port_, h, /*open=*/true);
      return;
    }
    const std::size_t index = static_cast<std::size_t>(c - channels_.data());
    std::size_t offset = 0;
    if (!deliver(index, h, in.payload, &offset)) {
      held_.emplace();
      held_->channel = index;
      held_->header = h;
      held_->name = std::string(h.name);
      held_->header.name = held_->name;  // the copy's own bytes (the carrier's go with the next receive)
      held_->payload.assign(in.payload.begin(), in.payload.end());
      held_->offset = offset;
      held_->since_ns = now;
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
    if (same && c.open()) {
      c.link->described(c, h);
      return;
    }
    if (c.link && c.description.kind != d.kind) c.link.reset();  // another kind: another link
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

  // False: the local channel has no room now (hold the message and stop reading). A batch is
  // delivered from *offset on, which is left at the record that found no room.
  bool deliver(std::size_t index, const wire::Header& h, std::span<const std::byte> payload, std::size_t* offset) {
    Channel& c = channels_[index];
    std::string why;
    switch (c.link->deliver(c, port_, h, payload, offset, &why)) {
      case Delivery::kDone: return true;
      case Delivery::kNoRoom: return false;
      case Delivery::kBroken: reopen_local(c, why); return false;
    }
    return true;
  }

  bool deliver_held(std::uint64_t now) {
    if (!deliver(held_->channel, held_->header, held_->payload, &held_->offset)) return false;
    channels_[held_->channel].status.held_back_ns += now - held_->since_ns;
    held_.reset();
    return true;
  }

  ImportSpec spec_;
  std::unique_ptr<Carrier> carrier_;
  ImportPort port_;
  std::vector<Channel> channels_;
  std::optional<Held> held_;
  std::vector<std::byte> control_;
  std::uint64_t next_hello_ns_ = 0;
  std::uint64_t next_event_check_ns_ = 0;
  std::uint64_t refused_ = 0;
  std::uint64_t malformed_ = 0;
  std::uint64_t unknown_channel_ = 0;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Side>> make_import_side(const ImportSpec& spec) {
  if (spec.channels.empty()) return absl::InvalidArgumentError("import: no channels");
  for (const ChannelRoute& r : spec.channels) {
    for (const std::string& name : {r.remote, r.local}) {
      if (absl::Status s = validate_channel_name(name); !s.ok()) return s;
      if (name.size() > wire::kMaxName) return absl::InvalidArgumentError("channel name too long");
    }
  }
  ImportSpec checked = spec;
  if (checked.carrier.max_message_bytes == 0) checked.carrier.max_message_bytes = kDefaultImportMaxMessage;
  // A data message may carry more than its largest message (a topic batch: wire.h).
  CarrierOptions carrier_options = checked.carrier;
  carrier_options.max_message_bytes += wire::kMaxBatchOverhead;
  absl::StatusOr<std::unique_ptr<Carrier>> carrier = make_zmq_client(checked.connect, carrier_options);
  if (!carrier.ok()) return carrier.status();
  return std::unique_ptr<Side>(new ImportSide(checked, *std::move(carrier)));
}

}  // namespace shmring::bridge
