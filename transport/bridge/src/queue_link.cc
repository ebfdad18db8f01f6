// Queues across the carrier, both halves: at-least-once, exactly once while the link is up.
//
// Export: a pool of `queue_window` consumers of the local queue, one per item in flight. Each
// item sent is held as a view in the queue until the import acknowledges that its local queue
// took it; an export that dies leaves its views to shmring's own recovery (another consumer on
// the exporting host gets them, marked redelivered). An item goes to the described peer with the
// most room under the credit its HELLO offers; items a peer held when it went away go to another.
//
// Import: the local queue's producer. It acknowledges each item once its local queue took it,
// and remembers the tickets (queue sequence numbers) of the last kTicketMemory items delivered,
// per upstream queue incarnation, so an item sent again (a lost ack, an export restart) is only
// acknowledged again. An item that can never go in is refused (ack flag kRefused); one for a
// local queue that is not open is handed back (kNotTaken) for another import.
#include <algorithm>
#include <deque>
#include <optional>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "link.h"
#include "shmring/core/clock.h"
#include "shmring/core/detail/message.h"
#include "shmring/transport/queue.h"

namespace shmring::bridge {

using shmring::detail::cat;
namespace {

constexpr int kBatch = 512;                   // items per channel per step
constexpr std::size_t kTicketMemory = 65536;  // queue tickets remembered to drop redeliveries

// A consumer of the pool and the item it holds for a peer.
struct QueueSlot {
  QueueConsumer consumer;
  QueueView view;        // held until the peer acknowledges (or this process dies: redelivered)
  bool sent = false;     // view sent to `peer`, waiting for its ack
  bool resend = false;   // sent before to a peer that went away
  PeerId peer;
  std::uint64_t since_ns = 0;  // when the item was taken from the queue or last sent
};

class QueueExport final : public ExportLink {
 public:
  absl::Status open(const std::string& name, const ChannelStats&, const ExportSpec& spec,
                    std::uint64_t* incarnation) override {
    name_ = name;
    ack_timeout_ms_ = static_cast<std::uint64_t>(spec.ack_timeout.count());
    for (std::uint32_t i = 0; i < std::max<std::uint32_t>(1, spec.queue_window); ++i) {
      absl::StatusOr<QueueConsumer> s = open_consumer();
      if (!s.ok()) {
        slots_.clear();
        return s.status();
      }
      *incarnation = s->channel_incarnation();
      slots_.push_back(QueueSlot{*std::move(s), {}, false, false, {}, 0});
    }
    // The descriptor hears that the channel was removed (take_wait_events): made now.
    slots_.front().consumer.wait_fd();
    return absl::OkStatus();
  }

  WaitEvent take_wait_events() override { return slots_.front().consumer.take_wait_events(); }

  absl::Status move(ExportChannel& c, ExportPort& port, std::uint64_t now) override {
    if (absl::Status s = take_back_late_items(c, port, now); !s.ok()) return s;
    for (QueueSlot& s : slots_) {  // items whose peer went away, or that found every link full
      if (s.view.ok() && !s.sent && !send_item(c, port, s)) return absl::OkStatus();
    }
    for (int i = 0; i < kBatch; ++i) {
      if (!any_room(c)) return absl::OkStatus();
      QueueSlot* s = idle_slot();
      if (s == nullptr) return absl::OkStatus();
      s->view = s->consumer.try_receive_view();
      if (!s->view.ok()) {
        const ChannelResult r = s->view.result();
        if (r != ChannelResult::kWouldBlock) return absl::UnavailableError(cat("receive said ", to_string(r)));
        probe_ = static_cast<std::size_t>(s - slots_.data());
        return absl::OkStatus();
      }
      s->resend = false;
      s->since_ns = monotonic_ns();
      if (!send_item(c, port, *s)) return absl::OkStatus();
    }
    return absl::OkStatus();
  }

  void plan_wait(const ExportChannel& c, std::uint64_t now, WaitPlan* plan) override {
    if (ack_timeout_ms_ != 0) {
      for (const QueueSlot& s : slots_) {
        if (s.view.ok()) plan->until(s.since_ns + ack_timeout_ms_ * kMs);
      }
    }
    const bool room = any_room(c);
    if (room && has_unsent()) plan->until(now + kFullRetryNs);  // a full link: retry soon
    // The probe said kWouldBlock, which armed its descriptor; one holding an item has not.
    if (room && idle_slot() != nullptr && !slots_[probe_].view.ok()) {
      plan->add(slots_[probe_].consumer.wait_fd());
    } else if (room && idle_slot() != nullptr) {
      plan->until(now + kFullRetryNs);
    }
  }

