// The import side. One client carrier to one export; per imported channel the local endpoint that
// feeds it (topic/frames publisher, queue producer), opened with the settings the export describes.
//
// Topic loss accounting: the export sends each message's (origin, channel incarnation, sequence).
// The import expects the next sequence; a jump is exactly the messages lost on the way (a full
// link, a partition, a bridge restart) and goes to the local publisher's lost counter; a
// sequence already delivered (an export restarted and read the ring again) is dropped. Where the
// expectation starts: the local topic itself remembers the last upstream position delivered
// (TopicPublisher::try_send_from), so an import killed at any instruction resumes exactly.
//
// One message at a time is held when the local channel has no room (lossless topic, queue): the
// import stops reading the carrier until it goes in, so the link fills and the export stops
// reading its channel: back-pressure end to end.
#include "import_side.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "shmring/core/detail/message.h"
#include "shmring/core/clock.h"
#include "shmring/transport/frame.h"
#include "shmring/transport/queue.h"
#include "shmring/transport/topic.h"
#include "wire.h"

namespace shmring::bridge {

using shmring::detail::cat;
namespace {

constexpr std::uint64_t kMs = 1'000'000;
constexpr int kBatch = 2048;              // messages per step
constexpr std::size_t kTicketMemory = 65536;  // queue tickets remembered to drop redeliveries
constexpr std::uint64_t kMaxDescribedBytes = 4ull << 30;  // the largest channel a description may ask for

struct Ack {
  std::uint64_t incarnation = 0;
  std::uint64_t sequence = 0;
  std::uint8_t flags = 0;
};

struct Channel {
  ChannelRoute route;
  bool described = false;
  wire::Description description;     // as the export describes its channel
  std::uint64_t local_max_message = 0;  // of the local channel (it may have existed already)
  std::optional<TopicPublisher> topic;
  std::optional<QueueProducer> queue;
  std::optional<FramePublisher> frames;
  // Topic: the next upstream message expected (valid once origin != 0).
  UpstreamPosition expected;
  // Queue: tickets delivered lately (of ticket_incarnation), to drop an item sent again; acks
  // the link refused, sent again.
  std::uint64_t ticket_incarnation = 0;  // the upstream queue the remembered tickets belong to
  std::deque<std::uint64_t> ticket_order;
  std::unordered_set<std::uint64_t> tickets;
  std::vector<Ack> unsent_acks;
  std::uint64_t next_frame = 0;
  // Described but not open (the local channel has another live publisher or producer, or refuses
  // us): opened again every 500 ms, so a standby import takes over when the active one dies.
  bool open_failed = false;
  std::uint64_t next_open_ns = 0;
  ChannelStatus status;

