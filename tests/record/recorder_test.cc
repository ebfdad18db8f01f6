// The recorder and the replayer against live channels: publishers, producers and consumers in
// other processes, the recorder in a thread of this one. What each test proves is in its name.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <set>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "loss.h"
#include "record_test_util.h"
#include "shmring/record/mcap.h"
#include "shmring/record/recorder.h"
#include "shmring/record/replayer.h"
#include "shmring/transport/frame.h"
#include "shmring/transport/queue.h"
#include "shmring/transport/topic.h"
#include "transport_test_util.h"

namespace shmring::record {
namespace {

using namespace std::chrono_literals;
using shmring::testing::channel_name;
using shmring::testing::fork_child;
using shmring::testing::wait_child;
using testing::TempDir;

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
constexpr std::uint64_t kScale = 5;
#else
constexpr std::uint64_t kScale = 1;
#endif

std::uint64_t mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}
// A message that proves itself: its index, a check word, then `size` - 16 bytes derived from both.
std::vector<std::byte> payload(std::uint64_t index, std::size_t size = 64) {
  std::vector<std::byte> b(std::max<std::size_t>(size, 16));
  const std::uint64_t check = mix(index);
  std::memcpy(b.data(), &index, 8);
  std::memcpy(b.data() + 8, &check, 8);
  for (std::size_t i = 16; i < b.size(); ++i) b[i] = std::byte(static_cast<std::uint8_t>(check >> (i % 8 * 8)) ^ static_cast<std::uint8_t>(i));
  return b;
}
std::optional<std::uint64_t> index_of(std::span<const std::byte> b) {
  if (b.size() < 16) return std::nullopt;
  std::uint64_t index = 0;
  std::memcpy(&index, b.data(), 8);
  const std::vector<std::byte> want = payload(index, b.size());
  if (std::memcmp(want.data(), b.data(), b.size()) != 0) return std::nullopt;
  return index;
}

// A recorder running in a thread until stop().
class RunningRecorder {
 public:
  explicit RunningRecorder(RecordOptions options) {
    options.log = [this](const std::string& line) {
      std::lock_guard lock(mutex_);
      log_.push_back(line);
    };
    auto r = Recorder::create(std::move(options));
    EXPECT_TRUE(r.ok()) << r.status();
    recorder_ = std::move(*r);
    thread_ = std::thread([this] { result_ = recorder_->run(); });
  }
  ~RunningRecorder() { stop().IgnoreError(); }
  absl::Status stop() {
    if (thread_.joinable()) {
      recorder_->stop();
      thread_.join();
    }
    return result_;
  }
  Recorder& operator*() { return *recorder_; }
  Recorder* operator->() { return recorder_.get(); }
  // Waits (liveness only) until the recorder records `name`.
  bool wait_recording(const std::string& name, std::chrono::seconds limit = 20s) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < until) {
      for (const ChannelRecordStatus& c : recorder_->status().channels) {
        if (c.name == name && c.open) return true;
      }
      std::this_thread::sleep_for(5ms);
    }
    return false;
  }
  std::vector<std::string> log() {
    std::lock_guard lock(mutex_);
    return log_;
  }

 private:
  std::unique_ptr<Recorder> recorder_;
  std::thread thread_;
  absl::Status result_;
  std::mutex mutex_;
  std::vector<std::string> log_;
};

RecordOptions options_for(const std::string& file, std::vector<std::string> channels) {
  RecordOptions o;
  o.output = file;
  o.channels = std::move(channels);
  o.discover_interval = 20ms;
  o.flush_interval = 100ms;
  return o;
}

struct FileMessage {
  std::string topic;
  std::uint32_t sequence;
  std::uint64_t time;
  std::vector<std::byte> data;
  StringMap channel_metadata;
  std::uint16_t channel_id;
};
std::vector<FileMessage> read_file(const std::string& path, ReadReport* report = nullptr) {
  std::vector<FileMessage> out;
  auto r = McapReader::open(path);
  EXPECT_TRUE(r.ok()) << r.status();
  if (!r.ok()) return out;
  EXPECT_TRUE(r->read_messages({}, [&](const Message& m, const Channel& c) {
    out.push_back({c.topic, m.sequence, m.log_time, std::vector<std::byte>(m.data.begin(), m.data.end()),
                   c.metadata, c.id});
    return true;
  }, report).ok());
  return out;
}

