// `shmring bench`: the cross-process benchmark (bench/ipc/harness.h).
#include <unistd.h>

#include <cstdio>
#include <sstream>
#include <set>
#include <string>

#include "commands.h"
#include "options.h"
#include "harness.h"
#ifdef SHMRING_HAVE_BRIDGE_BENCH
#include "bridge_bench.h"
#endif

namespace shmring::cli {
namespace {

bool parse_cpus(const std::string& text, std::vector<int>* cpus) {
  cpus->clear();
  std::stringstream stream(text);
  std::string item;
  while (std::getline(stream, item, ',')) {
    char* end = nullptr;
    const long cpu = std::strtol(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || cpu < 0) return false;
    cpus->push_back(static_cast<int>(cpu));
  }
  return cpus->size() == 2;
}

struct BenchOptions {
  bench::BenchConfig config;
  std::uint64_t size = 64;
  std::int64_t count = 200000;
  std::int64_t subscribers = 1;
  std::int64_t clients = 1;
  std::int64_t servers = 1;
  std::int64_t depth = 16;
  std::int64_t repetitions = 3;
  std::int64_t rate = 0;
  std::string wait = "spin";
  std::vector<int> cpus = {0, 1};
  bool size_given = false;
  bool count_given = false;
};

int run_bench(BenchOptions& o) {
  bench::BenchConfig& config = o.config;
  config.size = static_cast<std::size_t>(o.size);
  config.count = static_cast<std::uint64_t>(o.count);
  config.subscribers = static_cast<int>(o.subscribers);
  config.clients = static_cast<int>(o.clients);
  config.servers = static_cast<int>(o.servers);
  config.depth = static_cast<int>(o.depth);
  config.repetitions = static_cast<int>(o.repetitions);
  config.rate = static_cast<double>(o.rate);
  config.cpus = o.cpus;
  if (config.mode.rfind("bridge-", 0) == 0) {
#ifdef SHMRING_HAVE_BRIDGE_BENCH
    bench::BridgeBenchConfig bridge;
    bridge.latency = config.mode == "bridge-latency";
    if (o.size_given) bridge.sizes = {config.size};
    if (o.count_given) bridge.count = config.count;
    bridge.rate = config.rate;
    bridge.repetitions = config.repetitions;
    bridge.json = config.json;
    if (config.mode == "bridge-stall") return bench::run_bridge_stall_benchmark(bridge, stdout);
    return bench::run_bridge_benchmark(bridge, stdout);
#else
    return report_error("bench", "this shmring was built without the bridge (libzmq3-dev)", 1);
#endif
  }
  if (o.wait == "spin") {
    config.wait = bench::WaitMode::kSpin;
  } else if (o.wait == "hybrid") {
    config.wait = bench::WaitMode::kHybrid;
  } else if (o.wait == "park") {
    config.wait = bench::WaitMode::kPark;
  } else {
    config.wait = bench::WaitMode::kDescriptor;
  }
  const long online = sysconf(_SC_NPROCESSORS_ONLN);
  for (int cpu : config.cpus) {
    if (cpu >= online) {
      return report_error("bench", "core " + std::to_string(cpu) + " does not exist (this machine has " +
                                       std::to_string(online) + ")", 2);
    }
  }
  if (config.subscribers == 0 && config.mode != "wake-cost") {
    return report_error("bench", "--subscribers 0 is only for --mode wake-cost (the others need a receiver)", 2);
  }
  return bench::run_benchmark(config, stdout);
}

}  // namespace

Verb add_bench(CLI::App& root) {
  auto o = std::make_shared<BenchOptions>();
  bench::BenchConfig& config = o->config;
  CLI::App* app = root.add_subcommand("bench", "cross-process benchmark against the physical floor and other IPC");
  set_long_description(app,
      "Runs a writer and a reader as two processes pinned to two cores and reports latency\n"
      "percentiles (p50/p99/p99.9/max) or throughput, next to the physical floor (one cache line\n"
      "bounced between the two cores) probed right before and after the run.");
  app->footer(
      "Modes: wake: round trips to a receiver that sleeps (200 us idle before each); wake-cost: a\n"
      "publisher's rate into a topic whose --subscribers N (0..) sleep in epoll on their wait_fd.\n"
      "calls: request/response transports (shmring-service(-zc), zmq-rr, grpc): --clients N client\n"
      "processes on the first core call --servers M competing server processes on the second, each\n"
      "client keeping --depth D calls in flight; calls answered per second. pingpong and wake also\n"
      "take the request/response transports (side A is the client, B the server; iceoryx-rr too).\n"
      "bridge-latency / bridge-throughput: host A -> host B through a veth pair between two network\n"
      "namespaces (made and removed by the run; root; loopback otherwise), the bridge (publisher,\n"
      "export, import, subscriber) next to raw ZeroMQ PUB/SUB, at 64 B, 4 KiB and 1 MiB unless\n"
      "--size is given; --count and --rate (latency) default per size; --transport and --cpus do\n"
      "not apply (unpinned). bridge-stall: a lossless topic (4 KiB at 5000/s for 16 s) whose\n"
      "subscriber stops reading for 8 s, then one with a peer that never gives credit (evicted\n"
      "after 2 s): lost, publisher held back, bridge heap, the subscriber's rate, --reps times.\n"
      "Transports not built here are reported as skipped.");
  add_choice(*app, "--transport", &config.transport, bench::known_transports(),
             "what to measure (default shmring-spsc; -zc: loan/view in place; frames: zero-copy)");
  add_choice(*app, "--mode", &config.mode,
              {"pingpong", "throughput", "wake", "wake-cost", "fanout", "pipeline", "frames", "calls",
               "bridge-latency", "bridge-throughput", "bridge-stall"},
             "what to run (default pingpong)");
  CLI::Option* size = add_size(*app, "--size", &o->size, 1, std::uint64_t{1} << 30, "message size (default 64)");
  CLI::Option* count = add_integer(*app, "--count", &o->count, 1, std::int64_t{1} << 40,
                                   "messages or round trips per repetition (default 200000)");
  add_choice(*app, "--wait", &o->wait, {"spin", "hybrid", "park", "fd"},
             "spin (default), hybrid, park or fd (shmring channels: try_ calls, then epoll on wait_fd)");
  app->add_option_function<std::string>(
         "--cpus", [o](const std::string& text) { parse_cpus(text, &o->cpus); },
         "the two cores (default 0,1)")
      ->check(CLI::Validator(
          [](std::string& text) {
            std::vector<int> cpus;
            return parse_cpus(text, &cpus) ? std::string() : "needs two core numbers such as 0,1, not '" + text + "'";
          },
          ""))
      ->type_name("A,B");
  add_integer(*app, "--rate", &o->rate, 0, 1'000'000'000,
              "open loop: R messages per second, latency from the scheduled send time");
  add_integer(*app, "--subscribers", &o->subscribers, 0, 64,
              "fan-out width (fanout mode), sleeping subscribers (wake-cost); default 1");
  add_integer(*app, "--clients", &o->clients, 1, 4, "calls mode: client processes (default 1)");
  add_integer(*app, "--servers", &o->servers, 1, 4, "calls mode: competing server processes (default 1)");
  add_integer(*app, "--depth", &o->depth, 1, 64, "calls mode: calls each client keeps in flight (default 16)");
  add_integer(*app, "--reps", &o->repetitions, 1, 1000, "repetitions; medians are reported with min..max (default 3)");
  app->add_flag("--json", config.json, "one JSON object per run on one line");
  return {app, [o, size, count] {
            o->size_given = size->count() > 0;
            o->count_given = count->count() > 0;
            return run_bench(*o);
          }};
}

}  // namespace shmring::cli
