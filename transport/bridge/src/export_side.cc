// The export side. One server carrier; per exported channel a local endpoint (topic and frames:
// a subscriber; queues: a pool of consumers, one per item in flight); per import connected (a
// peer) what it asked for and what it holds.
//
// Each import says which channels it wants with a HELLO, repeated as a heartbeat; a peer not heard
// from for peer_timeout is forgotten. A channel's first data to a peer follows its DESCRIBE, on
// the same ordered connection.
#include "export_side.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <optional>
#include <string>
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
constexpr std::uint64_t kOpenRetryNs = 500 * kMs;   // a channel that does not exist yet
constexpr std::uint64_t kFullRetryNs = 1 * kMs;     // a link that said kFull
constexpr int kBatch = 512;                         // messages per channel per step
constexpr std::uint32_t kFrameCredit = 2;           // frames in flight per peer (newest first)

// A queue consumer of the pool and the item it holds for a peer.
struct QueueSlot {
  QueueConsumer consumer;
  QueueView view;        // held until the peer acknowledges (or this process dies: redelivered)
  bool sent = false;     // view sent to `peer`, waiting for its ack
  bool resend = false;   // sent before to a peer that went away
  PeerId peer;
};

struct Channel {
  std::string name;
  ChannelKind kind = ChannelKind::kTopic;
  bool open = false;
  std::uint64_t incarnation = 0;
  std::uint64_t next_open_ns = 0;
  wire::Description description;
  std::optional<TopicSubscriber> topic;
  std::optional<FrameSubscriber> frames;
  std::vector<QueueSlot> queue;
  std::size_t queue_probe = 0;  // the consumer whose descriptor is armed (it said kWouldBlock)
  // A topic message refused by some peers' full links (lossless: sent again until taken).
  std::vector<std::byte> buffer;
  std::vector<std::byte> header;
  std::vector<PeerId> pending;
  std::uint64_t pending_since_ns = 0;
  std::uint64_t next_frame_ns = 0;  // max_rate
  ChannelStatus status;
};

struct PerChannel {
  bool wants = false;
  bool described = false;
  std::uint32_t credit = 0;     // queue: items it accepts in flight; frames: kFrameCredit
  std::uint32_t in_flight = 0;
};

struct Peer {
  PeerId id;
  std::uint64_t last_seen_ns = 0;
  std::vector<PerChannel> channels;
};

std::string printable(const PeerId& id) {
  std::string out;
  for (unsigned char c : id) {
    char hex[4];
    std::snprintf(hex, sizeof hex, "%02x", c);
    out += hex;
  }
  return out;
}

class ExportSide final : public Side {
 public:
  ExportSide(const ExportSpec& spec, std::unique_ptr<Carrier> carrier, std::uint64_t origin)
      : spec_(spec), carrier_(std::move(carrier)), origin_(origin) {
    for (const std::string& name : spec.channels) {
      Channel c;
      c.name = name;
      c.status.direction = "export";
      c.status.channel = name;
      c.status.remote = name;
      c.status.endpoint = carrier_->endpoint();
      channels_.push_back(std::move(c));
    }
  }

  void step(std::uint64_t now) override {
    const CarrierEvents events = carrier_->take_events();
    if (events.refused > 0) {
      refused_ += events.refused;
      log_event(cat("export ", carrier_->endpoint(), ": refused ", events.refused,
                    " connection(s) that failed the handshake (CURVE key not authorised, or no CURVE)"));
    }
    if (events.disconnected > 0) {
      // Some import's connection went (a ROUTER does not say whose): each peer must say hello
      // within two heartbeats (live ones do every heartbeat), so what a dead one held (queue
      // items in flight, lossless sends it was owed) moves on in about a second, not peer_timeout.
      const std::uint64_t heartbeat = static_cast<std::uint64_t>(spec_.carrier.heartbeat_interval.count()) * kMs;
      const std::uint64_t timeout = static_cast<std::uint64_t>(spec_.carrier.peer_timeout.count()) * kMs;
      for (auto& [id, p] : peers_) {
        if (timeout > 2 * heartbeat) p.last_seen_ns = std::min(p.last_seen_ns, now - (timeout - 2 * heartbeat));
      }
    }
    receive_all(now);
    expire_peers(now);
    check_removed(now);
    for (Channel& c : channels_) {
      if (!c.open) {
        if (now >= c.next_open_ns) try_open(c, now);
        if (!c.open) continue;
      }
      describe_to_peers(c);
      switch (c.kind) {
        case ChannelKind::kTopic: move_topic(c, now); break;
        case ChannelKind::kQueue: move_queue(c); break;
        case ChannelKind::kFrames: move_frames(c, now); break;
        case ChannelKind::kService: break;  // not carried yet (try_open refuses it)
      }
    }
  }

