// Entry points of the cross-process benchmark (what `shmring bench` runs).
#pragma once

#include <cstdint>
#include <cstdio>
#include <vector>

#include "ipc_transport.h"

namespace shmring::bench {

// Runs `config.repetitions` measurements of one transport/mode/size and prints one result (a JSON
// object on one line with config.json, else a line of text) to `out`, with the floor probed just
// before and just after. A transport that is not available is printed as skipped. Returns 0, or 1
// if any repetition reported errors.
int run_benchmark(const BenchConfig& config, std::FILE* out);

// Median round trip of one cache line bounced between two processes pinned to cpus[0], cpus[1].
std::uint64_t probe_floor_ns(const std::vector<int>& cpus);

}  // namespace shmring::bench