TEST(RecorderTest, LosslessTopicAtFullSpeedRecordsEveryMessage) {
  TempDir dir;
  const std::string name = channel_name("rec_lossless");
  const std::uint64_t count = 200000 / kScale;
  auto creator = TopicSubscriber::open(name, shmring::testing::topic(1 << 16, 256, true));  // makes the topic
  ASSERT_TRUE(creator.ok());
  creator->close();
  auto keep = TopicPublisher::open(name, shmring::testing::topic(1 << 16, 256, true));
  ASSERT_TRUE(keep.ok());
  RunningRecorder rec(options_for(dir.path("a.mcap"), {name}));
  ASSERT_TRUE(rec.wait_recording(name));
  keep->close();
  const pid_t publisher = fork_child([&] {
    auto p = TopicPublisher::open(name, shmring::testing::topic(1 << 16, 256, true));
    if (!p.ok()) return 1;
    for (std::uint64_t i = 0; i < count; ++i) {
      if (p->send(payload(i, 16 + i % 200), 30s) != ChannelResult::kOk) return 2;
    }
    return 0;
  });
  ASSERT_TRUE(wait_child(publisher, 120s).ok());
  // Everything published is in the recorder's hands once the publisher returned (lossless).
  const auto until = std::chrono::steady_clock::now() + 60s;
  while (rec->status().messages < count && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(5ms);
  ASSERT_TRUE(rec.stop().ok());
  const std::vector<FileMessage> got = read_file(dir.path("a.mcap"));
  ASSERT_EQ(got.size(), count);
  for (std::uint64_t i = 0; i < count; ++i) {
    ASSERT_EQ(index_of(got[i].data), i);
    ASSERT_EQ(got[i].sequence, got[0].sequence + i);
    if (i > 0) {
      ASSERT_GE(got[i].time, got[i - 1].time);
    }
  }
  EXPECT_EQ(got[0].channel_metadata.at(detail::kKindKey), "topic");
  EXPECT_EQ(got[0].channel_metadata.at(detail::kLosslessKey), "true");
  auto info = describe_recording(dir.path("a.mcap"));
  ASSERT_TRUE(info.ok());
  EXPECT_TRUE(info->complete);
  EXPECT_TRUE(info->loss_from_metadata);
  EXPECT_EQ(info->lost, 0u);
  EXPECT_EQ(info->messages, count);
}

// A lossy topic whose publisher laps the recorder: the file shows every jump, the loss record
// counts exactly those, and it equals what the subscriber itself counted.
TEST(RecorderTest, LossyTopicLossIsExactlyTheJumpsInTheFile) {
  TempDir dir;
  const std::string name = channel_name("rec_lossy");
  auto publisher = TopicPublisher::open(name, shmring::testing::topic(4096, 128));
  ASSERT_TRUE(publisher.ok());
  RunningRecorder rec(options_for(dir.path("b.mcap"), {name}));
  ASSERT_TRUE(rec.wait_recording(name));
  // Bursts until the recorder has been lapped (on a machine where it always keeps up the burst
  // proves nothing; bounded by time, then the EXPECT_GT below says so).
  const std::uint64_t burst = 100000 / kScale;
  std::uint64_t count = 0;
  const auto until = std::chrono::steady_clock::now() + 60s;
  while (true) {
    for (std::uint64_t i = 0; i < burst; ++i, ++count) ASSERT_EQ(publisher->try_send(payload(count, 100)), ChannelResult::kOk);
    std::this_thread::sleep_for(60ms);  // the status is published every 50 ms
    if (rec->status().lost > 0 || std::chrono::steady_clock::now() >= until) break;
  }
  ASSERT_TRUE(rec.stop().ok());
  ReadReport report;
  const std::vector<FileMessage> got = read_file(dir.path("b.mcap"), &report);
  ASSERT_FALSE(got.empty());
  std::uint64_t jumps = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    ASSERT_TRUE(index_of(got[i].data).has_value()) << "torn message " << i;
    if (i > 0) jumps += got[i].sequence - got[i - 1].sequence - 1;
  }
  // Messages sent after the subscriber joined: the first recorded one's jump from the expected
  // first sequence counts too.
  const std::uint64_t first_expected = std::stoull(got[0].channel_metadata.at(detail::kFirstSequenceKey));
  jumps += got[0].sequence - first_expected;
  auto info = describe_recording(dir.path("b.mcap"));
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->lost, jumps);
  EXPECT_EQ(info->channels.at(0).lost, jumps);
  EXPECT_EQ(got.size() + jumps, count);  // every message is either in the file or counted lost
  EXPECT_GT(jumps, 0u) << "the publisher never lapped the recorder: the test proved nothing";
}

