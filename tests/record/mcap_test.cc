// The MCAP writer and reader (transport/record/include/shmring/record/mcap.h): every record type
// written and read back, the layout byte by byte where the specification fixes it, seeking by
// time, truncated and corrupt files (every reader error), and the writer's errors.
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "mcap_codec.h"
#include "record_test_util.h"
#include "shmring/record/mcap.h"

namespace shmring::record {
namespace {

using testing::TempDir;

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
constexpr std::size_t kStride = 5;  // the sanitizers slow every read down: a sample of the cuts
#else
constexpr std::size_t kStride = 1;
#endif

struct Sent {
  std::uint16_t channel;
  std::uint32_t sequence;
  std::uint64_t time;
  std::string data;
};

std::span<const std::byte> bytes_of(const std::string& s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

// Writes `n` messages round-robin on three channels (one with a schema), with metadata between.
std::vector<Sent> write_sample(const std::string& path, WriterOptions options, int n = 500) {
  auto w = McapWriter::create(path, options);
  EXPECT_TRUE(w.ok()) << w.status();
  auto schema = w->add_schema("demo.Point", "jsonschema", R"({"type":"object"})");
  EXPECT_TRUE(schema.ok());
  auto a = w->add_channel("prices", "", 0, {{"shmring.kind", "topic"}});
  auto b = w->add_channel("camera", "", 0, {{"shmring.kind", "frames"}, {"width", "1920"}});
  auto c = w->add_channel("points", "json", *schema, {});
  EXPECT_TRUE(a.ok() && b.ok() && c.ok());
  std::vector<Sent> sent;
  const std::uint16_t ids[3] = {*a, *b, *c};
  for (int i = 0; i < n; ++i) {
    Sent s{ids[i % 3], static_cast<std::uint32_t>(i / 3), 1'000'000'000ULL + static_cast<std::uint64_t>(i) * 1000,
           "message " + std::to_string(i) + std::string(static_cast<std::size_t>(i % 97), 'x')};
    EXPECT_TRUE(w->write({s.channel, s.sequence, s.time, s.time + 1, bytes_of(s.data)}).ok());
    sent.push_back(s);
    if (i == n / 2) {
      EXPECT_TRUE(w->write_metadata({"halfway", {{"i", std::to_string(i)}}}).ok());
    }
  }
  EXPECT_TRUE(w->write_metadata({"end", {{"count", std::to_string(n)}, {"empty", ""}}}).ok());
  EXPECT_TRUE(w->close().ok());
  return sent;
}

std::vector<Sent> read_all(McapReader& r, const ReadOptions& options = {}, ReadReport* report = nullptr,
                           absl::Status* status = nullptr) {
  std::vector<Sent> got;
  absl::Status s = r.read_messages(options, [&](const Message& m, const Channel& c) {
    EXPECT_EQ(c.id, m.channel_id);
    EXPECT_EQ(m.publish_time, m.log_time + 1);
    got.push_back({m.channel_id, m.sequence, m.log_time,
                   std::string(reinterpret_cast<const char*>(m.data.data()), m.data.size())});
    return true;
  }, report);
  if (status != nullptr) {
    *status = s;
  } else {
    EXPECT_TRUE(s.ok()) << s;
  }
  return got;
}

bool same(const std::vector<Sent>& a, const std::vector<Sent>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].channel != b[i].channel || a[i].sequence != b[i].sequence || a[i].time != b[i].time ||
        a[i].data != b[i].data) {
      return false;
    }
  }
  return true;
}

class McapRoundTrip : public ::testing::TestWithParam<std::tuple<Compression, bool>> {};