  void on_message(ExportChannel& c, const PeerId& from, PeerChannel* peer, const wire::Header& h) override {
    // An ACK of this incarnation of the queue (a late one of an earlier incarnation names a
    // ticket that means another item now).
    if (h.type != wire::Type::kAck || h.incarnation != c.incarnation) return;
    for (QueueSlot& s : slots_) {
      if (!s.sent || s.peer != from || s.view.sequence() != h.sequence) continue;
      s.sent = false;
      if (peer != nullptr && peer->in_flight > 0) --peer->in_flight;
      if ((h.flags & wire::kNotTaken) != 0) {
        // Not taken there (its local queue is not open): kept for another import; this one
        // gets no more until its hello offers credit again.
        if (peer != nullptr) peer->credit = 0;
        return;
      }
      s.view.release();
      s.resend = false;
      if ((h.flags & wire::kRefused) != 0) ++c.status.rejected;  // too large over there: dropped
      return;
    }
  }

  void forget(ExportChannel&, const PeerId& id) override {
    for (QueueSlot& s : slots_) {
      if (s.sent && s.peer == id) {
        s.sent = false;
        s.resend = true;
      }
    }
  }

 private:
  absl::StatusOr<QueueConsumer> open_consumer() const {
    QueueOptions o;
    o.create = false;
    return QueueConsumer::open(name_, o);
  }

  // An item held longer than ack_timeout without an acknowledgement (sent to a peer that does
  // not answer, or waiting for a peer with room since one went away) goes back to the queue:
  // closing the consumer that holds it hands it to the queue's recovery, and the next consumer,
  // on this host or the export again, gets it redelivered. A peer it was sent to is evicted; what
  // else it holds waits for another import (forget), within the same bound.
  absl::Status take_back_late_items(ExportChannel& c, ExportPort& port, std::uint64_t now) {
    if (ack_timeout_ms_ == 0) return absl::OkStatus();
    for (QueueSlot& s : slots_) {
      if (!s.view.ok() || now - s.since_ns < ack_timeout_ms_ * kMs) continue;
      if (s.sent) {
        port.evict(s.peer, wire::EvictReason::kAckLate, ack_timeout_ms_);
        if (auto peer = c.peers.find(s.peer); peer != c.peers.end() && peer->second.in_flight > 0) {
          --peer->second.in_flight;
        }
      }
      s.consumer.close();
      s.view = QueueView();
      s.sent = s.resend = false;
      ++c.status.redelivered;
      absl::StatusOr<QueueConsumer> fresh = open_consumer();
      if (!fresh.ok()) return fresh.status();
      s.consumer = *std::move(fresh);
      if (&s == &slots_.front()) s.consumer.wait_fd();  // the one that hears of a removal
    }
    return absl::OkStatus();
  }

  QueueSlot* idle_slot() {
    for (QueueSlot& s : slots_) {
      if (!s.view.ok()) return &s;
    }
    return nullptr;
  }

  bool has_unsent() const {
    for (const QueueSlot& s : slots_) {
      if (s.view.ok() && !s.sent) return true;
    }
    return false;
  }

  static bool has_room(const PeerChannel& p) { return p.described && p.in_flight < p.credit; }
  static bool any_room(const ExportChannel& c) {
    return std::any_of(c.peers.begin(), c.peers.end(), [](const auto& entry) { return has_room(entry.second); });
  }
  // The described peer with the most room under its credit, or null.
  static std::pair<const PeerId, PeerChannel>* peer_with_room(ExportChannel& c) {
    std::pair<const PeerId, PeerChannel>* best = nullptr;
    for (auto& entry : c.peers) {
      if (has_room(entry.second) && (best == nullptr || entry.second.in_flight < best->second.in_flight)) {
        best = &entry;
      }
    }
    return best;
  }