TEST(RecorderTest, FramesNewestFirstIntactWithSkippedFramesCounted) {
  TempDir dir;
  const std::string name = channel_name("rec_frames");
  FrameOptions fo;
  fo.capacity = 4;
  fo.max_message = 256 * 1024;
  auto publisher = FramePublisher::open(name, fo);
  ASSERT_TRUE(publisher.ok());
  RunningRecorder rec(options_for(dir.path("f.mcap"), {"rec_*", name}));
  ASSERT_TRUE(rec.wait_recording(name));
  const std::uint64_t frames = 3000 / kScale;
  for (std::uint64_t i = 0; i < frames; ++i) {
    FrameLoan loan = publisher->loan(5s);
    ASSERT_TRUE(loan.ok());
    const std::vector<std::byte> p = payload(i, 100000 + i % 1000);
    std::memcpy(loan.buffer().data(), p.data(), p.size());
    ASSERT_EQ(publisher->publish(loan, p.size()), ChannelResult::kOk);
    if (i % 64 == 0) std::this_thread::sleep_for(1ms);
  }
  std::this_thread::sleep_for(200ms);
  ASSERT_TRUE(rec.stop().ok());
  const std::vector<FileMessage> got = read_file(dir.path("f.mcap"));
  ASSERT_FALSE(got.empty());
  std::uint64_t skipped = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const auto index = index_of(got[i].data);
    ASSERT_TRUE(index.has_value()) << "torn frame";
    EXPECT_EQ(got[i].sequence, *index + 1);  // frame numbers count from 1
    if (i > 0) {
      ASSERT_GT(got[i].sequence, got[i - 1].sequence);
      skipped += got[i].sequence - got[i - 1].sequence - 1;
    }
  }
  EXPECT_EQ(got.back().sequence, frames);  // the newest frame is always taken
  auto info = describe_recording(dir.path("f.mcap"));
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->lost, skipped);
  EXPECT_EQ(got[0].channel_metadata.at(detail::kKindKey), "frames");
}

// A queue with a producer and a consumer in other processes: the consumer gets every item (the
// recorder takes none), the file holds valid items in order, and the jumps count what it missed.
TEST(RecorderTest, QueueThroughTheTapConsumersGetEverything) {
  TempDir dir;
  const std::string name = channel_name("rec_queue");
  QueueOptions qo;
  qo.capacity = 1024;
  qo.max_message = 64;
  auto owner = QueueProducer::open(name, qo);
  ASSERT_TRUE(owner.ok());
  RecordOptions o = options_for(dir.path("q.mcap"), {name});
  o.subscriber.tap_poll_interval = 200us;
  RunningRecorder rec(o);
  ASSERT_TRUE(rec.wait_recording(name));
  const std::uint64_t count = 100000 / kScale;
  shmring::testing::ProcessBarrier barrier(3);
  const pid_t producer = fork_child([&] {
    auto p = QueueProducer::open(name);
    if (!p.ok() || !barrier.arrive_and_wait()) return 1;
    for (std::uint64_t i = 0; i < count; ++i) {
      if (p->send(payload(i, 48), 30s) != ChannelResult::kOk) return 2;
      if (i % 512 == 0) usleep(200);  // a rate the tap can follow most of the time
    }
    return 0;
  });
  const pid_t consumer = fork_child([&] {
    auto c = QueueConsumer::open(name);
    if (!c.ok() || !barrier.arrive_and_wait()) return 1;
    std::vector<std::byte> buf(64);
    std::size_t n = 0;
    for (std::uint64_t i = 0; i < count; ++i) {
      if (c->receive(buf, &n, 30s) != ChannelResult::kOk) return 3;
      if (index_of(std::span(buf).first(n)) != i) return 4;
    }
    return 0;
  });
  ASSERT_TRUE(barrier.arrive_and_wait());
  EXPECT_TRUE(wait_child(producer, 120s).ok());
  EXPECT_TRUE(wait_child(consumer, 120s).ok());
  std::this_thread::sleep_for(100ms);
  ASSERT_TRUE(rec.stop().ok());
  const std::vector<FileMessage> got = read_file(dir.path("q.mcap"));
  ASSERT_FALSE(got.empty());
  std::uint64_t jumps = got[0].sequence;  // counted from the tap's first ticket (0)
  for (std::size_t i = 0; i < got.size(); ++i) {
    const auto index = index_of(got[i].data);
    ASSERT_TRUE(index.has_value());
    EXPECT_EQ(*index, got[i].sequence);  // one producer: item i is ticket i
    if (i > 0) jumps += got[i].sequence - got[i - 1].sequence - 1;
  }
  auto info = describe_recording(dir.path("q.mcap"));
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->lost, jumps);
  EXPECT_EQ(got.size() + jumps, count);
  EXPECT_EQ(got[0].channel_metadata.at(detail::kKindKey), "queue");
}