TEST_P(McapRoundTrip, EveryRecordTypeWrittenAndReadBack) {
  TempDir dir;
  WriterOptions o;
  o.compression = std::get<0>(GetParam());
  o.background = std::get<1>(GetParam());
  o.chunk_bytes = 4096;  // many chunks
  o.profile = "x-shmring";
  const std::string path = dir.path("a.mcap");
  const std::vector<Sent> sent = write_sample(path, o);
  auto r = McapReader::open(path);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->has_summary());
  EXPECT_EQ(r->header().profile, "x-shmring");
  EXPECT_EQ(r->header().library, "shmring");
  ReadReport report;
  EXPECT_TRUE(same(read_all(*r, {}, &report), sent));
  EXPECT_FALSE(report.truncated);
  EXPECT_GT(report.chunks_read, 10u);
  auto summary = r->summary();
  ASSERT_TRUE(summary.ok());
  const Summary& s = **summary;
  ASSERT_EQ(s.schemas.size(), 1u);
  EXPECT_EQ(s.schemas.at(1).name, "demo.Point");
  EXPECT_EQ(s.schemas.at(1).encoding, "jsonschema");
  EXPECT_EQ(s.schemas.at(1).data, R"({"type":"object"})");
  ASSERT_EQ(s.channels.size(), 3u);
  EXPECT_EQ(s.channels.at(2).topic, "camera");
  EXPECT_EQ(s.channels.at(2).metadata.at("width"), "1920");
  EXPECT_EQ(s.channels.at(3).schema_id, 1u);
  EXPECT_EQ(s.channels.at(3).message_encoding, "json");
  ASSERT_TRUE(s.statistics.has_value());
  EXPECT_EQ(s.statistics->message_count, sent.size());
  EXPECT_EQ(s.statistics->channel_count, 3u);
  EXPECT_EQ(s.statistics->schema_count, 1u);
  EXPECT_EQ(s.statistics->metadata_count, 2u);
  EXPECT_EQ(s.statistics->chunk_count, s.chunk_indexes.size());
  EXPECT_EQ(s.statistics->message_start_time, sent.front().time);
  EXPECT_EQ(s.statistics->message_end_time, sent.back().time);
  EXPECT_EQ(s.statistics->channel_message_counts.at(1), 167u);
  EXPECT_EQ(s.metadata_indexes.size(), 2u);
  for (const ChunkIndex& c : s.chunk_indexes) {
    EXPECT_EQ(c.compression, o.compression == Compression::kZstd ? "zstd" : "");
    EXPECT_FALSE(c.message_index_offsets.empty());
    EXPECT_GT(c.message_index_length, 0u);
    if (o.compression == Compression::kNone) {
      EXPECT_EQ(c.compressed_size, c.uncompressed_size);
    }
  }
  auto metadata = r->metadata();
  ASSERT_TRUE(metadata.ok());
  ASSERT_EQ(metadata->size(), 2u);
  EXPECT_EQ((*metadata)[0].name, "halfway");
  EXPECT_EQ((*metadata)[1].entries.at("count"), "500");
  EXPECT_EQ((*metadata)[1].entries.at("empty"), "");
}

INSTANTIATE_TEST_SUITE_P(Compressions, McapRoundTrip,
                         ::testing::Combine(::testing::Values(Compression::kNone, Compression::kZstd),
                                            ::testing::Bool()));

TEST(McapTest, SeeksByTimeAndChannel) {
  TempDir dir;
  WriterOptions o;
  o.chunk_bytes = 2048;
  const std::string path = dir.path("seek.mcap");
  const std::vector<Sent> sent = write_sample(path, o, 900);
  auto r = McapReader::open(path);
  ASSERT_TRUE(r.ok());
  ReadOptions ro;
  ro.start_time = sent[300].time;
  ro.end_time = sent[600].time;
  ro.channels = {2};
  ReadReport report;
  const std::vector<Sent> got = read_all(*r, ro, &report);
  std::vector<Sent> want;
  for (int i = 300; i < 600; ++i) {
    if (sent[static_cast<std::size_t>(i)].channel == 2) want.push_back(sent[static_cast<std::size_t>(i)]);
  }
  EXPECT_TRUE(same(got, want));
  // Only the chunks that hold that range were read.
  auto summary = r->summary();
  ASSERT_TRUE(summary.ok());
  EXPECT_LT(report.chunks_read * 2, (*summary)->chunk_indexes.size());
  // Stopping early.
  int n = 0;
  ASSERT_TRUE(r->read_messages({}, [&](const Message&, const Channel&) { return ++n < 7; }).ok());
  EXPECT_EQ(n, 7);
}