  void plan_wait(std::uint64_t now, WaitPlan* plan) override {
    plan->add(carrier_->descriptor());
    if (carrier_->has_input()) plan->again = true;
    plan->until(now + spec_.carrier.heartbeat_interval.count() * kMs);  // peer expiry
    for (Channel& c : channels_) {
      if (!c.open) {
        plan->until(c.next_open_ns);
        continue;
      }
      switch (c.kind) {
        case ChannelKind::kTopic:
          if (!c.pending.empty()) {
            plan->until(now + kFullRetryNs);  // a full link: retry soon
          } else {
            // Read even with no import connected (a lossless topic's publisher must not wait for
            // nobody); what an import misses while away is counted as a gap when it is back.
            plan->add(c.topic->wait_fd());
          }
          break;
        case ChannelKind::kQueue: {
          const bool room = peer_with_room(c) != nullptr;
          if (room && has_unsent(c)) plan->until(now + kFullRetryNs);  // a full link: retry soon
          // The probe said kWouldBlock, which armed its descriptor; one holding an item has not.
          if (room && idle_slot(c) != nullptr && !c.queue[c.queue_probe].view.ok()) {
            plan->add(c.queue[c.queue_probe].consumer.wait_fd());
          } else if (room && idle_slot(c) != nullptr) {
            plan->until(now + kFullRetryNs);
          }
          break;
        }
        case ChannelKind::kFrames:
          if (peer_with_frame_credit(c)) {
            if (now < c.next_frame_ns) {
              plan->until(c.next_frame_ns);
            } else {
              plan->add(c.frames->wait_fd());
            }
          }
          break;
        case ChannelKind::kService: break;
      }
    }
  }

  void append_status(BridgeStatus* status) const override {
    for (const Channel& c : channels_) {
      ChannelStatus s = c.status;
      s.open = c.open;
      s.kind = c.kind;
      s.peers = 0;
      const std::size_t index = static_cast<std::size_t>(&c - channels_.data());
      for (const auto& [id, p] : peers_) s.peers += p.channels[index].wants ? 1 : 0;
      status->channels.push_back(std::move(s));
    }
    status->malformed += malformed_;
    status->unknown_channel += unknown_channel_;
    status->refused += refused_;
    status->peers += static_cast<std::uint32_t>(peers_.size());
  }

 private:
  // --- local channels ---

  void try_open(Channel& c, std::uint64_t now) {
    c.next_open_ns = now + kOpenRetryNs;
    absl::StatusOr<ChannelStats> st = read_stats(c.name);
    if (!st.ok()) {
      if (!absl::IsNotFound(st.status()) && c.status.rejected++ == 0) {
        log_event(cat("export ", c.name, ": ", std::string(st.status().message())));
      }
      return;
    }
    c.kind = st->kind;
    c.status.lossless = st->lossless;
    c.description = wire::Description{static_cast<std::uint32_t>(st->kind), st->lossless ? 1u : 0u,
                                      st->capacity, st->max_message, st->max_peers};
    absl::Status opened = absl::OkStatus();
    std::uint64_t incarnation = 0;
    switch (c.kind) {
      case ChannelKind::kTopic: {
        TopicOptions o;
        o.create = false;
        o.lossless = st->lossless;
        auto s = TopicSubscriber::open(c.name, o);
        if (s.ok()) {
          incarnation = s->channel_incarnation();
          c.topic.emplace(*std::move(s));
          // Room for a batch: one message of the largest size, plus 64 KiB of smaller ones.
          c.buffer.resize(wire::kRecordHeader + c.topic->max_message() + (64 << 10));
        }
        opened = s.status();
        break;
      }
      case ChannelKind::kFrames: {
        FrameOptions o;
        o.create = false;
        auto s = FrameSubscriber::open(c.name, o);
        if (s.ok()) {
          incarnation = s->channel_incarnation();
          c.frames.emplace(*std::move(s));
        }
        opened = s.status();
        break;
      }
      case ChannelKind::kQueue: {
        QueueOptions o;
        o.create = false;
        c.queue.clear();
        for (std::uint32_t i = 0; i < std::max<std::uint32_t>(1, spec_.queue_window) && opened.ok(); ++i) {
          auto s = QueueConsumer::open(c.name, o);
          if (s.ok()) {
            incarnation = s->channel_incarnation();
            c.queue.push_back(QueueSlot{*std::move(s), {}, false, false, {}});
          }
          opened = s.status();
        }
        if (!opened.ok()) c.queue.clear();
        break;
      }
      case ChannelKind::kService:
        opened = absl::UnimplementedError("services are not carried by the bridge yet");
        break;
    }
    if (!opened.ok()) {
      if (c.status.rejected++ == 0) log_event(cat("export ", c.name, ": ", std::string(opened.message())));
      return;
    }
    c.open = true;
    c.incarnation = incarnation;
    // The descriptor hears that the channel was removed (check_removed): made now for queues too.
    if (!c.queue.empty()) c.queue.front().consumer.wait_fd();
    for (auto& [id, p] : peers_) p.channels[index_of(c)].described = false;
    log_event(cat("export ", c.name, ": open (", to_string(c.kind),
                           c.status.lossless ? ", lossless" : "", ")"));
  }