// Channels that appear while recording are picked up when a pattern matches them (and only
// then); a channel whose publisher is gone is let go (its segment can go), and one removed and
// made again is recorded as a new MCAP channel.
TEST(RecorderTest, PatternsPickUpNewChannelsAndLetGoOfAbandonedOnes) {
  TempDir dir;
  const std::string prefix = channel_name("pat");
  RunningRecorder rec(options_for(dir.path("p.mcap"), {prefix + "_rec*"}));
  std::this_thread::sleep_for(50ms);
  auto other = TopicPublisher::open(prefix + "_other", shmring::testing::topic(4096, 64));
  ASSERT_TRUE(other.ok());
  for (int round = 0; round < 2; ++round) {
    auto p = TopicPublisher::open(prefix + "_rec1", shmring::testing::topic(4096, 64, true));
    ASSERT_TRUE(p.ok());
    ASSERT_TRUE(rec.wait_recording(prefix + "_rec1"));
    for (std::uint64_t i = 0; i < 10; ++i) {
      ASSERT_EQ(p->send(payload(round * 100 + i), 5s), ChannelResult::kOk);
      ASSERT_EQ(other->try_send(payload(i)), ChannelResult::kOk);
    }
    p->close();
    // Let go once nobody writes: then the segment is gone and the next round makes a new one.
    const auto until = std::chrono::steady_clock::now() + 30s;
    while (read_stats(prefix + "_rec1").ok() && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(10ms);
    }
    ASSERT_FALSE(read_stats(prefix + "_rec1").ok()) << "the recorder kept an abandoned channel";
  }
  ASSERT_TRUE(rec.stop().ok());
  const std::vector<FileMessage> got = read_file(dir.path("p.mcap"));
  ASSERT_EQ(got.size(), 20u);
  std::set<std::uint16_t> ids;
  std::set<std::string> incarnations;
  for (const FileMessage& m : got) {
    EXPECT_EQ(m.topic, prefix + "_rec1");
    ids.insert(m.channel_id);
    incarnations.insert(m.channel_metadata.at(detail::kIncarnationKey));
  }
  EXPECT_EQ(ids.size(), 2u);
  EXPECT_EQ(incarnations.size(), 2u);
  auto info = describe_recording(dir.path("p.mcap"));
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->lost, 0u);
}

// Delivery is each subscriber's choice (topic.h): a recorder asked to be lossless on a topic whose
// creator made it lossy holds the publisher back and records every message (the lossy default
// would lap it: LossyTopicLossIsExactlyTheJumpsInTheFile).
TEST(RecorderTest, DeliveryIsTheRecordersChoiceLosslessOnALossyTopic) {
  TempDir dir;
  const std::string name = channel_name("rec_delivery");
  auto p = TopicPublisher::open(name, shmring::testing::topic(4096, 128));  // lossy by default
  ASSERT_TRUE(p.ok());
  RecordOptions o = options_for(dir.path("m.mcap"), {name});
  o.subscriber.topic_mode = TopicMode::kLossless;
  RunningRecorder rec(o);
  ASSERT_TRUE(rec.wait_recording(name));
  const std::uint64_t count = 100000 / kScale;
  for (std::uint64_t i = 0; i < count; ++i) ASSERT_EQ(p->send(payload(i, 100), 30s), ChannelResult::kOk);
  // Liveness only: the recorder has received everything once the publisher's ring is drained.
  const auto until = std::chrono::steady_clock::now() + 30s;
  while (std::chrono::steady_clock::now() < until) {
    std::uint64_t received = 0;
    for (const ChannelRecordStatus& c : rec->status().channels) received += c.messages;
    if (received >= count) break;
    std::this_thread::sleep_for(5ms);
  }
  ASSERT_TRUE(rec.stop().ok());
  const std::vector<FileMessage> got = read_file(dir.path("m.mcap"));
  ASSERT_EQ(got.size(), count);
  for (std::size_t i = 0; i < got.size(); ++i) ASSERT_EQ(index_of(got[i].data), std::optional<std::uint64_t>(i));
  auto info = describe_recording(dir.path("m.mcap"));
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->lost, 0u);
  EXPECT_TRUE(info->complete);
}