  bool open() const { return topic.has_value() || queue.has_value() || frames.has_value(); }
  int wait_fd() const {
    if (topic) return topic->wait_fd();
    if (queue) return queue->wait_fd();
    if (frames) return frames->wait_fd();
    return -1;
  }
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
      : spec_(spec), carrier_(std::move(carrier)) {
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
    if (now >= next_hello_ns_) {
      hello();
      // Until every channel is described (just started, or the export restarted): often, so the
      // first HELLO after the connection comes up is not half a heartbeat away.
      bool all_described = true;
      for (const Channel& c : channels_) all_described = all_described && c.described;
      const std::uint64_t interval = all_described
                                         ? static_cast<std::uint64_t>(spec_.carrier.heartbeat_interval.count()) * kMs
                                         : 20 * kMs;
      next_hello_ns_ = now + interval;
    }
    check_removed(now);
    for (Channel& c : channels_) {
      if (c.described && !c.open() && now >= c.next_open_ns) {
        c.next_open_ns = now + 500 * kMs;
        if (open_with_description(c)) next_hello_ns_ = now;  // queue credit again
      }
      flush_acks(c);
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
    for (int i = 0; i < kBatch && carrier_->try_receive(&in); ++i) {
      handle(in, now);
      if (held_) return;  // stop reading: back-pressure
    }
  }

  void plan_wait(std::uint64_t now, WaitPlan* plan) override {
    plan->until(next_hello_ns_);
    if (held_) {
      // The local channel's descriptor says when there is room (try_send armed it).
      const int fd = channels_[held_->channel].wait_fd();
      plan->add(fd);
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
  void hello() {
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
    switch (h.type) {
      case wire::Type::kDescribe: describe(*c, in.payload, h); return;
      case wire::Type::kNotExported:
        if (c->status.rejected++ == 0) {
          log_event(cat("import ", c->route.remote, ": ", carrier_->endpoint(), " does not export it"));
        }
        return;
      case wire::Type::kTopic:
      case wire::Type::kItem:
      case wire::Type::kFrame: break;
      default: ++malformed_; return;  // import-to-export types do not come this way
    }
    // Data: for an open channel of that kind, with the payload the header announces.
    const auto kind = h.type == wire::Type::kTopic  ? ChannelKind::kTopic
                      : h.type == wire::Type::kItem ? ChannelKind::kQueue
                                                    : ChannelKind::kFrames;
    // Larger than the upstream channel allows (an honest export never sends that) or than the
    // local channel holds: refused. A topic batch may hold up to 64 KiB more (records, wire.h).
    const std::uint64_t limit = std::min(c->description.max_message, c->local_max_message) +
                                (kind == ChannelKind::kTopic ? wire::kRecordHeader + (64 << 10) : 0);
    if (c->described && !c->open()) {
      // Its local channel is not open (a standby import, or one that is refused): an item goes
      // back to the export for another import; topic messages and frames are the open one's.
      if (kind == ChannelKind::kQueue) ack(*c, h, wire::kNotTaken);
      return;
    }
    if (!c->open() || static_cast<ChannelKind>(c->description.kind) != kind || h.value != in.payload.size() ||
        in.payload.size() > limit) {
      ++c->status.rejected;
      // A frame or an item that can never go in is refused, so the export does not wait for it
      // (frames: its credit; items: a slot of its window). One for a channel that is not open
      // here yet stays unacknowledged: it is sent again once the channel opens.
      if (c->open() && static_cast<ChannelKind>(c->description.kind) == kind && kind != ChannelKind::kTopic) {
        ack(*c, h, wire::kRefused);
      }
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
    if (!wire::decode(payload, &d) || d.kind < 1 || d.kind > 3) {
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
      adopt_baseline(c, h);
      return;
    }
    c.topic.reset();
    c.queue.reset();
    c.frames.reset();
    c.description = d;
    c.described = true;
    if (!open_with_description(c)) {
      next_hello_ns_ = 0;  // withdraws the queue credit at once (hello says 0 while not open)
      return;
    }
    if (c.topic) adopt_baseline(c, h);
    log_event(cat("import ", c.route.remote, " -> ", c.route.local, ": open (",
                           to_string(static_cast<ChannelKind>(d.kind)), d.lossless ? ", lossless" : "", ")"));
  }

  // Where loss counting starts when this import knows nothing of the upstream channel yet (first
  // contact, or the channel there was created anew): the export's baseline. An expectation of the
  // same upstream channel (kept across a reconnection, or read back from the local topic after a
  // restart) wins: the gap since then is real loss.
  void adopt_baseline(Channel& c, const wire::Header& h) {
    if (!c.topic || (h.flags & wire::kHasBaseline) == 0) return;
    UpstreamPosition& e = c.expected;
    if (e.origin == h.origin && e.incarnation == h.incarnation) return;
    if (e.origin != 0) ++c.status.resets;
    e = UpstreamPosition{h.origin, h.incarnation, h.sequence};
  }

  // Opens the local endpoint as c.description says (or, when the channel exists with other
  // limits, with its limits). False, logged and counted, if it cannot.
  bool open_with_description(Channel& c) {
    absl::Status s = open_local(c, /*exact=*/true);
    if (absl::IsFailedPrecondition(s)) s = open_local(c, /*exact=*/false);  // it exists: take its limits
    if (!s.ok()) {
      if (!c.open_failed) log_event(cat("import ", c.route.local, ": cannot open (trying again every 500 ms): ",
                                        std::string(s.message())));
      c.open_failed = true;
      return false;
    }
    if (c.open_failed) log_event(cat("import ", c.route.local, ": open now"));
    c.open_failed = false;
    // Made now: it is what hears that the channel was removed (check_removed), even for a
    // publisher that never waits.
    if (c.wait_fd() < 0) log_event(cat("import ", c.route.local, ": no descriptor: ", std::strerror(errno)));
    if (c.topic) {
      c.expected = c.topic->upstream_resume();
      c.local_max_message = c.topic->max_message();
    } else if (c.queue) {
      c.local_max_message = c.queue->max_message();
    } else if (c.frames) {
      c.local_max_message = c.frames->max_message();
    }
    return true;
  }

  absl::Status open_local(Channel& c, bool exact) {
    const wire::Description& d = c.description;
    switch (static_cast<ChannelKind>(d.kind)) {
      case ChannelKind::kTopic: {
        TopicOptions o = limits<TopicOptions>(d, exact);
        o.lossless = d.lossless != 0;
        return open_into<TopicPublisher>(c.route.local, o, &c.topic);
      }
      case ChannelKind::kQueue:
        return open_into<QueueProducer>(c.route.local, limits<QueueOptions>(d, exact), &c.queue);
      case ChannelKind::kFrames:
        return open_into<FramePublisher>(c.route.local, limits<FrameOptions>(d, exact), &c.frames);
      case ChannelKind::kService: break;  // not carried yet
    }
    return absl::InvalidArgumentError("unknown kind");
  }

  // The described limits (exact), or none: whatever the existing channel has.
  template <typename Options>
  static Options limits(const wire::Description& d, bool exact) {
    Options o;
    if (exact) {
      o.capacity = d.capacity;
      o.max_message = d.max_message;
      o.max_peers = d.max_peers;
    }
    return o;
  }

  template <typename Endpoint, typename Options>
  static absl::Status open_into(const std::string& name, const Options& o, std::optional<Endpoint>* slot) {
    absl::StatusOr<Endpoint> opened = Endpoint::open(name, o);
    if (!opened.ok()) return opened.status();
    slot->emplace(*std::move(opened));
    return absl::OkStatus();
  }

  // --- delivery ---

  // False: the local channel has no room now (hold the message and stop reading). A topic batch
  // is delivered from *offset on, which is left at the record that found no room.
  bool deliver(std::size_t index, const wire::Header& h, std::span<const std::byte> payload,
               std::size_t* offset) {
    Channel& c = channels_[index];
    switch (h.type) {
      case wire::Type::kTopic: return deliver_topic_batch(c, h, payload, offset);
      case wire::Type::kItem: return deliver_item(c, h, payload);
      default: return deliver_frame(c, h, payload);
    }
  }

  bool deliver_topic_batch(Channel& c, const wire::Header& h, std::span<const std::byte> payload,
                           std::size_t* offset) {
    const std::uint64_t max = std::min(c.description.max_message, c.local_max_message);
    wire::TopicRecord record;
    while (*offset < payload.size()) {
      std::size_t next = *offset;
      if (!wire::next_record(payload, &next, &record)) {
        ++c.status.rejected;  // a record that does not fit: the rest of the batch is garbage
        return true;
      }
      if (record.bytes.size() > max) {
        ++c.status.rejected;  // no honest export sends that
      } else if (!deliver_topic(c, h, record)) {
        return false;
      }
      *offset = next;
    }
    return true;
  }

  bool deliver_topic(Channel& c, const wire::Header& h, const wire::TopicRecord& m) {
    UpstreamPosition& e = c.expected;
    if (e.origin != h.origin || e.incarnation != h.incarnation) {
      // Another upstream channel (recreated there, or the first message ever): a new baseline.
      if (e.origin != 0) {
        ++c.status.resets;
        log_event(cat("import ", c.route.local, ": upstream channel changed; counting from its sequence ",
                      m.sequence));
      }
      e = UpstreamPosition{h.origin, h.incarnation, m.sequence};
    }
    if (m.sequence < e.sequence) {
      ++c.status.duplicates;  // delivered already
      return true;
    }
    if (m.sequence > e.sequence) {
      const std::uint64_t gap = m.sequence - e.sequence;
      c.status.lost += gap;
      c.topic->count_upstream_lost(gap);
      e.sequence = m.sequence;
    }
    const ChannelResult r = c.topic->try_send_from(e, m.bytes);
    if (r == ChannelResult::kWouldBlock) return false;
    if (r == ChannelResult::kOk) {
      ++c.status.messages;
      c.status.bytes += m.bytes.size();
    } else {
      ++c.status.rejected;  // kTooLarge (the local topic is smaller) and the like: counted, dropped
    }
    e.sequence = m.sequence + 1;
    return true;
  }

  bool deliver_item(Channel& c, const wire::Header& h, std::span<const std::byte> payload) {
    if (h.incarnation != c.ticket_incarnation) {  // another upstream queue: its tickets start over
      c.ticket_incarnation = h.incarnation;
      c.tickets.clear();
      c.ticket_order.clear();
    }
    if (c.tickets.count(h.sequence) != 0) {
      ++c.status.duplicates;  // sent again after a lost ack or an export restart: already here
      ack(c, h, 0);
      return true;
    }
    const ChannelResult r = c.queue->try_send(payload);
    if (r == ChannelResult::kWouldBlock) return false;
    if (r == ChannelResult::kTooLarge) {  // the local queue's items are smaller: it can never go in
      ++c.status.rejected;
      ack(c, h, wire::kRefused);
      return true;
    }
    if (r != ChannelResult::kOk) {  // the local queue is gone or broken: open it again, then retry
      reopen_local(c, cat("send said ", to_string(r)));
      return false;
    }
    ++c.status.messages;
    c.status.bytes += payload.size();
    if ((h.flags & wire::kRedelivered) != 0) ++c.status.redelivered;
    c.tickets.insert(h.sequence);
    c.ticket_order.push_back(h.sequence);
    if (c.ticket_order.size() > kTicketMemory) {
      c.tickets.erase(c.ticket_order.front());
      c.ticket_order.pop_front();
    }
    ack(c, h, 0);
    return true;
  }

  bool deliver_frame(Channel& c, const wire::Header& h, std::span<const std::byte> payload) {
    const ChannelResult r = c.frames->try_send(payload);
    if (r == ChannelResult::kOk) {
      ++c.status.messages;
      c.status.bytes += payload.size();
    } else {
      ++c.status.dropped;  // every buffer pinned by slow readers: newest first, this one is skipped
    }
    // Frames skipped upstream (newest first over a slow link) are counted, not delivered later.
    if (c.next_frame != 0 && h.sequence > c.next_frame) c.status.lost += h.sequence - c.next_frame;
    c.next_frame = h.sequence + 1;
    ack(c, h, 0);
    return true;
  }

  bool deliver_held(std::uint64_t now) {
    if (!deliver(held_->channel, held_->header, held_->payload, &held_->offset)) return false;
    channels_[held_->channel].status.held_back_ns += now - held_->since_ns;
    held_.reset();
    return true;
  }

  // Acknowledges item (or frame) `of`, of its upstream channel incarnation; kept and sent again
  // while the link refuses it.
  void ack(Channel& c, const wire::Header& of, std::uint8_t flags) {
    const Ack a{of.incarnation, of.sequence, flags};
    if (!c.unsent_acks.empty() || !send_ack(c, a)) c.unsent_acks.push_back(a);
  }

  bool send_ack(const Channel& c, const Ack& a) {
    wire::Header h;
    h.type = wire::Type::kAck;
    h.flags = a.flags;
    h.incarnation = a.incarnation;
    h.sequence = a.sequence;
    h.name = c.route.remote;
    wire::encode(h, &control_);
    return carrier_->try_send({}, control_, {}) == SendResult::kOk;
  }

  void flush_acks(Channel& c) {
    std::size_t sent = 0;
    while (sent < c.unsent_acks.size() && send_ack(c, c.unsent_acks[sent])) ++sent;
    c.unsent_acks.erase(c.unsent_acks.begin(), c.unsent_acks.begin() + static_cast<std::ptrdiff_t>(sent));
  }

  // The local endpoint is gone (the channel removed, or broken): open it again now (the next
  // description says how, if this fails).
  void reopen_local(Channel& c, const std::string& why) {
    log_event(cat("import ", c.route.local, ": ", why, "; opening the local channel again"));
    c.topic.reset();
    c.queue.reset();
    c.frames.reset();
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
      if (!c.open()) continue;
      WaitEvent events = WaitEvent::kNone;
      if (c.topic) events = c.topic->take_wait_events();
      if (c.queue) events = c.queue->take_wait_events();
      if (c.frames) events = c.frames->take_wait_events();
      if (has(events, WaitEvent::kRemoved)) reopen_local(c, "the local channel was removed");
    }
  }

  ImportSpec spec_;
  std::unique_ptr<Carrier> carrier_;
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
  // A topic batch carries up to 64 KiB more than its largest message (wire.h).
  CarrierOptions carrier_options = checked.carrier;
  carrier_options.max_message_bytes += wire::kRecordHeader + (64 << 10);
  absl::StatusOr<std::unique_ptr<Carrier>> carrier = make_zmq_client(checked.connect, carrier_options);
  if (!carrier.ok()) return carrier.status();
  return std::unique_ptr<Side>(new ImportSide(checked, *std::move(carrier)));
}

}  // namespace shmring::bridge