  // A channel removed by name (shmring rm) goes on for endpoints already open, but its publisher
  // will be on a new one: reopen. Looked at every 100 ms (a system call or two per channel).
  void check_removed(std::uint64_t now) {
    if (now < next_event_check_ns_) return;
    next_event_check_ns_ = now + 100 * kMs;
    for (Channel& c : channels_) {
      if (!c.open) continue;
      WaitEvent events = WaitEvent::kNone;
      if (c.topic) events = c.topic->take_wait_events();
      if (c.frames) events = c.frames->take_wait_events();
      if (!c.queue.empty()) events = c.queue.front().consumer.take_wait_events();
      if (has(events, WaitEvent::kRemoved)) close_channel(c, "the channel was removed");
    }
  }

  void close_channel(Channel& c, std::string_view why) {
    log_event(cat("export ", c.name, ": ", why, "; reopening"));
    c.topic.reset();
    c.frames.reset();
    c.queue.clear();  // views still out go back to the queue (redelivered there)
    c.pending.clear();
    c.open = false;
    c.next_open_ns = 0;
    for (auto& [id, p] : peers_) p.channels[index_of(c)].in_flight = 0;
  }

  // --- peers ---

  std::size_t index_of(const Channel& c) const { return static_cast<std::size_t>(&c - channels_.data()); }

  void receive_all(std::uint64_t now) {
    Incoming in;
    for (int i = 0; i < 4 * kBatch && carrier_->try_receive(&in); ++i) handle(in, now);
  }

  void handle(const Incoming& in, std::uint64_t now) {
    wire::Header h;
    if (in.parts != 1 || wire::decode(in.header, &h) != wire::DecodeError::kNone ||
        (h.type != wire::Type::kHello && h.type != wire::Type::kAck)) {
      ++malformed_;
      return;
    }
    const PeerId id(reinterpret_cast<const char*>(in.peer.data()), in.peer.size());
    auto it = peers_.find(id);
    if (it == peers_.end()) {
      Peer p;
      p.id = id;
      p.channels.resize(channels_.size());
      it = peers_.emplace(id, std::move(p)).first;
      log_event(cat("export ", carrier_->endpoint(), ": import ", printable(id), " connected"));
    }
    Peer& peer = it->second;
    peer.last_seen_ns = now;
    Channel* c = find(h.name);
    if (c == nullptr) {
      ++unknown_channel_;
      if (h.type == wire::Type::kHello) send_control(peer.id, wire::Type::kNotExported, h.name, 0, 0);
      return;
    }
    PerChannel& pc = peer.channels[index_of(*c)];
    if (h.type == wire::Type::kHello) {
      pc.wants = true;
      pc.credit = static_cast<std::uint32_t>(std::min<std::uint64_t>(h.value, 1u << 20));
      return;
    }
    // kAck: of this incarnation of the channel (a late one of an earlier incarnation names a
    // ticket that means another item now).
    if (!c->open || h.incarnation != c->incarnation) return;
    if (c->kind == ChannelKind::kQueue) {
      for (QueueSlot& s : c->queue) {
        if (!s.sent || s.peer != peer.id || s.view.sequence() != h.sequence) continue;
        s.sent = false;
        if (pc.in_flight > 0) --pc.in_flight;
        if ((h.flags & wire::kNotTaken) != 0) {
          // Not taken there (its local queue is not open): kept for another import; this one
          // gets no more until its hello offers credit again.
          pc.credit = 0;
          return;
        }
        s.view.release();
        s.resend = false;
        if ((h.flags & wire::kRefused) != 0) ++c->status.rejected;  // too large over there: dropped
        return;
      }
    } else if (c->kind == ChannelKind::kFrames) {
      if (pc.in_flight > 0) --pc.in_flight;
    }
  }