TEST(RecorderTest, SplitBySizeGivesCompleteFilesThatContinueEachOther) {
  TempDir dir;
  const std::string name = channel_name("rec_split");
  auto p = TopicPublisher::open(name, shmring::testing::topic(1 << 16, 1024, true));
  ASSERT_TRUE(p.ok());
  RecordOptions o = options_for(dir.path("s.mcap"), {name});
  o.split_bytes = 64 * 1024;
  o.writer.chunk_bytes = 8 * 1024;
  o.writer.compression = Compression::kNone;
  RunningRecorder rec(o);
  ASSERT_TRUE(rec.wait_recording(name));
  const std::uint64_t count = 2000;
  for (std::uint64_t i = 0; i < count; ++i) ASSERT_EQ(p->send(payload(i, 200), 10s), ChannelResult::kOk);
  const auto until = std::chrono::steady_clock::now() + 30s;
  while (rec->status().messages < count && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(5ms);
  ASSERT_TRUE(rec.stop().ok());
  const std::vector<std::string> files = rec->status().files;
  ASSERT_GE(files.size(), 4u);
  EXPECT_EQ(files[0], dir.path("s_000.mcap"));
  std::uint64_t next = 0;
  for (const std::string& f : files) {
    auto info = describe_recording(f);
    ASSERT_TRUE(info.ok()) << f;
    EXPECT_TRUE(info->complete);
    EXPECT_EQ(info->lost, 0u);
    for (const FileMessage& m : read_file(f)) {
      ASSERT_EQ(index_of(m.data), next);
      ++next;
    }
  }
  EXPECT_EQ(next, count);
}

TEST(RecorderTest, SplitByDuration) {
  TempDir dir;
  const std::string name = channel_name("rec_split_t");
  auto p = TopicPublisher::open(name, shmring::testing::topic(1 << 16, 256, true));
  ASSERT_TRUE(p.ok());
  RecordOptions o = options_for(dir.path("d.mcap"), {name});
  o.split_duration = 100ms;
  RunningRecorder rec(o);
  ASSERT_TRUE(rec.wait_recording(name));
  std::uint64_t sent = 0;
  const auto until = std::chrono::steady_clock::now() + 60s;
  while (rec->status().files.size() < 4 && std::chrono::steady_clock::now() < until) {
    ASSERT_EQ(p->send(payload(sent++), 10s), ChannelResult::kOk);
    std::this_thread::sleep_for(1ms);
  }
  const auto settle = std::chrono::steady_clock::now() + 30s;
  while (rec->status().messages < sent && std::chrono::steady_clock::now() < settle) std::this_thread::sleep_for(5ms);
  ASSERT_TRUE(rec.stop().ok());
  std::uint64_t next = 0;
  for (const std::string& f : rec->status().files) {
    for (const FileMessage& m : read_file(f)) {
      ASSERT_EQ(index_of(m.data), next);
      ++next;
    }
  }
  EXPECT_EQ(next, sent);
  EXPECT_GE(rec->status().files.size(), 4u);
}

// Pre-buffer: nothing is written before the trigger; then the last window is, and recording goes
// on; messages that fell out of the window are not counted lost.
//
// Log times are the recorder's receive times, so what is inside the window depends on when the
// recorder ran. The test brackets those times with the wall clock: the first batch was received
// before the sleep, so it is always outside the window at the trigger (hard check); the second
// batch is certainly inside it only if the trigger was handled within the window of `second_sent`. When a
// loaded machine stalled longer than that, the attempt proves less and is made again.
bool pre_buffer_attempt(int attempt) {
  using Clock = std::chrono::system_clock;
  constexpr auto kWindow = 500ms;
  TempDir dir;
  const std::string name = channel_name("rec_pre");
  auto p = TopicPublisher::open(name, shmring::testing::topic(1 << 16, 256, true));
  EXPECT_TRUE(p.ok());
  if (!p.ok()) return true;
  RecordOptions o = options_for(dir.path("pre.mcap"), {name});
  o.pre_buffer = kWindow;
  RunningRecorder rec(o);
  EXPECT_TRUE(rec.wait_recording(name));
  auto wait_messages = [&](std::uint64_t n) {
    const auto until = std::chrono::steady_clock::now() + 30s;
    while (rec->status().messages < n && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(5ms);
    return rec->status().messages >= n;
  };
  for (std::uint64_t i = 0; i < 100; ++i) EXPECT_EQ(p->send(payload(i), 5s), ChannelResult::kOk);
  EXPECT_TRUE(wait_messages(100));
  std::this_thread::sleep_for(kWindow + 200ms);  // 0..99 fall out of the window
  const Clock::time_point second_sent = Clock::now();
  for (std::uint64_t i = 100; i < 150; ++i) EXPECT_EQ(p->send(payload(i), 5s), ChannelResult::kOk);
  EXPECT_TRUE(wait_messages(150));
  EXPECT_TRUE(rec->status().waiting_for_trigger);
  EXPECT_FALSE(std::filesystem::exists(dir.path("pre.mcap")));
  rec->trigger();
  const auto written = std::chrono::steady_clock::now() + 30s;
  while (rec->status().waiting_for_trigger && std::chrono::steady_clock::now() < written) std::this_thread::sleep_for(1ms);
  const Clock::time_point triggered = Clock::now();  // the trigger was handled before this
  EXPECT_FALSE(rec->status().waiting_for_trigger);
  for (std::uint64_t i = 150; i < 160; ++i) EXPECT_EQ(p->send(payload(i), 5s), ChannelResult::kOk);
  EXPECT_TRUE(wait_messages(160));
  EXPECT_TRUE(rec.stop().ok());
  const std::vector<FileMessage> got = read_file(dir.path("pre.mcap"));
  auto info = describe_recording(dir.path("pre.mcap"));
  EXPECT_TRUE(info.ok());
  if (info.ok()) {
    EXPECT_EQ(info->lost, 0u);  // let go is not lost
  }
  // Always: a gapless run of the newest messages, nothing from the first batch, all written after
  // the trigger.
  EXPECT_FALSE(got.empty());
  if (got.empty()) return true;
  const std::optional<std::uint64_t> first = index_of(got.front().data);
  EXPECT_TRUE(first.has_value() && *first >= 100 && *first <= 150) << "first kept: " << first.value_or(~0ull);
  for (std::size_t i = 0; i < got.size(); ++i) EXPECT_EQ(index_of(got[i].data), first.value_or(0) + i);
  EXPECT_EQ(index_of(got.back().data), std::optional<std::uint64_t>(159));
  if (triggered - second_sent > kWindow) {
    std::printf("attempt %d: the trigger was handled %lld ms after the second batch (window %lld ms); again\n",
                attempt, static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(triggered - second_sent).count()),
                static_cast<long long>(kWindow.count()));
    return false;
  }
  EXPECT_EQ(got.size(), 60u);  // the whole second batch was inside the window
  return true;
}

TEST(RecorderTest, PreBufferWritesTheLastWindowOnTrigger) {
  bool conclusive = false;
  for (int attempt = 1; attempt <= 5 && !conclusive && !HasFailure(); ++attempt) conclusive = pre_buffer_attempt(attempt);
  EXPECT_TRUE(conclusive) << "the machine stalled for longer than the window in every attempt";
}

TEST(RecorderTest, PreBufferNeverTriggeredWritesNothing) {
  TempDir dir;
  const std::string name = channel_name("rec_pre_none");
  auto p = TopicPublisher::open(name, shmring::testing::topic(4096, 64, true));
  ASSERT_TRUE(p.ok());
  RecordOptions o = options_for(dir.path("none.mcap"), {name});
  o.pre_buffer = 1s;
  RunningRecorder rec(o);
  ASSERT_TRUE(rec.wait_recording(name));
  ASSERT_EQ(p->send(payload(1), 5s), ChannelResult::kOk);
  ASSERT_TRUE(rec.stop().ok());
  EXPECT_FALSE(std::filesystem::exists(dir.path("none.mcap")));
}

TEST(RecorderTest, OptionErrors) {
  RecordOptions o;
  EXPECT_EQ(Recorder::create(o).status().code(), absl::StatusCode::kInvalidArgument);
  o.output = "/tmp/x.mcap";
  o.channels = {"a/b"};
  EXPECT_EQ(Recorder::create(o).status().code(), absl::StatusCode::kInvalidArgument);
  o.channels = {};
  o.flush_interval = 0ms;
  EXPECT_EQ(Recorder::create(o).status().code(), absl::StatusCode::kInvalidArgument);
  // An output that exists already: run() says so.
  TempDir dir;
  testing::write_file(dir.path("exists.mcap"), {std::byte{1}});
  RecordOptions e = options_for(dir.path("exists.mcap"), {"none"});
  auto r = Recorder::create(e);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)->run().code(), absl::StatusCode::kAlreadyExists);
}

