// Topics across the carrier, both halves.
//
// Flow control is by credit, in bytes of batch payload: an import offers a window (its HELLO,
// then its CREDIT messages say how much it has delivered into its local topic since the
// channel's description), and the export sends an import only what fits in `delivered +
// window - sent`. So nothing piles up in the carrier's queues or in the import, whatever a
// subscriber does, and the import never has to stop reading its connection (which would starve
// the carrier's own heartbeats and make a stall look like a dead link).
//
// Export: a subscriber of the local topic (lossless when the topic is) packs what it has ready
// into one message of records (wire.h: each with its sequence number) and sends it to every
// described peer; nothing waits to fill a batch. Lossless: a batch holds no more than the least
// credit of the peers, so every peer takes every batch; with no credit the export reads nothing,
// the topic's ring fills and its publisher waits (back-pressure end to end). A peer that holds
// the channel back for ExportSpec::evict_after is evicted; let back later, it holds nothing back
// until it gives credit again (probation). Lossy: the export reads what comes; a peer without
// credit for a batch misses it (its import counts the gap).
//
// Import: the local topic's publisher. Each message comes with (origin, channel incarnation,
// sequence); the import expects the next sequence, and a jump is exactly the messages lost on the
// way (a full link, a partition, a bridge restart): it goes to the local publisher's lost counter.
// A sequence already delivered (an export restarted and read the ring again) is dropped. Where
// the expectation starts: the local topic remembers the last upstream position delivered
// (TopicPublisher::try_send_from), so an import killed at any instruction resumes exactly.
#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "link.h"
#include "shmring/core/detail/message.h"
#include "shmring/transport/topic.h"

namespace shmring::bridge {

using shmring::detail::cat;
namespace {

constexpr int kBatch = 512;  // records per message, batches per step

// The window both sides apply: what was asked, but never less than one message of the largest
// size (else it could never be sent) nor more than `most` (the export's own bound).
std::uint64_t effective_window(std::uint64_t asked, std::uint64_t max_message, std::uint64_t most) {
  const std::uint64_t one = wire::kRecordHeader + max_message;
  return std::max(one, std::min(asked, std::max(most, one)));
}

class TopicExport final : public ExportLink {
 public:
  absl::Status open(const std::string& name, const ChannelStats& stats, const ExportSpec& spec,
                    std::uint64_t* incarnation) override {
    TopicOptions o;
    o.create = false;
    o.lossless = stats.lossless;
    if (absl::Status s = open_into<TopicSubscriber>(name, o, &topic_); !s.ok()) return s;
    *incarnation = topic_->channel_incarnation();
    // Room for a batch: one message of the largest size, plus 64 KiB of smaller ones.
    buffer_.resize(wire::kRecordHeader + topic_->max_message() + wire::kBatchSlack);
    lossless_ = stats.lossless;
    most_window_ = spec.topic_window;
    evict_after_ms_ = static_cast<std::uint64_t>(spec.evict_after.count());
    return absl::OkStatus();
  }

  WaitEvent take_wait_events() override { return topic_->take_wait_events(); }

  std::optional<std::uint64_t> baseline() const override {
    // While a batch is owed to some peer, the subscriber's position is past it: no baseline.
    if (!pending_.empty()) return std::nullopt;
    return topic_->next_sequence();
  }

  std::optional<std::uint64_t> position_for(const PeerId& id, const PeerChannel& peer) const override {
    if (!peer.described) return std::nullopt;
    // A batch still owed to it (its link was full) comes first; otherwise the subscriber's next.
    if (std::find(pending_.begin(), pending_.end(), id) != pending_.end()) return pending_first_;
    return topic_->next_sequence();
  }

  absl::Status move(ExportChannel& c, ExportPort& port, std::uint64_t now) override {
    evict_the_stuck(c, port, now);
    blocked_on_credit_ = false;
    if (!pending_.empty()) {
      retry_pending(c, port, now);
      if (!pending_.empty()) return absl::OkStatus();
    }
    for (int round = 0; round < kBatch; ++round) {
      Batch batch;
      if (absl::Status s = read_batch(c, &batch); !s.ok()) return s;
      if (batch.records == 0) {
        note_blocked(c, batch.next_size, now);
        return absl::OkStatus();
      }
      send_batch(c, port, batch, now);
      if (!pending_.empty() || batch.drained) return absl::OkStatus();
    }
    return absl::OkStatus();
  }

