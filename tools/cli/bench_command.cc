// `shmring bench`: the cross-process benchmark (bench/ipc/harness.h).
#include <unistd.h>

#include <cstdio>
#include <sstream>
#include <set>
#include <string>

#include "args.h"
#include "commands.h"
#include "harness.h"
#ifdef SHMRING_HAVE_BRIDGE_BENCH
#include "bridge_bench.h"
#endif

namespace shmring::cli {
namespace {

constexpr const char* kBenchHelp =
    "usage: shmring bench [options]\n"
    "Runs a writer and a reader as two processes pinned to two cores and reports latency\n"
    "percentiles (p50/p99/p99.9/max) or throughput, next to the physical floor (one cache line\n"
    "bounced between the two cores) probed right before and after the run.\n"
    "  --transport NAME   floor, shmring-spsc, shmring-topic(-zc), shmring-queue(-zc),\n"
    "                     shmring-frames(-copy), pipe, uds, boost-mq, zmq, iceoryx;\n"
    "                     request/response: shmring-service(-zc), zmq-rr, grpc, iceoryx-rr\n"
    "                     (default shmring-spsc; -zc: loan/view in place, frames: zero-copy);\n"
    "                     names not built here are reported as skipped\n"
    "  --mode MODE        pingpong | throughput | wake | wake-cost | fanout | pipeline | frames |\n"
    "                     calls | bridge-latency | bridge-throughput\n"
    "                     (default pingpong). wake: round trips to a receiver that sleeps\n"
    "                     (200 us idle before each); wake-cost: a publisher's rate into a topic\n"
    "                     whose --subscribers N (0..) sleep in epoll on their wait_fd\n"
    "  --size BYTES       message size (default 64)\n"
    "  --count N          messages or round trips per repetition (default 200000)\n"
    "  --wait W           spin | hybrid | park | fd (default spin; fd: shmring channels, try_\n"
    "                     calls then epoll on wait_fd)\n"
    "  --cpus A,B         the two cores (default 0,1)\n"
    "  --rate R           open loop: R messages per second, latency from the scheduled send time\n"
    "  --subscribers N    fan-out width (fanout mode), sleeping subscribers (wake-cost)\n"
    "  --clients N --servers M --depth D\n"
    "                     calls mode: N client processes (first core) calling M competing server\n"
    "                     processes (second core), D calls in flight per client (default 1, 1, 16)\n"
    "  --reps N           repetitions; medians are reported with min..max (default 3)\n"
    "  --json             one JSON object per run on one line\n"
    "bridge-latency / bridge-throughput: host A -> host B through a veth pair between two network\n"
    "namespaces (made and removed by the run; root; loopback otherwise), the bridge (publisher,\n"
    "export, import, subscriber) next to raw ZeroMQ PUB/SUB, at 64 B, 4 KiB and 1 MiB unless\n"
    "--size is given; --count and --rate (latency) default per size; --transport and --cpus do\n"
    "not apply (unpinned).\n";

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

}  // namespace

int run_bench(const std::vector<std::string>& argv) {
  Args args(argv, {"json", "help"},
            {"transport", "mode", "size", "count", "wait", "cpus", "rate", "subscribers", "reps", "clients",
             "servers", "depth"});
  if (args.has("help")) return std::fputs(kBenchHelp, stdout), 0;
  bench::BenchConfig config;
  const std::vector<std::string> known = bench::known_transports();
  config.transport = args.choice("transport", config.transport,
                                 std::set<std::string>(known.begin(), known.end()));
  config.mode = args.choice("mode", config.mode,
                            {"pingpong", "throughput", "wake", "wake-cost", "fanout", "pipeline",
                             "frames", "calls", "bridge-latency", "bridge-throughput"});
  config.size = static_cast<std::size_t>(args.bytes("size", 64, 1, std::uint64_t{1} << 30));
  config.count = static_cast<std::uint64_t>(args.integer("count", 200000, 1, std::int64_t{1} << 40));
  config.subscribers = static_cast<int>(args.integer("subscribers", 1, 0, 64));
  config.clients = static_cast<int>(args.integer("clients", 1, 1, 4));
  config.servers = static_cast<int>(args.integer("servers", 1, 1, 4));
  config.depth = static_cast<int>(args.integer("depth", 16, 1, 64));
  config.repetitions = static_cast<int>(args.integer("reps", 3, 1, 1000));
  config.rate = static_cast<double>(args.integer("rate", 0, 0, 1'000'000'000));
  config.json = args.has("json");
  const std::string wait = args.choice("wait", "spin", {"spin", "hybrid", "park", "fd"});
  if (!args.ok()) return report_error("bench", args.error(), 2);
  if (config.mode.rfind("bridge-", 0) == 0) {
#ifdef SHMRING_HAVE_BRIDGE_BENCH
    bench::BridgeBenchConfig bridge;
    bridge.latency = config.mode == "bridge-latency";
    if (args.value("size")) bridge.sizes = {config.size};
    if (args.value("count")) bridge.count = config.count;
    bridge.rate = config.rate;
    bridge.repetitions = config.repetitions;
    bridge.json = config.json;
    return bench::run_bridge_benchmark(bridge, stdout);
#else
    return report_error("bench", "this shmring was built without the bridge (libzmq3-dev)", 1);
#endif
  }
  if (wait == "spin") {
    config.wait = bench::WaitMode::kSpin;
  } else if (wait == "hybrid") {
    config.wait = bench::WaitMode::kHybrid;
  } else if (wait == "park") {
    config.wait = bench::WaitMode::kPark;
  } else {
    config.wait = bench::WaitMode::kDescriptor;
  }
  if (!parse_cpus(args.value("cpus").value_or("0,1"), &config.cpus)) {
    return report_error("bench", "--cpus needs two core numbers, e.g. --cpus 0,1", 2);
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
  if (config.size == 0 || config.count == 0 || config.repetitions < 1) {
    return report_error("bench", "--size, --count and --reps must be positive", 2);
  }
  return bench::run_benchmark(config, stdout);
}

}  // namespace shmring::cli
