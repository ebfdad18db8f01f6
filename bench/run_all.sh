#!/usr/bin/env bash
# Runs the standard cross-process benchmark matrix with `shmring bench`, writes results.jsonl (one
# JSON object per run) and regenerates the cross-process section of docs/benchmarks.md with tables
# and PNG plots (bench/report.py, gnuplot). Usage: bench/run_all.sh [--quick] [--cpus A,B]
# Takes about 10 minutes on 2 cores, the bridge included (--quick: about 2 minutes, fewer sizes and messages), then
# keeps probing the placement of the two vCPUs (near: one cache line round trip < 300 ns; far: the
# hypervisor put them further apart) for up to SHMRING_PLACEMENT_BUDGET seconds (default 600) and
# re-runs the 64 B rows in the placement it has not seen yet, so both are reported. Also counts the
# system calls per message (tests/transport/syscall_count_test.sh) into syscalls.txt.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
quick=0
cpus=0,1
while [ $# -gt 0 ]; do
  case $1 in
    --quick) quick=1 ;;
    --cpus) cpus=$2; shift ;;
    *) echo "usage: bench/run_all.sh [--quick] [--cpus A,B]" >&2; exit 2 ;;
  esac
  shift
done

tools/install_deps.sh
launcher=()
command -v ccache > /dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S . -B build/plain -DCMAKE_BUILD_TYPE=RelWithDebInfo "${launcher[@]}" > /dev/null
cmake --build build/plain -j "$(nproc)" --target shmring_cli syscall_driver > /dev/null
shmring=build/plain/tools/shmring
out=${SHMRING_RESULTS:-results.jsonl}
doc=${SHMRING_BENCH_DOC:-docs/benchmarks.md}
: > "$out"

# Messages per repetition, scaled so each run takes about a second even for slow peers.
count_for() {  # transport mode size
  local base
  case $2 in
    pingpong|wake) base=100000 ;;
    throughput) base=$((2000000 / ($3 / 64 + 1))) ;;
  esac
  case $1 in
    zmq) base=$((base / 20)) ;;
    pipe|uds|boost-mq|iceoryx) base=$((base / 4)) ;;
  esac
  [ "$2" = wake ] && base=2000
  [ $quick -eq 1 ] && base=$((base / 5))
  [ "$base" -lt 200 ] && base=200
  # Large messages: enough of them that the ring's pages are touched once and then reused (a few
  # hundred 1 MiB messages measured mostly first-touch page faults of a fresh ring).
  if [ "$2" = throughput ] && [ "$3" -ge 65536 ] && [ "$base" -lt 2000 ]; then
    case $1 in shmring-*|floor) base=2000 ;; esac
  fi
  echo "$base"
}

run() {  # transport mode size wait
  local count
  count=$(count_for "$1" "$2" "$3")
  echo "  $1 $2 $3 B $4 (count $count)" >&2
  "$shmring" bench --json --cpus "$cpus" --transport "$1" --mode "$2" --size "$3" --wait "$4" \
    --count "$count" --reps 3 >> "$out" || echo "    (reported errors)" >&2
}

transports="floor shmring-spsc shmring-topic shmring-topic-zc shmring-queue shmring-queue-zc"
transports="$transports shmring-frames-copy shmring-frames pipe uds boost-mq zmq iceoryx"
ours_64="floor shmring-spsc shmring-topic shmring-topic-zc shmring-queue shmring-queue-zc"
ours_64="$ours_64 shmring-frames-copy shmring-frames"
latency_sizes="64 1024 4096"
throughput_sizes="64 1024 4096 65536 1048576 4194304"
if [ $quick -eq 1 ]; then
  latency_sizes="64"
  throughput_sizes="64 4096 1048576"
fi

start=$SECONDS
echo "latency (pingpong, busy-wait):" >&2
for size in $latency_sizes; do
  for t in $transports; do run "$t" pingpong "$size" spin; done
done
echo "throughput (one way):" >&2
for size in $throughput_sizes; do
  for t in $transports; do run "$t" throughput "$size" spin; done
