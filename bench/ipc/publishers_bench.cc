// shmring_publishers_bench: several publisher processes into one topic read by one subscriber
// process, beside one publisher in the same run (and beside iceoryx), and how long a late joiner
// takes to receive a topic's history. Prints tables and, with --json FILE, writes one JSON
// document. docs/benchmarks.md ("Several publishers and history") describes it and its figures.
//
//   throughput  each publisher sends as fast as it can for --seconds; the subscriber's messages/s
//               (all publishers together), lossless and lossy delivery, for 1, 2, 4 publishers,
//               and 1 publisher on a topic made for the most of them (the multi-publisher ring
//               without contention)
//   latency     the publishers together offer --rate messages/s (each rate / publishers, paced by
//               sleeping to an absolute schedule); the subscriber's latency from the timestamp in
//               the payload (CLOCK_MONOTONIC just before the send call) to its return
//   iceoryx     both of the above with iceoryx 2.0 (1 and 2 publishers)
//   history     a topic with history = N gets N messages; a late subscriber process opens it with
//               TopicStart::history(N): time from before open() to its N-th message
//
// Every run checks each publisher's order at the subscriber (out_of_order must be 0), and, for
// shmring, that topic sequence numbers grow and carry the payload's publisher number; lossless
// runs must lose nothing. Repetitions run round-robin (rep 1 of every row, then rep 2, ...) so
// that the rows of one run see the same machine; figures are the median, with min..max.
//
// Usage: shmring_publishers_bench [--seconds S] [--rate R] [--size B] [--cpus P[,P...],S]
//          [--publishers 1,2,4] [--repetitions N] [--history N] [--history-repetitions N]
//          [--sections throughput,latency,iceoryx,history] [--json FILE]
// --cpus: the last core is the subscriber's, the others are the publishers' (round-robin).
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "harness.h"
#include "publishers_bench.h"

namespace shmring::bench::publishers {
namespace {

struct Settings {
  double seconds = 2;
  double rate = 20000;
  std::size_t size = 64;
  std::vector<int> publisher_cpus = {0};
  int subscriber_cpu = 1;
  std::vector<int> publishers = {1, 2, 4};
  int repetitions = 3;
  std::uint64_t history = 10000;
  int history_repetitions = 7;
  std::vector<std::string> sections = {"throughput", "latency", "iceoryx", "history"};
  std::string json;
};

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> parts;
  std::stringstream in(text);
  for (std::string part; std::getline(in, part, ',');) {
    if (!part.empty()) parts.push_back(part);
  }
  return parts;
}

std::vector<int> int_list(const std::string& text) {
  std::vector<int> values;
  for (const std::string& part : split(text)) values.push_back(std::atoi(part.c_str()));
  return values;
}

int usage(const char* why) {
  std::fprintf(stderr,
               "%s\nusage: shmring_publishers_bench [--seconds S] [--rate R] [--size B] [--cpus P[,P...],S]\n"
               "  [--publishers 1,2,4] [--repetitions N] [--history N] [--history-repetitions N]\n"
               "  [--sections throughput,latency,iceoryx,history] [--json FILE]\n",
               why);
  return 2;
}

bool parse(int argc, char** argv, Settings* s, std::string* why) {
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) {
      *why = "missing value for " + flag;
      return false;
    }
    const std::string value = argv[++i];
    if (flag == "--seconds") {
      s->seconds = std::atof(value.c_str());
    } else if (flag == "--rate") {
      s->rate = std::atof(value.c_str());
    } else if (flag == "--size") {
      s->size = static_cast<std::size_t>(std::atoll(value.c_str()));
    } else if (flag == "--cpus") {
      std::vector<int> cpus = int_list(value);
      if (cpus.size() < 2) {
        *why = "--cpus needs at least two cores: the publishers', then the subscriber's";
        return false;
      }
      s->subscriber_cpu = cpus.back();
      cpus.pop_back();
      s->publisher_cpus = cpus;
    } else if (flag == "--publishers") {
      s->publishers = int_list(value);
    } else if (flag == "--repetitions") {
      s->repetitions = std::atoi(value.c_str());
    } else if (flag == "--history") {
      s->history = static_cast<std::uint64_t>(std::atoll(value.c_str()));
    } else if (flag == "--history-repetitions") {
      s->history_repetitions = std::atoi(value.c_str());
    } else if (flag == "--sections") {
      s->sections = split(value);
    } else if (flag == "--json") {
      s->json = value;
    } else {
      *why = "unknown option " + flag;
      return false;
    }
  }
  if (s->seconds <= 0 || s->rate <= 0 || s->repetitions < 1 || s->history_repetitions < 1) {
    *why = "--seconds, --rate, --repetitions and --history-repetitions must be positive";
    return false;
  }
  if (s->size < sizeof(Stamp)) {
    *why = "--size must be at least " + std::to_string(sizeof(Stamp)) + " (the timestamp and numbers)";
    return false;
  }
  for (int p : s->publishers) {
    if (p < 1 || p > kMaxPublishers) {
      *why = "--publishers: 1 .. " + std::to_string(kMaxPublishers);
      return false;
    }
  }
  return true;
}

