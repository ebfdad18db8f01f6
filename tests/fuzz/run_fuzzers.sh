#!/bin/sh
# Builds the libFuzzer targets with clang, ASan and UBSan in their own build directory and runs
# each for the given number of seconds (default 30): the ring headers and records, the frame pool
# (header_fuzzer), the segment header (segment_fuzzer), a live channel's control block, peer
# slots and ring (channel_fuzzer), and a live service's region (service_fuzzer).
# Usage: tests/fuzz/run_fuzzers.sh [seconds]; the test command
# runs 20 s each, a long run is e.g. `tests/fuzz/run_fuzzers.sh 600` (docs/reliability.md).
set -eu
seconds=${1:-30}
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${SHMRING_FUZZ_BUILD_DIR:-$root/build-fuzz}
jobs=${SHMRING_FUZZ_JOBS:-2}
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_CXX_FLAGS=-fsanitize=fuzzer-no-link \
  -DSHMRING_SANITIZE='address;undefined' -DSHMRING_LIBFUZZER=ON \
  -DSHMRING_BUILD_TOOLS=OFF -DSHMRING_BUILD_BENCHMARKS=OFF >/dev/null
cmake --build "$build" -j"$jobs" --target header_fuzzer record_fuzzer segment_fuzzer channel_fuzzer mcap_fuzzer service_fuzzer
for target in header_fuzzer record_fuzzer segment_fuzzer channel_fuzzer mcap_fuzzer service_fuzzer; do
  corpus="$build/corpus/$target"
  mkdir -p "$corpus"
  seeds="$root/tests/fuzz/corpus/$target"
  [ -d "$seeds" ] || seeds=""
  echo "== $target: ${seconds}s"
  "$build/tests/fuzz/$target" -max_total_time="$seconds" -print_final_stats=1 \
    -artifact_prefix="$build/$target-" \
    -max_len=4096 "$corpus" $seeds
done
