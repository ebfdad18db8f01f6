#!/usr/bin/env bash
# Nothing the test suite created may be left behind: no segment, companion file or lock set.
# ctest runs it after every other test of a build (FIXTURES_CLEANUP); tests/run_all.sh runs it once
# more with --final after everything (the three builds, the kill storms, the fuzz run).
#  - segments of tests ("shmring_t_..." and channel segments "shmring_chan.t_..."); with --final,
#    every shmring segment ("shmring_*");
#  - with --final, every channel companion file: lifelines, wake-up sockets, liveness files
#    ("shmring-l.*", "shmring-w.*", "shmring-a.*"), and every System V set under a segment-lock key
#    (top bit set: SystemSemaphore::random_segment_key) that no remaining segment names.
# What it finds is listed, removed, and fails the check.
set -u
final=0
[ "${1:-}" = "--final" ] && final=1
status=0
if [ "$final" -eq 1 ]; then
  left=$(ls -A /dev/shm 2>/dev/null | grep -E '^shmring[_-]' || true)
else
  left=$(ls -A /dev/shm 2>/dev/null | grep -E '^shmring_(chan\.)?t_' || true)
fi
if [ -n "$left" ]; then
  echo "left behind in /dev/shm by the test suite:"
  echo "$left"
  for name in $left; do rm -rf "/dev/shm/$name"; done
  status=1
fi
if [ "$final" -eq 1 ] && [ -r /proc/sysvipc/sem ]; then
  # key (signed decimal) and id of every set; segment locks have negative keys (the top bit).
  sets=$(awk 'NR > 1 && $1 < 0 { print $2 }' /proc/sysvipc/sem)
  if [ -n "$sets" ]; then
    echo "segment lock sets left behind: $(echo $sets | wc -w)"
    for id in $sets; do ipcrm -s "$id" 2>/dev/null; done
    status=1
  fi
fi
[ "$status" -eq 0 ] && echo "nothing left behind in /dev/shm$([ "$final" -eq 1 ] && echo ' or among semaphore sets')"
exit "$status"