bool wants(const Settings& s, const std::string& section) {
  return std::find(s.sections.begin(), s.sections.end(), section) != s.sections.end();
}

// One line of the tables: a peer, a load, a delivery and a number of publishers, repeated.
struct Row {
  std::string peer;
  Load load = Load::kThroughput;
  bool lossless = true;
  int publishers = 1;
  int max_publishers = 1;
  std::vector<Outcome> runs;
  std::string skipped;  // why the peer could not run (then no figures)
};

std::string delivery_name(bool lossless) { return lossless ? "lossless" : "lossy"; }
std::string load_name(Load load) { return load == Load::kThroughput ? "throughput" : "latency"; }

std::vector<Row> plan(const Settings& s) {
  std::vector<Row> rows;
  const int most = *std::max_element(s.publishers.begin(), s.publishers.end());
  for (const Load load : {Load::kThroughput, Load::kLatency}) {
    if (!wants(s, load_name(load))) continue;
    for (const bool lossless : {true, false}) {
      for (int p : s.publishers) rows.push_back({"shmring", load, lossless, p, p, {}, {}});
      // The several-publishers ring with nobody to contend with: separates the ring's own cost
      // from the cost of publishers meeting on the claim.
      if (load == Load::kThroughput && most > 1) rows.push_back({"shmring", load, lossless, 1, most, {}, {}});
    }
  }
  if (wants(s, "iceoryx")) {
    for (const Load load : {Load::kThroughput, Load::kLatency}) {
      for (const bool lossless : {true, false}) {
        for (int p : {1, 2}) rows.push_back({"iceoryx", load, lossless, p, p, {}, {}});
      }
    }
  }
  return rows;
}

