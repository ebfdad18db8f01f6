// shmring's side of shmring_publishers_bench: publishers and a subscriber of one topic (copying
// send / try_receive), and the history join measurement.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "publishers_bench.h"
#include "shmring/transport/channel.h"
#include "shmring/transport/topic.h"

namespace shmring::bench::publishers {
namespace {

using namespace std::chrono_literals;

// Every endpoint of a run passes the same options (the creator's settings must agree).
TopicOptions topic_options(const RunSpec& spec) {
  TopicOptions options;
  options.capacity = 1 << 20;  // as the `shmring bench` topic transport for 64 B messages
  while (options.capacity < 8 * (spec.size + 64)) options.capacity <<= 1;
  options.max_message = spec.size;
  options.max_publishers = static_cast<std::uint32_t>(spec.max_publishers);
  options.max_peers = static_cast<std::uint32_t>(spec.max_publishers) + 4;
  return options;
}

void wait_for_go(SharedRun& run) {
  while (run.go.load(std::memory_order_acquire) == 0) {
  }
}

class ShmringPeer final : public PeerUnderTest {
 public:
  absl::Status prepare(const RunSpec&) override { return absl::OkStatus(); }

  int run_publisher(int index, const RunSpec& spec, SharedRun& run) override {
    absl::StatusOr<TopicPublisher> publisher = TopicPublisher::open(spec.name, topic_options(spec));
    if (!publisher.ok()) {
      fail(run, "publisher: " + std::string(publisher.status().message()));
      return 1;
    }
    run.ready.fetch_add(1);
    wait_for_go(run);
    // Lossless: held back while the subscriber is a ring behind (send() waits as TopicOptions
    // says). Lossy: never held back.
    publish_loop(index, spec, run, [&](std::span<const std::byte> message) {
      return publisher->send(message, 10s) == ChannelResult::kOk;
    });
    // Stay open until the subscriber has everything.
    while (run.drained.load(std::memory_order_acquire) == 0 && run.errors.load() == 0) {
      std::this_thread::sleep_for(1ms);
    }
    return run.errors.load() == 0 ? 0 : 1;
  }

  int run_subscriber(const RunSpec& spec, SharedRun& run) override {
    TopicOptions options = topic_options(spec);
    options.delivery = spec.lossless ? TopicDelivery::kLossless : TopicDelivery::kLossy;
    absl::StatusOr<TopicSubscriber> subscriber = TopicSubscriber::open(spec.name, options);
    if (!subscriber.ok()) {
      fail(run, "subscriber: " + std::string(subscriber.status().message()));
      run.drained.store(1);
      return 1;
    }
    run.ready.fetch_add(1);
    wait_for_go(run);
    SubscriberRecord& mine = run.subscriber;
    std::uint64_t last_sequence = 0;
    bool any = false;
    subscribe_loop(spec, run, [&](std::span<std::byte> buffer) {
      std::size_t bytes = 0;
      const ChannelResult result = subscriber->try_receive(buffer, &bytes);
      if (result == ChannelResult::kWouldBlock) return Got::kNone;
      if (result != ChannelResult::kOk || bytes != spec.size) {
        fail(run, "subscriber: try_receive " + std::string(to_string(result)));
        return Got::kError;
      }
      // One total order: topic sequence numbers grow; the publisher number the topic carries is
      // the one in the payload.
      const std::uint64_t sequence = subscriber->last_sequence();
      Stamp stamp;
      std::memcpy(&stamp, buffer.data(), sizeof stamp);
      if ((any && sequence <= last_sequence) || subscriber->last_publisher_sequence() != stamp.sequence) {
        ++mine.topic_order_violations;
      }
      any = true;
      last_sequence = sequence;
      return Got::kMessage;
    });
    mine.lost_counted = subscriber->lost();
    mine.counts_losses = true;
    run.drained.store(1, std::memory_order_release);
    return run.errors.load() == 0 ? 0 : 1;
  }

