// Topics across the carrier, both halves.
//
// Export: a subscriber of the local topic (lossless when the topic is) packs what it has ready
// into one message of records (wire.h: each with its sequence number) and sends it to every
// described peer; nothing waits to fill a batch. A lossy peer whose link is full misses the batch
// (its import counts the gap); a lossless one is owed it, and the export reads nothing more until
// every lossless peer took it (back-pressure: the topic's ring fills, the publisher waits).
//
// Import: the local topic's publisher. Each message comes with (origin, channel incarnation,
// sequence); the import expects the next sequence, and a jump is exactly the messages lost on the
// way (a full link, a partition, a bridge restart): it goes to the local publisher's lost counter.
// A sequence already delivered (an export restarted and read the ring again) is dropped. Where
// the expectation starts: the local topic remembers the last upstream position delivered
// (TopicPublisher::try_send_from), so an import killed at any instruction resumes exactly.
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

class TopicExport final : public ExportLink {
 public:
  absl::Status open(const std::string& name, const ChannelStats& stats, const ExportSpec&,
                    std::uint64_t* incarnation) override {
    TopicOptions o;
    o.create = false;
    o.lossless = stats.lossless;
    if (absl::Status s = open_into<TopicSubscriber>(name, o, &topic_); !s.ok()) return s;
    *incarnation = topic_->channel_incarnation();
    // Room for a batch: one message of the largest size, plus 64 KiB of smaller ones.
    buffer_.resize(wire::kRecordHeader + topic_->max_message() + wire::kBatchSlack);
    lossless_ = stats.lossless;
    return absl::OkStatus();
  }

  WaitEvent take_wait_events() override { return topic_->take_wait_events(); }

  std::optional<std::uint64_t> baseline() const override {
    // While a batch is owed to some peer, the subscriber's position is past it: no baseline.
    if (!pending_.empty()) return std::nullopt;
    return topic_->next_sequence();
  }

  absl::Status move(ExportChannel& c, ExportPort& port, std::uint64_t now) override {
    if (!pending_.empty()) {
      retry_pending(c, port, now);
      if (!pending_.empty()) return absl::OkStatus();
    }
    const std::size_t max_message = static_cast<std::size_t>(topic_->max_message());
    for (int round = 0; round < kBatch; ++round) {
      std::size_t used = 0;
      std::size_t records = 0;
      std::uint64_t first = 0;
      bool drained = false;
      while (used + wire::kRecordHeader + max_message <= buffer_.size() && records < kBatch) {
        std::size_t bytes = 0;
        const ChannelResult r = topic_->try_receive(
            std::span<std::byte>(buffer_.data() + used + wire::kRecordHeader, max_message), &bytes);
        if (r == ChannelResult::kWouldBlock) {
          drained = true;
          break;
        }
        if (r != ChannelResult::kOk) return absl::UnavailableError(cat("receive said ", to_string(r)));
        const std::uint64_t sequence = topic_->last_sequence();
        if (records == 0) first = sequence;
        wire::put_record_header(buffer_.data() + used, sequence, static_cast<std::uint32_t>(bytes));
        used += wire::kRecordHeader + bytes;
        ++records;
      }
      if (records == 0) return absl::OkStatus();
      wire::Header h = port.header(c, wire::Type::kTopic);
      h.sequence = first;
      h.value = used;
      wire::encode(h, &header_);
      payload_bytes_ = used;
      const std::span<const std::byte> payload(buffer_.data(), used);
      bool any = false;
      for (const auto& [id, peer] : c.peers) {
        if (!peer.described) continue;
        switch (port.send(id, header_, payload)) {
          case SendResult::kOk: any = true; break;
          case SendResult::kFull:
            if (lossless_) {
              pending_.push_back(id);
            } else {
              c.status.dropped += records;  // the import counts them as a gap
            }
            break;
          case SendResult::kGone: break;
        }
      }
      if (any || !pending_.empty()) {
        c.status.messages += records;
        c.status.bytes += used - records * wire::kRecordHeader;
      }
      if (!pending_.empty()) {
        pending_since_ns_ = now;
        return absl::OkStatus();  // lossless: nothing more until every peer took this one
      }
      if (drained) return absl::OkStatus();
    }
    return absl::OkStatus();
  }

  void plan_wait(const ExportChannel&, std::uint64_t now, WaitPlan* plan) override {
    if (!pending_.empty()) {
      plan->until(now + kFullRetryNs);  // a full link: retry soon
    } else {
      // Read even with no import connected (a lossless topic's publisher must not wait for
      // nobody); what an import misses while away is counted as a gap when it is back.
      plan->add(topic_->wait_fd());
    }
  }

  void on_message(ExportChannel&, const PeerId&, PeerChannel*, const wire::Header&) override {}

  void forget(ExportChannel&, const PeerId& id) override { std::erase(pending_, id); }

 private:
  void retry_pending(ExportChannel& c, ExportPort& port, std::uint64_t now) {
    const std::span<const std::byte> payload(buffer_.data(), payload_bytes_);
    for (auto it = pending_.begin(); it != pending_.end();) {
      if (port.send(*it, header_, payload) == SendResult::kFull) {
        ++it;
        continue;
      }
      it = pending_.erase(it);  // sent, or the peer is gone
    }
    if (pending_.empty()) c.status.held_back_ns += now - pending_since_ns_;
  }

  std::optional<TopicSubscriber> topic_;
  bool lossless_ = false;
  // The batch being sent, kept while some lossless peers' links are full (sent again until taken).
  std::vector<std::byte> buffer_;
  std::vector<std::byte> header_;
  std::size_t payload_bytes_ = 0;
  std::vector<PeerId> pending_;
  std::uint64_t pending_since_ns_ = 0;
};

class TopicImport final : public ImportLink {
 public:
  absl::Status open(const ImportChannel& c, bool exact) override {
    TopicOptions o = described_limits<TopicOptions>(c.description, exact);
    o.lossless = c.description.lossless != 0;
    return open_into<TopicPublisher>(c.route.local, o, &topic_);
  }
  void close() override { topic_.reset(); }
  bool is_open() const override { return topic_.has_value(); }
  int wait_fd() const override { return topic_ ? topic_->wait_fd() : -1; }
  WaitEvent take_wait_events() override { return topic_->take_wait_events(); }
  std::uint64_t max_message() const override { return topic_->max_message(); }
  std::uint64_t batch_overhead() const override { return wire::kMaxBatchOverhead; }

  void opened(ImportChannel&) override { expected_ = topic_->upstream_resume(); }

  // Where loss counting starts when this import knows nothing of the upstream channel yet (first
  // contact, or the channel there was created anew): the export's baseline. An expectation of the
  // same upstream channel (kept across a reconnection, or read back from the local topic after a
  // restart) wins: the gap since then is real loss.
  void described(ImportChannel& c, const wire::Header& h) override {
    if (!topic_ || (h.flags & wire::kHasBaseline) == 0) return;
    if (expected_.origin == h.origin && expected_.incarnation == h.incarnation) return;
    if (expected_.origin != 0) ++c.status.resets;
    expected_ = UpstreamPosition{h.origin, h.incarnation, h.sequence};
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

 private:
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
      topic_->count_upstream_lost(gap);
      e.sequence = m.sequence;
    }
    const ChannelResult r = topic_->try_send_from(e, m.bytes);
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

  std::optional<TopicPublisher> topic_;
  UpstreamPosition expected_;  // the next upstream message expected (valid once origin != 0)
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