  void expire_peers(std::uint64_t now) {
    const std::uint64_t timeout = static_cast<std::uint64_t>(spec_.carrier.peer_timeout.count()) * kMs;
    for (auto it = peers_.begin(); it != peers_.end();) {
      if (now - it->second.last_seen_ns > timeout) {
        log_event(cat("export ", carrier_->endpoint(), ": import ", printable(it->first),
                               " silent for ", spec_.carrier.peer_timeout.count(), " ms; forgotten"));
        forget(it->first);
        it = peers_.erase(it);
      } else {
        ++it;
      }
    }
  }

  // What a peer that went away held: lossless topic sends it was owed, queue items (sent again).
  void forget(const PeerId& id) {
    for (Channel& c : channels_) {
      c.pending.erase(std::remove(c.pending.begin(), c.pending.end(), id), c.pending.end());
      for (QueueSlot& s : c.queue) {
        if (s.sent && s.peer == id) {
          s.sent = false;
          s.resend = true;
        }
      }
    }
  }

  void drop_peer(const PeerId& id) {
    if (peers_.count(id) == 0) return;
    log_event(cat("export ", carrier_->endpoint(), ": import ", printable(id), " disconnected"));
    forget(id);
    peers_.erase(id);
  }

  Channel* find(std::string_view name) {
    for (Channel& c : channels_) {
      if (c.name == name) return &c;
    }
    return nullptr;
  }

  void send_control(const PeerId& to, wire::Type type, std::string_view name, std::uint64_t sequence,
                    std::uint64_t value, std::span<const std::byte> payload = {}) {
    wire::Header h;
    h.type = type;
    h.origin = origin_;
    h.sequence = sequence;
    h.value = value;
    h.name = name;
    wire::encode(h, &control_);
    carrier_->try_send(to, control_, payload);
  }

  void describe_to_peers(Channel& c) {
    for (auto& [id, p] : peers_) {
      PerChannel& pc = p.channels[index_of(c)];
      if (!pc.wants || pc.described) continue;
      wire::Header h;
      h.type = wire::Type::kDescribe;
      h.origin = origin_;
      h.incarnation = c.incarnation;
      h.name = c.name;
      // A topic's baseline: the next message its subscriber reads has this number, so an import
      // with no earlier position counts any loss from here, not from the first message it gets.
      if (c.topic) {
        if (const std::optional<std::uint64_t> next = c.topic->next_sequence(); next && c.pending.empty()) {
          h.flags = wire::kHasBaseline;
          h.sequence = *next;
        }
      }
      wire::encode(h, &control_);
      wire::encode(c.description, &description_);
      if (carrier_->try_send(id, control_, description_) == SendResult::kOk) pc.described = true;
    }
  }

  // --- topics ---

