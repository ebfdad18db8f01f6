#!/usr/bin/env bash
# Longer kill -9 soak for the transport: repeats the kill loops (queue producers/consumers, frame viewers/publishers, topic
# subscribers/publishers) N times and stops at the first failure.
#   tests/transport/soak.sh <build dir> [repeats, default 20]
set -eu
build=${1:?build directory}
repeats=${2:-20}
"$build/tests/transport/queue_channel_multiprocess_test" --gtest_filter='QueueChannelKillTest.*' \
  --gtest_repeat="$repeats" --gtest_break_on_failure
"$build/tests/transport/topic_kill_test" --gtest_repeat="$repeats" --gtest_break_on_failure
"$build/tests/transport/frames_kill_test" --gtest_repeat="$repeats" --gtest_break_on_failure