done
echo "wake-up of a parked receiver:" >&2
for t in shmring-spsc shmring-topic shmring-queue pipe uds boost-mq; do run "$t" wake 64 park; done
# Through the pollable descriptor (epoll on wait_fd), same run.
for t in shmring-topic shmring-queue; do run "$t" wake 64 fd; done
echo "what armed descriptors cost a publisher (0, 1, 8 subscribers asleep in epoll):" >&2
for n in 0 1 8; do
  "$shmring" bench --json --cpus "$cpus" --transport shmring-topic --mode wake-cost --wait fd \
    --subscribers "$n" --count "$([ $quick -eq 1 ] && echo 200000 || echo 1000000)" >> "$out" || true
done
echo "fan-out, pipeline, frames:" >&2
for n in 1 2 4; do
  "$shmring" bench --json --cpus "$cpus" --transport shmring-topic --mode fanout --subscribers "$n" \
    --wait hybrid --count "$(count_for shmring-topic throughput 64)" >> "$out" || true
done
"$shmring" bench --json --cpus "$cpus" --transport shmring-queue --mode pipeline --wait hybrid \
  --count "$(count_for shmring-queue throughput 64)" >> "$out" || true
"$shmring" bench --json --cpus "$cpus" --transport shmring-frames --mode frames --size 4194304 \
  --count "$([ $quick -eq 1 ] && echo 40000 || echo 200000)" >> "$out" || true
echo "matrix done in $((SECONDS - start)) s; $(wc -l < "$out") results in $out" >&2

# Both placements: probe until the one not seen yet shows up (or the budget ends), then re-run the
# 64 B rows of shmring's transports there.
placement_of() { sed -n 's/.*"placement":"\([a-z]*\)".*/\1/p' | tail -1; }
# (Placements seen by shmring's own 64 B round trips: a peer's row in another placement does not count.)
seen=$(grep '"transport":"shmring-topic","mode":"pingpong","size":64,' "$out" |
       sed -n 's/.*"placement":"\([a-z]*\)".*/\1/p' | sort -u | tr '\n' ' ')
budget=${SHMRING_PLACEMENT_BUDGET:-600}
[ $quick -eq 1 ] && budget=${SHMRING_PLACEMENT_BUDGET:-60}
deadline=$((SECONDS + budget))
while [ "$(echo "$seen" | wc -w)" -lt 2 ] && [ $SECONDS -lt $deadline ]; do
  now=$("$shmring" bench --json --cpus "$cpus" --transport floor --mode pingpong --count 20000 \
        --reps 1 | placement_of)
  if [ -n "$now" ] && ! echo "$seen" | grep -qw "$now"; then
    echo "placement now $now (seen so far: $seen): 64 B rows again" >&2
    for t in $ours_64; do run "$t" pingpong 64 spin; run "$t" throughput 64 spin; done
    seen="$seen $now"
  else
    sleep 15
  fi
done
echo "placements measured: $seen$([ "$(echo "$seen" | wc -w)" -lt 2 ] && echo " (the other one did not show up within ${budget} s)")" >&2

echo "the bridge, host A -> host B (two network namespaces; loopback if they cannot be made):" >&2
for mode in bridge-latency bridge-throughput; do
  "$shmring" bench --json --mode "$mode" --reps "$([ $quick -eq 1 ] && echo 1 || echo 3)" >> "$out" || true
done
"$shmring" bench --json --mode bridge-stall --reps 1 >> "$out" || true  # 35 s: one of each scenario

echo "system calls per message:" >&2
tests/transport/syscall_count_test.sh build/plain/tests/transport/syscall_driver \
  > "$(dirname "$out")/syscalls.txt" 2>&1 || echo "    (the count failed: see syscalls.txt)" >&2
cat "$(dirname "$out")/syscalls.txt" >&2

readme=${SHMRING_README:-README.md}
python3 bench/report.py "$out" "$doc" "$(dirname "$doc")/img" "$readme"
echo "$doc regenerated" >&2