  void plan_wait(const ExportChannel& c, std::uint64_t now, WaitPlan* plan) override {
    if (lossless_ && evict_after_ms_ != 0) {
      for (const auto& [id, peer] : c.peers) {
        if (peer.blocked_since_ns != 0) plan->until(peer.blocked_since_ns + evict_after_ms_ * kMs);
      }
    }
    if (!pending_.empty()) {
      plan->until(now + kFullRetryNs);  // a full link: retry soon
    } else if (!blocked_on_credit_) {
      // Read even with no import connected (a lossless topic's publisher must not wait for
      // nobody); what an import misses while away is counted as a gap when it is back.
      plan->add(topic_->wait_fd());
    }
    // Blocked on credit: it comes on the carrier, whose descriptor the side polls.
  }

  void on_message(ExportChannel&, const PeerId&, PeerChannel* peer, const wire::Header& h) override {
    // CREDIT for the peer's latest description (an older one counted bytes of another epoch).
    if (h.type != wire::Type::kCredit || peer == nullptr || !peer->described || h.incarnation != peer->epoch) return;
    peer->delivered = std::max(peer->delivered, h.sequence);
    peer->window = h.value;
    peer->on_probation = false;  // it gives credit: it may hold the channel back again
  }

  void forget(ExportChannel&, const PeerId& id) override { std::erase(pending_, id); }

 private:
  struct Batch {
    std::size_t used = 0;  // payload bytes (records with their headers)
    std::size_t records = 0;
    std::uint64_t first = 0;    // the first record's sequence
    bool drained = false;       // the subscriber had no more
    std::size_t next_size = 0;  // no record: the next message, which did not fit (0: none waits)
  };

  // Lossless: a peer that has held the channel back for evict_after is evicted (the side tells
  // it); the others go on.
  void evict_the_stuck(const ExportChannel& c, ExportPort& port, std::uint64_t now) {
    if (!lossless_ || evict_after_ms_ == 0) return;
    for (const auto& [id, peer] : c.peers) {
      if (holds_back(peer) && peer.blocked_since_ns != 0 && now - peer.blocked_since_ns >= evict_after_ms_ * kMs) {
        port.evict(id, wire::EvictReason::kHeldBack, evict_after_ms_);
      }
    }
  }

  // Whether `peer` must take every batch (lossless, described, not on probation): the batch
  // waits for its credit. The others miss what they have no credit for.
  bool holds_back(const PeerChannel& peer) const { return lossless_ && peer.described && !peer.on_probation; }

  // Credit `peer` has left, in payload bytes.
  std::uint64_t credit(const PeerChannel& peer) const {
    const std::uint64_t allowed = peer.delivered + effective_window(peer.window, topic_->max_message(), most_window_);
    return allowed > peer.sent ? allowed - peer.sent : 0;
  }

  // Reads what the subscriber has ready into buffer_, as much as the batch may hold: the
  // buffer, and (lossless) the least credit of the described peers, so each takes the batch.
  absl::Status read_batch(const ExportChannel& c, Batch* batch) {
    std::uint64_t budget = buffer_.size() - wire::kRecordHeader;  // a record's header may go past it
    if (lossless_) {
      for (const auto& [id, peer] : c.peers) {
        if (holds_back(peer)) budget = std::min(budget, credit(peer));
      }
    }
    const std::size_t max_message = static_cast<std::size_t>(topic_->max_message());
    while (batch->records < kBatch) {
      const std::uint64_t left = budget > batch->used ? budget - batch->used : 0;
      const std::size_t room = left > wire::kRecordHeader ? std::min<std::uint64_t>(max_message, left - wire::kRecordHeader) : 0;
      std::size_t bytes = 0;
      const ChannelResult r = topic_->try_receive(
          std::span<std::byte>(buffer_.data() + batch->used + wire::kRecordHeader, room), &bytes);
      if (r == ChannelResult::kWouldBlock) {
        batch->drained = true;
        return absl::OkStatus();
      }
      if (r == ChannelResult::kTooLarge && room < max_message) {
        // The next message does not fit in what is left (it stays in the ring for later).
        if (batch->records == 0) batch->next_size = bytes;
        return absl::OkStatus();
      }
      if (r != ChannelResult::kOk) return absl::UnavailableError(cat("receive said ", to_string(r)));
      if (batch->records == 0) batch->first = topic_->last_sequence();
      wire::put_record_header(buffer_.data() + batch->used, topic_->last_sequence(), static_cast<std::uint32_t>(bytes));
      batch->used += wire::kRecordHeader + bytes;
      ++batch->records;
      if (room == 0) return absl::OkStatus();  // an empty message taken with no credit left
    }
    return absl::OkStatus();
  }

