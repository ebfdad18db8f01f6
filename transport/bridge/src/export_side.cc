// The export side: one server carrier, the imports connected to it (peers) and the exported
// channels; each channel's pattern protocol is its link (link.h: topic_link.cc, queue_link.cc,
// frame_link.cc).
//
// Each import says which channels it wants with a HELLO, repeated as a heartbeat, and the export
// answers each with an ALIVE: both sides know the other lives whatever the data does (a stalled
// subscriber is not a dead link). A peer not heard from for peer_timeout is forgotten; when a
// connection drops, every peer is probed (a send to a gone one fails at once), so what a dead
// import held moves on within about 100 ms. A channel's first data to a peer follows its
// DESCRIBE, on the same ordered connection.
#include "export_side.h"

#include <fnmatch.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "link.h"
#include "shmring/core/clock.h"
#include "shmring/core/detail/message.h"
#include "wire.h"

namespace shmring::bridge {

using shmring::detail::cat;
namespace {

constexpr std::uint64_t kOpenRetryNs = 500 * kMs;  // a channel that does not exist yet
constexpr int kReceiveBatch = 2048;                // messages taken from the carrier per step
constexpr std::uint64_t kProbeEveryNs = 100 * kMs;  // after a connection dropped: probe peers this often
constexpr std::uint64_t kProbeForNs = 1000 * kMs;   // and for this long
constexpr std::size_t kMaxPatternChannels = 1024;   // channels exported for patterns at once

// "md.*": a glob (fnmatch) pattern rather than a channel's name.
bool is_pattern(std::string_view name) { return name.find_first_of("*?[") != std::string_view::npos; }

struct Channel : ExportChannel {
  bool from_pattern = false;  // added when an import asked for it (ExportSpec patterns)
  ChannelKind kind = ChannelKind::kTopic;
  std::uint64_t next_open_ns = 0;
  wire::Description description;
  std::unique_ptr<ExportLink> link;  // while the local channel is open
  // Imports evicted from this channel: their hellos are not served until `until_ns`; the pause
  // doubles with each eviction of the same import.
  struct Banned {
    std::uint64_t until_ns = 0;
    unsigned count = 0;
  };
  std::map<PeerId, Banned> banned;

  bool is_banned(const PeerId& id, std::uint64_t now) const {
    const auto it = banned.find(id);
    return it != banned.end() && now < it->second.until_ns;
  }
};

std::string_view describe(wire::EvictReason why) {
  switch (why) {
    case wire::EvictReason::kHeldBack: return "it held the lossless topic back longer than --evict-after";
    case wire::EvictReason::kAckLate: return "it did not acknowledge an item within --ack-timeout (the item went back to the queue)";
  }
  return "?";
}

struct Peer {
  std::uint64_t last_seen_ns = 0;
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
      : spec_(spec), carrier_(std::move(carrier)), port_(*carrier_, origin), origin_(origin),
        next_epoch_(monotonic_ns()) {
    for (const std::string& name : spec.channels) {
      if (is_pattern(name)) {
        patterns_.push_back(name);
        log_event(cat("export ", carrier_->endpoint(), ": channels matching '", name, "' are exported when an import asks"));
      } else {
        add_channel(name, /*from_pattern=*/false);
      }
    }
  }

  void step(std::uint64_t now) override {
    take_carrier_events(now);
    receive_all(now);
    probe_peers(now);
    expire_peers(now);
    drop_unwanted();
    check_removed(now);
    for (Channel& c : channels_) {
      if (!c.link) {
        if (now >= c.next_open_ns) try_open(c, now);
        if (!c.link) continue;
      }
      describe_to_peers(c);
      if (absl::Status s = c.link->move(c, port_, now); !s.ok()) close_channel(c, std::string(s.message()));
      apply_evictions(c, now);
      drop_gone();
    }
  }