TEST(McapTest, LogTimeOrderMergesOverlappingChunks) {
  TempDir dir;
  WriterOptions o;
  o.chunk_bytes = 256;
  const std::string path = dir.path("order.mcap");
  {
    auto w = McapWriter::create(path, o);
    ASSERT_TRUE(w.ok());
    auto c = w->add_channel("t", "", 0, {});
    // Times go back and forth across chunks: 10, 30, 20, 40, ...
    for (int i = 0; i < 200; ++i) {
      const std::uint64_t t = 1000 + static_cast<std::uint64_t>((i % 2 == 0) ? i : i - 3) * 10;
      const std::string d = std::to_string(t);
      ASSERT_TRUE(w->write({*c, static_cast<std::uint32_t>(i), t, t, bytes_of(d)}).ok());
    }
    ASSERT_TRUE(w->close().ok());
  }
  auto r = McapReader::open(path);
  ASSERT_TRUE(r.ok());
  ReadOptions ro;
  ro.order = ReadOptions::Order::kLogTime;
  std::uint64_t last = 0;
  int count = 0;
  ASSERT_TRUE(r->read_messages(ro, [&](const Message& m, const Channel&) {
    EXPECT_GE(m.log_time, last);
    last = m.log_time;
    ++count;
    return true;
  }).ok());
  EXPECT_EQ(count, 200);
}

// The bytes the specification fixes: magic, header, the footer and the closing magic, the data
// end, and the summary offsets pointing at their groups.
TEST(McapTest, LayoutByTheSpecification) {
  TempDir dir;
  WriterOptions o;
  o.compression = Compression::kNone;
  o.library = "lib";
  const std::string path = dir.path("layout.mcap");
  {
    auto w = McapWriter::create(path, o);
    ASSERT_TRUE(w.ok());
    auto c = w->add_channel("a", "", 0, {});
    ASSERT_TRUE(w->write({*c, 7, 5, 5, bytes_of("hi")}).ok());
    ASSERT_TRUE(w->close().ok());
  }
  const std::vector<std::byte> f = testing::read_file(path);
  auto u8 = [&](std::size_t at) { return static_cast<std::uint8_t>(f[at]); };
  auto u64 = [&](std::size_t at) {
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= static_cast<std::uint64_t>(u8(at + static_cast<std::size_t>(i))) << (8 * i);
    return v;
  };
  ASSERT_GT(f.size(), 64u);
  EXPECT_EQ(std::memcmp(f.data(), "\x89MCAP0\r\n", 8), 0);
  EXPECT_EQ(std::memcmp(f.data() + f.size() - 8, "\x89MCAP0\r\n", 8), 0);
  EXPECT_EQ(u8(8), 0x01);                   // Header
  EXPECT_EQ(u64(9), 4u + 0 + 4 + 3);        // profile "" + library "lib"
  EXPECT_EQ(u8(17 + 11), 0x06);             // then a Chunk
  const std::size_t footer = f.size() - 8 - 29;
  EXPECT_EQ(u8(footer), 0x02);
  EXPECT_EQ(u64(footer + 1), 20u);
  const std::uint64_t summary_start = u64(footer + 9);
  const std::uint64_t offsets_start = u64(footer + 17);
  ASSERT_GT(summary_start, 0u);
  ASSERT_GT(offsets_start, summary_start);
  EXPECT_EQ(u8(static_cast<std::size_t>(summary_start) - 13), 0x0F);  // DataEnd (4-byte body)
  EXPECT_EQ(u64(static_cast<std::size_t>(summary_start) - 12), 4u);
  // Each SummaryOffset points at a run of records of its opcode.
  std::size_t at = static_cast<std::size_t>(offsets_start);
  int groups = 0;
  while (at < footer) {
    ASSERT_EQ(u8(at), 0x0E);
    ASSERT_EQ(u64(at + 1), 17u);
    const std::uint8_t op = u8(at + 9);
    const std::uint64_t start = u64(at + 10), length = u64(at + 18);
    EXPECT_EQ(u8(static_cast<std::size_t>(start)), op);
    EXPECT_LE(start + length, offsets_start);
    at += 26;
    ++groups;
  }
  EXPECT_EQ(groups, 3);  // channel, chunk index, statistics
  // The footer's CRC covers the summary through the footer's offsets.
  const std::uint32_t crc = static_cast<std::uint32_t>(u64(footer + 25) & 0xffffffffu);
  EXPECT_EQ(crc, detail::crc32_update(0, std::span(f).subspan(static_cast<std::size_t>(summary_start),
                                                               footer + 25 - static_cast<std::size_t>(summary_start))));
}