  // Packs what the subscriber has ready into one message (records, wire.h) and sends it to every
  // peer that wants it; nothing waits to fill a batch. A lossy peer whose link is full misses the
  // batch (the import counts the gap); a lossless one is owed it (back-pressure).
  void move_topic(Channel& c, std::uint64_t now) {
    if (!c.pending.empty()) {
      retry_pending(c, now);
      if (!c.pending.empty()) return;
    }
    const std::size_t max_message = static_cast<std::size_t>(c.topic->max_message());
    for (int round = 0; round < kBatch; ++round) {
      std::size_t used = 0;
      std::size_t records = 0;
      std::uint64_t first = 0;
      bool drained = false;
      while (used + wire::kRecordHeader + max_message <= c.buffer.size() && records < kBatch) {
        std::size_t bytes = 0;
        const ChannelResult r = c.topic->try_receive(
            std::span<std::byte>(c.buffer.data() + used + wire::kRecordHeader, max_message), &bytes);
        if (r == ChannelResult::kWouldBlock) {
          drained = true;
          break;
        }
        if (r != ChannelResult::kOk) {
          close_channel(c, cat("receive said ", to_string(r)));
          return;
        }
        const std::uint64_t sequence = c.topic->last_sequence();
        if (records == 0) first = sequence;
        wire::put_record_header(c.buffer.data() + used, sequence, static_cast<std::uint32_t>(bytes));
        used += wire::kRecordHeader + bytes;
        ++records;
      }
      if (records == 0) return;
      wire::Header h;
      h.type = wire::Type::kTopic;
      h.origin = origin_;
      h.incarnation = c.incarnation;
      h.sequence = first;
      h.value = used;
      h.name = c.name;
      wire::encode(h, &c.header);
      const std::span<const std::byte> payload(c.buffer.data(), used);
      bool any = false;
      for (auto& [id, p] : peers_) {
        const PerChannel& pc = p.channels[index_of(c)];
        if (!pc.wants || !pc.described) continue;
        switch (carrier_->try_send(id, c.header, payload)) {
          case SendResult::kOk: any = true; break;
          case SendResult::kFull:
            if (c.status.lossless) {
              c.pending.push_back(id);
            } else {
              c.status.dropped += records;  // the import counts them as a gap
            }
            break;
          case SendResult::kGone: gone_.push_back(id); break;
        }
      }
      drop_gone();
      if (any || !c.pending.empty()) {
        c.status.messages += records;
        c.status.bytes += used - records * wire::kRecordHeader;
      }
      if (!c.pending.empty()) {
        c.pending_since_ns = now;
        return;  // lossless: nothing more until every peer took this one (back-pressure)
      }
      if (drained) return;
    }
  }

  void retry_pending(Channel& c, std::uint64_t now) {
    const std::span<const std::byte> payload(c.buffer.data(), wire_payload_bytes(c));
    for (auto it = c.pending.begin(); it != c.pending.end();) {
      const SendResult r = carrier_->try_send(*it, c.header, payload);
      if (r == SendResult::kFull) {
        ++it;
        continue;
      }
      if (r == SendResult::kGone) gone_.push_back(*it);
      it = c.pending.erase(it);
    }
    drop_gone();
    if (c.pending.empty()) c.status.held_back_ns += now - c.pending_since_ns;
  }

  static std::size_t wire_payload_bytes(const Channel& c) {
    wire::Header h;
    wire::decode(c.header, &h);
    return static_cast<std::size_t>(h.value);
  }

  void drop_gone() {
    for (const PeerId& id : gone_) drop_peer(id);
    gone_.clear();
  }

  // --- queues ---

  QueueSlot* idle_slot(Channel& c) {
    for (QueueSlot& s : c.queue) {
      if (!s.view.ok()) return &s;
    }
    return nullptr;
  }

  bool has_unsent(const Channel& c) const {
    for (const QueueSlot& s : c.queue) {
      if (s.view.ok() && !s.sent) return true;
    }
    return false;
  }

  Peer* peer_with_room(Channel& c) {
    Peer* best = nullptr;
    for (auto& [id, p] : peers_) {
      const PerChannel& pc = p.channels[index_of(c)];
      if (!pc.wants || !pc.described || pc.in_flight >= pc.credit) continue;
      if (best == nullptr || pc.in_flight < best->channels[index_of(c)].in_flight) best = &p;
    }
    return best;
  }

  // Sends a held item to the peer with the most room. False if no peer could take it now.
  bool send_item(Channel& c, QueueSlot& s) {
    Peer* p = peer_with_room(c);
    if (p == nullptr) return false;
    wire::Header h;
    h.type = wire::Type::kItem;
    h.flags = (s.resend || s.view.redelivered()) ? wire::kRedelivered : 0;
    h.origin = origin_;
    h.incarnation = c.incarnation;
    h.sequence = s.view.sequence();
    h.value = s.view.data().size();
    h.name = c.name;
    wire::encode(h, &c.header);
    switch (carrier_->try_send(p->id, c.header, s.view.data())) {
      case SendResult::kOk:
        s.sent = true;
        s.peer = p->id;
        ++p->channels[index_of(c)].in_flight;
        if (s.resend) ++c.status.redelivered;
        ++c.status.messages;
        c.status.bytes += s.view.data().size();
        return true;
      case SendResult::kFull: return false;
      case SendResult::kGone: drop_peer(p->id); return false;
    }
    return false;
  }