// --- Replay -----------------------------------------------------------------------------------

// Records three messages per millisecond-ish on a lossless topic and a queue, then replays the
// file into the same channels: every message arrives, in order, unchanged.
std::string record_sample(TempDir& dir, const std::string& topic, const std::string& queue, std::uint64_t n) {
  auto p = TopicPublisher::open(topic, shmring::testing::topic(1 << 16, 256, true));
  QueueOptions qo;
  qo.capacity = 256;
  qo.max_message = 64;
  auto q = QueueProducer::open(queue, qo);
  auto qc = QueueConsumer::open(queue);
  EXPECT_TRUE(p.ok() && q.ok() && qc.ok());
  const std::string file = dir.path("sample.mcap");
  RunningRecorder rec(options_for(file, {topic, queue}));
  EXPECT_TRUE(rec.wait_recording(topic));
  EXPECT_TRUE(rec.wait_recording(queue));
  std::vector<std::byte> buf(64);
  std::size_t len = 0;
  for (std::uint64_t i = 0; i < n; ++i) {
    EXPECT_EQ(p->send(payload(i), 5s), ChannelResult::kOk);
    EXPECT_EQ(q->send(payload(1000000 + i, 48), 5s), ChannelResult::kOk);
    EXPECT_EQ(qc->receive(buf, &len, 5s), ChannelResult::kOk);
    std::this_thread::sleep_for(1ms);
  }
  const auto until = std::chrono::steady_clock::now() + 30s;
  while (rec->status().messages < 2 * n && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(5ms);
  EXPECT_TRUE(rec.stop().ok());
  return file;
}

TEST(ReplayTest, ReplaysIntoTheSameChannelsInOrderWithTheRecordedPace) {
  TempDir dir;
  const std::string topic = channel_name("rep_topic");
  const std::string queue = channel_name("rep_queue");
  const std::uint64_t n = 200;
  const std::string file = record_sample(dir, topic, queue, n);
  // The channels are gone with their endpoints; subscribers make them again.
  auto sub = TopicSubscriber::open(topic, shmring::testing::topic(1 << 16, 256, true));
  QueueOptions qo;
  qo.capacity = 256;
  qo.max_message = 64;
  auto consumer = QueueConsumer::open(queue, qo);
  ASSERT_TRUE(sub.ok() && consumer.ok());
  ReplayOptions ro;
  ro.files = {file};
  auto replayer = Replayer::create(ro);
  ASSERT_TRUE(replayer.ok()) << replayer.status();
  std::thread t([&] { EXPECT_TRUE((*replayer)->run().ok()); });
  std::vector<std::byte> buf(256);
  std::size_t len = 0;
  for (std::uint64_t i = 0; i < n; ++i) {
    ASSERT_EQ(sub->receive(buf, &len, 30s), ChannelResult::kOk);
    ASSERT_EQ(index_of(std::span(buf).first(len)), i);
    ASSERT_EQ(consumer->receive(buf, &len, 30s), ChannelResult::kOk);
    ASSERT_EQ(index_of(std::span(buf).first(len)), 1000000 + i);
  }
  t.join();
  const ReplayStats stats = (*replayer)->stats();
  EXPECT_EQ(stats.messages, 2 * n);
  // The recording took >= n ms; so does its paced replay (a lower bound only: no upper bound on a
  // loaded machine).
  EXPECT_GE(stats.seconds, static_cast<double>(n) * 0.001 * 0.9);
  EXPECT_GE(stats.timing_p99_ns, stats.timing_p50_ns);
}

TEST(ReplayTest, MapCreateMaxStartEndAndLoop) {
  TempDir dir;
  const std::string topic = channel_name("rep2_topic");
  const std::string queue = channel_name("rep2_queue");
  const std::uint64_t n = 100;
  const std::string file = record_sample(dir, topic, queue, n);
  const std::string mapped = channel_name("rep2_mapped");
  // Without --create a missing channel is an error.
  ReplayOptions missing;
  missing.files = {file};
  missing.channels = {topic};
  EXPECT_EQ(Replayer::create(missing).status().code(), absl::StatusCode::kNotFound);
  // --map into a new channel made by --create; --max; only the topic; a middle part.
  ReplayOptions ro;
  ro.files = {file};
  ro.channels = {topic};
  ro.map[topic] = mapped;
  ro.create = true;
  ro.max_speed = true;
  auto replayer = Replayer::create(ro);
  ASSERT_TRUE(replayer.ok()) << replayer.status();
  auto made = read_stats(mapped);
  ASSERT_TRUE(made.ok());
  EXPECT_TRUE(made->lossless);  // made as recorded
  EXPECT_EQ(made->capacity, 1u << 16);
  TopicOptions lossless;
  lossless.lossless = true;
  auto sub = TopicSubscriber::open(mapped, lossless);
  ASSERT_TRUE(sub.ok()) << sub.status();
  ASSERT_TRUE((*replayer)->run().ok());
  std::vector<std::byte> buf(256);
  std::size_t len = 0;
  for (std::uint64_t i = 0; i < n; ++i) {
    ASSERT_EQ(sub->try_receive(buf, &len), ChannelResult::kOk);
    ASSERT_EQ(index_of(std::span(buf).first(len)), i);
  }
  // --start/--end: offsets from the first message.
  auto info = describe_recording(file);
  ASSERT_TRUE(info.ok());
  std::uint64_t first = UINT64_MAX;
  std::vector<std::uint64_t> times;
  for (const FileMessage& m : read_file(file)) {
    if (m.topic == topic) times.push_back(m.time);
    first = std::min(first, m.time);
  }
  replayer->reset();  // one publisher per topic at a time
  ReplayOptions part = ro;
  part.start = std::chrono::nanoseconds(times[20] - first);
  part.end = std::chrono::nanoseconds(times[40] - first);
  auto partial = Replayer::create(part);
  ASSERT_TRUE(partial.ok());
  ASSERT_TRUE((*partial)->run().ok());
  std::vector<std::uint64_t> got;
  while (sub->try_receive(buf, &len) == ChannelResult::kOk) got.push_back(*index_of(std::span(buf).first(len)));
  ASSERT_EQ(got.size(), 20u);
  EXPECT_EQ(got.front(), 20u);
  EXPECT_EQ(got.back(), 39u);
  // --loop until stopped.
  partial->reset();
  ReplayOptions looping = ro;
  looping.loop = true;
  auto loop = Replayer::create(looping);
  ASSERT_TRUE(loop.ok());
  std::thread t([&] { EXPECT_EQ((*loop)->run().code(), absl::StatusCode::kCancelled); });
  std::uint64_t received = 0;
  while (received < 3 * n) {
    if (sub->receive(buf, &len, 30s) != ChannelResult::kOk) break;
    ASSERT_EQ(index_of(std::span(buf).first(len)), received % n);
    ++received;
  }
  (*loop)->stop();
  t.join();
  EXPECT_EQ(received, 3 * n);
  EXPECT_GE((*loop)->stats().loops, 2u);
}

// A lossless topic replayed into a slow subscriber: back-pressure, nothing lost.
TEST(ReplayTest, LosslessTopicHoldsTheReplayBack) {
  TempDir dir;
  const std::string topic = channel_name("rep3_topic");
  const std::string queue = channel_name("rep3_queue");
  const std::uint64_t n = 300;
  const std::string file = record_sample(dir, topic, queue, n);
  auto sub = TopicSubscriber::open(topic, shmring::testing::topic(1024, 256, true));  // small ring
  ASSERT_TRUE(sub.ok());
  ReplayOptions ro;
  ro.files = {file};
  ro.channels = {topic};
  ro.max_speed = true;
  auto replayer = Replayer::create(ro);
  ASSERT_TRUE(replayer.ok());
  std::thread t([&] { EXPECT_TRUE((*replayer)->run().ok()); });
  std::vector<std::byte> buf(256);
  std::size_t len = 0;
  for (std::uint64_t i = 0; i < n; ++i) {
    ASSERT_EQ(sub->receive(buf, &len, 30s), ChannelResult::kOk);
    ASSERT_EQ(index_of(std::span(buf).first(len)), i);
    if (i % 50 == 0) std::this_thread::sleep_for(20ms);
  }
  t.join();
  EXPECT_EQ(sub->lost(), 0u);
}

TEST(ReplayTest, OptionErrors) {
  ReplayOptions o;
  EXPECT_EQ(Replayer::create(o).status().code(), absl::StatusCode::kInvalidArgument);
  o.files = {"/nonexistent.mcap"};
  EXPECT_EQ(Replayer::create(o).status().code(), absl::StatusCode::kNotFound);
  o.rate = 0;
  EXPECT_EQ(Replayer::create(o).status().code(), absl::StatusCode::kInvalidArgument);
  o.rate = 1;
  o.start = 5s;
  o.end = 1s;
  EXPECT_EQ(Replayer::create(o).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace shmring::record