  void plan_wait(std::uint64_t now, WaitPlan* plan) override {
    plan->add(carrier_->descriptor());
    if (carrier_->has_input() || std::exchange(again_, false)) plan->again = true;
    plan->until(now + spec_.carrier.heartbeat_interval.count() * kMs);  // peer expiry
    if (now < probe_until_ns_) plan->until(next_probe_ns_);
    for (Channel& c : channels_) {
      if (c.link) {
        c.link->plan_wait(c, now, plan);
      } else {
        plan->until(c.next_open_ns);
      }
    }
  }

  void append_status(BridgeStatus* status) const override {
    for (const Channel& c : channels_) {
      ChannelStatus s = c.status;
      s.open = c.link != nullptr;
      s.kind = c.kind;
      s.peers = static_cast<std::uint32_t>(c.peers.size());
      s.link = c.peers.empty() ? "waiting" : "up";
      status->channels.push_back(std::move(s));
    }
    status->malformed += malformed_;
    status->unknown_channel += unknown_channel_;
    status->refused += refused_;
    status->peers += static_cast<std::uint32_t>(peers_.size());
  }

 private:
  Channel& add_channel(const std::string& name, bool from_pattern) {
    Channel& c = channels_.emplace_back();
    c.name = name;
    c.from_pattern = from_pattern;
    c.status.direction = "export";
    c.status.channel = name;
    c.status.remote = name;
    c.status.endpoint = carrier_->endpoint();
    return c;
  }

  // A channel an import asks for that matches one of the patterns, added now (at most
  // kMaxPatternChannels at once: a peer cannot make this side open every name it makes up).
  Channel* add_matching(std::string_view name) {
    const std::string text(name);
    if (!validate_channel_name(text).ok()) return nullptr;
    for (const std::string& pattern : patterns_) {
      if (fnmatch(pattern.c_str(), text.c_str(), 0) != 0) continue;
      if (channels_.size() >= static_cast<std::size_t>(spec_.channels.size()) + kMaxPatternChannels) return nullptr;
      log_event(cat("export ", text, ": asked for, matching '", pattern, "'"));
      return &add_channel(text, /*from_pattern=*/true);
    }
    return nullptr;
  }

  // Channels added for a pattern go when no import wants them any more.
  void drop_unwanted() {
    std::erase_if(channels_, [](const Channel& c) { return c.from_pattern && c.peers.empty() && c.banned.empty(); });
  }

  // --- the carrier ---

  void take_carrier_events(std::uint64_t now) {
    const CarrierEvents events = carrier_->take_events();
    if (events.refused > 0) {
      refused_ += events.refused;
      log_event(cat("export ", carrier_->endpoint(), ": refused ", events.refused,
                    " connection(s) that failed the handshake (CURVE key not authorised, or no CURVE)"));
    }
    if (events.disconnected > 0) {
      // Some import's connection went (a ROUTER does not say whose): probe them all for a while.
      probe_until_ns_ = now + kProbeForNs;
      next_probe_ns_ = now;
    }
  }

  // Sends each peer an ALIVE for a channel it wants: the carrier says kGone for one whose
  // connection went (its pipe may take a moment to go, hence the repeats).
  void probe_peers(std::uint64_t now) {
    if (now >= probe_until_ns_ || now < next_probe_ns_) return;
    next_probe_ns_ = now + kProbeEveryNs;
    for (const auto& [id, p] : peers_) {
      for (Channel& c : channels_) {
        if (c.peers.count(id) == 0) continue;
        send_alive(c, id);
        break;
      }
    }
    drop_gone();
  }

  void receive_all(std::uint64_t now) {
    Incoming in;
    for (int i = 0; i < kReceiveBatch && carrier_->try_receive(&in); ++i) handle(in, now);
  }