  // Sends the batch to every described peer. A lossy peer without credit for it, or whose link
  // is full, misses it (the import counts the gap); a lossless one whose link is full is owed it.
  void send_batch(ExportChannel& c, ExportPort& port, const Batch& batch, std::uint64_t now) {
    wire::Header h = port.header(c, wire::Type::kTopic);
    h.sequence = batch.first;
    h.value = batch.used;
    wire::encode(h, &header_);
    payload_bytes_ = batch.used;
    const std::span<const std::byte> payload(buffer_.data(), batch.used);
    bool any = false;
    for (auto& [id, peer] : c.peers) {
      if (!peer.described) continue;
      peer.blocked_since_ns = 0;  // it had credit for this batch
      if (!holds_back(peer) && credit(peer) < batch.used) {
        c.status.dropped += batch.records;  // no credit: the import counts them as a gap
        continue;
      }
      switch (port.send(id, header_, payload)) {
        case SendResult::kOk:
          any = true;
          peer.sent += batch.used;
          break;
        case SendResult::kFull:
          if (holds_back(peer)) {
            pending_.push_back(id);
            peer.blocked_since_ns = now;
          } else {
            c.status.dropped += batch.records;  // the import counts them as a gap
          }
          break;
        case SendResult::kGone: break;
      }
    }
    if (any || !pending_.empty()) {
      c.status.messages += batch.records;
      c.status.bytes += batch.used - batch.records * wire::kRecordHeader;
    }
    if (!pending_.empty()) {  // lossless: nothing more until all took it
      pending_since_ns_ = now;
      pending_first_ = batch.first;
    }
  }

  // Nothing was read: a message of `next_size` bytes waits for credit (0: none waits). Lossless:
  // the peers short of credit for it hold the channel back from now on (or since earlier); the
  // others do not.
  void note_blocked(ExportChannel& c, std::size_t next_size, std::uint64_t now) {
    if (!lossless_) return;
    blocked_on_credit_ = next_size != 0;
    for (auto& [id, peer] : c.peers) {
      if (!holds_back(peer)) continue;
      const bool short_of_credit = next_size != 0 && credit(peer) < wire::kRecordHeader + next_size;
      if (!short_of_credit) {
        peer.blocked_since_ns = 0;
      } else if (peer.blocked_since_ns == 0) {
        peer.blocked_since_ns = now;
      }
    }
  }

  void retry_pending(ExportChannel& c, ExportPort& port, std::uint64_t now) {
    const std::span<const std::byte> payload(buffer_.data(), payload_bytes_);
    for (auto it = pending_.begin(); it != pending_.end();) {
      const SendResult r = port.send(*it, header_, payload);
      if (r == SendResult::kFull) {
        ++it;
        continue;
      }
      if (r == SendResult::kOk) {
        if (auto peer = c.peers.find(*it); peer != c.peers.end()) {
          peer->second.sent += payload_bytes_;
          peer->second.blocked_since_ns = 0;
        }
      }
      it = pending_.erase(it);  // sent, or the peer is gone
    }
    if (pending_.empty()) c.status.held_back_ns += now - pending_since_ns_;
  }

  std::optional<TopicSubscriber> topic_;
  bool lossless_ = false;
  std::uint64_t most_window_ = 0;    // ExportSpec::topic_window
  std::uint64_t evict_after_ms_ = 0;  // ExportSpec::evict_after
  bool blocked_on_credit_ = false;
  // The batch being sent, kept while some lossless peers' links are full (sent again until taken).
  std::vector<std::byte> buffer_;
  std::vector<std::byte> header_;
  std::size_t payload_bytes_ = 0;
  std::vector<PeerId> pending_;
  std::uint64_t pending_first_ = 0;  // the pending batch's first sequence
  std::uint64_t pending_since_ns_ = 0;
};

class TopicImport final : public SendingLink<TopicPublisher> {
 public:
  absl::Status open(const ImportChannel& c, bool exact) override {
    TopicOptions o = described_limits<TopicOptions>(c.description, exact);
    o.lossless = c.description.lossless != 0;
    // A topic made here keeps the history the exported one keeps (an existing one keeps its own).
    if (exact) o.history = c.description.history;
    return open_endpoint(c, o);
  }
  std::uint64_t batch_overhead() const override { return wire::kMaxBatchOverhead; }

  void opened(ImportChannel&) override { expected_ = endpoint_->upstream_resume(); }

  // Where loss counting starts when this import knows nothing of the upstream channel yet (first
  // contact, or the channel there was created anew): the export's baseline. An expectation of the
  // same upstream channel (kept across a reconnection, or read back from the local topic after a
  // restart) wins: the gap since then is real loss.
  void described(ImportChannel& c, const wire::Header& h) override {
    if (!endpoint_ || (h.flags & wire::kHasBaseline) == 0) return;
    if (expected_.origin == h.origin && expected_.incarnation == h.incarnation) return;
    if (expected_.origin != 0) ++c.status.resets;
    expected_ = UpstreamPosition{h.origin, h.incarnation, h.sequence};
  }

