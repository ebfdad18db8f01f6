// The bridge benchmark (`shmring bench --mode bridge-latency | bridge-throughput`): host A -> host B
// through a veth pair between two network namespaces (made and removed here; loopback when they
// cannot be made), shmring's bridge side by side with raw ZeroMQ PUB/SUB between the same two
// namespaces, in one run.
//
//  * bridge: a topic publisher and an export bridge on A, an import bridge and a subscriber on B
//    (four processes; the bridges are shmring::bridge::Bridge, as `shmring bridge` runs them);
//  * zmq: an XPUB socket on A, a SUB socket on B (two processes, each with ZeroMQ's I/O thread).
//
// Latency: open loop at a fixed rate, one-way (send stamp to receive, CLOCK_MONOTONIC is the same
// clock in every namespace), p50 / p99 / p99.9. Throughput: as fast as the sender can, lossless
// both (a lossless topic; XPUB with ZMQ_XPUB_NODROP and blocking sends), delivered messages per
// second at the receiver.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <vector>

namespace shmring::bench {

struct BridgeBenchConfig {
  bool latency = true;                // false: throughput
  std::vector<std::size_t> sizes;     // bytes per message (default 64, 4096, 1 MiB)
  std::uint64_t count = 0;            // messages per repetition (0: chosen per size)
  double rate = 0;                    // latency: messages per second (0: chosen per size)
  int repetitions = 3;
  bool json = false;
};

// Runs both transports for every size and prints one result per (transport, size), then the
// ratio bridge / zmq. Needs root for the namespaces. Returns 0, or 1 if a run failed.
int run_bridge_benchmark(const BridgeBenchConfig& config, std::FILE* out);

// `--mode bridge-stall` (bridge_stall_bench.cc): a lossless topic of 4 KiB messages at 5000/s for
// 16 s through the bridge, twice per repetition: (1) its subscriber on host B stops reading for
// 8 s; (2) a raw client also asks for the topic and never gives credit (the export evicts it
// after 2 s). Prints what was lost, how long the publisher was held back, the bridges' peak heap
// (RssAnon), the subscriber's rate and longest gap, when the bad peer was evicted, and the load
// average before and after.
int run_bridge_stall_benchmark(const BridgeBenchConfig& config, std::FILE* out);

}  // namespace shmring::bench
