#!/usr/bin/env bash
# Runs after every other test: nothing the suite created may be left in /dev/shm. Test keys start
# with "t_", so their segments are named "shmring_t_..." and channel segments
# "shmring_chan.t_...".
set -u
left=$(ls /dev/shm 2>/dev/null | grep -E '^shmring_(chan\.)?t_' || true)
if [ -n "$left" ]; then
  echo "segments left behind by the test suite:"
  echo "$left"
  for name in $left; do rm -rf "/dev/shm/$name"; done
  exit 1
fi
echo "no test segments left in /dev/shm"