  void handle(const Incoming& in, std::uint64_t now) {
    wire::Header h;
    const wire::DecodeError error = in.parts != 1 ? wire::DecodeError::kShort : wire::decode(in.header, &h);
    if (error == wire::DecodeError::kBadVersion && !version_reported_) {
      version_reported_ = true;
      log_event(cat("export ", carrier_->endpoint(), ": an import speaks another version of the bridge's protocol "
                    "(this one speaks ", static_cast<unsigned>(wire::kVersion), "): upgrade both"));
    }
    if (error != wire::DecodeError::kNone || !wire::from_import(h.type)) {
      ++malformed_;
      return;
    }
    const PeerId id(reinterpret_cast<const char*>(in.peer.data()), in.peer.size());
    auto it = peers_.find(id);
    if (it == peers_.end()) {
      it = peers_.emplace(id, Peer{}).first;
      log_event(cat("export ", carrier_->endpoint(), ": import ", printable(id), " connected"));
    }
    it->second.last_seen_ns = now;
    Channel* c = find(h.name);
    if (c == nullptr && h.type == wire::Type::kHello) c = add_matching(h.name);
    if (c == nullptr) {
      ++unknown_channel_;
      if (h.type == wire::Type::kHello) send_not_exported(id, h.name);
      return;
    }
    if (h.type == wire::Type::kHello) {
      if (c->is_banned(id, now)) {
        send_alive(*c, id, /*evicted=*/true);
        return;
      }
      PeerChannel& peer = c->peers[id];
      peer.credit = static_cast<std::uint32_t>(std::min<std::uint64_t>(h.value, 1u << 20));
      peer.window = std::min(h.sequence, kMaxTopicWindow);
      send_alive(*c, id);
      return;
    }
    if (!c->link) return;
    const auto peer = c->peers.find(id);
    c->link->on_message(*c, id, peer == c->peers.end() ? nullptr : &peer->second, h);
  }

  // "I hear you": the import's link stays up while this comes, whatever its data does.
  void send_alive(const Channel& c, const PeerId& to, bool evicted = false) {
    wire::Header h = port_.header(c, wire::Type::kAlive);
    h.flags = static_cast<std::uint8_t>((c.link ? wire::kChannelOpen : 0) | (evicted ? wire::kEvictedNow : 0));
    const auto peer = c.peers.find(to);
    if (c.link && peer != c.peers.end()) {
      if (const std::optional<std::uint64_t> position = c.link->position_for(to, peer->second)) {
        h.flags |= wire::kHasPosition;
        h.sequence = *position;
      }
    }
    port_.send_control(to, h);
  }

  // The imports the link evicted: told, counted, forgotten for this channel, not served for a
  // pause (their bound, at least a second, doubled per eviction, at most an hour).
  void apply_evictions(Channel& c, std::uint64_t now) {
    for (const ExportPort::Eviction& e : port_.take_evicted()) {
      if (c.peers.count(e.id) == 0) continue;
      Channel::Banned& b = c.banned[e.id];
      const std::uint64_t pause_ms =
          std::min<std::uint64_t>(std::max<std::uint64_t>(e.bound_ms, 1000) << std::min(b.count, 12u), 3'600'000);
      ++b.count;
      b.until_ns = now + pause_ms * kMs;
      wire::Header h = port_.header(c, wire::Type::kEvicted);
      h.value = static_cast<std::uint64_t>(e.why);
      h.sequence = e.bound_ms;
      port_.send_control(e.id, h);
      c.peers.erase(e.id);
      if (c.link) c.link->forget(c, e.id);
      ++c.status.evictions;
      again_ = true;  // what it held back can move now
      log_event(cat("export ", c.name, ": evicted import ", printable(e.id), ": ", describe(e.why),
                    " (", e.bound_ms, " ms); it may ask again in ", pause_ms, " ms"));
    }
  }

  void send_not_exported(const PeerId& to, std::string_view name) {
    wire::Header h;
    h.type = wire::Type::kNotExported;
    h.origin = origin_;
    h.name = name;
    wire::encode(h, &control_);
    carrier_->try_send(to, control_, {});
  }

