// Unit tests of the bridge's parts (wire format, configuration, keys) and of the topic additions
// its loss accounting rests on (sequence numbers, the upstream mark across a publisher SIGKILL),
// plus one export and one import in one Bridge over loopback (the sanitizer builds run it).
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <thread>

#include "gtest/gtest.h"
#include "test_support.h"
#include "shmring/bridge/bridge.h"
#include "shmring/transport/queue.h"
#include "shmring/transport/topic.h"
#include "transport_test_util.h"
#include "wire.h"

namespace shmring::bridge {
namespace {

using shmring::testing::bytes_of;
using shmring::testing::channel_name;
using shmring::testing::string_of;

// --- wire format ---------------------------------------------------------------------------------

TEST(Wire, HeaderRoundTrips) {
  wire::Header h;
  h.type = wire::Type::kTopic;
  h.flags = 3;
  h.origin = 0x1122334455667788;
  h.incarnation = 42;
  h.sequence = ~0ull;
  h.value = 4096;
  h.name = "market.l1";
  std::vector<std::byte> bytes;
  wire::encode(h, &bytes);
  EXPECT_EQ(bytes.size(), wire::kFixedBytes + 9);
  wire::Header back;
  ASSERT_EQ(wire::decode(bytes, &back), wire::DecodeError::kNone);
  EXPECT_EQ(back.type, wire::Type::kTopic);
  EXPECT_EQ(back.flags, 3);
  EXPECT_EQ(back.origin, h.origin);
  EXPECT_EQ(back.incarnation, 42u);
  EXPECT_EQ(back.sequence, ~0ull);
  EXPECT_EQ(back.value, 4096u);
  EXPECT_EQ(back.name, "market.l1");
}

TEST(Wire, EveryMalformedHeaderIsRefusedWithItsReason) {
  wire::Header h;
  h.type = wire::Type::kHello;
  h.name = "x";
  std::vector<std::byte> good;
  wire::encode(h, &good);
  wire::Header out;
  auto with = [&](std::size_t at, std::uint8_t value) {
    std::vector<std::byte> b = good;
    b[at] = std::byte{value};
    return wire::decode(b, &out);
  };
  EXPECT_EQ(wire::decode(std::span(good).first(10), &out), wire::DecodeError::kShort);
  EXPECT_EQ(wire::decode({}, &out), wire::DecodeError::kShort);
  EXPECT_EQ(with(0, 'X'), wire::DecodeError::kBadMagic);
  EXPECT_EQ(with(4, 9), wire::DecodeError::kBadVersion);
  EXPECT_EQ(with(5, 0), wire::DecodeError::kBadType);
  EXPECT_EQ(with(5, 200), wire::DecodeError::kBadType);
  EXPECT_EQ(with(7, 0), wire::DecodeError::kBadName);
  EXPECT_EQ(with(7, 129), wire::DecodeError::kBadName);
  EXPECT_EQ(with(7, 2), wire::DecodeError::kBadLength);  // says 2 name bytes, has 1
  std::vector<std::byte> longer = good;
  longer.push_back(std::byte{0});
  EXPECT_EQ(wire::decode(longer, &out), wire::DecodeError::kBadLength);
  for (std::size_t cut = 0; cut < good.size(); ++cut) {
    EXPECT_NE(wire::decode(std::span(good).first(cut), &out), wire::DecodeError::kNone) << cut;
  }
  wire::Description d;
  std::vector<std::byte> desc(31);
  EXPECT_FALSE(wire::decode(desc, &d));
}

// --- configuration -------------------------------------------------------------------------------

TEST(Config, ParsesExportsAndImports) {
  const std::string key(40, 'a');
  auto c = parse_bridge_config(
      "# two sections\n"
      "[export]\n"
      "bind = tcp://127.0.0.1:7001\n"
      "channels = a b, c\n"
      "max_rate = 12.5\n"
      "queue_window = 4\n"
      "[import]\n"
      "connect = tcp://10.0.0.1:7001   # the other host\n"
      "channels = x y=local.y\n"
      "high_water_mark = 50\n"
      "curve_server_key = " + key + "\n");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->exports.size(), 1u);
  EXPECT_EQ(c->exports[0].bind, "tcp://127.0.0.1:7001");
  EXPECT_EQ(c->exports[0].channels, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(c->exports[0].max_rate, 12.5);
  EXPECT_EQ(c->exports[0].queue_window, 4u);
  ASSERT_EQ(c->imports.size(), 1u);
  ASSERT_EQ(c->imports[0].channels.size(), 2u);
  EXPECT_EQ(c->imports[0].channels[1].remote, "y");
  EXPECT_EQ(c->imports[0].channels[1].local, "local.y");
  EXPECT_EQ(c->imports[0].carrier.high_water_mark, 50);
  EXPECT_EQ(c->imports[0].carrier.security.server_public_key, key);
}

TEST(Config, RefusesBadInputWithTheLineNumber) {
  auto error = [](const std::string& text) {
    auto c = parse_bridge_config(text);
    return c.ok() ? std::string("ok") : std::string(c.status().message());
  };
  EXPECT_NE(error("bind = x\n").find("line 1"), std::string::npos);
  EXPECT_NE(error("[export]\nbind tcp://x\n").find("line 2"), std::string::npos);
  EXPECT_NE(error("[export]\nbind=tcp://a:1\nchannels=a\nbogus = 1\n").find("unknown key"), std::string::npos);
  EXPECT_NE(error("[import]\nconnect=tcp://a:1\nchannels=a/b\n").find("line 3"), std::string::npos);
  EXPECT_NE(error("[export]\nbind=tcp://a:1\nchannels=a\nmax_rate=-1\n").find("max_rate"), std::string::npos);
  EXPECT_NE(error("[export]\nbind=tcp://a:1\nchannels=a\nqueue_window=0\n").find("queue_window"), std::string::npos);
  EXPECT_NE(error("[export]\nchannels=a\n").find("no bind"), std::string::npos);
  EXPECT_NE(error("[import]\nconnect=tcp://a:1\n").find("no channels"), std::string::npos);
  EXPECT_NE(error("[import]\nconnect=tcp://a:1\nchannels=a\ncurve_server_key=short\n").find("line 4"),
            std::string::npos);
  EXPECT_NE(error("[export]\nbind=tcp://a:1\nchannels=a\nqueue_window=257\n").find("1 to 256"), std::string::npos);
  EXPECT_FALSE(load_bridge_config("/nonexistent/bridge.conf").ok());
}

TEST(Config, AHashInsideAKeyIsNotAComment) {
  const std::string key = "abcdefghij#klmnopqrstuvwxyz0123456789.-+";  // Z85 holds '#'
  ASSERT_EQ(key.size(), 40u);
  auto c = parse_bridge_config("[import]   # the other host\nconnect = tcp://h:1\nchannels = a #b\n"
                               "curve_server_key = " + key + "  # its public key\n");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->imports[0].carrier.security.server_public_key, key);
  EXPECT_EQ(c->imports[0].channels.size(), 1u);  // "#b" after a space is a comment
}

TEST(Config, RoutesAndKeys) {
  EXPECT_EQ(parse_route("a")->local, "a");
  EXPECT_EQ(parse_route("a=b")->remote, "a");
  EXPECT_EQ(parse_route("a=b")->local, "b");
  EXPECT_FALSE(parse_route("a=").ok());
  EXPECT_FALSE(parse_route("=b").ok());
  EXPECT_FALSE(parse_route("a/b").ok());
  auto keys = generate_curve_keys();
  ASSERT_TRUE(keys.ok());
  EXPECT_EQ(keys->public_key.size(), 40u);
  EXPECT_EQ(*curve_public_key(keys->secret_key), keys->public_key);
  EXPECT_FALSE(curve_public_key("not a key").ok());
  const std::string path = ::testing::TempDir() + "/bridge_unit.key";
  std::ofstream(path) << keys->secret_key << "\n";
  chmod(path.c_str(), 0600);  // a secret key others may read is refused
  EXPECT_EQ(*read_key(path, KeyKind::kSecret), keys->secret_key);
  EXPECT_EQ(*read_key(keys->secret_key, KeyKind::kSecret), keys->secret_key);
  EXPECT_FALSE(read_key("/nonexistent/key", KeyKind::kSecret).ok());
  std::ofstream(path) << "short\n";
  EXPECT_FALSE(read_key(path, KeyKind::kSecret).ok());
  std::remove(path.c_str());
}

// A key option takes a file or the key's text: a missing file whose path happens to be 40
// characters of Z85 (which holds '/', '.', '-') is an error, not a key; a public key where the
// secret one belongs is refused.
TEST(Config, KeysAreNotMistakenForPathsOrForTheOtherKind) {
  auto keys = generate_curve_keys();
  ASSERT_TRUE(keys.ok());
  for (const std::string missing : {"/etc/shmring/keys/site-a-server-0001.key", "/etc/shmring/keys/site-a-ab12/x/y/zzzzzz",
                                    "./keys/site-a-server-000000000000001.pub", "keys/site-a-server-00000000000000001.key"}) {
    ASSERT_EQ(missing.size(), 40u) << missing;
    absl::StatusOr<std::string> k = read_key(missing, KeyKind::kSecret);
    EXPECT_EQ(k.status().code(), absl::StatusCode::kNotFound) << missing;
  }
  const std::string dir = ::testing::TempDir();
  const std::string pub = dir + "/bridge_unit_kind.pub";
  const std::string secret = dir + "/bridge_unit_kind.key";
  const std::string unnamed = dir + "/bridge_unit_kind";
  std::ofstream(pub) << keys->public_key << "\n";
  std::ofstream(secret) << keys->secret_key << "\n";
  chmod(secret.c_str(), 0600);
  std::ofstream(unnamed) << kPublicKeyMarker << "\n" << keys->public_key << "\n";
  chmod(unnamed.c_str(), 0600);  // so it is refused for what it holds, not for its mode
  EXPECT_EQ(read_key(pub, KeyKind::kSecret).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(read_key(secret, KeyKind::kPublic).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(read_key(unnamed, KeyKind::kSecret).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(*read_key(unnamed, KeyKind::kPublic), keys->public_key);  // the marker line is skipped
  EXPECT_EQ(*read_key(pub, KeyKind::kPublic), keys->public_key);
  for (const std::string& p : {pub, secret, unnamed}) std::remove(p.c_str());
  // The peer's public key given as this side's secret key (as text): refused at create.
  BridgeConfig config;
  ImportSpec i;
  i.connect = "tcp://127.0.0.1:1";
  i.channels = {ChannelRoute{"a", "a"}};
  i.carrier.security.server_public_key = keys->public_key;
  i.carrier.security.secret_key = keys->public_key;
  config.imports.push_back(i);
  EXPECT_EQ(Bridge::create(config).status().code(), absl::StatusCode::kInvalidArgument);
  BridgeConfig exporting;
  ExportSpec e;
  e.bind = "tcp://127.0.0.1:0";
  e.channels = {"a"};
  e.carrier.security.secret_key = keys->public_key;
  e.carrier.security.authorized_clients = {keys->public_key};
  exporting.exports.push_back(e);
  EXPECT_EQ(Bridge::create(exporting).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(Config, BadSpecsAreRefusedBeforeAnythingIsBound) {
  BridgeConfig config;
  EXPECT_EQ(Bridge::create(config).status().code(), absl::StatusCode::kInvalidArgument);
  ExportSpec spec;
  spec.bind = "udp://1.2.3.4:5";
  spec.channels = {"a"};
  config.exports.push_back(spec);
  EXPECT_EQ(Bridge::create(config).status().code(), absl::StatusCode::kInvalidArgument);
  config.exports[0].bind = "tcp://127.0.0.1:0";
  config.exports[0].channels = {"bad/name"};
  EXPECT_EQ(Bridge::create(config).status().code(), absl::StatusCode::kInvalidArgument);
  config.exports[0].channels = {"a"};
  config.exports[0].carrier.security.secret_key = "short";
  EXPECT_EQ(Bridge::create(config).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(Status, JsonEscapesNames) {
  BridgeStatus s;
  ChannelStatus c;
  c.direction = "import";
  c.channel = "we\"ird\\name\n";
  c.endpoint = "tcp://h\xff:1";  // not UTF-8: JSON stays valid UTF-8
  s.channels.push_back(c);
  const std::string json = status_json(s);
  EXPECT_NE(json.find(R"("channel":"we\"ird\\name\n")"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("endpoint":"tcp://h\ufffd:1")"), std::string::npos) << json;
}

// --- the topic additions -------------------------------------------------------------------------

TEST(TopicSequence, SubscribersSeeConsecutiveNumbersAndJumpsAreLosses) {
  const std::string name = channel_name("seq");
  auto pub = TopicPublisher::open(name, shmring::testing::topic(4096, 64));
  ASSERT_TRUE(pub.ok());
  auto sub = TopicSubscriber::open(name, shmring::testing::topic(4096, 64));
  ASSERT_TRUE(sub.ok());
  const std::uint64_t first = pub->next_sequence();
  for (int i = 0; i < 3; ++i) ASSERT_EQ(pub->try_send(bytes_of("m")), ChannelResult::kOk);
  std::byte buffer[64];
  std::size_t n = 0;
  ASSERT_EQ(sub->try_receive(buffer, &n), ChannelResult::kOk);
  EXPECT_EQ(sub->last_sequence(), first);
  TopicView v = sub->try_receive_view();
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v.sequence(), first + 1);
  EXPECT_EQ(sub->last_sequence(), first + 1);
  v.release();
  // Lap the subscriber: the next message's number minus the last one's is what it lost, plus one.
  for (int i = 0; i < 500; ++i) ASSERT_EQ(pub->try_send(bytes_of("lapping")), ChannelResult::kOk);
  ASSERT_EQ(sub->try_receive(buffer, &n), ChannelResult::kOk);
  EXPECT_EQ(sub->last_sequence() - (first + 1) - 1, sub->lost());
}

TEST(TopicUpstream, LostCountShowsInStats) {
  const std::string name = channel_name("uplost");
  auto pub = TopicPublisher::open(name, shmring::testing::topic(4096, 64));
  ASSERT_TRUE(pub.ok());
  pub->count_upstream_lost(7);
  pub->count_upstream_lost(0);
  EXPECT_EQ(pub->stats().lost, 7u);
  EXPECT_EQ(read_stats(name)->lost, 7u);
  EXPECT_EQ(pub->upstream_resume().origin, 0u);  // nothing sent from upstream yet
}

// A gap learnt at the end of a stream (nothing after it to send) moves the resume point without a
// message: the next publisher (after a crash) expects what comes after the gap.
TEST(TopicUpstream, MarkWithoutSendingMovesTheResumePoint) {
  const std::string name = channel_name("upmark");
  const std::string text = "m";
  const std::span<const std::byte> m = bytes_of(text);
  {
    auto pub = TopicPublisher::open(name, shmring::testing::topic(4096, 64));
    ASSERT_TRUE(pub.ok());
    ASSERT_EQ(pub->try_send_from(UpstreamPosition{7, 9, 5}, m), ChannelResult::kOk);
    EXPECT_EQ(pub->upstream_resume().sequence, 6u);
    pub->mark_upstream(UpstreamPosition{7, 9, 10});
    EXPECT_EQ(pub->upstream_resume().sequence, 10u);
    auto sub = TopicSubscriber::open(name, shmring::testing::topic(4096, 64));  // keeps the channel
    ASSERT_TRUE(sub.ok());
    pub->close();
    auto next = TopicPublisher::open(name, shmring::testing::topic(4096, 64));
    ASSERT_TRUE(next.ok());
    const UpstreamPosition resume = next->upstream_resume();
    EXPECT_EQ(resume.origin, 7u);
    EXPECT_EQ(resume.incarnation, 9u);
    EXPECT_EQ(resume.sequence, 10u);
    ASSERT_EQ(next->try_send_from(UpstreamPosition{7, 9, 10}, m), ChannelResult::kOk);
    EXPECT_EQ(next->upstream_resume().sequence, 11u);
  }
}

// What `shmring stat` says of an imported channel: where it comes from and whether the link is
// up, per importing endpoint; an address too long is cut, control characters are escaped.
TEST(UpstreamLink, ShowsInStatsPerEndpoint) {
  const std::string name = channel_name("uplink");
  auto queue = QueueProducer::open(name);
  ASSERT_TRUE(queue.ok());
  auto find = [&] {
    absl::StatusOr<ChannelStats> st = read_stats(name);
    EXPECT_TRUE(st.ok());
    for (const PeerStats& p : st->peers) {
      if (p.role == PeerRole::kProducer) return p;
    }
    return PeerStats{};
  };
  EXPECT_EQ(find().upstream_from, "");  // not an import
  queue->set_upstream_link("tcp://[fd77::1]:7001", true);
  EXPECT_EQ(find().upstream_from, "tcp://[fd77::1]:7001");
  EXPECT_TRUE(find().upstream_up);
  queue->set_upstream_link("tcp://elsewhere:1", false);  // the address stays the first one
  EXPECT_EQ(find().upstream_from, "tcp://[fd77::1]:7001");
  EXPECT_FALSE(find().upstream_up);
  auto other = QueueProducer::open(name);
  ASSERT_TRUE(other.ok());
  other->set_upstream_link("tcp://x\x1b]0;evil\n:1 and a long tail past the 35 bytes kept", true);
  absl::StatusOr<ChannelStats> st = read_stats(name);
  ASSERT_TRUE(st.ok());
  int imports = 0;
  for (const PeerStats& p : st->peers) {
    if (p.upstream_from.empty()) continue;
    ++imports;
    EXPECT_EQ(p.upstream_from.find_first_of("\x1b\n"), std::string::npos) << p.upstream_from;
    EXPECT_EQ(p.upstream_from.find("past"), std::string::npos) << p.upstream_from;  // cut
  }
  EXPECT_EQ(imports, 2);
  queue->close();
  other->close();
}

// A publisher sends upstream messages 1000, 1001, ... and is killed with SIGKILL at a varying
// instant (often between recording the mark and writing the record); the next publisher's
// upstream_resume() must name exactly the message after the last one the ring holds, every time.
// (Fails if resume always or never counts the marked message as sent.)
TEST(TopicUpstream, ResumePointIsExactAfterAPublisherIsKilledAnywhere) {
  const std::string name = channel_name("upkill");
  const int rounds = shmring::testing::rounds_from_env("SHMRING_BRIDGE_KILL_ROUNDS", 30);
  // Keeps the channel (and its upstream mark) between the publishers of successive rounds.
  auto keeper = TopicSubscriber::open(name, shmring::testing::topic(1 << 16, 64, /*lossless=*/false));
  ASSERT_TRUE(keeper.ok());
  std::uint64_t next_upstream = 1000;
  for (int round = 0; round < rounds; ++round) {
    const std::uint64_t from = next_upstream;
    const pid_t child = shmring::testing::fork_child([&]() -> int {
      auto pub = TopicPublisher::open(name, shmring::testing::topic(1 << 16, 64));
      if (!pub.ok()) return 3;
      UpstreamPosition p = pub->upstream_resume();
      if (p.origin != 0 && p.sequence != from) return 4;
      for (std::uint64_t s = from;; ++s) {
        UpstreamPosition at{77, 5, s};
        std::uint64_t payload = s;
        const ChannelResult r = pub->try_send_from(
            at, std::span<const std::byte>(reinterpret_cast<const std::byte*>(&payload), 8));
        if (r != ChannelResult::kOk) return 5;
      }
    });
    std::this_thread::sleep_for(std::chrono::microseconds(500 + 997 * (round % 7)));
    kill(child, SIGKILL);
    const auto result = shmring::testing::wait_child(child);
    ASSERT_TRUE(result.signaled) << "child exited with " << result.code << " in round " << round;
    // The truth is in the ring: each completed send gave upstream message s the ring sequence
    // s - 1000 + (abandoned before it) (the first record is number 0, the first upstream message
    // 1000; a send either completes, advancing both, or leaves at most a claim the next open skips
    // as a dead publisher's unfinished message, which uses a ring number but no upstream one). The
    // ring's next sequence less those skipped says which upstream message comes next.
    auto next = TopicPublisher::open(name, shmring::testing::topic(1 << 16, 64));
    ASSERT_TRUE(next.ok()) << next.status();
    const UpstreamPosition p = next->upstream_resume();
    const std::uint64_t truth = next->next_sequence() - read_stats(name)->abandoned + 1000;
    if (p.origin == 0) {  // killed before its first send (a loaded machine): nothing to resume
      ASSERT_EQ(truth, 1000u) << "round " << round;
      continue;
    }
    ASSERT_EQ(p.origin, 77u);
    ASSERT_EQ(p.incarnation, 5u);
    ASSERT_EQ(p.sequence, truth) << "round " << round;
    ASSERT_GE(p.sequence, from) << "round " << round;
    next_upstream = p.sequence;
  }
}

// --- one Bridge, export and import in one process, over loopback ----------------------------------

TEST(BridgeLoopback, OneProcessExportsAndImportsALosslessTopicWithoutLoss) {
  const std::string a = channel_name("loop_a");
  const std::string b = channel_name("loop_b");
  auto pub = TopicPublisher::open(a, shmring::testing::topic(1 << 14, 512, /*lossless=*/true));
  ASSERT_TRUE(pub.ok());
  auto sub = TopicSubscriber::open(b, shmring::testing::topic(1 << 14, 512, /*lossless=*/true));
  ASSERT_TRUE(sub.ok());
  // A port unlikely to be taken (the pid spreads concurrent runs).
  const int port = 24000 + getpid() % 4000;
  BridgeConfig config;
  ExportSpec e;
  e.bind = "tcp://127.0.0.1:" + std::to_string(port);
  e.channels = {a};
  e.carrier.high_water_mark = 8;  // small: back-pressure comes quickly
  ImportSpec i;
  i.connect = e.bind;
  i.channels = {ChannelRoute{a, b}};
  i.carrier.high_water_mark = 8;
  config.exports.push_back(e);
  config.imports.push_back(i);
  auto bridge = Bridge::create(config);
  ASSERT_TRUE(bridge.ok()) << bridge.status();
  std::thread runner([&] { EXPECT_TRUE((*bridge)->run().ok()); });
  auto ready = [&] {
    for (const ChannelStatus& c : (*bridge)->status().channels) {
      if (!c.open || c.peers == 0) return false;
    }
    return true;
  };
  for (int t = 0; t < 400 && !ready(); ++t) std::this_thread::sleep_for(std::chrono::milliseconds(25));
  ASSERT_TRUE(ready());
  constexpr int kCount = 20000;
  std::thread producer([&] {
    for (int m = 0; m < kCount; ++m) {
      const std::string text = "message " + std::to_string(m) + std::string(m % 300, 'x');
      ASSERT_EQ(pub->send(bytes_of(text), std::chrono::seconds(30)), ChannelResult::kOk);
    }
  });
  std::vector<std::byte> buffer(512);
  int got = 0;
  while (got < kCount) {
    std::size_t n = 0;
    const ChannelResult r = sub->receive(buffer, &n, std::chrono::seconds(20));
    ASSERT_EQ(r, ChannelResult::kOk) << "after " << got;
    ASSERT_EQ(string_of(std::span(buffer).first(n)), "message " + std::to_string(got) + std::string(got % 300, 'x'));
    ++got;
    if (got % 1000 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));  // a slow reader
  }
  producer.join();
  const BridgeStatus s = (*bridge)->status();
  (*bridge)->stop();
  runner.join();
  for (const ChannelStatus& c : s.channels) {
    EXPECT_EQ(c.lost, 0u) << c.direction;
    EXPECT_EQ(c.messages, static_cast<std::uint64_t>(kCount)) << c.direction;
  }
  EXPECT_EQ(read_stats(b)->lost, 0u);
}

}  // namespace
}  // namespace shmring::bridge
