// Frames across the carrier, both halves: newest first, as on one host.
//
// Export: a subscriber of the local frames channel. A frame goes to a peer only while it has
// taken the previous ones (kFrameCredit in flight per peer); meanwhile the publisher goes on, and
// what is sent next is the newest frame (the ones in between are skipped). The view pins the
// frame while it is sent, so what is sent is never torn. --max-rate caps the frames per second.
//
// Import: the local frames channel's publisher. Every frame is acknowledged (that returns the
// export's credit); a frame the local channel cannot take now (every buffer pinned by slow
// readers) is skipped, newest first. Frames skipped upstream are counted in `lost`.
#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "link.h"
#include "shmring/core/detail/message.h"
#include "shmring/transport/frame.h"

namespace shmring::bridge {

using shmring::detail::cat;
namespace {

constexpr std::uint32_t kFrameCredit = 2;  // frames in flight per peer (newest first)

class FrameExport final : public ExportLink {
 public:
  absl::Status open(const std::string& name, const ChannelStats&, const ExportSpec& spec,
                    std::uint64_t* incarnation) override {
    FrameOptions o;
    o.create = false;
    if (absl::Status s = open_into<FrameSubscriber>(name, o, &frames_); !s.ok()) return s;
    *incarnation = frames_->channel_incarnation();
    max_rate_ = spec.max_rate;
    return absl::OkStatus();
  }

  WaitEvent take_wait_events() override { return frames_->take_wait_events(); }

  absl::Status move(ExportChannel& c, ExportPort& port, std::uint64_t now) override {
    // Only when a peer can take a frame now: meanwhile the publisher goes on, and what is sent
    // next is the newest frame (the ones in between are skipped, newest first).
    if (!any_credit(c) || now < next_frame_ns_) return absl::OkStatus();
    FrameView v = frames_->try_receive_view();
    if (!v.ok()) {
      if (v.result() != ChannelResult::kWouldBlock) {
        return absl::UnavailableError(cat("receive said ", to_string(v.result())));
      }
      return absl::OkStatus();
    }
    wire::Header h = port.header(c, wire::Type::kFrame);
    h.sequence = v.sequence();
    h.value = v.data().size();
    wire::encode(h, &header_);
    bool any = false;
    for (auto& [id, peer] : c.peers) {
      if (!peer.described) continue;
      if (peer.in_flight >= kFrameCredit) {
        ++c.status.dropped;  // this peer is still taking earlier frames
        continue;
      }
      // The view pins the frame, so what is sent is never torn.
      switch (port.send(id, header_, v.data())) {
        case SendResult::kOk:
          ++peer.in_flight;
          any = true;
          break;
        case SendResult::kFull: ++c.status.dropped; break;
        case SendResult::kGone: break;
      }
    }
    v.release();
    if (any) {
      ++c.status.messages;
      c.status.bytes += h.value;
    }
    if (max_rate_ > 0) {
      const double interval_ns = std::min(1e9 / max_rate_, 3600e9);  // at least one an hour
      next_frame_ns_ = now + static_cast<std::uint64_t>(interval_ns);
    }
    return absl::OkStatus();
  }

  void plan_wait(const ExportChannel& c, std::uint64_t now, WaitPlan* plan) override {
    if (!any_credit(c)) return;
    if (now < next_frame_ns_) {
      plan->until(next_frame_ns_);
    } else {
      plan->add(frames_->wait_fd());
    }
  }

  void on_message(ExportChannel& c, const PeerId&, PeerChannel* peer, const wire::Header& h) override {
    if (h.type != wire::Type::kAck || h.incarnation != c.incarnation) return;
    if (peer != nullptr && peer->in_flight > 0) --peer->in_flight;
  }

  void forget(ExportChannel&, const PeerId&) override {}

 private:
  static bool any_credit(const ExportChannel& c) {
    return std::any_of(c.peers.begin(), c.peers.end(), [](const auto& entry) {
      return entry.second.described && entry.second.in_flight < kFrameCredit;
    });
  }

  std::optional<FrameSubscriber> frames_;
  double max_rate_ = 0;
  std::uint64_t next_frame_ns_ = 0;  // max_rate
  std::vector<std::byte> header_;
};

class FrameImport final : public SendingLink<FramePublisher> {
 public:
  absl::Status open(const ImportChannel& c, bool exact) override {
    return open_endpoint(c, described_limits<FrameOptions>(c.description, exact));
  }

  Delivery deliver(ImportChannel& c, ImportPort& port, const wire::Header& h, std::span<const std::byte> payload,
                   std::size_t*, std::string*) override {
    const ChannelResult r = endpoint_->try_send(payload);
    if (r == ChannelResult::kOk) {
      ++c.status.messages;
      c.status.bytes += payload.size();
    } else {
      ++c.status.dropped;  // every buffer pinned by slow readers: newest first, this one is skipped
    }
    // Frames skipped upstream (newest first over a slow link) are counted, not delivered later.
    if (next_frame_ != 0 && h.sequence > next_frame_) c.status.lost += h.sequence - next_frame_;
    next_frame_ = h.sequence + 1;
    port.ack(c, h, 0);
    return Delivery::kDone;
  }

  // Never held: a frame the local channel cannot take now is skipped.
  bool may_hold(const ImportChannel&, std::size_t, std::size_t, std::size_t) const override { return true; }

  // Acknowledged either way, so the export's credit comes back (a standby import that takes
  // over later gets frames at once).
  void cannot_take(ImportChannel& c, ImportPort& port, const wire::Header& h, bool open) override {
    port.ack(c, h, open ? wire::kRefused : wire::kNotTaken);
  }

 private:
  std::uint64_t next_frame_ = 0;
};

}  // namespace

const Pattern& frame_pattern() {
  static const Pattern pattern{
      ChannelKind::kFrames, wire::Type::kFrame,
      [] { return std::unique_ptr<ExportLink>(new FrameExport); },
      [] { return std::unique_ptr<ImportLink>(new FrameImport); },
  };
  return pattern;
}

}  // namespace shmring::bridge