TEST(McapTest, Crc32MatchesTheStandardCheckValue) {
  EXPECT_EQ(detail::crc32_update(0, bytes_of("123456789")), 0xCBF43926u);
  EXPECT_EQ(detail::crc32_update(detail::crc32_update(0, bytes_of("1234")), bytes_of("56789")), 0xCBF43926u);
}

// A writer stopped at any point: every truncation of a file is either refused as "not MCAP" (the
// header is incomplete) or read up to its last complete chunk, in order, without error.
TEST(McapTest, EveryTruncationReadsACompletePrefix) {
  TempDir dir;
  WriterOptions o;
  o.chunk_bytes = 512;
  const std::string path = dir.path("trunc.mcap");
  const std::vector<Sent> sent = write_sample(path, o, 120);
  const std::vector<std::byte> f = testing::read_file(path);
  std::size_t last_count = 0;
  for (std::size_t n = 0; n <= f.size(); n += (n + kStride > f.size() && n != f.size()) ? f.size() - n : kStride) {
    auto r = McapReader::open_bytes(std::span(f).first(n));
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss) << n;
      EXPECT_LT(n, 40u);
      continue;
    }
    ReadReport report;
    absl::Status s;
    const std::vector<Sent> got = read_all(*r, {}, &report, &s);
    ASSERT_TRUE(s.ok()) << n << ": " << s;
    ASSERT_LE(got.size(), sent.size());
    EXPECT_TRUE(same(got, std::vector<Sent>(sent.begin(), sent.begin() + static_cast<std::ptrdiff_t>(got.size()))));
    EXPECT_GE(got.size(), last_count) << n;  // more bytes never read fewer messages
    last_count = got.size();
    if (n < f.size()) {
      EXPECT_FALSE(r->has_summary()) << n;
      auto summary = r->summary();  // built by a scan
      ASSERT_TRUE(summary.ok()) << n;
      ASSERT_TRUE((*summary)->statistics.has_value());
      EXPECT_EQ((*summary)->statistics->message_count, got.size());
    } else {
      EXPECT_TRUE(r->has_summary());
    }
  }
  EXPECT_EQ(last_count, sent.size());
}

// Every byte changed, one at a time (a sample of positions): the reader answers, never crashes,
// and never delivers a message that was not written (chunks carry CRCs).
TEST(McapTest, CorruptBytesNeverCrashAndNeverInventMessages) {
  TempDir dir;
  WriterOptions o;
  o.chunk_bytes = 700;
  const std::string path = dir.path("corrupt.mcap");
  const std::vector<Sent> sent = write_sample(path, o, 60);
  const std::vector<std::byte> f = testing::read_file(path);
  std::mt19937 rng(5);
  for (std::size_t at = 0; at < f.size(); at += kStride * (1 + rng() % 3)) {
    std::vector<std::byte> g = f;
    g[at] = std::byte(static_cast<std::uint8_t>(g[at]) ^ static_cast<std::uint8_t>(1 + rng() % 255));
    auto r = McapReader::open_bytes(g);
    if (!r.ok()) continue;
    for (bool skip : {false, true}) {
      ReadOptions ro;
      ro.skip_bad_chunks = skip;
      absl::Status s;
      const std::vector<Sent> got = read_all(*r, ro, nullptr, &s);
      for (const Sent& m : got) {
        bool found = false;
        for (const Sent& w : sent) found = found || (w.data == m.data && w.time == m.time);
        // A changed byte outside a chunk's CRC (a message index, the summary) may still point
        // the reader at the right chunk; a changed byte inside a chunk is caught by its CRC.
        EXPECT_TRUE(found) << "byte " << at;
      }
    }
    (void)r->summary();
    (void)r->metadata();
  }
}