  void cleanup(const RunSpec& spec) override { (void)remove_channel(spec.name); }
};

// --- History ---------------------------------------------------------------------------------------

struct HistoryShared {
  std::atomic<int> published{0};  // the publisher has sent them all
  std::atomic<int> finish{0};     // the publisher may close
  std::atomic<int> errors{0};
  std::uint64_t capacity = 0;
  std::int64_t join_ns = 0, open_ns = 0;  // the current repetition's
  std::uint64_t received = 0, missed = 0, out_of_order = 0;
  char error[256] = {};
};

void history_fail(HistoryShared& shared, const std::string& why) {
  if (shared.errors.fetch_add(1) == 0) std::snprintf(shared.error, sizeof shared.error, "%s", why.c_str());
}

int history_publisher(const HistorySpec& spec, HistoryShared& shared) {
  if (!pin_to_cpu(spec.publisher_cpu)) history_fail(shared, "cannot pin the publisher");
  TopicOptions options;
  options.history = spec.messages;
  options.max_message = spec.size;  // capacity 0: the creator sizes the ring for the history
  absl::StatusOr<TopicPublisher> publisher = TopicPublisher::open(spec.name, options);
  if (!publisher.ok()) {
    history_fail(shared, "history publisher: " + std::string(publisher.status().message()));
    shared.published.store(1);
    return 1;
  }
  std::vector<std::byte> message(spec.size, std::byte{0x5a});
  Stamp stamp;
  for (; stamp.sequence < spec.messages; ++stamp.sequence) {
    stamp.sent_ns = now_ns();
    std::memcpy(message.data(), &stamp, sizeof stamp);
    if (publisher->send(message, 10s) != ChannelResult::kOk) {
      history_fail(shared, "history publisher: send failed");
      break;
    }
  }
  if (absl::StatusOr<ChannelStats> stats = read_stats(spec.name); stats.ok()) shared.capacity = stats->capacity;
  shared.published.store(1, std::memory_order_release);
  while (shared.finish.load(std::memory_order_acquire) == 0) std::this_thread::sleep_for(1ms);
  return 0;
}

int history_subscriber(const HistorySpec& spec, HistoryShared& shared) {
  if (!pin_to_cpu(spec.subscriber_cpu)) history_fail(shared, "cannot pin the subscriber");
  TopicOptions options;
  options.create = false;
  options.start = TopicStart::history(spec.messages);
  std::vector<std::byte> buffer(spec.size);
  const std::int64_t start = now_ns();
  absl::StatusOr<TopicSubscriber> subscriber = TopicSubscriber::open(spec.name, options);
  const std::int64_t opened = now_ns();
  if (!subscriber.ok()) {
    history_fail(shared, "history subscriber: " + std::string(subscriber.status().message()));
    return 1;
  }
  std::uint64_t received = 0, out_of_order = 0;
  const std::int64_t give_up = start + 30'000'000'000;
  while (received < spec.messages) {
    std::size_t bytes = 0;
    const ChannelResult result = subscriber->try_receive(buffer, &bytes);
    if (result == ChannelResult::kWouldBlock) {
      if (now_ns() > give_up) break;
      continue;
    }
    if (result != ChannelResult::kOk) {
      history_fail(shared, "history subscriber: try_receive " + std::string(to_string(result)));
      break;
    }
    Stamp stamp;
    std::memcpy(&stamp, buffer.data(), sizeof stamp);
    if (stamp.sequence != received) ++out_of_order;
    ++received;
  }
  const std::int64_t done = now_ns();
  shared.join_ns = done - start;
  shared.open_ns = opened - start;
  shared.received = received;
  shared.missed = subscriber->history_missed();
  shared.out_of_order = out_of_order;
  return 0;
}

bool reap_one(pid_t pid) {
  int status = 0;
  return waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

}  // namespace

std::unique_ptr<PeerUnderTest> make_shmring_peer() { return std::make_unique<ShmringPeer>(); }

HistoryOutcome measure_history(const HistorySpec& spec) {
  HistoryOutcome out;
  HistoryShared* shared = make_shared_record<HistoryShared>();
  if (shared == nullptr) {
    out.error = "mmap failed";
    return out;
  }
  std::fflush(nullptr);
  const pid_t publisher = fork();
  if (publisher == 0) _exit(history_publisher(spec, *shared));
  const std::int64_t deadline = now_ns() + 60'000'000'000;
  while (shared->published.load(std::memory_order_acquire) == 0 && now_ns() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  for (int rep = 0; rep < spec.repetitions && shared->errors.load() == 0; ++rep) {
    std::fflush(nullptr);
    const pid_t subscriber = fork();
    if (subscriber == 0) _exit(history_subscriber(spec, *shared));
    if (!reap_one(subscriber)) history_fail(*shared, "history subscriber failed");
    out.join_ns.push_back(shared->join_ns);
    out.open_ns.push_back(shared->open_ns);
    out.history_missed += shared->missed;
    out.out_of_order += shared->out_of_order;
    if (shared->received != spec.messages) ++out.short_count;
  }
  shared->finish.store(1, std::memory_order_release);
  if (!reap_one(publisher)) history_fail(*shared, "history publisher failed");
  (void)remove_channel(spec.name);
  out.capacity = shared->capacity;
  out.error = shared->error;
  if (out.error.empty() && out.short_count > 0) out.error = "a late subscriber did not receive the whole history";
  out.ok = out.error.empty();
  release_shared(shared);
  return out;
}

}  // namespace shmring::bench::publishers