  // The export is at `h.sequence` for this import and everything before it has arrived (one
  // ordered connection): what was expected and never came was lost on the way. Counted now, not
  // when (if ever) a later message reveals it; the mark moves too, so a restart does not count it
  // again.
  void at_position(ImportChannel& c, const wire::Header& h) override {
    UpstreamPosition& e = expected_;
    if (!endpoint_ || e.origin != h.origin || e.incarnation != h.incarnation || h.sequence <= e.sequence) return;
    const std::uint64_t gap = h.sequence - e.sequence;
    c.status.lost += gap;
    endpoint_->count_upstream_lost(gap);
    e.sequence = h.sequence;
    endpoint_->mark_upstream(e);
  }

  Delivery deliver(ImportChannel& c, ImportPort&, const wire::Header& h, std::span<const std::byte> payload,
                   std::size_t* offset, std::string*) override {
    const std::uint64_t max = std::min(c.description.max_message, c.local_max_message);
    wire::TopicRecord record;
    while (*offset < payload.size()) {
      std::size_t next = *offset;
      if (!wire::next_record(payload, &next, &record)) {
        ++c.status.rejected;  // a record that does not fit: the rest of the batch is garbage
        return Delivery::kDone;
      }
      if (record.bytes.size() > max) {
        ++c.status.rejected;  // no honest export sends that
      } else if (!deliver_one(c, h, record)) {
        return Delivery::kNoRoom;
      }
      *offset = next;
    }
    return Delivery::kDone;
  }

  bool may_hold(const ImportChannel& c, std::size_t, std::size_t bytes, std::size_t incoming) const override {
    return bytes + incoming <= window(c) + wire::kMaxBatchOverhead;
  }

  void finished(ImportChannel& c, std::size_t payload_bytes, std::uint64_t epoch) override {
    if (epoch == c.epoch) delivered(c) += payload_bytes;
  }

  // CREDIT: what went into the local topic since the description, and the window beyond it.
  // Sent when a quarter of the window was delivered since the last one (so the export never runs
  // dry while the local topic takes everything), and at every heartbeat (a lost one is repaired).
  void flow(ImportChannel& c, ImportPort& port, bool heartbeat) override {
    if (!c.described) return;
    const std::uint64_t done = delivered(c);
    const bool due = heartbeat || unreported_ || reported_epoch_ != c.epoch || done - reported_ >= window(c) / 4;
    if (!due) return;
    wire::Header h;
    h.type = wire::Type::kCredit;
    h.incarnation = c.epoch;
    h.sequence = done;
    h.value = window(c);
    unreported_ = !port.send_control(c, h);
    if (!unreported_) {
      reported_ = done;
      reported_epoch_ = c.epoch;
    }
  }

 private:
  // The credit window for this channel: ImportSpec::topic_window, at least one message.
  static std::uint64_t window(const ImportChannel& c) {
    return effective_window(c.topic_window, c.description.max_message, kMaxTopicWindow);
  }

  // Bytes delivered under the current description (a new description starts from 0).
  std::uint64_t& delivered(const ImportChannel& c) {
    if (delivered_epoch_ != c.epoch) {
      delivered_epoch_ = c.epoch;
      delivered_ = 0;
    }
    return delivered_;
  }

  bool deliver_one(ImportChannel& c, const wire::Header& h, const wire::TopicRecord& m) {
    UpstreamPosition& e = expected_;
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
      endpoint_->count_upstream_lost(gap);
      e.sequence = m.sequence;
    }
    const ChannelResult r = endpoint_->try_send_from(e, m.bytes);
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

  UpstreamPosition expected_;  // the next upstream message expected (valid once origin != 0)
  std::uint64_t delivered_ = 0;
  std::uint64_t delivered_epoch_ = 0;
  std::uint64_t reported_ = 0;  // the delivered count the export was last told
  std::uint64_t reported_epoch_ = 0;
  bool unreported_ = false;  // the last CREDIT found the link full
};

}  // namespace

const Pattern& topic_pattern() {
  static const Pattern pattern{
      ChannelKind::kTopic, wire::Type::kTopic,
      [] { return std::unique_ptr<ExportLink>(new TopicExport); },
      [] { return std::unique_ptr<ImportLink>(new TopicImport); },
  };
  return pattern;
}

}  // namespace shmring::bridge
