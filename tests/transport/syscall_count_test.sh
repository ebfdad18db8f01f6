#!/usr/bin/env bash
# No system call per message: runs tests/transport/syscall_driver (a two-process ping-pong on the
# try_ calls) under `strace -f -c` for every pattern and API with a small and a large count of
# round trips, and fails when the larger run makes more than a handful of system calls more than the
# smaller one (a per-message call would add about 2 x 100 000). Prints the counts per run.
#   syscall_count_test.sh DRIVER [SMALL LARGE]
set -uo pipefail
# Counted in a /dev/shm of its own when it can be (root): an open sweeps a few stale-looking files
# on the side, so other tests' leftovers in a shared /dev/shm would make the two runs' setup costs
# differ by more than the bound below for reasons unrelated to messages.
if [ "$(id -u)" -eq 0 ] && [ -z "${SHMRING_SYSCALL_TEST_ISOLATED:-}" ] && command -v unshare > /dev/null; then
  export SHMRING_SYSCALL_TEST_ISOLATED=1
  exec unshare --mount --ipc --propagation private \
    bash -c 'mount -t tmpfs -o size=512m tmpfs /dev/shm && exec "$0" "$@"' "$0" "$@"
fi
driver=$1
small=${2:-2000}
large=${3:-102000}
# The bound for setup noise: a recovery on evidence of a stall (a peer descheduled in its claim for
# milliseconds on a loaded machine) costs a few dozen calls; a per-message call costs 200 000.
allowed=400
if ! command -v strace > /dev/null; then
  echo "strace is not installed (tools/install_deps.sh installs it)"; exit 1
fi
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
status=0
total_calls() {  # strace -c summary -> the "total" line's call count
  awk '$NF == "total" { print $(NF-2) ~ /^[0-9]+$/ ? $(NF-2) : $(NF-1) }' "$1" | tail -1
}
per_call() {  # the summary's rows: name=count
  awk 'NF >= 5 && $1 ~ /^[0-9.]+$/ && $NF != "total" { printf "%s=%s ", $NF, $4 }' "$1"
}
for pattern in topic queue frames service; do
  for api in copy zero; do
    for n in "$small" "$large"; do
      if ! strace -f -c -o "$scratch/$pattern-$api-$n" "$driver" "$pattern" "$api" "$n" \
           > "$scratch/out" 2>&1; then
        echo "FAILED: $pattern $api $n: $(cat "$scratch/out")"; status=1; continue 2
      fi
    done
    a=$(total_calls "$scratch/$pattern-$api-$small")
    b=$(total_calls "$scratch/$pattern-$api-$large")
    extra=$((b - a))
    messages=$((2 * (large - small)))
    printf '%-6s %-4s: %s calls for %s round trips, %s for %s: %s extra calls for %s more messages\n' \
      "$pattern" "$api" "$a" "$small" "$b" "$large" "$extra" "$messages"
    if [ "$extra" -gt "$allowed" ]; then
      echo "FAILED: $pattern $api makes system calls per message; large run: $(per_call "$scratch/$pattern-$api-$large")"
      echo "        small run: $(per_call "$scratch/$pattern-$api-$small")"
      status=1
    fi
  done
done
# Armed descriptors: a publisher pays one datagram per armed subscriber per arming, not one per
# message. Counted in the publisher alone (strace without -f: the subscribers are forked children).
for waiters in 0 1 8; do
  for n in "$small" "$large"; do
    if ! strace -c -o "$scratch/armed-$waiters-$n" "$driver" armed "$waiters" "$n" > "$scratch/out" 2>&1; then
      echo "FAILED: armed $waiters $n: $(cat "$scratch/out")"; status=1; continue 2
    fi
  done
  a=$(total_calls "$scratch/armed-$waiters-$small")
  b=$(total_calls "$scratch/armed-$waiters-$large")
  sends=$(awk '$NF == "sendto" { print $4 }' "$scratch/armed-$waiters-$large")
  extra=$((b - a))
  printf 'armed %s waiter(s): publisher %s calls for %s messages, %s for %s (sendto: %s): %s extra\n' \
    "$waiters" "$a" "$small" "$b" "$large" "${sends:-0}" "$extra"
  if [ "$extra" -gt "$allowed" ] || [ "${sends:-0}" -gt "$waiters" ]; then
    echo "FAILED: armed descriptors cost the publisher per message"; status=1
  fi
done
exit $status