  void move_queue(Channel& c) {
    for (QueueSlot& s : c.queue) {  // items whose peer went away, or that found every link full
      if (s.view.ok() && !s.sent && !send_item(c, s)) return;
    }
    for (int i = 0; i < kBatch; ++i) {
      if (peer_with_room(c) == nullptr) return;
      QueueSlot* s = idle_slot(c);
      if (s == nullptr) return;
      s->view = s->consumer.try_receive_view();
      if (!s->view.ok()) {
        const ChannelResult r = s->view.result();
        if (r == ChannelResult::kWouldBlock) {
          c.queue_probe = static_cast<std::size_t>(s - c.queue.data());
        } else {
          close_channel(c, cat("receive said ", to_string(r)));
        }
        return;
      }
      s->resend = false;
      if (!send_item(c, *s)) return;
    }
  }

  // --- frames ---

  bool peer_with_frame_credit(const Channel& c) const {
    for (const auto& [id, p] : peers_) {
      const PerChannel& pc = p.channels[index_of(c)];
      if (pc.wants && pc.described && pc.in_flight < kFrameCredit) return true;
    }
    return false;
  }

  void move_frames(Channel& c, std::uint64_t now) {
    // Only when a peer can take a frame now: meanwhile the publisher goes on, and what is sent
    // next is the newest frame (the ones in between are skipped, newest first).
    if (!peer_with_frame_credit(c) || now < c.next_frame_ns) return;
    FrameView v = c.frames->try_receive_view();
    if (!v.ok()) {
      if (v.result() != ChannelResult::kWouldBlock) close_channel(c, cat("receive said ", to_string(v.result())));
      return;
    }
    wire::Header h;
    h.type = wire::Type::kFrame;
    h.origin = origin_;
    h.incarnation = c.incarnation;
    h.sequence = v.sequence();
    h.value = v.data().size();
    h.name = c.name;
    wire::encode(h, &c.header);
    bool any = false;
    for (auto& [id, p] : peers_) {
      PerChannel& pc = p.channels[index_of(c)];
      if (!pc.wants || !pc.described) continue;
      if (pc.in_flight >= kFrameCredit) {
        ++c.status.dropped;  // this peer is still taking earlier frames
        continue;
      }
      // The view pins the frame, so what is sent is never torn.
      switch (carrier_->try_send(id, c.header, v.data())) {
        case SendResult::kOk:
          ++pc.in_flight;
          any = true;
          break;
        case SendResult::kFull: ++c.status.dropped; break;
        case SendResult::kGone: gone_.push_back(id); break;
      }
    }
    v.release();
    drop_gone();
    if (any) {
      ++c.status.messages;
      c.status.bytes += h.value;
    }
    if (spec_.max_rate > 0) {
      const double interval_ns = std::min(1e9 / spec_.max_rate, 3600e9);  // at least one an hour
      c.next_frame_ns = now + static_cast<std::uint64_t>(interval_ns);
    }
  }

  ExportSpec spec_;
  std::unique_ptr<Carrier> carrier_;
  std::uint64_t origin_;
  std::vector<Channel> channels_;
  std::map<PeerId, Peer> peers_;
  std::vector<PeerId> gone_;
  std::vector<std::byte> control_;
  std::vector<std::byte> description_;
  std::uint64_t malformed_ = 0;
  std::uint64_t unknown_channel_ = 0;
  std::uint64_t refused_ = 0;
  std::uint64_t next_event_check_ns_ = 0;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Side>> make_export_side(const ExportSpec& spec, std::uint64_t origin) {
  if (spec.channels.empty()) return absl::InvalidArgumentError("export: no channels");
  for (const std::string& name : spec.channels) {
    if (absl::Status s = validate_channel_name(name); !s.ok()) return s;
    if (name.size() > wire::kMaxName) return absl::InvalidArgumentError("channel name too long");
  }
  if (spec.max_rate < 0) return absl::InvalidArgumentError("max_rate must be >= 0");
  if (spec.queue_window == 0 || spec.queue_window > kMaxQueueWindow) {
    return absl::InvalidArgumentError(cat("queue_window must be 1..", kMaxQueueWindow));
  }
  CarrierOptions carrier_options = spec.carrier;
  carrier_options.max_message_bytes = wire::kMaxControlPart;  // imports send headers only
  absl::StatusOr<std::unique_ptr<Carrier>> carrier = make_zmq_server(spec.bind, carrier_options);
  if (!carrier.ok()) return carrier.status();
  return std::unique_ptr<Side>(new ExportSide(spec, *std::move(carrier), origin));
}

}  // namespace shmring::bridge
