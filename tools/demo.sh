#!/usr/bin/env bash
# The README's first command: builds shmring and runs the live fan-out demo: one publisher and three
# subscriber processes (one deliberately slow) on a topic, for about 10 seconds, printing one line
# per second with messages/s, latency p50/p99/p99.9 and messages lost per subscriber, then a summary.
# How the processes wait suits the cores there are (busy-spin with a core each, futex parking when
# processes outnumber cores); the demo says what it chose and why (transport/examples/fanout.cc).
# Usage: tools/demo.sh [--seconds N] [--rate MSGS_PER_S] [--wait auto|spin|hybrid|park|fd]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
tools/install_deps.sh
launcher=()
command -v ccache > /dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
echo "building (first time: a few minutes)..."
cmake -S . -B build/plain -DCMAKE_BUILD_TYPE=RelWithDebInfo "${launcher[@]}" > /dev/null
cmake --build build/plain -j "$(nproc)" --target shmring_example_fanout shmring_cli > /dev/null
seconds=10
args=()
while [ $# -gt 0 ]; do
  case $1 in
    --seconds) seconds=$2; shift ;;
    *) args+=("$1") ;;
  esac
  shift
done
build/plain/transport/shmring_example_fanout --seconds "$seconds" "${args[@]}"
echo
echo "channels left on the machine (should be none):"
build/plain/tools/shmring ls | grep -c "demo.fanout" || true