// Builds a file from raw records, to reach each reader error on purpose.
std::vector<std::byte> file_of(const std::function<void(detail::Encoder&)>& records, bool close = false) {
  std::vector<std::byte> out;
  detail::Encoder e(&out);
  e.raw(kMcapMagic);
  detail::encode_header(e, {"", "t"});
  records(e);
  if (close) {
    detail::encode_data_end(e, 0);
    detail::encode_footer(e, 0, 0, 0);
    e.raw(kMcapMagic);
  }
  return out;
}

void chunk_of(detail::Encoder& e, const std::vector<std::byte>& records, std::string compression = "",
              std::uint32_t crc = 0, std::uint64_t claimed = UINT64_MAX) {
  const std::size_t r = e.begin_record(Opcode::kChunk);
  e.u64(0);
  e.u64(0);
  e.u64(claimed == UINT64_MAX ? records.size() : claimed);
  e.u32(crc);
  e.string(compression);
  e.u64(records.size());
  e.bytes(records);
  e.end_record(r);
}

absl::Status read_error(const std::vector<std::byte>& file, ReaderOptions options = {},
                        ReadReport* report = nullptr, bool skip = false) {
  auto r = McapReader::open_bytes(file, options);
  if (!r.ok()) return r.status();
  ReadOptions ro;
  ro.skip_bad_chunks = skip;
  return r->read_messages(ro, [](const Message&, const Channel&) { return true; }, report);
}

