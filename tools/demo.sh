#!/usr/bin/env bash
# The README's first command: builds shmring and shows a message crossing between two processes
# through a shared-memory segment, with timings, then shows that nothing is left behind.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
tools/install_deps.sh
launcher=()
command -v ccache > /dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S . -B build/plain -DCMAKE_BUILD_TYPE=RelWithDebInfo "${launcher[@]}" > /dev/null
cmake --build build/plain -j "$(nproc)" --target shmring_segment_demo > /dev/null
demo=build/plain/tools/shmring_segment_demo
key="demo-$$"
"$demo" writer "$key" "Hello from process $$ through shared memory" &
writer=$!
"$demo" reader "$key"
wait "$writer"
left=$(ls /dev/shm | grep -c "^shmring_demo-$$" || true)
echo "segments left in /dev/shm for '$key': $left"