template <typename T>
T median(std::vector<T> values) {
  if (values.empty()) return T{};
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

template <typename T, typename F>
std::vector<T> each(const std::vector<Outcome>& runs, F field) {
  std::vector<T> values;
  for (const Outcome& o : runs) {
    if (o.ok) values.push_back(field(o));
  }
  return values;
}

// Medians and spreads of one row.
struct Summary {
  int measured = 0;  // repetitions that completed without error
  double rate = 0, rate_min = 0, rate_max = 0, published_rate = 0;
  std::uint64_t p50 = 0, p50_min = 0, p50_max = 0, p99 = 0, p99_min = 0, p99_max = 0, p999 = 0, max = 0;
  std::uint64_t samples = 0, published = 0, received = 0, lost = 0, gaps = 0, out_of_order = 0,
                topic_order_violations = 0, lost_counted = 0;
  bool counts_losses = false;
  std::uint64_t floor_ns = 0;  // median of the floor probed before each run
  int errors = 0;
  std::string error;
};

// The runs of `row` taken in `placement` ("" for all of them).
std::vector<Outcome> runs_in(const Row& row, const std::string& placement) {
  std::vector<Outcome> runs;
  for (const Outcome& o : row.runs) {
    if (placement.empty() || o.placement == placement) runs.push_back(o);
  }
  return runs;
}

Summary summarize(const Row& row, const std::string& placement) {
  Summary s;
  const std::vector<Outcome> runs = runs_in(row, placement);
  for (const Outcome& o : runs) {
    s.published += o.published;
    s.received += o.received;
    s.lost += o.lost;
    s.gaps += o.gaps;
    s.out_of_order += o.out_of_order;
    s.topic_order_violations += o.topic_order_violations;
    s.lost_counted += o.lost_counted;
    s.counts_losses = o.counts_losses;
    s.samples += o.samples;
    if (!o.ok) {
      ++s.errors;
      if (s.error.empty()) s.error = o.error;
    }
  }
  const auto rates = each<double>(runs, [](const Outcome& o) { return o.delivered_per_s; });
  const auto p50 = each<std::uint64_t>(runs, [](const Outcome& o) { return o.p50; });
  const auto p99 = each<std::uint64_t>(runs, [](const Outcome& o) { return o.p99; });
  s.measured = static_cast<int>(rates.size());
  if (s.measured == 0) return s;
  s.rate = median(rates);
  s.rate_min = *std::min_element(rates.begin(), rates.end());
  s.rate_max = *std::max_element(rates.begin(), rates.end());
  s.published_rate = median(each<double>(runs, [](const Outcome& o) { return o.published_per_s; }));
  s.p50 = median(p50);
  s.p50_min = *std::min_element(p50.begin(), p50.end());
  s.p50_max = *std::max_element(p50.begin(), p50.end());
  s.p99 = median(p99);
  s.p99_min = *std::min_element(p99.begin(), p99.end());
  s.p99_max = *std::max_element(p99.begin(), p99.end());
  s.p999 = median(each<std::uint64_t>(runs, [](const Outcome& o) { return o.p999; }));
  s.max = median(each<std::uint64_t>(runs, [](const Outcome& o) { return o.max; }));
  s.floor_ns = median(each<std::uint64_t>(runs, [](const Outcome& o) { return o.floor_ns; }));
  return s;
}

// The single-publisher row this row is compared with (same peer, load and delivery).
const Row* baseline_of(const std::vector<Row>& rows, const Row& row) {
  for (const Row& r : rows) {
    if (r.peer == row.peer && r.load == row.load && r.lossless == row.lossless && r.publishers == 1 &&
        r.max_publishers == 1) {
      return &r;
    }
  }
  return nullptr;
}

// This row's figure over its single-publisher baseline's (throughput: messages/s; latency: p50).
// Both taken in the same placement.
double ratio_to_one(const std::vector<Row>& rows, const Row& row, const std::string& placement) {
  const Row* base = baseline_of(rows, row);
  if (base == nullptr) return 0;
  const Summary mine = summarize(row, placement), theirs = summarize(*base, placement);
  if (row.load == Load::kThroughput) return theirs.rate > 0 ? mine.rate / theirs.rate : 0;
  return theirs.p50 > 0 ? static_cast<double>(mine.p50) / static_cast<double>(theirs.p50) : 0;
}

std::string read_loadavg() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

std::string utc_now() {
  char text[32];
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

// "0.98x", or "-" without a single-publisher run in the same placement.
std::string ratio_text(double ratio) {
  if (ratio <= 0) return "-";
  char text[16];
  std::snprintf(text, sizeof text, "%.2fx", ratio);
  return text;
}

std::string row_label(const Row& row) {
  std::string label = std::to_string(row.publishers);
  if (row.max_publishers != row.publishers) label += " of max " + std::to_string(row.max_publishers);
  return label;
}

// Rows are printed once per placement the runs were taken in (the hypervisor moves the vCPUs:
// a figure from near cores and one from far cores are not one population).
void print_throughput(const std::vector<Row>& rows, const Settings& s, const std::string& placement) {
  std::printf("\nThroughput [%s]: publishers send as fast as they can, %.3g s per run; median (min..max) "
              "of the runs in this placement\n",
              placement.c_str(), s.seconds);
  std::printf("%-8s %-9s %-13s %-4s %-32s %8s %13s %10s %6s %6s %6s\n", "peer", "delivery", "publishers", "runs",
              "delivered msgs/s", "vs 1 pub", "published/s", "lost", "gaps", "order", "floor");
  for (const Row& row : rows) {
    if (row.load != Load::kThroughput) continue;
    if (!row.skipped.empty()) {
      std::printf("%-8s %-9s %-13s skipped: %s\n", row.peer.c_str(), delivery_name(row.lossless).c_str(),
                  row_label(row).c_str(), row.skipped.c_str());
      continue;
    }
    const Summary m = summarize(row, placement);
    if (m.measured == 0 && m.errors == 0) continue;
    char rate[64];
    std::snprintf(rate, sizeof rate, "%.0f (%.0f..%.0f)", m.rate, m.rate_min, m.rate_max);
    std::printf("%-8s %-9s %-13s %-4d %-32s %8s %13.0f %10llu %6llu %6llu %6llu%s%s\n", row.peer.c_str(),
                delivery_name(row.lossless).c_str(), row_label(row).c_str(), m.measured, rate,
                ratio_text(ratio_to_one(rows, row, placement)).c_str(), m.published_rate, static_cast<unsigned long long>(m.lost),
                static_cast<unsigned long long>(m.gaps),
                static_cast<unsigned long long>(m.out_of_order + m.topic_order_violations),
                static_cast<unsigned long long>(m.floor_ns), m.errors ? "  ERROR: " : "", m.error.c_str());
  }
}

void print_latency(const std::vector<Row>& rows, const Settings& s, const std::string& placement) {
  std::printf("\nLatency [%s]: %.0f msgs/s offered (all publishers together), %.3g s per run; "
              "subscriber-observed, ns; median of the runs in this placement (p50, p99: min..max)\n",
              placement.c_str(), s.rate, s.seconds);
  std::printf("%-8s %-9s %-10s %-4s %-18s %-22s %8s %9s %8s %9s %5s %6s %6s\n", "peer", "delivery", "publishers",
              "runs", "p50", "p99", "p99.9", "max", "p50 vs 1", "samples", "lost", "order", "floor");
  for (const Row& row : rows) {
    if (row.load != Load::kLatency) continue;
    if (!row.skipped.empty()) {
      std::printf("%-8s %-9s %-10s skipped: %s\n", row.peer.c_str(), delivery_name(row.lossless).c_str(),
                  row_label(row).c_str(), row.skipped.c_str());
      continue;
    }
    const Summary m = summarize(row, placement);
    if (m.measured == 0 && m.errors == 0) continue;
    char p50[48], p99[48];
    std::snprintf(p50, sizeof p50, "%llu (%llu..%llu)", static_cast<unsigned long long>(m.p50),
                  static_cast<unsigned long long>(m.p50_min), static_cast<unsigned long long>(m.p50_max));
    std::snprintf(p99, sizeof p99, "%llu (%llu..%llu)", static_cast<unsigned long long>(m.p99),
                  static_cast<unsigned long long>(m.p99_min), static_cast<unsigned long long>(m.p99_max));
    std::printf("%-8s %-9s %-10s %-4d %-18s %-22s %8llu %9llu %8s %9llu %5llu %6llu %6llu%s%s\n",
                row.peer.c_str(), delivery_name(row.lossless).c_str(), row_label(row).c_str(), m.measured, p50,
                p99, static_cast<unsigned long long>(m.p999), static_cast<unsigned long long>(m.max),
                ratio_text(ratio_to_one(rows, row, placement)).c_str(), static_cast<unsigned long long>(m.samples),
                static_cast<unsigned long long>(m.lost),
                static_cast<unsigned long long>(m.out_of_order + m.topic_order_violations),
                static_cast<unsigned long long>(m.floor_ns), m.errors ? "  ERROR: " : "", m.error.c_str());
  }
}

// The placements the runs were taken in, in a fixed order.
std::vector<std::string> placements_of(const std::vector<Row>& rows) {
  std::vector<std::string> found;
  for (const char* p : {"near", "far", "same-core", "mixed", "unknown"}) {
    for (const Row& row : rows) {
      if (std::any_of(row.runs.begin(), row.runs.end(), [&](const Outcome& o) { return o.placement == p; })) {
        found.push_back(p);
        break;
      }
    }
  }
  return found;
}

struct HistoryFigures {
  bool ran = false;
  std::uint64_t floor_before = 0, floor_after = 0;
  std::string placement;
  HistoryOutcome outcome;
  std::int64_t join_median = 0, join_min = 0, join_max = 0, open_median = 0;
  double msgs_per_s = 0;
};

HistoryFigures history_figures(const Settings& s, HistoryOutcome outcome) {
  HistoryFigures f;
  f.ran = true;
  f.outcome = std::move(outcome);
  if (!f.outcome.join_ns.empty()) {
    f.join_median = median(f.outcome.join_ns);
    f.join_min = *std::min_element(f.outcome.join_ns.begin(), f.outcome.join_ns.end());
    f.join_max = *std::max_element(f.outcome.join_ns.begin(), f.outcome.join_ns.end());
    f.open_median = median(f.outcome.open_ns);
    if (f.join_median > 0) f.msgs_per_s = static_cast<double>(s.history) / (static_cast<double>(f.join_median) / 1e9);
  }
  return f;
}

void print_history(const HistoryFigures& f, const Settings& s) {
  std::printf("\nHistory: topic with history = %llu (ring %llu bytes), %llu messages published, then a late "
              "subscriber process opens with TopicStart::history(%llu); %d repetition(s); publisher on cpu %d, "
              "subscriber on cpu %d [%s: floor %llu ns before, %llu after]\n",
              static_cast<unsigned long long>(s.history), static_cast<unsigned long long>(f.outcome.capacity),
              static_cast<unsigned long long>(s.history), static_cast<unsigned long long>(s.history),
              s.history_repetitions, s.publisher_cpus[0], s.subscriber_cpu, f.placement.c_str(),
              static_cast<unsigned long long>(f.floor_before), static_cast<unsigned long long>(f.floor_after));
  std::printf("  open() until the %llu-th message: median %.3f ms (min %.3f, max %.3f); open() alone median "
              "%.3f ms; %.0f msgs/s; history_missed %llu, out of order %llu%s%s\n",
              static_cast<unsigned long long>(s.history), static_cast<double>(f.join_median) / 1e6,
              static_cast<double>(f.join_min) / 1e6, static_cast<double>(f.join_max) / 1e6,
              static_cast<double>(f.open_median) / 1e6, f.msgs_per_s,
              static_cast<unsigned long long>(f.outcome.history_missed),
              static_cast<unsigned long long>(f.outcome.out_of_order), f.outcome.ok ? "" : "  ERROR: ",
              f.outcome.error.c_str());
}

void write_json(const std::string& path, const Settings& s, const std::vector<Row>& rows, const HistoryFigures& h,
                const std::string& date, const std::string& load_before, const std::string& load_after,
                std::uint64_t floor_ns, const std::string& placement_at_start, const std::string& iceoryx_reason) {
  std::FILE* out = std::fopen(path.c_str(), "w");
  if (out == nullptr) {
    std::fprintf(stderr, "cannot write %s\n", path.c_str());
    return;
  }
  std::fprintf(out,
               "{\"benchmark\":\"shmring_publishers_bench\",\"date\":\"%s\",\"size\":%zu,\"seconds\":%.3f,"
               "\"rate\":%.0f,\"repetitions\":%d,\"publisher_cpus\":\"%s\",\"subscriber_cpu\":%d,"
               "\"placement_at_start\":\"%s\",\"floor_probe_ns\":%llu,\"load_average_before\":\"%s\","
               "\"load_average_after\":\"%s\",\"iceoryx_available\":%s,\"iceoryx_reason\":\"%s\",\"rows\":[",
               date.c_str(), s.size, s.seconds, s.rate, s.repetitions, cpus_text(s.publisher_cpus).c_str(),
               s.subscriber_cpu, json_escape(placement_at_start).c_str(), static_cast<unsigned long long>(floor_ns),
               load_before.c_str(), load_after.c_str(), iceoryx_reason.empty() ? "true" : "false",
               json_escape(iceoryx_reason).c_str());
  // One entry per row and placement (a skipped row: one, placement "none").
  std::vector<std::pair<const Row*, std::string>> entries;
  const std::vector<std::string> placements = placements_of(rows);
  for (const Row& row : rows) {
    if (!row.skipped.empty()) entries.emplace_back(&row, "none");
    for (const std::string& placement : placements) {
      if (!runs_in(row, placement).empty()) entries.emplace_back(&row, placement);
    }
  }
  bool first = true;
  for (const auto& [row_pointer, placement] : entries) {
    const Row& row = *row_pointer;
    const Summary m = summarize(row, placement == "none" ? "" : placement);
    std::fprintf(out,
                 "%s\n{\"placement\":\"%s\",\"floor_ns\":%llu,\"section\":\"%s\",\"peer\":\"%s\",\"delivery\":\"%s\",\"publishers\":%d,"
                 "\"max_publishers\":%d,\"skipped\":%s,\"reason\":\"%s\",\"repetitions\":%zu,\"measured\":%d,"
                 "\"msgs_per_s\":%.0f,\"msgs_per_s_min\":%.0f,\"msgs_per_s_max\":%.0f,\"published_per_s\":%.0f,"
                 "\"ratio_to_1_publisher\":%.3f,\"p50_ns\":%llu,\"p50_ns_min\":%llu,\"p50_ns_max\":%llu,"
                 "\"p99_ns\":%llu,\"p99_ns_min\":%llu,\"p99_ns_max\":%llu,\"p999_ns\":%llu,\"max_ns\":%llu,"
                 "\"samples\":%llu,\"published\":%llu,\"received\":%llu,\"lost\":%llu,\"gaps\":%llu,"
                 "\"out_of_order\":%llu,\"topic_order_violations\":%llu,",
                 first ? "" : ",", placement.c_str(), static_cast<unsigned long long>(m.floor_ns),
                 load_name(row.load).c_str(), row.peer.c_str(), delivery_name(row.lossless).c_str(),
                 row.publishers, row.max_publishers, row.skipped.empty() ? "false" : "true",
                 json_escape(row.skipped).c_str(), runs_in(row, placement == "none" ? "" : placement).size(), m.measured, m.rate, m.rate_min, m.rate_max,
                 m.published_rate, ratio_to_one(rows, row, placement), static_cast<unsigned long long>(m.p50),
                 static_cast<unsigned long long>(m.p50_min), static_cast<unsigned long long>(m.p50_max),
                 static_cast<unsigned long long>(m.p99), static_cast<unsigned long long>(m.p99_min),
                 static_cast<unsigned long long>(m.p99_max), static_cast<unsigned long long>(m.p999),
                 static_cast<unsigned long long>(m.max), static_cast<unsigned long long>(m.samples),
                 static_cast<unsigned long long>(m.published), static_cast<unsigned long long>(m.received),
                 static_cast<unsigned long long>(m.lost), static_cast<unsigned long long>(m.gaps),
                 static_cast<unsigned long long>(m.out_of_order),
                 static_cast<unsigned long long>(m.topic_order_violations));
    if (m.counts_losses) {
      std::fprintf(out, "\"lost_counted\":%llu,", static_cast<unsigned long long>(m.lost_counted));
    } else {
      std::fprintf(out, "\"lost_counted\":null,");
    }
    std::fprintf(out, "\"errors\":%d,\"error\":\"%s\"}", m.errors, json_escape(m.error).c_str());
    first = false;
  }
  std::fprintf(out, "\n]");
  if (h.ran) {
    std::fprintf(out, ",\n\"history\":{\"placement\":\"%s\",\"floor_ns\":%llu,\"messages\":%llu,\"size\":%zu,"
                      "\"capacity\":%llu,\"repetitions\":%zu,"
                      "\"join_ns\":%lld,\"join_ns_min\":%lld,\"join_ns_max\":%lld,\"open_ns\":%lld,"
                      "\"msgs_per_s\":%.0f,\"history_missed\":%llu,\"out_of_order\":%llu,\"short\":%llu,"
                      "\"errors\":%d,\"error\":\"%s\",\"join_ns_each\":[",
                 h.placement.c_str(), static_cast<unsigned long long>(h.floor_before),
                 static_cast<unsigned long long>(s.history), s.size,
                 static_cast<unsigned long long>(h.outcome.capacity), h.outcome.join_ns.size(),
                 static_cast<long long>(h.join_median), static_cast<long long>(h.join_min),
                 static_cast<long long>(h.join_max), static_cast<long long>(h.open_median), h.msgs_per_s,
                 static_cast<unsigned long long>(h.outcome.history_missed),
                 static_cast<unsigned long long>(h.outcome.out_of_order),
                 static_cast<unsigned long long>(h.outcome.short_count), h.outcome.ok ? 0 : 1,
                 json_escape(h.outcome.error).c_str());
    for (std::size_t i = 0; i < h.outcome.join_ns.size(); ++i) {
      std::fprintf(out, "%s%lld", i ? "," : "", static_cast<long long>(h.outcome.join_ns[i]));
    }
    std::fprintf(out, "]}");
  }
  std::fprintf(out, "}\n");
  std::fclose(out);
}

// A row is a failure when a repetition reported an error, or any order counter is not 0.
bool row_failed(const Row& row) {
  if (!row.skipped.empty()) return false;
  const Summary m = summarize(row, "");
  return m.errors > 0 || m.out_of_order > 0 || m.topic_order_violations > 0 || (row.lossless && m.lost > 0);
}

bool same_core(const Settings& s) {
  return s.publisher_cpus.size() == 1 && s.publisher_cpus[0] == s.subscriber_cpu;
}

// The cache-line floor between the first publisher's core and the subscriber's (not when they
// share one: two spinning processes on one core would take their time slices to bounce a line).
std::uint64_t probe(const Settings& s) {
  return same_core(s) ? 0 : probe_floor_ns({s.publisher_cpus[0], s.subscriber_cpu});
}

std::string placement_name(std::uint64_t floor_ns) {
  return floor_ns == 0 ? "unknown" : floor_ns < 300 ? "near" : "far";
}

std::string placement_of(const Settings& s, std::uint64_t before, std::uint64_t after) {
  if (same_core(s)) return "same-core";
  const std::string a = placement_name(before), b = placement_name(after);
  return a == b ? a : "mixed";
}

int run(const Settings& s) {
  const std::string date = utc_now();
  const std::string load_before = read_loadavg();
  std::uint64_t floor_ns = probe(s);
  std::string at_start;
  if (same_core(s)) {
    at_start = "publishers and subscriber share cpu " + std::to_string(s.subscriber_cpu);
  } else {
    at_start = "publishers on cpu " + cpus_text(s.publisher_cpus) + ", subscriber on cpu " +
                std::to_string(s.subscriber_cpu) + " (at start " + placement_name(floor_ns) + ": cache-line floor " +
                std::to_string(floor_ns) + " ns; probed again around every run, figures grouped by placement: " +
                "near < 300 ns <= far)";
  }
  std::printf("shmring_publishers_bench %s: %zu B messages; %s; load average %s\n", date.c_str(), s.size,
              at_start.c_str(), load_before.c_str());
  std::fflush(stdout);

  std::vector<Row> rows = plan(s);
  std::string iceoryx_reason;
  std::unique_ptr<PeerUnderTest> shmring = make_shmring_peer();
  std::unique_ptr<PeerUnderTest> iceoryx;
  if (wants(s, "iceoryx")) {
    iceoryx = make_iceoryx_peer(&iceoryx_reason);
    if (!iceoryx) std::printf("iceoryx was not available: %s\n", iceoryx_reason.c_str());
  } else {
    iceoryx_reason = "not asked for (--sections)";
  }
  int run_number = 0;
  for (int rep = 0; rep < s.repetitions; ++rep) {
    for (Row& row : rows) {
      PeerUnderTest* peer = row.peer == "shmring" ? shmring.get() : iceoryx.get();
      if (peer == nullptr) {
        row.skipped = iceoryx_reason;
        continue;
      }
      if (!row.skipped.empty()) continue;
      RunSpec spec;
      spec.peer = row.peer;
      spec.name = "pubbench_" + std::to_string(getpid()) + "_" + std::to_string(run_number++);
      spec.publishers = row.publishers;
      spec.max_publishers = row.max_publishers;
      spec.lossless = row.lossless;
      spec.load = row.load;
      spec.rate = s.rate;
      spec.size = s.size;
      spec.seconds = s.seconds;
      spec.publisher_cpus = s.publisher_cpus;
      spec.subscriber_cpu = s.subscriber_cpu;
      const std::uint64_t before = probe(s);
      Outcome outcome = run_processes(*peer, spec);
      const std::uint64_t after = probe(s);
      outcome.floor_ns = before;
      outcome.placement = placement_of(s, before, after);
      // A peer that cannot start here (another RouDi runs) is skipped, not failed.
      if (outcome.skipped) {
        row.skipped = outcome.error;
        if (row.peer == "iceoryx") iceoryx_reason = outcome.error;
        continue;
      }
      row.runs.push_back(std::move(outcome));
    }
  }
  for (const std::string& placement : placements_of(rows)) {
    if (wants(s, "throughput") || wants(s, "iceoryx")) print_throughput(rows, s, placement);
    if (wants(s, "latency") || wants(s, "iceoryx")) print_latency(rows, s, placement);
  }
  HistoryFigures history;
  if (wants(s, "history")) {
    HistorySpec spec;
    spec.name = "pubbench_" + std::to_string(getpid()) + "_history";
    spec.messages = s.history;
    spec.size = s.size;
    spec.repetitions = s.history_repetitions;
    spec.publisher_cpu = s.publisher_cpus[0];
    spec.subscriber_cpu = s.subscriber_cpu;
    const std::uint64_t before = probe(s);
    history = history_figures(s, measure_history(spec));
    history.floor_before = before;
    history.floor_after = probe(s);
    history.placement = placement_of(s, before, history.floor_after);
    print_history(history, s);
  }
  const std::string load_after = read_loadavg();
  std::printf("\nload average after: %s\n", load_after.c_str());
  if (!s.json.empty()) {
    write_json(s.json, s, rows, history, date, load_before, load_after, floor_ns, at_start, iceoryx_reason);
  }
  bool failed = std::any_of(rows.begin(), rows.end(), row_failed);
  if (history.ran && (!history.outcome.ok || history.outcome.history_missed > 0 || history.outcome.out_of_order > 0)) {
    failed = true;
  }
  return failed ? 1 : 0;
}

}  // namespace
}  // namespace shmring::bench::publishers

int main(int argc, char** argv) {
  shmring::bench::publishers::Settings settings;
  std::string why;
  if (!shmring::bench::publishers::parse(argc, argv, &settings, &why)) {
    return shmring::bench::publishers::usage(why.c_str());
  }
  return shmring::bench::publishers::run(settings);
}