TEST(McapTest, EveryReaderError) {
  Channel ch{1, 0, "c", "", {}};
  std::vector<std::byte> inner;
  detail::Encoder ie(&inner);
  detail::encode_channel(ie, ch);
  const std::string hello = "hello";
  detail::encode_message(ie, {1, 0, 5, 5, bytes_of(hello)});

  // Not MCAP at all, a bad magic, a torn or missing header.
  EXPECT_EQ(McapReader::open_bytes({}).status().code(), absl::StatusCode::kDataLoss);
  std::vector<std::byte> bad = file_of([](detail::Encoder&) {});
  bad[1] = std::byte{'X'};
  EXPECT_EQ(McapReader::open_bytes(bad).status().code(), absl::StatusCode::kDataLoss);
  std::vector<std::byte> no_header;
  detail::Encoder nh(&no_header);
  nh.raw(kMcapMagic);
  detail::encode_data_end(nh, 0);
  EXPECT_EQ(McapReader::open_bytes(no_header).status().code(), absl::StatusCode::kDataLoss);
  std::vector<std::byte> bad_header;
  detail::Encoder bh(&bad_header);
  bh.raw(kMcapMagic);
  const std::size_t h = bh.begin_record(Opcode::kHeader);
  bh.u32(99);  // a string longer than the record
  bh.end_record(h);
  EXPECT_EQ(McapReader::open_bytes(bad_header).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(McapReader::open("/nonexistent/x.mcap").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(McapReader::open("/").status().code(), absl::StatusCode::kInvalidArgument);

  // A good chunk reads.
  EXPECT_TRUE(read_error(file_of([&](detail::Encoder& e) { chunk_of(e, inner); }, true)).ok());
  // CRC mismatch.
  EXPECT_EQ(read_error(file_of([&](detail::Encoder& e) { chunk_of(e, inner, "", 12345); })).code(),
            absl::StatusCode::kDataLoss);
  // Unsupported compression.
  EXPECT_EQ(read_error(file_of([&](detail::Encoder& e) { chunk_of(e, inner, "lz4"); })).code(),
            absl::StatusCode::kUnimplemented);
  // Not zstd data though it says so.
  EXPECT_EQ(read_error(file_of([&](detail::Encoder& e) { chunk_of(e, inner, "zstd"); })).code(),
            absl::StatusCode::kDataLoss);
  // An uncompressed chunk whose size field lies.
  EXPECT_EQ(read_error(file_of([&](detail::Encoder& e) { chunk_of(e, inner, "", 0, inner.size() + 1); })).code(),
            absl::StatusCode::kDataLoss);
  // Over the reader's limit.
  ReaderOptions tight;
  tight.max_chunk_bytes = 8;
  EXPECT_EQ(read_error(file_of([&](detail::Encoder& e) { chunk_of(e, inner); }), tight).code(),
            absl::StatusCode::kResourceExhausted);
  // A torn record inside a chunk.
  std::vector<std::byte> torn = inner;
  torn.pop_back();
  EXPECT_EQ(read_error(file_of([&](detail::Encoder& e) { chunk_of(e, torn); })).code(),
            absl::StatusCode::kDataLoss);
  // A message on a channel never declared.
  std::vector<std::byte> orphan;
  detail::Encoder oe(&orphan);
  detail::encode_message(oe, {9, 0, 5, 5, bytes_of(hello)});
  EXPECT_EQ(read_error(file_of([&](detail::Encoder& e) { chunk_of(e, orphan); })).code(),
            absl::StatusCode::kDataLoss);
  // A channel record too short for its fields.
  std::vector<std::byte> bad_channel;
  detail::Encoder be(&bad_channel);
  const std::size_t bc = be.begin_record(Opcode::kChannel);
  be.u16(1);
  be.end_record(bc);
  EXPECT_EQ(read_error(file_of([&](detail::Encoder& e) { chunk_of(e, bad_channel); })).code(),
            absl::StatusCode::kDataLoss);
  // A message record too short for its fields (outside a chunk).
  EXPECT_EQ(read_error(file_of([&](detail::Encoder& e) {
              detail::encode_channel(e, ch);
              const std::size_t m = e.begin_record(Opcode::kMessage);
              e.u16(1);
              e.end_record(m);
            })).code(),
            absl::StatusCode::kDataLoss);
  // A bad chunk skipped on request, the good one after it read.
  ReadReport report;
  EXPECT_TRUE(read_error(file_of([&](detail::Encoder& e) {
                chunk_of(e, inner, "", 777);
                chunk_of(e, inner);
              }),
                         {}, &report, true)
                  .ok());
  EXPECT_EQ(report.chunks_skipped, 1u);
  EXPECT_EQ(report.messages, 1u);
  // Messages outside chunks (another writer's unchunked file) are read too, and unknown records
  // (an attachment, an application's own opcode) are passed over.
  report = ReadReport();
  EXPECT_TRUE(read_error(file_of([&](detail::Encoder& e) {
                detail::encode_channel(e, ch);
                const std::size_t a = e.begin_record(static_cast<Opcode>(0x80));
                e.u64(42);
                e.end_record(a);
                detail::encode_message(e, {1, 3, 5, 5, bytes_of(hello)});
              }, true),
                         {}, &report)
                  .ok());
  EXPECT_EQ(report.messages, 1u);
  EXPECT_FALSE(report.truncated);
}

// A summary that does not add up is ignored (the data section is scanned); a chunk index that
// points at no chunk is an error (or skipped).
TEST(McapTest, BadSummaryFallsBackToTheDataSection) {
  TempDir dir;
  WriterOptions o;
  o.chunk_bytes = 1024;
  const std::string path = dir.path("summary.mcap");
  const std::vector<Sent> sent = write_sample(path, o, 90);
  std::vector<std::byte> f = testing::read_file(path);
  // Break the footer's CRC: no summary, every message still read.
  std::vector<std::byte> g = f;
  g[g.size() - 8 - 4] ^= std::byte{0x55};
  auto r = McapReader::open_bytes(g);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->has_summary());
  EXPECT_TRUE(same(read_all(*r), sent));
  // Summary start pointing past the footer.
  g = f;
  const std::size_t footer = g.size() - 8 - 29;
  for (int i = 0; i < 8; ++i) g[footer + 9 + static_cast<std::size_t>(i)] = std::byte{0xff};
  r = McapReader::open_bytes(g);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->has_summary());
  EXPECT_TRUE(same(read_all(*r), sent));
}