  // Sends a held item to the peer with the most room. False if no peer could take it now.
  bool send_item(ExportChannel& c, ExportPort& port, QueueSlot& s) {
    std::pair<const PeerId, PeerChannel>* best = peer_with_room(c);
    if (best == nullptr) return false;
    wire::Header h = port.header(c, wire::Type::kItem);
    h.flags = (s.resend || s.view.redelivered()) ? wire::kRedelivered : 0;
    h.sequence = s.view.sequence();
    h.value = s.view.data().size();
    wire::encode(h, &header_);
    switch (port.send(best->first, header_, s.view.data())) {
      case SendResult::kOk:
        s.sent = true;
        s.since_ns = monotonic_ns();
        s.peer = best->first;
        ++best->second.in_flight;
        if (s.resend) ++c.status.redelivered;
        ++c.status.messages;
        c.status.bytes += s.view.data().size();
        return true;
      case SendResult::kFull:
      case SendResult::kGone: return false;
    }
    return false;
  }

  std::string name_;
  std::uint64_t ack_timeout_ms_ = 0;  // ExportSpec::ack_timeout
  std::vector<QueueSlot> slots_;
  std::size_t probe_ = 0;  // the consumer whose descriptor is armed (it said kWouldBlock)
  std::vector<std::byte> header_;
};

class QueueImport final : public SendingLink<QueueProducer> {
 public:
  absl::Status open(const ImportChannel& c, bool exact) override {
    return open_endpoint(c, described_limits<QueueOptions>(c.description, exact));
  }

  Delivery deliver(ImportChannel& c, ImportPort& port, const wire::Header& h, std::span<const std::byte> payload,
                   std::size_t*, std::string* why) override {
    if (h.incarnation != ticket_incarnation_) {  // another upstream queue: its tickets start over
      ticket_incarnation_ = h.incarnation;
      tickets_.clear();
      ticket_order_.clear();
    }
    if (tickets_.count(h.sequence) != 0) {
      ++c.status.duplicates;  // sent again after a lost ack or an export restart: already here
      port.ack(c, h, 0);
      return Delivery::kDone;
    }
    const ChannelResult r = endpoint_->try_send(payload);
    if (r == ChannelResult::kWouldBlock) return Delivery::kNoRoom;
    if (r == ChannelResult::kTooLarge) {  // the local queue's items are smaller: it can never go in
      ++c.status.rejected;
      port.ack(c, h, wire::kRefused);
      return Delivery::kDone;
    }
    if (r != ChannelResult::kOk) {  // the local queue is gone or broken: open it again, then retry
      *why = cat("send said ", to_string(r));
      return Delivery::kBroken;
    }
    ++c.status.messages;
    c.status.bytes += payload.size();
    if ((h.flags & wire::kRedelivered) != 0) ++c.status.redelivered;
    tickets_.insert(h.sequence);
    ticket_order_.push_back(h.sequence);
    if (ticket_order_.size() > kTicketMemory) {
      tickets_.erase(ticket_order_.front());
      ticket_order_.pop_front();
    }
    port.ack(c, h, 0);
    return Delivery::kDone;
  }

  // Items held here (the local queue full) are handed back before the export would take them
  // back itself (its ack_timeout, in the description), so they are not delivered twice.
  std::uint64_t hold_limit_ms(const ImportChannel& c) const override { return c.description.deadline_ms / 2; }

  // An honest export sends no more items than this import's credit.
  bool may_hold(const ImportChannel& c, std::size_t messages, std::size_t, std::size_t) const override {
    return messages < c.queue_window;
  }

  // Not open here (a standby import, or one that is refused), or more than this import offered:
  // back to the export for another import. Refused (too large, malformed): the export must not
  // wait for it (a slot of its window).
  void cannot_take(ImportChannel& c, ImportPort& port, const wire::Header& h, bool open) override {
    port.ack(c, h, open ? wire::kRefused : wire::kNotTaken);
  }

 private:
  // Tickets delivered lately, of ticket_incarnation_ (the upstream queue they belong to).
  std::uint64_t ticket_incarnation_ = 0;
  std::deque<std::uint64_t> ticket_order_;
  std::unordered_set<std::uint64_t> tickets_;
};

}  // namespace

const Pattern& queue_pattern() {
  static const Pattern pattern{
      ChannelKind::kQueue, wire::Type::kItem,
      [] { return std::unique_ptr<ExportLink>(new QueueExport); },
      [] { return std::unique_ptr<ImportLink>(new QueueImport); },
  };
  return pattern;
}

}  // namespace shmring::bridge
