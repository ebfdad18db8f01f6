#!/usr/bin/env bash
# Keeps README.md honest: every code block marked "<!-- example: PATH ... -->" must be exactly the
# file PATH (which the build compiles), and the compiled examples must run. Usage:
#   tests/docs_examples_test.sh SOURCE_DIR EXAMPLES_BUILD_DIR
set -uo pipefail
src=$1
bin=$2
status=0
python3 - "$src" <<'PY' || status=1
import re, sys
root = sys.argv[1]
readme = open(f"{root}/README.md", encoding="utf-8").read()
blocks = re.findall(r"<!-- example: (\S+) .*?-->\n```cpp\n(.*?)\n```", readme, re.S)
if not blocks:
    sys.exit("README.md has no example blocks")
bad = 0
for path, code in blocks:
    actual = open(f"{root}/{path}", encoding="utf-8").read().rstrip("\n")
    if actual != code:
        print(f"README.md's copy of {path} differs from the file")
        bad += 1
print(f"{len(blocks)} README example(s) checked")
sys.exit(1 if bad else 0)
PY
run() { echo "+ $*"; "$@" || { echo "FAILED: $*"; status=1; }; }
run "$bin/docs_example_queue"
run "$bin/docs_example_frames"
run "$bin/docs_example_waitset"
run "$bin/docs_example_service"
"$bin/docs_example_topic" > /tmp/docs_example_topic.$$ & sub=$!
sleep 0.5
run "$bin/docs_example_topic" pub
wait $sub || status=1
grep -q "EURUSD 1.0842" /tmp/docs_example_topic.$$ || { echo "topic example: nothing received"; status=1; }
rm -f /tmp/docs_example_topic.$$
(sleep 1 | "$bin/docs_example_segment" write) & writer=$!
sleep 0.5
run "$bin/docs_example_segment"
wait $writer || status=1
exit $status
