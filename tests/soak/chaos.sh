#!/usr/bin/env bash
# Kill storms per pattern for a chosen time (tests/soak/chaos.cc): the test command runs
# `chaos.sh BUILD_DIR 15` (four patterns x 15 s); docs/reliability.md quotes a longer run.
#   tests/soak/chaos.sh BUILD_DIR [seconds per pattern, default 15] [kill every ms, default 20]
set -euo pipefail
build=${1:?build directory}
seconds=${2:-15}
every=${3:-20}
exec "$build/tests/soak/shmring_chaos" --pattern all --seconds "$seconds" --kill-every-ms "$every"