  void describe_to_peers(Channel& c) {
    for (auto& [id, peer] : c.peers) {
      if (peer.described) continue;
      const std::uint64_t epoch = ++next_epoch_;
      wire::Header h = port_.header(c, wire::Type::kDescribe);
      h.value = epoch;
      // A topic's baseline: the next message its subscriber reads has this number, so an import
      // with no earlier position counts any loss from here, not from the first message it gets.
      if (const std::optional<std::uint64_t> next = c.link->baseline()) {
        h.flags = wire::kHasBaseline;
        h.sequence = *next;
      }
      wire::encode(h, &control_);
      wire::encode(c.description, &description_);
      if (carrier_->try_send(id, control_, description_) != SendResult::kOk) continue;
      // What it is sent from here on is counted against the credit it gives for this epoch.
      peer.described = true;
      peer.epoch = epoch;
      peer.on_probation = c.banned.count(id) != 0;  // let back after an eviction
      peer.sent = peer.delivered = peer.blocked_since_ns = 0;
      peer.in_flight = 0;
    }
  }

  // --- peers ---

  void expire_peers(std::uint64_t now) {
    const std::uint64_t timeout = static_cast<std::uint64_t>(spec_.carrier.peer_timeout.count()) * kMs;
    for (auto it = peers_.begin(); it != peers_.end();) {
      if (now - it->second.last_seen_ns > timeout) {
        log_event(cat("export ", carrier_->endpoint(), ": import ", printable(it->first), " silent for ",
                      spec_.carrier.peer_timeout.count(), " ms; forgotten"));
        forget(it->first);
        it = peers_.erase(it);
      } else {
        ++it;
      }
    }
  }

  // What a peer that went away held moves on (lossless topic sends it was owed, queue items).
  void forget(const PeerId& id) {
    for (Channel& c : channels_) {
      c.banned.erase(id);
      if (c.peers.erase(id) != 0 && c.link) c.link->forget(c, id);
    }
  }

  // Peers the carrier said are gone while a link sent.
  void drop_gone() {
    for (const PeerId& id : port_.take_gone()) {
      if (peers_.count(id) == 0) continue;
      log_event(cat("export ", carrier_->endpoint(), ": import ", printable(id), " disconnected"));
      forget(id);
      peers_.erase(id);
    }
  }

  Channel* find(std::string_view name) {
    for (Channel& c : channels_) {
      if (c.name == name) return &c;
    }
    return nullptr;
  }

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
    const Pattern* pattern = pattern_for(st->kind);
    if (pattern == nullptr) {  // a kind this bridge does not carry (a service): said once
      if (c.status.rejected++ == 0) log_event(cat("export ", c.name, ": this kind of channel is not carried by the bridge"));
      return;
    }
    c.kind = st->kind;
    c.status.lossless = st->lossless;
    c.description = wire::Description{static_cast<std::uint32_t>(st->kind), st->lossless ? 1u : 0u,
                                      st->capacity, st->max_message, st->max_peers, 0};
    // The bound this export holds an import to, so it can keep within it (wire.h).
    const std::chrono::milliseconds bound = st->kind == ChannelKind::kQueue ? spec_.ack_timeout
                                            : st->lossless                  ? spec_.evict_after
                                                                            : std::chrono::milliseconds(0);
    c.description.deadline_ms = static_cast<std::uint32_t>(std::min<std::int64_t>(bound.count(), UINT32_MAX));
    if (st->kind == ChannelKind::kTopic) c.description.history = st->history;
    std::unique_ptr<ExportLink> link = pattern->make_export();
    std::uint64_t incarnation = 0;
    if (absl::Status s = link->open(c.name, *st, spec_, &incarnation); !s.ok()) {
      if (c.status.rejected++ == 0) log_event(cat("export ", c.name, ": ", std::string(s.message())));
      return;
    }
    c.link = std::move(link);
    c.incarnation = incarnation;
    for (auto& [id, peer] : c.peers) peer.described = false;
    log_event(cat("export ", c.name, ": open (", to_string(c.kind), c.status.lossless ? ", lossless" : "", ")"));
  }

  // A channel removed by name (shmring rm) goes on for endpoints already open, but its publisher
  // will be on a new one: reopen. Looked at every 100 ms (a system call or two per channel).
  void check_removed(std::uint64_t now) {
    if (now < next_event_check_ns_) return;
    next_event_check_ns_ = now + 100 * kMs;
    for (Channel& c : channels_) {
      if (c.link && has(c.link->take_wait_events(), WaitEvent::kRemoved)) {
        close_channel(c, "the channel was removed");
      }
    }
  }