TEST(McapTest, WriterErrors) {
  TempDir dir;
  const std::string path = dir.path("w.mcap");
  {
    auto w = McapWriter::create(path);
    ASSERT_TRUE(w.ok());
    EXPECT_EQ(w->add_channel("a", "", 5, {}).status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(w->write({3, 0, 0, 0, {}}).code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(w->close().ok());
    EXPECT_TRUE(w->close().ok());  // idempotent
    EXPECT_FALSE(w->is_open());
    EXPECT_EQ(w->write({1, 0, 0, 0, {}}).code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_EQ(w->add_channel("a", "", 0, {}).status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_EQ(w->flush().code(), absl::StatusCode::kFailedPrecondition);
  }
  EXPECT_EQ(McapWriter::create(path).status().code(), absl::StatusCode::kAlreadyExists);
  WriterOptions overwrite;
  overwrite.overwrite = true;
  EXPECT_TRUE(McapWriter::create(path, overwrite).ok());
  EXPECT_EQ(McapWriter::create(dir.path("missing/x.mcap")).status().code(), absl::StatusCode::kNotFound);
  WriterOptions zero;
  zero.chunks_in_flight = 0;
  EXPECT_EQ(McapWriter::create(dir.path("z.mcap"), zero).status().code(), absl::StatusCode::kInvalidArgument);
  // An empty file (no channel, no message) is a valid MCAP file.
  auto empty = McapReader::open(path);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->has_summary());
  EXPECT_TRUE(read_all(*empty).empty());
  EXPECT_EQ(parse_compression("lz4").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(*parse_compression("none"), Compression::kNone);
  EXPECT_EQ(to_string(Compression::kZstd), "zstd");
}

// A full disk (here: a file size limit, EFBIG): the error reaches the caller, from the
// background thread too, and what was written before stays readable.
TEST(McapTest, AFullDiskIsReported) {
  TempDir dir;
  for (bool background : {false, true}) {
    const std::string path = dir.path(background ? "full_bg.mcap" : "full.mcap");
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      signal(SIGXFSZ, SIG_IGN);
      const rlimit limit{64 * 1024, 64 * 1024};
      setrlimit(RLIMIT_FSIZE, &limit);
      WriterOptions o;
      o.background = background;
      o.chunk_bytes = 4096;
      o.compression = Compression::kNone;
      auto w = McapWriter::create(path, o);
      if (!w.ok()) _exit(10);
      auto c = w->add_channel("a", "", 0, {});
      absl::Status s;
      const std::string payload(600, 'p');
      for (int i = 0; i < 1000 && s.ok(); ++i) s = w->write({*c, 0, 0, 1, bytes_of(payload)});
      if (s.ok()) s = w->flush();
      if (s.code() != absl::StatusCode::kResourceExhausted) _exit(11);
      if (w->close().ok()) _exit(12);
      _exit(0);
    }
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0) << "background " << background;
    auto r = McapReader::open(path);
    ASSERT_TRUE(r.ok());
    ReadReport report;
    EXPECT_GT(read_all(*r, {}, &report).size(), 50u);
  }
}

// What flush() promises: a reader of the file (no summary yet) sees every message written before.
TEST(McapTest, FlushedMessagesAreInTheFileBeforeClose) {
  TempDir dir;
  const std::string path = dir.path("flush.mcap");
  auto w = McapWriter::create(path);
  ASSERT_TRUE(w.ok());
  auto c = w->add_channel("a", "", 0, {});
  for (int round = 1; round <= 3; ++round) {
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(w->write({*c, 0, 1, 2, bytes_of("x")}).ok());
    ASSERT_TRUE(w->flush().ok());
    auto r = McapReader::open(path);
    ASSERT_TRUE(r.ok());
    EXPECT_FALSE(r->has_summary());
    ReadReport report;
    EXPECT_EQ(read_all(*r, {}, &report).size(), static_cast<std::size_t>(10 * round));
    EXPECT_FALSE(report.truncated);
    EXPECT_GE(w->bytes_written(), r->file_size());
  }
  ASSERT_TRUE(w->sync().ok());
  ASSERT_TRUE(w->close().ok());
}

}  // namespace
}  // namespace shmring::record