  // Closes the local endpoints (views still out go back to the channel) and reopens at once.
  void close_channel(Channel& c, std::string_view why) {
    log_event(cat("export ", c.name, ": ", why, "; reopening"));
    c.link.reset();
    c.next_open_ns = 0;
    for (auto& [id, peer] : c.peers) peer.in_flight = 0;
  }

  ExportSpec spec_;
  std::unique_ptr<Carrier> carrier_;
  ExportPort port_;
  std::vector<std::string> patterns_;  // exported names that are patterns
  std::uint64_t origin_;
  std::vector<Channel> channels_;
  std::map<PeerId, Peer> peers_;
  std::vector<std::byte> control_;
  std::vector<std::byte> description_;
  std::uint64_t malformed_ = 0;
  std::uint64_t unknown_channel_ = 0;
  std::uint64_t refused_ = 0;
  std::uint64_t next_event_check_ns_ = 0;
  std::uint64_t probe_until_ns_ = 0;  // peers are probed until then (a connection dropped)
  std::uint64_t next_probe_ns_ = 0;
  std::uint64_t next_epoch_;          // epochs of descriptions (from the clock: unique per run)
  bool again_ = false;                // an eviction freed something: step again at once
  bool version_reported_ = false;
};

}  // namespace

absl::Status check_export_spec(const ExportSpec& spec) {
  if (spec.channels.empty()) return absl::InvalidArgumentError("export: no channels");
  for (const std::string& name : spec.channels) {
    if (absl::Status s = validate_channel_name(name); !s.ok()) return s;
    if (name.size() > wire::kMaxName) return absl::InvalidArgumentError("channel name too long");
  }
  if (spec.max_rate < 0) return absl::InvalidArgumentError("max_rate must be >= 0");
  if (spec.evict_after.count() < 0 || spec.ack_timeout.count() < 0) {
    return absl::InvalidArgumentError("evict_after and ack_timeout must be >= 0");
  }
  if (spec.topic_window == 0 || spec.topic_window > kMaxTopicWindow) {
    return absl::InvalidArgumentError(cat("topic_window must be 1..", kMaxTopicWindow, " bytes"));
  }
  if (spec.queue_window == 0 || spec.queue_window > kMaxQueueWindow) {
    return absl::InvalidArgumentError(cat("queue_window must be 1..", kMaxQueueWindow));
  }
  return check_zmq_options(spec.bind, spec.carrier, /*server=*/true);
}

namespace {

// Whether `endpoint` listens on this host's loopback only (tcp://127.x.x.x, [::1], localhost, lo;
// ipc:// and inproc:// stay on the host).
bool loopback_only(const std::string& endpoint) {
  if (endpoint.rfind("tcp://", 0) != 0) return true;
  std::string host = endpoint.substr(6, endpoint.rfind(':') > 6 ? endpoint.rfind(':') - 6 : std::string::npos);
  if (host.size() > 1 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  return host == "localhost" || host == "lo" || host == "::1" || host.rfind("127.", 0) == 0;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Side>> make_export_side(const ExportSpec& spec, std::uint64_t origin) {
  if (absl::Status s = check_export_spec(spec); !s.ok()) return s;
  if (spec.carrier.security.secret_key.empty() && !loopback_only(spec.bind)) {
    log_event(cat("export ", spec.bind, ": warning: listening beyond this host without CURVE: anyone who can reach "
                  "it receives every exported channel, and anyone in the path can read and change the traffic "
                  "(--curve-secret-key, --curve-authorized)"));
  }
  CarrierOptions carrier_options = spec.carrier;
  carrier_options.max_message_bytes = wire::kMaxControlPart;  // imports send headers only
  absl::StatusOr<std::unique_ptr<Carrier>> carrier = make_zmq_server(spec.bind, carrier_options);
  if (!carrier.ok()) return carrier.status();
  return std::unique_ptr<Side>(new ExportSide(spec, *std::move(carrier), origin));
}

}  // namespace shmring::bridge
